/*
 * cmd_replay.c: `moetrace replay DB` runs dynamic load balancing over a
 * recorded trace (analyze/replay.c) and prints and stores what it would
 * have bought; `--grid` runs combinations and ranks them; `moetrace
 * replays DB` lists the stored replays.
 */
#include "analyze/analyze.h"
#include "cmds.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_HARDWARE = 1000, OPT_STEP_MS };

static const char usage[] =
	"usage: moetrace replay DB [--run NAME] [--algo NAME] [--ranks R]\n"
	"         [--slots S | --redundant N] [--nodes N --groups G]\n"
	"         [--interval K] [--window W] [--delay D] [--threshold T] [--pay] [--episodes N]\n"
	"         [--max-moves M] [--start static|FILE] [--steps A:B] [--phase prefill|decode]\n"
	"         [--model PRESET] [--quant bf16|fp8|w8a8|w4a8|mxfp4] [--ranks-per-node N]\n"
	"         [--link NAME | --link-intra NAME --link-inter NAME | --bandwidth GB/s]\n"
	"         [--hardware h100|h200|b200|ascend-910b|ascend-910c] [--step-ms MS]\n"
	"         [--tflops T | --us-per-token U] [--threads 1|2] [--no-store] [--json]\n"
	"         [--engine vllm|sglang|vllm-ascend|trtllm]\n"
	"         [--grid algos=A,B redundant=0,32 interval=500,2000 window=... delay=... pay=no,yes\n"
	"          engine=vllm,sglang,vllm-ascend,trtllm [--format table|csv|json|markdown]]\n"
	"Defaults: the flagship algorithm, the run's EP layout, start from the deployed\n"
	"placement (else static), the model preset's serving precision (--quant),\n"
	"--hardware h100 and its links (nvlink4 inside a node, ib-ndr-400g across nodes),\n"
	"the run's ranks per node, and the cadence every command replays with:\n"
	"--interval 600 --window 600 --delay 50 (vllm-ascend's\n"
	"expert_heat_collection_interval and algorithm_execution_interval), on fewer than\n"
	"4800 selected steps an interval and window of an eighth of them and a delay of at\n"
	"most half that (docs/replay.md, \"Defaults\").  The flagship fits its forecast\n"
	"from each window and the history before it, as place does; any other algorithm\n"
	"gets the window as one episode per step, at most 16; --episodes N gives every\n"
	"algorithm N (0: the summed heat).\n"
	"--engine replays an engine's own EPLB with its default settings (algorithm,\n"
	"interval, window, delay); options given beside it override them.\n";

struct opts {
	const char *db, *runname, *algo, *start, *model, *format;
	const struct analyze_engine *engine;
	struct analyze_deploy_opts dep;
	int ranks, slots, redundant, nodes, groups, episodes, max_moves, threads, json, no_store;
	int pay;
	int64_t interval, window, delay, from, to;
	double threshold;
	unsigned phase_mask;
	char *grid[8];
	int ngrid;
};

/* Everything a replay needs besides the algorithm and layout. */
struct setup {
	struct store *s;
	struct store_run run;
	const struct store_model *model;
	struct analyze_deploy dep;
};

static int resolve_start(struct setup *su, const struct opts *o, int ranks, int slots,
			 int32_t *start, char *desc, size_t ndesc, struct util_err *err)
{
	int L = su->run.layers, rc, deployed;
	int64_t eff;

	if (o->start && strcmp(o->start, "static")) {
		struct analyze_shape sh = { L, su->run.experts, ranks, slots, su->run.first_layer,
					    su->model ? su->model->layer_step : 1 };
		if (analyze_format_read(o->start, &sh, start, NULL, err))
			return UTIL_EUSAGE;
		snprintf(desc, ndesc, "%s", o->start);
		return 0;
	}
	if ((rc = analyze_first_selected(su->s, &su->run, o->from, o->to, o->phase_mask, &eff,
					 err)) ||
	    (rc = analyze_start_placement(su->s, &su->run, eff, ranks, slots, o->start != NULL,
					  start, &deployed, &eff, err)))
		return rc;
	if (deployed)
		snprintf(desc, ndesc, "deployed (from step %lld)", (long long)eff);
	else
		snprintf(desc, ndesc, "static");
	return 0;
}

static void params_json(char *buf, size_t n, const struct opts *o, const struct setup *su,
			const struct analyze_algo *algo, int ranks, int slots, int64_t K, int64_t W,
			int64_t D,
			const char *start_desc)
{
	snprintf(buf, n,
		 "{\"algo\": \"%s\", \"ranks\": %d, \"slots\": %d, \"interval\": %lld, "
		 "\"window\": %lld, \"delay\": %lld, \"threshold\": %g, \"episodes\": %d, "
		 "\"max_moves\": %d, \"start\": \"%s\", \"model\": \"%s\", \"quant\": \"%s\", "
		 "\"ranks_per_node\": %d, \"link_intra\": \"%s\", \"link_inter\": \"%s\", "
		 "\"intra_gbytes_per_s\": %g, \"inter_gbytes_per_s\": %g, \"expert_bytes\": %llu, "
		 "\"hardware\": \"%s\", \"tflops\": %g, \"hbm_gbytes_per_s\": %g, "
		 "\"sec_per_token\": %g, \"sec_per_expert\": %g, \"step_ms\": %g, "
		 "\"phase_mask\": %u, \"pay\": %s, \"engine\": \"%s\"}",
		 algo->name, ranks, slots, (long long)K, (long long)W, (long long)D, o->threshold,
		 analyze_replay_episodes(algo, o->episodes, W), o->max_moves, start_desc, su->model ? su->model->name : "",
		 analyze_quant_name(su->dep.quant), su->dep.ranks_per_node, su->dep.link_intra,
		 su->dep.link_inter, su->dep.intra_gbps, su->dep.inter_gbps,
		 (unsigned long long)su->dep.expert_bytes, su->dep.hw->name, su->dep.tflops,
		 su->dep.hbm_gbps, su->dep.sec_per_token, su->dep.sec_per_expert,
		 su->dep.step_seconds * 1e3, o->phase_mask, o->pay ? "true" : "false",
		 o->engine ? o->engine->name : "");
}

/* What the summary means in serving units (docs/replay.md). */
struct units {
	double moved_mean, moved_max;   /* share of all expert weights per rebalance */
	double hbm_gib;                 /* per rank, on redundant experts */
	double tokens_per_step, tokens_per_rank;
	double moe_base_ms, moe_ms, step_base_ms, other_ms; /* per step */
	double moe_share, step_share, stop_share, overlap_share;
	double tps_base, tps_replay, tps_stop, tps_overlap;
	double intra_s, inter_s;        /* summed over rebalances */
	int timed;                      /* MoE time is known */
	int stepped;                    /* step time is known */
};

static double tps(double tokens, double seconds)
{
	return seconds > 0 ? tokens / seconds : 0;
}

static void units_of(const struct setup *su, const struct analyze_replay_out *r, struct units *u)
{
	const struct store_replay *m = &r->sum;
	const struct analyze_deploy *d = &su->dep;
	double all = (double)d->expert_bytes * d->layers * d->experts, steps = (double)m->steps;
	double base = m->baseline_step_seconds;

	memset(u, 0, sizeof(*u));
	for (size_t i = 0; i < r->n_events; i++) {
		double x = all > 0 ? r->events[i].bytes / all : 0;
		u->moved_mean += x / (double)r->n_events;
		if (x > u->moved_max)
			u->moved_max = x;
		u->intra_s += r->events[i].transfer_intra_seconds;
		u->inter_s += r->events[i].transfer_inter_seconds;
	}
	u->hbm_gib = analyze_redundant_gib(d, m->slots);
	u->tokens_per_step = steps > 0 ? (double)m->tokens / steps : 0;
	u->tokens_per_rank = u->tokens_per_step / (m->ranks > 0 ? m->ranks : 1);
	u->timed = m->baseline_moe_seconds > 0;
	u->stepped = u->timed && base > 0;
	if (!u->timed)
		return;
	u->moe_base_ms = m->baseline_moe_seconds / steps * 1e3;
	u->moe_ms = m->moe_seconds / steps * 1e3;
	u->moe_share = m->saved_seconds / m->baseline_moe_seconds;
	if (!u->stepped)
		return;
	u->step_base_ms = base / steps * 1e3;
	u->other_ms = u->step_base_ms - u->moe_base_ms;
	u->step_share = m->saved_seconds / base;
	u->stop_share = m->net_stop_seconds / base;
	u->overlap_share = m->net_overlap_seconds / base;
	u->tps_base = tps((double)m->tokens, base);
	u->tps_replay = tps((double)m->tokens, base - m->saved_seconds);
	u->tps_stop = tps((double)m->tokens, base - m->net_stop_seconds);
	u->tps_overlap = tps((double)m->tokens, base - m->net_overlap_seconds);
}

/* The step-time lines of a replay whose step time is known. */
static void print_step_units(const struct analyze_deploy *d, const struct store_replay *m,
			     const struct units *u)
{
	if (d->step_seconds > 0 && u->moe_base_ms > u->step_base_ms)
		printf("note: the estimated MoE time per step exceeds the measured --step-ms "
		       "%.3f ms; check --hardware or --tflops\n",
		       u->step_base_ms);
	printf("%-28s %8.3fms %8.3fms %8.2f%%\n",
	       d->step_seconds > 0 ? "step time (measured)" : "step time", u->step_base_ms,
	       u->step_base_ms - (u->moe_base_ms - u->moe_ms), 100 * u->step_share);
	printf("%-28s %10.0f %10.0f %8.2f%%\n", "tokens/s", u->tps_base, u->tps_replay,
	       u->tps_base > 0 ? 100 * (u->tps_replay / u->tps_base - 1) : 0);
	printf("MoE straggler time saved %.3f s; net of transfers %.3f s stop-the-world "
	       "(%.2f%% of step time, %.0f tokens/s), %.3f s overlapped (%.2f%%, %.0f "
	       "tokens/s)\n",
	       m->saved_seconds, m->net_stop_seconds, 100 * u->stop_share, u->tps_stop,
	       m->net_overlap_seconds, 100 * u->overlap_share, u->tps_overlap);
}

static void print_text(const struct setup *su, const struct analyze_replay_out *r,
		       const char *start_desc, int pay, const struct analyze_engine *engine)
{
	const struct store_replay *m = &r->sum;
	const struct analyze_deploy *d = &su->dep;
	struct units u;
	char b1[32], b2[32], b3[32], s1[32], s2[32];

	units_of(su, r, &u);
	char idb[32] = "";
	if (m->id)
		snprintf(idb, sizeof(idb), " %lld", (long long)m->id);
	char fit[64] = "";
	if (m->episodes == ANALYZE_REPLAY_FORECAST)
		snprintf(fit, sizeof(fit), " and the history before it (its forecast)");
	else if (m->episodes > 0)
		snprintf(fit, sizeof(fit), " as %d episodes", m->episodes);
	printf("replay%s of run '%s': %s, %d ranks x %d slots, every %lld steps on a window "
	       "of %lld%s, effect %lld steps later%s\n",
	       idb, su->run.name, m->algo, m->ranks, m->slots, (long long)m->interval,
	       (long long)m->window, fit, (long long)m->delay, m->id ? "" : " (not stored)");
	if (engine)
		printf("%s's EPLB with its defaults (%s), options given beside --engine "
		       "excepted\n",
		       engine->name, engine->settings);
	if (m->threshold > 0)
		printf("only layers whose window imbalance exceeds %.3f are re-placed\n", m->threshold);
	if (pay)
		printf("only moves predicted to save more straggler time by the next rebalance than "
		       "their transfer takes are made\n");
	printf("deployment: %d node%s x %d ranks; %s inside a node (%.0f GB/s), %s across nodes "
	       "(%.0f GB/s) per rank and direction",
	       m->ranks / d->ranks_per_node, m->ranks / d->ranks_per_node > 1 ? "s" : "",
	       d->ranks_per_node, d->link_intra, d->intra_gbps, d->link_inter, d->inter_gbps);
	if (d->expert_bytes)
		printf("; %s, %s per expert", analyze_quant_name(d->quant),
		       util_human_bytes(b1, sizeof(b1), (double)d->expert_bytes));
	printf("\nstart: %s; %lld step%s scored under the placement in force", start_desc,
	       (long long)(m->steps - r->unscored_steps),
	       m->steps - r->unscored_steps == 1 ? "" : "s");
	if (r->unscored_steps)
		printf(" (%lld more in which no layer got a token, not scored)",
		       (long long)r->unscored_steps);
	printf("\n\n");
	printf("%-28s %10s %10s\n", "", "baseline", "replay");
	printf("%-28s %10.3f %10.3f\n", "imbalance, mean over steps", m->baseline_imbalance_mean,
	       m->imbalance_mean);
	/* a trace of both phases: each phase's own mean, since one prefill
	 * step weighs as much as one decode step in the mean above */
	if (r->phase[0].steps && r->phase[1].steps)
		for (int i = 0; i < 2; i++) {
			char lab[64];
			snprintf(lab, sizeof(lab), "  on %lld %s step%s", (long long)r->phase[i].steps,
				 i ? "prefill" : "decode", r->phase[i].steps == 1 ? "" : "s");
			printf("%-28s %10.3f %10.3f\n", lab, r->phase[i].base_mean, r->phase[i].mean);
		}
	printf("%-28s %10.3f %10.3f\n", "imbalance, p99 over steps", m->baseline_imbalance_p99,
	       m->imbalance_p99);
	if (!d->expert_bytes && m->moves) /* unknown, not nothing */
		printf("\nrebalances %lld, copies %lld; bytes and transfer time unknown: no model "
		       "sizes an expert (give --model)\n",
		       (long long)m->events, (long long)m->moves);
	else {
		printf("\nrebalances %lld, copies %lld, %s moved: %s inside nodes (%s), %s across "
		       "nodes (%s)\n",
		       (long long)m->events, (long long)m->moves,
		       util_human_bytes(b1, sizeof(b1), (double)m->bytes),
		       util_human_bytes(b2, sizeof(b2), (double)(m->bytes - m->bytes_inter)),
		       util_human_seconds(s1, sizeof(s1), u.intra_s),
		       util_human_bytes(b3, sizeof(b3), (double)m->bytes_inter),
		       util_human_seconds(s2, sizeof(s2), u.inter_s));
		printf("transfer %s: per rebalance the longest send or receive queue of any rank "
		       "on each tier, tiers in parallel\n",
		       util_human_seconds(s1, sizeof(s1), m->transfer_seconds));
	}
	if (d->expert_bytes) {
		if (m->events)
			printf("each rebalance moves %.2f%% of all expert weights on average, %.2f%% "
			       "at most\n",
			       100 * u.moved_mean, 100 * u.moved_max);
		printf("redundant experts hold %s of HBM per rank (%s)\n",
		       util_human_bytes(b1, sizeof(b1), u.hbm_gib * 1073741824.0),
		       analyze_quant_name(d->quant));
	}
	if (u.timed) {
		printf("\n%lld tokens per step, %.1f per rank; estimated with the step-time model "
		       "%s%s%s (docs/replay.md)\n",
		       (long long)(u.tokens_per_step + 0.5), u.tokens_per_rank,
		       d->expert_bytes ? "on " : "at --us-per-token",
		       d->expert_bytes ? d->hw->label : "",
		       d->step_seconds > 0 ? ", the step time measured (--step-ms)" : "");
		printf("%-28s %10s %10s %9s\n", "per step", "baseline", "replay", "saved");
		printf("%-28s %8.3fms %8.3fms %8.2f%%\n", "MoE time (busiest rank)", u.moe_base_ms,
		       u.moe_ms, 100 * u.moe_share);
		if (!u.stepped && !d->expert_bytes && m->moves)
			printf("(no model preset: no step time; MoE straggler time saved %.3f s, net "
			       "of transfers unknown)\n",
			       m->saved_seconds);
		else if (!u.stepped)
			printf("(no model preset: no step time; MoE straggler time saved %.3f s, net "
			       "of transfers %.3f s stop-the-world, %.3f s overlapped)\n",
			       m->saved_seconds, m->net_stop_seconds, m->net_overlap_seconds);
		else
			print_step_units(d, m, &u);
	} else {
		printf("(no model preset: give --model or --us-per-token for time estimates)\n");
	}
	printf("algorithm time %s, replay %s\n", util_human_seconds(s1, sizeof(s1), r->algo_seconds),
	       util_human_seconds(s2, sizeof(s2), r->wall_seconds));
	if (r->n_events) {
		printf("\n%6s %10s %10s %7s %8s %10s %10s %9s\n", "event", "decided", "effective",
		       "layers", "copies", "bytes", "inter-node", "transfer");
		for (size_t i = 0; i < r->n_events; i++) {
			const struct store_replay_event *e = &r->events[i];
			if (!d->expert_bytes && e->moves)
				printf("%6lld %10lld %10lld %7d %8lld %10s %10s %9s\n",
				       (long long)e->event, (long long)e->step,
				       (long long)e->effective_step, e->layers, (long long)e->moves,
				       "-", "-", "-");
			else
				printf("%6lld %10lld %10lld %7d %8lld %10s %10s %8.3fs\n",
				       (long long)e->event, (long long)e->step,
				       (long long)e->effective_step, e->layers, (long long)e->moves,
				       util_human_bytes(b1, sizeof(b1), (double)e->bytes),
				       util_human_bytes(b2, sizeof(b2), (double)e->bytes_inter),
				       e->transfer_seconds);
		}
	}
	printf("\n%5s %9s %9s %9s %9s %8s\n", "layer", "base-mean", "mean", "base-p99", "p99",
	       "copies");
	for (int l = 0; l < r->layers; l++) {
		const struct analyze_replay_layer *y = &r->layer[l];
		if (isnan(y->mean)) /* no step gave it a token: not scored */
			printf("%5d %9s %9s %9s %9s %8lld\n", l, "-", "-", "-", "-",
			       (long long)y->moves);
		else
			printf("%5d %9.3f %9.3f %9.3f %9.3f %8lld\n", l, y->base_mean, y->mean,
			       y->base_p99, y->p99, (long long)y->moves);
	}
}

/* "key": value, (or null when !have) */
static void jnum(const char *key, double v, int have)
{
	if (have)
		printf("\"%s\": %.6f, ", key, v);
	else
		printf("\"%s\": null, ", key);
}

/* v printed with fmt into buf, or null when it is not known. */
static const char *jfmt(char *buf, size_t n, const char *fmt, double v, int have)
{
	if (!have)
		snprintf(buf, n, "null");
	else
		snprintf(buf, n, fmt, v);
	return buf;
}

/* An integer, or null when it is not known. */
static void jint(const char *key, long long v, int have)
{
	if (have)
		printf("\"%s\": %lld, ", key, v);
	else
		printf("\"%s\": null, ", key);
}

static void print_json(const struct setup *su, const struct analyze_replay_out *r)
{
	const struct store_replay *m = &r->sum;
	const struct analyze_deploy *d = &su->dep;
	struct units u;

	units_of(su, r, &u);
	printf("{\"replay\": %lld, \"run\": \"%s\", \"params\": %s,\n", (long long)m->id,
	       su->run.name, m->params);
	printf(" \"quant\": \"%s\", \"ranks_per_node\": %d, \"nodes\": %d, \"link_intra\": \"%s\", "
	       "\"link_inter\": \"%s\", \"hardware\": \"%s\", \"pay\": %s, \"estimated\": %s,\n",
	       analyze_quant_name(d->quant), d->ranks_per_node, m->ranks / d->ranks_per_node,
	       d->link_intra, d->link_inter, d->hw->name, m->pay ? "true" : "false",
	       d->step_seconds > 0 ? "false" : "true");
	/* without a model no expert has a size: what copies move is null (and
	 * 0 when nothing moved) */
	int sized = d->expert_bytes > 0 || m->moves == 0;
	printf(" ");
	jint("bytes_intra_node", (long long)(m->bytes - m->bytes_inter), sized);
	jint("bytes_inter_node", (long long)m->bytes_inter, sized);
	jnum("transfer_seconds", m->transfer_seconds, sized);
	jnum("transfer_intra_seconds", u.intra_s, sized);
	jnum("transfer_inter_seconds", u.inter_s, sized);
	jnum("weights_moved_share", u.moved_mean, d->expert_bytes > 0);
	jnum("weights_moved_share_max", u.moved_max, d->expert_bytes > 0);
	jnum("hbm_redundant_gib_per_rank", u.hbm_gib, d->expert_bytes > 0);
	printf("\n \"tokens_per_step\": %.3f, \"tokens_per_rank\": %.3f, ", u.tokens_per_step,
	       u.tokens_per_rank);
	/* without a model there is no time: null, not a zero share */
	jnum("baseline_moe_ms_per_step", u.moe_base_ms, u.timed);
	jnum("moe_ms_per_step", u.moe_ms, u.timed);
	jnum("baseline_step_ms", u.step_base_ms, u.stepped);
	jnum("moe_time_saved_share", u.moe_share, u.timed);
	jnum("step_time_saved_share", u.step_share, u.stepped);
	jnum("step_time_saved_share_stop_the_world", u.stop_share, u.stepped);
	jnum("step_time_saved_share_overlapped", u.overlap_share, u.stepped);
	jnum("baseline_tokens_per_s", u.tps_base, u.stepped);
	jnum("tokens_per_s", u.tps_replay, u.stepped);
	jnum("tokens_per_s_stop_the_world", u.tps_stop, u.stepped);
	jnum("tokens_per_s_overlapped", u.tps_overlap, u.stepped);
	printf("\n");
	printf(" \"summary\": {\"steps\": %lld, \"imbalance_mean\": %.6f, "
	       "\"baseline_imbalance_mean\": %.6f, \"imbalance_p99\": %.6f, "
	       "\"baseline_imbalance_p99\": %.6f, \"events\": %lld, \"moves\": %lld, ",
	       (long long)m->steps, m->imbalance_mean, m->baseline_imbalance_mean,
	       m->imbalance_p99, m->baseline_imbalance_p99, (long long)m->events,
	       (long long)m->moves);
	jint("bytes", (long long)m->bytes, sized);
	jnum("transfer_seconds", m->transfer_seconds, sized);
	jnum("saved_seconds", m->saved_seconds, u.timed);
	jnum("net_stop_seconds", m->net_stop_seconds, sized && u.timed);
	jnum("net_overlap_seconds", m->net_overlap_seconds, sized && u.timed);
	printf("\"algo_seconds\": %.6f, \"wall_seconds\": %.6f},\n", r->algo_seconds,
	       r->wall_seconds);
	/* the same per-step figures of each phase's steps alone */
	printf(" \"by_phase\": {");
	for (int i = 0; i < 2; i++) {
		const struct analyze_replay_phase *p = &r->phase[i];
		printf("%s\"%s\": {\"steps\": %lld, ", i ? ", " : "", i ? "prefill" : "decode",
		       (long long)p->steps);
		jnum("imbalance_mean", p->mean, p->steps > 0);
		jnum("baseline_imbalance_mean", p->base_mean, p->steps > 0);
		jnum("imbalance_p99", p->p99, p->steps > 0);
		if (p->steps > 0)
			printf("\"baseline_imbalance_p99\": %.6f}", p->base_p99);
		else
			printf("\"baseline_imbalance_p99\": null}");
	}
	printf("},\n");
	printf(" \"events\": [");
	for (size_t i = 0; i < r->n_events; i++) {
		const struct store_replay_event *e = &r->events[i];
		double all = (double)d->expert_bytes * d->layers * d->experts;
		printf("%s\n  {\"event\": %lld, \"step\": %lld, \"effective_step\": %lld, "
		       "\"layers\": %d, \"moves\": %lld, ",
		       i ? "," : "", (long long)e->event, (long long)e->step,
		       (long long)e->effective_step, e->layers, (long long)e->moves);
		int esized = d->expert_bytes > 0 || e->moves == 0;
		jint("bytes", (long long)e->bytes, esized);
		jint("bytes_intra_node", (long long)(e->bytes - e->bytes_inter), esized);
		jint("bytes_inter_node", (long long)e->bytes_inter, esized);
		jnum("transfer_seconds", e->transfer_seconds, esized);
		jnum("transfer_intra_seconds", e->transfer_intra_seconds, esized);
		jnum("transfer_inter_seconds", e->transfer_inter_seconds, esized);
		jnum("weights_moved_share", all > 0 ? e->bytes / all : 0, d->expert_bytes > 0);
		printf("\"algo_seconds\": %.6f}", e->algo_seconds);
	}
	printf("],\n \"layers\": [");
	for (int l = 0; l < r->layers; l++) {
		const struct analyze_replay_layer *y = &r->layer[l];
		int have = !isnan(y->mean); /* null: no step gave the layer a token */
		printf("%s\n  {\"layer\": %d, ", l ? "," : "", l);
		jnum("imbalance_mean", y->mean, have);
		jnum("imbalance_p99", y->p99, have);
		jnum("baseline_imbalance_mean", y->base_mean, have);
		jnum("baseline_imbalance_p99", y->base_p99, have);
		printf("\"moves\": %lld}", (long long)y->moves);
	}
	printf("]}\n");
}

/* ---- grid ------------------------------------------------------------------ */

/* Combinations replayed on one reading of the trace: each holds its
 * histograms, window and checkpoints (about 12 MB at 58 x 256), so a
 * batch bounds the memory of a large grid. */
#define GRID_BATCH 12

struct combo {
	const struct analyze_engine *engine; /* NULL: none (the settings given) */
	const struct analyze_algo *algo;
	int redundant, slots, pay;
	int64_t interval, window, delay;
	struct analyze_replay_out r;
	int rc;
	struct util_err err;
};

/* The values of --grid KEY=V1,V2,...: how many, else -1 after saying
 * why.  An empty list or value would fall back to the single replay's,
 * and a value given twice would make two equal rows: both refused. */
static int split_list(const char *key, const char *s, char out[][64], int max)
{
	int n = 0;
	const char *p = s;

	while (n < max) {
		const char *q = strchr(p, ',');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if (!len) {
			util_cli_error("replay", "--grid %s=%s: empty value", key, s);
			return -1;
		}
		if (len >= 64)
			len = 63;
		memcpy(out[n], p, len);
		out[n][len] = 0;
		for (int i = 0; i < n; i++)
			if (!strcmp(out[i], out[n])) {
				util_cli_error("replay", "--grid %s=%s: '%s' is given twice", key,
					       s, out[n]);
				return -1;
			}
		n++;
		if (!q)
			break;
		p = q + 1;
	}
	return n;
}

/* Nodes and expert groups for an engine's algorithm: the given ones, else
 * the deployment's ranks per node and the model's groups, as `compare`
 * takes them (the DeepSeek policy is hierarchical only when the nodes
 * divide the groups). */
static void engine_layout(const struct opts *o, const struct setup *su, int ranks, int *nodes,
			  int *groups)
{
	*nodes = o->nodes;
	*groups = o->groups;
	if (!o->nodes)
		analyze_hier_nodes(ranks, su->dep.ranks_per_node, su->model, su->run.experts, nodes,
				   groups);
}

static int cmp_combo(const void *a, const void *b)
{
	const struct combo *x = a, *y = b;
	double dx = x->r.sum.imbalance_mean, dy = y->r.sum.imbalance_mean;

	if (dx != dy)
		return dx < dy ? -1 : 1;
	return (x->r.sum.moves > y->r.sum.moves) - (x->r.sum.moves < y->r.sum.moves);
}

/* The values of each --grid key, as given (n* of each; 0: not given). */
struct grid_axes {
	char algos[16][64], reds[16][64], ints[16][64], wins[16][64], dels[16][64], pays[2][64];
	char engs[8][64];
	int na, nr, ni, nw, nd, np, ne;
};

/* The KEY=V1,V2,... terms of --grid: 0, else the exit status. */
static int grid_parse(const struct opts *o, struct grid_axes *ax)
{
	for (int i = 0; i < o->ngrid; i++) {
		char *eq = strchr(o->grid[i], '=');
		if (!eq) {
			util_cli_error("replay", "--grid: '%s' is not KEY=V1,V2,...", o->grid[i]);
			return 2;
		}
		*eq = 0;
		const char *k = o->grid[i], *v = eq + 1;
		if (!strcmp(k, "algos") || !strcmp(k, "algo"))
			ax->na = split_list(k, v, ax->algos, 16);
		else if (!strcmp(k, "redundant"))
			ax->nr = split_list(k, v, ax->reds, 16);
		else if (!strcmp(k, "interval"))
			ax->ni = split_list(k, v, ax->ints, 16);
		else if (!strcmp(k, "window"))
			ax->nw = split_list(k, v, ax->wins, 16);
		else if (!strcmp(k, "delay"))
			ax->nd = split_list(k, v, ax->dels, 16);
		else if (!strcmp(k, "pay")) {
			ax->np = split_list(k, v, ax->pays, 2);
			for (int j = 0; j < ax->np; j++)
				if (strcmp(ax->pays[j], "no") && strcmp(ax->pays[j], "yes")) {
					util_cli_error("replay", "--grid pay=%s: not no or yes",
						       ax->pays[j]);
					return 2;
				}
		} else if (!strcmp(k, "engine") || !strcmp(k, "engines")) {
			ax->ne = split_list(k, v, ax->engs, 8);
			for (int j = 0; j < ax->ne; j++)
				if (!analyze_engine_find(ax->engs[j])) {
					util_cli_error("replay", "--grid engine=%s: unknown engine (%s)",
						       ax->engs[j], analyze_engine_choices());
					return 2;
				}
		} else {
			util_cli_error("replay", "--grid: unknown key '%s' (algos, redundant, "
				       "interval, window, delay, pay, engine)", k);
			return 2;
		}
		if (ax->na < 0 || ax->nr < 0 || ax->ni < 0 || ax->nw < 0 || ax->nd < 0 ||
		    ax->np < 0 || ax->ne < 0)
			return 2;
	}
	if (ax->ne && (ax->na || ax->ni || ax->nw || ax->nd)) {
		util_cli_error("replay", "--grid engine= sets the algorithm, interval, window and "
			       "delay of its rows: drop algos=, interval=, window= and delay=");
		return 2;
	}
	return 0;
}

/* Keys not given take the single replay's value. */
static void grid_defaults(const struct opts *o, struct grid_axes *ax, int ranks, int slots,
			  int experts, int64_t nsel)
{
	if (!ax->na)
		snprintf(ax->algos[ax->na++], 64, "%s", o->algo);
	if (!ax->nr)
		snprintf(ax->reds[ax->nr++], 64, "%d", ranks * slots - experts);
	if (!ax->ni) {
		int64_t K = o->interval, W = 0, D = -1;
		analyze_replay_cadence(nsel, &K, &W, &D);
		snprintf(ax->ints[ax->ni++], 64, "%lld", (long long)K);
	}
	if (!ax->np)
		snprintf(ax->pays[ax->np++], 64, "%s", o->pay ? "yes" : "no");
}

/* x->redundant and x->slots for red redundant experts: 0, else the exit
 * status. */
static int grid_layout(struct combo *x, int red, int experts, int ranks)
{
	struct util_err err = UTIL_ERR_INIT;

	if ((experts + red) % ranks) {
		util_cli_error("replay", "--grid redundant=%d: %d experts + %d is not a multiple of "
			       "%d ranks", red, experts, red, ranks);
		return 2;
	}
	x->redundant = red;
	x->slots = (experts + red) / ranks;
	if (analyze_algo_layout_check(x->algo, experts, x->slots, &err)) {
		util_err_prefix(&err, "--grid redundant=%d: ", red);
		return util_cli_fail("replay", &err);
	}
	return 0;
}

/* With engine=: one row per engine and one of the flagship at the default
 * cadence, each for every redundant and pay value. */
static int grid_engine_rows(const struct setup *su, const struct grid_axes *ax, int ranks,
			    int64_t nsel, struct combo *c)
{
	struct util_err err = UTIL_ERR_INIT;
	size_t k = 0;
	int st;

	for (int e = 0; e <= ax->ne; e++)
		for (int r = 0; r < ax->nr; r++)
			for (int p = 0; p < ax->np; p++) {
				struct combo *x = &c[k++];
				const struct analyze_engine *en =
					e < ax->ne ? analyze_engine_find(ax->engs[e]) : NULL;
				int red;
				if (util_parse_int(ax->reds[r], 0, STORE_MAX_SLOTS, &red,
						   "--grid redundant", &err))
					return util_cli_fail("replay", &err);
				x->engine = en;
				x->pay = !strcmp(ax->pays[p], "yes");
				x->algo = analyze_algo_find(en ? en->algo : ANALYZE_FLAGSHIP);
				if ((st = grid_layout(x, red, su->run.experts, ranks)))
					return st;
				x->interval = en ? (en->interval ? en->interval : su->run.layers) : 0;
				x->window = en ? en->window : 0;
				x->delay = en ? en->delay : -1;
				analyze_replay_cadence(nsel, &x->interval, &x->window, &x->delay);
			}
	return 0;
}

/* Without engine=: every combination of the values given. */
static int grid_value_rows(const struct opts *o, const struct setup *su,
			   const struct grid_axes *ax, int ranks, int64_t nsel, struct combo *c)
{
	struct util_err err = UTIL_ERR_INIT;
	const int nw = ax->nw, nd = ax->nd, np = ax->np;
	size_t k = 0;
	int st;

	for (int a = 0; a < ax->na; a++)
		for (int r = 0; r < ax->nr; r++)
			for (int i = 0; i < ax->ni; i++)
				for (int w = 0; w < (nw ? nw : 1); w++)
					for (int d = 0; d < (nd ? nd : 1) * np; d++) {
						struct combo *x = &c[k++];
						x->pay = !strcmp(ax->pays[d % np], "yes");
						x->algo = analyze_algo_find(ax->algos[a]);
						if (!x->algo) {
							char hint[96];
							util_cli_error("replay", "--grid: unknown algorithm '%s'%s",
								       ax->algos[a],
								       util_did_you_mean(analyze_algo_suggest(ax->algos[a]),
											 hint, sizeof(hint)));
							return 2;
						}
						int red;
						if (util_parse_int(ax->reds[r], 0, STORE_MAX_SLOTS, &red, "--grid redundant", &err) ||
						    util_parse_i64(ax->ints[i], 1, STORE_STEP_MAX, &x->interval, "--grid interval", &err) ||
						    (nw && util_parse_i64(ax->wins[w], 1, STORE_STEP_MAX, &x->window, "--grid window", &err)) ||
						    (nd && util_parse_i64(ax->dels[d / np], 0, STORE_STEP_MAX, &x->delay, "--grid delay", &err)))
							return util_cli_fail("replay", &err);
						if ((st = grid_layout(x, red, su->run.experts, ranks)))
							return st;
						if (!nw)
							x->window = o->window;
						if (!nd)
							x->delay = o->delay;
						analyze_replay_cadence(nsel, &x->interval, &x->window, &x->delay);
					}
	return 0;
}

/* The replays of the m combinations c: each one's start placement and
 * settings, then one reading of the trace for all (analyze_replay_grid). */
static void grid_batch(const struct opts *o, struct setup *su, int ranks, int en_nodes,
		       int en_groups, struct combo *c, size_t m)
{
	struct analyze_replay_cfg cfg[GRID_BATCH];
	struct analyze_replay_out out[GRID_BATCH];
	struct util_err err[GRID_BATCH];
	int32_t *start[GRID_BATCH] = { NULL };
	struct combo *live[GRID_BATCH];
	int rcs[GRID_BATCH], n = 0;
	char desc[256];

	for (size_t i = 0; i < m; i++) {
		struct combo *x = &c[i];
		size_t P = (size_t)ranks * (size_t)x->slots;
		if (!(start[i] = malloc((size_t)su->run.layers * P * sizeof(int32_t)))) {
			x->rc = util_err_set(&x->err, UTIL_ENOMEM, "out of memory");
			continue;
		}
		if ((x->rc = resolve_start(su, o, ranks, x->slots, start[i], desc, sizeof(desc),
					   &x->err)))
			continue;
		cfg[n] = (struct analyze_replay_cfg){
			.algo = x->algo, .ranks = ranks, .slots = x->slots,
			.nodes = x->engine ? en_nodes : o->nodes,
			.groups = x->engine ? en_groups : o->groups,
			.interval = x->interval, .window = x->window, .delay = x->delay,
			.threshold = o->threshold, .pay = x->pay,
			.episodes = analyze_replay_episodes(x->algo, o->episodes, x->window),
			.max_moves = o->max_moves,
			.move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE, .seed = ANALYZE_DEFAULT_SEED,
			.from = o->from, .to = o->to, .phase_mask = o->phase_mask,
			.start = start[i], .deploy = &su->dep, .threads = 1, .store = 0,
			.engine = x->engine ? x->engine->name : NULL,
		};
		err[n] = (struct util_err)UTIL_ERR_INIT;
		live[n++] = x;
	}
	if (n)
		analyze_replay_grid(su->s, &su->run, cfg, n, o->threads, out, err, rcs);
	for (int k = 0; k < n; k++) {
		live[k]->r = out[k];
		live[k]->rc = rcs[k];
		live[k]->err = err[k];
	}
	for (size_t i = 0; i < m; i++)
		free(start[i]);
}

/* The replays of the n combinations, GRID_BATCH at a time, each batch on
 * one reading of the trace; the first failure's exit status, else 0. */
static int grid_run(struct opts *o, struct setup *su, int ranks, struct combo *c, size_t n)
{
	int en_nodes, en_groups;

	engine_layout(o, su, ranks, &en_nodes, &en_groups);
	for (size_t b = 0; b < n; b += GRID_BATCH)
		grid_batch(o, su, ranks, en_nodes, en_groups, c + b,
			   n - b < GRID_BATCH ? n - b : GRID_BATCH);
	for (size_t i = 0; i < n; i++)
		if (c[i].rc)
			return util_cli_fail("replay", &c[i].err);
	return 0;
}

/* Row i (0-based rank) of the ranked grid in format fmt. */
static void grid_print_row(const char *fmt, size_t i, const struct combo *x)
{
	int md = !strcmp(fmt, "markdown"), csv = !strcmp(fmt, "csv"), js = !strcmp(fmt, "json");
	const struct store_replay *m = &x->r.sum;
	const char *en = x->engine ? x->engine->name : "-";

	if (js)
		printf("%s\n {\"rank\": %zu, \"algo\": \"%s\", \"redundant\": %d, \"slots\": %d, "
		       "\"interval\": %lld, \"window\": %lld, \"delay\": %lld, \"pay\": %s, "
		       "\"imbalance_mean\": %.6f, \"baseline_imbalance_mean\": %.6f, "
		       "\"imbalance_p99\": %.6f, \"events\": %lld, \"moves\": %lld, "
		       "\"bytes\": %lld, \"transfer_seconds\": %.6f, \"saved_seconds\": %.6f, "
		       "\"net_overlap_seconds\": %.6f, \"net_stop_seconds\": %.6f, "
		       "\"bytes_inter_node\": %lld, \"quant\": \"%s\", \"ranks_per_node\": %d, "
		       "\"link_intra\": \"%s\", \"link_inter\": \"%s\", \"engine\": %s%s%s}",
		       i ? "," : "", i + 1, x->algo->name, x->redundant, x->slots,
		       (long long)x->interval, (long long)x->window, (long long)x->delay,
		       x->pay ? "true" : "false", m->imbalance_mean,
		       m->baseline_imbalance_mean, m->imbalance_p99, (long long)m->events, (long long)m->moves, (long long)m->bytes,
		       m->transfer_seconds, m->saved_seconds, m->net_overlap_seconds,
		       m->net_stop_seconds, (long long)m->bytes_inter, m->quant,
		       m->ranks_per_node, m->link_intra, m->link_inter,
		       x->engine ? "\"" : "", x->engine ? en : "null", x->engine ? "\"" : "");
	else if (csv)
		printf("%zu,%s,%d,%d,%lld,%lld,%lld,%s,%.6f,%.6f,%.6f,%lld,%lld,%lld,%.6f,%.6f,%.6f,"
		       "%.6f,%lld,%s,%d,%s,%s,%s\n",
		       i + 1, x->algo->name, x->redundant, x->slots, (long long)x->interval,
		       (long long)x->window, (long long)x->delay, x->pay ? "yes" : "no",
		       m->imbalance_mean,
		       m->baseline_imbalance_mean, m->imbalance_p99, (long long)m->events,
		       (long long)m->moves, (long long)m->bytes, m->transfer_seconds,
		       m->saved_seconds, m->net_overlap_seconds, m->net_stop_seconds,
		       (long long)m->bytes_inter, m->quant, m->ranks_per_node, m->link_intra,
		       m->link_inter, x->engine ? en : "");
	else if (md)
		printf("| %zu | %s | %s | %d | %lld | %lld | %lld | %s | %.3f | %.3f | %.3f | %lld | "
		       "%.1f | %.2f | %.2f |\n",
		       i + 1, en, x->algo->name, x->redundant, (long long)x->interval,
		       (long long)x->window, (long long)x->delay, x->pay ? "yes" : "no",
		       m->imbalance_mean,
		       m->imbalance_p99, m->baseline_imbalance_mean, (long long)m->moves,
		       (double)m->bytes / 1e9, m->transfer_seconds, m->net_overlap_seconds);
	else
	{
		char t1[32], t2[32];
		printf("%3zu %-11s %-9s %9d %8lld %7lld %6lld %4s %9.3f %7.3f %9.3f %8lld %9.1f "
		       "%9s %11s\n",
		       i + 1, en, x->algo->name, x->redundant, (long long)x->interval,
		       (long long)x->window, (long long)x->delay, x->pay ? "yes" : "no",
		       m->imbalance_mean,
		       m->imbalance_p99, m->baseline_imbalance_mean, (long long)m->moves,
		       (double)m->bytes / 1e9,
		       util_human_seconds(t1, sizeof(t1), m->transfer_seconds),
		       util_human_seconds(t2, sizeof(t2), m->net_overlap_seconds));
	}
}

/* The ranked grid in format fmt (table, csv, json or markdown). */
static void grid_print(const char *fmt, const struct setup *su, const struct combo *c, size_t n)
{
	int md = !strcmp(fmt, "markdown"), csv = !strcmp(fmt, "csv"), js = !strcmp(fmt, "json");
	if (js)
		printf("[");
	else if (csv)
		printf("rank,algo,redundant,slots,interval,window,delay,pay,imbalance_mean,"
		       "baseline_imbalance_mean,imbalance_p99,events,moves,bytes,transfer_seconds,"
		       "saved_seconds,net_overlap_seconds,net_stop_seconds,bytes_inter_node,quant,"
		       "ranks_per_node,link_intra,link_inter,engine\n");
	else if (md)
		printf("| # | engine | algo | redundant | interval | window | delay | pay | imbalance mean "
		       "| p99 | baseline | copies | GB moved | transfer s | net saved s, overlapped |\n"
		       "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	else
		printf("%3s %-11s %-9s %9s %8s %7s %6s %4s %9s %7s %9s %8s %9s %9s %11s\n", "#",
		       "engine", "algo",
		       "redundant", "interval", "window", "delay", "pay", "imb-mean", "p99", "baseline",
		       "copies", "GB moved", "transfer", "net-overlap");
	for (size_t i = 0; i < n; i++)
		grid_print_row(fmt, i, &c[i]);
	if (js)
		printf("]\n");
	else if (!csv && !md)
		printf("\nranked by mean imbalance over steps, then copies; net-overlap: MoE time "
		       "saved less the transfers not hidden behind the delay (%s inside nodes, %s "
		       "across); not stored (run one combination without --grid to store it)\n",
		       su->dep.link_intra, su->dep.link_inter);
}

static int run_grid(struct opts *o, struct setup *su, int ranks, int slots, int64_t nsel)
{
	struct grid_axes ax = { .na = 0 };
	const char *fmt = o->format ? o->format : "table";
	int st;

	if ((st = grid_parse(o, &ax)))
		return st;
	if (strcmp(fmt, "table") && strcmp(fmt, "csv") && strcmp(fmt, "json") &&
	    strcmp(fmt, "markdown")) {
		util_cli_error("replay", "--format: '%s' is not table, csv, json or markdown", fmt);
		return 2;
	}
	grid_defaults(o, &ax, ranks, slots, su->run.experts, nsel);
	size_t n = ax.ne ? (size_t)(ax.ne + 1) * ax.nr * ax.np
			 : (size_t)ax.na * ax.nr * ax.ni * (ax.nw ? ax.nw : 1) * (ax.nd ? ax.nd : 1) *
				   ax.np;
	struct combo *c = xcalloc(n, sizeof(*c));
	st = ax.ne ? grid_engine_rows(su, &ax, ranks, nsel, c)
		   : grid_value_rows(o, su, &ax, ranks, nsel, c);
	if (!st && !(st = grid_run(o, su, ranks, c, n))) {
		qsort(c, n, sizeof(*c), cmp_combo);
		grid_print(fmt, su, c, n);
	}
	for (size_t i = 0; i < n; i++)
		analyze_replay_release(&c[i].r);
	free(c);
	return st;
}

/* DB (a URL holds '=' too), then with --grid its KEY=LIST terms; the
 * algorithm: the one given, else the engine's, else the flagship. */
static int parse_replay_operands(int argc, char **argv, struct opts *o, int grid, int *status)
{
	*status = 2;
	for (int i = optind; i < argc; i++) {
		if (grid && strchr(argv[i], '=') && !strstr(argv[i], "://")) {
			if (o->ngrid < 8)
				o->grid[o->ngrid++] = argv[i];
		} else if (!o->db) {
			o->db = argv[i];
		} else {
			fputs(usage, stderr);
			return 1;
		}
	}
	if (!o->db) {
		fputs(usage, stderr);
		return 1;
	}
	if (o->engine && grid) {
		util_cli_error("replay", "--engine replays one engine: compare them with --grid "
			       "engine=%s,...", o->engine->name);
		return 1;
	}
	if (!o->algo && o->engine)
		o->algo = o->engine->algo;
	if (!o->algo)
		o->algo = analyze_algo_find(ANALYZE_FLAGSHIP) ? ANALYZE_FLAGSHIP : "eplb";
	if (!analyze_algo_find(o->algo)) {
		char hint[96];
		util_cli_error("replay", "--algo: unknown algorithm '%s'%s (moetrace place --list)",
			       o->algo, util_did_you_mean(analyze_algo_suggest(o->algo), hint, sizeof(hint)));
		return 1;
	}
	*status = 0;
	return 0;
}

/* The options and positional arguments: 0 with o (and *grid) filled, else
 * 1 with *status the exit status (0 after --help). */
static int parse_replay_args(int argc, char **argv, struct opts *o, int *grid, int *status)
{
	static const struct option lopts[] = {
		ANALYZE_LONGOPT_RUN,
		{ "algo", required_argument, NULL, 'a' },
		ANALYZE_LONGOPT_RANKS,
		ANALYZE_LONGOPT_SLOTS,
		ANALYZE_LONGOPT_REDUNDANT,
		ANALYZE_LONGOPT_NODES,
		ANALYZE_LONGOPT_GROUPS,
		{ "interval", required_argument, NULL, 'K' },
		{ "window", required_argument, NULL, 'W' },
		{ "delay", required_argument, NULL, 'D' },
		{ "threshold", required_argument, NULL, 'T' },
		{ "episodes", required_argument, NULL, 'e' },
		ANALYZE_LONGOPT_MAX_MOVES,
		{ "start", required_argument, NULL, 's' },
		{ "steps", required_argument, NULL, 'x' },
		ANALYZE_LONGOPT_PHASE,
		ANALYZE_LONGOPT_MODEL,
		ANALYZE_LONGOPT_QUANT,
		{ "link", required_argument, NULL, 'l' },
		ANALYZE_LONGOPT_BANDWIDTH,
		ANALYZE_LONGOPT_LINK_INTRA,
		ANALYZE_LONGOPT_LINK_INTER,
		ANALYZE_LONGOPT_RANKS_PER_NODE,
		{ "hardware", required_argument, NULL, OPT_HARDWARE },
		{ "step-ms", required_argument, NULL, OPT_STEP_MS },
		{ "tflops", required_argument, NULL, 't' },
		{ "us-per-token", required_argument, NULL, 'u' },
		{ "threads", required_argument, NULL, 'j' },
		{ "no-store", no_argument, NULL, 'Z' },
		{ "pay", no_argument, NULL, 'Y' },
		{ "json", no_argument, NULL, 'J' },
		{ "grid", no_argument, NULL, 'G' },
		{ "format", required_argument, NULL, 'f' },
		{ "engine", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct util_err err = UTIL_ERR_INIT;
	int c, rc;

	while ((c = getopt_long(argc, argv, "r:a:R:S:N:n:g:K:W:D:T:e:M:s:x:p:m:q:l:b:t:u:j:ZJGf:E:h",
				lopts, NULL)) != -1) {
		rc = 0;
		switch (c) {
		case 'r': o->runname = optarg; break;
		case 'a': o->algo = optarg; break;
		case 'R': rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->ranks, "--ranks", &err); break;
		case 'S': rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->slots, "--slots", &err); break;
		case 'N': rc = analyze_parse_redundant(optarg, &o->redundant, &err); break;
		case 'n': rc = util_parse_int(optarg, 1, 4096, &o->nodes, "--nodes", &err); break;
		case 'g': rc = util_parse_int(optarg, 1, STORE_MAX_EXPERTS, &o->groups, "--groups", &err); break;
		case 'K':
			rc = util_parse_i64(optarg, 0, STORE_STEP_MAX, &o->interval, "--interval", &err);
			if (!rc && o->interval == 0)
				rc = util_err_set(&err, UTIL_EUSAGE, "--interval: must be at least 1 step");
			break;
		case 'W': rc = util_parse_i64(optarg, 1, STORE_STEP_MAX, &o->window, "--window", &err); break;
		case 'D': rc = util_parse_i64(optarg, 0, STORE_STEP_MAX, &o->delay, "--delay", &err); break;
		case 'T':
			rc = util_parse_double(optarg, 0, 1e9, &o->threshold, "--threshold", &err);
			if (!rc && o->threshold < 1)
				rc = util_err_set(&err, UTIL_EUSAGE,
						  "--threshold: %s is below 1 (imbalance is max / mean >= 1)",
						  optarg);
			break;
		case 'e': rc = util_parse_int(optarg, 0, ANALYZE_MAX_EPISODES, &o->episodes, "--episodes", &err); break;
		case 'M': rc = util_parse_int(optarg, -1, STORE_MAX_SLOTS, &o->max_moves, "--max-moves", &err); break;
		case 's': o->start = optarg; break;
		case 'x': rc = util_parse_range(optarg, &o->from, &o->to, "--steps", &err); break;
		case 'p': rc = analyze_opt_phase(optarg, &o->phase_mask, &err); break;
		case 'm': rc = analyze_opt_model(optarg, &o->model, &err); break;
		case 'q': rc = analyze_opt_quant(optarg, &o->dep.quant, &err); break;
		case 'l': rc = analyze_opt_link(optarg, "--link", &o->dep.link, &err); break;
		case ANALYZE_OPT_LINK_INTRA: rc = analyze_opt_link(optarg, "--link-intra", &o->dep.link_intra, &err); break;
		case ANALYZE_OPT_LINK_INTER: rc = analyze_opt_link(optarg, "--link-inter", &o->dep.link_inter, &err); break;
		case ANALYZE_OPT_RANKS_PER_NODE: rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->dep.ranks_per_node, "--ranks-per-node", &err); break;
		case OPT_HARDWARE: rc = analyze_opt_hardware(optarg, &o->dep.hardware, &err); break;
		case OPT_STEP_MS: rc = analyze_opt_step_ms(optarg, &o->dep.step_ms, &err); break;
		case 'b': rc = util_parse_double(optarg, 1e-6, 1e6, &o->dep.bandwidth, "--bandwidth", &err); break;
		case 't': rc = util_parse_double(optarg, 1e-3, 1e6, &o->dep.tflops, "--tflops", &err); break;
		case 'u': rc = util_parse_double(optarg, 0, 1e9, &o->dep.us_per_token, "--us-per-token", &err); break;
		case 'j': rc = util_parse_int(optarg, 1, 2, &o->threads, "--threads", &err); break;
		case 'Z': o->no_store = 1; break;
		case 'Y': o->pay = 1; break;
		case 'J': o->json = 1; break;
		case 'G': *grid = 1; break;
		case 'f': o->format = optarg; break;
		case 'E':
			if (!(o->engine = analyze_engine_find(optarg)))
				rc = util_err_set(&err, UTIL_EUSAGE, "--engine: unknown engine '%s' (%s)",
						  optarg, analyze_engine_choices());
			break;
		case 'h': fputs(usage, stdout); *status = 0; return 1;
		default: *status = util_opt_unknown(argv, lopts); return 1;
		}
		if (rc) {
			*status = util_cli_fail("replay", &err);
			return 1;
		}
	}
	return parse_replay_operands(argc, argv, o, *grid, status);
}

/* The run, its model, layout and deployment, and the selected steps: 0,
 * else the exit status. */
static int replay_setup(const struct opts *o, int grid, const struct analyze_algo *algo,
			struct setup *su, int *ranks, int *slots, int64_t *nsel)
{
	struct util_err err = UTIL_ERR_INIT;

	if (store_open_run(o->db, o->runname, (o->no_store || grid) ? STORE_READONLY : 0, &su->s,
			   &su->run, &err))
		return util_cli_fail("replay", &err);
	analyze_warn_missing_counts("replay", su->s, &su->run);
	su->model = store_model_find(o->model ? o->model : su->run.model);
	if (su->model && (su->model->experts != su->run.experts)) {
		util_cli_error("replay", "--model %s has %d experts, the run %d", su->model->name,
			       su->model->experts, su->run.experts);
		return 2;
	}
	if (analyze_layout_resolve(&su->run, o->ranks, o->slots, o->redundant, ranks, slots,
				   &err) ||
	    analyze_deploy_resolve(&su->run, su->model, *ranks, &o->dep, &su->dep, &err))
		return util_cli_fail("replay", &err);
	if (analyze_step_count(su->s, &su->run, o->from, o->to, o->phase_mask, nsel, &err))
		return util_cli_fail("replay", &err);
	/* a layout the algorithm cannot fill fails here, not at its first
	 * decision after the baseline of the whole window is scored */
	if (!grid && analyze_algo_layout_check(algo, su->run.experts, *slots, &err))
		return util_cli_fail("replay", &err);
	return 0;
}

/* One replay: the engine's settings and the cadence, the start placement,
 * the replay itself, and its report. */
static int replay_one(struct opts *o, struct setup *su, const struct analyze_algo *algo,
		      int ranks, int slots, int64_t nsel)
{
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_replay_out out = { 0 };
	char start_desc[256], pj[1024];
	int32_t *start;
	int rc, status = 1;

	if (o->engine) {
		/* the engine's settings, where no option overrides them */
		if (!o->interval)
			o->interval = o->engine->interval ? o->engine->interval : su->run.layers;
		if (!o->window)
			o->window = o->engine->window;
		if (o->delay < 0)
			o->delay = o->engine->delay;
		engine_layout(o, su, ranks, &o->nodes, &o->groups);
	}
	int window_given = o->window > 0 || o->engine;
	analyze_replay_cadence(nsel, &o->interval, &o->window, &o->delay);
	if (!window_given && o->window > nsel && nsel > 1) {
		/* the window is the interval's default: name what was given */
		util_cli_error("replay",
			       "--interval %lld is longer than the trace (%lld steps selected), "
			       "and so is the window, which defaults to it",
			       (long long)o->interval, (long long)nsel);
		return 2;
	}
	start = xmallocarray((size_t)su->run.layers * (size_t)ranks * (size_t)slots,
			     sizeof(int32_t));
	if ((rc = resolve_start(su, o, ranks, slots, start, start_desc, sizeof(start_desc),
				&err))) {
		util_err_prefix(&err, "--start: ");
		status = util_cli_fail("replay", &err);
		goto out;
	}
	params_json(pj, sizeof(pj), o, su, algo, ranks, slots, o->interval, o->window,
		    o->delay, start_desc);
	struct analyze_replay_cfg cfg = {
		.algo = algo, .ranks = ranks, .slots = slots, .nodes = o->nodes, .groups = o->groups,
		.interval = o->interval, .window = o->window, .delay = o->delay,
		.threshold = o->threshold, .pay = o->pay,
		.episodes = analyze_replay_episodes(algo, o->episodes, o->window),
		.max_moves = o->max_moves,
		.move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE,
		.seed = ANALYZE_DEFAULT_SEED, .from = o->from, .to = o->to, .phase_mask = o->phase_mask, .start = start,
		.deploy = &su->dep, .engine = o->engine ? o->engine->name : NULL,
		.threads = o->threads, .store = !o->no_store, .params_json = pj,
	};
	if ((rc = analyze_replay_run(su->s, &su->run, &cfg, &out, &err))) {
		if (o->engine && rc == UTIL_EUSAGE)
			util_err_prefix(&err, "--engine %s: ", o->engine->name);
		status = util_cli_fail("replay", &err);
		goto out;
	}
	if (o->json)
		print_json(su, &out);
	else
		print_text(su, &out, start_desc, o->pay, o->engine);
	status = 0;
out:
	analyze_replay_release(&out);
	free(start);
	return status;
}

int cmd_replay(int argc, char **argv)
{
	struct opts o = { .max_moves = -1, .threads = 2, .delay = -1, .episodes = -1,
			  .from = INT64_MIN, .to = INT64_MAX, .dep = ANALYZE_DEPLOY_OPTS_INIT };
	struct setup su = { 0 };
	const struct analyze_algo *algo;
	int status, grid = 0, ranks = 0, slots = 0;
	int64_t nsel = 0;

	if (parse_replay_args(argc, argv, &o, &grid, &status))
		return status;
	algo = analyze_algo_find(o.algo);
	status = replay_setup(&o, grid, algo, &su, &ranks, &slots, &nsel);
	if (!status)
		status = grid ? run_grid(&o, &su, ranks, slots, nsel)
			      : replay_one(&o, &su, algo, ranks, slots, nsel);
	store_free(su.s);
	return status;
}

int cmd_replays(int argc, char **argv)
{
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_replay *v;
	size_t n;
	int json = argc > 2 && !strcmp(argv[1], "--json");
	const char *db = argv[argc - 1];

	if (argc < 2 || argc > 3 || (argc == 3 && !json) || !strcmp(argv[1], "--help")) {
		fputs("usage: moetrace replays [--json] DB\n", argc == 2 ? stdout : stderr);
		return argc == 2 ? 0 : 2;
	}
	if (store_open(db, STORE_READONLY, &s, &err))
		return util_cli_fail("replays", &err);
	if (store_replay_list(s, -1, &v, &n)) {
		util_cli_error("replays", "%s", store_errmsg(s));
		store_free(s);
		return 1;
	}
	if (json)
		printf("[");
	else if (n)
		printf("%6s %5s %-8s %11s %8s %7s %6s %3s %-5s %-24s %9s %9s %7s %8s %11s\n", "replay",
		       "run", "algo", "layout", "interval", "window", "delay", "pay", "quant",
		       "links (intra/inter)", "baseline", "imb-mean", "events", "copies",
		       "net-overlap");
	else
		printf("no replays in '%s' (moetrace replay stores one)\n", db);
	for (size_t i = 0; i < n; i++) {
		const struct store_replay *r = &v[i];
		char lay[32], links[72], tb[32], bytes[24], binter[24], saved[24], nst[24], nov[24];
		/* a replay without a model stored 0 for what it could not know:
		 * the copies' bytes (no expert size) and times (no time model) */
		int sized = r->quant[0] || !r->moves;
		int timed = r->baseline_moe_seconds > 0 || !r->steps;
		snprintf(bytes, sizeof(bytes), sized ? "%lld" : "null", (long long)r->bytes);
		snprintf(binter, sizeof(binter), sized ? "%lld" : "null", (long long)r->bytes_inter);
		jfmt(saved, sizeof(saved), "%.6f", r->saved_seconds, timed);
		jfmt(nst, sizeof(nst), "%.6f", r->net_stop_seconds, sized && timed);
		jfmt(nov, sizeof(nov), "%.6f", r->net_overlap_seconds, sized && timed);
		if (r->ranks_per_node > 0 && r->ranks_per_node < r->ranks)
			snprintf(lay, sizeof(lay), "%dx%dx%d", r->ranks / r->ranks_per_node,
				 r->ranks_per_node, r->slots);
		else
			snprintf(lay, sizeof(lay), "%dx%d", r->ranks, r->slots);
		snprintf(links, sizeof(links), "%s/%s", r->link_intra[0] ? r->link_intra : "?",
			 r->link_inter[0] ? r->link_inter : "?");
		if (json)
			printf("%s\n {\"replay\": %lld, \"run\": %lld, \"algo\": \"%s\", \"ranks\": %d, "
			       "\"slots\": %d, \"interval\": %lld, \"window\": %lld, \"delay\": %lld, "
			       "\"threshold\": %g, \"episodes\": %d, \"max_moves\": %d, \"pay\": %s, "
			       "\"quant\": \"%s\", \"ranks_per_node\": %d, \"link_intra\": \"%s\", "
			       "\"link_inter\": \"%s\", \"hardware\": \"%s\", \"engine\": \"%s\", "
			       "\"step_ms\": %g, "
			       "\"steps\": %lld, \"imbalance_mean\": %.6f, "
			       "\"baseline_imbalance_mean\": %.6f, \"events\": %lld, \"moves\": %lld, "
			       "\"bytes\": %s, \"bytes_inter_node\": %s, \"tokens\": %lld, "
			       "\"saved_seconds\": %s, \"net_stop_seconds\": %s, "
			       "\"net_overlap_seconds\": %s, \"params\": %s}",
			       i ? "," : "", (long long)r->id, (long long)r->run, r->algo, r->ranks,
			       r->slots, (long long)r->interval, (long long)r->window,
			       (long long)r->delay, r->threshold, r->episodes, r->max_moves,
			       r->pay ? "true" : "false", r->quant, r->ranks_per_node, r->link_intra,
			       r->link_inter, r->hardware, r->engine, r->step_ms, (long long)r->steps,
			       r->imbalance_mean, r->baseline_imbalance_mean, (long long)r->events,
			       (long long)r->moves, bytes, binter, (long long)r->tokens, saved, nst,
			       nov, r->params);
		else
			printf("%6lld %5lld %-8s %11s %8lld %7lld %6lld %3s %-5s %-24s %9.3f %9.3f %7lld "
			       "%8lld %11s\n",
			       (long long)r->id, (long long)r->run, r->algo, lay, (long long)r->interval,
			       (long long)r->window, (long long)r->delay, r->pay ? "yes" : "no",
			       r->quant[0] ? r->quant : "?", links, r->baseline_imbalance_mean,
			       r->imbalance_mean, (long long)r->events, (long long)r->moves,
			       sized && timed ? util_human_seconds(tb, sizeof(tb), r->net_overlap_seconds)
					      : "-");
	}
	if (n && !json)
		printf("layout: [nodes x] ranks x slots; net-overlap: MoE time saved less the "
		       "transfers not hidden behind the delay (stop-the-world in --json)\n");
	if (json)
		printf("]\n");
	free(v);
	store_free(s);
	return 0;
}

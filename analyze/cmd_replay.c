/*
 * cmd_replay.c: `moetrace replay DB` runs dynamic load balancing over a
 * recorded trace (analyze/replay.c) and prints and stores what it would
 * have bought; `--grid` runs combinations and ranks them; `moetrace
 * replays DB` lists the stored replays.
 */
#include "analyze/analyze.h"
#include "cmds.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: moetrace replay DB [--run NAME] [--algo NAME] [--ranks R]\n"
	"         [--slots S | --redundant N] [--nodes N --groups G]\n"
	"         [--interval K] [--window W] [--delay D] [--threshold T] [--pay] [--episodes N]\n"
	"         [--max-moves M] [--start static|FILE] [--steps A:B] [--phase prefill|decode]\n"
	"         [--model PRESET] [--quant bf16|fp8|w8a8|w4a8] [--link NAME | --bandwidth GB/s]\n"
	"         [--tflops T | --us-per-token U] [--threads 1|2] [--no-store] [--json]\n"
	"         [--grid algos=A,B redundant=0,32 interval=500,2000 window=... delay=... pay=no,yes\n"
	"          [--format table|csv|json|markdown]]\n"
	"Defaults: the flagship algorithm, the run's EP layout, --interval 600 --window 600\n"
	"--delay 50 (vllm-ascend's expert_heat_collection_interval and\n"
	"algorithm_execution_interval), start from the deployed placement (else static),\n"
	"--quant bf16, --link nvlink4, --tflops 400.\n";

struct opts {
	const char *db, *runname, *algo, *start, *model, *quant, *link, *format;
	int ranks, slots, redundant, nodes, groups, episodes, max_moves, threads, json, no_store;
	int pay;
	int64_t interval, window, delay, from, to;
	double threshold, bandwidth, tflops, us_per_token;
	unsigned phase_mask;
	char *grid[8];
	int ngrid;
};

/* Everything a replay needs besides the algorithm and layout. */
struct setup {
	struct store *s;
	struct store_run run;
	const struct store_model *model;
	uint64_t expert_bytes;
	double gbps, spt;
	const char *link_name;
};

static int resolve_start(struct setup *su, const struct opts *o, int ranks, int slots,
			 int32_t *start, char *desc, size_t ndesc, struct util_err *err)
{
	int L = su->run.layers, P = ranks * slots;
	int64_t eff;

	if (o->start && strcmp(o->start, "static")) {
		struct analyze_shape sh = { L, su->run.experts, ranks, slots, su->run.first_layer,
					    su->model ? su->model->layer_step : 1 };
		if (analyze_format_read(o->start, &sh, start, NULL, err))
			return UTIL_EUSAGE;
		snprintf(desc, ndesc, "%s", o->start);
		return 0;
	}
	if (!o->start) {
		int rc = store_deployed_at(su->s, &su->run, o->from == INT64_MIN ? INT64_MAX : o->from,
					   ranks, slots, start, &eff);
		if (rc == 0) {
			snprintf(desc, ndesc, "deployed (from step %lld)", (long long)eff);
			return 0;
		}
		if (rc != UTIL_ENOTFOUND && rc != UTIL_ERANGE)
			return util_err_set(err, rc, "%s", store_errmsg(su->s));
	}
	for (int l = 0; l < L; l++)
		analyze_static_phy2log(su->run.experts, ranks, slots, start + (size_t)l * P);
	snprintf(desc, ndesc, "static");
	return 0;
}

/* --episodes as given, else ANALYZE_REPLAY_EPISODES of the window */
static int replay_episodes(int given, int64_t window)
{
	if (given >= 0)
		return given;
	return window < ANALYZE_REPLAY_EPISODES ? (int)window : ANALYZE_REPLAY_EPISODES;
}

static void params_json(char *buf, size_t n, const struct opts *o, const struct setup *su,
			const char *algo, int ranks, int slots, int64_t K, int64_t W, int64_t D,
			const char *start_desc)
{
	snprintf(buf, n,
		 "{\"algo\": \"%s\", \"ranks\": %d, \"slots\": %d, \"interval\": %lld, "
		 "\"window\": %lld, \"delay\": %lld, \"threshold\": %g, \"episodes\": %d, "
		 "\"max_moves\": %d, \"start\": \"%s\", \"model\": \"%s\", \"quant\": \"%s\", "
		 "\"link\": \"%s\", \"gbytes_per_s\": %g, \"expert_bytes\": %llu, "
		 "\"sec_per_token\": %g, \"phase_mask\": %u, \"pay\": %s}",
		 algo, ranks, slots, (long long)K, (long long)W, (long long)D, o->threshold,
		 replay_episodes(o->episodes, W), o->max_moves, start_desc, su->model ? su->model->name : "",
		 o->quant ? o->quant : "bf16", su->link_name, su->gbps,
		 (unsigned long long)su->expert_bytes, su->spt, o->phase_mask,
		 o->pay ? "true" : "false");
}

static const char *human_bytes(char *b, size_t n, double v)
{
	const char *u[] = { "B", "KB", "MB", "GB", "TB" };
	int i = 0;

	while (v >= 1000 && i < 4) {
		v /= 1000;
		i++;
	}
	snprintf(b, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
	return b;
}

static void print_text(const struct setup *su, const struct analyze_replay_out *r,
		       const char *start_desc, int pay)
{
	const struct store_replay *m = &r->sum;
	char b1[32];

	char idb[32] = "";
	if (m->id)
		snprintf(idb, sizeof(idb), " %lld", (long long)m->id);
	printf("replay%s of run '%s': %s, %d ranks x %d slots, every %lld steps on a window "
	       "of %lld, effect %lld steps later%s\n",
	       idb, su->run.name, m->algo, m->ranks, m->slots,
	       (long long)m->interval, (long long)m->window, (long long)m->delay,
	       m->id ? "" : " (not stored)");
	if (m->threshold > 0)
		printf("only layers whose window imbalance exceeds %.3f are re-placed\n", m->threshold);
	if (pay)
		printf("only moves predicted to save more straggler time by the next rebalance than "
		       "their transfer takes are made\n");
	printf("start: %s; %lld steps scored under the placement in force\n\n", start_desc,
	       (long long)m->steps);
	printf("%-28s %10s %10s\n", "", "baseline", "replay");
	printf("%-28s %10.3f %10.3f\n", "imbalance, mean over steps", m->baseline_imbalance_mean,
	       m->imbalance_mean);
	printf("%-28s %10.3f %10.3f\n", "imbalance, p99 over steps", m->baseline_imbalance_p99,
	       m->imbalance_p99);
	printf("\nrebalances %lld, copies %lld, %s moved, %.3f s of transfer on %s\n",
	       (long long)m->events, (long long)m->moves, human_bytes(b1, sizeof(b1), (double)m->bytes),
	       m->transfer_seconds, su->link_name);
	if (su->spt > 0) {
		printf("MoE straggler time saved %.3f s (time follows the max device load)\n",
		       m->saved_seconds);
		printf("net of transfers: %.3f s stop-the-world, %.3f s overlapped\n",
		       m->net_stop_seconds, m->net_overlap_seconds);
	} else {
		printf("(no model preset: give --model or --us-per-token for time estimates)\n");
	}
	printf("algorithm time %.3f s, replay %.3f s\n", r->algo_seconds, r->wall_seconds);
	if (r->n_events) {
		printf("\n%6s %10s %10s %7s %8s %10s %9s\n", "event", "decided", "effective", "layers",
		       "copies", "bytes", "transfer");
		for (size_t i = 0; i < r->n_events; i++) {
			const struct store_replay_event *e = &r->events[i];
			printf("%6lld %10lld %10lld %7d %8lld %10s %8.3fs\n", (long long)e->event,
			       (long long)e->step, (long long)e->effective_step, e->layers,
			       (long long)e->moves, human_bytes(b1, sizeof(b1), (double)e->bytes),
			       e->transfer_seconds);
		}
	}
	printf("\n%5s %9s %9s %9s %9s %8s\n", "layer", "base-mean", "mean", "base-p99", "p99",
	       "copies");
	for (int l = 0; l < r->layers; l++) {
		const struct analyze_replay_layer *y = &r->layer[l];
		printf("%5d %9.3f %9.3f %9.3f %9.3f %8lld\n", l, y->base_mean, y->mean, y->base_p99,
		       y->p99, (long long)y->moves);
	}
}

static void print_json(const struct setup *su, const struct analyze_replay_out *r)
{
	const struct store_replay *m = &r->sum;

	printf("{\"replay\": %lld, \"run\": \"%s\", \"params\": %s,\n", (long long)m->id,
	       su->run.name, m->params);
	printf(" \"summary\": {\"steps\": %lld, \"imbalance_mean\": %.6f, "
	       "\"baseline_imbalance_mean\": %.6f, \"imbalance_p99\": %.6f, "
	       "\"baseline_imbalance_p99\": %.6f, \"events\": %lld, \"moves\": %lld, "
	       "\"bytes\": %lld, \"transfer_seconds\": %.6f, \"saved_seconds\": %.6f, "
	       "\"net_stop_seconds\": %.6f, \"net_overlap_seconds\": %.6f, "
	       "\"algo_seconds\": %.6f, \"wall_seconds\": %.6f},\n",
	       (long long)m->steps, m->imbalance_mean, m->baseline_imbalance_mean,
	       m->imbalance_p99, m->baseline_imbalance_p99, (long long)m->events,
	       (long long)m->moves, (long long)m->bytes, m->transfer_seconds, m->saved_seconds,
	       m->net_stop_seconds, m->net_overlap_seconds, r->algo_seconds, r->wall_seconds);
	printf(" \"events\": [");
	for (size_t i = 0; i < r->n_events; i++) {
		const struct store_replay_event *e = &r->events[i];
		printf("%s\n  {\"event\": %lld, \"step\": %lld, \"effective_step\": %lld, "
		       "\"layers\": %d, \"moves\": %lld, \"bytes\": %lld, \"transfer_seconds\": %.6f, "
		       "\"algo_seconds\": %.6f}",
		       i ? "," : "", (long long)e->event, (long long)e->step,
		       (long long)e->effective_step, e->layers, (long long)e->moves,
		       (long long)e->bytes, e->transfer_seconds, e->algo_seconds);
	}
	printf("],\n \"layers\": [");
	for (int l = 0; l < r->layers; l++) {
		const struct analyze_replay_layer *y = &r->layer[l];
		printf("%s\n  {\"layer\": %d, \"imbalance_mean\": %.6f, \"imbalance_p99\": %.6f, "
		       "\"baseline_imbalance_mean\": %.6f, \"baseline_imbalance_p99\": %.6f, "
		       "\"moves\": %lld}",
		       l ? "," : "", l, y->mean, y->p99, y->base_mean, y->base_p99,
		       (long long)y->moves);
	}
	printf("]}\n");
}

/* ---- grid ------------------------------------------------------------------ */

struct combo {
	const struct analyze_algo *algo;
	int redundant, slots, pay;
	int64_t interval, window, delay;
	struct analyze_replay_out r;
	int rc;
	struct util_err err;
};

struct grid {
	const struct opts *o;
	const char *db;
	struct store_run run;
	int ranks;
	struct setup su0;
	struct combo *c;
	size_t n, next;
	pthread_mutex_t mu;
};

static int split_list(const char *s, char out[][64], int max)
{
	int n = 0;
	const char *p = s;

	while (*p && n < max) {
		const char *q = strchr(p, ',');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if (len >= 64)
			len = 63;
		memcpy(out[n], p, len);
		out[n][len] = 0;
		n++;
		if (!q)
			break;
		p = q + 1;
	}
	return n;
}

static void *grid_worker(void *arg)
{
	struct grid *g = arg;
	struct store *s = NULL;
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run;

	if (store_open_run(g->db, g->o->runname, STORE_READONLY, &s, &run, &err)) {
		pthread_mutex_lock(&g->mu);
		for (size_t i = g->next; i < g->n; i++) {
			g->c[i].rc = err.code;
			g->c[i].err = err;
		}
		g->next = g->n;
		pthread_mutex_unlock(&g->mu);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&g->mu);
		size_t i = g->next++;
		pthread_mutex_unlock(&g->mu);
		if (i >= g->n)
			break;
		struct combo *c = &g->c[i];
		int P = g->ranks * c->slots, L = run.layers;
		int32_t *start = malloc((size_t)L * (size_t)P * sizeof(int32_t));
		char desc[256];
		struct setup su = g->su0;
		su.s = s;
		su.run = run;
		if (!start) {
			c->rc = util_err_set(&c->err, UTIL_ENOMEM, "out of memory");
			continue;
		}
		c->rc = resolve_start(&su, g->o, g->ranks, c->slots, start, desc, sizeof(desc),
				      &c->err);
		if (!c->rc) {
			struct analyze_replay_cfg cfg = {
				.algo = c->algo, .ranks = g->ranks, .slots = c->slots,
				.nodes = g->o->nodes, .groups = g->o->groups,
				.interval = c->interval, .window = c->window, .delay = c->delay,
				.threshold = g->o->threshold, .pay = c->pay,
				.episodes = replay_episodes(g->o->episodes, c->window),
				.max_moves = g->o->max_moves,
				.move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE, .seed = 1,
				.from = g->o->from,
				.to = g->o->to, .phase_mask = g->o->phase_mask, .start = start,
				.expert_bytes = su.expert_bytes, .gbytes_per_s = su.gbps,
				.sec_per_token = su.spt, .threads = 1, .store = 0,
			};
			c->rc = analyze_replay_run(s, &run, &cfg, &c->r, &c->err);
		}
		free(start);
	}
	store_free(s);
	return NULL;
}

static int cmp_combo(const void *a, const void *b)
{
	const struct combo *x = a, *y = b;
	double dx = x->r.sum.imbalance_mean, dy = y->r.sum.imbalance_mean;

	if (dx != dy)
		return dx < dy ? -1 : 1;
	return (x->r.sum.moves > y->r.sum.moves) - (x->r.sum.moves < y->r.sum.moves);
}

static int run_grid(struct opts *o, struct setup *su, int ranks, int slots)
{
	char algos[16][64], reds[16][64], ints[16][64], wins[16][64], dels[16][64], pays[2][64];
	int na = 0, nr = 0, ni = 0, nw = 0, nd = 0, np = 0;
	struct util_err err = UTIL_ERR_INIT;
	const char *fmt = o->format ? o->format : "table";
	int E = su->run.experts;

	for (int i = 0; i < o->ngrid; i++) {
		char *eq = strchr(o->grid[i], '=');
		if (!eq) {
			util_cli_error("replay", "--grid: '%s' is not KEY=V1,V2,...", o->grid[i]);
			return 2;
		}
		*eq = 0;
		const char *k = o->grid[i], *v = eq + 1;
		if (!strcmp(k, "algos") || !strcmp(k, "algo"))
			na = split_list(v, algos, 16);
		else if (!strcmp(k, "redundant"))
			nr = split_list(v, reds, 16);
		else if (!strcmp(k, "interval"))
			ni = split_list(v, ints, 16);
		else if (!strcmp(k, "window"))
			nw = split_list(v, wins, 16);
		else if (!strcmp(k, "delay"))
			nd = split_list(v, dels, 16);
		else if (!strcmp(k, "pay")) {
			np = split_list(v, pays, 2);
			for (int j = 0; j < np; j++)
				if (strcmp(pays[j], "no") && strcmp(pays[j], "yes")) {
					util_cli_error("replay", "--grid pay=%s: not no or yes", pays[j]);
					return 2;
				}
		} else {
			util_cli_error("replay", "--grid: unknown key '%s' (algos, redundant, "
				       "interval, window, delay, pay)", k);
			return 2;
		}
	}
	if (strcmp(fmt, "table") && strcmp(fmt, "csv") && strcmp(fmt, "json") &&
	    strcmp(fmt, "markdown")) {
		util_cli_error("replay", "--format: '%s' is not table, csv, json or markdown", fmt);
		return 2;
	}
	if (!na)
		snprintf(algos[na++], 64, "%s", o->algo);
	if (!nr)
		snprintf(reds[nr++], 64, "%d", ranks * slots - E);
	if (!ni)
		snprintf(ints[ni++], 64, "%lld", (long long)o->interval);
	if (!np)
		snprintf(pays[np++], 64, "%s", o->pay ? "yes" : "no");
	size_t n = (size_t)na * nr * ni * (nw ? nw : 1) * (nd ? nd : 1) * np;
	struct combo *c = calloc(n, sizeof(*c));
	size_t k = 0;
	for (int a = 0; a < na; a++)
		for (int r = 0; r < nr; r++)
			for (int i = 0; i < ni; i++)
				for (int w = 0; w < (nw ? nw : 1); w++)
					for (int d = 0; d < (nd ? nd : 1) * np; d++) {
						struct combo *x = &c[k++];
						int red;
						x->pay = !strcmp(pays[d % np], "yes");
						x->algo = analyze_algo_find(algos[a]);
						if (!x->algo) {
							util_cli_error("replay", "--grid: unknown algorithm '%s'",
								       algos[a]);
							free(c);
							return 2;
						}
						if (util_parse_int(reds[r], 0, STORE_MAX_SLOTS, &red, "--grid redundant", &err) ||
						    util_parse_i64(ints[i], 1, INT64_MAX, &x->interval, "--grid interval", &err) ||
						    (nw && util_parse_i64(wins[w], 1, INT64_MAX, &x->window, "--grid window", &err)) ||
						    (nd && util_parse_i64(dels[d / np], 0, INT64_MAX, &x->delay, "--grid delay", &err))) {
							free(c);
							return util_cli_fail("replay", &err);
						}
						if ((E + red) % ranks) {
							util_cli_error("replay", "--grid redundant=%d: %d experts + %d is not a multiple of %d ranks",
								       red, E, red, ranks);
							free(c);
							return 2;
						}
						x->redundant = red;
						x->slots = (E + red) / ranks;
						if (!nw)
							x->window = o->window ? o->window : x->interval;
						if (!nd)
							x->delay = o->delay >= 0 ? o->delay
								   : (x->interval > 50 ? 50 : x->interval / 2);
					}
	struct grid g = { .o = o, .db = o->db, .run = su->run, .ranks = ranks, .su0 = *su,
			  .c = c, .n = n };
	pthread_mutex_init(&g.mu, NULL);
	pthread_t tid;
	int two = o->threads != 1 && n > 1 && pthread_create(&tid, NULL, grid_worker, &g) == 0;
	grid_worker(&g);
	if (two)
		pthread_join(tid, NULL);
	pthread_mutex_destroy(&g.mu);
	for (size_t i = 0; i < n; i++)
		if (c[i].rc) {
			int st = util_cli_fail("replay", &c[i].err);
			for (size_t j = 0; j < n; j++)
				analyze_replay_release(&c[j].r);
			free(c);
			return st;
		}
	qsort(c, n, sizeof(*c), cmp_combo);
	int md = !strcmp(fmt, "markdown"), csv = !strcmp(fmt, "csv"), js = !strcmp(fmt, "json");
	if (js)
		printf("[");
	else if (csv)
		printf("rank,algo,redundant,slots,interval,window,delay,pay,imbalance_mean,"
		       "baseline_imbalance_mean,imbalance_p99,events,moves,bytes,transfer_seconds,"
		       "saved_seconds,net_overlap_seconds\n");
	else if (md)
		printf("| # | algo | redundant | interval | window | delay | pay | imbalance mean | p99 | "
		       "baseline | copies | GB moved | transfer s | net saved s |\n"
		       "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	else
		printf("%3s %-8s %9s %8s %7s %6s %4s %9s %7s %9s %8s %9s %9s %10s\n", "#", "algo",
		       "redundant", "interval", "window", "delay", "pay", "imb-mean", "p99", "baseline",
		       "copies", "GB moved", "transfer", "net-saved");
	for (size_t i = 0; i < n; i++) {
		const struct combo *x = &c[i];
		const struct store_replay *m = &x->r.sum;
		if (js)
			printf("%s\n {\"rank\": %zu, \"algo\": \"%s\", \"redundant\": %d, \"slots\": %d, "
			       "\"interval\": %lld, \"window\": %lld, \"delay\": %lld, \"pay\": %s, "
			       "\"imbalance_mean\": %.6f, \"baseline_imbalance_mean\": %.6f, "
			       "\"imbalance_p99\": %.6f, \"events\": %lld, \"moves\": %lld, "
			       "\"bytes\": %lld, \"transfer_seconds\": %.6f, \"saved_seconds\": %.6f, "
			       "\"net_overlap_seconds\": %.6f}",
			       i ? "," : "", i + 1, x->algo->name, x->redundant, x->slots,
			       (long long)x->interval, (long long)x->window, (long long)x->delay,
			       x->pay ? "true" : "false", m->imbalance_mean,
			       m->baseline_imbalance_mean, m->imbalance_p99, (long long)m->events, (long long)m->moves, (long long)m->bytes,
			       m->transfer_seconds, m->saved_seconds, m->net_overlap_seconds);
		else if (csv)
			printf("%zu,%s,%d,%d,%lld,%lld,%lld,%s,%.6f,%.6f,%.6f,%lld,%lld,%lld,%.6f,%.6f,%.6f\n",
			       i + 1, x->algo->name, x->redundant, x->slots, (long long)x->interval,
			       (long long)x->window, (long long)x->delay, x->pay ? "yes" : "no",
			       m->imbalance_mean,
			       m->baseline_imbalance_mean, m->imbalance_p99, (long long)m->events,
			       (long long)m->moves, (long long)m->bytes, m->transfer_seconds,
			       m->saved_seconds, m->net_overlap_seconds);
		else if (md)
			printf("| %zu | %s | %d | %lld | %lld | %lld | %s | %.3f | %.3f | %.3f | %lld | %.1f | "
			       "%.2f | %.2f |\n",
			       i + 1, x->algo->name, x->redundant, (long long)x->interval,
			       (long long)x->window, (long long)x->delay, x->pay ? "yes" : "no",
			       m->imbalance_mean,
			       m->imbalance_p99, m->baseline_imbalance_mean, (long long)m->moves,
			       (double)m->bytes / 1e9, m->transfer_seconds, m->net_overlap_seconds);
		else
			printf("%3zu %-8s %9d %8lld %7lld %6lld %4s %9.3f %7.3f %9.3f %8lld %9.1f %8.2fs "
			       "%9.2fs\n",
			       i + 1, x->algo->name, x->redundant, (long long)x->interval,
			       (long long)x->window, (long long)x->delay, x->pay ? "yes" : "no",
			       m->imbalance_mean,
			       m->imbalance_p99, m->baseline_imbalance_mean, (long long)m->moves,
			       (double)m->bytes / 1e9, m->transfer_seconds, m->net_overlap_seconds);
	}
	if (js)
		printf("]\n");
	else if (!csv && !md)
		printf("\nranked by mean imbalance over steps, then copies; not stored "
		       "(run one combination without --grid to store it)\n");
	for (size_t i = 0; i < n; i++)
		analyze_replay_release(&c[i].r);
	free(c);
	return 0;
}

int cmd_replay(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "run", required_argument, NULL, 'r' },
		{ "algo", required_argument, NULL, 'a' },
		{ "ranks", required_argument, NULL, 'R' },
		{ "slots", required_argument, NULL, 'S' },
		{ "redundant", required_argument, NULL, 'N' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "groups", required_argument, NULL, 'g' },
		{ "interval", required_argument, NULL, 'K' },
		{ "window", required_argument, NULL, 'W' },
		{ "delay", required_argument, NULL, 'D' },
		{ "threshold", required_argument, NULL, 'T' },
		{ "episodes", required_argument, NULL, 'e' },
		{ "max-moves", required_argument, NULL, 'M' },
		{ "start", required_argument, NULL, 's' },
		{ "steps", required_argument, NULL, 'x' },
		{ "phase", required_argument, NULL, 'p' },
		{ "model", required_argument, NULL, 'm' },
		{ "quant", required_argument, NULL, 'q' },
		{ "link", required_argument, NULL, 'l' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "tflops", required_argument, NULL, 't' },
		{ "us-per-token", required_argument, NULL, 'u' },
		{ "threads", required_argument, NULL, 'j' },
		{ "no-store", no_argument, NULL, 'Z' },
		{ "pay", no_argument, NULL, 'Y' },
		{ "json", no_argument, NULL, 'J' },
		{ "grid", no_argument, NULL, 'G' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .max_moves = -1, .threads = 2, .interval = 600, .delay = -1, .episodes = -1,
			  .from = INT64_MIN, .to = INT64_MAX, .tflops = 400 };
	struct util_err err = UTIL_ERR_INIT;
	struct setup su = { 0 };
	int c, rc, status = 1, grid = 0, interval_set = 0, quant = ANALYZE_QUANT_BF16;
	int32_t *start = NULL;
	struct analyze_replay_out out = { 0 };

	while ((c = getopt_long(argc, argv, "r:a:R:S:N:n:g:K:W:D:T:e:M:s:x:p:m:q:l:b:t:u:j:ZJGf:h",
				lopts, NULL)) != -1) {
		rc = 0;
		switch (c) {
		case 'r': o.runname = optarg; break;
		case 'a': o.algo = optarg; break;
		case 'R': rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o.ranks, "--ranks", &err); break;
		case 'S': rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o.slots, "--slots", &err); break;
		case 'N': rc = util_parse_int(optarg, 0, STORE_MAX_SLOTS, &o.redundant, "--redundant", &err); break;
		case 'n': rc = util_parse_int(optarg, 1, 4096, &o.nodes, "--nodes", &err); break;
		case 'g': rc = util_parse_int(optarg, 1, STORE_MAX_EXPERTS, &o.groups, "--groups", &err); break;
		case 'K':
			rc = util_parse_i64(optarg, 0, INT64_MAX, &o.interval, "--interval", &err);
			interval_set = 1;
			if (!rc && o.interval == 0)
				rc = util_err_set(&err, UTIL_EUSAGE, "--interval: must be at least 1 step");
			break;
		case 'W': rc = util_parse_i64(optarg, 1, INT64_MAX, &o.window, "--window", &err); break;
		case 'D': rc = util_parse_i64(optarg, 0, INT64_MAX, &o.delay, "--delay", &err); break;
		case 'T':
			rc = util_parse_double(optarg, 0, 1e9, &o.threshold, "--threshold", &err);
			if (!rc && o.threshold < 1)
				rc = util_err_set(&err, UTIL_EUSAGE,
						  "--threshold: %s is below 1 (imbalance is max / mean >= 1)",
						  optarg);
			break;
		case 'e': rc = util_parse_int(optarg, 0, ANALYZE_MAX_EPISODES, &o.episodes, "--episodes", &err); break;
		case 'M': rc = util_parse_int(optarg, -1, STORE_MAX_SLOTS, &o.max_moves, "--max-moves", &err); break;
		case 's': o.start = optarg; break;
		case 'x': rc = util_parse_range(optarg, &o.from, &o.to, "--steps", &err); break;
		case 'p': rc = analyze_opt_phase(optarg, &o.phase_mask, &err); break;
		case 'm': rc = analyze_opt_model(optarg, &o.model, &err); break;
		case 'q': rc = analyze_opt_quant(optarg, &quant, &err); o.quant = optarg; break;
		case 'l': rc = analyze_opt_link(optarg, &o.link, &err); break;
		case 'b': rc = util_parse_double(optarg, 1e-6, 1e6, &o.bandwidth, "--bandwidth", &err); break;
		case 't': rc = util_parse_double(optarg, 1e-3, 1e6, &o.tflops, "--tflops", &err); break;
		case 'u': rc = util_parse_double(optarg, 0, 1e9, &o.us_per_token, "--us-per-token", &err); break;
		case 'j': rc = util_parse_int(optarg, 1, 2, &o.threads, "--threads", &err); break;
		case 'Z': o.no_store = 1; break;
		case 'Y': o.pay = 1; break;
		case 'J': o.json = 1; break;
		case 'G': grid = 1; break;
		case 'f': o.format = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
		if (rc)
			return util_cli_fail("replay", &err);
	}
	(void)interval_set;
	/* positional: DB, then (with --grid) KEY=LIST terms */
	for (int i = optind; i < argc; i++) {
		if (grid && strchr(argv[i], '=')) {
			if (o.ngrid < 8)
				o.grid[o.ngrid++] = argv[i];
		} else if (!o.db) {
			o.db = argv[i];
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!o.db) {
		fputs(usage, stderr);
		return 2;
	}
	if (!o.algo)
		o.algo = analyze_algo_find(ANALYZE_FLAGSHIP) ? ANALYZE_FLAGSHIP : "eplb";
	const struct analyze_algo *algo = analyze_algo_find(o.algo);
	if (!algo) {
		util_cli_error("replay", "--algo: unknown algorithm '%s' (moetrace place --list)",
			       o.algo);
		return 2;
	}
	const struct analyze_link *link = analyze_link_find(o.link ? o.link : "nvlink4");
	if (store_open_run(o.db, o.runname, (o.no_store || grid) ? STORE_READONLY : 0, &su.s,
			   &su.run, &err))
		return util_cli_fail("replay", &err);
	su.model = store_model_find(o.model ? o.model : su.run.model);
	if (su.model && (su.model->experts != su.run.experts)) {
		util_cli_error("replay", "--model %s has %d experts, the run %d", su.model->name,
			       su.model->experts, su.run.experts);
		status = 2;
		goto out;
	}
	su.expert_bytes = su.model ? analyze_expert_bytes(su.model->hidden, su.model->inter, quant) : 0;
	su.gbps = o.bandwidth > 0 ? o.bandwidth : link->gbytes_per_s;
	su.link_name = o.bandwidth > 0 ? "the given bandwidth" : link->name;
	if (o.us_per_token > 0)
		su.spt = o.us_per_token * 1e-6;
	else if (su.model)
		/* 3 GEMMs of hidden x inter, 2 FLOPs per multiply-add, per routed token */
		su.spt = 6.0 * su.model->hidden * su.model->inter / (o.tflops * 1e12);
	int ranks, slots;
	if (analyze_layout_resolve(&su.run, o.ranks, o.slots, o.redundant, &ranks, &slots, &err)) {
		status = util_cli_fail("replay", &err);
		goto out;
	}
	if (grid) {
		status = run_grid(&o, &su, ranks, slots);
		goto out;
	}
	if (!o.window)
		o.window = o.interval;
	if (o.delay < 0)
		o.delay = o.interval > 50 ? 50 : o.interval / 2;
	start = xmallocarray((size_t)su.run.layers * (size_t)ranks * (size_t)slots, sizeof(int32_t));
	char start_desc[256], pj[1024];
	if ((rc = resolve_start(&su, &o, ranks, slots, start, start_desc, sizeof(start_desc), &err))) {
		util_err_prefix(&err, "--start: ");
		status = util_cli_fail("replay", &err);
		goto out;
	}
	params_json(pj, sizeof(pj), &o, &su, algo->name, ranks, slots, o.interval, o.window,
		    o.delay, start_desc);
	struct analyze_replay_cfg cfg = {
		.algo = algo, .ranks = ranks, .slots = slots, .nodes = o.nodes, .groups = o.groups,
		.interval = o.interval, .window = o.window, .delay = o.delay,
		.threshold = o.threshold, .pay = o.pay,
		.episodes = replay_episodes(o.episodes, o.window),
		.max_moves = o.max_moves,
		.move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE,
		.seed = 1, .from = o.from, .to = o.to, .phase_mask = o.phase_mask, .start = start,
		.expert_bytes = su.expert_bytes, .gbytes_per_s = su.gbps, .sec_per_token = su.spt,
		.threads = o.threads, .store = !o.no_store, .params_json = pj,
	};
	if ((rc = analyze_replay_run(su.s, &su.run, &cfg, &out, &err))) {
		status = util_cli_fail("replay", &err);
		goto out;
	}
	if (o.json)
		print_json(&su, &out);
	else
		print_text(&su, &out, start_desc, o.pay);
	status = 0;
out:
	analyze_replay_release(&out);
	free(start);
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
		printf("%6s %5s %-8s %11s %8s %7s %6s %9s %9s %7s %8s %10s\n", "replay", "run", "algo",
		       "layout", "interval", "window", "delay", "baseline", "imb-mean", "events",
		       "copies", "net-saved");
	else
		printf("no replays in '%s' (moetrace replay stores one)\n", db);
	for (size_t i = 0; i < n; i++) {
		const struct store_replay *r = &v[i];
		char lay[32];
		snprintf(lay, sizeof(lay), "%dx%d", r->ranks, r->slots);
		if (json)
			printf("%s\n {\"replay\": %lld, \"run\": %lld, \"algo\": \"%s\", \"ranks\": %d, "
			       "\"slots\": %d, \"interval\": %lld, \"window\": %lld, \"delay\": %lld, "
			       "\"steps\": %lld, \"imbalance_mean\": %.6f, "
			       "\"baseline_imbalance_mean\": %.6f, \"events\": %lld, \"moves\": %lld, "
			       "\"bytes\": %lld, \"net_overlap_seconds\": %.6f, \"params\": %s}",
			       i ? "," : "", (long long)r->id, (long long)r->run, r->algo, r->ranks,
			       r->slots, (long long)r->interval, (long long)r->window,
			       (long long)r->delay, (long long)r->steps, r->imbalance_mean,
			       r->baseline_imbalance_mean, (long long)r->events, (long long)r->moves,
			       (long long)r->bytes, r->net_overlap_seconds, r->params);
		else
			printf("%6lld %5lld %-8s %11s %8lld %7lld %6lld %9.3f %9.3f %7lld %8lld %9.2fs\n",
			       (long long)r->id, (long long)r->run, r->algo, lay, (long long)r->interval,
			       (long long)r->window, (long long)r->delay, r->baseline_imbalance_mean,
			       r->imbalance_mean, (long long)r->events, (long long)r->moves,
			       r->net_overlap_seconds);
	}
	if (json)
		printf("]\n");
	free(v);
	store_free(s);
	return 0;
}

/*
 * cmd_compare.c: `moetrace compare` — several placement algorithms fitted
 * on one window of a recorded run and scored on the window that follows
 * (what a deployment would meet), side by side: imbalance fitted and next,
 * gap to the lower bound, moves, bytes and seconds from the current
 * placement, token drop, algorithm time.  Output as a table, CSV, JSON or
 * markdown.
 *
 * The flow: resolve the windows (resolve_windows) and the start placement
 * (load_current), hand them to analyze_compare_run or, with --rounds,
 * analyze_compare_rounds (analyze/compare.c, which `report` runs too), then
 * print.
 */
#include "analyze/analyze.h"
#include "analyze/cmd_json.h"
#include "cmds.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define jd cmd_json_double /* numbers in JSON alike (cmd_json.c) */

static const char usage[] =
	"usage: moetrace compare [--run NAME] [--algos A,B,...] [--ranks R] [--slots S | --redundant N]\n"
	"                        [--nodes N --groups G] [--steps A:B] [--phase prefill|decode]\n"
	"                        [--episodes K] [--max-moves N] [--seed N]\n"
	"                        [--current FILE|static|deployed] [--model NAME]\n"
	"                        [--quant bf16|fp8|w8a8|w4a8|mxfp4] [--ranks-per-node N]\n"
	"                        [--link NAME | --link-intra NAME --link-inter NAME | --bandwidth GB/s]\n"
	"                        [--hardware h100|h200|b200|ascend-910b|ascend-910c] [--step-ms MS]\n"
	"                        [--tflops T] [--capacity F] [--per-layer] [--rounds N]\n"
	"                        [--format table|csv|json|markdown] DB\n"
	"--steps A:B fits on A..B and scores on the B-A+1 steps after B; by default the\n"
	"first half of the run fits and the second half scores.  --rounds N cuts the run\n"
	"(or A..B) into N consecutive windows, fits on window k from the placement of\n"
	"round k-1 and scores on window k+1, for k = 0..N-2.\n";

#define CMD "compare"
#define MAX_ALGOS 32
#define MAX_ROUNDS 1024

enum out_format { OUT_TABLE, OUT_CSV, OUT_JSON, OUT_MARKDOWN };

enum { OPT_HARDWARE = 1000, OPT_STEP_MS, OPT_TFLOPS };

struct cmp_opts {
	struct analyze_cli c;
	struct analyze_deploy_opts dep; /* hardware, step time, tflops; the rest from c */
	const char *algos;
	int per_layer, out, rounds;
};


static int parse_opts(int argc, char **argv, struct cmp_opts *o, struct util_err *err)
{
	static const struct option opts[] = {
		ANALYZE_CLI_LONGOPTS,
		{ "algos", required_argument, NULL, 'a' },
		{ "hardware", required_argument, NULL, OPT_HARDWARE },
		{ "step-ms", required_argument, NULL, OPT_STEP_MS },
		{ "tflops", required_argument, NULL, OPT_TFLOPS },
		{ "per-layer", no_argument, NULL, 'P' },
		{ "format", required_argument, NULL, 'f' },
		{ "rounds", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const formats[] = { "table", "csv", "json", "markdown" };
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'a': o->algos = optarg; break;
		case 'P': o->per_layer = 1; break;
		case OPT_HARDWARE:
			if ((rc = analyze_opt_hardware(optarg, &o->dep.hardware, err)))
				return rc;
			break;
		case OPT_STEP_MS:
			if ((rc = analyze_opt_step_ms(optarg, &o->dep.step_ms, err)))
				return rc;
			break;
		case OPT_TFLOPS:
			if ((rc = util_parse_double(optarg, 1e-3, 1e6, &o->dep.tflops, "--tflops", err)))
				return rc;
			break;
		case 'W':
			if ((rc = util_parse_int(optarg, 2, MAX_ROUNDS, &o->rounds, "--rounds",
						 err)))
				return rc;
			break;
		case 'f':
			o->out = -1;
			for (size_t i = 0; i < UTIL_ARRAY_SIZE(formats); i++)
				if (!strcmp(optarg, formats[i]))
					o->out = (int)i;
			if (o->out < 0)
				return util_err_set(
					err, UTIL_EUSAGE,
					"--format: '%s' is not table, csv, json or markdown",
					optarg);
			break;
		case 'h': fputs(usage, stdout); return 1;
		default:
			if ((rc = analyze_cli_opt_or_unknown(c, optarg, &o->c, argv, opts, err)))
				return rc;
			break;
		}
	}
	return 0;
}

/* The registered algorithms named in the comma list; all but the
 * small-instance ones when list is NULL. */
static int pick_algos(const char *list, const struct analyze_algo **a, int *n,
		      struct util_err *err)
{
	const struct analyze_algo *al;

	if (list)
		return analyze_algos_parse(list, 0, a, MAX_ALGOS, n, err);
	*n = 0;
	for (size_t i = 0; (al = analyze_algo_at(i)) && *n < MAX_ALGOS; i++)
		if (!(al->flags & ANALYZE_ALGO_SMALL_ONLY))
			a[(*n)++] = al;
	return 0;
}

static int resolve_windows(struct store *s, const struct store_run *run, struct cmp_opts *o,
			   int64_t win[4], struct util_err *err)
{
	struct store_run_stats st;
	int64_t a, b, len;

	if (store_run_stats(s, run->id, &st))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	if (st.steps < 2)
		return util_err_set(err, UTIL_EUSAGE,
				    "run '%s' has %lld step%s: compare needs two windows", run->name,
				    (long long)st.steps, st.steps == 1 ? "" : "s");
	if (o->c.from == INT64_MIN && o->c.to == INT64_MAX) {
		len = (st.last_step - st.first_step + 1) / 2;
		a = st.first_step;
		b = a + len - 1;
	} else {
		a = o->c.from == INT64_MIN ? st.first_step : o->c.from;
		b = o->c.to == INT64_MAX ? st.last_step : o->c.to;
		if (b < a)
			return util_err_set(err, UTIL_EUSAGE, "--steps: empty range %lld:%lld",
					    (long long)a, (long long)b);
	}
	len = b - a + 1;
	win[0] = a;
	win[1] = b;
	win[2] = b + 1;
	win[3] = b > INT64_MAX - len ? INT64_MAX : b + len;
	return 0;
}

/* A layer's imbalance on the scored window, NAN when it got no token
 * there (not scored: docs/cli.md). */
static double layer_next(const struct analyze_compare_algo *c, int l)
{
	return analyze_scored_imbalance(c->next_max[l], c->next_mean[l]);
}

/* A layer's gap to its lower bound on the fitting window and on the
 * scored one, NAN where it got no token (not scored, as its imbalance). */
static double layer_gap_fit(const struct analyze_plan_layer *pl)
{
	return isnan(pl->imbalance) || !(pl->lower_bound > 0)
		       ? NAN
		       : pl->max_load / pl->lower_bound - 1;
}

static double layer_gap_next(const struct analyze_compare *x,
			     const struct analyze_compare_algo *c, int l)
{
	return isnan(layer_next(c, l)) || !(x->lb_next[l] > 0)
		       ? NAN
		       : c->next_max[l] / x->lb_next[l] - 1;
}

/* jd, or null for a figure not scored (NAN) */
static struct json_object *jd_scored(double v)
{
	return isnan(v) ? NULL : jd(v);
}

/* "%.6f", or empty for a figure not scored or not known (NAN) */
static const char *csv_num(char *buf, size_t n, double v)
{
	if (isnan(v))
		buf[0] = '\0';
	else
		snprintf(buf, n, "%.6f", v);
	return buf;
}

/* Prints root with its "algorithms" array, and frees it. */
static void json_print(struct json_object *root, struct json_object *algos)
{
	json_object_object_add(root, "algorithms", algos);
	puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

static double pct(double x)
{
	return 100 * x;
}

/* What the printers read besides the result. */
struct print_ctx {
	const struct cmp_opts *o;
	const struct store_run *run;
	const struct store_model *model;
	const struct analyze_deploy *dep;
	const char *cur_name;
	const int64_t *win; /* [4] */
	const struct analyze_algo *const *algos;
};

static void print_json(const struct print_ctx *p, const struct analyze_compare *x)
{
	const int L = x->layers, E = x->experts, R = p->o->c.ranks;
	const uint64_t ebytes = p->dep->expert_bytes;
	const double hbm_gib = analyze_redundant_gib(p->dep, p->o->c.slots);
	const double tok_step = x->tokens / (double)x->next_steps;
	const double all_bytes = (double)ebytes * L * E;
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	struct json_object *fw = json_object_new_array(), *nw = json_object_new_array();
	json_object_array_add(fw, json_object_new_int64(p->win[0]));
	json_object_array_add(fw, json_object_new_int64(p->win[1]));
	json_object_array_add(nw, json_object_new_int64(p->win[2]));
	json_object_array_add(nw, json_object_new_int64(p->win[3]));
	char name[3 * sizeof(p->run->name) + 1]; /* JSON is UTF-8 (U+FFFD) */
	json_object_object_add(root, "run",
			       json_object_new_string(
				       util_utf8_sanitize(name, sizeof(name), p->run->name)));
	json_object_object_add(root, "layers", json_object_new_int(L));
	json_object_object_add(root, "experts", json_object_new_int(E));
	json_object_object_add(root, "ranks", json_object_new_int(R));
	json_object_object_add(root, "slots", json_object_new_int(p->o->c.slots));
	json_object_object_add(root, "fit_window", fw);
	json_object_object_add(root, "fit_steps", json_object_new_int64(x->fit_steps));
	json_object_object_add(root, "next_window", nw);
	json_object_object_add(root, "next_steps", json_object_new_int64(x->next_steps));
	json_object_object_add(root, "current", json_object_new_string(p->cur_name));
	json_object_object_add(root, "expert_bytes",
			       p->model ? json_object_new_int64((int64_t)ebytes) : NULL);
	json_object_object_add(root, "quant",
			       json_object_new_string(analyze_quant_name(p->dep->quant)));
	json_object_object_add(root, "ranks_per_node",
			       json_object_new_int(p->dep->ranks_per_node));
	json_object_object_add(root, "nodes", json_object_new_int(R / p->dep->ranks_per_node));
	json_object_object_add(root, "link_intra", json_object_new_string(p->dep->link_intra));
	json_object_object_add(root, "link_inter", json_object_new_string(p->dep->link_inter));
	json_object_object_add(root, "intra_gbytes_per_s", jd(p->dep->intra_gbps));
	json_object_object_add(root, "inter_gbytes_per_s", jd(p->dep->inter_gbps));
	json_object_object_add(root, "hardware", json_object_new_string(p->dep->hw->name));
	json_object_object_add(root, "hbm_redundant_gib_per_rank",
			       p->model ? jd(hbm_gib) : NULL);
	json_object_object_add(root, "tokens_per_step", jd(tok_step));
	json_object_object_add(root, "tokens_per_rank", jd(tok_step / R));
	json_object_object_add(root, "estimated",
			       json_object_new_boolean(p->dep->step_seconds <= 0));
	json_object_object_add(root, "baseline_moe_ms_per_step",
			       x->timed ? jd(x->moe_s / x->next_steps * 1e3) : NULL);
	json_object_object_add(root, "baseline_step_ms",
			       x->timed ? jd(x->step_s / x->next_steps * 1e3) : NULL);
	if (p->o->c.capacity_set)
		json_object_object_add(root, "capacity_factor", jd(p->o->c.capacity));
	json_object_object_add(root, "baseline_tokens_per_s",
			       x->timed ? jd(x->tokens / x->step_s) : NULL);
	for (int i = 0; i < x->n_algos; i++) {
		const struct analyze_compare_algo *c = &x->algo[i];
		struct json_object *j = json_object_new_object(),
				   *pl = json_object_new_array();
		json_object_object_add(j, "algorithm",
				       json_object_new_string(c->algo->name));
		json_object_object_add(j, "fit_imbalance", jd(c->fit));
		json_object_object_add(j, "next_imbalance", jd(c->next));
		json_object_object_add(j, "next_step_mean_imbalance", jd(c->next_step));
		json_object_object_add(j, "next_step_p99_imbalance", jd(c->next_p99));
		json_object_object_add(j, "next_balancedness",
				       jd(c->next > 0 ? 1 / c->next : 1));
		json_object_object_add(j, "next_trtllm_imbalance", jd(c->next - 1));
		json_object_object_add(j, "gap_fit", jd(c->gap_fit));
		json_object_object_add(j, "gap_next", jd(c->gap_next));
		json_object_object_add(j, "moves", json_object_new_int64(c->plan.moves));
		json_object_object_add(j, "bytes",
				       p->model ? json_object_new_int64(c->bytes) : NULL);
		json_object_object_add(j, "transfer_seconds", p->model ? jd(c->xfer_s) : NULL);
		json_object_object_add(j, "bytes_intra_node",
				       p->model ? json_object_new_int64(c->bytes - c->bytes_inter)
					     : NULL);
		json_object_object_add(j, "bytes_inter_node",
				       p->model ? json_object_new_int64(c->bytes_inter) : NULL);
		json_object_object_add(j, "transfer_intra_seconds",
				       p->model ? jd(c->xfer_intra_s) : NULL);
		json_object_object_add(j, "transfer_inter_seconds",
				       p->model ? jd(c->xfer_inter_s) : NULL);
		json_object_object_add(j, "weights_moved_share",
				       p->model ? jd(c->bytes / all_bytes) : NULL);
		json_object_object_add(j, "hbm_redundant_gib_per_rank",
				       p->model ? jd(hbm_gib) : NULL);
		json_object_object_add(j, "moe_time_saved_share",
				       x->timed ? jd(c->moe_share) : NULL);
		json_object_object_add(j, "step_time_saved_share",
				       x->timed ? jd(c->step_share) : NULL);
		json_object_object_add(j, "tokens_per_s",
				       x->timed ? jd(x->tokens / (x->step_s - (x->moe_s -
										 c->moe_s)))
					     : NULL);
		if (p->o->c.capacity_set)
			json_object_object_add(j, "token_drop", jd(c->drop));
		json_object_object_add(j, "seconds", jd(c->plan.seconds));
		for (int l = 0; l < L; l++) {
			const struct analyze_plan_layer *pll = &c->plan.layer[l];
			struct json_object *jl = json_object_new_object();
			json_object_object_add(jl, "layer", json_object_new_int(l));
			json_object_object_add(jl, "fit_imbalance", jd(pll->imbalance));
			json_object_object_add(jl, "next_imbalance", jd_scored(layer_next(c, l)));
			json_object_object_add(jl, "gap_fit", jd_scored(layer_gap_fit(pll)));
			json_object_object_add(jl, "gap_next", jd_scored(layer_gap_next(x, c, l)));
			json_object_object_add(jl, "moves", json_object_new_int64(pll->moves));
			json_object_array_add(pl, jl);
		}
		json_object_object_add(j, "per_layer", pl);
		json_object_array_add(arr, j);
	}
	json_print(root, arr);
}

static void print_csv(const struct print_ctx *p, const struct analyze_compare *x)
{
	const int L = x->layers;
	const uint64_t ebytes = p->dep->expert_bytes;

	printf("scope,algorithm,layer,fit_imbalance,next_imbalance,next_step_mean_imbalance,"
	       "gap_fit,gap_next,moves,bytes,transfer_seconds,%sseconds,"
	       "next_step_p99_imbalance,moe_time_saved_share,step_time_saved_share,"
	       "tokens_per_s\n",
	       p->o->c.capacity_set ? "token_drop," : "");
	for (int i = 0; i < x->n_algos; i++) {
		const struct analyze_compare_algo *c = &x->algo[i];
		char ms[32], ss[32], ts[32];
		printf("overall,%s,,%.6f,%.6f,%.6f,%.6f,%.6f,%lld,", c->algo->name, c->fit,
		       c->next, c->next_step, c->gap_fit, c->gap_next,
		       (long long)c->plan.moves);
		if (p->model)
			printf("%lld,%.6f", (long long)c->bytes, c->xfer_s);
		else
			printf(",");
		if (p->o->c.capacity_set)
			printf(",%.6f", c->drop);
		/* empty without the step-time model, as JSON's null */
		printf(",%.6f,%.6f,%s,%s,%s\n", c->plan.seconds, c->next_p99,
		       csv_num(ms, sizeof(ms), x->timed ? c->moe_share : NAN),
		       csv_num(ss, sizeof(ss), x->timed ? c->step_share : NAN),
		       csv_num(ts, sizeof(ts),
			       x->timed ? x->tokens / (x->step_s - (x->moe_s - c->moe_s)) : NAN));
	}
	for (int i = 0; p->o->per_layer && i < x->n_algos; i++)
		for (int l = 0; l < L; l++) {
			const struct analyze_compare_algo *c = &x->algo[i];
			const struct analyze_plan_layer *pl = &c->plan.layer[l];
			/* empty: not scored (no token) */
			char nx[32], fit[32], gf[32], gn[32];
			printf("layer,%s,%d,%s,%s,,%s,%s,%lld,", c->algo->name, l,
			       csv_num(fit, sizeof(fit), pl->imbalance),
			       csv_num(nx, sizeof(nx), layer_next(c, l)),
			       csv_num(gf, sizeof(gf), layer_gap_fit(pl)),
			       csv_num(gn, sizeof(gn), layer_gap_next(x, c, l)),
			       (long long)pl->moves);
			if (p->model)
				printf("%llu,", (unsigned long long)pl->moves * ebytes);
			else
				printf(",");
			printf(p->o->c.capacity_set ? ",,,,,,\n" : ",,,,,\n");
		}
}

static void print_table(const struct print_ctx *p, const struct analyze_compare *x)
{
	const int L = x->layers, E = x->experts, R = p->o->c.ranks;
	const uint64_t ebytes = p->dep->expert_bytes;
	const double hbm_gib = analyze_redundant_gib(p->dep, p->o->c.slots);
	const double tok_step = x->tokens / (double)x->next_steps;
	int md = p->o->out == OUT_MARKDOWN;
	const char *sep = md ? " | " : "  ";
	const int cap = p->o->c.capacity_set;
	char hb1[32], hb2[32];
	printf("run '%s': %d layers x %d experts, %d ranks x %d slots; fitted on steps "
	       "%lld..%lld (%lld step%s), scored on the next %lld..%lld (%lld step%s)\n",
	       p->run->name, L, E, R, p->o->c.slots, (long long)p->win[0],
	       (long long)p->win[1], (long long)x->fit_steps, x->fit_steps == 1 ? "" : "s",
	       (long long)p->win[2], (long long)p->win[3], (long long)x->next_steps,
	       x->next_steps == 1 ? "" : "s");
	printf("%simbalance = sum of max / sum of mean device load over layers (a replicated "
	       "expert's tokens split evenly); gap = distance to the proven lower bound; "
	       "next = on the steps after the fitting window (what a deployment meets), "
	       "fit = on the fitting window itself, in hindsight\n",
	       md ? "\n" : "");
	if (cap)
		printf("%sdrop = share of tokens over the capacity of %.2f x mean device load "
		       "per rank: an engine that caps each rank's tokens per step drops "
		       "those tokens or recomputes them, costing accuracy or time "
		       "(engines without a cap, such as DeepEP, vLLM or SGLang, drop none)\n",
		       md ? "\n" : "", p->o->c.capacity);
	if (p->model)
		printf("%smoves from the %s placement; %s per expert (%s %s); %d node%s "
		       "x %d ranks, transfer at %.1f GB/s per rank inside a node (%s) and "
		       "%.1f GB/s across (%s), ranks sending in parallel; %s of HBM per "
		       "rank on redundant experts\n",
		       md ? "\n" : "", p->cur_name,
		       util_human_bytes(hb1, sizeof(hb1), (double)ebytes), p->model->name,
		       analyze_quant_name(p->dep->quant), R / p->dep->ranks_per_node,
		       R / p->dep->ranks_per_node > 1 ? "s" : "", p->dep->ranks_per_node,
		       p->dep->intra_gbps, p->dep->link_intra, p->dep->inter_gbps, p->dep->link_inter,
		       util_human_bytes(hb2, sizeof(hb2), hbm_gib * 1073741824.0));
	if (x->timed)
		printf("%snext window: %.0f tokens per step, %.1f per rank; under the %s "
		       "placement MoE time %.3f ms (busiest rank) of a %.3f ms step, %.0f "
		       "tokens/s (%s); saved = share of that MoE time and of that step time, "
		       "before transfers\n\n",
		       md ? "\n" : "", tok_step, tok_step / R, p->cur_name,
		       x->moe_s / x->next_steps * 1e3, x->step_s / x->next_steps * 1e3,
		       x->tokens / x->step_s,
		       p->dep->step_seconds > 0 ? "measured, --step-ms"
					    : "estimates on the hardware's peak rates, "
					      "docs/replay.md");
	else if (p->model)
		printf("\n");
	else
		printf("%smoves from the %s placement (give --model for bytes and "
		       "seconds)\n\n",
		       md ? "\n" : "", p->cur_name);
	if (md)
		printf("| algorithm | fit | next | next/step | p99/step | gap fit | gap next | "
		       "moves | GB | transfer s |%s time s | MoE saved | step saved | "
		       "tokens/s |\n"
		       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|%s---:|---:|---:|"
		       "---:|\n",
		       cap ? " drop |" : "", cap ? "---:|" : "");
	else
		printf("%-10s  %6s  %6s  %9s  %8s  %7s  %8s  %7s  %8s  %10s  %s%8s  %9s  "
		       "%10s  %9s\n",
		       "algorithm", "fit", "next", "next/step", "p99/step", "gap-fit",
		       "gap-next", "moves", "GB", "transfer-s", cap ? "  drop  " : "",
		       "time-s", "MoE-saved", "step-saved", "tokens/s");
	for (int i = 0; i < x->n_algos; i++) {
		const struct analyze_compare_algo *c = &x->algo[i];
		char gb[32], xs[32], ms[32], ss[32], ts[32];
		if (x->timed) {
			snprintf(ms, sizeof(ms), "%.2f%%", pct(c->moe_share));
			snprintf(ss, sizeof(ss), "%.2f%%", pct(c->step_share));
			snprintf(ts, sizeof(ts), "%.0f",
				 x->tokens / (x->step_s - (x->moe_s - c->moe_s)));
		} else {
			strcpy(ms, "-");
			strcpy(ss, "-");
			strcpy(ts, "-");
		}
		if (p->model) {
			snprintf(gb, sizeof(gb), "%.2f", c->bytes / 1e9);
			snprintf(xs, sizeof(xs), "%.4f", c->xfer_s);
		} else {
			strcpy(gb, "-");
			strcpy(xs, "-");
		}
		char dr[32] = "";
		if (cap)
			snprintf(dr, sizeof(dr), md ? " %.2f%% |" : "%5.2f%%  ",
				 pct(c->drop));
		if (md)
			printf("| %s | %.4f | %.4f | %.4f | %.4f | %.2f%% | %.2f%% | %lld | %s | "
			       "%s |%s %.4f | %s | %s | %s |\n",
			       c->algo->name, c->fit, c->next, c->next_step, c->next_p99,
			       pct(c->gap_fit), pct(c->gap_next), (long long)c->plan.moves,
			       gb, xs, dr, c->plan.seconds, ms, ss, ts);
		else
			printf("%-10s  %6.4f  %6.4f  %9.4f  %8.4f  %6.2f%%  %7.2f%%  %7lld  %8s  "
			       "%10s  %s%8.4f  %9s  %10s  %9s\n",
			       c->algo->name, c->fit, c->next, c->next_step, c->next_p99,
			       pct(c->gap_fit), pct(c->gap_next), (long long)c->plan.moves,
			       gb, xs, dr, c->plan.seconds, ms, ss, ts);
	}
	if (p->o->per_layer) {
		printf("\nper layer: imbalance fitted / next\n%s",
		       md ? "\n| layer" : "layer");
		for (int i = 0; i < x->n_algos; i++)
			printf(md ? " | %s" : "  %15s", x->algo[i].algo->name);
		printf(md ? " |\n|---" : "\n");
		for (int i = 0; md && i < x->n_algos; i++)
			printf("|---:");
		printf(md ? "|\n" : "");
		for (int l = 0; l < L; l++) {
			printf(md ? "| %d" : "%5d", l);
			for (int i = 0; i < x->n_algos; i++) {
				const struct analyze_compare_algo *c = &x->algo[i];
				char nx[32] = "-", fit[32] = "-";
				if (!isnan(layer_next(c, l)))
					snprintf(nx, sizeof(nx), "%.4f", layer_next(c, l));
				if (!isnan(c->plan.layer[l].imbalance))
					snprintf(fit, sizeof(fit), "%.4f", c->plan.layer[l].imbalance);
				printf("%s%s%7s / %-7s", md ? sep : "  ", "", fit, nx);
			}
			printf(md ? " |\n" : "\n");
		}
	}
}



/* What setup resolves for the comparison. */
struct cmp_state {
	struct store *s;
	struct store_run run;
	const struct analyze_algo *algos[MAX_ALGOS];
	int na;
	int64_t win[4];
	const struct store_model *model;
	struct analyze_deploy dep;
	int32_t *cur; /* [layers * ranks*slots] the start placement */
	const char *cur_name;
};

/* The deployment, the nodes eplb-hier needs, and the start placement. */
static int setup_deploy(struct cmp_opts *o, struct cmp_state *st)
{
	struct util_err err = UTIL_ERR_INIT;
	int L = st->run.layers, E = st->run.experts, R = o->c.ranks, rc;
	const struct store_model *model;
	struct analyze_shape sh;

	model = st->model = st->run.model[0] ? store_model_find(st->run.model) : NULL;
	o->dep.quant = o->c.quant;
	o->dep.link = o->c.link;
	o->dep.link_intra = o->c.link_intra;
	o->dep.link_inter = o->c.link_inter;
	o->dep.ranks_per_node = o->c.ranks_per_node;
	o->dep.bandwidth = o->c.bandwidth;
	if ((rc = analyze_deploy_resolve(&st->run, model, R, &o->dep, &st->dep, &err)))
		return util_cli_fail(CMD, &err);
	/* eplb-hier needs the node count: the run's layout gives it, the model
	 * the expert groups */
	if (!o->c.nodes)
		analyze_hier_nodes(R, st->run.ranks_per_node, model, E, &o->c.nodes, &o->c.groups);
	sh = (struct analyze_shape){
		L, E, R, o->c.slots, st->run.first_layer, model ? model->layer_step : 1
	};
	st->cur = xmallocarray((size_t)L * R * o->c.slots, sizeof(int32_t));
	if ((rc = analyze_current_read(st->s, &st->run, &sh, o->rounds ? st->win[0] : st->win[1],
					o->c.current, st->cur, &st->cur_name, &err)))
		return util_cli_fail(CMD, &err);
	if (o->rounds && o->per_layer) {
		util_cli_error(CMD, "--per-layer does not combine with --rounds");
		return 2;
	}
	return 0;
}

/* ---- --rounds: the mean over rounds per algorithm, then each round -------- */

static void print_rounds_json(const struct print_ctx *p, const struct analyze_rounds *x)
{
	const int N1 = x->rounds;
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	struct json_object *wins = json_object_new_array();

	json_object_object_add(root, "run", json_object_new_string(p->run->name));
	json_object_object_add(root, "layers", json_object_new_int(p->run->layers));
	json_object_object_add(root, "experts", json_object_new_int(p->run->experts));
	json_object_object_add(root, "ranks", json_object_new_int(p->o->c.ranks));
	json_object_object_add(root, "slots", json_object_new_int(p->o->c.slots));
	json_object_object_add(root, "rounds", json_object_new_int(N1));
	json_object_object_add(root, "current", json_object_new_string(p->cur_name));
	for (int k = 0; k <= N1; k++) {
		struct json_object *w = json_object_new_array();
		json_object_array_add(w, json_object_new_int64(x->win[(size_t)2 * k]));
		json_object_array_add(w, json_object_new_int64(x->win[(size_t)2 * k + 1]));
		json_object_array_add(wins, w);
	}
	json_object_object_add(root, "windows", wins);
	for (int i = 0; i < x->n_algos; i++) {
		struct json_object *j = json_object_new_object(), *rr = json_object_new_array();
		struct analyze_round m = analyze_rounds_mean(x, i);
		for (int k = 0; k < N1; k++) {
			const struct analyze_round *r = &x->r[(size_t)i * N1 + k];
			struct json_object *jr = json_object_new_object();
			json_object_object_add(jr, "round", json_object_new_int(k));
			json_object_object_add(jr, "fit_imbalance", jd(r->fit));
			json_object_object_add(jr, "next_imbalance", jd(r->next));
			json_object_object_add(jr, "next_step_mean_imbalance", jd(r->next_step));
			json_object_object_add(jr, "moves", json_object_new_int64(r->moves));
			json_object_object_add(jr, "seconds", jd(r->seconds));
			if (r->forecast_blocks)
				json_object_object_add(jr, "forecast",
						       cmd_json_forecast(&r->forecast,
									 r->forecast_blocks,
									 r->forecast_hist));
			json_object_array_add(rr, jr);
		}
		json_object_object_add(j, "algorithm", json_object_new_string(p->algos[i]->name));
		json_object_object_add(j, "fit_imbalance", jd(m.fit));
		json_object_object_add(j, "next_imbalance", jd(m.next));
		json_object_object_add(j, "next_step_mean_imbalance", jd(m.next_step));
		json_object_object_add(j, "moves_per_round", jd((double)m.moves / N1));
		json_object_object_add(j, "seconds_per_round", jd(m.seconds));
		json_object_object_add(j, "rounds", rr);
		json_object_array_add(arr, j);
	}
	json_print(root, arr);
}

static void print_rounds_csv(const struct print_ctx *p, const struct analyze_rounds *x)
{
	const int N1 = x->rounds;

	printf("scope,algorithm,round,fit_imbalance,next_imbalance,"
	       "next_step_mean_imbalance,moves,seconds,forecast_estimator,"
	       "forecast_half_life_windows,forecast_shrink\n");
	for (int i = 0; i < x->n_algos; i++) {
		struct analyze_round m = analyze_rounds_mean(x, i);
		printf("mean,%s,,%.6f,%.6f,%.6f,%.6f,%.6f,,,\n", p->algos[i]->name, m.fit, m.next,
		       m.next_step, (double)m.moves / N1, m.seconds);
	}
	for (int i = 0; i < x->n_algos; i++)
		for (int k = 0; k < N1; k++) {
			const struct analyze_round *r = &x->r[(size_t)i * N1 + k];
			printf("round,%s,%d,%.6f,%.6f,%.6f,%lld,%.6f", p->algos[i]->name, k, r->fit,
			       r->next, r->next_step, (long long)r->moves, r->seconds);
			/* the flagship's estimator; inf: every block alike */
			if (r->forecast_blocks)
				printf(",%s,%g,%g\n", r->forecast.volume ? "tokens" : "shares",
				       r->forecast.half_life, r->forecast.shrink);
			else
				printf(",,,\n");
		}
}

/* Each round's forecast of the algorithms that fit one (the flagship):
 * what it found the traffic to be, round after round. */
static void print_rounds_forecasts(const struct analyze_rounds *x,
				   const struct analyze_algo *const *algos, int md)
{
	const int N1 = x->rounds;

	for (int i = 0; i < x->n_algos; i++) {
		int any = 0;
		for (int k = 0; k < N1; k++)
			any |= x->r[(size_t)i * N1 + k].forecast_blocks > 0;
		if (!any)
			continue;
		printf("\n%s's forecast of the next window, chosen each round on the trace "
		       "before it (docs/algorithms.md):\n%s",
		       algos[i]->name, md ? "\n" : "");
		for (int k = 0; k < N1; k++) {
			const struct analyze_round *r = &x->r[(size_t)i * N1 + k];
			char d[160];
			if (!r->forecast_blocks) {
				printf("%sround %d: none\n", md ? "- " : "  ", k);
				continue;
			}
			analyze_robust_describe(&r->forecast, d, sizeof(d));
			printf("%sround %d: %s (%d blocks of the window, %d of history)\n",
			       md ? "- " : "  ", k, d, r->forecast_blocks - r->forecast_hist,
			       r->forecast_hist);
		}
	}
}

static void print_rounds_table(const struct print_ctx *p, const struct analyze_rounds *x)
{
	const int N1 = x->rounds, md = p->o->out == OUT_MARKDOWN;

	printf("run '%s': %d layers x %d experts, %d ranks x %d slots; %lld steps cut into "
	       "%d windows: fit on window k (from round k-1's placement, round 0 from "
	       "the %s one), score on window k+1, k = 0..%d\n",
	       p->run->name, p->run->layers, p->run->experts, p->o->c.ranks, p->o->c.slots,
	       (long long)x->steps, N1 + 1, p->cur_name, N1 - 1);
	printf("%simbalance = sum of max / sum of mean device load over layers; fit = on the "
	       "window the placement was fitted on, in hindsight; next = on the window after "
	       "it; next/step = mean over the scored steps of the per-step figure; figures are "
	       "means over the %d rounds, copies and seconds per round\n\n",
	       md ? "\n" : "", N1);
	if (md)
		printf("| algorithm | fit | next | next/step | copies | time s |\n"
		       "|---|---:|---:|---:|---:|---:|\n");
	else
		printf("%-10s  %6s  %6s  %9s  %9s  %8s\n", "algorithm", "fit", "next",
		       "next/step", "copies", "time-s");
	for (int i = 0; i < x->n_algos; i++) {
		struct analyze_round m = analyze_rounds_mean(x, i);
		printf(md ? "| %s | %.4f | %.4f | %.4f | %.1f | %.4f |\n"
			  : "%-10s  %6.4f  %6.4f  %9.4f  %9.1f  %8.4f\n",
		       p->algos[i]->name, m.fit, m.next, m.next_step, (double)m.moves / N1,
		       m.seconds);
	}
	printf("\nper round: next imbalance (copies)\n%s",
	       md ? "\n| round | scored steps" : "round  scored-steps        ");
	for (int i = 0; i < x->n_algos; i++)
		printf(md ? " | %s" : "  %18s", p->algos[i]->name);
	printf(md ? " |\n|---|---" : "\n");
	for (int i = 0; md && i < x->n_algos; i++)
		printf("|---:");
	printf(md ? "|\n" : "");
	for (int k = 0; k < N1; k++) {
		char span[48];
		snprintf(span, sizeof(span), "%lld..%lld", (long long)x->win[(size_t)2 * (k + 1)],
			 (long long)x->win[(size_t)2 * (k + 1) + 1]);
		printf(md ? "| %d | %s" : "%5d  %-18s", k, span);
		for (int i = 0; i < x->n_algos; i++) {
			const struct analyze_round *r = &x->r[(size_t)i * N1 + k];
			char cell[48];
			snprintf(cell, sizeof(cell), "%.4f (%lld)", r->next, (long long)r->moves);
			printf(md ? " | %s" : "  %18s", cell);
		}
		printf(md ? " |\n" : "\n");
	}
	print_rounds_forecasts(x, p->algos, md);
}

/* The run, its layout and nodes, the deployment and the start placement:
 * what both the single comparison and the rounds need.  0, or the exit
 * status. */
static int setup(int argc, char **argv, struct cmp_opts *o, struct cmp_state *st)
{
	struct util_err err = UTIL_ERR_INIT;
	int rc, E;

	if ((rc = parse_opts(argc, argv, o, &err))) {
		if (rc == 1)
			return -1;
		if (err.msg[0]) /* else an unknown option, said in one line */
			util_cli_error(CMD, "%s", err.msg);
		return 2;
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	if ((rc = pick_algos(o->algos, st->algos, &st->na, &err)))
		return util_cli_fail(CMD, &err);
	if (o->c.nodes && !o->c.groups) {
		util_cli_error(CMD, "--nodes needs --groups");
		return 2;
	}
	if ((rc = store_open_run(argv[optind], o->c.runname, STORE_READONLY, &st->s, &st->run,
				 &err)))
		return util_cli_fail(CMD, &err);
	analyze_warn_missing_counts(CMD, st->s, &st->run);
	if (o->c.model) {
		/* a run recorded without a model takes the preset's layer ids */
		if (!st->run.model[0])
			st->run.first_layer = store_model_find(o->c.model)->first_layer;
		snprintf(st->run.model, sizeof(st->run.model), "%s", o->c.model);
	}
	E = st->run.experts;
	if (o->c.groups && E % o->c.groups) {
		util_cli_error(CMD, "--groups %d does not divide %d experts", o->c.groups, E);
		return 2;
	}
	if ((rc = analyze_layout_resolve(&st->run, o->c.ranks, o->c.slots, o->c.redundant,
					 &o->c.ranks, &o->c.slots, &err)) ||
	    (rc = resolve_windows(st->s, &st->run, o, st->win, &err)))
		return util_cli_fail(CMD, &err);
	if (o->c.nodes && o->c.ranks % o->c.nodes) {
		util_cli_error(CMD, "--nodes %d does not divide %d ranks", o->c.nodes, o->c.ranks);
		return 2;
	}
	return setup_deploy(o, st);
}

/* What the engine is handed: fitted on win[0..1], scored on win[2..3]. */
static struct analyze_compare_in compare_in(const struct cmp_opts *o, const struct cmp_state *st)
{
	return (struct analyze_compare_in){
		.store = st->s,
		.run = &st->run,
		.algos = st->algos,
		.n_algos = st->na,
		.ranks = o->c.ranks,
		.slots = o->c.slots,
		.nodes = o->c.nodes,
		.groups = o->c.groups,
		.max_moves = o->c.max_moves,
		.seed = o->c.seed,
		.fit_from = st->win[0],
		.fit_to = st->win[1],
		.next_from = st->win[2],
		.next_to = st->win[3],
		.phase_mask = o->c.phase_mask,
		.start = st->cur,
		.n_episodes = o->c.episodes,
		.flagship_blocks = !o->c.episodes_set,
		.dep = &st->dep,
		.timed = 1,
		.capacity = o->c.capacity,
	};
}

static int run_compare(const struct cmp_opts *o, struct cmp_state *st)
{
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_compare x = { 0 };
	const struct analyze_compare_in in = compare_in(o, st);
	const struct print_ctx p = { o, &st->run, st->model, &st->dep, st->cur_name, st->win,
				     st->algos };
	int status = 2;

	if (analyze_compare_run(&in, &x, &err)) {
		status = util_cli_fail(CMD, &err); /* a corrupt trace is bad input */
		goto out;
	}
	if (!x.fit_steps) {
		util_cli_error(CMD, "no steps of run '%s' in the fitting window %lld..%lld%s",
			       st->run.name, (long long)st->win[0], (long long)st->win[1],
			       o->c.phase_mask ? " and phase" : "");
		goto out;
	}
	if (!x.next_steps) {
		util_cli_error(CMD,
			       "no steps of run '%s' after the fitting window to score on "
			       "(%lld..%lld)%s",
			       st->run.name, (long long)st->win[2], (long long)st->win[3],
			       o->c.phase_mask ? " in that phase" : "");
		goto out;
	}
	if (o->out == OUT_JSON)
		print_json(&p, &x);
	else if (o->out == OUT_CSV)
		print_csv(&p, &x);
	else
		print_table(&p, &x);
	status = 0;
out:
	analyze_compare_release(&x);
	return status;
}

/* --rounds N: the selection (all of the run, or --steps A..B) cut into N windows. */
static int run_rounds(const struct cmp_opts *o, struct cmp_state *st)
{
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_rounds x = { 0 };
	struct analyze_compare_in in = compare_in(o, st);
	const struct print_ctx p = { o, &st->run, st->model, &st->dep, st->cur_name, st->win,
				     st->algos };
	int status = 0;

	if (o->c.from != INT64_MIN && o->c.to != INT64_MAX && o->c.to < o->c.from) {
		util_cli_error(CMD, "--steps: empty range %lld:%lld", (long long)o->c.from,
			       (long long)o->c.to);
		return 2;
	}
	in.fit_from = o->c.from;
	in.fit_to = o->c.to;
	if (analyze_compare_rounds(&in, o->rounds, &x, &err))
		status = util_cli_fail(CMD, &err);
	else if (o->out == OUT_JSON)
		print_rounds_json(&p, &x);
	else if (o->out == OUT_CSV)
		print_rounds_csv(&p, &x);
	else
		print_rounds_table(&p, &x);
	analyze_rounds_release(&x);
	return status;
}

int cmd_compare(int argc, char **argv)
{
	struct cmp_opts o = { .c = ANALYZE_CLI_INIT, .dep = ANALYZE_DEPLOY_OPTS_INIT };
	struct cmp_state st = { 0 };
	int status = setup(argc, argv, &o, &st);

	if (status < 0)
		status = 0; /* --help */
	else if (!status)
		status = o.rounds ? run_rounds(&o, &st) : run_compare(&o, &st);
	free(st.cur);
	store_free(st.s);
	return status;
}

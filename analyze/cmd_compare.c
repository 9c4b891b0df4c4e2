/*
 * cmd_compare.c: `moetrace compare` — several placement algorithms fitted
 * on one window of a recorded run and scored on the window that follows
 * (what a deployment would meet), side by side: imbalance fitted and next,
 * gap to the lower bound, moves, bytes and seconds from the current
 * placement, token drop, algorithm time.  Output as a table, CSV, JSON or
 * markdown.
 *
 * The flow: resolve the windows (resolve_windows), sum the fitting heat,
 * run each algorithm through analyze_plan_run, walk the next window's
 * steps once scoring every algorithm (score_next), then print.
 */
#include "analyze/analyze.h"
#include "cmds.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

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

enum { OPT_LINK_INTRA = 1000, OPT_LINK_INTER, OPT_RPN, OPT_HARDWARE, OPT_STEP_MS, OPT_TFLOPS };

struct cmp_opts {
	struct analyze_cli c;
	struct analyze_deploy_opts dep; /* besides c's link, quant, bandwidth */
	const char *algos;
	int per_layer, out, rounds;
};

/* One algorithm's results. */
struct cmp_algo {
	const struct analyze_algo *algo;
	struct analyze_plan plan;
	int *cnt;		      /* [layers * experts] replicas */
	double *next_max, *next_mean; /* [layers] on the next window's summed heat */
	double step_sum;	      /* sum over steps of the per-step overall imbalance */
	double *step_imb;	      /* [steps] per-step overall imbalance, for p99 */
	size_t step_cap;
	double dropped, tokens; /* over the next window's steps and layers */
	double moe_s;           /* MoE seconds over the next window (step-time model) */
	/* summaries */
	double fit, next, next_step, next_p99, gap_fit, gap_next, drop, xfer_s;
	double xfer_intra_s, xfer_inter_s, moe_share, step_share;
	int64_t bytes, bytes_inter;
};

static int parse_opts(int argc, char **argv, struct cmp_opts *o, struct util_err *err)
{
	static const struct option opts[] = {
		{ "run", required_argument, NULL, 'r' },
		{ "algos", required_argument, NULL, 'a' },
		{ "ranks", required_argument, NULL, 'R' },
		{ "slots", required_argument, NULL, 'S' },
		{ "redundant", required_argument, NULL, 'N' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "groups", required_argument, NULL, 'g' },
		{ "steps", required_argument, NULL, 's' },
		{ "phase", required_argument, NULL, 'p' },
		{ "episodes", required_argument, NULL, 'k' },
		{ "max-moves", required_argument, NULL, 'M' },
		{ "seed", required_argument, NULL, 'x' },
		{ "current", required_argument, NULL, 'c' },
		{ "model", required_argument, NULL, 'm' },
		{ "quant", required_argument, NULL, 'q' },
		{ "link", required_argument, NULL, 'L' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "capacity", required_argument, NULL, 'C' },
		{ "link-intra", required_argument, NULL, OPT_LINK_INTRA },
		{ "link-inter", required_argument, NULL, OPT_LINK_INTER },
		{ "ranks-per-node", required_argument, NULL, OPT_RPN },
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
		case OPT_LINK_INTRA:
			if ((rc = analyze_opt_link(optarg, "--link-intra", &o->dep.link_intra, err)))
				return rc;
			break;
		case OPT_LINK_INTER:
			if ((rc = analyze_opt_link(optarg, "--link-inter", &o->dep.link_inter, err)))
				return rc;
			break;
		case OPT_RPN:
			if ((rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->dep.ranks_per_node,
						 "--ranks-per-node", err)))
				return rc;
			break;
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

/* Splits the comma list into registered algorithms; all but the
 * small-instance ones when list is NULL. */
static int pick_algos(const char *list, struct cmp_algo *a, int *n, struct util_err *err)
{
	const struct analyze_algo *al;
	char hint[96];

	*n = 0;
	if (!list) {
		for (size_t i = 0; (al = analyze_algo_at(i)) && *n < MAX_ALGOS; i++)
			if (!(al->flags & ANALYZE_ALGO_SMALL_ONLY))
				a[(*n)++].algo = al;
		return 0;
	}
	while (*list) {
		char name[64];
		size_t len = strcspn(list, ",");
		if (len == 0 || len >= sizeof(name))
			return util_err_set(err, UTIL_EUSAGE, "--algos: empty or too long name");
		memcpy(name, list, len);
		name[len] = '\0';
		if (!(al = analyze_algo_find(name)))
			return util_err_set(
				err, UTIL_EUSAGE,
				"--algos: unknown algorithm '%s'%s (moetrace place --list)", name,
				util_did_you_mean(analyze_algo_suggest(name), hint, sizeof(hint)));
		if (*n == MAX_ALGOS)
			return util_err_set(err, UTIL_EUSAGE, "--algos: at most %d algorithms",
					    MAX_ALGOS);
		a[(*n)++].algo = al;
		list += len;
		if (*list == ',')
			list++;
	}
	if (!*n)
		return util_err_set(err, UTIL_EUSAGE, "--algos: no algorithm named");
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
				    "run '%s' has %lld steps: compare needs two windows", run->name,
				    (long long)st.steps);
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

static int load_current(const struct cmp_opts *o, struct store *s, const struct store_run *run,
			const struct analyze_shape *sh, int64_t at, int32_t *cur, const char **name,
			struct util_err *err)
{
	int rc, deployed;

	if (!o->c.current || !strcmp(o->c.current, "deployed") ||
	    !strcmp(o->c.current, "static")) {
		if ((rc = analyze_start_placement(s, run, at, sh->ranks, sh->slots,
						  o->c.current && !strcmp(o->c.current, "static"),
						  cur, &deployed, NULL, err)))
			return rc;
		if (o->c.current && !strcmp(o->c.current, "deployed") && !deployed)
			return util_err_set(err, UTIL_EUSAGE,
					    "--current deployed: run '%s' records no deployed "
					    "placement for %d ranks x %d slots",
					    run->name, sh->ranks, sh->slots);
		*name = deployed ? "deployed" : "static";
		return 0;
	}
	*name = o->c.current;
	return analyze_format_read(o->c.current, sh, cur, NULL, err);
}

/* Walks the next window once: every algorithm's per-step imbalance and
 * token drop, and the window's summed heat. */
/* The current placement on the next window, in serving units. */
struct cmp_base {
	const int32_t *cur;     /* [layers * ranks*slots] */
	int *cnt;               /* [layers * experts] */
	double moe_s, dense_s, tokens;
};

static int score_next(struct store *s, const struct store_run *run, const struct cmp_opts *o,
		      const struct analyze_deploy *dep, struct cmp_base *base,
		      const int64_t win[4], struct cmp_algo *a, int na, double *sum_heat,
		      int64_t *nsteps, struct util_err *err)
{
	const int timed = dep->sec_per_token > 0 || dep->sec_per_expert > 0;
	const int topk = run->topk > 0 ? run->topk : dep->topk > 0 ? dep->topk : 1;
	int L = run->layers, E = run->experts, R = o->c.ranks, S = o->c.slots, P = R * S, rc;
	struct store_iter *it = NULL;
	struct store_step st;
	double *load = xcalloc((size_t)R, sizeof(double));

	memset(sum_heat, 0, (size_t)L * E * sizeof(double));
	*nsteps = 0;
	if ((rc = store_iter_new(s, run, win[2], win[3], o->c.phase_mask, &it))) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	while ((rc = store_iter_next(it, &st)) == 1) {
		double routed = 0;
		for (size_t k = 0; k < (size_t)L * E; k++)
			sum_heat[k] += st.counts[k];
		for (int e = 0; e < E; e++)
			routed += st.counts[e];
		/* tokens of the batch: recorded, else layer 0's routed tokens / top-k */
		double tk = st.tokens > 0 ? (double)st.tokens : routed / topk;
		base->tokens += tk;
		if (timed) {
			base->dense_s += analyze_dense_seconds(dep, tk);
			for (int l = 0; l < L; l++)
				base->moe_s += analyze_layer_seconds(
					dep, st.counts + (size_t)l * E, base->cur + (size_t)l * P, S,
					base->cnt + (size_t)l * E);
		}
		for (int i = 0; i < na; i++) {
			double smax = 0, smean = 0;
			for (int l = 0; l < L; l++) {
				double m = analyze_device_load_u32(
					st.counts + (size_t)l * E, E,
					a[i].plan.phy2log + (size_t)l * P, R, S,
					a[i].cnt + (size_t)l * E, load);
				double tot = 0;
				for (int r = 0; r < R; r++)
					tot += load[r];
				smax += m;
				smean += tot / R;
				if (timed)
					a[i].moe_s += analyze_layer_seconds(
						dep, st.counts + (size_t)l * E,
						a[i].plan.phy2log + (size_t)l * P, S,
						a[i].cnt + (size_t)l * E);
				a[i].dropped += analyze_token_drop(load, R, o->c.capacity) * tot;
				a[i].tokens += tot;
			}
			if ((size_t)*nsteps == a[i].step_cap) {
				a[i].step_cap = a[i].step_cap ? 2 * a[i].step_cap : 256;
				a[i].step_imb =
					xrealloc(a[i].step_imb, a[i].step_cap * sizeof(double));
			}
			a[i].step_imb[*nsteps] = smean > 0 ? smax / smean : 1;
			a[i].step_sum += a[i].step_imb[*nsteps];
		}
		(*nsteps)++;
	}
	if (rc < 0)
		util_err_set(err, rc, "%s", store_errmsg(s));
out:
	store_iter_free(it);
	free(load);
	return rc < 0 ? rc : 0;
}

static struct json_object *jd(double x)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.6g", x);
	return json_object_new_double_s(x, buf);
}

/* The flagship reads the window as blocks with its history (robust.c)
 * unless the episodes are given. */
static int wants_blocks(const struct cmp_opts *o, const struct cmp_algo *a, int na)
{
	for (int i = 0; i < na && !o->c.episodes_set; i++)
		if (!strcmp(a[i].algo->name, ANALYZE_FLAGSHIP))
			return 1;
	return 0;
}

/* ---- --rounds: the protocol of consecutive windows ------------------------ */

struct round_res {
	double fit, next, next_step, seconds;
	int64_t moves;
};

/* The ids of the selected steps of [from, to], in order (*ids malloc'ed). */
static int collect_steps(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			 unsigned mask, int64_t **ids, int64_t *n, struct util_err *err)
{
	struct store_iter *it = NULL;
	struct store_step st;
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((rc = store_iter_new(s, run, from, to, mask, &it)))
		return util_err_set(err, rc, "%s", store_errmsg(s));
	while ((rc = store_iter_next(it, &st)) == 1) {
		if ((size_t)*n == cap) {
			cap = cap ? 2 * cap : 256;
			*ids = xrealloc(*ids, cap * sizeof(int64_t));
		}
		(*ids)[(*n)++] = st.step;
	}
	if (rc < 0)
		util_err_set(err, rc, "%s", store_errmsg(s));
	store_iter_free(it);
	return rc < 0 ? rc : 0;
}

/* Window k of n steps cut into N: ordinals [k n / N, (k + 1) n / N). */
static void round_window(const int64_t *ids, int64_t n, int N, int k, int64_t w[2])
{
	w[0] = ids[(int64_t)k * n / N];
	w[1] = ids[(int64_t)(k + 1) * n / N - 1];
}

/* What every fit of compare gives an algorithm: the window's heat, its
 * episodes, and its blocks for the flagship (which forecasts from them). */
static struct analyze_plan_in plan_in(const struct cmp_opts *o, const struct analyze_algo *algo,
				      const struct store_run *run, const double *heat,
				      const double *episodes, const struct analyze_blocks *blk,
				      const int32_t *current, int ranks_per_node)
{
	int fl = !strcmp(algo->name, ANALYZE_FLAGSHIP);

	return (struct analyze_plan_in){
		.algo = algo,
		.layers = run->layers,
		.experts = run->experts,
		.ranks = o->c.ranks,
		.slots = o->c.slots,
		.nodes = o->c.nodes,
		.groups = o->c.groups,
		.max_moves = o->c.max_moves,
		.seed = o->c.seed,
		.heat = heat,
		.episodes = episodes,
		.n_episodes = o->c.episodes,
		.blocks = fl ? blk->heat : NULL,
		.n_blocks = fl ? blk->n : 0,
		.n_hist = fl ? blk->hist : 0,
		.current = current,
		.only_layer = -1,
		.threads = 2,
		.ranks_per_node = ranks_per_node,
	};
}

static int compare_rounds(struct store *s, const struct store_run *run, struct cmp_opts *o,
			  struct cmp_algo *a, int na, const int32_t *cur0, const char *cur_name)
{
	struct util_err err = UTIL_ERR_INIT;
	int L = run->layers, E = run->experts, R = o->c.ranks, P = R * o->c.slots, N = o->rounds;
	int status = 1, rc;
	int64_t *ids = NULL, n = 0, from, to, win[4], fit_steps, next_steps;
	double *heat = xmallocarray((size_t)L * E, sizeof(double)), *next = NULL, *load = NULL;
	double *episodes = NULL;
	int32_t *prev = xmallocarray((size_t)na * L * P, sizeof(int32_t));
	struct round_res *res = xcalloc((size_t)na * (N - 1), sizeof(*res));
	struct analyze_blocks blk = { 0 };

	from = o->c.from == INT64_MIN ? INT64_MIN : o->c.from;
	to = o->c.to == INT64_MAX ? INT64_MAX : o->c.to;
	if (from != INT64_MIN && to != INT64_MAX && to < from) {
		util_cli_error(CMD, "--steps: empty range %lld:%lld", (long long)from,
			       (long long)to);
		status = 2;
		goto out;
	}
	if ((rc = collect_steps(s, run, from, to, o->c.phase_mask, &ids, &n, &err))) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	if (n < N) {
		util_cli_error(CMD, "--rounds %d: run '%s' has %lld selected steps, fewer than %d "
			       "windows", N, run->name, (long long)n, N);
		status = 2;
		goto out;
	}
	if (o->c.episodes)
		episodes = xmallocarray((size_t)o->c.episodes * L * E, sizeof(double));
	next = xmallocarray((size_t)L * E, sizeof(double));
	load = xcalloc((size_t)R, sizeof(double));
	for (int i = 0; i < na; i++)
		memcpy(prev + (size_t)i * L * P, cur0, (size_t)L * P * sizeof(int32_t));
	for (int k = 0; k + 1 < N; k++) {
		round_window(ids, n, N, k, win);
		round_window(ids, n, N, k + 1, win + 2);
		if ((rc = analyze_window_heat(s, run, win[0], win[1], o->c.phase_mask,
					      o->c.episodes, heat, episodes, &fit_steps))) {
			util_cli_error(CMD, "%s", store_errmsg(s));
			status = util_exit_status(rc);
			goto out;
		}
		analyze_blocks_release(&blk);
		if (wants_blocks(o, a, na) &&
		    (rc = analyze_window_blocks(s, run, win[0], win[1], o->c.phase_mask, &blk,
						&err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
		for (int i = 0; i < na; i++) {
			struct analyze_plan_in in = plan_in(o, a[i].algo, run, heat, episodes, &blk,
							    prev + (size_t)i * L * P, 0);
			analyze_plan_release(&a[i].plan);
			if ((rc = analyze_plan_run(&in, &a[i].plan, &err))) {
				status = util_cli_fail(CMD, &err);
				goto out;
			}
			if (!a[i].cnt)
				a[i].cnt = xmallocarray((size_t)L * E, sizeof(int));
			for (int l = 0; l < L; l++)
				analyze_replicas(a[i].plan.phy2log + (size_t)l * P, P, E,
						 a[i].cnt + (size_t)l * E);
			a[i].step_sum = a[i].dropped = a[i].tokens = 0;
		}
		/* the rounds report balance only: score without the time model */
		struct analyze_deploy untimed = { 0 };
		struct cmp_base scratch = { 0 };
		if ((rc = score_next(s, run, o, &untimed, &scratch, win, a, na, next, &next_steps,
				     &err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
		for (int i = 0; i < na; i++) {
			struct round_res *r = &res[(size_t)i * (N - 1) + k];
			double smax = 0, smean = 0;
			for (int l = 0; l < L; l++) {
				double tot = 0;
				smax += analyze_device_load(next + (size_t)l * E, E,
							    a[i].plan.phy2log + (size_t)l * P, R,
							    o->c.slots, a[i].cnt + (size_t)l * E, load);
				for (int q = 0; q < R; q++)
					tot += load[q];
				smean += tot / R;
			}
			r->fit = a[i].plan.sum_mean > 0 ? a[i].plan.sum_max / a[i].plan.sum_mean : 1;
			r->next = smean > 0 ? smax / smean : 1;
			r->next_step = next_steps ? a[i].step_sum / next_steps : 1;
			r->moves = a[i].plan.moves;
			r->seconds = a[i].plan.seconds;
			memcpy(prev + (size_t)i * L * P, a[i].plan.phy2log,
			       (size_t)L * P * sizeof(int32_t));
		}
	}

	/* print: the mean over rounds per algorithm, then each round */
	if (o->out == OUT_JSON) {
		struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
		struct json_object *wins = json_object_new_array();
		json_object_object_add(root, "run", json_object_new_string(run->name));
		json_object_object_add(root, "layers", json_object_new_int(L));
		json_object_object_add(root, "experts", json_object_new_int(E));
		json_object_object_add(root, "ranks", json_object_new_int(R));
		json_object_object_add(root, "slots", json_object_new_int(o->c.slots));
		json_object_object_add(root, "rounds", json_object_new_int(N - 1));
		json_object_object_add(root, "current", json_object_new_string(cur_name));
		for (int k = 0; k < N; k++) {
			struct json_object *w = json_object_new_array();
			int64_t ww[2];
			round_window(ids, n, N, k, ww);
			json_object_array_add(w, json_object_new_int64(ww[0]));
			json_object_array_add(w, json_object_new_int64(ww[1]));
			json_object_array_add(wins, w);
		}
		json_object_object_add(root, "windows", wins);
		for (int i = 0; i < na; i++) {
			struct json_object *j = json_object_new_object(), *rr = json_object_new_array();
			struct round_res m = { 0 };
			for (int k = 0; k + 1 < N; k++) {
				const struct round_res *r = &res[(size_t)i * (N - 1) + k];
				struct json_object *jr = json_object_new_object();
				json_object_object_add(jr, "round", json_object_new_int(k));
				json_object_object_add(jr, "fit_imbalance", jd(r->fit));
				json_object_object_add(jr, "next_imbalance", jd(r->next));
				json_object_object_add(jr, "next_step_mean_imbalance",
						       jd(r->next_step));
				json_object_object_add(jr, "moves", json_object_new_int64(r->moves));
				json_object_object_add(jr, "seconds", jd(r->seconds));
				json_object_array_add(rr, jr);
				m.fit += r->fit / (N - 1);
				m.next += r->next / (N - 1);
				m.next_step += r->next_step / (N - 1);
				m.seconds += r->seconds / (N - 1);
				m.moves += r->moves;
			}
			json_object_object_add(j, "algorithm",
					       json_object_new_string(a[i].algo->name));
			json_object_object_add(j, "fit_imbalance", jd(m.fit));
			json_object_object_add(j, "next_imbalance", jd(m.next));
			json_object_object_add(j, "next_step_mean_imbalance", jd(m.next_step));
			json_object_object_add(j, "moves_per_round",
					       jd((double)m.moves / (N - 1)));
			json_object_object_add(j, "seconds_per_round", jd(m.seconds));
			json_object_object_add(j, "rounds", rr);
			json_object_array_add(arr, j);
		}
		json_object_object_add(root, "algorithms", arr);
		puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	} else if (o->out == OUT_CSV) {
		printf("scope,algorithm,round,fit_imbalance,next_imbalance,"
		       "next_step_mean_imbalance,moves,seconds\n");
		for (int i = 0; i < na; i++) {
			struct round_res m = { 0 };
			for (int k = 0; k + 1 < N; k++) {
				const struct round_res *r = &res[(size_t)i * (N - 1) + k];
				m.fit += r->fit / (N - 1);
				m.next += r->next / (N - 1);
				m.next_step += r->next_step / (N - 1);
				m.seconds += r->seconds / (N - 1);
				m.moves += r->moves;
			}
			printf("mean,%s,,%.6f,%.6f,%.6f,%.6f,%.6f\n", a[i].algo->name, m.fit, m.next,
			       m.next_step, (double)m.moves / (N - 1), m.seconds);
		}
		for (int i = 0; i < na; i++)
			for (int k = 0; k + 1 < N; k++) {
				const struct round_res *r = &res[(size_t)i * (N - 1) + k];
				printf("round,%s,%d,%.6f,%.6f,%.6f,%lld,%.6f\n", a[i].algo->name, k,
				       r->fit, r->next, r->next_step, (long long)r->moves,
				       r->seconds);
			}
	} else {
		int md = o->out == OUT_MARKDOWN;
		printf("run '%s': %d layers x %d experts, %d ranks x %d slots; %lld steps cut into "
		       "%d windows: fit on window k (from round k-1's placement, round 0 from "
		       "the %s one), score on window k+1, k = 0..%d\n",
		       run->name, L, E, R, o->c.slots, (long long)n, N, cur_name, N - 2);
		printf("%simbalance = sum of max / sum of mean device load over layers; next/step = "
		       "mean over the scored steps of the per-step figure; figures are means over "
		       "the %d rounds, copies and seconds per round\n\n",
		       md ? "\n" : "", N - 1);
		if (md)
			printf("| algorithm | fit | next | next/step | copies | time s |\n"
			       "|---|---:|---:|---:|---:|---:|\n");
		else
			printf("%-10s  %6s  %6s  %9s  %9s  %8s\n", "algorithm", "fit", "next",
			       "next/step", "copies", "time-s");
		for (int i = 0; i < na; i++) {
			struct round_res m = { 0 };
			for (int k = 0; k + 1 < N; k++) {
				const struct round_res *r = &res[(size_t)i * (N - 1) + k];
				m.fit += r->fit / (N - 1);
				m.next += r->next / (N - 1);
				m.next_step += r->next_step / (N - 1);
				m.seconds += r->seconds / (N - 1);
				m.moves += r->moves;
			}
			printf(md ? "| %s | %.4f | %.4f | %.4f | %.1f | %.4f |\n"
				  : "%-10s  %6.4f  %6.4f  %9.4f  %9.1f  %8.4f\n",
			       a[i].algo->name, m.fit, m.next, m.next_step,
			       (double)m.moves / (N - 1), m.seconds);
		}
		printf("\nper round: next imbalance (copies)\n%s",
		       md ? "\n| round | scored steps" : "round  scored-steps        ");
		for (int i = 0; i < na; i++)
			printf(md ? " | %s" : "  %18s", a[i].algo->name);
		printf(md ? " |\n|---|---" : "\n");
		for (int i = 0; md && i < na; i++)
			printf("|---:");
		printf(md ? "|\n" : "");
		for (int k = 0; k + 1 < N; k++) {
			int64_t ww[2];
			char span[48];
			round_window(ids, n, N, k + 1, ww);
			snprintf(span, sizeof(span), "%lld..%lld", (long long)ww[0],
				 (long long)ww[1]);
			printf(md ? "| %d | %s" : "%5d  %-18s", k, span);
			for (int i = 0; i < na; i++) {
				const struct round_res *r = &res[(size_t)i * (N - 1) + k];
				char cell[48];
				snprintf(cell, sizeof(cell), "%.4f (%lld)", r->next,
					 (long long)r->moves);
				printf(md ? " | %s" : "  %18s", cell);
			}
			printf(md ? " |\n" : "\n");
		}
	}
	status = 0;
out:
	free(ids);
	free(heat);
	free(episodes);
	free(next);
	free(load);
	free(prev);
	free(res);
	analyze_blocks_release(&blk);
	return status;
}

static double pct(double x)
{
	return 100 * x;
}

int cmd_compare(int argc, char **argv)
{
	struct cmp_opts o = { .c = ANALYZE_CLI_INIT, .dep = ANALYZE_DEPLOY_OPTS_INIT };
	struct analyze_deploy dep;
	struct cmp_base base = { 0 };
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run run;
	struct cmp_algo *a = xcalloc(MAX_ALGOS, sizeof(*a));
	const struct store_model *model;
	struct analyze_shape sh;
	const char *cur_name = NULL;
	double *fit_heat = NULL, *episodes = NULL, *next_heat = NULL, *load = NULL;
	double *lb_next = NULL, sum_mean_next = 0, sum_lb_next = 0;
	int32_t *cur = NULL;
	struct analyze_blocks blk = { 0 };
	int na = 0, rc, status = 1, L, E, R, P;
	int64_t win[4] = { 0, 0, 0, 0 }, fit_steps = 0, next_steps = 0;
	uint64_t ebytes = 0;

	if ((rc = parse_opts(argc, argv, &o, &err))) {
		free(a);
		if (rc == 1)
			return 0;
		if (err.msg[0]) /* else an unknown option, said in one line */
			util_cli_error(CMD, "%s", err.msg);
		return 2;
	}
	if (optind != argc - 1) {
		free(a);
		fputs(usage, stderr);
		return 2;
	}
	if ((rc = pick_algos(o.algos, a, &na, &err))) {
		free(a);
		return util_cli_fail(CMD, &err);
	}
	if (o.c.nodes && !o.c.groups) {
		free(a);
		util_cli_error(CMD, "--nodes needs --groups");
		return 2;
	}
	if ((rc = store_open_run(argv[optind], o.c.runname, STORE_READONLY, &s, &run, &err))) {
		free(a);
		return util_cli_fail(CMD, &err);
	}
	analyze_warn_missing_counts(CMD, s, &run);
	if (o.c.model) {
		/* a run recorded without a model takes the preset's layer ids */
		if (!run.model[0])
			run.first_layer = store_model_find(o.c.model)->first_layer;
		snprintf(run.model, sizeof(run.model), "%s", o.c.model);
	}
	L = run.layers;
	E = run.experts;
	if (o.c.groups && E % o.c.groups) {
		util_cli_error(CMD, "--groups %d does not divide %d experts", o.c.groups, E);
		status = 2;
		goto out;
	}
	if ((rc = analyze_layout_resolve(&run, o.c.ranks, o.c.slots, o.c.redundant, &o.c.ranks, &o.c.slots,
					 &err)) ||
	    (rc = resolve_windows(s, &run, &o, win, &err))) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	if (o.c.nodes && o.c.ranks % o.c.nodes) {
		util_cli_error(CMD, "--nodes %d does not divide %d ranks", o.c.nodes, o.c.ranks);
		status = 2;
		goto out;
	}
	R = o.c.ranks;
	P = R * o.c.slots;
	model = run.model[0] ? store_model_find(run.model) : NULL;
	o.dep.quant = o.c.quant;
	o.dep.link = o.c.link;
	o.dep.bandwidth = o.c.bandwidth;
	if ((rc = analyze_deploy_resolve(&run, model, R, &o.dep, &dep, &err))) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	if (!o.c.nodes && run.ranks_per_node > 0 && R % run.ranks_per_node == 0 &&
	    R / run.ranks_per_node > 1) {
		/* eplb-hier needs the node count: take it from the run's layout, and the
		 * expert groups from the model (DeepSeek's rule: hierarchical only when
		 * the nodes divide the groups; otherwise it falls back to global) */
		int g = model && model->groups > 1 ? model->groups : 0;
		o.c.nodes = R / run.ranks_per_node;
		o.c.groups = g && E % g == 0 ? g : o.c.nodes;
	}
	sh = (struct analyze_shape){
		L, E, R, o.c.slots, run.first_layer, model ? model->layer_step : 1
	};
	cur = xmallocarray((size_t)L * P, sizeof(int32_t));
	if ((rc = load_current(&o, s, &run, &sh, o.rounds ? win[0] : win[1], cur, &cur_name, &err))) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	if (o.rounds && o.per_layer) {
		util_cli_error(CMD, "--per-layer does not combine with --rounds");
		status = 2;
		goto out;
	}
	if (o.rounds) {
		status = compare_rounds(s, &run, &o, a, na, cur, cur_name);
		goto out;
	}

	/* fit */
	fit_heat = xmallocarray((size_t)L * E, sizeof(double));
	if (o.c.episodes)
		episodes = xmallocarray((size_t)o.c.episodes * L * E, sizeof(double));
	if ((rc = analyze_window_heat(s, &run, win[0], win[1], o.c.phase_mask, o.c.episodes, fit_heat,
				      episodes, &fit_steps))) {
		util_cli_error(CMD, "%s", store_errmsg(s));
		status = util_exit_status(rc); /* a corrupt trace is bad input */
		goto out;
	}
	if (!fit_steps) {
		util_cli_error(CMD, "no steps of run '%s' in the fitting window %lld..%lld%s",
			       run.name, (long long)win[0], (long long)win[1],
			       o.c.phase_mask ? " and phase" : "");
		status = 2;
		goto out;
	}
	if (wants_blocks(&o, a, na) &&
	    (rc = analyze_window_blocks(s, &run, win[0], win[1], o.c.phase_mask, &blk, &err))) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	for (int i = 0; i < na; i++) {
		struct analyze_plan_in in = plan_in(&o, a[i].algo, &run, fit_heat, episodes, &blk,
						    cur, dep.ranks_per_node);
		if ((rc = analyze_plan_run(&in, &a[i].plan, &err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
		a[i].cnt = xmallocarray((size_t)L * E, sizeof(int));
		for (int l = 0; l < L; l++)
			analyze_replicas(a[i].plan.phy2log + (size_t)l * P, P, E,
					 a[i].cnt + (size_t)l * E);
	}

	/* score on the next window */
	next_heat = xmallocarray((size_t)L * E, sizeof(double));
	base.cur = cur;
	base.cnt = xmallocarray((size_t)L * E, sizeof(int));
	for (int l = 0; l < L; l++)
		analyze_replicas(cur + (size_t)l * P, P, E, base.cnt + (size_t)l * E);
	if ((rc = score_next(s, &run, &o, &dep, &base, win, a, na, next_heat, &next_steps,
			     &err))) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	if (!next_steps) {
		util_cli_error(CMD,
			       "no steps of run '%s' after the fitting window to score on "
			       "(%lld..%lld)%s",
			       run.name, (long long)win[2], (long long)win[3],
			       o.c.phase_mask ? " in that phase" : "");
		status = 2;
		goto out;
	}
	load = xcalloc((size_t)R, sizeof(double));
	lb_next = xcalloc((size_t)L, sizeof(double));
	for (int l = 0; l < L; l++)
		lb_next[l] = analyze_lower_bound(next_heat + (size_t)l * E, E, R, o.c.slots);
	ebytes = dep.expert_bytes;
	/* serving units: the current placement on the next window is the baseline */
	const int timed = base.moe_s > 0;
	const double base_step_s = dep.step_seconds > 0 ? dep.step_seconds * (double)next_steps
							: base.dense_s + base.moe_s;
	const double tok_step = base.tokens / (double)next_steps;
	const double all_bytes = (double)ebytes * L * E;
	const double hbm_gib = analyze_redundant_gib(&dep, o.c.slots);
	for (int i = 0; i < na; i++) {
		struct cmp_algo *c = &a[i];
		double smax = 0;
		c->next_max = xcalloc((size_t)L, sizeof(double));
		c->next_mean = xcalloc((size_t)L, sizeof(double));
		sum_mean_next = sum_lb_next = 0;
		for (int l = 0; l < L; l++) {
			double tot = 0;
			c->next_max[l] = analyze_device_load(next_heat + (size_t)l * E, E,
							     c->plan.phy2log + (size_t)l * P, R,
							     o.c.slots, c->cnt + (size_t)l * E, load);
			for (int r = 0; r < R; r++)
				tot += load[r];
			c->next_mean[l] = tot / R;
			smax += c->next_max[l];
			sum_mean_next += c->next_mean[l];
			sum_lb_next += lb_next[l];
		}
		c->fit = c->plan.sum_mean > 0 ? c->plan.sum_max / c->plan.sum_mean : 1;
		c->gap_fit = c->plan.sum_lb > 0 ? c->plan.sum_max / c->plan.sum_lb - 1 : 0;
		c->next = sum_mean_next > 0 ? smax / sum_mean_next : 1;
		c->gap_next = sum_lb_next > 0 ? smax / sum_lb_next - 1 : 0;
		c->next_step = c->step_sum / next_steps;
		c->next_p99 = util_percentile(c->step_imb, (size_t)next_steps, 99);
		c->drop = c->tokens > 0 ? c->dropped / c->tokens : 0;
		c->bytes = (int64_t)(c->plan.moves * ebytes);
		c->bytes_inter = (int64_t)(c->plan.moves_inter * ebytes);
		c->xfer_s = analyze_transfer_seconds_tiers(c->plan.send, c->plan.recv, R, ebytes,
							   dep.intra_gbps, dep.inter_gbps,
							   &c->xfer_intra_s, &c->xfer_inter_s);
		c->moe_share = timed ? (base.moe_s - c->moe_s) / base.moe_s : 0;
		c->step_share = timed && base_step_s > 0 ? (base.moe_s - c->moe_s) / base_step_s : 0;
	}

	/* print */
	if (o.out == OUT_JSON) {
		struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
		struct json_object *fw = json_object_new_array(), *nw = json_object_new_array();
		json_object_array_add(fw, json_object_new_int64(win[0]));
		json_object_array_add(fw, json_object_new_int64(win[1]));
		json_object_array_add(nw, json_object_new_int64(win[2]));
		json_object_array_add(nw, json_object_new_int64(win[3]));
		char name[3 * sizeof(run.name) + 1]; /* JSON is UTF-8 (U+FFFD) */
		json_object_object_add(root, "run",
				       json_object_new_string(
					       util_utf8_sanitize(name, sizeof(name), run.name)));
		json_object_object_add(root, "layers", json_object_new_int(L));
		json_object_object_add(root, "experts", json_object_new_int(E));
		json_object_object_add(root, "ranks", json_object_new_int(R));
		json_object_object_add(root, "slots", json_object_new_int(o.c.slots));
		json_object_object_add(root, "fit_window", fw);
		json_object_object_add(root, "fit_steps", json_object_new_int64(fit_steps));
		json_object_object_add(root, "next_window", nw);
		json_object_object_add(root, "next_steps", json_object_new_int64(next_steps));
		json_object_object_add(root, "current", json_object_new_string(cur_name));
		json_object_object_add(root, "expert_bytes",
				       model ? json_object_new_int64((int64_t)ebytes) : NULL);
		json_object_object_add(root, "quant",
				       json_object_new_string(analyze_quant_name(dep.quant)));
		json_object_object_add(root, "ranks_per_node",
				       json_object_new_int(dep.ranks_per_node));
		json_object_object_add(root, "nodes", json_object_new_int(R / dep.ranks_per_node));
		json_object_object_add(root, "link_intra", json_object_new_string(dep.link_intra));
		json_object_object_add(root, "link_inter", json_object_new_string(dep.link_inter));
		json_object_object_add(root, "intra_gbytes_per_s", jd(dep.intra_gbps));
		json_object_object_add(root, "inter_gbytes_per_s", jd(dep.inter_gbps));
		json_object_object_add(root, "hardware", json_object_new_string(dep.hw->name));
		json_object_object_add(root, "hbm_redundant_gib_per_rank",
				       model ? jd(hbm_gib) : NULL);
		json_object_object_add(root, "tokens_per_step", jd(tok_step));
		json_object_object_add(root, "tokens_per_rank", jd(tok_step / R));
		json_object_object_add(root, "estimated",
				       json_object_new_boolean(dep.step_seconds <= 0));
		json_object_object_add(root, "baseline_moe_ms_per_step",
				       timed ? jd(base.moe_s / next_steps * 1e3) : NULL);
		json_object_object_add(root, "baseline_step_ms",
				       timed ? jd(base_step_s / next_steps * 1e3) : NULL);
		if (o.c.capacity_set)
			json_object_object_add(root, "capacity_factor", jd(o.c.capacity));
		json_object_object_add(root, "baseline_tokens_per_s",
				       timed ? jd(base.tokens / base_step_s) : NULL);
		for (int i = 0; i < na; i++) {
			struct cmp_algo *c = &a[i];
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
					       model ? json_object_new_int64(c->bytes) : NULL);
			json_object_object_add(j, "transfer_seconds", model ? jd(c->xfer_s) : NULL);
			json_object_object_add(j, "bytes_intra_node",
					       model ? json_object_new_int64(c->bytes - c->bytes_inter)
						     : NULL);
			json_object_object_add(j, "bytes_inter_node",
					       model ? json_object_new_int64(c->bytes_inter) : NULL);
			json_object_object_add(j, "transfer_intra_seconds",
					       model ? jd(c->xfer_intra_s) : NULL);
			json_object_object_add(j, "transfer_inter_seconds",
					       model ? jd(c->xfer_inter_s) : NULL);
			json_object_object_add(j, "weights_moved_share",
					       model ? jd(c->bytes / all_bytes) : NULL);
			json_object_object_add(j, "hbm_redundant_gib_per_rank",
					       model ? jd(hbm_gib) : NULL);
			json_object_object_add(j, "moe_time_saved_share",
					       timed ? jd(c->moe_share) : NULL);
			json_object_object_add(j, "step_time_saved_share",
					       timed ? jd(c->step_share) : NULL);
			json_object_object_add(j, "tokens_per_s",
					       timed ? jd(base.tokens / (base_step_s - (base.moe_s -
											 c->moe_s)))
						     : NULL);
			if (o.c.capacity_set)
				json_object_object_add(j, "token_drop", jd(c->drop));
			json_object_object_add(j, "seconds", jd(c->plan.seconds));
			for (int l = 0; l < L; l++) {
				const struct analyze_plan_layer *pll = &c->plan.layer[l];
				struct json_object *jl = json_object_new_object();
				json_object_object_add(jl, "layer", json_object_new_int(l));
				json_object_object_add(jl, "fit_imbalance", jd(pll->imbalance));
				json_object_object_add(jl, "next_imbalance",
						       jd(c->next_mean[l] > 0
								  ? c->next_max[l] / c->next_mean[l]
								  : 1));
				json_object_object_add(jl, "gap_fit",
						       jd(pll->lower_bound > 0
								  ? pll->max_load / pll->lower_bound - 1
								  : 0));
				json_object_object_add(
					jl, "gap_next",
					jd(lb_next[l] > 0 ? c->next_max[l] / lb_next[l] - 1 : 0));
				json_object_object_add(jl, "moves", json_object_new_int64(pll->moves));
				json_object_array_add(pl, jl);
			}
			json_object_object_add(j, "per_layer", pl);
			json_object_array_add(arr, j);
		}
		json_object_object_add(root, "algorithms", arr);
		puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	} else if (o.out == OUT_CSV) {
		printf("scope,algorithm,layer,fit_imbalance,next_imbalance,next_step_mean_imbalance,"
		       "gap_fit,gap_next,moves,bytes,transfer_seconds,%sseconds,"
		       "next_step_p99_imbalance\n",
		       o.c.capacity_set ? "token_drop," : "");
		for (int i = 0; i < na; i++) {
			struct cmp_algo *c = &a[i];
			printf("overall,%s,,%.6f,%.6f,%.6f,%.6f,%.6f,%lld,", c->algo->name, c->fit,
			       c->next, c->next_step, c->gap_fit, c->gap_next,
			       (long long)c->plan.moves);
			if (model)
				printf("%lld,%.6f", (long long)c->bytes, c->xfer_s);
			else
				printf(",");
			if (o.c.capacity_set)
				printf(",%.6f", c->drop);
			printf(",%.6f,%.6f\n", c->plan.seconds, c->next_p99);
		}
		for (int i = 0; o.per_layer && i < na; i++)
			for (int l = 0; l < L; l++) {
				struct cmp_algo *c = &a[i];
				const struct analyze_plan_layer *pl = &c->plan.layer[l];
				printf("layer,%s,%d,%.6f,%.6f,,%.6f,%.6f,%lld,", c->algo->name, l,
				       pl->imbalance,
				       c->next_mean[l] > 0 ? c->next_max[l] / c->next_mean[l] : 1,
				       pl->lower_bound > 0 ? pl->max_load / pl->lower_bound - 1 : 0,
				       lb_next[l] > 0 ? c->next_max[l] / lb_next[l] - 1 : 0,
				       (long long)pl->moves);
				if (model)
					printf("%llu,", (unsigned long long)pl->moves * ebytes);
				else
					printf(",");
				printf(o.c.capacity_set ? ",,,\n" : ",,\n");
			}
	} else {
		int md = o.out == OUT_MARKDOWN;
		const char *sep = md ? " | " : "  ";
		const int cap = o.c.capacity_set;
		char hb1[32], hb2[32];
		printf("run '%s': %d layers x %d experts, %d ranks x %d slots; fitted on steps "
		       "%lld..%lld (%lld steps), scored on the next %lld..%lld (%lld steps)\n",
		       run.name, L, E, R, o.c.slots, (long long)win[0],
		       (long long)win[1], (long long)fit_steps, (long long)win[2],
		       (long long)win[3], (long long)next_steps);
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
			       md ? "\n" : "", o.c.capacity);
		if (model)
			printf("%smoves from the %s placement; %s per expert (%s %s); %d node%s "
			       "x %d ranks, transfer at %.1f GB/s per rank inside a node (%s) and "
			       "%.1f GB/s across (%s), ranks sending in parallel; %s of HBM per "
			       "rank on redundant experts\n",
			       md ? "\n" : "", cur_name,
			       util_human_bytes(hb1, sizeof(hb1), (double)ebytes), model->name,
			       analyze_quant_name(dep.quant), R / dep.ranks_per_node,
			       R / dep.ranks_per_node > 1 ? "s" : "", dep.ranks_per_node,
			       dep.intra_gbps, dep.link_intra, dep.inter_gbps, dep.link_inter,
			       util_human_bytes(hb2, sizeof(hb2), hbm_gib * 1073741824.0));
		if (timed)
			printf("%snext window: %.0f tokens per step, %.1f per rank; under the %s "
			       "placement MoE time %.3f ms (busiest rank) of a %.3f ms step, %.0f "
			       "tokens/s (%s); saved = share of that MoE time and of that step time, "
			       "before transfers\n\n",
			       md ? "\n" : "", tok_step, tok_step / R, cur_name,
			       base.moe_s / next_steps * 1e3, base_step_s / next_steps * 1e3,
			       base.tokens / base_step_s,
			       dep.step_seconds > 0 ? "measured, --step-ms"
						    : "estimates on the hardware's peak rates, "
						      "docs/replay.md");
		else if (model)
			printf("\n");
		else
			printf("%smoves from the %s placement (give --model for bytes and "
			       "seconds)\n\n",
			       md ? "\n" : "", cur_name);
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
		for (int i = 0; i < na; i++) {
			struct cmp_algo *c = &a[i];
			char gb[32], xs[32], ms[32], ss[32], ts[32];
			if (timed) {
				snprintf(ms, sizeof(ms), "%.2f%%", pct(c->moe_share));
				snprintf(ss, sizeof(ss), "%.2f%%", pct(c->step_share));
				snprintf(ts, sizeof(ts), "%.0f",
					 base.tokens / (base_step_s - (base.moe_s - c->moe_s)));
			} else {
				strcpy(ms, "-");
				strcpy(ss, "-");
				strcpy(ts, "-");
			}
			if (model) {
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
		if (o.per_layer) {
			printf("\nper layer: imbalance fitted / next\n%s",
			       md ? "\n| layer" : "layer");
			for (int i = 0; i < na; i++)
				printf(md ? " | %s" : "  %15s", a[i].algo->name);
			printf(md ? " |\n|---" : "\n");
			for (int i = 0; md && i < na; i++)
				printf("|---:");
			printf(md ? "|\n" : "");
			for (int l = 0; l < L; l++) {
				printf(md ? "| %d" : "%5d", l);
				for (int i = 0; i < na; i++) {
					struct cmp_algo *c = &a[i];
					double nx = c->next_mean[l] > 0
							    ? c->next_max[l] / c->next_mean[l]
							    : 1;
					printf("%s%s%7.4f / %-7.4f", md ? sep : "  ", "",
					       c->plan.layer[l].imbalance, nx);
				}
				printf(md ? " |\n" : "\n");
			}
		}
	}
	status = 0;
out:
	for (int i = 0; i < na; i++) {
		analyze_plan_release(&a[i].plan);
		free(a[i].cnt);
		free(a[i].next_max);
		free(a[i].next_mean);
		free(a[i].step_imb);
	}
	free(a);
	free(fit_heat);
	free(episodes);
	free(next_heat);
	free(load);
	free(lb_next);
	free(cur);
	free(base.cnt);
	analyze_blocks_release(&blk);
	store_free(s);
	return status;
}

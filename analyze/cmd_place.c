/*
 * cmd_place.c: `moetrace place` — run one placement algorithm on the heat
 * of a recorded window (or a heat JSON), print each layer's balance
 * against the proven lower bound, what moving from the current placement
 * would cost, and write the result in a file an engine loads.
 *
 * The flow (place_run, on one struct place): parse options, read the heat
 * (place_read_heat_file, or place_open_db and place_read_window), resolve
 * the EP layout and deployment, read the current placement if one is
 * given, run analyze_plan_run, score on the next window, then print text or
 * JSON and write -o.
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
	"usage: moetrace place [--run NAME] [--algo NAME] [--ranks R] [--slots S | --redundant N]\n"
	"                      [--nodes N --groups G] [--steps A:B] [--layer L]\n"
	"                      [--phase prefill|decode] [--episodes K] [--max-moves N] [--seed N]\n"
	"                      [--current FILE|static|deployed|none] [--model NAME]\n"
	"                      [--quant bf16|fp8|w8a8|w4a8|mxfp4] [--ranks-per-node N]\n"
	"                      [--link NAME | --link-intra NAME --link-inter NAME | --bandwidth GB/s]\n"
	"                      [--capacity F] [--json] [-o FILE [--format vllm-ascend|sglang|trtllm]]\n"
	"                      (DB | --heat FILE)\n"
	"       moetrace place --list\n";

#define CMD "place"

struct place_opts {
	struct analyze_cli c;
	const char *algo, *heat_path, *out;
	int layer, json, list, format;
};

static void list_algos(void)
{
	const struct analyze_algo *a;

	for (size_t i = 0; (a = analyze_algo_at(i)); i++)
		printf("%-10s %s%s\n", a->name, a->desc,
		       !strcmp(a->name, ANALYZE_FLAGSHIP) ? " [default]" : "");
}

static int parse_opts(int argc, char **argv, struct place_opts *o, struct util_err *err)
{
	static const struct option opts[] = {
		ANALYZE_CLI_LONGOPTS,
		{ "algo", required_argument, NULL, 'a' },
		{ "layer", required_argument, NULL, 'l' },
		{ "heat", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "list", no_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a': o->algo = optarg; break;
		case 'l':
			if (util_parse_int(optarg, 0, STORE_MAX_LAYERS - 1, &o->layer, "--layer",
					   err))
				return err->code;
			break;
		case 'H': o->heat_path = optarg; break;
		case 'j': o->json = 1; break;
		case 'i': o->list = 1; break;
		case 'o': o->out = optarg; break;
		case 'f':
			if ((o->format = analyze_format_parse(optarg)) < 0) {
				static const char *const fmts[] = { "vllm-ascend", "sglang",
								    "trtllm", NULL };
				char hint[96];
				return util_err_set(
					err, UTIL_EUSAGE,
					"--format: '%s' is not vllm-ascend, sglang or trtllm%s", optarg,
					util_did_you_mean(util_suggest_list(optarg, fmts), hint,
							  sizeof(hint)));
			}
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

/* The most copies one rank sends (or receives) over both tiers: v is a
 * plan's [2 * n] counts, inside nodes then across. */
static int64_t max_of(const int64_t *v, int n)
{
	int64_t m = 0;

	for (int i = 0; i < n; i++)
		if (v[i] + v[n + i] > m)
			m = v[i] + v[n + i];
	return m;
}

/* Engine-named figures over the planned layers of the fitting heat. */
struct engine_figures {
	double balancedness, par_mean, par_max, trtllm, drop;
};

static void engine_figures(const struct analyze_plan *plan, const double *heat, int experts,
			   int only, double capacity, struct engine_figures *f)
{
	int R = plan->ranks, S = plan->slots, P = R * S, n = 0;
	double *load = xcalloc((size_t)R, sizeof(double)), dropped = 0, tokens = 0;

	memset(f, 0, sizeof(*f));
	for (int l = 0; l < plan->layers; l++) {
		double par = plan->layer[l].imbalance, sum = 0;
		if ((only >= 0 && l != only) || isnan(par))
			continue; /* not asked for, or not scored (no token) */
		analyze_device_load(heat + (size_t)l * experts, experts,
				    plan->phy2log + (size_t)l * P, R, S, NULL, load);
		for (int r = 0; r < R; r++)
			sum += load[r];
		dropped += analyze_token_drop(load, R, capacity) * sum;
		tokens += sum;
		f->par_mean += par;
		if (par > f->par_max)
			f->par_max = par;
		f->trtllm += par - 1;
		n++;
	}
	if (n) {
		f->par_mean /= n;
		f->trtllm /= n;
	}
	f->balancedness = plan->sum_max > 0 ? plan->sum_mean / plan->sum_max : 1;
	f->drop = tokens > 0 ? dropped / tokens : 0;
	free(load);
}

/* The placement scored on steps it was not fitted on: the window after
 * the fitting one, as long (or to the end of the run), as `compare` scores
 * it.  The figures sum over the planned layers (one with --layer). */
struct next_score {
	int64_t win[2];  /* step range asked for */
	int64_t steps;   /* steps scored (0: the run has none after the window) */
	double imbalance; /* sum of max / sum of mean on the window's summed heat */
	double step_mean; /* mean over its steps of the per-step figure */
};

/* With no steps after the window, the same fit made on earlier steps and
 * scored on the window itself (place_holdout). */
struct holdout {
	int64_t fit[2];   /* the step ids it was fitted on */
	int64_t fit_steps; /* the steps among them */
	int halves;       /* fitted on the window's first half, because the steps
			   * before it: */
	const char *why;  /* "are not in the run", ... */
	struct next_score ns; /* scored on the steps after fit[1], to the window's end */
};

static int score_next(struct store *s, const struct store_run *run, const struct place_opts *o,
		      const struct analyze_plan *plan, int64_t fit_to, int64_t len,
		      struct next_score *ns, struct util_err *err)
{
	int L = run->layers, E = run->experts, R = plan->ranks, S = plan->slots, P = R * S, rc;
	struct store_run_stats st;
	struct store_iter *it = NULL;
	struct store_step step;
	double *heat = NULL, *load = NULL, step_sum = 0, smax = 0, smean = 0;
	int64_t scored = 0;
	int *cnt = NULL;

	memset(ns, 0, sizeof(*ns));
	if (store_run_stats(s, run->id, &st))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	if (fit_to >= st.last_step)
		return 0;
	ns->win[0] = fit_to + 1;
	ns->win[1] = fit_to > st.last_step - len ? st.last_step : fit_to + len;
	heat = xcalloc((size_t)L * E, sizeof(double));
	load = xcalloc((size_t)R, sizeof(double));
	cnt = xmallocarray((size_t)L * E, sizeof(int));
	for (int l = 0; l < L; l++)
		analyze_replicas(plan->phy2log + (size_t)l * P, P, E, cnt + (size_t)l * E);
	if ((rc = store_iter_new(s, run, ns->win[0], ns->win[1], o->c.phase_mask, &it))) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	while ((rc = store_iter_next(it, &step)) == 1) {
		double mx = 0, mn = 0;
		for (int l = 0; l < L; l++) {
			double tot = 0;
			if (o->layer >= 0 && l != o->layer)
				continue;
			for (int e = 0; e < E; e++)
				heat[(size_t)l * E + e] += step.counts[(size_t)l * E + e];
			mx += analyze_device_load_u32(step.counts + (size_t)l * E, E,
						      plan->phy2log + (size_t)l * P, R, S,
						      cnt + (size_t)l * E, load);
			for (int r = 0; r < R; r++)
				tot += load[r];
			mn += tot / R;
		}
		/* a step without tokens (in the layers placed) is not scored */
		if (mn > 0) {
			step_sum += mx / mn;
			scored++;
		}
		ns->steps++;
	}
	if (rc < 0) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	rc = 0;
	for (int l = 0; l < L; l++) {
		double tot = 0;
		if (o->layer >= 0 && l != o->layer)
			continue;
		smax += analyze_device_load(heat + (size_t)l * E, E, plan->phy2log + (size_t)l * P, R,
					    S, cnt + (size_t)l * E, load);
		for (int r = 0; r < R; r++)
			tot += load[r];
		smean += tot / R;
	}
	ns->imbalance = smean > 0 ? smax / smean : 1;
	ns->step_mean = scored ? step_sum / (double)scored : NAN;
	if (!scored) /* no token after the window: nothing scores out of sample */
		ns->steps = 0;
out:
	store_iter_free(it);
	free(heat);
	free(load);
	free(cnt);
	return rc;
}

/* Everything one `place` holds, from the options to the printed figures;
 * place_release() frees it at any point. */
struct place {
	struct place_opts o;
	struct store *s;                /* NULL with --heat */
	struct store_run run;
	struct analyze_heat_file hf;
	struct analyze_plan plan;
	struct analyze_blocks blk;
	struct analyze_shape sh;
	const struct analyze_algo *algo;
	const struct store_model *model;
	struct analyze_deploy dep;
	double *heat, *episodes;        /* the heat file's with --heat */
	int32_t *cur;                   /* with --current */
	int n_ep, fmt;                  /* fmt: of -o, else -1 */
	int64_t nsteps, fit_win[2];
	struct next_score ns;
	const char *cur_spec;           /* --current as given (place_holdout) */
	struct holdout ho;
	struct engine_figures ef;
	double secs, intra_s, inter_s, overall, lb_overall;
};

static void place_release(struct place *p)
{
	analyze_plan_release(&p->plan);
	if (p->o.heat_path) {
		analyze_heat_release(&p->hf);
	} else {
		free(p->heat);
		free(p->episodes);
	}
	free(p->cur);
	analyze_blocks_release(&p->blk);
	store_free(p->s);
}

/* The algorithm and the combinations of options, before anything is read:
 * 0, else the exit status. */
static int place_check_args(struct place *p, int argc, char **argv)
{
	const struct place_opts *o = &p->o;
	struct util_err err = UTIL_ERR_INIT;

	if (!(p->algo = analyze_algo_find(o->algo ? o->algo : ANALYZE_FLAGSHIP))) {
		char hint[96];
		util_cli_error(CMD, "--algo: unknown algorithm '%s'%s (moetrace place --list)",
			       o->algo ? o->algo : ANALYZE_FLAGSHIP,
			       util_did_you_mean(analyze_algo_suggest(o->algo ? o->algo : ""), hint,
						 sizeof(hint)));
		return 2;
	}
	if ((o->heat_path != NULL) == (optind < argc) || optind + (o->heat_path ? 0 : 1) != argc) {
		util_cli_error(CMD, "give one database or --heat FILE");
		fputs(usage, stderr);
		return 2;
	}
	if (o->out && o->layer >= 0) {
		util_cli_error(CMD, "-o writes every layer: drop --layer");
		return 2;
	}
	if (o->out && util_out_check(o->out, o->heat_path ? o->heat_path : argv[optind], &err))
		return util_cli_fail(CMD, &err);
	if (o->c.nodes && o->c.groups == 0) {
		util_cli_error(CMD, "--nodes needs --groups");
		return 2;
	}
	return 0;
}

/* --heat FILE: the heat, its episodes and the run's shape from the file. */
static int place_read_heat_file(struct place *p, struct util_err *err)
{
	const struct place_opts *o = &p->o;
	struct store_run *run = &p->run;

	if (o->c.runname || o->c.phase_mask || o->c.from != INT64_MIN || o->c.to != INT64_MAX) {
		util_cli_error(CMD, "--run, --steps and --phase select from a database, "
				    "not a heat file");
		return 2;
	}
	if (analyze_heat_read(o->heat_path, &p->hf, err))
		return util_cli_fail(CMD, err);
	if (o->c.episodes_set) {
		util_cli_error(CMD, "--episodes splits a recorded window; a heat file "
				    "carries its own \"episodes\"");
		return 2;
	}
	snprintf(run->name, sizeof(run->name), "%s", o->heat_path);
	run->layers = p->hf.layers;
	run->experts = p->hf.experts;
	run->ranks = p->hf.ranks;
	run->slots = p->hf.slots;
	if (o->c.model) {
		snprintf(run->model, sizeof(run->model), "%s", o->c.model);
		run->first_layer = store_model_find(o->c.model)->first_layer;
	}
	p->heat = p->hf.heat;
	p->episodes = p->hf.episodes;
	p->n_ep = p->hf.n_episodes;
	return 0;
}

static int place_open_db(struct place *p, const char *path, struct util_err *err)
{
	const struct place_opts *o = &p->o;
	struct store_run *run = &p->run;

	if (store_open_run(path, o->c.runname, STORE_READONLY, &p->s, run, err))
		return util_cli_fail(CMD, err);
	analyze_warn_missing_counts(CMD, p->s, run);
	if (o->c.model) {
		/* a run recorded without a model takes the preset's layer ids */
		if (!run->model[0])
			run->first_layer = store_model_find(o->c.model)->first_layer;
		snprintf(run->model, sizeof(run->model), "%s", o->c.model);
	}
	return 0;
}

/* --layer, --groups and --nodes against the run, the EP layout, and the
 * format of -o. */
static int place_check_layout(struct place *p, struct util_err *err)
{
	struct place_opts *o = &p->o;
	const int L = p->run.layers, E = p->run.experts;

	if (o->layer >= L) {
		util_cli_error(CMD, "--layer %d: the run has %d MoE layers (0..%d)", o->layer, L,
			       L - 1);
		return 2;
	}
	if (o->c.groups && E % o->c.groups) {
		util_cli_error(CMD, "--groups %d does not divide %d experts", o->c.groups, E);
		return 2;
	}
	if (analyze_layout_resolve(&p->run, o->c.ranks, o->c.slots, o->c.redundant, &o->c.ranks,
				   &o->c.slots, err))
		return util_cli_fail(CMD, err);
	if (o->c.nodes && o->c.ranks % o->c.nodes) {
		util_cli_error(CMD, "--nodes %d does not divide %d ranks", o->c.nodes, o->c.ranks);
		return 2;
	}
	if (o->out) {
		size_t n = strlen(o->out);
		p->fmt = o->format >= 0 ? o->format : ANALYZE_FORMAT_VLLM_ASCEND;
		if (o->format < 0 && ((n > 5 && !strcmp(o->out + n - 5, ".yaml")) ||
				      (n > 4 && !strcmp(o->out + n - 4, ".yml"))))
			p->fmt = ANALYZE_FORMAT_TRTLLM;
	}
	return 0;
}

/* Reads the steps of p->o's window: its summed heat (and episodes), and
 * for the flagship its blocks and history, which hold the heat too (one
 * reading).  0, or a negative code with err set. */
static int window_read(struct place *p, struct util_err *err)
{
	const struct place_opts *o = &p->o;
	const int L = p->run.layers, E = p->run.experts;
	int rc;

	p->heat = xmallocarray((size_t)L * E, sizeof(double));
	if (o->c.episodes)
		p->episodes = xmallocarray((size_t)o->c.episodes * L * E, sizeof(double));
	p->n_ep = o->c.episodes;
	if (!o->c.episodes_set && analyze_algo_forecasts(p->algo) &&
	    (rc = analyze_window_blocks(p->s, &p->run, o->c.from, o->c.to, o->c.phase_mask, &p->blk,
					err)))
		return rc;
	if (p->blk.n) {
		analyze_blocks_window_heat(&p->blk, p->heat);
		p->nsteps = p->blk.nw;
	} else if ((rc = analyze_window_heat(p->s, &p->run, o->c.from, o->c.to, o->c.phase_mask,
					     p->n_ep, p->heat, p->episodes, &p->nsteps))) {
		return util_err_set(err, rc, "%s", store_errmsg(p->s));
	}
	return 0;
}

/* The fitting window from the database: its heat, episodes and blocks. */
static int place_read_window(struct place *p, struct util_err *err)
{
	if (window_read(p, err))
		return util_cli_fail(CMD, err);
	if (p->nsteps == 0) {
		util_cli_error(CMD, "no steps of run '%s' in the chosen range%s", p->run.name,
			       p->o.c.phase_mask ? " and phase" : "");
		return 2;
	}
	return 0;
}

/* The model, the shape placement files take, nodes, links and precision
 * (as replay and compare resolve them), and the current placement. */
static int place_deployment(struct place *p, struct util_err *err)
{
	struct place_opts *o = &p->o;
	const struct store_run *run = &p->run;
	struct analyze_deploy_opts dopts = ANALYZE_DEPLOY_OPTS_INIT;

	p->cur_spec = o->c.current;
	p->model = run->model[0] ? store_model_find(run->model) : NULL;
	p->sh = (struct analyze_shape){ run->layers, run->experts, o->c.ranks, o->c.slots,
					run->first_layer, p->model ? p->model->layer_step : 1 };
	dopts.quant = o->c.quant;
	dopts.link = o->c.link;
	dopts.link_intra = o->c.link_intra;
	dopts.link_inter = o->c.link_inter;
	dopts.bandwidth = o->c.bandwidth;
	dopts.ranks_per_node = o->c.ranks_per_node;
	if (analyze_deploy_resolve(run, p->model, o->c.ranks, &dopts, &p->dep, err))
		return util_cli_fail(CMD, err);
	o->c.quant = p->dep.quant;
	if (o->c.current && !strcmp(o->c.current, "none")) {
		/* from scratch: no placement to move from, no moves counted */
		o->c.current = NULL;
		return 0;
	}
	if (o->c.current || p->s) {
		/* by default, as compare: the placement in force at the end of
		 * the fitting window (recorded, else static), so that a
		 * migration-aware algorithm moves only what pays and the figures
		 * are compare's (none without a database: from scratch) */
		p->cur = xmallocarray((size_t)run->layers * o->c.ranks * o->c.slots,
				      sizeof(int32_t));
		if (analyze_current_read(p->s, run, &p->sh, o->c.to, o->c.current, p->cur,
					 &o->c.current, err))
			return util_cli_fail(CMD, err);
	}
	return 0;
}

/* The algorithm's input on the window read (place_read_window). */
static struct analyze_plan_in place_plan_in(const struct place *p)
{
	const struct place_opts *o = &p->o;

	return (struct analyze_plan_in){
		.algo = p->algo,
		.layers = p->run.layers,
		.experts = p->run.experts,
		.ranks = o->c.ranks,
		.slots = o->c.slots,
		.nodes = o->c.nodes,
		.groups = o->c.groups,
		.max_moves = o->c.max_moves,
		.seed = o->c.seed,
		.heat = p->heat,
		.episodes = p->episodes,
		.n_episodes = p->n_ep,
		.blocks = p->blk.heat,
		.n_blocks = p->blk.n,
		.n_hist = p->blk.hist,
		.current = p->cur,
		.only_layer = o->layer,
		.threads = 2,
		.no_dup = o->out && p->fmt == ANALYZE_FORMAT_VLLM_ASCEND,
		.ranks_per_node = p->dep.ranks_per_node,
	};
}

/* The plan, with a note on stderr when the vllm-ascend file needed an
 * expert's second replica on one rank moved. */
static int place_plan(struct place *p, struct util_err *err)
{
	const struct place_opts *o = &p->o;
	const int L = p->run.layers;
	int rc, undup = 0;
	struct analyze_plan_in in = place_plan_in(p);

	if ((rc = analyze_plan_run(&in, &p->plan, err))) {
		if (in.no_dup) {
			util_cli_error(CMD,
				       "cannot write '%s' for vllm-ascend, whose loader "
				       "misroutes a device holding an expert twice: %s; "
				       "choose an algorithm that places an expert once per "
				       "rank (flashlb, swift, %s) or --format sglang|trtllm",
				       o->out, err->msg, ANALYZE_FLAGSHIP);
			return util_exit_status(rc);
		}
		return util_cli_fail(CMD, err);
	}
	for (int l = 0; l < L; l++)
		undup += p->plan.layer[l].undup > 0;
	if (undup)
		fprintf(stderr,
			"moetrace %s: note: %s put an expert twice on one rank in %d of %d "
			"layers; moved each second replica to another rank, since "
			"vllm-ascend's loader misroutes such a device (the figures below "
			"are for the moved placement)\n",
			CMD, p->algo->name, undup, L);
	return 0;
}

/* The fitting window's step range, and the placement scored on the window
 * after it. */
static int place_score_next(struct place *p, struct util_err *err)
{
	const struct place_opts *o = &p->o;
	struct store_run_stats st;

	if (store_run_stats(p->s, p->run.id, &st)) {
		util_cli_error(CMD, "%s", store_errmsg(p->s));
		return 1;
	}
	p->fit_win[0] = o->c.from > st.first_step ? o->c.from : st.first_step;
	p->fit_win[1] = o->c.to < st.last_step ? o->c.to : st.last_step;
	if (score_next(p->s, &p->run, o, &p->plan, p->fit_win[1],
		       p->fit_win[1] - p->fit_win[0] + 1, &p->ns, err))
		return util_cli_fail(CMD, err);
	return 0;
}

/* The window's steps read as place reads them, into h (its o.c.from and
 * o.c.to set): 1 when they carry a token in the layers placed, 0 when not
 * (no step, or none with a token), else a negative code with err set. */
static int holdout_read(struct place *h, struct util_err *err)
{
	const int L = h->run.layers, E = h->run.experts;
	double tot = 0;
	int rc;

	if ((rc = window_read(h, err)))
		return rc;
	for (int l = 0; l < L; l++)
		if (h->o.layer < 0 || l == h->o.layer)
			for (int e = 0; e < E; e++)
				tot += h->heat[(size_t)l * E + e];
	return h->nsteps > 0 && tot > 0;
}

/* One try of place_holdout: p's algorithm and options fitted on steps
 * from..to (from the placement in force at `to`, or the --current given)
 * and scored on as many step ids after them, into p->ho: what `place
 * --steps from:to` prints first (with -o for vllm-ascend, the placement
 * with second replicas moved, as the one written).  1 when scored, 0 when
 * there is nothing to fit on or to score, the --current asked for is not
 * there at `to`, or the algorithm refuses these steps (p->ho.why says
 * which); else a negative code. */
static int holdout_try(struct place *p, int64_t from, int64_t to, struct util_err *err)
{
	struct place h = { .o = p->o, .s = p->s, .run = p->run, .algo = p->algo, .dep = p->dep };
	struct analyze_plan_in in;
	int rc;

	h.o.c.from = from;
	h.o.c.to = to;
	h.o.out = NULL;
	if ((rc = holdout_read(&h, err)) <= 0) {
		p->ho.why = "hold no step with a token";
		goto out;
	}
	if (p->cur) {
		h.cur = xmallocarray((size_t)h.run.layers * h.o.c.ranks * h.o.c.slots,
				     sizeof(int32_t));
		rc = analyze_current_read(h.s, &h.run, &p->sh, to, p->cur_spec, h.cur, NULL, err);
		if (rc == UTIL_EUSAGE) { /* nothing deployed yet then */
			*err = (struct util_err)UTIL_ERR_INIT;
			p->ho.why = "have no deployed placement";
			rc = 0;
			goto out;
		}
		if (rc)
			goto out;
	}
	/* the placement -o writes: for vllm-ascend, second replicas moved */
	in = place_plan_in(&h);
	in.no_dup = place_plan_in(p).no_dup;
	/* scored on as many steps as it was fitted on, as place --steps
	 * from:to scores */
	if ((rc = analyze_plan_run(&in, &h.plan, err)) == UTIL_EUSAGE) {
		/* what the window's placement got past, these steps may not
		 * (an expert with more replicas than ranks for a file that
		 * takes it once per rank; an exact search that gives up) */
		*err = (struct util_err)UTIL_ERR_INIT;
		p->ho.why = in.no_dup ? "cannot be placed once per rank" : "cannot be placed";
		rc = 0;
		goto out;
	}
	if (rc || (rc = score_next(h.s, &h.run, &h.o, &h.plan, to, to - from + 1, &p->ho.ns, err)))
		goto out;
	p->ho.fit[0] = from;
	p->ho.fit[1] = to;
	p->ho.fit_steps = h.nsteps;
	rc = p->ho.ns.steps > 0;
out:
	h.s = NULL; /* p's */
	place_release(&h);
	return rc;
}

/* With no steps after the window: what the placement is to be expected to
 * do on steps it was not fitted on, as far as the run can tell.  The same
 * algorithm and options fitted on the window's length of steps before the
 * window and scored on the window itself; when the run has no such steps
 * (or none with a token), fitted on the window's first half and scored on
 * as many steps after it (all of the second half but its last step when
 * the window's length is odd).  Nothing (p->ho.ns.steps 0) when neither
 * can be done. */
static int place_holdout(struct place *p, struct util_err *err)
{
	struct store_run_stats st;
	int64_t a = p->fit_win[0], b = p->fit_win[1], len = b - a + 1;
	int rc = 0;

	if (!p->s || p->ns.steps)
		return 0;
	if (store_run_stats(p->s, p->run.id, &st)) {
		util_cli_error(CMD, "%s", store_errmsg(p->s));
		return 1;
	}
	p->ho.why = "are not in the run";
	if (a - len >= st.first_step)
		rc = holdout_try(p, a - len, a - 1, err);
	if (rc == 0 && len >= 2) {
		p->ho.halves = 1;
		rc = holdout_try(p, a, a + len / 2 - 1, err);
	}
	if (rc <= 0)
		memset(&p->ho, 0, sizeof(p->ho));
	return rc < 0 ? util_cli_fail(CMD, err) : 0;
}

/* The overall, engine-named and transfer figures both outputs print. */
static void place_figures(struct place *p)
{
	const struct analyze_plan *plan = &p->plan;

	engine_figures(plan, p->heat, p->run.experts, p->o.layer, p->o.c.capacity, &p->ef);
	p->secs = analyze_transfer_seconds_tiers(plan->send, plan->recv, p->o.c.ranks,
						 p->dep.expert_bytes, p->dep.intra_gbps,
						 p->dep.inter_gbps, &p->intra_s, &p->inter_s);
	p->overall = plan->sum_mean > 0 ? plan->sum_max / plan->sum_mean : 1;
	p->lb_overall = plan->sum_mean > 0 ? plan->sum_lb / plan->sum_mean : 1;
}

static void json_add_range(struct json_object *root, const char *key, const int64_t *win)
{
	struct json_object *a = json_object_new_array();

	json_object_array_add(a, json_object_new_int64(win[0]));
	json_object_array_add(a, json_object_new_int64(win[1]));
	json_object_object_add(root, key, a);
}

/* The run, the windows and the balance figures. */
static void json_summary(struct json_object *root, const struct place *p)
{
	const struct analyze_plan *plan = &p->plan;
	char name[3 * sizeof(p->run.name) + 1]; /* JSON is UTF-8 (U+FFFD) */

	json_object_object_add(root, "algorithm", json_object_new_string(p->algo->name));
	json_object_object_add(root, "seconds", jd(plan->seconds));
	if (plan->forecast_blocks)
		json_object_object_add(root, "forecast",
				       cmd_json_forecast(&plan->forecast, plan->forecast_blocks,
							 plan->forecast_hist));
	json_object_object_add(root, "run",
			       json_object_new_string(
				       util_utf8_sanitize(name, sizeof(name), p->run.name)));
	json_object_object_add(root, "steps", json_object_new_int64(p->nsteps));
	json_object_object_add(root, "experts", json_object_new_int(p->run.experts));
	json_object_object_add(root, "ranks", json_object_new_int(p->o.c.ranks));
	json_object_object_add(root, "slots", json_object_new_int(p->o.c.slots));
	if (p->s)
		json_add_range(root, "fit_window", p->fit_win);
	if (p->ns.steps) {
		json_add_range(root, "next_window", p->ns.win);
		json_object_object_add(root, "next_steps", json_object_new_int64(p->ns.steps));
		json_object_object_add(root, "next_imbalance", jd(p->ns.imbalance));
		json_object_object_add(root, "next_step_mean_imbalance", jd(p->ns.step_mean));
	}
	if (p->ho.ns.steps) {
		struct json_object *ho = json_object_new_object();
		json_add_range(ho, "fit_window", p->ho.fit);
		json_object_object_add(ho, "fit_steps", json_object_new_int64(p->ho.fit_steps));
		const char *on = p->ho.halves ? "first half" : "window before";
		json_object_object_add(ho, "fitted_on", json_object_new_string(on));
		if (p->ho.halves) /* why not the steps before the window */
			json_object_object_add(ho, "steps_before",
					       json_object_new_string(p->ho.why));
		json_add_range(ho, "scored_window", p->ho.ns.win);
		json_object_object_add(ho, "scored_steps", json_object_new_int64(p->ho.ns.steps));
		json_object_object_add(ho, "imbalance", jd(p->ho.ns.imbalance));
		json_object_object_add(ho, "step_mean_imbalance", jd(p->ho.ns.step_mean));
		json_object_object_add(root, "holdout", ho);
	}
	json_object_object_add(root, "imbalance", jd(p->overall));
	json_object_object_add(root, "lower_bound_imbalance", jd(p->lb_overall));
	json_object_object_add(root, "gap",
			       jd(plan->sum_lb > 0 ? plan->sum_max / plan->sum_lb - 1 : 0));
	json_object_object_add(root, "balancedness", jd(p->ef.balancedness));
	json_object_object_add(root, "peak_to_average_mean", jd(p->ef.par_mean));
	json_object_object_add(root, "peak_to_average_max", jd(p->ef.par_max));
	json_object_object_add(root, "trtllm_imbalance", jd(p->ef.trtllm));
	if (p->o.c.capacity_set) {
		json_object_object_add(root, "capacity_factor", jd(p->o.c.capacity));
		json_object_object_add(root, "token_drop", jd(p->ef.drop));
	}
}

/* With a current placement: which one ("static", "deployed" or the
 * file), the moves from it and their transfer (bytes and seconds null
 * without a model). */
static void json_transfer(struct json_object *root, const struct place *p)
{
	const struct analyze_plan *plan = &p->plan;
	const struct analyze_deploy *dep = &p->dep;
	const struct store_model *model = p->model;
	const uint64_t ebytes = dep->expert_bytes;

	json_object_object_add(root, "current", json_object_new_string(p->o.c.current));
	json_object_object_add(root, "moves", json_object_new_int64(plan->moves));
	json_object_object_add(root, "bytes",
			       model ? json_object_new_int64((int64_t)(plan->moves * ebytes))
				     : NULL);
	json_object_object_add(root, "expert_bytes",
			       model ? json_object_new_int64((int64_t)ebytes) : NULL);
	json_object_object_add(root, "quant",
			       json_object_new_string(analyze_quant_name(p->o.c.quant)));
	json_object_object_add(root, "link", json_object_new_string(dep->link_intra));
	json_object_object_add(root, "gbytes_per_s", jd(dep->intra_gbps));
	json_object_object_add(root, "ranks_per_node", json_object_new_int(dep->ranks_per_node));
	json_object_object_add(root, "link_intra", json_object_new_string(dep->link_intra));
	json_object_object_add(root, "link_inter", json_object_new_string(dep->link_inter));
	json_object_object_add(root, "inter_gbytes_per_s", jd(dep->inter_gbps));
	json_object_object_add(
		root, "bytes_intra_node",
		model ? json_object_new_int64((int64_t)((plan->moves - plan->moves_inter) * ebytes))
		      : NULL);
	json_object_object_add(
		root, "bytes_inter_node",
		model ? json_object_new_int64((int64_t)(plan->moves_inter * ebytes)) : NULL);
	json_object_object_add(root, "transfer_seconds", model ? jd(p->secs) : NULL);
	json_object_object_add(root, "transfer_intra_seconds", model ? jd(p->intra_s) : NULL);
	json_object_object_add(root, "transfer_inter_seconds", model ? jd(p->inter_s) : NULL);
	json_object_object_add(root, "max_sends",
			       json_object_new_int64(max_of(plan->send, p->o.c.ranks)));
	json_object_object_add(root, "max_receives",
			       json_object_new_int64(max_of(plan->recv, p->o.c.ranks)));
}

/* Layer l: its placement and figures, and with --current its copies
 * ([expert, from rank, to rank]) and moves. */
static struct json_object *json_layer(const struct place *p, int l)
{
	const struct analyze_plan *plan = &p->plan;
	const struct analyze_plan_layer *pl = &plan->layer[l];
	const int P = p->o.c.ranks * p->o.c.slots;
	struct json_object *jl = json_object_new_object(), *ids = json_object_new_array_ext(P);

	for (int q = 0; q < P; q++)
		json_object_array_add(ids, json_object_new_int(plan->phy2log[(size_t)l * P + q]));
	json_object_object_add(jl, "layer", json_object_new_int(l));
	json_object_object_add(jl, "phy2log", ids);
	json_object_object_add(jl, "max_load", jd(pl->max_load));
	json_object_object_add(jl, "mean_load", jd(pl->mean_load));
	json_object_object_add(jl, "imbalance", jd(pl->imbalance));
	json_object_object_add(jl, "lower_bound", jd(pl->lower_bound));
	if (!p->cur)
		return jl;
	struct json_object *cp = json_object_new_array();
	for (int q = 0; q < P; q++) {
		struct json_object *c3;
		int from = plan->src[(size_t)l * P + q];
		if (from < 0)
			continue;
		c3 = json_object_new_array_ext(3);
		json_object_array_add(c3, json_object_new_int(plan->phy2log[(size_t)l * P + q]));
		json_object_array_add(c3, json_object_new_int(from));
		json_object_array_add(c3, json_object_new_int(q / p->o.c.slots));
		json_object_array_add(cp, c3);
	}
	json_object_object_add(jl, "copies", cp);
	json_object_object_add(jl, "moves", json_object_new_int64(pl->moves));
	json_object_object_add(jl, "bytes",
			       p->model ? json_object_new_int64(
						  (int64_t)(pl->moves * p->dep.expert_bytes))
					: NULL);
	return jl;
}

static void print_json(const struct place *p)
{
	struct json_object *root = json_object_new_object(), *layers = json_object_new_array();

	json_summary(root, p);
	if (p->cur)
		json_transfer(root, p);
	for (int l = 0; l < p->run.layers; l++)
		if (p->o.layer < 0 || l == p->o.layer)
			json_object_array_add(layers, json_layer(p, l));
	json_object_object_add(root, "layers", layers);
	puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

/* What was fitted on, and the score on the next window. */
static void print_text_head(const struct place *p)
{
	const struct place_opts *o = &p->o;
	const int L = p->run.layers, E = p->run.experts;

	if (p->s)
		printf("run '%s': %d layers x %d experts, %lld step%s, %d ranks x %d slots, "
		       "algorithm %s\n",
		       p->run.name, L, E, (long long)p->nsteps, p->nsteps == 1 ? "" : "s",
		       o->c.ranks, o->c.slots, p->algo->name);
	else
		printf("heat '%s': %d layers x %d experts, %d ranks x %d slots, algorithm "
		       "%s\n",
		       o->heat_path, L, E, o->c.ranks, o->c.slots, p->algo->name);
	if (p->ns.steps)
		printf("on the next %lld steps (%lld-%lld), not fitted on: imbalance %.4f "
		       "(sum of max / sum of mean), %.4f mean per step\n",
		       (long long)p->ns.steps, (long long)p->ns.win[0], (long long)p->ns.win[1],
		       p->ns.imbalance, p->ns.step_mean);
	else if (p->s)
		printf("no steps after the fitting window to score on: every figure below is "
		       "in hindsight (give --steps A:B to keep later steps out)\n");
	if (p->ho.ns.steps)
		printf("what to expect on steps not fitted on: fitted the same way on the %lld "
		       "step%s of %lld-%lld (%s%s), %s scored %.4f on steps %lld-%lld (sum of max / "
		       "sum of mean), %.4f mean per step\n",
		       (long long)p->ho.fit_steps, p->ho.fit_steps == 1 ? "" : "s",
		       (long long)p->ho.fit[0], (long long)p->ho.fit[1],
		       p->ho.halves ? "the window's first half: the window's length of steps "
				      "before it "
				    : "the window's length of steps before it",
		       p->ho.halves ? p->ho.why : "", p->algo->name, p->ho.ns.imbalance,
		       (long long)p->ho.ns.win[0], (long long)p->ho.ns.win[1],
		       p->ho.ns.step_mean);
	if (p->plan.forecast_blocks) {
		char d[160];
		analyze_robust_describe(&p->plan.forecast, d, sizeof(d));
		printf("%s fitted its forecast of the next window: %s (chosen by how well each "
		       "forecast did on this trace: %d blocks of the window, %d of history before "
		       "it)\n",
		       p->algo->name, d, p->plan.forecast_blocks - p->plan.forecast_hist,
		       p->plan.forecast_hist);
	}
	printf("device load = tokens per rank, a replicated expert's tokens split evenly "
	       "among its replicas; per layer on the fitted %s (in hindsight)\n\n",
	       p->s ? "steps" : "heat");
}

static void print_text_layers(const struct place *p)
{
	printf("%5s %12s %12s %9s %12s %7s%s\n", "layer", "max load", "mean load", "imbalance",
	       "lower bound", "gap", p->cur ? "   moves" : "");
	for (int l = 0; l < p->run.layers; l++) {
		const struct analyze_plan_layer *pl = &p->plan.layer[l];
		if (p->o.layer >= 0 && l != p->o.layer)
			continue;
		/* a layer without a token is not scored: no imbalance, no gap */
		char imb[32] = "-", gap[32] = "-";
		if (!isnan(pl->imbalance))
			snprintf(imb, sizeof(imb), "%.4f", pl->imbalance);
		if (!isnan(pl->imbalance) && pl->lower_bound > 0)
			snprintf(gap, sizeof(gap), "%.2f%%",
				 100 * (pl->max_load / pl->lower_bound - 1));
		printf("%5d %12.2f %12.2f %9s %12.2f %7s", l, pl->max_load, pl->mean_load, imb,
		       pl->lower_bound, gap);
		if (p->cur)
			printf(" %7lld", (long long)pl->moves);
		putchar('\n');
	}
	putchar('\n');
}

/* With --current: the copies, their bytes and seconds on each tier. */
static void print_text_transfer(const struct place *p)
{
	const struct analyze_plan *plan = &p->plan;
	const struct analyze_deploy *dep = &p->dep;
	const uint64_t ebytes = dep->expert_bytes;

	if (p->model) {
		char b1[32], b2[32], b3[32], b4[32], b5[32];
		printf("transfer from '%s': %lld copies x %s (%s %s) = %s, %s: %s "
		       "inside nodes at %.1f GB/s per rank (%s), %s across nodes at "
		       "%.1f GB/s (%s), ranks and tiers in parallel\n",
		       p->o.c.current, (long long)plan->moves,
		       util_human_bytes(b1, sizeof(b1), (double)ebytes), p->model->name,
		       analyze_quant_name(p->o.c.quant),
		       util_human_bytes(b2, sizeof(b2), (double)plan->moves * ebytes),
		       util_human_seconds(b3, sizeof(b3), p->secs),
		       util_human_bytes(b4, sizeof(b4),
					(double)(plan->moves - plan->moves_inter) * ebytes),
		       dep->intra_gbps, dep->link_intra,
		       util_human_bytes(b5, sizeof(b5), (double)plan->moves_inter * ebytes),
		       dep->inter_gbps, dep->link_inter);
	} else {
		printf("transfer from '%s': %lld copies (give --model for bytes and "
		       "seconds)\n",
		       p->o.c.current, (long long)plan->moves);
	}
	printf("busiest rank: %lld copies sent, %lld received (senders chosen to "
	       "spread the load)\n",
	       (long long)max_of(plan->send, p->o.c.ranks),
	       (long long)max_of(plan->recv, p->o.c.ranks));
}

static void print_text(const struct place *p)
{
	const struct analyze_plan *plan = &p->plan;
	char tb[32];

	print_text_head(p);
	print_text_layers(p);
	printf("in hindsight, on the fitted %s: overall imbalance (sum of max / sum of "
	       "mean) %.4f; lower bound %.4f; gap %.2f%%\n",
	       p->s ? "steps" : "heat", p->overall, p->lb_overall,
	       plan->sum_lb > 0 ? 100 * (plan->sum_max / plan->sum_lb - 1) : 0.0);
	printf("same in other engines' terms: balancedness (vLLM, SGLang: mean/max) %.4f; "
	       "peak-to-average (vllm-ascend) mean %.4f max %.4f; (max-mean)/mean "
	       "(TensorRT-LLM) %.4f\n",
	       p->ef.balancedness, p->ef.par_mean, p->ef.par_max, p->ef.trtllm);
	if (p->o.c.capacity_set)
		printf("token drop at capacity %.2f x mean device load: %.3f%% of tokens "
		       "(an engine that caps each rank at that many tokens drops or "
		       "recomputes the rest)\n",
		       p->o.c.capacity, 100 * p->ef.drop);
	if (p->cur)
		print_text_transfer(p);
	printf("algorithm time: %s\n", util_human_seconds(tb, sizeof(tb), plan->seconds));
}

/* A window without a token (in the layer placed, with --layer) gives an
 * algorithm nothing to place on: any placement would fit it "perfectly"
 * (docs/cli.md).  2 after saying so, else 0. */
static int place_check_tokens(const struct place *p)
{
	const int L = p->run.layers, E = p->run.experts;
	double tot = 0;

	for (int l = 0; l < L; l++)
		if (p->o.layer < 0 || l == p->o.layer)
			for (int e = 0; e < E; e++)
				tot += p->heat[(size_t)l * E + e];
	if (tot > 0)
		return 0;
	if (p->s)
		util_cli_error(CMD, "the %lld step%s of run '%s' in the chosen range carry no token%s: "
			       "nothing to place on",
			       (long long)p->nsteps, p->nsteps == 1 ? "" : "s", p->run.name,
			       p->o.layer >= 0 ? " in this layer" : "");
	else
		util_cli_error(CMD, "'%s' holds no token%s: nothing to place on", p->o.heat_path,
			       p->o.layer >= 0 ? " in this layer" : "");
	return 2;
}

/* Reads the heat, plans, scores and prints: 0, else the exit status. */
static int place_run(struct place *p, const char *db, struct util_err *err)
{
	int status;

	if ((status = p->o.heat_path ? place_read_heat_file(p, err) : place_open_db(p, db, err)) ||
	    (status = place_check_layout(p, err)) || (p->s && (status = place_read_window(p, err))) ||
	    (status = place_check_tokens(p)) ||
	    (status = place_deployment(p, err)) || (status = place_plan(p, err)) ||
	    (p->s && ((status = place_score_next(p, err)) || (status = place_holdout(p, err)))))
		return status;
	place_figures(p);
	if (p->o.json)
		print_json(p);
	else
		print_text(p);
	if (p->o.out) {
		char *target;
		/* the writer renames onto the name it is given: a link's
		 * target, so that the link stays */
		if (util_out_target(p->o.out, &target, err))
			return util_cli_fail(CMD, err);
		if (analyze_format_write(target, p->fmt, &p->sh, p->plan.phy2log, err)) {
			free(target);
			return util_cli_fail(CMD, err);
		}
		free(target);
		if (!p->o.json)
			printf("wrote %s placement to '%s'\n", analyze_format_name(p->fmt), p->o.out);
		if (analyze_format_path_note(p->o.out, p->fmt))
			fprintf(stderr, "note: %s\n", analyze_format_path_note(p->o.out, p->fmt));
	}
	return 0;
}

int cmd_place(int argc, char **argv)
{
	struct place p = { .o = { .c = ANALYZE_CLI_INIT, .layer = -1, .format = -1 }, .fmt = -1 };
	struct util_err err = UTIL_ERR_INIT;
	int rc, status;

	if ((rc = parse_opts(argc, argv, &p.o, &err))) {
		if (rc == 1)
			return 0;
		if (err.msg[0]) /* else an unknown option, said in one line */
			util_cli_error(CMD, "%s", err.msg);
		return 2;
	}
	if (p.o.list) {
		list_algos();
		return 0;
	}
	if ((status = place_check_args(&p, argc, argv)))
		return status;
	status = place_run(&p, p.o.heat_path ? NULL : argv[optind], &err);
	place_release(&p);
	return status;
}

/*
 * cmd_place.c: `moetrace place` — run one placement algorithm on the heat
 * of a recorded window (or a heat JSON), print each layer's balance
 * against the proven lower bound, what moving from the current placement
 * would cost, and write the result in a file an engine loads.
 *
 * The flow: parse options, load heat (load_db / load_heat_file), resolve
 * the EP layout, read the current placement if one is given, run
 * analyze_plan_run, then print text or JSON and write -o.
 */
#include "analyze/analyze.h"
#include "cmds.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static const char usage[] =
	"usage: moetrace place [--run NAME] [--algo NAME] [--ranks R] [--slots S | --redundant N]\n"
	"                      [--nodes N --groups G] [--steps A:B] [--layer L]\n"
	"                      [--phase prefill|decode] [--episodes K] [--max-moves N] [--seed N]\n"
	"                      [--current FILE|static|deployed] [--model NAME]\n"
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

static int current_placement(const struct place_opts *o, struct store *s,
			     const struct store_run *run, const struct analyze_shape *sh,
			     int32_t *cur, struct util_err *err)
{
	int P = sh->ranks * sh->slots;

	if (!strcmp(o->c.current, "static")) {
		for (int l = 0; l < sh->layers; l++)
			analyze_static_phy2log(sh->experts, sh->ranks, sh->slots,
					       cur + (size_t)l * P);
		return 0;
	}
	if (!strcmp(o->c.current, "deployed")) {
		int rc;
		if (!s)
			return util_err_set(err, UTIL_EUSAGE,
					    "--current deployed needs a database, not --heat");
		rc = store_deployed_at(s, run, o->c.to, sh->ranks, sh->slots, cur, NULL);
		if (rc == UTIL_ENOTFOUND || rc == UTIL_ERANGE)
			return util_err_set(err, UTIL_EUSAGE,
					    "--current deployed: run '%s' records no deployed "
					    "placement for %d ranks x %d slots",
					    run->name, sh->ranks, sh->slots);
		if (rc)
			return util_err_set(err, rc, "%s", store_errmsg(s));
		return 0;
	}
	return analyze_format_read(o->c.current, sh, cur, NULL, err);
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

static struct json_object *jd(double x)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.6g", x);
	return json_object_new_double_s(x, buf);
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
		if (only >= 0 && l != only)
			continue;
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

static int score_next(struct store *s, const struct store_run *run, const struct place_opts *o,
		      const struct analyze_plan *plan, int64_t fit_to, int64_t len,
		      struct next_score *ns, struct util_err *err)
{
	int L = run->layers, E = run->experts, R = plan->ranks, S = plan->slots, P = R * S, rc;
	struct store_run_stats st;
	struct store_iter *it = NULL;
	struct store_step step;
	double *heat = NULL, *load = NULL, step_sum = 0, smax = 0, smean = 0;
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
		step_sum += mn > 0 ? mx / mn : 1;
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
	ns->step_mean = ns->steps ? step_sum / ns->steps : 1;
out:
	store_iter_free(it);
	free(heat);
	free(load);
	free(cnt);
	return rc;
}

int cmd_place(int argc, char **argv)
{
	struct place_opts o = { .c = ANALYZE_CLI_INIT, .layer = -1, .format = -1 };
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run run;
	struct analyze_heat_file hf = { 0 };
	struct analyze_plan plan = { 0 };
	struct analyze_blocks blk = { 0 };
	struct analyze_shape sh;
	const struct analyze_algo *algo;
	const struct store_model *model = NULL;
	struct analyze_deploy dep;
	double *heat = NULL, *episodes = NULL;
	int32_t *cur = NULL;
	int rc, status = 1, n_ep = 0, L, E, P, fmt = -1;
	int64_t nsteps = 0, fit_win[2] = { 0, 0 };
	uint64_t ebytes = 0;
	struct next_score ns = { { 0, 0 }, 0, 0, 0 };

	memset(&run, 0, sizeof(run));
	if ((rc = parse_opts(argc, argv, &o, &err))) {
		if (rc == 1)
			return 0;
		if (err.msg[0]) /* else an unknown option, said in one line */
			util_cli_error(CMD, "%s", err.msg);
		return 2;
	}
	if (o.list) {
		list_algos();
		return 0;
	}
	if (!(algo = analyze_algo_find(o.algo ? o.algo : ANALYZE_FLAGSHIP))) {
		char hint[96];
		util_cli_error(CMD, "--algo: unknown algorithm '%s'%s (moetrace place --list)",
			       o.algo ? o.algo : ANALYZE_FLAGSHIP,
			       util_did_you_mean(analyze_algo_suggest(o.algo ? o.algo : ""), hint,
						 sizeof(hint)));
		return 2;
	}
	if ((o.heat_path != NULL) == (optind < argc) || optind + (o.heat_path ? 0 : 1) != argc) {
		util_cli_error(CMD, "give one database or --heat FILE");
		fputs(usage, stderr);
		return 2;
	}
	if (o.out && o.layer >= 0) {
		util_cli_error(CMD, "-o writes every layer: drop --layer");
		return 2;
	}
	if (o.c.nodes && o.c.groups == 0) {
		util_cli_error(CMD, "--nodes needs --groups");
		return 2;
	}

	/* heat of the fitting window */
	if (o.heat_path) {
		if (o.c.runname || o.c.phase_mask || o.c.from != INT64_MIN || o.c.to != INT64_MAX) {
			util_cli_error(CMD, "--run, --steps and --phase select from a database, "
					    "not a heat file");
			return 2;
		}
		if ((rc = analyze_heat_read(o.heat_path, &hf, &err)))
			return util_cli_fail(CMD, &err);
		if (o.c.episodes_set) {
			util_cli_error(CMD, "--episodes splits a recorded window; a heat file "
					    "carries its own \"episodes\"");
			status = 2;
			goto out;
		}
		snprintf(run.name, sizeof(run.name), "%s", o.heat_path);
		run.layers = hf.layers;
		run.experts = hf.experts;
		run.ranks = hf.ranks;
		run.slots = hf.slots;
		if (o.c.model) {
			snprintf(run.model, sizeof(run.model), "%s", o.c.model);
			run.first_layer = store_model_find(o.c.model)->first_layer;
		}
		heat = hf.heat;
		episodes = hf.episodes;
		n_ep = hf.n_episodes;
	} else {
		if ((rc = store_open_run(argv[optind], o.c.runname, STORE_READONLY, &s, &run, &err)))
			return util_cli_fail(CMD, &err);
		analyze_warn_missing_counts(CMD, s, &run);
		if (o.c.model) {
			/* a run recorded without a model takes the preset's layer ids */
			if (!run.model[0])
				run.first_layer = store_model_find(o.c.model)->first_layer;
			snprintf(run.model, sizeof(run.model), "%s", o.c.model);
		}
	}
	L = run.layers;
	E = run.experts;
	if (o.layer >= L) {
		util_cli_error(CMD, "--layer %d: the run has %d MoE layers (0..%d)", o.layer, L,
			       L - 1);
		status = 2;
		goto out;
	}
	if (o.c.groups && E % o.c.groups) {
		util_cli_error(CMD, "--groups %d does not divide %d experts", o.c.groups, E);
		status = 2;
		goto out;
	}
	if ((rc = analyze_layout_resolve(&run, o.c.ranks, o.c.slots, o.c.redundant, &o.c.ranks, &o.c.slots,
					 &err))) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	if (o.c.nodes && o.c.ranks % o.c.nodes) {
		util_cli_error(CMD, "--nodes %d does not divide %d ranks", o.c.nodes, o.c.ranks);
		status = 2;
		goto out;
	}
	P = o.c.ranks * o.c.slots;
	if (o.out) {
		size_t n = strlen(o.out);
		fmt = o.format >= 0 ? o.format : ANALYZE_FORMAT_VLLM_ASCEND;
		if (o.format < 0 && ((n > 5 && !strcmp(o.out + n - 5, ".yaml")) ||
				     (n > 4 && !strcmp(o.out + n - 4, ".yml"))))
			fmt = ANALYZE_FORMAT_TRTLLM;
	}
	if (s) {
		heat = xmallocarray((size_t)L * E, sizeof(double));
		if (o.c.episodes)
			episodes = xmallocarray((size_t)o.c.episodes * L * E, sizeof(double));
		n_ep = o.c.episodes;
		if ((rc = analyze_window_heat(s, &run, o.c.from, o.c.to, o.c.phase_mask, n_ep, heat,
					      episodes, &nsteps))) {
			util_cli_error(CMD, "%s", store_errmsg(s));
			status = util_exit_status(rc);
			goto out;
		}
		if (nsteps == 0) {
			util_cli_error(CMD, "no steps of run '%s' in the chosen range%s", run.name,
				       o.c.phase_mask ? " and phase" : "");
			status = 2;
			goto out;
		}
		/* the flagship reads the window's time structure and history */
		if (!o.c.episodes_set && !strcmp(algo->name, ANALYZE_FLAGSHIP) &&
		    (rc = analyze_window_blocks(s, &run, o.c.from, o.c.to, o.c.phase_mask, &blk,
						&err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
	}
	model = run.model[0] ? store_model_find(run.model) : NULL;
	sh = (struct analyze_shape){
		L, E, o.c.ranks, o.c.slots, run.first_layer, model ? model->layer_step : 1
	};
	{
		/* nodes, links and precision as replay and compare resolve them */
		struct analyze_deploy_opts dopts = ANALYZE_DEPLOY_OPTS_INIT;
		dopts.quant = o.c.quant;
		dopts.link = o.c.link;
		dopts.link_intra = o.c.link_intra;
		dopts.link_inter = o.c.link_inter;
		dopts.bandwidth = o.c.bandwidth;
		dopts.ranks_per_node = o.c.ranks_per_node;
		if ((rc = analyze_deploy_resolve(&run, model, o.c.ranks, &dopts, &dep, &err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
		o.c.quant = dep.quant;
	}
	if (o.c.current) {
		cur = xmallocarray((size_t)L * P, sizeof(int32_t));
		if ((rc = current_placement(&o, s, &run, &sh, cur, &err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
	}
	{
		struct analyze_plan_in in = {
			.algo = algo,
			.layers = L,
			.experts = E,
			.ranks = o.c.ranks,
			.slots = o.c.slots,
			.nodes = o.c.nodes,
			.groups = o.c.groups,
			.max_moves = o.c.max_moves,
			.seed = o.c.seed,
			.heat = heat,
			.episodes = episodes,
			.n_episodes = n_ep,
			.blocks = blk.heat,
			.n_blocks = blk.n,
			.n_hist = blk.hist,
			.current = cur,
			.only_layer = o.layer,
			.threads = 2,
			.no_dup = o.out && fmt == ANALYZE_FORMAT_VLLM_ASCEND,
			.ranks_per_node = dep.ranks_per_node,
		};
		int undup = 0;
		if ((rc = analyze_plan_run(&in, &plan, &err))) {
			if (in.no_dup) {
				util_cli_error(CMD,
					       "cannot write '%s' for vllm-ascend, whose loader "
					       "misroutes a device holding an expert twice: %s; "
					       "choose an algorithm that places an expert once per "
					       "rank (flashlb, swift, %s) or --format sglang|trtllm",
					       o.out, err.msg, ANALYZE_FLAGSHIP);
				status = util_exit_status(rc);
				goto out;
			}
			status = util_cli_fail(CMD, &err);
			goto out;
		}
		for (int l = 0; l < L; l++)
			undup += plan.layer[l].undup > 0;
		if (undup)
			fprintf(stderr,
				"moetrace %s: note: %s put an expert twice on one rank in %d of %d "
				"layers; moved each second replica to another rank, since "
				"vllm-ascend's loader misroutes such a device (the figures below "
				"are for the moved placement)\n",
				CMD, algo->name, undup, L);
	}
	if (s) {
		/* the fitting window's step range, then the window after it */
		struct store_run_stats st;
		if (store_run_stats(s, run.id, &st)) {
			util_cli_error(CMD, "%s", store_errmsg(s));
			goto out;
		}
		fit_win[0] = o.c.from > st.first_step ? o.c.from : st.first_step;
		fit_win[1] = o.c.to < st.last_step ? o.c.to : st.last_step;
		if ((rc = score_next(s, &run, &o, &plan, fit_win[1], fit_win[1] - fit_win[0] + 1,
				     &ns, &err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
	}
	ebytes = dep.expert_bytes;

	struct engine_figures ef;
	engine_figures(&plan, heat, E, o.layer, o.c.capacity, &ef);
	double intra_s, inter_s;
	double secs = analyze_transfer_seconds_tiers(plan.send, plan.recv, o.c.ranks, ebytes,
						     dep.intra_gbps, dep.inter_gbps, &intra_s,
						     &inter_s);
	double overall = plan.sum_mean > 0 ? plan.sum_max / plan.sum_mean : 1;
	double lb_overall = plan.sum_mean > 0 ? plan.sum_lb / plan.sum_mean : 1;

	if (o.json) {
		struct json_object *root = json_object_new_object(),
				   *layers = json_object_new_array();
		json_object_object_add(root, "algorithm", json_object_new_string(algo->name));
		json_object_object_add(root, "seconds", jd(plan.seconds));
		char name[3 * sizeof(run.name) + 1]; /* JSON is UTF-8 (U+FFFD) */
		json_object_object_add(root, "run",
				       json_object_new_string(
					       util_utf8_sanitize(name, sizeof(name), run.name)));
		json_object_object_add(root, "steps", json_object_new_int64(nsteps));
		json_object_object_add(root, "experts", json_object_new_int(E));
		json_object_object_add(root, "ranks", json_object_new_int(o.c.ranks));
		json_object_object_add(root, "slots", json_object_new_int(o.c.slots));
		if (s) {
			struct json_object *fw = json_object_new_array();
			json_object_array_add(fw, json_object_new_int64(fit_win[0]));
			json_object_array_add(fw, json_object_new_int64(fit_win[1]));
			json_object_object_add(root, "fit_window", fw);
		}
		if (ns.steps) {
			struct json_object *nw = json_object_new_array();
			json_object_array_add(nw, json_object_new_int64(ns.win[0]));
			json_object_array_add(nw, json_object_new_int64(ns.win[1]));
			json_object_object_add(root, "next_window", nw);
			json_object_object_add(root, "next_steps", json_object_new_int64(ns.steps));
			json_object_object_add(root, "next_imbalance", jd(ns.imbalance));
			json_object_object_add(root, "next_step_mean_imbalance", jd(ns.step_mean));
		}
		json_object_object_add(root, "imbalance", jd(overall));
		json_object_object_add(root, "lower_bound_imbalance", jd(lb_overall));
		json_object_object_add(root, "gap",
				       jd(plan.sum_lb > 0 ? plan.sum_max / plan.sum_lb - 1 : 0));
		json_object_object_add(root, "balancedness", jd(ef.balancedness));
		json_object_object_add(root, "peak_to_average_mean", jd(ef.par_mean));
		json_object_object_add(root, "peak_to_average_max", jd(ef.par_max));
		json_object_object_add(root, "trtllm_imbalance", jd(ef.trtllm));
		if (o.c.capacity_set) {
			json_object_object_add(root, "capacity_factor", jd(o.c.capacity));
			json_object_object_add(root, "token_drop", jd(ef.drop));
		}
		if (cur) {
			json_object_object_add(root, "moves", json_object_new_int64(plan.moves));
			json_object_object_add(
				root, "bytes",
				model ? json_object_new_int64((int64_t)(plan.moves * ebytes))
				      : NULL);
			json_object_object_add(root, "expert_bytes",
					       model ? json_object_new_int64((int64_t)ebytes)
						     : NULL);
			json_object_object_add(root, "quant",
					       json_object_new_string(analyze_quant_name(o.c.quant)));
			json_object_object_add(root, "link", json_object_new_string(dep.link_intra));
			json_object_object_add(root, "gbytes_per_s", jd(dep.intra_gbps));
			json_object_object_add(root, "ranks_per_node",
					       json_object_new_int(dep.ranks_per_node));
			json_object_object_add(root, "link_intra",
					       json_object_new_string(dep.link_intra));
			json_object_object_add(root, "link_inter",
					       json_object_new_string(dep.link_inter));
			json_object_object_add(root, "inter_gbytes_per_s", jd(dep.inter_gbps));
			json_object_object_add(
				root, "bytes_intra_node",
				model ? json_object_new_int64(
						(int64_t)((plan.moves - plan.moves_inter) * ebytes))
				      : NULL);
			json_object_object_add(
				root, "bytes_inter_node",
				model ? json_object_new_int64((int64_t)(plan.moves_inter * ebytes))
				      : NULL);
			json_object_object_add(root, "transfer_seconds", model ? jd(secs) : NULL);
			json_object_object_add(root, "transfer_intra_seconds",
					       model ? jd(intra_s) : NULL);
			json_object_object_add(root, "transfer_inter_seconds",
					       model ? jd(inter_s) : NULL);
			json_object_object_add(root, "max_sends",
					       json_object_new_int64(max_of(plan.send, o.c.ranks)));
			json_object_object_add(root, "max_receives",
					       json_object_new_int64(max_of(plan.recv, o.c.ranks)));
		}
		for (int l = 0; l < L; l++) {
			struct json_object *jl, *ids;
			const struct analyze_plan_layer *pl = &plan.layer[l];
			if (o.layer >= 0 && l != o.layer)
				continue;
			jl = json_object_new_object();
			ids = json_object_new_array_ext(P);
			for (int p = 0; p < P; p++)
				json_object_array_add(
					ids, json_object_new_int(plan.phy2log[(size_t)l * P + p]));
			json_object_object_add(jl, "layer", json_object_new_int(l));
			json_object_object_add(jl, "phy2log", ids);
			json_object_object_add(jl, "max_load", jd(pl->max_load));
			json_object_object_add(jl, "mean_load", jd(pl->mean_load));
			json_object_object_add(jl, "imbalance", jd(pl->imbalance));
			json_object_object_add(jl, "lower_bound", jd(pl->lower_bound));
			if (cur) {
				struct json_object *cp = json_object_new_array();
				for (int q = 0; q < P; q++) {
					struct json_object *c3;
					int from = plan.src[(size_t)l * P + q];
					if (from < 0)
						continue;
					c3 = json_object_new_array_ext(3);
					json_object_array_add(
						c3, json_object_new_int(
							    plan.phy2log[(size_t)l * P + q]));
					json_object_array_add(c3, json_object_new_int(from));
					json_object_array_add(c3, json_object_new_int(q / o.c.slots));
					json_object_array_add(cp, c3);
				}
				json_object_object_add(jl, "copies", cp);
				json_object_object_add(jl, "moves",
						       json_object_new_int64(pl->moves));
				json_object_object_add(
					jl, "bytes",
					model ? json_object_new_int64((int64_t)(pl->moves * ebytes))
					      : NULL);
			}
			json_object_array_add(layers, jl);
		}
		json_object_object_add(root, "layers", layers);
		puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	} else {
		if (s)
			printf("run '%s': %d layers x %d experts, %lld steps, %d ranks x %d slots, "
			       "algorithm %s\n",
			       run.name, L, E, (long long)nsteps, o.c.ranks, o.c.slots, algo->name);
		else
			printf("heat '%s': %d layers x %d experts, %d ranks x %d slots, algorithm "
			       "%s\n",
			       o.heat_path, L, E, o.c.ranks, o.c.slots, algo->name);
		if (ns.steps)
			printf("on the next %lld steps (%lld-%lld), not fitted on: imbalance %.4f "
			       "(sum of max / sum of mean), %.4f mean per step\n",
			       (long long)ns.steps, (long long)ns.win[0], (long long)ns.win[1],
			       ns.imbalance, ns.step_mean);
		else if (s)
			printf("no steps after the fitting window to score on: every figure below is "
			       "in hindsight (give --steps A:B to keep later steps out)\n");
		printf("device load = tokens per rank, a replicated expert's tokens split evenly "
		       "among its replicas; per layer on the fitted %s (in hindsight)\n\n",
		       s ? "steps" : "heat");
		printf("%5s %12s %12s %9s %12s %7s%s\n", "layer", "max load", "mean load",
		       "imbalance", "lower bound", "gap", cur ? "   moves" : "");
		for (int l = 0; l < L; l++) {
			const struct analyze_plan_layer *pl = &plan.layer[l];
			if (o.layer >= 0 && l != o.layer)
				continue;
			printf("%5d %12.2f %12.2f %9.4f %12.2f %6.2f%%", l, pl->max_load,
			       pl->mean_load, pl->imbalance, pl->lower_bound,
			       pl->lower_bound > 0 ? 100 * (pl->max_load / pl->lower_bound - 1)
						   : 0);
			if (cur)
				printf(" %7lld", (long long)pl->moves);
			putchar('\n');
		}
		putchar('\n');
		printf("in hindsight, on the fitted %s: overall imbalance (sum of max / sum of "
		       "mean) %.4f; lower bound %.4f; gap %.2f%%\n",
		       s ? "steps" : "heat", overall, lb_overall,
		       plan.sum_lb > 0 ? 100 * (plan.sum_max / plan.sum_lb - 1) : 0.0);
		printf("same in other engines' terms: balancedness (vLLM, SGLang: mean/max) %.4f; "
		       "peak-to-average (vllm-ascend) mean %.4f max %.4f; (max-mean)/mean "
		       "(TensorRT-LLM) %.4f\n",
		       ef.balancedness, ef.par_mean, ef.par_max, ef.trtllm);
		if (o.c.capacity_set)
			printf("token drop at capacity %.2f x mean device load: %.3f%% of tokens "
			       "(an engine that caps each rank at that many tokens drops or "
			       "recomputes the rest)\n",
			       o.c.capacity, 100 * ef.drop);
		if (cur) {
			if (model)
			{
				char b1[32], b2[32], b3[32], b4[32], b5[32];
				printf("transfer from '%s': %lld copies x %s (%s %s) = %s, %s: %s "
				       "inside nodes at %.1f GB/s per rank (%s), %s across nodes at "
				       "%.1f GB/s (%s), ranks and tiers in parallel\n",
				       o.c.current, (long long)plan.moves,
				       util_human_bytes(b1, sizeof(b1), (double)ebytes),
				       model->name, analyze_quant_name(o.c.quant),
				       util_human_bytes(b2, sizeof(b2), (double)plan.moves * ebytes),
				       util_human_seconds(b3, sizeof(b3), secs),
				       util_human_bytes(b4, sizeof(b4),
							(double)(plan.moves - plan.moves_inter) *
								ebytes),
				       dep.intra_gbps, dep.link_intra,
				       util_human_bytes(b5, sizeof(b5),
							(double)plan.moves_inter * ebytes),
				       dep.inter_gbps, dep.link_inter);
			}
			else
				printf("transfer from '%s': %lld copies (give --model for bytes and "
				       "seconds)\n",
				       o.c.current, (long long)plan.moves);
		}
		if (cur)
			printf("busiest rank: %lld copies sent, %lld received (senders chosen to "
			       "spread the load)\n",
			       (long long)max_of(plan.send, o.c.ranks),
			       (long long)max_of(plan.recv, o.c.ranks));
		char tb[32];
		printf("algorithm time: %s\n", util_human_seconds(tb, sizeof(tb), plan.seconds));
	}
	if (o.out) {
		if ((rc = analyze_format_write(o.out, fmt, &sh, plan.phy2log, &err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
		if (!o.json)
			printf("wrote %s placement to '%s'\n", analyze_format_name(fmt), o.out);
	}
	status = 0;
out:
	analyze_plan_release(&plan);
	if (o.heat_path) {
		analyze_heat_release(&hf);
	} else {
		free(heat);
		free(episodes);
	}
	free(cur);
	analyze_blocks_release(&blk);
	store_free(s);
	return status;
}

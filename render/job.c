/*
 * job.c: a trace into one chart.  render_job_prepare() checks the options
 * against the run, reads the arrays the chart kind needs with the loaders
 * of data.c (or a replay, stored or run here in memory) and fills the
 * chart's config; render_job_draw() hands them to the chart function.
 * `moetrace render` draws one job, `moetrace report` several.
 */
#include "render/render_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void render_job_release(struct render_job *j)
{
	analyze_replay_release(&j->own);
	free(j->heat);
	free(j->fit_heat);
	free(j->grid_v);
	free(j->xs);
	free(j->marks);
	free(j->ys);
	free(j->xs2);
	free(j->ys2);
	free(j->loads);
	free(j->loads2);
	free(j->tb);
	free(j->tstep);
	free(j->ids);
	free(j->p2l);
	free(j->after);
	free(j->fixed0);
	free(j->fixed1);
	free(j->tbytes);
	for (int k = 0; k < RENDER_MAX_REPLAYS; k++) {
		free(j->ev[k]);
		free(j->rsteps[k]);
		free(j->rimb[k]);
		free(j->rbase[k]);
		free(j->evx[k]);
	}
}

int render_job_draw(cairo_t *cr, double w, double h, int page, void *ctx)
{
	struct render_job *j = ctx;

	(void)page;
	switch (j->kind) {
	case RENDER_HEATMAP:
	case RENDER_TIMELINE:
		return render_heatmap(cr, w, h, &j->hcfg, &j->grid);
	case RENDER_DEVICES:
		return render_devices(cr, w, h, &j->dcfg, &j->bars);
	case RENDER_IMBALANCE:
		return render_imbalance(cr, w, h, &j->icfg, j->series, j->nseries);
	case RENDER_TRANSFER:
		return render_transfer(cr, w, h, &j->tcfg, &j->transfer);
	case RENDER_KINDS:
		break;
	}
	return UTIL_EUSAGE;
}

static void range_text(char *buf, size_t n, int64_t first, int64_t last, int64_t nsteps)
{
	/* the count only when it says more than the range (holes, a phase) */
	if (first == last && nsteps == 1)
		snprintf(buf, n, "step %lld", (long long)first);
	else if (nsteps == last - first + 1)
		snprintf(buf, n, "steps %lld-%lld", (long long)first, (long long)last);
	else
		snprintf(buf, n, "%lld step%s in %lld-%lld", (long long)nsteps,
			 nsteps == 1 ? "" : "s", (long long)first, (long long)last);
}

/* ", decode only" / ", prefill only" when a phase filter leaves one. */
static const char *phase_only(unsigned mask)
{
	if (mask == 1u << STORE_PHASE_DECODE)
		return ", decode only";
	if (mask == 1u << STORE_PHASE_PREFILL)
		return ", prefill only";
	return "";
}

/* "steps A-B" (with " (N steps)" when some are missing) for the steps of
 * [from, to] actually recorded. */
static void step_range(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		       unsigned phase_mask, int64_t nsteps, char *buf, size_t n)
{
	int64_t cnt = 0, first = 0, last = 0;

	if (store_steps_span(s, run, -1, from, to, phase_mask, &cnt, &first, &last) == 0 && cnt) {
		range_text(buf, n, first, last, nsteps);
		return;
	}
	snprintf(buf, n, "%lld steps", (long long)nsteps);
}

/* Places every layer (or only `layer`; the others get the static layout)
 * with algo on the heat of [from, to]: a placement fitted in hindsight. */
static int fit_placement(struct store *s, const struct store_run *run, int layer, int64_t from,
			 int64_t to, unsigned phase_mask, const struct analyze_algo *algo,
			 int ranks, int slots, int32_t *p2l, struct util_err *err)
{
	int L = run->layers, E = run->experts, P = ranks * slots, rc = 0;
	const struct store_model *m = run->model[0] ? store_model_find(run->model) : NULL;
	double *heat = xcalloc((size_t)L * (size_t)E, sizeof(double));
	int64_t nsteps = 0;

	if (layer >= 0) {
		int one = 1;
		double x0, x1;
		rc = render_load_timeline(s, run, layer, from, to, phase_mask, &one,
					  heat + (size_t)layer * E, &x0, &x1, &nsteps, err);
	} else {
		rc = render_load_heat(s, run, from, to, phase_mask, heat, &nsteps, err);
	}
	for (int l = 0; l < L && !rc; l++) {
		struct analyze_place_in in = { 0 };
		if (layer >= 0 && l != layer) {
			analyze_static_phy2log(E, ranks, slots, p2l + (size_t)l * P);
			continue;
		}
		in.experts = E;
		in.ranks = ranks;
		in.slots = slots;
		in.nodes = run->ranks_per_node > 0 ? ranks / run->ranks_per_node : 0;
		in.groups = m ? m->groups : 0;
		in.heat = heat + (size_t)l * E;
		in.max_moves = -1;
		in.seed = ANALYZE_DEFAULT_SEED;
		rc = analyze_place(algo, &in, p2l + (size_t)l * P, err);
	}
	free(heat);
	return rc;
}

/* Descending, "no data" (NAN) last. */
static int by_value_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	if (isnan(x) || isnan(y))
		return isnan(x) - isnan(y);
	return x < y ? 1 : x > y ? -1 : 0;
}

static int fail(const struct render_job_opts *o, struct util_err *err)
{
	return util_cli_fail(o->cmd, err);
}


/* The run of id `id`, looked up by id alone: store_run_get() takes a
 * name first, and a run may be named as another run's id.  Returns -1 or
 * the exit status. */
static int run_by_id(struct store *s, const struct render_job_opts *o, int64_t id,
		     struct store_run *out)
{
	struct store_run *runs;
	size_t n;
	int found = 0;

	if (store_run_list(s, &runs, &n)) {
		util_cli_error(o->cmd, "%s", store_errmsg(s));
		return 1;
	}
	for (size_t i = 0; i < n && !found; i++)
		if (runs[i].id == id) {
			*out = runs[i];
			found = 1;
		}
	free(runs);
	if (!found)
		util_cli_error(o->cmd, "no run of id %lld in '%s'", (long long)id, store_path(s));
	return found ? -1 : 1;
}

/* Replay k is not of `run`: says which run it is of, by name, against
 * --run or (without it) against the first replay's run. */
static int other_run(struct store *s, const struct render_job_opts *o, const struct store_run *run,
		     int k, const struct store_replay *rp)
{
	struct store_run its;
	int st = run_by_id(s, o, rp->run, &its);

	if (st >= 0)
		return st;
	if (o->runname)
		util_cli_error(o->cmd, "replay %lld is of run '%s', not of --run '%s'",
			       (long long)o->replay_id[k], its.name, run->name);
	else
		util_cli_error(o->cmd, "replays %lld and %lld are of different runs ('%s' and "
					 "'%s'): draw them one at a time",
			       (long long)o->replay_id[0], (long long)o->replay_id[k], run->name,
			       its.name);
	return 2;
}

/* Reads the replays' summaries; without --run the first replay's own run
 * is the one drawn.  Returns -1 or the exit status. */
static int open_replays(struct store *s, const struct render_job_opts *o, struct store_run *run,
			struct render_job *j)
{
	for (int k = 0; k < o->nreplay; k++) {
		int rc = store_replay_get(s, o->replay_id[k], &j->rp[k]), st;
		if (rc) {
			util_cli_error(o->cmd, "%s", store_errmsg(s));
			return rc == UTIL_EDB ? 2 : util_exit_status(rc);
		}
		if (j->rp[k].run == run->id)
			continue;
		if (o->runname || k > 0)
			return other_run(s, o, run, k, &j->rp[k]);
		if ((st = run_by_id(s, o, j->rp[k].run, run)) >= 0)
			return st;
	}
	return -1;
}

/* ---- one function per kind: load the arrays, set up the chart ----------
 * Each returns -1 when the job is ready (j->nsteps == 0: nothing in the
 * range), else the exit status after printing why. */

static int prepare_heatmap(struct store *s, const struct store_run *run,
			   const struct render_job_opts *o, struct render_job *j)
{
	struct util_err err = UTIL_ERR_INIT;
	int L = run->layers, E = run->experts;

	j->heat = xmallocarray((size_t)L * (size_t)E, sizeof(double));
	if (render_load_heat(s, run, o->from, o->to, o->phase_mask, j->heat, &j->nsteps, &err))
		return fail(o, &err);
	if (j->nsteps == 0)
		return -1;
	step_range(s, run, o->from, o->to, o->phase_mask, j->nsteps, j->range, sizeof(j->range));
	j->hcfg = render_heatmap_cfg_defaults();
	j->hcfg.log_scale = o->log_scale;
	j->hcfg.y_label = "MoE layer";
	j->hcfg.x_label = "expert";
	j->hcfg.unit = "tokens per step (mean over the steps)";
	if (o->sort_heat) {
		/* expert ids mean nothing from one layer to the next, so each
		 * row is sorted on its own: column k is the layer's k-th hottest
		 * expert, and the picture shows how skewed each layer is */
		for (int l = 0; l < L; l++)
			qsort(j->heat + (size_t)l * E, (size_t)E, sizeof(double), by_value_desc);
		j->hcfg.x_label = "experts of each layer by heat (1: the layer's hottest)";
		j->grid.x0 = 0.5;
		j->grid.x1 = E + 0.5;
	} else {
		j->grid.x0 = -0.5;
		j->grid.x1 = E - 0.5;
	}
	snprintf(j->title, sizeof(j->title), "Expert heat of run '%s'%s, %s", run->name,
		 phase_only(o->phase_mask), j->range);
	j->grid.rows = L;
	j->grid.cols = E;
	j->grid.v = j->heat;
	j->grid.y0 = -0.5;
	j->grid.y1 = L - 0.5;
	return -1;
}

static int prepare_timeline(struct store *s, const struct store_run *run,
			    const struct render_job_opts *o, struct render_job *j)
{
	struct util_err err = UTIL_ERR_INIT;
	int E = run->experts, bins = (int)ceil(o->width * o->scale);
	int layer = o->layer < 0 ? 0 : o->layer;
	double x0 = 0, x1 = 0;

	if (o->layer == RENDER_LAYER_HOT) {
		/* the layer holding the hottest expert (mean tokens per step over
		 * the steps drawn; ties to the lowest layer), as the report picks */
		size_t LE = (size_t)run->layers * (size_t)E;
		double *heat = xmallocarray(LE, sizeof(double)), hot = -1;
		int64_t n = 0;
		if (render_load_heat(s, run, o->from, o->to, o->phase_mask, heat, &n, &err)) {
			free(heat);
			return fail(o, &err);
		}
		for (size_t i = 0; i < LE; i++)
			if (heat[i] > hot) {
				hot = heat[i];
				layer = (int)(i / (size_t)E);
			}
		free(heat);
	}
	j->layer = layer;
	/* at most one bin per output pixel: the chart averages further */
	j->grid_v = xmallocarray((size_t)E * (size_t)bins, sizeof(double));
	if (render_load_timeline(s, run, layer, o->from, o->to, o->phase_mask, &bins, j->grid_v,
				 &x0, &x1, &j->nsteps, &err))
		return fail(o, &err);
	if (j->nsteps == 0)
		return -1;
	range_text(j->range, sizeof(j->range), (int64_t)x0, (int64_t)x1 - 1, j->nsteps);
	snprintf(j->title, sizeof(j->title), "Layer %d heat over time, run '%s'%s, %s", layer,
		 run->name, phase_only(o->phase_mask), j->range);
	{
		/* under the title: why this layer, and what the grey columns are */
		/* steps recorded in the span whatever their phase; -1 unknown */
		int64_t span = (int64_t)x1 - (int64_t)x0, all = -1;
		size_t k = 0;
		if (analyze_step_count(s, run, (int64_t)x0, (int64_t)x1 - 1, 0, &all, NULL))
			all = -1;
		j->sub[0] = '\0';
		if (o->why)
			k += (size_t)snprintf(j->sub, sizeof(j->sub), "%s", o->why);
		else if (o->layer == RENDER_LAYER_HOT)
			k += (size_t)snprintf(j->sub, sizeof(j->sub),
					      "layer %d: it holds the hottest expert of steps "
					      "%lld-%lld",
					      layer, (long long)x0, (long long)x1 - 1);
		else if (o->layer < 0)
			k += (size_t)snprintf(j->sub, sizeof(j->sub),
					      "layer 0, the default (--layer picks another)");
		if (all >= 0 && j->nsteps < span && k < sizeof(j->sub)) {
			int64_t gone = span - all, other = all - j->nsteps;
			k += (size_t)snprintf(j->sub + k, sizeof(j->sub) - k, "%sgrey: ",
					      k ? "; " : "");
			if (gone > 0 && k < sizeof(j->sub))
				k += (size_t)snprintf(j->sub + k, sizeof(j->sub) - k,
						      "%lld step%s not recorded", (long long)gone,
						      gone == 1 ? "" : "s");
			if (other > 0 && k < sizeof(j->sub))
				snprintf(j->sub + k, sizeof(j->sub) - k, "%s%lld %s step%s left out",
					 gone > 0 ? ", " : "", (long long)other,
					 o->phase_mask == 1u << STORE_PHASE_DECODE ? "prefill"
					 : o->phase_mask == 1u << STORE_PHASE_PREFILL
						 ? "decode"
						 : "other-phase",
					 other == 1 ? "" : "s");
		}
	}
	j->hcfg = render_heatmap_cfg_defaults();
	j->hcfg.subtitle = j->sub;
	j->hcfg.log_scale = o->log_scale;
	j->hcfg.x_label = "step";
	j->hcfg.y_label = "expert";
	j->hcfg.unit = (x1 - x0) > bins ? "tokens per step (mean over each column's steps)"
					 : "tokens per step";
	j->grid.rows = E;
	j->grid.cols = bins;
	j->grid.v = j->grid_v;
	/* one bin per step: centre the step numbers on their cells */
	j->grid.x0 = x0 - ((x1 - x0) <= bins ? 0.5 : 0);
	j->grid.x1 = x1 - ((x1 - x0) <= bins ? 0.5 : 0);
	j->grid.y0 = -0.5;
	j->grid.y1 = E - 0.5;
	return -1;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

/* Reads a placement file an engine loads (as `moetrace place -o` writes it). */
static int read_placement(const struct store_run *run, const char *path, int ranks, int slots,
			  int32_t *p2l, struct util_err *err)
{
	struct analyze_shape sh = analyze_shape_of(run, ranks, slots);

	return analyze_format_read(path, &sh, p2l, NULL, err);
}

/* Does a layer's heat hold any token? */
static int heat_tokens(const double *h, int E)
{
	for (int e = 0; e < E; e++)
		if (h[e] > 0)
			return 1;
	return 0;
}

static int prepare_devices(struct store *s, const struct store_run *run,
			   const struct render_job_opts *o, struct render_job *j)
{
	struct util_err err = UTIL_ERR_INIT;
	int L = run->layers, E = run->experts, ranks, slots, P, rc, deployed;
	int layer = o->layer < 0 ? 0 : o->layer;
	const struct analyze_algo *algo = o->algo;
	const char *pname = "static placement";
	const double *h, *fit_h;
	int out_of_sample = o->fit_to >= o->fit_from;
	char fit_range[128] = "";

	j->layer = layer;

	if (analyze_layout_resolve(run, o->ranks, o->slots, o->redundant, &ranks, &slots, &err))
		return fail(o, &err);
	P = ranks * slots;
	/* only the chosen layer's heat: one bin over the range reads that
	 * layer's blobs alone */
	j->heat = xcalloc((size_t)E, sizeof(double));
	{
		int one = 1;
		double x0, x1;
		if (render_load_timeline(s, run, layer, o->from, o->to, o->phase_mask, &one, j->heat,
					 &x0, &x1, &j->nsteps, &err))
			return fail(o, &err);
	}
	if (j->nsteps == 0)
		return -1;
	if (!heat_tokens(j->heat, E)) { /* no load to draw: not bars at a "perfect" 1.0 */
		util_cli_error(o->cmd, "layer %d got no token in the chosen steps: no device load "
				       "to draw",
			       layer);
		return 2;
	}
	h = fit_h = j->heat;
	if (out_of_sample && !o->placement_file) {
		/* the after placement is fitted on the earlier steps only */
		int one = 1;
		double x0, x1;
		int64_t fit_steps = 0;
		j->fit_heat = xcalloc((size_t)E, sizeof(double));
		if (render_load_timeline(s, run, layer, o->fit_from, o->fit_to, o->phase_mask, &one,
					 j->fit_heat, &x0, &x1, &fit_steps, &err))
			return fail(o, &err);
		if (fit_steps == 0) {
			util_cli_error(o->cmd, "no steps of run '%s' in the fitting range %lld-%lld",
				       run->name, (long long)o->fit_from, (long long)o->fit_to);
			return 2;
		}
		if (!heat_tokens(j->fit_heat, E)) {
			util_cli_error(o->cmd, "layer %d got no token in the fitting range "
					       "%lld-%lld: nothing to fit a placement on",
				       layer, (long long)o->fit_from, (long long)o->fit_to);
			return 2;
		}
		fit_h = j->fit_heat;
		step_range(s, run, o->fit_from, o->fit_to, o->phase_mask, fit_steps, fit_range,
			   sizeof(fit_range));
	}
	j->p2l = xmallocarray((size_t)L * (size_t)P, sizeof(int32_t));
	if (analyze_start_placement(s, run, o->to, ranks, slots, o->force_static, j->p2l,
				    &deployed, NULL, &err)) {
		util_cli_error(o->cmd, "%s", err.msg);
		return 1;
	}
	if (deployed)
		pname = "deployed placement";
	j->loads = xmallocarray((size_t)ranks, sizeof(double));
	analyze_device_load(h, E, j->p2l + (size_t)layer * P, ranks, slots, NULL, j->loads);
	snprintf(j->names[0], sizeof(j->names[0]), "%s", pname);
	j->bar_names[0] = j->names[0];
	j->bar_vals[0] = j->loads;
	j->bars.series = 1;

	/* after: a placement file, else an algorithm (the flagship by default) */
	j->after = xmallocarray((size_t)P, sizeof(int32_t));
	if (o->placement_file) {
		int32_t *all = xmallocarray((size_t)L * P, sizeof(int32_t));
		rc = read_placement(run, o->placement_file, ranks, slots, all, &err);
		memcpy(j->after, all + (size_t)layer * P, (size_t)P * sizeof(int32_t));
		free(all);
		if (rc)
			return fail(o, &err);
		snprintf(j->names[1], sizeof(j->names[1]), "placement from %s",
			 base_name(o->placement_file));
	} else {
		if (!algo)
			algo = analyze_algo_find(ANALYZE_FLAGSHIP);
		if (algo) {
			const struct store_model *m =
				run->model[0] ? store_model_find(run->model) : NULL;
			struct analyze_place_in in = { 0 };
			in.experts = E;
			in.ranks = ranks;
			in.slots = slots;
			in.nodes = run->ranks_per_node > 0 ? ranks / run->ranks_per_node : 0;
			in.groups = m ? m->groups : 0;
			in.heat = fit_h;
			in.current = j->p2l + (size_t)layer * P; /* same ranks keep their experts */
			in.max_moves = -1;
			in.seed = ANALYZE_DEFAULT_SEED;
			if (analyze_place(algo, &in, j->after, &err))
				return fail(o, &err);
			if (fit_range[0])
				snprintf(j->names[1], sizeof(j->names[1]),
					 "%s placement fitted on %s", algo->name,
					 fit_range);
			else
				snprintf(j->names[1], sizeof(j->names[1]),
					 "%s placement fitted on these steps (in hindsight)",
					 algo->name);
		}
	}
	if (o->placement_file || algo) {
		j->loads2 = xmallocarray((size_t)ranks, sizeof(double));
		analyze_device_load(h, E, j->after, ranks, slots, NULL, j->loads2);
		j->bar_names[1] = j->names[1];
		j->bar_vals[1] = j->loads2;
		j->bars.series = 2;
	}
	j->bars.names = j->bar_names;
	j->bars.values = j->bar_vals;
	j->bars.groups = ranks;
	j->dcfg = render_devices_cfg_defaults();
	j->dcfg.x_label = "EP rank";
	j->dcfg.y_label = "device load (tokens per step; replicas split evenly)";
	step_range(s, run, o->from, o->to, o->phase_mask, j->nsteps, j->range, sizeof(j->range));
	snprintf(j->title, sizeof(j->title), "Layer %d device load, %d ranks x %d slots, run '%s'%s, %s%s",
		 layer, ranks, slots, run->name, phase_only(o->phase_mask), j->range,
		 fit_range[0] ? ", not fitted on" : "");
	return -1;
}

/* The settings that tell stored replays apart, one string per key. */
enum { RK_ENGINE, RK_LAYOUT, RK_RPN, RK_EVERY, RK_WINDOW, RK_DELAY, RK_THRESHOLD, RK_MAXMOVES,
       RK_PAY, RK_EPISODES, RK_QUANT, RK_LINKS, RK_HARDWARE, RK_STEPMS, RK_KEYS };

/* Fills v[key] for replay r; shown[key] says whether a lone replay's
 * legend names it (its defaults are left out there). */
static void replay_settings(const struct store_replay *r, char v[RK_KEYS][80], int shown[RK_KEYS])
{
	for (int i = 0; i < RK_KEYS; i++) {
		v[i][0] = '\0';
		shown[i] = 1;
	}
	if (r->engine[0])
		snprintf(v[RK_ENGINE], 80, "%s preset", r->engine);
	else {
		snprintf(v[RK_ENGINE], 80, "no engine preset");
		shown[RK_ENGINE] = 0;
	}
	snprintf(v[RK_LAYOUT], 80, "%d x %d", r->ranks, r->slots);
	shown[RK_LAYOUT] = 0; /* the title gives it */
	snprintf(v[RK_RPN], 80, "%d ranks/node", r->ranks_per_node);
	shown[RK_RPN] = 0;
	snprintf(v[RK_EVERY], 80, "every %lld", (long long)r->interval);
	snprintf(v[RK_WINDOW], 80, "window %lld", (long long)r->window);
	snprintf(v[RK_DELAY], 80, "delay %lld", (long long)r->delay);
	if (r->threshold > 0)
		snprintf(v[RK_THRESHOLD], 80, "threshold %g", r->threshold);
	else {
		snprintf(v[RK_THRESHOLD], 80, "no threshold");
		shown[RK_THRESHOLD] = 0;
	}
	if (r->max_moves >= 0)
		snprintf(v[RK_MAXMOVES], 80, "at most %d moves", r->max_moves);
	else {
		snprintf(v[RK_MAXMOVES], 80, "moves uncapped");
		shown[RK_MAXMOVES] = 0;
	}
	snprintf(v[RK_PAY], 80, "%s", r->pay ? "pay" : "no pay");
	shown[RK_PAY] = r->pay;
	if (r->episodes > 0)
		snprintf(v[RK_EPISODES], 80, "%d episodes", r->episodes);
	else if (r->episodes == ANALYZE_REPLAY_FORECAST)
		snprintf(v[RK_EPISODES], 80, "forecast");
	else {
		snprintf(v[RK_EPISODES], 80, "summed heat");
		shown[RK_EPISODES] = 0;
	}
	snprintf(v[RK_QUANT], 80, "%s", r->quant);
	shown[RK_QUANT] = r->quant[0] != 0;
	if (r->link_intra[0])
		snprintf(v[RK_LINKS], 80, "%s/%s", r->link_intra, r->link_inter);
	else
		shown[RK_LINKS] = 0;
	snprintf(v[RK_HARDWARE], 80, "%s", r->hardware);
	shown[RK_HARDWARE] = 0;
	if (r->step_ms > 0)
		snprintf(v[RK_STEPMS], 80, "step %g ms", r->step_ms);
	else
		shown[RK_STEPMS] = 0;
}

/* Legend names of the stored replays (render_int.h). */
void render_replay_names(const struct store_replay *rp, const int64_t *ids, int n,
			 char (*names)[RENDER_REPLAY_NAME])
{
	static char v[RENDER_MAX_REPLAYS][RK_KEYS][80];
	int shown[RENDER_MAX_REPLAYS][RK_KEYS];

	for (int k = 0; k < n; k++)
		replay_settings(&rp[k], v[k], shown[k]);
	for (int k = 0; k < n; k++) {
		size_t len = (size_t)snprintf(names[k], RENDER_REPLAY_NAME, "replay %lld: %s",
					      (long long)ids[k], rp[k].algo);
		for (int i = 0; i < RK_KEYS; i++) {
			int differs = 0;
			for (int q = 0; q < n; q++)
				differs |= strcmp(v[q][i], v[k][i]) != 0;
			if (!(n == 1 ? shown[k][i] : differs) || !v[k][i][0] ||
			    len >= RENDER_REPLAY_NAME)
				continue;
			len += (size_t)snprintf(names[k] + len, RENDER_REPLAY_NAME - len, ", %s",
						v[k][i]);
		}
	}
}

/* Whether two baselines are one: both unscored, or equal but for the
 * rounding of a sum. */
static int same_base(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* The chart draws one baseline, the first replay's: replay k must share it
 * (the same layout, steps and per-step baseline).  Returns -1 or the exit
 * status after saying why not. */
static int check_baseline(const struct render_job_opts *o, const struct render_job *j, int k,
			  size_t n)
{
	const struct store_replay *a = &j->rp[0], *b = &j->rp[k];
	long long ia = (long long)o->replay_id[0], ib = (long long)o->replay_id[k];
	size_t i = 0;

	if (a->ranks != b->ranks || a->slots != b->slots) {
		util_cli_error(o->cmd, "replays %lld and %lld are of different layouts (%d x %d "
					 "against %d x %d ranks x slots): draw them one at a time",
			       ia, ib, a->ranks, a->slots, b->ranks, b->slots);
		return 2;
	}
	while (i < n && j->rsteps[0][i] == j->rsteps[k][i])
		i++;
	if (i < n) {
		util_cli_error(o->cmd, "replays %lld and %lld cover different steps: draw "
					 "them one at a time", ia, ib);
		return 2;
	}
	for (i = 0; i < n && same_base(j->rbase[0][i], j->rbase[k][i]);)
		i++;
	if (i == n)
		return -1;
	util_cli_error(o->cmd, "replays %lld and %lld start from different placements (baseline "
				 "mean %.3f against %.3f; at step %lld, %.3f against %.3f): draw them "
				 "one at a time",
		       ia, ib, a->baseline_imbalance_mean, b->baseline_imbalance_mean,
		       (long long)j->rsteps[0][i], j->rbase[0][i], j->rbase[k][i]);
	return 2;
}

/* The replays' stored series against their start placement. */
static int load_replays(struct store *s, const struct render_job_opts *o, struct render_job *j,
			size_t *n)
{
	int st;

	for (int k = 0; k < o->nreplay; k++) {
		size_t m = 0, ne = 0, ke = 0;
		if (store_replay_series(s, o->replay_id[k], o->layer, &j->rsteps[k], &j->rimb[k],
					&j->rbase[k], &m) ||
		    store_replay_events(s, o->replay_id[k], &j->ev[k], &ne)) {
			util_cli_error(o->cmd, "%s", store_errmsg(s));
			return 1;
		}
		if (k == 0) {
			*n = m;
			j->xs = xmallocarray(m ? m : 1, sizeof(double));
			for (size_t i = 0; i < m; i++)
				j->xs[i] = (double)j->rsteps[0][i];
		}
		if (m != *n) {
			util_cli_error(o->cmd, "replays %lld and %lld cover different steps: draw "
						 "them one at a time",
				       (long long)o->replay_id[0], (long long)o->replay_id[k]);
			return 2;
		}
		if (k > 0 && (st = check_baseline(o, j, k, m)) >= 0)
			return st;
		j->evx[k] = xmallocarray(ne ? ne : 1, sizeof(double));
		for (size_t i = 0; i < ne; i++)
			if (j->ev[k][i].effective_step >= 0)
				j->evx[k][ke++] = (double)j->ev[k][i].effective_step;
		j->series[k + 1] = (struct render_series){ j->rnames[k], m, j->xs, j->rimb[k], ke,
							   j->evx[k] };
	}
	render_replay_names(j->rp, o->replay_id, o->nreplay, j->rnames);
	snprintf(j->names[0], sizeof(j->names[0]), "baseline (the replay's start placement)");
	j->series[0].y = j->rbase[0];
	j->nseries = o->nreplay + 1;
	{
		/* --steps picks a part of the replayed steps */
		size_t i0 = 0, i1 = *n;
		while (i0 < *n && j->xs[i0] < (double)o->from)
			i0++;
		while (i1 > i0 && j->xs[i1 - 1] > (double)o->to)
			i1--;
		for (int k = 0; k <= o->nreplay; k++) {
			j->series[k].y += i0;
			j->series[k].n = i1 - i0;
		}
		memmove(j->xs, j->xs + i0, (i1 - i0) * sizeof(double));
		*n = i1 - i0;
	}
	return -1;
}

/* The recorded (or static) placement, and optionally a placement file or
 * an algorithm's placement fitted on the same steps, scored per step. */
static int load_placements(struct store *s, const struct store_run *run,
			   const struct render_job_opts *o, int ranks, int slots, struct render_job *j,
			   size_t *n)
{
	struct util_err err = UTIL_ERR_INIT;
	int L = run->layers, E = run->experts, P = ranks * slots;
	size_t n2 = 0;

	if (o->force_static) {
		j->fixed0 = xmallocarray((size_t)L * P, sizeof(int32_t));
		for (int l = 0; l < L; l++)
			analyze_static_phy2log(E, ranks, slots, j->fixed0 + (size_t)l * P);
	}
	if (render_load_imbalance(s, run, o->layer, o->from, o->to, o->phase_mask, ranks, slots,
				  j->fixed0, &j->xs, &j->ys, n, &err))
		return fail(o, &err);
	snprintf(j->names[0], sizeof(j->names[0]), "baseline (%s placement)",
		 o->force_static ? "static" : "recorded");
	j->series[0].y = j->ys;
	j->nseries = 1;
	if (!*n || !(o->placement_file || o->algo))
		return -1;
	j->fixed1 = xmallocarray((size_t)L * P, sizeof(int32_t));
	if (o->placement_file ? read_placement(run, o->placement_file, ranks, slots, j->fixed1, &err)
			      : fit_placement(s, run, o->layer, o->from, o->to, o->phase_mask,
					      o->algo, ranks, slots, j->fixed1, &err))
		return fail(o, &err);
	if (render_load_imbalance(s, run, o->layer, o->from, o->to, o->phase_mask, ranks, slots,
				  j->fixed1, &j->xs2, &j->ys2, &n2, &err))
		return fail(o, &err);
	if (n2 != *n) {
		util_cli_error(o->cmd, "the trace changed while it was read");
		return 1;
	}
	if (o->placement_file)
		snprintf(j->names[1], sizeof(j->names[1]), "placement from %s",
			 base_name(o->placement_file));
	else
		snprintf(j->names[1], sizeof(j->names[1]), "%s fitted on these steps (in hindsight)",
			 o->algo->name);
	j->series[1] = (struct render_series){ j->names[1], *n, j->xs, j->ys2, 0, NULL };
	j->nseries = 2;
	return -1;
}

/* The per-step series of a replay run in memory against its start
 * placement, its rebalances marked where they took effect. */
static void use_replay(const struct analyze_replay_out *r, const char *name, struct render_job *j,
		       size_t *n)
{
	size_t ke = 0;

	size_t np = 0;

	*n = r->n_series;
	j->xs = xmallocarray(*n ? *n : 1, sizeof(double));
	for (size_t i = 0; i < *n; i++) {
		j->xs[i] = (double)r->series_step[i];
		np += r->series_phase[i] == STORE_PHASE_PREFILL;
	}
	/* a replay of both phases: its prefill steps are marked (each weighs
	 * as much as a decode step in the mean, and routes a few prompts'
	 * tokens together: the spikes) */
	if (np && np < *n) {
		j->marks = xmallocarray(np, sizeof(double));
		for (size_t i = 0; i < *n; i++)
			if (r->series_phase[i] == STORE_PHASE_PREFILL)
				j->marks[j->n_marks++] = j->xs[i];
	}
	j->evx[0] = xmallocarray(r->n_events ? r->n_events : 1, sizeof(double));
	for (size_t i = 0; i < r->n_events; i++)
		if (r->events[i].effective_step >= 0)
			j->evx[0][ke++] = (double)r->events[i].effective_step;
	snprintf(j->names[0], sizeof(j->names[0]), "baseline (the replay's start placement)");
	snprintf(j->rnames[0], sizeof(j->rnames[0]), "%s", name);
	j->series[0].y = r->series_base;
	j->series[1] = (struct render_series){ j->rnames[0], *n, j->xs, r->series_imbalance, ke,
					       j->evx[0] };
	j->nseries = 2;
}

static int prepare_imbalance(struct store *s, const struct store_run *run,
			     const struct render_job_opts *o, struct render_job *j)
{
	struct util_err err = UTIL_ERR_INIT;
	int ranks, slots, st = -1;
	size_t n = 0;

	if (o->nreplay) {
		ranks = j->rp[0].ranks;
		slots = j->rp[0].slots;
		st = load_replays(s, o, j, &n);
	} else if (o->replay) {
		ranks = o->replay->sum.ranks;
		slots = o->replay->sum.slots;
		use_replay(o->replay, o->replay_name ? o->replay_name : "replay", j, &n);
	} else {
		if (analyze_layout_resolve(run, o->ranks, o->slots, o->redundant, &ranks, &slots,
					   &err))
			return fail(o, &err);
		if (o->placement_file || o->algo) {
			st = load_placements(s, run, o, ranks, slots, j, &n);
		} else {
			/* no replay, file or algorithm named: replay the flagship */
			struct render_replay_req q = {
				.algo = analyze_algo_find(ANALYZE_FLAGSHIP),
				.ranks = ranks, .slots = slots, .layer = o->layer,
				.force_static = o->force_static, .quant = -1,
				.per_step = 1, /* the replay's default episodes */
				.from = o->from, .to = o->to, .delay = -1,
				.phase_mask = o->phase_mask,
				.model = run->model[0] ? store_model_find(run->model) : NULL,
			};
			char desc[160];
			int64_t nsteps = 0;
			if (!q.algo)
				q.algo = analyze_algo_at(0);
			if (render_replay_run(s, run, &q, &j->own, &nsteps, desc, sizeof(desc),
					      &err))
				return fail(o, &err);
			if (nsteps == 0)
				return -1;
			use_replay(&j->own, desc, j, &n);
		}
	}
	if (st >= 0)
		return st;
	j->nsteps = (int64_t)n;
	if (n == 0)
		return -1;
	j->series[0].name = j->names[0];
	j->series[0].n = n;
	j->series[0].x = j->xs;
	j->icfg = render_imbalance_cfg_defaults();
	j->icfg.x_label = "step";
	j->icfg.y_label = "imbalance (max / mean device load)";
	j->icfg.marks = j->marks;
	j->icfg.n_marks = j->n_marks;
	j->icfg.marks_label = "prefill step";
	range_text(j->range, sizeof(j->range), (int64_t)j->xs[0], (int64_t)j->xs[n - 1],
		   j->nsteps);
	{
		/* steps without a token (NAN) are gaps, said in the title */
		size_t u = 0, len = strlen(j->range);
		for (size_t i = 0; i < n; i++)
			u += isnan(j->series[0].y[i]) != 0;
		if (u == n) {
			util_cli_error(o->cmd, "no step of %s routed a token%s: no imbalance to draw",
				       j->range, o->layer >= 0 ? " to this layer" : "");
			return 2;
		}
		if (u)
			snprintf(j->range + len, sizeof(j->range) - len,
				 " (%zu without tokens, not scored)", u);
	}
	if (o->layer >= 0)
		snprintf(j->title, sizeof(j->title),
			 "Layer %d imbalance, %d ranks x %d slots, run '%s'%s, %s", o->layer, ranks,
			 slots, run->name, phase_only(o->phase_mask), j->range);
	else
		snprintf(j->title, sizeof(j->title),
			 "Imbalance of all layers (sum of max / sum of mean), %d x %d, run '%s'%s, %s",
			 ranks, slots, run->name, phase_only(o->phase_mask), j->range);
	return -1;
}

static int prepare_transfer(struct store *s, const struct store_run *run,
			    const struct render_job_opts *o, struct render_job *j)
{
	const struct analyze_replay_out *r = o->replay;
	const struct store_replay_event *ev;
	int L = run->layers;
	size_t ne = 0;
	double total = 0;
	char who[200];

	if (r) {
		ev = r->events;
		ne = r->n_events;
		snprintf(who, sizeof(who), "replay of %s every %lld steps (%d x %d)", r->sum.algo,
			 (long long)r->sum.interval, r->sum.ranks, r->sum.slots);
	} else {
		if (store_replay_events(s, o->replay_id[0], &j->ev[0], &ne) ||
		    store_replay_event_moves(s, o->replay_id[0], L, ne, &j->tbytes)) {
			util_cli_error(o->cmd, "%s", store_errmsg(s));
			return 1;
		}
		ev = j->ev[0];
		const struct store_replay *rp = &j->rp[0];
		char set[112] = "";
		if (rp->quant[0]) /* the settings a stored replay recorded (schema 3) */
			snprintf(set, sizeof(set), ", %s, %s/%s%s", rp->quant, rp->link_intra,
				 rp->link_inter, rp->pay ? ", pay" : "");
		snprintf(who, sizeof(who), "replay %lld (%s, %d x %d%s)", (long long)o->replay_id[0],
			 rp->algo, rp->ranks, rp->slots, set);
	}
	if (ne == 0) {
		if (r)
			util_cli_error(o->cmd, "the replay made no rebalance: nothing to draw");
		else
			util_cli_error(o->cmd, "replay %lld made no rebalance: nothing to draw",
				       (long long)o->replay_id[0]);
		return 2;
	}
	j->nsteps = (int64_t)ne;
	j->tb = xmallocarray(ne * (size_t)(L > 2 ? L : 2), sizeof(double)); /* or 2 tiers */
	j->tstep = xmallocarray(ne, sizeof(double));
	for (size_t i = 0; i < ne; i++)
		for (int l = 0; l < L; l++) {
			size_t k = i * (size_t)L + (size_t)l;
			/* in memory: moves per layer, bytes = moves x the expert's bytes */
			double per = r && ev[i].moves ? (double)ev[i].bytes / (double)ev[i].moves
						      : 0;
			double b = r ? (double)r->event_moves[k] * per : (double)j->tbytes[k];
			total += j->tb[k] = b;
		}
	for (size_t i = 0; i < ne; i++)
		j->tstep[i] = (double)ev[i].step;
	j->transfer = (struct render_transfer){ (int)ne, L, j->tstep, j->tb };
	j->tcfg = render_transfer_cfg_defaults();
	j->tcfg.stacked = !o->summed;
	if (total == 0) {
		/* no expert size known for the run (no model preset): copies */
		for (size_t i = 0; i < ne; i++)
			j->tb[i] = (double)ev[i].moves;
		j->transfer.layers = 1;
		j->tcfg.stacked = 0;
		j->tcfg.unit = "expert copies";
	}
	j->tcfg.x_label = "rebalance event (labelled by the step it was decided at)";
	snprintf(j->title, sizeof(j->title), "%s per rebalance, %s, run '%s'",
		 total == 0 ? "Expert copies (bytes unknown: no model preset)"
			    : "Expert weights moved",
		 who, run->name);
	if (total > 0 && !o->by_layer && !o->summed) {
		/* by default what a rebalance costs in time on each link tier (they
		 * run at once, so the longer one is the event's time); the bytes
		 * stacked by layer are --by-layer */
		const char *li = r ? r->sum.link_intra : j->rp[0].link_intra;
		const char *le = r ? r->sum.link_inter : j->rp[0].link_inter;
		double si = 0, se = 0;
		for (size_t i = 0; i < ne; i++) {
			j->tb[2 * i] = ev[i].transfer_intra_seconds;
			j->tb[2 * i + 1] = ev[i].transfer_inter_seconds;
			si += ev[i].transfer_intra_seconds;
			se += ev[i].transfer_inter_seconds;
		}
		if (si + se > 0) {
			snprintf(j->tier[0], sizeof(j->tier[0]), "inside nodes (%s): %.3g s in all",
				 li[0] ? li : "one link", si);
			snprintf(j->tier[1], sizeof(j->tier[1]), "across nodes (%s): %.3g s in all",
				 le[0] ? le : "one link", se);
			j->tier_name[0] = j->tier[0];
			j->tier_name[1] = j->tier[1];
			j->transfer.layers = 2;
			j->tcfg.names = j->tier_name;
			j->tcfg.unit = "seconds";
			snprintf(j->title, sizeof(j->title),
				 "Transfer time per rebalance and link tier, %s, run '%s'", who,
				 run->name);
		} else {
			/* a replay stored before the tiers were: its bytes by layer */
			for (size_t i = 0; i < ne; i++)
				for (int l = 0; l < L; l++) {
					size_t k = i * (size_t)L + (size_t)l;
					double per = r && ev[i].moves ? (double)ev[i].bytes /
										(double)ev[i].moves
								      : 0;
					j->tb[k] = r ? (double)r->event_moves[k] * per
						     : (double)j->tbytes[k];
				}
		}
	}
	return -1;
}

/* What the replay of q gives its algorithm of a window of W steps:
 * without episodes asked for, the flagship its forecast (as `replay` does)
 * and the others the report's episodes or one per step (per_step). */
static int replay_req_episodes(const struct render_replay_req *q, int64_t W)
{
	int fc = analyze_replay_episodes(q->algo, -1, W);

	if (q->per_step || (q->episodes < 0 && fc == ANALYZE_REPLAY_FORECAST))
		return fc;
	return analyze_fit_episodes(q->episodes, W);
}

int render_replay_run(struct store *s, const struct store_run *run,
		      const struct render_replay_req *q, struct analyze_replay_out *out,
		      int64_t *nsteps, char *desc, size_t ndesc, struct util_err *err)
{
	int L = run->layers, P = q->ranks * q->slots, rc, deployed;
	int64_t n, first, K = q->interval, W = q->window, D = q->delay;
	const struct analyze_link *link = analyze_link_find("nvlink4");
	int32_t *start;
	const char *sname = "deployed";

	*nsteps = 0;
	if ((rc = analyze_step_count(s, run, q->from, q->to, q->phase_mask, &n, err)))
		return rc;
	if (n == 0)
		return 0;
	*nsteps = n;
	analyze_replay_cadence(n, &K, &W, &D);
	start = xmallocarray((size_t)L * (size_t)P, sizeof(int32_t));
	if ((rc = analyze_first_selected(s, run, q->from, q->to, q->phase_mask, &first, err)) ||
	    (rc = analyze_start_placement(s, run, first, q->ranks, q->slots, q->force_static, start,
					  &deployed, NULL, err))) {
		free(start);
		return rc;
	}
	if (!deployed)
		sname = "static";
	struct analyze_replay_cfg cfg = {
		.algo = q->algo, .ranks = q->ranks, .slots = q->slots,
		.interval = K, .window = W, .delay = D, .max_moves = -1,
		.episodes = replay_req_episodes(q, W),
		.move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE, .seed = ANALYZE_DEFAULT_SEED,
		.from = q->from, .to = q->to, .phase_mask = q->phase_mask, .start = start,
		.expert_bytes = q->model ? analyze_expert_bytes(q->model->hidden, q->model->inter,
								q->quant >= 0 ? q->quant
									      : analyze_model_quant(q->model))
					 : 0,
		.gbytes_per_s = q->gbytes_per_s > 0 ? q->gbytes_per_s
						    : (link ? link->gbytes_per_s : 0),
		.sec_per_token = q->model ? analyze_sec_per_token(q->model->hidden, q->model->inter, 400)
					  : 0,
		.threads = 2, .store = 0, .series = 1, .series_layer = q->layer,
	};
	/* the deployment the replay command resolves by default: the run's
	 * nodes, the model's precision, h100 and its two links */
	struct analyze_deploy_opts dopts = ANALYZE_DEPLOY_OPTS_INIT;
	struct analyze_deploy dep;
	struct util_err derr = UTIL_ERR_INIT;
	dopts.quant = q->quant;
	dopts.bandwidth = q->gbytes_per_s;
	dopts.link = q->link;
	if (analyze_deploy_resolve(run, q->model, q->ranks, &dopts, &dep, &derr) == 0)
		cfg.deploy = &dep;
	rc = analyze_replay_run(s, run, &cfg, out, err);
	free(start);
	if (rc)
		return rc;
	char eps[32] = "";
	if (cfg.episodes > 0)
		snprintf(eps, sizeof(eps), " (%d episodes)", cfg.episodes);
	else if (cfg.episodes == ANALYZE_REPLAY_FORECAST)
		snprintf(eps, sizeof(eps), " (its forecast)");
	snprintf(desc, ndesc,
		 "replay of %s from the %s placement: every %lld steps, window %lld%s, delay %lld",
		 q->algo->name, sname, (long long)K, (long long)W, eps, (long long)D);
	return 0;
}

int render_kind_parse(const char *s)
{
	static const char *const names[RENDER_KINDS] = { "heatmap", "timeline", "devices",
							 "imbalance", "transfer" };

	for (int i = 0; i < RENDER_KINDS; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

void render_job_opts_init(struct render_job_opts *o, const char *cmd, enum render_kind kind)
{
	memset(o, 0, sizeof(*o));
	o->cmd = cmd;
	o->kind = kind;
	o->layer = -1;
	o->width = RENDER_WIDTH;
	o->height = RENDER_HEIGHT;
	o->scale = 1;
	o->from = INT64_MIN;
	o->to = INT64_MAX;
	o->fit_from = 0;
	o->fit_to = -1;
	/* heat is heavy-tailed: on a linear scale most cells read dark */
	o->log_scale = 1;
}

int render_job_prepare(struct render_job *j, struct store *s, struct store_run *run,
		       const struct render_job_opts *o)
{
	static int (*const prepare[])(struct store *, const struct store_run *,
				      const struct render_job_opts *, struct render_job *) = {
		[RENDER_HEATMAP] = prepare_heatmap,	[RENDER_TIMELINE] = prepare_timeline,
		[RENDER_DEVICES] = prepare_devices,	[RENDER_IMBALANCE] = prepare_imbalance,
		[RENDER_TRANSFER] = prepare_transfer,
	};
	int status;

	j->kind = o->kind;
	j->layer = o->layer;
	if ((status = open_replays(s, o, run, j)) >= 0)
		return status;
	if (o->layer >= run->layers) {
		util_cli_error(o->cmd, "layer %d out of range: run '%s' has layers 0-%d", o->layer,
			       run->name, run->layers - 1);
		return 2;
	}
	if ((status = prepare[o->kind](s, run, o, j)) >= 0)
		return status;
	if (j->nsteps == 0) {
		util_cli_error(o->cmd, "no steps of run '%s' in the chosen range", run->name);
		return 2;
	}
	if (o->title)
		snprintf(j->title, sizeof(j->title), "%s", o->title);
	j->hcfg.title = j->dcfg.title = j->icfg.title = j->tcfg.title = j->title;
	return -1;
}

/*
 * cmd_render.c: `moetrace render DB KIND -o OUT` — one chart of a run as
 * PNG, SVG or PDF (by OUT's extension).  Each kind loads its arrays with
 * the render/data.c loaders, then render_write() draws it through the
 * chart function; every argument is checked before anything is written.
 */
#include "render/render.h"

#include "analyze/analyze.h"
#include "cmds.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: moetrace render [--run NAME] [--layer L] [--steps A:B] [--phase prefill|decode]\n"
	"                       [--sort heat|id] [--log] [--static] [--algo NAME | --placement FILE]\n"
	"                       [--replay ID]... [--summed]\n"
	"                       [--ranks R] [--slots S | --redundant N]\n"
	"                       [--width W] [--height H] [--scale X] [--title TEXT]\n"
	"                       -o OUT.png|.svg|.pdf DB KIND\n"
	"kinds: heatmap timeline devices imbalance transfer\n";

#define MAX_REPLAYS 7

enum kind { K_HEATMAP, K_TIMELINE, K_DEVICES, K_IMBALANCE, K_TRANSFER };
static const char *const kind_names[] = { "heatmap", "timeline", "devices", "imbalance",
					  "transfer" };

struct opts {
	const char *db, *runname, *out, *title, *placement_file;
	const struct analyze_algo *algo;
	enum kind kind;
	int64_t replay_id[MAX_REPLAYS];
	int nreplay, summed, layer, sort_heat, log_scale, force_static;
	int ranks, slots, redundant, width, height;
	double scale;
	int64_t from, to;
	unsigned phase_mask;
};

/* Everything one chart needs, filled before render_write() runs.  It owns
 * the arrays it points to; job_release() frees them. */
struct job {
	enum kind kind;
	struct render_heatmap_cfg hcfg;
	struct render_grid grid;
	struct render_devices_cfg dcfg;
	struct render_bars bars;
	struct render_imbalance_cfg icfg;
	struct render_series series[MAX_REPLAYS + 1];
	int nseries;
	struct render_transfer_cfg tcfg;
	struct render_transfer transfer;
	int64_t nsteps; /* steps (or events) drawn; 0: nothing in the range */
	char title[512], range[128], names[2][160], rnames[MAX_REPLAYS][160];
	const char *bar_names[2];
	const double *bar_vals[2];
	struct store_replay rp[MAX_REPLAYS];
	/* owned arrays */
	double *heat, *grid_v, *xs, *ys, *xs2, *ys2, *loads, *loads2, *tb, *tstep;
	int *ids;
	int32_t *p2l, *after, *fixed0, *fixed1;
	struct store_replay_event *ev[MAX_REPLAYS];
	int64_t *rsteps[MAX_REPLAYS], *tbytes;
	double *rimb[MAX_REPLAYS], *rbase[MAX_REPLAYS], *evx[MAX_REPLAYS];
};

static void job_release(struct job *j)
{
	free(j->heat);
	free(j->grid_v);
	free(j->xs);
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
	for (int k = 0; k < MAX_REPLAYS; k++) {
		free(j->ev[k]);
		free(j->rsteps[k]);
		free(j->rimb[k]);
		free(j->rbase[k]);
		free(j->evx[k]);
	}
}

static int draw(cairo_t *cr, double w, double h, int page, void *ctx)
{
	struct job *j = ctx;

	(void)page;
	switch (j->kind) {
	case K_HEATMAP:
	case K_TIMELINE:
		return render_heatmap(cr, w, h, &j->hcfg, &j->grid);
	case K_DEVICES:
		return render_devices(cr, w, h, &j->dcfg, &j->bars);
	case K_IMBALANCE:
		return render_imbalance(cr, w, h, &j->icfg, j->series, j->nseries);
	case K_TRANSFER:
		return render_transfer(cr, w, h, &j->tcfg, &j->transfer);
	}
	return UTIL_EUSAGE;
}

static void range_text(char *buf, size_t n, int64_t first, int64_t last, int64_t nsteps)
{
	snprintf(buf, n, "steps %lld-%lld (%lld step%s)", (long long)first, (long long)last,
		 (long long)nsteps, nsteps == 1 ? "" : "s");
}

/* "steps A-B (N steps)" for the steps of [from, to] actually recorded. */
static void step_range(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		       unsigned phase_mask, int64_t nsteps, char *buf, size_t n)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT min(step), max(step) FROM steps s WHERE run = ?1 AND "
			       "step BETWEEN ?2 AND ?3 AND (?4 = 0 OR ((1 << s.phase) & ?4) != 0)",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, run->id);
		sqlite3_bind_int64(st, 2, from);
		sqlite3_bind_int64(st, 3, to);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)phase_mask);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			range_text(buf, n, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
				   nsteps);
			sqlite3_finalize(st);
			return;
		}
	}
	sqlite3_finalize(st);
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
		in.seed = 1;
		rc = analyze_place(algo, &in, p2l + (size_t)l * P, err);
	}
	free(heat);
	return rc;
}

/* Sorts expert ids by descending heat (ties by id, so output is stable). */
static int by_heat(const void *a, const void *b, void *key)
{
	const double *k = key;
	int x = *(const int *)a, y = *(const int *)b;

	if (k[x] != k[y])
		return k[x] < k[y] ? 1 : -1;
	return x - y;
}

static int fail(struct util_err *err)
{
	return util_cli_fail("render", err);
}

/* Parses argv into o; returns -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{ "run", required_argument, NULL, 'r' },
		{ "layer", required_argument, NULL, 'l' },
		{ "steps", required_argument, NULL, 's' },
		{ "phase", required_argument, NULL, 'p' },
		{ "sort", required_argument, NULL, 'O' },
		{ "log", no_argument, NULL, 'g' },
		{ "static", no_argument, NULL, 'x' },
		{ "replay", required_argument, NULL, 'y' },
		{ "summed", no_argument, NULL, 'u' },
		{ "algo", required_argument, NULL, 'a' },
		{ "placement", required_argument, NULL, 'P' },
		{ "ranks", required_argument, NULL, 'R' },
		{ "slots", required_argument, NULL, 'S' },
		{ "redundant", required_argument, NULL, 'N' },
		{ "width", required_argument, NULL, 'W' },
		{ "height", required_argument, NULL, 'H' },
		{ "scale", required_argument, NULL, 'X' },
		{ "title", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct util_err err = UTIL_ERR_INIT;
	int c, kind = -1;

	while ((c = getopt_long(argc, argv, "r:l:s:p:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': o->runname = optarg; break;
		case 'l':
			if (util_parse_int(optarg, 0, STORE_MAX_LAYERS - 1, &o->layer, "--layer", &err))
				return fail(&err);
			break;
		case 's':
			if (util_parse_range(optarg, &o->from, &o->to, "--steps", &err))
				return fail(&err);
			if (o->from > o->to) {
				util_cli_error("render", "--steps: empty range '%s'", optarg);
				return 2;
			}
			break;
		case 'p': {
			int ph = store_phase_parse(optarg);
			if (ph <= 0) {
				util_cli_error("render", "--phase: '%s' is not prefill or decode", optarg);
				return 2;
			}
			o->phase_mask = 1u << ph;
			break;
		}
		case 'O':
			if (!strcmp(optarg, "heat") || !strcmp(optarg, "id")) {
				o->sort_heat = !strcmp(optarg, "heat");
			} else {
				util_cli_error("render", "--sort: '%s' is not heat or id", optarg);
				return 2;
			}
			break;
		case 'g': o->log_scale = 1; break;
		case 'x': o->force_static = 1; break;
		case 'y':
			if (o->nreplay == MAX_REPLAYS) {
				util_cli_error("render", "at most %d --replay options", MAX_REPLAYS);
				return 2;
			}
			if (util_parse_i64(optarg, 1, INT64_MAX, &o->replay_id[o->nreplay], "--replay",
					   &err))
				return fail(&err);
			o->nreplay++;
			break;
		case 'u': o->summed = 1; break;
		case 'P': o->placement_file = optarg; break;
		case 'a':
			if (!(o->algo = analyze_algo_find(optarg))) {
				util_cli_error("render", "unknown algorithm '%s' (moetrace place --list)",
					       optarg);
				return 2;
			}
			break;
		case 'R':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->ranks, "--ranks", &err))
				return fail(&err);
			break;
		case 'S':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->slots, "--slots", &err))
				return fail(&err);
			break;
		case 'N':
			if (util_parse_int(optarg, 0, STORE_MAX_SLOTS, &o->redundant, "--redundant",
					   &err))
				return fail(&err);
			break;
		case 'W':
			if (util_parse_int(optarg, 200, 8000, &o->width, "--width", &err))
				return fail(&err);
			break;
		case 'H':
			if (util_parse_int(optarg, 150, 8000, &o->height, "--height", &err))
				return fail(&err);
			break;
		case 'X':
			if (util_parse_double(optarg, 0.25, 4, &o->scale, "--scale", &err))
				return fail(&err);
			break;
		case 't': o->title = optarg; break;
		case 'o': o->out = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc - 2) {
		fputs(usage, stderr);
		return 2;
	}
	o->db = argv[optind];
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(kind_names); i++)
		if (!strcmp(argv[optind + 1], kind_names[i]))
			kind = (int)i;
	if (kind < 0) {
		util_cli_error("render", "unknown chart kind '%s' (heatmap, timeline, devices, "
					 "imbalance or transfer)",
			       argv[optind + 1]);
		return 2;
	}
	o->kind = (enum kind)kind;
	return -1;
}

/* Checks that need no database; returns -1 or the exit status. */
static int check_opts(const struct opts *o)
{
	const char *msg = NULL;

	if (!o->out)
		msg = "no output file: give -o OUT.png, .svg or .pdf";
	else if ((o->placement_file || o->algo) && o->kind != K_DEVICES && o->kind != K_IMBALANCE)
		msg = "--algo and --placement apply to the devices and imbalance charts";
	else if ((o->placement_file || o->algo) && o->nreplay)
		msg = "--algo and --placement do not combine with --replay";
	else if (o->placement_file && o->algo)
		msg = "give --algo or --placement, not both";
	else if (o->layer >= 0 && o->kind == K_HEATMAP)
		msg = "heatmap shows every layer: --layer applies to timeline, devices and imbalance";
	else if (o->nreplay && o->kind != K_IMBALANCE && o->kind != K_TRANSFER)
		msg = "--replay applies to imbalance and transfer charts";
	else if (o->kind == K_TRANSFER && o->nreplay != 1)
		msg = "transfer draws the rebalance events of one replay: give --replay ID "
		      "(moetrace replays lists them)";
	if (msg) {
		util_cli_error("render", "%s", msg);
		return 2;
	}
	if (!render_format_known(o->out)) {
		util_cli_error("render", "cannot tell the format of '%s': use .png, .svg or .pdf",
			       o->out);
		return 2;
	}
	return -1;
}

/* Reads the replays' summaries; without --run the first replay's own run
 * is the one drawn.  Returns -1 or the exit status. */
static int open_replays(struct store *s, const struct opts *o, struct store_run *run,
			struct job *j)
{
	for (int k = 0; k < o->nreplay; k++) {
		int rc = store_replay_get(s, o->replay_id[k], &j->rp[k]);
		if (rc) {
			util_cli_error("render", "%s", store_errmsg(s));
			return rc == UTIL_ENOTFOUND || rc == UTIL_EDB ? 2 : 1;
		}
		if (j->rp[k].run != run->id) {
			char idbuf[32];
			if (o->runname || k > 0) {
				util_cli_error("render", "replay %lld is of another run than '%s'",
					       (long long)o->replay_id[k], run->name);
				return 2;
			}
			snprintf(idbuf, sizeof(idbuf), "%lld", (long long)j->rp[k].run);
			if (store_run_get(s, idbuf, run)) {
				util_cli_error("render", "%s", store_errmsg(s));
				return 1;
			}
		}
	}
	return -1;
}

/* ---- one function per kind: load the arrays, set up the chart ----------
 * Each returns -1 when the job is ready (j->nsteps == 0: nothing in the
 * range), else the exit status after printing why. */

static int prepare_heatmap(struct store *s, const struct store_run *run, const struct opts *o,
			   struct job *j)
{
	struct util_err err = UTIL_ERR_INIT;
	int L = run->layers, E = run->experts;

	j->heat = xmallocarray((size_t)L * (size_t)E, sizeof(double));
	if (render_load_heat(s, run, o->from, o->to, o->phase_mask, j->heat, &j->nsteps, &err))
		return fail(&err);
	if (j->nsteps == 0)
		return -1;
	step_range(s, run, o->from, o->to, o->phase_mask, j->nsteps, j->range, sizeof(j->range));
	j->hcfg = render_heatmap_cfg_defaults();
	j->hcfg.log_scale = o->log_scale;
	j->hcfg.y_label = "MoE layer";
	j->hcfg.x_label = "expert";
	j->hcfg.unit = "tokens per step (mean over the steps)";
	if (o->sort_heat) {
		double *tot = xcalloc((size_t)E, sizeof(double));
		double *sorted = xmallocarray((size_t)L * (size_t)E, sizeof(double));
		j->ids = xmallocarray((size_t)E, sizeof(int));
		for (int l = 0; l < L; l++)
			for (int e = 0; e < E; e++)
				tot[e] += j->heat[(size_t)l * E + e];
		for (int e = 0; e < E; e++)
			j->ids[e] = e;
		qsort_r(j->ids, (size_t)E, sizeof(int), by_heat, tot);
		for (int l = 0; l < L; l++)
			for (int i = 0; i < E; i++)
				sorted[(size_t)l * E + i] = j->heat[(size_t)l * E + j->ids[i]];
		free(j->heat);
		j->heat = sorted;
		free(tot);
		j->grid.col_ids = j->ids;
		j->hcfg.x_label = "expert id, hottest first over all layers";
	}
	snprintf(j->title, sizeof(j->title), "Expert heat of run '%s', %s", run->name, j->range);
	j->grid.rows = L;
	j->grid.cols = E;
	j->grid.v = j->heat;
	j->grid.x0 = -0.5;
	j->grid.x1 = E - 0.5;
	j->grid.y0 = -0.5;
	j->grid.y1 = L - 0.5;
	return -1;
}

static int prepare_timeline(struct store *s, const struct store_run *run, const struct opts *o,
			    struct job *j)
{
	struct util_err err = UTIL_ERR_INIT;
	int E = run->experts, bins = (int)ceil(o->width * o->scale);
	int layer = o->layer < 0 ? 0 : o->layer;
	double x0 = 0, x1 = 0;

	/* at most one bin per output pixel: the chart averages further */
	j->grid_v = xmallocarray((size_t)E * (size_t)bins, sizeof(double));
	if (render_load_timeline(s, run, layer, o->from, o->to, o->phase_mask, &bins, j->grid_v,
				 &x0, &x1, &j->nsteps, &err))
		return fail(&err);
	if (j->nsteps == 0)
		return -1;
	range_text(j->range, sizeof(j->range), (int64_t)x0, (int64_t)x1 - 1, j->nsteps);
	snprintf(j->title, sizeof(j->title), "Layer %d heat over time, run '%s', %s", layer,
		 run->name, j->range);
	j->hcfg = render_heatmap_cfg_defaults();
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
	const struct store_model *m = run->model[0] ? store_model_find(run->model) : NULL;
	struct analyze_shape sh = { run->layers, run->experts, ranks, slots, run->first_layer,
				    m ? m->layer_step : 1 };

	return analyze_format_read(path, &sh, p2l, NULL, err);
}

static int prepare_devices(struct store *s, const struct store_run *run, const struct opts *o,
			   struct job *j)
{
	struct util_err err = UTIL_ERR_INIT;
	int L = run->layers, E = run->experts, ranks, slots, P, rc;
	int layer = o->layer < 0 ? 0 : o->layer;
	const struct analyze_algo *algo = o->algo;
	const char *pname = "static placement";
	const double *h;

	if (analyze_layout_resolve(run, o->ranks, o->slots, o->redundant, &ranks, &slots, &err))
		return fail(&err);
	P = ranks * slots;
	/* only the chosen layer's heat: one bin over the range reads that
	 * layer's blobs alone */
	j->heat = xcalloc((size_t)E, sizeof(double));
	{
		int one = 1;
		double x0, x1;
		if (render_load_timeline(s, run, layer, o->from, o->to, o->phase_mask, &one, j->heat,
					 &x0, &x1, &j->nsteps, &err))
			return fail(&err);
	}
	if (j->nsteps == 0)
		return -1;
	h = j->heat;
	j->p2l = xmallocarray((size_t)L * (size_t)P, sizeof(int32_t));
	rc = o->force_static ? UTIL_ENOTFOUND
			     : store_deployed_at(s, run, o->to, ranks, slots, j->p2l, NULL);
	if (rc == 0) {
		pname = "deployed placement";
	} else if (rc == UTIL_ENOTFOUND || rc == UTIL_ERANGE) {
		analyze_static_phy2log(E, ranks, slots, j->p2l + (size_t)layer * P);
	} else {
		util_cli_error("render", "%s", store_errmsg(s));
		return 1;
	}
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
			return fail(&err);
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
			in.heat = h;
			in.current = j->p2l + (size_t)layer * P; /* same ranks keep their experts */
			in.max_moves = -1;
			in.seed = 1;
			if (analyze_place(algo, &in, j->after, &err))
				return fail(&err);
			snprintf(j->names[1], sizeof(j->names[1]),
				 "%s placement fitted on these steps", algo->name);
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
	snprintf(j->title, sizeof(j->title), "Layer %d device load, %d ranks x %d slots, run '%s', %s",
		 layer, ranks, slots, run->name, j->range);
	return -1;
}

/* The replays' stored series against their start placement. */
static int load_replays(struct store *s, const struct opts *o, struct job *j, size_t *n)
{
	for (int k = 0; k < o->nreplay; k++) {
		size_t m = 0, ne = 0, ke = 0;
		if (store_replay_series(s, o->replay_id[k], o->layer, &j->rsteps[k], &j->rimb[k],
					&j->rbase[k], &m) ||
		    store_replay_events(s, o->replay_id[k], &j->ev[k], &ne)) {
			util_cli_error("render", "%s", store_errmsg(s));
			return 1;
		}
		if (k == 0) {
			*n = m;
			j->xs = xmallocarray(m ? m : 1, sizeof(double));
			for (size_t i = 0; i < m; i++)
				j->xs[i] = (double)j->rsteps[0][i];
		}
		if (m != *n) {
			util_cli_error("render", "replays %lld and %lld cover different steps: draw "
						 "them one at a time",
				       (long long)o->replay_id[0], (long long)o->replay_id[k]);
			return 2;
		}
		j->evx[k] = xmallocarray(ne ? ne : 1, sizeof(double));
		for (size_t i = 0; i < ne; i++)
			if (j->ev[k][i].effective_step >= 0)
				j->evx[k][ke++] = (double)j->ev[k][i].effective_step;
		struct store_replay r = j->rp[k]; /* a copy: snprintf into j may not read j */
		snprintf(j->rnames[k], sizeof(j->rnames[k]),
			 "replay %lld: %s, every %lld steps, window %lld, delay %lld",
			 (long long)o->replay_id[k], r.algo, (long long)r.interval,
			 (long long)r.window, (long long)r.delay);
		j->series[k + 1] = (struct render_series){ j->rnames[k], m, j->xs, j->rimb[k], ke,
							   j->evx[k] };
	}
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
static int load_placements(struct store *s, const struct store_run *run, const struct opts *o,
			   int ranks, int slots, struct job *j, size_t *n)
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
		return fail(&err);
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
		return fail(&err);
	if (render_load_imbalance(s, run, o->layer, o->from, o->to, o->phase_mask, ranks, slots,
				  j->fixed1, &j->xs2, &j->ys2, &n2, &err))
		return fail(&err);
	if (n2 != *n) {
		util_cli_error("render", "the trace changed while it was read");
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

static int prepare_imbalance(struct store *s, const struct store_run *run, const struct opts *o,
			     struct job *j)
{
	struct util_err err = UTIL_ERR_INIT;
	int ranks, slots, st;
	size_t n = 0;

	if (o->nreplay) {
		ranks = j->rp[0].ranks;
		slots = j->rp[0].slots;
		st = load_replays(s, o, j, &n);
	} else {
		if (analyze_layout_resolve(run, o->ranks, o->slots, o->redundant, &ranks, &slots,
					   &err))
			return fail(&err);
		st = load_placements(s, run, o, ranks, slots, j, &n);
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
	range_text(j->range, sizeof(j->range), (int64_t)j->xs[0], (int64_t)j->xs[n - 1],
		   j->nsteps);
	if (o->layer >= 0)
		snprintf(j->title, sizeof(j->title),
			 "Layer %d imbalance, %d ranks x %d slots, run '%s', %s", o->layer, ranks,
			 slots, run->name, j->range);
	else
		snprintf(j->title, sizeof(j->title),
			 "Imbalance of all layers (sum of max / sum of mean), %d x %d, run '%s', %s",
			 ranks, slots, run->name, j->range);
	return -1;
}

static int prepare_transfer(struct store *s, const struct store_run *run, const struct opts *o,
			    struct job *j)
{
	int L = run->layers;
	size_t ne = 0;
	double total = 0;

	if (store_replay_events(s, o->replay_id[0], &j->ev[0], &ne) ||
	    store_replay_event_moves(s, o->replay_id[0], L, ne, &j->tbytes)) {
		util_cli_error("render", "%s", store_errmsg(s));
		return 1;
	}
	if (ne == 0) {
		util_cli_error("render", "replay %lld made no rebalance: nothing to draw",
			       (long long)o->replay_id[0]);
		return 2;
	}
	j->nsteps = (int64_t)ne;
	j->tb = xmallocarray(ne * (size_t)L, sizeof(double));
	j->tstep = xmallocarray(ne, sizeof(double));
	for (size_t i = 0; i < ne * (size_t)L; i++)
		total += j->tb[i] = (double)j->tbytes[i];
	for (size_t i = 0; i < ne; i++)
		j->tstep[i] = (double)j->ev[0][i].step;
	j->transfer = (struct render_transfer){ (int)ne, L, j->tstep, j->tb };
	j->tcfg = render_transfer_cfg_defaults();
	j->tcfg.stacked = !o->summed;
	if (total == 0) {
		/* no expert size known for the run (no model preset): copies */
		for (size_t i = 0; i < ne; i++)
			j->tb[i] = (double)j->ev[0][i].moves;
		j->transfer.layers = 1;
		j->tcfg.stacked = 0;
		j->tcfg.unit = "expert copies";
	}
	j->tcfg.x_label = "rebalance event (labelled by the step it was decided at)";
	struct store_replay r = j->rp[0];
	snprintf(j->title, sizeof(j->title), "%s per rebalance, replay %lld (%s, %d x %d), run '%s'",
		 total == 0 ? "Expert copies (bytes unknown: no model preset)"
			    : "Expert weights moved",
		 (long long)o->replay_id[0], r.algo, r.ranks, r.slots, run->name);
	return -1;
}

int cmd_render(int argc, char **argv)
{
	static int (*const prepare[])(struct store *, const struct store_run *,
				      const struct opts *, struct job *) = {
		[K_HEATMAP] = prepare_heatmap,     [K_TIMELINE] = prepare_timeline,
		[K_DEVICES] = prepare_devices,     [K_IMBALANCE] = prepare_imbalance,
		[K_TRANSFER] = prepare_transfer,
	};
	struct opts o = { 0 };
	struct job *j = xcalloc(1, sizeof(*j));
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run run;
	int status;

	o.layer = -1;
	o.width = RENDER_WIDTH;
	o.height = RENDER_HEIGHT;
	o.scale = 1;
	o.from = INT64_MIN;
	o.to = INT64_MAX;
	if ((status = parse_opts(argc, argv, &o)) >= 0 || (status = check_opts(&o)) >= 0) {
		free(j);
		return status;
	}
	j->kind = o.kind;
	if (store_open_run(o.db, o.runname, STORE_READONLY, &s, &run, &err)) {
		free(j);
		return fail(&err);
	}
	if ((status = open_replays(s, &o, &run, j)) >= 0)
		goto out;
	if (o.layer >= run.layers) {
		util_cli_error("render", "layer %d out of range: run '%s' has layers 0-%d", o.layer,
			       run.name, run.layers - 1);
		status = 2;
		goto out;
	}
	if ((status = prepare[o.kind](s, &run, &o, j)) >= 0)
		goto out;
	if (j->nsteps == 0) {
		util_cli_error("render", "no steps of run '%s' in the chosen range", run.name);
		status = 2;
		goto out;
	}
	if (o.title)
		snprintf(j->title, sizeof(j->title), "%s", o.title);
	j->hcfg.title = j->dcfg.title = j->icfg.title = j->tcfg.title = j->title;
	if (render_write(o.out, o.width, o.height, o.scale, 1, draw, j, &err)) {
		status = fail(&err);
		goto out;
	}
	printf("wrote %s\n", o.out);
	status = 0;
out:
	job_release(j);
	free(j);
	store_free(s);
	render_release_static();
	return status;
}

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

/* Everything one chart needs, filled before render_write() runs. */
struct job {
	enum kind kind;
	struct render_heatmap_cfg hcfg;
	struct render_grid grid;
	struct render_devices_cfg dcfg;
	struct render_bars bars;
	struct render_imbalance_cfg icfg;
	struct render_series series[8];
	int nseries;
	struct render_transfer_cfg tcfg;
	struct render_transfer transfer;
};

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

int cmd_render(int argc, char **argv)
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
	struct store *s = NULL;
	struct store_run run;
	struct job job;
	const char *runname = NULL, *out = NULL, *title = NULL, *placement_file = NULL;
	int64_t replay_id[MAX_REPLAYS];
	int nreplay = 0, summed = 0;
	struct store_replay rp[MAX_REPLAYS];
	struct store_replay_event *ev[MAX_REPLAYS] = { 0 };
	int64_t *rsteps[MAX_REPLAYS] = { 0 }, *tbytes = NULL;
	double *rimb[MAX_REPLAYS] = { 0 }, *rbase[MAX_REPLAYS] = { 0 }, *evx[MAX_REPLAYS] = { 0 };
	double *tb = NULL, *tstep = NULL;
	char rnames[MAX_REPLAYS][160];
	int layer = -1, sort_heat = 0, log_scale = 0, force_static = 0, c, status = 1;
	int ranks = 0, slots = 0, redundant = 0, kind = -1;
	int width = RENDER_WIDTH, height = RENDER_HEIGHT;
	double scale = 1;
	int64_t from = INT64_MIN, to = INT64_MAX, nsteps = 0;
	unsigned phase_mask = 0;
	char ttl[512], rng[128], names[2][160];
	const char *bar_names[2];
	const double *bar_vals[2];
	double *heat = NULL, *grid = NULL, *xs = NULL, *ys = NULL, *loads = NULL;
	int *ids = NULL;
	int32_t *p2l = NULL, *after = NULL, *fixed0 = NULL, *fixed1 = NULL;
	double *xs2 = NULL, *ys2 = NULL;
	double *loads2 = NULL;
	const struct analyze_algo *algo = NULL;

	memset(&job, 0, sizeof(job));
	while ((c = getopt_long(argc, argv, "r:l:s:p:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': runname = optarg; break;
		case 'l':
			if (util_parse_int(optarg, 0, STORE_MAX_LAYERS - 1, &layer, "--layer", &err))
				return util_cli_fail("render", &err);
			break;
		case 's':
			if (util_parse_range(optarg, &from, &to, "--steps", &err))
				return util_cli_fail("render", &err);
			if (from > to) {
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
			phase_mask = 1u << ph;
			break;
		}
		case 'O':
			if (!strcmp(optarg, "heat")) {
				sort_heat = 1;
			} else if (!strcmp(optarg, "id")) {
				sort_heat = 0;
			} else {
				util_cli_error("render", "--sort: '%s' is not heat or id", optarg);
				return 2;
			}
			break;
		case 'g': log_scale = 1; break;
		case 'x': force_static = 1; break;
		case 'y':
			if (nreplay == MAX_REPLAYS) {
				util_cli_error("render", "at most %d --replay options", MAX_REPLAYS);
				return 2;
			}
			if (util_parse_i64(optarg, 1, INT64_MAX, &replay_id[nreplay], "--replay", &err))
				return util_cli_fail("render", &err);
			nreplay++;
			break;
		case 'u': summed = 1; break;
		case 'P': placement_file = optarg; break;
		case 'a':
			if (!(algo = analyze_algo_find(optarg))) {
				util_cli_error("render", "unknown algorithm '%s' (moetrace place --list)",
					       optarg);
				return 2;
			}
			break;
		case 'R':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &ranks, "--ranks", &err))
				return util_cli_fail("render", &err);
			break;
		case 'S':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &slots, "--slots", &err))
				return util_cli_fail("render", &err);
			break;
		case 'N':
			if (util_parse_int(optarg, 0, STORE_MAX_SLOTS, &redundant, "--redundant", &err))
				return util_cli_fail("render", &err);
			break;
		case 'W':
			if (util_parse_int(optarg, 200, 8000, &width, "--width", &err))
				return util_cli_fail("render", &err);
			break;
		case 'H':
			if (util_parse_int(optarg, 150, 8000, &height, "--height", &err))
				return util_cli_fail("render", &err);
			break;
		case 'X':
			if (util_parse_double(optarg, 0.25, 4, &scale, "--scale", &err))
				return util_cli_fail("render", &err);
			break;
		case 't': title = optarg; break;
		case 'o': out = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc - 2) {
		fputs(usage, stderr);
		return 2;
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(kind_names); i++)
		if (!strcmp(argv[optind + 1], kind_names[i]))
			kind = (int)i;
	if (kind < 0) {
		util_cli_error("render", "unknown chart kind '%s' (heatmap, timeline, devices, "
					 "imbalance or transfer)",
			       argv[optind + 1]);
		return 2;
	}
	job.kind = (enum kind)kind;
	if (!out) {
		util_cli_error("render", "no output file: give -o OUT.png, .svg or .pdf");
		return 2;
	}
	if (!render_format_known(out)) {
		util_cli_error("render", "cannot tell the format of '%s': use .png, .svg or .pdf",
			       out);
		return 2;
	}
	if ((placement_file || algo) && job.kind != K_DEVICES && job.kind != K_IMBALANCE) {
		util_cli_error("render", "--algo and --placement apply to the devices and imbalance "
					 "charts");
		return 2;
	}
	if ((placement_file || algo) && nreplay) {
		util_cli_error("render", "--algo and --placement do not combine with --replay");
		return 2;
	}
	if (placement_file && algo) {
		util_cli_error("render", "give --algo or --placement, not both");
		return 2;
	}
	if (layer >= 0 && job.kind == K_HEATMAP) {
		util_cli_error("render", "heatmap shows every layer: --layer applies to timeline, "
					 "devices and imbalance");
		return 2;
	}
	if (store_open_run(argv[optind], runname, STORE_READONLY, &s, &run, &err))
		return util_cli_fail("render", &err);
	if (nreplay && job.kind != K_IMBALANCE && job.kind != K_TRANSFER) {
		util_cli_error("render", "--replay applies to imbalance and transfer charts");
		status = 2;
		goto out;
	}
	if (job.kind == K_TRANSFER && nreplay != 1) {
		util_cli_error("render", "transfer draws the rebalance events of one replay: "
					 "give --replay ID (moetrace replays lists them)");
		status = 2;
		goto out;
	}
	for (int k = 0; k < nreplay; k++) {
		int rc = store_replay_get(s, replay_id[k], &rp[k]);
		if (rc) {
			util_cli_error("render", "%s", store_errmsg(s));
			status = rc == UTIL_ENOTFOUND || rc == UTIL_EDB ? 2 : 1;
			goto out;
		}
		if (rp[k].run != run.id) {
			/* without --run the replay's own run is meant */
			char idbuf[32];
			if (runname || k > 0) {
				util_cli_error("render", "replay %lld is of another run than '%s'",
					       (long long)replay_id[k], run.name);
				status = 2;
				goto out;
			}
			snprintf(idbuf, sizeof(idbuf), "%lld", (long long)rp[k].run);
			if (store_run_get(s, idbuf, &run)) {
				util_cli_error("render", "%s", store_errmsg(s));
				goto out;
			}
		}
	}
	if (layer >= run.layers) {
		util_cli_error("render", "layer %d out of range: run '%s' has layers 0-%d", layer,
			       run.name, run.layers - 1);
		status = 2;
		goto out;
	}

	switch (job.kind) {
	case K_HEATMAP: {
		int L = run.layers, E = run.experts;
		heat = xmallocarray((size_t)L * (size_t)E, sizeof(double));
		if (render_load_heat(s, &run, from, to, phase_mask, heat, &nsteps, &err)) {
			status = util_cli_fail("render", &err);
			goto out;
		}
		if (nsteps == 0)
			break;
		step_range(s, &run, from, to, phase_mask, nsteps, rng, sizeof(rng));
		job.hcfg = render_heatmap_cfg_defaults();
		job.hcfg.log_scale = log_scale;
		job.hcfg.y_label = "MoE layer";
		job.hcfg.x_label = "expert";
		job.hcfg.unit = "tokens per step (mean over the steps)";
		if (sort_heat) {
			double *tot = xcalloc((size_t)E, sizeof(double));
			double *sorted = xmallocarray((size_t)L * (size_t)E, sizeof(double));
			ids = xmallocarray((size_t)E, sizeof(int));
			for (int l = 0; l < L; l++)
				for (int e = 0; e < E; e++)
					tot[e] += heat[(size_t)l * E + e];
			for (int e = 0; e < E; e++)
				ids[e] = e;
			qsort_r(ids, (size_t)E, sizeof(int), by_heat, tot);
			for (int l = 0; l < L; l++)
				for (int i = 0; i < E; i++)
					sorted[(size_t)l * E + i] = heat[(size_t)l * E + ids[i]];
			memcpy(heat, sorted, (size_t)L * (size_t)E * sizeof(double));
			free(sorted);
			free(tot);
			job.grid.col_ids = ids;
			job.hcfg.x_label = "expert id, hottest first over all layers";
		}
		snprintf(ttl, sizeof(ttl), "Expert heat of run '%s', %s", run.name, rng);
		job.grid.rows = L;
		job.grid.cols = E;
		job.grid.v = heat;
		job.grid.x0 = -0.5;
		job.grid.x1 = E - 0.5;
		job.grid.y0 = -0.5;
		job.grid.y1 = L - 0.5;
		break;
	}
	case K_TIMELINE: {
		int E = run.experts, bins = (int)ceil(width * scale);
		double x0 = 0, x1 = 0;
		if (layer < 0)
			layer = 0;
		grid = xmallocarray((size_t)E * (size_t)bins, sizeof(double));
		if (render_load_timeline(s, &run, layer, from, to, phase_mask, &bins, grid, &x0, &x1,
					 &nsteps, &err)) {
			status = util_cli_fail("render", &err);
			goto out;
		}
		if (nsteps == 0)
			break;
		range_text(rng, sizeof(rng), (int64_t)x0, (int64_t)x1 - 1, nsteps);
		snprintf(ttl, sizeof(ttl), "Layer %d heat over time, run '%s', %s", layer,
			 run.name, rng);
		job.hcfg = render_heatmap_cfg_defaults();
		job.hcfg.log_scale = log_scale;
		job.hcfg.x_label = "step";
		job.hcfg.y_label = "expert";
		job.hcfg.unit = (x1 - x0) > bins ? "tokens per step (mean over each column's steps)"
						 : "tokens per step";
		job.grid.rows = E;
		job.grid.cols = bins;
		job.grid.v = grid;
		job.grid.x0 = x0 - ((x1 - x0) <= bins ? 0.5 : 0);
		job.grid.x1 = x1 - ((x1 - x0) <= bins ? 0.5 : 0);
		job.grid.y0 = -0.5;
		job.grid.y1 = E - 0.5;
		break;
	}
	case K_DEVICES: {
		int L = run.layers, E = run.experts, P;
		int64_t eff = 0;
		const char *pname = "static placement";
		if (analyze_layout_resolve(&run, ranks, slots, redundant, &ranks, &slots, &err)) {
			status = util_cli_fail("render", &err);
			goto out;
		}
		if (layer < 0)
			layer = 0;
		P = ranks * slots;
		/* only the chosen layer's heat: one bin over the range reads that
		 * layer's blobs alone */
		heat = xcalloc((size_t)L * (size_t)E, sizeof(double));
		{
			int one = 1;
			double x0, x1;
			if (render_load_timeline(s, &run, layer, from, to, phase_mask, &one,
						 heat + (size_t)layer * E, &x0, &x1, &nsteps, &err)) {
				status = util_cli_fail("render", &err);
				goto out;
			}
		}
		if (nsteps == 0)
			break;
		p2l = xmallocarray((size_t)L * (size_t)P, sizeof(int32_t));
		int rc = force_static ? UTIL_ENOTFOUND
				      : store_deployed_at(s, &run, to, ranks, slots, p2l, &eff);
		if (rc == 0) {
			pname = "deployed placement";
		} else if (rc == UTIL_ENOTFOUND || rc == UTIL_ERANGE) {
			analyze_static_phy2log(E, ranks, slots, p2l + (size_t)layer * P);
		} else {
			util_cli_error("render", "%s", store_errmsg(s));
			goto out;
		}
		loads = xmallocarray((size_t)ranks, sizeof(double));
		analyze_device_load(heat + (size_t)layer * E, E, p2l + (size_t)layer * P, ranks,
				    slots, NULL, loads);
		snprintf(names[0], sizeof(names[0]), "%s", pname);
		bar_names[0] = names[0];
		bar_vals[0] = loads;
		job.bars.names = bar_names;
		job.bars.values = bar_vals;
		job.bars.series = 1;
		if (placement_file) {
			/* a placement file an engine loads (moetrace place -o FILE) */
			const struct store_model *m = run.model[0] ? store_model_find(run.model) : NULL;
			struct analyze_shape sh = { L, E, ranks, slots, run.first_layer,
						    m ? m->layer_step : 1 };
			int32_t *all = xmallocarray((size_t)L * P, sizeof(int32_t));
			if (analyze_format_read(placement_file, &sh, all, NULL, &err)) {
				free(all);
				status = util_cli_fail("render", &err);
				goto out;
			}
			after = xmallocarray((size_t)P, sizeof(int32_t));
			memcpy(after, all + (size_t)layer * P, (size_t)P * sizeof(int32_t));
			free(all);
			loads2 = xmallocarray((size_t)ranks, sizeof(double));
			analyze_device_load(heat + (size_t)layer * E, E, after, ranks, slots, NULL,
					    loads2);
			const char *base = strrchr(placement_file, '/');
			snprintf(names[1], sizeof(names[1]), "placement from %s",
				 base ? base + 1 : placement_file);
			bar_names[1] = names[1];
			bar_vals[1] = loads2;
			job.bars.series = 2;
		}
		if (!algo && !placement_file)
			algo = analyze_algo_find(ANALYZE_FLAGSHIP);
		if (algo && !placement_file) {
			const struct store_model *m = run.model[0] ? store_model_find(run.model) : NULL;
			struct analyze_place_in in = { 0 };
			in.experts = E;
			in.ranks = ranks;
			in.slots = slots;
			in.nodes = run.ranks_per_node > 0 ? ranks / run.ranks_per_node : 0;
			in.groups = m ? m->groups : 0;
			in.heat = heat + (size_t)layer * E;
			in.current = p2l + (size_t)layer * P;
			in.max_moves = -1;
			in.seed = 1;
			after = xmallocarray((size_t)P, sizeof(int32_t));
			if (analyze_place(algo, &in, after, &err)) {
				status = util_cli_fail("render", &err);
				goto out;
			}
			loads2 = xmallocarray((size_t)ranks, sizeof(double));
			analyze_device_load(heat + (size_t)layer * E, E, after, ranks, slots, NULL,
					    loads2);
			snprintf(names[1], sizeof(names[1]), "%s placement fitted on these steps",
				 algo->name);
			bar_names[1] = names[1];
			bar_vals[1] = loads2;
			job.bars.series = 2;
		}
		job.bars.groups = ranks;
		job.dcfg = render_devices_cfg_defaults();
		job.dcfg.x_label = "EP rank";
		job.dcfg.y_label = "device load (tokens per step; replicas split evenly)";
		step_range(s, &run, from, to, phase_mask, nsteps, rng, sizeof(rng));
		snprintf(ttl, sizeof(ttl), "Layer %d device load, %d ranks x %d slots, run '%s', %s",
			 layer, ranks, slots, run.name, rng);
		break;
	}
	case K_IMBALANCE: {
		size_t n = 0;
		if (nreplay) {
			ranks = rp[0].ranks;
			slots = rp[0].slots;
			for (int k = 0; k < nreplay; k++) {
				size_t m = 0, ne = 0, ke = 0;
				if (store_replay_series(s, replay_id[k], layer, &rsteps[k], &rimb[k],
							&rbase[k], &m) ||
				    store_replay_events(s, replay_id[k], &ev[k], &ne)) {
					util_cli_error("render", "%s", store_errmsg(s));
					goto out;
				}
				if (k == 0) {
					n = m;
					xs = xmallocarray(m ? m : 1, sizeof(double));
					for (size_t i = 0; i < m; i++)
						xs[i] = (double)rsteps[0][i];
				}
				if (m != n) {
					util_cli_error("render", "replays %lld and %lld cover different "
								 "steps: draw them one at a time",
						       (long long)replay_id[0], (long long)replay_id[k]);
					status = 2;
					goto out;
				}
				evx[k] = xmallocarray(ne ? ne : 1, sizeof(double));
				for (size_t i = 0; i < ne; i++)
					if (ev[k][i].effective_step >= 0)
						evx[k][ke++] = (double)ev[k][i].effective_step;
				snprintf(rnames[k], sizeof(rnames[k]),
					 "replay %lld: %s, every %lld steps, window %lld, delay %lld",
					 (long long)replay_id[k], rp[k].algo, (long long)rp[k].interval,
					 (long long)rp[k].window, (long long)rp[k].delay);
				job.series[k + 1].name = rnames[k];
				job.series[k + 1].n = m;
				job.series[k + 1].x = xs;
				job.series[k + 1].y = rimb[k];
				job.series[k + 1].events = evx[k];
				job.series[k + 1].n_events = ke;
			}
			snprintf(names[0], sizeof(names[0]), "baseline (the replay's start placement)");
			job.series[0].y = rbase[0];
			job.nseries = nreplay + 1;
			{
				/* --steps picks a part of the replayed steps */
				size_t i0 = 0, i1 = n;
				while (i0 < n && xs[i0] < (double)from)
					i0++;
				while (i1 > i0 && xs[i1 - 1] > (double)to)
					i1--;
				for (int k = 0; k <= nreplay; k++) {
					job.series[k].y += i0;
					job.series[k].n = i1 - i0;
				}
				memmove(xs, xs + i0, (i1 - i0) * sizeof(double));
				n = i1 - i0;
			}
		} else {
			if (analyze_layout_resolve(&run, ranks, slots, redundant, &ranks, &slots,
						   &err)) {
				status = util_cli_fail("render", &err);
				goto out;
			}
			int L = run.layers, E = run.experts, P = ranks * slots;
			if (force_static) {
				fixed0 = xmallocarray((size_t)L * P, sizeof(int32_t));
				for (int l = 0; l < L; l++)
					analyze_static_phy2log(E, ranks, slots, fixed0 + (size_t)l * P);
			}
			if (render_load_imbalance(s, &run, layer, from, to, phase_mask, ranks, slots,
						  fixed0, &xs, &ys, &n, &err)) {
				status = util_cli_fail("render", &err);
				goto out;
			}
			snprintf(names[0], sizeof(names[0]), "baseline (%s placement)",
				 force_static ? "static" : "recorded");
			job.series[0].y = ys;
			job.nseries = 1;
			if (n && (placement_file || algo)) {
				size_t n2 = 0;
				fixed1 = xmallocarray((size_t)L * P, sizeof(int32_t));
				if (placement_file) {
					const struct store_model *m =
						run.model[0] ? store_model_find(run.model) : NULL;
					struct analyze_shape sh = { L, E, ranks, slots, run.first_layer,
								    m ? m->layer_step : 1 };
					if (analyze_format_read(placement_file, &sh, fixed1, NULL, &err)) {
						status = util_cli_fail("render", &err);
						goto out;
					}
				} else if (fit_placement(s, &run, layer, from, to, phase_mask, algo,
							 ranks, slots, fixed1, &err)) {
					status = util_cli_fail("render", &err);
					goto out;
				}
				if (render_load_imbalance(s, &run, layer, from, to, phase_mask, ranks,
							  slots, fixed1, &xs2, &ys2, &n2, &err)) {
					status = util_cli_fail("render", &err);
					goto out;
				}
				if (n2 != n) {
					util_cli_error("render", "the trace changed while it was read");
					goto out;
				}
				if (placement_file) {
					const char *base = strrchr(placement_file, '/');
					snprintf(names[1], sizeof(names[1]), "placement from %s",
						 base ? base + 1 : placement_file);
				} else {
					snprintf(names[1], sizeof(names[1]),
						 "%s fitted on these steps (in hindsight)", algo->name);
				}
				job.series[1] = (struct render_series){ names[1], n, xs, ys2, 0, NULL };
				job.nseries = 2;
			}
		}
		nsteps = (int64_t)n;
		if (n == 0)
			break;
		job.series[0].name = names[0];
		job.series[0].n = n;
		job.series[0].x = xs;
		job.icfg = render_imbalance_cfg_defaults();
		job.icfg.x_label = "step";
		job.icfg.y_label = "imbalance (max / mean device load)";
		range_text(rng, sizeof(rng), (int64_t)xs[0], (int64_t)xs[n - 1], nsteps);
		if (layer >= 0)
			snprintf(ttl, sizeof(ttl), "Layer %d imbalance, %d ranks x %d slots, run '%s', %s",
				 layer, ranks, slots, run.name, rng);
		else
			snprintf(ttl, sizeof(ttl),
				 "Imbalance of all layers (sum of max / sum of mean), %d x %d, "
				 "run '%s', %s",
				 ranks, slots, run.name, rng);
		break;
	}
	case K_TRANSFER: {
		size_t ne = 0;
		int L = run.layers;
		if (store_replay_events(s, replay_id[0], &ev[0], &ne) ||
		    store_replay_event_moves(s, replay_id[0], L, ne, &tbytes)) {
			util_cli_error("render", "%s", store_errmsg(s));
			goto out;
		}
		if (ne == 0) {
			util_cli_error("render", "replay %lld made no rebalance: nothing to draw",
				       (long long)replay_id[0]);
			status = 2;
			goto out;
		}
		nsteps = (int64_t)ne;
		tb = xmallocarray(ne * (size_t)L, sizeof(double));
		tstep = xmallocarray(ne, sizeof(double));
		double total = 0;
		for (size_t i = 0; i < ne * (size_t)L; i++)
			total += tb[i] = (double)tbytes[i];
		for (size_t i = 0; i < ne; i++)
			tstep[i] = (double)ev[0][i].step;
		job.transfer.events = (int)ne;
		job.transfer.layers = L;
		job.transfer.step = tstep;
		job.transfer.bytes = tb;
		job.tcfg = render_transfer_cfg_defaults();
		job.tcfg.stacked = !summed;
		if (total == 0) {
			/* no expert size known for the run (no model preset): copies */
			for (size_t i = 0; i < ne; i++)
				tb[i] = (double)ev[0][i].moves;
			job.transfer.layers = 1;
			job.tcfg.stacked = 0;
			job.tcfg.unit = "expert copies";
		}
		job.tcfg.x_label = "rebalance event (labelled by the step it was decided at)";
		snprintf(ttl, sizeof(ttl), "%s per rebalance, replay %lld (%s, %d x %d), run '%s'",
			 total == 0 ? "Expert copies (bytes unknown: no model preset)"
				    : "Expert weights moved",
			 (long long)replay_id[0], rp[0].algo, rp[0].ranks, rp[0].slots, run.name);
		break;
	}
	}
	if (nsteps == 0) {
		util_cli_error("render", "no steps of run '%s' in the chosen range", run.name);
		status = 2;
		goto out;
	}
	if (title)
		snprintf(ttl, sizeof(ttl), "%s", title);
	job.hcfg.title = job.dcfg.title = job.icfg.title = job.tcfg.title = ttl;
	if (render_write(out, width, height, scale, 1, draw, &job, &err)) {
		status = util_cli_fail("render", &err);
		goto out;
	}
	printf("wrote %s\n", out);
	status = 0;
out:
	free(heat);
	free(grid);
	free(xs);
	free(ys);
	free(loads);
	free(ids);
	free(p2l);
	free(after);
	free(loads2);
	free(fixed0);
	free(fixed1);
	free(xs2);
	free(ys2);
	for (int k = 0; k < MAX_REPLAYS; k++) {
		free(ev[k]);
		free(rsteps[k]);
		free(rimb[k]);
		free(rbase[k]);
		free(evx[k]);
	}
	free(tbytes);
	free(tb);
	free(tstep);
	store_free(s);
	render_release_static();
	return status;
}

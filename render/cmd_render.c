/*
 * cmd_render.c: `moetrace render DB KIND -o OUT` — one chart of a run as
 * PNG, SVG or PDF (by OUT's extension).  The options become a chart job
 * (render/job.c) that reads the trace, then render_write() draws it; every
 * argument is checked before anything is written.
 */
#include "render/render_int.h"

#include "analyze/analyze.h"
#include "cmds.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: moetrace render [--run NAME] [--layer L|hot] [--steps A:B] [--phase prefill|decode]\n"
	"                       [--sort heat|id] [--linear] [--static] [--algo NAME | --placement FILE]\n"
	"                       [--replay ID]... [--summed | --by-layer] [--fit A:B]\n"
	"                       [--ranks R] [--slots S | --redundant N]\n"
	"                       [--width W] [--height H] [--scale X] [--title TEXT]\n"
	"                       -o OUT.png|.svg|.pdf DB KIND\n"
	"kinds: heatmap timeline devices imbalance transfer\n"
	"heatmap and timeline colour on a log scale unless --linear; --sort heat orders\n"
	"each layer's experts by their own heat (ids differ from row to row).\n"
	"timeline --layer hot draws the layer holding the hottest expert of the steps.\n"
	"imbalance without --replay, --algo or --placement replays the flagship in memory.\n"
	"devices --fit A:B fits the algorithm on steps A..B and draws the loads of --steps,\n"
	"steps it was not fitted on; without it the placement is fitted on --steps (in\n"
	"hindsight).\n";

static int fail(struct util_err *err)
{
	return util_cli_fail("render", err);
}

/* Parses argv into o; returns -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct render_job_opts *o, const char **db,
		      const char **out)
{
	static const struct option opts[] = {
		{ "run", required_argument, NULL, 'r' },
		{ "layer", required_argument, NULL, 'l' },
		{ "steps", required_argument, NULL, 's' },
		{ "phase", required_argument, NULL, 'p' },
		{ "sort", required_argument, NULL, 'O' },
		{ "log", no_argument, NULL, 'g' },
		{ "linear", no_argument, NULL, 'i' },
		{ "static", no_argument, NULL, 'x' },
		{ "replay", required_argument, NULL, 'y' },
		{ "summed", no_argument, NULL, 'u' },
		{ "by-layer", no_argument, NULL, 'B' },
		{ "fit", required_argument, NULL, 'F' },
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
			if (!strcmp(optarg, "hot"))
				o->layer = RENDER_LAYER_HOT;
			else if (util_parse_int(optarg, 0, STORE_MAX_LAYERS - 1, &o->layer, "--layer",
						&err))
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
		case 'p':
			if (analyze_opt_phase(optarg, &o->phase_mask, &err))
				return util_cli_fail("render", &err);
			break;
		case 'O':
			if (!strcmp(optarg, "heat") || !strcmp(optarg, "id")) {
				o->sort_heat = !strcmp(optarg, "heat");
			} else {
				util_cli_error("render", "--sort: '%s' is not heat or id", optarg);
				return 2;
			}
			break;
		case 'g': o->log_scale = 1; break; /* the default; kept for scripts */
		case 'i': o->log_scale = 0; break;
		case 'F':
			if (util_parse_range(optarg, &o->fit_from, &o->fit_to, "--fit", &err))
				return fail(&err);
			if (o->fit_from > o->fit_to) {
				util_cli_error("render", "--fit: empty range '%s'", optarg);
				return 2;
			}
			break;
		case 'x': o->force_static = 1; break;
		case 'y':
			if (o->nreplay == RENDER_MAX_REPLAYS) {
				util_cli_error("render", "at most %d --replay options", RENDER_MAX_REPLAYS);
				return 2;
			}
			if (util_parse_i64(optarg, 1, INT64_MAX, &o->replay_id[o->nreplay], "--replay",
					   &err))
				return fail(&err);
			o->nreplay++;
			break;
		case 'u': o->summed = 1; break;
		case 'B': o->by_layer = 1; break;
		case 'P': o->placement_file = optarg; break;
		case 'a':
			if (!(o->algo = analyze_algo_find(optarg))) {
				char hint[96];
				util_cli_error("render", "unknown algorithm '%s'%s (moetrace place --list)",
					       optarg,
					       util_did_you_mean(analyze_algo_suggest(optarg), hint,
								 sizeof(hint)));
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
			if (analyze_parse_redundant(optarg, &o->redundant, &err))
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
		case 'o': *out = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
	}
	if (optind != argc - 2) {
		fputs(usage, stderr);
		return 2;
	}
	*db = argv[optind];
	kind = render_kind_parse(argv[optind + 1]);
	if (kind < 0) {
		static const char *const kinds[] = { "heatmap", "timeline", "devices",
						     "imbalance", "transfer", NULL };
		char hint[96];
		util_cli_error("render", "unknown chart kind '%s'%s (heatmap, timeline, devices, "
					 "imbalance or transfer)",
			       argv[optind + 1],
			       util_did_you_mean(util_suggest_list(argv[optind + 1], kinds), hint,
						 sizeof(hint)));
		return 2;
	}
	o->kind = (enum render_kind)kind;
	return -1;
}

/* Checks that need no database; returns -1 or the exit status. */
static int check_opts(const struct render_job_opts *o, const char *out)
{
	const char *msg = NULL;

	if (!out)
		msg = "no output file: give -o OUT.png, .svg or .pdf";
	else if ((o->placement_file || o->algo) && o->kind != RENDER_DEVICES && o->kind != RENDER_IMBALANCE)
		msg = "--algo and --placement apply to the devices and imbalance charts";
	else if ((o->placement_file || o->algo) && o->nreplay)
		msg = "--algo and --placement do not combine with --replay";
	else if (o->placement_file && o->algo)
		msg = "give --algo or --placement, not both";
	else if (o->fit_to >= o->fit_from && (o->kind != RENDER_DEVICES || o->placement_file))
		msg = "--fit applies to the devices chart's algorithm, not a --placement file";
	else if (o->layer == RENDER_LAYER_HOT && o->kind != RENDER_TIMELINE)
		msg = "--layer hot applies to the timeline";
	else if (o->layer >= 0 && o->kind == RENDER_HEATMAP)
		msg = "heatmap shows every layer: --layer applies to timeline, devices and imbalance";
	else if (o->nreplay && o->kind != RENDER_IMBALANCE && o->kind != RENDER_TRANSFER)
		msg = "--replay applies to imbalance and transfer charts";
	else if (o->kind == RENDER_TRANSFER && o->nreplay != 1)
		msg = "transfer draws the rebalance events of one replay: give --replay ID "
		      "(moetrace replays lists them)";
	if (msg) {
		util_cli_error("render", "%s", msg);
		return 2;
	}
	if (!render_format_known(out)) {
		util_cli_error("render", "cannot tell the format of '%s': use .png, .svg or .pdf",
			       out);
		return 2;
	}
	return -1;
}

int cmd_render(int argc, char **argv)
{
	struct render_job_opts o;
	struct render_job *j = xcalloc(1, sizeof(*j));
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run run;
	const char *db = NULL, *out = NULL;
	int status;

	render_job_opts_init(&o, "render", RENDER_HEATMAP);
	if ((status = parse_opts(argc, argv, &o, &db, &out)) >= 0 ||
	    (status = check_opts(&o, out)) >= 0) {
		free(j);
		return status;
	}
	if (util_out_check(out, db, &err) ||
	    store_open_run(db, o.runname, STORE_READONLY, &s, &run, &err)) {
		free(j);
		return fail(&err);
	}
	analyze_warn_missing_counts("render", s, &run);
	if ((status = render_job_prepare(j, s, &run, &o)) >= 0)
		goto out;
	if (render_write(out, o.width, o.height, o.scale, 1, render_job_draw, j, &err)) {
		status = fail(&err);
		goto out;
	}
	printf("wrote %s\n", out);
	status = 0;
out:
	render_job_release(j);
	free(j);
	store_free(s);
	render_release_static();
	return status;
}

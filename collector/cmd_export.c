/*
 * cmd_export.c: `moetrace export DB` — a run's heat as our CSV or JSON
 * lines (collector/export.c; both re-importable), or the placement the
 * engine had deployed as a file an engine loads (analyze/format.c, the
 * writer `place -o` uses).  Computed placements are exported by
 * `moetrace place -o`.
 */
#include "cmds.h"
#include "analyze/analyze.h"
#include "collector/collector.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: moetrace export DB --format csv|jsonl -o FILE [--run R] [--steps A:B] [--sparse]\n"
	"       moetrace export DB --placement deployed --format vllm-ascend|sglang|trtllm\n"
	"                       -o FILE [--run R] [--step N]\n"
	"Heat: CSV step,layer,expert,tokens,phase (every cell; --sparse omits zeros) or JSON\n"
	"lines (with the deployed placements), both read back by 'moetrace import'.\n"
	"-o - writes standard output.\n"
	"Placement: the deployed placement in force at step N (default: the last step).\n";

static int export_placement(struct store *s, const struct store_run *run, const char *fmt_name,
			    int64_t step, const char *out)
{
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_shape sh;
	int32_t *p2l;
	char *target;
	int64_t from = 0;
	int fmt = analyze_format_parse(fmt_name), rc;

	if (fmt < 0) {
		util_cli_error("export", "--format: '%s' is not a placement format (vllm-ascend, "
			       "sglang, trtllm)", fmt_name);
		return 2;
	}
	if (!run->ranks || !run->slots) {
		util_cli_error("export", "run '%s' has no EP layout, so no deployed placement",
			       run->name);
		return 2;
	}
	sh = analyze_shape_of(run, run->ranks, run->slots);
	p2l = xmallocarray((size_t)run->layers * (size_t)run->ranks * (size_t)run->slots,
			   sizeof(*p2l));
	rc = store_deployed_at(s, run, step, run->ranks, run->slots, p2l, &from);
	if (rc == UTIL_ENOTFOUND) {
		util_cli_error("export", "run '%s' has no deployed placement in force at step %lld",
			       run->name, (long long)step);
		free(p2l);
		return 2;
	}
	if (rc) {
		util_cli_error("export", "%s", store_errmsg(s));
		free(p2l);
		return util_exit_status(rc);
	}
	/* the writer renames onto the name it is given: a link's target, so
	 * that the link stays */
	if (!(rc = util_out_target(out, &target, &err))) {
		rc = analyze_format_write(target, fmt, &sh, p2l, &err);
		free(target);
	}
	free(p2l);
	if (rc)
		return util_cli_fail("export", &err);
	printf("exported the placement deployed from step %lld of run '%s' to '%s' (%s)\n",
		(long long)from, run->name, out, analyze_format_name(fmt));
	if (analyze_format_path_note(out, fmt))
		fprintf(stderr, "note: %s\n", analyze_format_path_note(out, fmt));
	return 0;
}

int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "run", required_argument, NULL, 'r' },
		{ "steps", required_argument, NULL, 's' },
		{ "step", required_argument, NULL, 'n' },
		{ "placement", required_argument, NULL, 'p' },
		{ "sparse", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct collector_export_opts o = { COLLECTOR_EXPORT_CSV, INT64_MIN, INT64_MAX, 0 };
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run;
	struct store *s = NULL;
	const char *format = NULL, *out = NULL, *run_name = NULL, *placement = NULL;
	int64_t step = INT64_MAX, n = 0, from;
	int c, rc;

	while ((c = getopt_long(argc, argv, "f:o:r:s:n:p:Sh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': format = optarg; break;
		case 'o': out = optarg; break;
		case 'r': run_name = optarg; break;
		case 's':
			if (util_parse_range(optarg, &o.from, &o.to, "--steps", &err))
				return util_cli_fail("export", &err);
			break;
		case 'n':
			if (util_parse_i64(optarg, INT64_MIN + 1, INT64_MAX, &step, "--step", &err))
				return util_cli_fail("export", &err);
			break;
		case 'p': placement = optarg; break;
		case 'S': o.sparse = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
	}
	if (optind != argc - 1 || !out || !format) {
		fputs(usage, stderr);
		return 2;
	}
	if (placement && strcmp(placement, "deployed") != 0) {
		util_cli_error("export", "--placement: only 'deployed' is stored with a run; "
			       "'moetrace place -o' writes computed placements");
		return 2;
	}
	if (!placement) {
		if (!strcmp(format, "csv")) {
			o.format = COLLECTOR_EXPORT_CSV;
		} else if (!strcmp(format, "jsonl")) {
			o.format = COLLECTOR_EXPORT_JSONL;
		} else {
			util_cli_error("export", "--format: '%s' is not a heat format (csv, jsonl; "
				       "placements need --placement deployed)", format);
			return 2;
		}
	}
	if ((strcmp(out, "-") && util_out_check(out, argv[optind], &err)) ||
	    store_open_run(argv[optind], run_name, STORE_READONLY, &s, &run, &err))
		return util_cli_fail("export", &err);
	if (placement && !strcmp(out, "-")) {
		util_cli_error("export", "-o: a placement is written to a file (renamed into place), "
			       "not to standard output");
		store_free(s);
		return 2;
	}
	if (placement) {
		rc = export_placement(s, &run, format, step, out);
		store_free(s);
		return rc;
	}
	rc = collector_export(s, &run, &o, out, &n, &err);
	/* the CSV holds heat alone; JSON lines carry the deployed placements */
	if (!rc && o.format == COLLECTOR_EXPORT_CSV && run.ranks &&
	    store_deployed_last(s, &run, INT64_MAX, &from) == 0)
		fprintf(stderr,
			"moetrace export: note: run '%s' has a deployed placement, which a CSV does "
			"not hold: --format jsonl carries it, --placement deployed writes it for an "
			"engine\n",
			run.name);
	store_free(s);
	if (rc)
		return util_cli_fail("export", &err);
	if (strcmp(out, "-"))
		printf("exported %lld steps of run '%s' (%d layers x %d experts) to '%s'\n", (long long)n, run.name, run.layers, run.experts, out);
	return 0;
}

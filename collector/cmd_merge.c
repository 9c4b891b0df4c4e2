/*
 * cmd_merge.c: `moetrace merge OUT SHARD...` rebuilds one global trace from
 * per-rank shards (or, with --sum, from partial traces of disjoint
 * tokens).  The work is collector_merge() in merge.c.
 */
#include "cmds.h"
#include "collector/collector.h"

#include <getopt.h>
#include <stdio.h>

static const char merge_usage[] =
	"usage: moetrace merge [--run NAME] [--name NAME] [--sum] [--partial] [--common-steps]\n"
	"                      OUT SHARD...\n"
	"\n"
	"  --run NAME    run to take from each shard (default: each shard's newest)\n"
	"  --name NAME   name of the merged run (default: RUN-merged)\n"
	"  --sum         shards are partial counts of disjoint tokens (e.g. one per DP rank),\n"
	"                not rank shards: add them without rank or placement checks\n"
	"  --partial     merge even if some ranks have no shard\n"
	"  --common-steps\n"
	"                merge only the steps every shard has, leaving out the others\n"
	"                (without it a step missing from some shard is an error)\n";

int cmd_merge(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "run", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "sum", no_argument, NULL, 's' },
		{ "partial", no_argument, NULL, 'p' },
		{ "common-steps", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct collector_merge_opts mo = COLLECTOR_MERGE_OPTS_INIT;
	struct collector_merge_result res;
	struct util_err err = UTIL_ERR_INIT;
	int c;

	while ((c = getopt_long(argc, argv, "r:n:sph", opts, NULL)) != -1) {
		switch (c) {
		case 'r': mo.run = optarg; break;
		case 'n': mo.out_run = optarg; break;
		case 's': mo.sum = 1; break;
		case 'p': mo.partial = 1; break;
		case 'c': mo.common_steps = 1; break;
		case 'h': fputs(merge_usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
	}
	if (argc - optind < 2) {
		util_cli_error("merge", "need an output database and at least one shard");
		fputs(merge_usage, stderr);
		return 2;
	}
	if (collector_merge(argv[optind], (const char *const *)argv + optind + 1,
			    (size_t)(argc - optind - 1), &mo, &res, &err))
		return util_cli_fail("merge", &err);
	printf("merged %d shard(s) into run '%s' of '%s': %lld steps of %d x %d, "
	       "%lld placement(s)\n",
	       argc - optind - 1, res.run.name, argv[optind], (long long)res.steps,
	       res.run.layers, res.run.experts, (long long)res.placements);
	if (res.incomplete)
		fprintf(stderr,
			"moetrace merge: left out %lld step(s) missing from some shard "
			"(--common-steps); the first, step %lld of '%s', is not in '%s'\n",
			(long long)res.incomplete, (long long)res.first_missing, res.missing_in,
			res.missing_from);
	if (res.mixed)
		fprintf(stderr,
			"moetrace merge: %lld step(s) whose shards give different phases are "
			"stored as of unknown phase\n",
			(long long)res.mixed);
	if (res.ranks_missing)
		printf("warning: %d rank(s) had no shard; their tokens are missing\n",
		       res.ranks_missing);
	return 0;
}

/*
 * moetrace.c: the command-line front.  It looks the subcommand up in
 * `commands[]` and hands it argc/argv; each subcommand lives in the module
 * it belongs to (store/cmd_info.c, analyze/cmd_place.c, ...).
 *
 * To add a command: write `int cmd_NAME(int argc, char **argv)` in
 * MODULE/cmd_NAME.c returning an exit status (0 ok, 1 failure, 2 usage or
 * bad input), declare it in cmds.h and add one row below.
 */
#include "cmds.h"
#include "fleet/fleet.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

/* clang-format off */
static const struct command commands[] = {
	{ "gen",     cmd_gen,     "write a synthetic trace (DeepSeek-V3 and other presets) into a database" },
	{ "import",  cmd_import,  "load a trace (CSV, JSON lines, Megatron-LM, TensorRT-LLM, SGLang dumps) into a database" },
	{ "export",  cmd_export,  "write a run's heat as CSV or JSON lines, or its deployed placement" },
	{ "record",  cmd_record,  "record synthetic steps through the embedding recorder at a step rate" },
	{ "merge",   cmd_merge,   "merge per-rank shard traces into one global trace" },
	{ "info",    cmd_info,    "list runs, shapes, EP layout, steps, phases and storage" },
	{ "balance", cmd_balance, "per-layer imbalance under the deployed or static placement" },
	{ "replay",  cmd_replay,  "replay dynamic load balancing on a recorded trace (or a --grid of settings)" },
	{ "replays", cmd_replays, "list the replays stored in a database" },
	{ "models",  cmd_models,  "list the model presets and their typical EP layouts" },
	{ "compare", cmd_compare, "compare placement algorithms on a fitting and the following window" },
	{ "place",   cmd_place,   "compute a placement from recorded heat; write it for an engine" },
	{ "sql",     cmd_sql,     "run SQL on a trace with the expert_heat, device_load, ... views" },
	{ "render",  cmd_render,  "draw a chart (heatmap, timeline, devices, imbalance, transfer) as PNG/SVG/PDF" },
	{ "report",  cmd_report,  "write every chart of a run's standard analysis as PNG plus one report.pdf" },
	{ "top",     cmd_top,     "live view of per-layer balance now and after rebalancing (ncurses)" },
	{ "serve",   cmd_serve,   "serve a run's live balance as Prometheus metrics over HTTP" },
	{ "push",    cmd_push,    "ship a trace's runs to ClickHouse for fleet-wide SQL" },
};
/* clang-format on */

static void usage(FILE *f)
{
	fprintf(f, "usage: moetrace <command> [options] [args]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'moetrace <command> --help' shows a command's options; "
		   "docs/cli.md has them all.\n");
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	int status;

	/* the store opens clickhouse:// URLs through fleet/ (store_backend.h) */
	fleet_store_register();
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("moetrace %s\n", MOETRACE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		const char *names[sizeof(commands) / sizeof(commands[0])];
		const char *s;

		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			names[i] = commands[i].name;
		s = util_suggest(argv[1], names, sizeof(names) / sizeof(names[0]));
		if (s)
			fprintf(stderr, "moetrace: '%s' is not a moetrace command; did you mean '%s'?\n",
				argv[1], s);
		else
			fprintf(stderr, "moetrace: '%s' is not a moetrace command (see 'moetrace help')\n",
				argv[1]);
		return 2;
	}
	opterr = 0; /* util_opt_unknown says what was wrong, in one line */
	status = cmd->fn(argc - 1, argv + 1);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "moetrace %s: cannot write output: %s\n", cmd->name,
			strerror(errno));
		return 1;
	}
	return status;
}

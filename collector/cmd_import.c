/*
 * cmd_import.c: `moetrace import FILE --into DB --run NAME` — loads a trace
 * file as a new run, all or nothing.  If the database did not exist and
 * the import fails, the new file is removed again.
 */
#include "cmds.h"
#include "collector/collector.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
	"usage: moetrace import FILE --into DB [--run NAME] [--model PRESET]\n"
	"                       [--layers L --experts E] [--topk K]\n"
	"                       [--ranks R [--slots S] [--ranks-per-node N]] [--progress]\n"
	"FILE is a CSV with the header step,layer,expert,tokens (optional phase column);\n"
	"rows grouped by increasing step.  Without --model the shape comes from the data.\n";

static void remove_db(const char *path)
{
	char b[4096];

	unlink(path);
	snprintf(b, sizeof(b), "%s-wal", path);
	unlink(b);
	snprintf(b, sizeof(b), "%s-shm", path);
	unlink(b);
}

int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "into", required_argument, NULL, 'i' },
		{ "run", required_argument, NULL, 'r' },
		{ "model", required_argument, NULL, 'm' },
		{ "layers", required_argument, NULL, 'L' },
		{ "experts", required_argument, NULL, 'E' },
		{ "topk", required_argument, NULL, 'k' },
		{ "ranks", required_argument, NULL, 'R' },
		{ "slots", required_argument, NULL, 'S' },
		{ "ranks-per-node", required_argument, NULL, 'n' },
		{ "progress", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct collector_import_opts o = { 0 };
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run run;
	const char *into = NULL;
	char name[128];
	struct stat sb;
	int c, rc, existed;

	o.progress = isatty(2);
	while ((c = getopt_long(argc, argv, "i:r:m:L:E:k:R:S:n:Ph", opts, NULL)) != -1) {
		switch (c) {
		case 'i': into = optarg; break;
		case 'r': o.run_name = optarg; break;
		case 'm':
			o.model = store_model_find(optarg);
			if (!o.model) {
				util_cli_error("import", "--model: unknown preset '%s' (moetrace models "
					       "lists them)", optarg);
				return 2;
			}
			break;
		case 'L': rc = util_parse_int(optarg, 1, STORE_MAX_LAYERS, &o.layers, "--layers", &err); goto chk;
		case 'E': rc = util_parse_int(optarg, 1, STORE_MAX_EXPERTS, &o.experts, "--experts", &err); goto chk;
		case 'k': rc = util_parse_int(optarg, 1, STORE_MAX_EXPERTS, &o.topk, "--topk", &err); goto chk;
		case 'R': rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o.ranks, "--ranks", &err); goto chk;
		case 'S': rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o.slots, "--slots", &err); goto chk;
		case 'n': rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o.ranks_per_node, "--ranks-per-node", &err); goto chk;
		case 'P': o.progress = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
		continue;
chk:
		if (rc)
			return util_cli_fail("import", &err);
	}
	if (optind != argc - 1 || !into) {
		fputs(usage, stderr);
		return 2;
	}
	if (o.slots && !o.ranks) {
		util_cli_error("import", "--slots needs --ranks");
		return 2;
	}
	if (o.model && ((o.layers && o.layers != o.model->layers) ||
			(o.experts && o.experts != o.model->experts))) {
		util_cli_error("import", "--layers/--experts contradict --model %s (%d x %d)",
			       o.model->name, o.model->layers, o.model->experts);
		return 2;
	}
	const char *file = argv[optind];
	if (!o.run_name) {
		const char *base = strrchr(file, '/');
		base = base ? base + 1 : file;
		snprintf(name, sizeof(name), "%s", base);
		char *dot = strrchr(name, '.');
		if (dot && dot != name)
			*dot = 0;
		o.run_name = name;
	}
	existed = stat(into, &sb) == 0;
	if (store_open(into, STORE_CREATE, &s, &err))
		return util_cli_fail("import", &err);
	rc = collector_import_csv(s, file, &o, &run, &err);
	store_free(s);
	if (rc) {
		if (!existed)
			remove_db(into);
		return util_cli_fail("import", &err);
	}
	printf("imported '%s' into '%s' as run '%s': %d layers x %d experts\n", file, into,
	       run.name, run.layers, run.experts);
	return 0;
}

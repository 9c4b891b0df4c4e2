/*
 * cmd_info.c: `moetrace info DB` lists the runs of a trace database with
 * their shape, EP layout, step range, phases and storage cost, and
 * `moetrace models` lists the model presets.
 */
#include "cmds.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char info_usage[] = "usage: moetrace info [--json] [--run NAME] DB\n";

/* The first line: the file, its schema and size, or the server's URL. */
static void print_header(struct store *s, const char *path, size_t nruns, int json)
{
	int64_t dbsize, file_size = 0;
	struct stat sb;
	char hb[32];

	dbsize = store_size_bytes(s);
	if (stat(path, &sb) == 0)
		file_size = sb.st_size;
	{
		/* the WAL holds recent writes of a live recording */
		char wal[4096];
		snprintf(wal, sizeof(wal), "%s-wal", path);
		if (stat(wal, &sb) == 0)
			file_size += sb.st_size;
	}
	if (dbsize < 0) { /* a server's trace (clickhouse://): no file, no size per run */
		if (json) {
			printf("{\"path\": ");
			util_json_str(stdout, store_path(s));
			printf(", \"server\": true, \"bytes\": null, \"runs\": [");
		} else {
			printf("%s: moetrace trace on a server, %zu run%s\n", store_path(s), nruns,
			       nruns == 1 ? "" : "s");
		}
	} else if (json) {
		printf("{\"path\": ");
		util_json_str(stdout, path);
		printf(", \"schema_version\": %d, \"bytes\": %lld, \"runs\": [", STORE_SCHEMA_VERSION,
		       (long long)(file_size > dbsize ? file_size : dbsize));
	} else {
		util_human_bytes(hb, sizeof(hb), (double)(file_size > dbsize ? file_size : dbsize));
		printf("%s: moetrace trace, schema %d, %s, %zu run%s\n", path, STORE_SCHEMA_VERSION,
		       hb, nruns, nruns == 1 ? "" : "s");
	}
}

/* One run's object in `info --json` (first: no comma before it). */
static void print_run_json(const struct store_run *r, const struct store_run_stats *st,
			   int64_t missing, int first)
{
	double cells = (double)st->steps * r->layers * r->experts;
	double bpc = cells > 0 ? (double)st->blob_bytes / cells : 0;
	double dur = st->last_time - st->first_time;
	char blob[64], per[64];

	if (st->blob_bytes < 0) { /* kept by the server, compressed by parts */
		snprintf(blob, sizeof(blob), "null");
		snprintf(per, sizeof(per), "null");
	} else {
		snprintf(blob, sizeof(blob), "%lld", (long long)st->blob_bytes);
		snprintf(per, sizeof(per), "%.4f", bpc);
	}
	printf("%s{\"run\": %lld, \"name\": ", first ? "" : ", ", (long long)r->id);
	util_json_str(stdout, r->name);
	printf(", \"model\": ");
	util_json_str(stdout, r->model);
	printf(", \"layers\": %d, \"experts\": %d, \"topk\": %d, \"ranks\": %d, "
	       "\"slots\": %d, \"ranks_per_node\": %d, \"first_layer\": %d, "
	       "\"steps\": %lld, \"first_step\": %lld, \"last_step\": %lld, "
	       "\"missing_steps\": %lld, \"missing_counts\": %lld, "
	       "\"prefill_steps\": %lld, \"decode_steps\": %lld, \"tokens\": %lld, "
	       "\"seconds\": %.3f, \"deployed_rows\": %lld, \"blob_bytes\": %s, "
	       "\"bytes_per_cell\": %s, \"source\": ",
	       r->layers, r->experts, r->topk, r->ranks, r->slots, r->ranks_per_node,
	       r->first_layer, (long long)st->steps, (long long)st->first_step,
	       (long long)st->last_step,
	       st->steps ? (long long)(st->last_step - st->first_step) + 1 - (long long)st->steps
			: 0LL,
	       (long long)missing,
	       (long long)st->prefill_steps,
	       (long long)st->decode_steps, (long long)st->tokens, dur > 0 ? dur : 0,
	       (long long)st->deployed, blob, per);
	util_json_str(stdout, r->source);
	printf("}");
}

/* One run's paragraph in `info`. */
static void print_run_text(const struct store_run *r, const struct store_run_stats *st,
			   int64_t missing)
{
	double cells = (double)st->steps * r->layers * r->experts;
	double bpc = cells > 0 ? (double)st->blob_bytes / cells : 0;
	double dur = st->last_time - st->first_time;
	char hb[32];

	printf("\nrun %lld '%s'%s%s\n", (long long)r->id, r->name,
	       r->model[0] ? "  model " : "", r->model);
	/* 0: the source did not say (a CSV of counts carries no top-k) */
	if (r->topk > 0)
		printf("  shape      %d MoE layers x %d experts, top-%d\n", r->layers,
		       r->experts, r->topk);
	else
		printf("  shape      %d MoE layers x %d experts, top-k not recorded\n",
		       r->layers, r->experts);
	if (r->ranks && r->ranks_per_node > 0)
		printf("  EP layout  %d ranks x %d slots (%d redundant), %d ranks/node\n",
		       r->ranks, r->slots, r->ranks * r->slots - r->experts,
		       r->ranks_per_node);
	else if (r->ranks)
		printf("  EP layout  %d ranks x %d slots (%d redundant), ranks per node "
		       "unknown\n",
		       r->ranks, r->slots, r->ranks * r->slots - r->experts);
	else
		printf("  EP layout  not recorded\n");
	if (st->steps) {
		/* step numbers come from the engine: a hole is a step
		 * dropped by the recorder or not recorded */
		long long span = (long long)(st->last_step - st->first_step) + 1;
		printf("  steps      %lld (%lld .. %lld)", (long long)st->steps,
		       (long long)st->first_step, (long long)st->last_step);
		if (span > st->steps)
			printf(", %lld missing", span - (long long)st->steps);
		printf("\n");
	} else
		printf("  steps      none\n");
	if (missing)
		printf("  counts     %lld of %lld rows (step x layer) missing: they read "
		       "as zero heat\n",
		       (long long)missing, (long long)st->steps * r->layers);
	printf("  phases     %lld prefill, %lld decode, %lld unknown\n",
	       (long long)st->prefill_steps, (long long)st->decode_steps,
	       (long long)(st->steps - st->prefill_steps - st->decode_steps));
	if (st->tokens)
		printf("  tokens     %lld%s\n", (long long)st->tokens,
		       st->tokens == INT64_MAX ? " or more (the total passes an int64)"
					      : "");
	if (dur > 0) {
		/* the engine's rate counts its steps, recorded or not (as
		 * top's does); with holes, the recorded rate too */
		double eng = (double)(st->last_step - st->first_step) / dur;
		if (st->last_step - st->first_step + 1 > st->steps)
			printf("  duration   %.1f s (%.1f steps/s, %.1f of them recorded)\n", dur,
			       eng, (double)(st->steps - 1) / dur);
		else
			printf("  duration   %.1f s (%.1f steps/s)\n", dur, eng);
	}
	printf("  deployed   %s\n",
	       st->deployed ? "placement recorded" : "none (static assumed)");
	util_human_bytes(hb, sizeof(hb), (double)st->blob_bytes);
	if (st->blob_bytes < 0)
		printf("  storage    on the server\n");
	else
		printf("  storage    %s of counts, %.3f bytes/cell\n", hb, bpc);
	if (r->source[0])
		printf("  source     %s\n", r->source);
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "run", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run *runs = NULL;
	size_t nruns = 0;
	const char *only = NULL;
	int64_t only_id = 0;
	int json = 0, c, status = 0, rc;

	while ((c = getopt_long(argc, argv, "jr:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'r': only = optarg; break;
		case 'h': fputs(info_usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
	}
	if (optind != argc - 1) {
		fputs(info_usage, stderr);
		return 2;
	}
	const char *path = argv[optind];
	if (store_open(path, STORE_READONLY, &s, &err))
		return util_cli_fail("info", &err);
	if ((rc = store_run_list(s, &runs, &nruns))) {
		util_cli_error("info", "%s", store_errmsg(s));
		store_free(s);
		return util_exit_status(rc);
	}
	if (only) {
		/* the rule of every command's --run (store_run_get): the run of
		 * that name, else the run of that id */
		struct store_run want;
		if ((rc = store_run_get(s, only, &want))) {
			util_cli_error("info", "%s", store_errmsg(s));
			free(runs);
			store_free(s);
			return util_exit_status(rc);
		}
		only_id = want.id;
	}
	print_header(s, path, nruns, json);
	int first = 1;
	for (size_t i = 0; i < nruns; i++) {
		struct store_run *r = &runs[i];
		struct store_run_stats st;
		if (only && r->id != only_id)
			continue;
		int64_t missing = 0;
		if ((rc = store_run_stats(s, r->id, &st)) ||
		    (rc = store_run_missing_counts(s, r, &missing))) {
			util_cli_error("info", "%s", store_errmsg(s));
			status = util_exit_status(rc);
			break;
		}
		if (json)
			print_run_json(r, &st, missing, first);
		else
			print_run_text(r, &st, missing);
		first = 0;
	}
	if (json)
		printf("]}\n");
	free(runs);
	store_free(s);
	return status;
}

int cmd_models(int argc, char **argv)
{
	const struct store_model *m;

	if (argc > 1 && strcmp(argv[1], "--help") && strcmp(argv[1], "-h")) {
		fputs("usage: moetrace models\n", stderr);
		return 2;
	}
	printf("%-17s %-26s %6s %7s %5s %7s %6s %-6s %s\n", "preset", "model", "layers", "experts",
	       "top-k", "hidden", "inter", "served", "typical EP (ranks x slots)");
	for (size_t i = 0; (m = store_model_at(i)); i++)
		printf("%-17s %-26s %6d %7d %5d %7d %6d %-6s %d x %d (%d redundant), %d per node\n",
		       m->name, m->label, m->layers, m->experts, m->topk, m->hidden, m->inter,
		       m->quant, m->ranks, m->slots, m->ranks * m->slots - m->experts,
		       m->ranks_per_node);
	return 0;
}

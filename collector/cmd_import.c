/*
 * cmd_import.c: `moetrace import FILE --into DB --run NAME` — loads a trace
 * file as a new run, all or nothing.  A new database is written under a
 * private name and renamed into place only when the import succeeded.
 */
#include "cmds.h"
#include "collector/collector.h"
#include "collector/import.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: moetrace import FILE --into DB [--run NAME] [--model PRESET]\n"
	"                       [--layers L --experts E] [--topk K]\n"
	"                       [--ranks R [--slots S] [--ranks-per-node N]] [--progress]\n"
	"                       [--format auto|csv|jsonl|megatron|trtllm|sglang] [--deployed MAP]\n"
	"                       [--pipeline-stages P]\n"
	"FILE is a CSV with the header step,layer,expert,tokens (optional phase column);\n"
	"rows grouped by increasing step.  Without --model the shape comes from the data.\n"
	"Other formats (docs/formats.md): our JSON lines, Megatron-LM router traces (a\n"
	"router_trace_rank*.jsonl or their directory), TensorRT-LLM expert statistics (the\n"
	"directory of meta_info.json and rank*.safetensors); SGLang .pt dumps go through\n"
	"'python3 -m moetrace.sglang_dump'.  --format auto (default) guesses from the name\n"
	"and content.  --deployed MAP records the placement the engine ran with (vllm-ascend\n"
	"expert_map_path JSON or an SGLang physical_to_logical_map) from the first step on.\n"
	"--pipeline-stages P: Megatron-LM rank files of P pipeline stages (each numbers its\n"
	"layers from 0); their layers are put one stage after the other.\n";

/* Records the placement file `path` as deployed from the run's first step,
 * inside the caller's transaction; the file's EP layout becomes the run's. */
static int add_deployed(struct store *s, struct store_run *run, const char *path,
			const struct collector_import_opts *o, int *recorded, struct util_err *err)
{
	struct store_run_stats st;
	int32_t *p2l = NULL;
	int ranks = o->ranks ? o->ranks : 0, slots = o->slots;
	int rc;

	if (!ranks && !slots) {
		/* an SGLang mapping needs the rank count; the run's layout is the best guess */
		FILE *f = fopen(path, "r");
		char head[256] = { 0 };
		if (f) {
			size_t n = fread(head, 1, sizeof(head) - 1, f);
			head[n] = 0;
			fclose(f);
		}
		if (!strstr(head, "layer_list"))
			ranks = run->ranks;
	}
	if (collector_is_yaml(path)) {
		/* TensorRT-LLM's load balancer: a placement it moves online is
		 * recorded as it started, one it chose itself not at all */
		struct collector_trtllm_lb lb;
		if ((rc = collector_trtllm_lb_read(path, &lb, err)))
			return rc;
		collector_trtllm_lb_release(&lb);
		if (!lb.layers) {
			fprintf(stderr,
				"moetrace import: note: '%s' has no initial_global_assignments (the "
				"load balancer placed the experts itself): no deployed placement "
				"recorded\n",
				path);
			return 0;
		}
		if (lb.updates > 0)
			fprintf(stderr,
				"moetrace import: note: '%s' lets the load balancer move experts "
				"online (layer_updates_per_iter: %ld): its initial placement is "
				"recorded as deployed from the first step; later ones are not known\n",
				path, lb.updates);
	}
	if ((rc = collector_deployed_read(path, run, &ranks, &slots, &p2l, err)))
		return rc;
	if (ranks != run->ranks || slots != run->slots) {
		int rpn = o->ranks_per_node ? o->ranks_per_node : ranks < 8 ? ranks : 8;
		if (store_run_set_layout(s, run->id, ranks, slots, rpn)) {
			free(p2l);
			return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
		}
		run->ranks = ranks;
		run->slots = slots;
		run->ranks_per_node = rpn;
	}
	if (store_run_stats(s, run->id, &st) ||
	    store_deployed_set(s, run, st.first_step, ranks, slots, p2l))
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	*recorded = !rc;
	free(p2l);
	return rc;
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
		{ "format", required_argument, NULL, 'f' },
		{ "deployed", required_argument, NULL, 'd' },
		{ "pipeline-stages", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct collector_import_opts o = { 0 };
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run run;
	const char *into = NULL, *deployed = NULL;
	int format = COLLECTOR_FORMAT_AUTO;
	char name[128];
	int c, rc, recorded = 0;

	o.progress = isatty(2);
	while ((c = getopt_long(argc, argv, "i:r:m:L:E:k:R:S:n:Pf:d:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': into = optarg; break;
		case 'r': o.run_name = optarg; break;
		case 'm':
			o.model = store_model_find(optarg);
			if (!o.model) {
				char hint[96];
				util_cli_error("import", "--model: unknown preset '%s'%s (moetrace models "
					       "lists them)", optarg,
					       util_did_you_mean(store_model_suggest(optarg), hint,
								 sizeof(hint)));
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
		case 'f':
			format = collector_format_parse(optarg);
			if (format < 0) {
				util_cli_error("import", "--format: unknown format '%s' (auto, csv, jsonl, "
					       "megatron, trtllm, sglang)", optarg);
				return 2;
			}
			break;
		case 'd': deployed = optarg; break;
		case 'p': rc = util_parse_int(optarg, 1, STORE_MAX_LAYERS, &o.pipeline_stages, "--pipeline-stages", &err); goto chk;
		case 'h': fputs(usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
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
		char path[4096];
		size_t pl = (size_t)snprintf(path, sizeof(path), "%s", file);
		while (pl > 1 && pl < sizeof(path) && path[pl - 1] == '/')
			path[--pl] = 0; /* a directory given as "dir/" */
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		size_t bl = strlen(base);
		if (bl >= sizeof(name))
			bl = sizeof(name) - 1;
		memcpy(name, base, bl);
		name[bl] = 0;
		char *dot = strrchr(name, '.');
		if (dot && dot != name)
			*dot = 0;
		o.run_name = name;
	}
	o.deployed = deployed;
	/* a new database is staged (store.h): a failure leaves no file and
	 * never removes one another process created meanwhile */
	if (store_open(into, STORE_CREATE | STORE_STAGE, &s, &err))
		return util_cli_fail("import", &err);
	if (deployed && (rc = store_begin(s))) {
		util_err_set(&err, UTIL_EDB, "%s", store_errmsg(s));
		goto fail;
	}
	rc = collector_import(s, file, format, &o, &run, &err);
	if (!rc && deployed)
		rc = add_deployed(s, &run, deployed, &o, &recorded, &err);
	if (deployed) {
		if (rc)
			store_rollback(s);
		else if ((rc = store_commit(s)))
			util_err_set(&err, UTIL_EDB, "%s", store_errmsg(s));
	}
fail:
	if (rc) {
		store_free(s);
		return util_cli_fail("import", &err);
	}
	if ((rc = store_publish(s, &err)))
		return util_cli_fail("import", &err);
	/* what the importer did beyond reading, kept in the run's source */
	const char *note = strstr(run.source, file);
	note = note ? strstr(note + strlen(file), "; ") : NULL;
	if (note)
		fprintf(stderr, "moetrace import: note: %s\n", note + 2);
	printf("imported '%s' into '%s' as run '%s': %d layers x %d experts\n", file, into,
	       run.name, run.layers, run.experts);
	if (recorded)
		printf("deployed placement from '%s': %d ranks x %d slots\n", deployed, run.ranks,
		       run.slots);
	return 0;
}

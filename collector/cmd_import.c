/*
 * cmd_import.c: `moetrace import FILE --into DB --run NAME` — loads a trace
 * file as a new run, all or nothing.  A new database is written under a
 * private name and renamed into place only when the import succeeded.
 */
#include "cmds.h"
#include "collector/collector.h"
#include "analyze/analyze.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: moetrace import FILE --into DB [--run NAME] [--model PRESET] [--layers L --experts E]\n"
	"                       [--topk K] [--ranks R [--slots S] [--ranks-per-node N]] [--progress]\n"
	"                       [--format auto|csv|jsonl|megatron|trtllm|sglang] [--deployed MAP]\n"
	"                       [--replicated N] [--pipeline-stages P]\n"
	"       moetrace import --follow DIR --into DB [--run NAME] [--interval SEC] [--settle SEC]\n"
	"                       [--model PRESET] [--topk K] [--ranks R [--slots S]]\n"
	"FILE is a CSV with the header step,layer,expert,tokens (optional phase column);\n"
	"rows grouped by increasing step.  Without --model the shape comes from the data.\n"
	"Other formats (docs/formats.md): our JSON lines, Megatron-LM router traces (a\n"
	"router_trace_rank*.jsonl or their directory), TensorRT-LLM expert statistics (the\n"
	"directory of meta_info.json and rank*.safetensors), SGLang expert-distribution\n"
	"dumps (a .pt file, or a directory of them: one per_pass dump's rank files).\n"
	"--format auto (default) guesses from the name and content.  --deployed MAP records\n"
	"the placement the engine ran with (vllm-ascend expert_map_path JSON or an SGLang\n"
	"physical_to_logical_map) from the first step on.\n"
	"--pipeline-stages P: Megatron-LM rank files of P pipeline stages (each numbers its\n"
	"layers from 0); their layers are put one stage after the other.\n"
	"--replicated N: SGLang dumps of N tensor-parallel ranks without DP attention, each of\n"
	"which counted every token: stat counts divided by N, per_pass ranks' equal records\n"
	"kept once.\n"
	"--follow DIR tails the directory SGLang's recorder dumps into\n"
	"(SGLANG_EXPERT_DISTRIBUTION_RECORDER_DIR): every new complete .pt dump is\n"
	"appended to one run (default name: the directory's), once, until SIGINT/SIGTERM.\n"
	"It polls every --interval seconds (default 1) and imports dumps once none has\n"
	"changed for --settle seconds (default 2), the rank files of a per_pass dump together;\n"
	"a file still without a zip end record after 5 x --settle is refused.  Exit status 2\n"
	"if a dump was refused (each is reported as it is).\n";

/* Records the placement file `path` as deployed from the run's first step,
 * inside the caller's transaction; the file's EP layout becomes the run's. */
static int add_deployed(struct store *s, struct store_run *run, const char *path,
			const struct collector_import_opts *o, int *recorded, struct util_err *err)
{
	struct store_run_stats st;
	struct analyze_shape sh;
	int32_t *p2l = NULL;
	int ranks = o->ranks ? o->ranks : 0, slots = o->slots;
	int rc, fd;
	struct stat sb;

	/* a placement is a regular file: a FIFO or a device would be opened
	 * and read more than once below (and block, or read other bytes) */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	rc = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
	close(fd);
	if (!rc)
		return util_err_set(err, UTIL_EUSAGE, "--deployed: '%s' is not a regular file",
				    path);
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
	if (analyze_format_is_yaml(path)) {
		/* TensorRT-LLM's load balancer: a placement it moves online is
		 * recorded as it started, one it chose itself not at all */
		struct analyze_trtllm_lb lb;
		if ((rc = analyze_trtllm_lb_read(path, &lb, err)))
			return rc;
		analyze_trtllm_lb_release(&lb);
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
	sh = analyze_shape_of(run, ranks, slots);
	if ((rc = analyze_format_read_deployed(path, &sh, &p2l, err)))
		return rc;
	ranks = sh.ranks;
	slots = sh.slots;
	if (ranks != run->ranks || slots != run->slots) {
		int rpn = o->ranks_per_node ? o->ranks_per_node
					    : store_ranks_per_node_default(ranks, 8);
		if (!store_ranks_per_node_ok(ranks, rpn)) {
			free(p2l);
			return util_err_set(err, UTIL_EUSAGE,
					    "--ranks-per-node %d does not divide %d ranks "
					    "(those of '%s')",
					    rpn, ranks, path);
		}
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

/* ---- import --follow DIR ----------------------------------------------------- */

/* Set by SIGINT/SIGTERM: finish the import under way, then stop. */
static volatile sig_atomic_t follow_stop;

static void follow_signal(int sig)
{
	(void)sig;
	follow_stop = 1;
}

/* A dump file seen in the directory. */
struct seen {
	char *path;
	const char *name;       /* inside path */
	int64_t size, mtime;    /* as last seen */
	double stable_since;    /* util_now() when size and mtime last changed */
	int refused;            /* refused with this size and mtime: not retried */
	int present;
};

struct follow {
	const char *dir;
	struct store *s;
	struct store_run run;
	int have_run;
	const struct collector_import_opts *o;
	struct seen *f;
	size_t n, cap;
	int refused;            /* dumps refused so far */
};

static struct seen *seen_get(struct follow *fw, const char *path)
{
	for (size_t i = 0; i < fw->n; i++)
		if (!strcmp(fw->f[i].path, path))
			return &fw->f[i];
	if (fw->n == fw->cap) {
		fw->cap = fw->cap ? 2 * fw->cap : 16;
		fw->f = xrealloc(fw->f, fw->cap * sizeof(*fw->f));
	}
	struct seen *e = &fw->f[fw->n++];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	e->name = strrchr(e->path, '/') ? strrchr(e->path, '/') + 1 : e->path;
	e->size = -1;
	return e;
}

/* Imports dumps g[0..n) as one group into the followed run and records
 * them in imports, in one transaction. */
static int follow_import(struct follow *fw, struct seen **g, size_t n, struct util_err *err)
{
	const char **paths = xmallocarray(n, sizeof(*paths));
	int64_t *first = xmallocarray(n, sizeof(*first)), *last = xmallocarray(n, sizeof(*last));
	struct store_run run = fw->run;
	int rc;

	for (size_t i = 0; i < n; i++)
		paths[i] = g[i]->path;
	if (store_begin(fw->s)) {
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(fw->s));
		goto out;
	}
	rc = collector_import_sglang(fw->s, paths, n, fw->o, fw->dir, &run, fw->have_run, first,
				     last, err);
	for (size_t i = 0; !rc && i < n; i++) {
		struct store_import im = { g[i]->name, g[i]->size, g[i]->mtime, first[i], last[i] };
		if (store_import_add(fw->s, run.id, &im))
			rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(fw->s));
	}
	if (!rc && store_commit(fw->s))
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(fw->s));
	if (rc) {
		store_rollback(fw->s);
		goto out;
	}
	fw->run = run;
	fw->have_run = 1;
	for (size_t i = 0; i < n; i++)
		if (first[i] <= last[i])
			printf("imported '%s' into run '%s': steps %lld to %lld\n", g[i]->path,
			       run.name, (long long)first[i], (long long)last[i]);
		else
			printf("imported '%s' into run '%s': no steps of its own (no forward pass "
			       "with a count)\n",
			       g[i]->path, run.name);
	fflush(stdout);
out:
	free(paths);
	free(first);
	free(last);
	return rc;
}

/* Failures that stop the follower rather than refuse a dump. */
static int fatal(int rc)
{
	return rc == UTIL_EDB || rc == UTIL_EIO || rc == UTIL_ENOMEM;
}

/* Would dump e go into the run alone?  Imports it and rolls back. */
static int follow_try(struct follow *fw, struct seen *e, struct util_err *err)
{
	struct store_run run = fw->run;
	const char *path = e->path;
	int rc;

	if (store_begin(fw->s))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(fw->s));
	rc = collector_import_sglang(fw->s, &path, 1, fw->o, fw->dir, &run, fw->have_run, NULL,
				     NULL, err);
	if (store_rollback(fw->s) && !rc)
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(fw->s));
	return rc;
}

/* One look at the directory: notes what changed, then imports the dumps
 * that are complete and have not changed for `settle` seconds, provided no
 * other dump is still being written (the rank files of one per_pass dump
 * land together and go in together). */
static int follow_poll(struct follow *fw, double settle, struct util_err *err)
{
	char **files = NULL;
	size_t nf = 0, ng = 0;
	struct seen **g = NULL;
	double now = util_now();
	int rc, busy = 0;

	if ((rc = collector_sglang_list(fw->dir, &files, &nf, err)))
		return rc;
	for (size_t i = 0; i < fw->n; i++)
		fw->f[i].present = 0;
	g = xcalloc(nf ? nf : 1, sizeof(struct seen *));
	for (size_t i = 0; i < nf; i++) {
		struct seen *e = seen_get(fw, files[i]);
		struct stat sb;
		if (stat(files[i], &sb) != 0 || !S_ISREG(sb.st_mode))
			continue; /* gone, or not a file: nothing to take */
		int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
		e->present = 1;
		if (e->size != (int64_t)sb.st_size || e->mtime != mt) {
			e->size = (int64_t)sb.st_size;
			e->mtime = mt;
			e->stable_since = now;
			e->refused = 0;
		}
		if (e->refused)
			continue;
		if (fw->have_run) {
			int seen = store_import_seen(fw->s, fw->run.id, e->name, e->size, e->mtime);
			if (seen < 0) {
				rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(fw->s));
				goto out;
			}
			if (seen)
				continue;
		}
		/* torch.save writes the zip end record last, then closes; a file
		 * that stays without one for 5 x settle is tried (and refused) */
		if (now - e->stable_since < settle ||
		    (now - e->stable_since < 5 * settle && !collector_sglang_complete(e->path))) {
			busy = 1;
			continue;
		}
		g[ng++] = e;
	}
	if (busy || ng == 0) {
		rc = 0;
		goto out;
	}
	rc = follow_import(fw, g, ng, err);
	if (rc && ng > 1 && !fatal(rc)) {
		/* one bad dump must not hold back the others: each is tried alone
		 * (and rolled back), the bad ones refused, the rest go in together */
		size_t nv = 0;
		for (size_t i = 0; i < ng; i++) {
			if ((rc = follow_try(fw, g[i], err)) && fatal(rc))
				goto out;
			if (rc) {
				util_cli_error("import", "%s", err->msg);
				g[i]->refused = 1;
				fw->refused++;
			} else {
				g[nv++] = g[i];
			}
		}
		rc = nv ? follow_import(fw, g, nv, err) : 0;
		ng = nv;
	}
	if (rc && !fatal(rc)) {
		util_cli_error("import", "%s", err->msg);
		for (size_t i = 0; i < ng; i++)
			g[i]->refused = 1;
		fw->refused += (int)ng;
		rc = 0;
	}
out:
	free(g);
	collector_sglang_list_free(files, nf);
	return rc;
}

static int follow(const char *dir, const char *into, const struct collector_import_opts *o,
		  double interval, double settle)
{
	struct util_err err = UTIL_ERR_INIT;
	struct follow fw = { 0 };
	struct sigaction sa;
	struct stat sb;
	int rc;

	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		util_cli_error("import", "cannot follow '%s': %s", dir,
			       errno && !S_ISDIR(sb.st_mode) ? strerror(errno) : "not a directory");
		return 2;
	}
	fw.dir = dir;
	fw.o = o;
	if (store_open(into, STORE_CREATE, &fw.s, &err))
		return util_cli_fail("import", &err);
	/* a run of that name is continued (a follower restarted) */
	if (store_run_get(fw.s, o->run_name, &fw.run) == 0) {
		if (strncmp(fw.run.source, "import sglang ", 14)) {
			util_cli_error("import", "run '%s' in '%s' was not imported from SGLang dumps "
				       "(source '%s'): give another --run", fw.run.name, into,
				       fw.run.source);
			store_free(fw.s);
			return 2;
		}
		fw.have_run = 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = follow_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("following '%s' into '%s', run '%s'\n", dir, into, o->run_name);
	fflush(stdout);
	rc = 0;
	while (!follow_stop) {
		struct timespec ts;
		if ((rc = follow_poll(&fw, settle, &err)))
			break;
		ts.tv_sec = (time_t)interval;
		ts.tv_nsec = (long)((interval - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL); /* a signal cuts it short */
	}
	store_free(fw.s);
	for (size_t i = 0; i < fw.n; i++)
		free(fw.f[i].path);
	free(fw.f);
	if (rc)
		return util_cli_fail("import", &err);
	return fw.refused ? 2 : 0;
}

/* A run's name when --run is not given: the file's (or directory's) base
 * name without its extension, in name[n]. */
static const char *default_run_name(const char *file, char *name, size_t n)
{
	char path[4096];
	size_t pl = (size_t)snprintf(path, sizeof(path), "%s", file);
	while (pl > 1 && pl < sizeof(path) && path[pl - 1] == '/')
		path[--pl] = 0; /* a directory given as "dir/" */
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	/* a long name is cut between characters, not inside one */
	size_t bl = util_utf8_cut(base, n - 1);
	memcpy(name, base, bl);
	name[bl] = 0;
	char *dot = strrchr(name, '.');
	if (dot && dot != name)
		*dot = 0;
	return name;
}

/* The run's name is stored as it is, so it must be one that comes back
 * unchanged: valid UTF-8 (an export writes it into JSON, where other bytes
 * would become U+FFFD) and short enough to keep whole.  0, or the exit
 * status after saying why. */
static int run_name_check(const char *name, const char *derived_from)
{
	char shown[4 * 128];

	if (derived_from && !util_utf8_valid(name)) {
		util_cli_error("import", "cannot name the run after '%s': the name is not valid UTF-8 "
			       "(give --run NAME)",
			       util_utf8_sanitize(shown, sizeof(shown), derived_from));
		return 2;
	}
	if (!util_utf8_valid(name)) {
		util_cli_error("import", "--run: '%s' is not valid UTF-8",
			       util_utf8_sanitize(shown, sizeof(shown), name));
		return 2;
	}
	if (strlen(name) >= sizeof(((struct store_run *)0)->name)) {
		util_cli_error("import", "--run: %zu bytes, a run name has at most %zu", strlen(name),
			       sizeof(((struct store_run *)0)->name) - 1);
		return 2;
	}
	return 0;
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
		{ "replicated", required_argument, NULL, 'N' },
		{ "follow", required_argument, NULL, 'F' },
		{ "interval", required_argument, NULL, 'I' },
		{ "settle", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct collector_import_opts o = { 0 };
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run run;
	const char *into = NULL, *deployed = NULL, *follow_dir = NULL;
	double interval = 1, settle = 2;
	int format = COLLECTOR_FORMAT_AUTO;
	char name[128];
	int c, rc, recorded = 0;

	o.progress = isatty(2);
	while ((c = getopt_long(argc, argv, "i:r:m:L:E:k:R:S:n:Pf:d:p:N:F:I:T:h", opts, NULL)) != -1) {
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
		case 'N': rc = util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o.replicated, "--replicated", &err); goto chk;
		case 'F': follow_dir = optarg; break;
		case 'I': rc = util_parse_double(optarg, 0.01, 3600, &interval, "--interval", &err); goto chk;
		case 'T': rc = util_parse_double(optarg, 0, 3600, &settle, "--settle", &err); goto chk;
		case 'h': fputs(usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
		continue;
chk:
		if (rc)
			return util_cli_fail("import", &err);
	}
	if (follow_dir) {
		if (optind != argc || !into || deployed || o.pipeline_stages ||
		    (format != COLLECTOR_FORMAT_AUTO && format != COLLECTOR_FORMAT_SGLANG)) {
			util_cli_error("import", "--follow DIR takes no FILE, --deployed, "
				       "--pipeline-stages or --format other than sglang, and needs "
				       "--into DB");
			return 2;
		}
		argv[--optind] = (char *)follow_dir; /* the run's default name below */
	}
	if (optind != argc - 1 || !into) {
		fputs(usage, stderr);
		return 2;
	}
	if (o.slots && !o.ranks) {
		util_cli_error("import", "--slots needs --ranks");
		return 2;
	}
	if (o.ranks && !store_ranks_per_node_ok(o.ranks, o.ranks_per_node)) {
		util_cli_error("import", "--ranks-per-node %d does not divide %d ranks",
			       o.ranks_per_node, o.ranks);
		return 2;
	}
	if (o.model && ((o.layers && o.layers != o.model->layers) ||
			(o.experts && o.experts != o.model->experts))) {
		util_cli_error("import", "--layers/--experts contradict --model %s (%d x %d)",
			       o.model->name, o.model->layers, o.model->experts);
		return 2;
	}
	const char *file = argv[optind];
	const char *derived = o.run_name ? NULL : file;
	if (!o.run_name)
		o.run_name = default_run_name(file, name, sizeof(name));
	if ((rc = run_name_check(o.run_name, derived)))
		return rc;
	if (follow_dir)
		return follow(follow_dir, into, &o, interval, settle);
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

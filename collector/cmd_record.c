/*
 * cmd_record.c: `moetrace record` drives the real recorder (moetrace.h)
 * with the synthetic generator at a given step rate: a live source for
 * `moetrace top` and for tests, and a check that recording keeps up.
 */
#include "cmds.h"
#include "collector/collector.h"
#include "collector/moetrace.h"
#include "fleet/fleet.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static const char record_usage[] =
	"usage: moetrace record --model NAME [--steps N] [--rate HZ] [--seed S] [--run NAME]\n"
	"                       [--block] [--ring STEPS] [--batch STEPS] [--append] [--placement]\n"
	"                       [--shard RANK] [--metrics HOST:PORT [--rebalance-every K]]\n"
	"                       [--sink URL [--sink-backlog STEPS] [--sink-wait MS]\n"
	"                       [--sink-rollup-only]] DB\n"
	"\n"
	"  --model NAME   model preset giving the shape (moetrace models lists them)\n"
	"  --steps N      steps to record (default 1000; 0 = until interrupted)\n"
	"  --rate HZ      steps per second (default 0 = as fast as possible)\n"
	"  --seed S       generator seed (default 1)\n"
	"  --run NAME     run name (default MODEL-seedS-YYYYMMDD-HHMMSS, UTC)\n"
	"  --block        wait for the writer when the ring is full instead of dropping\n"
	"  --ring STEPS   ring capacity (default 256), --batch STEPS per transaction (64)\n"
	"  --append       continue the run NAME if it exists with the same shape\n"
	"  --placement    record the engine-default placement as the deployed one\n"
	"  --shard RANK   record only what EP rank RANK's slots process (a shard for\n"
	"                 `moetrace merge`), under the engine-default placement\n"
	"  --metrics HOST:PORT  serve GET /metrics while recording: the metrics of\n"
	"                 `moetrace serve` and the recorder's own counters (port 0 picks\n"
	"                 a free port, printed); --rebalance-every K as in serve\n"
	"  --sink clickhouse://[USER[:PASSWORD]@]HOST:PORT/DB[?deployment=NAME]\n"
	"                 ship the steps to ClickHouse as they are committed (a thread\n"
	"                 of its own; full resolution, as `moetrace push`); while the\n"
	"                 server is away, at most --sink-backlog STEPS wait (100000),\n"
	"                 older ones are skipped and counted; at the end it waits\n"
	"                 --sink-wait MS (5000) for the server (docs/fleet.md);\n"
	"                 --sink-rollup-only ships only the sums of each complete\n"
	"                 window of steps per layer (as push --rollup-only)\n";

/* Set by SIGINT/SIGTERM/SIGHUP: stop generating, flush and close cleanly. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void sleep_until(double t)
{
	double d = t - util_now();
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* The run name when none is given: a readable UTC stamp keeps repeated
 * recordings apart. */
static void default_run_name(char *buf, size_t n, const struct store_model *model, int64_t seed)
{
	time_t now = (time_t)util_wall();
	struct tm tm;
	char stamp[32] = "";

	if (gmtime_r(&now, &tm))
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	snprintf(buf, n, "%s-seed%lld-%s", model->name, (long long)seed, stamp);
}

struct record_metrics {
	const char *listen;
	int64_t rebalance_every;
	const char *sink;
	struct moetrace_sink_opts so;
};

static int record_metrics_opt(int c, const char *arg, struct record_metrics *m,
			      struct util_err *err)
{
	if (c == 'M') {
		struct sockaddr_storage addr;

		m->listen = arg;
		return util_listen_parse(arg, &addr, err);
	}
	if (c == 'U') {
		/* checked before the trace is opened: nothing is written */
		struct fleet_url u;
		char shown[1024];

		m->sink = arg;
		if (fleet_url_parse(arg, &u, err)) {
			fleet_url_shown(arg, shown, sizeof(shown));
			return util_err_prefix(err, "--sink '%s': ", shown);
		}
		return 0;
	}
	if (c == 'W')
		return util_parse_int(arg, -1, 3600000, &m->so.wait_ms, "--sink-wait", err);
	if (c == 'O') {
		m->so.rollup_only = 1;
		return 0;
	}
	if (c == 'L')
		return util_parse_i64(arg, 1, INT64_MAX / 2, &m->so.backlog, "--sink-backlog", err);
	return util_parse_i64(arg, 1, STORE_STEP_MAX, &m->rebalance_every, "--rebalance-every",
			      err);
}

/* Serves /metrics from the recorder itself (moetrace.h): the endpoint has
 * its own connection and threads, so the step loop below is unchanged. */
static int record_metrics_start(struct moetrace_recorder *rec, const struct record_metrics *m)
{
	struct moetrace_metrics_opts mo = MOETRACE_METRICS_OPTS_INIT;
	int rc, port = 0;

	if (!m->listen)
		return 0;
	mo.rebalance_every = m->rebalance_every;
	if ((rc = moetrace_recorder_serve_metrics(rec, m->listen, &mo, &port))) {
		util_cli_error("record", "%s", moetrace_errmsg(rec));
		return rc == MOETRACE_EUSAGE ? 2 : 1;
	}
	printf("moetrace record: http://%s/metrics (port %d)\n", m->listen, port);
	fflush(stdout);
	return 0;
}

/* Ships to the sink: started before the first step (moetrace.h). */
static int record_sink_start(struct moetrace_recorder *rec, const struct record_metrics *m)
{
	int rc;

	if (!m->sink)
		return 0;
	if ((rc = moetrace_recorder_ship(rec, m->sink, &m->so))) {
		util_cli_error("record", "%s", moetrace_errmsg(rec));
		return rc == MOETRACE_EUSAGE ? 2 : 1;
	}
	return 0;
}

/* The recorder on path with its sink and endpoint: 0, or the exit status
 * after saying why.  The endpoint starts once the run exists, so a port in
 * use is found first: it would leave an empty run behind, which the same
 * command, run again, refuses for its name. */
static int record_open(const char *path, const struct moetrace_run_desc *desc,
		       const struct moetrace_recorder_opts *ro, const struct record_metrics *m,
		       struct moetrace_recorder **rec)
{
	struct util_err err = UTIL_ERR_INIT;
	int rc;

	if (m->listen && util_listen_probe(m->listen, &err)) {
		util_cli_error("record", "--metrics %s", err.msg);
		return 1;
	}
	if ((rc = moetrace_recorder_open(path, desc, ro, rec))) {
		util_cli_error("record", "%s", moetrace_errmsg(*rec));
		return util_exit_status(rc);
	}
	if ((rc = record_sink_start(*rec, m)) || (rc = record_metrics_start(*rec, m)))
		return rc;
	return 0;
}

static void print_sink(struct moetrace_recorder *rec, const char *url, int rollup_only)
{
	struct moetrace_sink_stats ks;
	char shown[1024];

	if (!url || moetrace_recorder_sink_stats(rec, &ks))
		return;
	fleet_url_shown(url, shown, sizeof(shown));
	printf("sink %s: shipped %lld, skipped %lld, retries %lld%s%s\n", shown,
	       (long long)ks.shipped, (long long)ks.skipped, (long long)ks.retries,
	       ks.last_error ? "; last failure: " : "", ks.last_error ? ks.message : "");
	if (ks.skipped)
		printf("sink: the trace holds the %lld skipped steps; `moetrace push%s` ships %s\n",
		       (long long)ks.skipped, rollup_only ? " --rollup-only" : "",
		       rollup_only ? "their complete windows" : "them");
}

/* The end of a recording in two lines. */
static void print_summary(const char *run, const char *db, int64_t done,
			  const struct store_model *model, double elapsed,
			  const struct moetrace_recorder_stats *st)
{
	char b1[32], b2[32];

	util_human_bytes(b1, sizeof(b1), (double)st->bytes);
	util_human_bytes(b2, sizeof(b2), (double)st->mem_bound);
	printf("run '%s' in %s: %lld steps of %d x %d in %.2f s (%.0f steps/s)%s\n", run, db,
	       (long long)done, model->layers, model->experts, elapsed, (double)done / elapsed,
	       interrupted ? ", interrupted" : "");
	printf("recorded %lld, dropped %lld, failed %lld; queue high-water %lld of %lld steps; "
	       "%lld batches, %s of expert counts written; memory bound %s\n",
	       (long long)st->recorded, (long long)st->dropped, (long long)st->failed,
	       (long long)st->high_water, (long long)st->ring_steps, (long long)st->batches, b1, b2);
}

/* The engine-default placement (vLLM's initial EPLB map): experts 0..E-1
 * in slot order, then redundant copies of experts 0, 1, ... */
static void default_placement(const struct store_model *m, int32_t *phy2log)
{
	size_t P = (size_t)m->ranks * (size_t)m->slots;

	for (size_t l = 0; l < (size_t)m->layers; l++)
		for (size_t i = 0; i < P; i++)
			phy2log[l * P + i] = (int32_t)(i % (size_t)m->experts);
}

/* What rank r's slots process: each expert's tokens split evenly among its
 * replicas (the remainder to the first ones), so all ranks add up to the
 * step exactly. */
static void rank_slots(const struct store_model *m, const int32_t *phy2log, int rank,
		       const uint32_t *counts, uint32_t *slots)
{
	size_t P = (size_t)m->ranks * (size_t)m->slots, E = (size_t)m->experts;
	size_t S = (size_t)m->slots;

	for (size_t l = 0; l < (size_t)m->layers; l++) {
		const int32_t *map = phy2log + l * P;
		for (size_t j = 0; j < S; j++) {
			size_t slot = (size_t)rank * S + j, e = (size_t)map[slot];
			uint32_t reps = 0, before = 0;
			for (size_t i = 0; i < P; i++)
				if ((size_t)map[i] == e) {
					before += i < slot;
					reps++;
				}
			uint32_t c = counts[l * E + e];
			slots[l * S + j] = c / reps + (before < c % reps);
		}
	}
}

/* What the command line asks for. */
struct record_args {
	const char *model_name, *run;
	int64_t steps, seed;
	double rate;
	struct moetrace_recorder_opts ro;
	int shard, placement;
	struct record_metrics metrics;
};

/* Parses the options into a: -1 to go on, or the exit status. */
static int record_parse(int argc, char **argv, struct record_args *a, struct util_err *err)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "steps", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 's' },
		{ "run", required_argument, NULL, 'R' },
		{ "block", no_argument, NULL, 'b' },
		{ "ring", required_argument, NULL, 'g' },
		{ "batch", required_argument, NULL, 'B' },
		{ "append", no_argument, NULL, 'a' },
		{ "shard", required_argument, NULL, 'S' },
		{ "placement", no_argument, NULL, 'P' },
		{ "metrics", required_argument, NULL, 'M' },
		{ "rebalance-every", required_argument, NULL, 'K' },
		{ "sink", required_argument, NULL, 'U' },
		{ "sink-backlog", required_argument, NULL, 'L' },
		{ "sink-wait", required_argument, NULL, 'W' },
		{ "sink-rollup-only", no_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "m:n:r:s:R:bg:B:aS:Ph", opts, NULL)) != -1) {
		switch (c) {
		case 'm': a->model_name = optarg; break;
		case 'n':
			if (util_parse_i64(optarg, 0, INT64_MAX / 2, &a->steps, "--steps", err))
				return util_cli_fail("record", err);
			break;
		case 'r':
			if (util_parse_double(optarg, 0, 1e7, &a->rate, "--rate", err))
				return util_cli_fail("record", err);
			break;
		case 's':
			if (util_parse_i64(optarg, 0, INT64_MAX, &a->seed, "--seed", err))
				return util_cli_fail("record", err);
			break;
		case 'R': a->run = optarg; break;
		case 'b': a->ro.policy = MOETRACE_BLOCK; break;
		case 'g':
			if (util_parse_int(optarg, 1, 1 << 20, &a->ro.ring_steps, "--ring", err))
				return util_cli_fail("record", err);
			break;
		case 'B':
			if (util_parse_int(optarg, 1, 1 << 20, &a->ro.batch_steps, "--batch", err))
				return util_cli_fail("record", err);
			break;
		case 'a': a->ro.append = 1; break;
		case 'S':
			if (util_parse_int(optarg, 0, STORE_MAX_SLOTS, &a->shard, "--shard", err))
				return util_cli_fail("record", err);
			break;
		case 'P': a->placement = 1; break;
		case 'M':
		case 'K':
		case 'U':
		case 'L':
		case 'W':
		case 'O':
			if (record_metrics_opt(c, optarg, &a->metrics, err))
				return util_cli_fail("record", err);
			break;
		case 'h': fputs(record_usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
	}
	if (optind != argc - 1 || !a->model_name) {
		if (!a->model_name)
			util_cli_error("record", "--model is required");
		fputs(record_usage, stderr);
		return 2;
	}
	if (a->metrics.rebalance_every && !a->metrics.listen) {
		util_cli_error("record", "--rebalance-every needs --metrics");
		return 2;
	}
	if ((a->metrics.so.backlog || a->metrics.so.wait_ms || a->metrics.so.rollup_only) &&
	    !a->metrics.sink) {
		util_cli_error("record", "--sink-backlog, --sink-wait and --sink-rollup-only need "
			       "--sink");
		return 2;
	}
	return -1;
}

int cmd_record(int argc, char **argv)
{
	struct util_err err = UTIL_ERR_INIT;
	struct record_args a = { .steps = 1000, .seed = 1, .shard = -1,
				 .ro = MOETRACE_RECORDER_OPTS_INIT };
	struct moetrace_recorder_stats st;
	struct moetrace_recorder *rec = NULL;
	struct collector_gen_cfg gc;
	struct collector_gen *gen = NULL;
	const struct store_model *model = NULL;
	double t0, elapsed;
	uint32_t *counts = NULL, *slots = NULL;
	int32_t *phy2log = NULL;
	char runbuf[128], source[256];
	int rc, status = 0;
	int64_t i, done = 0;

	if ((status = record_parse(argc, argv, &a, &err)) >= 0)
		return status;
	status = 0;
	if (!(model = store_model_find(a.model_name))) {
		char hint[96];
		util_cli_error("record", "unknown model '%s'%s (moetrace models lists them)",
			       a.model_name,
			       util_did_you_mean(store_model_suggest(a.model_name), hint, sizeof(hint)));
		return 2;
	}
	if (a.shard >= 0 && a.shard >= model->ranks) {
		util_cli_error("record", "--shard %d: model '%s' runs on %d ranks", a.shard,
			       model->name, model->ranks);
		return 2;
	}
	if (a.shard >= 0) {
		a.ro.shard = 1;
		a.ro.shard_rank = a.shard;
		a.placement = 1;
	}
	if (a.placement && model->ranks <= 0) {
		util_cli_error("record", "model '%s' has no EP layout for a placement", model->name);
		return 2;
	}
	if (!a.run) {
		default_run_name(runbuf, sizeof(runbuf), model, a.seed);
		a.run = runbuf;
	}
	snprintf(source, sizeof(source), "record seed=%lld rate=%g", (long long)a.seed, a.rate);

	memset(&gc, 0, sizeof(gc));
	gc.model = model;
	gc.seed = (uint64_t)a.seed;
	if ((rc = collector_gen_new(&gc, &gen, &err)))
		return util_cli_fail("record", &err);
	counts = calloc((size_t)model->layers * (size_t)model->experts, sizeof(uint32_t));
	if (a.placement) {
		slots = calloc((size_t)model->layers * (size_t)model->slots, sizeof(uint32_t));
		phy2log = calloc((size_t)model->layers * (size_t)model->ranks * (size_t)model->slots,
				 sizeof(int32_t));
	}
	if (!counts || (a.placement && (!slots || !phy2log))) {
		free(counts);
		free(slots);
		free(phy2log);
		collector_gen_free(gen);
		util_cli_error("record", "out of memory");
		return 1;
	}

	struct moetrace_run_desc desc = {
		.name = a.run, .model = model->name, .layers = model->layers,
		.experts = model->experts, .topk = model->topk, .ranks = model->ranks,
		.slots = model->slots, .ranks_per_node = model->ranks_per_node,
		.first_layer = model->first_layer, .source = source,
	};
	if ((status = record_open(argv[optind], &desc, &a.ro, &a.metrics, &rec)))
		goto out;
	moetrace_recorder_stats(rec, &st);
	i = st.last_step + 1; /* 0, or after the a.steps of an appended a.run */
	if (a.placement) {
		default_placement(model, phy2log);
		if ((rc = moetrace_recorder_placement(rec, i, phy2log))) {
			util_cli_error("record", "%s", moetrace_errmsg(rec));
			status = 1;
			goto out;
		}
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal); /* the terminal closed: keep what was recorded */
	t0 = util_now();
	for (; (a.steps == 0 || done < a.steps) && !interrupted; i++, done++) {
		struct store_step s = { .counts = counts };
		if (a.rate > 0) {
			sleep_until(t0 + (double)done / a.rate);
			if (interrupted) /* the signal ended the wait: no step for it */
				break;
		}
		if ((rc = collector_gen_next(gen, &s))) {
			util_cli_error("record", "generator failed at step %lld (code %d)",
				       (long long)i, rc);
			status = 1;
			break;
		}
		if (a.shard >= 0) {
			/* the batch split over the ranks as data parallelism would */
			int64_t tok = s.tokens / model->ranks + (a.shard < s.tokens % model->ranks);
			rank_slots(model, phy2log, a.shard, counts, slots);
			rc = moetrace_recorder_step_slots(rec, i, slots, (size_t)model->slots,
							  s.phase, tok);
		} else {
			rc = moetrace_recorder_step(rec, i, counts, s.phase, s.tokens);
		}
		if (rc && rc != MOETRACE_EFULL) {
			util_cli_error("record", "%s", moetrace_errmsg(rec));
			status = 1;
			break;
		}
		/* a commit failed (disk full, I/O error): stop rather than go on
		 * generating a.steps that would most likely be lost too; close()
		 * reports the failure */
		moetrace_recorder_stats(rec, &st);
		if (st.failed) {
			done++;
			break;
		}
	}
	elapsed = util_now() - t0;
	if ((rc = moetrace_recorder_close(rec))) {
		util_cli_error("record", "%s", moetrace_errmsg(rec));
		status = 1;
	}
	elapsed = elapsed > 0 ? elapsed : 1e-9;
	moetrace_recorder_stats(rec, &st);
	print_summary(a.run, argv[optind], done, model, elapsed, &st);
	print_sink(rec, a.metrics.sink, a.metrics.so.rollup_only);
out:
	moetrace_recorder_free(rec);
	collector_gen_free(gen);
	free(counts);
	free(slots);
	free(phy2log);
	return status;
}

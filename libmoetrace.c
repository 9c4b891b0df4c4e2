/*
 * libmoetrace.c: the library's front, as moetrace.c is the CLI's.  The
 * calls of moetrace.h that join the recorder (collector/) to a module
 * beside it live here, above both, so that neither includes the other:
 * moetrace_recorder_serve_metrics() starts tui's /metrics endpoint and
 * hangs it on the recorder as an observer (collector.h), handing it a
 * function that copies the recorder's counters (and its sink's, when it
 * ships to ClickHouse: collector/ship.c).
 */
#include "collector/moetrace.h"

#include <stdlib.h>

#include "analyze/analyze.h"
#include "collector/collector.h"
#include "tui/tui.h"

/* The endpoint and what a scrape reads of the recorder. */
struct metrics_obs {
	struct tui_server *sv;
	struct moetrace_recorder *rec;
	struct moetrace_recorder_stats st; /* taken when a scrape begins */
	struct moetrace_sink_stats sink;
	int has_sink;
};

static void metrics_snap(void *ctx)
{
	struct metrics_obs *m = ctx;

	moetrace_recorder_stats(m->rec, &m->st);
	m->has_sink = moetrace_recorder_sink_stats(m->rec, &m->sink) == 0;
}

static void metrics_counters(void *ctx, struct util_buf *out)
{
	struct metrics_obs *m = ctx;

	tui_metrics_format_recorder(&m->st, out);
	if (m->has_sink)
		tui_metrics_format_sink(&m->sink, out);
}

static void metrics_release(void *ctx)
{
	struct metrics_obs *m = ctx;

	tui_server_free(m->sv);
	free(m);
}

/* The endpoint of `moetrace serve` on the trace being recorded: its own
 * read-only connection and threads, and the counters read from the
 * recorder's atomics, so the step path does no more than without it. */
int moetrace_recorder_serve_metrics(struct moetrace_recorder *rec, const char *listen,
				    const struct moetrace_metrics_opts *opts, int *port)
{
	struct moetrace_metrics_opts o = MOETRACE_METRICS_OPTS_INIT;
	struct tui_server_cfg cfg = TUI_SERVER_CFG_INIT;
	struct collector_observer ob = { .name = "metrics", .release = metrics_release,
					 .reads_others = 1 };
	struct util_err err = UTIL_ERR_INIT;
	struct metrics_obs *m;
	const char *path;
	int rc, p = 0;

	if (!rec || !listen)
		return rec ? collector_recorder_fail(rec, MOETRACE_EUSAGE,
						     "no address to serve metrics on")
			   : MOETRACE_EUSAGE;
	if (!(path = collector_recorder_path(rec)))
		return collector_recorder_fail(rec, MOETRACE_ESTATE, "recorder for run '%s' is closed",
					       collector_recorder_run(rec)->name);
	if (opts)
		o = *opts;
	if (o.algo && !(cfg.algo = analyze_algo_find(o.algo)))
		return collector_recorder_fail(rec, MOETRACE_EUSAGE, "unknown algorithm '%s'", o.algo);
	if (o.window < 0 || (o.window > 0 && o.window < TUI_WINDOW_MIN) ||
	    o.rebalance_every < 0 || o.rebalance_every > STORE_STEP_MAX || o.ranks < 0 ||
	    o.slots < 0 || o.ranks > STORE_MAX_SLOTS || o.slots > STORE_MAX_SLOTS)
		return collector_recorder_fail(rec, MOETRACE_EUSAGE,
					       "metrics options out of range (window %d, "
					       "rebalance_every %lld)",
					       o.window, (long long)o.rebalance_every);
	if (!(m = calloc(1, sizeof(*m))))
		return collector_recorder_fail(rec, MOETRACE_ENOMEM, "out of memory");
	m->rec = rec;
	cfg.db = path;
	cfg.run = collector_recorder_run(rec)->name;
	cfg.window = o.window;
	cfg.per_expert = o.per_expert != 0;
	cfg.rebalance_every = o.rebalance_every;
	cfg.ranks = o.ranks;
	cfg.slots = o.slots;
	cfg.counters = metrics_counters;
	cfg.counters_snap = metrics_snap;
	cfg.counters_ctx = m;
	ob.ctx = m;
	if ((rc = tui_server_new(&cfg, &m->sv, &err)) ||
	    (rc = tui_server_listen(m->sv, listen, &p, &err))) {
		metrics_release(m);
		return collector_recorder_fail(rec, rc, "cannot serve metrics: %s", err.msg);
	}
	if ((rc = collector_recorder_observe(rec, &ob))) {
		metrics_release(m);
		return rc;
	}
	if (port)
		*port = p;
	return 0;
}

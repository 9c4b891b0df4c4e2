/*
 * ship.c: moetrace_recorder_ship(), a recording shipped live to
 * ClickHouse.  The sink (fleet/sink.c) is an observer of the recorder
 * (collector.h): the writer tells it of each committed batch, close()
 * lets it ship what is left, free() releases it.  It has a thread and a
 * read-only connection of its own; the engine's step path is unchanged.
 */
#include "collector/moetrace.h"

#include <string.h>

#include "collector/collector.h"
#include "fleet/fleet.h"

_Static_assert(sizeof(((struct moetrace_sink_stats *)0)->message) ==
		       sizeof(((struct fleet_sink_stats *)0)->message),
	       "the sink's message fits moetrace.h's");

static void on_committed(void *ctx, int64_t last_step, int64_t n)
{
	fleet_sink_committed(ctx, last_step, n);
}

static void on_closed(void *ctx)
{
	fleet_sink_close(ctx);
}

static void on_release(void *ctx)
{
	fleet_sink_free(ctx);
}

int moetrace_recorder_ship(struct moetrace_recorder *rec, const char *url,
			   const struct moetrace_sink_opts *opts)
{
	struct moetrace_sink_opts o = MOETRACE_SINK_OPTS_INIT;
	struct collector_observer ob = { .name = "sink", .committed = on_committed,
					 .closed = on_closed, .release = on_release };
	struct moetrace_recorder_stats st;
	struct fleet_sink_opts fo;
	struct util_err err = UTIL_ERR_INIT;
	struct fleet_sink *k = NULL;
	const char *path;
	int rc;

	if (!rec)
		return MOETRACE_EUSAGE;
	if (!url)
		return collector_recorder_fail(rec, MOETRACE_EUSAGE, "no sink URL");
	if (!(path = collector_recorder_path(rec)))
		return collector_recorder_fail(rec, MOETRACE_ESTATE, "recorder for run '%s' is closed",
					       collector_recorder_run(rec)->name);
	if (collector_recorder_observer(rec, "sink"))
		return collector_recorder_fail(rec, MOETRACE_ESTATE, "the recorder ships to a sink "
					       "already");
	moetrace_recorder_stats(rec, &st);
	if (st.recorded || st.dropped || st.failed || st.queued)
		return collector_recorder_fail(rec, MOETRACE_ESTATE,
					       "a sink must be started before the first step");
	if (opts)
		o = *opts;
	fo.deployment = o.deployment;
	fo.backlog = o.backlog;
	fo.batch = o.batch;
	fo.wait_ms = o.wait_ms;
	fo.retry_max_ms = o.retry_max_ms;
	fo.rollup_only = o.rollup_only;
	if ((rc = fleet_sink_new(url, path, collector_recorder_run(rec), &fo, &k, &err)))
		return collector_recorder_fail(rec, rc, "cannot ship: %s", err.msg);
	ob.ctx = k;
	if ((rc = collector_recorder_observe(rec, &ob))) {
		fleet_sink_free(k);
		return rc;
	}
	return 0;
}

int moetrace_recorder_sink_stats(struct moetrace_recorder *rec, struct moetrace_sink_stats *st)
{
	struct fleet_sink_stats f;
	struct fleet_sink *k;

	if (!rec || !st)
		return MOETRACE_EUSAGE;
	if (!(k = collector_recorder_observer(rec, "sink")))
		return MOETRACE_ESTATE;
	fleet_sink_stats(k, &f);
	*st = (struct moetrace_sink_stats){ f.shipped, f.skipped, f.retries, f.lag,
					    f.last_shipped, f.last_error, f.gave_up, "" };
	memcpy(st->message, f.message, sizeof(st->message));
	return 0;
}

/*
 * sink.c: a recording shipped live to ClickHouse.  Start at sink_main(),
 * the sink's thread.  The recorder's writer tells the sink of each commit
 * (fleet_sink_committed: the newest step and how many, under a mutex);
 * the thread reads the steps committed since the last shipment back from
 * the file on a read-only connection of its own and pushes them with the
 * code of `moetrace push` (fleet_push_range), which asks the server what
 * it has first, so a retry after a failure half-way sends nothing twice
 * and a step is visible on the server whole or not at all.  The engine's
 * thread never meets the network: it only fills the recorder's ring.
 *
 * Accounting: every step committed after the sink started ends, once the
 * sink is closed, as shipped or skipped.  `cursor` is the newest step
 * that is either; the steps after it and up to the newest committed are
 * the lag.  When the server cannot be reached the thread retries after
 * 100 ms, doubling up to retry_max_ms; if the lag passes the backlog
 * bound meanwhile, the oldest steps beyond it are skipped (the cursor
 * jumps over them) so that the sink resumes on recent steps.
 *
 * With rollup_only the thread ships complete windows of the schema's N
 * steps (fleet_push_rollup) and waits until a step at or past the end of
 * the window after the cursor is committed; the cursor stays at the end
 * of the last complete window, so the steps of the window still open are
 * the lag (skipped at close).
 */
#include "fleet/fleet.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 2000

struct fleet_sink {
	struct fleet_url url;
	char dep[256];
	struct store_run run;
	struct store *s;     /* read-only; the thread's */
	struct fleet_ch *ch; /* the thread's */
	int64_t backlog;
	int batch, wait_ms, retry_max_ms;
	int schema_ok;
	int rollup_only, rollup_n; /* rollup_n: the schema's, once known (the thread's) */

	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	int closing;
	int64_t committed_last; /* the newest step committed, as told */
	int64_t notified;       /* steps committed since the sink started */
	int64_t cursor;         /* every step up to it is shipped or skipped */
	struct fleet_sink_stats st;
};

/* One attempt at shipping [from, to]; *through: shipped up to it. */
static int ship(struct fleet_sink *k, int64_t from, int64_t to, struct fleet_push_stats *ps,
		int64_t *through, struct util_err *err)
{
	struct fleet_schema_opts so = { 0, NULL };
	int rc;

	if (!k->schema_ok && (rc = fleet_schema_ensure(k->ch, &so, err)))
		return rc;
	k->schema_ok = 1;
	*through = to;
	if (!k->rollup_only)
		rc = fleet_push_range(k->ch, k->s, &k->run, k->dep, from, to, k->batch, ps, err);
	else if (!(rc = fleet_schema_rollup_steps(k->ch, &k->rollup_n, err)))
		rc = fleet_push_rollup(k->ch, k->s, &k->run, k->dep, from, to, k->batch, ps,
				       through, err);
	if (rc)
		k->schema_ok = 0; /* a server started afresh has none: ask again */
	return rc;
}

/* Skips the oldest steps beyond the backlog bound (mu held, released
 * while the file is read: only this thread moves the cursor).  The first
 * step x after the cursor with `excess` steps in (cursor, x] is found by
 * bisection on step counts, which read the file's index only. */
static void skip_beyond_bound(struct fleet_sink *k)
{
	int64_t lag = k->notified - k->st.shipped - k->st.skipped, excess, lo, hi, n = 0;
	int rc = 0;

	if (lag <= k->backlog)
		return;
	excess = lag - k->backlog;
	lo = k->cursor + 1;
	hi = k->committed_last;
	pthread_mutex_unlock(&k->mu);
	while (!rc && lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;

		if ((rc = store_steps_count(k->s, &k->run, k->cursor + 1, mid, 0, &n)))
			break;
		if (n >= excess)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (!rc)
		rc = store_steps_count(k->s, &k->run, k->cursor + 1, lo, 0, &n);
	pthread_mutex_lock(&k->mu);
	if (rc)
		return; /* tried again at the next failure */
	k->st.skipped += n;
	k->cursor = lo;
}

/* The backoff after a failed attempt (mu held): ms, or until close()
 * comes.  Every commit signals cv too, so a wakeup alone does not end the
 * wait: the sink would try again at each commit, many times a second. */
static void wait_ms(struct fleet_sink *k, int ms)
{
	struct timespec ts;
	int closing = k->closing;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (k->closing == closing && pthread_cond_timedwait(&k->cv, &k->mu, &ts) != ETIMEDOUT)
		;
}

/* Something to ship (mu held): a step past the cursor, or with rollups
 * only, one at or past the end of the window holding the step after it. */
static int ready(const struct fleet_sink *k)
{
	if (k->committed_last <= k->cursor)
		return 0;
	return !k->rollup_n ||
	       k->committed_last - fleet_rollup_window(k->cursor + 1, k->rollup_n) >=
		       k->rollup_n - 1;
}

static void *sink_main(void *arg)
{
	struct fleet_sink *k = arg;
	int backoff = RETRY_FIRST_MS;
	double deadline = 0;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		struct util_err err = UTIL_ERR_INIT;
		struct fleet_push_stats ps;
		int64_t from, to, through;
		int rc;

		while (!k->closing && !ready(k))
			pthread_cond_wait(&k->cv, &k->mu);
		if (!ready(k))
			break; /* closing, and everything is shipped */
		if (k->closing && deadline == 0)
			deadline = util_now() + (k->wait_ms > 0 ? k->wait_ms : 0) * 1e-3;
		if (k->closing && util_now() >= deadline)
			break;
		from = k->cursor + 1;
		to = k->committed_last;
		pthread_mutex_unlock(&k->mu);
		rc = ship(k, from, to, &ps, &through, &err);
		pthread_mutex_lock(&k->mu);
		if (!rc) {
			k->cursor = through;
			k->st.shipped += ps.steps;
			if (through >= from)
				k->st.last_shipped = through;
			k->st.last_error = 0;
			backoff = RETRY_FIRST_MS;
			continue;
		}
		k->st.retries++;
		k->st.last_error = rc;
		snprintf(k->st.message, sizeof(k->st.message), "%s", err.msg);
		if (rc == UTIL_EUSAGE || rc == UTIL_EPARSE) {
			k->st.gave_up = 1; /* credentials, schema: retrying will not mend it */
			break;
		}
		skip_beyond_bound(k);
		if (k->closing) {
			double left;

			if (deadline == 0) /* close() came during this attempt */
				deadline = util_now() + (k->wait_ms > 0 ? k->wait_ms : 0) * 1e-3;
			left = deadline - util_now();
			if (left <= 0)
				break;
			wait_ms(k, backoff < left * 1e3 ? backoff : (int)(left * 1e3) + 1);
		} else {
			wait_ms(k, backoff);
		}
		backoff = backoff * 2 > k->retry_max_ms ? k->retry_max_ms : backoff * 2;
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

int fleet_sink_new(const char *url, const char *db_path, const struct store_run *run,
		   const struct fleet_sink_opts *o, struct fleet_sink **out,
		   struct util_err *err)
{
	struct fleet_sink_opts none = { NULL, 0, 0, 0, 0, 0 };
	struct util_err e2 = UTIL_ERR_INIT;
	struct fleet_sink *k;
	char shown[1024];
	int64_t n, first, last;
	int rc;

	*out = NULL;
	if (!o)
		o = &none;
	if (!(k = util_calloc(1, sizeof(*k))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	if (fleet_url_parse(url, &k->url, &e2)) {
		fleet_url_shown(url, shown, sizeof(shown));
		free(k);
		return util_err_set(err, e2.code, "sink '%s': %s", shown, e2.msg);
	}
	if (o->backlog < 0 || o->batch < 0 || o->retry_max_ms < 0) {
		rc = util_err_set(err, UTIL_EUSAGE, "sink '%s': backlog, batch and retry wait "
				  "must not be negative", k->url.shown);
		goto fail;
	}
	if (k->url.deployment[0])
		snprintf(k->dep, sizeof(k->dep), "%s", k->url.deployment);
	else if (o->deployment && o->deployment[0])
		snprintf(k->dep, sizeof(k->dep), "%s", o->deployment);
	else
		fleet_default_deployment(db_path, k->dep, sizeof(k->dep));
	k->run = *run;
	k->backlog = o->backlog ? o->backlog : FLEET_SINK_BACKLOG;
	k->batch = o->batch ? o->batch : FLEET_BATCH_STEPS;
	k->wait_ms = o->wait_ms ? o->wait_ms : FLEET_SINK_WAIT_MS;
	k->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : RETRY_MAX_MS;
	k->rollup_only = o->rollup_only != 0;
	k->st.last_shipped = -1;
	/* loads libcurl now, contacts nothing */
	if ((rc = fleet_ch_new(&k->url, &k->ch, err)))
		goto fail;
	if ((rc = store_open(db_path, STORE_READONLY, &k->s, err)))
		goto fail;
	if ((rc = store_steps_span(k->s, &k->run, -1, STORE_STEP_MIN, STORE_STEP_MAX, 0, &n,
				   &first, &last))) {
		rc = util_err_set(err, rc, "%s", store_errmsg(k->s));
		goto fail;
	}
	k->cursor = k->committed_last = n > 0 ? last : STORE_STEP_MIN - 1;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	if ((rc = pthread_create(&k->thread, NULL, sink_main, k)) != 0) {
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
		rc = util_err_set(err, UTIL_ENOMEM, "cannot start the sink's thread: %s",
				  strerror(rc));
		goto fail;
	}
	k->started = 1;
	*out = k;
	return 0;
fail:
	fleet_ch_free(k->ch);
	store_free(k->s);
	free(k);
	return rc;
}

/* Tells the thread of a commit (n > 0) or that the recorder closes. */
static void tell(struct fleet_sink *k, int64_t last_step, int64_t n, int closing)
{
	pthread_mutex_lock(&k->mu);
	if (n > 0) {
		k->committed_last = last_step;
		k->notified += n;
	}
	k->closing |= closing;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

void fleet_sink_committed(struct fleet_sink *k, int64_t last_step, int64_t n)
{
	tell(k, last_step, n, 0);
}

void fleet_sink_close(struct fleet_sink *k)
{
	if (!k || !k->started)
		return;
	tell(k, 0, 0, 1);
	pthread_join(k->thread, NULL);
	k->started = 0;
	/* what could not be shipped is the file's alone now */
	pthread_mutex_lock(&k->mu);
	k->st.skipped = k->notified - k->st.shipped;
	k->cursor = k->committed_last;
	pthread_mutex_unlock(&k->mu);
	fleet_ch_free(k->ch);
	k->ch = NULL;
	store_free(k->s);
	k->s = NULL;
}

void fleet_sink_stats(struct fleet_sink *k, struct fleet_sink_stats *st)
{
	pthread_mutex_lock(&k->mu);
	*st = k->st;
	st->lag = k->notified - k->st.shipped - k->st.skipped;
	pthread_mutex_unlock(&k->mu);
}

void fleet_sink_free(struct fleet_sink *k)
{
	if (!k)
		return;
	fleet_sink_close(k);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

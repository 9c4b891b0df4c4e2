/*
 * push.c: one run of a trace into ClickHouse, idempotently.
 *
 * A run is keyed by (deployment, run name).  Its counts go in batches of
 * steps, each batch one INSERT in RowBinary (one block, so one part: the
 * server keeps all of it or none); the batch's steps rows follow in a
 * second INSERT and are the commit marker: the views read counts only of
 * steps that have a steps row.  A push first asks which steps the server
 * has committed and sends only the others.  Steps whose counts arrived but
 * whose steps rows did not (a push cut short between the two INSERTs) are
 * committed by sending their steps rows alone, after checking that the
 * server holds every layer of them with the sums of the local trace.
 */
#include "fleet/fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/types.h>

/* ---- RowBinary ----------------------------------------------------------- */

static void rb_varint(struct util_buf *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;

	do {
		t[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			t[n] |= 0x80;
		n++;
	} while (v);
	util_buf_add(b, t, n);
}

static void rb_le(struct util_buf *b, uint64_t v, size_t bytes)
{
	uint8_t t[8];

	for (size_t i = 0; i < bytes; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	util_buf_add(b, t, bytes);
}

static void rb_string(struct util_buf *b, const char *s)
{
	size_t n = strlen(s);

	rb_varint(b, n);
	util_buf_add(b, s, n);
}

static void rb_f64(struct util_buf *b, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	rb_le(b, v, 8);
}

/* ---- answers ------------------------------------------------------------- */

/* Parses a TSV answer of `cols` integer columns into rows (malloc'ed,
 * cols per row); a line that is not exactly that is a malformed answer. */
static int tsv_ints(const struct fleet_ch *c, const struct util_buf *ans, int cols,
		    int64_t **out, size_t *n, struct util_err *err)
{
	const char *p = ans->data ? ans->data : "", *end = p + ans->len;
	int64_t *v = NULL;
	size_t cnt = 0, cap = 0;

	while (p < end) {
		if (cnt + (size_t)cols > cap) {
			int64_t *w = cap > SIZE_MAX / 2 / sizeof(*v) ? NULL :
				     util_realloc(v, (cap ? 2 * cap : 1024) * sizeof(*v));

			if (!w) {
				free(v);
				return util_err_set(err, UTIL_ENOMEM, "out of memory reading the "
						    "answer of '%s'", fleet_ch_url(c)->shown);
			}
			v = w;
			cap = cap ? 2 * cap : 1024;
		}
		for (int k = 0; k < cols; k++) {
			char *e;
			long long x;

			errno = 0;
			x = strtoll(p, &e, 10);
			if (e == p || errno || e >= end || *e != (k + 1 < cols ? '\t' : '\n')) {
				free(v);
				return util_err_set(err, UTIL_EIO,
						    "'%s' sent a malformed or truncated answer",
						    fleet_ch_url(c)->shown);
			}
			v[cnt++] = x;
			p = e + 1;
		}
	}
	*out = v;
	*n = cnt / (size_t)cols;
	return 0;
}

static ssize_t find_at(const int64_t *rows, size_t n, int cols, int64_t step)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rows[mid * (size_t)cols] < step)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && rows[lo * (size_t)cols] == step ? (ssize_t)lo : -1;
}

static int insert(struct fleet_ch *c, const char *table, struct util_buf *rows,
		  struct util_err *err)
{
	char q[128];
	int rc;

	if ((rc = util_buf_check(rows, err)))
		return rc;
	if (!rows->len)
		return 0;
	snprintf(q, sizeof(q), "INSERT INTO %s FORMAT RowBinary", table);
	rc = fleet_ch_query(c, q, 1, rows->data, rows->len, NULL, err);
	util_buf_reset(rows);
	return rc;
}

/* The run's row: inserted if missing, else its shape must be the trace's. */
static int push_run_row(struct fleet_ch *c, const struct store_run *run, const char *dep,
			struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
	int64_t *rows = NULL;
	size_t n = 0;
	int rc;

	util_buf_addstr(&q, "SELECT layers, experts FROM runs");
	fleet_sql_where_run(&q, dep, run->name);
	util_buf_addstr(&q, " FORMAT TSV");
	if ((rc = util_buf_check(&q, err)) ||
	    (rc = fleet_ch_query(c, q.data, 1, NULL, 0, &ans, err)) ||
	    (rc = tsv_ints(c, &ans, 2, &rows, &n, err)))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (rows[2 * i] != run->layers || rows[2 * i + 1] != run->experts) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "'%s' holds run '%s' of deployment '%s' with %lld layers "
					  "x %lld experts, not %d x %d: push it under another "
					  "--deployment or run name", fleet_ch_url(c)->shown,
					  run->name, dep, (long long)rows[2 * i],
					  (long long)rows[2 * i + 1], run->layers, run->experts);
			goto out;
		}
	if (n)
		goto out;
	util_buf_reset(&q);
	rb_string(&q, dep);
	rb_string(&q, run->name);
	rb_string(&q, run->model);
	rb_le(&q, (uint64_t)run->layers, 2);
	rb_le(&q, (uint64_t)run->experts, 4);
	rb_le(&q, (uint64_t)run->topk, 4);
	rb_le(&q, (uint64_t)run->ranks, 4);
	rb_le(&q, (uint64_t)run->slots, 4);
	rb_le(&q, (uint64_t)run->ranks_per_node, 4);
	rb_le(&q, (uint64_t)run->first_layer, 4);
	rb_f64(&q, run->created);
	rb_string(&q, run->source);
	rb_le(&q, (uint64_t)time(NULL), 4);
	rb_le(&q, (uint64_t)run->id, 8);
	if ((rc = util_buf_check(&q, err)))
		goto out;
	rc = fleet_ch_query(c, "INSERT INTO runs (deployment, run, model, layers, experts, topk, "
			       "ranks, slots, ranks_per_node, first_layer, created, source, pushed, "
			       "id) FORMAT RowBinary", 1, q.data, q.len, NULL, err);
out:
	free(rows);
	util_buf_release(&q);
	util_buf_release(&ans);
	return rc;
}

/* Deployed rows the server lacks, in one INSERT. */
static int push_deployed(struct fleet_ch *c, struct store *s, const struct store_run *run,
			 const char *dep, int64_t *sent, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
	struct store_deployed_row *d = NULL;
	int64_t *have = NULL;
	size_t nd = 0, nh = 0;
	int rc;

	if ((rc = store_deployed_list(s, run, &d, &nd))) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	if (!nd)
		goto out;
	util_buf_addstr(&q, "SELECT step, layer FROM deployed");
	fleet_sql_where_run(&q, dep, run->name);
	util_buf_addstr(&q, " ORDER BY step, layer FORMAT TSV");
	if ((rc = util_buf_check(&q, err)) ||
	    (rc = fleet_ch_query(c, q.data, 1, NULL, 0, &ans, err)) ||
	    (rc = tsv_ints(c, &ans, 2, &have, &nh, err)))
		goto out;
	util_buf_reset(&q);
	for (size_t i = 0, j = 0; i < nd; i++) {
		size_t P = (size_t)d[i].ranks * (size_t)d[i].slots;

		while (j < nh && (have[2 * j] < d[i].step ||
				  (have[2 * j] == d[i].step && have[2 * j + 1] < d[i].layer)))
			j++;
		if (j < nh && have[2 * j] == d[i].step && have[2 * j + 1] == d[i].layer)
			continue;
		rb_string(&q, dep);
		rb_string(&q, run->name);
		rb_le(&q, (uint64_t)d[i].step, 8);
		rb_le(&q, (uint64_t)d[i].layer, 2);
		rb_le(&q, (uint64_t)d[i].ranks, 4);
		rb_le(&q, (uint64_t)d[i].slots, 4);
		rb_varint(&q, P);
		for (size_t k = 0; k < P; k++)
			rb_le(&q, (uint32_t)d[i].phy2log[k], 4);
		(*sent)++;
	}
	rc = insert(c, "deployed", &q, err);
out:
	store_deployed_rows_free(d, nd);
	free(have);
	util_buf_release(&q);
	util_buf_release(&ans);
	return rc;
}

/* Which layers of each step hold a counts row, for a run lacking some:
 * the SQLite store reads a missing row as zero heat but shows it as
 * missing (info, the views have no row for it), so the push sends no row
 * for it either.  One layer iterator per layer, advanced with the steps.
 * A whole run is asked first whether it lacks any row (one count); a
 * range (the live sink's, each commit) is always read this way, as the
 * count would read the whole run each time. */
struct presence {
	struct store_iter **it;
	int64_t *at;            /* each layer's next step with a row; INT64_MAX at the end */
	int layers;
};

static int presence_next(struct presence *p, int l, struct store *s, struct util_err *err)
{
	struct store_step st;
	int rc = store_iter_next(p->it[l], &st);

	if (rc < 0)
		return util_err_set(err, rc, "%s", store_errmsg(s));
	p->at[l] = rc ? st.step : INT64_MAX;
	return 0;
}

static int presence_new(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			struct presence *p, struct util_err *err)
{
	int rc = 0;

	p->layers = run->layers;
	p->it = util_calloc((size_t)run->layers, sizeof(struct store_iter *));
	p->at = util_calloc((size_t)run->layers, sizeof(*p->at));
	if (!p->it || !p->at)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	for (int l = 0; !rc && l < run->layers; l++) {
		if ((rc = store_iter_layer_new(s, run, l, from, to, 0, &p->it[l])))
			util_err_set(err, rc, "%s", store_errmsg(s));
		else
			rc = presence_next(p, l, s, err);
	}
	return rc;
}

/* has[l] = layer l of `step` holds a row; *n the count of those. */
static int presence_at(struct presence *p, int64_t step, unsigned char *has, int *n,
		       struct store *s, struct util_err *err)
{
	int rc;

	*n = 0;
	for (int l = 0; l < p->layers; l++) {
		while (p->at[l] < step)
			if ((rc = presence_next(p, l, s, err)))
				return rc;
		has[l] = p->at[l] == step;
		*n += has[l];
	}
	return 0;
}

static void presence_free(struct presence *p)
{
	for (int l = 0; p->it && l < p->layers; l++)
		store_iter_free(p->it[l]);
	free(p->it);
	free(p->at);
}

/* The server's uncommitted counts of a local step (r: step, rows, token
 * sum, distinct layers, every row E long) are the step's `rows` rows. */
static int check_orphan(struct fleet_ch *c, const struct store_run *run, const char *dep,
			const int64_t *r, const struct store_step *step, int rows,
			struct util_err *err)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < (size_t)run->layers * (size_t)run->experts; i++)
		sum += step->counts[i];
	if (r[1] != r[3] || r[1] != rows)
		return util_err_set(err, UTIL_EIO,
				    "'%s' holds %lld counts rows (%lld layers) of uncommitted step "
				    "%lld of run '%s' (deployment '%s'), not the %d layers of one "
				    "whole step: delete them before pushing again",
				    fleet_ch_url(c)->shown, (long long)r[1], (long long)r[3],
				    (long long)step->step, run->name, dep, rows);
	if (r[4] != 1 || (uint64_t)r[2] != sum)
		return util_err_set(err, UTIL_EPARSE,
				    "'%s' holds uncommitted counts of step %lld of run '%s' "
				    "(deployment '%s') that differ from the trace (%lld rows, %lld "
				    "tokens; the trace has %d layers, %llu tokens): another trace "
				    "was pushed under these names?", fleet_ch_url(c)->shown,
				    (long long)step->step, run->name, dep, (long long)r[1],
				    (long long)r[2], rows, (unsigned long long)sum);
	return 0;
}

/* The step's counts rows (those of layers with has[l], every layer
 * without has) in RowBinary. */
static void put_counts(struct util_buf *cb, const char *dep, const struct store_run *run,
		       const struct store_step *step, const unsigned char *has)
{
	size_t E = (size_t)run->experts;

	for (int l = 0; l < run->layers; l++) {
		const uint32_t *v = step->counts + (size_t)l * E;

		if (has && !has[l])
			continue;
		rb_string(cb, dep);
		rb_string(cb, run->name);
		rb_le(cb, (uint64_t)step->step, 8);
		rb_le(cb, (uint64_t)l, 2);
		rb_varint(cb, E);
		for (size_t e = 0; e < E; e++)
			rb_le(cb, v[e], 4);
	}
}

static int check_mode(struct fleet_ch *c, const struct store_run *run, const char *dep,
		      int rollup, struct util_err *err);

int fleet_push_run(struct fleet_ch *c, struct store *s, const struct store_run *run,
		   const char *dep, int batch, struct fleet_push_stats *st, struct util_err *err)
{
	return fleet_push_range(c, s, run, dep, STORE_STEP_MIN, STORE_STEP_MAX, batch, st, err);
}

/* " AND step BETWEEN from AND to" unless the range is the whole run. */
static void where_range(struct util_buf *q, int64_t from, int64_t to)
{
	if (from > STORE_STEP_MIN || to < STORE_STEP_MAX)
		util_buf_addf(q, " AND step BETWEEN %lld AND %lld", (long long)from, (long long)to);
}

int fleet_push_range(struct fleet_ch *c, struct store *s, const struct store_run *run,
		     const char *dep, int64_t from, int64_t to, int batch,
		     struct fleet_push_stats *st, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
	struct util_buf cb = UTIL_BUF_SOFT_INIT, sb = UTIL_BUF_SOFT_INIT;
	struct store_iter *it = NULL;
	struct store_step step;
	int64_t *done = NULL, *orphan = NULL;
	size_t ndone = 0, norphan = 0;
	size_t E = (size_t)run->experts;
	struct presence pres = { 0 };
	unsigned char *has = NULL;
	int64_t missing = 0;
	int rc, inbatch = 0, maxbatch, rows = run->layers;

	memset(st, 0, sizeof(*st));
	/* one INSERT stays one block (ClickHouse splits at 1,048,576 rows) */
	maxbatch = 65536 / run->layers;
	if (batch > maxbatch)
		batch = maxbatch;
	if (batch < 1)
		batch = 1;
	if ((rc = check_mode(c, run, dep, 0, err)) || (rc = push_run_row(c, run, dep, err)) ||
	    (rc = push_deployed(c, s, run, dep, &st->deployed_sent, err)))
		goto out;
	util_buf_addstr(&q, "SELECT step FROM steps");
	fleet_sql_where_run(&q, dep, run->name);
	where_range(&q, from, to);
	util_buf_addstr(&q, " ORDER BY step FORMAT TSV");
	if ((rc = util_buf_check(&q, err)) ||
	    (rc = fleet_ch_query(c, q.data, 1, NULL, 0, &ans, err)) ||
	    (rc = tsv_ints(c, &ans, 1, &done, &ndone, err)))
		goto out;
	util_buf_reset(&q);
	util_buf_addstr(&q, "SELECT step, count(), sum(arraySum(counts)), uniqExact(layer), "
			    "min(length(counts)) = max(length(counts)) AND max(length(counts)) = ");
	util_buf_addf(&q, "%zu FROM counts", E);
	fleet_sql_where_run(&q, dep, run->name);
	where_range(&q, from, to);
	util_buf_addstr(&q, " AND step NOT IN (SELECT step FROM steps");
	fleet_sql_where_run(&q, dep, run->name);
	where_range(&q, from, to);
	util_buf_addstr(&q, ") GROUP BY step ORDER BY step FORMAT TSV");
	if ((rc = util_buf_check(&q, err)) ||
	    (rc = fleet_ch_query(c, q.data, 1, NULL, 0, &ans, err)) ||
	    (rc = tsv_ints(c, &ans, 5, &orphan, &norphan, err)))
		goto out;

	if (from > STORE_STEP_MIN || to < STORE_STEP_MAX)
		missing = 1;
	else if ((rc = store_run_missing_counts(s, run, &missing))) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	if (missing > 0) {
		if (!(has = util_calloc((size_t)run->layers, 1))) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		if ((rc = presence_new(s, run, from, to, &pres, err)))
			goto out;
	}
	if ((rc = store_iter_new(s, run, from, to, 0, &it))) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	while ((rc = store_iter_next(it, &step)) == 1) {
		ssize_t o;

		st->steps++;
		if (find_at(done, ndone, 1, step.step) >= 0) {
			st->present++;
			continue;
		}
		if (pres.it && (rc = presence_at(&pres, step.step, has, &rows, s, err)))
			goto out;
		o = find_at(orphan, norphan, 5, step.step);
		if (o >= 0 && orphan) {
			if ((rc = check_orphan(c, run, dep, orphan + 5 * (size_t)o, &step, rows, err)))
				goto out;
			st->completed++;
		} else {
			put_counts(&cb, dep, run, &step, pres.it ? has : NULL);
			st->sent++;
		}
		rb_string(&sb, dep);
		rb_string(&sb, run->name);
		rb_le(&sb, (uint64_t)step.step, 8);
		rb_f64(&sb, step.time);
		rb_le(&sb, (uint64_t)step.phase, 1);
		rb_le(&sb, (uint64_t)step.tokens, 8);
		if (++inbatch == batch) {
			if ((rc = insert(c, "counts", &cb, err)) ||
			    (rc = insert(c, "steps", &sb, err)))
				goto out;
			inbatch = 0;
		}
	}
	if (rc < 0) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	if ((rc = insert(c, "counts", &cb, err)) || (rc = insert(c, "steps", &sb, err)))
		goto out;
out:
	store_iter_free(it);
	presence_free(&pres);
	free(has);
	free(done);
	free(orphan);
	util_buf_release(&q);
	util_buf_release(&ans);
	util_buf_release(&cb);
	util_buf_release(&sb);
	return rc;
}

/* ---- rollups only ------------------------------------------------------------ */

int64_t fleet_rollup_window(int64_t step, int n)
{
	return step >= 0 ? step / n * n : -((-step - 1) / n + 1) * n;
}

/* A run is shipped one way: refuses rollups of a run the server holds
 * counts of, and full resolution of one it holds shipped rollups of. */
static int check_mode(struct fleet_ch *c, const struct store_run *run, const char *dep,
		      int rollup, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
	int64_t *v = NULL;
	size_t n = 0;
	int rc;

	util_buf_addf(&q, "SELECT count() FROM %s", rollup ? "counts" : "rollup_shipped");
	fleet_sql_where_run(&q, dep, run->name);
	util_buf_addstr(&q, " FORMAT TSV");
	if (!(rc = util_buf_check(&q, err)) &&
	    !(rc = fleet_ch_query(c, q.data, 1, NULL, 0, &ans, err)) &&
	    !(rc = tsv_ints(c, &ans, 1, &v, &n, err)) && (n != 1 || v[0] > 0))
		rc = n != 1 ? util_err_set(err, UTIL_EIO, "'%s' sent a malformed or truncated "
					   "answer", fleet_ch_url(c)->shown)
			    : util_err_set(err, UTIL_EUSAGE,
					   "'%s' holds run '%s' of deployment '%s' %s: shipping "
					   "it %s would mix both for one run; ship it under "
					   "another deployment or run name", fleet_ch_url(c)->shown,
					   run->name, dep,
					   rollup ? "at full resolution" : "as rollups only",
					   rollup ? "as rollups only" : "at full resolution");
	free(v);
	util_buf_release(&q);
	util_buf_release(&ans);
	return rc;
}

/* What fleet_push_rollup holds while it walks the run's steps. */
struct rollup {
	struct fleet_ch *c;
	const struct store_run *run;
	const char *dep;
	int n, batch, inbatch;
	int64_t *done, *orphan;  /* (first_step, steps); (first_step, rows, layers,
				    tokens mod 2^63, rows E long, min steps, max steps) */
	size_t ndone, norphan;
	uint64_t *sum;           /* layers x experts: the window's sums */
	int64_t first, steps, in_range;
	struct util_buf rows, marks;
	struct fleet_push_stats *st;
};

static int rollup_orphan_ok(struct rollup *r, const int64_t *o, uint64_t tokens,
			    struct util_err *err)
{
	if (o[1] == r->run->layers && o[2] == r->run->layers && o[4] == 1 &&
	    o[5] == r->steps && o[6] == r->steps && (uint64_t)o[3] == (tokens & INT64_MAX))
		return 0;
	return util_err_set(err, UTIL_EPARSE,
			    "'%s' holds uncommitted rollup rows of window [%lld, %lld) of run "
			    "'%s' (deployment '%s') that differ from the trace (%lld rows, "
			    "%lld layers, %lld..%lld steps; the trace has %d layers, %lld "
			    "steps): another trace was pushed under these names?",
			    fleet_ch_url(r->c)->shown, (long long)r->first,
			    (long long)(r->first + r->n), r->run->name, r->dep, (long long)o[1],
			    (long long)o[2], (long long)o[5], (long long)o[6], r->run->layers,
			    (long long)r->steps);
}

/* Ships (or skips, or commits) the complete window r->first. */
static int rollup_flush(struct rollup *r, struct util_err *err)
{
	size_t E = (size_t)r->run->experts, LE = (size_t)r->run->layers * E;
	ssize_t o = find_at(r->done, r->ndone, 2, r->first);
	uint64_t tokens = 0;
	int rc = 0;

	for (size_t i = 0; i < LE; i++)
		tokens += r->sum[i];
	if (o >= 0 && r->done[2 * o + 1] != r->steps) {
		rc = util_err_set(err, UTIL_EPARSE,
				  "'%s' holds rollup window [%lld, %lld) of run '%s' (deployment "
				  "'%s') summed over %lld steps, but the trace has %lld steps in "
				  "it: the run changed since it was shipped; ship it under "
				  "another run name", fleet_ch_url(r->c)->shown,
				  (long long)r->first, (long long)(r->first + r->n), r->run->name,
				  r->dep, (long long)r->done[2 * o + 1], (long long)r->steps);
		goto out;
	}
	if (o >= 0) {
		r->st->present++;
		r->st->steps += r->in_range;
		goto out;
	}
	o = find_at(r->orphan, r->norphan, 7, r->first);
	if (o >= 0) {
		if ((rc = rollup_orphan_ok(r, r->orphan + 7 * (size_t)o, tokens, err)))
			goto out;
		r->st->completed++;
	} else {
		for (int l = 0; l < r->run->layers; l++) {
			rb_string(&r->rows, r->dep);
			rb_string(&r->rows, r->run->name);
			rb_le(&r->rows, (uint64_t)l, 2);
			rb_le(&r->rows, (uint64_t)r->first, 8);
			rb_le(&r->rows, (uint64_t)r->steps, 8);
			rb_varint(&r->rows, E);
			for (size_t e = 0; e < E; e++)
				rb_le(&r->rows, r->sum[(size_t)l * E + e], 8);
		}
		r->st->sent++;
	}
	rb_string(&r->marks, r->dep);
	rb_string(&r->marks, r->run->name);
	rb_le(&r->marks, (uint64_t)r->first, 8);
	rb_le(&r->marks, (uint64_t)r->steps, 8);
	r->st->steps += r->in_range;
	/* the rows, then their windows' markers: a window is whole or absent */
	if (++r->inbatch >= r->batch) {
		r->inbatch = 0;
		if ((rc = insert(r->c, "rollup_shipped", &r->rows, err)))
			goto out;
		rc = insert(r->c, "rollup_windows", &r->marks, err);
	}
out:
	memset(r->sum, 0, LE * sizeof(*r->sum));
	r->steps = r->in_range = 0;
	return rc;
}

/* The windows of [a, to] the server has committed, and those whose rows
 * it holds without their marker. */
static int rollup_ask(struct rollup *r, int64_t a, int64_t to, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
	int rc;

	util_buf_addstr(&q, "SELECT first_step, max(steps) FROM rollup_windows");
	fleet_sql_where_run(&q, r->dep, r->run->name);
	util_buf_addf(&q, " AND first_step BETWEEN %lld AND %lld GROUP BY first_step "
		      "ORDER BY first_step FORMAT TSV", (long long)a, (long long)to);
	if ((rc = util_buf_check(&q, err)) ||
	    (rc = fleet_ch_query(r->c, q.data, 1, NULL, 0, &ans, err)) ||
	    (rc = tsv_ints(r->c, &ans, 2, &r->done, &r->ndone, err)))
		goto out;
	util_buf_reset(&q);
	util_buf_addf(&q, "SELECT first_step, count(), uniqExact(layer), "
		      "bitAnd(sum(arraySum(counts)), 9223372036854775807), "
		      "min(length(counts)) = %d AND max(length(counts)) = %d, min(steps), "
		      "max(steps) FROM rollup_shipped", r->run->experts, r->run->experts);
	fleet_sql_where_run(&q, r->dep, r->run->name);
	util_buf_addf(&q, " AND first_step BETWEEN %lld AND %lld AND first_step NOT IN "
		      "(SELECT first_step FROM rollup_windows", (long long)a, (long long)to);
	fleet_sql_where_run(&q, r->dep, r->run->name);
	util_buf_addstr(&q, ") GROUP BY first_step ORDER BY first_step FORMAT TSV");
	if ((rc = util_buf_check(&q, err)) ||
	    (rc = fleet_ch_query(r->c, q.data, 1, NULL, 0, &ans, err)))
		goto out;
	rc = tsv_ints(r->c, &ans, 7, &r->orphan, &r->norphan, err);
out:
	util_buf_release(&q);
	util_buf_release(&ans);
	return rc;
}

int fleet_push_rollup(struct fleet_ch *c, struct store *s, const struct store_run *run,
		      const char *dep, int64_t from, int64_t to, int batch,
		      struct fleet_push_stats *st, int64_t *through, struct util_err *err)
{
	size_t E = (size_t)run->experts, LE = (size_t)run->layers * E;
	struct rollup r = { .c = c, .run = run, .dep = dep, .st = st,
			    .rows = UTIL_BUF_SOFT_INIT, .marks = UTIL_BUF_SOFT_INIT };
	struct store_iter *it = NULL;
	struct store_step step;
	int64_t a, last = 0;
	int rc, any = 0;

	memset(st, 0, sizeof(*st));
	*through = from - 1;
	if ((rc = fleet_schema_rollup_steps(c, &r.n, err)) ||
	    (rc = check_mode(c, run, dep, 1, err)) || (rc = push_run_row(c, run, dep, err)) ||
	    (rc = push_deployed(c, s, run, dep, &st->deployed_sent, err)))
		goto out;
	/* one INSERT stays one block: at most 65,536 rows */
	r.batch = batch < 65536 / run->layers ? batch : 65536 / run->layers;
	r.batch = r.batch < 1 ? 1 : r.batch;
	a = fleet_rollup_window(from, r.n);
	if ((rc = rollup_ask(&r, a, to, err)))
		goto out;
	if (!(r.sum = util_calloc(LE ? LE : 1, sizeof(*r.sum)))) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = store_iter_new(s, run, a, to, 0, &it))) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	while ((rc = store_iter_next(it, &step)) == 1) {
		int64_t w = fleet_rollup_window(step.step, r.n);

		/* a later step: the window before is complete */
		if (r.steps && w != r.first && (rc = rollup_flush(&r, err)))
			goto out;
		r.first = w;
		r.steps++;
		r.in_range += step.step >= from;
		for (size_t i = 0; i < LE; i++)
			r.sum[i] += step.counts[i];
		last = step.step;
		any = 1;
	}
	if (rc < 0) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	rc = 0;
	if (r.steps && last - r.first == r.n - 1 && (rc = rollup_flush(&r, err)))
		goto out;
	if ((rc = insert(c, "rollup_shipped", &r.rows, err)) ||
	    (rc = insert(c, "rollup_windows", &r.marks, err)))
		goto out;
	/* everything before the window left open is complete */
	if (r.steps)
		*through = r.first - 1 > from - 1 ? r.first - 1 : from - 1;
	else
		*through = any ? last : to;
out:
	store_iter_free(it);
	free(r.sum);
	free(r.done);
	free(r.orphan);
	util_buf_release(&r.rows);
	util_buf_release(&r.marks);
	return rc;
}

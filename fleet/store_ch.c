/*
 * store_ch.c: the store backend that reads moetrace traces from
 * ClickHouse, so that every analysing command takes
 * clickhouse://HOST:PORT/DATABASE?deployment=NAME&run=ID where it takes a
 * trace file.  Start at ch_open(): it checks that the database holds a
 * moetrace schema this program reads, picks the deployment and loads its
 * runs.  The operations then ask the server for what the SQLite backend
 * reads from its tables, in RowBinary (exact integers and doubles), and
 * see only committed steps: a step counts once its steps row is there
 * (push.c sends it after the step's counts).
 *
 * Runs keep the ids they had in the pushed trace file (runs.id, schema 2),
 * gaps included; a deployment whose runs lack them (pushed under schema 1)
 * or share one (several files pushed under one deployment) has its runs
 * numbered 1, 2, ... oldest first instead.  The backend is read-only: the store
 * front refuses every write (store_backend.h).
 */
#include "fleet/fleet.h"
#include "store/store_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ch_store {
	struct fleet_ch *c;
	struct fleet_url url;
	struct store_run *runs; /* the deployment's runs (the URL's run alone if it names one) */
	size_t nruns;
	struct util_buf q, ans;
	long long version; /* of the schema (moetrace_meta) */
};

/* ---- RowBinary answers ------------------------------------------------------ */

struct rb {
	const unsigned char *p, *end;
	int bad;
};

static void rb_init(struct rb *r, const struct util_buf *b)
{
	r->p = (const unsigned char *)(b->data ? b->data : "");
	r->end = r->p + b->len;
	r->bad = 0;
}

static uint64_t rb_le(struct rb *r, size_t bytes)
{
	uint64_t v = 0;

	if ((size_t)(r->end - r->p) < bytes) {
		r->bad = 1;
		r->p = r->end;
		return 0;
	}
	for (size_t i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += bytes;
	return v;
}

static double rb_f64(struct rb *r)
{
	uint64_t v = rb_le(r, 8);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

static uint64_t rb_varint(struct rb *r)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			break;
		v |= (uint64_t)(*r->p & 0x7f) << shift;
		if (!(*r->p++ & 0x80))
			return v;
	}
	r->bad = 1;
	r->p = r->end;
	return 0;
}

/* A String into dst (cap bytes, NUL-terminated); longer is malformed. */
static void rb_str(struct rb *r, char *dst, size_t cap)
{
	uint64_t n = rb_varint(r);

	if (r->bad || n >= cap || n > (uint64_t)(r->end - r->p)) {
		r->bad = 1;
		r->p = r->end;
		dst[0] = 0;
		return;
	}
	memcpy(dst, r->p, n);
	dst[n] = 0;
	r->p += n;
}

static int rb_done(const struct rb *r)
{
	return r->p >= r->end;
}

static int malformed(struct store *s, const struct ch_store *h)
{
	return store_backend_seterr(s, UTIL_EIO, "'%s' sent a malformed or truncated answer",
				    h->url.shown);
}

/* Runs the query in h->q (FORMAT appended) into h->ans, read-only, in the
 * URL's database. */
static int ask(struct store *s, struct ch_store *h, const char *format)
{
	struct util_err err = UTIL_ERR_INIT;
	int rc;

	util_buf_addf(&h->q, " FORMAT %s", format);
	if ((rc = fleet_ch_query_opts(h->c, h->q.data, NULL, 0, &h->ans, &err)))
		return store_backend_seterr(s, rc, "%s", err.msg);
	return 0;
}

/* The same outside any database (system tables: the URL's may not exist). */
static int ask_system(struct store *s, struct ch_store *h)
{
	struct util_err err = UTIL_ERR_INIT;
	int rc;

	util_buf_addstr(&h->q, " FORMAT TSV");
	if ((rc = fleet_ch_query(h->c, h->q.data, 0, NULL, 0, &h->ans, &err)))
		return store_backend_seterr(s, rc, "%s", err.msg);
	return 0;
}

static void q_run(struct ch_store *h, const char *select, const char *table,
		  const struct store_run *run)
{
	util_buf_reset(&h->q);
	util_buf_addf(&h->q, "SELECT %s FROM %s", select, table);
	fleet_sql_where_run(&h->q, h->url.deployment, run->name);
}

/* " AND phase IN (...)" for a phase mask (0: every phase). */
static void q_phases(struct util_buf *q, unsigned mask)
{
	const char *sep = " AND phase IN (";

	if (!mask)
		return;
	for (unsigned p = 0; p < 8; p++)
		if (mask & (1u << p)) {
			util_buf_addf(q, "%s%u", sep, p);
			sep = ", ";
		}
	util_buf_addstr(q, *sep == ',' ? ")" : " AND 0");
}

/* ---- runs -------------------------------------------------------------------- */

static int by_id(const void *a, const void *b)
{
	const struct store_run *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/* The runs' ids from their files if each has one of its own (sorted by
 * it), else 1, 2, ... in the order given (oldest first). */
static void number_runs(struct ch_store *h)
{
	struct store_run *sorted;
	int own = 1;

	for (size_t i = 0; i < h->nruns; i++)
		own &= h->runs[i].id > 0;
	if (own && h->nruns) {
		sorted = xmallocarray(h->nruns, sizeof(*sorted));
		memcpy(sorted, h->runs, h->nruns * sizeof(*sorted));
		qsort(sorted, h->nruns, sizeof(*sorted), by_id);
		for (size_t i = 1; i < h->nruns; i++)
			own &= sorted[i].id != sorted[i - 1].id;
		if (own)
			memcpy(h->runs, sorted, h->nruns * sizeof(*sorted));
		free(sorted);
		if (own)
			return;
	}
	for (size_t i = 0; i < h->nruns; i++)
		h->runs[i].id = (int64_t)i + 1;
}

static int load_runs(struct store *s, struct ch_store *h)
{
	struct rb r;
	size_t cap = 0, n = 0;
	int rc;

	util_buf_reset(&h->q);
	util_buf_addf(&h->q, "SELECT run, model, layers, experts, topk, ranks, slots, "
			     "ranks_per_node, first_layer, created, source, %s FROM runs "
			     "WHERE deployment = ", h->version >= 2 ? "id" : "toInt64(0)");
	fleet_sql_quote(&h->q, h->url.deployment);
	util_buf_addstr(&h->q, " ORDER BY created, run");
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	while (!rb_done(&r)) {
		struct store_run run;
		size_t k;

		memset(&run, 0, sizeof(run));
		rb_str(&r, run.name, sizeof(run.name));
		rb_str(&r, run.model, sizeof(run.model));
		run.layers = (int)rb_le(&r, 2);
		run.experts = (int)(uint32_t)rb_le(&r, 4);
		run.topk = (int)(uint32_t)rb_le(&r, 4);
		run.ranks = (int)(uint32_t)rb_le(&r, 4);
		run.slots = (int)(uint32_t)rb_le(&r, 4);
		run.ranks_per_node = (int)(uint32_t)rb_le(&r, 4);
		run.first_layer = (int)(uint32_t)rb_le(&r, 4);
		run.created = rb_f64(&r);
		rb_str(&r, run.source, sizeof(run.source));
		run.id = (int64_t)rb_le(&r, 8);
		if (r.bad)
			return malformed(s, h);
		for (k = 0; k < n && strcmp(h->runs[k].name, run.name); k++)
			;
		if (k < n) /* a run row pushed twice at once: the first counts */
			continue;
		if (!store_backend_run_ok(&run))
			return store_backend_seterr(s, UTIL_EPARSE,
						    "run '%s' in '%s' has an impossible shape (%d "
						    "layers x %d experts, top-%d, %d ranks x %d slots)",
						    run.name, h->url.shown, run.layers, run.experts,
						    run.topk, run.ranks, run.slots);
		if (n == cap)
			h->runs = xrealloc(h->runs, (cap = cap ? 2 * cap : 8) * sizeof(*h->runs));
		h->runs[n++] = run;
	}
	h->nruns = n;
	number_runs(h);
	return 0;
}

/* Keeps the run the URL names (by name, else by id) alone. */
static int pick_run(struct store *s, struct ch_store *h)
{
	const char *want = h->url.run;
	int digits = strspn(want, "0123456789") == strlen(want);
	size_t hit = h->nruns;

	for (size_t i = 0; i < h->nruns; i++) {
		if (!strcmp(h->runs[i].name, want)) {
			hit = i;
			break;
		}
		if (digits && hit == h->nruns && h->runs[i].id == strtoll(want, NULL, 10))
			hit = i;
	}
	if (hit == h->nruns)
		return store_backend_seterr(s, UTIL_ENOTFOUND, "no run named '%s' in '%s'", want,
					    h->url.shown);
	h->runs[0] = h->runs[hit];
	h->nruns = 1;
	return 0;
}

static int ch_run_list(struct store *s, struct store_run **out, size_t *n)
{
	struct ch_store *h = store_backend_data(s);

	*out = xmallocarray(h->nruns ? h->nruns : 1, sizeof(**out));
	memcpy(*out, h->runs, h->nruns * sizeof(**out));
	*n = h->nruns;
	return 0;
}

static const struct store_run *run_of(const struct ch_store *h, int64_t id)
{
	for (size_t i = 0; i < h->nruns; i++)
		if (h->runs[i].id == id)
			return &h->runs[i];
	return NULL;
}

static int ch_run_stats(struct store *s, int64_t id, struct store_run_stats *o)
{
	struct ch_store *h = store_backend_data(s);
	const struct store_run *run = run_of(h, id);
	struct rb r;
	int64_t mint, maxt;
	int rc;

	memset(o, 0, sizeof(*o));
	if (!run)
		return store_backend_seterr(s, UTIL_ENOTFOUND, "no run %lld in '%s'",
					    (long long)id, h->url.shown);
	q_run(h, "count(), min(step), max(step), countIf(phase = 1), countIf(phase = 2), "
		 "sum(tokens), min(time), max(time), min(tokens), max(tokens)",
	      "steps", run);
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	o->steps = (int64_t)rb_le(&r, 8);
	o->first_step = (int64_t)rb_le(&r, 8);
	o->last_step = (int64_t)rb_le(&r, 8);
	o->prefill_steps = (int64_t)rb_le(&r, 8);
	o->decode_steps = (int64_t)rb_le(&r, 8);
	o->tokens = (int64_t)rb_le(&r, 8);
	o->first_time = rb_f64(&r);
	o->last_time = rb_f64(&r);
	mint = (int64_t)rb_le(&r, 8);
	maxt = (int64_t)rb_le(&r, 8);
	if (r.bad || !rb_done(&r))
		return malformed(s, h);
	if (o->steps && (store_step_check(o->first_step, NULL) ||
			 store_step_check(o->last_step, NULL) || store_tokens_check(mint, NULL) ||
			 store_tokens_check(maxt, NULL) || o->tokens < 0))
		return store_backend_seterr(s, UTIL_EPARSE,
					    "run '%s' in '%s' holds a step or token count outside "
					    "the range a trace holds",
					    run->name, h->url.shown);
	o->blob_bytes = -1; /* the server's, compressed by parts: not per run */
	q_run(h, "count()", "deployed", run);
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	o->deployed = (int64_t)rb_le(&r, 8);
	return r.bad || !rb_done(&r) ? malformed(s, h) : 0;
}

static int ch_run_missing_counts(struct store *s, const struct store_run *run, int64_t *missing)
{
	struct ch_store *h = store_backend_data(s);
	struct rb r;
	int64_t steps, rows, want;
	int rc;

	*missing = 0;
	q_run(h, "count()", "steps", run);
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	steps = (int64_t)rb_le(&r, 8);
	if (r.bad)
		return malformed(s, h);
	q_run(h, "count()", "counts", run);
	util_buf_addf(&h->q, " AND layer < %d AND step IN (SELECT step FROM steps", run->layers);
	fleet_sql_where_run(&h->q, h->url.deployment, run->name);
	util_buf_addstr(&h->q, ")");
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	rows = (int64_t)rb_le(&r, 8);
	if (r.bad)
		return malformed(s, h);
	if (util_mul_i64(steps, run->layers, &want))
		want = INT64_MAX;
	*missing = want > rows ? want - rows : 0;
	return 0;
}

/* ---- steps ------------------------------------------------------------------- */

/* Reads a range chunk by chunk: the next `cap` committed steps, then their
 * counts rows. */
struct ch_iter {
	struct store *s;
	struct ch_store *h;
	struct store_run run;
	int layer;             /* < 0: every layer */
	unsigned phase_mask;
	int64_t next, to;      /* steps still to read: [next, to] */
	int more;              /* the server may hold steps from `next` on */
	size_t cap, n, at;     /* chunk: capacity, steps, the next one given */
	size_t vals;           /* counts per step: E or L x E */
	struct store_step *steps;
	unsigned char *has;    /* a step has counts rows (the SQLite join's rule) */
	uint32_t *counts;      /* cap x vals */
};

static void ch_iter_free(void *p)
{
	struct ch_iter *it = p;

	if (!it)
		return;
	free(it->steps);
	free(it->has);
	free(it->counts);
	free(it);
}

static int ch_iter_new(struct store *s, const struct store_run *run, int layer, int64_t from,
		       int64_t to, unsigned phase_mask, void **out)
{
	struct ch_iter *it = xcalloc(1, sizeof(*it));
	size_t per;

	it->s = s;
	it->h = store_backend_data(s);
	it->run = *run;
	it->layer = layer;
	it->phase_mask = phase_mask;
	it->next = from;
	it->to = to;
	it->more = from <= to;
	it->vals = (size_t)(layer >= 0 ? 1 : run->layers) * (size_t)run->experts;
	/* about 16 MB of counts per chunk */
	per = ((size_t)4 << 20) / it->vals;
	it->cap = per < 1 ? 1 : per > 4096 ? 4096 : per;
	it->steps = xcalloc(it->cap, sizeof(*it->steps));
	it->has = xcalloc(it->cap, 1);
	it->counts = xmallocarray(it->cap, it->vals * sizeof(uint32_t));
	*out = it;
	return 0;
}

static ssize_t chunk_find(const struct ch_iter *it, int64_t step)
{
	size_t lo = 0, hi = it->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (it->steps[mid].step < step)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < it->n && it->steps[lo].step == step ? (ssize_t)lo : -1;
}

/* The chunk's steps rows, ascending, each once. */
static int chunk_steps(struct ch_iter *it)
{
	struct ch_store *h = it->h;
	struct rb r;
	int rc;

	q_run(h, "step, time, phase, tokens", "steps", &it->run);
	util_buf_addf(&h->q, " AND step >= %lld AND step <= %lld ORDER BY step LIMIT %zu",
		      (long long)it->next, (long long)it->to, it->cap);
	if ((rc = ask(it->s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	it->n = it->at = 0;
	size_t got = 0;
	for (; !rb_done(&r); got++) {
		struct store_step st = { 0 };

		st.step = (int64_t)rb_le(&r, 8);
		st.time = rb_f64(&r);
		st.phase = (int)rb_le(&r, 1);
		st.tokens = (int64_t)rb_le(&r, 8);
		if (r.bad || got >= it->cap)
			return malformed(it->s, h);
		/* as the SQLite store: a phase mask shifts by it */
		if (!store_phase_ok(st.phase))
			return store_backend_seterr(it->s, UTIL_EPARSE,
						    "step %lld: phase %d in '%s' is not " STORE_PHASE_RANGE,
						    (long long)st.step, st.phase, h->url.shown);
		if (store_tokens_check(st.tokens, NULL))
			return store_backend_seterr(it->s, UTIL_EPARSE,
						    "step %lld: %llu tokens in '%s', outside the "
						    "range a trace holds (0 to %lld)",
						    (long long)st.step, (unsigned long long)st.tokens,
						    h->url.shown, (long long)STORE_TOKENS_MAX);
		if (it->n && st.step <= it->steps[it->n - 1].step)
			continue;
		it->steps[it->n++] = st;
	}
	if (got < it->cap) /* the range holds no step after these */
		it->more = 0;
	return 0;
}

/* The counts rows of the chunk's steps into it->counts. */
static int chunk_counts(struct ch_iter *it)
{
	struct ch_store *h = it->h;
	size_t E = (size_t)it->run.experts;
	struct rb r;
	int rc;

	memset(it->has, 0, it->n);
	memset(it->counts, 0, it->n * it->vals * sizeof(uint32_t));
	q_run(h, "step, layer, counts", "counts", &it->run);
	util_buf_addf(&h->q, " AND step >= %lld AND step <= %lld",
		      (long long)it->steps[0].step, (long long)it->steps[it->n - 1].step);
	if (it->layer >= 0)
		util_buf_addf(&h->q, " AND layer = %d", it->layer);
	if ((rc = ask(it->s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	while (!rb_done(&r)) {
		int64_t step = (int64_t)rb_le(&r, 8);
		int layer = (int)rb_le(&r, 2);
		uint64_t len = rb_varint(&r);
		ssize_t k = chunk_find(it, step);
		uint32_t *dst;

		if (r.bad || len > (uint64_t)(r.end - r.p) / 4)
			return malformed(it->s, h);
		if (layer >= it->run.layers || len != E)
			return store_backend_seterr(it->s, UTIL_EPARSE,
						    "step %lld layer %d: %llu counts in '%s', not the "
						    "run's %d layers x %zu experts",
						    (long long)step, layer, (unsigned long long)len,
						    h->url.shown, it->run.layers, E);
		if (k < 0) { /* a step not committed: its steps row is missing */
			r.p += 4 * len;
			continue;
		}
		it->has[k] = 1;
		dst = it->counts + (size_t)k * it->vals + (it->layer >= 0 ? 0 : (size_t)layer * E);
		for (size_t e = 0; e < E; e++)
			dst[e] = (uint32_t)rb_le(&r, 4);
	}
	return 0;
}

static int ch_iter_next(void *p, struct store_step *out)
{
	struct ch_iter *it = p;
	int rc;

	for (;;) {
		while (it->at < it->n) {
			size_t k = it->at++;
			struct store_step *st = &it->steps[k];

			if (!it->has[k] ||
			    (it->phase_mask && !(it->phase_mask & (1u << (st->phase & 31)))))
				continue;
			*out = *st;
			out->counts = it->counts + k * it->vals;
			return 1;
		}
		if (!it->more)
			return 0;
		if ((rc = chunk_steps(it)))
			return rc;
		if (!it->n)
			return 0;
		if ((rc = chunk_counts(it)))
			return rc;
		if (it->steps[it->n - 1].step >= it->to)
			it->more = 0;
		it->next = it->steps[it->n - 1].step + 1;
	}
}

static int ch_steps_span(struct store *s, const struct store_run *run, int layer, int64_t from,
			 int64_t to, unsigned phase_mask, int64_t *n, int64_t *first,
			 int64_t *last)
{
	struct ch_store *h = store_backend_data(s);
	struct rb r;
	int64_t a, b;
	int rc;

	*n = 0;
	q_run(h, "count(), min(step), max(step)", "steps", run);
	util_buf_addf(&h->q, " AND step >= %lld AND step <= %lld", (long long)from,
		      (long long)to);
	q_phases(&h->q, phase_mask);
	if (layer >= 0) {
		util_buf_addstr(&h->q, " AND step IN (SELECT step FROM counts");
		fleet_sql_where_run(&h->q, h->url.deployment, run->name);
		util_buf_addf(&h->q, " AND layer = %d AND step >= %lld AND step <= %lld)", layer,
			      (long long)from, (long long)to);
	}
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	*n = (int64_t)rb_le(&r, 8);
	a = (int64_t)rb_le(&r, 8);
	b = (int64_t)rb_le(&r, 8);
	if (r.bad || !rb_done(&r))
		return malformed(s, h);
	if (*n) {
		*first = a;
		*last = b;
	}
	return 0;
}

static int ch_steps_after(struct store *s, const struct store_run *run, int64_t after,
			  struct store_steps_news *o)
{
	struct ch_store *h = store_backend_data(s);
	struct rb r;
	int rc;

	memset(o, 0, sizeof(*o));
	q_run(h, "count(), max(step), min(step), max(time)", "steps", run);
	util_buf_addf(&h->q, " AND step > %lld", (long long)after);
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	o->steps = (int64_t)rb_le(&r, 8);
	o->last_step = (int64_t)rb_le(&r, 8);
	o->first_step = (int64_t)rb_le(&r, 8);
	o->last_time = rb_f64(&r);
	return r.bad || !rb_done(&r) ? malformed(s, h) : 0;
}

/* " AND step IN (SELECT step FROM TABLE <run> AND step in [from, to] ...)" */
static void q_steps_of(struct ch_store *h, const char *table, const struct store_run *run,
		       int64_t from, int64_t to, unsigned phase_mask)
{
	util_buf_addf(&h->q, " AND step IN (SELECT step FROM %s", table);
	fleet_sql_where_run(&h->q, h->url.deployment, run->name);
	util_buf_addf(&h->q, " AND step >= %lld AND step <= %lld", (long long)from, (long long)to);
	q_phases(&h->q, phase_mask);
	util_buf_addstr(&h->q, ")");
}

/* The server sums: one row of E sums per layer instead of every step's
 * counts.  The steps summed are those the iterator gives: committed, of
 * the phases asked, holding counts rows. */
static int ch_window_sum(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			 unsigned phase_mask, uint64_t *sum, int64_t *nsteps)
{
	struct ch_store *h = store_backend_data(s);
	size_t E = (size_t)run->experts;
	struct rb r;
	int64_t n;
	int rc;

	memset(sum, 0, (size_t)run->layers * E * sizeof(*sum));
	q_run(h, "count()", "steps", run);
	util_buf_addf(&h->q, " AND step >= %lld AND step <= %lld", (long long)from, (long long)to);
	q_phases(&h->q, phase_mask);
	q_steps_of(h, "counts", run, from, to, 0);
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	n = (int64_t)rb_le(&r, 8);
	if (r.bad || !rb_done(&r))
		return malformed(s, h);
	if (nsteps)
		*nsteps = n;
	if (!n)
		return 0;
	q_run(h, "layer, sumForEach(counts)", "counts", run);
	util_buf_addf(&h->q, " AND step >= %lld AND step <= %lld", (long long)from, (long long)to);
	q_steps_of(h, "steps", run, from, to, phase_mask);
	util_buf_addstr(&h->q, " GROUP BY layer");
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	while (!rb_done(&r)) {
		int layer = (int)rb_le(&r, 2);
		uint64_t len = rb_varint(&r);

		if (r.bad || len > (uint64_t)(r.end - r.p) / 8)
			return malformed(s, h);
		if (layer >= run->layers || len != E)
			return store_backend_seterr(s, UTIL_EPARSE,
						    "layer %d in '%s' sums %llu counts, not the run's "
						    "%d layers x %zu experts",
						    layer, h->url.shown, (unsigned long long)len,
						    run->layers, E);
		for (size_t e = 0; e < E; e++)
			sum[(size_t)layer * E + e] = rb_le(&r, 8);
	}
	return 0;
}

/* ---- deployed placement ------------------------------------------------------ */

static int deployed_row(struct store *s, struct ch_store *h, struct rb *r,
			const struct store_run *run, struct store_deployed_row *d)
{
	uint64_t len;

	d->phy2log = NULL;
	d->step = (int64_t)rb_le(r, 8);
	d->layer = (int)rb_le(r, 2);
	d->ranks = (int)(uint32_t)rb_le(r, 4);
	d->slots = (int)(uint32_t)rb_le(r, 4);
	len = rb_varint(r);
	if (r->bad || len > (uint64_t)(r->end - r->p) / 4)
		return malformed(s, h);
	if (store_step_check(d->step, NULL) || d->layer >= run->layers || d->ranks <= 0 ||
	    d->slots <= 0 || (int64_t)d->ranks * d->slots > STORE_MAX_SLOTS ||
	    (int64_t)d->ranks * d->slots < run->experts ||
	    len != (uint64_t)d->ranks * (uint64_t)d->slots)
		return store_backend_seterr(s, UTIL_EPARSE,
					    "deployed placement of run '%s' at step %lld layer %d "
					    "in '%s' is corrupt: %llu slots for %d ranks x %d slots",
					    run->name, (long long)d->step, d->layer, h->url.shown,
					    (unsigned long long)len, d->ranks, d->slots);
	d->phy2log = xmallocarray((size_t)len, sizeof(int32_t));
	for (size_t i = 0; i < len; i++) {
		int32_t v = (int32_t)(uint32_t)rb_le(r, 4);

		if (v < 0 || v >= run->experts)
			return store_backend_seterr(s, UTIL_EPARSE,
						    "deployed placement of run '%s' at step %lld "
						    "layer %d in '%s' is corrupt: slot %zu holds "
						    "expert %d",
						    run->name, (long long)d->step, d->layer,
						    h->url.shown, i, v);
		d->phy2log[i] = v;
	}
	return 0;
}

static int ch_deployed_list(struct store *s, const struct store_run *run,
			    struct store_deployed_row **out, size_t *n)
{
	struct ch_store *h = store_backend_data(s);
	struct store_deployed_row *rows = NULL;
	size_t cnt = 0, cap = 0;
	struct rb r;
	int rc;

	*out = NULL;
	*n = 0;
	q_run(h, "step, layer, ranks, slots, phy2log", "deployed", run);
	util_buf_addstr(&h->q, " ORDER BY step, layer");
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	while (!rb_done(&r)) {
		if (cnt == cap)
			rows = xrealloc(rows, (cap = cap ? 2 * cap : 64) * sizeof(*rows));
		if ((rc = deployed_row(s, h, &r, run, &rows[cnt]))) {
			free(rows[cnt].phy2log);
			store_deployed_rows_free(rows, cnt);
			return rc;
		}
		/* a row pushed twice at once: the first counts */
		if (cnt && rows[cnt - 1].step == rows[cnt].step &&
		    rows[cnt - 1].layer == rows[cnt].layer)
			free(rows[cnt].phy2log);
		else
			cnt++;
	}
	*out = rows;
	*n = cnt;
	return 0;
}

/* ---- opening ----------------------------------------------------------------- */

static void ch_close(struct store *s)
{
	struct ch_store *h = store_backend_data(s);

	if (!h)
		return;
	fleet_ch_free(h->c);
	memset(h->url.password, 0, sizeof(h->url.password));
	free(h->runs);
	util_buf_release(&h->q);
	util_buf_release(&h->ans);
	free(h);
}

/* clang-format off */
static const struct store_ops ch_ops = {
	.name = "ClickHouse",
	.close = ch_close,
	.run_list = ch_run_list,
	.run_stats = ch_run_stats,
	.run_missing_counts = ch_run_missing_counts,
	.iter_new = ch_iter_new,
	.iter_next = ch_iter_next,
	.iter_free = ch_iter_free,
	.steps_span = ch_steps_span,
	.steps_after = ch_steps_after,
	.window_sum = ch_window_sum,
	.deployed_list = ch_deployed_list,
};
/* clang-format on */

/* A TSV answer of one line into line (cap bytes); -1 if not one line. */
static int one_line(const struct util_buf *ans, char *line, size_t cap)
{
	const char *nl = ans->data ? memchr(ans->data, '\n', ans->len) : NULL;

	if (!nl || (size_t)(nl - ans->data) + 1 != ans->len || (size_t)(nl - ans->data) >= cap)
		return -1;
	memcpy(line, ans->data, (size_t)(nl - ans->data));
	line[nl - ans->data] = 0;
	return 0;
}

/* The database holds a moetrace schema this program reads. */
static int check_schema(struct store *s, struct ch_store *h)
{
	static const char *const need[] = { "moetrace_meta", "runs", "steps", "counts",
					    "deployed" };
	char line[64];
	long long v;
	char *end;
	int rc;

	util_buf_reset(&h->q);
	util_buf_addstr(&h->q, "SELECT count() FROM system.databases WHERE name = ");
	fleet_sql_quote(&h->q, h->url.database);
	if ((rc = ask_system(s, h)))
		return rc;
	if (one_line(&h->ans, line, sizeof(line)))
		return malformed(s, h);
	if (!strcmp(line, "0"))
		return store_backend_seterr(s, UTIL_EUSAGE, "'%s': the server has no database '%s'",
					    h->url.shown, h->url.database);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(need); i++) {
		util_buf_reset(&h->q);
		util_buf_addstr(&h->q, "SELECT count() FROM system.tables WHERE database = ");
		fleet_sql_quote(&h->q, h->url.database);
		util_buf_addf(&h->q, " AND name = '%s'", need[i]);
		if ((rc = ask_system(s, h)))
			return rc;
		if (one_line(&h->ans, line, sizeof(line)))
			return malformed(s, h);
		if (!strcmp(line, "0"))
			return store_backend_seterr(s, UTIL_EPARSE,
						    "'%s' is not a moetrace schema: no table %s",
						    h->url.shown, need[i]);
	}
	util_buf_reset(&h->q);
	util_buf_addstr(&h->q, "SELECT version FROM moetrace_meta");
	if ((rc = ask(s, h, "TSV")))
		return rc;
	if (one_line(&h->ans, line, sizeof(line)) || (v = strtoll(line, &end, 10), *end) ||
	    end == line)
		return store_backend_seterr(s, UTIL_EPARSE,
					    "'%s' is not a moetrace schema: moetrace_meta does not "
					    "hold one version row",
					    h->url.shown);
	h->version = v;
	if (v > FLEET_SCHEMA_VERSION || v < 1)
		return store_backend_seterr(s, UTIL_EPARSE,
					    "'%s' has moetrace schema version %lld; this moetrace "
					    "reads version %d%s",
					    h->url.shown, v, FLEET_SCHEMA_VERSION,
					    v > FLEET_SCHEMA_VERSION ? ": upgrade moetrace" : "");
	return 0;
}

/* The deployment the URL names, or the only one the database holds. */
static int pick_deployment(struct store *s, struct ch_store *h)
{
	char names[3][256];
	size_t n = 0;
	struct rb r;
	int rc;

	util_buf_reset(&h->q);
	util_buf_addstr(&h->q, "SELECT DISTINCT deployment FROM runs");
	if (h->url.deployment[0]) {
		util_buf_addstr(&h->q, " WHERE deployment = ");
		fleet_sql_quote(&h->q, h->url.deployment);
	}
	util_buf_addstr(&h->q, " ORDER BY deployment LIMIT 3");
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	while (!rb_done(&r) && n < 3)
		rb_str(&r, names[n++], sizeof(names[0]));
	if (r.bad)
		return malformed(s, h);
	if (h->url.deployment[0] && n == 0)
		return store_backend_seterr(s, UTIL_EUSAGE, "'%s': no deployment '%s' on the server",
					    h->url.shown, h->url.deployment);
	if (n > 1)
		return store_backend_seterr(s, UTIL_EUSAGE,
					    "'%s' holds several deployments ('%s', '%s'%s): name one "
					    "with ?deployment=NAME",
					    h->url.shown, names[0], names[1], n > 2 ? ", ..." : "");
	if (n == 1)
		memcpy(h->url.deployment, names[0], sizeof(h->url.deployment));
	return 0;
}

/* Runs of the deployment shipped as rollups only (schema 3) have no
 * steps or counts on the server: a command reading one is refused, and
 * one reading the deployment's default run while there is such a run. */
static int refuse_rollup_only(struct store *s, struct ch_store *h)
{
	char run[256] = "";
	struct rb r;
	int rc;

	if (h->version < 3 || !h->nruns)
		return 0;
	util_buf_reset(&h->q);
	util_buf_addstr(&h->q, "SELECT DISTINCT run FROM rollup_windows WHERE deployment = ");
	fleet_sql_quote(&h->q, h->url.deployment);
	if (h->url.run[0]) {
		util_buf_addstr(&h->q, " AND run = ");
		fleet_sql_quote(&h->q, h->runs[0].name);
	}
	util_buf_addstr(&h->q, " ORDER BY run LIMIT 1");
	if ((rc = ask(s, h, "RowBinary")))
		return rc;
	rb_init(&r, &h->ans);
	if (!rb_done(&r))
		rb_str(&r, run, sizeof(run));
	if (r.bad)
		return malformed(s, h);
	if (!run[0])
		return 0;
	return store_backend_seterr(s, UTIL_EUSAGE,
				    "'%s': run '%s' of deployment '%s' was shipped as rollups only "
				    "(push --rollup-only): the server holds its sums per window in "
				    "rollup_heat, not the steps and counts this command reads; read "
				    "its trace file%s", h->url.shown, run, h->url.deployment,
				    h->url.run[0] ? "" : ", or name a run shipped at full resolution "
				    "with &run=ID");
}

static int ch_open(const char *text, int flags, struct store **out, struct util_err *err)
{
	struct ch_store *h = xcalloc(1, sizeof(*h));
	struct store *s;
	int rc;

	*out = NULL;
	if ((rc = fleet_url_parse(text, &h->url, err))) {
		free(h);
		return rc;
	}
	if (!(flags & STORE_READONLY)) {
		rc = util_err_set(err, UTIL_EUSAGE,
				  "cannot write to '%s': moetrace reads traces from ClickHouse but "
				  "writes only SQLite files (moetrace push ships one; replay "
				  "--no-store reads without storing)",
				  h->url.shown);
		free(h);
		return rc;
	}
	if ((rc = fleet_ch_new(&h->url, &h->c, err))) {
		free(h);
		return rc;
	}
	s = store_backend_new(&ch_ops, h, h->url.shown);
	if (!s) {
		fleet_ch_free(h->c);
		free(h);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	if ((rc = check_schema(s, h)) || (rc = pick_deployment(s, h)) ||
	    (h->url.deployment[0] && (rc = load_runs(s, h))) ||
	    (h->url.run[0] && (rc = pick_run(s, h))) ||
	    (h->url.deployment[0] && (rc = refuse_rollup_only(s, h)))) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		store_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int fleet_store_register(void)
{
	return store_backend_register("clickhouse://", ch_open);
}

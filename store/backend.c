/*
 * backend.c: the store's front.  Every public store_* function that
 * reaches storage lands here and calls the operation of the handle's
 * backend (store_backend.h); store_open() picks the backend from the
 * path: a registered URL scheme, else an SQLite file (store/store.c).
 * Operations a backend leaves out are derived here from the ones it has,
 * or refused when they would write.
 */
#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* URL schemes registered by the program (moetrace.c), set once before any
 * store is opened; libmoetrace alone registers none. */
static struct {
	const char *scheme;
	store_opener open;
} backends[4];

int store_backend_register(const char *scheme, store_opener open)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(backends); i++) {
		if (!backends[i].scheme || !strcmp(backends[i].scheme, scheme)) {
			backends[i].scheme = scheme;
			backends[i].open = open;
			return 0;
		}
	}
	return UTIL_ERANGE;
}

struct store *store_backend_new(const struct store_ops *ops, void *data, const char *shown)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s || !(s->path = strdup(shown))) {
		free(s);
		return NULL;
	}
	s->ops = ops;
	s->data = data;
	return s;
}

void *store_backend_data(const struct store *s)
{
	return s->data;
}

int store_backend_seterr(struct store *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int store_backend_run_ok(const struct store_run *r)
{
	return store_int_shape_ok(r->layers, r->experts, r->topk, r->ranks, r->slots,
				  r->ranks_per_node) &&
	       r->first_layer >= 0 && r->first_layer <= STORE_MAX_FIRST_LAYER;
}

/* Length of "scheme://" at the start of path, or 0 when path is no URL. */
static size_t url_scheme_len(const char *path)
{
	size_t n = 0;

	if (!isalpha((unsigned char)path[0]))
		return 0;
	while (isalnum((unsigned char)path[n]) || path[n] == '+' || path[n] == '-' ||
	       path[n] == '.')
		n++;
	return strncmp(path + n, "://", 3) ? 0 : n + 3;
}

int store_open(const char *path, int flags, struct store **out, struct util_err *err)
{
	size_t n = url_scheme_len(path);

	*out = NULL;
	if (!n)
		return store_sqlite_open(path, flags, out, err);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(backends) && backends[i].scheme; i++)
		if (strlen(backends[i].scheme) == n && !strncmp(path, backends[i].scheme, n))
			return backends[i].open(path, flags, out, err);
	/* the rest of the URL may hold a password: show the scheme alone */
	return util_err_set(err, UTIL_EUSAGE,
			    "cannot open '%.*s...': this program reads no %.*s URLs (a trace is an "
			    "SQLite file)",
			    (int)n, path, (int)(n - 3), path);
}

void store_free(struct store *s)
{
	if (!s)
		return;
	if (s->ops)
		s->ops->close(s);
	free(s->path);
	free(s);
}

int store_publish(struct store *s, struct util_err *err)
{
	if (!s->ops->publish) {
		store_free(s);
		return 0;
	}
	return s->ops->publish(s, err);
}

const char *store_errmsg(const struct store *s)
{
	return s ? s->errmsg : "no store";
}

const char *store_path(const struct store *s)
{
	return s->path;
}

static int read_only(struct store *s)
{
	return store_backend_seterr(s, UTIL_EUSAGE,
				    "cannot write to '%s': moetrace reads %s traces but writes "
				    "only SQLite files (moetrace push ships one)",
				    s->path, s->ops->name);
}

/* A write operation: the backend's, or refused. */
#define WRITE_OP(s, op, ...) ((s)->ops->op ? (s)->ops->op(__VA_ARGS__) : read_only(s))

/* ---- tuning ---------------------------------------------------------------- */

int store_cache_size(struct store *s, int kib)
{
	return s->ops->cache_size ? s->ops->cache_size(s, kib) : 0;
}

void store_busy_timeout(struct store *s, int ms)
{
	if (s->ops->busy_timeout)
		s->ops->busy_timeout(s, ms);
}

int store_locked(const struct store *s)
{
	return s->ops->locked ? s->ops->locked(s) : 0;
}

/* ---- transactions and writes ---------------------------------------------- */

int store_begin(struct store *s)
{
	return WRITE_OP(s, begin, s);
}

int store_commit(struct store *s)
{
	return WRITE_OP(s, commit, s);
}

int store_rollback(struct store *s)
{
	return WRITE_OP(s, rollback, s);
}

int store_run_add(struct store *s, struct store_run *run)
{
	return WRITE_OP(s, run_add, s, run);
}

int store_run_set_layout(struct store *s, int64_t run, int ranks, int slots, int ranks_per_node)
{
	return WRITE_OP(s, run_set_layout, s, run, ranks, slots, ranks_per_node);
}

int store_steps_append(struct store *s, const struct store_run *run,
		       const struct store_step *steps, size_t n)
{
	return WRITE_OP(s, steps_append, s, run, steps, n);
}

int store_deployed_set(struct store *s, const struct store_run *run, int64_t from, int ranks,
		       int slots, const int32_t *phy2log)
{
	return WRITE_OP(s, deployed_set, s, run, from, ranks, slots, phy2log);
}

int store_import_seen(struct store *s, int64_t run, const char *name, int64_t size,
		      int64_t mtime)
{
	return s->ops->import_seen ? s->ops->import_seen(s, run, name, size, mtime) : 0;
}

int store_import_add(struct store *s, int64_t run, const struct store_import *im)
{
	return WRITE_OP(s, import_add, s, run, im);
}

int store_replay_add(struct store *s, struct store_replay *r)
{
	return WRITE_OP(s, replay_add, s, r);
}

int store_replay_finish(struct store *s, const struct store_replay *r)
{
	return WRITE_OP(s, replay_finish, s, r);
}

int store_replay_step_add(struct store *s, int64_t replay, int64_t step, int layers,
			  const double *max_load, const double *mean_load,
			  const double *base_max_load)
{
	return WRITE_OP(s, replay_step_add, s, replay, step, layers, max_load, mean_load,
			base_max_load);
}

int store_replay_event_add(struct store *s, int64_t replay, const struct store_replay_event *e,
			   int layers, const int64_t *moves, const int64_t *bytes,
			   const double *before, const double *after)
{
	return WRITE_OP(s, replay_event_add, s, replay, e, layers, moves, bytes, before, after);
}

int store_replay_layer_add(struct store *s, int64_t replay, int layer, double mean, double p99,
			   double base_mean, double base_p99, int64_t moves)
{
	return WRITE_OP(s, replay_layer_add, s, replay, layer, mean, p99, base_mean, base_p99,
			moves);
}

int store_replay_event_effective(struct store *s, int64_t replay, int64_t event, int64_t step)
{
	return WRITE_OP(s, replay_event_effective, s, replay, event, step);
}

/* ---- runs ------------------------------------------------------------------- */

int store_run_list(struct store *s, struct store_run **out, size_t *n)
{
	return s->ops->run_list(s, out, n);
}

/* store_run_get's rule over run_list: the run named `name`, else (all
 * digits) the run of that id, NULL or "" the newest (the largest id). */
static int run_get_listed(struct store *s, const char *name, struct store_run *out)
{
	struct store_run *v = NULL, *hit = NULL;
	size_t n = 0;
	int rc = s->ops->run_list(s, &v, &n);
	int digits = name && *name && strspn(name, "0123456789") == strlen(name);

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (!name || !*name) {
			if (!hit || v[i].id > hit->id)
				hit = &v[i];
		} else if (!strcmp(v[i].name, name)) {
			hit = &v[i];
			break;
		} else if (digits && !hit && v[i].id == strtoll(name, NULL, 10)) {
			hit = &v[i];
		}
	}
	if (hit)
		*out = *hit;
	else if (name && *name)
		rc = store_backend_seterr(s, UTIL_ENOTFOUND, "no run named '%s' in '%s'", name,
					  s->path);
	else
		rc = store_backend_seterr(s, UTIL_ENOTFOUND, "'%s' holds no runs", s->path);
	free(v);
	return rc;
}

int store_run_get(struct store *s, const char *name, struct store_run *out)
{
	/* NULL is the newest run; an empty name is no name, not that default */
	if (name && !*name)
		return store_backend_seterr(s, UTIL_EUSAGE, "--run: empty name");
	if (s->ops->run_get)
		return s->ops->run_get(s, name, out);
	return run_get_listed(s, name, out);
}

int store_run_stats(struct store *s, int64_t run, struct store_run_stats *st)
{
	return s->ops->run_stats(s, run, st);
}

int store_run_missing_counts(struct store *s, const struct store_run *run, int64_t *missing)
{
	return s->ops->run_missing_counts(s, run, missing);
}

int store_open_run(const char *path, const char *run, int flags, struct store **s,
		   struct store_run *r, struct util_err *err)
{
	int rc = store_open(path, flags, s, err);

	if (rc)
		return rc;
	rc = store_run_get(*s, run, r);
	if (rc) {
		util_err_set(err, rc, "%s", store_errmsg(*s));
		store_free(*s);
		*s = NULL;
	}
	return rc;
}

int64_t store_size_bytes(struct store *s)
{
	return s->ops->size_bytes ? s->ops->size_bytes(s) : -1;
}

/* ---- steps ------------------------------------------------------------------ */

struct store_iter {
	struct store *s;
	void *it; /* the backend's iterator */
};

static int iter_open(struct store *s, const struct store_run *run, int layer, int64_t from,
		     int64_t to, unsigned phase_mask, struct store_iter **out)
{
	struct store_iter *it = calloc(1, sizeof(*it));
	int rc;

	*out = NULL;
	if (!it)
		return store_backend_seterr(s, UTIL_ENOMEM, "out of memory");
	it->s = s;
	if ((rc = s->ops->iter_new(s, run, layer, from, to, phase_mask, &it->it))) {
		free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int store_iter_new(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		   unsigned phase_mask, struct store_iter **out)
{
	return iter_open(s, run, -1, from, to, phase_mask, out);
}

int store_iter_layer_new(struct store *s, const struct store_run *run, int layer, int64_t from,
			 int64_t to, unsigned phase_mask, struct store_iter **out)
{
	*out = NULL;
	if (layer < 0 || layer >= run->layers)
		return store_backend_seterr(s, UTIL_ERANGE, "layer %d out of range [0, %d)", layer,
					    run->layers);
	return iter_open(s, run, layer, from, to, phase_mask, out);
}

int store_iter_next(struct store_iter *it, struct store_step *out)
{
	return it->s->ops->iter_next(it->it, out);
}

void store_iter_free(struct store_iter *it)
{
	if (!it)
		return;
	it->s->ops->iter_free(it->it);
	free(it);
}

int store_steps_span(struct store *s, const struct store_run *run, int layer, int64_t from,
		     int64_t to, unsigned phase_mask, int64_t *n, int64_t *first, int64_t *last)
{
	return s->ops->steps_span(s, run, layer, from, to, phase_mask, n, first, last);
}

int store_steps_count(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		      unsigned phase_mask, int64_t *n)
{
	int64_t first, last;

	if (s->ops->steps_count)
		return s->ops->steps_count(s, run, from, to, phase_mask, n);
	return s->ops->steps_span(s, run, -1, from, to, phase_mask, n, &first, &last);
}

int store_steps_after(struct store *s, const struct store_run *run, int64_t after,
		      struct store_steps_news *o)
{
	return s->ops->steps_after(s, run, after, o);
}

int store_window_sum(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		     unsigned phase_mask, uint64_t *sum, int64_t *nsteps)
{
	struct store_iter *it;
	struct store_step step;
	size_t n = (size_t)run->layers * (size_t)run->experts;
	int64_t cnt = 0;
	int rc;

	if (s->ops->window_sum)
		return s->ops->window_sum(s, run, from, to, phase_mask, sum, nsteps);
	memset(sum, 0, n * sizeof(*sum));
	if ((rc = store_iter_new(s, run, from, to, phase_mask, &it)))
		return rc;
	while ((rc = store_iter_next(it, &step)) == 1) {
		for (size_t i = 0; i < n; i++)
			sum[i] += step.counts[i];
		cnt++;
	}
	store_iter_free(it);
	if (nsteps)
		*nsteps = cnt;
	return rc < 0 ? rc : 0;
}

/* ---- deployed placement ----------------------------------------------------- */

int store_deployed_list(struct store *s, const struct store_run *run,
			struct store_deployed_row **out, size_t *n)
{
	return s->ops->deployed_list(s, run, out, n);
}

int store_deployed_changes(struct store *s, const struct store_run *run, int64_t from,
			   int64_t to, int64_t **steps, size_t *n)
{
	struct store_deployed_row *d = NULL;
	size_t nd = 0, cnt = 0;
	int64_t *v;
	int rc;

	*steps = NULL;
	*n = 0;
	if (s->ops->deployed_changes)
		return s->ops->deployed_changes(s, run, from, to, steps, n);
	if ((rc = s->ops->deployed_list(s, run, &d, &nd)))
		return rc;
	if (!(v = malloc((nd ? nd : 1) * sizeof(*v)))) {
		store_deployed_rows_free(d, nd);
		return store_backend_seterr(s, UTIL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < nd; i++) /* rows come ordered by step */
		if (d[i].step >= from && d[i].step <= to && (!cnt || v[cnt - 1] != d[i].step))
			v[cnt++] = d[i].step;
	store_deployed_rows_free(d, nd);
	if (!cnt) {
		free(v);
		v = NULL;
	}
	*steps = v;
	*n = cnt;
	return 0;
}

/* The first (or, last != 0, the last) placement change in [from, to]:
 * 0 with *at, or UTIL_ENOTFOUND "no deployed placement recorded WHERE
 * step N". */
static int change_in(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		     int last, int64_t *at, const char *where, int64_t step)
{
	int64_t *v = NULL;
	size_t n = 0;
	int rc = from <= to ? store_deployed_changes(s, run, from, to, &v, &n) : 0;

	if (rc)
		return rc;
	if (n)
		*at = last ? v[n - 1] : v[0];
	free(v);
	return n ? 0
		 : store_backend_seterr(s, UTIL_ENOTFOUND,
					"no deployed placement recorded %s step %lld", where,
					(long long)step);
}

int store_deployed_last(struct store *s, const struct store_run *run, int64_t step, int64_t *from)
{
	if (s->ops->deployed_last)
		return s->ops->deployed_last(s, run, step, from);
	return change_in(s, run, STORE_STEP_MIN, step, 1, from, "at", step);
}

int store_deployed_next(struct store *s, const struct store_run *run, int64_t step, int64_t *next)
{
	if (s->ops->deployed_next)
		return s->ops->deployed_next(s, run, step, next);
	return change_in(s, run, step < STORE_STEP_MAX ? step + 1 : STORE_STEP_MAX + 1,
			 STORE_STEP_MAX, 0, next, "after", step);
}

/* The latest row per layer at or before `step`, checked as the SQLite
 * backend checks its rows. */
static int deployed_at_listed(struct store *s, const struct store_run *run, int64_t step,
			      int ranks, int slots, int32_t *phy2log, int64_t *from)
{
	struct store_deployed_row *d = NULL, **last = NULL;
	size_t nd = 0, P = (size_t)ranks * (size_t)slots;
	unsigned char *seen = NULL;
	int64_t eff = 0;
	int rc, found = 0;

	if ((rc = s->ops->deployed_list(s, run, &d, &nd)))
		return rc;
	last = calloc((size_t)run->layers, sizeof(struct store_deployed_row *));
	seen = malloc((size_t)run->experts);
	if (!last || !seen) {
		rc = store_backend_seterr(s, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nd && d[i].step <= step; i++)
		last[d[i].layer] = &d[i];
	for (int l = 0; l < run->layers; l++) {
		const struct store_deployed_row *r = last[l];

		if (!r)
			continue;
		if (r->ranks != ranks || r->slots != slots) {
			rc = store_backend_seterr(s, UTIL_ERANGE,
						  "deployed placement of layer %d is %d ranks x %d "
						  "slots, not %d x %d",
						  l, r->ranks, r->slots, ranks, slots);
			goto out;
		}
		memset(seen, 0, (size_t)run->experts);
		for (size_t i = 0; i < P; i++)
			seen[r->phy2log[i]] = 1;
		for (int e = 0; e < run->experts; e++)
			if (!seen[e]) {
				rc = store_backend_seterr(s, UTIL_EPARSE,
							  "deployed placement of layer %d is corrupt: "
							  "it gives expert %d no slot in '%s'",
							  l, e, s->path);
				goto out;
			}
		memcpy(phy2log + (size_t)l * P, r->phy2log, P * sizeof(int32_t));
		if (!found || r->step > eff)
			eff = r->step;
		found++;
	}
	if (found == 0)
		rc = store_backend_seterr(s, UTIL_ENOTFOUND,
					  "no deployed placement recorded at step %lld",
					  (long long)step);
	else if (found < run->layers)
		rc = store_backend_seterr(s, UTIL_EPARSE,
					  "deployed placement in '%s' is corrupt: it covers %d of %d "
					  "layers",
					  s->path, found, run->layers);
	if (from)
		*from = eff;
out:
	free(seen);
	free(last);
	store_deployed_rows_free(d, nd);
	return rc;
}

int store_deployed_at(struct store *s, const struct store_run *run, int64_t step, int ranks,
		      int slots, int32_t *phy2log, int64_t *from)
{
	if (s->ops->deployed_at)
		return s->ops->deployed_at(s, run, step, ranks, slots, phy2log, from);
	return deployed_at_listed(s, run, step, ranks, slots, phy2log, from);
}

/* ---- stored replays ---------------------------------------------------------- */

static int no_replay(struct store *s, int64_t id)
{
	return store_backend_seterr(s, UTIL_ENOTFOUND, "no replay %lld in '%s'", (long long)id,
				    s->path);
}

int store_replay_list(struct store *s, int64_t run, struct store_replay **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return s->ops->replay_list ? s->ops->replay_list(s, run, out, n) : 0;
}

int store_replay_get(struct store *s, int64_t id, struct store_replay *out)
{
	return s->ops->replay_get ? s->ops->replay_get(s, id, out) : no_replay(s, id);
}

int store_replay_series(struct store *s, int64_t replay, int layer, int64_t **steps,
			double **imbalance, double **base, size_t *n)
{
	if (s->ops->replay_series)
		return s->ops->replay_series(s, replay, layer, steps, imbalance, base, n);
	return no_replay(s, replay);
}

int store_replay_events(struct store *s, int64_t replay, struct store_replay_event **out,
			size_t *n)
{
	return s->ops->replay_events ? s->ops->replay_events(s, replay, out, n)
				     : no_replay(s, replay);
}

int store_replay_event_moves(struct store *s, int64_t replay, int layers, size_t n_events,
			     int64_t **bytes_out)
{
	if (s->ops->replay_event_moves)
		return s->ops->replay_event_moves(s, replay, layers, n_events, bytes_out);
	return no_replay(s, replay);
}

/*
 * sqlfn.c: SQL functions, table-valued functions and views over traces.
 * Start at store_sql_register() at the end: it registers the scalar
 * helpers, the counts_total aggregate, the eponymous virtual tables
 * expert_heat and heat_window, and creates the TEMP views in `views[]`.
 *
 * expert_heat is the way to the cells: its xBestIndex takes equality and
 * range constraints on run, step, layer and expert, and its cursor walks
 * the counts primary key (run, step, layer) with exactly those bounds,
 * one run at a time, so a query filtered on a run, a layer and a step
 * range decodes only the blobs it returns.  Every blob is checked by the
 * codec: a malformed one is an SQL error naming the row, never a crash.
 * The run's row in `runs` is read once per run (its shape within the
 * schema's limits), and each blob's value count and layer are compared
 * with it, so a blob that decodes but does not fit its run is an error
 * too.  Counts rows whose run has no row in `runs` have no shape to be
 * compared with and are expanded as they are.
 *
 * This file is also compiled into the loadable extension
 * (sqlext/moetrace_sqlite.c includes it after SQLITE_EXTENSION_INIT1), so
 * it calls SQLite only through the public API, allocates with sqlite3_*
 * and never aborts.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-connection state shared by the functions and modules: owned by the
 * expert_heat module (freed by its destructor when the connection closes). */
struct sqlfn_ctx {
	int64_t blobs_read;
	/* last static_phy2log() result, reused across rows */
	int cache_e, cache_r, cache_s;
	uint8_t *cache;
};

static void ctx_free(void *p)
{
	struct sqlfn_ctx *c = p;

	if (!c)
		return;
	sqlite3_free(c->cache);
	sqlite3_free(c);
}

/* ---- argument helpers ---------------------------------------------------- */

/* Decodes the counts blob in v into a new array (*out, sqlite3_free it);
 * returns the number of values or -1 after setting the function's error. */
static int64_t arg_counts(sqlite3_context *cx, const char *fn, sqlite3_value *v, uint32_t **out)
{
	const uint8_t *b;
	int len;
	int64_t n;

	*out = NULL;
	if (sqlite3_value_type(v) != SQLITE_BLOB) {
		char *m = sqlite3_mprintf(
			"%s: expected a counts blob, got %s", fn,
			sqlite3_value_type(v) == SQLITE_NULL ? "NULL" : "a non-blob value");
		sqlite3_result_error(cx, m ? m : fn, -1);
		sqlite3_free(m);
		return -1;
	}
	b = sqlite3_value_blob(v);
	len = sqlite3_value_bytes(v);
	n = store_codec_count(b, (size_t)len);
	if (n >= 0) {
		*out = sqlite3_malloc64((uint64_t)(n ? n : 1) * sizeof(uint32_t));
		if (!*out) {
			sqlite3_result_error_nomem(cx);
			return -1;
		}
		if (store_codec_decode(b, (size_t)len, *out, (size_t)n) == 0)
			return n;
		sqlite3_free(*out);
		*out = NULL;
	}
	{
		char *m = sqlite3_mprintf("%s: malformed counts blob (%d bytes)", fn, len);
		sqlite3_result_error(cx, m ? m : fn, -1);
		sqlite3_free(m);
	}
	return -1;
}

static void result_errorf(sqlite3_context *cx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void result_errorf(sqlite3_context *cx, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (!m) {
		sqlite3_result_error_nomem(cx);
		return;
	}
	sqlite3_result_error(cx, m, -1);
	sqlite3_free(m);
}

/* The SQL type of a value as a word, for messages. */
static const char *type_word(sqlite3_value *v)
{
	switch (sqlite3_value_type(v)) {
	case SQLITE_INTEGER: return "an integer";
	case SQLITE_FLOAT: return "a real";
	case SQLITE_TEXT: return "text";
	case SQLITE_BLOB: return "a blob";
	}
	return "NULL";
}

/* An integer argument (an integer, or text that reads as one as SQL's
 * numeric affinity has it: '3'): returns 0 with *out set, 1 if it is NULL
 * (the function's result is NULL then), or -1 after setting the function's
 * error, which names the argument and what it got ('x' is no expert). */
static int arg_int(sqlite3_context *cx, const char *fn, const char *what, sqlite3_value *v,
		   int64_t *out)
{
	if (sqlite3_value_type(v) == SQLITE_NULL)
		return 1;
	if (sqlite3_value_numeric_type(v) != SQLITE_INTEGER) {
		result_errorf(cx, "%s: %s must be an integer, got %s", fn, what, type_word(v));
		return -1;
	}
	*out = sqlite3_value_int64(v);
	return 0;
}

/* Parses a JSON array of integers, flat `[e, ...]` or one level nested
 * `[[e, ...], ...]` (rank-major).  Returns the value count, or -1 on a
 * syntax error; *rows gets the number of inner arrays (0 if flat), every
 * inner array must have the same length.  vals may be NULL to count. */
static int64_t parse_int_array(const char *s, int64_t *vals, int64_t cap, int *rows)
{
	int64_t n = 0, inner = -1, cur = 0;
	int depth = 0, nested = -1, nrows = 0;
	int expect_value = 1; /* after '[' or ',' */
	char prev = 0; /* last non-blank character */

	*rows = 0;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s != '[')
		return -1;
	for (; *s; s++) {
		char c = *s;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c != ']' && c != '[' && c != ',' && c != '-' && (c < '0' || c > '9'))
			return -1;
		if (c == ']' && expect_value && prev != '[')
			return -1; /* "[1,]" */
		prev = c;
		if (c == '[') {
			if (!expect_value || depth >= 2)
				return -1;
			depth++;
			if (depth == 2) {
				if (nested == 0)
					return -1;
				nested = 1;
				cur = 0;
			}
			expect_value = 1;
		} else if (c == ']') {
			if (depth == 2) {
				if (inner >= 0 && cur != inner)
					return -1;
				inner = cur;
				nrows++;
			}
			depth--;
			expect_value = 0;
			if (depth == 0) {
				s++;
				break;
			}
		} else if (c == ',') {
			if (expect_value || depth == 0)
				return -1;
			expect_value = 1;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			char *end;
			long long v;
			if (!expect_value)
				return -1;
			if (depth == 1) {
				if (nested == 1)
					return -1;
				nested = 0;
			}
			v = strtoll(s, &end, 10);
			if (end == s || *end == '.' || *end == 'e' || *end == 'E')
				return -1;
			if (vals) {
				if (n >= cap)
					return -1;
				vals[n] = v;
			}
			n++;
			cur++;
			s = end - 1;
			expect_value = 0;
		} else {
			return -1;
		}
	}
	if (depth != 0)
		return -1;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s)
		return -1;
	*rows = nrows;
	return n;
}

/* A placement: phy2log[ranks * slots], rank-major. */
struct placement {
	int32_t *p2l;
	int ranks, slots;
};

/* Reads a placement from argv[0] (int32 little-endian blob as in the
 * deployed table, or JSON text, flat or nested per rank) with the rank
 * count in argv[1] if argc > 1 (required for a blob or a flat array).
 * Checks every slot against `experts`.  Returns 0 or -1 (error set). */
static int arg_placement(sqlite3_context *cx, const char *fn, int argc, sqlite3_value **argv,
			 int64_t experts, struct placement *pl)
{
	int64_t n = 0, ranks = 0;
	int rows = 0;

	memset(pl, 0, sizeof(*pl));
	if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
		ranks = sqlite3_value_int64(argv[1]);
		if (sqlite3_value_numeric_type(argv[1]) != SQLITE_INTEGER || ranks <= 0 ||
		    ranks > STORE_MAX_SLOTS) {
			result_errorf(cx, "%s: ranks must be a positive integer", fn);
			return -1;
		}
	}
	if (sqlite3_value_type(argv[0]) == SQLITE_BLOB) {
		const uint8_t *b = sqlite3_value_blob(argv[0]);
		int len = sqlite3_value_bytes(argv[0]);
		if (len % 4 || len == 0 || len / 4 > STORE_MAX_SLOTS) {
			result_errorf(cx, "%s: a placement blob holds int32 slots, not %d bytes",
				      fn, len);
			return -1;
		}
		n = len / 4;
		pl->p2l = sqlite3_malloc64((uint64_t)n * sizeof(int32_t));
		if (!pl->p2l) {
			sqlite3_result_error_nomem(cx);
			return -1;
		}
		for (int64_t i = 0; i < n; i++)
			pl->p2l[i] = (int32_t)((uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
					       (uint32_t)b[4 * i + 2] << 16 |
					       (uint32_t)b[4 * i + 3] << 24);
	} else if (sqlite3_value_type(argv[0]) == SQLITE_TEXT) {
		const char *s = (const char *)sqlite3_value_text(argv[0]);
		int64_t *tmp;
		n = parse_int_array(s, NULL, 0, &rows);
		if (n <= 0 || n > STORE_MAX_SLOTS) {
			result_errorf(cx, "%s: the placement is not a JSON array of expert ids",
				      fn);
			return -1;
		}
		tmp = sqlite3_malloc64((uint64_t)n * sizeof(int64_t));
		pl->p2l = sqlite3_malloc64((uint64_t)n * sizeof(int32_t));
		if (!tmp || !pl->p2l) {
			sqlite3_free(tmp);
			sqlite3_free(pl->p2l);
			pl->p2l = NULL;
			sqlite3_result_error_nomem(cx);
			return -1;
		}
		parse_int_array(s, tmp, n, &rows);
		for (int64_t i = 0; i < n; i++)
			pl->p2l[i] = tmp[i] < 0 || tmp[i] >= experts ? -1 : (int32_t)tmp[i];
		sqlite3_free(tmp);
		if (rows) {
			if (ranks && ranks != rows) {
				result_errorf(cx, "%s: the placement has %d ranks, not %lld", fn,
					      rows, (long long)ranks);
				sqlite3_free(pl->p2l);
				pl->p2l = NULL;
				return -1;
			}
			ranks = rows;
		}
	} else {
		result_errorf(cx, "%s: expected a placement (JSON array or phy2log blob)", fn);
		return -1;
	}
	if (!ranks) {
		result_errorf(cx, "%s: give the number of ranks for a flat placement", fn);
		goto fail;
	}
	if (n % ranks) {
		result_errorf(cx, "%s: %lld slots do not split over %lld ranks", fn, (long long)n,
			      (long long)ranks);
		goto fail;
	}
	for (int64_t i = 0; i < n; i++)
		if (pl->p2l[i] < 0 || pl->p2l[i] >= experts) {
			result_errorf(cx, "%s: slot %lld holds no expert in [0, %lld)", fn,
				      (long long)i, (long long)experts);
			goto fail;
		}
	pl->ranks = (int)ranks;
	pl->slots = (int)(n / ranks);
	return 0;
fail:
	sqlite3_free(pl->p2l);
	pl->p2l = NULL;
	return -1;
}

/* Device loads under a placement (tokens of a replicated expert split
 * evenly among its replicas): load[ranks].  Returns 0 or -1 (no memory). */
static int device_loads(const uint32_t *heat, int64_t experts, const struct placement *pl,
			double *load)
{
	int *cnt = sqlite3_malloc64((uint64_t)experts * sizeof(int));

	if (!cnt)
		return -1;
	memset(cnt, 0, (size_t)experts * sizeof(int));
	for (int64_t i = 0; i < (int64_t)pl->ranks * pl->slots; i++)
		cnt[pl->p2l[i]]++;
	for (int r = 0; r < pl->ranks; r++) {
		double sum = 0;
		for (int k = 0; k < pl->slots; k++) {
			int e = pl->p2l[(size_t)r * (size_t)pl->slots + (size_t)k];
			sum += (double)heat[e] / cnt[e];
		}
		load[r] = sum;
	}
	sqlite3_free(cnt);
	return 0;
}

/* max / mean; 0 when every load is zero: the layer got no token, did no
 * work and has no imbalance (docs/cli.md), which SQL says with NULL where
 * analyze_imbalance says 1.0 to callers that leave such layers out. */
static double imbalance_of(const double *load, int n)
{
	double sum = 0, mx = 0;

	for (int i = 0; i < n; i++) {
		sum += load[i];
		if (load[i] > mx)
			mx = load[i];
	}
	return sum <= 0 ? 0 : mx / (sum / n);
}

/* ---- scalar functions ------------------------------------------------------ */

static void result_str(sqlite3_context *cx, sqlite3_str *str)
{
	int rc = sqlite3_str_errcode(str);
	int len = sqlite3_str_length(str);
	char *s = sqlite3_str_finish(str);

	if (rc != SQLITE_OK || !s) {
		sqlite3_free(s);
		sqlite3_result_error_nomem(cx);
		return;
	}
	sqlite3_result_text(cx, s, len, sqlite3_free);
}

/* counts_json(blob) -> '[t0, t1, ...]' */
static void fn_counts_json(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	uint32_t *v;
	int64_t n = arg_counts(cx, "counts_json", argv[0], &v);
	sqlite3_str *str;

	(void)argc;
	if (n < 0)
		return;
	str = sqlite3_str_new(sqlite3_context_db_handle(cx));
	sqlite3_str_appendchar(str, 1, '[');
	for (int64_t i = 0; i < n; i++)
		sqlite3_str_appendf(str, i ? ",%u" : "%u", v[i]);
	sqlite3_str_appendchar(str, 1, ']');
	sqlite3_free(v);
	result_str(cx, str);
}

enum { AGG_SUM, AGG_MAX, AGG_ARGMAX, AGG_N };

/* counts_sum / counts_max / counts_argmax / counts_n (blob) */
static void fn_counts_reduce(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	static const char *const names[] = { "counts_sum", "counts_max", "counts_argmax",
					     "counts_n" };
	int what = (int)(intptr_t)sqlite3_user_data(cx);
	uint32_t *v;
	int64_t n = arg_counts(cx, names[what], argv[0], &v), arg = -1;
	uint64_t acc = 0;

	(void)argc;
	if (n < 0)
		return;
	for (int64_t i = 0; i < n; i++) {
		if (what == AGG_SUM)
			acc += v[i];
		else if (arg < 0 || v[i] > acc) {
			acc = v[i];
			arg = i;
		}
	}
	sqlite3_free(v);
	switch (what) {
	case AGG_N: sqlite3_result_int64(cx, n); break;
	case AGG_ARGMAX:
		if (arg < 0)
			sqlite3_result_null(cx);
		else
			sqlite3_result_int64(cx, arg);
		break;
	default:
		if (what == AGG_MAX && n == 0)
			sqlite3_result_null(cx);
		else
			sqlite3_result_int64(cx, (sqlite3_int64)acc);
	}
}

/* counts_at(blob, expert) -> tokens, NULL if expert is NULL or out of
 * range; an expert that is not an integer is an error, not expert 0 */
static void fn_counts_at(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	uint32_t *v;
	int64_t e = 0, n;
	int a;

	(void)argc;
	if ((a = arg_int(cx, "counts_at", "expert", argv[1], &e)) < 0)
		return;
	if ((n = arg_counts(cx, "counts_at", argv[0], &v)) < 0)
		return;
	if (a == 1 || e < 0 || e >= n)
		sqlite3_result_null(cx);
	else
		sqlite3_result_int64(cx, v[e]);
	sqlite3_free(v);
}

/* counts_encode('[t0, ...]') -> counts blob (the store's codec) */
static void fn_counts_encode(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const char *s;
	int rows;
	int64_t n, *tmp = NULL;
	uint32_t *v = NULL;
	uint8_t *out = NULL;

	(void)argc;
	if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
		result_errorf(cx, "counts_encode: expected JSON text, got %s", type_word(argv[0]));
		return;
	}
	s = (const char *)sqlite3_value_text(argv[0]);
	if (!s || (n = parse_int_array(s, NULL, 0, &rows)) < 0 || rows || n > STORE_MAX_EXPERTS) {
		result_errorf(cx, "counts_encode: expected a JSON array of at most %d token counts",
			      STORE_MAX_EXPERTS);
		return;
	}
	tmp = sqlite3_malloc64((uint64_t)(n + 1) * sizeof(*tmp));
	v = sqlite3_malloc64((uint64_t)(n + 1) * sizeof(*v));
	out = sqlite3_malloc64(store_codec_bound((size_t)n));
	if (!tmp || !v || !out) {
		sqlite3_result_error_nomem(cx);
		goto out;
	}
	parse_int_array(s, tmp, n, &rows);
	for (int64_t i = 0; i < n; i++) {
		if (tmp[i] < 0 || tmp[i] > (int64_t)UINT32_MAX) {
			result_errorf(cx, "counts_encode: value %lld at %lld is not a uint32",
				      (long long)tmp[i], (long long)i);
			goto out;
		}
		v[i] = (uint32_t)tmp[i];
	}
	sqlite3_result_blob64(cx, out, store_codec_encode(v, (size_t)n, out), SQLITE_TRANSIENT);
out:
	sqlite3_free(tmp);
	sqlite3_free(v);
	sqlite3_free(out);
}

/* counts_imbalance(blob, placement [, ranks]) and device_loads(...);
 * counts_imbalance is NULL for a layer without tokens, device_loads gives
 * its loads (zeros) all the same. */
static void fn_placement_loads(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	int want_json = sqlite3_user_data(cx) != NULL;
	const char *fn = want_json ? "device_loads" : "counts_imbalance";
	struct placement pl;
	uint32_t *v;
	double *load = NULL;
	int64_t n = arg_counts(cx, fn, argv[0], &v);

	if (n < 0)
		return;
	if (arg_placement(cx, fn, argc - 1, argv + 1, n, &pl)) {
		sqlite3_free(v);
		return;
	}
	load = sqlite3_malloc64((uint64_t)pl.ranks * sizeof(double));
	if (!load || device_loads(v, n, &pl, load)) {
		sqlite3_result_error_nomem(cx);
	} else if (want_json) {
		sqlite3_str *str = sqlite3_str_new(sqlite3_context_db_handle(cx));
		sqlite3_str_appendchar(str, 1, '[');
		for (int r = 0; r < pl.ranks; r++)
			sqlite3_str_appendf(str, r ? ",%.17g" : "%.17g", load[r]);
		sqlite3_str_appendchar(str, 1, ']');
		result_str(cx, str);
	} else {
		double imb = imbalance_of(load, pl.ranks);

		if (imb > 0)
			sqlite3_result_double(cx, imb);
		else
			sqlite3_result_null(cx); /* no token: not scored */
	}
	sqlite3_free(load);
	sqlite3_free(pl.p2l);
	sqlite3_free(v);
}

/* static_phy2log(experts, ranks, slots) -> blob: slot p holds p % experts,
 * the engines' default layout (analyze_static_phy2log). */
static void fn_static_phy2log(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	static const char *const what[] = { "experts", "ranks", "slots" };
	struct sqlfn_ctx *c = sqlite3_user_data(cx);
	int64_t arg[3] = { 0, 0, 0 };
	int null = 0;

	(void)argc;
	for (int i = 0; i < 3; i++) {
		int a = arg_int(cx, "static_phy2log", what[i], argv[i], &arg[i]);
		if (a < 0)
			return;
		null |= a;
	}
	if (null) {
		sqlite3_result_null(cx);
		return;
	}
	int64_t e = arg[0], r = arg[1], s = arg[2];
	if (e <= 0 || e > STORE_MAX_EXPERTS || r <= 0 || s <= 0 || r > STORE_MAX_SLOTS ||
	    s > STORE_MAX_SLOTS || r * s > STORE_MAX_SLOTS || r * s < e) {
		result_errorf(cx,
			      "static_phy2log: %lld ranks x %lld slots cannot hold %lld experts",
			      (long long)r, (long long)s, (long long)e);
		return;
	}
	if (!c->cache || c->cache_e != e || c->cache_r != r || c->cache_s != s) {
		uint8_t *b = sqlite3_realloc64(c->cache, (uint64_t)(r * s) * 4);
		if (!b) {
			sqlite3_result_error_nomem(cx);
			return;
		}
		for (int64_t p = 0; p < r * s; p++) {
			uint32_t x = (uint32_t)(p % e);
			b[4 * p] = (uint8_t)x;
			b[4 * p + 1] = (uint8_t)(x >> 8);
			b[4 * p + 2] = (uint8_t)(x >> 16);
			b[4 * p + 3] = (uint8_t)(x >> 24);
		}
		c->cache = b;
		c->cache_e = (int)e;
		c->cache_r = (int)r;
		c->cache_s = (int)s;
	}
	sqlite3_result_blob64(cx, c->cache, (uint64_t)(r * s) * 4, SQLITE_TRANSIENT);
}

/* phy2log_json(blob) -> '[e0, e1, ...]' of an int32 placement blob */
static void fn_phy2log_json(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const uint8_t *b;
	int len;
	sqlite3_str *str;

	(void)argc;
	if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
		result_errorf(cx, "phy2log_json: expected a placement blob, got %s",
			      type_word(argv[0]));
		return;
	}
	b = sqlite3_value_blob(argv[0]);
	len = sqlite3_value_bytes(argv[0]);
	if (len % 4) {
		result_errorf(cx, "phy2log_json: a placement blob holds int32 slots, not %d bytes",
			      len);
		return;
	}
	str = sqlite3_str_new(sqlite3_context_db_handle(cx));
	sqlite3_str_appendchar(str, 1, '[');
	for (int i = 0; i < len / 4; i++) {
		const uint8_t *q = b + 4 * (size_t)i;
		int32_t x = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
				      (uint32_t)q[3] << 24);
		sqlite3_str_appendf(str, i ? ",%d" : "%d", x);
	}
	sqlite3_str_appendchar(str, 1, ']');
	result_str(cx, str);
}

/* moetrace_model(name, field) -> a preset's figure, NULL if unknown */
static void fn_model(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const char *name, *field;
	const struct store_model *m;

	(void)argc;
	for (int i = 0; i < 2; i++)
		if (sqlite3_value_type(argv[i]) != SQLITE_TEXT &&
		    sqlite3_value_type(argv[i]) != SQLITE_NULL) {
			result_errorf(cx, "moetrace_model: the %s must be text, got %s",
				      i ? "field" : "preset name", type_word(argv[i]));
			return;
		}
	name = (const char *)sqlite3_value_text(argv[0]);
	field = (const char *)sqlite3_value_text(argv[1]);
	m = name && *name ? store_model_find(name) : NULL;
	if (!m || !field) {
		sqlite3_result_null(cx);
		return;
	}
	/* clang-format off */
	const struct { const char *f; int v; } tab[] = {
		{ "layers", m->layers }, { "experts", m->experts }, { "topk", m->topk },
		{ "hidden", m->hidden }, { "inter", m->inter }, { "first_layer", m->first_layer },
		{ "layer_step", m->layer_step }, { "groups", m->groups }, { "ranks", m->ranks },
		{ "slots", m->slots }, { "ranks_per_node", m->ranks_per_node },
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(tab[i].f, field)) {
			sqlite3_result_int(cx, tab[i].v);
			return;
		}
	if (!strcmp(field, "label"))
		sqlite3_result_text(cx, m->label, -1, SQLITE_STATIC);
	else
		result_errorf(cx, "moetrace_model: no field '%s'", field);
}

static void fn_blobs_read(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	struct sqlfn_ctx *c = sqlite3_user_data(cx);

	(void)argc;
	(void)argv;
	sqlite3_result_int64(cx, c->blobs_read);
}

static void fn_version(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
#ifdef MOETRACE_VERSION
	sqlite3_result_text(cx, MOETRACE_VERSION, -1, SQLITE_STATIC);
#else
	sqlite3_result_null(cx);
#endif
}

/* ---- counts_total aggregate: element-wise sums as a JSON array ----------- */

struct total_acc {
	uint64_t *sum;
	int64_t n;
	int started;
};

static void agg_total_step(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	struct total_acc *a = sqlite3_aggregate_context(cx, sizeof(*a));
	uint32_t *v;
	int64_t n;

	(void)argc;
	if (!a) {
		sqlite3_result_error_nomem(cx);
		return;
	}
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
		return;
	if ((n = arg_counts(cx, "counts_total", argv[0], &v)) < 0)
		return;
	if (!a->started) {
		a->sum = sqlite3_malloc64((uint64_t)(n ? n : 1) * sizeof(uint64_t));
		if (!a->sum) {
			sqlite3_free(v);
			sqlite3_result_error_nomem(cx);
			return;
		}
		memset(a->sum, 0, (size_t)(n ? n : 1) * sizeof(uint64_t));
		a->n = n;
		a->started = 1;
	} else if (n != a->n) {
		sqlite3_free(v);
		result_errorf(cx, "counts_total: blobs of %lld and %lld experts do not add up",
			      (long long)a->n, (long long)n);
		return;
	}
	for (int64_t i = 0; i < n; i++)
		a->sum[i] += v[i];
	sqlite3_free(v);
}

static void agg_total_final(sqlite3_context *cx)
{
	struct total_acc *a = sqlite3_aggregate_context(cx, 0);
	sqlite3_str *str;

	if (!a || !a->started) {
		if (a)
			sqlite3_free(a->sum);
		sqlite3_result_null(cx);
		return;
	}
	str = sqlite3_str_new(sqlite3_context_db_handle(cx));
	sqlite3_str_appendchar(str, 1, '[');
	for (int64_t i = 0; i < a->n; i++)
		sqlite3_str_appendf(str, i ? ",%llu" : "%llu", (unsigned long long)a->sum[i]);
	sqlite3_str_appendchar(str, 1, ']');
	sqlite3_free(a->sum);
	a->sum = NULL;
	result_str(cx, str);
}

/* ---- expert_heat: one row per (run, step, layer, expert) ------------------ */

enum { EH_RUN, EH_STEP, EH_LAYER, EH_EXPERT, EH_TOKENS };

struct eh_vtab {
	sqlite3_vtab base;
	sqlite3 *db;
	struct sqlfn_ctx *ctx;
};

/* The shape of one run, for checking its counts blobs: layers < 0 when the
 * run has no row in `runs` (nothing to check against). */
struct run_shape {
	sqlite3_stmt *st;
	int64_t layers, experts;
};

static int vt_error(sqlite3_vtab *vt, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reads run's row into sh (preparing sh->st on first use); an impossible
 * shape is an error, as when the store reads runs (store_int_shape_ok). */
static int run_shape_get(sqlite3_vtab *vt, sqlite3 *db, const char *fn, int64_t run,
			 struct run_shape *sh)
{
	int rc;

	if (!sh->st && sqlite3_prepare_v2(db,
					  "SELECT layers, experts, topk, ranks, slots, ranks_per_node "
					  "FROM main.runs WHERE run = ?1",
					  -1, &sh->st, NULL) != SQLITE_OK)
		return vt_error(vt, SQLITE_ERROR, "%s: this database holds no moetrace trace (%s)",
				fn, sqlite3_errmsg(db));
	sqlite3_reset(sh->st);
	sqlite3_bind_int64(sh->st, 1, run);
	rc = sqlite3_step(sh->st);
	sh->layers = sh->experts = -1;
	if (rc == SQLITE_DONE)
		return SQLITE_OK;
	if (rc != SQLITE_ROW)
		return vt_error(vt, rc, "%s: %s", fn, sqlite3_errmsg(db));
	int64_t v[6];
	for (int i = 0; i < 6; i++)
		v[i] = sqlite3_column_int64(sh->st, i);
	sqlite3_reset(sh->st);
	if (!store_int_shape_ok(v[0], v[1], v[2], v[3], v[4], v[5]))
		return vt_error(vt, SQLITE_CORRUPT,
				"%s: run %lld has an impossible shape (%lld layers x %lld experts, "
				"top-%lld, %lld ranks x %lld slots): corrupt database?",
				fn, (long long)run, (long long)v[0], (long long)v[1], (long long)v[2],
				(long long)v[3], (long long)v[4]);
	sh->layers = v[0];
	sh->experts = v[1];
	return SQLITE_OK;
}

/* Does a blob of n values at (run, step, layer) fit the run's shape?  O(1):
 * the codec has already read n from the blob's header. */
static int run_shape_fits(sqlite3_vtab *vt, const char *fn, const struct run_shape *sh,
			  int64_t run, int64_t step, int64_t layer, int64_t n)
{
	if (sh->layers < 0)
		return SQLITE_OK;
	if (layer < 0 || layer >= sh->layers)
		return vt_error(vt, SQLITE_CORRUPT,
				"%s: counts of run %lld step %lld layer %lld: the run has %lld layers",
				fn, (long long)run, (long long)step, (long long)layer,
				(long long)sh->layers);
	if (n != sh->experts)
		return vt_error(vt, SQLITE_CORRUPT,
				"%s: counts of run %lld step %lld layer %lld: %lld values, the run "
				"has %lld experts",
				fn, (long long)run, (long long)step, (long long)layer, (long long)n,
				(long long)sh->experts);
	return SQLITE_OK;
}

struct eh_cursor {
	sqlite3_vtab_cursor base;
	sqlite3_stmt *next_run; /* skip scan over the runs present in counts */
	sqlite3_stmt *rows; /* counts rows of one run within the bounds */
	struct run_shape shape; /* of the current run */
	int64_t lo[4], hi[4]; /* bounds on run, step, layer, expert */
	int64_t run, step, rowid;
	int layer;
	uint32_t *v;
	int64_t n, cap, i, end; /* decoded values, current and last expert */
	int eof;
};

static int eh_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
		      char **err)
{
	struct eh_vtab *t;
	int rc;

	(void)argc;
	(void)argv;
	(void)err;
	rc = sqlite3_declare_vtab(db, "CREATE TABLE x(run INTEGER, step INTEGER, layer INTEGER, "
				      "expert INTEGER, tokens INTEGER)");
	if (rc != SQLITE_OK)
		return rc;
	t = sqlite3_malloc(sizeof(*t));
	if (!t)
		return SQLITE_NOMEM;
	memset(t, 0, sizeof(*t));
	t->db = db;
	t->ctx = aux;
	sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
	*out = &t->base;
	return SQLITE_OK;
}

static int vt_disconnect(sqlite3_vtab *vt)
{
	sqlite3_free(vt);
	return SQLITE_OK;
}

static const char *const eh_cols[] = { "run", "step", "layer", "expert" };

/* idxStr names the constraint behind each argv value, readable in EXPLAIN
 * QUERY PLAN: "run=,step>=,step<=" (operators =, >, >=, <, <=). */
static int eh_best_index(sqlite3_vtab *vt, sqlite3_index_info *ii)
{
	sqlite3_str *ops = sqlite3_str_new(NULL);
	int nargs = 0, has[4] = { 0 }, ranged[4] = { 0 };
	double rows = 1e9;

	(void)vt;
	for (int i = 0; i < ii->nConstraint && nargs < 30; i++) {
		const struct sqlite3_index_constraint *c = &ii->aConstraint[i];
		const char *op;
		if (!c->usable || c->iColumn < EH_RUN || c->iColumn > EH_EXPERT)
			continue;
		switch (c->op) {
		case SQLITE_INDEX_CONSTRAINT_EQ: op = "="; break;
		case SQLITE_INDEX_CONSTRAINT_GT: op = ">"; break;
		case SQLITE_INDEX_CONSTRAINT_GE: op = ">="; break;
		case SQLITE_INDEX_CONSTRAINT_LT: op = "<"; break;
		case SQLITE_INDEX_CONSTRAINT_LE: op = "<="; break;
		default: continue;
		}
		sqlite3_str_appendf(ops, "%s%s%s", nargs ? "," : "", eh_cols[c->iColumn], op);
		nargs++;
		ii->aConstraintUsage[i].argvIndex = nargs;
		/* SQLite re-checks: bounds from non-integer values are widened */
		ii->aConstraintUsage[i].omit = 0;
		if (op[0] == '=')
			has[c->iColumn] = 1;
		else
			ranged[c->iColumn]++;
	}
	/* rough shape of a trace: 10 runs, 1e5 steps, 100 layers, 100 experts */
	if (has[EH_RUN])
		rows /= 10;
	if (has[EH_STEP])
		rows /= 1e5;
	else if (ranged[EH_STEP])
		rows /= ranged[EH_STEP] > 1 ? 1000 : 10;
	if (has[EH_LAYER])
		rows /= 100;
	else if (ranged[EH_LAYER])
		rows /= 4;
	if (has[EH_EXPERT])
		rows /= 100;
	ii->estimatedRows = (sqlite3_int64)(rows < 1 ? 1 : rows);
	ii->estimatedCost = rows < 1 ? 1 : rows;
	ii->idxNum = nargs;
	if (sqlite3_str_errcode(ops) != SQLITE_OK) {
		sqlite3_free(sqlite3_str_finish(ops));
		return SQLITE_NOMEM;
	}
	ii->idxStr = sqlite3_str_finish(ops);
	ii->needToFreeIdxStr = 1;
	/* Rows come out ordered by run, step, layer, expert, unless an IN list
	 * makes SQLite call xFilter once per value. */
	{
		int ok = ii->nOrderBy > 0;
		for (int i = 0; i < ii->nOrderBy; i++)
			if (ii->aOrderBy[i].iColumn != i || ii->aOrderBy[i].desc)
				ok = 0;
		for (int i = 0; i < ii->nConstraint && ok; i++)
			if (ii->aConstraintUsage[i].argvIndex > 0 &&
			    ii->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_EQ &&
			    sqlite3_vtab_in(ii, i, -1))
				ok = 0;
		ii->orderByConsumed = ok;
	}
	return SQLITE_OK;
}

static int eh_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
	struct eh_cursor *c = sqlite3_malloc(sizeof(*c));

	(void)vt;
	if (!c)
		return SQLITE_NOMEM;
	memset(c, 0, sizeof(*c));
	c->eof = 1;
	*out = &c->base;
	return SQLITE_OK;
}

static int eh_close(sqlite3_vtab_cursor *cur)
{
	struct eh_cursor *c = (struct eh_cursor *)cur;

	sqlite3_finalize(c->next_run);
	sqlite3_finalize(c->rows);
	sqlite3_finalize(c->shape.st);
	sqlite3_free(c->v);
	sqlite3_free(c);
	return SQLITE_OK;
}

static int vt_error(sqlite3_vtab *vt, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sqlite3_free(vt->zErrMsg);
	vt->zErrMsg = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	return rc;
}

static int eh_prepare(struct eh_cursor *c, struct eh_vtab *t)
{
	if (c->rows)
		return SQLITE_OK;
	if (sqlite3_prepare_v2(t->db,
			       "SELECT run FROM main.counts WHERE run BETWEEN ?1 AND ?2 "
			       "ORDER BY run LIMIT 1",
			       -1, &c->next_run, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(t->db,
			       "SELECT step, layer, data FROM main.counts WHERE run = ?1 "
			       "AND step BETWEEN ?2 AND ?3 AND layer BETWEEN ?4 AND ?5 "
			       "ORDER BY step, layer",
			       -1, &c->rows, NULL) != SQLITE_OK) {
		int rc = vt_error(&t->base, SQLITE_ERROR,
				  "expert_heat: this database holds no moetrace trace (%s)",
				  sqlite3_errmsg(t->db));
		sqlite3_finalize(c->next_run);
		c->next_run = NULL;
		return rc;
	}
	return SQLITE_OK;
}

/* Moves to the first run >= lo[RUN] with counts rows; eof when none. */
static int eh_seek_run(struct eh_cursor *c, struct eh_vtab *t)
{
	int rc;

	if (c->lo[EH_RUN] > c->hi[EH_RUN]) {
		c->eof = 1;
		return SQLITE_OK;
	}
	sqlite3_reset(c->next_run);
	sqlite3_bind_int64(c->next_run, 1, c->lo[EH_RUN]);
	sqlite3_bind_int64(c->next_run, 2, c->hi[EH_RUN]);
	rc = sqlite3_step(c->next_run);
	if (rc == SQLITE_DONE) {
		c->eof = 1;
		return SQLITE_OK;
	}
	if (rc != SQLITE_ROW)
		return vt_error(&t->base, rc, "expert_heat: %s", sqlite3_errmsg(t->db));
	c->run = sqlite3_column_int64(c->next_run, 0);
	sqlite3_reset(c->next_run);
	if ((rc = run_shape_get(&t->base, t->db, "expert_heat", c->run, &c->shape)) != SQLITE_OK)
		return rc;
	sqlite3_reset(c->rows);
	sqlite3_bind_int64(c->rows, 1, c->run);
	sqlite3_bind_int64(c->rows, 2, c->lo[EH_STEP]);
	sqlite3_bind_int64(c->rows, 3, c->hi[EH_STEP]);
	sqlite3_bind_int64(c->rows, 4, c->lo[EH_LAYER]);
	sqlite3_bind_int64(c->rows, 5, c->hi[EH_LAYER]);
	return SQLITE_OK;
}

/* Loads the next counts row with at least one expert in bounds. */
static int eh_next_row(struct eh_cursor *c)
{
	struct eh_vtab *t = (struct eh_vtab *)c->base.pVtab;
	int rc;

	for (;;) {
		if (c->eof)
			return SQLITE_OK;
		rc = sqlite3_step(c->rows);
		if (rc == SQLITE_DONE) {
			/* next run */
			if (c->run == INT64_MAX) {
				c->eof = 1;
				return SQLITE_OK;
			}
			c->lo[EH_RUN] = c->run + 1;
			if ((rc = eh_seek_run(c, t)) != SQLITE_OK)
				return rc;
			continue;
		}
		if (rc != SQLITE_ROW)
			return vt_error(&t->base, rc, "expert_heat: %s", sqlite3_errmsg(t->db));
		c->step = sqlite3_column_int64(c->rows, 0);
		int64_t layer = sqlite3_column_int64(c->rows, 1);
		c->layer = (int)layer;
		const uint8_t *b = sqlite3_column_blob(c->rows, 2);
		int len = sqlite3_column_bytes(c->rows, 2);
		int64_t n = store_codec_count(b, (size_t)len);
		t->ctx->blobs_read++;
		if (n >= 0 && n > c->cap) {
			uint32_t *nv = sqlite3_realloc64(c->v, (uint64_t)n * sizeof(uint32_t));
			if (!nv)
				return SQLITE_NOMEM;
			c->v = nv;
			c->cap = n;
		}
		if (n < 0 || (n > 0 && store_codec_decode(b, (size_t)len, c->v, (size_t)n)))
			return vt_error(&t->base, SQLITE_CORRUPT,
					"expert_heat: malformed counts blob at run %lld step %lld "
					"layer %d",
					(long long)c->run, (long long)c->step, c->layer);
		/* a blob that decodes must still fit its run */
		if ((rc = run_shape_fits(&t->base, "expert_heat", &c->shape, c->run, c->step,
					 layer, n)) != SQLITE_OK)
			return rc;
		c->n = n;
		c->i = c->lo[EH_EXPERT] > 0 ? c->lo[EH_EXPERT] : 0;
		c->end = c->hi[EH_EXPERT] < n - 1 ? c->hi[EH_EXPERT] : n - 1;
		if (c->i <= c->end)
			return SQLITE_OK;
	}
}

static void bound(int64_t *lo, int64_t *hi, char op, sqlite3_value *v)
{
	int t = sqlite3_value_numeric_type(v);
	int64_t x;

	if (t == SQLITE_NULL) {
		/* comparisons with NULL are never true */
		*lo = INT64_MAX;
		*hi = INT64_MIN;
		return;
	}
	if (t == SQLITE_FLOAT) {
		double d = sqlite3_value_double(v);
		if (d != d)
			return;
		if (d >= 9.2e18 || d <= -9.2e18) {
			if ((d > 0 && (op == '>' || op == 'g' || op == '=')) ||
			    (d < 0 && (op == '<' || op == 'l' || op == '=')))
				*lo = INT64_MAX, *hi = INT64_MIN;
			return;
		}
		/* the integers that pass the test against d */
		if (op == '=' && d != floor(d)) {
			*lo = INT64_MAX;
			*hi = INT64_MIN;
			return;
		}
		switch (op) {
		case '>':
			x = (int64_t)floor(d) + 1;
			op = 'g';
			break;
		case 'g': x = (int64_t)ceil(d); break;
		case '<':
			x = (int64_t)ceil(d) - 1;
			op = 'l';
			break;
		case 'l': x = (int64_t)floor(d); break;
		default: x = (int64_t)d;
		}
	} else if (t == SQLITE_INTEGER) {
		x = sqlite3_value_int64(v);
	} else {
		return; /* text or blob compares above any number: leave to SQLite */
	}
	switch (op) {
	case '=':
		if (x > *lo)
			*lo = x;
		if (x < *hi)
			*hi = x;
		break;
	case '>':
		if (x == INT64_MAX)
			*lo = INT64_MAX, *hi = INT64_MIN;
		else if (x + 1 > *lo)
			*lo = x + 1;
		break;
	case 'g':
		if (x > *lo)
			*lo = x;
		break;
	case '<':
		if (x == INT64_MIN)
			*lo = INT64_MAX, *hi = INT64_MIN;
		else if (x - 1 < *hi)
			*hi = x - 1;
		break;
	case 'l':
		if (x < *hi)
			*hi = x;
		break;
	}
}

static int eh_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
		     sqlite3_value **argv)
{
	struct eh_cursor *c = (struct eh_cursor *)cur;
	struct eh_vtab *t = (struct eh_vtab *)cur->pVtab;
	int rc;

	for (int k = 0; k < 4; k++) {
		c->lo[k] = INT64_MIN;
		c->hi[k] = INT64_MAX;
	}
	for (int k = 0; k < argc && k < idx_num && idx_str && *idx_str; k++) {
		int col = 0;
		char op;
		while (col < 3 && strncmp(idx_str, eh_cols[col], strlen(eh_cols[col])))
			col++;
		idx_str += strlen(eh_cols[col]);
		/* '=', '>', 'g' (>=), '<', 'l' (<=) */
		op = idx_str[1] == '=' ? (idx_str[0] == '>' ? 'g' : 'l') : idx_str[0];
		idx_str += op == 'g' || op == 'l' ? 2 : 1;
		if (*idx_str == ',')
			idx_str++;
		bound(&c->lo[col], &c->hi[col], op, argv[k]);
	}
	c->eof = 0;
	c->rowid = 0;
	c->n = 0;
	for (int k = 0; k < 4; k++)
		if (c->lo[k] > c->hi[k])
			c->eof = 1;
	if (c->eof)
		return SQLITE_OK;
	if ((rc = eh_prepare(c, t)) != SQLITE_OK || (rc = eh_seek_run(c, t)) != SQLITE_OK)
		return rc;
	return eh_next_row(c);
}

static int eh_next(sqlite3_vtab_cursor *cur)
{
	struct eh_cursor *c = (struct eh_cursor *)cur;

	c->rowid++;
	if (++c->i <= c->end)
		return SQLITE_OK;
	return eh_next_row(c);
}

static int eh_eof(sqlite3_vtab_cursor *cur)
{
	return ((struct eh_cursor *)cur)->eof;
}

static int eh_column(sqlite3_vtab_cursor *cur, sqlite3_context *cx, int col)
{
	struct eh_cursor *c = (struct eh_cursor *)cur;

	switch (col) {
	case EH_RUN: sqlite3_result_int64(cx, c->run); break;
	case EH_STEP: sqlite3_result_int64(cx, c->step); break;
	case EH_LAYER: sqlite3_result_int(cx, c->layer); break;
	case EH_EXPERT: sqlite3_result_int64(cx, c->i); break;
	default: sqlite3_result_int64(cx, c->v[c->i]); break;
	}
	return SQLITE_OK;
}

static int vt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
	*rowid = ((struct eh_cursor *)cur)->rowid;
	return SQLITE_OK;
}

static const sqlite3_module expert_heat_module = {
	.iVersion = 0,
	.xCreate = NULL, /* eponymous only */
	.xConnect = eh_connect,
	.xBestIndex = eh_best_index,
	.xDisconnect = vt_disconnect,
	.xDestroy = vt_disconnect,
	.xOpen = eh_open,
	.xClose = eh_close,
	.xFilter = eh_filter,
	.xNext = eh_next,
	.xEof = eh_eof,
	.xColumn = eh_column,
	.xRowid = vt_rowid,
};

/* ---- heat_window(run, layer [, from [, to]]): summed heat per expert ------ */

enum { HW_EXPERT, HW_TOKENS, HW_STEPS, HW_RUN, HW_LAYER, HW_FROM, HW_TO };

struct hw_cursor {
	sqlite3_vtab_cursor base;
	sqlite3_stmt *st;
	struct run_shape shape;
	int64_t args[4]; /* run, layer, from, to */
	uint64_t *sum;
	uint32_t *v;
	int64_t n, i, steps;
};

static int hw_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
		      char **err)
{
	struct eh_vtab *t;
	int rc;

	(void)argc;
	(void)argv;
	(void)err;
	rc = sqlite3_declare_vtab(db, "CREATE TABLE x(expert INTEGER, tokens INTEGER, "
				      "steps INTEGER, run HIDDEN, layer HIDDEN, "
				      "from_step HIDDEN, to_step HIDDEN)");
	if (rc != SQLITE_OK)
		return rc;
	t = sqlite3_malloc(sizeof(*t));
	if (!t)
		return SQLITE_NOMEM;
	memset(t, 0, sizeof(*t));
	t->db = db;
	t->ctx = aux;
	sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
	*out = &t->base;
	return SQLITE_OK;
}

/* idxNum bit k: argument k (run, layer, from, to) is given, argv in order. */
static int hw_best_index(sqlite3_vtab *vt, sqlite3_index_info *ii)
{
	int where[4] = { -1, -1, -1, -1 }, mask = 0, n = 0;

	for (int i = 0; i < ii->nConstraint; i++) {
		const struct sqlite3_index_constraint *c = &ii->aConstraint[i];
		if (c->iColumn < HW_RUN || c->op != SQLITE_INDEX_CONSTRAINT_EQ)
			continue;
		if (!c->usable)
			return SQLITE_CONSTRAINT; /* an argument not known yet: other order */
		where[c->iColumn - HW_RUN] = i;
	}
	if (where[0] < 0 || where[1] < 0)
		return vt_error(vt, SQLITE_ERROR,
				"heat_window: give at least run and layer: "
				"heat_window(run, layer [, from [, to]])");
	for (int k = 0; k < 4; k++)
		if (where[k] >= 0) {
			mask |= 1 << k;
			ii->aConstraintUsage[where[k]].argvIndex = ++n;
			ii->aConstraintUsage[where[k]].omit = 1;
		}
	ii->idxNum = mask;
	ii->estimatedCost = 1000;
	ii->estimatedRows = 256;
	return SQLITE_OK;
}

static int hw_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
	struct hw_cursor *c = sqlite3_malloc(sizeof(*c));

	(void)vt;
	if (!c)
		return SQLITE_NOMEM;
	memset(c, 0, sizeof(*c));
	*out = &c->base;
	return SQLITE_OK;
}

static int hw_close(sqlite3_vtab_cursor *cur)
{
	struct hw_cursor *c = (struct hw_cursor *)cur;

	sqlite3_finalize(c->st);
	sqlite3_finalize(c->shape.st);
	sqlite3_free(c->sum);
	sqlite3_free(c->v);
	sqlite3_free(c);
	return SQLITE_OK;
}

static int hw_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
		     sqlite3_value **argv)
{
	struct hw_cursor *c = (struct hw_cursor *)cur;
	struct eh_vtab *t = (struct eh_vtab *)cur->pVtab;
	int k = 0, rc;

	(void)idx_str;
	c->args[0] = c->args[1] = 0;
	c->args[2] = INT64_MIN;
	c->args[3] = INT64_MAX;
	c->n = c->i = c->steps = 0;
	for (int bit = 0; bit < 4 && k < argc; bit++) {
		if (!(idx_num & (1 << bit)))
			continue;
		sqlite3_value *v = argv[k++];
		if (sqlite3_value_type(v) == SQLITE_NULL && bit >= 2)
			continue; /* NULL from/to: open end */
		if (sqlite3_value_numeric_type(v) != SQLITE_INTEGER)
			return vt_error(cur->pVtab, SQLITE_ERROR,
					"heat_window: argument %d (%s) must be an integer", bit + 1,
					(const char *[]){ "run", "layer", "from", "to" }[bit]);
		c->args[bit] = sqlite3_value_int64(v);
	}
	if (!c->st &&
	    sqlite3_prepare_v2(t->db,
			       "SELECT data, step FROM main.counts WHERE run = ?1 AND step "
			       "BETWEEN ?2 AND ?3 AND layer = ?4",
			       -1, &c->st, NULL) != SQLITE_OK)
		return vt_error(cur->pVtab, SQLITE_ERROR,
				"heat_window: this database holds no moetrace trace (%s)",
				sqlite3_errmsg(t->db));
	if ((rc = run_shape_get(cur->pVtab, t->db, "heat_window", c->args[0], &c->shape)) !=
	    SQLITE_OK)
		return rc;
	sqlite3_reset(c->st);
	sqlite3_bind_int64(c->st, 1, c->args[0]);
	sqlite3_bind_int64(c->st, 2, c->args[2]);
	sqlite3_bind_int64(c->st, 3, c->args[3]);
	sqlite3_bind_int64(c->st, 4, c->args[1]);
	while ((rc = sqlite3_step(c->st)) == SQLITE_ROW) {
		const uint8_t *b = sqlite3_column_blob(c->st, 0);
		int len = sqlite3_column_bytes(c->st, 0);
		int64_t n = store_codec_count(b, (size_t)len);
		t->ctx->blobs_read++;
		if (n < 0)
			goto bad;
		/* the blob's count against its run before any buffer is sized
		 * from it (the decode below checks the data) */
		if ((rc = run_shape_fits(cur->pVtab, "heat_window", &c->shape, c->args[0],
					 sqlite3_column_int64(c->st, 1), c->args[1], n)) !=
		    SQLITE_OK) {
			sqlite3_reset(c->st);
			c->n = 0;
			return rc;
		}
		if (c->steps && n != c->n)
			goto bad;
		if (!c->steps) {
			sqlite3_free(c->sum);
			sqlite3_free(c->v);
			c->sum = sqlite3_malloc64((uint64_t)(n ? n : 1) * sizeof(uint64_t));
			c->v = sqlite3_malloc64((uint64_t)(n ? n : 1) * sizeof(uint32_t));
			if (!c->sum || !c->v)
				return SQLITE_NOMEM;
			memset(c->sum, 0, (size_t)(n ? n : 1) * sizeof(uint64_t));
			c->n = n;
		}
		if (n && store_codec_decode(b, (size_t)len, c->v, (size_t)n))
			goto bad;
		for (int64_t i = 0; i < n; i++)
			c->sum[i] += c->v[i];
		c->steps++;
	}
	sqlite3_reset(c->st);
	if (rc != SQLITE_DONE)
		return vt_error(cur->pVtab, rc, "heat_window: %s", sqlite3_errmsg(t->db));
	return SQLITE_OK;
bad:
	sqlite3_reset(c->st);
	c->n = 0;
	return vt_error(cur->pVtab, SQLITE_CORRUPT,
			"heat_window: malformed counts blob in run %lld layer %lld",
			(long long)c->args[0], (long long)c->args[1]);
}

static int hw_next(sqlite3_vtab_cursor *cur)
{
	((struct hw_cursor *)cur)->i++;
	return SQLITE_OK;
}

static int hw_eof(sqlite3_vtab_cursor *cur)
{
	struct hw_cursor *c = (struct hw_cursor *)cur;

	return c->i >= c->n;
}

static int hw_column(sqlite3_vtab_cursor *cur, sqlite3_context *cx, int col)
{
	struct hw_cursor *c = (struct hw_cursor *)cur;

	switch (col) {
	case HW_EXPERT: sqlite3_result_int64(cx, c->i); break;
	case HW_TOKENS: sqlite3_result_int64(cx, (sqlite3_int64)c->sum[c->i]); break;
	case HW_STEPS: sqlite3_result_int64(cx, c->steps); break;
	case HW_RUN: sqlite3_result_int64(cx, c->args[0]); break;
	case HW_LAYER: sqlite3_result_int64(cx, c->args[1]); break;
	case HW_FROM:
		if (c->args[2] == INT64_MIN)
			sqlite3_result_null(cx);
		else
			sqlite3_result_int64(cx, c->args[2]);
		break;
	default:
		if (c->args[3] == INT64_MAX)
			sqlite3_result_null(cx);
		else
			sqlite3_result_int64(cx, c->args[3]);
	}
	return SQLITE_OK;
}

static int hw_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
	*rowid = ((struct hw_cursor *)cur)->i;
	return SQLITE_OK;
}

static const sqlite3_module heat_window_module = {
	.iVersion = 0,
	.xCreate = NULL,
	.xConnect = hw_connect,
	.xBestIndex = hw_best_index,
	.xDisconnect = vt_disconnect,
	.xDestroy = vt_disconnect,
	.xOpen = hw_open,
	.xClose = hw_close,
	.xFilter = hw_filter,
	.xNext = hw_next,
	.xEof = hw_eof,
	.xColumn = hw_column,
	.xRowid = hw_rowid,
};

/* ---- views ------------------------------------------------------------------ */

/* clang-format off */
/* TEMP views: they live on the connection, never in the trace file, so a
 * read-only trace gets them too.  Each names only main's tables. */
static const char *const views[] = {
	/* The EP layout each run is scored with, resolved as `moetrace balance`
	 * does: the run's own, else its model preset's, else ceil(E / ranks). */
	"CREATE TEMP VIEW IF NOT EXISTS run_layout AS "
	"SELECT run, experts, ranks, slots, source FROM ("
	" SELECT run, experts, ranks, CASE"
	"  WHEN run_ranks > 0 AND run_slots > 0 THEN run_slots"
	"  WHEN model_ranks = ranks THEN model_slots"
	"  ELSE (experts + ranks - 1) / ranks END AS slots,"
	"  CASE WHEN run_ranks > 0 THEN 'run' ELSE 'model preset' END AS source"
	" FROM (SELECT run, experts, ranks AS run_ranks, slots AS run_slots,"
	"  moetrace_model(model, 'ranks') AS model_ranks,"
	"  moetrace_model(model, 'slots') AS model_slots,"
	"  CASE WHEN ranks > 0 THEN ranks ELSE coalesce(moetrace_model(model, 'ranks'), 0) END"
	"   AS ranks FROM main.runs))"
	" WHERE ranks > 0 AND ranks * slots >= experts",

	/* Each counts row with the placement in force at its step: the latest
	 * deployed row of its layer at or before the step, else static p % E. */
	"CREATE TEMP VIEW IF NOT EXISTS counts_placement AS "
	"SELECT c.run AS run, c.step AS step, c.layer AS layer, c.data AS data,"
	" CASE WHEN d.phy2log IS NULL THEN 'static' ELSE 'deployed' END AS placement,"
	" coalesce(d.phy2log, static_phy2log(l.experts, l.ranks, l.slots)) AS phy2log,"
	" coalesce(d.ranks, l.ranks) AS ranks, coalesce(d.slots, l.slots) AS slots "
	"FROM main.counts c "
	"LEFT JOIN temp.run_layout l ON l.run = c.run "
	"LEFT JOIN main.deployed d ON d.run = c.run AND d.layer = c.layer AND d.step = ("
	" SELECT max(x.step) FROM main.deployed x"
	" WHERE x.run = c.run AND x.layer = c.layer AND x.step <= c.step) "
	"WHERE d.phy2log IS NOT NULL OR l.ranks IS NOT NULL",

	"CREATE TEMP VIEW IF NOT EXISTS layer_heat AS "
	"SELECT g.run AS run, g.layer AS layer, j.key AS expert, j.value AS tokens "
	"FROM (SELECT run, layer, counts_total(data) AS total FROM main.counts"
	" GROUP BY run, layer) g, json_each(g.total) j",

	"CREATE TEMP VIEW IF NOT EXISTS device_load AS "
	"SELECT p.run AS run, p.step AS step, p.layer AS layer, j.key AS rank,"
	" CAST(j.value AS REAL) AS load "
	"FROM temp.counts_placement p, json_each(device_loads(p.data, p.phy2log, p.ranks)) j",

	"CREATE TEMP VIEW IF NOT EXISTS layer_imbalance AS "
	"SELECT run, step, layer, counts_imbalance(data, phy2log, ranks) AS imbalance "
	"FROM temp.counts_placement",

	/* Replay results per step and layer: imbalance under the placement the
	 * replay had in force, and under its start placement (the baseline);
	 * both NULL where the layer got no token (not scored, docs/cli.md), so
	 * that avg() leaves those out as the CLI does. */
	"CREATE TEMP VIEW IF NOT EXISTS replay_imbalance AS "
	"SELECT s.replay AS replay, r.run AS run, r.algo AS algo, s.step AS step,"
	" s.layer AS layer,"
	" CASE WHEN s.mean_load > 0 THEN s.max_load / s.mean_load END AS imbalance,"
	" CASE WHEN s.mean_load > 0 THEN s.base_max_load / s.mean_load END AS baseline "
	"FROM main.replay_steps s JOIN main.replays r ON r.replay = s.replay",

	/* One row per slot of every deployed placement. */
	"CREATE TEMP VIEW IF NOT EXISTS deployed_slots AS "
	"SELECT d.run AS run, d.step AS step, d.layer AS layer, j.key AS slot,"
	" j.key / d.slots AS rank, j.value AS expert "
	"FROM main.deployed d, json_each(phy2log_json(d.phy2log)) j",
};

static const struct store_sql_example examples[] = {
	{ "hottest experts per layer (top 3 by tokens over the whole run)",
	  "SELECT run, layer, expert, tokens FROM ("
	  "SELECT run, layer, expert, tokens, row_number() OVER ("
	  "PARTITION BY run, layer ORDER BY tokens DESC) AS pos FROM layer_heat) "
	  "WHERE pos <= 3 ORDER BY run, layer, pos;" },
	{ "hottest cells of one step range",
	  "SELECT layer, expert, sum(tokens) AS tokens FROM expert_heat "
	  "WHERE run = (SELECT max(run) FROM runs) AND step BETWEEN 0 AND 100 "
	  "GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10;" },
	{ "layers that got worse over time (mean imbalance, second half vs first half)",
	  "WITH r AS (SELECT run, min(step) AS lo, max(step) AS hi FROM steps GROUP BY run), "
	  "h AS (SELECT i.run, i.layer, avg(CASE WHEN 2 * i.step < r.lo + r.hi "
	  "THEN i.imbalance END) AS first_half, avg(CASE WHEN 2 * i.step >= r.lo + r.hi "
	  "THEN i.imbalance END) AS second_half FROM layer_imbalance i JOIN r USING (run) "
	  "GROUP BY i.run, i.layer) "
	  "SELECT run, layer, round(first_half, 4) AS first_half, "
	  "round(second_half, 4) AS second_half, "
	  "round(second_half - first_half, 4) AS change FROM h "
	  "ORDER BY change DESC LIMIT 10;" },
	{ "steps with the worst imbalance (peak over layers)",
	  "SELECT run, step, round(max(imbalance), 4) AS worst, "
	  "(SELECT layer FROM layer_imbalance x WHERE x.run = i.run AND x.step = i.step "
	  "ORDER BY x.imbalance DESC LIMIT 1) AS layer "
	  "FROM layer_imbalance i GROUP BY run, step ORDER BY worst DESC LIMIT 10;" },
	{ "device loads of layer 0 at the first step, under the deployed (or static) placement",
	  "SELECT rank, round(load, 1) AS load FROM device_load "
	  "WHERE run = (SELECT max(run) FROM runs) AND layer = 0 AND step = ("
	  "SELECT min(step) FROM steps WHERE run = (SELECT max(run) FROM runs)) ORDER BY rank;" },
	{ "windowed heat of one layer (steps 0..99 of the newest run, layer 0)",
	  "SELECT expert, tokens, steps FROM heat_window("
	  "(SELECT max(run) FROM runs), 0, 0, 99) ORDER BY tokens DESC LIMIT 10;" },
	{ "storage per run (bytes per cell of the counts blobs)",
	  "SELECT r.run, r.name, count(*) AS blobs, sum(length(c.data)) AS bytes, "
	  "round(1.0 * sum(length(c.data)) / (count(*) * r.experts), 3) AS bytes_per_cell "
	  "FROM runs r JOIN counts c USING (run) GROUP BY r.run;" },
	{ "bytes moved per replay, and what the rebalancing bought",
	  "SELECT replay, run, algo, ranks || 'x' || slots AS layout, interval, window, events, "
	  "moves, bytes, round(bytes / 1e9, 3) AS gb, round(transfer_seconds, 3) AS transfer_s, "
	  "round(baseline_imbalance_mean, 4) AS before, round(imbalance_mean, 4) AS after "
	  "FROM replays ORDER BY replay;" },
	{ "rebalance events of the newest replay: when, how much moved, layers changed",
	  "SELECT event, step, effective_step, layers, moves, bytes, "
	  "round(transfer_seconds, 4) AS transfer_s FROM replay_events "
	  "WHERE replay = (SELECT max(replay) FROM replays) ORDER BY event;" },
};
/* clang-format on */

const struct store_sql_example *store_sql_example_at(size_t i)
{
	return i < sizeof(examples) / sizeof(examples[0]) ? &examples[i] : NULL;
}

/* ---- registration ------------------------------------------------------------ */

struct fn_def {
	const char *name;
	int nargs;
	void (*fn)(sqlite3_context *, int, sqlite3_value **);
	intptr_t data; /* -1: the connection's sqlfn_ctx */
	int deterministic;
};

/* clang-format off */
static const struct fn_def functions[] = {
	{ "counts_json",      1, fn_counts_json,     0, 1 },
	{ "counts_sum",       1, fn_counts_reduce,   AGG_SUM, 1 },
	{ "counts_max",       1, fn_counts_reduce,   AGG_MAX, 1 },
	{ "counts_argmax",    1, fn_counts_reduce,   AGG_ARGMAX, 1 },
	{ "counts_n",         1, fn_counts_reduce,   AGG_N, 1 },
	{ "counts_at",        2, fn_counts_at,       0, 1 },
	{ "counts_encode",    1, fn_counts_encode,   0, 1 },
	{ "counts_imbalance", 2, fn_placement_loads, 0, 1 },
	{ "counts_imbalance", 3, fn_placement_loads, 0, 1 },
	{ "device_loads",     2, fn_placement_loads, 1, 1 },
	{ "device_loads",     3, fn_placement_loads, 1, 1 },
	{ "static_phy2log",   3, fn_static_phy2log,  -1, 1 },
	{ "phy2log_json",     1, fn_phy2log_json,    0, 1 },
	{ "moetrace_model",   2, fn_model,           0, 1 },
	{ "moetrace_blobs_read", 0, fn_blobs_read,   -1, 0 },
	{ "moetrace_version", 0, fn_version,         0, 1 },
};
/* clang-format on */

static int reg_fail(sqlite3 *db, char **errmsg, const char *what)
{
	if (errmsg)
		*errmsg = sqlite3_mprintf("cannot register %s: %s", what, sqlite3_errmsg(db));
	return sqlite3_errcode(db) ? sqlite3_errcode(db) : SQLITE_ERROR;
}

int store_sql_register(sqlite3 *db, char **errmsg)
{
	struct sqlfn_ctx *ctx;
	int rc;

	if (errmsg)
		*errmsg = NULL;
	ctx = sqlite3_malloc(sizeof(*ctx));
	if (!ctx)
		return SQLITE_NOMEM;
	memset(ctx, 0, sizeof(*ctx));
	/* The module owns ctx: SQLite calls ctx_free when the connection closes
	 * (or at once if registering fails). */
	if (sqlite3_create_module_v2(db, "expert_heat", &expert_heat_module, ctx, ctx_free) !=
	    SQLITE_OK)
		return reg_fail(db, errmsg, "expert_heat");
	if (sqlite3_create_module_v2(db, "heat_window", &heat_window_module, ctx, NULL) !=
	    SQLITE_OK)
		return reg_fail(db, errmsg, "heat_window");
	for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
		const struct fn_def *f = &functions[i];
		int flags = SQLITE_UTF8 | SQLITE_INNOCUOUS |
			    (f->deterministic ? SQLITE_DETERMINISTIC : 0);
		void *data = f->data < 0 ? (void *)ctx : (void *)f->data;
		if (sqlite3_create_function(db, f->name, f->nargs, flags, data, f->fn, NULL,
					    NULL) != SQLITE_OK)
			return reg_fail(db, errmsg, f->name);
	}
	if (sqlite3_create_function(db, "counts_total", 1,
				    SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC, NULL,
				    NULL, agg_total_step, agg_total_final) != SQLITE_OK)
		return reg_fail(db, errmsg, "counts_total");
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
		char *m = NULL;
		rc = sqlite3_exec(db, views[i], NULL, NULL, &m);
		if (rc != SQLITE_OK) {
			if (errmsg)
				*errmsg = sqlite3_mprintf("cannot create views: %s", m ? m : "?");
			sqlite3_free(m);
			return rc;
		}
	}
	return SQLITE_OK;
}

int64_t store_sql_blobs_read(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, "SELECT moetrace_blobs_read()", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * import_jsonl.c: our JSON-lines heat format (collector.h has the grammar),
 * what `moetrace export --format jsonl` writes.  Each line is parsed on
 * its own, so an error names the line; records go to the shared builder
 * (import_common.c), which writes the run in one transaction.
 */
#include "collector/import_int.h"
#include "analyze/analyze.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The optional description line {"moetrace": 1, "model": ..., ...}. */
static int read_header(struct imp *b, struct json_object *o, const char *w,
		       struct util_err *err)
{
	struct json_object *v;
	int64_t x;
	int rc;
	static const struct {
		const char *name;
		int64_t max;
	} fields[] = {
		{ "layers", STORE_MAX_LAYERS }, { "experts", STORE_MAX_EXPERTS },
		{ "topk", STORE_MAX_EXPERTS },  { "ranks", STORE_MAX_SLOTS },
		{ "slots", STORE_MAX_SLOTS },   { "first_layer", 1 << 20 },
		{ "ranks_per_node", STORE_MAX_SLOTS },
	};

	/* a later version of the format may mean something else by the same
	 * fields */
	if (!json_object_object_get_ex(o, "moetrace", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != 1)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'moetrace': %.40s is not a version this moetrace "
				    "reads (1)",
				    w, json_object_to_json_string(v));
	if (json_object_object_get_ex(o, "model", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_string))
			return util_err_set(err, UTIL_EPARSE, "%s: field 'model': not a string", w);
		/* stored as given or not at all (the parser has refused a NUL
		 * and invalid UTF-8) */
		if ((size_t)json_object_get_string_len(v) >= sizeof(b->model))
			return util_err_set(
				err, UTIL_EPARSE,
				"%s: field 'model': %d bytes, a model name has at most %zu", w,
				json_object_get_string_len(v), sizeof(b->model) - 1);
		memcpy(b->model, json_object_get_string(v),
		       (size_t)json_object_get_string_len(v) + 1);
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(fields); i++) {
		x = -1;
		if ((rc = imp_json_field_i64(o, fields[i].name, 0, i == 5 ? 0 : 1, fields[i].max, &x,
					     w, err)))
			return rc;
		if (x < 0)
			continue;
		switch (i) {
		case 0: b->layers = (int)x; break;
		case 1: b->experts = (int)x; break;
		case 2: b->topk = (int)x; break;
		case 3: b->ranks = (int)x; break;
		case 4: b->slots = (int)x; break;
		case 5: b->first_layer = (int)x; b->first_layer_set = 1; break;
		case 6: b->ranks_per_node = (int)x; break;
		}
	}
	if (b->slots && !b->ranks)
		return util_err_set(err, UTIL_EPARSE, "%s: field 'slots' needs 'ranks'", w);
	if (b->ranks_per_node && !b->ranks)
		return util_err_set(err, UTIL_EPARSE, "%s: field 'ranks_per_node' needs 'ranks'", w);
	return 0;
}

struct jsonl_ctx {
	struct imp *b;
	int src;
	int64_t prev, records;
	uint32_t *v;                      /* fast path: the line's counts */
	size_t nv, cap;
	size_t rowlen[STORE_MAX_LAYERS];
	/* the first record holding every layer as rows: how many, and its
	 * line; every such record must hold as many (one truncated would
	 * read as zero heat in the layers it lost) */
	size_t rows_first;
	int64_t rows_line;
	struct jsonl_deployed *dep;       /* deployed placements, by increasing step */
	size_t ndep, depcap;
};

/* A placement line: in force from `step` on, rank-major ids per layer. */
struct jsonl_deployed {
	int64_t step, line;
	int ranks, slots;
	size_t layers;
	int32_t *p2l;                     /* layers x ranks*slots */
};

/* Does the number written s have a digit other than 0 before its exponent? */
static int nonzero(const char *s)
{
	for (; *s && *s != 'e' && *s != 'E'; s++)
		if (*s >= '1' && *s <= '9')
			return 1;
	return 0;
}

static int read_record(struct jsonl_ctx *jc, int64_t line, struct json_object *o,
		       const char *w, struct util_err *err)
{
	struct imp *b = jc->b;
	int src = jc->src;
	int64_t *prev = &jc->prev;
	struct json_object *c, *v;
	int64_t step = 0, layer = -1, tokens = -1;
	double time = 0;
	int phase, rc;
	uint32_t *vals;
	size_t n;

	if ((rc = imp_json_field_i64(o, "step", 1, INT64_MIN + 1, INT64_MAX - 1, &step, w, err)) ||
	    (rc = imp_json_field_i64(o, "layer", 0, 0, STORE_MAX_LAYERS - 1, &layer, w, err)) ||
	    (rc = imp_json_field_i64(o, "tokens", 0, 0, STORE_TOKENS_MAX, &tokens, w, err)) ||
	    (rc = imp_json_phase(o, &phase, w, err)))
		return rc;
	if (json_object_object_get_ex(o, "time", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
			return util_err_set(err, UTIL_EPARSE, "%s: field 'time': not a number", w);
		time = json_object_get_double(v);
		if (!(time >= 0))
			return util_err_set(err, UTIL_EPARSE, "%s: field 'time': negative", w);
		if (!isfinite(time))
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field 'time': %.40s is not a finite number", w,
					    json_object_to_json_string(v));
		/* a time of 0 is no time: one below the smallest double is
		 * not read as none */
		if (time == 0 && nonzero(json_object_to_json_string(v)))
			return util_err_set(err, UTIL_ERANGE,
					    "%s: field 'time': %.40s is too small for a double", w,
					    json_object_to_json_string(v));
	}
	if (step < *prev)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'step': %lld comes after step %lld; records must be "
				    "grouped by increasing step",
				    w, (long long)step, (long long)*prev);
	*prev = step;
	if (!json_object_object_get_ex(o, "counts", &c))
		return util_err_set(err, UTIL_EPARSE, "%s: missing field 'counts'", w);
	if (!json_object_is_type(c, json_type_array) || json_object_array_length(c) == 0)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'counts': not a non-empty array of counts", w);
	if (json_object_is_type(json_object_array_get_idx(c, 0), json_type_array)) {
		/* one step, every layer */
		size_t nl = json_object_array_length(c);
		char field[32];
		if (layer >= 0)
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field 'layer' with per-layer 'counts' rows: give one "
					    "or the other",
					    w);
		if (nl > STORE_MAX_LAYERS)
			return util_err_set(err, UTIL_EPARSE, "%s: field 'counts': %zu layers, at most %d",
					    w, nl, STORE_MAX_LAYERS);
		if (jc->rows_first && nl != jc->rows_first)
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field 'counts': %zu layer row%s, but line %lld has %zu: "
					    "a record of rows holds every layer of its step",
					    w, nl, nl == 1 ? "" : "s", (long long)jc->rows_line,
					    jc->rows_first);
		if (!jc->rows_first) {
			jc->rows_first = nl;
			jc->rows_line = line;
		}
		for (size_t l = 0; l < nl; l++) {
			snprintf(field, sizeof(field), "counts[%zu]", l);
			if ((rc = imp_json_counts(b, json_object_array_get_idx(c, l), field, &vals, &n,
						  w, err)) ||
			    (rc = imp_add(b, src, line, step, (int64_t)l, phase, l ? 0 : time,
					  l ? -1 : tokens, vals, n, 1, err)))
				return rc;
		}
		return 0;
	}
	if (layer < 0)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: missing field 'layer' (or give 'counts' as one row per layer)",
				    w);
	if ((rc = imp_json_counts(b, c, "counts", &vals, &n, w, err)))
		return rc;
	return imp_add(b, src, line, step, layer, phase, time, tokens, vals, n, 1, err);
}


/* ---- fast path ------------------------------------------------------------------
 * The records `export` writes, parsed without building a json-c object per
 * number (which costs most of the time on big traces).  Only a line that
 * is entirely well-formed and valid is taken; anything else — another
 * field, an escape, a float count, a bad value — goes to the json-c path,
 * which has the one set of error messages. */

/* The end of the JSON number at p, NULL if there is none: strtod alone
 * would also take ".5", "1.", "+1" or "01", which are not JSON. */
static const char *num_end(const char *p, const char *e)
{
	if (p < e && *p == '-')
		p++;
	if (p >= e || *p < '0' || *p > '9')
		return NULL;
	if (*p == '0')
		p++;
	else
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	if (p < e && *p == '.') {
		if (++p >= e || *p < '0' || *p > '9')
			return NULL;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return NULL;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

static int fpush(struct jsonl_ctx *c, uint32_t x)
{
	if (c->nv == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 4096;
		uint32_t *v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return -1;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->nv++] = x;
	return 0;
}

/* One array of counts appended to c->v; NULL if not one. */
static const char *frow(struct jsonl_ctx *c, const char *p, const char *e, size_t *len)
{
	size_t n0 = c->nv;
	int64_t x;

	if (p >= e || *p != '[')
		return NULL;
	p = imp_ws(p + 1, e);
	for (;;) {
		if (!(p = imp_int(p, e, &x)) || x < 0 || x > UINT32_MAX || fpush(c, (uint32_t)x))
			return NULL;
		p = imp_ws(p, e);
		if (p < e && *p == ',') {
			p = imp_ws(p + 1, e);
			continue;
		}
		if (p < e && *p == ']')
			break;
		return NULL;
	}
	*len = c->nv - n0;
	return *len <= STORE_MAX_EXPERTS ? p + 1 : NULL;
}

static int fast_line(void *ctx, const char *text, size_t n, int64_t line, struct util_err *err)
{
	struct jsonl_ctx *c = ctx;
	const char *p = text, *e = text + n;
	int64_t step = 0, layer = -1, tokens = -1;
	double time = 0;
	int phase = -1, nested = 0, rc;
	size_t rows = 0, len = 0;
	unsigned seen = 0;

	c->nv = 0;
	if (p >= e || *p != '{')
		return 0;
	p = imp_ws(p + 1, e);
	for (;;) {
		const char *k, *ke;
		unsigned bit;
		if (p >= e || *p != '"')
			return 0;
		k = ++p;
		while (p < e && *p != '"' && *p != '\\')
			p++;
		if (p >= e || *p != '"')
			return 0;
		ke = p++;
		p = imp_ws(p, e);
		if (p >= e || *p != ':')
			return 0;
		p = imp_ws(p + 1, e);
#define KEY(s) ((size_t)(ke - k) == sizeof(s) - 1 && !memcmp(k, s, sizeof(s) - 1))
		if (KEY("step")) {
			bit = 1;
			if (!(p = imp_int(p, e, &step)))
				return 0;
		} else if (KEY("layer")) {
			bit = 2;
			if (!(p = imp_int(p, e, &layer)) || layer < 0 || layer >= STORE_MAX_LAYERS)
				return 0;
		} else if (KEY("tokens")) {
			bit = 4;
			if (!(p = imp_int(p, e, &tokens)) || tokens < 0)
				return 0;
		} else if (KEY("time")) {
			const char *n0 = p;
			char num[48];
			bit = 8;
			if (!(p = num_end(p, e)) || (size_t)(p - n0) >= sizeof(num))
				return 0;
			memcpy(num, n0, (size_t)(p - n0));
			num[p - n0] = 0;
			time = strtod(num, NULL);
			/* 0 (no time) and what reads as 0 are the json-c path's */
			if (!(time >= DBL_MIN) || time > 1e15)
				return 0;
		} else if (KEY("phase")) {
			char word[16];
			const char *w0;
			bit = 16;
			if (p >= e || *p != '"')
				return 0;
			for (w0 = ++p; p < e && *p != '"' && *p != '\\'; p++)
				;
			if (p >= e || *p != '"' || (size_t)(p - w0) >= sizeof(word))
				return 0;
			memcpy(word, w0, (size_t)(p - w0));
			word[p - w0] = 0;
			if ((phase = store_phase_parse(word)) < 0)
				return 0;
			p++;
		} else if (KEY("counts")) {
			bit = 32;
			if (p + 1 < e && *p == '[' && *imp_ws(p + 1, e) == '[') {
				nested = 1;
				p = imp_ws(p + 1, e);
				for (;;) {
					if (rows == STORE_MAX_LAYERS ||
					    !(p = frow(c, p, e, &c->rowlen[rows])))
						return 0;
					rows++;
					p = imp_ws(p, e);
					if (p < e && *p == ',') {
						p = imp_ws(p + 1, e);
						continue;
					}
					if (p < e && *p == ']')
						break;
					return 0;
				}
				p++;
			} else if (!(p = frow(c, p, e, &len))) {
				return 0;
			}
		} else {
			return 0;
		}
#undef KEY
		if (seen & bit)
			return 0;
		seen |= bit;
		p = imp_ws(p, e);
		if (p < e && *p == ',') {
			p = imp_ws(p + 1, e);
			continue;
		}
		if (p < e && *p == '}')
			break;
		return 0;
	}
	if (imp_ws(p + 1, e) != e || !(seen & 1) || !(seen & 32) || nested == (layer >= 0) ||
	    step < c->prev || step == INT64_MIN || (nested && c->rows_first && rows != c->rows_first))
		return 0;
	if (nested && !c->rows_first) {
		c->rows_first = rows;
		c->rows_line = line;
	}
	c->prev = step;
	c->records++;
	if (!nested)
		return (rc = imp_add(c->b, c->src, line, step, layer, phase, time, tokens, c->v, len,
				     1, err)) ? rc : 1;
	for (size_t l = 0, off = 0; l < rows; off += c->rowlen[l++])
		if ((rc = imp_add(c->b, c->src, line, step, (int64_t)l, phase, l ? 0 : time,
				  l ? -1 : tokens, c->v + off, c->rowlen[l], 1, err)))
			return rc;
	return 1;
}

/* ---- deployed placements ----------------------------------------------------
 * {"deployed": STEP, "ranks": R, "slots": S, "phy2log": [[R x S ids] per layer]}:
 * the placement in force from STEP on, one line per change, as `export`
 * writes them.  Read whole here, checked against the run once its shape is
 * known and stored in the import's transaction (store_deployed). */

/* The rows of phy2log into d->p2l, each of ranks x slots expert ids. */
static int read_phy2log(struct jsonl_deployed *d, struct json_object *a, const char *w,
			struct util_err *err)
{
	size_t P = (size_t)d->ranks * (size_t)d->slots;

	if (!json_object_is_type(a, json_type_array) || !(d->layers = json_object_array_length(a)) ||
	    d->layers > STORE_MAX_LAYERS)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'phy2log': not an array of 1 to %d layers of expert ids",
				    w, STORE_MAX_LAYERS);
	if (!(d->p2l = malloc(d->layers * P * sizeof(*d->p2l))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	for (size_t l = 0; l < d->layers; l++) {
		struct json_object *row = json_object_array_get_idx(a, l);
		if (!json_object_is_type(row, json_type_array) || json_object_array_length(row) != P)
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field 'phy2log'[%zu]: not an array of %zu expert ids "
					    "('ranks' x 'slots')",
					    w, l, P);
		for (size_t i = 0; i < P; i++) {
			struct json_object *v = json_object_array_get_idx(row, i);
			int64_t x;
			if (util_json_int(v, 0, STORE_MAX_EXPERTS - 1, &x))
				return util_err_set(err, UTIL_EPARSE,
						    "%s: field 'phy2log'[%zu][%zu]: %.40s is not an "
						    "expert id",
						    w, l, i, json_object_to_json_string(v));
			d->p2l[l * P + i] = (int32_t)x;
		}
	}
	return 0;
}

static int read_deployed(struct jsonl_ctx *c, struct json_object *o, int64_t line, const char *w,
			 struct util_err *err)
{
	struct jsonl_deployed d = { 0 };
	struct json_object *a = NULL;
	int64_t step = 0, r = 0, sl = 0;
	int rc;

	if ((rc = imp_json_field_i64(o, "deployed", 1, STORE_STEP_MIN, STORE_STEP_MAX, &step, w,
				     err)) ||
	    (rc = imp_json_field_i64(o, "ranks", 1, 1, STORE_MAX_SLOTS, &r, w, err)) ||
	    (rc = imp_json_field_i64(o, "slots", 1, 1, STORE_MAX_SLOTS, &sl, w, err)))
		return rc;
	if (r * sl > STORE_MAX_SLOTS)
		return util_err_set(err, UTIL_ERANGE,
				    "%s: fields 'ranks' x 'slots': %lld x %lld slots, at most %d", w,
				    (long long)r, (long long)sl, STORE_MAX_SLOTS);
	if (c->ndep && step <= c->dep[c->ndep - 1].step)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'deployed': step %lld after the placement of step %lld "
				    "(line %lld): one placement per step, by increasing step",
				    w, (long long)step, (long long)c->dep[c->ndep - 1].step,
				    (long long)c->dep[c->ndep - 1].line);
	if (c->ndep == c->depcap) {
		size_t cap = c->depcap ? 2 * c->depcap : 8;
		struct jsonl_deployed *p = realloc(c->dep, cap * sizeof(*p));
		if (!p)
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
		c->dep = p;
		c->depcap = cap;
	}
	d.step = step;
	d.line = line;
	d.ranks = (int)r;
	d.slots = (int)sl;
	json_object_object_get_ex(o, "phy2log", &a);
	rc = read_phy2log(&d, a, w, err);
	c->dep[c->ndep++] = d; /* freed with the others, also after an error */
	return rc;
}

/* Each placement must fit the run as imported: its layout, layers and
 * experts, every expert placed in every layer. */
static int store_deployed(struct jsonl_ctx *c, struct store *s, const struct store_run *run,
			  const char *path, struct util_err *err)
{
	for (size_t i = 0; i < c->ndep; i++) {
		const struct jsonl_deployed *d = &c->dep[i];
		size_t P = (size_t)d->ranks * (size_t)d->slots;
		int rc;
		if (d->ranks != run->ranks || d->slots != run->slots)
			return util_err_set(err, UTIL_ERANGE,
					    "%s:%lld: fields 'ranks', 'slots': a placement of %d ranks "
					    "x %d slots, the run has %d x %d",
					    path, (long long)d->line, d->ranks, d->slots, run->ranks,
					    run->slots);
		if (d->layers != (size_t)run->layers)
			return util_err_set(err, UTIL_ERANGE,
					    "%s:%lld: field 'phy2log': %zu layers, the run has %d MoE "
					    "layers",
					    path, (long long)d->line, d->layers, run->layers);
		for (size_t l = 0; l < d->layers; l++)
			if ((rc = analyze_placement_check(d->p2l + l * P, run->experts, d->ranks,
							  d->slots, 0, err)))
				return util_err_prefix(err, "%s:%lld: field 'phy2log'[%zu]: ", path,
						       (long long)d->line, l);
		if (store_deployed_set(s, run, d->step, d->ranks, d->slots, d->p2l))
			return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	}
	return 0;
}

static int on_line(void *ctx, struct json_object *obj, int64_t line, const char *w,
		   struct util_err *err)
{
	struct jsonl_ctx *c = ctx;
	int rc;

	if (json_object_object_get_ex(obj, "moetrace", NULL))
		rc = c->records ? util_err_set(err, UTIL_EPARSE,
					       "%s: the 'moetrace' description must be the first line",
					       w)
				: read_header(c->b, obj, w, err);
	else if (json_object_object_get_ex(obj, "deployed", NULL))
		rc = read_deployed(c, obj, line, w, err);
	else
		rc = read_record(c, line, obj, w, err);
	c->records++;
	return rc;
}

/* A record of rows holds every layer of its step, so their number is the
 * run's MoE layers: a description that says otherwise is refused, and
 * without one it is what the data states (which --model must agree with,
 * imp_finish).  Shorter records would read as zero heat in the layers
 * they lack.  --layers overrides the data. */
static int rows_state_layers(struct jsonl_ctx *c, const struct collector_import_opts *o,
			     const char *path, struct util_err *err)
{
	struct imp *b = c->b;

	if (!c->rows_first || o->layers)
		return 0;
	if (b->layers && (size_t)b->layers != c->rows_first)
		return util_err_set(err, UTIL_ERANGE,
				    "%s:%lld: field 'counts': %zu layer row%s, the description says "
				    "%d MoE layers: a record of rows holds every layer of its step",
				    path, (long long)c->rows_line, c->rows_first,
				    c->rows_first == 1 ? "" : "s", b->layers);
	b->layers = (int)c->rows_first;
	return 0;
}

/* The run, and its deployed placements, in one transaction. */
static int finish(struct jsonl_ctx *c, struct store *s, const struct collector_import_opts *o,
		  const char *path, struct store_run *run_out, struct util_err *err)
{
	struct store_run run;
	int rc;

	if (!c->ndep)
		return imp_finish(c->b, s, o, path, run_out, err);
	if (o->deployed)
		return util_err_set(err, UTIL_EUSAGE,
				    "%s:%lld: the file carries the run's deployed placements: "
				    "--deployed '%s' would replace them (give one or the other)",
				    path, (long long)c->dep[0].line, o->deployed);
	if (store_begin(s))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	if (!(rc = imp_finish(c->b, s, o, path, &run, err)) &&
	    !(rc = store_deployed(c, s, &run, path, err)) && store_commit(s))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	if (rc) {
		store_rollback(s);
		return rc;
	}
	if (run_out)
		*run_out = run;
	return 0;
}

int collector_import_jsonl(struct store *s, const char *path,
			   const struct collector_import_opts *o, struct store_run *run,
			   struct util_err *err)
{
	struct imp b;
	struct jsonl_ctx *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	imp_init(&b, "jsonl", 0);
	c->b = &b;
	c->prev = INT64_MIN;
	if ((c->src = rc = imp_source(&b, path, err)) >= 0 &&
	    !(rc = imp_jsonl_each(path, fast_line, on_line, c, err)) &&
	    !(rc = rows_state_layers(c, o, path, err)))
		rc = finish(c, s, o, path, run, err);
	imp_release(&b);
	for (size_t i = 0; i < c->ndep; i++)
		free(c->dep[i].p2l);
	free(c->dep);
	free(c->v);
	free(c);
	return rc;
}

/*
 * import_jsonl.c: our JSON-lines heat format (import.h has the grammar),
 * what `moetrace export --format jsonl` writes.  Each line is parsed on
 * its own, so an error names the line; records go to the shared builder
 * (import_common.c), which writes the run in one transaction.
 */
#include "collector/import_int.h"

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
	};

	if (json_object_object_get_ex(o, "model", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_string))
			return util_err_set(err, UTIL_EPARSE, "%s: field 'model': not a string", w);
		snprintf(b->model, sizeof(b->model), "%s", json_object_get_string(v));
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
		}
	}
	if (b->slots && !b->ranks)
		return util_err_set(err, UTIL_EPARSE, "%s: field 'slots' needs 'ranks'", w);
	return 0;
}

static int read_record(struct imp *b, int src, int64_t line, struct json_object *o,
		       int64_t *prev, const char *w, struct util_err *err)
{
	struct json_object *c, *v;
	int64_t step = 0, layer = -1, tokens = -1;
	double time = 0;
	int phase, rc;
	uint32_t *vals;
	size_t n;

	if ((rc = imp_json_field_i64(o, "step", 1, INT64_MIN + 1, INT64_MAX - 1, &step, w, err)) ||
	    (rc = imp_json_field_i64(o, "layer", 0, 0, STORE_MAX_LAYERS - 1, &layer, w, err)) ||
	    (rc = imp_json_field_i64(o, "tokens", 0, 0, INT64_MAX - 1, &tokens, w, err)) ||
	    (rc = imp_json_phase(o, &phase, w, err)))
		return rc;
	if (json_object_object_get_ex(o, "time", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
			return util_err_set(err, UTIL_EPARSE, "%s: field 'time': not a number", w);
		time = json_object_get_double(v);
		if (!(time >= 0))
			return util_err_set(err, UTIL_EPARSE, "%s: field 'time': negative", w);
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

struct jsonl_ctx {
	struct imp *b;
	int src;
	int64_t prev, records;
};

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
	else
		rc = read_record(c->b, c->src, line, obj, &c->prev, w, err);
	c->records++;
	return rc;
}

int collector_import_jsonl(struct store *s, const char *path,
			   const struct collector_import_opts *o, struct store_run *run,
			   struct util_err *err)
{
	struct imp b;
	struct jsonl_ctx c = { &b, 0, INT64_MIN, 0 };
	int rc;

	imp_init(&b, "jsonl", 0);
	if ((c.src = rc = imp_source(&b, path, err)) >= 0 &&
	    !(rc = imp_jsonl_each(path, on_line, &c, err)))
		rc = imp_finish(&b, s, o, path, run, err);
	imp_release(&b);
	return rc;
}

/*
 * import_megatron.c: Megatron-LM routing traces.  Megatron's router tracer
 * (megatron/core/transformer/moe/router_trace.py, --moe-routing-trace-path)
 * writes one file per rank, router_trace_rank{R}.jsonl, one line per
 * (step, block, layer):
 *   {"step": 0, "stage": "pre_dispatch", "block": "decoder", "layer": 3,
 *    "rank": 0, "num_tokens": 128, "topk": 8, "top_indices": [[12, 45, ...], ...]}
 * The top-k ids of every token are histogrammed here; lines that carry
 * "tokens_per_expert": [E] instead (a per-layer counts hook) are taken as
 * they are.  Each rank saw its own tokens, so ranks are summed; "mtp"
 * blocks (multi-token prediction heads) are not model MoE layers and are
 * skipped.  Layer numbers are model layer ids.
 */
#include "collector/import_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct mg_ctx {
	struct imp *b;
	int src;
	int64_t skipped;
	uint32_t *hist;          /* fast path: the line's histogram [STORE_MAX_EXPERTS] */
};

/* Fast path for decoder records with top_indices (the bulk of a trace):
 * parsed from the raw text and histogrammed without a json-c object per
 * id.  Only a line that is entirely well-formed and valid is taken; any
 * other (an extra field such as mtp_idx or hs_offset, tokens_per_expert,
 * an error) goes to the json-c path and its messages. */
static int fast_line(void *ctx, const char *text, size_t n, int64_t line, struct util_err *err)
{
	struct mg_ctx *c = ctx;
	const char *p = text, *e = text + n;
	int64_t step = 0, layer = 0, topk = -1, ntok = -1, x, maxid = -1, rows = 0, k0 = -1;
	unsigned seen = 0;

	if (!c->hist && !(c->hist = calloc(STORE_MAX_EXPERTS, sizeof(*c->hist))))
		return 0;
	if (p >= e || *p != '{')
		goto undo;
	p = imp_ws(p + 1, e);
	for (;;) {
		const char *k, *ke;
		unsigned bit;
		if (p >= e || *p != '"')
			goto undo;
		for (k = ++p; p < e && *p != '"' && *p != '\\'; p++)
			;
		if (p >= e || *p != '"')
			goto undo;
		ke = p++;
		p = imp_ws(p, e);
		if (p >= e || *p != ':')
			goto undo;
		p = imp_ws(p + 1, e);
#define KEY(s) ((size_t)(ke - k) == sizeof(s) - 1 && !memcmp(k, s, sizeof(s) - 1))
		if (KEY("step") || KEY("layer") || KEY("topk") || KEY("num_tokens") || KEY("rank")) {
			bit = KEY("step") ? 1 : KEY("layer") ? 2 : KEY("topk") ? 4
			      : KEY("num_tokens") ? 8 : 16;
			if (!(p = imp_int(p, e, &x)) || x < 0)
				goto undo;
			if (bit == 1)
				step = x;
			else if (bit == 2)
				layer = x;
			else if (bit == 4)
				topk = x;
			else if (bit == 8)
				ntok = x;
		} else if (KEY("stage") || KEY("block")) {
			const char *v;
			bit = KEY("stage") ? 32 : 64;
			if (p >= e || *p != '"')
				goto undo;
			for (v = ++p; p < e && *p != '"' && *p != '\\'; p++)
				;
			if (p >= e || *p != '"')
				goto undo;
			if (bit == 64 && ((size_t)(p - v) != 7 || memcmp(v, "decoder", 7)))
				goto undo;
			p++;
		} else if (KEY("top_indices")) {
			bit = 128;
			if (p >= e || *p != '[')
				goto undo;
			p = imp_ws(p + 1, e);
			if (p < e && *p == ']') {
				p++;
			} else {
				for (;;) {
					int64_t kk = 0;
					if (p >= e || *p != '[')
						goto undo;
					p = imp_ws(p + 1, e);
					for (;;) {
						if (!(p = imp_int(p, e, &x)) || x < -1 ||
						    x >= STORE_MAX_EXPERTS)
							goto undo;
						if (x >= 0) {
							c->hist[x]++;
							maxid = x > maxid ? x : maxid;
						}
						kk++;
						p = imp_ws(p, e);
						if (p < e && *p == ',') {
							p = imp_ws(p + 1, e);
							continue;
						}
						if (p < e && *p == ']')
							break;
						goto undo;
					}
					if (k0 >= 0 && kk != k0)
						goto undo;
					k0 = kk;
					rows++;
					p = imp_ws(p + 1, e);
					if (p < e && *p == ',') {
						p = imp_ws(p + 1, e);
						continue;
					}
					if (p < e && *p == ']')
						break;
					goto undo;
				}
				p++;
			}
		} else {
			goto undo;
		}
#undef KEY
		if (seen & bit)
			goto undo;
		seen |= bit;
		p = imp_ws(p, e);
		if (p < e && *p == ',') {
			p = imp_ws(p + 1, e);
			continue;
		}
		if (p < e && *p == '}')
			break;
		goto undo;
	}
	if (imp_ws(p + 1, e) != e || (seen & 3) != 3 || !(seen & 128) || layer > (1 << 20) ||
	    (topk >= 0 && (topk < 1 || topk > STORE_MAX_EXPERTS || (k0 >= 0 && k0 != topk))) ||
	    (ntok >= 0 && ntok != rows))
		goto undo;
	if (topk < 0)
		topk = k0;
	if (topk > 0 && c->b->topk && c->b->topk != topk)
		goto undo;
	if (topk > 0)
		c->b->topk = (int)topk;
	int rc = imp_add(c->b, c->src, line, step, layer, -1, 0, -1, c->hist, (size_t)(maxid + 1),
			 0, err);
	memset(c->hist, 0, (size_t)(maxid + 1) * sizeof(*c->hist));
	return rc ? rc : 1;
undo:
	if (maxid >= 0)
		memset(c->hist, 0, (size_t)(maxid + 1) * sizeof(*c->hist));
	return 0;
}

static int on_line(void *ctx, struct json_object *o, int64_t line, const char *w,
		   struct util_err *err)
{
	struct mg_ctx *c = ctx;
	struct imp *b = c->b;
	struct json_object *v, *ti, *tpe;
	int64_t step = 0, layer = 0, topk = -1, ntok = -1;
	uint32_t *h;
	int rc;

	if ((json_object_object_get_ex(o, "block", &v) && json_object_is_type(v, json_type_string) &&
	     strcmp(json_object_get_string(v), "decoder") != 0) ||
	    json_object_object_get_ex(o, "mtp_idx", NULL)) {
		c->skipped++;
		return 0;
	}
	if ((rc = imp_json_field_i64(o, "step", 1, 0, INT64_MAX - 1, &step, w, err)) ||
	    (rc = imp_json_field_i64(o, "layer", 1, 0, 1 << 20, &layer, w, err)) ||
	    (rc = imp_json_field_i64(o, "topk", 0, 1, STORE_MAX_EXPERTS, &topk, w, err)) ||
	    (rc = imp_json_field_i64(o, "num_tokens", 0, 0, INT64_MAX - 1, &ntok, w, err)))
		return rc;
	if (json_object_object_get_ex(o, "tokens_per_expert", &tpe)) {
		uint32_t *vals;
		size_t n;
		if ((rc = imp_json_counts(b, tpe, "tokens_per_expert", &vals, &n, w, err)))
			return rc;
		if (topk > 0 && !b->topk)
			b->topk = (int)topk;
		return imp_add(b, c->src, line, step, layer, -1, 0, -1, vals, n, 1, err);
	}
	if (!json_object_object_get_ex(o, "top_indices", &ti))
		return util_err_set(err, UTIL_EPARSE,
				    "%s: missing field 'top_indices' (or 'tokens_per_expert')", w);
	if (!json_object_is_type(ti, json_type_array))
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'top_indices': not an array of per-token expert ids", w);
	size_t nt = json_object_array_length(ti);
	if (ntok >= 0 && (size_t)ntok != nt)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'top_indices': %zu tokens, 'num_tokens' says %lld", w, nt,
				    (long long)ntok);
	if (!(h = imp_scratch(b, STORE_MAX_EXPERTS, err)))
		return UTIL_ENOMEM;
	int64_t maxid = -1;
	for (size_t t = 0; t < nt; t++) {
		struct json_object *row = json_object_array_get_idx(ti, t);
		if (!json_object_is_type(row, json_type_array))
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field 'top_indices'[%zu]: not an array of expert ids", w,
					    t);
		size_t k = json_object_array_length(row);
		if (topk > 0 && (int64_t)k != topk)
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field 'top_indices'[%zu]: %zu ids, 'topk' says %lld", w,
					    t, k, (long long)topk);
		for (size_t j = 0; j < k; j++) {
			struct json_object *x = json_object_array_get_idx(row, j);
			int64_t id;
			if (!json_object_is_type(x, json_type_int))
				return util_err_set(err, UTIL_EPARSE,
						    "%s: field 'top_indices'[%zu][%zu]: %.40s is not an "
						    "expert id",
						    w, t, j, json_object_to_json_string(x));
			id = json_object_get_int64(x);
			if (id == -1)
				continue; /* a padded or dropped slot */
			if (id < 0 || id >= STORE_MAX_EXPERTS)
				return util_err_set(err, UTIL_EPARSE,
						    "%s: field 'top_indices'[%zu][%zu]: expert %lld is out "
						    "of range [0, %d)",
						    w, t, j, (long long)id, STORE_MAX_EXPERTS);
			h[id]++;
			if (id > maxid)
				maxid = id;
		}
		if (topk < 0)
			topk = (int64_t)k;
	}
	if (topk > 0) {
		if (b->topk && b->topk != topk)
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field 'topk': %lld, earlier records have %d", w,
					    (long long)topk, b->topk);
		b->topk = (int)topk;
	}
	return imp_add(b, c->src, line, step, layer, -1, 0, -1, h, (size_t)(maxid + 1), 0, err);
}

int collector_import_megatron(struct store *s, const char *path,
			      const struct collector_import_opts *o, struct store_run *run,
			      struct util_err *err)
{
	struct imp b;
	struct mg_ctx c = { &b, 0, 0, NULL };
	struct stat sb;
	char **files = NULL;
	size_t nf = 0;
	int rc = 0;

	imp_init(&b, "megatron", 1);
	if (stat(path, &sb) != 0) {
		rc = util_err_set(err, UTIL_EIO, "cannot open '%s': %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		if ((rc = imp_list_dir(path, "router_trace_rank", ".jsonl", &files, &nf, err)))
			goto out;
		if (nf == 0) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "'%s': no router_trace_rank*.jsonl files in the directory", path);
			goto out;
		}
	} else {
		if (!(files = malloc(sizeof(*files))) || !(files[0] = strdup(path))) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		nf = 1;
	}
	for (size_t i = 0; i < nf; i++) {
		if ((c.src = rc = imp_source(&b, files[i], err)) < 0 ||
		    (rc = imp_jsonl_each(files[i], fast_line, on_line, &c, err)))
			goto out;
	}
	rc = imp_finish(&b, s, o, path, run, err);
out:
	imp_free_list(files, nf);
	free(c.hist);
	imp_release(&b);
	return rc;
}

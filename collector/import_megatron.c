/*
 * import_megatron.c: Megatron-LM routing traces.  Megatron's router tracer
 * (megatron/core/transformer/moe/router_trace.py, --moe-routing-trace-path)
 * writes one file per rank, router_trace_rank{R}.jsonl, one line per
 * (step, block, layer):
 *   {"step": 0, "stage": "pre_dispatch", "block": "decoder", "layer": 3,
 *    "rank": 0, "num_tokens": 128, "topk": 8, "top_indices": [[12, 45, ...], ...]}
 * The top-k ids of every token are histogrammed here; lines that carry
 * "tokens_per_expert": [E] instead (a per-layer counts hook) are taken as
 * they are.  Each rank saw its own tokens, so ranks are summed: a
 * directory must hold every rank's file once, named as the tracer names
 * it, each record's "rank" that of its file's name.  "mtp"
 * blocks (multi-token prediction heads) are not model MoE layers and are
 * skipped.  Layer numbers are model layer ids of the rank's pipeline stage:
 * the tracer takes them from the module name decoder.layers.<i>, which each
 * stage numbers from 0, so with --pipeline-stages the stages' layers are
 * put one after the other.  In training the tracer stamps every record of
 * an iteration with it, so the microbatches of a step repeat a layer in
 * one file; those are summed.
 *
 * Megatron's tokens-per-expert logs (megatron/training/activation_logging.py,
 * --save-tokens-per-expert-interval) are read here too: {save}/
 * tokens_per_expert/rank{R}.jsonl, one line per (iteration, block, layer),
 *   {"iter": 100, "block": "decoder", "layer": 3, "tpe": [[128, 64], ...]}
 * "tpe" holds, per microbatch, the tokens of the rank's local experts (the
 * grouped MLP's tokens_per_expert input); the rank's expert-parallel rank
 * places them among all experts.
 */
#include "collector/import_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct mg_ctx {
	struct imp *b;
	const struct collector_import_opts *o;
	int src;
	int64_t skipped;
	uint32_t *hist;          /* fast path: the line's histogram [STORE_MAX_EXPERTS] */
	int rank;                /* the file's rank (from its name), -1 if unknown */
	int name_rank;           /* its rank by the tracer's own naming, -1 if not so named */
	int rank_per_stage;      /* ranks in one pipeline stage, 0 if unknown (one file) */
	int local;               /* tpe: local experts per rank, 0 until the first line */
};

/* tokens_per_expert lines: the microbatches summed, placed at the rank's
 * expert-parallel offset (expert rank order tp-ep-dp-pp of Megatron's
 * parallel_state with expert tensor parallelism 1: ep_rank = the rank
 * within its stage modulo the EP size, E / local experts). */
static int tpe_line(struct mg_ctx *c, struct json_object *o, struct json_object *tpe,
		    int64_t line, const char *w, struct util_err *err)
{
	struct imp *b = c->b;
	int64_t step = 0, layer = 0;
	int E = c->o->experts ? c->o->experts : c->o->model ? c->o->model->experts : 0;
	int ep, ep_rank;
	size_t nmb, El = 0;
	uint32_t *h;
	int rc;

	if ((rc = imp_json_field_i64(o, "iter", 1, 0, INT64_MAX - 1, &step, w, err)) ||
	    (rc = imp_json_field_i64(o, "layer", 1, 0, 1 << 20, &layer, w, err)))
		return rc;
	if (!json_object_is_type(tpe, json_type_array) || !(nmb = json_object_array_length(tpe)))
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'tpe': not an array of per-microbatch counts", w);
	for (size_t m = 0; m < nmb; m++) {
		struct json_object *row = json_object_array_get_idx(tpe, m);
		size_t n = json_object_is_type(row, json_type_array) ? json_object_array_length(row) : 0;
		if (!n || (El && n != El))
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field 'tpe'[%zu]: expected %s of local expert counts",
					    w, m, El ? "the same number" : "a non-empty array");
		El = n;
	}
	if (c->local && (int)El != c->local)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'tpe': %zu local experts, earlier lines have %d", w,
				    El, c->local);
	c->local = (int)El;
	if (E) {
		if (E % (int)El || E < (int)El)
			return util_err_set(err, UTIL_ERANGE,
					    "%s: field 'tpe': %zu local experts do not divide the "
					    "run's %d experts",
					    w, El, E);
		ep = E / (int)El;
	} else {
		/* every rank of a stage an EP rank; one file alone: its experts */
		ep = c->rank_per_stage ? c->rank_per_stage : 1;
	}
	if (c->rank < 0 && ep > 1)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: no rank in the file name (rank{R}.jsonl), so its %zu local "
				    "experts cannot be placed among %d",
				    w, El, ep * (int)El);
	ep_rank = c->rank < 0 ? 0 : (c->rank_per_stage ? c->rank % c->rank_per_stage : c->rank) % ep;
	if ((size_t)(ep_rank + 1) * El > STORE_MAX_EXPERTS)
		return util_err_set(err, UTIL_ERANGE, "%s: expert %zu is out of range [0, %d)", w,
				    (ep_rank + 1) * El - 1, STORE_MAX_EXPERTS);
	if (!(h = imp_scratch(b, (size_t)(ep_rank + 1) * El, err)))
		return UTIL_ENOMEM;
	for (size_t m = 0; m < nmb; m++) {
		struct json_object *row = json_object_array_get_idx(tpe, m);
		for (size_t k = 0; k < El; k++) {
			uint64_t v;
			uint32_t *cell = &h[(size_t)ep_rank * El + k];
			if (imp_json_u64(json_object_array_get_idx(row, k), &v) || v > UINT32_MAX)
				return util_err_set(err, UTIL_EPARSE,
						    "%s: field 'tpe'[%zu][%zu]: not a count (a "
						    "non-negative 32-bit integer)",
						    w, m, k);
			if (*cell > UINT32_MAX - v)
				return util_err_set(err, UTIL_ERANGE,
						    "%s: field 'tpe'[%zu][%zu]: the sum over "
						    "microbatches overflows a 32-bit count",
						    w, m, k);
			*cell += (uint32_t)v;
		}
	}
	return imp_add(b, c->src, line, step, layer, -1, 0, -1, h, (size_t)(ep_rank + 1) * El, 0,
		       err);
}

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
	int64_t rank = -1;
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
			else
				rank = x;
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
	    (ntok >= 0 && ntok != rows) || (c->name_rank >= 0 && rank >= 0 && rank != c->name_rank))
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

/* The tracer stamps every record with its rank and names the file after
 * it: a record of another rank is a file renamed or copied over another's. */
static int check_rank(const struct mg_ctx *c, struct json_object *o, const char *w,
		      struct util_err *err)
{
	int64_t rank = -1;
	int rc;

	if (c->name_rank < 0 || !json_object_object_get_ex(o, "rank", NULL))
		return 0;
	if ((rc = imp_json_field_i64(o, "rank", 1, 0, INT32_MAX, &rank, w, err)))
		return rc;
	if (rank != c->name_rank)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'rank': %lld, but the file's name is rank %d's: a "
				    "file of another rank renamed or copied?",
				    w, (long long)rank, c->name_rank);
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

	if ((rc = check_rank(c, o, w, err)))
		return rc;
	if ((json_object_object_get_ex(o, "block", &v) && json_object_is_type(v, json_type_string) &&
	     strcmp(json_object_get_string(v), "decoder") != 0) ||
	    json_object_object_get_ex(o, "mtp_idx", NULL)) {
		c->skipped++;
		return 0;
	}
	if (json_object_object_get_ex(o, "tpe", &tpe))
		return tpe_line(c, o, tpe, line, w, err);
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

/* The rank in a file name (router_trace_rank12.jsonl, rank12.jsonl), -1 if none. */
static int file_rank(const char *path)
{
	const char *base = strrchr(path, '/'), *p;
	long r = -1;

	base = base ? base + 1 : path;
	for (p = strstr(base, "rank"); p; p = strstr(p + 1, "rank")) {
		char *end;
		if (p[4] < '0' || p[4] > '9')
			continue;
		r = strtol(p + 4, &end, 10);
		if (r > 1 << 24)
			r = -1;
	}
	return (int)r;
}

/* With P pipeline stages: stage of each source from its rank (source r is
 * rank r's file, as imp_list_ranks lists them; Megatron's rank order puts
 * the pipeline outermost: ranks s*N/P .. (s+1)*N/P-1 form
 * stage s), then each stage's layer ids after the previous stages' (a
 * stage's layer count is its largest traced id plus one). */
static int stack_stages(struct imp *b, size_t nf, int P, const char *path, struct util_err *err)
{
	int64_t *top = NULL, *off = NULL;
	int per = (int)nf / P, rc = 0;
	size_t k = 0;

	if (nf % (size_t)P)
		return util_err_set(err, UTIL_EUSAGE,
				    "'%s': %zu rank files do not split into %d pipeline stages", path,
				    nf, P);
	top = malloc((size_t)P * sizeof(*top));
	off = malloc((size_t)P * sizeof(*off));
	if (!top || !off) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (int st = 0; st < P; st++)
		top[st] = -1;
	for (size_t i = 0; i < b->n; i++) {
		int st = b->recs[i].src / per;
		if (b->recs[i].layer > top[st])
			top[st] = b->recs[i].layer;
	}
	for (int st = 0; st < P; st++) {
		if (top[st] < 0) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "'%s': pipeline stage %d (ranks %d to %d) has no MoE records",
					  path, st, st * per, st * per + per - 1);
			goto out;
		}
		off[st] = st ? off[st - 1] + top[st - 1] + 1 : 0;
	}
	for (size_t i = 0; i < b->n; i++)
		b->recs[i].layer += off[b->recs[i].src / per];
	k = (size_t)snprintf(b->note, sizeof(b->note), "%d pipeline stages, layer ids offset by",
			     P);
	for (int st = 0; st < P && k < sizeof(b->note); st++)
		k += (size_t)snprintf(b->note + k, sizeof(b->note) - k, "%s %lld", st ? "," : "",
				      (long long)off[st]);
out:
	free(top);
	free(off);
	return rc;
}

/* The files to read: one, or a directory's rank files (router traces;
 * else tokens-per-expert logs, in the directory or in its
 * tokens_per_expert/, the --save directory), (*files)[r] rank r's. */
static int list_files(const char *path, char ***files, size_t *nf, int *dir,
		      struct util_err *err)
{
	struct stat sb;
	char sub[4096];
	int rc;

	*files = NULL;
	*nf = 0;
	if (stat(path, &sb) != 0)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	if (!(*dir = S_ISDIR(sb.st_mode))) {
		if (!(*files = malloc(sizeof(**files))) || !(**files = strdup(path)))
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
		*nf = 1;
		return 0;
	}
	if ((rc = imp_list_ranks(path, "router_trace_rank", ".jsonl", "Megatron-LM", files, nf,
				 err)) ||
	    (*nf == 0 &&
	     (rc = imp_list_ranks(path, "rank", ".jsonl", "Megatron-LM", files, nf, err))))
		return rc;
	snprintf(sub, sizeof(sub), "%s/tokens_per_expert", path);
	if (*nf == 0 && stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		free(*files);
		if ((rc = imp_list_ranks(sub, "rank", ".jsonl", "Megatron-LM", files, nf, err)))
			return rc;
	}
	if (*nf == 0)
		return util_err_set(err, UTIL_EPARSE,
				    "'%s': no router_trace_rank*.jsonl files (nor "
				    "tokens_per_expert/rank*.jsonl) in the directory",
				    path);
	return 0;
}

int collector_import_megatron(struct store *s, const char *path,
			      const struct collector_import_opts *o, struct store_run *run,
			      struct util_err *err)
{
	struct imp b;
	struct mg_ctx c = { &b, o, 0, 0, NULL, -1, -1, 1, 0 };
	char **files = NULL;
	size_t nf = 0;
	int rc, dir = 0, P = o->pipeline_stages > 1 ? o->pipeline_stages : 1;

	imp_init(&b, "megatron", 1);
	b.sum_repeats = 1;
	if ((rc = list_files(path, &files, &nf, &dir, err)))
		goto out;
	c.rank_per_stage = nf == 1 || nf % (size_t)P ? 0 : (int)nf / P;
	for (size_t i = 0; i < nf; i++) {
		/* a directory's file i is rank i's (imp_list_ranks); one file
		 * given alone has the rank its name shows, if any */
		const char *base = strrchr(files[i], '/') ? strrchr(files[i], '/') + 1 : files[i];
		c.rank = dir ? (int)i : file_rank(files[i]);
		c.name_rank = dir ? (int)i : imp_rank_of_name(base, "router_trace_rank", ".jsonl");
		if ((c.src = rc = imp_source(&b, files[i], err)) < 0 ||
		    (rc = imp_jsonl_each(files[i], fast_line, on_line, &c, err)))
			goto out;
	}
	if (P > 1 && (rc = stack_stages(&b, nf, P, path, err)))
		goto out;
	rc = imp_finish(&b, s, o, path, run, err);
out:
	imp_free_list(files, nf);
	free(c.hist);
	imp_release(&b);
	return rc;
}

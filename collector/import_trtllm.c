/*
 * import_trtllm.c: TensorRT-LLM expert statistics, and the safetensors
 * reader they need.  With EXPERT_STATISTIC_ITER_RANGE=A-B and
 * EXPERT_STATISTIC_PATH=DIR, TensorRT-LLM (tensorrt_llm/_torch/
 * expert_statistic.py) writes DIR/meta_info.json = {"num_experts": E,
 * "num_experts_per_token": K} and, per rank, DIR/rank{R}.safetensors with
 * one tensor per (iteration, MoE layer) keyed "{iter}_{layer}": that
 * rank's tokens per expert, int64 [E] (torch.bincount).  The example
 * tools (examples/ep_load_balancer/utils.py) sum the ranks and require
 * every (iter, layer) key; so do we.  Layers are model layer ids.
 *
 * safetensors: 8 bytes little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "I64", "shape": [...], "data_offsets": [b, e]}, ...,
 * "__metadata__": {...}}, then the raw little-endian arrays; offsets count
 * from the end of the header.
 */
#include "collector/import_int.h"
#include "analyze/analyze.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* clang-format off */
static const struct { const char *name; int size, integer, is_signed; } dtypes[] = {
	{ "BOOL", 1, 0, 0 }, { "U8", 1, 1, 0 },  { "I8", 1, 1, 1 },  { "F8_E4M3", 1, 0, 0 },
	{ "F8_E5M2", 1, 0, 0 }, { "U16", 2, 1, 0 }, { "I16", 2, 1, 1 }, { "F16", 2, 0, 0 },
	{ "BF16", 2, 0, 0 }, { "U32", 4, 1, 0 }, { "I32", 4, 1, 1 }, { "F32", 4, 0, 0 },
	{ "U64", 8, 1, 0 },  { "I64", 8, 1, 1 }, { "F64", 8, 0, 0 },
};
/* clang-format on */

static int dtype_find(const char *s)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(dtypes); i++)
		if (!strcmp(s, dtypes[i].name))
			return (int)i;
	return -1;
}

int collector_st_parse(const char *path, const uint8_t *buf, size_t len,
		       struct collector_st_tensor **tensors, size_t *n, struct util_err *err)
{
	struct util_json_err je;
	struct json_object *hdr;
	struct collector_st_tensor *t = NULL;
	uint64_t hlen = 0;
	size_t nt = 0, data_len;
	const uint8_t *data;
	int rc = 0;

	*tensors = NULL;
	*n = 0;
	if (len < 8)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: truncated: %zu bytes, a safetensors file starts with an "
				    "8-byte header length",
				    path, len);
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | buf[i];
	if (hlen > len - 8)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: truncated header: its length field says %llu bytes, %zu follow",
				    path, (unsigned long long)hlen, len - 8);
	if (hlen < 2 || hlen > (100u << 20))
		return util_err_set(err, UTIL_EPARSE, "%s: header length %llu is not plausible",
				    path, (unsigned long long)hlen);
	data = buf + 8 + hlen;
	data_len = len - 8 - (size_t)hlen;
	/* strict: a tensor name (or a field of one) given twice would leave
	 * json-c's last one and drop the other's data without a word */
	if ((rc = util_json_parse((const char *)buf + 8, (size_t)hlen, &hdr, &je))) {
		if (rc == UTIL_ENOMEM)
			return util_err_set(err, rc, "out of memory");
		return util_err_set(
			err, rc, je.syntax ? "%s: header is not valid JSON: %s" : "%s: header: %s",
			path, je.what);
	}
	if (!json_object_is_type(hdr, json_type_object)) {
		json_object_put(hdr);
		return util_err_set(err, UTIL_EPARSE, "%s: header is not a JSON object", path);
	}
	t = calloc((size_t)json_object_object_length(hdr) + 1, sizeof(*t));
	if (!t) {
		json_object_put(hdr);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	json_object_object_foreach(hdr, key, val)
	{
		struct json_object *dt, *sh, *off;
		struct collector_st_tensor *x = &t[nt];
		uint64_t numel = 1, b0, b1;
		int d;

		if (!strcmp(key, "__metadata__"))
			continue;
		if (strlen(key) >= sizeof(x->name)) {
			rc = util_err_set(err, UTIL_EPARSE, "%s: tensor name '%.40s...' is too long",
					  path, key);
			break;
		}
		if (!json_object_is_type(val, json_type_object) ||
		    !json_object_object_get_ex(val, "dtype", &dt) ||
		    !json_object_object_get_ex(val, "shape", &sh) ||
		    !json_object_object_get_ex(val, "data_offsets", &off)) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "%s: key '%s': expected an object with dtype, shape and "
					  "data_offsets",
					  path, key);
			break;
		}
		snprintf(x->name, sizeof(x->name), "%s", key);
		if (!json_object_is_type(dt, json_type_string) ||
		    (d = dtype_find(json_object_get_string(dt))) < 0) {
			rc = util_err_set(err, UTIL_EPARSE, "%s: key '%s': field 'dtype': unknown %.20s",
					  path, key, json_object_to_json_string(dt));
			break;
		}
		snprintf(x->dtype, sizeof(x->dtype), "%s", dtypes[d].name);
		if (!json_object_is_type(sh, json_type_array) || json_object_array_length(sh) > 4) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "%s: key '%s': field 'shape': not an array of at most 4 sizes",
					  path, key);
			break;
		}
		x->ndim = (int)json_object_array_length(sh);
		for (int i = 0; i < x->ndim && !rc; i++) {
			uint64_t v;
			if (imp_json_u64(json_object_array_get_idx(sh, (size_t)i), &v) ||
			    v > (1u << 30))
				rc = util_err_set(err, UTIL_EPARSE,
						  "%s: key '%s': field 'shape'[%d]: not a size", path, key,
						  i);
			x->shape[i] = (int64_t)v;
			numel *= v;
		}
		if (rc)
			break;
		if (!json_object_is_type(off, json_type_array) || json_object_array_length(off) != 2 ||
		    imp_json_u64(json_object_array_get_idx(off, 0), &b0) ||
		    imp_json_u64(json_object_array_get_idx(off, 1), &b1) || b0 > b1) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "%s: key '%s': field 'data_offsets': not [begin, end]", path,
					  key);
			break;
		}
		if (b1 > data_len) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "%s: key '%s': field 'data_offsets': [%llu, %llu] runs past "
					  "the %zu data bytes (truncated file?)",
					  path, key, (unsigned long long)b0, (unsigned long long)b1,
					  data_len);
			break;
		}
		if (b1 - b0 != numel * (uint64_t)dtypes[d].size) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "%s: key '%s': %llu data bytes for %llu values of %s", path,
					  key, (unsigned long long)(b1 - b0), (unsigned long long)numel,
					  dtypes[d].name);
			break;
		}
		x->data = data + b0;
		x->bytes = (size_t)(b1 - b0);
		nt++;
	}
	json_object_put(hdr);
	if (rc) {
		free(t);
		return rc;
	}
	*tensors = t;
	*n = nt;
	return 0;
}

/* Value i of an integer tensor, its little-endian bytes as they are. */
static uint64_t st_raw(const struct collector_st_tensor *x, int d, size_t i)
{
	const uint8_t *p = x->data + i * (size_t)dtypes[d].size;
	uint64_t u = 0;

	for (int k = dtypes[d].size - 1; k >= 0; k--)
		u = u << 8 | p[k];
	return u;
}

/* Reads value i of an integer tensor as int64; a U64 past INT64_MAX reads
 * as INT64_MAX (st_text tells its value). */
static int64_t st_int(const struct collector_st_tensor *x, int d, size_t i)
{
	uint64_t u = st_raw(x, d, i);

	if (dtypes[d].is_signed && dtypes[d].size < 8 && (u >> (8 * dtypes[d].size - 1)) & 1)
		u |= ~0ull << (8 * dtypes[d].size);
	if (!dtypes[d].is_signed && dtypes[d].size == 8 && u > INT64_MAX)
		return INT64_MAX;
	return (int64_t)u;
}

/* Value i as the file holds it, in decimal, for messages. */
static void st_text(const struct collector_st_tensor *x, int d, size_t i, char *buf, size_t n)
{
	if (dtypes[d].is_signed)
		snprintf(buf, n, "%lld", (long long)st_int(x, d, i));
	else
		snprintf(buf, n, "%llu", (unsigned long long)st_raw(x, d, i));
}

static int parse_key(const char *k, int64_t *iter, int64_t *layer)
{
	char *e;
	if (*k < '0' || *k > '9')
		return -1;
	errno = 0;
	*iter = strtoll(k, &e, 10);
	if (errno || *e != '_' || e[1] < '0' || e[1] > '9')
		return -1;
	*layer = strtoll(e + 1, &e, 10);
	if (errno || *e || *layer > (1 << 20))
		return -1;
	return 0;
}

static int read_rank(struct imp *b, const char *file, struct util_err *err)
{
	struct collector_st_tensor *t = NULL;
	char *buf = NULL;
	size_t len, nt;
	int rc, src;

	if ((rc = imp_read_file(file, &buf, &len, err)))
		return rc;
	if ((src = rc = imp_source(b, file, err)) < 0 ||
	    (rc = collector_st_parse(file, (const uint8_t *)buf, len, &t, &nt, err)))
		goto out;
	if (nt == 0) {
		rc = util_err_set(err, UTIL_EPARSE, "%s: no tensors", file);
		goto out;
	}
	for (size_t i = 0; i < nt; i++) {
		const struct collector_st_tensor *x = &t[i];
		int64_t iter, layer, numel;
		int d = dtype_find(x->dtype);
		uint32_t *v;
		if (parse_key(x->name, &iter, &layer)) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "%s: key '%s' does not match '{iter}_{layer}' (e.g. '120_3')",
					  file, x->name);
			goto out;
		}
		if (!dtypes[d].integer) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "%s: key '%s': field 'dtype': %s is not an integer type "
					  "(TensorRT-LLM writes I64 token counts)",
					  file, x->name, x->dtype);
			goto out;
		}
		if (x->ndim != 1 || x->shape[0] < 1 || x->shape[0] > STORE_MAX_EXPERTS) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "%s: key '%s': field 'shape': expected [experts], got %d "
					  "dimensions",
					  file, x->name, x->ndim);
			goto out;
		}
		numel = x->shape[0];
		if (!(v = imp_scratch(b, (size_t)numel, err))) {
			rc = UTIL_ENOMEM;
			goto out;
		}
		for (int64_t e = 0; e < numel; e++) {
			int64_t c = st_int(x, d, (size_t)e);
			if (c < 0 || c > UINT32_MAX) {
				char val[24];
				st_text(x, d, (size_t)e, val, sizeof(val));
				rc = util_err_set(err, UTIL_EPARSE,
						  "%s: key '%s': expert %lld: %s is %s", file,
						  x->name, (long long)e, val,
						  c < 0 ? "negative" : "past a 32-bit count");
				goto out;
			}
			v[e] = (uint32_t)c;
		}
		if ((rc = imp_add(b, src, (int64_t)i + 1, iter, layer, -1, 0, -1, v, (size_t)numel, 1,
				  err)))
			goto out;
	}
	rc = 0;
out:
	free(t);
	free(buf);
	return rc;
}

static int read_meta(struct imp *b, const char *file, struct util_err *err)
{
	struct json_object *o = NULL;
	char *buf = NULL;
	size_t len;
	int64_t e = 0, k = 0;
	int rc;

	if ((rc = imp_read_file(file, &buf, &len, err)))
		return rc;
	if ((rc = util_json_parse_named(file, buf, len, &o, err)))
		goto out;
	if (!json_object_is_type(o, json_type_object)) {
		rc = util_err_set(err, UTIL_EPARSE, "%s: not a JSON object", file);
		goto out;
	}
	if ((rc = imp_json_field_i64(o, "num_experts", 1, 1, STORE_MAX_EXPERTS, &e, file, err)) ||
	    (rc = imp_json_field_i64(o, "num_experts_per_token", 0, 1, STORE_MAX_EXPERTS, &k, file,
				     err)))
		goto out;
	b->experts = (int)e;
	b->topk = (int)k;
out:
	json_object_put(o);
	free(buf);
	return rc;
}

static int cmp_pair(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return (x[1] > y[1]) - (x[1] < y[1]);
}

static int cmp_i64v(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Every (iter, layer) of the grid must be in some rank's file, as
 * TensorRT-LLM's own tools assert. */
static int check_grid(const struct imp *b, const char *dir, struct util_err *err)
{
	int64_t *p = malloc(b->n * 4 * sizeof(*p)), *st, *ly;
	size_t ns = 0, nl = 0;
	int rc = 0;

	if (!p)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	st = p + 2 * b->n;
	ly = st + b->n;
	for (size_t i = 0; i < b->n; i++) {
		p[2 * i] = b->recs[i].step;
		p[2 * i + 1] = b->recs[i].layer;
		st[i] = b->recs[i].step;
		ly[i] = b->recs[i].layer;
	}
	qsort(p, b->n, 2 * sizeof(*p), cmp_pair);
	qsort(st, b->n, sizeof(*st), cmp_i64v);
	qsort(ly, b->n, sizeof(*ly), cmp_i64v);
	for (size_t i = 0; i < b->n; i++) {
		if (!ns || st[i] != st[ns - 1])
			st[ns++] = st[i];
		if (!nl || ly[i] != ly[nl - 1])
			ly[nl++] = ly[i];
	}
	for (size_t i = 0; i < ns && !rc; i++)
		for (size_t l = 0; l < nl && !rc; l++) {
			int64_t key[2] = { st[i], ly[l] };
			if (!bsearch(key, p, b->n, 2 * sizeof(*p), cmp_pair))
				rc = util_err_set(err, UTIL_EPARSE,
						  "%s: key '%lld_%lld' is in no rank file (%zu iterations "
						  "x %zu layers need every key)",
						  dir, (long long)key[0], (long long)key[1], ns, nl);
		}
	free(p);
	return rc;
}

/*
 * With its MoE load balancer on, TensorRT-LLM records statistics of global
 * slots, not experts: the MoE modules call ExpertStatistic.maybe_add_info
 * with num_slots and the routed slot ids, so meta_info.json's num_experts
 * is the slot count.  The load-balancer YAML's initial_global_assignments
 * (the expert of each global slot, per layer) folds them back; a placement
 * the balancer moved online (layer_updates_per_iter > 0) cannot be.
 */
static int fold_slots(struct imp *b, const struct collector_import_opts *o, const char *meta,
		      struct util_err *err)
{
	struct analyze_trtllm_lb lb;
	int E = o->experts ? o->experts : o->model ? o->model->experts : 0, rc;
	int64_t *ids = NULL;
	size_t nd = 0;
	uint32_t *tmp = NULL;

	memset(&lb, 0, sizeof(lb));
	if (!b->experts && b->n) /* no meta_info.json: the vectors' length */
		b->experts = (int)b->recs[0].n;
	if (o->deployed && analyze_format_is_yaml(o->deployed)) {
		if ((rc = analyze_trtllm_lb_read(o->deployed, &lb, err)))
			return rc;
		if (!E && lb.layers)
			for (size_t i = 0; i < (size_t)lb.layers * (size_t)lb.num_slots; i++)
				E = lb.ids[i] + 1 > E ? lb.ids[i] + 1 : E;
	}
	if (lb.num_slots <= 0) {
		/* no load-balancer file: counts past the run's experts are slots */
		rc = 0;
		if (E && b->experts > E)
			rc = util_err_set(err, UTIL_ERANGE,
					  "%s: num_experts is %d, the run has %d experts: TensorRT-LLM "
					  "counts load-balancer slots, not experts, when its MoE load "
					  "balancer is on; give its load-balancer YAML with --deployed "
					  "to fold the slots back to experts",
					  meta, b->experts, E);
		goto out;
	}
	/* with its load balancer on, TensorRT-LLM records num_slots counts */
	if (b->experts != lb.num_slots) {
		rc = util_err_set(err, UTIL_ERANGE,
				  "%s: num_experts is %d, but '%s' has %ld slots: these statistics "
				  "were not recorded under that load balancer",
				  meta, b->experts, o->deployed, lb.num_slots);
		goto out;
	}
	if (!lb.layers || lb.updates > 0) {
		rc = util_err_set(err, UTIL_EUSAGE,
				  "%s: the %d counts per layer are load-balancer slots and '%s' %s, "
				  "so which expert a slot held is not recorded: record the statistics "
				  "with a static placement (layer_updates_per_iter: 0 and "
				  "initial_global_assignments) or with the load balancer off",
				  meta, b->experts, o->deployed,
				  lb.updates > 0 ? "moved the placement online (layer_updates_per_iter > 0)"
						 : "has no initial_global_assignments");
		goto out;
	}
	if (E > lb.num_slots) {
		rc = util_err_set(err, UTIL_ERANGE, "'%s': %ld slots cannot hold the run's %d experts",
				  o->deployed, lb.num_slots, E);
		goto out;
	}
	/* the records' layer ids, in order, against the file's keys (model
	 * layer ids as TensorRT-LLM writes them, or 0..L-1) */
	if (!(ids = malloc(b->n * sizeof(*ids))) || !(tmp = calloc((size_t)E, sizeof(*tmp)))) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		ids[i] = b->recs[i].layer;
	qsort(ids, b->n, sizeof(*ids), cmp_i64v);
	for (size_t i = 0; i < b->n; i++)
		if (!nd || ids[i] != ids[nd - 1])
			ids[nd++] = ids[i];
	if ((int)nd != lb.layers || (lb.key[0] != ids[0] && lb.key[0] != 0)) {
		rc = util_err_set(err, UTIL_ERANGE,
				  "'%s': initial_global_assignments: %d layers from id %ld, the "
				  "statistics have %zu from id %lld",
				  o->deployed, lb.layers, lb.key[0], nd, (long long)ids[0]);
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct imp_rec *r = &b->recs[i];
		const int64_t *at = bsearch(&r->layer, ids, nd, sizeof(*ids), cmp_i64v);
		const int32_t *row = lb.ids + (size_t)(at - ids) * (size_t)lb.num_slots;
		uint32_t *v = b->pool + r->off;
		memset(tmp, 0, (size_t)E * sizeof(*tmp));
		if ((long)r->n != lb.num_slots) {
			rc = util_err_set(err, UTIL_ERANGE,
					  "%s: key '%lld_%lld': %u counts, '%s' has %ld slots",
					  b->src[r->src], (long long)r->step, (long long)r->layer, r->n,
					  o->deployed, lb.num_slots);
			goto out;
		}
		for (uint32_t p = 0; p < r->n; p++) {
			if (row[p] >= E) {
				rc = util_err_set(err, UTIL_ERANGE,
						  "'%s': initial_global_assignments: expert %d is out "
						  "of range for %d experts",
						  o->deployed, row[p], E);
				goto out;
			}
			if (tmp[row[p]] > UINT32_MAX - v[p]) {
				rc = util_err_set(err, UTIL_ERANGE,
						  "%s: expert %d: the sum of its slots overflows a "
						  "32-bit count",
						  b->src[r->src], row[p]);
				goto out;
			}
			tmp[row[p]] += v[p];
		}
		memcpy(v, tmp, (size_t)E * sizeof(*v)); /* E <= num_slots = r->n */
		r->n = (uint32_t)E;
	}
	snprintf(b->note, sizeof(b->note),
		 "%d load-balancer slots folded to %d experts through the initial_global_assignments "
		 "of '%s'",
		 b->experts, E, o->deployed);
	b->experts = E;
	rc = 0;
out:
	free(ids);
	free(tmp);
	analyze_trtllm_lb_release(&lb);
	return rc;
}

int collector_import_trtllm(struct store *s, const char *path,
			    const struct collector_import_opts *o, struct store_run *run,
			    struct util_err *err)
{
	struct imp b;
	struct stat sb;
	char dir[4096], meta[4200];
	char **files = NULL;
	size_t nf = 0;
	int rc = 0, single = 0;
	size_t n = strlen(path);

	imp_init(&b, "trtllm", 1);
	b.keyed = 1;
	if (stat(path, &sb) != 0) {
		rc = util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				  "cannot open '%s': %s", path, strerror(errno));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if (!S_ISDIR(sb.st_mode)) {
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = 0;
		else
			snprintf(dir, sizeof(dir), ".");
		single = n >= 12 && !strcmp(path + n - 12, ".safetensors");
	}
	snprintf(meta, sizeof(meta), "%s/meta_info.json", dir);
	if (stat(meta, &sb) == 0 && (rc = read_meta(&b, meta, err)))
		goto out;
	if (single) {
		if (!(files = malloc(sizeof(*files))) || !(files[0] = strdup(path))) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		nf = 1;
	} else {
		if ((rc = imp_list_ranks(dir, "rank", ".safetensors", "TensorRT-LLM", &files, &nf,
					 err)))
			goto out;
		if (nf == 0) {
			rc = util_err_set(err, UTIL_EPARSE, "'%s': no rank*.safetensors files", dir);
			goto out;
		}
	}
	for (size_t i = 0; i < nf; i++)
		if ((rc = read_rank(&b, files[i], err)))
			goto out;
	if ((rc = check_grid(&b, single ? path : dir, err)) ||
	    (rc = fold_slots(&b, o, meta, err)))
		goto out;
	if (!single && nf > 1)
		b.ranks = (int)nf;
	rc = imp_finish(&b, s, o, single ? path : dir, run, err);
out:
	imp_free_list(files, nf);
	imp_release(&b);
	return rc;
}

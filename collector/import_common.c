/*
 * import_common.c: what the engine-dump importers share — the trace
 * builder of import_int.h (records in, one run out, all or nothing), a few
 * JSON helpers and the listing of rank files.  Start at imp_finish: it is
 * where a pile of per-(step, layer) records becomes a run.  The importers
 * use this file; it calls none of them (collector/import.c dispatches).
 */
#include "analyze/analyze.h"
#include "collector/import_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

void imp_init(struct imp *b, const char *format, int model_layer_ids)
{
	memset(b, 0, sizeof(*b));
	b->format = format;
	b->model_layer_ids = model_layer_ids;
}

void imp_release(struct imp *b)
{
	if (!b)
		return;
	free(b->recs);
	free(b->pool);
	free(b->src);
	free(b->scratch);
	memset(b, 0, sizeof(*b));
}

int imp_source(struct imp *b, const char *name, struct util_err *err)
{
	if (b->nsrc == b->src_cap) {
		int cap = b->src_cap ? 2 * b->src_cap : 8;
		const char **p = realloc(b->src, (size_t)cap * sizeof(*p));
		if (!p)
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
		b->src = p;
		b->src_cap = cap;
	}
	b->src[b->nsrc] = name;
	return b->nsrc++;
}

uint32_t *imp_scratch(struct imp *b, size_t n, struct util_err *err)
{
	if (n == 0)
		n = 1;
	if (n > b->scratch_n) {
		uint32_t *p = realloc(b->scratch, n * sizeof(*p));
		if (!p) {
			util_err_set(err, UTIL_ENOMEM, "out of memory for %zu counts", n);
			return NULL;
		}
		b->scratch = p;
		b->scratch_n = n;
	}
	memset(b->scratch, 0, n * sizeof(*b->scratch));
	return b->scratch;
}

int imp_add(struct imp *b, int src, int64_t line, int64_t step, int64_t layer, int phase,
	    double time, int64_t tokens, const uint32_t *counts, size_t n, int exact,
	    struct util_err *err)
{
	/* the store's limits, named where the value was read */
	if (store_step_check(step, err) || (tokens >= 0 && store_tokens_check(tokens, err))) {
		if (b->keyed)
			return util_err_prefix(err, "%s: key '%lld_%lld': ", b->src[src],
					       (long long)step, (long long)layer);
		return util_err_prefix(err, "%s:%lld: field '%s': ", b->src[src], (long long)line,
				       store_step_check(step, NULL) ? "step" : "tokens");
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		struct imp_rec *p = realloc(b->recs, cap * sizeof(*p));
		if (!p)
			return util_err_set(err, UTIL_ENOMEM, "out of memory for %zu records", cap);
		b->recs = p;
		b->cap = cap;
	}
	if (b->pool_n + n > b->pool_cap) {
		size_t cap = b->pool_cap ? 2 * b->pool_cap : 4096;
		while (cap < b->pool_n + n)
			cap *= 2;
		uint32_t *p = realloc(b->pool, cap * sizeof(*p));
		if (!p)
			return util_err_set(err, UTIL_ENOMEM, "out of memory for %zu counts", cap);
		b->pool = p;
		b->pool_cap = cap;
	}
	struct imp_rec *r = &b->recs[b->n++];
	memset(r, 0, sizeof(*r));
	r->step = step;
	r->layer = layer;
	r->line = line;
	r->tokens = tokens;
	r->time = time;
	r->off = b->pool_n;
	r->n = (uint32_t)n;
	r->src = src;
	r->phase = (int8_t)phase;
	r->exact = (uint8_t)(exact != 0);
	r->per_step = tokens >= 0 || time > 0;
	if (n)
		memcpy(b->pool + b->pool_n, counts, n * sizeof(*counts));
	b->pool_n += n;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_rec(const void *a, const void *b)
{
	const struct imp_rec *x = a, *y = b;
	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	if (x->lidx != y->lidx)
		return x->lidx < y->lidx ? -1 : 1;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	return (x->line > y->line) - (x->line < y->line);
}

/* "file:line" of a record, for messages. */
static const char *where(const struct imp *b, const struct imp_rec *r, char *buf, size_t len)
{
	if (b->keyed)
		snprintf(buf, len, "%s: key '%lld_%lld'", b->src[r->src], (long long)r->step,
			 (long long)r->layer);
	else
		snprintf(buf, len, "%s:%lld", b->src[r->src], (long long)r->line);
	return buf;
}

/* Maps record layers to MoE layer indexes; sets *layers and *first_layer. */
static int map_layers(struct imp *b, const struct collector_import_opts *o, int *layers,
		      int *first_layer, struct util_err *err)
{
	char w[512];
	int64_t *ids = malloc(b->n * sizeof(*ids));
	size_t nd = 0;

	if (!ids)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	for (size_t i = 0; i < b->n; i++)
		ids[i] = b->recs[i].layer;
	qsort(ids, b->n, sizeof(*ids), cmp_i64);
	for (size_t i = 0; i < b->n; i++)
		if (i == 0 || ids[i] != ids[nd - 1])
			ids[nd++] = ids[i];

	if (b->model_layer_ids && o->model) {
		int step = o->model->layer_step > 0 ? o->model->layer_step : 1;
		*layers = o->model->layers;
		*first_layer = o->model->first_layer;
		for (size_t i = 0; i < b->n; i++) {
			struct imp_rec *r = &b->recs[i];
			int64_t d = r->layer - o->model->first_layer;
			if (d < 0 || d % step || d / step >= o->model->layers) {
				free(ids);
				return util_err_set(err, UTIL_ERANGE,
						    "%s: field 'layer': %lld is not a MoE layer id of %s "
						    "(%d + k x %d, k < %d)",
						    where(b, r, w, sizeof(w)), (long long)r->layer,
						    o->model->name, o->model->first_layer, step,
						    o->model->layers);
			}
			r->lidx = (int32_t)(d / step);
		}
	} else if (b->model_layer_ids) {
		*layers = (int)nd;
		*first_layer = (int)ids[0];
		if (o->layers && o->layers < (int)nd) {
			free(ids);
			return util_err_set(err, UTIL_ERANGE,
					    "%s: %zu distinct MoE layer ids, --layers says %d",
					    b->src[0], nd, o->layers);
		}
		if (o->layers)
			*layers = o->layers;
		for (size_t i = 0; i < b->n; i++) {
			int64_t *p = bsearch(&b->recs[i].layer, ids, nd, sizeof(*ids), cmp_i64);
			b->recs[i].lidx = (int32_t)(p - ids);
		}
	} else {
		int64_t maxl = ids[nd - 1];
		*layers = o->layers ? o->layers : o->model ? o->model->layers
				     : b->layers ? b->layers : (int)maxl + 1;
		*first_layer = o->model ? o->model->first_layer : b->first_layer;
		for (size_t i = 0; i < b->n; i++) {
			struct imp_rec *r = &b->recs[i];
			if (r->layer < 0 || r->layer >= *layers) {
				free(ids);
				return util_err_set(err, UTIL_ERANGE,
						    "%s: field 'layer': %lld is out of range for %s "
						    "(%d MoE layers)",
						    where(b, r, w, sizeof(w)), (long long)r->layer,
						    o->model ? o->model->name : "the given shape", *layers);
			}
			r->lidx = (int32_t)r->layer;
		}
	}
	free(ids);
	if (*layers > STORE_MAX_LAYERS)
		return util_err_set(err, UTIL_ERANGE, "%s: %d MoE layers, at most %d", b->src[0],
				    *layers, STORE_MAX_LAYERS);
	return 0;
}

/* The expert count: the options', else the full vectors' (which must all
 * agree), else the largest id seen plus one. */
static int fix_experts(struct imp *b, const struct collector_import_opts *o, int *experts,
		       struct util_err *err)
{
	char w1[512], w2[512];
	const struct imp_rec *ex = NULL;
	uint32_t maxn = 0;

	for (size_t i = 0; i < b->n; i++) {
		const struct imp_rec *r = &b->recs[i];
		if (r->exact) {
			if (ex && ex->n != r->n)
				return util_err_set(err, UTIL_EPARSE,
						    "%s: field 'counts': %u experts, but %s has %u "
						    "(shape mismatch)",
						    where(b, r, w1, sizeof(w1)), r->n,
						    where(b, ex, w2, sizeof(w2)), ex->n);
			ex = ex ? ex : r;
		}
		if (r->n > maxn)
			maxn = r->n;
	}
	*experts = o->experts ? o->experts : o->model ? o->model->experts
		   : b->experts ? b->experts : ex ? (int)ex->n : (int)maxn;
	if (*experts < 1 || *experts > STORE_MAX_EXPERTS)
		return util_err_set(err, UTIL_ERANGE, "%s: %d experts, expected 1 to %d",
				    b->src[0], *experts, STORE_MAX_EXPERTS);
	for (size_t i = 0; i < b->n; i++) {
		const struct imp_rec *r = &b->recs[i];
		if (r->exact && (int)r->n != *experts)
			return util_err_set(err, UTIL_ERANGE,
					    "%s: field 'counts': %u experts, the run has %d (%s)",
					    where(b, r, w1, sizeof(w1)), r->n, *experts,
					    o->model ? o->model->name : "the given shape");
		if (!r->exact && (int)r->n > *experts)
			return util_err_set(err, UTIL_ERANGE,
					    "%s: expert %u is out of range for %s (%d experts)",
					    where(b, r, w1, sizeof(w1)), r->n - 1,
					    o->model ? o->model->name : "the given shape", *experts);
	}
	return 0;
}

/* The EP layout options override whatever the data or the preset said;
 * a layout that cannot hold the run's experts is refused. */
int imp_layout_options(struct store_run *run, const struct collector_import_opts *o,
		       struct util_err *err)
{
	if (o->ranks) {
		run->ranks = o->ranks;
		run->slots = o->slots ? o->slots : (run->experts + o->ranks - 1) / o->ranks;
		int pref = run->ranks_per_node ? run->ranks_per_node : 8;
		run->ranks_per_node = o->ranks_per_node
					      ? o->ranks_per_node
					      : store_ranks_per_node_default(o->ranks, pref);
	} else if (o->ranks_per_node && run->ranks) {
		/* the data's or the preset's ranks, on the nodes given */
		run->ranks_per_node = o->ranks_per_node;
	} else if (o->ranks_per_node) {
		return util_err_set(err, UTIL_EUSAGE,
				    "--ranks-per-node %d: the run has no EP layout to put on nodes "
				    "(give --ranks, or --model for its typical one)",
				    o->ranks_per_node);
	}
	if (run->ranks && (int64_t)run->ranks * run->slots < run->experts)
		return util_err_set(err, UTIL_EUSAGE,
				    "%d ranks x %d slots cannot hold the run's %d experts", run->ranks,
				    run->slots, run->experts);
	if (!store_ranks_per_node_ok(run->ranks, run->ranks_per_node))
		return util_err_set(err, UTIL_EUSAGE, "%s %d does not divide %d ranks",
				    o->ranks_per_node ? "--ranks-per-node" : "ranks per node",
				    run->ranks_per_node, run->ranks);
	return 0;
}

static int fix_layout(struct store_run *run, const struct collector_import_opts *o,
		      const struct imp *b, const char *path, struct util_err *err)
{
	/* the layout the data states, else the preset's; options override both */
	if (b->ranks_per_node && !store_ranks_per_node_ok(b->ranks, b->ranks_per_node))
		return util_err_set(err, UTIL_EPARSE,
				    "%s: the description's ranks per node %d does not divide "
				    "its %d ranks",
				    path, b->ranks_per_node, b->ranks);
	if (b->ranks) {
		run->ranks = b->ranks;
		run->slots = b->slots ? b->slots : (run->experts + b->ranks - 1) / b->ranks;
		run->ranks_per_node = b->ranks_per_node ? b->ranks_per_node
							: store_ranks_per_node_default(b->ranks, 8);
	} else if (o->model) {
		run->ranks = o->model->ranks;
		run->slots = o->model->slots;
		run->ranks_per_node = o->model->ranks_per_node;
	}
	return imp_layout_options(run, o, err);
}

/* The shape the data states (a description line, TensorRT-LLM's
 * meta_info.json, the width of Megatron's per-token top-k lists) against
 * the --model preset: a contradiction means the trace is of another model,
 * and the run would read as that model with wrong figures. */
static int check_model_shape(const struct imp *b, const struct collector_import_opts *o,
			     const char *path, struct util_err *err)
{
	/* without --model, the model the data names (a JSON lines
	 * description) is held to its preset the same way */
	const struct store_model *m = o->model ? o->model
				      : b->model[0] ? store_model_find(b->model)
						    : NULL;
	const char *what = NULL, *by = o->model ? "--model" : "its description's model";
	int data = 0, preset = 0;

	if (!m)
		return 0;
	if (b->topk && !o->topk && b->topk != m->topk) {
		what = "experts per token (top-k)";
		data = b->topk;
		preset = m->topk;
	} else if (b->experts && !o->experts && b->experts != m->experts) {
		what = "experts";
		data = b->experts;
		preset = m->experts;
	} else if (b->layers && !o->layers && b->layers != m->layers) {
		what = "MoE layers";
		data = b->layers;
		preset = m->layers;
	}
	if (!what)
		return 0;
	return util_err_set(err, UTIL_ERANGE,
			    "%s: the data has %d %s, %s %s has %d: the trace is not of %s "
			    "(give the right preset, or none)",
			    path, data, what, by, m->name, preset, m->name);
}

/* The records of one step agree on its phase, time and tokens: a step has
 * one of each, so two different values are refused, naming both records,
 * rather than one of them stored. */
static int check_step_fields(const struct imp *b, struct util_err *err)
{
	char w1[512], w2[512];

	for (size_t i = 0, j; i < b->n; i = j) {
		const struct imp_rec *ph = NULL, *tm = NULL, *tk = NULL;
		for (j = i; j < b->n && b->recs[j].step == b->recs[i].step; j++) {
			const struct imp_rec *r = &b->recs[j];
			if (r->time > 0 && tm && tm->time != r->time)
				return util_err_set(err, UTIL_EPARSE,
						    "%s: field 'time': step %lld has time %.17g here but "
						    "%.17g at %s",
						    where(b, r, w1, sizeof(w1)), (long long)r->step,
						    r->time, tm->time, where(b, tm, w2, sizeof(w2)));
			if (r->tokens >= 0 && tk && tk->tokens != r->tokens)
				return util_err_set(err, UTIL_EPARSE,
						    "%s: field 'tokens': step %lld has %lld tokens here but "
						    "%lld at %s",
						    where(b, r, w1, sizeof(w1)), (long long)r->step,
						    (long long)r->tokens, (long long)tk->tokens,
						    where(b, tk, w2, sizeof(w2)));
			tm = tm || r->time <= 0 ? tm : r;
			tk = tk || r->tokens < 0 ? tk : r;
			if (r->phase < 0)
				continue;
			if (ph && ph->phase != r->phase)
				return util_err_set(err, UTIL_EPARSE,
						    "%s: field 'phase': step %lld is %s here but %s at %s",
						    where(b, r, w1, sizeof(w1)), (long long)r->step,
						    store_phase_name(r->phase), store_phase_name(ph->phase),
						    where(b, ph, w2, sizeof(w2)));
			ph = ph ? ph : r;
		}
	}
	return 0;
}

int imp_finish(struct imp *b, struct store *s, const struct collector_import_opts *o,
	       const char *path, struct store_run *run_out, struct util_err *err)
{
	struct store_run run = { 0 };
	struct store_step *steps = NULL;
	uint32_t *counts = NULL;
	char w1[512];
	size_t cells, cap, nb = 0;
	int rc, in_tx = 0, layers = 0, experts = 0, first_layer = 0;

	if (b->n == 0)
		return util_err_set(err, UTIL_EPARSE, "%s: no records of heat", path);
	if ((rc = check_model_shape(b, o, path, err)))
		return rc;
	if ((rc = map_layers(b, o, &layers, &first_layer, err)) ||
	    (rc = fix_experts(b, o, &experts, err)))
		return rc;
	qsort(b->recs, b->n, sizeof(*b->recs), cmp_rec);
	for (size_t i = 1; i < b->n; i++) {
		const struct imp_rec *p = &b->recs[i - 1], *r = &b->recs[i];
		if (p->step == r->step && p->lidx == r->lidx && p->src == r->src && b->sum_repeats) {
			b->repeats++;
			continue;
		}
		if (p->step == r->step && p->lidx == r->lidx && p->src == r->src)
			return util_err_set(err, UTIL_EPARSE,
					    "%s: duplicate record for step %lld, layer %lld (first at "
					    "line %lld)",
					    where(b, r, w1, sizeof(w1)), (long long)r->step,
					    (long long)r->layer, (long long)p->line);
	}
	if ((rc = check_step_fields(b, err)))
		return rc;

	snprintf(run.name, sizeof(run.name), "%s", o->run_name);
	run.layers = layers;
	run.experts = experts;
	run.topk = o->topk ? o->topk : o->model ? o->model->topk : b->topk;
	run.first_layer = first_layer;
	snprintf(run.model, sizeof(run.model), "%s", o->model ? o->model->name : b->model);
	if ((rc = fix_layout(&run, o, b, path, err)))
		return rc;
	if (b->repeats) {
		size_t k = strlen(b->note);
		snprintf(b->note + k, sizeof(b->note) - k,
			 "%s%lld repeated (step, layer) records of one rank summed (microbatches)",
			 k ? "; " : "", (long long)b->repeats);
	}
	snprintf(run.source, sizeof(run.source), "import %s %s%s%s", b->format, path,
		 b->note[0] ? "; " : "", b->note);

	cells = (size_t)layers * (size_t)experts;
	cap = (64u << 20) / (cells * 4);
	cap = cap < 1 ? 1 : cap > 512 ? 512 : cap;
	steps = calloc(cap, sizeof(*steps));
	counts = malloc(cap * cells * sizeof(*counts));
	if (!steps || !counts) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory for %zu x %zu cells", cap, cells);
		goto out;
	}
	if ((rc = store_begin(s))) {
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
		goto out;
	}
	in_tx = 1;
	if ((rc = store_run_add(s, &run))) {
		rc = util_err_set(err, rc, "%s: %s", path, store_errmsg(s));
		goto out;
	}
	for (size_t i = 0, j; i < b->n; i = j) {
		struct store_step *st;
		int64_t tokens = -1;
		if (nb == cap) {
			if (store_steps_append(s, &run, steps, nb)) {
				rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
				goto out;
			}
			nb = 0;
		}
		st = &steps[nb];
		st->counts = counts + nb * cells;
		memset(st->counts, 0, cells * sizeof(*st->counts));
		st->step = b->recs[i].step;
		st->phase = 0;
		st->time = 0;
		for (j = i; j < b->n && b->recs[j].step == st->step; j++) {
			const struct imp_rec *r = &b->recs[j];
			uint32_t *row = st->counts + (size_t)r->lidx * (size_t)experts;
			const uint32_t *v = b->pool + r->off;
			for (uint32_t e = 0; e < r->n; e++) {
				if (row[e] > UINT32_MAX - v[e]) {
					rc = util_err_set(err, UTIL_ERANGE,
							  "%s: step %lld, layer %lld, expert %u: the sum "
							  "over ranks overflows a 32-bit count",
							  where(b, r, w1, sizeof(w1)), (long long)r->step,
							  (long long)r->layer, e);
					goto out;
				}
				row[e] += v[e];
			}
			if (r->phase > 0)
				st->phase = r->phase;
			if (r->time > st->time)
				st->time = r->time;
			if (r->tokens >= 0)
				tokens = tokens < 0 ? r->tokens : tokens;
		}
		/* not given: the routed tokens / top-k of the layer that routed
		 * the most (a layer whose records were lost reads fewer) */
		st->tokens = tokens >= 0 ? tokens
			     : run.topk
				     ? (int64_t)analyze_routed_tokens(st->counts, run.layers, experts,
								      run.topk)
				     : 0;
		nb++;
	}
	if (nb && store_steps_append(s, &run, steps, nb)) {
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
		goto out;
	}
	if ((rc = store_commit(s))) {
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
		goto out;
	}
	in_tx = 0;
	if (run_out)
		*run_out = run;
	rc = 0;
out:
	if (in_tx)
		store_rollback(s);
	free(steps);
	free(counts);
	return rc;
}

/* ---- JSON helpers ------------------------------------------------------------ */

int imp_read_file(const char *path, char **data, size_t *len, struct util_err *err)
{
	struct stat sb;
	FILE *f = fopen(path, "rb");
	char *p;

	if (!f)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		fclose(f);
		return util_err_set(err, UTIL_EIO, "cannot read '%s': not a regular file", path);
	}
	p = malloc((size_t)sb.st_size + 1);
	if (!p) {
		fclose(f);
		return util_err_set(err, UTIL_ENOMEM, "out of memory reading '%s'", path);
	}
	*len = fread(p, 1, (size_t)sb.st_size, f);
	if (ferror(f) || *len != (size_t)sb.st_size) {
		free(p);
		fclose(f);
		return util_err_set(err, UTIL_EIO, "cannot read '%s': %s", path, strerror(errno));
	}
	fclose(f);
	p[*len] = 0;
	*data = p;
	return 0;
}

int imp_json_u64(struct json_object *v, uint64_t *out)
{
	int64_t x;
	int rc = util_json_int(v, INT64_MIN, INT64_MAX, &x);

	if (rc == 0 && x < 0)
		rc = -1;
	if (rc == 0)
		*out = (uint64_t)x;
	return rc;
}

int imp_json_field_i64(struct json_object *o, const char *field, int required, int64_t min,
		       int64_t max, int64_t *out, const char *where_, struct util_err *err)
{
	struct json_object *v;
	int rc;

	if (!json_object_object_get_ex(o, field, &v)) {
		if (required)
			return util_err_set(err, UTIL_EPARSE, "%s: missing field '%s'", where_, field);
		return 0;
	}
	/* an integer as written: 3.0, 1e3 and 2.0000000000000001 are doubles
	 * (the last one rounded to 2), refused as the CSV refuses them */
	rc = util_json_int(v, min, max, out);
	if (rc == -1)
		return util_err_set(err, UTIL_EPARSE, "%s: field '%s': %.40s is not an integer",
				    where_, field, json_object_to_json_string(v));
	if (rc == -2)
		return util_err_set(err, UTIL_ERANGE,
				    "%s: field '%s': %.40s is out of range [%lld, %lld]", where_,
				    field, json_object_to_json_string(v), (long long)min,
				    (long long)max);
	return 0;
}

int imp_json_counts(struct imp *b, struct json_object *a, const char *field, uint32_t **vals,
		    size_t *n, const char *where_, struct util_err *err)
{
	size_t len;
	uint32_t *v;

	if (!json_object_is_type(a, json_type_array))
		return util_err_set(err, UTIL_EPARSE, "%s: field '%s': not an array of counts",
				    where_, field);
	len = json_object_array_length(a);
	if (len == 0 || len > STORE_MAX_EXPERTS)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field '%s': %zu counts, expected 1 to %d", where_, field,
				    len, STORE_MAX_EXPERTS);
	if (!(v = imp_scratch(b, len, err)))
		return UTIL_ENOMEM;
	for (size_t i = 0; i < len; i++) {
		struct json_object *x = json_object_array_get_idx(a, i);
		int64_t u;
		int rc = util_json_int(x, INT64_MIN, INT64_MAX, &u);
		if (rc == 0 && u < 0)
			rc = -1;
		if (rc == 0 && u > UINT32_MAX)
			rc = -2;
		if (rc == -1)
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field '%s'[%zu]: %.40s is not a non-negative integer",
					    where_, field, i, json_object_to_json_string(x));
		if (rc == -2)
			return util_err_set(err, UTIL_EPARSE,
					    "%s: field '%s'[%zu]: %.40s overflows a 32-bit count",
					    where_, field, i, json_object_to_json_string(x));
		v[i] = (uint32_t)u;
	}
	*vals = v;
	*n = len;
	return 0;
}

int imp_json_phase(struct json_object *o, int *phase, const char *where_, struct util_err *err)
{
	struct json_object *v;

	*phase = -1;
	if (!json_object_object_get_ex(o, "phase", &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (json_object_is_type(v, json_type_string))
		*phase = store_phase_parse(json_object_get_string(v));
	else if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0 &&
		 json_object_get_int64(v) <= 2)
		*phase = (int)json_object_get_int64(v);
	if (*phase < 0)
		return util_err_set(err, UTIL_EPARSE,
				    "%s: field 'phase': %.40s is not prefill, decode or unknown",
				    where_, json_object_to_json_string(v));
	return 0;
}

/* Would the strict parser refuse a byte of the line that a fast path might
 * pass over inside a string it does not keep?  Exported lines are plain
 * ASCII without control characters; any other line takes the json-c path,
 * so that a fast path never accepts what that path refuses. */
static int plain_ascii(const char *p, const char *e)
{
	for (; p < e; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	return 1;
}

/* One line through the strict parser to fn. */
static int json_line(const char *q, const char *t, int64_t line, const char *w, imp_line_fn fn,
		     void *ctx, struct util_err *err)
{
	struct json_object *obj;
	struct util_json_err je;
	int rc;

	if ((rc = util_json_parse(q, (size_t)(t - q), &obj, &je))) {
		if (rc == UTIL_ENOMEM)
			return util_err_set(err, rc, "out of memory");
		return util_err_set(err, rc, je.syntax ? "%s: malformed JSON line: %s" : "%s: %s",
				    w, je.what);
	}
	if (!json_object_is_type(obj, json_type_object))
		rc = util_err_set(err, UTIL_EPARSE, "%s: not a JSON object", w);
	else
		rc = fn(ctx, obj, line, w, err);
	json_object_put(obj);
	return rc;
}

int imp_jsonl_each(const char *path, imp_fast_fn fast, imp_line_fn fn, void *ctx,
		   struct util_err *err)
{
	struct stat sb;
	char *data = NULL, w[4200];
	size_t cap = 0;
	ssize_t got;
	int64_t line = 0;
	int rc, fd;
	FILE *f;

	/* read a line at a time, not mapped: memory is the longest line, and
	 * a file that another program shortens meanwhile ends the read
	 * instead of killing the process with SIGBUS on a page past its end */
	if ((fd = open(path, O_RDONLY)) < 0)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return util_err_set(err, UTIL_EIO, "cannot read '%s': not a regular file", path);
	}
	if (sb.st_size == 0) {
		close(fd);
		return util_err_set(err, UTIL_EPARSE, "%s: empty file", path);
	}
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while ((got = getline(&data, &cap, f)) > 0) {
		char *q = data, *t = data + got;
		if (t[-1] == '\n')
			t--;
		line++;
		/* a UTF-8 byte order mark, as some editors write (the CSV
		 * importer skips it too) */
		if (line == 1 && t - q >= 3 && (unsigned char)q[0] == 0xef &&
		    (unsigned char)q[1] == 0xbb && (unsigned char)q[2] == 0xbf)
			q += 3;
		while (q < t && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		while (t > q && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
			t--;
		if (q == t)
			continue;
		if (t - q > INT32_MAX) {
			rc = util_err_set(err, UTIL_EPARSE, "%s:%lld: a line of more than 2 GiB", path,
					  (long long)line);
			goto out;
		}
		if (fast && plain_ascii(q, t) &&
		    (rc = fast(ctx, q, (size_t)(t - q), line, err)) != 0) {
			if (rc < 0)
				goto out;
			continue;
		}
		snprintf(w, sizeof(w), "%s:%lld", path, (long long)line);
		if ((rc = json_line(q, t, line, w, fn, ctx, err)))
			goto out;
	}
	if (ferror(f) || !feof(f)) { /* a read error, or no memory for a line */
		rc = util_err_set(err, errno == ENOMEM ? UTIL_ENOMEM : UTIL_EIO,
				  "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(data);
	fclose(f);
	return rc;
}

/* ---- fast paths: raw JSON text ------------------------------------------------- */

const char *imp_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

const char *imp_int(const char *p, const char *e, int64_t *out)
{
	const char *d;
	uint64_t v = 0;
	int neg = 0;

	if (p < e && *p == '-') {
		neg = 1;
		p++;
	}
	for (d = p; p < e && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return NULL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == d || (p - d > 1 && *d == '0') || v >= (uint64_t)INT64_MAX)
		return NULL;
	if (p < e && (*p == '.' || *p == 'e' || *p == 'E'))
		return NULL;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return p;
}

/* ---- rank files in a directory --------------------------------------------- */

static int cmp_rank_name(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t n = strlen(x), m = strlen(y);

	return n != m ? (n < m ? -1 : 1) : strcmp(x, y);
}

void imp_free_list(char **files, size_t nf)
{
	for (size_t i = 0; i < nf; i++)
		free(files[i]);
	free(files);
}

int imp_list_dir(const char *dir, const char *prefix, const char *suffix, char ***files,
		 size_t *nf, struct util_err *err)
{
	size_t plen = strlen(prefix), slen = strlen(suffix), n = 0, cap = 0;
	char **f = NULL;
	struct dirent *de;
	DIR *d = opendir(dir);

	*files = NULL;
	*nf = 0;
	if (!d)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t m = strlen(de->d_name);
		if (m < plen || m < slen || strncmp(de->d_name, prefix, plen) ||
		    strcmp(de->d_name + m - slen, suffix))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			char **p = realloc(f, cap * sizeof(*p));
			if (!p)
				goto nomem;
			f = p;
		}
		size_t len = strlen(dir) + m + 2;
		if (!(f[n] = malloc(len)))
			goto nomem;
		snprintf(f[n++], len, "%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (n)
		qsort(f, n, sizeof(*f), cmp_rank_name);
	*files = f;
	*nf = n;
	return 0;
nomem:
	closedir(d);
	imp_free_list(f, n);
	return util_err_set(err, UTIL_ENOMEM, "out of memory");
}

static const char *base_of(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

int imp_rank_of_name(const char *base, const char *prefix, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(base), nd;
	int r = 0;

	if (n <= pl + sl || strncmp(base, prefix, pl) || strcmp(base + n - sl, suffix))
		return -1;
	nd = n - pl - sl;
	/* the engines write f"{rank}": decimal, no sign, no leading zero */
	if (nd > 7 || (base[pl] == '0' && nd > 1))
		return -1;
	for (size_t i = pl; i < pl + nd; i++) {
		if (base[i] < '0' || base[i] > '9')
			return -1;
		r = 10 * r + (base[i] - '0');
	}
	return r;
}

/* files[i] is named PREFIX*SUFFIX but not as the engine names a rank's
 * file: a copy of one ("rank0 (copy)", "rank00", "rank0.old") or another
 * file.  Summed with the rest it would count a rank twice. */
static int stray_file(char *const *files, size_t n, size_t i, const char *prefix,
		      const char *suffix, const char *engine, struct util_err *err)
{
	const char *b = base_of(files[i]) + strlen(prefix);
	char *end;
	long r = *b >= '0' && *b <= '9' ? strtol(b, &end, 10) : -1;

	for (size_t j = 0; r >= 0 && r < (1 << 24) && j < n; j++)
		if (imp_rank_of_name(base_of(files[j]), prefix, suffix) == r)
			return util_err_set(err, UTIL_EPARSE,
					    "'%s' is a second file of rank %ld beside '%s' (%s "
					    "writes one %s{R}%s per rank): move it out of the "
					    "directory",
					    files[i], r, files[j], engine, prefix, suffix);
	return util_err_set(err, UTIL_EPARSE,
			    "'%s' is not a rank file name %s writes (%s{R}%s): move it out of "
			    "the directory",
			    files[i], engine, prefix, suffix);
}

int imp_list_ranks(const char *dir, const char *prefix, const char *suffix, const char *engine,
		   char ***files, size_t *nf, struct util_err *err)
{
	char **f = NULL;
	size_t n = 0;
	int rc;

	*files = NULL;
	*nf = 0;
	if ((rc = imp_list_dir(dir, prefix, suffix, &f, &n, err)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		if (imp_rank_of_name(base_of(f[i]), prefix, suffix) < 0)
			rc = stray_file(f, n, i, prefix, suffix, engine, err);
	/* names without leading zeros sort by length, then name: in rank
	 * order, so rank i is f[i] unless one before it is missing */
	for (size_t i = 0; i < n && !rc; i++)
		if (imp_rank_of_name(base_of(f[i]), prefix, suffix) != (int)i)
			rc = util_err_set(err, UTIL_EPARSE,
					  "'%s': rank %zu is missing: no %s%zu%s beside the "
					  "files of ranks up to %d",
					  dir, i, prefix, i, suffix,
					  imp_rank_of_name(base_of(f[n - 1]), prefix, suffix));
	if (rc) {
		imp_free_list(f, n);
		return rc;
	}
	*files = f;
	*nf = n;
	return 0;
}

/*
 * format.c: placement files that inference engines load, written and read
 * back, plus the heat JSON that `moetrace place --heat` takes.  Start at
 * read_any: it detects the format from the content and hands over to one
 * reader per engine; every reader fills phy2log for the run's shape and
 * names the file and the field in its errors.  This is the one reader of
 * these files: `place --current`, `replay --start`, the charts and
 * `import --deployed` (which learns ranks and slots from the file) all
 * come here.  docs/formats.md
 * documents each format and where the engines define it.
 */
#include "analyze/analyze.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

static const char *const format_names[] = { "vllm-ascend", "sglang", "trtllm" };

int analyze_format_parse(const char *s)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(format_names); i++)
		if (!strcmp(s, format_names[i]))
			return (int)i;
	return -1;
}

const char *analyze_format_name(int format)
{
	if (format < 0 || (size_t)format >= UTIL_ARRAY_SIZE(format_names))
		return "?";
	return format_names[format];
}

const char *analyze_format_path_note(const char *path, int format)
{
	size_t n = strlen(path);

	/* compute_initial_expert_location_metadata (sglang/srt/eplb/
	 * expert_location.py): `.pt` is torch.load'ed, `.json` read as a file,
	 * anything else json.loads'ed as it is, so the path fails as JSON */
	if (format != ANALYZE_FORMAT_SGLANG || (n >= 5 && !strcmp(path + n - 5, ".json")))
		return NULL;
	return "SGLang reads --init-expert-location as a file only when its name ends in "
	       ".json (any other value is parsed as JSON text): rename it to *.json before "
	       "passing it";
}

struct analyze_shape analyze_shape_of(const struct store_run *run, int ranks, int slots)
{
	const struct store_model *m = run->model[0] ? store_model_find(run->model) : NULL;

	return (struct analyze_shape){ run->layers,	  run->experts,
				       ranks,		  slots,
				       run->first_layer, m ? m->layer_step : 1 };
}

static int model_layer_id(const struct analyze_shape *sh, int l)
{
	return sh->first_layer + l * (sh->layer_step > 0 ? sh->layer_step : 1);
}

/* ---- file helpers ------------------------------------------------------------ */

static int slurp(const char *path, struct util_buf *b, struct util_err *err)
{
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	size_t n;

	if (!f)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		util_buf_add(b, chunk, n);
	if (ferror(f)) {
		fclose(f);
		return util_err_set(err, UTIL_EIO, "cannot read '%s': %s", path, strerror(errno));
	}
	fclose(f);
	if (!b->data)
		util_buf_add(b, "", 0);
	return 0;
}

/* Strict (util_json_parse): a key given twice, such as two
 * physical_to_logical_map, is refused rather than the last one taken. */
static int json_load(const char *path, const struct util_buf *b, struct json_object **out,
		     struct util_err *err)
{
	return util_json_parse_named(path, b->data, b->len, out, err);
}

/* An int array field of exactly n entries with values in [0, max); `has`
 * says whose count n is ("the run has", or the part of the file it came from). */
static int json_ids(const char *path, struct json_object *a, const char *field, int n,
		    const char *has, const char *unit, int max, int32_t *out,
		    struct util_err *err)
{
	size_t len;

	if (!json_object_is_type(a, json_type_array))
		return util_err_set(err, UTIL_EPARSE, "'%s': %s: not an array", path, field);
	len = json_object_array_length(a);
	if ((long long)len != n)
		return util_err_set(err, UTIL_ERANGE, "'%s': %s: %zu entries, %s %d %s", path,
				    field, len, has, n, unit);
	for (size_t i = 0; i < len; i++) {
		struct json_object *v = json_object_array_get_idx(a, i);
		int64_t x;
		int rc = util_json_int(v, 0, max - 1, &x);
		if (rc == -1)
			return util_err_set(err, UTIL_EPARSE, "'%s': %s[%zu]: not an integer", path,
					    field, i);
		if (rc)
			return util_err_set(err, UTIL_ERANGE,
					    "'%s': %s[%zu]: expert %.40s out of range [0, %d)",
					    path, field, i, json_object_to_json_string(v), max);
		out[i] = (int32_t)x;
	}
	return 0;
}

/* ---- readers --------------------------------------------------------------------
 * Every reader fills `struct fit`: the run's layers, experts and model layer
 * ids from sh; ranks and slots from sh where known, else (0) from the file
 * (`import --deployed`), and a malloc'ed p2l [layers * ranks * slots]. */

struct fit {
	const struct analyze_shape *sh;
	int ranks, slots; /* IN: 0 = the file says; OUT */
	int32_t *p2l;
};

static int fit_alloc(struct fit *f, struct util_err *err)
{
	size_t n = (size_t)f->sh->layers * (size_t)f->ranks * (size_t)f->slots;

	if (!f->p2l && !(f->p2l = malloc((n ? n : 1) * sizeof(*f->p2l))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	return 0;
}

static int read_vllm_ascend(const char *path, struct json_object *root, struct fit *f,
			    struct util_err *err)
{
	const struct analyze_shape *sh = f->sh;
	struct json_object *list, *v;
	const int given_r = f->ranks, given_s = f->slots;
	int R = given_r, S = given_s, rc;
	size_t n;
	char field[128];

	if (!json_object_object_get_ex(root, "layer_list", &list) ||
	    !json_object_is_type(list, json_type_array))
		return util_err_set(err, UTIL_EPARSE, "'%s': layer_list: missing or not an array",
				    path);
	n = json_object_array_length(list);
	if (json_object_object_get_ex(root, "moe_layer_count", &v) &&
	    (!json_object_is_type(v, json_type_int) || json_object_get_int(v) != sh->layers))
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': moe_layer_count: %s, the run has %d MoE layers", path,
				    json_object_to_json_string(v), sh->layers);
	if ((long long)n != sh->layers)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': layer_list: %zu layers, the run has %d MoE layers", path,
				    n, sh->layers);
	for (int l = 0; l < sh->layers; l++) {
		struct json_object *layer = json_object_array_get_idx(list, (size_t)l), *devs;
		if (!json_object_is_type(layer, json_type_object) ||
		    !json_object_object_get_ex(layer, "device_list", &devs) ||
		    !json_object_is_type(devs, json_type_array))
			return util_err_set(err, UTIL_EPARSE,
					    "'%s': layer_list[%d].device_list: missing or not an "
					    "array",
					    path, l);
		if (json_object_object_get_ex(layer, "layer_id", &v) &&
		    (!json_object_is_type(v, json_type_int) || json_object_get_int(v) != l))
			return util_err_set(err, UTIL_EPARSE,
					    "'%s': layer_list[%d].layer_id: %s, expected %d (the "
					    "engine indexes the list by layer id)",
					    path, l, json_object_to_json_string(v), l);
		if (!R)
			R = (int)json_object_array_length(devs);
		if ((long long)json_object_array_length(devs) != R)
			return util_err_set(err, UTIL_ERANGE,
					    "'%s': layer_list[%d].device_list: %zu devices, %s %d ranks",
					    path, l, json_object_array_length(devs),
					    given_r ? "the run has" : "layer 0 has", R);
		for (int r = 0; r < R; r++) {
			struct json_object *dev = json_object_array_get_idx(devs, (size_t)r), *ex;
			snprintf(field, sizeof(field),
				 "layer_list[%d].device_list[%d].device_expert", l, r);
			if (!json_object_is_type(dev, json_type_object) ||
			    !json_object_object_get_ex(dev, "device_expert", &ex))
				return util_err_set(err, UTIL_EPARSE, "'%s': %s: missing", path,
						    field);
			if (!S && json_object_is_type(ex, json_type_array)) {
				S = (int)json_object_array_length(ex);
				if (S < 1 || (int64_t)R * S > STORE_MAX_SLOTS)
					return util_err_set(err, UTIL_ERANGE, "'%s': %s: %d slots",
							    path, field, S);
			}
			f->ranks = R;
			f->slots = S;
			if ((rc = fit_alloc(f, err)))
				return rc;
			if (json_ids(path, ex, field, S,
				     given_s ? "the run has" : "the first device has",
				     "slots per rank", sh->experts,
				     f->p2l + ((size_t)l * (size_t)R + (size_t)r) * (size_t)S, err))
				return err ? err->code : UTIL_EPARSE;
		}
	}
	return 0;
}

/* The rank count of an SGLang mapping, which only has slots per layer. */
static int sglang_split(const char *path, struct json_object *map, struct fit *f,
			struct util_err *err)
{
	struct json_object *row0 = json_object_array_get_idx(map, 0);
	int R = f->ranks, P;

	if (!json_object_is_type(row0, json_type_array))
		return util_err_set(err, UTIL_EPARSE,
				    "'%s': physical_to_logical_map: not an array of rows", path);
	P = (int)json_object_array_length(row0);
	if (!R)
		return util_err_set(err, UTIL_EUSAGE,
				    "'%s': an SGLang mapping does not say how many ranks share its %d "
				    "slots: give --ranks",
				    path, P);
	if (P < R || P % R || P > STORE_MAX_SLOTS)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': physical_to_logical_map[0]: %d slots do not split into %d "
				    "ranks",
				    path, P, R);
	if (f->slots && f->slots != P / R)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': physical_to_logical_map[0]: %d slots per rank, the run has %d",
				    path, P / R, f->slots);
	f->slots = P / R;
	return 0;
}

/* Rows past the last MoE layer of a mapping by model layer id stand for
 * dense layers after it, which SGLang fills with its trivial row (slot mod
 * experts): the first of rows [from, n) that is not such a row, or -1.  A
 * map of another, deeper model has placements there. */
static int first_nontrivial_row(struct json_object *map, int from, size_t n, int P, int E)
{
	for (size_t r = (size_t)from; r < n; r++) {
		struct json_object *row = json_object_array_get_idx(map, r);
		if (!json_object_is_type(row, json_type_array) ||
		    json_object_array_length(row) != (size_t)P)
			return (int)r;
		for (int p = 0; p < P; p++) {
			struct json_object *v = json_object_array_get_idx(row, (size_t)p);
			if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) != p % E)
				return (int)r;
		}
	}
	return -1;
}

static int read_sglang(const char *path, struct json_object *root, struct fit *f,
		       struct util_err *err)
{
	const struct analyze_shape *sh = f->sh;
	struct json_object *map;
	int P, all = model_layer_id(sh, sh->layers - 1) + 1, by_model, rc;
	size_t n;
	char field[96];

	if (!json_object_object_get_ex(root, "physical_to_logical_map", &map) ||
	    !json_object_is_type(map, json_type_array))
		return util_err_set(err, UTIL_EPARSE,
				    "'%s': physical_to_logical_map: missing or not an array", path);
	n = json_object_array_length(map);
	/* SGLang indexes rows by model layer id (dense layers keep a trivial
	 * row); a file with one row per MoE layer is taken as it is. */
	if ((long long)n == sh->layers)
		by_model = 0;
	else if ((long long)n >= all)
		by_model = 1;
	else
		return util_err_set(
			err, UTIL_ERANGE,
			"'%s': physical_to_logical_map: %zu rows, the run needs %d (one "
			"per MoE layer) or %d (one per model layer)",
			path, n, sh->layers, all);
	if ((!f->ranks || !f->slots) && (rc = sglang_split(path, map, f, err)))
		return rc;
	if ((rc = fit_alloc(f, err)))
		return rc;
	P = f->ranks * f->slots;
	if (by_model && (long long)n > all) {
		int bad = first_nontrivial_row(map, all, n, P, sh->experts);
		if (bad >= 0)
			return util_err_set(err, UTIL_ERANGE,
					    "'%s': physical_to_logical_map: %zu rows, the run needs %d "
					    "(one per MoE layer) or %d (one per model layer); row %d, "
					    "past the run's last MoE layer, places experts (a dense "
					    "layer's row is slot mod experts): a map of another model?",
					    path, n, sh->layers, all, bad);
	}
	for (int l = 0; l < sh->layers; l++) {
		int row = by_model ? model_layer_id(sh, l) : l;
		snprintf(field, sizeof(field), "physical_to_logical_map[%d]", row);
		if (json_ids(path, json_object_array_get_idx(map, (size_t)row), field, P,
			     "the run has", "slots (ranks x slots)", sh->experts,
			     f->p2l + (size_t)l * P, err))
			return err ? err->code : UTIL_EPARSE;
	}
	return 0;
}

/* TensorRT-LLM's YAML, read with a parser for exactly what its writer and
 * PyYAML produce: `num_slots: N`, `layer_updates_per_iter: N` and
 * `initial_global_assignments:` with one `ID: [a, b, ...]` (flow, may span
 * lines) or `ID:` + `- a` lines per layer, wherever they stand (the file
 * itself, or moe_config.load_balancer of a serving configuration). */
struct yaml_layer {
	long key;
	int line;
	int n, cap;
	int32_t *v;
};

struct yaml_doc {
	long num_slots, updates; /* -1, 0 when absent */
	int nly;
	struct yaml_layer *ly;
	int seen[3]; /* line of num_slots, layer_updates_per_iter,
		      * initial_global_assignments; 0 if not seen */
};

static void yaml_doc_release(struct yaml_doc *d)
{
	for (int i = 0; i < d->nly; i++)
		free(d->ly[i].v);
	free(d->ly);
	d->ly = NULL;
	d->nly = 0;
}

/* An integer (quotes allowed, as PyYAML may write keys) filling all of s. */
static int yaml_num(const char *path, int line, const char *s, long *out, struct util_err *err)
{
	char *end;
	long v;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '"' || *s == '\'')
		s++;
	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno)
		return util_err_set(err, UTIL_EPARSE, "'%s' line %d: '%s' is not an integer", path,
				    line, s);
	if (*end == '"' || *end == '\'')
		end++;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return util_err_set(err, UTIL_EPARSE, "'%s' line %d: '%s' is not an integer", path,
				    line, s);
	*out = v;
	return 0;
}

/* An expert id of layer y: checked against the largest expert count a run
 * may have before it is narrowed to int32_t (the run's own count later). */
static int yaml_push(const char *path, int line, struct yaml_layer *y, const char *s,
		     struct util_err *err)
{
	long v;
	int rc;

	if ((rc = yaml_num(path, line, s, &v, err)))
		return rc;
	if (v < 0 || v >= STORE_MAX_EXPERTS)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s' line %d: initial_global_assignments[%ld]: expert %ld is out "
				    "of range [0, %d)",
				    path, line, y->key, v, STORE_MAX_EXPERTS);
	if (y->n == y->cap) {
		int32_t *p;
		int cap = y->cap ? 2 * y->cap : 64;
		if (!(p = realloc(y->v, (size_t)cap * sizeof(*p))))
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
		y->v = p;
		y->cap = cap;
	}
	y->v[y->n++] = (int32_t)v;
	return 0;
}

/* Adds the comma-separated numbers of s (brackets stripped) to y. */
static int yaml_flow(const char *path, int line, char *s, struct yaml_layer *y,
		     struct util_err *err)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *t = tok;
		int rc;
		while (isspace((unsigned char)*t))
			t++;
		if (*t && (rc = yaml_push(path, line, y, t, err)))
			return rc;
	}
	return 0;
}

/* One `ID: [a, b]`, `ID:` or `- a` line inside initial_global_assignments. */
static int yaml_map_line(const char *path, int lineno, char *s, struct yaml_doc *d, int *in_flow,
			 struct util_err *err)
{
	struct yaml_layer *ly;
	char *colon;
	long key;
	int rc;

	if (s[0] == '-') {
		if (!d->nly)
			return util_err_set(err, UTIL_EPARSE,
					    "'%s' line %d: list item before a layer id", path,
					    lineno);
		return yaml_push(path, lineno, &d->ly[d->nly - 1], s + 1, err);
	}
	if (!(colon = strchr(s, ':')))
		return util_err_set(err, UTIL_EPARSE,
				    "'%s' line %d: initial_global_assignments: expected "
				    "'LAYER: [experts]'",
				    path, lineno);
	*colon = '\0';
	if ((rc = yaml_num(path, lineno, s, &key, err))) {
		util_err_prefix(err, "initial_global_assignments: layer id: ");
		return rc;
	}
	if (!(ly = realloc(d->ly, (size_t)(d->nly + 1) * sizeof(*ly))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	d->ly = ly;
	ly = &d->ly[d->nly++];
	memset(ly, 0, sizeof(*ly));
	ly->key = key;
	ly->line = lineno;
	for (s = colon + 1; *s == ' '; s++)
		;
	if (*s == '[') {
		char *close = strchr(++s, ']');
		if (close)
			*close = '\0';
		*in_flow = !close;
		return yaml_flow(path, lineno, s, ly, err);
	}
	if (*s)
		return util_err_set(err, UTIL_EPARSE,
				    "'%s' line %d: layer %ld: expected a list of expert ids", path,
				    lineno, key);
	return 0;
}

/* The keys read, each once: PyYAML keeps the last of two equal keys, and
 * which one the engine saw is not ours to guess. */
static int yaml_once(const char *path, int lineno, const char *s, struct yaml_doc *d,
		     struct util_err *err)
{
	static const char *const keys[] = { "num_slots:", "layer_updates_per_iter:",
					    "initial_global_assignments:" };

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++) {
		if (strncmp(s, keys[i], strlen(keys[i])))
			continue;
		if (d->seen[i])
			return util_err_set(err, UTIL_EPARSE,
					    "'%s' line %d: %.*s appears twice (first at line %d; "
					    "which one is meant?)",
					    path, lineno, (int)strlen(keys[i]) - 1, keys[i],
					    d->seen[i]);
		d->seen[i] = lineno;
	}
	return 0;
}

/* A top-level (or nested) key line outside initial_global_assignments. */
static int yaml_key_line(const char *path, int lineno, char *s, struct yaml_doc *d, int *in_map,
			 struct util_err *err)
{
	int rc;

	if ((rc = yaml_once(path, lineno, s, d, err)))
		return rc;
	if (!strncmp(s, "initial_global_assignments:", 27)) {
		char *rest = s + 27;
		while (*rest == ' ')
			rest++;
		if (!strcmp(rest, "{}")) /* PyYAML's empty mapping */
			return 0;
		if (*rest)
			return util_err_set(err, UTIL_EPARSE,
					    "'%s' line %d: initial_global_assignments: write one "
					    "'LAYER: [experts]' line per layer",
					    path, lineno);
		*in_map = 1;
	} else if (!strncmp(s, "num_slots:", 10)) {
		if ((rc = yaml_num(path, lineno, s + 10, &d->num_slots, err))) {
			util_err_prefix(err, "num_slots: ");
			return rc;
		}
	} else if (!strncmp(s, "layer_updates_per_iter:", 23)) {
		return yaml_num(path, lineno, s + 23, &d->updates, err);
	}
	return 0;
}

static int yaml_parse(const char *path, char *text, struct yaml_doc *d, struct util_err *err)
{
	int in_map = 0, map_indent = -1, in_flow = 0, lineno = 0, rc = 0;
	char *line, *next;

	memset(d, 0, sizeof(*d));
	d->num_slots = -1;
	for (line = text; line; line = next) {
		int indent = 0;
		char *s, *hash;
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		lineno++;
		if ((hash = strchr(line, '#')))
			*hash = '\0';
		while (line[indent] == ' ')
			indent++;
		s = line + indent;
		for (size_t k = strlen(s); k > 0 && isspace((unsigned char)s[k - 1]); k--)
			s[k - 1] = '\0';
		if (!*s || !strcmp(s, "---"))
			continue;
		if (in_flow) {
			char *close = strchr(s, ']');
			if (close)
				*close = '\0';
			if ((rc = yaml_flow(path, lineno, s, &d->ly[d->nly - 1], err)))
				break;
			in_flow = !close;
			continue;
		}
		if (in_map && (indent > map_indent || !strncmp(s, "- ", 2) || !strcmp(s, "-"))) {
			if ((rc = yaml_map_line(path, lineno, s, d, &in_flow, err)))
				break;
			continue;
		}
		in_map = 0;
		if ((rc = yaml_key_line(path, lineno, s, d, &in_map, err)))
			break;
		if (in_map)
			map_indent = indent;
	}
	if (!rc && in_flow)
		rc = util_err_set(err, UTIL_EPARSE, "'%s': layer %ld: unterminated '['", path,
				  d->ly[d->nly - 1].key);
	if (rc)
		yaml_doc_release(d);
	return rc;
}

static int cmp_layer(const void *a, const void *b)
{
	const struct yaml_layer *x = a, *y = b;
	return (x->key > y->key) - (x->key < y->key);
}

/* Sorts d's layers by id and packs them into lb, each `width` ids long
 * (`width_is` says where the width came from, for the message). */
static int yaml_pack(const char *path, struct yaml_doc *d, long width, const char *width_is,
		     struct analyze_trtllm_lb *lb, struct util_err *err)
{
	if (d->nly)
		qsort(d->ly, (size_t)d->nly, sizeof(*d->ly), cmp_layer);
	for (int i = 0; i < d->nly; i++) {
		if (i && d->ly[i].key == d->ly[i - 1].key)
			return util_err_set(err, UTIL_EPARSE,
					    "'%s' line %d: initial_global_assignments: layer %ld twice",
					    path, d->ly[i].line, d->ly[i].key);
		if (d->ly[i].n != width)
			return util_err_set(err, UTIL_ERANGE,
					    "'%s' line %d: initial_global_assignments[%ld]: %d "
					    "entries, %s",
					    path, d->ly[i].line, d->ly[i].key, d->ly[i].n, width_is);
	}
	lb->num_slots = d->num_slots;
	lb->updates = d->updates;
	if (d->nly && (!(lb->key = malloc((size_t)d->nly * sizeof(*lb->key))) ||
		       !(lb->ids = malloc((size_t)d->nly * (size_t)width * sizeof(*lb->ids)))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	for (int i = 0; i < d->nly; i++) {
		lb->key[i] = d->ly[i].key;
		memcpy(lb->ids + (size_t)i * (size_t)width, d->ly[i].v,
		       (size_t)width * sizeof(*lb->ids));
	}
	lb->layers = d->nly;
	return 0;
}

void analyze_trtllm_lb_release(struct analyze_trtllm_lb *lb)
{
	if (!lb)
		return;
	free(lb->key);
	free(lb->ids);
	lb->key = NULL;
	lb->ids = NULL;
}

static int lb_from_text(const char *path, char *text, struct analyze_trtllm_lb *lb,
			struct util_err *err)
{
	struct yaml_doc d;
	char is[64];
	int rc;

	memset(lb, 0, sizeof(*lb));
	lb->num_slots = -1;
	if ((rc = yaml_parse(path, text, &d, err)))
		return rc;
	if (d.num_slots < 1 || d.num_slots > STORE_MAX_SLOTS) {
		rc = util_err_set(err, UTIL_EPARSE, "'%s': num_slots: %s", path,
				  d.num_slots < 0 ? "missing (not a TensorRT-LLM load-balancer file)"
						  : "out of range");
		goto out;
	}
	snprintf(is, sizeof(is), "num_slots is %ld", d.num_slots);
	rc = yaml_pack(path, &d, d.num_slots, is, lb, err);
out:
	yaml_doc_release(&d);
	if (rc)
		analyze_trtllm_lb_release(lb);
	return rc;
}

int analyze_trtllm_lb_read(const char *path, struct analyze_trtllm_lb *lb, struct util_err *err)
{
	struct util_buf b = UTIL_BUF_INIT;
	int rc;

	memset(lb, 0, sizeof(*lb));
	lb->num_slots = -1;
	if (!(rc = slurp(path, &b, err)))
		rc = lb_from_text(path, b.data, lb, err);
	util_buf_release(&b);
	return rc;
}

/* The layer ids of lb, in order, as the run's: model layer ids (TensorRT-LLM's
 * own) or 0..L-1; fills f->p2l with each layer's num_slots ids. */
static int trtllm_fit(const char *path, const struct analyze_trtllm_lb *lb, struct fit *f,
		      struct util_err *err)
{
	const struct analyze_shape *sh = f->sh;
	size_t P = (size_t)lb->num_slots;
	int by_model = 1, by_index = 1, rc;

	if (lb->layers != sh->layers)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': initial_global_assignments: %d layers, the run has %d MoE "
				    "layers",
				    path, lb->layers, sh->layers);
	for (int l = 0; l < sh->layers; l++) {
		by_model &= lb->key[l] == model_layer_id(sh, l);
		by_index &= lb->key[l] == l;
	}
	if (!by_model && !by_index)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': initial_global_assignments: layer ids are not the "
				    "run's model layer ids %d, %d, ... %d",
				    path, model_layer_id(sh, 0),
				    model_layer_id(sh, sh->layers > 1 ? 1 : 0),
				    model_layer_id(sh, sh->layers - 1));
	for (size_t i = 0; i < (size_t)lb->layers * P; i++)
		if (lb->ids[i] >= sh->experts)
			return util_err_set(err, UTIL_ERANGE,
					    "'%s': initial_global_assignments[%ld][%ld]: expert %d "
					    "out of range [0, %d)",
					    path, lb->key[i / P], (long)(i % P), lb->ids[i],
					    sh->experts);
	if ((rc = fit_alloc(f, err)))
		return rc;
	memcpy(f->p2l, lb->ids, (size_t)sh->layers * P * sizeof(*f->p2l));
	return 0;
}

/* For a run whose ranks x slots are known: num_slots, when given, must match. */
static int read_trtllm_known(const char *path, char *text, struct fit *f, struct util_err *err)
{
	struct analyze_trtllm_lb lb = { 0 };
	struct yaml_doc d;
	long P = (long)f->ranks * f->slots;
	char is[96];
	int rc;

	if ((rc = yaml_parse(path, text, &d, err)))
		return rc;
	if (d.num_slots >= 0 && d.num_slots != P)
		rc = util_err_set(err, UTIL_ERANGE,
				  "'%s': num_slots: %ld, the run has %d ranks x %d slots = %ld", path,
				  d.num_slots, f->ranks, f->slots, P);
	else if (!d.nly)
		rc = util_err_set(err, UTIL_EPARSE, "'%s': initial_global_assignments: missing",
				  path);
	if (!rc) {
		snprintf(is, sizeof(is), "the run has %d ranks x %d slots", f->ranks, f->slots);
		d.num_slots = P;
		rc = yaml_pack(path, &d, P, is, &lb, err);
	}
	if (!rc)
		rc = trtllm_fit(path, &lb, f, err);
	yaml_doc_release(&d);
	analyze_trtllm_lb_release(&lb);
	return rc;
}

/* For `import --deployed`: num_slots / ranks per rank. */
static int read_trtllm_deployed(const char *path, char *text, struct fit *f,
				struct util_err *err)
{
	struct analyze_trtllm_lb lb;
	int rc, R = f->ranks;
	long P;

	if ((rc = lb_from_text(path, text, &lb, err)))
		return rc;
	P = lb.num_slots;
	if (!lb.layers)
		rc = util_err_set(err, UTIL_EPARSE,
				  "'%s': no initial_global_assignments: the load balancer placed the "
				  "experts itself (layer_updates_per_iter: %ld), so the file does not "
				  "say where they were",
				  path, lb.updates);
	else if (!R)
		rc = util_err_set(err, UTIL_EUSAGE,
				  "'%s': the load-balancer file does not say how many ranks share its "
				  "%ld slots: give --ranks",
				  path, P);
	else if (P % R || (f->slots && f->slots != P / R))
		rc = util_err_set(err, UTIL_ERANGE,
				  "'%s': num_slots: %ld slots do not split into %d ranks%s", path, P,
				  R, f->slots ? " of the run's slots" : "");
	if (!rc) {
		f->slots = (int)(P / R);
		rc = trtllm_fit(path, &lb, f, err);
	}
	analyze_trtllm_lb_release(&lb);
	return rc;
}

/* JSON or TensorRT-LLM's YAML: the first character that is not white space. */
static int text_is_json(const struct util_buf *b)
{
	size_t i = 0;

	while (i < b->len && isspace((unsigned char)b->data[i]))
		i++;
	return i < b->len && b->data[i] == '{';
}

int analyze_format_is_yaml(const char *path)
{
	FILE *f = fopen(path, "r");
	int c;

	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF && isspace(c))
		;
	fclose(f);
	return c != '{';
}

/* Reads any of the formats into f; *fmt OUT. */
static int read_any(const char *path, struct fit *f, int *fmt, struct util_err *err)
{
	struct util_buf b = UTIL_BUF_INIT;
	struct json_object *root = NULL;
	int rc;

	if ((rc = slurp(path, &b, err)))
		goto out;
	if (!text_is_json(&b)) {
		*fmt = ANALYZE_FORMAT_TRTLLM;
		rc = f->ranks && f->slots ? read_trtllm_known(path, b.data, f, err)
					  : read_trtllm_deployed(path, b.data, f, err);
		goto out;
	}
	if ((rc = json_load(path, &b, &root, err)))
		goto out;
	if (!json_object_is_type(root, json_type_object)) {
		rc = util_err_set(err, UTIL_EPARSE, "'%s': not a JSON object", path);
	} else if (json_object_object_get_ex(root, "layer_list", NULL)) {
		*fmt = ANALYZE_FORMAT_VLLM_ASCEND;
		rc = read_vllm_ascend(path, root, f, err);
	} else if (json_object_object_get_ex(root, "physical_to_logical_map", NULL)) {
		*fmt = ANALYZE_FORMAT_SGLANG;
		rc = read_sglang(path, root, f, err);
	} else {
		rc = util_err_set(err, UTIL_EPARSE,
				  "'%s': neither a vllm-ascend expert map (layer_list) nor an "
				  "SGLang placement (physical_to_logical_map)",
				  path);
	}
out:
	json_object_put(root);
	util_buf_release(&b);
	if (rc) {
		free(f->p2l);
		f->p2l = NULL;
	}
	return rc;
}

int analyze_format_read(const char *path, const struct analyze_shape *sh, int32_t *phy2log,
			int *format, struct util_err *err)
{
	struct fit f = { sh, sh->ranks, sh->slots, NULL };
	int P = sh->ranks * sh->slots, rc, fmt = 0;

	if ((rc = read_any(path, &f, &fmt, err)))
		return rc;
	for (int l = 0; l < sh->layers; l++) {
		if ((rc = analyze_placement_check(f.p2l + (size_t)l * P, sh->experts, sh->ranks,
						  sh->slots, 0, err))) {
			util_err_prefix(err, "'%s': %s layer %d: ", path, analyze_format_name(fmt),
					l);
			goto out;
		}
	}
	memcpy(phy2log, f.p2l, (size_t)sh->layers * (size_t)P * sizeof(*phy2log));
	if (format)
		*format = fmt;
out:
	free(f.p2l);
	return rc;
}

int analyze_format_read_deployed(const char *path, struct analyze_shape *sh, int32_t **phy2log,
				 struct util_err *err)
{
	struct fit f = { sh, sh->ranks, sh->slots, NULL };
	size_t P;
	uint8_t *seen;
	int rc, fmt;

	*phy2log = NULL;
	if ((rc = read_any(path, &f, &fmt, err)))
		return rc;
	/* every logical expert must be placed somewhere in every layer */
	P = (size_t)f.ranks * (size_t)f.slots;
	if ((int64_t)P < sh->experts) {
		rc = util_err_set(err, UTIL_ERANGE, "'%s': %d ranks x %d slots cannot hold %d experts",
				  path, f.ranks, f.slots, sh->experts);
		goto out;
	}
	if (!(seen = calloc((size_t)sh->experts, 1))) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (int l = 0; l < sh->layers && !rc; l++) {
		memset(seen, 0, (size_t)sh->experts);
		for (size_t p = 0; p < P; p++)
			seen[f.p2l[(size_t)l * P + p]] = 1;
		for (int e = 0; e < sh->experts && !rc; e++)
			if (!seen[e])
				rc = util_err_set(err, UTIL_ERANGE,
						  "'%s': layer %d places expert %d nowhere", path, l, e);
	}
	free(seen);
out:
	if (rc) {
		free(f.p2l);
		return rc;
	}
	sh->ranks = f.ranks;
	sh->slots = f.slots;
	*phy2log = f.p2l;
	return 0;
}

/* ---- writers ------------------------------------------------------------------- */

static void put_ids(struct util_buf *b, const int32_t *v, int n)
{
	util_buf_addstr(b, "[");
	for (int i = 0; i < n; i++)
		util_buf_addf(b, i ? ", %d" : "%d", v[i]);
	util_buf_addstr(b, "]");
}

static void write_vllm_ascend(struct util_buf *b, const struct analyze_shape *sh,
			      const int32_t *p2l)
{
	int P = sh->ranks * sh->slots;

	util_buf_addf(b, "{\n    \"moe_layer_count\": %d,\n    \"layer_list\": [\n", sh->layers);
	for (int l = 0; l < sh->layers; l++) {
		util_buf_addf(b,
			      "        {\n            \"layer_id\": %d,\n"
			      "            \"device_count\": %d,\n            \"device_list\": [\n",
			      l, sh->ranks);
		for (int r = 0; r < sh->ranks; r++) {
			util_buf_addf(b,
				      "                {\"device_id\": %d, \"device_expert\": ", r);
			put_ids(b, p2l + (size_t)l * P + (size_t)r * sh->slots, sh->slots);
			util_buf_addstr(b, r + 1 < sh->ranks ? "},\n" : "}\n");
		}
		util_buf_addstr(b, l + 1 < sh->layers ? "            ]\n        },\n"
						      : "            ]\n        }\n");
	}
	util_buf_addstr(b, "    ]\n}\n");
}

static void write_sglang(struct util_buf *b, const struct analyze_shape *sh, const int32_t *p2l)
{
	int P = sh->ranks * sh->slots, all = model_layer_id(sh, sh->layers - 1) + 1, l = 0;
	int32_t *trivial = xmallocarray((size_t)P, sizeof(int32_t));

	/* one row per model layer; dense layers get SGLang's trivial row */
	for (int p = 0; p < P; p++)
		trivial[p] = p % sh->experts;
	util_buf_addstr(b, "{\"physical_to_logical_map\": [\n");
	for (int row = 0; row < all; row++) {
		const int32_t *v = trivial;
		if (l < sh->layers && model_layer_id(sh, l) == row)
			v = p2l + (size_t)(l++) * P;
		util_buf_addstr(b, "  ");
		put_ids(b, v, P);
		util_buf_addstr(b, row + 1 < all ? ",\n" : "\n");
	}
	util_buf_addstr(b, "]}\n");
	free(trivial);
}

static void write_trtllm(struct util_buf *b, const struct analyze_shape *sh, const int32_t *p2l)
{
	int P = sh->ranks * sh->slots;

	util_buf_addf(b,
		      "# TensorRT-LLM MoE load balancer: static placement of %d experts on %d "
		      "ranks x %d slots\n"
		      "num_slots: %d\nlayer_updates_per_iter: 0\ninitial_global_assignments:\n",
		      sh->experts, sh->ranks, sh->slots, P);
	for (int l = 0; l < sh->layers; l++) {
		util_buf_addf(b, "  %d: ", model_layer_id(sh, l));
		put_ids(b, p2l + (size_t)l * P, P);
		util_buf_addstr(b, "\n");
	}
}

int analyze_format_write(const char *path, int format, const struct analyze_shape *sh,
			 const int32_t *phy2log, struct util_err *err)
{
	struct util_buf b = UTIL_BUF_INIT, tmp = UTIL_BUF_INIT;
	int rc = 0, fd;
	FILE *f = NULL;

	/* vllm-ascend maps each device's experts to local slots by expert id
	 * (expert_map[device_expert] = arange) and numbers the global slots by
	 * device 0's distinct experts: a device holding an expert twice shifts
	 * the routes of every device, and the engine does not refuse it */
	if (format == ANALYZE_FORMAT_VLLM_ASCEND)
		for (int l = 0; l < sh->layers; l++) {
			int P = sh->ranks * sh->slots;
			struct util_err why = UTIL_ERR_INIT;
			if ((rc = analyze_placement_check(phy2log + (size_t)l * P, sh->experts,
							  sh->ranks, sh->slots, 1, &why)))
				return util_err_set(err, rc,
						    "cannot write '%s': MoE layer %d: %s, which "
						    "vllm-ascend's loader misroutes (the sglang and "
						    "trtllm formats hold it)",
						    path, l, why.msg);
		}
	switch (format) {
	case ANALYZE_FORMAT_VLLM_ASCEND: write_vllm_ascend(&b, sh, phy2log); break;
	case ANALYZE_FORMAT_SGLANG: write_sglang(&b, sh, phy2log); break;
	case ANALYZE_FORMAT_TRTLLM: write_trtllm(&b, sh, phy2log); break;
	default: return util_err_set(err, UTIL_EUSAGE, "unknown placement format %d", format);
	}
	util_buf_addf(&tmp, "%s.tmp.XXXXXX", path);
	if ((fd = mkstemp(tmp.data)) < 0 || fchmod(fd, 0666 & ~(mode_t)util_umask()) != 0 ||
	    !(f = fdopen(fd, "w"))) {
		rc = util_err_set(err, UTIL_EIO, "cannot create '%s': %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp.data);
		}
		goto out;
	}
	if (fwrite(b.data, 1, b.len, f) != b.len || fflush(f) || ferror(f)) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path, strerror(errno));
		fclose(f);
		unlink(tmp.data);
		goto out;
	}
	if (fclose(f)) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path, strerror(errno));
		unlink(tmp.data);
		goto out;
	}
	if (rename(tmp.data, path)) {
		rc = util_err_set(err, UTIL_EIO, "cannot rename '%s' to '%s': %s", tmp.data, path,
				  strerror(errno));
		unlink(tmp.data);
	}
out:
	util_buf_release(&b);
	util_buf_release(&tmp);
	return rc;
}

/* ---- heat JSON ------------------------------------------------------------------ */

/* Reads rows x cols numbers of a nested array into out; cols < 0: taken
 * from the first row. */
static int heat_matrix(const char *path, struct json_object *a, const char *field, int *rows,
		       int *cols, double *out, struct util_err *err)
{
	size_t n;

	if (!json_object_is_type(a, json_type_array) || !(n = json_object_array_length(a)))
		return util_err_set(err, UTIL_EPARSE,
				    "'%s': %s: expected a non-empty array of layers (arrays of "
				    "numbers)",
				    path, field);
	if (*rows >= 0 && (long long)n != *rows)
		return util_err_set(err, UTIL_EPARSE, "'%s': %s: %zu layers, heat has %d", path,
				    field, n, *rows);
	if (n > STORE_MAX_LAYERS)
		return util_err_set(err, UTIL_ERANGE, "'%s': %s: %zu layers, at most %d", path,
				    field, n, STORE_MAX_LAYERS);
	*rows = (int)n;
	for (size_t l = 0; l < n; l++) {
		struct json_object *row = json_object_array_get_idx(a, l);
		size_t m;
		if (!json_object_is_type(row, json_type_array))
			return util_err_set(err, UTIL_EPARSE, "'%s': %s[%zu]: not an array", path,
					    field, l);
		m = json_object_array_length(row);
		if (*cols < 0) {
			if (!m || m > STORE_MAX_EXPERTS)
				return util_err_set(err, UTIL_ERANGE,
						    "'%s': %s[0]: %zu experts, expected 1..%d",
						    path, field, m, STORE_MAX_EXPERTS);
			*cols = (int)m;
		}
		if ((long long)m != *cols)
			return util_err_set(
				err, UTIL_EPARSE,
				"'%s': %s[%zu]: %zu experts, row 0 of heat has %d (ragged "
				"rows)",
				path, field, l, m, *cols);
		if (!out)
			continue;
		for (size_t e = 0; e < m; e++) {
			struct json_object *v = json_object_array_get_idx(row, e);
			double x;
			if (!json_object_is_type(v, json_type_int) &&
			    !json_object_is_type(v, json_type_double))
				return util_err_set(err, UTIL_EPARSE,
						    "'%s': %s[%zu][%zu]: not a number", path, field,
						    l, e);
			x = json_object_get_double(v);
			if (!isfinite(x) || x < 0)
				return util_err_set(
					err, UTIL_ERANGE,
					"'%s': %s[%zu][%zu]: %s is negative or not finite", path,
					field, l, e, json_object_to_json_string(v));
			out[l * (size_t)*cols + e] = x;
		}
	}
	return 0;
}

static int heat_opt_int(const char *path, struct json_object *root, const char *key, int *out,
			struct util_err *err)
{
	struct json_object *v;

	*out = 0;
	if (!json_object_object_get_ex(root, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
	    json_object_get_int64(v) > STORE_MAX_SLOTS)
		return util_err_set(err, UTIL_EPARSE, "'%s': %s: not a positive integer", path,
				    key);
	*out = json_object_get_int(v);
	return 0;
}

int analyze_heat_read(const char *path, struct analyze_heat_file *h, struct util_err *err)
{
	struct util_buf b = UTIL_BUF_INIT;
	struct json_object *root = NULL, *heat, *eps;
	int rc;

	memset(h, 0, sizeof(*h));
	if ((rc = slurp(path, &b, err)) || (rc = json_load(path, &b, &root, err)))
		goto out;
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "heat", &heat)) {
		rc = util_err_set(err, UTIL_EPARSE,
				  "'%s': heat: missing (expected {\"heat\": "
				  "[[tokens per expert] per layer]})",
				  path);
		goto out;
	}
	h->layers = -1;
	h->experts = -1;
	if ((rc = heat_matrix(path, heat, "heat", &h->layers, &h->experts, NULL, err)))
		goto out;
	h->heat = xmallocarray((size_t)h->layers * h->experts, sizeof(double));
	if ((rc = heat_matrix(path, heat, "heat", &h->layers, &h->experts, h->heat, err)))
		goto out;
	if (json_object_object_get_ex(root, "episodes", &eps)) {
		size_t n;
		if (!json_object_is_type(eps, json_type_array) ||
		    !(n = json_object_array_length(eps))) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "'%s': episodes: expected a non-empty array of episodes",
					  path);
			goto out;
		}
		h->n_episodes = (int)n;
		h->episodes = xmallocarray(n * (size_t)h->layers * h->experts, sizeof(double));
		for (size_t k = 0; k < n; k++) {
			char field[32];
			snprintf(field, sizeof(field), "episodes[%zu]", k);
			if ((rc = heat_matrix(path, json_object_array_get_idx(eps, k), field,
					      &h->layers, &h->experts,
					      h->episodes + k * (size_t)h->layers * h->experts,
					      err)))
				goto out;
		}
	}
	if ((rc = heat_opt_int(path, root, "ranks", &h->ranks, err)) ||
	    (rc = heat_opt_int(path, root, "slots", &h->slots, err)))
		goto out;
out:
	if (rc)
		analyze_heat_release(h);
	json_object_put(root);
	util_buf_release(&b);
	return rc;
}

void analyze_heat_release(struct analyze_heat_file *h)
{
	if (!h)
		return;
	free(h->heat);
	free(h->episodes);
	h->heat = h->episodes = NULL;
}

/*
 * format.c: placement files that inference engines load, written and read
 * back, plus the heat JSON that `moetrace place --heat` takes.  Start at
 * analyze_format_read: it detects the format from the content and hands
 * over to one reader per engine; every reader fills phy2log for the run's
 * shape and names the file and the field in its errors.  docs/formats.md
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

static int line_of(const char *text, size_t off)
{
	int line = 1;

	for (size_t i = 0; i < off && text[i]; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

static int json_load(const char *path, const struct util_buf *b, struct json_object **out,
		     struct util_err *err)
{
	struct json_tokener *tok = json_tokener_new_ex(64);
	struct json_object *o;
	enum json_tokener_error jerr;
	size_t end;

	if (!tok)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	o = json_tokener_parse_ex(tok, b->data, (int)b->len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!o || jerr != json_tokener_success) {
		int line = line_of(b->data, end);
		json_tokener_free(tok);
		json_object_put(o);
		return util_err_set(
			err, UTIL_EPARSE, "'%s' line %d: not valid JSON: %s", path, line,
			json_tokener_error_desc(jerr == json_tokener_success ? json_tokener_continue
									     : jerr));
	}
	while (end < b->len && isspace((unsigned char)b->data[end]))
		end++;
	json_tokener_free(tok);
	if (end < b->len) {
		json_object_put(o);
		return util_err_set(err, UTIL_EPARSE, "'%s' line %d: text after the JSON value",
				    path, line_of(b->data, end));
	}
	*out = o;
	return 0;
}

/* An int array field of exactly n entries with values in [0, max). */
static int json_ids(const char *path, struct json_object *a, const char *field, int n,
		    const char *unit, int max, int32_t *out, struct util_err *err)
{
	size_t len;

	if (!json_object_is_type(a, json_type_array))
		return util_err_set(err, UTIL_EPARSE, "'%s': %s: not an array", path, field);
	len = json_object_array_length(a);
	if ((long long)len != n)
		return util_err_set(err, UTIL_ERANGE, "'%s': %s: %zu entries, the run has %d %s",
				    path, field, len, n, unit);
	for (size_t i = 0; i < len; i++) {
		struct json_object *v = json_object_array_get_idx(a, i);
		int64_t x;
		if (!json_object_is_type(v, json_type_int))
			return util_err_set(err, UTIL_EPARSE, "'%s': %s[%zu]: not an integer", path,
					    field, i);
		x = json_object_get_int64(v);
		if (x < 0 || x >= max)
			return util_err_set(err, UTIL_ERANGE,
					    "'%s': %s[%zu]: expert %lld out of range [0, %d)", path,
					    field, i, (long long)x, max);
		out[i] = (int32_t)x;
	}
	return 0;
}

/* ---- readers ------------------------------------------------------------------- */

static int read_vllm_ascend(const char *path, struct json_object *root,
			    const struct analyze_shape *sh, int32_t *p2l, struct util_err *err)
{
	struct json_object *list, *v;
	int P = sh->ranks * sh->slots;
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
		if ((long long)json_object_array_length(devs) != sh->ranks)
			return util_err_set(
				err, UTIL_ERANGE,
				"'%s': layer_list[%d].device_list: %zu devices, the run "
				"has %d ranks",
				path, l, json_object_array_length(devs), sh->ranks);
		for (int r = 0; r < sh->ranks; r++) {
			struct json_object *dev = json_object_array_get_idx(devs, (size_t)r), *ex;
			snprintf(field, sizeof(field),
				 "layer_list[%d].device_list[%d].device_expert", l, r);
			if (!json_object_is_type(dev, json_type_object) ||
			    !json_object_object_get_ex(dev, "device_expert", &ex))
				return util_err_set(err, UTIL_EPARSE, "'%s': %s: missing", path,
						    field);
			if (json_ids(path, ex, field, sh->slots, "slots per rank", sh->experts,
				     p2l + (size_t)l * P + (size_t)r * sh->slots, err))
				return err ? err->code : UTIL_EPARSE;
		}
	}
	return 0;
}

static int read_sglang(const char *path, struct json_object *root, const struct analyze_shape *sh,
		       int32_t *p2l, struct util_err *err)
{
	struct json_object *map;
	int P = sh->ranks * sh->slots, all = model_layer_id(sh, sh->layers - 1) + 1, by_model;
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
	for (int l = 0; l < sh->layers; l++) {
		int row = by_model ? model_layer_id(sh, l) : l;
		snprintf(field, sizeof(field), "physical_to_logical_map[%d]", row);
		if (json_ids(path, json_object_array_get_idx(map, (size_t)row), field, P,
			     "slots (ranks x slots)", sh->experts, p2l + (size_t)l * P, err))
			return err ? err->code : UTIL_EPARSE;
	}
	return 0;
}

/* TensorRT-LLM's YAML, read with a parser for exactly what its writer and
 * PyYAML produce: `num_slots: N` and `initial_global_assignments:` with one
 * `ID: [a, b, ...]` (flow, may span lines) or `ID:` + `- a` lines per layer. */
struct yaml_layer {
	long key;
	int line;
	int n, cap;
	int32_t *v;
};

static void yaml_push(struct yaml_layer *y, long v)
{
	if (y->n == y->cap) {
		y->cap = y->cap ? 2 * y->cap : 64;
		y->v = xrealloc(y->v, (size_t)y->cap * sizeof(*y->v));
	}
	y->v[y->n++] = (int32_t)v;
}

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
	while (*end == ' ' || *end == '\t' || *end == '\r')
		end++;
	if (*end)
		return util_err_set(err, UTIL_EPARSE, "'%s' line %d: '%s' is not an integer", path,
				    line, s);
	*out = v;
	return 0;
}

/* Adds the comma-separated numbers of s (brackets stripped) to y. */
static int yaml_flow(const char *path, int line, char *s, struct yaml_layer *y,
		     struct util_err *err)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long v;
		char *t = tok;
		while (isspace((unsigned char)*t))
			t++;
		if (!*t)
			continue;
		if (yaml_num(path, line, t, &v, err))
			return err ? err->code : UTIL_EPARSE;
		yaml_push(y, v);
	}
	return 0;
}

static int read_trtllm(const char *path, char *text, const struct analyze_shape *sh, int32_t *p2l,
		       struct util_err *err)
{
	struct yaml_layer *ly = NULL;
	int nly = 0, in_map = 0, map_indent = -1, in_flow = 0, lineno = 0, rc = 0;
	long num_slots = -1;
	int P = sh->ranks * sh->slots;
	char *line, *next;

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
		if (!*s)
			continue;
		if (in_flow) {
			char *close = strchr(s, ']');
			if (close)
				*close = '\0';
			if ((rc = yaml_flow(path, lineno, s, &ly[nly - 1], err)))
				goto out;
			in_flow = !close;
			continue;
		}
		if (in_map && (indent > map_indent || !strncmp(s, "- ", 2) || !strcmp(s, "-"))) {
			char *colon;
			long v;
			if (s[0] == '-') {
				if (!nly) {
					rc = util_err_set(
						err, UTIL_EPARSE,
						"'%s' line %d: list item before a layer id", path,
						lineno);
					goto out;
				}
				if ((rc = yaml_num(path, lineno, s + 1, &v, err)))
					goto out;
				yaml_push(&ly[nly - 1], v);
				continue;
			}
			if (!(colon = strchr(s, ':'))) {
				rc = util_err_set(
					err, UTIL_EPARSE,
					"'%s' line %d: initial_global_assignments: expected "
					"'LAYER: [experts]'",
					path, lineno);
				goto out;
			}
			*colon = '\0';
			if ((rc = yaml_num(path, lineno, s, &v, err))) {
				util_err_prefix(err, "initial_global_assignments: layer id: ");
				goto out;
			}
			ly = xrealloc(ly, (size_t)(nly + 1) * sizeof(*ly));
			memset(&ly[nly], 0, sizeof(*ly));
			ly[nly].key = v;
			ly[nly].line = lineno;
			nly++;
			s = colon + 1;
			while (*s == ' ')
				s++;
			if (*s == '[') {
				char *close = strchr(++s, ']');
				if (close)
					*close = '\0';
				if ((rc = yaml_flow(path, lineno, s, &ly[nly - 1], err)))
					goto out;
				in_flow = !close;
			} else if (*s) {
				rc = util_err_set(
					err, UTIL_EPARSE,
					"'%s' line %d: layer %ld: expected a list of expert "
					"ids",
					path, lineno, v);
				goto out;
			}
			continue;
		}
		in_map = 0;
		if (!strncmp(s, "initial_global_assignments:", 27)) {
			char *rest = s + 27;
			while (*rest == ' ')
				rest++;
			if (*rest) {
				rc = util_err_set(
					err, UTIL_EPARSE,
					"'%s' line %d: initial_global_assignments: write one "
					"'LAYER: [experts]' line per layer",
					path, lineno);
				goto out;
			}
			in_map = 1;
			map_indent = indent;
		} else if (!strncmp(s, "num_slots:", 10)) {
			if ((rc = yaml_num(path, lineno, s + 10, &num_slots, err))) {
				util_err_prefix(err, "num_slots: ");
				goto out;
			}
		}
	}
	if (in_flow) {
		rc = util_err_set(err, UTIL_EPARSE, "'%s': layer %ld: unterminated '['", path,
				  ly[nly - 1].key);
		goto out;
	}
	if (!nly) {
		rc = util_err_set(err, UTIL_EPARSE, "'%s': initial_global_assignments: missing",
				  path);
		goto out;
	}
	if (num_slots >= 0 && num_slots != P) {
		rc = util_err_set(err, UTIL_ERANGE,
				  "'%s': num_slots: %ld, the run has %d ranks x %d slots = %d",
				  path, num_slots, sh->ranks, sh->slots, P);
		goto out;
	}
	if (nly != sh->layers) {
		rc = util_err_set(err, UTIL_ERANGE,
				  "'%s': initial_global_assignments: %d layers, the run has %d MoE "
				  "layers",
				  path, nly, sh->layers);
		goto out;
	}
	{
		/* keys are model layer ids (TensorRT-LLM's own); 0..L-1 also accepted */
		int by_model = 1, by_index = 1;
		for (int l = 0; l < sh->layers; l++) {
			int found_m = 0, found_i = 0;
			for (int i = 0; i < nly; i++) {
				found_m |= ly[i].key == model_layer_id(sh, l);
				found_i |= ly[i].key == l;
			}
			by_model &= found_m;
			by_index &= found_i;
		}
		if (!by_model && !by_index) {
			rc = util_err_set(err, UTIL_ERANGE,
					  "'%s': initial_global_assignments: layer ids are not the "
					  "run's model layer ids %d, %d, ... %d",
					  path, model_layer_id(sh, 0),
					  model_layer_id(sh, sh->layers > 1 ? 1 : 0),
					  model_layer_id(sh, sh->layers - 1));
			goto out;
		}
		for (int l = 0; l < sh->layers; l++) {
			long want = by_model ? model_layer_id(sh, l) : l;
			for (int i = 0; i < nly; i++) {
				if (ly[i].key != want)
					continue;
				if (ly[i].n != P) {
					rc = util_err_set(
						err, UTIL_ERANGE,
						"'%s' line %d: initial_global_assignments[%ld]: "
						"%d entries, the run has %d ranks x %d slots",
						path, ly[i].line, want, ly[i].n, sh->ranks,
						sh->slots);
					goto out;
				}
				for (int p = 0; p < P; p++)
					if (ly[i].v[p] < 0 || ly[i].v[p] >= sh->experts) {
						rc = util_err_set(
							err, UTIL_ERANGE,
							"'%s' line %d: initial_global_assignments[%ld][%d]: "
							"expert %d out of range [0, %d)",
							path, ly[i].line, want, p, ly[i].v[p],
							sh->experts);
						goto out;
					}
				memcpy(p2l + (size_t)l * P, ly[i].v, (size_t)P * sizeof(int32_t));
				break;
			}
		}
	}
out:
	for (int i = 0; i < nly; i++)
		free(ly[i].v);
	free(ly);
	return rc;
}

int analyze_format_read(const char *path, const struct analyze_shape *sh, int32_t *phy2log,
			int *format, struct util_err *err)
{
	struct util_buf b = UTIL_BUF_INIT;
	struct json_object *root = NULL;
	int rc, fmt;
	size_t i = 0;

	if ((rc = slurp(path, &b, err)))
		goto out;
	while (i < b.len && isspace((unsigned char)b.data[i]))
		i++;
	if (i < b.len && b.data[i] == '{') {
		if ((rc = json_load(path, &b, &root, err)))
			goto out;
		if (!json_object_is_type(root, json_type_object)) {
			rc = util_err_set(err, UTIL_EPARSE, "'%s': not a JSON object", path);
			goto out;
		}
		if (json_object_object_get_ex(root, "layer_list", NULL)) {
			fmt = ANALYZE_FORMAT_VLLM_ASCEND;
			rc = read_vllm_ascend(path, root, sh, phy2log, err);
		} else if (json_object_object_get_ex(root, "physical_to_logical_map", NULL)) {
			fmt = ANALYZE_FORMAT_SGLANG;
			rc = read_sglang(path, root, sh, phy2log, err);
		} else {
			rc = util_err_set(
				err, UTIL_EPARSE,
				"'%s': neither a vllm-ascend expert map (layer_list) nor an "
				"SGLang placement (physical_to_logical_map)",
				path);
			goto out;
		}
	} else {
		fmt = ANALYZE_FORMAT_TRTLLM;
		rc = read_trtllm(path, b.data, sh, phy2log, err);
	}
	if (rc)
		goto out;
	for (int l = 0; l < sh->layers; l++) {
		int P = sh->ranks * sh->slots;
		if ((rc = analyze_placement_check(phy2log + (size_t)l * P, sh->experts, sh->ranks,
						  sh->slots, 0, err))) {
			util_err_prefix(err, "'%s': %s layer %d: ", path, analyze_format_name(fmt),
					l);
			goto out;
		}
	}
	if (format)
		*format = fmt;
out:
	json_object_put(root);
	util_buf_release(&b);
	return rc;
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
		rc = util_err_set(err, UTIL_EIO, "cannot create '%s': %s", tmp.data,
				  strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp.data);
		}
		goto out;
	}
	if (fwrite(b.data, 1, b.len, f) != b.len || fflush(f) || ferror(f)) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", tmp.data,
				  strerror(errno));
		fclose(f);
		unlink(tmp.data);
		goto out;
	}
	if (fclose(f)) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", tmp.data,
				  strerror(errno));
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

/*
 * import_deployed.c: the placement an engine ran with, read from the file
 * it loaded, for `moetrace import --deployed FILE`.  Two layouts:
 * vllm-ascend's expert_map_path JSON (vllm_ascend/eplb/core/eplb_utils.py,
 * expert_file_to_tensor) and SGLang's --init-expert-location mapping
 * {"physical_to_logical_map": [[...] per layer]} (also what SGLang's
 * per_pass dumps carry as last_physical_to_logical_map); and TensorRT-LLM's
 * load-balancer YAML (num_slots, initial_global_assignments).  The collector
 * does not depend on analyze/, so this is a small reader of its own;
 * docs/formats.md describes both files.
 */
#include "collector/import_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row of expert ids: n entries in [0, experts). */
static int ids_row(const char *path, struct json_object *a, const char *field, int n,
		   int experts, int32_t *out, struct util_err *err)
{
	if (!json_object_is_type(a, json_type_array))
		return util_err_set(err, UTIL_EPARSE, "'%s': %s: not an array of expert ids", path,
				    field);
	if ((int)json_object_array_length(a) != n)
		return util_err_set(err, UTIL_EPARSE, "'%s': %s: %zu entries, expected %d", path,
				    field, json_object_array_length(a), n);
	for (int i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(a, (size_t)i);
		int64_t x;
		if (!json_object_is_type(v, json_type_int))
			return util_err_set(err, UTIL_EPARSE, "'%s': %s[%d]: not an integer", path,
					    field, i);
		x = json_object_get_int64(v);
		if (x < 0 || x >= experts)
			return util_err_set(err, UTIL_ERANGE,
					    "'%s': %s[%d]: expert %lld is out of range [0, %d)", path,
					    field, i, (long long)x, experts);
		out[i] = (int32_t)x;
	}
	return 0;
}

static int read_vllm_ascend(const char *path, struct json_object *root,
			    const struct store_run *run, int *ranks, int *slots, int32_t **out,
			    struct util_err *err)
{
	struct json_object *ll, *v;
	char field[96];
	int32_t *p2l = NULL;
	int rc = 0, R = *ranks, S = *slots;

	if (!json_object_object_get_ex(root, "layer_list", &ll) ||
	    !json_object_is_type(ll, json_type_array))
		return util_err_set(err, UTIL_EPARSE, "'%s': layer_list: missing or not an array",
				    path);
	if (json_object_object_get_ex(root, "moe_layer_count", &v) &&
	    json_object_get_int64(v) != run->layers)
		return util_err_set(err, UTIL_ERANGE, "'%s': moe_layer_count: %lld, the run has %d "
				    "MoE layers", path, (long long)json_object_get_int64(v), run->layers);
	if ((int)json_object_array_length(ll) != run->layers)
		return util_err_set(err, UTIL_ERANGE, "'%s': layer_list: %zu layers, the run has %d",
				    path, json_object_array_length(ll), run->layers);
	for (int l = 0; l < run->layers; l++) {
		struct json_object *lo = json_object_array_get_idx(ll, (size_t)l), *dl;
		if (!json_object_is_type(lo, json_type_object) ||
		    !json_object_object_get_ex(lo, "device_list", &dl) ||
		    !json_object_is_type(dl, json_type_array)) {
			rc = util_err_set(err, UTIL_EPARSE, "'%s': layer_list[%d].device_list: missing "
					  "or not an array", path, l);
			goto out;
		}
		if (json_object_object_get_ex(lo, "layer_id", &v) && json_object_get_int64(v) != l) {
			rc = util_err_set(err, UTIL_EPARSE, "'%s': layer_list[%d].layer_id: %lld, "
					  "expected %d", path, l, (long long)json_object_get_int64(v), l);
			goto out;
		}
		int nd = (int)json_object_array_length(dl);
		if (!R)
			R = nd;
		if (nd != R) {
			rc = util_err_set(err, UTIL_ERANGE, "'%s': layer_list[%d].device_list: %d "
					  "devices, %s %d ranks", path, l, nd, *ranks ? "the run has" :
					  "layer 0 has", R);
			goto out;
		}
		for (int d = 0; d < R; d++) {
			struct json_object *dev = json_object_array_get_idx(dl, (size_t)d), *de;
			snprintf(field, sizeof(field), "layer_list[%d].device_list[%d].device_expert", l,
				 d);
			if (!json_object_is_type(dev, json_type_object) ||
			    !json_object_object_get_ex(dev, "device_expert", &de) ||
			    !json_object_is_type(de, json_type_array)) {
				rc = util_err_set(err, UTIL_EPARSE, "'%s': %s: missing or not an array",
						  path, field);
				goto out;
			}
			if (!S)
				S = (int)json_object_array_length(de);
			if (S < 1 || (int64_t)R * S > STORE_MAX_SLOTS) {
				rc = util_err_set(err, UTIL_ERANGE, "'%s': %s: %d slots", path, field, S);
				goto out;
			}
			if (!p2l && !(p2l = malloc((size_t)run->layers * (size_t)R * (size_t)S *
						   sizeof(*p2l)))) {
				rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
				goto out;
			}
			if ((rc = ids_row(path, de, field, S, run->experts,
					  p2l + ((size_t)l * (size_t)R + (size_t)d) * (size_t)S, err)))
				goto out;
		}
	}
	*ranks = R;
	*slots = S;
	*out = p2l;
	return 0;
out:
	free(p2l);
	return rc;
}

static int read_sglang(const char *path, struct json_object *root, const struct store_run *run,
		       int *ranks, int *slots, int32_t **out, struct util_err *err)
{
	struct json_object *m;
	char field[64];
	int32_t *p2l = NULL;
	int rc, R = *ranks, P, rows, base;

	json_object_object_get_ex(root, "physical_to_logical_map", &m);
	if (!json_object_is_type(m, json_type_array) || json_object_array_length(m) == 0 ||
	    !json_object_is_type(json_object_array_get_idx(m, 0), json_type_array))
		return util_err_set(err, UTIL_EPARSE,
				    "'%s': physical_to_logical_map: not an array of rows", path);
	rows = (int)json_object_array_length(m);
	P = (int)json_object_array_length(json_object_array_get_idx(m, 0));
	if (!R)
		return util_err_set(err, UTIL_EUSAGE,
				    "'%s': an SGLang mapping does not say how many ranks share its %d "
				    "slots: give --ranks", path, P);
	if (P < R || P % R || P > STORE_MAX_SLOTS)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': physical_to_logical_map[0]: %d slots do not split into %d "
				    "ranks", path, P, R);
	if (*slots && *slots != P / R)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': physical_to_logical_map[0]: %d slots per rank, the run has %d",
				    path, P / R, *slots);
	/* one row per MoE layer, or one per model layer (rows by model layer id) */
	if (rows == run->layers)
		base = 0;
	else if (rows == run->first_layer + run->layers)
		base = run->first_layer;
	else
		return util_err_set(err, UTIL_ERANGE,
				    "'%s': physical_to_logical_map: %d rows, the run has %d MoE layers "
				    "(from model layer %d)", path, rows, run->layers, run->first_layer);
	if (!(p2l = malloc((size_t)run->layers * (size_t)P * sizeof(*p2l))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	for (int l = 0; l < run->layers; l++) {
		snprintf(field, sizeof(field), "physical_to_logical_map[%d]", base + l);
		if ((rc = ids_row(path, json_object_array_get_idx(m, (size_t)base + (size_t)l), field, P,
				  run->experts, p2l + (size_t)l * (size_t)P, err))) {
			free(p2l);
			return rc;
		}
	}
	*ranks = R;
	*slots = P / R;
	*out = p2l;
	return 0;
}

/* ---- TensorRT-LLM load-balancer YAML ------------------------------------------- */

int collector_is_yaml(const char *path)
{
	FILE *f = fopen(path, "r");
	int c;

	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF && isspace(c))
		;
	fclose(f);
	return c != EOF && c != '{';
}

void collector_trtllm_lb_release(struct collector_trtllm_lb *lb)
{
	if (!lb)
		return;
	free(lb->key);
	free(lb->ids);
	lb->key = NULL;
	lb->ids = NULL;
}

/* An integer (quotes allowed, as PyYAML may write keys) filling all of s. */
static int yaml_long(const char *path, int line, const char *s, long *out, struct util_err *err)
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

struct lb_row {
	long key;
	int line, n, cap;
	int32_t *v;
};

static int lb_push(const char *path, int line, struct lb_row *r, const char *s,
		   struct util_err *err)
{
	long v;
	int rc;

	if ((rc = yaml_long(path, line, s, &v, err)))
		return rc;
	if (v < 0 || v >= STORE_MAX_EXPERTS)
		return util_err_set(err, UTIL_ERANGE,
				    "'%s' line %d: initial_global_assignments[%ld]: expert %ld is out "
				    "of range [0, %d)",
				    path, line, r->key, v, STORE_MAX_EXPERTS);
	if (r->n == r->cap) {
		int32_t *p;
		r->cap = r->cap ? 2 * r->cap : 64;
		if (!(p = realloc(r->v, (size_t)r->cap * sizeof(*p))))
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
		r->v = p;
	}
	r->v[r->n++] = (int32_t)v;
	return 0;
}

/* The comma-separated items of s (brackets already cut off). */
static int lb_flow(const char *path, int line, struct lb_row *r, char *s, struct util_err *err)
{
	char *save = NULL;

	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int rc;
		while (isspace((unsigned char)*t))
			t++;
		if (*t && (rc = lb_push(path, line, r, t, err)))
			return rc;
	}
	return 0;
}

static int cmp_row(const void *a, const void *b)
{
	const struct lb_row *x = a, *y = b;
	return (x->key > y->key) - (x->key < y->key);
}

int collector_trtllm_lb_read(const char *path, struct collector_trtllm_lb *lb,
			     struct util_err *err)
{
	char *buf = NULL, *line, *next;
	size_t len;
	struct lb_row *rows = NULL;
	int nrows = 0, lineno = 0, in_map = 0, map_indent = 0, in_flow = 0, rc;

	memset(lb, 0, sizeof(*lb));
	lb->num_slots = -1;
	if ((rc = imp_read_file(path, &buf, &len, err)))
		return rc;
	for (line = buf; line; line = next) {
		int indent = 0;
		char *s, *hash;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		lineno++;
		if ((hash = strchr(line, '#')))
			*hash = 0;
		while (line[indent] == ' ')
			indent++;
		s = line + indent;
		for (size_t k = strlen(s); k && isspace((unsigned char)s[k - 1]); k--)
			s[k - 1] = 0;
		if (!*s || !strcmp(s, "---"))
			continue;
		if (in_flow) {
			char *close = strchr(s, ']');
			if (close)
				*close = 0;
			if ((rc = lb_flow(path, lineno, &rows[nrows - 1], s, err)))
				goto out;
			in_flow = !close;
			continue;
		}
		if (in_map && indent > map_indent) {
			char *colon;
			long key;
			struct lb_row *p;
			if (s[0] == '-') {
				if (!nrows) {
					rc = util_err_set(err, UTIL_EPARSE,
							  "'%s' line %d: list item before a layer id",
							  path, lineno);
					goto out;
				}
				if ((rc = lb_push(path, lineno, &rows[nrows - 1], s + 1, err)))
					goto out;
				continue;
			}
			if (!(colon = strchr(s, ':'))) {
				rc = util_err_set(err, UTIL_EPARSE,
						  "'%s' line %d: initial_global_assignments: expected "
						  "'LAYER: [experts]'",
						  path, lineno);
				goto out;
			}
			*colon = 0;
			if ((rc = yaml_long(path, lineno, s, &key, err)))
				goto out;
			if (!(p = realloc(rows, (size_t)(nrows + 1) * sizeof(*rows)))) {
				rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
				goto out;
			}
			rows = p;
			memset(&rows[nrows], 0, sizeof(*rows));
			rows[nrows].key = key;
			rows[nrows++].line = lineno;
			for (s = colon + 1; *s == ' '; s++)
				;
			if (*s == '[') {
				char *close = strchr(++s, ']');
				if (close)
					*close = 0;
				if ((rc = lb_flow(path, lineno, &rows[nrows - 1], s, err)))
					goto out;
				in_flow = !close;
			} else if (*s) {
				rc = util_err_set(err, UTIL_EPARSE,
						  "'%s' line %d: layer %ld: expected a list of expert ids",
						  path, lineno, key);
				goto out;
			}
			continue;
		}
		in_map = 0;
		if (!strncmp(s, "initial_global_assignments:", 27)) {
			in_map = 1;
			map_indent = indent;
		} else if (!strncmp(s, "num_slots:", 10)) {
			if ((rc = yaml_long(path, lineno, s + 10, &lb->num_slots, err)))
				goto out;
		} else if (!strncmp(s, "layer_updates_per_iter:", 23)) {
			if ((rc = yaml_long(path, lineno, s + 23, &lb->updates, err)))
				goto out;
		}
	}
	if (lb->num_slots < 1 || lb->num_slots > STORE_MAX_SLOTS) {
		rc = util_err_set(err, UTIL_EPARSE, "'%s': num_slots: %s", path,
				  lb->num_slots < 0 ? "missing (not a TensorRT-LLM load-balancer file)"
						    : "out of range");
		goto out;
	}
	if (nrows)
		qsort(rows, (size_t)nrows, sizeof(*rows), cmp_row);
	if (nrows && !(lb->key = malloc((size_t)nrows * sizeof(*lb->key)))) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	if (nrows && !(lb->ids = malloc((size_t)nrows * (size_t)lb->num_slots * sizeof(*lb->ids)))) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < nrows; i++) {
		if (i && rows[i].key == rows[i - 1].key) {
			rc = util_err_set(err, UTIL_EPARSE,
					  "'%s' line %d: initial_global_assignments: layer %ld twice",
					  path, rows[i].line, rows[i].key);
			goto out;
		}
		if (rows[i].n != lb->num_slots) {
			rc = util_err_set(err, UTIL_ERANGE,
					  "'%s' line %d: initial_global_assignments[%ld]: %d entries, "
					  "num_slots is %ld",
					  path, rows[i].line, rows[i].key, rows[i].n, lb->num_slots);
			goto out;
		}
		lb->key[i] = rows[i].key;
		memcpy(lb->ids + (size_t)i * (size_t)lb->num_slots, rows[i].v,
		       (size_t)lb->num_slots * sizeof(*lb->ids));
	}
	lb->layers = nrows;
	rc = 0;
out:
	for (int i = 0; i < nrows; i++)
		free(rows[i].v);
	free(rows);
	free(buf);
	if (rc)
		collector_trtllm_lb_release(lb);
	return rc;
}

/* The YAML's initial assignments as the run's placement: keys are model
 * layer ids (the run's, in order) or 0..L-1; num_slots / ranks per rank. */
static int read_trtllm_lb(const char *path, const struct store_run *run, int *ranks, int *slots,
			  int32_t **out, struct util_err *err)
{
	struct collector_trtllm_lb lb;
	int rc, R = *ranks;
	long P;

	if ((rc = collector_trtllm_lb_read(path, &lb, err)))
		return rc;
	P = lb.num_slots;
	if (!lb.layers) {
		rc = util_err_set(err, UTIL_EPARSE,
				  "'%s': no initial_global_assignments: the load balancer placed the "
				  "experts itself (layer_updates_per_iter: %ld), so the file does not "
				  "say where they were",
				  path, lb.updates);
		goto out;
	}
	if (!R) {
		rc = util_err_set(err, UTIL_EUSAGE,
				  "'%s': the load-balancer file does not say how many ranks share its "
				  "%ld slots: give --ranks",
				  path, P);
		goto out;
	}
	if (P % R || (*slots && *slots != P / R)) {
		rc = util_err_set(err, UTIL_ERANGE, "'%s': num_slots: %ld slots do not split into %d "
				  "ranks%s", path, P, R, *slots ? " of the run's slots" : "");
		goto out;
	}
	if (lb.layers != run->layers ||
	    (lb.key[0] != run->first_layer && lb.key[0] != 0)) {
		rc = util_err_set(err, UTIL_ERANGE,
				  "'%s': initial_global_assignments: %d layers from id %ld, the run "
				  "has %d MoE layers from model layer %d",
				  path, lb.layers, lb.key[0], run->layers, run->first_layer);
		goto out;
	}
	for (size_t i = 0; i < (size_t)lb.layers * (size_t)P; i++)
		if (lb.ids[i] >= run->experts) {
			rc = util_err_set(err, UTIL_ERANGE,
					  "'%s': initial_global_assignments[%ld][%ld]: expert %d is out "
					  "of range [0, %d)",
					  path, lb.key[i / (size_t)P], (long)(i % (size_t)P), lb.ids[i],
					  run->experts);
			goto out;
		}
	*ranks = R;
	*slots = (int)(P / R);
	*out = lb.ids;
	lb.ids = NULL;
out:
	collector_trtllm_lb_release(&lb);
	return rc;
}

int collector_deployed_read(const char *path, const struct store_run *run, int *ranks,
			    int *slots, int32_t **phy2log, struct util_err *err)
{
	struct json_object *root = NULL;
	struct json_tokener *tok;
	char *buf = NULL;
	size_t len;
	int rc;

	*phy2log = NULL;
	if (collector_is_yaml(path)) {
		if ((rc = read_trtllm_lb(path, run, ranks, slots, phy2log, err)))
			return rc;
		goto check;
	}
	if ((rc = imp_read_file(path, &buf, &len, err)))
		return rc;
	if (!(tok = json_tokener_new())) {
		free(buf);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	root = json_tokener_parse_ex(tok, buf, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success) {
		enum json_tokener_error je = json_tokener_get_error(tok);
		rc = util_err_set(err, UTIL_EPARSE, "'%s': not valid JSON: %s", path,
				  json_tokener_error_desc(je == json_tokener_continue
								  ? json_tokener_error_parse_eof
								  : je));
	} else if (!json_object_is_type(root, json_type_object)) {
		rc = util_err_set(err, UTIL_EPARSE, "'%s': not a JSON object", path);
	} else if (json_object_object_get_ex(root, "layer_list", NULL)) {
		rc = read_vllm_ascend(path, root, run, ranks, slots, phy2log, err);
	} else if (json_object_object_get_ex(root, "physical_to_logical_map", NULL)) {
		rc = read_sglang(path, root, run, ranks, slots, phy2log, err);
	} else {
		rc = util_err_set(err, UTIL_EPARSE,
				  "'%s': neither a vllm-ascend expert map (layer_list) nor an SGLang "
				  "mapping (physical_to_logical_map)", path);
	}
	json_tokener_free(tok);
	json_object_put(root);
	free(buf);
	if (rc)
		return rc;
check:;
	/* every logical expert must be placed somewhere in every layer */
	size_t P = (size_t)*ranks * (size_t)*slots;
	if ((int64_t)P < run->experts) {
		free(*phy2log);
		*phy2log = NULL;
		return util_err_set(err, UTIL_ERANGE, "'%s': %d ranks x %d slots cannot hold %d "
				    "experts", path, *ranks, *slots, run->experts);
	}
	uint8_t *seen = calloc((size_t)run->experts, 1);
	if (!seen) {
		free(*phy2log);
		*phy2log = NULL;
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	for (int l = 0; l < run->layers && !rc; l++) {
		memset(seen, 0, (size_t)run->experts);
		for (size_t p = 0; p < P; p++)
			seen[(*phy2log)[(size_t)l * P + p]] = 1;
		for (int e = 0; e < run->experts && !rc; e++)
			if (!seen[e])
				rc = util_err_set(err, UTIL_ERANGE,
						  "'%s': layer %d places expert %d nowhere", path, l, e);
	}
	free(seen);
	if (rc) {
		free(*phy2log);
		*phy2log = NULL;
	}
	return rc;
}

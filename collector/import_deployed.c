/*
 * import_deployed.c: the placement an engine ran with, read from the file
 * it loaded, for `moetrace import --deployed FILE`.  Two layouts:
 * vllm-ascend's expert_map_path JSON (vllm_ascend/eplb/core/eplb_utils.py,
 * expert_file_to_tensor) and SGLang's --init-expert-location mapping
 * {"physical_to_logical_map": [[...] per layer]} (also what SGLang's
 * per_pass dumps carry as last_physical_to_logical_map).  The collector
 * does not depend on analyze/, so this is a small reader of its own;
 * docs/formats.md describes both files.
 */
#include "collector/import_int.h"

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

int collector_deployed_read(const char *path, const struct store_run *run, int *ranks,
			    int *slots, int32_t **phy2log, struct util_err *err)
{
	struct json_object *root = NULL;
	struct json_tokener *tok;
	char *buf = NULL;
	size_t len;
	int rc;

	*phy2log = NULL;
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

/* test_format.c: engine placement files (write, read back, bad input) and
 * the heat JSON of `place --heat`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "analyze/analyze.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/moetrace-fmt.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name)
{
	static char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static const char *put(const char *name, const char *text)
{
	const char *p = path_of(name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

/* A random valid placement: every expert once, the rest random. */
static void random_placement(struct util_rng *rng, const struct analyze_shape *sh, int32_t *p2l)
{
	int P = sh->ranks * sh->slots;
	for (int l = 0; l < sh->layers; l++) {
		int32_t *p = p2l + (size_t)l * P;
		for (int i = 0; i < P; i++)
			p[i] = i < sh->experts
				       ? i
				       : (int32_t)util_rng_below(rng, (uint32_t)sh->experts);
		/* shuffled until no rank holds an expert twice: vllm-ascend's
		 * loader misroutes such a device, so its writer refuses one */
		for (int dup = 1; dup;) {
			for (int i = P - 1; i > 0; i--) {
				int j = (int)util_rng_below(rng, (uint32_t)i + 1);
				int32_t t = p[i];
				p[i] = p[j];
				p[j] = t;
			}
			dup = 0;
			for (int i = 0; i < P && !dup; i++)
				for (int j = i + 1; j < P && j / sh->slots == i / sh->slots; j++)
					dup |= p[i] == p[j];
		}
	}
}

static void test_format_names(void **state)
{
	(void)state;
	const char *names[] = { "vllm-ascend", "sglang", "trtllm" };
	for (int i = 0; i < 3; i++)
		assert_string_equal(analyze_format_name(analyze_format_parse(names[i])), names[i]);
	assert_int_equal(analyze_format_parse("vllm"), -1);
}

static void test_format_roundtrip(void **state)
{
	(void)state;
	struct analyze_shape shapes[] = {
		{ 3, 8, 4, 3, 0, 1 },  /* dense-free model */
		{ 4, 16, 4, 5, 3, 1 }, /* DeepSeek-like: first MoE layer is 3 */
		{ 2, 6, 3, 2, 1, 2 },  /* interleaved MoE layers (Llama 4) */
		{ 1, 5, 5, 1, 0, 1 },  /* no redundancy */
	};
	struct util_rng rng;
	util_rng_seed(&rng, 7);
	for (size_t s = 0; s < UTIL_ARRAY_SIZE(shapes); s++) {
		const struct analyze_shape *sh = &shapes[s];
		size_t n = (size_t)sh->layers * sh->ranks * sh->slots;
		int32_t *p = malloc(n * sizeof(int32_t)), *back = malloc(n * sizeof(int32_t));
		random_placement(&rng, sh, p);
		for (int f = 0; f < 3; f++) {
			struct util_err err = UTIL_ERR_INIT;
			int got = -1, dup = 0;
			const char *path = path_of("map");
			size_t P = (size_t)sh->ranks * sh->slots;
			for (int l = 0; l < sh->layers; l++)
				dup |= analyze_placement_check(p + l * P, sh->experts, sh->ranks,
							       sh->slots, 1, NULL) != 0;
			if (f == ANALYZE_FORMAT_VLLM_ASCEND && dup) {
				/* vllm-ascend's loader misroutes a device holding an
				 * expert twice: refused, then written once moved */
				assert_int_equal(analyze_format_write(path, f, sh, p, &err),
						 UTIL_ERANGE);
				assert_non_null(strstr(err.msg, "misroutes"));
				for (int l = 0; l < sh->layers; l++)
					assert_true(analyze_placement_undup(p + l * P, sh->experts,
									    sh->ranks, sh->slots,
									    NULL, &err) >= 0);
			}
			assert_int_equal(analyze_format_write(path, f, sh, p, &err), 0);
			memset(back, 0xff, n * sizeof(int32_t));
			if (analyze_format_read(path, sh, back, &got, &err))
				fail_msg("%s: %s", analyze_format_name(f), err.msg);
			assert_int_equal(got, f);
			assert_memory_equal(p, back, n * sizeof(int32_t));
		}
		free(p);
		free(back);
	}
}

static void test_format_vllm_ascend_reference(void **state)
{
	(void)state;
	/* vllm-ascend tests/ut/eplb/core/a2/expert_map.json: 8 experts on
	 * 2 devices x 5 slots, experts 7 and 2 replicated */
	const char *p =
		put("a2.json", "{\"moe_layer_count\": 1, \"layer_list\": [{\"layer_id\": 0, "
			       "\"device_count\": 2, \"device_list\": ["
			       "{\"device_id\": 0, \"device_expert\": [7, 2, 0, 3, 5]},"
			       "{\"device_id\": 1, \"device_expert\": [6, 1, 4, 7, 2]}]}]}");
	struct analyze_shape sh = { 1, 8, 2, 5, 0, 1 };
	int32_t got[10], want[10] = { 7, 2, 0, 3, 5, 6, 1, 4, 7, 2 };
	int fmt;
	struct util_err err = UTIL_ERR_INIT;

	assert_int_equal(analyze_format_read(p, &sh, got, &fmt, &err), 0);
	assert_int_equal(fmt, ANALYZE_FORMAT_VLLM_ASCEND);
	assert_memory_equal(got, want, sizeof(want));
	/* the same file against 3 devices names the field */
	sh.ranks = 3;
	assert_int_equal(analyze_format_read(p, &sh, got, &fmt, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "layer_list[0].device_list"));
	assert_non_null(strstr(err.msg, "a2.json"));
	sh.ranks = 2;
	sh.slots = 4;
	assert_int_equal(analyze_format_read(p, &sh, got, &fmt, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "device_expert"));
	/* 9 experts: expert 8 has no slot */
	sh.slots = 5;
	sh.experts = 9;
	assert_int_equal(analyze_format_read(p, &sh, got, &fmt, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "expert 8"));
}

static void test_format_trtllm_pyyaml(void **state)
{
	(void)state;
	/* what PyYAML's safe_dump makes of {num_slots: 4, initial_global_assignments:
	 * {3: [0, 1, 2, 1], 4: [...]}}: block lists at the key's indent */
	const char *p = put("lb.yaml", "initial_global_assignments:\n"
				       "  3:\n  - 0\n  - 1\n  - 2\n  - 1\n"
				       "  4:\n  - 2\n  - 2\n  - 1\n  - 0\n"
				       "layer_updates_per_iter: 0\n"
				       "num_slots: 4\n");
	struct analyze_shape sh = { 2, 3, 2, 2, 3, 1 };
	int32_t got[8], want[8] = { 0, 1, 2, 1, 2, 2, 1, 0 };
	int fmt;
	struct util_err err = UTIL_ERR_INIT;

	if (analyze_format_read(p, &sh, got, &fmt, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(fmt, ANALYZE_FORMAT_TRTLLM);
	assert_memory_equal(got, want, sizeof(want));
	/* flow lists spanning lines, comments, quoted keys, keys 0..L-1 */
	p = put("lb2.yaml", "# comment\nnum_slots: 4   # total\n"
			    "initial_global_assignments:\n  \"0\": [0, 1,\n     2, 1]\n"
			    "  1: [2, 2, 1, 0]\n");
	if (analyze_format_read(p, &sh, got, &fmt, &err))
		fail_msg("%s", err.msg);
	assert_memory_equal(got, want, sizeof(want));
	/* num_slots that disagrees with the run */
	p = put("lb3.yaml", "num_slots: 6\ninitial_global_assignments:\n  3: [0, 1, 2, 1]\n"
			    "  4: [2, 2, 1, 0]\n");
	assert_int_equal(analyze_format_read(p, &sh, got, &fmt, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "num_slots"));
	/* layer ids that are neither the model's nor 0..L-1 */
	p = put("lb4.yaml", "initial_global_assignments:\n  7: [0, 1, 2, 1]\n"
			    "  8: [2, 2, 1, 0]\n");
	assert_int_equal(analyze_format_read(p, &sh, got, &fmt, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "layer ids"));
	/* a short list names its line */
	p = put("lb5.yaml", "initial_global_assignments:\n  3: [0, 1, 2]\n  4: [2, 2, 1, 0]\n");
	assert_int_equal(analyze_format_read(p, &sh, got, &fmt, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "line 2"));
	/* junk in a list */
	p = put("lb6.yaml", "initial_global_assignments:\n  3: [0, x, 2, 1]\n");
	assert_int_equal(analyze_format_read(p, &sh, got, &fmt, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "line 2"));
}

static void test_format_sglang_rows(void **state)
{
	(void)state;
	/* MoE layers 1 and 2 of a model whose layer 0 is dense: the file has
	 * three rows, row 0 the trivial one SGLang builds itself */
	struct analyze_shape sh = { 2, 4, 2, 3, 1, 1 };
	int32_t p[12] = { 0, 1, 2, 3, 0, 1, 3, 2, 1, 0, 3, 3 }, back[12];
	struct util_err err = UTIL_ERR_INIT;
	const char *path = path_of("sg.json");
	struct json_object *root, *map;

	assert_int_equal(analyze_format_write(path, ANALYZE_FORMAT_SGLANG, &sh, p, &err), 0);
	root = json_object_from_file(path);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "physical_to_logical_map", &map));
	assert_int_equal(json_object_array_length(map), 3);
	assert_int_equal(json_object_array_length(json_object_array_get_idx(map, 0)), 6);
	assert_int_equal(json_object_get_int(
				 json_object_array_get_idx(json_object_array_get_idx(map, 0), 5)),
			 1); /* slot 5 of a trivial row: 5 mod 4 */
	assert_int_equal(json_object_get_int(
				 json_object_array_get_idx(json_object_array_get_idx(map, 2), 0)),
			 3); /* MoE layer 1 = model layer 2 */
	json_object_put(root);
	assert_int_equal(analyze_format_read(path, &sh, back, NULL, &err), 0);
	assert_memory_equal(p, back, sizeof(p));
	/* a row too short */
	path = put("sg2.json", "{\"physical_to_logical_map\": [[0,1,2,3,0,1],[0,1,2,3,0]]}");
	assert_int_equal(analyze_format_read(path, &sh, back, NULL, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "physical_to_logical_map[1]"));
	path = put("sg3.json", "{\"physical_to_logical_map\": [[0,1,2,3,0,1]]}");
	assert_int_equal(analyze_format_read(path, &sh, back, NULL, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "1 rows"));
}

static void test_format_bad_files(void **state)
{
	(void)state;
	struct analyze_shape sh = { 1, 2, 1, 2, 0, 1 };
	int32_t back[2], p[2] = { 1, 0 };
	struct util_err err = UTIL_ERR_INIT;
	const char *path;

	assert_int_equal(analyze_format_read(path_of("none.json"), &sh, back, NULL, &err),
			 UTIL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "none.json"));
	path = put("bad.json", "{\"layer_list\": [\n  {\"device_list\": [}\n]}");
	assert_int_equal(analyze_format_read(path, &sh, back, NULL, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "line 2"));
	path = put("other.json", "{\"experts\": [1, 2]}");
	assert_int_equal(analyze_format_read(path, &sh, back, NULL, &err), UTIL_EPARSE);
	path = put("float.json", "{\"physical_to_logical_map\": [[0, 1.5]]}");
	assert_int_equal(analyze_format_read(path, &sh, back, NULL, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "physical_to_logical_map[0][1]"));
	/* a failed write leaves nothing behind */
	assert_int_equal(analyze_format_write(path_of("no/such/dir/map.json"),
					      ANALYZE_FORMAT_SGLANG, &sh, p, &err),
			 UTIL_EIO);
	assert_int_not_equal(access(path_of("no/such/dir/map.json"), F_OK), 0);
}

static void test_format_heat(void **state)
{
	(void)state;
	struct analyze_heat_file h;
	struct util_err err = UTIL_ERR_INIT;
	const char *p =
		put("h.json", "{\"heat\": [[3, 1, 0], [0.5, 2, 4]], \"ranks\": 3, "
			      "\"episodes\": [[[1, 1, 0], [0, 1, 2]], [[2, 0, 0], [0.5, 1, 2]]]}");

	assert_int_equal(analyze_heat_read(p, &h, &err), 0);
	assert_int_equal(h.layers, 2);
	assert_int_equal(h.experts, 3);
	assert_int_equal(h.n_episodes, 2);
	assert_int_equal(h.ranks, 3);
	assert_int_equal(h.slots, 0);
	assert_true(h.heat[3] == 0.5 && h.heat[5] == 4);
	assert_true(h.episodes[6] == 2 && h.episodes[11] == 2);
	analyze_heat_release(&h);

	p = put("ragged.json", "{\"heat\": [[3, 1, 0], [1, 2]]}");
	assert_int_equal(analyze_heat_read(p, &h, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "heat[1]"));
	assert_non_null(strstr(err.msg, "ragged"));
	p = put("neg.json", "{\"heat\": [[3, -1, 0]]}");
	assert_int_equal(analyze_heat_read(p, &h, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "heat[0][1]"));
	p = put("eps.json", "{\"heat\": [[3, 1]], \"episodes\": [[[1, 1]], [[1, 1, 1]]]}");
	assert_int_equal(analyze_heat_read(p, &h, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "episodes[1][0]"));
	p = put("noheat.json", "{\"load\": [[1]]}");
	assert_int_equal(analyze_heat_read(p, &h, &err), UTIL_EPARSE);
	p = put("str.json", "{\"heat\": [[1, \"2\"]]}");
	assert_int_equal(analyze_heat_read(p, &h, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "heat[0][1]"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_names),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_format_vllm_ascend_reference),
		cmocka_unit_test(test_format_trtllm_pyyaml),
		cmocka_unit_test(test_format_sglang_rows),
		cmocka_unit_test(test_format_bad_files),
		cmocka_unit_test(test_format_heat),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_import.c: the engine-dump importers (JSON lines, Megatron-LM,
 * TensorRT-LLM safetensors), the deployed-placement reader and the heat
 * exporters.  Inputs are written here by hand; the expected counts follow
 * from them (ranks summed, top-k ids histogrammed), not from the code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyze/analyze.h"
#include "collector/collector.h"

struct fx {
	char dir[64];
	char db[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct util_err err = UTIL_ERR_INIT;

	snprintf(f->dir, sizeof(f->dir), "/tmp/moetrace-import.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
	assert_int_equal(store_open(f->db, STORE_CREATE, &f->s, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	store_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static const char *put(struct fx *f, const char *name, const void *data, size_t len)
{
	static char path[4][256];
	static int k;
	char *p = path[k++ % 4];
	FILE *fp;

	snprintf(p, 256, "%s/%s", f->dir, name);
	if (strchr(name, '/')) {
		char d[256];
		snprintf(d, sizeof(d), "%s", p);
		*strrchr(d, '/') = 0;
		mkdir(d, 0755);
	}
	fp = fopen(p, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
	return p;
}

static const char *puts_(struct fx *f, const char *name, const char *text)
{
	return put(f, name, text, strlen(text));
}

static size_t nruns(struct fx *f)
{
	struct store_run *runs;
	size_t n;

	assert_int_equal(store_run_list(f->s, &runs, &n), 0);
	free(runs);
	return n;
}

/* Counts of one step of the run (layers x experts into out). */
static void step_counts(struct fx *f, const struct store_run *run, int64_t step, uint32_t *out)
{
	uint64_t sum[64];
	int64_t n = 0;
	size_t cells = (size_t)run->layers * (size_t)run->experts;

	assert_true(cells <= 64);
	assert_int_equal(store_window_sum(f->s, run, step, step, 0, sum, &n), 0);
	assert_int_equal(n, 1);
	for (size_t i = 0; i < cells; i++)
		out[i] = (uint32_t)sum[i];
}

static struct collector_import_opts opts(const char *name)
{
	struct collector_import_opts o = { 0 };
	o.run_name = name;
	return o;
}

/* Expects an import failure whose message contains want, and no new run. */
static void expect_fail(struct fx *f, int format, const char *path, const char *want)
{
	struct collector_import_opts o = opts("bad");
	struct util_err err = UTIL_ERR_INIT;
	size_t before = nruns(f);

	assert_int_not_equal(collector_import(f->s, path, format, &o, NULL, &err), 0);
	if (!strstr(err.msg, want))
		fail_msg("message '%s' lacks '%s'", err.msg, want);
	assert_int_equal(nruns(f), before);
}

/* ---- safetensors ------------------------------------------------------------ */

/* A safetensors image: header text, then data bytes. */
static size_t st_image(uint8_t *out, const char *header, const void *data, size_t dlen)
{
	uint64_t h = strlen(header);
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(h >> (8 * i));
	memcpy(out + 8, header, h);
	memcpy(out + 8 + h, data, dlen);
	return 8 + h + dlen;
}

static void test_import_safetensors_parse(void **state)
{
	(void)state;
	uint8_t img[512];
	int64_t v[3] = { 7, 0, 1LL << 33 };
	struct collector_st_tensor *t;
	struct util_err err = UTIL_ERR_INIT;
	size_t n, len;

	len = st_image(img, "{\"__metadata__\":{\"a\":\"b\"},\"1_2\":{\"dtype\":\"I64\",\"shape\":[3],"
			    "\"data_offsets\":[0,24]}}", v, sizeof(v));
	assert_int_equal(collector_st_parse("x", img, len, &t, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].name, "1_2");
	assert_string_equal(t[0].dtype, "I64");
	assert_int_equal(t[0].ndim, 1);
	assert_int_equal(t[0].shape[0], 3);
	assert_int_equal(t[0].bytes, 24);
	assert_memory_equal(t[0].data, v, 24);
	free(t);

	/* truncated: fewer than 8 bytes, or a header longer than the file */
	assert_int_equal(collector_st_parse("x", img, 5, &t, &n, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_int_equal(collector_st_parse("x", img, 20, &t, &n, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "truncated header"));
	/* data cut short */
	assert_int_equal(collector_st_parse("x", img, len - 8, &t, &n, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "runs past"));
	/* byte count that does not match shape x dtype */
	len = st_image(img, "{\"1_2\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,24]}}", v,
		       sizeof(v));
	assert_int_equal(collector_st_parse("x", img, len, &t, &n, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "24 data bytes for 2 values"));
	/* unknown dtype, bad JSON, missing field */
	len = st_image(img, "{\"1_2\":{\"dtype\":\"Q7\",\"shape\":[3],\"data_offsets\":[0,24]}}", v,
		       sizeof(v));
	assert_int_equal(collector_st_parse("x", img, len, &t, &n, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "field 'dtype'"));
	len = st_image(img, "{\"1_2\":{\"dtype\":", v, sizeof(v));
	assert_int_equal(collector_st_parse("x", img, len, &t, &n, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "not valid JSON"));
	len = st_image(img, "{\"1_2\":{\"dtype\":\"I64\",\"shape\":[3]}}", v, sizeof(v));
	assert_int_equal(collector_st_parse("x", img, len, &t, &n, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "data_offsets"));
}

/* ---- TensorRT-LLM ------------------------------------------------------------- */

static void trt_rank(struct fx *f, const char *name, const char *dtype, const char *k1,
		     const char *k2, const int64_t *a, const int64_t *b, int n)
{
	uint8_t img[1024];
	char hdr[512];
	int64_t data[16];
	int sz = !strcmp(dtype, "I32") ? 4 : 8;
	uint8_t raw[128];

	memcpy(data, a, (size_t)n * 8);
	memcpy(data + n, b, (size_t)n * 8);
	for (int i = 0; i < 2 * n; i++)
		for (int j = 0; j < sz; j++)
			raw[i * sz + j] = (uint8_t)((uint64_t)data[i] >> (8 * j));
	snprintf(hdr, sizeof(hdr),
		 "{\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
		 "\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%d,%d]}}",
		 k1, dtype, n, n * sz, k2, dtype, n, n * sz, 2 * n * sz);
	put(f, name, img, st_image(img, hdr, raw, 2 * (size_t)n * (size_t)sz));
}

static void test_import_trtllm(void **state)
{
	struct fx *f = *state;
	struct collector_import_opts o = opts("trt");
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run;
	int64_t a0[4] = { 1, 2, 3, 4 }, a1[4] = { 0, 0, 5, 0 };
	int64_t b0[4] = { 10, 20, 30, 40 }, b1[4] = { 1, 1, 1, 1 };
	uint32_t c[8];
	char dir[128];

	puts_(f, "trt/meta_info.json", "{\"num_experts\": 4, \"num_experts_per_token\": 2}");
	/* iteration 7 only, model layers 3 and 5: MoE layers 0 and 1 */
	trt_rank(f, "trt/rank0.safetensors", "I64", "7_3", "7_5", a0, a1, 4);
	trt_rank(f, "trt/rank1.safetensors", "I32", "7_3", "7_5", b0, b1, 4);
	snprintf(dir, sizeof(dir), "%s/trt", f->dir);
	assert_int_equal(collector_format_detect(dir, &err), COLLECTOR_FORMAT_TRTLLM);
	assert_int_equal(collector_import(f->s, dir, COLLECTOR_FORMAT_AUTO, &o, &run, &err), 0);
	assert_int_equal(run.layers, 2);
	assert_int_equal(run.experts, 4);
	assert_int_equal(run.topk, 2);
	assert_int_equal(run.first_layer, 3);
	assert_int_equal(run.ranks, 2);
	step_counts(f, &run, 7, c);
	uint32_t want[8] = { 11, 22, 33, 44, 1, 1, 6, 1 };
	assert_memory_equal(c, want, sizeof(want));

	/* wrong dtype */
	trt_rank(f, "bad1/rank0.safetensors", "I64", "7_3", "7_5", a0, a1, 4);
	{
		uint8_t img[256];
		float v[4] = { 1, 2, 3, 4 };
		put(f, "bad1/rank1.safetensors", img,
		    st_image(img, "{\"7_3\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", v,
			     16));
	}
	snprintf(dir, sizeof(dir), "%s/bad1", f->dir);
	expect_fail(f, COLLECTOR_FORMAT_TRTLLM, dir, "rank1.safetensors: key '7_3': field 'dtype': F32");
	/* key not "{iter}_{layer}" */
	trt_rank(f, "bad2/rank0.safetensors", "I64", "7_3", "layer5", a0, a1, 4);
	snprintf(dir, sizeof(dir), "%s/bad2", f->dir);
	expect_fail(f, COLLECTOR_FORMAT_TRTLLM, dir, "key 'layer5' does not match '{iter}_{layer}'");
	/* shape mismatch between ranks */
	trt_rank(f, "bad3/rank0.safetensors", "I64", "7_3", "7_5", a0, a1, 4);
	trt_rank(f, "bad3/rank1.safetensors", "I64", "7_3", "7_5", a0, a1, 3);
	snprintf(dir, sizeof(dir), "%s/bad3", f->dir);
	expect_fail(f, COLLECTOR_FORMAT_TRTLLM, dir, "shape mismatch");
	/* a key missing from every rank: (8, 5) of the 2 x 2 grid */
	trt_rank(f, "bad4/rank0.safetensors", "I64", "7_3", "7_5", a0, a1, 4);
	trt_rank(f, "bad4/rank1.safetensors", "I64", "8_3", "7_5", a0, a1, 4);
	snprintf(dir, sizeof(dir), "%s/bad4", f->dir);
	expect_fail(f, COLLECTOR_FORMAT_TRTLLM, dir, "key '8_5' is in no rank file");
	/* meta_info says 8 experts, the tensors hold 4 */
	puts_(f, "bad5/meta_info.json", "{\"num_experts\": 8}");
	trt_rank(f, "bad5/rank0.safetensors", "I64", "7_3", "7_5", a0, a1, 4);
	snprintf(dir, sizeof(dir), "%s/bad5", f->dir);
	expect_fail(f, COLLECTOR_FORMAT_TRTLLM, dir, "4 experts, the run has 8");
	/* a truncated rank file */
	put(f, "bad6/rank0.safetensors", "\x40\0\0\0\0\0\0\0{\"7_3\"", 14);
	snprintf(dir, sizeof(dir), "%s/bad6", f->dir);
	expect_fail(f, COLLECTOR_FORMAT_TRTLLM, dir, "truncated header");
	/* negative counts */
	int64_t neg[4] = { 1, -2, 3, 4 };
	trt_rank(f, "bad7/rank0.safetensors", "I64", "7_3", "7_5", neg, a1, 4);
	snprintf(dir, sizeof(dir), "%s/bad7", f->dir);
	expect_fail(f, COLLECTOR_FORMAT_TRTLLM, dir, "key '7_3': expert 1: -2 is negative");
}

/* ---- JSON lines ----------------------------------------------------------------- */

static void test_import_jsonl(void **state)
{
	struct fx *f = *state;
	struct collector_import_opts o = opts("j");
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run;
	uint32_t c[8];
	static const char text[] =
			      "{\"moetrace\": 1, \"model\": \"\", \"topk\": 2, \"ranks\": 2}\n"
			      "\n"
			      "{\"step\": 3, \"layer\": 1, \"counts\": [0, 4, 0], \"phase\": \"decode\"}\n"
			      "{\"step\": 3, \"layer\": 0, \"counts\": [1, 2, 3]}\n"
			      "{\"step\": 5, \"counts\": [[9, 0, 0], [0, 0, 9]], \"tokens\": 17, "
			      "\"time\": 1700000000.5, \"phase\": \"prefill\"}\n";
	const char *p = puts_(f, "a.jsonl", text);

	assert_int_equal(collector_format_detect(p, &err), COLLECTOR_FORMAT_JSONL);
	assert_int_equal(collector_import(f->s, p, COLLECTOR_FORMAT_AUTO, &o, &run, &err), 0);
	assert_int_equal(run.layers, 2);
	assert_int_equal(run.experts, 3);
	assert_int_equal(run.topk, 2);
	assert_int_equal(run.ranks, 2);
	assert_int_equal(run.slots, 2);
	step_counts(f, &run, 3, c);
	uint32_t w3[6] = { 1, 2, 3, 0, 4, 0 };
	assert_memory_equal(c, w3, sizeof(w3));
	step_counts(f, &run, 5, c);
	uint32_t w5[6] = { 9, 0, 0, 0, 0, 9 };
	assert_memory_equal(c, w5, sizeof(w5));
	struct store_iter *it;
	struct store_step st;
	assert_int_equal(store_iter_new(f->s, &run, 0, 100, 0, &it), 0);
	assert_int_equal(store_iter_next(it, &st), 1);
	assert_int_equal(st.phase, STORE_PHASE_DECODE);
	assert_int_equal(st.tokens, 3); /* layer 0's 6 assignments / top-2 */
	assert_int_equal(store_iter_next(it, &st), 1);
	assert_int_equal(st.phase, STORE_PHASE_PREFILL);
	assert_int_equal(st.tokens, 17);
	assert_true(st.time > 1700000000.0);
	store_iter_free(it);

	/* the same records in the compact form export writes and in forms only
	 * the general parser takes (an unknown field, a numeric phase, an
	 * escape): both give the same cells */
	o = opts("j2");
	p = puts_(
		f, "mix.jsonl",
		"{\"step\":3,\"phase\":\"decode\",\"counts\":[[1,2,3],[0,4,0]]}\n"
		"{\"step\": 5, \"note\": null, \"phase\": 1, \"c\\u006funts\": [[9, 0, 0], [0, 0, 9]]}\n");
	assert_int_equal(collector_import(f->s, p, COLLECTOR_FORMAT_JSONL, &o, &run, &err), 0);
	step_counts(f, &run, 3, c);
	assert_memory_equal(c, w3, sizeof(w3));
	step_counts(f, &run, 5, c);
	assert_memory_equal(c, w5, sizeof(w5));

	/* bad input: each names the file, the line and the field */
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b1.jsonl", "{\"step\": 1, \"layer\": 0, \"counts\": [1]}\n{\"step\": 2,"),
		    "b1.jsonl:2: malformed JSON line");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b2.jsonl", "{\"step\": 1, \"layer\": 0, \"counts\": [1, 2]}\n"
					 "{\"step\": 1, \"layer\": 1, \"counts\": [1, 2, 3]}\n"),
		    "b2.jsonl:2: field 'counts': 3 experts, but");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b3.jsonl", "{\"step\": 4, \"layer\": 0, \"counts\": [1]}\n"
					 "{\"step\": 2, \"layer\": 0, \"counts\": [1]}\n"),
		    "b3.jsonl:2: field 'step': 2 comes after step 4");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b4.jsonl", "{\"step\": 1, \"layer\": 0, \"counts\": [1]}\n"
					 "{\"step\": 1, \"layer\": 0, \"counts\": [2]}\n"),
		    "b4.jsonl:2: duplicate record for step 1, layer 0 (first at line 1)");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b5.jsonl", "{\"step\": 1, \"layer\": 0, \"counts\": [1, -1]}\n"),
		    "b5.jsonl:1: field 'counts'[1]: -1 is not a non-negative integer");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b6.jsonl", "{\"step\": 1, \"counts\": [1]}\n"),
		    "b6.jsonl:1: missing field 'layer'");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b7.jsonl", "{\"step\": 1, \"layer\": 0, \"counts\": [4294967296]}\n"),
		    "overflows a 32-bit count");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b8.jsonl", "{\"step\": 1, \"layer\": 0, \"phase\": \"warm\", \"counts\": [1]}\n"),
		    "b8.jsonl:1: field 'phase'");
	expect_fail(f, COLLECTOR_FORMAT_JSONL, puts_(f, "b9.jsonl", ""), "empty file");
	/* a count is an integer as written: 9.0 and 9e0 are doubles, and a
	 * double may have been rounded on its way in (2.0000000000000001) */
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b11.jsonl", "{\"step\": 5, \"counts\": [[9.0, 0, 0], [0, 0, 9]]}\n"),
		    "b11.jsonl:1: field 'counts[0]'[0]: 9.0 is not a non-negative integer");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b12.jsonl", "{\"step\": 5, \"layer\": 0, \"counts\": [9e0]}\n"),
		    "b12.jsonl:1: field 'counts'[0]: 9e0 is not a non-negative integer");
	expect_fail(f, COLLECTOR_FORMAT_JSONL,
		    puts_(f, "b13.jsonl", "{\"step\": 5.0, \"layer\": 0, \"counts\": [9]}\n"),
		    "b13.jsonl:1: field 'step': 5.0 is not an integer");
	expect_fail(f, COLLECTOR_FORMAT_JSONL, puts_(f, "b10.jsonl", "[1, 2]\n"),
		    "b10.jsonl:1: not a JSON object");
	/* a run that exists already */
	o = opts("j");
	p = puts_(f, "a.jsonl", text);
	assert_int_not_equal(collector_import_jsonl(f->s, p, &o, NULL, &err), 0);
	if (!strstr(err.msg, "already exists"))
		fail_msg("%s", err.msg);
}

/* ---- Megatron-LM ---------------------------------------------------------------- */

static void test_import_megatron(void **state)
{
	struct fx *f = *state;
	struct collector_import_opts o = opts("mg");
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run;
	uint32_t c[12];
	char dir[128];

	/* rank 0: step 0 layer 1 (2 tokens); rank 1: the same layer (1 token),
	 * and layer 3; an MTP record that must not count */
	puts_(f, "mg/router_trace_rank0.jsonl",
	      "{\"step\": 0, \"block\": \"decoder\", \"layer\": 1, \"rank\": 0, \"num_tokens\": 2, "
	      "\"topk\": 2, \"top_indices\": [[0, 5], [5, 2]]}\n"
	      "{\"step\": 0, \"block\": \"mtp\", \"mtp_idx\": 0, \"layer\": 1, \"rank\": 0, "
	      "\"num_tokens\": 1, \"topk\": 2, \"top_indices\": [[4, 4]]}\n");
	puts_(f, "mg/router_trace_rank1.jsonl",
	      "{\"step\": 0, \"block\": \"decoder\", \"layer\": 1, \"rank\": 1, \"num_tokens\": 1, "
	      "\"topk\": 2, \"top_indices\": [[1, 5]]}\n"
	      "{\"step\": 0, \"block\": \"decoder\", \"layer\": 3, \"rank\": 1, \"num_tokens\": 1, "
	      "\"topk\": 2, \"top_indices\": [[3, 0]]}\n");
	snprintf(dir, sizeof(dir), "%s/mg", f->dir);
	assert_int_equal(collector_format_detect(dir, &err), COLLECTOR_FORMAT_MEGATRON);
	o.experts = 6;
	assert_int_equal(collector_import(f->s, dir, COLLECTOR_FORMAT_AUTO, &o, &run, &err), 0);
	assert_int_equal(run.layers, 2);
	assert_int_equal(run.experts, 6);
	assert_int_equal(run.topk, 2);
	assert_int_equal(run.first_layer, 1);
	step_counts(f, &run, 0, c);
	uint32_t want[12] = { 1, 1, 1, 0, 0, 3, 1, 0, 0, 1, 0, 0 };
	assert_memory_equal(c, want, sizeof(want));

	/* a line the fast path gives up on after reading its ids (an extra
	 * field) leaves nothing behind for the next line */
	o = opts("mg2");
	o.experts = 4;
	const char *q =
		puts_(f, "mix.jsonl",
		      "{\"top_indices\": [[1, 2]], \"layer\": 1, \"step\": 0, \"extra\": 5}\n"
		      "{\"step\":1,\"layer\":1,\"topk\":2,\"top_indices\":[[0,3]]}\n");
	assert_int_equal(collector_import(f->s, q, COLLECTOR_FORMAT_MEGATRON, &o, &run, &err), 0);
	step_counts(f, &run, 0, c);
	uint32_t m0[4] = { 0, 1, 1, 0 }, m1[4] = { 1, 0, 0, 1 };
	assert_memory_equal(c, m0, sizeof(m0));
	step_counts(f, &run, 1, c);
	assert_memory_equal(c, m1, sizeof(m1));

	expect_fail(f, COLLECTOR_FORMAT_MEGATRON,
		    puts_(f, "m1.jsonl", "{\"step\": 0, \"layer\": 1, \"topk\": 2, "
					 "\"top_indices\": [[0, 1], [2]]}\n"),
		    "m1.jsonl:1: field 'top_indices'[1]: 1 ids, 'topk' says 2");
	expect_fail(f, COLLECTOR_FORMAT_MEGATRON,
		    puts_(f, "m2.jsonl", "{\"step\": 0, \"layer\": 1, \"num_tokens\": 3, "
					 "\"top_indices\": [[0, 1]]}\n"),
		    "m2.jsonl:1: field 'top_indices': 1 tokens, 'num_tokens' says 3");
	expect_fail(f, COLLECTOR_FORMAT_MEGATRON,
		    puts_(f, "m3.jsonl", "{\"step\": 0, \"layer\": 1, \"top_indices\": [[0, \"x\"]]}\n"),
		    "m3.jsonl:1: field 'top_indices'[0][1]");
	expect_fail(f, COLLECTOR_FORMAT_MEGATRON,
		    puts_(f, "m4.jsonl", "{\"step\": 0, \"layer\": 1, \"top_indices\": [[0, 1]]\n"),
		    "m4.jsonl:1: malformed JSON line");
}

/* ---- deployed placement ------------------------------------------------------------- */

/* The deployed placement of a run, as `import --deployed` reads it. */
static int deployed_read(const char *path, const struct store_run *run, int *ranks, int *slots,
			 int32_t **p2l, struct util_err *err)
{
	struct analyze_shape sh = analyze_shape_of(run, *ranks, *slots);
	int rc = analyze_format_read_deployed(path, &sh, p2l, err);

	*ranks = sh.ranks;
	*slots = sh.slots;
	return rc;
}

static void test_import_deployed(void **state)
{
	struct fx *f = *state;
	struct store_run run = { 0 };
	struct util_err err = UTIL_ERR_INIT;
	int32_t *p2l;
	int ranks = 0, slots = 0;

	run.layers = 1;
	run.experts = 3;
	const char *p = puts_(f, "m.json",
			      "{\"moe_layer_count\": 1, \"layer_list\": [{\"layer_id\": 0, "
			      "\"device_list\": [{\"device_expert\": [2, 0]}, "
			      "{\"device_expert\": [1, 2]}]}]}");
	assert_int_equal(deployed_read(p, &run, &ranks, &slots, &p2l, &err), 0);
	assert_int_equal(ranks, 2);
	assert_int_equal(slots, 2);
	int32_t want[4] = { 2, 0, 1, 2 };
	assert_memory_equal(p2l, want, sizeof(want));
	free(p2l);
	/* SGLang mapping, split into 2 ranks */
	ranks = 2;
	slots = 0;
	p = puts_(f, "s.json", "{\"physical_to_logical_map\": [[2, 0, 1, 2]]}");
	assert_int_equal(deployed_read(p, &run, &ranks, &slots, &p2l, &err), 0);
	assert_int_equal(slots, 2);
	assert_memory_equal(p2l, want, sizeof(want));
	free(p2l);
	/* expert 1 placed nowhere; a device with a different slot count */
	ranks = slots = 0;
	p = puts_(f, "b.json", "{\"layer_list\": [{\"device_list\": [{\"device_expert\": [2, 0]}, "
			       "{\"device_expert\": [0, 2]}]}]}");
	assert_int_not_equal(deployed_read(p, &run, &ranks, &slots, &p2l, &err), 0);
	assert_non_null(strstr(err.msg, "places expert 1 nowhere"));
	ranks = slots = 0;
	p = puts_(f, "c.json", "{\"layer_list\": [{\"device_list\": [{\"device_expert\": [2, 0]}, "
			       "{\"device_expert\": [1]}]}]}");
	assert_int_not_equal(deployed_read(p, &run, &ranks, &slots, &p2l, &err), 0);
	assert_non_null(strstr(err.msg, "layer_list[0].device_list[1].device_expert: 1 entries"));
	ranks = slots = 0;
	p = puts_(f, "d.json", "{\"layer_list\": [{\"device_list\": [{\"device_expert\": [3, 0]}]}]}");
	assert_int_not_equal(deployed_read(p, &run, &ranks, &slots, &p2l, &err), 0);
	assert_non_null(strstr(err.msg, "expert 3 out of range"));
}

/* ---- export, then import again ---------------------------------------------------------- */

static void test_import_export_roundtrip(void **state)
{
	struct fx *f = *state;
	struct store_run run = { 0 }, back;
	struct store_step steps[3];
	uint32_t counts[3][2 * 5], c[10];
	struct util_err err = UTIL_ERR_INIT;
	struct util_rng rng;
	char out[160];

	snprintf(run.name, sizeof(run.name), "orig");
	run.layers = 2;
	run.experts = 5;
	run.topk = 1;
	util_rng_seed(&rng, 9);
	for (int i = 0; i < 3; i++) {
		for (int k = 0; k < 10; k++)
			counts[i][k] = util_rng_below(&rng, 4) ? util_rng_below(&rng, 1000) : 0;
		counts[i][9] = 0; /* the last expert idle: the dense CSV still keeps the shape */
		steps[i] = (struct store_step){ 100 + 7 * i, 0, i == 1 ? STORE_PHASE_PREFILL
								    : STORE_PHASE_DECODE,
						 0, counts[i] };
	}
	assert_int_equal(store_run_add(f->s, &run), 0);
	assert_int_equal(store_steps_append(f->s, &run, steps, 3), 0);

	for (int fmt = 0; fmt < 2; fmt++) {
		struct collector_export_opts eo = { fmt, INT64_MIN, INT64_MAX, 0 };
		struct collector_import_opts o = opts(fmt ? "from-jsonl" : "from-csv");
		int64_t n = 0;
		snprintf(out, sizeof(out), "%s/out.%s", f->dir, fmt ? "jsonl" : "csv");
		assert_int_equal(collector_export(f->s, &run, &eo, out, &n, &err), 0);
		assert_int_equal(n, 3);
		assert_int_equal(collector_import(f->s, out, COLLECTOR_FORMAT_AUTO, &o, &back, &err),
				 0);
		assert_int_equal(back.layers, 2);
		assert_int_equal(back.experts, 5);
		for (int i = 0; i < 3; i++) {
			step_counts(f, &back, steps[i].step, c);
			assert_memory_equal(c, counts[i], sizeof(c));
		}
		struct store_iter *it;
		struct store_step st;
		assert_int_equal(store_iter_new(f->s, &back, INT64_MIN, INT64_MAX, 0, &it), 0);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(store_iter_next(it, &st), 1);
			assert_int_equal(st.phase, steps[i].phase);
		}
		assert_int_equal(store_iter_next(it, &st), 0);
		store_iter_free(it);
	}
	/* a step range selecting nothing is an error and writes no file */
	struct collector_export_opts eo = { COLLECTOR_EXPORT_CSV, 1000, 2000, 0 };
	snprintf(out, sizeof(out), "%s/none.csv", f->dir);
	assert_int_equal(collector_export(f->s, &run, &eo, out, NULL, &err), UTIL_ENOTFOUND);
	assert_int_not_equal(access(out, F_OK), 0);
	/* sparse CSV: the non-zero cells, and the step's last cell (layer 1,
	 * expert 4) even when zero, which keeps the shape and empty steps */
	eo = (struct collector_export_opts){ COLLECTOR_EXPORT_CSV, 107, 107, 1 };
	snprintf(out, sizeof(out), "%s/sparse.csv", f->dir);
	assert_int_equal(collector_export(f->s, &run, &eo, out, NULL, &err), 0);
	FILE *fp = fopen(out, "r");
	char line[128];
	int rows = -1, nz = 0;
	while (fgets(line, sizeof(line), fp))
		rows++;
	fclose(fp);
	for (int k = 0; k < 10; k++)
		nz += counts[1][k] != 0 || k == 9;
	assert_int_equal(rows, nz);
}

static void test_import_detect(void **state)
{
	struct fx *f = *state;
	struct util_err err = UTIL_ERR_INIT;

	assert_int_equal(collector_format_detect(puts_(f, "x.csv", "step"), &err),
			 COLLECTOR_FORMAT_CSV);
	assert_int_equal(collector_format_detect(puts_(f, "x.pt", "PK\3\4"), &err),
			 COLLECTOR_FORMAT_SGLANG);
	assert_int_equal(collector_format_detect(puts_(f, "noext", "PK\3\4rest"), &err),
			 COLLECTOR_FORMAT_SGLANG);
	assert_int_equal(collector_format_detect(puts_(f, "t.jsonl", "{\"step\": 0, \"layer\": 2, "
							    "\"top_indices\": [[1]]}"), &err),
			 COLLECTOR_FORMAT_MEGATRON);
	assert_int_equal(collector_format_detect(puts_(f, "trace", "  {\"step\": 0}"), &err),
			 COLLECTOR_FORMAT_JSONL);
	assert_int_equal(collector_format_detect(puts_(f, "plain", "step,layer"), &err),
			 COLLECTOR_FORMAT_CSV);
	assert_int_equal(collector_format_parse("trtllm"), COLLECTOR_FORMAT_TRTLLM);
	assert_int_equal(collector_format_parse("nope"), -1);
	/* a .pt goes to the SGLang reader, which wants a whole torch.save archive */
	expect_fail(f, COLLECTOR_FORMAT_AUTO, puts_(f, "d.pt", "PK\3\4"),
		    "d.pt: not a torch.save archive: 4 bytes, no zip end record");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_import_safetensors_parse),
		cmocka_unit_test_setup_teardown(test_import_trtllm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_jsonl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_megatron, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_deployed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_export_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_detect, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_transfer.c: expert sizes, link presets, copy plans and token drop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze/analyze.h"

static void test_transfer_expert_bytes(void **state)
{
	(void)state;
	/* DeepSeek-V3: hidden 7168, moe_intermediate_size 2048 (config.json).
	 * 3 x 7168 x 2048 = 44,040,192 weights. */
	assert_int_equal(analyze_expert_bytes(7168, 2048, ANALYZE_QUANT_BF16), 88080384ULL);
	/* + 3 matrices x 16 x 56 blocks of 128x128, 4-byte scales */
	assert_int_equal(analyze_expert_bytes(7168, 2048, ANALYZE_QUANT_FP8), 44040192ULL + 10752);
	/* + 4-byte scale per output channel: 2 x 2048 + 7168 */
	assert_int_equal(analyze_expert_bytes(7168, 2048, ANALYZE_QUANT_W8A8),
			 44040192ULL + 4ULL * 11264);
	/* half a byte per weight; bf16 scale+offset per channel (11264) and per
	 * group of 256: gate/up 4096 x 28 groups, down 7168 x 8 groups */
	assert_int_equal(analyze_expert_bytes(7168, 2048, ANALYZE_QUANT_W4A8),
			 22020096ULL + 4ULL * 11264 + 4ULL * (4096 * 28 + 7168 * 8));
	/* sizes not multiple of the block round the block count up */
	assert_int_equal(analyze_expert_bytes(130, 129, ANALYZE_QUANT_FP8),
			 3ULL * 130 * 129 + 4ULL * 3 * 2 * 2);
	assert_int_equal(analyze_expert_bytes(7168, 2048, 99), 0);
}

static void test_transfer_quant_names(void **state)
{
	(void)state;
	const char *names[] = { "bf16", "fp8", "w8a8", "w4a8", "mxfp4" };
	for (int i = 0; i < 5; i++) {
		int q = analyze_quant_parse(names[i]);
		assert_true(q >= 0);
		assert_string_equal(analyze_quant_name(q), names[i]);
	}
	assert_int_equal(analyze_quant_parse("int3"), -1);
	assert_int_equal(analyze_quant_parse(""), -1);
}

static void test_transfer_links(void **state)
{
	(void)state;
	const char *want[] = { "nvlink3", "nvlink4",   "nvlink5",   "pcie4-x16",  "pcie5-x16",
			       "hccs",	  "roce-200g", "roce-400g", "ib-hdr-200g", "ib-ndr-400g" };
	const struct analyze_link *l;
	size_t n = 0;

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(want); i++)
		assert_non_null(analyze_link_find(want[i]));
	assert_null(analyze_link_find("carrier-pigeon"));
	while ((l = analyze_link_at(n))) {
		assert_true(l->gbytes_per_s > 0);
		assert_true(strlen(l->source) > 10);
		assert_ptr_equal(analyze_link_find(l->name), l);
		n++;
	}
	assert_true(n >= UTIL_ARRAY_SIZE(want));
	/* 400 Gb/s is 50 GB/s; PCIe 5 doubles PCIe 4 */
	assert_true(fabs(analyze_link_find("ib-ndr-400g")->gbytes_per_s - 50.0) < 1e-9);
	assert_true(fabs(analyze_link_find("pcie5-x16")->gbytes_per_s -
			 2 * analyze_link_find("pcie4-x16")->gbytes_per_s) < 1e-9);
}

static void test_transfer_same_placement(void **state)
{
	(void)state;
	int32_t p[8] = { 0, 1, 2, 3, 0, 1, 2, 3 }, src[8];
	int64_t send[4] = { 0 }, recv[4] = { 0 };

	assert_int_equal(analyze_transfer_layer(p, p, 4, 4, 2, src, send, recv, NULL), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(src[i], -1);
	for (int r = 0; r < 4; r++)
		assert_true(send[r] == 0 && recv[r] == 0);
	/* reordering slots inside a rank costs nothing */
	int32_t q[8] = { 1, 0, 3, 2, 1, 0, 3, 2 };
	assert_int_equal(analyze_transfer_layer(p, q, 4, 4, 2, src, send, recv, NULL), 0);
}

static void test_transfer_counts(void **state)
{
	(void)state;
	/* r0 gains 2 (held by r1, r3), r2 gains 3 (r1, r3), r3 gains 0 (r0, r2) */
	int32_t from[8] = { 0, 1, 2, 3, 0, 1, 2, 3 };
	int32_t to[8] = { 0, 2, 2, 3, 1, 3, 2, 0 }, src[8];
	int64_t send[4] = { 0 }, recv[4] = { 0 };

	assert_int_equal(analyze_transfer_layer(from, to, 4, 4, 2, src, send, recv, NULL), 3);
	int64_t want_recv[4] = { 1, 0, 1, 1 };
	for (int r = 0; r < 4; r++) {
		assert_int_equal(recv[r], want_recv[r]);
		assert_true(send[r] <= 1); /* three copies from three distinct senders */
	}
	assert_int_equal(send[0] + send[1] + send[2] + send[3], 3);
	/* the senders hold the expert they send */
	assert_true(src[1] == 1 || src[1] == 3);
	assert_true(src[5] == 1 || src[5] == 3);
	assert_true(src[7] == 0 || src[7] == 2);
	assert_int_equal(src[0], -1);
	assert_int_equal(src[4], -1);
}

static void test_transfer_spreads_send_load(void **state)
{
	(void)state;
	/* expert 0 on r0 and r1 must reach r2..r5: two sends each, not four
	 * from the first holder */
	int32_t from[6] = { 0, 0, 1, 1, 1, 1 }, to[6] = { 1, 1, 0, 0, 0, 0 }, src[6];
	int64_t send[6] = { 0 }, recv[6] = { 0 };

	assert_int_equal(analyze_transfer_layer(from, to, 2, 6, 1, src, send, recv, NULL), 6);
	assert_int_equal(send[0], 2);
	assert_int_equal(send[1], 2);
	for (int r = 2; r < 6; r++)
		assert_true(send[r] <= 1);
	/* accumulating a second layer keeps spreading over the same arrays */
	assert_int_equal(analyze_transfer_layer(from, to, 2, 6, 1, src, send, recv, NULL), 6);
	assert_int_equal(send[0], 4);
	assert_int_equal(send[1], 4);
	/* 4 sends of 1 GB at 50 GB/s */
	assert_true(fabs(analyze_transfer_seconds(send, recv, 6, 1000000000ULL, 50.0) - 0.08) <
		    1e-12);
}

static void test_transfer_duplicate_and_missing(void **state)
{
	(void)state;
	struct util_err err = UTIL_ERR_INIT;
	/* a rank that gets expert 2 in both slots needs one copy */
	int32_t from[4] = { 0, 1, 2, 3 }, to[4] = { 2, 2, 0, 1 };
	int64_t send[2] = { 0 }, recv[2] = { 0 };

	assert_int_equal(analyze_transfer_layer(from, to, 4, 2, 2, NULL, send, recv, &err), 3);
	assert_int_equal(recv[0], 1);
	assert_int_equal(recv[1], 2);
	/* an expert no old rank holds cannot be copied */
	int32_t from2[4] = { 0, 1, 2, 2 }, to2[4] = { 3, 1, 2, 0 };
	assert_true(analyze_transfer_layer(from2, to2, 4, 2, 2, NULL, send, recv, &err) < 0);
	assert_non_null(strstr(err.msg, "expert 3"));
	int32_t bad[4] = { 0, 1, 9, 3 };
	assert_true(analyze_transfer_layer(from, bad, 4, 2, 2, NULL, send, recv, &err) < 0);
	assert_non_null(strstr(err.msg, "out of range"));
}

static void test_transfer_token_drop(void **state)
{
	(void)state;
	double load[4] = { 30, 10, 10, 10 }, zero[3] = { 0, 0, 0 };

	/* mean 15: at factor 1.0 rank 0 drops 15 of 60 tokens */
	assert_true(fabs(analyze_token_drop(load, 4, 1.0) - 0.25) < 1e-12);
	assert_true(fabs(analyze_token_drop(load, 4, 1.5) - 7.5 / 60) < 1e-12);
	assert_true(analyze_token_drop(load, 4, 2.0) == 0);
	assert_true(analyze_token_drop(zero, 3, 1.0) == 0);
}

static void test_transfer_window_heat_episodes(void **state)
{
	(void)state;
	char path[] = "/tmp/moetrace-xfer.XXXXXX";
	int fd = mkstemp(path);
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run run = { 0 };
	enum { L = 2, E = 3, N = 7 };
	uint32_t counts[N][L * E];
	struct store_step steps[N];
	double heat[L * E], eps[3 * L * E];
	int64_t n = 0;

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	snprintf(run.name, sizeof(run.name), "w");
	run.layers = L;
	run.experts = E;
	assert_int_equal(store_run_add(s, &run), 0);
	/* step i puts i + 1 tokens on (layer 0, expert 0) and 1 on (layer 1,
	 * expert 2); odd steps are decode */
	for (int i = 0; i < N; i++) {
		memset(counts[i], 0, sizeof(counts[i]));
		counts[i][0] = (uint32_t)(i + 1);
		counts[i][L * E - 1] = 1;
		steps[i] = (struct store_step){ .step = 100 + i, .phase = 1 + i % 2,
						.counts = counts[i] };
	}
	assert_int_equal(store_steps_append(s, &run, steps, N), 0);
	/* 7 steps into 3 episodes: step i goes to floor(3i/7) = 0,0,0,1,1,2,2 */
	assert_int_equal(analyze_window_heat(s, &run, INT64_MIN, INT64_MAX, 0, 3, heat, eps, &n),
			 0);
	assert_int_equal(n, 7);
	assert_true(heat[0] == 28 && heat[L * E - 1] == 7 && heat[1] == 0);
	assert_true(eps[0] == 1 + 2 + 3);
	assert_true(eps[(size_t)L * E] == 4 + 5);
	assert_true(eps[2 * (size_t)L * E] == 6 + 7);
	assert_true(eps[2 * L * E + L * E - 1] == 2);
	/* a range and a phase: steps 101..105, decode = 101, 103, 105 */
	assert_int_equal(analyze_window_heat(s, &run, 101, 105, 1u << STORE_PHASE_DECODE, 0, heat,
					     NULL, &n),
			 0);
	assert_int_equal(n, 3);
	assert_true(heat[0] == 2 + 4 + 6);
	store_free(s);
	unlink(path);
}

/* Stand-in algorithm: the static layout rotated by one rank, so a plan
 * against the static placement has known copies. */
static int rotate(const struct analyze_place_in *in, int32_t *p2l, struct util_err *err)
{
	int P = in->ranks * in->slots;
	(void)err;
	for (int p = 0; p < P; p++)
		p2l[p] = ((p + in->slots) % P) % in->experts;
	return 0;
}

static void test_transfer_plan_run(void **state)
{
	(void)state;
	static const struct analyze_algo rot = { "rotate", "test", rotate,
						 ANALYZE_ALGO_MIGRATION };
	enum { L = 5, E = 6, R = 4, S = 2, P = R * S };
	double heat[L * E];
	int32_t cur[L * P];
	struct analyze_plan one, two;
	struct util_err err = UTIL_ERR_INIT;

	for (int i = 0; i < L * E; i++)
		heat[i] = 1 + i % 7;
	for (int l = 0; l < L; l++)
		analyze_static_phy2log(E, R, S, cur + (size_t)l * P);
	struct analyze_plan_in in = { .algo = &rot, .layers = L, .experts = E, .ranks = R,
				      .slots = S, .max_moves = -1, .heat = heat, .current = cur,
				      .only_layer = -1, .threads = 1 };
	assert_int_equal(analyze_plan_run(&in, &one, &err), 0);
	in.threads = 2;
	assert_int_equal(analyze_plan_run(&in, &two, &err), 0);
	assert_memory_equal(one.phy2log, two.phy2log, sizeof(cur));
	/* static: r0 {0,1} r1 {2,3} r2 {4,5} r3 {0,1}; rotated: r0 {2,3} r1 {4,5}
	 * r2 {0,1} r3 {0,1}: r0, r1, r2 each need two copies, r3 none */
	for (int l = 0; l < L; l++) {
		double load[R];
		assert_int_equal(one.layer[l].moves, 6);
		assert_true(fabs(one.layer[l].max_load -
				 analyze_device_load(heat + (size_t)l * E, E,
						     one.phy2log + (size_t)l * P, R, S, NULL,
						     load)) < 1e-12);
		assert_true(one.layer[l].lower_bound <= one.layer[l].max_load + 1e-9);
		for (int p = 0; p < P; p++) {
			int src = one.src[l * P + p];
			if (p < 6)
				assert_true(src >= 0 && src != p / S);
			else
				assert_int_equal(src, -1);
		}
	}
	assert_int_equal(one.moves, 6 * L);
	int64_t sent = 0;
	for (int r = 0; r < R; r++)
		sent += one.send[r];
	assert_int_equal(sent, 6 * L);
	analyze_plan_release(&one);
	analyze_plan_release(&two);
	/* one layer only: the others keep the current placement and move nothing */
	in.only_layer = 3;
	assert_int_equal(analyze_plan_run(&in, &one, &err), 0);
	assert_int_equal(one.moves, 6);
	assert_memory_equal(one.phy2log, cur, 3 * (size_t)P * sizeof(int32_t));
	analyze_plan_release(&one);
	analyze_plan_release(NULL);
}


/* ---- two tiers ------------------------------------------------------------ */

static void test_transfer_tiers_one_node(void **state)
{
	(void)state;
	/* the copies of test_transfer_counts, all four ranks on one node */
	int32_t from[8] = { 0, 1, 2, 3, 0, 1, 2, 3 };
	int32_t to[8] = { 0, 2, 2, 3, 1, 3, 2, 0 };
	for (int rpn = 0; rpn <= 8; rpn += 4) { /* 0 and >= ranks: one node */
		int64_t send[8] = { 0 }, recv[8] = { 0 }, inter = 0;
		assert_int_equal(analyze_transfer_layer_tiers(from, to, 4, 4, 2, rpn, NULL, send,
							      recv, &inter, NULL),
				 3);
		assert_int_equal(inter, 0);
		for (int r = 4; r < 8; r++)
			assert_true(send[r] == 0 && recv[r] == 0);
		assert_true(analyze_transfer_seconds_tiers(send, recv, 4, 1000, 1e-6, 1e-9, NULL,
							   NULL) ==
			    analyze_transfer_seconds(send, recv, 4, 1000, 1e-6));
	}
}

static void test_transfer_tiers_prefers_own_node(void **state)
{
	(void)state;
	/* 2 nodes of 2 ranks: node 0 = r0 r1, node 1 = r2 r3.  Expert 0 is on
	 * r0 (node 0) and r2 (node 1); r1 needs it: r0 sends inside the node,
	 * though it has sent more than r2.  Expert 1 is only on r1: r3 gets it
	 * across nodes. */
	int32_t from[4] = { 0, 1, 0, 2 }, to[4] = { 0, 0, 0, 1 }, src[4];
	int64_t send[8] = { 0 }, recv[8] = { 0 }, inter = 0;
	double intra_s, inter_s;

	send[0] = 3; /* r0's earlier intra-node sends */
	assert_int_equal(analyze_transfer_layer_tiers(from, to, 3, 4, 1, 2, src, send, recv,
						      &inter, NULL),
			 2);
	assert_int_equal(src[1], 0);
	assert_int_equal(src[3], 1);
	assert_int_equal(src[0], -1);
	assert_int_equal(src[2], -1);
	assert_int_equal(inter, 1);
	assert_int_equal(send[0], 4);    /* intra: r0 */
	assert_int_equal(recv[1], 1);    /* intra: r1 */
	assert_int_equal(send[4 + 1], 1); /* inter: r1 */
	assert_int_equal(recv[4 + 3], 1); /* inter: r3 */
	assert_int_equal(send[2] + send[4 + 2], 0);
	/* priced per tier: r0's 4 intra sends of 1 GB at 400 GB/s, r1's one
	 * inter send at 50 GB/s; the tiers run at once */
	double t = analyze_transfer_seconds_tiers(send, recv, 4, 1000000000ULL, 400, 50, &intra_s,
						  &inter_s);
	assert_true(fabs(intra_s - 0.01) < 1e-12);
	assert_true(fabs(inter_s - 0.02) < 1e-12);
	assert_true(fabs(t - 0.02) < 1e-12);
}

static void test_transfer_tiers_parallel_ranks(void **state)
{
	(void)state;
	/* r0 and r1 (node 0) each send one expert to node 1 at the same time:
	 * the event takes one copy's time, not two */
	int32_t from[4] = { 0, 1, 2, 3 }, to[4] = { 0, 1, 0, 1 };
	int64_t send[8] = { 0 }, recv[8] = { 0 }, inter = 0;
	double inter_s;

	assert_int_equal(analyze_transfer_layer_tiers(from, to, 4, 4, 1, 2, NULL, send, recv,
						      &inter, NULL),
			 2);
	assert_int_equal(inter, 2);
	assert_true(send[4] == 1 && send[5] == 1 && recv[6] == 1 && recv[7] == 1);
	double t = analyze_transfer_seconds_tiers(send, recv, 4, 1000000000ULL, 450, 50, NULL,
						  &inter_s);
	assert_true(fabs(t - 0.02) < 1e-12); /* 1 GB at 50 GB/s */
	assert_true(fabs(inter_s - 0.02) < 1e-12);
}

static struct store_run v3_run(int layers)
{
	struct store_run run = { 0 };
	const struct store_model *m = store_model_find("deepseek-v3");

	snprintf(run.model, sizeof(run.model), "deepseek-v3");
	run.layers = layers;
	run.experts = m->experts;
	run.topk = m->topk;
	run.ranks = m->ranks;
	run.slots = m->slots;
	run.ranks_per_node = m->ranks_per_node;
	return run;
}

static void test_transfer_deploy_quant(void **state)
{
	(void)state;
	const struct store_model *m = store_model_find("deepseek-v3");
	struct store_run run = v3_run(58);
	struct analyze_deploy_opts o = ANALYZE_DEPLOY_OPTS_INIT;
	struct analyze_deploy fp8, bf16;
	struct util_err err = UTIL_ERR_INIT;

	/* DeepSeek-V3 is served in fp8: the preset's precision by default */
	assert_string_equal(m->quant, "fp8");
	assert_int_equal(analyze_deploy_resolve(&run, m, 64, &o, &fp8, &err), 0);
	assert_int_equal(fp8.quant, ANALYZE_QUANT_FP8);
	assert_int_equal(fp8.ranks_per_node, 8);
	assert_string_equal(fp8.link_intra, "nvlink4");
	assert_string_equal(fp8.link_inter, "ib-ndr-400g");
	o.quant = ANALYZE_QUANT_BF16;
	assert_int_equal(analyze_deploy_resolve(&run, m, 64, &o, &bf16, &err), 0);
	/* fp8 halves the bytes, plus one fp32 scale per 128 x 128 block (0.02%) */
	double half = (double)bf16.expert_bytes / 2;
	assert_true(fp8.expert_bytes > half && fp8.expert_bytes < half * 1.001);
	/* ... and the HBM redundant experts take: 64 ranks x 5 slots - 256
	 * experts = one per rank per layer, 58 layers */
	assert_true(fabs(analyze_redundant_gib(&bf16, 5) -
			 58.0 * bf16.expert_bytes / 1073741824.0) < 1e-9);
	assert_true(fabs(analyze_redundant_gib(&fp8, 5) * 2 - analyze_redundant_gib(&bf16, 5)) <
		    0.001 * analyze_redundant_gib(&bf16, 5));
	/* gpt-oss is served in MXFP4: half a byte a weight, a scale byte per 32 */
	assert_string_equal(store_model_find("gpt-oss-120b")->quant, "mxfp4");
	assert_int_equal(analyze_expert_bytes(2880, 2880, ANALYZE_QUANT_MXFP4),
			 3ULL * 2880 * 2880 / 2 + 3ULL * 2880 * 90);
	/* every preset names a precision moetrace knows and its active parameters */
	const struct store_model *p;
	for (size_t i = 0; (p = store_model_at(i)); i++) {
		assert_true(analyze_quant_parse(p->quant) >= 0);
		assert_true(p->active_params > (double)p->layers * p->topk * 3 * p->hidden * p->inter);
	}
}

static void test_transfer_deploy_bad_input(void **state)
{
	(void)state;
	const struct store_model *m = store_model_find("deepseek-v3");
	struct store_run run = v3_run(58);
	struct analyze_deploy_opts o = ANALYZE_DEPLOY_OPTS_INIT;
	struct analyze_deploy d;
	struct util_err err = UTIL_ERR_INIT;
	const char *h;

	o.ranks_per_node = 3;
	assert_int_equal(analyze_deploy_resolve(&run, m, 64, &o, &d, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "--ranks-per-node 3 does not divide 64 ranks"));
	/* the run's 8 per node do not divide 12 ranks: say where 8 came from */
	o.ranks_per_node = 0;
	assert_int_equal(analyze_deploy_resolve(&run, m, 12, &o, &d, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "give --ranks-per-node"));
	/* fewer ranks than a node holds: one node */
	assert_int_equal(analyze_deploy_resolve(&run, m, 4, &o, &d, &err), 0);
	assert_int_equal(d.ranks_per_node, 4);
	o.hardware = "tpu-v9";
	assert_int_equal(analyze_deploy_resolve(&run, m, 64, &o, &d, &err), UTIL_EUSAGE);
	for (size_t i = 0; (h = analyze_hw_at(i) ? analyze_hw_at(i)->name : NULL); i++)
		assert_non_null(strstr(err.msg, h));
	o.hardware = NULL;
	o.link_inter = "smoke";
	assert_int_equal(analyze_deploy_resolve(&run, m, 64, &o, &d, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "--link-inter: unknown link 'smoke'"));
	assert_non_null(strstr(err.msg, "ib-hdr-200g"));
	assert_non_null(strstr(err.msg, "roce-400g"));
	assert_int_equal(analyze_opt_step_ms("0", &o.step_ms, &err), UTIL_EUSAGE);
	assert_int_equal(analyze_opt_step_ms("-3", &o.step_ms, &err), UTIL_EUSAGE);
	assert_int_equal(analyze_opt_step_ms("12.5", &o.step_ms, &err), 0);
	assert_true(o.step_ms == 12.5);
	/* every hardware preset has its figures, links that exist and a source */
	for (size_t i = 0; analyze_hw_at(i); i++) {
		const struct analyze_hw *w = analyze_hw_at(i);
		assert_true(w->tflops16 > 0 && w->tflops8 >= w->tflops16 && w->hbm_tbytes_per_s > 0);
		assert_non_null(analyze_link_find(w->link_intra));
		assert_non_null(analyze_link_find(w->link_inter));
		assert_true(strlen(w->source) > 20);
	}
}

static void test_transfer_step_time_floor(void **state)
{
	(void)state;
	const struct store_model *m = store_model_find("deepseek-v3");
	struct store_run run = v3_run(1);
	struct analyze_deploy_opts o = ANALYZE_DEPLOY_OPTS_INIT;
	struct analyze_deploy d;
	struct util_err err = UTIL_ERR_INIT;
	enum { E = 256, R = 64, S = 4 };
	int32_t p2l[R * S];
	int cnt[E];
	uint32_t heat[E];

	run.ranks = R;
	run.slots = S;
	assert_int_equal(analyze_deploy_resolve(&run, m, R, &o, &d, &err), 0);
	/* H100 at fp8: 1979 TFLOPS, 3.35 TB/s */
	assert_true(fabs(d.sec_per_token - 6.0 * 7168 * 2048 / 1979e12) < 1e-18);
	assert_true(fabs(d.sec_per_expert - (double)d.expert_bytes / 3.35e12) < 1e-15);
	analyze_static_phy2log(E, R, S, p2l);
	analyze_replicas(p2l, R * S, E, cnt);
	/* one token per expert: reading 4 experts' weights takes far longer
	 * than their 4 tokens' FLOPs; the floor sets the time */
	for (int e = 0; e < E; e++)
		heat[e] = 1;
	double t = analyze_layer_seconds(&d, heat, p2l, S, cnt);
	assert_true(fabs(t - 4 * d.sec_per_expert) < 1e-15);
	assert_true(4 * d.sec_per_token < t / 100);
	/* an expert without tokens is not read: one hot expert on rank 0 */
	memset(heat, 0, sizeof(heat));
	heat[0] = 1;
	assert_true(fabs(analyze_layer_seconds(&d, heat, p2l, S, cnt) - d.sec_per_expert) < 1e-15);
	/* a million tokens on it: compute-bound, linear in tokens */
	heat[0] = 1000000;
	assert_true(fabs(analyze_layer_seconds(&d, heat, p2l, S, cnt) - 1e6 * d.sec_per_token) <
		    1e-12);
	/* attention/other: the non-routed active parameters (37 B - 20.4 B),
	 * read once per step, or their FLOPs when the batch is large */
	double dense = 37e9 - 58.0 * 8 * 3 * 7168 * 2048;
	assert_true(fabs(analyze_dense_seconds(&d, 1) - dense * d.expert_bytes /
							       (3.0 * 7168 * 2048) / 3.35e12) < 1e-12);
	assert_true(fabs(analyze_dense_seconds(&d, 64e6) - 1e6 * 2 * dense / 1979e12) < 1e-9);
	/* a measured step time is kept as given */
	o.step_ms = 20;
	assert_int_equal(analyze_deploy_resolve(&run, m, R, &o, &d, &err), 0);
	assert_true(d.step_seconds == 0.020);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transfer_expert_bytes),
		cmocka_unit_test(test_transfer_quant_names),
		cmocka_unit_test(test_transfer_links),
		cmocka_unit_test(test_transfer_same_placement),
		cmocka_unit_test(test_transfer_counts),
		cmocka_unit_test(test_transfer_spreads_send_load),
		cmocka_unit_test(test_transfer_duplicate_and_missing),
		cmocka_unit_test(test_transfer_token_drop),
		cmocka_unit_test(test_transfer_window_heat_episodes),
		cmocka_unit_test(test_transfer_plan_run),
		cmocka_unit_test(test_transfer_tiers_one_node),
		cmocka_unit_test(test_transfer_tiers_prefers_own_node),
		cmocka_unit_test(test_transfer_tiers_parallel_ranks),
		cmocka_unit_test(test_transfer_deploy_quant),
		cmocka_unit_test(test_transfer_deploy_bad_input),
		cmocka_unit_test(test_transfer_step_time_floor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

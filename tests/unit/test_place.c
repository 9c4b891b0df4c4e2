/* test_place.c: the placement algorithms, the lower bound and rank matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "analyze/analyze.h"
#include "util/util.h"

static double max_load(const double *heat, int E, const int32_t *p, int R, int S)
{
	double *load = malloc((size_t)R * sizeof(double));
	double mx = analyze_device_load(heat, E, p, R, S, NULL, load);
	free(load);
	return mx;
}

static int run_algo(const char *name, const struct analyze_place_in *in, int32_t *p)
{
	const struct analyze_algo *a = analyze_algo_find(name);
	struct util_err err = UTIL_ERR_INIT;
	int rc;

	assert_non_null(a);
	rc = analyze_place(a, in, p, &err);
	if (rc)
		fprintf(stderr, "%s: %s\n", name, err.msg);
	return rc;
}

/* The example of the deepseek-ai/EPLB README, with its printed phy2log. */
static void test_place_eplb_readme(void **state)
{
	(void)state;
	static const double w[2][12] = {
		{ 90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86 },
		{ 20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27 },
	};
	static const int32_t want[2][16] = {
		{ 5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1 },
		{ 7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1 },
	};
	for (int l = 0; l < 2; l++) {
		struct analyze_place_in in = { .experts = 12, .ranks = 8, .slots = 2, .nodes = 2,
					       .groups = 4, .heat = w[l], .max_moves = -1 };
		int32_t p[16];
		assert_int_equal(run_algo("eplb-hier", &in, p), 0);
		assert_memory_equal(p, want[l], sizeof(p));
	}
}

static const double flash_heat[8] = { 600, 560, 120, 120, 20, 10, 10, 10 };

/* The FlashLB example (8 experts, 8 ranks x 2 slots): eplb's published 232. */
static void test_place_flashlb_example_eplb(void **state)
{
	(void)state;
	struct analyze_place_in in = { .experts = 8, .ranks = 8, .slots = 2, .heat = flash_heat,
				       .max_moves = -1 };
	int32_t p[16];
	assert_int_equal(run_algo("eplb", &in, p), 0);
	assert_true(fabs(max_load(flash_heat, 8, p, 8, 2) - 232) < 1e-9);
}

/* Zipf-like heat with a random expert order, some zeros allowed. */
static void random_heat(struct util_rng *rng, double *w, int E, int zeros)
{
	for (int e = 0; e < E; e++) {
		double v = floor(1000.0 / (1 + e) * (0.5 + util_rng_uniform(rng)));
		w[e] = zeros && util_rng_below(rng, 8) == 0 ? 0 : v;
	}
	for (int e = E - 1; e > 0; e--) {
		int j = (int)util_rng_below(rng, (uint32_t)e + 1);
		double t = w[e];
		w[e] = w[j];
		w[j] = t;
	}
}

/* The FlashLB example: flashlb 200 (its current public code), keel and
 * exact the optimum 590/3 = 196.67 (found by exhaustive search in the
 * example's own description). */
static void test_place_flashlb_example(void **state)
{
	(void)state;
	struct analyze_place_in in = { .experts = 8, .ranks = 8, .slots = 2, .heat = flash_heat,
				       .max_moves = -1 };
	int32_t p[16];
	assert_int_equal(run_algo("flashlb", &in, p), 0);
	assert_true(fabs(max_load(flash_heat, 8, p, 8, 2) - 200) < 1e-9);
	assert_int_equal(run_algo("exact", &in, p), 0);
	assert_true(fabs(max_load(flash_heat, 8, p, 8, 2) - 590.0 / 3) < 1e-9);
	assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
	assert_true(fabs(max_load(flash_heat, 8, p, 8, 2) - 590.0 / 3) < 1e-9);
	assert_int_equal(analyze_placement_check(p, 8, 8, 2, 1, NULL), 0);
	assert_true(analyze_lower_bound(flash_heat, 8, 8, 2) <= 590.0 / 3 + 1e-9);
}

/* Every algorithm on random shapes: a valid placement (every expert
 * placed, no expert twice on a rank unless the algorithm may), never
 * below the lower bound. */
static void test_place_validity(void **state)
{
	(void)state;
	struct util_rng rng;
	double w[64], ep[20 * 64], load[64];
	int32_t p[512];

	util_rng_seed(&rng, 7);
	for (int iter = 0; iter < 60; iter++) {
		int E = 2 + (int)util_rng_below(&rng, 40);
		int R = 1 + (int)util_rng_below(&rng, 12);
		int S = (E + R - 1) / R + (int)util_rng_below(&rng, 3);
		if (S > E)
			S = E;
		if (R * S < E)
			continue;
		random_heat(&rng, w, E, iter % 3 == 0);
		/* up to 20 episodes: more episodes than ranks is common */
		int T = 1 + iter % 20;
		for (int t = 0; t < T; t++)
			for (int e = 0; e < E; e++)
				ep[t * E + e] = floor(w[e] / T * (0.5 + util_rng_uniform(&rng)));
		double lb = analyze_lower_bound(w, E, R, S);
		for (size_t i = 0; analyze_algo_at(i); i++) {
			const struct analyze_algo *a = analyze_algo_at(i);
			struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S,
						       .heat = w, .max_moves = -1 };
			if (iter % 2)
				in.episodes = ep, in.n_episodes = T;
			if (!strcmp(a->name, "eplb-hier"))
				in.nodes = R % 2 == 0 ? 2 : 1, in.groups = E % 2 == 0 ? 2 : 1;
			struct util_err err = UTIL_ERR_INIT;
			int rc = analyze_place(a, &in, p, &err);
			if ((a->flags & ANALYZE_ALGO_SMALL_ONLY) && rc == UTIL_EUSAGE)
				continue;
			if (rc)
				fail_msg("%s E=%d R=%d S=%d: %s", a->name, E, R, S, err.msg);
			int no_dup = !(a->flags & ANALYZE_ALGO_DUP_OK);
			if (analyze_placement_check(p, E, R, S, no_dup, &err))
				fail_msg("%s E=%d R=%d S=%d: %s", a->name, E, R, S, err.msg);
			double mx = analyze_device_load(w, E, p, R, S, NULL, load);
			if (mx < lb - 1e-9 * (1 + lb))
				fail_msg("%s E=%d R=%d S=%d: max %g below the bound %g", a->name, E, R,
					 S, mx, lb);
		}
	}
}

/* Brute force: every assignment of experts to slots. */
static double brute_force(const double *w, int E, int R, int S)
{
	int P = R * S, idx[16] = { 0 }, cnt[16];
	double best = INFINITY, load[16];

	for (;;) {
		int ok = 1;
		memset(cnt, 0, sizeof(cnt));
		for (int q = 0; q < P; q++)
			cnt[idx[q]]++;
		for (int e = 0; e < E && ok; e++)
			ok = cnt[e] > 0;
		for (int r = 0; r < R && ok; r++)
			for (int a = 0; a < S && ok; a++)
				for (int b = a + 1; b < S && ok; b++)
					ok = idx[r * S + a] != idx[r * S + b];
		if (ok) {
			double mx = 0;
			for (int r = 0; r < R; r++) {
				load[r] = 0;
				for (int k = 0; k < S; k++)
					load[r] += w[idx[r * S + k]] / cnt[idx[r * S + k]];
				if (load[r] > mx)
					mx = load[r];
			}
			if (mx < best)
				best = mx;
		}
		int q = 0;
		while (q < P && ++idx[q] == E)
			idx[q++] = 0;
		if (q == P)
			break;
	}
	return best;
}

/* exact equals brute force, and the flagship reaches it, on small cases. */
static void test_place_exact_brute_force(void **state)
{
	(void)state;
	struct util_rng rng;
	double w[8];
	int32_t p[16];

	util_rng_seed(&rng, 11);
	for (int iter = 0; iter < 25; iter++) {
		int E = 2 + (int)util_rng_below(&rng, 4); /* 2..5 */
		int R = 1 + (int)util_rng_below(&rng, 3); /* 1..3 */
		int S = (E + R - 1) / R + (int)util_rng_below(&rng, 2);
		if (S > E)
			S = E;
		if (R * S > 8)
			continue;
		random_heat(&rng, w, E, 0);
		double bf = brute_force(w, E, R, S);
		struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S, .heat = w,
					       .max_moves = -1 };
		assert_int_equal(run_algo("exact", &in, p), 0);
		double ex = max_load(w, E, p, R, S);
		if (fabs(ex - bf) > 1e-9 * (1 + bf))
			fail_msg("E=%d R=%d S=%d: exact %g, brute force %g", E, R, S, ex, bf);
		assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
		double kl = max_load(w, E, p, R, S);
		if (fabs(kl - bf) > 1e-9 * (1 + bf))
			fail_msg("E=%d R=%d S=%d: flagship %g, optimum %g", E, R, S, kl, bf);
	}
}

/* The flagship against exact on bigger small cases (exact's own range),
 * and never worse than flashlb. */
static void test_place_flagship_vs_exact(void **state)
{
	(void)state;
	struct util_rng rng;
	double w[16];
	int32_t p[32];

	util_rng_seed(&rng, 5);
	for (int iter = 0; iter < 12; iter++) {
		int E = 4 + (int)util_rng_below(&rng, 5); /* 4..8 */
		int R = 2 + (int)util_rng_below(&rng, 4); /* 2..5 */
		int S = (E + R - 1) / R + 1;
		if (R * S > 16)
			continue;
		random_heat(&rng, w, E, 0);
		struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S, .heat = w,
					       .max_moves = -1 };
		assert_int_equal(run_algo("exact", &in, p), 0);
		double ex = max_load(w, E, p, R, S);
		assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
		double kl = max_load(w, E, p, R, S);
		if (fabs(kl - ex) > 1e-9 * (1 + ex))
			fail_msg("E=%d R=%d S=%d: flagship %g, exact %g", E, R, S, kl, ex);
		assert_int_equal(run_algo("flashlb", &in, p), 0);
		assert_true(kl <= max_load(w, E, p, R, S) + 1e-9 * (1 + kl));
		assert_true(ex >= analyze_lower_bound(w, E, R, S) - 1e-9 * (1 + ex));
	}
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Rank matching: the same loads (as a multiset over ranks), no more moves
 * than unmatched, and none at all when the current placement is the
 * algorithm's own result with ranks and slots shuffled. */
static void test_place_match(void **state)
{
	(void)state;
	enum { E = 32, R = 8, S = 5, P = R * S };
	static const char *const names[] = { "eplb", "flashlb" };
	struct util_rng rng;
	double w[E], l0[R], l1[R];
	int32_t cur[P], p0[P], p1[P], shuf[P];

	util_rng_seed(&rng, 3);
	for (int iter = 0; iter < 4; iter++) {
		random_heat(&rng, w, E, 0);
		analyze_static_phy2log(E, R, S, cur);
		for (size_t n = 0; n < UTIL_ARRAY_SIZE(names); n++) {
			struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S,
						       .heat = w, .max_moves = -1 };
			assert_int_equal(run_algo(names[n], &in, p0), 0);
			in.current = cur;
			assert_int_equal(run_algo(names[n], &in, p1), 0);
			analyze_device_load(w, E, p0, R, S, NULL, l0);
			analyze_device_load(w, E, p1, R, S, NULL, l1);
			qsort(l0, R, sizeof(double), cmp_dbl);
			qsort(l1, R, sizeof(double), cmp_dbl);
			for (int r = 0; r < R; r++)
				assert_true(fabs(l0[r] - l1[r]) <= 1e-9 * (1 + l0[r]));
			int m0 = analyze_place_moves(cur, p0, E, R, S);
			int m1 = analyze_place_moves(cur, p1, E, R, S);
			assert_true(m1 <= m0);
			/* current = p0 with ranks rotated and slots reversed */
			for (int r = 0; r < R; r++)
				for (int k = 0; k < S; k++)
					shuf[((r + 3) % R) * S + (S - 1 - k)] = p0[r * S + k];
			in.current = shuf;
			assert_int_equal(run_algo(names[n], &in, p1), 0);
			assert_int_equal(analyze_place_moves(shuf, p1, E, R, S), 0);
			assert_memory_equal(shuf, p1, sizeof(p1));
		}
	}
}

/* The matching keeps the most experts on their ranks, each expert once: a
 * rank fills a second slot of an expert it holds from its own memory, so
 * only an expert new to a rank is a copy.  Old {1,1,1,3},{0,0,1,2} to new
 * {0,0,2,3},{0,1,1,2}: counting the slots kept, the new ranks would swap
 * (5 slots kept, 3 copies: 0 and 2 to rank 0, 3 to rank 1); counting the
 * experts kept they stay (4 slots kept, 2 copies: 0 and 2 to rank 0). */
static void test_place_match_copies(void **state)
{
	(void)state;
	enum { E = 4, R = 2, S = 4, P = R * S };
	static const int32_t cur[P] = { 1, 1, 1, 3, 0, 0, 1, 2 };
	int32_t p[P] = { 0, 0, 2, 3, 0, 1, 1, 2 };
	int have[R][E] = { { 0 } }, copies = 0;

	assert_int_equal(analyze_place_match(cur, p, E, R, S, 0), 0);
	for (int r = 0; r < R; r++)
		for (int k = 0; k < S; k++)
			have[r][cur[r * S + k]] = 1;
	for (int r = 0; r < R; r++)
		for (int k = 0; k < S; k++) {
			int e = p[r * S + k];
			copies += !have[r][e];
			have[r][e] = 1;
		}
	assert_int_equal(copies, 2);
	/* the slots rank 1 keeps stay where they were */
	assert_int_equal(p[4 + 2], 1);
	assert_int_equal(p[4 + 3], 2);
}

/* Move budgets: swift and the flagship stay within max_moves and do not
 * make the current placement worse; without a budget the flagship keeps
 * its balance (within 0.5%) and moves no more than its unmatched result. */
static void test_place_move_budget(void **state)
{
	(void)state;
	enum { E = 64, R = 8, S = 10, P = R * S };
	static const char *const names[] = { "swift", ANALYZE_FLAGSHIP };
	struct util_rng rng;
	double w[E];
	int32_t cur[P], p[P], free_p[P];

	util_rng_seed(&rng, 9);
	for (int iter = 0; iter < 3; iter++) {
		random_heat(&rng, w, E, 0);
		analyze_static_phy2log(E, R, S, cur);
		double base = max_load(w, E, cur, R, S);
		for (size_t n = 0; n < UTIL_ARRAY_SIZE(names); n++) {
			for (int budget = 2; budget <= 12; budget += 5) {
				struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S,
							       .heat = w, .current = cur,
							       .max_moves = budget };
				assert_int_equal(run_algo(names[n], &in, p), 0);
				assert_int_equal(analyze_placement_check(p, E, R, S, 1, NULL), 0);
				int m = analyze_place_moves(cur, p, E, R, S);
				if (m > budget)
					fail_msg("%s: %d moves over a budget of %d", names[n], m,
						 budget);
				assert_true(max_load(w, E, p, R, S) <= base + 1e-9 * base);
			}
		}
		/* the flagship with no budget: within its documented tolerance
		 * (0.5%) of the max without a current, for fewer moves */
		struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S, .heat = w,
					       .max_moves = -1 };
		assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, free_p), 0);
		in.current = cur;
		assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
		double a = max_load(w, E, free_p, R, S), b = max_load(w, E, p, R, S);
		assert_true(b <= a * 1.005 + 1e-9 * a);
		assert_true(b < base);
		assert_true(analyze_place_moves(cur, p, E, R, S) <=
			    analyze_place_moves(cur, free_p, E, R, S));
	}
}

/* The DeepSeek-V3-shaped window of the shared data (58 x 256, 16
 * episodes): the budgets of DESIGN.md for the flagship's fit, and the
 * flagship against flashlb (summed heat and, on a few layers, episodes). */
static void test_place_zipf_window(void **state)
{
	(void)state;
	const char *shared = getenv("MOETRACE_SHARED");
	char path[1024];
	json_object *root, *heat, *eps;

	snprintf(path, sizeof(path), "%s/data/examples/zipf-dsv3-window.json",
		 shared ? shared : "../shared");
	root = json_object_from_file(path);
	if (!root) {
		fprintf(stderr, "no %s\n", path);
		skip();
	}
	assert_true(json_object_object_get_ex(root, "heat", &heat));
	assert_true(json_object_object_get_ex(root, "episodes", &eps));
	int L = (int)json_object_array_length(heat), T = (int)json_object_array_length(eps);
	enum { E = 256 };
	double *w = malloc(sizeof(double) * L * E), *ep = malloc(sizeof(double) * L * T * E);
	double load[64];
	int32_t p[320];
	for (int l = 0; l < L; l++)
		for (int e = 0; e < E; e++) {
			json_object *row = json_object_array_get_idx(heat, l);
			w[l * E + e] = json_object_get_double(json_object_array_get_idx(row, e));
			for (int t = 0; t < T; t++) {
				json_object *er = json_object_array_get_idx(
					json_object_array_get_idx(eps, t), l);
				ep[((size_t)l * T + t) * E + e] =
					json_object_get_double(json_object_array_get_idx(er, e));
			}
		}
	json_object_put(root);
	/* DeepSeek's code on this file needs 18,216 copies from the static
	 * layout at 64 x 5 (the file's reference_results; the vLLM port, which
	 * orders ties differently, 18,210): ties included, ours must agree */
	{
		int32_t st[320];
		long moves = 0;
		analyze_static_phy2log(E, 64, 5, st);
		for (int l = 0; l < L; l++) {
			struct analyze_place_in in = { .experts = E, .ranks = 64, .slots = 5,
						       .heat = w + (size_t)l * E, .max_moves = -1 };
			assert_int_equal(run_algo("eplb", &in, p), 0);
			moves += analyze_place_moves(st, p, E, 64, 5);
		}
		assert_int_equal(moves, 18216);
	}
	static const int shapes[2][2] = { { 64, 5 }, { 32, 9 } };
	static const double budget[2] = { 1.003, 1.0005 };
	for (int sh = 0; sh < 2; sh++) {
		int R = shapes[sh][0], S = shapes[sh][1];
		double smax = 0, smean = 0;
		for (int l = 0; l < L; l++) {
			struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S,
						       .heat = w + (size_t)l * E, .max_moves = -1 };
			assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
			assert_int_equal(analyze_placement_check(p, E, R, S, 1, NULL), 0);
			double mx = analyze_device_load(w + (size_t)l * E, E, p, R, S, NULL, load);
			double tot = 0;
			for (int e = 0; e < E; e++)
				tot += w[l * E + e];
			smax += mx;
			smean += tot / R;
			if (l < 8) {
				assert_int_equal(run_algo("flashlb", &in, p), 0);
				double f = analyze_device_load(w + (size_t)l * E, E, p, R, S, NULL,
							       load);
				assert_true(mx <= f + 1e-9 * f);
			}
		}
		if (smax / smean > budget[sh])
			fail_msg("%dx%d: fitted peak/avg %.5f over %.4f", R, S, smax / smean,
				 budget[sh]);
	}
	/* episodes, 64 x 5, first layers: mean per-episode max/mean */
	double kq = 0, fq = 0;
	for (int l = 0; l < 3; l++) {
		struct analyze_place_in in = { .experts = E, .ranks = 64, .slots = 5,
					       .heat = w + (size_t)l * E,
					       .episodes = ep + (size_t)l * T * E,
					       .n_episodes = T, .max_moves = -1 };
		for (int a = 0; a < 2; a++) {
			assert_int_equal(run_algo(a ? "flashlb" : ANALYZE_FLAGSHIP, &in, p), 0);
			for (int t = 0; t < T; t++) {
				analyze_device_load(ep + ((size_t)l * T + t) * E, E, p, 64, 5, NULL,
						    load);
				*(a ? &fq : &kq) += analyze_imbalance(load, 64);
			}
		}
	}
	if (kq > fq)
		fail_msg("per-episode: flagship %.4f, flashlb %.4f", kq / (3 * T), fq / (3 * T));
	free(w);
	free(ep);
}

/* A current placement with two replicas of an expert on one rank (eplb's
 * answer to the FlashLB example puts both copies of expert 1 on rank 7):
 * the flagship removes the duplicate, with a budget of one move, and so
 * does swift. */
static void test_place_flagship_dedup(void **state)
{
	(void)state;
	struct analyze_place_in in = { .experts = 8, .ranks = 8, .slots = 2, .heat = flash_heat,
				       .max_moves = -1 };
	int32_t cur[16], p[16];

	assert_int_equal(run_algo("eplb", &in, cur), 0);
	assert_int_not_equal(analyze_placement_check(cur, 8, 8, 2, 1, NULL), 0);
	in.current = cur;
	in.max_moves = 1;
	assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
	assert_int_equal(analyze_placement_check(p, 8, 8, 2, 1, NULL), 0);
	assert_true(analyze_place_moves(cur, p, 8, 8, 2) <= 1);
	in.max_moves = -1;
	assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
	assert_int_equal(analyze_placement_check(p, 8, 8, 2, 1, NULL), 0);
	assert_true(fabs(max_load(flash_heat, 8, p, 8, 2) - 590.0 / 3) < 1e-9);
	/* swift re-plans such a layer too, with or without a budget */
	for (int budget = -1; budget <= 2; budget += 3) {
		in.max_moves = budget;
		assert_int_equal(run_algo("swift", &in, p), 0);
		assert_int_equal(analyze_placement_check(p, 8, 8, 2, 1, NULL), 0);
	}
}

/* With a current placement the flagship keeps what is good enough: where
 * the current placement is its own answer, nothing moves; on slightly
 * perturbed heat it moves far fewer replicas than a re-plan matched to the
 * current placement, and its max load stays within the documented
 * tolerance (0.5%) of that re-plan's. */
static void test_place_flagship_keeps(void **state)
{
	(void)state;
	enum { E = 64, R = 16, S = 5, P = R * S };
	struct util_rng rng;
	double w[E], w2[E];
	int32_t cur[P], p[P], re[P];
	int total_keel = 0, total_re = 0;

	util_rng_seed(&rng, 17);
	for (int iter = 0; iter < 4; iter++) {
		random_heat(&rng, w, E, 0);
		struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S, .heat = w,
					       .max_moves = -1,
					       .move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE };
		assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, cur), 0);
		/* current = keel's own answer on the same heat: zero moves */
		in.current = cur;
		assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
		assert_int_equal(analyze_place_moves(cur, p, E, R, S), 0);
		/* heat perturbed by up to +-3% */
		for (int e = 0; e < E; e++)
			w2[e] = w[e] * (0.97 + 0.06 * util_rng_uniform(&rng));
		in.heat = w2;
		in.current = NULL;
		assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, re), 0);
		assert_int_equal(analyze_place_match(cur, re, E, R, S, 0), 0);
		in.current = cur;
		assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
		assert_int_equal(analyze_placement_check(p, E, R, S, 1, NULL), 0);
		int mk = analyze_place_moves(cur, p, E, R, S);
		int mr = analyze_place_moves(cur, re, E, R, S);
		double lk = max_load(w2, E, p, R, S), lr = max_load(w2, E, re, R, S);
		if (lk > lr * 1.005 + 1e-9)
			fail_msg("max load %.3f over 0.5%% above the re-plan's %.3f", lk, lr);
		if (mk > mr)
			fail_msg("%d moves, the re-plan %d", mk, mr);
		total_keel += mk;
		total_re += mr;
	}
	/* far fewer: at most a quarter of the re-plan's moves overall */
	if (4 * total_keel > total_re)
		fail_msg("%d moves against %d for the re-plan", total_keel, total_re);
}

/* A placement in force far behind the re-plan by its max load (one hot
 * expert on the static layout, 1.5 times the re-plan's max and more) is
 * mended with a few moves when they bring it within the move tolerance:
 * without episodes the search from it always runs (KEEL_CURRENT_FAR holds
 * only for the episode figure, where a few moves cannot close such a
 * gap). */
static void test_place_flagship_far_mended(void **state)
{
	(void)state;
	enum { E = 64, R = 16, S = 5, P = R * S };
	double w[E];
	int32_t cur[P], p[P], re[P];

	for (int e = 0; e < E; e++)
		w[e] = 100;
	w[5] = 1500; /* rank 1's load: three times the mean */
	analyze_static_phy2log(E, R, S, cur);
	struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S, .heat = w,
				       .max_moves = -1, .move_tolerance = 0.005 };
	assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, re), 0);
	assert_int_equal(analyze_place_match(cur, re, E, R, S, 0), 0);
	double lr = max_load(w, E, re, R, S);
	assert_true(max_load(w, E, cur, R, S) >= 1.5 * lr);
	in.current = cur;
	assert_int_equal(run_algo(ANALYZE_FLAGSHIP, &in, p), 0);
	assert_int_equal(analyze_placement_check(p, E, R, S, 1, NULL), 0);
	int mk = analyze_place_moves(cur, p, E, R, S), mr = analyze_place_moves(cur, re, E, R, S);
	double lk = max_load(w, E, p, R, S);
	if (lk > lr * 1.005 + 1e-9)
		fail_msg("max load %.3f over 0.5%% above the re-plan's %.3f", lk, lr);
	/* two more replicas of the hot expert, from other experts' second
	 * ones, and one move to spread them (3); the re-plan, its moves
	 * undone where they do not pay, keeps 23 of its 62 */
	if (mk > 4)
		fail_msg("%d moves (the re-plan %d): the search from the placement in force "
			 "did not run",
			 mk, mr);
}

/* Bad shapes and inputs are refused with UTIL_EUSAGE. */
static void test_place_bad_input(void **state)
{
	(void)state;
	double w[300];
	int32_t p[400];
	struct util_err err = UTIL_ERR_INIT;

	for (int e = 0; e < 300; e++)
		w[e] = e;
	struct analyze_place_in in = { .experts = 300, .ranks = 8, .slots = 30, .heat = w,
				       .max_moves = -1 };
	/* 240 slots cannot hold 300 experts */
	assert_int_equal(analyze_place(analyze_algo_find("keel"), &in, p, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "cannot hold"));
	/* exact refuses big instances */
	in.experts = 64;
	in.slots = 10;
	assert_int_equal(analyze_place(analyze_algo_find("exact"), &in, p, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "exact"));
	/* negative heat */
	in.experts = 8;
	in.ranks = 4;
	in.slots = 2;
	w[3] = -1;
	assert_int_equal(analyze_place(analyze_algo_find("eplb"), &in, p, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "negative"));
	/* more slots per rank than experts: only duplicates could fill them */
	w[3] = 3;
	in.experts = 3;
	in.ranks = 2;
	in.slots = 4;
	assert_int_equal(analyze_place(analyze_algo_find(ANALYZE_FLAGSHIP), &in, p, &err),
			 UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "twice"));
	assert_int_equal(analyze_place(analyze_algo_find("eplb"), &in, p, &err), 0);
	/* negative episode heat */
	double ep[2 * 3] = { 1, 2, 3, 4, -5, 6 };
	in.slots = 2;
	in.episodes = ep;
	in.n_episodes = 2;
	assert_int_equal(analyze_place(analyze_algo_find("flashlb"), &in, p, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "episode 1"));
	/* blocks closer together than a layer's experts */
	double bl[4 * 3] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	in.episodes = NULL;
	in.n_episodes = 0;
	in.blocks = bl;
	in.n_blocks = 4;
	in.blocks_stride = 2;
	assert_int_equal(analyze_place(analyze_algo_find(ANALYZE_FLAGSHIP), &in, p, &err),
			 UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "cannot hold 3 experts"));
	in.blocks_stride = 3;
	assert_int_equal(analyze_place(analyze_algo_find(ANALYZE_FLAGSHIP), &in, p, &err), 0);
	assert_null(analyze_algo_find("no-such-algorithm"));
}

/* eplb and eplb-hier on random skewed heat, then analyze_placement_undup
 * (what `place -o` does for vllm-ascend): no expert twice on a rank, the
 * replica counts eplb chose, or a refusal only when some expert has more
 * replicas than there are ranks; and through analyze_place with no_dup. */
static void test_place_undup(void **state)
{
	(void)state;
	struct util_rng rng;
	double w[64];
	int32_t p[256], q[256];
	int before[64], after[64], repaired = 0, refused = 0;

	util_rng_seed(&rng, 13);
	for (int trial = 0; trial < 300; trial++) {
		int E = 8 + (int)(util_rng_next(&rng) % 57), R = 2 + (int)(util_rng_next(&rng) % 7);
		int S = (E + R - 1) / R + (int)(util_rng_next(&rng) % 4), undup = -1;
		struct util_err err = UTIL_ERR_INIT;
		if (S > E || R * S > 256)
			continue;
		random_heat(&rng, w, E, trial % 3 == 0);
		if (trial % 2)
			w[util_rng_next(&rng) % E] *= 50; /* one very hot expert */
		struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S, .heat = w,
					       .max_moves = -1 };
		const char *algo = trial % 4 ? "eplb" : "static";
		assert_int_equal(run_algo(algo, &in, p), 0);
		memcpy(q, p, sizeof(int32_t) * (size_t)(R * S));
		analyze_replicas(p, R * S, E, before);
		int n = analyze_placement_undup(p, E, R, S, w, &err);
		int too_many = 0;
		for (int e = 0; e < E; e++)
			too_many |= before[e] > R;
		if (too_many) {
			assert_true(n < 0);
			assert_non_null(strstr(err.msg, "replicas on"));
			refused++;
			continue;
		}
		assert_true(n >= 0);
		repaired += n > 0;
		assert_int_equal(analyze_placement_check(p, E, R, S, 1, NULL), 0);
		analyze_replicas(p, R * S, E, after);
		assert_memory_equal(before, after, sizeof(int) * (size_t)E);
		if (analyze_placement_check(q, E, R, S, 1, NULL) == 0)
			assert_memory_equal(p, q, sizeof(int32_t) * (size_t)(R * S));
		/* the driver does the same before its rank matching */
		in.no_dup = 1;
		in.undup = &undup;
		assert_int_equal(run_algo(algo, &in, q), 0);
		assert_int_equal(analyze_placement_check(q, E, R, S, 1, NULL), 0);
		assert_int_equal(undup, n);
	}
	assert_true(repaired > 10);
	assert_true(refused > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_place_eplb_readme),
		cmocka_unit_test(test_place_flashlb_example_eplb),
		cmocka_unit_test(test_place_flashlb_example),
		cmocka_unit_test(test_place_validity),
		cmocka_unit_test(test_place_exact_brute_force),
		cmocka_unit_test(test_place_flagship_vs_exact),
		cmocka_unit_test(test_place_match),
		cmocka_unit_test(test_place_match_copies),
		cmocka_unit_test(test_place_move_budget),
		cmocka_unit_test(test_place_flagship_dedup),
		cmocka_unit_test(test_place_flagship_keeps),
		cmocka_unit_test(test_place_flagship_far_mended),
		cmocka_unit_test(test_place_zipf_window),
		cmocka_unit_test(test_place_bad_input),
		cmocka_unit_test(test_place_undup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

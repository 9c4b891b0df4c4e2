/* test_robust.c: the flagship given a window's blocks and history
 * (analyze/robust.c): cases whose right answer is known. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h> /* to delete a step's counts rows under the store */

#include "analyze/analyze.h"
#include "analyze/place_int.h" /* analyze_robust_fit: the backtest's errors */
#include "util/util.h"

#define E 8
#define R 4
#define S 3

/* A deterministic multinomial draw of n tokens over shares q[E]. */
static void draw(const double *q, int n, uint64_t *st, double *out)
{
	memset(out, 0, E * sizeof(double));
	for (int i = 0; i < n; i++) {
		*st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
		double u = (double)(*st >> 11) * 0x1.0p-53, c = 0;
		int e = 0;
		while (e < E - 1 && (c += q[e]) <= u)
			e++;
		out[e]++;
	}
}

/* keel on blocks[n * E] (the last n - hist the window); OUT p[R * S] */
static void keel_blocks(const double *blocks, int n, int hist, int32_t *p)
{
	struct util_err err = UTIL_ERR_INIT;
	double heat[E] = { 0 };
	struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S, .heat = heat,
				       .max_moves = -1, .blocks = blocks + (size_t)hist * E,
				       .n_blocks = n - hist };

	for (int i = hist; i < n; i++)
		for (int e = 0; e < E; e++)
			heat[e] += blocks[(size_t)i * E + e];
	if (hist) {
		in.blocks = blocks;
		in.n_blocks = n;
		in.n_hist = hist;
	}
	assert_int_equal(analyze_place(analyze_algo_find(ANALYZE_FLAGSHIP), &in, p, &err), 0);
	assert_int_equal(analyze_placement_check(p, E, R, S, 1, &err), 0);
}

/* keel on the summed heat alone */
static void keel_heat(const double *heat, int32_t *p)
{
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S, .heat = heat,
				       .max_moves = -1 };

	assert_int_equal(analyze_place(analyze_algo_find(ANALYZE_FLAGSHIP), &in, p, &err), 0);
}

static double imbalance(const double *q, const int32_t *p)
{
	double load[R];
	analyze_device_load(q, E, p, R, S, NULL, load);
	return analyze_imbalance(load, R);
}

/* A stationary source: the window alone is a few noisy blocks; the same
 * source's history before it makes the placement better for the truth. */
static void test_robust_stationary_history_helps(void **state)
{
	static const double q[E] = { 0.30, 0.20, 0.14, 0.11, 0.09, 0.07, 0.05, 0.04 };
	enum { HIST = 48, WIN = 4, N = HIST + WIN };
	double *b = malloc((size_t)N * E * sizeof(double));
	int32_t pw[R * S], ph[R * S];
	uint64_t st = 7;
	double worse = 0, better = 0;

	(void)state;
	/* several independent trials, so one lucky window cannot decide */
	for (int trial = 0; trial < 8; trial++) {
		for (int i = 0; i < N; i++)
			draw(q, 12, &st, b + (size_t)i * E);
		keel_blocks(b, N, 0 + HIST, ph);
		keel_blocks(b + (size_t)HIST * E, WIN, 0, pw);
		worse += imbalance(q, pw);
		better += imbalance(q, ph);
	}
	free(b);
	assert_true(better < worse - 0.02 * 8);
}

/* The hot experts switch from {0, 1} to {6, 7} at the window's start: the
 * history is of another regime and must be dropped. */
static void test_robust_switch_drops_history(void **state)
{
	static const double qa[E] = { 0.35, 0.30, 0.07, 0.07, 0.07, 0.07, 0.035, 0.035 };
	static const double qb[E] = { 0.035, 0.035, 0.07, 0.07, 0.07, 0.07, 0.30, 0.35 };
	enum { HIST = 48, WIN = 16, N = HIST + WIN };
	double *b = malloc((size_t)N * E * sizeof(double)), all[2 * E];
	int32_t p[R * S], ps[R * S];
	int cnt[E];
	uint64_t st = 11;

	(void)state;
	for (int i = 0; i < N; i++)
		draw(i < HIST ? qa : qb, 200, &st, b + (size_t)i * E);
	keel_blocks(b, N, HIST, p);
	/* everything as one summed block (no time structure), window too */
	memset(all, 0, sizeof(all));
	for (int i = 0; i < N; i++)
		for (int e = 0; e < E; e++)
			all[(i < HIST ? 0 : 1) * E + e] += b[(size_t)i * E + e];
	for (int e = 0; e < E; e++)
		all[e] += all[E + e];
	free(b);
	analyze_replicas(p, R * S, E, cnt);
	/* the new hot experts get extra replicas (the old ones may keep one
	 * each as a hedge: this trace has switched once) */
	assert_true(cnt[6] >= 2 && cnt[7] >= 2);
	assert_true(imbalance(qb, p) < 1.1);
	/* what keeping the history would do: the old hot experts replicated */
	keel_heat(all, ps);
	analyze_replicas(ps, R * S, E, cnt);
	assert_true(cnt[0] >= 2 && cnt[1] >= 2);
	assert_true(imbalance(qb, p) < imbalance(qb, ps) - 0.05);
}

/* Sixteen steps of even load and one step (the fourth) with a hundred
 * times the tokens, all on expert 0: a fit of the summed heat gives that
 * expert replicas the steps after the window do not need; the flagship,
 * fitting scenarios of its blocks, does not. */
static void test_robust_outlier_step_ignored(void **state)
{
	enum { N = 16 };
	double b[N * E], heat[E] = { 0 }, even[E];
	int32_t p[R * S], ps[R * S];
	int cnt[E];

	(void)state;
	for (int i = 0; i < N; i++)
		for (int e = 0; e < E; e++)
			b[i * E + e] = 10;
	b[3 * E + 0] = 8000;
	for (int e = 0; e < E; e++) {
		even[e] = 1;
		for (int i = 0; i < N; i++)
			heat[e] += b[i * E + e];
	}
	keel_blocks(b, N, 0, p);
	analyze_replicas(p, R * S, E, cnt);
	assert_true(cnt[0] <= 2);
	assert_true(imbalance(even, p) <= 1.0 + 1e-9 + 1.0 / 3);
	/* the summed heat alone puts expert 0 on every rank */
	keel_heat(heat, ps);
	analyze_replicas(ps, R * S, E, cnt);
	assert_true(cnt[0] >= 4);
	assert_true(imbalance(even, p) < imbalance(even, ps));
}

/* Same blocks, same seed: the same placement. */
static void test_robust_deterministic(void **state)
{
	static const double q[E] = { 0.30, 0.20, 0.14, 0.11, 0.09, 0.07, 0.05, 0.04 };
	double b[20 * E];
	int32_t p1[R * S], p2[R * S];
	uint64_t st = 3;

	(void)state;
	for (int i = 0; i < 20; i++)
		draw(q, 30, &st, b + (size_t)i * E);
	keel_blocks(b, 20, 12, p1);
	keel_blocks(b, 20, 12, p2);
	assert_memory_equal(p1, p2, sizeof(p1));
}

/* A new trace at path (a mkstemp name whose file is removed: the store
 * creates it) with one run `name` of layers x experts; *s, *run get them. */
static void new_trace(char *path, const char *name, int layers, int experts, struct store **s,
		      struct store_run *run)
{
	struct util_err err = UTIL_ERR_INIT;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(store_open(path, STORE_CREATE, s, &err), 0);
	memset(run, 0, sizeof(*run));
	snprintf(run->name, sizeof(run->name), "%s", name);
	run->layers = layers;
	run->experts = experts;
	assert_int_equal(store_run_add(*s, run), 0);
}

/* analyze_window_blocks: the window's steps in blocks, the history before
 * it in blocks of the same size counted back from the window (whole blocks
 * only, at most ANALYZE_FLAGSHIP_HISTORY window lengths of step ids). */
static void test_robust_window_blocks(void **state)
{
	char path[] = "/tmp/moetrace-robust.XXXXXX";
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run run;
	struct analyze_blocks b;
	enum { L = 2, EX = 3, N = 30 };
	uint32_t counts[N][L * EX];
	struct store_step steps[N];

	(void)state;
	new_trace(path, "b", L, EX, &s, &run);
	/* step i (id 10 + i) puts i + 1 tokens on (layer 0, expert 0) and 1 on
	 * (layer 1, expert 2); odd steps are decode */
	for (int i = 0; i < N; i++) {
		memset(counts[i], 0, sizeof(counts[i]));
		counts[i][0] = (uint32_t)(i + 1);
		counts[i][L * EX - 1] = 1;
		steps[i] = (struct store_step){ .step = 10 + i, .phase = 1 + i % 2,
						.counts = counts[i] };
	}
	assert_int_equal(store_steps_append(s, &run, steps, N), 0);
	/* window 32..37 (steps 22..27), 6 steps in 6 blocks of one step; the
	 * history is the 4 window lengths before it, ids 8..31: 22 steps
	 * (ids 10..31), 22 whole blocks of one */
	assert_int_equal(analyze_window_blocks(s, &run, 32, 37, 0, &b, &err), 0);
	assert_int_equal(b.n, 22 + 6);
	assert_int_equal(b.hist, 22);
	assert_true(b.heat[0] == 1);                      /* id 10 */
	assert_true(b.heat[(size_t)21 * L * EX] == 22);   /* id 31 */
	assert_true(b.heat[(size_t)22 * L * EX] == 23);   /* id 32: the window */
	assert_true(b.heat[(size_t)27 * L * EX + (size_t)L * EX - 1] == 1);
	analyze_blocks_release(&b);
	/* decode steps of 20..39 (ids 21, 23, ..., 39: 10 steps) in 10 blocks;
	 * history ids 0..19, decode 11..19: 5 steps, 5 blocks */
	assert_int_equal(analyze_window_blocks(s, &run, 20, 39, 1u << STORE_PHASE_DECODE, &b,
					       &err),
			 0);
	assert_int_equal(b.n, 15);
	assert_int_equal(b.hist, 5);
	assert_true(b.heat[0] == 2);                    /* id 11 */
	assert_true(b.heat[(size_t)5 * L * EX] == 12);  /* id 21 */
	analyze_blocks_release(&b);
	/* all phases: ids 20..39 are 20 blocks of one step; the history, ids
	 * 10..19, 10 blocks */
	assert_int_equal(analyze_window_blocks(s, &run, 20, 39, 0, &b, &err), 0);
	assert_int_equal(b.n, 30);
	assert_int_equal(b.hist, 10);
	analyze_blocks_release(&b);
	/* the whole run (from its start): no history */
	assert_int_equal(analyze_window_blocks(s, &run, INT64_MIN, INT64_MAX, 0, &b, &err), 0);
	assert_int_equal(b.hist, 0);
	assert_int_equal(b.n, ANALYZE_FLAGSHIP_BLOCKS < N ? ANALYZE_FLAGSHIP_BLOCKS : N);
	analyze_blocks_release(&b);
	/* no steps in the window: no blocks */
	assert_int_equal(analyze_window_blocks(s, &run, 1000, 1010, 0, &b, &err), 0);
	assert_int_equal(b.n, 0);
	assert_null(b.heat);
	/* analyze_forecast_read: the same blocks, the estimator chosen on
	 * them, and one layer's blocks for analyze_place */
	{
		struct analyze_forecast f;
		struct analyze_robust_choice ch;
		struct analyze_place_in in = { .experts = EX };
		assert_int_equal(analyze_forecast_read(s, &run, 32, 37, 0, 8, &f, &err), 0);
		assert_int_equal(analyze_window_blocks(s, &run, 32, 37, 0, &b, &err), 0);
		assert_int_equal(f.b.n, b.n);
		assert_int_equal(f.b.hist, b.hist);
		assert_memory_equal(f.b.heat, b.heat, (size_t)b.n * L * EX * sizeof(double));
		assert_int_equal(analyze_robust_choose(b.heat, b.n, b.hist, L, EX, 8, 1, &ch), 0);
		assert_int_equal(f.choice.volume, ch.volume);
		assert_true(f.choice.half_life == ch.half_life);
		assert_true(f.choice.shrink == ch.shrink);
		assert_int_equal(f.choice.origins, ch.origins);
		analyze_forecast_layer(&f, 1, &in);
		assert_ptr_equal(in.robust, &f.choice);
		assert_int_equal(in.n_blocks, 28);
		assert_int_equal(in.n_hist, 22);
		assert_int_equal(in.blocks_stride, (size_t)L * EX);
		for (int k = 0; k < in.n_blocks; k++)
			for (int e = 0; e < EX; e++)
				assert_true(in.blocks[k * in.blocks_stride + e] ==
					    b.heat[((size_t)k * L + 1) * EX + e]);
		analyze_blocks_release(&b);
		analyze_forecast_release(&f);
		/* no steps: nothing for analyze_place, which fits in->heat */
		in = (struct analyze_place_in){ .experts = EX };
		assert_int_equal(analyze_forecast_read(s, &run, 1000, 1010, 0, 8, &f, &err), 0);
		analyze_forecast_layer(&f, 0, &in);
		assert_null(in.blocks);
		assert_null(in.robust);
		analyze_forecast_release(&f);
	}
	store_free(s);
	unlink(path);
}

/* analyze_robust_choose on several layers: a stationary source keeps a long
 * memory; hot experts that switched in every layer when the window began, a
 * short one. */
static void test_robust_choose_layers(void **state)
{
	static const double qa[E] = { 0.35, 0.30, 0.07, 0.07, 0.07, 0.07, 0.035, 0.035 };
	static const double qb[E] = { 0.035, 0.035, 0.07, 0.07, 0.07, 0.07, 0.30, 0.35 };
	enum { LY = 4, HIST = 96, WIN = 32, N = HIST + WIN };
	double *b = malloc((size_t)N * LY * E * sizeof(double));
	struct analyze_robust_choice ch;
	uint64_t st = 5;

	(void)state;
	/* blocks [N * LY * E], layer-major within a block */
	for (int i = 0; i < N; i++)
		for (int l = 0; l < LY; l++)
			draw(qa, 60, &st, b + ((size_t)i * LY + l) * E);
	assert_int_equal(analyze_robust_choose(b, N, HIST, LY, E, R * S, 2, &ch), 0);
	assert_true(ch.origins > 0);
	assert_true(ch.half_life >= 1); /* a window length or more of memory */
	for (int i = 0; i < N; i++)
		for (int l = 0; l < LY; l++)
			draw(i < HIST ? qa : qb, 60, &st, b + ((size_t)i * LY + l) * E);
	assert_int_equal(analyze_robust_choose(b, N, HIST, LY, E, R * S, 2, &ch), 0);
	free(b);
	/* half a window of memory at most (0: the window alone) */
	assert_true(ch.half_life <= 0.5);
}

/* The backtest's candidate errors as docs/algorithms.md defines them,
 * computed the plain way: origins o = ohi, ohi - step, ... (at most 17),
 * each weighted 2^-((ohi - o) / m); the blocks before o (as they are, or
 * as shares) weighted by age forecast the shares of the m blocks from o;
 * the error is the sum over experts of the squared share error over the
 * forecast's replica count, at least 1.  out[84]: per estimator, hedge
 * and half-life in analyze_robust_fit's order, scaled to sum to one. */
static void backtest_by_definition(const double *x, int n, int hist, int ne, int nslots,
				   double *out)
{
	static const double half[] = { 0, 0.25, 0.5, 1, 2, 4, INFINITY };
	static const double shrink[] = { 0, 0.0625, 0.125, 0.25, 0.5, 0.75 };
	int m = n - hist, olo = (m + 1) / 2 > 1 ? (m + 1) / 2 : 1, ohi = n - (m + 1) / 2;
	int span = ohi - olo + 1, step = span > 16 ? span / 16 : 1, norg = 0;
	double a[16], f[16], t = 0;

	memset(out, 0, 84 * sizeof(double));
	for (int o = ohi; o >= olo && norg <= 16; o -= step, norg++) {
		double wo = exp2(-(double)(ohi - o) / m), ta = 0;
		memset(a, 0, sizeof(a));
		for (int i = o; i < n && i < o + m; i++)
			for (int e = 0; e < ne; e++)
				a[e] += x[i * ne + e];
		for (int e = 0; e < ne; e++)
			ta += a[e];
		for (int e = 0; e < ne; e++)
			a[e] = ta > 0 ? a[e] / ta : 1.0 / ne;
		for (int g = 0; g < 2; g++)
			for (int h = 0; h < 7; h++) {
				double tf = 0;
				memset(f, 0, sizeof(f));
				for (int i = 0; i < o; i++) {
					int age = o - 1 - i;
					double w = half[h] == 0 ? age < m : isinf(half[h]) ? 1
							: exp2(-age / (half[h] * m)), tb = 0;
					for (int e = 0; e < ne; e++)
						tb += x[i * ne + e];
					for (int e = 0; e < ne; e++)
						f[e] += w * (!g ? x[i * ne + e]
							 : tb > 0 ? x[i * ne + e] / tb : 1.0 / ne);
				}
				for (int e = 0; e < ne; e++)
					tf += f[e];
				for (int q = 0; q < 6; q++) {
					double se = 0;
					for (int e = 0; e < ne; e++) {
						double p = tf > 0 ? f[e] / tf : 1.0 / ne;
						double fe = (1 - shrink[q]) * p + shrink[q] / ne;
						double c = fe * nslots;
						se += (fe - a[e]) * (fe - a[e]) / (c > 1 ? c : 1);
					}
					out[(g * 7 + h) * 6 + q] += wo * se;
				}
			}
	}
	for (int c = 0; c < 84; c++)
		t += out[c];
	for (int c = 0; c < 84; c++)
		out[c] = t > 0 ? out[c] / t : 0;
}

/* The backtest analyze_robust_fit runs (the running sums and paired
 * arithmetic of robust.c) gives every candidate the error of its
 * definition: odd and even expert counts, blocks without a token, one
 * origin per block and origins spread over many, and blocks of 2^53 - 1
 * tokens (a step's limit) before small ones, which a difference of prefix
 * sums would lose. */
static void test_robust_backtest_by_definition(void **state)
{
	static const struct {
		int n, hist, ne, huge;
	} cs[] = { { 40, 24, 8, 0 }, { 61, 40, 7, 0 }, { 9, 0, 5, 0 }, { 100, 60, 16, 0 },
		   { 3, 1, 2, 0 },   { 8, 4, 2, 1 },   { 30, 10, 5, 1 } };
	static double xl[100 * 16 * 3];
	double x[100 * 16], want[84], got[84], got2[84];
	double heat[16], heat2[16], scen[4 * 16], scen2[4 * 16];
	uint64_t st = 11;

	(void)state;
	for (size_t c = 0; c < sizeof(cs) / sizeof(cs[0]); c++) {
		int n = cs[c].n, ne = cs[c].ne;
		for (int i = 0; i < n * ne; i++) {
			st = st * 6364136223846793005ULL + 1442695040888963407ULL;
			int e = i % ne, hot = e == i / ne / 10 % ne;
			int cold = e % 3 == 1 || e == ne - 1; /* fewer tokens than a replica */
			/* skewed, drifting, with an empty block every 13 */
			x[i] = i / ne % 13 == 5 ? 0 : (double)(st >> 54) * (1 + hot) * (cold ? 0.1 : 1);
			if (cs[c].huge && i / ne < n / 2) /* one expert takes all */
				x[i] = e == 0 ? 9007199254740991.0 : 0;
		}
		assert_int_equal(analyze_robust_fit(x, 0, n, cs[c].hist, ne, 3 * ne / 2, 0, 0, NULL,
						    NULL, NULL, NULL, got),
				 0);
		backtest_by_definition(x, n, cs[c].hist, ne, 3 * ne / 2, want);
		for (int k = 0; k < 84; k++)
			if (fabs(got[k] - want[k]) > 1e-12 + 1e-9 * want[k])
				fail_msg("case %zu candidate %d: %.17g, by definition %.17g", c, k,
					 got[k], want[k]);
		/* the same blocks as one layer of three (rows 3 x ne apart, the
		 * other layers' values huge): the same errors, forecast and
		 * scenarios, to the bit */
		for (int i = 0; i < n * 3 * ne; i++)
			xl[i] = i % (3 * ne) / ne == 1 ? x[i / (3 * ne) * ne + i % ne] : 1e300;
		assert_int_equal(analyze_robust_fit(xl + ne, 3 * (size_t)ne, n, cs[c].hist, ne,
						    3 * ne / 2, 0, 0, NULL, NULL, NULL, NULL, got2),
				 0);
		assert_memory_equal(got, got2, sizeof(got));
		struct analyze_robust_choice ch;
		assert_int_equal(analyze_robust_fit(x, 0, n, cs[c].hist, ne, 3 * ne / 2, 4, 7, NULL,
						    heat, scen, &ch, NULL),
				 0);
		assert_int_equal(analyze_robust_fit(xl + ne, 3 * (size_t)ne, n, cs[c].hist, ne,
						    3 * ne / 2, 4, 7, &ch, heat2, scen2, NULL, NULL),
				 0);
		assert_memory_equal(heat, heat2, (size_t)ne * sizeof(double));
		assert_memory_equal(scen, scen2, 4 * (size_t)ne * sizeof(double));
	}
}

/* One expert: every forecast is exact, every candidate's error is zero (not
 * rounding noise), and the choice is the simplest estimator. */
static void test_robust_one_expert(void **state)
{
	double x[40], err[84];
	struct analyze_robust_choice ch;

	(void)state;
	for (int i = 0; i < 40; i++)
		x[i] = 1 + (i * 37) % 101; /* totals like 49: x * (1 / x) is not 1 */
	assert_int_equal(analyze_robust_fit(x, 0, 40, 20, 1, 1, 0, 0, NULL, NULL, NULL, NULL, err), 0);
	for (int k = 0; k < 84; k++)
		assert_true(err[k] == 0);
	assert_int_equal(analyze_robust_fit(x, 0, 40, 20, 1, 1, 0, 0, NULL, NULL, NULL, &ch, NULL), 0);
	assert_true(ch.volume == 1 && ch.half_life == 0 && ch.shrink == 0);
}

/* The blocks of steps a caller holds (analyze_blocks_init/add) equal those
 * analyze_window_blocks reads, also when a step of the window or of its
 * history has lost its counts rows (counted by the steps index, not met by
 * the iterator: it reads again with what it met). */
static void test_robust_blocks_in_memory(void **state)
{
	char path[] = "/tmp/moetrace-blocks.XXXXXX";
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run run;
	struct analyze_blocks b, m;
	enum { L = 2, EX = 3, N = 90 };
	static uint32_t counts[N][L * EX];
	struct store_step steps[N];
	static const struct {
		int64_t from, to;
		unsigned mask;
	} win[] = { { 60, 79, 0 }, { 50, 99, 1u << STORE_PHASE_DECODE }, { 13, 20, 0 },
		    { 70, 71, 0 }, { 30, 59, 1u << STORE_PHASE_PREFILL } };

	(void)state;
	new_trace(path, "m", L, EX, &s, &run);
	for (int i = 0; i < N; i++) {
		for (int k = 0; k < L * EX; k++)
			counts[i][k] =
				(uint32_t)((i * 7 + k * 13) % 29 + (k == i % (L * EX) ? 50 : 0));
		steps[i] = (struct store_step){ .step = 10 + i, .phase = 1 + (i % 3 == 0),
						.counts = counts[i] };
	}
	assert_int_equal(store_steps_append(s, &run, steps, N), 0);
	for (int pass = 0; pass < 2; pass++) {
		if (pass) {
			/* steps 45 (history of most windows) and 66 lose their counts */
			sqlite3 *db;
			assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
			const char *del = "DELETE FROM counts WHERE step IN (45, 66)";
			assert_int_equal(sqlite3_exec(db, del, NULL, NULL, NULL), SQLITE_OK);
			sqlite3_close(db);
		}
		for (size_t w = 0; w < sizeof(win) / sizeof(win[0]); w++) {
			int64_t hfrom = analyze_window_history_from(win[w].from, win[w].to);
			int64_t nw = 0, nh = 0, iw = 0, ih = 0;
			assert_int_equal(analyze_window_blocks(s, &run, win[w].from, win[w].to,
							       win[w].mask, &b, &err), 0);
			/* the steps the iterator meets, as a caller would hold them */
			for (int i = 0; i < N; i++) {
				int64_t id = 10 + i;
				int in = !win[w].mask || (win[w].mask & (1u << steps[i].phase));
				if (!in || (pass && (id == 45 || id == 66)))
					continue;
				nh += id >= hfrom && id < win[w].from;
				nw += id >= win[w].from && id <= win[w].to;
			}
			if (hfrom >= win[w].from)
				nh = 0;
			assert_int_equal(analyze_blocks_init(&m, L, EX, nw, nh), 0);
			for (int i = 0; i < N; i++) {
				int64_t id = 10 + i;
				int in = !win[w].mask || (win[w].mask & (1u << steps[i].phase));
				if (!in || (pass && (id == 45 || id == 66)))
					continue;
				if (id >= hfrom && id < win[w].from)
					analyze_blocks_add(&m, ih++, counts[i]);
				else if (id >= win[w].from && id <= win[w].to)
					analyze_blocks_add(&m, nh + iw++, counts[i]);
			}
			assert_int_equal(m.n, b.n);
			assert_int_equal(m.hist, b.hist);
			assert_true(b.n > 0);
			assert_memory_equal(m.heat, b.heat, (size_t)b.n * L * EX * sizeof(double));
			analyze_blocks_release(&b);
			analyze_blocks_release(&m);
		}
	}
	store_free(s);
	unlink(path);
}

/* The replay test's trace: stationary traffic of few tokens per step, so
 * that the forecast keeps its whole history, over a layout large enough
 * for the placement to follow it. */
enum { RL = 2, RN = 400, RE = 24, RR = 4, RS = 8, RP = RR * RS };
static uint32_t rcounts[RN][RL * RE];

/* The blocks the replay's decision after t steps gives the flagship
 * (docs/replay.md), computed from the counts: the window [t - w, t) (from
 * 0 while t <= w) cut as analyze_window_blocks cuts it, after history on
 * the grid of the block size g of a full window, from the grid point at
 * or before the start of analyze_window_blocks's history (up to 4 window
 * lengths in blocks of its size) to the window.  OUT b[n * RL * RE];
 * returns n, *hist the history blocks. */
static int replay_blocks(int t, int w, double *b, int *hist)
{
	int ws = t > w ? t - w : 0, nw = t - ws, m = nw < 32 ? nw : 32, bsz = (nw + m / 2) / m;
	int mw = w < 32 ? w : 32, g = (w + mw / 2) / mw;
	int nh = ws < 4 * nw ? ws : 4 * nw, hb = nh / bsz < 4 * m ? nh / bsz : 4 * m;
	int hs = hb ? (ws - hb * bsz) / g * g : ws, n;

	*hist = (ws - hs + g - 1) / g;
	n = *hist + m;
	assert_true(n <= 200);
	memset(b, 0, (size_t)n * RL * RE * sizeof(double));
	for (int i = hs; i < t; i++) {
		int k = i < ws ? (i - hs) / g : *hist + (i - ws) * m / nw;
		for (int j = 0; j < RL * RE; j++)
			b[(size_t)k * RL * RE + j] += rcounts[i][j];
	}
	return n;
}

/* A replay of the flagship without episodes decides as `place` would on
 * its blocks: each decision is the flagship on the forecast from the
 * window's blocks and the history before it, estimator chosen on all
 * layers, from the placement in force.  Checked step by step through the
 * replay's per-layer series against that chain of placements computed
 * here, with one and two threads.  Every 70 steps on 70 (32 uneven blocks
 * after up to 4 windows of history in blocks of 2), the window starts on
 * the history's grid and the blocks are analyze_forecast_read's, as
 * `place --steps` reads them; every 33 steps on 64, every other window
 * starts off the grid, its newest history block is one step and its
 * oldest starts a step before 4 windows back. */
static void test_robust_replay_is_place(void **state)
{
	static const int cad[2][2] = { { 70, 70 }, { 33, 64 } };
	char path[] = "/tmp/moetrace-replay-fc.XXXXXX";
	const struct analyze_algo *keel = analyze_algo_find(ANALYZE_FLAGSHIP);
	struct util_err err = UTIL_ERR_INIT;
	struct store_step steps[RN];
	struct store_run run;
	struct store *s;
	int32_t start[RL * RP], cur[RL * RP], next[RL * RP];
	double *b = malloc((size_t)200 * RL * RE * sizeof(double));
	double *x = malloc((size_t)200 * RE * sizeof(double));
	double q[RE], c = 0;
	uint64_t st = 11;

	(void)state;
	assert_true(b && x);
	new_trace(path, "fc", RL, RE, &s, &run);
	for (int e = 0; e < RE; e++)
		c += q[e] = 1.0 / (1 + e % 9);
	memset(rcounts, 0, sizeof(rcounts));
	for (int i = 0; i < RN; i++) {
		/* a multinomial draw of 12 + i % 5 tokens over q[], per layer */
		for (int l = 0; l < RL; l++)
			for (int n = 0; n < 12 + i % 5; n++) {
				st = st * 6364136223846793005ULL + 1442695040888963407ULL;
				double u = (double)(st >> 11) * 0x1.0p-53 * c, a = 0;
				int e = 0;
				while (e < RE - 1 && (a += q[e]) <= u)
					e++;
				rcounts[i][l * RE + e]++;
			}
		steps[i] = (struct store_step){ .step = i, .phase = STORE_PHASE_DECODE,
						.counts = rcounts[i] };
	}
	assert_int_equal(store_steps_append(s, &run, steps, RN), 0);
	for (int l = 0; l < RL; l++)
		analyze_static_phy2log(RE, RR, RS, start + (size_t)l * RP);
	for (int cd = 0; cd < 2; cd++)
		for (int threads = 1; threads <= 2; threads++)
			for (int sl = 0; sl < RL; sl++) {
				int K = cad[cd][0], W = cad[cd][1], shifted = 0;
				struct analyze_replay_cfg cfg = {
					.algo = keel, .ranks = RR, .slots = RS, .interval = K,
					.window = W, .delay = 0,
					.episodes = analyze_replay_episodes(keel, -1, W),
					.max_moves = -1, .move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE,
					.seed = ANALYZE_DEFAULT_SEED, .from = INT64_MIN, .to = INT64_MAX, .start = start,
					.threads = threads, .series = 1, .series_layer = sl,
				};
				struct analyze_replay_out out;
				assert_int_equal(cfg.episodes, ANALYZE_REPLAY_FORECAST);
				assert_int_equal(analyze_replay_run(s, &run, &cfg, &out, &err), 0);
				assert_int_equal(out.n_series, RN);
				memcpy(cur, start, sizeof(cur));
				for (int i = 0; i < RN; i++) {
					if (i > 0 && i % K == 0) { /* the decision after i steps */
						struct analyze_robust_choice ch;
						int hist, n = replay_blocks(i, W, b, &hist);
						if (cd == 0) {
							struct analyze_forecast f;
							assert_int_equal(
								analyze_forecast_read(s, &run, i > W ? i - W : 0,
										      i - 1, 0, RP, &f, &err),
								0);
							assert_int_equal(f.b.n, n);
							assert_int_equal(f.b.hist, hist);
							assert_memory_equal(f.b.heat, b,
									    (size_t)n * RL * RE * sizeof(double));
							analyze_forecast_release(&f);
						}
						shifted += hist > 0 && (i - W) % 2;
						assert_int_equal(analyze_robust_choose(b, n, hist, RL, RE, RP, 1, &ch), 0);
						for (int l = 0; l < RL; l++) {
							double w[RE] = { 0 };
							for (int k = 0; k < n; k++)
								for (int e = 0; e < RE; e++) {
									x[k * RE + e] = b[((size_t)k * RL + l) * RE + e];
									w[e] += k >= hist ? x[k * RE + e] : 0;
								}
							struct analyze_place_in in = {
								.experts = RE, .ranks = RR, .slots = RS, .heat = w,
								.current = cur + (size_t)l * RP, .max_moves = -1,
								.move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE,
								.seed = ANALYZE_DEFAULT_SEED, .blocks = x, .n_blocks = n,
								.n_hist = hist, .robust = &ch,
							};
							assert_int_equal(analyze_place(keel, &in, next + (size_t)l * RP, &err), 0);
						}
						memcpy(cur, next, sizeof(cur));
					}
					int cnt[RE];
					double load[RR], tot = 0, hs[RE];
					for (int e = 0; e < RE; e++)
						hs[e] = rcounts[i][sl * RE + e];
					const int32_t *pl = cur + (size_t)sl * RP;
					analyze_replicas(pl, RP, RE, cnt);
					double mx = analyze_device_load(hs, RE, pl, RR, RS, cnt, load);
					for (int r = 0; r < RR; r++)
						tot += load[r];
					assert_int_equal(out.series_step[i], i);
					assert_float_equal(out.series_imbalance[i], mx / (tot / RR), 1e-9);
				}
				/* decisions moved something; the second cadence had windows
				 * off the grid */
				assert_true(out.n_events > 0);
				assert_memory_not_equal(cur, start, sizeof(cur));
				assert_true(cd == 0 ? shifted == 0 : shifted > 0);
				analyze_replay_release(&out);
			}
	/* other cadences: every block a decision reads was planned and is
	 * still held (else the replay fails: "missing block checkpoint") */
	static const int ws[] = { 1, 2, 5, 31, 32, 33, 64, 65, 97 };
	for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
		for (int k = 0; k < 3; k++) {
			/* every 3 steps or more: the short windows would take many
			 * decisions every step or two */
			int W = ws[i], K = k == 0 ? (W / 2 + 1 > 3 ? W / 2 + 1 : 3)
					 : k == 1 ? (W > 3 ? W : 4) : W + 5;
			struct analyze_replay_cfg cfg = {
				.algo = keel, .ranks = RR, .slots = RS, .interval = K, .window = W,
				.delay = K / 3, .episodes = ANALYZE_REPLAY_FORECAST, .max_moves = -1,
				.move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE, .seed = ANALYZE_DEFAULT_SEED,
				.from = INT64_MIN, .to = INT64_MAX, .start = start, .threads = 1,
			};
			struct analyze_replay_out out;
			if (analyze_replay_run(s, &run, &cfg, &out, &err))
				fail_msg("every %d steps on %d: %s", K, W, err.msg);
			analyze_replay_release(&out);
		}
	free(b);
	free(x);
	store_free(s);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_robust_stationary_history_helps),
		cmocka_unit_test(test_robust_switch_drops_history),
		cmocka_unit_test(test_robust_outlier_step_ignored),
		cmocka_unit_test(test_robust_deterministic),
		cmocka_unit_test(test_robust_window_blocks),
		cmocka_unit_test(test_robust_blocks_in_memory),
		cmocka_unit_test(test_robust_choose_layers),
		cmocka_unit_test(test_robust_backtest_by_definition),
		cmocka_unit_test(test_robust_one_expert),
		cmocka_unit_test(test_robust_replay_is_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

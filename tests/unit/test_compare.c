/* test_compare.c: the fit-then-score engine behind `compare` and `report`
 * (analyze/compare.c) on small traces whose figures are known by hand. */
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

#include "analyze/analyze.h"
#include "util/util.h"

/* One layer of 4 experts on 2 ranks x 2 slots: the static layout puts
 * experts 0, 1 on rank 0 and 2, 3 on rank 1. */
enum { L = 1, E = 4, R = 2, S = 2, P = R * S, MAXN = 16 };

struct fixture {
	char path[64];
	struct store *s;
	struct store_run run;
	int32_t start[L * P];
	const struct analyze_algo *algos[2];
};

/* Appends n steps from id `first`, each with heat h[E]; the first half of
 * them prefill, the rest decode. */
static void add_steps(struct fixture *f, int64_t first, int n, const uint32_t h[E])
{
	static uint32_t counts[MAXN][E];
	struct store_step st[MAXN];

	assert_true(n <= MAXN);
	for (int i = 0; i < n; i++) {
		memcpy(counts[i], h, sizeof(counts[i]));
		st[i] = (struct store_step){ .step = first + i,
					     .phase = i < n / 2 ? STORE_PHASE_PREFILL
								: STORE_PHASE_DECODE,
					     .counts = counts[i] };
	}
	assert_int_equal(store_steps_append(f->s, &f->run, st, n), 0);
}

static void open_trace(struct fixture *f)
{
	struct util_err err = UTIL_ERR_INIT;
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/moetrace-compare.XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	unlink(f->path);
	assert_int_equal(store_open(f->path, STORE_CREATE, &f->s, &err), 0);
	memset(&f->run, 0, sizeof(f->run));
	snprintf(f->run.name, sizeof(f->run.name), "c");
	f->run.layers = L;
	f->run.experts = E;
	assert_int_equal(store_run_add(f->s, &f->run), 0);
	analyze_static_phy2log(E, R, S, f->start);
	f->algos[0] = analyze_algo_find("static");
	f->algos[1] = analyze_algo_find("eplb");
	assert_non_null(f->algos[0]);
	assert_non_null(f->algos[1]);
}

static void close_trace(struct fixture *f)
{
	store_free(f->s);
	unlink(f->path);
}

static struct analyze_compare_in input(struct fixture *f, int64_t a, int64_t b, int64_t c,
				       int64_t d)
{
	return (struct analyze_compare_in){
		.store = f->s, .run = &f->run, .algos = f->algos, .n_algos = 2,
		.ranks = R, .slots = S, .max_moves = -1,
		.fit_from = a, .fit_to = b, .next_from = c, .next_to = d,
		.start = f->start, .capacity = 1.25, .by_phase = 1,
	};
}

/* Imbalance of heat h under placement p2l, computed here. */
static double imbalance(const double *h, const int32_t *p2l)
{
	int cnt[E];
	double load[R], tot = 0, mx;

	analyze_replicas(p2l, P, E, cnt);
	mx = analyze_device_load(h, E, p2l, R, S, cnt, load);
	for (int r = 0; r < R; r++)
		tot += load[r];
	return mx / (tot / R);
}

/* Stationary heat on experts 0 and 1 (both on rank 0 in the static
 * layout): static scores 2 on both windows, a balancing algorithm 1, and
 * the figures per phase and per step follow. */
static void test_compare_known_figures(void **state)
{
	static const uint32_t h[E] = { 10, 10, 0, 0 };
	struct fixture f = { .s = NULL };
	struct analyze_compare x;
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_compare_in in;

	(void)state;
	open_trace(&f);
	add_steps(&f, 0, 4, h);
	add_steps(&f, 4, 4, h);
	in = input(&f, 0, 3, 4, 7);
	assert_int_equal(analyze_compare_run(&in, &x, &err), 0);
	assert_int_equal(x.fit_steps, 4);
	assert_int_equal(x.next_steps, 4);
	assert_true(x.fit_heat[0] == 40 && x.next_heat[1] == 40 && x.next_heat[2] == 0);
	assert_true(x.lb_next[0] == 40); /* 80 tokens over 2 ranks */
	/* static: everything on rank 0 */
	assert_true(x.algo[0].fit == 2 && x.algo[0].next == 2 && x.algo[0].next_step == 2);
	assert_true(x.algo[0].next_p99 == 2);
	assert_true(fabs(x.algo[0].gap_next - 1) < 1e-12);
	assert_int_equal(x.algo[0].plan.moves, 0);
	/* over capacity 1.25 x mean: rank 0 has 20 of 20 tokens, cap 12.5 */
	assert_true(fabs(x.algo[0].drop - 7.5 / 20) < 1e-12);
	/* eplb splits experts 0 and 1: one copy onto each rank */
	assert_true(x.algo[1].fit == 1 && x.algo[1].next == 1 && x.algo[1].next_step == 1);
	assert_true(x.algo[1].gap_next == 0 && x.algo[1].drop == 0);
	assert_int_equal(x.algo[1].plan.moves, 2);
	/* per phase: 2 prefill and 2 decode steps of 20 assignments */
	assert_int_equal(x.phase[STORE_PHASE_PREFILL].n, 2);
	assert_int_equal(x.phase[STORE_PHASE_DECODE].n, 2);
	assert_true(x.assign == 20 && x.phase[STORE_PHASE_DECODE].assign == 20);
	assert_true(x.phase[STORE_PHASE_PREFILL].start == 2);
	assert_true(x.algo[1].phase_step[STORE_PHASE_DECODE] == 1);
	/* untimed and unpriced without a deployment */
	assert_int_equal(x.timed, 0);
	assert_int_equal(x.algo[1].bytes, 0);
	analyze_compare_release(&x);
	analyze_compare_release(&x); /* released twice is harmless */
	close_trace(&f);
}

/* The heat moves between the windows: each algorithm is scored on the
 * next window's heat under the placement it fitted on the first, not on
 * the heat it was fitted on. */
static void test_compare_scores_next_window(void **state)
{
	static const uint32_t a[E] = { 30, 20, 5, 0 }, b[E] = { 10, 0, 0, 10 };
	const double nb[E] = { 40, 0, 0, 40 };
	struct fixture f = { .s = NULL };
	struct analyze_compare x;
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_compare_in in;

	(void)state;
	open_trace(&f);
	add_steps(&f, 0, 4, a);
	add_steps(&f, 10, 4, b);
	in = input(&f, 0, 3, 4, 20);
	assert_int_equal(analyze_compare_run(&in, &x, &err), 0);
	assert_int_equal(x.next_steps, 4);
	/* static on the next heat: experts 0 and 3 on different ranks */
	assert_true(x.algo[0].next == 1);
	for (int i = 0; i < 2; i++) {
		double want_next = imbalance(nb, x.algo[i].plan.phy2log);
		assert_true(fabs(x.algo[i].next - want_next) < 1e-12);
		/* every next step has the same heat: per step = summed */
		assert_true(fabs(x.algo[i].next_step - want_next) < 1e-12);
	}
	/* eplb balances the fitting window better than static does */
	assert_true(x.algo[1].fit < x.algo[0].fit);
	analyze_compare_release(&x);
	close_trace(&f);
}

/* Empty windows are reported through the step counts, not as errors. */
static void test_compare_empty_windows(void **state)
{
	static const uint32_t h[E] = { 1, 2, 3, 4 };
	struct fixture f = { .s = NULL };
	struct analyze_compare x;
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_compare_in in;

	(void)state;
	open_trace(&f);
	add_steps(&f, 0, 4, h);
	in = input(&f, 0, 3, 4, 7);
	assert_int_equal(analyze_compare_run(&in, &x, &err), 0);
	assert_int_equal(x.fit_steps, 4);
	assert_int_equal(x.next_steps, 0);
	analyze_compare_release(&x);
	in = input(&f, 100, 200, 201, 300);
	assert_int_equal(analyze_compare_run(&in, &x, &err), 0);
	assert_int_equal(x.fit_steps, 0);
	analyze_compare_release(&x);
	close_trace(&f);
}

/* --rounds: 9 steps in 3 windows of 3; each round starts from the
 * algorithm's own placement of the round before, so on stationary heat
 * eplb copies in round 0 only. */
static void test_compare_rounds(void **state)
{
	static const uint32_t h[E] = { 10, 10, 0, 0 };
	struct fixture f = { .s = NULL };
	struct analyze_rounds x;
	struct analyze_round m;
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_compare_in in;

	(void)state;
	open_trace(&f);
	add_steps(&f, 0, 9, h);
	in = input(&f, INT64_MIN, INT64_MAX, 0, 0);
	assert_int_equal(analyze_compare_rounds(&in, 3, &x, &err), 0);
	assert_int_equal(x.rounds, 2);
	assert_int_equal(x.steps, 9);
	assert_true(x.win[0] == 0 && x.win[1] == 2 && x.win[2] == 3 && x.win[5] == 8);
	assert_true(x.r[0].next == 2 && x.r[1].next == 2); /* static */
	assert_int_equal(x.r[2].moves, 2);                 /* eplb, round 0 */
	assert_int_equal(x.r[3].moves, 0);                 /* eplb, round 1 */
	assert_true(x.r[3].next == 1 && x.r[3].next_step == 1);
	m = analyze_rounds_mean(&x, 1);
	assert_int_equal(m.moves, 2);
	assert_true(m.next == 1);
	analyze_rounds_release(&x);
	/* fewer selected steps than windows */
	in = input(&f, 0, 1, 0, 0);
	assert_int_equal(analyze_compare_rounds(&in, 3, &x, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "fewer than 3 windows"));
	analyze_rounds_release(&x);
	close_trace(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare_known_figures),
		cmocka_unit_test(test_compare_scores_next_window),
		cmocka_unit_test(test_compare_empty_windows),
		cmocka_unit_test(test_compare_rounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_tui_history.c: what the live view keeps decoded between frames --
 * the flagship's history, the steps serve's counters take from it -- gives
 * the figures of reading everything again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui/tui.h"

enum { L = 2, E = 8, R = 4, S = 3 };

struct fixture {
	char path[64];
	struct store *w, *r;
	struct store_run run;
	struct util_rng rng;
	int64_t step;
};

static void fixture_open(struct fixture *f)
{
	struct util_err err = UTIL_ERR_INIT;

	snprintf(f->path, sizeof(f->path), "/tmp/test_tui_history_%d.db", (int)getpid());
	unlink(f->path);
	assert_int_equal(store_open(f->path, STORE_CREATE, &f->w, &err), 0);
	memset(&f->run, 0, sizeof(f->run));
	snprintf(f->run.name, sizeof(f->run.name), "h");
	f->run.layers = L;
	f->run.experts = E;
	f->run.ranks = R;
	f->run.slots = S;
	assert_int_equal(store_run_add(f->w, &f->run), 0);
	assert_int_equal(store_open(f->path, STORE_READONLY, &f->r, &err), 0);
	util_rng_seed(&f->rng, 11);
	f->step = 1000;
}

static void fixture_close(struct fixture *f)
{
	char p[96];

	store_free(f->r);
	store_free(f->w);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
}

/* n steps whose hot expert drifts with the step, prefill and decode
 * mixed, some step numbers missing (dropped). */
static void grow(struct fixture *f, int n)
{
	uint32_t counts[L * E];

	for (int k = 0; k < n; k++) {
		int hot = (int)(f->step / 7 % E);
		for (int i = 0; i < L * E; i++)
			counts[i] = (uint32_t)util_rng_below(&f->rng, 40) +
				    (i % E == (hot + i / E) % E ? 90u : 0u);
		struct store_step st = { .step = f->step,
					 .phase = util_rng_below(&f->rng, 3) ? STORE_PHASE_DECODE
									     : STORE_PHASE_PREFILL,
					 .counts = counts };
		assert_int_equal(store_steps_append(f->w, &f->run, &st, 1), 0);
		f->step += 1 + (util_rng_below(&f->rng, 5) == 0);
	}
}

static struct tui_view *view_new(struct fixture *f, int window, unsigned phase_mask)
{
	struct tui_view_cfg cfg = { .algo = analyze_algo_find(ANALYZE_FLAGSHIP), .ranks = R,
				    .slots = S, .window = window, .phase_mask = phase_mask };
	struct util_err err = UTIL_ERR_INIT;
	struct tui_view *v = NULL;

	assert_non_null(cfg.algo);
	assert_int_equal(tui_view_new(f->r, &f->run, &cfg, &v, &err), 0);
	return v;
}

/* Two views show the same frame: window, table and every layer's loads
 * before and after, bit for bit. */
static void assert_same(struct tui_view *a, struct tui_view *b)
{
	struct tui_header ha, hb;
	double ba[R], aa[R], bb[R], ab[R], ma, mb;

	tui_view_header(a, &ha);
	tui_view_header(b, &hb);
	assert_int_equal(ha.from, hb.from);
	assert_int_equal(ha.to, hb.to);
	assert_int_equal(ha.nsteps, hb.nsteps);
	const struct tui_layer_row *ra = tui_view_rows(a), *rb = tui_view_rows(b);
	assert_memory_equal(ra, rb, L * sizeof(*ra));
	for (int l = 0; l < L; l++) {
		int64_t fa, ta, fb, tb;
		int ha_ = tui_view_loads(a, l, ba, aa, &ma), hb_ = tui_view_loads(b, l, bb, ab, &mb);
		assert_int_equal(ha_, hb_);
		assert_memory_equal(ba, bb, sizeof(ba));
		assert_memory_equal(aa, ab, sizeof(aa));
		tui_view_after_window(a, l, &fa, &ta);
		tui_view_after_window(b, l, &fb, &tb);
		assert_int_equal(fa, fb);
		assert_int_equal(ta, tb);
	}
}

/* A view that follows the trace keeps the flagship's history in memory
 * and reads only what it lacks; its "after" equals that of a view that
 * reads everything at once (kept or not), and so does the forecast the
 * flagship is given (`place --steps` reads it with analyze_window_blocks). */
static void follow_and_compare(unsigned phase_mask, int window)
{
	struct fixture f;

	fixture_open(&f);
	grow(&f, 3);
	struct tui_view *live = view_new(&f, window, phase_mask);
	tui_view_set_refit(live, 1, 0);
	int fitted = 0;
	for (int round = 0; round < 14; round++) {
		grow(&f, 1 + (int)util_rng_below(&f.rng, 2 * window));
		assert_true(tui_view_poll(live, 0) >= 0);
		tui_view_work(live, -1, 0);
		/* fresh views fit the same window at once: one keeps the history
		 * it reads, one (--snapshot) does not */
		struct tui_view *cold = view_new(&f, window, phase_mask);
		struct tui_view *once = view_new(&f, window, phase_mask);
		tui_view_set_once(once);
		assert_true(tui_view_poll(cold, 0) >= 0);
		assert_true(tui_view_poll(once, 0) >= 0);
		tui_view_work(cold, -1, 0);
		tui_view_work(once, -1, 0);
		assert_same(live, cold);
		assert_same(once, cold);
		fitted += tui_view_rows(live)[0].moves >= 0;
		tui_view_free(cold);
		tui_view_free(once);
	}
	assert_true(fitted > 5);
	tui_view_free(live);
	fixture_close(&f);
}

static void test_tui_history_follow(void **state)
{
	(void)state;
	follow_and_compare(0, 6);
}

static void test_tui_history_follow_decode(void **state)
{
	(void)state;
	follow_and_compare(1u << STORE_PHASE_DECODE, 5);
}

/* A window moved back and forward again (the ring rebuilt, steps jumped
 * over) still fits as a fresh view does. */
static void test_tui_history_scrub(void **state)
{
	(void)state;
	struct fixture f;

	fixture_open(&f);
	grow(&f, 120);
	struct tui_view *v = view_new(&f, 8, 0);
	assert_true(tui_view_poll(v, 0) >= 0);
	tui_view_work(v, -1, 0);
	tui_view_scrub(v, -60);
	assert_true(tui_view_poll(v, 0) >= 0);
	tui_view_work(v, -1, 0);
	tui_view_scrub(v, 20);
	assert_true(tui_view_poll(v, 0) >= 0);
	tui_view_work(v, -1, 0);
	grow(&f, 70);
	tui_view_follow(v);
	assert_true(tui_view_poll(v, 0) >= 0);
	tui_view_work(v, -1, 0);
	struct tui_view *cold = view_new(&f, 8, 0);
	assert_true(tui_view_poll(cold, 0) >= 0);
	tui_view_work(cold, -1, 0);
	assert_same(v, cold);
	assert_true(tui_view_rows(v)[1].moves >= 0);
	tui_view_free(cold);
	tui_view_free(v);
	fixture_close(&f);
}

/* serve's counters: steps taken from the view the scrapes share, polled
 * as the trace grows, sum to the same text as steps read once at the end
 * without a view. */
static void test_tui_history_metrics(void **state)
{
	(void)state;
	struct fixture f;
	struct util_err err = UTIL_ERR_INIT;
	struct tui_metrics *shared, *alone;
	struct util_buf a = UTIL_BUF_INIT, b = UTIL_BUF_INIT;
	struct tui_header h;

	fixture_open(&f);
	struct tui_view *v = view_new(&f, 6, 0);
	assert_int_equal(tui_metrics_new(f.r, &f.run, R, S, 1, &shared, &err), 0);
	assert_int_equal(tui_metrics_new(f.r, &f.run, R, S, 1, &alone, &err), 0);
	for (int round = 0; round < 10; round++) {
		grow(&f, 1 + (int)util_rng_below(&f.rng, 30));
		assert_true(tui_view_poll(v, 0) >= 0);
		tui_view_work(v, -1, 0);
		tui_view_header(v, &h);
		assert_int_equal(tui_metrics_poll(shared, v, h.last_step), 0);
	}
	assert_int_equal(tui_metrics_poll(alone, NULL, h.last_step), 0);
	tui_metrics_format(shared, v, &a);
	tui_metrics_format(alone, v, &b);
	assert_true(a.len > 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	util_buf_release(&a);
	util_buf_release(&b);
	tui_metrics_free(shared);
	tui_metrics_free(alone);
	tui_view_free(v);
	fixture_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tui_history_follow),
		cmocka_unit_test(test_tui_history_follow_decode),
		cmocka_unit_test(test_tui_history_scrub),
		cmocka_unit_test(test_tui_history_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_tui.c: the live view's layout, sorting and data (no terminal). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h> /* to write a file the store then reads */

#include "tui/tui.h"

/* ---- layout ---------------------------------------------------------------- */

static int overlap(const struct tui_rect *a, const struct tui_rect *b)
{
	return a->x < b->x + b->w && b->x < a->x + a->w && a->y < b->y + b->h &&
	       b->y < a->y + a->h;
}

static void check_layout(int rows, int cols)
{
	struct tui_layout lay;
	long area = 0;

	tui_layout_compute(rows, cols, &lay);
	assert_false(lay.too_small);
	for (int i = 0; i < TUI_PANEL_COUNT; i++) {
		const struct tui_rect *r = &lay.panel[i];
		if (r->h == 0 || r->w == 0)
			continue;
		assert_true(r->x >= 0 && r->y >= 0);
		assert_true(r->x + r->w <= cols);
		assert_true(r->y + r->h <= rows);
		area += (long)r->h * r->w;
		for (int j = i + 1; j < TUI_PANEL_COUNT; j++)
			if (lay.panel[j].h && lay.panel[j].w)
				assert_false(overlap(r, &lay.panel[j]));
	}
	/* no overlap and the areas add up: the panels tile the screen */
	assert_int_equal(area, (long)rows * cols);
	assert_int_equal(lay.panel[TUI_PANEL_HEADER].y, 0);
	assert_int_equal(lay.panel[TUI_PANEL_HEADER].h, 2);
	assert_int_equal(lay.panel[TUI_PANEL_STATUS].y, rows - 1);
	assert_int_equal(lay.panel[TUI_PANEL_STATUS].w, cols);
	/* the table shows its title, column names and at least four layers;
	 * the bars a title and at least three rows */
	assert_true(lay.panel[TUI_PANEL_TABLE].h >= 6);
	assert_true(lay.panel[TUI_PANEL_BARS].h >= 4);
	assert_true(lay.panel[TUI_PANEL_BARS].w >= 60);
}

static void test_tui_layout_sizes(void **state)
{
	(void)state;
	static const int sizes[][2] = {
		{ 16, 60 },  { 17, 61 },  { 20, 80 },  { 24, 80 },   { 25, 80 },  { 30, 100 },
		{ 40, 120 }, { 29, 149 }, { 30, 150 }, { 50, 160 },  { 60, 200 }, { 24, 200 },
		{ 80, 100 }, { 100, 300 }, { 33, 149 }, { 45, 151 }, { 200, 500 },
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(sizes); i++)
		check_layout(sizes[i][0], sizes[i][1]);
	for (int rows = TUI_MIN_ROWS; rows <= 70; rows += 3)
		for (int cols = TUI_MIN_COLS; cols <= 260; cols += 7)
			check_layout(rows, cols);
}

static void test_tui_layout_folds(void **state)
{
	struct tui_layout lay;
	(void)state;

	/* 80 x 24: every panel, stacked, the table at the top */
	tui_layout_compute(24, 80, &lay);
	assert_false(lay.side);
	for (int i = 0; i < TUI_PANEL_COUNT; i++)
		assert_true(lay.panel[i].h > 0 && lay.panel[i].w == 80);
	assert_true(lay.panel[TUI_PANEL_TABLE].y < lay.panel[TUI_PANEL_BARS].y);
	/* 200 x 60: side by side, the table as tall as the body */
	tui_layout_compute(60, 200, &lay);
	assert_true(lay.side);
	assert_int_equal(lay.panel[TUI_PANEL_TABLE].h, 57);
	assert_int_equal(lay.panel[TUI_PANEL_BARS].x, lay.panel[TUI_PANEL_TABLE].w);
	assert_true(lay.panel[TUI_PANEL_SPARK].h >= 3 && lay.panel[TUI_PANEL_HEAT].h >= 3);
	/* small: the heat strip goes first, then the sparkline */
	tui_layout_compute(20, 80, &lay);
	assert_int_equal(lay.panel[TUI_PANEL_HEAT].h, 0);
	assert_true(lay.panel[TUI_PANEL_SPARK].h > 0);
	tui_layout_compute(16, 60, &lay);
	assert_int_equal(lay.panel[TUI_PANEL_HEAT].h, 0);
	assert_int_equal(lay.panel[TUI_PANEL_SPARK].h, 0);
	/* too small: one line */
	tui_layout_compute(15, 80, &lay);
	assert_true(lay.too_small);
	assert_int_equal(lay.panel[TUI_PANEL_HEADER].h, 1);
	assert_int_equal(lay.panel[TUI_PANEL_TABLE].h, 0);
	tui_layout_compute(40, 59, &lay);
	assert_true(lay.too_small);
	tui_layout_compute(0, 0, &lay);
	assert_true(lay.too_small);
	assert_int_equal(lay.panel[TUI_PANEL_HEADER].h, 0);
}

/* Every size from 80 x 24 to 240 x 70: the panels tile the screen, and
 * the header, the titles and the function-key bar fit their panel and say
 * what matters whole (a DeepSeek-V3-shaped run, 58 layers). */
static void test_tui_layout_grid(void **state)
{
	(void)state;
	struct store_run run;
	struct tui_header h;
	char buf[1024];
	static const char *const levels[4] = { "\u2591", "\u2592", "\u2593", "\u2588" };

	memset(&run, 0, sizeof(run));
	snprintf(run.name, sizeof(run.name), "gen-deepseek-v3-seed1");
	snprintf(run.model, sizeof(run.model), "deepseek-v3");
	run.layers = 58;
	run.experts = 256;
	memset(&h, 0, sizeof(h));
	h.run = &run;
	h.ranks = 64;
	h.slots = 5;
	h.algo = "eplb-hier";
	h.window = 4096;
	h.from = 995904;
	h.to = 999999;
	h.last_step = 999999;
	h.steps = 1000000;
	h.gaps = 12345;
	h.rate = 123.4;
	h.age = 3.2;
	h.follow = 0;
	h.stale_layers = 3;
	for (int rows = 24; rows <= 70; rows++) {
		for (int cols = 80; cols <= 240; cols++) {
			struct tui_layout lay;
			check_layout(rows, cols);
			tui_layout_compute(rows, cols, &lay);
			const struct tui_rect *p = lay.panel;
			int w;
			/* side by side from 150 x 30: a trend of 25 cells or more */
			assert_int_equal(lay.side, cols >= 150 && rows >= 30);
			if (lay.side) {
				assert_true(p[TUI_PANEL_TABLE].w - 1 - 54 >= 25);
				assert_true(p[TUI_PANEL_BARS].w >= 70);
				assert_true(p[TUI_PANEL_SPARK].h >= 3);
			}
			w = p[TUI_PANEL_HEADER].w;
			tui_text_header(buf, sizeof(buf), w, &h);
			assert_true(tui_text_width(buf) <= w);
			assert_non_null(strstr(buf, "run 'gen-deepseek-v3-seed1'"));
			assert_non_null(strstr(buf, "58 layers"));
			assert_non_null(strstr(buf, "EP 64x5"));
			tui_text_status(buf, sizeof(buf), w, &h, "scrub");
			assert_true(tui_text_width(buf) <= w);
			assert_non_null(strstr(buf, "step 999999 [scrub]"));
			assert_non_null(strstr(buf, "123.4/s"));
			w = p[TUI_PANEL_TABLE].w;
			tui_text_table_title(buf, sizeof(buf), w, &h, TUI_SORT_NOW, 0, 0);
			assert_true(tui_text_width(buf) <= w);
			assert_non_null(strstr(buf, "sort: now\u25bc"));
			assert_non_null(strstr(buf, "after: eplb-hier"));
			assert_non_null(strstr(buf, "995904..999999"));
			w = p[TUI_PANEL_BARS].w;
			tui_text_bars_title(buf, sizeof(buf), w, 57, "deployed", "eplb-hier",
					    "\u2502", 123456.0, 8, 8);
			assert_true(tui_text_width(buf) <= w);
			assert_non_null(strstr(buf, " Layer 57 "));
			assert_non_null(strstr(buf, "deployed | eplb-hier"));
			assert_non_null(strstr(buf, "\u2502 mean 123.5k"));
			if (w >= 90) /* the row labels say it too: r0-7 */
				assert_non_null(strstr(buf, "max of 8 ranks a row"));
			w = p[TUI_PANEL_SPARK].w;
			if (w) {
				tui_text_spark_title(buf, sizeof(buf), w, 57, 4096, 1.25, 1.0, 9.5,
						     400, p[TUI_PANEL_SPARK].h >= 4 ? "p" : NULL);
				assert_true(tui_text_width(buf) <= w);
				assert_non_null(strstr(buf, " Layer 57 imbalance"));
				assert_non_null(strstr(buf, "now 1.250  "));
				assert_non_null(strstr(buf, "max 9.500"));
				assert_non_null(strstr(buf, "prefill"));
			}
			w = p[TUI_PANEL_HEAT].w;
			if (w) {
				tui_text_heat_title(buf, sizeof(buf), w, 57, 4, 255, 12.5, levels);
				assert_true(tui_text_width(buf) <= w);
				assert_non_null(strstr(buf, "hottest 255 with 12.5%"));
				assert_non_null(strstr(buf, "(\u2591\u2592\u2593\u2588"));
			}
			w = p[TUI_PANEL_STATUS].w;
			tui_text_fkeys(buf, sizeof(buf), w);
			assert_true(tui_text_width(buf) <= w);
			assert_non_null(strstr(buf, "F1Help"));
			assert_non_null(strstr(buf, "F3Find"));
			assert_non_null(strstr(buf, "F6SortBy"));
			assert_non_null(strstr(buf, "F10Quit"));
		}
	}
}

static void test_tui_text_fit(void **state)
{
	(void)state;
	char buf[256];
	const struct tui_field f[] = {
		{ "run 'x'", NULL, TUI_KEEP, 0 },
		{ "58 layers x 256 experts", "58 layers", TUI_KEEP, 0 },
		{ "EP 64x5", NULL, 5, 0 },
		{ "[moetrace top]", NULL, 1, 0 },
	};

	/* all of it fits */
	assert_int_equal(tui_fit(buf, sizeof(buf), 80, f, 4, "  "), 57);
	assert_string_equal(buf, "run 'x'  58 layers x 256 experts  EP 64x5  [moetrace top]");
	/* the least important goes whole, then the next */
	tui_fit(buf, sizeof(buf), 56, f, 4, "  ");
	assert_string_equal(buf, "run 'x'  58 layers x 256 experts  EP 64x5");
	tui_fit(buf, sizeof(buf), 40, f, 4, "  ");
	assert_string_equal(buf, "run 'x'  58 layers x 256 experts");
	/* a kept field is shortened, never left out */
	tui_fit(buf, sizeof(buf), 20, f, 4, "  ");
	assert_string_equal(buf, "run 'x'  58 layers");
	/* and only then cut */
	assert_int_equal(tui_fit(buf, sizeof(buf), 5, f, 4, "  "), 5);
	assert_string_equal(buf, "run '");
	/* cells, not bytes: a three-byte glyph is one cell */
	const struct tui_field g[] = { { "\u2502 mean 5", NULL, TUI_KEEP, 0 } };
	assert_int_equal(tui_fit(buf, sizeof(buf), 8, g, 1, " "), 8);
	assert_string_equal(buf, "\u2502 mean 5");
	assert_int_equal(tui_fit(buf, sizeof(buf), 1, g, 1, " "), 1);
	assert_string_equal(buf, "\u2502");
	/* shortening has its own weight: the legend stays, the name shortens */
	const struct tui_field k[] = {
		{ " Layer 3 imbalance per step", " Layer 3", TUI_KEEP, 2 },
		{ "p: prefill", NULL, 4, 0 },
	};
	tui_fit(buf, sizeof(buf), 24, k, 2, "  ");
	assert_string_equal(buf, " Layer 3  p: prefill");
	/* ... and is undone when leaving another out made room */
	const struct tui_field m[] = {
		{ " Layer 3 imbalance", " Layer 3", TUI_KEEP, 2 },
		{ "a long legend here", NULL, 4, 0 },
	};
	tui_fit(buf, sizeof(buf), 20, m, 2, "  ");
	assert_string_equal(buf, " Layer 3 imbalance");

	/* the terminal-too-small line never wraps */
	for (int cols = 0; cols < TUI_MIN_COLS; cols++) {
		tui_text_too_small(buf, sizeof(buf), 10, cols);
		assert_true(tui_text_width(buf) <= cols);
		if (cols >= 51)
			assert_non_null(strstr(buf, "terminal too small: "));
		else if (cols >= 21)
			assert_string_equal(buf, "too small: need 60x16");
	}
	/* the F-key bar: htop's 8 cells a key; narrow ones keep F1 and F10 */
	tui_text_fkeys(buf, sizeof(buf), 80);
	assert_string_equal(buf, "F1Help  F2Algo  F3Find  F4InvertF5FollowF6SortByF7Win-  F8Win+  "
				 "F9Pause F10Quit ");
	tui_text_fkeys(buf, sizeof(buf), 60);
	assert_non_null(strstr(buf, "F1Help"));
	assert_non_null(strstr(buf, "F10Quit"));
	assert_null(strstr(buf, "F7Win-"));
	assert_true(tui_text_width(buf) <= 60);
	/* the sort direction: layer ascending, the others worst first */
	assert_string_equal(tui_sort_glyph(TUI_SORT_LAYER, 0, 1), "^");
	assert_string_equal(tui_sort_glyph(TUI_SORT_NOW, 0, 1), "v");
	assert_string_equal(tui_sort_glyph(TUI_SORT_NOW, 1, 1), "^");
	assert_string_equal(tui_sort_glyph(TUI_SORT_LAYER, 1, 0), "\u25bc");
}

/* ---- sorting ------------------------------------------------------------------- */

static void test_tui_rows_sort(void **state)
{
	(void)state;
	/* layer, now, after, fresh, hottest, share, moves, none */
	const struct tui_layer_row base[] = {
		{ 0, 1.5, 1.1, 1, 0, 0, 10, 0 },
		{ 1, 2.0, 1.0, 1, 0, 0, 3, 0 },
		{ 2, 1.5, 1.3, 1, 0, 0, 10, 0 },
		{ 3, 1.2, 1.2, 1, 0, 0, 0, 0 },
	};
	static const int want[TUI_SORT_COUNT][4] = {
		[TUI_SORT_LAYER] = { 0, 1, 2, 3 },
		[TUI_SORT_NOW] = { 1, 0, 2, 3 },   /* ties by layer */
		[TUI_SORT_AFTER] = { 2, 3, 0, 1 },
		[TUI_SORT_GAIN] = { 1, 0, 2, 3 },  /* 1.0, 0.4, 0.2, 0.0 */
		[TUI_SORT_MOVES] = { 0, 2, 1, 3 },
	};
	struct tui_layer_row rows[4];

	for (int s = 0; s < TUI_SORT_COUNT; s++) {
		/* start from a shuffled order: the result must not depend on it */
		rows[0] = base[3], rows[1] = base[1], rows[2] = base[0], rows[3] = base[2];
		tui_rows_sort(rows, 4, s);
		for (int i = 0; i < 4; i++)
			assert_int_equal(rows[i].layer, want[s][i]);
		assert_string_not_equal(tui_sort_name(s), "?");
	}
}

static void test_tui_helpers(void **state)
{
	(void)state;
	static const struct {
		double x;
		const char *want;
	} nums[] = {
		{ 0, "0" },	       { 950, "950" },	       { 9999, "9999" },
		{ 9999.6, "10.0k" },   { 12345, "12.3k" },     { 999949, "999.9k" },
		{ 999950, "1.0M" },    { 4.56e6, "4.6M" },     { 2.5e9, "2.5G" },
		{ 999.9e9, "999.9G" },
	};
	char buf[32];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(nums); i++) {
		tui_fmt_num(buf, sizeof(buf), nums[i].x);
		assert_string_equal(buf, nums[i].want);
		assert_true(strlen(buf) <= 6);
	}
	assert_true(tui_term_is_ascii("vt100"));
	assert_true(tui_term_is_ascii("vt220"));
	assert_true(tui_term_is_ascii("vt52"));
	assert_true(tui_term_is_ascii("dumb"));
	assert_true(tui_term_is_ascii(""));
	assert_true(tui_term_is_ascii(NULL));
	assert_false(tui_term_is_ascii("vte-256color"));
	assert_false(tui_term_is_ascii("xterm-256color"));
	assert_false(tui_term_is_ascii("tmux-256color"));
	assert_false(tui_term_is_ascii("linux"));
}

/* ---- the view on a real store ------------------------------------------------------- */

struct fixture {
	char path[64];
	struct store *w, *r;
	struct store_run run;
};

static void fixture_open(struct fixture *f, int layers, int experts, int ranks, int slots)
{
	struct util_err err = UTIL_ERR_INIT;

	snprintf(f->path, sizeof(f->path), "/tmp/test_tui_%d.db", (int)getpid());
	unlink(f->path);
	assert_int_equal(store_open(f->path, STORE_CREATE, &f->w, &err), 0);
	memset(&f->run, 0, sizeof(f->run));
	snprintf(f->run.name, sizeof(f->run.name), "t");
	f->run.layers = layers;
	f->run.experts = experts;
	f->run.ranks = ranks;
	f->run.slots = slots;
	assert_int_equal(store_run_add(f->w, &f->run), 0);
	assert_int_equal(store_open(f->path, STORE_READONLY, &f->r, &err), 0);
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

static void append(struct fixture *f, int64_t step, const uint32_t *counts)
{
	struct store_step st = { .step = step, .time = 0, .phase = 2, .counts = (uint32_t *)counts };
	assert_int_equal(store_steps_append(f->w, &f->run, &st, 1), 0);
}

static struct tui_view *view_new(struct fixture *f, const char *algo, int window)
{
	struct tui_view_cfg cfg = { analyze_algo_find(algo), f->run.ranks, f->run.slots, window, 0 };
	struct util_err err = UTIL_ERR_INIT;
	struct tui_view *v = NULL;

	assert_non_null(cfg.algo);
	assert_int_equal(tui_view_new(f->r, &f->run, &cfg, &v, &err), 0);
	return v;
}

/* The hand-made trace of tests/cli/0101: 1 layer, 4 experts, 2 ranks x 2
 * slots.  Step 0 [8,4,2,2] -> loads 12,4 -> 1.5; step 1 [5,5,6,4] -> 10,10
 * -> 1.0; both: [13,9,8,6] -> 22,14 -> 22/18. */
static void test_tui_view_hand_trace(void **state)
{
	(void)state;
	struct fixture f;
	const uint32_t s0[4] = { 8, 4, 2, 2 }, s1[4] = { 5, 5, 6, 4 }, s2[4] = { 0, 0, 0, 8 };
	struct tui_header h;
	double before[2], after[2], mean, hist[8];

	fixture_open(&f, 1, 4, 2, 2);
	struct tui_view *v = view_new(&f, "static", 4);
	tui_view_set_refit(v, 1, 0);
	assert_int_equal(tui_view_poll(v, 0), 0); /* no steps yet */
	tui_view_header(v, &h);
	assert_int_equal(h.state, TUI_STATE_EMPTY);
	append(&f, 0, s0);
	append(&f, 1, s1);
	assert_int_equal(tui_view_poll(v, 0), 1);
	assert_int_equal(tui_view_work(v, 0, 0), 0);
	const struct tui_layer_row *r = tui_view_rows(v);
	assert_float_equal(r[0].now, 22.0 / 18.0, 1e-12);
	/* no steps before the window: no "after" rather than one fitted on
	 * the steps it is scored on */
	assert_true(r[0].after_none);
	assert_int_equal(r[0].moves, -1);
	assert_int_equal(r[0].hottest, 0);
	assert_float_equal(r[0].hottest_share, 13.0 / 36.0, 1e-12);
	assert_int_equal(tui_view_loads(v, 0, before, after, &mean), 0);
	assert_float_equal(before[0], 22, 1e-12);
	assert_float_equal(before[1], 14, 1e-12);
	assert_float_equal(mean, 18, 1e-12);
	assert_int_equal(tui_view_history(v, 0, hist, 8), 2);
	assert_float_equal(hist[0], 1.5, 1e-6);
	assert_float_equal(hist[1], 1.0, 1e-6);
	tui_view_header(v, &h);
	assert_int_equal(h.last_step, 1);
	assert_int_equal(h.steps, 2);
	assert_int_equal(h.gaps, 0);
	/* a window of 4 on a run of 2 steps starts at the first step, not
	 * at step -2 */
	assert_int_equal(h.from, 0);
	assert_int_equal(h.to, 1);
	unsigned char ph[8];
	assert_int_equal(tui_view_phases(v, ph, 8), 2);
	assert_int_equal(ph[0], STORE_PHASE_DECODE);

	/* a gap (steps 2-4 dropped), then step 5: the window [2, 5] holds only
	 * step 5, so steps 0 and 1 were subtracted */
	append(&f, 5, s2);
	assert_int_equal(tui_view_poll(v, 0), 1);
	tui_view_header(v, &h);
	assert_int_equal(h.gaps, 3);
	assert_int_equal(h.nsteps, 1);
	assert_int_equal(h.from, 2);
	assert_int_equal(tui_view_loads(v, 0, before, NULL, &mean), 0);
	assert_float_equal(before[0], 0, 1e-12);
	assert_float_equal(before[1], 8, 1e-12);
	assert_float_equal(tui_view_rows(v)[0].now, 2.0, 1e-12);
	/* steps 0 and 1 are now the steps before the window: "after" is fitted
	 * on them (static on static: the same placement) and scored on step 5 */
	int64_t af, at;
	assert_int_equal(tui_view_work(v, 0, 0), 0);
	tui_view_after_window(v, 0, &af, &at);
	assert_int_equal(af, 0);
	assert_int_equal(at, 1);
	r = tui_view_rows(v);
	assert_false(r[0].after_none);
	assert_float_equal(r[0].after, 2.0, 1e-12);
	assert_int_equal(r[0].moves, 0);
	/* nothing new: nothing changes */
	assert_int_equal(tui_view_poll(v, 0), 0);
	/* a prefill step: the trend marks it (phases line up with history) */
	struct store_step pre = { .step = 6, .phase = STORE_PHASE_PREFILL, .counts = (uint32_t *)s1 };
	assert_int_equal(store_steps_append(f.w, &f.run, &pre, 1), 0);
	assert_int_equal(tui_view_poll(v, 0), 1);
	assert_int_equal(tui_view_history(v, 0, hist, 8), 2);
	assert_int_equal(tui_view_phases(v, ph, 8), 2);
	assert_int_equal(ph[0], STORE_PHASE_DECODE);
	assert_int_equal(ph[1], STORE_PHASE_PREFILL);
	assert_float_equal(hist[1], 1.0, 1e-6);
	tui_view_free(v);
	fixture_close(&f);
}

/* Random trace with gaps, read while it grows: the view's incremental
 * window sums equal a fresh sum of the same window every time. */
static void test_tui_view_follows_growth(void **state)
{
	(void)state;
	struct fixture f;
	struct util_rng rng;
	const int L = 3, E = 8, W = 10;
	uint32_t counts[3 * 8];
	uint64_t sum[3 * 8];
	double heat[8];
	int64_t step = 100;
	struct tui_header h;

	fixture_open(&f, L, E, 4, 2);
	util_rng_seed(&rng, 7);
	struct tui_view *v = view_new(&f, "eplb", W);
	tui_view_set_refit(v, 1, 0);
	for (int round = 0; round < 12; round++) {
		int n = 1 + (int)util_rng_below(&rng, 6);
		for (int k = 0; k < n; k++) {
			for (int i = 0; i < L * E; i++)
				counts[i] = util_rng_below(&rng, 50) * (i % E == 3 ? 5 : 1);
			append(&f, step, counts);
			step += 1 + (util_rng_below(&rng, 4) == 0); /* some steps missing */
		}
		assert_int_equal(tui_view_poll(v, 0), 1);
		tui_view_header(v, &h);
		assert_int_equal(h.to, h.last_step);
		/* the window never starts before the run's first step */
		assert_int_equal(h.from, h.to - W + 1 > 100 ? h.to - W + 1 : 100);
		int64_t nsteps = 0;
		assert_int_equal(store_window_sum(f.r, &f.run, h.from, h.to, 0, sum, &nsteps), 0);
		assert_int_equal(h.nsteps, nsteps);
		for (int l = 0; l < L; l++) {
			tui_view_heat(v, l, heat);
			for (int e = 0; e < E; e++)
				assert_float_equal(heat[e], (double)sum[l * E + e], 0);
		}
		/* eplb's placement, fitted on the W steps before the window (none
		 * while the window holds the first step): tokens conserved, never
		 * below the proven bound */
		tui_view_work(v, -1, 0);
		const struct tui_layer_row *r = tui_view_rows(v);
		for (int l = 0; l < L; l++) {
			double before[4], after[4], mean, tb = 0, ta = 0, mx = 0;
			if (h.from <= 100) {
				assert_true(r[l].after_none);
				assert_int_equal(tui_view_loads(v, l, before, after, &mean), 0);
				continue;
			}
			assert_int_equal(tui_view_loads(v, l, before, after, &mean), 1);
			for (int k = 0; k < 4; k++) {
				tb += before[k];
				ta += after[k];
				mx = after[k] > mx ? after[k] : mx;
			}
			assert_float_equal(tb, ta, 1e-6);
			assert_float_equal(r[l].after, mx / mean, 1e-9);
			{
				/* the placement eplb fits on the W steps before the
				 * window, from the static layout, scored on the window */
				uint64_t psum[3 * 8];
				double ph[8], wl[4];
				int32_t cur[8], p2l[8];
				struct util_err err = UTIL_ERR_INIT;
				assert_int_equal(store_window_sum(f.r, &f.run, h.from - W, h.from - 1, 0,
								  psum, NULL), 0);
				for (int e = 0; e < E; e++)
					ph[e] = (double)psum[l * E + e];
				analyze_static_phy2log(E, 4, 2, cur);
				struct analyze_place_in in = { .experts = E, .ranks = 4, .slots = 2,
							       .heat = ph, .current = cur,
							       .max_moves = -1 };
				assert_int_equal(analyze_place(analyze_algo_find("eplb"), &in, p2l,
							       &err), 0);
				tui_view_heat(v, l, heat);
				double wm = analyze_device_load(heat, E, p2l, 4, 2, NULL, wl);
				assert_float_equal(r[l].after, wm / mean, 1e-9);
			}
			tui_view_heat(v, l, heat);
			assert_true(mx >= analyze_lower_bound(heat, E, 4, 2) - 1e-9);
			assert_true(r[l].after_fresh);
			assert_true(r[l].moves >= 0);
		}
	}
	/* scrubbing back moves the window and its sums; following returns */
	int64_t last = h.to;
	tui_view_scrub(v, -5);
	assert_int_equal(tui_view_poll(v, 0), 1);
	tui_view_header(v, &h);
	assert_false(h.follow);
	assert_int_equal(h.to, last - 5);
	assert_int_equal(h.state, TUI_STATE_SCRUB);
	assert_int_equal(store_window_sum(f.r, &f.run, h.from, h.to, 0, sum, NULL), 0);
	tui_view_heat(v, 1, heat);
	for (int e = 0; e < E; e++)
		assert_float_equal(heat[e], (double)sum[E + e], 0);
	/* a smaller window after a bigger one */
	tui_view_set_window(v, 4);
	assert_int_equal(tui_view_poll(v, 0), 1);
	tui_view_header(v, &h);
	assert_int_equal(h.from, last - 5 - 3);
	assert_int_equal(store_window_sum(f.r, &f.run, h.from, h.to, 0, sum, NULL), 0);
	tui_view_heat(v, 2, heat);
	for (int e = 0; e < E; e++)
		assert_float_equal(heat[e], (double)sum[2 * E + e], 0);
	tui_view_scrub(v, 1000);
	assert_int_equal(tui_view_poll(v, 0), 1);
	tui_view_header(v, &h);
	assert_true(h.follow);
	assert_int_equal(h.to, last);
	tui_view_free(v);
	fixture_close(&f);
}

/* The window end moves: "after" is refitted once it moved far enough. */
static void test_tui_view_refit(void **state)
{
	(void)state;
	struct fixture f;
	uint32_t c[4] = { 10, 0, 0, 0 };
	int64_t af, at;

	fixture_open(&f, 1, 4, 2, 2);
	struct tui_view *v = view_new(&f, "eplb", 4);
	tui_view_set_refit(v, 3, 0);
	for (int64_t k = 0; k < 4; k++)
		append(&f, k, c);
	tui_view_poll(v, 0);
	assert_int_equal(tui_view_work(v, 0, 0), 0);
	tui_view_after_window(v, 0, &af, &at);
	assert_int_equal(at, INT64_MIN); /* window [0, 3]: nothing before it */
	for (int64_t k = 4; k < 8; k++)
		append(&f, k, c);
	tui_view_poll(v, 0);
	tui_view_work(v, 0, 0);
	tui_view_after_window(v, 0, &af, &at);
	assert_int_equal(af, 0); /* window [4, 7]: fitted on [0, 3] */
	assert_int_equal(at, 3);
	append(&f, 8, c);
	append(&f, 9, c);
	tui_view_poll(v, 0);
	tui_view_work(v, 0, 0);
	tui_view_after_window(v, 0, &af, &at);
	assert_int_equal(at, 3); /* moved 2 < 3 steps: kept */
	append(&f, 10, c);
	tui_view_poll(v, 0);
	tui_view_work(v, 0, 0);
	tui_view_after_window(v, 0, &af, &at);
	assert_int_equal(af, 3); /* window [7, 10]: fitted on [3, 6] */
	assert_int_equal(at, 6);
	/* a new algorithm refits at once */
	tui_view_set_algo(v, analyze_algo_find("static"));
	assert_int_equal(tui_view_work(v, 0, 0), 0);
	assert_int_equal(tui_view_rows(v)[0].moves, 0);
	tui_view_free(v);
	fixture_close(&f);
}

/* A database locked by another connection: the poll returns at once with
 * "waiting" and the data it had; once unlocked, it reads on. */
static void test_tui_view_locked(void **state)
{
	(void)state;
	struct fixture f;
	uint32_t c[4] = { 1, 2, 3, 4 };
	struct tui_header h;
	sqlite3 *lk = NULL;

	struct util_err err = UTIL_ERR_INIT;
	fixture_open(&f, 1, 4, 2, 2);
	append(&f, 0, c);
	/* in WAL mode readers are never locked out; a trace in rollback
	 * journal mode (copied, or written by another tool) can be */
	store_free(f.r);
	store_free(f.w);
	assert_int_equal(sqlite3_open(f.path, &lk), SQLITE_OK);
	assert_int_equal(sqlite3_exec(lk, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(lk);
	assert_int_equal(store_open(f.path, 0, &f.w, &err), 0);
	assert_int_equal(store_open(f.path, STORE_READONLY, &f.r, &err), 0);
	struct tui_view *v = view_new(&f, "static", 8);
	assert_int_equal(tui_view_poll(v, 0), 1);
	append(&f, 1, c);
	assert_int_equal(sqlite3_open(f.path, &lk), SQLITE_OK);
	assert_int_equal(sqlite3_exec(lk, "BEGIN EXCLUSIVE; UPDATE runs SET source = 'x'", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	double t0 = util_now();
	assert_int_equal(tui_view_poll(v, 0), 0);
	assert_true(util_now() - t0 < 0.5); /* no waiting on the lock */
	tui_view_header(v, &h);
	assert_int_equal(h.state, TUI_STATE_WAITING);
	assert_int_equal(h.last_step, 0);
	assert_int_equal(h.nsteps, 1);
	sqlite3_exec(lk, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(lk);
	assert_int_equal(tui_view_poll(v, 0), 1);
	tui_view_header(v, &h);
	assert_int_equal(h.last_step, 1);
	assert_int_not_equal(h.state, TUI_STATE_WAITING);
	tui_view_free(v);
	fixture_close(&f);
}

/* A recorded deployed placement is what "now" measures and what moves
 * count from; a newer one is picked up while following. */
static void test_tui_view_deployed(void **state)
{
	(void)state;
	struct fixture f;
	const uint32_t s0[4] = { 8, 4, 2, 2 }, s1[4] = { 5, 5, 6, 4 };
	const int32_t balanced[4] = { 0, 3, 1, 2 }, other[4] = { 1, 2, 0, 3 };
	struct util_buf b = UTIL_BUF_INIT;
	struct tui_header h;

	fixture_open(&f, 1, 4, 2, 2);
	assert_int_equal(store_deployed_set(f.w, &f.run, 0, 2, 2, balanced), 0);
	for (int64_t k = 0; k < 8; k++)
		append(&f, k, k % 2 ? s1 : s0);
	struct tui_view *v = view_new(&f, "eplb", 4);
	assert_int_equal(tui_view_poll(v, 0), 1);
	tui_view_work(v, 0, 0);
	tui_view_header(v, &h);
	assert_true(h.deployed);
	assert_int_equal(h.deployed_from, 0);
	/* window [4, 7] and the steps before it both [26,18,16,12]: {13,6} and
	 * {9,8} twice, 38 and 34 of mean 36; eplb finds the same */
	const struct tui_layer_row *r = tui_view_rows(v);
	assert_float_equal(r[0].now, 38.0 / 36.0, 1e-12);
	assert_float_equal(r[0].after, 38.0 / 36.0, 1e-12);
	assert_int_equal(r[0].moves, 0);
	tui_view_json(v, 0, &b);
	assert_non_null(strstr(b.data, "\"placement\": \"deployed\", \"deployed_from\": 0"));
	util_buf_release(&b);
	/* the engine deploys {9,8} / {13,6} swapped across ranks... */
	assert_int_equal(store_deployed_set(f.w, &f.run, 8, 2, 2, other), 0);
	append(&f, 8, s1);
	usleep(2100 * 1000); /* the deployed placement is looked up every 2 s */
	assert_int_equal(tui_view_poll(v, 0), 1);
	tui_view_work(v, 0, 0);
	tui_view_header(v, &h);
	assert_int_equal(h.deployed_from, 8);
	/* window [5, 8] = [23,19,20,14]: ranks {1,2} = 39, {0,3} = 37 of mean
	 * 38; eplb refitted on [1, 4] = [26,18,16,12] pairs them the same */
	r = tui_view_rows(v);
	assert_float_equal(r[0].now, 39.0 / 38.0, 1e-12);
	assert_float_equal(r[0].after, 39.0 / 38.0, 1e-12);
	assert_int_equal(r[0].moves, 0); /* matched to the new deployment */
	tui_view_free(v);
	fixture_close(&f);
}

/* The snapshot JSON parses and says what the frame shows. */
static void test_tui_view_json(void **state)
{
	(void)state;
	struct fixture f;
	const uint32_t s0[4] = { 8, 4, 2, 2 }, s1[4] = { 5, 5, 6, 4 };
	struct util_buf b = UTIL_BUF_INIT;
	struct json_object *o, *x, *sel;

	fixture_open(&f, 1, 4, 2, 2);
	snprintf(f.run.name, sizeof(f.run.name), "a \"quoted\" name");
	for (int64_t k = 0; k < 8; k++)
		append(&f, k, k % 2 ? s1 : s0);
	struct tui_view *v = view_new(&f, "eplb", 4);
	tui_view_poll(v, 0);
	tui_view_work(v, 0, 0);
	tui_view_json(v, 0, &b);
	o = json_tokener_parse(b.data);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "run", &x));
	assert_true(json_object_object_get_ex(o, "selected", &sel));
	assert_true(json_object_object_get_ex(sel, "before", &x));
	assert_int_equal(json_object_array_length(x), 2);
	assert_float_equal(json_object_get_double(json_object_array_get_idx(x, 0)), 44, 1e-9);
	assert_float_equal(json_object_get_double(json_object_array_get_idx(x, 1)), 28, 1e-9);
	assert_true(json_object_object_get_ex(sel, "mean", &x));
	assert_float_equal(json_object_get_double(x), 36, 1e-9);
	/* eplb fitted on steps 0-3, [26,18,16,12] over 2 ranks x 2 slots:
	 * {13,6} and {9,8} twice; on the window [4, 7] (the same heat) 38, 34 */
	assert_true(json_object_object_get_ex(sel, "imbalance_after", &x));
	assert_float_equal(json_object_get_double(x), 38.0 / 36.0, 1e-6);
	assert_true(json_object_object_get_ex(sel, "after_window", &x));
	assert_true(json_object_object_get_ex(x, "to", &x));
	assert_int_equal(json_object_get_int64(x), 3);
	assert_true(json_object_object_get_ex(sel, "heat", &x));
	assert_int_equal(json_object_array_length(x), 4);
	assert_true(json_object_object_get_ex(o, "header", &x));
	assert_true(json_object_object_get_ex(x, "last_step", &x));
	assert_int_equal(json_object_get_int64(x), 7);
	assert_true(json_object_object_get_ex(o, "layers", &x));
	assert_int_equal(json_object_array_length(x), 1);
	json_object_put(o);
	util_buf_release(&b);
	tui_view_free(v);
	fixture_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tui_layout_sizes),
		cmocka_unit_test(test_tui_layout_folds),
		cmocka_unit_test(test_tui_layout_grid),
		cmocka_unit_test(test_tui_text_fit),
		cmocka_unit_test(test_tui_rows_sort),
		cmocka_unit_test(test_tui_helpers),
		cmocka_unit_test(test_tui_view_hand_trace),
		cmocka_unit_test(test_tui_view_follows_growth),
		cmocka_unit_test(test_tui_view_refit),
		cmocka_unit_test(test_tui_view_locked),
		cmocka_unit_test(test_tui_view_json),
		cmocka_unit_test(test_tui_view_deployed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

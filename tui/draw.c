/*
 * draw.c: the screen of `moetrace top`.  tui_screen_draw() erases each
 * panel's window, draws into it and marks it with wnoutrefresh(); one
 * doupdate() per frame then sends only what changed, so nothing flickers.
 * Panel rectangles come from tui_layout_compute(); colours from the
 * scheme table below (with a monochrome column for terminals without
 * colour, TERM=vt100, or NO_COLOR); glyphs from one of two sets, Unicode
 * blocks or ASCII.
 */
#include "tui/tui_int.h"

#include <ctype.h>
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- colours -------------------------------------------------------------- */

enum tui_color {
	TUI_C_NORMAL = 0,
	TUI_C_TITLE,   /* panel titles */
	TUI_C_HEADER,  /* header lines */
	TUI_C_STATUS,  /* the status line */
	TUI_C_SELECT,  /* the selected table row */
	TUI_C_GOOD,    /* imbalance < 1.10 */
	TUI_C_WARN,    /* imbalance < 1.30 */
	TUI_C_BAD,     /* imbalance >= 1.30, load above the mean */
	TUI_C_BEFORE,  /* bars under the deployed placement */
	TUI_C_AFTER,   /* bars under the algorithm's placement */
	TUI_C_MEAN,    /* the mean marker */
	TUI_C_DIM,     /* figures not yet fitted on the current window */
	TUI_C_PREFILL, /* prefill steps in the trend */
	TUI_C_FKEY,    /* the function-key bar's labels */
	TUI_C_COUNT,
};

/* clang-format off */
static const struct {
	short fg, bg;
	attr_t colour;  /* extra attributes with colour */
	attr_t mono;    /* attributes without colour */
} scheme[TUI_C_COUNT] = {
	[TUI_C_NORMAL] = { -1,            -1,          0,      0 },
	[TUI_C_TITLE]  = { COLOR_BLACK,   COLOR_CYAN,  0,      A_BOLD | A_UNDERLINE },
	[TUI_C_HEADER] = { COLOR_CYAN,    -1,          A_BOLD, A_BOLD },
	[TUI_C_STATUS] = { COLOR_BLACK,   COLOR_WHITE, 0,      A_REVERSE },
	[TUI_C_SELECT] = { COLOR_BLACK,   COLOR_YELLOW, 0,     A_REVERSE },
	[TUI_C_GOOD]   = { COLOR_GREEN,   -1,          0,      0 },
	[TUI_C_WARN]   = { COLOR_YELLOW,  -1,          0,      0 },
	[TUI_C_BAD]    = { COLOR_RED,     -1,          A_BOLD, A_BOLD },
	[TUI_C_BEFORE] = { COLOR_BLUE,    -1,          0,      0 },
	[TUI_C_AFTER]  = { COLOR_GREEN,   -1,          0,      0 },
	[TUI_C_MEAN]   = { COLOR_MAGENTA, -1,          A_BOLD, A_BOLD },
	[TUI_C_DIM]    = { -1,            -1,          A_DIM,  A_DIM },
	[TUI_C_PREFILL]= { COLOR_CYAN,    -1,          A_UNDERLINE, A_UNDERLINE },
	[TUI_C_FKEY]   = { COLOR_BLACK,   COLOR_CYAN,  0,      A_REVERSE },
};
/* clang-format on */

/* ---- glyphs ----------------------------------------------------------------- */

struct glyphs {
	const char *eighth[9]; /* horizontal bar cells: 0/8 .. 8/8 */
	const char *spark[8];  /* sparkline levels */
	const char *heat[5];   /* heat strip levels */
	const char *mean;      /* the mean marker */
	const char *up, *down;
};

/* clang-format off */
static const struct glyphs unicode = {
	{ " ", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589", "\u2588" },
	{ "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588" },
	{ " ", "\u2591", "\u2592", "\u2593", "\u2588" },
	"\u2502", "\u2191", "\u2193",
};
static const struct glyphs ascii = {
	{ " ", " ", " ", " ", "#", "#", "#", "#", "#" },
	{ "_", ".", "-", "-", "=", "+", "*", "#" },
	{ " ", ".", ":", "+", "#" },
	"|", "^", "v",
};
/* clang-format on */

/* The glyphs as ncurses wide cells, converted once (drawing them needs no
 * multibyte conversion per cell). */
struct cells {
	cchar_t eighth[9], spark[8], heat[5], mean, blank, over, under, rule;
};

struct tui_screen {
	SCREEN *scr;
	const struct glyphs *g;
	struct cells gc;
	int colour;
	struct tui_layout lay;
	WINDOW *win[TUI_PANEL_COUNT];
	double *a, *b, *c; /* scratch */
	size_t scratch;
	/* what the last full frame was drawn from: while the view and the
	 * user's choices stay, only the header (its state and ages) is drawn */
	int drawn;
	unsigned drawn_version;
	struct tui_ui drawn_ui;
	int drawn_msg; /* its status line showed ui.msg */
};

static int screen_active;

static void cell(cchar_t *c, const char *utf8)
{
	wchar_t wc[4] = { 0 };
	if (mbstowcs(wc, utf8, 3) == (size_t)-1) {
		wc[0] = L'?';
		wc[1] = 0;
	}
	setcchar(c, wc, A_NORMAL, 0, NULL);
}

static void cells_init(struct cells *c, const struct glyphs *g)
{
	for (int i = 0; i < 9; i++)
		cell(&c->eighth[i], g->eighth[i]);
	for (int i = 0; i < 8; i++)
		cell(&c->spark[i], g->spark[i]);
	for (int i = 0; i < 5; i++)
		cell(&c->heat[i], g->heat[i]);
	cell(&c->mean, g->mean);
	cell(&c->rule, g == &ascii ? "-" : "\u2500");
	cell(&c->blank, " ");
	/* ASCII bars: '=' up to the mean, '#' beyond it */
	cell(&c->under, "=");
	cell(&c->over, "#");
}

static attr_t col(const struct tui_screen *sc, int c)
{
	if (sc->colour)
		return COLOR_PAIR(c + 1) | scheme[c].colour;
	return scheme[c].mono;
}

static int imb_color(double x)
{
	return x < 1.10 ? TUI_C_GOOD : x < 1.30 ? TUI_C_WARN : TUI_C_BAD;
}

int tui_term_is_ascii(const char *term)
{
	if (!term || !*term)
		return 1;
	/* "vt" and a digit: DEC terminals; not vte-256color (GNOME's) */
	return (term[0] == 'v' && term[1] == 't' && isdigit((unsigned char)term[2])) ||
	       !strcmp(term, "dumb") || !strcmp(term, "ansi");
}

/* ---- setup ---------------------------------------------------------------------- */

static void free_windows(struct tui_screen *sc)
{
	for (int i = 0; i < TUI_PANEL_COUNT; i++) {
		if (sc->win[i])
			delwin(sc->win[i]);
		sc->win[i] = NULL;
	}
}

void tui_screen_resize(struct tui_screen *sc)
{
	int rows, cols;

	free_windows(sc);
	getmaxyx(stdscr, rows, cols);
	tui_layout_compute(rows, cols, &sc->lay);
	for (int i = 0; i < TUI_PANEL_COUNT; i++) {
		const struct tui_rect *r = &sc->lay.panel[i];
		if (r->h > 0 && r->w > 0)
			sc->win[i] = newwin(r->h, r->w, r->y, r->x);
	}
	/* the old contents are gone: repaint everything once */
	clearok(curscr, TRUE);
	sc->drawn = 0;
}

struct tui_screen *tui_screen_new(int use_ascii, int mono)
{
	struct tui_screen *sc;
	SCREEN *scr;

	/* newterm, not initscr: an unknown TERM is an error to report, not
	 * an exit inside ncurses */
	if (!(scr = newterm(NULL, stdout, stdin)))
		return NULL;
	sc = xcalloc(1, sizeof(*sc));
	sc->scr = scr;
	screen_active = 1;
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	/* presses, not clicks: a click waits for the release, and tmux
	 * and most terminals report the press at once */
	mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
	mouseinterval(0);
	sc->g = use_ascii ? &ascii : &unicode;
	cells_init(&sc->gc, sc->g);
	sc->colour = !mono && has_colors();
	if (sc->colour) {
		start_color();
		use_default_colors();
		for (int i = 0; i < TUI_C_COUNT; i++)
			init_pair((short)(i + 1), scheme[i].fg, scheme[i].bg);
	}
	refresh();
	tui_screen_resize(sc);
	return sc;
}

void tui_screen_end(void)
{
	if (!screen_active)
		return;
	screen_active = 0;
	curs_set(1);
	endwin();
}

void tui_screen_free(struct tui_screen *sc)
{
	if (!sc)
		return;
	free_windows(sc);
	tui_screen_end();
	delscreen(sc->scr);
	free(sc->a);
	free(sc->b);
	free(sc->c);
	free(sc);
}

int tui_screen_table_rows(const struct tui_screen *sc)
{
	int h = sc->lay.panel[TUI_PANEL_TABLE].h - 2;
	return h > 1 ? h : 1;
}

static void scratch(struct tui_screen *sc, size_t n)
{
	if (n <= sc->scratch)
		return;
	sc->a = xrealloc(sc->a, n * sizeof(double));
	sc->b = xrealloc(sc->b, n * sizeof(double));
	sc->c = xrealloc(sc->c, n * sizeof(double));
	sc->scratch = n;
}

/* ---- drawing helpers -------------------------------------------------------------- */

/* Bytes of s that fill at most `cells` cells (waddnstr counts bytes). */
static int bytes_for(const char *s, int cells)
{
	int i = 0, w = 0;

	for (; s[i]; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && w++ == cells)
			break;
	return i;
}

/* A line of text at (y, x), clipped to the window. */
static void put(WINDOW *w, int y, int x, attr_t a, const char *s)
{
	int cols = getmaxx(w);
	if (x >= cols || y >= getmaxy(w))
		return;
	wattrset(w, a);
	mvwaddnstr(w, y, x, s, bytes_for(s, cols - x));
	wattrset(w, A_NORMAL);
}

static void putf(WINDOW *w, int y, int x, attr_t a, const char *fmt, ...) UTIL_PRINTF(5, 6);

static void putf(WINDOW *w, int y, int x, attr_t a, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	put(w, y, x, a, buf);
}

/* A title bar across the window's first line. */
static void title(struct tui_screen *sc, WINDOW *w, const char *s)
{
	int cols = getmaxx(w);
	wattrset(w, col(sc, TUI_C_TITLE));
	mvwhline(w, 0, 0, ' ', cols);
	mvwaddnstr(w, 0, 0, s, bytes_for(s, cols));
	wattrset(w, A_NORMAL);
}

/* A sparkline of n values in [lo, hi] at (y, x), one cell each. */
static void sparkline(struct tui_screen *sc, WINDOW *w, int y, int x, const double *v, int n,
		      double lo, double hi, const unsigned char *phase)
{
	wmove(w, y, x);
	for (int i = 0; i < n; i++) {
		unsigned ul = phase && phase[i] == STORE_PHASE_PREFILL ? A_UNDERLINE : 0;
		if (isnan(v[i])) { /* a step the layer got no token in: not scored */
			wattrset(w, A_NORMAL | ul);
			wadd_wch(w, &sc->gc.blank);
			continue;
		}
		double f = hi > lo ? (v[i] - lo) / (hi - lo) : 0;
		int k = (int)(f * 7 + 0.5);
		k = k < 0 ? 0 : k > 7 ? 7 : k;
		/* prefill steps underlined */
		wattrset(w, col(sc, imb_color(v[i])) | ul);
		wadd_wch(w, &sc->gc.spark[k]);
	}
	wattrset(w, A_NORMAL);
}

/* ---- panels ------------------------------------------------------------------------ */

struct tui_layer_row *tui_ui_rows(struct tui_view *v, const struct tui_ui *ui)
{
	int L = tui_view_layers(v);
	struct tui_layer_row *rows = xmallocarray((size_t)L, sizeof(*rows));

	memcpy(rows, tui_view_rows(v), (size_t)L * sizeof(*rows));
	tui_rows_sort(rows, L, ui->sort);
	if (ui->reverse)
		for (int i = 0, j = L - 1; i < j; i++, j--) {
			struct tui_layer_row t = rows[i];
			rows[i] = rows[j];
			rows[j] = t;
		}
	return rows;
}

static void draw_header(struct tui_screen *sc, WINDOW *w, struct tui_view *v, struct tui_ui *ui)
{
	struct tui_header h;
	char state[64], buf[512];
	int W = getmaxx(w);

	tui_view_header(v, &h);
	if (ui->paused)
		snprintf(state, sizeof(state), "PAUSED");
	else if (h.state == TUI_STATE_LOADING)
		snprintf(state, sizeof(state), "loading %lld steps",
			 (long long)h.to - h.from + 1);
	else
		snprintf(state, sizeof(state), "%s", tui_state_name(h.state));
	/* fitted to the width: fields are shortened or left out whole, the
	 * shape ("58 layers") never cut */
	tui_text_header(buf, sizeof(buf), W, &h);
	put(w, 0, 0, col(sc, TUI_C_HEADER), buf);
	if (h.last_step == INT64_MIN) {
		putf(w, 1, 0, A_NORMAL, "no steps recorded yet  [%s]", state);
		return;
	}
	int bad = ui->paused || h.state == TUI_STATE_WAITING || h.state == TUI_STATE_ERROR;
	tui_text_status(buf, sizeof(buf), W, &h, state);
	put(w, 1, 0, A_NORMAL, buf);
	/* "step N" bold, "[state]" coloured */
	char *br = strchr(buf, '[');
	if (br) {
		char *end = strchr(br, ']');
		int x = (int)(br - buf);
		if (end)
			end[1] = 0;
		*br = 0;
		put(w, 1, 0, A_BOLD, buf);
		*br = '[';
		put(w, 1, x, bad ? col(sc, TUI_C_BAD) | A_REVERSE : col(sc, TUI_C_GOOD), br);
	}
}

/* The table's columns: name, first cell, width (right-aligned names), sort. */
static const struct {
	const char *name;
	int x, w, sort;
} tcol[] = {
	{ "layer", 0, 5, TUI_SORT_LAYER }, { "now", 6, 6, TUI_SORT_NOW },
	{ "after", 13, 6, TUI_SORT_AFTER }, { "gain", 20, 6, TUI_SORT_GAIN },
	{ "hot", 27, 5, -1 },               { "share", 33, 6, -1 },
	{ "moves", 40, 6, TUI_SORT_MOVES },
};
#define TREND_X 48

static void draw_table(struct tui_screen *sc, WINDOW *w, struct tui_view *v, struct tui_ui *ui,
		       const struct tui_layer_row *rows, int L)
{
	int H = getmaxy(w), W = getmaxx(w), body = H - 2;
	int side = sc->lay.side, TW = side ? W - 1 : W; /* side by side: a rule on the right */
	struct tui_header h;
	char buf[512];

	tui_view_header(v, &h);
	tui_text_table_title(buf, sizeof(buf), W, &h, ui->sort, ui->reverse, sc->g == &ascii);
	title(sc, w, buf);
	/* column names, the sorted one underlined with its direction */
	for (size_t c = 0; c < UTIL_ARRAY_SIZE(tcol); c++) {
		int len = (int)strlen(tcol[c].name), x = tcol[c].x + tcol[c].w - len;
		if (c == 0)
			x = 0;
		put(w, 1, x, A_BOLD | (tcol[c].sort == ui->sort ? A_UNDERLINE : 0), tcol[c].name);
		if (tcol[c].sort == ui->sort)
			put(w, 1, c == 0 ? len : x - 1, A_BOLD,
			    tui_sort_glyph(ui->sort, ui->reverse, sc->g == &ascii));
	}
	put(w, 1, TREND_X, A_BOLD, "trend");
	if (side)
		for (int y = 1; y < H; y++)
			put(w, y, W - 1, col(sc, TUI_C_DIM), sc->g->mean);
	if (body <= 0)
		return;
	if (h.last_step == INT64_MIN) {
		put(w, 2, 0, col(sc, TUI_C_DIM), "waiting for the first step of the run");
		return;
	}
	/* keep the selection visible */
	int pos = 0;
	for (int i = 0; i < L; i++)
		if (rows[i].layer == ui->sel)
			pos = i;
	if (pos < ui->top)
		ui->top = pos;
	if (pos >= ui->top + body)
		ui->top = pos - body + 1;
	if (ui->top > L - body)
		ui->top = L - body > 0 ? L - body : 0;
	int tx = TREND_X + 6, tw = TW - tx;
	double *hist = NULL;
	unsigned char *ph = NULL;
	if (tw >= 4) {
		scratch(sc, (size_t)tw);
		hist = sc->c;
		ph = xmalloc((size_t)tw);
		tui_view_phases(v, ph, tw);
	}
	for (int i = 0; i < body && ui->top + i < L; i++) {
		const struct tui_layer_row *r = &rows[ui->top + i];
		int y = 2 + i, sel = r->layer == ui->sel;
		char after[32], gain[32], moves[32];
		if (isnan(r->now)) {
			/* no token in the window: nothing scored, nothing to gain */
			snprintf(after, sizeof(after), "%6s", "-");
			snprintf(gain, sizeof(gain), "%6s", "");
		} else if (r->moves >= 0 || r->after > 0) {
			snprintf(after, sizeof(after), "%6.3f", r->after);
			snprintf(gain, sizeof(gain), "%6.3f", r->now - r->after);
		} else {
			/* "-": no steps before the window to fit on */
			snprintf(after, sizeof(after), "%6s", r->after_none ? "-" : "...");
			snprintf(gain, sizeof(gain), "%6s", "");
		}
		if (r->moves >= 0)
			snprintf(moves, sizeof(moves), "%5lld", (long long)r->moves);
		else
			snprintf(moves, sizeof(moves), "%5s", "-");
		if (sel) {
			wattrset(w, col(sc, TUI_C_SELECT));
			mvwhline(w, y, 0, ' ', TW);
		}
		putf(w, y, 0, sel ? col(sc, TUI_C_SELECT) : A_NORMAL, "%5d ", r->layer);
		if (isnan(r->now))
			putf(w, y, 6, sel ? col(sc, TUI_C_SELECT) : col(sc, TUI_C_DIM), "%6s", "-");
		else
			putf(w, y, 6, sel ? col(sc, TUI_C_SELECT) : col(sc, imb_color(r->now)),
			     "%6.3f", r->now);
		putf(w, y, 13, sel ? col(sc, TUI_C_SELECT)
				   : r->after_fresh ? col(sc, imb_color(r->after)) : col(sc, TUI_C_DIM),
		     "%s", after);
		if (isnan(r->now)) /* no token: no hottest expert either (as balance) */
			putf(w, y, 20, sel ? col(sc, TUI_C_SELECT) : A_NORMAL, "%s %5s %6s  %s",
			     gain, "-", "-", moves);
		else
			putf(w, y, 20, sel ? col(sc, TUI_C_SELECT) : A_NORMAL,
			     "%s %5d %5.1f%%  %s", gain, r->hottest, 100.0 * r->hottest_share,
			     moves);
		if (hist) {
			int n = tui_view_history(v, r->layer, hist, tw);
			double lo = 1, hi = 1;
			int seen = 0;
			for (int k = 0; k < n; k++) {
				if (isnan(hist[k])) /* not scored */
					continue;
				lo = !seen || hist[k] < lo ? hist[k] : lo;
				hi = !seen || hist[k] > hi ? hist[k] : hi;
				seen = 1;
			}
			sparkline(sc, w, y, tx + (tw - n), hist, n, lo, hi, ph);
		}
	}
	free(ph);
}

/* A horizontal bar of `len` cells scaled so that `scale` fills it, with
 * the cells beyond the mean marked, and the mean marker where the bar
 * does not reach it. */
static void bar(struct tui_screen *sc, WINDOW *w, int y, int x, int len, double val, double mean,
		double scale, int c)
{
	int eighths = scale > 0 ? (int)(val / scale * len * 8 + 0.5) : 0;
	int mcol = scale > 0 ? (int)(mean / scale * len) : -1;

	if (eighths > len * 8)
		eighths = len * 8;
	wmove(w, y, x);
	for (int i = 0; i < len; i++) {
		int k = eighths - i * 8;
		k = k < 0 ? 0 : k > 8 ? 8 : k;
		if (k == 0 && i == mcol) {
			wattrset(w, col(sc, TUI_C_MEAN));
			wadd_wch(w, &sc->gc.mean);
			continue;
		}
		wattrset(w, col(sc, i > mcol && mcol >= 0 ? TUI_C_BAD : c));
		if (k > 0 && sc->g == &ascii)
			wadd_wch(w, i > mcol && mcol >= 0 ? &sc->gc.over : &sc->gc.under);
		else
			wadd_wch(w, &sc->gc.eighth[k]);
	}
	wattrset(w, A_NORMAL);
}

/* The bar rows: ranks r0..r1 each, or node > 0 for a node's rule line. */
struct bar_row {
	int r0, r1, node;
};

/* Rows of the bars for R ranks in `body` rows.  With the ranks per node
 * known, no row spans two nodes, and each node gets a rule line above its
 * ranks when they fit.  Returns the rows (at most body) and *group, the
 * most ranks one row shows. */
static int bar_rows(int R, int rpn, int body, struct bar_row *out, int *group)
{
	int n = 0;

	if (body <= 0)
		return 0;
	if (rpn <= 0 || rpn >= R) {
		int g = (R + body - 1) / body;
		for (int r = 0; r < R && n < body; r += g, n++)
			out[n] = (struct bar_row){ r, r + g - 1 < R ? r + g - 1 : R - 1, 0 };
		*group = g;
		return n;
	}
	int nodes = (R + rpn - 1) / rpn, g, rules = 1, k = 1;
	for (g = 1; g <= rpn; g++) /* with rules */
		if (nodes * ((rpn + g - 1) / g + 1) <= body)
			break;
	if (g > rpn) {
		rules = 0;
		for (g = 1; g <= rpn; g++)
			if (nodes * ((rpn + g - 1) / g) <= body)
				break;
	}
	if (g > rpn) { /* several nodes a row */
		k = (nodes + body - 1) / body;
		g = k * rpn;
	}
	*group = g;
	for (int nd = 0; nd < nodes && n < body; nd += k) {
		int end = (nd + k) * rpn < R ? (nd + k) * rpn : R;
		if (rules)
			out[n++] = (struct bar_row){ nd * rpn, end - 1, nd + 1 };
		for (int r = nd * rpn; r < end && n < body; r += g, n++)
			out[n] = (struct bar_row){ r, r + g - 1 < end ? r + g - 1 : end - 1, 0 };
	}
	return n;
}

static void draw_bars(struct tui_screen *sc, WINDOW *w, struct tui_view *v, struct tui_ui *ui)
{
	int H = getmaxy(w), W = getmaxx(w), R, body = H - 1;
	struct tui_header h;
	char buf[512], num[32];
	double mean;

	tui_view_header(v, &h);
	R = h.ranks;
	int rpn = h.run->ranks_per_node > 0 && h.run->ranks_per_node < R ? h.run->ranks_per_node : 0;
	scratch(sc, (size_t)R);
	int have = tui_view_loads(v, ui->sel, sc->a, sc->b, &mean);
	struct bar_row *rows = xmallocarray((size_t)(body > 0 ? body : 1), sizeof(*rows));
	int group = 1, nrows = bar_rows(R, rpn, body, rows, &group);
	tui_text_bars_title(buf, sizeof(buf), W, ui->sel, h.deployed ? "deployed" : "static",
			    h.algo, sc->g->mean, mean, group, rpn);
	title(sc, w, buf);
	int lw = 8, nw = 7, bw = (W - lw - 2 * nw - 2) / 2;
	if (body <= 0 || bw < 4) {
		free(rows);
		return;
	}
	double scale = mean;
	for (int r = 0; r < R; r++) {
		if (sc->a[r] > scale)
			scale = sc->a[r];
		if (have && sc->b[r] > scale)
			scale = sc->b[r];
	}
	int fitting_shown = 0;
	for (int i = 0; i < nrows; i++) {
		int r0 = rows[i].r0, r1 = rows[i].r1, y = 1 + i;
		if (rows[i].node) {
			/* a rule line naming the node and its ranks */
			snprintf(buf, sizeof(buf), "node %d: ranks %d-%d ", rows[i].node - 1, r0, r1);
			wattrset(w, col(sc, TUI_C_DIM));
			mvwhline_set(w, y, 0, &sc->gc.rule, W);
			put(w, y, 2, col(sc, TUI_C_DIM), buf);
			continue;
		}
		double bmax = 0, amax = 0;
		for (int r = r0; r <= r1; r++) {
			if (sc->a[r] > bmax)
				bmax = sc->a[r];
			if (sc->b[r] > amax)
				amax = sc->b[r];
		}
		if (r0 == r1)
			snprintf(buf, sizeof(buf), "r%-6d", r0);
		else
			snprintf(buf, sizeof(buf), "r%d-%d", r0, r1);
		/* without rule lines, nodes alternate bold and plain labels */
		put(w, y, 0, rpn && !(r0 / rpn % 2) && !(nrows && rows[0].node) ? A_BOLD : A_NORMAL,
		    buf);
		bar(sc, w, y, lw, bw, bmax, mean, scale, TUI_C_BEFORE);
		tui_fmt_num(num, sizeof(num), bmax);
		putf(w, y, lw + bw, A_NORMAL, " %*s ", nw - 1, num);
		if (have) {
			bar(sc, w, y, lw + bw + nw + 1, bw, amax, mean, scale, TUI_C_AFTER);
			tui_fmt_num(num, sizeof(num), amax);
			putf(w, y, lw + 2 * bw + nw + 1, A_NORMAL, " %*s", nw - 1, num);
		} else if (!fitting_shown) {
			put(w, y, lw + bw + nw + 1, col(sc, TUI_C_DIM), "(fitting...)");
			fitting_shown = 1;
		}
	}
	free(rows);
}

static void draw_spark(struct tui_screen *sc, WINDOW *w, struct tui_view *v, struct tui_ui *ui)
{
	int H = getmaxy(w), W = getmaxx(w), rows = H - 1;
	char buf[512];

	scratch(sc, (size_t)W);
	unsigned char *ph = xmalloc((size_t)W);
	int n = tui_view_history(v, ui->sel, sc->a, W);
	tui_view_phases(v, ph, n);
	double lo = 1.0, hi = 1.0, mn = NAN, now = NAN;
	int npre = 0;
	for (int i = 0; i < n; i++) {
		npre += ph[i] == STORE_PHASE_PREFILL;
		if (isnan(sc->a[i])) /* a step the layer got no token in */
			continue;
		if (sc->a[i] > hi)
			hi = sc->a[i];
		if (isnan(mn) || sc->a[i] < mn)
			mn = sc->a[i];
		now = sc->a[i];
	}
	/* prefill steps: a marker row above the graph when it has three
	 * rows or more, else underlined cells */
	int marks = rows >= 3 && npre > 0;
	tui_text_spark_title(buf, sizeof(buf), W, ui->sel, n, now, mn, hi, npre,
			     marks ? "p" : NULL);
	title(sc, w, buf);
	if (rows <= 0 || n == 0) {
		free(ph);
		return;
	}
	int x0 = W - n;
	/* the graph starts a little below the smallest value, so that the
	 * variation shows (the title gives the figures) */
	if (isnan(mn))
		mn = 1.0;
	lo = mn - (hi - mn) * 0.15 > 0 ? mn - (hi - mn) * 0.15 : 0;
	if (rows == 1) {
		sparkline(sc, w, 1, x0, sc->a, n, lo, hi, ph);
		free(ph);
		return;
	}
	if (marks) {
		for (int i = 0; i < n; i++)
			if (ph[i] == STORE_PHASE_PREFILL)
				put(w, 1, x0 + i, col(sc, TUI_C_PREFILL), "p");
		rows--;
	}
	/* a small bar graph: each column's height in eighths of a row */
	for (int i = 0; i < n; i++) {
		double f = hi > lo ? (sc->a[i] - lo) / (hi - lo) : 0;
		int e = isnan(sc->a[i]) ? 0 : (int)(f * rows * 8 + 0.5); /* not scored: blank */
		if (e < 1 && !isnan(sc->a[i]))
			e = 1;
		wattrset(w, col(sc, imb_color(sc->a[i])) |
				    (!marks && ph[i] == STORE_PHASE_PREFILL ? A_UNDERLINE : 0));
		for (int rr = 0; rr < rows; rr++) {
			int k = e - rr * 8;
			k = k < 0 ? 0 : k > 8 ? 8 : k;
			const cchar_t *g = k == 0 ? &sc->gc.blank
					   : k == 8 ? &sc->gc.spark[7] : &sc->gc.spark[k - 1];
			mvwadd_wch(w, H - 1 - rr, x0 + i, g);
		}
	}
	wattrset(w, A_NORMAL);
	free(ph);
}

static void draw_heat(struct tui_screen *sc, WINDOW *w, struct tui_view *v, struct tui_ui *ui)
{
	int H = getmaxy(w), W = getmaxx(w), rows = H - 1;
	const struct store_run *run;
	struct tui_header h;
	char buf[256];

	tui_view_header(v, &h);
	run = h.run;
	int E = run->experts, cells = rows * W;
	if (rows <= 0 || W <= 0) /* getmaxy/getmaxx give -1 for no window: -2 x -1 > 0 */
		return;
	int group = (E + cells - 1) / cells;
	scratch(sc, (size_t)E);
	tui_view_heat(v, ui->sel, sc->a);
	double tot = 0, mx = 0;
	int hot = 0;
	for (int e = 0; e < E; e++) {
		tot += sc->a[e];
		if (sc->a[e] > sc->a[hot])
			hot = e;
	}
	int nc = (E + group - 1) / group;
	int nrows = (nc + W - 1) / W, per_row = (nc + nrows - 1) / nrows; /* rows evenly filled */
	for (int i = 0; i < nc; i++) {
		double s = 0;
		for (int e = i * group; e < E && e < (i + 1) * group; e++)
			s += sc->a[e];
		sc->b[i] = s;
		if (s > mx)
			mx = s;
	}
	tui_text_heat_title(buf, sizeof(buf), W, ui->sel, group, hot,
			    tot > 0 ? 100.0 * sc->a[hot] / tot : 0.0, sc->g->heat + 1);
	title(sc, w, buf);
	/* levels relative to the mean cell: a skewed layer shows its hot
	 * experts without flattening the rest to blanks */
	double mean = nc ? tot / nc : 0;
	(void)mx;
	for (int i = 0; i < nc; i++) {
		double rel = mean > 0 ? sc->b[i] / mean : 0;
		int k = sc->b[i] <= 0 ? 0 : rel < 0.75 ? 1 : rel < 1.5 ? 2 : rel < 3 ? 3 : 4;
		int c = rel >= 3 ? TUI_C_BAD : rel >= 1.5 ? TUI_C_WARN : TUI_C_GOOD;
		wattrset(w, col(sc, c));
		mvwadd_wch(w, 1 + i / per_row, i % per_row, &sc->gc.heat[k]);
	}
	wattrset(w, A_NORMAL);
}

static void draw_status(struct tui_screen *sc, WINDOW *w, struct tui_view *v, struct tui_ui *ui)
{
	const struct tui_fkey *k[16];
	int W = getmaxx(w), x = 0;

	(void)v;
	wbkgdset(w, col(sc, TUI_C_STATUS) | ' ');
	werase(w);
	if (ui->prompt) {
		putf(w, 0, 0, col(sc, TUI_C_STATUS) | A_BOLD,
		     "jump to layer (0-%d, Enter to go, Esc to cancel): %s_",
		     tui_view_layers(v) - 1, ui->input);
		return;
	}
	if (ui->msg[0] && util_now() < ui->msg_until) {
		put(w, 0, 0, col(sc, TUI_C_STATUS) | A_BOLD, ui->msg);
		return;
	}
	/* htop's bar: the key plain, its label in the bar's colour */
	wbkgdset(w, A_NORMAL | ' ');
	werase(w);
	int nk = tui_fkeys_fit(W, k);
	for (int i = 0; i < nk; i++) {
		char key[8], label[16];
		snprintf(key, sizeof(key), "F%d", k[i]->fn);
		snprintf(label, sizeof(label), "%-*s", k[i]->fn >= 10 ? 5 : 6,
			 k[i]->fn == 9 && ui->paused ? "Resume" : k[i]->label);
		put(w, 0, x, A_NORMAL, key);
		put(w, 0, x + (int)strlen(key), col(sc, TUI_C_FKEY), label);
		x += 8;
	}
}

static void draw_help(struct tui_screen *sc, const struct tui_key *keys, int nkeys)
{
	int rows = sc->lay.rows, cols = sc->lay.cols;
	int h = nkeys + 8, wd = 76;
	if (h > rows - 2)
		h = rows - 2;
	if (wd > cols - 2)
		wd = cols - 2;
	WINDOW *w = newwin(h, wd, (rows - h) / 2, (cols - wd) / 2);
	if (!w)
		return;
	werase(w);
	if (sc->g == &ascii) {
		box(w, '|', '-');
	} else {
		/* Unicode line drawing, not the terminal's alternate charset */
		static const wchar_t *const part[8] = { L"\u2502", L"\u2502", L"\u2500",
							L"\u2500", L"\u250c", L"\u2510",
							L"\u2514", L"\u2518" };
		cchar_t c[8];
		for (int i = 0; i < 8; i++)
			setcchar(&c[i], part[i], A_NORMAL, 0, NULL);
		wborder_set(w, &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]);
	}
	put(w, 0, 2, A_BOLD, " moetrace top: keys ");
	int y = 1;
	for (int i = 0; i < nkeys && y < h - 1; i++, y++) {
		char names[40] = "";
		size_t len = 0;
		for (int k = 0; k < 6 && keys[i].keys[k] && len < sizeof(names) - 8; k++) {
			const char *kn = keyname(keys[i].keys[k]);
			if (keys[i].keys[k] == ' ')
				kn = "space";
			else if (keys[i].keys[k] == KEY_UP)
				kn = "up";
			else if (keys[i].keys[k] == KEY_DOWN)
				kn = "down";
			else if (keys[i].keys[k] == KEY_PPAGE)
				kn = "pgup";
			else if (keys[i].keys[k] == KEY_NPAGE)
				kn = "pgdn";
			else if (keys[i].keys[k] == KEY_HOME)
				kn = "home";
			else if (keys[i].keys[k] == KEY_END)
				kn = "end";
			char fk[8];
			if (keys[i].keys[k] >= KEY_F(1) && keys[i].keys[k] <= KEY_F(12)) {
				snprintf(fk, sizeof(fk), "F%d", keys[i].keys[k] - KEY_F0);
				kn = fk;
			}
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
						len ? " " : "", kn ? kn : "?");
		}
		putf(w, y, 2, A_BOLD, "%-22s", names);
		put(w, y, 25, A_NORMAL, keys[i].help);
	}
	if (y < h - 1)
		y++;
	if (y < h - 1)
		put(w, y++, 2, A_NORMAL,
		    "imbalance = max / mean device load over the window (1.000 = perfect);");
	if (y < h - 1)
		put(w, y++, 2, A_NORMAL,
		    "a replicated expert's tokens are split evenly among its replicas;");
	if (y < h - 1)
		put(w, y++, 2, A_NORMAL,
		    "after: fitted on the window's steps before it, scored on the window.");
	if (y < h - 1)
		put(w, y++, 2, A_NORMAL,
		    "mouse: a row selects its layer, a column name sorts (again: reverses).");
	if (y < h - 1)
		put(w, y++, 2, A_NORMAL, "press any key to close");
	wnoutrefresh(w);
	delwin(w);
}

static int msg_shown(const struct tui_ui *ui, double now)
{
	return ui->msg[0] && now < ui->msg_until;
}

/* Whether the user's choices draw the frame drawn from b (its status line
 * message shown or not: shown_b) again now. */
static int ui_same(const struct tui_ui *a, const struct tui_ui *b, int shown_b, double now)
{
	int ma = msg_shown(a, now);

	return a->sel == b->sel && a->sort == b->sort && a->top == b->top && a->help == b->help &&
	       a->reverse == b->reverse && a->paused == b->paused && a->prompt == b->prompt &&
	       !strcmp(a->input, b->input) && ma == shown_b && (!ma || !strcmp(a->msg, b->msg));
}

void tui_screen_draw(struct tui_screen *sc, struct tui_view *v, struct tui_ui *ui,
		     const struct tui_key *keys, int nkeys)
{
	int L = tui_view_layers(v);
	double now = util_now();

	if (sc->drawn && !sc->lay.too_small && !ui->help && sc->win[TUI_PANEL_HEADER] &&
	    sc->drawn_version == tui_view_version(v) &&
	    ui_same(ui, &sc->drawn_ui, sc->drawn_msg, now)) {
		/* nothing but the clock moved: the header's state and ages */
		werase(sc->win[TUI_PANEL_HEADER]);
		draw_header(sc, sc->win[TUI_PANEL_HEADER], v, ui);
		wnoutrefresh(sc->win[TUI_PANEL_HEADER]);
		doupdate();
		return;
	}

	if (sc->lay.too_small) {
		char buf[160];
		erase();
		/* one line that fits: a wrapped message would scroll the screen */
		tui_text_too_small(buf, sizeof(buf), sc->lay.rows, sc->lay.cols);
		if (sc->lay.rows > 0)
			mvaddnstr(0, 0, buf, sc->lay.cols);
		wnoutrefresh(stdscr);
		doupdate();
		return;
	}
	struct tui_layer_row *rows = tui_ui_rows(v, ui);
	for (int i = 0; i < TUI_PANEL_COUNT; i++)
		if (sc->win[i])
			werase(sc->win[i]);
	draw_header(sc, sc->win[TUI_PANEL_HEADER], v, ui);
	draw_table(sc, sc->win[TUI_PANEL_TABLE], v, ui, rows, L);
	draw_bars(sc, sc->win[TUI_PANEL_BARS], v, ui);
	if (sc->win[TUI_PANEL_SPARK])
		draw_spark(sc, sc->win[TUI_PANEL_SPARK], v, ui);
	if (sc->win[TUI_PANEL_HEAT])
		draw_heat(sc, sc->win[TUI_PANEL_HEAT], v, ui);
	draw_status(sc, sc->win[TUI_PANEL_STATUS], v, ui);
	/* stdscr, under the panels, is touched by a resize; refreshed by the
	 * next getch() it would blank the panels drawn since */
	if (is_wintouched(stdscr)) {
		werase(stdscr);
		wnoutrefresh(stdscr);
	}
	for (int i = 0; i < TUI_PANEL_COUNT; i++)
		if (sc->win[i])
			wnoutrefresh(sc->win[i]);
	if (ui->help)
		draw_help(sc, keys, nkeys);
	doupdate();
	free(rows);
	sc->drawn = 1;
	sc->drawn_version = tui_view_version(v);
	sc->drawn_ui = *ui;
	sc->drawn_msg = msg_shown(ui, now);
}

unsigned tui_screen_click(struct tui_screen *sc, struct tui_view *v, struct tui_ui *ui, int y,
			  int x)
{
	const struct tui_rect *t = &sc->lay.panel[TUI_PANEL_TABLE];
	int L = tui_view_layers(v), row = y - t->y - 2;

	if (sc->lay.too_small || y < t->y || y >= t->y + t->h || x < t->x || x >= t->x + t->w)
		return 0;
	x -= t->x;
	if (y == t->y + 1) { /* a column name: sort by it, again: reversed */
		for (size_t c = 0; c < UTIL_ARRAY_SIZE(tcol); c++) {
			if (tcol[c].sort < 0 || x < tcol[c].x || x >= tcol[c].x + tcol[c].w + 1)
				continue;
			if (ui->sort == tcol[c].sort)
				ui->reverse = !ui->reverse;
			else
				ui->sort = tcol[c].sort, ui->reverse = 0;
			return TUI_ACT_REDRAW;
		}
		return 0;
	}
	if (row < 0 || ui->top + row >= L)
		return 0;
	struct tui_layer_row *rows = tui_ui_rows(v, ui);
	ui->sel = rows[ui->top + row].layer;
	free(rows);
	return TUI_ACT_REDRAW;
}

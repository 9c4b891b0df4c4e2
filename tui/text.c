/*
 * text.c: the words of `moetrace top` fitted to a width, with no ncurses,
 * so that unit tests can check at every terminal size that the header and
 * the panel titles fit and say what matters.  A line is a list of fields
 * in display order, each with an importance: when the line is too wide the
 * least important field is first shortened (its brief form), then left
 * out; the most important ones (TUI_KEEP) are never left out, and only as
 * a last resort is the line cut.  So "58 layers" shows whole or not at
 * all, never as "5".
 */
#include "tui/tui.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void tui_fmt_num(char *buf, size_t n, double x)
{
	double a = fabs(x);

	if (a < 9999.5)
		snprintf(buf, n, "%.0f", x);
	else if (a < 999.95e3)
		snprintf(buf, n, "%.1fk", x / 1e3);
	else if (a < 999.95e6)
		snprintf(buf, n, "%.1fM", x / 1e6);
	else
		snprintf(buf, n, "%.1fG", x / 1e9);
}

int tui_text_width(const char *s)
{
	int w = 0;

	/* every glyph top draws is one cell wide: count code points */
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* Copies at most `width` cells of s to buf. */
static void cut(char *buf, size_t n, const char *s, int width)
{
	size_t i = 0;
	int w = 0;

	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80 && w++ == width)
			break;
		if (i + 1 >= n)
			break;
	}
	/* never end inside a code point */
	while (i > 0 && i < strlen(s) && ((unsigned char)s[i] & 0xc0) == 0x80)
		i--;
	memcpy(buf, s, i);
	buf[i] = 0;
}

static void join(char *buf, size_t n, const struct tui_field *f, const int *state, int nf,
		 const char *sep)
{
	size_t len = 0;

	buf[0] = 0;
	for (int i = 0; i < nf && len < n; i++) {
		const char *t = state[i] == 1 ? f[i].brief : f[i].text;
		if (state[i] == 2 || !t || !*t)
			continue;
		len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? sep : "", t);
	}
}

int tui_fit(char *buf, size_t n, int width, const struct tui_field *f, int nf, const char *sep)
{
	int state[32] = { 0 }; /* 0 full, 1 brief, 2 left out */
	char tmp[1024];

	if (nf > 32)
		nf = 32;
	if (width < 0)
		width = 0;
	for (;;) {
		join(tmp, sizeof(tmp), f, state, nf, sep);
		if (tui_text_width(tmp) <= width)
			break;
		int k = -1, kkey = 0;
		for (int i = 0; i < nf; i++) {
			if (state[i] == 2 || (f[i].prio >= TUI_KEEP && (state[i] || !f[i].brief)))
				continue;
			if (!f[i].text || !*f[i].text)
				continue;
			/* shortening weighs sprio (if set), leaving out prio */
			int key = !state[i] && f[i].brief && f[i].sprio ? f[i].sprio : f[i].prio;
			if (k < 0 || key <= kkey)
				k = i, kkey = key; /* the least important, the last of equals */
		}
		if (k < 0)
			break;
		state[k] += state[k] == 0 && f[k].brief ? 1 : 2 - state[k];
	}
	/* a field shortened before another was left out may fit whole now */
	for (int i = 0; i < nf; i++) {
		if (state[i] != 1)
			continue;
		state[i] = 0;
		join(tmp, sizeof(tmp), f, state, nf, sep);
		if (tui_text_width(tmp) > width)
			state[i] = 1;
	}
	join(tmp, sizeof(tmp), f, state, nf, sep);
	cut(buf, n, tmp, width);
	return tui_text_width(buf);
}

/* ---- the lines of the screen ------------------------------------------------ */

void tui_text_header(char *buf, size_t n, int width, const struct tui_header *h)
{
	const struct store_run *r = h->run;
	char name[3 * sizeof(r->name) + 8], model[3 * sizeof(r->name) + sizeof(r->model) + 12],
		ep[48], place[64], shape[64], bshape[48];

	/* a name stored with bytes that are not UTF-8 shows them as U+FFFD,
	 * as the charts draw it (ncurses would print them as they come) */
	char clean[3 * sizeof(r->name) + 1];
	util_utf8_sanitize(clean, sizeof(clean), r->name);
	snprintf(name, sizeof(name), "run '%s'", clean);
	snprintf(model, sizeof(model), "%s (%s)", name, r->model);
	snprintf(ep, sizeof(ep), "EP %dx%d", h->ranks, h->slots);
	if (h->deployed)
		snprintf(place, sizeof(place), "deployed from step %lld",
			 (long long)h->deployed_from);
	else
		snprintf(place, sizeof(place), "static placement");
	snprintf(shape, sizeof(shape), "%d layers x %d experts", r->layers, r->experts);
	snprintf(bshape, sizeof(bshape), "%d layers", r->layers);
	struct tui_field f[] = {
		{ r->model[0] ? model : name, name, TUI_KEEP, 2 },
		{ ep, NULL, 5, 0 },
		{ place, h->deployed ? "deployed" : "static", 4, 0 },
		{ shape, bshape, TUI_KEEP, 0 },
		{ "[moetrace top]", NULL, 0, 0 },
	};
	/* the name goes before the shape when even that does not fit */
	int w = tui_fit(buf, n, width, f, (int)UTIL_ARRAY_SIZE(f), "  ");
	if (w <= width && strstr(buf, bshape))
		return;
	f[0].prio = 1;
	tui_fit(buf, n, width, f, (int)UTIL_ARRAY_SIZE(f), "  ");
}

void tui_text_status(char *buf, size_t n, int width, const struct tui_header *h, const char *state)
{
	char step[48], st[80], rate[32], steps[64], bsteps[48], age[48];

	snprintf(step, sizeof(step), "step %lld", (long long)h->last_step);
	snprintf(st, sizeof(st), "[%s]", state);
	if (h->rate >= 0)
		snprintf(rate, sizeof(rate), "%.1f/s", h->rate);
	else
		snprintf(rate, sizeof(rate), "-/s");
	snprintf(steps, sizeof(steps), "%lld steps, %lld dropped", (long long)h->steps,
		 (long long)h->gaps);
	snprintf(bsteps, sizeof(bsteps), "%lld dropped", (long long)h->gaps);
	if (h->age < 0)
		snprintf(age, sizeof(age), "last data -");
	else if (h->age < 60)
		snprintf(age, sizeof(age), "last data %.1fs ago", h->age);
	else if (h->age < 3600)
		snprintf(age, sizeof(age), "last data %.0fm ago", h->age / 60);
	else if (h->age < 86400 * 2)
		snprintf(age, sizeof(age), "last data %.1fh ago", h->age / 3600);
	else
		snprintf(age, sizeof(age), "last data %.0fd ago", h->age / 86400);
	struct tui_field f[] = {
		{ step, NULL, TUI_KEEP, 0 }, { st, NULL, TUI_KEEP, 0 }, { rate, NULL, 3, 0 },
		{ steps, bsteps, 2, 0 },     { age, NULL, 1, 0 },
	};
	/* "step N [state]" reads as one: join those two with one space */
	char tmp[512];
	tui_fit(tmp, sizeof(tmp), width, f, (int)UTIL_ARRAY_SIZE(f), "  ");
	char *p = strstr(tmp, "  [");
	if (p)
		memmove(p, p + 1, strlen(p));
	snprintf(buf, n, "%s", tmp);
}

const char *tui_sort_glyph(int sort, int reverse, int ascii)
{
	/* the layer sorts ascending, the others worst first */
	int down = (sort != TUI_SORT_LAYER) != !!reverse;
	if (ascii)
		return down ? "v" : "^";
	return down ? "\u25bc" : "\u25b2";
}

void tui_text_table_title(char *buf, size_t n, int width, const struct tui_header *h, int sort,
			  int reverse, int ascii)
{
	char s[64], after[96], bafter[64], win[96], bwin[64];
	const char *phase = h->phase_mask == 1u << STORE_PHASE_PREFILL	? " prefill"
			    : h->phase_mask == 1u << STORE_PHASE_DECODE ? " decode"
									: "";

	snprintf(s, sizeof(s), "sort: %s%s", tui_sort_name(sort),
		 tui_sort_glyph(sort, reverse, ascii));
	/* "after" is fitted on the steps before the window, scored on it */
	snprintf(after, sizeof(after), "after: %s fitted before", h->algo);
	snprintf(bafter, sizeof(bafter), "after: %s", h->algo);
	snprintf(win, sizeof(win), "window %d steps: %lld..%lld%s", h->window, (long long)h->from,
		 (long long)h->to, phase);
	snprintf(bwin, sizeof(bwin), "%lld..%lld%s", (long long)h->from, (long long)h->to, phase);
	struct tui_field f[] = {
		{ " Layers", NULL, TUI_KEEP, 0 },
		{ s, NULL, 6, 0 },
		{ after, bafter, 5, 1 },
		{ win, bwin, 4, 0 },
		{ h->follow ? "" : "(scrubbed)", NULL, 3, 0 },
		{ h->stale_layers ? "fitting..." : "", NULL, 2, 0 },
	};
	tui_fit(buf, n, width, f, (int)UTIL_ARRAY_SIZE(f), "  ");
}

void tui_text_bars_title(char *buf, size_t n, int width, int layer, const char *before,
			 const char *algo, const char *mean_glyph, double mean, int group, int rpn)
{
	char what[64], bwhat[32], ba[96], m[48], g[48], node[48], num[32];

	snprintf(what, sizeof(what), " Layer %d device load per rank", layer);
	snprintf(bwhat, sizeof(bwhat), " Layer %d load per rank", layer);
	snprintf(ba, sizeof(ba), "%s | %s", before, algo);
	tui_fmt_num(num, sizeof(num), mean);
	snprintf(m, sizeof(m), "%s mean %s", mean_glyph, num);
	g[0] = node[0] = 0;
	if (group > 1)
		snprintf(g, sizeof(g), "max of %d ranks a row", group);
	if (rpn > 0)
		snprintf(node, sizeof(node), "%d ranks a node", rpn);
	struct tui_field f[] = {
		{ what, bwhat, TUI_KEEP, 2 },
		{ "(window tokens)", NULL, 1, 0 },
		{ ba, NULL, 6, 0 },
		{ m, NULL, 5, 0 },
		{ g, NULL, 4, 0 },
		{ node, NULL, 3, 0 },
	};
	tui_fit(buf, n, width, f, (int)UTIL_ARRAY_SIZE(f), "  ");
}

void tui_text_spark_title(char *buf, size_t n, int width, int layer, int steps, double now,
			  double min, double max, int prefill, const char *mark)
{
	char what[96], bwhat[48], v[96], bv[64], p[64], bp[32];

	snprintf(what, sizeof(what), " Layer %d imbalance per step, last %d steps", layer, steps);
	snprintf(bwhat, sizeof(bwhat), " Layer %d imbalance, %d steps", layer, steps);
	if (isnan(now) || isnan(min)) { /* no step in which the layer got a token */
		snprintf(v, sizeof(v), "no step scored");
		snprintf(bv, sizeof(bv), "none scored");
	} else {
		snprintf(v, sizeof(v), "now %.3f  min %.3f  max %.3f", now, min, max);
		snprintf(bv, sizeof(bv), "now %.3f  max %.3f", now, max);
	}
	p[0] = 0;
	bp[0] = 0;
	if (prefill > 0 && mark) {
		snprintf(p, sizeof(p), "%s: prefill (%d steps)", mark, prefill);
		snprintf(bp, sizeof(bp), "%s: prefill", mark);
	} else if (prefill > 0) {
		snprintf(p, sizeof(p), "prefill underlined (%d steps)", prefill);
		snprintf(bp, sizeof(bp), "prefill underlined");
	}
	struct tui_field f[] = {
		{ what, bwhat, TUI_KEEP, 3 },
		{ v, bv, 5, 3 },
		{ p, bp, 4, 0 },
	};
	tui_fit(buf, n, width, f, (int)UTIL_ARRAY_SIZE(f), "  ");
}

void tui_text_heat_title(char *buf, size_t n, int width, int layer, int per_cell, int hottest,
			 double share, const char *const levels[4])
{
	char what[96], bwhat[48], hot[64], leg[96], bleg[64];

	snprintf(what, sizeof(what), " Layer %d experts by window tokens, %d per cell", layer,
		 per_cell);
	snprintf(bwhat, sizeof(bwhat), " Layer %d experts, %d a cell", layer, per_cell);
	snprintf(hot, sizeof(hot), "hottest %d with %.1f%%", hottest, share);
	snprintf(leg, sizeof(leg), "(%s%s%s%s: < 0.75, 1.5, 3, >= 3 x mean)", levels[0], levels[1],
		 levels[2], levels[3]);
	snprintf(bleg, sizeof(bleg), "(%s%s%s%s x mean)", levels[0], levels[1], levels[2],
		 levels[3]);
	struct tui_field f[] = {
		{ what, bwhat, TUI_KEEP, 3 },
		{ hot, NULL, 5, 0 },
		{ leg, bleg, 4, 0 },
	};
	tui_fit(buf, n, width, f, (int)UTIL_ARRAY_SIZE(f), "  ");
}

void tui_text_too_small(char *buf, size_t n, int rows, int cols)
{
	char v[3][128];

	snprintf(v[0], sizeof(v[0]), "terminal too small: %dx%d, moetrace top needs %dx%d", cols,
		 rows, TUI_MIN_COLS, TUI_MIN_ROWS);
	snprintf(v[1], sizeof(v[1]), "too small: need %dx%d", TUI_MIN_COLS, TUI_MIN_ROWS);
	snprintf(v[2], sizeof(v[2]), "%dx%d", TUI_MIN_COLS, TUI_MIN_ROWS);
	for (int i = 0; i < 3; i++) {
		if (tui_text_width(v[i]) <= cols || i == 2) {
			cut(buf, n, v[i], cols < 0 ? 0 : cols);
			return;
		}
	}
}

/* clang-format off */
static const struct tui_fkey fkeys[] = {
	{ 1, "Help",   9 }, { 2, "Algo",   5 }, { 3, "Find",   6 }, { 4, "Invert", 3 },
	{ 5, "Follow", 4 }, { 6, "SortBy", 7 }, { 7, "Win-",   2 }, { 8, "Win+",   2 },
	{ 9, "Pause",  8 }, { 10, "Quit",  10 },
};
/* clang-format on */

int tui_fkeys_fit(int width, const struct tui_fkey **out)
{
	int nk = (int)UTIL_ARRAY_SIZE(fkeys), show[16], w = 0, k = 0;

	/* htop's manner: "F1" then the label in 6 cells, 8 cells a key */
	for (int i = 0; i < nk; i++) {
		show[i] = 1;
		w += 8;
	}
	while (w > width) {
		int low = -1;
		for (int i = 0; i < nk; i++)
			if (show[i] && (low < 0 || fkeys[i].prio < fkeys[low].prio))
				low = i;
		if (low < 0)
			break;
		show[low] = 0;
		w -= 8;
	}
	for (int i = 0; i < nk; i++)
		if (show[i])
			out[k++] = &fkeys[i];
	return k;
}

void tui_text_fkeys(char *buf, size_t n, int width)
{
	const struct tui_fkey *k[16];
	int nk = tui_fkeys_fit(width, k);
	size_t len = 0;

	buf[0] = 0;
	for (int i = 0; i < nk && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, "F%d%-*s", k[i]->fn,
					k[i]->fn >= 10 ? 5 : 6, k[i]->label);
}

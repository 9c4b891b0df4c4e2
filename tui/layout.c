/*
 * layout.c: where each panel of `moetrace top` goes, as a pure function of
 * the terminal size.  Two arrangements:
 *
 *   stacked (the usual 80 x 24):      side by side (>= 150 x 30):
 *   +---------- header ----------+    +------------ header ------------+
 *   | layer table                |    | layer table  | bars            |
 *   | bars (before | after)      |    |              |                 |
 *   | sparkline                  |    |              | sparkline       |
 *   | heat strip                 |    |              | heat strip      |
 *   +---------- status ----------+    +------------ status ------------+
 *
 * Small terminals fold the heat strip, then the sparkline, before the
 * table and bars shrink to their minimum; below TUI_MIN_ROWS x
 * TUI_MIN_COLS only a one-line message is drawn.
 */
#include "tui/tui.h"

#include <string.h>

static struct tui_rect rect(int y, int x, int h, int w)
{
	struct tui_rect r = { y, x, h, w };
	return r;
}

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void tui_layout_compute(int rows, int cols, struct tui_layout *out)
{
	struct tui_rect *p = out->panel;
	int body_y = 2, bh;

	memset(out, 0, sizeof(*out));
	out->rows = rows;
	out->cols = cols;
	if (rows < TUI_MIN_ROWS || cols < TUI_MIN_COLS) {
		out->too_small = 1;
		if (rows > 0 && cols > 0)
			p[TUI_PANEL_HEADER] = rect(0, 0, 1, cols);
		return;
	}
	bh = rows - 3; /* two header lines, one status line */
	p[TUI_PANEL_HEADER] = rect(0, 0, 2, cols);
	p[TUI_PANEL_STATUS] = rect(rows - 1, 0, 1, cols);

	if (cols >= 150 && rows >= 30) {
		/* half each: the table's trend column gets at least 25 cells
		 * (and a rule from the bars), the bars at least 70 */
		int tw = clamp(cols / 2, 80, 130), rw = cols - tw;
		int spark = clamp(bh / 5, 3, 10), heat = clamp(bh / 6, 3, 8);
		out->side = 1;
		p[TUI_PANEL_TABLE] = rect(body_y, 0, bh, tw);
		p[TUI_PANEL_BARS] = rect(body_y, tw, bh - spark - heat, rw);
		p[TUI_PANEL_SPARK] = rect(body_y + bh - spark - heat, tw, spark, rw);
		p[TUI_PANEL_HEAT] = rect(body_y + bh - heat, tw, heat, rw);
		return;
	}
	/* stacked: optional panels first, then the table takes about half of
	 * what is left (at least a title, column names and four layers) */
	int heat = bh >= 30 ? 3 : bh >= 18 ? 2 : 0;
	int spark = bh >= 30 ? 4 : bh >= 15 ? 2 : 0;
	int avail = bh - heat - spark;
	int table = avail / 2 < 6 ? 6 : avail / 2;
	int bars = avail - table;
	int y = body_y;
	p[TUI_PANEL_TABLE] = rect(y, 0, table, cols);
	y += table;
	p[TUI_PANEL_BARS] = rect(y, 0, bars, cols);
	y += bars;
	if (spark)
		p[TUI_PANEL_SPARK] = rect(y, 0, spark, cols);
	y += spark;
	if (heat)
		p[TUI_PANEL_HEAT] = rect(y, 0, heat, cols);
}

/*
 * axes.c: the pieces every chart is made of.  Start at rint_ticks(): tick
 * steps are 1, 2 or 5 x 10^k, and the smallest step whose labels fit the
 * axis without touching wins, so 8 experts get a label each and 384
 * experts or 100,000 steps get a readable handful.  Text goes through
 * cairo's toy font API with DejaVu Sans, the face Debian ships.
 */
#include "render/render_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void font(cairo_t *cr, double size, int bold)
{
	cairo_select_font_face(cr, RENDER_FONT, CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

/* Text cairo can draw: cairo refuses a string that is not valid UTF-8,
 * putting the surface in an error state for good (and leaking the glyphs
 * it had made).  A run name is stored as given (the default one comes from
 * a file name, which may be Latin-1), so each invalid byte is drawn as
 * U+FFFD instead.  Returns s itself, or a copy in *tmp to free(). */
static const char *drawable(const char *s, char **tmp)
{
	size_t n;

	*tmp = NULL;
	if (util_utf8_valid(s))
		return s;
	n = 3 * strlen(s) + 1;
	*tmp = xmalloc(n);
	return util_utf8_sanitize(*tmp, n, s);
}

double rint_text_width(cairo_t *cr, const char *s, double size, int bold)
{
	cairo_text_extents_t te;
	char *tmp;

	font(cr, size, bold);
	cairo_text_extents(cr, drawable(s, &tmp), &te);
	free(tmp);
	return te.x_advance;
}

double rint_text(cairo_t *cr, double x, double y, const char *s, double size, int bold,
		 double ax, double ay, double angle)
{
	cairo_text_extents_t te;
	cairo_font_extents_t fe;
	char *tmp;

	s = drawable(s, &tmp);
	font(cr, size, bold);
	cairo_text_extents(cr, s, &te);
	cairo_font_extents(cr, &fe);
	cairo_save(cr);
	cairo_translate(cr, x, y);
	if (angle != 0)
		cairo_rotate(cr, angle);
	cairo_move_to(cr, -ax * te.x_advance, -ay * (fe.ascent + fe.descent) + fe.ascent);
	cairo_show_text(cr, s);
	cairo_restore(cr);
	free(tmp);
	return te.x_advance;
}

void rint_fmt(char *buf, size_t n, double v, double step)
{
	const char *suffix = "";
	double div = 1;
	int dec;

	if (fabs(v) < fabs(step) * 1e-6)
		v = 0; /* no "-0.0" from rounding noise */
	if (step >= 1e6) {
		div = 1e6;
		suffix = "M";
	} else if (step >= 1e3) {
		div = 1e3;
		suffix = "k";
	}
	if (v == 0 && div > 1) {
		snprintf(buf, n, "0");
		return;
	}
	step /= div;
	dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
	if (dec > 6)
		dec = 6;
	snprintf(buf, n, "%.*f%s", dec, v / div, suffix);
}

static int gen_ticks(double lo, double hi, double step, double *ticks)
{
	double first = ceil(lo / step - 1e-9) * step;
	int n = 0;

	for (int i = 0; i < RENDER_MAX_TICKS; i++) {
		double t = first + i * step;

		if (!(t <= hi + step * 1e-9))
			break;
		ticks[n++] = t;
	}
	return n;
}

int rint_ticks(cairo_t *cr, double lo, double hi, double len, int horizontal, int integer,
	       double fsize, double *ticks, double *step_out)
{
	double span = hi - lo;
	static const double mant[3] = { 1, 2, 5 };

	if (!(span > 0) || !(len > 0)) {
		ticks[0] = lo;
		*step_out = 1;
		return 1;
	}
	for (int k = (int)floor(log10(span / RENDER_MAX_TICKS)) - 1; k < 40; k++) {
		for (int m = 0; m < 3; m++) {
			double step = mant[m] * pow(10, k), need = 0;
			int n;
			if (integer && step < 1)
				continue;
			if (span / step > RENDER_MAX_TICKS - 1)
				continue;
			n = gen_ticks(lo, hi, step, ticks);
			if (n <= 1) {
				*step_out = step;
				return n;
			}
			if (horizontal) {
				char buf[64];
				for (int i = 0; i < n; i++) {
					rint_fmt(buf, sizeof(buf), ticks[i], step);
					double tw = rint_text_width(cr, buf, fsize, 0);
					if (tw > need)
						need = tw;
				}
				need += 1.5 * fsize;
			} else {
				need = 2.6 * fsize;
			}
			if (step / span * len >= need) {
				*step_out = step;
				return n;
			}
		}
	}
	ticks[0] = lo;
	*step_out = span;
	return 1;
}

int render_ticks(cairo_t *cr, double lo, double hi, double len, int horizontal, int integer,
		 double fsize, double *ticks, double *step)
{
	return rint_ticks(cr, lo, hi, len, horizontal, integer, fsize, ticks, step);
}

void render_tick_label(char *buf, size_t n, double v, double step)
{
	rint_fmt(buf, n, v, step);
}

double render_text_width(cairo_t *cr, const char *s, double fsize)
{
	return rint_text_width(cr, s, fsize, 0);
}

double rint_text_fit(cairo_t *cr, double x, double y, const char *s, double size, int bold,
		     double ax, double ay, double angle, double room)
{
	double tw = rint_text_width(cr, s, size, bold);
	char buf[512];

	/* too long for its place (a long run name, a narrow chart): shrink a
	 * little, then cut with "..." at a UTF-8 character boundary */
	snprintf(buf, sizeof(buf), "%s", s);
	if (tw > room && tw > 0)
		size = fmax(0.85 * size, size * room / tw);
	for (size_t n = strlen(buf); n > 3 && rint_text_width(cr, buf, size, bold) > room;) {
		do
			n--;
		while (n > 0 && ((unsigned char)buf[n] & 0xc0) == 0x80);
		memcpy(buf + n, "...", 4);
	}
	return rint_text(cr, x, y, buf, size, bold, ax, ay, angle);
}

void rint_title(cairo_t *cr, double w, const char *title, double fsize)
{
	if (!title || !*title)
		return;
	cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	rint_text_fit(cr, w / 2, 0.6 * fsize, title, 1.3 * fsize, 1, 0.5, 0, 0, w - 2 * fsize);
}

int rint_device_px(cairo_t *cr, double len, int horizontal)
{
	double dx = horizontal ? len : 0, dy = horizontal ? 0 : len;
	int n;

	cairo_user_to_device_distance(cr, &dx, &dy);
	n = (int)floor(fabs(horizontal ? dx : dy) + 0.5);
	return n < 1 ? 1 : n;
}

double rint_snap(cairo_t *cr, double v, int horizontal)
{
	double x = horizontal ? v : 0, y = horizontal ? 0 : v;

	cairo_user_to_device(cr, &x, &y);
	if (horizontal)
		x = floor(x + 0.5);
	else
		y = floor(y + 0.5);
	cairo_device_to_user(cr, &x, &y);
	return horizontal ? x : y;
}

/* A 1-device-pixel line at user position v: centre it on a pixel. */
static double line_pos(cairo_t *cr, double v, int horizontal)
{
	double x = horizontal ? v : 0, y = horizontal ? 0 : v;

	cairo_user_to_device(cr, &x, &y);
	if (horizontal)
		x = floor(x) + 0.5;
	else
		y = floor(y) + 0.5;
	cairo_device_to_user(cr, &x, &y);
	return horizontal ? x : y;
}

static double hairline(cairo_t *cr)
{
	double dx = 1, dy = 0;

	cairo_device_to_user_distance(cr, &dx, &dy);
	return fabs(dx);
}

/* Ticks of a categorical axis labelled by ids (positions 0..n-1): every
 * k-th position for the smallest k in 1, 2, 5, 10, ... whose id labels do
 * not touch. */
static int id_ticks(cairo_t *cr, const struct rint_axis *a, double len, int horizontal,
		    double fsize, double *ticks, double *step)
{
	static const int mant[3] = { 1, 2, 5 };
	char buf[32];

	for (int64_t dec = 1; dec <= (int64_t)a->n_ids * 10; dec *= 10)
		for (int m = 0; m < 3; m++) {
			int64_t k = mant[m] * dec;
			int n = 0;
			double need = 1.6 * fsize;
			if ((a->n_ids + k - 1) / k > RENDER_MAX_TICKS)
				continue;
			for (int64_t i = 0; i < a->n_ids; i += k) {
				ticks[n++] = (double)i;
				if (horizontal) {
					snprintf(buf, sizeof(buf), "%d", a->ids[i]);
					double tw = rint_text_width(cr, buf, fsize, 0) + 1.5 * fsize;
					if (tw > need)
						need = tw;
				}
			}
			if (n <= 1 || (double)k * len / a->n_ids >= need) {
				*step = (double)k;
				return n;
			}
		}
	ticks[0] = 0;
	*step = 1;
	return 1;
}

/* Ticks of one axis: id labels when the axis has them, else values. */
static int axis_ticks(cairo_t *cr, const struct rint_axis *a, double len, int horizontal,
		      double fsize, double *ticks, double *step, int *use_ids)
{
	*use_ids = a->ids && a->n_ids > 0;
	if (*use_ids)
		return id_ticks(cr, a, len, horizontal, fsize, ticks, step);
	return rint_ticks(cr, a->lo, a->hi, len, horizontal, a->integer, fsize, ticks, step);
}

static void tick_label(char *buf, size_t n, const struct rint_axis *a, int use_ids, double v,
		       double step)
{
	if (use_ids)
		snprintf(buf, n, "%d", a->ids[(int)lround(v)]);
	else
		rint_fmt(buf, n, v, step);
}

double rint_ylabel_width(cairo_t *cr, const struct rint_axis *y, double fsize)
{
	double ticks[RENDER_MAX_TICKS], step, w = 0;
	char buf[64];
	int use_ids;
	/* a generous axis length gives the finest steps, hence the widest labels */
	int n = axis_ticks(cr, y, 2000, 0, fsize, ticks, &step, &use_ids);

	for (int i = 0; i < n; i++) {
		tick_label(buf, sizeof(buf), y, use_ids, ticks[i], step);
		double tw = rint_text_width(cr, buf, fsize, 0);
		if (tw > w)
			w = tw;
	}
	return w;
}

void rint_axes(cairo_t *cr, const struct rbox *b, const struct rint_axis *x,
	       const struct rint_axis *y, int y_down, int grid, double fsize)
{
	double ticks[RENDER_MAX_TICKS], step, tl = 0.35 * fsize, lw = hairline(cr);
	double ylw = 0;
	char buf[64];
	int n, use_ids;

	cairo_save(cr);
	cairo_set_line_width(cr, lw);
	/* x ticks and labels */
	n = axis_ticks(cr, x, b->w, 1, fsize, ticks, &step, &use_ids);
	for (int i = 0; i < n; i++) {
		double px = b->x + (ticks[i] - x->lo) / (x->hi - x->lo) * b->w;
		if (!(x->hi > x->lo))
			px = b->x + b->w / 2;
		px = line_pos(cr, px, 1);
		if (grid) {
			cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
			cairo_move_to(cr, px, b->y);
			cairo_line_to(cr, px, b->y + b->h);
			cairo_stroke(cr);
		}
		cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
		cairo_move_to(cr, px, b->y + b->h);
		cairo_line_to(cr, px, b->y + b->h + tl);
		cairo_stroke(cr);
		tick_label(buf, sizeof(buf), x, use_ids, ticks[i], step);
		rint_text(cr, px, b->y + b->h + tl + 0.15 * fsize, buf, fsize, 0, 0.5, 0, 0);
	}
	/* y ticks and labels */
	n = axis_ticks(cr, y, b->h, 0, fsize, ticks, &step, &use_ids);
	for (int i = 0; i < n; i++) {
		double f = y->hi > y->lo ? (ticks[i] - y->lo) / (y->hi - y->lo) : 0.5;
		double py = y_down ? b->y + f * b->h : b->y + b->h - f * b->h;
		py = line_pos(cr, py, 0);
		if (grid) {
			cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
			cairo_move_to(cr, b->x, py);
			cairo_line_to(cr, b->x + b->w, py);
			cairo_stroke(cr);
		}
		cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
		cairo_move_to(cr, b->x, py);
		cairo_line_to(cr, b->x - tl, py);
		cairo_stroke(cr);
		tick_label(buf, sizeof(buf), y, use_ids, ticks[i], step);
		double tw = rint_text(cr, b->x - tl - 0.25 * fsize, py, buf, fsize, 0, 1, 0.5, 0);
		if (tw > ylw)
			ylw = tw;
	}
	/* frame */
	{
		double x0 = line_pos(cr, b->x, 1), x1 = line_pos(cr, b->x + b->w, 1);
		double y0 = line_pos(cr, b->y, 0), y1 = line_pos(cr, b->y + b->h, 0);
		cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
		cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
		cairo_stroke(cr);
	}
	/* axis labels */
	cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	if (x->label)
		rint_text_fit(cr, b->x + b->w / 2, b->y + b->h + tl + 1.5 * fsize, x->label,
			      1.05 * fsize, 0, 0.5, 0, 0, b->w + 2 * fsize);
	if (y->label) {
		double wmax = rint_ylabel_width(cr, y, fsize);
		if (ylw > wmax)
			wmax = ylw;
		rint_text_fit(cr, b->x - tl - 0.25 * fsize - wmax - 0.5 * fsize, b->y + b->h / 2,
			      y->label, 1.05 * fsize, 0, 0.5, 1, -M_PI / 2, b->h + 2 * fsize);
	}
	cairo_restore(cr);
}

double rint_legend(cairo_t *cr, double x, double y, double w, const struct rint_legend *e,
		   int n, double fsize, int draw)
{
	double cx = x, cy = y, row = 1.5 * fsize, sw = 1.6 * fsize;

	if (n <= 0)
		return 0;
	cairo_save(cr);
	for (int i = 0; i < n; i++) {
		double tw = rint_text_width(cr, e[i].text, fsize, 0);
		double room = w - sw - 0.4 * fsize; /* an entry never wider than the legend */
		if (tw > room)
			tw = room;
		double ew = sw + 0.4 * fsize + tw + 1.4 * fsize;
		if (cx > x && cx + ew > x + w) {
			cx = x;
			cy += row;
		}
		if (draw) {
			double my = cy + row / 2;
			cairo_set_source_rgb(cr, e[i].rgb[0], e[i].rgb[1], e[i].rgb[2]);
			switch (e[i].kind) {
			case 0:
				cairo_rectangle(cr, cx, my - 0.45 * fsize, sw, 0.9 * fsize);
				cairo_fill(cr);
				break;
			case 4:
				cairo_rectangle(cr, cx + sw / 2 - 0.09 * fsize, my - 0.45 * fsize,
						0.18 * fsize, 0.9 * fsize);
				cairo_fill(cr);
				break;
			case 3:
				cairo_move_to(cr, cx + sw / 2 - 0.45 * fsize, my - 0.4 * fsize);
				cairo_line_to(cr, cx + sw / 2 + 0.45 * fsize, my - 0.4 * fsize);
				cairo_line_to(cr, cx + sw / 2, my + 0.4 * fsize);
				cairo_close_path(cr);
				cairo_fill(cr);
				break;
			default: {
				double d[2] = { 0.4 * fsize, 0.25 * fsize };
				cairo_set_line_width(cr, 0.18 * fsize);
				if (e[i].kind == 2)
					cairo_set_dash(cr, d, 2, 0);
				cairo_move_to(cr, cx, my);
				cairo_line_to(cr, cx + sw, my);
				cairo_stroke(cr);
				cairo_set_dash(cr, NULL, 0, 0);
			}
			}
			cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
			rint_text_fit(cr, cx + sw + 0.4 * fsize, my, e[i].text, fsize, 0, 0, 0.5, 0,
				      room);
		}
		cx += ew;
	}
	cairo_restore(cr);
	return cy - y + row;
}

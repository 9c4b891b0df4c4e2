/*
 * lines.c: imbalance over steps, one line per series (the baseline and
 * each replay) with its rebalance events marked along the top.  A series
 * with more points than the plot has device pixels is drawn per pixel
 * column: a light band from the column's minimum to its maximum and a line
 * through its mean, so 100,000 steps cost one path of plot-width points
 * and spikes stay visible.  A step that was not scored (y NAN: no token)
 * leaves a gap in the line and counts in no mean.
 */
#include "render/render_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MARK_GREY 0.35 /* the marked steps' ticks */

struct render_imbalance_cfg render_imbalance_cfg_defaults(void)
{
	struct render_imbalance_cfg c = { 0 };

	c.x_label = "step";
	c.y_label = "imbalance (max / mean device load)";
	c.font = 12;
	return c;
}

static void draw_series(cairo_t *cr, const struct rbox *b, const struct render_series *s,
			double xlo, double xhi, double ylo, double yhi, const double rgb[3],
			double f)
{
	int px = rint_device_px(cr, b->w, 1);
	double xs = b->w / (xhi - xlo), ys = b->h / (yhi - ylo);
#define PX(v) (b->x + ((v)-xlo) * xs)
#define PY(v) (b->y + b->h - ((v)-ylo) * ys)

	cairo_set_line_width(cr, 0.15 * f);
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	if (s->n > (size_t)px) {
		double *mn = xmallocarray((size_t)px, sizeof(double));
		double *mx = xmallocarray((size_t)px, sizeof(double));
		double *sum = xcalloc((size_t)px, sizeof(double));
		size_t *cnt = xcalloc((size_t)px, sizeof(size_t));
		for (size_t i = 0; i < s->n; i++) {
			if (isnan(s->y[i]))
				continue;
			int c = (int)((s->x[i] - xlo) / (xhi - xlo) * px);
			if (c >= px)
				c = px - 1;
			if (c < 0)
				c = 0;
			if (!cnt[c] || s->y[i] < mn[c])
				mn[c] = s->y[i];
			if (!cnt[c] || s->y[i] > mx[c])
				mx[c] = s->y[i];
			sum[c] += s->y[i];
			cnt[c]++;
		}
		/* band, one polygon per run of filled columns */
		cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], 0.28);
		for (int c = 0; c < px;) {
			int e = c;
			if (!cnt[c]) {
				c++;
				continue;
			}
			while (e + 1 < px && cnt[e + 1])
				e++;
			for (int k = c; k <= e; k++) {
				double xl = b->x + (double)k / px * b->w;
				cairo_line_to(cr, xl, PY(mx[k]));
				cairo_line_to(cr, xl + b->w / px, PY(mx[k]));
			}
			for (int k = e; k >= c; k--) {
				double xl = b->x + (double)k / px * b->w;
				cairo_line_to(cr, xl + b->w / px, PY(mn[k]));
				cairo_line_to(cr, xl, PY(mn[k]));
			}
			cairo_close_path(cr);
			cairo_fill(cr);
			c = e + 1;
		}
		cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
		for (int c = 0, pen = 0; c < px; c++) {
			if (!cnt[c]) {
				pen = 0;
				continue;
			}
			double x = b->x + (c + 0.5) / px * b->w, y = PY(sum[c] / (double)cnt[c]);
			if (pen)
				cairo_line_to(cr, x, y);
			else
				cairo_move_to(cr, x, y);
			pen = 1;
		}
		cairo_stroke(cr);
		free(mn);
		free(mx);
		free(sum);
		free(cnt);
	} else {
		cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
		for (size_t i = 0; i < s->n; i++) {
			if (isnan(s->y[i]))
				cairo_new_sub_path(cr); /* the pen lifts */
			else
				cairo_line_to(cr, PX(s->x[i]), PY(s->y[i]));
		}
		cairo_stroke(cr);
		if (s->n <= 60) {
			for (size_t i = 0; i < s->n; i++) {
				if (isnan(s->y[i]))
					continue;
				cairo_new_sub_path(cr);
				cairo_arc(cr, PX(s->x[i]), PY(s->y[i]), 0.25 * f, 0, 2 * M_PI);
			}
			cairo_fill(cr);
		}
	}
#undef PX
#undef PY
}

int render_imbalance(cairo_t *cr, double w, double h, const struct render_imbalance_cfg *cfg,
		     const struct render_series *s, int nseries)
{
	struct render_imbalance_cfg def = render_imbalance_cfg_defaults();
	const double f = cfg && cfg->font > 0 ? cfg->font : def.font;
	struct rint_legend leg[10];
	char text[10][200];
	double xlo = INFINITY, xhi = -INFINITY, ylo = 1, yhi = 1, tl = 0.35 * f;
	int nleg = 0, any_events = 0; /* 1 + first series with events */

	if (!s || nseries <= 0 || nseries > 8)
		return UTIL_EUSAGE;
	for (int k = 0; k < nseries; k++) {
		double sum = 0;
		size_t m = 0; /* points scored */
		if (s[k].n == 0 || !s[k].x || !s[k].y)
			return UTIL_EUSAGE;
		for (size_t i = 0; i < s[k].n; i++) {
			xlo = fmin(xlo, s[k].x[i]);
			xhi = fmax(xhi, s[k].x[i]);
			if (isnan(s[k].y[i]))
				continue;
			ylo = fmin(ylo, s[k].y[i]);
			yhi = fmax(yhi, s[k].y[i]);
			sum += s[k].y[i];
			m++;
		}
		if (m)
			snprintf(text[nleg], sizeof(text[nleg]), "%s: mean %.3f",
				 s[k].name ? s[k].name : "", sum / (double)m);
		else
			snprintf(text[nleg], sizeof(text[nleg]), "%s: no step scored",
				 s[k].name ? s[k].name : "");
		leg[nleg].text = text[nleg];
		render_palette(k, leg[nleg].rgb);
		leg[nleg].kind = 1;
		nleg++;
		if (s[k].n_events && !any_events)
			any_events = k + 1;
	}
	if (any_events) {
		snprintf(text[nleg], sizeof(text[nleg]), "rebalance takes effect");
		leg[nleg].text = text[nleg];
		render_palette(any_events - 1, leg[nleg].rgb); /* the first series with events */
		leg[nleg].kind = 3;
		nleg++;
	}
	if (cfg && cfg->n_marks && cfg->marks) {
		snprintf(text[nleg], sizeof(text[nleg]), "%s",
			 cfg->marks_label ? cfg->marks_label : "marked step");
		leg[nleg].text = text[nleg];
		leg[nleg].rgb[0] = leg[nleg].rgb[1] = leg[nleg].rgb[2] = MARK_GREY;
		leg[nleg].kind = 4;
		nleg++;
	}
	if (!(xhi > xlo)) {
		xlo -= 0.5;
		xhi += 0.5;
	}
	{
		/* a little room at both ends so end points and markers show whole */
		double pad = (xhi - xlo) * 0.015;
		xlo -= pad;
		xhi += pad;
	}
	yhi = yhi + (yhi - ylo) * 0.06;
	if (yhi - ylo < 0.05)
		yhi = ylo + 0.05;

	rint_title(cr, w, cfg ? cfg->title : NULL, f);
	struct rint_axis ax = { xlo, xhi, 1, cfg && cfg->x_label ? cfg->x_label : def.x_label,
				NULL, 0 };
	struct rint_axis ay = { ylo, yhi, 0, cfg && cfg->y_label ? cfg->y_label : def.y_label,
				NULL, 0 };
	double ylw = rint_ylabel_width(cr, &ay, f);
	double lh = rint_legend(cr, 0, 0, w - 2 * f, leg, nleg, f, 0) + 0.3 * f;
	struct rbox b;
	b.x = rint_snap(cr, 0.6 * f + 1.3 * f + 0.5 * f + ylw + 0.25 * f + tl, 1);
	b.y = rint_snap(cr, (cfg && cfg->title ? 2.6 : 1.0) * f + lh, 0);
	b.w = rint_snap(cr, w - 1.5 * f, 1) - b.x;
	b.h = rint_snap(cr, h - (tl + 0.15 * f + 1.3 * f + 0.3 * f + 1.3 * f + 0.4 * f), 0) - b.y;
	if (b.w < 8 || b.h < 8)
		return UTIL_EUSAGE;
	rint_legend(cr, f, (cfg && cfg->title ? 2.4 : 0.8) * f, w - 2 * f, leg, nleg, f, 1);

	cairo_save(cr);
	cairo_rectangle(cr, b.x, b.y, b.w, b.h);
	cairo_clip(cr);
	rint_axes(cr, &b, &ax, &ay, 0, 1, f);
	/* perfect balance */
	if (ylo <= 1.0) {
		double dash[2] = { 0.2 * f, 0.3 * f }, y = b.y + b.h - (1.0 - ylo) / (yhi - ylo) * b.h;
		cairo_set_dash(cr, dash, 2, 0);
		cairo_set_line_width(cr, 0.1 * f);
		cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
		cairo_move_to(cr, b.x, y);
		cairo_line_to(cr, b.x + b.w, y);
		cairo_stroke(cr);
		cairo_set_dash(cr, NULL, 0, 0);
	}
	/* marked steps: a tick each along the bottom, under the lines */
	if (cfg && cfg->n_marks && cfg->marks) {
		cairo_set_source_rgba(cr, MARK_GREY, MARK_GREY, MARK_GREY, 0.8);
		for (size_t i = 0; i < cfg->n_marks; i++) {
			double x = b.x + (cfg->marks[i] - xlo) / (xhi - xlo) * b.w;
			cairo_rectangle(cr, x - 0.06 * f, b.y + b.h - 0.9 * f, 0.12 * f, 0.9 * f);
		}
		cairo_fill(cr);
	}
	for (int k = 0; k < nseries; k++) {
		double rgb[3];
		render_palette(k, rgb);
		draw_series(cr, &b, &s[k], xlo, xhi, ylo, yhi, rgb, f);
	}
	/* events: a marker along the top, a faint line down when they are few */
	for (int k = 0; k < nseries; k++) {
		double rgb[3], m = 0.45 * f;
		render_palette(k, rgb);
		for (size_t i = 0; i < s[k].n_events; i++) {
			double x = b.x + (s[k].events[i] - xlo) / (xhi - xlo) * b.w;
			if (s[k].n_events <= 100) {
				double dash[2] = { 0.15 * f, 0.3 * f };
				cairo_set_dash(cr, dash, 2, 0);
				cairo_set_line_width(cr, 0.08 * f);
				cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], 0.6);
				cairo_move_to(cr, x, b.y);
				cairo_line_to(cr, x, b.y + b.h);
				cairo_stroke(cr);
				cairo_set_dash(cr, NULL, 0, 0);
			}
			cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
			cairo_move_to(cr, x - m, b.y + k * m * 1.2);
			cairo_line_to(cr, x + m, b.y + k * m * 1.2);
			cairo_line_to(cr, x, b.y + k * m * 1.2 + 1.6 * m);
			cairo_close_path(cr);
			cairo_fill(cr);
		}
	}
	cairo_restore(cr);
	rint_axes(cr, &b, &ax, &ay, 0, 0, f);
	return 0;
}

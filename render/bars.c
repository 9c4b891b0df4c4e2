/*
 * bars.c: bar charts — per-rank device load before and after a placement
 * (render_devices) and bytes moved per rebalance event (render_transfer).
 * Both put the value axis on the left with light grid lines and their
 * legend in a band under the title, so nothing is ever drawn over a bar.
 */
#include "render/render_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct render_devices_cfg render_devices_cfg_defaults(void)
{
	struct render_devices_cfg c = { 0 };

	c.x_label = "EP rank";
	c.y_label = "device load (tokens per step)";
	c.mean_line = 1;
	c.font = 12;
	return c;
}

struct render_transfer_cfg render_transfer_cfg_defaults(void)
{
	struct render_transfer_cfg c = { 0 };

	c.x_label = "rebalance event (labelled by step)";
	c.stacked = 1;
	c.font = 12;
	return c;
}

/* Plot box for a chart with a title, a legend band of height legend_h,
 * y tick labels as wide as ylw and `right` units kept free on the right. */
static struct rbox plot_box(cairo_t *cr, double w, double h, int has_title, double legend_h,
			    double ylw, double right, double f)
{
	struct rbox b;
	double tl = 0.35 * f;

	b.x = 0.6 * f + 1.3 * f + 0.5 * f + ylw + 0.25 * f + tl;
	b.y = (has_title ? 2.6 : 1.0) * f + legend_h;
	b.w = w - b.x - right;
	b.h = h - b.y - (tl + 0.15 * f + 1.3 * f + 0.3 * f + 1.3 * f + 0.4 * f);
	{
		double x0 = rint_snap(cr, b.x, 1), x1 = rint_snap(cr, b.x + b.w, 1);
		double y0 = rint_snap(cr, b.y, 0), y1 = rint_snap(cr, b.y + b.h, 0);
		b.x = x0, b.w = x1 - x0, b.y = y0, b.h = y1 - y0;
	}
	return b;
}

/* Left edge and width of bar `s` of `series` in group g, device-snapped. */
static void bar_x(cairo_t *cr, const struct rbox *b, int groups, int g, int series, int s,
		  double *x, double *bw)
{
	double gw = b->w / groups, inner = gw * 0.8, w1 = inner / series;
	double x0 = b->x + g * gw + (gw - inner) / 2 + s * w1;
	double a = rint_snap(cr, x0, 1), e = rint_snap(cr, x0 + w1, 1);

	if (e <= a) { /* thinner than a pixel: keep one device pixel */
		double dx = 1, dy = 0;
		cairo_device_to_user_distance(cr, &dx, &dy);
		e = a + dx;
	}
	*x = a;
	*bw = e - a;
}

int render_devices(cairo_t *cr, double w, double h, const struct render_devices_cfg *cfg,
		   const struct render_bars *d)
{
	struct render_devices_cfg def = render_devices_cfg_defaults();
	const double f = cfg && cfg->font > 0 ? cfg->font : def.font;
	struct rint_legend leg[17];
	char text[16][160];
	double ymax = 0, mean[8];
	int nleg = 0, S, G;

	if (!d || d->groups <= 0 || d->series <= 0 || d->series > 8 || !d->values)
		return UTIL_EUSAGE;
	S = d->series;
	G = d->groups;
	for (int s = 0; s < S; s++) {
		double sum = 0, mx = 0;
		for (int g = 0; g < G; g++) {
			double v = d->values[s][g];
			sum += v;
			if (v > mx)
				mx = v;
		}
		mean[s] = sum / G;
		if (mx > ymax)
			ymax = mx;
		snprintf(text[nleg], sizeof(text[nleg]), "%s: imbalance %.3f",
			 d->names && d->names[s] ? d->names[s] : "load",
			 mean[s] > 0 ? mx / mean[s] : 1.0);
		leg[nleg].text = text[nleg];
		render_palette(s, leg[nleg].rgb);
		leg[nleg].kind = 0;
		nleg++;
	}
	if (!(ymax > 0))
		ymax = 1;
	if (cfg ? cfg->mean_line : def.mean_line) {
		/* one dashed line per distinct mean (placements of the same heat share it) */
		snprintf(text[nleg], sizeof(text[nleg]), "mean device load %.4g", mean[0]);
		leg[nleg].text = text[nleg];
		leg[nleg].rgb[0] = leg[nleg].rgb[1] = leg[nleg].rgb[2] = 0.25;
		leg[nleg].kind = 2;
		nleg++;
	}

	rint_title(cr, w, cfg ? cfg->title : NULL, f);
	struct rint_axis ax = { -0.5, G - 0.5, 1, cfg ? cfg->x_label : def.x_label, NULL, 0 };
	struct rint_axis ay = { 0, ymax * 1.08, 0, cfg ? cfg->y_label : def.y_label, NULL, 0 };
	double ylw = rint_ylabel_width(cr, &ay, f);
	double lh = rint_legend(cr, 0, 0, w - 2 * f, leg, nleg, f, 0);
	struct rbox b = plot_box(cr, w, h, cfg && cfg->title, lh + 0.3 * f, ylw, 1.2 * f, f);
	if (b.w < 8 || b.h < 8)
		return UTIL_EUSAGE;
	rint_legend(cr, f, (cfg && cfg->title ? 2.4 : 0.8) * f, w - 2 * f, leg, nleg, f, 1);

	/* grid first, bars over it, frame and ticks last */
	cairo_save(cr);
	cairo_rectangle(cr, b.x, b.y, b.w, b.h);
	cairo_clip(cr);
	rint_axes(cr, &b, &ax, &ay, 0, 1, f);
	for (int s = 0; s < S; s++) {
		double rgb[3];
		render_palette(s, rgb);
		cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
		for (int g = 0; g < G; g++) {
			double x, bw, v = d->values[s][g];
			double top = rint_snap(cr, b.y + b.h - v / ay.hi * b.h, 0);
			bar_x(cr, &b, G, g, S, s, &x, &bw);
			if (v > 0)
				cairo_rectangle(cr, x, top, bw, b.y + b.h - top);
		}
		cairo_fill(cr);
	}
	if (cfg ? cfg->mean_line : def.mean_line) {
		double dash[2] = { 0.6 * f, 0.35 * f };
		cairo_set_dash(cr, dash, 2, 0);
		cairo_set_line_width(cr, 0.16 * f);
		for (int s = 0; s < S; s++) {
			int dup = 0;
			for (int t = 0; t < s; t++)
				if (fabs(mean[t] - mean[s]) <= 1e-9 * (mean[s] + 1))
					dup = 1;
			if (dup)
				continue;
			double y = b.y + b.h - mean[s] / ay.hi * b.h;
			cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
			cairo_move_to(cr, b.x, y);
			cairo_line_to(cr, b.x + b.w, y);
			cairo_stroke(cr);
		}
		cairo_set_dash(cr, NULL, 0, 0);
	}
	cairo_restore(cr);
	rint_axes(cr, &b, &ax, &ay, 0, 0, f);
	return 0;
}

/* Picks a decimal byte unit so the largest value reads below 1000. */
static double byte_unit(double mx, const char **name)
{
	static const char *const names[] = { "bytes", "kB", "MB", "GB", "TB", "PB" };
	double div = 1;
	size_t i = 0;

	while (mx / div >= 1000 && i + 1 < UTIL_ARRAY_SIZE(names)) {
		div *= 1000;
		i++;
	}
	*name = names[i];
	return div;
}

/* The transfer chart with one bar per series side by side (cfg->names):
 * the seconds each link tier takes per rebalance. */
static int transfer_grouped(cairo_t *cr, double w, double h,
			    const struct render_transfer_cfg *cfg, const struct render_transfer *t)
{
	const double f = cfg->font > 0 ? cfg->font : 12;
	const int N = t->events, S = t->layers;
	struct rint_legend leg[7];
	char ylabel[128];
	double mx = 0;
	int *ids = NULL, nl = 0;

	if (S < 1 || S > 7)
		return UTIL_EUSAGE;
	for (size_t k = 0; k < (size_t)N * S; k++)
		mx = t->bytes[k] > mx ? t->bytes[k] : mx;
	if (!(mx > 0))
		mx = 1;
	snprintf(ylabel, sizeof(ylabel), "%s per event", cfg->unit ? cfg->unit : "value");
	for (int k = 0; k < S; k++, nl++) {
		leg[nl].text = cfg->names[k];
		leg[nl].kind = 0;
		render_palette(k, leg[nl].rgb);
	}
	rint_title(cr, w, cfg->title, f);
	if (t->step) {
		ids = xmallocarray((size_t)N, sizeof(int));
		for (int e = 0; e < N; e++)
			ids[e] = (int)fmax(fmin(t->step[e], 2e9), -2e9);
	}
	struct rint_axis ax = { -0.5, N - 0.5, 1, cfg->x_label, ids, ids ? N : 0 };
	struct rint_axis ay = { 0, mx * 1.08, 0, ylabel, NULL, 0 };
	double ylw = rint_ylabel_width(cr, &ay, f);
	double lh = rint_legend(cr, 0, 0, w - 2 * f, leg, nl, f, 0);
	struct rbox b = plot_box(cr, w, h, cfg->title != NULL, lh + 0.3 * f, ylw, 1.2 * f, f);
	if (b.w < 8 || b.h < 8) {
		free(ids);
		return UTIL_EUSAGE;
	}
	rint_legend(cr, f, (cfg->title ? 2.4 : 0.8) * f, w - 2 * f, leg, nl, f, 1);
	cairo_save(cr);
	cairo_rectangle(cr, b.x, b.y, b.w, b.h);
	cairo_clip(cr);
	rint_axes(cr, &b, &ax, &ay, 0, 1, f);
	for (int e = 0; e < N; e++)
		for (int k = 0; k < S; k++) {
			double x, bw, rgb[3], v = t->bytes[(size_t)e * S + k];
			if (!(v > 0))
				continue;
			bar_x(cr, &b, N, e, S, k, &x, &bw);
			double y0 = rint_snap(cr, b.y + b.h, 0);
			double y1 = rint_snap(cr, b.y + b.h - v / ay.hi * b.h, 0);
			if (y1 >= y0)
				y1 = y0 - 1; /* a nonzero time stays visible */
			render_palette(k, rgb);
			cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
			cairo_rectangle(cr, x, y1, bw, y0 - y1);
			cairo_fill(cr);
		}
	cairo_restore(cr);
	rint_axes(cr, &b, &ax, &ay, 0, 0, f);
	free(ids);
	return 0;
}

int render_transfer(cairo_t *cr, double w, double h, const struct render_transfer_cfg *cfg,
		    const struct render_transfer *t)
{
	struct render_transfer_cfg def = render_transfer_cfg_defaults();
	const double f = cfg && cfg->font > 0 ? cfg->font : def.font;
	int stacked = cfg ? cfg->stacked : def.stacked, N, L;
	double mx = 0, div, total = 0, tl = 0.35 * f;
	const char *unit;
	char ylabel[128], ltext[160];
	int *ids = NULL;

	if (!t || t->events <= 0 || t->layers <= 0 || !t->bytes)
		return UTIL_EUSAGE;
	if (cfg && cfg->names)
		return transfer_grouped(cr, w, h, cfg, t);
	N = t->events;
	L = t->layers;
	for (int e = 0; e < N; e++) {
		double sum = 0;
		for (int l = 0; l < L; l++)
			sum += t->bytes[(size_t)e * L + l];
		total += sum;
		if (sum > mx)
			mx = sum;
	}
	if (cfg && cfg->unit) {
		div = 1;
		unit = cfg->unit;
	} else {
		div = byte_unit(mx, &unit);
	}
	snprintf(ylabel, sizeof(ylabel), "%s moved per event", unit);
	if (!(mx > 0))
		mx = 1;

	rint_title(cr, w, cfg ? cfg->title : NULL, f);
	if (t->step) {
		ids = xmallocarray((size_t)N, sizeof(int));
		for (int e = 0; e < N; e++)
			ids[e] = (int)fmax(fmin(t->step[e], 2e9), -2e9);
	}
	struct rint_axis ax = { -0.5, N - 0.5, 1, cfg && cfg->x_label ? cfg->x_label : def.x_label,
				ids, ids ? N : 0 };
	struct rint_axis ay = { 0, mx / div * 1.08, 0, ylabel, NULL, 0 };
	struct rint_legend leg;
	const char *u2 = unit;
	double d2 = cfg && cfg->unit ? 1 : byte_unit(total, &u2);
	/* counts below a million in full; bytes in their unit to 3 digits */
	snprintf(ltext, sizeof(ltext),
		 d2 == 1 && total < 1e6 ? "%s: %d events, %.0f %s in all"
					: "%s: %d events, %.3g %s in all",
		 stacked ? "stacked by layer" : "all layers summed", N, total / d2, u2);
	leg.text = ltext;
	render_palette(0, leg.rgb);
	leg.kind = 0;
	if (stacked)
		render_viridis(0.5, leg.rgb);
	double ylw = rint_ylabel_width(cr, &ay, f);
	double lh = rint_legend(cr, 0, 0, w - 2 * f, &leg, 1, f, 0);
	double right = stacked ? 1.2 * f + 1.1 * f + tl + 0.25 * f +
					 rint_text_width(cr, "0000", f, 0) + 0.4 * f + 1.3 * f + 0.6 * f
			       : 1.2 * f;
	struct rbox b = plot_box(cr, w, h, cfg && cfg->title, lh + 0.3 * f, ylw, right, f);
	if (b.w < 8 || b.h < 8) {
		free(ids);
		return UTIL_EUSAGE;
	}
	rint_legend(cr, f, (cfg && cfg->title ? 2.4 : 0.8) * f, w - 2 * f, &leg, 1, f, 1);

	cairo_save(cr);
	cairo_rectangle(cr, b.x, b.y, b.w, b.h);
	cairo_clip(cr);
	rint_axes(cr, &b, &ax, &ay, 0, 1, f);
	for (int e = 0; e < N; e++) {
		double x, bw, acc = 0;
		bar_x(cr, &b, N, e, 1, 0, &x, &bw);
		for (int l = 0; l < (stacked ? L : 1); l++) {
			double v = 0, rgb[3];
			if (stacked) {
				v = t->bytes[(size_t)e * L + l];
				render_viridis(L > 1 ? (double)l / (L - 1) : 0.5, rgb);
			} else {
				for (int k = 0; k < L; k++)
					v += t->bytes[(size_t)e * L + k];
				render_palette(0, rgb);
			}
			if (!(v > 0))
				continue;
			double y0 = rint_snap(cr, b.y + b.h - acc / div / ay.hi * b.h, 0);
			acc += v;
			double y1 = rint_snap(cr, b.y + b.h - acc / div / ay.hi * b.h, 0);
			if (y1 >= y0)
				continue; /* thinner than a pixel: merged into the next band */
			cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
			cairo_rectangle(cr, x, y1, bw, y0 - y1);
			cairo_fill(cr);
		}
	}
	cairo_restore(cr);
	rint_axes(cr, &b, &ax, &ay, 0, 0, f);
	free(ids);

	if (stacked) {
		/* colour bar: which band is which layer */
		struct rbox cb;
		double ticks[RENDER_MAX_TICKS], step, hl = 1, zero = 0, lw = 0;
		char buf[32];
		cb.x = rint_snap(cr, b.x + b.w + 1.2 * f, 1);
		cb.w = rint_snap(cr, cb.x + 1.1 * f, 1) - cb.x;
		cb.y = b.y;
		cb.h = b.h;
		for (int l = 0; l < L; l++) {
			double rgb[3];
			double ya = rint_snap(cr, cb.y + cb.h - (double)(l + 1) / L * cb.h, 0);
			double yb = rint_snap(cr, cb.y + cb.h - (double)l / L * cb.h, 0);
			render_viridis(L > 1 ? (double)l / (L - 1) : 0.5, rgb);
			cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
			cairo_rectangle(cr, cb.x, ya, cb.w, yb - ya);
			cairo_fill(cr);
		}
		cairo_device_to_user_distance(cr, &hl, &zero);
		cairo_set_line_width(cr, hl);
		cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
		cairo_rectangle(cr, cb.x + hl / 2, cb.y + hl / 2, cb.w - hl, cb.h - hl);
		cairo_stroke(cr);
		int nt = rint_ticks(cr, -0.5, L - 0.5, cb.h, 0, 1, f, ticks, &step);
		for (int i = 0; i < nt; i++) {
			double py = cb.y + cb.h - (ticks[i] + 0.5) / L * cb.h;
			cairo_move_to(cr, cb.x + cb.w, py);
			cairo_line_to(cr, cb.x + cb.w + tl, py);
			cairo_stroke(cr);
			rint_fmt(buf, sizeof(buf), ticks[i], step);
			double tw = rint_text(cr, cb.x + cb.w + tl + 0.25 * f, py, buf, f, 0, 0, 0.5, 0);
			if (tw > lw)
				lw = tw;
		}
		cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
		rint_text(cr, cb.x + cb.w + tl + 0.25 * f + lw + 0.4 * f, cb.y + cb.h / 2,
			  "MoE layer", 1.05 * f, 0, 0.5, 0, -M_PI / 2);
	}
	return 0;
}

/*
 * heatmap.c: a grid of cells coloured by viridis with a colour bar.  The
 * grid is first averaged down to at most one cell per device pixel each
 * way, then painted as one source image scaled with nearest-neighbour
 * filtering: a 100,000-step timeline costs what a plot-sized one does, and
 * vector outputs embed one image instead of millions of rectangles.
 */
#include "render/render_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct render_heatmap_cfg render_heatmap_cfg_defaults(void)
{
	struct render_heatmap_cfg c = { 0 };

	c.title = NULL;
	c.unit = "tokens per step";
	c.font = 12;
	return c;
}

static double cscale(double v, double vmax, int log_scale)
{
	if (!(v > 0) || !(vmax > 0))
		return 0;
	if (log_scale)
		return log10(1 + v) / log10(1 + vmax);
	return v / vmax;
}

/* Colour-bar ticks for a log10(1 + v) scale: 0 and decades, then 2 and 5
 * multiples when there is room; greedy from the bottom so none touch. */
static int log_ticks(double vmax, double len, double fsize, double *ticks)
{
	double cand[RENDER_MAX_TICKS];
	int nc = 0, n = 0;
	int with_25 = vmax < 1000;

	cand[nc++] = 0;
	for (int k = 0; nc < RENDER_MAX_TICKS - 3; k++) {
		double d = pow(10, k); /* exact up to 1e22, past any count */

		if (!(d <= vmax))
			break;
		cand[nc++] = d;
		if (with_25 && 2 * d <= vmax)
			cand[nc++] = 2 * d;
		if (with_25 && 5 * d <= vmax)
			cand[nc++] = 5 * d;
	}
	double last = -1e9;
	for (int i = 0; i < nc; i++) {
		double p = cscale(cand[i], vmax, 1) * len;
		if (p - last >= 2.6 * fsize) {
			ticks[n++] = cand[i];
			last = p;
		}
	}
	return n;
}

/* The plot box (device-snapped) and the raw data maximum (or cfg->vmax). */
static double layout(cairo_t *cr, double w, double h, const struct render_heatmap_cfg *cfg,
		     const struct render_grid *g, const struct rint_axis *ay, struct rbox *out)
{
	const double f = cfg && cfg->font > 0 ? cfg->font : 12;
	double tl = 0.35 * f, vmax, step = 1;
	struct rbox b;

	/* the colour bar's label width depends on vmax: measure with the raw
	 * maximum, which bounds the averaged one from above */
	vmax = cfg && cfg->vmax > 0 ? cfg->vmax : 0;
	if (vmax == 0)
		for (size_t i = 0; i < (size_t)g->rows * (size_t)g->cols; i++)
			if (g->v[i] > vmax)
				vmax = g->v[i];
	{
		char buf[64];
		double cbw, lw = rint_ylabel_width(cr, ay, f);
		double tmp[RENDER_MAX_TICKS];
		rint_ticks(cr, 0, vmax > 0 ? vmax : 1, 400, 0, 0, f, tmp, &step);
		rint_fmt(buf, sizeof(buf), vmax > 0 ? vmax : 1, step);
		cbw = rint_text_width(cr, buf, f, 0) + 0.5 * f;
		b.x = 0.6 * f + 1.3 * f + 0.5 * f + lw + 0.25 * f + tl;
		b.y = (cfg && cfg->title ? 2.6 : 1.0) * f;
		if (cfg && cfg->title && cfg->subtitle && cfg->subtitle[0])
			b.y += 1.4 * f;
		b.w = w - b.x - (1.2 * f + 1.1 * f + tl + 0.25 * f + cbw + 0.4 * f + 1.3 * f + 0.6 * f);
		b.h = h - b.y - (tl + 0.15 * f + 1.3 * f + 0.3 * f + 1.3 * f + 0.4 * f);
	}
	/* crisp edges: the plot box on whole device pixels */
	{
		double x0 = rint_snap(cr, b.x, 1), x1 = rint_snap(cr, b.x + b.w, 1);
		double y0 = rint_snap(cr, b.y, 0), y1 = rint_snap(cr, b.y + b.h, 0);
		b.x = x0, b.w = x1 - x0, b.y = y0, b.h = y1 - y0;
	}
	*out = b;
	return vmax;
}

int render_heatmap_box(cairo_t *cr, double w, double h, const struct render_heatmap_cfg *cfg,
		       const struct render_grid *g, double box[4])
{
	struct rint_axis ay = { 0, 1, 1, cfg ? cfg->y_label : NULL, NULL, 0 };
	struct rbox b;

	if (!g || g->rows <= 0 || g->cols <= 0 || !g->v)
		return UTIL_EUSAGE;
	ay.lo = g->y0;
	ay.hi = g->y1;
	ay.integer = fabs((g->y1 - g->y0) / g->rows - 1) < 1e-9;
	layout(cr, w, h, cfg, g, &ay, &b);
	box[0] = b.x;
	box[1] = b.y;
	box[2] = b.w;
	box[3] = b.h;
	return b.w < 8 || b.h < 8 ? UTIL_EUSAGE : 0;
}

/* The grid averaged into ncols x nrows cells (NaN where no value);
 * *amax OUT the largest.  Owned by the caller (free()). */
static double *aggregate(const struct render_grid *g, int ncols, int nrows, double *amax_out)
{
	double *cell = xmallocarray((size_t)ncols * (size_t)nrows, sizeof(double));
	double amax = 0;

	for (int r = 0; r < nrows; r++) {
		int r0 = (int)((int64_t)r * g->rows / nrows);
		int r1 = (int)((int64_t)(r + 1) * g->rows / nrows);
		for (int c = 0; c < ncols; c++) {
			int c0 = (int)((int64_t)c * g->cols / ncols);
			int c1 = (int)((int64_t)(c + 1) * g->cols / ncols);
			double sum = 0;
			long cnt = 0;
			for (int i = r0; i < r1; i++)
				for (int j = c0; j < c1; j++) {
					double v = g->v[(size_t)i * g->cols + j];
					if (!isnan(v)) {
						sum += v;
						cnt++;
					}
				}
			double v = cnt ? sum / (double)cnt : NAN;
			cell[(size_t)r * ncols + c] = v;
			if (v > amax)
				amax = v;
		}
	}
	*amax_out = amax;
	return cell;
}

/* The cells: one source image, nearest-neighbour scaled.  Vector outputs
 * (SVG, PDF) leave scaling to the viewer, and browsers smooth images they
 * enlarge: there, replicate each cell over kx x ky image pixels so the
 * blur stays within a fraction of a cell. */
static void paint_cells(cairo_t *cr, const struct rbox *bp, const double *cell, int ncols,
			int nrows, double vmax, int log_scale)
{
	struct rbox b = *bp;
	cairo_surface_t *img;
	int kx = 1, ky = 1;

	if (cairo_surface_get_type(cairo_get_target(cr)) != CAIRO_SURFACE_TYPE_IMAGE) {
		kx = (int)ceil(2 * b.w / ncols);
		ky = (int)ceil(2 * b.h / nrows);
		if (kx < 1)
			kx = 1;
		if (ky < 1)
			ky = 1;
	}
	img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, ncols * kx, nrows * ky);
	if (cairo_surface_status(img) == CAIRO_STATUS_SUCCESS) {
		unsigned char *px = cairo_image_surface_get_data(img);
		int stride = cairo_image_surface_get_stride(img);
		cairo_surface_flush(img);
		for (int r = 0; r < nrows; r++) {
			uint32_t *row = (uint32_t *)(void *)(px + (size_t)r * ky * stride);
			for (int c = 0; c < ncols; c++) {
				double v = cell[(size_t)r * ncols + c], rgb[3] = { 0.85, 0.85, 0.85 };
				if (!isnan(v))
					render_viridis(cscale(v, vmax, log_scale), rgb);
				uint32_t pv = (uint32_t)lround(rgb[0] * 255) << 16 |
					      (uint32_t)lround(rgb[1] * 255) << 8 |
					      (uint32_t)lround(rgb[2] * 255);
				for (int i = 0; i < kx; i++)
					row[c * kx + i] = pv;
			}
			for (int i = 1; i < ky; i++)
				memcpy(px + ((size_t)r * ky + i) * stride, row, (size_t)ncols * kx * 4);
		}
		cairo_surface_mark_dirty(img);
		cairo_save(cr);
		cairo_rectangle(cr, b.x, b.y, b.w, b.h);
		cairo_clip(cr);
		cairo_translate(cr, b.x, b.y);
		cairo_scale(cr, b.w / (ncols * kx), b.h / (nrows * ky));
		cairo_set_source_surface(cr, img, 0, 0);
		cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
		cairo_paint(cr);
		cairo_restore(cr);
	}
	cairo_surface_destroy(img);
}

/* The colour bar right of box b, its ticks and the unit. */
static void colour_bar(cairo_t *cr, const struct rbox *bp, double vmax, int log_scale, double f,
		       const char *unit)
{
	struct rbox b = *bp, cb;
	double tl = 0.35 * f, cbt[RENDER_MAX_TICKS], step = 1;
	int nt;

	cb.x = rint_snap(cr, b.x + b.w + 1.2 * f, 1);
	cb.w = rint_snap(cr, cb.x + 1.1 * f, 1) - cb.x;
	cb.y = b.y;
	cb.h = b.h;
	{
		cairo_pattern_t *pat = cairo_pattern_create_linear(0, cb.y + cb.h, 0, cb.y);
		for (int i = 0; i <= 32; i++) {
			double rgb[3];
			render_viridis(i / 32.0, rgb);
			cairo_pattern_add_color_stop_rgb(pat, i / 32.0, rgb[0], rgb[1], rgb[2]);
		}
		cairo_rectangle(cr, cb.x, cb.y, cb.w, cb.h);
		cairo_set_source(cr, pat);
		cairo_fill(cr);
		cairo_pattern_destroy(pat);
	}
	if (log_scale) {
		nt = log_ticks(vmax, cb.h, f, cbt);
	} else {
		nt = rint_ticks(cr, 0, vmax, cb.h, 0, 0, f, cbt, &step);
	}
	{
		double lw = 0, hl = 1, zero = 0;
		char buf[64];
		cairo_device_to_user_distance(cr, &hl, &zero);
		cairo_set_line_width(cr, hl);
		cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
		cairo_rectangle(cr, cb.x + hl / 2, cb.y + hl / 2, cb.w - hl, cb.h - hl);
		cairo_stroke(cr);
		for (int i = 0; i < nt; i++) {
			double py = cb.y + cb.h - cscale(cbt[i], vmax, log_scale) * cb.h;
			cairo_move_to(cr, cb.x + cb.w, py);
			cairo_line_to(cr, cb.x + cb.w + tl, py);
			cairo_stroke(cr);
			rint_fmt(buf, sizeof(buf), cbt[i], log_scale ? (cbt[i] > 0 ? cbt[i] : 1) : step);
			double tw = rint_text(cr, cb.x + cb.w + tl + 0.25 * f, py, buf, f, 0, 0, 0.5, 0);
			if (tw > lw)
				lw = tw;
		}
		cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
		char label[256];
		snprintf(label, sizeof(label), "%s%s", unit, log_scale ? " (log scale)" : "");
		rint_text_fit(cr, cb.x + cb.w + tl + 0.25 * f + lw + 0.4 * f, cb.y + cb.h / 2,
			      label, 1.05 * f, 0, 0.5, 0, -M_PI / 2, cb.h + 2 * f);
	}
}

int render_heatmap(cairo_t *cr, double w, double h, const struct render_heatmap_cfg *cfg,
		   const struct render_grid *g)
{
	struct render_heatmap_cfg def = render_heatmap_cfg_defaults();
	const double f = cfg && cfg->font > 0 ? cfg->font : def.font;
	const char *unit = cfg && cfg->unit ? cfg->unit : def.unit;
	int log_scale = cfg ? cfg->log_scale : 0;
	struct rint_axis ax = { 0, 1, 1, cfg ? cfg->x_label : NULL, NULL, 0 };
	struct rint_axis ay = { 0, 1, 1, cfg ? cfg->y_label : NULL, NULL, 0 };
	double vmax, amax;
	struct rbox b;
	int ncols, nrows;
	double *cell;

	if (!g || g->rows <= 0 || g->cols <= 0 || !g->v)
		return UTIL_EUSAGE;
	ax.lo = g->x0;
	ax.hi = g->x1;
	ax.ids = g->col_ids;
	ax.n_ids = g->col_ids ? g->cols : 0;
	ay.lo = g->y0;
	ay.hi = g->y1;
	/* integer ticks only when the axis is categorical (cells centred on ids) */
	ax.integer = fabs((g->x1 - g->x0) / g->cols - 1) < 1e-9;
	ay.integer = fabs((g->y1 - g->y0) / g->rows - 1) < 1e-9;

	rint_title(cr, w, cfg ? cfg->title : NULL, f);
	if (cfg && cfg->title && cfg->subtitle && cfg->subtitle[0]) {
		cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
		rint_text_fit(cr, w / 2, 2.3 * f, cfg->subtitle, f, 0, 0.5, 0, 0, w - 2 * f);
	}

	vmax = layout(cr, w, h, cfg, g, &ay, &b);
	if (b.w < 8 || b.h < 8)
		return UTIL_EUSAGE;

	/* aggregate to at most one cell per device pixel */
	ncols = rint_device_px(cr, b.w, 1);
	nrows = rint_device_px(cr, b.h, 0);
	if (ncols > g->cols)
		ncols = g->cols;
	if (nrows > g->rows)
		nrows = g->rows;
	cell = aggregate(g, ncols, nrows, &amax);
	if (!(cfg && cfg->vmax > 0))
		vmax = amax;
	if (!(vmax > 0))
		vmax = 1;
	paint_cells(cr, &b, cell, ncols, nrows, vmax, log_scale);
	free(cell);

	rint_axes(cr, &b, &ax, &ay, 1, 0, f);
	colour_bar(cr, &b, vmax, log_scale, f, unit);
	return 0;
}

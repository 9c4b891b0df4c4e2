/*
 * render_int.h: drawing helpers the charts share (render/axes.c): text
 * anchored in any corner, tick choice that never lets labels overlap,
 * titles, frames and legends.  Private to render/.
 */
#ifndef RENDER_RENDER_INT_H
#define RENDER_RENDER_INT_H

#include "render/render.h"


/* A plot area in user units. */
struct rbox {
	double x, y, w, h;
};

/* Text with its anchor point at (x, y): ax 0 left, 0.5 centre, 1 right;
 * ay 0 top, 0.5 middle, 1 bottom of the font's ascent+descent box.
 * angle in radians (text rotated about the anchor).  Returns the width. */
double rint_text(cairo_t *cr, double x, double y, const char *s, double size, int bold,
		 double ax, double ay, double angle);
double rint_text_width(cairo_t *cr, const char *s, double size, int bold);
/* rint_text shrunk a little, then cut with "...", to fit `room` units. */
double rint_text_fit(cairo_t *cr, double x, double y, const char *s, double size, int bold,
		     double ax, double ay, double angle, double room);

/* Formats a tick value given the tick step (decimals follow the step). */
void rint_fmt(char *buf, size_t n, double v, double step);

/* Chooses ticks in [lo, hi] for an axis `len` user units long whose labels
 * do not overlap: horizontal axes compare label widths, vertical ones the
 * font height.  integer: steps of at least 1.  Returns the tick count
 * (ticks[] and *step filled). */
int rint_ticks(cairo_t *cr, double lo, double hi, double len, int horizontal, int integer,
	       double font, double *ticks, double *step);

/* Title centred above the plot area. */
void rint_title(cairo_t *cr, double w, const char *title, double font);

/* Frame around the plot box plus ticks and labels on the left and bottom.
 * xv/yv map values to positions through lo..hi (y: lo at the top when
 * y_down, else at the bottom). */
struct rint_axis {
	double lo, hi;
	int integer;
	const char *label;
	const int *ids;     /* optional: category labels for integer ticks 0..n-1 */
	int n_ids;
};
void rint_axes(cairo_t *cr, const struct rbox *b, const struct rint_axis *x,
	       const struct rint_axis *y, int y_down, int grid, double font);

/* Widest tick label the y axis may show (for the left margin). */
double rint_ylabel_width(cairo_t *cr, const struct rint_axis *y, double font);

/* Legend entries laid out in rows from (x, y) within width w; returns the
 * height used.  With draw = 0 only measures.  kind: 0 box, 1 line, 2 dashed
 * line, 3 triangle marker. */
struct rint_legend {
	const char *text;
	double rgb[3];
	int kind;
};
double rint_legend(cairo_t *cr, double x, double y, double w, const struct rint_legend *e,
		   int n, double font, int draw);

/* Device pixels covered by a user-space width / height (at least 1). */
int rint_device_px(cairo_t *cr, double len, int horizontal);

/* Snaps a user coordinate to the nearest device pixel edge. */
double rint_snap(cairo_t *cr, double v, int horizontal);

/* Writes an image surface as PNG through wr (render/png.c): opaque pages
 * with a fast encoder of our own, anything else through cairo. */
cairo_status_t rint_png_write(cairo_surface_t *sf, cairo_write_func_t wr, void *closure);

#endif

/*
 * render_int.h: drawing helpers the charts share (render/axes.c): text
 * anchored in any corner, tick choice that never lets labels overlap,
 * titles, frames and legends.  Private to render/.
 */
#ifndef RENDER_RENDER_INT_H
#define RENDER_RENDER_INT_H

#include "render/render.h"
#include "render/cairo_dl.h"

#include "analyze/analyze.h"


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
 * line, 3 triangle marker, 4 tick (a thin upright bar). */
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
/* An ARGB32 image surface for a PNG page, its pixels (freed with it) in
 * huge pages when it is large (util_malloc_large): drawing a page then
 * takes a few page faults, not one per 4 KiB. */
cairo_surface_t *rint_png_surface_create(int w, int h);

/* ---- chart jobs (render/job.c) ------------------------------------------
 * `moetrace render` and `moetrace report` describe a chart of a trace with
 * struct render_job_opts; render_job_prepare() reads the trace into a job
 * that owns its arrays (render_job_release() frees them) and
 * render_job_draw() paints it on any cairo_t. */

#define RENDER_MAX_REPLAYS 7

enum render_kind { RENDER_HEATMAP, RENDER_TIMELINE, RENDER_DEVICES, RENDER_IMBALANCE,
		   RENDER_TRANSFER, RENDER_KINDS };
/* The kind named s ("heatmap", ...), or -1. */
int render_kind_parse(const char *s);

/* render_job_opts.layer for a timeline of the layer holding the hottest
 * expert of the steps drawn (`render timeline --layer hot`). */
#define RENDER_LAYER_HOT (-2)

struct render_job_opts {
	const char *cmd;                  /* error prefix: "render", "report" */
	const char *runname, *title, *placement_file;
	const struct analyze_algo *algo;
	enum render_kind kind;
	int64_t replay_id[RENDER_MAX_REPLAYS];
	int nreplay, summed, by_layer, layer, sort_heat, log_scale, force_static;
	int ranks, slots, redundant, width, height;
	double scale;
	int64_t from, to;
	/* devices: with fit_to >= fit_from, the algorithm's placement is fitted
	 * on the heat of [fit_from, fit_to] and scored on [from, to] (steps it
	 * was not fitted on); otherwise fitted on [from, to], in hindsight */
	int64_t fit_from, fit_to;
	unsigned phase_mask;
	/* imbalance and transfer: a replay run in memory (with series) instead
	 * of stored ones; not owned.  replay_name labels it. */
	const struct analyze_replay_out *replay;
	const char *replay_name;
	/* timeline: why this layer (the report's choice), said under the title */
	const char *why;
};
/* Legend names of n stored replays into names[n]: "replay ID: algo" and
 * then, for one replay, its settings; for several, only the settings that
 * differ between them (interval, window, delay, threshold, move cap, pay,
 * episodes, engine preset, layout, precision, links, hardware, ...). */
#define RENDER_REPLAY_NAME 384
void render_replay_names(const struct store_replay *rp, const int64_t *ids, int n,
			 char (*names)[RENDER_REPLAY_NAME]);

/* Every chart option at its default (all layers, all steps, default size). */
void render_job_opts_init(struct render_job_opts *o, const char *cmd, enum render_kind kind);

/* Everything one chart needs.  It owns the arrays it points to. */
struct render_job {
	enum render_kind kind;
	struct render_heatmap_cfg hcfg;
	struct render_grid grid;
	struct render_devices_cfg dcfg;
	struct render_bars bars;
	struct render_imbalance_cfg icfg;
	struct render_series series[RENDER_MAX_REPLAYS + 1];
	int nseries;
	struct render_transfer_cfg tcfg;
	struct render_transfer transfer;
	int64_t nsteps; /* steps (or events) drawn; 0: nothing in the range */
	int layer;      /* the layer drawn (timeline, devices, imbalance); -1 all */
	char title[512], range[128], sub[384], names[2][160], rnames[RENDER_MAX_REPLAYS][RENDER_REPLAY_NAME];
	const char *bar_names[2];
	const double *bar_vals[2];
	struct store_replay rp[RENDER_MAX_REPLAYS];
	struct analyze_replay_out own; /* the default replay of `render imbalance` */
	/* owned arrays */
	double *heat, *fit_heat, *grid_v, *xs, *ys, *xs2, *ys2, *loads, *loads2, *tb, *tstep;
	double *marks;             /* imbalance: the prefill steps of a replay of both phases */
	size_t n_marks;
	char tier[2][120];         /* transfer by tier: the legend of each */
	const char *tier_name[2];
	int *ids;
	int32_t *p2l, *after, *fixed0, *fixed1;
	struct store_replay_event *ev[RENDER_MAX_REPLAYS];
	int64_t *rsteps[RENDER_MAX_REPLAYS], *tbytes;
	double *rimb[RENDER_MAX_REPLAYS], *rbase[RENDER_MAX_REPLAYS], *evx[RENDER_MAX_REPLAYS];
};

/* Reads what the chart of o needs from run (without --run, the first
 * --replay's own run: *run may change).  Returns -1 when j is ready to
 * draw, else the exit status after printing why ("moetrace CMD: ...");
 * "no steps in the range" is such an error (status 2).  j must be zeroed;
 * release it with render_job_release() either way. */
int render_job_prepare(struct render_job *j, struct store *s, struct store_run *run,
		       const struct render_job_opts *o);
void render_job_release(struct render_job *j);
/* Draws a prepared job; a render_draw_fn (ctx = the job). */
int render_job_draw(cairo_t *cr, double w, double h, int page, void *ctx);

#endif

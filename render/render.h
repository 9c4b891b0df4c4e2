/*
 * render: cairo charts of recorded expert heat and of what placements do to
 * it.  Every chart is a pure function of its data drawn on any cairo_t
 * (render_<chart>(cr, w, h, cfg, data), sizes in user units), so the same
 * call paints a PNG, an SVG or one page of a PDF; render_write() is the one
 * function that creates output surfaces and writes files (a heatmap's only
 * surface is the in-memory image its cells are painted from).  The loaders
 * at the end turn a trace into the plain arrays the charts take.
 *
 * Ownership: charts only read their arguments during the call; loaders
 * fill caller-allocated arrays unless they say malloc'ed (free() those).
 */
#ifndef RENDER_RENDER_H
#define RENDER_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include <cairo.h>

#include "analyze/analyze.h"
#include "store/store.h"
#include "util/util.h"

/* The face every chart uses, through cairo's toy font API. */
#define RENDER_FONT "DejaVu Sans"
/* Default chart size in user units (pixels at scale 1, points in PDF). */
#define RENDER_WIDTH 1000
#define RENDER_HEIGHT 600

/* ---- colours (render/colour.c) ------------------------------------------ */

/* Viridis (perceptually uniform, colour-blind safe) at t in [0, 1]. */
void render_viridis(double t, double rgb[3]);
/* Okabe-Ito palette for lines and bars; i cycles through 8 colours (black
 * last, so the first 7 are the coloured ones). */
void render_palette(int i, double rgb[3]);

/* ---- axes (render/axes.c) ------------------------------------------------ */

/* Ticks for values lo..hi on an axis len user units long, in steps of 1, 2
 * or 5 x 10^k: the finest step whose labels (font size `font`, DejaVu
 * Sans as measured on cr) keep at least 1.5 font sizes apart on a
 * horizontal axis, 2.6 font heights on a vertical one.  integer: steps of
 * at least 1.  Fills ticks[RENDER_MAX_TICKS] and *step; returns the count. */
#define RENDER_MAX_TICKS 64
int render_ticks(cairo_t *cr, double lo, double hi, double len, int horizontal, int integer,
		 double font, double *ticks, double *step);
/* The label of tick value v for a tick step: decimals follow the step,
 * "k" / "M" suffixes once the step reaches a thousand / a million. */
void render_tick_label(char *buf, size_t n, double v, double step);
/* Width of s in user units at font size `font` (DejaVu Sans). */
double render_text_width(cairo_t *cr, const char *s, double font);

/* ---- heatmap: a grid of cells, row 0 at the top ------------------------- */

struct render_grid {
	int rows, cols;
	const double *v;           /* rows x cols, row-major; NAN = no data (grey) */
	/* Axis values: column c spans [x0 + c*dx, x0 + (c+1)*dx) with
	 * dx = (x1 - x0) / cols; categorical axes use x0 = -0.5, x1 = cols - 0.5
	 * so that cell c is centred on value c.  Rows likewise, top to bottom. */
	double x0, x1, y0, y1;
	const int *col_ids;        /* optional: expert id shown under each column
				    * (as many as fit: every k-th column) */
};

struct render_heatmap_cfg {
	const char *title;
	const char *subtitle;      /* optional line under the title: why this
				    * data, what grey cells are */
	const char *x_label, *y_label;
	const char *unit;          /* colour bar label, with units */
	int log_scale;             /* colour by log10(1 + v): heavy tails */
	double vmax;               /* top of the colour scale; 0 = data maximum */
	double font;               /* base font size in user units */
};
struct render_heatmap_cfg render_heatmap_cfg_defaults(void);

/* The plot box the heatmap's cells fill, {x, y, width, height} in user
 * units, as render_heatmap() lays it out on cr (device pixel snapping
 * depends on cr's scale).  Lets callers find a cell's pixels. */
int render_heatmap_box(cairo_t *cr, double w, double h, const struct render_heatmap_cfg *cfg,
		       const struct render_grid *g, double box[4]);

/* Cells are aggregated (mean of the non-NAN cells) into at most one column
 * per device pixel and one row per device pixel, so a grid of any size
 * costs at most the plot's pixel count.  Returns 0 or UTIL_EUSAGE for an
 * empty grid. */
int render_heatmap(cairo_t *cr, double w, double h, const struct render_heatmap_cfg *cfg,
		   const struct render_grid *g);

/* ---- devices: grouped bars per rank, one group per series --------------- */

struct render_bars {
	int groups;                /* bars per series (ranks) */
	int series;                /* 1..8 series, drawn side by side */
	const char *const *names;  /* [series] legend names */
	const double *const *values; /* [series][groups] */
};

struct render_devices_cfg {
	const char *title;
	const char *x_label, *y_label;
	int mean_line;             /* dashed line at each series' mean */
	double font;
};
struct render_devices_cfg render_devices_cfg_defaults(void);

/* The legend gives each series' imbalance (max / mean of its bars). */
int render_devices(cairo_t *cr, double w, double h, const struct render_devices_cfg *cfg,
		   const struct render_bars *b);

/* ---- imbalance over steps: lines, rebalance events marked --------------- */

struct render_series {
	const char *name;
	size_t n;
	const double *x;           /* [n] steps, increasing */
	const double *y;           /* [n] imbalance (max / mean device load);
				    * NAN: not scored (no token), a gap */
	size_t n_events;
	const double *events;      /* [n_events] steps where a rebalance took effect */
};

struct render_imbalance_cfg {
	const char *title;
	const char *x_label, *y_label;
	double font;
	/* steps marked by a tick along the plot's bottom (the prefill steps
	 * of a trace of both phases), named marks_label in the legend */
	const double *marks;
	size_t n_marks;
	const char *marks_label;
};
struct render_imbalance_cfg render_imbalance_cfg_defaults(void);

/* More points than device pixels are aggregated per pixel column: a band
 * from the column's minimum to its maximum and a line through its mean.
 * The legend gives each series' mean.  Returns 0 or UTIL_EUSAGE. */
int render_imbalance(cairo_t *cr, double w, double h, const struct render_imbalance_cfg *cfg,
		     const struct render_series *s, int nseries);

/* ---- transfer: bytes moved per rebalance event -------------------------- */

struct render_transfer {
	int events, layers;
	const double *step;        /* [events] step of each event, or NULL */
	const double *bytes;       /* [events x layers] bytes moved per event and layer */
};

struct render_transfer_cfg {
	const char *title;
	const char *x_label;
	int stacked;               /* 1: one band per layer (viridis, colour bar); 0: summed */
	const char *unit;          /* NULL: values are bytes (shown in kB, MB, ...); else
				    * counts of this unit, e.g. "expert copies" */
	const char *const *names;  /* non-NULL: `layers` series drawn side by side, one
				    * legend entry each (the two link tiers), values in
				    * `unit` (e.g. "seconds"); stacked is ignored */
	double font;
};
struct render_transfer_cfg render_transfer_cfg_defaults(void);

int render_transfer(cairo_t *cr, double w, double h, const struct render_transfer_cfg *cfg,
		    const struct render_transfer *t);

/* ---- output (render/write.c) -------------------------------------------- */

/* Draws one page of w x h user units; returns 0 or a negative code. */
typedef int (*render_draw_fn)(cairo_t *cr, double w, double h, int page, void *ctx);

/* Writes `pages` pages drawn by `draw` to path: PNG, SVG or PDF chosen by
 * the extension (.png pixels = w*scale x h*scale; SVG and PDF in points,
 * one page each unless PDF).  Output goes to a temporary file in the same
 * directory renamed over path at the end, so a failure leaves no partial
 * file; a path that is a symbolic link is written through (the file it
 * points to is replaced, the link stays).  Identical drawings give
 * identical bytes (no dates embedded). */
int render_write(const char *path, double w, double h, double scale, int pages,
		 render_draw_fn draw, void *ctx, struct util_err *err);

/* cairo is not linked: it is loaded with dlopen() the first time
 * render_write() is called (render/cairo_dl.h).  A caller that draws on its
 * own cairo_t, not through render_write(), calls this first.  0, or an
 * error naming the library (status UTIL_EIO).  Thread-safe. */
int render_cairo_load(struct util_err *err);

/* Frees the process-wide caches cairo and fontconfig keep (fonts, font
 * configuration), so leak checkers see a clean exit.  Call once, at exit,
 * when no cairo object is alive (nothing to do if nothing was drawn). */
void render_release_static(void);

/* 1 if path ends in an extension render_write knows. */
int render_format_known(const char *path);

/* ---- loaders: trace -> arrays (render/data.c) --------------------------- */

/* Mean tokens per step of every (layer, expert) over [from, to]:
 * mean[layers x experts].  *nsteps gets the step count (0: mean is 0). */
int render_load_heat(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		     unsigned phase_mask, double *mean, int64_t *nsteps, struct util_err *err);

/* One layer's heat over time, steps binned by value into *bins equal
 * ranges of [first, last] step found (*bins is lowered to the number of
 * distinct step values when that is smaller): grid[experts x *bins]
 * (row = expert) gets the mean tokens per step of each bin, NAN where a bin
 * holds no step.  *x0, *x1 get the step range the bins span, *nsteps the
 * step count (0: nothing else is set). */
int render_load_timeline(struct store *s, const struct store_run *run, int layer, int64_t from,
			 int64_t to, unsigned phase_mask, int *bins, double *grid, double *x0,
			 double *x1, int64_t *nsteps, struct util_err *err);

/* Per-step imbalance: under `fixed` (layers x ranks*slots) throughout, or
 * with fixed NULL under the placement in force at each step (the deployed
 * placement as recorded, the static layout before any); for one layer, or
 * with layer < 0 the overall figure sum over layers of max / sum of mean.
 * *x and *y are malloc'ed [*n]: one point per step of the range, y NAN
 * where the layer (every layer) got no token, which has no imbalance. */
int render_load_imbalance(struct store *s, const struct store_run *run, int layer, int64_t from,
			  int64_t to, unsigned phase_mask, int ranks, int slots,
			  const int32_t *fixed, double **x, double **y, size_t *n,
			  struct util_err *err);

/* ---- replays for charts (render/job.c) ---------------------------------- */

/* A replay run in memory for a chart: per-step series (overall, or of
 * `layer`), nothing stored.  interval and window 0 and delay < 0 take the
 * cadence every command replays with (analyze_replay_cadence).  It starts
 * from the deployed placement (static when none is recorded, or with
 * force_static).  It prices moves and steps as `moetrace replay` does by
 * default: the run's ranks per node, the model's serving precision
 * (quant < 0) or `quant`, h100 and its two links; gbytes_per_s > 0 prices
 * both tiers at that bandwidth. */
struct render_replay_req {
	const struct analyze_algo *algo;
	int ranks, slots, layer, force_static, quant;
	int episodes;           /* each window as this many episodes (0: summed only;
				 * < 0: the flagship's forecast, for any other
				 * algorithm analyze_fit_episodes's default) */
	int per_step;           /* instead: the replay's default (the flagship's
				 * forecast, else one episode per step, at most
				 * ANALYZE_REPLAY_EPISODES) */
	int64_t from, to, interval, window, delay;
	unsigned phase_mask;
	const struct store_model *model;
	double gbytes_per_s;
	const char *link;         /* --link: both tiers on this preset; NULL: the hardware's two */
};
/* Fills out (release with analyze_replay_release); *nsteps gets the steps
 * in the range (0: nothing was run).  desc gets a one-line description. */
int render_replay_run(struct store *s, const struct store_run *run,
		      const struct render_replay_req *q, struct analyze_replay_out *out,
		      int64_t *nsteps, char *desc, size_t ndesc, struct util_err *err);

#endif

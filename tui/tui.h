/*
 * tui: `moetrace top`, the live view.  Four parts that know nothing of
 * each other's insides:
 *
 *   - the layout (tui/layout.c): a pure function from terminal rows x cols
 *     to panel rectangles, with no ncurses calls, so it is unit-tested at
 *     many sizes;
 *   - the view (tui/view.c): the data behind one frame.  It follows a run
 *     in a read-only store, keeps the window's heat summed incrementally
 *     (new steps added, steps leaving the window subtracted), the balance
 *     of every layer under the deployed placement and after rebalancing
 *     with the chosen algorithm, and writes a frame as JSON (--snapshot);
 *   - the words (tui/text.c): the header, panel titles and function-key
 *     bar fitted to a width, pure functions unit-tested at every size;
 *   - the screen (tui/draw.c, tui/cmd_top.c): ncurses windows, colours,
 *     glyphs, keys, mouse and the main loop.
 *
 * Ownership: a struct tui_view borrows the store it is given (the caller
 * frees the store after the view); arrays returned by accessors belong to
 * the view and stay valid until the next tui_view_poll()/tui_view_update().
 */
#ifndef TUI_TUI_H
#define TUI_TUI_H

#include <stdint.h>

#include "analyze/analyze.h"
#include "store/store.h"
#include "util/util.h"

/* ---- layout (tui/layout.c) ---------------------------------------------- */

struct tui_rect {
	int y, x, h, w; /* h == 0 or w == 0: the panel is not shown */
};

enum tui_panel {
	TUI_PANEL_HEADER = 0, /* run, model, layout, step, rate, gaps, age */
	TUI_PANEL_TABLE,      /* one row per layer */
	TUI_PANEL_BARS,       /* selected layer: device load per rank before/after */
	TUI_PANEL_SPARK,      /* selected layer: imbalance over recent steps */
	TUI_PANEL_HEAT,       /* selected layer: heat strip of its experts */
	TUI_PANEL_STATUS,     /* keys, messages */
	TUI_PANEL_COUNT,
};

/* The smallest terminal the view draws in; below it one line says so. */
#define TUI_MIN_ROWS 16
#define TUI_MIN_COLS 60

struct tui_layout {
	int rows, cols;
	int too_small;  /* below TUI_MIN_ROWS x TUI_MIN_COLS: nothing but a message */
	int side;       /* table on the left, the layer's panels on the right */
	struct tui_rect panel[TUI_PANEL_COUNT];
};

/* Fills *out for a terminal of rows x cols.  Panels never overlap, stay
 * inside the screen and cover it; small terminals fold the optional
 * panels (heat strip, then sparkline) before shrinking the table. */
void tui_layout_compute(int rows, int cols, struct tui_layout *out);

/* ---- small pure helpers of the screen (tui/draw.c) ------------------------ */

/* Whether TERM names a terminal without Unicode block glyphs (DEC vt52,
 * vt100, vt220, ..., dumb, ansi, or none). */
int tui_term_is_ascii(const char *term);

/* ---- the words of the screen fitted to a width (tui/text.c) ---------------- */

/* Compact number for narrow columns: 950, 12.3k, 4.6M (at most 6 chars
 * below 1e12). */
void tui_fmt_num(char *buf, size_t n, double x);

/* A field of a line: its text, a shorter form (NULL: none) and how much
 * it matters.  Fields of TUI_KEEP are shortened but never left out. */
struct tui_field {
	const char *text, *brief;
	int prio;  /* leaving it out */
	int sprio; /* shortening it (0: as prio) */
};
#define TUI_KEEP 100

/* Cells a UTF-8 string takes (top draws only one-cell glyphs). */
int tui_text_width(const char *s);
/* Joins the fields with sep into buf so that the line takes at most
 * width cells: the least important field is shortened, then left out,
 * first; a line still too wide is cut.  Returns the cells taken. */
int tui_fit(char *buf, size_t n, int width, const struct tui_field *f, int nf, const char *sep);

struct tui_header;
/* The header's first line (run, model, EP layout, placement, shape) and
 * second (step, state, rate, steps, age). */
void tui_text_header(char *buf, size_t n, int width, const struct tui_header *h);
void tui_text_status(char *buf, size_t n, int width, const struct tui_header *h,
		     const char *state);
/* The direction glyph of a sort (down: largest first). */
const char *tui_sort_glyph(int sort, int reverse, int ascii);
/* Panel titles. */
void tui_text_table_title(char *buf, size_t n, int width, const struct tui_header *h, int sort,
			  int reverse, int ascii);
void tui_text_bars_title(char *buf, size_t n, int width, int layer, const char *before,
			 const char *algo, const char *mean_glyph, double mean, int group,
			 int rpn);
void tui_text_spark_title(char *buf, size_t n, int width, int layer, int steps, double now,
			  double min, double max, int prefill, const char *mark);
void tui_text_heat_title(char *buf, size_t n, int width, int layer, int per_cell, int hottest,
			 double share, const char *const levels[4]);
/* The one line shown below TUI_MIN_ROWS x TUI_MIN_COLS, at most cols cells. */
void tui_text_too_small(char *buf, size_t n, int rows, int cols);

/* The function-key bar, htop's manner: "F1Help  F2Algo ..." 8 cells a key;
 * narrow terminals leave out the least used keys. */
struct tui_fkey {
	int fn;            /* F1 .. F10 */
	const char *label;
	int prio;
};
int tui_fkeys_fit(int width, const struct tui_fkey **out);
void tui_text_fkeys(char *buf, size_t n, int width);

/* ---- the view (tui/view.c) ------------------------------------------------ */

struct tui_view_cfg {
	const struct analyze_algo *algo; /* NULL: the flagship, else the first registered */
	int ranks, slots;                /* resolved EP layout */
	int window;                      /* steps; 0 = TUI_WINDOW_DEFAULT */
	unsigned phase_mask;             /* 1 << enum store_phase of the steps to use; 0 = all */
};

#define TUI_WINDOW_DEFAULT 256
#define TUI_WINDOW_MIN 4
/* The window's steps are kept decoded in memory (so leaving steps can be
 * subtracted without reading them again), with the W before it and, for
 * the flagship, the history it forecasts from (ANALYZE_FLAGSHIP_HISTORY
 * windows more, so that a refit reads nothing again) in what is left;
 * this bounds that memory. */
#define TUI_WINDOW_BYTES (256u << 20)

/* Sort orders of the layer table, cycled by `s`. */
enum tui_sort {
	TUI_SORT_LAYER = 0, /* layer index, ascending */
	TUI_SORT_NOW,       /* imbalance now, worst first */
	TUI_SORT_AFTER,     /* imbalance after rebalancing, worst first */
	TUI_SORT_GAIN,      /* now - after, largest first */
	TUI_SORT_MOVES,     /* moves the rebalance needs, most first */
	TUI_SORT_COUNT,
};
const char *tui_sort_name(int sort);

struct tui_layer_row {
	int layer;
	double now;          /* imbalance of the window's heat under the deployed placement;
			      * NAN when the layer got no token in the window (not scored) */
	double after;        /* ... under the chosen algorithm's placement fitted on the
			      * window's W steps before it; 0 if not yet computed */
	int after_fresh;     /* computed on the current window with the current settings */
	int hottest;         /* expert with the most tokens in the window */
	double hottest_share;
	int64_t moves;       /* expert copies the rebalance needs; -1 if unknown */
	int after_none;      /* none: no steps before the window to fit on */
};

/* Sorts rows (n of them) by `sort`; ties by layer, so the order is total. */
void tui_rows_sort(struct tui_layer_row *rows, int n, int sort);

enum tui_state {
	TUI_STATE_EMPTY = 0, /* the run has no steps yet */
	TUI_STATE_LOADING,   /* reading the window's steps (more next poll) */
	TUI_STATE_LIVE,      /* following; data came recently */
	TUI_STATE_IDLE,      /* following; no new data for a while (a finished trace) */
	TUI_STATE_SCRUB,     /* the window was moved back in time */
	TUI_STATE_WAITING,   /* the database was locked or slow: showing older data */
	TUI_STATE_ERROR,     /* a read failed; tui_view_errmsg() says why */
};
const char *tui_state_name(int state);

struct tui_header {
	const struct store_run *run;
	int ranks, slots;
	int deployed;          /* 1: the recorded deployed placement, 0: static layout */
	int64_t deployed_from; /* step the deployed placement took effect */
	const char *algo;
	int window;            /* W: window size in steps */
	unsigned phase_mask;   /* as tui_view_cfg */
	int64_t from, to;      /* the window's step range (to = last step shown) */
	int64_t nsteps;        /* recorded steps inside [from, to] */
	int64_t last_step;     /* newest step of the run in the database */
	int64_t steps;         /* steps of the run in the database */
	int64_t gaps;          /* missing step numbers between the first and last (dropped) */
	double rate;           /* steps per second (recorded times, else arrivals); < 0 unknown */
	double age;            /* seconds since the newest data; < 0 unknown */
	int follow;            /* the window follows the newest step */
	int state;             /* enum tui_state */
	int stale_layers;      /* layers whose "after" is still being computed */
};

struct tui_view;

int tui_view_new(struct store *s, const struct store_run *run, const struct tui_view_cfg *cfg,
		 struct tui_view **out, struct util_err *err);
void tui_view_free(struct tui_view *v);
const char *tui_view_errmsg(const struct tui_view *v);

/* Reads what is new in the database, or what a moved window needs, for at
 * most `budget` seconds (<= 0: no limit), never waiting on a lock: a busy
 * database leaves the state TUI_STATE_WAITING and the data as it was.
 * Returns 1 when the window's data changed, 0 when not, or a negative code
 * after a read error (the view keeps its data). */
int tui_view_poll(struct tui_view *v, double budget);
/* Whether the window's steps are still being read (poll again soon). */
int tui_view_loading(const struct tui_view *v);
/* Recomputes stale "after" placements, `prefer` layer first, for at most
 * `budget` seconds (<= 0: all).  Returns the number still stale. */
int tui_view_work(struct tui_view *v, int prefer, double budget);

/* Settings; each marks what depends on it for recomputation. */
void tui_view_set_window(struct tui_view *v, int window); /* clamped to the memory bound */
int tui_view_window(const struct tui_view *v);
void tui_view_set_algo(struct tui_view *v, const struct analyze_algo *algo);
const struct analyze_algo *tui_view_algo(const struct tui_view *v);
/* Moves the window end by delta steps (leaving follow mode); a move past
 * the newest step follows again. */
void tui_view_scrub(struct tui_view *v, int64_t delta);
void tui_view_follow(struct tui_view *v);
/* The view serves one frame (--snapshot): the flagship's history is read
 * for its fit but not kept for the next (less memory, nothing copied). */
void tui_view_set_once(struct tui_view *v);
/* Recompute "after" for the window as it stands once the window end moved
 * by at least this many steps (default W/4) and `interval` seconds passed. */
void tui_view_set_refit(struct tui_view *v, int64_t steps, double interval);

void tui_view_header(struct tui_view *v, struct tui_header *h);
/* A number that changes whenever what a frame shows from the view may
 * have changed, but for the header's state and ages, which change with
 * time alone (the screen redraws only the header while it stays). */
unsigned tui_view_version(const struct tui_view *v);
int tui_view_layers(const struct tui_view *v);
/* The rows of the layer table, by layer (copy them before sorting). */
const struct tui_layer_row *tui_view_rows(struct tui_view *v);
/* Device loads of `layer` over the window: before[ranks] under the
 * deployed placement, after[ranks] under the algorithm's (NULL or zeros
 * if not computed: returns 0 then, 1 with after).  *mean OUT. */
int tui_view_loads(struct tui_view *v, int layer, double *before, double *after, double *mean);
/* Per-step imbalance of `layer` for the window's steps, oldest first;
 * writes at most max values to out and returns how many. */
int tui_view_history(struct tui_view *v, int layer, double *out, int max);
/* The phase (enum store_phase) of the same steps as tui_view_history. */
int tui_view_phases(const struct tui_view *v, unsigned char *out, int max);
/* Window tokens of each expert of `layer`: out[experts]. */
void tui_view_heat(struct tui_view *v, int layer, double *out);
/* The steps the "after" of `layer` was fitted on: the window's W steps
 * before it (NO_STEP-like INT64_MIN when none). */
void tui_view_after_window(struct tui_view *v, int layer, int64_t *from, int64_t *to);

/* One frame as JSON (header, layer table, selected layer's bars before
 * and after, its imbalance history and expert heat), appended to out. */
void tui_view_json(struct tui_view *v, int layer, struct util_buf *out);

/* ---- Prometheus metrics (tui/metrics.c, `moetrace serve`) ---------------- */

/* Counters over every step of a run (tokens per layer per EP rank, and per
 * expert when per_expert), read incrementally.  s and run must outlive m. */
struct tui_metrics;
int tui_metrics_new(struct store *s, const struct store_run *run, int ranks, int slots,
		    int per_expert, struct tui_metrics **out, struct util_err *err);
void tui_metrics_free(struct tui_metrics *m);
const char *tui_metrics_errmsg(const struct tui_metrics *m);
/* Adds the steps new since the last call, up to step `upto`, to the
 * counters: 0 or a negative code.  Steps the view v (NULL: none) holds
 * decoded are taken from it rather than read again. */
int tui_metrics_poll(struct tui_metrics *m, struct tui_view *v, int64_t upto);
/* Appends the exposition text (format 0.0.4): v's gauges and m's counters. */
void tui_metrics_format(struct tui_metrics *m, struct tui_view *v, struct util_buf *out);

/* ---- a replay following the run (tui/rebalance.c) ----------------------
 * The replay of analyze/replay.c run again, on its own read-only
 * connection, each time the trace has grown past another decision point;
 * its figures only grow and equal `moetrace replay`'s on the same steps. */
struct tui_rebalance_cfg {
	const struct analyze_algo *algo;
	int ranks, slots;                /* resolved EP layout */
	int64_t interval;                /* steps between decisions (>= 1) */
	int64_t window, delay;           /* <= 0 / < 0: `moetrace replay`'s defaults */
	unsigned phase_mask;
};
struct tui_rebalance_figures {
	char algo[32];
	int64_t interval, window, delay; /* as resolved */
	int64_t replays;                 /* replays run so far */
	int64_t steps;                   /* steps the last replay scored */
	int64_t events, moves;           /* rebalances that took effect, expert copies */
	int priced;                      /* the bytes below are known (a model preset) */
	int64_t bytes_intra, bytes_inter; /* copied inside nodes, across nodes */
	double seconds_intra, seconds_inter; /* transfer time on each tier */
	double imbalance_mean, baseline_imbalance_mean;
	double replay_seconds;           /* wall time of the last replay */
	char error[512];                 /* why the last attempt failed, "" if it did not */
};
struct tui_rebalance;
int tui_rebalance_new(const char *path, const char *runname, const struct tui_rebalance_cfg *cfg,
		      struct tui_rebalance **out, struct util_err *err);
/* Replays again now if a decision is due (the caller's thread). */
int tui_rebalance_update(struct tui_rebalance *rb, struct util_err *err);
/* From now on a thread of its own replays when due, checking every second. */
int tui_rebalance_start(struct tui_rebalance *rb, struct util_err *err);
void tui_rebalance_figures(struct tui_rebalance *rb, struct tui_rebalance_figures *out);
void tui_rebalance_free(struct tui_rebalance *rb); /* stops the thread; accepts NULL */
/* Appends the rebalance counters of f to the exposition. */
void tui_metrics_format_rebalance(const struct tui_rebalance_figures *f, struct util_buf *out);
/* Appends the recorder's own counters (moetrace.h's statistics). */
struct moetrace_recorder_stats;
void tui_metrics_format_recorder(const struct moetrace_recorder_stats *st, struct util_buf *out);
/* Appends the counters of a recorder's ClickHouse sink. */
struct moetrace_sink_stats;
void tui_metrics_format_sink(const struct moetrace_sink_stats *st, struct util_buf *out);

/* ---- the /metrics endpoint (tui/server.c) ------------------------------
 * What `moetrace serve`, `record --metrics` and the recorder library's
 * moetrace_recorder_serve_metrics() serve: a read-only connection of its
 * own on the trace, the view and counters above, optionally a following
 * replay and a recorder's counters, over HTTP (libmicrohttpd, loaded when
 * an endpoint starts listening).  The server knows no recorder: it is
 * handed a function that copies the counters (counters_ctx must outlive
 * the server), called once at the start of each scrape. */
struct tui_server_cfg {
	const char *db, *run;            /* trace and run (NULL run: the newest) */
	const struct analyze_algo *algo; /* NULL: the flagship */
	int ranks, slots, redundant;     /* 0: the run's layout */
	int window;                      /* 0: TUI_WINDOW_DEFAULT */
	unsigned phase_mask;
	int per_expert;
	int64_t rebalance_every;         /* 0: no following replay */
	int64_t rebalance_window, rebalance_delay; /* 0 / -1: the replay's defaults */
	/* NULL: no recorder counters; else appends them (Prometheus text) to
	 * out, from a copy taken when the scrape began */
	void (*counters)(void *ctx, struct util_buf *out);
	/* takes that copy, before the trace is read: every step the counters
	 * call recorded is then in what the scrape reads */
	void (*counters_snap)(void *ctx);
	void *counters_ctx;
};
#define TUI_SERVER_CFG_INIT { .rebalance_delay = -1 }
struct tui_server;
int tui_server_new(const struct tui_server_cfg *cfg, struct tui_server **out,
		   struct util_err *err);
/* One exposition into b (replaying first if a decision is due): 0, or a
 * negative code with the message in b. */
int tui_server_collect(struct tui_server *sv, struct util_buf *b);
/* Listens on HOST:PORT, [V6HOST]:PORT or :PORT (port 0: a free one, put
 * in *port) and answers GET /metrics on a thread of its own. */
int tui_server_listen(struct tui_server *sv, const char *listen, int *port,
		      struct util_err *err);
void tui_server_free(struct tui_server *sv); /* stops listening; accepts NULL */

#endif

/*
 * store_backend.h: the interface a storage backend implements, in the
 * manner of git's refs backends.  A struct store is a handle on one
 * backend chosen when it is opened; every store_* function of store.h
 * calls the backend's operation through the table below, and only the
 * backend touches its storage.  SQLite (store/store.c) is the built-in
 * backend and the format of a single trace; others register an opener for
 * a URL scheme (`clickhouse://`, fleet/store_ch.c) from the program that
 * links them, so that store/ never includes a module above it.
 *
 * An operation left NULL is either derived by the front (store/backend.c)
 * from the others -- run_get from run_list, steps_count from steps_span,
 * window_sum from the iterator,
 * deployed_at/changes/last/next from deployed_list -- or, for writes, refused
 * with UTIL_EUSAGE ("... is read-only").  Replay reads left NULL read as
 * "no replay stored".  Tuning operations left NULL do nothing.
 *
 * Ownership: the front allocates the handle (store_backend_new) and frees
 * it after ops->close has released the backend's own state.
 */
#ifndef STORE_STORE_BACKEND_H
#define STORE_STORE_BACKEND_H

#include "store/store.h"

/* clang-format off */
struct store_ops {
	const char *name;                       /* "sqlite", "clickhouse" */
	void (*close)(struct store *s);
	int (*publish)(struct store *s, struct util_err *err);

	/* reads */
	int (*run_get)(struct store *s, const char *name, struct store_run *out);
	int (*run_list)(struct store *s, struct store_run **out, size_t *n);
	int (*run_stats)(struct store *s, int64_t run, struct store_run_stats *st);
	int (*run_missing_counts)(struct store *s, const struct store_run *run, int64_t *missing);
	/* layer < 0: every layer; the iterator is the backend's own */
	int (*iter_new)(struct store *s, const struct store_run *run, int layer, int64_t from,
			int64_t to, unsigned phase_mask, void **it);
	int (*iter_next)(void *it, struct store_step *out);
	void (*iter_free)(void *it);
	int (*steps_count)(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			   unsigned phase_mask, int64_t *n);
	int (*steps_span)(struct store *s, const struct store_run *run, int layer, int64_t from,
			  int64_t to, unsigned phase_mask, int64_t *n, int64_t *first,
			  int64_t *last);
	int (*steps_after)(struct store *s, const struct store_run *run, int64_t after,
			   struct store_steps_news *o);
	/* NULL: summed over iter_new's steps */
	int (*window_sum)(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			  unsigned phase_mask, uint64_t *sum, int64_t *nsteps);
	int (*deployed_list)(struct store *s, const struct store_run *run,
			     struct store_deployed_row **out, size_t *n);
	int (*deployed_at)(struct store *s, const struct store_run *run, int64_t step, int ranks,
			   int slots, int32_t *phy2log, int64_t *from);
	int (*deployed_changes)(struct store *s, const struct store_run *run, int64_t from,
				int64_t to, int64_t **steps, size_t *n);
	int (*deployed_last)(struct store *s, const struct store_run *run, int64_t step,
			     int64_t *from);
	int (*deployed_next)(struct store *s, const struct store_run *run, int64_t step,
			     int64_t *next);
	int64_t (*size_bytes)(struct store *s);
	int (*replay_list)(struct store *s, int64_t run, struct store_replay **out, size_t *n);
	int (*replay_get)(struct store *s, int64_t id, struct store_replay *out);
	int (*replay_series)(struct store *s, int64_t replay, int layer, int64_t **steps,
			     double **imbalance, double **base, size_t *n);
	int (*replay_events)(struct store *s, int64_t replay, struct store_replay_event **out,
			     size_t *n);
	int (*replay_event_moves)(struct store *s, int64_t replay, int layers, size_t n_events,
				  int64_t **bytes_out);
	int (*import_seen)(struct store *s, int64_t run, const char *name, int64_t size,
			   int64_t mtime);

	/* writes */
	int (*begin)(struct store *s);
	int (*commit)(struct store *s);
	int (*rollback)(struct store *s);
	int (*run_add)(struct store *s, struct store_run *run);
	int (*run_set_layout)(struct store *s, int64_t run, int ranks, int slots,
			      int ranks_per_node);
	int (*steps_append)(struct store *s, const struct store_run *run,
			    const struct store_step *steps, size_t n);
	int (*deployed_set)(struct store *s, const struct store_run *run, int64_t from, int ranks,
			    int slots, const int32_t *phy2log);
	int (*import_add)(struct store *s, int64_t run, const struct store_import *im);
	int (*replay_add)(struct store *s, struct store_replay *r);
	int (*replay_finish)(struct store *s, const struct store_replay *r);
	int (*replay_step_add)(struct store *s, int64_t replay, int64_t step, int layers,
			       const double *max_load, const double *mean_load,
			       const double *base_max_load);
	int (*replay_event_add)(struct store *s, int64_t replay, const struct store_replay_event *e,
				int layers, const int64_t *moves, const int64_t *bytes,
				const double *before, const double *after);
	int (*replay_layer_add)(struct store *s, int64_t replay, int layer, double mean,
				double p99, double base_mean, double base_p99, int64_t moves);
	int (*replay_event_effective)(struct store *s, int64_t replay, int64_t event,
				      int64_t step);

	/* tuning */
	int (*cache_size)(struct store *s, int kib);
	void (*busy_timeout)(struct store *s, int ms);
	int (*locked)(const struct store *s);
};
/* clang-format on */

/* Opens `url` for a backend: 0 with *out, or a negative code with err (the
 * message naming the URL without any password). */
typedef int (*store_opener)(const char *url, int flags, struct store **out,
			    struct util_err *err);

/* Makes store_open() hand paths starting with `scheme` ("clickhouse://")
 * to `open`.  Called by the program's front before any store is opened
 * (moetrace.c); a few slots, UTIL_ERANGE when they are taken. */
int store_backend_register(const char *scheme, store_opener open);

/* A handle on backend `ops` with its state `data`; `shown` is the name
 * messages give (a URL without password).  Never fails (aborts on OOM). */
struct store *store_backend_new(const struct store_ops *ops, void *data, const char *shown);
void *store_backend_data(const struct store *s);
/* Sets the handle's message (store_errmsg) and returns code. */
int store_backend_seterr(struct store *s, int code, const char *fmt, ...) UTIL_PRINTF(3, 4);
/* Is a run row's shape one the store could hold (the check every reader of
 * a trace written elsewhere makes before sizing arrays from it)? */
int store_backend_run_ok(const struct store_run *r);

#endif

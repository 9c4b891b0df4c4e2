/*
 * store: the trace store.  A trace holds runs (one recording of one
 * deployment: model shape + EP layout), their steps (time, phase, tokens),
 * each step's counts per layer (in a file: one blob per (run, step, layer)
 * in the codec below), and the placement the engine had deployed from a
 * given step on.  See docs/schema.md for the tables.
 *
 * One interface, several backends (store/store_backend.h): store_open()
 * opens an SQLite file, or a URL whose scheme a backend registered
 * (clickhouse://, read-only).  Callers see runs, steps, heat and
 * placements, never the backend's storage.
 *
 * Ownership: a struct store owns its backend's connection; iterators and the
 * counts they expose belong to the store handle's caller until *_free().
 * Arrays passed in are copied; OUT arrays are caller-allocated unless said.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* Schema version written to PRAGMA user_version by the newest migration. */
#define STORE_SCHEMA_VERSION 4
/* Shape limits the schema allows (codec and SQL functions check them). */
#define STORE_MAX_LAYERS 1024
#define STORE_MAX_EXPERTS 65536
#define STORE_MAX_SLOTS (1 << 20)
/* Value limits (docs/schema.md, "Limits").  A step number is within
 * +-(2^53 - 1): every one is exact as a double (JSON, Python, SQLite REAL,
 * the charts' axes), and the difference or sum of any two fits an int64,
 * so readers of checked steps may subtract them freely.  A step's tokens
 * are 0 .. 2^53 - 1 for the same reasons; first_layer (the model's layer
 * id of MoE layer 0) is 0 .. 2^20. */
#define STORE_STEP_MAX ((INT64_C(1) << 53) - 1)
#define STORE_STEP_MIN (-STORE_STEP_MAX)
#define STORE_TOKENS_MAX STORE_STEP_MAX
#define STORE_MAX_FIRST_LAYER (1 << 20)

/* Is a value one the store keeps?  0, or UTIL_ERANGE with err (may be
 * NULL) saying "step N is outside the range a trace holds (...)"; the
 * importers prefix it with file:line. */
int store_step_check(int64_t step, struct util_err *err);
int store_tokens_check(int64_t tokens, struct util_err *err);

/* ---- model presets (store/model.c) ------------------------------------ */

struct store_model {
	const char *name;
	const char *label;      /* human name, e.g. "DeepSeek-V3 / R1" */
	int layers;             /* MoE layers */
	int experts;            /* routed experts per layer */
	int topk;               /* experts per token */
	int hidden;             /* hidden size */
	int inter;              /* expert intermediate (FFN) size */
	int first_layer;        /* the model's layer id of MoE layer 0 */
	int layer_step;         /* model layer id stride between MoE layers */
	int groups;             /* expert groups (n_group), 1 if none */
	int ranks, slots;       /* typical EP layout: ranks x slots per rank */
	int ranks_per_node;
	const char *source;     /* where the figures come from */
	const char *quant;      /* serving precision of the published weights: "bf16",
				 * "fp8", ... (analyze_quant_parse names) */
	double active_params;   /* parameters active per token (model card) */
};

const struct store_model *store_model_find(const char *name);
const struct store_model *store_model_at(size_t i); /* NULL past the end */
/* The preset name closest to a misspelt one, or NULL (util_suggest). */
const char *store_model_suggest(const char *name);
/* Nodes of an EP layout: a run's ranks_per_node is 0 (unknown) or divides
 * its ranks (the analyses price copies by node and refuse any other), and
 * store_run_add refuses the rest.  _ok: does rpn fit ranks; _default: the
 * node size a run takes when none is given, pref (a preset's, else 8)
 * capped at ranks, or 0 when that does not divide them. */
int store_ranks_per_node_ok(int ranks, int rpn);
int store_ranks_per_node_default(int ranks, int pref);

/* ---- counts codec (store/codec.c) ------------------------------------- */

enum store_codec_tag {
	STORE_CODEC_RAW = 0,  /* varint n, then n little-endian uint32 */
	STORE_CODEC_RICE = 1, /* varint n, k, Rice-coded values with escapes */
};

/* Upper bound on the encoded size of n values. */
size_t store_codec_bound(size_t n);
/* Encodes n values into out (store_codec_bound(n) bytes); returns the size. */
size_t store_codec_encode(const uint32_t *v, size_t n, uint8_t *out);
/* Number of values a blob holds (from its header), or a negative code. */
int64_t store_codec_count(const uint8_t *in, size_t len);
/* Decodes exactly n values; UTIL_EPARSE on a malformed or mismatched blob. */
int store_codec_decode(const uint8_t *in, size_t len, uint32_t *v, size_t n);

/* ---- the store ---------------------------------------------------------- */

struct store;

enum store_open_flags {
	STORE_READONLY = 1, /* never writes; fails if the file does not exist */
	STORE_CREATE = 2,   /* create the file if missing */
	STORE_STAGE = 4,    /* with STORE_CREATE: a missing file is built under a
			     * private name beside it until store_publish() */
};

int store_open(const char *path, int flags, struct store **out, struct util_err *err);
/* Frees the handle.  A staged database not published is removed: a
 * failed command leaves no file, and never touches one another process
 * created at its path meanwhile. */
void store_free(struct store *s);
/* Frees the handle after its writes are committed.  A staged database is
 * checkpointed and renamed to its path; if another process created that
 * path meanwhile, its runs are added to that file instead (an error if a
 * run name is taken).  On failure nothing appears at the path.  Without
 * staging (the file existed) it is store_free(). */
int store_publish(struct store *s, struct util_err *err);
const char *store_errmsg(const struct store *s);
const char *store_path(const struct store *s);
/* Tuning of a reader or writer: the page cache (KiB), how long to wait for
 * another process's lock (ms; 0 fails at once), and whether the last
 * failure was such a lock (retry later) rather than an error. */
int store_cache_size(struct store *s, int kib);
void store_busy_timeout(struct store *s, int ms);
int store_locked(const struct store *s);

/* Transactions nest (savepoints): begin/commit/rollback. */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);

enum store_phase { STORE_PHASE_UNKNOWN = 0, STORE_PHASE_PREFILL = 1, STORE_PHASE_DECODE = 2 };
const char *store_phase_name(int phase);
int store_phase_parse(const char *s); /* -1 if unknown word */
/* A stored phase a trace can hold; every backend refuses the rest as
 * corrupt (a phase mask shifts by it), with STORE_PHASE_RANGE in its
 * message. */
static inline int store_phase_ok(int64_t v)
{
	return v >= STORE_PHASE_UNKNOWN && v <= STORE_PHASE_DECODE;
}
#define STORE_PHASE_RANGE "0 (unknown), 1 (prefill) or 2 (decode)"

struct store_run {
	int64_t id;
	char name[128];
	char model[64];         /* preset name or "" */
	int layers, experts, topk;
	int ranks, slots, ranks_per_node; /* EP layout, 0 if unknown */
	int first_layer;        /* model layer id of MoE layer 0 */
	double created;         /* unix time */
	char source[256];       /* "gen seed=7", "import x.csv", ... */
};

struct store_run_stats {
	int64_t steps, first_step, last_step;
	int64_t prefill_steps, decode_steps;
	int64_t tokens;         /* sum of step tokens */
	double first_time, last_time;
	int64_t blob_bytes;     /* total size of counts blobs; -1 on a server (not per run) */
	int64_t deployed;       /* rows of deployed placement */
};

/* Adds a run; run->id is set.  Fails if the name exists. */
int store_run_add(struct store *s, struct store_run *run);
/* Finds a run: the run named `name`, else (name all digits) the run of
 * that id; NULL or "" selects the newest run.  Every command's --run goes
 * through it.  UTIL_ENOTFOUND names the run when there is none. */
int store_run_get(struct store *s, const char *name, struct store_run *out);
/* All runs, oldest first; *out is malloc'ed, free() it. */
int store_run_list(struct store *s, struct store_run **out, size_t *n);
int store_run_stats(struct store *s, int64_t run, struct store_run_stats *st);
/* Counts rows the run's steps lack: steps x layers minus the counts rows
 * of layers 0..L-1 (a deleted row reads as zero heat).  Reads the counts
 * key of the run, not the blobs. */
int store_run_missing_counts(struct store *s, const struct store_run *run, int64_t *missing);
/* Updates the run's EP layout. */
int store_run_set_layout(struct store *s, int64_t run, int ranks, int slots, int ranks_per_node);

struct store_step {
	int64_t step;
	double time;            /* unix seconds, 0 if unknown */
	int phase;              /* enum store_phase */
	int64_t tokens;         /* tokens in the batch (not x top-k), 0 if unknown */
	uint32_t *counts;       /* layers x experts, row-major by layer */
};

/* Appends steps in one transaction.  Steps must be new for the run. */
int store_steps_append(struct store *s, const struct store_run *run,
		       const struct store_step *steps, size_t n);

/* Iterates steps in [from, to] in order; phase_mask selects phases
 * (1 << phase; 0 = all).  store_iter_next returns 1 with a step, 0 at the
 * end, or a negative code.  The step's counts buffer belongs to the
 * iterator and is overwritten by the next call. */
struct store_iter;
int store_iter_new(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		   unsigned phase_mask, struct store_iter **out);
int store_iter_next(struct store_iter *it, struct store_step *out);
void store_iter_free(struct store_iter *it);
/* The same over one layer: the step's counts are that layer's E values,
 * and only steps holding a counts row of the layer are given. */
int store_iter_layer_new(struct store *s, const struct store_run *run, int layer, int64_t from,
			 int64_t to, unsigned phase_mask, struct store_iter **out);

/* Steps of the run in [from, to] (phase_mask as above) into *n: 0, or a
 * negative code with the message in store_errmsg(). */
int store_steps_count(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		      unsigned phase_mask, int64_t *n);
/* Steps of [from, to] (phase_mask as above; layer >= 0: only steps holding
 * a counts row of that layer): their number *n and, when *n > 0, the first
 * and last. */
int store_steps_span(struct store *s, const struct store_run *run, int layer, int64_t from,
		     int64_t to, unsigned phase_mask, int64_t *n, int64_t *first, int64_t *last);
/* What a follower asks at each poll: the steps recorded after `after` (all
 * phases), the first and last of them and the newest step time. */
struct store_steps_news {
	int64_t steps, first_step, last_step;
	double last_time;
};
int store_steps_after(struct store *s, const struct store_run *run, int64_t after,
		      struct store_steps_news *o);
/* Sums the counts of [from, to] (phase_mask as above) into sum[L*E];
 * *nsteps (may be NULL) gets the number of steps summed. */
int store_window_sum(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		     unsigned phase_mask, uint64_t *sum, int64_t *nsteps);

/* Deployed placement: phy2log of every layer (layers x ranks*slots, logical
 * expert per slot, rank-major) in force from step `from` on. */
int store_deployed_set(struct store *s, const struct store_run *run, int64_t from, int ranks,
		       int slots, const int32_t *phy2log);
/* The placement in force at `step`: fills phy2log (layers x ranks*slots of
 * the run's layout) and returns 0, or UTIL_ENOTFOUND if none recorded.
 * *from (may be NULL) gets the step it took effect. */
int store_deployed_at(struct store *s, const struct store_run *run, int64_t step, int ranks,
		      int slots, int32_t *phy2log, int64_t *from);

/* The first step after `step` from which a deployed placement row of the
 * run takes effect (the next change of the placement in force): 0 with
 * *next set, or UTIL_ENOTFOUND if none is recorded after it. */
int store_deployed_next(struct store *s, const struct store_run *run, int64_t step, int64_t *next);
/* The steps in [from, to] at which a deployed placement took effect,
 * ascending; *steps malloc'ed (NULL when *n is 0). */
int store_deployed_changes(struct store *s, const struct store_run *run, int64_t from,
			   int64_t to, int64_t **steps, size_t *n);
/* The step the placement in force at `step` took effect (*from), or
 * UTIL_ENOTFOUND when none is recorded at or before it (cheap: no
 * placement is read or checked). */
int store_deployed_last(struct store *s, const struct store_run *run, int64_t step, int64_t *from);

/* Every deployed placement row of a run, ordered by step and layer, each
 * checked (store/deployed_list.c); *out is malloc'ed, free it with
 * store_deployed_rows_free. */
struct store_deployed_row {
	int64_t step;
	int layer, ranks, slots;
	int32_t *phy2log;       /* ranks * slots logical experts */
};
int store_deployed_list(struct store *s, const struct store_run *run,
			struct store_deployed_row **out, size_t *n);
void store_deployed_rows_free(struct store_deployed_row *rows, size_t n);

/* ---- imported dump files (store/imports.c) -------------------------------- */

/* A dump file `import --follow` took into a run: its name in the followed
 * directory, size and mtime (ns) identify it, so it is never taken twice. */
struct store_import {
	const char *name;
	int64_t size, mtime;
	int64_t first_step, last_step;
};
/* 1 if the run already holds the file, 0 if not, or a negative code. */
int store_import_seen(struct store *s, int64_t run, const char *name, int64_t size,
		      int64_t mtime);
/* Records that the run took the file (call inside the transaction that
 * added its steps). */
int store_import_add(struct store *s, int64_t run, const struct store_import *im);

/* ---- replays (store/replay.c) -------------------------------------------- */

struct store_replay {
	int64_t id, run;
	double created;
	char algo[32];
	int ranks, slots;
	int64_t interval, window, delay;
	double threshold;
	int episodes, max_moves;
	char params[1024];          /* JSON object of every parameter */
	int64_t steps, events, moves, bytes;
	double imbalance_mean, baseline_imbalance_mean;
	double imbalance_p99, baseline_imbalance_p99;
	double transfer_seconds, saved_seconds, net_stop_seconds, net_overlap_seconds;
	/* settings beside the columns above (schema 3; "" or 0 in replays stored
	 * before it that did not record them) */
	int pay, ranks_per_node;
	char quant[16], link_intra[32], link_inter[32], hardware[32];
	char engine[32];            /* engine preset the settings came from, "" if none */
	double step_ms;             /* measured step time given, 0: estimated */
	/* serving units (schema 3) */
	int64_t tokens, bytes_inter;
	double moe_seconds, baseline_moe_seconds, baseline_step_seconds;
};

struct store_replay_event {
	int64_t event, step, effective_step; /* effective_step < 0: never took effect */
	int layers;
	int64_t moves, bytes;
	double transfer_seconds, algo_seconds;
	int64_t bytes_inter;        /* of bytes, copied across nodes */
	double transfer_intra_seconds, transfer_inter_seconds;
};

/* Adds the replay row (summary fields as given; update with _finish);
 * r->id is set. */
int store_replay_add(struct store *s, struct store_replay *r);
/* Rewrites the summary fields of r->id. */
int store_replay_finish(struct store *s, const struct store_replay *r);
/* One step's per-layer figures (arrays of `layers`). */
int store_replay_step_add(struct store *s, int64_t replay, int64_t step, int layers,
			  const double *max_load, const double *mean_load,
			  const double *base_max_load);
/* An event and, per layer (arrays of `layers`, may be NULL), its moves,
 * bytes and the window's imbalance before/after; layers with no moves and
 * equal imbalance are not stored. */
int store_replay_event_add(struct store *s, int64_t replay, const struct store_replay_event *e,
			   int layers, const int64_t *moves, const int64_t *bytes,
			   const double *before, const double *after);
int store_replay_layer_add(struct store *s, int64_t replay, int layer, double mean, double p99,
			   double base_mean, double base_p99, int64_t moves);
/* Sets the first step an event's placement was in force (known only once
 * the replay has passed it). */
int store_replay_event_effective(struct store *s, int64_t replay, int64_t event, int64_t step);
/* Replays of a run (run < 0: all), oldest first; *out malloc'ed. */
int store_replay_list(struct store *s, int64_t run, struct store_replay **out, size_t *n);
int store_replay_get(struct store *s, int64_t id, struct store_replay *out);
/* Per-step series of one layer (layer < 0: all layers, sum of max / sum of
 * mean): steps[], imbalance[] under the replay and base[] under the start
 * placement; arrays malloc'ed, *n entries. */
int store_replay_series(struct store *s, int64_t replay, int layer, int64_t **steps,
			double **imbalance, double **base, size_t *n);
/* Events of a replay; *out malloc'ed. */
int store_replay_events(struct store *s, int64_t replay, struct store_replay_event **out,
			size_t *n);
/* Moves per (event, layer): *out malloc'ed [n_events * layers], zero where
 * nothing moved. */
int store_replay_event_moves(struct store *s, int64_t replay, int layers, size_t n_events,
			     int64_t **bytes_out);

/* Opens `path` and selects a run (NULL/"" = newest): the usual first step
 * of a command.  On failure *s is NULL and err says why. */
int store_open_run(const char *path, const char *run, int flags, struct store **s,
		   struct store_run *r, struct util_err *err);

/* Database file size in bytes (page_count * page_size); -1 for a server. */
int64_t store_size_bytes(struct store *s);
/* Bytes of encoded expert counts store_steps_append has committed through
 * this handle (the step data itself, whatever the pages and WAL around it). */
int64_t store_appended_bytes(const struct store *s);

#endif

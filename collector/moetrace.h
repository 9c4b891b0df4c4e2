/*
 * moetrace.h: the embedding API of libmoetrace.  An inference engine opens
 * a recorder on a trace database with a description of its run (model
 * shape and EP layout), hands it the per-expert token counts of every step
 * (or the top-k ids of every layer, histogrammed here), records the
 * placement it deploys, and closes it.  docs/collector.md is the guide.
 *
 * Threading and cost: moetrace_recorder_step() only copies the counts into
 * a ring preallocated by open() and returns; it never allocates, never
 * touches the disk and never waits unless the blocking policy was chosen
 * and the ring is full.  A writer thread owned by the recorder commits the
 * ring to SQLite in batched transactions.  The step/topk/placement/flush
 * calls of one recorder must come from one thread at a time (the engine's
 * step loop); stats() and errmsg() may be called from any thread.
 *
 * Errors: every fallible function returns 0 or a negative MOETRACE_E*
 * code; moetrace_errmsg() gives the message of the last failure on that
 * handle.  The library never aborts or exits the process that loaded it.
 *
 * Ownership: the recorder copies everything it is given; the handle is
 * the caller's until moetrace_recorder_free().
 */
#ifndef MOETRACE_H
#define MOETRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOETRACE_API_VERSION 1

/* Error codes (the same values as the CLI's util codes). */
enum moetrace_code {
	MOETRACE_OK = 0,
	MOETRACE_EIO = -1,       /* file system failure */
	MOETRACE_EDB = -3,       /* SQLite failure */
	MOETRACE_EUSAGE = -4,    /* invalid argument (NULL, bad option, shape mismatch) */
	MOETRACE_ENOMEM = -6,    /* allocation failed (open(), serve_metrics(), ship(),
				    the sink's attempts) */
	MOETRACE_ERANGE = -7,    /* value out of range for the run (layer, expert id, shape) */
	MOETRACE_ESTATE = -8,    /* call not valid now: closed, or a step number going backwards */
	MOETRACE_EFULL = -9,     /* ring full under the drop policy: the step was dropped */
};

enum moetrace_phase {
	MOETRACE_PHASE_UNKNOWN = 0,
	MOETRACE_PHASE_PREFILL = 1,
	MOETRACE_PHASE_DECODE = 2,
};

/* What is being recorded: one deployment of one model.  Strings are copied. */
struct moetrace_run_desc {
	const char *name;   /* run name, unique in the database (required) */
	const char *model;  /* model preset or free text, may be NULL */
	int layers;         /* MoE layers L (1..1024) */
	int experts;        /* routed (logical) experts E per layer (1..65536) */
	int topk;           /* experts per token, 0 if unknown */
	int ranks;          /* EP ranks R, 0 if unknown */
	int slots;          /* physical expert slots per rank S, 0 if unknown */
	int ranks_per_node; /* 0 if unknown, else a divisor of ranks (MOETRACE_ERANGE) */
	int first_layer;    /* the model's layer id of MoE layer 0 (metadata) */
	const char *source; /* free text stored with the run ("vllm 0.9 node3"), may be NULL */
};

enum moetrace_policy {
	MOETRACE_DROP = 0,  /* ring full: drop the step and count it (default) */
	MOETRACE_BLOCK = 1, /* ring full: wait for the writer (never loses a step) */
};

/* Recorder options; zero fields select the defaults shown. */
struct moetrace_recorder_opts {
	int ring_steps;    /* ring capacity in steps (default 256) */
	int batch_steps;   /* steps per SQLite transaction (default 64, <= ring_steps) */
	int policy;        /* enum moetrace_policy (default MOETRACE_DROP) */
	int flush_ms;      /* longest time a queued step waits for its batch (default 100) */
	int cache_kib;     /* SQLite page cache of the writer connection (default 2048) */
	int append;        /* 1: continue a run of the same name and shape if it exists */
	int shard;         /* 1: this recorder records EP rank shard_rank's slots alone */
	int shard_rank;    /* the rank (0..ranks-1) when shard is 1 */
};
#define MOETRACE_RECORDER_OPTS_INIT { 0, 0, 0, 0, 0, 0, 0, 0 }

/* Every step handed in ends in one counter: once flush() or close() has
 * returned, recorded + dropped + failed is the number of steps handed in. */
struct moetrace_recorder_stats {
	int64_t recorded;     /* steps whose transaction committed: what the database holds */
	int64_t dropped;      /* steps dropped because the ring was full */
	int64_t failed;       /* steps whose commit failed (full disk, I/O error): rolled
				 back, not in the database; see last_error */
	int64_t queued;       /* steps in the ring now */
	int64_t high_water;   /* largest number of steps the ring ever held */
	int64_t batches;      /* transactions committed */
	int64_t bytes;        /* bytes of encoded expert counts committed (the step
				 data, not the pages or WAL around it) */
	int64_t placements;   /* placements committed */
	int64_t mem_bound;    /* bytes the recorder allocated at open(), never exceeded */
	int64_t ring_steps;   /* ring capacity */
	int64_t last_step;    /* last step accepted by step()/step_topk(), -1 if none */
	int last_error;       /* code of the last writer failure, 0 if none */
};

struct moetrace_recorder;

/* Opens (creating if missing) the trace database at path and adds the run
 * described by desc; opts may be NULL.  A new file is created atomically:
 * it appears under its name only once its schema and run are written.
 * As with sqlite3_open(), *out receives a handle even on failure (then
 * closed, with moetrace_errmsg() saying why; free it with
 * moetrace_recorder_free()); it is NULL only if that handle could not be
 * allocated (MOETRACE_ENOMEM). */
int moetrace_recorder_open(const char *path, const struct moetrace_run_desc *desc,
			   const struct moetrace_recorder_opts *opts,
			   struct moetrace_recorder **out);

/* Records one step: counts holds layers x experts token counts (row-major
 * by layer), phase an enum moetrace_phase, tokens the batch's token number
 * (0 if unknown).  Steps must increase.  Returns 0, MOETRACE_EFULL if the
 * ring was full and the step dropped (drop policy), or an error. */
int moetrace_recorder_step(struct moetrace_recorder *rec, int64_t step, const uint32_t *counts,
			   int phase, int64_t tokens);
/* The same with the number of values passed, checked against layers x
 * experts (for bindings that cannot trust the caller's shape). */
int moetrace_recorder_step_n(struct moetrace_recorder *rec, int64_t step, const uint32_t *counts,
			     size_t ncounts, int phase, int64_t tokens);

/* Records one step from per-slot counts, the figure engines with EP
 * balancing keep (tokens each physical expert processed): slot_counts
 * holds layers x nslots values, nslots = ranks * slots, or slots alone
 * for a shard recorder (its rank's slots in order).  Each slot's tokens
 * are credited to the logical expert the last placement() puts there, so
 * a placement must have been recorded first.  Shards of all ranks add up
 * to the global heat: `moetrace merge` does that (docs/collector.md). */
int moetrace_recorder_step_slots(struct moetrace_recorder *rec, int64_t step,
				 const uint32_t *slot_counts, size_t nslots, int phase,
				 int64_t tokens);

/* Adds one layer's routing decisions to step `step`: topk_ids holds
 * ntokens x k logical expert ids (row-major); negative ids (padding) are
 * ignored.  Calls for the same step accumulate; a call for a later step,
 * moetrace_recorder_step_end() or flush() hands the finished step to the
 * ring.  An id >= experts is an error and leaves the step unchanged. */
int moetrace_recorder_step_topk(struct moetrace_recorder *rec, int64_t step, int layer,
				const int32_t *topk_ids, int64_t ntokens, int k);
/* Ends the top-k step `step` with its phase and batch tokens (0: the most
 * tokens any layer routed, the ntokens of its calls for the step summed). */
int moetrace_recorder_step_end(struct moetrace_recorder *rec, int64_t step, int phase,
			       int64_t tokens);

/* Records the placement deployed from step from_step on: phy2log holds
 * layers x (ranks * slots) logical expert ids, the EP layout of the run
 * description.  Copied and written by the writer thread; at most a few
 * placements can be pending (MOETRACE_EFULL under the drop policy). */
int moetrace_recorder_placement(struct moetrace_recorder *rec, int64_t from_step,
				const int32_t *phy2log);

/* Waits until every step handed in so far is committed.  Returns the code
 * of a database failure since the previous flush, if any. */
int moetrace_recorder_flush(struct moetrace_recorder *rec);

/* Copies the counters (callable from any thread, also after close). */
int moetrace_recorder_stats(struct moetrace_recorder *rec, struct moetrace_recorder_stats *st);

/* Flushes, stops the writer, closes the database and releases the ring.
 * The handle stays valid for stats() and errmsg(); any other call then
 * fails with MOETRACE_ESTATE.  Closing twice is an error, not a crash. */
int moetrace_recorder_close(struct moetrace_recorder *rec);

/* Closes if needed and releases the handle; accepts NULL. */
void moetrace_recorder_free(struct moetrace_recorder *rec);

/* Message of the last failure on rec ("" if none); the string belongs to
 * rec and is overwritten by the next failing call. */
const char *moetrace_errmsg(const struct moetrace_recorder *rec);

/* Bytes open() would allocate for this shape and these options (the stated
 * memory bound), or a negative code for an invalid shape. */
int64_t moetrace_recorder_mem_bound(const struct moetrace_run_desc *desc,
				    const struct moetrace_recorder_opts *opts);

/* Options of the /metrics endpoint; zero fields select the defaults shown. */
struct moetrace_metrics_opts {
	const char *algo;        /* algorithm of the rebalanced figures (default the
				    flagship, as `moetrace serve`) */
	int window;              /* steps the imbalance gauges are computed on
				    (default 256, at least 4) */
	int per_expert;          /* 1: also one token counter per expert and layer */
	int64_t rebalance_every; /* > 0: follow the run with a replay deciding every
				    this many steps and export its rebalances and
				    bytes moved (moetrace serve --rebalance-every) */
	int ranks, slots;        /* EP layout of the per-rank figures (default the
				    run's; required when the run records none) */
};
#define MOETRACE_METRICS_OPTS_INIT { NULL, 0, 0, 0, 0, 0 }

/* Serves GET /metrics (Prometheus text format, the metrics of `moetrace
 * serve` and the recorder's own counters; docs/metrics.md) on listen,
 * "HOST:PORT" ("127.0.0.1:0" picks a free port, put in *port, which may
 * be NULL), until moetrace_recorder_free().  The endpoint reads the trace
 * on a connection and threads of its own; the step path is not touched.
 * It loads libmicrohttpd (libmicrohttpd.so.12) now, and holds the view
 * of `moetrace top` in memory (2 x window x layers x experts x 4 bytes:
 * 30 MB for DeepSeek-V3 at the default window).  opts may be NULL.
 * Returns 0, MOETRACE_EUSAGE for a bad option, MOETRACE_EIO when the
 * address cannot be listened on or the library not loaded, MOETRACE_ESTATE
 * when closed or already serving. */
int moetrace_recorder_serve_metrics(struct moetrace_recorder *rec, const char *listen,
				    const struct moetrace_metrics_opts *opts, int *port);

/* Options of a ClickHouse sink; zero fields select the defaults shown. */
struct moetrace_sink_opts {
	const char *deployment; /* the deployment the run is shipped under (default the
				   URL's deployment=, else the file's name without its
				   extension, as `moetrace push`) */
	int64_t backlog;        /* steps committed and not yet shipped beyond which
				   the oldest are skipped for the sink (default 100000) */
	int batch;              /* steps per INSERT (default 1024) */
	int wait_ms;            /* at close, how long to keep trying to ship what is
				   left (default 5000; < 0: not at all) */
	int retry_max_ms;       /* longest wait between two attempts (default 2000) */
	int rollup_only;        /* 1: ship only the sums of each complete window of N
				   steps per layer (N: the schema's rollup steps), as
				   `moetrace push --rollup-only`; the file keeps every step */
};
#define MOETRACE_SINK_OPTS_INIT { NULL, 0, 0, 0, 0, 0 }

/* Once the recorder is closed, shipped + skipped is the number of steps
 * recorded since the sink started. */
struct moetrace_sink_stats {
	int64_t shipped;      /* steps the server acknowledged */
	int64_t skipped;      /* steps not shipped: beyond the backlog while the server
				 was away, left at close, or after the sink gave up;
				 the file has them and `moetrace push` fills them in */
	int64_t retries;      /* failed attempts (each retried unless gave_up) */
	int64_t lag;          /* steps committed, neither shipped nor skipped yet */
	int64_t last_shipped; /* the newest step acknowledged, -1 if none */
	int last_error;       /* code of the last failed attempt, 0 after a success */
	int gave_up;          /* 1: the server refused in a way retrying cannot mend
				 (credentials, a database that is not moetrace's) */
	char message[512];    /* the last failure ("" if none), the URL without password */
};

/* Ships the run live to ClickHouse (docs/fleet.md): url is
 * clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE[?deployment=NAME].
 * Call it after open() and before the first step; the steps the run held
 * before (an appended run) are left to `moetrace push`.  A thread of the
 * sink's own reads each committed batch back from the file and sends it
 * (full resolution; the server sums the rollups), so the step path is
 * untouched and the engine thread never waits on the network; while the
 * server is away it retries, and close() waits for it at most wait_ms.
 * It loads libcurl (libcurl.so.4) now and contacts no server yet.
 * Memory the sink cannot allocate later is a failed attempt, as an
 * unreachable server is: counted in retries (last_error MOETRACE_ENOMEM)
 * and retried after the wait; the process is never aborted.
 * Returns 0, MOETRACE_EUSAGE for a malformed URL or option (the message
 * names the URL without its password), MOETRACE_EIO when libcurl cannot be
 * loaded, MOETRACE_ESTATE when closed, shipping already, or steps were
 * handed in already. */
int moetrace_recorder_ship(struct moetrace_recorder *rec, const char *url,
			   const struct moetrace_sink_opts *opts);

/* Copies the sink's counters (any thread, also after close): 0, or
 * MOETRACE_ESTATE when the recorder has no sink. */
int moetrace_recorder_sink_stats(struct moetrace_recorder *rec, struct moetrace_sink_stats *st);

/* Reading a trace without moetrace: decodes one counts blob (the `data`
 * column of the `counts` table, one layer of one step) into counts[experts].
 * Returns 0, or MOETRACE_ERANGE when the blob is malformed or does not hold
 * exactly `experts` values (counts is then unspecified). */
int moetrace_counts_decode(const void *blob, size_t len, uint32_t *counts, size_t experts);

#ifdef __cplusplus
}
#endif

#endif

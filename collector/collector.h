/*
 * collector: everything that produces traces — the synthetic generator
 * (collector/gen.c), the importers (CSV, engine dumps; docs/formats.md
 * describes every format), the heat exporters, the merge of per-rank
 * shards, and the recorder behind the embedding API of collector/moetrace.h
 * (the installed header, for engines).  This is the folder's one header
 * for the rest of moetrace; import_int.h is private to the importers.
 *
 * Every importer adds one new run, all or nothing: on error the database
 * is as it was and err names the file, the line, record or key, and the
 * field.
 *
 * Ownership: handles are freed with their *_free(); arrays passed in are
 * copied or only read during the call; paths are only read; OUT arrays are
 * caller-allocated unless said; run (may be NULL) receives the new run.
 */
#ifndef COLLECTOR_COLLECTOR_H
#define COLLECTOR_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"
#include "util/util.h"

/* ---- synthetic generator (collector/gen.c) ------------------------------ */

struct collector_gen_cfg {
	const struct store_model *model; /* shape: layers, experts, topk */
	uint64_t seed;
	/* Workload knobs; 0 selects the calibrated default (docs/generator.md). */
	double prefill_fraction;  /* share of steps that are prefill; < 0: none
				     (decode only), 1: prefill only */
	int decode_batch;         /* running requests in a decode step */
	int prefill_tokens;       /* tokens in a prefill step */
	int domains;              /* workload domains the traffic switches between */
	double skew;              /* x the calibrated popularity spread (0 < skew <= 10) */
	double drift;             /* x the calibrated drift and domain-switch rate;
				     < 0: frozen popularity, one domain mix */
	int fresh_routing;        /* 1: every token's experts drawn afresh (slower),
				     0: from per-request slices of pre-drawn k-sets */
};

struct collector_gen;
int collector_gen_new(const struct collector_gen_cfg *cfg, struct collector_gen **out,
		      struct util_err *err);
/* Produces the next step: fills step->counts (caller-allocated, layers x
 * experts) and sets step->phase, step->tokens; step->step and step->time
 * are left to the caller. */
int collector_gen_next(struct collector_gen *g, struct store_step *step);
void collector_gen_free(struct collector_gen *g);

/* ---- importers (collector/import_*.c) ------------------------------------ */

struct collector_import_opts {
	const char *run_name;            /* required */
	const struct store_model *model; /* NULL: shape from the data (or layers/experts) */
	int layers, experts, topk;       /* explicit shape; 0 = from model or data */
	int ranks, slots, ranks_per_node;/* EP layout to record; 0 = model's or none */
	int progress;                    /* report progress on stderr */
	int pipeline_stages;             /* Megatron-LM: pipeline-parallel size; 0 = 1 */
	const char *deployed;            /* the placement file given with the trace, or NULL
					  * (TensorRT-LLM slot statistics fold through it) */
	int replicated;                  /* SGLang: N ranks each counted every token; 0 = no */
};

/* Imports a CSV trace (header naming step, layer, expert, tokens and
 * optionally phase, in any order; rows grouped by increasing step) as a
 * new run, all or nothing: on error the database is as it was and err
 * names file:line and field.  run (may be NULL) receives the new run. */
int collector_import_csv(struct store *s, const char *path,
			 const struct collector_import_opts *o, struct store_run *run,
			 struct util_err *err);

/* ---- engine-dump importers, format detection (collector/import*.c) -------- */

/* Trace formats `moetrace import --format` knows. */
enum collector_format {
	COLLECTOR_FORMAT_AUTO = 0,
	COLLECTOR_FORMAT_CSV,
	COLLECTOR_FORMAT_JSONL,    /* ours: {"step", "layer", "counts": [...]} or per step */
	COLLECTOR_FORMAT_MEGATRON, /* Megatron-LM router_trace_rank*.jsonl */
	COLLECTOR_FORMAT_TRTLLM,   /* TensorRT-LLM meta_info.json + rank*.safetensors */
	COLLECTOR_FORMAT_SGLANG,   /* SGLang expert-distribution .pt dumps */
};
int collector_format_parse(const char *s); /* -1 if unknown */
const char *collector_format_name(int format);
/* Guesses the format of path (a file or a directory) from its name, then
 * its first bytes: COLLECTOR_FORMAT_* or a negative code with err set. */
int collector_format_detect(const char *path, struct util_err *err);

/* JSON lines of ours, one object per line, grouped by increasing step:
 *   {"step": 5, "layer": 0, "counts": [3, 0, 7, ...]}        one layer
 *   {"step": 5, "counts": [[3, 0, 7, ...], [...], ...]}      every layer
 * with optional "phase" ("prefill", "decode", "unknown"), "time" (unix
 * seconds) and "tokens" (the batch's tokens).  A first line
 * {"moetrace": 1, "model": ..., "layers": ..., "experts": ..., "topk": ...,
 * "ranks": ..., "slots": ..., "first_layer": ...} (what export writes)
 * gives the run's description; options override it.  Lines
 *   {"deployed": 5, "ranks": R, "slots": S, "phy2log": [[R x S ids], ...]}
 * give the placement deployed from step 5 on, every layer's, one per
 * change, by increasing step.  Integers are JSON integers as written (no
 * fraction or exponent), and the text is strict JSON (util_json_parse). */
int collector_import_jsonl(struct store *s, const char *path,
			   const struct collector_import_opts *o, struct store_run *run,
			   struct util_err *err);

/* Megatron-LM router traces (--moe-routing-trace-path): one JSON line per
 * (step, block, layer, rank) with "top_indices" [[expert ids] per token],
 * or per-layer "tokens_per_expert" [E] lines.  path is one file or a
 * directory of router_trace_rank*.jsonl; ranks' counts are summed; "mtp"
 * blocks are skipped.  Layer numbers are model layer ids. */
int collector_import_megatron(struct store *s, const char *path,
			      const struct collector_import_opts *o, struct store_run *run,
			      struct util_err *err);

/* TensorRT-LLM expert statistics (EXPERT_STATISTIC_PATH): a directory, or
 * its meta_info.json, or one rank*.safetensors; tensors keyed
 * "{iter}_{layer}" hold tokens per expert [E] of one rank, summed over
 * ranks.  Layers are model layer ids. */
int collector_import_trtllm(struct store *s, const char *path,
			    const struct collector_import_opts *o, struct store_run *run,
			    struct util_err *err);

/* SGLang expert-distribution dumps (torch.save .pt files of
 * ExpertDistributionRecorder, collector/import_sglang.c): `stat` dumps
 * ({"logical_count": [buffer slots, layers, experts]}; each non-empty slot
 * a step, numbered by slot; several stat dumps follow one another) or
 * `per_pass`/`per_token` dumps (one per rank; records summed per
 * forward_pass_id, which numbers the steps, physical slots credited to the
 * logical expert last_physical_to_logical_map puts there, the map recorded
 * as the deployed placement).  Leading all-zero model layers (dense) are
 * dropped.  o->replicated = N: the dumps come from N ranks that each
 * counted every token (tensor parallelism without DP attention): stat
 * counts are divided by N (refused unless multiples), per_pass records must
 * come from N ranks with equal counts and are kept once.  Without append a
 * new run is made (run is OUT, named
 * o->run_name, its source "import sglang SOURCE"); with append the steps go
 * after those of the existing run `run` (IN), whose shape the dumps must
 * have.  One transaction: all or nothing.  first_step[i] and last_step[i]
 * (arrays of n, both or neither NULL) get the steps paths[i] added: a
 * per_pass dump's rank files share theirs; a file that added none gets
 * last_step[i] = first_step[i] - 1.  Memory holds a few forward passes. */
int collector_import_sglang(struct store *s, const char *const *paths, size_t n,
			    const struct collector_import_opts *o, const char *source,
			    struct store_run *run, int append, int64_t *first_step,
			    int64_t *last_step, struct util_err *err);
/* 1 if path ends in a zip end record (torch.save has finished writing it). */
int collector_sglang_complete(const char *path);
/* The DIR/ *.pt files in the order SGLang wrote them (the time in their
 * names); *files is malloc'ed, free with collector_sglang_list_free. */
int collector_sglang_list(const char *dir, char ***files, size_t *n, struct util_err *err);
void collector_sglang_list_free(char **files, size_t n);

/* Dispatches on format (AUTO detects it). */
int collector_import(struct store *s, const char *path, int format,
		     const struct collector_import_opts *o, struct store_run *run,
		     struct util_err *err);

/* ---- safetensors (collector/import_trtllm.c) ------------------------------ */

/* One tensor of a safetensors file: name, dtype word ("I64", ...), shape,
 * and its bytes inside the mapped file. */
struct collector_st_tensor {
	char name[128];
	char dtype[8];
	int ndim;
	int64_t shape[4];
	const uint8_t *data;
	size_t bytes;
};
/* Parses a safetensors image of len bytes (an 8-byte little-endian header
 * length, a JSON header, raw little-endian arrays); *tensors is malloc'ed
 * (free() it) and points into buf. */
int collector_st_parse(const char *path, const uint8_t *buf, size_t len,
		       struct collector_st_tensor **tensors, size_t *n, struct util_err *err);

/* ---- exporters (collector/export.c) ---------------------------------------- */

enum collector_export_format { COLLECTOR_EXPORT_CSV, COLLECTOR_EXPORT_JSONL };

struct collector_export_opts {
	int format;           /* enum collector_export_format */
	int64_t from, to;     /* step range, inclusive */
	int sparse;           /* CSV: omit zero cells */
};

/* Writes the run's heat in [from, to] to path through a temporary file
 * renamed into place ("-" writes standard output; a symbolic link is
 * written through: its target is replaced, the link stays); *steps (may
 * be NULL) gets the number of steps written.  The caller refuses a path
 * that is the trace s reads (util_out_check). */
int collector_export(struct store *s, const struct store_run *run,
		     const struct collector_export_opts *o, const char *path, int64_t *steps,
		     struct util_err *err);

/* ---- merging per-rank shards (collector/merge.c) ---------------------------
 * A shard is a run recorded by one EP rank (the recorder's shard mode tags
 * its source "shard rank=R"): per step, the tokens its own slots processed,
 * credited to the logical experts the deployed placement puts in them.
 * Merging adds the shards step by step.  The result is plain values. */

struct collector_merge_opts {
	const char *run;      /* run to take from each shard (NULL = newest) */
	const char *out_run;  /* name of the merged run (NULL = shard run name + "-merged") */
	int sum;              /* shards are partial counts of disjoint tokens, not rank shards */
	int partial;          /* allow ranks without a shard */
	int common_steps;     /* merge the steps every shard has, leave out the others */
};
#define COLLECTOR_MERGE_OPTS_INIT { NULL, NULL, 0, 0, 0 }

struct collector_merge_result {
	int64_t steps;        /* steps written */
	int64_t incomplete;   /* steps some shard lacks (left out with common_steps) */
	int64_t mixed;        /* --sum: steps whose shards gave different phases, stored
			       * as unknown */
	int64_t first_missing;    /* the first of them */
	const char *missing_from; /* the first shard that lacks it (one of the paths given) */
	const char *missing_in;   /* the first shard that has it */
	int64_t placements;   /* placement versions copied */
	int ranks_missing;    /* ranks without a shard (with partial) */
	struct store_run run; /* the merged run */
};

/* Merges n shard databases into a new run of out (created if missing),
 * all or nothing: on error out is as it was (or not created) and err
 * names the shard, step and layer at fault.  Refused (UTIL_EUSAGE): a
 * shard given twice (the same file by any name), shards that disagree on
 * the run's shape, model, top-k, EP layout or first layer, rank shards that
 * disagree on the phase of a step, and, unless common_steps, a step some
 * shard lacks. */
int collector_merge(const char *out, const char *const *shards, size_t n,
		    const struct collector_merge_opts *o, struct collector_merge_result *res,
		    struct util_err *err);

/* The rank a run was recorded for ("shard rank=R" in its source), or -1. */
int collector_shard_rank(const struct store_run *run);

/* ---- observers of a recorder (collector/recorder.c) ------------------------
 * What runs beside a recorder without touching its step path: the /metrics
 * endpoint and the ClickHouse sink.  An observer is told on the writer
 * thread after each committed batch (keep it short: set a flag, signal a
 * thread of your own), once by close() after the last commit, and released
 * by moetrace_recorder_free() before the recorder goes.  The recorder keeps
 * a copy of the struct; ctx belongs to the observer. */
struct moetrace_recorder;
struct collector_observer {
	const char *name;   /* "metrics", "sink": one of each per recorder */
	/* after a batch of n steps, the last of them last_step, committed */
	void (*committed)(void *ctx, int64_t last_step, int64_t n);
	void (*closed)(void *ctx);  /* the writer has stopped; NULL: nothing */
	void (*release)(void *ctx); /* NULL: nothing */
	void *ctx;
	/* reads the other observers' state (the /metrics endpoint reads the
	 * sink's counters): released before them, so that none of its
	 * threads reads what they have freed */
	int reads_others;
};
/* Adds an observer to an open recorder: 0, MOETRACE_ESTATE when closed or
 * one of that name is there, MOETRACE_EFULL past four (message in
 * moetrace_errmsg). */
int collector_recorder_observe(struct moetrace_recorder *rec, const struct collector_observer *o);
/* The ctx of the recorder's observer of that name, or NULL. */
void *collector_recorder_observer(struct moetrace_recorder *rec, const char *name);
/* The recorder's run and database path (the observer reads the trace on
 * a connection of its own). */
const struct store_run *collector_recorder_run(const struct moetrace_recorder *rec);
const char *collector_recorder_path(const struct moetrace_recorder *rec);
/* Sets the recorder's message (moetrace_errmsg) and returns code. */
int collector_recorder_fail(struct moetrace_recorder *rec, int code, const char *fmt, ...)
	UTIL_PRINTF(3, 4);

#endif

/*
 * import.h (private to collector/ and its commands): the engine-dump
 * importers beside the CSV one of collector.h, the deployed-placement
 * reader behind `import --deployed`, and the heat exporters behind
 * `moetrace export`.  docs/formats.md ("Trace formats") describes every
 * format.
 *
 * Every importer adds one new run, all or nothing, exactly as
 * collector_import_csv does: on error the database is as it was and err
 * names the file, the line, record or key, and the field.
 *
 * Ownership: paths are only read; OUT arrays are caller-allocated unless
 * said; run (may be NULL) receives the new run.
 */
#ifndef COLLECTOR_IMPORT_H
#define COLLECTOR_IMPORT_H

#include <stdint.h>
#include <stdio.h>

#include "collector/collector.h"
#include "store/store.h"
#include "util/util.h"

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
 * gives the run's description; options override it. */
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
 * have.  One transaction: all or nothing.  *first_step and *last_step
 * (may be NULL) get the steps written.  Memory holds a few forward passes. */
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
 * renamed into place ("-" writes standard output); *steps (may be NULL)
 * gets the number of steps written. */
int collector_export(struct store *s, const struct store_run *run,
		     const struct collector_export_opts *o, const char *path, int64_t *steps,
		     struct util_err *err);

#endif

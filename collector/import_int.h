/*
 * import_int.h (private to collector/import_*.c): the trace builder the
 * engine-dump importers share.  An importer parses its files and adds one
 * record per (step, layer) it reads — counts of one source (file or rank);
 * records of different sources for the same (step, layer) are summed, the
 * same source twice is an error.  imp_finish then fixes the shape, sorts,
 * checks and writes the run in one transaction.
 *
 * Ownership: the builder owns copies of everything added; messages quote
 * the source names given to imp_source, which must outlive the builder.
 */
#ifndef COLLECTOR_IMPORT_INT_H
#define COLLECTOR_IMPORT_INT_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/collector.h"

struct imp_rec {
	int64_t step;
	int64_t layer;       /* as in the file: MoE index or model layer id */
	int64_t line;        /* line or record number in its source, for messages */
	int64_t tokens;      /* batch tokens if the record says, else -1 */
	double time;         /* 0 if unknown */
	size_t off;          /* counts at pool + off */
	uint32_t n;          /* counts given */
	int src;
	int8_t phase;        /* -1 if unknown */
	uint8_t exact;       /* n is the expert count (a full counts vector) */
	uint8_t per_step;    /* tokens/time came from a per-step record */
	int32_t lidx;        /* MoE layer index, set by imp_finish */
};

struct imp {
	const char *format;       /* "jsonl", "megatron", ... for the run's source */
	int model_layer_ids;      /* record layers are model layer ids, not 0..L-1 */
	int keyed;                /* records are tensors keyed "{step}_{layer}", not lines */
	int topk;                 /* learned from the data, 0 if unknown */
	int sum_repeats;          /* the same (step, layer) twice in one source is summed
				   * (training microbatches), not an error */
	int64_t repeats;          /* records summed that way, set by imp_finish */
	char note[192];           /* appended to the run's source: what the import did */
	/* run description read from the data (0/"" = unknown) */
	char model[64];
	int layers, experts, ranks, slots, first_layer;
	int ranks_per_node;
	int first_layer_set;
	struct imp_rec *recs;
	size_t n, cap;
	uint32_t *pool;
	size_t pool_n, pool_cap;
	const char **src;
	int nsrc, src_cap;
	uint32_t *scratch;        /* histogram buffer for importers */
	size_t scratch_n;
};

void imp_init(struct imp *b, const char *format, int model_layer_ids);
void imp_release(struct imp *b);
/* Registers a source (file) name; returns its index or a negative code. */
int imp_source(struct imp *b, const char *name, struct util_err *err);
/* Adds one record; counts (n values) are copied. */
int imp_add(struct imp *b, int src, int64_t line, int64_t step, int64_t layer, int phase,
	    double time, int64_t tokens, const uint32_t *counts, size_t n, int exact,
	    struct util_err *err);
/* A zeroed scratch buffer of n values (reused between calls). */
uint32_t *imp_scratch(struct imp *b, size_t n, struct util_err *err);
/* Shape, order, duplicates, phases; then the run in one transaction. */
int imp_finish(struct imp *b, struct store *s, const struct collector_import_opts *o,
	       const char *path, struct store_run *run_out, struct util_err *err);
/* --ranks/--slots/--ranks-per-node over the layout the data or the preset
 * gave run; UTIL_EUSAGE when ranks x slots cannot hold the experts. */
int imp_layout_options(struct store_run *run, const struct collector_import_opts *o,
		       struct util_err *err);

/* The files DIR/PREFIX*SUFFIX as "DIR/name", sorted by name length, then
 * name (rank2 before rank10); *files is malloc'ed (free with
 * imp_free_list), *nf may be 0. */
int imp_list_dir(const char *dir, const char *prefix, const char *suffix, char ***files,
		 size_t *nf, struct util_err *err);
void imp_free_list(char **files, size_t nf);
/* The rank files of an engine that writes DIR/PREFIX{R}SUFFIX, one per
 * rank: (*files)[r] is rank r's, *nf the number of ranks (may be 0).
 * Another name PREFIX*SUFFIX (a copy such as "rank0 (copy)", "rank00",
 * "rank0.old") and a gap in the ranks are refused (UTIL_EPARSE, naming
 * the file or the rank): summed with the rest, a copy would count its rank
 * twice, and a missing rank would go unnoticed.  engine names the writer
 * in messages.  Free with imp_free_list. */
int imp_list_ranks(const char *dir, const char *prefix, const char *suffix, const char *engine,
		   char ***files, size_t *nf, struct util_err *err);
/* R if base is PREFIX{R}SUFFIX as the engines write it (decimal, no
 * leading zero), else -1. */
int imp_rank_of_name(const char *base, const char *prefix, const char *suffix);
/* Sorts SGLang dump paths by the time in their names, then by name. */
void imp_sglang_sort(char **files, size_t n);

/* ---- small JSON helpers ---------------------------------------------------- */

/* Reads a whole file into a malloc'ed NUL-terminated buffer. */
int imp_read_file(const char *path, char **data, size_t *len, struct util_err *err);
/* A non-negative JSON integer up to INT64_MAX: 0, -1 if v is none (a
 * double, even 3.0, is not one), -2 if past INT64_MAX. */
int imp_json_u64(struct json_object *v, uint64_t *out);
/* field as an int64 in [min, max]; *out untouched if absent and !required.
 * Messages name "where" (e.g. "x.jsonl:3") and the field. */
int imp_json_field_i64(struct json_object *o, const char *field, int required, int64_t min,
		       int64_t max, int64_t *out, const char *where, struct util_err *err);
/* An array of uint32 counts into the scratch buffer: *vals, *n. */
int imp_json_counts(struct imp *b, struct json_object *a, const char *field, uint32_t **vals,
		    size_t *n, const char *where, struct util_err *err);
/* Calls fn for each non-blank line of a JSON-lines file, parsed as an
 * object by util_json_parse (strict: a key twice, a trailing comma, ... is
 * refused naming the line); where is "path:line".  Stops at the first
 * non-zero return. */
typedef int (*imp_line_fn)(void *ctx, struct json_object *o, int64_t line, const char *where,
			   struct util_err *err);
/* An optional fast path tried first on the raw text of a line (one of
 * printable ASCII only): returns 1 if it took the line, 0 to leave it to
 * json-c and fn (so every message comes from one place), or a negative
 * code.  It must take only lines the strict parser takes, with the same
 * values. */
typedef int (*imp_fast_fn)(void *ctx, const char *text, size_t n, int64_t line,
			   struct util_err *err);
/* Fast-path helpers: skip JSON white space; read a JSON integer (no
 * fraction, exponent or leading zero, |v| < INT64_MAX), NULL if not one. */
const char *imp_ws(const char *p, const char *e);
const char *imp_int(const char *p, const char *e, int64_t *out);
int imp_jsonl_each(const char *path, imp_fast_fn fast, imp_line_fn fn, void *ctx,
		   struct util_err *err);
/* Optional "phase" field: enum store_phase or -1 if absent. */
int imp_json_phase(struct json_object *o, int *phase, const char *where, struct util_err *err);

#endif

/*
 * collector: everything that produces traces — the synthetic generator
 * (collector/gen.c), the importers (CSV, engine dumps), and the recorder
 * behind the embedding API of collector/moetrace.h.
 *
 * Ownership: handles are freed with their *_free(); arrays passed in are
 * copied or only read during the call.
 */
#ifndef COLLECTOR_COLLECTOR_H
#define COLLECTOR_COLLECTOR_H

#include <stdint.h>

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
};

/* Imports a CSV trace (header naming step, layer, expert, tokens and
 * optionally phase, in any order; rows grouped by increasing step) as a
 * new run, all or nothing: on error the database is as it was and err
 * names file:line and field.  run (may be NULL) receives the new run. */
int collector_import_csv(struct store *s, const char *path,
			 const struct collector_import_opts *o, struct store_run *run,
			 struct util_err *err);

#endif

/*
 * analyze: placements and what they do to device load.  A placement is,
 * per layer, phy2log[ranks * slots]: the logical expert in each physical
 * slot, rank-major (rank r owns slots r*slots .. r*slots+slots-1).  Device
 * load assumes a replicated expert's tokens split evenly among its
 * replicas; imbalance is max device load / mean device load.
 *
 * Ownership: every OUT array is caller-allocated with the size stated.
 */
#ifndef ANALYZE_ANALYZE_H
#define ANALYZE_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

/* The engines' default layout: slot p holds expert p % experts (vLLM's
 * initial map; redundant slots at the end take experts 0, 1, ...). */
void analyze_static_phy2log(int experts, int ranks, int slots, int32_t *phy2log);

/* Replica count per expert: cnt[experts]. */
void analyze_replicas(const int32_t *phy2log, int nslots, int experts, int *cnt);

/* Checks a placement: every slot in range, every expert placed at least
 * once; with no_dup, no expert twice on one rank. */
int analyze_placement_check(const int32_t *phy2log, int experts, int ranks, int slots,
			    int no_dup, struct util_err *err);

/* Device loads load[ranks] for heat[experts] under phy2log; returns the
 * maximum.  cnt (replicas per expert) may be NULL: it is then computed. */
double analyze_device_load(const double *heat, int experts, const int32_t *phy2log, int ranks,
			   int slots, const int *cnt, double *load);
double analyze_device_load_u32(const uint32_t *heat, int experts, const int32_t *phy2log,
			       int ranks, int slots, const int *cnt, double *load);

/* max / mean of n loads (1.0 when all are zero). */
double analyze_imbalance(const double *load, int n);

/* Per-layer balance of a run's steps under one placement per layer. */
struct analyze_balance_layer {
	double imbalance;      /* of the summed heat over the window */
	double step_mean;      /* mean over steps of per-step imbalance */
	double step_p50, step_p99;
	double max_load, mean_load; /* summed window, tokens */
	int hottest;           /* expert with the most tokens */
	double hottest_share;  /* its share of the layer's tokens */
};
struct analyze_balance {
	int layers;
	int64_t steps;
	double overall;        /* sum of max / sum of mean over layers (summed window) */
	double step_overall_mean; /* mean over steps of the per-step overall figure */
	struct analyze_balance_layer *layer; /* [layers], malloc'ed */
};
/* phy2log: layers x ranks*slots.  Fills b (free with analyze_balance_release). */
int analyze_balance_run(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			unsigned phase_mask, const int32_t *phy2log, int ranks, int slots,
			struct analyze_balance *b);
void analyze_balance_release(struct analyze_balance *b);

/* ---- placement algorithms (analyze/place*.c) -----------------------------
 * One signature for every algorithm; the registry in analyze/place.c names
 * them.  An algorithm places one layer. */

/* The flagship: moetrace's own algorithm, the default of every command. */
#define ANALYZE_FLAGSHIP "keel"

struct analyze_place_in {
	int experts, ranks, slots;
	int nodes, groups;          /* hierarchical variants; 0 = not given */
	const double *heat;         /* [experts] heat of the fitting window */
	const double *episodes;     /* [n_episodes * experts] sub-windows, or NULL */
	int n_episodes;
	const int32_t *current;     /* [ranks * slots] placement in force, or NULL */
	int max_moves;              /* move budget (swift, flagship); -1 = none */
	uint64_t seed;              /* for randomised search; results are deterministic */
};

typedef int (*analyze_place_fn)(const struct analyze_place_in *in, int32_t *phy2log,
				struct util_err *err);

enum analyze_algo_flags {
	ANALYZE_ALGO_DUP_OK = 1,     /* may put two replicas of an expert on one rank */
	ANALYZE_ALGO_SMALL_ONLY = 2, /* exponential: small instances only */
	ANALYZE_ALGO_MIGRATION = 4,  /* uses `current` itself: no rank matching after */
};

struct analyze_algo {
	const char *name;
	const char *desc;           /* one line for `place --list` */
	analyze_place_fn fn;
	unsigned flags;
};

const struct analyze_algo *analyze_algo_find(const char *name);
const struct analyze_algo *analyze_algo_at(size_t i); /* NULL past the end */

/* Runs an algorithm on one layer and, when in->current is given and the
 * algorithm is not migration-aware, relabels its ranks (and orders slots
 * within ranks) to keep as many experts where they are as possible:
 * same balance, fewest moves.  phy2log: [ranks * slots]. */
int analyze_place(const struct analyze_algo *a, const struct analyze_place_in *in,
		  int32_t *phy2log, struct util_err *err);

/* A proven lower bound on the max device load any placement of `heat` on
 * ranks x slots can reach (docs/algorithms.md proves it). */
double analyze_lower_bound(const double *heat, int experts, int ranks, int slots);

/* Resolves the EP layout for a command: explicit ranks/slots/redundant
 * options (0 = not given) win, then the run's recorded layout, then the
 * model preset's typical one.  slots = (experts + redundant) / ranks when
 * only redundant is given (an error if not whole). */
int analyze_layout_resolve(const struct store_run *run, int ranks, int slots, int redundant,
			   int *out_ranks, int *out_slots, struct util_err *err);

#endif

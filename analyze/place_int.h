/*
 * place_int.h: private declarations shared by analyze/place*.c and
 * analyze/bound.c (the algorithms of the registry and their common parts).
 * Never included from another folder.  Every OUT array is caller-allocated.
 */
#ifndef ANALYZE_PLACE_INT_H
#define ANALYZE_PLACE_INT_H

#include "analyze/analyze.h"

/* Algorithms of the registry (place_*.c), one per name. */
int analyze_place_eplb(const struct analyze_place_in *in, int32_t *phy2log, struct util_err *err);
int analyze_place_eplb_hier(const struct analyze_place_in *in, int32_t *phy2log,
			    struct util_err *err);
int analyze_place_flashlb(const struct analyze_place_in *in, int32_t *phy2log,
			  struct util_err *err);
int analyze_place_swift(const struct analyze_place_in *in, int32_t *phy2log, struct util_err *err);
int analyze_place_keel(const struct analyze_place_in *in, int32_t *phy2log, struct util_err *err);

/* Replica counts by greedy min-max per-replica load: start at one replica
 * each, give each of the nslots - experts extra replicas to the expert with
 * the largest heat / count (first index on ties) whose count is below cap
 * (cap <= 0: no cap).  OUT cnt[experts]. */
void analyze_place_counts_minmax(const double *heat, int experts, int nslots, int cap, int *cnt);

/* The smallest max per-replica load reachable with nslots replicas, at most
 * cap per expert: the value analyze_place_counts_minmax reaches. */
double analyze_place_minmax_split(const double *heat, int experts, int nslots, int cap);

/* The largest instance the exact search takes (place_exact.c). */
#define ANALYZE_EXACT_MAX_EXPERTS 12
#define ANALYZE_EXACT_MAX_SLOTS 20
/* Small exact search shared by `exact` and the flagship: 0 on success with
 * the optimum in phy2log, UTIL_EUSAGE if the instance is too big, 1 if the
 * node budget ran out (phy2log then holds the best found, if any better
 * than *best on entry).  best: IN the max load to beat, OUT the reached one. */
int analyze_place_exact_search(const double *heat, int experts, int ranks, int slots,
			       long node_budget, double *best, int32_t *phy2log);

/* The flagship's forecast (robust.c): from x, n blocks of E in time order
 * (each xs doubles after the one before; 0: E) whose last n - hist are the
 * window, the estimator that best forecast
 * the trace's own past (or `given`, when not NULL) gives heat[E] (the next
 * window's expected heat, at the window's volume) and K scenarios
 * scen[K * E]: K - min(K / 2, n - hist) block-bootstrap resamples of the
 * window (deterministic for a seed), then the window's blocks in min(K / 2,
 * n - hist) consecutive groups, all at the window's volume.  ch
 * (may be NULL) OUT: the choice.  With errout (not NULL) only the backtest
 * runs: errout[84] gets each candidate's error (2 estimators x 7 memories
 * x 6 hedges, in robust.c's order), the layer's summing to one.  0, or -1 when out of memory. */
int analyze_robust_fit(const double *x, size_t xs, int n, int hist, int E, int nslots, int K,
		       uint64_t seed, const struct analyze_robust_choice *given, double *heat,
		       double *scen, struct analyze_robust_choice *ch, double *errout);

#endif

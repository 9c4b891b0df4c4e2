/*
 * bound.c: a proven lower bound on the max device load of any placement
 * (docs/algorithms.md, "The lower bound", has the proof), and the min-max
 * replica split it rests on, which the algorithms share.
 */
#include "analyze/place_int.h"

#include <stdlib.h>

void analyze_place_counts_minmax(const double *heat, int experts, int nslots, int cap, int *cnt)
{
	double *val = malloc((size_t)experts * sizeof(double));

	for (int e = 0; e < experts; e++) {
		cnt[e] = 1;
		if (val)
			val[e] = heat[e];
	}
	for (int i = experts; i < nslots; i++) {
		int best = -1;
		double bv = -1;
		for (int e = 0; e < experts; e++) {
			if (cap > 0 && cnt[e] >= cap)
				continue;
			double v = val ? val[e] : heat[e] / cnt[e];
			if (v > bv) {
				bv = v;
				best = e;
			}
		}
		if (best < 0) /* every expert at the cap: nslots > experts * cap */
			best = i % experts;
		cnt[best]++;
		if (val)
			val[best] = heat[best] / cnt[best];
	}
	free(val);
}

/*
 * The greedy above is optimal for the max per-replica load: each step
 * splits the expert that sets the current maximum, and no other choice of
 * the same number of replicas can lower it (exchange argument in the docs).
 * The value is the maximum of heat/cnt after the greedy.
 */
double analyze_place_minmax_split(const double *heat, int experts, int nslots, int cap)
{
	int *cnt = malloc((size_t)experts * sizeof(int));
	double mx = 0;

	if (!cnt)
		return 0;
	analyze_place_counts_minmax(heat, experts, nslots, cap, cnt);
	for (int e = 0; e < experts; e++) {
		int c = cap > 0 && cnt[e] > cap ? cap : cnt[e];
		if (heat[e] / c > mx)
			mx = heat[e] / c;
	}
	free(cnt);
	return mx;
}

double analyze_lower_bound(const double *heat, int experts, int ranks, int slots)
{
	int nslots = ranks * slots;
	double total = 0, lb, split;

	if (experts <= 0 || ranks <= 0 || slots <= 0 || nslots < experts)
		return 0;
	for (int e = 0; e < experts; e++)
		total += heat[e];
	/* (1) the ranks share the total */
	lb = total / ranks;
	/* (2) some rank carries at least heat/d of an expert spread over d
	 * distinct ranks, d <= ranks and the d's sum to at most nslots */
	split = analyze_place_minmax_split(heat, experts, nslots, ranks);
	return split > lb ? split : lb;
}

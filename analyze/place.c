/*
 * place.c: the registry of placement algorithms and the driver that runs
 * one on a layer (analyze_place).  Start reading at the registry table;
 * each algorithm family lives in its own analyze/place_*.c (which call no
 * code of this file), the rank matching that keeps experts where a current
 * placement already has them in analyze/match.c, the lower bound in
 * analyze/bound.c, the shared private API in place_int.h.
 */
#include "analyze/place_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int place_static(const struct analyze_place_in *in, int32_t *phy2log,
			struct util_err *err)
{
	(void)err;
	analyze_static_phy2log(in->experts, in->ranks, in->slots, phy2log);
	return 0;
}

/* `exact`: the search, with the flagship's answer as the incumbent (the
 * search then only has to prove it optimal or beat it). */
static int place_exact(const struct analyze_place_in *in, int32_t *phy2log, struct util_err *err)
{
	int E = in->experts, R = in->ranks, S = in->slots, P = R * S, rc;
	double best = INFINITY;
	int32_t *inc = NULL;

	if (E > ANALYZE_EXACT_MAX_EXPERTS || P > ANALYZE_EXACT_MAX_SLOTS)
		return util_err_set(err, UTIL_EUSAGE,
				    "exact handles at most %d experts and %d slots, not %d and %d",
				    ANALYZE_EXACT_MAX_EXPERTS, ANALYZE_EXACT_MAX_SLOTS, E, P);
	inc = malloc((size_t)P * sizeof(int32_t));
	if (!inc)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	struct analyze_place_in kin = *in;
	kin.current = NULL;
	kin.episodes = NULL;
	kin.n_episodes = 0;
	if (analyze_place_keel(&kin, inc, NULL) == 0) {
		double *load = malloc((size_t)R * sizeof(double));
		if (load)
			best = analyze_device_load(in->heat, E, inc, R, S, NULL, load);
		free(load);
		/* a hair above, so that a placement as good is found and
		 * recorded by the search */
		best += 1e-7 * (1 + best);
	}
	rc = analyze_place_exact_search(in->heat, E, R, S, 200000000L, &best, phy2log);
	free(inc);
	if (rc < 0)
		return util_err_set(err, rc, "out of memory");
	if (rc == 1 || isinf(best))
		return util_err_set(err, UTIL_EUSAGE, "exact search gave up on this instance");
	return 0;
}

/* clang-format off */
static const struct analyze_algo algos[] = {
	{ "static", "engines' default contiguous layout (slot p holds expert p mod E)",
	  place_static, ANALYZE_ALGO_DUP_OK },
	{ "eplb", "DeepSeek EPLB, global policy: greedy replicas, balanced packing (exact)",
	  analyze_place_eplb, ANALYZE_ALGO_DUP_OK },
	{ "eplb-hier", "DeepSeek EPLB, hierarchical: groups to nodes, then replicas in nodes",
	  analyze_place_eplb_hier, ANALYZE_ALGO_DUP_OK },
	{ "flashlb", "FlashLB: tree search over expert groups, risk-aware LPT, multi-shot score",
	  analyze_place_flashlb, 0 },
	{ "swift", "SwiftBalancer: refill redundant slots, then few swaps, from the current layout",
	  analyze_place_swift, ANALYZE_ALGO_MIGRATION },
	{ "keel", "moetrace's own: min-max replicas, LPT, swap and recount search, episodes",
	  analyze_place_keel, ANALYZE_ALGO_MIGRATION | ANALYZE_ALGO_FORECAST },
	{ "exact", "optimal by branch and bound (small instances only)",
	  place_exact, ANALYZE_ALGO_SMALL_ONLY },
};
/* clang-format on */

int analyze_algo_forecasts(const struct analyze_algo *a)
{
	return a && (a->flags & ANALYZE_ALGO_FORECAST);
}

const struct analyze_algo *analyze_algo_find(const char *name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(algos); i++)
		if (!strcmp(algos[i].name, name))
			return &algos[i];
	return NULL;
}

const struct analyze_algo *analyze_algo_at(size_t i)
{
	return i < UTIL_ARRAY_SIZE(algos) ? &algos[i] : NULL;
}

int analyze_algo_layout_check(const struct analyze_algo *a, int experts, int slots,
			      struct util_err *err)
{
	if (slots > experts && !(a->flags & ANALYZE_ALGO_DUP_OK))
		return util_err_set(err, UTIL_EUSAGE,
				    "%d slots per rank for %d experts: a rank would hold an expert "
				    "twice, which '%s' never does",
				    slots, experts, a->name);
	return 0;
}

/* Has the layer a token to place on: in the window's heat, or for the
 * flagship fitting its forecast, in the blocks it forecasts from (the
 * window and the history before it)? */
static int place_has_token(const struct analyze_algo *a, const struct analyze_place_in *in)
{
	const double *x = in->heat;
	size_t stride = 0;
	int n = 1;

	if (analyze_algo_forecasts(a) && in->blocks && in->n_blocks > 0 &&
	    !(in->episodes && in->n_episodes > 0)) {
		x = in->blocks;
		n = in->n_blocks;
		stride = in->blocks_stride ? in->blocks_stride : (size_t)in->experts;
	}
	for (int b = 0; b < n; b++)
		for (int e = 0; e < in->experts; e++)
			if (x[(size_t)b * stride + e] > 0)
				return 1;
	return 0;
}

/* A layer without a token gives nothing to balance on: any placement
 * fits it alike, so the one in force stays (no copy is paid for), else
 * the engines' static layout, which every engine loads. */
static void place_keep(const struct analyze_place_in *in, int32_t *phy2log)
{
	size_t P = (size_t)in->ranks * in->slots;

	if (in->current)
		memcpy(phy2log, in->current, P * sizeof(int32_t));
	else
		analyze_static_phy2log(in->experts, in->ranks, in->slots, phy2log);
}

int analyze_place(const struct analyze_algo *a, const struct analyze_place_in *in,
		  int32_t *phy2log, struct util_err *err)
{
	int rc;

	if (in->experts <= 0 || in->ranks <= 0 || in->slots <= 0)
		return util_err_set(err, UTIL_EUSAGE, "experts, ranks and slots must be positive");
	if ((long long)in->ranks * in->slots < in->experts)
		return util_err_set(err, UTIL_EUSAGE, "%d ranks x %d slots cannot hold %d experts",
				    in->ranks, in->slots, in->experts);
	if ((rc = analyze_algo_layout_check(a, in->experts, in->slots, err)))
		return rc;
	for (int e = 0; e < in->experts; e++)
		if (!(in->heat[e] >= 0))
			return util_err_set(err, UTIL_EUSAGE, "heat of expert %d is negative", e);
	if (in->episodes && in->n_episodes > 0)
		for (size_t i = 0; i < (size_t)in->n_episodes * in->experts; i++)
			if (!(in->episodes[i] >= 0))
				return util_err_set(err, UTIL_EUSAGE,
						    "heat of expert %d in episode %d is negative",
						    (int)(i % in->experts), (int)(i / in->experts));
	if (in->blocks && in->n_blocks > 0 && in->blocks_stride &&
	    in->blocks_stride < (size_t)in->experts)
		return util_err_set(err, UTIL_EUSAGE, "blocks %zu apart cannot hold %d experts",
				    in->blocks_stride, in->experts);
	if (in->current) {
		rc = analyze_placement_check(in->current, in->experts, in->ranks, in->slots, 0,
					     err);
		if (rc)
			return util_err_prefix(err, "current placement: ");
	}
	if (!place_has_token(a, in))
		place_keep(in, phy2log);
	else if ((rc = a->fn(in, phy2log, err)))
		return rc;
	if (in->no_dup) {
		int n = analyze_placement_undup(phy2log, in->experts, in->ranks, in->slots,
						in->heat, err);
		if (n < 0)
			return n;
		if (in->undup)
			*in->undup = n;
	}
	if (in->current && !(a->flags & ANALYZE_ALGO_MIGRATION)) {
		int hier = !strcmp(a->name, "eplb-hier") ? in->nodes : 0;
		if (analyze_place_match(in->current, phy2log, in->experts, in->ranks, in->slots,
					hier))
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	return 0;
}

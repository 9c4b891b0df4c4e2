/*
 * place.c: the registry of placement algorithms, the driver that runs one
 * on a layer (analyze_place) and the rank matching that keeps experts where
 * a current placement already has them.  Start reading at the registry
 * table; each algorithm family lives in its own analyze/place_*.c, the
 * lower bound in analyze/bound.c, the shared private API in place_int.h.
 */
#include "analyze/place_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int place_static(const struct analyze_place_in *in, int32_t *phy2log,
			struct util_err *err)
{
	(void)err;
	analyze_static_phy2log(in->experts, in->ranks, in->slots, phy2log);
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
	  analyze_place_keel, ANALYZE_ALGO_MIGRATION },
	{ "exact", "optimal by branch and bound (small instances only)",
	  analyze_place_exact, ANALYZE_ALGO_SMALL_ONLY },
};
/* clang-format on */

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
	if (in->current) {
		rc = analyze_placement_check(in->current, in->experts, in->ranks, in->slots, 0,
					     err);
		if (rc)
			return util_err_prefix(err, "current placement: ");
	}
	rc = a->fn(in, phy2log, err);
	if (rc)
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

int analyze_place_moves(const int32_t *cur, const int32_t *next, int experts, int ranks,
			int slots)
{
	int *have = calloc((size_t)experts, sizeof(int)), moves = 0;

	if (!have)
		return -1;
	for (int r = 0; r < ranks; r++) {
		const int32_t *c = cur + (size_t)r * slots, *n = next + (size_t)r * slots;
		for (int k = 0; k < slots; k++)
			have[c[k]]++;
		for (int k = 0; k < slots; k++) {
			if (have[n[k]] > 0)
				have[n[k]]--;
			else
				moves++;
		}
		for (int k = 0; k < slots; k++)
			have[c[k]] = 0;
	}
	free(have);
	return moves;
}

/*
 * Hungarian method (shortest augmenting paths with potentials, O(n^3)) on
 * an n x n cost matrix; OUT match[j] = row assigned to column j.
 */
static int hungarian(const long *cost, int n, int *match)
{
	long *u = calloc((size_t)n + 1, sizeof(long)), *v = calloc((size_t)n + 1, sizeof(long));
	long *minv = malloc(((size_t)n + 1) * sizeof(long));
	int *p = calloc((size_t)n + 1, sizeof(int)), *way = calloc((size_t)n + 1, sizeof(int));
	int *fr = malloc(((size_t)n + 1) * sizeof(int)), *us = malloc(((size_t)n + 1) * sizeof(int));
	int rc = 0;

	if (!u || !v || !minv || !p || !way || !fr || !us) {
		rc = -1;
		goto out;
	}
	for (int i = 1; i <= n; i++) {
		/* the columns not yet on this row's search tree (fr) and those on
		 * it (us, with column 0 first): each scan walks only its own */
		int j0 = 0, nf = n, nu = 0;
		p[0] = i;
		for (int j = 1; j <= n; j++) {
			minv[j] = LONG_MAX;
			fr[j - 1] = j;
		}
		do {
			int i0 = p[j0], j1 = 0, f1 = -1;
			long delta = LONG_MAX;
			const long *ci = cost + (size_t)(i0 - 1) * n - 1;
			us[nu++] = j0;
			for (int f = 0; f < nf; f++) {
				int j = fr[f];
				long cur = ci[j] - u[i0] - v[j];
				if (cur < minv[j]) {
					minv[j] = cur;
					way[j] = j0;
				}
				/* among equal minima a free column ends the search */
				if (minv[j] < delta || (minv[j] == delta && p[j1] != 0 && p[j] == 0)) {
					delta = minv[j];
					j1 = j;
					f1 = f;
				}
			}
			for (int q = 0; q < nu; q++) {
				u[p[us[q]]] += delta;
				v[us[q]] -= delta;
			}
			for (int f = 0; f < nf; f++)
				minv[fr[f]] -= delta;
			/* j1 joins the tree: out of fr, keeping fr's order */
			memmove(fr + f1, fr + f1 + 1, (size_t)(nf - f1 - 1) * sizeof(int));
			nf--;
			j0 = j1;
		} while (p[j0] != 0);
		do {
			int j1 = way[j0];
			p[j0] = p[j1];
			j0 = j1;
		} while (j0);
	}
	for (int j = 1; j <= n; j++)
		match[j - 1] = p[j] - 1;
out:
	free(u);
	free(v);
	free(minv);
	free(p);
	free(way);
	free(fr);
	free(us);
	return rc;
}

int analyze_place_match(const int32_t *cur, int32_t *phy2log, int experts, int ranks, int slots,
			int nodes)
{
	size_t P = (size_t)ranks * slots;
	long *cost = malloc((size_t)ranks * ranks * sizeof(long));
	int *match = malloc((size_t)ranks * sizeof(int)), *have = calloc((size_t)experts, sizeof(int));
	int32_t *out = malloc(P * sizeof(int32_t));
	char *taken = malloc((size_t)slots);
	int rc = 0, rpn = nodes > 1 && ranks % nodes == 0 ? ranks / nodes : ranks;

	if (!cost || !match || !have || !out || !taken) {
		rc = -1;
		goto out;
	}
	/* cost[old rank i][new rank j] = -(replicas of j that i already holds) */
	for (int i = 0; i < ranks; i++) {
		const int32_t *c = cur + (size_t)i * slots;
		for (int k = 0; k < slots; k++)
			have[c[k]]++;
		for (int j = 0; j < ranks; j++) {
			const int32_t *n = phy2log + (size_t)j * slots;
			long ov = 0;
			for (int k = 0; k < slots; k++)
				if (have[n[k]] > 0) {
					have[n[k]]--;
					ov++;
				}
			for (int k = 0; k < slots; k++)
				have[c[k]] = 0;
			for (int k = 0; k < slots; k++)
				have[c[k]]++;
			/* a hierarchy keeps ranks in their node */
			cost[(size_t)i * ranks + j] = i / rpn == j / rpn ? -ov : (long)slots + 1;
		}
		for (int k = 0; k < slots; k++)
			have[c[k]] = 0;
	}
	if (hungarian(cost, ranks, match)) {
		rc = -1;
		goto out;
	}
	/* new rank j goes to old rank match[j]; kept experts keep their slot */
	for (int j = 0; j < ranks; j++) {
		int i = match[j];
		const int32_t *n = phy2log + (size_t)j * slots, *c = cur + (size_t)i * slots;
		int32_t *o = out + (size_t)i * slots;
		memset(taken, 0, (size_t)slots);
		for (int k = 0; k < slots; k++)
			o[k] = -1;
		for (int k = 0; k < slots; k++) {
			for (int m = 0; m < slots; m++)
				if (!taken[m] && n[m] == c[k]) {
					taken[m] = 1;
					o[k] = c[k];
					break;
				}
		}
		int m = 0;
		for (int k = 0; k < slots; k++) {
			if (o[k] >= 0)
				continue;
			while (taken[m])
				m++;
			taken[m] = 1;
			o[k] = n[m];
		}
	}
	memcpy(phy2log, out, P * sizeof(int32_t));
out:
	free(cost);
	free(match);
	free(have);
	free(out);
	free(taken);
	return rc;
}

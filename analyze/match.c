/*
 * match.c: how far a new placement is from the current one
 * (analyze_place_moves) and the rank matching that keeps experts where the
 * current placement already has them (analyze_place_match: the Hungarian
 * method on the ranks).  The driver (place.c) and the flagship
 * (place_keel.c) both use it.
 */
#include "analyze/place_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
	/* cost[old rank i][new rank j] = -(experts of j that i already holds),
	 * each expert once: a rank that holds an expert fills a second slot of
	 * it from its own memory, so a copy is an expert new to the rank
	 * (transfer.c counts copies so) */
	for (int i = 0; i < ranks; i++) {
		const int32_t *c = cur + (size_t)i * slots;
		for (int k = 0; k < slots; k++)
			have[c[k]] = 1;
		for (int j = 0; j < ranks; j++) {
			const int32_t *n = phy2log + (size_t)j * slots;
			long ov = 0;
			for (int k = 0; k < slots; k++)
				if (have[n[k]] == 1) {
					have[n[k]] = 2;
					ov++;
				}
			for (int k = 0; k < slots; k++)
				have[c[k]] = 1;
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

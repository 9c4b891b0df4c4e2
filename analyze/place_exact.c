/*
 * place_exact.c: the optimal placement of small instances by branch and
 * bound, for tests, for the bound's validation and for the flagship's
 * small cases.  Outer level: every replica-count vector (1 <= count <=
 * ranks, counts summing to ranks x slots), most promising first by its own
 * bound max(total / ranks, max heat / count); inner level: replicas of each
 * expert, heaviest per-replica load first, to distinct ranks with room,
 * ranks in the same state (load, free slots) tried once.  A branch dies
 * when a rank would reach the best max found, or when some rank's load
 * plus its free slots times the lightest replica still to place does.
 * Up to ANALYZE_EXACT_MAX_EXPERTS experts and ANALYZE_EXACT_MAX_SLOTS
 * slots this takes at most a few seconds (measured on skewed, flat and
 * random heat); the `exact` algorithm (place.c) refuses larger instances
 * and starts from the flagship's answer.  The flagship calls the search
 * too, so this file calls no algorithm.
 */
#include "analyze/place_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


struct cvec {
	double lb;
	int off; /* into the counts pool */
};

struct bb {
	int E, R, S;
	const double *w;
	const int *cnt;  /* counts of the vector being searched */
	int *order;      /* experts by per-replica load, descending */
	double *load;    /* [R] */
	int *fill;       /* [R] */
	int32_t *cur;    /* [R * S] slots being built */
	int32_t *out;    /* best placement */
	double best, eps;
	long nodes, budget;
	int found, stop;
};

static double bb_rep(const struct bb *b, int e)
{
	return b->w[e] / b->cnt[e];
}

static void bb_expert(struct bb *b, int idx);

/* Chooses `need` more distinct ranks from pos on for expert e. */
static void bb_choose(struct bb *b, int idx, int e, int pos, int need, double p, double pmin)
{
	if (b->stop)
		return;
	if (need == 0) {
		bb_expert(b, idx + 1);
		return;
	}
	if (++b->nodes > b->budget) {
		b->stop = 1;
		return;
	}
	for (int r = pos; r <= b->R - need; r++) {
		if (b->fill[r] >= b->S || b->load[r] + p >= b->best - b->eps)
			continue;
		int dup = 0;
		for (int q = pos; q < r && !dup; q++)
			if (b->fill[q] == b->fill[r] && fabs(b->load[q] - b->load[r]) <= b->eps)
				dup = 1;
		if (dup)
			continue;
		/* the rank's remaining slots take at least pmin each */
		if (b->load[r] + p + (b->S - b->fill[r] - 1) * pmin >= b->best - b->eps)
			continue;
		b->cur[r * b->S + b->fill[r]] = e;
		b->fill[r]++;
		b->load[r] += p;
		bb_choose(b, idx, e, r + 1, need - 1, p, pmin);
		b->load[r] -= p;
		b->fill[r]--;
		if (b->stop)
			return;
	}
}

static void bb_expert(struct bb *b, int idx)
{
	if (idx == b->E) {
		double mx = 0;
		for (int r = 0; r < b->R; r++)
			if (b->load[r] > mx)
				mx = b->load[r];
		if (mx < b->best - b->eps) {
			b->best = mx;
			b->found = 1;
			memcpy(b->out, b->cur, (size_t)b->R * b->S * sizeof(int32_t));
		}
		return;
	}
	int e = b->order[idx];
	double p = bb_rep(b, e), pmin = bb_rep(b, b->order[b->E - 1]);
	bb_choose(b, idx, e, 0, b->cnt[e], p, pmin);
}

/* Experts by per-replica load, descending; ties by index (E is small). */
static void order_experts(int *order, int E, const double *w, const int *cnt)
{
	for (int e = 0; e < E; e++) {
		int i = e;
		while (i > 0 && w[order[i - 1]] / cnt[order[i - 1]] < w[e] / cnt[e]) {
			order[i] = order[i - 1];
			i--;
		}
		order[i] = e;
	}
}

static int cmp_cvec(const void *pa, const void *pb)
{
	const struct cvec *a = pa, *b = pb;

	if (a->lb < b->lb)
		return -1;
	if (a->lb > b->lb)
		return 1;
	return a->off - b->off;
}

int analyze_place_exact_search(const double *heat, int experts, int ranks, int slots,
			       long node_budget, double *best, int32_t *phy2log)
{
	int E = experts, R = ranks, S = slots, P = R * S, cap = P - E + 1;
	struct cvec *vec = NULL;
	int *pool = NULL, *c = NULL, nvec = 0, capvec = 0, rc = 0;
	double total = 0;
	struct bb b;

	if (E > ANALYZE_EXACT_MAX_EXPERTS || P > ANALYZE_EXACT_MAX_SLOTS || P < E)
		return UTIL_EUSAGE;
	if (cap > R)
		cap = R;
	for (int e = 0; e < E; e++)
		total += heat[e];
	memset(&b, 0, sizeof(b));
	c = malloc((size_t)E * sizeof(int));
	b.order = malloc((size_t)E * sizeof(int));
	b.load = calloc((size_t)R, sizeof(double));
	b.fill = calloc((size_t)R, sizeof(int));
	b.cur = malloc((size_t)P * sizeof(int32_t));
	b.out = malloc((size_t)P * sizeof(int32_t));
	if (!c || !b.order || !b.load || !b.fill || !b.cur || !b.out) {
		rc = UTIL_ENOMEM;
		goto out;
	}
	/* every count vector, odometer style, with its bound */
	for (int e = 0; e < E; e++)
		c[e] = 1;
	for (;;) {
		int sum = 0;
		for (int e = 0; e < E; e++)
			sum += c[e];
		if (sum == P) {
			double lb = total / R, it[ANALYZE_EXACT_MAX_SLOTS];
			int n = 0;
			for (int e = 0; e < E; e++) {
				if (heat[e] / c[e] > lb)
					lb = heat[e] / c[e];
				for (int k = 0; k < c[e]; k++) { /* insertion, descending */
					int i = n++;
					while (i > 0 && it[i - 1] < heat[e] / c[e]) {
						it[i] = it[i - 1];
						i--;
					}
					it[i] = heat[e] / c[e];
				}
			}
			/* pigeonhole: of the k R + 1 heaviest replicas some rank
			 * holds k + 1, at least the k + 1 lightest of them */
			for (int k = 1; k < S && k * R + 1 <= P; k++) {
				double s = 0;
				for (int i = k * R - k; i <= k * R; i++)
					s += it[i];
				if (s > lb)
					lb = s;
			}
			if (nvec == capvec) {
				capvec = capvec ? 2 * capvec : 256;
				struct cvec *nv = realloc(vec, (size_t)capvec * sizeof(*vec));
				int *np = realloc(pool, (size_t)capvec * E * sizeof(int));
				if (!nv || !np) {
					free(nv ? nv : vec);
					free(np ? np : pool);
					vec = NULL;
					pool = NULL;
					rc = UTIL_ENOMEM;
					goto out;
				}
				vec = nv;
				pool = np;
			}
			vec[nvec].lb = lb;
			vec[nvec].off = nvec * E;
			memcpy(pool + (size_t)nvec * E, c, (size_t)E * sizeof(int));
			nvec++;
		}
		/* next vector whose sum can still reach P */
		int e = 0;
		while (e < E) {
			if (c[e] < cap && sum < P) {
				c[e]++;
				break;
			}
			sum -= c[e] - 1;
			c[e] = 1;
			e++;
		}
		if (e == E)
			break;
	}
	if (nvec) /* none when S > E and R < P - E + 1: no count vector reaches P */
		qsort(vec, (size_t)nvec, sizeof(*vec), cmp_cvec);
	b.E = E;
	b.R = R;
	b.S = S;
	b.w = heat;
	b.best = *best;
	b.eps = 1e-9 * (1 + total);
	b.budget = node_budget;
	for (int v = 0; v < nvec && !b.stop; v++) {
		if (vec[v].lb >= b.best - b.eps)
			break;
		b.cnt = pool + vec[v].off;
		order_experts(b.order, E, heat, b.cnt);
		bb_expert(&b, 0);
	}
	if (b.found) {
		memcpy(phy2log, b.out, (size_t)P * sizeof(int32_t));
		*best = b.best;
	}
	rc = b.stop ? 1 : 0;
out:
	free(vec);
	free(pool);
	free(c);
	free(b.order);
	free(b.load);
	free(b.fill);
	free(b.cur);
	free(b.out);
	return rc;
}

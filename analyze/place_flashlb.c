/*
 * place_flashlb.c: FlashLB (vllm-ascend's policy type 3, current version)
 * after its public description: joint replica allotment and placement by
 * a tree search over four groups of experts, each trial placed by a
 * risk-aware LPT and scored by the multi-shot objective.
 *
 * Shots are the episodes when given, else the summed heat as one shot.
 * Like the reference, every shot's heat is shifted by +1 per expert.
 * Deterministic choices where the reference leaves them open: experts
 * ordered by a stable sort (ties by index); replica counts are capped at
 * the number of ranks (the reference has no cap and would fail to place
 * the replica); a replica with no admissible rank is placed by moving a
 * replica of a full rank out of the way (the reference would keep the
 * current placement).
 */
#include "analyze/place_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FLASH_Z 0.6744897501960817 /* Phi^-1(0.75) */
#define FLASH_GROUPS 4
#define FLASH_WIDTH 8

struct flash {
	int E, R, S, T, P;
	double *x;     /* [T * E] shots, +1 */
	double *mu;    /* [E] */
	double *var;   /* [E] */
	double *cov;   /* [E * E] or NULL when T == 1 */
	double *risk;  /* [E] mu + z sigma */
	/* LPT scratch */
	double *dmean, *dvar;
	int *fill, *order, *ordtmp;
	unsigned char *has;
	double *keys;
	/* the tree search */
	int gs;                 /* experts per group */
	int *cnt, *trial;       /* [E] replica counts fixed so far, of a trial */
	int *hc, *hr, *hall;    /* replica counts by extra replicas (flash_mmr) */
	int *byrisk;            /* [E] experts by risk, descending */
	int32_t *p;             /* [P] a trial's placement */
};

/* Stable order of idx[0..n) by key descending. */
static void sort_desc(int *idx, int n, const double *key, int *tmp)
{
	/* merge sort: stable, O(n log n) */
	for (int w = 1; w < n; w *= 2) {
		for (int lo = 0; lo < n; lo += 2 * w) {
			int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			int i = lo, j = mid, o = lo;
			while (i < mid && j < hi)
				tmp[o++] = key[idx[j]] > key[idx[i]] ? idx[j++] : idx[i++];
			while (i < mid)
				tmp[o++] = idx[i++];
			while (j < hi)
				tmp[o++] = idx[j++];
		}
		memcpy(idx, tmp, (size_t)n * sizeof(int));
	}
}

/* Min-max-replica history over the experts list[0..n): hist[k * n + i] =
 * count of list[i] after k extras, k = 0..kmax. */
static void flash_mmr(const struct flash *f, const int *list, int n, int kmax, int *hist)
{
	for (int i = 0; i < n; i++)
		hist[i] = 1;
	for (int k = 1; k <= kmax; k++) {
		int *h = hist + (size_t)k * n;
		memcpy(h, h - n, (size_t)n * sizeof(int));
		int best = -1;
		double bv = -1;
		for (int i = 0; i < n; i++) {
			if (h[i] >= f->R)
				continue;
			double v = f->risk[list[i]] / h[i];
			if (v > bv) {
				bv = v;
				best = i;
			}
		}
		if (best >= 0)
			h[best]++;
	}
}

static double flash_covsum(const struct flash *f, int e, int d, const int32_t *p, const int *cnt)
{
	double s = 0;

	if (!f->cov)
		return 0;
	for (int k = 0; k < f->fill[d]; k++) {
		int j = p[d * f->S + k];
		s += f->cov[(size_t)e * f->E + j] / cnt[j];
	}
	return s;
}

/* Risk-aware LPT of counts cnt; OUT p.  Returns 0. */
static int flash_lpt(struct flash *f, const int *cnt, int32_t *p)
{
	int E = f->E, R = f->R, S = f->S, n = 0;
	int *items = f->order;

	for (int e = 0; e < E; e++)
		f->keys[e] = f->mu[e] / cnt[e];
	for (int e = 0; e < E; e++)
		f->ordtmp[e] = e;
	sort_desc(f->ordtmp, E, f->keys, f->fill);
	for (int i = 0; i < E; i++)
		for (int c = 0; c < cnt[f->ordtmp[i]]; c++)
			items[n++] = f->ordtmp[i];
	memset(f->has, 0, (size_t)R * E);
	for (int d = 0; d < R; d++) {
		f->dmean[d] = 0;
		f->dvar[d] = 0;
		f->fill[d] = 0;
	}
	for (int i = 0; i < n; i++) {
		int e = items[i], best = -1;
		double re = cnt[e], m = f->mu[e] / re, v = f->var[e] / (re * re), bc = 0;
		for (int d = 0; d < R; d++) {
			if (f->fill[d] >= S || f->has[(size_t)d * E + e])
				continue;
			double vv = f->dvar[d] + v + 2 * flash_covsum(f, e, d, p, cnt) / re;
			double c = f->dmean[d] + m + FLASH_Z * sqrt(vv > 0 ? vv : 0);
			if (best < 0 || c < bc) {
				bc = c;
				best = d;
			}
		}
		if (best < 0) {
			/* move a replica z of a full rank q without e to a rank r
			 * with room that lacks z, then put e on q */
			for (int r = 0; r < R && best < 0; r++) {
				if (f->fill[r] >= S)
					continue;
				for (int q = 0; q < R && best < 0; q++) {
					if (f->has[(size_t)q * E + e] || f->fill[q] < S)
						continue;
					for (int k = 0; k < S; k++) {
						int z = p[q * S + k];
						if (f->has[(size_t)r * E + z])
							continue;
						p[r * S + f->fill[r]++] = z;
						f->has[(size_t)r * E + z] = 1;
						f->has[(size_t)q * E + z] = 0;
						f->dmean[r] += f->mu[z] / cnt[z];
						f->dmean[q] -= f->mu[z] / cnt[z];
						f->fill[q]--;
						p[q * S + k] = p[q * S + f->fill[q]];
						best = q;
						break;
					}
				}
			}
			if (best < 0) /* only with more slots per rank than experts */
				for (int r = 0; r < R; r++)
					if (f->fill[r] < S) {
						best = r;
						break;
					}
		}
		f->dvar[best] += v + 2 * flash_covsum(f, e, best, p, cnt) / re;
		f->dmean[best] += m;
		f->has[(size_t)best * E + e] = 1;
		p[best * S + f->fill[best]++] = e;
	}
	return 0;
}

/* Multi-shot objective: mean over shots of (R * max load + 0.01) /
 * (total + 0.01). */
static double flash_score(struct flash *f, const int *cnt, const int32_t *p)
{
	int E = f->E, R = f->R, S = f->S;
	double s = 0;

	for (int t = 0; t < f->T; t++) {
		const double *x = f->x + (size_t)t * E;
		double mx = 0, tot = 0;
		for (int e = 0; e < E; e++)
			tot += x[e];
		for (int d = 0; d < R; d++) {
			double l = 0;
			for (int k = 0; k < S; k++)
				l += x[p[d * S + k]] / cnt[p[d * S + k]];
			if (l > mx)
				mx = l;
		}
		s += (R * mx + 0.01) / (tot + 0.01);
	}
	return s / f->T;
}

static void flash_release(struct flash *f)
{
	free(f->x);
	free(f->mu);
	free(f->var);
	free(f->cov);
	free(f->risk);
	free(f->dmean);
	free(f->dvar);
	free(f->fill);
	free(f->order);
	free(f->ordtmp);
	free(f->has);
	free(f->keys);
	free(f->cnt);
	free(f->trial);
	free(f->hc);
	free(f->hr);
	free(f->hall);
	free(f->byrisk);
	free(f->p);
}

static int flash_init(struct flash *f, const struct analyze_place_in *in)
{
	int E = in->experts, R = in->ranks, S = in->slots, P = R * S;

	memset(f, 0, sizeof(*f));
	f->E = E;
	f->R = R;
	f->S = S;
	f->P = P;
	f->gs = (E + FLASH_GROUPS - 1) / FLASH_GROUPS;
	f->T = in->episodes && in->n_episodes > 0 ? in->n_episodes : 1;
	f->x = malloc((size_t)f->T * E * sizeof(double));
	f->mu = calloc((size_t)E, sizeof(double));
	f->var = calloc((size_t)E, sizeof(double));
	f->risk = calloc((size_t)E, sizeof(double));
	f->dmean = calloc((size_t)R, sizeof(double));
	f->dvar = calloc((size_t)R, sizeof(double));
	f->fill = calloc((size_t)(R > E ? R : E), sizeof(int));
	f->order = calloc((size_t)P, sizeof(int));
	f->ordtmp = calloc((size_t)E, sizeof(int));
	f->has = calloc((size_t)R * E, 1);
	f->keys = calloc((size_t)E, sizeof(double));
	f->cnt = calloc((size_t)E, sizeof(int));
	f->trial = calloc((size_t)E, sizeof(int));
	f->hc = calloc((size_t)(P - E + 1) * f->gs, sizeof(int));
	f->hr = calloc((size_t)(P - E + 1) * E, sizeof(int));
	f->hall = calloc((size_t)(P - E + 1) * E, sizeof(int));
	f->byrisk = calloc((size_t)E, sizeof(int));
	f->p = calloc((size_t)P, sizeof(int32_t));
	if (f->T > 1)
		f->cov = calloc((size_t)E * E, sizeof(double));
	if (!f->x || !f->mu || !f->var || !f->risk || !f->dmean || !f->dvar || !f->fill ||
	    !f->order || !f->ordtmp || !f->has || !f->keys || !f->cnt || !f->trial || !f->hc ||
	    !f->hr || !f->hall || !f->byrisk || !f->p || (f->T > 1 && !f->cov))
		return UTIL_ENOMEM;
	return 0;
}

/* Shot statistics (mean, covariance, risk) and the experts by risk. */
static void flash_stats(struct flash *f, const struct analyze_place_in *in)
{
	int E = f->E, T = f->T;

	for (int t = 0; t < T; t++)
		for (int e = 0; e < E; e++)
			f->x[(size_t)t * E + e] =
				(in->episodes && in->n_episodes > 0 ? in->episodes[(size_t)t * E + e]
								    : in->heat[e]) +
				1;
	for (int e = 0; e < E; e++) {
		double s = 0;
		for (int t = 0; t < T; t++)
			s += f->x[(size_t)t * E + e];
		f->mu[e] = s / T;
	}
	if (T > 1) {
		for (int a = 0; a < E; a++)
			for (int b = a; b < E; b++) {
				double s = 0;
				for (int t = 0; t < T; t++)
					s += (f->x[(size_t)t * E + a] - f->mu[a]) *
					     (f->x[(size_t)t * E + b] - f->mu[b]);
				s /= T - 1;
				f->cov[(size_t)a * E + b] = f->cov[(size_t)b * E + a] = s;
			}
		for (int e = 0; e < E; e++)
			f->var[e] = f->cov[(size_t)e * E + e];
	}
	for (int e = 0; e < E; e++) {
		f->risk[e] = f->mu[e] + FLASH_Z * sqrt(f->var[e]);
		f->byrisk[e] = e;
	}
	sort_desc(f->byrisk, E, f->risk, f->fill);
}

/* Group g of the tree (experts byrisk[lo, lo+n), with nrest after them):
 * the extra replicas k it takes of the *avail left, searched around its
 * share of a joint allotment, each trial placed and scored. */
static void flash_group(struct flash *f, int lo, int n, int nrest, int *avail)
{
	int E = f->E, P = f->P, A = *avail;
	const int *cur = f->byrisk + lo, *rest = f->byrisk + lo + n;

	flash_mmr(f, cur, n, A, f->hc);
	flash_mmr(f, rest, nrest, A, f->hr);
	flash_mmr(f, cur, n + nrest, A, f->hall); /* cur and rest are contiguous */
	int k0 = 0;
	for (int i = 0; i < n; i++)
		k0 += f->hall[(size_t)A * (n + nrest) + i] - 1;
	int bestk = -1;
	double bests = 0;
	for (int dist = 0; dist <= FLASH_WIDTH; dist++) {
		for (int side = 0; side < (dist ? 2 : 1); side++) {
			int k = side ? k0 + dist : k0 - dist;
			if (k < 0 || k > A)
				continue;
			memcpy(f->trial, f->cnt, (size_t)E * sizeof(int));
			for (int i = 0; i < n; i++)
				f->trial[cur[i]] = f->hc[(size_t)k * n + i];
			for (int i = 0; i < nrest; i++)
				f->trial[rest[i]] = f->hr[(size_t)(A - k) * nrest + i];
			int sum = 0;
			for (int e = 0; e < E; e++)
				sum += f->trial[e];
			if (sum != P) /* the caps left slots over */
				continue;
			flash_lpt(f, f->trial, f->p);
			double sc = flash_score(f, f->trial, f->p);
			if (bestk < 0 || sc < bests) {
				bests = sc;
				bestk = k;
			}
		}
	}
	if (bestk < 0)
		bestk = k0;
	for (int i = 0; i < n; i++)
		f->cnt[cur[i]] = f->hc[(size_t)bestk * n + i];
	*avail = A - bestk;
}

/* Replica counts (f->cnt): the tree fixes each group's in turn, the last
 * group takes what is left, and slots the caps could not fill go to the
 * heaviest experts below the cap. */
static void flash_allot(struct flash *f)
{
	int E = f->E, R = f->R, P = f->P, gs = f->gs, avail = P - E, fixed = 0;

	for (int e = 0; e < E; e++)
		f->cnt[e] = 1;
	for (int g = 0; g < FLASH_GROUPS - 1; g++) {
		int lo = g * gs, n = lo + gs <= E ? gs : E - lo, nrest = E - lo - n;
		if (n <= 0 || nrest <= 0)
			break;
		flash_group(f, lo, n, nrest, &avail);
		fixed = lo + n;
	}
	/* experts not fixed yet: those after the fixed groups */
	int nrest = E - fixed;
	if (nrest > 0) {
		flash_mmr(f, f->byrisk + fixed, nrest, avail, f->hr);
		for (int i = 0; i < nrest; i++)
			f->cnt[f->byrisk[fixed + i]] = f->hr[(size_t)avail * nrest + i];
	}
	int sum = 0;
	for (int e = 0; e < E; e++)
		sum += f->cnt[e];
	for (; sum < P; sum++) {
		int best = -1;
		for (int e = 0; e < E; e++)
			if (f->cnt[e] < R && (best < 0 || f->risk[e] / f->cnt[e] >
							      f->risk[best] / f->cnt[best]))
				best = e;
		if (best < 0)
			best = sum % E;
		f->cnt[best]++;
	}
}

int analyze_place_flashlb(const struct analyze_place_in *in, int32_t *phy2log,
			  struct util_err *err)
{
	struct flash f;
	int rc = 0;

	if (flash_init(&f, in)) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
	} else {
		flash_stats(&f, in);
		flash_allot(&f);
		flash_lpt(&f, f.cnt, phy2log);
	}
	flash_release(&f);
	return rc;
}

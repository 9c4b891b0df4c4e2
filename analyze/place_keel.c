/*
 * place_keel.c: keel, moetrace's own placement algorithm (the flagship).
 *
 * One layer at a time:
 *  1. replica counts by min-max per-replica load (with episodes: by the
 *     sum over episodes of the largest per-replica load), at most one
 *     replica of an expert per rank;
 *  2. longest-processing-time packing of the replicas onto ranks, never
 *     two replicas of one expert on one rank (with episodes: each replica
 *     to the rank whose largest normalised episode load stays lowest);
 *  3. local search on the objective.  On the summed heat: swaps of two
 *     replicas between the most loaded rank and any other, and
 *     replica-count changes (one expert gains a replica in the slot of an
 *     expert that loses one), taken when they lower the max device load.
 *     With episodes: swaps that lower the mean over episodes of per-episode
 *     max/mean device load plus half the summed fit's max/mean, screened
 *     in single precision with SSE and capped at KEEL_WORK per slot;
 *  4. on small instances, the exact search (place_exact.c) finishes the job;
 *  5. with a current placement: ranks are matched to it (fewest moves at
 *     the same loads); then candidates (that re-plan, the current
 *     placement, searches from it with move budgets, the re-plan with moves
 *     undone) are scored and the one with the fewest moves within in->move_tolerance
 *     (0.5%) of the best score wins; max_moves is a hard cap.
 * Given the window as blocks in time (and no episodes), keel first turns
 * them into a forecast of the next window and bootstrap scenarios
 * (robust.c) and runs the above on those (keel_robust).
 * Everything is deterministic: ties go to the lowest index, and the
 * scenarios come from a generator seeded by in->seed.
 */
#include "analyze/place_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

struct rep_item {
	double load;
	int e;
};

struct keel {
	int E, R, S, T;
	const double *w;   /* [E] summed heat */
	const double *h;   /* [T * E] episodes, or NULL */
	double lambda;     /* weight of the summed fit in the episode objective */
	double tol;        /* in->move_tolerance: score given up for fewer moves */
	int *cnt;          /* [E] replicas per expert */
	int *lcnt;         /* [E] the count rw, rl, frw and nrl were computed
			    * for (keel_loads), 0 before */
	double *rw;        /* [E] w / cnt */
	int32_t *slot;     /* [R * S] */
	unsigned char *has;/* [R * E] replicas of e on r */
	double *load;      /* [R] summed heat */
	double *eload;     /* [T * R] per episode */
	double *rl;        /* [E * T] per-replica episode load h[t][e] / cnt[e] */
	double *pbuf;      /* [4 * T] scratch of the pair evaluation */
	double *emean;     /* [T] mean device load per episode */
	double *winv;      /* [T] 1 / (T * emean) */
	double mean;       /* mean device load of the summed heat */
	/* per-episode top 3 ranks by load, for swap evaluation */
	int *top;          /* [T * 3] */
	int ftop[3];       /* top 3 ranks of the summed heat */
	int *ibuf;         /* [3 * R] scratch */
	int *tbuf;         /* [T] scratch */
	unsigned char *fail; /* [R] candidate rank with no improving swap since
			      * its last change ("don't look" bits) */
	/* move accounting against a current placement */
	const int32_t *cur;
	unsigned char *curhas; /* [R * E] */
	int moves, budget;     /* budget < 0: none */
	/* snapshots of the search from the current placement: snap[i] gets
	 * the last state with at most snap_b[i] moves */
	int nsnap;
	const int *snap_b;
	int32_t *snap;     /* [nsnap * R * S], caller's */
	/* single-precision copies for screening episode swaps, episodes
	 * padded to TP (a multiple of 4, zeros past T) and scaled by winv so
	 * that the episode objective is a plain sum over episodes */
	int TP;
	float *nl;         /* [R * TP] eload[t][r] * winv[t], rank-major */
	float *nrl;        /* [E * TP] rl[e][t] * winv[t] */
	float *fbuf;       /* [7 * TP] scratch */
	float *fbnd;       /* [R] partner bounds */
	float *frw;        /* [E] rw / mean */
	float *fld;        /* [R] load / mean */
	struct rep_item *sord; /* [R] ranks by load, for replica-count changes */
	int *yfirst, *yrk; /* [E + 1], [R * S]: the ranks holding each expert */
	long work, cap;    /* swaps screened by one episode search, and its cap */
};

#define EPS 1e-9

/* The episode search screens at most KEEL_WORK swaps per slot of the
 * layer (each a sum over the episodes): on the 58 x 256 window with 16
 * episodes it has then taken most of its gain (mean per-episode 1.2186
 * at 64 x 5 against 1.2014 when run to its local optimum in 4x the time). */
#define KEEL_WORK 64

/* Sums over TP episodes (a multiple of 4) of max(r, a + y, b - y), of
 * max(r, a, h) and of max(r, h): the screening of episode swaps. */
#if defined(__SSE__)
static float hsum4(__m128 v)
{
	v = _mm_add_ps(v, _mm_movehl_ps(v, v));
	v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
	return _mm_cvtss_f32(v);
}

static float vsum_swap(const float *r, const float *a, const float *b, const float *y, int TP)
{
	__m128 s = _mm_setzero_ps();

	for (int t = 0; t < TP; t += 4) {
		__m128 vy = _mm_loadu_ps(y + t);
		__m128 m = _mm_max_ps(_mm_loadu_ps(r + t), _mm_add_ps(_mm_loadu_ps(a + t), vy));
		s = _mm_add_ps(s, _mm_max_ps(m, _mm_sub_ps(_mm_loadu_ps(b + t), vy)));
	}
	return hsum4(s);
}

static float vsum_max3(const float *r, const float *a, const float *h, int TP)
{
	__m128 s = _mm_setzero_ps();

	for (int t = 0; t < TP; t += 4) {
		__m128 m = _mm_max_ps(_mm_loadu_ps(r + t), _mm_loadu_ps(a + t));
		s = _mm_add_ps(s, _mm_max_ps(m, _mm_loadu_ps(h + t)));
	}
	return hsum4(s);
}

static float vmax_add(const float *a, const float *b, int TP)
{
	__m128 m = _mm_setzero_ps();

	for (int t = 0; t < TP; t += 4)
		m = _mm_max_ps(m, _mm_add_ps(_mm_loadu_ps(a + t), _mm_loadu_ps(b + t)));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}

/* sum of max(r, (a + b) / 2) */
static float vsum_half(const float *r, const float *a, const float *b, int TP)
{
	__m128 s = _mm_setzero_ps(), half = _mm_set1_ps(0.5f);

	for (int t = 0; t < TP; t += 4) {
		__m128 h = _mm_mul_ps(half, _mm_add_ps(_mm_loadu_ps(a + t), _mm_loadu_ps(b + t)));
		s = _mm_add_ps(s, _mm_max_ps(_mm_loadu_ps(r + t), h));
	}
	return hsum4(s);
}

/* h = (a + b) / 2, xa = a - x, xb = b + x */
static void vhalf(float *h, const float *a, const float *b, int TP)
{
	__m128 half = _mm_set1_ps(0.5f);

	for (int t = 0; t < TP; t += 4)
		_mm_storeu_ps(h + t, _mm_mul_ps(half, _mm_add_ps(_mm_loadu_ps(a + t),
								 _mm_loadu_ps(b + t))));
}

static void vshift(float *xa, float *xb, const float *a, const float *b, const float *x, int TP)
{
	for (int t = 0; t < TP; t += 4) {
		__m128 vx = _mm_loadu_ps(x + t);
		_mm_storeu_ps(xa + t, _mm_sub_ps(_mm_loadu_ps(a + t), vx));
		_mm_storeu_ps(xb + t, _mm_add_ps(_mm_loadu_ps(b + t), vx));
	}
}
#else
static float vsum_swap(const float *r, const float *a, const float *b, const float *y, int TP)
{
	float s = 0;

	for (int t = 0; t < TP; t++) {
		float m = r[t], u = a[t] + y[t], v = b[t] - y[t];
		m = u > m ? u : m;
		s += v > m ? v : m;
	}
	return s;
}

static float vsum_max3(const float *r, const float *a, const float *h, int TP)
{
	float s = 0;

	for (int t = 0; t < TP; t++) {
		float m = r[t] > a[t] ? r[t] : a[t];
		s += h[t] > m ? h[t] : m;
	}
	return s;
}

static float vmax_add(const float *a, const float *b, int TP)
{
	float m = 0;

	for (int t = 0; t < TP; t++)
		m = a[t] + b[t] > m ? a[t] + b[t] : m;
	return m;
}

static float vsum_half(const float *r, const float *a, const float *b, int TP)
{
	float s = 0;

	for (int t = 0; t < TP; t++) {
		float h = 0.5f * (a[t] + b[t]);
		s += h > r[t] ? h : r[t];
	}
	return s;
}

static void vhalf(float *h, const float *a, const float *b, int TP)
{
	for (int t = 0; t < TP; t++)
		h[t] = 0.5f * (a[t] + b[t]);
}

static void vshift(float *xa, float *xb, const float *a, const float *b, const float *x, int TP)
{
	for (int t = 0; t < TP; t++) {
		xa[t] = a[t] - x[t];
		xb[t] = b[t] + x[t];
	}
}
#endif

/* 0, or -1 when out of memory (keel_release frees what was allocated). */
static int keel_alloc(struct keel *k)
{
	size_t E = (size_t)k->E, R = (size_t)k->R, S = (size_t)k->S, T = (size_t)k->T;

	k->cnt = calloc(E, sizeof(int));
	k->lcnt = calloc(E, sizeof(int));
	k->rw = calloc(E, sizeof(double));
	k->slot = malloc(R * S * sizeof(int32_t));
	k->has = calloc(R * E, 1);
	k->load = calloc(R, sizeof(double));
	k->eload = calloc(T * R + 1, sizeof(double));
	k->emean = calloc(T + 1, sizeof(double));
	k->winv = calloc(T + 1, sizeof(double));
	k->top = calloc(T * 3 + 1, sizeof(int));
	k->curhas = calloc(R * E, 1);
	k->ibuf = calloc(3 * R, sizeof(int));
	k->tbuf = calloc(T + 1, sizeof(int));
	k->fail = calloc(R, 1);
	k->rl = calloc(E * T + 1, sizeof(double));
	k->pbuf = calloc(4 * T + 1, sizeof(double));
	k->TP = T ? (int)((T + 3) & ~(size_t)3) : 0;
	k->nl = calloc(R * (size_t)k->TP + 1, sizeof(float));
	k->nrl = calloc(E * (size_t)k->TP + 1, sizeof(float));
	k->fbuf = calloc(7 * (size_t)k->TP + 1, sizeof(float));
	k->fbnd = calloc(R, sizeof(float));
	k->frw = calloc(E, sizeof(float));
	k->fld = calloc(R, sizeof(float));
	k->sord = calloc(R, sizeof(*k->sord));
	k->yfirst = calloc(E + 1, sizeof(int));
	k->yrk = calloc(R * S, sizeof(int));
	if (!k->nl || !k->nrl || !k->fbuf || !k->fbnd || !k->frw || !k->fld || !k->sord ||
	    !k->yfirst || !k->yrk)
		return -1;
	if (!k->cnt || !k->lcnt || !k->rw || !k->slot || !k->has || !k->load || !k->eload ||
	    !k->emean || !k->winv || !k->top || !k->curhas || !k->ibuf || !k->tbuf || !k->fail ||
	    !k->rl || !k->pbuf)
		return -1;
	return 0;
}

static void keel_release(struct keel *k)
{
	free(k->cnt);
	free(k->lcnt);
	free(k->rw);
	free(k->slot);
	free(k->has);
	free(k->load);
	free(k->eload);
	free(k->emean);
	free(k->winv);
	free(k->top);
	free(k->curhas);
	free(k->ibuf);
	free(k->tbuf);
	free(k->fail);
	free(k->rl);
	free(k->pbuf);
	free(k->nl);
	free(k->nrl);
	free(k->fbuf);
	free(k->fbnd);
	free(k->frw);
	free(k->fld);
	free(k->sord);
	free(k->yfirst);
	free(k->yrk);
}

static inline double rep(const struct keel *k, int e)
{
	return k->rw[e];
}


static inline double erep(const struct keel *k, int t, int e)
{
	return k->h[(size_t)t * k->E + e] / k->cnt[e];
}

/* The single-precision copy of rank r's episode loads. */
static void keel_norm_rank(struct keel *k, int r)
{
	float *o = k->nl + (size_t)r * k->TP;

	for (int t = 0; t < k->T; t++)
		o[t] = (float)(k->eload[(size_t)t * k->R + r] * k->winv[t]);
	k->fld[r] = (float)(k->load[r] / k->mean);
}

/* Per-replica loads after a change of counts, computed again only where
 * a count changed (the same quotients: they depend on the count alone). */
static void keel_rw(struct keel *k)
{
	int E = k->E, T = k->T;

	for (int e = 0; e < E; e++) {
		if (k->lcnt[e] == k->cnt[e])
			continue;
		k->lcnt[e] = k->cnt[e];
		k->rw[e] = k->w[e] / k->cnt[e];
		for (int t = 0; t < T; t++)
			k->rl[(size_t)e * T + t] = erep(k, t, e);
		if (!T)
			continue;
		k->frw[e] = (float)(k->rw[e] / k->mean);
		for (int t = 0; t < T; t++)
			k->nrl[(size_t)e * k->TP + t] =
				(float)(k->rl[(size_t)e * T + t] * k->winv[t]);
	}
}

/* Loads from scratch for the current slots and counts. */
static void keel_loads(struct keel *k)
{
	int E = k->E, R = k->R, S = k->S, T = k->T;

	keel_rw(k);
	memset(k->has, 0, (size_t)R * E);
	for (int r = 0; r < R; r++) {
		double s = 0;
		for (int j = 0; j < S; j++) {
			int e = k->slot[r * S + j];
			s += rep(k, e);
			k->has[(size_t)r * E + e]++;
		}
		k->load[r] = s;
	}
	for (int t = 0; t < T; t++)
		for (int r = 0; r < R; r++) {
			double s = 0;
			for (int j = 0; j < S; j++)
				s += k->rl[(size_t)k->slot[r * S + j] * T + t];
			k->eload[(size_t)t * R + r] = s;
		}
	if (!T)
		return;
	for (int r = 0; r < R; r++)
		keel_norm_rank(k, r);
}

static void top3(const double *l, int R, int *out)
{
	int a = -1, b = -1, c = -1;

	for (int r = 0; r < R; r++) {
		if (a < 0 || l[r] > l[a]) {
			c = b;
			b = a;
			a = r;
		} else if (b < 0 || l[r] > l[b]) {
			c = b;
			b = r;
		} else if (c < 0 || l[r] > l[c]) {
			c = r;
		}
	}
	out[0] = a;
	out[1] = b;
	out[2] = c;
}

static void keel_top(struct keel *k)
{
	int R = k->R;

	top3(k->load, R, k->ftop);
	for (int t = 0; t < k->T; t++)
		top3(k->eload + (size_t)t * R, R, k->top + (size_t)t * 3);
}

/* top3 after ranks a and b changed: a rescan only where one of them was
 * in the top 3 (it may have fallen); elsewhere each is inserted if it
 * now beats the third (ties go to the lower rank, as in top3). */
static inline int top_beats(const double *l, int r, int q)
{
	return q < 0 || l[r] > l[q] || (l[r] == l[q] && r < q);
}

static void top3_update(const double *l, int R, int *tp, int a, int b)
{
	if (tp[0] == a || tp[1] == a || tp[2] == a || tp[0] == b || tp[1] == b ||
	    tp[2] == b) {
		top3(l, R, tp);
		return;
	}
	for (int i = 0; i < 2; i++) {
		int r = i ? b : a;
		if (!top_beats(l, r, tp[2]))
			continue;
		if (top_beats(l, r, tp[0])) {
			tp[2] = tp[1];
			tp[1] = tp[0];
			tp[0] = r;
		} else if (top_beats(l, r, tp[1])) {
			tp[2] = tp[1];
			tp[1] = r;
		} else {
			tp[2] = r;
		}
	}
}

static void keel_top_update(struct keel *k, int a, int b)
{
	int R = k->R;

	top3_update(k->load, R, k->ftop, a, b);
	for (int t = 0; t < k->T; t++)
		top3_update(k->eload + (size_t)t * R, R, k->top + (size_t)t * 3, a, b);
}

static int keel_argmax(const struct keel *k)
{
	int a = 0;

	for (int r = 1; r < k->R; r++)
		if (k->load[r] > k->load[a])
			a = r;
	return a;
}

/* Episode objective: mean over episodes of max/mean, plus lambda times
 * the summed fit's max/mean. */
static double keel_obj(const struct keel *k)
{
	double s = 0;

	for (int t = 0; t < k->T; t++) {
		double m = k->eload[(size_t)t * k->R + k->top[(size_t)t * 3]];
		s += k->emean[t] > 0 ? m / k->emean[t] : 1;
	}
	s /= k->T;
	return s + k->lambda * (k->mean > 0 ? k->load[keel_argmax(k)] / k->mean : 1);
}

/* Moves on rank r if expert `out` leaves and `in` arrives (one slot). */
static int keel_dmoves(const struct keel *k, int r, int out, int in)
{
	size_t o = (size_t)r * k->E;
	int d = 0;

	if (!k->cur)
		return 0;
	/* a replica counts as moved when the rank has more of it than before */
	if (k->has[o + out] > k->curhas[o + out])
		d--;
	if (k->has[o + in] + 1 > k->curhas[o + in])
		d++;
	return d;
}

/* Would swapping x (on rank a) with y (on rank b) exceed the move budget? */
static int keel_over_budget(const struct keel *k, int a, int x, int b, int y)
{
	return k->budget >= 0 &&
	       k->moves + keel_dmoves(k, a, x, y) + keel_dmoves(k, b, y, x) > k->budget;
}

/* ---- construction ------------------------------------------------------ */

static int cmp_rep(const void *pa, const void *pb)
{
	const struct rep_item *a = pa, *b = pb;

	if (a->load > b->load)
		return -1;
	if (a->load < b->load)
		return 1;
	return a->e - b->e;
}

/* LPT without duplicates; a replica with no admissible rank is put in by
 * moving a replica out of the way. */
static int keel_lpt(struct keel *k)
{
	int E = k->E, R = k->R, S = k->S, n = 0;
	int *fill = calloc((size_t)R, sizeof(int));
	struct rep_item *it = malloc((size_t)R * S * sizeof(*it));

	if (!fill || !it) {
		free(fill);
		free(it);
		return -1;
	}
	keel_rw(k);
	for (int e = 0; e < E; e++)
		for (int c = 0; c < k->cnt[e]; c++) {
			it[n].load = rep(k, e);
			it[n].e = e;
			n++;
		}
	qsort(it, (size_t)n, sizeof(*it), cmp_rep);
	memset(k->has, 0, (size_t)R * E);
	for (int r = 0; r < R; r++)
		k->load[r] = 0;
	for (int i = 0; i < n; i++) {
		int e = it[i].e, best = -1;
		for (int r = 0; r < R; r++)
			if (fill[r] < S && !k->has[(size_t)r * E + e] &&
			    (best < 0 || k->load[r] < k->load[best]))
				best = r;
		if (best < 0) {
			/* every rank with room holds e: take a rank q without e and
			 * move one of its replicas z to a rank r with room */
			for (int r = 0; r < R && best < 0; r++) {
				if (fill[r] >= S)
					continue;
				for (int q = 0; q < R && best < 0; q++) {
					if (k->has[(size_t)q * E + e] || fill[q] < S)
						continue;
					for (int j = 0; j < S; j++) {
						int z = k->slot[q * S + j];
						if (k->has[(size_t)r * E + z])
							continue;
						k->slot[r * S + fill[r]++] = z;
						k->has[(size_t)r * E + z]++;
						k->has[(size_t)q * E + z]--;
						k->load[r] += rep(k, z);
						k->load[q] -= rep(k, z);
						k->slot[q * S + j] = e;
						k->has[(size_t)q * E + e]++;
						k->load[q] += rep(k, e);
						best = R; /* placed */
						break;
					}
				}
			}
			if (best == R)
				continue;
			/* impossible without a duplicate (slots > experts) */
			for (int r = 0; r < R; r++)
				if (fill[r] < S) {
					best = r;
					break;
				}
		}
		k->slot[best * S + fill[best]++] = e;
		k->has[(size_t)best * E + e]++;
		k->load[best] += rep(k, e);
	}
	free(fill);
	free(it);
	return 0;
}

/* LPT for episodes: replicas by summed load, largest first, each to the
 * admissible rank where the largest of its normalised episode loads and
 * KEEL_MU times its normalised summed load is lowest afterwards (the
 * min-max rule of vector packing; the summed term keeps the fit on the
 * whole window from drifting while the episodes are balanced). */
#define KEEL_MU 1.22f

static int keel_lpt_ep(struct keel *k)
{
	int E = k->E, R = k->R, S = k->S, T = k->T, TP = k->TP, n = 0;
	int *fill = calloc((size_t)R, sizeof(int));
	struct rep_item *it = malloc((size_t)R * S * sizeof(*it));
	float *lt = calloc((size_t)R * TP + TP + R, sizeof(float)), *xv, *ls;
	int *open = malloc((size_t)R * sizeof(int)), nopen = R; /* ranks with room */

	if (!fill || !it || !lt || !open) {
		free(fill);
		free(it);
		free(lt);
		free(open);
		return -1;
	}
	xv = lt + (size_t)R * TP;
	ls = xv + TP; /* summed load / mean */
	keel_rw(k);
	for (int e = 0; e < E; e++)
		for (int c = 0; c < k->cnt[e]; c++) {
			it[n].load = rep(k, e);
			it[n].e = e;
			n++;
		}
	qsort(it, (size_t)n, sizeof(*it), cmp_rep);
	memset(k->has, 0, (size_t)R * E);
	for (int r = 0; r < R; r++) {
		k->load[r] = 0;
		open[r] = r;
	}
	/* lt: rank-major episode loads over the episode's mean; xv: the
	 * replica's, scaled the same way */
	for (int i = 0; i < n; i++) {
		int e = it[i].e, best = -1;
		float bc = 0;
		for (int t = 0; t < T; t++)
			xv[t] = (float)(erep(k, t, e) / k->emean[t]);
		float xs = (float)(rep(k, e) / k->mean);
		for (int q = 0; q < nopen; q++) {
			int r = open[q];
			if (k->has[(size_t)r * E + e])
				continue;
			float c = vmax_add(lt + (size_t)r * TP, xv, TP);
			float cs = KEEL_MU * (ls[r] + xs);
			c = c > cs ? c : cs;
			if (best < 0 || c < bc || (c == bc && r < best)) {
				bc = c;
				best = r;
			}
		}
		if (best < 0) {
			for (int r = 0; r < R; r++)
				if (fill[r] < S) {
					best = r;
					break;
				}
		}
		k->slot[best * S + fill[best]++] = e;
		k->has[(size_t)best * E + e]++;
		k->load[best] += rep(k, e);
		ls[best] = (float)(k->load[best] / k->mean);
		for (int t = 0; t < T; t++)
			lt[(size_t)best * TP + t] += xv[t];
		if (fill[best] == S)
			for (int q = 0; q < nopen; q++)
				if (open[q] == best) {
					open[q] = open[--nopen];
					break;
				}
	}
	free(fill);
	free(it);
	free(lt);
	free(open);
	return 0;
}

/* ---- local search on the summed heat (max device load) ----------------- */

static void keel_swap_apply(struct keel *k, int a, int i, int b, int j)
{
	int E = k->E, S = k->S, x = k->slot[a * S + i], y = k->slot[b * S + j];
	double d = rep(k, x) - rep(k, y);

	k->moves += keel_dmoves(k, a, x, y);
	k->has[(size_t)a * E + x]--;
	k->has[(size_t)a * E + y]++;
	k->moves += keel_dmoves(k, b, y, x);
	k->has[(size_t)b * E + y]--;
	k->has[(size_t)b * E + x]++;
	k->slot[a * S + i] = y;
	k->slot[b * S + j] = x;
	k->load[a] -= d;
	k->load[b] += d;
	for (int t = 0; t < k->T; t++) {
		double de = k->rl[(size_t)x * k->T + t] - k->rl[(size_t)y * k->T + t];
		k->eload[(size_t)t * k->R + a] -= de;
		k->eload[(size_t)t * k->R + b] += de;
	}
	if (k->T) {
		keel_norm_rank(k, a);
		keel_norm_rank(k, b);
	}
}

/* Max load over ranks after expert x gains the replica that y loses on
 * rank b (rank b's other slots stay), from the ranks in descending
 * load (k->sord), the ranks holding y (k->yrk from k->yfirst[y]) and b:
 * a rank that holds neither x nor y and is not b keeps its load, and no
 * rank after it in that order can exceed it unless it holds y or is b, so
 * the walk stops at the first such rank. */
static double keel_recount_max(const struct keel *k, int x, int y, int b)
{
	int E = k->E;
	double dx = k->w[x] / k->cnt[x] - k->w[x] / (k->cnt[x] + 1);
	double dy = k->w[y] / (k->cnt[y] - 1) - k->w[y] / k->cnt[y];
	double mx = 0, l = k->load[b];

	l += k->w[x] / (k->cnt[x] + 1) - k->w[y] / k->cnt[y];
	if (l > mx)
		mx = l;
	for (int q = k->yfirst[y]; q < k->yfirst[y + 1]; q++) {
		int r = k->yrk[q];
		if (r == b)
			continue;
		l = k->load[r];
		if (k->has[(size_t)r * E + x])
			l -= dx;
		l += dy;
		if (l > mx)
			mx = l;
	}
	for (int q = 0; q < k->R; q++) {
		int r = k->sord[q].e;
		if (r == b || k->has[(size_t)r * E + y])
			continue;
		l = k->load[r];
		if (k->has[(size_t)r * E + x]) {
			l -= dx;
			if (l > mx)
				mx = l;
			continue;
		}
		if (l > mx)
			mx = l;
		break;
	}
	return mx;
}

/* k->sord and k->yfirst/k->yrk for the current slots and loads. */
static void keel_recount_prep(struct keel *k)
{
	int E = k->E, R = k->R, P = R * k->S;

	for (int r = 0; r < R; r++) {
		k->sord[r].load = k->load[r];
		k->sord[r].e = r;
	}
	qsort(k->sord, (size_t)R, sizeof(*k->sord), cmp_rep);
	memset(k->yfirst, 0, ((size_t)E + 1) * sizeof(int));
	for (int q = 0; q < P; q++)
		k->yfirst[k->slot[q] + 1]++;
	for (int e = 0; e < E; e++)
		k->yfirst[e + 1] += k->yfirst[e];
	for (int q = 0; q < P; q++)
		k->yrk[k->yfirst[k->slot[q]]++] = q / k->S;
	for (int e = E; e > 0; e--)
		k->yfirst[e] = k->yfirst[e - 1];
	k->yfirst[0] = 0;
}

static void keel_recount_apply(struct keel *k, int x, int y, int b, int j)
{
	int E = k->E, S = k->S;

	k->moves += keel_dmoves(k, b, y, x);
	k->slot[b * S + j] = x;
	k->has[(size_t)b * E + y]--;
	k->has[(size_t)b * E + x]++;
	k->cnt[x]++;
	k->cnt[y]--;
	keel_loads(k);
}

/* One improving step for the max load; 0 when none exists. */
static int keel_step_max(struct keel *k)
{
	int E = k->E, R = k->R, S = k->S, a = keel_argmax(k);
	double La = k->load[a], best = La - EPS * (1 + La);
	int bb = -1, bi = -1, bj = -1;

	for (int b = 0; b < R; b++) {
		if (b == a)
			continue;
		double Lb = k->load[b];
		if (Lb >= best)
			continue;
		/* a swap must move d in (La - best, best - Lb) */
		if (La - best >= best - Lb)
			continue;
		for (int i = 0; i < S; i++) {
			int x = k->slot[a * S + i];
			if (k->has[(size_t)b * E + x])
				continue;
			double lx = rep(k, x);
			for (int j = 0; j < S; j++) {
				int y = k->slot[b * S + j];
				double d = lx - rep(k, y);
				if (d <= 0 || k->has[(size_t)a * E + y])
					continue;
				double m = La - d > Lb + d ? La - d : Lb + d;
				if (m < best) {
					if (keel_over_budget(k, a, x, b, y))
						continue;
					best = m;
					bb = b;
					bi = i;
					bj = j;
				}
			}
		}
	}
	if (bb >= 0) {
		keel_swap_apply(k, a, bi, bb, bj);
		return 1;
	}
	/* replica-count change: an expert of the max rank gains a replica */
	int bx = -1, by = -1;
	best = La - EPS * (1 + La);
	keel_recount_prep(k);
	for (int i = 0; i < S; i++) {
		int x = k->slot[a * S + i];
		if (k->cnt[x] >= R)
			continue;
		for (int b = 0; b < R; b++) {
			if (k->has[(size_t)b * E + x])
				continue;
			for (int j = 0; j < S; j++) {
				int y = k->slot[b * S + j];
				if (k->cnt[y] < 2)
					continue;
				/* cheap reject: rank b's new load alone */
				double nb = k->load[b] + k->w[x] / (k->cnt[x] + 1) - rep(k, y);
				if (nb >= best)
					continue;
				double m = keel_recount_max(k, x, y, b);
				if (m < best) {
					if (k->budget >= 0 &&
					    k->moves + keel_dmoves(k, b, y, x) > k->budget)
						continue;
					best = m;
					bx = x;
					by = y;
					bb = b;
					bj = j;
				}
			}
		}
	}
	if (bx >= 0) {
		keel_recount_apply(k, bx, by, bb, bj);
		return 1;
	}
	return 0;
}

/* ---- local search on the episode objective ----------------------------- */

/* Prepares the evaluation of swaps between ranks a and b: per episode,
 * the max over the other ranks, a's and b's loads, the current max and
 * the weight 1 / (T * mean). */
static void keel_pair_prep(const struct keel *k, int a, int b)
{
	int R = k->R, T = k->T;
	double *rest = k->pbuf, *la = rest + T, *lb = la + T, *cur = lb + T;

	for (int t = 0; t < T; t++) {
		const double *l = k->eload + (size_t)t * R;
		const int *tp = k->top + (size_t)t * 3;
		int o = tp[0];
		if (o == a || o == b) {
			o = tp[1];
			if (o == a || o == b)
				o = tp[2];
		}
		rest[t] = o >= 0 ? l[o] : 0;
		la[t] = l[a];
		lb[t] = l[b];
		cur[t] = l[tp[0]];
	}
}

/* Episode part of the objective change when x (on a) and y (on b) swap. */
static double keel_pair_delta(const struct keel *k, int x, int y)
{
	int T = k->T;
	const double *rest = k->pbuf, *la = rest + T, *lb = la + T, *cur = lb + T;
	const double *rx = k->rl + (size_t)x * T, *ry = k->rl + (size_t)y * T;
	double s = 0;

	for (int t = 0; t < T; t++) {
		double de = rx[t] - ry[t], m = rest[t], va = la[t] - de, vb = lb[t] + de;
		m = va > m ? va : m;
		m = vb > m ? vb : m;
		s += (m - cur[t]) * k->winv[t];
	}
	return s;
}

/* Ranks that set some episode's max, most episodes first. OUT list;
 * returns how many. */
static int keel_ep_cands(const struct keel *k, int *list, int *score)
{
	int R = k->R, n = 0;

	memset(score, 0, (size_t)R * sizeof(int));
	for (int t = 0; t < k->T; t++)
		score[k->top[(size_t)t * 3]]++;
	score[k->ftop[0]]++;
	for (int r = 0; r < R; r++)
		if (score[r]) {
			int i = n++;
			while (i > 0 && score[list[i - 1]] < score[r]) {
				list[i] = list[i - 1];
				i--;
			}
			list[i] = r;
		}
	return n;
}

/* The summed fit's max over ranks other than a and b. */
static double keel_rest_sum(const struct keel *k, int a, int b)
{
	int o = k->ftop[0];

	if (o == a || o == b) {
		o = k->ftop[1];
		if (o == a || o == b)
			o = k->ftop[2];
	}
	return o >= 0 ? k->load[o] : 0;
}

/* The change of the summed part of the objective when rank a's load
 * falls by dd and b's rises by dd. */
static double keel_sum_delta(const struct keel *k, int a, int b, double dd, double rest,
			     double Lmax)
{
	double nm = k->load[a] - dd > k->load[b] + dd ? k->load[a] - dd : k->load[b] + dd;

	return k->lambda * ((nm > rest ? nm : rest) - Lmax) / k->mean;
}

/* Per episode, the largest load of the ranks other than a and b: v1 (the
 * largest other than a, on rank i1) unless that rank is b, then v2. */
static inline const float *ep_rest(int b, const int *i1, const float *v1, const float *v2, float *out,
			    int T)
{
	for (int t = 0; t < T; t++)
		out[t] = i1[t] == b ? v2[t] : v1[t];
	return out;
}

/* One improving swap for the episode objective: the first candidate rank
 * (by episodes it sets the max of) with an improving swap takes the best
 * one with the first partner that has one; 0 when none exists or the
 * search's work cap is spent.  Swaps are screened in single precision (a
 * candidate's partners in ascending order of a lower bound on the
 * change, so the first bound past the best found ends the scan) and the
 * chosen one is checked in double precision before it is taken. */
static int keel_step_ep(struct keel *k, double *obj)
{
	if (k->work > k->cap)
		return 0;
	int E = k->E, R = k->R, S = k->S, T = k->T, TP = k->TP;
	int *list = k->ibuf, *score = k->ibuf + R, *ord = k->ibuf + 2 * (size_t)R, *i1 = k->tbuf;
	int n = keel_ep_cands(k, list, score);
	int *ist = score; /* per rank: episodes where it is the largest other than a */
	float fmax = k->fld[k->ftop[0]], fl = (float)k->lambda;
	float *v1 = k->fbuf, *v2 = v1 + TP, *rb = v2 + TP, *h = rb + TP, *xa = h + TP,
	      *xb = xa + TP, *bnd = k->fbnd;
	float cur = 0;

	for (int t = 0; t < T; t++)
		cur += k->nl[(size_t)k->top[(size_t)t * 3] * TP + t];
	for (int c = 0; c < n; c++) {
		int a = list[c], bb = -1, bi = -1, bj = -1, nb = 0;
		float best = (float)(-1e-6 * (1 + *obj));
		const float *la = k->nl + (size_t)a * TP;
		if (k->fail[a])
			continue;
		/* per episode, the two largest loads of the ranks other than a */
		for (int t = 0; t < T; t++) {
			const int *tp = k->top + (size_t)t * 3;
			int o1 = tp[0], o2 = tp[1];
			if (o1 == a) {
				o1 = tp[1];
				o2 = tp[2];
			} else if (o2 == a) {
				o2 = tp[2];
			}
			i1[t] = o1;
			v1[t] = o1 >= 0 ? k->nl[(size_t)o1 * TP + t] : 0;
			v2[t] = o2 >= 0 ? k->nl[(size_t)o2 * TP + t] : 0;
		}
		memset(ist, 0, (size_t)R * sizeof(int));
		for (int t = 0; t < T; t++)
			if (i1[t] >= 0)
				ist[i1[t]]++;
		/* the summed fit's two largest loads on ranks other than a */
		int o1 = k->ftop[0], o2 = k->ftop[1];
		if (o1 == a) {
			o1 = k->ftop[1];
			o2 = k->ftop[2];
		} else if (o2 == a) {
			o2 = k->ftop[2];
		}
		float fa = k->fld[a], f1 = o1 >= 0 ? k->fld[o1] : 0, f2 = o2 >= 0 ? k->fld[o2] : 0;
		/* partners by a lower bound: whatever moves, a's and b's larger
		 * new load is at least their mean, per episode and summed */
		for (int b = 0; b < R; b++) {
			if (b == a)
				continue;
			const float *lb = k->nl + (size_t)b * TP, *rest = v1;
			float frs = b == o1 ? f2 : f1, hm = 0.5f * (fa + k->fld[b]);
			if (ist[b])
				rest = ep_rest(b, i1, v1, v2, rb, T);
			float p = fl * ((hm > frs ? hm : frs) - fmax) + vsum_half(rest, la, lb, TP) - cur;
			if (p >= best)
				continue;
			ord[nb] = b;
			bnd[nb++] = p;
		}
		/* in ascending bound, picked one at a time: a successful scan
		 * usually needs only the first few */
		for (int q = 0; q < nb && bb < 0; q++) {
			int m = q;
			for (int i = q + 1; i < nb; i++)
				if (bnd[i] < bnd[m] || (bnd[i] == bnd[m] && ord[i] < ord[m]))
					m = i;
			if (bnd[m] >= best)
				break;
			int b = ord[m];
			float bm = bnd[m];
			ord[m] = ord[q];
			bnd[m] = bnd[q];
			ord[q] = b;
			bnd[q] = bm;
			const float *lb = k->nl + (size_t)b * TP, *rest = v1;
			float fb = k->fld[b], frs = b == o1 ? f2 : f1, hm = 0.5f * (fa + fb);
			float ps = fl * ((hm > frs ? hm : frs) - fmax);
			if (ist[b])
				rest = ep_rest(b, i1, v1, v2, rb, T);
			vhalf(h, la, lb, TP);
			for (int i = 0; i < S; i++) {
				int x = k->slot[a * S + i];
				if (k->has[(size_t)b * E + x])
					continue;
				const float *rx = k->nrl + (size_t)x * TP;
				vshift(xa, xb, la, lb, rx, TP);
				/* y only adds to a's load: a bound for this x */
				if (ps + vsum_max3(rest, xa, h, TP) - cur >= best)
					continue;
				for (int j = 0; j < S; j++) {
					int y = k->slot[b * S + j];
					if (k->has[(size_t)a * E + y])
						continue;
					k->work++;
					float d = vsum_swap(rest, xa, xb, k->nrl + (size_t)y * TP, TP) - cur;
					if (fl > 0) {
						float dd = k->frw[x] - k->frw[y];
						float nm = fa - dd > fb + dd ? fa - dd : fb + dd;
						d += fl * ((nm > frs ? nm : frs) - fmax);
					}
					if (d < best) {
						if (keel_over_budget(k, a, x, b, y))
							continue;
						best = d;
						bb = b;
						bi = i;
						bj = j;
					}
				}
			}
		}
		if (bb >= 0) {
			int x = k->slot[a * S + bi], y = k->slot[bb * S + bj];
			keel_pair_prep(k, a, bb);
			double d = keel_pair_delta(k, x, y);
			if (k->lambda > 0)
				d += keel_sum_delta(k, a, bb, rep(k, x) - rep(k, y),
						    keel_rest_sum(k, a, bb), k->load[k->ftop[0]]);
			if (d < -1e-9 * (1 + *obj)) {
				keel_swap_apply(k, a, bi, bb, bj);
				keel_top_update(k, a, bb);
				*obj = keel_obj(k);
				k->fail[a] = k->fail[bb] = 0;
				return 1;
			}
		}
		k->fail[a] = 1;
	}
	return 0;
}

static void keel_snap(struct keel *k, int all)
{
	size_t P = (size_t)k->R * k->S;

	for (int i = 0; i < k->nsnap; i++)
		if (all || k->moves <= k->snap_b[i])
			memcpy(k->snap + (size_t)i * P, k->slot, P * sizeof(int32_t));
}

static void keel_search(struct keel *k)
{
	int guard = 0, limit = 50 * k->R * k->S + 1000;

	while (k->T == 0 && guard++ < limit && keel_step_max(k))
		keel_snap(k, 0);
	if (k->T > 0) {
		memset(k->fail, 0, (size_t)k->R);
		keel_top(k);
		double obj = keel_obj(k);
		k->work = 0;
		/* until a pass over every candidate, bits cleared, finds nothing:
		 * the same local optimum as without the bits, fewer rescans */
		guard = 0;
		for (;;) {
			while (guard++ < limit && keel_step_ep(k, &obj))
				keel_snap(k, 0);
			memset(k->fail, 0, (size_t)k->R);
			if (guard >= limit || !keel_step_ep(k, &obj))
				break;
			keel_snap(k, 0);
		}
	}
}

/* Fewer moves at the same quality: a replica that moved onto rank a swaps
 * with a replica, on another rank b, of an expert a held before, when that
 * lowers the move count and does not worsen the objective (the summed max
 * stays, or the episode objective does not rise).  With limit > 0 (a
 * score, as keel_score gives) the objective may rise up to it: the summed
 * max up to limit, or with episodes the episode figure up to limit and the
 * summed max by at most k->tol (in->move_tolerance). */

static void keel_restore(struct keel *k, double limit)
{
	int E = k->E, R = k->R, S = k->S;
	double Lmax = k->load[keel_argmax(k)], tol = 1e-12 * (1 + Lmax), slack = 0;

	if (k->T > 0)
		keel_top(k);
	if (limit > 0 && k->T == 0 && limit > Lmax)
		tol += limit - Lmax;
	if (limit > 0 && k->T > 0) {
		double s = 0;
		for (int t = 0; t < k->T; t++)
			s += k->eload[(size_t)t * R + k->top[(size_t)t * 3]] / k->emean[t];
		s /= k->T;
		slack = limit > s ? limit - s : 0;
		tol += k->tol * Lmax;
	}
	int P = R * S, *first = calloc((size_t)E + 1, sizeof(int)), *rk = malloc((size_t)P * sizeof(int));

	if (!first || !rk) {
		free(first);
		free(rk);
		return;
	}
	for (int pass = 0; pass < 8; pass++) {
		int changed = 0;
		/* ranks holding each expert at the start of the pass (checked
		 * against has[] before use, as swaps change them) */
		memset(first, 0, ((size_t)E + 1) * sizeof(int));
		for (int q = 0; q < P; q++)
			first[k->slot[q] + 1]++;
		for (int e = 0; e < E; e++)
			first[e + 1] += first[e];
		for (int q = 0; q < P; q++)
			rk[first[k->slot[q]]++] = q / S;
		for (int e = E; e > 0; e--)
			first[e] = first[e - 1];
		first[0] = 0;
		for (int a = 0; a < R; a++)
			for (int i = 0; i < S; i++) {
				int x = k->slot[a * S + i], done = 0;
				if (k->curhas[(size_t)a * E + x])
					continue; /* not a move */
				for (int c = 0; c < S && !done; c++) {
					int y = k->cur[a * S + c];
					if (k->has[(size_t)a * E + y])
						continue;
					for (int q = first[y]; q < first[y + 1] && !done; q++) {
						int b = rk[q];
						if (b == a || !k->has[(size_t)b * E + y] ||
						    k->has[(size_t)b * E + x])
							continue;
						int j = 0;
						while (k->slot[b * S + j] != y)
							j++;
						int dm = -1 + keel_dmoves(k, b, y, x);
						if (dm >= 0)
							continue;
						double d = rep(k, x) - rep(k, y);
						if (k->load[a] - d > Lmax + tol ||
						    k->load[b] + d > Lmax + tol)
							continue;
						if (k->T > 0) {
							keel_pair_prep(k, a, b);
							double dd = keel_pair_delta(k, x, y);
							if (dd > 1e-12 && dd > slack)
								continue;
							if (dd > 0)
								slack -= dd;
						}
						keel_swap_apply(k, a, i, b, j);
						if (k->T > 0)
							keel_top_update(k, a, b);
						done = changed = 1;
					}
				}
			}
		if (!changed)
			break;
	}
	free(first);
	free(rk);
}

/* Replica counts for episodes: each extra replica goes to the expert that
 * most lowers the sum over episodes of the largest per-replica load
 * (SGLang's multi-step rule), at most one replica per rank.  Each episode
 * keeps its experts in a binary max-heap of per-replica load (ties: the
 * lower expert first), so the two largest are at hand and a new replica
 * costs a sift-down per episode. */
struct cheap {
	const double *v; /* [E] per-replica loads of one episode */
	int *h, *pos;    /* [E] heap of experts, and each expert's place in it */
	int n;
};

static inline int cheap_above(const struct cheap *c, int x, int y)
{
	return c->v[x] > c->v[y] || (c->v[x] == c->v[y] && x < y);
}

static void cheap_down(struct cheap *c, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < c->n && cheap_above(c, c->h[l], c->h[m]))
			m = l;
		if (r < c->n && cheap_above(c, c->h[r], c->h[m]))
			m = r;
		if (m == i)
			return;
		int t = c->h[i];
		c->h[i] = c->h[m];
		c->h[m] = t;
		c->pos[c->h[i]] = i;
		c->pos[c->h[m]] = m;
		i = m;
	}
}

static int keel_counts_ep(struct keel *k)
{
	int E = k->E, R = k->R, T = k->T, P = R * k->S;
	int *hp = malloc(2 * (size_t)T * E * sizeof(int));
	double *pv = malloc(((size_t)T * E + 2 * (size_t)E) * sizeof(double));
	struct cheap *ch = malloc((size_t)T * sizeof(*ch));

	if (!hp || !pv || !ch) {
		free(hp);
		free(pv);
		free(ch);
		return -1;
	}
	double *g = pv + (size_t)T * E, *g0 = g + E;
	for (int e = 0; e < E; e++) {
		k->cnt[e] = 1;
		g0[e] = 1e-9 * k->w[e];
	}
	memcpy(pv, k->h, (size_t)T * E * sizeof(double));
	for (int t = 0; t < T; t++) {
		struct cheap *c = ch + t;
		c->v = pv + (size_t)t * E;
		c->h = hp + 2 * (size_t)t * E;
		c->pos = c->h + E;
		c->n = E;
		for (int e = 0; e < E; e++) {
			c->h[e] = e;
			c->pos[e] = e;
		}
		for (int i = E / 2 - 1; i >= 0; i--)
			cheap_down(c, i);
	}
	for (int extra = E; extra < P; extra++) {
		/* splitting e lowers episode t's max only where e sets it;
		 * ties (no episode max lowered): the summed heat decides */
		memcpy(g, g0, (size_t)E * sizeof(double));
		for (int t = 0; t < T; t++) {
			const struct cheap *c = ch + t;
			int e = c->h[0], s2 = -1;
			if (E > 1)
				s2 = E > 2 && cheap_above(c, c->h[2], c->h[1]) ? c->h[2] : c->h[1];
			double v1 = c->v[e], v2 = s2 >= 0 ? c->v[s2] : 0;
			double nv = v1 * k->cnt[e] / (k->cnt[e] + 1);
			g[e] += v1 - (nv > v2 ? nv : v2);
		}
		int best = -1;
		double bg = -1;
		for (int e = 0; e < E; e++)
			if (k->cnt[e] < R && g[e] > bg) {
				bg = g[e];
				best = e;
			}
		if (best < 0)
			best = extra % E;
		k->cnt[best]++;
		g0[best] = 1e-9 * k->w[best] / k->cnt[best];
		for (int t = 0; t < T; t++) {
			pv[(size_t)t * E + best] = k->h[(size_t)t * E + best] / k->cnt[best];
			cheap_down(ch + t, ch[t].pos[best]);
		}
	}
	free(hp);
	free(pv);
	free(ch);
	return 0;
}

/* A second replica of an expert on one rank (an eplb placement in force)
 * gives way to the expert that gains most from one more replica: keel
 * never leaves a duplicate, even when that costs moves past the budget. */
static void keel_dedup(struct keel *k)
{
	int E = k->E, R = k->R, S = k->S, changed = 0;

	for (int r = 0; r < R; r++)
		for (int j = 0; j < S; j++) {
			int e = k->slot[r * S + j], best = -1;
			if (k->has[(size_t)r * E + e] < 2)
				continue;
			for (int z = 0; z < E; z++)
				if (!k->has[(size_t)r * E + z] && k->cnt[z] < R &&
				    (best < 0 || k->w[z] / (k->cnt[z] + 1) > k->w[best] / (k->cnt[best] + 1)))
					best = z;
			if (best < 0)
				continue;
			k->moves += keel_dmoves(k, r, e, best);
			k->slot[r * S + j] = best;
			k->has[(size_t)r * E + e]--;
			k->has[(size_t)r * E + best]++;
			k->cnt[e]--;
			k->cnt[best]++;
			changed = 1;
		}
	if (changed)
		keel_loads(k);
}

/* The figure users compare: the max device load on the summed heat, or
 * with episodes the mean over episodes of max/mean.  Loads p into k. */
static double keel_score(struct keel *k, const int32_t *p)
{
	memcpy(k->slot, p, (size_t)k->R * k->S * sizeof(int32_t));
	analyze_replicas(p, k->R * k->S, k->E, k->cnt);
	keel_loads(k);
	if (k->T == 0)
		return k->load[keel_argmax(k)];
	keel_top(k);
	double s = 0;
	for (int t = 0; t < k->T; t++)
		s += k->eload[(size_t)t * k->R + k->top[(size_t)t * 3]] / k->emean[t];
	return s / k->T;
}

/* Searches from the current placement with a move budget (the largest of
 * nb ascending budgets b): duplicates removed first, then steps 3-4 with
 * moves counted.  out[i] gets the last state of that search within b[i]
 * moves (the state after duplicate removal if none is). */
static void keel_from_current(struct keel *k, const int32_t *cur, const int *b, int nb,
			      int32_t *out)
{
	size_t P = (size_t)k->R * k->S;

	k->cur = cur;
	k->budget = b[nb - 1];
	memcpy(k->slot, cur, P * sizeof(int32_t));
	analyze_replicas(cur, (int)P, k->E, k->cnt);
	keel_loads(k);
	memcpy(k->curhas, k->has, (size_t)k->R * k->E);
	k->moves = 0;
	keel_dedup(k);
	k->nsnap = nb;
	k->snap_b = b;
	k->snap = out;
	keel_snap(k, 1);
	keel_search(k);
	k->nsnap = 0;
	k->budget = -1;
}

/* Candidates with a current placement: the re-plan in phy2log (matched),
 * and the states of one search from the current placement within budgets
 * of 0 (duplicates removed only), 2%, 5%, 10% and 25% of the slots (and
 * max_moves), each capped by max_moves (no such search when the current
 * placement is far behind: KEEL_CURRENT_FAR).  Among those within max_moves, the one with the
 * fewest moves whose score is within in->move_tolerance of the best score wins (ties:
 * lower score, then the re-plan first).  A candidate past max_moves only
 * wins when nothing else is within it (a duplicate in force must go).
 * phy2log gets the winner; 0, or -1 when out of memory. */
#define KEEL_NCAND 8
/* The search from the placement in force is left out, on a layer of at
 * least KEEL_CURRENT_FAR_SLOTS slots, when that placement scores this many
 * times the re-plan's episode figure or more (the mean over episodes or
 * scenarios of max/mean): within its budgets (a quarter of the slots at
 * most) it never came near the re-plan there.  In the 48 compare --rounds
 * cases of BENCHMARKS.md at seeds 0-2 (21,924 decisions) the candidates
 * from the placement in force won 1,016 times; on layers of 80 slots and
 * more the placement in force then scored at most 1.14 times the
 * re-plan's figure.  On a small layer a few moves can close a wider gap
 * (a quarter of 4 x 3 slots is 3 moves, each can carry a whole hot expert:
 * wins up to 1.43 times), and the search costs little there; by the max
 * load of the summed heat alone (no episodes) a few moves off the top rank
 * can close any gap: in both cases the search always runs. */
#define KEEL_CURRENT_FAR 1.3
#define KEEL_CURRENT_FAR_SLOTS 64

static int keel_pick(struct keel *k, const struct analyze_place_in *in, int32_t *phy2log)
{
	static const int pct[] = { 0, 2, 5, 10, 25 };
	size_t P = (size_t)k->R * k->S;
	int32_t *buf = malloc(KEEL_NCAND * P * sizeof(int32_t));
	int moves[KEEL_NCAND], ok[KEEL_NCAND], n = 0, cap = in->max_moves;
	double score[KEEL_NCAND];

	if (!buf)
		return -1;
	memcpy(buf, phy2log, P * sizeof(int32_t));
	moves[0] = analyze_place_moves(in->current, buf, k->E, k->R, k->S);
	/* the placement in force far behind a re-plan within max_moves, by
	 * the episode figure: no search from it (KEEL_CURRENT_FAR) */
	double sr = k->T > 0 && P >= KEEL_CURRENT_FAR_SLOTS && (cap < 0 || moves[0] <= cap)
			    ? keel_score(k, buf)
			    : 0;
	int far = sr > 0 && keel_score(k, in->current) >= KEEL_CURRENT_FAR * sr;
	/* budgets, ascending */
	int bud[UTIL_ARRAY_SIZE(pct) + 1], nb = 0;
	for (size_t i = 0; i <= UTIL_ARRAY_SIZE(pct) && !far; i++) {
		int b;
		if (i < UTIL_ARRAY_SIZE(pct))
			b = (int)(P * (size_t)pct[i] / 100);
		else if (cap >= 0)
			b = cap;
		else
			break;
		if (cap >= 0 && b > cap)
			b = cap;
		int j = nb++;
		while (j > 0 && bud[j - 1] > b) {
			bud[j] = bud[j - 1];
			j--;
		}
		bud[j] = b;
	}
	if (nb > 0)
		keel_from_current(k, in->current, bud, nb, buf + P);
	for (int i = 0; i < nb; i++)
		moves[1 + i] = analyze_place_moves(in->current, buf + (size_t)(1 + i) * P, k->E,
						   k->R, k->S);
	n = 1 + nb;
	/* scores; the best among those within max_moves */
	double best = 0;
	int any = 0;
	for (int c = 0; c < n; c++) {
		score[c] = c == 0 && sr > 0 ? sr : keel_score(k, buf + (size_t)c * P);
		ok[c] = cap < 0 || moves[c] <= cap;
		if (ok[c] && (!any || score[c] < best)) {
			best = score[c];
			any = 1;
		}
	}
	/* the re-plan with its moves undone while the score stays within
	 * in->move_tolerance of the best */
	if (any) {
		size_t q = (size_t)n * P;
		memcpy(k->slot, phy2log, P * sizeof(int32_t));
		analyze_replicas(phy2log, (int)P, k->E, k->cnt);
		keel_loads(k);
		keel_restore(k, best + k->tol * best);
		memcpy(buf + q, k->slot, P * sizeof(int32_t));
		moves[n] = analyze_place_moves(in->current, buf + q, k->E, k->R, k->S);
		score[n] = keel_score(k, buf + q);
		ok[n] = cap < 0 || moves[n] <= cap;
		n++;
	}
	int win = -1;
	if (any) {
		for (int c = 0; c < n; c++) {
			if (!ok[c] || score[c] > best + k->tol * best)
				continue;
			if (win < 0 || moves[c] < moves[win] ||
			    (moves[c] == moves[win] && score[c] < score[win]))
				win = c;
		}
	} else {
		/* none within max_moves: the fewest moves */
		for (int c = 0; c < n; c++)
			if (win < 0 || moves[c] < moves[win] ||
			    (moves[c] == moves[win] && score[c] < score[win]))
				win = c;
	}
	memcpy(phy2log, buf + (size_t)win * P, P * sizeof(int32_t));
	free(buf);
	return 0;
}

/* Scenarios the flagship fits besides its forecast, from blocks: at most
 * KEEL_SCENARIOS, and at most KEEL_SCENARIO_WORK / slots, which holds the
 * time of a large layer (58 x 256 at 64 x 5: 16 scenarios) in budget. */
#define KEEL_SCENARIOS 64
#define KEEL_SCENARIO_WORK 5120
/* Score a forecast fit may give up for fewer copies: the next window
 * differs from any forecast by far more (the scenarios spread by several
 * percent), so a copy that buys less buys noise.  The replay's tolerance:
 * on the 48 next-window cases of BENCHMARKS.md at three seeds it copies
 * 4% less than 0.2% did for the same imbalance (geometric mean within
 * 0.04%), and no case copies more than eplb, where 0.2% did in three of
 * the 144 (docs/algorithms.md). */
#define KEEL_FORECAST_TOLERANCE ANALYZE_REPLAY_MOVE_TOLERANCE

/* Given the window's blocks (and no episodes): keel on the forecast of
 * the next window, with its scenarios as the episodes (robust.c). */
static int keel_robust(const struct analyze_place_in *in, int32_t *phy2log, struct util_err *err)
{
	int E = in->experts, P = in->ranks * in->slots, rc;
	int K = KEEL_SCENARIO_WORK / P < KEEL_SCENARIOS ? KEEL_SCENARIO_WORK / P : KEEL_SCENARIOS;
	double *heat = malloc((size_t)E * sizeof(double));
	double *scen;
	struct analyze_place_in rin = *in;

	if (K < 8)
		K = 8;
	scen = malloc((size_t)K * E * sizeof(double));
	if (!heat || !scen ||
	    analyze_robust_fit(in->blocks, in->blocks_stride, in->n_blocks, in->n_hist, E, P, K,
			       in->seed, in->robust, heat, scen, NULL, NULL)) {
		free(heat);
		free(scen);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	rin.heat = heat;
	rin.episodes = K > 0 ? scen : NULL;
	rin.n_episodes = K;
	rin.blocks = NULL;
	rin.n_blocks = rin.n_hist = 0;
	rin.robust = NULL;
	if (rin.move_tolerance < KEEL_FORECAST_TOLERANCE)
		rin.move_tolerance = KEEL_FORECAST_TOLERANCE;
	rc = analyze_place_keel(&rin, phy2log, err);
	free(heat);
	free(scen);
	return rc;
}

int analyze_place_keel(const struct analyze_place_in *in, int32_t *phy2log, struct util_err *err)
{
	struct keel k;
	int E = in->experts, R = in->ranks, S = in->slots, rc = 0;
	size_t P = (size_t)R * S;

	/* the shape analyze_place checked, which every loop below relies on */
	if (E < 1 || R < 1 || S < 1 || P < (size_t)E)
		return util_err_set(err, UTIL_EUSAGE, "keel: %d experts on %d x %d slots", E, R, S);
	if (in->blocks && in->n_blocks > 0 && !(in->episodes && in->n_episodes > 0))
		return keel_robust(in, phy2log, err);
	memset(&k, 0, sizeof(k));
	k.E = E;
	k.R = R;
	k.S = S;
	k.T = in->episodes && in->n_episodes > 0 ? in->n_episodes : 0;
	k.w = in->heat;
	k.h = in->episodes;
	k.lambda = 0.5;
	k.tol = in->move_tolerance > 0 ? (in->move_tolerance < 0.5 ? in->move_tolerance : 0.5) : 0;
	k.budget = -1;
	k.cap = KEEL_WORK * (long)P;
	if (keel_alloc(&k)) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (int t = 0; t < k.T; t++) {
		double s = 0;
		for (int e = 0; e < E; e++)
			s += k.h[(size_t)t * E + e];
		k.emean[t] = s > 0 ? s / R : 1;
		k.winv[t] = 1 / (k.T * k.emean[t]);
	}
	{
		double s = 0;
		for (int e = 0; e < E; e++)
			s += k.w[e];
		k.mean = s > 0 ? s / R : 1;
	}
	/* 1-3: counts, packing, search */
	if (k.T > 0) {
		if (keel_counts_ep(&k)) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
	} else
		analyze_place_counts_minmax(k.w, E, (int)P, R, k.cnt);

	if (k.T > 0 ? keel_lpt_ep(&k) : keel_lpt(&k)) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	keel_loads(&k);
	keel_search(&k);
	memcpy(phy2log, k.slot, P * sizeof(int32_t));
	/* 4: small instances are solved exactly */
	if (k.T == 0 && E <= 10 && P <= 16) {
		double best = k.load[keel_argmax(&k)];
		int32_t *p = malloc(P * sizeof(int32_t));
		if (p && analyze_place_exact_search(k.w, E, R, S, 2000000, &best, p) >= 0 &&
		    best < k.load[keel_argmax(&k)] - EPS * (1 + best))
			memcpy(phy2log, p, P * sizeof(int32_t));
		free(p);
	}
	/* small instances: flashlb's answer when it is better (its tree search
	 * explores count vectors ours does not) */
	if (P <= 64) {
		int32_t *f = malloc(P * sizeof(int32_t));
		struct analyze_place_in fin = *in;
		fin.current = NULL;
		if (f && analyze_place_flashlb(&fin, f, NULL) == 0 &&
		    keel_score(&k, f) < keel_score(&k, phy2log) - 1e-12)
			memcpy(phy2log, f, P * sizeof(int32_t));
		free(f);
	}
	/* 5: a current placement */
	if (in->current) {
		if (analyze_place_match(in->current, phy2log, E, R, S, 0)) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		/* fewer moves at the same quality */
		k.cur = in->current;
		memcpy(k.slot, phy2log, P * sizeof(int32_t));
		analyze_replicas(phy2log, (int)P, E, k.cnt);
		memset(k.curhas, 0, (size_t)R * E);
		for (size_t q = 0; q < P; q++)
			k.curhas[(q / S) * E + in->current[q]]++;
		keel_loads(&k);
		keel_restore(&k, 0);
		memcpy(phy2log, k.slot, P * sizeof(int32_t));
		if (analyze_place_match(in->current, phy2log, E, R, S, 0)) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		if (keel_pick(&k, in, phy2log)) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	keel_release(&k);
	return rc;
}

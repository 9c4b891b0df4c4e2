/*
 * robust.c: what the flagship knows at the end of a window, and what it
 * makes of it.  A placement fitted on a window serves the steps after it,
 * so the flagship does not fit the window's summed heat as it is: it reads
 * the window as consecutive blocks of steps, with earlier history before
 * it (analyze_window_blocks), forecasts the next window's heat by the
 * estimator that best forecast this trace's own past (analyze_robust_fit),
 * and fits that forecast together with scenarios of what the next window
 * may bring (block-bootstrap resamples).  docs/algorithms.md explains the
 * choices; place_keel.c runs the placement search on the result.
 */
#include "analyze/place_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading a window and its history as blocks ---------------------------------- */

int64_t analyze_window_history_from(int64_t from, int64_t to)
{
	/* history: up to ANALYZE_FLAGSHIP_HISTORY window lengths of step ids
	 * before the window (a window from the run's start has none; nor has
	 * an open-ended one) */
	int64_t len = from > INT64_MIN / 4 && to < INT64_MAX / 4 ? to - from + 1 : 0;

	return len > 0 && len <= (from - INT64_MIN / 2) / ANALYZE_FLAGSHIP_HISTORY
		       ? from - len * ANALYZE_FLAGSHIP_HISTORY
		       : from;
}

int analyze_blocks_init(struct analyze_blocks *b, int layers, int experts, int64_t nw,
			int64_t nh)
{
	int m;

	memset(b, 0, sizeof(*b));
	b->heat = NULL;
	b->layers = layers;
	b->experts = experts;
	b->nw = nw;
	b->nh = nh;
	if (nw <= 0)
		return 0; /* no blocks: the caller fits the summed heat */
	m = nw < ANALYZE_FLAGSHIP_BLOCKS ? (int)nw : ANALYZE_FLAGSHIP_BLOCKS;
	b->bsz = (nw + m / 2) / m;
	b->hist = (int)(nh / b->bsz < (int64_t)ANALYZE_FLAGSHIP_HISTORY * m
				? nh / b->bsz
				: (int64_t)ANALYZE_FLAGSHIP_HISTORY * m);
	b->n = b->hist + m;
	b->heat = calloc((size_t)b->n * layers * experts, sizeof(double));
	if (!b->heat) {
		memset(b, 0, sizeof(*b));
		return UTIL_ENOMEM;
	}
	return 0;
}

void analyze_blocks_add(struct analyze_blocks *b, int64_t i, const uint32_t *counts)
{
	size_t LE = (size_t)b->layers * b->experts;
	int64_t blk;

	if (b->n == 0 || i < 0 || i >= b->nh + b->nw)
		return;
	if (i < b->nh) {
		/* history in blocks of bsz steps counted back from the window */
		int64_t back = (b->nh - 1 - i) / b->bsz;
		if (back >= b->hist)
			return;
		blk = b->hist - 1 - back;
	} else {
		blk = b->hist + (i - b->nh) * (b->n - b->hist) / b->nw;
	}
	double *d = b->heat + (size_t)blk * LE;
	for (size_t k = 0; k < LE; k++)
		d[k] += counts[k];
}

/* One pass of analyze_window_blocks with the step counts given: 1 and the
 * counts the iterator met in *nw, *nh when they differ (a step without
 * counts rows is no step to the iterator), else 0 or a negative code. */
static int window_blocks_pass(struct store *s, const struct store_run *run, int64_t hfrom,
			      int64_t from, int64_t to, unsigned phase_mask, int64_t *nw,
			      int64_t *nh, struct analyze_blocks *b, struct util_err *err)
{
	struct store_iter *it = NULL;
	struct store_step st;
	int64_t iw = 0, ih = 0;
	int rc;

	if (analyze_blocks_init(b, run->layers, run->experts, *nw, *nh))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	if (b->n == 0)
		return 0;
	if ((rc = store_iter_new(s, run, b->hist ? hfrom : from, to, phase_mask, &it)))
		return util_err_set(err, rc, "%s", store_errmsg(s));
	while ((rc = store_iter_next(it, &st)) == 1) {
		if (st.step < from)
			analyze_blocks_add(b, ih++, st.counts);
		else
			analyze_blocks_add(b, *nh + iw++, st.counts);
	}
	store_iter_free(it);
	if (rc < 0)
		return util_err_set(err, rc, "%s", store_errmsg(s));
	/* history read only when it makes whole blocks: its count stands */
	if (iw != *nw || (b->hist && ih != *nh)) {
		*nw = iw;
		if (b->hist)
			*nh = ih;
		return 1;
	}
	return 0;
}

int analyze_window_blocks(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			  unsigned phase_mask, struct analyze_blocks *b, struct util_err *err)
{
	int64_t nw = 0, nh = 0, hfrom;
	int rc;

	memset(b, 0, sizeof(*b));
	if (to < from)
		return util_err_set(err, UTIL_EUSAGE, "empty window %lld:%lld", (long long)from,
				    (long long)to);
	hfrom = analyze_window_history_from(from, to);
	/* the steps are counted from their index, not decoded; the blocks are
	 * then read in one pass (a second one only if the iterator met other
	 * steps than were counted) */
	if ((rc = store_steps_count(s, run, from, to, phase_mask, &nw)) ||
	    (hfrom < from && (rc = store_steps_count(s, run, hfrom, from - 1, phase_mask, &nh))))
		return util_err_set(err, rc, "%s", store_errmsg(s));
	for (int pass = 0;; pass++) {
		rc = window_blocks_pass(s, run, hfrom, from, to, phase_mask, &nw, &nh, b, err);
		if (rc <= 0 || pass == 2)
			break;
		analyze_blocks_release(b); /* read again */
	}
	if (rc == 0)
		return 0;
	analyze_blocks_release(b);
	if (rc > 0)
		rc = util_err_set(err, UTIL_EDB, "the steps of %lld:%lld changed while read",
				  (long long)from, (long long)to);
	return rc;
}

void analyze_blocks_window_heat(const struct analyze_blocks *b, double *heat)
{
	size_t LE = (size_t)b->layers * b->experts;

	memset(heat, 0, LE * sizeof(double));
	for (int i = b->hist; i < b->n; i++)
		for (size_t k = 0; k < LE; k++)
			heat[k] += b->heat[(size_t)i * LE + k];
}

void analyze_blocks_release(struct analyze_blocks *b)
{
	if (!b)
		return;
	free(b->heat);
	memset(b, 0, sizeof(*b));
	b->heat = NULL; /* (memset did: said for the analyzer) */
}

int analyze_forecast_read(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			  unsigned phase_mask, int nslots, struct analyze_forecast *f,
			  struct util_err *err)
{
	struct analyze_blocks *b = &f->b;
	int rc;

	memset(f, 0, sizeof(*f));
	if ((rc = analyze_window_blocks(s, run, from, to, phase_mask, b, err)))
		return rc;
	return analyze_forecast_choose(f, nslots, err);
}

int analyze_forecast_choose(struct analyze_forecast *f, int nslots, struct util_err *err)
{
	struct analyze_blocks *b = &f->b;

	if (b->n == 0 || !b->heat)
		return 0;
	if (analyze_robust_choose(b->heat, b->n, b->hist, b->layers, b->experts, nslots, 1,
				  &f->choice)) {
		analyze_forecast_release(f);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	return 0;
}

void analyze_forecast_layer(struct analyze_forecast *f, int l, struct analyze_place_in *in)
{
	const struct analyze_blocks *b = &f->b;
	size_t E = (size_t)b->experts;

	if (b->n == 0 || l < 0 || l >= b->layers)
		return;
	in->blocks = b->heat + (size_t)l * E; /* the layer's, where they are */
	in->blocks_stride = (size_t)b->layers * E;
	in->n_blocks = b->n;
	in->n_hist = b->hist;
	in->robust = &f->choice;
}

void analyze_forecast_release(struct analyze_forecast *f)
{
	if (!f)
		return;
	analyze_blocks_release(&f->b);
	memset(f, 0, sizeof(*f));
}

/* ---- the forecast ------------------------------------------------------------- */

/*
 * Candidate estimators of the next window's shares of the heat, from the
 * blocks before an origin: the blocks summed as they are (volume) or each
 * block's shares averaged (every block counts alike, so one step with
 * ten times the tokens cannot dominate), weighted by age with a half-life
 * in window lengths (ROBUST_HALF; 0 = the window alone, uniform), then
 * mixed with the uniform share by lambda (ROBUST_SHRINK): the less the
 * past predicts, the more a hedge toward "every expert alike" pays.
 */
static const double half_lives[] = { 0, 0.25, 0.5, 1, 2, 4, INFINITY };
static const double shrinks[] = { 0, 0.0625, 0.125, 0.25, 0.5, 0.75 };
#define N_HALF (sizeof(half_lives) / sizeof(half_lives[0]))
#define N_SHRINK (sizeof(shrinks) / sizeof(shrinks[0]))
#define ROBUST_CANDIDATES (2 * N_HALF * N_SHRINK)
/* origins the backtest scores (evenly spaced over those it may use) */
#define ROBUST_ORIGINS 16

/* weight of a block `age` blocks before the origin (0 = the newest) */
static double age_weight(double half, int m, int age)
{
	if (half == 0)
		return age < m ? 1 : 0;
	if (isinf(half))
		return 1;
	return exp2(-age / (half * m));
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Two doubles at a time: GCC's and clang's vector extension, which every
 * target has (as SSE2 on x86-64, NEON on arm64, scalar elsewhere); the
 * backtest below is most of the flagship's choice and vectorises no
 * other way at -O2. */
typedef double v2d __attribute__((vector_size(16)));
typedef long long v2l __attribute__((vector_size(16)));

static v2d ld2(const double *p)
{
	v2d v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void st2(double *p, v2d v)
{
	memcpy(p, &v, sizeof(v));
}

static v2d at_least_1(v2d c)
{
	const v2d one = { 1, 1 };
	v2l big = c > one;

	return (v2d)(((v2l)c & big) | ((v2l)one & ~big));
}

/* Eight at a time, which the machine does in one instruction with
 * AVX-512, two with AVX, four with SSE2: the backtest is compiled for each
 * and the loader picks one.  The same operations on each element in the
 * same order, so the same bits on every machine; only the throughput
 * differs. */
typedef double v4d __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
typedef long long v8l __attribute__((vector_size(64)));
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define ROBUST_CLONES __attribute__((target_clones("avx512f", "avx", "default")))
#endif
#endif
#ifndef ROBUST_CLONES
#define ROBUST_CLONES
#endif
#define ROBUST_INLINE static inline __attribute__((always_inline))
/* (statements, not functions: a 64-byte vector passed by value has
 * another ABI with AVX-512 than without) */
#define LD8(v, p) memcpy(&(v), (p), sizeof(v8d))
#define ST8(p, v) memcpy((p), &(v), sizeof(v8d))

/* Normalises v[E] to shares (uniform when empty). */
static void to_shares(double *v, int E)
{
	double s = 0;

	for (int e = 0; e < E; e++)
		s += v[e];
	for (int e = 0; e < E; e++)
		v[e] = s > 0 ? v[e] / s : 1.0 / E;
}

/* d[E] += w x row i of X (rows xs doubles apart): a block as an estimator
 * reads it (its tokens, or its shares from block_shares). */
ROBUST_INLINE void add_block(double *d, const double *X, size_t xs, int i, int E, double w)
{
	const double *v = X + (size_t)i * xs;
	int e = 0;

	/* eight at a time (the compiler cannot know d and v apart); inlined,
	 * so each clone of the backtest adds in its own vector width */
	for (; e + 7 < E; e += 8) {
		v8d a, b;
		LD8(a, d + e);
		LD8(b, v + e);
		a += w * b;
		ST8(d + e, a);
	}
	for (; e < E; e++)
		d[e] += w * v[e];
}

/* t[i] = the sum of rows[i][E] in expert order, for nr rows: eight rows
 * at a time, then four, then two, one in each lane (the same sums, without
 * waiting on one long chain of additions). */
ROBUST_INLINE void row_totals(const double *const *rows, int nr, int E, double *t)
{
	int i = 0;

	for (; i + 7 < nr; i += 8) {
		const double *a = rows[i], *b = rows[i + 1], *c = rows[i + 2], *d = rows[i + 3];
		const double *f = rows[i + 4], *g = rows[i + 5], *h = rows[i + 6], *k = rows[i + 7];
		v8d s = { 0 };
		for (int e = 0; e < E; e++)
			s += (v8d){ a[e], b[e], c[e], d[e], f[e], g[e], h[e], k[e] };
		for (int j = 0; j < 8; j++)
			t[i + j] = s[j];
	}
	for (; i + 3 < nr; i += 4) {
		const double *a = rows[i], *b = rows[i + 1], *c = rows[i + 2], *d = rows[i + 3];
		v4d s = { 0, 0, 0, 0 };
		for (int e = 0; e < E; e++)
			s += (v4d){ a[e], b[e], c[e], d[e] };
		for (int j = 0; j < 4; j++)
			t[i + j] = s[j];
	}
	for (; i + 1 < nr; i += 2) {
		const double *a = rows[i], *b = rows[i + 1];
		v2d s = { 0, 0 };
		for (int e = 0; e < E; e++)
			s += (v2d){ a[e], b[e] };
		t[i] = s[0];
		t[i + 1] = s[1];
	}
	for (; i < nr; i++) {
		double s = 0;
		for (int e = 0; e < E; e++)
			s += rows[i][e];
		t[i] = s;
	}
}

/* tot[i] = the tokens of block i of x (rows xs doubles apart), i = lo..n-1,
 * each summed in expert order (row_totals, eight blocks at a time).  The
 * blocks before lo, which the caller does not read, get 0. */
static void block_totals(const double *x, size_t xs, int lo, int n, int E, double *tot)
{
	memset(tot, 0, (size_t)lo * sizeof(double));
	for (int i = lo; i < n; i += 8) {
		const double *rows[8] = { 0 };
		int k = n - i < 8 ? n - i : 8;
		for (int j = 0; j < k; j++)
			rows[j] = x + (size_t)(i + j) * xs;
		row_totals(rows, k, E, tot + i);
	}
}

/* Rows lo..hi-1 of sh[n * E] = the shares of blocks lo..hi-1 of x (rows
 * xs doubles apart), whose tokens are tot[] (uniform when a block has
 * none): x / t, two experts at a time, computed once for every estimator
 * that reads them. */
static void block_shares(const double *x, size_t xs, const double *tot, int lo, int hi, int E,
			 double *sh)
{
	double un = 1.0 / E;

	for (int i = lo; i < hi; i++) {
		const double *xi = x + (size_t)i * xs;
		double *si = sh + (size_t)i * E, t = tot[i];
		int e = 0;
		if (!(t > 0)) {
			for (; e < E; e++)
				si[e] = un;
			continue;
		}
		for (; e + 1 < E; e += 2)
			st2(si + e, ld2(xi + e) / t);
		for (; e < E; e++)
			si[e] = xi[e] / t;
	}
}

/* How many of the n blocks, newest first, weigh at least 1e-3 in a
 * memory of half-life half (m blocks a window): those a forecast reads. */
static int newest_blocks(double half, int m, int n)
{
	int na = 0;

	for (int i = n - 1; i >= 0; i--) {
		if (age_weight(half, m, n - 1 - i) < 1e-3)
			break;
		na++;
	}
	return na;
}

/* The scenarios of analyze_robust_fit: half of them the window's own
 * blocks in Kb consecutive groups (how the heat varies inside a window,
 * which the next window's steps will show again and a resampled sum
 * averages away), the others m blocks drawn with replacement in proportion
 * to their weight in the forecast (what the next window's sum may be); all
 * aggregated and shrunk as the forecast is.  X: the n blocks as the chosen
 * estimator reads them (their tokens or their shares, rows xs doubles
 * apart; only the newest_blocks are read); cw[n]: scratch. */
static void robust_scenarios(const double *X, size_t xs, int n, int hist, int E, int K,
			     uint64_t seed, double half, double lam, double vol, double *cw,
			     double *scen)
{
	int m = n - hist, na = newest_blocks(half, m, n), Kb = K / 2 < m ? K / 2 : m;
	double c = 0;
	uint64_t rs = seed ^ 0x6b65656c726f6275ULL;

	/* cw[j]: cumulative weights over the na newest blocks, oldest first */
	for (int j = 0; j < na; j++) {
		c += age_weight(half, m, na - 1 - j);
		cw[j] = c;
	}
	for (int k = 0; k < K; k++) {
		double *d = scen + (size_t)k * E;
		memset(d, 0, (size_t)E * sizeof(double));
		if (k >= K - Kb) {
			int j = k - (K - Kb);
			for (int i = hist + j * m / Kb; i < hist + (j + 1) * m / Kb; i++)
				add_block(d, X, xs, i, E, 1);
		} else
			for (int r = 0; r < m; r++) {
				double u = (double)(splitmix(&rs) >> 11) * 0x1.0p-53 * c;
				int lo = 0, hi = na - 1;
				while (lo < hi) {
					int mid = (lo + hi) / 2;
					if (cw[mid] > u)
						hi = mid;
					else
						lo = mid + 1;
				}
				add_block(d, X, xs, n - na + lo, E, 1);
			}
		to_shares(d, E);
		for (int e = 0; e < E; e++)
			d[e] = vol * ((1 - lam) * d[e] + lam / E);
	}
}

/* One estimator's error at one origin, for every hedge: s[E] the weighted
 * blocks before the origin (to be read as shares of their sum t), a[E] the
 * shares that came after; se[q] = sum over experts of (f - a)^2 /
 * max(f x nslots, 1), f the forecast share hedged by shrinks[q] (the
 * squared error per replica the forecast would give the expert).  The sums
 * run in two lanes (even and odd experts), added at the end. */
ROBUST_INLINE void robust_score(const double *s, double t, const double *a, int E, int nslots,
				double se[N_SHRINK])
{
	double un = 1.0 / E;
	v2d acc[N_SHRINK] = { 0 };
	const v8d one = { 1, 1, 1, 1, 1, 1, 1, 1 };
	int e = 0;

	/* shares by division, as the forecast's (x / t, not x * (1 / t),
	 * which is not 1 for x = t = 49: one expert's errors would be
	 * rounding noise instead of zero); eight experts' errors at a time,
	 * added to the two lanes as four pairs in expert order, then the
	 * pairs left, so that the sums are the same however wide the
	 * machine's vectors */
	for (; e + 7 < E; e += 8) {
		v8d p = { un, un, un, un, un, un, un, un }, av;
		LD8(av, a + e);
		if (t > 0) {
			LD8(p, s + e);
			p = p / t;
		}
		for (size_t q = 0; q < N_SHRINK; q++) {
			double l = shrinks[q];
			v8d f = (1 - l) * p + l * un, d = f - av, c = f * (double)nslots;
			v8l big = c > one;
			c = (v8d)(((v8l)c & big) | ((v8l)one & ~big));
			v8d z = d * d / c;
			acc[q] += (v2d){ z[0], z[1] };
			acc[q] += (v2d){ z[2], z[3] };
			acc[q] += (v2d){ z[4], z[5] };
			acc[q] += (v2d){ z[6], z[7] };
		}
	}
	for (; e + 1 < E; e += 2) {
		v2d p = t > 0 ? ld2(s + e) / t : (v2d){ un, un }, av = ld2(a + e);
		for (size_t q = 0; q < N_SHRINK; q++) {
			double l = shrinks[q];
			v2d f = (1 - l) * p + l * un, d = f - av;
			acc[q] += d * d / at_least_1(f * (double)nslots);
		}
	}
	for (size_t q = 0; q < N_SHRINK; q++)
		se[q] = acc[q][0] + acc[q][1];
	for (; e < E; e++) {
		double p = t > 0 ? s[e] / t : un;
		for (size_t q = 0; q < N_SHRINK; q++) {
			double l = shrinks[q], f = (1 - l) * p + l * un, d = f - a[e];
			double c = f * nslots;
			se[q] += d * d / (c > 1 ? c : 1);
		}
	}
}

/* s[E] = blocks lo..hi-1 of x (rows xs doubles apart) summed in order,
 * eight experts at a time: not a difference of prefix sums, which loses a
 * small block's tokens after a block of 2^53 (the limit of a step's
 * tokens). */
ROBUST_INLINE void sum_blocks(const double *x, size_t xs, int lo, int hi, int E, double *s)
{
	/* row by row: each block's row is read in order (the blocks of a
	 * layer lie a whole step's cells apart, too far for the prefetcher
	 * when read down a column), and the additions of one expert are the
	 * same, in the same order */
	memset(s, 0, (size_t)E * sizeof(double));
	for (int i = lo; i < hi; i++)
		add_block(s, x, xs, i, E, 1); /* (1 x v is v, exactly) */
}

/* The backtest: from origin o, the blocks before o (x as they are, sh as
 * shares) forecast the shares of the m blocks from o on (fewer at the end,
 * at least half of them); err gets each estimator's weighted error.  The
 * blocks after o and the window alone are summed where they are; every
 * other memory is a running sum (every block alike the one with ratio 1),
 * all of them in one pass over the blocks.  None subtracts, so a block of
 * 2^53 tokens cannot swallow the small ones after it.  tgt
 * ([ROBUST_ORIGINS + 1] * E) and acc ([(N_HALF + 1) * E]) are scratch.
 * Returns the origins scored. */
ROBUST_CLONES
static int robust_backtest(const double *x, size_t xs, const double *sh, int n, int m, int E,
			   int nslots, double *tgt, double *acc, double err[2][N_HALF][N_SHRINK])
{
	int olo = (m + 1) / 2 > 1 ? (m + 1) / 2 : 1, ohi = n - (m + 1) / 2, norg = 0;

	if (ohi < olo)
		return 0;
	int span = ohi - olo + 1, step = span > ROBUST_ORIGINS ? span / ROBUST_ORIGINS : 1;
	int org[ROBUST_ORIGINS + 1] = { 0 }, nd = 0;
	double wo[ROBUST_ORIGINS + 1] = { 0 }, r[N_HALF] = { 0 }, se[N_SHRINK];
	for (int o = ohi; o >= olo && norg <= ROBUST_ORIGINS; o -= step) {
		int end = o + m < n ? o + m : n;
		double *a = tgt + (size_t)norg * E;
		/* what forecast well lately counts most: evidence ages
		 * with a half-life of one window */
		wo[norg] = exp2(-(double)(ohi - o) / m);
		sum_blocks(x, xs, o, end, E, a);
		to_shares(a, E);
		org[norg++] = o;
	}
	/* the ratio of each memory but the window alone: a block's weight
	 * is r^age (1: every block alike, summed in order as a plain sum) */
	for (size_t hh = 0; hh < N_HALF; hh++)
		if (half_lives[hh] != 0)
			r[nd++] = isinf(half_lives[hh]) ? 1 : exp2(-1 / (half_lives[hh] * m));
	for (int g = 0; g < 2; g++) {
		const double *X = g ? sh : x;
		size_t Xs = g ? (size_t)E : xs;
		double *S = acc + (size_t)N_HALF * E;
		int k = norg - 1; /* origins ascending from the last */
		memset(acc, 0, (size_t)nd * E * sizeof(double));
		/* acc[j] = the blocks before o weighted by r[j]^age, o = 1..ohi */
		for (int o = 1; o <= ohi && k >= 0; o++) {
			const double *v = X + (size_t)(o - 1) * Xs;
			int e = 0;
			for (; e + 7 < E; e += 8) {
				v8d vv, sj;
				LD8(vv, v + e);
				for (int j = 0; j < nd; j++) {
					double *pj = acc + (size_t)j * E + e;
					LD8(sj, pj);
					sj = r[j] * sj + vv;
					ST8(pj, sj);
				}
			}
			for (; e + 1 < E; e += 2) {
				v2d vv = ld2(v + e);
				for (int j = 0; j < nd; j++) {
					double *sj = acc + (size_t)j * E + e;
					st2(sj, r[j] * ld2(sj) + vv);
				}
			}
			for (; e < E; e++)
				for (int j = 0; j < nd; j++)
					acc[(size_t)j * E + e] = r[j] * acc[(size_t)j * E + e] + v[e];
			if (o != org[k])
				continue;
			const double *a = tgt + (size_t)k * E, *mem[N_HALF];
			double mt[N_HALF];
			for (size_t hh = 0, j = 0; hh < N_HALF; hh++) {
				mem[hh] = S;
				if (half_lives[hh] == 0) /* the m blocks before o */
					sum_blocks(X, Xs, o - m > 0 ? o - m : 0, o, E, S);
				else
					mem[hh] = acc + (size_t)j++ * E;
			}
			row_totals(mem, N_HALF, E, mt);
			for (size_t hh = 0; hh < N_HALF; hh++) {
				robust_score(mem[hh], mt[hh], a, E, nslots, se);
				for (size_t q = 0; q < N_SHRINK; q++)
					err[g][hh][q] += wo[k] * se[q];
			}
			k--;
		}
	}
	return norg;
}

/* The errors alone, each layer's summing to one (or all zero). */
static void robust_error_shares(double err[2][N_HALF][N_SHRINK], double *errout)
{
	double t = 0;

	for (int g = 0; g < 2; g++)
		for (size_t hh = 0; hh < N_HALF; hh++)
			for (size_t q = 0; q < N_SHRINK; q++)
				t += err[g][hh][q];
	for (int g = 0; g < 2; g++)
		for (size_t hh = 0; hh < N_HALF; hh++)
			for (size_t q = 0; q < N_SHRINK; q++)
				errout[((size_t)g * N_HALF + hh) * N_SHRINK + q] =
					t > 0 ? err[g][hh][q] / t : 0;
}

/* The forecast at the window's end from the n blocks X (as the estimator
 * reads them: tokens or shares): aged by half, shrunk by lam toward the
 * uniform share, scaled to vol tokens. */
static void robust_forecast(const double *X, size_t xs, int n, int m, int E, double half,
			    double lam, double vol, double *heat)
{
	memset(heat, 0, (size_t)E * sizeof(double));
	for (int i = n - 1; i >= 0; i--) {
		double w = age_weight(half, m, n - 1 - i);
		if (w < 1e-3)
			break;
		add_block(heat, X, xs, i, E, w);
	}
	to_shares(heat, E);
	for (int e = 0; e < E; e++)
		heat[e] = vol * ((1 - lam) * heat[e] + lam / E);
}

/* Scratch of analyze_robust_fit, kept across the layers of one choice
 * (fresh buffers of this size for every layer cost page faults). */
struct robust_ws {
	double *tot, *cw;                 /* [n] */
	double *sh;                       /* [n * E]: block_shares */
	double *acc, *tgt;                /* the backtest's */
};

static int robust_ws_init(struct robust_ws *w, int n, int E, int backtest)
{
	memset(w, 0, sizeof(*w));
	w->tot = malloc((size_t)n * sizeof(double));
	w->cw = malloc((size_t)n * sizeof(double));
	w->sh = malloc((size_t)n * E * sizeof(double));
	if (backtest) {
		w->acc = malloc((N_HALF + 1) * (size_t)E * sizeof(double));
		w->tgt = malloc(((size_t)ROBUST_ORIGINS + 1) * E * sizeof(double));
	}
	if (!w->tot || !w->cw || !w->sh)
		return -1;
	return backtest && (!w->acc || !w->tgt) ? -1 : 0;
}

static void robust_ws_release(struct robust_ws *w)
{
	free(w->sh);
	free(w->tot);
	free(w->cw);
	free(w->acc);
	free(w->tgt);
	memset(w, 0, sizeof(*w));
}

/* analyze_robust_fit on the scratch w (with acc and tgt unless
 * `given`). */
static void robust_fit_ws(const double *x, size_t xs, int n, int hist, int E, int nslots,
			  int K, uint64_t seed, const struct analyze_robust_choice *given, double *heat,
			  double *scen, struct analyze_robust_choice *ch, double *errout,
			  struct robust_ws *w)
{
	int m = n - hist, G = 2, best_g = 0, best_h = 0, best_s = 0;
	double *sh = w->sh, *tot = w->tot;
	double err[2][N_HALF][N_SHRINK], vol = 0;
	int norg = 0;

	memset(err, 0, sizeof(err));
	if (given) {
		best_g = !given->volume;
		for (size_t hh = 0; hh < N_HALF; hh++)
			if (half_lives[hh] == given->half_life)
				best_h = (int)hh;
		for (size_t q = 0; q < N_SHRINK; q++)
			if (shrinks[q] == given->shrink)
				best_s = (int)q;
		norg = given->origins;
	}
	/* the tokens of the blocks read: all for the backtest, else the
	 * window's and those the forecast reads */
	int lo = given ? n - newest_blocks(half_lives[best_h], m, n) : 0;
	block_totals(x, xs, lo < hist ? lo : hist, n, E, tot);
	for (int i = hist; i < n; i++)
		vol += tot[i];
	if (!given) { /* the backtest reads every block's shares */
		block_shares(x, xs, tot, 0, n, E, sh);
		norg = robust_backtest(x, xs, sh, n, m, E, nslots, w->tgt, w->acc, err);
	}
	if (errout) {
		robust_error_shares(err, errout);
		return;
	}
	if (!given && norg > 0) {
		double be = INFINITY;
		for (int g = 0; g < G; g++)
			for (size_t hh = 0; hh < N_HALF; hh++)
				for (size_t q = 0; q < N_SHRINK; q++)
					/* ties: the simpler estimator (earlier in the lists) */
					if (err[g][hh][q] < be * (1 - 1e-9)) {
						be = err[g][hh][q];
						best_g = g;
						best_h = (int)hh;
						best_s = (int)q;
					}
	}
	double half = half_lives[best_h], lam = shrinks[best_s];
	if (ch) {
		ch->volume = !best_g;
		ch->half_life = half;
		ch->shrink = lam;
		ch->origins = norg;
	}
	if (!heat && !(K > 0 && scen))
		return;
	/* the blocks as the estimator reads them: the shares of those it
	 * reads (the backtest's are all there) or the tokens */
	if (best_g && given)
		block_shares(x, xs, tot, n - newest_blocks(half, m, n), n, E, sh);
	const double *X = best_g ? sh : x;
	size_t Xs = best_g ? (size_t)E : xs;
	if (heat)
		robust_forecast(X, Xs, n, m, E, half, lam, vol, heat);
	if (K > 0 && scen)
		robust_scenarios(X, Xs, n, hist, E, K, seed, half, lam, vol, w->cw, scen);
}

int analyze_robust_fit(const double *x, size_t xs, int n, int hist, int E, int nslots, int K,
		       uint64_t seed, const struct analyze_robust_choice *given, double *heat,
		       double *scen, struct analyze_robust_choice *ch, double *errout)
{
	struct robust_ws w;

	if (robust_ws_init(&w, n, E, !given)) {
		robust_ws_release(&w);
		return -1;
	}
	robust_fit_ws(x, xs ? xs : (size_t)E, n, hist, E, nslots, K, seed, given, heat, scen, ch,
		      errout, &w);
	robust_ws_release(&w);
	return 0;
}

/* Each layer's error shares (robust_error_shares) into the rows of err
 * [layers * ROBUST_CANDIDATES] of layers first, first + step, ...; 0, or
 * -1 when out of memory. */
static int robust_errors(const double *blocks, int n, int hist, int layers, int E, int nslots,
			 int first, int step, double *err)
{
	struct robust_ws w;

	if (robust_ws_init(&w, n, E, 1)) {
		robust_ws_release(&w);
		return -1;
	}
	/* each layer's blocks where they are: rows of E, layers x E apart */
	for (int l = first; l < layers; l += step)
		robust_fit_ws(blocks + (size_t)l * E, (size_t)layers * E, n, hist, E, nslots, 0, 0,
			      NULL, NULL, NULL, NULL, err + (size_t)l * ROBUST_CANDIDATES, &w);
	robust_ws_release(&w);
	return 0;
}

/* The estimator whose errors, summed over the layers' rows of err, are
 * the smallest. */
static void robust_pick(const double *err, int layers, struct analyze_robust_choice *ch)
{
	enum { NC = ROBUST_CANDIDATES };
	double sum[NC], be = INFINITY;
	int best = 0, any = 0;

	memset(sum, 0, sizeof(sum));
	/* in layer order, so that the choice does not depend on which
	 * thread computed which layer */
	for (int l = 0; l < layers; l++)
		for (int c = 0; c < NC; c++) {
			sum[c] += err[(size_t)l * NC + c];
			any |= err[(size_t)l * NC + c] > 0;
		}
	/* ties: the simpler estimator (earlier in the lists) */
	for (int c = 0; c < NC; c++)
		if (sum[c] < be * (1 - 1e-9)) {
			be = sum[c];
			best = c;
		}
	ch->volume = best / (int)(N_HALF * N_SHRINK) == 0;
	ch->half_life = half_lives[best / (int)N_SHRINK % (int)N_HALF];
	ch->shrink = shrinks[best % (int)N_SHRINK];
	ch->origins = any;
	if (!any) /* too little data anywhere: the defaults, as one layer alone */
		*ch = (struct analyze_robust_choice){ 1, half_lives[0], shrinks[0], 0 };
}

/* One thread's share of analyze_robust_choose's layers. */
struct choose_job {
	const double *blocks;
	int n, hist, layers, E, nslots, first, step, rc;
	double *err;
};

static void *choose_worker(void *arg)
{
	struct choose_job *j = arg;

	j->rc = robust_errors(j->blocks, j->n, j->hist, j->layers, j->E, j->nslots, j->first,
			      j->step, j->err);
	return NULL;
}

int analyze_robust_choose(const double *blocks, int n, int hist, int layers, int E, int nslots,
			  int threads, struct analyze_robust_choice *ch)
{
	double *err = malloc((size_t)layers * ROBUST_CANDIDATES * sizeof(double));
	struct choose_job jobs[2] = { { blocks, n, hist, layers, E, nslots, 0, 1, 0, err },
				      { blocks, n, hist, layers, E, nslots, 1, 2, 0, err } };
	pthread_t tid;
	int started = 0;

	if (!err)
		return -1;
	if (threads > 1 && layers > 1) {
		jobs[0].step = 2;
		started = pthread_create(&tid, NULL, choose_worker, &jobs[1]) == 0;
		if (!started)
			jobs[0].step = 1; /* no thread: every layer here */
	}
	choose_worker(&jobs[0]);
	if (started)
		pthread_join(tid, NULL);
	if (jobs[0].rc || (started && jobs[1].rc)) {
		free(err);
		return -1;
	}
	/* the rows summed in layer order whichever thread filled them */
	robust_pick(err, layers, ch);
	free(err);
	return 0;
}

/* a share as the fraction it is (the lists above hold no others) */
static const char *fraction(double x)
{
	static const struct {
		double v;
		const char *s;
	} f[] = { { 0.0625, "1/16" }, { 0.125, "1/8" }, { 0.25, "1/4" },
		  { 0.5, "1/2" },     { 0.75, "3/4" },  { 1, "1" },
		  { 2, "2" },         { 4, "4" } };

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (x == f[i].v)
			return f[i].s;
	return NULL;
}

void analyze_robust_describe(const struct analyze_robust_choice *ch, char *buf, size_t n)
{
	char mem[64], hedge[48];
	const char *h = fraction(ch->half_life), *l = fraction(ch->shrink);

	if (ch->half_life == 0)
		snprintf(mem, sizeof(mem), "the window alone");
	else if (isinf(ch->half_life))
		snprintf(mem, sizeof(mem), "the window and its history alike");
	else if (h)
		snprintf(mem, sizeof(mem), "half-life %s window%s", h, ch->half_life > 1 ? "s" : "");
	else
		snprintf(mem, sizeof(mem), "half-life %g windows", ch->half_life);
	if (ch->shrink == 0)
		snprintf(hedge, sizeof(hedge), "no hedge");
	else if (l)
		snprintf(hedge, sizeof(hedge), "%s toward uniform", l);
	else
		snprintf(hedge, sizeof(hedge), "%g toward uniform", ch->shrink);
	snprintf(buf, n, "%s, %s, %s",
		 ch->volume ? "the blocks' tokens summed" : "each block's shares averaged", mem,
		 hedge);
}

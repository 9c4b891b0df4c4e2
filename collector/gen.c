/*
 * gen.c: the synthetic trace generator behind `moetrace gen`.  Start at
 * collector_gen_next(): it schedules one engine step (a prefill of new
 * prompts or a decode token of every running request) and routes every
 * token of it through every MoE layer to top-k distinct experts.
 *
 * The model of the traffic (docs/generator.md has the calibration):
 * - each layer has a heavy-tailed popularity over its experts: a
 *   log-normal spread whose width differs per layer (some nearly flat,
 *   some steep), and on some layers a few very hot experts;
 * - traffic comes from a few workload domains, each with its own
 *   popularity per layer, drifting slowly (an Ornstein-Uhlenbeck walk of
 *   the log-popularity); the mix of domains changes over time (one domain
 *   dominates for a while, then another);
 * - every request belongs to a domain and to one of a few sub-topics of
 *   it, which reshape the domain's popularity for that request: tokens of
 *   one prompt route alike, and all layers see the same requests, so the
 *   load of different layers moves together;
 * - a token's experts in consecutive layers are related: each pick may
 *   follow the partner (a fixed random map) of its pick in the layer before;
 * - a step is a prefill (new prompts, thousands of tokens) or a decode
 *   step (one token per running request); requests run for a random
 *   number of decode steps and are replaced at the next prefill.
 *
 * Every token takes k distinct experts drawn by successive sampling
 * without replacement (alias-table draws, repeats drawn again, an exact
 * pick when the weight is concentrated), so a layer's count per step never
 * exceeds the step's tokens and sums to tokens x k.  The draws are made
 * ahead: each (sub-topic, layer) has a pool of k-sets, cut in slices; a
 * request routes by its own slice, and the pools are redrawn in bursts as
 * the popularity drifts (sample_ksets, pools_renew, route_tokens).
 *
 * Determinism: all randomness comes from util_rng (xoshiro256**), and the
 * floating point is limited to +, -, *, / and sqrt, which IEEE 754 rounds
 * the same way on every machine; exp and log are computed here by fixed
 * polynomials instead of libm (whose last bits differ between versions).
 * The build uses -std=c11, under which GCC does not contract a*b+c into
 * fused multiply-adds, so the same seed gives the same counts everywhere.
 */
#include "collector/collector.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- calibrated defaults (docs/generator.md) ---------------------------- */

#define GEN_DEF_PREFILL_FRACTION 0.1
#define GEN_DEF_DECODE_BATCH 128
#define GEN_DEF_PREFILL_TOKENS 2048
#define GEN_DEF_DOMAINS 4
#define GEN_SUBTOPICS 8          /* sub-topics per domain */
#define GEN_REFRESH 256          /* steps between drift updates of the tables */
#define GEN_DRIFT_TAU 1000.0     /* steps over which a domain's popularity decorrelates */
#define GEN_DRIFT_ETA 0.7        /* stationary drift spread, in units of the layer's sigma */
#define GEN_SWITCH_MEAN 200.0    /* mean steps between changes of the dominant domain */
#define GEN_MIX_RELAX (1.0 / 24) /* per-step pull of the domain mix towards its target */
#define GEN_DOMINANT 0.65        /* share of the dominant domain in the target mix */
#define GEN_CONVERSATION 0.5     /* chance a new request continues the previous topic */
#define GEN_OUT_MEAN 256.0       /* mean decode steps of a request */
#define GEN_PROMPT_MIN 16        /* prompt lengths are log-uniform in [min, max] */
#define GEN_PROMPT_MAX 2048
#define GEN_POOL 256             /* pre-sampled k-sets per sub-topic and layer */
#define GEN_SLICE 64             /* k-sets one request routes by (its own slice) */
#define GEN_SLICES (GEN_POOL / GEN_SLICE)
#define GEN_POOL_BURST 64        /* a pool redraws this many k-sets ... */
#define GEN_POOL_EVERY 256       /* ... every this many steps */
#define GEN_AFFINITY 0.25        /* chance a token's pick follows its pick in the layer before */
#define GEN_AFFINITY_P32 ((uint32_t)(GEN_AFFINITY * 4294967296.0))
#define GEN_HEAD 16              /* heaviest experts kept in order per table */
#define GEN_MAX_CELLS (1 << 25)  /* cap on sub-topics x layers x (experts + pool x k) */

struct gen_req {
	int unit;      /* table * GEN_SLICES + slice, -1 = empty slot */
	int remaining; /* decode steps left */
};

struct collector_gen {
	int layers, experts, topk;
	int domains, subtopics, ntables;
	int decode_batch, prefill_tokens;
	double prefill_fraction; /* < 0: decode only */
	double skew, drift;
	int fresh;               /* every token drawn afresh, no pools */
	uint64_t seed;
	int64_t n;               /* steps produced so far */
	struct util_rng rng;     /* scheduling: phases, requests, domains */

	double *sigma;           /* [layers] log-popularity spread */
	double *mean;            /* [domains][layers][experts] long-run log-popularity */
	double *z;               /* [domains][layers][experts] current log-popularity */
	float *sub;              /* [tables][layers][experts] sub-topic multipliers */
	float *wt;               /* [tables][layers][experts] weights */
	double *wsum;            /* [tables][layers] their sums */
	uint16_t *head;          /* [tables][layers][GEN_HEAD] heaviest experts, heaviest first */
	uint8_t *inhead;         /* [tables][layers][experts] 1 if in head */
	uint32_t *tail;          /* [tables][layers][experts] alias buckets of the rest */
	uint32_t *tab;           /* [tables][layers][experts] alias buckets:
				    threshold << 16 | alias target */

	double *mix, *target;    /* [domains] domain mix now and where it heads */
	int dominant;
	int last_unit;           /* the previous new request's, -1 at first */
	int carry_unit, carry_len; /* the rest of a prompt cut by the prefill budget */
	struct gen_req *run;     /* [decode_batch] running requests */
	int *ntok;               /* [units] tokens of the current step per unit */

	uint8_t *pool;           /* [units][layers][GEN_SLICE][topk] k-sets of
				    expert ids, 1 byte each up to 256 experts, else 2;
				    a unit is a table's slice: table * GEN_SLICES + s */
	int idw;                 /* bytes per id in the pool */
	uint32_t *stamp, stampv; /* [experts] repeat detection per token */
	uint32_t *hist;          /* [experts] scratch */
	uint8_t *kbuf;           /* [2][topk] ids: a token's k-sets in two layers */
	uint16_t *aff;           /* [layers][experts] partner of each expert of the
				    layer before (row 0 unused) */
	double *w, *p;           /* [experts] scratch */
	int *work;               /* [experts] scratch */
};

/* ---- deterministic elementary functions --------------------------------- */

static const double LN2_HI = 6.93147180369123816490e-01;
static const double LN2_LO = 1.90821492927058770002e-10;

/* exp(x) for |x| < 700: x = n ln2 + r, |r| <= ln2/2, Taylor to r^13. */
static double det_exp(double x)
{
	double r, p, t;
	int n;

	if (x < -700)
		return 0;
	if (x > 700)
		x = 700;
	t = x * 1.44269504088896338700;
	n = (int)(t < 0 ? t - 0.5 : t + 0.5);
	r = (x - n * LN2_HI) - n * LN2_LO;
	p = 1.0 / 6227020800.0; /* 1/13! */
	p = p * r + 1.0 / 479001600.0;
	p = p * r + 1.0 / 39916800.0;
	p = p * r + 1.0 / 3628800.0;
	p = p * r + 1.0 / 362880.0;
	p = p * r + 1.0 / 40320.0;
	p = p * r + 1.0 / 5040.0;
	p = p * r + 1.0 / 720.0;
	p = p * r + 1.0 / 120.0;
	p = p * r + 1.0 / 24.0;
	p = p * r + 1.0 / 6.0;
	p = p * r + 0.5;
	p = p * r + 1.0;
	p = p * r + 1.0;
	/* scale by 2^n with exact multiplications */
	while (n > 0) {
		int s = n > 60 ? 60 : n;
		p *= (double)(UINT64_C(1) << s);
		n -= s;
	}
	while (n < 0) {
		int s = -n > 60 ? 60 : -n;
		p /= (double)(UINT64_C(1) << s);
		n += s;
	}
	return p;
}

/* log(x) for x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), then
 * log m = 2 atanh((m-1)/(m+1)) by its series. */
static double det_log(double x)
{
	double m = x, f, f2, s, term;
	int e = 0;

	if (!(x > 0))
		return -745.0;
	while (m >= 1.4142135623730951) {
		m /= 2;
		e++;
	}
	while (m < 0.7071067811865476) {
		m *= 2;
		e--;
	}
	f = (m - 1) / (m + 1);
	f2 = f * f;
	s = 0;
	term = f;
	for (int i = 1; i <= 41; i += 2) {
		s += term / i;
		term *= f2;
	}
	return e * LN2_HI + (2 * s + e * LN2_LO);
}

/* Standard normal by inverting its CDF (Acklam's rational approximation,
 * relative error < 1.2e-9): one uniform per draw, no libm but sqrt. */
static double det_normal(struct util_rng *r)
{
	static const double a[] = { -3.969683028665376e+01, 2.209460984245205e+02,
				    -2.759285104469687e+02, 1.383577518672690e+02,
				    -3.066479806614716e+01, 2.506628277459239e+00 };
	static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02,
				    -1.556989798598866e+02, 6.680131188771972e+01,
				    -1.328068155288572e+01 };
	static const double c[] = { -7.784894002430293e-03, -3.223964580411365e-01,
				    -2.400758277161838e+00, -2.549732539343734e+00,
				    4.374664141464968e+00, 2.938163982698783e+00 };
	static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01,
				    2.445134137142996e+00, 3.754408661907416e+00 };
	double u = ((double)(util_rng_next(r) >> 11) + 0.5) * 0x1.0p-53, q, t;

	if (u < 0.02425 || u > 1 - 0.02425) {
		q = sqrt(-2 * det_log(u < 0.5 ? u : 1 - u));
		t = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
		return u < 0.5 ? t : -t;
	}
	q = u - 0.5;
	t = q * q;
	return (((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5]) * q /
	       (((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1);
}

static double uniform(struct util_rng *r)
{
	return util_rng_uniform(r);
}

/* ---- alias tables -------------------------------------------------------- */

/* Vose's alias method for weights w[n]: a draw picks a bucket i
 * uniformly and keeps it if a 16-bit coin is below its threshold, else
 * takes its alias.  The 16-bit threshold rounds each bucket's split to
 * 1/65536, i.e. an expert's probability to within 1/(65536 n).  p and work
 * are scratch of n (p may be w). */
static void alias_build(const double *w, int n, uint32_t *tab, double *p, int *work)
{
	double sum = 0;
	int ns = 0, nl = n; /* small from the front of work, large from the back */

	for (int i = 0; i < n; i++)
		sum += w[i];
	for (int i = 0; i < n; i++) {
		p[i] = sum > 0 ? w[i] * n / sum : 1.0;
		if (p[i] < 1)
			work[ns++] = i;
		else
			work[--nl] = i;
	}
	while (ns > 0 && nl < n) {
		int s = work[--ns], l = work[nl++];
		tab[s] = (uint32_t)(p[s] * 65536.0) << 16 | (uint32_t)l;
		p[l] = (p[l] + p[s]) - 1;
		if (p[l] < 1)
			work[ns++] = l;
		else
			work[--nl] = l;
	}
	/* what is left is full up to rounding */
	while (ns > 0) {
		int s = work[--ns];
		tab[s] = UINT32_C(0xffff0000) | (uint32_t)s;
	}
	while (nl < n) {
		int l = work[nl++];
		tab[l] = UINT32_C(0xffff0000) | (uint32_t)l;
	}
}

/* The hot path keeps xoshiro256** (the same generator and sequence as
 * util_rng_next) in registers and spends 32 random bits per draw: the high
 * half of u * n picks the bucket, the low half is a coin uniform within it
 * (resolution n / 2^32). */
struct draw_state {
	uint64_t s[4];
	uint64_t bits;
	int have;
};

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint32_t draw_bits(struct draw_state *d)
{
	uint64_t *s = d->s, t;

	if (d->have) {
		d->have = 0;
		return (uint32_t)(d->bits >> 32);
	}
	d->bits = rotl64(s[1] * 5, 7) * 9;
	t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	d->have = 1;
	return (uint32_t)d->bits;
}

static inline uint32_t alias_draw(struct draw_state *d, const uint32_t *tab, uint32_t n)
{
	uint64_t m = (uint64_t)draw_bits(d) * n;
	uint32_t i = (uint32_t)(m >> 32), b = tab[i];
	/* branch-free select: the coin is a coin flip for the branch predictor */
	uint32_t keep = (uint32_t)0 - (uint32_t)(((uint32_t)m >> 16) < (b >> 16));

	return (i & keep) | (b & 0xffff & ~keep);
}

/* Exact successive sampling when the alias draws keep hitting experts
 * already taken (a few experts hold most of the weight): one pick
 * proportional to the weights of the experts not taken yet (rem of them
 * in all).  With probability (free weight of the head) / rem it walks the
 * head; else it draws from the alias table of the rest, where repeats are
 * rare, and as a last resort scans. */
static uint32_t scan_pick(const struct collector_gen *g, struct draw_state *d, size_t c,
			  size_t tl, double rem, const uint32_t *stamp, uint32_t sv)
{
	const float *w = g->wt + c;
	const uint16_t *head = g->head + tl * GEN_HEAD;
	const int H = g->experts < GEN_HEAD ? g->experts : GEN_HEAD;
	const uint32_t E = (uint32_t)g->experts;
	double free_head = 0, acc = 0, x = rem * (draw_bits(d) * 0x1.0p-32);
	uint32_t last = E;

	for (int i = 0; i < H; i++)
		if (stamp[head[i]] != sv)
			free_head += w[head[i]];
	if (x < free_head || H == g->experts) {
		for (int i = 0; i < H; i++) {
			uint32_t e = head[i];
			if (stamp[e] == sv)
				continue;
			acc += w[e];
			last = e;
			if (acc > x)
				return e;
		}
		if (last < E)
			return last; /* rounding */
	}
	for (int tries = 0; tries < 64; tries++) {
		uint32_t e = alias_draw(d, g->tail + c, E);
		if (stamp[e] != sv && !g->inhead[c + e])
			return e;
	}
	for (uint32_t e = 0; e < E; e++)
		if (stamp[e] != sv)
			last = e;
	return last;
}

static inline uint32_t id_at(const uint8_t *ids, int idw, size_t i)
{
	uint16_t e;

	if (idw == 1)
		return ids[i];
	memcpy(&e, ids + 2 * i, 2);
	return e;
}

/* Draws n k-sets into out[n * k] (ids of g->idw bytes) and/or adds them
 * to cnt[experts], each k distinct
 * experts by successive sampling without replacement from the table at
 * cell c: alias draws, a repeat drawn again, and after a few repeats an
 * exact scan. */
static void sample_ksets(struct collector_gen *g, struct draw_state *d, size_t c, int n,
			 uint8_t *out, uint32_t *cnt, const uint8_t *prev, const uint16_t *aff)
{
	const size_t tl = c / (size_t)g->experts;
	const uint32_t *tab = g->tab + c;
	const float *wt = g->wt + c;
	const uint32_t E = (uint32_t)g->experts;
	const int k = g->topk;
	uint32_t *stamp = g->stamp, sv = g->stampv;

	for (int t = 0; t < n; t++) {
		double taken = 0;
		if (++sv == 0) {
			memset(stamp, 0, E * sizeof(*stamp));
			sv = 1;
		}
		for (int j = 0; j < k; j++) {
			uint32_t e;
			int tries = 0;
			/* the token's j-th expert in the layer before pulls its
			 * partner in this layer */
			if (prev && draw_bits(d) < GEN_AFFINITY_P32) {
				e = aff[id_at(prev, g->idw, (size_t)t * k + j)];
				if (stamp[e] != sv)
					goto take;
			}
			for (;;) {
				e = alias_draw(d, tab, E);
				if (stamp[e] != sv)
					break;
				if (++tries == 4) {
					e = scan_pick(g, d, c, tl, g->wsum[tl] - taken, stamp, sv);
					break;
				}
			}
take:
			stamp[e] = sv;
			taken += wt[e];
			if (cnt)
				cnt[e]++;
			if (out && g->idw == 1)
				out[j] = (uint8_t)e;
			else if (out)
				memcpy(out + 2 * (size_t)j, &(uint16_t){ (uint16_t)e }, 2);
		}
		if (out)
			out += (size_t)k * g->idw;
	}
	g->stampv = sv;
}

/* Routes ntok tokens through one layer: they take consecutive k-sets of
 * the slice from o on (its k-sets are independent draws, so a run of them
 * is as random as a pick, and memory is read in order: the generator is
 * bound by cache misses otherwise) and add them to cnt[experts]. */
static void route_tokens(struct collector_gen *g, uint32_t o, const uint8_t *pool, int ntok,
			 uint32_t *cnt)
{
	const int k = g->topk, E = g->experts;
	const int full = ntok / GEN_SLICE;

	/* a long prompt goes round its slice full times: add the slice's
	 * histogram full times (the same counts, far fewer increments) */
	if (full > 1) {
		uint32_t *h = g->hist;
		memset(h, 0, (size_t)E * sizeof(*h));
		route_tokens(g, 0, pool, GEN_SLICE, h);
		for (int e = 0; e < E; e++)
			cnt[e] += (uint32_t)full * h[e];
		ntok -= full * GEN_SLICE;
	}
	if (g->idw == 1) {
		for (int t = 0; t < ntok; t++) {
			const uint8_t *ks = pool + (size_t)((o + t) % GEN_SLICE) * k;
			for (int j = 0; j < k; j++)
				cnt[ks[j]]++;
		}
		return;
	}
	for (int t = 0; t < ntok; t++) {
		const uint8_t *ks = pool + (size_t)((o + t) % GEN_SLICE) * 2 * k;
		for (int j = 0; j < k; j++) {
			uint16_t e;
			memcpy(&e, ks + 2 * (size_t)j, 2);
			cnt[e]++;
		}
	}
}

/* ---- popularity ---------------------------------------------------------- */

static size_t cell(const struct collector_gen *g, int table, int layer)
{
	return ((size_t)table * g->layers + layer) * g->experts;
}

/* k-set i (0 <= i < GEN_POOL) of a table's pool for a layer: slice
 * i / GEN_SLICE, laid out so that a slice's layers are contiguous. */
static size_t pool_at(const struct collector_gen *g, int table, int layer, int i)
{
	size_t unit = (size_t)table * GEN_SLICES + (size_t)(i / GEN_SLICE);

	return ((unit * g->layers + layer) * GEN_SLICE + i % GEN_SLICE) * g->topk * g->idw;
}

/* Keeps a table's weights (from g->w) and its GEN_HEAD heaviest experts,
 * heaviest first, for scan_pick. */
static void table_head(struct collector_gen *g, int t, int l)
{
	const int E = g->experts, H = E < GEN_HEAD ? E : GEN_HEAD;
	size_t c = cell(g, t, l), tl = (size_t)t * g->layers + l;
	float *wt = g->wt + c;
	uint16_t *head = g->head + tl * GEN_HEAD;
	double sum = 0;
	int n = 0;

	for (int e = 0; e < E; e++) {
		int i;
		wt[e] = (float)g->w[e];
		sum += wt[e];
		g->inhead[c + e] = 0;
		if (n == H && wt[e] <= wt[head[n - 1]])
			continue;
		if (n < H)
			n++;
		for (i = n - 1; i > 0 && wt[head[i - 1]] < wt[e]; i--)
			head[i] = head[i - 1];
		head[i] = (uint16_t)e;
	}
	for (int i = 0; i < n; i++)
		g->inhead[c + head[i]] = 1;
	g->wsum[tl] = sum;
}

/* Rebuilds every table from the domains' current log-popularity. */
static void tables_refresh(struct collector_gen *g)
{
	const int E = g->experts;

	for (int d = 0; d < g->domains; d++) {
		for (int l = 0; l < g->layers; l++) {
			const double *z = g->z + cell(g, d, l);
			double zmax = z[0];
			for (int e = 1; e < E; e++)
				if (z[e] > zmax)
					zmax = z[e];
			for (int e = 0; e < E; e++)
				g->p[e] = det_exp(z[e] - zmax);
			for (int s = 0; s < g->subtopics; s++) {
				int t = d * g->subtopics + s;
				const float *m = g->sub + cell(g, t, l);
				for (int e = 0; e < E; e++)
					g->w[e] = g->p[e] * m[e];
				table_head(g, t, l);
				/* w doubles as alias_build's scratch */
				alias_build(g->w, E, g->tab + cell(g, t, l), g->w, g->work);
				for (int e = 0; e < E; e++)
					g->w[e] = g->inhead[cell(g, t, l) + e]
							  ? 0
							  : g->wt[cell(g, t, l) + e];
				alias_build(g->w, E, g->tail + cell(g, t, l), g->w, g->work);
			}
		}
	}
}

/* One Ornstein-Uhlenbeck step of every domain's log-popularity over
 * GEN_REFRESH steps: mean-reverting, with a stationary spread of
 * GEN_DRIFT_ETA x the layer's sigma around the domain's long-run mean. */
static void drift_step(struct collector_gen *g)
{
	double a = 1 - GEN_REFRESH * g->drift / GEN_DRIFT_TAU, b;
	size_t i = 0;

	if (a < 0)
		a = 0;
	b = sqrt(1 - a * a) * GEN_DRIFT_ETA;
	for (int d = 0; d < g->domains; d++)
		for (int l = 0; l < g->layers; l++)
			for (int e = 0; e < g->experts; e++, i++)
				g->z[i] = g->mean[i] + a * (g->z[i] - g->mean[i]) +
					  b * g->sigma[l] * det_normal(&g->rng);
}

/* ---- requests and steps -------------------------------------------------- */

/* A new request: often the next turn of the previous one's conversation
 * (same domain, sub-topic and slice), else a domain drawn from the mix, a
 * sub-topic of it and a slice of that sub-topic's pool: its own routing. */
static int new_unit(struct collector_gen *g)
{
	double u = uniform(&g->rng), acc = 0;
	int d = 0, t;

	if (g->last_unit >= 0 && uniform(&g->rng) < GEN_CONVERSATION)
		return g->last_unit;
	for (; d < g->domains - 1; d++) {
		acc += g->mix[d];
		if (u < acc)
			break;
	}
	t = d * g->subtopics + (int)util_rng_below(&g->rng, (uint32_t)g->subtopics);
	g->last_unit = t * GEN_SLICES + (int)util_rng_below(&g->rng, GEN_SLICES);
	return g->last_unit;
}

static int out_len(struct collector_gen *g)
{
	double v = -GEN_OUT_MEAN * det_log(1 - uniform(&g->rng));

	return 1 + (v > (1 << 24) ? (1 << 24) : (int)v);
}

static int prompt_len(struct collector_gen *g)
{
	const double lo = det_log(GEN_PROMPT_MIN), hi = det_log(GEN_PROMPT_MAX);

	return (int)det_exp(lo + (hi - lo) * uniform(&g->rng));
}

static void set_target(struct collector_gen *g)
{
	for (int d = 0; d < g->domains; d++)
		g->target[d] = g->domains == 1 ? 1.0
			     : d == g->dominant ? GEN_DOMINANT
						: (1 - GEN_DOMINANT) / (g->domains - 1);
}

/* The domain mix: the dominant domain changes now and then, and the mix
 * follows it gradually. */
static void mix_step(struct collector_gen *g)
{
	if (g->domains > 1 && g->drift > 0 &&
	    uniform(&g->rng) < g->drift / GEN_SWITCH_MEAN) {
		int d = (int)util_rng_below(&g->rng, (uint32_t)(g->domains - 1));
		g->dominant = d >= g->dominant ? d + 1 : d;
		set_target(g);
	}
	for (int d = 0; d < g->domains; d++)
		g->mix[d] += (g->target[d] - g->mix[d]) * GEN_MIX_RELAX;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Fresh routing (cfg->fresh_routing): every token of a request draws its
 * k experts anew from its sub-topic's table in every layer; exact per
 * token, about ten times slower, and without the per-request slices. */
static void route_fresh(struct collector_gen *g, struct util_rng *r, int table, int ntok,
			uint32_t *counts)
{
	const size_t kb = (size_t)g->topk * g->idw;
	struct draw_state d;

	memcpy(d.s, r->s, sizeof(d.s));
	d.have = 0;
	d.bits = 0;
	/* token by token, so that each token's layers follow one another */
	for (int t = 0; t < ntok; t++)
		for (int l = 0; l < g->layers; l++)
			sample_ksets(g, &d, cell(g, table, l), 1, g->kbuf + (l & 1) * kb,
				     counts + (size_t)l * g->experts,
				     l ? g->kbuf + ((l - 1) & 1) * kb : NULL,
				     g->aff + (size_t)l * g->experts);
}

/* Rolling renewal of the pools from the (drifting) tables, in bursts so
 * that a table is read while it is in cache: every GEN_POOL_EVERY steps a
 * pool redraws GEN_POOL_BURST k-sets, so it is new every
 * GEN_POOL / GEN_POOL_BURST x GEN_POOL_EVERY steps. */
static void pools_renew(struct collector_gen *g)
{
	const int at = (int)((g->n / GEN_POOL_EVERY * GEN_POOL_BURST) % GEN_POOL);
	struct draw_state d;
	struct util_rng r;

	util_rng_seed(&r, mix64(g->seed ^ mix64((uint64_t)g->n ^ UINT64_C(0x72656e6577))));
	memcpy(d.s, r.s, sizeof(d.s));
	d.have = 0;
	d.bits = 0;
	for (int t = 0; t < g->ntables; t++)
		for (int l = 0; l < g->layers; l++)
			if (((size_t)t * g->layers + l) % GEN_POOL_EVERY ==
			    (size_t)(g->n % GEN_POOL_EVERY))
				sample_ksets(g, &d, cell(g, t, l), GEN_POOL_BURST,
					     g->pool + pool_at(g, t, l, at), NULL,
					     l ? g->pool + pool_at(g, t, l - 1, at) : NULL,
					     g->aff + (size_t)l * g->experts);
}

int collector_gen_next(struct collector_gen *g, struct store_step *step)
{
	const int E = g->experts;
	int prefill;
	int64_t tokens = 0;

	if (!step || !step->counts)
		return UTIL_EUSAGE;
	if (g->n > 0 && g->n % GEN_REFRESH == 0 && g->drift > 0) {
		drift_step(g);
		tables_refresh(g);
	}
	mix_step(g);
	if (g->prefill_fraction >= 1)
		prefill = 1;
	else if (g->prefill_fraction <= 0)
		prefill = 0;
	else
		prefill = uniform(&g->rng) < g->prefill_fraction;
	memset(g->ntok, 0, (size_t)g->ntables * GEN_SLICES * sizeof(*g->ntok));
	if (prefill) {
		int budget = g->prefill_tokens, slot = 0;
		/* a chunked-prefill scheduler mostly fills its token budget */
		if (uniform(&g->rng) < 0.3) {
			budget = (int)(budget * (0.25 + 0.75 * uniform(&g->rng)));
			if (budget < 1)
				budget = 1;
		}
		while (budget > 0) {
			int len, t, fresh = g->carry_len == 0;
			/* chunked prefill: a prompt longer than the budget goes
			 * on in the next prefill step */
			if (fresh) {
				g->carry_len = prompt_len(g);
				g->carry_unit = new_unit(g);
			}
			t = g->carry_unit;
			len = g->carry_len < budget ? g->carry_len : budget;
			g->carry_len -= len;
			g->ntok[t] += len;
			budget -= len;
			tokens += len;
			if (!fresh)
				continue;
			/* the new request joins the decode batch if there is room */
			while (slot < g->decode_batch && g->run[slot].unit >= 0)
				slot++;
			if (slot < g->decode_batch) {
				g->run[slot].unit = t;
				g->run[slot].remaining = out_len(g);
			}
		}
	} else {
		int active = 0;
		for (int i = 0; i < g->decode_batch; i++)
			active += g->run[i].unit >= 0;
		for (int i = 0; i < g->decode_batch; i++) {
			struct gen_req *q = &g->run[i];
			/* an empty batch or decode-only traffic: arrivals join now */
			if (q->unit < 0 && (active == 0 || g->prefill_fraction < 0)) {
				q->unit = new_unit(g);
				q->remaining = out_len(g);
			}
			if (q->unit < 0)
				continue;
			g->ntok[q->unit]++;
			tokens++;
			if (--q->remaining <= 0)
				q->unit = -1;
		}
	}
	if (g->topk >= E) {
		for (size_t i = 0; i < (size_t)g->layers * E; i++)
			step->counts[i] = (uint32_t)tokens;
	} else {
		memset(step->counts, 0, (size_t)g->layers * E * sizeof(*step->counts));
		if (!g->fresh)
			pools_renew(g);
		for (int u = 0; u < g->ntables * GEN_SLICES; u++) {
			struct util_rng r;
			uint32_t o;
			if (!g->ntok[u])
				continue;
			/* one stream per (step, unit): a unit's tokens start at a
			 * random k-set of its slice in every layer */
			util_rng_seed(&r, mix64(g->seed ^
						mix64((uint64_t)g->n * 0x100000 + (uint64_t)u)));
			if (g->fresh) {
				route_fresh(g, &r, u / GEN_SLICES, g->ntok[u], step->counts);
				continue;
			}
			o = (uint32_t)((util_rng_next(&r) >> 32) * GEN_SLICE >> 32);
			for (int l = 0; l < g->layers; l++)
				route_tokens(g, o, g->pool + pool_at(g, u / GEN_SLICES, l,
								      u % GEN_SLICES * GEN_SLICE),
					     g->ntok[u], step->counts + (size_t)l * E);
		}
	}
	step->phase = prefill ? STORE_PHASE_PREFILL : STORE_PHASE_DECODE;
	step->tokens = tokens;
	g->n++;
	return 0;
}

/* ---- construction -------------------------------------------------------- */

/* Per-layer shape of the popularity (docs/generator.md): the log-normal
 * sigma of GEN_FLAT_P of the layers is small (well balanced layers), of
 * the others uniform in [GEN_SIGMA_LO, GEN_SIGMA_HI]; GEN_HOT_P of the
 * layers get 1-3 experts boosted GEN_HOT_LO..HI times. */
#define GEN_FLAT_P 0.15
#define GEN_FLAT_LO 0.2
#define GEN_FLAT_HI 0.5
#define GEN_SIGMA_LO 1.1
#define GEN_SIGMA_HI 4.0
#define GEN_HOT_P 0.3
#define GEN_HOT_LO 3.0
#define GEN_HOT_HI 30.0
#define GEN_SHARED_LO 0.05    /* share of a layer's log-popularity variance */
#define GEN_SHARED_HI 0.6     /* common to all domains, uniform in [lo, hi] */
#define GEN_DOMAIN_SPREAD 1.3 /* domain-specific part, x its share of sigma */
#define GEN_SUB_SIGMA 1.3     /* request sub-topic reshaping, log-normal sigma */

static void popularity_init(struct collector_gen *g)
{
	const int E = g->experts;
	struct util_rng r;
	double *base = g->w;

	util_rng_seed(&r, mix64(g->seed ^ UINT64_C(0x706f70756c6172)));
	for (int l = 0; l < g->layers; l++) {
		double u = uniform(&r), sigma;
		if (uniform(&r) < GEN_FLAT_P) /* a well balanced layer */
			sigma = g->skew * (GEN_FLAT_LO + (GEN_FLAT_HI - GEN_FLAT_LO) * u);
		else
			sigma = g->skew * (GEN_SIGMA_LO + (GEN_SIGMA_HI - GEN_SIGMA_LO) * u);
		/* how much of the spread all domains share: layers whose hot
		 * experts stay put, and layers whose hot experts follow the
		 * traffic */
		double shared = GEN_SHARED_LO + (GEN_SHARED_HI - GEN_SHARED_LO) * uniform(&r);
		double sb = sigma * sqrt(shared), sd = sigma * sqrt(1 - shared) * GEN_DOMAIN_SPREAD;
		g->sigma[l] = sigma;
		for (int e = 0; e < E; e++)
			base[e] = sb * det_normal(&r);
		if (uniform(&r) < GEN_HOT_P) {
			int hot = 1 + (int)util_rng_below(&r, 3);
			for (int h = 0; h < hot; h++) {
				double boost = GEN_HOT_LO + (GEN_HOT_HI - GEN_HOT_LO) * uniform(&r);
				base[util_rng_below(&r, (uint32_t)E)] += g->skew * det_log(boost);
			}
		}
		for (int d = 0; d < g->domains; d++) {
			double *m = g->mean + cell(g, d, l), *z = g->z + cell(g, d, l);
			for (int e = 0; e < E; e++) {
				m[e] = base[e] + sd * det_normal(&r);
				z[e] = m[e] + (g->drift > 0 ? GEN_DRIFT_ETA * sigma * det_normal(&r)
							    : 0);
			}
		}
	}
	/* expert affinity between consecutive layers: a random partner */
	{
		struct util_rng ra;
		util_rng_seed(&ra, mix64(g->seed ^ UINT64_C(0x616666696e697479)));
		for (size_t i = (size_t)E; i < (size_t)g->layers * E; i++)
			g->aff[i] = (uint16_t)util_rng_below(&ra, (uint32_t)E);
	}
	/* requests reshape a balanced layer less than a steep one */
	for (int t = 0; t < g->ntables; t++) {
		for (int l = 0; l < g->layers; l++) {
			double s = g->sigma[l] < g->skew * GEN_SIGMA_LO ? g->sigma[l] / GEN_SIGMA_LO
								       : g->skew;
			float *m = g->sub + cell(g, t, l);
			for (int e = 0; e < E; e++)
				m[e] = (float)det_exp(s * GEN_SUB_SIGMA * det_normal(&r));
		}
	}
}

int collector_gen_new(const struct collector_gen_cfg *cfg, struct collector_gen **out,
		      struct util_err *err)
{
	const struct store_model *m = cfg ? cfg->model : NULL;
	struct collector_gen *g;
	size_t cells, tcells;

	*out = NULL;
	if (!m)
		return util_err_set(err, UTIL_EUSAGE, "the generator needs a model shape");
	if (m->layers < 1 || m->layers > STORE_MAX_LAYERS || m->experts < 1 ||
	    m->experts > STORE_MAX_EXPERTS || m->topk < 1 || m->topk > m->experts)
		return util_err_set(err, UTIL_ERANGE,
				    "model '%s': shape %d layers x %d experts, top-%d is out of "
				    "range",
				    m->name ? m->name : "", m->layers, m->experts, m->topk);
	if (!(cfg->prefill_fraction <= 1))
		return util_err_set(err, UTIL_ERANGE, "prefill fraction %g is not in [0, 1]",
				    cfg->prefill_fraction);
	if (cfg->decode_batch < 0 || cfg->decode_batch > (1 << 20))
		return util_err_set(err, UTIL_ERANGE, "decode batch %d is not in [1, %d]",
				    cfg->decode_batch, 1 << 20);
	if (cfg->prefill_tokens < 0 || cfg->prefill_tokens > (1 << 24))
		return util_err_set(err, UTIL_ERANGE, "prefill tokens %d is not in [1, %d]",
				    cfg->prefill_tokens, 1 << 24);
	if (cfg->domains < 0 || cfg->domains > 64)
		return util_err_set(err, UTIL_ERANGE, "domains %d is not in [1, 64]", cfg->domains);
	if (!(cfg->skew >= 0 && cfg->skew <= 10))
		return util_err_set(err, UTIL_ERANGE, "skew %g is not in (0, 10]", cfg->skew);
	if (!(cfg->drift <= 100))
		return util_err_set(err, UTIL_ERANGE, "drift %g is above 100", cfg->drift);

	if (!(g = calloc(1, sizeof(*g))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	g->layers = m->layers;
	g->experts = m->experts;
	g->topk = m->topk;
	g->seed = cfg->seed;
	g->prefill_fraction = cfg->prefill_fraction == 0 ? GEN_DEF_PREFILL_FRACTION
				: cfg->prefill_fraction < 0 ? -1
							    : cfg->prefill_fraction;
	g->decode_batch = cfg->decode_batch ? cfg->decode_batch : GEN_DEF_DECODE_BATCH;
	g->prefill_tokens = cfg->prefill_tokens ? cfg->prefill_tokens : GEN_DEF_PREFILL_TOKENS;
	g->domains = cfg->domains ? cfg->domains : GEN_DEF_DOMAINS;
	g->skew = cfg->skew > 0 ? cfg->skew : 1.0;
	g->fresh = cfg->fresh_routing != 0;
	g->drift = cfg->drift == 0 ? 1.0 : cfg->drift < 0 ? 0 : cfg->drift;
	cells = (size_t)g->layers * g->experts;
	g->subtopics = GEN_SUBTOPICS;
	while (g->subtopics > 1 && (size_t)g->domains * g->subtopics * g->layers *
					   ((size_t)g->experts + (size_t)GEN_POOL * g->topk) >
				   GEN_MAX_CELLS)
		g->subtopics /= 2;
	g->ntables = g->domains * g->subtopics;
	tcells = (size_t)g->ntables * cells;
	util_rng_seed(&g->rng, g->seed);

	g->sigma = calloc((size_t)g->layers, sizeof(*g->sigma));
	g->mean = calloc((size_t)g->domains * cells, sizeof(*g->mean));
	g->z = calloc((size_t)g->domains * cells, sizeof(*g->z));
	g->sub = calloc(tcells, sizeof(*g->sub));
	g->tab = calloc(tcells, sizeof(*g->tab));
	g->wt = calloc(tcells, sizeof(*g->wt));
	g->wsum = calloc((size_t)g->ntables * g->layers, sizeof(*g->wsum));
	g->head = calloc((size_t)g->ntables * g->layers * GEN_HEAD, sizeof(*g->head));
	g->inhead = calloc(tcells, sizeof(*g->inhead));
	g->tail = calloc(tcells, sizeof(*g->tail));
	g->mix = calloc((size_t)g->domains, sizeof(*g->mix));
	g->target = calloc((size_t)g->domains, sizeof(*g->target));
	g->run = calloc((size_t)g->decode_batch, sizeof(*g->run));
	g->ntok = calloc((size_t)g->ntables * GEN_SLICES, sizeof(*g->ntok));
	g->idw = g->experts <= 256 ? 1 : 2;
	g->pool = calloc((size_t)g->ntables * g->layers * GEN_POOL * g->topk, (size_t)g->idw);
	g->stamp = calloc((size_t)g->experts, sizeof(*g->stamp));
	g->hist = calloc((size_t)g->experts, sizeof(*g->hist));
	g->aff = calloc((size_t)g->layers * g->experts, sizeof(*g->aff));
	g->kbuf = calloc(2 * (size_t)g->topk, (size_t)g->idw);
	g->w = calloc((size_t)g->experts, sizeof(*g->w));
	g->p = calloc((size_t)g->experts, sizeof(*g->p));
	g->work = calloc((size_t)g->experts, sizeof(*g->work));
	if (!g->sigma || !g->mean || !g->z || !g->sub || !g->tab || !g->wt || !g->wsum ||
	    !g->head || !g->inhead || !g->tail || !g->mix || !g->target || !g->run || !g->ntok ||
	    !g->pool || !g->stamp || !g->hist || !g->aff || !g->kbuf || !g->w || !g->p || !g->work) {
		collector_gen_free(g);
		return util_err_set(err, UTIL_ENOMEM,
				    "out of memory for the generator's tables (%zu cells)", tcells);
	}
	popularity_init(g);
	g->dominant = (int)util_rng_below(&g->rng, (uint32_t)g->domains);
	g->last_unit = -1;
	set_target(g);
	memcpy(g->mix, g->target, (size_t)g->domains * sizeof(*g->mix));
	/* start in steady state: a full batch of requests at random ages */
	for (int i = 0; i < g->decode_batch; i++) {
		g->run[i].unit = g->prefill_fraction >= 1 ? -1 : new_unit(g);
		g->run[i].remaining =
			1 + (int)util_rng_below(&g->rng, (uint32_t)(2 * GEN_OUT_MEAN));
	}
	tables_refresh(g);
	if (g->topk < g->experts && !g->fresh) {
		struct draw_state d;
		struct util_rng r;
		util_rng_seed(&r, mix64(g->seed ^ UINT64_C(0x706f6f6c)));
		memcpy(d.s, r.s, sizeof(d.s));
		d.have = 0;
		d.bits = 0;
		for (int t = 0; t < g->ntables; t++)
			for (int l = 0; l < g->layers; l++)
				for (int i = 0; i < GEN_POOL; i += GEN_SLICE)
					sample_ksets(g, &d, cell(g, t, l), GEN_SLICE,
						     g->pool + pool_at(g, t, l, i), NULL,
						     l ? g->pool + pool_at(g, t, l - 1, i) : NULL,
						     g->aff + (size_t)l * g->experts);
	}
	*out = g;
	return 0;
}

void collector_gen_free(struct collector_gen *g)
{
	if (!g)
		return;
	free(g->sigma);
	free(g->mean);
	free(g->z);
	free(g->sub);
	free(g->tab);
	free(g->wt);
	free(g->wsum);
	free(g->head);
	free(g->inhead);
	free(g->tail);
	free(g->mix);
	free(g->target);
	free(g->run);
	free(g->ntok);
	free(g->pool);
	free(g->stamp);
	free(g->hist);
	free(g->aff);
	free(g->kbuf);
	free(g->w);
	free(g->p);
	free(g->work);
	free(g);
}

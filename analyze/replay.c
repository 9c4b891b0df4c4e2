/*
 * replay.c: what dynamic load balancing would have done on a recorded
 * trace.  Start at analyze_replay_run(): its state is one struct replay,
 * filled by one function per phase (check the configuration and count the
 * selected steps, plan the checkpoints, walk the steps once scoring each
 * and deciding every interval, finish the summary) and freed by one,
 * replay_release().  Window heat comes from
 * prefix sums checkpointed at the few step ordinals a decision needs
 * (window start, episode boundaries, decision point, and for the
 * flagship's forecast its blocks and a grid over the history before the
 * window shared by all decisions), so memory does not grow with the
 * window.  Per-step imbalance percentiles come from
 * log-spaced histograms (0.05% resolution), so memory does not grow with
 * the trace either.  Decisions place every layer (or those over the
 * threshold) on up to two threads.  The steps come from the feed: one
 * reading and decoding of the trace, on a reader thread that also writes a
 * stored replay's rows, which scores one replay or a whole grid
 * (analyze_replay_grid) whose combinations share it.
 */
#include "analyze/analyze.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- imbalance histograms ------------------------------------------------ */

#define QH_BINS 16384
#define QH_RATIO 1.0005 /* bin i holds [RATIO^i, RATIO^(i+1)) */
/* Bins come in pages of QH_PAGE, allocated when a value first falls in
 * one: a layer's imbalance keeps to a few pages, so a histogram takes a
 * few KB rather than 64 KB a layer, and its counts stay in cache. */
#define QH_PAGE 256
#define QH_PAGES (QH_BINS / QH_PAGE)
/* Steps whose imbalance is kept before it goes into the histograms
 * (replay_qflush). */
#define QB_STEPS 64

struct qhist {
	uint32_t **page; /* [n * QH_PAGES], NULL until used */
	double *sum;     /* [n] */
	int64_t *count;  /* [n] values added: the steps scored */
	int n;
	int oom;         /* a page could not be allocated */
};

static int qh_init(struct qhist *h, int n)
{
	h->page = calloc((size_t)n * QH_PAGES, sizeof(*h->page));
	h->sum = calloc((size_t)n, sizeof(double));
	h->count = calloc((size_t)n, sizeof(int64_t));
	h->n = n;
	h->oom = 0;
	return h->page && h->sum && h->count ? 0 : UTIL_ENOMEM;
}

static void qh_free(struct qhist *h)
{
	for (size_t i = 0; h->page && i < (size_t)h->n * QH_PAGES; i++)
		free(h->page[i]);
	free(h->page);
	free(h->sum);
	free(h->count);
}

/* x NAN: not scored (a layer or step without tokens), left out. */
static void qh_add(struct qhist *h, int i, double x)
{
	if (isnan(x))
		return;
	int b = x <= 1.0 ? 0 : (int)(log(x) / log(QH_RATIO));

	if (b >= QH_BINS)
		b = QH_BINS - 1;
	uint32_t **pg = &h->page[(size_t)i * QH_PAGES + (size_t)(b / QH_PAGE)];
	if (!*pg && !(*pg = calloc(QH_PAGE, sizeof(uint32_t)))) {
		h->oom = 1;
		return;
	}
	(*pg)[b % QH_PAGE]++;
	h->sum[i] += x;
	h->count[i]++;
}

/* The mean of index i's values (NAN when none was scored: a layer that
 * got no token in any step has no imbalance, not a perfect 1.0). */
static double qh_mean(const struct qhist *h, int i)
{
	return h->count[i] ? h->sum[i] / (double)h->count[i] : NAN;
}

/* Index i's value of rank k (0 = the smallest): its bin's midpoint, 1.0
 * for the first bin (a perfect balance falls there). */
static double qh_rank(const struct qhist *h, int i, int64_t k)
{
	uint32_t *const *pg = h->page + (size_t)i * QH_PAGES;
	int64_t acc = 0;

	for (int b = 0; b < QH_BINS; b++) {
		if (!pg[b / QH_PAGE]) {
			b += QH_PAGE - 1;
			continue;
		}
		acc += pg[b / QH_PAGE][b % QH_PAGE];
		if (acc > k)
			return b == 0 ? 1.0 : pow(QH_RATIO, b + 0.5);
	}
	return pow(QH_RATIO, QH_BINS);
}

/* The pct-th percentile of index i's values, interpolated between the two
 * nearest ranks as util_percentile() does for balance and compare, so the
 * same steps give the same figure to the bins' 0.05% (NAN when none was
 * scored). */
static double qh_pct(const struct qhist *h, int i, double pct)
{
	int64_t n = h->count[i], lo;
	double pos, v;

	if (n == 0)
		return NAN;
	pos = pct / 100.0 * (double)(n - 1);
	lo = (int64_t)pos;
	v = qh_rank(h, i, lo);
	if (lo >= n - 1 || pos == (double)lo)
		return v;
	return v + (pos - (double)lo) * (qh_rank(h, i, lo + 1) - v);
}

/* ---- parallel placement of the layers of one decision -------------------- */

struct decide {
	const struct analyze_replay_cfg *cfg;
	int layers, experts, P;
	const double *heat, *episodes; /* [L*E], [Ne * L*E] */
	const double *blocks;          /* [nb * L*E]: the flagship's blocks, last hist of
					* them history (forecast), or NULL */
	int nb, hist;
	struct analyze_robust_choice choice; /* the forecast's estimator */
	const int32_t *cur;            /* [L*P] in force */
	int32_t *next;                 /* [L*P] OUT */
	const uint8_t *want;           /* [L] layers to re-place */
	double *ep_buf;                /* per thread [Ne * E] */
	int rc;
	struct util_err err;
	double seconds;
};

struct decide_job {
	struct decide *d;
	atomic_int *next; /* the next layer to decide, shared by the threads */
	double *ep;
	int rc, layer;    /* the first error, and its layer */
	struct util_err err;
};

static void *decide_worker(void *arg)
{
	struct decide_job *j = arg;
	struct decide *d = j->d;
	const struct analyze_replay_cfg *c = d->cfg;
	int E = d->experts, P = d->P, Ne = !d->blocks && c->episodes > 0 ? c->episodes : 0;

	/* layers as the threads come free (analyze_plan_run does the same) */
	for (int l; (l = atomic_fetch_add(j->next, 1)) < d->layers;) {
		const int32_t *cur = d->cur + (size_t)l * P;
		int32_t *next = d->next + (size_t)l * P;
		if (!d->want[l]) {
			memcpy(next, cur, (size_t)P * sizeof(int32_t));
			continue;
		}
		if (Ne)
			for (int k = 0; k < Ne; k++)
				memcpy(j->ep + (size_t)k * E,
				       d->episodes + ((size_t)k * d->layers + (size_t)l) * E,
				       (size_t)E * sizeof(double));
		struct analyze_place_in in = {
			.experts = E,
			.ranks = c->ranks,
			.slots = c->slots,
			.nodes = c->nodes,
			.groups = c->groups,
			.heat = d->heat + (size_t)l * E,
			.episodes = Ne ? j->ep : NULL,
			.n_episodes = Ne,
			.current = cur,
			.max_moves = c->max_moves,
			.move_tolerance = c->move_tolerance,
			.seed = c->seed,
		};
		if (d->blocks) { /* the layer's, where they are */
			in.blocks = d->blocks + (size_t)l * E;
			in.blocks_stride = (size_t)d->layers * E;
			in.n_blocks = d->nb;
			in.n_hist = d->hist;
			in.robust = &d->choice;
		}
		if ((j->rc = analyze_place(c->algo, &in, next, &j->err))) {
			util_err_prefix(&j->err, "layer %d: ", l);
			j->layer = l;
			return NULL;
		}
	}
	return NULL;
}

static int decide_run(struct decide *d, int threads)
{
	struct decide_job jobs[2];
	atomic_int next;
	pthread_t tid;
	int started = 0;
	double t0 = util_now();
	int Ne = !d->blocks && d->cfg->episodes > 0 ? d->cfg->episodes : 0, E = d->experts;

	if (threads < 1)
		threads = 1;
	if (threads > 2)
		threads = 2;
	/* the forecast's estimator, chosen on every layer together */
	if (d->blocks && analyze_robust_choose(d->blocks, d->nb, d->hist, d->layers, E, d->P,
					       threads, &d->choice))
		return d->rc = util_err_set(&d->err, UTIL_ENOMEM, "out of memory");
	atomic_init(&next, 0);
	for (int i = 0; i < threads; i++) {
		jobs[i] = (struct decide_job){ .d = d, .next = &next, .layer = -1,
					       .ep = d->ep_buf + (size_t)i * (size_t)(Ne ? Ne : 1) * E };
		jobs[i].err.msg[0] = 0;
	}
	if (threads == 2 && pthread_create(&tid, NULL, decide_worker, &jobs[1]) == 0)
		started = 1;
	decide_worker(&jobs[0]); /* (with no thread started, every layer) */
	if (started)
		pthread_join(tid, NULL);
	d->seconds = util_now() - t0;
	/* the lowest layer that failed, whichever thread met it */
	struct decide_job *bad = NULL;
	for (int i = 0; i < (started ? 2 : 1); i++)
		if (jobs[i].rc && (!bad || jobs[i].layer < bad->layer))
			bad = &jobs[i];
	if (bad) {
		d->rc = bad->rc;
		d->err = bad->err;
		return d->rc;
	}
	return 0;
}

/* ---- the walk -------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Window start of the decision after t seen steps. */
static int64_t win_start(int64_t t, int64_t W)
{
	return t > W ? t - W : 0;
}

static int64_t ep_bound(int64_t t, int64_t W, int k, int Ne)
{
	int64_t a = win_start(t, W), len = t - a;
	return a + (len * k) / Ne;
}

/* The flagship's blocks for the decision after t seen steps, as
 * analyze_window_blocks cuts a window and its history (the replay's
 * ordinals standing for step ids): the window [ws, t) in m blocks, block b
 * starting at ws + ceil(b * nw / m), after hist blocks of history.  The
 * history is cut on one grid of gb steps (the block size of a full
 * window) for every decision, so that decisions share its checkpoints:
 * from hs, the grid point at or before where analyze_window_blocks would
 * start it (at most ANALYZE_FLAGSHIP_HISTORY window lengths before ws),
 * in blocks of gb, the last one ending at ws.  When ws is on the grid (gb
 * divides W and the interval, say), these are analyze_window_blocks's own
 * blocks; else the newest history block is shorter. */
struct fc_geom {
	int64_t ws, nw, hs, gb;
	int m, hist;
};

static int64_t fc_grid(int64_t W)
{
	int m = W < 1 ? 1 : W < ANALYZE_FLAGSHIP_BLOCKS ? (int)W : ANALYZE_FLAGSHIP_BLOCKS;

	return (W + m / 2) / m > 1 ? (W + m / 2) / m : 1;
}

static void fc_geometry(int64_t t, int64_t W, struct fc_geom *g)
{
	int64_t nh, bsz, hb;

	g->ws = win_start(t, W);
	g->nw = t - g->ws;
	g->gb = fc_grid(W);
	/* nw >= 1: a decision follows at least one step */
	g->m = g->nw < 1 ? 1 : g->nw < ANALYZE_FLAGSHIP_BLOCKS ? (int)g->nw : ANALYZE_FLAGSHIP_BLOCKS;
	bsz = (g->nw + g->m / 2) / g->m > 1 ? (g->nw + g->m / 2) / g->m : 1;
	nh = g->ws < g->nw * ANALYZE_FLAGSHIP_HISTORY ? g->ws : g->nw * ANALYZE_FLAGSHIP_HISTORY;
	hb = nh / bsz < (int64_t)ANALYZE_FLAGSHIP_HISTORY * g->m
		     ? nh / bsz
		     : (int64_t)ANALYZE_FLAGSHIP_HISTORY * g->m;
	g->hs = hb ? (g->ws - hb * bsz) / g->gb * g->gb : g->ws;
	g->hist = (int)((g->ws - g->hs + g->gb - 1) / g->gb);
}

/* Ordinal where block k (0 = the oldest history block) of a decision
 * starts; k = hist + m is the decision point. */
static int64_t fc_bound(const struct fc_geom *g, int k)
{
	if (k < g->hist)
		return g->hs + k * g->gb;
	return g->ws + ((int64_t)(k - g->hist) * g->nw + g->m - 1) / g->m;
}

/* No decision after t seen steps reads an ordinal before this: a window
 * starts at t - W at the earliest, its history at most
 * ANALYZE_FLAGSHIP_HISTORY window lengths and a grid step before that. */
static int64_t first_read(int64_t t, int64_t W, int fc)
{
	int64_t ws = win_start(t, W), back = (t - ws) * ANALYZE_FLAGSHIP_HISTORY + fc_grid(W);

	if (!fc)
		return ws;
	return ws > back ? ws - back : 0;
}

struct ckpt {
	int64_t ord;
	uint64_t *sum; /* [L*E], NULL until reached or after release */
};

static struct ckpt *ckpt_find(struct ckpt *c, size_t n, int64_t ord)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c[mid].ord < ord)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && c[lo].ord == ord ? &c[lo] : NULL;
}

/* Max device load of one layer's counts under a placement given as slot
 * weights w[p] = 1 / replicas of the expert in slot p; *tot gets the tokens
 * (the loads add up to them, since every expert has a slot). */
static double layer_max_w(const uint32_t *h, const int32_t *p2l, const double *w, int R, int S,
			  double *tot)
{
	double mx = 0, t = 0;

	for (int r = 0; r < R; r++) {
		const int32_t *e = p2l + (size_t)r * S;
		const double *ww = w + (size_t)r * S;
		double sum = 0;
		for (int k = 0; k < S; k++)
			sum += (double)h[e[k]] * ww[k];
		t += sum;
		if (sum > mx)
			mx = sum;
	}
	*tot = t;
	return mx;
}

/* As layer_max_w, and *tmax gets the MoE seconds of the layer under the
 * step-time model (analyze_layer_seconds, fused into the same pass). */
static double layer_max_t(const uint32_t *h, const int32_t *p2l, const double *w, int R, int S,
			  double spt, double spe, double *tot, double *tmax)
{
	double mx = 0, t = 0, tm = 0;

	for (int r = 0; r < R; r++) {
		const int32_t *e = p2l + (size_t)r * S;
		const double *ww = w + (size_t)r * S;
		double sum = 0;
		int active = 0;
		for (int k = 0; k < S; k++) {
			uint32_t x = h[e[k]];
			sum += (double)x * ww[k];
			active += x != 0;
		}
		t += sum;
		if (sum > mx)
			mx = sum;
		double c = sum * spt, m = active * spe;
		if (m > c)
			c = m;
		if (c > tm)
			tm = c;
	}
	*tot = t;
	*tmax = tm;
	return mx;
}

static void slot_weights(const int32_t *p2l, int P, const int *cnt, double *w)
{
	for (int p = 0; p < P; p++)
		w[p] = 1.0 / cnt[p2l[p]];
}

/* ---- the feed ------------------------------------------------------------
 * One reading of the trace feeds one or more replays: steps are read and
 * decoded once (store_iter_next) into a ring of FEED_SLOTS steps, and each
 * replay scores them in order.  With threads a reader thread does the
 * connection's work (reading, and for a stored replay writing its
 * per-step rows, which the scoring leaves in the step's slot) while
 * workers score; a worker takes any replay that has steps to score, so
 * replays of a grid share two cores whatever their cost.  Without threads
 * the one worker reads and writes when it runs out of steps.  A slot is
 * free once every live replay has scored it and its rows are written. */
#define FEED_SLOTS 32

struct replay;
static int replay_step(struct replay *r, const struct store_step *st, double *rows,
		       const double *base);
static int replay_base_same(const struct replay *a, const struct replay *b);
static void replay_base_score(const struct replay *r, const uint32_t *counts, double *bmax,
			      double *bt);

struct feed_slot {
	struct store_step st; /* counts: the slot's own buffer [cells] */
	double *rows;         /* [3 L] with rows: max, mean and baseline max load */
	double *base;         /* [nb * 2 L] each baseline's max load and MoE seconds */
};

struct feed {
	struct store *s;      /* read, and written with rows */
	struct store_iter *it;
	struct feed_rep {
		struct replay *r;
		int64_t pos;  /* steps it has scored */
		int rc;       /* its failure (it then scores no more) */
		int base;     /* its baseline, of brep */
		uint8_t busy; /* a worker holds it */
	} *rep;               /* [n] */
	int n, L, rows;       /* rows: write rep[0]'s per-step rows */
	int nb;               /* baselines the reader scores (0: each replay its own) */
	struct replay **brep; /* [nb] a replay of each baseline */
	int64_t replay_id;
	size_t cells;
	struct feed_slot slot[FEED_SLOTS];
	int64_t wr, wrote;    /* steps read; steps whose rows are written */
	int eof, io_rc;       /* the reading ended; the reader's or writer's failure */
	char io_msg[256];
	int threaded, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t tid;
};

/* Steps every live replay has scored (all read steps when none is left). */
static int64_t feed_scored(const struct feed *f)
{
	int64_t m = f->wr;

	for (int i = 0; i < f->n; i++)
		if (!f->rep[i].rc && f->rep[i].pos < m)
			m = f->rep[i].pos;
	return m;
}

/* Replays that have not failed. */
static int feed_live(const struct feed *f)
{
	int n = 0;

	for (int i = 0; i < f->n; i++)
		n += !f->rep[i].rc;
	return n;
}

static int64_t feed_free_from(const struct feed *f)
{
	return f->rows && !f->rep[0].rc ? f->wrote : feed_scored(f);
}

static void feed_fail(struct feed *f, int rc)
{
	f->io_rc = rc;
	snprintf(f->io_msg, sizeof(f->io_msg), "%s", store_errmsg(f->s));
	f->eof = 1;
}

/* One piece of the connection's work, called with f->mu held (released
 * while it works): write the rows of one scored step, else read one step
 * into a free slot.  0 when there was nothing to do. */
static int feed_io(struct feed *f)
{
	int rc;

	if (f->io_rc)
		return 0;
	if (f->rows && !f->rep[0].rc && f->wrote < f->rep[0].pos) {
		const struct feed_slot *sl = &f->slot[f->wrote % FEED_SLOTS];
		pthread_mutex_unlock(&f->mu);
		rc = store_replay_step_add(f->s, f->replay_id, sl->st.step, f->L, sl->rows,
					   sl->rows + f->L, sl->rows + 2 * (size_t)f->L);
		pthread_mutex_lock(&f->mu);
		if (rc)
			feed_fail(f, UTIL_EDB);
		else
			f->wrote++;
		pthread_cond_broadcast(&f->cv);
		return 1;
	}
	if (f->eof || f->wr - feed_free_from(f) >= FEED_SLOTS)
		return 0;
	struct feed_slot *sl = &f->slot[f->wr % FEED_SLOTS];
	struct store_step st;
	pthread_mutex_unlock(&f->mu);
	rc = store_iter_next(f->it, &st);
	if (rc == 1) {
		uint32_t *c = sl->st.counts;
		sl->st = st;
		sl->st.counts = c;
		memcpy(c, st.counts, f->cells * sizeof(uint32_t));
		for (int b = 0; b < f->nb; b++)
			replay_base_score(f->brep[b], c, sl->base + (size_t)b * 2 * f->L,
					  sl->base + ((size_t)b * 2 + 1) * f->L);
	}
	pthread_mutex_lock(&f->mu);
	if (rc == 1)
		f->wr++;
	else if (rc < 0)
		feed_fail(f, rc);
	else
		f->eof = 1;
	pthread_cond_broadcast(&f->cv);
	return 1;
}

static void *feed_reader(void *arg)
{
	struct feed *f = arg;

	pthread_mutex_lock(&f->mu);
	while (!f->stop && !f->io_rc && !(f->eof && (!f->rows || f->rep[0].rc || f->wrote == f->wr)))
		if (!feed_io(f))
			pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* A replay with steps to score that no worker holds (the one furthest
 * behind, which frees slots first), else -1. */
static int feed_pick(const struct feed *f)
{
	int best = -1;

	for (int i = 0; i < f->n; i++)
		if (!f->rep[i].rc && !f->rep[i].busy && f->rep[i].pos < f->wr &&
		    (best < 0 || f->rep[i].pos < f->rep[best].pos))
			best = i;
	return best;
}

/* Scores steps until every replay has scored every step or failed (or
 * the reading failed). */
static void *feed_worker(void *arg)
{
	struct feed *f = arg;

	pthread_mutex_lock(&f->mu);
	while (!f->io_rc && !f->stop) {
		int i = feed_pick(f);
		if (i < 0) {
			if (!feed_live(f) || (f->eof && feed_scored(f) == f->wr))
				break;
			if (!f->threaded && feed_io(f))
				continue;
			pthread_cond_wait(&f->cv, &f->mu);
			continue;
		}
		f->rep[i].busy = 1;
		while (!f->rep[i].rc && f->rep[i].pos < f->wr && !f->io_rc) {
			struct feed_slot *sl = &f->slot[f->rep[i].pos % FEED_SLOTS];
			pthread_mutex_unlock(&f->mu);
			int rc = replay_step(f->rep[i].r, &sl->st, f->rows ? sl->rows : NULL,
					     f->nb ? sl->base + (size_t)f->rep[i].base * 2 * f->L : NULL);
			pthread_mutex_lock(&f->mu);
			if (rc)
				f->rep[i].rc = rc;
			else
				f->rep[i].pos++;
			pthread_cond_broadcast(&f->cv);
		}
		f->rep[i].busy = 0;
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static void feed_free(struct feed *f)
{
	for (int i = 0; i < FEED_SLOTS; i++) {
		free(f->slot[i].st.counts);
		free(f->slot[i].rows);
		free(f->slot[i].base);
	}
	free(f->brep);
	free(f->rep);
}

/* The distinct baselines of the replays (f->brep, rep[].base): the reader
 * scores each once a step for all the replays that share it. */
static int feed_bases(struct feed *f)
{
	if (!(f->brep = calloc((size_t)f->n, sizeof(*f->brep))))
		return UTIL_ENOMEM;
	for (int i = 0; i < f->n; i++) {
		int b = 0;
		while (b < f->nb && !replay_base_same(f->brep[b], f->rep[i].r))
			b++;
		if (b == f->nb)
			f->brep[f->nb++] = f->rep[i].r;
		f->rep[i].base = b;
	}
	return 0;
}

/* share_base: the reader scores the baselines (feed_bases). */
static int feed_init(struct feed *f, struct store *s, struct store_iter *it, struct replay **rs,
		     int n, int L, size_t cells, int rows, int share_base)
{
	*f = (struct feed){ .s = s, .it = it, .n = n, .L = L, .cells = cells, .rows = rows };
	if (!(f->rep = calloc((size_t)n, sizeof(*f->rep))))
		return UTIL_ENOMEM;
	for (int i = 0; i < n; i++)
		f->rep[i].r = rs[i];
	if (share_base && feed_bases(f))
		return UTIL_ENOMEM;
	for (int i = 0; i < FEED_SLOTS; i++) {
		struct feed_slot *sl = &f->slot[i];
		sl->st.counts = malloc(cells * sizeof(uint32_t));
		sl->rows = rows ? malloc(3 * (size_t)L * sizeof(double)) : NULL;
		sl->base = f->nb ? malloc((size_t)f->nb * 2 * (size_t)L * sizeof(double)) : NULL;
		if (!sl->st.counts || (rows && !sl->rows) || (f->nb && !sl->base))
			return UTIL_ENOMEM;
	}
	return 0;
}

/* Every replay of f over the steps: a reader thread and `workers`
 * scoring threads when threads > 1 (the caller's is one), else all on
 * the caller's.  0, UTIL_ENOMEM, or the reading's or writing's failure
 * (f->io_msg); each replay's own failure is in f->rep[].rc. */
static int feed_run(struct feed *f, int threads, int workers)
{
	pthread_t wt[1];
	int nw = 0;

	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->threaded = threads > 1 && pthread_create(&f->tid, NULL, feed_reader, f) == 0;
	if (f->threaded && workers > 1 && pthread_create(&wt[0], NULL, feed_worker, f) == 0)
		nw = 1;
	feed_worker(f);
	for (int i = 0; i < nw; i++)
		pthread_join(wt[i], NULL);
	if (f->threaded) {
		pthread_mutex_lock(&f->mu);
		/* only a stored replay that succeeded has rows still to write */
		f->stop = !f->rows || f->rep[0].rc;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->tid, NULL);
	} else {
		/* the rows of the last steps scored */
		pthread_mutex_lock(&f->mu);
		while (f->rows && !f->rep[0].rc && f->wrote < f->rep[0].pos && feed_io(f))
			;
		pthread_mutex_unlock(&f->mu);
	}
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	return f->io_rc;
}

/* cfg->pay: each changed layer of next keeps its new placement only when
 * the straggler time it is predicted to save over `horizon` steps (the
 * drop of its max device load on the window, per window step, times
 * sec_per_token) exceeds the transfer time of its own copies; then the
 * whole event is dropped unless the kept layers' savings exceed their
 * transfer time together.  A layer that does not pay gets cur back.
 * The prediction assumes the window's heat persists. */
static int pay_filter(const struct analyze_deploy *dp, int L, int E, int R, int S,
		      const double *heat, const int32_t *cur, int32_t *next, double wsteps,
		      double horizon, double *load, int64_t *send, int64_t *recv, int64_t *psend,
		      int64_t *precv, struct util_err *err)
{
	size_t P = (size_t)R * S;
	double gain = 0;
	int kept = 0;

	for (int l = 0; l < L; l++) {
		const int32_t *o = cur + (size_t)l * P;
		int32_t *n = next + (size_t)l * P;
		const double *h = heat + (size_t)l * E;
		if (!memcmp(o, n, P * sizeof(int32_t)))
			continue;
		double before = analyze_device_load(h, E, o, R, S, NULL, load);
		double after = analyze_device_load(h, E, n, R, S, NULL, load);
		double g = dp->sec_per_token * (before - after) / wsteps * horizon;
		memset(psend, 0, 2 * (size_t)R * sizeof(int64_t));
		memset(precv, 0, 2 * (size_t)R * sizeof(int64_t));
		int64_t m = analyze_transfer_layer_tiers(o, n, E, R, S, dp->ranks_per_node, NULL,
							 psend, precv, NULL, err);
		if (m < 0)
			return (int)m;
		if (g <= analyze_transfer_seconds_tiers(psend, precv, R, dp->expert_bytes,
							dp->intra_gbps, dp->inter_gbps, NULL,
							NULL)) {
			memcpy(n, o, P * sizeof(int32_t));
			continue;
		}
		gain += g;
		kept++;
	}
	if (!kept)
		return 0;
	memset(send, 0, 2 * (size_t)R * sizeof(int64_t));
	memset(recv, 0, 2 * (size_t)R * sizeof(int64_t));
	for (int l = 0; l < L; l++) {
		const int32_t *o = cur + (size_t)l * P, *n = next + (size_t)l * P;
		if (memcmp(o, n, P * sizeof(int32_t)) &&
		    analyze_transfer_layer_tiers(o, n, E, R, S, dp->ranks_per_node, NULL, send,
						 recv, NULL, err) < 0)
			return err->code;
	}
	if (gain <= analyze_transfer_seconds_tiers(send, recv, R, dp->expert_bytes, dp->intra_gbps,
						   dp->inter_gbps, NULL, NULL))
		memcpy(next, cur, (size_t)L * P * sizeof(int32_t));
	return 0;
}

/* ---- the replay's state ---------------------------------------------------
 * One struct holds everything a replay owns, in the manner of git's
 * rev_info: replay_init() fills what the configuration gives, each phase
 * below reads and writes it, and replay_release() frees all of it, whether
 * the replay completed or stopped half-way. */
struct replay {
	struct store *s;
	const struct store_run *run;
	const struct analyze_replay_cfg *cfg;
	struct analyze_replay_out *out;
	struct util_err *err;
	struct analyze_deploy dep;
	int L, E, R, S, P, Ne; /* layers, experts, ranks, slots, R*S, episodes */
	int fc, nb, hist, nb_max; /* the flagship on its forecast: the blocks of the
				   * decision (history first), at most nb_max */
	size_t LE, LP;
	int64_t N, K, W, D;    /* selected steps, interval, window, delay */
	int timed, topk;
	struct ckpt *ck;       /* [nck], by ordinal */
	size_t nck, ci, cf;    /* ci: next checkpoint to fill; cf: first not freed */
	int32_t *cur, *next, *pending;       /* [L*P] in force, decided, taking effect */
	int *cnt, *base_cnt;                 /* [L*E] replicas, in force and baseline */
	double *w, *bw;                      /* [L*P] slot weights, in force and baseline */
	uint64_t *prefix;                    /* [L*E] heat of the steps seen */
	double *heat, *episodes, *ep_buf;    /* window [L*E], [Ne * L*E], workers' */
	double *blocks;                      /* [nb_max * L*E] with fc, during a decision */
	double *load;                        /* [R] */
	double *lmax, *lmean, *bmax, *bt;    /* [L] of the step being scored */
	double *before, *after;              /* [L] window imbalance around a decision */
	uint8_t *want, *pend_layers;         /* [L] to re-place, changed by the pending */
	int64_t *ev_moves, *ev_bytes;        /* [L] of an event */
	int64_t *send, *recv, *psend, *precv; /* [2*R] intra | inter per rank */
	struct qhist qh, qb, qo, qob;        /* per layer and overall (0: every step, 1:
					      * decode steps, 2: prefill steps), replay
					      * and baseline */
	double *qbuf;                        /* [QB_STEPS * (2L + 2)] their values, by step,
					      * until replay_qflush */
	int qphase[QB_STEPS];                /* the phase of each step in qbuf */
	int nq;                              /* steps in qbuf */
	double *ev_before, *ev_after;        /* [n_events * L] of every event (stored at
					      * the end) */
	int64_t pending_eff, ord;            /* pending takes effect before step ordinal;
					      * steps seen */
	size_t pending_ev;
	double hidden, t0, dense_s;          /* MoE seconds since the pending decision,
					      * start time, dense seconds */
	int in_tx;
};

static void replay_init(struct replay *r, struct store *s, const struct store_run *run,
			const struct analyze_replay_cfg *cfg, struct analyze_replay_out *out,
			struct util_err *err)
{
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->run = run;
	r->cfg = cfg;
	r->out = out;
	r->err = err;
	r->L = run->layers;
	r->E = run->experts;
	r->R = cfg->ranks;
	r->S = cfg->slots;
	r->P = r->R * r->S;
	r->fc = cfg->episodes == ANALYZE_REPLAY_FORECAST;
	r->Ne = r->fc ? 0 : cfg->episodes;
	r->LE = (size_t)r->L * (size_t)r->E;
	r->LP = (size_t)r->L * (size_t)r->P;
	r->K = cfg->interval;
	r->W = cfg->window;
	r->D = cfg->delay;
	r->pending_eff = -1;
	r->t0 = util_now();
	memset(out, 0, sizeof(*out));
	out->layers = r->L;
	if (cfg->deploy) {
		r->dep = *cfg->deploy;
	} else { /* one node at one link, no memory floor: the caller's three figures */
		r->dep.ranks = r->R;
		r->dep.ranks_per_node = r->R;
		r->dep.expert_bytes = cfg->expert_bytes;
		r->dep.intra_gbps = r->dep.inter_gbps = cfg->gbytes_per_s;
		r->dep.sec_per_token = cfg->sec_per_token;
	}
	r->timed = r->dep.sec_per_token > 0 || r->dep.sec_per_expert > 0;
	r->topk = run->topk > 0 ? run->topk : r->dep.topk > 0 ? r->dep.topk : 1;
}

/* The settings, each with a message naming its option, then the selected
 * steps (r->N), which the window must fit in. */
static int replay_check(struct replay *r)
{
	const struct analyze_replay_cfg *cfg = r->cfg;
	const struct analyze_deploy *dep = &r->dep;
	struct util_err *err = r->err;
	const int64_t K = r->K, W = r->W, D = r->D;
	const int E = r->E, R = r->R, S = r->S, P = r->P, Ne = r->Ne;
	int rc;

	if (!cfg->algo)
		return util_err_set(err, UTIL_EUSAGE, "no algorithm given");
	if (K <= 0)
		return util_err_set(err, UTIL_EUSAGE, "--interval must be at least 1 step");
	/* no span longer than a trace's steps can hold: ordinal + interval +
	 * delay then stays far inside an int64 */
	if (K > STORE_STEP_MAX || W > STORE_STEP_MAX || D > STORE_STEP_MAX)
		return util_err_set(err, UTIL_EUSAGE,
				    "--interval, --window and --delay are at most %lld steps",
				    (long long)STORE_STEP_MAX);
	if (cfg->pay && !(dep->sec_per_token > 0 && dep->intra_gbps > 0 && dep->inter_gbps > 0 &&
			  dep->expert_bytes))
		return util_err_set(err, UTIL_EUSAGE,
				    "--pay needs the cost model: the bytes of an expert and the "
				    "seconds per token (give --model when the run has none) and a "
				    "link bandwidth");
	if (W <= 0)
		return util_err_set(err, UTIL_EUSAGE, "--window must be at least 1 step");
	if (D < 0 || D >= K)
		return util_err_set(err, UTIL_EUSAGE,
				    "--delay %lld must be at least 0 and shorter than --interval %lld",
				    (long long)D, (long long)K);
	if (cfg->threshold != 0 && cfg->threshold < 1)
		return util_err_set(err, UTIL_EUSAGE,
				    "--threshold %g is below 1 (imbalance is max / mean >= 1)",
				    cfg->threshold);
	if (Ne < 0 || Ne > ANALYZE_MAX_EPISODES)
		return util_err_set(err, UTIL_EUSAGE, "--episodes must be in [0, %d]",
				    ANALYZE_MAX_EPISODES);
	if (r->fc && !analyze_algo_forecasts(cfg->algo))
		return util_err_set(err, UTIL_EUSAGE, "%s has no forecast: give it --episodes",
				    cfg->algo->name);
	if (Ne && W < Ne)
		return util_err_set(err, UTIL_EUSAGE,
				    "--window %lld is shorter than --episodes %d", (long long)W, Ne);
	if ((int64_t)P < E)
		return util_err_set(err, UTIL_EUSAGE, "%d ranks x %d slots cannot hold %d experts",
				    R, S, E);
	for (int l = 0; l < r->L; l++)
		if ((rc = analyze_placement_check(cfg->start + (size_t)l * P, E, R, S, 0, err)))
			return util_err_prefix(err, "start placement, layer %d: ", l);
	if ((rc = analyze_step_count(r->s, r->run, cfg->from, cfg->to, cfg->phase_mask, &r->N,
				     err)))
		return rc;
	if (r->N == 0) {
		int64_t all = 0;
		/* steps there, none of the phase: say so (a trace recorded
		 * without phases has no step of either) */
		if (cfg->phase_mask &&
		    (rc = analyze_step_count(r->s, r->run, cfg->from, cfg->to, 0, &all, err)))
			return rc;
		if (all > 0)
			return util_err_set(err, UTIL_EUSAGE,
					    "run '%s': none of the %lld steps in the chosen range is "
					    "a %s step (--phase; a step recorded without its phase "
					    "is neither)",
					    r->run->name, (long long)all,
					    cfg->phase_mask == 1u << STORE_PHASE_PREFILL ? "prefill"
											  : "decode");
		return util_err_set(err, UTIL_EUSAGE, "no steps of run '%s' in the chosen range",
				    r->run->name);
	}
	/* every decision is scored on steps after it: with one step, a
	 * placement fitted on that step would be scored on it (a hindsight
	 * figure presented as a replay) */
	if (r->N == 1)
		return util_err_set(err, UTIL_EUSAGE,
				    "run '%s' has one step in the chosen range (a snapshot, such "
				    "as summed counts): a replay scores the steps after each "
				    "decision and needs at least two; 'moetrace balance' and "
				    "'place' read a snapshot",
				    r->run->name);
	if (W > r->N)
		return util_err_set(err, UTIL_EUSAGE,
				    "--window %lld is longer than the trace (%lld steps selected)",
				    (long long)W, (long long)r->N);
	return 0;
}

/* r->ck: every ordinal a decision reads (window start, episode boundaries,
 * decision point), sorted, once each, none filled yet. */
static int replay_plan_checkpoints(struct replay *r)
{
	const int64_t K = r->K, W = r->W, D = r->D, N = r->N;
	const int Ne = r->Ne;
	size_t cap = 0, nck = 0, u = 0;
	int64_t *ords = NULL;
	int64_t glast = -1; /* the history's grid points planned so far: up to this */

	for (int64_t t = K; t + D < N; t += K) {
		struct fc_geom g = { 0 };
		int64_t g0 = 0;
		int newg = 0;
		if (r->fc) {
			fc_geometry(t, W, &g);
			if (g.hist + g.m > r->nb_max)
				r->nb_max = g.hist + g.m;
			/* the history's grid points not planned by an earlier
			 * decision (the histories move forward, overlapping) */
			g0 = g.hs > glast ? g.hs : glast + g.gb;
			newg = g.hist && g0 < g.ws ? (int)((g.ws - 1 - g0) / g.gb + 1) : 0;
		}
		size_t need = (size_t)Ne + 2 + (size_t)(g.m + newg);
		if (nck + need > cap) {
			cap = (nck + need) * 2;
			int64_t *no = realloc(ords, cap * sizeof(*no));
			if (!no) {
				free(ords);
				return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
			}
			ords = no;
		}
		ords[nck++] = t;
		ords[nck++] = win_start(t, W);
		for (int k = 1; k < Ne; k++)
			ords[nck++] = ep_bound(t, W, k, Ne);
		for (int k = 0; k < newg; k++)
			ords[nck++] = glast = g0 + k * g.gb;
		for (int k = g.hist; k < g.hist + g.m; k++)
			ords[nck++] = fc_bound(&g, k);
	}
	if (nck)
		qsort(ords, nck, sizeof(*ords), cmp_i64);
	for (size_t i = 0; i < nck; i++)
		if (u == 0 || ords[i] != ords[u - 1])
			ords[u++] = ords[i];
	r->nck = u;
	r->ck = calloc(u ? u : 1, sizeof(*r->ck));
	if (!r->ck) {
		free(ords);
		return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < u; i++)
		r->ck[i].ord = ords[i];
	free(ords);
	return 0;
}

static int replay_alloc(struct replay *r)
{
	const int L = r->L, E = r->E, R = r->R, Ne = r->Ne;
	const size_t LE = r->LE, LP = r->LP;
	struct analyze_replay_out *out = r->out;

	r->cur = malloc(LP * sizeof(int32_t));
	r->next = malloc(LP * sizeof(int32_t));
	r->pending = malloc(LP * sizeof(int32_t));
	r->cnt = malloc(LE * sizeof(int));
	r->w = malloc(LP * sizeof(double));
	r->bw = malloc(LP * sizeof(double));
	r->base_cnt = malloc(LE * sizeof(int));
	r->prefix = calloc(LE, sizeof(uint64_t));
	r->heat = malloc(LE * sizeof(double));
	r->episodes = Ne ? malloc((size_t)Ne * LE * sizeof(double)) : NULL;
	/* the workers' copies of a layer's episodes (its blocks are read in
	 * place) */
	r->ep_buf = malloc(2 * (size_t)(Ne > 0 ? Ne : 1) * (size_t)(E > 0 ? E : 1) * sizeof(double));
	r->load = malloc((size_t)R * sizeof(double));
	r->lmax = malloc((size_t)L * sizeof(double));
	r->lmean = malloc((size_t)L * sizeof(double));
	r->bmax = malloc((size_t)L * sizeof(double));
	r->qbuf = malloc(QB_STEPS * (2 * (size_t)L + 2) * sizeof(double));
	r->bt = malloc((size_t)L * sizeof(double));
	r->before = malloc((size_t)L * sizeof(double));
	r->after = malloc((size_t)L * sizeof(double));
	r->want = malloc((size_t)L);
	r->pend_layers = calloc((size_t)L, 1);
	r->ev_moves = malloc((size_t)L * sizeof(int64_t));
	r->ev_bytes = malloc((size_t)L * sizeof(int64_t));
	r->send = malloc(2 * (size_t)R * sizeof(int64_t));
	r->recv = malloc(2 * (size_t)R * sizeof(int64_t));
	r->psend = malloc(2 * (size_t)R * sizeof(int64_t));
	r->precv = malloc(2 * (size_t)R * sizeof(int64_t));
	out->layer = calloc((size_t)L, sizeof(*out->layer));
	if (!r->cur || !r->next || !r->pending || !r->cnt || !r->w || !r->bw || !r->base_cnt ||
	    !r->prefix || !r->heat || (Ne && !r->episodes) || !r->ep_buf || !r->load ||
	    !r->lmax || !r->lmean || !r->bmax || !r->qbuf || !r->bt || !r->before || !r->after || !r->want ||
	    !r->pend_layers || !r->ev_moves || !r->ev_bytes || !r->send || !r->recv ||
	    !r->psend || !r->precv || !out->layer || qh_init(&r->qh, L) || qh_init(&r->qb, L) ||
	    qh_init(&r->qo, 3) || qh_init(&r->qob, 3))
		return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
	if (r->cfg->series && r->N > 0) { /* N > 0: replay_check */
		out->series_step = malloc((size_t)r->N * sizeof(int64_t));
		out->series_imbalance = malloc((size_t)r->N * sizeof(double));
		out->series_base = malloc((size_t)r->N * sizeof(double));
		out->series_phase = malloc((size_t)r->N);
		if (!out->series_step || !out->series_imbalance || !out->series_base ||
		    !out->series_phase)
			return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
	}
	return 0;
}

/* The start placement is in force, and stays the baseline's. */
static void replay_start(struct replay *r)
{
	const int L = r->L, E = r->E, P = r->P;

	memcpy(r->cur, r->cfg->start, r->LP * sizeof(int32_t));
	for (int l = 0; l < L; l++) {
		analyze_replicas(r->cur + (size_t)l * P, P, E, r->cnt + (size_t)l * E);
		memcpy(r->base_cnt + (size_t)l * E, r->cnt + (size_t)l * E,
		       (size_t)E * sizeof(int));
		slot_weights(r->cur + (size_t)l * P, P, r->cnt + (size_t)l * E,
			     r->w + (size_t)l * P);
		memcpy(r->bw + (size_t)l * P, r->w + (size_t)l * P, (size_t)P * sizeof(double));
	}
}

/* The replay row's settings; with cfg->store, the row is added in the
 * transaction that will hold everything else. */
static int replay_begin_row(struct replay *r)
{
	const struct analyze_replay_cfg *cfg = r->cfg;
	const struct analyze_deploy *dep = &r->dep;
	struct store_replay *sum = &r->out->sum;

	sum->run = r->run->id;
	snprintf(sum->algo, sizeof(sum->algo), "%s", cfg->algo->name);
	sum->ranks = r->R;
	sum->slots = r->S;
	sum->interval = r->K;
	sum->window = r->W;
	sum->delay = r->D;
	sum->threshold = cfg->threshold;
	sum->episodes = cfg->episodes; /* ANALYZE_REPLAY_FORECAST: the forecast */
	sum->max_moves = cfg->max_moves;
	sum->pay = cfg->pay;
	sum->ranks_per_node = dep->ranks_per_node;
	snprintf(sum->quant, sizeof(sum->quant), "%s",
		 dep->expert_bytes ? analyze_quant_name(dep->quant) : "");
	snprintf(sum->link_intra, sizeof(sum->link_intra), "%s",
		 dep->link_intra ? dep->link_intra : "");
	snprintf(sum->link_inter, sizeof(sum->link_inter), "%s",
		 dep->link_inter ? dep->link_inter : "");
	snprintf(sum->hardware, sizeof(sum->hardware), "%s", dep->hw ? dep->hw->name : "");
	snprintf(sum->engine, sizeof(sum->engine), "%s", cfg->engine ? cfg->engine : "");
	sum->step_ms = dep->step_seconds * 1e3;
	snprintf(sum->params, sizeof(sum->params), "%s", cfg->params_json ? cfg->params_json : "{}");
	if (cfg->store) {
		if (store_begin(r->s) || (r->in_tx = 1, store_replay_add(r->s, sum)))
			return util_err_set(r->err, UTIL_EDB, "%s", store_errmsg(r->s));
	}
	return 0;
}

/* The checkpoint of ordinal 0. */
static int replay_open(struct replay *r)
{
	if (r->nck && r->ck[0].ord == 0) {
		r->ck[0].sum = calloc(r->LE, sizeof(uint64_t));
		if (!r->ck[0].sum)
			return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
		r->ci = 1;
	}
	return 0;
}

/* The pending placement takes effect before step st runs. */
static void replay_apply_pending(struct replay *r, const struct store_step *st)
{
	const int L = r->L, E = r->E, P = r->P;
	struct analyze_replay_out *out = r->out;

	for (int l = 0; l < L; l++)
		if (r->pend_layers[l]) {
			memcpy(r->cur + (size_t)l * P, r->pending + (size_t)l * P,
			       (size_t)P * sizeof(int32_t));
			analyze_replicas(r->cur + (size_t)l * P, P, E, r->cnt + (size_t)l * E);
			slot_weights(r->cur + (size_t)l * P, P, r->cnt + (size_t)l * E,
				     r->w + (size_t)l * P);
		}
	out->events[r->pending_ev].effective_step = st->step;
	/* overlapped transfer: hidden behind the delay's MoE time */
	double tr = out->events[r->pending_ev].transfer_seconds;
	out->sum.net_overlap_seconds -= tr > r->hidden ? tr - r->hidden : 0;
	r->pending_eff = -1;
}

/* The imbalance of the last r->nq steps into the histograms: per layer
 * and histogram in step order, so each sum adds up as if each value went
 * in on its step, while a layer's values, close together, hit the same
 * few bins rather than a scattered bin of every layer each step. */
static int replay_qflush(struct replay *r)
{
	const int L = r->L;
	const size_t row = 2 * (size_t)L + 2;

	for (int l = 0; l < L; l++) {
		for (int j = 0; j < r->nq; j++)
			qh_add(&r->qh, l, r->qbuf[(size_t)j * row + (size_t)l]);
		for (int j = 0; j < r->nq; j++)
			qh_add(&r->qb, l, r->qbuf[(size_t)j * row + (size_t)(L + l)]);
	}
	for (int j = 0; j < r->nq; j++) {
		double v = r->qbuf[(size_t)j * row + 2 * (size_t)L];
		double b = r->qbuf[(size_t)j * row + 2 * (size_t)L + 1];
		int ph = r->qphase[j] == STORE_PHASE_DECODE ? 1 : r->qphase[j] == STORE_PHASE_PREFILL ? 2 : 0;
		qh_add(&r->qo, 0, v);
		qh_add(&r->qob, 0, b);
		if (ph) { /* and its phase's */
			qh_add(&r->qo, ph, v);
			qh_add(&r->qob, ph, b);
		}
	}
	r->nq = 0;
	return r->qh.oom || r->qb.oom || r->qo.oom || r->qob.oom ? UTIL_ENOMEM : 0;
}

/* The baseline's max load (bmax) and MoE seconds (bt, with the step-time
 * model) of each layer of one step's counts. */
static void replay_base_score(const struct replay *r, const uint32_t *counts, double *bmax,
			      double *bt)
{
	const int R = r->R, S = r->S, P = r->P;
	const int32_t *start = r->cfg->start;
	double btot;

	for (int l = 0; l < r->L; l++) {
		const uint32_t *h = counts + (size_t)l * r->E;
		bt[l] = 0;
		if (r->timed)
			bmax[l] = layer_max_t(h, start + (size_t)l * P, r->bw + (size_t)l * P, R, S,
					      r->dep.sec_per_token, r->dep.sec_per_expert, &btot,
					      &bt[l]);
		else
			bmax[l] = layer_max_w(h, start + (size_t)l * P, r->bw + (size_t)l * P, R, S,
					      &btot);
	}
}

/* Do replays a and b score the same baseline? */
static int replay_base_same(const struct replay *a, const struct replay *b)
{
	return a->R == b->R && a->S == b->S && a->L == b->L && a->E == b->E &&
	       a->timed == b->timed && a->dep.sec_per_token == b->dep.sec_per_token &&
	       a->dep.sec_per_expert == b->dep.sec_per_expert &&
	       !memcmp(a->cfg->start, b->cfg->start, a->LP * sizeof(int32_t));
}

/* Step st under the placement in force and under the baseline: the
 * histograms, the time and token sums, the series, and with rows the
 * stored row's loads (rows[0..L) max, [L..2L) mean, [2L..3L) baseline
 * max), which the feed writes; its heat joins the prefix sums. */
static int replay_score(struct replay *r, const struct store_step *st, double *rows,
			const double *base)
{
	const int L = r->L, E = r->E, R = r->R, S = r->S, P = r->P;
	const struct analyze_deploy *dep = &r->dep;
	struct analyze_replay_out *out = r->out;
	struct store_replay *sum = &out->sum;
	double smax = 0, smean = 0, sbase = 0, stime = 0, sbtime = 0;
	double *lmax = rows ? rows : r->lmax, *lmean = rows ? rows + L : r->lmean;
	double *bmax = rows ? rows + 2 * (size_t)L : r->bmax;
	double *qv = r->qbuf + (size_t)r->nq * (2 * (size_t)L + 2);

	if (base) {
		memcpy(bmax, base, (size_t)L * sizeof(double));
		memcpy(r->bt, base + L, (size_t)L * sizeof(double));
	} else {
		replay_base_score(r, st->counts, bmax, r->bt);
	}
	for (int l = 0; l < L; l++) {
		const uint32_t *h = st->counts + (size_t)l * E;
		double tot;
		if (r->timed) {
			double t;
			lmax[l] = layer_max_t(h, r->cur + (size_t)l * P, r->w + (size_t)l * P, R, S,
					      dep->sec_per_token, dep->sec_per_expert, &tot, &t);
			stime += t;
			sbtime += r->bt[l];
		} else {
			lmax[l] = layer_max_w(h, r->cur + (size_t)l * P, r->w + (size_t)l * P, R, S,
					      &tot);
		}
		lmean[l] = tot / R;
		/* a layer without tokens in this step is not scored in it */
		qv[l] = analyze_scored_imbalance(lmax[l], lmean[l]);
		qv[L + l] = analyze_scored_imbalance(bmax[l], lmean[l]);
		smax += lmax[l];
		sbase += bmax[l];
		smean += lmean[l];
	}
	for (size_t i = 0; i < r->LE; i++)
		r->prefix[i] += st->counts[i];
	qv[2 * (size_t)L] = analyze_scored_imbalance(smax, smean);
	qv[2 * L + 1] = analyze_scored_imbalance(sbase, smean);
	r->qphase[r->nq] = st->phase;
	if (++r->nq == QB_STEPS && replay_qflush(r))
		return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
	/* tokens of the batch: recorded, else routed tokens / top-k */
	double tk = st->tokens > 0 ? (double)st->tokens
				   : analyze_routed_tokens(st->counts, L, r->E, r->topk);
	sum->tokens += (int64_t)(tk + 0.5);
	if (r->timed) {
		sum->saved_seconds += sbtime - stime;
		sum->moe_seconds += stime;
		sum->baseline_moe_seconds += sbtime;
		r->dense_s += analyze_dense_seconds(dep, tk);
	}
	if (r->cfg->series) {
		if (out->n_series == (size_t)r->N)
			return util_err_set(r->err, UTIL_ESTATE, "replay: more steps than counted");
		int sl = r->cfg->series_layer;
		double num = sl >= 0 && sl < L ? lmax[sl] : smax;
		double bnum = sl >= 0 && sl < L ? bmax[sl] : sbase;
		double den = sl >= 0 && sl < L ? lmean[sl] : smean;
		out->series_step[out->n_series] = st->step;
		out->series_phase[out->n_series] = (unsigned char)st->phase;
		/* no token, no imbalance: a gap in the chart */
		out->series_imbalance[out->n_series] = analyze_scored_imbalance(num, den);
		out->series_base[out->n_series] = analyze_scored_imbalance(bnum, den);
		out->n_series++;
	}
	if (r->pending_eff >= 0)
		r->hidden += stime;
	return 0;
}

/* A copy of the prefix sums when r->ord steps seen is a checkpoint. */
static int replay_checkpoint(struct replay *r)
{
	struct ckpt *c = r->ci < r->nck ? &r->ck[r->ci] : NULL;

	if (!c || c->ord != r->ord)
		return 0;
	c->sum = malloc(r->LE * sizeof(uint64_t));
	if (!c->sum)
		return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
	memcpy(c->sum, r->prefix, r->LE * sizeof(uint64_t));
	r->ci++;
	return 0;
}

/* The flagship's blocks of the decision after r->ord steps (r->blocks,
 * r->nb, r->hist) from the checkpoints.  The blocks are held only for the
 * decision (replay_decide frees them): a grid's replays would otherwise
 * each hold theirs, about 19 MB at 58 x 256, for the whole walk. */
static int replay_blocks(struct replay *r)
{
	const size_t LE = r->LE;
	struct fc_geom g;

	fc_geometry(r->ord, r->W, &g);
	r->hist = g.hist;
	r->nb = g.hist + g.m;
	if (!r->blocks && !(r->blocks = malloc((size_t)r->nb_max * LE * sizeof(double))))
		return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
	for (int k = 0; k < r->nb; k++) {
		struct ckpt *x = ckpt_find(r->ck, r->nck, fc_bound(&g, k));
		struct ckpt *y = ckpt_find(r->ck, r->nck, fc_bound(&g, k + 1));
		if (!x || !y || !x->sum || !y->sum)
			return util_err_set(r->err, UTIL_ESTATE, "replay: missing block checkpoint");
		double *dst = r->blocks + (size_t)k * LE;
		for (size_t i = 0; i < LE; i++)
			dst[i] = (double)(y->sum[i] - x->sum[i]);
	}
	return 0;
}

/* A layer's imbalance on a decision's window, NAN when it got no token
 * there: not scored, rather than a perfect 1.0 (docs/cli.md). */
static double window_imbalance(const double *load, int R)
{
	double sum = 0;

	for (int i = 0; i < R; i++)
		sum += load[i];
	return sum > 0 ? analyze_imbalance(load, R) : NAN;
}

/* The heat of the window [ws, ord) from the checkpoints, the imbalance of
 * each layer on it under the placement in force (r->before), the layers to
 * re-place (r->want) and, when there are any, the window's episodes or the
 * flagship's blocks. */
static int replay_window(struct replay *r, int64_t ws)
{
	const int L = r->L, E = r->E, R = r->R, S = r->S, P = r->P, Ne = r->Ne;
	const size_t LE = r->LE;
	struct ckpt *a = ckpt_find(r->ck, r->nck, ws), *b = ckpt_find(r->ck, r->nck, r->ord);
	int any = 0;

	if (!a || !b || !a->sum || !b->sum)
		return util_err_set(r->err, UTIL_ESTATE, "replay: missing window checkpoint");
	for (size_t i = 0; i < LE; i++)
		r->heat[i] = (double)(b->sum[i] - a->sum[i]);
	for (int l = 0; l < L; l++) {
		analyze_device_load(r->heat + (size_t)l * E, E, r->cur + (size_t)l * P, R, S,
				    r->cnt + (size_t)l * E, r->load);
		r->before[l] = window_imbalance(r->load, R);
		/* NAN > threshold is false: a layer without a token is not re-placed */
		r->want[l] = r->cfg->threshold == 0 || r->before[l] > r->cfg->threshold;
		any |= r->want[l];
	}
	r->nb = 0;
	if (!any)
		return 0; /* no layer to place: no episodes, no blocks */
	for (int k = 0; k < Ne; k++) {
		struct ckpt *x = ckpt_find(r->ck, r->nck, ep_bound(r->ord, r->W, k, Ne));
		struct ckpt *y = ckpt_find(r->ck, r->nck, ep_bound(r->ord, r->W, k + 1, Ne));
		if (!x || !y || !x->sum || !y->sum)
			return util_err_set(r->err, UTIL_ESTATE,
					    "replay: missing episode checkpoint");
		double *dst = r->episodes + (size_t)k * LE;
		for (size_t i = 0; i < LE; i++)
			dst[i] = (double)(y->sum[i] - x->sum[i]);
	}
	return r->fc ? replay_blocks(r) : 0;
}

/* The moves from r->cur to r->next into ev (and r->ev_moves, r->after,
 * r->pend_layers, the transfer per rank in r->send / r->recv). */
static int replay_moves(struct replay *r, struct store_replay_event *ev)
{
	const int L = r->L, E = r->E, R = r->R, S = r->S, P = r->P;
	const struct analyze_deploy *dep = &r->dep;
	int64_t inter = 0;

	memset(r->send, 0, 2 * (size_t)R * sizeof(int64_t));
	memset(r->recv, 0, 2 * (size_t)R * sizeof(int64_t));
	for (int l = 0; l < L; l++) {
		const int32_t *o = r->cur + (size_t)l * P, *n = r->next + (size_t)l * P;
		r->ev_moves[l] = 0;
		r->pend_layers[l] = memcmp(o, n, (size_t)P * sizeof(int32_t)) != 0;
		r->after[l] = r->before[l];
		if (!r->pend_layers[l])
			continue;
		int64_t m = analyze_transfer_layer_tiers(o, n, E, R, S, dep->ranks_per_node, NULL,
							 r->send, r->recv, &inter, r->err);
		if (m < 0)
			return (int)m;
		r->ev_moves[l] = m;
		analyze_device_load(r->heat + (size_t)l * E, E, n, R, S, NULL, r->load);
		r->after[l] = window_imbalance(r->load, R);
		ev->layers++;
		ev->moves += m;
		r->out->layer[l].moves += m;
	}
	for (int l = 0; l < L; l++)
		r->ev_bytes[l] = r->ev_moves[l] * (int64_t)dep->expert_bytes;
	ev->bytes = ev->moves * (int64_t)dep->expert_bytes;
	ev->bytes_inter = inter * (int64_t)dep->expert_bytes;
	ev->transfer_seconds = analyze_transfer_seconds_tiers(
		r->send, r->recv, R, dep->expert_bytes, dep->intra_gbps, dep->inter_gbps,
		&ev->transfer_intra_seconds, &ev->transfer_inter_seconds);
	return 0;
}

/* Event ev joins out->events (and the store), and r->next becomes the
 * pending placement, taking effect after the delay. */
static int replay_event_add(struct replay *r, struct store_replay_event *ev)
{
	const int L = r->L;
	struct analyze_replay_out *out = r->out;
	struct store_replay *sum = &out->sum;

	size_t n1 = out->n_events + 1;

	ev->event = (int64_t)out->n_events;
	struct store_replay_event *ne = realloc(out->events, n1 * sizeof(*ne));
	int64_t *nm = realloc(out->event_moves, n1 * (size_t)L * sizeof(int64_t));
	double *nb = realloc(r->ev_before, n1 * (size_t)L * sizeof(double));
	double *na = realloc(r->ev_after, n1 * (size_t)L * sizeof(double));
	if (ne)
		out->events = ne;
	if (nm)
		out->event_moves = nm;
	if (nb)
		r->ev_before = nb;
	if (na)
		r->ev_after = na;
	if (!ne || !nm || !nb || !na)
		return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
	out->events[out->n_events] = *ev;
	memcpy(out->event_moves + out->n_events * (size_t)L, r->ev_moves,
	       (size_t)L * sizeof(int64_t));
	memcpy(r->ev_before + out->n_events * (size_t)L, r->before, (size_t)L * sizeof(double));
	memcpy(r->ev_after + out->n_events * (size_t)L, r->after, (size_t)L * sizeof(double));
	r->pending_ev = out->n_events++;
	memcpy(r->pending, r->next, r->LP * sizeof(int32_t));
	r->pending_eff = r->ord + r->D;
	r->hidden = 0;
	sum->events++;
	sum->moves += ev->moves;
	sum->bytes += ev->bytes;
	sum->bytes_inter += ev->bytes_inter;
	sum->transfer_seconds += ev->transfer_seconds;
	return 0;
}

/* A decision after r->ord steps, the last of them st: place on the
 * window, keep what pays (cfg->pay), and record the event if anything
 * moves. */
static int replay_decide(struct replay *r, const struct store_step *st)
{
	const struct analyze_replay_cfg *cfg = r->cfg;
	const int64_t K = r->K, W = r->W, N = r->N, D = r->D, ord = r->ord;
	int64_t ws = win_start(ord, W);
	int rc;

	if ((rc = replay_window(r, ws)))
		return rc;
	struct decide d = { .cfg = cfg, .layers = r->L, .experts = r->E, .P = r->P,
			    .heat = r->heat, .episodes = r->episodes, .cur = r->cur,
			    .blocks = r->fc && r->nb ? r->blocks : NULL, .nb = r->nb,
			    .hist = r->hist,
			    .next = r->next, .want = r->want, .ep_buf = r->ep_buf };
	rc = decide_run(&d, cfg->threads);
	free(r->blocks);
	r->blocks = NULL;
	if (rc) {
		*r->err = d.err;
		return d.rc;
	}
	r->out->algo_seconds += d.seconds;
	if (cfg->pay &&
	    (rc = pay_filter(&r->dep, r->L, r->E, r->R, r->S, r->heat, r->cur, r->next,
			     (double)(ord - ws), (double)(K < N - ord - D ? K : N - ord - D),
			     r->load, r->send, r->recv, r->psend, r->precv, r->err)))
		return rc;
	/* checkpoints no later decision reads (whether this one moves
	 * anything or not: else a trace of quiet decisions keeps them all) */
	for (; r->cf < r->nck && r->ck[r->cf].ord < first_read(ord + K, W, r->fc); r->cf++) {
		free(r->ck[r->cf].sum);
		r->ck[r->cf].sum = NULL;
	}
	struct store_replay_event ev = { 0 };
	if ((rc = replay_moves(r, &ev)))
		return rc;
	ev.algo_seconds = d.seconds;
	ev.step = st->step;
	ev.effective_step = -1;
	if (ev.layers == 0)
		return 0; /* nothing changes: no event */
	return replay_event_add(r, &ev);
}

/* One step of the walk: the pending placement when it takes effect, the
 * step's score (rows: see replay_score), and a decision every interval. */
static int replay_step(struct replay *r, const struct store_step *st, double *rows,
		       const double *base)
{
	int rc;

	if (r->pending_eff == r->ord)
		replay_apply_pending(r, st);
	if ((rc = replay_score(r, st, rows, base)))
		return rc;
	r->ord++;
	if ((rc = replay_checkpoint(r)))
		return rc;
	if (r->ord % r->K != 0 || r->ord + r->D >= r->N)
		return 0;
	return replay_decide(r, st);
}

/* The event rows, known in full only now (the effective steps), with
 * their per-layer moves and imbalance around the decision. */
static int replay_store_events(struct replay *r)
{
	const struct analyze_replay_out *out = r->out;
	const int L = r->L;

	for (size_t i = 0; i < out->n_events; i++) {
		const int64_t *mv = out->event_moves + i * (size_t)L;
		for (int l = 0; l < L; l++)
			r->ev_bytes[l] = mv[l] * (int64_t)r->dep.expert_bytes;
		if (store_replay_event_add(r->s, out->sum.id, &out->events[i], L, mv, r->ev_bytes,
					   r->ev_before + i * (size_t)L,
					   r->ev_after + i * (size_t)L))
			return util_err_set(r->err, UTIL_EDB, "%s", store_errmsg(r->s));
	}
	return 0;
}

/* The summary and per-layer figures; with cfg->store, the rows known only
 * now, and the commit. */
static int replay_finish(struct replay *r)
{
	struct analyze_replay_out *out = r->out;
	struct store_replay *sum = &out->sum;
	const struct analyze_deploy *dep = &r->dep;
	const int64_t ord = r->ord;

	if (replay_qflush(r))
		return util_err_set(r->err, UTIL_ENOMEM, "out of memory");
	sum->steps = ord;
	out->unscored_steps = ord - r->qo.count[0];
	if (ord > 0 && r->qo.count[0] == 0)
		return util_err_set(r->err, UTIL_EUSAGE,
				    "run '%s': no step of the %lld replayed routed a token: nothing "
				    "to score",
				    r->run->name, (long long)ord);
	sum->imbalance_mean = qh_mean(&r->qo, 0);
	sum->baseline_imbalance_mean = qh_mean(&r->qob, 0);
	sum->imbalance_p99 = qh_pct(&r->qo, 0, 99);
	sum->baseline_imbalance_p99 = qh_pct(&r->qob, 0, 99);
	for (int i = 0; i < 2; i++) {
		struct analyze_replay_phase *p = &out->phase[i];
		p->steps = r->qo.count[i + 1];
		p->mean = qh_mean(&r->qo, i + 1);
		p->base_mean = qh_mean(&r->qob, i + 1);
		p->p99 = qh_pct(&r->qo, i + 1, 99);
		p->base_p99 = qh_pct(&r->qob, i + 1, 99);
	}
	sum->net_stop_seconds = sum->saved_seconds - sum->transfer_seconds;
	sum->net_overlap_seconds += sum->saved_seconds;
	/* step time: measured, else estimated when the model gives the rest of
	 * the step (without one only MoE time is known) */
	if (r->timed && (dep->step_seconds > 0 || dep->expert_bytes))
		sum->baseline_step_seconds = dep->step_seconds > 0
						     ? dep->step_seconds * (double)ord
						     : r->dense_s + sum->baseline_moe_seconds;
	for (int l = 0; l < r->L; l++) {
		struct analyze_replay_layer *ly = &out->layer[l];
		ly->mean = qh_mean(&r->qh, l);
		ly->base_mean = qh_mean(&r->qb, l);
		ly->p99 = qh_pct(&r->qh, l, 99);
		ly->base_p99 = qh_pct(&r->qb, l, 99);
		/* a layer no step scored has no row (its columns hold numbers) */
		if (r->cfg->store && r->qh.count[l] && store_replay_layer_add(r->s, sum->id, l, ly->mean, ly->p99,
							    ly->base_mean, ly->base_p99, ly->moves))
			return util_err_set(r->err, UTIL_EDB, "%s", store_errmsg(r->s));
	}
	if (r->cfg->store) {
		int rc = replay_store_events(r);
		if (rc)
			return rc;
		if (store_replay_finish(r->s, sum) || store_commit(r->s))
			return util_err_set(r->err, UTIL_EDB, "%s", store_errmsg(r->s));
		r->in_tx = 0;
	}
	out->wall_seconds = util_now() - r->t0;
	return 0;
}

/* Frees what the replay owns (not out) and rolls back what it had not
 * committed; safe at any point after replay_init. */
static void replay_release(struct replay *r)
{
	if (r->in_tx)
		store_rollback(r->s);
	free(r->ev_before);
	free(r->ev_after);
	for (size_t i = 0; i < r->nck; i++)
		free(r->ck[i].sum);
	free(r->ck);
	free(r->cur);
	free(r->next);
	free(r->pending);
	free(r->cnt);
	free(r->base_cnt);
	free(r->w);
	free(r->bw);
	free(r->prefix);
	free(r->heat);
	free(r->episodes);
	free(r->blocks);
	free(r->ep_buf);
	free(r->load);
	free(r->lmax);
	free(r->lmean);
	free(r->bmax);
	free(r->qbuf);
	free(r->bt);
	free(r->before);
	free(r->after);
	free(r->want);
	free(r->pend_layers);
	free(r->ev_moves);
	free(r->ev_bytes);
	free(r->send);
	free(r->recv);
	free(r->psend);
	free(r->precv);
	qh_free(&r->qh);
	qh_free(&r->qb);
	qh_free(&r->qo);
	qh_free(&r->qob);
}

/* Replay r up to its walk: the checks, checkpoints, buffers, start
 * placement and (stored) row. */
static int replay_prepare(struct replay *r)
{
	int rc;

	if ((rc = replay_check(r)) || (rc = replay_plan_checkpoints(r)) || (rc = replay_alloc(r)))
		return rc;
	replay_start(r);
	if ((rc = replay_begin_row(r)) || (rc = replay_open(r)))
		return rc;
	return 0;
}

/* The walk of the n replays rs over one reading of their steps (the
 * selection of rs[0]'s configuration, which all share); with rows, rs[0]
 * (the only one) writes its per-step rows.  rcs[i] gets each replay's own
 * failure; returns 0 or the reading's or writing's (in err). */
static int replay_walk(struct store *s, const struct store_run *run, struct replay **rs, int n,
		       int threads, int rows, int *rcs, struct util_err *err)
{
	const struct analyze_replay_cfg *c = rs[0]->cfg;
	struct store_iter *it;
	struct feed f;
	int rc;

	if ((rc = store_iter_new(s, run, c->from, c->to, c->phase_mask, &it)))
		return util_err_set(err, rc, "%s", store_errmsg(s));
	/* The reader scores a grid's baselines, shared by its replays; one
	 * replay scores its own, since reading and decoding alone already
	 * take the reader longer than the replay's scoring (docs/replay.md). */
	if (feed_init(&f, s, it, rs, n, run->layers, rs[0]->LE, rows, n > 1)) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
	} else {
		f.replay_id = rows ? rs[0]->out->sum.id : 0;
		if ((rc = feed_run(&f, threads, n > 1 ? 2 : 1)))
			util_err_set(err, rc, "%s", f.io_msg);
		for (int i = 0; i < n; i++)
			rcs[i] = f.rep[i].rc;
	}
	feed_free(&f);
	store_iter_free(it);
	return rc;
}

int analyze_replay_run(struct store *s, const struct store_run *run,
		       const struct analyze_replay_cfg *cfg, struct analyze_replay_out *out,
		       struct util_err *err)
{
	struct replay r, *rp = &r;
	int rc, rrc = 0;

	replay_init(&r, s, run, cfg, out, err);
	if (!(rc = replay_prepare(&r)) &&
	    !(rc = replay_walk(s, run, &rp, 1, cfg->threads, cfg->store, &rrc, err)) &&
	    !(rc = rrc))
		rc = replay_finish(&r);
	replay_release(&r);
	if (rc)
		analyze_replay_release(out);
	return rc;
}

/* The outcome of replays of a grid whose walk ran: the reading's failure
 * (io), else the replay's own, else its summary. */
static void grid_finish(struct replay *rs, struct replay **live, int nlive, int io,
			const struct util_err *ioerr, const int *lrc, int *rcs)
{
	for (int k = 0; k < nlive; k++) {
		size_t i = (size_t)(live[k] - rs);
		if (io) {
			*live[k]->err = *ioerr;
			rcs[i] = io;
		} else {
			rcs[i] = lrc[k] ? lrc[k] : replay_finish(live[k]);
		}
	}
}

int analyze_replay_grid(struct store *s, const struct store_run *run,
			const struct analyze_replay_cfg *cfgs, int n, int threads,
			struct analyze_replay_out *outs, struct util_err *errs, int *rcs)
{
	struct replay *rs = calloc((size_t)n, sizeof(*rs));
	struct replay **live = calloc((size_t)n, sizeof(*live));
	int *lrc = calloc((size_t)n, sizeof(*lrc));
	struct util_err ioerr = UTIL_ERR_INIT;
	int nlive = 0, io = 0;

	for (int i = 0; i < n; i++) {
		memset(&outs[i], 0, sizeof(outs[i]));
		rcs[i] = !rs || !live || !lrc ? util_err_set(&errs[i], UTIL_ENOMEM, "out of memory")
					      : 0;
	}
	for (int i = 0; rs && live && lrc && i < n; i++) {
		const struct analyze_replay_cfg *c = &cfgs[i];
		replay_init(&rs[i], s, run, c, &outs[i], &errs[i]);
		if (c->store || c->from != cfgs[0].from || c->to != cfgs[0].to ||
		    c->phase_mask != cfgs[0].phase_mask)
			rcs[i] = util_err_set(&errs[i], UTIL_EUSAGE,
					      "a grid stores nothing and replays one selection of "
					      "steps");
		else if (!(rcs[i] = replay_prepare(&rs[i])))
			live[nlive++] = &rs[i];
	}
	if (nlive) {
		io = replay_walk(s, run, live, nlive, threads, 0, lrc, &ioerr);
		grid_finish(rs, live, nlive, io, &ioerr, lrc, rcs);
	}
	for (int i = 0; rs && i < n; i++) {
		if (live && lrc)
			replay_release(&rs[i]);
		if (rcs[i])
			analyze_replay_release(&outs[i]);
	}
	free(rs);
	free(live);
	free(lrc);
	return io;
}

void analyze_replay_release(struct analyze_replay_out *out)
{
	free(out->layer);
	free(out->events);
	free(out->event_moves);
	free(out->series_step);
	free(out->series_imbalance);
	free(out->series_base);
	free(out->series_phase);
	out->series_phase = NULL;
	out->series_step = NULL;
	out->series_imbalance = out->series_base = NULL;
	out->n_series = 0;
	out->layer = NULL;
	out->events = NULL;
	out->event_moves = NULL;
	out->n_events = 0;
}

/*
 * replay.c: what dynamic load balancing would have done on a recorded
 * trace.  Start at analyze_replay_run(): it validates the configuration,
 * counts the selected steps, then walks them once.  Window heat comes from
 * prefix sums checkpointed at the few step ordinals a decision needs
 * (window start, episode boundaries, decision point), so memory does not
 * grow with the window.  Per-step imbalance percentiles come from
 * log-spaced histograms (0.05% resolution), so memory does not grow with
 * the trace either.  Decisions place every layer (or those over the
 * threshold) on up to two threads.
 */
#include "analyze/analyze.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- imbalance histograms ------------------------------------------------ */

#define QH_BINS 16384
#define QH_RATIO 1.0005 /* bin i holds [RATIO^i, RATIO^(i+1)) */

struct qhist {
	uint32_t *bins; /* [n * QH_BINS] */
	double *sum;    /* [n] */
	int64_t count;
};

static int qh_init(struct qhist *h, int n)
{
	h->bins = calloc((size_t)n * QH_BINS, sizeof(uint32_t));
	h->sum = calloc((size_t)n, sizeof(double));
	h->count = 0;
	return h->bins && h->sum ? 0 : UTIL_ENOMEM;
}

static void qh_free(struct qhist *h)
{
	free(h->bins);
	free(h->sum);
}

static void qh_add(struct qhist *h, int i, double x)
{
	int b = x <= 1.0 ? 0 : (int)(log(x) / log(QH_RATIO));

	if (b >= QH_BINS)
		b = QH_BINS - 1;
	h->bins[(size_t)i * QH_BINS + (size_t)b]++;
	h->sum[i] += x;
}

static double qh_pct(const struct qhist *h, int i, double pct)
{
	const uint32_t *b = h->bins + (size_t)i * QH_BINS;
	int64_t target, acc = 0;

	if (h->count == 0)
		return 1.0;
	target = (int64_t)ceil(pct / 100.0 * (double)h->count);
	if (target < 1)
		target = 1;
	for (int k = 0; k < QH_BINS; k++) {
		acc += b[k];
		if (acc >= target)
			return k == 0 ? 1.0 : pow(QH_RATIO, k + 0.5);
	}
	return pow(QH_RATIO, QH_BINS);
}

/* ---- parallel placement of the layers of one decision -------------------- */

struct decide {
	const struct analyze_replay_cfg *cfg;
	int layers, experts, P;
	const double *heat, *episodes; /* [L*E], [Ne * L*E] */
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
	int first, step;
	double *ep;
	int rc;
	struct util_err err;
};

static void *decide_worker(void *arg)
{
	struct decide_job *j = arg;
	struct decide *d = j->d;
	const struct analyze_replay_cfg *c = d->cfg;
	int E = d->experts, P = d->P, Ne = c->episodes;

	for (int l = j->first; l < d->layers; l += j->step) {
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
			.seed = c->seed + (uint64_t)l,
		};
		if ((j->rc = analyze_place(c->algo, &in, next, &j->err))) {
			util_err_prefix(&j->err, "layer %d: ", l);
			return NULL;
		}
	}
	return NULL;
}

static int decide_run(struct decide *d, int threads)
{
	struct decide_job jobs[2];
	pthread_t tid;
	int started = 0;
	double t0 = util_now();
	int Ne = d->cfg->episodes, E = d->experts;

	if (threads < 1)
		threads = 1;
	if (threads > 2)
		threads = 2;
	for (int i = 0; i < threads; i++) {
		jobs[i] = (struct decide_job){ .d = d, .first = i, .step = threads,
					       .ep = d->ep_buf + (size_t)i * (size_t)(Ne ? Ne : 1) * E };
		jobs[i].err.msg[0] = 0;
	}
	if (threads == 2 && pthread_create(&tid, NULL, decide_worker, &jobs[1]) == 0)
		started = 1;
	else
		jobs[0].step = 1;
	decide_worker(&jobs[0]);
	if (started)
		pthread_join(tid, NULL);
	d->seconds = util_now() - t0;
	for (int i = 0; i < (started ? 2 : 1); i++)
		if (jobs[i].rc) {
			d->rc = jobs[i].rc;
			d->err = jobs[i].err;
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

/* ---- read-ahead ---------------------------------------------------------
 * Without storing, the connection is only read, so a second thread reads
 * and decodes the steps (store_iter_next) into a ring of RA_SLOTS step
 * buffers while this one scores them. */
#define RA_SLOTS 8

struct ra {
	struct store_iter *it;
	size_t cells;
	struct store_step slot[RA_SLOTS];
	int head, count;   /* next slot to hand out, filled slots */
	int done, rc;      /* the iterator has ended (rc: its last return) */
	int stop;          /* the reader must stop */
	int held;          /* the consumer holds slot[head] */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t tid;
	int running;
};

static void *ra_main(void *arg)
{
	struct ra *a = arg;
	struct store_step st;

	for (;;) {
		int rc = store_iter_next(a->it, &st);
		pthread_mutex_lock(&a->mu);
		if (rc != 1) {
			a->done = 1;
			a->rc = rc;
			pthread_cond_broadcast(&a->cv);
			pthread_mutex_unlock(&a->mu);
			return NULL;
		}
		while (a->count == RA_SLOTS && !a->stop)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop) {
			pthread_mutex_unlock(&a->mu);
			return NULL;
		}
		/* the slot is free: neither filled nor held */
		struct store_step *d = &a->slot[(a->head + a->count) % RA_SLOTS];
		uint32_t *c = d->counts;
		pthread_mutex_unlock(&a->mu);
		*d = st;
		d->counts = c;
		memcpy(c, st.counts, a->cells * sizeof(uint32_t));
		pthread_mutex_lock(&a->mu);
		a->count++;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
	}
}

/* 0 with the reader running, -1 when it cannot start (then read inline). */
static int ra_start(struct ra *a, struct store_iter *it, size_t cells)
{
	memset(a, 0, sizeof(*a));
	a->it = it;
	a->cells = cells;
	for (int i = 0; i < RA_SLOTS; i++)
		if (!(a->slot[i].counts = malloc(cells * sizeof(uint32_t)))) {
			for (int j = 0; j < i; j++)
				free(a->slot[j].counts);
			return -1;
		}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->tid, NULL, ra_main, a)) {
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->cv);
		for (int i = 0; i < RA_SLOTS; i++)
			free(a->slot[i].counts);
		return -1;
	}
	a->running = 1;
	return 0;
}

/* As store_iter_next: 1 and *st (valid until the next call), 0 at the end,
 * or the iterator's error. */
static int ra_next(struct ra *a, struct store_step *st)
{
	int rc;

	pthread_mutex_lock(&a->mu);
	if (a->held) { /* give the last step's slot back */
		a->held = 0;
		a->head = (a->head + 1) % RA_SLOTS;
		a->count--;
		pthread_cond_broadcast(&a->cv);
	}
	while (a->count == 0 && !a->done)
		pthread_cond_wait(&a->cv, &a->mu);
	if (a->count > 0) {
		*st = a->slot[a->head];
		a->held = 1;
		rc = 1;
	} else {
		rc = a->rc;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static void ra_stop(struct ra *a)
{
	if (!a->running)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->tid, NULL);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	for (int i = 0; i < RA_SLOTS; i++)
		free(a->slot[i].counts);
	a->running = 0;
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

int analyze_replay_run(struct store *s, const struct store_run *run,
		       const struct analyze_replay_cfg *cfg, struct analyze_replay_out *out,
		       struct util_err *err)
{
	const int L = run->layers, E = run->experts, R = cfg->ranks, S = cfg->slots, P = R * S;
	const int Ne = cfg->episodes;
	const size_t LE = (size_t)L * (size_t)E, LP = (size_t)L * (size_t)P;
	int64_t N = 0, K = cfg->interval, W = cfg->window, D = cfg->delay;
	struct ckpt *ck = NULL;
	size_t nck = 0;
	int32_t *cur = NULL, *next = NULL, *pending = NULL;
	int *cnt = NULL, *base_cnt = NULL;
	double *w = NULL, *bw = NULL; /* [L*P] slot weights, in force and baseline */
	uint64_t *prefix = NULL;
	double *heat = NULL, *episodes = NULL, *ep_buf = NULL, *load = NULL;
	double *lmax = NULL, *lmean = NULL, *bmax = NULL, *before = NULL, *after = NULL;
	uint8_t *want = NULL, *pend_layers = NULL;
	int64_t *ev_moves = NULL, *ev_bytes = NULL, *send = NULL, *recv = NULL;
	int64_t *psend = NULL, *precv = NULL;
	struct qhist qh = { 0 }, qb = { 0 }, qo = { 0 }, qob = { 0 };
	struct store_iter *it = NULL;
	struct ra ra = { 0 };
	struct store_step st;
	int64_t pending_eff = -1, ord = 0;
	size_t pending_ev = 0;
	double hidden = 0, t0 = util_now(), dense_s = 0;
	int rc = 0, in_tx = 0;
	struct analyze_deploy dep;

	memset(out, 0, sizeof(*out));
	out->layers = L;
	if (cfg->deploy) {
		dep = *cfg->deploy;
	} else { /* one node at one link, no memory floor: the caller's three figures */
		memset(&dep, 0, sizeof(dep));
		dep.ranks = R;
		dep.ranks_per_node = R;
		dep.expert_bytes = cfg->expert_bytes;
		dep.intra_gbps = dep.inter_gbps = cfg->gbytes_per_s;
		dep.sec_per_token = cfg->sec_per_token;
	}
	const int timed = dep.sec_per_token > 0 || dep.sec_per_expert > 0;
	const int topk = run->topk > 0 ? run->topk : dep.topk > 0 ? dep.topk : 1;
	/* ---- validate ---- */
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
	if (cfg->pay && !(dep.sec_per_token > 0 && dep.intra_gbps > 0 && dep.inter_gbps > 0 &&
			  dep.expert_bytes))
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
	if (Ne && W < Ne)
		return util_err_set(err, UTIL_EUSAGE,
				    "--window %lld is shorter than --episodes %d", (long long)W, Ne);
	if ((int64_t)P < E)
		return util_err_set(err, UTIL_EUSAGE, "%d ranks x %d slots cannot hold %d experts",
				    R, S, E);
	for (int l = 0; l < L; l++)
		if ((rc = analyze_placement_check(cfg->start + (size_t)l * P, E, R, S, 0, err)))
			return util_err_prefix(err, "start placement, layer %d: ", l);
	if ((rc = analyze_step_count(s, run, cfg->from, cfg->to, cfg->phase_mask, &N, err)))
		return rc;
	if (N == 0)
		return util_err_set(err, UTIL_EUSAGE, "no steps of run '%s' in the chosen range",
				    run->name);
	if (W > N)
		return util_err_set(err, UTIL_EUSAGE,
				    "--window %lld is longer than the trace (%lld steps selected)",
				    (long long)W, (long long)N);

	/* ---- checkpoints: every ordinal a decision reads ---- */
	{
		size_t cap = 0;
		int64_t *ords = NULL;
		for (int64_t t = K; t + D < N; t += K) {
			size_t need = (size_t)Ne + 2;
			if (nck + need > cap) {
				cap = (nck + need) * 2;
				int64_t *no = realloc(ords, cap * sizeof(*no));
				if (!no) {
					free(ords);
					return util_err_set(err, UTIL_ENOMEM, "out of memory");
				}
				ords = no;
			}
			ords[nck++] = t;
			ords[nck++] = win_start(t, W);
			for (int k = 1; k < Ne; k++)
				ords[nck++] = ep_bound(t, W, k, Ne);
		}
		if (nck)
			qsort(ords, nck, sizeof(*ords), cmp_i64);
		size_t u = 0;
		for (size_t i = 0; i < nck; i++)
			if (u == 0 || ords[i] != ords[u - 1])
				ords[u++] = ords[i];
		nck = u;
		ck = calloc(nck ? nck : 1, sizeof(*ck));
		if (!ck) {
			free(ords);
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < nck; i++)
			ck[i].ord = ords[i];
		free(ords);
	}

	cur = malloc(LP * sizeof(int32_t));
	next = malloc(LP * sizeof(int32_t));
	pending = malloc(LP * sizeof(int32_t));
	cnt = malloc(LE * sizeof(int));
	w = malloc(LP * sizeof(double));
	bw = malloc(LP * sizeof(double));
	base_cnt = malloc(LE * sizeof(int));
	prefix = calloc(LE, sizeof(uint64_t));
	heat = malloc(LE * sizeof(double));
	episodes = Ne ? malloc((size_t)Ne * LE * sizeof(double)) : NULL;
	ep_buf = malloc(2 * (size_t)(Ne ? Ne : 1) * (size_t)E * sizeof(double));
	load = malloc((size_t)R * sizeof(double));
	lmax = malloc((size_t)L * sizeof(double));
	lmean = malloc((size_t)L * sizeof(double));
	bmax = malloc((size_t)L * sizeof(double));
	before = malloc((size_t)L * sizeof(double));
	after = malloc((size_t)L * sizeof(double));
	want = malloc((size_t)L);
	pend_layers = calloc((size_t)L, 1);
	ev_moves = malloc((size_t)L * sizeof(int64_t));
	ev_bytes = malloc((size_t)L * sizeof(int64_t));
	send = malloc(2 * (size_t)R * sizeof(int64_t)); /* [intra | inter] per rank */
	recv = malloc(2 * (size_t)R * sizeof(int64_t));
	psend = malloc(2 * (size_t)R * sizeof(int64_t));
	precv = malloc(2 * (size_t)R * sizeof(int64_t));
	out->layer = calloc((size_t)L, sizeof(*out->layer));
	if (!cur || !next || !pending || !cnt || !w || !bw || !base_cnt || !prefix || !heat ||
	    (Ne && !episodes) || !ep_buf || !load || !lmax || !lmean || !bmax || !before ||
	    !after || !want || !pend_layers || !ev_moves || !ev_bytes || !send || !recv ||
	    !psend || !precv ||
	    !out->layer || qh_init(&qh, L) || qh_init(&qb, L) || qh_init(&qo, 1) ||
	    qh_init(&qob, 1)) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	if (cfg->series) {
		out->series_step = malloc((size_t)N * sizeof(int64_t));
		out->series_imbalance = malloc((size_t)N * sizeof(double));
		out->series_base = malloc((size_t)N * sizeof(double));
		if (!out->series_step || !out->series_imbalance || !out->series_base) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
	}
	memcpy(cur, cfg->start, LP * sizeof(int32_t));
	for (int l = 0; l < L; l++) {
		analyze_replicas(cur + (size_t)l * P, P, E, cnt + (size_t)l * E);
		memcpy(base_cnt + (size_t)l * E, cnt + (size_t)l * E, (size_t)E * sizeof(int));
		slot_weights(cur + (size_t)l * P, P, cnt + (size_t)l * E, w + (size_t)l * P);
		memcpy(bw + (size_t)l * P, w + (size_t)l * P, (size_t)P * sizeof(double));
	}

	/* ---- the replay row, in one transaction with everything else ---- */
	struct store_replay *sum = &out->sum;
	sum->run = run->id;
	snprintf(sum->algo, sizeof(sum->algo), "%s", cfg->algo->name);
	sum->ranks = R;
	sum->slots = S;
	sum->interval = K;
	sum->window = W;
	sum->delay = D;
	sum->threshold = cfg->threshold;
	sum->episodes = Ne;
	sum->max_moves = cfg->max_moves;
	sum->pay = cfg->pay;
	sum->ranks_per_node = dep.ranks_per_node;
	snprintf(sum->quant, sizeof(sum->quant), "%s",
		 dep.expert_bytes ? analyze_quant_name(dep.quant) : "");
	snprintf(sum->link_intra, sizeof(sum->link_intra), "%s",
		 dep.link_intra ? dep.link_intra : "");
	snprintf(sum->link_inter, sizeof(sum->link_inter), "%s",
		 dep.link_inter ? dep.link_inter : "");
	snprintf(sum->hardware, sizeof(sum->hardware), "%s", dep.hw ? dep.hw->name : "");
	snprintf(sum->engine, sizeof(sum->engine), "%s", cfg->engine ? cfg->engine : "");
	sum->step_ms = dep.step_seconds * 1e3;
	snprintf(sum->params, sizeof(sum->params), "%s", cfg->params_json ? cfg->params_json : "{}");
	if (cfg->store) {
		if (store_begin(s) || (in_tx = 1, store_replay_add(s, sum))) {
			rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
			goto out;
		}
	}

	if ((rc = store_iter_new(s, run, cfg->from, cfg->to, cfg->phase_mask, &it))) {
		rc = util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	size_t ci = 0; /* next checkpoint to fill */
	if (nck && ck[0].ord == 0) {
		ck[0].sum = calloc(LE, sizeof(uint64_t));
		if (!ck[0].sum) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		ci = 1;
	}
	/* read ahead on a second thread when nothing is written */
	if (!cfg->store && cfg->threads > 1)
		ra_start(&ra, it, LE);
	while ((rc = ra.running ? ra_next(&ra, &st) : store_iter_next(it, &st)) == 1) {
		/* a pending placement takes effect before this step runs */
		if (pending_eff == ord) {
			for (int l = 0; l < L; l++)
				if (pend_layers[l]) {
					memcpy(cur + (size_t)l * P, pending + (size_t)l * P,
					       (size_t)P * sizeof(int32_t));
					analyze_replicas(cur + (size_t)l * P, P, E, cnt + (size_t)l * E);
					slot_weights(cur + (size_t)l * P, P, cnt + (size_t)l * E,
						     w + (size_t)l * P);
				}
			out->events[pending_ev].effective_step = st.step;
			/* overlapped transfer: hidden behind the delay's MoE time */
			double tr = out->events[pending_ev].transfer_seconds;
			sum->net_overlap_seconds -= tr > hidden ? tr - hidden : 0;
			pending_eff = -1;
		}
		/* score */
		double smax = 0, smean = 0, sbase = 0, stime = 0, sbtime = 0;
		for (int l = 0; l < L; l++) {
			const uint32_t *h = st.counts + (size_t)l * E;
			double tot, btot;
			if (timed) {
				double t, bt;
				lmax[l] = layer_max_t(h, cur + (size_t)l * P, w + (size_t)l * P, R, S,
						      dep.sec_per_token, dep.sec_per_expert, &tot, &t);
				bmax[l] = layer_max_t(h, cfg->start + (size_t)l * P,
						      bw + (size_t)l * P, R, S, dep.sec_per_token,
						      dep.sec_per_expert, &btot, &bt);
				stime += t;
				sbtime += bt;
			} else {
				lmax[l] = layer_max_w(h, cur + (size_t)l * P, w + (size_t)l * P, R, S,
						      &tot);
				bmax[l] = layer_max_w(h, cfg->start + (size_t)l * P,
						      bw + (size_t)l * P, R, S, &btot);
			}
			lmean[l] = tot / R;
			qh_add(&qh, l, tot > 0 ? lmax[l] / lmean[l] : 1.0);
			qh_add(&qb, l, tot > 0 ? bmax[l] / lmean[l] : 1.0);
			smax += lmax[l];
			sbase += bmax[l];
			smean += lmean[l];
		}
		for (size_t i = 0; i < LE; i++)
			prefix[i] += st.counts[i];
		qh.count++;
		qb.count++;
		qh_add(&qo, 0, smean > 0 ? smax / smean : 1.0);
		qh_add(&qob, 0, smean > 0 ? sbase / smean : 1.0);
		qo.count++;
		qob.count++;
		{
			/* tokens of the batch: recorded, else routed tokens of a layer / top-k */
			double tk = st.tokens > 0 ? (double)st.tokens : smean * R / L / topk;
			sum->tokens += (int64_t)(tk + 0.5);
			if (timed) {
				sum->saved_seconds += sbtime - stime;
				sum->moe_seconds += stime;
				sum->baseline_moe_seconds += sbtime;
				dense_s += analyze_dense_seconds(&dep, tk);
			}
		}
		if (cfg->series) {
			if (out->n_series == (size_t)N) {
				rc = util_err_set(err, UTIL_ESTATE, "replay: more steps than counted");
				goto out;
			}
			int sl = cfg->series_layer;
			double num = sl >= 0 && sl < L ? lmax[sl] : smax;
			double bnum = sl >= 0 && sl < L ? bmax[sl] : sbase;
			double den = sl >= 0 && sl < L ? lmean[sl] : smean;
			out->series_step[out->n_series] = st.step;
			out->series_imbalance[out->n_series] = den > 0 ? num / den : 1.0;
			out->series_base[out->n_series] = den > 0 ? bnum / den : 1.0;
			out->n_series++;
		}
		if (pending_eff >= 0)
			hidden += stime;
		if (cfg->store && store_replay_step_add(s, sum->id, st.step, L, lmax, lmean, bmax)) {
			rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
			goto out;
		}
		ord++;
		/* checkpoint after `ord` steps */
		if (ci < nck && ck[ci].ord == ord) {
			ck[ci].sum = malloc(LE * sizeof(uint64_t));
			if (!ck[ci].sum) {
				rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
				goto out;
			}
			memcpy(ck[ci].sum, prefix, LE * sizeof(uint64_t));
			ci++;
		}
		if (ord % K != 0 || ord + D >= N)
			continue;

		/* ---- a decision on the window [ws, ord) ---- */
		int64_t ws = win_start(ord, W);
		struct ckpt *a = ckpt_find(ck, nck, ws), *b = ckpt_find(ck, nck, ord);
		if (!a || !b || !a->sum || !b->sum) {
			rc = util_err_set(err, UTIL_ESTATE, "replay: missing window checkpoint");
			goto out;
		}
		for (size_t i = 0; i < LE; i++)
			heat[i] = (double)(b->sum[i] - a->sum[i]);
		for (int k = 0; k < Ne; k++) {
			struct ckpt *x = ckpt_find(ck, nck, ep_bound(ord, W, k, Ne));
			struct ckpt *y = ckpt_find(ck, nck, ep_bound(ord, W, k + 1, Ne));
			if (!x || !y || !x->sum || !y->sum) {
				rc = util_err_set(err, UTIL_ESTATE, "replay: missing episode checkpoint");
				goto out;
			}
			double *dst = episodes + (size_t)k * LE;
			for (size_t i = 0; i < LE; i++)
				dst[i] = (double)(y->sum[i] - x->sum[i]);
		}
		for (int l = 0; l < L; l++) {
			analyze_device_load(heat + (size_t)l * E, E, cur + (size_t)l * P, R, S,
					    cnt + (size_t)l * E, load);
			before[l] = analyze_imbalance(load, R);
			want[l] = cfg->threshold == 0 || before[l] > cfg->threshold;
		}
		struct decide d = { .cfg = cfg, .layers = L, .experts = E, .P = P, .heat = heat,
				    .episodes = episodes, .cur = cur, .next = next, .want = want,
				    .ep_buf = ep_buf };
		if (decide_run(&d, cfg->threads)) {
			*err = d.err;
			rc = d.rc;
			goto out;
		}
		out->algo_seconds += d.seconds;
		if (cfg->pay &&
		    (rc = pay_filter(&dep, L, E, R, S, heat, cur, next, (double)(ord - ws),
				     (double)(K < N - ord - D ? K : N - ord - D), load, send, recv,
				     psend, precv, err)))
			goto out;
		/* moves and the event */
		struct store_replay_event ev = { 0 };
		int64_t inter = 0;
		memset(send, 0, 2 * (size_t)R * sizeof(int64_t));
		memset(recv, 0, 2 * (size_t)R * sizeof(int64_t));
		for (int l = 0; l < L; l++) {
			const int32_t *o = cur + (size_t)l * P, *n = next + (size_t)l * P;
			ev_moves[l] = 0;
			pend_layers[l] = memcmp(o, n, (size_t)P * sizeof(int32_t)) != 0;
			after[l] = before[l];
			if (!pend_layers[l])
				continue;
			int64_t m = analyze_transfer_layer_tiers(o, n, E, R, S, dep.ranks_per_node,
								 NULL, send, recv, &inter, err);
			if (m < 0) {
				rc = (int)m;
				goto out;
			}
			ev_moves[l] = m;
			analyze_device_load(heat + (size_t)l * E, E, n, R, S, NULL, load);
			after[l] = analyze_imbalance(load, R);
			ev.layers++;
			ev.moves += m;
			out->layer[l].moves += m;
		}
		for (int l = 0; l < L; l++)
			ev_bytes[l] = ev_moves[l] * (int64_t)dep.expert_bytes;
		ev.bytes = ev.moves * (int64_t)dep.expert_bytes;
		ev.bytes_inter = inter * (int64_t)dep.expert_bytes;
		ev.transfer_seconds = analyze_transfer_seconds_tiers(
			send, recv, R, dep.expert_bytes, dep.intra_gbps, dep.inter_gbps,
			&ev.transfer_intra_seconds, &ev.transfer_inter_seconds);
		ev.algo_seconds = d.seconds;
		ev.step = st.step;
		ev.effective_step = -1;
		if (ev.layers == 0)
			continue; /* nothing changes: no event */
		ev.event = (int64_t)out->n_events;
		struct store_replay_event *ne =
			realloc(out->events, (out->n_events + 1) * sizeof(*ne));
		int64_t *nm = realloc(out->event_moves, (out->n_events + 1) * (size_t)L * sizeof(int64_t));
		if (ne)
			out->events = ne;
		if (nm)
			out->event_moves = nm;
		if (!ne || !nm) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		out->events[out->n_events] = ev;
		memcpy(out->event_moves + out->n_events * (size_t)L, ev_moves,
		       (size_t)L * sizeof(int64_t));
		if (cfg->store &&
		    store_replay_event_add(s, sum->id, &ev, L, ev_moves, ev_bytes, before, after)) {
			rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
			goto out;
		}
		pending_ev = out->n_events++;
		memcpy(pending, next, LP * sizeof(int32_t));
		pending_eff = ord + D;
		hidden = 0;
		sum->events++;
		sum->moves += ev.moves;
		sum->bytes += ev.bytes;
		sum->bytes_inter += ev.bytes_inter;
		sum->transfer_seconds += ev.transfer_seconds;
		/* checkpoints no later decision reads */
		for (size_t i = 0; i < nck; i++)
			if (ck[i].sum && ck[i].ord < win_start(ord + K, W)) {
				free(ck[i].sum);
				ck[i].sum = NULL;
			}
	}
	if (rc < 0) {
		rc = util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	rc = 0;
	sum->steps = ord;
	sum->imbalance_mean = qo.sum[0] / (double)ord;
	sum->baseline_imbalance_mean = qob.sum[0] / (double)ord;
	sum->imbalance_p99 = qh_pct(&qo, 0, 99);
	sum->baseline_imbalance_p99 = qh_pct(&qob, 0, 99);
	sum->net_stop_seconds = sum->saved_seconds - sum->transfer_seconds;
	sum->net_overlap_seconds += sum->saved_seconds;
	/* step time: measured, else estimated when the model gives the rest of
	 * the step (without one only MoE time is known) */
	if (timed && (dep.step_seconds > 0 || dep.expert_bytes))
		sum->baseline_step_seconds = dep.step_seconds > 0
						     ? dep.step_seconds * (double)ord
						     : dense_s + sum->baseline_moe_seconds;
	for (int l = 0; l < L; l++) {
		struct analyze_replay_layer *ly = &out->layer[l];
		ly->mean = qh.sum[l] / (double)ord;
		ly->base_mean = qb.sum[l] / (double)ord;
		ly->p99 = qh_pct(&qh, l, 99);
		ly->base_p99 = qh_pct(&qb, l, 99);
		if (cfg->store && store_replay_layer_add(s, sum->id, l, ly->mean, ly->p99,
							 ly->base_mean, ly->base_p99, ly->moves)) {
			rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
			goto out;
		}
	}
	if (cfg->store) {
		/* effective steps are known only now */
		for (size_t i = 0; i < out->n_events; i++) {
			if (out->events[i].effective_step < 0)
				continue;
			if (store_replay_event_effective(s, sum->id, out->events[i].event,
							 out->events[i].effective_step)) {
				rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
				goto out;
			}
		}
		if (store_replay_finish(s, sum) || store_commit(s)) {
			rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
			goto out;
		}
		in_tx = 0;
	}
	out->wall_seconds = util_now() - t0;
out:
	ra_stop(&ra);
	if (in_tx)
		store_rollback(s);
	store_iter_free(it);
	for (size_t i = 0; i < nck; i++)
		free(ck[i].sum);
	free(ck);
	free(cur);
	free(next);
	free(pending);
	free(cnt);
	free(base_cnt);
	free(w);
	free(bw);
	free(prefix);
	free(heat);
	free(episodes);
	free(ep_buf);
	free(load);
	free(lmax);
	free(lmean);
	free(bmax);
	free(before);
	free(after);
	free(want);
	free(pend_layers);
	free(ev_moves);
	free(ev_bytes);
	free(send);
	free(recv);
	free(psend);
	free(precv);
	qh_free(&qh);
	qh_free(&qb);
	qh_free(&qo);
	qh_free(&qob);
	if (rc)
		analyze_replay_release(out);
	return rc;
}

void analyze_replay_release(struct analyze_replay_out *out)
{
	free(out->layer);
	free(out->events);
	free(out->event_moves);
	free(out->series_step);
	free(out->series_imbalance);
	free(out->series_base);
	out->series_step = NULL;
	out->series_imbalance = out->series_base = NULL;
	out->n_series = 0;
	out->layer = NULL;
	out->events = NULL;
	out->event_moves = NULL;
	out->n_events = 0;
}

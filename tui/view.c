/*
 * view.c: the data behind a frame of `moetrace top`, with no ncurses.
 * Start at tui_view_poll(): it asks the database what is new since the
 * last poll (an indexed range query, so following a long trace costs the
 * same as a short one), moves the window [to - W + 1, to], subtracts the
 * steps that left it and reads the ones that entered it, within a time
 * budget and without ever waiting on a lock.  The window's steps, and the
 * W steps before it, are kept decoded in a ring, so a step leaving either
 * is subtracted without reading it again.  tui_view_work() then refits
 * the chosen algorithm on the W steps before the window as `place --steps`
 * fits them (the flagship on its forecast from their blocks and history,
 * analyze_forecast_read; the others on their summed heat), layer
 * by layer under a time budget, when the settings change or the window
 * end has moved far enough: "after" is that placement scored on the
 * window, steps it was not fitted on, as a replay scores a rebalance.
 *
 * Device loads assume a replicated expert's tokens split evenly among its
 * replicas (analyze/analyze.h).
 */
#include "tui/tui_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NO_STEP INT64_MIN
/* Seconds between looks at the deployed placement while following. */
#define DEPLOYED_EVERY 2.0
/* A following view with no new data for this long is idle. */
#define IDLE_AFTER 5.0

struct tui_view {
	struct store *s;
	struct store_run run;
	int L, E, R, S, P;
	unsigned phase_mask;
	int once;
	const struct analyze_algo *algo;
	char errmsg[512];

	/* placement in force: the recorded deployed one, else static */
	int32_t *cur;      /* [L * P] */
	int *cnt;          /* [L * E] replicas under cur */
	int deployed;
	int64_t deployed_from;
	int64_t dep_seen; /* newest deployed step looked at (it may not fit the layout) */
	double deployed_checked;

	/* the ring, oldest at head: the flagship's history before the W steps
	 * before the window (the oldest nhist entries, kept while the flagship
	 * is chosen and memory allows), those W steps (the next nprev, summed
	 * in psum) and the window's own (summed in sum).  Every selected step
	 * from ring_lo to the newest entry is in it. */
	int W, cap, head, n, nprev, nhist;
	int64_t ring_lo;
	int64_t *rstep;
	double *rtime;
	unsigned char *rphase; /* enum store_phase of each step */
	uint32_t *rcounts; /* [cap * L * E] */
	float *rimb;       /* [cap * L] per-step imbalance under cur */
	uint64_t *sum;     /* [L * E] heat summed over the window */
	uint64_t *psum;    /* [L * E] heat summed over the W steps before it */
	int64_t from, to;
	int follow;
	int64_t target_to;
	int64_t next_read;
	int rebuild, loading;

	/* what the database holds */
	int64_t counted_upto, db_steps, db_first, db_last;
	double db_last_time;
	double last_arrival;
	int grew; /* steps arrived after the first look */
	int state;

	/* "after": the algorithm's placement per layer */
	unsigned gen, *lgen;
	int need_bump;
	int *has_after;
	int32_t *after;    /* [L * P] */
	int *acnt;         /* [L * E] */
	int64_t *moves, *afrom, *ato;
	int64_t fit_to;
	double fit_time;
	int64_t refit_steps; /* 0: W / 4 */
	double refit_interval;
	/* the flagship's input for the steps it is fitted on, read when they
	 * change (fc_from..fc_to; fc_from > fc_to: none) */
	struct analyze_forecast fc;
	int64_t fc_from, fc_to;

	struct tui_layer_row *rows;
	int rows_dirty;
	unsigned version; /* tui_view_version */
	double *heat, *load; /* scratch [E], [R] */
	int64_t *send, *recv; /* scratch [R] */
};

static void set_errmsg(struct tui_view *v, const char *fmt, ...) UTIL_PRINTF(2, 3);

static void set_errmsg(struct tui_view *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->errmsg, sizeof(v->errmsg), fmt, ap);
	va_end(ap);
}

/* What a frame shows may have changed (the rows are computed again). */
static void touch(struct tui_view *v)
{
	v->rows_dirty = 1;
	v->version++;
}

unsigned tui_view_version(const struct tui_view *v)
{
	return v->version;
}

const char *tui_view_errmsg(const struct tui_view *v)
{
	return v->errmsg;
}

const char *tui_sort_name(int sort)
{
	static const char *const names[TUI_SORT_COUNT] = { "layer", "now", "after", "gain",
							   "moves" };
	return sort >= 0 && sort < TUI_SORT_COUNT ? names[sort] : "?";
}

const char *tui_state_name(int state)
{
	static const char *const names[] = { "empty", "loading", "live",	"idle",
					     "scrub", "waiting", "error" };
	return state >= 0 && state < (int)UTIL_ARRAY_SIZE(names) ? names[state] : "?";
}

/* ---- sorting ---------------------------------------------------------------- */

static int sort_key;

static int cmp_rows(const void *pa, const void *pb)
{
	const struct tui_layer_row *a = pa, *b = pb;
	double ka = 0, kb = 0;

	switch (sort_key) {
	case TUI_SORT_NOW: ka = a->now; kb = b->now; break;
	case TUI_SORT_AFTER: ka = a->after; kb = b->after; break;
	case TUI_SORT_GAIN: ka = a->now - a->after; kb = b->now - b->after; break;
	case TUI_SORT_MOVES: ka = (double)a->moves; kb = (double)b->moves; break;
	default: break;
	}
	/* a layer not scored (NAN) goes last, whichever the direction */
	if (isnan(ka) != isnan(kb))
		return isnan(ka) ? 1 : -1;
	if (isnan(ka))
		ka = kb = 0;
	if (ka != kb)
		return ka > kb ? -1 : 1; /* largest first */
	return (a->layer > b->layer) - (a->layer < b->layer);
}

void tui_rows_sort(struct tui_layer_row *rows, int n, int sort)
{
	sort_key = sort; /* qsort has no context argument; the TUI is single-threaded */
	if (n > 1)
		qsort(rows, (size_t)n, sizeof(*rows), cmp_rows);
}

/* ---- construction ------------------------------------------------------------- */

/* Bytes of one step in the ring. */
static size_t step_bytes(const struct tui_view *v)
{
	return (size_t)v->L * v->E * sizeof(uint32_t) + (size_t)v->L * sizeof(float) + 16;
}

static int window_cap(const struct tui_view *v, int w)
{
	/* the ring holds two windows' steps */
	size_t per = 2 * step_bytes(v);
	size_t most = TUI_WINDOW_BYTES / per;

	if (most < TUI_WINDOW_MIN)
		most = TUI_WINDOW_MIN;
	if (w < TUI_WINDOW_MIN)
		w = TUI_WINDOW_MIN;
	return (size_t)w > most ? (int)most : w;
}

/* The ring's counts are tens of MiB touched a step at a time: in huge
 * pages where the kernel offers them, a few faults instead of thousands. */
static void huge_pages(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
	size_t skip = (size_t)(-(uintptr_t)p & 4095); /* to the first page boundary */

	if (len > skip && (len - skip) / 4096) /* advice: failing is harmless */
		madvise((char *)p + skip, (len - skip) & ~(size_t)4095, MADV_HUGEPAGE);
#else
	(void)p, (void)len;
#endif
}

/* Fails (UTIL_ENOMEM) rather than abort: the view also runs inside an
 * engine that serves metrics from libmoetrace. */
static int ring_alloc(struct tui_view *v)
{
	free(v->rstep);
	free(v->rtime);
	free(v->rphase);
	free(v->rcounts);
	free(v->rimb);
	/* room for the flagship's history too, in what the bound leaves */
	size_t most = TUI_WINDOW_BYTES / step_bytes(v), two = 2 * (size_t)v->W;
	size_t hist = (size_t)ANALYZE_FLAGSHIP_HISTORY * v->W;
	if (hist > (most > two ? most - two : 0))
		hist = most > two ? most - two : 0;
	v->cap = (int)(two + hist);
	v->rstep = calloc((size_t)v->cap, sizeof(int64_t));
	v->rtime = calloc((size_t)v->cap, sizeof(double));
	v->rphase = calloc((size_t)v->cap, 1);
	v->rcounts = calloc((size_t)v->cap * v->L * v->E, sizeof(uint32_t));
	if (v->rcounts)
		huge_pages(v->rcounts, (size_t)v->cap * v->L * v->E * sizeof(uint32_t));
	v->rimb = calloc((size_t)v->cap * v->L, sizeof(float));
	v->head = v->n = v->nprev = v->nhist = 0;
	v->ring_lo = INT64_MAX; /* nothing read yet */
	return v->rstep && v->rtime && v->rphase && v->rcounts && v->rimb ? 0 : UTIL_ENOMEM;
}

int tui_view_new(struct store *s, const struct store_run *run, const struct tui_view_cfg *cfg,
		 struct tui_view **out, struct util_err *err)
{
	struct tui_view *v;
	size_t LE = (size_t)run->layers * run->experts;
	int rc;

	*out = NULL;
	if (cfg->ranks <= 0 || cfg->slots <= 0 || (int64_t)cfg->ranks * cfg->slots < run->experts)
		return util_err_set(err, UTIL_EUSAGE, "%d ranks x %d slots cannot hold %d experts",
				    cfg->ranks, cfg->slots, run->experts);
	if (!(v = calloc(1, sizeof(*v))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	v->s = s;
	v->run = *run;
	v->L = run->layers;
	v->E = run->experts;
	v->R = cfg->ranks;
	v->S = cfg->slots;
	v->P = cfg->ranks * cfg->slots;
	v->phase_mask = cfg->phase_mask;
	v->algo = cfg->algo;
	if (!v->algo)
		v->algo = analyze_algo_find(ANALYZE_FLAGSHIP);
	if (!v->algo)
		v->algo = analyze_algo_at(0);
	v->W = window_cap(v, cfg->window > 0 ? cfg->window : TUI_WINDOW_DEFAULT);
	rc = ring_alloc(v);
	v->sum = calloc(LE, sizeof(uint64_t));
	v->psum = calloc(LE, sizeof(uint64_t));
	v->cur = calloc((size_t)v->L * v->P, sizeof(int32_t));
	v->cnt = calloc(LE, sizeof(int));
	v->after = calloc((size_t)v->L * v->P, sizeof(int32_t));
	v->acnt = calloc(LE, sizeof(int));
	v->lgen = calloc((size_t)v->L, sizeof(unsigned));
	v->has_after = calloc((size_t)v->L, sizeof(int));
	v->moves = calloc((size_t)v->L, sizeof(int64_t));
	v->afrom = calloc((size_t)v->L, sizeof(int64_t));
	v->ato = calloc((size_t)v->L, sizeof(int64_t));
	v->rows = calloc((size_t)v->L, sizeof(*v->rows));
	v->heat = calloc((size_t)v->E, sizeof(double));
	v->load = calloc((size_t)v->R, sizeof(double));
	v->send = calloc((size_t)v->R, sizeof(int64_t));
	v->recv = calloc((size_t)v->R, sizeof(int64_t));
	if (rc || !v->sum || !v->psum || !v->cur || !v->cnt || !v->after || !v->acnt || !v->lgen ||
	    !v->has_after || !v->moves || !v->afrom || !v->ato || !v->rows || !v->heat ||
	    !v->load || !v->send || !v->recv) {
		tui_view_free(v);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	for (int l = 0; l < v->L; l++) {
		analyze_static_phy2log(v->E, v->R, v->S, v->cur + (size_t)l * v->P);
		analyze_replicas(v->cur + (size_t)l * v->P, v->P, v->E, v->cnt + (size_t)l * v->E);
	}
	v->follow = 1;
	v->target_to = NO_STEP;
	v->next_read = NO_STEP;
	v->counted_upto = NO_STEP;
	v->db_first = v->db_last = NO_STEP;
	v->from = v->to = NO_STEP;
	v->fit_to = NO_STEP;
	v->gen = 1;
	v->need_bump = 1;
	v->refit_interval = 5.0;
	v->fc_from = 1;
	v->fc_to = 0;
	v->deployed_checked = -1e9;
	v->dep_seen = NO_STEP;
	v->last_arrival = util_now();
	touch(v);
	/* A locked database must not stall the screen: fail at once, retry
	 * at the next poll. */
	store_busy_timeout(s, 0);
	*out = v;
	return 0;
}

void tui_view_free(struct tui_view *v)
{
	if (!v)
		return;
	free(v->rstep);
	free(v->rtime);
	free(v->rphase);
	free(v->rcounts);
	free(v->rimb);
	free(v->sum);
	free(v->psum);
	free(v->cur);
	free(v->cnt);
	free(v->after);
	free(v->acnt);
	free(v->lgen);
	free(v->has_after);
	free(v->moves);
	free(v->afrom);
	free(v->ato);
	free(v->rows);
	free(v->heat);
	free(v->load);
	free(v->send);
	free(v->recv);
	analyze_forecast_release(&v->fc);
	free(v);
}

/* ---- reading the database ------------------------------------------------------ */

static int is_busy(struct tui_view *v)
{
	return store_locked(v->s);
}

/* Counts the steps recorded since the last look; 0, 1 (busy) or < 0. */
static int query_new(struct tui_view *v)
{
	struct store_steps_news nw;

	if (store_steps_after(v->s, &v->run, v->counted_upto, &nw)) {
		int busy = is_busy(v);
		if (!busy)
			set_errmsg(v, "%s", store_errmsg(v->s));
		return busy ? 1 : UTIL_EDB;
	}
	if (nw.steps > 0) {
		v->grew = v->counted_upto != NO_STEP;
		if (v->db_first == NO_STEP)
			v->db_first = nw.first_step;
		v->db_last = nw.last_step;
		v->counted_upto = nw.last_step;
		v->db_steps += nw.steps;
		if (nw.last_time > v->db_last_time)
			v->db_last_time = nw.last_time;
		v->last_arrival = util_now();
	}
	return 0;
}

static void refresh_replicas(struct tui_view *v)
{
	for (int l = 0; l < v->L; l++)
		analyze_replicas(v->cur + (size_t)l * v->P, v->P, v->E, v->cnt + (size_t)l * v->E);
}

/* Looks up the placement in force at the window end; 1 when it changed,
 * UTIL_EPARSE (the store's message) when the recorded one is corrupt: the
 * other commands refuse it too, and falling back to static would show a
 * placement the engine does not run.  None recorded, or one recorded for
 * another layout than the one shown, is the static placement. */
static int check_deployed(struct tui_view *v, int64_t at)
{
	size_t bytes = (size_t)v->L * v->P * sizeof(int32_t);
	int32_t *p = malloc(bytes);
	int64_t eff = 0, last = 0;
	int rc, changed = 0;

	if (!p) {
		set_errmsg(v, "out of memory");
		return UTIL_ENOMEM;
	}
	v->deployed_checked = util_now();
	/* the cheap question first (an index lookup): did the step the
	 * placement in force took effect change? */
	rc = store_deployed_last(v->s, &v->run, at, &last);
	if (rc == 0 || rc == UTIL_ENOTFOUND) {
		int none = rc == UTIL_ENOTFOUND;
		if (none ? !v->deployed : last == v->dep_seen) {
			free(p);
			return 0;
		}
		v->dep_seen = none ? NO_STEP : last;
	}
	rc = store_deployed_at(v->s, &v->run, at, v->R, v->S, p, &eff);
	if (rc == 0) {
		if (!v->deployed || eff != v->deployed_from || memcmp(p, v->cur, bytes)) {
			memcpy(v->cur, p, bytes);
			v->deployed = 1;
			v->deployed_from = eff;
			changed = 1;
		}
	} else if (rc == UTIL_EPARSE) {
		v->dep_seen = NO_STEP; /* look again next time: still an error */
		free(p);
		return rc;
	} else if (rc == UTIL_ENOTFOUND || rc == UTIL_ERANGE) {
		/* none recorded, or recorded for another layout: the static one */
		if (v->deployed) {
			for (int l = 0; l < v->L; l++)
				analyze_static_phy2log(v->E, v->R, v->S, v->cur + (size_t)l * v->P);
			v->deployed = 0;
			changed = 1;
		}
	} /* busy or failing: keep what we had and look again later */
	free(p);
	if (changed) {
		refresh_replicas(v);
		v->need_bump = 1;
		touch(v);
	}
	return changed;
}

static void ring_reset(struct tui_view *v)
{
	v->head = v->n = v->nprev = v->nhist = 0;
	v->ring_lo = INT64_MAX; /* nothing read yet */
	v->fc_from = 1; /* the flagship's input is read again */
	v->fc_to = 0;
	memset(v->sum, 0, (size_t)v->L * v->E * sizeof(uint64_t));
	memset(v->psum, 0, (size_t)v->L * v->E * sizeof(uint64_t));
}

static int is_flagship(const struct tui_view *v)
{
	return analyze_algo_forecasts(v->algo);
}

static void ring_pop(struct tui_view *v)
{
	size_t LE = (size_t)v->L * v->E;
	const uint32_t *c = v->rcounts + (size_t)v->head * LE;

	if (v->nhist) {
		v->nhist--; /* summed nowhere */
	} else {
		uint64_t *from = v->nprev ? v->psum : v->sum;
		for (size_t i = 0; i < LE; i++)
			from[i] -= c[i];
		if (v->nprev)
			v->nprev--;
	}
	v->ring_lo = v->rstep[v->head] + 1;
	v->head = (v->head + 1) % v->cap;
	v->n--;
}

/* Moves the window's start to `from`: its steps before it join the
 * previous window, whose steps before from - W join the history (the
 * flagship's, up to ANALYZE_FLAGSHIP_HISTORY windows back) or leave the
 * ring. */
static int ring_shift(struct tui_view *v, int64_t from)
{
	size_t LE = (size_t)v->L * v->E;
	int keep_hist = is_flagship(v) && !v->once;
	int64_t back = (int64_t)(keep_hist ? 1 + ANALYZE_FLAGSHIP_HISTORY : 1) * v->W;
	int64_t keep = from < INT64_MIN + back ? INT64_MIN : from - back;
	int changed = 0;

	while (v->nhist + v->nprev < v->n) {
		int slot = (v->head + v->nhist + v->nprev) % v->cap;
		const uint32_t *c = v->rcounts + (size_t)slot * LE;
		if (v->rstep[slot] >= from)
			break;
		for (size_t i = 0; i < LE; i++) {
			v->sum[i] -= c[i];
			v->psum[i] += c[i];
		}
		v->nprev++;
		changed = 1;
	}
	while (v->nprev) {
		int slot = (v->head + v->nhist) % v->cap;
		const uint32_t *c = v->rcounts + (size_t)slot * LE;
		if (v->rstep[slot] >= from - v->W)
			break;
		for (size_t i = 0; i < LE; i++)
			v->psum[i] -= c[i];
		v->nprev--;
		v->nhist++;
		changed = 1;
	}
	while (v->nhist && v->rstep[v->head] < keep)
		ring_pop(v);
	return changed;
}

static void ring_push(struct tui_view *v, const struct store_step *st)
{
	size_t LE = (size_t)v->L * v->E;
	int slot;

	if (v->n == v->cap)
		ring_pop(v);
	slot = (v->head + v->n) % v->cap;
	v->rstep[slot] = st->step;
	v->rtime[slot] = st->time;
	v->rphase[slot] = (unsigned char)st->phase;
	memcpy(v->rcounts + (size_t)slot * LE, st->counts, LE * sizeof(uint32_t));
	for (size_t i = 0; i < LE; i++)
		v->sum[i] += st->counts[i];
	for (int l = 0; l < v->L; l++) {
		if (st->step < v->from) {
			/* a step before the window: only its heat is used (the
			 * history shows the window's steps) */
			v->rimb[(size_t)slot * v->L + l] = 0;
			continue;
		}
		double mx = analyze_device_load_u32(st->counts + (size_t)l * v->E, v->E,
						    v->cur + (size_t)l * v->P, v->R, v->S,
						    v->cnt + (size_t)l * v->E, v->load);
		/* a layer without tokens in the step is not scored there
		 * (docs/cli.md): no point in its history, not a perfect 1.0 */
		double tot = 0;
		for (int r = 0; r < v->R; r++)
			tot += v->load[r];
		v->rimb[(size_t)slot * v->L + l] = (float)analyze_scored_imbalance(mx, tot / v->R);
	}
	v->n++;
}

/* Steps in the window itself (the ring's newest n - nhist - nprev). */
static int win_n(const struct tui_view *v)
{
	return v->n - v->nhist - v->nprev;
}

static int64_t ring_last(const struct tui_view *v)
{
	return v->n ? v->rstep[(v->head + v->n - 1) % v->cap] : NO_STEP;
}

/* Live: the newest step is recent by its recorded time, or (without
 * recorded times) steps arrived since we first looked. */
static int is_live(const struct tui_view *v)
{
	if (v->db_last_time > 0)
		return util_wall() - v->db_last_time < IDLE_AFTER;
	return v->grew && util_now() - v->last_arrival < IDLE_AFTER;
}

int tui_view_poll(struct tui_view *v, double budget)
{
	double deadline = budget > 0 ? util_now() + budget : INFINITY;
	struct store_iter *it = NULL;
	struct store_step st;
	int changed = 0, moved = 0, rc;

	rc = query_new(v);
	if (rc) {
		v->state = rc > 0 ? TUI_STATE_WAITING : TUI_STATE_ERROR;
		return rc > 0 ? 0 : rc;
	}
	if (v->db_last == NO_STEP) {
		v->state = TUI_STATE_EMPTY;
		return 0;
	}
	int64_t to = v->follow ? v->db_last : v->target_to;
	if (to > v->db_last)
		to = v->db_last;
	/* the window never starts before the run's first step: a run
	 * shorter than the window shows the steps it has, not negative ones */
	int64_t from = to - v->W + 1;
	if (from < v->db_first)
		from = v->db_first;
	if (v->rebuild || ring_last(v) > to) {
		ring_reset(v);
		v->next_read = from - v->W; /* the W steps before the window too */
		v->ring_lo = v->next_read;
		v->rebuild = 0;
		changed = moved = 1;
	}
	int jump = v->next_read < from - v->W;
	if (jump)
		v->next_read = from - v->W;
	if (ring_shift(v, from))
		changed = 1;
	if (jump) {
		/* the steps jumped over are not read: the ring keeps none
		 * before them */
		while (v->n && v->rstep[v->head] < v->next_read)
			ring_pop(v);
		v->ring_lo = v->next_read;
	}
	if (from != v->from || to != v->to)
		changed = 1;
	v->from = from;
	v->to = to;
	if ((v->deployed_checked < 0 || moved ||
	     util_now() - v->deployed_checked >= DEPLOYED_EVERY) &&
	    (rc = check_deployed(v, to)) < 0)
		goto fail;
	v->loading = 0;
	if (v->next_read <= to) {
		if ((rc = store_iter_new(v->s, &v->run, v->next_read, to, v->phase_mask, &it)))
			goto fail;
		while ((rc = store_iter_next(it, &st)) == 1) {
			ring_push(v, &st);
			v->next_read = st.step + 1;
			changed = 1;
			if (util_now() > deadline)
				break;
		}
		if (rc < 0)
			goto fail;
		ring_shift(v, from); /* the steps read before the window */
		if (rc == 0)
			v->next_read = to + 1;
		else
			v->loading = 1;
		store_iter_free(it);
		it = NULL;
	}
	if (v->loading)
		v->state = TUI_STATE_LOADING;
	else if (!v->follow)
		v->state = TUI_STATE_SCRUB;
	else
		v->state = is_live(v) ? TUI_STATE_LIVE : TUI_STATE_IDLE;
	if (changed)
		touch(v);
	return changed;
fail:
	store_iter_free(it);
	if (changed)
		touch(v);
	if (is_busy(v)) {
		v->state = TUI_STATE_WAITING;
		return changed;
	}
	set_errmsg(v, "%s", store_errmsg(v->s));
	v->state = TUI_STATE_ERROR;
	return rc;
}

int tui_view_loading(const struct tui_view *v)
{
	return v->loading;
}

/* ---- the algorithm's placement ---------------------------------------------- */

static void layer_heat(const struct tui_view *v, int l, double *heat)
{
	const uint64_t *s = v->sum + (size_t)l * v->E;
	for (int e = 0; e < v->E; e++)
		heat[e] = (double)s[e];
}

/* The counts of the ring's r-th entry from its oldest. */
static const uint32_t *ring_counts(const struct tui_view *v, int r)
{
	return v->rcounts + (size_t)((v->head + r) % v->cap) * v->L * v->E;
}

/* Reads the selected steps of [lo, hi] before the ring into its front, the
 * history it lacks: 1 when it holds them now, 0 when they do not fit or
 * were not the steps counted (the caller reads them itself), or < 0. */
static int ring_prepend(struct tui_view *v, int64_t lo, int64_t hi)
{
	size_t LE = (size_t)v->L * v->E;
	struct store_iter *it;
	struct store_step st;
	int64_t k = 0, j = 0;
	int rc, start;

	if (v->once)
		return 0;
	if ((rc = store_steps_count(v->s, &v->run, lo, hi, v->phase_mask, &k)))
		return rc;
	if (k == 0 || k > v->cap - v->n)
		return 0;
	if ((rc = store_iter_new(v->s, &v->run, lo, hi, v->phase_mask, &it)))
		return rc;
	/* into the free slots before head: the ring is untouched until all
	 * were read */
	start = (int)((v->head - k + v->cap) % v->cap);
	while ((rc = store_iter_next(it, &st)) == 1 && j < k) {
		int slot = (int)((start + j++) % v->cap);
		v->rstep[slot] = st.step;
		v->rtime[slot] = st.time;
		v->rphase[slot] = (unsigned char)st.phase;
		memcpy(v->rcounts + (size_t)slot * LE, st.counts, LE * sizeof(uint32_t));
		memset(v->rimb + (size_t)slot * v->L, 0, (size_t)v->L * sizeof(float));
	}
	store_iter_free(it);
	if (rc < 0)
		return rc;
	if (rc == 1 || j != k)
		return 0;
	v->head = start;
	v->n += (int)k;
	v->nhist += (int)k;
	v->ring_lo = lo;
	return 1;
}

/* The selected steps of [lo, hi] into b as its steps base, base + 1, ...:
 * 0, 1 with their number in *k when it was not *k, or < 0. */
static int blocks_read(struct tui_view *v, int64_t lo, int64_t hi, struct analyze_blocks *b,
		       int64_t base, int64_t *k)
{
	struct store_iter *it;
	struct store_step st;
	int64_t j = 0;
	int rc;

	if ((rc = store_iter_new(v->s, &v->run, lo, hi, v->phase_mask, &it)))
		return rc;
	while ((rc = store_iter_next(it, &st)) == 1)
		analyze_blocks_add(b, base + j++, st.counts);
	store_iter_free(it);
	if (rc < 0)
		return rc;
	if (j != *k) {
		*k = j;
		return 1;
	}
	return 0;
}

/* The flagship's input for the W steps before the window, [afrom, ato],
 * as analyze_forecast_read gives it, from the steps the ring holds: only
 * history older than the ring is read (into the ring when it fits, so it
 * is read once). */
static int forecast_read(struct tui_view *v, int64_t afrom, int64_t ato, struct util_err *err)
{
	int64_t hfrom = analyze_window_history_from(afrom, ato), lo = hfrom, k = 0;
	int first = v->nhist, rc = 0;

	if (hfrom < afrom && hfrom < v->ring_lo) {
		/* history the ring lacks: [hfrom, ring_lo - 1] */
		int64_t hi = v->ring_lo - 1 < afrom - 1 ? v->ring_lo - 1 : afrom - 1;
		if ((rc = ring_prepend(v, hfrom, hi)) < 0)
			goto fail;
		if (rc == 0) {
			lo = hi + 1; /* read below, not kept */
			if ((rc = store_steps_count(v->s, &v->run, hfrom, hi, v->phase_mask, &k)))
				goto fail;
		}
		first = v->nhist;
	}
	/* the ring's history from hfrom on */
	while (first > 0 && v->rstep[(v->head + first - 1) % v->cap] >= lo)
		first--;
	int64_t nh = hfrom < afrom ? k + (v->nhist - first) : 0;
	for (int pass = 0;; pass++) {
		if (analyze_blocks_init(&v->fc.b, v->L, v->E, v->nprev, nh))
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
		if (!v->fc.b.hist || k == 0)
			break;
		if ((rc = blocks_read(v, hfrom, lo - 1, &v->fc.b, 0, &k)) < 0)
			goto fail;
		if (rc == 0)
			break;
		analyze_blocks_release(&v->fc.b);
		nh = k + (v->nhist - first);
		if (pass) {
			rc = util_err_set(err, UTIL_EDB, "the steps before %lld changed while read",
					  (long long)afrom);
			return rc;
		}
	}
	int64_t i = k;
	if (v->fc.b.hist)
		for (int r = first; r < v->nhist; r++)
			analyze_blocks_add(&v->fc.b, i++, ring_counts(v, r));
	i = nh;
	for (int r = v->nhist; r < v->nhist + v->nprev; r++)
		analyze_blocks_add(&v->fc.b, i++, ring_counts(v, r));
	return analyze_forecast_choose(&v->fc, v->P, err);
fail:
	analyze_blocks_release(&v->fc.b);
	return util_err_set(err, rc, "%s", store_errmsg(v->s));
}

static void fit_layer(struct tui_view *v, int l)
{
	struct util_err err = UTIL_ERR_INIT;
	size_t P = (size_t)v->P;
	int32_t *a = v->after + (size_t)l * P;
	const int32_t *c = v->cur + (size_t)l * P;
	const uint64_t *ps = v->psum + (size_t)l * v->E;

	v->lgen[l] = v->gen;
	if (!v->nprev) {
		/* nothing before the window to fit on: no figure rather than
		 * one fitted on the steps it is scored on */
		v->has_after[l] = 0;
		v->moves[l] = -1;
		return;
	}
	for (int e = 0; e < v->E; e++)
		v->heat[e] = (double)ps[e];
	/* the inputs `moetrace place --steps A:B --current` gives an algorithm
	 * for the steps before the window: the flagship its forecast from the
	 * blocks and history of those steps, the others their summed heat
	 * (as with --episodes 0), so both show the same placement */
	struct analyze_place_in in = {
		.experts = v->E, .ranks = v->R, .slots = v->S,
		.heat = v->heat, .current = c, .max_moves = -1,
	};
	v->afrom[l] = v->rstep[(v->head + v->nhist) % v->cap];
	v->ato[l] = v->rstep[(v->head + v->nhist + v->nprev - 1) % v->cap];
	if (is_flagship(v)) {
		if (v->fc_from != v->afrom[l] || v->fc_to != v->ato[l]) {
			analyze_forecast_release(&v->fc);
			v->fc_from = 1;
			v->fc_to = 0;
			if (forecast_read(v, v->afrom[l], v->ato[l], &err)) {
				/* a writer holding the lock: try again on the next call */
				if (is_busy(v))
					v->lgen[l] = v->gen - 1;
				else
					set_errmsg(v, "%s", err.msg);
				v->has_after[l] = 0;
				v->moves[l] = -1;
				return;
			}
			v->fc_from = v->afrom[l];
			v->fc_to = v->ato[l];
		}
		analyze_forecast_layer(&v->fc, l, &in);
	}
	if (analyze_place(v->algo, &in, a, &err) ||
	    analyze_placement_check(a, v->E, v->R, v->S, 0, &err)) {
		set_errmsg(v, "%s on layer %d: %s", v->algo->name, l, err.msg);
		v->has_after[l] = 0;
		v->moves[l] = -1;
		return;
	}
	analyze_replicas(a, v->P, v->E, v->acnt + (size_t)l * v->E);
	memset(v->send, 0, (size_t)v->R * sizeof(int64_t));
	memset(v->recv, 0, (size_t)v->R * sizeof(int64_t));
	v->moves[l] = analyze_transfer_layer(c, a, v->E, v->R, v->S, NULL, v->send, v->recv, &err);
	v->has_after[l] = 1;
}

int tui_view_work(struct tui_view *v, int prefer, double budget)
{
	double t0 = util_now(), deadline = budget > 0 ? t0 + budget : INFINITY;
	int stale = 0, did = 0;

	if (win_n(v) == 0 || v->loading) {
		for (int l = 0; l < v->L; l++)
			stale += v->lgen[l] != v->gen;
		return stale;
	}
	if (!v->need_bump && v->follow && v->fit_to != NO_STEP) {
		int64_t enough = v->refit_steps > 0 ? v->refit_steps : (v->W / 4 > 0 ? v->W / 4 : 1);
		/* refit when the window moved far enough, or when the data went
		 * quiet (a recorder that stopped) on a window not yet fitted */
		int quiet = t0 - v->last_arrival >= 1.0 && v->to != v->fit_to;
		if ((v->to - v->fit_to >= enough || quiet) && t0 - v->fit_time >= v->refit_interval)
			v->need_bump = 1;
	}
	if (v->need_bump) {
		v->gen++;
		v->need_bump = 0;
		v->fit_to = v->to;
		v->fit_time = t0;
	}
	if (prefer >= 0 && prefer < v->L && v->lgen[prefer] != v->gen) {
		fit_layer(v, prefer);
		did++;
	}
	for (int l = 0; l < v->L; l++) {
		if (v->lgen[l] == v->gen)
			continue;
		if (did && util_now() > deadline) {
			stale++;
			continue;
		}
		fit_layer(v, l);
		did++;
	}
	if (did)
		touch(v);
	return stale;
}

/* ---- settings ------------------------------------------------------------------ */

void tui_view_set_window(struct tui_view *v, int window)
{
	int w = window_cap(v, window);

	if (w == v->W)
		return;
	v->W = w;
	if (ring_alloc(v))
		util_die("out of memory"); /* top only: its window keys */
	ring_reset(v);
	v->rebuild = 1;
	v->need_bump = 1;
	touch(v);
}

int tui_view_window(const struct tui_view *v)
{
	return v->W;
}

void tui_view_set_algo(struct tui_view *v, const struct analyze_algo *algo)
{
	if (!algo || algo == v->algo)
		return;
	v->algo = algo;
	v->need_bump = 1;
	touch(v);
}

const struct analyze_algo *tui_view_algo(const struct tui_view *v)
{
	return v->algo;
}

void tui_view_scrub(struct tui_view *v, int64_t delta)
{
	int64_t to;

	if (v->to == NO_STEP)
		return;
	to = v->to + delta;
	if (v->db_first != NO_STEP && to < v->db_first)
		to = v->db_first;
	if (to >= v->db_last) {
		tui_view_follow(v);
		return;
	}
	v->follow = 0;
	v->target_to = to;
	v->need_bump = 1;
	touch(v);
}

void tui_view_follow(struct tui_view *v)
{
	if (v->follow)
		return;
	v->follow = 1;
	v->target_to = NO_STEP;
	v->need_bump = 1;
	touch(v);
}

void tui_view_set_once(struct tui_view *v)
{
	v->once = 1;
}

void tui_view_set_refit(struct tui_view *v, int64_t steps, double interval)
{
	v->refit_steps = steps;
	v->refit_interval = interval;
}

/* ---- reading the view ------------------------------------------------------------ */

static double recorded_rate(const struct tui_view *v)
{
	int k = v->n - v->nhist < 64 ? v->n - v->nhist : 64;
	if (k < 2)
		return -1;
	int newest = (v->head + v->n - 1) % v->cap, oldest = (v->head + v->n - k) % v->cap;
	double dt = v->rtime[newest] - v->rtime[oldest];
	if (v->rtime[oldest] <= 0 || dt <= 0)
		return -1;
	return (double)(v->rstep[newest] - v->rstep[oldest]) / dt;
}

void tui_view_header(struct tui_view *v, struct tui_header *h)
{
	memset(h, 0, sizeof(*h));
	h->run = &v->run;
	h->ranks = v->R;
	h->slots = v->S;
	h->deployed = v->deployed;
	h->deployed_from = v->deployed_from;
	h->algo = v->algo->name;
	h->window = v->W;
	h->phase_mask = v->phase_mask;
	h->from = v->from;
	h->to = v->to;
	h->nsteps = win_n(v);
	h->last_step = v->db_last;
	h->steps = v->db_steps;
	h->gaps = v->db_last == NO_STEP ? 0 : (v->db_last - v->db_first + 1) - v->db_steps;
	h->rate = recorded_rate(v);
	if (v->db_last_time > 0)
		h->age = util_wall() - v->db_last_time;
	else
		h->age = v->db_last == NO_STEP ? -1 : util_now() - v->last_arrival;
	if (h->age < 0 && v->db_last != NO_STEP)
		h->age = 0;
	h->follow = v->follow;
	h->state = v->state;
	for (int l = 0; l < v->L; l++)
		h->stale_layers += v->lgen[l] != v->gen;
}

int tui_view_layers(const struct tui_view *v)
{
	return v->L;
}

/* The window's imbalance of layer l under p: NAN when the layer got no
 * token in the window (not scored, never a perfect 1.0: docs/cli.md). */
static double layer_imbalance(struct tui_view *v, int l, const int32_t *p, const int *cnt)
{
	double mx, tot = 0;

	layer_heat(v, l, v->heat);
	mx = analyze_device_load(v->heat, v->E, p + (size_t)l * v->P, v->R, v->S,
				 cnt + (size_t)l * v->E, v->load);
	for (int r = 0; r < v->R; r++)
		tot += v->load[r];
	return analyze_scored_imbalance(mx, tot / v->R);
}

const struct tui_layer_row *tui_view_rows(struct tui_view *v)
{
	if (!v->rows_dirty)
		return v->rows;
	for (int l = 0; l < v->L; l++) {
		struct tui_layer_row *r = &v->rows[l];
		const uint64_t *s = v->sum + (size_t)l * v->E;
		uint64_t tot = 0;
		int hot = 0;
		for (int e = 0; e < v->E; e++) {
			tot += s[e];
			if (s[e] > s[hot])
				hot = e;
		}
		r->layer = l;
		r->now = layer_imbalance(v, l, v->cur, v->cnt);
		r->after = v->has_after[l] ? layer_imbalance(v, l, v->after, v->acnt) : 0;
		r->after_fresh = v->has_after[l] && v->lgen[l] == v->gen;
		r->after_none = !v->has_after[l] && v->lgen[l] == v->gen;
		r->hottest = hot;
		r->hottest_share = tot ? (double)s[hot] / (double)tot : 0;
		r->moves = v->has_after[l] ? v->moves[l] : -1;
	}
	v->rows_dirty = 0;
	return v->rows;
}

int tui_view_loads(struct tui_view *v, int layer, double *before, double *after, double *mean)
{
	double tot = 0;

	if (layer < 0 || layer >= v->L)
		return 0;
	layer_heat(v, layer, v->heat);
	analyze_device_load(v->heat, v->E, v->cur + (size_t)layer * v->P, v->R, v->S,
			    v->cnt + (size_t)layer * v->E, before);
	for (int r = 0; r < v->R; r++)
		tot += before[r];
	*mean = tot / v->R;
	if (!after)
		return 0;
	if (!v->has_after[layer]) {
		memset(after, 0, (size_t)v->R * sizeof(double));
		return 0;
	}
	analyze_device_load(v->heat, v->E, v->after + (size_t)layer * v->P, v->R, v->S,
			    v->acnt + (size_t)layer * v->E, after);
	return 1;
}

int tui_view_history(struct tui_view *v, int layer, double *out, int max)
{
	int k = win_n(v) < max ? win_n(v) : max;

	if (layer < 0 || layer >= v->L)
		return 0;
	for (int i = 0; i < k; i++) {
		int slot = (v->head + v->n - k + i) % v->cap;
		out[i] = v->rimb[(size_t)slot * v->L + layer];
	}
	return k;
}

int tui_view_phases(const struct tui_view *v, unsigned char *out, int max)
{
	int k = win_n(v) < max ? win_n(v) : max;

	for (int i = 0; i < k; i++)
		out[i] = v->rphase[(v->head + v->n - k + i) % v->cap];
	return k;
}

void tui_view_heat(struct tui_view *v, int layer, double *out)
{
	if (layer >= 0 && layer < v->L)
		layer_heat(v, layer, out);
}

int tui_view_held(const struct tui_view *v, int64_t *lo)
{
	*lo = INT64_MAX;
	if (v->phase_mask || v->loading || !v->n)
		return 0;
	*lo = v->ring_lo;
	return v->n;
}

const uint32_t *tui_view_held_step(const struct tui_view *v, int i, int64_t *step)
{
	int slot = (v->head + i) % v->cap;

	*step = v->rstep[slot];
	return v->rcounts + (size_t)slot * v->L * v->E;
}

void tui_view_after_window(struct tui_view *v, int layer, int64_t *from, int64_t *to)
{
	*from = *to = NO_STEP;
	if (layer >= 0 && layer < v->L && v->has_after[layer]) {
		*from = v->afrom[layer];
		*to = v->ato[layer];
	}
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_num(struct util_buf *b, double x)
{
	if (isfinite(x))
		util_buf_addf(b, "%.10g", x);
	else
		util_buf_addstr(b, "null");
}

/* An imbalance as the snapshot always wrote it (6 decimals), null when
 * not scored (NAN) */
static void json_imb(struct util_buf *b, double x)
{
	if (isfinite(x))
		util_buf_addf(b, "%.6f", x);
	else
		util_buf_addstr(b, "null");
}

static void json_step(struct util_buf *b, int64_t x)
{
	if (x == NO_STEP)
		util_buf_addstr(b, "null");
	else
		util_buf_addf(b, "%lld", (long long)x);
}

static void json_array(struct util_buf *b, const double *x, int n, int prec)
{
	util_buf_addstr(b, "[");
	for (int i = 0; i < n; i++) {
		if (i)
			util_buf_addstr(b, ", ");
		if (prec < 0 || !isfinite(x[i]))
			json_num(b, x[i]);
		else
			util_buf_addf(b, "%.*f", prec, x[i]);
	}
	util_buf_addstr(b, "]");
}

void tui_view_json(struct tui_view *v, int layer, struct util_buf *b)
{
	struct tui_header h;
	const struct tui_layer_row *rows = tui_view_rows(v);
	int R = v->R;

	tui_view_header(v, &h);
	util_buf_addstr(b, "{\n  \"run\": {\"id\": ");
	util_buf_addf(b, "%lld, \"name\": ", (long long)v->run.id);
	util_buf_json_str(b, v->run.name);
	util_buf_addstr(b, ", \"model\": ");
	util_buf_json_str(b, v->run.model);
	util_buf_addf(b, ", \"layers\": %d, \"experts\": %d},\n", v->L, v->E);
	util_buf_addf(b, "  \"layout\": {\"ranks\": %d, \"slots\": %d, \"placement\": \"%s\"", R,
		      v->S, v->deployed ? "deployed" : "static");
	if (v->deployed)
		util_buf_addf(b, ", \"deployed_from\": %lld", (long long)v->deployed_from);
	util_buf_addstr(b, "},\n  \"algo\": ");
	util_buf_json_str(b, v->algo->name);
	util_buf_addf(b, ",\n  \"window\": {\"size\": %d, \"from\": ", v->W);
	json_step(b, h.from);
	util_buf_addstr(b, ", \"to\": ");
	json_step(b, h.to);
	util_buf_addf(b, ", \"steps\": %lld, \"phase\": \"%s\"},\n", (long long)h.nsteps,
		      v->phase_mask == 1u << STORE_PHASE_PREFILL  ? "prefill"
		      : v->phase_mask == 1u << STORE_PHASE_DECODE ? "decode"
								   : "all");
	util_buf_addstr(b, "  \"header\": {\"last_step\": ");
	json_step(b, h.last_step);
	util_buf_addf(b, ", \"steps\": %lld, \"dropped\": %lld, \"steps_per_s\": ",
		      (long long)h.steps, (long long)h.gaps);
	json_num(b, h.rate >= 0 ? h.rate : NAN);
	util_buf_addstr(b, ", \"since_last_data_s\": ");
	json_num(b, h.age >= 0 ? h.age : NAN);
	util_buf_addf(b, ", \"state\": \"%s\", \"follow\": %s},\n", tui_state_name(h.state),
		      h.follow ? "true" : "false");
	util_buf_addstr(b, "  \"load_model\": \"tokens of a replicated expert split evenly among "
			   "its replicas; imbalance = max / mean device load\",\n");
	util_buf_addstr(b, "  \"layers\": [");
	for (int l = 0; l < v->L; l++) {
		const struct tui_layer_row *r = &rows[l];
		util_buf_addf(b, "%s\n    {\"layer\": %d, \"now\": ", l ? "," : "", l);
		json_imb(b, r->now);
		util_buf_addstr(b, ", \"after\": ");
		json_num(b, v->has_after[l] ? r->after : NAN);
		/* a layer without a token has no hottest expert (0 is an expert) */
		if (isnan(r->now))
			util_buf_addstr(b, ", \"hottest\": null, \"hottest_share\": null, \"moves\": ");
		else
			util_buf_addf(b, ", \"hottest\": %d, \"hottest_share\": %.6f, \"moves\": ",
				      r->hottest, r->hottest_share);
		if (r->moves >= 0)
			util_buf_addf(b, "%lld}", (long long)r->moves);
		else
			util_buf_addstr(b, "null}");
	}
	util_buf_addstr(b, "\n  ]");
	if (layer >= 0 && layer < v->L) {
		double *before = xmallocarray((size_t)R, sizeof(double));
		double *after = xmallocarray((size_t)R, sizeof(double));
		double *hist = xmallocarray((size_t)(v->n ? v->n : 1), sizeof(double));
		double *heat = xmallocarray((size_t)v->E, sizeof(double));
		double mean;
		int have = tui_view_loads(v, layer, before, after, &mean);
		int nh = tui_view_history(v, layer, hist, v->n);
		int64_t af, at;
		tui_view_after_window(v, layer, &af, &at);
		tui_view_heat(v, layer, heat);
		util_buf_addf(b, ",\n  \"selected\": {\"layer\": %d, \"mean\": %.4f,\n", layer, mean);
		util_buf_addstr(b, "    \"before\": ");
		json_array(b, before, R, 4);
		util_buf_addstr(b, ",\n    \"imbalance_before\": ");
		json_imb(b, rows[layer].now);
		util_buf_addstr(b, ",\n    \"after\": ");
		if (have)
			json_array(b, after, R, 4);
		else
			util_buf_addstr(b, "null");
		util_buf_addstr(b, ",\n    \"imbalance_after\": ");
		json_num(b, have ? rows[layer].after : NAN);
		util_buf_addstr(b, ",\n    \"after_window\": {\"from\": ");
		json_step(b, af);
		util_buf_addstr(b, ", \"to\": ");
		json_step(b, at);
		util_buf_addstr(b, "},\n    \"history\": ");
		json_array(b, hist, nh, 4);
		util_buf_addstr(b, ",\n    \"heat\": ");
		json_array(b, heat, v->E, 0);
		util_buf_addstr(b, "}");
		free(before);
		free(after);
		free(hist);
		free(heat);
	}
	util_buf_addstr(b, "\n}\n");
}

/*
 * place_swift.c: SwiftBalancer (vllm-ascend's policy type 2) after its
 * public description: improve the placement in force with few transfers.
 * Home copies (first occurrence of each expert, scanning slot index then
 * rank) stay; only the redundant positions are refilled, each rank pair
 * exchanges at most once, then at most 100 swaps that each gain at least
 * 1% of the mean device load.  Our additions: a move budget
 * (in->max_moves) stops refills and swaps once spent; without a current
 * placement the engines' static layout is the start.
 * analyze_place_swift() runs the steps in order, each its own function
 * on one struct swift; swift_release() frees it.
 */
#include "analyze/place_int.h"

#include <stdlib.h>
#include <string.h>

#define SWIFT_THRESHOLD 1.01
#define SWIFT_MAX_SWAPS 100
#define SWIFT_GAIN 0.01

struct swift {
	int E, D, S;
	const double *w;
	int32_t *p;            /* [D * S] new layout, -1 = free redundant position */
	unsigned char *on;     /* [D * E] replicas of e on d in p */
	unsigned char *curon;  /* [D * E] replicas of e on d in the current layout */
	unsigned char *recv;   /* [D * E] received this round */
	int *cnt;              /* [E] replicas in p */
	double *load;          /* [D] with estimated weights */
	int moves, budget;
	int32_t *cur;          /* [D * S] the current layout (else the static one) */
	int *extra;            /* [E] replicas beyond the home copy */
	int *home;             /* [E] rank of the home copy */
	int *pos;              /* [D * S] redundant positions */
	int *copies;           /* [D * S] extra replicas, heaviest first */
	unsigned char *com;    /* [D * D] copies from a home rank to a rank */
	unsigned char *pair;   /* [D * D] rank pairs that swapped */
	int *ord;              /* [D] ranks by load */
	int *ccnt;             /* [E] replicas in the current layout */
	double *tload;         /* [D] device load of the current layout */
};

/* Estimated per-replica load of an expert with c replicas: 2w/(c+1), the
 * reference's estimate after c-1 extra replicas (w for one replica). */
static double swift_est(const struct swift *s, int e, int c)
{
	return 2 * s->w[e] / (c + 1);
}

static void swift_loads(struct swift *s)
{
	for (int d = 0; d < s->D; d++) {
		double l = 0;
		for (int k = 0; k < s->S; k++) {
			int e = s->p[d * s->S + k];
			if (e >= 0)
				l += swift_est(s, e, s->cnt[e]);
		}
		s->load[d] = l;
	}
}

/* 1 if putting e on d is a move (d did not hold e before). */
static int swift_is_move(const struct swift *s, int d, int e)
{
	return s->on[(size_t)d * s->E + e] >= s->curon[(size_t)d * s->E + e];
}

static double swift_max_avg(const double *load, int n, double mean)
{
	double mx = 0;

	for (int i = 0; i < n; i++)
		if (load[i] > mx)
			mx = load[i];
	return mean > 0 ? mx / mean : 1;
}

static void swift_release(struct swift *s)
{
	free(s->cur);
	free(s->extra);
	free(s->home);
	free(s->pos);
	free(s->copies);
	free(s->com);
	free(s->pair);
	free(s->ord);
	free(s->ccnt);
	free(s->tload);
	free(s->p);
	free(s->on);
	free(s->curon);
	free(s->recv);
	free(s->cnt);
	free(s->load);
}

static int swift_init(struct swift *s, const struct analyze_place_in *in)
{
	int E = in->experts, D = in->ranks, S = in->slots, P = D * S;

	memset(s, 0, sizeof(*s));
	s->E = E;
	s->D = D;
	s->S = S;
	s->w = in->heat;
	s->budget = in->max_moves;
	s->cur = malloc((size_t)P * sizeof(int32_t));
	s->extra = calloc((size_t)E, sizeof(int));
	s->home = malloc((size_t)E * sizeof(int));
	s->pos = malloc((size_t)P * sizeof(int));
	s->copies = malloc((size_t)P * sizeof(int));
	s->com = calloc((size_t)D * D, 1);
	s->pair = calloc((size_t)D * D, 1);
	s->ord = malloc((size_t)D * sizeof(int));
	s->ccnt = calloc((size_t)E, sizeof(int));
	s->tload = malloc((size_t)D * sizeof(double));
	s->p = malloc((size_t)P * sizeof(int32_t));
	s->on = calloc((size_t)D * E, 1);
	s->curon = calloc((size_t)D * E, 1);
	s->recv = calloc((size_t)D * E, 1);
	s->cnt = calloc((size_t)E, sizeof(int));
	s->load = calloc((size_t)D, sizeof(double));
	if (!s->cur || !s->extra || !s->home || !s->pos || !s->copies || !s->com || !s->pair ||
	    !s->ord || !s->ccnt || !s->tload || !s->p || !s->on || !s->curon || !s->recv || !s->cnt || !s->load)
		return UTIL_ENOMEM;
	if (in->current)
		memcpy(s->cur, in->current, (size_t)P * sizeof(int32_t));
	else
		analyze_static_phy2log(E, D, S, s->cur);
	return 0;
}

/* Step 1: the estimated imbalance of the current placement (max / mean
 * device load); *dup: it holds an expert twice on a rank (s->curon
 * filled). */
static double swift_current(struct swift *s, double mean, int *dup)
{
	int E = s->E, D = s->D, S = s->S, P = D * S;
	analyze_replicas(s->cur, P, E, s->ccnt);
	double imb0 = analyze_device_load(s->w, E, s->cur, D, S, s->ccnt, s->tload);
	imb0 = mean > 0 ? imb0 / mean : 1;
	*dup = 0;
	for (int q = 0; q < P; q++)
		if (++s->curon[(size_t)(q / S) * E + s->cur[q]] > 1)
			*dup = 1;
	return imb0;
}

/* Step 2: home copies stay, later occurrences are redundant positions
 * (s->pos; their number returned). */
static int swift_keep_homes(struct swift *s)
{
	int E = s->E, D = s->D, S = s->S, npos = 0;

	for (int e = 0; e < E; e++)
		s->home[e] = -1;
	for (int k = 0; k < S; k++)
		for (int d = 0; d < D; d++) {
			int e = s->cur[d * S + k];
			if (s->home[e] < 0) {
				s->home[e] = d;
				s->p[d * S + k] = e;
				s->on[(size_t)d * E + e]++;
				s->cnt[e]++;
			} else {
				s->p[d * S + k] = -1;
				s->pos[npos++] = d * S + k;
			}
		}
	return npos;
}

/* Step 3: one more replica at a time to the largest estimate, at most D. */
static void swift_count_replicas(struct swift *s, int npos)
{
	for (int i = 0; i < npos; i++) {
		int best = -1;
		double bv = -1;
		for (int e = 0; e < s->E; e++) {
			if (1 + s->extra[e] >= s->D)
				continue;
			double v = swift_est(s, e, 1 + s->extra[e]);
			if (v >= bv) { /* stable sort reversed: the later expert wins */
				bv = v;
				best = e;
			}
		}
		if (best < 0)
			break;
		s->extra[best]++;
	}
}

/* Step 4: copies heaviest first, to the lightest admissible rank. */
static void swift_place_copies(struct swift *s)
{
	int E = s->E, D = s->D, S = s->S, ncopies = 0;
	int *copies = s->copies, *extra = s->extra;

	for (int e = 0; e < E; e++)
		for (int c = 0; c < extra[e]; c++)
			copies[ncopies++] = e;
	for (int i = 1; i < ncopies; i++) { /* insertion sort, stable */
		int e = copies[i], j = i;
		double v = swift_est(s, e, 1 + extra[e]);
		while (j > 0 && swift_est(s, copies[j - 1], 1 + extra[copies[j - 1]]) < v) {
			copies[j] = copies[j - 1];
			j--;
		}
		copies[j] = e;
	}
	for (int d = 0; d < D; d++) {
		double l = 0;
		for (int k = 0; k < S; k++) {
			int e = s->p[d * S + k];
			if (e >= 0)
				l += swift_est(s, e, 1 + extra[e]);
		}
		s->load[d] = l;
	}
	for (int i = 0; i < ncopies; i++) {
		int e = copies[i], best = -1;
		for (int d = 0; d < D; d++) {
			int free_pos = 0;
			for (int k = 0; k < S; k++)
				if (s->p[d * S + k] < 0)
					free_pos = 1;
			if (!free_pos || s->on[(size_t)d * E + e] ||
			    s->com[(size_t)s->home[e] * D + d] >= 1)
				continue;
			if (best < 0 || s->load[d] < s->load[best])
				best = d;
		}
		if (best < 0)
			continue; /* dropped */
		if (s->budget >= 0 && swift_is_move(s, best, e) && s->moves + 1 > s->budget)
			continue;
		int k = S - 1;
		while (s->p[best * S + k] >= 0)
			k--;
		s->moves += swift_is_move(s, best, e);
		s->p[best * S + k] = e;
		s->on[(size_t)best * E + e]++;
		s->recv[(size_t)best * E + e] = 1;
		s->cnt[e]++;
		s->load[best] += swift_est(s, e, 1 + extra[e]);
		s->com[(size_t)s->home[e] * D + best]++;
	}
}

/* Free positions: the hottest expert (true split) the rank lacks; when
 * that would pass the move budget, an expert the rank held before and
 * lacks now (one exists unless the old layout held duplicates). */
static void swift_fill_free(struct swift *s)
{
	int E = s->E, D = s->D, S = s->S;
	const int32_t *cur = s->cur;

	for (int d = 0; d < D; d++)
		for (int k = 0; k < S; k++) {
			if (s->p[d * S + k] >= 0)
				continue;
			int best = -1;
			for (int e = 0; e < E; e++)
				if (!s->on[(size_t)d * E + e] &&
				    (best < 0 ||
				     s->w[e] / (s->cnt[e] + 1) > s->w[best] / (s->cnt[best] + 1)))
					best = e;
			if (best < 0 || (s->budget >= 0 && swift_is_move(s, d, best) &&
					 s->moves + 1 > s->budget)) {
				int old = -1;
				for (int e = 0; e < E; e++)
					if (s->curon[(size_t)d * E + e] && !s->on[(size_t)d * E + e] &&
					    (old < 0 || e == cur[d * S + k] ||
					     (old != cur[d * S + k] && s->w[e] > s->w[old])))
						old = e;
				if (old >= 0)
					best = old;
			}
			if (best < 0)
				best = cur[d * S + k];
			s->moves += swift_is_move(s, d, best);
			s->p[d * S + k] = best;
			s->on[(size_t)d * E + best]++;
			s->cnt[best]++;
		}
}

/* One swap of step 5 between the hottest rank and rank o, if it gains at
 * least `gain` within the move budget: 1 when made. */
static int swift_swap(struct swift *s, int hot, int o, double gain)
{
	int E = s->E, D = s->D, S = s->S, bi = -1, bj = -1;
	double bm = 0;

	for (int i = 0; i < S; i++) {
		int x = s->p[hot * S + i];
		if (s->on[(size_t)o * E + x] || s->recv[(size_t)hot * E + x])
			continue;
		for (int j = 0; j < S; j++) {
			int y = s->p[o * S + j];
			if (s->on[(size_t)hot * E + y] || s->recv[(size_t)o * E + y])
				continue;
			double dx = swift_est(s, x, s->cnt[x]) - swift_est(s, y, s->cnt[y]);
			double a = s->load[hot] - dx, b = s->load[o] + dx;
			double m = a > b ? a : b;
			if (bi < 0 || m < bm) {
				bm = m;
				bi = i;
				bj = j;
			}
		}
	}
	if (bi < 0 || s->load[hot] - bm < gain)
		return 0;
	int x = s->p[hot * S + bi], y = s->p[o * S + bj];
	int mv = swift_is_move(s, o, x) + swift_is_move(s, hot, y);
	if (s->budget >= 0 && s->moves + mv > s->budget)
		return 0;
	s->moves += mv;
	s->p[hot * S + bi] = y;
	s->p[o * S + bj] = x;
	s->on[(size_t)hot * E + x]--;
	s->on[(size_t)hot * E + y]++;
	s->on[(size_t)o * E + y]--;
	s->on[(size_t)o * E + x]++;
	s->recv[(size_t)o * E + x] = 1;
	s->recv[(size_t)hot * E + y] = 1;
	s->pair[(size_t)hot * D + o] = s->pair[(size_t)o * D + hot] = 1;
	swift_loads(s);
	return 1;
}

/* Step 5: swaps between the hottest rank and the others, lightest first,
 * each rank pair once. */
static void swift_swaps(struct swift *s, double mean)
{
	int D = s->D, *ord = s->ord;
	double gain = SWIFT_GAIN * mean;

	for (int nsw = 0; nsw < SWIFT_MAX_SWAPS;) {
		int hot = 0, done = 0;
		for (int d = 1; d < D; d++)
			if (s->load[d] >= s->load[hot])
				hot = d;
		for (int d = 0; d < D; d++)
			ord[d] = d;
		for (int i = 1; i < D; i++) {
			int d = ord[i], j = i;
			while (j > 0 && s->load[ord[j - 1]] > s->load[d]) {
				ord[j] = ord[j - 1];
				j--;
			}
			ord[j] = d;
		}
		for (int oi = 0; oi < D && !done; oi++) {
			int o = ord[oi];
			if (o == hot || s->pair[(size_t)hot * D + o])
				continue;
			done = swift_swap(s, hot, o, gain);
		}
		if (!done)
			break;
		nsw++;
	}
}

/* The new layout into phy2log, experts that stay on a rank keeping their
 * slot index. */
static int swift_keep_slots(const struct swift *s, int32_t *phy2log)
{
	int D = s->D, S = s->S;

	for (int d = 0; d < D; d++) {
		const int32_t *n = s->p + (size_t)d * S, *c = s->cur + (size_t)d * S;
		int32_t *o = phy2log + (size_t)d * S;
		unsigned char taken[256];
		unsigned char *tk = S <= 256 ? taken : malloc((size_t)S);
		if (!tk)
			return UTIL_ENOMEM;
		memset(tk, 0, (size_t)S);
		for (int k = 0; k < S; k++) {
			o[k] = -1;
			for (int m = 0; m < S; m++)
				if (!tk[m] && n[m] == c[k]) {
					tk[m] = 1;
					o[k] = c[k];
					break;
				}
		}
		for (int k = 0, m = 0; k < S; k++) {
			if (o[k] >= 0)
				continue;
			while (tk[m])
				m++;
			tk[m] = 1;
			o[k] = n[m];
		}
		if (tk != taken)
			free(tk);
	}
	return 0;
}

int analyze_place_swift(const struct analyze_place_in *in, int32_t *phy2log, struct util_err *err)
{
	int D = in->ranks, P = D * in->slots, rc = 0, dup;
	struct swift s;
	double total = 0;

	if (swift_init(&s, in)) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(phy2log, s.cur, (size_t)P * sizeof(int32_t));
	for (int e = 0; e < s.E; e++)
		total += s.w[e];
	double mean = total / D;
	/* 1: a balanced enough layer stays; a current placement with an
	 * expert twice on a rank is re-planned */
	double imb0 = swift_current(&s, mean, &dup);
	if (!dup && (imb0 < SWIFT_THRESHOLD || in->max_moves == 0))
		goto out;
	swift_count_replicas(&s, swift_keep_homes(&s));
	swift_place_copies(&s);
	swift_fill_free(&s);
	swift_loads(&s);
	swift_swaps(&s, mean);
	/* 6: keep the new layer only if it is estimated better (or the old
	 * one held a duplicate) */
	if (!dup && swift_max_avg(s.load, D, mean) >= imb0)
		goto out;
	if (swift_keep_slots(&s, phy2log))
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
out:
	swift_release(&s);
	return rc;
}

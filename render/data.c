/*
 * data.c: from a trace to the plain arrays the charts take.  The timeline
 * reads one layer's blobs straight from the counts table (one row per
 * step instead of decoding every layer) and bins steps by value as it
 * goes, so memory is experts x bins whatever the number of steps.
 */
#include "render/render.h"

#include "analyze/analyze.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int render_load_heat(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		     unsigned phase_mask, double *mean, int64_t *nsteps, struct util_err *err)
{
	size_t n = (size_t)run->layers * (size_t)run->experts;
	uint64_t *sum = xmallocarray(n, sizeof(uint64_t));
	int rc = store_window_sum(s, run, from, to, phase_mask, sum, nsteps);

	if (rc) {
		util_err_set(err, rc, "%s", store_errmsg(s));
	} else {
		for (size_t i = 0; i < n; i++)
			mean[i] = *nsteps ? (double)sum[i] / (double)*nsteps : 0;
	}
	free(sum);
	return rc;
}

int render_load_timeline(struct store *s, const struct store_run *run, int layer, int64_t from,
			 int64_t to, unsigned phase_mask, int *bins, double *grid, double *x0,
			 double *x1, int64_t *nsteps, struct util_err *err)
{
	struct store_iter *it = NULL;
	struct store_step st;
	int E = run->experts, nb = *bins, rc = 0;
	int64_t first = 0, last = 0, n = 0;
	uint32_t *cnt = NULL;

	*nsteps = 0;
	if (layer < 0 || layer >= run->layers)
		return util_err_set(err, UTIL_ERANGE, "layer %d out of range [0, %d)", layer,
				    run->layers);
	if (store_steps_span(s, run, layer, from, to, phase_mask, &n, &first, &last))
		goto dberr;
	if (n == 0)
		return 0;
	if (nb < 1)
		nb = 1;
	if ((uint64_t)(last - first) + 1 < (uint64_t)nb)
		nb = (int)(last - first + 1);
	*bins = nb;

	cnt = xcalloc((size_t)nb, sizeof(uint32_t));
	for (size_t i = 0; i < (size_t)E * (size_t)nb; i++)
		grid[i] = 0;
	if (store_iter_layer_new(s, run, layer, from, to, phase_mask, &it))
		goto dberr;
	{
		double span = (double)(last - first) + 1;
		int r;
		while ((r = store_iter_next(it, &st)) == 1) {
			int64_t step = st.step;
			const uint32_t *v = st.counts;
			/* exact integer binning when it cannot overflow: floating
			 * error must not leave a bin empty when bins == steps */
			uint64_t off = (uint64_t)(step - first), sp = (uint64_t)(last - first) + 1;
			int b = sp <= UINT64_MAX / (uint64_t)nb ? (int)(off * (uint64_t)nb / sp)
								 : (int)((double)off / span * nb);
			if (b >= nb)
				b = nb - 1;
			for (int e = 0; e < E; e++)
				grid[(size_t)e * nb + b] += v[e];
			cnt[b]++;
		}
		if (r < 0) {
			rc = util_err_set(err, r, "%s", store_errmsg(s));
			goto out;
		}
	}
	for (int b = 0; b < nb; b++)
		for (int e = 0; e < E; e++) {
			double *g = &grid[(size_t)e * nb + b];
			*g = cnt[b] ? *g / cnt[b] : NAN;
		}
	*x0 = (double)first;
	*x1 = (double)last + 1;
	*nsteps = n;
	goto out;
dberr:
	rc = util_err_set(err, UTIL_EDB, "reading layer %d of run '%s': %s", layer, run->name,
			  store_errmsg(s));
out:
	store_iter_free(it);
	free(cnt);
	return rc;
}

/* Loads the placement in force at `step` into p2l and its replica counts:
 * `fixed` when given, else the deployed one, else (none recorded, or of
 * another shape) the static layout. */
static int placement_at(struct store *s, const struct store_run *run, int64_t step, int ranks,
			int slots, const int32_t *fixed, int32_t *p2l, int *cnt,
			struct util_err *err)
{
	int L = run->layers, E = run->experts, P = ranks * slots;
	int rc;

	if (fixed)
		memcpy(p2l, fixed, (size_t)L * (size_t)P * sizeof(int32_t));
	else if ((rc = analyze_start_placement(s, run, step, ranks, slots, 0, p2l, NULL, NULL,
					       err)))
		return rc;
	for (int l = 0; l < L; l++)
		analyze_replicas(p2l + (size_t)l * P, P, E, cnt + (size_t)l * E);
	return 0;
}

/* The walk of render_load_imbalance: the placement in force (p2l, cnt),
 * following the deployed changes, and the points so far. */
struct imb_walk {
	struct store *s;
	const struct store_run *run;
	int ranks, slots, P;
	int32_t *p2l;       /* [L * P] */
	int *cnt;           /* [L * E] replicas */
	double *load;       /* [ranks] */
	int64_t *changes;   /* steps where the deployed placement changes */
	size_t nchanges, ci;
	double *x, *y;
	size_t n, cap;
};

/* The placement in force at step, when a change came at or before it. */
static int imb_follow(struct imb_walk *w, int64_t step, struct util_err *err)
{
	int changed = 0;

	while (w->ci < w->nchanges && w->changes[w->ci] <= step) {
		w->ci++;
		changed = 1;
	}
	if (changed)
		return placement_at(w->s, w->run, step, w->ranks, w->slots, NULL, w->p2l, w->cnt,
				    err);
	return 0;
}

static void imb_push(struct imb_walk *w, double x, double y)
{
	if (w->n == w->cap) {
		w->cap *= 2;
		w->x = xrealloc(w->x, w->cap * sizeof(double));
		w->y = xrealloc(w->y, w->cap * sizeof(double));
	}
	w->x[w->n] = x;
	w->y[w->n] = y;
	w->n++;
}

/* One layer: its counts alone are read, not every layer of every step. */
static int imb_one_layer(struct imb_walk *w, int layer, int64_t from, int64_t to,
			 unsigned phase_mask, struct util_err *err)
{
	const int E = w->run->experts, P = w->P;
	struct store_iter *it = NULL;
	struct store_step st;
	int rc, r;

	if ((rc = store_iter_layer_new(w->s, w->run, layer, from, to, phase_mask, &it))) {
		util_err_set(err, rc, "%s", store_errmsg(w->s));
		return rc;
	}
	while ((r = store_iter_next(it, &st)) == 1) {
		const uint32_t *h = st.counts;
		double tot = 0, mx;
		if ((rc = imb_follow(w, st.step, err)))
			goto out;
		mx = analyze_device_load_u32(h, E, w->p2l + (size_t)layer * P, w->ranks, w->slots,
					     w->cnt + (size_t)layer * E, w->load);
		for (int e = 0; e < E; e++)
			tot += h[e];
		/* a step in which the layer got no token has no imbalance:
		 * NAN (a gap in the line), rather than a flattering 1.0 */
		imb_push(w, (double)st.step, analyze_scored_imbalance(mx, tot / w->ranks));
	}
	if (r < 0)
		rc = util_err_set(err, r, "%s", store_errmsg(w->s));
out:
	store_iter_free(it);
	return rc;
}

/* Every layer: sum of max over sum of mean device load per step. */
static int imb_all_layers(struct imb_walk *w, int64_t from, int64_t to, unsigned phase_mask,
			  struct util_err *err)
{
	const int L = w->run->layers, E = w->run->experts, P = w->P;
	struct store_iter *it = NULL;
	struct store_step st;
	int rc, r;

	if ((rc = store_iter_new(w->s, w->run, from, to, phase_mask, &it))) {
		util_err_set(err, rc, "%s", store_errmsg(w->s));
		return rc;
	}
	while ((r = store_iter_next(it, &st)) == 1) {
		double smax = 0, smean = 0;
		if ((rc = imb_follow(w, st.step, err)))
			goto out;
		for (int l = 0; l < L; l++) {
			const uint32_t *h = st.counts + (size_t)l * E;
			double tot = 0;
			smax += analyze_device_load_u32(h, E, w->p2l + (size_t)l * P, w->ranks,
							w->slots, w->cnt + (size_t)l * E, w->load);
			for (int e = 0; e < E; e++)
				tot += h[e];
			smean += tot / w->ranks;
		}
		imb_push(w, (double)st.step, analyze_scored_imbalance(smax, smean));
	}
	if (r < 0)
		rc = util_err_set(err, r, "%s", store_errmsg(w->s));
out:
	store_iter_free(it);
	return rc;
}

int render_load_imbalance(struct store *s, const struct store_run *run, int layer, int64_t from,
			  int64_t to, unsigned phase_mask, int ranks, int slots,
			  const int32_t *fixed, double **xo, double **yo, size_t *no,
			  struct util_err *err)
{
	const int L = run->layers, E = run->experts, P = ranks * slots;
	struct imb_walk w = {
		.s = s, .run = run, .ranks = ranks, .slots = slots, .P = P, .cap = 1024,
		.p2l = xmallocarray((size_t)L * (size_t)P, sizeof(int32_t)),
		.cnt = xmallocarray((size_t)L * (size_t)E, sizeof(int)),
		.load = xmallocarray((size_t)ranks, sizeof(double)),
	};
	int rc = 0;

	w.x = xmallocarray(w.cap, sizeof(double));
	w.y = xmallocarray(w.cap, sizeof(double));
	*xo = *yo = NULL;
	*no = 0;
	if (layer >= L) {
		rc = util_err_set(err, UTIL_ERANGE, "layer %d out of range [0, %d)", layer, L);
		goto out;
	}
	/* steps where the deployed placement changes inside the range */
	if (!fixed && from < to &&
	    (rc = store_deployed_changes(s, run, from + 1, to, &w.changes, &w.nchanges))) {
		rc = util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	if ((rc = placement_at(s, run, from, ranks, slots, fixed, w.p2l, w.cnt, err)))
		goto out;
	if ((rc = layer >= 0 ? imb_one_layer(&w, layer, from, to, phase_mask, err)
			     : imb_all_layers(&w, from, to, phase_mask, err)))
		goto out;
	*xo = w.x;
	*yo = w.y;
	*no = w.n;
	w.x = w.y = NULL;
out:
	free(w.p2l);
	free(w.cnt);
	free(w.load);
	free(w.changes);
	free(w.x);
	free(w.y);
	return rc;
}

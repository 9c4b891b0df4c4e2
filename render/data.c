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

int render_load_imbalance(struct store *s, const struct store_run *run, int layer, int64_t from,
			  int64_t to, unsigned phase_mask, int ranks, int slots,
			  const int32_t *fixed, double **xo, double **yo, size_t *no,
			  struct util_err *err)
{
	int L = run->layers, E = run->experts, P = ranks * slots, rc = 0, r;
	int32_t *p2l = xmallocarray((size_t)L * (size_t)P, sizeof(int32_t));
	int *cnt = xmallocarray((size_t)L * (size_t)E, sizeof(int));
	double *load = xmallocarray((size_t)ranks, sizeof(double));
	int64_t *changes = NULL;
	size_t nchanges = 0, ci = 0, cap = 1024, n = 0;
	double *x = xmallocarray(cap, sizeof(double)), *y = xmallocarray(cap, sizeof(double));
	struct store_iter *it = NULL;
	struct store_step st;

	*xo = *yo = NULL;
	*no = 0;
	if (layer >= L) {
		rc = util_err_set(err, UTIL_ERANGE, "layer %d out of range [0, %d)", layer, L);
		goto out;
	}
	/* steps where the deployed placement changes inside the range */
	if (!fixed && from < to &&
	    (rc = store_deployed_changes(s, run, from + 1, to, &changes, &nchanges))) {
		rc = util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	if ((rc = placement_at(s, run, from, ranks, slots, fixed, p2l, cnt, err)))
		goto out;
	if (layer >= 0) {
		/* one layer: read its counts alone, not every layer of every step */
		if ((rc = store_iter_layer_new(s, run, layer, from, to, phase_mask, &it))) {
			util_err_set(err, rc, "%s", store_errmsg(s));
			goto out;
		}
		while ((r = store_iter_next(it, &st)) == 1) {
			int64_t step = st.step;
			const uint32_t *h = st.counts;
			double tot = 0, mx;
			int changed = 0;
			while (ci < nchanges && changes[ci] <= step) {
				ci++;
				changed = 1;
			}
			if (changed &&
			    (rc = placement_at(s, run, step, ranks, slots, NULL, p2l, cnt, err)))
				goto out;
			mx = analyze_device_load_u32(h, E, p2l + (size_t)layer * P, ranks, slots,
						     cnt + (size_t)layer * E, load);
			for (int e = 0; e < E; e++)
				tot += h[e];
			if (n == cap) {
				cap *= 2;
				x = xrealloc(x, cap * sizeof(double));
				y = xrealloc(y, cap * sizeof(double));
			}
			x[n] = (double)step;
			y[n] = tot > 0 ? mx / (tot / ranks) : 1.0;
			n++;
		}
		if (r < 0) {
			rc = util_err_set(err, r, "%s", store_errmsg(s));
			goto out;
		}
		goto done;
	}
	if ((rc = store_iter_new(s, run, from, to, phase_mask, &it))) {
		util_err_set(err, rc, "%s", store_errmsg(s));
		goto out;
	}
	while ((r = store_iter_next(it, &st)) == 1) {
		double smax = 0, smean = 0;
		int changed = 0;
		while (ci < nchanges && changes[ci] <= st.step) {
			ci++;
			changed = 1;
		}
		if (changed &&
		    (rc = placement_at(s, run, st.step, ranks, slots, NULL, p2l, cnt, err)))
			goto out;
		for (int l = layer < 0 ? 0 : layer; l < (layer < 0 ? L : layer + 1); l++) {
			const uint32_t *h = st.counts + (size_t)l * E;
			double tot = 0;
			smax += analyze_device_load_u32(h, E, p2l + (size_t)l * P, ranks, slots,
							cnt + (size_t)l * E, load);
			for (int e = 0; e < E; e++)
				tot += h[e];
			smean += tot / ranks;
		}
		if (n == cap) {
			cap *= 2;
			x = xrealloc(x, cap * sizeof(double));
			y = xrealloc(y, cap * sizeof(double));
		}
		x[n] = (double)st.step;
		y[n] = smean > 0 ? smax / smean : 1.0;
		n++;
	}
	if (r < 0) {
		rc = util_err_set(err, r, "%s", store_errmsg(s));
		goto out;
	}
done:
	*xo = x;
	*yo = y;
	*no = n;
	x = y = NULL;
out:
	store_iter_free(it);
	free(p2l);
	free(cnt);
	free(load);
	free(changes);
	free(x);
	free(y);
	return rc;
}

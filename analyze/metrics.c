/*
 * metrics.c: device load and imbalance of a placement, and the per-layer
 * balance of a recorded run (analyze_balance_run), which `moetrace balance`
 * prints.  Every figure uses the even-split assumption stated in analyze.h.
 */
#include "analyze/analyze.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void analyze_static_phy2log(int experts, int ranks, int slots, int32_t *phy2log)
{
	int P = ranks * slots;

	for (int p = 0; p < P; p++)
		phy2log[p] = p % experts;
}

int analyze_start_placement(struct store *s, const struct store_run *run, int64_t step,
			    int ranks, int slots, int force_static, int32_t *phy2log,
			    int *deployed, int64_t *from, struct util_err *err)
{
	int64_t eff = INT64_MIN;
	int rc = force_static ? UTIL_ENOTFOUND
			      : store_deployed_at(s, run, step, ranks, slots, phy2log, &eff);
	size_t P = (size_t)ranks * (size_t)slots;

	if (rc == UTIL_ENOTFOUND || rc == UTIL_ERANGE) {
		for (int l = 0; l < run->layers; l++)
			analyze_static_phy2log(run->experts, ranks, slots, phy2log + (size_t)l * P);
		eff = INT64_MIN;
	} else if (rc) {
		return util_err_set(err, rc, "%s", store_errmsg(s));
	}
	if (deployed)
		*deployed = rc == 0;
	if (from)
		*from = eff;
	return 0;
}

int analyze_first_selected(struct store *s, const struct store_run *run, int64_t from,
			   int64_t to, unsigned phase_mask, int64_t *first, struct util_err *err)
{
	int64_t n = 0, last;

	*first = from;
	if (store_steps_span(s, run, -1, from, to, phase_mask, &n, first, &last))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	if (n == 0)
		*first = from;
	return 0;
}

int analyze_no_deployed_err(struct store *s, const struct store_run *run, int64_t step,
			    int ranks, int slots, struct util_err *err)
{
	int64_t next;

	if (store_deployed_next(s, run, step, &next) == 0)
		return util_err_set(err, UTIL_EUSAGE,
				    "--current deployed: run '%s' has no deployed placement in "
				    "force at step %lld, the end of the fitting window (the first "
				    "takes effect at step %lld)",
				    run->name, (long long)step, (long long)next);
	return util_err_set(err, UTIL_EUSAGE,
			    "--current deployed: run '%s' records no deployed placement for %d "
			    "ranks x %d slots",
			    run->name, ranks, slots);
}

int analyze_current_read(struct store *s, const struct store_run *run,
			 const struct analyze_shape *sh, int64_t step, const char *spec,
			 int32_t *phy2log, const char **name, struct util_err *err)
{
	const char *nm = spec;
	int rc;

	if (spec && !strcmp(spec, "static")) {
		size_t P = (size_t)sh->ranks * (size_t)sh->slots;
		for (int l = 0; l < sh->layers; l++)
			analyze_static_phy2log(sh->experts, sh->ranks, sh->slots, phy2log + l * P);
	} else if (!spec || !strcmp(spec, "deployed")) {
		int deployed = 0;
		if (!s)
			return util_err_set(err, UTIL_EUSAGE, "--current %s needs a database, not --heat",
					    spec ? spec : "(the placement in force)");
		if ((rc = analyze_start_placement(s, run, step, sh->ranks, sh->slots, 0, phy2log,
						  &deployed, NULL, err)))
			return rc;
		if (spec && !deployed)
			return analyze_no_deployed_err(s, run, step, sh->ranks, sh->slots, err);
		nm = deployed ? "deployed" : "static";
	} else if ((rc = analyze_format_read(spec, sh, phy2log, NULL, err))) {
		return rc;
	}
	if (name)
		*name = nm;
	return 0;
}

void analyze_replicas(const int32_t *phy2log, int nslots, int experts, int *cnt)
{
	memset(cnt, 0, (size_t)experts * sizeof(*cnt));
	for (int p = 0; p < nslots; p++)
		if (phy2log[p] >= 0 && phy2log[p] < experts)
			cnt[phy2log[p]]++;
}

int analyze_placement_check(const int32_t *phy2log, int experts, int ranks, int slots,
			    int no_dup, struct util_err *err)
{
	int P = ranks * slots, rc = 0;
	int *cnt = calloc((size_t)experts, sizeof(int));
	int *seen = calloc((size_t)experts, sizeof(int));

	if (!cnt || !seen) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (int p = 0; p < P; p++) {
		int e = phy2log[p];
		if (e < 0 || e >= experts) {
			rc = util_err_set(err, UTIL_ERANGE,
					  "slot %d (rank %d) holds expert %d, out of range [0, %d)", p,
					  p / slots, e, experts);
			goto out;
		}
		cnt[e]++;
		if (no_dup) {
			if (seen[e] == p / slots + 1) {
				rc = util_err_set(err, UTIL_ERANGE, "expert %d is twice on rank %d", e,
						  p / slots);
				goto out;
			}
			seen[e] = p / slots + 1;
		}
	}
	for (int e = 0; e < experts; e++)
		if (!cnt[e]) {
			rc = util_err_set(err, UTIL_ERANGE, "expert %d has no slot", e);
			goto out;
		}
out:
	free(cnt);
	free(seen);
	return rc;
}

/* Slots of rank r holding expert e. */
static int rank_holds(const int32_t *phy2log, int slots, int r, int e)
{
	int n = 0;

	for (int k = 0; k < slots; k++)
		n += phy2log[(size_t)r * slots + k] == e;
	return n;
}

int analyze_placement_undup(int32_t *phy2log, int experts, int ranks, int slots,
			    const double *heat, struct util_err *err)
{
	int P = ranks * slots, swaps = 0, rc = 0;
	int *cnt = calloc((size_t)experts, sizeof(int));
	double *load = calloc((size_t)ranks, sizeof(double));

	if (!cnt || !load) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	if (slots > experts) {
		rc = util_err_set(err, UTIL_EUSAGE,
				  "%d slots per rank for %d experts: some rank must hold an expert "
				  "twice",
				  slots, experts);
		goto out;
	}
	analyze_replicas(phy2log, P, experts, cnt);
	for (int e = 0; e < experts; e++)
		if (cnt[e] > ranks) {
			rc = util_err_set(err, UTIL_EUSAGE,
					  "expert %d has %d replicas on %d ranks, so some rank holds "
					  "it twice",
					  e, cnt[e], ranks);
			goto out;
		}
	if (heat)
		for (int p = 0; p < P; p++)
			load[p / slots] += heat[phy2log[p]] / cnt[phy2log[p]];
	for (int p = 0; p < P;) {
		int r = p / slots, e = phy2log[p], best = -1;
		double best_score = 0, we = heat ? heat[e] / cnt[e] : 0;
		if (rank_holds(phy2log, slots, r, e) < 2) {
			p++;
			continue;
		}
		for (int q = 0; q < P; q++) {
			int r2 = q / slots, f = phy2log[q];
			double wf, score;
			if (r2 == r || rank_holds(phy2log, slots, r2, e) ||
			    rank_holds(phy2log, slots, r, f))
				continue;
			wf = heat ? heat[f] / cnt[f] : 0;
			score = fmax(load[r] - we + wf, load[r2] - wf + we);
			if (best < 0 || score < best_score) {
				best = q;
				best_score = score;
			}
		}
		if (best < 0) {
			rc = util_err_set(err, UTIL_ERANGE,
					  "expert %d is twice on rank %d and no swap with another "
					  "rank moves it off",
					  e, r);
			goto out;
		}
		{
			int r2 = best / slots, f = phy2log[best];
			double wf = heat ? heat[f] / cnt[f] : 0;
			load[r] += wf - we;
			load[r2] += we - wf;
			phy2log[best] = e;
			phy2log[p] = f;
		}
		swaps++;
		/* slot p now holds f, which rank r did not hold: look at it again
		 * only for the rest of the rank's duplicates */
		p++;
	}
	rc = swaps;
out:
	free(cnt);
	free(load);
	return rc;
}

#define DEVICE_LOAD_BODY                                                                   \
	int P = ranks * slots;                                                             \
	int *own = NULL;                                                                   \
	double mx = 0;                                                                     \
	if (!cnt) {                                                                        \
		own = calloc((size_t)experts, sizeof(int));                                \
		if (!own)                                                                  \
			return -1;                                                         \
		analyze_replicas(phy2log, P, experts, own);                                \
		cnt = own;                                                                 \
	}                                                                                  \
	for (int r = 0; r < ranks; r++) {                                                  \
		double sum = 0;                                                            \
		for (int k = 0; k < slots; k++) {                                          \
			int e = phy2log[r * slots + k];                                    \
			sum += (double)heat[e] / cnt[e];                                   \
		}                                                                          \
		load[r] = sum;                                                             \
		if (sum > mx)                                                              \
			mx = sum;                                                          \
	}                                                                                  \
	free(own);                                                                         \
	return mx;

double analyze_device_load(const double *heat, int experts, const int32_t *phy2log, int ranks,
			   int slots, const int *cnt, double *load)
{
	DEVICE_LOAD_BODY
}

double analyze_device_load_u32(const uint32_t *heat, int experts, const int32_t *phy2log,
			       int ranks, int slots, const int *cnt, double *load)
{
	DEVICE_LOAD_BODY
}

double analyze_routed_tokens(const uint32_t *counts, int L, int E, int topk)
{
	uint64_t best = 0;

	for (int l = 0; l < L; l++) {
		uint64_t s = 0;
		for (int e = 0; e < E; e++)
			s += counts[(size_t)l * E + e];
		if (s > best)
			best = s;
	}
	return topk > 0 ? (double)best / topk : (double)best;
}

double analyze_imbalance(const double *load, int n)
{
	double sum = 0, mx = 0;

	for (int i = 0; i < n; i++) {
		sum += load[i];
		if (load[i] > mx)
			mx = load[i];
	}
	if (sum <= 0)
		return 1.0;
	return mx / (sum / n);
}

double analyze_scored_imbalance(double max, double mean)
{
	return mean > 0 ? max / mean : NAN;
}

int analyze_balance_run(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			unsigned phase_mask, const int32_t *phy2log, int ranks, int slots,
			struct analyze_balance *b)
{
	int L = run->layers, E = run->experts, P = ranks * slots;
	size_t cap = 1024, n = 0;
	double *per_step = NULL, *overall_step = NULL, *load = NULL, *sum = NULL;
	int *cnt = NULL;
	struct store_iter *it = NULL;
	struct store_step st;
	int rc;

	memset(b, 0, sizeof(*b));
	b->layers = L;
	b->layer = calloc((size_t)L, sizeof(*b->layer));
	per_step = malloc(cap * (size_t)L * sizeof(double));
	overall_step = malloc(cap * sizeof(double));
	load = malloc((size_t)ranks * sizeof(double));
	sum = calloc((size_t)L * (size_t)E, sizeof(double));
	cnt = malloc((size_t)L * (size_t)E * sizeof(int));
	if (!b->layer || !per_step || !overall_step || !load || !sum || !cnt) {
		rc = UTIL_ENOMEM;
		goto out;
	}
	for (int l = 0; l < L; l++)
		analyze_replicas(phy2log + (size_t)l * P, P, E, cnt + (size_t)l * E);
	if ((rc = store_iter_new(s, run, from, to, phase_mask, &it)))
		goto out;
	while ((rc = store_iter_next(it, &st)) == 1) {
		double smax = 0, smean = 0;
		if (n == cap) {
			cap *= 2;
			double *a = realloc(per_step, cap * (size_t)L * sizeof(double));
			double *o = realloc(overall_step, cap * sizeof(double));
			if (a)
				per_step = a;
			if (o)
				overall_step = o;
			if (!a || !o) {
				rc = UTIL_ENOMEM;
				goto out;
			}
		}
		for (int l = 0; l < L; l++) {
			const uint32_t *h = st.counts + (size_t)l * E;
			double mx = analyze_device_load_u32(h, E, phy2log + (size_t)l * P, ranks,
							    slots, cnt + (size_t)l * E, load);
			double tot = 0;
			for (int e = 0; e < E; e++) {
				tot += h[e];
				sum[(size_t)l * E + e] += h[e];
			}
			/* a layer that got no token in a step did no work in it:
			 * not scored (NAN), rather than counted as balanced */
			per_step[n * (size_t)L + l] = analyze_scored_imbalance(mx, tot / ranks);
			b->empty_layer_steps += tot == 0;
			smax += mx;
			smean += tot / ranks;
		}
		overall_step[n] = analyze_scored_imbalance(smax, smean);
		if (smean == 0) {
			b->empty_steps++;
			b->empty_layer_steps -= L;
		}
		n++;
	}
	if (rc < 0)
		goto out;
	rc = 0;
	b->steps = (int64_t)n;
	{
		double tmax = 0, tmean = 0, osum = 0;
		double *col = malloc((n ? n : 1) * sizeof(double));
		if (!col) {
			rc = UTIL_ENOMEM;
			goto out;
		}
		for (int l = 0; l < L; l++) {
			struct analyze_balance_layer *bl = &b->layer[l];
			const double *h = sum + (size_t)l * E;
			double tot = 0, top = -1, acc = 0;
			for (int e = 0; e < E; e++) {
				tot += h[e];
				if (h[e] > top) {
					top = h[e];
					bl->hottest = e;
				}
			}
			bl->max_load = analyze_device_load(h, E, phy2log + (size_t)l * P, ranks, slots,
							   cnt + (size_t)l * E, load);
			bl->mean_load = tot / ranks;
			bl->imbalance = analyze_scored_imbalance(bl->max_load, bl->mean_load);
			bl->hottest_share = tot > 0 ? top / tot : 0;
			tmax += bl->max_load;
			tmean += bl->mean_load;
			size_t k = 0;
			for (size_t i = 0; i < n; i++)
				if (!isnan(per_step[i * (size_t)L + l])) {
					col[k] = per_step[i * (size_t)L + l];
					acc += col[k++];
				}
			bl->steps = (int64_t)k;
			bl->step_mean = k ? acc / (double)k : NAN;
			bl->step_p50 = k ? util_percentile(col, k, 50) : NAN;
			bl->step_p99 = k ? util_percentile(col, k, 99) : NAN;
		}
		for (size_t i = 0; i < n; i++)
			if (!isnan(overall_step[i]))
				osum += overall_step[i];
		b->overall = analyze_scored_imbalance(tmax, tmean); /* no token: NAN */
		b->step_overall_mean = n > (size_t)b->empty_steps
					       ? osum / (double)(n - (size_t)b->empty_steps)
					       : NAN;
		free(col);
	}
out:
	store_iter_free(it);
	free(per_step);
	free(overall_step);
	free(load);
	free(sum);
	free(cnt);
	if (rc)
		analyze_balance_release(b);
	return rc;
}

void analyze_balance_release(struct analyze_balance *b)
{
	free(b->layer);
	b->layer = NULL;
}

int analyze_parse_redundant(const char *arg, int *out, struct util_err *err)
{
	int rc = util_parse_int(arg, 0, STORE_MAX_SLOTS, out, "--redundant", err);

	if (!rc && *out == 0)
		*out = ANALYZE_REDUNDANT_ZERO;
	return rc;
}

int analyze_layout_resolve(const struct store_run *run, int ranks, int slots, int redundant,
			   int *out_ranks, int *out_slots, struct util_err *err)
{
	const struct store_model *m = run->model[0] ? store_model_find(run->model) : NULL;
	int E = run->experts;

	if (!ranks)
		ranks = run->ranks ? run->ranks : m ? m->ranks : 0;
	if (!ranks)
		return util_err_set(err, UTIL_EUSAGE,
				    "run '%s' records no EP layout: give --ranks and --slots",
				    run->name);
	int given = redundant != 0;

	if (redundant == ANALYZE_REDUNDANT_ZERO)
		redundant = 0;
	if (slots && given)
		return util_err_set(err, UTIL_EUSAGE, "give --slots or --redundant, not both");
	if (given) {
		if ((E + redundant) % ranks)
			return util_err_set(err, UTIL_EUSAGE,
					    "--redundant %d: %d experts + %d redundant is not a "
					    "multiple of %d ranks",
					    redundant, E, redundant, ranks);
		slots = (E + redundant) / ranks;
	}
	if (!slots) {
		if (run->ranks == ranks && run->slots)
			slots = run->slots;
		else if (m && m->ranks == ranks)
			slots = m->slots;
		else
			slots = (E + ranks - 1) / ranks;
	}
	if ((int64_t)ranks * slots < E)
		return util_err_set(err, UTIL_EUSAGE,
				    "%d ranks x %d slots = %d slots cannot hold %d experts", ranks,
				    slots, ranks * slots, E);
	if ((int64_t)ranks * slots > STORE_MAX_SLOTS)
		return util_err_set(err, UTIL_EUSAGE, "%d ranks x %d slots is too many slots", ranks,
				    slots);
	*out_ranks = ranks;
	*out_slots = slots;
	return 0;
}

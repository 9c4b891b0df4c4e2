/*
 * compare.c: placement algorithms fitted on one window of a run and scored
 * on the window that follows, the analysis behind `moetrace compare` and
 * `moetrace report` (each resolves its own --steps into the windows), and
 * the --rounds protocol of consecutive windows.
 *
 * Start at analyze_compare_run: it reads the fitting window (read_fit),
 * fits every algorithm (fit_one), walks the scored window's steps once
 * scoring all of them (score), then sums up (summarise).
 * analyze_compare_rounds runs the same four steps once per round.
 */
#include "analyze/analyze.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int oom(struct util_err *err)
{
	return util_err_set(err, UTIL_ENOMEM, "out of memory");
}

/* The fitting window's heat, episodes and, for the flagship, blocks. */
struct fit_window {
	double *heat, *episodes;
	struct analyze_blocks blk;
};

static void fit_window_release(struct fit_window *w)
{
	free(w->heat);
	free(w->episodes);
	analyze_blocks_release(&w->blk);
}

/* The flagship reads the window as blocks with its history (robust.c)
 * when in says so and it is among the algorithms. */
static int wants_blocks(const struct analyze_compare_in *in)
{
	for (int i = 0; i < in->n_algos && in->flagship_blocks; i++)
		if (analyze_algo_forecasts(in->algos[i]))
			return 1;
	return 0;
}

static int read_fit(const struct analyze_compare_in *in, int64_t from, int64_t to,
		    struct fit_window *w, int64_t *nsteps, struct util_err *err)
{
	size_t LE = (size_t)in->run->layers * in->run->experts;
	int rc;

	if (!w->heat && !(w->heat = malloc(LE * sizeof(double))))
		return oom(err);
	if (in->n_episodes > 0 && !w->episodes &&
	    !(w->episodes = malloc((size_t)in->n_episodes * LE * sizeof(double))))
		return oom(err);
	if ((rc = analyze_window_heat(in->store, in->run, from, to, in->phase_mask,
				      in->n_episodes, w->heat, w->episodes, nsteps)))
		return util_err_set(err, rc, "%s", store_errmsg(in->store));
	analyze_blocks_release(&w->blk);
	if (*nsteps && wants_blocks(in))
		return analyze_window_blocks(in->store, in->run, from, to, in->phase_mask,
					     &w->blk, err);
	return 0;
}

/* Fits algorithm a on w from the placement `start` (copies on the tiers of
 * ranks_per_node; 0: one node). */
static int fit_one(const struct analyze_compare_in *in, struct analyze_compare_algo *a,
		   const struct fit_window *w, const int32_t *start, int ranks_per_node,
		   struct util_err *err)
{
	int L = in->run->layers, E = in->run->experts, P = in->ranks * in->slots;
	int fl = in->flagship_blocks && analyze_algo_forecasts(a->algo);
	struct analyze_plan_in pin = {
		.algo = a->algo,
		.layers = L,
		.experts = E,
		.ranks = in->ranks,
		.slots = in->slots,
		.nodes = in->nodes,
		.groups = in->groups,
		.max_moves = in->max_moves,
		.seed = in->seed,
		.heat = w->heat,
		.episodes = fl ? NULL : w->episodes,
		.n_episodes = fl ? 0 : in->n_episodes,
		.blocks = fl ? w->blk.heat : NULL,
		.n_blocks = fl ? w->blk.n : 0,
		.n_hist = fl ? w->blk.hist : 0,
		.current = start,
		.only_layer = -1,
		.threads = 2,
		.ranks_per_node = ranks_per_node,
	};
	int rc;

	analyze_plan_release(&a->plan);
	if ((rc = analyze_plan_run(&pin, &a->plan, err)))
		return rc;
	if (!a->cnt && !(a->cnt = malloc((size_t)L * E * sizeof(int))))
		return oom(err);
	for (int l = 0; l < L; l++)
		analyze_replicas(a->plan.phy2log + (size_t)l * P, P, E, a->cnt + (size_t)l * E);
	return 0;
}

/* One step's overall imbalance under p2l (sum over layers of max / sum of
 * mean device load). */
static double step_imbalance(const struct analyze_compare_in *in, const uint32_t *counts,
			     const int32_t *p2l, const int *cnt, double *load)
{
	int L = in->run->layers, E = in->run->experts, R = in->ranks, P = R * in->slots;
	double mx = 0, mn = 0;

	for (int l = 0; l < L; l++) {
		double tot = 0;
		mx += analyze_device_load_u32(counts + (size_t)l * E, E, p2l + (size_t)l * P, R,
					      in->slots, cnt + (size_t)l * E, load);
		for (int k = 0; k < R; k++)
			tot += load[k];
		mn += tot / R;
	}
	return mn > 0 ? mx / mn : 1;
}

/* The scoring walk's state. */
struct walk {
	int timed, by_phase;
	const int32_t *start;
	int *start_cnt; /* [layers * experts] */
	double *load;   /* [ranks] */
};

/* One algorithm on one step: its per-step imbalance, token drop and MoE time. */
static int score_algo(const struct analyze_compare_in *in, const struct walk *wk,
		      const struct store_step *st, struct analyze_compare_algo *a, int64_t n,
		      int phase)
{
	int L = in->run->layers, E = in->run->experts, R = in->ranks, S = in->slots, P = R * S;
	double smax = 0, smean = 0;

	for (int l = 0; l < L; l++) {
		double m = analyze_device_load_u32(st->counts + (size_t)l * E, E,
						   a->plan.phy2log + (size_t)l * P, R, S,
						   a->cnt + (size_t)l * E, wk->load);
		double tot = 0;
		for (int r = 0; r < R; r++)
			tot += wk->load[r];
		smax += m;
		smean += tot / R;
		if (wk->timed)
			a->moe_s += analyze_layer_seconds(in->dep, st->counts + (size_t)l * E,
							  a->plan.phy2log + (size_t)l * P, S,
							  a->cnt + (size_t)l * E);
		a->dropped += analyze_token_drop(wk->load, R, in->capacity) * tot;
		a->tokens += tot;
	}
	if ((size_t)n == a->step_cap) {
		size_t cap = a->step_cap ? 2 * a->step_cap : 256;
		double *v = realloc(a->step_imb, cap * sizeof(double));
		if (!v)
			return UTIL_ENOMEM;
		a->step_imb = v;
		a->step_cap = cap;
	}
	a->step_imb[n] = smean > 0 ? smax / smean : 1;
	a->step_sum += a->step_imb[n];
	if (wk->by_phase)
		a->phase_step[phase] += a->step_imb[n];
	return 0;
}

/* The start placement on one step: tokens, times and, by phase, its
 * imbalance (not for a step without tokens, which is not scored). */
static void score_start(const struct analyze_compare_in *in, const struct walk *wk,
			const struct store_step *st, struct analyze_compare *c, int phase,
			int empty)
{
	int L = in->run->layers, E = in->run->experts, P = in->ranks * in->slots;
	const int topk = in->run->topk > 0 ? in->run->topk
			 : in->dep && in->dep->topk > 0 ? in->dep->topk
							: 1;
	double tk;

	/* tokens of the batch: recorded, else routed tokens / top-k */
	tk = st->tokens > 0 ? (double)st->tokens : analyze_routed_tokens(st->counts, L, E, topk);
	c->tokens += tk;
	if (wk->timed) {
		c->dense_s += analyze_dense_seconds(in->dep, tk);
		for (int l = 0; l < L; l++)
			c->moe_s += analyze_layer_seconds(in->dep, st->counts + (size_t)l * E,
							  wk->start + (size_t)l * P, in->slots,
							  wk->start_cnt + (size_t)l * E);
	}
	if (wk->by_phase && !empty) {
		double a = 0;
		for (size_t i = 0; i < (size_t)L * E; i++)
			a += st->counts[i];
		c->assign += a;
		c->phase[phase].n++;
		c->phase[phase].assign += a / L;
		c->phase[phase].start +=
			step_imbalance(in, st->counts, wk->start, wk->start_cnt, wk->load);
	}
}

/* Walks the scored window [from, to] once: every algorithm's per-step
 * imbalance, token drop and time, the start placement's, and the window's
 * summed heat. */
static int score(const struct analyze_compare_in *in, struct walk *wk, int64_t from,
		 int64_t to, struct analyze_compare *c, struct util_err *err)
{
	int L = in->run->layers, E = in->run->experts;
	struct store_iter *it = NULL;
	struct store_step st;
	int rc;

	memset(c->next_heat, 0, (size_t)L * E * sizeof(double));
	c->next_steps = c->next_scored = 0;
	for (int i = 0; i < c->n_algos; i++)
		c->algo[i].step_sum = c->algo[i].dropped = c->algo[i].tokens = 0;
	if ((rc = store_iter_new(in->store, in->run, from, to, in->phase_mask, &it)))
		return util_err_set(err, rc, "%s", store_errmsg(in->store));
	while ((rc = store_iter_next(it, &st)) == 1) {
		int p = st.phase >= 0 && st.phase < ANALYZE_PHASES ? st.phase : 0, empty = 1;
		for (size_t k = 0; k < (size_t)L * E; k++) {
			c->next_heat[k] += st.counts[k];
			empty &= st.counts[k] == 0;
		}
		score_start(in, wk, &st, c, p, empty);
		/* a step in which no layer got a token did no MoE work: it has
		 * no imbalance to score (counted as 1.0, it would flatter) */
		for (int i = 0; i < c->n_algos && !empty; i++)
			if (score_algo(in, wk, &st, &c->algo[i], c->next_scored, p)) {
				rc = oom(err);
				goto out;
			}
		c->next_scored += !empty;
		c->next_steps++;
	}
	if (rc < 0)
		util_err_set(err, rc, "%s", store_errmsg(in->store));
out:
	store_iter_free(it);
	return rc < 0 ? rc : 0;
}

/* The figures of every algorithm from the walk (c->next_steps > 0). */
static int summarise(const struct analyze_compare_in *in, struct analyze_compare *c,
		     double *load, struct util_err *err)
{
	int L = c->layers, E = c->experts, R = in->ranks, P = R * in->slots;
	const struct analyze_deploy *dep = in->dep;
	uint64_t ebytes = dep ? dep->expert_bytes : 0;
	double n = (double)c->next_steps;

	for (int l = 0; l < L; l++)
		c->lb_next[l] = analyze_lower_bound(c->next_heat + (size_t)l * E, E, R, in->slots);
	c->timed = c->moe_s > 0;
	c->step_s = dep && dep->step_seconds > 0 ? dep->step_seconds * n : c->dense_s + c->moe_s;
	for (int i = 0; i < c->n_algos; i++) {
		struct analyze_compare_algo *a = &c->algo[i];
		double smax = 0, sum_mean = 0, sum_lb = 0;
		if ((!a->next_max && !(a->next_max = malloc((size_t)L * sizeof(double)))) ||
		    (!a->next_mean && !(a->next_mean = malloc((size_t)L * sizeof(double)))))
			return oom(err);
		for (int l = 0; l < L; l++) {
			double tot = 0;
			a->next_max[l] = analyze_device_load(c->next_heat + (size_t)l * E, E,
							     a->plan.phy2log + (size_t)l * P, R,
							     in->slots, a->cnt + (size_t)l * E, load);
			for (int r = 0; r < R; r++)
				tot += load[r];
			a->next_mean[l] = tot / R;
			smax += a->next_max[l];
			sum_mean += a->next_mean[l];
			sum_lb += c->lb_next[l];
		}
		a->fit = a->plan.sum_mean > 0 ? a->plan.sum_max / a->plan.sum_mean : 1;
		a->gap_fit = a->plan.sum_lb > 0 ? a->plan.sum_max / a->plan.sum_lb - 1 : 0;
		a->next = sum_mean > 0 ? smax / sum_mean : 1;
		a->gap_next = sum_lb > 0 ? smax / sum_lb - 1 : 0;
		a->next_step = c->next_scored ? a->step_sum / (double)c->next_scored : NAN;
		a->next_p99 = c->next_scored
				      ? util_percentile(a->step_imb, (size_t)c->next_scored, 99)
				      : NAN;
		a->drop = a->tokens > 0 ? a->dropped / a->tokens : 0;
		a->bytes = (int64_t)(a->plan.moves * ebytes);
		a->bytes_inter = (int64_t)(a->plan.moves_inter * ebytes);
		if (dep)
			a->xfer_s = analyze_transfer_seconds_tiers(
				a->plan.send, a->plan.recv, R, ebytes, dep->intra_gbps,
				dep->inter_gbps, &a->xfer_intra_s, &a->xfer_inter_s);
		a->moe_share = c->timed ? (c->moe_s - a->moe_s) / c->moe_s : 0;
		a->step_share = c->timed && c->step_s > 0 ? (c->moe_s - a->moe_s) / c->step_s : 0;
	}
	/* per phase: means over each phase's steps */
	c->assign = c->next_steps ? c->assign / n / L : 0;
	for (int p = 0; p < ANALYZE_PHASES; p++) {
		double k = c->phase[p].n ? (double)c->phase[p].n : 1;
		c->phase[p].assign /= k;
		c->phase[p].start /= k;
		for (int i = 0; i < c->n_algos; i++)
			c->algo[i].phase_step[p] /= k;
	}
	return 0;
}

/* The result's arrays and the walk's scratch. */
static int setup(const struct analyze_compare_in *in, struct analyze_compare *c,
		 struct walk *wk, struct util_err *err)
{
	int L = in->run->layers, E = in->run->experts, P = in->ranks * in->slots;

	memset(c, 0, sizeof(*c));
	c->layers = L;
	c->experts = E;
	c->algo = calloc((size_t)(in->n_algos > 0 ? in->n_algos : 1), sizeof(*c->algo));
	c->next_heat = malloc((size_t)L * E * sizeof(double));
	c->lb_next = malloc((size_t)L * sizeof(double));
	wk->load = calloc((size_t)in->ranks, sizeof(double));
	wk->start_cnt = wk->timed || wk->by_phase ? malloc((size_t)L * E * sizeof(int)) : NULL;
	if (!c->algo || !c->next_heat || !c->lb_next || !wk->load ||
	    ((wk->timed || wk->by_phase) && !wk->start_cnt))
		return oom(err);
	c->n_algos = in->n_algos;
	for (int i = 0; i < in->n_algos; i++)
		c->algo[i].algo = in->algos[i];
	for (int l = 0; wk->start_cnt && l < L; l++)
		analyze_replicas(in->start + (size_t)l * P, P, E, wk->start_cnt + (size_t)l * E);
	return 0;
}

static int heat_has_token(const double *heat, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (heat[i] > 0)
			return 1;
	return 0;
}

int analyze_compare_run(const struct analyze_compare_in *in, struct analyze_compare *out,
			struct util_err *err)
{
	struct fit_window w = { 0 };
	struct walk wk = {
		.timed = in->timed && in->dep &&
			 (in->dep->sec_per_token > 0 || in->dep->sec_per_expert > 0),
		.by_phase = in->by_phase,
		.start = in->start,
	};
	int rc;

	if ((rc = setup(in, out, &wk, err)))
		goto out;
	if ((rc = read_fit(in, in->fit_from, in->fit_to, &w, &out->fit_steps, err)) ||
	    !out->fit_steps)
		goto out;
	if (!heat_has_token(w.heat, (size_t)in->run->layers * in->run->experts)) {
		/* any placement fits a window without a token "perfectly": a fit
		 * of 1.0 and moves made on nothing, which place refuses too */
		rc = util_err_set(err, UTIL_EUSAGE,
				  "the fitting window's steps %lld..%lld carry no token: "
				  "nothing to place on",
				  (long long)in->fit_from, (long long)in->fit_to);
		goto out;
	}
	for (int i = 0; i < out->n_algos; i++)
		if ((rc = fit_one(in, &out->algo[i], &w, in->start,
				  in->dep ? in->dep->ranks_per_node : 0, err)))
			goto out;
	if ((rc = score(in, &wk, in->next_from, in->next_to, out, err)) || !out->next_steps)
		goto out;
	if (!out->next_scored) { /* steps, but not one token to score a placement on */
		rc = util_err_set(err, UTIL_EUSAGE,
				  "steps %lld..%lld carry no token: nothing to score the placements on",
				  (long long)in->next_from, (long long)in->next_to);
		goto out;
	}
	rc = summarise(in, out, wk.load, err);
out:
	/* the caller reads the fitting window's summed heat */
	out->fit_heat = w.heat;
	w.heat = NULL;
	fit_window_release(&w);
	free(wk.load);
	free(wk.start_cnt);
	return rc;
}

void analyze_compare_release(struct analyze_compare *c)
{
	if (!c)
		return;
	for (int i = 0; c->algo && i < c->n_algos; i++) {
		analyze_plan_release(&c->algo[i].plan);
		free(c->algo[i].cnt);
		free(c->algo[i].next_max);
		free(c->algo[i].next_mean);
		free(c->algo[i].step_imb);
	}
	free(c->algo);
	free(c->fit_heat);
	free(c->next_heat);
	free(c->lb_next);
	memset(c, 0, sizeof(*c));
}

int analyze_algos_parse(const char *list, int skip_unknown, const struct analyze_algo **algos,
			int max, int *n, struct util_err *err)
{
	*n = 0;
	while (*list) {
		char name[64], hint[96];
		size_t len = strcspn(list, ",");
		const struct analyze_algo *al;
		if (len == 0 || len >= sizeof(name))
			return util_err_set(err, UTIL_EUSAGE, "--algos: empty or too long name");
		memcpy(name, list, len);
		name[len] = '\0';
		list += len + (list[len] == ',');
		if (!(al = analyze_algo_find(name)) && skip_unknown)
			continue;
		if (!al)
			return util_err_set(
				err, UTIL_EUSAGE,
				"--algos: unknown algorithm '%s'%s (moetrace place --list)", name,
				util_did_you_mean(analyze_algo_suggest(name), hint, sizeof(hint)));
		for (int i = 0; i < *n; i++)
			if (algos[i] == al) /* two rows of one algorithm compare nothing */
				return util_err_set(err, UTIL_EUSAGE,
						    "--algos: '%s' is given twice", name);
		if (*n == max)
			return util_err_set(err, UTIL_EUSAGE, "--algos: at most %d algorithms", max);
		algos[(*n)++] = al;
	}
	if (!*n)
		return util_err_set(err, UTIL_EUSAGE, "--algos: no algorithm named");
	return 0;
}

/* ---- --rounds: the protocol of consecutive windows ------------------------ */

/* The ids of the selected steps of [from, to], in order (*ids malloc'ed). */
static int collect_steps(const struct analyze_compare_in *in, int64_t **ids, int64_t *n,
			 struct util_err *err)
{
	struct store_iter *it = NULL;
	struct store_step st;
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((rc = store_iter_new(in->store, in->run, in->fit_from, in->fit_to, in->phase_mask,
				 &it)))
		return util_err_set(err, rc, "%s", store_errmsg(in->store));
	while ((rc = store_iter_next(it, &st)) == 1) {
		if ((size_t)*n == cap) {
			size_t c2 = cap ? 2 * cap : 256;
			int64_t *v = realloc(*ids, c2 * sizeof(int64_t));
			if (!v) {
				store_iter_free(it);
				return oom(err);
			}
			*ids = v;
			cap = c2;
		}
		(*ids)[(*n)++] = st.step;
	}
	if (rc < 0)
		util_err_set(err, rc, "%s", store_errmsg(in->store));
	store_iter_free(it);
	return rc < 0 ? rc : 0;
}

/* One round's figures of every algorithm, whose placement becomes its next start. */
static void round_record(struct analyze_compare *c, struct analyze_rounds *out, int k,
			 int32_t *prev, size_t LP)
{
	for (int i = 0; i < c->n_algos; i++) {
		const struct analyze_compare_algo *a = &c->algo[i];
		struct analyze_round *r = &out->r[(size_t)i * out->rounds + k];
		r->fit = a->fit;
		r->next = a->next;
		r->next_step = a->next_step;
		r->moves = a->plan.moves;
		r->seconds = a->plan.seconds;
		r->forecast = a->plan.forecast;
		r->forecast_blocks = a->plan.forecast_blocks;
		r->forecast_hist = a->plan.forecast_hist;
		memcpy(prev + (size_t)i * LP, a->plan.phy2log, LP * sizeof(int32_t));
	}
}

int analyze_compare_rounds(const struct analyze_compare_in *in, int windows,
			   struct analyze_rounds *out, struct util_err *err)
{
	size_t LP = (size_t)in->run->layers * in->ranks * in->slots;
	struct analyze_compare c = { 0 };
	struct analyze_compare_in rin = *in;
	struct walk wk = { 0 };
	struct fit_window w = { 0 };
	int64_t *ids = NULL, n = 0, fit_steps;
	int32_t *prev = NULL;
	int rc, N = windows;

	memset(out, 0, sizeof(*out));
	rin.dep = NULL; /* the rounds report balance only */
	rin.timed = rin.by_phase = 0;
	if ((rc = collect_steps(in, &ids, &n, err)))
		goto out;
	if (n < N) {
		rc = util_err_set(err, UTIL_EUSAGE,
				  "--rounds %d: run '%s' has %lld selected steps, fewer than %d "
				  "windows",
				  N, in->run->name, (long long)n, N);
		goto out;
	}
	out->n_algos = in->n_algos;
	out->rounds = N - 1;
	out->steps = n;
	out->win = malloc(2 * (size_t)N * sizeof(int64_t));
	out->r = calloc((size_t)in->n_algos * (N - 1), sizeof(*out->r));
	prev = malloc((size_t)in->n_algos * LP * sizeof(int32_t));
	if (!out->win || !out->r || !prev) {
		rc = oom(err);
		goto out;
	}
	/* window k: ordinals [k n / N, (k + 1) n / N) */
	for (int k = 0; k < N; k++) {
		out->win[(size_t)2 * k] = ids[(int64_t)k * n / N];
		out->win[(size_t)2 * k + 1] = ids[(int64_t)(k + 1) * n / N - 1];
	}
	for (int i = 0; i < in->n_algos; i++)
		memcpy(prev + (size_t)i * LP, in->start, LP * sizeof(int32_t));
	if ((rc = setup(&rin, &c, &wk, err)))
		goto out;
	for (int k = 0; k + 1 < N; k++) {
		const int64_t *fw = out->win + (size_t)2 * k, *nw = fw + 2;
		if ((rc = read_fit(&rin, fw[0], fw[1], &w, &fit_steps, err)))
			goto out;
		/* as one window: nothing to fit on, or to score on, is no figure */
		if (!heat_has_token(w.heat, (size_t)in->run->layers * in->run->experts)) {
			rc = util_err_set(err, UTIL_EUSAGE,
					  "--rounds %d: window %d's steps %lld..%lld carry no token: "
					  "nothing to place on (fewer rounds, or --steps, keep such "
					  "steps out)",
					  N, k, (long long)fw[0], (long long)fw[1]);
			goto out;
		}
		for (int i = 0; i < c.n_algos; i++)
			if ((rc = fit_one(&rin, &c.algo[i], &w, prev + (size_t)i * LP, 0, err)))
				goto out;
		if ((rc = score(&rin, &wk, nw[0], nw[1], &c, err)))
			goto out;
		if (!c.next_scored) {
			rc = util_err_set(err, UTIL_EUSAGE,
					  "--rounds %d: window %d's steps %lld..%lld carry no token: "
					  "nothing to score the placements on (fewer rounds, or --steps, "
					  "keep such steps out)",
					  N, k + 1, (long long)nw[0], (long long)nw[1]);
			goto out;
		}
		if ((rc = summarise(&rin, &c, wk.load, err)))
			goto out;
		round_record(&c, out, k, prev, LP);
	}
out:
	free(ids);
	free(prev);
	free(wk.load);
	free(wk.start_cnt);
	fit_window_release(&w);
	analyze_compare_release(&c);
	return rc;
}

struct analyze_round analyze_rounds_mean(const struct analyze_rounds *r, int i)
{
	struct analyze_round m = { 0 };
	int N1 = r->rounds;

	for (int k = 0; k < N1; k++) {
		const struct analyze_round *x = &r->r[(size_t)i * N1 + k];
		m.fit += x->fit / N1;
		m.next += x->next / N1;
		m.next_step += x->next_step / N1;
		m.seconds += x->seconds / N1;
		m.moves += x->moves;
	}
	return m;
}

void analyze_rounds_release(struct analyze_rounds *r)
{
	if (r) {
		free(r->win);
		free(r->r);
		memset(r, 0, sizeof(*r));
	}
}

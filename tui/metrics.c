/*
 * metrics.c: the live view as Prometheus metrics (`moetrace serve`).
 * Gauges come from the same tui_view that `moetrace top` draws (the
 * window's imbalance per layer under the placement in force, and under
 * the chosen algorithm's placement fitted as top fits it); counters are
 * kept here: tokens routed to each EP rank of each layer (and, on request,
 * to each expert) summed over every step of the run read so far, each step
 * under the placement in force at that step.  tui_metrics_poll() reads
 * only the steps that are new since its last call.
 *
 * Device loads assume a replicated expert's tokens split evenly among its
 * replicas (analyze/analyze.h), so a rank's counter may hold fractions.
 * The text format is Prometheus' exposition format 0.0.4.
 */
#include "tui/tui_int.h"
#include "collector/moetrace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tui_metrics {
	struct store *s;
	struct store_run run;
	int L, E, R, S, P;
	int per_expert;
	int64_t next;	     /* first step not yet counted */
	int64_t counted;     /* steps counted */
	int64_t place_from;  /* step the placement in `cur` took effect; INT64_MIN: static */
	int64_t place_until; /* cur is known to hold for steps < place_until */
	int64_t deployed_rows; /* deployed placement rows of the run at the last poll */
	int32_t *cur;	     /* [L * P] placement in force */
	double *inv;	     /* [L * P] 1 / replicas of the slot's expert */
	double *rank_tok;    /* [L * R] */
	double *exp_tok;     /* [L * E] (per_expert only) */
	int *cnt;	     /* [E] scratch: replicas per expert */
	char errmsg[512];
};

static void weights(struct tui_metrics *m)
{
	int *cnt = m->cnt;

	for (int l = 0; l < m->L; l++) {
		const int32_t *pl = m->cur + (size_t)l * m->P;
		memset(cnt, 0, sizeof(int) * (size_t)m->E);
		for (int p = 0; p < m->P; p++)
			if (pl[p] >= 0 && pl[p] < m->E)
				cnt[pl[p]]++;
		for (int p = 0; p < m->P; p++)
			m->inv[(size_t)l * m->P + p] = pl[p] >= 0 && pl[p] < m->E ? 1.0 / cnt[pl[p]]
										  : 0;
	}
}

/* Makes cur the placement in force at `step`. */
static int placement_at(struct tui_metrics *m, int64_t step)
{
	int64_t from = INT64_MIN;
	int rc;

	rc = store_deployed_at(m->s, &m->run, step, m->R, m->S, m->cur, &from);
	if (rc == UTIL_ENOTFOUND || rc == UTIL_ERANGE) {
		for (int l = 0; l < m->L; l++)
			analyze_static_phy2log(m->E, m->R, m->S, m->cur + (size_t)l * m->P);
		from = INT64_MIN;
	} else if (rc) {
		snprintf(m->errmsg, sizeof(m->errmsg), "%s", store_errmsg(m->s));
		return rc;
	}
	m->place_from = from;
	/* it holds until the next recorded change; a change recorded later
	 * resets this range (tui_metrics_poll) */
	rc = store_deployed_next(m->s, &m->run, step, &m->place_until);
	if (rc == UTIL_ENOTFOUND) {
		m->place_until = INT64_MAX;
	} else if (rc) {
		snprintf(m->errmsg, sizeof(m->errmsg), "%s", store_errmsg(m->s));
		return rc;
	}
	weights(m);
	return 0;
}

int tui_metrics_new(struct store *s, const struct store_run *run, int ranks, int slots,
		    int per_expert, struct tui_metrics **out, struct util_err *err)
{
	struct tui_metrics *m;

	*out = NULL;
	if (ranks < 1 || slots < 1 || (int64_t)ranks * slots < run->experts)
		return util_err_set(err, UTIL_EUSAGE, "%d ranks x %d slots cannot hold %d experts",
				    ranks, slots, run->experts);
	if (!(m = calloc(1, sizeof(*m))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	m->s = s;
	m->run = *run;
	m->L = run->layers;
	m->E = run->experts;
	m->R = ranks;
	m->S = slots;
	m->P = ranks * slots;
	m->per_expert = per_expert;
	m->next = INT64_MIN;
	m->place_from = INT64_MAX;
	m->place_until = INT64_MIN; /* empty: the first step looks the placement up */
	m->cur = calloc((size_t)m->L * m->P, sizeof(*m->cur));
	m->inv = calloc((size_t)m->L * m->P, sizeof(*m->inv));
	m->rank_tok = calloc((size_t)m->L * m->R, sizeof(*m->rank_tok));
	m->exp_tok = per_expert ? calloc((size_t)m->L * m->E, sizeof(*m->exp_tok)) : NULL;
	m->cnt = calloc((size_t)m->E, sizeof(*m->cnt));
	if (!m->cur || !m->inv || !m->rank_tok || !m->cnt || (per_expert && !m->exp_tok)) {
		tui_metrics_free(m);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	*out = m;
	return 0;
}

void tui_metrics_free(struct tui_metrics *m)
{
	if (!m)
		return;
	free(m->cur);
	free(m->inv);
	free(m->rank_tok);
	free(m->exp_tok);
	free(m->cnt);
	free(m);
}

const char *tui_metrics_errmsg(const struct tui_metrics *m)
{
	return m->errmsg;
}

/* Adds one step to the counters under the placement in force at it. */
static int count_step(struct tui_metrics *m, int64_t step, const uint32_t *counts)
{
	int rc;

	if ((step < m->place_from || step >= m->place_until) && (rc = placement_at(m, step)))
		return rc;
	for (int l = 0; l < m->L; l++) {
		const uint32_t *c = counts + (size_t)l * m->E;
		const int32_t *pl = m->cur + (size_t)l * m->P;
		const double *w = m->inv + (size_t)l * m->P;
		double *rt = m->rank_tok + (size_t)l * m->R;
		for (int p = 0; p < m->P; p++)
			if (w[p] > 0)
				rt[p / m->S] += c[pl[p]] * w[p];
		if (m->exp_tok)
			for (int e = 0; e < m->E; e++)
				m->exp_tok[(size_t)l * m->E + e] += c[e];
	}
	m->counted++;
	m->next = step + 1;
	return 0;
}

/* Counts the steps of [m->next, to] read from the store. */
static int count_read(struct tui_metrics *m, int64_t to)
{
	struct store_iter *it = NULL;
	struct store_step st;
	int rc;

	if ((rc = store_iter_new(m->s, &m->run, m->next, to, 0, &it))) {
		snprintf(m->errmsg, sizeof(m->errmsg), "%s", store_errmsg(m->s));
		return rc;
	}
	while ((rc = store_iter_next(it, &st)) == 1)
		if ((rc = count_step(m, st.step, st.counts)))
			break;
	store_iter_free(it);
	if (rc < 0 && !m->errmsg[0])
		snprintf(m->errmsg, sizeof(m->errmsg), "%s", store_errmsg(m->s));
	return rc < 0 ? rc : 0;
}

/* The placement may change between the steps of one poll: it is looked
 * up again only at the step its next recorded change takes effect, and
 * at the next step when placement rows were added since the last poll
 * (a row may take effect at any step, also one read already).  The steps
 * are counted in order, each once, whether read here or taken from the
 * view (every step from its `lo` on), so the sums are the same. */
int tui_metrics_poll(struct tui_metrics *m, struct tui_view *v, int64_t upto)
{
	struct store_run_stats rs;
	int64_t lo = INT64_MAX;
	int n = v ? tui_view_held(v, &lo) : 0, rc;

	if ((rc = store_run_stats(m->s, m->run.id, &rs))) {
		snprintf(m->errmsg, sizeof(m->errmsg), "%s", store_errmsg(m->s));
		return rc;
	}
	if (rs.steps == 0 || (m->next != INT64_MIN && (rs.last_step < m->next || upto < m->next)))
		return 0;
	if (rs.deployed != m->deployed_rows) {
		m->deployed_rows = rs.deployed;
		m->place_until = INT64_MIN;
	}
	if (n == 0 || m->next >= lo || upto < lo) {
		/* the view holds none of what is new, or all of it from next */
		if (n == 0 || upto < lo || m->next > upto)
			return count_read(m, upto);
	} else if ((rc = count_read(m, lo - 1))) {
		return rc;
	}
	/* steps held by the view, then any newer it has not read yet */
	for (int i = 0; i < n; i++) {
		int64_t step;
		const uint32_t *c = tui_view_held_step(v, i, &step);
		if (step < m->next)
			continue;
		if (step > upto)
			return 0;
		if ((rc = count_step(m, step, c)))
			return rc;
	}
	if (m->next <= upto)
		return count_read(m, upto);
	return 0;
}

/* Label values are escaped as the exposition format asks: \\, \" and \n. */
static void add_label(struct util_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			util_buf_addf(b, "\\%c", *s);
		else if (*s == '\n')
			util_buf_addstr(b, "\\n");
		else
			util_buf_add(b, s, 1);
	}
}

static void head(struct util_buf *b, const char *name, const char *type, const char *help)
{
	util_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample value: integers without a fraction, others to 17 digits
 * (a float round-trips), NaN as Prometheus spells it. */
static void value(struct util_buf *b, double v)
{
	if (isnan(v))
		util_buf_addstr(b, " NaN\n");
	else if (v == floor(v) && fabs(v) < 9e15)
		util_buf_addf(b, " %.0f\n", v);
	else
		util_buf_addf(b, " %.17g\n", v);
}

void tui_metrics_format(struct tui_metrics *m, struct tui_view *v, struct util_buf *b)
{
	struct tui_header h;
	const struct tui_layer_row *rows = tui_view_rows(v);
	int L = tui_view_layers(v), R = m->R;
	double *before = calloc((size_t)R, sizeof(double)),
	       *after = calloc((size_t)R, sizeof(double));
	double sum_max = 0, sum_mean = 0, sum_amax = 0, sum_amean = 0;
	int after_all = 1;

	tui_view_header(v, &h);
	head(b, "moetrace_info", "gauge",
	     "The run served: its name, model, shape and EP layout, and the algorithm of the "
	     "rebalanced figures (value 1).");
	util_buf_addstr(b, "moetrace_info{run=\"");
	add_label(b, m->run.name);
	util_buf_addstr(b, "\",model=\"");
	add_label(b, m->run.model);
	util_buf_addf(b,
		      "\",layers=\"%d\",experts=\"%d\",topk=\"%d\",ep_ranks=\"%d\",slots=\"%d\","
		      "algo=\"%s\"} 1\n",
		      m->run.layers, m->run.experts, m->run.topk, m->R, m->S, h.algo ? h.algo : "");
	head(b, "moetrace_steps_total", "counter", "Steps of the run recorded in the trace.");
	util_buf_addf(b, "moetrace_steps_total %lld\n", (long long)h.steps);
	head(b, "moetrace_steps_missing", "gauge",
	     "Step numbers missing between the run's first and last step (dropped by the "
	     "recorder or never received).");
	util_buf_addf(b, "moetrace_steps_missing %lld\n", (long long)h.gaps);
	head(b, "moetrace_last_step", "gauge", "Newest step number of the run in the trace.");
	util_buf_addf(b, "moetrace_last_step %lld\n", (long long)(h.steps ? h.last_step : 0));
	head(b, "moetrace_window_steps", "gauge",
	     "Recorded steps in the window the imbalance gauges are computed on.");
	util_buf_addf(b, "moetrace_window_steps %lld\n", (long long)h.nsteps);
	head(b, "moetrace_deployed_placement", "gauge",
	     "1 when the imbalance is under a recorded deployed placement, 0 under the static "
	     "contiguous layout.");
	util_buf_addf(b, "moetrace_deployed_placement %d\n", h.deployed ? 1 : 0);

	head(b, "moetrace_layer_imbalance", "gauge",
	     "Max over mean EP-rank load of the window's tokens under the placement in force "
	     "(1 = balanced; MoE time follows the max).");
	for (int l = 0; l < L; l++) {
		util_buf_addf(b, "moetrace_layer_imbalance{layer=\"%d\"}", l);
		value(b, h.nsteps ? rows[l].now : NAN);
	}
	head(b, "moetrace_layer_imbalance_rebalanced", "gauge",
	     "The same under the algorithm's placement for the layer (as in moetrace top); NaN "
	     "until computed.");
	for (int l = 0; l < L; l++) {
		util_buf_addf(b, "moetrace_layer_imbalance_rebalanced{layer=\"%d\",algo=\"%s\"}", l,
			      h.algo ? h.algo : "");
		value(b, h.nsteps && rows[l].after > 0 ? rows[l].after : NAN);
	}
	head(b, "moetrace_layer_rebalance_moves", "gauge",
	     "Expert copies the algorithm's placement needs from the placement in force.");
	for (int l = 0; l < L; l++) {
		util_buf_addf(b, "moetrace_layer_rebalance_moves{layer=\"%d\",algo=\"%s\"}", l,
			      h.algo ? h.algo : "");
		value(b, rows[l].moves >= 0 && rows[l].after > 0 ? (double)rows[l].moves : NAN);
	}
	for (int l = 0; before && after && l < L; l++) {
		double mean = 0, mx = 0, amx = 0;
		int has_after = tui_view_loads(v, l, before, after, &mean);
		for (int r = 0; r < R; r++) {
			mx = before[r] > mx ? before[r] : mx;
			amx = after[r] > amx ? after[r] : amx;
		}
		sum_max += mx;
		sum_mean += mean;
		if (has_after) {
			sum_amax += amx;
			sum_amean += mean;
		} else {
			after_all = 0;
		}
	}
	head(b, "moetrace_imbalance", "gauge",
	     "All layers: sum over layers of the max EP-rank load over the sum of the mean.");
	util_buf_addstr(b, "moetrace_imbalance");
	value(b, analyze_scored_imbalance(sum_max, sum_mean));
	head(b, "moetrace_imbalance_rebalanced", "gauge",
	     "The same under the algorithm's placements; NaN until every layer is computed.");
	util_buf_addf(b, "moetrace_imbalance_rebalanced{algo=\"%s\"}", h.algo ? h.algo : "");
	value(b, after_all ? analyze_scored_imbalance(sum_amax, sum_amean) : NAN);

	head(b, "moetrace_ep_rank_tokens_total", "counter",
	     "Tokens routed to the EP rank's experts in the layer, summed over the run's steps "
	     "(a replicated expert's tokens split evenly among its replicas).");
	for (int l = 0; l < m->L; l++)
		for (int r = 0; r < m->R; r++) {
			util_buf_addf(b,
				      "moetrace_ep_rank_tokens_total{layer=\"%d\",ep_rank=\"%d\"}",
				      l, r);
			value(b, m->rank_tok[(size_t)l * m->R + r]);
		}
	if (m->exp_tok) {
		head(b, "moetrace_expert_tokens_total", "counter",
		     "Tokens routed to the logical expert in the layer, summed over the run's "
		     "steps.");
		for (int l = 0; l < m->L; l++)
			for (int e = 0; e < m->E; e++) {
				util_buf_addf(
					b,
					"moetrace_expert_tokens_total{layer=\"%d\",expert=\"%d\"}",
					l, e);
				value(b, m->exp_tok[(size_t)l * m->E + e]);
			}
	}
	free(before);
	free(after);
}

static void counter64(struct util_buf *b, const char *name, const char *help, int64_t v)
{
	head(b, name, "counter", help);
	util_buf_addf(b, "%s %lld\n", name, (long long)v);
}

static void gauge64(struct util_buf *b, const char *name, const char *help, int64_t v)
{
	head(b, name, "gauge", help);
	util_buf_addf(b, "%s %lld\n", name, (long long)v);
}

void tui_metrics_format_recorder(const struct moetrace_recorder_stats *st, struct util_buf *b)
{
	counter64(b, "moetrace_recorder_steps_recorded_total",
		  "Steps the recorder committed to the trace.", st->recorded);
	counter64(b, "moetrace_recorder_steps_dropped_total",
		  "Steps the recorder dropped because its ring was full.", st->dropped);
	counter64(b, "moetrace_recorder_steps_failed_total",
		  "Steps whose commit failed (rolled back, not in the trace).", st->failed);
	counter64(b, "moetrace_recorder_batches_total", "Transactions the recorder committed.",
		  st->batches);
	counter64(b, "moetrace_recorder_written_bytes_total",
		  "Bytes of encoded expert counts the recorder committed.", st->bytes);
	counter64(b, "moetrace_recorder_placements_total",
		  "Deployed placements the recorder committed.", st->placements);
	gauge64(b, "moetrace_recorder_queue_steps", "Steps waiting in the recorder's ring now.",
		st->queued);
	gauge64(b, "moetrace_recorder_queue_high_water_steps",
		"Most steps the recorder's ring ever held.", st->high_water);
	gauge64(b, "moetrace_recorder_ring_steps", "Capacity of the recorder's ring in steps.",
		st->ring_steps);
	gauge64(b, "moetrace_recorder_memory_bound_bytes",
		"Bytes the recorder allocated when opened, never exceeded.", st->mem_bound);
	gauge64(b, "moetrace_recorder_last_step",
		"Last step handed to the recorder (-1 before the first).", st->last_step);
}

/* Per link tier: the bytes and seconds of the replay's copies. */
static void tiers(struct util_buf *b, const char *name, const char *algo, double intra,
		  double inter)
{
	util_buf_addf(b, "%s{algo=\"%s\",tier=\"intra_node\"}", name, algo);
	value(b, intra);
	util_buf_addf(b, "%s{algo=\"%s\",tier=\"inter_node\"}", name, algo);
	value(b, inter);
}

void tui_metrics_format_rebalance(const struct tui_rebalance_figures *f, struct util_buf *b)
{
	const char *a = f->algo;

	head(b, "moetrace_rebalance_info", "gauge",
	     "The replay following the run: its algorithm, steps between decisions, window and "
	     "delay (value 1).");
	util_buf_addf(b,
		      "moetrace_rebalance_info{algo=\"%s\",interval=\"%lld\",window=\"%lld\","
		      "delay=\"%lld\"} 1\n",
		      a, (long long)f->interval, (long long)f->window, (long long)f->delay);
	head(b, "moetrace_rebalance_up", "gauge",
	     "1 when the last replay of the trace succeeded (or none was due), else 0.");
	util_buf_addf(b, "moetrace_rebalance_up %d\n", f->error[0] ? 0 : 1);
	head(b, "moetrace_rebalance_replay_steps", "gauge",
	     "Steps the last replay scored (the trace when it ran).");
	util_buf_addf(b, "moetrace_rebalance_replay_steps %lld\n", (long long)f->steps);
	head(b, "moetrace_rebalance_replay_seconds", "gauge",
	     "Wall seconds the last replay took (it runs again at each decision, on the trace "
	     "so far).");
	util_buf_addstr(b, "moetrace_rebalance_replay_seconds");
	value(b, f->replay_seconds);
	head(b, "moetrace_rebalance_events_total", "counter",
	     "Rebalances of the replay that took effect inside the trace.");
	util_buf_addf(b, "moetrace_rebalance_events_total{algo=\"%s\"} %lld\n", a,
		      (long long)f->events);
	head(b, "moetrace_rebalance_moves_total", "counter",
	     "Expert copies the replay's rebalances made.");
	util_buf_addf(b, "moetrace_rebalance_moves_total{algo=\"%s\"} %lld\n", a,
		      (long long)f->moves);
	if (f->priced) {
		head(b, "moetrace_rebalance_bytes_total", "counter",
		     "Bytes of expert weights the replay's rebalances copied, per link tier "
		     "(inside a node, across nodes).");
		tiers(b, "moetrace_rebalance_bytes_total", a, (double)f->bytes_intra,
		      (double)f->bytes_inter);
		head(b, "moetrace_rebalance_transfer_seconds_total", "counter",
		     "Seconds the replay's copies take on each link tier (the tiers run at once).");
		tiers(b, "moetrace_rebalance_transfer_seconds_total", a, f->seconds_intra,
		      f->seconds_inter);
	}
	head(b, "moetrace_rebalance_imbalance_mean", "gauge",
	     "Mean per-step imbalance of the steps the replay scored, under its placements.");
	util_buf_addf(b, "moetrace_rebalance_imbalance_mean{algo=\"%s\"}", a);
	value(b, f->replays ? f->imbalance_mean : NAN);
	head(b, "moetrace_rebalance_baseline_imbalance_mean", "gauge",
	     "The same under the placement the replay started from, never changed.");
	util_buf_addstr(b, "moetrace_rebalance_baseline_imbalance_mean");
	value(b, f->replays ? f->baseline_imbalance_mean : NAN);
}

void tui_metrics_format_sink(const struct moetrace_sink_stats *st, struct util_buf *b)
{
	/* clang-format off */
	const struct { const char *name, *type, *help; int64_t v; } rows[] = {
		{ "moetrace_sink_steps_shipped_total", "counter",
		  "Steps the ClickHouse sink shipped and the server acknowledged.", st->shipped },
		{ "moetrace_sink_steps_skipped_total", "counter",
		  "Steps the sink skipped (beyond its backlog while the server was away, or "
		  "left at close); the trace has them and moetrace push ships them.", st->skipped },
		{ "moetrace_sink_retries_total", "counter", "Failed attempts of the sink to ship.",
		  st->retries },
		{ "moetrace_sink_lag_steps", "gauge",
		  "Steps committed to the trace and not yet shipped or skipped.", st->lag },
		{ "moetrace_sink_last_shipped_step", "gauge",
		  "Newest step the server acknowledged (-1 before the first).", st->last_shipped },
		{ "moetrace_sink_up", "gauge",
		  "1 while the sink's last attempt succeeded (or none failed yet), else 0.",
		  st->last_error == 0 },
	};
	/* clang-format on */

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		head(b, rows[i].name, rows[i].type, rows[i].help);
		util_buf_addf(b, "%s %lld\n", rows[i].name, (long long)rows[i].v);
	}
}

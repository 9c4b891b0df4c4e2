/*
 * rebalance.c: a replay following a growing trace, for the rebalance
 * counters of `moetrace serve --rebalance-every K` (and of the endpoints
 * of `record --metrics` and the recorder library).  It is the replay of
 * analyze/replay.c itself, run again with the same settings each time the
 * trace has grown past another decision point, on a connection and a
 * thread of its own so that a scrape never waits for it.
 *
 * A decision of a replay reads only the steps before it and is counted
 * once it takes effect inside the trace, so a rerun on a longer trace
 * repeats every event of the shorter one, with the same copies and bytes,
 * and adds the new ones: the figures only grow, as Prometheus counters
 * must, and they equal what `moetrace replay` prints on the same steps
 * with the same settings.  The cost is a whole replay per decision (the
 * trace so far, read again); docs/metrics.md gives the figures.
 */
#include "tui/tui.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tui_rebalance {
	struct store *s;
	struct store_run run;
	struct analyze_replay_cfg cfg;
	struct analyze_deploy dep;
	int32_t *start;  /* [L * ranks * slots], resolved at the first replay */
	int64_t decided; /* decisions inside the trace at the last replay */
	int64_t scored;  /* steps the last replay scored */
	double last;     /* util_now() at the last replay */

	pthread_t thread;
	int running;
	pthread_mutex_t mu; /* guards fig, stop */
	pthread_cond_t cond;
	int stop;
	struct tui_rebalance_figures fig;
};

/* The placement the replay starts from, as `moetrace replay` chooses it
 * without --start: the deployed one in force at the first selected step,
 * else the static layout. */
static int resolve_start(struct tui_rebalance *rb, struct util_err *err)
{
	int64_t first;
	int rc = analyze_first_selected(rb->s, &rb->run, rb->cfg.from, rb->cfg.to,
					rb->cfg.phase_mask, &first, err);

	if (!rc)
		rc = analyze_start_placement(rb->s, &rb->run, first, rb->cfg.ranks, rb->cfg.slots,
					     0, rb->start, NULL, NULL, err);

	if (rc)
		return rc;
	rb->cfg.start = rb->start;
	return 0;
}

/* Steps that came without a new decision are caught up with at most this
 * often (seconds): the per-step figures (steps scored, mean imbalance) of a
 * trace that stopped short of its next decision then still reach its end,
 * without a whole replay every second while steps trickle in. */
#define REBALANCE_CATCH_UP_S 10.0

/* Replays the trace again when a decision has come inside it since the
 * last replay, or steps have come and the last replay is
 * REBALANCE_CATCH_UP_S old: 1 when the figures changed, 0 when nothing was
 * due. */
static int replay_again(struct tui_rebalance *rb, struct util_err *err)
{
	struct analyze_replay_out out;
	struct tui_rebalance_figures f;
	struct store_run_stats rs;
	int64_t n = 0, K = rb->cfg.interval, D = rb->cfg.delay, decided;
	int rc;

	/* the steps there are now, not those that arrive meanwhile */
	if ((rc = store_run_stats(rb->s, rb->run.id, &rs)))
		return util_err_set(err, rc, "%s", store_errmsg(rb->s));
	if (rs.steps == 0)
		return 0;
	rb->cfg.to = rs.last_step;
	if ((rc = analyze_step_count(rb->s, &rb->run, INT64_MIN, rs.last_step, rb->cfg.phase_mask,
				     &n, err)))
		return rc;
	/* decisions at ordinals K, 2K, ... count once they take effect (t + D < n) */
	decided = n - D - 1 >= K ? (n - D - 1) / K : 0;
	if (n < rb->cfg.window || n <= rb->scored ||
	    (decided <= rb->decided && util_now() - rb->last < REBALANCE_CATCH_UP_S))
		return 0;
	if (decided == 0 && rb->decided == 0 && rb->fig.replays == 0)
		return 0; /* no decision inside the trace yet: nothing to count */
	if (!rb->cfg.start && (rc = resolve_start(rb, err)))
		return rc;
	if ((rc = analyze_replay_run(rb->s, &rb->run, &rb->cfg, &out, err))) {
		/* not again before new steps (a trace whose steps carry no token
		 * yet is refused by the replay: not a replay every second) */
		rb->scored = n;
		rb->last = util_now();
		return rc;
	}
	memset(&f, 0, sizeof(f));
	f.replays = rb->fig.replays + 1;
	f.steps = out.sum.steps;
	f.events = out.sum.events;
	f.moves = out.sum.moves;
	f.bytes_intra = out.sum.bytes - out.sum.bytes_inter;
	f.bytes_inter = out.sum.bytes_inter;
	for (size_t i = 0; i < out.n_events; i++) {
		f.seconds_intra += out.events[i].transfer_intra_seconds;
		f.seconds_inter += out.events[i].transfer_inter_seconds;
	}
	f.priced = rb->dep.expert_bytes > 0;
	f.imbalance_mean = out.sum.imbalance_mean;
	f.baseline_imbalance_mean = out.sum.baseline_imbalance_mean;
	f.replay_seconds = out.wall_seconds;
	analyze_replay_release(&out);
	pthread_mutex_lock(&rb->mu);
	memcpy(f.algo, rb->fig.algo, sizeof(f.algo));
	f.interval = rb->fig.interval;
	f.window = rb->fig.window;
	f.delay = rb->fig.delay;
	rb->fig = f;
	pthread_mutex_unlock(&rb->mu);
	rb->decided = decided;
	rb->scored = n;
	rb->last = util_now();
	return 1;
}

int tui_rebalance_update(struct tui_rebalance *rb, struct util_err *err)
{
	int rc = replay_again(rb, err);

	pthread_mutex_lock(&rb->mu);
	if (rc < 0)
		snprintf(rb->fig.error, sizeof(rb->fig.error), "%s", err->msg);
	else
		rb->fig.error[0] = '\0';
	pthread_mutex_unlock(&rb->mu);
	return rc < 0 ? rc : 0;
}

/* Checks for new decisions every second until told to stop. */
static void *follow_main(void *arg)
{
	struct tui_rebalance *rb = arg;

	pthread_mutex_lock(&rb->mu);
	while (!rb->stop) {
		struct util_err err = UTIL_ERR_INIT;
		struct timespec until;
		pthread_mutex_unlock(&rb->mu);
		tui_rebalance_update(rb, &err);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&rb->mu);
		if (!rb->stop)
			pthread_cond_timedwait(&rb->cond, &rb->mu, &until);
	}
	pthread_mutex_unlock(&rb->mu);
	return NULL;
}

int tui_rebalance_new(const char *path, const char *runname, const struct tui_rebalance_cfg *c,
		      struct tui_rebalance **out, struct util_err *err)
{
	struct analyze_deploy_opts dopts = ANALYZE_DEPLOY_OPTS_INIT;
	struct tui_rebalance *rb;
	int64_t K = c->interval, W = c->window, D = c->delay;
	int rc;

	*out = NULL;
	/* the defaults of `moetrace replay` for an interval given */
	analyze_replay_cadence(0, &K, &W, &D);
	if (!(rb = calloc(1, sizeof(*rb))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	pthread_mutex_init(&rb->mu, NULL);
	pthread_cond_init(&rb->cond, NULL);
	if ((rc = store_open_run(path, runname, STORE_READONLY, &rb->s, &rb->run, err)))
		goto fail;
	const struct store_model *model = store_model_find(rb->run.model);
	if (model && model->experts != rb->run.experts)
		model = NULL; /* a preset of another shape prices nothing */
	if ((rc = analyze_deploy_resolve(&rb->run, model, c->ranks, &dopts, &rb->dep, err)) ||
	    (rc = analyze_algo_layout_check(c->algo, rb->run.experts, c->slots, err)))
		goto fail;
	rb->start = calloc((size_t)rb->run.layers * (size_t)c->ranks * (size_t)c->slots,
			   sizeof(int32_t));
	if (!rb->start) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto fail;
	}
	rb->cfg = (struct analyze_replay_cfg){
		.algo = c->algo, .ranks = c->ranks, .slots = c->slots,
		.interval = K, .window = W, .delay = D,
		.episodes = analyze_replay_episodes(c->algo, -1, W),
		.max_moves = -1, .move_tolerance = ANALYZE_REPLAY_MOVE_TOLERANCE,
		.seed = ANALYZE_DEFAULT_SEED,
		.from = INT64_MIN, .to = INT64_MAX, .phase_mask = c->phase_mask,
		.deploy = &rb->dep, .threads = 2,
	};
	if (D >= K) {
		rc = util_err_set(err, UTIL_EUSAGE,
				  "--rebalance-delay %lld must be shorter than --rebalance-every %lld",
				  (long long)D, (long long)K);
		goto fail;
	}
	snprintf(rb->fig.algo, sizeof(rb->fig.algo), "%s", c->algo->name);
	rb->fig.interval = K;
	rb->fig.window = W;
	rb->fig.delay = D;
	*out = rb;
	return 0;
fail:
	tui_rebalance_free(rb);
	return rc;
}

int tui_rebalance_start(struct tui_rebalance *rb, struct util_err *err)
{
	if (pthread_create(&rb->thread, NULL, follow_main, rb))
		return util_err_set(err, UTIL_ENOMEM, "cannot start the replay thread");
	rb->running = 1;
	return 0;
}

void tui_rebalance_figures(struct tui_rebalance *rb, struct tui_rebalance_figures *out)
{
	pthread_mutex_lock(&rb->mu);
	*out = rb->fig;
	pthread_mutex_unlock(&rb->mu);
}

void tui_rebalance_free(struct tui_rebalance *rb)
{
	if (!rb)
		return;
	if (rb->running) {
		pthread_mutex_lock(&rb->mu);
		rb->stop = 1;
		pthread_cond_signal(&rb->cond);
		pthread_mutex_unlock(&rb->mu);
		pthread_join(rb->thread, NULL);
	}
	pthread_mutex_destroy(&rb->mu);
	pthread_cond_destroy(&rb->cond);
	store_free(rb->s);
	free(rb->start);
	free(rb);
}

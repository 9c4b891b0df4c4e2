/*
 * cmd_gen.c: `moetrace gen` writes a synthetic trace (collector/gen.c)
 * into a database as a new run, in one transaction: a failure or an
 * interruption leaves the database as it was.
 */
#include "cmds.h"
#include "collector/collector.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GEN_BATCH 256                    /* steps per store_steps_append */
#define GEN_START_TIME 1767225600.0      /* 2026-01-01T00:00:00Z */

static const char gen_usage[] =
	"usage: moetrace gen [--model NAME] [--steps N] [--seed S] [--run NAME]\n"
	"                    [--ranks R] [--slots S] [--ranks-per-node N]\n"
	"                    [--prefill-fraction F] [--decode-batch B] [--prefill-tokens T]\n"
	"                    [--domains D] [--skew X] [--drift X] [--start-time UNIX]\n"
	"                    [--first-step N] [--fresh-routing] [-q] DB\n";

/* Step durations of a plausible engine: decode 30-60 ms growing with the
 * batch, prefill 40 ms + 40 us per token, each +-10 %. */
static double step_seconds(struct util_rng *r, const struct store_step *st, int decode_batch)
{
	double jitter = 0.9 + 0.2 * util_rng_uniform(r), ms;

	if (st->phase == STORE_PHASE_PREFILL) {
		ms = 40 + 0.04 * (double)st->tokens;
	} else {
		double fill = decode_batch > 0 ? (double)st->tokens / decode_batch : 1;
		ms = 30 + 30 * (fill > 1 ? 1 : fill);
	}
	return ms * jitter / 1000;
}

static int parse_count(const char *s, int max, int *out, const char *what, struct util_err *err)
{
	return util_parse_int(s, 1, max, out, what, err);
}

/* EP layout: the preset's unless given; one of ranks/slots implies the
 * other.  0, or 2 after saying what is wrong. */
static int gen_layout(const struct store_model *m, int *ranks, int *slots, int *rpn)
{
	if (!*ranks && !*slots) {
		*ranks = m->ranks;
		*slots = m->slots;
	} else if (!*slots) {
		*slots = (m->experts + *ranks - 1) / *ranks;
	} else if (!*ranks) {
		*ranks = (m->experts + *slots - 1) / *slots;
	}
	if ((int64_t)*ranks * *slots < m->experts || (int64_t)*ranks * *slots > STORE_MAX_SLOTS) {
		util_cli_error("gen", "--ranks %d x --slots %d gives %lld slots; model '%s' needs "
			       "at least its %d experts (and at most %d)", *ranks, *slots,
			       (long long)*ranks * *slots, m->name, m->experts, STORE_MAX_SLOTS);
		return 2;
	}
	if (!*rpn)
		*rpn = store_ranks_per_node_default(*ranks, m->ranks_per_node);
	if (*rpn > *ranks) {
		util_cli_error("gen", "--ranks-per-node %d is more than --ranks %d", *rpn, *ranks);
		return 2;
	}
	if (!store_ranks_per_node_ok(*ranks, *rpn)) {
		util_cli_error("gen", "--ranks-per-node %d does not divide %d ranks", *rpn, *ranks);
		return 2;
	}
	return 0;
}

/* Adds run and its `steps` generated steps from step `first` (times from
 * `start`) in one transaction: 0, or a UTIL_E* code after saying what
 * failed, with nothing written. */
static int gen_steps(struct store *s, struct collector_gen *g, struct store_run *run,
		     const struct collector_gen_cfg *cfg, int64_t steps, int64_t first,
		     double start, uint64_t seed)
{
	size_t cells = (size_t)run->layers * run->experts;
	uint32_t *counts = malloc(GEN_BATCH * cells * sizeof(*counts));
	struct store_step *batch = calloc(GEN_BATCH, sizeof(*batch));
	struct util_rng trng;
	int rc, in_tx = 0;
	double t = start;

	if (!counts || !batch) {
		util_cli_error("gen", "out of memory");
		rc = UTIL_ENOMEM;
		goto out;
	}
	util_rng_seed(&trng, seed ^ UINT64_C(0x74696d65));
	if ((rc = store_begin(s)))
		goto dberr;
	in_tx = 1;
	if ((rc = store_run_add(s, run)))
		goto dberr;
	for (int64_t done = 0; done < steps;) {
		size_t n = steps - done < GEN_BATCH ? (size_t)(steps - done) : GEN_BATCH;
		for (size_t i = 0; i < n; i++) {
			struct store_step *st = &batch[i];
			int64_t step = first + done + (int64_t)i;
			st->counts = counts + i * cells;
			if ((rc = collector_gen_next(g, st))) {
				util_cli_error("gen", "generator failed at step %lld",
					       (long long)step);
				goto out;
			}
			st->step = step;
			st->time = t;
			t += step_seconds(&trng, st, cfg->decode_batch ? cfg->decode_batch : 128);
		}
		if ((rc = store_steps_append(s, run, batch, n)))
			goto dberr;
		done += (int64_t)n;
	}
	if ((rc = store_commit(s)))
		goto dberr;
	in_tx = 0;
	goto out;
dberr:
	util_cli_error("gen", "%s", store_errmsg(s));
out:
	if (in_tx)
		store_rollback(s);
	free(counts);
	free(batch);
	return rc;
}

/* The run's row: named --run or after the model and seed; its source
 * names the knobs given (the rest are the calibrated defaults).  0, or 2
 * after saying what is wrong. */
static int gen_run(struct store_run *run, const struct store_model *m, const char *name,
		   int64_t seed, int64_t steps, const char *knobs, int ranks, int slots, int rpn)
{
	memset(run, 0, sizeof(*run));
	if (name)
		snprintf(run->name, sizeof(run->name), "%s", name);
	else
		snprintf(run->name, sizeof(run->name), "gen-%s-seed%lld", m->name, (long long)seed);
	if (strlen(name ? name : "") >= sizeof(run->name)) {
		util_cli_error("gen", "run name '%s' is longer than %zu bytes", name,
			       sizeof(run->name) - 1);
		return 2;
	}
	snprintf(run->model, sizeof(run->model), "%s", m->name);
	run->layers = m->layers;
	run->experts = m->experts;
	run->topk = m->topk;
	run->ranks = ranks;
	run->slots = slots;
	run->ranks_per_node = rpn;
	run->first_layer = m->first_layer;
	snprintf(run->source, sizeof(run->source), "gen seed=%lld steps=%lld%s", (long long)seed,
		 (long long)steps, knobs);
	return 0;
}

static void gen_print(const char *path, const struct store_run *run,
		      const struct store_run_stats *rs, double secs)
{
	double ncell = (double)rs->steps * run->layers * run->experts;

	printf("%s: run '%s': %lld steps (%lld..%lld) of %s, %d layers x %d experts, "
	       "top-%d, %d ranks x %d slots\n",
	       path, run->name, (long long)rs->steps, (long long)rs->first_step,
	       (long long)rs->last_step, run->model, run->layers, run->experts, run->topk,
	       run->ranks, run->slots);
	printf("%lld prefill + %lld decode steps, %lld tokens, %.2f bytes per cell, "
	       "%.2f s (%.0f steps/s)\n",
	       (long long)rs->prefill_steps, (long long)rs->decode_steps, (long long)rs->tokens,
	       ncell > 0 ? (double)rs->blob_bytes / ncell : 0.0, secs,
	       secs > 0 ? (double)rs->steps / secs : 0.0);
}

int cmd_gen(int argc, char **argv)
{
	enum { O_RANKS = 256, O_SLOTS, O_RPN, O_PF, O_DB, O_PT, O_DOM, O_SKEW, O_DRIFT,
	       O_START, O_FIRST, O_FRESH };
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "steps", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "run", required_argument, NULL, 'r' },
		{ "ranks", required_argument, NULL, O_RANKS },
		{ "slots", required_argument, NULL, O_SLOTS },
		{ "ranks-per-node", required_argument, NULL, O_RPN },
		{ "prefill-fraction", required_argument, NULL, O_PF },
		{ "decode-batch", required_argument, NULL, O_DB },
		{ "prefill-tokens", required_argument, NULL, O_PT },
		{ "domains", required_argument, NULL, O_DOM },
		{ "skew", required_argument, NULL, O_SKEW },
		{ "drift", required_argument, NULL, O_DRIFT },
		{ "start-time", required_argument, NULL, O_START },
		{ "first-step", required_argument, NULL, O_FIRST },
		{ "fresh-routing", no_argument, NULL, O_FRESH },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct util_err err = UTIL_ERR_INIT;
	struct collector_gen_cfg cfg = { 0 };
	struct collector_gen *g = NULL;
	struct store *s = NULL;
	struct store_run run;
	struct store_run_stats rs;
	const char *model = "deepseek-v3", *name = NULL, *path;
	int64_t steps = 2000, seed = 1, first = 0;
	int ranks = 0, slots = 0, rpn = 0, quiet = 0, c, rc = 0, have_stats = 0;
	double pf = -2, skew = 0, drift = -2, start = GEN_START_TIME, t0;
	char knobs[160] = "";
	int li = 0;

	while ((c = getopt_long(argc, argv, "m:n:s:r:qh", opts, &li)) != -1) {
		if (c >= O_PF && c <= O_DRIFT)
			snprintf(knobs + strlen(knobs), sizeof(knobs) - strlen(knobs), " %s=%s",
				 opts[li].name, optarg);
		switch (c) {
		case 'm': model = optarg; break;
		case 'r': name = optarg; break;
		case 'q': quiet = 1; break;
		case O_FRESH:
			cfg.fresh_routing = 1;
			strncat(knobs, " fresh-routing", sizeof(knobs) - strlen(knobs) - 1);
			break;
		case 'h': fputs(gen_usage, stdout); return 0;
		case 'n':
			rc = util_parse_i64(optarg, 1, INT64_C(1) << 40, &steps, "--steps", &err);
			break;
		case 's': rc = util_parse_i64(optarg, 0, INT64_MAX, &seed, "--seed", &err); break;
		case O_FIRST:
			rc = util_parse_i64(optarg, 0, INT64_C(1) << 52, &first, "--first-step",
					    &err);
			break;
		case O_RANKS:
			rc = parse_count(optarg, STORE_MAX_SLOTS, &ranks, "--ranks", &err);
			break;
		case O_SLOTS:
			rc = parse_count(optarg, STORE_MAX_SLOTS, &slots, "--slots", &err);
			break;
		case O_RPN:
			rc = parse_count(optarg, STORE_MAX_SLOTS, &rpn, "--ranks-per-node", &err);
			break;
		case O_DB:
			rc = parse_count(optarg, 1 << 20, &cfg.decode_batch, "--decode-batch",
					 &err);
			break;
		case O_PT:
			rc = parse_count(optarg, 1 << 24, &cfg.prefill_tokens, "--prefill-tokens",
					 &err);
			break;
		case O_DOM: rc = parse_count(optarg, 64, &cfg.domains, "--domains", &err); break;
		case O_PF:
			rc = util_parse_double(optarg, 0, 1, &pf, "--prefill-fraction", &err);
			break;
		case O_SKEW: rc = util_parse_double(optarg, 0.01, 10, &skew, "--skew", &err); break;
		case O_DRIFT:
			rc = util_parse_double(optarg, 0, 100, &drift, "--drift", &err);
			break;
		case O_START:
			rc = util_parse_double(optarg, 0, 1e11, &start, "--start-time", &err);
			break;
		default: return util_opt_unknown(argv, opts);
		}
		if (rc)
			return util_cli_fail("gen", &err);
	}
	if (optind != argc - 1) {
		fputs(gen_usage, stderr);
		return 2;
	}
	path = argv[optind];
	if (!(cfg.model = store_model_find(model))) {
		char hint[96];
		util_cli_error("gen", "unknown model '%s'%s ('moetrace models' lists them)", model,
			       util_did_you_mean(store_model_suggest(model), hint, sizeof(hint)));
		return 2;
	}
	/* the CLI says 0 for "none"; the library reserves 0 for "default" */
	cfg.prefill_fraction = pf == -2 ? 0 : pf == 0 ? -1 : pf;
	cfg.drift = drift == -2 ? 0 : drift == 0 ? -1 : drift;
	cfg.skew = skew;
	cfg.seed = (uint64_t)seed;

	const struct store_model *m = cfg.model;
	if (gen_layout(m, &ranks, &slots, &rpn))
		return 2;

	if ((rc = collector_gen_new(&cfg, &g, &err)))
		return util_cli_fail("gen", &err);

	if (gen_run(&run, m, name, seed, steps, knobs, ranks, slots, rpn)) {
		collector_gen_free(g);
		return 2;
	}

	/* a new file is built under a private name and renamed into place
	 * at the end: a failure leaves nothing, and never removes a file
	 * another process created at the same path meanwhile */
	if ((rc = store_open(path, STORE_CREATE | STORE_STAGE, &s, &err))) {
		collector_gen_free(g);
		return util_cli_fail("gen", &err);
	}
	t0 = util_now();
	if ((rc = gen_steps(s, g, &run, &cfg, steps, first, start, (uint64_t)seed)))
		goto out;
	have_stats = !quiet && store_run_stats(s, run.id, &rs) == 0;
	rc = store_publish(s, &err);
	s = NULL;
	if (rc) {
		util_cli_fail("gen", &err);
		goto out;
	}
	t0 = util_now() - t0;
	if (have_stats)
		gen_print(path, &run, &rs, t0);
out:
	store_free(s); /* a staged new file is removed */
	collector_gen_free(g);
	return rc ? util_exit_status(rc) : 0;
}

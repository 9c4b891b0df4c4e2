/*
 * cmd_balance.c: `moetrace balance DB` — per-layer imbalance (max / mean
 * device load) of a recorded run under the placement it ran with: the
 * deployed placement recorded in the trace, else the engines' static
 * contiguous layout.  Figures over the whole window (heat summed) and per
 * step (mean, p50, p99).
 */
#include "analyze/analyze.h"
#include "cmds.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: moetrace balance [--run NAME] [--ranks R] [--slots S | --redundant N]\n"
	"                        [--steps A:B] [--phase prefill|decode] [--static] DB\n";

/* A per-step figure, or "-" when no step was scored. */
static void fmt_step(char out[16], double v)
{
	if (isnan(v))
		snprintf(out, 16, "-");
	else
		snprintf(out, 16, "%.3f", v);
}

/* When the deployed placement in force at the window's end took effect after
 * the window's first step, says so: balance scores every step under it. */
static void note_late_deployed(struct store *s, const struct store_run *run, int64_t from,
			       int64_t to, unsigned phase_mask, int64_t eff)
{
	int64_t n = 0, first, last;

	if (store_steps_span(s, run, -1, from, to, phase_mask, &n, &first, &last) || n == 0 ||
	    eff <= first || store_steps_count(s, run, first, eff - 1, phase_mask, &n) || n == 0)
		return;
	printf("the deployed placement took effect at step %lld, after the window's first step "
	       "%lld: the %lld step%s before it %s scored under it too (--steps %lld: for the "
	       "steps it served)\n",
	       (long long)eff, (long long)first, (long long)n, n == 1 ? "" : "s",
	       n == 1 ? "is" : "are", (long long)eff);
}

int cmd_balance(int argc, char **argv)
{
	static const struct option opts[] = {
		ANALYZE_LONGOPT_RUN,	   ANALYZE_LONGOPT_RANKS, ANALYZE_LONGOPT_SLOTS,
		ANALYZE_LONGOPT_REDUNDANT, ANALYZE_LONGOPT_STEPS, ANALYZE_LONGOPT_PHASE,
		{ "static", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	struct store_run run;
	struct analyze_balance b = { 0 };
	const char *runname = NULL;
	int ranks = 0, slots = 0, redundant = 0, force_static = 0, c, status = 1;
	int64_t from = INT64_MIN, to = INT64_MAX;
	unsigned phase_mask = 0;
	int32_t *p2l = NULL;
	const char *placement_name = "static contiguous";

	while ((c = getopt_long(argc, argv, "r:R:S:N:s:p:xh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': runname = optarg; break;
		case 'R':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &ranks, "--ranks", &err))
				return util_cli_fail("balance", &err);
			break;
		case 'S':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &slots, "--slots", &err))
				return util_cli_fail("balance", &err);
			break;
		case 'N':
			if (analyze_parse_redundant(optarg, &redundant, &err))
				return util_cli_fail("balance", &err);
			break;
		case 's':
			if (util_parse_range(optarg, &from, &to, "--steps", &err))
				return util_cli_fail("balance", &err);
			break;
		case 'p':
			if (analyze_opt_phase(optarg, &phase_mask, &err))
				return util_cli_fail("balance", &err);
			break;
		case 'x': force_static = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (store_open_run(argv[optind], runname, STORE_READONLY, &s, &run, &err))
		return util_cli_fail("balance", &err);
	analyze_warn_missing_counts("balance", s, &run);
	if (analyze_layout_resolve(&run, ranks, slots, redundant, &ranks, &slots, &err)) {
		status = util_cli_fail("balance", &err);
		goto out;
	}
	int P = ranks * slots, L = run.layers;
	p2l = xmallocarray((size_t)L * (size_t)P, sizeof(int32_t));
	int rc, deployed;
	int64_t eff;
	if (analyze_start_placement(s, &run, to, ranks, slots, force_static, p2l, &deployed, &eff,
				    &err)) {
		status = util_cli_fail("balance", &err);
		goto out;
	}
	if (deployed)
		placement_name = "deployed";
	if ((rc = analyze_balance_run(s, &run, from, to, phase_mask, p2l, ranks, slots, &b))) {
		util_cli_error("balance", "%s",
			       rc == UTIL_ENOMEM ? "out of memory" : store_errmsg(s));
		status = util_exit_status(rc);
		goto out;
	}
	if (b.steps == 0) {
		util_cli_error("balance", "no steps of run '%s' in the chosen range%s", run.name,
			       phase_mask ? " and phase" : "");
		status = 2;
		goto out;
	}
	printf("run '%s': %d layers x %d experts, %lld step%s, %d ranks x %d slots, %s placement\n",
	       run.name, run.layers, run.experts, (long long)b.steps, b.steps == 1 ? "" : "s", ranks,
	       slots, placement_name);
	if (deployed)
		note_late_deployed(s, &run, from, to, phase_mask, eff);
	printf("imbalance = max / mean device load (tokens of a replicated expert split evenly)\n"
	       "layer: MoE layer index; model: the model's own layer id; window: imbalance of the\n"
	       "steps' summed heat; step-*: of each step (MoE time follows these); hottest: expert\n"
	       "with the most tokens, share: its share of the layer's tokens\n\n");
	printf("%5s %6s %10s %9s %9s %9s %8s %6s\n", "layer", "model", "window", "step-mean",
	       "step-p50", "step-p99", "hottest", "share");
	for (int l = 0; l < L; l++) {
		const struct analyze_balance_layer *bl = &b.layer[l];
		char hot[16] = "-", share[16] = "-";
		/* a layer that received no token in the window has no hottest expert */
		if (bl->hottest_share > 0) {
			snprintf(hot, sizeof(hot), "%d", bl->hottest);
			snprintf(share, sizeof(share), "%.1f%%", 100.0 * bl->hottest_share);
		}
		char sm[3][16];
		fmt_step(sm[0], bl->step_mean);
		fmt_step(sm[1], bl->step_p50);
		fmt_step(sm[2], bl->step_p99);
		char win[16] = "-";
		if (bl->mean_load > 0)
			snprintf(win, sizeof(win), "%.3f", bl->imbalance);
		printf("%5d %6d %10s %9s %9s %9s %8s %6s\n", l,
		       run.first_layer + l * (run.model[0] && store_model_find(run.model)
						      ? store_model_find(run.model)->layer_step
						      : 1),
		       win, sm[0], sm[1], sm[2], hot, share);
	}
	char om[16];
	char ow[16];
	fmt_step(om, b.step_overall_mean);
	fmt_step(ow, b.overall);
	printf("\noverall (sum of max / sum of mean): window %s, per-step mean %s\n", ow, om);
	if (b.empty_layer_steps)
		printf("not scored per step: %lld (step, layer) %s with no token in a step whose\n"
		       "other layers had some (records lost?)\n",
		       (long long)b.empty_layer_steps, b.empty_layer_steps == 1 ? "pair" : "pairs");
	if (b.empty_steps)
		printf("not scored per step: %lld %s in which no layer got a token\n",
		       (long long)b.empty_steps, b.empty_steps == 1 ? "step" : "steps");
	{
		int worst = -1;
		for (int l = 0; l < L; l++)
			if (!isnan(b.layer[l].step_p99) &&
			    (worst < 0 || b.layer[l].step_p99 > b.layer[worst].step_p99))
				worst = l;
		if (worst >= 0)
			printf("worst layer by p99: %d (p99 %.3f): its busiest rank does %.0f%% more "
			       "work than the average rank on 1 step in 100\n",
			       worst, b.layer[worst].step_p99,
			       100.0 * (b.layer[worst].step_p99 - 1));
	}
	status = 0;
out:
	analyze_balance_release(&b);
	free(p2l);
	store_free(s);
	return status;
}

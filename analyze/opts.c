/*
 * opts.c: the options the analysing commands share (--phase, --model,
 * --quant, --link, and the layout, window and transfer options of place,
 * compare and report), parsed and checked in one place so each command
 * says the same thing about the same mistake.
 */
#include "analyze/analyze.h"

#include <stdio.h>
#include <string.h>

void analyze_warn_missing_counts(const char *cmd, struct store *s, const struct store_run *run)
{
	int64_t missing = 0;

	if (store_run_missing_counts(s, run, &missing) == 0 && missing)
		util_cli_error(cmd,
			       "warning: run '%s' lacks %lld counts row%s (step x layer; moetrace "
			       "info shows them): %s as zero heat",
			       run->name, (long long)missing, missing == 1 ? "" : "s",
			       missing == 1 ? "it reads" : "they read");
}

int analyze_opt_phase(const char *arg, unsigned *mask, struct util_err *err)
{
	int v = store_phase_parse(arg);

	if (v <= 0)
		return util_err_set(err, UTIL_EUSAGE, "--phase: '%s' is not prefill or decode", arg);
	*mask = 1u << v;
	return 0;
}

int analyze_opt_model(const char *arg, const char **model, struct util_err *err)
{
	const struct store_model *m = store_model_find(arg);
	char hint[96];

	if (!m)
		return util_err_set(err, UTIL_EUSAGE,
				    "--model: unknown model '%s'%s (see moetrace models)", arg,
				    util_did_you_mean(store_model_suggest(arg), hint, sizeof(hint)));
	*model = m->name;
	return 0;
}

const char *analyze_algo_suggest(const char *name)
{
	const char *names[64];
	size_t n = 0;

	for (const struct analyze_algo *a; n < 64 && (a = analyze_algo_at(n)); n++)
		names[n] = a->name;
	return util_suggest(name, names, n);
}

const char *analyze_link_suggest(const char *name)
{
	const char *names[64];
	size_t n = 0;

	for (const struct analyze_link *l; n < 64 && (l = analyze_link_at(n)); n++)
		names[n] = l->name;
	return util_suggest(name, names, n);
}

int analyze_opt_quant(const char *arg, int *quant, struct util_err *err)
{
	int q = analyze_quant_parse(arg);

	if (q < 0)
		return util_err_set(err, UTIL_EUSAGE,
				    "--quant: '%s' is not bf16, fp8, w8a8, w4a8 or mxfp4", arg);
	*quant = q;
	return 0;
}

int analyze_opt_link(const char *arg, const char *opt, const char **link, struct util_err *err)
{
	char names[256], hint[96];

	if (!analyze_link_find(arg))
		return util_err_set(err, UTIL_EUSAGE, "%s: unknown link '%s'%s (%s)", opt, arg,
				    util_did_you_mean(analyze_link_suggest(arg), hint, sizeof(hint)),
				    analyze_link_names(names, sizeof(names)));
	*link = arg;
	return 0;
}

int analyze_opt_hardware(const char *arg, const char **hw, struct util_err *err)
{
	char names[256];

	if (!analyze_hw_find(arg))
		return util_err_set(err, UTIL_EUSAGE, "--hardware: unknown preset '%s' (%s)", arg,
				    analyze_hw_names(names, sizeof(names)));
	*hw = arg;
	return 0;
}

int analyze_opt_step_ms(const char *arg, double *ms, struct util_err *err)
{
	int rc = util_parse_double(arg, -1e308, 1e9, ms, "--step-ms", err);

	if (!rc && !(*ms > 0))
		return util_err_set(err, UTIL_EUSAGE,
				    "--step-ms: %s is not a step time (milliseconds above 0)", arg);
	return rc;
}

int analyze_cli_opt(int c, const char *arg, struct analyze_cli *o, struct util_err *err)
{
	int64_t i64;
	int rc = 0;

	switch (c) {
	case 'r': o->runname = arg; break;
	case 'c': o->current = arg; break;
	case 'R': rc = util_parse_int(arg, 1, STORE_MAX_SLOTS, &o->ranks, "--ranks", err); break;
	case 'S': rc = util_parse_int(arg, 1, STORE_MAX_SLOTS, &o->slots, "--slots", err); break;
	case 'N':
		rc = analyze_parse_redundant(arg, &o->redundant, err);
		break;
	case 'n': rc = util_parse_int(arg, 1, STORE_MAX_SLOTS, &o->nodes, "--nodes", err); break;
	case 'g':
		rc = util_parse_int(arg, 1, STORE_MAX_EXPERTS, &o->groups, "--groups", err);
		break;
	case 's': rc = util_parse_range(arg, &o->from, &o->to, "--steps", err); break;
	case 'p': rc = analyze_opt_phase(arg, &o->phase_mask, err); break;
	case 'k':
		rc = util_parse_int(arg, 0, ANALYZE_MAX_EPISODES, &o->episodes, "--episodes", err);
		o->episodes_set = 1;
		break;
	case 'M':
		rc = util_parse_int(arg, 0, STORE_MAX_SLOTS, &o->max_moves, "--max-moves", err);
		break;
	case 'x':
		if (!(rc = util_parse_i64(arg, 0, INT64_MAX, &i64, "--seed", err)))
			o->seed = (uint64_t)i64;
		break;
	case 'm': rc = analyze_opt_model(arg, &o->model, err); break;
	case 'q': rc = analyze_opt_quant(arg, &o->quant, err); break;
	case 'L': rc = analyze_opt_link(arg, "--link", &o->link, err); break;
	case ANALYZE_OPT_LINK_INTRA:
		rc = analyze_opt_link(arg, "--link-intra", &o->link_intra, err);
		break;
	case ANALYZE_OPT_LINK_INTER:
		rc = analyze_opt_link(arg, "--link-inter", &o->link_inter, err);
		break;
	case ANALYZE_OPT_RANKS_PER_NODE:
		rc = util_parse_int(arg, 1, STORE_MAX_SLOTS, &o->ranks_per_node, "--ranks-per-node",
				    err);
		break;
	case 'b':
		rc = util_parse_double(arg, 1e-6, 1e6, &o->bandwidth, "--bandwidth", err);
		break;
	case 'C':
		rc = util_parse_double(arg, 0.01, 1000, &o->capacity, "--capacity", err);
		o->capacity_set = 1;
		break;
	default: return 1;
	}
	return rc ? err->code : 0;
}

int analyze_replay_episodes(const struct analyze_algo *algo, int req, int64_t window)
{
	if (req >= 0)
		return req;
	if (analyze_algo_forecasts(algo))
		return ANALYZE_REPLAY_FORECAST;
	return window < ANALYZE_REPLAY_EPISODES ? (int)window : ANALYZE_REPLAY_EPISODES;
}

int analyze_fit_episodes(int req, int64_t steps)
{
	if (req >= 0)
		return req;
	return steps < ANALYZE_FIT_EPISODES ? (int)(steps > 0 ? steps : 0) : ANALYZE_FIT_EPISODES;
}

void analyze_replay_cadence(int64_t nsteps, int64_t *interval, int64_t *window, int64_t *delay)
{
	int64_t k = *interval;

	if (k <= 0) {
		k = nsteps / 8 < ANALYZE_REPLAY_INTERVAL ? nsteps / 8 : ANALYZE_REPLAY_INTERVAL;
		if (k < 1)
			k = 1;
		*interval = k;
	}
	if (*window <= 0)
		*window = k;
	if (*delay < 0)
		*delay = k / 2 < ANALYZE_REPLAY_DELAY ? k / 2 : ANALYZE_REPLAY_DELAY;
}

int analyze_step_count(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		       unsigned phase_mask, int64_t *n, struct util_err *err)
{
	if (store_steps_count(s, run, from, to, phase_mask, n))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	return 0;
}

/* Each engine's defaults, from its own code (docs/replay.md gives the file
 * and version of every value). */
/* clang-format off */
static const struct analyze_engine engines[] = {
	{ "vllm", "eplb-hier", 3000, 1000, 0,
	  "EPLBConfig step_interval 3000, window_size 1000, num_redundant_experts 0, "
	  "policy default (DeepSeek EPLB, hierarchical when the nodes divide the groups)" },
	{ "sglang", "eplb-hier", 1000, 1000, 0,
	  "eplb_rebalance_num_iterations 1000, expert_distribution_recorder_buffer_size "
	  "= that, eplb_algorithm auto (deepseek, hierarchical when the nodes divide the "
	  "groups), ep_num_redundant_experts 0" },
	{ "vllm-ascend", "swift", 600, 600, 50,
	  "eplb_config expert_heat_collection_interval 600, algorithm_execution_interval 50, "
	  "eplb_policy_type 2 (SwiftBalancer), num_redundant_experts 0" },
	{ "trtllm", "eplb", 0, 10, 0,
	  "moe_load_balancer layer_updates_per_iter 1 (one layer a step), statistics "
	  "decayFactor 0.9 (about 10 steps), greedy replication and placement" },
};
/* clang-format on */

const struct analyze_engine *analyze_engine_find(const char *name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(engines); i++)
		if (!strcmp(engines[i].name, name))
			return &engines[i];
	return NULL;
}

const struct analyze_engine *analyze_engine_at(size_t i)
{
	return i < UTIL_ARRAY_SIZE(engines) ? &engines[i] : NULL;
}

const char *analyze_engine_choices(void)
{
	return "vllm, sglang, vllm-ascend or trtllm";
}

int analyze_cli_opt_or_unknown(int c, const char *arg, struct analyze_cli *o, char *const *argv,
			       const struct option *opts, struct util_err *err)
{
	int rc = analyze_cli_opt(c, arg, o, err);

	if (rc != 1)
		return rc;
	util_opt_unknown(argv, opts); /* one line, no usage */
	err->msg[0] = '\0';
	return UTIL_EUSAGE;
}

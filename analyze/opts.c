/*
 * opts.c: the options the analysing commands share (--phase, --model,
 * --quant, --link, and the layout, window and transfer options of place,
 * compare and report), parsed and checked in one place so each command
 * says the same thing about the same mistake.
 */
#include "analyze/analyze.h"

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
	if (!store_model_find(arg))
		return util_err_set(err, UTIL_EUSAGE,
				    "--model: unknown model '%s' (see moetrace models)", arg);
	*model = arg;
	return 0;
}

int analyze_opt_quant(const char *arg, int *quant, struct util_err *err)
{
	int q = analyze_quant_parse(arg);

	if (q < 0)
		return util_err_set(err, UTIL_EUSAGE, "--quant: '%s' is not bf16, fp8, w8a8 or w4a8",
				    arg);
	*quant = q;
	return 0;
}

int analyze_opt_link(const char *arg, const char **link, struct util_err *err)
{
	if (!analyze_link_find(arg))
		return util_err_set(err, UTIL_EUSAGE,
				    "--link: unknown link '%s' (see docs/formats.md)", arg);
	*link = arg;
	return 0;
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
		rc = util_parse_int(arg, 0, STORE_MAX_SLOTS, &o->redundant, "--redundant", err);
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
	case 'L': rc = analyze_opt_link(arg, &o->link, err); break;
	case 'b':
		rc = util_parse_double(arg, 1e-6, 1e6, &o->bandwidth, "--bandwidth", err);
		break;
	case 'C':
		rc = util_parse_double(arg, 0.01, 1000, &o->capacity, "--capacity", err);
		break;
	default: return 1;
	}
	return rc ? err->code : 0;
}

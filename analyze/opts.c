/*
 * opts.c: the option values every analysing command shares (--phase,
 * --model, --quant, --link), parsed and checked in one place so each
 * command says the same thing about the same mistake.
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

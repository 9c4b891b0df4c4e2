/*
 * place.c: the registry of placement algorithms, the driver that runs one
 * on a layer (analyze_place) and the rank matching that keeps experts where
 * a current placement already has them.  Start reading at the registry
 * table; each algorithm family lives in its own analyze/place_*.c.
 */
#include "analyze/analyze.h"

#include <stdlib.h>
#include <string.h>

static int place_static(const struct analyze_place_in *in, int32_t *phy2log,
			struct util_err *err)
{
	(void)err;
	analyze_static_phy2log(in->experts, in->ranks, in->slots, phy2log);
	return 0;
}

/* clang-format off */
static const struct analyze_algo algos[] = {
	{ "static", "engines' default contiguous layout (slot p holds expert p mod E)",
	  place_static, ANALYZE_ALGO_DUP_OK },
};
/* clang-format on */

const struct analyze_algo *analyze_algo_find(const char *name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(algos); i++)
		if (!strcmp(algos[i].name, name))
			return &algos[i];
	return NULL;
}

const struct analyze_algo *analyze_algo_at(size_t i)
{
	return i < UTIL_ARRAY_SIZE(algos) ? &algos[i] : NULL;
}

int analyze_place(const struct analyze_algo *a, const struct analyze_place_in *in,
		  int32_t *phy2log, struct util_err *err)
{
	if (in->experts <= 0 || in->ranks <= 0 || in->slots <= 0)
		return util_err_set(err, UTIL_EUSAGE, "experts, ranks and slots must be positive");
	if ((long long)in->ranks * in->slots < in->experts)
		return util_err_set(err, UTIL_EUSAGE,
				    "%d ranks x %d slots cannot hold %d experts", in->ranks,
				    in->slots, in->experts);
	return a->fn(in, phy2log, err);
}

double analyze_lower_bound(const double *heat, int experts, int ranks, int slots)
{
	double total = 0;

	(void)slots;
	for (int e = 0; e < experts; e++)
		total += heat[e];
	return total / ranks;
}

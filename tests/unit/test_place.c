/* test_place.c: the placement algorithms, the lower bound and rank matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "util/util.h"

static double max_load(const double *heat, int E, const int32_t *p, int R, int S)
{
	double *load = malloc((size_t)R * sizeof(double));
	double mx = analyze_device_load(heat, E, p, R, S, NULL, load);
	free(load);
	return mx;
}

static int run_algo(const char *name, const struct analyze_place_in *in, int32_t *p)
{
	const struct analyze_algo *a = analyze_algo_find(name);
	struct util_err err = UTIL_ERR_INIT;
	int rc;

	assert_non_null(a);
	rc = analyze_place(a, in, p, &err);
	if (rc)
		fprintf(stderr, "%s: %s\n", name, err.msg);
	return rc;
}

/* The example of the deepseek-ai/EPLB README, with its printed phy2log. */
static void test_place_eplb_readme(void **state)
{
	(void)state;
	static const double w[2][12] = {
		{ 90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86 },
		{ 20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27 },
	};
	static const int32_t want[2][16] = {
		{ 5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1 },
		{ 7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1 },
	};
	for (int l = 0; l < 2; l++) {
		struct analyze_place_in in = { .experts = 12, .ranks = 8, .slots = 2, .nodes = 2,
					       .groups = 4, .heat = w[l], .max_moves = -1 };
		int32_t p[16];
		assert_int_equal(run_algo("eplb-hier", &in, p), 0);
		assert_memory_equal(p, want[l], sizeof(p));
	}
}

static const double flash_heat[8] = { 600, 560, 120, 120, 20, 10, 10, 10 };

/* The FlashLB example (8 experts, 8 ranks x 2 slots): eplb's published 232. */
static void test_place_flashlb_example_eplb(void **state)
{
	(void)state;
	struct analyze_place_in in = { .experts = 8, .ranks = 8, .slots = 2, .heat = flash_heat,
				       .max_moves = -1 };
	int32_t p[16];
	assert_int_equal(run_algo("eplb", &in, p), 0);
	assert_true(fabs(max_load(flash_heat, 8, p, 8, 2) - 232) < 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_place_eplb_readme),
		cmocka_unit_test(test_place_flashlb_example_eplb),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

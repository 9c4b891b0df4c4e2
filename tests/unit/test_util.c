/* test_util.c: the shared human-scaled units and JSON string writer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void test_util_human_bytes(void **state)
{
	static const struct {
		double in;
		const char *out;
	} cases[] = {
		{ 0, "0 B" },
		{ 999, "999 B" },
		{ 1000, "1.0 kB" },
		{ 1024, "1.0 kB" },
		{ 44040192 + 10752, "44.1 MB" }, /* DeepSeek-V3 fp8 expert */
		{ 999949, "999.9 kB" },
		{ 999950, "1.0 MB" },             /* no "1000.0 kB" */
		{ 2.5e9, "2.5 GB" },
		{ 1.27e12, "1.3 TB" },
		{ 3e18, "3000.0 PB" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(cases); i++)
		assert_string_equal(util_human_bytes(buf, sizeof(buf), cases[i].in), cases[i].out);
}

static void test_util_human_seconds(void **state)
{
	static const struct {
		double in;
		const char *out;
	} cases[] = {
		{ 0, "0 s" },        { 850e-6, "850 us" }, { 0.0123, "12.3 ms" },
		{ 4.561, "4.56 s" }, { 750, "12.5 min" },  { 11160, "186.0 min" },
		{ 36000, "10.0 h" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(cases); i++)
		assert_string_equal(util_human_seconds(buf, sizeof(buf), cases[i].in),
				    cases[i].out);
}

static void test_util_json_str(void **state)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);

	(void)state;
	assert_non_null(f);
	util_json_str(f, "a\"b\\c\nd\te\x01 \xe9t\xc3\xa9");
	fclose(f);
	assert_string_equal(p, "\"a\\\"b\\\\c\\nd\\te\\u0001 \xef\xbf\xbdt\xc3\xa9\"");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_human_bytes),
		cmocka_unit_test(test_util_human_seconds),
		cmocka_unit_test(test_util_json_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

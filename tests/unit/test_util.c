/* test_util.c: the shared human-scaled units, the JSON string writer, the
 * strict JSON parser, the buffers and allocators of library code, which
 * fail without aborting, and what an -o may write (util/outfile.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#include <json-c/json.h>

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

/* What the strict parser takes, and what it refuses with which words:
 * whatever json-c would take loosely or keep changed. */
static void test_util_json_parse(void **state)
{
	static const struct {
		const char *in;
		const char *out; /* json-c's rendering, or NULL: refused */
		const char *what;
		long line;
		int syntax;
	} cases[] = {
		{ " {\"a\": [1, -0, 2.5e3, true, null, \"\\u00e9\\ud83d\\ude00\"]} \n",
		  "{\"a\":[1,0,2.5e3,true,null,\"\u00e9\U0001F600\"]}", NULL, 0, 0 },
		{ "18446744073709551615", "18446744073709551615", NULL, 0, 0 },
		{ "-9223372036854775808", "-9223372036854775808", NULL, 0, 0 },
		{ "{\"a\":{},\"b\":{\"a\":1}}", "{\"a\":{},\"b\":{\"a\":1}}", NULL, 0, 0 },
		{ "[1,2,]", NULL, "a comma before ']' (a trailing comma)", 1, 1 },
		{ "{\"a\":1,\n}", NULL, "a comma before '}' (a trailing comma)", 2, 1 },
		{ "{'a':1}", NULL, "a string in single quotes (JSON quotes with \")", 1, 1 },
		{ "[NaN]", NULL, "field '[0]': 'N' where a value should follow", 1, 1 },
		{ "[1.]", NULL, "field '[0]': no digit after a number's decimal point", 1, 1 },
		{ "[01]", NULL, "field '[0]': a number with a leading zero", 1, 1 },
		{ "/* c */ {}", NULL, "a comment (JSON has none)", 1, 1 },
		{ "{} {}", NULL, "text after the JSON value", 1, 1 },
		{ "{\"a\":\"x\ty\"}", NULL,
		  "field 'a': control character 0x09 inside a string (write it as an escape)", 1, 1 },
		{ "{\"a\":\"x\xffy\"}", NULL, "field 'a': byte 0xff is not valid UTF-8", 1, 1 },
		{ "{\"a\":\"\xed\xa0\x80\"}", NULL, "field 'a': byte 0xed is not valid UTF-8", 1, 1 },
		{ "{\"m\":\"x\\u0000y\"}", NULL,
		  "field 'm': a string holds \\u0000 (NUL), which moetrace cannot store", 1, 0 },
		{ "[\"\\ud800x\"]", NULL,
		  "field '[0]': \\ud800 is the first half of a UTF-16 surrogate pair without its "
		  "second (not a character)", 1, 0 },
		{ "{\"c\":[1,18446744073709551616]}", NULL,
		  "field 'c[1]': integer 18446744073709551616 does not fit 64 bits", 1, 0 },
		{ "[-9223372036854775809]", NULL,
		  "field '[0]': integer -9223372036854775809 does not fit 64 bits", 1, 0 },
		{ "{\"a\":1,\n\"a\":2}", NULL, "field 'a' appears twice (which one is meant?)", 2, 0 },
		/* empty keys: compared without an arena of key bytes */
		{ "{\"\":1,\"\":2}", NULL, "field '' appears twice (which one is meant?)", 1, 0 },
		{ "{\"a\":1,\"\\u0061\":2}", NULL,
		  "field '\\u0061' appears twice (which one is meant?)", 1, 0 },
		{ "{\"x\":[{\"o\":{\"k\":1,\"j\":2,\"k\":3}}]}", NULL,
		  "field 'x[0].o.k' appears twice (which one is meant?)", 1, 0 },
		{ "", NULL, "the text ends where a value should follow", 1, 1 },
		{ "{\"a\"", NULL, "the text ends where ':' should follow", 1, 1 },
	};
	char deep[200];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(cases); i++) {
		struct json_object *o = (struct json_object *)1;
		struct util_json_err je;
		int rc = util_json_parse(cases[i].in, strlen(cases[i].in), &o, &je);
		if (cases[i].out) {
			if (rc)
				fail_msg("case %zu: %s", i, je.what);
			assert_string_equal(json_object_to_json_string_ext(
						    o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE),
					    cases[i].out);
			json_object_put(o);
			continue;
		}
		assert_int_equal(rc, UTIL_EPARSE);
		assert_null(o);
		assert_string_equal(je.what, cases[i].what);
		assert_int_equal(je.line, cases[i].line);
		assert_int_equal(je.syntax, cases[i].syntax);
	}
	/* nesting: 64 levels, not 65 */
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	struct json_object *o;
	struct util_json_err je;
	assert_int_equal(util_json_parse(deep + 1, 128, &o, &je), 0);
	json_object_put(o);
	assert_int_equal(util_json_parse(deep, 130, &o, &je), UTIL_EPARSE);
	assert_non_null(strstr(je.what, "nested deeper than 64 levels"));
}

/* Integers as written, in range; json-c's uint64 past INT64_MAX too. */
static void test_util_json_int(void **state)
{
	struct json_object *o;
	struct util_json_err je;
	int64_t x = 7;
	static const char text[] = "[3, 3.0, 1e3, 9223372036854775807, 9223372036854775808, -4]";

	(void)state;
	assert_int_equal(util_json_parse(text, sizeof(text) - 1, &o, &je), 0);
	assert_int_equal(util_json_int(json_object_array_get_idx(o, 0), 0, 10, &x), 0);
	assert_int_equal(x, 3);
	assert_int_equal(util_json_int(json_object_array_get_idx(o, 1), 0, 10, &x), -1);
	assert_int_equal(util_json_int(json_object_array_get_idx(o, 2), 0, 10000, &x), -1);
	assert_int_equal(util_json_int(json_object_array_get_idx(o, 3), 0, INT64_MAX, &x), 0);
	assert_true(x == INT64_MAX);
	assert_int_equal(util_json_int(json_object_array_get_idx(o, 4), 0, INT64_MAX, &x), -2);
	assert_int_equal(util_json_int(json_object_array_get_idx(o, 5), 0, 10, &x), -2);
	assert_int_equal(util_json_int(json_object_array_get_idx(o, 5), -4, 10, &x), 0);
	assert_int_equal(x, -4);
	json_object_put(o);
}

/* Each allocation of the parser's fails in turn: out of memory, said so,
 * nothing leaked, and then the parse goes through. */
static void test_util_json_parse_nomem(void **state)
{
	static const char text[] = "{\"a\": {\"b\": 1, \"c\": [1, {\"d\": 2, \"e\": 3}]}, "
				   "\"f\": \"\\u00e9\"}";
	struct json_object *o;
	struct util_json_err je;
	long n;
	int rc;

	(void)state;
	for (n = 1;; n++) {
		util_alloc_fail_at(n);
		rc = util_json_parse(text, sizeof(text) - 1, &o, &je);
		if (rc == 0)
			break;
		assert_int_equal(rc, UTIL_ENOMEM);
		assert_null(o);
		assert_string_equal(je.what, "out of memory");
	}
	util_alloc_fail_at(0);
	assert_true(n > 1);
	json_object_put(o);
}

/* A soft buffer whose growth fails keeps what it had, ignores later adds
 * and says so; a reset makes it usable again.  Each allocation of a
 * sequence of adds fails in turn (the check build's hook). */
static void test_util_buf_soft_fails(void **state)
{
	char big[300];
	long n;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	for (n = 1;; n++) {
		struct util_buf b = UTIL_BUF_SOFT_INIT;
		struct util_err err = UTIL_ERR_INIT;

		util_alloc_fail_at(n);
		util_buf_addstr(&b, "head ");
		util_buf_addf(&b, "%s", big);
		util_buf_json_str(&b, "caf\xc3");
		util_buf_addstr(&b, big);
		if (util_alloc_calls() < n) {
			/* every allocation of the sequence has failed once */
			assert_int_equal(util_buf_check(&b, &err), 0);
			assert_int_equal(b.len, 5 + 2 * strlen(big) + strlen("\"caf\xef\xbf\xbd\""));
			assert_memory_equal(b.data, "head xxx", 8);
			util_buf_release(&b);
			break;
		}
		assert_int_equal(b.failed, 1);
		assert_int_equal(util_buf_check(&b, &err), UTIL_ENOMEM);
		assert_int_equal(err.code, UTIL_ENOMEM);
		assert_string_equal(err.msg, "out of memory");
		assert_true(b.len <= 5 + strlen(big) + 12);
		util_buf_reset(&b);
		assert_int_equal(b.failed, 0);
		assert_int_equal(b.soft, 1);
		util_buf_addstr(&b, "again");
		assert_int_equal(util_buf_check(&b, &err), 0);
		assert_string_equal(b.data, "again");
		util_buf_release(&b);
	}
	util_alloc_fail_at(0);
	assert_true(n >= 3); /* the first growth, the big one, the sanitized copy */
}

/* The hook fails the util_ allocators, never the aborting ones, and a
 * plain buffer grows through it. */
static void test_util_alloc_hook(void **state)
{
	struct util_buf b = UTIL_BUF_INIT;
	void *p;

	(void)state;
	util_alloc_fail_at(1);
	util_buf_addstr(&b, "plain");
	assert_string_equal(b.data, "plain");
	assert_null(util_malloc(8));
	assert_non_null(p = util_calloc(2, 8));
	free(p);
	util_alloc_fail_at(2);
	assert_non_null(p = util_malloc(1));
	assert_null(util_realloc(p, 100)); /* p is left alone */
	free(p);
	assert_null(util_calloc(SIZE_MAX / 2, 4));
	util_alloc_fail_at(0);
	util_buf_release(&b);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes a scratch directory of the output-file tests, links not followed. */
static void rm_dir(const char *dir)
{
	assert_int_equal(nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
}

static void touch(const char *dir, const char *name)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_non_null(f = fopen(p, "w"));
	fclose(f);
}

static void test_util_out_target(void **state)
{
	char dir[] = "/tmp/moetrace-util-XXXXXX", a[256], b[256], *t = NULL;
	struct util_err err = UTIL_ERR_INIT;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* a plain name, existing or not, is itself */
	snprintf(a, sizeof(a), "%s/new.csv", dir);
	assert_int_equal(util_out_target(a, &t, &err), 0);
	assert_string_equal(t, a);
	free(t);
	/* a chain of relative links, each read from its own directory */
	snprintf(a, sizeof(a), "%s/sub", dir);
	assert_int_equal(mkdir(a, 0777), 0);
	snprintf(a, sizeof(a), "%s/l1", dir);
	assert_int_equal(symlink("sub/l2", a), 0);
	snprintf(b, sizeof(b), "%s/sub/l2", dir);
	assert_int_equal(symlink("../real.csv", b), 0);
	assert_int_equal(util_out_target(a, &t, &err), 0);
	snprintf(b, sizeof(b), "%s/sub/../real.csv", dir);
	assert_string_equal(t, b);
	free(t);
	/* a loop of links is an error, not a hang */
	snprintf(a, sizeof(a), "%s/x", dir);
	assert_int_equal(symlink("y", a), 0);
	snprintf(b, sizeof(b), "%s/y", dir);
	assert_int_equal(symlink("x", b), 0);
	assert_int_equal(util_out_target(a, &t, &err), UTIL_EIO);
	assert_null(t);
	assert_non_null(strstr(err.msg, "symbolic links"));
	rm_dir(dir);
}

static void test_util_out_check(void **state)
{
	char dir[] = "/tmp/moetrace-util-XXXXXX", db[256], o[256];
	struct util_err err = UTIL_ERR_INIT;

	(void)state;
	assert_non_null(mkdtemp(dir));
	touch(dir, "t.db");
	snprintf(db, sizeof(db), "%s/t.db", dir);
	/* other files, NULL and a URL are fine */
	snprintf(o, sizeof(o), "%s/t.csv", dir);
	assert_int_equal(util_out_check(o, db, &err), 0);
	assert_int_equal(util_out_check(db, NULL, &err), 0);
	assert_int_equal(util_out_check(o, "clickhouse://h:8123/db", &err), 0);
	snprintf(o, sizeof(o), "%s/t.db-walrus", dir);
	assert_int_equal(util_out_check(o, db, &err), 0);
	/* the trace by another spelling, and its journals existing or not */
	snprintf(o, sizeof(o), "%s/./t.db", dir);
	assert_int_equal(util_out_check(o, db, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "is the trace"));
	snprintf(o, sizeof(o), "%s/t.db-journal", dir);
	assert_int_equal(util_out_check(o, db, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "rollback journal"));
	touch(dir, "t.db-shm");
	snprintf(o, sizeof(o), "%s/t.db-shm", dir);
	assert_int_equal(util_out_check(o, db, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "shared-memory index"));
	/* a hard link to the journal: the same file */
	snprintf(o, sizeof(o), "%s/other", dir);
	snprintf(db, sizeof(db), "%s/t.db-shm", dir);
	assert_int_equal(link(db, o), 0);
	snprintf(db, sizeof(db), "%s/t.db", dir);
	assert_int_equal(util_out_check(o, db, &err), UTIL_EUSAGE);
	rm_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_human_bytes),
		cmocka_unit_test(test_util_human_seconds),
		cmocka_unit_test(test_util_json_str),
		cmocka_unit_test(test_util_json_parse),
		cmocka_unit_test(test_util_json_int),
		cmocka_unit_test(test_util_json_parse_nomem),
		cmocka_unit_test(test_util_buf_soft_fails),
		cmocka_unit_test(test_util_alloc_hook),
		cmocka_unit_test(test_util_out_target),
		cmocka_unit_test(test_util_out_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

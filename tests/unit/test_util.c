/* test_util.c: the shared human-scaled units, the JSON string writer, the
 * buffers and allocators of library code, which fail without aborting, and
 * what an -o may write (util/outfile.c). */
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
		cmocka_unit_test(test_util_buf_soft_fails),
		cmocka_unit_test(test_util_alloc_hook),
		cmocka_unit_test(test_util_out_target),
		cmocka_unit_test(test_util_out_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

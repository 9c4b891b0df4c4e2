/* test_fleet.c: clickhouse:// URLs (parts, what messages show, refusals),
 * ClickHouse string literals, and a request whose allocations fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "fleet/fleet.h"

static void test_fleet_url_parts(void **state)
{
	static const struct {
		const char *in, *user, *password, *host;
		int port;
		const char *database, *shown;
	} ok[] = {
		{ "clickhouse://127.0.0.1:8123/moetrace", "", "", "127.0.0.1", 8123, "moetrace",
		  "clickhouse://127.0.0.1:8123/moetrace" },
		{ "clickhouse://writer:s3:c@ret@ch-1.example:65535/fleet_2", "writer", "s3:c@ret",
		  "ch-1.example", 65535, "fleet_2", "clickhouse://writer@ch-1.example:65535/fleet_2" },
		{ "clickhouse://reader@h:1/_x", "reader", "", "h", 1, "_x",
		  "clickhouse://reader@h:1/_x" },
		{ "clickhouse://u:@h:9/d", "u", "", "h", 9, "d", "clickhouse://u@h:9/d" },
		{ "clickhouse://u%40x:p%2F%25w@h:9/d", "u@x", "p/%w", "h", 9, "d",
		  "clickhouse://u@x@h:9/d" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct fleet_url u;
		struct util_err err = UTIL_ERR_INIT;

		assert_int_equal(fleet_url_parse(ok[i].in, &u, &err), 0);
		assert_string_equal(u.user, ok[i].user);
		assert_string_equal(u.password, ok[i].password);
		assert_string_equal(u.host, ok[i].host);
		assert_int_equal(u.port, ok[i].port);
		assert_string_equal(u.database, ok[i].database);
		assert_string_equal(u.shown, ok[i].shown);
	}
}

static void test_fleet_url_refused(void **state)
{
	static const char *const bad[] = {
		"http://h:8123/d", "clickhouse://h/d", "clickhouse://h:8123", "clickhouse://h:8123/",
		"clickhouse://h:0/d", "clickhouse://h:65536/d", "clickhouse://h:80x/d",
		"clickhouse://h:-1/d", "clickhouse://:8123/d", "clickhouse://h:8123/1d",
		"clickhouse://h:8123/d-b", "clickhouse://h:8123/d?x=1", "clickhouse://h h:8123/d",
		"clickhouse://:pw@h:8123/d", "clickhouse://[::1]:8123/d", "",
		"clickhouse://u:pw%2@h:8123/d", "clickhouse://u:pw%00@h:8123/d",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fleet_url u;
		struct util_err err = UTIL_ERR_INIT;

		assert_int_equal(fleet_url_parse(bad[i], &u, &err), UTIL_EUSAGE);
		assert_null(strstr(err.msg, "pw"));
	}
}

static void test_fleet_sql_quote(void **state)
{
	struct util_buf b = UTIL_BUF_INIT;
	(void)state;
	fleet_sql_quote(&b, "it's a \\ test");
	assert_string_equal(b.data, "'it\\'s a \\\\ test'");
	util_buf_reset(&b);
	fleet_sql_quote(&b, "");
	assert_string_equal(b.data, "''");
	util_buf_release(&b);
}

/* A URL shown in a message, parseable or not, never holds its password. */
static void test_fleet_url_shown(void **state)
{
	static const char *const cases[][2] = {
		{ "clickhouse://u:pw@h:1/db", "clickhouse://u@h:1/db" },
		{ "clickhouse://u:p@ss@h/db?deployment=a@b", "clickhouse://u@h/db?deployment=a@b" },
		{ "clickhouse://u@h:1/db", "clickhouse://u@h:1/db" },
		{ "clickhouse://h:1/db", "clickhouse://h:1/db" },
		{ "u:pw@h", "u@h" },
		{ "", "" },
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fleet_url_shown(cases[i][0], out, sizeof(out));
		assert_string_equal(out, cases[i][1]);
	}
	fleet_url_shown("clickhouse://u:secret@h:1/db", out, 12);
	assert_null(strstr(out, "secret"));
}

static void test_fleet_default_deployment(void **state)
{
	char out[64];

	(void)state;
	fleet_default_deployment("traces/east-1.db", out, sizeof(out));
	assert_string_equal(out, "east-1");
	fleet_default_deployment(".hidden", out, sizeof(out));
	assert_string_equal(out, ".hidden");
	fleet_default_deployment("a.b.db", out, sizeof(out));
	assert_string_equal(out, "a.b");
}

/* Each allocation of building and sending a request fails in turn: the
 * error is UTIL_ENOMEM, never an abort, and nothing leaks (ASan); past
 * them the request reaches the network (port 1 refuses: UTIL_EIO). */
static void test_fleet_out_of_memory(void **state)
{
	struct fleet_url u;
	struct util_err err = UTIL_ERR_INIT;
	long n;

	(void)state;
	assert_int_equal(fleet_url_parse("clickhouse://127.0.0.1:1/db", &u, &err), 0);
	for (n = 1;; n++) {
		struct util_buf q = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
		struct fleet_ch *c = NULL;
		int rc;

		util_alloc_fail_at(n);
		rc = fleet_ch_new(&u, &c, &err);
		if (!rc) {
			util_buf_addstr(&q, "SELECT count() FROM steps");
			fleet_sql_where_run(&q, "dep'loyment", "run");
			if (!(rc = util_buf_check(&q, &err)))
				rc = fleet_ch_query(c, q.data, 1, NULL, 0, &ans, &err);
		}
		fleet_ch_free(c);
		util_buf_release(&q);
		util_buf_release(&ans);
		if (util_alloc_calls() < n) {
			assert_int_equal(rc, UTIL_EIO);
			break;
		}
		assert_int_equal(rc, UTIL_ENOMEM);
		assert_string_equal(err.msg, "out of memory");
	}
	util_alloc_fail_at(0);
	assert_true(n >= 3); /* the handle, the query, the request's URL */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fleet_url_parts),
		cmocka_unit_test(test_fleet_url_refused),
		cmocka_unit_test(test_fleet_sql_quote),
		cmocka_unit_test(test_fleet_url_shown),
		cmocka_unit_test(test_fleet_default_deployment),
		cmocka_unit_test(test_fleet_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

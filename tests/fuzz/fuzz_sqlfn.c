/*
 * fuzz_sqlfn.c: the SQL functions over counts blobs and placements
 * (store/sqlfn.c, also the loadable extension) on arbitrary arguments, on
 * one in-memory connection.  Input: byte 0 chooses how the placement is
 * bound (blob or text) and the ranks argument, byte 1 the length of the
 * counts blob that follows (at most what is left), the rest is the placement.  Invariants: every statement
 * ends in a row or an SQL error naming its function, never anything else;
 * counts_json accepts exactly the blobs the codec decodes.
 */
#include "tests/fuzz/fuzz.h"

#include <sqlite3.h>

#include "store/store_int.h"
#include "store/store.h"

static sqlite3 *db;

/* clang-format off */
static const struct {
	const char *fn, *sql;
} queries[] = {
	{ "counts_json",      "SELECT counts_json(?1)" },
	{ "counts_sum",       "SELECT counts_sum(?1)" },
	{ "counts_max",       "SELECT counts_max(?1), counts_argmax(?1)" },
	{ "counts_n",         "SELECT counts_n(?1)" },
	{ "counts_at",        "SELECT counts_at(?1, ?3)" },
	{ "counts_imbalance", "SELECT counts_imbalance(?1, ?2, ?4)" },
	{ "counts_imbalance", "SELECT counts_imbalance(?1, ?2)" },
	{ "device_loads",     "SELECT device_loads(?1, ?2, ?4)" },
	{ "phy2log_json",     "SELECT phy2log_json(?2)" },
	{ "counts_encode",    "SELECT counts_encode(CAST(?2 AS TEXT))" },
	{ "counts_total",     "SELECT counts_total(x) FROM (SELECT ?1 AS x UNION ALL SELECT ?1)" },
};
/* clang-format on */
static sqlite3_stmt *stmts[UTIL_ARRAY_SIZE(queries)];

static void db_close(void)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(stmts); i++)
		sqlite3_finalize(stmts[i]);
	sqlite3_close(db);
}

static void db_open(void)
{
	char *msg = NULL;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    store_sql_register(db, &msg) != SQLITE_OK) {
		fprintf(stderr, "fuzz_sqlfn: cannot register: %s\n", msg ? msg : "?");
		abort();
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(queries); i++)
		if (sqlite3_prepare_v2(db, queries[i].sql, -1, &stmts[i], NULL) != SQLITE_OK) {
			fprintf(stderr, "fuzz_sqlfn: %s: %s\n", queries[i].sql, sqlite3_errmsg(db));
			abort();
		}
	atexit(db_close);
}

/* Steps st to the end: 1 if it gave a row, 0 on an SQL error naming fn. */
static int run(sqlite3_stmt *st, const char *fn)
{
	int rc, rows = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int c = 0; c < sqlite3_column_count(st); c++)
			(void)sqlite3_column_bytes(st, c);
		rows++;
	}
	if (rc != SQLITE_DONE) {
		const char *m = sqlite3_errmsg(db);
		/* an out-of-memory error may come from SQLite itself */
		fuzz_check(rc == SQLITE_ERROR || rc == SQLITE_NOMEM || rc == SQLITE_TOOBIG);
		fuzz_check(rc != SQLITE_ERROR || strstr(m, fn) != NULL);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE && rows > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b;
	size_t alen, blen;
	unsigned mode;

	if (size < 2)
		return 0;
	if (!db)
		db_open();
	mode = data[0];
	alen = data[1] < size - 2 ? data[1] : size - 2;
	a = data + 2;
	b = a + alen;
	blen = size - 2 - alen;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(queries); i++) {
		sqlite3_stmt *st = stmts[i];
		sqlite3_bind_blob64(st, 1, alen ? a : (const void *)"", alen, SQLITE_STATIC);
		if (mode & 1)
			sqlite3_bind_blob64(st, 2, blen ? b : (const void *)"", blen,
					    SQLITE_STATIC);
		else
			sqlite3_bind_text64(st, 2, (const char *)b, blen, SQLITE_STATIC,
					    SQLITE_UTF8);
		sqlite3_bind_int64(st, 3, (int64_t)(mode >> 4) - 2);
		if ((mode >> 1) & 7)
			sqlite3_bind_int64(st, 4, (mode >> 1) & 7);
		else
			sqlite3_bind_null(st, 4);
		int ok = run(st, queries[i].fn);
		if (i == 0) {
			/* counts_json accepts exactly what the codec decodes */
			int64_t n = store_codec_count(a, alen);
			int dec = 0;
			if (n >= 0) {
				uint32_t *v = malloc(((size_t)n + 1) * sizeof(*v));
				fuzz_check(v);
				dec = store_codec_decode(a, alen, v, (size_t)n) == 0;
				free(v);
			}
			fuzz_note(ok ? "counts blob accepted" : "counts blob refused",
				  ok ? NULL : sqlite3_errmsg(db));
			fuzz_check(ok == dec);
		}
		sqlite3_clear_bindings(st);
	}
	return 0;
}

/*
 * sqlfn: SQL access to traces.  store_sql_register() adds to one SQLite
 * connection the table-valued functions `expert_heat` (one row per
 * run, step, layer, expert, expanding the counts blobs, reading only the
 * `counts` rows its run/step/layer constraints select) and
 * `heat_window(run, layer, from, to)`, scalar helpers over counts blobs
 * and placements (counts_json, counts_sum, counts_imbalance, ...), and
 * TEMP views (layer_heat, device_load, layer_imbalance, ...).  The same
 * code is the loadable extension sqlext/moetrace_sqlite.c.  docs/schema.md
 * documents every object with an example.
 *
 * Ownership: everything registered belongs to the connection and goes away
 * with it; *errmsg, when set, is sqlite3_malloc'ed (sqlite3_free it).
 * Nothing here enables extension loading or changes the database file.
 */
#ifndef STORE_SQLFN_H
#define STORE_SQLFN_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Functions, table-valued functions and TEMP views: returns SQLITE_OK or
 * an SQLite error code with *errmsg (may be NULL) saying what failed. */
int store_sql_register(sqlite3 *db, char **errmsg);

/* Blobs of the `counts` table that expert_heat and heat_window have read on
 * this connection since store_sql_register (also the SQL function
 * moetrace_blobs_read()); -1 if not registered.  Tests use it to check
 * that filters reach the primary key. */
int64_t store_sql_blobs_read(sqlite3 *db);

/* Ready queries for `moetrace sql --examples`, NULL past the end. */
struct store_sql_example {
	const char *title;
	const char *sql;
};
const struct store_sql_example *store_sql_example_at(size_t i);

#endif

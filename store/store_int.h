/* store_int.h: declarations private to store/ (store.h is the folder's
 * public header; store_backend.h the interface a backend implements).
 * The unit tests include it to reach the connection and the SQL layer. */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include "store/store.h"
#include "store/store_backend.h"

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Statements kept prepared for the life of the handle (hot loops). */
enum store_stmt_id {
	STORE_STMT_REPLAY_STEP,
	STORE_STMT_STEPS_AFTER,
	STORE_STMT_DEPLOYED_LAST,
	STORE_STMT_COUNT
};

/* A handle: the front's part (backend.c), then the SQLite backend's, which
 * store.c, replay.c, imports.c, deployed_list.c and the SQL command alone
 * touch.  Another backend keeps its state behind `data`. */
struct store {
	const struct store_ops *ops;
	void *data;
	char *path;  /* as messages name it */
	char errmsg[512];
	sqlite3 *db;
	int readonly;
	int depth;   /* transaction nesting (store_begin) */
	int began;   /* the outermost level is BEGIN IMMEDIATE, not a savepoint */
	char *stage; /* STORE_STAGE: the private name of a database not yet at path */
	sqlite3_stmt *cached[STORE_STMT_COUNT];
	int64_t appended; /* encoded count bytes store_steps_append committed */
};

/* The SQLite backend (store/store.c) and the operations it keeps in the
 * files beside it. */
extern const struct store_ops store_sqlite_ops;
int store_sqlite_open(const char *path, int flags, struct store **out, struct util_err *err);
int store_sqlite_deployed_list(struct store *s, const struct store_run *run,
			       struct store_deployed_row **out, size_t *n);
int store_sqlite_import_seen(struct store *s, int64_t run, const char *name, int64_t size,
			     int64_t mtime);
int store_sqlite_import_add(struct store *s, int64_t run, const struct store_import *im);
int store_sqlite_replay_add(struct store *s, struct store_replay *r);
int store_sqlite_replay_finish(struct store *s, const struct store_replay *r);
int store_sqlite_replay_step_add(struct store *s, int64_t replay, int64_t step, int layers,
				 const double *max_load, const double *mean_load,
				 const double *base_max_load);
int store_sqlite_replay_event_add(struct store *s, int64_t replay,
				  const struct store_replay_event *e, int layers,
				  const int64_t *moves, const int64_t *bytes, const double *before,
				  const double *after);
int store_sqlite_replay_layer_add(struct store *s, int64_t replay, int layer, double mean,
				  double p99, double base_mean, double base_p99, int64_t moves);
int store_sqlite_replay_event_effective(struct store *s, int64_t replay, int64_t event,
					int64_t step);
int store_sqlite_replay_list(struct store *s, int64_t run, struct store_replay **out, size_t *n);
int store_sqlite_replay_get(struct store *s, int64_t id, struct store_replay *out);
int store_sqlite_replay_series(struct store *s, int64_t replay, int layer, int64_t **steps,
			       double **imbalance, double **base, size_t *n);
int store_sqlite_replay_events(struct store *s, int64_t replay, struct store_replay_event **out,
			       size_t *n);
int store_sqlite_replay_event_moves(struct store *s, int64_t replay, int layers,
				    size_t n_events, int64_t **bytes_out);

/* The SQLite connection of a store: store/ alone, and the unit tests
 * that damage a file on purpose, use it. */
sqlite3 *store_int_db(struct store *s);
int store_int_prepare(struct store *s, const char *sql, sqlite3_stmt **st);
int store_int_dberr(struct store *s, const char *what);

/* The columns schema version `version` promises, as "\ntable.column" lines
 * ending in "\n" (sqlite3_free them; NULL when out of memory): as written
 * in store.c (what opening a file checks), and as replaying the
 * migrations into an in-memory database gives them (what test_store holds
 * the first to; NULL also when a migration fails). */
char *store_int_schema_promised(int version);
char *store_int_schema_replayed(int version);
int store_int_seterr(struct store *s, int code, const char *fmt, ...) UTIL_PRINTF(3, 4);

/* Is a runs row's shape within what the schema allows?  Every reader of a
 * file someone else wrote checks it before sizing an array from the row:
 * store.c when it reads runs, sqlfn.c (also built into the loadable
 * extension, hence inline and free of SQLite calls) in expert_heat.
 * Values come as int64 so that a column past the int range fails too. */
static inline int store_int_shape_ok(int64_t layers, int64_t experts, int64_t topk,
				     int64_t ranks, int64_t slots, int64_t ranks_per_node)
{
	return layers >= 1 && layers <= STORE_MAX_LAYERS && experts >= 1 &&
	       experts <= STORE_MAX_EXPERTS && topk >= 0 && topk <= experts && ranks >= 0 &&
	       ranks <= STORE_MAX_SLOTS && slots >= 0 && slots <= STORE_MAX_SLOTS &&
	       ranks_per_node >= 0 && ranks_per_node <= STORE_MAX_SLOTS &&
	       ranks * slots <= STORE_MAX_SLOTS && (ranks == 0 || ranks * slots >= experts);
}

int store_int_prepare_cached(struct store *s, int id, const char *sql, sqlite3_stmt **st);

/* ---- SQL functions and views (store/sqlfn.c) ------------------------------
 * SQL access to traces.  store_sql_register() adds to one SQLite
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

/* store_int.h: declarations private to store/. */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include "store/store.h"

#include <sqlite3.h>

/* The SQLite connection of a store: store/ alone, and the unit tests
 * that damage a file on purpose, use it. */
sqlite3 *store_int_db(struct store *s);
int store_int_prepare(struct store *s, const char *sql, sqlite3_stmt **st);
int store_int_dberr(struct store *s, const char *what);
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

/* Statements kept prepared for the life of the handle (hot loops). */
enum store_stmt_id {
	STORE_STMT_REPLAY_STEP,
	STORE_STMT_STEPS_AFTER,
	STORE_STMT_DEPLOYED_LAST,
	STORE_STMT_COUNT
};
int store_int_prepare_cached(struct store *s, int id, const char *sql, sqlite3_stmt **st);

#endif

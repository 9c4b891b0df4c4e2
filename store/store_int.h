/* store_int.h: declarations private to store/. */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include "store/store.h"

int store_int_prepare(struct store *s, const char *sql, sqlite3_stmt **st);
int store_int_dberr(struct store *s, const char *what);
int store_int_seterr(struct store *s, int code, const char *fmt, ...) UTIL_PRINTF(3, 4);

/* Statements kept prepared for the life of the handle (hot loops). */
enum store_stmt_id { STORE_STMT_REPLAY_STEP, STORE_STMT_COUNT };
int store_int_prepare_cached(struct store *s, int id, const char *sql, sqlite3_stmt **st);

#endif

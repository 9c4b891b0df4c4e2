/* store_int.h: declarations private to store/. */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include "store/store.h"

int store_int_prepare(struct store *s, const char *sql, sqlite3_stmt **st);
int store_int_dberr(struct store *s, const char *what);

#endif

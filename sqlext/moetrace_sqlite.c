/*
 * moetrace_sqlite.c: the moetrace SQL functions and views as a loadable
 * SQLite extension, for the stock shell (`.load ./moetrace_sqlite`) or any
 * program that loads extensions.  It compiles store/sqlfn.c here, after
 * SQLITE_EXTENSION_INIT1, so every SQLite call goes through the routines
 * the host hands over: the extension works whichever SQLite the host
 * links.  The counts codec and model presets come from libmoetrace.a.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include "store/sqlfn.c"

int sqlite3_moetrace_sqlite_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api);

int sqlite3_moetrace_sqlite_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
	SQLITE_EXTENSION_INIT2(api);
	return store_sql_register(db, errmsg);
}

/* The name SQLite derives from the file name "moetrace_sqlite" (letters
 * only), so `.load ./moetrace_sqlite` needs no entry point argument. */
int sqlite3_moetracesqlite_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api);

int sqlite3_moetracesqlite_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
	return sqlite3_moetrace_sqlite_init(db, errmsg, api);
}

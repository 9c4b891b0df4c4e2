/*
 * imports.c: the dump files `moetrace import --follow` has taken into a
 * run (table imports), so that a file is imported once however often the
 * follower polls its directory or is restarted.
 */
#include "store/store.h"
#include "store/store_int.h"

int store_sqlite_import_seen(struct store *s, int64_t run, const char *name, int64_t size,
		      int64_t mtime)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_int_prepare(s,
				    "SELECT 1 FROM imports WHERE run = ?1 AND name = ?2 AND size = ?3 "
				    "AND mtime = ?4",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, size);
	sqlite3_bind_int64(st, 4, mtime);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = 1;
	else if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = store_int_dberr(s, "reading imports");
	sqlite3_finalize(st);
	return rc;
}

int store_sqlite_import_add(struct store *s, int64_t run, const struct store_import *im)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_int_prepare(s,
				    "INSERT INTO imports (run, name, size, mtime, first_step, "
				    "last_step, imported) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_text(st, 2, im->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, im->size);
	sqlite3_bind_int64(st, 4, im->mtime);
	sqlite3_bind_int64(st, 5, im->first_step);
	sqlite3_bind_int64(st, 6, im->last_step);
	sqlite3_bind_double(st, 7, util_wall());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store_int_dberr(s, "recording an import");
	sqlite3_finalize(st);
	return rc;
}

/*
 * deployed_list.c: every deployed placement row of a run, for the tools
 * that copy a run elsewhere (`moetrace push`).  Each row is checked as
 * store_deployed_at checks it: a layout the run can hold, a blob of
 * ranks x slots int32, experts in range.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

void store_deployed_rows_free(struct store_deployed_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		free(rows[i].phy2log);
	free(rows);
}

int store_sqlite_deployed_list(struct store *s, const struct store_run *run,
			struct store_deployed_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct store_deployed_row *rows = NULL;
	size_t cnt = 0, cap = 0;
	int rc, sr;

	*out = NULL;
	*n = 0;
	if ((rc = store_int_prepare(s,
				    "SELECT step, layer, ranks, slots, phy2log FROM deployed "
				    "WHERE run = ?1 ORDER BY step, layer",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run->id);
	while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_deployed_row *r;
		int64_t step = sqlite3_column_int64(st, 0);
		int64_t layer = sqlite3_column_int64(st, 1);
		int64_t ranks = sqlite3_column_int64(st, 2), slots = sqlite3_column_int64(st, 3);
		const uint8_t *b = sqlite3_column_blob(st, 4);
		size_t len = (size_t)sqlite3_column_bytes(st, 4), P;

		if (store_step_check(step, NULL) || layer < 0 || layer >= run->layers ||
		    ranks <= 0 || slots <= 0 || ranks * slots > STORE_MAX_SLOTS ||
		    ranks * slots < run->experts || len != (size_t)(ranks * slots) * 4) {
			rc = store_int_seterr(s, UTIL_EPARSE,
					      "deployed placement of run '%s' at step %lld layer "
					      "%lld is corrupt: %zu bytes for %lld ranks x %lld slots",
					      run->name, (long long)step, (long long)layer, len,
					      (long long)ranks, (long long)slots);
			goto out;
		}
		if (cnt == cap) {
			struct store_deployed_row *g;

			cap = cap ? 2 * cap : 64;
			g = realloc(rows, cap * sizeof(*rows));
			if (!g) {
				rc = store_int_seterr(s, UTIL_ENOMEM, "out of memory");
				goto out;
			}
			rows = g;
		}
		P = (size_t)(ranks * slots);
		r = &rows[cnt];
		r->step = step;
		r->layer = (int)layer;
		r->ranks = (int)ranks;
		r->slots = (int)slots;
		r->phy2log = malloc(P * sizeof(int32_t));
		if (!r->phy2log) {
			rc = store_int_seterr(s, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		cnt++;
		for (size_t i = 0; i < P; i++) {
			uint32_t v = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
				     (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;

			if ((int32_t)v < 0 || (int32_t)v >= run->experts) {
				rc = store_int_seterr(s, UTIL_EPARSE,
						      "deployed placement of run '%s' at step %lld "
						      "layer %lld is corrupt: slot %zu holds expert %d",
						      run->name, (long long)step, (long long)layer, i,
						      (int32_t)v);
				goto out;
			}
			r->phy2log[i] = (int32_t)v;
		}
	}
	if (sr != SQLITE_DONE) {
		rc = store_int_dberr(s, "reading deployed placements");
		goto out;
	}
	*out = rows;
	*n = cnt;
	rows = NULL;
	cnt = 0;
out:
	sqlite3_finalize(st);
	store_deployed_rows_free(rows, cnt);
	return rc;
}

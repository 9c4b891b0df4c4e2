/*
 * fuzz_csv.c: the CSV importer (collector_import_csv) on arbitrary bytes,
 * into one scratch database recreated every few hundred inputs.
 * Invariants: the import is all or nothing — after an error the database
 * holds exactly the runs it held before and the error names the file; after
 * a success there is one more run, under the name given, whose shape is
 * within the schema's limits and whose steps all read back in order, each
 * step number and token count within the store's value limits.
 */
#include "tests/fuzz/fuzz.h"

#include "collector/collector.h"

static struct store *db;
static char db_path[512];
static long imports;

static void db_reset(void)
{
	fuzz_db_fresh(&db, db_path, sizeof(db_path), "fuzz.db");
}

static size_t run_count(void)
{
	return fuzz_run_count(db);
}

static void db_close(void)
{
	store_free(db);
	db = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct collector_import_opts o;
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run, got;
	char path[512], name[32];
	size_t before;
	int rc;

	if (!db || imports % 256 == 0) {
		if (!db)
			atexit(db_close);
		db_reset();
	}
	imports++;
	fuzz_write(path, sizeof(path), "trace.csv", data, size);
	memset(&o, 0, sizeof(o));
	snprintf(name, sizeof(name), "r%ld", imports);
	o.run_name = name;
	before = run_count();
	memset(&run, 0, sizeof(run));
	rc = collector_import_csv(db, path, &o, &run, &err);
	if (rc) {
		fuzz_note("refused", err.msg);
		fuzz_check(rc < 0 && err.msg[0] && strstr(err.msg, "trace.csv"));
		fuzz_check(run_count() == before);
		fuzz_check(store_run_get(db, name, &got) != 0);
		return 0;
	}
	fuzz_note("accepted", NULL);
	fuzz_check(run_count() == before + 1);
	fuzz_check(store_run_get(db, name, &got) == 0);
	fuzz_check(got.layers > 0 && got.layers <= STORE_MAX_LAYERS);
	fuzz_check(got.experts > 0 && got.experts <= STORE_MAX_EXPERTS);
	/* every stored step reads back, in increasing order */
	struct store_run_stats st;
	struct store_iter *it = NULL;
	struct store_step step;
	int64_t seen = 0, last = INT64_MIN;
	fuzz_check(store_run_stats(db, got.id, &st) == 0 && st.steps >= 1);
	fuzz_check(store_iter_new(db, &got, INT64_MIN, INT64_MAX, 0, &it) == 0);
	while ((rc = store_iter_next(it, &step)) == 1) {
		fuzz_check(seen == 0 || step.step > last);
		/* the store's limits (docs/schema.md) hold for what it accepted */
		fuzz_check(store_step_check(step.step, NULL) == 0);
		fuzz_check(store_tokens_check(step.tokens, NULL) == 0);
		last = step.step;
		seen++;
	}
	fuzz_check(rc == 0 && seen == st.steps);
	store_iter_free(it);
	return 0;
}

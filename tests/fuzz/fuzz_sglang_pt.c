/*
 * fuzz_sglang_pt.c: the SGLang .pt reader (collector_import_sglang: zip
 * directory, pickle interpreter, recorder modes) on arbitrary bytes as one
 * dump file.  Invariants: the import is all or nothing — after an error the
 * database holds the runs it held and the one message names the file;
 * after a success there is one more run within the schema's limits, with
 * at least one step.
 */
#include "tests/fuzz/fuzz.h"

#include "collector/import.h"

static struct store *db;
static long imports;

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
	struct store_run_stats st;
	char path[600], dbpath[512], name[32];
	const char *p = path;
	size_t before;
	int rc;

	if (!db || imports % 256 == 0) {
		if (!db)
			atexit(db_close);
		fuzz_db_fresh(&db, dbpath, sizeof(dbpath), "pt.db");
	}
	imports++;
	fuzz_write(path, sizeof(path), "dump.pt", data, size);
	memset(&o, 0, sizeof(o));
	snprintf(name, sizeof(name), "r%ld", imports);
	o.run_name = name;
	before = fuzz_run_count(db);
	rc = collector_import_sglang(db, &p, 1, &o, path, &run, 0, NULL, NULL, &err);
	if (rc) {
		fuzz_note("refused", err.msg);
		fuzz_check(rc < 0 && strstr(err.msg, "dump.pt"));
		fuzz_check(!strchr(err.msg, '\n'));
		fuzz_check(fuzz_run_count(db) == before);
		fuzz_check(store_run_get(db, name, &got) != 0);
		return 0;
	}
	fuzz_note("accepted", NULL);
	fuzz_check(fuzz_run_count(db) == before + 1);
	fuzz_check(store_run_get(db, name, &got) == 0);
	fuzz_check(got.layers > 0 && got.layers <= STORE_MAX_LAYERS);
	fuzz_check(got.experts > 0 && got.experts <= STORE_MAX_EXPERTS);
	fuzz_check(store_run_stats(db, got.id, &st) == 0 && st.steps > 0);
	return 0;
}

/*
 * fuzz_jsonl.c: the JSON-lines importers — ours (collector_import_jsonl)
 * and Megatron-LM's router traces (collector_import_megatron) — on the same
 * arbitrary bytes.  Invariants: each import is all or nothing (after an
 * error the database holds the runs it held and the message names the
 * file); after a success there is one more run within the schema's limits
 * whose steps read back in increasing order, within the store's value
 * limits.
 */
#include "tests/fuzz/fuzz.h"

#include "collector/collector.h"

static struct store *db;
static long imports;

static void db_close(void)
{
	store_free(db);
	db = NULL;
}

static void db_reset(void)
{
	char path[512];

	fuzz_db_fresh(&db, path, sizeof(path), "jl.db");
}

static size_t run_count(void)
{
	return fuzz_run_count(db);
}

static void one(const char *path, int megatron)
{
	struct collector_import_opts o;
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run, got;
	char name[32];
	size_t before = run_count();
	int rc;

	memset(&o, 0, sizeof(o));
	snprintf(name, sizeof(name), "r%ld%c", imports, megatron ? 'm' : 'j');
	o.run_name = name;
	rc = megatron ? collector_import_megatron(db, path, &o, &run, &err)
		      : collector_import_jsonl(db, path, &o, &run, &err);
	if (rc) {
		fuzz_note(megatron ? "megatron refused" : "jsonl refused", err.msg);
		fuzz_check(rc < 0 && err.msg[0] && strstr(err.msg, "trace.jsonl"));
		fuzz_check(run_count() == before);
		fuzz_check(store_run_get(db, name, &got) != 0);
		return;
	}
	fuzz_note(megatron ? "megatron accepted" : "jsonl accepted", NULL);
	fuzz_check(run_count() == before + 1);
	fuzz_check(store_run_get(db, name, &got) == 0);
	fuzz_check(got.layers > 0 && got.layers <= STORE_MAX_LAYERS);
	fuzz_check(got.experts > 0 && got.experts <= STORE_MAX_EXPERTS);
	struct store_iter *it = NULL;
	struct store_step step;
	int64_t last = INT64_MIN, seen = 0;
	fuzz_check(store_iter_new(db, &got, INT64_MIN, INT64_MAX, 0, &it) == 0);
	while ((rc = store_iter_next(it, &step)) == 1) {
		fuzz_check(seen == 0 || step.step > last);
		/* the store's limits (docs/schema.md) hold for what it accepted */
		fuzz_check(store_step_check(step.step, NULL) == 0);
		fuzz_check(store_tokens_check(step.tokens, NULL) == 0);
		last = step.step;
		seen++;
	}
	fuzz_check(rc == 0 && seen >= 1);
	store_iter_free(it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[512];

	if (!db || imports % 128 == 0) {
		if (!db)
			atexit(db_close);
		db_reset();
	}
	imports++;
	fuzz_write(path, sizeof(path), "trace.jsonl", data, size);
	one(path, 0);
	one(path, 1);
	return 0;
}

/*
 * fuzz_safetensors.c: the safetensors reader (collector_st_parse) and the
 * TensorRT-LLM importer on arbitrary bytes as one rank's file.
 * Invariants: every tensor the parser accepts lies inside the input and
 * holds exactly shape x dtype bytes; the import is all or nothing — after
 * an error the database holds the runs it held and the message names the
 * file; after a success there is one more run within the schema's limits
 * whose steps are within the store's value limits.
 */
#include "tests/fuzz/fuzz.h"

#include <sys/stat.h>

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

	fuzz_db_fresh(&db, path, sizeof(path), "st.db");
}

static size_t run_count(void)
{
	return fuzz_run_count(db);
}

static int dtype_size(const char *d)
{
	if (strstr(d, "64"))
		return 8;
	if (strstr(d, "32"))
		return 4;
	if (strstr(d, "16"))
		return 2;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct collector_st_tensor *t = NULL;
	struct collector_import_opts o;
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run, got;
	char dir[512], path[600], name[32];
	size_t n = 0, before;
	int rc;

	rc = collector_st_parse("x.safetensors", data, size, &t, &n, &err);
	if (rc) {
		fuzz_check(rc < 0 && strstr(err.msg, "x.safetensors"));
	} else {
		for (size_t i = 0; i < n; i++) {
			uint64_t numel = 1;
			for (int k = 0; k < t[i].ndim; k++)
				numel *= (uint64_t)t[i].shape[k];
			fuzz_check(t[i].data >= data && t[i].data + t[i].bytes <= data + size);
			fuzz_check(t[i].bytes == numel * (uint64_t)dtype_size(t[i].dtype));
		}
	}
	free(t);

	if (!db || imports % 256 == 0) {
		if (!db)
			atexit(db_close);
		db_reset();
	}
	imports++;
	fuzz_path(dir, sizeof(dir), "trt");
	mkdir(dir, 0700);
	fuzz_write(path, sizeof(path), "trt/rank0.safetensors", data, size);
	memset(&o, 0, sizeof(o));
	snprintf(name, sizeof(name), "r%ld", imports);
	o.run_name = name;
	before = run_count();
	rc = collector_import_trtllm(db, dir, &o, &run, &err);
	if (rc) {
		fuzz_note("refused", err.msg);
		fuzz_check(rc < 0 && err.msg[0] && strstr(err.msg, "trt"));
		fuzz_check(run_count() == before);
		fuzz_check(store_run_get(db, name, &got) != 0);
		return 0;
	}
	fuzz_note("accepted", NULL);
	fuzz_check(run_count() == before + 1);
	fuzz_check(store_run_get(db, name, &got) == 0);
	fuzz_check(got.layers > 0 && got.layers <= STORE_MAX_LAYERS);
	fuzz_check(got.experts > 0 && got.experts <= STORE_MAX_EXPERTS);
	/* the store's limits (docs/schema.md): an iteration key past them is refused */
	struct store_run_stats st;
	fuzz_check(store_run_stats(db, got.id, &st) == 0 && st.steps >= 1);
	fuzz_check(store_step_check(st.first_step, NULL) == 0);
	fuzz_check(store_step_check(st.last_step, NULL) == 0);
	return 0;
}

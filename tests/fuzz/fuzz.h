/*
 * fuzz.h: what the fuzz targets share.  Each tests/fuzz/fuzz_<target>.c
 * defines LLVMFuzzerTestOneInput; `make fuzz` links it with clang's
 * libFuzzer, `make check` with replay.c, which feeds it every file of
 * tests/fuzz/corpus/<target>/ once.  Targets whose parser takes a path
 * write the input to a file in one private temporary directory, removed at
 * exit.  A target aborts (fuzz_check) when an invariant of the code under
 * test fails, so that libFuzzer records the input as a crasher.
 */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_check(cond)                                                                   \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                     \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* With MOETRACE_FUZZ_VERBOSE set, targets say what each input did (to
 * check that a seed named ok-* is accepted and a bad-* one refused). */
static inline void fuzz_note(const char *what, const char *msg)
{
	static int verbose = -1;

	if (verbose < 0)
		verbose = getenv("MOETRACE_FUZZ_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr, "  %s%s%s\n", what, msg && *msg ? ": " : "", msg ? msg : "");
}

static char fuzz_dir[256];

static inline void fuzz_dir_remove(void)
{
	char cmd[300];

	if (fuzz_dir[0] && snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir) < (int)sizeof(cmd))
		(void)!system(cmd);
}

/* The private directory (created on first use; /dev/shm when it exists,
 * since targets write a file per input). */
static inline const char *fuzz_tmpdir(void)
{
	if (!fuzz_dir[0]) {
		const char *base = getenv("TMPDIR");
		if (!base || !*base)
			base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/moetrace-fuzz.XXXXXX", base);
		if (!mkdtemp(fuzz_dir)) {
			perror("mkdtemp");
			abort();
		}
		atexit(fuzz_dir_remove);
	}
	return fuzz_dir;
}

/* path[size] = the private directory + "/" + name. */
static inline void fuzz_path(char *path, size_t size, const char *name)
{
	if (snprintf(path, size, "%s/%s", fuzz_tmpdir(), name) >= (int)size)
		abort();
}

/* Writes data to name in the private directory; path[size] gets its path. */
static inline void fuzz_write(char *path, size_t size, const char *name, const uint8_t *data,
			      size_t n)
{
	FILE *f;

	fuzz_path(path, size, name);
	f = fopen(path, "wb");
	if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

/* A fresh database `name` in the private directory: *db (if open) is
 * closed and the old file, its -wal and -shm removed; path[size] gets its
 * path. */
static inline void fuzz_db_fresh(struct store **db, char *path, size_t size, const char *name)
{
	char side[600];
	struct util_err err = UTIL_ERR_INIT;

	store_free(*db);
	*db = NULL;
	fuzz_path(path, size, name);
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	if (store_open(path, STORE_CREATE, db, &err)) {
		fprintf(stderr, "%s: %s\n", name, err.msg);
		abort();
	}
}

/* The runs in db. */
static inline size_t fuzz_run_count(struct store *db)
{
	struct store_run *runs = NULL;
	size_t n = 0;

	fuzz_check(store_run_list(db, &runs, &n) == 0);
	free(runs);
	return n;
}

#endif

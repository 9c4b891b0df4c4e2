/* test_store.c: the counts codec and the trace store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_int.h" /* the connection, to damage files on purpose */
#include "util/util.h"

static void roundtrip(const uint32_t *v, size_t n)
{
	uint8_t *buf = malloc(store_codec_bound(n));
	uint32_t *back = malloc((n ? n : 1) * sizeof(uint32_t));
	size_t len = store_codec_encode(v, n, buf);

	assert_true(len <= store_codec_bound(n));
	assert_int_equal(store_codec_count(buf, len), (int64_t)n);
	assert_int_equal(store_codec_decode(buf, len, back, n), 0);
	if (n)
		assert_memory_equal(v, back, n * sizeof(uint32_t));
	/* a wrong count or a truncated blob is rejected */
	assert_int_not_equal(store_codec_decode(buf, len, back, n + 1), 0);
	if (len > 2)
		assert_int_not_equal(store_codec_decode(buf, len - 1, back, n), 0);
	free(buf);
	free(back);
}

/* The columns opening a file checks for are the migrations' own: for every
 * schema version, the list written in store.c equals what replaying the
 * migrations into an empty database gives, column for column and in order
 * (a new migration must be written there too). */
static void test_store_schema_promised_is_replayed(void **state)
{
	(void)state;
	for (int v = 1; v <= STORE_SCHEMA_VERSION; v++) {
		char *want = store_int_schema_replayed(v), *have = store_int_schema_promised(v);
		assert_non_null(want);
		assert_non_null(have);
		if (strcmp(want, have)) {
			size_t i = 0; /* the first entry where they part */
			while (want[i] && want[i] == have[i])
				i++;
			while (i > 0 && want[i - 1] != '\n')
				i--;
			fail_msg("schema version %d: the migrations make '%.*s', store.c's "
				 "schema_promised lists '%.*s' there",
				 v, (int)strcspn(want + i, "\n"), want + i,
				 (int)strcspn(have + i, "\n"), have + i);
		}
		sqlite3_free(want);
		sqlite3_free(have);
	}
}

static void test_store_codec_edges(void **state)
{
	(void)state;
	uint32_t zeros[256] = { 0 }, maxes[256], mixed[300];
	for (int i = 0; i < 256; i++)
		maxes[i] = UINT32_MAX;
	for (int i = 0; i < 300; i++)
		mixed[i] = i % 7 == 0 ? UINT32_MAX - (uint32_t)i : (uint32_t)(i * i) % 97;
	roundtrip(zeros, 256);
	roundtrip(maxes, 256);
	roundtrip(mixed, 300);
	roundtrip(zeros, 1);
	roundtrip(maxes, 1);
	uint32_t one[1] = { 1u << 31 };
	roundtrip(one, 1);
	roundtrip(zeros, 0);
}

static void test_store_codec_random(void **state)
{
	(void)state;
	struct util_rng rng;
	uint32_t v[512];

	util_rng_seed(&rng, 42);
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = 1 + util_rng_below(&rng, 512);
		int shape = iter % 4;
		for (size_t i = 0; i < n; i++) {
			uint64_t x = util_rng_next(&rng);
			switch (shape) {
			case 0: v[i] = (uint32_t)x; break;                        /* any uint32 */
			case 1: v[i] = (uint32_t)(x % 16); break;                 /* decode-like */
			case 2: v[i] = (uint32_t)(-300.0 * log(util_rng_uniform(&rng) + 1e-12)); break;
			default: v[i] = (x & 0xff) == 0 ? (uint32_t)(x >> 40) : (uint32_t)(x % 300);
			}
		}
		roundtrip(v, n);
	}
}

static void test_store_codec_size(void **state)
{
	(void)state;
	/* realistic: geometric-ish heat around a mean of 8 and of 256 */
	struct util_rng rng;
	uint32_t v[256];
	uint8_t buf[4096];

	util_rng_seed(&rng, 7);
	for (int mean = 8; mean <= 256; mean *= 32) {
		for (int i = 0; i < 256; i++)
			v[i] = (uint32_t)(-mean * log(util_rng_uniform(&rng) + 1e-12));
		size_t len = store_codec_encode(v, 256, buf);
		assert_true(len < (size_t)2 * 256);
	}
}

/* The blob format, written the plain way: tag, LEB128 count, then Rice
 * with the cheapest k among log2(mean) - 2 .. + 2 (first on a tie) one bit
 * at a time, or raw when Rice is not smaller.  The encoder's own bytes
 * must be these: blobs already stored stay what a new encoder writes. */
static size_t plain_encode(const uint32_t *v, size_t n, uint8_t *out)
{
	uint64_t sum = 0, best = UINT64_MAX;
	unsigned k0 = 0, bk = 0;
	size_t len = 0, bit = 0;

	for (size_t i = 0; i < n; i++)
		sum += v[i];
	while (n && k0 < 31 && (2ULL << k0) <= sum / n)
		k0++;
	for (unsigned k = k0 > 2 ? k0 - 2 : 0; k <= (k0 + 2 > 31 ? 31 : k0 + 2); k++) {
		uint64_t b = 0;
		for (size_t i = 0; i < n; i++)
			b += (v[i] >> k) < 24 ? (v[i] >> k) + 1 + k : 56;
		if (b < best) {
			best = b;
			bk = k;
		}
	}
	int raw = (best + 7) / 8 + 1 >= 4 * n;
	out[len++] = raw ? STORE_CODEC_RAW : STORE_CODEC_RICE;
	for (uint64_t c = n;; c >>= 7) {
		out[len++] = (uint8_t)(c & 0x7f) | (c >= 0x80 ? 0x80 : 0);
		if (c < 0x80)
			break;
	}
	if (raw) {
		for (size_t i = 0; i < n; i++)
			for (int b = 0; b < 4; b++)
				out[len++] = (uint8_t)(v[i] >> (8 * b));
		return len;
	}
	out[len++] = (uint8_t)bk;
	memset(out + len, 0, store_codec_bound(n) - len);
#define PUT(bitval) (out[len + bit / 8] |= (uint8_t)((bitval) << (bit % 8)), bit++)
	for (size_t i = 0; i < n; i++) {
		uint32_t q = v[i] >> bk;
		if (q < 24) {
			for (uint32_t j = 0; j < q; j++)
				PUT(1);
			PUT(0);
			for (unsigned j = 0; j < bk; j++)
				PUT((v[i] >> j) & 1);
		} else {
			for (int j = 0; j < 24; j++)
				PUT(1);
			for (int j = 0; j < 32; j++)
				PUT((v[i] >> j) & 1);
		}
	}
#undef PUT
	return len + (bit + 7) / 8;
}

static void test_store_codec_bytes(void **state)
{
	(void)state;
	struct util_rng rng;
	/* lengths around the encoder's blocks of 4 and its 2^16-value sums */
	static const size_t lens[] = { 1, 2, 3, 4, 5, 7, 8, 63, 64, 255, 256, 257, 1000, 70001 };
	size_t cap = 70001;
	uint32_t *v = malloc(cap * sizeof(uint32_t));
	uint8_t *a = malloc(store_codec_bound(cap)), *b = malloc(store_codec_bound(cap));

	util_rng_seed(&rng, 11);
	for (int iter = 0; iter < 1400; iter++) {
		size_t n = lens[iter % 14];
		unsigned scale = (unsigned)(iter / 14) % 33;
		for (size_t i = 0; i < n; i++) {
			uint64_t x = util_rng_next(&rng);
			switch (iter / 14 % 4) {
			case 0: v[i] = (uint32_t)(x >> (32 + scale % 32)); break; /* 0 .. 2^32 - 1 */
			case 1: v[i] = (uint32_t)(-(double)(1u << scale % 24) *
						  log(util_rng_uniform(&rng) + 1e-12)); break;
			case 2: v[i] = (x & 15) == 0 ? (uint32_t)(x >> 32) : (uint32_t)(x % 9); break;
			default: v[i] = (uint32_t)(x % 3);
			}
		}
		size_t la = plain_encode(v, n, a), lb = store_codec_encode(v, n, b);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
	}
	free(v);
	free(a);
	free(b);
}

static void test_store_codec_garbage(void **state)
{
	(void)state;
	struct util_rng rng;
	uint8_t buf[64];
	uint32_t out[64];

	util_rng_seed(&rng, 3);
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = util_rng_below(&rng, sizeof(buf));
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)util_rng_next(&rng);
		if (len > 0)
			buf[0] &= 1;
		if (len > 1)
			buf[1] = (uint8_t)util_rng_below(&rng, 65);
		/* must not crash; any result is fine */
		int64_t n = store_codec_count(buf, len);
		if (n >= 0 && n <= 64)
			(void)store_codec_decode(buf, len, out, (size_t)n);
	}
}

static char *tmpdb(void)
{
	char *p = strdup("/tmp/moetrace-unit-XXXXXX");
	int fd = mkstemp(p);
	close(fd);
	unlink(p);
	return p;
}

static void cleanup(const char *p)
{
	char b[512];
	unlink(p);
	snprintf(b, sizeof(b), "%s-wal", p);
	unlink(b);
	snprintf(b, sizeof(b), "%s-shm", p);
	unlink(b);
}

/* Steps of more layers than one INSERT writes (300 = 2 x 128 + 44), and
 * of layers so wide that fewer of them fit one: read back as written, and
 * a step appended twice is refused by name with nothing of it kept. */
static void test_store_many_layers(void **state)
{
	(void)state;
	static const int shapes[2][2] = { { 300, 7 }, { 20, 65536 } };

	for (int k = 0; k < 2; k++) {
		char *path = tmpdb();
		struct util_err err = UTIL_ERR_INIT;
		struct store *s;
		struct store_run run = { 0 };
		int L = shapes[k][0], E = shapes[k][1], N = 3;
		size_t cells = (size_t)L * (size_t)E;
		uint32_t *counts = malloc((size_t)N * cells * sizeof(uint32_t));
		struct store_step steps[3];

		assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
		snprintf(run.name, sizeof(run.name), "wide");
		run.layers = L;
		run.experts = E;
		assert_int_equal(store_run_add(s, &run), 0);
		for (int i = 0; i < N; i++) {
			for (size_t c = 0; c < cells; c++)
				counts[(size_t)i * cells + c] = (uint32_t)((c * 2654435761u + (size_t)i) % 1000);
			steps[i] = (struct store_step){ .step = i, .counts = counts + (size_t)i * cells };
		}
		assert_int_equal(store_steps_append(s, &run, steps, 2), 0);
		/* step 1 again, after the new step 2: all refused */
		assert_int_equal(store_steps_append(s, &run, steps + 1, 2), UTIL_EUSAGE);
		assert_non_null(strstr(store_errmsg(s), "step 1 is already recorded in run 'wide'"));
		assert_int_equal(store_steps_append(s, &run, steps + 2, 1), 0);

		struct store_iter *it;
		struct store_step out;
		int n = 0;
		assert_int_equal(store_iter_new(s, &run, INT64_MIN, INT64_MAX, 0, &it), 0);
		while (store_iter_next(it, &out) == 1) {
			assert_int_equal(out.step, n);
			assert_memory_equal(out.counts, counts + (size_t)n * cells,
					    cells * sizeof(uint32_t));
			n++;
		}
		store_iter_free(it);
		assert_int_equal(n, N);
		store_free(s);
		cleanup(path);
		free(path);
		free(counts);
	}
}

/* A run's ranks per node is 0 or divides its ranks: anything else is
 * refused when the run is made or relaid, as the analyses would refuse it. */
static void test_store_ranks_per_node(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run run = { 0 };

	assert_true(store_ranks_per_node_ok(4, 2) && store_ranks_per_node_ok(4, 0) &&
		    store_ranks_per_node_ok(0, 3) && store_ranks_per_node_ok(4, 4));
	assert_false(store_ranks_per_node_ok(4, 3) || store_ranks_per_node_ok(2, 3) ||
		     store_ranks_per_node_ok(4, -1));
	assert_int_equal(store_ranks_per_node_default(4, 8), 4);
	assert_int_equal(store_ranks_per_node_default(16, 8), 8);
	assert_int_equal(store_ranks_per_node_default(12, 8), 0); /* unknown, not 8 */
	assert_int_equal(store_ranks_per_node_default(12, 0), 12);
	assert_int_equal(store_ranks_per_node_default(0, 8), 0);

	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	snprintf(run.name, sizeof(run.name), "nodes");
	run.layers = 1;
	run.experts = 4;
	run.ranks = 4;
	run.slots = 1;
	run.ranks_per_node = 3;
	assert_int_equal(store_run_add(s, &run), UTIL_EUSAGE);
	assert_non_null(
		strstr(store_errmsg(s), "run 'nodes': ranks per node 3 does not divide 4 ranks"));
	run.ranks_per_node = 2;
	assert_int_equal(store_run_add(s, &run), 0);
	assert_int_equal(store_run_set_layout(s, run.id, 2, 2, 4), UTIL_EUSAGE);
	assert_non_null(strstr(store_errmsg(s), "ranks per node 4 does not divide 2 ranks"));
	assert_int_equal(store_run_set_layout(s, run.id, 2, 2, 2), 0);
	store_free(s);
	cleanup(path);
	free(path);
}

static void test_store_roundtrip(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run run = { 0 };
	enum { L = 3, E = 5, N = 10 };
	uint32_t counts[N][L * E];
	struct store_step steps[N];

	assert_int_equal(store_open(path, STORE_READONLY, &s, &err), UTIL_ENOTFOUND);
	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	snprintf(run.name, sizeof(run.name), "r1");
	run.layers = L;
	run.experts = E;
	run.topk = 2;
	assert_int_equal(store_run_add(s, &run), 0);
	assert_true(run.id > 0);
	assert_int_equal(store_run_add(s, &run), UTIL_EUSAGE); /* duplicate name */
	for (int i = 0; i < N; i++) {
		for (int c = 0; c < L * E; c++)
			counts[i][c] = (uint32_t)(i * 100 + c);
		steps[i] = (struct store_step){ .step = 10 + i, .phase = 1 + i % 2, .tokens = 4,
						.counts = counts[i] };
	}
	assert_int_equal(store_steps_append(s, &run, steps, N), 0);
	/* appending an existing step fails and changes nothing */
	assert_int_not_equal(store_steps_append(s, &run, steps + 3, 2), 0);

	struct store_run_stats st;
	assert_int_equal(store_run_stats(s, run.id, &st), 0);
	assert_int_equal(st.steps, N);
	assert_int_equal(st.first_step, 10);
	assert_int_equal(st.last_step, 19);
	assert_int_equal(st.prefill_steps, 5);

	uint64_t sum[L * E];
	int64_t ns;
	assert_int_equal(store_window_sum(s, &run, 12, 13, 0, sum, &ns), 0);
	assert_int_equal(ns, 2);
	for (int c = 0; c < L * E; c++)
		assert_int_equal(sum[c], (uint64_t)(200 + c + 300 + c));
	/* phase filter: only decode (phase 2) steps: i odd */
	assert_int_equal(store_window_sum(s, &run, INT64_MIN, INT64_MAX, 1u << 2, sum, &ns), 0);
	assert_int_equal(ns, 5);

	struct store_iter *it;
	struct store_step out;
	int k = 0;
	assert_int_equal(store_iter_new(s, &run, 15, 100, 0, &it), 0);
	while (store_iter_next(it, &out) == 1) {
		assert_int_equal(out.step, 15 + k);
		assert_memory_equal(out.counts, counts[5 + k], sizeof(counts[0]));
		k++;
	}
	store_iter_free(it);
	assert_int_equal(k, 5);

	/* deployed placement */
	int32_t p2l[L * 8], back[L * 8];
	int64_t from;
	for (int i = 0; i < L * 8; i++)
		p2l[i] = i % E;
	assert_int_equal(store_deployed_at(s, &run, 100, 4, 2, back, &from), UTIL_ENOTFOUND);
	assert_int_equal(store_deployed_set(s, &run, 12, 4, 2, p2l), 0);
	assert_int_equal(store_deployed_at(s, &run, 11, 4, 2, back, &from), UTIL_ENOTFOUND);
	assert_int_equal(store_deployed_at(s, &run, 50, 4, 2, back, &from), 0);
	assert_int_equal(from, 12);
	assert_memory_equal(p2l, back, sizeof(p2l));
	p2l[0] = E; /* out of range */
	assert_int_equal(store_deployed_set(s, &run, 20, 4, 2, p2l), UTIL_ERANGE);
	store_free(s);

	/* read-only reopen sees the same */
	struct store_run r2;
	assert_int_equal(store_open_run(path, "r1", STORE_READONLY, &s, &r2, &err), 0);
	assert_int_equal(r2.layers, L);
	assert_int_equal(store_run_get(s, "nope", &r2), UTIL_ENOTFOUND);
	store_free(s);
	cleanup(path);
	free(path);
}

static void test_store_hostile_files(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	FILE *f = fopen(path, "w");

	fputs("this is not a database, just text that is long enough to look like one", f);
	fclose(f);
	assert_int_not_equal(store_open(path, STORE_READONLY, &s, &err), 0);
	assert_non_null(strstr(err.msg, path));
	assert_int_not_equal(store_open(path, 0, &s, &err), 0);
	cleanup(path);

	/* a future schema version is refused */
	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	assert_int_equal(sqlite3_exec(store_int_db(s), "PRAGMA user_version = 99", NULL, NULL, NULL), 0);
	store_free(s);
	assert_int_not_equal(store_open(path, 0, &s, &err), 0);
	assert_non_null(strstr(err.msg, "newer"));
	cleanup(path);

	/* an SQLite file that is not ours */
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_not_equal(store_open(path, 0, &s, &err), 0);
	assert_non_null(strstr(err.msg, "not a moetrace trace"));
	cleanup(path);

	/* user_version is signed: a negative one is no schema of ours (it
	 * used to index the migrations below their start) */
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA user_version = -1", NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(store_open(path, 0, &s, &err), UTIL_EPARSE);
	assert_non_null(strstr(err.msg, "schema version -1"));
	assert_int_equal(store_open(path, STORE_READONLY, &s, &err), UTIL_EPARSE);
	cleanup(path);
	free(path);
}

static void test_store_migration(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	sqlite3_stmt *st;

	/* a fresh file gets the newest schema */
	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	assert_int_equal(sqlite3_prepare_v2(store_int_db(s), "PRAGMA user_version", -1, &st, NULL), 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
	sqlite3_finalize(st);
	/* take it back to version 1 (before the replay and imports tables) */
	assert_int_equal(sqlite3_exec(store_int_db(s),
				      "DROP TABLE replays; DROP TABLE replay_steps; "
				      "DROP TABLE replay_events; DROP TABLE replay_event_layers; "
				      "DROP TABLE replay_layers; DROP TABLE imports; "
				      "PRAGMA user_version = 1",
				      NULL, NULL, NULL),
			 0);
	store_free(s);
	/* read-only refuses to upgrade and says how */
	assert_int_not_equal(store_open(path, STORE_READONLY, &s, &err), 0);
	assert_non_null(strstr(err.msg, "schema version 1"));
	/* read-write migrates forward */
	assert_int_equal(store_open(path, 0, &s, &err), 0);
	struct store_replay r = { .run = 1, .ranks = 2, .slots = 2, .interval = 1, .window = 1 };
	snprintf(r.algo, sizeof(r.algo), "eplb");
	assert_int_equal(store_replay_add(s, &r), 0);
	assert_true(r.id > 0);
	/* ... through version 4: the imports of a followed directory */
	struct store_import im = { "d_0.pt", 10, 5, 0, 3 };
	assert_int_equal(store_import_seen(s, 1, "d_0.pt", 10, 5), 0);
	assert_int_equal(store_import_add(s, 1, &im), 0);
	assert_int_equal(store_import_seen(s, 1, "d_0.pt", 10, 5), 1);
	assert_int_equal(store_import_seen(s, 1, "d_0.pt", 11, 5), 0);
	store_free(s);
	cleanup(path);
	free(path);
}

static void test_store_migration_replay_settings(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_replay *v = NULL;
	size_t n = 0;

	/* a version-2 file: the replay columns of migration 3 dropped, one
	 * replay whose params recorded --pay, w4a8 and one link */
	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	assert_int_equal(
		sqlite3_exec(store_int_db(s),
			     "ALTER TABLE replays DROP COLUMN pay; ALTER TABLE replays DROP COLUMN quant;"
			     "ALTER TABLE replays DROP COLUMN link_intra;"
			     "ALTER TABLE replays DROP COLUMN link_inter;"
			     "ALTER TABLE replays DROP COLUMN ranks_per_node;"
			     "ALTER TABLE replays DROP COLUMN hardware;"
			     "ALTER TABLE replays DROP COLUMN engine;"
			     "ALTER TABLE replays DROP COLUMN step_ms;"
			     "ALTER TABLE replays DROP COLUMN tokens;"
			     "ALTER TABLE replays DROP COLUMN bytes_inter;"
			     "ALTER TABLE replays DROP COLUMN moe_seconds;"
			     "ALTER TABLE replays DROP COLUMN baseline_moe_seconds;"
			     "ALTER TABLE replays DROP COLUMN baseline_step_seconds;"
			     "ALTER TABLE replay_events DROP COLUMN bytes_inter;"
			     "ALTER TABLE replay_events DROP COLUMN transfer_intra_seconds;"
			     "ALTER TABLE replay_events DROP COLUMN transfer_inter_seconds;"
			     "DROP TABLE imports;"
			     "INSERT INTO replays (run, created, algo, ranks, slots, interval, window, "
			     "delay, params) VALUES (1, 0, 'eplb', 2, 2, 5, 5, 1, "
			     "'{\"pay\": true, \"quant\": \"w4a8\", \"link\": \"hccs\"}');"
			     "INSERT INTO replays (run, created, algo, ranks, slots, interval, window, "
			     "delay, params) VALUES (1, 0, 'keel', 2, 2, 5, 5, 1, 'not json');"
			     "PRAGMA user_version = 2",
			     NULL, NULL, NULL),
		0);
	store_free(s);
	/* read-write migrates forward: the old replay keeps what it recorded */
	assert_int_equal(store_open(path, 0, &s, &err), 0);
	assert_int_equal(store_replay_list(s, -1, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].pay, 1);
	assert_string_equal(v[0].quant, "w4a8");
	assert_string_equal(v[0].link_intra, "hccs");
	assert_string_equal(v[0].link_inter, "hccs");
	assert_int_equal(v[0].ranks_per_node, 0);
	assert_string_equal(v[0].engine, "");
	assert_int_equal(v[1].pay, 0);
	assert_string_equal(v[1].quant, "");
	free(v);
	/* a new replay stores every setting */
	struct store_replay r = { .run = 1, .ranks = 4, .slots = 2, .interval = 1, .window = 1,
				  .pay = 1, .ranks_per_node = 2, .step_ms = 12.5, .tokens = 77,
				  .bytes_inter = 9 };
	snprintf(r.algo, sizeof(r.algo), "keel");
	snprintf(r.quant, sizeof(r.quant), "fp8");
	snprintf(r.link_intra, sizeof(r.link_intra), "nvlink4");
	snprintf(r.link_inter, sizeof(r.link_inter), "ib-ndr-400g");
	snprintf(r.hardware, sizeof(r.hardware), "h200");
	snprintf(r.engine, sizeof(r.engine), "sglang");
	assert_int_equal(store_replay_add(s, &r), 0);
	assert_int_equal(store_replay_finish(s, &r), 0);
	struct store_replay g;
	assert_int_equal(store_replay_get(s, r.id, &g), 0);
	assert_true(g.pay == 1 && g.ranks_per_node == 2 && g.step_ms == 12.5 && g.tokens == 77 &&
		    g.bytes_inter == 9);
	assert_string_equal(g.quant, "fp8");
	assert_string_equal(g.link_inter, "ib-ndr-400g");
	assert_string_equal(g.hardware, "h200");
	assert_string_equal(g.engine, "sglang");
	store_free(s);
	cleanup(path);
	free(path);
}

/* A trace whose tables do not hold what its schema version promises is
 * refused when opened, naming the file and what is missing; so is a run row
 * whose shape only looks right once truncated to 32 bits. */
static void test_store_schema_damage(void **state)
{
	(void)state;
	/* clang-format off */
	static const struct { const char *damage, *msg; } cases[] = {
		{ "DROP TABLE counts; CREATE TABLE counts (x)", "table counts lacks column run" },
		{ "ALTER TABLE steps DROP COLUMN bytes", "table steps lacks column bytes" },
		{ "ALTER TABLE runs RENAME COLUMN experts TO e", "table runs lacks column experts" },
		{ "DROP TABLE steps", "no table steps" },
		{ "DROP TABLE replay_layers", "no table replay_layers" },
		{ "ALTER TABLE deployed RENAME TO d", "no table deployed" },
		/* a view with every column is still not the table */
		{ "ALTER TABLE imports RENAME TO i; CREATE VIEW imports AS SELECT * FROM i",
		  "no table imports" },
		/* names are SQLite's, case-blind: this one is whole */
		{ "ALTER TABLE steps RENAME TO s; ALTER TABLE s RENAME TO STEPS", NULL },
	};
	/* clang-format on */
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = tmpdb();
		assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
		if (sqlite3_exec(store_int_db(s), cases[i].damage, NULL, NULL, NULL) != SQLITE_OK)
			fail_msg("cannot damage: %s: %s", cases[i].damage,
				 sqlite3_errmsg(store_int_db(s)));
		store_free(s);
		for (int flags = STORE_READONLY; flags >= 0; flags--) {
			err = (struct util_err)UTIL_ERR_INIT;
			s = NULL;
			if (!cases[i].msg) {
				if (store_open(path, flags, &s, &err))
					fail_msg("%s: refused: %s", cases[i].damage, err.msg);
				store_free(s);
				continue;
			}
			assert_int_equal(store_open(path, flags, &s, &err), UTIL_EPARSE);
			assert_null(s);
			if (!strstr(err.msg, cases[i].msg) || !strstr(err.msg, path) ||
			    !strstr(err.msg, "is not a moetrace trace or is corrupt"))
				fail_msg("%s: message '%s'", cases[i].damage, err.msg);
		}
		cleanup(path);
		free(path);
	}

	/* what is not there to read is bad input (exit status 2), not a
	 * runtime failure */
	char *path = tmpdb();
	FILE *f = fopen(path, "w");
	fputs("step,layer,expert,tokens\n0,0,0,1\n", f);
	fclose(f);
	assert_int_equal(store_open(path, STORE_READONLY, &s, &err), UTIL_EPARSE);
	assert_int_equal(util_exit_status(err.code), 2);
	cleanup(path);

	/* 2^32 + 8 experts must not read as 8 */
	struct store_run run = { .layers = 2, .experts = 8 }, back;
	snprintf(run.name, sizeof(run.name), "r");
	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	assert_int_equal(store_run_add(s, &run), 0);
	assert_int_equal(store_run_get(s, "r", &back), 0);
	assert_int_equal(sqlite3_exec(store_int_db(s), "UPDATE runs SET experts = 4294967304", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_run_get(s, "r", &back), UTIL_EPARSE);
	assert_non_null(strstr(store_errmsg(s), "impossible shape"));
	store_free(s);
	cleanup(path);
	free(path);
}

/* The store's value limits: the last storable values go in and come back,
 * one past them is refused before anything is written, and the checked
 * arithmetic and UTF-8 helpers the readers use hold at the type limits. */
static void test_store_limits(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run run = { 0 }, back;
	uint32_t counts[2] = { UINT32_MAX, 0 };
	struct store_step st[2] = {
		{ .step = STORE_STEP_MIN, .tokens = STORE_TOKENS_MAX, .counts = counts },
		{ .step = STORE_STEP_MAX, .tokens = 0, .counts = counts },
	};
	struct store_step past = { .step = STORE_STEP_MAX + 1, .counts = counts };
	int32_t p2l[2] = { 0, 1 };
	int64_t v;

	assert_int_equal(store_step_check(STORE_STEP_MAX, &err), 0);
	assert_int_equal(store_step_check(STORE_STEP_MIN - 1, &err), UTIL_ERANGE);
	assert_non_null(strstr(err.msg, "outside the range a trace holds"));
	assert_int_equal(store_tokens_check(-1, NULL), UTIL_ERANGE);
	assert_int_equal(store_tokens_check(INT64_MAX, NULL), UTIL_ERANGE);

	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	snprintf(run.name, sizeof(run.name), "lim");
	run.layers = 1;
	run.experts = 2;
	run.first_layer = STORE_MAX_FIRST_LAYER + 1;
	assert_int_equal(store_run_add(s, &run), UTIL_ERANGE);
	run.first_layer = -1;
	assert_int_equal(store_run_add(s, &run), UTIL_ERANGE);
	run.first_layer = STORE_MAX_FIRST_LAYER;
	assert_int_equal(store_run_add(s, &run), 0);
	assert_int_equal(store_steps_append(s, &run, st, 2), 0);
	assert_int_equal(store_steps_append(s, &run, &past, 1), UTIL_ERANGE);
	past.step = INT64_MIN;
	assert_int_equal(store_steps_append(s, &run, &past, 1), UTIL_ERANGE);
	past.step = 5;
	past.tokens = STORE_TOKENS_MAX + 1;
	assert_int_equal(store_steps_append(s, &run, &past, 1), UTIL_ERANGE);
	assert_int_equal(store_deployed_set(s, &run, INT64_MAX, 1, 2, p2l), UTIL_ERANGE);
	assert_int_equal(store_deployed_set(s, &run, STORE_STEP_MIN, 1, 2, p2l), 0);

	struct store_run_stats rs;
	assert_int_equal(store_run_get(s, "lim", &back), 0);
	assert_int_equal(back.first_layer, STORE_MAX_FIRST_LAYER);
	assert_int_equal(store_run_stats(s, run.id, &rs), 0);
	assert_int_equal(rs.steps, 2);
	assert_int_equal(rs.first_step, STORE_STEP_MIN);
	assert_int_equal(rs.last_step, STORE_STEP_MAX);
	/* a row past the limits, written behind the store's back */
	assert_int_equal(sqlite3_exec(store_int_db(s),
				      "UPDATE counts SET step = 9007199254740992 WHERE step = "
				      "9007199254740991",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_run_get(s, "lim", &back), UTIL_EPARSE);
	assert_non_null(strstr(store_errmsg(s), "table counts holds step 9007199254740992"));
	store_free(s);
	cleanup(path);
	free(path);

	assert_int_equal(util_add_i64(INT64_MAX, 1, &v), UTIL_ERANGE);
	assert_int_equal(util_add_i64(INT64_MAX - 1, 1, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(util_sub_i64(STORE_STEP_MAX, STORE_STEP_MIN, &v), 0);
	assert_int_equal(util_sub_i64(INT64_MAX, -1, &v), UTIL_ERANGE);
	assert_int_equal(util_mul_i64(INT64_C(1) << 32, INT64_C(1) << 31, &v), UTIL_ERANGE);
	assert_int_equal(util_mul_i64(-(INT64_C(1) << 32), INT64_C(1) << 31, &v), 0);
	assert_true(v == INT64_MIN);

	char buf[64];
	assert_true(util_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	assert_false(util_utf8_valid("caf\xe9"));         /* Latin-1 */
	assert_false(util_utf8_valid("\xc0\xaf"));        /* overlong '/' */
	assert_false(util_utf8_valid("\xed\xa0\x80"));    /* a surrogate */
	assert_false(util_utf8_valid("\xf4\x90\x80\x80")); /* past U+10FFFF */
	assert_false(util_utf8_valid("\xe2\x82"));        /* cut short */
	assert_string_equal(util_utf8_sanitize(buf, sizeof(buf), "caf\xe9!"), "caf\xef\xbf\xbd!");
	assert_string_equal(util_utf8_sanitize(buf, sizeof(buf), "\xe2\x82"),
			    "\xef\xbf\xbd\xef\xbf\xbd");
	/* a small buffer cuts between characters, never inside one */
	assert_string_equal(util_utf8_sanitize(buf, 5, "ab\xe9" "cd"), "ab");
	assert_string_equal(util_utf8_sanitize(buf, 6, "ab\xe9" "cd"), "ab\xef\xbf\xbd");
	/* a prefix cut between characters: before a character of 2 bytes that
	 * would not fit, at the limit when the next byte starts one */
	assert_int_equal(util_utf8_cut("ab\xc3\xa9z", 3), 2);
	assert_int_equal(util_utf8_cut("ab\xc3\xa9z", 4), 4);
	assert_int_equal(util_utf8_cut("ab\xc3\xa9z", 9), 5);
	assert_int_equal(util_utf8_cut("\xe2\x82\xac", 2), 0);
}

/* ---- failed commits and staged creation --------------------------------- */

static int64_t count_of(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(store_int_db(s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* SQLite's commit hook turns a COMMIT into a ROLLBACK when it returns
 * nonzero: a commit that fails as one on a full disk does. */
static int fail_commit;

static int commit_hook(void *arg)
{
	(void)arg;
	return fail_commit;
}

enum { FL = 2, FE = 4 };

static void make_steps(struct store_step *steps, uint32_t (*counts)[FL * FE], int n,
		       int64_t first)
{
	for (int i = 0; i < n; i++) {
		for (int c = 0; c < FL * FE; c++)
			counts[i][c] = (uint32_t)((first + i) * 10 + c);
		steps[i] = (struct store_step){ .step = first + i, .tokens = 1, .counts = counts[i] };
	}
}

static struct store_run small_run(const char *name)
{
	struct store_run run = { 0 };

	snprintf(run.name, sizeof(run.name), "%s", name);
	run.layers = FL;
	run.experts = FE;
	run.topk = 1;
	return run;
}

/* A failed commit ends its transaction: what it held is gone, and the next
 * one commits on its own.  (It used to leave the savepoint open, so every
 * later commit only released into it and all of it was lost at close.) */
static void test_store_failed_commit_unwinds(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run run = small_run("r");
	uint32_t counts[4][FL * FE];
	struct store_step steps[4];

	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	assert_int_equal(store_run_add(s, &run), 0);
	sqlite3_commit_hook(store_int_db(s), commit_hook, NULL);
	make_steps(steps, counts, 4, 0);
	assert_int_equal(store_steps_append(s, &run, steps, 4), 0);
	fail_commit = 1;
	make_steps(steps, counts, 4, 4);
	assert_int_not_equal(store_steps_append(s, &run, steps, 4), 0);
	fail_commit = 0;
	assert_true(sqlite3_get_autocommit(store_int_db(s))); /* no transaction left open */
	make_steps(steps, counts, 4, 8);
	assert_int_equal(store_steps_append(s, &run, steps, 4), 0);
	/* the same with an outer transaction around the append */
	assert_int_equal(store_begin(s), 0);
	make_steps(steps, counts, 4, 12);
	assert_int_equal(store_steps_append(s, &run, steps, 4), 0);
	fail_commit = 1;
	assert_int_not_equal(store_commit(s), 0);
	fail_commit = 0;
	assert_true(sqlite3_get_autocommit(store_int_db(s)));
	assert_int_equal(store_commit(s), UTIL_ESTATE); /* nothing left to commit */
	make_steps(steps, counts, 4, 16);
	assert_int_equal(store_steps_append(s, &run, steps, 4), 0);
	store_free(s);

	/* steps 0-3, 8-11 and 16-19 are in the file, no more */
	assert_int_equal(store_open(path, STORE_READONLY, &s, &err), 0);
	assert_int_equal(count_of(s, "SELECT count(*) FROM steps"), 12);
	assert_int_equal(count_of(s, "SELECT count(*) FROM steps WHERE step BETWEEN 4 AND 7 "
				     "OR step BETWEEN 12 AND 15"),
			 0);
	assert_int_equal(count_of(s, "SELECT count(*) FROM counts"), 12 * FL);
	store_free(s);
	cleanup(path);
	free(path);
}

/* Files whose name starts with path + ".new-" (staging leftovers). */
static int staged_left(const char *path)
{
	char pat[600];
	int n = 0;

	for (int i = 0; i < 4; i++) {
		static const char *const side[] = { "", "-wal", "-shm", "-journal" };
		snprintf(pat, sizeof(pat), "%s.new-%ld-0%s", path, (long)getpid(), side[i]);
		n += access(pat, F_OK) == 0;
	}
	return n;
}

static void add_run_with_steps(struct store *s, const char *name, int n, int64_t first)
{
	struct store_run run = small_run(name);
	uint32_t counts[8][FL * FE];
	struct store_step steps[8];

	assert_int_equal(store_run_add(s, &run), 0);
	make_steps(steps, counts, n, first);
	assert_int_equal(store_steps_append(s, &run, steps, (size_t)n), 0);
}

/* A new database is written under a private name and appears at its path
 * only when published; a handle freed unpublished removes it; a path
 * another process created meanwhile gets the runs added, and is never
 * removed or replaced. */
static void test_store_staged_create(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *s, *other;
	struct store_run run;
	uint64_t sum[FL * FE];
	int64_t n = 0;

	/* freed unpublished: nothing at the path, nothing left beside it */
	assert_int_equal(store_open(path, STORE_CREATE | STORE_STAGE, &s, &err), 0);
	add_run_with_steps(s, "gone", 3, 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_true(staged_left(path) > 0);
	store_free(s);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(staged_left(path), 0);

	/* published: the run is at the path */
	assert_int_equal(store_open(path, STORE_CREATE | STORE_STAGE, &s, &err), 0);
	add_run_with_steps(s, "a", 3, 0);
	assert_int_equal(store_publish(s, &err), 0);
	assert_int_equal(staged_left(path), 0);
	assert_int_equal(store_open_run(path, "a", STORE_READONLY, &s, &run, &err), 0);
	assert_int_equal(count_of(s, "SELECT count(*) FROM steps"), 3);
	store_free(s);

	/* the path exists: no staging, publish only frees */
	assert_int_equal(store_open(path, STORE_CREATE | STORE_STAGE, &s, &err), 0);
	assert_int_equal(staged_left(path), 0);
	add_run_with_steps(s, "b", 2, 0);
	assert_int_equal(store_publish(s, &err), 0);
	cleanup(path);

	/* another writer creates the path while a stage is open: both runs,
	 * whole, in the other's file */
	assert_int_equal(store_open(path, STORE_CREATE | STORE_STAGE, &s, &err), 0);
	add_run_with_steps(s, "mine", 5, 100);
	assert_int_equal(store_open(path, STORE_CREATE, &other, &err), 0);
	add_run_with_steps(other, "theirs", 4, 0);
	store_free(other);
	assert_int_equal(store_publish(s, &err), 0);
	assert_int_equal(staged_left(path), 0);
	assert_int_equal(store_open_run(path, "theirs", STORE_READONLY, &s, &run, &err), 0);
	assert_int_equal(store_window_sum(s, &run, INT64_MIN, INT64_MAX, 0, sum, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(store_run_get(s, "mine", &run), 0);
	assert_int_equal(store_window_sum(s, &run, INT64_MIN, INT64_MAX, 0, sum, &n), 0);
	assert_int_equal(n, 5);
	/* steps 100..104, counts (step * 10 + cell): cell 3 sums to 5055 */
	assert_int_equal(sum[3], 5 * 1020 + 5 * 3);
	assert_int_equal(count_of(s, "SELECT count(*) FROM counts"), (4 + 5) * FL);
	store_free(s);
	cleanup(path);

	/* ... and if it took the run's name, publishing fails and leaves
	 * the other's file as it was */
	assert_int_equal(store_open(path, STORE_CREATE | STORE_STAGE, &s, &err), 0);
	add_run_with_steps(s, "same", 5, 0);
	assert_int_equal(store_open(path, STORE_CREATE, &other, &err), 0);
	add_run_with_steps(other, "same", 2, 0);
	store_free(other);
	assert_int_equal(store_publish(s, &err), UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, "'same' already exists"));
	assert_int_equal(staged_left(path), 0);
	assert_int_equal(store_open(path, STORE_READONLY, &s, &err), 0);
	assert_int_equal(count_of(s, "SELECT count(*) FROM steps"), 2);
	store_free(s);
	cleanup(path);
	free(path);
}

/* ---- the front over a backend that has only the required operations ---- */

static struct store *wrapped; /* the SQLite store the "wrap" backend reads */

static void wrap_close(struct store *s)
{
	(void)s;
}
static int wrap_run_list(struct store *s, struct store_run **out, size_t *n)
{
	(void)s;
	return store_run_list(wrapped, out, n);
}
static int wrap_deployed_list(struct store *s, const struct store_run *run,
			      struct store_deployed_row **out, size_t *n)
{
	(void)s;
	return store_deployed_list(wrapped, run, out, n);
}
static const struct store_ops wrap_ops = {
	.name = "wrapped",
	.close = wrap_close,
	.run_list = wrap_run_list,
	.deployed_list = wrap_deployed_list,
};
static int wrap_open(const char *url, int flags, struct store **out, struct util_err *err)
{
	(void)flags;
	(void)err;
	*out = store_backend_new(&wrap_ops, NULL, url);
	return *out ? 0 : UTIL_ENOMEM;
}

/* What the front derives (a run by name or id, the placement in force, its
 * change steps) equals what the SQLite backend answers itself; writes to a
 * backend without them are refused; an unknown URL scheme is refused. */
static void test_store_backend_derived(void **state)
{
	(void)state;
	char *path = tmpdb();
	struct util_err err = UTIL_ERR_INIT;
	struct store *w;
	struct store_run a = { 0 }, b = { 0 }, got;
	enum { L = 2, E = 4, R = 2, S = 3, P = R * S };
	int32_t p2l[L * P], pa[L * P], pb[L * P];
	int64_t fa, fb, *va, *vb;
	size_t na, nb;

	assert_int_equal(store_open(path, STORE_CREATE, &wrapped, &err), 0);
	snprintf(a.name, sizeof(a.name), "first");
	snprintf(b.name, sizeof(b.name), "1"); /* a name that is another run's id */
	a.layers = b.layers = L;
	a.experts = b.experts = E;
	assert_int_equal(store_run_add(wrapped, &a), 0);
	assert_int_equal(store_run_add(wrapped, &b), 0);
	for (int v = 0; v < 3; v++) { /* placements from steps 0, 10, 20 */
		for (int i = 0; i < L * P; i++)
			p2l[i] = (i + v * (i / P + 1)) % E;
		assert_int_equal(store_deployed_set(wrapped, &a, (int64_t)10 * v, R, S, p2l), 0);
	}
	assert_int_equal(store_backend_register("wrap://", wrap_open), 0);
	assert_int_equal(store_open("wrap://x", STORE_READONLY, &w, &err), 0);
	assert_string_equal(store_path(w), "wrap://x");

	const char *names[] = { NULL, "", "first", "1", "2", "nope" };
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(names); i++) {
		struct store_run want;
		int rc = store_run_get(wrapped, names[i], &want);
		assert_int_equal(store_run_get(w, names[i], &got), rc);
		if (!rc) {
			assert_int_equal(got.id, want.id);
			assert_string_equal(got.name, want.name);
		}
	}
	for (int64_t step = -5; step <= 25; step++) {
		int rc = store_deployed_at(wrapped, &a, step, R, S, pa, &fa);
		assert_int_equal(store_deployed_at(w, &a, step, R, S, pb, &fb), rc);
		if (!rc) {
			assert_int_equal(fa, fb);
			assert_memory_equal(pa, pb, sizeof(pa));
		}
		rc = store_deployed_last(wrapped, &a, step, &fa);
		assert_int_equal(store_deployed_last(w, &a, step, &fb), rc);
		if (!rc)
			assert_int_equal(fa, fb);
		rc = store_deployed_next(wrapped, &a, step, &fa);
		assert_int_equal(store_deployed_next(w, &a, step, &fb), rc);
		if (!rc)
			assert_int_equal(fa, fb);
		assert_int_equal(store_deployed_changes(wrapped, &a, step, step + 12, &va, &na), 0);
		assert_int_equal(store_deployed_changes(w, &a, step, step + 12, &vb, &nb), 0);
		assert_int_equal(na, nb);
		if (na)
			assert_memory_equal(va, vb, na * sizeof(*va));
		free(va);
		free(vb);
	}
	/* another layout: the same refusal */
	assert_int_equal(store_deployed_at(w, &a, 5, 3, 2, pb, NULL), UTIL_ERANGE);
	assert_int_equal(store_deployed_next(w, &a, INT64_MAX, &fb), UTIL_ENOTFOUND);
	/* no writes, no stored replays, no tuning */
	assert_int_equal(store_run_add(w, &got), UTIL_EUSAGE);
	assert_non_null(strstr(store_errmsg(w), "cannot write to 'wrap://x'"));
	assert_int_equal(store_begin(w), UTIL_EUSAGE);
	assert_int_equal(store_deployed_set(w, &a, 30, R, S, p2l), UTIL_EUSAGE);
	struct store_replay *rp = NULL;
	size_t nr = 1;
	assert_int_equal(store_replay_list(w, -1, &rp, &nr), 0);
	assert_int_equal(nr, 0);
	assert_int_equal(store_replay_get(w, 1, rp), UTIL_ENOTFOUND);
	assert_int_equal(store_size_bytes(w), -1);
	assert_int_equal(store_locked(w), 0);
	assert_null(store_int_db(w));
	store_free(w);
	/* a scheme nobody registered: refused, the rest of the URL not shown */
	assert_int_equal(store_open("zz://user:secret@host/db", STORE_READONLY, &w, &err),
			 UTIL_EUSAGE);
	assert_null(w);
	assert_null(strstr(err.msg, "secret"));
	store_free(wrapped);
	wrapped = NULL;
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_schema_promised_is_replayed),
		cmocka_unit_test(test_store_codec_edges),
		cmocka_unit_test(test_store_codec_random),
		cmocka_unit_test(test_store_codec_size),
		cmocka_unit_test(test_store_codec_bytes),
		cmocka_unit_test(test_store_many_layers),
		cmocka_unit_test(test_store_codec_garbage),
		cmocka_unit_test(test_store_roundtrip),
		cmocka_unit_test(test_store_ranks_per_node),
		cmocka_unit_test(test_store_hostile_files),
		cmocka_unit_test(test_store_migration),
		cmocka_unit_test(test_store_migration_replay_settings),
		cmocka_unit_test(test_store_schema_damage),
		cmocka_unit_test(test_store_limits),
		cmocka_unit_test(test_store_failed_commit_unwinds),
		cmocka_unit_test(test_store_staged_create),
		cmocka_unit_test(test_store_backend_derived),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

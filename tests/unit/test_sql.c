/* test_sql.c: the SQL functions, table-valued functions and views of
 * store/sqlfn.c against sums and loads computed in C from the same heat. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze/analyze.h"
#include "store/store.h"
#include "store/store_int.h" /* the connection, to damage files on purpose */
#include "util/util.h"

/* Two runs: A (4 layers x 16 experts, 60 steps, 4 ranks x 5 slots, a
 * deployed placement from step 1030 on) and B (2 x 8, 20 steps, no layout
 * of its own but a model preset's).  Steps of A start at 1000. */
#define A_L	 4
#define A_E	 16
#define A_N	 60
#define A_R	 4
#define A_S	 5
#define A_FIRST	 1000
#define A_DEPLOY 1030
#define B_L	 2
#define B_E	 8
#define B_N	 20

struct fixture {
	char *path;
	struct store *s;
	sqlite3 *db;
	struct store_run a, b;
	uint32_t heat_a[A_N][A_L][A_E];
	uint32_t heat_b[B_N][B_L][B_E];
	int32_t deployed[A_L][A_R * A_S];
};

static char *tmpdb(void)
{
	char *p = strdup("/tmp/moetrace-sql-XXXXXX");
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

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct util_err err = UTIL_ERR_INIT;
	struct util_rng rng;
	struct store_step st[A_N];
	char *msg = NULL;

	f->path = tmpdb();
	assert_int_equal(store_open(f->path, STORE_CREATE, &f->s, &err), 0);
	util_rng_seed(&rng, 8);
	snprintf(f->a.name, sizeof(f->a.name), "a");
	f->a.layers = A_L;
	f->a.experts = A_E;
	f->a.ranks = A_R;
	f->a.slots = A_S;
	assert_int_equal(store_run_add(f->s, &f->a), 0);
	for (int n = 0; n < A_N; n++) {
		for (int l = 0; l < A_L; l++)
			for (int e = 0; e < A_E; e++) /* skewed, some zeros, a rare huge one */
				f->heat_a[n][l][e] =
					util_rng_below(&rng, 8) == 0 ? 0
					: e == 3 && n == 7
						? 3000000000u
						: util_rng_below(&rng, 40 + 30 * (uint32_t)(e % 5));
		memset(&st[n], 0, sizeof(st[n]));
		st[n].step = A_FIRST + n;
		st[n].phase = 1 + n % 2;
		st[n].counts = &f->heat_a[n][0][0];
	}
	assert_int_equal(store_steps_append(f->s, &f->a, st, A_N), 0);
	/* deployed: expert e on slot e, redundant slots hold 0..3 reversed */
	for (int l = 0; l < A_L; l++)
		for (int p = 0; p < A_R * A_S; p++)
			f->deployed[l][p] = p < A_E ? (p * 7 + l) % A_E : 3 - (p - A_E);
	assert_int_equal(store_deployed_set(f->s, &f->a, A_DEPLOY, A_R, A_S, &f->deployed[0][0]),
			 0);

	snprintf(f->b.name, sizeof(f->b.name), "b");
	snprintf(f->b.model, sizeof(f->b.model), "mixtral-8x7b"); /* 4 ranks x 3 slots */
	f->b.layers = B_L;
	f->b.experts = B_E;
	assert_int_equal(store_run_add(f->s, &f->b), 0);
	for (int n = 0; n < B_N; n++) {
		for (int l = 0; l < B_L; l++)
			for (int e = 0; e < B_E; e++)
				f->heat_b[n][l][e] = util_rng_below(&rng, 1000);
		memset(&st[n], 0, sizeof(st[n]));
		st[n].step = n;
		st[n].counts = &f->heat_b[n][0][0];
	}
	assert_int_equal(store_steps_append(f->s, &f->b, st, B_N), 0);
	f->db = store_int_db(f->s);
	assert_int_equal(store_sql_register(f->db, &msg), SQLITE_OK);
	assert_null(msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_free(f->s);
	cleanup(f->path);
	free(f->path);
	free(f);
	return 0;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(db));
	return st;
}

/* Runs sql (one row, one column) and returns column 0 as int64. */
static int64_t q_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = prep(db, sql);
	int64_t v;

	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("'%s': %s", sql, sqlite3_errmsg(db));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Runs sql to the end and returns the first error code (SQLITE_DONE if none). */
static int q_rc(sqlite3 *db, const char *sql, char *msg, size_t n)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK)
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
	if (msg)
		snprintf(msg, n, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? rc : rc & 0xff; /* primary code */
}

static void test_sql_expert_heat_cells(void **state)
{
	struct fixture *f = *state;
	sqlite3_stmt *st = prep(f->db, "SELECT run, step, layer, expert, tokens FROM expert_heat");
	int64_t rows = 0;

	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t run = sqlite3_column_int64(st, 0), step = sqlite3_column_int64(st, 1);
		int l = sqlite3_column_int(st, 2), e = sqlite3_column_int(st, 3);
		int64_t tok = sqlite3_column_int64(st, 4);
		if (run == f->a.id)
			assert_int_equal(tok, f->heat_a[step - A_FIRST][l][e]);
		else if (run == f->b.id)
			assert_int_equal(tok, f->heat_b[step][l][e]);
		else
			fail_msg("unexpected run %lld", (long long)run);
		rows++;
	}
	sqlite3_finalize(st);
	assert_int_equal(rows, A_N * A_L * A_E + B_N * B_L * B_E);
	/* 3e9 needs more than 31 bits: it comes back exact */
	assert_int_equal(q_int(f->db, "SELECT tokens FROM expert_heat WHERE run = 1 AND step = "
				      "1007 AND layer = 0 AND expert = 3"),
			 3000000000LL);
}

/* Filtered sums through expert_heat equal sums in C, and only the blobs of
 * the selected (run, step, layer) rows are read. */
static void test_sql_expert_heat_filters(void **state)
{
	struct fixture *f = *state;
	/* clang-format off */
	static const struct { int64_t lo, hi; int layer, elo, ehi; const char *where; } cases[] = {
		{ 1010, 1020, 2, 0, A_E - 1, "step BETWEEN 1010 AND 1020 AND layer = 2" },
		{ 1000, 1059, 0, 0, A_E - 1, "layer = 0" },
		{ 1005, 1005, -1, 0, A_E - 1, "step = 1005" },
		{ 1041, 1059, 1, 0, A_E - 1, "step > 1040 AND layer = 1" },
		{ 1000, 1003, 3, 4, 6, "step < 1004 AND layer = 3 AND expert BETWEEN 4 AND 6" },
		{ 1013, 1014, 1, 0, A_E - 1, "step > 1012.5 AND step <= 1014.9 AND layer = 1" },
		{ 1050, 1059, -1, 15, 15, "step >= 1050 AND expert = 15" },
		{ 1, 0, 0, 0, 0, "step > 5000" },
	};
	/* clang-format on */
	char sql[512];

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint64_t want = 0;
		int64_t cells = 0, blobs = 0;
		for (int64_t s = cases[k].lo; s <= cases[k].hi; s++)
			for (int l = 0; l < A_L; l++) {
				if (cases[k].layer >= 0 && l != cases[k].layer)
					continue;
				blobs++;
				for (int e = cases[k].elo; e <= cases[k].ehi; e++) {
					want += f->heat_a[s - A_FIRST][l][e];
					cells++;
				}
			}
		int64_t before = store_sql_blobs_read(f->db);
		snprintf(sql, sizeof(sql),
			 "SELECT count(*), total(tokens) FROM expert_heat WHERE run = 1 AND %s",
			 cases[k].where);
		sqlite3_stmt *st = prep(f->db, sql);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int64(st, 0), cells);
		assert_true(sqlite3_column_double(st, 1) == (double)want);
		sqlite3_finalize(st);
		if (store_sql_blobs_read(f->db) - before != blobs)
			fail_msg("%s: read %lld blobs, expected %lld", cases[k].where,
				 (long long)(store_sql_blobs_read(f->db) - before),
				 (long long)blobs);
	}
}

/* EXPLAIN QUERY PLAN shows the run, layer and step constraints reaching
 * expert_heat, also through a join with steps. */
static void test_sql_expert_heat_plan(void **state)
{
	struct fixture *f = *state;
	static const char *const queries[] = {
		"EXPLAIN QUERY PLAN SELECT layer, expert, sum(tokens) FROM expert_heat WHERE run = "
		"1 "
		"AND layer = 2 AND step BETWEEN 1010 AND 1020 GROUP BY 1, 2",
		"EXPLAIN QUERY PLAN SELECT h.expert, sum(h.tokens) FROM steps s JOIN expert_heat h "
		"ON h.run = s.run AND h.step = s.step WHERE s.run = 1 AND s.phase = 2 "
		"AND h.layer = 2 AND h.step BETWEEN 1010 AND 1020 GROUP BY 1",
	};
	for (size_t k = 0; k < 2; k++) {
		sqlite3_stmt *st = prep(f->db, queries[k]);
		int found = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(st, 3);
			if (strstr(d, "VIRTUAL TABLE INDEX")) {
				found = 1;
				assert_non_null(strstr(d, "run="));
				assert_non_null(strstr(d, "layer="));
				assert_true(strstr(d, "step>=") || strstr(d, "step="));
			}
		}
		sqlite3_finalize(st);
		assert_true(found);
	}
	/* the join reads only layer 2 of the decode steps in range */
	int64_t before = store_sql_blobs_read(f->db);
	int64_t got =
		q_int(f->db, "SELECT sum(h.tokens) FROM steps s JOIN expert_heat h "
			     "ON h.run = s.run AND h.step = s.step WHERE s.run = 1 "
			     "AND s.phase = 2 AND h.layer = 2 AND h.step BETWEEN 1010 AND 1020");
	int64_t want = 0, blobs = 0;
	for (int n = 10; n <= 20; n++)
		if (1 + n % 2 == 2) {
			blobs++;
			for (int e = 0; e < A_E; e++)
				want += f->heat_a[n][2][e];
		}
	assert_int_equal(got, want);
	assert_int_equal(store_sql_blobs_read(f->db) - before, blobs);
}

static void test_sql_layer_heat_and_window(void **state)
{
	struct fixture *f = *state;
	sqlite3_stmt *st = prep(f->db, "SELECT run, layer, expert, tokens FROM layer_heat");
	int rows = 0;

	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t run = sqlite3_column_int64(st, 0);
		int l = sqlite3_column_int(st, 1), e = sqlite3_column_int(st, 2);
		uint64_t want = 0;
		if (run == f->a.id)
			for (int n = 0; n < A_N; n++)
				want += f->heat_a[n][l][e];
		else
			for (int n = 0; n < B_N; n++)
				want += f->heat_b[n][l][e];
		assert_int_equal((uint64_t)sqlite3_column_int64(st, 3), want);
		rows++;
	}
	sqlite3_finalize(st);
	assert_int_equal(rows, A_L * A_E + B_L * B_E);

	/* heat_window with and without bounds, against C and store_window_sum */
	uint64_t *sum = calloc((size_t)A_L * A_E, sizeof(uint64_t));
	int64_t nsteps = 0;
	assert_int_equal(store_window_sum(f->s, &f->a, 1020, 1044, 0, sum, &nsteps), 0);
	st = prep(f->db,
		  "SELECT expert, tokens, steps, run, layer FROM heat_window(1, 3, 1020, 1044)");
	rows = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int e = sqlite3_column_int(st, 0);
		assert_int_equal(e, rows);
		assert_int_equal((uint64_t)sqlite3_column_int64(st, 1), sum[3 * A_E + e]);
		assert_int_equal(sqlite3_column_int64(st, 2), nsteps);
		assert_int_equal(sqlite3_column_int64(st, 3), 1);
		assert_int_equal(sqlite3_column_int64(st, 4), 3);
		rows++;
	}
	sqlite3_finalize(st);
	assert_int_equal(rows, A_E);
	free(sum);
	assert_int_equal(
		q_int(f->db, "SELECT sum(tokens) FROM heat_window(2, 1)"),
		q_int(f->db, "SELECT sum(tokens) FROM layer_heat WHERE run = 2 AND layer = 1"));
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM heat_window(1, 0, 5000, 6000)"), 0);
	/* layer_heat filtered by run and layer equals the expert_heat sum */
	assert_int_equal(q_int(f->db, "SELECT tokens FROM layer_heat WHERE run = 1 AND layer = 1 "
				      "AND expert = 9"),
			 q_int(f->db,
			       "SELECT sum(tokens) FROM expert_heat WHERE run = 1 AND layer = 1 "
			       "AND expert = 9"));
	char msg[256];
	assert_int_not_equal(q_rc(f->db, "SELECT * FROM heat_window(1)", msg, sizeof(msg)),
			     SQLITE_DONE);
	assert_non_null(strstr(msg, "run and layer"));
	assert_int_not_equal(q_rc(f->db, "SELECT * FROM heat_window(1, 'x')", msg, sizeof(msg)),
			     SQLITE_DONE);
	assert_non_null(strstr(msg, "integer"));
}

/* device_load and layer_imbalance equal analyze's loads under the placement
 * in force at each step: static p % E before A_DEPLOY, deployed after; for
 * run b the model preset's layout (4 ranks x 3 slots). */
static void test_sql_device_load(void **state)
{
	struct fixture *f = *state;
	int32_t stat_a[A_R * A_S], stat_b[4 * 3];
	double load[A_R];
	sqlite3_stmt *st;
	int rows = 0;

	analyze_static_phy2log(A_E, A_R, A_S, stat_a);
	analyze_static_phy2log(B_E, 4, 3, stat_b);
	st = prep(f->db,
		  "SELECT run, step, layer, rank, load FROM device_load ORDER BY 1, 2, 3, 4");
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t run = sqlite3_column_int64(st, 0), step = sqlite3_column_int64(st, 1);
		int l = sqlite3_column_int(st, 2), r = sqlite3_column_int(st, 3);
		if (run == f->a.id) {
			const int32_t *p2l = step >= A_DEPLOY ? f->deployed[l] : stat_a;
			analyze_device_load_u32(f->heat_a[step - A_FIRST][l], A_E, p2l, A_R, A_S,
						NULL, load);
		} else {
			analyze_device_load_u32(f->heat_b[step][l], B_E, stat_b, 4, 3, NULL, load);
		}
		assert_true(fabs(sqlite3_column_double(st, 4) - load[r]) <= 1e-9 * (1 + load[r]));
		rows++;
	}
	sqlite3_finalize(st);
	assert_int_equal(rows, A_N * A_L * A_R + B_N * B_L * 4);

	rows = 0;
	st = prep(f->db, "SELECT run, step, layer, imbalance FROM layer_imbalance");
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t run = sqlite3_column_int64(st, 0), step = sqlite3_column_int64(st, 1);
		int l = sqlite3_column_int(st, 2), R = A_R; /* run b: mixtral's 4 ranks too */
		if (run == f->a.id)
			analyze_device_load_u32(f->heat_a[step - A_FIRST][l], A_E,
						step >= A_DEPLOY ? f->deployed[l] : stat_a, A_R,
						A_S, NULL, load);
		else
			analyze_device_load_u32(f->heat_b[step][l], B_E, stat_b, 4, 3, NULL, load);
		double want = analyze_imbalance(load, R);
		assert_true(fabs(sqlite3_column_double(st, 3) - want) <= 1e-12 * want);
		rows++;
	}
	sqlite3_finalize(st);
	assert_int_equal(rows, A_N * A_L + B_N * B_L);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM counts_placement WHERE run = 1 AND "
				      "placement = 'deployed'"),
			 (A_N - (A_DEPLOY - A_FIRST)) * A_L);
	/* deployed_slots expands the placement rows */
	assert_int_equal(q_int(f->db,
			       "SELECT expert FROM deployed_slots WHERE run = 1 AND layer = 2 "
			       "AND slot = 9"),
			 f->deployed[2][9]);
	assert_int_equal(q_int(f->db, "SELECT rank FROM deployed_slots WHERE slot = 9 LIMIT 1"),
			 9 / A_S);
}

static void test_sql_scalars(void **state)
{
	struct fixture *f = *state;
	char msg[256];

	/* JSON and sums of a blob, and back through counts_encode */
	assert_int_equal(q_int(f->db, "SELECT counts_json(data) = "
				      "counts_json(counts_encode(counts_json(data))) "
				      "FROM counts WHERE run = 1 AND step = 1007 AND layer = 0"),
			 1);
	int64_t sum = 0;
	for (int e = 0; e < A_E; e++)
		sum += f->heat_a[7][0][e];
	assert_int_equal(q_int(f->db, "SELECT counts_sum(data) FROM counts WHERE run = 1 AND "
				      "step = 1007 AND layer = 0"),
			 sum);
	assert_int_equal(q_int(f->db, "SELECT counts_argmax(data) FROM counts WHERE run = 1 AND "
				      "step = 1007 AND layer = 0"),
			 3);
	assert_int_equal(q_int(f->db, "SELECT counts_at(counts_encode('[5, 6, 7]'), 2)"), 7);
	assert_int_equal(q_int(f->db, "SELECT counts_at(counts_encode('[5, 6, 7]'), 3) IS NULL"),
			 1);
	assert_int_equal(q_int(f->db, "SELECT counts_n(counts_encode('[]'))"), 0);
	assert_int_equal(q_int(f->db, "SELECT counts_json(counts_encode(' [ 0 , 4294967295 ] ')) = "
				      "'[0,4294967295]'"),
			 1);
	/* imbalance: [1,2,3,4] on 2 ranks {0,1},{2,3} = 7 / 5; nested, flat + ranks and
	 * blob forms agree; a replicated expert splits its tokens */
	const char *same[] = {
		"SELECT counts_imbalance(counts_encode('[1,2,3,4]'), '[[0,1],[2,3]]') = 7.0 / 5",
		"SELECT counts_imbalance(counts_encode('[1,2,3,4]'), '[0,1,2,3]', 2) = 7.0 / 5",
		"SELECT counts_imbalance(counts_encode('[1,2,3,4]'), static_phy2log(4, 2, 2), 2) = "
		"1.4",
		"SELECT device_loads(counts_encode('[1,2,3,4]'), '[[0,3],[1,2]]') = '[5,5]'",
		"SELECT abs(json_extract(l, '$[0]') - 13.0 / 3) < 1e-12 AND "
		"abs(json_extract(l, '$[1]') - 17.0 / 3) < 1e-12 FROM (SELECT "
		"device_loads(counts_encode('[1,2,3,4]'), '[[0,1,3],[2,3,3]]') AS l)",
		/* no token: no work, no imbalance (NULL), loads all the same */
		"SELECT counts_imbalance(counts_encode('[0,0]'), '[[0],[1]]') IS NULL",
		"SELECT counts_imbalance(counts_encode('[0,0,0]'), static_phy2log(3, 2, 2), 2) "
		"IS NULL",
		"SELECT device_loads(counts_encode('[0,0]'), '[[0],[1]]') = '[0,0]'",
		"SELECT counts_imbalance(counts_encode('[0,1]'), '[[0],[1]]') = 2.0",
		"SELECT phy2log_json(static_phy2log(3, 2, 2)) = '[0,1,2,0]'",
		"SELECT moetrace_model('deepseek-v3', 'experts') = 256",
		"SELECT moetrace_model('no-such-model', 'experts') IS NULL",
	};
	for (size_t k = 0; k < sizeof(same) / sizeof(same[0]); k++)
		if (q_int(f->db, same[k]) != 1)
			fail_msg("not true: %s", same[k]);
	/* bad placements and arguments are errors naming the function */
	const char *bad[] = {
		"SELECT counts_imbalance(counts_encode('[1,2]'), '[[0,1],[2]]')",
		"SELECT counts_imbalance(counts_encode('[1,2]'), '[0,1,2]', 1)",
		"SELECT counts_imbalance(counts_encode('[1,2]'), '[0,1,1]', 2)",
		"SELECT counts_imbalance(counts_encode('[1,2]'), '[0,1]')",
		"SELECT counts_imbalance(counts_encode('[1,2]'), '[0,1]', 0)",
		"SELECT counts_imbalance(counts_encode('[1,2]'), '[0,1]', 'x')",
		"SELECT counts_imbalance(counts_encode('[1,2]'), '[[0,1]]', 2)",
		"SELECT counts_imbalance(counts_encode('[1,2]'), x'000000', 1)",
		"SELECT counts_imbalance(counts_encode('[1,2]'), 'nonsense', 1)",
		"SELECT counts_imbalance(counts_encode('[1,2]'), 42, 1)",
		"SELECT counts_imbalance(counts_encode('[1,2]'), '[0,1.5]', 1)",
		"SELECT counts_encode('[1,-2]')",
		"SELECT counts_encode('[1,4294967296]')",
		"SELECT counts_encode('[1,,2]')",
		"SELECT counts_encode('[1,2,]')",
		"SELECT counts_encode('[[1],[2]]')",
		"SELECT counts_json('text')",
		"SELECT counts_json(NULL)",
		"SELECT static_phy2log(10, 2, 3)",
		"SELECT moetrace_model('deepseek-v3', 'colour')",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		if (q_rc(f->db, bad[k], msg, sizeof(msg)) != SQLITE_ERROR)
			fail_msg("no error: %s", bad[k]);
		if (!strchr(msg, ':'))
			fail_msg("%s: message '%s' names no function", bad[k], msg);
	}
}

/* Malformed blobs in the counts table are SQL errors naming the row, never
 * a crash; random blobs through every function either decode or fail. */
static void test_sql_malformed_blobs(void **state)
{
	struct fixture *f = *state;
	struct util_rng rng;
	char msg[256];
	sqlite3_stmt *ins;

	assert_int_equal(q_rc(f->db,
			      "INSERT INTO counts (run, step, layer, data) "
			      "VALUES (9, 1, 0, x'01100203ff')",
			      NULL, 0),
			 SQLITE_DONE);
	assert_int_equal(q_rc(f->db, "SELECT * FROM expert_heat WHERE run = 9", msg, sizeof(msg)),
			 SQLITE_CORRUPT);
	assert_non_null(strstr(msg, "malformed counts blob at run 9 step 1 layer 0"));
	assert_int_not_equal(q_rc(f->db, "SELECT * FROM heat_window(9, 0)", msg, sizeof(msg)),
			     SQLITE_DONE);
	assert_non_null(strstr(msg, "malformed"));
	assert_int_equal(q_rc(f->db, "SELECT * FROM layer_heat WHERE run = 9", msg, sizeof(msg)),
			 SQLITE_ERROR);
	assert_non_null(strstr(msg, "counts_total: malformed"));
	/* the other runs still read fine */
	assert_int_equal(q_rc(f->db, "SELECT * FROM expert_heat WHERE run = 2", NULL, 0),
			 SQLITE_DONE);
	/* blobs of different widths do not add up */
	assert_int_equal(q_rc(f->db,
			      "SELECT counts_total(data) FROM (SELECT counts_encode('[1]') "
			      "AS data UNION ALL SELECT counts_encode('[1,2]'))",
			      msg, sizeof(msg)),
			 SQLITE_ERROR);
	assert_int_equal(q_rc(f->db, "DELETE FROM counts WHERE run = 9", NULL, 0), SQLITE_DONE);

	ins = prep(f->db,
		   "INSERT OR REPLACE INTO counts (run, step, layer, data) VALUES (9, 1, 0, ?1)");
	util_rng_seed(&rng, 11);
	for (int iter = 0; iter < 1500; iter++) {
		uint8_t buf[40];
		size_t len = 1 + util_rng_below(&rng, sizeof(buf));
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)util_rng_next(&rng);
		buf[0] &= 1;
		if (len > 1)
			buf[1] = (uint8_t)util_rng_below(&rng, 20);
		sqlite3_bind_blob(ins, 1, buf, (int)len, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
		static const char *const readers[] = {
			"SELECT * FROM expert_heat WHERE run = 9",
			"SELECT * FROM heat_window(9, 0)",
			"SELECT counts_json(data), counts_sum(data), counts_max(data) FROM counts "
			"WHERE run = 9",
			"SELECT counts_imbalance(data, '[0]', 1) FROM counts WHERE run = 9",
			"SELECT device_loads(data, static_phy2log(counts_n(data), 2, "
			"counts_n(data))) "
			"FROM counts WHERE run = 9",
			"SELECT counts_total(data) FROM counts WHERE run = 9",
		};
		for (size_t k = 0; k < sizeof(readers) / sizeof(readers[0]); k++) {
			int rc = q_rc(f->db, readers[k], NULL, 0);
			assert_true(rc == SQLITE_DONE || rc == SQLITE_ERROR ||
				    rc == SQLITE_CORRUPT);
		}
	}
	sqlite3_finalize(ins);
	assert_int_equal(q_rc(f->db, "DELETE FROM counts WHERE run = 9", NULL, 0), SQLITE_DONE);
}

/* A blob that decodes but does not fit its run (a count other than the
 * run's experts, a layer past its layers), and a run row with an
 * impossible shape, are errors naming run, step and layer in expert_heat
 * and heat_window; the other runs still read. */
static void test_sql_expert_heat_shape(void **state)
{
	struct fixture *f = *state;
	/* clang-format off */
	static const struct { const char *insert, *query, *msg, *other, *undo; } cases[] = {
		{ "INSERT INTO counts VALUES (1, 5000, 0, counts_encode('[1,2,3]'))",
		  "SELECT * FROM expert_heat WHERE run = 1",
		  "expert_heat: counts of run 1 step 5000 layer 0: 3 values, the run has 16 experts",
		  "SELECT * FROM expert_heat WHERE run = 2", "DELETE FROM counts WHERE step = 5000" },
		{ "INSERT INTO counts VALUES (1, 5000, 0, counts_encode('[1,2,3]'))",
		  "SELECT sum(tokens) FROM heat_window(1, 0)",
		  "heat_window: counts of run 1 step 5000 layer 0: 3 values, the run has 16 experts",
		  "SELECT * FROM heat_window(2, 0)", "DELETE FROM counts WHERE step = 5000" },
		{ "INSERT INTO counts SELECT 1, 5000, 4, data FROM counts WHERE run = 1 AND layer = 0 "
		  "AND step = 1000",
		  "SELECT count(*) FROM expert_heat WHERE step > 1010",
		  "expert_heat: counts of run 1 step 5000 layer 4: the run has 4 layers",
		  "SELECT * FROM expert_heat WHERE step <= 1010", "DELETE FROM counts WHERE step = 5000" },
		{ "INSERT INTO counts SELECT 1, 5000, -1, data FROM counts WHERE run = 1 AND layer = 0 "
		  "AND step = 1000",
		  "SELECT * FROM heat_window(1, -1)",
		  "heat_window: counts of run 1 step 5000 layer -1: the run has 4 layers",
		  "SELECT * FROM heat_window(1, 0)", "DELETE FROM counts WHERE step = 5000" },
		{ "UPDATE runs SET layers = 2000 WHERE run = 2",
		  "SELECT count(*) FROM expert_heat WHERE run = 2 AND layer = 0",
		  "expert_heat: run 2 has an impossible shape (2000 layers x 8 experts",
		  "SELECT * FROM expert_heat WHERE run = 1", "UPDATE runs SET layers = 2 WHERE run = 2" },
		{ "UPDATE runs SET ranks = 1048576, slots = 2 WHERE run = 1",
		  "SELECT * FROM heat_window(1, 0, 1000, 1000)",
		  "heat_window: run 1 has an impossible shape", "SELECT * FROM heat_window(2, 1)",
		  "UPDATE runs SET ranks = 4, slots = 5 WHERE run = 1" },
	};
	/* clang-format on */
	char msg[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(q_rc(f->db, cases[i].insert, msg, sizeof(msg)), SQLITE_DONE);
		if (q_rc(f->db, cases[i].query, msg, sizeof(msg)) != SQLITE_CORRUPT ||
		    !strstr(msg, cases[i].msg))
			fail_msg("%s: '%s', expected '%s'", cases[i].query, msg, cases[i].msg);
		/* the rest of the trace still reads */
		if (q_rc(f->db, cases[i].other, msg, sizeof(msg)) != SQLITE_DONE)
			fail_msg("%s after %s: %s", cases[i].other, cases[i].insert, msg);
		assert_int_equal(q_rc(f->db, cases[i].undo, NULL, 0), SQLITE_DONE);
		assert_int_equal(q_rc(f->db, "SELECT * FROM expert_heat", msg, sizeof(msg)),
				 SQLITE_DONE);
	}
}

/* replay_imbalance reads the replay tables written by the store API. */
static void test_sql_replay_views(void **state)
{
	struct fixture *f = *state;
	struct store_replay r;
	struct store_replay_event ev;
	double mx[2] = { 30, 10 }, mean[2] = { 20, 0 }, base[2] = { 45, 5 };
	char sql[256];

	memset(&r, 0, sizeof(r));
	r.run = f->a.id;
	snprintf(r.algo, sizeof(r.algo), "eplb");
	r.ranks = A_R;
	r.slots = A_S;
	r.interval = r.window = 10;
	r.max_moves = -1;
	snprintf(r.params, sizeof(r.params), "{}");
	assert_int_equal(store_replay_add(f->s, &r), 0);
	assert_int_equal(store_replay_step_add(f->s, r.id, 1010, 2, mx, mean, base), 0);
	memset(&ev, 0, sizeof(ev));
	ev.event = 0;
	ev.step = 1009;
	ev.effective_step = 1010;
	ev.layers = 1;
	ev.moves = 3;
	ev.bytes = 3 << 20;
	assert_int_equal(store_replay_event_add(f->s, r.id, &ev, 0, NULL, NULL, NULL, NULL), 0);
	snprintf(sql, sizeof(sql),
		 "SELECT imbalance = 1.5 AND baseline = 2.25 AND algo = 'eplb' AND run = 1 "
		 "FROM replay_imbalance WHERE replay = %lld AND step = 1010 AND layer = 0",
		 (long long)r.id);
	assert_int_equal(q_int(f->db, sql), 1);
	/* no tokens: not scored (NULL), so avg() over the step is layer 0's */
	snprintf(sql, sizeof(sql),
		 "SELECT imbalance IS NULL AND baseline IS NULL FROM replay_imbalance "
		 "WHERE replay = %lld AND layer = 1",
		 (long long)r.id);
	assert_int_equal(q_int(f->db, sql), 1);
	snprintf(sql, sizeof(sql),
		 "SELECT avg(imbalance) = 1.5 AND avg(baseline) = 2.25 AND count(*) = 2 "
		 "FROM replay_imbalance WHERE replay = %lld",
		 (long long)r.id);
	assert_int_equal(q_int(f->db, sql), 1);
	assert_int_equal(q_int(f->db, "SELECT sum(bytes) FROM replay_events"), 3 << 20);
}

/* A layer without tokens in a step (and a step without any token) did no
 * work there: layer_imbalance says NULL for it, and an avg() over a step
 * range is balance's step-mean over the scored steps (analyze_balance_run,
 * which `moetrace balance` prints).  Its own trace: 3 layers x 6 experts,
 * 3 ranks x 2 slots (static layout); layer 1 never gets a token, layer 0
 * none in steps 2 and 5, no layer any in step 4. */
#define N_L 3
#define N_E 6
#define N_N 8
static void test_sql_no_token_null(void **state)
{
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run;
	struct store_step st[N_N];
	struct analyze_balance b;
	static uint32_t heat[N_N][N_L][N_E];
	int32_t p2l[N_L][3 * 2];
	char *path = tmpdb(), *msg = NULL, sql[256];
	struct util_rng rng;
	struct store *s;
	sqlite3 *db;
	sqlite3_stmt *q;
	int rows = 0, nulls = 0;

	(void)state;
	assert_int_equal(store_open(path, STORE_CREATE, &s, &err), 0);
	memset(&run, 0, sizeof(run));
	snprintf(run.name, sizeof(run.name), "gaps");
	run.layers = N_L;
	run.experts = N_E;
	run.ranks = 3;
	run.slots = 2;
	assert_int_equal(store_run_add(s, &run), 0);
	util_rng_seed(&rng, 21);
	for (int n = 0; n < N_N; n++) {
		for (int l = 0; l < N_L; l++)
			for (int e = 0; e < N_E; e++)
				heat[n][l][e] = l == 1 || n == 4 || (l == 0 && (n == 2 || n == 5))
							? 0
							: 1 + util_rng_below(&rng, 50);
		memset(&st[n], 0, sizeof(st[n]));
		st[n].step = 100 + n;
		st[n].counts = &heat[n][0][0];
	}
	assert_int_equal(store_steps_append(s, &run, st, N_N), 0);
	db = store_int_db(s);
	assert_int_equal(store_sql_register(db, &msg), SQLITE_OK);

	/* row by row: NULL exactly where the layer got no token, else the
	 * imbalance of its loads */
	q = prep(db, "SELECT step, layer, imbalance FROM layer_imbalance ORDER BY step, layer");
	while (sqlite3_step(q) == SQLITE_ROW) {
		int n = sqlite3_column_int(q, 0) - 100, l = sqlite3_column_int(q, 1);
		uint64_t tot = 0;
		double load[3];
		for (int e = 0; e < N_E; e++)
			tot += heat[n][l][e];
		if (tot == 0) {
			assert_int_equal(sqlite3_column_type(q, 2), SQLITE_NULL);
			nulls++;
		} else {
			analyze_static_phy2log(N_E, 3, 2, p2l[0]);
			analyze_device_load_u32(heat[n][l], N_E, p2l[0], 3, 2, NULL, load);
			double want = analyze_imbalance(load, 3);
			assert_int_equal(sqlite3_column_type(q, 2), SQLITE_FLOAT);
			assert_true(fabs(sqlite3_column_double(q, 2) - want) <= 1e-12 * want);
		}
		rows++;
	}
	sqlite3_finalize(q);
	assert_int_equal(rows, N_N * N_L);
	assert_int_equal(nulls, N_N + 2 + 2); /* layer 1, layer 0 in 2 and 5, step 4 */

	/* avg() over a step range leaves the NULLs out: balance's step-mean */
	for (int l = 0; l < N_L; l++)
		analyze_static_phy2log(N_E, 3, 2, p2l[l]);
	static const int64_t range[][2] = { { 100, 107 }, { 101, 105 }, { 104, 104 } };
	for (size_t k = 0; k < sizeof(range) / sizeof(range[0]); k++) {
		assert_int_equal(analyze_balance_run(s, &run, range[k][0], range[k][1], 0,
						     &p2l[0][0], 3, 2, &b),
				 0);
		for (int l = 0; l < N_L; l++) {
			snprintf(sql, sizeof(sql),
				 "SELECT avg(imbalance), count(imbalance) FROM layer_imbalance "
				 "WHERE run = %lld AND layer = %d AND step BETWEEN %lld AND %lld",
				 (long long)run.id, l, (long long)range[k][0],
				 (long long)range[k][1]);
			q = prep(db, sql);
			assert_int_equal(sqlite3_step(q), SQLITE_ROW);
			double mean = b.layer[l].step_mean;
			assert_int_equal(sqlite3_column_int64(q, 1), b.layer[l].steps);
			if (isnan(mean)) { /* nothing scored: no mean either */
				assert_int_equal(sqlite3_column_type(q, 0), SQLITE_NULL);
			} else {
				double got = sqlite3_column_double(q, 0);
				if (!(fabs(got - mean) <= 1e-12 * mean))
					fail_msg("steps %lld-%lld layer %d: avg %.17g, balance %.17g",
						 (long long)range[k][0], (long long)range[k][1], l,
						 got, mean);
			}
			sqlite3_finalize(q);
		}
		analyze_balance_release(&b);
	}
	store_free(s);
	cleanup(path);
	free(path);
}

/* Every --examples query runs on a trace. */
static void test_sql_examples_run(void **state)
{
	struct fixture *f = *state;
	const struct store_sql_example *e;
	size_t n = 0;
	char msg[256];

	for (size_t i = 0; (e = store_sql_example_at(i)); i++, n++) {
		int rc = q_rc(f->db, e->sql, msg, sizeof(msg));
		if (rc != SQLITE_DONE)
			fail_msg("example '%s': %s", e->title, msg);
	}
	assert_true(n >= 5);
}

/* A read-only store stays read-only with the functions registered, and
 * SQL cannot load extensions. */
static void test_sql_readonly_defensive(void **state)
{
	struct fixture *f = *state;
	struct util_err err = UTIL_ERR_INIT;
	struct store *ro;
	char *m = NULL, msg[256];
	sqlite3 *db;

	assert_int_equal(store_open(f->path, STORE_READONLY, &ro, &err), 0);
	db = store_int_db(ro);
	assert_int_equal(store_sql_register(db, &m), SQLITE_OK);
	assert_int_equal(q_rc(db, "DELETE FROM counts", msg, sizeof(msg)) & 0xff, SQLITE_READONLY);
	assert_int_equal(q_rc(db, "SELECT load_extension('/nonexistent/x')", msg, sizeof(msg)),
			 SQLITE_ERROR);
	assert_non_null(strstr(msg, "not authorized"));
	/* registering twice is harmless */
	assert_int_equal(store_sql_register(db, &m), SQLITE_OK);
	assert_int_equal(q_int(db, "SELECT count(*) FROM layer_imbalance WHERE run = 2"),
			 B_N * B_L);
	store_free(ro);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sql_expert_heat_cells),
		cmocka_unit_test(test_sql_expert_heat_filters),
		cmocka_unit_test(test_sql_expert_heat_plan),
		cmocka_unit_test(test_sql_layer_heat_and_window),
		cmocka_unit_test(test_sql_device_load),
		cmocka_unit_test(test_sql_scalars),
		cmocka_unit_test(test_sql_malformed_blobs),
		cmocka_unit_test(test_sql_expert_heat_shape),
		cmocka_unit_test(test_sql_replay_views),
		cmocka_unit_test(test_sql_no_token_null),
		cmocka_unit_test(test_sql_examples_run),
		cmocka_unit_test(test_sql_readonly_defensive),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

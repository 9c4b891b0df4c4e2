/* test_recorder.c: the embedding API of collector/moetrace.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "collector/collector.h"
#include "collector/moetrace.h"
#include "store/store.h"
#include "store/store_int.h" /* the connection, to damage files on purpose */
#include "util/util.h"

#define L 3
#define E 8

static char dbpath[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dbpath, sizeof(dbpath), "/tmp/moetrace-test-recorder-%ld.db", (long)getpid());
	unlink(dbpath);
	return 0;
}

static int teardown(void **state)
{
	char p[300];

	(void)state;
	unlink(dbpath);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	return 0;
}

static struct moetrace_run_desc desc_small(const char *name)
{
	struct moetrace_run_desc d = { name, "tiny", L, E, 2, 2, 5, 2, 1, "test" };
	return d;
}

static void fill(uint32_t *c, int64_t step)
{
	for (int i = 0; i < L * E; i++)
		c[i] = (uint32_t)(step * 31 + (int64_t)i * 7) % 50;
}

static int64_t sql_int(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(store_int_db(s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static struct store *open_ro(struct store_run *run, const char *name)
{
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;

	if (store_open(dbpath, STORE_READONLY, &s, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(store_run_get(s, name, run), 0);
	return s;
}

static void test_recorder_bad_shapes(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("shapes");
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	uint32_t c[L * E] = { 0 };
	int32_t ids[4] = { 0, 1, 2, 3 };

	/* open refuses a bad shape, leaves a closed handle with a message */
	d.experts = 0;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), MOETRACE_ERANGE);
	assert_non_null(r);
	assert_non_null(strstr(moetrace_errmsg(r), "out of range"));
	assert_int_equal(moetrace_recorder_step(r, 0, c, 0, 0), MOETRACE_ESTATE);
	moetrace_recorder_free(r);
	assert_int_not_equal(access(dbpath, F_OK), 0); /* nothing written */

	d = desc_small("shapes");
	d.slots = 1; /* 2 x 1 slots cannot hold 8 experts */
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), MOETRACE_ERANGE);
	moetrace_recorder_free(r);
	d = desc_small("shapes");
	d.ranks_per_node = 3; /* nodes of 3 cannot split 2 ranks */
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), MOETRACE_ERANGE);
	assert_non_null(strstr(moetrace_errmsg(r), "ranks per node 3 does not divide 2 ranks"));
	moetrace_recorder_free(r);
	assert_int_not_equal(access(dbpath, F_OK), 0);
	d = desc_small("shapes");
	o.batch_steps = 10;
	o.ring_steps = 4;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), MOETRACE_EUSAGE);
	moetrace_recorder_free(r);
	assert_int_equal(moetrace_recorder_open(dbpath, NULL, NULL, &r), MOETRACE_EUSAGE);
	moetrace_recorder_free(r);

	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), 0);
	assert_int_equal(moetrace_recorder_step_n(r, 0, c, L * E - 1, 0, 0), MOETRACE_EUSAGE);
	assert_non_null(strstr(moetrace_errmsg(r), "23 counts given"));
	assert_int_equal(moetrace_recorder_step(r, 0, NULL, 0, 0), MOETRACE_EUSAGE);
	assert_int_equal(moetrace_recorder_step(r, 0, c, 7, 0), MOETRACE_ERANGE);
	assert_int_equal(moetrace_recorder_step_topk(r, 0, L, ids, 2, 2), MOETRACE_ERANGE);
	assert_int_equal(moetrace_recorder_step_topk(r, 0, -1, ids, 2, 2), MOETRACE_ERANGE);
	assert_int_equal(moetrace_recorder_step_topk(r, 0, 0, ids, 2, 0), MOETRACE_EUSAGE);
	ids[3] = E; /* out of range id: refused, and the step keeps nothing of it */
	assert_int_equal(moetrace_recorder_step_topk(r, 0, 0, ids, 2, 2), MOETRACE_ERANGE);
	assert_non_null(strstr(moetrace_errmsg(r), "token 1 routes to expert 8"));
	ids[3] = 3;
	/* the store's limits, refused at the call rather than by the writer */
	assert_int_equal(moetrace_recorder_step(r, STORE_STEP_MAX + 1, c, 0, 0), MOETRACE_ERANGE);
	assert_non_null(strstr(moetrace_errmsg(r), "the last a trace holds"));
	assert_int_equal(moetrace_recorder_step(r, INT64_MAX, c, 0, 0), MOETRACE_ERANGE);
	assert_int_equal(moetrace_recorder_step(r, 0, c, 0, STORE_TOKENS_MAX + 1), MOETRACE_ERANGE);
	assert_int_equal(moetrace_recorder_step_n(r, 0, c, (size_t)L * E, 0, 0), 0);
	assert_int_equal(moetrace_recorder_close(r), 0);
	moetrace_recorder_free(r);

	struct store_run run;
	struct store *s = open_ro(&run, "shapes");
	assert_int_equal(sql_int(s, "SELECT count(*) FROM steps"), 1);
	store_free(s);
}

static void test_recorder_backwards_steps(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("back");
	uint32_t c[L * E];
	int32_t ids[2] = { 1, 2 };

	fill(c, 0);
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), 0);
	assert_int_equal(moetrace_recorder_step(r, 5, c, 2, 4), 0);
	assert_int_equal(moetrace_recorder_step(r, 5, c, 2, 4), MOETRACE_ESTATE);
	assert_non_null(strstr(moetrace_errmsg(r), "steps must increase"));
	assert_int_equal(moetrace_recorder_step(r, 4, c, 2, 4), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_step_topk(r, 3, 0, ids, 1, 2), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_step_topk(r, 6, 0, ids, 1, 2), 0);
	assert_int_equal(moetrace_recorder_step_topk(r, 6, 1, ids, 1, 2), 0);
	/* a counts step with the number of the top-k step in progress */
	assert_int_equal(moetrace_recorder_step(r, 6, c, 2, 4), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_step(r, 7, c, 2, 4), 0);
	assert_int_equal(moetrace_recorder_step_end(r, 6, 2, 1), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_close(r), 0);
	moetrace_recorder_free(r);

	/* appending continues after the recorded steps and refuses older ones */
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), MOETRACE_EUSAGE);
	assert_non_null(strstr(moetrace_errmsg(r), "already exists"));
	moetrace_recorder_free(r);
	o.append = 1;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	assert_int_equal(moetrace_recorder_step(r, 7, c, 2, 4), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_step(r, 8, c, 2, 4), 0);
	moetrace_recorder_free(r); /* free closes */
	d.experts = E + 1;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), MOETRACE_EUSAGE);
	moetrace_recorder_free(r);
	/* nor another top-k, model or first layer than the run's, where the
	 * description gives one (0 and "" leave the run's) */
	d = desc_small("back");
	d.topk = 3;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), MOETRACE_EUSAGE);
	assert_non_null(strstr(moetrace_errmsg(r), "it is model 'tiny', top-2, first MoE layer 1"));
	moetrace_recorder_free(r);
	d = desc_small("back");
	d.model = "other";
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), MOETRACE_EUSAGE);
	moetrace_recorder_free(r);
	d = desc_small("back");
	d.first_layer = 3;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), MOETRACE_EUSAGE);
	moetrace_recorder_free(r);
	d = desc_small("back");
	d.topk = 0;
	d.model = NULL;
	d.first_layer = 0;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	moetrace_recorder_free(r);

	struct store_run run;
	struct store *s = open_ro(&run, "back");
	assert_int_equal(sql_int(s, "SELECT count(*) FROM steps"), 4);
	assert_int_equal(sql_int(s, "SELECT sum(step) FROM steps"), 5 + 6 + 7 + 8);
	store_free(s);
}

static void test_recorder_topk_histogram(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("topk");
	/* 3 tokens x top-2; -1 is padding */
	int32_t l0[6] = { 0, 1, 1, 7, -1, 0 };
	int32_t l2[4] = { 5, 5, 5, 6 };
	uint32_t want[L * E] = { 0 };
	struct store_step st;
	struct store_iter *it;

	want[0 * E + 0] = 2;
	want[0 * E + 1] = 2;
	want[0 * E + 7] = 1;
	want[2 * E + 5] = 3;
	want[2 * E + 6] = 1;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), 0);
	assert_int_equal(moetrace_recorder_step_topk(r, 10, 0, l0, 3, 2), 0);
	assert_int_equal(moetrace_recorder_step_topk(r, 10, 2, l2, 2, 2), 0);
	assert_int_equal(moetrace_recorder_step_end(r, 10, MOETRACE_PHASE_DECODE, 0), 0);
	/* a second step ended implicitly by flush */
	assert_int_equal(moetrace_recorder_step_topk(r, 11, 2, l2, 2, 2), 0);
	/* a layer called once per microbatch: its calls' tokens add up (2 + 2
	 * of layer 2 against layer 0's 3), as its counts do */
	assert_int_equal(moetrace_recorder_step_topk(r, 12, 0, l0, 3, 2), 0);
	assert_int_equal(moetrace_recorder_step_topk(r, 12, 2, l2, 2, 2), 0);
	assert_int_equal(moetrace_recorder_step_topk(r, 12, 2, l2, 2, 2), 0);
	assert_int_equal(moetrace_recorder_step_end(r, 12, MOETRACE_PHASE_PREFILL, 0), 0);
	assert_int_equal(moetrace_recorder_flush(r), 0);
	assert_int_equal(moetrace_recorder_close(r), 0);
	moetrace_recorder_free(r);

	struct store_run run;
	struct store *s = open_ro(&run, "topk");
	assert_int_equal(store_iter_new(s, &run, INT64_MIN, INT64_MAX, 0, &it), 0);
	assert_int_equal(store_iter_next(it, &st), 1);
	assert_int_equal(st.step, 10);
	assert_int_equal(st.phase, STORE_PHASE_DECODE);
	assert_int_equal(st.tokens, 3); /* the most tokens of the step's layers */
	assert_memory_equal(st.counts, want, sizeof(want));
	assert_int_equal(store_iter_next(it, &st), 1);
	assert_int_equal(st.step, 11);
	assert_int_equal(st.phase, STORE_PHASE_UNKNOWN);
	assert_int_equal(st.counts[2 * E + 5], 3);
	assert_int_equal(st.counts[0], 0);
	assert_int_equal(store_iter_next(it, &st), 1);
	assert_int_equal(st.step, 12);
	assert_int_equal(st.counts[2 * E + 5], 6);
	assert_int_equal(st.tokens, 4);
	assert_int_equal(store_iter_next(it, &st), 0);
	store_iter_free(it);
	store_free(s);
}

/* A second connection holding the write lock stalls the writer, so the
 * ring fills and stays full: with the drop policy exactly `ring` steps get
 * in and the rest are counted as dropped. */
static void test_recorder_drops_counted(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("drops");
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	struct moetrace_recorder_stats st;
	struct util_err err = UTIL_ERR_INIT;
	struct store *lock = NULL;
	uint32_t c[L * E];
	int full = 0;

	o.ring_steps = 4;
	o.batch_steps = 4;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	if (store_open(dbpath, 0, &lock, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(sqlite3_exec(store_int_db(lock), "BEGIN IMMEDIATE", NULL, NULL, NULL),
			 SQLITE_OK);
	for (int64_t i = 0; i < 50; i++) {
		fill(c, i);
		int rc = moetrace_recorder_step(r, i, c, 2, 1);
		assert_true(rc == 0 || rc == MOETRACE_EFULL);
		full += rc == MOETRACE_EFULL;
	}
	assert_int_equal(moetrace_recorder_stats(r, &st), 0);
	assert_int_equal(st.dropped, 46);
	assert_int_equal(full, 46);
	assert_int_equal(st.high_water, 4);
	assert_int_equal(st.last_step, 49);
	assert_int_equal(sqlite3_exec(store_int_db(lock), "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	store_free(lock);
	assert_int_equal(moetrace_recorder_close(r), 0);
	assert_int_equal(moetrace_recorder_stats(r, &st), 0);
	assert_int_equal(st.recorded, 4);
	assert_int_equal(st.dropped, 46);
	assert_int_equal(st.queued, 0);
	moetrace_recorder_free(r);

	struct store_run run;
	struct store *s = open_ro(&run, "drops");
	assert_int_equal(sql_int(s, "SELECT count(*) FROM steps"), 4);
	assert_int_equal(sql_int(s, "SELECT max(step) FROM steps"), 3);
	store_free(s);
}

/* Under the blocking policy a ring of 2 steps loses nothing, and what is
 * stored is what was given. */
static void test_recorder_block_loses_nothing(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("block");
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	struct moetrace_recorder_stats st;
	uint32_t c[L * E];
	uint64_t sum[L * E] = { 0 }, got[L * E];
	int64_t n = 0;
	const int steps = 400;

	o.ring_steps = 2;
	o.batch_steps = 1;
	o.policy = MOETRACE_BLOCK;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	for (int64_t i = 0; i < steps; i++) {
		fill(c, i);
		for (int k = 0; k < L * E; k++)
			sum[k] += c[k];
		assert_int_equal(moetrace_recorder_step(r, 2 * i, c, 1 + (int)(i % 2), i), 0);
	}
	assert_int_equal(moetrace_recorder_flush(r), 0);
	assert_int_equal(moetrace_recorder_stats(r, &st), 0);
	assert_int_equal(st.recorded, steps);
	assert_int_equal(st.dropped, 0);
	assert_true(st.high_water <= 2);
	assert_true(st.bytes > 0);
	assert_int_equal(moetrace_recorder_close(r), 0);
	moetrace_recorder_free(r);

	struct store_run run;
	struct store *s = open_ro(&run, "block");
	assert_int_equal(store_window_sum(s, &run, INT64_MIN, INT64_MAX, 0, got, &n), 0);
	assert_int_equal(n, steps);
	assert_memory_equal(got, sum, sizeof(sum));
	assert_int_equal(sql_int(s, "SELECT count(*) FROM steps WHERE phase = 2"), steps / 2);
	assert_int_equal(sql_int(s, "SELECT sum(tokens) FROM steps"),
			 (int64_t)steps * (steps - 1) / 2);
	store_free(s);
}

static void test_recorder_placement(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("place");
	struct moetrace_recorder_stats st;
	int32_t p[L * 10], back[L * 10];
	int64_t from = -1;
	uint32_t c[L * E] = { 0 };

	/* 2 ranks x 5 slots: experts 0..7 then replicas of 0 and 3 */
	for (int l = 0; l < L; l++)
		for (int i = 0; i < 10; i++)
			p[l * 10 + i] = i < E ? (i + l) % E : (i == 8 ? 0 : 3);
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), 0);
	assert_int_equal(moetrace_recorder_step(r, 0, c, 0, 0), 0);
	assert_int_equal(moetrace_recorder_placement(r, 100, p), 0);
	p[5] = E; /* out of range */
	assert_int_equal(moetrace_recorder_placement(r, 200, p), MOETRACE_ERANGE);
	p[5] = 0; /* expert (5 + 0) % 8 = 5 now has no replica in layer 0 */
	assert_int_equal(moetrace_recorder_placement(r, 200, p), MOETRACE_ERANGE);
	assert_non_null(strstr(moetrace_errmsg(r), "no replica of 1 expert"));
	p[5] = 5;
	assert_int_equal(moetrace_recorder_flush(r), 0);
	assert_int_equal(moetrace_recorder_stats(r, &st), 0);
	assert_int_equal(st.placements, 1);
	assert_int_equal(moetrace_recorder_close(r), 0);
	moetrace_recorder_free(r);

	struct store_run run;
	struct store *s = open_ro(&run, "place");
	assert_int_equal(store_deployed_at(s, &run, 150, 2, 5, back, &from), 0);
	assert_int_equal(from, 100);
	assert_memory_equal(back, p, sizeof(p));
	assert_int_equal(store_deployed_at(s, &run, 50, 2, 5, back, &from), UTIL_ENOTFOUND);
	store_free(s);

	/* a run without EP layout cannot take a placement */
	d = desc_small("nolayout");
	d.ranks = d.slots = 0;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), 0);
	assert_int_equal(moetrace_recorder_placement(r, 0, p), MOETRACE_EUSAGE);
	moetrace_recorder_free(r);
}

static void test_recorder_use_after_close(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("closed");
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	struct moetrace_recorder_stats st;
	uint32_t c[L * E] = { 0 };
	int32_t p[L * 10] = { 0 }, ids[2] = { 0, 1 };

	o.ring_steps = 8;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	assert_int_equal(moetrace_recorder_stats(r, &st), 0);
	assert_int_equal(st.mem_bound, moetrace_recorder_mem_bound(&d, &o));
	assert_true(st.mem_bound >= (int64_t)(8 * L * E * 4));
	assert_int_equal(st.ring_steps, 8);
	assert_int_equal(st.last_step, -1);
	assert_int_equal(moetrace_recorder_step(r, 1, c, 0, 0), 0);
	assert_int_equal(moetrace_recorder_close(r), 0);
	assert_int_equal(moetrace_recorder_close(r), MOETRACE_ESTATE);
	assert_non_null(strstr(moetrace_errmsg(r), "is closed"));
	assert_int_equal(moetrace_recorder_step(r, 2, c, 0, 0), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_step_n(r, 2, c, 3, 0, 0), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_step_topk(r, 2, 0, ids, 1, 2), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_step_end(r, 2, 0, 0), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_placement(r, 2, p), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_flush(r), MOETRACE_ESTATE);
	assert_int_equal(moetrace_recorder_stats(r, &st), 0);
	assert_int_equal(st.recorded, 1);
	moetrace_recorder_free(r);
	moetrace_recorder_free(NULL);
	assert_int_equal(moetrace_recorder_step(NULL, 2, c, 0, 0), MOETRACE_EUSAGE);
	assert_int_equal(moetrace_recorder_mem_bound(NULL, NULL), MOETRACE_EUSAGE);
}

/* Slot counts are credited to the expert the placement puts in each slot;
 * a shard recorder takes its own rank's slots only. */
static void test_recorder_slot_counts(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("slots");
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	int32_t p[L * 10];
	uint32_t all[L * 10], mine[L * 5], want[L * E] = { 0 }, want1[L * E] = { 0 };
	struct store_step st;
	struct store_iter *it;

	/* 2 ranks x 5 slots: experts 0..7, then replicas of 0 and 1 */
	for (int l = 0; l < L; l++)
		for (int i = 0; i < 10; i++) {
			p[l * 10 + i] = i < E ? i : i - E;
			all[l * 10 + i] = (uint32_t)(100 * l + i + 1);
			want[l * E + p[l * 10 + i]] += all[l * 10 + i];
			if (i >= 5) { /* rank 1's slots */
				mine[l * 5 + i - 5] = all[l * 10 + i];
				want1[l * E + p[l * 10 + i]] += all[l * 10 + i];
			}
		}
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), 0);
	assert_int_equal(moetrace_recorder_step_slots(r, 0, all, 10, 2, 7), MOETRACE_ESTATE);
	assert_non_null(strstr(moetrace_errmsg(r), "need a placement first"));
	assert_int_equal(moetrace_recorder_placement(r, 0, p), 0);
	assert_int_equal(moetrace_recorder_step_slots(r, 0, all, 9, 2, 7), MOETRACE_EUSAGE);
	assert_int_equal(moetrace_recorder_step_slots(r, 0, all, 10, 2, 7), 0);
	moetrace_recorder_free(r);

	d = desc_small("shard");
	o.shard = 1;
	o.shard_rank = 2; /* no such rank */
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), MOETRACE_EUSAGE);
	moetrace_recorder_free(r);
	o.shard_rank = 1;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	assert_int_equal(moetrace_recorder_placement(r, 0, p), 0);
	assert_int_equal(moetrace_recorder_step_slots(r, 0, mine, 10, 2, 7), MOETRACE_EUSAGE);
	assert_int_equal(moetrace_recorder_step_slots(r, 0, mine, 5, 2, 7), 0);
	moetrace_recorder_free(r);

	struct store_run run;
	struct store *s = open_ro(&run, "slots");
	assert_int_equal(store_iter_new(s, &run, INT64_MIN, INT64_MAX, 0, &it), 0);
	assert_int_equal(store_iter_next(it, &st), 1);
	assert_memory_equal(st.counts, want, sizeof(want));
	store_iter_free(it);
	store_free(s);
	s = open_ro(&run, "shard");
	assert_non_null(strstr(run.source, "shard rank=1"));
	assert_int_equal(store_iter_new(s, &run, INT64_MIN, INT64_MAX, 0, &it), 0);
	assert_int_equal(store_iter_next(it, &st), 1);
	assert_memory_equal(st.counts, want1, sizeof(want1));
	store_iter_free(it);
	store_free(s);
}

/* A reader polling while the recorder writes sees whole steps only: in any
 * one read transaction every step has all its layers. */
struct reader_arg {
	int stop;
	int reads, bad;
	int64_t last_seen;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		if (!s && store_open(dbpath, STORE_READONLY, &s, &err)) {
			s = NULL;
			continue;
		}
		sqlite3_exec(store_int_db(s), "BEGIN", NULL, NULL, NULL);
		int64_t steps = sql_int(s, "SELECT count(*) FROM steps");
		int64_t cells = sql_int(s, "SELECT count(*) FROM counts");
		int64_t last = sql_int(s, "SELECT coalesce(max(step), -1) FROM steps");
		sqlite3_exec(store_int_db(s), "COMMIT", NULL, NULL, NULL);
		if (cells != steps * L || last < a->last_seen)
			a->bad++;
		__atomic_store_n(&a->last_seen, last, __ATOMIC_RELEASE);
		__atomic_store_n(&a->reads, a->reads + 1, __ATOMIC_RELEASE);
	}
	store_free(s);
	return NULL;
}

static void test_recorder_concurrent_reader(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("live");
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	struct reader_arg a = { 0, 0, 0, -1 };
	pthread_t th;
	uint32_t c[L * E];

	o.batch_steps = 3;
	o.flush_ms = 1;
	o.policy = MOETRACE_BLOCK;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	assert_int_equal(pthread_create(&th, NULL, reader_main, &a), 0);
	for (int64_t i = 0; i < 600; i++) {
		fill(c, i);
		assert_int_equal(moetrace_recorder_step(r, i, c, 2, 1), 0);
		if (i % 50 == 0)
			usleep(2000);
	}
	assert_int_equal(moetrace_recorder_close(r), 0);
	/* until the reader has read a few times and seen the last step: on a
	 * loaded machine its thread may not have run yet (at most 60 s) */
	for (int ms = 0; ms < 60000; ms++) {
		if (__atomic_load_n(&a.reads, __ATOMIC_ACQUIRE) > 5 &&
		    __atomic_load_n(&a.last_seen, __ATOMIC_ACQUIRE) == 599)
			break;
		usleep(1000);
	}
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	moetrace_recorder_free(r);
	assert_true(a.reads > 5);
	assert_int_equal(a.bad, 0);
	assert_int_equal(a.last_seen, 599);
}

/* A batch whose commit fails (here an I/O error: writes past the file size
 * limit fail, as they do on a full disk) is lost and counted as failed;
 * the batches after it commit on their own.  Every step handed in is
 * recorded, dropped or failed, and recorded is exactly what the file
 * holds.  (The recorder used to stay inside the failed transaction: the
 * later batches counted as recorded and were discarded at close.) */
static void test_recorder_failed_commit_counted(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("io");
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	struct moetrace_recorder_stats st;
	struct rlimit old, low;
	void (*xfsz)(int);
	uint32_t c[L * E];
	int64_t i = 0;

	o.batch_steps = 4;
	o.policy = MOETRACE_BLOCK;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	for (; i < 10; i++) {
		fill(c, i);
		assert_int_equal(moetrace_recorder_step(r, i, c, 2, 1), 0);
	}
	assert_int_equal(moetrace_recorder_flush(r), 0);
	/* no write may reach past 4 KiB of any file: every commit fails */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	low = old;
	low.rlim_cur = 4096;
	xfsz = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
	for (; i < 18; i++) {
		fill(c, i);
		assert_int_equal(moetrace_recorder_step(r, i, c, 2, 1), 0);
	}
	int rc = moetrace_recorder_flush(r);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, xfsz);
	assert_true(rc == MOETRACE_EDB || rc == MOETRACE_EIO);
	assert_non_null(strstr(moetrace_errmsg(r), "cannot commit steps 1"));
	assert_int_equal(moetrace_recorder_stats(r, &st), 0);
	assert_int_equal(st.recorded, 10);
	assert_int_equal(st.failed, 8);
	assert_int_not_equal(st.last_error, 0);
	/* room again: the next steps are recorded */
	for (; i < 30; i++) {
		fill(c, i);
		assert_int_equal(moetrace_recorder_step(r, i, c, 2, 1), 0);
	}
	assert_int_equal(moetrace_recorder_close(r), 0);
	assert_int_equal(moetrace_recorder_stats(r, &st), 0);
	moetrace_recorder_free(r);
	assert_int_equal(st.recorded, 22);
	assert_int_equal(st.failed, 8);
	assert_int_equal(st.recorded + st.dropped + st.failed, 30);

	struct store_run run;
	struct store *s = open_ro(&run, "io");
	assert_int_equal(sql_int(s, "SELECT count(*) FROM steps"), st.recorded);
	assert_int_equal(sql_int(s, "SELECT count(*) FROM steps WHERE step BETWEEN 10 AND 17"), 0);
	assert_int_equal(sql_int(s, "SELECT count(*) FROM counts"), st.recorded * L);
	store_free(s);
}

/* What an observer is told: every committed step once, after its commit,
 * in order; closed once by close(); released once by free(). */
struct seen {
	int64_t steps, last, order_broken;
	int closed, released;
	struct moetrace_recorder *r;
};

static void seen_committed(void *ctx, int64_t last_step, int64_t n)
{
	struct seen *w = ctx;
	struct moetrace_recorder_stats st;

	if (last_step <= w->last)
		w->order_broken++;
	w->last = last_step;
	w->steps += n;
	moetrace_recorder_stats(w->r, &st);
	if (st.recorded < w->steps) /* told before the counters say so */
		w->order_broken++;
}

static void seen_closed(void *ctx)
{
	((struct seen *)ctx)->closed++;
}

static void seen_release(void *ctx)
{
	((struct seen *)ctx)->released++;
}

static void test_recorder_observers(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("obs");
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	struct seen w = { 0, -1, 0, 0, 0, NULL };
	struct collector_observer ob = { "mine", seen_committed, seen_closed, seen_release, &w, 0 };
	struct collector_observer other = { "other", NULL, NULL, NULL, NULL, 0 };
	uint32_t c[L * E];

	o.batch_steps = 7;
	o.policy = MOETRACE_BLOCK;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, &o, &r), 0);
	w.r = r;
	assert_int_equal(collector_recorder_observe(r, &ob), 0);
	assert_ptr_equal(collector_recorder_observer(r, "mine"), &w);
	assert_null(collector_recorder_observer(r, "none"));
	assert_int_equal(collector_recorder_observe(r, &ob), MOETRACE_ESTATE);
	for (int i = 0; i < 3; i++) {
		other.name = i == 0 ? "o0" : i == 1 ? "o1" : "o2";
		assert_int_equal(collector_recorder_observe(r, &other), 0);
	}
	other.name = "o3";
	assert_int_equal(collector_recorder_observe(r, &other), MOETRACE_EFULL);
	assert_string_equal(collector_recorder_path(r), dbpath);
	for (int64_t i = 0; i < 100; i++) {
		fill(c, i);
		assert_int_equal(moetrace_recorder_step(r, 3 * i, c, 0, 0), 0);
	}
	assert_int_equal(moetrace_recorder_close(r), 0);
	assert_int_equal(w.steps, 100);
	assert_int_equal(w.last, 297);
	assert_int_equal(w.order_broken, 0);
	assert_int_equal(w.closed, 1);
	assert_int_equal(w.released, 0);
	assert_null(collector_recorder_path(r));
	moetrace_recorder_free(r);
	assert_int_equal(w.released, 1);
	assert_int_equal(w.closed, 1);
}

/* The order observers are released in: an observer that reads the others'
 * state (the /metrics endpoint reads the sink's counters from its HTTP
 * thread) goes before them, whatever the order they were added in. */
static int released_order[4], nreleased;

static void order_release(void *ctx)
{
	released_order[nreleased++] = *(int *)ctx;
}

static void test_recorder_observers_release_order(void **state)
{
	(void)state;
	struct moetrace_recorder *r = NULL;
	struct moetrace_run_desc d = desc_small("order");
	int id[3] = { 0, 1, 2 };
	struct collector_observer sink = { .name = "sink", .release = order_release, .ctx = &id[0] };
	struct collector_observer ep = { .name = "metrics", .release = order_release,
					 .ctx = &id[1], .reads_others = 1 };
	struct collector_observer last = { .name = "last", .release = order_release, .ctx = &id[2] };

	nreleased = 0;
	assert_int_equal(moetrace_recorder_open(dbpath, &d, NULL, &r), 0);
	assert_int_equal(collector_recorder_observe(r, &sink), 0);
	assert_int_equal(collector_recorder_observe(r, &ep), 0);
	assert_int_equal(collector_recorder_observe(r, &last), 0);
	moetrace_recorder_free(r);
	assert_int_equal(nreleased, 3);
	assert_int_equal(released_order[0], 1); /* the reader first */
	assert_int_equal(released_order[1], 0); /* then the others as added */
	assert_int_equal(released_order[2], 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recorder_bad_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_observers_release_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_backwards_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_topk_histogram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_drops_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_block_loses_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_placement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_use_after_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_slot_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_concurrent_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_failed_commit_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorder_observers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * merge.h (private to collector/): merging per-rank shards into one trace,
 * behind `moetrace merge`.  A shard is a run recorded by one EP rank (the
 * recorder's shard mode tags its source "shard rank=R"): per step, the
 * tokens its own slots processed, credited to the logical experts the
 * deployed placement puts in them.  Merging adds the shards step by step.
 *
 * Ownership: paths are only read; the result is plain values.
 */
#ifndef COLLECTOR_MERGE_H
#define COLLECTOR_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

struct collector_merge_opts {
	const char *run;      /* run to take from each shard (NULL = newest) */
	const char *out_run;  /* name of the merged run (NULL = shard run name + "-merged") */
	int sum;              /* shards are partial counts of disjoint tokens, not rank shards */
	int partial;          /* allow ranks without a shard */
};

struct collector_merge_result {
	int64_t steps;        /* steps written */
	int64_t incomplete;   /* steps skipped because some shard lacks them */
	int64_t placements;   /* placement versions copied */
	int ranks_missing;    /* ranks without a shard (with partial) */
	struct store_run run; /* the merged run */
};

/* Merges n shard databases into a new run of out (created if missing),
 * all or nothing: on error out is as it was (or not created) and err
 * names the shard, step and layer at fault. */
int collector_merge(const char *out, const char *const *shards, size_t n,
		    const struct collector_merge_opts *o, struct collector_merge_result *res,
		    struct util_err *err);

/* The rank a run was recorded for ("shard rank=R" in its source), or -1. */
int collector_shard_rank(const struct store_run *run);

#endif

/*
 * merge.c: per-rank shards into one global trace.  Start at
 * collector_merge(): it opens every shard read-only, checks that no file
 * is given twice, that they describe the same deployment (shape, model,
 * top-k, EP layout, first layer, placement history) and, for rank shards,
 * that no two claim the same rank; then walk_steps() goes through the
 * shards' steps in lockstep and adds each step, and the sums are written
 * as a new run in one transaction.  A step some shard lacks stops the
 * merge (its tokens would be lost, or the step left out, without a word)
 * unless the caller asked for the common steps alone.
 *
 * A rank shard credits each of its slots' tokens to the logical expert in
 * that slot, so its counts may be non-zero only for experts the placement
 * puts on its rank; merge checks this for every cell, which catches a
 * shard recorded under the wrong rank or the wrong placement.
 */
#include "collector/collector.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MERGE_BATCH 64

struct shard {
	const char *path;
	struct store *s;
	struct store_run run;
	int rank;
	struct store_iter *it;
	struct store_step cur;
	int have;
	int routed; /* the current step has a token in some cell */
	unsigned char *own; /* per placement version: L x E, expert on this rank? */
};

struct plan {
	size_t nv;          /* placement versions */
	int64_t *from;      /* their first steps */
	int32_t *phy2log;   /* nv x L x P */
};

int collector_shard_rank(const struct store_run *run)
{
	static const char key[] = "shard rank=";
	const char *p = strstr(run->source, key);
	char *end;
	long r;

	if (!p)
		return -1;
	p += sizeof(key) - 1;
	errno = 0;
	r = strtol(p, &end, 10);
	if (end == p || errno == ERANGE || r < 0 || r > INT_MAX)
		return -1;
	return (int)r;
}

static int versions(struct shard *sh, struct plan *pl, struct util_err *err)
{
	size_t L = (size_t)sh->run.layers, P = (size_t)sh->run.ranks * (size_t)sh->run.slots;
	int rc;

	memset(pl, 0, sizeof(*pl));
	if (P == 0)
		return 0;
	if ((rc = store_deployed_changes(sh->s, &sh->run, STORE_STEP_MIN, STORE_STEP_MAX, &pl->from,
					 &pl->nv)))
		return util_err_set(err, rc, "'%s': %s", sh->path, store_errmsg(sh->s));
	if (pl->nv && !(pl->phy2log = malloc(pl->nv * L * P * sizeof(int32_t))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	for (size_t v = 0; v < pl->nv; v++) {
		if ((rc = store_deployed_at(sh->s, &sh->run, pl->from[v], sh->run.ranks,
					    sh->run.slots, pl->phy2log + v * L * P, NULL)))
			return util_err_set(err, rc, "'%s': %s", sh->path, store_errmsg(sh->s));
	}
	return 0;
}

static void plan_release(struct plan *pl)
{
	free(pl->from);
	free(pl->phy2log);
	memset(pl, 0, sizeof(*pl));
}

/* Index of the placement version in force at step, or -1. */
static long version_at(const struct plan *pl, int64_t step)
{
	long v = -1;

	for (size_t i = 0; i < pl->nv && pl->from[i] <= step; i++)
		v = (long)i;
	return v;
}

static int same_shape(const struct shard *a, const struct shard *b, struct util_err *err)
{
	if (a->run.layers == b->run.layers && a->run.experts == b->run.experts &&
	    a->run.ranks == b->run.ranks && a->run.slots == b->run.slots)
		return 0;
	return util_err_set(err, UTIL_EUSAGE,
			    "shards disagree on shape: '%s' run '%s' is %d layers x %d experts on "
			    "%d x %d slots, '%s' run '%s' is %d x %d on %d x %d",
			    b->path, b->run.name, b->run.layers, b->run.experts, b->run.ranks,
			    b->run.slots, a->path, a->run.name, a->run.layers, a->run.experts,
			    a->run.ranks, a->run.slots);
}

/* The merged run takes what is not summed from the first shard: each
 * other shard must say the same, or its value would be dropped unseen. */
static int same_run(const struct shard *a, const struct shard *b, struct util_err *err)
{
	const struct {
		const char *what;
		int x, y;
	} f[] = {
		{ "top-k", a->run.topk, b->run.topk },
		{ "ranks per node", a->run.ranks_per_node, b->run.ranks_per_node },
		{ "first layer", a->run.first_layer, b->run.first_layer },
	};
	int rc;

	if ((rc = same_shape(a, b, err)))
		return rc;
	if (strcmp(a->run.model, b->run.model))
		return util_err_set(err, UTIL_EUSAGE,
				    "shards disagree on the model: '%s' run '%s' is '%s', '%s' run "
				    "'%s' is '%s'",
				    b->path, b->run.name, b->run.model, a->path, a->run.name,
				    a->run.model);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(f); i++)
		if (f[i].x != f[i].y)
			return util_err_set(err, UTIL_EUSAGE,
					    "shards disagree on the %s: '%s' run '%s' has %d, '%s' "
					    "run '%s' has %d",
					    f[i].what, b->path, b->run.name, f[i].y, a->path,
					    a->run.name, f[i].x);
	return 0;
}

static int open_shards(struct shard *sh, size_t n, const struct collector_merge_opts *o,
		       struct util_err *err)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		if ((rc = store_open_run(sh[i].path, o->run, STORE_READONLY, &sh[i].s, &sh[i].run,
					 err)))
			return rc;
		sh[i].rank = collector_shard_rank(&sh[i].run);
		if (i > 0 && (rc = same_run(&sh[0], &sh[i], err)))
			return rc;
		if (o->sum)
			continue;
		if (sh[i].rank < 0)
			return util_err_set(err, UTIL_EUSAGE,
					    "'%s' run '%s' is not a rank shard (no \"shard rank=R\" in "
					    "its source); use --sum to add partial counts",
					    sh[i].path, sh[i].run.name);
		if (sh[i].rank >= sh[i].run.ranks)
			return util_err_set(err, UTIL_ERANGE,
					    "'%s' run '%s' claims rank %d of %d ranks", sh[i].path,
					    sh[i].run.name, sh[i].rank, sh[i].run.ranks);
		for (size_t j = 0; j < i; j++)
			if (sh[j].rank == sh[i].rank)
				return util_err_set(err, UTIL_EUSAGE,
						    "shards overlap: '%s' and '%s' both record rank %d",
						    sh[j].path, sh[i].path, sh[i].rank);
	}
	return 0;
}

/* Every shard must have seen the same placements; rank shards need one. */
static int check_plans(struct shard *sh, size_t n, struct plan *pl,
		       const struct collector_merge_opts *o, struct util_err *err)
{
	size_t L = (size_t)sh[0].run.layers, E = (size_t)sh[0].run.experts;
	size_t S = (size_t)sh[0].run.slots, P = (size_t)sh[0].run.ranks * S;
	int rc;

	if ((rc = versions(&sh[0], pl, err)))
		return rc;
	for (size_t i = 1; i < n; i++) {
		struct plan other;
		if ((rc = versions(&sh[i], &other, err)))
			return rc;
		int same = other.nv == pl->nv &&
			   (pl->nv == 0 ||
			    (!memcmp(other.from, pl->from, pl->nv * sizeof(int64_t)) &&
			     !memcmp(other.phy2log, pl->phy2log, pl->nv * L * P * sizeof(int32_t))));
		plan_release(&other);
		if (!same)
			return util_err_set(err, UTIL_EUSAGE,
					    "shards disagree on the deployed placement: '%s' and '%s' "
					    "recorded different placements or change steps",
					    sh[0].path, sh[i].path);
	}
	if (o->sum)
		return 0;
	if (pl->nv == 0)
		return util_err_set(err, UTIL_EUSAGE,
				    "'%s' run '%s' has no deployed placement: rank shards cannot be "
				    "merged without one",
				    sh[0].path, sh[0].run.name);
	for (size_t i = 0; i < n; i++) {
		sh[i].own = calloc(pl->nv * L * E, 1);
		if (!sh[i].own)
			return util_err_set(err, UTIL_ENOMEM, "out of memory");
		for (size_t v = 0; v < pl->nv; v++)
			for (size_t l = 0; l < L; l++) {
				const int32_t *m = pl->phy2log + (v * L + l) * P +
						   (size_t)sh[i].rank * S;
				for (size_t j = 0; j < S; j++)
					sh[i].own[(v * L + l) * E + (size_t)m[j]] = 1;
			}
	}
	return 0;
}

/* Adds shard i's current step into sum, checking rank ownership. */
static int add_shard(struct shard *sh, const struct plan *pl, int rank_check, uint32_t *sum,
		     struct util_err *err)
{
	size_t L = (size_t)sh->run.layers, E = (size_t)sh->run.experts;
	const uint32_t *c = sh->cur.counts;
	long v = rank_check ? version_at(pl, sh->cur.step) : -1;

	sh->routed = 0;
	if (rank_check && v < 0)
		return util_err_set(err, UTIL_EUSAGE,
				    "'%s' step %lld precedes the first deployed placement (step %lld)",
				    sh->path, (long long)sh->cur.step, (long long)pl->from[0]);
	for (size_t l = 0; l < L; l++)
		for (size_t e = 0; e < E; e++) {
			uint32_t x = c[l * E + e];
			if (!x)
				continue;
			sh->routed = 1;
			if (rank_check && !sh->own[((size_t)v * L + l) * E + e])
				return util_err_set(err, UTIL_EUSAGE,
						    "'%s' step %lld layer %zu: expert %zu has %u tokens "
						    "but the placement puts it on no slot of rank %d",
						    sh->path, (long long)sh->cur.step, l, e, x, sh->rank);
			if (sum[l * E + e] > UINT32_MAX - x)
				return util_err_set(err, UTIL_ERANGE,
						    "step %lld layer %zu expert %zu: the sum overflows",
						    (long long)sh->cur.step, l, e);
			sum[l * E + e] += x;
		}
	return 0;
}

static int advance(struct shard *sh, struct util_err *err)
{
	int rc = store_iter_next(sh->it, &sh->cur);

	if (rc < 0)
		return util_err_set(err, rc, "'%s': %s", sh->path, store_errmsg(sh->s));
	sh->have = rc == 1;
	return 0;
}

static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Without --sum every rank needs a shard, unless --partial: 0, else
 * UTIL_EUSAGE naming the first missing rank (res->ranks_missing counted). */
static int check_ranks(const struct shard *sh, size_t n, const struct collector_merge_opts *o,
		       struct collector_merge_result *res, struct util_err *err)
{
	int first = -1;

	for (int r = 0; r < sh[0].run.ranks; r++) {
		size_t i = 0;
		while (i < n && sh[i].rank != r)
			i++;
		if (i == n && res->ranks_missing++ == 0)
			first = r;
	}
	if (res->ranks_missing && !o->partial)
		return util_err_set(err, UTIL_EUSAGE,
				    "%d of %d ranks have no shard (first missing: rank %d); "
				    "--partial merges them anyway",
				    res->ranks_missing, sh[0].run.ranks, first);
	return 0;
}

/* The merged run: the first shard's shape and layout under its own name. */
static void merged_run(const struct shard *sh, size_t n, const struct collector_merge_opts *o,
		       struct store_run *run)
{
	memset(run, 0, sizeof(*run));
	if (o->out_run)
		snprintf(run->name, sizeof(run->name), "%s", o->out_run);
	else
		snprintf(run->name, sizeof(run->name), "%.*s-merged",
			 (int)util_utf8_cut(sh[0].run.name, 100), sh[0].run.name);
	snprintf(run->model, sizeof(run->model), "%s", sh[0].run.model);
	snprintf(run->source, sizeof(run->source), "merge of %zu %s", n,
		 o->sum ? "partial traces" : "rank shards");
	run->layers = sh[0].run.layers;
	run->experts = sh[0].run.experts;
	run->topk = sh[0].run.topk;
	run->ranks = sh[0].run.ranks;
	run->slots = sh[0].run.slots;
	run->ranks_per_node = sh[0].run.ranks_per_node;
	run->first_layer = sh[0].run.first_layer;
}

/* In one transaction on dst (*in_tx set once begun): the merged run and
 * the placements the shards ran with. */
static int write_head(struct store *dst, const char *out, const struct plan *pl, size_t LP,
		      struct collector_merge_result *res, int *in_tx, struct util_err *err)
{
	int rc;

	if ((rc = store_begin(dst)))
		return util_err_set(err, rc, "'%s': %s", out, store_errmsg(dst));
	*in_tx = 1;
	if ((rc = store_run_add(dst, &res->run)))
		return util_err_set(err, rc, "'%s': %s", out, store_errmsg(dst));
	for (size_t v = 0; v < pl->nv; v++) {
		if ((rc = store_deployed_set(dst, &res->run, pl->from[v], res->run.ranks,
					     res->run.slots, pl->phy2log + v * LP)))
			return util_err_set(err, rc, "'%s': %s", out, store_errmsg(dst));
		res->placements++;
	}
	return 0;
}

/* Under --sum a shard that routed tokens in a step but gives their number
 * as 0 (unknown) beside one that gives it would leave the summed tokens
 * short of the step's: refused rather than stored. */
static int tokens_known(const struct shard *sh, size_t n, const struct store_step *b,
			struct util_err *err)
{
	size_t known = 0, unknown = n;

	if (b->tokens == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (sh[i].cur.tokens > 0)
			known = i;
		else if (sh[i].routed && unknown == n)
			unknown = i;
	}
	if (unknown == n)
		return 0;
	return util_err_set(err, UTIL_EUSAGE,
			    "step %lld: '%s' routed tokens but gives their number as 0 (unknown), "
			    "'%s' gives %lld: their sum would not be the step's tokens",
			    (long long)b->step, sh[unknown].path, sh[known].path,
			    (long long)sh[known].cur.tokens);
}

/* Step b (counts in b->counts, zeroed) from every shard's current step:
 * counts and tokens summed, the phase every shard gives, the earliest
 * time any gives (ranks stamp one step a little apart; 0 is unknown).
 * Rank shards saw the same tokens, so they must agree on the phase; under
 * --sum each shard routed its own tokens (data-parallel ranks, say), and
 * shards that give different phases (prefill, decode, unknown) make a step
 * of more than one: unknown, as a recorder records a step that mixes
 * prefill and decode, counted in *mixed. */
static int merge_step(struct shard *sh, size_t n, const struct plan *pl,
		      const struct collector_merge_opts *o, struct store_step *b, int64_t *mixed,
		      struct util_err *err)
{
	int rc, differ = 0;

	b->phase = sh[0].cur.phase;
	for (size_t i = 0; i < n; i++) {
		differ |= sh[i].cur.phase != b->phase;
		if (differ && !o->sum)
			return util_err_set(err, UTIL_EUSAGE,
					    "step %lld: '%s' records it as %s, '%s' as %s: "
					    "shards must agree on the phase of a step",
					    (long long)b->step, sh[0].path, store_phase_name(b->phase),
					    sh[i].path, store_phase_name(sh[i].cur.phase));
		if ((rc = add_shard(&sh[i], pl, !o->sum, b->counts, err)))
			return rc;
		if (util_add_i64(b->tokens, sh[i].cur.tokens, &b->tokens) ||
		    store_tokens_check(b->tokens, NULL))
			return util_err_set(err, UTIL_ERANGE,
					    "step %lld: the tokens of '%s' and the shards "
					    "before it sum past %lld, the most a trace "
					    "holds in a step",
					    (long long)b->step, sh[i].path,
					    (long long)STORE_TOKENS_MAX);
		if (sh[i].cur.time != 0 && (b->time == 0 || sh[i].cur.time < b->time))
			b->time = sh[i].cur.time;
	}
	if (differ) {
		b->phase = STORE_PHASE_UNKNOWN;
		(*mixed)++;
	}
	return o->sum ? tokens_known(sh, n, b, err) : 0;
}

/* Step minstep, which some shard lacks, in res: the first shard that
 * lacks it and the first that has it. */
static void note_missing(const struct shard *sh, size_t n, int64_t minstep,
			 struct collector_merge_result *res)
{
	res->first_missing = minstep;
	for (size_t i = n; i-- > 0;) {
		if (sh[i].have && sh[i].cur.step == minstep)
			res->missing_in = sh[i].path;
		else
			res->missing_from = sh[i].path;
	}
}

/* Appends the nb steps of batch to dst. */
static int flush(struct store *dst, const char *out, struct collector_merge_result *res,
		 const struct store_step *batch, size_t *nb, struct util_err *err)
{
	int rc;

	if (*nb && (rc = store_steps_append(dst, &res->run, batch, *nb)))
		return util_err_set(err, rc, "'%s': %s", out, store_errmsg(dst));
	res->steps += (int64_t)*nb;
	*nb = 0;
	return 0;
}

/* Goes through the shards' steps in order (their iterators open): a step
 * every shard holds is merged and appended to dst, one some shard lacks is
 * counted in res (the first named).  Without common_steps nothing is
 * merged after the first such step: the merge will be refused, and the
 * rest of the walk only counts the others for the message. */
static int walk_steps(struct shard *sh, size_t n, const struct plan *pl,
		      const struct collector_merge_opts *o, struct store *dst, const char *out,
		      struct collector_merge_result *res, struct util_err *err)
{
	size_t L = (size_t)sh[0].run.layers, E = (size_t)sh[0].run.experts, nb = 0;
	struct store_step *batch = calloc(MERGE_BATCH, sizeof(*batch));
	uint32_t *sums = calloc((size_t)MERGE_BATCH * L * E, sizeof(uint32_t));
	int rc = 0;

	if (!batch || !sums)
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
	while (!rc) {
		int64_t minstep = INT64_MAX;
		size_t at = 0, any = 0;
		for (size_t i = 0; i < n; i++)
			if (sh[i].have) {
				any = 1;
				if (sh[i].cur.step < minstep)
					minstep = sh[i].cur.step;
			}
		if (!any)
			break;
		for (size_t i = 0; i < n; i++)
			at += sh[i].have && sh[i].cur.step == minstep;
		if (at < n) {
			if (res->incomplete++ == 0)
				note_missing(sh, n, minstep, res);
		} else if (o->common_steps || !res->incomplete) {
			struct store_step *b = &batch[nb];
			memset(b, 0, sizeof(*b));
			b->step = minstep;
			b->counts = sums + nb * L * E;
			memset(b->counts, 0, L * E * sizeof(uint32_t));
			if ((rc = merge_step(sh, n, pl, o, b, &res->mixed, err)))
				break;
			if (++nb == MERGE_BATCH && (rc = flush(dst, out, res, batch, &nb, err)))
				break;
		}
		for (size_t i = 0; i < n && !rc; i++)
			if (sh[i].have && sh[i].cur.step == minstep)
				rc = advance(&sh[i], err);
	}
	if (!rc)
		rc = flush(dst, out, res, batch, &nb, err);
	free(batch);
	free(sums);
	return rc;
}

/* What the walk found that stops the merge: a step some shard lacks
 * (unless common_steps), or no step at all to merge. */
static int check_walk(const struct collector_merge_opts *o,
		      const struct collector_merge_result *res, struct util_err *err)
{
	if (res->incomplete && !o->common_steps)
		return util_err_set(err, UTIL_EUSAGE,
				    "step %lld of '%s' is not in '%s'; %lld step(s) are missing from "
				    "some shard: --common-steps merges only the steps every shard has",
				    (long long)res->first_missing, res->missing_in, res->missing_from,
				    (long long)res->incomplete);
	if (res->steps == 0)
		return util_err_set(err, UTIL_EUSAGE,
				    res->incomplete ? "no step is in every shard: nothing to merge"
						    : "the shards have no steps: nothing to merge");
	return 0;
}

/* Each file once: a shard given twice (by two names, a link or a hard
 * link) would be added twice. */
static int check_paths(const char *out, const char *const *paths, size_t n,
		       struct util_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (same_file(out, paths[i]))
			return util_err_set(err, UTIL_EUSAGE, "output '%s' is also shard %zu", out,
					    i + 1);
		for (size_t j = 0; j < i; j++)
			if (same_file(paths[j], paths[i]))
				return util_err_set(err, UTIL_EUSAGE,
						    "shard %zu '%s' and shard %zu '%s' are the same "
						    "file: its counts would be added twice",
						    j + 1, paths[j], i + 1, paths[i]);
	}
	return 0;
}

/* The shards' iterators, each on its first step. */
static int start_walk(struct shard *sh, size_t n, struct util_err *err)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		if ((rc = store_iter_new(sh[i].s, &sh[i].run, INT64_MIN, INT64_MAX, 0, &sh[i].it)))
			return util_err_set(err, rc, "'%s': %s", sh[i].path, store_errmsg(sh[i].s));
		if ((rc = advance(&sh[i], err)))
			return rc;
	}
	return 0;
}

int collector_merge(const char *out, const char *const *paths, size_t n,
		    const struct collector_merge_opts *o, struct collector_merge_result *res,
		    struct util_err *err)
{
	struct shard *sh = NULL;
	struct plan pl = { 0, NULL, NULL };
	struct store *dst = NULL;
	size_t LP;
	int rc, in_tx = 0;

	memset(res, 0, sizeof(*res));
	if (n == 0)
		return util_err_set(err, UTIL_EUSAGE, "no shards to merge");
	if ((rc = check_paths(out, paths, n, err)))
		return rc;
	sh = calloc(n, sizeof(*sh));
	if (!sh)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		sh[i].path = paths[i];
	if ((rc = open_shards(sh, n, o, err)) || (rc = check_plans(sh, n, &pl, o, err)) ||
	    (!o->sum && (rc = check_ranks(sh, n, o, res, err))))
		goto out;
	/* a new output is staged: a failure leaves no file (store.h) */
	if ((rc = store_open(out, STORE_CREATE | STORE_STAGE, &dst, err)))
		goto out;
	merged_run(sh, n, o, &res->run);
	LP = (size_t)res->run.layers * (size_t)res->run.ranks * (size_t)res->run.slots;
	if ((rc = write_head(dst, out, &pl, LP, res, &in_tx, err)) ||
	    (rc = start_walk(sh, n, err)) || (rc = walk_steps(sh, n, &pl, o, dst, out, res, err)) ||
	    (rc = check_walk(o, res, err)))
		goto out;
	if ((rc = store_commit(dst)))
		rc = util_err_set(err, rc, "'%s': %s", out, store_errmsg(dst));
	else
		in_tx = 0;
out:
	if (in_tx)
		store_rollback(dst);
	if (rc == 0)
		rc = store_publish(dst, err);
	else
		store_free(dst);
	for (size_t i = 0; sh && i < n; i++) {
		store_iter_free(sh[i].it);
		store_free(sh[i].s);
		free(sh[i].own);
	}
	free(sh);
	plan_release(&pl);
	return rc;
}

/*
 * schema.c: the ClickHouse schema (docs/fleet.md) and its version.  The
 * SQL stays within what ClickHouse 18.16 (Debian's package) runs -- no
 * codecs, TTL, skip indexes or LowCardinality -- and a current ClickHouse
 * runs it unchanged.  Every statement is idempotent (IF NOT EXISTS) and
 * moetrace_meta, which marks the database as a moetrace schema, is created
 * last, so a creation cut short is completed by the next push.
 */
#include "fleet/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* placed_at of the static layout: below every step a trace holds. */
#define STATIC_AT "toInt64(-9223372036854775807 - 1)"

/* Tables and views of schema 4 (moetrace_meta last; moetrace_meta_new
 * only while a migration replaces moetrace_meta). */
static const char *const schema_names[] = {
	"runs", "steps", "counts", "deployed", "counts_rollup", "counts_rollup_mv",
	"counts_committed", "expert_heat", "layer_heat", "step_heat", "rollup_heat",
	"layer_imbalance_static", "run_layout", "counts_placed", "placements",
	"placement_replicas", "counts_placement", "device_load", "layer_imbalance",
	"runs_all", "steps_all", "counts_all", "deployed_all", "counts_rollup_all",
	"rollup_shipped", "rollup_windows", "rollup_shipped_all", "rollup_windows_all",
	"moetrace_meta", "moetrace_meta_new", NULL,
};

/* Local tables: (name, columns and engine).  Rows of a run are keyed by
 * (deployment, run name): run ids are local to a trace file (runs.id, the
 * last column since schema 2, is the run's id in the pushed file). */
static const char *const tables[][2] = {
	{ "runs", "(deployment String, run String, model String, layers UInt16, experts UInt32, "
		  "topk UInt32, ranks UInt32, slots UInt32, ranks_per_node UInt32, "
		  "first_layer UInt32, created Float64, source String, pushed DateTime, "
		  "id Int64) "
		  "ENGINE = MergeTree() ORDER BY (deployment, run)" },
	{ "steps", "(deployment String, run String, step Int64, time Float64, phase UInt8, "
		   "tokens UInt64) ENGINE = MergeTree() ORDER BY (deployment, run, step)" },
	{ "counts", "(deployment String, run String, step Int64, layer UInt16, "
		    "counts Array(UInt32)) ENGINE = MergeTree() "
		    "ORDER BY (deployment, run, step, layer)" },
	{ "deployed", "(deployment String, run String, step Int64, layer UInt16, ranks UInt32, "
		      "slots UInt32, phy2log Array(Int32)) ENGINE = MergeTree() "
		      "ORDER BY (deployment, run, step, layer)" },
	{ "counts_rollup", "(deployment String, run String, layer UInt16, first_step Int64, "
			   "steps AggregateFunction(count), "
			   "counts AggregateFunction(sumForEach, Array(UInt32))) "
			   "ENGINE = AggregatingMergeTree() "
			   "ORDER BY (deployment, run, layer, first_step)" },
	/* Schema 3: rollups summed by the client (push --rollup-only), one
	 * row per layer and window, and the window's commit marker, sent
	 * after all its layer rows (fleet_push_rollup). */
	{ "rollup_shipped", "(deployment String, run String, layer UInt16, first_step Int64, "
			    "steps UInt64, counts Array(UInt64)) ENGINE = MergeTree() "
			    "ORDER BY (deployment, run, first_step, layer)" },
	{ "rollup_windows", "(deployment String, run String, first_step Int64, steps UInt64) "
			    "ENGINE = MergeTree() ORDER BY (deployment, run, first_step)" },
};

#define ROLLUP_HEAT                                                                        \
	"SELECT deployment, run, layer, first_step, countMerge(steps) AS steps, "            \
	"sumForEachMerge(counts) AS counts FROM counts_rollup "                              \
	"GROUP BY deployment, run, layer, first_step UNION ALL "                             \
	"SELECT deployment, run, layer, first_step, steps, counts FROM rollup_shipped "      \
	"WHERE (deployment, run, first_step) IN "                                            \
	"(SELECT deployment, run, first_step FROM rollup_windows)"

/* Imbalance per step and layer: under the static layout
 * (layer_imbalance_static), of the experts themselves (step_heat) and under
 * the placement in force (layer_imbalance).  Since schema 4 a layer without
 * tokens did no work and has no imbalance: NULL (docs/cli.md), not 1.0.
 *
 * The static layout: slot p holds expert p % E, a replicated expert's
 * tokens split evenly among its replicas (docs/schema.md): each cell is
 * expanded to its replicas' slots and summed per rank.  (Lambdas capturing
 * the counts array cost ClickHouse a copy per slot, and 18.16 prunes
 * subquery columns only a lambda names.) */
#define LAYER_IMBALANCE_STATIC                                                              \
	"SELECT deployment, run, step, layer, "                                             \
	"if(sum(load) = 0, NULL, max(load) * any(R) / sum(load)) AS imbalance FROM "        \
	"(SELECT deployment, run, step, layer, R, intDiv(e + j * E, S) AS rank, "           \
	"sum(x / reps) AS load FROM "                                                       \
	"(SELECT deployment, run, step, layer, E, R, S, x, toUInt64(i - 1) AS e, "          \
	"toUInt64(intDiv(R * S - 1 - e, E) + 1) AS reps, arrayJoin(range(reps)) AS j FROM " \
	"(SELECT deployment, run, step, layer, counts AS c, E, R, S FROM counts_committed " \
	"ANY INNER JOIN (SELECT deployment, run, toUInt64(experts) AS E, "                   \
	"toUInt64(ranks) AS R, toUInt64(slots) AS S FROM runs WHERE ranks > 0 AND "         \
	"slots > 0 AND ranks * slots >= experts) USING (deployment, run)) "                 \
	"ARRAY JOIN c AS x, arrayEnumerate(c) AS i WHERE length(c) = E) "                   \
	"GROUP BY deployment, run, step, layer, R, rank) "                                  \
	"GROUP BY deployment, run, step, layer"
#define STEP_HEAT                                                                           \
	"SELECT deployment, run, step, layer, arraySum(counts) AS tokens, "                 \
	"arrayReduce('max', counts) AS max_tokens, length(counts) AS experts, "             \
	"if(arraySum(counts) = 0, NULL, arrayReduce('max', counts) * length(counts) / "     \
	"arraySum(counts)) AS expert_imbalance FROM counts_committed"
#define LAYER_IMBALANCE                                                                     \
	"SELECT deployment, run, step, layer, "                                             \
	"if(sum(load) <= 0, NULL, max(load) / (sum(load) / count())) AS imbalance "         \
	"FROM device_load GROUP BY deployment, run, step, layer"

/* Views over committed steps: a step is visible once its steps row (sent
 * after its counts) is there. */
static const char *const views[][2] = {
	{ "counts_committed",
	  "SELECT deployment, run, step, layer, counts FROM counts "
	  "WHERE (deployment, run, step) IN (SELECT deployment, run, step FROM steps)" },
	{ "expert_heat",
	  "SELECT deployment, run, step, layer, toUInt32(i - 1) AS expert, tokens "
	  "FROM counts_committed ARRAY JOIN counts AS tokens, arrayEnumerate(counts) AS i" },
	{ "layer_heat",
	  "SELECT deployment, run, layer, toUInt32(e.1 - 1) AS expert, e.2 AS tokens FROM "
	  "(SELECT deployment, run, layer, sumForEach(counts) AS s FROM counts_committed "
	  "GROUP BY deployment, run, layer) "
	  "ARRAY JOIN arrayMap((x, i) -> (i, x), s, arrayEnumerate(s)) AS e" },
	{ "step_heat", STEP_HEAT },
	{ "layer_imbalance_static", LAYER_IMBALANCE_STATIC },
	/* The rollups the server summed from counts, and (schema 3) those
	 * shipped summed, of committed windows only: the same columns. */
	{ "rollup_heat", ROLLUP_HEAT },
	/* Schema 2: the placement in force at each step, without an as-of
	 * join (18.16 has none).  The EP layout a run's static placement uses:
	 * its own (SQLite's run_layout falls back to the model preset's, which
	 * the server does not know). */
	{ "run_layout",
	  "SELECT deployment, run, experts, ranks, slots, 'run' AS source FROM runs "
	  "WHERE ranks > 0 AND slots > 0 AND ranks * slots >= experts" },
	/* Each committed counts row with placed_at, the step of the latest
	 * deployed row of its layer at or before its step (the count k of the
	 * layer's sorted deployed steps <= step gives it), else STATIC_AT for
	 * the static layout; rows with neither are left out.  (The lambda
	 * takes the step as an array: 18.16 drops a subquery column that only
	 * a lambda names.) */
	{ "counts_placed",
	  "SELECT deployment, run, step, layer, counts, "
	  "if(k > 0, ds[k], " STATIC_AT ") AS placed_at FROM "
	  "(SELECT deployment, run, step, layer, counts, ds, arrayCount((x, s) -> x <= s, ds, "
	  "arrayResize(emptyArrayInt64(), length(ds), step)) AS k FROM "
	  "(SELECT deployment, run, step, layer, counts, ds FROM counts_committed "
	  "ANY LEFT JOIN (SELECT deployment, run, layer, arraySort(groupArray(step)) AS ds "
	  "FROM deployed GROUP BY deployment, run, layer) USING (deployment, run, layer))) "
	  "WHERE k > 0 OR (deployment, run) IN (SELECT deployment, run FROM run_layout)" },
	/* Every placement a step can be under: the deployed rows, and per
	 * layer the static one (slot p holds expert p % E) at STATIC_AT. */
	{ "placements",
	  "SELECT deployment, run, layer, step AS placed_at, ranks, slots, phy2log FROM deployed "
	  "UNION ALL SELECT deployment, run, toUInt16(li) AS layer, " STATIC_AT " AS placed_at, "
	  "ranks, slots, arrayMap((p, e) -> toInt32(p % e), range(ranks * slots), "
	  "arrayResize(emptyArrayUInt32(), ranks * slots, experts)) AS phy2log FROM "
	  "(SELECT deployment, run, experts, ranks, slots, layers FROM run_layout "
	  "ANY INNER JOIN (SELECT deployment, run, layers FROM runs) USING (deployment, run)) "
	  "ARRAY JOIN range(layers) AS li" },
	/* The ranks holding a replica of each expert, per placement. */
	{ "placement_replicas",
	  "SELECT deployment, run, layer, placed_at, toUInt32(e) AS expert, "
	  "groupArray(toUInt32(intDiv(p - 1, slots))) AS on_ranks FROM placements "
	  "ARRAY JOIN phy2log AS e, arrayEnumerate(phy2log) AS p "
	  "GROUP BY deployment, run, layer, placed_at, expert" },
	{ "counts_placement",
	  "SELECT deployment, run, step, layer, counts, "
	  "if(placed_at = " STATIC_AT ", 'static', 'deployed') AS placement, phy2log, ranks, "
	  "slots FROM counts_placed ANY INNER JOIN placements "
	  "USING (deployment, run, layer, placed_at)" },
	/* Each cell's tokens split evenly over its expert's replicas, summed
	 * per rank; an expert without a replica carries no load. */
	{ "device_load",
	  "SELECT deployment, run, step, layer, rank, sum(x / length(on_ranks)) AS load FROM "
	  "(SELECT deployment, run, step, layer, x, on_ranks FROM "
	  "(SELECT deployment, run, step, layer, placed_at, toUInt32(i - 1) AS expert, x "
	  "FROM counts_placed ARRAY JOIN counts AS x, arrayEnumerate(counts) AS i) "
	  "ANY INNER JOIN placement_replicas USING (deployment, run, layer, placed_at, expert)) "
	  "ARRAY JOIN on_ranks AS rank GROUP BY deployment, run, step, layer, rank" },
	{ "layer_imbalance", LAYER_IMBALANCE },
};

static const char *const dist_tables[] = { "runs", "steps", "counts", "deployed",
					   "counts_rollup", "rollup_shipped", "rollup_windows" };

static int exec(struct fleet_ch *c, struct util_buf *q, struct util_err *err)
{
	int rc = util_buf_check(q, err);

	return rc ? rc : fleet_ch_query(c, q->data, 1, NULL, 0, NULL, err);
}

/* The local tables (IF NOT EXISTS). */
static int create_tables(struct fleet_ch *c, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT;
	int rc = 0;

	for (size_t i = 0; !rc && i < sizeof(tables) / sizeof(tables[0]); i++) {
		util_buf_reset(&q);
		util_buf_addf(&q, "CREATE TABLE IF NOT EXISTS %s %s", tables[i][0], tables[i][1]);
		rc = exec(c, &q, err);
	}
	util_buf_release(&q);
	return rc;
}

/* The Distributed tables over cluster. */
static int create_dist(struct fleet_ch *c, const struct fleet_url *u, const char *cluster,
		       struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT;
	int rc = 0;

	for (size_t i = 0; !rc && i < sizeof(dist_tables) / sizeof(dist_tables[0]); i++) {
		util_buf_reset(&q);
		/* a run lives on one shard: its steps' rows stay together */
		util_buf_addf(&q, "CREATE TABLE IF NOT EXISTS %s_all AS %s ENGINE = Distributed(",
			      dist_tables[i], dist_tables[i]);
		fleet_sql_quote(&q, cluster);
		util_buf_addf(&q, ", '%s', %s, cityHash64(deployment, run))", u->database,
			      dist_tables[i]);
		rc = exec(c, &q, err);
	}
	util_buf_release(&q);
	return rc;
}

static int create(struct fleet_ch *c, const struct fleet_url *u, int rollup,
		  const char *cluster, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT;
	int rc = create_tables(c, err);

	if (!rc) {
		/* rollup rows sum N steps: [k N, (k + 1) N), negative steps too */
		util_buf_reset(&q);
		util_buf_addf(&q,
			      "CREATE MATERIALIZED VIEW IF NOT EXISTS counts_rollup_mv TO "
			      "counts_rollup AS SELECT deployment, run, layer, "
			      "if(step >= 0, intDiv(step, %d), intDiv(step + 1, %d) - 1) * %d "
			      "AS first_step, countState() AS steps, sumForEachState(counts) "
			      "AS counts FROM counts GROUP BY deployment, run, layer, first_step",
			      rollup, rollup, rollup);
		rc = exec(c, &q, err);
	}
	for (size_t i = 0; !rc && i < sizeof(views) / sizeof(views[0]); i++) {
		util_buf_reset(&q);
		util_buf_addf(&q, "CREATE VIEW IF NOT EXISTS %s AS %s", views[i][0], views[i][1]);
		rc = exec(c, &q, err);
	}
	if (!rc && cluster)
		rc = create_dist(c, u, cluster, err);
	if (!rc) {
		util_buf_reset(&q);
		util_buf_addf(&q,
			      "CREATE TABLE IF NOT EXISTS moetrace_meta ENGINE = TinyLog AS SELECT "
			      "toUInt32(%d) AS version, toUInt32(%d) AS rollup_steps, ",
			      FLEET_SCHEMA_VERSION, rollup);
		fleet_sql_quote(&q, cluster ? cluster : "");
		util_buf_addstr(&q, " AS cluster, now() AS created");
		rc = exec(c, &q, err);
	}
	util_buf_release(&q);
	if (rc)
		util_err_prefix(err, "cannot create the moetrace schema in '%s': ", u->shown);
	return rc;
}

/* Splits a TSV answer into lines in place; returns the count. */
static size_t lines_of(char *s, char **line, size_t cap)
{
	size_t n = 0;

	while (s && *s && n < cap) {
		char *e = strchr(s, '\n');

		line[n++] = s;
		if (!e)
			break;
		*e = 0;
		s = e + 1;
	}
	return n;
}

/* The one row of moetrace_meta: version, rollup steps and cluster (cl,
 * cap bytes). */
static int read_meta(struct fleet_ch *c, const struct fleet_url *u, long long *version,
		     long long *steps, char *cl, size_t cap, struct util_err *err)
{
	struct util_buf ans = UTIL_BUF_SOFT_INIT;
	char *line[2], *e = NULL, *f = NULL;
	size_t n;
	int rc;

	*version = *steps = 0;
	if ((rc = fleet_ch_query(c, "SELECT version, rollup_steps, cluster FROM "
				    "moetrace_meta FORMAT TSV", 1, NULL, 0, &ans, err)))
		goto out;
	n = lines_of(ans.data, line, 2);
	if (n == 1) {
		*version = strtoll(line[0], &e, 10);
		if (*e == '\t')
			*steps = strtoll(e + 1, &f, 10);
	}
	if (n != 1 || e == line[0] || *e != '\t' || !f || f == e + 1 || *f != '\t' ||
	    strlen(f + 1) >= cap || *steps < 1) {
		rc = util_err_set(err, UTIL_EPARSE,
				  "'%s' is not a moetrace schema: moetrace_meta does not "
				  "hold one version row", u->shown);
		goto out;
	}
	memcpy(cl, f + 1, strlen(f + 1) + 1);
out:
	util_buf_release(&ans);
	return rc;
}

/* Does `table` of the URL's database have `column`?  1, 0 or an error. */
static int has_column(struct fleet_ch *c, const struct fleet_url *u, const char *table,
		      const char *column, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
	int rc;

	util_buf_addstr(&q, "SELECT count() FROM system.columns WHERE database = ");
	fleet_sql_quote(&q, u->database);
	util_buf_addf(&q, " AND table = '%s' AND name = '%s' FORMAT TSV", table, column);
	if (!(rc = util_buf_check(&q, err)))
		rc = fleet_ch_query(c, q.data, 0, NULL, 0, &ans, err);
	if (!rc)
		rc = ans.data && strtoll(ans.data, NULL, 10) > 0;
	util_buf_release(&q);
	util_buf_release(&ans);
	return rc;
}

/* moetrace_meta replaced by a copy saying `version`, made first as
 * moetrace_meta_new: a swap cut short after the DROP is completed by
 * fleet_schema_ensure, one cut short before it is made again. */
static int meta_swap(struct fleet_ch *c, int version, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT;
	int rc = fleet_ch_query(c, "DROP TABLE IF EXISTS moetrace_meta_new", 1, NULL, 0, NULL, err);

	util_buf_addf(&q, "CREATE TABLE moetrace_meta_new ENGINE = TinyLog AS SELECT toUInt32(%d) "
		      "AS version, rollup_steps, cluster, created FROM moetrace_meta", version);
	if (!rc)
		rc = exec(c, &q, err);
	if (!rc)
		rc = fleet_ch_query(c, "DROP TABLE moetrace_meta", 1, NULL, 0, NULL, err);
	if (!rc)
		rc = fleet_ch_query(c, "RENAME TABLE moetrace_meta_new TO moetrace_meta", 1, NULL, 0,
				    NULL, err);
	util_buf_release(&q);
	return rc;
}

/* The end of the migration from schema `from` whose statements gave rc:
 * moetrace_meta replaced by a copy saying from + 1 (meta_swap), or the
 * failure named with both versions. */
static int migrated(struct fleet_ch *c, const struct fleet_url *u, int from, int rc,
		    struct util_err *err)
{
	if (!rc)
		rc = meta_swap(c, from + 1, err);
	if (rc)
		util_err_prefix(err, "cannot migrate '%s' from moetrace schema version %d to %d: ",
				u->shown, from, FLEET_SCHEMA_VERSION);
	return rc;
}

/* Schema 1 -> 2: runs (and runs_all) gain id, the views of the placement
 * in force are created, and moetrace_meta is replaced by a copy saying 2
 * (made first as moetrace_meta_new: a migration cut short anywhere is
 * completed by the next push, see fleet_schema_ensure). */
static int migrate_1(struct fleet_ch *c, const struct fleet_url *u, struct util_err *err)
{
	struct util_buf q = UTIL_BUF_SOFT_INIT;
	int rc = 0;

	for (int t = 0; !rc && t < 2; t++) {
		const char *table = t ? "runs_all" : "runs";
		int has = has_column(c, u, table, "id", err);

		if (has < 0)
			rc = has;
		else if (!has && (!t || has_column(c, u, "runs_all", "deployment", err) == 1)) {
			util_buf_reset(&q);
			util_buf_addf(&q, "ALTER TABLE %s ADD COLUMN id Int64", table);
			rc = exec(c, &q, err);
		}
	}
	/* schema 3's tables first: the views may read them */
	if (!rc)
		rc = create_tables(c, err);
	for (size_t i = 0; !rc && i < sizeof(views) / sizeof(views[0]); i++) {
		util_buf_reset(&q);
		util_buf_addf(&q, "CREATE VIEW IF NOT EXISTS %s AS %s", views[i][0], views[i][1]);
		rc = exec(c, &q, err);
	}
	util_buf_release(&q);
	return migrated(c, u, 1, rc, err);
}

/* Schema 2 -> 3: the tables of shipped rollups (and their Distributed
 * tables if the schema has a cluster), rollup_heat reading them too, and
 * moetrace_meta replaced by a copy saying 3 as in migrate_1.  Every
 * statement may run again: a migration cut short is redone whole. */
static int migrate_2(struct fleet_ch *c, const struct fleet_url *u, const char *cluster,
		     struct util_err *err)
{
	static const char *const steps[] = {
		"DROP TABLE IF EXISTS rollup_heat",
		"CREATE VIEW rollup_heat AS " ROLLUP_HEAT,
	};
	int rc = create_tables(c, err);

	if (!rc && cluster[0])
		rc = create_dist(c, u, cluster, err);
	for (size_t i = 0; !rc && i < sizeof(steps) / sizeof(steps[0]); i++)
		rc = fleet_ch_query(c, steps[i], 1, NULL, 0, NULL, err);
	return migrated(c, u, 2, rc, err);
}

/* Schema 3 -> 4: layer_imbalance, layer_imbalance_static and step_heat's
 * expert_imbalance say NULL, not 1.0, for a layer without tokens: each view
 * is dropped and made again (a view cannot be altered), then moetrace_meta
 * is replaced by a copy saying 4 as in migrate_1.  Every statement may run
 * again: a migration cut short is redone whole. */
static int migrate_3(struct fleet_ch *c, const struct fleet_url *u, struct util_err *err)
{
	static const char *const steps[] = {
		"DROP TABLE IF EXISTS layer_imbalance_static",
		"CREATE VIEW layer_imbalance_static AS " LAYER_IMBALANCE_STATIC,
		"DROP TABLE IF EXISTS layer_imbalance",
		"CREATE VIEW layer_imbalance AS " LAYER_IMBALANCE,
		"DROP TABLE IF EXISTS step_heat",
		"CREATE VIEW step_heat AS " STEP_HEAT,
	};
	int rc = 0;

	for (size_t i = 0; !rc && i < sizeof(steps) / sizeof(steps[0]); i++)
		rc = fleet_ch_query(c, steps[i], 1, NULL, 0, NULL, err);
	return migrated(c, u, 3, rc, err);
}

int fleet_schema_rollup_steps(struct fleet_ch *c, int *n, struct util_err *err)
{
	long long version, steps;
	char cl[128];
	int rc;

	if ((rc = read_meta(c, fleet_ch_url(c), &version, &steps, cl, sizeof(cl), err)))
		return rc;
	if (steps > 1 << 30)
		return util_err_set(err, UTIL_EPARSE, "'%s': moetrace_meta says %lld steps per "
				    "rollup row, more than moetrace sums (2^30)",
				    fleet_ch_url(c)->shown, steps);
	*n = (int)steps;
	return 0;
}

/* The existing schema: its version this moetrace's (migrated if older),
 * the options those it was created with. */
static int check_existing(struct fleet_ch *c, const struct fleet_url *u,
			  const struct fleet_schema_opts *o, const char *unknown,
			  struct util_err *err)
{
	long long version, steps;
	char cl[128];
	int rc;

	if ((rc = read_meta(c, u, &version, &steps, cl, sizeof(cl), err)))
		return rc;
	if (version > FLEET_SCHEMA_VERSION)
		return util_err_set(err, UTIL_EPARSE,
				    "'%s' has moetrace schema version %lld, newer than this "
				    "moetrace knows (%d): upgrade moetrace", u->shown, version,
				    FLEET_SCHEMA_VERSION);
	if (version < 1)
		return util_err_set(err, UTIL_EPARSE,
				    "'%s' has moetrace schema version %lld, which no moetrace "
				    "wrote", u->shown, version);
	if (unknown)
		return util_err_set(err, UTIL_EPARSE,
				    "'%s' is not a moetrace schema: it holds table '%.64s'",
				    u->shown, unknown);
	if (o->rollup_steps && o->rollup_steps != steps)
		return util_err_set(err, UTIL_EUSAGE,
				    "--rollup-steps %d: '%s' was created with %lld steps per "
				    "rollup row", o->rollup_steps, u->shown, steps);
	if (o->cluster && strcmp(o->cluster, cl))
		return util_err_set(err, UTIL_EUSAGE, "--cluster %s: '%s' was created %s%s%s",
				    o->cluster, u->shown,
				    cl[0] ? "for cluster '" : "without a cluster", cl,
				    cl[0] ? "'" : "");
	if (version == 1 && (rc = migrate_1(c, u, err)))
		return rc;
	if (version <= 2 && (rc = migrate_2(c, u, cl, err)))
		return rc;
	return version <= 3 ? migrate_3(c, u, err) : 0;
}

int fleet_schema_ensure(struct fleet_ch *c, const struct fleet_schema_opts *o,
			struct util_err *err)
{
	const struct fleet_url *u = fleet_ch_url(c);
	struct util_buf q = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
	char *line[256];
	const char *unknown = NULL;
	size_t n;
	int rc, has_meta = 0, has_new = 0;
	int rollup = o->rollup_steps ? o->rollup_steps : FLEET_ROLLUP_STEPS;

	util_buf_addf(&q, "CREATE DATABASE IF NOT EXISTS %s", u->database);
	if ((rc = util_buf_check(&q, err)) ||
	    (rc = fleet_ch_query(c, q.data, 0, NULL, 0, NULL, err)))
		goto out;
	util_buf_reset(&q);
	util_buf_addstr(&q, "SELECT name FROM system.tables WHERE database = ");
	fleet_sql_quote(&q, u->database);
	util_buf_addstr(&q, " ORDER BY name FORMAT TSV");
	if ((rc = util_buf_check(&q, err)) ||
	    (rc = fleet_ch_query(c, q.data, 0, NULL, 0, &ans, err)))
		goto out;
	n = lines_of(ans.data, line, sizeof(line) / sizeof(line[0]));
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		while (schema_names[k] && strcmp(schema_names[k], line[i]))
			k++;
		if (!schema_names[k] && !unknown)
			unknown = line[i];
		has_meta |= !strcmp(line[i], "moetrace_meta");
		has_new |= !strcmp(line[i], "moetrace_meta_new");
	}
	/* a migration cut short after dropping moetrace_meta: its copy is whole */
	if (has_new && !has_meta && !unknown) {
		if ((rc = fleet_ch_query(c, "RENAME TABLE moetrace_meta_new TO moetrace_meta", 1,
					 NULL, 0, NULL, err)))
			goto out;
		has_meta = 1;
	}
	if (has_meta) {
		rc = check_existing(c, u, o, unknown, err);
		goto out;
	}
	if (unknown) {
		rc = util_err_set(err, UTIL_EPARSE,
				  "'%s' is not a moetrace schema: it holds table '%.64s'", u->shown,
				  unknown);
		goto out;
	}
	if (o->cluster) {
		util_buf_reset(&q);
		util_buf_addstr(&q, "SELECT count() FROM system.clusters WHERE cluster = ");
		fleet_sql_quote(&q, o->cluster);
		util_buf_addstr(&q, " FORMAT TSV");
		if ((rc = util_buf_check(&q, err)) ||
		    (rc = fleet_ch_query(c, q.data, 0, NULL, 0, &ans, err)))
			goto out;
		if (!ans.data || strtoll(ans.data, NULL, 10) <= 0) {
			rc = util_err_set(err, UTIL_EUSAGE,
					  "--cluster %s: '%s' has no such cluster in its "
					  "remote_servers configuration", o->cluster, u->shown);
			goto out;
		}
	}
	rc = create(c, u, rollup, o->cluster, err);
out:
	util_buf_release(&q);
	util_buf_release(&ans);
	return rc;
}

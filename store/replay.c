/*
 * replay.c: typed access to the replay tables (migrations 2 and 3): the replay
 * row with its parameters and summary, per-step per-layer loads, rebalance
 * events and their per-layer moves, per-layer summaries.  The simulator
 * itself is analyze/replay.c; this file only stores and reads its facts.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set(struct store *s, int code, const char *what)
{
	(void)code;
	return store_int_dberr(s, what);
}

int store_sqlite_replay_add(struct store *s, struct store_replay *r)
{
	sqlite3_stmt *st;
	int rc;

	if (r->created == 0)
		r->created = util_wall();
	if ((rc = store_int_prepare(s,
				    "INSERT INTO replays (run, created, algo, ranks, slots, interval, "
				    "window, delay, threshold, episodes, max_moves, params, pay, quant, "
				    "link_intra, link_inter, ranks_per_node, hardware, engine, step_ms) "
				    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
				    "?15, ?16, ?17, ?18, ?19, ?20)",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, r->run);
	sqlite3_bind_double(st, 2, r->created);
	sqlite3_bind_text(st, 3, r->algo, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, r->ranks);
	sqlite3_bind_int(st, 5, r->slots);
	sqlite3_bind_int64(st, 6, r->interval);
	sqlite3_bind_int64(st, 7, r->window);
	sqlite3_bind_int64(st, 8, r->delay);
	sqlite3_bind_double(st, 9, r->threshold);
	sqlite3_bind_int(st, 10, r->episodes);
	sqlite3_bind_int(st, 11, r->max_moves);
	sqlite3_bind_text(st, 12, r->params[0] ? r->params : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, r->pay);
	sqlite3_bind_text(st, 14, r->quant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 15, r->link_intra, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 16, r->link_inter, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 17, r->ranks_per_node);
	sqlite3_bind_text(st, 18, r->hardware, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 19, r->engine, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 20, r->step_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = set(s, UTIL_EDB, "adding replay");
	else
		r->id = sqlite3_last_insert_rowid(store_int_db(s));
	sqlite3_finalize(st);
	return rc;
}

int store_sqlite_replay_finish(struct store *s, const struct store_replay *r)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_int_prepare(s,
				    "UPDATE replays SET steps = ?2, imbalance_mean = ?3, "
				    "baseline_imbalance_mean = ?4, imbalance_p99 = ?5, "
				    "baseline_imbalance_p99 = ?6, events = ?7, moves = ?8, bytes = ?9, "
				    "transfer_seconds = ?10, saved_seconds = ?11, "
				    "net_stop_seconds = ?12, net_overlap_seconds = ?13, tokens = ?14, "
				    "bytes_inter = ?15, moe_seconds = ?16, baseline_moe_seconds = ?17, "
				    "baseline_step_seconds = ?18 WHERE replay = ?1",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int64(st, 2, r->steps);
	sqlite3_bind_double(st, 3, r->imbalance_mean);
	sqlite3_bind_double(st, 4, r->baseline_imbalance_mean);
	sqlite3_bind_double(st, 5, r->imbalance_p99);
	sqlite3_bind_double(st, 6, r->baseline_imbalance_p99);
	sqlite3_bind_int64(st, 7, r->events);
	sqlite3_bind_int64(st, 8, r->moves);
	sqlite3_bind_int64(st, 9, r->bytes);
	sqlite3_bind_double(st, 10, r->transfer_seconds);
	sqlite3_bind_double(st, 11, r->saved_seconds);
	sqlite3_bind_double(st, 12, r->net_stop_seconds);
	sqlite3_bind_double(st, 13, r->net_overlap_seconds);
	sqlite3_bind_int64(st, 14, r->tokens);
	sqlite3_bind_int64(st, 15, r->bytes_inter);
	sqlite3_bind_double(st, 16, r->moe_seconds);
	sqlite3_bind_double(st, 17, r->baseline_moe_seconds);
	sqlite3_bind_double(st, 18, r->baseline_step_seconds);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = set(s, UTIL_EDB, "updating replay");
	sqlite3_finalize(st);
	return rc;
}

/* The cached statement that inserts the rows of one step's `layers`
 * layers at once (one statement a step: the replay, the step, then a
 * layer's number and three loads for each), prepared anew when the layer
 * count changes. */
static int step_stmt(struct store *s, int layers, sqlite3_stmt **st)
{
	sqlite3_stmt **c = &s->cached[STORE_STMT_REPLAY_STEP];
	size_t cap = 160 + (size_t)layers * 48, len;
	char *sql;
	int rc;

	*st = NULL;
	if (*c && sqlite3_bind_parameter_count(*c) == 2 + 4 * layers) {
		*st = *c;
		return 0;
	}
	sqlite3_finalize(*c);
	*c = NULL;
	if (!(sql = malloc(cap)))
		return store_int_seterr(s, UTIL_ENOMEM, "out of memory");
	len = (size_t)snprintf(sql, cap,
			       "INSERT INTO replay_steps (replay, step, layer, max_load, mean_load, "
			       "base_max_load) VALUES ");
	for (int l = 0; l < layers; l++)
		len += (size_t)snprintf(sql + len, cap - len, "%s(?1, ?2, ?%d, ?%d, ?%d, ?%d)",
					l ? ", " : "", 3 + 4 * l, 4 + 4 * l, 5 + 4 * l, 6 + 4 * l);
	rc = store_int_prepare(s, sql, c);
	free(sql);
	*st = *c;
	return rc;
}

int store_sqlite_replay_step_add(struct store *s, int64_t replay, int64_t step, int layers,
			  const double *max_load, const double *mean_load,
			  const double *base_max_load)
{
	/* Called once per step in a hot loop: keep the statement. */
	sqlite3_stmt *st = NULL;
	int rc;

	if (layers <= 0)
		return 0;
	if ((rc = step_stmt(s, layers, &st)))
		return rc;
	sqlite3_bind_int64(st, 1, replay);
	sqlite3_bind_int64(st, 2, step);
	for (int l = 0; l < layers; l++) {
		sqlite3_bind_int(st, 3 + 4 * l, l);
		sqlite3_bind_double(st, 4 + 4 * l, max_load[l]);
		sqlite3_bind_double(st, 5 + 4 * l, mean_load[l]);
		sqlite3_bind_double(st, 6 + 4 * l, base_max_load[l]);
	}
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = set(s, UTIL_EDB, "inserting replay step");
	sqlite3_reset(st);
	return rc;
}

int store_sqlite_replay_event_add(struct store *s, int64_t replay, const struct store_replay_event *e,
			   int layers, const int64_t *moves, const int64_t *bytes,
			   const double *before, const double *after)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = store_int_prepare(s,
				    "INSERT INTO replay_events (replay, event, step, effective_step, "
				    "layers, moves, bytes, transfer_seconds, algo_seconds, bytes_inter, "
				    "transfer_intra_seconds, transfer_inter_seconds) VALUES "
				    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, replay);
	sqlite3_bind_int64(st, 2, e->event);
	sqlite3_bind_int64(st, 3, e->step);
	if (e->effective_step >= 0)
		sqlite3_bind_int64(st, 4, e->effective_step);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int(st, 5, e->layers);
	sqlite3_bind_int64(st, 6, e->moves);
	sqlite3_bind_int64(st, 7, e->bytes);
	sqlite3_bind_double(st, 8, e->transfer_seconds);
	sqlite3_bind_double(st, 9, e->algo_seconds);
	sqlite3_bind_int64(st, 10, e->bytes_inter);
	sqlite3_bind_double(st, 11, e->transfer_intra_seconds);
	sqlite3_bind_double(st, 12, e->transfer_inter_seconds);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = set(s, UTIL_EDB, "inserting replay event");
	sqlite3_finalize(st);
	if (rc || !moves)
		return rc;
	if ((rc = store_int_prepare(s,
				    "INSERT INTO replay_event_layers (replay, event, layer, moves, "
				    "bytes, imbalance_before, imbalance_after) VALUES "
				    "(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				    &st)))
		return rc;
	for (int l = 0; l < layers; l++) {
		if (!moves[l] && (before[l] == after[l] || (isnan(before[l]) && isnan(after[l]))))
			continue;
		sqlite3_bind_int64(st, 1, replay);
		sqlite3_bind_int64(st, 2, e->event);
		sqlite3_bind_int(st, 3, l);
		sqlite3_bind_int64(st, 4, moves[l]);
		sqlite3_bind_int64(st, 5, bytes ? bytes[l] : 0);
		/* the columns are NOT NULL since schema 2: a window without a
		 * token in the layer is not scored, and stored as 0, which no
		 * imbalance (at least 1) can be (docs/schema.md) */
		sqlite3_bind_double(st, 6, isnan(before[l]) ? 0 : before[l]);
		sqlite3_bind_double(st, 7, isnan(after[l]) ? 0 : after[l]);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = set(s, UTIL_EDB, "inserting replay event layer");
			break;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

int store_sqlite_replay_layer_add(struct store *s, int64_t replay, int layer, double mean, double p99,
			   double base_mean, double base_p99, int64_t moves)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_int_prepare(s,
				    "INSERT INTO replay_layers (replay, layer, imbalance_mean, "
				    "imbalance_p99, baseline_mean, baseline_p99, moves) VALUES "
				    "(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, replay);
	sqlite3_bind_int(st, 2, layer);
	sqlite3_bind_double(st, 3, mean);
	sqlite3_bind_double(st, 4, p99);
	sqlite3_bind_double(st, 5, base_mean);
	sqlite3_bind_double(st, 6, base_p99);
	sqlite3_bind_int64(st, 7, moves);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = set(s, UTIL_EDB, "inserting replay layer");
	sqlite3_finalize(st);
	return rc;
}

int store_sqlite_replay_event_effective(struct store *s, int64_t replay, int64_t event, int64_t step)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_int_prepare(s,
				    "UPDATE replay_events SET effective_step = ?3 "
				    "WHERE replay = ?1 AND event = ?2",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, replay);
	sqlite3_bind_int64(st, 2, event);
	sqlite3_bind_int64(st, 3, step);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = set(s, UTIL_EDB, "updating replay event");
	sqlite3_finalize(st);
	return rc;
}

#define REPLAY_COLS                                                                         \
	"replay, run, created, algo, ranks, slots, interval, window, delay, threshold, "    \
	"episodes, max_moves, params, steps, ifnull(imbalance_mean, 0), "                   \
	"ifnull(baseline_imbalance_mean, 0), ifnull(imbalance_p99, 0), "                    \
	"ifnull(baseline_imbalance_p99, 0), events, moves, bytes, transfer_seconds, "       \
	"saved_seconds, net_stop_seconds, net_overlap_seconds, pay, quant, link_intra, "    \
	"link_inter, ranks_per_node, hardware, engine, step_ms, tokens, bytes_inter, "      \
	"moe_seconds, baseline_moe_seconds, baseline_step_seconds"

static void replay_from_row(sqlite3_stmt *st, struct store_replay *r)
{
	const unsigned char *t;

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	r->run = sqlite3_column_int64(st, 1);
	r->created = sqlite3_column_double(st, 2);
	t = sqlite3_column_text(st, 3);
	snprintf(r->algo, sizeof(r->algo), "%s", t ? (const char *)t : "");
	r->ranks = sqlite3_column_int(st, 4);
	r->slots = sqlite3_column_int(st, 5);
	r->interval = sqlite3_column_int64(st, 6);
	r->window = sqlite3_column_int64(st, 7);
	r->delay = sqlite3_column_int64(st, 8);
	r->threshold = sqlite3_column_double(st, 9);
	r->episodes = sqlite3_column_int(st, 10);
	r->max_moves = sqlite3_column_int(st, 11);
	t = sqlite3_column_text(st, 12);
	snprintf(r->params, sizeof(r->params), "%s", t ? (const char *)t : "{}");
	r->steps = sqlite3_column_int64(st, 13);
	r->imbalance_mean = sqlite3_column_double(st, 14);
	r->baseline_imbalance_mean = sqlite3_column_double(st, 15);
	r->imbalance_p99 = sqlite3_column_double(st, 16);
	r->baseline_imbalance_p99 = sqlite3_column_double(st, 17);
	r->events = sqlite3_column_int64(st, 18);
	r->moves = sqlite3_column_int64(st, 19);
	r->bytes = sqlite3_column_int64(st, 20);
	r->transfer_seconds = sqlite3_column_double(st, 21);
	r->saved_seconds = sqlite3_column_double(st, 22);
	r->net_stop_seconds = sqlite3_column_double(st, 23);
	r->net_overlap_seconds = sqlite3_column_double(st, 24);
	r->pay = sqlite3_column_int(st, 25);
	t = sqlite3_column_text(st, 26);
	snprintf(r->quant, sizeof(r->quant), "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(st, 27);
	snprintf(r->link_intra, sizeof(r->link_intra), "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(st, 28);
	snprintf(r->link_inter, sizeof(r->link_inter), "%s", t ? (const char *)t : "");
	r->ranks_per_node = sqlite3_column_int(st, 29);
	t = sqlite3_column_text(st, 30);
	snprintf(r->hardware, sizeof(r->hardware), "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(st, 31);
	snprintf(r->engine, sizeof(r->engine), "%s", t ? (const char *)t : "");
	r->step_ms = sqlite3_column_double(st, 32);
	r->tokens = sqlite3_column_int64(st, 33);
	r->bytes_inter = sqlite3_column_int64(st, 34);
	r->moe_seconds = sqlite3_column_double(st, 35);
	r->baseline_moe_seconds = sqlite3_column_double(st, 36);
	r->baseline_step_seconds = sqlite3_column_double(st, 37);
}

/* Every row of sql (?1 bound to id) as an array of items of `size` bytes,
 * each filled by fill(st, item); *out is malloc'ed (NULL when there are no
 * rows).  `what` names the read in the error. */
static int read_rows(struct store *s, const char *sql, int64_t id, size_t size,
		     void (*fill)(sqlite3_stmt *st, void *item), const char *what, void **out,
		     size_t *n)
{
	sqlite3_stmt *st;
	char *v = NULL;
	size_t len = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = store_int_prepare(s, sql, &st)))
		return rc;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t c = cap ? 2 * cap : 16;
			char *nv = realloc(v, c * size);
			if (!nv) {
				free(v);
				sqlite3_finalize(st);
				return UTIL_ENOMEM;
			}
			v = nv;
			cap = c;
		}
		fill(st, v + len++ * size);
	}
	if (rc != SQLITE_DONE) {
		rc = set(s, UTIL_EDB, what); /* before finalize, which resets the message */
		sqlite3_finalize(st);
		free(v);
		return rc;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = len;
	return 0;
}

static void fill_replay(sqlite3_stmt *st, void *item)
{
	replay_from_row(st, item);
}

int store_sqlite_replay_list(struct store *s, int64_t run, struct store_replay **out, size_t *n)
{
	void *v;
	int rc = read_rows(s,
			   "SELECT " REPLAY_COLS " FROM replays WHERE ?1 < 0 OR run = ?1 "
			   "ORDER BY replay",
			   run, sizeof(**out), fill_replay, "listing replays", &v, n);

	*out = v;
	return rc;
}

int store_sqlite_replay_get(struct store *s, int64_t id, struct store_replay *out)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_int_prepare(s, "SELECT " REPLAY_COLS " FROM replays WHERE replay = ?1",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		replay_from_row(st, out);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = store_int_seterr(s, UTIL_ENOTFOUND, "no replay %lld in '%s'", (long long)id,
				      store_path(s));
	} else {
		rc = set(s, UTIL_EDB, "reading replay");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_sqlite_replay_series(struct store *s, int64_t replay, int layer, int64_t **steps,
			double **imbalance, double **base, size_t *n)
{
	sqlite3_stmt *st;
	size_t len = 0, cap = 1024;
	int64_t *sv = malloc(cap * sizeof(*sv));
	double *iv = malloc(cap * sizeof(*iv)), *bv = malloc(cap * sizeof(*bv));
	int rc;

	*steps = NULL;
	*imbalance = *base = NULL;
	*n = 0;
	if (!sv || !iv || !bv) {
		free(sv);
		free(iv);
		free(bv);
		return UTIL_ENOMEM;
	}
	if ((rc = store_int_prepare(s,
				    "SELECT step, sum(max_load), sum(mean_load), sum(base_max_load) "
				    "FROM replay_steps WHERE replay = ?1 AND (?2 < 0 OR layer = ?2) "
				    "GROUP BY step ORDER BY step",
				    &st)))
		goto fail;
	sqlite3_bind_int64(st, 1, replay);
	sqlite3_bind_int(st, 2, layer);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap *= 2;
			int64_t *a = realloc(sv, cap * sizeof(*sv));
			double *b = realloc(iv, cap * sizeof(*iv)), *c = realloc(bv, cap * sizeof(*bv));
			if (a)
				sv = a;
			if (b)
				iv = b;
			if (c)
				bv = c;
			if (!a || !b || !c) {
				sqlite3_finalize(st);
				rc = UTIL_ENOMEM;
				goto fail;
			}
		}
		double mean = sqlite3_column_double(st, 2);
		sv[len] = sqlite3_column_int64(st, 0);
		/* a step (or the layer) without tokens is not scored: NAN */
		iv[len] = mean > 0 ? sqlite3_column_double(st, 1) / mean : NAN;
		bv[len] = mean > 0 ? sqlite3_column_double(st, 3) / mean : NAN;
		len++;
	}
	if (rc != SQLITE_DONE) {
		rc = set(s, UTIL_EDB, "reading replay steps");
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	*steps = sv;
	*imbalance = iv;
	*base = bv;
	*n = len;
	return 0;
fail:
	free(sv);
	free(iv);
	free(bv);
	return rc;
}

static void fill_event(sqlite3_stmt *st, void *item)
{
	struct store_replay_event *e = item;

	e->event = sqlite3_column_int64(st, 0);
	e->step = sqlite3_column_int64(st, 1);
	e->effective_step = sqlite3_column_int64(st, 2);
	e->layers = sqlite3_column_int(st, 3);
	e->moves = sqlite3_column_int64(st, 4);
	e->bytes = sqlite3_column_int64(st, 5);
	e->transfer_seconds = sqlite3_column_double(st, 6);
	e->algo_seconds = sqlite3_column_double(st, 7);
	e->bytes_inter = sqlite3_column_int64(st, 8);
	e->transfer_intra_seconds = sqlite3_column_double(st, 9);
	e->transfer_inter_seconds = sqlite3_column_double(st, 10);
}

int store_sqlite_replay_events(struct store *s, int64_t replay, struct store_replay_event **out,
			size_t *n)
{
	void *v;
	int rc = read_rows(s,
			   "SELECT event, step, ifnull(effective_step, -1), layers, moves, "
			   "bytes, transfer_seconds, algo_seconds, bytes_inter, "
			   "transfer_intra_seconds, transfer_inter_seconds FROM replay_events "
			   "WHERE replay = ?1 ORDER BY event",
			   replay, sizeof(**out), fill_event, "reading replay events", &v, n);

	*out = v;
	return rc;
}

int store_sqlite_replay_event_moves(struct store *s, int64_t replay, int layers, size_t n_events,
			     int64_t **bytes_out)
{
	sqlite3_stmt *st;
	int64_t *v = calloc(n_events * (size_t)layers + 1, sizeof(*v));
	int rc;

	*bytes_out = NULL;
	if (!v)
		return UTIL_ENOMEM;
	if ((rc = store_int_prepare(s,
				    "SELECT event, layer, bytes FROM replay_event_layers "
				    "WHERE replay = ?1",
				    &st))) {
		free(v);
		return rc;
	}
	sqlite3_bind_int64(st, 1, replay);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t ev = sqlite3_column_int64(st, 0);
		int layer = sqlite3_column_int(st, 1);
		if (ev >= 0 && (size_t)ev < n_events && layer >= 0 && layer < layers)
			v[(size_t)ev * (size_t)layers + (size_t)layer] = sqlite3_column_int64(st, 2);
	}
	if (rc != SQLITE_DONE) {
		rc = set(s, UTIL_EDB, "reading replay event layers");
		free(v);
		v = NULL;
	} else {
		rc = 0;
	}
	sqlite3_finalize(st);
	*bytes_out = v;
	return rc;
}

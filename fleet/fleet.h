/*
 * fleet: moetrace's traces in ClickHouse, for a fleet of deployments.  A
 * small client for ClickHouse's HTTP interface (libcurl), the versioned
 * ClickHouse schema (docs/fleet.md) and `moetrace push`, which ships a
 * trace's runs, steps, counts and deployed placements idempotently.
 * Linked into the CLI only: libmoetrace never links libcurl.
 *
 * Ownership: a struct fleet_ch owns its curl handle; answers are written
 * into the caller's util_buf.  Errors: UTIL_EUSAGE / UTIL_EPARSE (exit 2)
 * for the user's mistakes (a malformed URL, refused credentials, a
 * database that is not a moetrace schema or is newer), UTIL_EIO (exit 1)
 * for the server's failures (unreachable, HTTP 5xx, a truncated or
 * malformed answer).  Messages name the URL without its password.
 */
#ifndef FLEET_FLEET_H
#define FLEET_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

/* Version of the ClickHouse schema, in moetrace_meta.version. */
#define FLEET_SCHEMA_VERSION 4
/* Default steps summed per counts_rollup row (docs/fleet.md has why). */
#define FLEET_ROLLUP_STEPS 100
/* Default steps per INSERT of `push`. */
#define FLEET_BATCH_STEPS 1024

/* clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE[?deployment=NAME&run=ID]
 * (parameter values %-encoded).  Without a user in the URL, the
 * environment's CLICKHOUSE_USER and CLICKHOUSE_PASSWORD are used. */
struct fleet_url {
	char user[128], password[256];
	char host[256];
	int port;
	char database[128];       /* [A-Za-z0-9_], not starting with a digit */
	char deployment[256];     /* "" if not given */
	char run[128];            /* a run name or id, "" if not given */
	char shown[1024];         /* the URL as messages show it: no password */
};

int fleet_url_parse(const char *s, struct fleet_url *u, struct util_err *err);

struct fleet_ch;

/* Initialises libcurl once per process, from any thread (fleet_ch_new
 * calls it). */
int fleet_client_init(void);

int fleet_ch_new(const struct fleet_url *u, struct fleet_ch **out, struct util_err *err);
void fleet_ch_free(struct fleet_ch *c);
/* Runs `query` (in the URL's database when in_db) with `body` (may be
 * NULL) as its input data; the answer goes to resp (may be NULL), reset
 * first.  0 or a negative code with err set. */
int fleet_ch_query(struct fleet_ch *c, const char *query, int in_db, const void *body,
		   size_t len, struct util_buf *resp, struct util_err *err);
/* A query in the URL's database answered in `format` (a ClickHouse
 * format name) unless it names one; read-only (readonly=2) unless write. */
int fleet_ch_query_opts(struct fleet_ch *c, const char *query, const char *format, int write,
			struct util_buf *resp, struct util_err *err);
/* `moetrace sql clickhouse://...`: runs one statement and prints the
 * answer; format is "table", "csv" or "json". */
int fleet_sql_run(const char *url, const char *sql, const char *format, int write,
		  struct util_err *err);
/* The URL the handle talks to. */
const struct fleet_url *fleet_ch_url(const struct fleet_ch *c);
/* Bytes sent in request bodies and queries so far. */
uint64_t fleet_ch_bytes_sent(const struct fleet_ch *c);
/* Appends `s` as a ClickHouse string literal ('...' with escapes). */
void fleet_sql_quote(struct util_buf *b, const char *s);
/* Appends " WHERE deployment = '...' AND run = '...'". */
void fleet_sql_where_run(struct util_buf *q, const char *deployment, const char *run);

/* The store backend reading moetrace traces from ClickHouse
 * (fleet/store_ch.c): makes store_open() take clickhouse:// URLs.  Called
 * once by the program's front before any store is opened. */
int fleet_store_register(void);

struct fleet_schema_opts {
	int rollup_steps;         /* 0: FLEET_ROLLUP_STEPS, or the existing schema's */
	const char *cluster;      /* NULL: no Distributed tables */
};

/* Creates the database and the schema if missing, migrates an older one,
 * refuses a newer one or a database holding other tables. */
int fleet_schema_ensure(struct fleet_ch *c, const struct fleet_schema_opts *o,
			struct util_err *err);

/* The steps per rollup window of the schema (moetrace_meta.rollup_steps). */
int fleet_schema_rollup_steps(struct fleet_ch *c, int *n, struct util_err *err);

struct fleet_push_stats {
	int64_t steps;            /* local steps of the run */
	int64_t sent;             /* steps whose counts were sent now */
	int64_t completed;        /* steps whose counts the server had, committed now */
	int64_t present;          /* steps the server had already */
	int64_t deployed_sent;    /* deployed placement rows sent */
};

/* Ships one run under (deployment, run->name); batch steps per INSERT. */
int fleet_push_run(struct fleet_ch *c, struct store *s, const struct store_run *run,
		   const char *deployment, int batch, struct fleet_push_stats *st,
		   struct util_err *err);
/* The same for the run's steps in [from, to] (the run's row and its
 * deployed placements are shipped whole: they are small).  Counts rows
 * missing for some layers are looked for over a whole run only (it reads
 * the run's whole counts key): a range is for steps holding every layer's
 * row, as the recorder writes them. */
int fleet_push_range(struct fleet_ch *c, struct store *s, const struct store_run *run,
		     const char *deployment, int64_t from, int64_t to, int batch,
		     struct fleet_push_stats *st, struct util_err *err);

/* Rollups only (`push --rollup-only`, the sink's rollup_only): per layer,
 * the sums of the counts of each window [k N, (k + 1) N) of steps (N the
 * schema's rollup_steps) into rollup_shipped, then one rollup_windows row
 * per window as its commit marker, never a counts or steps row.  Windows
 * are those holding a step of [from, to] (with the steps of the file
 * before `from` they hold); a window is shipped once complete: the file
 * holds a step at or past its last (within `to`).  Windows the server has
 * committed are skipped (their step counts must be the file's), windows
 * whose rows arrived without their marker are checked and committed.  A
 * run shipped at full resolution is refused (UTIL_EUSAGE), as a full push
 * of a run shipped as rollups is.  Stats: steps and sent / completed /
 * present count windows, except st->steps, the steps of [from, to] in
 * complete windows; *through is the last step of the last complete window
 * (from - 1 if none). */
/* The first step of the window holding `step`: k N with k N <= step <
 * (k + 1) N, negative steps too (as counts_rollup_mv's first_step). */
int64_t fleet_rollup_window(int64_t step, int n);
int fleet_push_rollup(struct fleet_ch *c, struct store *s, const struct store_run *run,
		      const char *deployment, int64_t from, int64_t to, int batch,
		      struct fleet_push_stats *st, int64_t *through, struct util_err *err);

/* The deployment a trace file is shipped under by default: its file name
 * without the extension ("traces/a.db" -> "a"). */
void fleet_default_deployment(const char *path, char *out, size_t cap);
/* A URL as messages show it, password or not parseable: the text between
 * "USER:" and the '@' is left out. */
void fleet_url_shown(const char *s, char *out, size_t cap);

/* ---- the live sink (fleet/sink.c) ------------------------------------------
 * Ships a trace a recorder is writing, as it commits: a thread of its own
 * reads the newly committed steps back from the file (a read-only
 * connection) and pushes them with fleet_push_range, so a retry never
 * duplicates a step.  The recorder tells it of each commit
 * (fleet_sink_committed: a lock and a signal, nothing else).  While the
 * server cannot be reached it retries with a doubling wait; steps waiting
 * beyond `backlog` are skipped for the sink, oldest first, and counted:
 * the file keeps them and `moetrace push` fills them in. */
#define FLEET_SINK_BACKLOG 100000
#define FLEET_SINK_WAIT_MS 5000

struct fleet_sink_opts {
	const char *deployment;   /* NULL: the URL's, else the file's name */
	int64_t backlog;          /* 0: FLEET_SINK_BACKLOG */
	int batch;                /* steps per INSERT, 0: FLEET_BATCH_STEPS */
	int wait_ms;              /* at close, how long to keep trying to ship
				     what is left (0: FLEET_SINK_WAIT_MS, < 0: none) */
	int retry_max_ms;         /* longest wait between attempts (0: 2000) */
	int rollup_only;          /* ship complete rollup windows alone (fleet_push_rollup) */
};

struct fleet_sink_stats {
	int64_t shipped;          /* steps the server acknowledged */
	int64_t skipped;          /* steps left to `moetrace push` (past the bound,
				     unshipped at close, or after the sink gave up) */
	int64_t retries;          /* failed attempts */
	int64_t lag;              /* steps committed, neither shipped nor skipped */
	int64_t last_shipped;     /* the newest step acknowledged, -1 if none */
	int last_error;           /* code of the last failed attempt, 0 after a success */
	int gave_up;              /* 1: a refusal that retrying cannot mend (credentials,
				     a database that is not moetrace's); see message */
	char message[512];        /* the last failure, "" if none */
};

struct fleet_sink;
/* Starts shipping run `run` of the trace at db_path to url; the steps the
 * file holds now are left out (the sink ships what is committed from
 * now on).  Contacts no server: an unreachable one is retried.
 * UTIL_EUSAGE for a malformed URL (err names it without its password). */
int fleet_sink_new(const char *url, const char *db_path, const struct store_run *run,
		   const struct fleet_sink_opts *o, struct fleet_sink **out,
		   struct util_err *err);
/* After the recorder committed n steps, the last of them last_step. */
void fleet_sink_committed(struct fleet_sink *k, int64_t last_step, int64_t n);
/* Ships what is left (for at most wait_ms), counts the rest as skipped and
 * stops the thread.  Stats stay readable. */
void fleet_sink_close(struct fleet_sink *k);
void fleet_sink_stats(struct fleet_sink *k, struct fleet_sink_stats *st);
void fleet_sink_free(struct fleet_sink *k); /* closes first; accepts NULL */

#endif

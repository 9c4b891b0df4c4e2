/*
 * store.c: the SQLite trace store.  Start at store_open(): it opens (or
 * creates) the file, applies the forward migrations in `migrations[]` up to
 * STORE_SCHEMA_VERSION inside one transaction, and sets WAL mode.  The
 * rest are prepared-statement wrappers: runs, steps + counts blobs, the
 * deployed placement.  All SQL binds parameters; nothing formats values.
 */
#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* clang-format off */
/* Migration i brings the schema from version i to i + 1.  Never edit a
 * landed migration: append a new one, bump STORE_SCHEMA_VERSION and add
 * the columns it makes to schema_promised below (test_store checks). */
static const char *const migrations[] = {
	/* 0 -> 1: runs, steps, counts, deployed placement */
	"CREATE TABLE runs ("
	"  run INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  model TEXT NOT NULL DEFAULT '',"
	"  layers INTEGER NOT NULL CHECK (layers > 0),"
	"  experts INTEGER NOT NULL CHECK (experts > 0),"
	"  topk INTEGER NOT NULL DEFAULT 0,"
	"  ranks INTEGER NOT NULL DEFAULT 0,"
	"  slots INTEGER NOT NULL DEFAULT 0,"
	"  ranks_per_node INTEGER NOT NULL DEFAULT 0,"
	"  first_layer INTEGER NOT NULL DEFAULT 0,"
	"  created REAL NOT NULL,"
	"  source TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE steps ("
	"  run INTEGER NOT NULL REFERENCES runs(run),"
	"  step INTEGER NOT NULL,"
	"  time REAL NOT NULL DEFAULT 0,"
	"  phase INTEGER NOT NULL DEFAULT 0,"   /* 0 unknown, 1 prefill, 2 decode */
	"  tokens INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"   /* encoded size of the step's counts blobs */
	"  PRIMARY KEY (run, step)) WITHOUT ROWID;"
	"CREATE TABLE counts ("
	"  run INTEGER NOT NULL,"
	"  step INTEGER NOT NULL,"
	"  layer INTEGER NOT NULL,"
	"  data BLOB NOT NULL,"                  /* codec tag byte + encoded E counts */
	"  PRIMARY KEY (run, step, layer));"
	"CREATE TABLE deployed ("
	"  run INTEGER NOT NULL REFERENCES runs(run),"
	"  step INTEGER NOT NULL,"                /* in force from this step on */
	"  layer INTEGER NOT NULL,"
	"  ranks INTEGER NOT NULL,"
	"  slots INTEGER NOT NULL,"
	"  phy2log BLOB NOT NULL,"               /* ranks*slots int32 little-endian */
	"  PRIMARY KEY (run, step, layer)) WITHOUT ROWID;",
	/* 1 -> 2: replays (moetrace replay) and their results */
	"CREATE TABLE replays ("
	"  replay INTEGER PRIMARY KEY,"
	"  run INTEGER NOT NULL REFERENCES runs(run),"
	"  created REAL NOT NULL,"
	"  algo TEXT NOT NULL,"
	"  ranks INTEGER NOT NULL,"
	"  slots INTEGER NOT NULL,"
	"  interval INTEGER NOT NULL,"            /* steps between decisions */
	"  window INTEGER NOT NULL,"              /* steps of heat a decision sees */
	"  delay INTEGER NOT NULL,"               /* steps from decision to effect */
	"  threshold REAL NOT NULL DEFAULT 0,"    /* 0: every layer is re-placed */
	"  episodes INTEGER NOT NULL DEFAULT 0,"
	"  max_moves INTEGER NOT NULL DEFAULT -1,"
	"  params TEXT NOT NULL DEFAULT '{}',"    /* JSON: all parameters, start, cost model */
	"  steps INTEGER NOT NULL DEFAULT 0,"
	"  imbalance_mean REAL, baseline_imbalance_mean REAL,"
	"  imbalance_p99 REAL, baseline_imbalance_p99 REAL,"
	"  events INTEGER NOT NULL DEFAULT 0,"
	"  moves INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  transfer_seconds REAL NOT NULL DEFAULT 0,"
	"  saved_seconds REAL NOT NULL DEFAULT 0,"    /* MoE straggler time saved */
	"  net_stop_seconds REAL NOT NULL DEFAULT 0,"  /* saved - stop-the-world transfers */
	"  net_overlap_seconds REAL NOT NULL DEFAULT 0);" /* saved - unhidden overlapped transfers */
	"CREATE TABLE replay_steps ("
	"  replay INTEGER NOT NULL,"
	"  step INTEGER NOT NULL,"
	"  layer INTEGER NOT NULL,"
	"  max_load REAL NOT NULL,"               /* under the placement in force */
	"  mean_load REAL NOT NULL,"
	"  base_max_load REAL NOT NULL,"          /* under the start placement, never changed */
	"  PRIMARY KEY (replay, step, layer)) WITHOUT ROWID;"
	"CREATE TABLE replay_events ("
	"  replay INTEGER NOT NULL,"
	"  event INTEGER NOT NULL,"
	"  step INTEGER NOT NULL,"                /* the decision: last step of its window */
	"  effective_step INTEGER,"               /* first step under the new placement; NULL if past the end */
	"  layers INTEGER NOT NULL,"              /* layers changed */
	"  moves INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL,"
	"  transfer_seconds REAL NOT NULL,"
	"  algo_seconds REAL NOT NULL,"
	"  PRIMARY KEY (replay, event)) WITHOUT ROWID;"
	"CREATE TABLE replay_event_layers ("
	"  replay INTEGER NOT NULL,"
	"  event INTEGER NOT NULL,"
	"  layer INTEGER NOT NULL,"
	"  moves INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL,"
	"  imbalance_before REAL NOT NULL,"       /* on the decision's window */
	"  imbalance_after REAL NOT NULL,"
	"  PRIMARY KEY (replay, event, layer)) WITHOUT ROWID;"
	"CREATE TABLE replay_layers ("
	"  replay INTEGER NOT NULL,"
	"  layer INTEGER NOT NULL,"
	"  imbalance_mean REAL NOT NULL, imbalance_p99 REAL NOT NULL,"
	"  baseline_mean REAL NOT NULL, baseline_p99 REAL NOT NULL,"
	"  moves INTEGER NOT NULL,"
	"  PRIMARY KEY (replay, layer)) WITHOUT ROWID;",
	/* 2 -> 3: every setting of a replay in its own column, the two-tier
	 * transfer and the serving units.  Older replays take what their params
	 * JSON recorded: they priced every copy at one link. */
	"ALTER TABLE replays ADD COLUMN pay INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE replays ADD COLUMN quant TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE replays ADD COLUMN link_intra TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE replays ADD COLUMN link_inter TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE replays ADD COLUMN ranks_per_node INTEGER NOT NULL DEFAULT 0;" /* 0: unknown */
	"ALTER TABLE replays ADD COLUMN hardware TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE replays ADD COLUMN engine TEXT NOT NULL DEFAULT '';"      /* engine preset */
	"ALTER TABLE replays ADD COLUMN step_ms REAL NOT NULL DEFAULT 0;"      /* measured; 0: estimated */
	"ALTER TABLE replays ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE replays ADD COLUMN bytes_inter INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE replays ADD COLUMN moe_seconds REAL NOT NULL DEFAULT 0;"
	"ALTER TABLE replays ADD COLUMN baseline_moe_seconds REAL NOT NULL DEFAULT 0;"
	"ALTER TABLE replays ADD COLUMN baseline_step_seconds REAL NOT NULL DEFAULT 0;"
	"ALTER TABLE replay_events ADD COLUMN bytes_inter INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE replay_events ADD COLUMN transfer_intra_seconds REAL NOT NULL DEFAULT 0;"
	"ALTER TABLE replay_events ADD COLUMN transfer_inter_seconds REAL NOT NULL DEFAULT 0;"
	"UPDATE replays SET"
	"  pay = ifnull(json_extract(params, '$.pay'), 0),"
	"  quant = ifnull(json_extract(params, '$.quant'), ''),"
	"  link_intra = ifnull(json_extract(params, '$.link'), ''),"
	"  link_inter = ifnull(json_extract(params, '$.link'), '')"
	"  WHERE json_valid(params);",
	/* 3 -> 4: engine dump files a following import has taken into a run */
	"CREATE TABLE imports ("
	"  run INTEGER NOT NULL REFERENCES runs(run),"
	"  name TEXT NOT NULL,"                   /* file name in the followed directory */
	"  size INTEGER NOT NULL,"                /* bytes */
	"  mtime INTEGER NOT NULL,"               /* modification time, ns since the epoch */
	"  first_step INTEGER NOT NULL,"          /* the steps it added */
	"  last_step INTEGER NOT NULL,"
	"  imported REAL NOT NULL,"               /* unix time */
	"  PRIMARY KEY (run, name, size, mtime)) WITHOUT ROWID;",
};
/* clang-format on */


static int set_err(struct store *s, int code, const char *fmt, ...) UTIL_PRINTF(3, 4);

static int set_err(struct store *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int store_int_seterr(struct store *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int store_int_prepare_cached(struct store *s, int id, const char *sql, sqlite3_stmt **st)
{
	if (!s->cached[id] && store_int_prepare(s, sql, &s->cached[id]))
		return UTIL_EDB;
	*st = s->cached[id];
	return 0;
}



sqlite3 *store_int_db(struct store *s)
{
	return s->ops == &store_sqlite_ops ? s->db : NULL;
}

static int sq_cache_size(struct store *s, int kib)
{
	char sql[64];

	/* PRAGMA takes no bound parameters: format the validated integer */
	if (kib < 0)
		return set_err(s, UTIL_ERANGE, "page cache of %d KiB", kib);
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", kib);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return set_err(s, UTIL_EDB, "cannot set the page cache: %s", sqlite3_errmsg(s->db));
	return 0;
}

static void sq_busy_timeout(struct store *s, int ms)
{
	sqlite3_busy_timeout(s->db, ms);
}

static int sq_locked(const struct store *s)
{
	int c = sqlite3_errcode(s->db) & 0xff;

	return c == SQLITE_BUSY || c == SQLITE_LOCKED;
}

static int exec(struct store *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		set_err(s, UTIL_EDB, "%s (in: %.80s)", msg ? msg : sqlite3_errmsg(s->db), sql);
		sqlite3_free(msg);
		return UTIL_EDB;
	}
	return 0;
}

int store_int_prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
		set_err(s, UTIL_EDB, "%s (in: %.80s)", sqlite3_errmsg(s->db), sql);
		return UTIL_EDB;
	}
	return 0;
}

static int user_version(struct store *s, int *v)
{
	sqlite3_stmt *st;
	int rc = store_int_prepare(s, "PRAGMA user_version", &st);

	if (rc)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*v = sqlite3_column_int(st, 0);
		rc = 0;
	} else {
		rc = store_int_dberr(s, "reading schema version");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Brings the schema from version `from` (read before any lock) to the
 * newest.  Another process may be creating or upgrading the same file at
 * the same moment: the version is read again once the write lock is held,
 * and if someone else moved it meanwhile nothing is done here and
 * STORE_MIGRATE_RACED is returned, for the caller to look at the file
 * again. */
#define STORE_MIGRATE_RACED 1

static int migrate(struct store *s, int from)
{
	char pragma[64];
	int rc, now = -1;

	if (from < 0 || from > STORE_SCHEMA_VERSION)
		return set_err(s, UTIL_EPARSE, "schema version %d is not one of moetrace's", from);
	if ((rc = exec(s, "BEGIN IMMEDIATE")))
		return rc;
	if ((rc = user_version(s, &now)))
		goto fail;
	if (now != from) {
		exec(s, "ROLLBACK");
		return STORE_MIGRATE_RACED;
	}
	for (int v = from; v < STORE_SCHEMA_VERSION; v++) {
		if ((rc = exec(s, migrations[v])))
			goto fail;
	}
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	if ((rc = exec(s, pragma)) || (rc = exec(s, "COMMIT")))
		goto fail;
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Is this an empty database (no tables)? */
static int is_empty(struct store *s, int *empty)
{
	sqlite3_stmt *st;
	int rc = store_int_prepare(s, "SELECT count(*) FROM sqlite_master", &st);

	if (rc)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_int_dberr(s, "reading schema");
	} else {
		*empty = sqlite3_column_int(st, 0) == 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* The code an SQLite failure on a file given to read maps to: a file that
 * is not a database, or a corrupt one, is bad input (exit status 2); any
 * other failure (permissions, I/O, a lock) is a runtime one (1). */
static int db_code(sqlite3 *db)
{
	int c = sqlite3_errcode(db) & 0xff;

	return c == SQLITE_NOTADB || c == SQLITE_CORRUPT ? UTIL_EPARSE : UTIL_EDB;
}

int store_int_dberr(struct store *s, const char *what)
{
	return set_err(s, db_code(s->db), "%s: %s", what, sqlite3_errmsg(s->db));
}

/* Every (table, column) of the main schema as "\ntable.column" lines
 * ending in "\n", for strstr; sqlite3_free it; NULL on failure (SQLite's
 * message in db, or out of memory).  No util_buf: the store is part of the
 * embedding library, which must not abort. */
static char *schema_columns(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	sqlite3_str *b;
	int rc;

	if (sqlite3_prepare_v2(db,
			       "SELECT m.name, p.name FROM main.sqlite_master m, "
			       "pragma_table_info(m.name, 'main') p WHERE m.type = 'table'",
			       -1, &st, NULL) != SQLITE_OK)
		return NULL;
	b = sqlite3_str_new(db);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		sqlite3_str_appendf(b, "\n%s.%s", (const char *)sqlite3_column_text(st, 0),
				    (const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	sqlite3_str_appendchar(b, 1, '\n');
	if (rc != SQLITE_DONE || sqlite3_str_errcode(b) != SQLITE_OK) {
		sqlite3_free(sqlite3_str_finish(b));
		return NULL;
	}
	return sqlite3_str_finish(b);
}

/* The columns each schema version promises, in the order the migrations
 * create them (tables as created, each one's columns as added): version
 * `since` added them.  The migrations are the truth; this is their result,
 * written out so that opening a file does not replay them (replaying them
 * into an in-memory database took three quarters of the CPU time of
 * `moetrace info` on a small trace: ALTER TABLE reparses the schema).
 * test_store checks it against the replay for every version, so a new
 * migration that is not written here fails there. */
static const struct {
	int since;
	const char *table, *columns; /* separated by one space */
} schema_promised[] = {
	/* clang-format off */
	{ 1, "runs",
	  "run name model layers experts topk ranks slots ranks_per_node "
	  "first_layer created source" },
	{ 1, "steps",
	  "run step time phase tokens bytes" },
	{ 1, "counts",
	  "run step layer data" },
	{ 1, "deployed",
	  "run step layer ranks slots phy2log" },
	{ 2, "replays",
	  "replay run created algo ranks slots interval window delay threshold "
	  "episodes max_moves params steps imbalance_mean "
	  "baseline_imbalance_mean imbalance_p99 baseline_imbalance_p99 events "
	  "moves bytes transfer_seconds saved_seconds net_stop_seconds "
	  "net_overlap_seconds" },
	{ 3, "replays",
	  "pay quant link_intra link_inter ranks_per_node hardware engine "
	  "step_ms tokens bytes_inter moe_seconds baseline_moe_seconds "
	  "baseline_step_seconds" },
	{ 2, "replay_steps",
	  "replay step layer max_load mean_load base_max_load" },
	{ 2, "replay_events",
	  "replay event step effective_step layers moves bytes transfer_seconds "
	  "algo_seconds" },
	{ 3, "replay_events",
	  "bytes_inter transfer_intra_seconds transfer_inter_seconds" },
	{ 2, "replay_event_layers",
	  "replay event layer moves bytes imbalance_before imbalance_after" },
	{ 2, "replay_layers",
	  "replay layer imbalance_mean imbalance_p99 baseline_mean baseline_p99 "
	  "moves" },
	{ 4, "imports",
	  "run name size mtime first_step last_step imported" },
	/* clang-format on */
};

char *store_int_schema_promised(int version)
{
	sqlite3_str *b = sqlite3_str_new(NULL);

	for (size_t i = 0; i < sizeof(schema_promised) / sizeof(schema_promised[0]); i++) {
		const char *c = schema_promised[i].columns;
		if (schema_promised[i].since > version)
			continue;
		while (*c) {
			size_t n = strcspn(c, " ");
			sqlite3_str_appendf(b, "\n%s.%.*s", schema_promised[i].table, (int)n, c);
			c += n + (c[n] == ' ');
		}
	}
	sqlite3_str_appendchar(b, 1, '\n');
	if (sqlite3_str_errcode(b) != SQLITE_OK) {
		sqlite3_free(sqlite3_str_finish(b));
		return NULL;
	}
	return sqlite3_str_finish(b);
}

char *store_int_schema_replayed(int version)
{
	sqlite3 *mem = NULL;
	char *cols = NULL;

	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ==
	    SQLITE_OK) {
		int v = 0;
		while (v < version && v < STORE_SCHEMA_VERSION &&
		       sqlite3_exec(mem, migrations[v], NULL, NULL, NULL) == SQLITE_OK)
			v++;
		if (v == version)
			cols = schema_columns(mem);
	}
	sqlite3_close(mem);
	return cols;
}

/* Is there a table (not a view) of that name in main, and with that
 * column (NULL: any)?  1 yes, 0 no, -1 when SQLite could not tell (its
 * message in db).  Looked up in the schema SQLite has parsed: no query. */
static int has_column(sqlite3 *db, const char *table, const char *column)
{
	int rc = sqlite3_table_column_metadata(db, "main", table, column, NULL, NULL, NULL, NULL,
					       NULL);

	return rc == SQLITE_OK ? 1 : (rc & 0xff) == SQLITE_ERROR ? 0 : -1;
}

/* Do the tables hold every column schema version `version` promises
 * (schema_promised)?  A table that lost a column, or is missing, would
 * otherwise surface as "no such column" halfway through a command, or not
 * at all (info reads runs and steps only).  Looked up in the schema SQLite
 * has parsed anyway (docs/robustness.md). */
static int schema_check(struct store *s, int version, struct util_err *err)
{
	for (size_t i = 0; i < sizeof(schema_promised) / sizeof(schema_promised[0]); i++) {
		const char *t = schema_promised[i].table, *c = schema_promised[i].columns;
		if (schema_promised[i].since > version)
			continue;
		while (*c) {
			char col[64];
			size_t n = strcspn(c, " ");
			int has;
			snprintf(col, sizeof(col), "%.*s", (int)n, c);
			c += n + (c[n] == ' ');
			if ((has = has_column(s->db, t, col)) > 0)
				continue;
			if (has == 0 && (has = has_column(s->db, t, NULL)) == 1)
				return util_err_set(err, UTIL_EPARSE,
						    "'%s' is not a moetrace trace or is corrupt: table "
						    "%s lacks column %s",
						    s->path, t, col);
			if (has == 0)
				return util_err_set(err, UTIL_EPARSE,
						    "'%s' is not a moetrace trace or is corrupt: no "
						    "table %s",
						    s->path, t);
			return util_err_set(err, db_code(s->db), "cannot read '%s': %s", s->path,
					    sqlite3_errmsg(s->db));
		}
	}
	return 0;
}

/* "file:" URI of a path for sqlite3_open_v2(SQLITE_OPEN_URI), every byte
 * outside a safe set percent-encoded; malloc'ed. */
static char *file_uri(const char *path, const char *query)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 3 * strlen(path) + strlen(query) + 16;
	char *u = malloc(n), *o = u;

	if (!u)
		return NULL;
	o += snprintf(o, n, "%s", path[0] == '/' ? "file://" : "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("/._-~", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	snprintf(o, n - (size_t)(o - u), "?%s", query);
	return u;
}

static int db_open(struct store *s, const char *name, int oflags)
{
	if (sqlite3_open_v2(name, &s->db, oflags, NULL) != SQLITE_OK)
		return -1;
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 5000);
	/* Defensive: a trace may come from someone else. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	return 0;
}

/* Does PATH + suffix exist with content? */
static int side_file(const char *path, const char *suffix)
{
	size_t n = strlen(path) + strlen(suffix) + 1;
	char *p = malloc(n);
	struct stat sb;
	int has;

	if (!p)
		return 1; /* the cautious answer */
	snprintf(p, n, "%s%s", path, suffix);
	has = stat(p, &sb) == 0 && sb.st_size > 0;
	free(p);
	return has;
}

/* A read-only open of a trace in WAL mode fails when SQLite cannot create
 * the -shm index beside it (a directory the user may not write).  Without
 * a -wal file holding frames, the database file alone is the whole trace,
 * and SQLite can read it as immutable (no index, no locks).  With frames
 * in the -wal, reading the file alone would miss committed steps: refuse.
 * (Likewise a rollback journal, which an immutable open would ignore.)
 * Returns 0 when reopened, else an error in err. */
static int reopen_immutable(struct store *s, struct util_err *err)
{
	char *uri;

	if (side_file(s->path, "-journal"))
		return util_err_set(err, UTIL_EIO,
				    "cannot read '%s': a write to it was interrupted ('%s-journal' "
				    "holds its rollback), and SQLite cannot roll it back in a "
				    "directory this user may not write; make the directory writable",
				    s->path, s->path);
	if (side_file(s->path, "-wal"))
		return util_err_set(err, UTIL_EIO,
				    "cannot read '%s': its write-ahead log '%s-wal' holds changes "
				    "not yet in the file, and SQLite cannot create the index it "
				    "needs in a directory this user may not write; make the "
				    "directory writable, or have its owner checkpoint the log "
				    "(sqlite3 '%s' 'PRAGMA wal_checkpoint(TRUNCATE)')",
				    s->path, s->path, s->path);
	if (!(uri = file_uri(s->path, "immutable=1")))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	sqlite3_close_v2(s->db);
	s->db = NULL;
	if (db_open(s, uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX)) {
		util_err_set(err, UTIL_EIO, "cannot open '%s': %s", s->path,
			     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		free(uri);
		return UTIL_EIO;
	}
	free(uri);
	return 0;
}

/* A reader maps the file (on) instead of copying its pages into a heap
 * cache: fewer page faults (the kernel maps file pages many at a time), no
 * copy, which suits reading blobs.  A walk over every page of an index (a
 * count) is the exception: the first touch of each mapped page is a page
 * fault, and reading the pages into the cache is faster (off, then on
 * again).  Advice only: SQLite reads as before where it cannot map; a
 * writer never maps. */
static void reader_map(struct store *s, int on)
{
	if (s->readonly)
		(void)sqlite3_exec(s->db, on ? "PRAGMA mmap_size=1073741824" : "PRAGMA mmap_size=0",
				   NULL, NULL, NULL);
}

/* Opens `file` as the trace `path` (the name messages and store_path()
 * give; the two differ while a new database is staged). */
static int open_file(const char *file, const char *path, int flags, struct store **out,
		     struct util_err *err)
{
	struct store *s;
	struct stat sb;
	int rc, version = 0, empty = 0, raced = 0, busy = 0;
	int oflags, staged = strcmp(file, path) != 0;

	*out = NULL;
	if (stat(file, &sb) != 0) {
		if (!(flags & STORE_CREATE) || (flags & STORE_READONLY))
			return util_err_set(err, UTIL_ENOTFOUND, "cannot open '%s': %s", path,
					    "No such file or directory");
	} else if (!S_ISREG(sb.st_mode)) {
		return util_err_set(err, UTIL_EIO, "cannot open '%s': not a regular file", path);
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	s->ops = &store_sqlite_ops;
	s->path = strdup(path);
	s->readonly = !!(flags & STORE_READONLY);
	oflags = s->readonly ? SQLITE_OPEN_READONLY
			     : SQLITE_OPEN_READWRITE | ((flags & STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);
	oflags |= SQLITE_OPEN_NOMUTEX;
	if (!s->path || db_open(s, file, oflags)) {
		util_err_set(err, UTIL_EIO, "cannot open '%s': %s", path,
			     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		store_free(s);
		return UTIL_EIO;
	}
	/* A staged database is nobody's until store_publish() moves it into
	 * place, which syncs it first: the syncs of every commit before that
	 * (the schema's, the WAL's, each batch's) protect nothing. */
	if (staged && exec(s, "PRAGMA synchronous=OFF")) {
		util_err_set(err, UTIL_EDB, "cannot configure '%s': %s", path, s->errmsg);
		store_free(s);
		return UTIL_EDB;
	}

again:
	rc = is_empty(s, &empty);
	if (rc && s->readonly &&
	    ((sqlite3_errcode(s->db) & 0xff) == SQLITE_READONLY ||
	     (sqlite3_errcode(s->db) & 0xff) == SQLITE_CANTOPEN)) {
		if (reopen_immutable(s, err)) {
			store_free(s);
			return err->code;
		}
		rc = is_empty(s, &empty);
	}
	if (rc == 0)
		rc = user_version(s, &version);
	if (rc) {
		int code = db_code(s->db);
		util_err_set(err, code, "cannot read '%s': %s", path,
			     (sqlite3_errcode(s->db) & 0xff) == SQLITE_NOTADB
				     ? "not a SQLite database (or corrupt); a CSV, JSON lines or "
				       "engine dump is loaded with 'moetrace import FILE --into DB'"
				     : s->errmsg);
		store_free(s);
		return code;
	}
	if (version > STORE_SCHEMA_VERSION) {
		util_err_set(err, UTIL_EPARSE,
			     "'%s' has schema version %d, newer than this moetrace knows (%d); "
			     "upgrade moetrace",
			     path, version, STORE_SCHEMA_VERSION);
		store_free(s);
		return UTIL_EPARSE;
	}
	if (version < 0) { /* PRAGMA user_version is signed */
		util_err_set(err, UTIL_EPARSE,
			     "'%s' is an SQLite database but not a moetrace trace (schema version "
			     "%d)",
			     path, version);
		store_free(s);
		return UTIL_EPARSE;
	}
	if (version == 0 && !empty) {
		util_err_set(err, UTIL_EPARSE, "'%s' is an SQLite database but not a moetrace trace",
			     path);
		store_free(s);
		return UTIL_EPARSE;
	}
	/* the tables must be what the version says before anything reads them
	 * (or a migration builds on them) */
	if (version > 0 && (rc = schema_check(s, version, err))) {
		store_free(s);
		return rc;
	}
	if (version < STORE_SCHEMA_VERSION) {
		if (s->readonly) {
			if (empty)
				util_err_set(err, UTIL_EPARSE, "'%s' is empty, not a moetrace trace",
					     path);
			else
				util_err_set(err, UTIL_EPARSE,
					     "'%s' has schema version %d; open it read-write once "
					     "to upgrade it",
					     path, version);
			store_free(s);
			return UTIL_EPARSE;
		}
		rc = exec(s, "PRAGMA journal_mode=WAL");
		/* Two processes creating one database switch it to WAL at
		 * once: each reads it, then wants to write, and SQLite refuses
		 * one of them at once (SQLITE_BUSY without the busy timeout,
		 * which could deadlock).  That one looks again once the other
		 * is done, for as long as the busy timeout (5 s). */
		if (rc && (sqlite3_errcode(s->db) & 0xff) == SQLITE_BUSY && ++busy < 100) {
			sqlite3_sleep(50);
			goto again;
		}
		if (rc == 0)
			rc = migrate(s, version);
		/* another process created or upgraded it meanwhile: check
		 * what it made, as any file found on opening */
		if (rc == STORE_MIGRATE_RACED && ++raced < 8)
			goto again;
		if (rc) {
			if (rc == STORE_MIGRATE_RACED)
				set_err(s, UTIL_EDB, "its schema version keeps changing");
			util_err_set(err, UTIL_EDB, "cannot initialise '%s': %s", path, s->errmsg);
			store_free(s);
			return UTIL_EDB;
		}
	}
	reader_map(s, 1);
	if (!s->readonly && !staged && exec(s, "PRAGMA synchronous=NORMAL")) {
		util_err_set(err, UTIL_EDB, "cannot configure '%s': %s", path, s->errmsg);
		store_free(s);
		return UTIL_EDB;
	}
	*out = s;
	return 0;
}

/* Removes a database file and the files SQLite keeps beside it. */
static void remove_files(const char *file)
{
	static const char *const side[] = { "-wal", "-shm", "-journal" };
	size_t n = strlen(file) + 16;
	char *p = malloc(n);

	unlink(file);
	for (size_t i = 0; p && i < sizeof(side) / sizeof(side[0]); i++) {
		snprintf(p, n, "%s%s", file, side[i]);
		unlink(p);
	}
	free(p);
}

/* A command interrupted (SIGINT, SIGTERM, SIGHUP) while it stages a new
 * database removes the staged files before it dies, so that nothing of
 * it stays behind.  The names are built before they are registered; the
 * handler only unlinks (async-signal-safe) and re-raises.  Handlers are
 * installed only where the signal has its default action: a program that
 * handles these signals itself keeps its handlers (and its cleanup). */
#define STAGE_MAX 4
#define STAGE_FILES 4 /* the file, -wal, -shm, -journal */

static char *volatile staged_files[STAGE_MAX][STAGE_FILES];
static const int stage_signals[] = { SIGINT, SIGTERM, SIGHUP };

static void on_stage_signal(int sig)
{
	for (int i = 0; i < STAGE_MAX; i++)
		for (int j = 0; j < STAGE_FILES; j++)
			if (staged_files[i][j])
				unlink(staged_files[i][j]);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void stage_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(stage_signals) / sizeof(stage_signals[0]); i++)
		sigaddset(&set, stage_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

/* Registers the files of staged database `file` for removal on a signal. */
static void stage_register(const char *file)
{
	static const char *const side[STAGE_FILES] = { "", "-wal", "-shm", "-journal" };
	sigset_t old;
	int slot = -1;

	stage_block(&old);
	for (int i = 0; i < STAGE_MAX && slot < 0; i++)
		if (!staged_files[i][0])
			slot = i;
	for (int j = 0; slot >= 0 && j < STAGE_FILES; j++) {
		size_t n = strlen(file) + strlen(side[j]) + 1;
		char *p = malloc(n);
		if (p)
			snprintf(p, n, "%s%s", file, side[j]);
		staged_files[slot][j] = p;
	}
	for (size_t i = 0; slot >= 0 && i < sizeof(stage_signals) / sizeof(stage_signals[0]);
	     i++) {
		struct sigaction sa, cur;
		if (sigaction(stage_signals[i], NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
		    cur.sa_handler == SIG_DFL) {
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_stage_signal;
			sigemptyset(&sa.sa_mask);
			sigaction(stage_signals[i], &sa, NULL);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void stage_unregister(const char *file)
{
	sigset_t old;

	stage_block(&old);
	for (int i = 0; i < STAGE_MAX; i++) {
		if (!staged_files[i][0] || strcmp(staged_files[i][0], file))
			continue;
		for (int j = 0; j < STAGE_FILES; j++) {
			char *p = staged_files[i][j];
			staged_files[i][j] = NULL;
			free(p);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Creates an empty file of a name no other process uses, beside path:
 * "PATH.new-PID-N"; malloc'ed name, NULL with err set on failure. */
static char *stage_name(const char *path, struct util_err *err)
{
	size_t n = strlen(path) + 48;
	char *tmp = malloc(n);

	if (!tmp) {
		util_err_set(err, UTIL_ENOMEM, "out of memory");
		return NULL;
	}
	for (unsigned i = 0; i < 1000; i++) {
		int fd;
		snprintf(tmp, n, "%s.new-%ld-%u", path, (long)getpid(), i);
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0) {
			close(fd);
			return tmp;
		}
		if (errno != EEXIST)
			break;
	}
	util_err_set(err, UTIL_EIO, "cannot open '%s': %s", path, strerror(errno));
	free(tmp);
	return NULL;
}

int store_sqlite_open(const char *path, int flags, struct store **out, struct util_err *err)
{
	struct stat sb;
	sigset_t old;
	char *tmp;
	int rc;

	if (!(flags & STORE_STAGE) || !(flags & STORE_CREATE) || (flags & STORE_READONLY) ||
	    stat(path, &sb) == 0 || errno != ENOENT)
		return open_file(path, path, flags & ~STORE_STAGE, out, err);
	/* a new database: build it under a private name; store_publish()
	 * moves it into place, store_free() removes it */
	stage_block(&old); /* no signal between creating the name and registering it */
	if ((tmp = stage_name(path, err)))
		stage_register(tmp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!tmp)
		return err->code;
	if ((rc = open_file(tmp, path, STORE_CREATE, out, err))) {
		remove_files(tmp);
		stage_unregister(tmp);
		free(tmp);
		return rc;
	}
	(*out)->stage = tmp;
	return 0;
}

static void close_db(struct store *s)
{
	for (int i = 0; i < STORE_STMT_COUNT; i++) {
		sqlite3_finalize(s->cached[i]);
		s->cached[i] = NULL;
	}
	sqlite3_close_v2(s->db);
	s->db = NULL;
}

/* Does path + suffix exist (even empty)? */
static int side_exists(const char *path, const char *suffix)
{
	char p[4096];
	struct stat sb;

	if ((size_t)snprintf(p, sizeof(p), "%s%s", path, suffix) >= sizeof(p))
		return 0;
	return stat(p, &sb) == 0;
}

/* A read-only connection cannot remove the -wal and -shm files that reading
 * a WAL-mode trace creates beside it; the last read-write connection to
 * close does, after checkpointing.  So a reader that leaves them closes one
 * such connection, and SQLite's own locking lets it remove them only when
 * no other connection has the trace open (a live recorder keeps its
 * files).  Best effort and silent: on any failure the files stay, as before. */
static void tidy_side_files(const char *path)
{
	sqlite3 *db = NULL;

	if (!path || access(path, W_OK) != 0 ||
	    (!side_exists(path, "-wal") && !side_exists(path, "-shm")))
		return;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ==
	    SQLITE_OK) {
		sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
		/* a read opens the WAL, so that the close runs its cleanup */
		sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	}
	sqlite3_close(db);
}

static void sq_close(struct store *s)
{
	int tidy;

	if (!s)
		return;
	tidy = s->readonly && s->db && !s->stage;
	close_db(s);
	if (tidy)
		tidy_side_files(s->path);
	if (s->stage) {
		remove_files(s->stage);
		stage_unregister(s->stage);
		free(s->stage);
	}
}

/* The runs of the staged database `from` (with their steps, counts and
 * deployed placements) added to the database at s->path, which another
 * process created while `from` was being written.  One transaction. */
static int copy_runs(const char *from, const char *path, struct util_err *err)
{
	/* clang-format off */
	static const char *const sql[] = {
		"INSERT INTO main.steps (run, step, time, phase, tokens, bytes) "
		"SELECT ?2, step, time, phase, tokens, bytes FROM staged.steps WHERE run = ?1",
		"INSERT INTO main.counts (run, step, layer, data) "
		"SELECT ?2, step, layer, data FROM staged.counts WHERE run = ?1",
		"INSERT INTO main.deployed (run, step, layer, ranks, slots, phy2log) "
		"SELECT ?2, step, layer, ranks, slots, phy2log FROM staged.deployed WHERE run = ?1",
	};
	/* clang-format on */
	struct store *t = NULL;
	sqlite3_stmt *st = NULL, *runs = NULL;
	int rc, step;

	if ((rc = open_file(path, path, 0, &t, err)))
		return rc;
	if ((rc = store_int_prepare(t, "ATTACH DATABASE ?1 AS staged", &st)))
		goto dberr;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (step != SQLITE_DONE) {
		rc = store_int_dberr(t, "attaching the new runs");
		goto dberr;
	}
	if ((rc = store_begin(t)))
		goto dberr;
	if ((rc = store_int_prepare(t, "SELECT run, name FROM staged.runs ORDER BY run", &runs)))
		goto fail;
	while ((step = sqlite3_step(runs)) == SQLITE_ROW) {
		int64_t old = sqlite3_column_int64(runs, 0), id;
		if ((rc = store_int_prepare(t,
					    "INSERT INTO main.runs (name, model, layers, experts, "
					    "topk, ranks, slots, ranks_per_node, first_layer, created, "
					    "source) SELECT name, model, layers, experts, topk, ranks, "
					    "slots, ranks_per_node, first_layer, created, source "
					    "FROM staged.runs WHERE run = ?1",
					    &st)))
			goto fail;
		sqlite3_bind_int64(st, 1, old);
		step = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
		if (step != SQLITE_DONE) {
			if (sqlite3_extended_errcode(t->db) == SQLITE_CONSTRAINT_UNIQUE)
				rc = set_err(t, UTIL_EUSAGE,
					     "a run named '%s' already exists (another process "
					     "created the file meanwhile)",
					     (const char *)sqlite3_column_text(runs, 1));
			else
				rc = store_int_dberr(t, "adding the run");
			goto fail;
		}
		id = sqlite3_last_insert_rowid(t->db);
		for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
			if ((rc = store_int_prepare(t, sql[i], &st)))
				goto fail;
			sqlite3_bind_int64(st, 1, old);
			sqlite3_bind_int64(st, 2, id);
			step = sqlite3_step(st);
			sqlite3_finalize(st);
			st = NULL;
			if (step != SQLITE_DONE) {
				rc = store_int_dberr(t, "copying the run");
				goto fail;
			}
		}
	}
	if (step != SQLITE_DONE) {
		rc = store_int_dberr(t, "reading the new runs");
		goto fail;
	}
	sqlite3_finalize(runs);
	runs = NULL;
	if ((rc = store_commit(t)))
		goto dberr;
	store_free(t);
	return 0;
fail:
	sqlite3_finalize(runs);
	store_rollback(t);
dberr:
	util_err_set(err, rc, "cannot add to '%s': %s", path, t->errmsg);
	store_free(t);
	return rc;
}

/* Makes the directory entry of path durable. */
static void sync_dir(const char *path)
{
	char *d = strdup(path), *slash;
	int fd;

	if (!d)
		return;
	slash = strrchr(d, '/');
	if (slash == d)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	fd = open(slash ? d : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(d);
}

static int sq_publish(struct store *s, struct util_err *err)
{
	int rc = 0, log = -1, done = -1;

	if (!s)
		return 0;
	if (!s->stage) {
		store_free(s);
		return 0;
	}
	if (s->depth) {
		rc = util_err_set(err, UTIL_ESTATE, "'%s': a transaction is still open",
				  s->path);
		goto out;
	}
	/* everything into the database file itself: the file is what moves.
	 * synchronous=NORMAL again (open_file staged it OFF): the checkpoint
	 * syncs the log before it copies and the file after, so the file is
	 * on disk before its name is. */
	if (exec(s, "PRAGMA synchronous=NORMAL") ||
	    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done) !=
		    SQLITE_OK ||
	    log != done) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", s->path,
				  sqlite3_errmsg(s->db));
		goto out;
	}
	close_db(s);
	if (side_file(s->stage, "-wal")) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': its log was not checkpointed",
				  s->path);
		goto out;
	}
	/* never over a file another process created meanwhile */
	if (renameat2(AT_FDCWD, s->stage, AT_FDCWD, s->path, RENAME_NOREPLACE) == 0) {
		stage_unregister(s->stage);
		free(s->stage);
		s->stage = NULL;
	} else if (errno != EEXIST && link(s->stage, s->path) == 0) {
		/* a file system without renameat2 */
	} else if (errno == EEXIST) {
		rc = copy_runs(s->stage, s->path, err);
	} else {
		rc = util_err_set(err, UTIL_EIO, "cannot create '%s': %s", s->path,
				  strerror(errno));
	}
	if (rc == 0)
		sync_dir(s->path);
out:
	store_free(s); /* removes what is left of the staged files */
	return rc;
}

/* The outermost level is BEGIN IMMEDIATE, which takes the write lock at
 * once and so waits (busy timeout) for another process's writer; a
 * deferred transaction that read first would fail at its first write
 * with "database is locked" as soon as another process had committed
 * meanwhile.  Inner levels are savepoints.  (If the connection is in a
 * transaction of its caller's, the outermost level is a savepoint too.) */
static int sq_begin(struct store *s)
{
	char sql[64];

	if (s->depth == 0 && sqlite3_get_autocommit(s->db)) {
		if (exec(s, "BEGIN IMMEDIATE"))
			return UTIL_EDB;
		s->began = 1;
	} else {
		snprintf(sql, sizeof(sql), "SAVEPOINT sp%d", s->depth);
		if (exec(s, sql))
			return UTIL_EDB;
		if (s->depth == 0)
			s->began = 0;
	}
	s->depth++;
	return 0;
}

/* After a failed COMMIT or RELEASE SQLite may have rolled the whole
 * transaction back on its own (a full disk, an I/O error) or kept it open;
 * either way nothing of it is durable.  End it for certain so that the
 * next store_begin() starts a transaction that can commit: otherwise it
 * would nest inside the dead one and every later "commit" would only
 * release into it, to be discarded at close. */
static void abandon(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, s->began ? "ROLLBACK" : "ROLLBACK TO sp0; RELEASE sp0", NULL,
			     NULL, NULL);
	s->depth = 0;
}

static int sq_commit(struct store *s)
{
	char sql[64];

	if (s->depth == 0)
		return set_err(s, UTIL_ESTATE, "commit without a transaction");
	if (s->depth == 1 && s->began)
		snprintf(sql, sizeof(sql), "COMMIT");
	else
		snprintf(sql, sizeof(sql), "RELEASE sp%d", s->depth - 1);
	if (exec(s, sql)) {
		/* an inner savepoint's release writes nothing; the outermost
		 * level is the commit: when it fails, the transaction is gone */
		if (s->depth == 1 || sqlite3_get_autocommit(s->db))
			abandon(s);
		else
			store_rollback(s);
		return UTIL_EDB;
	}
	s->depth--;
	return 0;
}

static int sq_rollback(struct store *s)
{
	char sql[96];

	if (s->depth == 0)
		return set_err(s, UTIL_ESTATE, "rollback without a transaction");
	if (sqlite3_get_autocommit(s->db)) {
		/* SQLite already rolled the whole transaction back after an
		 * error (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) */
		s->depth = 0;
		return 0;
	}
	if (s->depth == 1) {
		abandon(s);
		return 0;
	}
	s->depth--;
	snprintf(sql, sizeof(sql), "ROLLBACK TO sp%d; RELEASE sp%d", s->depth, s->depth);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		abandon(s);
		return UTIL_EDB; /* errmsg keeps the failure that led here */
	}
	return 0;
}

int store_step_check(int64_t step, struct util_err *err)
{
	if (step < STORE_STEP_MIN || step > STORE_STEP_MAX)
		return util_err_set(err, UTIL_ERANGE,
				    "step %lld is outside the range a trace holds (%lld to %lld)",
				    (long long)step, (long long)STORE_STEP_MIN,
				    (long long)STORE_STEP_MAX);
	return 0;
}

int store_tokens_check(int64_t tokens, struct util_err *err)
{
	if (tokens < 0 || tokens > STORE_TOKENS_MAX)
		return util_err_set(err, UTIL_ERANGE,
				    "%lld tokens in a step is outside the range a trace holds (0 to "
				    "%lld)",
				    (long long)tokens, (long long)STORE_TOKENS_MAX);
	return 0;
}

const char *store_phase_name(int phase)
{
	switch (phase) {
	case STORE_PHASE_PREFILL: return "prefill";
	case STORE_PHASE_DECODE: return "decode";
	}
	return "unknown";
}

int store_phase_parse(const char *s)
{
	if (!strcmp(s, "prefill") || !strcmp(s, "1"))
		return STORE_PHASE_PREFILL;
	if (!strcmp(s, "decode") || !strcmp(s, "2"))
		return STORE_PHASE_DECODE;
	if (!strcmp(s, "unknown") || !strcmp(s, "0") || !*s)
		return STORE_PHASE_UNKNOWN;
	return -1;
}

/* ---- runs ---------------------------------------------------------------- */

static void copy_text(char *dst, size_t n, const unsigned char *src)
{
	snprintf(dst, n, "%s", src ? (const char *)src : "");
}

#define RUN_COLS "run, name, model, layers, experts, topk, ranks, slots, ranks_per_node, " \
		 "first_layer, created, source"

/* An int column, saturated: sqlite3_column_int() keeps the low 32 bits, so
 * 2^32 + 8 experts would read as 8 and pass the shape check. */
static int column_int_sat(sqlite3_stmt *st, int i)
{
	int64_t v = sqlite3_column_int64(st, i);

	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int)v;
}

static void run_from_row(sqlite3_stmt *st, struct store_run *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	copy_text(r->name, sizeof(r->name), sqlite3_column_text(st, 1));
	copy_text(r->model, sizeof(r->model), sqlite3_column_text(st, 2));
	r->layers = column_int_sat(st, 3);
	r->experts = column_int_sat(st, 4);
	r->topk = column_int_sat(st, 5);
	r->ranks = column_int_sat(st, 6);
	r->slots = column_int_sat(st, 7);
	r->ranks_per_node = column_int_sat(st, 8);
	r->first_layer = column_int_sat(st, 9);
	r->created = sqlite3_column_double(st, 10);
	copy_text(r->source, sizeof(r->source), sqlite3_column_text(st, 11));
}

/* The step numbers of a run's rows must be within the store's limits
 * (store.h) before any reader subtracts them: the smallest and largest
 * step of steps, counts and deployed, each read from its primary key
 * (microseconds).  A step that is not an integer at all sorts past every
 * integer (TEXT, BLOB) and is caught as the largest. */
static int run_steps_check(struct store *s, const struct store_run *r)
{
	static const char *const tables[] = { "steps", "counts", "deployed" };
	/* one min() and one max() per query: SQLite reads either from the end
	 * of the key, but scans every row for both in one (18 ms for 232,000
	 * counts rows against microseconds) */
	static const char *const sql[] = {
		"SELECT (SELECT min(step) FROM steps WHERE run = ?1), "
		"(SELECT max(step) FROM steps WHERE run = ?1)",
		"SELECT (SELECT min(step) FROM counts WHERE run = ?1), "
		"(SELECT max(step) FROM counts WHERE run = ?1)",
		"SELECT (SELECT min(step) FROM deployed WHERE run = ?1), "
		"(SELECT max(step) FROM deployed WHERE run = ?1)",
	};
	sqlite3_stmt *st = NULL;
	int rc = 0;

	for (size_t t = 0; t < UTIL_ARRAY_SIZE(sql) && !rc; t++) {
		if ((rc = store_int_prepare(s, sql[t], &st)))
			return rc;
		sqlite3_bind_int64(st, 1, r->id);
		if (sqlite3_step(st) != SQLITE_ROW) {
			rc = store_int_dberr(s, "reading step range");
		} else {
			for (int c = 0; c < 2 && !rc; c++) {
				int type = sqlite3_column_type(st, c);
				int64_t v = sqlite3_column_int64(st, c);
				if (type == SQLITE_NULL)
					continue;
				if (type != SQLITE_INTEGER)
					rc = set_err(s, UTIL_EPARSE,
						     "run %lld '%s' in '%s': table %s holds a step "
						     "that is not an integer: corrupt database?",
						     (long long)r->id, r->name, s->path, tables[t]);
				else if (store_step_check(v, NULL))
					rc = set_err(s, UTIL_EPARSE,
						     "run %lld '%s' in '%s': table %s holds step %lld, "
						     "outside the range a trace holds (%lld to %lld): "
						     "corrupt database?",
						     (long long)r->id, r->name, s->path, tables[t],
						     (long long)v, (long long)STORE_STEP_MIN,
						     (long long)STORE_STEP_MAX);
			}
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	return rc;
}

/* A run row from a file someone else wrote: its shape must be within what
 * the schema allows before any array is sized from it, and its step
 * numbers within the store's limits before anything subtracts them. */
static int run_check(struct store *s, const struct store_run *r)
{
	if (!store_int_shape_ok(r->layers, r->experts, r->topk, r->ranks, r->slots,
				r->ranks_per_node))
		return set_err(s, UTIL_EPARSE,
			       "run %lld '%s' in '%s' has an impossible shape (%d layers x %d "
			       "experts, top-%d, %d ranks x %d slots): corrupt database?",
			       (long long)r->id, r->name, s->path, r->layers, r->experts, r->topk,
			       r->ranks, r->slots);
	if (r->first_layer < 0 || r->first_layer > STORE_MAX_FIRST_LAYER) {
		/* the stored value as it is, not saturated to an int */
		sqlite3_stmt *st = NULL;
		const char *v = "?";
		if (store_int_prepare(s, "SELECT CAST(first_layer AS TEXT) FROM runs WHERE run = ?1",
				      &st) == 0) {
			sqlite3_bind_int64(st, 1, r->id);
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
				v = (const char *)sqlite3_column_text(st, 0);
		}
		set_err(s, UTIL_EPARSE,
			"run %lld '%s' in '%s': first_layer %s is outside 0 to %d: corrupt database?",
			(long long)r->id, r->name, s->path, v, STORE_MAX_FIRST_LAYER);
		sqlite3_finalize(st);
		return UTIL_EPARSE;
	}
	return run_steps_check(s, r);
}

static int sq_run_add(struct store *s, struct store_run *run)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (run->layers <= 0 || run->layers > STORE_MAX_LAYERS || run->experts <= 0 ||
	    run->experts > STORE_MAX_EXPERTS)
		return set_err(s, UTIL_ERANGE, "run '%s': shape %d layers x %d experts is out of range",
			       run->name, run->layers, run->experts);
	/* never write a run that the readers would refuse as impossible */
	if (run->topk < 0 || run->topk > run->experts)
		return set_err(s, UTIL_ERANGE, "run '%s': top-%d routing of %d experts is impossible",
			       run->name, run->topk, run->experts);
	if (run->ranks > 0 && (int64_t)run->ranks * run->slots < run->experts)
		return set_err(s, UTIL_ERANGE, "run '%s': %d ranks x %d slots cannot hold %d experts",
			       run->name, run->ranks, run->slots, run->experts);
	if (!store_int_shape_ok(run->layers, run->experts, run->topk, run->ranks, run->slots,
				run->ranks_per_node))
		return set_err(s, UTIL_ERANGE,
			       "run '%s': EP layout %d ranks x %d slots (%d per node) is out of range",
			       run->name, run->ranks, run->slots, run->ranks_per_node);
	/* the analyses would refuse the run's nodes: say so before it is stored */
	if (!store_ranks_per_node_ok(run->ranks, run->ranks_per_node))
		return set_err(s, UTIL_EUSAGE,
			       "run '%s': ranks per node %d does not divide %d ranks", run->name,
			       run->ranks_per_node, run->ranks);
	if (run->first_layer < 0 || run->first_layer > STORE_MAX_FIRST_LAYER)
		return set_err(s, UTIL_ERANGE,
			       "run '%s': first MoE layer id %d is outside 0 to %d", run->name,
			       run->first_layer, STORE_MAX_FIRST_LAYER);
	if (!run->name[0])
		return set_err(s, UTIL_EUSAGE, "a run needs a name");
	/* every command that names a run (gen, record, merge, import) stores
	 * text an export writes into JSON, where other bytes would come back
	 * changed */
	int bad_name = !util_utf8_valid(run->name);
	if (bad_name || !util_utf8_valid(run->model)) {
		char shown[2 * sizeof(run->name)];
		util_utf8_sanitize(shown, sizeof(shown), bad_name ? run->name : run->model);
		return set_err(s, UTIL_EUSAGE, "run %s '%s' is not valid UTF-8",
			       bad_name ? "name" : "model", shown);
	}
	if (run->created == 0)
		run->created = util_wall();
	if ((rc = store_int_prepare(s, "SELECT 1 FROM runs WHERE name = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, run->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_ROW)
		return set_err(s, UTIL_EUSAGE,
			       "a run named '%s' already exists (give another name with --run, "
			       "or write to a new file)",
			       run->name);
	if ((rc = store_int_prepare(s,
				    "INSERT INTO runs (name, model, layers, experts, topk, ranks, "
				    "slots, ranks_per_node, first_layer, created, source) "
				    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
				    &st)))
		return rc;
	sqlite3_bind_text(st, 1, run->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run->model, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, run->layers);
	sqlite3_bind_int(st, 4, run->experts);
	sqlite3_bind_int(st, 5, run->topk);
	sqlite3_bind_int(st, 6, run->ranks);
	sqlite3_bind_int(st, 7, run->slots);
	sqlite3_bind_int(st, 8, run->ranks_per_node);
	sqlite3_bind_int(st, 9, run->first_layer);
	sqlite3_bind_double(st, 10, run->created);
	sqlite3_bind_text(st, 11, run->source, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = store_int_dberr(s, "adding run");
	else
		run->id = sqlite3_last_insert_rowid(s->db);
	sqlite3_finalize(st);
	return rc;
}

static int sq_run_get(struct store *s, const char *name, struct store_run *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!name || !*name) {
		rc = store_int_prepare(s, "SELECT " RUN_COLS " FROM runs ORDER BY run DESC LIMIT 1",
				       &st);
	} else {
		rc = store_int_prepare(s,
				       "SELECT " RUN_COLS " FROM runs WHERE name = ?1 "
				       "OR (CAST(?1 AS INTEGER) = run AND ?1 GLOB '[0-9]*') "
				       "ORDER BY name = ?1 DESC LIMIT 1",
				       &st);
		if (!rc)
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	}
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		run_from_row(st, out);
		rc = run_check(s, out);
	} else if (rc == SQLITE_DONE) {
		rc = name && *name ? set_err(s, UTIL_ENOTFOUND, "no run named '%s' in '%s'", name,
					      s->path)
				   : set_err(s, UTIL_ENOTFOUND, "'%s' holds no runs", s->path);
	} else {
		rc = store_int_dberr(s, "reading runs");
	}
	sqlite3_finalize(st);
	return rc;
}

static int sq_run_list(struct store *s, struct store_run **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct store_run *v = NULL;
	size_t len = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = store_int_prepare(s, "SELECT " RUN_COLS " FROM runs ORDER BY run", &st)))
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? 2 * cap : 8;
			struct store_run *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				sqlite3_finalize(st);
				return set_err(s, UTIL_ENOMEM, "out of memory");
			}
			v = nv;
		}
		run_from_row(st, &v[len++]);
		if (run_check(s, &v[len - 1])) {
			free(v);
			sqlite3_finalize(st);
			return UTIL_EPARSE;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = store_int_dberr(s, "listing runs");
		free(v);
		v = NULL;
		len = 0;
	} else {
		rc = 0;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = len;
	return rc;
}

/* A total() (a double) as an int64: converting a double past the int64
 * range is undefined, and 1025 steps of the most tokens a step holds sum
 * past it; such a total saturates. */
static int64_t sat_i64(double v)
{
	const double two63 = 9223372036854775808.0;

	if (v != v)
		return 0;
	if (v >= two63)
		return INT64_MAX;
	return v < -two63 ? INT64_MIN : (int64_t)v;
}

static int sq_run_stats(struct store *s, int64_t run, struct store_run_stats *o)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(o, 0, sizeof(*o));
	if ((rc = store_int_prepare(s,
				    "SELECT count(*), min(step), max(step), sum(phase = 1), "
				    "sum(phase = 2), total(tokens), min(time), max(time), total(bytes), "
				    "min(tokens), max(tokens) FROM steps WHERE run = ?1",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_int_dberr(s, "reading steps");
		goto out;
	}
	o->steps = sqlite3_column_int64(st, 0);
	o->first_step = sqlite3_column_int64(st, 1);
	o->last_step = sqlite3_column_int64(st, 2);
	o->prefill_steps = sqlite3_column_int64(st, 3);
	o->decode_steps = sqlite3_column_int64(st, 4);
	o->tokens = sat_i64(sqlite3_column_double(st, 5));
	o->first_time = sqlite3_column_double(st, 6);
	o->last_time = sqlite3_column_double(st, 7);
	o->blob_bytes = sat_i64(sqlite3_column_double(st, 8));
	for (int c = 9; c <= 10; c++)
		if (sqlite3_column_type(st, c) != SQLITE_NULL &&
		    (sqlite3_column_type(st, c) != SQLITE_INTEGER ||
		     store_tokens_check(sqlite3_column_int64(st, c), NULL))) {
			rc = set_err(s, UTIL_EPARSE,
				     "run %lld in '%s': a step holds %s tokens, outside the range a "
				     "trace holds (0 to %lld): corrupt database?",
				     (long long)run, s->path, (const char *)sqlite3_column_text(st, c),
				     (long long)STORE_TOKENS_MAX);
			goto out;
		}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = store_int_prepare(s, "SELECT count(*) FROM deployed WHERE run = ?1", &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_int_dberr(s, "reading deployed placements");
		goto out;
	}
	o->deployed = sqlite3_column_int64(st, 0);
out:
	sqlite3_finalize(st);
	return rc;
}

static int sq_run_missing_counts(struct store *s, const struct store_run *run,
				 int64_t *missing)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*missing = 0;
	/* The run's rows of its layers are a walk of its index entries (0.3 s
	 * for a 1 GB trace).  When every counts row is the run's (the first
	 * and last keys say so at once), SQLite counts the table's b-tree
	 * cells without decoding one instead (0.07 s); a row of a layer out
	 * of range, which every reader refuses, would then count as present. */
	if ((rc = store_int_prepare(s,
				    "SELECT (SELECT count(*) FROM steps WHERE run = ?1), "
				    "CASE WHEN (SELECT min(run) FROM counts) = ?1 AND "
				    "(SELECT max(run) FROM counts) = ?1 THEN (SELECT count(*) FROM counts) "
				    "ELSE (SELECT count(*) FROM counts WHERE run = ?1 AND layer >= 0 AND "
				    "layer < ?2) END",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int(st, 2, run->layers);
	/* a count touches every page of the index once: read into the page
	 * cache, not mapped (0.04 s against 0.21 s for a 1 GB trace's 2.8
	 * million rows) */
	reader_map(s, 0);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_int_dberr(s, "counting counts rows");
	} else {
		int64_t want, have = sqlite3_column_int64(st, 1);
		if (util_mul_i64(sqlite3_column_int64(st, 0), run->layers, &want))
			want = INT64_MAX; /* no file holds that many rows */
		*missing = want > have ? want - have : 0;
	}
	sqlite3_finalize(st);
	reader_map(s, 1);
	return rc;
}

static int sq_run_set_layout(struct store *s, int64_t run, int ranks, int slots,
			     int ranks_per_node)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!store_ranks_per_node_ok(ranks, ranks_per_node))
		return set_err(s, UTIL_EUSAGE,
			       "run %lld: ranks per node %d does not divide %d ranks",
			       (long long)run, ranks_per_node, ranks);
	if ((rc = store_int_prepare(s,
				    "UPDATE runs SET ranks = ?2, slots = ?3, ranks_per_node = ?4 "
				    "WHERE run = ?1",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_int(st, 2, ranks);
	sqlite3_bind_int(st, 3, slots);
	sqlite3_bind_int(st, 4, ranks_per_node);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = store_int_dberr(s, "updating run layout");
	sqlite3_finalize(st);
	return rc;
}

/* ---- steps and counts ---------------------------------------------------- */

/* Rows of counts one INSERT writes: a step's layers go in statements of
 * this many rows (SQLite's per-statement work then counts once for them
 * all), within a few MiB of blobs and far below SQLite's bound parameters. */
static size_t counts_rows_per_insert(size_t layers, size_t experts)
{
	size_t rows = ((size_t)4 << 20) / store_codec_bound(experts);

	if (rows > 128)
		rows = 128;
	if (rows < 1)
		rows = 1;
	return rows < layers ? rows : layers;
}

/* "INSERT INTO counts ... VALUES (?1, ?2, ?3, ?4), (?1, ?2, ?5, ?6), ...":
 * run and step once, then layer and data of each of the rows. */
static int counts_insert_prepare(struct store *s, size_t rows, sqlite3_stmt **st)
{
	size_t cap = 64 + rows * 32, len;
	char *sql = malloc(cap);
	int rc;

	*st = NULL;
	if (!sql)
		return set_err(s, UTIL_ENOMEM, "out of memory");
	len = (size_t)snprintf(sql, cap, "INSERT INTO counts (run, step, layer, data) VALUES ");
	for (size_t r = 0; r < rows; r++)
		len += (size_t)snprintf(sql + len, cap - len, "%s(?1, ?2, ?%zu, ?%zu)", r ? ", " : "",
					3 + 2 * r, 4 + 2 * r);
	rc = store_int_prepare(s, sql, st);
	free(sql);
	return rc;
}

/* Writes layers [l0, l0 + rows) of step p with st (made for rows rows). */
static int counts_insert(struct store *s, sqlite3_stmt *st, const struct store_run *run,
			 const struct store_step *p, size_t l0, size_t rows, uint8_t *blobs,
			 int64_t *bytes)
{
	size_t E = (size_t)run->experts, bound = store_codec_bound(E);
	int rc = 0;

	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int64(st, 2, p->step);
	for (size_t r = 0; r < rows; r++) {
		uint8_t *blob = blobs + r * bound;
		size_t len = store_codec_encode(p->counts + (l0 + r) * E, E, blob);
		*bytes += (int64_t)len;
		sqlite3_bind_int(st, 3 + 2 * (int)r, (int)(l0 + r));
		sqlite3_bind_blob(st, 4 + 2 * (int)r, blob, (int)len, SQLITE_STATIC);
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
			rc = set_err(s, UTIL_EUSAGE, "step %lld is already recorded in run '%s'",
				     (long long)p->step, run->name);
		else
			rc = store_int_dberr(s, "inserting counts");
	}
	sqlite3_reset(st);
	return rc;
}

static int sq_steps_append(struct store *s, const struct store_run *run,
			   const struct store_step *steps, size_t n)
{
	sqlite3_stmt *ss = NULL, *sc = NULL, *sc_last = NULL;
	size_t E = (size_t)run->experts, L = (size_t)run->layers;
	size_t rows = counts_rows_per_insert(L, E), last = L % rows;
	uint8_t *blobs = NULL;
	int64_t total = 0;
	int rc;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct util_err e = UTIL_ERR_INIT;
		if (store_step_check(steps[i].step, &e) || store_tokens_check(steps[i].tokens, &e))
			return set_err(s, e.code, "run '%s': %s", run->name, e.msg);
	}
	blobs = malloc(rows * store_codec_bound(E));
	if (!blobs)
		return set_err(s, UTIL_ENOMEM, "out of memory");
	if ((rc = store_int_prepare(s,
				    "INSERT INTO steps (run, step, time, phase, tokens, bytes) "
				    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
				    &ss)) ||
	    (rc = counts_insert_prepare(s, rows, &sc)) ||
	    (last && (rc = counts_insert_prepare(s, last, &sc_last))))
		goto out;
	if ((rc = store_begin(s)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct store_step *p = &steps[i];
		int64_t bytes = 0;
		for (size_t l = 0; l < L; l += rows)
			if ((rc = counts_insert(s, L - l < rows ? sc_last : sc, run, p, l,
						L - l < rows ? last : rows, blobs, &bytes)))
				goto fail;
		sqlite3_bind_int64(ss, 1, run->id);
		sqlite3_bind_int64(ss, 2, p->step);
		sqlite3_bind_double(ss, 3, p->time);
		sqlite3_bind_int(ss, 4, p->phase);
		sqlite3_bind_int64(ss, 5, p->tokens);
		sqlite3_bind_int64(ss, 6, bytes);
		if (sqlite3_step(ss) != SQLITE_DONE) {
			if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
				rc = set_err(s, UTIL_EUSAGE, "step %lld is already recorded in run '%s'",
					     (long long)p->step, run->name);
			else
				rc = store_int_dberr(s, "inserting step");
			goto fail;
		}
		sqlite3_reset(ss);
		total += bytes;
	}
	if (!(rc = store_commit(s)))
		s->appended += total;
	goto out;
fail:
	sqlite3_reset(ss);
	store_rollback(s);
out:
	sqlite3_finalize(ss);
	sqlite3_finalize(sc);
	sqlite3_finalize(sc_last);
	free(blobs);
	return rc;
}

struct sq_iter {
	struct store *s;
	sqlite3_stmt *st;
	int layers, experts;
	int layer; /* store_iter_layer_new: the one layer read, else -1 */
	unsigned phase_mask;
	uint32_t *counts;
	int64_t cur_step;
	int have_row; /* st holds an unread row */
	int done;
};

static void sq_iter_free(void *p);

static int sq_iter_new(struct store *s, const struct store_run *run, int layer, int64_t from,
		       int64_t to, unsigned phase_mask, void **out)
{
	struct sq_iter *it;
	size_t nvals = (size_t)(layer >= 0 ? 1 : run->layers) * (size_t)run->experts;
	int rc;

	*out = NULL;
	it = calloc(1, sizeof(*it));
	if (!it)
		return set_err(s, UTIL_ENOMEM, "out of memory");
	it->s = s;
	it->layers = run->layers;
	it->experts = run->experts;
	it->layer = layer;
	it->phase_mask = phase_mask;
	it->counts = malloc(nvals * sizeof(uint32_t));
	if (!it->counts) {
		free(it);
		return set_err(s, UTIL_ENOMEM, "out of memory");
	}
	if (layer >= 0)
		rc = store_int_prepare(s,
				       "SELECT c.step, c.layer, c.data, s.time, s.phase, s.tokens "
				       "FROM counts c JOIN steps s ON s.run = c.run AND s.step = c.step "
				       "WHERE c.run = ?1 AND c.layer = ?4 AND c.step BETWEEN ?2 AND ?3 "
				       "ORDER BY c.step",
				       &it->st);
	else
		rc = store_int_prepare(s,
				       "SELECT c.step, c.layer, c.data, s.time, s.phase, s.tokens "
				       "FROM counts c JOIN steps s ON s.run = c.run AND s.step = c.step "
				       "WHERE c.run = ?1 AND c.step BETWEEN ?2 AND ?3 "
				       "ORDER BY c.step, c.layer",
				       &it->st);
	if (rc) {
		sq_iter_free(it);
		return rc;
	}
	sqlite3_bind_int64(it->st, 1, run->id);
	sqlite3_bind_int64(it->st, 2, from);
	sqlite3_bind_int64(it->st, 3, to);
	if (layer >= 0)
		sqlite3_bind_int(it->st, 4, layer);
	*out = it;
	return 0;
}

/* A step's phase as stored: 0, 1, 2 are the phases there are; another
 * would read as "unknown" (and be exported so) or shift a phase mask past
 * its width. */
static int column_phase(struct store *s, sqlite3_stmt *st, int col, int64_t step, int *phase)
{
	/* the type before the value: reading it as an integer would convert it */
	int type = sqlite3_column_type(st, col);
	int64_t v = type == SQLITE_INTEGER ? sqlite3_column_int64(st, col) : -1;

	if (!store_phase_ok(v)) {
		const unsigned char *t = sqlite3_column_text(st, col);
		return set_err(s, UTIL_EPARSE,
			       "step %lld: phase %s in '%s' is not " STORE_PHASE_RANGE
			       ": corrupt database?",
			       (long long)step, t ? (const char *)t : "NULL", s->path);
	}
	*phase = (int)v;
	return 0;
}

static int sq_iter_next(void *p, struct store_step *out)
{
	struct sq_iter *it = p;
	struct store *s = it->s;
	size_t E = (size_t)it->experts;
	int rc;

	for (;;) {
		if (it->done)
			return 0;
		if (!it->have_row) {
			rc = sqlite3_step(it->st);
			if (rc == SQLITE_DONE) {
				it->done = 1;
				return 0;
			}
			if (rc != SQLITE_ROW)
				return store_int_dberr(s, "reading counts");
		}
		it->have_row = 0;
		int64_t step = sqlite3_column_int64(it->st, 0);
		int phase = 0;
		if ((rc = column_phase(s, it->st, 4, step, &phase)))
			return rc;
		int want = !it->phase_mask || (it->phase_mask & (1u << phase));
		memset(out, 0, sizeof(*out));
		out->step = step;
		out->time = sqlite3_column_double(it->st, 3);
		out->phase = phase;
		int ttype = sqlite3_column_type(it->st, 5);
		out->tokens = sqlite3_column_int64(it->st, 5);
		if (ttype != SQLITE_INTEGER || store_tokens_check(out->tokens, NULL))
			return set_err(s, UTIL_EPARSE,
				       "step %lld: %s tokens in '%s', outside the range a trace holds "
				       "(0 to %lld): corrupt database?",
				       (long long)step, (const char *)sqlite3_column_text(it->st, 5),
				       s->path, (long long)STORE_TOKENS_MAX);
		out->counts = it->counts;
		if (want)
			memset(it->counts, 0,
			       (size_t)(it->layer >= 0 ? 1 : it->layers) * E * sizeof(uint32_t));
		/* consume every row of this step */
		for (;;) {
			int layer = sqlite3_column_int(it->st, 1);
			if (want) {
				const uint8_t *b = sqlite3_column_blob(it->st, 2);
				int len = sqlite3_column_bytes(it->st, 2);
				if (layer < 0 || layer >= it->layers)
					return set_err(s, UTIL_EPARSE,
						       "step %lld: layer %d out of range [0, %d) in '%s'",
						       (long long)step, layer, it->layers, s->path);
				size_t at = it->layer >= 0 ? 0 : (size_t)layer * E;
				if (store_codec_decode(b, (size_t)len, it->counts + at, E))
					return set_err(s, UTIL_EPARSE,
						       "step %lld layer %d: malformed counts blob in '%s'",
						       (long long)step, layer, s->path);
			}
			rc = sqlite3_step(it->st);
			if (rc == SQLITE_DONE) {
				it->done = 1;
				break;
			}
			if (rc != SQLITE_ROW)
				return store_int_dberr(s, "reading counts");
			if (sqlite3_column_int64(it->st, 0) != step) {
				it->have_row = 1;
				break;
			}
		}
		if (want)
			return 1;
	}
}

static void sq_iter_free(void *p)
{
	struct sq_iter *it = p;

	if (!it)
		return;
	sqlite3_finalize(it->st);
	free(it->counts);
	free(it);
}

static int sq_steps_count(struct store *s, const struct store_run *run, int64_t from,
			  int64_t to, unsigned phase_mask, int64_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT count(*) FROM steps WHERE run = ?1 AND step BETWEEN ?2 AND ?3 "
			       "AND (?4 = 0 OR ((1 << phase) & ?4) != 0)",
			       -1, &st, NULL) != SQLITE_OK)
		return set_err(s, UTIL_EDB, "counting steps: %s", sqlite3_errmsg(s->db));
	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)phase_mask);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = set_err(s, UTIL_EDB, "counting steps: %s", sqlite3_errmsg(s->db));
	}
	sqlite3_finalize(st);
	return rc;
}

static int sq_steps_span(struct store *s, const struct store_run *run, int layer, int64_t from,
			 int64_t to, unsigned phase_mask, int64_t *n, int64_t *first,
			 int64_t *last)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	if (layer >= 0)
		rc = store_int_prepare(s,
				       "SELECT min(c.step), max(c.step), count(*) FROM counts c "
				       "JOIN steps s ON s.run = c.run AND s.step = c.step "
				       "WHERE c.run = ?1 AND c.layer = ?5 AND c.step BETWEEN ?2 AND ?3 "
				       "AND (?4 = 0 OR ((1 << s.phase) & ?4) != 0)",
				       &st);
	else
		rc = store_int_prepare(s,
				       "SELECT min(step), max(step), count(*) FROM steps s "
				       "WHERE run = ?1 AND step BETWEEN ?2 AND ?3 "
				       "AND (?4 = 0 OR ((1 << s.phase) & ?4) != 0)",
				       &st);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)phase_mask);
	if (layer >= 0)
		sqlite3_bind_int(st, 5, layer);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 2);
		if (*n) {
			*first = sqlite3_column_int64(st, 0);
			*last = sqlite3_column_int64(st, 1);
		}
	} else {
		rc = store_int_dberr(s, "reading steps");
	}
	sqlite3_finalize(st);
	return rc;
}

static int sq_steps_after(struct store *s, const struct store_run *run, int64_t after,
			  struct store_steps_news *o)
{
	sqlite3_stmt *st;
	int rc;

	memset(o, 0, sizeof(*o));
	if ((rc = store_int_prepare_cached(s, STORE_STMT_STEPS_AFTER,
					   "SELECT count(*), max(step), min(step), max(time) FROM "
					   "steps WHERE run = ?1 AND step > ?2",
					   &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int64(st, 2, after);
	if (sqlite3_step(st) == SQLITE_ROW) {
		o->steps = sqlite3_column_int64(st, 0);
		o->last_step = sqlite3_column_int64(st, 1);
		o->first_step = sqlite3_column_int64(st, 2);
		o->last_time = sqlite3_column_double(st, 3);
	} else {
		rc = set_err(s, UTIL_EDB, "cannot read steps of '%s': %s", s->path,
			     sqlite3_errmsg(s->db));
	}
	sqlite3_reset(st);
	return rc;
}

/* ---- deployed placement -------------------------------------------------- */

static int sq_deployed_set(struct store *s, const struct store_run *run, int64_t from,
			   int ranks, int slots, const int32_t *phy2log)
{
	sqlite3_stmt *st = NULL;
	size_t P = (size_t)ranks * (size_t)slots;
	uint8_t *blob;
	struct util_err e = UTIL_ERR_INIT;
	int rc;

	if (store_step_check(from, &e))
		return set_err(s, e.code, "placement: %s", e.msg);
	if (ranks <= 0 || slots <= 0 || P > STORE_MAX_SLOTS || P < (size_t)run->experts)
		return set_err(s, UTIL_ERANGE, "placement of %d ranks x %d slots cannot hold %d experts",
			       ranks, slots, run->experts);
	for (size_t i = 0; i < P * (size_t)run->layers; i++)
		if (phy2log[i] < 0 || phy2log[i] >= run->experts)
			return set_err(s, UTIL_ERANGE,
				       "placement: layer %zu slot %zu holds expert %d, out of range "
				       "[0, %d)",
				       i / P, i % P, phy2log[i], run->experts);
	blob = malloc(P * 4);
	if (!blob)
		return set_err(s, UTIL_ENOMEM, "out of memory");
	if ((rc = store_int_prepare(s,
				    "INSERT OR REPLACE INTO deployed (run, step, layer, ranks, slots, "
				    "phy2log) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
				    &st)))
		goto out;
	if ((rc = store_begin(s)))
		goto out;
	for (int l = 0; l < run->layers; l++) {
		const int32_t *p = phy2log + (size_t)l * P;
		for (size_t i = 0; i < P; i++) {
			uint32_t v = (uint32_t)p[i];
			blob[4 * i] = (uint8_t)v;
			blob[4 * i + 1] = (uint8_t)(v >> 8);
			blob[4 * i + 2] = (uint8_t)(v >> 16);
			blob[4 * i + 3] = (uint8_t)(v >> 24);
		}
		sqlite3_bind_int64(st, 1, run->id);
		sqlite3_bind_int64(st, 2, from);
		sqlite3_bind_int(st, 3, l);
		sqlite3_bind_int(st, 4, ranks);
		sqlite3_bind_int(st, 5, slots);
		sqlite3_bind_blob(st, 6, blob, (int)(P * 4), SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = store_int_dberr(s, "inserting deployed placement");
			sqlite3_reset(st);
			store_rollback(s);
			goto out;
		}
		sqlite3_reset(st);
	}
	rc = store_commit(s);
out:
	sqlite3_finalize(st);
	free(blob);
	return rc;
}

static int sq_deployed_changes(struct store *s, const struct store_run *run, int64_t from,
			       int64_t to, int64_t **steps, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int64_t *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc, r;

	*steps = NULL;
	*n = 0;
	if ((rc = store_int_prepare(s,
				    "SELECT DISTINCT step FROM deployed WHERE run = ?1 AND "
				    "step BETWEEN ?2 AND ?3 ORDER BY step",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			int64_t *g = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (!g) {
				rc = set_err(s, UTIL_ENOMEM, "out of memory");
				goto out;
			}
			v = g;
		}
		v[cnt++] = sqlite3_column_int64(st, 0);
	}
	if (r != SQLITE_DONE) {
		rc = store_int_dberr(s, "reading deployed placements");
		goto out;
	}
	*steps = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	sqlite3_finalize(st);
	return rc;
}

static int sq_deployed_last(struct store *s, const struct store_run *run, int64_t step,
			    int64_t *from)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_int_prepare_cached(s, STORE_STMT_DEPLOYED_LAST,
					   "SELECT max(step) FROM deployed WHERE run = ?1 AND "
					   "step <= ?2",
					   &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int64(st, 2, step);
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = set_err(s, UTIL_EDB, "cannot read the deployed placement of '%s': %s",
			     s->path, sqlite3_errmsg(s->db));
	else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		rc = set_err(s, UTIL_ENOTFOUND, "no deployed placement recorded at step %lld",
			     (long long)step);
	else
		*from = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc;
}

static int sq_deployed_at(struct store *s, const struct store_run *run, int64_t step, int ranks,
			  int slots, int32_t *phy2log, int64_t *from)
{
	sqlite3_stmt *st = NULL;
	size_t P = (size_t)ranks * (size_t)slots;
	int rc, found = 0;
	int64_t eff = 0;
	unsigned char *seen = malloc((size_t)run->experts);

	if (!seen)
		return set_err(s, UTIL_ENOMEM, "out of memory");
	/* Latest row per layer at or before `step`. */
	if ((rc = store_int_prepare(s,
				    "SELECT layer, ranks, slots, phy2log, max(step) FROM deployed "
				    "WHERE run = ?1 AND step <= ?2 GROUP BY layer ORDER BY layer",
				    &st))) {
		free(seen);
		return rc;
	}
	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int64(st, 2, step);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int layer = sqlite3_column_int(st, 0);
		const uint8_t *b = sqlite3_column_blob(st, 3);
		size_t len = (size_t)sqlite3_column_bytes(st, 3);
		if (layer < 0 || layer >= run->layers) {
			rc = set_err(s, UTIL_EPARSE, "deployed placement in '%s': layer %d out of range",
				     s->path, layer);
			goto out;
		}
		int64_t row_slots = (int64_t)sqlite3_column_int(st, 1) * sqlite3_column_int(st, 2);
		if (sqlite3_column_int(st, 1) <= 0 || sqlite3_column_int(st, 2) <= 0 ||
		    row_slots > STORE_MAX_SLOTS || (int64_t)len != row_slots * 4) {
			rc = set_err(s, UTIL_EPARSE,
				     "deployed placement of layer %d is corrupt: %zu bytes for %d ranks "
				     "x %d slots in '%s'",
				     layer, len, sqlite3_column_int(st, 1), sqlite3_column_int(st, 2),
				     s->path);
			goto out;
		}
		if (sqlite3_column_int(st, 1) != ranks || sqlite3_column_int(st, 2) != slots) {
			rc = set_err(s, UTIL_ERANGE,
				     "deployed placement of layer %d is %d ranks x %d slots, not %d x %d",
				     layer, sqlite3_column_int(st, 1), sqlite3_column_int(st, 2), ranks,
				     slots);
			goto out;
		}
		for (size_t i = 0; i < P; i++) {
			int32_t v = (int32_t)((uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
					      (uint32_t)b[4 * i + 2] << 16 |
					      (uint32_t)b[4 * i + 3] << 24);
			if (v < 0 || v >= run->experts) {
				rc = set_err(s, UTIL_EPARSE,
					     "deployed placement of layer %d is corrupt: slot %zu holds "
					     "expert %d in '%s'",
					     layer, i, v, s->path);
				goto out;
			}
			phy2log[(size_t)layer * P + i] = v;
		}
		/* every expert must have a slot */
		for (int e = 0; e < run->experts; e++)
			seen[e] = 0;
		for (size_t i = 0; i < P; i++)
			seen[phy2log[(size_t)layer * P + i]] = 1;
		for (int e = 0; e < run->experts; e++)
			if (!seen[e]) {
				rc = set_err(s, UTIL_EPARSE,
					     "deployed placement of layer %d is corrupt: it gives expert %d "
					     "no slot in '%s'",
					     layer, e, s->path);
				goto out;
			}
		int64_t f = sqlite3_column_int64(st, 4);
		if (!found || f > eff)
			eff = f;
		found++;
	}
	if (rc != SQLITE_DONE) {
		rc = store_int_dberr(s, "reading deployed placement");
		goto out;
	}
	rc = 0;
	if (found == 0)
		rc = set_err(s, UTIL_ENOTFOUND, "no deployed placement recorded at step %lld",
			     (long long)step);
	else if (found < run->layers)
		rc = set_err(s, UTIL_EPARSE,
			     "deployed placement in '%s' is corrupt: it covers %d of %d layers",
			     s->path, found, run->layers);
	if (from)
		*from = eff;
out:
	free(seen);
	sqlite3_finalize(st);
	return rc;
}

/* One query on the primary key (run, step, layer): the first row after
 * `step` is where the placement in force changes next. */
static int sq_deployed_next(struct store *s, const struct store_run *run, int64_t step,
			    int64_t *next)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = store_int_prepare(s, "SELECT min(step) FROM deployed WHERE run = ?1 AND step > ?2",
				    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, run->id);
	sqlite3_bind_int64(st, 2, step);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rc = store_int_dberr(s, "reading deployed placement");
	} else if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		rc = set_err(s, UTIL_ENOTFOUND, "no deployed placement recorded after step %lld",
			     (long long)step);
	} else {
		*next = sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

int64_t store_appended_bytes(const struct store *s)
{
	return s->appended;
}

static int64_t sq_size_bytes(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (store_int_prepare(s,
			      "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
			      &st))
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}


/* clang-format off */
const struct store_ops store_sqlite_ops = {
	.name = "SQLite",
	.close = sq_close,
	.publish = sq_publish,
	.run_get = sq_run_get,
	.run_list = sq_run_list,
	.run_stats = sq_run_stats,
	.run_missing_counts = sq_run_missing_counts,
	.iter_new = sq_iter_new,
	.iter_next = sq_iter_next,
	.iter_free = sq_iter_free,
	.steps_count = sq_steps_count,
	.steps_span = sq_steps_span,
	.steps_after = sq_steps_after,
	.deployed_list = store_sqlite_deployed_list,
	.deployed_at = sq_deployed_at,
	.deployed_changes = sq_deployed_changes,
	.deployed_last = sq_deployed_last,
	.deployed_next = sq_deployed_next,
	.size_bytes = sq_size_bytes,
	.replay_list = store_sqlite_replay_list,
	.replay_get = store_sqlite_replay_get,
	.replay_series = store_sqlite_replay_series,
	.replay_events = store_sqlite_replay_events,
	.replay_event_moves = store_sqlite_replay_event_moves,
	.import_seen = store_sqlite_import_seen,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.run_add = sq_run_add,
	.run_set_layout = sq_run_set_layout,
	.steps_append = sq_steps_append,
	.deployed_set = sq_deployed_set,
	.import_add = store_sqlite_import_add,
	.replay_add = store_sqlite_replay_add,
	.replay_finish = store_sqlite_replay_finish,
	.replay_step_add = store_sqlite_replay_step_add,
	.replay_event_add = store_sqlite_replay_event_add,
	.replay_layer_add = store_sqlite_replay_layer_add,
	.replay_event_effective = store_sqlite_replay_event_effective,
	.cache_size = sq_cache_size,
	.busy_timeout = sq_busy_timeout,
	.locked = sq_locked,
};
/* clang-format on */

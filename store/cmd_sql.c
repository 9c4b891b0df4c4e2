/*
 * cmd_sql.c: `moetrace sql DB [QUERY]` runs SQL on a trace with the
 * moetrace views and functions registered (store/sqlfn.c) and prints each
 * result as a table, CSV, JSON or markdown.  Without QUERY the SQL comes
 * from standard input.  The database is opened read-only unless --write;
 * with --write the whole script is one transaction, rolled back on error.
 */
#include "cmds.h"
#include "fleet/fleet.h"
#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: moetrace sql [--format table|csv|json|markdown] [--write] DB [QUERY]\n"
	"       moetrace sql --examples [DB]\n"
	"       moetrace sql [--format table|csv|json] [--write] clickhouse://HOST:PORT/DATABASE QUERY\n"
	"QUERY is one or more SQL statements; without it they are read from standard input.\n"
	"Views: expert_heat, layer_heat, heat_window(run, layer, from, to), device_load,\n"
	"layer_imbalance, ... (docs/schema.md).  Read-only unless --write.\n";

enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON, FMT_MARKDOWN };

/* A value rendered as text; blobs as x'hex'. */
static char *cell_text(sqlite3_stmt *st, int i)
{
	int t = sqlite3_column_type(st, i);

	if (t == SQLITE_NULL)
		return xstrdup("");
	if (t == SQLITE_BLOB) {
		const unsigned char *b = sqlite3_column_blob(st, i);
		int n = sqlite3_column_bytes(st, i);
		char *s = xmalloc((size_t)n * 2 + 4);
		char *p = s;
		*p++ = 'x';
		*p++ = '\'';
		for (int k = 0; k < n; k++) {
			static const char hex[] = "0123456789abcdef";
			*p++ = hex[b[k] >> 4];
			*p++ = hex[b[k] & 15];
		}
		*p++ = '\'';
		*p = 0;
		return s;
	}
	return xstrdup((const char *)sqlite3_column_text(st, i));
}

static void csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* Markdown cells: '|' escaped, line breaks as spaces. */
static void md_field(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else if (*s == '\n' || *s == '\r')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

/* Rows of one result, kept for the aligned formats. */
struct grid {
	int ncol;
	size_t nrow, cap;
	char **cell; /* nrow x ncol */
	int *numeric; /* per column: right-aligned */
	size_t *width;
};

static void grid_add(struct grid *g, sqlite3_stmt *st)
{
	if (g->nrow == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 64;
		g->cell = xrealloc(g->cell, g->cap * (size_t)g->ncol * sizeof(char *));
	}
	for (int i = 0; i < g->ncol; i++) {
		char *s = cell_text(st, i);
		int t = sqlite3_column_type(st, i);
		size_t w = strlen(s);
		g->cell[g->nrow * (size_t)g->ncol + (size_t)i] = s;
		if (w > g->width[i])
			g->width[i] = w;
		if (t == SQLITE_TEXT || t == SQLITE_BLOB)
			g->numeric[i] = 0;
	}
	g->nrow++;
}

static void pad(FILE *f, size_t n)
{
	while (n--)
		fputc(' ', f);
}

static void grid_print(FILE *f, const struct grid *g, sqlite3_stmt *st, enum fmt fmt)
{
	int nc = g->ncol;

	if (fmt == FMT_MARKDOWN) {
		fputc('|', f);
		for (int i = 0; i < nc; i++) {
			fputc(' ', f);
			md_field(f, sqlite3_column_name(st, i));
			fputs(" |", f);
		}
		fputs("\n|", f);
		for (int i = 0; i < nc; i++)
			fputs(g->numeric[i] && g->nrow ? " ---: |" : " --- |", f);
		fputc('\n', f);
		for (size_t r = 0; r < g->nrow; r++) {
			fputc('|', f);
			for (int i = 0; i < nc; i++) {
				fputc(' ', f);
				md_field(f, g->cell[r * (size_t)nc + (size_t)i]);
				fputs(" |", f);
			}
			fputc('\n', f);
		}
		return;
	}
	for (int i = 0; i < nc; i++) {
		const char *name = sqlite3_column_name(st, i);
		size_t w = g->width[i];
		int right = g->numeric[i] && g->nrow;
		if (right)
			pad(f, w - strlen(name));
		fputs(name, f);
		if (i + 1 < nc) {
			if (!right)
				pad(f, w - strlen(name));
			fputs("  ", f);
		}
	}
	fputc('\n', f);
	for (int i = 0; i < nc; i++) {
		for (size_t k = 0; k < g->width[i]; k++)
			fputc('-', f);
		if (i + 1 < nc)
			fputs("  ", f);
	}
	fputc('\n', f);
	for (size_t r = 0; r < g->nrow; r++) {
		for (int i = 0; i < nc; i++) {
			const char *s = g->cell[r * (size_t)nc + (size_t)i];
			size_t w = g->width[i];
			int right = g->numeric[i];
			if (right)
				pad(f, w - strlen(s));
			fputs(s, f);
			if (i + 1 < nc) {
				if (!right)
					pad(f, w - strlen(s));
				fputs("  ", f);
			}
		}
		fputc('\n', f);
	}
}

static void grid_release(struct grid *g)
{
	for (size_t k = 0; k < g->nrow * (size_t)g->ncol; k++)
		free(g->cell[k]);
	free(g->cell);
	free(g->numeric);
	free(g->width);
}

static void json_value(FILE *f, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL: fputs("null", f); break;
	case SQLITE_INTEGER: fprintf(f, "%lld", (long long)sqlite3_column_int64(st, i)); break;
	case SQLITE_FLOAT: {
		double d = sqlite3_column_double(st, i);
		char buf[32];
		if (d != d || d - d != 0) { /* NaN or infinite: not JSON */
			fputs("null", f);
			break;
		}
		/* shortest text that reads back as the same double */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
		fputs(buf, f);
		if (!strpbrk(buf, ".eEn"))
			fputs(".0", f); /* keep it a real for readers that care */
		break;
	}
	default: {
		char *s = cell_text(st, i);
		util_json_str(f, s);
		free(s);
	}
	}
}

/* The exit status of a statement that failed with rc: 1 for a runtime
 * failure (I/O, a full disk, memory, a lock, an interrupt), 2 for anything
 * the query or the trace is to blame for: a corrupt trace (a malformed or
 * misshapen counts blob, a corrupt deployed placement, a damaged file), a
 * wrong argument to a function, a constraint, a write to a trace opened
 * read-only.  The moetrace functions report all of theirs but memory as
 * plain SQLITE_ERROR, so everything not a runtime failure is 2, as for
 * every other command. */
static int sql_status(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_IOERR:
	case SQLITE_NOMEM:
	case SQLITE_FULL:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_INTERRUPT:
	case SQLITE_PROTOCOL:
		return 1;
	}
	return 2;
}

/* Runs one prepared statement and prints its rows to out.  Returns the
 * SQLite result code (SQLITE_DONE on success).  A result cut off by an
 * error must not read as a whole one: the table and markdown print only a
 * finished result, and JSON's array is left open (no parser takes it). */
static int run_stmt(sqlite3_stmt *st, enum fmt fmt, FILE *out, int *printed)
{
	int nc = sqlite3_column_count(st), rc;
	struct grid g = { 0 };
	size_t rows = 0;

	if (nc == 0) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		return rc;
	}
	if (*printed && fmt != FMT_JSON)
		fputc('\n', out);
	*printed = 1;
	if (fmt == FMT_TABLE || fmt == FMT_MARKDOWN) {
		g.ncol = nc;
		g.numeric = xcalloc((size_t)nc, sizeof(int));
		g.width = xcalloc((size_t)nc, sizeof(size_t));
		for (int i = 0; i < nc; i++) {
			g.numeric[i] = 1;
			g.width[i] = strlen(sqlite3_column_name(st, i));
		}
	} else if (fmt == FMT_CSV) {
		for (int i = 0; i < nc; i++) {
			if (i)
				fputc(',', out);
			csv_field(out, sqlite3_column_name(st, i));
		}
		fputc('\n', out);
	} else {
		fputc('[', out);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fmt == FMT_TABLE || fmt == FMT_MARKDOWN) {
			grid_add(&g, st);
		} else if (fmt == FMT_CSV) {
			for (int i = 0; i < nc; i++) {
				char *s = cell_text(st, i);
				if (i)
					fputc(',', out);
				csv_field(out, s);
				free(s);
			}
			fputc('\n', out);
		} else {
			fputs(rows ? ",\n {" : "\n {", out);
			for (int i = 0; i < nc; i++) {
				if (i)
					fputs(", ", out);
				util_json_str(out, sqlite3_column_name(st, i));
				fputs(": ", out);
				json_value(out, st, i);
			}
			fputc('}', out);
		}
		rows++;
	}
	if (fmt == FMT_TABLE || fmt == FMT_MARKDOWN) {
		if (rc == SQLITE_DONE)
			grid_print(out, &g, st, fmt);
		grid_release(&g);
	} else if (fmt == FMT_JSON) {
		fputs(rc != SQLITE_DONE ? "\n" : rows ? "\n]\n" : "]\n", out);
	}
	return rc;
}

static char *read_all(FILE *f)
{
	size_t len = 0, cap = 4096, n;
	char *s = xmalloc(cap);

	while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			cap *= 2;
			s = xrealloc(s, cap);
		}
	}
	s[len] = 0;
	if (ferror(f)) {
		free(s);
		return NULL;
	}
	return s;
}

static void print_examples(void)
{
	const struct store_sql_example *e;

	for (size_t i = 0; (e = store_sql_example_at(i)); i++)
		printf("%s-- %s\n%s\n", i ? "\n" : "", e->title, e->sql);
}

/* Statement text for messages: first line, at most 80 characters. */
static void stmt_excerpt(char *out, size_t n, const char *sql, size_t len)
{
	size_t k = 0;

	while (len && (*sql == ' ' || *sql == '\n' || *sql == '\t' || *sql == '\r')) {
		sql++;
		len--;
	}
	while (k + 1 < n && k < len && k < 80 && sql[k] != '\n') {
		out[k] = sql[k];
		k++;
	}
	out[k] = 0;
	if (k < len && k == 80 && n > 84)
		strcpy(out + k, "...");
}

/* A query that opens with an SQL comment ("-- top experts\nSELECT ...")
 * is not an option: args gets argv without it (*comment_query), NULL
 * ended; returns the new argc. */
static int take_comment_query(int argc, char **argv, char **args, const char **comment_query)
{
	int n = 0;

	*comment_query = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (i > 0 && !*comment_query && a[0] == '-' && a[1] == '-' &&
		    (a[2] == ' ' || a[2] == '\t' || a[2] == '\n' || a[2] == '\r'))
			*comment_query = a;
		else
			args[n++] = argv[i];
	}
	args[n] = NULL;
	return n;
}

static int parse_format(const char *arg, enum fmt *fmt)
{
	if (!strcmp(arg, "table"))
		*fmt = FMT_TABLE;
	else if (!strcmp(arg, "csv"))
		*fmt = FMT_CSV;
	else if (!strcmp(arg, "json"))
		*fmt = FMT_JSON;
	else if (!strcmp(arg, "markdown") || !strcmp(arg, "md"))
		*fmt = FMT_MARKDOWN;
	else {
		util_cli_error("sql", "--format: '%s' is not table, csv, json or markdown", arg);
		return 2;
	}
	return 0;
}

static int sql_operands(int argc, char **argv, const char *comment_query, enum fmt fmt,
			int write, int examples);

int cmd_sql(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "write", no_argument, NULL, 'w' },
		{ "examples", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char **args = xmallocarray((size_t)argc + 1, sizeof(char *));
	const char *comment_query;
	enum fmt fmt = FMT_TABLE;
	int write = 0, examples = 0, c, status = 0;

	argc = take_comment_query(argc, argv, args, &comment_query);
	argv = args;
	while (!status && (c = getopt_long(argc, argv, "f:weh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': status = parse_format(optarg, &fmt); break;
		case 'w': write = 1; break;
		case 'e': examples = 1; break;
		case 'h':
			fputs(usage, stdout);
			free(args);
			return 0;
		default: status = util_opt_unknown(argv, opts); break;
		}
	}
	if (!status)
		status = sql_operands(argc, argv, comment_query, fmt, write, examples);
	free(args);
	return status;
}

/* Copies the finished CSV result in tmp to standard output.  0, or 1
 * after saying why. */
static int csv_copy(FILE *tmp)
{
	char buf[65536];
	size_t n;

	if (fflush(tmp) || ferror(tmp) || fseek(tmp, 0, SEEK_SET)) {
		util_cli_error("sql", "cannot keep the CSV rows in a temporary file: %s",
			       strerror(errno));
		return 1;
	}
	while ((n = fread(buf, 1, sizeof(buf), tmp)) > 0)
		fwrite(buf, 1, n, stdout);
	if (ferror(tmp)) {
		util_cli_error("sql", "cannot read back the CSV rows: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/* run_stmt() with CSV rows kept in a temporary file and printed once the
 * statement has finished, as the table's are: a statement that fails after
 * some rows prints none (a CSV reader could not tell a cut-off result from a
 * whole one).  A file, not memory, holds them: an export of a whole trace
 * can be larger than memory.  The SQLite result code, or -1 when the rows
 * could not be kept (said). */
static int stmt_print(sqlite3_stmt *st, enum fmt fmt, int *printed)
{
	FILE *tmp;
	int rc;

	if (fmt != FMT_CSV || sqlite3_column_count(st) == 0)
		return run_stmt(st, fmt, stdout, printed);
	if (!(tmp = tmpfile())) {
		util_cli_error("sql", "cannot make a temporary file for the CSV rows: %s",
			       strerror(errno));
		return -1;
	}
	rc = run_stmt(st, fmt, tmp, printed);
	if (rc == SQLITE_DONE && csv_copy(tmp))
		rc = -1;
	fclose(tmp);
	return rc;
}

/* Every statement of sql in turn, printed in fmt; with write, all of them
 * in one savepoint, rolled back if one fails.  The exit status. */
static int run_all(sqlite3 *db, const char *sql, enum fmt fmt, int write)
{
	int status = 0, printed = 0;

	if (write && sqlite3_exec(db, "SAVEPOINT moetrace_sql", NULL, NULL, NULL) != SQLITE_OK) {
		util_cli_error("sql", "%s", sqlite3_errmsg(db));
		return 1;
	}
	for (const char *p = sql; *p;) {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		char ex[96];
		int rc = sqlite3_prepare_v2(db, p, -1, &st, &tail);
		if (rc != SQLITE_OK) {
			stmt_excerpt(ex, sizeof(ex), p, strlen(p));
			util_cli_error("sql", "%s (in: %s)", sqlite3_errmsg(db), ex);
			status = 2;
			break;
		}
		if (!st) { /* blank or comment */
			p = tail;
			continue;
		}
		rc = stmt_print(st, fmt, &printed);
		if (rc == -1) {
			status = 1;
			sqlite3_finalize(st);
			break;
		}
		if (rc != SQLITE_DONE) {
			int ro = (rc & 0xff) == SQLITE_READONLY;
			stmt_excerpt(ex, sizeof(ex), p, (size_t)(tail - p));
			util_cli_error(
				"sql", "%s (in: %s)%s", sqlite3_errmsg(db), ex,
				ro && !write ? "; the trace is opened read-only: add --write to change it"
				   : "");
			status = sql_status(rc);
			sqlite3_finalize(st);
			break;
		}
		sqlite3_finalize(st);
		p = tail;
	}
	if (write) {
		const char *end = status ? "ROLLBACK TO moetrace_sql; RELEASE moetrace_sql"
					 : "RELEASE moetrace_sql";
		if (sqlite3_exec(db, end, NULL, NULL, NULL) != SQLITE_OK) {
			util_cli_error("sql", "cannot %s: %s", status ? "roll back" : "commit",
				       sqlite3_errmsg(db));
			status = status ? status : 1;
		}
	}
	return status;
}

/* sql on the trace (or ClickHouse URL) target: the exit status. */
static int sql_on(const char *target, const char *sql, enum fmt fmt, int write)
{
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	char *msg = NULL;
	int status;

	if (!strncmp(target, "clickhouse://", 13)) { /* docs/fleet.md */
		static const char *const names[] = { [FMT_TABLE] = "table", [FMT_CSV] = "csv",
						     [FMT_JSON] = "json", [FMT_MARKDOWN] = "markdown" };

		return fleet_sql_run(target, sql, names[fmt], write, &err) ?
			       util_cli_fail("sql", &err) : 0;
	}
	if (store_open(target, write ? 0 : STORE_READONLY, &s, &err))
		return util_cli_fail("sql", &err);
	sqlite3 *db = store_int_db(s);
	if (store_sql_register(db, &msg) != SQLITE_OK) {
		util_cli_error("sql", "%s", msg ? msg : "cannot register the moetrace functions");
		sqlite3_free(msg);
		status = 1;
	} else {
		status = run_all(db, sql, fmt, write);
	}
	store_free(s);
	return status;
}

/* The query's operands once the options are read: the exit status. */
static int sql_operands(int argc, char **argv, const char *comment_query, enum fmt fmt,
			int write, int examples)
{
	int status;
	char *sql;

	if (examples) {
		if (argc - optind > 1 || comment_query) {
			fputs(usage, stderr);
			return 2;
		}
		print_examples();
		return 0;
	}
	if (argc - optind < 1 || argc - optind + !!comment_query > 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (comment_query || argc - optind == 2) {
		sql = xstrdup(comment_query ? comment_query : argv[optind + 1]);
	} else {
		if (isatty(0))
			fprintf(stderr, "moetrace sql: reading SQL from standard input\n");
		sql = read_all(stdin);
		if (!sql) {
			util_cli_error("sql", "cannot read standard input");
			return 1;
		}
	}
	status = sql_on(argv[optind], sql, fmt, write);
	free(sql);
	return status;
}

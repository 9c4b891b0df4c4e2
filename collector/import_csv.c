/*
 * import_csv.c: the CSV importer.  The file is mapped and read twice: the
 * first pass checks syntax and order and learns the shape (when no model
 * or explicit shape fixes it), the second builds each step's L x E counts
 * and appends them in batches inside one transaction, so any error leaves
 * the database as it was.  Rows must come grouped by step in increasing
 * order (as every engine dump we know writes them); within a step any
 * order, each (layer, expert) at most once, absent cells are zero.
 * Memory does not grow with the file: the reader gives the mapped pages it
 * has passed back (csv_drop_behind) and a batch holds at most 64 MB.
 * A file another program shortens meanwhile is an error, not a SIGBUS
 * (csv_bus_*).
 */
#include "analyze/analyze.h"
#include "collector/collector.h"
#include "collector/import_int.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { COL_STEP, COL_LAYER, COL_EXPERT, COL_TOKENS, COL_PHASE, NCOLS };

/* Mapped bytes the reader passes before giving them back. */
#define CSV_DROP_BYTES ((size_t)8 << 20)
static const char *const col_names[NCOLS] = { "step", "layer", "expert", "tokens", "phase" };

struct csv {
	const char *path;
	const char *buf, *end, *p; /* p: start of the next line */
	size_t len;
	size_t kept;               /* mapped pages before this offset were given back */
	size_t ahead;              /* mapped pages before this offset were mapped in at once */
	int mapped;
	int64_t line;              /* line number of the current row */
	int ncols;                 /* columns in the header */
	int col[NCOLS];            /* header position of each known column, -1 if absent */
	int which[NCOLS];          /* column of each header position (the inverse of col) */
};

struct row {
	int64_t step, layer, expert, tokens;
	int phase;                 /* -1 if no phase column */
};

/* A mapped file that another program shortens (truncates, rewrites in
 * place) raises SIGBUS on the first page past its new end, which killed
 * the import and left its private database behind.  While an import runs,
 * a SIGBUS on an address inside its map jumps back to csv_import_guarded,
 * which rolls back and reports the file as changed; any other SIGBUS gets
 * the handler that was there before (by default: the process dies). */
struct csv_bus {
	sigjmp_buf jump;
	const char *lo, *hi;       /* the map, once csv_open made it */
	struct sigaction old;
};
static __thread struct csv_bus *volatile csv_bus_now;

static void csv_on_bus(int sig, siginfo_t *si, void *uc)
{
	struct csv_bus *g = csv_bus_now;

	(void)uc;
	if (g && g->lo && (const char *)si->si_addr >= g->lo && (const char *)si->si_addr < g->hi)
		siglongjmp(g->jump, 1);
	/* not our map: the fault repeats under the previous disposition */
	sigaction(sig, g ? &g->old : NULL, NULL);
	if (!g)
		signal(sig, SIG_DFL);
}

static void csv_bus_arm(struct csv_bus *g)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = csv_on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	g->lo = g->hi = NULL;
	csv_bus_now = g;
	sigaction(SIGBUS, &sa, &g->old);
}

static void csv_bus_disarm(struct csv_bus *g)
{
	sigaction(SIGBUS, &g->old, NULL);
	csv_bus_now = NULL;
}

static int csv_open(struct csv *c, const char *path, struct util_err *err)
{
	struct stat sb;
	int fd;

	memset(c, 0, sizeof(*c));
	c->path = path;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return util_err_set(err, UTIL_EIO, "cannot read '%s': not a regular file", path);
	}
	c->len = (size_t)sb.st_size;
	if (c->len == 0) {
		close(fd);
		return util_err_set(err, UTIL_EPARSE, "%s: empty file (expected a header line "
				    "step,layer,expert,tokens)", path);
	}
	void *m = mmap(NULL, c->len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return util_err_set(err, UTIL_EIO, "cannot map '%s': %s", path, strerror(errno));
	madvise(m, c->len, MADV_SEQUENTIAL);
	c->buf = m;
	c->end = c->buf + c->len;
	c->mapped = 1;
	if (csv_bus_now) {
		csv_bus_now->lo = c->buf;
		csv_bus_now->hi = c->end;
	}
	return 0;
}

/* Gives the mapped pages before the next line back to the kernel once
 * CSV_DROP_BYTES of them are behind the reader (all of them with all set),
 * so a long file's map does not stay resident: a private mapping never
 * written refills them from the file if they are read again (pass 2).
 * MADV_SEQUENTIAL alone keeps them mapped until memory runs short. */
static void csv_drop_behind(struct csv *c, int all)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t upto = all ? c->len : (size_t)(c->p - c->buf);

	if (!c->mapped || pg <= 0 || upto <= c->kept || (!all && upto - c->kept < CSV_DROP_BYTES))
		return;
	upto = all ? (upto + (size_t)pg - 1) / (size_t)pg * (size_t)pg
		   : upto / (size_t)pg * (size_t)pg;
	madvise((void *)(c->buf + c->kept), upto - c->kept, MADV_DONTNEED);
	c->kept = upto;
}

/* Maps the next CSV_AHEAD_BYTES of the file in one call once the reader
 * is within half of that of the pages mapped so far: a page fault per
 * 64 KiB of file costs more than parsing it on virtual machines, and the
 * pages come from the page cache either way.  Advice only (Linux 5.14
 * and later); the memory held stays bounded by this window. */
#define CSV_AHEAD_BYTES ((size_t)4 << 20)
static void csv_read_ahead(struct csv *c)
{
#ifdef MADV_POPULATE_READ
	long pg = sysconf(_SC_PAGESIZE);
	size_t pos = (size_t)(c->p - c->buf), from, to;

	if (!c->mapped || pg <= 0 || c->ahead >= c->len || pos + CSV_AHEAD_BYTES / 2 < c->ahead)
		return;
	from = (c->ahead > pos ? c->ahead : pos) / (size_t)pg * (size_t)pg;
	to = pos + CSV_AHEAD_BYTES < c->len ? pos + CSV_AHEAD_BYTES : c->len;
	if (to > from)
		(void)madvise((void *)(c->buf + from), to - from, MADV_POPULATE_READ);
	c->ahead = to;
#else
	(void)c;
#endif
}

static void csv_rewind(struct csv *c)
{
	csv_drop_behind(c, 1);
	c->p = c->buf;
	c->kept = 0;
	c->ahead = 0;
}

static void csv_close(struct csv *c)
{
	if (c->mapped)
		munmap((void *)c->buf, c->len);
	c->mapped = 0;
}

static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl ? nl : end;
}

static int parse_header(struct csv *c, struct util_err *err)
{
	const char *p = c->buf, *e = line_end(p, c->end);
	int n = 0;

	if (e - p >= 3 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
	    (unsigned char)p[2] == 0xbf)
		p += 3; /* UTF-8 byte order mark */
	for (int i = 0; i < NCOLS; i++)
		c->col[i] = -1;
	while (p <= e) {
		const char *f = p, *fe = memchr(p, ',', (size_t)(e - p));
		if (!fe)
			fe = e;
		while (f < fe && (*f == ' ' || *f == '\t' || *f == '"'))
			f++;
		const char *t = fe;
		while (t > f && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r' || t[-1] == '"'))
			t--;
		int k;
		for (k = 0; k < NCOLS; k++)
			if ((size_t)(t - f) == strlen(col_names[k]) && !memcmp(f, col_names[k], (size_t)(t - f)))
				break;
		if (k == NCOLS) {
			return util_err_set(err, UTIL_EPARSE,
					    "%s:1: unknown column '%.*s' in the header (expected "
					    "step,layer,expert,tokens and optionally phase)",
					    c->path, (int)(t - f > 40 ? 40 : t - f), f);
		}
		if (c->col[k] >= 0)
			return util_err_set(err, UTIL_EPARSE, "%s:1: column '%s' appears twice",
					    c->path, col_names[k]);
		c->col[k] = n++;
		p = fe + 1;
	}
	for (int k = 0; k < COL_PHASE; k++)
		if (c->col[k] < 0)
			return util_err_set(err, UTIL_EPARSE,
					    "%s:1: missing header column '%s' (the first line must "
					    "name step,layer,expert,tokens)",
					    c->path, col_names[k]);
	c->ncols = n;
	for (int k = 0; k < NCOLS; k++)
		if (c->col[k] >= 0)
			c->which[c->col[k]] = k;
	c->p = e < c->end ? e + 1 : e;
	c->line = 1;
	return 0;
}

static int parse_int(const char *f, const char *fe, int64_t *out)
{
	int neg = 0;
	uint64_t v = 0;

	if (f < fe && (*f == '-' || *f == '+')) {
		neg = *f == '-';
		f++;
	}
	if (f == fe)
		return -1;
	for (; f < fe; f++) {
		unsigned d = (unsigned)(*f - '0');
		if (d > 9)
			return -1;
		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	if (v > (uint64_t)INT64_MAX)
		return -2;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* The number at p when it has 1 to 7 digits and at least 8 bytes are
 * readable there: its digit count, the value in *out.  0 when another
 * kind of field starts there (the byte loop then decides).  Eight bytes
 * are tested at once, so a field's length costs no mispredicted branch;
 * the digits are then combined pairwise (simdjson's eight-digit parse,
 * the field shifted so that missing leading digits read as zeros). */
static int digits8(const char *p, uint64_t *out)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t w, x, other;
	int n;

	memcpy(&w, p, 8);
	x = w ^ 0x3030303030303030ULL; /* a digit byte becomes 0..9 */
	/* high bit of each byte that is not 0..9 (a carry out of one only
	 * reaches bytes after it, which do not count) */
	other = ((x + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
	if (!other)
		return 0; /* 8 digits or more */
	n = __builtin_ctzll(other) >> 3;
	if (n == 0)
		return 0;
	x <<= 64 - 8 * n;
	x = x * 10 + (x >> 8);
	x = ((x & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)) +
	     ((x >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32))) >> 32;
	*out = x;
	return n;
#else
	(void)p;
	(void)out;
	return 0;
#endif
}

/* The common row, parsed in one pass over its bytes: fields of plain
 * digits (at most 18: no overflow), separated by commas, no phase column,
 * the line ended by LF or CRLF, every value in range.  1 with the row (and
 * the reader moved past it), or 0 for anything else, which csv_next then
 * reads field by field and reports precisely. */
static int csv_fast(struct csv *c, struct row *r)
{
	const char *p = c->p, *end = c->end;
	int64_t v[NCOLS];

	if (c->col[COL_PHASE] >= 0)
		return 0;
	/* a row it takes is at most NCOLS * 19 + 1 bytes: far from the end,
	 * no byte test needs a bound */
	if (end - p < 128)
		return 0;
	for (int k = 0; k < c->ncols; k++) {
		const char *f = p;
		uint64_t x = 0;
		int n = digits8(p, &x);
		if (n > 0) {
			p += n;
		} else {
			unsigned d;
			while ((d = (unsigned)(*p - '0')) <= 9) {
				x = x * 10 + d;
				if (++p - f > 18)
					return 0;
			}
			if (p == f)
				return 0;
		}
		v[c->which[k]] = (int64_t)x;
		if (k + 1 < c->ncols) {
			if (*p != ',')
				return 0;
			p++;
		}
	}
	if (*p == '\r' && p[1] == '\n')
		p++;
	if (*p != '\n')
		return 0;
	p++;
	if (v[COL_STEP] > STORE_STEP_MAX || v[COL_TOKENS] > UINT32_MAX ||
	    v[COL_LAYER] >= STORE_MAX_LAYERS || v[COL_EXPERT] >= STORE_MAX_EXPERTS)
		return 0;
	r->step = v[COL_STEP];
	r->layer = v[COL_LAYER];
	r->expert = v[COL_EXPERT];
	r->tokens = v[COL_TOKENS];
	r->phase = -1;
	c->p = p;
	c->line++;
	return 1;
}

/* Reads the next row: 1 with a row, 0 at the end, or an error. */
static int csv_next(struct csv *c, struct row *r, struct util_err *err)
{
	if ((size_t)(c->p - c->buf) - c->kept >= CSV_DROP_BYTES)
		csv_drop_behind(c, 0);
	if ((size_t)(c->p - c->buf) + CSV_AHEAD_BYTES / 2 >= c->ahead)
		csv_read_ahead(c);
	if (csv_fast(c, r))
		return 1;
	for (;;) {
		if (c->p >= c->end)
			return 0;
		const char *p = c->p, *e = line_end(p, c->end);
		c->p = e < c->end ? e + 1 : e;
		c->line++;
		const char *le = e;
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p)
			continue; /* blank line */
		int k = 0;
		const char *f = p;
		r->phase = -1;
		while (1) {
			const char *fe = memchr(f, ',', (size_t)(le - f));
			if (!fe)
				fe = le;
			if (k >= c->ncols) {
				int nf = 1; /* every field of the line, for the message */
				for (const char *q = p; q < le; q++)
					nf += *q == ',';
				return util_err_set(err, UTIL_EPARSE,
						    "%s:%lld: %d fields, the header has %d", c->path,
						    (long long)c->line, nf, c->ncols);
			}
			const char *a = f, *b = fe;
			while (a < b && (*a == ' ' || *a == '\t'))
				a++;
			while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
				b--;
			int which = -1;
			for (int j = 0; j < NCOLS; j++)
				if (c->col[j] == k)
					which = j;
			if (which == COL_PHASE) {
				char word[16];
				size_t n = (size_t)(b - a);
				if (n >= sizeof(word))
					n = sizeof(word) - 1;
				memcpy(word, a, n);
				word[n] = 0;
				r->phase = store_phase_parse(word);
				if (r->phase < 0)
					return util_err_set(err, UTIL_EPARSE,
							    "%s:%lld: field 'phase': '%s' is not prefill, "
							    "decode or unknown",
							    c->path, (long long)c->line, word);
			} else {
				int64_t v;
				int rc = parse_int(a, b, &v);
				if (rc == -1)
					return util_err_set(err, UTIL_EPARSE,
							    "%s:%lld: field '%s': '%.*s' is not an integer",
							    c->path, (long long)c->line, col_names[which],
							    (int)(b - a > 32 ? 32 : b - a), a);
				if (rc == -2)
					return util_err_set(err, UTIL_EPARSE,
							    "%s:%lld: field '%s': '%.*s' overflows",
							    c->path, (long long)c->line, col_names[which],
							    (int)(b - a > 32 ? 32 : b - a), a);
				switch (which) {
				case COL_STEP: r->step = v; break;
				case COL_LAYER: r->layer = v; break;
				case COL_EXPERT: r->expert = v; break;
				case COL_TOKENS: r->tokens = v; break;
				}
			}
			k++;
			if (fe == le)
				break;
			f = fe + 1;
		}
		if (k != c->ncols)
			return util_err_set(err, UTIL_EPARSE, "%s:%lld: %d fields, the header has %d",
					    c->path, (long long)c->line, k, c->ncols);
		if (store_step_check(r->step, err))
			return util_err_prefix(err, "%s:%lld: field 'step': ", c->path,
					       (long long)c->line);
		if (r->tokens < 0)
			return util_err_set(err, UTIL_EPARSE,
					    "%s:%lld: field 'tokens': %lld is negative", c->path,
					    (long long)c->line, (long long)r->tokens);
		if (r->tokens > UINT32_MAX)
			return util_err_set(err, UTIL_EPARSE,
					    "%s:%lld: field 'tokens': %lld overflows a 32-bit count",
					    c->path, (long long)c->line, (long long)r->tokens);
		if (r->layer < 0 || r->layer >= STORE_MAX_LAYERS)
			return util_err_set(err, UTIL_EPARSE,
					    "%s:%lld: field 'layer': %lld is out of range [0, %d)",
					    c->path, (long long)c->line, (long long)r->layer,
					    STORE_MAX_LAYERS);
		if (r->expert < 0 || r->expert >= STORE_MAX_EXPERTS)
			return util_err_set(err, UTIL_EPARSE,
					    "%s:%lld: field 'expert': %lld is out of range [0, %d)",
					    c->path, (long long)c->line, (long long)r->expert,
					    STORE_MAX_EXPERTS);
		return 1;
	}
}

/* What a pass over the rows saw: rows, steps, the largest layer and
 * expert, and the first row past the shape the options fix, if any (the
 * run's shape is checked against them, the message names that row). */
struct seen_rows {
	int64_t rows, nsteps, max_layer, max_expert;
	int64_t layers, experts;	   /* the options' shape, 0 if the data's */
	int64_t bad_layer, bad_layer_line; /* line 0: none */
	int64_t bad_expert, bad_expert_line;
};

static void seen_init(struct seen_rows *sr, const struct collector_import_opts *o)
{
	memset(sr, 0, sizeof(*sr));
	sr->max_layer = sr->max_expert = -1;
	sr->layers = o->layers ? o->layers : o->model ? o->model->layers : 0;
	sr->experts = o->experts ? o->experts : o->model ? o->model->experts : 0;
}

static void seen_row(struct seen_rows *sr, const struct row *r, int64_t line)
{
	if (r->layer > sr->max_layer)
		sr->max_layer = r->layer;
	if (r->expert > sr->max_expert)
		sr->max_expert = r->expert;
	if (sr->layers && r->layer >= sr->layers && !sr->bad_layer_line) {
		sr->bad_layer = r->layer;
		sr->bad_layer_line = line;
	}
	if (sr->experts && r->expert >= sr->experts && !sr->bad_expert_line) {
		sr->bad_expert = r->expert;
		sr->bad_expert_line = line;
	}
}

/* Pass 1: syntax, order and shape.  With progress, reports the share of
 * the file read, at most once a second (*last_report, from t0). */
static int scan(struct csv *c, struct seen_rows *sr, int progress, double t0, double *last_report,
		struct util_err *err)
{
	struct row r;
	int64_t prev = INT64_MIN;
	int rc;

	while ((rc = csv_next(c, &r, err)) == 1) {
		if (r.step < prev)
			return util_err_set(err, UTIL_EPARSE,
					    "%s:%lld: field 'step': %lld comes after step %lld; rows "
					    "must be grouped by increasing step (sort -t, -k1,1n "
					    "--stable fixes the file)",
					    c->path, (long long)c->line, (long long)r.step, (long long)prev);
		sr->nsteps += sr->rows == 0 || r.step != prev;
		prev = r.step;
		seen_row(sr, &r, c->line);
		sr->rows++;
		if (progress && (sr->rows & 0xfffff) == 0 && util_now() - *last_report > 1.0) {
			*last_report = util_now();
			fprintf(stderr, "\rimport: checking %lld rows (%.0f%% of the file), %.1f s",
				(long long)sr->rows,
				100.0 * (double)(c->p - c->buf) / (double)c->len,
				*last_report - t0);
		}
	}
	if (rc < 0)
		return rc;
	if (sr->rows == 0)
		return util_err_set(err, UTIL_EPARSE, "%s: no data rows after the header", c->path);
	return 0;
}

struct batch {
	struct store_step *steps;
	uint32_t *counts;
	size_t n, cap, cells;
};

static int flush_batch(struct store *s, const struct store_run *run, struct batch *b,
		       struct util_err *err)
{
	/* the step's tokens: the routed tokens / top-k of the layer that
	 * routed the most (a layer whose records were lost reads fewer) */
	if (run->topk)
		for (size_t i = 0; i < b->n; i++)
			b->steps[i].tokens = (int64_t)analyze_routed_tokens(
				b->steps[i].counts, run->layers, run->experts, run->topk);
	if (b->n && store_steps_append(s, run, b->steps, b->n))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	b->n = 0;
	return 0;
}

/* The new run's row from the first pass (rows, steps, largest layer and
 * expert seen) and the options: the preset's or the given shape and EP
 * layout, checked against the data.  0, or the error with err set. */
static int csv_run(const char *path, const struct collector_import_opts *o,
		   const struct seen_rows *sr, struct store_run *run, struct util_err *err)
{
	int64_t rows = sr->rows, nsteps = sr->nsteps, max_layer = sr->max_layer,
		max_expert = sr->max_expert;
	const char *shape = o->model ? o->model->name : "the given shape";
	int rc;

	/* A file with a row for every cell of an L x E grid in every step (as
	 * `export --format csv` and the engines' dense dumps write it; a cell
	 * twice is refused below) states its shape: it must be the preset's. */
	if (o->model && !o->layers && !o->experts &&
	    nsteps > 0 && rows % nsteps == 0 && rows / nsteps == (max_layer + 1) * (max_expert + 1) &&
	    (max_layer + 1 != o->model->layers || max_expert + 1 != o->model->experts))
		return util_err_set(err, UTIL_ERANGE,
				    "%s: the data has every cell of %lld MoE layers x %lld experts in "
				    "each of its %lld steps, --model %s has %d x %d: the trace is not "
				    "of %s (give the right preset, or none)",
				    path, (long long)(max_layer + 1), (long long)(max_expert + 1),
				    (long long)nsteps, o->model->name, o->model->layers,
				    o->model->experts, o->model->name);

	snprintf(run->name, sizeof(run->name), "%s", o->run_name);
	run->layers = o->layers ? o->layers : o->model ? o->model->layers : (int)max_layer + 1;
	run->experts = o->experts ? o->experts : o->model ? o->model->experts : (int)max_expert + 1;
	run->topk = o->topk ? o->topk : o->model ? o->model->topk : 0;
	if (o->model) {
		snprintf(run->model, sizeof(run->model), "%s", o->model->name);
		run->first_layer = o->model->first_layer;
		run->ranks = o->model->ranks;
		run->slots = o->model->slots;
		run->ranks_per_node = o->model->ranks_per_node;
	}
	if ((rc = imp_layout_options(run, o, err)))
		return rc;
	/* only a shape the options fix can be too small for a row */
	if (max_layer >= run->layers)
		return util_err_set(err, UTIL_ERANGE,
				    "%s:%lld: layer %lld is out of range for %s (%d MoE layers)",
				    path, (long long)sr->bad_layer_line, (long long)sr->bad_layer,
				    shape, run->layers);
	if (max_expert >= run->experts)
		return util_err_set(err, UTIL_ERANGE,
				    "%s:%lld: expert %lld is out of range for %s (%d experts)",
				    path, (long long)sr->bad_expert_line, (long long)sr->bad_expert,
				    shape, run->experts);
	snprintf(run->source, sizeof(run->source), "import %s", path);
	return 0;
}

/* Pass 2, or the only pass: the rows into each step's L x E counts, in
 * batches appended to run.  With single, nothing has checked the rows'
 * order and range yet: a row out of either stops it with IMPORT_AGAIN
 * (the caller then reads the file in two passes, which report it). */
#define IMPORT_AGAIN 1
static int store_rows(struct store *s, struct csv *c, const struct store_run *run,
		      struct batch *b, uint8_t *seen, const struct collector_import_opts *o,
		      int single, int64_t rows, double t0, struct seen_rows *st,
		      struct util_err *err)
{
	const char *path = c->path;
	double last_report = t0;
	struct row r;
	struct store_step *cur = NULL;
	int64_t cur_line = 0, done = 0;
	int rc;

	seen_init(st, o);
	while ((rc = csv_next(c, &r, err)) == 1) {
		if (single) {
			if ((cur && r.step < cur->step) || r.layer >= run->layers ||
			    r.expert >= run->experts)
				return IMPORT_AGAIN;
			seen_row(st, &r, c->line);
		}
		if (!cur || r.step != cur->step) {
			if (b->n == b->cap && (rc = flush_batch(s, run, b, err)))
				return rc;
			cur = &b->steps[b->n];
			cur->counts = b->counts + b->n * b->cells;
			memset(cur->counts, 0, b->cells * sizeof(uint32_t));
			memset(seen, 0, (b->cells + 7) / 8);
			cur->step = r.step;
			cur->phase = r.phase > 0 ? r.phase : 0;
			cur->time = 0;
			cur->tokens = 0;
			cur_line = c->line;
			b->n++;
			st->nsteps++;
		} else if (r.phase >= 0 && r.phase != cur->phase) {
			return util_err_set(err, UTIL_EPARSE,
					    "%s:%lld: field 'phase': step %lld is %s here but %s at "
					    "line %lld",
					    path, (long long)c->line, (long long)r.step,
					    store_phase_name(r.phase), store_phase_name(cur->phase),
					    (long long)cur_line);
		}
		size_t cell = (size_t)r.layer * (size_t)run->experts + (size_t)r.expert;
		if (seen[cell / 8] & (1u << (cell % 8)))
			return util_err_set(err, UTIL_EPARSE,
					    "%s:%lld: duplicate row for step %lld, layer %lld, expert "
					    "%lld",
					    path, (long long)c->line, (long long)r.step,
					    (long long)r.layer, (long long)r.expert);
		seen[cell / 8] |= (uint8_t)(1u << (cell % 8));
		cur->counts[cell] = (uint32_t)r.tokens;
		done++;
		if (o->progress && (done & 0xfffff) == 0 && util_now() - last_report > 1.0) {
			last_report = util_now();
			fprintf(stderr, "\rimport: storing %lld of %lld rows (%.0f%%), %.1f s%8s",
				(long long)done, (long long)rows, 100.0 * (double)done / (double)rows,
				last_report - t0, "");
		}
	}
	st->rows = done;
	if (rc < 0)
		return rc;
	if (single && done == 0)
		return IMPORT_AGAIN;
	return flush_batch(s, run, b, err);
}

/*
 * single: when the options fix the shape (a model or layers and experts)
 * and no progress is shown, the file is read once; the checks the first
 * pass would have made (order, range, the shape of a dense file) are made
 * on the way and at the end, inside the transaction.  Anything amiss rolls
 * it back and the import starts again in two passes, which report it as
 * they always have.
 */
/* What import_csv holds, for csv_import_guarded to release also after a
 * jump out of it. */
struct csv_hold {
	struct csv c;
	struct batch b;
	uint8_t *seen;
	int in_tx;
};

static int import_csv(struct store *s, const char *path, const struct collector_import_opts *o,
		      int single, struct csv_hold *h, struct store_run *run_out,
		      struct util_err *err)
{
	struct store_run run = { 0 }, check = { 0 };
	struct seen_rows st, sc;
	int rc;
	double t0 = util_now(), last_report = t0;

	seen_init(&sc, o);
	if ((rc = csv_open(&h->c, path, err)))
		return rc;
	if ((rc = parse_header(&h->c, err)))
		return rc;
	if (!single && (rc = scan(&h->c, &sc, o->progress, t0, &last_report, err)))
		return rc;
	if ((rc = csv_run(path, o, &sc, &run, err)))
		return rc;

	h->b.cells = (size_t)run.layers * (size_t)run.experts;
	/* one 2 MiB page where the kernel allows (util_malloc_large): a
	 * fault per 4 KiB page would cost more than filling them */
	h->b.cap = (2u << 20) / (h->b.cells * 4);
	if (h->b.cap < 1)
		h->b.cap = 1;
	if (h->b.cap > 512)
		h->b.cap = 512;
	h->b.steps = calloc(h->b.cap, sizeof(*h->b.steps));
	h->b.counts = util_malloc_large(h->b.cap * h->b.cells * sizeof(uint32_t));
	h->seen = malloc((h->b.cells + 7) / 8);
	if (!h->b.steps || !h->b.counts || !h->seen) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory for %zu x %zu cells", h->b.cap, h->b.cells);
		return rc;
	}

	if ((rc = store_begin(s))) {
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
		return rc;
	}
	h->in_tx = 1;
	if ((rc = store_run_add(s, &run))) {
		rc = util_err_set(err, rc, "%s: %s", path, store_errmsg(s));
		return rc;
	}

	if (!single) { /* pass 2 */
		csv_rewind(&h->c);
		if ((rc = parse_header(&h->c, err)))
			return rc;
	}
	if ((rc = store_rows(s, &h->c, &run, &h->b, h->seen, o, single, sc.rows, t0, &st, err)))
		return rc;
	/* the first pass's checks of the shape, now that the rows are known */
	if (single && (rc = csv_run(path, o, &st, &check, err)))
		return rc;
	if ((rc = store_commit(s))) {
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
		return rc;
	}
	h->in_tx = 0;
	if (o->progress && util_now() - t0 > 1.0)
		fprintf(stderr, "\rimport: %lld rows in %.1f s%20s\n", (long long)st.rows,
			util_now() - t0, "");
	if (run_out)
		*run_out = run;
	return 0;
}

static void csv_hold_release(struct store *s, struct csv_hold *h)
{
	if (h->in_tx)
		store_rollback(s);
	free(h->b.steps);
	free(h->b.counts);
	free(h->seen);
	csv_close(&h->c);
	free(h);
}

/* import_csv under the SIGBUS guard (csv_bus_*): a file shortened while it
 * is read is refused, the transaction rolled back. */
static int csv_import_guarded(struct store *s, const char *path,
			      const struct collector_import_opts *o, int single,
			      struct store_run *run_out, struct util_err *err)
{
	struct csv_hold *h = calloc(1, sizeof(*h));
	struct csv_bus g;
	int rc;

	if (!h)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	if (sigsetjmp(g.jump, 1)) {
		csv_bus_disarm(&g);
		csv_hold_release(s, h);
		*err = (struct util_err)UTIL_ERR_INIT;
		return util_err_set(err, UTIL_EIO,
				    "%s: the file became shorter while it was read (another "
				    "program changed it): nothing imported",
				    path);
	}
	csv_bus_arm(&g);
	rc = import_csv(s, path, o, single, h, run_out, err);
	csv_bus_disarm(&g);
	csv_hold_release(s, h);
	return rc;
}

int collector_import_csv(struct store *s, const char *path,
			 const struct collector_import_opts *o, struct store_run *run_out,
			 struct util_err *err)
{
	int single = !o->progress && (o->model || (o->layers && o->experts)), rc;

	/* a file that changed is not read again */
	if (single && ((rc = csv_import_guarded(s, path, o, 1, run_out, err)) == 0 ||
		       rc == UTIL_EIO))
		return rc;
	*err = (struct util_err)UTIL_ERR_INIT;
	return csv_import_guarded(s, path, o, 0, run_out, err);
}

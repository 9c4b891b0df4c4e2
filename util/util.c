/*
 * util.c: errors, allocators, buffers, parsing, clock, PRNG.  Nothing here
 * knows about MoE; start reading at util_err_set().
 */
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

int util_err_vset(struct util_err *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return code;
}

int (util_err_set)(struct util_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	util_err_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int util_err_prefix(struct util_err *err, const char *fmt, ...)
{
	char pre[256], old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return 0;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = 0;
	size_t np = strlen(pre), no = strlen(old);
	if (np > sizeof(err->msg) - 1)
		np = sizeof(err->msg) - 1;
	if (no > sizeof(err->msg) - 1 - np)
		no = sizeof(err->msg) - 1 - np;
	memcpy(err->msg, pre, np);
	memcpy(err->msg + np, old, no);
	err->msg[np + no] = 0;
	return err->code;
}

int util_exit_status(int code)
{
	if (code == 0)
		return 0;
	if (code == UTIL_EUSAGE || code == UTIL_EPARSE || code == UTIL_ERANGE ||
	    code == UTIL_ENOTFOUND)
		return 2;
	return 1;
}

const char *util_code_name(int code)
{
	switch (code) {
	case UTIL_OK: return "ok";
	case UTIL_EIO: return "i/o error";
	case UTIL_EPARSE: return "parse error";
	case UTIL_EDB: return "database error";
	case UTIL_EUSAGE: return "usage error";
	case UTIL_ENOTFOUND: return "not found";
	case UTIL_ENOMEM: return "out of memory";
	case UTIL_ERANGE: return "out of range";
	case UTIL_ESTATE: return "invalid state";
	case UTIL_EFULL: return "queue full";
	}
	return "unknown error";
}

void (*util_die_hook)(void);

void util_die(const char *fmt, ...)
{
	va_list ap;

	if (util_die_hook)
		util_die_hook();
	fputs("moetrace: fatal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		util_die("out of memory allocating %zu bytes", n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		util_die("out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		util_die("out of memory reallocating %zu bytes", n);
	return q;
}

void *xmallocarray(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		util_die("allocation of %zu x %zu bytes overflows", n, size);
	return xmalloc(n * size);
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

/* ---- allocators for library code ---------------------------------------- */

#ifdef UTIL_ALLOC_HOOK
static long alloc_fail_at, alloc_calls;

void util_alloc_fail_at(long n)
{
	__atomic_store_n(&alloc_calls, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&alloc_fail_at, n, __ATOMIC_SEQ_CST);
}

long util_alloc_calls(void)
{
	return __atomic_load_n(&alloc_calls, __ATOMIC_SEQ_CST);
}

/* The CLI tests set the hook from outside: MOETRACE_TEST_FAIL_ALLOC=N
 * fails the Nth call of the process (check build only). */
__attribute__((constructor)) static void alloc_hook_env(void)
{
	const char *v = getenv("MOETRACE_TEST_FAIL_ALLOC");

	if (v && *v)
		util_alloc_fail_at(strtol(v, NULL, 10));
}

/* Counts a call; 1 when it is the one to fail. */
static int alloc_hook_fails(void)
{
	long call = __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_SEQ_CST);

	return call == __atomic_load_n(&alloc_fail_at, __ATOMIC_SEQ_CST);
}
#else
#define alloc_hook_fails() 0
#endif

void *util_malloc(size_t n)
{
	return alloc_hook_fails() ? NULL : malloc(n ? n : 1);
}

void *util_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return alloc_hook_fails() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *util_realloc(void *p, size_t n)
{
	return alloc_hook_fails() ? NULL : realloc(p, n ? n : 1);
}

/* A buffer of a few MiB written once (an image, a ring) costs one page
 * fault per 4 KiB page on first touch, and on virtual machines a fault
 * costs tens of microseconds: more than a short command's work with the
 * buffer.  Aligned on 2 MiB and marked for transparent huge pages, it
 * takes one fault per 2 MiB where the kernel allows it (THP "always" or
 * "madvise"); elsewhere nothing changes. */
#define HUGE_PAGE ((size_t)2 << 20)
void *util_malloc_large(size_t n)
{
	void *p;

	if (n < HUGE_PAGE / 2)
		return util_malloc(n);
	if (n > SIZE_MAX - HUGE_PAGE || alloc_hook_fails())
		return NULL;
	n = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	if (posix_memalign(&p, HUGE_PAGE, n) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, n, MADV_HUGEPAGE); /* advice only: without it, 4 KiB pages */
#endif
	return p;
}

/* ---- buffers -------------------------------------------------------------- */

int util_buf_grow(struct util_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	char *p;

	if (b->failed)
		return UTIL_ENOMEM;
	if (extra >= SIZE_MAX - b->len) {
		if (!b->soft)
			util_die("buffer of %zu + %zu bytes overflows", b->len, extra);
		b->failed = 1;
		return UTIL_ENOMEM;
	}
	if (need <= b->cap)
		return 0;
	if (need < 2 * b->cap)
		need = 2 * b->cap;
	if (need < 64)
		need = 64;
	if (!b->soft) {
		p = xrealloc(b->data, need);
	} else if (!(p = util_realloc(b->data, need))) {
		b->failed = 1;
		return UTIL_ENOMEM;
	}
	b->data = p;
	b->cap = need;
	return 0;
}

int util_buf_check(const struct util_buf *b, struct util_err *err)
{
	return b->failed ? util_err_set(err, UTIL_ENOMEM, "out of memory") : 0;
}

void util_buf_add(struct util_buf *b, const void *p, size_t n)
{
	if (util_buf_grow(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
}

void util_buf_addstr(struct util_buf *b, const char *s)
{
	util_buf_add(b, s, strlen(s));
}

void util_buf_addf(struct util_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (util_buf_grow(b, 64))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		if (util_buf_grow(b, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void util_buf_reset(struct util_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data)
		b->data[0] = 0;
}

void util_buf_release(struct util_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, const char *what,
		   struct util_err *err)
{
	char *end;
	long long v;

	if (!s || !*s)
		return util_err_set(err, UTIL_EUSAGE, "%s: empty value", what);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end || end == s)
		return util_err_set(err, UTIL_EUSAGE, "%s: '%s' is not an integer", what, s);
	if (errno == ERANGE || v < min || v > max)
		return util_err_set(err, UTIL_EUSAGE, "%s: %s is out of range [%lld, %lld]", what,
				    s, (long long)min, (long long)max);
	*out = v;
	return 0;
}

int util_parse_int(const char *s, int min, int max, int *out, const char *what,
		   struct util_err *err)
{
	int64_t v;
	int rc = util_parse_i64(s, min, max, &v, what, err);

	if (!rc)
		*out = (int)v;
	return rc;
}

int util_parse_double(const char *s, double min, double max, double *out, const char *what,
		      struct util_err *err)
{
	char *end;
	double v;

	if (!s || !*s)
		return util_err_set(err, UTIL_EUSAGE, "%s: empty value", what);
	errno = 0;
	v = strtod(s, &end);
	if (*end || end == s || isnan(v))
		return util_err_set(err, UTIL_EUSAGE, "%s: '%s' is not a number", what, s);
	if (errno == ERANGE || v < min || v > max)
		return util_err_set(err, UTIL_EUSAGE, "%s: %s is out of range [%g, %g]", what, s,
				    min, max);
	*out = v;
	return 0;
}

int util_parse_range(const char *s, int64_t *from, int64_t *to, const char *what,
		     struct util_err *err)
{
	const char *colon = strchr(s, ':');
	char left[64];
	size_t n;

	*from = INT64_MIN;
	*to = INT64_MAX;
	if (!colon) {
		if (util_parse_i64(s, INT64_MIN, INT64_MAX, from, what, err))
			return UTIL_EUSAGE;
		*to = *from;
		return 0;
	}
	n = (size_t)(colon - s);
	if (n >= sizeof(left))
		return util_err_set(err, UTIL_EUSAGE, "%s: '%s' is not a range A:B", what, s);
	memcpy(left, s, n);
	left[n] = 0;
	if (n && util_parse_i64(left, INT64_MIN, INT64_MAX, from, what, err))
		return UTIL_EUSAGE;
	if (colon[1] && util_parse_i64(colon + 1, INT64_MIN, INT64_MAX, to, what, err))
		return UTIL_EUSAGE;
	if (*from > *to)
		return util_err_set(err, UTIL_EUSAGE, "%s: empty range '%s'", what, s);
	return 0;
}

double util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double util_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void util_rng_seed(struct util_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t util_rng_next(struct util_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double util_rng_uniform(struct util_rng *r)
{
	return (double)(util_rng_next(r) >> 11) * 0x1.0p-53;
}

double util_rng_normal(struct util_rng *r)
{
	double u1 = util_rng_uniform(r), u2 = util_rng_uniform(r);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint32_t util_rng_below(struct util_rng *r, uint32_t n)
{
	uint64_t m, x;
	uint32_t l;

	if (n <= 1)
		return 0;
	x = util_rng_next(r) >> 32;
	m = x * n;
	l = (uint32_t)m;
	if (l < n) {
		uint32_t t = (uint32_t)(-n) % n;
		while (l < t) {
			x = util_rng_next(r) >> 32;
			m = x * n;
			l = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

int util_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double util_percentile(double *v, size_t n, double pct)
{
	double pos, frac;
	size_t lo;

	if (n == 0)
		return 0.0;
	qsort(v, n, sizeof(*v), util_cmp_double);
	pos = pct / 100.0 * (double)(n - 1);
	lo = (size_t)pos;
	if (lo >= n - 1)
		return v[n - 1];
	frac = pos - (double)lo;
	return v[lo] + frac * (v[lo + 1] - v[lo]);
}

void util_cli_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "moetrace %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int util_cli_fail(const char *cmd, const struct util_err *err)
{
	util_cli_error(cmd, "%s", err->msg[0] ? err->msg : util_code_name(err->code));
	return util_exit_status(err->code ? err->code : UTIL_EIO);
}

unsigned util_umask(void)
{
	mode_t m = umask(022);

	umask(m);
	return (unsigned)m;
}

/* ---- did-you-mean ---------------------------------------------------------- */

/* Folds a name for comparison: lowercase, without '-', '_', '.' and spaces
 * ("DeepSeek-V3" and "deepseekv3" both fold to "deepseekv3"). */
static size_t fold_name(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s && n + 1 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '-' || ch == '_' || ch == '.' || ch == ' ')
			continue;
		out[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	out[n] = '\0';
	return n;
}

/* Optimal string alignment distance; names are short (folded to < 64). */
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
	size_t d[64][64];

	for (size_t i = 0; i <= na; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= nb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= na; i++)
		for (size_t j = 1; j <= nb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[na][nb];
}

const char *util_suggest(const char *word, const char *const *choices, size_t n)
{
	char w[64], c[64];
	size_t nw, best = (size_t)-1, limit;
	const char *pick = NULL;

	if (!word)
		return NULL;
	nw = fold_name(word, w, sizeof(w));
	limit = nw / 3 > 1 ? nw / 3 : 1;
	for (size_t i = 0; i < n; i++) {
		size_t nc, dist;
		if (!choices[i])
			continue;
		nc = fold_name(choices[i], c, sizeof(c));
		dist = edit_distance(w, nw, c, nc);
		if (dist < best) {
			best = dist;
			pick = choices[i];
		}
	}
	if (best <= limit)
		return pick;
	/* a unique prefix ("qwen3-235" for "qwen3-235b-a22b") */
	pick = NULL;
	for (size_t i = 0; nw >= 3 && i < n; i++) {
		if (!choices[i])
			continue;
		fold_name(choices[i], c, sizeof(c));
		if (!strncmp(c, w, nw)) {
			if (pick)
				return NULL;
			pick = choices[i];
		}
	}
	return pick;
}

const char *util_did_you_mean(const char *suggestion, char *buf, size_t cap)
{
	if (!suggestion)
		snprintf(buf, cap, "%s", "");
	else
		snprintf(buf, cap, "; did you mean '%s'?", suggestion);
	return buf;
}

int util_name_fold_eq(const char *a, const char *b)
{
	char fa[64], fb[64];

	if (strlen(a) >= sizeof(fa) || strlen(b) >= sizeof(fb))
		return 0;
	fold_name(a, fa, sizeof(fa));
	fold_name(b, fb, sizeof(fb));
	return !strcmp(fa, fb);
}

const char *util_suggest_list(const char *word, const char *const *names)
{
	size_t n = 0;

	while (names[n])
		n++;
	return util_suggest(word, names, n);
}

int util_opt_unknown(char *const *argv, const struct option *opts)
{
	const char *cmd = argv[0], *arg = optind > 0 ? argv[optind - 1] : NULL;

	if (arg && arg[0] == '-' && arg[1] == '-') {
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const char *names[256];
		size_t n = 0, prefixed = 0;
		char word[64];

		for (const struct option *o = opts; o->name && n < 256; o++) {
			names[n++] = o->name;
			if (strlen(o->name) == len && !strncmp(o->name, name, len)) {
				if (o->has_arg == required_argument)
					util_cli_error(cmd, "option '--%s' needs a value", o->name);
				else
					util_cli_error(cmd, "option '--%s' takes no value",
						       o->name);
				return 2;
			}
			if (!strncmp(o->name, name, len))
				prefixed++;
		}
		snprintf(word, sizeof(word), "%.*s", (int)(len < 63 ? len : 63), name);
		if (prefixed > 1) {
			util_cli_error(cmd, "option '--%s' is ambiguous (see 'moetrace %s --help')",
				       word, cmd);
			return 2;
		}
		const char *s = util_suggest(word, names, n);
		if (s)
			util_cli_error(cmd, "unknown option '--%s'; did you mean '--%s'?", word, s);
		else
			util_cli_error(cmd, "unknown option '--%s' (see 'moetrace %s --help')",
				       word, cmd);
		return 2;
	}
	for (const struct option *o = opts; optopt && o->name; o++)
		if (o->val == optopt && o->has_arg == required_argument) {
			util_cli_error(cmd, "option '-%c' needs a value", optopt);
			return 2;
		}
	if (optopt > ' ' && optopt < 127)
		util_cli_error(cmd, "unknown option '-%c' (see 'moetrace %s --help')", optopt, cmd);
	else
		util_cli_error(cmd, "unknown option '%s' (see 'moetrace %s --help')",
			       arg ? arg : "?", cmd);
	return 2;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there
 * are not one (a stray continuation byte, a cut sequence, an overlong
 * form, a surrogate, a code point past U+10FFFF). */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80
			       ? 4
			       : 0;
	}
	return 0;
}

int util_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t k = utf8_seq(p);
		if (!k)
			return 0;
		p += k;
	}
	return 1;
}

size_t util_utf8_cut(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

char *util_utf8_sanitize(char *dst, size_t n, const char *s)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	while (*p) {
		size_t k = utf8_seq(p);
		const char *from = k ? (const char *)p : repl;
		size_t len = k ? k : 3;
		if (o + len >= n)
			break;
		memcpy(dst + o, from, len);
		o += len;
		p += k ? k : 1;
	}
	dst[o] = 0;
	return dst;
}

const char *util_human_bytes(char *buf, size_t n, double b)
{
	static const char *const u[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	size_t i = 0;

	while (b >= 999.95 && i + 1 < UTIL_ARRAY_SIZE(u)) {
		b /= 1000;
		i++;
	}
	snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
	return buf;
}

const char *util_human_seconds(char *buf, size_t n, double s)
{
	double a = fabs(s);

	if (a == 0)
		snprintf(buf, n, "0 s");
	else if (a < 1e-3)
		snprintf(buf, n, "%.0f us", s * 1e6);
	else if (a < 1)
		snprintf(buf, n, "%.1f ms", s * 1e3);
	else if (a < 600)
		snprintf(buf, n, "%.2f s", s);
	else if (a < 36000)
		snprintf(buf, n, "%.1f min", s / 60);
	else
		snprintf(buf, n, "%.1f h", s / 3600);
	return buf;
}

void util_buf_json_str(struct util_buf *b, const char *s)
{
	char *tmp = NULL;

	if (!util_utf8_valid(s)) {
		size_t n = 3 * strlen(s) + 1;
		tmp = b->soft ? util_malloc(n) : xmalloc(n);
		if (!tmp) {
			b->failed = 1;
			return;
		}
		s = util_utf8_sanitize(tmp, n, s);
	}
	util_buf_addstr(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			util_buf_addf(b, "\\%c", c);
		else if (c == '\n')
			util_buf_addstr(b, "\\n");
		else if (c == '\t')
			util_buf_addstr(b, "\\t");
		else if (c < 0x20)
			util_buf_addf(b, "\\u%04x", c);
		else
			util_buf_add(b, s, 1);
	}
	util_buf_addstr(b, "\"");
	free(tmp);
}

void util_json_str(FILE *f, const char *s)
{
	struct util_buf b = UTIL_BUF_INIT;

	util_buf_json_str(&b, s);
	if (b.len)
		fwrite(b.data, 1, b.len, f);
	util_buf_release(&b);
}

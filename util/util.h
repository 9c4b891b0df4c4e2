/*
 * util: the small helpers every module shares — error codes and messages,
 * allocators that abort on out-of-memory (CLI only: no call of
 * libmoetrace's embedding API reaches them) and allocators that return
 * NULL (library code), growable byte buffers that abort or, soft, record
 * the failure, number parsing with range checks, and a monotonic clock.
 *
 * Ownership: util_buf owns its bytes until util_buf_release(); x-allocators
 * return memory the caller frees with free().
 */
#ifndef UTIL_UTIL_H
#define UTIL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define UTIL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define UTIL_ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

/* Error codes: every fallible function returns 0 or one of these. */
enum util_code {
	UTIL_OK = 0,
	UTIL_EIO = -1,      /* file system or write failure */
	UTIL_EPARSE = -2,   /* malformed input file */
	UTIL_EDB = -3,      /* SQLite failure */
	UTIL_EUSAGE = -4,   /* bad arguments or options */
	UTIL_ENOTFOUND = -5,/* run, step, placement, file not found */
	UTIL_ENOMEM = -6,   /* allocation failed (library paths only) */
	UTIL_ERANGE = -7,   /* value out of range for the run or preset */
	UTIL_ESTATE = -8,   /* call not valid in this state (closed, backwards) */
	UTIL_EFULL = -9,    /* queue full, item dropped */
};

/* A handle-less error: code, optional position and message. */
struct util_err {
	int code;
	char msg[512];
};
#define UTIL_ERR_INIT { 0, { 0 } }

/* Sets err (if not NULL) and returns code, so callers write
 * `return util_err_set(err, UTIL_EPARSE, "...", ...);` */
int util_err_set(struct util_err *err, int code, const char *fmt, ...) UTIL_PRINTF(3, 4);
int util_err_vset(struct util_err *err, int code, const char *fmt, va_list ap);
#ifdef __clang_analyzer__
/* For the static analyzer only: util_err_set returns its code, which it
 * cannot see across files, so it would follow paths where an error
 * returns 0 and report what happens on them. */
#define util_err_set(err, code, ...) (util_err_set((err), (code), __VA_ARGS__), (code))
#endif
/* Prefixes err->msg with more context ("reading 'x.csv': " + old message). */
int util_err_prefix(struct util_err *err, const char *fmt, ...) UTIL_PRINTF(2, 3);
/* Process exit status for a code: 0 ok, 2 usage/bad input, 1 otherwise. */
int util_exit_status(int code);
const char *util_code_name(int code);

/* Allocators that abort with a message on failure (CLI and tools only). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xmallocarray(size_t n, size_t size);
char *xstrdup(const char *s);
/* Hook run before aborting on out-of-memory (the TUI restores the terminal). */
extern void (*util_die_hook)(void);
void util_die(const char *fmt, ...) UTIL_PRINTF(1, 2) __attribute__((noreturn));

/* Allocators that return NULL on failure, for library code, which must
 * return UTIL_ENOMEM rather than end the process that loaded it: malloc,
 * calloc and realloc (a size of 0 asks for 1 byte; calloc checks
 * overflow); util_realloc leaves p alone when it fails. */
void *util_malloc(size_t n);
void *util_calloc(size_t n, size_t size);
void *util_realloc(void *p, size_t n);
/* n bytes (n >= 1) for a buffer of a MiB or more, placed where the kernel
 * can back it with 2 MiB pages (far fewer page faults on first touch);
 * free() releases it; NULL on failure. */
void *util_malloc_large(size_t n);
/* Defined in the check build only (-DUTIL_ALLOC_HOOK), for tests; there
 * MOETRACE_TEST_FAIL_ALLOC=N in the environment calls it at start: the nth
 * call of the util_ allocators from now on fails, a soft buffer's growth
 * included (n <= 0: none fails), and util_alloc_calls() counts those calls
 * since. */
void util_alloc_fail_at(long n);
long util_alloc_calls(void);

/* Growable byte buffer, always NUL-terminated for text use.  A buffer
 * made with UTIL_BUF_INIT aborts when it cannot grow (CLI only); a soft one
 * (UTIL_BUF_SOFT_INIT, for library code) sets `failed` instead and ignores
 * every add after: its contents are then partial, and its user checks
 * util_buf_check() before using them.  reset() and release() clear
 * `failed` and keep the kind. */
struct util_buf {
	char *data;   /* NULL until the first add */
	size_t len, cap;
	int soft;     /* 1: a failed growth sets `failed` instead of aborting */
	int failed;   /* soft only: an add could not grow the buffer */
};
#define UTIL_BUF_INIT { NULL, 0, 0, 0, 0 }
#define UTIL_BUF_SOFT_INIT { NULL, 0, 0, 1, 0 }
/* Room for extra more bytes: 0, or UTIL_ENOMEM (soft buffers only). */
int util_buf_grow(struct util_buf *b, size_t extra);
/* 0 when b holds everything added since its last reset, else UTIL_ENOMEM
 * with err saying "out of memory". */
int util_buf_check(const struct util_buf *b, struct util_err *err);
void util_buf_add(struct util_buf *b, const void *p, size_t n);
void util_buf_addf(struct util_buf *b, const char *fmt, ...) UTIL_PRINTF(2, 3);
void util_buf_addstr(struct util_buf *b, const char *s);
void util_buf_reset(struct util_buf *b);
void util_buf_release(struct util_buf *b);

/* Strict number parsing: whole string, no trailing junk, range checked.
 * Return 0 or UTIL_EUSAGE with err naming `what`. */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, const char *what,
		   struct util_err *err);
/* HOST:PORT, [V6HOST]:PORT or :PORT (all interfaces) into *addr (util/net.c):
 * 0, or UTIL_EUSAGE saying why. */
struct sockaddr_storage;
int util_listen_parse(const char *listen, struct sockaddr_storage *addr, struct util_err *err);
/* Can the address be listened on now (bound, then let go)?  For a command
 * that must not create anything when its server cannot start: 0, or
 * UTIL_EIO with why (a port in use). */
int util_listen_probe(const char *listen, struct util_err *err);
int util_parse_int(const char *s, int min, int max, int *out, const char *what,
		   struct util_err *err);
int util_parse_double(const char *s, double min, double max, double *out, const char *what,
		      struct util_err *err);
/* "A:B", "A:", ":B" or "A" (A..A) step ranges; missing ends are INT64_MIN/MAX. */
int util_parse_range(const char *s, int64_t *from, int64_t *to, const char *what,
		     struct util_err *err);

/* Checked int64 arithmetic on values read from files and databases: each
 * stores a op b in *out and returns 0, or returns UTIL_ERANGE (leaving *out
 * alone) when the exact result does not fit an int64. */
static inline int util_add_i64(int64_t a, int64_t b, int64_t *out)
{
	return __builtin_add_overflow(a, b, out) ? UTIL_ERANGE : 0;
}
static inline int util_sub_i64(int64_t a, int64_t b, int64_t *out)
{
	return __builtin_sub_overflow(a, b, out) ? UTIL_ERANGE : 0;
}
static inline int util_mul_i64(int64_t a, int64_t b, int64_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? UTIL_ERANGE : 0;
}

/* Is s valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF)? */
int util_utf8_valid(const char *s);
/* Copies s into dst (n bytes, NUL-terminated, n > 0) with each byte
 * sequence that is not valid UTF-8 replaced by U+FFFD, cutting only
 * between characters; returns dst. */
char *util_utf8_sanitize(char *dst, size_t n, const char *s);
/* The longest prefix of s, at most max bytes, that ends between
 * characters (never inside a UTF-8 sequence): its length. */
size_t util_utf8_cut(const char *s, size_t max);

/* The process umask (read without changing it): files made with mkstemp
 * and renamed into place get 0666 & ~util_umask(), as open() would give. */
unsigned util_umask(void);

/* Output files (util/outfile.c).  util_out_target: the file that writing
 * path replaces, malloc'ed in *target: path, or when path is a symbolic
 * link the file its chain of links ends at (which need not exist yet), so
 * that a writer which renames a temporary file in the target's directory
 * onto the target writes through the link and keeps it.  UTIL_EIO for a
 * link that cannot be read or a chain of more than 40.
 * util_out_check: UTIL_EUSAGE, err naming both, when writing path would
 * replace in, the trace a command reads (the same file by any name: a
 * link, a hard link, another spelling), or one of the files SQLite keeps
 * beside it (in-wal, in-shm, in-journal); 0 for in NULL or not a file. */
int util_out_target(const char *path, char **target, struct util_err *err);
int util_out_check(const char *path, const char *in, struct util_err *err);

/* Human-scaled byte counts, one family everywhere: decimal SI units
 * (B, kB, MB, GB, TB, powers of 1000), the units link bandwidths are quoted
 * in (GB/s), so that bytes / bandwidth reads as seconds: "512 B",
 * "44.1 MB", "1.3 TB" (whole bytes below 1 kB, one decimal above).  Writes
 * into buf (n bytes) and returns buf. */
const char *util_human_bytes(char *buf, size_t n, double bytes);
/* Human-scaled seconds: "850 us", "12.3 ms", "4.56 s", then minutes and
 * hours past 600 s ("12.5 min", "3.1 h").  Returns buf. */
const char *util_human_seconds(char *buf, size_t n, double seconds);
/* s as a JSON string, quoted and escaped; bytes that are not valid UTF-8
 * go out as U+FFFD. */
void util_json_str(FILE *f, const char *s);
/* The same, appended to b. */
void util_buf_json_str(struct util_buf *b, const char *s);

/* Strict JSON (util/json.c), the parser of every JSON reader: text must be
 * exactly one JSON value (RFC 8259: no trailing comma, single quote,
 * comment, NaN, leading zero, raw control character or invalid UTF-8;
 * white space around it) that can be kept as written: no key twice in
 * one object at any depth, no \u0000 or lone surrogate escape, no integer
 * past 64 bits.  Then json-c (strict) builds it into *out, which the
 * caller puts.  On failure *out is NULL and je says where and why. */
struct json_object;
struct util_json_err {
	long line;	/* 1 + the newlines of the text before the spot */
	int syntax;	/* 1: not JSON at all; 0: JSON that moetrace refuses */
	char what[224]; /* "a comma before ']' (a trailing comma)", "field 'a.b' appears twice ..." */
};
/* 0, UTIL_EPARSE or UTIL_ENOMEM. */
int util_json_parse(const char *text, size_t len, struct json_object **out,
		    struct util_json_err *je);
/* The same for a whole file's text, with err saying "'NAME' line N: not
 * valid JSON: WHAT" (or "'NAME' line N: WHAT" for JSON it refuses). */
int util_json_parse_named(const char *name, const char *text, size_t len, struct json_object **out,
			  struct util_err *err);
/* v as an integer in [min, max]: 0 with *out set, -1 if v is not a JSON
 * integer (a fraction or an exponent makes a number a double, even 3.0 or
 * 1e3, which are refused as the CSV refuses them), -2 if out of range. */
int util_json_int(struct json_object *v, int64_t min, int64_t max, int64_t *out);

/* Seconds from a monotonic clock, and wall-clock seconds since the epoch. */
double util_now(void);
double util_wall(void);

/* Small deterministic PRNG (xoshiro256**), identical on every machine. */
struct util_rng {
	uint64_t s[4];
};
void util_rng_seed(struct util_rng *r, uint64_t seed);
uint64_t util_rng_next(struct util_rng *r);
double util_rng_uniform(struct util_rng *r);   /* [0, 1) */
double util_rng_normal(struct util_rng *r);    /* N(0, 1), Box-Muller */
uint32_t util_rng_below(struct util_rng *r, uint32_t n); /* [0, n) unbiased */

/* CLI messages in git's manner: "moetrace CMD: message" on stderr. */
void util_cli_error(const char *cmd, const char *fmt, ...) UTIL_PRINTF(2, 3);
/* Prints err's message for cmd and returns the exit status for its code. */
int util_cli_fail(const char *cmd, const struct util_err *err);

/* Did-you-mean.  util_suggest returns the choice closest to word (edit
 * distance with adjacent transpositions, ignoring case, '-', '_' and '.'),
 * or NULL when none is close enough (within a third of the word's length,
 * at least 1).  The returned pointer is one of choices. */
const char *util_suggest(const char *word, const char *const *choices, size_t n);
/* "; did you mean 'S'?" in buf for a suggestion S, "" for NULL: the tail of
 * an "unknown X 'Y'" message.  Returns buf. */
const char *util_did_you_mean(const char *suggestion, char *buf, size_t cap);
/* 1 when a and b are equal once case, '-', '_', '.' and spaces are dropped. */
int util_name_fold_eq(const char *a, const char *b);
/* The same over a NULL-terminated list of names. */
const char *util_suggest_list(const char *word, const char *const *names);
/* getopt_long reported '?' for argv (argv[0] is the command's name, as
 * commands receive it): prints one line saying what was wrong with which
 * option -- unknown (with the closest long option), ambiguous, or missing
 * its value -- and where the options are listed; returns exit status 2.
 * The CLI sets opterr = 0 so that getopt itself prints nothing.  struct
 * option is <getopt.h>'s. */
struct option;
int util_opt_unknown(char *const *argv, const struct option *opts);

/* Comparison helpers for qsort. */
int util_cmp_double(const void *a, const void *b);
/* Percentile (0..100) of n doubles by linear interpolation; sorts v in place. */
double util_percentile(double *v, size_t n, double pct);

#endif

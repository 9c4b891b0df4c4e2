/*
 * json.c: the one way moetrace parses JSON.  json-c alone takes more than
 * JSON and changes some of what it takes: trailing commas, single quotes,
 * NaN, a raw tab in a string, an integer past 64 bits (saturated), a lone
 * surrogate escape (U+FFFD), and a key given twice (the last one kept,
 * silently).  So every reader's text goes through check_value() first, a
 * validator of RFC 8259 that also refuses what a reader could only store
 * changed, and json-c, in strict mode, then builds the tree of text known
 * to be good.  Start at util_json_parse().
 */
#include "util/util.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* Nesting deeper than this is refused (json-c's tokener gets a little more). */
#define DEPTH_MAX 64

/* A key of an object being checked: its decoded bytes in the arena, where
 * it stands in the text (for the message) and its raw spelling. */
struct key {
	size_t dec, dlen; /* decoded bytes: arena + dec, dlen long */
	const char *raw;  /* between its quotes, as written */
	size_t rlen;
	const char *ptr; /* arena + dec, set just before sorting */
};

struct chk {
	const char *s, *p, *e;
	struct key *k;
	size_t nk, kcap;
	char *arena;
	size_t alen, acap;
	/* where the value being checked stands, rendered only for a message
	 * ("layer_list[3].device_list"): a member's key or an element's index
	 * per level */
	struct frame {
		const char *key; /* NULL: an array element */
		size_t klen, idx;
	} fr[DEPTH_MAX + 1];
	int nfr;
	int depth;
	struct util_json_err *je;
};

static int fail(struct chk *c, const char *at, int syntax, const char *fmt, ...) UTIL_PRINTF(4, 5);

/* The path of the value being checked into buf ("" at the top). */
static const char *path(const struct chk *c, char *buf, size_t n)
{
	size_t o = 0;

	buf[0] = 0;
	for (int i = 0; i < c->nfr && o < n; i++) {
		const struct frame *f = &c->fr[i];
		int k = f->key ? snprintf(buf + o, n - o, "%s%.*s", i ? "." : "",
					  (int)(f->klen > 64 ? 64 : f->klen), f->key)
			       : snprintf(buf + o, n - o, "[%zu]", f->idx);
		if (k < 0)
			break;
		o += (size_t)k;
	}
	return buf;
}

/* Sets je: the line of `at`, and the message, after the field it is in. */
static int fail(struct chk *c, const char *at, int syntax, const char *fmt, ...)
{
	struct util_json_err *je = c->je;
	char where[160];
	va_list ap;
	long line = 1;
	int n = 0;

	for (const char *q = c->s; q < at && q < c->e; q++)
		line += *q == '\n';
	je->line = line;
	je->syntax = syntax;
	if (c->nfr)
		n = snprintf(je->what, sizeof(je->what),
			     "field '%s': ", path(c, where, sizeof(where)));
	if (n < 0 || (size_t)n >= sizeof(je->what))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(je->what + n, sizeof(je->what) - (size_t)n, fmt, ap);
	va_end(ap);
	return UTIL_EPARSE;
}

static int nomem(struct chk *c)
{
	c->je->line = 0;
	c->je->syntax = 0;
	snprintf(c->je->what, sizeof(c->je->what), "out of memory");
	return UTIL_ENOMEM;
}

static void ws(struct chk *c)
{
	while (c->p < c->e && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

/* "unexpected X" for the character at c->p (or the end of the text). */
static int unexpected(struct chk *c, const char *expected)
{
	unsigned char ch;

	if (c->p >= c->e)
		return fail(c, c->p, 1, "the text ends where %s should follow", expected);
	ch = (unsigned char)*c->p;
	if (ch == '\'')
		return fail(c, c->p, 1, "a string in single quotes (JSON quotes with \")");
	if (ch == '/')
		return fail(c, c->p, 1, "a comment (JSON has none)");
	if (ch > 0x20 && ch < 0x7f)
		return fail(c, c->p, 1, "'%c' where %s should follow", ch, expected);
	return fail(c, c->p, 1, "byte 0x%02x where %s should follow", ch, expected);
}

/* The length of the UTF-8 sequence at p (before e), 0 if not a valid one:
 * no overlong forms, surrogates or code points past U+10FFFF. */
static size_t utf8_len(const unsigned char *p, const unsigned char *e)
{
	unsigned c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if ((size_t)(e - p) < n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static int arena_add(struct chk *c, const void *b, size_t n)
{
	if (c->alen + n > c->acap) {
		size_t cap = c->acap ? 2 * c->acap : 256;
		char *a;
		while (cap < c->alen + n)
			cap *= 2;
		if (!(a = util_realloc(c->arena, cap)))
			return nomem(c);
		c->arena = a;
		c->acap = cap;
	}
	memcpy(c->arena + c->alen, b, n);
	c->alen += n;
	return 0;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A \uXXXX escape (with its low half, for a high surrogate) at c->p, which
 * points past the 'u'; the code point in *cp. */
static int escape_u(struct chk *c, const char *esc, unsigned *cp)
{
	unsigned hi, lo;

	if (c->e - c->p < 4 || hex4(c->p, &hi))
		return fail(c, esc, 1, "'\\u' is not followed by four hex digits");
	c->p += 4;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return fail(c, esc, 0,
			    "\\u%04x is the second half of a UTF-16 surrogate pair "
			    "without its first (not a character)",
			    hi);
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (c->e - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' || hex4(c->p + 2, &lo) ||
		    lo < 0xdc00 || lo > 0xdfff)
			return fail(c, esc, 0,
				    "\\u%04x is the first half of a UTF-16 surrogate "
				    "pair without its second (not a character)",
				    hi);
		c->p += 6;
		hi = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (hi == 0)
		return fail(c, esc, 0,
			    "a string holds \\u0000 (NUL), which moetrace cannot "
			    "store");
	*cp = hi;
	return 0;
}

static int put_utf8(struct chk *c, unsigned cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return arena_add(c, b, n);
}

/* One escape after a backslash; decoded into the arena when `keep`. */
static int escape(struct chk *c, int keep)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *esc = c->p - 1, *f;
	unsigned cp = 0;
	int rc;

	if (c->p >= c->e)
		return fail(c, esc, 1, "the text ends inside a string");
	if (*c->p == 'u') {
		c->p++;
		if ((rc = escape_u(c, esc, &cp)))
			return rc;
		return keep ? put_utf8(c, cp) : 0;
	}
	if (!(f = memchr(from, *c->p, sizeof(from) - 1)))
		return fail(c, esc, 1, "'\\%c' is not a JSON escape",
			    (unsigned char)*c->p > 0x20 && (unsigned char)*c->p < 0x7f ? *c->p
										       : '?');
	c->p++;
	return keep ? arena_add(c, &to[f - from], 1) : 0;
}

/* A string at c->p (its opening quote); its decoded bytes are appended to
 * the arena when `keep` (a key). */
static int string(struct chk *c, int keep)
{
	const char *open = c->p++;
	int rc;

	while (c->p < c->e) {
		const char *run = c->p;
		unsigned char ch;
		while (c->p < c->e && (unsigned char)*c->p >= 0x20 && *c->p != '"' &&
		       *c->p != '\\' && (unsigned char)*c->p < 0x80)
			c->p++;
		if (keep && c->p > run && (rc = arena_add(c, run, (size_t)(c->p - run))))
			return rc;
		if (c->p >= c->e)
			break;
		ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			return 0;
		}
		if (ch == '\\') {
			c->p++;
			if ((rc = escape(c, keep)))
				return rc;
		} else if (ch < 0x20) {
			return fail(c, c->p, 1,
				    "control character 0x%02x inside a string (write "
				    "it as an escape)",
				    ch);
		} else {
			size_t n =
				utf8_len((const unsigned char *)c->p, (const unsigned char *)c->e);
			if (!n)
				return fail(c, c->p, 1, "byte 0x%02x is not valid UTF-8", ch);
			if (keep && (rc = arena_add(c, c->p, n)))
				return rc;
			c->p += n;
		}
	}
	return fail(c, open, 1, "a string is not closed");
}

/* -9223372036854775808 .. 18446744073709551615: what json-c keeps exactly
 * (an int64 or a uint64); it saturates anything past, so such an
 * integer is refused here rather than read as another one. */
static int int_fits(const char *d, size_t n, int neg)
{
	const char *lim = neg ? "9223372036854775808" : "18446744073709551615";
	size_t ln = strlen(lim);

	return n < ln || (n == ln && memcmp(d, lim, n) <= 0);
}

static int number(struct chk *c)
{
	const char *start = c->p, *d;
	int neg = 0, integer = 1;

	if (*c->p == '-') {
		neg = 1;
		c->p++;
	}
	d = c->p;
	if (c->p >= c->e || *c->p < '0' || *c->p > '9')
		return fail(c, start, 1, "'-' is not followed by a digit");
	if (*c->p == '0' && c->p + 1 < c->e && c->p[1] >= '0' && c->p[1] <= '9')
		return fail(c, start, 1, "a number with a leading zero");
	while (c->p < c->e && *c->p >= '0' && *c->p <= '9')
		c->p++;
	if (c->p < c->e && *c->p == '.') {
		integer = 0;
		if (++c->p >= c->e || *c->p < '0' || *c->p > '9')
			return fail(c, start, 1, "no digit after a number's decimal point");
		while (c->p < c->e && *c->p >= '0' && *c->p <= '9')
			c->p++;
	}
	if (c->p < c->e && (*c->p == 'e' || *c->p == 'E')) {
		integer = 0;
		if (++c->p < c->e && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (c->p >= c->e || *c->p < '0' || *c->p > '9')
			return fail(c, start, 1, "no digit in a number's exponent");
		while (c->p < c->e && *c->p >= '0' && *c->p <= '9')
			c->p++;
	}
	if (integer && !int_fits(d, (size_t)(c->p - d), neg))
		return fail(c, start, 0, "integer %.*s does not fit 64 bits",
			    (int)(c->p - start > 40 ? 40 : c->p - start), start);
	return 0;
}

static int literal(struct chk *c)
{
	static const char *const words[] = { "true", "false", "null" };

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(words); i++) {
		size_t n = strlen(words[i]);
		if ((size_t)(c->e - c->p) >= n && !memcmp(c->p, words[i], n)) {
			c->p += n;
			return 0;
		}
	}
	return unexpected(c, "a value");
}

static int check_value(struct chk *c);

static int cmp_key(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	size_t m = x->dlen < y->dlen ? x->dlen : y->dlen;
	/* an object of empty keys has no arena yet: ptr is NULL then */
	int d = m ? memcmp(x->ptr, y->ptr, m) : 0;

	if (d || x->dlen != y->dlen)
		return d ? d : x->dlen < y->dlen ? -1 : 1;
	return (x->raw > y->raw) - (x->raw < y->raw);
}

/* The keys k[first..nk) of one object: none twice (compared decoded, so
 * "a" and "\u0061" are one key).  The repetition earliest in the text is
 * named. */
static int check_dups(struct chk *c, size_t first)
{
	struct key *k = c->k + first, *dup = NULL;
	size_t n = c->nk - first;
	char where[160];
	int nfr, rc;

	for (size_t i = 0; i < n; i++)
		k[i].ptr = c->arena + k[i].dec;
	qsort(k, n, sizeof(*k), cmp_key);
	for (size_t i = 1; i < n; i++)
		if (k[i].dlen == k[i - 1].dlen &&
		    (!k[i].dlen || !memcmp(k[i].ptr, k[i - 1].ptr, k[i].dlen)) &&
		    (!dup || k[i].raw < dup->raw))
			dup = &k[i];
	if (!dup)
		return 0;
	/* named in full: "field 'a.b' appears twice", not "field 'a': field 'b' ..." */
	nfr = c->nfr;
	c->fr[c->nfr++] = (struct frame){ dup->raw, dup->rlen, 0 };
	path(c, where, sizeof(where));
	c->nfr = 0;
	rc = fail(c, dup->raw, 0, "field '%s' appears twice (which one is meant?)", where);
	c->nfr = nfr;
	return rc;
}

static int add_key(struct chk *c)
{
	struct key *k;
	int rc;

	if (c->nk == c->kcap) {
		size_t cap = c->kcap ? 2 * c->kcap : 64;
		if (!(k = util_realloc(c->k, cap * sizeof(*k))))
			return nomem(c);
		c->k = k;
		c->kcap = cap;
	}
	k = &c->k[c->nk];
	k->dec = c->alen;
	k->raw = c->p + 1;
	if ((rc = string(c, 1)))
		return rc;
	k->rlen = (size_t)(c->p - 1 - k->raw);
	k->dlen = c->alen - k->dec;
	c->nk++;
	return 0;
}

/* One member "key": value of an object. */
static int member(struct chk *c)
{
	const struct key *k;
	int rc;

	if (c->p >= c->e || *c->p != '"')
		return unexpected(c, "a key in double quotes");
	if ((rc = add_key(c)))
		return rc;
	ws(c);
	if (c->p >= c->e || *c->p != ':')
		return unexpected(c, "':'");
	c->p++;
	ws(c);
	k = &c->k[c->nk - 1];
	c->fr[c->nfr++] = (struct frame){ k->raw, k->rlen, 0 };
	rc = check_value(c);
	c->nfr--;
	return rc;
}

static int object(struct chk *c)
{
	size_t first = c->nk, alen = c->alen;
	int rc;

	c->p++;
	ws(c);
	if (c->p < c->e && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		if ((rc = member(c)))
			return rc;
		ws(c);
		if (c->p < c->e && *c->p == ',') {
			c->p++;
			ws(c);
			if (c->p < c->e && *c->p == '}')
				return fail(c, c->p, 1, "a comma before '}' (a trailing comma)");
			continue;
		}
		if (c->p < c->e && *c->p == '}')
			break;
		return unexpected(c, "',' or '}'");
	}
	c->p++;
	rc = check_dups(c, first);
	c->nk = first;
	c->alen = alen;
	return rc;
}

static int array(struct chk *c)
{
	size_t i = 0;
	int rc;

	c->p++;
	ws(c);
	if (c->p < c->e && *c->p == ']') {
		c->p++;
		return 0;
	}
	for (;; i++) {
		c->fr[c->nfr++] = (struct frame){ NULL, 0, i };
		rc = check_value(c);
		c->nfr--;
		if (rc)
			return rc;
		ws(c);
		if (c->p < c->e && *c->p == ',') {
			c->p++;
			ws(c);
			if (c->p < c->e && *c->p == ']')
				return fail(c, c->p, 1, "a comma before ']' (a trailing comma)");
			continue;
		}
		if (c->p < c->e && *c->p == ']')
			break;
		return unexpected(c, "',' or ']'");
	}
	c->p++;
	return 0;
}

static int check_value(struct chk *c)
{
	int rc;

	if (c->p >= c->e)
		return unexpected(c, "a value");
	switch (*c->p) {
	case '{':
	case '[':
		if (c->depth == DEPTH_MAX)
			return fail(c, c->p, 0, "nested deeper than %d levels", DEPTH_MAX);
		c->depth++;
		rc = *c->p == '{' ? object(c) : array(c);
		c->depth--;
		return rc;
	case '"': return string(c, 0);
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9': return number(c);
	default: return literal(c);
	}
}

/* json-c, strict, on text the checker passed: it takes it, or the two
 * disagree about JSON and the text is refused all the same. */
static int build(const char *text, size_t len, struct json_object **out, struct util_json_err *je)
{
	struct json_tokener *tok = json_tokener_new_ex(DEPTH_MAX + 2);
	enum json_tokener_error jerr;
	struct json_object *o;

	if (!tok) {
		snprintf(je->what, sizeof(je->what), "out of memory");
		return UTIL_ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	/* a number at the very end waits for the byte that ends it */
	if (!o && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		je->line = 1;
		je->syntax = 1;
		snprintf(je->what, sizeof(je->what), "%s",
			 json_tokener_error_desc(
				 jerr == json_tokener_success ? json_tokener_continue : jerr));
		return UTIL_EPARSE;
	}
	*out = o;
	return 0;
}

int util_json_parse(const char *text, size_t len, struct json_object **out,
		    struct util_json_err *je)
{
	struct chk c;
	int rc;

	memset(&c, 0, sizeof(c));
	memset(je, 0, sizeof(*je));
	*out = NULL;
	c.s = c.p = text;
	c.e = text + len;
	c.je = je;
	if (len > INT_MAX) {
		je->line = 1;
		snprintf(je->what, sizeof(je->what), "%zu bytes of JSON, more than 2 GiB", len);
		return UTIL_EPARSE;
	}
	ws(&c);
	if (!(rc = check_value(&c))) {
		ws(&c);
		if (c.p < c.e)
			rc = fail(&c, c.p, 1, "text after the JSON value");
	}
	free(c.k);
	free(c.arena);
	return rc ? rc : build(text, len, out, je);
}

int util_json_parse_named(const char *name, const char *text, size_t len, struct json_object **out,
			  struct util_err *err)
{
	struct util_json_err je;
	int rc = util_json_parse(text, len, out, &je);

	if (rc == UTIL_ENOMEM)
		return util_err_set(err, rc, "out of memory reading '%s'", name);
	if (rc)
		return util_err_set(err, rc, "'%s' line %ld: %s%s", name, je.line,
				    je.syntax ? "not valid JSON: " : "", je.what);
	return 0;
}

int util_json_int(struct json_object *v, int64_t min, int64_t max, int64_t *out)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return -1;
	x = json_object_get_int64(v);
	/* json-c keeps 2^63 .. 2^64-1 as a uint64 and reads it as INT64_MAX */
	if (x == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return -2;
	if (x < min || x > max)
		return -2;
	*out = x;
	return 0;
}

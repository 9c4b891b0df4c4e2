/*
 * client.c: clickhouse:// URLs and ClickHouse's HTTP interface over
 * libcurl.  A query goes as the POST body, or, when the request carries
 * input data (INSERT ... FORMAT RowBinary), in the `query` parameter of the
 * URL with the data as the body.  wait_end_of_query=1 makes the server
 * answer only once the query has finished, so an error is an HTTP error
 * status and never the tail of a 200 answer.
 *
 * libcurl is loaded with dlopen() the first time a client is made, by the
 * CLI and by a recorder shipping to a sink alike, so that libmoetrace.so,
 * which holds this file for the sink, does not depend on it: an engine
 * that never asks for a sink never loads an HTTP client.
 */
#include "fleet/fleet.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* The ABI of curl.h 7.x/8.x (Debian's libcurl4). */
#define CURL_SONAME "libcurl.so.4"

static struct curl_api {
	void *dl;
	__typeof__(&curl_global_init) global_init;
	__typeof__(&curl_easy_init) easy_init;
	__typeof__(&curl_easy_cleanup) easy_cleanup;
	__typeof__(&curl_easy_escape) easy_escape;
	__typeof__(&curl_free) free;
	__typeof__(&curl_easy_reset) easy_reset;
	__typeof__(&curl_slist_append) slist_append;
	__typeof__(&curl_slist_free_all) slist_free_all;
	__typeof__(&curl_easy_setopt) easy_setopt;
	__typeof__(&curl_easy_perform) easy_perform;
	__typeof__(&curl_easy_strerror) easy_strerror;
	__typeof__(&curl_easy_getinfo) easy_getinfo;
} api; /* written once under curl_once, only read after */

struct fleet_ch {
	CURL *curl;
	struct fleet_url url;
	uint64_t sent;
	char errbuf[CURL_ERROR_SIZE];
};

static int ident_ok(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* Copies [p, e) into dst (cap bytes) or fails. */
static int part(char *dst, size_t cap, const char *p, const char *e)
{
	if ((size_t)(e - p) >= cap)
		return -1;
	memcpy(dst, p, (size_t)(e - p));
	dst[e - p] = 0;
	return 0;
}

/* Decodes %XX escapes in place (a password may hold any byte but NUL). */
static int pct_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%') {
			int v = 0;

			for (int k = 1; k <= 2; k++) {
				char ch = s[k];

				if (!isxdigit((unsigned char)ch))
					return -1;
				v = v * 16 + (isdigit((unsigned char)ch) ? ch - '0' :
					      tolower((unsigned char)ch) - 'a' + 10);
			}
			if (!v)
				return -1;
			*o++ = (char)v;
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	return 0;
}

/* "deployment=NAME&run=ID" after the database; values %-decoded. */
static int url_params(const char *p, struct fleet_url *u, struct util_err *err)
{
	while (*p) {
		const char *amp = strchr(p, '&'), *eq;
		const char *end = amp ? amp : p + strlen(p);
		char *dst = NULL;
		size_t cap = 0;

		eq = memchr(p, '=', (size_t)(end - p));
		if (eq && (size_t)(eq - p) == 10 && !strncmp(p, "deployment", 10)) {
			dst = u->deployment;
			cap = sizeof(u->deployment);
		} else if (eq && (size_t)(eq - p) == 3 && !strncmp(p, "run", 3)) {
			dst = u->run;
			cap = sizeof(u->run);
		}
		if (!dst)
			return util_err_set(err, UTIL_EUSAGE,
					    "malformed ClickHouse URL: parameter '%.*s' is not "
					    "deployment=NAME or run=ID",
					    (int)(eq ? eq - p : end - p) > 40 ? 40
									   : (int)(eq ? eq - p : end - p),
					    p);
		if (part(dst, cap, eq + 1, end) || !dst[0] || pct_decode(dst) ||
		    !util_utf8_valid(dst))
			return util_err_set(err, UTIL_EUSAGE,
					    "malformed ClickHouse URL: %.*s must be 1 to %zu bytes of "
					    "UTF-8",
					    (int)(eq - p), p, cap - 1);
		p = amp ? amp + 1 : end;
	}
	return 0;
}

int fleet_url_parse(const char *s, struct fleet_url *u, struct util_err *err)
{
	static const char scheme[] = "clickhouse://";
	const char *p, *at, *slash, *colon, *e;
	char port[16];
	long v;
	char *end;

	memset(u, 0, sizeof(*u));
	/* the message may not quote s: it can hold a password */
	if (strncmp(s, scheme, sizeof(scheme) - 1) != 0)
		return util_err_set(err, UTIL_EUSAGE,
				    "not a ClickHouse URL: expected "
				    "clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE");
	p = s + sizeof(scheme) - 1;
	/* the last '@' before the parameters: a database name holds none, a
	 * password may (a '?' in a password is written %3F) */
	e = strchr(p, '?');
	at = NULL;
	for (const char *q = p; q < (e ? e : p + strlen(p)); q++)
		if (*q == '@')
			at = q;
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (part(u->user, sizeof(u->user), p, colon ? colon : at) || !u->user[0] ||
		    (colon && part(u->password, sizeof(u->password), colon + 1, at)) ||
		    pct_decode(u->user) || pct_decode(u->password))
			return util_err_set(err, UTIL_EUSAGE,
					    "malformed ClickHouse URL: bad or too long user name "
					    "or password");
		p = at + 1;
	}
	slash = strchr(p, '/');
	if (!slash)
		return util_err_set(err, UTIL_EUSAGE,
				    "malformed ClickHouse URL: no '/DATABASE' after the host");
	colon = memchr(p, ':', (size_t)(slash - p));
	if (!colon || colon == p || part(u->host, sizeof(u->host), p, colon))
		return util_err_set(err, UTIL_EUSAGE,
				    "malformed ClickHouse URL: expected HOST:PORT before '/DATABASE'");
	for (e = u->host; *e; e++)
		if (!isalnum((unsigned char)*e) && *e != '.' && *e != '-' && *e != '_')
			return util_err_set(err, UTIL_EUSAGE,
					    "malformed ClickHouse URL: host '%s' is not a host name "
					    "or IPv4 address", u->host);
	if (part(port, sizeof(port), colon + 1, slash) || !port[0] ||
	    !isdigit((unsigned char)port[0]) || (v = strtol(port, &end, 10), *end) || v < 1 ||
	    v > 65535)
		return util_err_set(err, UTIL_EUSAGE,
				    "malformed ClickHouse URL: port must be 1..65535");
	u->port = (int)v;
	e = strchr(slash + 1, '?');
	if (!e)
		e = slash + 1 + strlen(slash + 1);
	if (part(u->database, sizeof(u->database), slash + 1, e) || !ident_ok(u->database))
		return util_err_set(err, UTIL_EUSAGE,
				    "malformed ClickHouse URL: database name must be letters, digits "
				    "and '_', not starting with a digit");
	if (*e && url_params(e + 1, u, err))
		return err->code;
	const char *user = getenv("CLICKHOUSE_USER"), *pass = getenv("CLICKHOUSE_PASSWORD");
	if (!u->user[0] && user) {
		if (!pass)
			pass = "";
		if (strlen(user) >= sizeof(u->user) || strlen(pass) >= sizeof(u->password))
			return util_err_set(err, UTIL_EUSAGE,
					    "CLICKHOUSE_USER or CLICKHOUSE_PASSWORD is too long");
		snprintf(u->user, sizeof(u->user), "%s", user);
		snprintf(u->password, sizeof(u->password), "%s", pass);
	}
	snprintf(u->shown, sizeof(u->shown), "clickhouse://%s%s%s:%d/%s%s%s%s%s%s", u->user,
		 u->user[0] ? "@" : "", u->host, u->port, u->database,
		 u->deployment[0] || u->run[0] ? "?" : "",
		 u->deployment[0] ? "deployment=" : "", u->deployment,
		 u->deployment[0] && u->run[0] ? "&run=" : u->run[0] ? "run=" : "", u->run);
	return 0;
}

void fleet_default_deployment(const char *path, char *out, size_t cap)
{
	const char *b = strrchr(path, '/');
	char *dot;

	snprintf(out, cap, "%s", b ? b + 1 : path);
	dot = strrchr(out, '.');
	if (dot && dot != out)
		*dot = 0;
}

void fleet_url_shown(const char *s, char *out, size_t cap)
{
	const char *p = strstr(s, "://"), *e, *at = NULL, *colon;

	p = p ? p + 3 : s;
	e = strchr(p, '?');
	for (const char *q = p; q < (e ? e : p + strlen(p)); q++)
		if (*q == '@')
			at = q;
	colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
	if (colon)
		snprintf(out, cap, "%.*s%s", (int)(colon - s), s, at);
	else
		snprintf(out, cap, "%s", s);
}

void fleet_sql_where_run(struct util_buf *q, const char *deployment, const char *run)
{
	util_buf_addstr(q, " WHERE deployment = ");
	fleet_sql_quote(q, deployment);
	util_buf_addstr(q, " AND run = ");
	fleet_sql_quote(q, run);
}

void fleet_sql_quote(struct util_buf *b, const char *s)
{
	util_buf_add(b, "'", 1);
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			util_buf_add(b, "\\", 1);
		util_buf_add(b, s, 1);
	}
	util_buf_add(b, "'", 1);
}

/* A short count (out of memory in a soft buffer) makes libcurl stop. */
static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct util_buf *b = arg;

	util_buf_add(b, p, size * n);
	return b->failed ? 0 : size * n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static char curl_failed[300]; /* why libcurl is unusable, "" if it is not */

static int curl_load(void)
{
	/* POSIX leaves function pointers from dlsym() to this conversion */
#define SYM(field, name)                                                                  \
	do {                                                                              \
		void *p_ = dlsym(api.dl, name);                                           \
		if (!p_)                                                                  \
			goto missing;                                                     \
		memcpy(&api.field, &p_, sizeof(p_));                                      \
	} while (0)

	if (!(api.dl = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL))) {
		snprintf(curl_failed, sizeof(curl_failed),
			 "cannot load " CURL_SONAME " to reach ClickHouse: %s (Debian: apt-get "
			 "install libcurl4)", dlerror());
		return -1;
	}
	SYM(global_init, "curl_global_init");
	SYM(easy_init, "curl_easy_init");
	SYM(easy_cleanup, "curl_easy_cleanup");
	SYM(easy_escape, "curl_easy_escape");
	SYM(free, "curl_free");
	SYM(easy_reset, "curl_easy_reset");
	SYM(slist_append, "curl_slist_append");
	SYM(slist_free_all, "curl_slist_free_all");
	SYM(easy_setopt, "curl_easy_setopt");
	SYM(easy_perform, "curl_easy_perform");
	SYM(easy_strerror, "curl_easy_strerror");
	SYM(easy_getinfo, "curl_easy_getinfo");
	return 0;
missing:
	snprintf(curl_failed, sizeof(curl_failed), "%s", dlerror());
	return -1;
#undef SYM
}

static void curl_init_once(void)
{
	if (curl_load() == 0 && api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		snprintf(curl_failed, sizeof(curl_failed), "cannot initialise libcurl");
}

/* Once per process, whichever thread comes first (replay --grid opens a
 * store on each of its threads); the others wait for it.  libcurl stays
 * loaded until the process ends. */
int fleet_client_init(void)
{
	pthread_once(&curl_once, curl_init_once);
	return curl_failed[0] ? UTIL_EIO : 0;
}

int fleet_ch_new(const struct fleet_url *u, struct fleet_ch **out, struct util_err *err)
{
	struct fleet_ch *c;

	if (fleet_client_init())
		return util_err_set(err, UTIL_EIO, "%s", curl_failed);
	if (!(c = util_calloc(1, sizeof(*c))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	c->url = *u;
	c->curl = api.easy_init();
	if (!c->curl) {
		free(c);
		return util_err_set(err, UTIL_EIO, "cannot initialise libcurl");
	}
	*out = c;
	return 0;
}

void fleet_ch_free(struct fleet_ch *c)
{
	if (!c)
		return;
	api.easy_cleanup(c->curl);
	memset(c->url.password, 0, sizeof(c->url.password));
	free(c);
}

const struct fleet_url *fleet_ch_url(const struct fleet_ch *c)
{
	return &c->url;
}

uint64_t fleet_ch_bytes_sent(const struct fleet_ch *c)
{
	return c->sent;
}

/* First line of a server's error answer, without the stack trace. */
static void first_line(char *dst, size_t cap, const char *s, size_t len)
{
	char tmp[400];
	size_t n = 0;

	while (n < len && s[n] != '\n' && n + 1 < sizeof(tmp))
		n++;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	util_utf8_sanitize(dst, cap, tmp);
}

static int request(struct fleet_ch *c, const char *query, int in_db, const void *body,
		   size_t len, const char *format, int write, struct util_buf *resp,
		   struct util_err *err);

int fleet_ch_query(struct fleet_ch *c, const char *query, int in_db, const void *body,
		   size_t len, struct util_buf *resp, struct util_err *err)
{
	return request(c, query, in_db, body, len, NULL, 1, resp, err);
}

int fleet_ch_query_opts(struct fleet_ch *c, const char *query, const char *format, int write,
			struct util_buf *resp, struct util_err *err)
{
	return request(c, query, 1, NULL, 0, format, write, resp, err);
}

static int request(struct fleet_ch *c, const char *query, int in_db, const void *body,
		   size_t len, const char *format, int write, struct util_buf *resp,
		   struct util_err *err)
{
	static const char *const headers[] = { "Content-Type: application/octet-stream",
					       "Expect:" };
	struct util_buf url = UTIL_BUF_SOFT_INIT, ans = UTIL_BUF_SOFT_INIT;
	struct curl_slist *hdr = NULL, *h;
	CURLcode cc;
	long status = 0;
	char line[400];
	int rc = 0;

	util_buf_addf(&url, "http://%s:%d/?wait_end_of_query=1", c->url.host, c->url.port);
	if (in_db)
		util_buf_addf(&url, "&database=%s", c->url.database);
	if (format)
		util_buf_addf(&url, "&default_format=%s", format);
	if (!write)
		util_buf_addstr(&url, "&readonly=2");
	if (body) {
		char *q = api.easy_escape(c->curl, query, 0);

		if (!q) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		util_buf_addf(&url, "&query=%s", q);
		api.free(q);
	} else {
		body = query;
		len = strlen(query);
	}
	if ((rc = util_buf_check(&url, err)))
		goto out;
	/* a failed append returns NULL and leaves the list as it was */
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(headers); i++) {
		if (!(h = api.slist_append(hdr, headers[i]))) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		hdr = h;
	}
	api.easy_reset(c->curl);
	api.easy_setopt(c->curl, CURLOPT_URL, url.data);
	api.easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdr);
	api.easy_setopt(c->curl, CURLOPT_POST, 1L);
	api.easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	api.easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	api.easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	api.easy_setopt(c->curl, CURLOPT_WRITEDATA, &ans);
	api.easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	api.easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	api.easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	/* a server that stops answering for a minute is gone */
	api.easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	api.easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, 60L);
	if (c->url.user[0]) {
		api.easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		api.easy_setopt(c->curl, CURLOPT_USERNAME, c->url.user);
		api.easy_setopt(c->curl, CURLOPT_PASSWORD, c->url.password);
	}
	c->errbuf[0] = 0;
	cc = api.easy_perform(c->curl);
	c->sent += len + strlen(url.data);
	if ((rc = util_buf_check(&ans, err)))
		goto out;
	if (cc != CURLE_OK) {
		rc = util_err_set(err, UTIL_EIO, "cannot reach '%s': %s", c->url.shown,
				  c->errbuf[0] ? c->errbuf : api.easy_strerror(cc));
		goto out;
	}
	api.easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		first_line(line, sizeof(line), ans.data ? ans.data : "", ans.len);
		if (status == 401 || status == 403 || strstr(line, "Code: 192,") ||
		    strstr(line, "Code: 193,") || strstr(line, "Code: 516,"))
			rc = util_err_set(err, UTIL_EUSAGE, "'%s' refused the credentials: %s",
					  c->url.shown, line);
		else
			rc = util_err_set(err, UTIL_EIO, "'%s' answered HTTP %ld: %s", c->url.shown,
					  status, line[0] ? line : "(no message)");
		goto out;
	}
	if (resp && ans.data) {
		/* the answer moves into resp, which keeps its kind */
		int soft = resp->soft;

		util_buf_release(resp);
		*resp = ans;
		resp->soft = soft;
		ans = (struct util_buf)UTIL_BUF_SOFT_INIT;
	} else if (resp) {
		util_buf_reset(resp);
	}
out:
	api.slist_free_all(hdr);
	util_buf_release(&url);
	util_buf_release(&ans);
	return rc;
}

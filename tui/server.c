/*
 * server.c: the /metrics endpoint of `moetrace serve`, `record --metrics`
 * and the recorder library (moetrace_recorder_serve_metrics).  It reads the
 * trace on a read-only connection of its own, so a recorder writing the
 * same file never waits for it, and formats what tui/metrics.c gives: the
 * view's gauges, the run's counters, the counters of a following replay
 * (tui/rebalance.c, on its own thread) and, inside a recorder, the
 * counters it is handed a function for (the server knows no recorder).  libmicrohttpd answers on one internal thread that
 * also does the reading; it is loaded with dlopen() when an endpoint
 * starts listening, so libmoetrace.so does not depend on it and an engine
 * that never asks for metrics never loads an HTTP server.
 */
#include "tui/tui.h"

#include <dlfcn.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The ABI of microhttpd.h 0.9.x (Debian's libmicrohttpd12). */
#define MHD_SONAME "libmicrohttpd.so.12"

struct mhd_api {
	void *dl;
	__typeof__(&MHD_start_daemon) start_daemon;
	__typeof__(&MHD_stop_daemon) stop_daemon;
	__typeof__(&MHD_get_daemon_info) get_daemon_info;
	__typeof__(&MHD_create_response_from_buffer) create_response;
	__typeof__(&MHD_add_response_header) add_header;
	__typeof__(&MHD_queue_response) queue_response;
	__typeof__(&MHD_destroy_response) destroy_response;
};

struct tui_server {
	struct store *s;
	struct store_run run;
	struct tui_view *v;
	struct tui_metrics *m;
	struct tui_rebalance *rb;
	void (*counters)(void *ctx, struct util_buf *out);
	void (*counters_snap)(void *ctx);
	void *counters_ctx;
	pthread_mutex_t lock; /* one scrape at a time; guards buf */
	struct util_buf buf;  /* the answer, allocated once at its largest */
	struct mhd_api mhd;
	struct MHD_Daemon *d;
};

static int mhd_load(struct mhd_api *a, struct util_err *err)
{
	/* POSIX leaves function pointers from dlsym() to this conversion */
#define SYM(field, name)                                                                  \
	do {                                                                              \
		void *p_ = dlsym(a->dl, name);                                            \
		if (!p_)                                                                  \
			goto missing;                                                     \
		memcpy(&a->field, &p_, sizeof(p_));                                       \
	} while (0)

	if (!(a->dl = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL)))
		return util_err_set(err, UTIL_EIO,
				    "cannot load " MHD_SONAME " to serve metrics: %s (Debian: "
				    "apt-get install libmicrohttpd12)",
				    dlerror());
	SYM(start_daemon, "MHD_start_daemon");
	SYM(stop_daemon, "MHD_stop_daemon");
	SYM(get_daemon_info, "MHD_get_daemon_info");
	SYM(create_response, "MHD_create_response_from_buffer");
	SYM(add_header, "MHD_add_response_header");
	SYM(queue_response, "MHD_queue_response");
	SYM(destroy_response, "MHD_destroy_response");
	return 0;
missing:
	util_err_set(err, UTIL_EIO, "%s", dlerror());
	dlclose(a->dl);
	a->dl = NULL;
	return err->code;
#undef SYM
}

/* The exposition's buffer at its largest, allocated here so that a scrape
 * never grows it; it is a soft buffer too, so that a bound found wrong one
 * day costs a 503 answer, never the engine's process.  Every series line is
 * well under 256 bytes (a name, numeric labels, an algorithm name of at
 * most 31 bytes and a value of at most 24), the HELP and TYPE lines
 * under 64 kB in all, and the run's name and model are escaped into one
 * line. */
static int reserve(struct tui_server *sv, int ranks, int per_expert, struct util_err *err)
{
	size_t L = (size_t)sv->run.layers, series = 64 + L * (4 + (size_t)ranks);

	if (per_expert)
		series += L * (size_t)sv->run.experts;
	sv->buf.cap = series * 256 + 65536 + 2 * (strlen(sv->run.name) + strlen(sv->run.model));
	if (!(sv->buf.data = malloc(sv->buf.cap))) {
		sv->buf.cap = 0;
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	sv->buf.data[0] = '\0';
	sv->buf.soft = 1;
	return 0;
}

int tui_server_new(const struct tui_server_cfg *c, struct tui_server **out, struct util_err *err)
{
	struct tui_server *sv;
	struct tui_view_cfg vc = { .algo = c->algo, .window = c->window,
				   .phase_mask = c->phase_mask };
	int rc;

	*out = NULL;
	if (!vc.algo && !(vc.algo = analyze_algo_find(ANALYZE_FLAGSHIP)))
		return util_err_set(err, UTIL_EUSAGE, "no algorithm '%s'", ANALYZE_FLAGSHIP);
	if (!(sv = calloc(1, sizeof(*sv))))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	pthread_mutex_init(&sv->lock, NULL);
	sv->counters = c->counters;
	sv->counters_snap = c->counters_snap;
	sv->counters_ctx = c->counters_ctx;
	if ((rc = store_open_run(c->db, c->run, STORE_READONLY, &sv->s, &sv->run, err)) ||
	    (rc = analyze_layout_resolve(&sv->run, c->ranks, c->slots, c->redundant, &vc.ranks,
					 &vc.slots, err)) ||
	    (rc = tui_view_new(sv->s, &sv->run, &vc, &sv->v, err)) ||
	    (rc = tui_metrics_new(sv->s, &sv->run, vc.ranks, vc.slots, c->per_expert, &sv->m,
				  err)))
		goto fail;
	if (c->rebalance_every > 0) {
		struct tui_rebalance_cfg rc_cfg = {
			.algo = vc.algo, .ranks = vc.ranks, .slots = vc.slots,
			.interval = c->rebalance_every, .window = c->rebalance_window,
			.delay = c->rebalance_delay, .phase_mask = c->phase_mask,
		};
		/* the run found above, by its name: the newest may change */
		if ((rc = tui_rebalance_new(c->db, sv->run.name, &rc_cfg, &sv->rb, err)))
			goto fail;
	}
	if ((rc = reserve(sv, vc.ranks, c->per_expert, err)))
		goto fail;
	*out = sv;
	return 0;
fail:
	tui_server_free(sv);
	return rc;
}

/* Reads what is new and formats the exposition into b (the caller holds
 * the lock): 0, or a negative code with the message in b. */
static int collect(struct tui_server *sv, struct util_buf *b)
{
	struct tui_header h;
	int rc;

	/* the recorder's counters first: every step they count as recorded
	 * is then in what the trace is read to */
	if (sv->counters_snap)
		sv->counters_snap(sv->counters_ctx);
	util_buf_reset(b);
	if ((rc = tui_view_poll(sv->v, 0)) < 0) {
		util_buf_addf(b, "moetrace: %s\n", tui_view_errmsg(sv->v));
		return rc;
	}
	tui_view_work(sv->v, 0, 0);
	/* the counters up to the step the view has read, so that every series
	 * of one scrape describes the same steps (a recorder commits meanwhile) */
	tui_view_header(sv->v, &h);
	if (h.steps > 0 && (rc = tui_metrics_poll(sv->m, sv->v, h.last_step)) < 0) {
		util_buf_addf(b, "moetrace: %s\n", tui_metrics_errmsg(sv->m));
		return rc;
	}
	tui_metrics_format(sv->m, sv->v, b);
	if (sv->rb) {
		struct tui_rebalance_figures f;
		tui_rebalance_figures(sv->rb, &f);
		tui_metrics_format_rebalance(&f, b);
	}
	if (sv->counters)
		sv->counters(sv->counters_ctx, b);
	return 0;
}

int tui_server_collect(struct tui_server *sv, struct util_buf *b)
{
	struct util_err err = UTIL_ERR_INIT;
	int rc;

	pthread_mutex_lock(&sv->lock);
	if (sv->rb && !sv->d && (rc = tui_rebalance_update(sv->rb, &err)) < 0) {
		util_buf_reset(b);
		util_buf_addf(b, "moetrace: %s\n", err.msg);
	} else {
		rc = collect(sv, b);
	}
	pthread_mutex_unlock(&sv->lock);
	return rc;
}

static enum MHD_Result answer(struct tui_server *sv, struct MHD_Connection *c, unsigned status,
			      const char *type, const void *data, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = sv->mhd.create_response(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	sv->mhd.add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	/* RFC 9110: a 405 says which methods the resource takes */
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		sv->mhd.add_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = sv->mhd.queue_response(c, status, r);
	sv->mhd.destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	static const char index_page[] =
		"moetrace: the metrics are at /metrics (Prometheus text format)\n";
	static const char *const text = "text/plain; charset=utf-8";
	struct tui_server *sv = cls;
	enum MHD_Result ret;
	int rc;

	(void)version;
	(void)upload;
	(void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return answer(sv, c, MHD_HTTP_METHOD_NOT_ALLOWED, text, "only GET\n", 9);
	if (*upload_size)
		return MHD_NO;
	if (!strcmp(url, "/"))
		return answer(sv, c, MHD_HTTP_OK, text, index_page, sizeof(index_page) - 1);
	if (strcmp(url, "/metrics"))
		return answer(sv, c, MHD_HTTP_NOT_FOUND, text, "not found: try /metrics\n", 24);
	/* libmicrohttpd copies the answer before the lock is released */
	pthread_mutex_lock(&sv->lock);
	rc = collect(sv, &sv->buf);
	if (sv->buf.failed)
		ret = answer(sv, c, MHD_HTTP_SERVICE_UNAVAILABLE, text, "moetrace: out of memory\n",
			     24);
	else if (rc < 0)
		ret = answer(sv, c, MHD_HTTP_SERVICE_UNAVAILABLE, text, sv->buf.data, sv->buf.len);
	else
		ret = answer(sv, c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
			     sv->buf.data, sv->buf.len);
	pthread_mutex_unlock(&sv->lock);
	return ret;
}

int tui_server_listen(struct tui_server *sv, const char *listen, int *port, struct util_err *err)
{
	struct sockaddr_storage addr;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	int rc;

	if (sv->d)
		return util_err_set(err, UTIL_ESTATE, "already serving metrics");
	if ((rc = util_listen_parse(listen, &addr, err)))
		return rc;
	if (!sv->mhd.dl && (rc = mhd_load(&sv->mhd, err)))
		return rc;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	sv->d = sv->mhd.start_daemon(flags, 0, NULL, NULL, &handle, sv, MHD_OPTION_SOCK_ADDR,
				     (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
				     MHD_OPTION_END);
	if (!sv->d)
		return util_err_set(err, UTIL_EIO,
				    "cannot listen on '%s' (in use, or not an address of this "
				    "host)",
				    listen);
	info = sv->mhd.get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? (int)info->port : 0;
	if (sv->rb && (rc = tui_rebalance_start(sv->rb, err)))
		return rc;
	return 0;
}

void tui_server_free(struct tui_server *sv)
{
	if (!sv)
		return;
	/* the HTTP thread stops first (a request in flight reads the
	 * rebalance's figures), then the replay thread, then what they read */
	if (sv->d)
		sv->mhd.stop_daemon(sv->d);
	tui_rebalance_free(sv->rb);
	if (sv->mhd.dl)
		dlclose(sv->mhd.dl);
	tui_metrics_free(sv->m);
	tui_view_free(sv->v);
	store_free(sv->s);
	util_buf_release(&sv->buf);
	pthread_mutex_destroy(&sv->lock);
	free(sv);
}

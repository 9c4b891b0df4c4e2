/*
 * cmd_serve.c: `moetrace serve` -- the live view as a Prometheus target.
 * An HTTP server (libmicrohttpd, one internal thread that also does all
 * the reading) answers GET /metrics with the exposition tui/metrics.c
 * formats: on each scrape it reads what is new in the trace, as `top`
 * does, and refits the chosen algorithm where the window moved.  The main
 * thread only waits for SIGINT/SIGTERM/SIGHUP.  --once prints one
 * exposition on standard output instead (for promtool and scripts).
 */
#include "cmds.h"
#include "tui/tui.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CMD "serve"

static const char usage[] =
	"usage: moetrace serve [--listen HOST:PORT] [--run NAME] [--algo NAME]\n"
	"                      [--ranks R --slots S | --redundant N] [--window W]\n"
	"                      [--phase prefill|decode] [--per-expert] [--once] DB\n"
	"Serves GET /metrics (Prometheus text format) for the run, following it as\n"
	"new steps arrive; --listen defaults to 127.0.0.1:9464 (port 0 picks a free\n"
	"one, printed on start).  --once prints the metrics once and exits.\n"
	"docs/metrics.md lists the metrics and the engines' equivalents.\n";

struct server {
	struct store *s;
	struct tui_view *v;
	struct tui_metrics *m;
	pthread_mutex_t lock;
	int failed; /* the last read failed (the answer is then HTTP 503) */
};

/* Reads what is new and formats the exposition into b: 0, or a negative
 * code with the message in b. */
static int collect(struct server *sv, struct util_buf *b)
{
	int rc;

	util_buf_reset(b);
	if ((rc = tui_view_poll(sv->v, 0)) < 0) {
		util_buf_addf(b, "moetrace serve: %s\n", tui_view_errmsg(sv->v));
		return rc;
	}
	tui_view_work(sv->v, 0, 0);
	if ((rc = tui_metrics_poll(sv->m)) < 0) {
		util_buf_addf(b, "moetrace serve: %s\n", tui_metrics_errmsg(sv->m));
		return rc;
	}
	tui_metrics_format(sv->m, sv->v, b);
	return 0;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
			      const void *data, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	static const char index_page[] =
		"moetrace serve: the metrics are at /metrics (Prometheus text format)\n";
	static const char *const text = "text/plain; charset=utf-8";
	struct server *sv = cls;
	struct util_buf b = UTIL_BUF_INIT;
	enum MHD_Result ret;
	int rc;

	(void)version;
	(void)upload;
	(void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, "only GET\n", 9);
	if (*upload_size)
		return MHD_NO;
	if (!strcmp(url, "/"))
		return answer(c, MHD_HTTP_OK, text, index_page, sizeof(index_page) - 1);
	if (strcmp(url, "/metrics"))
		return answer(c, MHD_HTTP_NOT_FOUND, text, "not found: try /metrics\n", 24);
	pthread_mutex_lock(&sv->lock);
	rc = collect(sv, &b);
	sv->failed = rc < 0;
	pthread_mutex_unlock(&sv->lock);
	if (rc < 0)
		ret = answer(c, MHD_HTTP_SERVICE_UNAVAILABLE, text, b.data, b.len);
	else
		ret = answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
			     b.data ? b.data : "", b.len);
	util_buf_release(&b);
	return ret;
}

/* HOST:PORT, [V6HOST]:PORT or :PORT (all interfaces) into addr. */
static int parse_listen(const char *arg, struct sockaddr_storage *addr, socklen_t *alen,
			struct util_err *err)
{
	char host[256];
	const char *colon = strrchr(arg, ':');
	struct addrinfo hints, *res = NULL;
	int port, rc;
	size_t n;

	if (!colon)
		return util_err_set(err, UTIL_EUSAGE, "--listen: '%s' is not HOST:PORT", arg);
	if (util_parse_int(colon + 1, 0, 65535, &port, "--listen port", err))
		return err->code;
	n = (size_t)(colon - arg);
	if (n >= sizeof(host))
		return util_err_set(err, UTIL_EUSAGE, "--listen: host too long");
	memcpy(host, arg, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res)) != 0)
		return util_err_set(err, UTIL_EUSAGE, "--listen: cannot resolve '%s': %s", host,
				    gai_strerror(rc));
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*alen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct serve_opts {
	const char *listen, *runname, *algo;
	int ranks, slots, redundant, once, per_expert;
	struct tui_view_cfg cfg;
};

static int parse_opts(int argc, char **argv, struct serve_opts *o, struct util_err *err)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "run", required_argument, NULL, 'r' },
		{ "algo", required_argument, NULL, 'a' },
		{ "ranks", required_argument, NULL, 'R' },
		{ "slots", required_argument, NULL, 'S' },
		{ "redundant", required_argument, NULL, 'N' },
		{ "window", required_argument, NULL, 'w' },
		{ "phase", required_argument, NULL, 'p' },
		{ "per-expert", no_argument, NULL, 'e' },
		{ "once", no_argument, NULL, '1' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "l:r:a:R:S:N:w:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case 'r': o->runname = optarg; break;
		case 'a': o->algo = optarg; break;
		case 'R':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->ranks, "--ranks", err))
				return err->code;
			break;
		case 'S':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->slots, "--slots", err))
				return err->code;
			break;
		case 'N':
			if (util_parse_int(optarg, 0, STORE_MAX_SLOTS, &o->redundant, "--redundant",
					   err))
				return err->code;
			break;
		case 'w':
			if (util_parse_int(optarg, TUI_WINDOW_MIN, 1 << 30, &o->cfg.window,
					   "--window", err))
				return err->code;
			break;
		case 'p':
			if (analyze_opt_phase(optarg, &o->cfg.phase_mask, err))
				return err->code;
			break;
		case 'e': o->per_expert = 1; break;
		case '1': o->once = 1; break;
		case 'h': fputs(usage, stdout); return 1;
		default: util_opt_unknown(argv, opts); return UTIL_EUSAGE;
		}
	}
	return 0;
}

static int serve_http(struct server *sv, const char *listen)
{
	struct util_err err = UTIL_ERR_INIT;
	struct sockaddr_storage addr;
	socklen_t alen = 0;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	sigset_t set;
	int sig = 0;

	if (parse_listen(listen, &addr, &alen, &err))
		return util_cli_fail(CMD, &err);
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* the server thread inherits a mask with these blocked; sigwait takes them */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(flags, 0, NULL, NULL, &handle, sv, MHD_OPTION_SOCK_ADDR,
			     (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
			     MHD_OPTION_END);
	if (!d) {
		util_cli_error(CMD,
			       "cannot listen on '%s' (in use, or not an address of this host)",
			       listen);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("moetrace serve: http://%s/metrics (port %u)\n", listen,
	       info ? (unsigned)info->port : 0u);
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	struct util_err err = UTIL_ERR_INIT;
	struct serve_opts o = { .listen = "127.0.0.1:9464", .algo = ANALYZE_FLAGSHIP };
	struct server sv = { 0 };
	struct store_run run;
	int rc, status = 1;

	if ((rc = parse_opts(argc, argv, &o, &err))) {
		if (rc == 1)
			return 0;
		if (err.msg[0])
			util_cli_error(CMD, "%s", err.msg);
		return 2;
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (!(o.cfg.algo = analyze_algo_find(o.algo))) {
		char hint[96];
		util_cli_error(CMD, "--algo: unknown algorithm '%s'%s (moetrace place --list)",
			       o.algo,
			       util_did_you_mean(analyze_algo_suggest(o.algo), hint, sizeof(hint)));
		return 2;
	}
	if (store_open_run(argv[optind], o.runname, STORE_READONLY, &sv.s, &run, &err))
		return util_cli_fail(CMD, &err);
	if (analyze_layout_resolve(&run, o.ranks, o.slots, o.redundant, &o.cfg.ranks, &o.cfg.slots,
				   &err) ||
	    tui_view_new(sv.s, &run, &o.cfg, &sv.v, &err) ||
	    tui_metrics_new(sv.s, &run, o.cfg.ranks, o.cfg.slots, o.per_expert, &sv.m, &err)) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	pthread_mutex_init(&sv.lock, NULL);
	if (o.once) {
		struct util_buf b = UTIL_BUF_INIT;
		if (collect(&sv, &b) < 0) {
			fputs(b.data, stderr);
			status = 1;
		} else {
			fwrite(b.data, 1, b.len, stdout);
			status = 0;
		}
		util_buf_release(&b);
	} else {
		status = serve_http(&sv, o.listen);
	}
	pthread_mutex_destroy(&sv.lock);
out:
	tui_metrics_free(sv.m);
	tui_view_free(sv.v);
	store_free(sv.s);
	return status;
}

/*
 * cmd_serve.c: `moetrace serve` -- the live view as a Prometheus target.
 * The endpoint (tui/server.c) answers GET /metrics with the exposition
 * tui/metrics.c formats: on each scrape it reads what is new in the
 * trace, as `top` does, and refits the chosen algorithm where the window
 * moved.  The main thread only waits for SIGINT/SIGTERM/SIGHUP.  --once
 * prints one exposition on standard output instead (for promtool and
 * scripts).
 */
#include "cmds.h"
#include "tui/tui.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "serve"

static const char usage[] =
	"usage: moetrace serve [--listen HOST:PORT] [--run NAME] [--algo NAME]\n"
	"                      [--ranks R --slots S | --redundant N] [--window W]\n"
	"                      [--phase prefill|decode] [--per-expert] [--once]\n"
	"                      [--rebalance-every K [--rebalance-window W]\n"
	"                       [--rebalance-delay D]] DB\n"
	"Serves GET /metrics (Prometheus text format) for the run, following it as\n"
	"new steps arrive; --listen defaults to 127.0.0.1:9464 (port 0 picks a free\n"
	"one, printed on start).  --once prints the metrics once and exits.\n"
	"--rebalance-every K follows the run with a replay of the algorithm deciding\n"
	"every K steps (moetrace replay --interval K; the window defaults to K, the\n"
	"delay to min(K/2, 50)) and exports its rebalances and bytes as counters.\n"
	"docs/metrics.md lists the metrics and the engines' equivalents.\n";

struct serve_opts {
	const char *listen, *algo;
	int once;
	struct tui_server_cfg cfg;
};

/* --rebalance-every/-window/-delay, in the ranges `moetrace replay` takes */
static int rebalance_opt(int c, const char *arg, struct tui_server_cfg *cfg, struct util_err *err)
{
	if (c == 'K')
		return util_parse_i64(arg, 1, STORE_STEP_MAX, &cfg->rebalance_every,
				      "--rebalance-every", err);
	if (c == 'W')
		return util_parse_i64(arg, 1, STORE_STEP_MAX, &cfg->rebalance_window,
				      "--rebalance-window", err);
	return util_parse_i64(arg, 0, STORE_STEP_MAX, &cfg->rebalance_delay, "--rebalance-delay",
			      err);
}

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
		{ "rebalance-every", required_argument, NULL, 'K' },
		{ "rebalance-window", required_argument, NULL, 'W' },
		{ "rebalance-delay", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "l:r:a:R:S:N:w:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case 'r': o->cfg.run = optarg; break;
		case 'a': o->algo = optarg; break;
		case 'R':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->cfg.ranks, "--ranks", err))
				return err->code;
			break;
		case 'S':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &o->cfg.slots, "--slots", err))
				return err->code;
			break;
		case 'N':
			if (analyze_parse_redundant(optarg, &o->cfg.redundant, err))
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
		case 'e': o->cfg.per_expert = 1; break;
		case '1': o->once = 1; break;
		case 'K':
		case 'W':
		case 'D':
			if (rebalance_opt(c, optarg, &o->cfg, err))
				return err->code;
			break;
		case 'h': fputs(usage, stdout); return 1;
		default: util_opt_unknown(argv, opts); return UTIL_EUSAGE;
		}
	}
	return 0;
}

/* Listens until SIGINT, SIGTERM or SIGHUP. */
static int serve_until_signal(struct tui_server *sv, const char *cmd, const char *listen)
{
	struct util_err err = UTIL_ERR_INIT;
	sigset_t set;
	int port = 0, sig = 0;

	/* the server's threads inherit a mask with these blocked; sigwait takes them */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (tui_server_listen(sv, listen, &port, &err))
		return util_cli_fail(cmd, &err);
	printf("moetrace %s: http://%s/metrics (port %d)\n", cmd, listen, port);
	fflush(stdout);
	sigwait(&set, &sig);
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	struct util_err err = UTIL_ERR_INIT;
	struct serve_opts o = { .listen = "127.0.0.1:9464", .algo = ANALYZE_FLAGSHIP,
				.cfg = TUI_SERVER_CFG_INIT };
	struct tui_server *sv = NULL;
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
	if (!o.cfg.rebalance_every && (o.cfg.rebalance_window || o.cfg.rebalance_delay >= 0)) {
		util_cli_error(CMD, "--rebalance-window and --rebalance-delay need --rebalance-every");
		return 2;
	}
	o.cfg.db = argv[optind];
	if (tui_server_new(&o.cfg, &sv, &err))
		return util_cli_fail(CMD, &err);
	if (o.once) {
		struct util_buf b = UTIL_BUF_INIT;
		if (tui_server_collect(sv, &b) < 0) {
			fputs(b.data, stderr);
			status = 1;
		} else {
			fwrite(b.data, 1, b.len, stdout);
			status = 0;
		}
		util_buf_release(&b);
	} else {
		status = serve_until_signal(sv, CMD, o.listen);
	}
	tui_server_free(sv);
	return status;
}

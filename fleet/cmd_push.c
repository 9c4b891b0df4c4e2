/*
 * cmd_push.c: `moetrace push DB clickhouse://...` -- ships a trace's runs
 * (steps, counts, deployed placements) to ClickHouse (fleet/push.c).
 * Nothing is written locally.
 */
#include "cmds.h"
#include "fleet/fleet.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: moetrace push DB clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE\n"
	"                     [--deployment NAME] [--run R] [--batch STEPS]\n"
	"                     [--rollup-steps N] [--cluster NAME] [--rollup-only]\n"
	"Ships every run of DB (or --run R) to ClickHouse under (deployment, run name);\n"
	"a second push of the same run sends only the steps the server lacks.  The\n"
	"deployment defaults to DB's file name without its extension.  --rollup-steps\n"
	"and --cluster apply when the push creates the schema (docs/fleet.md).\n"
	"--rollup-only ships the sums of each complete window of N steps per layer\n"
	"instead of every step (--batch then counts windows per INSERT).\n";

/* One run as rollups only (fleet_push_rollup), and its line of output. */
static int push_rollup(struct fleet_ch *ch, struct store *s, const struct store_run *run,
		       const char *dep, int batch, const struct fleet_url *url,
		       struct util_err *err)
{
	struct fleet_push_stats st;
	int64_t through, n = 0, first, last;
	int rc = fleet_push_rollup(ch, s, run, dep, STORE_STEP_MIN, STORE_STEP_MAX, batch, &st,
				   &through, err);

	if (!rc && (rc = store_steps_span(s, run, -1, through + 1, STORE_STEP_MAX, 0, &n, &first,
					  &last)))
		util_err_set(err, rc, "%s", store_errmsg(s));
	if (rc) {
		util_err_prefix(err, "pushing run '%s': ", run->name);
		return rc;
	}
	printf("run '%s' -> %s deployment '%s' (rollups only): %lld steps in complete windows: "
	       "%lld windows sent, %lld completed, %lld already there; %lld deployed rows sent",
	       run->name, url->shown, dep, (long long)st.steps, (long long)st.sent,
	       (long long)st.completed, (long long)st.present, (long long)st.deployed_sent);
	if (n > 0)
		printf("; %lld steps (%lld..%lld) wait for their window to complete", (long long)n,
		       (long long)first, (long long)last);
	putchar('\n');
	return 0;
}

int cmd_push(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "deployment", required_argument, NULL, 'd' },
		{ "run", required_argument, NULL, 'r' },
		{ "batch", required_argument, NULL, 'b' },
		{ "rollup-steps", required_argument, NULL, 'R' },
		{ "cluster", required_argument, NULL, 'c' },
		{ "rollup-only", no_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct util_err err = UTIL_ERR_INIT;
	struct fleet_schema_opts so = { 0, NULL };
	struct fleet_url url;
	struct fleet_ch *ch = NULL;
	struct store *s = NULL;
	struct store_run *runs = NULL, one;
	const char *dep = NULL, *run_name = NULL;
	char depbuf[256];
	size_t nruns = 0;
	int batch = FLEET_BATCH_STEPS, c, rc, rollup_only = 0;
	double t0;

	while ((c = getopt_long(argc, argv, "d:r:b:R:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dep = optarg; break;
		case 'r': run_name = optarg; break;
		case 'b':
			if (util_parse_int(optarg, 1, 1 << 20, &batch, "--batch", &err))
				return util_cli_fail("push", &err);
			break;
		case 'R':
			if (util_parse_int(optarg, 1, 1 << 30, &so.rollup_steps, "--rollup-steps",
					   &err))
				return util_cli_fail("push", &err);
			break;
		case 'c': so.cluster = optarg; break;
		case 'O': rollup_only = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
	}
	if (optind != argc - 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (fleet_url_parse(argv[optind + 1], &url, &err))
		return util_cli_fail("push", &err);
	/* the URL's parameters are defaults of the options */
	if ((dep && url.deployment[0] && strcmp(dep, url.deployment)) ||
	    (run_name && url.run[0] && strcmp(run_name, url.run))) {
		util_cli_error("push", "--deployment or --run differs from the URL's");
		return 2;
	}
	if (!dep && url.deployment[0])
		dep = url.deployment;
	if (!run_name && url.run[0])
		run_name = url.run;
	if (!dep) {
		fleet_default_deployment(argv[optind], depbuf, sizeof(depbuf));
		dep = depbuf;
	}
	if (!dep[0] || strlen(dep) > 200 || !util_utf8_valid(dep)) {
		util_cli_error("push", "--deployment: a name of 1 to 200 bytes of UTF-8 is needed");
		return 2;
	}
	if (so.cluster) {
		for (const char *p = so.cluster; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.",
				    *p) || strlen(so.cluster) > 100) {
				util_cli_error("push", "--cluster: '%s' is not a cluster name", so.cluster);
				return 2;
			}
	}
	if (run_name) {
		if (store_open_run(argv[optind], run_name, STORE_READONLY, &s, &one, &err))
			return util_cli_fail("push", &err);
		runs = xmalloc(sizeof(*runs));
		runs[0] = one;
		nruns = 1;
	} else {
		if (store_open(argv[optind], STORE_READONLY, &s, &err))
			return util_cli_fail("push", &err);
		if ((rc = store_run_list(s, &runs, &nruns))) {
			util_cli_error("push", "%s", store_errmsg(s));
			store_free(s);
			return util_exit_status(rc);
		}
	}
	rc = fleet_ch_new(&url, &ch, &err);
	if (!rc)
		rc = fleet_schema_ensure(ch, &so, &err);
	t0 = util_now();
	for (size_t i = 0; !rc && i < nruns; i++) {
		struct fleet_push_stats st;

		if (rollup_only) {
			rc = push_rollup(ch, s, &runs[i], dep, batch, &url, &err);
			continue;
		}
		rc = fleet_push_run(ch, s, &runs[i], dep, batch, &st, &err);
		if (rc) {
			util_err_prefix(&err, "pushing run '%s' of '%s': ", runs[i].name,
					argv[optind]);
			break;
		}
		printf("run '%s' -> %s deployment '%s': %lld steps, %lld sent, %lld completed, "
		       "%lld already there; %lld deployed rows sent\n",
		       runs[i].name, url.shown, dep, (long long)st.steps, (long long)st.sent,
		       (long long)st.completed, (long long)st.present, (long long)st.deployed_sent);
	}
	if (!rc && getenv("MOETRACE_PUSH_STATS"))
		fprintf(stderr, "push: %.3f s, %llu bytes sent\n", util_now() - t0,
			(unsigned long long)fleet_ch_bytes_sent(ch));
	fleet_ch_free(ch);
	free(runs);
	store_free(s);
	return rc ? util_cli_fail("push", &err) : 0;
}

/*
 * bench_recorder.c: what recording costs the engine thread, and how fast
 * the writer commits, for the DeepSeek-V3 shape (58 x 256).
 *
 *   bench_recorder cost DIR       per-call time of moetrace_recorder_step()
 *                                 against a plain memcpy of the same counts
 *                                 into a ring-sized buffer, paced at a rate
 *                                 the writer sustains so no step is dropped
 *   bench_recorder sustained DIR  steps/s with the blocking policy: the
 *                                 engine thread pushes as fast as the
 *                                 writer commits (one core for the writer)
 *
 * With MOETRACE_BENCH_SINK set to a clickhouse:// URL, the recorder also
 * ships to it (moetrace_recorder_ship) while it is measured.
 *
 * Counts come from the synthetic generator (64 distinct steps, cycled), so
 * the codec and SQLite see realistic data.  Prints `key value` lines.
 */
#include "collector/collector.h"
#include "collector/moetrace.h"

#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DISTINCT 64

static uint32_t *make_counts(const struct store_model *m)
{
	struct collector_gen_cfg cfg;
	struct collector_gen *g = NULL;
	struct util_err err = UTIL_ERR_INIT;
	size_t cells = (size_t)m->layers * (size_t)m->experts;
	uint32_t *c = xmallocarray(DISTINCT * cells, sizeof(uint32_t));

	memset(&cfg, 0, sizeof(cfg));
	cfg.model = m;
	cfg.seed = 11;
	if (collector_gen_new(&cfg, &g, &err))
		util_die("%s", err.msg);
	for (int i = 0; i < DISTINCT; i++) {
		struct store_step st = { .counts = c + (size_t)i * cells };
		if (collector_gen_next(g, &st))
			util_die("generator failed");
	}
	collector_gen_free(g);
	return c;
}

static struct moetrace_recorder *open_rec(const char *dir, const char *name,
					  const struct store_model *m, int policy)
{
	struct moetrace_run_desc d = { 0 };
	struct moetrace_recorder_opts o = MOETRACE_RECORDER_OPTS_INIT;
	struct moetrace_recorder *r = NULL;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s.db", dir, name);
	unlink(path);
	d.name = name;
	d.model = m->name;
	d.layers = m->layers;
	d.experts = m->experts;
	d.topk = m->topk;
	d.ranks = m->ranks;
	d.slots = m->slots;
	o.policy = policy;
	if (moetrace_recorder_open(path, &d, &o, &r))
		util_die("%s", moetrace_errmsg(r));
	/* MOETRACE_BENCH_SINK=clickhouse://...: the same with a live sink */
	if (getenv("MOETRACE_BENCH_SINK") &&
	    moetrace_recorder_ship(r, getenv("MOETRACE_BENCH_SINK"), NULL))
		util_die("%s", moetrace_errmsg(r));
	return r;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void sleep_until(double t)
{
	double d = t - util_now();
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

static void cost(const char *dir, const struct store_model *m, int n, double rate)
{
	size_t cells = (size_t)m->layers * (size_t)m->experts, bytes = cells * 4;
	uint32_t *c = make_counts(m);
	struct moetrace_recorder_stats st;
	struct moetrace_recorder *r = open_rec(dir, "cost", m, MOETRACE_DROP);
	moetrace_recorder_stats(r, &st);
	size_t ring = (size_t)st.ring_steps;
	uint32_t *dst = xmallocarray(ring * cells, sizeof(uint32_t));
	double *ts = xmallocarray((size_t)n, sizeof(double));
	double *tm = xmallocarray((size_t)n, sizeof(double));
	double t0;
	int k = 0;

	memset(dst, 1, ring * bytes); /* fault the pages in, as open() does for the ring */
	t0 = util_now();
	for (int i = 0; i < n; i++) {
		const uint32_t *src = c + (size_t)(i % DISTINCT) * cells;
		sleep_until(t0 + i / rate);
		/* interleaved so both see the same machine state */
		double a = util_now();
		memcpy(dst + (size_t)(i % (int)ring) * cells, src, bytes);
		double b = util_now();
		int rc = moetrace_recorder_step(r, i, src, MOETRACE_PHASE_DECODE, 64);
		double e = util_now();
		if (rc && rc != MOETRACE_EFULL)
			util_die("%s", moetrace_errmsg(r));
		tm[i] = b - a;
		if (rc == 0) /* a dropped step costs less: time accepted ones only */
			ts[k++] = e - b;
	}
	if (moetrace_recorder_close(r))
		util_die("%s", moetrace_errmsg(r));
	moetrace_recorder_stats(r, &st);
	if (k == 0)
		util_die("every step was dropped");
	qsort(ts, (size_t)k, sizeof(double), cmp_d);
	qsort(tm, (size_t)n, sizeof(double), cmp_d);
	printf("shape %d x %d\n", m->layers, m->experts);
	printf("calls %d\n", n);
	printf("rate %.0f\n", rate);
	printf("step_p50_us %.3f\n", ts[k / 2] * 1e6);
	printf("step_p99_us %.3f\n", ts[k * 99 / 100] * 1e6);
	printf("memcpy_p50_us %.3f\n", tm[n / 2] * 1e6);
	printf("memcpy_p99_us %.3f\n", tm[n * 99 / 100] * 1e6);
	printf("ratio_p50 %.2f\n", ts[k / 2] / tm[n / 2]);
	printf("ratio_p99 %.2f\n", ts[k * 99 / 100] / tm[n * 99 / 100]);
	printf("dropped %lld\n", (long long)st.dropped);
	printf("recorded %lld\n", (long long)st.recorded);
	printf("mem_bound %lld\n", (long long)st.mem_bound);
	moetrace_recorder_free(r);
	free(c);
	free(dst);
	free(ts);
	free(tm);
}

/* CPU seconds used by the whole process (engine thread and writer). */
static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* The 1-minute load average: figures taken on a busy machine say so. */
static double load1(void)
{
	double l[1] = { 0 };

	return getloadavg(l, 1) == 1 ? l[0] : -1;
}

static void sustained(const char *dir, const struct store_model *m, int n)
{
	size_t cells = (size_t)m->layers * (size_t)m->experts;
	uint32_t *c = make_counts(m);
	struct moetrace_recorder_stats st;
	struct moetrace_recorder *r = open_rec(dir, "sustained", m, MOETRACE_BLOCK);
	double t0, t1, c0, c1;

	c0 = cpu_seconds();
	t0 = util_now();
	for (int i = 0; i < n; i++)
		if (moetrace_recorder_step(r, i, c + (size_t)(i % DISTINCT) * cells,
					   MOETRACE_PHASE_DECODE, 64))
			util_die("%s", moetrace_errmsg(r));
	if (moetrace_recorder_flush(r))
		util_die("%s", moetrace_errmsg(r));
	t1 = util_now();
	c1 = cpu_seconds();
	moetrace_recorder_stats(r, &st);
	printf("shape %d x %d\n", m->layers, m->experts);
	printf("steps %d\n", n);
	printf("seconds %.3f\n", t1 - t0);
	printf("steps_per_s %.0f\n", n / (t1 - t0));
	printf("cpu_seconds %.3f\n", c1 - c0);
	printf("steps_per_cpu_s %.0f\n", n / (c1 - c0));
	printf("load %.2f\n", load1());
	printf("recorded %lld\n", (long long)st.recorded);
	printf("dropped %lld\n", (long long)st.dropped);
	printf("batches %lld\n", (long long)st.batches);
	printf("high_water %lld\n", (long long)st.high_water);
	printf("ring_steps %lld\n", (long long)st.ring_steps);
	printf("bytes %lld\n", (long long)st.bytes);
	printf("bytes_per_cell %.3f\n", (double)st.bytes / ((double)n * (double)cells));
	printf("mem_bound %lld\n", (long long)st.mem_bound);
	moetrace_recorder_close(r);
	moetrace_recorder_free(r);
	free(c);
}

int main(int argc, char **argv)
{
	const struct store_model *m = store_model_find("deepseek-v3");

	if (argc < 3 || !m) {
		fprintf(stderr, "usage: bench_recorder cost|sustained DIR [N] [RATE]\n");
		return 2;
	}
	int cost_run = !strcmp(argv[1], "cost"), n = cost_run ? 2000 : 6000;
	double rate = 1000;
	struct util_err err = UTIL_ERR_INIT;

	if (!cost_run && strcmp(argv[1], "sustained"))
		return 2;
	if ((argc > 3 && util_parse_int(argv[3], 1, 100000000, &n, "N", &err)) ||
	    (cost_run && argc > 4 && util_parse_double(argv[4], 1e-3, 1e9, &rate, "RATE", &err))) {
		fprintf(stderr, "bench_recorder: %s\n", err.msg);
		return 2;
	}
	if (cost_run)
		cost(argv[2], m, n, rate);
	else
		sustained(argv[2], m, n);
	return 0;
}

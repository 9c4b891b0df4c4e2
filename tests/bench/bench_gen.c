/*
 * bench_gen.c: the synthetic generator alone (collector/gen.c), without
 * the store: `bench_gen MODEL STEPS [SEED]` prints
 *   steps_per_s tokens_per_step setup_ms cpu_s
 * for STEPS steps of the preset with the calibrated defaults.
 */
#include "collector/collector.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	struct collector_gen_cfg cfg = { 0 };
	struct util_err err = UTIL_ERR_INIT;
	struct collector_gen *g;
	struct store_step st = { 0 };
	int64_t tokens = 0;
	int64_t steps, seed = 1;
	double t0, t1, t2, c1, c2;

	if (argc < 3 || !(cfg.model = store_model_find(argv[1]))) {
		fprintf(stderr, "usage: bench_gen MODEL STEPS [SEED]\n");
		return 2;
	}
	if (util_parse_i64(argv[2], 1, INT64_MAX, &steps, "STEPS", &err) ||
	    (argc > 3 && util_parse_i64(argv[3], 0, INT64_MAX, &seed, "SEED", &err))) {
		fprintf(stderr, "bench_gen: %s\n", err.msg);
		return 2;
	}
	cfg.seed = (uint64_t)seed;
	t0 = util_now();
	if (collector_gen_new(&cfg, &g, &err)) {
		fprintf(stderr, "bench_gen: %s\n", err.msg);
		return 1;
	}
	t1 = util_now();
	c1 = cpu_now();
	st.counts = xmallocarray((size_t)cfg.model->layers * cfg.model->experts, sizeof(uint32_t));
	for (int64_t i = 0; i < steps; i++) {
		if (collector_gen_next(g, &st))
			return 1;
		tokens += st.tokens;
	}
	t2 = util_now();
	c2 = cpu_now();
	printf("%.1f %.1f %.1f %.3f\n", steps / (t2 - t1), (double)tokens / steps, (t1 - t0) * 1e3,
	       c2 - c1);
	free(st.counts);
	collector_gen_free(g);
	return 0;
}

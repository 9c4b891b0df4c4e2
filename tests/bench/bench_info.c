/*
 * bench_info.c: writes a trace database of at least the given size (MB)
 * with DeepSeek-V3-shaped steps of prefill-like heat (about 1.2 bytes per
 * cell), for timing `moetrace info` on a large file.
 * usage: bench_info DB MB
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run run = { 0 };
	enum { L = 58, E = 256, BATCH = 256 };
	struct util_rng rng;
	uint32_t *counts;
	struct store_step steps[BATCH];
	int64_t step = 0;
	int64_t mb;

	if (argc != 3) {
		fprintf(stderr, "usage: bench_info DB MB\n");
		return 2;
	}
	if (util_parse_i64(argv[2], 1, 1000000, &mb, "MB", &err)) {
		fprintf(stderr, "bench_info: %s\n", err.msg);
		return 2;
	}
	int64_t want = mb * 1000000LL;
	if (store_open(argv[1], STORE_CREATE, &s, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	snprintf(run.name, sizeof(run.name), "big");
	snprintf(run.model, sizeof(run.model), "deepseek-v3");
	run.layers = L;
	run.experts = E;
	run.topk = 8;
	run.ranks = 64;
	run.slots = 5;
	run.ranks_per_node = 8;
	if (store_run_add(s, &run)) {
		fprintf(stderr, "%s\n", store_errmsg(s));
		return 1;
	}
	counts = malloc((size_t)BATCH * L * E * sizeof(uint32_t));
	if (!counts) {
		fprintf(stderr, "bench_info: out of memory\n");
		store_free(s);
		return 1;
	}
	util_rng_seed(&rng, 5);
	while (store_size_bytes(s) < want) {
		for (int i = 0; i < BATCH; i++) {
			uint32_t *c = counts + (size_t)i * L * E;
			for (int k = 0; k < L * E; k++)
				c[k] = (uint32_t)(util_rng_next(&rng) % 512);
			/* step s at 1e9 + s * 0.05 s (the increment apart: an
			 * initializer's evaluation order is unspecified) */
			steps[i] = (struct store_step){ .step = step, .phase = 1, .tokens = 8192,
							.time = 1e9 + (double)step * 0.05, .counts = c };
			step++;
		}
		if (store_steps_append(s, &run, steps, BATCH)) {
			fprintf(stderr, "%s\n", store_errmsg(s));
			return 1;
		}
	}
	printf("%lld steps\n", (long long)step);
	free(counts);
	store_free(s);
	return 0;
}

/*
 * engine_loop.c: how an inference engine records expert heat with
 * libmoetrace.  A stand-in engine (8 MoE layers x 64 experts, top-6,
 * EP over 4 ranks x 20 slots) routes random tokens every step; the MoE
 * layers report their routing either as per-expert counts (what engines
 * that already count tokens after dispatch have) or as top-k ids.
 *
 *     make -C examples && examples/engine_loop /tmp/engine.db 500
 *     moetrace info /tmp/engine.db
 */
#define _POSIX_C_SOURCE 200809L
#include <moetrace.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { LAYERS = 8, EXPERTS = 64, TOPK = 6, RANKS = 4, SLOTS = 20, BATCH = 32 };

/* A skewed router: expert e is picked with weight ~ 1 / (1 + e % 16). */
static int route(unsigned *seed)
{
	for (;;) {
		int e = rand_r(seed) % EXPERTS;
		if (rand_r(seed) % (1 + e % 16) == 0)
			return e;
	}
}

static int usage(FILE *f)
{
	fputs("usage: engine_loop [DB [STEPS]]   (default engine.db, 200 steps)\n", f);
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "engine.db";
	char *end = NULL;
	long steps = argc > 2 ? strtol(argv[2], &end, 10) : 200;
	struct moetrace_run_desc desc = {
		.name = "engine-loop", .model = "example-8x64", .layers = LAYERS,
		.experts = EXPERTS, .topk = TOPK, .ranks = RANKS, .slots = SLOTS,
		.ranks_per_node = 4, .source = "examples/engine_loop.c",
	};
	struct moetrace_recorder_opts opts = MOETRACE_RECORDER_OPTS_INIT;
	struct moetrace_recorder *rec = NULL;
	struct moetrace_recorder_stats st;
	static uint32_t counts[LAYERS][EXPERTS];
	static int32_t ids[BATCH * TOPK], phy2log[LAYERS][RANKS * SLOTS];

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return usage(stdout);
	if (argc > 3 || (argc > 1 && argv[1][0] == '-') ||
	    (argc > 2 && (!end || *end || steps < 1))) {
		fprintf(stderr, "engine_loop: bad arguments\n");
		return usage(stderr);
	}
	unsigned seed = 7;
	char name[64];
	int rc;

	/* a fresh run name, so the example can be run again on the same file */
	snprintf(name, sizeof(name), "engine-loop-%ld-%ld", (long)time(NULL), (long)getpid());
	desc.name = name;
	opts.ring_steps = 128;
	rc = moetrace_recorder_open(path, &desc, &opts, &rec);
	if (rc) {
		fprintf(stderr, "engine_loop: %s\n", moetrace_errmsg(rec));
		moetrace_recorder_free(rec);
		return 1;
	}

	/* the deployed placement: experts in order, then 16 redundant copies
	 * of the hottest experts (0..15) */
	for (int l = 0; l < LAYERS; l++)
		for (int i = 0; i < RANKS * SLOTS; i++)
			phy2log[l][i] = i < EXPERTS ? i : i - EXPERTS;
	if ((rc = moetrace_recorder_placement(rec, 0, &phy2log[0][0])))
		fprintf(stderr, "engine_loop: %s\n", moetrace_errmsg(rec));

	for (long step = 0; step < steps; step++) {
		rc = 0;
		if (step % 2 == 0) {
			/* an engine that counts tokens per expert after dispatch */
			memset(counts, 0, sizeof(counts));
			for (int l = 0; l < LAYERS; l++)
				for (int t = 0; t < BATCH * TOPK; t++)
					counts[l][route(&seed)]++;
			rc = moetrace_recorder_step(rec, step, &counts[0][0],
						    MOETRACE_PHASE_DECODE, BATCH);
		} else {
			/* an engine that hands over each layer's top-k ids */
			for (int l = 0; l < LAYERS && rc >= 0; l++) {
				for (int t = 0; t < BATCH * TOPK; t++)
					ids[t] = route(&seed);
				rc = moetrace_recorder_step_topk(rec, step, l, ids, BATCH, TOPK);
			}
			if (rc == 0)
				rc = moetrace_recorder_step_end(rec, step, MOETRACE_PHASE_DECODE, BATCH);
		}
		/* a full ring drops the step (counted); anything else is a bug */
		if (rc && rc != MOETRACE_EFULL) {
			fprintf(stderr, "engine_loop: step %ld: %s\n", step, moetrace_errmsg(rec));
			break;
		}
	}

	rc = moetrace_recorder_close(rec);
	moetrace_recorder_stats(rec, &st);
	if (rc)
		fprintf(stderr, "engine_loop: %s\n", moetrace_errmsg(rec));
	printf("run '%s': %lld steps recorded, %lld dropped, %lld placement(s), "
	       "queue high-water %lld of %lld, memory bound %lld bytes\n",
	       name, (long long)st.recorded, (long long)st.dropped, (long long)st.placements,
	       (long long)st.high_water, (long long)st.ring_steps, (long long)st.mem_bound);
	moetrace_recorder_free(rec);
	return rc ? 1 : 0;
}

/*
 * bench_place.c: speed and quality of the placement algorithms.
 *
 *   bench_place window FILE.json R S RUNS   the 58 x 256 window with episodes
 *   bench_place trace FILE.csv R S [RUNS]   a real trace (step,layer,expert,tokens)
 *
 * Prints markdown table rows.  "fitted" = sum over layers of max device
 * load / sum of mean device load on the summed heat; "per-episode" = mean
 * over episodes and layers of max/mean device load; "copies" = expert
 * copies from the engines' initial layout (static), given to every
 * algorithm as the current placement (so ranks are matched to it).
 * A trace's episodes are 16 near-equal consecutive chunks of its steps.
 */
#include "analyze/analyze.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct data {
	int L, E, T;
	double *heat; /* [L * E] */
	double *ep;   /* [L * T * E] */
};

static int load_window(const char *path, struct data *d)
{
	json_object *root = json_object_from_file(path), *heat, *eps;

	if (!root || !json_object_object_get_ex(root, "heat", &heat) ||
	    !json_object_object_get_ex(root, "episodes", &eps)) {
		fprintf(stderr, "bench_place: cannot read '%s'\n", path);
		return -1;
	}
	d->L = (int)json_object_array_length(heat);
	d->E = (int)json_object_array_length(json_object_array_get_idx(heat, 0));
	d->T = (int)json_object_array_length(eps);
	d->heat = malloc(sizeof(double) * d->L * d->E);
	d->ep = malloc(sizeof(double) * d->L * d->T * d->E);
	if (!d->heat || !d->ep) {
		fprintf(stderr, "bench_place: out of memory\n");
		free(d->heat);
		free(d->ep);
		json_object_put(root);
		return -1;
	}
	for (int l = 0; l < d->L; l++) {
		json_object *row = json_object_array_get_idx(heat, l);
		for (int e = 0; e < d->E; e++)
			d->heat[l * d->E + e] =
				json_object_get_double(json_object_array_get_idx(row, e));
		for (int t = 0; t < d->T; t++) {
			json_object *er =
				json_object_array_get_idx(json_object_array_get_idx(eps, t), l);
			for (int e = 0; e < d->E; e++)
				d->ep[((size_t)l * d->T + t) * d->E + e] =
					json_object_get_double(json_object_array_get_idx(er, e));
		}
	}
	json_object_put(root);
	return 0;
}

/* The n comma-separated integers at the start of line into v (what
 * "%ld,%ld,..." matches, with overflow reported): 0, or -1. */
static int parse_longs(const char *line, long *v, int n)
{
	const char *p = line;

	for (int i = 0; i < n; i++) {
		char *end;
		if (i && *p++ != ',')
			return -1;
		errno = 0;
		v[i] = strtol(p, &end, 10);
		if (end == p || errno)
			return -1;
		p = end;
	}
	return 0;
}

/* step,layer,expert,tokens with a header line. */
static int load_trace(const char *path, struct data *d)
{
	FILE *f = fopen(path, "r");
	char line[256];
	long cap = 1 << 20, n = 0;
	long *v, *nv;
	long maxs = 0, maxl = 0, maxe = 0;

	if (!f) {
		fprintf(stderr, "bench_place: cannot open '%s'\n", path);
		return -1;
	}
	v = malloc(sizeof(long) * 4 * cap);
	if (!v || !fgets(line, sizeof(line), f)) {
		fclose(f);
		free(v);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		long f4[4], s, l, e, t;
		if (parse_longs(line, f4, 4))
			continue;
		s = f4[0], l = f4[1], e = f4[2], t = f4[3];
		if (n == cap) {
			cap *= 2;
			nv = realloc(v, sizeof(long) * 4 * cap);
			if (!nv) {
				fprintf(stderr, "bench_place: out of memory\n");
				fclose(f);
				free(v);
				return -1;
			}
			v = nv;
		}
		v[4 * n] = s;
		v[4 * n + 1] = l;
		v[4 * n + 2] = e;
		v[4 * n + 3] = t;
		maxs = s > maxs ? s : maxs;
		maxl = l > maxl ? l : maxl;
		maxe = e > maxe ? e : maxe;
		n++;
	}
	fclose(f);
	long steps = maxs + 1;
	d->L = (int)maxl + 1;
	d->E = (int)maxe + 1;
	d->T = 16;
	d->heat = calloc((size_t)d->L * d->E, sizeof(double));
	d->ep = calloc((size_t)d->L * d->T * d->E, sizeof(double));
	if (!d->heat || !d->ep) {
		fprintf(stderr, "bench_place: out of memory\n");
		free(d->heat);
		free(d->ep);
		free(v);
		return -1;
	}
	for (long i = 0; i < n; i++) {
		long s = v[4 * i], l = v[4 * i + 1], e = v[4 * i + 2], t = v[4 * i + 3];
		int ch = (int)(s * d->T / steps);
		d->heat[l * d->E + e] += (double)t;
		d->ep[((size_t)l * d->T + ch) * d->E + e] += (double)t;
	}
	free(v);
	return 0;
}

struct result {
	double fitted, episode, seconds, cpu, vs_bound;
	long copies;
	int dup_layers;
};

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int run(const struct data *d, const struct analyze_algo *a, int R, int S, int use_ep,
	       int runs, struct result *res)
{
	int L = d->L, E = d->E, T = d->T, P = R * S;
	int32_t *p = malloc(sizeof(int32_t) * (size_t)L * P);
	int32_t *stat = malloc(sizeof(int32_t) * (size_t)P);
	double *load = malloc(sizeof(double) * R), times[16], cpus[16];
	double smax = 0, smean = 0, sbound = 0, ep = 0;

	if (!p || !stat || !load) {
		fprintf(stderr, "bench_place: out of memory\n");
		free(p);
		free(stat);
		free(load);
		return -1;
	}
	analyze_static_phy2log(E, R, S, stat);
	memset(res, 0, sizeof(*res));
	if (runs > 16)
		runs = 16;
	/* runs timed without a current placement, then one with the static
	 * layout as current, whose placements are scored */
	for (int k = 0; k <= runs; k++) {
		double t0 = util_now();
		clock_t c0 = clock();
		for (int l = 0; l < L; l++) {
			struct analyze_place_in in = { .experts = E, .ranks = R, .slots = S,
						       .heat = d->heat + (size_t)l * E,
						       .current = k == runs ? stat : NULL,
						       .max_moves = -1 };
			struct util_err err = UTIL_ERR_INIT;
			if (use_ep == 1) {
				in.episodes = d->ep + (size_t)l * T * E;
				in.n_episodes = T;
			} else if (use_ep == 2) {
				/* the episodes as the window's blocks in time */
				in.blocks = d->ep + (size_t)l * T * E;
				in.n_blocks = T;
			}
			if (!strcmp(a->name, "eplb-hier"))
				in.nodes = R >= 8 ? 8 : 1, in.groups = E % 8 == 0 ? 8 : 1;
			if (analyze_place(a, &in, p + (size_t)l * P, &err)) {
				fprintf(stderr, "bench_place: %s: %s\n", a->name, err.msg);
				free(p);
				free(stat);
				free(load);
				return -1;
			}
		}
		if (k < runs) {
			times[k] = util_now() - t0;
			cpus[k] = (double)(clock() - c0) / CLOCKS_PER_SEC;
		}
	}
	qsort(times, (size_t)runs, sizeof(double), cmp_d);
	res->seconds = times[runs / 2];
	qsort(cpus, (size_t)runs, sizeof(double), cmp_d);
	res->cpu = cpus[runs / 2];
	for (int l = 0; l < L; l++) {
		const int32_t *q = p + (size_t)l * P;
		const double *w = d->heat + (size_t)l * E;
		double tot = 0;
		for (int e = 0; e < E; e++)
			tot += w[e];
		smax += analyze_device_load(w, E, q, R, S, NULL, load);
		smean += tot / R;
		sbound += analyze_lower_bound(w, E, R, S);
		if (analyze_placement_check(q, E, R, S, 1, NULL))
			res->dup_layers++;
		for (int t = 0; t < T; t++) {
			analyze_device_load(d->ep + ((size_t)l * T + t) * E, E, q, R, S, NULL, load);
			ep += analyze_imbalance(load, R);
		}
		/* copies from the static layout (the algorithms were given it
		 * as the current placement) */
		res->copies += analyze_place_moves(stat, q, E, R, S);
	}
	res->fitted = smax / smean;
	res->vs_bound = smax / sbound;
	res->episode = ep / (T * L);
	free(p);
	free(stat);
	free(load);
	return 0;
}

/* s as an int in [lo, hi], or a message and -1. */
static int arg_int(const char *s, const char *what, int lo, int hi, int *out)
{
	struct util_err err = UTIL_ERR_INIT;

	if (util_parse_int(s, lo, hi, out, what, &err)) {
		fprintf(stderr, "bench_place: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static const char *const algos[] = { "eplb", "flashlb", "swift", ANALYZE_FLAGSHIP };

int main(int argc, char **argv)
{
	struct data d;
	struct result r;

	if (argc < 5) {
		fprintf(stderr, "usage: bench_place window|trace FILE R S [RUNS (1..16)]\n");
		return 2;
	}
	int R, S, runs = 3;
	if (arg_int(argv[3], "R", 1, 1 << 20, &R) || arg_int(argv[4], "S", 1, 1 << 20, &S) ||
	    (argc > 5 && arg_int(argv[5], "RUNS", 1, 16, &runs)))
		return 2;
	int window = !strcmp(argv[1], "window");
	if (window ? load_window(argv[2], &d) : load_trace(argv[2], &d))
		return 1;
	for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
		const struct analyze_algo *a = analyze_algo_find(algos[i]);
		const char *only = getenv("BENCH_PLACE_ALGOS"); /* e.g. "keel,eplb" */
		if (only && !strstr(only, algos[i]))
			continue;
		static const char *const gv[] = { "sum", "episodes", "blocks" };
		for (int use_ep = 0; use_ep < 3; use_ep++) {
			if (use_ep && (!strcmp(a->name, "eplb") || !strcmp(a->name, "swift")))
				continue;
			if (use_ep == 2 && !analyze_algo_forecasts(a))
				continue;
			/* "sum", "episodes" or "blocks" */
			const char *given = getenv("BENCH_PLACE_GIVEN");
			if (given && strcmp(given, gv[use_ep]))
				continue;
			if (run(&d, a, R, S, use_ep, runs, &r)) {
				free(d.heat);
				free(d.ep);
				return 1;
			}
			/* two decimals below 10 ms: eplb's budget is 1 ms */
			printf("| %s | %dx%d | %s | %.4f | %.4f | %.4f | %ld | %d | %.*f | %.*f |\n",
			       a->name, R, S, gv[use_ep], r.fitted, r.episode, r.vs_bound,
			       r.copies, r.dup_layers, r.seconds < 0.01 ? 2 : 1, r.seconds * 1e3,
			       r.cpu < 0.01 ? 2 : 1, r.cpu * 1e3);
			fflush(stdout);
		}
	}
	free(d.heat);
	free(d.ep);
	return 0;
}

/*
 * bench_genstats.c: the statistics the generator is calibrated with
 * (docs/generator.md), computed the same way on a real trace (CSV
 * step,layer,expert,tokens) and on a run of a trace database, so the two
 * can be put side by side.
 *
 *   bench_genstats [--window W] [--ranks G] [--name LABEL] [--layers] FILE.csv|DB [RUN]
 *
 * Per layer, then summarised over layers (median, and p90 or max):
 *   step max/mean    max over experts / mean, per step, averaged over steps
 *   window max/mean  the same on sums over windows of W steps
 *   total max/mean   the same on the whole trace
 *   gini, top-1      Gini coefficient and hottest expert's share of the total
 *   hot overlap      top 10% experts of a window that stay top 10% in the next
 *   fit -> next      an LPT placement of whole experts on G ranks (E/G each)
 *                    fitted on a window: its max/mean device load there and on
 *                    the next window, averaged over consecutive pairs
 * Prints one markdown table row; --layers prints per-layer CSV instead.
 */
#include "store/store.h"
#include "util/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stats {
	int L, E, W, G;
	int64_t steps, windows, pairs, nwin;  /* nwin: steps in the open window */
	double *step_mm, *win_mm, *overlap, *fit, *next; /* [L] running sums */
	int64_t *step_n;                       /* [L] steps with tokens */
	double assign;                         /* sum of assignments */
	uint64_t *win, *prev, *total;          /* [L*E] */
	int *order, *rank_of, *hot_prev;       /* scratch */
	double *load;
	int have_prev;
};

static double maxmean(const uint64_t *v, int n)
{
	uint64_t mx = 0, sum = 0;

	for (int i = 0; i < n; i++) {
		sum += v[i];
		if (v[i] > mx)
			mx = v[i];
	}
	return sum ? (double)mx * n / (double)sum : 0;
}

static const uint64_t *sort_key;
static int by_load_desc(const void *a, const void *b)
{
	uint64_t x = sort_key[*(const int *)a], y = sort_key[*(const int *)b];

	if (x != y)
		return x < y ? 1 : -1;
	return *(const int *)a - *(const int *)b;
}

/* LPT of experts by v onto G ranks of ceil(E/G) experts: rank_of[E]. */
static void lpt(struct stats *st, const uint64_t *v, int *rank_of)
{
	int cap = (st->E + st->G - 1) / st->G;
	int *fill = calloc((size_t)st->G, sizeof(int));

	for (int i = 0; i < st->E; i++)
		st->order[i] = i;
	sort_key = v;
	qsort(st->order, (size_t)st->E, sizeof(int), by_load_desc);
	for (int g = 0; g < st->G; g++)
		st->load[g] = 0;
	for (int i = 0; i < st->E; i++) {
		int e = st->order[i], best = -1;
		for (int g = 0; g < st->G; g++)
			if (fill[g] < cap && (best < 0 || st->load[g] < st->load[best]))
				best = g;
		rank_of[e] = best;
		fill[best]++;
		st->load[best] += (double)v[e];
	}
	free(fill);
}

static double imbalance_of(struct stats *st, const uint64_t *v, const int *rank_of)
{
	double mx = 0, sum = 0;

	for (int g = 0; g < st->G; g++)
		st->load[g] = 0;
	for (int e = 0; e < st->E; e++)
		st->load[rank_of[e]] += (double)v[e];
	for (int g = 0; g < st->G; g++) {
		sum += st->load[g];
		if (st->load[g] > mx)
			mx = st->load[g];
	}
	return sum > 0 ? mx * st->G / sum : 1;
}

static void close_window(struct stats *st)
{
	const int E = st->E, nh = (E + 9) / 10;

	for (int l = 0; l < st->L; l++) {
		uint64_t *w = st->win + (size_t)l * E, *p = st->prev + (size_t)l * E;
		st->win_mm[l] += maxmean(w, E);
		if (st->have_prev) {
			/* hot overlap: top nh of prev vs top nh of this window */
			int common = 0;
			for (int i = 0; i < E; i++)
				st->order[i] = i;
			sort_key = p;
			qsort(st->order, (size_t)E, sizeof(int), by_load_desc);
			memcpy(st->hot_prev, st->order, (size_t)nh * sizeof(int));
			sort_key = w;
			qsort(st->order, (size_t)E, sizeof(int), by_load_desc);
			for (int i = 0; i < nh; i++)
				for (int j = 0; j < nh; j++)
					common += st->hot_prev[i] == st->order[j];
			st->overlap[l] += (double)common / nh;
			lpt(st, p, st->rank_of);
			st->fit[l] += imbalance_of(st, p, st->rank_of);
			st->next[l] += imbalance_of(st, w, st->rank_of);
		}
	}
	if (st->have_prev)
		st->pairs++;
	st->windows++;
	memcpy(st->prev, st->win, (size_t)st->L * E * sizeof(uint64_t));
	memset(st->win, 0, (size_t)st->L * E * sizeof(uint64_t));
	st->have_prev = 1;
	st->nwin = 0;
}

static void feed(struct stats *st, const uint32_t *counts)
{
	const int E = st->E;
	uint64_t row[STORE_MAX_EXPERTS > 4096 ? 4096 : STORE_MAX_EXPERTS];

	for (int l = 0; l < st->L; l++) {
		const uint32_t *c = counts + (size_t)l * E;
		uint64_t *w = st->win + (size_t)l * E, *t = st->total + (size_t)l * E, sum = 0;
		for (int e = 0; e < E; e++) {
			row[e] = c[e];
			w[e] += c[e];
			t[e] += c[e];
			sum += c[e];
		}
		st->assign += (double)sum;
		if (sum) {
			st->step_mm[l] += maxmean(row, E);
			st->step_n[l]++;
		}
	}
	st->steps++;
	if (++st->nwin == st->W)
		close_window(st);
}

static int cmp_dbl(const void *a, const void *b)
{
	return util_cmp_double(a, b);
}

static double quant(double *v, int n, double q)
{
	qsort(v, (size_t)n, sizeof(double), cmp_dbl);
	return util_percentile(v, (size_t)n, q);
}

static double gini(const uint64_t *v, int n, double *tmp)
{
	double s = 0, acc = 0;

	for (int i = 0; i < n; i++)
		tmp[i] = (double)v[i];
	qsort(tmp, (size_t)n, sizeof(double), cmp_dbl);
	for (int i = 0; i < n; i++) {
		s += tmp[i];
		acc += (i + 1) * tmp[i];
	}
	return s > 0 ? 2 * acc / (n * s) - (double)(n + 1) / n : 0;
}

static void report(struct stats *st, const char *label, int per_layer)
{
	const int L = st->L, E = st->E;
	double *a[9], tmp[4096];

	for (int i = 0; i < 9; i++)
		a[i] = calloc((size_t)L, sizeof(double));
	for (int l = 0; l < L; l++) {
		const uint64_t *t = st->total + (size_t)l * E;
		uint64_t sum = 0, mx = 0;
		for (int e = 0; e < E; e++) {
			sum += t[e];
			mx = t[e] > mx ? t[e] : mx;
		}
		a[0][l] = st->step_n[l] ? st->step_mm[l] / st->step_n[l] : 0;
		a[1][l] = st->windows ? st->win_mm[l] / st->windows : 0;
		a[2][l] = maxmean(t, E);
		a[3][l] = gini(t, E, tmp);
		a[4][l] = sum ? (double)mx / sum : 0;
		a[5][l] = st->pairs ? st->overlap[l] / st->pairs : 0;
		a[6][l] = st->pairs ? st->fit[l] / st->pairs : 0;
		a[7][l] = st->pairs ? st->next[l] / st->pairs : 0;
		a[8][l] = a[6][l] > 0 ? a[7][l] / a[6][l] : 0;
		if (per_layer)
			printf("%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", l, a[0][l], a[1][l],
			       a[2][l], a[3][l], a[4][l], a[5][l], a[6][l], a[7][l]);
	}
	if (!per_layer) {
		double m[9], p90[9], mx[9];
		for (int i = 0; i < 9; i++) {
			m[i] = quant(a[i], L, 50);
			p90[i] = quant(a[i], L, 90);
			mx[i] = a[i][L - 1];
		}
		printf("| %s | %dx%d | %lld | %.0f | %d | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) "
		       "| %.2f | %.3f (%.3f) | %.2f | %.3f -> %.3f (%.3f) |\n",
		       label, L, E, (long long)st->steps,
		       st->steps ? st->assign / st->steps / L : 0, st->W, m[0], p90[0], m[1],
		       p90[1], m[2], mx[2], m[3], m[4], mx[4], m[5], m[6], m[7], p90[7]);
	}
	for (int i = 0; i < 9; i++)
		free(a[i]);
}

static int stats_init(struct stats *st, int L, int E, int W, int G)
{
	size_t n = (size_t)L * E;

	memset(st, 0, sizeof(*st));
	if (E > 4096) {
		fprintf(stderr, "bench_genstats: more than 4096 experts\n");
		return -1;
	}
	st->L = L;
	st->E = E;
	st->W = W;
	st->G = G > E ? E : G;
	st->step_mm = xcalloc((size_t)L, sizeof(double));
	st->win_mm = xcalloc((size_t)L, sizeof(double));
	st->overlap = xcalloc((size_t)L, sizeof(double));
	st->fit = xcalloc((size_t)L, sizeof(double));
	st->next = xcalloc((size_t)L, sizeof(double));
	st->step_n = xcalloc((size_t)L, sizeof(int64_t));
	st->win = xcalloc(n, sizeof(uint64_t));
	st->prev = xcalloc(n, sizeof(uint64_t));
	st->total = xcalloc(n, sizeof(uint64_t));
	st->order = xcalloc((size_t)E, sizeof(int));
	st->rank_of = xcalloc((size_t)E, sizeof(int));
	st->hot_prev = xcalloc((size_t)E, sizeof(int));
	st->load = xcalloc((size_t)E, sizeof(double));
	return 0;
}

static void stats_release(struct stats *st)
{
	free(st->step_mm);
	free(st->win_mm);
	free(st->overlap);
	free(st->fit);
	free(st->next);
	free(st->step_n);
	free(st->win);
	free(st->prev);
	free(st->total);
	free(st->order);
	free(st->rank_of);
	free(st->hot_prev);
	free(st->load);
}

struct row {
	int64_t step;
	int layer, expert;
	uint32_t tokens;
};

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	return (x->step > y->step) - (x->step < y->step);
}

/* "step,layer,expert,tokens" at the start of line into v[0..4): 0, or -1
 * when a field is missing, not an integer or out of long long. */
static int parse_row(const char *line, long long *v)
{
	const char *p = line;

	for (int i = 0; i < 4; i++) {
		char *end;
		if (i && *p++ != ',')
			return -1;
		errno = 0;
		v[i] = strtoll(p, &end, 10);
		if (end == p || errno)
			return -1;
		p = end;
	}
	return 0;
}

static int run_csv(const char *path, int W, int G, const char *label, int per_layer)
{
	FILE *f = fopen(path, "r");
	char line[512];
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	int L = 0, E = 0;
	int64_t nsteps = 0;
	struct stats st;

	if (!f) {
		perror(path);
		return 1;
	}
	if (!fgets(line, sizeof(line), f) || strncmp(line, "step,layer,expert,tokens", 24)) {
		fprintf(stderr, "%s: header is not step,layer,expert,tokens\n", path);
		fclose(f);
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		long long v[4], s, t;
		int l, e;
		if (parse_row(line, v) || v[1] < 0 || v[2] < 0 || v[2] >= 4096 ||
		    v[1] >= STORE_MAX_LAYERS || v[3] < 0 || v[3] > UINT32_MAX) {
			fprintf(stderr, "%s: bad line: %s", path, line);
			fclose(f);
			free(rows);
			return 2;
		}
		s = v[0], l = (int)v[1], e = (int)v[2], t = v[3];
		if (n == cap)
			rows = xrealloc(rows, (cap = cap ? 2 * cap : 65536) * sizeof(*rows));
		rows[n++] = (struct row){ s, l, e, (uint32_t)t };
		L = l + 1 > L ? l + 1 : L;
		E = e + 1 > E ? e + 1 : E;
	}
	fclose(f);
	if (!n) {
		fprintf(stderr, "%s: no rows after the header\n", path);
		free(rows);
		return 2;
	}
	qsort(rows, n, sizeof(*rows), cmp_row);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || rows[i].step != rows[i - 1].step)
			nsteps++;
	if (W <= 0)
		W = nsteps >= 32 ? (int)(nsteps / 16) : 1;
	if (stats_init(&st, L, E, W, G)) {
		free(rows);
		return 1;
	}
	uint32_t *c = xcalloc((size_t)L * E, sizeof(uint32_t));
	for (size_t i = 0; i < n;) {
		size_t j = i;
		memset(c, 0, (size_t)L * E * sizeof(uint32_t));
		for (; j < n && rows[j].step == rows[i].step; j++)
			c[(size_t)rows[j].layer * E + rows[j].expert] += rows[j].tokens;
		feed(&st, c);
		i = j;
	}
	report(&st, label ? label : path, per_layer);
	free(c);
	free(rows);
	stats_release(&st);
	return 0;
}

static int run_db(const char *path, const char *runname, int W, int G, const char *label,
		  int per_layer)
{
	struct util_err err = UTIL_ERR_INIT;
	struct store *s;
	struct store_run r;
	struct store_run_stats rs;
	struct store_iter *it;
	struct store_step step;
	struct stats st;
	int rc;

	if (store_open_run(path, runname, STORE_READONLY, &s, &r, &err)) {
		fprintf(stderr, "bench_genstats: %s\n", err.msg);
		return 2;
	}
	if (store_run_stats(s, r.id, &rs) ||
	    store_iter_new(s, &r, INT64_MIN, INT64_MAX, 0, &it)) {
		fprintf(stderr, "bench_genstats: %s\n", store_errmsg(s));
		store_free(s);
		return 1;
	}
	if (W <= 0)
		W = rs.steps >= 32 ? (int)(rs.steps / 16) : 1;
	if (stats_init(&st, r.layers, r.experts, W, G)) {
		store_iter_free(it);
		store_free(s);
		return 1;
	}
	while ((rc = store_iter_next(it, &step)) == 1)
		feed(&st, step.counts);
	if (rc < 0)
		fprintf(stderr, "bench_genstats: %s\n", store_errmsg(s));
	else
		report(&st, label ? label : r.name, per_layer);
	store_iter_free(it);
	store_free(s);
	stats_release(&st);
	return rc < 0;
}

int main(int argc, char **argv)
{
	int W = 0, G = 8, per_layer = 0, i = 1, rc = 0;
	const char *label = NULL;
	struct util_err err = UTIL_ERR_INIT;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--window") && i + 1 < argc)
			rc = util_parse_int(argv[++i], 0, INT32_MAX, &W, "--window", &err);
		else if (!strcmp(argv[i], "--ranks") && i + 1 < argc)
			rc = util_parse_int(argv[++i], 1, INT32_MAX, &G, "--ranks", &err);
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			label = argv[++i];
		else if (!strcmp(argv[i], "--layers"))
			per_layer = 1;
		else if (!strcmp(argv[i], "--header")) {
			printf("| trace | L x E | steps | assignments per layer-step | W | step "
			       "max/mean med (p90) | window max/mean med (p90) | total max/mean "
			       "med (max) | Gini med | top-1 share med (max) | hot 10%% overlap "
			       "med | LPT fit -> next window, med (next p90) |\n");
			printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
			       "| --- |\n");
			return 0;
		} else {
			fprintf(stderr, "usage: bench_genstats [--window W] [--ranks G] [--name "
					"LABEL] [--layers] [--header] FILE.csv|DB [RUN]\n");
			return 2;
		}
		if (rc) {
			fprintf(stderr, "bench_genstats: %s\n", err.msg);
			return 2;
		}
	}
	if (i >= argc || G < 1) {
		fprintf(stderr, "bench_genstats: no input\n");
		return 2;
	}
	if (per_layer)
		printf("layer,step_maxmean,window_maxmean,total_maxmean,gini,top1_share,"
		       "hot_overlap,fit,next\n");
	size_t len = strlen(argv[i]);
	if (len > 4 && !strcmp(argv[i] + len - 4, ".csv"))
		return run_csv(argv[i], W, G, label, per_layer);
	return run_db(argv[i], i + 1 < argc ? argv[i + 1] : NULL, W, G, label, per_layer);
}

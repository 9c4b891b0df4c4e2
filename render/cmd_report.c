/*
 * cmd_report.c: `moetrace report DB -o DIR` — the standard analysis of a
 * run as charts.  It compares the placement algorithms the way `moetrace
 * compare` does by default (fitted on the first half of the steps, scored
 * on the steps that follow), replays the one with the lowest imbalance on
 * the scored steps in memory, then writes every chart as PNG and one
 * report.pdf: a summary page, then one page per chart.  Nothing is written
 * to the trace (it is opened read-only).
 *
 * The flow: compare() fills the table from analyze_compare_run (the analysis
 * `compare` runs, analyze/compare.c), render_replay_run() (render/job.c)
 * replays the best algorithm, prepare_jobs() turns both into chart jobs,
 * write_all() draws them into a temporary directory that becomes DIR (or
 * whose files are renamed into an existing DIR) only once all are written.
 * No timing figure goes into any file: same trace, same bytes.
 */
#include "render/render_int.h"

#include "analyze/analyze.h"
#include "cmds.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
	"usage: moetrace report [--run NAME] [--ranks R] [--slots S | --redundant N]\n"
	"                       [--steps A:B] [--phase prefill|decode] [--algos A,B,...]\n"
	"                       [--episodes N]\n"
	"                       [--interval K] [--window W] [--delay D] [--model NAME]\n"
	"                       [--quant bf16|fp8|w8a8|w4a8|mxfp4] [--link NAME | --bandwidth GB/s]\n"
	"                       [--scale X] -o DIR DB\n"
	"Compares the algorithms (fitted on the first half of the steps, scored on the\n"
	"second, as `moetrace compare`), replays the best in memory, and writes\n"
	"heatmap.png, timeline.png, devices.png, imbalance.png, transfer.png and\n"
	"report.pdf into DIR.  The trace is not changed.  The algorithms get each\n"
	"window as N episodes too (default 8; 0: the summed heat only), which makes\n"
	"placements that hold up on the steps after it.\n";

#define CMD "report"
#define MAX_ALGOS 10
#define DEFAULT_ALGOS "static,eplb,flashlb,swift,keel"
/* A deployment serves the steps after the window it was fitted on: given
 * the window as episodes (ANALYZE_FIT_EPISODES unless --episodes says, fewer on
 * a short window), the multi-episode algorithms place for all of them
 * instead of for their sum (docs/render.md has the figures). */

struct opts {
	struct analyze_cli c;
	const char *db, *dir, *algos;
	int64_t interval, window, delay;
	double scale;
	char dirbuf[3072];
};

/* One row of the comparison. */
struct row {
	const struct analyze_algo *algo;
	double fit, next, next_step, gap_next, xfer_s;
	int64_t moves, bytes;
};

/* The pages, in order; a job of kind < 0 is not drawn. */
enum { PG_HEATMAP, PG_TIMELINE, PG_DEVICES, PG_IMBALANCE, PG_TRANSFER, PAGES };
static const char *const page_file[PAGES] = { "heatmap.png", "timeline.png", "devices.png",
					      "imbalance.png", "transfer.png" };

struct report {
	struct store_run run;
	const struct store_model *model;
	int ranks, slots, nodes, groups, quant, nrows, best, hot_layer, worst_layer;
	int64_t win[4], fit_steps, next_steps, replay_steps;
	const char *cur_name;
	uint64_t ebytes;
	double worst_imb;
	struct analyze_deploy dep;  /* copies priced on its two tiers */
	struct row rows[MAX_ALGOS];
	struct analyze_replay_out rep;
	char rep_desc[200];
	char eps_desc[96];         /* ", as K episodes" (and what the flagship fits) or "" */
	char advice[400];          /* the recommendation line (advise()) */
	char why[160];             /* why the timeline shows its layer */
	int snapshot;              /* one step in the range: no windows to compare */
	int64_t snap_step;
	const struct analyze_algo *snap_algo; /* fitted on the snapshot */
	double assign;             /* token-expert assignments per layer per step (scored) */
	double noise_imb;          /* per-step imbalance of uniformly random routing at that size */
	char noise[300];           /* the note when per-step imbalance is sampling noise, or "" */
	/* the scored steps by phase (index enum store_phase): steps, mean
	 * assignments per layer per step, mean per-step imbalance under the
	 * start placement and under each row's */
	struct {
		int64_t n;
		double assign, start, row[MAX_ALGOS];
	} ph[3];
	int split;                 /* both prefill and decode steps scored: a page for them */
	int advice_pays;           /* 1 deploy, 0 does not pay, -1 unpriced */
	struct render_job *jobs[PAGES];
	int npages;                /* chart pages drawn */
	int pages[PAGES];          /* their kinds in order */
};

static int parse_opts(int argc, char **argv, struct opts *o, struct util_err *err)
{
	static const struct option opts[] = {
		ANALYZE_LONGOPT_RUN,
		ANALYZE_LONGOPT_RANKS,
		ANALYZE_LONGOPT_SLOTS,
		ANALYZE_LONGOPT_REDUNDANT,
		ANALYZE_LONGOPT_STEPS,
		ANALYZE_LONGOPT_EPISODES,
		ANALYZE_LONGOPT_PHASE,
		{ "algos", required_argument, NULL, 'a' },
		{ "interval", required_argument, NULL, 'K' },
		{ "window", required_argument, NULL, 'W' },
		{ "delay", required_argument, NULL, 'D' },
		ANALYZE_LONGOPT_MODEL,
		ANALYZE_LONGOPT_QUANT,
		ANALYZE_LONGOPT_LINK,
		ANALYZE_LONGOPT_BANDWIDTH,
		{ "scale", required_argument, NULL, 'X' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, "r:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a': o->algos = optarg; break;
		case 'K':
			if (util_parse_i64(optarg, 1, STORE_STEP_MAX, &o->interval, "--interval",
					   err))
				return err->code;
			break;
		case 'W':
			if (util_parse_i64(optarg, 1, STORE_STEP_MAX, &o->window, "--window", err))
				return err->code;
			break;
		case 'D':
			if (util_parse_i64(optarg, 0, STORE_STEP_MAX, &o->delay, "--delay", err))
				return err->code;
			break;
		case 'X':
			if (util_parse_double(optarg, 0.25, 4, &o->scale, "--scale", err))
				return err->code;
			break;
		case 'o': o->dir = optarg; break;
		case 'h': fputs(usage, stdout); return 1;
		case 'k':
			if (util_parse_int(optarg, 0, ANALYZE_MAX_EPISODES, &o->c.episodes, "--episodes",
					   err))
				return err->code;
			break;
		case 's':
			if ((rc = analyze_cli_opt(c, optarg, &o->c, err)))
				return rc;
			if (o->c.from > o->c.to)
				return util_err_set(err, UTIL_EUSAGE, "--steps: empty range '%s'",
						    optarg);
			break;
		default:
			if ((rc = analyze_cli_opt_or_unknown(c, optarg, &o->c, argv, opts, err)))
				return rc;
			break;
		}
	}
	if (optind != argc - 1)
		return UTIL_EUSAGE;
	o->db = argv[optind];
	if (!o->dir || !o->dir[0])
		return util_err_set(err, UTIL_EUSAGE, "no output directory: give -o DIR");
	if (strlen(o->dir) >= sizeof(o->dirbuf))
		return util_err_set(err, UTIL_EUSAGE, "output directory name too long");
	/* "out/" names the directory out: its temporary sibling is out.tmp-* */
	strcpy(o->dirbuf, o->dir);
	for (size_t k = strlen(o->dirbuf); k > 1 && o->dirbuf[k - 1] == '/'; k--)
		o->dirbuf[k - 1] = '\0';
	o->dir = o->dirbuf;
	if (o->interval && o->delay >= o->interval)
		return util_err_set(err, UTIL_EUSAGE, "--delay %lld must be below --interval %lld",
				    (long long)o->delay, (long long)o->interval);
	return 0;
}

/* The default list may name what this build lacks; a given one must exist. */
static int pick_algos(const char *list, int given, struct report *r, struct util_err *err)
{
	const struct analyze_algo *algos[MAX_ALGOS];
	int rc = analyze_algos_parse(list, !given, algos, MAX_ALGOS, &r->nrows, err);

	for (int i = 0; !rc && i < r->nrows; i++)
		r->rows[i].algo = algos[i];
	return rc;
}

/* The windows of `moetrace compare`: the first half of [A, B] fits, the
 * same number of steps after it scores. */
static int resolve_windows(struct store *s, struct report *r, const struct opts *o,
			   struct util_err *err)
{
	struct store_run_stats st;
	int64_t a, b, len;

	if (store_run_stats(s, r->run.id, &st))
		return util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
	a = o->c.from > st.first_step ? o->c.from : st.first_step;
	b = o->c.to < st.last_step ? o->c.to : st.last_step;
	if (st.steps == 0 || b < a)
		return util_err_set(err, UTIL_EUSAGE,
				    "no steps of run '%s' in the chosen range (it has steps "
				    "%lld-%lld)",
				    r->run.name, (long long)st.first_step, (long long)st.last_step);
	len = (b - a + 1) / 2;
	if (len < 1) {
		/* one step (a snapshot, such as a recorder's summed counts): no
		 * windows to compare or replay, but its heat and device load */
		r->snapshot = 1;
		r->snap_step = a;
		r->win[0] = r->win[1] = r->win[2] = r->win[3] = a;
		return 0;
	}
	r->win[0] = a;
	r->win[1] = a + len - 1;
	r->win[2] = a + len;
	r->win[3] = a + 2 * len - 1;
	return 0;
}

/* The hottest layer holds the hottest expert; the worst is the least
 * balanced under the start placement, both over the compared steps. */
static void pick_layers(struct report *r, const struct analyze_compare *x, const int32_t *cur)
{
	int L = r->run.layers, E = r->run.experts, R = r->ranks, S = r->slots, P = R * S;
	double *load = xcalloc((size_t)R, sizeof(double));
	double *both = xcalloc((size_t)E, sizeof(double));
	double hot = -1;

	for (int l = 0; l < L; l++) {
		double tot = 0, m, imb;
		for (int e = 0; e < E; e++) {
			both[e] = x->fit_heat[(size_t)l * E + e] + x->next_heat[(size_t)l * E + e];
			if (both[e] > hot) {
				hot = both[e];
				r->hot_layer = l;
			}
		}
		m = analyze_device_load(both, E, cur + (size_t)l * P, R, S, NULL, load);
		for (int k = 0; k < R; k++)
			tot += load[k];
		imb = tot > 0 ? m / (tot / R) : 1;
		if (imb > r->worst_imb) {
			r->worst_imb = imb;
			r->worst_layer = l;
		}
	}
	free(load);
	free(both);
}

/* The table's rows and the figures per phase from the comparison. */
static void take_rows(struct report *r, const struct analyze_compare *x)
{
	for (int i = 0; i < r->nrows; i++) {
		const struct analyze_compare_algo *a = &x->algo[i];
		struct row *w = &r->rows[i];
		w->fit = a->fit;
		w->next = a->next;
		w->next_step = a->next_step;
		w->gap_next = a->gap_next;
		w->moves = a->plan.moves;
		w->bytes = a->bytes;
		w->xfer_s = a->xfer_s;
	}
	r->assign = x->assign;
	for (int p = 0; p < 3; p++) {
		r->ph[p].n = x->phase[p].n;
		r->ph[p].assign = x->phase[p].assign;
		r->ph[p].start = x->phase[p].start;
		for (int i = 0; i < r->nrows; i++)
			r->ph[p].row[i] = x->algo[i].phase_step[p];
	}
	r->split = r->ph[STORE_PHASE_PREFILL].n > 0 && r->ph[STORE_PHASE_DECODE].n > 0;
}

/* Fits every algorithm on the first window and scores it on the next
 * (analyze_compare_run, as `moetrace compare` does). */
static int compare(struct store *s, struct report *r, const struct opts *o, struct util_err *err)
{
	int L = r->run.layers, R = r->ranks, S = r->slots, rc, deployed;
	int32_t *cur = xmallocarray((size_t)L * R * S, sizeof(int32_t));
	const struct analyze_algo *algos[MAX_ALGOS];
	struct analyze_compare x = { 0 };
	int ne = analyze_fit_episodes(o->c.episodes, r->win[1] - r->win[0] + 1);
	struct analyze_compare_in in = {
		.store = s, .run = &r->run, .algos = algos, .n_algos = r->nrows,
		.ranks = R, .slots = S, .nodes = r->nodes, .groups = r->groups, .max_moves = -1,
		.fit_from = r->win[0], .fit_to = r->win[1],
		.next_from = r->win[2], .next_to = r->win[3],
		.phase_mask = o->c.phase_mask, .start = cur, .n_episodes = ne,
		/* the flagship's own input unless --episodes says: the window's
		 * blocks and its history (analyze/robust.c) */
		.flagship_blocks = o->c.episodes < 0,
		.dep = &r->dep, .capacity = o->c.capacity, .by_phase = 1,
	};

	for (int i = 0; i < r->nrows; i++)
		algos[i] = r->rows[i].algo;
	if ((rc = analyze_start_placement(s, &r->run, r->win[1], R, S, 0, cur, &deployed, NULL,
					  err)))
		goto out;
	r->cur_name = deployed ? "deployed" : "static";
	if ((rc = analyze_compare_run(&in, &x, err)))
		goto out;
	if (ne > 0) {
		int fl = 0;
		for (int i = 0; in.flagship_blocks && i < r->nrows; i++)
			fl |= analyze_algo_forecasts(algos[i]);
		/* the flagship is not given the episodes but its forecast */
		snprintf(r->eps_desc, sizeof(r->eps_desc), ", as %d episodes%s%s%s", ne,
			 fl ? "; " : "", fl ? ANALYZE_FLAGSHIP : "",
			 fl ? ": its forecast of the next window" : "");
	}
	r->fit_steps = x.fit_steps;
	r->next_steps = x.next_steps;
	if (!r->fit_steps || !r->next_steps) {
		rc = util_err_set(err, UTIL_EUSAGE,
				  "no steps of run '%s' in %lld..%lld%s: nothing to compare",
				  r->run.name, (long long)r->win[r->fit_steps ? 2 : 0],
				  (long long)r->win[r->fit_steps ? 3 : 1],
				  o->c.phase_mask ? " in that phase" : "");
		goto out;
	}
	pick_layers(r, &x, cur);
	take_rows(r, &x);
	/* the best is the lowest mean per-step imbalance on the next window:
	 * MoE time follows each step's straggler, not the window's sum */
	for (int i = 1; i < r->nrows; i++)
		if (r->rows[i].next_step < r->rows[r->best].next_step)
			r->best = i;
out:
	analyze_compare_release(&x);
	free(cur);
	return rc;
}

/* ---- the recommendation --------------------------------------------------- */

/* The mean per-step imbalance of routing spread uniformly at random: each
 * of the step's tokens (A assignments / top-k, at least 1) picks k distinct
 * experts uniformly, E experts in contiguous blocks over R ranks (the
 * static layout without redundancy); 4096 trials of a fixed generator, so
 * the figure is the same on every run.  A trace whose steps are this small
 * scores near it whatever the placement. */
static double random_imbalance(double a, int E, int k, int R)
{
	uint64_t x = 0x9e3779b97f4a7c15u;
	int T, trials = 4096;
	int *load = xcalloc((size_t)R, sizeof(int)), *perm = xmallocarray((size_t)E, sizeof(int));
	double sum = 0;

	if (k < 1 || k > E)
		k = 1;
	T = a / k < 1 ? 1 : (int)(a / k + 0.5);
	for (int e = 0; e < E; e++)
		perm[e] = e;
	for (int t = 0; t < trials; t++) {
		int mx = 0;
		memset(load, 0, (size_t)R * sizeof(int));
		for (int i = 0; i < T; i++)
			for (int j = 0; j < k; j++) { /* partial Fisher-Yates: k distinct */
				x ^= x << 13; /* xorshift64 */
				x ^= x >> 7;
				x ^= x << 17;
				int m = j + (int)((x >> 11) % (uint64_t)(E - j)), e = perm[m];
				perm[m] = perm[j];
				perm[j] = e;
				int rk = (int)((int64_t)e * R / E);
				if (++load[rk] > mx)
					mx = load[rk];
			}
		sum += mx / ((double)T * k / R);
	}
	free(load);
	free(perm);
	return sum / trials;
}

/* Says so when the steps are too small for per-step imbalance to mean
 * much: fewer than 8 token-expert assignments per rank per step, where
 * random routing alone scores high. */
static void noise_note(struct report *r)
{
	double per_rank = r->assign / r->ranks;

	r->noise[0] = '\0';
	if (r->snapshot || !(r->assign > 0) || per_rank >= 8)
		return;
	r->noise_imb = random_imbalance(r->assign, r->run.experts, r->run.topk, r->ranks);
	snprintf(r->noise, sizeof(r->noise),
		 "per-step imbalance here is mostly sampling noise: %.1f token-expert assignments "
		 "per layer per step over %d ranks (%.2f per rank); tokens routed uniformly at "
		 "random would score %.2f",
		 r->assign, r->ranks, per_rank, r->noise_imb);
}

/* What to do, from figures the report already has: the best algorithm by
 * next-window per-step imbalance and the replay of it.  The replay's net
 * saved time decides: stop-the-world net > 0 pays however the weights
 * move; only the overlapped net > 0 pays if the engine moves weights
 * behind serving; both negative (or nothing moved, or no gain) do not pay.
 * Without a model the bytes are unknown, so the line says what to deploy
 * and that its price is unknown rather than guessing. */
static void advise_line(struct report *r);

static void advise(struct report *r)
{
	advise_line(r);
	if (r->noise[0] && r->advice_pays != 0 &&
	    strlen(r->advice) + 70 < sizeof(r->advice))
		strcat(r->advice, "; but per-step figures here are mostly sampling noise (below)");
}

static void advise_line(struct report *r)
{
	const struct store_replay *m = &r->rep.sum;
	const char *name = r->rows[r->best].algo->name;
	int red = r->ranks * r->slots - r->run.experts;
	char with[64];

	if (red > 0)
		snprintf(with, sizeof(with), "%d redundant expert%s", red, red == 1 ? "" : "s");
	else
		snprintf(with, sizeof(with), "no redundant experts");
	if (!strcmp(name, "static") || m->events == 0 || m->moves == 0 ||
	    m->imbalance_mean >= m->baseline_imbalance_mean) {
		r->advice_pays = 0;
		snprintf(r->advice, sizeof(r->advice),
			 "rebalancing does not pay here: keep the %s placement (%d ranks x %d "
			 "slots, %s); %s",
			 r->cur_name, r->ranks, r->slots, with,
			 !strcmp(name, "static") ? "the static layout scores best on the next window"
			 : m->moves == 0        ? "the replay of the best moved no expert"
						: "the replay does not lower the per-step imbalance");
		return;
	}
	if (!r->model) {
		r->advice_pays = -1;
		snprintf(r->advice, sizeof(r->advice),
			 "deploy %s with %s, rebalancing every %lld steps (mean per-step imbalance "
			 "%.3f against %.3f); whether the moves pay is unknown: give --model",
			 name, with, (long long)m->interval, m->imbalance_mean,
			 m->baseline_imbalance_mean);
		return;
	}
	if (m->net_stop_seconds > 0) {
		r->advice_pays = 1;
		snprintf(r->advice, sizeof(r->advice),
			 "deploy %s with %s, rebalancing every %lld steps: it saves %.3g s net "
			 "even stopping the world to move weights (%.3g s overlapped)",
			 name, with, (long long)m->interval, m->net_stop_seconds,
			 m->net_overlap_seconds);
	} else if (m->net_overlap_seconds > 0) {
		r->advice_pays = 1;
		snprintf(r->advice, sizeof(r->advice),
			 "deploy %s with %s, rebalancing every %lld steps only with the weights "
			 "moved behind serving: %.3g s net overlapped, %.3g s lost stopping the "
			 "world",
			 name, with, (long long)m->interval, m->net_overlap_seconds,
			 -m->net_stop_seconds);
	} else if (m->saved_seconds >= 0) {
		r->advice_pays = 0;
		snprintf(r->advice, sizeof(r->advice),
			 "rebalancing does not pay here: %s every %lld steps saves %.3g s of MoE "
			 "time but moving weights loses %.3g s net even overlapped (%.3g s stopping "
			 "the world)",
			 name, (long long)m->interval, m->saved_seconds, -m->net_overlap_seconds,
			 -m->net_stop_seconds);
	} else {
		/* a lower imbalance that costs MoE time (at a small batch each rank
		 * reads its active experts' weights): the moves are not the loss */
		r->advice_pays = 0;
		snprintf(r->advice, sizeof(r->advice),
			 "rebalancing does not pay here: %s every %lld steps lowers the mean "
			 "per-step imbalance (%.3f against %.3f) but adds %.3g s of MoE time on the "
			 "step-time model; %.3g s lost net even overlapped (%.3g s stopping the "
			 "world)",
			 name, (long long)m->interval, m->imbalance_mean, m->baseline_imbalance_mean,
			 -m->saved_seconds, -m->net_overlap_seconds, -m->net_stop_seconds);
	}
}

/* ---- the summary page ----------------------------------------------------- */

static double line(cairo_t *cr, double x, double y, double font, int bold, const char *fmt, ...)
	UTIL_PRINTF(6, 7);
static double line(cairo_t *cr, double x, double y, double font, int bold, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rint_text(cr, x, y, buf, font, bold, 0, 0, 0);
	return y + font * 1.45;
}

/* Draws s word-wrapped into `room` units from (x, y); returns the y after
 * the last line.  measure only (no drawing) when draw is 0. */
static double wrap(cairo_t *cr, double x, double y, double room, double font, int bold,
		   const char *s, int draw)
{
	char buf[512];

	while (*s) {
		size_t take = 0, k = 0;
		/* the longest run of whole words that fits */
		while (s[k]) {
			size_t e = k;
			while (s[e] == ' ')
				e++;
			while (s[e] && s[e] != ' ')
				e++;
			if (e >= sizeof(buf))
				break;
			memcpy(buf, s, e);
			buf[e] = '\0';
			if (take && rint_text_width(cr, buf, font, bold) > room)
				break;
			take = e;
			k = e;
		}
		if (!take)
			take = strlen(s) < sizeof(buf) ? strlen(s) : sizeof(buf) - 1;
		memcpy(buf, s, take);
		buf[take] = '\0';
		if (draw)
			rint_text(cr, x, y, buf, font, bold, 0, 0, 0);
		y += font * 1.35;
		s += take;
		while (*s == ' ')
			s++;
	}
	return y;
}

/* As line(), but a line wider than `room` is word-wrapped onto the next
 * ones instead of running off the page (a long source path, large numbers
 * in serving units).  A line that fits is drawn as line() draws it. */
static double para(cairo_t *cr, double x, double y, double room, double font, int bold,
		   const char *fmt, ...) UTIL_PRINTF(7, 8);
static double para(cairo_t *cr, double x, double y, double room, double font, int bold,
		   const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (rint_text_width(cr, buf, font, bold) <= room) {
		rint_text(cr, x, y, buf, font, bold, 0, 0, 0);
		return y + font * 1.45;
	}
	/* wrap() advances 1.35 fonts a line; leave line()'s gap below */
	return wrap(cr, x, y, room, font, bold, buf, 1) + font * 0.10;
}

/* The replay of the best algorithm, in the summary: its imbalance, the
 * copies it makes, and what it saves net of moving weights, also in serving
 * units.  Returns the y below its last line. */
static double summary_replay(cairo_t *cr, double x, double y, double room, double f,
			     const struct report *r)
{
	const struct store_replay *m = &r->rep.sum;
	char b1[64], b2[64];

	y = para(cr, x, y, room, f, 1, "Replay of the best, step by step");
	y = para(cr, x, y, room, f, 0, "%s", r->rep_desc);
	y = para(cr, x, y, room, f, 0,
		 "%lld steps; per-step imbalance: mean %.4f (start placement %.4f), p99 %.4f "
		 "(%.4f)",
		 (long long)m->steps, m->imbalance_mean, m->baseline_imbalance_mean,
		 m->imbalance_p99, m->baseline_imbalance_p99);
	if (r->rep.phase[0].steps && r->rep.phase[1].steps)
		y = para(cr, x, y, room, f, 0,
			 "by phase: %lld decode steps, mean %.4f (start %.4f); %lld prefill steps, mean "
			 "%.4f (start %.4f)",
			 (long long)r->rep.phase[0].steps, r->rep.phase[0].mean,
			 r->rep.phase[0].base_mean, (long long)r->rep.phase[1].steps,
			 r->rep.phase[1].mean, r->rep.phase[1].base_mean);
	if (r->model) {
		util_human_bytes(b1, sizeof(b1), (double)m->bytes);
		snprintf(b2, sizeof(b2), "%.3f s", m->transfer_seconds);
	} else {
		snprintf(b1, sizeof(b1), "bytes unknown");
		snprintf(b2, sizeof(b2), "unknown");
	}
	y = para(cr, x, y, room, f, 0, "%lld rebalances, %lld expert copies (%s), transfer %s",
		 (long long)m->events, (long long)m->moves, b1, b2);
	if (r->model)
		y = para(cr, x, y, room, f, 0,
			 "MoE straggler time saved %.3g s; net of transfer: %.3g s (stop the "
			 "world), %.3g s (overlapped)",
			 m->saved_seconds, m->net_stop_seconds, m->net_overlap_seconds);
	if (r->model && m->steps > 0 && m->baseline_step_seconds > 0 &&
	    m->baseline_moe_seconds > 0) {
		double n = (double)m->steps, base = m->baseline_step_seconds;
		y = para(cr, x, y, room, f, 0,
			 "per step (estimates): MoE time %.3f ms -> %.3f ms (%.2f%% saved), step "
			 "time %.3f ms (%.2f%% saved), %.0f -> %.0f tokens/s at %.0f tokens per step",
			 m->baseline_moe_seconds / n * 1e3, m->moe_seconds / n * 1e3,
			 100 * m->saved_seconds / m->baseline_moe_seconds, base / n * 1e3,
			 100 * m->saved_seconds / base, (double)m->tokens / base,
			 (double)m->tokens / (base - m->saved_seconds), (double)m->tokens / n);
	}
	return y;
}

/* The comparison table: right-aligned numbers under their headings;
 * returns the y below its last row. */
static double summary_table(cairo_t *cr, double x, double y, double f, const struct report *r)
{
	static const char *const head[] = { "algorithm", "next, per step", "next, summed",
					    "gap to bound", "moves", "weights moved",
					    "transfer", "fitted (hindsight)" };
	double col[8], cx;

	col[0] = x;
	cx = x + 100 * f / 12;
	for (int c = 1; c < 8; c++) {
		static const double step[8] = { 0, 125, 125, 110, 80, 120, 85, 150 };
		cx += step[c] * f / 12;
		col[c] = cx;
	}
	for (int c = 0; c < 8; c++)
		rint_text(cr, col[c], y, head[c], f, 1, c ? 1 : 0, 0, 0);
	y += f * 1.3;
	cairo_set_line_width(cr, 1);
	cairo_move_to(cr, x, rint_snap(cr, y, 0) + 0.5);
	cairo_line_to(cr, col[7], rint_snap(cr, y, 0) + 0.5);
	cairo_stroke(cr);
	y += f * 0.4;
	for (int i = 0; i < r->nrows; i++) {
		const struct row *rw = &r->rows[i];
		char cell[8][48];
		snprintf(cell[0], 48, "%s%s", rw->algo->name, i == r->best ? "  (best)" : "");
		snprintf(cell[1], 48, "%.4f", rw->next_step);
		snprintf(cell[2], 48, "%.4f", rw->next);
		snprintf(cell[7], 48, "%.4f", rw->fit);
		snprintf(cell[3], 48, "%.2f%%", 100 * rw->gap_next);
		snprintf(cell[4], 48, "%lld", (long long)rw->moves);
		if (r->model) {
			util_human_bytes(cell[5], 48, (double)rw->bytes);
			snprintf(cell[6], 48, "%.3f s", rw->xfer_s);
		} else {
			snprintf(cell[5], 48, "-");
			snprintf(cell[6], 48, "-");
		}
		for (int c = 0; c < 8; c++)
			rint_text(cr, col[c], y, cell[c], f, i == r->best, c ? 1 : 0, 0, 0);
		y += f * 1.45;
	}
	return y;
}

static double summary_body(cairo_t *cr, double w, double f, double gap, const struct report *r,
			   int draw);

/* The page at the largest font whose content still fits its height (down
 * to 9). */
static int draw_summary(cairo_t *cr, double w, double h, const struct report *r)
{
	double f = 12, gap;

	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	/* the table's columns (895 units wide at 12) and the lines grow with
	 * the page as far as both its width and its height allow */
	for (int i = 0; 12 + 0.25 * i <= 12 * (w / RENDER_WIDTH) * 1.25; i++) {
		double t = 12 + 0.25 * i; /* quarters: exact, as a running sum was */
		if (summary_body(cr, w, t, t * 0.8, r, 0) > h - 10 ||
		    (!r->snapshot && 895 * t / 12 > w - 80))
			break;
		f = t;
	}
	/* a page too full even at 12 (a two-line recommendation, wrapped lines,
	 * the phase page to list) gets a smaller font rather than losing its
	 * last lines off the bottom */
	while (f > 9 && summary_body(cr, w, f, f * 0.8, r, 0) > h - 10)
		f -= 0.25;
	/* what height is left goes between the sections (5 gaps) */
	gap = f * 0.8 + (h - 10 - summary_body(cr, w, f, f * 0.8, r, 0)) / 5;
	if (gap > f * 2.4)
		gap = f * 2.4;
	summary_body(cr, w, f, gap < f * 0.8 ? f * 0.8 : gap, r, 1);
	return 0;
}

/* Lays out (draw 0) or draws the summary at base font f; returns the y
 * below its last line. */
static double summary_body(cairo_t *cr, double w, double f, double gap, const struct report *r,
			   int draw)
{
	const struct store_run *run = &r->run;
	double x = 40, y = 24, y0, bh, room = w - 2 * x;
	char b1[64], b2[64];

	if (!draw) {
		/* measuring: draw nowhere (a clip that holds nothing) */
		cairo_save(cr);
		cairo_rectangle(cr, 0, 0, 0, 0);
		cairo_clip(cr);
	}
	cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	rint_text(cr, w / 2, y, "moetrace report", f * 1.5, 1, 0.5, 0, 0);
	y += f * 2.6;
	/* what to do first, on a tint that says so: green deploy, amber
	 * does not pay, grey unpriced */
	y0 = y - f * 0.5;
	/* a line's advance leaves 0.44 f under its text: as much as above */
	bh = wrap(cr, x + f, y, w - 2 * x - 2 * f, f * 1.25, 1, r->advice, 0) - y0;
	if (r->advice_pays > 0)
		cairo_set_source_rgb(cr, 0.85, 0.95, 0.88);
	else if (r->advice_pays == 0)
		cairo_set_source_rgb(cr, 1.0, 0.93, 0.80);
	else
		cairo_set_source_rgb(cr, 0.92, 0.92, 0.92);
	cairo_rectangle(cr, x, y0, w - 2 * x, bh);
	cairo_fill(cr);
	cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	wrap(cr, x + f, y, w - 2 * x - 2 * f, f * 1.25, 1, r->advice, 1);
	y = y0 + bh + gap;
	y = para(cr, x, y, room, f, 1, "Run '%s'", run->name);
	if (run->topk > 0)
		snprintf(b1, sizeof(b1), ", top-%d", run->topk);
	else
		b1[0] = '\0';
	y = para(cr, x, y, room, f, 0, "model: %s; %d MoE layers x %d experts%s",
		 r->model ? r->model->label : "not given (no expert bytes: moves are counted)",
		 run->layers, run->experts, b1);
	if (r->nodes > 1)
		snprintf(b2, sizeof(b2), ", %d nodes of %d ranks", r->nodes, r->ranks / r->nodes);
	else
		b2[0] = '\0';
	y = para(cr, x, y, room, f, 0, "EP layout: %d ranks x %d slots (%d redundant)%s",
		 r->ranks, r->slots, r->ranks * r->slots - run->experts, b2);
	if (run->source[0])
		y = para(cr, x, y, room, f, 0, "source: %s", run->source);
	if (r->snapshot) {
		y = para(cr, x, y, room, f, 0,
			 "one step recorded in the range (step %lld): a snapshot, no time axis",
			 (long long)r->snap_step);
		y = para(cr, x, y, room, f * 0.9, 0,
			 "no comparison of windows, replay, timeline or transfer: each needs steps "
			 "after the ones a placement is fitted on");
		y = para(cr, x, y, room, f, 0,
			 "least balanced layer under the static layout: layer %d, imbalance %.3f "
			 "(max / mean device load; 1 is perfect)",
			 r->worst_layer, r->worst_imb);
		y = para(cr, x, y, room, f * 0.9, 0,
			 "the device page fits %s on this same step: in hindsight, the best this "
			 "placement could do for exactly this load",
			 r->snap_algo->name);
		y += gap;
		goto pages;
	}
	y = para(cr, x, y, room, f, 0,
		 "fitted on steps %lld-%lld (%lld step%s%s), scored on the next %lld-%lld (%lld "
		 "step%s); moves from the %s placement",
		 (long long)r->win[0], (long long)r->win[1], (long long)r->fit_steps,
		 r->fit_steps == 1 ? "" : "s", r->eps_desc, (long long)r->win[2],
		 (long long)r->win[3], (long long)r->next_steps, r->next_steps == 1 ? "" : "s",
		 r->cur_name);
	y = para(cr, x, y, room, f * 0.9, 0,
		 "imbalance = sum over layers of max / sum of mean device load (a replicated "
		 "expert's tokens split evenly; 1 is perfect); gap = distance to the proven lower "
		 "bound");
	y = para(cr, x, y, room, f * 0.9, 0,
		 "per step: the mean over the next window's steps of each step's imbalance (MoE "
		 "time follows each step's straggler); the best is the lowest");
	if (r->model) {
		char eb[32];
		int nodes = r->dep.ranks_per_node > 0 ? r->ranks / r->dep.ranks_per_node : 1;
		util_human_bytes(eb, sizeof(eb), (double)r->ebytes);
		y = para(cr, x, y, room, f * 0.9, 0,
			 "weights moved at %s per expert (%s); %d node%s x %d ranks, copies at %.0f "
			 "GB/s per rank inside a node (%s) and %.0f GB/s across (%s); times are "
			 "estimates",
			 eb, analyze_quant_name(r->quant), nodes, nodes == 1 ? "" : "s",
			 r->dep.ranks_per_node, r->dep.intra_gbps, r->dep.link_intra,
			 r->dep.inter_gbps, r->dep.link_inter);
	}
	y += gap;

	y = summary_table(cr, x, y, f, r);
	y += gap;

	y = summary_replay(cr, x, y, room, f, r);
	y += gap;
	if (r->noise[0]) {
		cairo_set_source_rgb(cr, 0.55, 0.25, 0.0);
		y = wrap(cr, x, y, w - 2 * x, f, 1, r->noise, draw) + gap * 0.6;
		cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	}
pages:
	y = line(cr, x, y, f, 1, "Pages");
	for (int p = 0; p < r->npages; p++) {
		static const char *const what[PAGES] = {
			"expert heat, layer x expert",
			"heat over time of the hottest layer (the one holding the hottest expert)",
			/* NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one sentence */
			"device load of the least balanced layer on the next window, before and "
			"after (fitted on the first)",
			"imbalance per step, the start placement against the replay",
			"expert weights moved per rebalance of the replay"
		};
		if (r->snapshot && r->pages[p] == PG_DEVICES)
			y = line(cr, x, y, f * 0.9, 0,
				 "%d. device load of the least balanced layer, static against the "
				 "placement fitted on the step",
				 p + 2);
		else
			y = line(cr, x, y, f * 0.9, 0, "%d. %s", p + 2, what[r->pages[p]]);
	}
	if (r->split)
		y = line(cr, x, y, f * 0.9, 0,
			 "%d. prefill and decode: each phase's steps and imbalance on the scored "
			 "steps",
			 r->npages + 2);
	if (!r->rep.n_events && !r->snapshot)
		y = line(cr, x, y, f * 0.9, 0, "no transfer chart: the replay made no rebalance");
	if (!draw)
		cairo_restore(cr);
	return y;
}

/* The scored steps split by phase: how large each phase's steps are and
 * how balanced the start placement and each algorithm's are on them. */
static int draw_split(cairo_t *cr, double w, double h, const struct report *r)
{
	const int P1 = STORE_PHASE_PREFILL, P2 = STORE_PHASE_DECODE;
	double f = 14, x = 60, y = 24, c1 = 560, c2 = 760;
	char b1[48], b2[48];

	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	snprintf(b1, sizeof(b1), "%lld-%lld", (long long)r->win[2], (long long)r->win[3]);
	rint_text(cr, w / 2, y, "Prefill and decode", f * 1.3, 1, 0.5, 0, 0);
	y += f * 2.4;
	y = line(cr, x, y, f * 0.9, 0,
		 "the scored steps %s of each phase; every placement was fitted on steps "
		 "%lld-%lld of both phases",
		 b1, (long long)r->win[0], (long long)r->win[1]);
	y = line(cr, x, y, f * 0.9, 0,
		 "imbalance: mean over the phase's steps of each step's sum over layers of max / "
		 "sum of mean device load (1 is perfect)");
	y += f;
	rint_text(cr, c1, y, "prefill", f, 1, 1, 0, 0);
	rint_text(cr, c2, y, "decode", f, 1, 1, 0, 0);
	y += f * 1.3;
	cairo_set_line_width(cr, 1);
	cairo_move_to(cr, x, rint_snap(cr, y, 0) + 0.5);
	cairo_line_to(cr, c2, rint_snap(cr, y, 0) + 0.5);
	cairo_stroke(cr);
	y += f * 0.5;
#define ROW(label, bold, fmt, a, b)                                                    \
	do {                                                                           \
		snprintf(b1, sizeof(b1), fmt, a);                                      \
		snprintf(b2, sizeof(b2), fmt, b);                                      \
		rint_text(cr, x, y, label, f, bold, 0, 0, 0);                          \
		rint_text(cr, c1, y, b1, f, bold, 1, 0, 0);                            \
		rint_text(cr, c2, y, b2, f, bold, 1, 0, 0);                            \
		y += f * 1.5;                                                          \
	} while (0)
	ROW("steps", 0, "%lld", (long long)r->ph[P1].n, (long long)r->ph[P2].n);
	ROW("token-expert assignments per layer per step", 0, "%.1f", r->ph[P1].assign,
	    r->ph[P2].assign);
	y += f * 0.5;
	{
		char label[96];
		snprintf(label, sizeof(label), "imbalance, start (%s) placement", r->cur_name);
		ROW(label, 0, "%.4f", r->ph[P1].start, r->ph[P2].start);
		for (int i = 0; i < r->nrows; i++) {
			snprintf(label, sizeof(label), "imbalance, %s%s", r->rows[i].algo->name,
				 i == r->best ? "  (best over both)" : "");
			ROW(label, i == r->best, "%.4f", r->ph[P1].row[i], r->ph[P2].row[i]);
		}
	}
#undef ROW
	(void)h;
	return 0;
}

static int draw_page(cairo_t *cr, double w, double h, int page, void *ctx)
{
	const struct report *r = ctx;

	if (page == 0)
		return draw_summary(cr, w, h, r);
	if (page == 1 + r->npages)
		return draw_split(cr, w, h, r);
	return render_job_draw(cr, w, h, 0, r->jobs[r->pages[page - 1]]);
}

/* ---- output: a temporary directory, then DIR ------------------------------ */

/* dir/name into p[n]; 0, or -1 when it does not fit. */
static int join(char *p, size_t n, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);

	if (a + 1 + b >= n)
		return -1;
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return 0;
}

static void remove_tmp(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *e;
	char p[4096];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			if (!join(p, sizeof(p), tmp, e->d_name))
				unlink(p);
		}
	closedir(d);
	rmdir(tmp);
}

/* Creates the temporary directory the files are written to: inside DIR
 * when it exists (*inside = 1), else beside it. */
static int make_tmp(const char *dir, char *tmp, size_t n, int *inside, struct util_err *err)
{
	struct stat st;

	*inside = stat(dir, &st) == 0;
	if (*inside && !S_ISDIR(st.st_mode))
		return util_err_set(err, UTIL_EUSAGE, "'%s' exists and is not a directory", dir);
	if (strlen(dir) > n - 64 ||
	    join(tmp, n, dir, *inside ? ".report-XXXXXX" : "") ||
	    (!*inside && snprintf(tmp, n, "%s.tmp-XXXXXX", dir) < 0))
		return util_err_set(err, UTIL_EUSAGE, "output directory name too long: '%s'", dir);
	if (!mkdtemp(tmp))
		return util_err_set(err, UTIL_EIO, "cannot create '%s': %s", dir,
				    strerror(errno));
	return 0;
}

/* Neither DIR nor a file the report may write in it is the trace: each is
 * renamed into place over whatever had its name. */
static int check_out(const char *dir, const char *db, struct util_err *err)
{
	char p[4096];
	int rc;

	if ((rc = util_out_check(dir, db, err)))
		return rc;
	for (int k = 0; k <= PAGES; k++)
		if (!join(p, sizeof(p), dir, k < PAGES ? page_file[k] : "report.pdf") &&
		    (rc = util_out_check(p, db, err)))
			return rc;
	return 0;
}

static int write_all(const struct opts *o, struct report *r, struct util_err *err)
{
	char tmp[4096], a[4096], b[4096];
	int inside, rc;
	mode_t mask;

	if ((rc = make_tmp(o->dir, tmp, sizeof(tmp), &inside, err)))
		return rc;
	for (int p = 0; p < r->npages; p++) {
		join(a, sizeof(a), tmp, page_file[r->pages[p]]);
		if ((rc = render_write(a, RENDER_WIDTH, RENDER_HEIGHT, o->scale, 1, render_job_draw,
				       r->jobs[r->pages[p]], err)))
			goto fail;
	}
	join(a, sizeof(a), tmp, "report.pdf");
	if ((rc = render_write(a, RENDER_WIDTH, RENDER_HEIGHT, 1, 1 + r->npages + r->split,
			       draw_page, r, err)))
		goto fail;
	if (!inside) {
		mask = umask(022);
		umask(mask);
		chmod(tmp, 0777 & ~mask);
		if (rename(tmp, o->dir)) {
			rc = util_err_set(err, UTIL_EIO, "cannot rename '%s' to '%s': %s", tmp,
					  o->dir, strerror(errno));
			goto fail;
		}
		return 0;
	}
	for (int p = 0; p <= r->npages; p++) {
		const char *name = p < r->npages ? page_file[r->pages[p]] : "report.pdf";
		if (join(a, sizeof(a), tmp, name) || join(b, sizeof(b), o->dir, name) ||
		    rename(a, b)) {
			rc = util_err_set(err, UTIL_EIO, "cannot rename '%s' to '%s': %s", a, b,
					  strerror(errno));
			goto fail;
		}
	}
	rmdir(tmp);
	return 0;
fail:
	remove_tmp(tmp);
	return rc;
}

/* ---- the charts ----------------------------------------------------------- */

/* A snapshot's pages: the heatmap, and the device load of its least
 * balanced layer under the static layout against the best algorithm's
 * placement fitted on that same step (in hindsight: there is no later
 * step to score it on). */
static int prepare_snapshot(struct store *s, struct report *r, const struct opts *o)
{
	int L = r->run.layers, E = r->run.experts, R = r->ranks, S = r->slots;
	double *heat = xmallocarray((size_t)L * E, sizeof(double));
	double *load = xcalloc((size_t)R, sizeof(double));
	int32_t *p2l = xmallocarray((size_t)R * S, sizeof(int32_t));
	struct util_err err = UTIL_ERR_INIT;
	int64_t n = 0;
	int status = -1;

	if (render_load_heat(s, &r->run, r->win[0], r->win[0], o->c.phase_mask, heat, &n, &err)) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	/* the last algorithm listed that is not the static layout (the
	 * default list ends with the flagship) */
	r->snap_algo = r->rows[0].algo;
	for (int i = 0; i < r->nrows; i++)
		if (strcmp(r->rows[i].algo->name, "static"))
			r->snap_algo = r->rows[i].algo;
	analyze_static_phy2log(E, R, S, p2l);
	r->worst_imb = 0;
	for (int l = 0; l < L; l++) {
		double tot = 0, m, imb;
		m = analyze_device_load(heat + (size_t)l * E, E, p2l, R, S, NULL, load);
		for (int k = 0; k < R; k++)
			tot += load[k];
		imb = tot > 0 ? m / (tot / R) : 1;
		if (imb > r->worst_imb) {
			r->worst_imb = imb;
			r->worst_layer = l;
		}
	}
	for (int k = 0; k < PAGES; k++) {
		struct render_job_opts jo;
		int st;
		if (k != PG_HEATMAP && k != PG_DEVICES)
			continue;
		render_job_opts_init(&jo, CMD, (enum render_kind)k);
		jo.from = jo.to = r->win[0];
		jo.phase_mask = o->c.phase_mask;
		jo.ranks = R;
		jo.slots = S;
		jo.scale = o->scale;
		if (k == PG_DEVICES) {
			jo.layer = r->worst_layer;
			jo.algo = r->snap_algo;
			jo.force_static = 1;
		}
		r->jobs[k] = xcalloc(1, sizeof(struct render_job));
		if ((st = render_job_prepare(r->jobs[k], s, &r->run, &jo)) >= 0) {
			status = st;
			goto out;
		}
		r->pages[r->npages++] = k;
	}
	snprintf(r->advice, sizeof(r->advice),
		 "a single step cannot show whether rebalancing pays: record steps over time "
		 "to score placements on steps they were not fitted on");
	r->advice_pays = -1;
out:
	free(heat);
	free(load);
	free(p2l);
	return status;
}

static int prepare_jobs(struct store *s, struct report *r, const struct opts *o)
{
	for (int k = 0; k < PAGES; k++) {
		struct render_job_opts jo;
		int st;
		if (k == PG_TRANSFER && r->rep.n_events == 0)
			continue; /* nothing moved: no transfer chart */
		render_job_opts_init(&jo, CMD, (enum render_kind)k);
		jo.from = r->win[0];
		jo.to = o->c.to;
		jo.phase_mask = o->c.phase_mask;
		jo.ranks = r->ranks;
		jo.slots = r->slots;
		jo.scale = o->scale;
		if (k == PG_TIMELINE) {
			/* per-step heat is spiky (prefill steps): a log scale keeps the
			 * rest of the picture from going dark */
			jo.layer = r->hot_layer;
			jo.log_scale = 1;
			snprintf(r->why, sizeof(r->why),
				 "layer %d: it holds the hottest expert of steps %lld-%lld",
				 r->hot_layer, (long long)r->win[0], (long long)r->win[3]);
			jo.why = r->why;
		}
		if (k == PG_DEVICES) {
			/* the best placement fitted on the first window, scored on the
			 * next: what it would meet deployed, not what it was fitted on */
			jo.layer = r->worst_layer;
			jo.algo = r->rows[r->best].algo;
			jo.from = r->win[2];
			jo.to = r->win[3];
			jo.fit_from = r->win[0];
			jo.fit_to = r->win[1];
		}
		jo.replay = &r->rep;
		jo.replay_name = r->rep_desc;
		r->jobs[k] = xcalloc(1, sizeof(struct render_job));
		if ((st = render_job_prepare(r->jobs[k], s, &r->run, &jo)) >= 0)
			return st;
		r->pages[r->npages++] = k;
	}
	return -1;
}

int cmd_report(int argc, char **argv)
{
	struct opts o = { .c = ANALYZE_CLI_INIT, .delay = -1, .scale = 1 };

	o.c.episodes = -1; /* ANALYZE_FIT_EPISODES, or fewer on a short window */
	struct util_err err = UTIL_ERR_INIT;
	struct report *r = xcalloc(1, sizeof(*r));
	struct store *s = NULL;
	int rc, status = 1, E;

	if ((rc = parse_opts(argc, argv, &o, &err))) {
		free(r);
		if (rc == 1)
			return 0;
		if (err.msg[0]) /* else an unknown option, said in one line */
			util_cli_error(CMD, "%s", err.msg);
		return 2;
	}
	if ((rc = pick_algos(o.algos ? o.algos : DEFAULT_ALGOS, o.algos != NULL, r, &err))) {
		free(r);
		return util_cli_fail(CMD, &err);
	}
	if (check_out(o.dir, o.db, &err) ||
	    store_open_run(o.db, o.c.runname, STORE_READONLY, &s, &r->run, &err)) {
		free(r);
		return util_cli_fail(CMD, &err);
	}
	analyze_warn_missing_counts(CMD, s, &r->run);
	if (o.c.model) {
		if (!r->run.model[0])
			r->run.first_layer = store_model_find(o.c.model)->first_layer;
		snprintf(r->run.model, sizeof(r->run.model), "%s", o.c.model);
	}
	E = r->run.experts;
	r->model = r->run.model[0] ? store_model_find(r->run.model) : NULL;
	if (r->model && r->model->experts != E) {
		util_cli_error(CMD, "--model %s has %d experts, the run %d", r->model->name,
			       r->model->experts, E);
		status = 2;
		goto out;
	}
	if (analyze_layout_resolve(&r->run, o.c.ranks, o.c.slots, o.c.redundant, &r->ranks, &r->slots,
				   &err) ||
	    resolve_windows(s, r, &o, &err)) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	/* as `compare`: nodes from the run's layout, groups from the model */
	analyze_hier_nodes(r->ranks, r->run.ranks_per_node, r->model, E, &r->nodes, &r->groups);
	{
		/* the deployment `replay` and `compare` resolve: the run's nodes,
		 * the hardware's two links unless --link/--bandwidth says otherwise */
		struct analyze_deploy_opts dopts = ANALYZE_DEPLOY_OPTS_INIT;
		dopts.quant = o.c.quant;
		dopts.link = o.c.link;
		dopts.bandwidth = o.c.bandwidth;
		if ((rc = analyze_deploy_resolve(&r->run, r->model, r->ranks, &dopts, &r->dep,
						 &err))) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
	}
	if (o.c.quant < 0)
		o.c.quant = analyze_model_quant(r->model);
	r->quant = o.c.quant;
	r->ebytes = r->model ? analyze_expert_bytes(r->model->hidden, r->model->inter, o.c.quant) : 0;
	if (r->snapshot) {
		if ((status = prepare_snapshot(s, r, &o)) >= 0)
			goto out;
		if (write_all(&o, r, &err)) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
		printf("note: run '%s' has one step in the range (step %lld): no windows to compare "
		       "or replay; writing the heatmap and the device load\n",
		       r->run.name, (long long)r->snap_step);
		printf("recommendation: %s\n", r->advice);
		for (int p = 0; p < r->npages; p++)
			printf("wrote %s/%s\n", o.dir, page_file[r->pages[p]]);
		printf("wrote %s/report.pdf (%d pages)\n", o.dir, r->npages + 1);
		status = 0;
		goto out;
	}
	if ((rc = compare(s, r, &o, &err))) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	{
		struct render_replay_req q = {
			.algo = r->rows[r->best].algo, .ranks = r->ranks, .slots = r->slots,
			.layer = -1, .quant = o.c.quant, .from = r->win[0], .to = o.c.to,
			.interval = o.interval, .window = o.window, .delay = o.delay,
			.episodes = o.c.episodes,
			.phase_mask = o.c.phase_mask, .model = r->model, .gbytes_per_s = o.c.bandwidth,
			.link = o.c.link,
		};
		if (render_replay_run(s, &r->run, &q, &r->rep, &r->replay_steps, r->rep_desc,
				      sizeof(r->rep_desc), &err)) {
			status = util_cli_fail(CMD, &err);
			goto out;
		}
	}
	noise_note(r);
	advise(r);
	if ((status = prepare_jobs(s, r, &o)) >= 0)
		goto out;
	if (write_all(&o, r, &err)) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	printf("best: %s, mean per-step imbalance %.4f on steps %lld-%lld (fitted on %lld-%lld; "
	       "%.4f window-summed); replayed every %lld steps: mean %.4f against %.4f\n",
	       r->rows[r->best].algo->name, r->rows[r->best].next_step, (long long)r->win[2],
	       (long long)r->win[3], (long long)r->win[0], (long long)r->win[1],
	       r->rows[r->best].next,
	       (long long)r->rep.sum.interval, r->rep.sum.imbalance_mean,
	       r->rep.sum.baseline_imbalance_mean);
	printf("recommendation: %s\n", r->advice);
	if (r->split)
		printf("phases on steps %lld-%lld: prefill %lld steps, %.1f assignments per layer per "
		       "step, imbalance %.4f start, %.4f %s; decode %lld steps, %.1f, %.4f start, "
		       "%.4f %s\n",
		       (long long)r->win[2], (long long)r->win[3],
		       (long long)r->ph[STORE_PHASE_PREFILL].n, r->ph[STORE_PHASE_PREFILL].assign,
		       r->ph[STORE_PHASE_PREFILL].start, r->ph[STORE_PHASE_PREFILL].row[r->best],
		       r->rows[r->best].algo->name, (long long)r->ph[STORE_PHASE_DECODE].n,
		       r->ph[STORE_PHASE_DECODE].assign, r->ph[STORE_PHASE_DECODE].start,
		       r->ph[STORE_PHASE_DECODE].row[r->best], r->rows[r->best].algo->name);
	if (r->noise[0])
		printf("note: %s\n", r->noise);
	for (int p = 0; p < r->npages; p++)
		printf("wrote %s/%s\n", o.dir, page_file[r->pages[p]]);
	printf("wrote %s/report.pdf (%d pages)\n", o.dir, r->npages + 1 + r->split);
	status = 0;
out:
	for (int k = 0; k < PAGES; k++) {
		if (r->jobs[k])
			render_job_release(r->jobs[k]);
		free(r->jobs[k]);
	}
	analyze_replay_release(&r->rep);
	free(r);
	store_free(s);
	render_release_static();
	return status;
}

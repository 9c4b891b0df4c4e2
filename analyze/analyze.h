/*
 * analyze: placements and what they do to device load.  A placement is,
 * per layer, phy2log[ranks * slots]: the logical expert in each physical
 * slot, rank-major (rank r owns slots r*slots .. r*slots+slots-1).  Device
 * load assumes a replicated expert's tokens split evenly among its
 * replicas; imbalance is max device load / mean device load.
 *
 * Ownership: every OUT array is caller-allocated with the size stated.
 */
#ifndef ANALYZE_ANALYZE_H
#define ANALYZE_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

/* The engines' default layout: slot p holds expert p % experts (vLLM's
 * initial map; redundant slots at the end take experts 0, 1, ...). */
void analyze_static_phy2log(int experts, int ranks, int slots, int32_t *phy2log);
/* The placement a run starts from at `step`, the rule every command
 * follows: the deployed placement in force there for ranks x slots, else
 * (none recorded, or recorded for another layout, or force_static) the
 * static layout in every layer.  phy2log [layers * ranks * slots] OUT;
 * *deployed (may be NULL) 1 or 0; *from (may be NULL) the step the
 * deployed one took effect, INT64_MIN for the static one.  0, or the
 * store's error (err says it). */
int analyze_start_placement(struct store *s, const struct store_run *run, int64_t step,
			    int ranks, int slots, int force_static, int32_t *phy2log,
			    int *deployed, int64_t *from, struct util_err *err);
/* The step a replay's start placement is looked up at: the first step of
 * [from, to] in phase_mask (0: all phases), so that a placement deployed
 * later is not taken as in force before it; `from` when there is none.
 * 0, or the store's error (err says it). */
int analyze_first_selected(struct store *s, const struct store_run *run, int64_t from,
			   int64_t to, unsigned phase_mask, int64_t *first, struct util_err *err);
/* The usage error of `--current deployed` when no deployed placement for
 * ranks x slots is in force at `step`: it names the step the first one
 * recorded after it takes effect, if any.  Returns UTIL_EUSAGE. */
int analyze_no_deployed_err(struct store *s, const struct store_run *run, int64_t step,
			    int ranks, int slots, struct util_err *err);

/* Replica count per expert: cnt[experts]. */
void analyze_replicas(const int32_t *phy2log, int nslots, int experts, int *cnt);

/* Checks a placement: every slot in range, every expert placed at least
 * once; with no_dup, no expert twice on one rank. */
int analyze_placement_check(const int32_t *phy2log, int experts, int ranks, int slots,
			    int no_dup, struct util_err *err);

/* Moves every second replica of an expert off its rank by swapping it with
 * a slot of another rank (replica counts kept), for engines whose loader
 * cannot hold an expert twice on one device (vllm-ascend).  Each swap is
 * the one that leaves the two ranks' larger load (under heat[experts], or
 * any when heat is NULL) lowest.  Returns the number of swaps, or a
 * negative code with err set when no such placement exists. */
int analyze_placement_undup(int32_t *phy2log, int experts, int ranks, int slots,
			    const double *heat, struct util_err *err);

/* Device loads load[ranks] for heat[experts] under phy2log; returns the
 * maximum.  cnt (replicas per expert) may be NULL: it is then computed. */
double analyze_device_load(const double *heat, int experts, const int32_t *phy2log, int ranks,
			   int slots, const int *cnt, double *load);
double analyze_device_load_u32(const uint32_t *heat, int experts, const int32_t *phy2log,
			       int ranks, int slots, const int *cnt, double *load);

/* max / mean of n loads (1.0 when all are zero). */
double analyze_imbalance(const double *load, int n);
/* The rule of every per-step figure for a layer (or a step) that got no
 * token: it did no work and has no imbalance, so it is not scored, never
 * counted as a perfect 1.0 that would flatter the means (docs/cli.md).
 * max / mean when mean > 0, else NAN (a value every consumer skips). */
double analyze_scored_imbalance(double max, double mean);
/* The tokens of a step whose batch size was not recorded: the largest over
 * its L layers of the routed tokens / topk (every token passes every MoE
 * layer; a layer whose records were lost reads fewer, never more). */
double analyze_routed_tokens(const uint32_t *counts, int L, int E, int topk);

/* Per-layer balance of a run's steps under one placement per layer. */
struct analyze_balance_layer {
	double imbalance;      /* of the summed heat over the window; NaN without a token */
	double step_mean;      /* mean over steps of per-step imbalance */
	double step_p50, step_p99;
	int64_t steps;         /* steps scored: those in which the layer got tokens */
	double max_load, mean_load; /* summed window, tokens */
	int hottest;           /* expert with the most tokens */
	double hottest_share;  /* its share of the layer's tokens */
};
struct analyze_balance {
	int layers;
	int64_t steps;
	double overall;        /* sum of max / sum of mean over layers (summed window);
				* NAN when the window has no token */
	double step_overall_mean; /* mean over steps of the per-step overall figure */
	/* Not scored per step (docs/cli.md, balance): steps in which no layer
	 * got a token, and layers that got none in a step whose others did.
	 * The step figures of a layer or run with nothing scored are NAN. */
	int64_t empty_steps, empty_layer_steps;
	struct analyze_balance_layer *layer; /* [layers], malloc'ed */
};
/* phy2log: layers x ranks*slots.  Fills b (free with analyze_balance_release). */
int analyze_balance_run(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			unsigned phase_mask, const int32_t *phy2log, int ranks, int slots,
			struct analyze_balance *b);
void analyze_balance_release(struct analyze_balance *b);

/* ---- placement algorithms (analyze/place*.c) -----------------------------
 * One signature for every algorithm; the registry in analyze/place.c names
 * them.  An algorithm places one layer. */

/* The flagship: moetrace's own algorithm, the default of every command. */
#define ANALYZE_FLAGSHIP "keel"

/* The flagship's estimator of the next window (analyze/robust.c). */
struct analyze_robust_choice {
	int volume;       /* blocks summed as they are (1) or their shares averaged (0) */
	double half_life; /* age weight, in window lengths; 0 = the window alone */
	double shrink;    /* weight of the uniform share */
	int origins;      /* backtest origins scored (0: too little data, defaults) */
};

struct analyze_place_in {
	int experts, ranks, slots;
	int nodes, groups;          /* hierarchical variants; 0 = not given */
	const double *heat;         /* [experts] heat of the fitting window */
	const double *episodes;     /* [n_episodes * experts] sub-windows, or NULL */
	int n_episodes;
	const int32_t *current;     /* [ranks * slots] placement in force, or NULL */
	int max_moves;              /* move budget (swift, flagship); -1 = none */
	double move_tolerance;      /* flagship with `current`: the fraction of its best
				     * score it may give up for fewer moves (0: none;
				     * replay uses 0.005, place/compare 0; keel's fit
				     * of its forecast at least 0.005 everywhere) */
	uint64_t seed;              /* for randomised search; results are deterministic.
				     * Every layer of a decision gets the same seed, and
				     * every command ANALYZE_DEFAULT_SEED unless --seed:
				     * one window and placement in force, one answer,
				     * whichever command decides (place, replay, render,
				     * top) */
	int no_dup;                 /* the target engine holds no expert twice on one rank:
				     * analyze_placement_undup before rank matching */
	int *undup;                 /* OUT, optional: the swaps no_dup made */
	/* What is known at the window's end, in time order (oldest first):
	 * n_hist blocks of history before the window, then the window cut into
	 * n_blocks - n_hist consecutive blocks (analyze_window_blocks).  The
	 * flagship, given no episodes, forecasts the next window from them;
	 * the other algorithms ignore them.  May be NULL. */
	const double *blocks;       /* [n_blocks * blocks_stride] */
	size_t blocks_stride;       /* doubles from a block to the next (0: experts) */
	int n_blocks, n_hist;
	/* with blocks: the estimator chosen for all layers together
	 * (analyze_robust_choose), or NULL: the flagship chooses per layer */
	const struct analyze_robust_choice *robust;
};

typedef int (*analyze_place_fn)(const struct analyze_place_in *in, int32_t *phy2log,
				struct util_err *err);

enum analyze_algo_flags {
	ANALYZE_ALGO_DUP_OK = 1,     /* may put two replicas of an expert on one rank */
	ANALYZE_ALGO_SMALL_ONLY = 2, /* exponential: small instances only */
	ANALYZE_ALGO_MIGRATION = 4,  /* uses `current` itself: no rank matching after */
	ANALYZE_ALGO_FORECAST = 8,   /* given blocks and no episodes, fits its forecast of
				      * the next window from them (analyze/robust.c) */
};

struct analyze_algo {
	const char *name;
	const char *desc;           /* one line for `place --list` */
	analyze_place_fn fn;
	unsigned flags;
};

const struct analyze_algo *analyze_algo_find(const char *name);
const struct analyze_algo *analyze_algo_at(size_t i); /* NULL past the end */
/* Does algorithm a fit a forecast from a window's blocks (the flagship)? */
int analyze_algo_forecasts(const struct analyze_algo *a);

/* Can algorithm a fill `slots` slots per rank with `experts` experts?  An
 * algorithm that never puts an expert twice on one rank cannot fill more
 * slots per rank than there are experts.  0 or UTIL_EUSAGE with err set;
 * commands call it before reading any heat (analyze_place checks it too). */
int analyze_algo_layout_check(const struct analyze_algo *a, int experts, int slots,
			      struct util_err *err);

/* Runs an algorithm on one layer and, when in->current is given and the
 * algorithm is not migration-aware, relabels its ranks (and orders slots
 * within ranks) to keep as many experts where they are as possible:
 * same balance, fewest moves.  phy2log: [ranks * slots]. */
int analyze_place(const struct analyze_algo *a, const struct analyze_place_in *in,
		  int32_t *phy2log, struct util_err *err);

/* A proven lower bound on the max device load any placement of `heat` on
 * ranks x slots can reach (docs/algorithms.md proves it). */
double analyze_lower_bound(const double *heat, int experts, int ranks, int slots);

/* Moves from cur to next (both [ranks * slots]): replicas that next puts
 * on a rank that did not hold them in cur. */
int analyze_place_moves(const int32_t *cur, const int32_t *next, int experts, int ranks,
			int slots);

/* Relabels the ranks of phy2log (and orders slots within ranks) to keep as
 * many of cur's replicas in place as possible: maximum-weight assignment
 * on rank overlap (Hungarian); with nodes > 1, ranks stay in their node.
 * Loads are unchanged.  0, or -1 when out of memory. */
int analyze_place_match(const int32_t *cur, int32_t *phy2log, int experts, int ranks, int slots,
			int nodes);

/* Resolves the EP layout for a command: explicit ranks/slots/redundant
 * options (0 = not given; redundant ANALYZE_REDUNDANT_ZERO for a given 0)
 * win, then the run's recorded layout, then the model preset's typical one.
 * slots = (experts + redundant) / ranks when only redundant is given (an
 * error if not whole). */
/* --redundant 0 as given (0 in an options struct means not given). */
#define ANALYZE_REDUNDANT_ZERO (-1)
/* Parses --redundant ARG into *out: 0 .. STORE_MAX_SLOTS, a 0 stored as
 * ANALYZE_REDUNDANT_ZERO.  0, or the error (err says it). */
int analyze_parse_redundant(const char *arg, int *out, struct util_err *err);
int analyze_layout_resolve(const struct store_run *run, int ranks, int slots, int redundant,
			   int *out_ranks, int *out_slots, struct util_err *err);

/* ---- transfer planning and engine-named metrics (analyze/transfer.c) ----
 * What moving from one placement to another costs: copies, bytes per
 * expert for a model and quantization, seconds on a link.  Formulas and
 * the links' sources are in docs/formats.md. */

enum analyze_quant {
	ANALYZE_QUANT_BF16 = 0, /* 2 bytes per weight */
	ANALYZE_QUANT_FP8,      /* 1 byte + fp32 scale per 128x128 block */
	ANALYZE_QUANT_W8A8,     /* int8 + fp32 scale per output channel */
	ANALYZE_QUANT_W4A8,     /* packed int4 + bf16 scale/offset per channel and per group of 256 */
	ANALYZE_QUANT_MXFP4,    /* packed fp4 + one e8m0 scale byte per 32 inputs */
};
int analyze_quant_parse(const char *s); /* -1 if unknown */
const char *analyze_quant_name(int quant);
/* Bytes of one routed expert: gate and up (inter x hidden) and down
 * (hidden x inter) weights with their scales. */
uint64_t analyze_expert_bytes(int hidden, int inter, int quant);
/* Seconds of MoE compute per routed token on a rank at `tflops`: 3 GEMMs
 * of hidden x inter, 2 FLOPs per multiply-add. */
double analyze_sec_per_token(int hidden, int inter, double tflops);

struct analyze_link {
	const char *name;       /* "nvlink4", ... */
	const char *label;
	double gbytes_per_s;    /* per rank and direction, 1e9 bytes/s */
	const char *source;
};
const struct analyze_link *analyze_link_find(const char *name);
const struct analyze_link *analyze_link_at(size_t i); /* NULL past the end */

/* Writes "a, b or c": the link preset names, for messages.  Returns buf. */
char *analyze_link_names(char *buf, size_t n);

/* Plans the copies that take one layer from placement `from` to `to` (both
 * [ranks * slots]): a rank needs a copy of each expert it holds in `to`
 * but not in `from` (once, however many slots hold it).  The sender is a
 * rank holding the expert in `from`, the one with the fewest sends so far
 * (send[] counts them, across calls: pass the same arrays for every layer
 * of one rebalance).  src (may be NULL) [ranks * slots] OUT: the sending
 * rank of each slot of `to`, -1 when no copy is needed.  send/recv
 * [ranks] are incremented.  Returns the number of copies, or a negative
 * code when `from` holds no replica of an expert `to` needs. */
int64_t analyze_transfer_layer(const int32_t *from, const int32_t *to, int experts, int ranks,
			       int slots, int32_t *src, int64_t *send, int64_t *recv,
			       struct util_err *err);
/* Seconds for the copies counted in send/recv: every rank sends and
 * receives at gbytes_per_s at once, so the busiest direction of the
 * busiest rank sets the time. */
double analyze_transfer_seconds(const int64_t *send, const int64_t *recv, int ranks,
				uint64_t expert_bytes, double gbytes_per_s);

/* The same plan on a two-tier interconnect: ranks r and q share a node
 * when r / ranks_per_node == q / ranks_per_node (ranks_per_node 0 or >=
 * ranks: one node).  The sender is chosen among the ranks holding the
 * expert in `from` on the destination's node when there is one (fewest
 * intra-node sends), else among all holders (fewest inter-node sends).
 * send and recv are [2 * ranks]: intra-node copies in [0, ranks), inter-node
 * copies in [ranks, 2 * ranks); *inter (may be NULL) is incremented by the
 * inter-node copies.  Returns the number of copies or a negative code. */
int64_t analyze_transfer_layer_tiers(const int32_t *from, const int32_t *to, int experts,
				     int ranks, int slots, int ranks_per_node, int32_t *src,
				     int64_t *send, int64_t *recv, int64_t *inter,
				     struct util_err *err);
/* Seconds for copies counted by analyze_transfer_layer_tiers: on each
 * tier every rank sends and receives at once, so the longest send or
 * receive queue of any rank sets that tier's time; the two tiers are
 * separate links and run at the same time, so the event takes the longer.
 * intra_s and inter_s (may be NULL) OUT. */
double analyze_transfer_seconds_tiers(const int64_t *send, const int64_t *recv, int ranks,
				      uint64_t expert_bytes, double intra_gbps, double inter_gbps,
				      double *intra_s, double *inter_s);

/* ---- deployment and step-time model (analyze/deploy.c) --------------------
 * Hardware presets with public sources, and the figures a command needs to
 * price moves and steps on one deployment.  docs/replay.md states the model. */

struct analyze_hw {
	const char *name, *label;
	double tflops16, tflops8;   /* dense peak per rank: bf16/fp16 and 8-bit (fp8 or int8) */
	double hbm_tbytes_per_s;    /* per rank, 1e12 bytes/s */
	const char *link_intra, *link_inter; /* the usual links of a node and between nodes */
	const char *source;
};
const struct analyze_hw *analyze_hw_find(const char *name);
const struct analyze_hw *analyze_hw_at(size_t i); /* NULL past the end */
char *analyze_hw_names(char *buf, size_t n);    /* "a, b or c"; returns buf */

/* What the user gave (0 / NULL / -1 quant: not given). */
struct analyze_deploy_opts {
	int ranks_per_node, quant;
	const char *link, *link_intra, *link_inter, *hardware;
	double bandwidth, tflops, us_per_token, step_ms;
};
#define ANALYZE_DEPLOY_OPTS_INIT { .quant = -1 }

struct analyze_deploy {
	int ranks, ranks_per_node;  /* ranks_per_node == ranks: one node */
	int quant;
	uint64_t expert_bytes;      /* 0 without a model */
	int layers, experts, topk;
	const struct analyze_hw *hw;
	const char *link_intra, *link_inter; /* preset names, or "custom" for --bandwidth */
	double intra_gbps, inter_gbps;
	double tflops, hbm_gbps;    /* rate used for this quant; HBM in 1e9 bytes/s */
	double sec_per_token;       /* MoE compute: seconds per routed token on a rank */
	double sec_per_expert;      /* MoE memory floor: seconds to read one expert's weights */
	double dense_sec_per_token; /* attention/other compute per token on a rank */
	double dense_sec_floor;     /* attention/other weights read once per step */
	double step_seconds;        /* measured step time (--step-ms); 0: estimated */
	int estimated;              /* times come from the model, not a measurement */
};

/* Resolves a deployment for `ranks` ranks of a run: ranks per node from
 * the options, else the run, else the model preset (UTIL_EUSAGE when it
 * does not divide the ranks and a model prices the copies), quant from the options, else the model's
 * serving precision, links from --link-intra/--link-inter (--link: both),
 * else the hardware preset's, hardware h100 by default.  model may be
 * NULL: then no bytes and no times.  UTIL_EUSAGE names the option. */
int analyze_deploy_resolve(const struct store_run *run, const struct store_model *model, int ranks,
			   const struct analyze_deploy_opts *o, struct analyze_deploy *d,
			   struct util_err *err);

/* The serving precision of a model preset (bf16 when model is NULL). */
int analyze_model_quant(const struct store_model *model);
/* The nodes and expert groups eplb-hier takes from a layout of `ranks`
 * ranks, ranks_per_node a node, when that makes more than one node:
 * *nodes = ranks / ranks_per_node, *groups the model's expert groups when
 * they divide the experts (DeepSeek's rule: hierarchical only when the
 * nodes divide the groups; otherwise it falls back to global), else
 * *nodes.  1 when it set them, 0 when the layout is one node (left as they
 * were).  model may be NULL. */
int analyze_hier_nodes(int ranks, int ranks_per_node, const struct store_model *model,
		       int experts, int *nodes, int *groups);

/* MoE seconds of one layer on one step: the busiest rank's
 * max(tokens x sec_per_token, experts with tokens x sec_per_expert), with a
 * replicated expert's tokens split evenly.  p2l [ranks * slots]; cnt the
 * replicas per expert. */
double analyze_layer_seconds(const struct analyze_deploy *d, const uint32_t *heat,
			     const int32_t *p2l, int slots, const int *cnt);
/* Attention/other seconds of one step of `tokens` tokens spread over the ranks. */
double analyze_dense_seconds(const struct analyze_deploy *d, double tokens);
/* GiB (2^30 bytes) of HBM per rank holding redundant experts (all layers). */
double analyze_redundant_gib(const struct analyze_deploy *d, int slots);

/* Fraction of tokens dropped when every rank takes at most
 * factor x mean device load tokens (an engine that caps each rank's
 * tokens per step drops or recomputes the rest). */
double analyze_token_drop(const double *load, int ranks, double factor);

/* A whole-run plan: one algorithm on every layer (or one), with each
 * layer's figures against the lower bound and, given a current placement,
 * the copies that reach it.  Both `place` and `compare` run through it. */
struct analyze_plan_in {
	const struct analyze_algo *algo;
	int layers, experts, ranks, slots;
	int nodes, groups, max_moves;
	uint64_t seed;
	const double *heat;        /* [layers * experts] fitting heat */
	const double *episodes;    /* [n_episodes * layers * experts] or NULL */
	int n_episodes;
	const int32_t *current;    /* [layers * ranks*slots] or NULL */
	const double *blocks;      /* [n_blocks * layers * experts] or NULL: see analyze_place_in */
	int n_blocks, n_hist;
	int only_layer;            /* -1: all layers; else the others keep current (or static) */
	int threads;               /* worker threads over layers, 1 or 2 */
	int no_dup;                /* the target engine holds no expert twice on one rank:
				    * analyze_placement_undup after the algorithm */
	int ranks_per_node;        /* copies' tiers (analyze_transfer_layer_tiers); 0: one node */
};
struct analyze_plan_layer {
	double max_load, mean_load, imbalance, lower_bound; /* on the fitting heat */
	int64_t moves;             /* copies from current; 0 without one */
	int undup;                 /* swaps that moved a same-rank duplicate (no_dup) */
};
struct analyze_plan {
	int layers, ranks, slots;
	int32_t *phy2log;          /* [layers * ranks*slots] */
	struct analyze_plan_layer *layer; /* [layers] */
	double seconds;            /* wall time of the algorithm over all layers */
	double sum_max, sum_mean, sum_lb; /* over the planned layers */
	int64_t moves;
	int64_t *send, *recv;      /* [2 * ranks] copies sent / received: inside a node in
				    * [0, ranks), across nodes in [ranks, 2 * ranks) */
	int64_t moves_inter;       /* of moves, copies across nodes */
	int32_t *src;              /* [layers * ranks*slots] sending rank per slot, -1 = no
				    * copy; NULL without a current placement */
	int forecast_blocks, forecast_hist; /* the flagship's forecast: its blocks, the
					     * first forecast_hist of them history; 0:
					     * none (another algorithm, or episodes) */
	struct analyze_robust_choice forecast; /* its estimator, with forecast_blocks */
};
/* Fills plan (release with analyze_plan_release). */
int analyze_plan_run(const struct analyze_plan_in *in, struct analyze_plan *plan,
		     struct util_err *err);
void analyze_plan_release(struct analyze_plan *plan);

/* Heat of a window of a run as doubles: heat[layers * experts] summed over
 * the steps of [from, to] in phase_mask, and when n_episodes > 0,
 * episodes[n_episodes * layers * experts]: the window's steps cut into
 * n_episodes consecutive chunks of (nearly) equal step counts.
 * *nsteps (may be NULL) gets the number of steps. */
int analyze_window_heat(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			unsigned phase_mask, int n_episodes, double *heat, double *episodes,
			int64_t *nsteps);

/* The window and its history as the flagship reads them (analyze/robust.c):
 * the window's selected steps cut into at most ANALYZE_FLAGSHIP_BLOCKS
 * consecutive blocks of (nearly) equal step counts, after up to
 * ANALYZE_FLAGSHIP_HISTORY window lengths of step ids before it in blocks
 * of the same size (whole blocks only).  heat is malloc'ed
 * [n * layers * experts], oldest block first, the first `hist` of them
 * history; n = 0 (heat NULL) when the window has no steps.  Release with
 * analyze_blocks_release. */
/* Chooses the flagship's estimator for all layers of a window together:
 * the candidate whose backtest error, each layer's errors summing to one,
 * is smallest over the layers (traffic is stationary or drifting for the
 * whole model, and one layer's few origins are a noisy witness).  blocks
 * [n * layers * experts] as analyze_window_blocks gives them; nslots = ranks
 * x slots; threads > 1: the layers' backtests on two threads (the choice is
 * the same).  0, or -1 when out of memory. */
int analyze_robust_choose(const double *blocks, int n, int hist, int layers, int experts,
			  int nslots, int threads, struct analyze_robust_choice *ch);
/* The estimator in words ("each block's shares averaged, half-life 1/4
 * window, 1/16 toward uniform") into buf. */
void analyze_robust_describe(const struct analyze_robust_choice *ch, char *buf, size_t n);
#define ANALYZE_FLAGSHIP_BLOCKS 32
#define ANALYZE_FLAGSHIP_HISTORY 4
struct analyze_blocks {
	int n, hist, layers, experts;
	double *heat;
	int64_t nw, nh, bsz; /* the window's steps, the history's, steps a block */
};
int analyze_window_blocks(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			  unsigned phase_mask, struct analyze_blocks *b, struct util_err *err);
void analyze_blocks_release(struct analyze_blocks *b);
/* The window's summed heat [layers * experts] from its blocks: what
 * analyze_window_heat reads for the same steps, to the last bit (sums of
 * integer counts), without reading them again. */
void analyze_blocks_window_heat(const struct analyze_blocks *b, double *heat);
/* The same blocks from steps a caller holds (`top` keeps them decoded):
 * the history of the window [from, to] is the selected steps of
 * [analyze_window_history_from(from, to), from - 1] (none when that is
 * from).  analyze_blocks_init sizes b for nw window steps after nh history
 * steps (0, or UTIL_ENOMEM); analyze_blocks_add adds the i-th of those
 * nh + nw steps, oldest first (counts[layers * experts]), in any order.
 * Given the same steps, the blocks equal analyze_window_blocks'. */
int64_t analyze_window_history_from(int64_t from, int64_t to);
int analyze_blocks_init(struct analyze_blocks *b, int layers, int experts, int64_t nw,
			int64_t nh);
void analyze_blocks_add(struct analyze_blocks *b, int64_t i, const uint32_t *counts);

/* What the flagship is given for a window of a run when `place --steps
 * A:B` runs it without options, for a caller that places layer by layer
 * (`top`, `serve`): the window's blocks and history (analyze_window_blocks)
 * and the estimator chosen on all its layers together
 * (analyze_robust_choose).  analyze_forecast_read reads it (nslots = ranks
 * x slots); analyze_forecast_layer points an analyze_place_in at layer l's
 * blocks in f (valid until f is released; nothing when the window had no
 * steps, so the flagship fits in->heat); analyze_forecast_release frees it. */
struct analyze_forecast {
	struct analyze_blocks b;
	struct analyze_robust_choice choice;
};
int analyze_forecast_read(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			  unsigned phase_mask, int nslots, struct analyze_forecast *f,
			  struct util_err *err);
/* The second half of analyze_forecast_read, for a caller that filled f->b
 * itself (analyze_blocks_init/add): chooses the estimator.  0, or
 * UTIL_ENOMEM with f released. */
int analyze_forecast_choose(struct analyze_forecast *f, int nslots, struct util_err *err);
void analyze_forecast_layer(struct analyze_forecast *f, int l, struct analyze_place_in *in);
void analyze_forecast_release(struct analyze_forecast *f);

/* ---- fit on one window, score on the next (analyze/compare.c) -----------
 * The analysis behind `compare` and `report`: every algorithm fitted on the
 * selected steps of [fit_from, fit_to] and scored on those of [next_from,
 * next_to], the steps a deployed placement would meet.  Each command says
 * what its --steps means by the windows it hands in. */
struct analyze_compare_in {
	struct store *store;
	const struct store_run *run;
	const struct analyze_algo *const *algos; /* [n_algos] */
	int n_algos;
	int ranks, slots, nodes, groups, max_moves;
	uint64_t seed;
	int64_t fit_from, fit_to, next_from, next_to;
	unsigned phase_mask;       /* 0: all phases */
	const int32_t *start;      /* [layers * ranks*slots]: the placement copies are counted
				    * from, and the baseline of the times and of by_phase */
	int n_episodes;            /* the fitting window also cut into this many episodes for
				    * every algorithm (0: its summed heat only) */
	int flagship_blocks;       /* the flagship reads the window's blocks and history
				    * (analyze_window_blocks) instead of episodes */
	const struct analyze_deploy *dep; /* prices copies (bytes, links, tiers); NULL: not */
	int timed;                 /* MoE and step time under dep's step-time model */
	double capacity;           /* token drop above capacity x mean device load */
	int by_phase;              /* figures of the scored steps per phase, start placement too */
};
#define ANALYZE_PHASES 3 /* enum store_phase: unknown, prefill, decode */
struct analyze_compare_algo {
	const struct analyze_algo *algo;
	struct analyze_plan plan;     /* the fitted placement, its copies from start */
	int *cnt;                     /* [layers * experts] replicas under plan.phy2log */
	double *next_max, *next_mean; /* [layers] device load on the scored window's summed heat */
	double *step_imb;             /* [next_steps] each scored step's overall imbalance, sorted */
	size_t step_cap;
	/* overall figures: sum over layers of max / sum of mean device load (or
	 * of the lower bound, for the gaps) */
	double fit, next, gap_fit, gap_next;
	double next_step, next_p99;   /* mean and p99 over the scored steps of their imbalance */
	double step_sum, dropped, tokens;
	double drop;                  /* share of the scored tokens over capacity */
	double moe_s;                 /* timed: MoE seconds over the scored steps */
	double moe_share, step_share; /* timed: of the start placement's MoE, step time saved */
	int64_t bytes, bytes_inter;   /* dep: copies x expert bytes, of them across nodes */
	double xfer_s, xfer_intra_s, xfer_inter_s; /* dep: transfer seconds, both tiers */
	double phase_step[ANALYZE_PHASES]; /* by_phase: mean step imbalance per phase */
};
struct analyze_compare {
	int layers, experts, n_algos;
	struct analyze_compare_algo *algo; /* [n_algos], in the order given */
	int64_t fit_steps, next_steps;     /* 0: nothing to fit, or to score (then no figures) */
	int64_t next_scored;               /* of next_steps, those with tokens: the per-step
					    * figures' (a step without any is not scored) */
	double *fit_heat, *next_heat;      /* [layers * experts] summed over each window */
	double *lb_next;                   /* [layers] lower bound on the scored heat */
	double tokens;                     /* tokens of the scored steps: recorded, else
					    * layer 0's routed tokens / top-k */
	double moe_s, dense_s, step_s;     /* timed: the start placement's MoE, dense and step
					    * seconds (step: --step-ms when measured) */
	int timed;                         /* moe_s > 0 */
	double assign;                     /* by_phase: assignments per layer per scored step */
	struct {
		int64_t n;
		double assign, start;      /* per layer per step; start placement's step imbalance */
	} phase[ANALYZE_PHASES];           /* by_phase */
};
/* Fits and scores; out is filled (release with analyze_compare_release, also
 * on failure).  A window without steps is not an error: out->fit_steps or
 * out->next_steps 0 say which, for the command's own message.  0, or a
 * negative code (a store's error, an algorithm's refusal) with err set. */
int analyze_compare_run(const struct analyze_compare_in *in, struct analyze_compare *out,
			struct util_err *err);
void analyze_compare_release(struct analyze_compare *c);

/* The algorithms of a comma list (--algos) into algos[max], *n of them, in
 * the order named.  A name this build lacks is skipped when skip_unknown
 * (a command's default list), else refused.  UTIL_EUSAGE names --algos. */
int analyze_algos_parse(const char *list, int skip_unknown, const struct analyze_algo **algos,
			int max, int *n, struct util_err *err);

/* The --rounds protocol (docs/algorithms.md): the selected steps of
 * [in->fit_from, in->fit_to] cut into `windows` consecutive windows of
 * (nearly) equal step counts; in round k each algorithm is fitted on window
 * k from its own placement of round k-1 (round 0 from in->start) and scored
 * on window k+1, untimed (in->next_*, dep, timed and by_phase are not read).
 * UTIL_EUSAGE when fewer steps than windows are selected. */
struct analyze_round {
	double fit, next, next_step, seconds;
	int64_t moves;
	/* the flagship's forecast (forecast_blocks > 0), as in analyze_plan */
	struct analyze_robust_choice forecast;
	int forecast_blocks, forecast_hist;
};
struct analyze_rounds {
	int n_algos, rounds;        /* rounds = windows - 1 */
	int64_t steps;              /* selected steps */
	int64_t *win;               /* [2 * windows]: each window's first and last step */
	struct analyze_round *r;    /* [n_algos * rounds], algorithm-major */
};
int analyze_compare_rounds(const struct analyze_compare_in *in, int windows,
			   struct analyze_rounds *out, struct util_err *err);
/* The mean over the rounds of algorithm i (moves: the sum). */
struct analyze_round analyze_rounds_mean(const struct analyze_rounds *r, int i);
void analyze_rounds_release(struct analyze_rounds *r);

/* ---- placement files engines load (analyze/format.c) --------------------
 * vllm-ascend expert_map_path JSON, SGLang --init-expert-location JSON and
 * TensorRT-LLM load-balancer YAML; docs/formats.md describes each. */

enum analyze_format {
	ANALYZE_FORMAT_VLLM_ASCEND = 0,
	ANALYZE_FORMAT_SGLANG,
	ANALYZE_FORMAT_TRTLLM,
};
int analyze_format_parse(const char *s); /* -1 if unknown */
const char *analyze_format_name(int format);
/* What a user must know about a file of `format` named path, or NULL:
 * SGLang reads --init-expert-location as a JSON file only when its name
 * ends in .json (.pt is torch.load'ed, anything else parsed as JSON
 * text), so the JSON moetrace writes must be named *.json. */
const char *analyze_format_path_note(const char *path, int format);

/* The run a placement file belongs to.  The model layer id of MoE layer l
 * is first_layer + l * layer_step (SGLang and TensorRT-LLM index layers by
 * model layer id; vllm-ascend by MoE layer). */
struct analyze_shape {
	int layers, experts, ranks, slots;
	int first_layer, layer_step;
};
/* The shape of run with ranks x slots (the layer stride from its model
 * preset, 1 without one). */
struct analyze_shape analyze_shape_of(const struct store_run *run, int ranks, int slots);

/* The placement `place` and `compare` move from (--current SPEC), at
 * `step` (the end of the fitting window): NULL, the placement in force
 * there (analyze_start_placement); "deployed", the deployed one, else the
 * usage error analyze_no_deployed_err; "static", the static layout; else
 * an engine placement file (analyze_format_read).  s may be NULL (no
 * database: a heat file) for "static" and files.  phy2log [layers *
 * ranks*slots] OUT; *name (may be NULL) "deployed", "static" or SPEC. */
int analyze_current_read(struct store *s, const struct store_run *run,
			 const struct analyze_shape *sh, int64_t step, const char *spec,
			 int32_t *phy2log, const char **name, struct util_err *err);

/* Writes phy2log (layers x ranks*slots) to path in `format`, through a
 * temporary file renamed into place: never a half-written file. */
int analyze_format_write(const char *path, int format, const struct analyze_shape *sh,
			 const int32_t *phy2log, struct util_err *err);
/* Reads a placement file of any of the formats (detected from content),
 * checks it against sh (UTIL_EPARSE/UTIL_ERANGE naming file and field)
 * and fills phy2log (layers x ranks*slots).  *format (may be NULL) OUT. */
int analyze_format_read(const char *path, const struct analyze_shape *sh, int32_t *phy2log,
			int *format, struct util_err *err);

/* The placement an engine ran with, for `import --deployed`: as
 * analyze_format_read, but sh->ranks and sh->slots may be 0 (IN), to be
 * taken from the file (OUT; an SGLang mapping or a TensorRT-LLM YAML only
 * has slots, so their ranks must be given).  Each layer must place every
 * expert; the same expert twice on a rank is allowed.  *phy2log is
 * malloc'ed [layers * ranks * slots] (free() it). */
int analyze_format_read_deployed(const char *path, struct analyze_shape *sh, int32_t **phy2log,
				 struct util_err *err);
/* 1 if path reads as YAML rather than JSON (its first character that is
 * not white space is not '{'); 0 also if it cannot be opened. */
int analyze_format_is_yaml(const char *path);

/* TensorRT-LLM's MoE load-balancer YAML (MoeLoadBalancerConfig of
 * tensorrt_llm/llmapi/llm_args.py): num_slots, layer_updates_per_iter and
 * initial_global_assignments {layer id: [expert per global slot]}, read
 * wherever they stand (the file itself, or moe_config.load_balancer of a
 * serving configuration); num_slots is required.  Owned arrays; release
 * with analyze_trtllm_lb_release (NULL allowed). */
struct analyze_trtllm_lb {
	long num_slots;           /* -1 if absent */
	long updates;             /* layer_updates_per_iter, 0 if absent */
	int layers;               /* initial_global_assignments entries, 0 if absent */
	long *key;                /* [layers] layer ids, ascending */
	int32_t *ids;             /* [layers * num_slots] */
};
int analyze_trtllm_lb_read(const char *path, struct analyze_trtllm_lb *lb, struct util_err *err);
void analyze_trtllm_lb_release(struct analyze_trtllm_lb *lb);

/* Heat given directly: JSON {"heat": [[tokens per expert] per layer]} with
 * optional "episodes": [[[...] per layer] per episode], "ranks", "slots".
 * Rows must be equally long and values >= 0.  *heat is malloc'ed
 * [layers * experts], *episodes [n_episodes * layers * experts] or NULL;
 * ranks and slots are 0 when absent.  Release with analyze_heat_release. */
struct analyze_heat_file {
	int layers, experts, n_episodes, ranks, slots;
	double *heat, *episodes;
};
int analyze_heat_read(const char *path, struct analyze_heat_file *h, struct util_err *err);
void analyze_heat_release(struct analyze_heat_file *h);

/* ---- replay: dynamic load balancing on a recorded trace (analyze/replay.c)
 * Walks the steps of a run in order (ordinals 0..N-1 of the selected
 * steps).  After every `interval` steps the algorithm runs on the last
 * `window` steps (fewer at the start), per layer, from the placement in
 * force; its result takes effect `delay` steps later.  Every step is scored
 * under the placement actually in force, and under the start placement
 * (the baseline, never changed).  docs/replay.md has the cost model. */

/* The scenarios' seed of every decision no --seed sets (place, compare,
 * replay, render, top): a replay's decision is the one `place --steps`
 * makes on its window from the placement in force. */
#define ANALYZE_DEFAULT_SEED 0

/* Score the flagship may give up per rebalance for fewer copies in a replay:
 * a rebalance repeats, so copies it saves are saved every time. */
#define ANALYZE_REPLAY_MOVE_TOLERANCE 0.005

/* The replay cadence every command uses unless told otherwise (replay,
 * --grid, report, render imbalance): vllm-ascend's dynamic EPLB defaults,
 * a decision every ANALYZE_REPLAY_INTERVAL steps on a window as long, taking
 * effect ANALYZE_REPLAY_DELAY steps later; on a selection of fewer than
 * 8 intervals the interval (and window) is an eighth of its steps, so a
 * short trace still shows rebalances, and the delay at most half the
 * interval.  docs/replay.md ("Defaults") says why. */
#define ANALYZE_REPLAY_INTERVAL 600
#define ANALYZE_REPLAY_DELAY 50
/* Episodes a replay cuts its window into without --episodes: one per step
 * (the window's length), at most this many.  Per-step episodes measured
 * best (docs/replay.md): a generated DeepSeek-V3 run re-placed every 50
 * steps, mean imbalance 2.638 with the summed heat, 2.525 / 2.519 / 2.492
 * with 8 / 16 / 50 episodes; on a 900-step window 3.574 / 3.485 / 3.460 /
 * 3.458 with 0 / 16 / 64 / 256.  The flagship's time grows with the
 * episodes (16 is what its 50 ms budget for 58 x 256 is measured with), so
 * the cap keeps most of the gain at a quarter of the time of 64. */
#define ANALYZE_REPLAY_EPISODES 16
/* Fills what is not given (*interval, *window <= 0; *delay < 0) for a
 * selection of nsteps steps by the rule above. */
void analyze_replay_cadence(int64_t nsteps, int64_t *interval, int64_t *window, int64_t *delay);
/* analyze_replay_cfg.episodes for the flagship fitting its forecast of the
 * next window (analyze/robust.c) from the window's blocks and the history
 * before it, as `place` does, rather than episodes. */
#define ANALYZE_REPLAY_FORECAST (-1)
/* What a replay of algo gives it of a window of `window` steps: `req`
 * episodes as given (>= 0); else the flagship its forecast
 * (ANALYZE_REPLAY_FORECAST) and any other algorithm one episode per step,
 * at most ANALYZE_REPLAY_EPISODES. */
int analyze_replay_episodes(const struct analyze_algo *algo, int req, int64_t window);
/* Episodes a fitting window is cut into when `report` (and the charts it
 * draws) fits on episodes without --episodes (docs/cli.md has why). */
#define ANALYZE_FIT_EPISODES 8
/* `req` as given (>= 0), else ANALYZE_FIT_EPISODES, or the window's
 * `steps` if fewer. */
int analyze_fit_episodes(int req, int64_t steps);
/* Steps of run in [from, to] and phase_mask (0: all phases) into *n. */
int analyze_step_count(struct store *s, const struct store_run *run, int64_t from, int64_t to,
		       unsigned phase_mask, int64_t *n, struct util_err *err);

/* What an engine's own dynamic EPLB does with its default settings
 * (docs/replay.md cites each value's file): the algorithm moetrace runs
 * for the engine's, how often it decides, on how many steps, and how many
 * steps after the decision the placement takes effect.  The run's EP
 * layout (ranks x slots) is kept: every engine counts redundant experts as
 * extra physical slots over the logical experts (TensorRT-LLM as the total
 * num_slots). */
struct analyze_engine {
	const char *name;        /* "vllm", "sglang", "vllm-ascend", "trtllm" */
	const char *algo;        /* moetrace algorithm for the engine's */
	int64_t interval;        /* steps; 0: one step per MoE layer of the run
				  * (one layer re-placed per step) */
	int64_t window;          /* steps */
	int64_t delay;           /* steps */
	const char *settings;    /* the engine's own names and values, one line */
};
const struct analyze_engine *analyze_engine_find(const char *name); /* NULL if unknown */
const struct analyze_engine *analyze_engine_at(size_t i); /* NULL past the end */
/* "vllm, sglang, vllm-ascend or trtllm", for messages. */
const char *analyze_engine_choices(void);

struct analyze_replay_cfg {
	const struct analyze_algo *algo;
	int ranks, slots, nodes, groups;
	int64_t interval, window, delay; /* in steps; delay < interval */
	double threshold;               /* 0: re-place every layer; else only layers whose
					 * window imbalance under the placement in force
					 * exceeds it (>= 1) */
	int pay;                        /* move only what pays: a layer whose predicted
					 * straggler time saved until the next rebalance
					 * exceeds its copies' transfer time, in an event
					 * whose kept layers pay for their transfer
					 * together (needs sec_per_token, gbytes_per_s and
					 * expert_bytes) */
	int episodes;                   /* 0: none; N: the window cut into N episodes;
					 * ANALYZE_REPLAY_FORECAST: the flagship's forecast */
	int max_moves;                  /* per layer and rebalance; -1: none */
	double move_tolerance;          /* passed to the algorithm (analyze_place_in) */
	uint64_t seed;
	int64_t from, to;               /* step range */
	unsigned phase_mask;
	const int32_t *start;           /* [layers * ranks*slots] placement at the start */
	const struct analyze_deploy *deploy; /* links, nodes, precision and step-time
					 * model; NULL: the three figures below, one node */
	uint64_t expert_bytes;          /* bytes of one expert's weights (0: unknown) */
	double gbytes_per_s;            /* link bandwidth per rank and direction */
	double sec_per_token;           /* MoE seconds per token on a rank (0: unknown) */
	int threads;                    /* 1 or 2 worker threads over layers */
	int store;                      /* record the replay in the database */
	const char *params_json;        /* stored with the replay */
	const char *engine;             /* engine preset the settings came from, stored
					 * with the replay (NULL: none) */
	int series;                     /* also return per-step series (see below) */
	int series_layer;               /* with series: -1 overall, else that layer */
};

struct analyze_replay_layer {
	double mean, p99, base_mean, base_p99; /* of per-step imbalance */
	int64_t moves;
};

struct analyze_replay_out {
	struct store_replay sum;        /* summary; sum.id is set when stored */
	int layers;
	struct analyze_replay_layer *layer;   /* [layers] */
	struct store_replay_event *events;    /* [n_events] */
	size_t n_events;
	int64_t *event_moves;           /* [n_events * layers] */
	double wall_seconds;            /* whole replay */
	double algo_seconds;            /* time spent in the algorithm */
	int64_t unscored_steps;         /* of sum.steps, those in which no layer got a
					 * token: out of the per-step figures */
	/* The overall per-step figures of the decode steps ([0]) and of the
	 * prefill steps ([1]) alone: how many were scored, the mean and p99
	 * under the replay and under the baseline (NAN without a step); a
	 * step of unknown phase is in neither. */
	struct analyze_replay_phase {
		int64_t steps;
		double mean, p99, base_mean, base_p99;
	} phase[2];
	/* With cfg->series: per step (n_series = steps), the step id, the
	 * imbalance under the replay and under the baseline, overall (sum of max
	 * / sum of mean) or of cfg->series_layer. */
	int64_t *series_step;
	double *series_imbalance, *series_base;
	unsigned char *series_phase;    /* the step's phase (enum store_phase) */
	size_t n_series;
};

/* Runs a replay; validates cfg first (UTIL_EUSAGE with a message naming the
 * option), then stores nothing unless it completes.  The store must be
 * writable when cfg->store is set.  Release out with analyze_replay_release. */
int analyze_replay_run(struct store *s, const struct store_run *run,
		       const struct analyze_replay_cfg *cfg, struct analyze_replay_out *out,
		       struct util_err *err);
void analyze_replay_release(struct analyze_replay_out *out);
/* n replays of one selection of steps (every cfgs[i] has the same from,
 * to and phase_mask, and store 0), reading and decoding the steps once
 * for all of them: with threads > 1 on a reader thread and two scoring
 * threads, each cfgs[i].threads still applying to its decisions.  rcs[i]
 * and errs[i] are each replay's outcome, outs[i] its result (release each
 * with analyze_replay_release; a failed one is released already).
 * Returns 0, or the failure of reading the steps (every rcs[i] then). */
int analyze_replay_grid(struct store *s, const struct store_run *run,
			const struct analyze_replay_cfg *cfgs, int n, int threads,
			struct analyze_replay_out *outs, struct util_err *errs, int *rcs);

/* ---- shared option values of the analysing commands (analyze/opts.c) -----
 * Each checks its argument, stores it, and returns 0 or UTIL_EUSAGE with a
 * message naming the option. */
/* Warns on stderr ("moetrace CMD: warning: ...") when the run lacks counts
 * rows, which every analysis reads as zero heat.  Best effort: a store
 * that cannot count them fails the reads that follow with its message. */
void analyze_warn_missing_counts(const char *cmd, struct store *s, const struct store_run *run);
int analyze_opt_phase(const char *arg, unsigned *mask, struct util_err *err);
int analyze_opt_model(const char *arg, const char **model, struct util_err *err);
int analyze_opt_quant(const char *arg, int *quant, struct util_err *err);
int analyze_opt_link(const char *arg, const char *opt, const char **link, struct util_err *err);
int analyze_opt_hardware(const char *arg, const char **hw, struct util_err *err);
int analyze_opt_step_ms(const char *arg, double *ms, struct util_err *err); /* > 0 */
/* The algorithm or link name closest to a misspelt one, or NULL. */
const char *analyze_algo_suggest(const char *name);
const char *analyze_link_suggest(const char *name);

/* The options `place`, `compare` and `report` share, each under the same
 * getopt letter in every command that takes it: --run r, --ranks R,
 * --slots S, --redundant N, --nodes n, --groups g, --steps s, --phase p,
 * --episodes k, --max-moves M, --seed x, --current c, --model m, --quant q,
 * --link L, --bandwidth b, --capacity C, and the long-only --ranks-per-node,
 * --link-intra, --link-inter (ANALYZE_OPT_*).  A command's getopt table lists
 * their rows from ANALYZE_CLI_LONGOPTS (or the ANALYZE_LONGOPT_<NAME> rows
 * it takes) and hands every letter it does not handle itself to
 * analyze_cli_opt. */
/* Episodes a window may be cut into (--episodes), everywhere: the replay
 * keeps a checkpoint of the window's prefix sums per episode boundary. */
#define ANALYZE_MAX_EPISODES 256

/* Long-only shared options (no letter). */
enum {
	ANALYZE_OPT_RANKS_PER_NODE = 0x200,
	ANALYZE_OPT_LINK_INTRA,
	ANALYZE_OPT_LINK_INTER,
};

/* The getopt rows of the shared options: one home for each, used by every
 * command that takes the option (its table lists ANALYZE_CLI_LONGOPTS, or
 * the rows it takes, then its own; the command includes <getopt.h>). */
/* clang-format off */
#define ANALYZE_LONGOPT_RUN            { "run", required_argument, NULL, 'r' }
#define ANALYZE_LONGOPT_RANKS          { "ranks", required_argument, NULL, 'R' }
#define ANALYZE_LONGOPT_SLOTS          { "slots", required_argument, NULL, 'S' }
#define ANALYZE_LONGOPT_REDUNDANT      { "redundant", required_argument, NULL, 'N' }
#define ANALYZE_LONGOPT_NODES          { "nodes", required_argument, NULL, 'n' }
#define ANALYZE_LONGOPT_GROUPS         { "groups", required_argument, NULL, 'g' }
#define ANALYZE_LONGOPT_STEPS          { "steps", required_argument, NULL, 's' }
#define ANALYZE_LONGOPT_PHASE          { "phase", required_argument, NULL, 'p' }
#define ANALYZE_LONGOPT_EPISODES       { "episodes", required_argument, NULL, 'k' }
#define ANALYZE_LONGOPT_MAX_MOVES      { "max-moves", required_argument, NULL, 'M' }
#define ANALYZE_LONGOPT_SEED           { "seed", required_argument, NULL, 'x' }
#define ANALYZE_LONGOPT_CURRENT        { "current", required_argument, NULL, 'c' }
#define ANALYZE_LONGOPT_MODEL          { "model", required_argument, NULL, 'm' }
#define ANALYZE_LONGOPT_QUANT          { "quant", required_argument, NULL, 'q' }
#define ANALYZE_LONGOPT_LINK           { "link", required_argument, NULL, 'L' }
#define ANALYZE_LONGOPT_BANDWIDTH      { "bandwidth", required_argument, NULL, 'b' }
#define ANALYZE_LONGOPT_CAPACITY       { "capacity", required_argument, NULL, 'C' }
#define ANALYZE_LONGOPT_LINK_INTRA     { "link-intra", required_argument, NULL, ANALYZE_OPT_LINK_INTRA }
#define ANALYZE_LONGOPT_LINK_INTER     { "link-inter", required_argument, NULL, ANALYZE_OPT_LINK_INTER }
#define ANALYZE_LONGOPT_RANKS_PER_NODE { "ranks-per-node", required_argument, NULL, \
					 ANALYZE_OPT_RANKS_PER_NODE }
/* Every shared row, for a command that takes them all (place, compare). */
#define ANALYZE_CLI_LONGOPTS                                                            \
	ANALYZE_LONGOPT_RUN, ANALYZE_LONGOPT_RANKS, ANALYZE_LONGOPT_SLOTS,              \
	ANALYZE_LONGOPT_REDUNDANT, ANALYZE_LONGOPT_NODES, ANALYZE_LONGOPT_GROUPS,       \
	ANALYZE_LONGOPT_STEPS, ANALYZE_LONGOPT_PHASE, ANALYZE_LONGOPT_EPISODES,         \
	ANALYZE_LONGOPT_MAX_MOVES, ANALYZE_LONGOPT_SEED, ANALYZE_LONGOPT_CURRENT,       \
	ANALYZE_LONGOPT_MODEL, ANALYZE_LONGOPT_QUANT, ANALYZE_LONGOPT_LINK,             \
	ANALYZE_LONGOPT_LINK_INTRA, ANALYZE_LONGOPT_LINK_INTER,                         \
	ANALYZE_LONGOPT_RANKS_PER_NODE, ANALYZE_LONGOPT_BANDWIDTH, ANALYZE_LONGOPT_CAPACITY
/* clang-format on */

struct analyze_cli {
	const char *runname, *current, *model, *link;
	const char *link_intra, *link_inter; /* --link-intra, --link-inter */
	int ranks_per_node;                  /* --ranks-per-node; 0: the run's */
	int ranks, slots, redundant, nodes, groups, episodes, max_moves;
	int quant;             /* -1: the model preset's (analyze_model_quant) */
	int episodes_set;  /* --episodes given (0 too: the summed heat only, the
			    * flagship's blocks and history not read) */
	unsigned phase_mask;
	int64_t from, to;
	uint64_t seed;
	double bandwidth, capacity;
	int capacity_set; /* --capacity given: token drop is shown only then */
};
#define ANALYZE_CLI_INIT                                                                    \
	{ .max_moves = -1, .from = INT64_MIN, .to = INT64_MAX, .quant = -1,                 \
	  .capacity = 1.25, .seed = ANALYZE_DEFAULT_SEED }
/* 0 when c is a shared option and arg is good, 1 when c is not a shared
 * option (getopt's '?' included), else UTIL_EUSAGE with a message naming
 * the option. */
int analyze_cli_opt(int c, const char *arg, struct analyze_cli *o, struct util_err *err);
/* The same for a getopt_long loop's default case: an option that is none
 * of the shared ones has its one-line message printed by util_opt_unknown
 * (argv, opts as given to getopt_long), and UTIL_EUSAGE comes back with
 * err's message empty, so the caller prints nothing more. */
struct option;
int analyze_cli_opt_or_unknown(int c, const char *arg, struct analyze_cli *o, char *const *argv,
			       const struct option *opts, struct util_err *err);

#endif

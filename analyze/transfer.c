/*
 * transfer.c: what a new placement costs to deploy.  Three pieces: the
 * size of one routed expert for a model shape and quantization
 * (analyze_expert_bytes), the link presets with their public sources
 * (analyze_link_find), and the copy plan from an old placement to a new one
 * with a sender choice that spreads the send load (analyze_transfer_layer).
 * The engine-named balance figures that sit beside them in reports
 * (token drop at a capacity factor) are here too, and the whole-run plan
 * (analyze_plan_run) that `place` and `compare` share: an algorithm on
 * every layer, its figures against the lower bound, the copies it needs.
 * docs/formats.md states every formula and source.
 */
#include "analyze/analyze.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- expert size ---------------------------------------------------------- */

static const char *const quant_names[] = { "bf16", "fp8", "w8a8", "w4a8", "mxfp4" };

int analyze_quant_parse(const char *s)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(quant_names); i++)
		if (!strcmp(s, quant_names[i]))
			return (int)i;
	return -1;
}

const char *analyze_quant_name(int quant)
{
	if (quant < 0 || (size_t)quant >= UTIL_ARRAY_SIZE(quant_names))
		return "?";
	return quant_names[quant];
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

double analyze_sec_per_token(int hidden, int inter, double tflops)
{
	return 6.0 * hidden * inter / (tflops * 1e12);
}

uint64_t analyze_expert_bytes(int hidden, int inter, int quant)
{
	uint64_t h = hidden > 0 ? (uint64_t)hidden : 0, i = inter > 0 ? (uint64_t)inter : 0;
	uint64_t w = 3 * h * i;	    /* gate [i x h], up [i x h], down [h x i] */
	uint64_t chans = 2 * i + h; /* output channels of gate+up and down */

	switch (quant) {
	case ANALYZE_QUANT_BF16: return 2 * w;
	case ANALYZE_QUANT_FP8:
		/* DeepSeek-V3 style: one fp32 scale per 128 x 128 weight block */
		return w + 4 * (3 * ceil_div(i, 128) * ceil_div(h, 128));
	case ANALYZE_QUANT_W8A8: return w + 4 * chans;
	case ANALYZE_QUANT_W4A8:
		/* two int4 per byte; per-channel scale and offset, and per-group
		 * (256 inputs) scale and offset, all bf16 (vllm-ascend's W4A8
		 * dynamic MoE layout) */
		return w / 2 + 2 * (2 * chans) +
		       2 * (2 * (2 * i * ceil_div(h, 256) + h * ceil_div(i, 256)));
	case ANALYZE_QUANT_MXFP4:
		/* OCP microscaling FP4: two e2m1 per byte, one e8m0 scale byte
		 * per 32 inputs (gpt-oss's MoE weights) */
		return w / 2 + (2 * i * ceil_div(h, 32) + h * ceil_div(i, 32));
	default: return 0;
	}
}

/* ---- links ------------------------------------------------------------------ */

/* clang-format off */
static const struct analyze_link links[] = {
	{ "nvlink3",     "NVLink 3 (A100)",          300.0,
	  "NVIDIA A100 datasheet: 600 GB/s NVLink per GPU, both directions" },
	{ "nvlink4",     "NVLink 4 (H100/H200)",     450.0,
	  "NVIDIA H100 datasheet: 900 GB/s NVLink per GPU, both directions" },
	{ "nvlink5",     "NVLink 5 (B200/GB200)",    900.0,
	  "NVIDIA Blackwell datasheet: 1.8 TB/s NVLink per GPU, both directions" },
	{ "pcie4-x16",   "PCIe 4.0 x16",              31.5,
	  "PCI-SIG PCIe 4.0: 16 GT/s per lane, 128b/130b, 16 lanes, per direction" },
	{ "pcie5-x16",   "PCIe 5.0 x16",              63.0,
	  "PCI-SIG PCIe 5.0: 32 GT/s per lane, 128b/130b, 16 lanes, per direction" },
	{ "hccs",        "HCCS (Ascend 910B, 8 NPUs)", 196.0,
	  "Huawei Atlas 800T A2 datasheet: 392 GB/s HCCS per NPU, both directions" },
	{ "roce-200g",   "RoCE 200 Gb/s",             25.0,
	  "IEEE 802.3 200GBASE port: 200 Gb/s per direction" },
	{ "roce-400g",   "RoCE 400 Gb/s",             50.0,
	  "IEEE 802.3 400GBASE port: 400 Gb/s per direction" },
	{ "ib-hdr-200g", "InfiniBand HDR 200 Gb/s",   25.0,
	  "NVIDIA ConnectX-6 / Quantum HDR: 200 Gb/s per port and direction" },
	{ "ib-ndr-400g", "InfiniBand NDR 400 Gb/s",   50.0,
	  "NVIDIA ConnectX-7 / Quantum-2 NDR: 400 Gb/s per port and direction" },
};
/* clang-format on */

const struct analyze_link *analyze_link_find(const char *name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(links); i++)
		if (!strcmp(links[i].name, name))
			return &links[i];
	return NULL;
}

const struct analyze_link *analyze_link_at(size_t i)
{
	return i < UTIL_ARRAY_SIZE(links) ? &links[i] : NULL;
}

/* ---- copy plan -------------------------------------------------------------- */

struct need {
	int rank, expert, slot, holders;
};

static int need_cmp(const void *a, const void *b)
{
	const struct need *x = a, *y = b;

	/* the most constrained experts choose their sender first */
	if (x->holders != y->holders)
		return x->holders < y->holders ? -1 : 1;
	if (x->expert != y->expert)
		return x->expert < y->expert ? -1 : 1;
	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int rank_holds(const int32_t *p, int slots, int rank, int expert, int upto)
{
	for (int k = 0; k < upto && k < slots; k++)
		if (p[(size_t)rank * slots + k] == expert)
			return 1;
	return 0;
}

char *analyze_link_names(char *buf, size_t n)
{
	size_t len = 0, cnt = UTIL_ARRAY_SIZE(links);

	buf[0] = 0;
	for (size_t i = 0; i < cnt && len < n; i++) {
		int w = snprintf(buf + len, n - len, "%s%s", i == 0 ? "" : i + 1 == cnt ? " or " : ", ",
				 links[i].name);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return buf;
}

/* The copy plan.  Tier t of a copy is 0 when sender and receiver share a
 * node, 1 otherwise; send[t], recv[t] count each rank's copies on tier t
 * (both tiers may be the same arrays when rpn puts every rank on one node). */
static int64_t plan_copies(const int32_t *from, const int32_t *to, int experts, int ranks,
			   int slots, int rpn, int32_t *src, int64_t *send[2], int64_t *recv[2],
			   int64_t *inter, struct util_err *err)
{
	size_t P = (size_t)ranks * slots;
	int *off = calloc((size_t)experts + 1, sizeof(int));
	int *holder = malloc((P ? P : 1) * sizeof(int));
	struct need *needs = malloc((P ? P : 1) * sizeof(*needs));
	int64_t n = 0, rc;

	if (rpn <= 0 || rpn > ranks)
		rpn = ranks > 0 ? ranks : 1;
	if (!off || !holder || !needs) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	/* holders of each expert in `from`, each rank once (CSR by expert) */
	for (int r = 0; r < ranks; r++)
		for (int k = 0; k < slots; k++) {
			int e = from[(size_t)r * slots + k];
			if (e < 0 || e >= experts) {
				rc = util_err_set(err, UTIL_ERANGE,
						  "old placement: slot %d holds expert %d, out of "
						  "range [0, %d)",
						  r * slots + k, e, experts);
				goto out;
			}
			if (!rank_holds(from, slots, r, e, k))
				off[e + 1]++;
		}
	for (int e = 0; e < experts; e++)
		off[e + 1] += off[e];
	{
		int *fill = calloc((size_t)experts, sizeof(int));
		if (!fill) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		for (int r = 0; r < ranks; r++)
			for (int k = 0; k < slots; k++) {
				int e = from[(size_t)r * slots + k];
				if (!rank_holds(from, slots, r, e, k))
					holder[off[e] + fill[e]++] = r;
			}
		free(fill);
	}
	if (src)
		for (size_t p = 0; p < P; p++)
			src[p] = -1;
	for (int r = 0; r < ranks; r++)
		for (int k = 0; k < slots; k++) {
			int e = to[(size_t)r * slots + k];
			if (e < 0 || e >= experts) {
				rc = util_err_set(err, UTIL_ERANGE,
						  "new placement: slot %d holds expert %d, out of "
						  "range [0, %d)",
						  r * slots + k, e, experts);
				goto out;
			}
			if (rank_holds(to, slots, r, e, k) || rank_holds(from, slots, r, e, slots))
				continue;
			if (off[e + 1] == off[e]) {
				rc = util_err_set(
					err, UTIL_ERANGE,
					"expert %d is in the new placement but on no rank "
					"of the old one",
					e);
				goto out;
			}
			needs[n].rank = r;
			needs[n].expert = e;
			needs[n].slot = r * slots + k;
			needs[n].holders = off[e + 1] - off[e];
			n++;
		}
	qsort(needs, (size_t)n, sizeof(*needs), need_cmp);
	for (int64_t i = 0; i < n; i++) {
		int e = needs[i].expert, node = needs[i].rank / rpn, best = -1, t = 0;
		/* a holder on the destination's node copies over the intra-node link */
		for (int j = off[e]; j < off[e + 1]; j++)
			if (holder[j] / rpn == node && (best < 0 || send[0][holder[j]] < send[0][best]))
				best = holder[j];
		if (best < 0) {
			t = 1;
			best = holder[off[e]];
			for (int j = off[e] + 1; j < off[e + 1]; j++)
				if (send[1][holder[j]] < send[1][best])
					best = holder[j];
		}
		send[t][best]++;
		recv[t][needs[i].rank]++;
		if (t && inter)
			(*inter)++;
		if (src)
			src[needs[i].slot] = best;
	}
	rc = n;
out:
	free(off);
	free(holder);
	free(needs);
	return rc;
}

int64_t analyze_transfer_layer(const int32_t *from, const int32_t *to, int experts, int ranks,
			       int slots, int32_t *src, int64_t *send, int64_t *recv,
			       struct util_err *err)
{
	int64_t *s2[2] = { send, send }, *r2[2] = { recv, recv };

	return plan_copies(from, to, experts, ranks, slots, 0, src, s2, r2, NULL, err);
}

int64_t analyze_transfer_layer_tiers(const int32_t *from, const int32_t *to, int experts,
				     int ranks, int slots, int ranks_per_node, int32_t *src,
				     int64_t *send, int64_t *recv, int64_t *inter,
				     struct util_err *err)
{
	int64_t *s2[2] = { send, send + ranks }, *r2[2] = { recv, recv + ranks };

	return plan_copies(from, to, experts, ranks, slots, ranks_per_node, src, s2, r2, inter,
			   err);
}

double analyze_transfer_seconds(const int64_t *send, const int64_t *recv, int ranks,
				uint64_t expert_bytes, double gbytes_per_s)
{
	int64_t worst = 0;

	if (gbytes_per_s <= 0)
		return 0;
	for (int r = 0; r < ranks; r++) {
		if (send[r] > worst)
			worst = send[r];
		if (recv[r] > worst)
			worst = recv[r];
	}
	return (double)worst * (double)expert_bytes / (gbytes_per_s * 1e9);
}

double analyze_transfer_seconds_tiers(const int64_t *send, const int64_t *recv, int ranks,
				      uint64_t expert_bytes, double intra_gbps, double inter_gbps,
				      double *intra_s, double *inter_s)
{
	double a = analyze_transfer_seconds(send, recv, ranks, expert_bytes, intra_gbps);
	double b = analyze_transfer_seconds(send + ranks, recv + ranks, ranks, expert_bytes,
					    inter_gbps);

	if (intra_s)
		*intra_s = a;
	if (inter_s)
		*inter_s = b;
	return a > b ? a : b;
}

double analyze_token_drop(const double *load, int ranks, double factor)
{
	double total = 0, dropped = 0, cap;

	for (int r = 0; r < ranks; r++)
		total += load[r];
	if (total <= 0 || ranks <= 0)
		return 0;
	cap = factor * total / ranks;
	for (int r = 0; r < ranks; r++)
		if (load[r] > cap)
			dropped += load[r] - cap;
	return dropped / total;
}

/* ---- whole-run plans ---------------------------------------------------------- */

struct plan_job {
	const struct analyze_plan_in *in;
	struct analyze_plan *plan;
	atomic_int *next; /* the next layer to place, shared by the threads */
	const struct analyze_robust_choice *robust; /* the flagship's estimator, or NULL */
	int rc, layer; /* the first error, and its layer */
	struct util_err err;
};

static void *plan_worker(void *arg)
{
	struct plan_job *job = arg;
	const struct analyze_plan_in *in = job->in;
	int E = in->experts, P = in->ranks * in->slots;
	double *eps = NULL;

	if (in->episodes && in->n_episodes > 0 &&
	    !(eps = malloc((size_t)in->n_episodes * E * sizeof(double)))) {
		job->rc = util_err_set(&job->err, UTIL_ENOMEM, "out of memory");
		return NULL;
	}
	/* layers as the threads come free: their times differ (by a third
	 * between a steep layer and a flat one), so a fixed share leaves one
	 * thread waiting */
	for (int l; (l = atomic_fetch_add(job->next, 1)) < in->layers;) {
		struct analyze_place_in pin = {
			.experts = E,
			.ranks = in->ranks,
			.slots = in->slots,
			.nodes = in->nodes,
			.groups = in->groups,
			.heat = in->heat + (size_t)l * E,
			.current = in->current ? in->current + (size_t)l * P : NULL,
			.max_moves = in->max_moves,
			.seed = in->seed,
			.no_dup = in->no_dup,
			.undup = &job->plan->layer[l].undup,
		};
		if (in->only_layer >= 0 && l != in->only_layer)
			continue;
		if (eps) {
			for (int k = 0; k < in->n_episodes; k++)
				memcpy(eps + (size_t)k * E,
				       in->episodes + ((size_t)k * in->layers + l) * E,
				       (size_t)E * sizeof(double));
			pin.episodes = eps;
			pin.n_episodes = in->n_episodes;
		}
		if (in->blocks && in->n_blocks > 0) { /* the layer's, where they are */
			pin.blocks = in->blocks + (size_t)l * E;
			pin.blocks_stride = (size_t)in->layers * E;
			pin.n_blocks = in->n_blocks;
			pin.n_hist = in->n_hist;
			pin.robust = job->robust;
		}
		job->layer = l;
		if ((job->rc = analyze_place(in->algo, &pin, job->plan->phy2log + (size_t)l * P,
					     &job->err))) {
			util_err_prefix(&job->err, "%s, layer %d: ", in->algo->name, l);
			break;
		}
		if ((job->rc = analyze_placement_check(job->plan->phy2log + (size_t)l * P, E,
						       in->ranks, in->slots, 0, &job->err))) {
			util_err_prefix(&job->err, "%s gave an invalid placement for layer %d: ",
					in->algo->name, l);
			job->rc = UTIL_ESTATE;
			break;
		}
	}
	free(eps);
	return NULL;
}

int analyze_plan_run(const struct analyze_plan_in *in, struct analyze_plan *plan,
		     struct util_err *err)
{
	int L = in->layers, E = in->experts, R = in->ranks, P = in->ranks * in->slots;
	int nthreads = in->threads > 1 && L >= 4 && in->only_layer < 0 ? 2 : 1;
	struct plan_job jobs[2];
	atomic_int next;
	pthread_t tid;
	int started = 0, rc = 0;
	double t0, *load = NULL;

	memset(plan, 0, sizeof(*plan));
	plan->layers = L;
	plan->ranks = R;
	plan->slots = in->slots;
	plan->phy2log = calloc((size_t)L * P, sizeof(int32_t));
	plan->layer = calloc((size_t)L, sizeof(*plan->layer));
	plan->send = calloc(2 * (size_t)R, sizeof(int64_t));
	plan->recv = calloc(2 * (size_t)R, sizeof(int64_t));
	load = calloc((size_t)R, sizeof(double));
	if (in->current)
		plan->src = malloc((size_t)L * P * sizeof(int32_t));
	if (!plan->phy2log || !plan->layer || !plan->send || !plan->recv || !load ||
	    (in->current && !plan->src)) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	/* layers not planned keep the current placement, else the static one */
	for (int l = 0; l < L; l++) {
		if (plan->src)
			for (int p = 0; p < P; p++)
				plan->src[(size_t)l * P + p] = -1;
		if (in->current)
			memcpy(plan->phy2log + (size_t)l * P, in->current + (size_t)l * P,
			       (size_t)P * sizeof(int32_t));
		else
			analyze_static_phy2log(E, R, in->slots, plan->phy2log + (size_t)l * P);
	}
	/* the algorithm's time: for the flagship its estimator too, chosen on
	 * every layer together */
	t0 = util_now();
	if (in->blocks && in->n_blocks > 0 && analyze_algo_forecasts(in->algo)) {
		if (analyze_robust_choose(in->blocks, in->n_blocks, in->n_hist, L, E, P, nthreads,
					  &plan->forecast)) {
			rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
			goto out;
		}
		plan->forecast_blocks = in->n_blocks;
		plan->forecast_hist = in->n_hist;
	}
	atomic_init(&next, 0);
	for (int t = 0; t < nthreads; t++) {
		jobs[t] = (struct plan_job){ in, plan, &next, NULL, 0, -1, UTIL_ERR_INIT };
		if (plan->forecast_blocks)
			jobs[t].robust = &plan->forecast;
	}
	if (nthreads == 2 && pthread_create(&tid, NULL, plan_worker, &jobs[1]) == 0)
		started = 1;
	plan_worker(&jobs[0]); /* (with no thread started, every layer) */
	if (started)
		pthread_join(tid, NULL);
	plan->seconds = util_now() - t0;
	/* the error of the lowest layer that failed, whichever thread met it
	 * (every layer below it was placed: a thread stops at its error) */
	{
		struct plan_job *bad = NULL;
		for (int t = 0; t < (started ? 2 : 1); t++)
			if (jobs[t].rc && (!bad || jobs[t].layer < bad->layer))
				bad = &jobs[t];
		if (bad) {
			if (err)
				*err = bad->err;
			rc = bad->rc;
			goto out;
		}
	}
	for (int l = 0; l < L; l++) {
		const int32_t *p = plan->phy2log + (size_t)l * P;
		struct analyze_plan_layer *pl = &plan->layer[l];
		double sum = 0;
		if (in->only_layer >= 0 && l != in->only_layer)
			continue;
		pl->max_load = analyze_device_load(in->heat + (size_t)l * E, E, p, R, in->slots,
						   NULL, load);
		for (int r = 0; r < R; r++)
			sum += load[r];
		pl->mean_load = sum / R;
		/* a layer without a token in the heat is not scored */
		pl->imbalance = analyze_scored_imbalance(pl->max_load, pl->mean_load);
		pl->lower_bound = analyze_lower_bound(in->heat + (size_t)l * E, E, R, in->slots);
		plan->sum_max += pl->max_load;
		plan->sum_mean += pl->mean_load;
		plan->sum_lb += pl->lower_bound;
		if (in->current) {
			int64_t n = analyze_transfer_layer_tiers(
				in->current + (size_t)l * P, p, E, R, in->slots, in->ranks_per_node,
				plan->src + (size_t)l * P, plan->send, plan->recv, &plan->moves_inter,
				err);
			if (n < 0) {
				rc = (int)n;
				util_err_prefix(err, "layer %d: ", l);
				goto out;
			}
			pl->moves = n;
			plan->moves += n;
		}
	}
out:
	free(load);
	if (rc)
		analyze_plan_release(plan);
	return rc;
}

void analyze_plan_release(struct analyze_plan *plan)
{
	if (!plan)
		return;
	free(plan->phy2log);
	free(plan->layer);
	free(plan->send);
	free(plan->recv);
	free(plan->src);
	plan->src = NULL;
	plan->phy2log = NULL;
	plan->layer = NULL;
	plan->send = plan->recv = NULL;
}

/* ---- window heat ----------------------------------------------------------------- */

int analyze_window_heat(struct store *s, const struct store_run *run, int64_t from, int64_t to,
			unsigned phase_mask, int n_episodes, double *heat, double *episodes,
			int64_t *nsteps)
{
	size_t LE = (size_t)run->layers * run->experts;
	uint64_t *sum = calloc(LE ? LE : 1, sizeof(uint64_t));
	struct store_iter *it = NULL;
	struct store_step st;
	int64_t n = 0, i = 0;
	int rc;

	if (!sum)
		return UTIL_ENOMEM;
	if ((rc = store_window_sum(s, run, from, to, phase_mask, sum, &n)))
		goto out;
	for (size_t k = 0; k < LE; k++)
		heat[k] = (double)sum[k];
	if (nsteps)
		*nsteps = n;
	if (n_episodes <= 0 || !episodes)
		goto out;
	memset(episodes, 0, (size_t)n_episodes * LE * sizeof(double));
	if ((rc = store_iter_new(s, run, from, to, phase_mask, &it)))
		goto out;
	while ((rc = store_iter_next(it, &st)) == 1) {
		/* step i of n goes to chunk floor(i * K / n) */
		double *ep = episodes + (size_t)(i * n_episodes / (n ? n : 1)) * LE;
		for (size_t k = 0; k < LE; k++)
			ep[k] += st.counts[k];
		i++;
	}
out:
	store_iter_free(it);
	free(sum);
	return rc < 0 ? rc : 0;
}

/*
 * transfer.c: what a new placement costs to deploy.  Three pieces: the
 * size of one routed expert for a model shape and quantization
 * (analyze_expert_bytes), the link presets with their public sources
 * (analyze_link_find), and the copy plan from an old placement to a new one
 * with a sender choice that spreads the send load (analyze_transfer_layer).
 * The engine-named balance figures that sit beside them in reports
 * (token drop at a capacity factor) are here too.  docs/formats.md states
 * every formula and source.
 */
#include "analyze/analyze.h"

#include <stdlib.h>
#include <string.h>

/* ---- expert size ---------------------------------------------------------- */

static const char *const quant_names[] = { "bf16", "fp8", "w8a8", "w4a8" };

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

uint64_t analyze_expert_bytes(int hidden, int inter, int quant)
{
	uint64_t h = hidden > 0 ? (uint64_t)hidden : 0, i = inter > 0 ? (uint64_t)inter : 0;
	uint64_t w = 3 * h * i; /* gate [i x h], up [i x h], down [h x i] */
	uint64_t chans = 2 * i + h; /* output channels of gate+up and down */

	switch (quant) {
	case ANALYZE_QUANT_BF16:
		return 2 * w;
	case ANALYZE_QUANT_FP8:
		/* DeepSeek-V3 style: one fp32 scale per 128 x 128 weight block */
		return w + 4 * 3 * ceil_div(i, 128) * ceil_div(h, 128);
	case ANALYZE_QUANT_W8A8:
		return w + 4 * chans;
	case ANALYZE_QUANT_W4A8:
		/* two int4 per byte; per-channel scale and offset, and per-group
		 * (256 inputs) scale and offset, all bf16 (seed 001's layout) */
		return w / 2 + 2 * 2 * chans +
		       2 * 2 * (2 * i * ceil_div(h, 256) + h * ceil_div(i, 256));
	default:
		return 0;
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

int64_t analyze_transfer_layer(const int32_t *from, const int32_t *to, int experts, int ranks,
			       int slots, int32_t *src, int64_t *send, int64_t *recv,
			       struct util_err *err)
{
	size_t P = (size_t)ranks * slots;
	int *off = calloc((size_t)experts + 1, sizeof(int));
	int *holder = malloc((P ? P : 1) * sizeof(int));
	struct need *needs = malloc((P ? P : 1) * sizeof(*needs));
	int64_t n = 0, rc;

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
				rc = util_err_set(err, UTIL_ERANGE,
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
		int e = needs[i].expert, best = holder[off[e]];
		for (int j = off[e] + 1; j < off[e + 1]; j++)
			if (send[holder[j]] < send[best])
				best = holder[j];
		send[best]++;
		recv[needs[i].rank]++;
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

/*
 * deploy.c: one deployment's figures, resolved once per command: ranks per
 * node, the serving precision and the bytes of an expert, the intra- and
 * inter-node links, and the step-time model on a hardware preset.  Start at
 * analyze_deploy_resolve(); analyze_layer_seconds() is the per-step MoE
 * time the replay and compare add up.  docs/replay.md states the model.
 */
#include "analyze/analyze.h"

#include <stdio.h>
#include <string.h>

/* clang-format off */
static const struct analyze_hw hws[] = {
	{ "h100", "NVIDIA H100 SXM", 989, 1979, 3.35, "nvlink4", "ib-ndr-400g",
	  "NVIDIA H100 Tensor Core GPU datasheet (SXM): BF16 1,979 and FP8 3,958 TFLOPS "
	  "with sparsity (half dense), HBM3 3.35 TB/s" },
	{ "h200", "NVIDIA H200 SXM", 989, 1979, 4.8, "nvlink4", "ib-ndr-400g",
	  "NVIDIA H200 Tensor Core GPU datasheet (SXM): BF16 1,979 and FP8 3,958 TFLOPS "
	  "with sparsity (half dense), HBM3e 4.8 TB/s" },
	{ "b200", "NVIDIA B200", 2250, 4500, 8.0, "nvlink5", "ib-ndr-400g",
	  "NVIDIA HGX B200 datasheet, per GPU: BF16 4.5 and FP8 9 PFLOPS with sparsity "
	  "(half dense), HBM3e 8 TB/s" },
	{ "ascend-910b", "Huawei Ascend 910B", 390, 780, 1.6, "hccs", "roce-200g",
	  "estimate: one die of a 910C package (below); INT8 at twice FP16 as the Da Vinci "
	  "cube does (Hot Chips 2019: 4,096 FP16 / 8,192 INT8 MACs per cycle)" },
	{ "ascend-910c", "Huawei Ascend 910C", 780, 1560, 3.2, "hccs", "roce-200g",
	  "TechPowerUp / DigiTimes, April 2025: 780 TFLOPS BF16, eight HBM2E stacks at "
	  "3.2 TB/s (two dies; no Huawei datasheet gives per-package figures)" },
};
/* clang-format on */

const struct analyze_hw *analyze_hw_find(const char *name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(hws); i++)
		if (!strcmp(hws[i].name, name))
			return &hws[i];
	return NULL;
}

const struct analyze_hw *analyze_hw_at(size_t i)
{
	return i < UTIL_ARRAY_SIZE(hws) ? &hws[i] : NULL;
}

char *analyze_hw_names(char *buf, size_t n)
{
	size_t len = 0, cnt = UTIL_ARRAY_SIZE(hws);

	buf[0] = 0;
	for (size_t i = 0; i < cnt && len < n; i++) {
		int w = snprintf(buf + len, n - len, "%s%s", i == 0 ? "" : i + 1 == cnt ? " or " : ", ",
				 hws[i].name);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return buf;
}

static int link_of(const char *name, const char *opt, const struct analyze_link **l,
		   struct util_err *err)
{
	char names[256];

	if (!(*l = analyze_link_find(name)))
		return util_err_set(err, UTIL_EUSAGE, "%s: unknown link '%s' (%s)", opt, name,
				    analyze_link_names(names, sizeof(names)));
	return 0;
}

int analyze_model_quant(const struct store_model *model)
{
	int q = model && model->quant ? analyze_quant_parse(model->quant) : -1;

	return q >= 0 ? q : ANALYZE_QUANT_BF16;
}

int analyze_hier_nodes(int ranks, int ranks_per_node, const struct store_model *model,
		       int experts, int *nodes, int *groups)
{
	int g = model && model->groups > 1 ? model->groups : 0;

	if (ranks_per_node <= 0 || ranks % ranks_per_node || ranks / ranks_per_node < 2)
		return 0;
	*nodes = ranks / ranks_per_node;
	*groups = g && experts % g == 0 ? g : *nodes;
	return 1;
}

int analyze_deploy_resolve(const struct store_run *run, const struct store_model *model, int ranks,
			   const struct analyze_deploy_opts *o, struct analyze_deploy *d,
			   struct util_err *err)
{
	const struct analyze_link *li, *le;
	const char *rpn_from = "--ranks-per-node";
	char names[256];
	int rpn = o->ranks_per_node;

	memset(d, 0, sizeof(*d));
	d->ranks = ranks;
	d->layers = run->layers;
	d->experts = run->experts;
	d->topk = run->topk > 0 ? run->topk : model ? model->topk : 0;
	/* nodes */
	if (rpn <= 0) {
		rpn = run->ranks_per_node > 0 ? run->ranks_per_node
					      : model ? model->ranks_per_node : 0;
		rpn_from = run->ranks_per_node > 0 ? "the run's ranks per node"
						   : "the model preset's ranks per node";
		if (rpn > ranks || rpn <= 0)
			rpn = ranks; /* fewer ranks than a node holds: one node */
	}
	if (ranks % rpn && o->ranks_per_node <= 0 && !model)
		rpn = ranks; /* nothing is priced without a model: the nodes do not matter */
	if (ranks % rpn)
		return util_err_set(err, UTIL_EUSAGE,
				    "%s %d does not divide %d ranks%s", rpn_from, rpn, ranks,
				    o->ranks_per_node > 0 ? "" : " (give --ranks-per-node)");
	d->ranks_per_node = rpn;
	/* hardware and links */
	if (!(d->hw = analyze_hw_find(o->hardware ? o->hardware : "h100")))
		return util_err_set(err, UTIL_EUSAGE, "--hardware: unknown preset '%s' (%s)",
				    o->hardware, analyze_hw_names(names, sizeof(names)));
	if (o->link && (o->link_intra || o->link_inter))
		return util_err_set(err, UTIL_EUSAGE,
				    "--link sets both tiers: give it or --link-intra/--link-inter");
	if (link_of(o->link_intra ? o->link_intra : o->link ? o->link : d->hw->link_intra,
		    o->link_intra ? "--link-intra" : "--link", &li, err) ||
	    link_of(o->link_inter ? o->link_inter : o->link ? o->link : d->hw->link_inter,
		    o->link_inter ? "--link-inter" : "--link", &le, err))
		return err->code;
	d->link_intra = li->name;
	d->link_inter = le->name;
	d->intra_gbps = li->gbytes_per_s;
	d->inter_gbps = le->gbytes_per_s;
	if (o->bandwidth > 0) {
		d->link_intra = d->link_inter = "custom";
		d->intra_gbps = d->inter_gbps = o->bandwidth;
	}
	/* precision: the option, else the model's serving precision */
	d->quant = o->quant >= 0 ? o->quant : analyze_model_quant(model);
	if (o->step_ms < 0)
		return util_err_set(err, UTIL_EUSAGE, "--step-ms must be above 0");
	d->step_seconds = o->step_ms * 1e-3;
	d->tflops = o->tflops > 0 ? o->tflops
		    : d->quant == ANALYZE_QUANT_BF16 ? d->hw->tflops16 : d->hw->tflops8;
	d->hbm_gbps = d->hw->hbm_tbytes_per_s * 1e3;
	if (!model) {
		/* --us-per-token alone still times MoE compute; no bytes, no other time */
		d->sec_per_token = o->us_per_token * 1e-6;
		d->estimated = d->sec_per_token > 0;
		return 0;
	}
	d->expert_bytes = analyze_expert_bytes(model->hidden, model->inter, d->quant);
	d->sec_per_token = o->us_per_token > 0
				   ? o->us_per_token * 1e-6
				   : analyze_sec_per_token(model->hidden, model->inter, d->tflops);
	d->sec_per_expert = (double)d->expert_bytes / (d->hbm_gbps * 1e9);
	{
		/* attention and the rest: the active parameters a token does not
		 * spend in routed experts, each rank running its own share of the
		 * batch (data-parallel attention) and reading those weights once */
		double routed = (double)model->layers * model->topk * 3.0 * model->hidden *
				model->inter;
		double dense = model->active_params > routed ? model->active_params - routed : 0;
		double per_weight = (double)d->expert_bytes /
				    (3.0 * (double)model->hidden * (double)model->inter);
		d->dense_sec_per_token = 2.0 * dense / (d->tflops * 1e12);
		d->dense_sec_floor = dense * per_weight / (d->hbm_gbps * 1e9);
	}
	d->estimated = 1;
	return 0;
}

double analyze_layer_seconds(const struct analyze_deploy *d, const uint32_t *heat,
			     const int32_t *p2l, int slots, const int *cnt)
{
	double worst = 0;

	for (int r = 0; r < d->ranks; r++) {
		const int32_t *e = p2l + (size_t)r * slots;
		double tok = 0;
		int active = 0;
		for (int k = 0; k < slots; k++) {
			uint32_t h = heat[e[k]];
			tok += (double)h / cnt[e[k]];
			active += h != 0;
		}
		double t = tok * d->sec_per_token, m = active * d->sec_per_expert;
		if (m > t)
			t = m;
		if (t > worst)
			worst = t;
	}
	return worst;
}

double analyze_dense_seconds(const struct analyze_deploy *d, double tokens)
{
	double t = tokens / (d->ranks > 0 ? d->ranks : 1) * d->dense_sec_per_token;

	return t > d->dense_sec_floor ? t : d->dense_sec_floor;
}

double analyze_redundant_gib(const struct analyze_deploy *d, int slots)
{
	double extra = (double)d->ranks * slots - d->experts;

	if (extra <= 0 || d->ranks <= 0)
		return 0;
	return extra / d->ranks * d->layers * (double)d->expert_bytes / 1073741824.0;
}

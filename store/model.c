/*
 * model.c: the model presets — MoE shapes of published models, with the
 * figures taken from each model's config.json (cited in docs/models.md),
 * a typical EP layout for each, the precision its published weights are
 * served in and the parameters active per token (model cards).  Add a
 * model by adding a row.
 */
#include "store/store.h"

#include <string.h>

/* clang-format off */
static const struct store_model models[] = {
	/* name             label                     L    E  k  hidden inter first step grp ranks slots rpn */
	{ "deepseek-v3",     "DeepSeek-V3 / R1",      58, 256, 8, 7168, 2048, 3, 1, 8, 64, 5, 8,
	  "deepseek-ai/DeepSeek-V3 config.json", "fp8", 37e9 },
	{ "deepseek-v2-lite","DeepSeek-V2-Lite",      26,  64, 6, 2048, 1408, 1, 1, 1,  8, 10, 8,
	  "deepseek-ai/DeepSeek-V2-Lite config.json", "bf16", 2.4e9 },
	{ "qwen3-235b-a22b", "Qwen3-235B-A22B",       94, 128, 8, 4096, 1536, 0, 1, 1, 32, 5, 8,
	  "Qwen/Qwen3-235B-A22B config.json", "bf16", 22e9 },
	{ "qwen3-30b-a3b",   "Qwen3-30B-A3B",         48, 128, 8, 2048,  768, 0, 1, 1,  8, 18, 8,
	  "Qwen/Qwen3-30B-A3B config.json", "bf16", 3.3e9 },
	{ "mixtral-8x7b",    "Mixtral-8x7B",          32,   8, 2, 4096, 14336, 0, 1, 1, 4, 3, 4,
	  "mistralai/Mixtral-8x7B-v0.1 config.json", "bf16", 12.9e9 },
	{ "gpt-oss-120b",    "gpt-oss-120b",          36, 128, 4, 2880, 2880, 0, 1, 1, 16, 9, 8,
	  "openai/gpt-oss-120b config.json", "mxfp4", 5.1e9 },
	{ "kimi-k2",         "Kimi K2",               60, 384, 8, 7168, 2048, 1, 1, 1, 64, 7, 8,
	  "moonshotai/Kimi-K2-Instruct config.json", "fp8", 32e9 },
	{ "llama4-maverick", "Llama-4-Maverick-17B-128E", 24, 128, 1, 5120, 8192, 1, 2, 1, 16, 10, 8,
	  "meta-llama/Llama-4-Maverick-17B-128E-Instruct config.json", "bf16", 17e9 },
};
/* clang-format on */

const struct store_model *store_model_find(const char *name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(models); i++)
		if (!strcmp(models[i].name, name))
			return &models[i];
	/* aliases */
	if (!strcmp(name, "deepseek-r1"))
		return store_model_find("deepseek-v3");
	/* the model's own spelling ("DeepSeek-V3", "deepseekv3", "Qwen3_235B_A22B"):
	 * equal once case and separators are dropped, and no other preset is */
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(models); i++)
		if (util_name_fold_eq(name, models[i].name))
			return &models[i];
	if (util_name_fold_eq(name, "deepseek-r1"))
		return store_model_find("deepseek-v3");
	return NULL;
}

const char *store_model_suggest(const char *name)
{
	const char *names[UTIL_ARRAY_SIZE(models) + 1];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(models); i++)
		names[i] = models[i].name;
	names[UTIL_ARRAY_SIZE(models)] = "deepseek-r1";
	return util_suggest(name, names, UTIL_ARRAY_SIZE(names));
}

int store_ranks_per_node_ok(int ranks, int rpn)
{
	return rpn == 0 || ranks == 0 || (rpn > 0 && ranks % rpn == 0);
}

int store_ranks_per_node_default(int ranks, int pref)
{
	int n = pref > 0 && pref < ranks ? pref : ranks;

	return n > 0 && ranks % n == 0 ? n : 0;
}

const struct store_model *store_model_at(size_t i)
{
	return i < UTIL_ARRAY_SIZE(models) ? &models[i] : NULL;
}

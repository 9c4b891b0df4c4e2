/*
 * import.c: the front door of `moetrace import`: format names, detection
 * from a path's name and first bytes, and the dispatch to one importer per
 * format (import_csv.c, import_jsonl.c, import_megatron.c, import_trtllm.c,
 * import_sglang.c).  It sits above the importers and their shared
 * import_common.c, so none of them calls back up into it.
 */
#include "collector/import_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- formats: names, detection, dispatch -------------------------------------- */

/* clang-format off */
static const char *const format_names[] = {
	[COLLECTOR_FORMAT_AUTO] = "auto",
	[COLLECTOR_FORMAT_CSV] = "csv",
	[COLLECTOR_FORMAT_JSONL] = "jsonl",
	[COLLECTOR_FORMAT_MEGATRON] = "megatron",
	[COLLECTOR_FORMAT_TRTLLM] = "trtllm",
	[COLLECTOR_FORMAT_SGLANG] = "sglang",
};
/* clang-format on */

int collector_format_parse(const char *s)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(format_names); i++)
		if (!strcmp(s, format_names[i]))
			return (int)i;
	return -1;
}

const char *collector_format_name(int format)
{
	if (format < 0 || (size_t)format >= UTIL_ARRAY_SIZE(format_names))
		return "?";
	return format_names[format];
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

/* A JSON line's format: Megatron's router traces carry top_indices or
 * tokens_per_expert, ours counts. */
static int sniff_json(const char *head, size_t n)
{
	if (memmem(head, n, "\"top_indices\"", 13) || memmem(head, n, "\"tokens_per_expert\"", 19) ||
	    (memmem(head, n, "\"tpe\"", 5) && memmem(head, n, "\"iter\"", 6)))
		return COLLECTOR_FORMAT_MEGATRON;
	return COLLECTOR_FORMAT_JSONL;
}

int collector_format_detect(const char *path, struct util_err *err)
{
	struct stat sb;
	char head[4096];
	size_t n;
	FILE *f;

	if (stat(path, &sb) != 0)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		int fmt = -1;
		if (!d)
			return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
					    "cannot open '%s': %s", path, strerror(errno));
		while ((de = readdir(d)) && fmt < 0) {
			if (!strcmp(de->d_name, "meta_info.json") ||
			    (!strncmp(de->d_name, "rank", 4) && ends_with(de->d_name, ".safetensors")))
				fmt = COLLECTOR_FORMAT_TRTLLM;
			else if ((!strncmp(de->d_name, "router_trace_rank", 17) &&
				  ends_with(de->d_name, ".jsonl")) ||
				 !strcmp(de->d_name, "tokens_per_expert") ||
				 (!strncmp(de->d_name, "rank", 4) && ends_with(de->d_name, ".jsonl")))
				fmt = COLLECTOR_FORMAT_MEGATRON;
			else if (ends_with(de->d_name, ".pt"))
				fmt = COLLECTOR_FORMAT_SGLANG;
		}
		closedir(d);
		if (fmt < 0)
			return util_err_set(err, UTIL_EPARSE,
					    "'%s': a directory with no TensorRT-LLM statistics "
					    "(meta_info.json, rank*.safetensors), Megatron-LM traces "
					    "(router_trace_rank*.jsonl, tokens_per_expert/rank*.jsonl) or "
					    "SGLang dumps (*.pt)",
					    path);
		return fmt;
	}
	if (ends_with(path, ".csv"))
		return COLLECTOR_FORMAT_CSV;
	if (ends_with(path, ".pt") || ends_with(path, ".pth"))
		return COLLECTOR_FORMAT_SGLANG;
	if (ends_with(path, ".safetensors") || ends_with(path, "meta_info.json"))
		return COLLECTOR_FORMAT_TRTLLM;
	if (!(f = fopen(path, "rb")))
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	n = fread(head, 1, sizeof(head), f);
	fclose(f);
	if (n >= 4 && !memcmp(head, "PK\3\4", 4))
		return COLLECTOR_FORMAT_SGLANG; /* torch.save writes a zip archive */
	if (n >= 9 && head[8] == '{' && (unsigned char)head[7] == 0 && (unsigned char)head[6] == 0)
		return COLLECTOR_FORMAT_TRTLLM; /* u64 header length, then the JSON header */
	if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json"))
		return sniff_json(head, n);
	for (size_t i = 0; i < n; i++) {
		if (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n')
			continue;
		if (i == 0 && n >= 3 && !memcmp(head, "\xef\xbb\xbf", 3)) {
			i = 2; /* a UTF-8 byte order mark */
			continue;
		}
		if (head[i] == '{')
			return sniff_json(head, n);
		break;
	}
	return COLLECTOR_FORMAT_CSV;
}

/* One .pt dump, or every *.pt of a directory as one group (a per_pass
 * dump's rank files, or stat dumps in name order). */
static int import_sglang_path(struct store *s, const char *path,
			      const struct collector_import_opts *o, struct store_run *run,
			      struct util_err *err)
{
	struct store_run r;
	struct stat sb;
	char **files = NULL;
	size_t nf = 0;
	int rc;

	if (stat(path, &sb) != 0)
		return util_err_set(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	if (!S_ISDIR(sb.st_mode)) {
		rc = collector_import_sglang(s, &path, 1, o, path, &r, 0, NULL, NULL, err);
	} else {
		if ((rc = imp_list_dir(path, "", ".pt", &files, &nf, err)))
			return rc;
		imp_sglang_sort(files, nf);
		if (nf == 0)
			rc = util_err_set(err, UTIL_EPARSE, "'%s': no SGLang dumps (*.pt)", path);
		else
			rc = collector_import_sglang(s, (const char *const *)files, nf, o, path, &r,
						     0, NULL, NULL, err);
		imp_free_list(files, nf);
	}
	if (!rc && run)
		*run = r;
	return rc;
}

int collector_import(struct store *s, const char *path, int format,
		     const struct collector_import_opts *o, struct store_run *run,
		     struct util_err *err)
{
	if (format == COLLECTOR_FORMAT_AUTO) {
		format = collector_format_detect(path, err);
		if (format < 0)
			return format;
	}
	if (o->replicated && format != COLLECTOR_FORMAT_SGLANG)
		return util_err_set(err, UTIL_EUSAGE,
				    "--replicated applies to SGLang dumps, '%s' is %s", path,
				    collector_format_name(format));
	if (o->pipeline_stages && format != COLLECTOR_FORMAT_MEGATRON)
		return util_err_set(err, UTIL_EUSAGE,
				    "--pipeline-stages applies to Megatron-LM traces, '%s' is %s",
				    path, collector_format_name(format));
	switch (format) {
	case COLLECTOR_FORMAT_CSV:
		return collector_import_csv(s, path, o, run, err);
	case COLLECTOR_FORMAT_JSONL:
		return collector_import_jsonl(s, path, o, run, err);
	case COLLECTOR_FORMAT_MEGATRON:
		return collector_import_megatron(s, path, o, run, err);
	case COLLECTOR_FORMAT_TRTLLM:
		return collector_import_trtllm(s, path, o, run, err);
	case COLLECTOR_FORMAT_SGLANG:
		return import_sglang_path(s, path, o, run, err);
	}
	return util_err_set(err, UTIL_EUSAGE, "unknown trace format %d", format);
}

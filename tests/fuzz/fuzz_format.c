/*
 * fuzz_format.c: analyze_format_read, the placement files engines load
 * (vllm-ascend expert map JSON, SGLang placement JSON, TensorRT-LLM
 * YAML), on arbitrary bytes.  The first input byte picks the run shape the
 * file is checked against (one of the table below), the rest is the file.
 * Invariants: an error has a code and a message; a success fills a
 * placement that passes analyze_placement_check on every layer, and
 * writing it back in the detected format and reading that again gives the
 * same placement.
 */
#include "tests/fuzz/fuzz.h"

#include "analyze/analyze.h"

/* clang-format off */
static const struct analyze_shape shapes[] = {
	/* layers, experts, ranks, slots, first_layer, layer_step */
	{ 2, 4, 2, 2, 0, 1 },
	{ 2, 4, 2, 3, 3, 1 },
	{ 3, 6, 3, 3, 1, 2 },
	{ 1, 8, 4, 2, 0, 1 },
};
/* clang-format on */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct util_err err = UTIL_ERR_INIT;
	const struct analyze_shape *sh;
	char path[512], out[512];
	int32_t *p2l, *again;
	int rc, fmt = -1, fmt2 = -1;
	size_t P;

	if (size < 1)
		return 0;
	sh = &shapes[data[0] % UTIL_ARRAY_SIZE(shapes)];
	P = (size_t)sh->layers * (size_t)(sh->ranks * sh->slots);
	p2l = calloc(P, sizeof(*p2l));
	again = calloc(P, sizeof(*again));
	fuzz_check(p2l && again);
	fuzz_write(path, sizeof(path), "placement.in", data + 1, size - 1);
	rc = analyze_format_read(path, sh, p2l, &fmt, &err);
	if (rc) {
		fuzz_note("refused", err.msg);
		fuzz_check(rc < 0 && err.msg[0]);
		goto out;
	}
	fuzz_note("accepted", NULL);
	fuzz_check(fmt >= ANALYZE_FORMAT_VLLM_ASCEND && fmt <= ANALYZE_FORMAT_TRTLLM);
	for (int l = 0; l < sh->layers; l++)
		fuzz_check(analyze_placement_check(p2l + (size_t)l * (size_t)sh->ranks *
							   (size_t)sh->slots,
						   sh->experts, sh->ranks, sh->slots, 0,
						   &err) == 0);
	fuzz_path(out, sizeof(out), "placement.out");
	if (fmt == ANALYZE_FORMAT_VLLM_ASCEND) {
		/* a device holding an expert twice is read (it was deployed) but
		 * never written: vllm-ascend's loader misroutes it */
		int dup = 0;
		for (int l = 0; l < sh->layers; l++)
			dup |= analyze_placement_check(p2l + (size_t)l * (size_t)sh->ranks *
								     (size_t)sh->slots,
							   sh->experts, sh->ranks, sh->slots, 1,
							   NULL) != 0;
		if (dup) {
			fuzz_note("duplicate on a device", NULL);
			fuzz_check(analyze_format_write(out, fmt, sh, p2l, &err) == UTIL_ERANGE);
			fuzz_check(strstr(err.msg, "misroutes") != NULL);
			goto out;
		}
	}
	fuzz_check(analyze_format_write(out, fmt, sh, p2l, &err) == 0);
	fuzz_check(analyze_format_read(out, sh, again, &fmt2, &err) == 0);
	fuzz_check(fmt2 == fmt);
	fuzz_check(memcmp(p2l, again, P * sizeof(*p2l)) == 0);
out:
	free(p2l);
	free(again);
	return 0;
}

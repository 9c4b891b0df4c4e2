/*
 * fuzz_heat.c: analyze_heat_read (the JSON heat file of place --heat) on
 * arbitrary bytes.  Invariants: an error has a code and a message naming
 * the file; a success has a positive shape within the schema's limits,
 * finite non-negative heat, and episodes exactly when n_episodes > 0.
 */
#include "tests/fuzz/fuzz.h"

#include <math.h>

#include "analyze/analyze.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct analyze_heat_file h;
	struct util_err err = UTIL_ERR_INIT;
	char path[512];
	int rc;

	fuzz_write(path, sizeof(path), "heat.json", data, size);
	memset(&h, 0, sizeof(h));
	rc = analyze_heat_read(path, &h, &err);
	if (rc) {
		fuzz_note("refused", err.msg);
		fuzz_check(rc < 0 && err.code == rc && err.msg[0]);
		fuzz_check(strstr(err.msg, "heat.json") != NULL);
		analyze_heat_release(&h);
		return 0;
	}
	fuzz_note("accepted", NULL);
	fuzz_check(h.layers > 0 && h.experts > 0 && h.heat);
	fuzz_check(h.layers <= STORE_MAX_LAYERS && h.experts <= STORE_MAX_EXPERTS);
	fuzz_check(h.n_episodes >= 0 && (h.n_episodes > 0) == (h.episodes != NULL));
	fuzz_check(h.ranks >= 0 && h.slots >= 0);
	for (size_t i = 0; i < (size_t)h.layers * (size_t)h.experts; i++)
		fuzz_check(isfinite(h.heat[i]) && h.heat[i] >= 0);
	for (size_t i = 0; i < (size_t)h.n_episodes * h.layers * h.experts; i++)
		fuzz_check(isfinite(h.episodes[i]) && h.episodes[i] >= 0);
	analyze_heat_release(&h);
	return 0;
}

/*
 * fuzz_codec.c: the counts codec's decoder on arbitrary blobs (a trace may
 * come from anyone).  Invariants: store_codec_count and store_codec_decode
 * agree on whether a blob is well formed; a decoded blob never has more
 * than STORE_MAX_EXPERTS values; decoding with a count other than the
 * blob's fails; what decodes re-encodes to a blob that decodes to the same
 * values, within store_codec_bound.
 */
#include "tests/fuzz/fuzz.h"

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t n = store_codec_count(data, size);
	uint32_t *v, *w;
	uint8_t *enc;
	size_t elen;

	if (n < 0) {
		uint32_t one;
		fuzz_check(store_codec_decode(data, size, &one, 1) != 0);
		return 0;
	}
	fuzz_check(n <= STORE_MAX_EXPERTS);
	v = malloc(((size_t)n + 1) * sizeof(*v));
	w = malloc(((size_t)n + 1) * sizeof(*w));
	enc = malloc(store_codec_bound((size_t)n));
	fuzz_check(v && w && enc);
	/* a wrong count is an error, never a partial or overlong decode */
	fuzz_check(store_codec_decode(data, size, v, (size_t)n + 1) != 0);
	if (n > 0)
		fuzz_check(store_codec_decode(data, size, v, (size_t)n - 1) != 0);
	if (store_codec_decode(data, size, v, (size_t)n) == 0) {
		elen = store_codec_encode(v, (size_t)n, enc);
		fuzz_check(elen <= store_codec_bound((size_t)n));
		fuzz_check(store_codec_count(enc, elen) == n);
		fuzz_check(store_codec_decode(enc, elen, w, (size_t)n) == 0);
		fuzz_check(n == 0 || memcmp(v, w, (size_t)n * sizeof(*v)) == 0);
	}
	free(v);
	free(w);
	free(enc);
	return 0;
}

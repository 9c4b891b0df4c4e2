/*
 * codec.c: the counts codec.  One blob holds one layer's E counts of one
 * step.  Byte 0 is the codec tag, then the value count as a LEB128 varint.
 *
 * RICE (tag 1): one byte k (0..31), then a little-endian bit stream, LSB
 * first.  A value v with q = v >> k below RICE_ESC is q one-bits, a zero
 * bit, and the k low bits of v; otherwise RICE_ESC one-bits and the 32
 * bits of v.  Expert heat is roughly geometric around the layer's mean with
 * a heavy tail, which is what Rice codes suit: k is chosen per blob by
 * exact cost among a few candidates around log2(mean), and the escape keeps
 * every uint32 exact at a bounded cost (RICE_ESC + 32 bits).
 * RAW (tag 0): little-endian uint32s, chosen when Rice would not be smaller.
 */
#include "store/store.h"

#include <string.h>

#define RICE_ESC 24

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Returns bytes read or 0 on malformed input. */
static size_t get_varint(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t x = 0;

	for (size_t i = 0; i < len && i < 10; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

size_t store_codec_bound(size_t n)
{
	return 1 + 10 + 4 * n + 8;
}

/* Appends the low 32 bits of *acc as 4 little-endian bytes. */
static inline uint8_t *put32(uint8_t *p, uint64_t acc)
{
	p[0] = (uint8_t)acc;
	p[1] = (uint8_t)(acc >> 8);
	p[2] = (uint8_t)(acc >> 16);
	p[3] = (uint8_t)(acc >> 24);
	return p + 4;
}

size_t store_codec_encode(const uint32_t *v, size_t n, uint8_t *out)
{
	uint64_t sum = 0, best_bits = UINT64_MAX, bits[5] = { 0 };
	unsigned k0 = 0, best_k = 0, kl, kh;
	size_t hdr;

	for (size_t i = 0; i < n; i++)
		sum += v[i];
	if (n) {
		uint64_t mean = sum / n;
		while (k0 < 31 && (2ULL << k0) <= mean)
			k0++;
	}
	/* exact cost of a few k around log2(mean), in one pass */
	kl = k0 > 2 ? k0 - 2 : 0;
	kh = k0 + 2 > 31 ? 31 : k0 + 2;
	for (size_t i = 0; i < n; i++) {
		uint32_t x = v[i];
		for (unsigned k = kl; k <= kh; k++) {
			uint32_t q = x >> k;
			bits[k - kl] += q < RICE_ESC ? q + 1 + k : RICE_ESC + 32;
		}
	}
	for (unsigned k = kl; k <= kh; k++)
		if (bits[k - kl] < best_bits) {
			best_bits = bits[k - kl];
			best_k = k;
		}
	if ((best_bits + 7) / 8 + 1 >= 4 * n) {
		out[0] = STORE_CODEC_RAW;
		hdr = 1 + put_varint(out + 1, n);
		for (size_t i = 0; i < n; i++)
			put32(out + hdr + 4 * i, v[i]);
		return hdr + 4 * n;
	}
	out[0] = STORE_CODEC_RICE;
	hdr = 1 + put_varint(out + 1, n);
	out[hdr++] = (uint8_t)best_k;

	/* Bit writer: a 64-bit accumulator flushed 32 bits at a time; every code
	 * is at most 56 bits (q < 24 ones, a zero, k <= 31 low bits) or an
	 * escape written in two parts. */
	uint8_t *p = out + hdr;
	uint64_t acc = 0;
	unsigned nacc = 0;
	uint32_t kmask = best_k ? (uint32_t)((1ULL << best_k) - 1) : 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t q = v[i] >> best_k;
		uint64_t code;
		unsigned len;
		if (q < RICE_ESC) {
			code = ((1ULL << q) - 1) | ((uint64_t)(v[i] & kmask) << (q + 1));
			len = q + 1 + best_k;
		} else {
			acc |= ((1ULL << RICE_ESC) - 1) << nacc;
			nacc += RICE_ESC;
			if (nacc >= 32) {
				p = put32(p, acc);
				acc >>= 32;
				nacc -= 32;
			}
			code = v[i];
			len = 32;
		}
		if (len + nacc > 64)
			while (nacc >= 8) {
				*p++ = (uint8_t)acc;
				acc >>= 8;
				nacc -= 8;
			}
		acc |= code << nacc;
		nacc += len;
		if (nacc >= 32) {
			p = put32(p, acc);
			acc >>= 32;
			nacc -= 32;
		}
	}
	while (nacc > 0) {
		*p++ = (uint8_t)acc;
		acc >>= 8;
		nacc = nacc > 8 ? nacc - 8 : 0;
	}
	return (size_t)(p - out);
}

int64_t store_codec_count(const uint8_t *in, size_t len)
{
	uint64_t n;

	if (len < 2 || in[0] > STORE_CODEC_RICE)
		return UTIL_EPARSE;
	if (!get_varint(in + 1, len - 1, &n) || n > (uint64_t)STORE_MAX_EXPERTS)
		return UTIL_EPARSE;
	return (int64_t)n;
}

struct bitr {
	const uint8_t *p, *end;
	uint64_t acc;
	unsigned nacc;
};

/* Keeps at least 57 bits in the accumulator while input remains. */
static inline void br_fill(struct bitr *r)
{
	if (r->end - r->p >= 8 && r->nacc < 57) {
		uint64_t x;
		memcpy(&x, r->p, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
		x = __builtin_bswap64(x);
#endif
		r->acc |= x << r->nacc;
		unsigned take = (63 - r->nacc) >> 3;
		r->p += take;
		r->nacc += take * 8;
		r->acc &= r->nacc >= 64 ? ~0ULL : ((1ULL << r->nacc) - 1);
		return;
	}
	while (r->nacc <= 56 && r->p < r->end) {
		r->acc |= (uint64_t)*r->p++ << r->nacc;
		r->nacc += 8;
	}
}

static inline int br_get(struct bitr *r, unsigned n, uint32_t *out)
{
	if (r->nacc < n) {
		br_fill(r);
		if (r->nacc < n)
			return -1;
	}
	*out = n == 32 ? (uint32_t)r->acc : (uint32_t)(r->acc & ((1ULL << n) - 1));
	r->acc = n == 64 ? 0 : r->acc >> n;
	r->nacc -= n;
	return 0;
}

int store_codec_decode(const uint8_t *in, size_t len, uint32_t *v, size_t n)
{
	uint64_t cnt;
	size_t hdr;

	if (len < 2 || in[0] > STORE_CODEC_RICE)
		return UTIL_EPARSE;
	hdr = get_varint(in + 1, len - 1, &cnt);
	if (!hdr || cnt != n)
		return UTIL_EPARSE;
	hdr += 1;
	if (in[0] == STORE_CODEC_RAW) {
		if (len - hdr != 4 * n)
			return UTIL_EPARSE;
		for (size_t i = 0; i < n; i++) {
			const uint8_t *p = in + hdr + 4 * i;
			v[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			       (uint32_t)p[3] << 24;
		}
		return 0;
	}
	if (len <= hdr || in[hdr] > 31)
		return UTIL_EPARSE;
	unsigned k = in[hdr++];
	uint64_t kmask = (1ULL << k) - 1;
	struct bitr r = { in + hdr, in + len, 0, 0 };
	size_t i = 0;
	/* Fast path while 8 bytes remain: a branch-free refill leaves 56 to 63
	 * bits in the accumulator, enough for any code (q < RICE_ESC ones, a
	 * zero and k <= 31 bits: at most 55) or an escape (RICE_ESC + 32 =
	 * 56).  Bits above nacc are then real input bits, not zeros, which
	 * changes nothing: the unary part still ends where the input's does. */
	while (i < n && r.end - r.p >= 8) {
		uint64_t x;
		memcpy(&x, r.p, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
		x = __builtin_bswap64(x);
#endif
		r.acc |= x << r.nacc;
		r.p += (63 - r.nacc) >> 3;
		r.nacc |= 56;
		unsigned q = (unsigned)__builtin_ctzll(~r.acc | (1ULL << 63));
		if (q >= RICE_ESC) {
			v[i] = (uint32_t)(r.acc >> RICE_ESC);
			r.acc >>= RICE_ESC + 32;
			r.nacc -= RICE_ESC + 32;
			if ((v[i] >> k) < RICE_ESC)
				return UTIL_EPARSE; /* non-canonical escape */
		} else {
			unsigned used = q + 1 + k;
			v[i] = (q << k) | (uint32_t)((r.acc >> (q + 1)) & kmask);
			r.acc >>= used;
			r.nacc -= used;
		}
		i++;
	}
	/* Invariant from here: the accumulator's bits above nacc are zero, so
	 * ~acc has a one at or below bit nacc and ctz finds the end of the
	 * unary part. */
	r.acc &= r.nacc >= 64 ? ~0ULL : ((1ULL << r.nacc) - 1);
	for (; i < n; i++) {
		if (r.nacc < 57)
			br_fill(&r);
		uint64_t ones = ~r.acc;
		unsigned q = ones ? (unsigned)__builtin_ctzll(ones) : 64;
		if (q >= RICE_ESC) {
			r.acc >>= RICE_ESC;
			r.nacc -= RICE_ESC;
			if (br_get(&r, 32, &v[i]))
				return UTIL_EPARSE;
			if ((v[i] >> k) < RICE_ESC)
				return UTIL_EPARSE; /* non-canonical escape */
			continue;
		}
		unsigned used = q + 1 + k; /* <= 56 */
		if (used > r.nacc)
			return UTIL_EPARSE; /* the input ends inside this value */
		v[i] = (q << k) | (uint32_t)((r.acc >> (q + 1)) & kmask);
		r.acc >>= used;
		r.nacc -= used;
	}
	/* Only padding bits (< 8, zero) may remain. */
	if (r.p != r.end || r.nacc >= 8 || r.acc != 0)
		return UTIL_EPARSE;
	return 0;
}

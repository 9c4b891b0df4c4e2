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

/* Stores all 64 bits of acc at p, little-endian (p may be unaligned). */
static inline void put64(uint8_t *p, uint64_t acc)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	acc = __builtin_bswap64(acc);
#endif
	memcpy(p, &acc, 8);
}

/* Rice cost in bits of one value at parameter k. */
static inline uint32_t rice_bits(uint32_t x, unsigned k)
{
	uint32_t q = x >> k;

	return q < RICE_ESC ? q + 1 + k : RICE_ESC + 32;
}

#if defined(__GNUC__)
typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

/* One k's lanes: q the values >> k, half = q >> 1.  q >= RICE_ESC (an
 * escape) exactly when half >= RICE_ESC / 2, a signed comparison that
 * half (below 2^31) cannot get wrong.  *s sums q of the values coded in
 * unary, *e counts the escapes. */
static inline void cost_lanes(u32x4 q, u32x4 half, u32x4 *s, u32x4 *e)
{
	u32x4 esc = (u32x4)((i32x4)half >= RICE_ESC / 2);

	*s += q & ~esc;
	*e -= esc;
}

/* The five costs of k = kl .. kl + 4 (kl + 4 <= 31) over v[0..m), m a
 * multiple of 4 below 2^26 (no lane overflows), added to bits[]: four
 * values at a time (GCC and clang lower the vectors to SSE2, NEON or
 * scalars).  A value costs q + 1 + k bits, or RICE_ESC + 32 if escaped. */
static void rice_costs5(const uint32_t *v, size_t m, unsigned kl, uint64_t *bits)
{
	u32x4 s[5] = { { 0 } }, e[5] = { { 0 } };

	for (size_t i = 0; i < m; i += 4) {
		u32x4 q0, q1, q2, q3, q4, q5;
		memcpy(&q0, v + i, sizeof(q0));
		q0 >>= kl;
		q1 = q0 >> 1;
		q2 = q1 >> 1;
		q3 = q2 >> 1;
		q4 = q3 >> 1;
		q5 = q4 >> 1;
		cost_lanes(q0, q1, &s[0], &e[0]);
		cost_lanes(q1, q2, &s[1], &e[1]);
		cost_lanes(q2, q3, &s[2], &e[2]);
		cost_lanes(q3, q4, &s[3], &e[3]);
		cost_lanes(q4, q5, &s[4], &e[4]);
	}
	for (unsigned j = 0; j < 5; j++) {
		uint64_t sq = (uint64_t)s[j][0] + s[j][1] + s[j][2] + s[j][3];
		uint64_t esc = (uint64_t)e[j][0] + e[j][1] + e[j][2] + e[j][3];
		bits[j] += sq + (m - esc) * (1 + kl + j) + esc * (RICE_ESC + 32);
	}
}

/* The sum of v[0..m), m a multiple of 4 below 2^18: the low and high
 * 16 bits of each value summed apart, so no 32-bit lane overflows. */
static uint64_t sum4(const uint32_t *v, size_t m)
{
	u32x4 lo = { 0 }, hi = { 0 };

	for (size_t i = 0; i < m; i += 4) {
		u32x4 x;
		memcpy(&x, v + i, sizeof(x));
		lo += x & 0xffff;
		hi += x >> 16;
	}
	return (uint64_t)lo[0] + lo[1] + lo[2] + lo[3] +
	       (((uint64_t)hi[0] + hi[1] + hi[2] + hi[3]) << 16);
}
#endif

static uint64_t sum(const uint32_t *v, size_t n)
{
	uint64_t s = 0;
	size_t i = 0;

#if defined(__GNUC__)
	while (n - i >= 4) {
		size_t m = (n - i < ((size_t)1 << 16) ? n - i : (size_t)1 << 16) & ~(size_t)3;
		s += sum4(v + i, m);
		i += m;
	}
#endif
	for (; i < n; i++)
		s += v[i];
	return s;
}

/* bits[k - kl]: the exact cost of v at each k in kl..kh (at most 5). */
static void rice_costs(const uint32_t *v, size_t n, unsigned kl, unsigned kh, uint64_t *bits)
{
	size_t i = 0;

	for (unsigned j = 0; j < 5; j++)
		bits[j] = 0;
#if defined(__GNUC__)
	/* five k from kl (those past kh cost a few lanes, unused) */
	if (kl + 4 <= 31)
		while (n - i >= 4) {
			/* blocks of 2^24 values keep every lane in 32 bits */
			size_t m = (n - i < ((size_t)1 << 24) ? n - i : (size_t)1 << 24) & ~(size_t)3;
			rice_costs5(v + i, m, kl, bits);
			i += m;
		}
#endif
	for (; i < n; i++)
		for (unsigned k = kl; k <= kh; k++)
			bits[k - kl] += rice_bits(v[i], k);
}

size_t store_codec_encode(const uint32_t *v, size_t n, uint8_t *out)
{
	uint64_t best_bits = UINT64_MAX, bits[5];
	unsigned k0 = 0, best_k = 0, kl, kh;
	size_t hdr;

	if (n) {
		uint64_t mean = sum(v, n) / n;
		while (k0 < 31 && (2ULL << k0) <= mean)
			k0++;
	}
	/* exact cost of a few k around log2(mean), in one pass */
	kl = k0 > 2 ? k0 - 2 : 0;
	kh = k0 + 2 > 31 ? 31 : k0 + 2;
	rice_costs(v, n, kl, kh, bits);
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

	/* Bit writer: fewer than 8 bits wait in a 64-bit accumulator between
	 * values, so each code (at most 56 bits: q < 24 ones, a zero, k <= 31
	 * low bits; an escape is 24 ones and 32 bits) fits beside them; all 8
	 * bytes are stored and the pointer moves by the whole ones.  The last
	 * store reaches at most 8 bytes past the code, inside
	 * store_codec_bound(n) since Rice is chosen only below 4n bytes. */
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
			code = ((1ULL << RICE_ESC) - 1) | ((uint64_t)v[i] << RICE_ESC);
			len = RICE_ESC + 32;
		}
		acc |= code << nacc;
		nacc += len;
		put64(p, acc);
		p += nacc >> 3;
		acc >>= nacc & ~7u;
		nacc &= 7;
	}
	if (nacc > 0)
		*p++ = (uint8_t)acc;
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

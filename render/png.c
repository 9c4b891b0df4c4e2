/*
 * png.c: a small PNG writer for opaque chart pages.  cairo's own writer
 * hands every row to libpng's adaptive filter search and zlib level 6,
 * which costs more than drawing the chart; charts are flat colour, so the
 * "Up" filter plus a greedy LZ77 with fixed Huffman codes (RFC 1951
 * section 3.2.6) compresses them nearly as well in a fraction of the time.
 * Start at render_png_write(): rows -> filtered bytes -> deflate -> chunks.
 */
#include "render/render_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- checksums ------------------------------------------------------------ */

static uint32_t crc32_update(const uint32_t *table, uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void crc32_table(uint32_t *t)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		t[i] = c;
	}
}

static uint32_t adler32(const uint8_t *p, size_t n)
{
	uint32_t a = 1, b = 0;

	while (n) {
		size_t k = n < 5552 ? n : 5552; /* largest run without overflow */
		n -= k;
		for (; k >= 8; k -= 8, p += 8) {
			/* eight steps of a += x; b += a, in two independent halves */
			b += 8 * a + 8 * p[0] + 7 * p[1] + 6 * p[2] + 5 * p[3] + 4 * p[4] +
			     3 * p[5] + 2 * p[6] + p[7];
			a += p[0] + p[1] + p[2] + p[3] + p[4] + p[5] + p[6] + p[7];
		}
		while (k--) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	return b << 16 | a;
}

/* ---- deflate: greedy LZ77, fixed Huffman codes ---------------------------- */

struct bits {
	uint8_t *out;
	size_t len, cap;
	uint64_t acc;
	int n;
};

static void bits_put(struct bits *b, uint32_t v, int n)
{
	b->acc |= (uint64_t)v << b->n;
	b->n += n;
	while (b->n >= 8) {
		if (b->len == b->cap)
			b->out = xrealloc(b->out, b->cap *= 2);
		b->out[b->len++] = (uint8_t)b->acc;
		b->acc >>= 8;
		b->n -= 8;
	}
}

static uint32_t reverse(uint32_t v, int n)
{
	uint32_t r = 0;

	for (int i = 0; i < n; i++, v >>= 1)
		r = r << 1 | (v & 1);
	return r;
}

/* Fixed literal/length code of symbol s, bit-reversed for the LSB-first stream. */
static void fixed_code(int s, uint32_t *code, int *len)
{
	if (s < 144)
		*code = reverse(0x30 + (uint32_t)s, *len = 8);
	else if (s < 256)
		*code = reverse(0x190 + (uint32_t)(s - 144), *len = 9);
	else if (s < 280)
		*code = reverse((uint32_t)(s - 256), *len = 7);
	else
		*code = reverse(0xc0 + (uint32_t)(s - 280), *len = 8);
}

static int floor_log2(uint32_t x)
{
	int n = 0;

	while (x >>= 1)
		n++;
	return n;
}

struct codes {
	uint32_t code[288];
	int len[288];
	uint32_t dcode[30]; /* 5-bit distance codes, reversed */
};

static void put_match(struct bits *b, const struct codes *c, int len, int dist)
{
	/* length 3..258 -> symbol 257..285 + extra bits */
	int x = len - 3, sym, nx = 0, xv = 0;
	if (len == 258) {
		sym = 285;
	} else if (x < 8) {
		sym = 257 + x;
	} else {
		int nb = floor_log2((uint32_t)x);
		sym = 257 + 4 * (nb - 1) + ((x >> (nb - 2)) & 3);
		nx = nb - 2;
		xv = x & ((1 << nx) - 1);
	}
	bits_put(b, c->code[sym], c->len[sym]);
	if (nx)
		bits_put(b, (uint32_t)xv, nx);
	/* distance 1..32768 -> code 0..29 + extra bits */
	int y = dist - 1, dsym, ny = 0, yv = 0;
	if (y < 4) {
		dsym = y;
	} else {
		int nb = floor_log2((uint32_t)y);
		dsym = 2 * nb + ((y >> (nb - 1)) & 1);
		ny = nb - 1;
		yv = y & ((1 << ny) - 1);
	}
	bits_put(b, c->dcode[dsym], 5);
	if (ny)
		bits_put(b, (uint32_t)yv, ny);
}

#define WIN (1 << 15)
#define HBITS 15
#define CHAIN 8

static uint32_t hash4(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return (v * 2654435761u) >> (32 - HBITS);
}

/* Length of the common prefix of p and q, at most max: eight bytes at a
 * time, the first differing byte found from the XOR's trailing zeros. */
static size_t match_len(const uint8_t *p, const uint8_t *q, size_t max)
{
	size_t l = 0;

	while (l + 8 <= max) {
		uint64_t x, y;
		memcpy(&x, p + l, 8);
		memcpy(&y, q + l, 8);
		if (x != y) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return l + (size_t)(__builtin_ctzll(x ^ y) >> 3);
#else
			return l + (size_t)(__builtin_clzll(x ^ y) >> 3);
#endif
		}
		l += 8;
	}
	while (l < max && p[l] == q[l])
		l++;
	return l;
}

/* zlib stream (RFC 1950) of n bytes, one fixed-Huffman block. */
static uint8_t *deflate_fixed(const uint8_t *in, size_t n, size_t *out_len)
{
	struct bits b = { NULL, 0, 0, 0, 0 };
	struct codes c;
	int32_t *head = xmallocarray((size_t)1 << HBITS, sizeof(int32_t));
	int32_t *prev = xmallocarray(WIN, sizeof(int32_t));
	size_t i = 0;
	uint32_t ad = adler32(in, n);

	for (int s = 0; s < 288; s++)
		fixed_code(s, &c.code[s], &c.len[s]);
	for (int d = 0; d < 30; d++)
		c.dcode[d] = reverse((uint32_t)d, 5);
	memset(head, 0xff, sizeof(int32_t) << HBITS);
	b.cap = n / 4 + 64;
	b.out = xmalloc(b.cap);
	b.out[b.len++] = 0x78; /* deflate, 32K window */
	b.out[b.len++] = 0x01; /* fastest; 0x7801 % 31 == 0 */
	bits_put(&b, 1, 1);    /* BFINAL */
	bits_put(&b, 1, 2);    /* BTYPE 01: fixed codes */
	while (i < n) {
		int best = 0, bdist = 0;
		if (i + 4 <= n) {
			uint32_t h = hash4(in + i);
			int32_t cand = head[h];
			size_t maxlen = n - i < 258 ? n - i : 258;
			for (int k = 0; k < CHAIN && cand >= 0 && i - (size_t)cand <= WIN - 1; k++) {
				const uint8_t *p = in + cand, *q = in + i;
				if (p[best] == q[best]) {
					size_t l = match_len(p, q, maxlen);
					if ((int)l > best) {
						best = (int)l;
						bdist = (int)(i - (size_t)cand);
						if (l == maxlen)
							break;
					}
				}
				int32_t nx = prev[cand & (WIN - 1)];
				if (nx >= cand)
					break;
				cand = nx;
			}
			prev[i & (WIN - 1)] = head[h];
			head[h] = (int32_t)i;
		}
		if (best >= 4) {
			put_match(&b, &c, best, bdist);
			/* index the match's positions so later rows find them */
			size_t end = i + (size_t)best < n - 3 ? i + (size_t)best : n - 3;
			for (size_t j = i + 1; j < end; j++) {
				uint32_t h = hash4(in + j);
				prev[j & (WIN - 1)] = head[h];
				head[h] = (int32_t)j;
			}
			i += (size_t)best;
		} else {
			bits_put(&b, c.code[in[i]], c.len[in[i]]);
			i++;
		}
	}
	bits_put(&b, c.code[256], c.len[256]); /* end of block */
	if (b.n)
		bits_put(&b, 0, 8 - b.n);
	for (int k = 3; k >= 0; k--)
		bits_put(&b, (ad >> (8 * k)) & 0xff, 8);
	free(head);
	free(prev);
	*out_len = b.len;
	return b.out;
}

/* ---- chunks ------------------------------------------------------------------ */

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static cairo_status_t chunk(cairo_write_func_t wr, void *closure, const uint32_t *crct,
			    const char *type, const uint8_t *data, size_t n)
{
	uint8_t hdr[8], tail[4];
	uint32_t crc;

	be32(hdr, (uint32_t)n);
	memcpy(hdr + 4, type, 4);
	crc = crc32_update(crct, 0, hdr + 4, 4);
	crc = crc32_update(crct, crc, data, n);
	be32(tail, crc);
	if (wr(closure, hdr, 8) != CAIRO_STATUS_SUCCESS ||
	    (n && wr(closure, data, (unsigned int)n) != CAIRO_STATUS_SUCCESS) ||
	    wr(closure, tail, 4) != CAIRO_STATUS_SUCCESS)
		return CAIRO_STATUS_WRITE_ERROR;
	return CAIRO_STATUS_SUCCESS;
}

static const cairo_user_data_key_t huge_pixels;

cairo_surface_t *rint_png_surface_create(int w, int h)
{
	int stride = cairo_format_stride_for_width(CAIRO_FORMAT_ARGB32, w);
	size_t n = stride > 0 && h > 0 ? (size_t)stride * (size_t)h : 0;
	unsigned char *px = n ? util_malloc_large(n) : NULL;
	cairo_surface_t *sf;

	if (!px) /* cairo reports what is wrong with the size, or allocates */
		return cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
	memset(px, 0, n); /* as cairo_image_surface_create's pixels */
	sf = cairo_image_surface_create_for_data(px, CAIRO_FORMAT_ARGB32, w, h, stride);
	if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS ||
	    cairo_surface_set_user_data(sf, &huge_pixels, px, free) != CAIRO_STATUS_SUCCESS) {
		cairo_surface_destroy(sf);
		free(px);
		return cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
	}
	return sf;
}

cairo_status_t rint_png_write(cairo_surface_t *sf, cairo_write_func_t wr, void *closure)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	int w, h, stride;
	const uint8_t *px;
	uint8_t *raw, ihdr[13];
	size_t rowlen, zlen;
	uint32_t crct[256];
	cairo_status_t st;

	cairo_surface_flush(sf);
	if (cairo_surface_get_type(sf) != CAIRO_SURFACE_TYPE_IMAGE ||
	    (cairo_image_surface_get_format(sf) != CAIRO_FORMAT_ARGB32 &&
	     cairo_image_surface_get_format(sf) != CAIRO_FORMAT_RGB24))
		return cairo_surface_write_to_png_stream(sf, wr, closure);
	w = cairo_image_surface_get_width(sf);
	h = cairo_image_surface_get_height(sf);
	stride = cairo_image_surface_get_stride(sf);
	px = cairo_image_surface_get_data(sf);
	/* RGB rows, each with filter byte 2 (Up; the first row has nothing
	 * above, which Up treats as zeros); a translucent pixel sends the
	 * page to libpng, as cairo writes it */
	rowlen = 1 + 3 * (size_t)w;
	if ((size_t)h > SIZE_MAX / rowlen || !(raw = util_malloc_large((size_t)h * rowlen)))
		return CAIRO_STATUS_NO_MEMORY;
	uint32_t opaque = cairo_image_surface_get_format(sf) == CAIRO_FORMAT_ARGB32 ? 0xff000000u : 0;
	for (int y = 0; y < h; y++) {
		const uint32_t *row = (const uint32_t *)(const void *)(px + (size_t)y * stride);
		const uint32_t *up =
			y ? (const uint32_t *)(const void *)(px + (size_t)(y - 1) * stride) : row;
		uint32_t seen = opaque;
		uint8_t *o = raw + (size_t)y * rowlen;
		*o++ = 2;
		for (int x = 0; x < w; x++) {
			uint32_t v = row[x], u = y ? up[x] : 0;
			seen &= v;
			o[0] = (uint8_t)((v >> 16) - (u >> 16));
			o[1] = (uint8_t)((v >> 8) - (u >> 8));
			o[2] = (uint8_t)(v - u);
			o += 3;
		}
		if (seen != opaque) {
			free(raw);
			return cairo_surface_write_to_png_stream(sf, wr, closure);
		}
	}
	uint8_t *z = deflate_fixed(raw, (size_t)h * rowlen, &zlen);
	free(raw);

	crc32_table(crct);
	be32(ihdr, (uint32_t)w);
	be32(ihdr + 4, (uint32_t)h);
	ihdr[8] = 8;  /* bit depth */
	ihdr[9] = 2;  /* truecolour */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* adaptive filtering (per-row filter byte) */
	ihdr[12] = 0; /* no interlace */
	st = wr(closure, sig, sizeof(sig));
	if (st == CAIRO_STATUS_SUCCESS)
		st = chunk(wr, closure, crct, "IHDR", ihdr, sizeof(ihdr));
	for (size_t off = 0; st == CAIRO_STATUS_SUCCESS && off < zlen; off += 1 << 20) {
		size_t n = zlen - off < (1u << 20) ? zlen - off : 1u << 20;
		st = chunk(wr, closure, crct, "IDAT", z + off, n);
	}
	if (st == CAIRO_STATUS_SUCCESS)
		st = chunk(wr, closure, crct, "IEND", NULL, 0);
	free(z);
	return st;
}

/*
 * import_sglang.c: SGLang expert-distribution dumps (.pt, what
 * ExpertDistributionRecorder writes with torch.save into
 * SGLANG_EXPERT_DISTRIBUTION_RECORDER_DIR), read without torch or Python.
 *
 * A dump is a zip archive of stored (uncompressed) entries: PREFIX/data.pkl,
 * a pickle of the recorder's dict, and PREFIX/data/KEY, the raw little-endian
 * bytes of each tensor storage.  Reading goes in three layers; start at
 * collector_import_sglang at the bottom:
 *   - the zip's central directory (ZIP64 records too), every entry checked
 *     against its CRC-32 before a value of it is used;
 *   - a pickle interpreter for exactly what torch.save writes: dicts, lists,
 *     tuples, ints, floats, strings, None/bools, and tensors rebuilt by
 *     torch._utils._rebuild_tensor_v2 from persistent storage references.
 *     Anything else (another global, another opcode) is refused by name.
 *     Plain values inside lists (the per_token mode's input_ids, positions)
 *     are counted, not kept, so the parsed tree stays the size of its
 *     structure;
 *   - the recorder's modes: `stat` ({"logical_count": [slots, layers,
 *     experts]}) and `per_pass`/`per_token` ({"records": [{"forward_pass_id",
 *     "rank", "global_physical_count": [layers, physical slots], ...}],
 *     "last_physical_to_logical_map": [layers, physical slots]}).
 * Counts are read one forward pass at a time with pread, so memory is a few
 * passes whatever the dump's length.
 */
#include "collector/import_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* util_err_set whose value is visibly the (non-zero) code, so that the
 * static analyzers follow the error paths: they do not look into a variadic
 * function in another file. */
#define sg_fail(err, code, ...) (util_err_set((err), (code), __VA_ARGS__), (code))

/* ---- CRC-32 (zip's: reflected 0xEDB88320), slicing by eight ----------------- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

/* crc is the running value (start with 0). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	uint32_t c = ~crc;

	pthread_once(&crc_once, crc_init);
	while (n >= 8) {
		uint32_t a = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				  (uint32_t)p[3] << 24);
		c = crc_tab[7][a & 0xff] ^ crc_tab[6][(a >> 8) & 0xff] ^
		    crc_tab[5][(a >> 16) & 0xff] ^ crc_tab[4][a >> 24] ^ crc_tab[3][p[4]] ^
		    crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^ crc_tab[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* ---- the zip archive ------------------------------------------------------------ */

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* s for a one-line message: control bytes shown as '?', at most n - 1. */
static const char *printable(const char *s, char *buf, size_t n)
{
	size_t i = 0;

	for (; s[i] && i + 1 < n; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = 0;
	return buf;
}

struct zent {
	char *name;
	uint64_t lho;  /* local header offset */
	uint64_t off;  /* data offset, 0 until resolved */
	uint64_t size;
	uint32_t crc;
	int checked;   /* CRC verified */
};

/* One dump file: its archive and (after parsing) its pickle. */
struct pt {
	const char *path;
	int fd;
	uint64_t fsize;
	struct zent *ent;     /* sorted by name */
	size_t nent;
	char *prefix;         /* "archive/" */
	struct pk *pk;        /* parsed pickle */
};

#define PT_MAX_CD (256u << 20) /* central directory bytes */

static int pt_read(struct pt *f, uint64_t off, void *buf, size_t n, struct util_err *err)
{
	uint8_t *p = buf;

	if (off > f->fsize || n > f->fsize - off)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: truncated: %zu bytes at offset %llu are past the end (%llu "
				    "bytes)",
				    f->path, n, (unsigned long long)off,
				    (unsigned long long)f->fsize);
	while (n) {
		ssize_t r = pread(f->fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return sg_fail(err, UTIL_EIO, "cannot read '%s': %s", f->path,
					    r < 0 ? strerror(errno) : "unexpected end of file");
		p += r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
	return 0;
}

static int cmp_zent(const void *a, const void *b)
{
	return strcmp(((const struct zent *)a)->name, ((const struct zent *)b)->name);
}

static struct zent *pt_find(struct pt *f, const char *name)
{
	struct zent key = { .name = (char *)name };

	return f->nent ? bsearch(&key, f->ent, f->nent, sizeof(key), cmp_zent) : NULL;
}

/* Locates the end-of-central-directory record: *cd_off, *cd_size, *n. */
static int zip_end(struct pt *f, uint64_t *cd_off, uint64_t *cd_size, uint64_t *n,
		   struct util_err *err)
{
	uint8_t tail[65557], loc[20], z64[56];
	size_t tn = f->fsize < sizeof(tail) ? (size_t)f->fsize : sizeof(tail);
	uint64_t base = f->fsize - tn, eocd = 0;
	int rc, found = 0;

	if (f->fsize < 22)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: not a torch.save archive: %llu bytes, no zip end record",
				    f->path, (unsigned long long)f->fsize);
	if ((rc = pt_read(f, base, tail, tn, err)))
		return rc;
	for (size_t i = tn - 22 + 1; i-- > 0;) {
		if (le32(tail + i) == 0x06054b50 && i + 22 + le16(tail + i + 20) == tn) {
			eocd = base + i;
			found = 1;
			break;
		}
	}
	if (!found)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: not a torch.save archive: no zip end record (an incomplete "
				    "or foreign file)",
				    f->path);
	const uint8_t *e = tail + (eocd - base);
	if (le16(e + 4) != 0 || le16(e + 6) != 0)
		return sg_fail(err, UTIL_EPARSE, "%s: a multi-disk zip archive", f->path);
	*n = le16(e + 10);
	*cd_size = le32(e + 12);
	*cd_off = le32(e + 16);
	if (le16(e + 8) != le16(e + 10))
		return sg_fail(err, UTIL_EPARSE, "%s: zip end record: %u entries on this disk, "
				    "%u in all", f->path, le16(e + 8), le16(e + 10));
	if (*n == 0xffff || *cd_size == 0xffffffffu || *cd_off == 0xffffffffu) {
		/* ZIP64: the locator sits right before the end record */
		if (eocd < 20 || (rc = pt_read(f, eocd - 20, loc, sizeof(loc), err)))
			return rc ? rc : sg_fail(err, UTIL_EPARSE, "%s: no ZIP64 locator", f->path);
		if (le32(loc) != 0x07064b50)
			return sg_fail(err, UTIL_EPARSE,
					    "%s: zip end record asks for ZIP64, but no ZIP64 locator "
					    "precedes it",
					    f->path);
		uint64_t z = le64(loc + 8);
		if (z > eocd - 20 || eocd - 20 - z < sizeof(z64) ||
		    (rc = pt_read(f, z, z64, sizeof(z64), err)))
			return rc ? rc : sg_fail(err, UTIL_EPARSE,
						      "%s: ZIP64 locator points outside the file",
						      f->path);
		if (le32(z64) != 0x06064b50)
			return sg_fail(err, UTIL_EPARSE, "%s: bad ZIP64 end record signature",
					    f->path);
		*n = le64(z64 + 32);
		*cd_size = le64(z64 + 40);
		*cd_off = le64(z64 + 48);
		if (le64(z64 + 24) != *n)
			return sg_fail(err, UTIL_EPARSE, "%s: ZIP64 end record: entries on "
					    "this disk differ from the total", f->path);
		eocd = z;
	}
	if (*cd_off > eocd || *cd_size > eocd - *cd_off)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: zip central directory (%llu bytes at %llu) lies outside the "
				    "file",
				    f->path, (unsigned long long)*cd_size, (unsigned long long)*cd_off);
	if (*cd_size > PT_MAX_CD || *n > *cd_size / 46)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: zip central directory of %llu entries in %llu bytes is not "
				    "what torch.save writes",
				    f->path, (unsigned long long)*n, (unsigned long long)*cd_size);
	return 0;
}

static int zip_open(struct pt *f, struct util_err *err)
{
	uint64_t cd_off, cd_size, n;
	uint8_t *cd = NULL;
	size_t pos = 0;
	int rc;

	if ((rc = zip_end(f, &cd_off, &cd_size, &n, err)))
		return rc;
	if (!(cd = malloc(cd_size ? cd_size : 1)) ||
	    !(f->ent = calloc(n ? n : 1, sizeof(*f->ent)))) {
		free(cd);
		return sg_fail(err, UTIL_ENOMEM, "out of memory reading '%s'", f->path);
	}
	if ((rc = pt_read(f, cd_off, cd, cd_size, err)))
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		struct zent *z = &f->ent[f->nent];
		const uint8_t *h = cd + pos;
		uint64_t csize, usize, lho;
		size_t nl, xl, cl;
		if (cd_size - pos < 46 || le32(h) != 0x02014b50) {
			rc = sg_fail(err, UTIL_EPARSE,
					  "%s: zip central directory entry %llu is malformed", f->path,
					  (unsigned long long)i);
			goto out;
		}
		nl = le16(h + 28);
		xl = le16(h + 30);
		cl = le16(h + 32);
		if (cd_size - pos - 46 < nl + xl + cl) {
			rc = sg_fail(err, UTIL_EPARSE,
					  "%s: zip central directory entry %llu runs past the directory",
					  f->path, (unsigned long long)i);
			goto out;
		}
		if (!(z->name = malloc(nl + 1))) {
			rc = sg_fail(err, UTIL_ENOMEM, "out of memory reading '%s'", f->path);
			goto out;
		}
		f->nent++;
		memcpy(z->name, h + 46, nl);
		z->name[nl] = 0;
		for (size_t j = 0; j < nl; j++)
			if ((unsigned char)z->name[j] < 0x20 || z->name[j] == 0x7f) {
				rc = sg_fail(err, UTIL_EPARSE,
						  "%s: zip entry %llu has a control character in its "
						  "name",
						  f->path, (unsigned long long)i);
				goto out;
			}
		if (le16(h + 8) & 1) {
			rc = sg_fail(err, UTIL_EPARSE, "%s: zip entry '%s' is encrypted",
					  f->path, z->name);
			goto out;
		}
		if (le16(h + 10) != 0) {
			rc = sg_fail(err, UTIL_EPARSE,
					  "%s: zip entry '%s' is compressed (method %u); torch.save "
					  "stores entries uncompressed",
					  f->path, z->name, le16(h + 10));
			goto out;
		}
		z->crc = le32(h + 16);
		csize = le32(h + 20);
		usize = le32(h + 24);
		lho = le32(h + 42);
		/* ZIP64 extended information: the fields saturated above, in order */
		for (size_t x = 0; x + 4 <= xl;) {
			const uint8_t *e = h + 46 + nl + x;
			size_t id = le16(e), len = le16(e + 2), k = 4;
			if (x + 4 + len > xl)
				break;
			if (id == 1) {
				uint64_t *fld[3] = { &usize, &csize, &lho };
				for (int j = 0; j < 3; j++) {
					if (*fld[j] != 0xffffffffu)
						continue;
					if (k + 8 > 4 + len) {
						rc = sg_fail(err, UTIL_EPARSE,
								  "%s: zip entry '%s': short ZIP64 "
								  "extra field",
								  f->path, z->name);
						goto out;
					}
					*fld[j] = le64(e + k);
					k += 8;
				}
			}
			x += 4 + len;
		}
		if (csize != usize) {
			rc = sg_fail(err, UTIL_EPARSE,
					  "%s: zip entry '%s': stored size %llu differs from its size "
					  "%llu",
					  f->path, z->name, (unsigned long long)csize,
					  (unsigned long long)usize);
			goto out;
		}
		if (lho >= cd_off || usize > cd_off - lho) {
			rc = sg_fail(err, UTIL_EPARSE,
					  "%s: zip entry '%s' (%llu bytes at %llu) overlaps the central "
					  "directory",
					  f->path, z->name, (unsigned long long)usize,
					  (unsigned long long)lho);
			goto out;
		}
		z->size = usize;
		z->lho = lho;
		pos += 46 + nl + xl + cl;
	}
	qsort(f->ent, f->nent, sizeof(*f->ent), cmp_zent);
	for (size_t i = 1; i < f->nent; i++)
		if (!strcmp(f->ent[i].name, f->ent[i - 1].name)) {
			rc = sg_fail(err, UTIL_EPARSE, "%s: zip entry '%s' appears twice",
					  f->path, f->ent[i].name);
			goto out;
		}
	rc = 0;
out:
	free(cd);
	return rc;
}

/* Resolves where an entry's bytes start (after its local header). */
static int zent_resolve(struct pt *f, struct zent *z, struct util_err *err)
{
	uint8_t h[30];
	int rc;

	if (z->off)
		return 0;
	if ((rc = pt_read(f, z->lho, h, sizeof(h), err)))
		return rc;
	if (le32(h) != 0x04034b50)
		return sg_fail(err, UTIL_EPARSE, "%s: zip entry '%s': bad local header",
				    f->path, z->name);
	uint64_t off = z->lho + 30 + le16(h + 26) + le16(h + 28);
	if (le16(h + 26) != strlen(z->name) || off > f->fsize || z->size > f->fsize - off)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: zip entry '%s': local header disagrees with the directory",
				    f->path, z->name);
	z->off = off;
	return 0;
}

/* Reads the whole entry once to check its CRC-32. */
static int zent_check(struct pt *f, struct zent *z, struct util_err *err)
{
	uint8_t buf[1 << 16];
	uint32_t crc = 0;
	int rc;

	if (z->checked)
		return 0;
	if ((rc = zent_resolve(f, z, err)))
		return rc;
	for (uint64_t at = 0; at < z->size;) {
		size_t n = z->size - at < sizeof(buf) ? (size_t)(z->size - at) : sizeof(buf);
		if ((rc = pt_read(f, z->off + at, buf, n, err)))
			return rc;
		crc = crc32_update(crc, buf, n);
		at += n;
	}
	if (crc != z->crc)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: zip entry '%s' is corrupt (CRC-32 %08x, the directory says "
				    "%08x)",
				    f->path, z->name, crc, z->crc);
	z->checked = 1;
	return 0;
}

/* ---- the pickle ------------------------------------------------------------------- */

enum pk_type {
	PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, /* plain values */
	PV_TUPLE, PV_LIST, PV_DICT, PV_GLOBAL, PV_STORAGE, PV_TENSOR, PV_ODICT, PV_MARK,
};

enum pk_global { G_REBUILD, G_ODICT, G_STORAGE };

/* A value on the stack or in a container: plain values inline, the rest an
 * index into the object arena. */
struct pv {
	uint8_t t;
	union {
		int64_t i;
		double f;
		uint32_t o;
	} u;
};

#define PT_MAX_DIMS 4

struct dtype {
	const char *storage; /* torch.<X>Storage */
	const char *name;
	int size, is_int, is_signed;
};

/* clang-format off */
static const struct dtype dtypes[] = {
	{ "IntStorage",      "int32",    4, 1, 1 },
	{ "LongStorage",     "int64",    8, 1, 1 },
	{ "ShortStorage",    "int16",    2, 1, 1 },
	{ "CharStorage",     "int8",     1, 1, 1 },
	{ "ByteStorage",     "uint8",    1, 1, 0 },
	{ "BoolStorage",     "bool",     1, 0, 0 },
	{ "FloatStorage",    "float32",  4, 0, 0 },
	{ "DoubleStorage",   "float64",  8, 0, 0 },
	{ "HalfStorage",     "float16",  2, 0, 0 },
	{ "BFloat16Storage", "bfloat16", 2, 0, 0 },
};
/* clang-format on */

struct pobj {
	uint8_t t;
	uint8_t g;            /* PV_GLOBAL: enum pk_global; PV_STORAGE/TENSOR: dtype */
	uint32_t n, cap;      /* containers: values in kids (dict: key, value pairs) */
	uint64_t dropped;     /* PV_LIST: plain values counted, not kept */
	struct pv *kids;
	char *s;              /* PV_STR; PV_STORAGE: key */
	size_t slen;
	/* PV_STORAGE / PV_TENSOR */
	uint64_t numel;       /* storage elements */
	int64_t offset;
	int ndim;
	int64_t shape[PT_MAX_DIMS], stride[PT_MAX_DIMS];
	uint32_t storage;     /* PV_TENSOR: its PV_STORAGE object */
};

struct pk {
	struct pobj *obj;
	size_t nobj, capobj;
	struct pv *stack;
	size_t nstack, capstack;
	struct pv *memo;
	size_t nmemo, capmemo;
	struct pv root;
	size_t nkids;
};

/* Bounds far above what a dump holds (a 1000-pass per_token dump builds
 * some 20,000 objects; pickle batches appends by 1000, so the stack stays
 * shallow), so that a hostile pickle cannot make a small file cost
 * gigabytes. */
#define PK_MAX_STR (1u << 20)
#define PK_MAX_OBJ (1u << 20)
#define PK_MAX_STACK (1u << 20)
#define PK_MAX_MEMO (1u << 21)
#define PK_MAX_KIDS (1u << 22) /* values kept in containers, all together */

static void pk_free(struct pk *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->nobj; i++) {
		free(k->obj[i].kids);
		free(k->obj[i].s);
	}
	free(k->obj);
	free(k->stack);
	free(k->memo);
	free(k);
}

/* Buffered reader over one zip entry. */
struct rd {
	struct pt *f;
	uint64_t pos, end;
	uint8_t buf[1 << 16];
	size_t bpos, blen;
	struct util_err *err;
};

static int rd_get(struct rd *r, void *dst, size_t n)
{
	uint8_t *d = dst;

	while (n) {
		if (r->bpos == r->blen) {
			size_t m = r->end - r->pos < sizeof(r->buf) ? (size_t)(r->end - r->pos)
								    : sizeof(r->buf);
			int rc;
			if (m == 0)
				return sg_fail(r->err, UTIL_EPARSE,
						    "%s: data.pkl: the pickle ends without STOP",
						    r->f->path);
			if ((rc = pt_read(r->f, r->pos, r->buf, m, r->err)))
				return rc;
			r->pos += m;
			r->bpos = 0;
			r->blen = m;
		}
		size_t c = r->blen - r->bpos < n ? r->blen - r->bpos : n;
		memcpy(d, r->buf + r->bpos, c);
		r->bpos += c;
		d += c;
		n -= c;
	}
	return 0;
}

/* Sets the message of a malformed pickle; pk_bad is its value, visibly
 * non-zero (see sg_fail). */
static void pk_bad_set(struct rd *r, const char *fmt, ...) UTIL_PRINTF(2, 3);

static void pk_bad_set(struct rd *r, const char *fmt, ...)
{
	char m[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	util_err_set(r->err, UTIL_EPARSE, "%s: data.pkl: %s", r->f->path, m);
}

#define pk_bad(r, ...) (pk_bad_set((r), __VA_ARGS__), UTIL_EPARSE)

static int pk_new(struct pk *k, struct rd *r, int type, uint32_t *out)
{
	if (k->nobj == k->capobj) {
		size_t cap = k->capobj ? 2 * k->capobj : 64;
		struct pobj *p;
		if (cap > PK_MAX_OBJ)
			return pk_bad(r, "more than %u objects: not an SGLang dump", PK_MAX_OBJ);
		if (!(p = realloc(k->obj, cap * sizeof(*p))))
			return sg_fail(r->err, UTIL_ENOMEM, "out of memory reading '%s'",
					    r->f->path);
		k->obj = p;
		k->capobj = cap;
	}
	memset(&k->obj[k->nobj], 0, sizeof(k->obj[0]));
	k->obj[k->nobj].t = (uint8_t)type;
	*out = (uint32_t)k->nobj++;
	return 0;
}

static int pv_grow(struct pv **a, size_t *n, size_t *cap, size_t extra, struct rd *r)
{
	if (*n + extra > *cap) {
		size_t c = *cap ? *cap : 16;
		while (c < *n + extra)
			c *= 2;
		struct pv *p = realloc(*a, c * sizeof(*p));
		if (!p)
			return sg_fail(r->err, UTIL_ENOMEM, "out of memory reading '%s'",
					    r->f->path);
		*a = p;
		*cap = c;
	}
	return 0;
}

static int push(struct pk *k, struct rd *r, struct pv v)
{
	int rc;

	if (k->nstack >= PK_MAX_STACK)
		return pk_bad(r, "stack deeper than %u: not an SGLang dump", PK_MAX_STACK);
	if ((rc = pv_grow(&k->stack, &k->nstack, &k->capstack, 1, r)))
		return rc;
	k->stack[k->nstack++] = v;
	return 0;
}

static int push_obj(struct pk *k, struct rd *r, int type, uint32_t *o)
{
	struct pv v = { .t = (uint8_t)type };
	int rc;

	if ((rc = pk_new(k, r, type, o)))
		return rc;
	v.u.o = *o;
	return push(k, r, v);
}

static int pop(struct pk *k, struct rd *r, struct pv *v, const char *op)
{
	if (k->nstack == 0 || k->stack[k->nstack - 1].t == PV_MARK)
		return pk_bad(r, "%s on an empty stack", op);
	*v = k->stack[--k->nstack];
	return 0;
}

/* Index of the topmost MARK. */
static int find_mark(struct pk *k, struct rd *r, size_t *at, const char *op)
{
	for (size_t i = k->nstack; i-- > 0;)
		if (k->stack[i].t == PV_MARK) {
			*at = i;
			return 0;
		}
	return pk_bad(r, "%s without a MARK", op);
}

static int is_plain(const struct pv *v)
{
	return v->t <= PV_STR;
}

/* Adds n values to container c (a list keeps only non-plain ones). */
static int add_kids(struct pk *k, struct rd *r, uint32_t c, const struct pv *v, size_t n)
{
	struct pobj *o = &k->obj[c];
	size_t cn = o->n, cc = o->cap;
	int rc;

	if (o->t == PV_LIST) {
		size_t keep = 0;
		for (size_t i = 0; i < n; i++)
			keep += !is_plain(&v[i]);
		if ((rc = pv_grow(&o->kids, &cn, &cc, keep, r)))
			return rc;
		for (size_t i = 0; i < n; i++) {
			if (is_plain(&v[i]))
				o->dropped++;
			else
				o->kids[cn++] = v[i];
		}
	} else {
		if ((rc = pv_grow(&o->kids, &cn, &cc, n, r)))
			return rc;
		if (n)
			memcpy(o->kids + cn, v, n * sizeof(*v));
		cn += n;
	}
	k->nkids += cn - o->n;
	if (k->nkids > PK_MAX_KIDS)
		return pk_bad(r, "more than %u values in containers: not an SGLang dump",
			      PK_MAX_KIDS);
	o->n = (uint32_t)cn;
	o->cap = (uint32_t)(cc > UINT32_MAX ? UINT32_MAX : cc);
	return 0;
}

static int read_str(struct pk *k, struct rd *r, uint64_t n)
{
	uint32_t o;
	int rc;

	if (n > PK_MAX_STR)
		return pk_bad(r, "a string of %llu bytes (SGLang dumps hold short keys)",
			      (unsigned long long)n);
	if ((rc = push_obj(k, r, PV_STR, &o)))
		return rc;
	if (!(k->obj[o].s = malloc(n + 1)))
		return sg_fail(r->err, UTIL_ENOMEM, "out of memory reading '%s'", r->f->path);
	if ((rc = rd_get(r, k->obj[o].s, n)))
		return rc;
	k->obj[o].s[n] = 0;
	k->obj[o].slen = n;
	return 0;
}

static const char *pv_str(const struct pk *k, const struct pv *v)
{
	return v->t == PV_STR ? k->obj[v->u.o].s : NULL;
}

static int do_global(struct pk *k, struct rd *r, const char *mod, const char *name)
{
	struct pv v = { .t = PV_GLOBAL };
	uint32_t o;
	int rc, g = -1, dt = 0;

	if (!strcmp(mod, "torch._utils") && !strcmp(name, "_rebuild_tensor_v2"))
		g = G_REBUILD;
	else if (!strcmp(mod, "collections") && !strcmp(name, "OrderedDict"))
		g = G_ODICT;
	else if (!strcmp(mod, "torch"))
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(dtypes); i++)
			if (!strcmp(name, dtypes[i].storage)) {
				g = G_STORAGE;
				dt = (int)i;
			}
	if (g < 0) {
		char m[81], n[81];
		return pk_bad(r, "refers to %s.%s, which an SGLang expert-distribution dump "
			      "does not hold", printable(mod, m, sizeof(m)),
			      printable(name, n, sizeof(n)));
	}
	if ((rc = pk_new(k, r, PV_GLOBAL, &o)))
		return rc;
	k->obj[o].g = (uint8_t)(g == G_STORAGE ? G_STORAGE + dt : g);
	v.u.o = o;
	return push(k, r, v);
}

static int tuple_ints(const struct pk *k, const struct pv *t, int64_t *out, int *n)
{
	const struct pobj *o;

	if (t->t != PV_TUPLE)
		return -1;
	o = &k->obj[t->u.o];
	if (o->n > PT_MAX_DIMS)
		return -1;
	for (uint32_t i = 0; i < o->n; i++) {
		if (o->kids[i].t != PV_INT || o->kids[i].u.i < 0)
			return -1;
		out[i] = o->kids[i].u.i;
	}
	*n = (int)o->n;
	return 0;
}

/* REDUCE: OrderedDict() or _rebuild_tensor_v2(storage, offset, size,
 * stride, requires_grad, hooks[, metadata]). */
static int do_reduce(struct pk *k, struct rd *r)
{
	struct pv args = { 0 }, fn = { 0 };
	const struct pobj *a;
	uint32_t o;
	int rc, nd, ns;

	if ((rc = pop(k, r, &args, "REDUCE")) || (rc = pop(k, r, &fn, "REDUCE")))
		return rc;
	if (fn.t != PV_GLOBAL || args.t != PV_TUPLE)
		return pk_bad(r, "REDUCE of something other than a known global");
	a = &k->obj[args.u.o];
	if (k->obj[fn.u.o].g == G_ODICT) {
		if (a->n != 0)
			return pk_bad(r, "OrderedDict built from arguments");
		return push_obj(k, r, PV_ODICT, &o);
	}
	if (k->obj[fn.u.o].g != G_REBUILD)
		return pk_bad(r, "a storage type called as a function");
	if (a->n < 6 || a->n > 7)
		return pk_bad(r, "_rebuild_tensor_v2 with %u arguments", a->n);
	struct pv st = a->kids[0], off = a->kids[1], size = a->kids[2], stride = a->kids[3];
	struct pv rg = a->kids[4], hooks = a->kids[5];
	int64_t sh[PT_MAX_DIMS], sd[PT_MAX_DIMS];
	if (st.t != PV_STORAGE || off.t != PV_INT || off.u.i < 0 || rg.t != PV_BOOL ||
	    hooks.t != PV_ODICT || (a->n == 7 && !(a->kids[6].t == PV_DICT &&
						   k->obj[a->kids[6].u.o].n == 0)))
		return pk_bad(r, "_rebuild_tensor_v2 with arguments torch.save does not write");
	if (k->obj[hooks.u.o].n)
		return pk_bad(r, "a tensor with backward hooks");
	if (tuple_ints(k, &size, sh, &nd) || tuple_ints(k, &stride, sd, &ns) || nd != ns)
		return pk_bad(r, "a tensor whose size and stride are not tuples of up to %d "
			      "non-negative ints of one length", PT_MAX_DIMS);
	/* the elements it reaches must lie inside its storage */
	uint64_t last = (uint64_t)off.u.i, numel = 1;
	for (int i = 0; i < nd; i++) {
		if (sh[i] > (int64_t)1 << 40)
			return pk_bad(r, "a tensor dimension of %lld", (long long)sh[i]);
		numel *= (uint64_t)sh[i];
		if (numel > (uint64_t)1 << 40)
			return pk_bad(r, "a tensor of more than 2^40 elements");
		if (sh[i] && sd[i] > ((int64_t)1 << 40))
			return pk_bad(r, "a tensor stride of %lld", (long long)sd[i]);
		last += sh[i] ? (uint64_t)(sh[i] - 1) * (uint64_t)sd[i] : 0;
	}
	const struct pobj *so = &k->obj[st.u.o];
	if (numel && last >= so->numel) {
		char key[81];
		return pk_bad(r, "a tensor reaching element %llu of storage '%s', which has %llu",
			      (unsigned long long)last, printable(so->s, key, sizeof(key)),
			      (unsigned long long)so->numel);
	}
	if ((rc = push_obj(k, r, PV_TENSOR, &o)))
		return rc;
	struct pobj *t = &k->obj[o];
	t->g = k->obj[st.u.o].g;
	t->storage = st.u.o;
	t->offset = off.u.i;
	t->ndim = nd;
	t->numel = numel;
	memcpy(t->shape, sh, sizeof(sh));
	memcpy(t->stride, sd, sizeof(sd));
	return 0;
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel). */
static int do_persid(struct pk *k, struct rd *r)
{
	struct pv id = { 0 };
	const struct pobj *t;
	uint32_t o;
	int rc;

	if ((rc = pop(k, r, &id, "BINPERSID")))
		return rc;
	if (id.t != PV_TUPLE || (t = &k->obj[id.u.o])->n != 5 ||
	    !pv_str(k, &t->kids[0]) || strcmp(pv_str(k, &t->kids[0]), "storage") ||
	    t->kids[1].t != PV_GLOBAL || k->obj[t->kids[1].u.o].g < G_STORAGE ||
	    !pv_str(k, &t->kids[2]) || !pv_str(k, &t->kids[3]) || t->kids[4].t != PV_INT ||
	    t->kids[4].u.i < 0)
		return pk_bad(r, "a persistent id other than ('storage', type, key, location, "
			      "numel)");
	const char *key = pv_str(k, &t->kids[2]);
	uint8_t g = (uint8_t)(k->obj[t->kids[1].u.o].g - G_STORAGE);
	uint64_t numel = (uint64_t)t->kids[4].u.i;
	char *s = strdup(key);
	if (!s)
		return sg_fail(r->err, UTIL_ENOMEM, "out of memory reading '%s'", r->f->path);
	if ((rc = push_obj(k, r, PV_STORAGE, &o))) {
		free(s);
		return rc;
	}
	k->obj[o].s = s;
	k->obj[o].g = g;
	k->obj[o].numel = numel;
	return 0;
}

static int memo_put(struct pk *k, struct rd *r, uint64_t idx)
{
	int rc;

	if (k->nstack == 0 || k->stack[k->nstack - 1].t == PV_MARK)
		return pk_bad(r, "memo of an empty stack");
	if (idx > k->nmemo)
		return pk_bad(r, "memo key %llu skips ahead of %zu", (unsigned long long)idx,
			      k->nmemo);
	if (idx == k->nmemo) {
		if (k->nmemo >= PK_MAX_MEMO)
			return pk_bad(r, "more than %u memo entries: not an SGLang dump",
				      PK_MAX_MEMO);
		if ((rc = pv_grow(&k->memo, &k->nmemo, &k->capmemo, 1, r)))
			return rc;
		k->nmemo++;
	}
	k->memo[idx] = k->stack[k->nstack - 1];
	return 0;
}

static int memo_get(struct pk *k, struct rd *r, uint64_t idx)
{
	if (idx >= k->nmemo)
		return pk_bad(r, "memo key %llu was never stored", (unsigned long long)idx);
	return push(k, r, k->memo[idx]);
}

/* Builds a tuple from the top n values (n < 0: down to the MARK). */
static int make_tuple(struct pk *k, struct rd *r, int n, int type, const char *op)
{
	size_t from = 0;
	uint32_t o;
	int rc;

	if (n < 0) {
		if ((rc = find_mark(k, r, &from, op)))
			return rc;
		from++;
	} else {
		if (k->nstack < (size_t)n)
			return pk_bad(r, "%s on a short stack", op);
		from = k->nstack - (size_t)n;
		for (size_t i = from; i < k->nstack; i++)
			if (k->stack[i].t == PV_MARK)
				return pk_bad(r, "%s across a MARK", op);
	}
	size_t cnt = k->nstack - from;
	if ((rc = pk_new(k, r, type, &o)) ||
	    (cnt && (rc = add_kids(k, r, o, k->stack + from, cnt))))
		return rc;
	k->nstack = n < 0 ? from - 1 : from;
	struct pv v = { .t = (uint8_t)type };
	v.u.o = o;
	return push(k, r, v);
}

static int dict_check_keys(struct rd *r, const struct pv *kv, size_t n)
{
	for (size_t i = 0; i < n; i += 2)
		if (!is_plain(&kv[i]))
			return pk_bad(r, "a dict key that is not a plain value");
	return 0;
}

/* DICT: the values since the MARK, as key, value pairs. */
static int pk_op_dict(struct pk *k, struct rd *r)
{
	size_t at = 0;
	int rc;

	if ((rc = find_mark(k, r, &at, "DICT")))
		return rc;
	if ((k->nstack - at - 1) % 2)
		return pk_bad(r, "DICT with an odd number of values");
	if ((rc = dict_check_keys(r, k->stack + at + 1, k->nstack - at - 1)))
		return rc;
	return make_tuple(k, r, -1, PV_DICT, "DICT");
}

static int pk_op_append(struct pk *k, struct rd *r)
{
	struct pv v = { 0 };
	int rc;

	if ((rc = pop(k, r, &v, "APPEND")))
		return rc;
	if (!k->nstack || k->stack[k->nstack - 1].t != PV_LIST)
		return pk_bad(r, "APPEND to something other than a list");
	return add_kids(k, r, k->stack[k->nstack - 1].u.o, &v, 1);
}

static int pk_op_appends(struct pk *k, struct rd *r)
{
	size_t at = 0;
	int rc;

	if ((rc = find_mark(k, r, &at, "APPENDS")))
		return rc;
	if (at == 0 || k->stack[at - 1].t != PV_LIST)
		return pk_bad(r, "APPENDS to something other than a list");
	if ((rc = add_kids(k, r, k->stack[at - 1].u.o, k->stack + at + 1, k->nstack - at - 1)))
		return rc;
	k->nstack = at;
	return 0;
}

/* SETITEM ('s': one key, value pair) and SETITEMS ('u': those since the
 * MARK) into the dict below them. */
static int pk_op_setitems(struct pk *k, struct rd *r, uint8_t op)
{
	size_t at = 0;
	int rc;

	if (op == 's') {
		if (k->nstack < 3)
			return pk_bad(r, "SETITEM on a short stack");
		at = k->nstack - 3;
		if (k->stack[at + 1].t == PV_MARK || k->stack[at + 2].t == PV_MARK)
			return pk_bad(r, "SETITEM across a MARK");
		at++; /* values from at, the dict below */
	} else {
		if ((rc = find_mark(k, r, &at, "SETITEMS")))
			return rc;
		at++;
	}
	if (at < 2 && op == 'u')
		return pk_bad(r, "SETITEMS without a dict");
	size_t d = op == 's' ? at - 1 : at - 2;
	if (k->stack[d].t != PV_DICT && k->stack[d].t != PV_ODICT)
		return pk_bad(r, "SETITEM on something other than a dict");
	if ((k->nstack - at) % 2)
		return pk_bad(r, "SETITEMS with an odd number of values");
	if ((rc = dict_check_keys(r, k->stack + at, k->nstack - at)) ||
	    (rc = add_kids(k, r, k->stack[d].u.o, k->stack + at, k->nstack - at)))
		return rc;
	k->nstack = op == 's' ? at : at - 1;
	return 0;
}

/* LONG1: a little-endian two's complement integer of up to 8 bytes. */
static int pk_op_long1(struct pk *k, struct rd *r)
{
	struct pv v = { 0 };
	uint8_t b[1], d[8] = { 0 };
	uint64_t u = 0;
	int rc;

	if ((rc = rd_get(r, b, 1)))
		return rc;
	size_t n = b[0];
	if (n > 8)
		return pk_bad(r, "an integer of %zu bytes (more than 64 bits)", n);
	if ((rc = rd_get(r, d, n)))
		return rc;
	for (size_t i = 0; i < n; i++)
		u |= (uint64_t)d[i] << (8 * i);
	if (n && n < 8 && (d[n - 1] & 0x80))
		u |= ~(uint64_t)0 << (8 * n); /* sign extension */
	v.t = PV_INT;
	memcpy(&v.u.i, &u, sizeof(u));
	return push(k, r, v);
}

/* BININT ('J', 4 bytes signed), BININT1 ('K'), BININT2 ('M'), and BINFLOAT
 * ('G', big-endian). */
static int pk_op_number(struct pk *k, struct rd *r, uint8_t op)
{
	static const size_t len[] = { ['J'] = 4, ['K'] = 1, ['M'] = 2, ['G'] = 8 };
	struct pv v = { 0 };
	uint8_t b[8];
	uint64_t u = 0;
	int rc;

	if ((rc = rd_get(r, b, len[op])))
		return rc;
	v.t = PV_INT;
	switch (op) {
	case 'J': v.u.i = (int32_t)le32(b); break;
	case 'K': v.u.i = b[0]; break;
	case 'M': v.u.i = le16(b); break;
	default:
		for (int i = 0; i < 8; i++)
			u = u << 8 | b[i];
		v.t = PV_FLOAT;
		memcpy(&v.u.f, &u, sizeof(u));
		break;
	}
	return push(k, r, v);
}

/* BINUNICODE ('X'), SHORT_BINUNICODE (0x8c), BINUNICODE8 (0x8d). */
static int pk_op_str(struct pk *k, struct rd *r, uint8_t op)
{
	uint8_t b[8];
	int rc;

	if (op == 'X')
		return (rc = rd_get(r, b, 4)) ? rc : read_str(k, r, le32(b));
	if (op == 0x8c)
		return (rc = rd_get(r, b, 1)) ? rc : read_str(k, r, b[0]);
	return (rc = rd_get(r, b, 8)) ? rc : read_str(k, r, le64(b));
}

/* GLOBAL: module\nname\n. */
static int pk_op_global(struct pk *k, struct rd *r)
{
	char line[2][128];
	uint8_t b[1];
	int rc;

	for (int j = 0; j < 2; j++) {
		size_t n = 0;
		for (;;) {
			if ((rc = rd_get(r, b, 1)))
				return rc;
			if (b[0] == '\n')
				break;
			if (n + 1 >= sizeof(line[j]))
				return pk_bad(r, "GLOBAL name longer than %zu bytes",
					      sizeof(line[j]) - 1);
			line[j][n++] = (char)b[0];
		}
		line[j][n] = 0;
	}
	return do_global(k, r, line[0], line[1]);
}

static int pk_op_stack_global(struct pk *k, struct rd *r)
{
	struct pv v = { 0 }, w = { 0 };
	int rc;

	if ((rc = pop(k, r, &w, "STACK_GLOBAL")) || (rc = pop(k, r, &v, "STACK_GLOBAL")))
		return rc;
	if (!pv_str(k, &v) || !pv_str(k, &w))
		return pk_bad(r, "STACK_GLOBAL of something other than two strings");
	return do_global(k, r, pv_str(k, &v), pv_str(k, &w));
}

/* BINPUT ('q'), LONG_BINPUT ('r'), MEMOIZE (0x94), BINGET ('h'),
 * LONG_BINGET ('j'). */
static int pk_op_memo(struct pk *k, struct rd *r, uint8_t op)
{
	uint8_t b[4];
	int rc;

	switch (op) {
	case 'q': return (rc = rd_get(r, b, 1)) ? rc : memo_put(k, r, b[0]);
	case 'r': return (rc = rd_get(r, b, 4)) ? rc : memo_put(k, r, le32(b));
	case 0x94: return memo_put(k, r, k->nmemo);
	case 'h': return (rc = rd_get(r, b, 1)) ? rc : memo_get(k, r, b[0]);
	default: return (rc = rd_get(r, b, 4)) ? rc : memo_get(k, r, le32(b));
	}
}

/* One opcode other than PROTO, FRAME and STOP. */
static int pk_op(struct pk *k, struct rd *r, uint8_t op)
{
	struct pv v = { 0 };

	switch (op) {
	case '(': /* MARK */
		v.t = PV_MARK;
		return push(k, r, v);
	case '}': return push_obj(k, r, PV_DICT, &v.u.o);
	case ']': return push_obj(k, r, PV_LIST, &v.u.o);
	case ')': return make_tuple(k, r, 0, PV_TUPLE, "EMPTY_TUPLE");
	case 't': return make_tuple(k, r, -1, PV_TUPLE, "TUPLE");
	case 0x85: return make_tuple(k, r, 1, PV_TUPLE, "TUPLE1");
	case 0x86: return make_tuple(k, r, 2, PV_TUPLE, "TUPLE2");
	case 0x87: return make_tuple(k, r, 3, PV_TUPLE, "TUPLE3");
	case 'l': return make_tuple(k, r, -1, PV_LIST, "LIST");
	case 'd': return pk_op_dict(k, r);
	case 'a': return pk_op_append(k, r);
	case 'e': return pk_op_appends(k, r);
	case 's': case 'u': return pk_op_setitems(k, r, op);
	case 'J': case 'K': case 'M': case 'G': return pk_op_number(k, r, op);
	case 0x8a: return pk_op_long1(k, r);
	case 'N': v.t = PV_NONE; return push(k, r, v);
	case 0x88: v.t = PV_BOOL; v.u.i = 1; return push(k, r, v);
	case 0x89: v.t = PV_BOOL; v.u.i = 0; return push(k, r, v);
	case 'X': case 0x8c: case 0x8d: return pk_op_str(k, r, op);
	case 'c': return pk_op_global(k, r);
	case 0x93: return pk_op_stack_global(k, r);
	case 'q': case 'r': case 0x94: case 'h': case 'j': return pk_op_memo(k, r, op);
	case 'R': return do_reduce(k, r);
	case 'Q': return do_persid(k, r);
	default:
		return pk_bad(r, "opcode 0x%02x, which torch.save does not write into an "
			      "SGLang dump", op);
	}
}

/* The interpreter: PROTO first, then opcodes until STOP leaves the one
 * value, the root. */
static int pk_parse(struct pt *f, struct zent *z, struct pk **out, struct util_err *err)
{
	struct pk *k = calloc(1, sizeof(*k));
	struct rd *r = malloc(sizeof(*r));
	uint8_t b[8];
	int rc = 0, proto = 0;

	if (!k || !r) {
		free(k);
		free(r);
		return sg_fail(err, UTIL_ENOMEM, "out of memory reading '%s'", f->path);
	}
	r->f = f;
	r->pos = z->off;
	r->end = z->off + z->size;
	r->bpos = r->blen = 0;
	r->err = err;
	for (;;) {
		uint8_t op;
		if ((rc = rd_get(r, &op, 1)))
			break;
		if (proto == 0 && op != 0x80) {
			rc = pk_bad(r, "does not start with a PROTO opcode (protocol 2 to 5)");
			break;
		}
		if (op == 0x80) { /* PROTO */
			if ((rc = rd_get(r, b, 1)))
				break;
			if (b[0] < 2 || b[0] > 5 || proto) {
				rc = pk_bad(r, "pickle protocol %u (torch.save writes 2 to 5)", b[0]);
				break;
			}
			proto = b[0];
		} else if (op == 0x95) { /* FRAME: a length hint */
			if ((rc = rd_get(r, b, 8)))
				break;
		} else if (op == '.') { /* STOP */
			if (k->nstack != 1 || k->stack[0].t == PV_MARK) {
				rc = pk_bad(r, "STOP with %zu values on the stack", k->nstack);
				break;
			}
			k->root = k->stack[0];
			if (r->end - r->pos + (r->blen - r->bpos) != 0) {
				rc = pk_bad(r, "bytes after STOP");
				break;
			}
			*out = k;
			k = NULL;
			rc = 0;
			break;
		} else if ((rc = pk_op(k, r, op))) {
			break;
		}
	}
	pk_free(k);
	free(r);
	return rc;
}

/* ---- one dump file ------------------------------------------------------------------ */

static void pt_close(struct pt *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	for (size_t i = 0; i < f->nent; i++)
		free(f->ent[i].name);
	free(f->ent);
	free(f->prefix);
	pk_free(f->pk);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

static int pt_open(struct pt *f, const char *path, struct util_err *err)
{
	struct stat sb;
	struct zent *pkl = NULL;
	int rc;

	memset(f, 0, sizeof(*f));
	f->path = path;
	if ((f->fd = open(path, O_RDONLY)) < 0)
		return sg_fail(err, errno == ENOENT ? UTIL_ENOTFOUND : UTIL_EIO,
			       "cannot open '%s': %s", path, strerror(errno));
	if (fstat(f->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		return sg_fail(err, UTIL_EIO, "cannot read '%s': not a regular file", path);
	f->fsize = (uint64_t)sb.st_size;
	if ((rc = zip_open(f, err)))
		return rc;
	/* the pickle is PREFIX/data.pkl, PREFIX one directory (torch names it) */
	for (size_t i = 0; i < f->nent; i++) {
		const char *n = f->ent[i].name, *sl = strchr(n, '/');
		if (sl && !strcmp(sl + 1, "data.pkl")) {
			if (pkl)
				return sg_fail(err, UTIL_EPARSE,
						    "%s: two pickles in the archive ('%s', '%s')", path,
						    pkl->name, n);
			pkl = &f->ent[i];
		}
	}
	if (!pkl)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: no PREFIX/data.pkl in the archive: not a torch.save file",
				    path);
	size_t pl = (size_t)(strchr(pkl->name, '/') - pkl->name) + 1;
	if (!(f->prefix = strndup(pkl->name, pl)))
		return sg_fail(err, UTIL_ENOMEM, "out of memory reading '%s'", path);
	{
		/* torch writes "little" here; a big-endian dump would need swapping */
		char name[512], bo[8] = { 0 };
		struct zent *z;
		snprintf(name, sizeof(name), "%sbyteorder", f->prefix);
		if ((z = pt_find(f, name))) {
			if ((rc = zent_check(f, z, err)))
				return rc;
			if (z->size > 7 || (rc = pt_read(f, z->off, bo, (size_t)z->size, err)))
				return rc ? rc : sg_fail(err, UTIL_EPARSE,
							      "%s: unknown byteorder entry", path);
			if (strcmp(bo, "little"))
				return sg_fail(err, UTIL_EPARSE,
						    "%s: byte order '%s'; only little-endian dumps "
						    "are read",
						    path, printable(bo, name, sizeof(name)));
		}
	}
	if ((rc = zent_check(f, pkl, err)))
		return rc;
	return pk_parse(f, pkl, &f->pk, err);
}

/* The storage entry of tensor t, CRC-checked and sized. */
static int tensor_entry(struct pt *f, const struct pobj *t, struct zent **out, const char *field,
			struct util_err *err)
{
	const struct pobj *s = &f->pk->obj[t->storage];
	const struct dtype *dt = &dtypes[t->g];
	char name[600];
	struct zent *z;
	int rc;

	char key[81];
	snprintf(name, sizeof(name), "%sdata/%s", f->prefix, printable(s->s, key, sizeof(key)));
	if (strlen(s->s) >= sizeof(key) || strcmp(key, s->s))
		return sg_fail(err, UTIL_EPARSE, "%s: field '%s': storage key '%s' is not "
				    "one torch writes", f->path, field, key);
	if (!(z = pt_find(f, name)))
		return sg_fail(err, UTIL_EPARSE, "%s: field '%s': storage '%s' is missing from "
				    "the archive", f->path, field, name);
	if (z->size / (uint64_t)dt->size < s->numel || z->size % (uint64_t)dt->size)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: field '%s': storage '%s' holds %llu bytes, not %llu %s "
				    "values",
				    f->path, field, name, (unsigned long long)z->size,
				    (unsigned long long)s->numel, dt->name);
	if ((rc = zent_check(f, z, err)))
		return rc;
	*out = z;
	return 0;
}

/* An integer tensor of ndim dimensions (or, if ndim2 > 0, of ndim2), row-
 * major contiguous as SGLang's are. */
static int want_tensor(struct pt *f, const struct pv *v, const char *field, int ndim, int ndim2,
		       const struct pobj **out, struct util_err *err)
{
	const struct pobj *t;

	if (!v || v->t != PV_TENSOR)
		return sg_fail(err, UTIL_EPARSE, "%s: field '%s': %s", f->path, field,
				    v ? "not a tensor" : "missing");
	t = &f->pk->obj[v->u.o];
	if (t->ndim != ndim && t->ndim != ndim2)
		return sg_fail(err, UTIL_EPARSE, "%s: field '%s': %d dimensions, expected %d",
				    f->path, field, t->ndim, ndim);
	if (!dtypes[t->g].is_int)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: field '%s': a %s tensor; SGLang writes integer counts",
				    f->path, field, dtypes[t->g].name);
	int64_t expect = 1;
	for (int i = t->ndim; i-- > 0;) {
		if (t->shape[i] > 1 && t->stride[i] != expect)
			return sg_fail(err, UTIL_EPARSE,
					    "%s: field '%s': a non-contiguous tensor (stride %lld "
					    "in dimension %d); SGLang writes contiguous ones",
					    f->path, field, (long long)t->stride[i], i);
		expect *= t->shape[i] ? t->shape[i] : 1;
	}
	*out = t;
	return 0;
}

/* Reads n values from element `first` of tensor t into out as uint32
 * (map: allow any non-negative value below limit). */
static int tensor_read(struct pt *f, const struct pobj *t, struct zent *z, uint64_t first,
		       size_t n, uint32_t *out, void *scratch, const char *field,
		       struct util_err *err)
{
	const struct dtype *dt = &dtypes[t->g];
	const uint8_t *p = scratch;
	uint64_t at = z->off + ((uint64_t)t->offset + first) * (uint64_t)dt->size;
	int rc;

	if ((rc = pt_read(f, at, scratch, n * (size_t)dt->size, err)))
		return rc;
	for (size_t i = 0; i < n; i++, p += dt->size) {
		int64_t x;
		switch (dt->size) {
		case 1: x = dt->is_signed ? (int8_t)p[0] : p[0]; break;
		case 2: x = dt->is_signed ? (int16_t)le16(p) : le16(p); break;
		case 4: x = (int32_t)le32(p); break;
		default: x = (int64_t)le64(p); break;
		}
		if (x < 0 || x > (int64_t)UINT32_MAX)
			return sg_fail(err, UTIL_EPARSE,
					    "%s: field '%s': element %llu is %lld, not a count (0 to "
					    "2^32-1)",
					    f->path, field, (unsigned long long)first + i,
					    (long long)x);
		out[i] = (uint32_t)x;
	}
	return 0;
}

static const struct pv *dict_get(const struct pk *k, const struct pv *d, const char *key)
{
	const struct pobj *o;

	if (!d || d->t != PV_DICT)
		return NULL;
	o = &k->obj[d->u.o];
	for (uint32_t i = o->n; i >= 2; i -= 2) /* the last binding wins, as in Python */
		if (pv_str(k, &o->kids[i - 2]) && !strcmp(pv_str(k, &o->kids[i - 2]), key))
			return &o->kids[i - 1];
	return NULL;
}

/* ---- the recorder's modes -------------------------------------------------------- */

enum { MODE_STAT = 1, MODE_PASS };

/* One per_pass record: where its counts are. */
struct prec {
	int64_t fp;         /* forward_pass_id */
	int64_t rank;       /* -1 if absent */
	uint32_t file, idx; /* dump file, index in its records */
	const struct pobj *t;
	struct zent *z;
};

static int cmp_prec(const void *a, const void *b)
{
	const struct prec *x = a, *y = b;

	if (x->fp != y->fp)
		return x->fp < y->fp ? -1 : 1;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

struct sg {
	struct pt *f;
	size_t nf;
	int mode;
	int64_t L, E, P;              /* model layers, logical experts, physical slots */
	/* stat */
	const struct pobj **stat;     /* per file: logical_count */
	struct zent **statz;
	/* per_pass */
	struct prec *rec;
	size_t nrec;
	int32_t *p2l;                 /* [L * P] */
	int nranks;
	/* both */
	uint8_t *nonzero;             /* [L]: a layer with any count */
	uint32_t *row, *row2, *acc;   /* one pass: [L * max(E, P)] */
	int replicated;               /* --replicated N, 0 if not */
	void *raw;                    /* raw bytes of one pass */
};

static void sg_release(struct sg *g)
{
	for (size_t i = 0; i < g->nf; i++)
		pt_close(&g->f[i]);
	free(g->f);
	free(g->stat);
	free(g->statz);
	free(g->rec);
	free(g->p2l);
	free(g->nonzero);
	free(g->row);
	free(g->row2);
	free(g->acc);
	free(g->raw);
}

static int sg_buffers(struct sg *g, struct util_err *err)
{
	size_t w = (size_t)(g->E > g->P ? g->E : g->P), n = (size_t)g->L * w;

	g->nonzero = calloc((size_t)g->L, 1);
	g->row = malloc(n * sizeof(uint32_t));
	g->row2 = malloc(n * sizeof(uint32_t));
	g->acc = malloc(n * sizeof(uint32_t));
	g->raw = malloc(n * 8);
	if (!g->nonzero || !g->row || !g->row2 || !g->acc || !g->raw)
		return sg_fail(err, UTIL_ENOMEM, "out of memory for %zu counts", n);
	return 0;
}

static int load_stat(struct sg *g, size_t i, struct util_err *err)
{
	struct pt *f = &g->f[i];
	const struct pobj *t;
	int rc;

	if ((rc = want_tensor(f, dict_get(f->pk, &f->pk->root, "logical_count"),
			      "logical_count", 3, 2, &t, err)))
		return rc;
	int64_t L = t->ndim == 3 ? t->shape[1] : t->shape[0];
	int64_t E = t->ndim == 3 ? t->shape[2] : t->shape[1];
	if (L < 1 || L > STORE_MAX_LAYERS || E < 1 || E > STORE_MAX_EXPERTS)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: field 'logical_count': %lld layers x %lld experts, expected "
				    "1 to %d x 1 to %d",
				    f->path, (long long)L, (long long)E, STORE_MAX_LAYERS,
				    STORE_MAX_EXPERTS);
	if (g->L && (L != g->L || E != g->E))
		return sg_fail(err, UTIL_EPARSE,
				    "%s: field 'logical_count': %lld layers x %lld experts, but %s has "
				    "%lld x %lld",
				    f->path, (long long)L, (long long)E, g->f[0].path,
				    (long long)g->L, (long long)g->E);
	g->L = L;
	g->E = E;
	g->stat[i] = t;
	return tensor_entry(f, t, &g->statz[i], "logical_count", err);
}

static int load_pass(struct sg *g, size_t i, size_t *cap, struct util_err *err)
{
	struct pt *f = &g->f[i];
	const struct pv *recs = dict_get(f->pk, &f->pk->root, "records");
	const struct pobj *m, *lo;
	struct zent *mz;
	char w[64];
	int rc;

	if ((rc = want_tensor(f, dict_get(f->pk, &f->pk->root, "last_physical_to_logical_map"),
			      "last_physical_to_logical_map", 2, 0, &m, err)))
		return rc;
	if (m->shape[0] < 1 || m->shape[0] > STORE_MAX_LAYERS || m->shape[1] < 1 ||
	    m->shape[1] > STORE_MAX_SLOTS)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: field 'last_physical_to_logical_map': %lld layers x %lld "
				    "slots, expected 1 to %d x 1 to %d",
				    f->path, (long long)m->shape[0], (long long)m->shape[1],
				    STORE_MAX_LAYERS, STORE_MAX_SLOTS);
	if ((rc = tensor_entry(f, m, &mz, "last_physical_to_logical_map", err)))
		return rc;
	size_t n = (size_t)(m->shape[0] * m->shape[1]);
	uint32_t *v = calloc(n, sizeof(*v));
	void *raw = malloc(n * 8);
	if (!v || !raw) {
		free(v);
		free(raw);
		return sg_fail(err, UTIL_ENOMEM, "out of memory reading '%s'", f->path);
	}
	rc = tensor_read(f, m, mz, 0, n, v, raw, "last_physical_to_logical_map", err);
	free(raw);
	if (rc) {
		free(v);
		return rc;
	}
	if (!g->p2l) {
		g->L = m->shape[0];
		g->P = m->shape[1];
		if (!(g->p2l = malloc(n * sizeof(*g->p2l)))) {
			free(v);
			return sg_fail(err, UTIL_ENOMEM, "out of memory");
		}
		for (size_t j = 0; j < n; j++) {
			if (v[j] >= STORE_MAX_EXPERTS) {
				rc = sg_fail(err, UTIL_EPARSE,
						  "%s: field 'last_physical_to_logical_map': expert "
						  "%u at layer %zu, slot %zu is past %d",
						  f->path, v[j], j / (size_t)g->P, j % (size_t)g->P,
						  STORE_MAX_EXPERTS - 1);
				free(v);
				return rc;
			}
			g->p2l[j] = (int32_t)v[j];
			if (v[j] + 1 > g->E)
				g->E = v[j] + 1;
		}
		/* every logical expert has a slot in every layer (SGLang's maps do) */
		uint8_t *has = calloc((size_t)g->E, 1);
		if (!has) {
			free(v);
			return sg_fail(err, UTIL_ENOMEM, "out of memory");
		}
		for (size_t row = 0; row < n; row += (size_t)g->P) {
			int64_t e = 0;
			memset(has, 0, (size_t)g->E);
			for (size_t j = row; j < row + (size_t)g->P && j < n; j++)
				has[v[j]] = 1;
			while (e < g->E && has[e])
				e++;
			if (e < g->E) {
				free(has);
				free(v);
				return sg_fail(err, UTIL_EPARSE,
					       "%s: field 'last_physical_to_logical_map': layer %zu puts "
					       "logical expert %lld on no slot",
					       f->path, row / (size_t)g->P, (long long)e);
			}
		}
		free(has);
	} else {
		int same = m->shape[0] == g->L && m->shape[1] == g->P;
		for (size_t j = 0; same && j < n; j++)
			same = (int32_t)v[j] == g->p2l[j];
		if (!same) {
			free(v);
			return sg_fail(err, UTIL_EPARSE,
					    "%s: field 'last_physical_to_logical_map' differs from %s's: "
					    "not dumps of one deployment",
					    f->path, g->f[0].path);
		}
	}
	free(v);
	if (!recs || recs->t != PV_LIST)
		return sg_fail(err, UTIL_EPARSE, "%s: field 'records': %s", f->path,
				    recs ? "not a list" : "missing");
	lo = &f->pk->obj[recs->u.o];
	if (lo->dropped)
		return sg_fail(err, UTIL_EPARSE,
				    "%s: field 'records': %llu entries are not records (dicts)",
				    f->path, (unsigned long long)lo->dropped);
	for (uint32_t j = 0; j < lo->n; j++) {
		const struct pv *r = &lo->kids[j], *fp, *rk;
		struct prec *p;
		snprintf(w, sizeof(w), "records[%u]", j);
		if (r->t != PV_DICT)
			return sg_fail(err, UTIL_EPARSE, "%s: %s: not a dict", f->path, w);
		fp = dict_get(f->pk, r, "forward_pass_id");
		rk = dict_get(f->pk, r, "rank");
		if (!fp || fp->t != PV_INT || fp->u.i < 0 || fp->u.i >= INT64_MAX / 2)
			return sg_fail(err, UTIL_EPARSE,
					    "%s: %s: field 'forward_pass_id': missing or not a "
					    "non-negative integer",
					    f->path, w);
		if (rk && (rk->t != PV_INT || rk->u.i < 0 || rk->u.i >= STORE_MAX_SLOTS))
			return sg_fail(err, UTIL_EPARSE,
					    "%s: %s: field 'rank': not a rank number", f->path, w);
		if (g->nrec == *cap) {
			size_t c = *cap ? 2 * *cap : 256;
			struct prec *q = realloc(g->rec, c * sizeof(*q));
			if (!q)
				return sg_fail(err, UTIL_ENOMEM, "out of memory");
			g->rec = q;
			*cap = c;
		}
		p = &g->rec[g->nrec];
		char field[96];
		snprintf(field, sizeof(field), "%s.global_physical_count", w);
		if ((rc = want_tensor(f, dict_get(f->pk, r, "global_physical_count"), field, 2, 0,
				      &p->t, err)))
			return rc;
		if (p->t->shape[0] != g->L || p->t->shape[1] != g->P)
			return sg_fail(err, UTIL_EPARSE,
					    "%s: field '%s': shape [%lld, %lld], the map has [%lld, "
					    "%lld]",
					    f->path, field, (long long)p->t->shape[0],
					    (long long)p->t->shape[1], (long long)g->L, (long long)g->P);
		if ((rc = tensor_entry(f, p->t, &p->z, field, err)))
			return rc;
		p->fp = fp->u.i;
		p->rank = rk ? rk->u.i : -1;
		p->file = (uint32_t)i;
		p->idx = j;
		g->nrec++;
	}
	return 0;
}

/* Opens every file and sorts out the mode, the shape and the records. */
static int sg_load(struct sg *g, const char *const *paths, size_t n, struct util_err *err)
{
	size_t cap = 0;
	int rc;

	if (!(g->f = calloc(n, sizeof(struct pt))) ||
	    !(g->stat = calloc(n, sizeof(const struct pobj *))) ||
	    !(g->statz = calloc(n, sizeof(struct zent *))))
		return sg_fail(err, UTIL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		g->f[i].fd = -1;
	g->nf = n;
	for (size_t i = 0; i < n; i++) {
		struct pt *f = &g->f[i];
		int mode;
		if ((rc = pt_open(f, paths[i], err)))
			return rc;
		if (f->pk->root.t != PV_DICT)
			return sg_fail(err, UTIL_EPARSE,
					    "%s: the pickle holds no dict: not an expert-distribution "
					    "dump",
					    f->path);
		if (dict_get(f->pk, &f->pk->root, "logical_count"))
			mode = MODE_STAT;
		else if (dict_get(f->pk, &f->pk->root, "records"))
			mode = MODE_PASS;
		else
			return sg_fail(err, UTIL_EPARSE,
					    "%s: neither a 'stat' dump (logical_count) nor a "
					    "'per_pass'/'per_token' dump (records)",
					    f->path);
		if (g->mode && mode != g->mode)
			return sg_fail(err, UTIL_EPARSE,
					    "%s and %s: a 'stat' and a 'per_pass' dump cannot be "
					    "mixed",
					    g->f[0].path, f->path);
		g->mode = mode;
		if ((rc = mode == MODE_STAT ? load_stat(g, i, err) : load_pass(g, i, &cap, err)))
			return rc;
	}
	if (g->mode == MODE_PASS) {
		char seen[STORE_MAX_SLOTS / 8];
		memset(seen, 0, sizeof(seen));
		if (g->nrec == 0)
			return sg_fail(err, UTIL_EPARSE, "%s: field 'records': empty", g->f[0].path);
		qsort(g->rec, g->nrec, sizeof(*g->rec), cmp_prec);
		for (size_t i = 0; i < g->nrec; i++) {
			const struct prec *p = &g->rec[i];
			if (i && p->fp == g->rec[i - 1].fp &&
			    (p->file == g->rec[i - 1].file || p->rank == g->rec[i - 1].rank))
				return sg_fail(err, UTIL_EPARSE,
						    "%s: records[%u]: forward pass %lld of rank %lld "
						    "is already in %s records[%u]",
						    g->f[p->file].path, p->idx, (long long)p->fp,
						    (long long)p->rank, g->f[g->rec[i - 1].file].path,
						    g->rec[i - 1].idx);
			if (p->rank >= 0 && !(seen[p->rank / 8] & (1 << (p->rank % 8)))) {
				seen[p->rank / 8] |= (char)(1 << (p->rank % 8));
				g->nranks++;
			}
		}
	}
	return sg_buffers(g, err);
}

/* Counts of pass k (stat: buffer slot k; per_pass: the k-th distinct
 * forward pass, its records from *ri on) into g->acc [L x E]; *step gets
 * the step number. */
static int sg_pass(struct sg *g, size_t file, uint64_t k, size_t *ri, int64_t *step,
		   struct util_err *err)
{
	size_t L = (size_t)g->L, E = (size_t)g->E, P = (size_t)g->P;
	int rc;

	if (g->mode == MODE_STAT) {
		struct pt *f = &g->f[file];
		if ((rc = tensor_read(f, g->stat[file], g->statz[file], k * L * E, L * E, g->acc,
				      g->raw, "logical_count", err)))
			return rc;
		*step = (int64_t)k;
		/* N ranks that each counted every token, all-reduced: N x each */
		for (size_t i = 0; g->replicated > 1 && i < L * E; i++) {
			if (g->acc[i] % (uint32_t)g->replicated)
				return sg_fail(err, UTIL_EPARSE,
					       "%s: field 'logical_count': %u (step %llu, layer %zu, "
					       "expert %zu) is not a multiple of --replicated %d: the "
					       "ranks did not all count the same tokens",
					       f->path, g->acc[i], (unsigned long long)k, i / E, i % E,
					       g->replicated);
			g->acc[i] /= (uint32_t)g->replicated;
		}
		return 0;
	}
	memset(g->acc, 0, L * E * sizeof(*g->acc));
	size_t i = *ri;
	*step = g->rec[i].fp;
	for (; i < g->nrec && g->rec[i].fp == *step; i++) {
		const struct prec *p = &g->rec[i];
		char field[64];
		snprintf(field, sizeof(field), "records[%u].global_physical_count", p->idx);
		if ((rc = tensor_read(&g->f[p->file], p->t, p->z, 0, L * P,
				      i > *ri && g->replicated ? g->row2 : g->row, g->raw, field,
				      err)))
			return rc;
		if (i > *ri && g->replicated) {
			/* each rank counted every token: the same counts, kept once */
			if (memcmp(g->row, g->row2, L * P * sizeof(*g->row)))
				return sg_fail(err, UTIL_EPARSE,
					       "%s: records[%u]: field 'global_physical_count' of "
					       "forward pass %lld differs from %s records[%u]'s: with "
					       "--replicated every rank must have counted the same tokens",
					       g->f[p->file].path, p->idx, (long long)*step,
					       g->f[g->rec[*ri].file].path, g->rec[*ri].idx);
			continue;
		}
		for (size_t l = 0; l < L; l++) {
			const uint32_t *src = g->row + l * P;
			const int32_t *map = g->p2l + l * P;
			uint32_t *dst = g->acc + l * E;
			for (size_t s = 0; s < P; s++) {
				uint32_t *c = &dst[map[s]];
				if (*c > UINT32_MAX - src[s])
					return sg_fail(err, UTIL_ERANGE,
							    "%s: forward pass %lld, layer %zu: the "
							    "sum over slots and ranks overflows a "
							    "32-bit count",
							    g->f[p->file].path, (long long)*step, l);
				*c += src[s];
			}
		}
	}
	if (g->replicated && i - *ri != (size_t)g->replicated)
		return sg_fail(err, UTIL_EPARSE,
			       "%s: forward pass %lld is in %zu of the --replicated %d ranks' records",
			       g->f[g->rec[*ri].file].path, (long long)*step, i - *ri,
			       g->replicated);
	*ri = i;
	return 0;
}

/* Number of passes of file (stat) or of the whole group (per_pass). */
static uint64_t sg_npass(const struct sg *g, size_t file)
{
	if (g->mode == MODE_STAT)
		return g->stat[file]->ndim == 3 ? (uint64_t)g->stat[file]->shape[0] : 1;
	return 1; /* per_pass walks records instead */
}

static int pass_empty(const uint32_t *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

/* Calls fn on every non-empty pass of the group, in order. */
typedef int (*sg_pass_fn)(struct sg *g, void *ctx, size_t file, int64_t step,
			  struct util_err *err);

static int sg_each(struct sg *g, sg_pass_fn fn, void *ctx, struct util_err *err)
{
	size_t LE = (size_t)(g->L * g->E);
	int64_t step;
	int rc;

	if (g->mode == MODE_STAT) {
		for (size_t fi = 0; fi < g->nf; fi++)
			for (uint64_t k = 0, n = sg_npass(g, fi); k < n; k++) {
				if ((rc = sg_pass(g, fi, k, NULL, &step, err)))
					return rc;
				/* SGLang's buffer is circular and zeroed: a slot never
				 * filled is all zero, a real pass routes some token */
				if (pass_empty(g->acc, LE))
					continue;
				if ((rc = fn(g, ctx, fi, step, err)))
					return rc;
			}
		return 0;
	}
	for (size_t i = 0; i < g->nrec;) {
		size_t fi = g->rec[i].file;
		if ((rc = sg_pass(g, 0, 0, &i, &step, err)) || (rc = fn(g, ctx, fi, step, err)))
			return rc;
	}
	return 0;
}

/* ---- into the store ------------------------------------------------------------------ */

struct sg_scan {
	int64_t passes;
};

static int scan_fn(struct sg *g, void *ctx, size_t file, int64_t step, struct util_err *err)
{
	struct sg_scan *sc = ctx;

	(void)file;
	(void)step;
	(void)err;
	for (int64_t l = 0; l < g->L; l++)
		if (!g->nonzero[l] && !pass_empty(g->acc + l * g->E, (size_t)g->E))
			g->nonzero[l] = 1;
	sc->passes++;
	return 0;
}

struct sg_write {
	struct store *s;
	struct store_run *run;
	int first;              /* model layers dropped (dense) */
	int64_t base;           /* added to stat slot numbers */
	int64_t file_base;      /* base of the current stat file */
	size_t cur_file;
	int64_t last;           /* last step written */
	int64_t first_step;
	int64_t *file_first;    /* each file's first and last step written (or NULL) */
	int64_t *file_last;
	size_t nb, cap;
	struct store_step *steps;
	uint32_t *counts;
};

static int flush(struct sg_write *w, struct util_err *err)
{
	if (w->nb && store_steps_append(w->s, w->run, w->steps, w->nb))
		return sg_fail(err, UTIL_EDB, "%s", store_errmsg(w->s));
	w->nb = 0;
	return 0;
}

static int write_fn(struct sg *g, void *ctx, size_t file, int64_t step, struct util_err *err)
{
	struct sg_write *w = ctx;
	size_t L = (size_t)w->run->layers, E = (size_t)g->E;
	int rc;

	if (g->mode == MODE_STAT) {
		if (file != w->cur_file) {
			/* the next stat dump is a new buffer: its slots follow */
			w->file_base = w->last + 1;
			w->cur_file = file;
		}
		step += w->file_base;
	}
	if (step <= w->last)
		return sg_fail(err, UTIL_EPARSE, "%s: step %lld does not follow step %lld",
				    g->f[file].path, (long long)step, (long long)w->last);
	if (w->nb == w->cap && (rc = flush(w, err)))
		return rc;
	struct store_step *st = &w->steps[w->nb++];
	st->step = step;
	st->time = 0;
	st->phase = STORE_PHASE_UNKNOWN;
	st->counts = w->counts + (w->nb - 1) * L * E;
	memcpy(st->counts, g->acc + (size_t)w->first * E, L * E * sizeof(uint32_t));
	if (w->run->topk) {
		uint64_t t = 0;
		for (size_t e = 0; e < E; e++)
			t += st->counts[e];
		st->tokens = (int64_t)(t / (uint64_t)w->run->topk);
	} else {
		st->tokens = 0;
	}
	if (w->first_step == INT64_MIN)
		w->first_step = step;
	w->last = step;
	if (g->mode == MODE_STAT && w->file_first) {
		if (w->file_first[file] == INT64_MIN)
			w->file_first[file] = step;
		w->file_last[file] = step;
	}
	return 0;
}

/* Each file's own steps: a stat dump's were noted as written; a per_pass
 * pass is summed over the rank files that hold it, so each of them has
 * it (its step is the forward pass id).  A file that added no step (every
 * slot empty, no record) gets the empty range last + 1 .. last. */
static void sg_file_steps(const struct sg *g, struct sg_write *w)
{
	if (!w->file_first)
		return;
	for (size_t i = 0; g->mode == MODE_PASS && i < g->nrec; i++) {
		const struct prec *p = &g->rec[i];
		if (w->file_first[p->file] == INT64_MIN || p->fp < w->file_first[p->file])
			w->file_first[p->file] = p->fp;
		if (w->file_last[p->file] == INT64_MIN || p->fp > w->file_last[p->file])
			w->file_last[p->file] = p->fp;
	}
	for (size_t f = 0; f < g->nf; f++)
		if (w->file_first[f] == INT64_MIN) {
			w->file_first[f] = w->last + 1;
			w->file_last[f] = w->last;
		}
}

/* A new dump of a followed run: the same shape, its steps after the run's
 * (w->base, w->last). */
static int sg_append_check(const struct sg *g, struct store *s, const struct store_run *run,
			   struct sg_write *w, struct util_err *err)
{
	struct store_run_stats st;

	if (run->first_layer > g->L - 1 || g->L - run->first_layer != run->layers ||
	    g->E != run->experts)
		return sg_fail(err, UTIL_EPARSE,
			       "%s: %lld model layers x %lld experts, the run '%s' has %d "
			       "MoE layers from layer %d x %d experts",
			       g->f[0].path, (long long)g->L, (long long)g->E, run->name,
			       run->layers, run->first_layer, run->experts);
	for (int l = 0; l < run->first_layer; l++)
		if (g->nonzero[l])
			return sg_fail(err, UTIL_EPARSE,
				       "%s: model layer %d has counts, but the run '%s' starts "
				       "at layer %d",
				       g->f[0].path, l, run->name, run->first_layer);
	if (store_run_stats(s, run->id, &st))
		return sg_fail(err, UTIL_EDB, "%s", store_errmsg(s));
	w->base = st.steps ? st.last_step + 1 : 0;
	w->last = st.steps ? st.last_step : -1;
	return 0;
}

/* The new run's shape (MoE layers from model layer `first`), checked
 * against the model preset and the options, and its EP layout: the
 * options', else the per_pass ranks', else the preset's. */
static int sg_new_run(const struct sg *g, const struct collector_import_opts *o,
		      const char *source, int first, struct store_run *run, struct util_err *err)
{
	memset(run, 0, sizeof(*run));
	snprintf(run->name, sizeof(run->name), "%s", o->run_name);
	run->layers = (int)(g->L - first);
	run->experts = (int)g->E;
	run->first_layer = first;
	if (o->model) {
		if (o->model->layers != run->layers || o->model->experts != run->experts)
			return sg_fail(err, UTIL_ERANGE,
				       "%s: %d MoE layers x %d experts (model layers %d to "
				       "%lld), the preset %s has %d x %d",
				       g->f[0].path, run->layers, run->experts, first,
				       (long long)g->L - 1, o->model->name, o->model->layers,
				       o->model->experts);
		snprintf(run->model, sizeof(run->model), "%s", o->model->name);
	}
	if ((o->layers && o->layers != run->layers) || (o->experts && o->experts != run->experts))
		return sg_fail(err, UTIL_ERANGE,
			       "%s: %d MoE layers x %d experts, the options say %d x %d",
			       g->f[0].path, run->layers, run->experts,
			       o->layers ? o->layers : run->layers,
			       o->experts ? o->experts : run->experts);
	run->topk = o->topk ? o->topk : o->model ? o->model->topk : 0;
	if (run->topk > run->experts)
		return sg_fail(err, UTIL_ERANGE, "--topk %d exceeds the %d experts", run->topk,
			       run->experts);
	int ranks = o->ranks ? o->ranks : g->mode == MODE_PASS ? g->nranks : 0;
	if (o->model && !ranks) {
		run->ranks = o->model->ranks;
		run->slots = o->model->slots;
		run->ranks_per_node = o->model->ranks_per_node;
	}
	if (ranks) {
		run->ranks = ranks;
		run->slots = o->slots ? o->slots
			     : g->mode == MODE_PASS && g->P % ranks == 0
				     ? (int)(g->P / ranks)
				     : (run->experts + ranks - 1) / ranks;
		run->ranks_per_node = o->ranks_per_node ? o->ranks_per_node
							: store_ranks_per_node_default(ranks, 8);
	}
	if (!store_ranks_per_node_ok(run->ranks, run->ranks_per_node))
		return sg_fail(err, UTIL_EUSAGE, "--ranks-per-node %d does not divide %d ranks",
			       run->ranks_per_node, run->ranks);
	if (run->ranks && (int64_t)run->ranks * run->slots < run->experts)
		return sg_fail(err, UTIL_EUSAGE,
			       "%d ranks x %d slots cannot hold the run's %d experts", run->ranks,
			       run->slots, run->experts);
	snprintf(run->source, sizeof(run->source), "import sglang %s", source);
	return 0;
}

/* per_pass: the map the engine ran with, as the deployed placement from
 * the first step written; a followed run records it again only when it
 * changed. */
static int sg_store_deployed(const struct sg *g, struct store *s, const struct store_run *run,
			     int first, int append, int64_t first_step, struct util_err *err)
{
	const int32_t *map = g->p2l + (size_t)first * (size_t)g->P;
	int32_t *cur = malloc((size_t)run->layers * (size_t)g->P * sizeof(*cur));
	int64_t from = 0;
	int same = 0, rc;

	if (!cur)
		return sg_fail(err, UTIL_ENOMEM, "out of memory");
	if (append) {
		rc = store_deployed_at(s, run, first_step, run->ranks, run->slots, cur, &from);
		same = rc == 0 && !memcmp(cur, map, (size_t)run->layers * (size_t)g->P * sizeof(*cur));
		if (rc && rc != UTIL_ENOTFOUND) {
			free(cur);
			return sg_fail(err, UTIL_EDB, "%s", store_errmsg(s));
		}
	}
	free(cur);
	if (!same && store_deployed_set(s, run, first_step, run->ranks, run->slots, map))
		return sg_fail(err, UTIL_EPARSE, "%s: field 'last_physical_to_logical_map': %s",
			       g->f[0].path, store_errmsg(s));
	return 0;
}

int collector_import_sglang(struct store *s, const char *const *paths, size_t n,
			    const struct collector_import_opts *o, const char *source,
			    struct store_run *run, int append, int64_t *first_step,
			    int64_t *last_step, struct util_err *err)
{
	struct sg g = { 0 };
	struct sg_scan sc = { 0 };
	struct sg_write w = { 0 };
	int rc, in_tx = 0;

	if (n == 0)
		return sg_fail(err, UTIL_EUSAGE, "no SGLang dumps given");
	g.replicated = o->replicated > 1 ? o->replicated : 0;
	if ((rc = sg_load(&g, paths, n, err)))
		goto out;
	/* first pass: check every count, find the dense layers and empty slots */
	if ((rc = sg_each(&g, scan_fn, &sc, err)))
		goto out;
	if (sc.passes == 0) {
		rc = sg_fail(err, UTIL_EPARSE, "%s: no forward pass with any count",
				  g.f[0].path);
		goto out;
	}
	int first = 0;
	while (first < g.L - 1 && !g.nonzero[first])
		first++;
	if (append) {
		if ((rc = sg_append_check(&g, s, run, &w, err)))
			goto out;
		first = run->first_layer;
	} else {
		if ((rc = sg_new_run(&g, o, source, first, run, err)))
			goto out;
		w.last = -1;
	}
	w.s = s;
	w.run = run;
	w.first = first;
	w.first_step = INT64_MIN;
	w.file_base = w.base;
	if (first_step && last_step) {
		w.file_first = first_step;
		w.file_last = last_step;
		for (size_t i = 0; i < n; i++)
			first_step[i] = last_step[i] = INT64_MIN;
	}
	w.cap = 32;
	w.steps = calloc(w.cap, sizeof(*w.steps));
	w.counts = malloc(w.cap * (size_t)run->layers * (size_t)g.E * sizeof(uint32_t));
	if (!w.steps || !w.counts) {
		rc = sg_fail(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	if (store_begin(s)) {
		rc = sg_fail(err, UTIL_EDB, "%s", store_errmsg(s));
		goto out;
	}
	in_tx = 1;
	if (!append && (rc = store_run_add(s, run))) {
		rc = sg_fail(err, rc, "%s: %s", g.f[0].path, store_errmsg(s));
		goto out;
	}
	if ((rc = sg_each(&g, write_fn, &w, err)) || (rc = flush(&w, err)))
		goto out;
	sg_file_steps(&g, &w);
	if (g.mode == MODE_PASS && run->ranks && (int64_t)run->ranks * run->slots == g.P &&
	    (rc = sg_store_deployed(&g, s, run, first, append, w.first_step, err)))
		goto out;
	if (store_commit(s)) {
		rc = sg_fail(err, UTIL_EDB, "%s", store_errmsg(s));
		goto out;
	}
	in_tx = 0;
	rc = 0;
out:
	if (in_tx)
		store_rollback(s);
	free(w.steps);
	free(w.counts);
	sg_release(&g);
	return rc;
}

int collector_sglang_complete(const char *path)
{
	struct pt f;
	struct util_err err = UTIL_ERR_INIT;
	uint64_t off, size, n;
	struct stat sb;
	int ok;

	memset(&f, 0, sizeof(f));
	f.path = path;
	if ((f.fd = open(path, O_RDONLY)) < 0)
		return 0;
	ok = fstat(f.fd, &sb) == 0 && S_ISREG(sb.st_mode);
	f.fsize = ok ? (uint64_t)sb.st_size : 0;
	ok = ok && zip_end(&f, &off, &size, &n, &err) == 0;
	close(f.fd);
	return ok;
}

/* Dumps in the order they were written: SGLang names them
 * expert_distribution_recorder_{time.time()}[_{rank}].pt, and the float's
 * digits vary in number, so the time is compared as a number. */
static double dump_time(const char *path)
{
	const char *b = strrchr(path, '/'), *p;

	b = b ? b + 1 : path;
	if (!(p = strstr(b, "recorder_")))
		return -1;
	return strtod(p + 9, NULL);
}

static int cmp_dump(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	double tx = dump_time(x), ty = dump_time(y);

	if (tx != ty)
		return tx < ty ? -1 : 1;
	return strcmp(x, y);
}

void imp_sglang_sort(char **files, size_t n)
{
	if (n)
		qsort(files, n, sizeof(*files), cmp_dump);
}

int collector_sglang_list(const char *dir, char ***files, size_t *n, struct util_err *err)
{
	int rc = imp_list_dir(dir, "", ".pt", files, n, err);

	if (!rc)
		imp_sglang_sort(*files, *n);
	return rc;
}

void collector_sglang_list_free(char **files, size_t n)
{
	imp_free_list(files, n);
}

/*
 * fuzz_sglang_pt.c: the SGLang .pt reader (collector_import_sglang: zip
 * directory, pickle interpreter, recorder modes) on arbitrary bytes as one
 * dump file.  Invariants: the import is all or nothing — after an error the
 * database holds the runs it held and the one message names the file;
 * after a success there is one more run within the schema's limits, with
 * at least one step.
 *
 * An input starting with byte 0xff is a pickle alone: the target wraps it
 * into a well-formed archive (archive/data.pkl, storages archive/data/0 to
 * 15 of small counts, correct CRC-32s), so that mutations reach the pickle
 * interpreter instead of stopping at the archive's checksums.
 */
#include "tests/fuzz/fuzz.h"

#include "collector/collector.h"

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

#define NSTORE 16
#define STORE_BYTES 512

/* A stored zip of the pickle and NSTORE storages, as torch.save lays it
 * out; *len gets its size (malloc'ed). */
static uint8_t *wrap_pickle(const uint8_t *pkl, size_t n, size_t *len)
{
	static uint8_t st[STORE_BYTES];
	char names[NSTORE + 2][32];
	const uint8_t *data[NSTORE + 2];
	size_t sizes[NSTORE + 2], off[NSTORE + 2], ne = NSTORE + 2, at = 0, cd;
	uint8_t *z;

	/* int32 words v, 0, v, 0, ...: small counts as int32 and as int64 */
	for (size_t i = 0; i < STORE_BYTES / 4; i++)
		put32(st + 4 * i, i % 2 ? 0 : (uint32_t)(i / 2) % 5);
	snprintf(names[0], sizeof(names[0]), "archive/data.pkl");
	data[0] = pkl;
	sizes[0] = n;
	snprintf(names[1], sizeof(names[1]), "archive/byteorder");
	data[1] = (const uint8_t *)"little";
	sizes[1] = 6;
	for (int i = 0; i < NSTORE; i++) {
		snprintf(names[i + 2], sizeof(names[i + 2]), "archive/data/%d", i);
		data[i + 2] = st;
		sizes[i + 2] = STORE_BYTES;
	}
	z = malloc(n + (size_t)(NSTORE + 2) * (30 + 46 + 2 * 32 + STORE_BYTES) + 22);
	fuzz_check(z != NULL);
	for (size_t i = 0; i < ne; i++) {
		size_t nl = strlen(names[i]);
		off[i] = at;
		memset(z + at, 0, 30);
		put32(z + at, 0x04034b50);
		put32(z + at + 14, crc32_of(data[i], sizes[i]));
		put32(z + at + 18, (uint32_t)sizes[i]);
		put32(z + at + 22, (uint32_t)sizes[i]);
		put16(z + at + 26, (unsigned)nl);
		memcpy(z + at + 30, names[i], nl);
		if (sizes[i])
			memcpy(z + at + 30 + nl, data[i], sizes[i]);
		at += 30 + nl + sizes[i];
	}
	cd = at;
	for (size_t i = 0; i < ne; i++) {
		size_t nl = strlen(names[i]);
		memset(z + at, 0, 46);
		put32(z + at, 0x02014b50);
		put32(z + at + 16, crc32_of(data[i], sizes[i]));
		put32(z + at + 20, (uint32_t)sizes[i]);
		put32(z + at + 24, (uint32_t)sizes[i]);
		put16(z + at + 28, (unsigned)nl);
		put32(z + at + 42, (uint32_t)off[i]);
		memcpy(z + at + 46, names[i], nl);
		at += 46 + nl;
	}
	memset(z + at, 0, 22);
	put32(z + at, 0x06054b50);
	put16(z + at + 8, (unsigned)ne);
	put16(z + at + 10, (unsigned)ne);
	put32(z + at + 12, (uint32_t)(at - cd));
	put32(z + at + 16, (uint32_t)cd);
	*len = at + 22;
	return z;
}

static struct store *db;
static long imports;

static void db_close(void)
{
	store_free(db);
	db = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct collector_import_opts o;
	struct util_err err = UTIL_ERR_INIT;
	struct store_run run, got;
	struct store_run_stats st;
	char path[600], dbpath[512], name[32];
	const char *p = path;
	size_t before;
	int rc;

	if (!db || imports % 256 == 0) {
		if (!db)
			atexit(db_close);
		fuzz_db_fresh(&db, dbpath, sizeof(dbpath), "pt.db");
	}
	imports++;
	if (size >= 1 && data[0] == 0xff) {
		size_t len;
		uint8_t *z = wrap_pickle(data + 1, size - 1, &len);
		fuzz_write(path, sizeof(path), "dump.pt", z, len);
		free(z);
	} else {
		fuzz_write(path, sizeof(path), "dump.pt", data, size);
	}
	memset(&o, 0, sizeof(o));
	snprintf(name, sizeof(name), "r%ld", imports);
	o.run_name = name;
	before = fuzz_run_count(db);
	rc = collector_import_sglang(db, &p, 1, &o, path, &run, 0, NULL, NULL, &err);
	if (rc) {
		fuzz_note("refused", err.msg);
		fuzz_check(rc < 0 && strstr(err.msg, "dump.pt"));
		fuzz_check(!strchr(err.msg, '\n'));
		fuzz_check(fuzz_run_count(db) == before);
		fuzz_check(store_run_get(db, name, &got) != 0);
		return 0;
	}
	fuzz_note("accepted", NULL);
	fuzz_check(fuzz_run_count(db) == before + 1);
	fuzz_check(store_run_get(db, name, &got) == 0);
	fuzz_check(got.layers > 0 && got.layers <= STORE_MAX_LAYERS);
	fuzz_check(got.experts > 0 && got.experts <= STORE_MAX_EXPERTS);
	fuzz_check(store_run_stats(db, got.id, &st) == 0 && st.steps > 0);
	return 0;
}

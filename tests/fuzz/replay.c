/*
 * replay.c: a main for the fuzz targets under gcc, without libFuzzer.
 * Every argument is a file or a directory; each file (a directory's
 * regular files in name order) is read into a buffer of exactly its size,
 * so the sanitizers see any read past the end, and passed once to
 * LLVMFuzzerTestOneInput.  `make check` runs it on tests/fuzz/corpus/<X>/:
 * the seed inputs and every crasher found so far are regression tests.
 * Exit 1 if an argument cannot be read or holds no input at all.
 */
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f) {
		fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				abort();
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "replay: cannot read '%s': %s\n", path, strerror(errno));
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	/* an exact-size copy: reads past the input's end are caught */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact)
		abort();
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	if (getenv("MOETRACE_FUZZ_VERBOSE"))
		fprintf(stderr, "%s\n", path);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int is_regular(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
	long done = 0;

	for (int i = 1; i < argc; i++) {
		struct stat sb;
		struct dirent **names;
		int n;

		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "replay: cannot open '%s': %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(sb.st_mode)) {
			if (run_file(argv[i]))
				return 1;
			done++;
			continue;
		}
		n = scandir(argv[i], &names, is_regular, alphasort);
		if (n < 0) {
			fprintf(stderr, "replay: cannot list '%s': %s\n", argv[i], strerror(errno));
			return 1;
		}
		for (int k = 0; k < n; k++) {
			char path[4096];
			if (snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name) <
				    (int)sizeof(path) &&
			    stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
				if (run_file(path))
					return 1;
				done++;
			}
			free(names[k]);
		}
		free(names);
	}
	if (done == 0) {
		fprintf(stderr, "replay: no input to run\n");
		return 1;
	}
	printf("replay: %ld inputs ran\n", done);
	return 0;
}

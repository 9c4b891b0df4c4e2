/*
 * outfile.c: what a command's -o may write.  Every writer puts its output
 * in a temporary file and renames it over the name it was given, so two
 * things need settling before it starts: which file that name really is
 * (util_out_target() follows symbolic links, so that the rename replaces
 * the link's target and leaves the link), and that this file is not the
 * trace the command is reading (util_out_check()): a rename over the
 * database, or over the journal SQLite keeps beside it, destroys the runs
 * the output was made from.
 */
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Linux gives up after 40 links in a path; so does the writer. */
#define OUT_MAX_LINKS 40

/* to, a link's contents, as a path from where the link at cur is. */
static char *link_next(const char *cur, const char *to)
{
	const char *slash = strrchr(cur, '/');
	size_t dir = slash && to[0] != '/' ? (size_t)(slash - cur) + 1 : 0, n = strlen(to) + 1;
	char *r = malloc(dir + n);

	if (r) {
		memcpy(r, cur, dir);
		memcpy(r + dir, to, n);
	}
	return r;
}

int util_out_target(const char *path, char **target, struct util_err *err)
{
	char *cur = strdup(path), buf[PATH_MAX];
	struct stat st;

	*target = NULL;
	for (int i = 0; cur; i++) {
		ssize_t n;
		char *next;
		if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) {
			*target = cur;
			return 0;
		}
		if (i == OUT_MAX_LINKS) {
			free(cur);
			return util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path,
					    strerror(ELOOP));
		}
		if ((n = readlink(cur, buf, sizeof(buf) - 1)) < 0 || n == (ssize_t)sizeof(buf) - 1) {
			int e = n < 0 ? errno : ENAMETOOLONG;
			free(cur);
			return util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path,
					    strerror(e));
		}
		buf[n] = '\0';
		next = link_next(cur, buf);
		free(cur);
		cur = next;
	}
	return util_err_set(err, UTIL_ENOMEM, "out of memory");
}

/* path's absolute name, its links and dot entries resolved; the last
 * component need not exist.  malloc'ed, NULL when its directory cannot
 * be resolved either. */
static char *canonical(const char *path)
{
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	char *dir, *d, *r;

	if ((r = realpath(path, NULL)) || errno != ENOENT || !*base || !strcmp(base, ".") ||
	    !strcmp(base, ".."))
		return r;
	if (!(dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".")))
		return NULL;
	d = realpath(dir, NULL);
	free(dir);
	if (d && (r = malloc(strlen(d) + strlen(base) + 2)))
		sprintf(r, "%s%s%s", d, strcmp(d, "/") ? "/" : "", base);
	free(d);
	return r;
}

/* 1 when the file at name exists and is the one st describes */
static int same_inode(const char *name, const struct stat *st)
{
	struct stat other;

	return stat(name, &other) == 0 && other.st_dev == st->st_dev && other.st_ino == st->st_ino;
}

/* The database, then the files SQLite keeps beside it under its name. */
/* clang-format off */
static const struct { const char *suffix, *what; } beside[] = {
	{ "",         NULL },
	{ "-wal",     "write-ahead log" },
	{ "-shm",     "shared-memory index" },
	{ "-journal", "rollback journal" },
};
/* clang-format on */

/* Which of beside[] the file at target is, or -1. */
static int which_input(const char *target, const char *in)
{
	char *ct = canonical(target), *ci = canonical(in), *name = NULL;
	struct stat st;
	int have = stat(target, &st) == 0, hit = -1;

	if (have && same_inode(in, &st))
		hit = 0;
	for (size_t k = 0; hit < 0 && ci && k < UTIL_ARRAY_SIZE(beside); k++) {
		if (!(name = malloc(strlen(ci) + strlen(beside[k].suffix) + 1)))
			break;
		sprintf(name, "%s%s", ci, beside[k].suffix);
		if ((ct && !strcmp(ct, name)) || (have && same_inode(name, &st)))
			hit = (int)k;
		free(name);
	}
	free(ct);
	free(ci);
	return hit;
}

int util_out_check(const char *path, const char *in, struct util_err *err)
{
	char *target, link[PATH_MAX + 32] = "";
	int rc, k;

	if (!in)
		return 0;
	if ((rc = util_out_target(path, &target, err)))
		return rc;
	k = which_input(target, in);
	if (strcmp(target, path))
		snprintf(link, sizeof(link), " (a link to '%s')", target);
	free(target);
	if (k == 0)
		return util_err_set(err, UTIL_EUSAGE,
				    "output '%s'%s is the trace '%s' this command reads", path, link,
				    in);
	if (k > 0)
		return util_err_set(err, UTIL_EUSAGE,
				    "output '%s'%s is the %s of the trace '%s' this command reads",
				    path, link, beside[k].what, in);
	return 0;
}

/*
 * export.c: a run's heat out of the database, as our CSV
 * (step,layer,expert,tokens,phase — what `moetrace import` reads back) or
 * as JSON lines (a description line, the deployed placements, then one
 * object per step with every layer's counts — what the JSON-lines importer
 * reads back).  Files are
 * written to a temporary name beside the target and renamed into place,
 * so a failed export never leaves a half-written file.
 */
#include "collector/collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Appends the decimal digits of v to p; returns the new end. */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

static int write_csv(FILE *f, const struct store_run *run, const struct store_step *st,
		     int sparse, char *buf)
{
	const char *ph = store_phase_name(st->phase);
	size_t phl = strlen(ph);
	char head[32], *h = put_i64(head, st->step);
	size_t hl;

	*h++ = ',';
	hl = (size_t)(h - head);
	for (int l = 0; l < run->layers; l++) {
		char *p = buf;
		const uint32_t *row = st->counts + (size_t)l * (size_t)run->experts;
		/* sparse: the zero cells are left out, except each step's last
		 * (last layer, last expert), so that a step with no heat and
		 * the run's shape both read back */
		int last = l == run->layers - 1;
		for (int e = 0; e < run->experts; e++) {
			if (sparse && !row[e] && !(last && e == run->experts - 1))
				continue;
			memcpy(p, head, hl);
			p += hl;
			p = put_u64(p, (uint64_t)l);
			*p++ = ',';
			p = put_u64(p, (uint64_t)e);
			*p++ = ',';
			p = put_u64(p, row[e]);
			*p++ = ',';
			memcpy(p, ph, phl);
			p += phl;
			*p++ = '\n';
		}
		if (p > buf && fwrite(buf, 1, (size_t)(p - buf), f) != (size_t)(p - buf))
			return -1;
	}
	return 0;
}

static void write_jsonl_head(FILE *f, const struct store_run *run)
{
	fputs("{\"moetrace\":1,\"run\":", f);
	util_json_str(f, run->name);
	if (run->model[0]) {
		fputs(",\"model\":", f);
		util_json_str(f, run->model);
	}
	fprintf(f, ",\"layers\":%d,\"experts\":%d", run->layers, run->experts);
	if (run->topk)
		fprintf(f, ",\"topk\":%d", run->topk);
	if (run->ranks)
		fprintf(f, ",\"ranks\":%d,\"slots\":%d", run->ranks, run->slots);
	/* the nodes price the copies between ranks (intra- or inter-node) */
	if (run->ranks && run->ranks_per_node)
		fprintf(f, ",\"ranks_per_node\":%d", run->ranks_per_node);
	fprintf(f, ",\"first_layer\":%d}\n", run->first_layer);
}

/* The run's deployed placements as lines {"deployed": STEP, "ranks": R,
 * "slots": S, "phy2log": [[ids] per layer]}, one per step at which one
 * took effect, each the whole placement in force from there (as merge
 * copies them): the ones taking effect in [from, to], and the one in force
 * at `from` already.  Rows of one layer alone come back as rows of every
 * layer, the same placement in force at every step. */
static int write_jsonl_deployed(FILE *f, struct store *s, const struct store_run *run,
				const struct collector_export_opts *o, struct util_err *err)
{
	size_t P = (size_t)run->ranks * (size_t)run->slots, n = 0;
	int64_t lo = STORE_STEP_MIN, *from = NULL;
	int32_t *p2l = NULL;
	int rc;

	if (o->from > STORE_STEP_MIN && (rc = store_deployed_last(s, run, o->from, &lo))) {
		if (rc != UTIL_ENOTFOUND)
			return util_err_set(err, rc, "reading run '%s': %s", run->name,
					    store_errmsg(s));
		lo = o->from; /* none in force there yet */
	}
	if ((rc = store_deployed_changes(s, run, lo, o->to, &from, &n)))
		return util_err_set(err, rc, "reading run '%s': %s", run->name, store_errmsg(s));
	if (n && !(p2l = malloc((size_t)run->layers * P * sizeof(*p2l)))) {
		free(from);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n && !rc; i++) {
		if ((rc = store_deployed_at(s, run, from[i], run->ranks, run->slots, p2l, NULL))) {
			rc = util_err_set(err, rc, "reading run '%s': %s", run->name,
					  store_errmsg(s));
			break;
		}
		fprintf(f, "{\"deployed\":%lld,\"ranks\":%d,\"slots\":%d,\"phy2log\":[",
			(long long)from[i], run->ranks, run->slots);
		for (int l = 0; l < run->layers; l++) {
			fputs(l ? ",[" : "[", f);
			for (size_t p = 0; p < P; p++)
				fprintf(f, p ? ",%d" : "%d", p2l[(size_t)l * P + p]);
			fputc(']', f);
		}
		fputs("]}\n", f);
	}
	free(p2l);
	free(from);
	return rc;
}

static int write_jsonl(FILE *f, const struct store_run *run, const struct store_step *st,
		       char *buf)
{
	fprintf(f, "{\"step\":%lld,\"phase\":\"%s\"", (long long)st->step,
		store_phase_name(st->phase));
	if (st->time > 0) {
		/* the shortest digits that read back to the same double: a
		 * fixed 6 decimals lost the recorder's sub-microsecond bits
		 * and wrote a time below 5e-7 as 0 */
		char num[40];
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(num, sizeof(num), "%.*g", prec, st->time);
			if (strtod(num, NULL) == st->time)
				break;
		}
		fprintf(f, ",\"time\":%s", num);
	}
	/* always, 0 included: left out, the importer would derive tokens
	 * from the counts and top-k, which is not what the run holds */
	fprintf(f, ",\"tokens\":%lld", (long long)st->tokens);
	fputs(",\"counts\":[", f);
	for (int l = 0; l < run->layers; l++) {
		char *p = buf;
		const uint32_t *row = st->counts + (size_t)l * (size_t)run->experts;
		if (l)
			*p++ = ',';
		*p++ = '[';
		for (int e = 0; e < run->experts; e++) {
			if (e)
				*p++ = ',';
			p = put_u64(p, row[e]);
		}
		*p++ = ']';
		if (fwrite(buf, 1, (size_t)(p - buf), f) != (size_t)(p - buf))
			return -1;
	}
	fputs("]}\n", f);
	return ferror(f) ? -1 : 0;
}

/* The temporary file an export to path is written to, in *f, beside the
 * file it will replace (*target: path, or the file a link at path points
 * to, so the rename writes through the link).  Both names malloc'ed. */
static int open_tmp(const char *path, char **target, char **tmp, FILE **f,
		    struct util_err *err)
{
	int fd, rc;

	if ((rc = util_out_target(path, target, err)))
		return rc;
	if (!(*tmp = malloc(strlen(*target) + 16)))
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	sprintf(*tmp, "%s.tmpXXXXXX", *target);
	if ((fd = mkstemp(*tmp)) < 0 || fchmod(fd, 0644) != 0 || !(*f = fdopen(fd, "w"))) {
		rc = util_err_set(err, UTIL_EIO, "cannot create '%s': %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(*tmp);
		}
		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	return 0;
}

int collector_export(struct store *s, const struct store_run *run,
		     const struct collector_export_opts *o, const char *path, int64_t *steps,
		     struct util_err *err)
{
	struct store_iter *it = NULL;
	struct store_step st;
	char *target = NULL, *tmp = NULL, *buf = NULL;
	FILE *f = NULL;
	int64_t n = 0;
	int rc, to_stdout = !strcmp(path, "-");

	/* a CSV row is at most ~60 bytes, a JSON count 11 */
	buf = malloc((size_t)run->experts * 64 + 64);
	if (!buf)
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	if ((rc = store_iter_new(s, run, o->from, o->to, 0, &it))) {
		rc = util_err_set(err, UTIL_EDB, "%s", store_errmsg(s));
		goto out;
	}
	if (to_stdout)
		f = stdout;
	else if ((rc = open_tmp(path, &target, &tmp, &f, err)))
		goto out;
	if (o->format == COLLECTOR_EXPORT_CSV)
		fputs("step,layer,expert,tokens,phase\n", f);
	else
		write_jsonl_head(f, run);
	if (o->format == COLLECTOR_EXPORT_JSONL && run->ranks &&
	    (rc = write_jsonl_deployed(f, s, run, o, err)))
		goto out;
	while ((rc = store_iter_next(it, &st)) == 1) {
		int w = o->format == COLLECTOR_EXPORT_CSV ? write_csv(f, run, &st, o->sparse, buf)
							  : write_jsonl(f, run, &st, buf);
		if (w) {
			rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path,
					  strerror(errno));
			goto out;
		}
		n++;
	}
	if (rc < 0) {
		/* the store's code: a corrupt trace is bad input */
		rc = util_err_set(err, rc, "reading run '%s': %s", run->name, store_errmsg(s));
		goto out;
	}
	if (n == 0) {
		rc = util_err_set(err, UTIL_ENOTFOUND, "run '%s' has no steps in the range",
				  run->name);
		goto out;
	}
	if (to_stdout) {
		if (fflush(f) || ferror(f)) {
			rc = util_err_set(err, UTIL_EIO, "cannot write output: %s", strerror(errno));
			goto out;
		}
		f = NULL;
	} else {
		int bad = ferror(f);
		bad |= fclose(f);
		f = NULL;
		if (bad) {
			rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path,
					  strerror(errno));
			goto out;
		}
		if (rename(tmp, target) != 0) {
			rc = util_err_set(err, UTIL_EIO, "cannot rename '%s' to '%s': %s", tmp, target,
					  strerror(errno));
			goto out;
		}
		free(tmp);
		tmp = NULL;
	}
	if (steps)
		*steps = n;
	rc = 0;
out:
	if (f && f != stdout)
		fclose(f);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(target);
	store_iter_free(it);
	free(buf);
	return rc;
}

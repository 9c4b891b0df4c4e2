/*
 * recorder.c: the recorder behind collector/moetrace.h.  Start at
 * moetrace_recorder_open(): it validates the run description, allocates
 * everything the recorder will ever use (the stated memory bound), creates
 * or opens the database and starts the writer thread.
 *
 * The engine thread and the writer share a single-producer single-consumer
 * ring of `cap` steps.  The producer (step(), step_topk(), ...) owns `head`,
 * the writer owns `tail`; both are atomics, so the step path is a bounds
 * check, a memcpy and a release store.  The mutex and condition variables
 * are touched on that path only to wake a sleeping writer once a batch is
 * ready, or to wait for space under the blocking policy.  The writer
 * sleeps until a batch is ready, a flush is requested or flush_ms passes,
 * then commits up to batch_steps ring entries in one transaction
 * (store_steps_append) and only then advances `tail`, so a slot is never
 * reused before its step is in the database.
 *
 * Placements are rare and large; they go through a small queue of
 * MAX_PLACEMENTS preallocated buffers guarded by the mutex.
 */
#include "collector/moetrace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collector/collector.h"
#include "store/store.h"
#include "util/util.h"

_Static_assert((int)MOETRACE_EIO == (int)UTIL_EIO && (int)MOETRACE_EDB == (int)UTIL_EDB &&
		       (int)MOETRACE_EUSAGE == (int)UTIL_EUSAGE && (int)MOETRACE_ENOMEM == (int)UTIL_ENOMEM &&
		       (int)MOETRACE_ERANGE == (int)UTIL_ERANGE && (int)MOETRACE_ESTATE == (int)UTIL_ESTATE &&
		       (int)MOETRACE_EFULL == (int)UTIL_EFULL,
	       "moetrace.h codes must match util.h");
_Static_assert((int)MOETRACE_PHASE_PREFILL == (int)STORE_PHASE_PREFILL &&
		       (int)MOETRACE_PHASE_DECODE == (int)STORE_PHASE_DECODE,
	       "moetrace.h phases must match store.h");

#define DEFAULT_RING 256
#define DEFAULT_BATCH 64
#define DEFAULT_FLUSH_MS 100
#define DEFAULT_CACHE_KIB 2048
#define MAX_RING (1 << 20)
#define MAX_PLACEMENTS 4
#define MAX_OBSERVERS 4

struct entry {
	int64_t step;
	double time;
	int64_t tokens;
	int phase;
};

struct moetrace_recorder {
	char errmsg[512]; /* last failure of a call on the caller's side */
	int closed;

	/* shape and options, fixed at open */
	struct store_run run;
	size_t cells; /* layers * experts */
	size_t pslots; /* ranks * slots */
	int cap, batch, policy, flush_ms;
	int64_t mem_bound;

	/* the ring: cap headers and cap x cells counts */
	struct entry *hdr;
	uint32_t *counts;
	_Atomic uint64_t head; /* written by the producer only */
	_Atomic uint64_t tail; /* written by the writer only */

	/* producer-side state */
	int64_t last_step;
	uint32_t *pending; /* the top-k step being histogrammed */
	int64_t pending_step, pending_tokens;
	/* tokens each layer routed in the pending step, its calls summed
	 * (a layer called once per microbatch) */
	int64_t pending_layer_tokens[STORE_MAX_LAYERS];
	int has_pending;
	unsigned char *seen; /* experts scratch for placement checks */
	int32_t *cur_plc;    /* the last placement given, for step_slots() */
	int have_plc;
	int shard, shard_rank;
	uint32_t *slotbuf;   /* logical counts built by step_slots() */

	/* placements: MAX_PLACEMENTS buffers of layers x pslots, under mu */
	int32_t *plc;
	int64_t plc_from[MAX_PLACEMENTS];
	unsigned plc_head, plc_tail;

	/* writer side */
	struct store *s;
	struct store_step *batchv;
	pthread_t thread;
	int thread_started;

	pthread_mutex_t mu;
	pthread_cond_t wake;  /* writer: work to do */
	pthread_cond_t space; /* producers and flushers: tail moved */
	int sync_ready;       /* mu and the conditions were initialised */
	_Atomic int writer_sleeping;
	int stop, flush_req;  /* under mu */
	int werr;             /* first writer failure not yet reported, under mu */
	char wmsg[512];       /* its message, under mu */

	/* counters (readable from any thread) */
	_Atomic int64_t recorded, dropped, failed, batches, bytes, placements, high_water;
	_Atomic int last_error;
	_Atomic int64_t last_step_pub; /* last_step, for stats() from other threads */

	/* observers (collector.h): entries below nobs are written once, before
	 * nobs is published, and only read after */
	struct collector_observer obs[MAX_OBSERVERS];
	_Atomic int nobs;
};

static int fail(struct moetrace_recorder *r, int code, const char *fmt, ...) UTIL_PRINTF(3, 4);

static int fail(struct moetrace_recorder *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int collector_recorder_fail(struct moetrace_recorder *rec, int code, const char *fmt, ...)
	__attribute__((alias("fail")));

const char *moetrace_errmsg(const struct moetrace_recorder *rec)
{
	return rec ? rec->errmsg : "no recorder (out of memory)";
}

/* ---- sizes ---------------------------------------------------------------- */

struct sizing {
	int cap, batch, policy, flush_ms, cache_kib;
	size_t cells, pslots;
	int64_t bytes;
};

static int size_of(const struct moetrace_run_desc *d, const struct moetrace_recorder_opts *o,
		   struct sizing *z, char *msg, size_t msglen)
{
	struct moetrace_recorder_opts none = MOETRACE_RECORDER_OPTS_INIT;

	if (!o)
		o = &none;
	if (!d)
		return snprintf(msg, msglen, "no run description"), MOETRACE_EUSAGE;
	if (!d->name || !*d->name || strlen(d->name) >= sizeof(((struct store_run *)0)->name))
		return snprintf(msg, msglen, "the run needs a name of 1 to %zu bytes",
				sizeof(((struct store_run *)0)->name) - 1),
		       MOETRACE_EUSAGE;
	if (d->layers <= 0 || d->layers > STORE_MAX_LAYERS || d->experts <= 0 ||
	    d->experts > STORE_MAX_EXPERTS)
		return snprintf(msg, msglen,
				"run '%s': shape %d layers x %d experts is out of range "
				"(1..%d x 1..%d)",
				d->name, d->layers, d->experts, STORE_MAX_LAYERS, STORE_MAX_EXPERTS),
		       MOETRACE_ERANGE;
	if (d->topk < 0 || d->topk > d->experts || d->ranks < 0 || d->slots < 0 ||
	    d->ranks_per_node < 0 || (d->ranks > 0) != (d->slots > 0) ||
	    (int64_t)d->ranks * d->slots > STORE_MAX_SLOTS ||
	    (d->ranks > 0 && (int64_t)d->ranks * d->slots < d->experts))
		return snprintf(msg, msglen,
				"run '%s': top-k %d, %d ranks x %d slots do not fit %d experts",
				d->name, d->topk, d->ranks, d->slots, d->experts),
		       MOETRACE_ERANGE;
	if (!store_ranks_per_node_ok(d->ranks, d->ranks_per_node))
		return snprintf(msg, msglen, "run '%s': ranks per node %d does not divide %d ranks",
				d->name, d->ranks_per_node, d->ranks),
		       MOETRACE_ERANGE;
	z->cap = o->ring_steps ? o->ring_steps : DEFAULT_RING;
	z->batch = o->batch_steps ? o->batch_steps : DEFAULT_BATCH;
	if (z->batch > z->cap && !o->batch_steps)
		z->batch = z->cap;
	z->policy = o->policy;
	z->flush_ms = o->flush_ms ? o->flush_ms : DEFAULT_FLUSH_MS;
	z->cache_kib = o->cache_kib ? o->cache_kib : DEFAULT_CACHE_KIB;
	if (o->shard && (d->ranks <= 0 || o->shard_rank < 0 || o->shard_rank >= d->ranks))
		return snprintf(msg, msglen,
				"run '%s': shard rank %d needs an EP layout with that rank (%d ranks)",
				d->name, o->shard_rank, d->ranks),
		       MOETRACE_EUSAGE;
	if (z->cap < 1 || z->cap > MAX_RING || z->batch < 1 || z->batch > z->cap ||
	    (z->policy != MOETRACE_DROP && z->policy != MOETRACE_BLOCK) || z->flush_ms < 1 ||
	    z->flush_ms > 60000 || z->cache_kib < 64 || z->cache_kib > (1 << 22))
		return snprintf(msg, msglen,
				"recorder options out of range: ring %d steps (1..%d), batch %d "
				"(1..ring), policy %d, flush %d ms (1..60000), cache %d KiB",
				z->cap, MAX_RING, z->batch, z->policy, z->flush_ms, z->cache_kib),
		       MOETRACE_EUSAGE;
	z->cells = (size_t)d->layers * (size_t)d->experts;
	z->pslots = (size_t)d->ranks * (size_t)d->slots;
	z->bytes = (int64_t)sizeof(struct moetrace_recorder) +
		   (int64_t)z->cap * (int64_t)(sizeof(struct entry) + z->cells * 4) +
		   (int64_t)z->cells * 4 + (int64_t)z->batch * (int64_t)sizeof(struct store_step) +
		   (int64_t)(MAX_PLACEMENTS + 1) * (int64_t)d->layers * (int64_t)z->pslots * 4 +
		   (int64_t)z->cells * 4 +
		   (int64_t)d->experts + (int64_t)z->cache_kib * 1024;
	return 0;
}

int64_t moetrace_recorder_mem_bound(const struct moetrace_run_desc *desc,
				    const struct moetrace_recorder_opts *opts)
{
	struct sizing z;
	char msg[256];
	int rc = size_of(desc, opts, &z, msg, sizeof(msg));

	return rc ? rc : z.bytes;
}

/* ---- the writer thread ---------------------------------------------------- */

static void writer_fail(struct moetrace_recorder *r, int code, const char *what)
{
	pthread_mutex_lock(&r->mu);
	/* the first since the last report says what went wrong; batches that
	 * fail after it are counted in failed */
	if (!r->werr) {
		r->werr = code;
		snprintf(r->wmsg, sizeof(r->wmsg), "%s: %s", what, store_errmsg(r->s));
	}
	pthread_mutex_unlock(&r->mu);
	atomic_store(&r->last_error, code);
}

static void write_steps(struct moetrace_recorder *r, uint64_t t, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		size_t k = (size_t)((t + i) % (uint64_t)r->cap);
		struct store_step *p = &r->batchv[i];
		p->step = r->hdr[k].step;
		p->time = r->hdr[k].time;
		p->phase = r->hdr[k].phase;
		p->tokens = r->hdr[k].tokens;
		p->counts = r->counts + k * r->cells;
	}
	rc = store_steps_append(r->s, &r->run, r->batchv, n);
	if (rc) {
		/* the store rolled the batch back: none of it is in the file,
		 * and the next batch starts a transaction of its own */
		char what[96];
		snprintf(what, sizeof(what), "cannot commit steps %lld..%lld (%zu lost)",
			 (long long)r->batchv[0].step, (long long)r->batchv[n - 1].step, n);
		atomic_fetch_add(&r->failed, (int64_t)n);
		writer_fail(r, rc, what);
		return;
	}
	atomic_fetch_add(&r->recorded, (int64_t)n);
	atomic_fetch_add(&r->batches, 1);
	atomic_store(&r->bytes, store_appended_bytes(r->s));
	for (int i = 0, m = atomic_load(&r->nobs); i < m; i++)
		if (r->obs[i].committed)
			r->obs[i].committed(r->obs[i].ctx, r->batchv[n - 1].step, (int64_t)n);
}

static void write_placement(struct moetrace_recorder *r, unsigned i)
{
	const int32_t *p = r->plc + (size_t)(i % MAX_PLACEMENTS) * r->pslots * (size_t)r->run.layers;
	int rc = store_deployed_set(r->s, &r->run, r->plc_from[i % MAX_PLACEMENTS], r->run.ranks,
				    r->run.slots, p);

	if (rc)
		writer_fail(r, rc, "cannot commit placement");
	else
		atomic_fetch_add(&r->placements, 1);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* While full batches keep coming the writer polls every POLL_US instead of
 * sleeping on the condition, so the engine thread never has to make the
 * futex call that wakes it; when the stream slows down it sleeps until a
 * producer signals a full batch, a flush, or flush_ms passes. */
#define POLL_US 1000

static void *writer_main(void *arg)
{
	struct moetrace_recorder *r = arg;
	int streaming = 0; /* the last write was a full batch */

	pthread_mutex_lock(&r->mu);
	for (;;) {
		uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
		uint64_t n = atomic_load(&r->head) - t;
		int plc = r->plc_head != r->plc_tail;
		int urgent = plc || r->stop || r->flush_req;

		if (n == 0 && !plc && r->stop)
			break;
		if ((n == 0 && !plc) || (n < (uint64_t)r->batch && !urgent)) {
			struct timespec ts;
			int rc = 0;

			/* the oldest queued step has waited flush_ms: write it */
			if (n > 0 && util_wall() - r->hdr[t % (uint64_t)r->cap].time >=
					     r->flush_ms * 1e-3)
				goto work;
			if (streaming) {
				ts.tv_sec = 0;
				ts.tv_nsec = POLL_US * 1000L;
				pthread_mutex_unlock(&r->mu);
				nanosleep(&ts, NULL);
				pthread_mutex_lock(&r->mu);
				streaming = n > 0; /* an empty ring: the stream has stopped */
				continue;
			}
			atomic_store(&r->writer_sleeping, 1);
			/* Recheck after publishing the flag: a producer that
			 * published head before the flag was set did not wake us. */
			n = atomic_load(&r->head) - t;
			if (n == 0 || (n < (uint64_t)r->batch && !urgent)) {
				deadline_in(&ts, r->flush_ms);
				rc = pthread_cond_timedwait(&r->wake, &r->mu, &ts);
			}
			atomic_store(&r->writer_sleeping, 0);
			n = atomic_load(&r->head) - t;
			/* woken by a signal: look again; timed out: write what waits */
			if (rc != ETIMEDOUT || n == 0)
				continue;
		}
work:
		if (plc) {
			unsigned i = r->plc_tail;
			pthread_mutex_unlock(&r->mu);
			write_placement(r, i);
			pthread_mutex_lock(&r->mu);
			r->plc_tail++;
			pthread_cond_broadcast(&r->space);
		}
		if (n > 0) {
			size_t m = n > (uint64_t)r->batch ? (size_t)r->batch : (size_t)n;
			streaming = m == (size_t)r->batch;
			pthread_mutex_unlock(&r->mu);
			write_steps(r, t, m);
			atomic_store_explicit(&r->tail, t + m, memory_order_release);
			pthread_mutex_lock(&r->mu);
			pthread_cond_broadcast(&r->space);
		}
	}
	pthread_cond_broadcast(&r->space);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ---- opening -------------------------------------------------------------- */

/* Creates a new trace database at path atomically: schema and run are
 * written to a private name first and linked into place, so a reader (or
 * a crash) never meets a file without them.  Returns 1 if the run was
 * created here, 0 if someone else created path meanwhile. */
static int create_atomically(struct moetrace_recorder *r, const char *path)
{
	struct util_err err = UTIL_ERR_INIT;
	struct store *s = NULL;
	char tmp[4096];
	int rc, made = 1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new-%ld", path, (long)getpid()) >= sizeof(tmp))
		return fail(r, MOETRACE_EUSAGE, "path '%s' is too long", path);
	unlink(tmp);
	if ((rc = store_open(tmp, STORE_CREATE, &s, &err))) {
		unlink(tmp);
		return fail(r, rc, "cannot create '%s': %s", path, err.msg);
	}
	if ((rc = store_run_add(s, &r->run))) {
		fail(r, rc, "cannot add run '%s' to '%s': %s", r->run.name, path, store_errmsg(s));
		store_free(s);
		unlink(tmp);
		return rc;
	}
	store_free(s); /* the last close checkpoints and removes the WAL */
	if (link(tmp, path) != 0) {
		if (errno == EEXIST) {
			made = 0;
		} else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
			/* no hard links here; and never over a file another
			 * process created meanwhile */
			if (errno == EEXIST) {
				unlink(tmp);
				return 0;
			}
			rc = fail(r, MOETRACE_EIO, "cannot create '%s': %s", path, strerror(errno));
			unlink(tmp);
			return rc;
		}
	}
	unlink(tmp);
	return made;
}

static int open_db(struct moetrace_recorder *r, const char *path, int append)
{
	struct util_err err = UTIL_ERR_INIT;
	struct store_run old;
	struct stat sb;
	int rc, created = 0;

	if (stat(path, &sb) != 0) {
		if (errno != ENOENT)
			return fail(r, MOETRACE_EIO, "cannot open '%s': %s", path, strerror(errno));
		if ((rc = create_atomically(r, path)) < 0)
			return rc;
		created = rc;
	}
	if ((rc = store_open(path, 0, &r->s, &err)))
		return fail(r, rc, "%s", err.msg);
	if (created) {
		if ((rc = store_run_get(r->s, r->run.name, &old)))
			return fail(r, rc, "%s", store_errmsg(r->s));
		r->run.id = old.id;
	} else if (store_run_get(r->s, r->run.name, &old) == 0) {
		struct store_run_stats st;
		if (!append)
			return fail(r, MOETRACE_EUSAGE,
				    "a run named '%s' already exists in '%s' (name another run, "
				    "or append to it)",
				    r->run.name, path);
		if (old.layers != r->run.layers || old.experts != r->run.experts ||
		    old.ranks != r->run.ranks || old.slots != r->run.slots)
			return fail(r, MOETRACE_EUSAGE,
				    "cannot append to run '%s': it has %d layers x %d experts on %d x "
				    "%d slots, not %d x %d on %d x %d",
				    r->run.name, old.layers, old.experts, old.ranks, old.slots,
				    r->run.layers, r->run.experts, r->run.ranks, r->run.slots);
		/* what the description gives must be what the run says: the
		 * steps appended would otherwise read under another top-k,
		 * model or layer numbering than the ones they were recorded
		 * with */
		if ((r->run.topk && old.topk != r->run.topk) ||
		    (r->run.model[0] && strcmp(old.model, r->run.model) != 0) ||
		    (r->run.first_layer && old.first_layer != r->run.first_layer))
			return fail(r, MOETRACE_EUSAGE,
				    "cannot append to run '%s': it is model '%s', top-%d, first MoE "
				    "layer %d; the description says '%s', top-%d, %d",
				    r->run.name, old.model, old.topk, old.first_layer, r->run.model,
				    r->run.topk, r->run.first_layer);
		if ((rc = store_run_stats(r->s, old.id, &st)))
			return fail(r, rc, "%s", store_errmsg(r->s));
		r->run = old;
		if (st.steps > 0)
			r->last_step = st.last_step;
		atomic_store(&r->last_step_pub, r->last_step);
	} else if ((rc = store_run_add(r->s, &r->run))) {
		return fail(r, rc, "cannot add run '%s' to '%s': %s", r->run.name, path,
			    store_errmsg(r->s));
	}
	return 0;
}

static void touch_pages(void *p, size_t n)
{
	volatile unsigned char *b = p;

	for (size_t i = 0; i < n; i += 4096)
		b[i] = 0;
	if (n)
		b[n - 1] = 0;
}

static int alloc_all(struct moetrace_recorder *r, const struct sizing *z)
{
	r->hdr = calloc((size_t)z->cap, sizeof(*r->hdr));
	r->counts = calloc((size_t)z->cap * z->cells, sizeof(uint32_t));
	r->pending = calloc(z->cells, sizeof(uint32_t));
	r->batchv = calloc((size_t)z->batch, sizeof(*r->batchv));
	r->seen = calloc((size_t)r->run.experts, 1);
	r->slotbuf = calloc(z->cells, sizeof(uint32_t));
	if (z->pslots) {
		r->plc = calloc((size_t)MAX_PLACEMENTS * (size_t)r->run.layers * z->pslots,
				sizeof(int32_t));
		r->cur_plc = calloc((size_t)r->run.layers * z->pslots, sizeof(int32_t));
	}
	if (!r->hdr || !r->counts || !r->pending || !r->batchv || !r->seen || !r->slotbuf ||
	    (z->pslots && (!r->plc || !r->cur_plc)))
		return fail(r, MOETRACE_ENOMEM, "out of memory allocating a %d-step ring (%lld bytes)",
			    z->cap, (long long)z->bytes);
	/* Fault every page in now: calloc'ed memory is mapped lazily, and a
	 * page fault inside step() is a wait the engine thread must not see.
	 * (A memset of calloc'ed memory would be optimised away.) */
	touch_pages(r->counts, (size_t)z->cap * z->cells * sizeof(uint32_t));
	touch_pages(r->pending, z->cells * sizeof(uint32_t));
	touch_pages(r->slotbuf, z->cells * sizeof(uint32_t));
	return 0;
}

static void release_all(struct moetrace_recorder *r)
{
	free(r->hdr);
	free(r->counts);
	free(r->pending);
	free(r->batchv);
	free(r->seen);
	free(r->plc);
	free(r->cur_plc);
	free(r->slotbuf);
	r->cur_plc = NULL;
	r->slotbuf = NULL;
	r->hdr = NULL;
	r->counts = NULL;
	r->pending = NULL;
	r->batchv = NULL;
	r->seen = NULL;
	r->plc = NULL;
}

static int set_cache(struct moetrace_recorder *r, int kib)
{
	if (store_cache_size(r->s, kib))
		return fail(r, MOETRACE_EDB, "%s", store_errmsg(r->s));
	return 0;
}

int moetrace_recorder_open(const char *path, const struct moetrace_run_desc *desc,
			   const struct moetrace_recorder_opts *opts,
			   struct moetrace_recorder **out)
{
	struct moetrace_recorder *r;
	struct sizing z;
	int rc;

	if (!out)
		return MOETRACE_EUSAGE;
	*out = r = calloc(1, sizeof(*r));
	if (!r)
		return MOETRACE_ENOMEM;
	r->closed = 1;
	r->last_step = -1;
	atomic_init(&r->last_step_pub, -1);
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	if (!path || !*path)
		return fail(r, MOETRACE_EUSAGE, "no database path");
	if ((rc = size_of(desc, opts, &z, r->errmsg, sizeof(r->errmsg))))
		return rc;
	r->cap = z.cap;
	r->batch = z.batch;
	r->policy = z.policy;
	r->flush_ms = z.flush_ms;
	r->cells = z.cells;
	r->pslots = z.pslots;
	r->mem_bound = z.bytes;
	snprintf(r->run.name, sizeof(r->run.name), "%s", desc->name);
	snprintf(r->run.model, sizeof(r->run.model), "%s", desc->model ? desc->model : "");
	r->shard = opts && opts->shard;
	r->shard_rank = r->shard ? opts->shard_rank : 0;
	if (r->shard)
		snprintf(r->run.source, sizeof(r->run.source), "shard rank=%d; %s", r->shard_rank,
			 desc->source ? desc->source : "recorder");
	else
		snprintf(r->run.source, sizeof(r->run.source), "%s",
			 desc->source ? desc->source : "recorder");
	r->run.layers = desc->layers;
	r->run.experts = desc->experts;
	r->run.topk = desc->topk;
	r->run.ranks = desc->ranks;
	r->run.slots = desc->slots;
	r->run.ranks_per_node = desc->ranks_per_node;
	r->run.first_layer = desc->first_layer;
	if ((rc = alloc_all(r, &z)))
		goto fail;
	if ((rc = open_db(r, path, opts && opts->append)) || (rc = set_cache(r, z.cache_kib)))
		goto fail;
	if (pthread_mutex_init(&r->mu, NULL) != 0) {
		rc = fail(r, MOETRACE_ENOMEM, "cannot create the recorder's mutex");
		goto fail;
	}
	if (pthread_cond_init(&r->wake, NULL) != 0) {
		pthread_mutex_destroy(&r->mu);
		rc = fail(r, MOETRACE_ENOMEM, "cannot create the recorder's condition");
		goto fail;
	}
	if (pthread_cond_init(&r->space, NULL) != 0) {
		pthread_cond_destroy(&r->wake);
		pthread_mutex_destroy(&r->mu);
		rc = fail(r, MOETRACE_ENOMEM, "cannot create the recorder's condition");
		goto fail;
	}
	r->sync_ready = 1;
	if ((rc = pthread_create(&r->thread, NULL, writer_main, r)) != 0) {
		rc = fail(r, MOETRACE_ENOMEM, "cannot start the writer thread: %s", strerror(rc));
		goto fail;
	}
	r->thread_started = 1;
	r->closed = 0;
	return 0;
fail:
	store_free(r->s);
	r->s = NULL;
	release_all(r);
	return rc;
}

/* ---- the engine thread's calls -------------------------------------------- */

static int check_open(struct moetrace_recorder *r)
{
	if (r->closed)
		return fail(r, MOETRACE_ESTATE, "recorder for run '%s' is closed", r->run.name);
	return 0;
}

static void wake_writer(struct moetrace_recorder *r)
{
	pthread_mutex_lock(&r->mu);
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->mu);
}

/* Copies one step into the ring (or drops it).  The hot path. */
static int push(struct moetrace_recorder *r, int64_t step, const uint32_t *counts, int phase,
		int64_t tokens)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	size_t k;
	struct entry *e;
	uint64_t q;

	r->last_step = step;
	atomic_store_explicit(&r->last_step_pub, step, memory_order_relaxed);
	if (h - t >= (uint64_t)r->cap) {
		if (r->policy == MOETRACE_DROP) {
			atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
			return fail(r, MOETRACE_EFULL, "ring of %d steps is full: step %lld dropped",
				    r->cap, (long long)step);
		}
		pthread_mutex_lock(&r->mu);
		pthread_cond_signal(&r->wake);
		while (h - (t = atomic_load(&r->tail)) >= (uint64_t)r->cap)
			pthread_cond_wait(&r->space, &r->mu);
		pthread_mutex_unlock(&r->mu);
	}
	k = (size_t)(h % (uint64_t)r->cap);
	e = &r->hdr[k];
	e->step = step;
	e->time = util_wall();
	e->phase = phase;
	e->tokens = tokens;
	memcpy(r->counts + k * r->cells, counts, r->cells * sizeof(uint32_t));
	atomic_store(&r->head, h + 1); /* seq_cst: ordered before the flag load */
	q = h + 1 - t;
	if ((int64_t)q > atomic_load_explicit(&r->high_water, memory_order_relaxed))
		atomic_store_explicit(&r->high_water, (int64_t)q, memory_order_relaxed);
	if (q >= (uint64_t)r->batch && atomic_load(&r->writer_sleeping))
		wake_writer(r);
	return 0;
}

static int check_step(struct moetrace_recorder *r, int64_t step)
{
	if (step <= r->last_step)
		return fail(r, MOETRACE_ESTATE,
			    "step %lld does not follow step %lld: steps must increase",
			    (long long)step, (long long)r->last_step);
	if (step < 0)
		return fail(r, MOETRACE_ERANGE, "step %lld is negative", (long long)step);
	if (step > STORE_STEP_MAX)
		return fail(r, MOETRACE_ERANGE, "step %lld is past %lld, the last a trace holds",
			    (long long)step, (long long)STORE_STEP_MAX);
	return 0;
}

/* Hands a finished top-k step to the ring. */
static int commit_pending(struct moetrace_recorder *r, int phase, int64_t tokens)
{
	if (!r->has_pending)
		return 0;
	r->has_pending = 0;
	return push(r, r->pending_step, r->pending, phase, tokens ? tokens : r->pending_tokens);
}

int moetrace_recorder_step(struct moetrace_recorder *rec, int64_t step, const uint32_t *counts,
			   int phase, int64_t tokens)
{
	int rc;

	if (!rec)
		return MOETRACE_EUSAGE;
	if ((rc = check_open(rec)))
		return rc;
	if (!counts)
		return fail(rec, MOETRACE_EUSAGE, "step %lld: no counts", (long long)step);
	if (phase < MOETRACE_PHASE_UNKNOWN || phase > MOETRACE_PHASE_DECODE || tokens < 0 ||
	    tokens > STORE_TOKENS_MAX)
		return fail(rec, MOETRACE_ERANGE, "step %lld: phase %d or tokens %lld out of range",
			    (long long)step, phase, (long long)tokens);
	if (rec->has_pending) {
		if (step <= rec->pending_step)
			return fail(rec, MOETRACE_ESTATE,
				    "step %lld does not follow top-k step %lld: steps must increase",
				    (long long)step, (long long)rec->pending_step);
		commit_pending(rec, MOETRACE_PHASE_UNKNOWN, 0);
	}
	if ((rc = check_step(rec, step)))
		return rc;
	return push(rec, step, counts, phase, tokens);
}

int moetrace_recorder_step_n(struct moetrace_recorder *rec, int64_t step, const uint32_t *counts,
			     size_t ncounts, int phase, int64_t tokens)
{
	if (!rec)
		return MOETRACE_EUSAGE;
	if (!rec->closed && ncounts != rec->cells)
		return fail(rec, MOETRACE_EUSAGE,
			    "step %lld: %zu counts given, run '%s' has %d layers x %d experts = %zu",
			    (long long)step, ncounts, rec->run.name, rec->run.layers,
			    rec->run.experts, rec->cells);
	return moetrace_recorder_step(rec, step, counts, phase, tokens);
}

int moetrace_recorder_step_slots(struct moetrace_recorder *rec, int64_t step,
				 const uint32_t *slot_counts, size_t nslots, int phase,
				 int64_t tokens)
{
	size_t L, P, S, E, first;
	int rc;

	if (!rec)
		return MOETRACE_EUSAGE;
	if ((rc = check_open(rec)))
		return rc;
	if (!rec->pslots)
		return fail(rec, MOETRACE_EUSAGE,
			    "run '%s' has no EP layout (ranks x slots): cannot take slot counts",
			    rec->run.name);
	L = (size_t)rec->run.layers;
	P = rec->pslots;
	E = (size_t)rec->run.experts;
	S = rec->shard ? (size_t)rec->run.slots : P;
	first = rec->shard ? (size_t)rec->shard_rank * S : 0;
	if (!slot_counts || nslots != S)
		return fail(rec, MOETRACE_EUSAGE,
			    "step %lld: %zu slots given, the %s has %zu per layer",
			    (long long)step, nslots, rec->shard ? "rank" : "run", S);
	if (!rec->have_plc)
		return fail(rec, MOETRACE_ESTATE,
			    "step %lld: slot counts need a placement first (moetrace_recorder_placement)",
			    (long long)step);
	memset(rec->slotbuf, 0, L * E * sizeof(uint32_t));
	for (size_t l = 0; l < L; l++) {
		const int32_t *map = rec->cur_plc + l * P + first;
		const uint32_t *c = slot_counts + l * S;
		uint32_t *dst = rec->slotbuf + l * E;
		for (size_t j = 0; j < S; j++)
			dst[map[j]] += c[j];
	}
	return moetrace_recorder_step(rec, step, rec->slotbuf, phase, tokens);
}

int moetrace_recorder_step_topk(struct moetrace_recorder *rec, int64_t step, int layer,
				const int32_t *topk_ids, int64_t ntokens, int k)
{
	uint32_t *row;
	int64_t n, i;
	int rc, started = 0;

	if (!rec)
		return MOETRACE_EUSAGE;
	if ((rc = check_open(rec)))
		return rc;
	if (layer < 0 || layer >= rec->run.layers)
		return fail(rec, MOETRACE_ERANGE, "step %lld: layer %d out of range [0, %d)",
			    (long long)step, layer, rec->run.layers);
	if (k <= 0 || ntokens < 0 || (ntokens > 0 && !topk_ids) || ntokens > INT64_MAX / k)
		return fail(rec, MOETRACE_EUSAGE, "step %lld layer %d: bad top-k shape %lld x %d",
			    (long long)step, layer, (long long)ntokens, k);
	if (rec->has_pending && step != rec->pending_step) {
		if (step < rec->pending_step)
			return fail(rec, MOETRACE_ESTATE,
				    "step %lld does not follow top-k step %lld: steps must increase",
				    (long long)step, (long long)rec->pending_step);
		commit_pending(rec, MOETRACE_PHASE_UNKNOWN, 0);
	}
	if (!rec->has_pending) {
		if ((rc = check_step(rec, step)))
			return rc;
		memset(rec->pending, 0, rec->cells * sizeof(uint32_t));
		rec->pending_step = step;
		rec->pending_tokens = 0;
		memset(rec->pending_layer_tokens, 0,
		       (size_t)rec->run.layers * sizeof(rec->pending_layer_tokens[0]));
		rec->has_pending = 1;
		started = 1;
	}
	row = rec->pending + (size_t)layer * (size_t)rec->run.experts;
	n = ntokens * k;
	for (i = 0; i < n; i++) {
		int32_t id = topk_ids[i];
		if (id >= rec->run.experts)
			break;
		if (id >= 0)
			row[id]++;
	}
	if (i < n) {
		int64_t bad = i;
		while (i-- > 0)
			if (topk_ids[i] >= 0)
				row[topk_ids[i]]--;
		if (started)
			rec->has_pending = 0;
		return fail(rec, MOETRACE_ERANGE,
			    "step %lld layer %d: token %lld routes to expert %d, out of range "
			    "[0, %d)",
			    (long long)step, layer, (long long)(bad / k), topk_ids[bad],
			    rec->run.experts);
	}
	/* the step's tokens: the most any layer routed, each layer's calls
	 * summed (saturating: a sum past the store's range is refused when
	 * the step is handed in) */
	rec->pending_layer_tokens[layer] = rec->pending_layer_tokens[layer] > INT64_MAX - ntokens
						   ? INT64_MAX
						   : rec->pending_layer_tokens[layer] + ntokens;
	if (rec->pending_layer_tokens[layer] > rec->pending_tokens)
		rec->pending_tokens = rec->pending_layer_tokens[layer];
	return 0;
}

int moetrace_recorder_step_end(struct moetrace_recorder *rec, int64_t step, int phase,
			       int64_t tokens)
{
	int rc;

	if (!rec)
		return MOETRACE_EUSAGE;
	if ((rc = check_open(rec)))
		return rc;
	if (!rec->has_pending || rec->pending_step != step)
		return fail(rec, MOETRACE_ESTATE, "step %lld has no top-k counts to end",
			    (long long)step);
	if (phase < MOETRACE_PHASE_UNKNOWN || phase > MOETRACE_PHASE_DECODE || tokens < 0 ||
	    tokens > STORE_TOKENS_MAX)
		return fail(rec, MOETRACE_ERANGE, "step %lld: phase %d or tokens %lld out of range",
			    (long long)step, phase, (long long)tokens);
	return commit_pending(rec, phase, tokens);
}

int moetrace_recorder_placement(struct moetrace_recorder *rec, int64_t from_step,
				const int32_t *phy2log)
{
	size_t L, P, E;
	int32_t *dst;
	int rc;

	if (!rec)
		return MOETRACE_EUSAGE;
	if ((rc = check_open(rec)))
		return rc;
	if (!rec->pslots)
		return fail(rec, MOETRACE_EUSAGE,
			    "run '%s' has no EP layout (ranks x slots): cannot record a placement",
			    rec->run.name);
	if (!phy2log || from_step < 0)
		return fail(rec, MOETRACE_EUSAGE, "placement from step %lld: no phy2log",
			    (long long)from_step);
	if (from_step > STORE_STEP_MAX)
		return fail(rec, MOETRACE_ERANGE,
			    "placement from step %lld: past %lld, the last step a trace holds",
			    (long long)from_step, (long long)STORE_STEP_MAX);
	L = (size_t)rec->run.layers;
	P = rec->pslots;
	E = (size_t)rec->run.experts;
	for (size_t l = 0; l < L; l++) {
		const int32_t *p = phy2log + l * P;
		size_t missing = 0;
		memset(rec->seen, 0, E);
		for (size_t i = 0; i < P; i++) {
			if (p[i] < 0 || (size_t)p[i] >= E)
				return fail(rec, MOETRACE_ERANGE,
					    "placement from step %lld: layer %zu slot %zu holds "
					    "expert %d, out of range [0, %zu)",
					    (long long)from_step, l, i, p[i], E);
			rec->seen[p[i]] = 1;
		}
		for (size_t e = 0; e < E; e++)
			missing += !rec->seen[e];
		if (missing)
			return fail(rec, MOETRACE_ERANGE,
				    "placement from step %lld: layer %zu places no replica of %zu "
				    "expert(s)",
				    (long long)from_step, l, missing);
	}
	pthread_mutex_lock(&rec->mu);
	while (rec->plc_head - rec->plc_tail >= MAX_PLACEMENTS) {
		if (rec->policy == MOETRACE_DROP) {
			pthread_mutex_unlock(&rec->mu);
			return fail(rec, MOETRACE_EFULL,
				    "%d placements are already waiting for the writer: placement "
				    "from step %lld dropped",
				    MAX_PLACEMENTS, (long long)from_step);
		}
		pthread_cond_signal(&rec->wake);
		pthread_cond_wait(&rec->space, &rec->mu);
	}
	pthread_mutex_unlock(&rec->mu);
	/* the slot at plc_head is the producer's until plc_head moves */
	dst = rec->plc + (size_t)(rec->plc_head % MAX_PLACEMENTS) * L * P;
	memcpy(dst, phy2log, L * P * sizeof(int32_t));
	memcpy(rec->cur_plc, phy2log, L * P * sizeof(int32_t));
	rec->have_plc = 1;
	pthread_mutex_lock(&rec->mu);
	rec->plc_from[rec->plc_head % MAX_PLACEMENTS] = from_step;
	rec->plc_head++;
	pthread_cond_signal(&rec->wake);
	pthread_mutex_unlock(&rec->mu);
	return 0;
}

/* Waits for the writer to commit everything handed in so far. */
static int drain(struct moetrace_recorder *r)
{
	uint64_t target = atomic_load_explicit(&r->head, memory_order_relaxed);
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	r->flush_req++;
	pthread_cond_signal(&r->wake);
	while (atomic_load(&r->tail) < target || r->plc_head != r->plc_tail)
		pthread_cond_wait(&r->space, &r->mu);
	r->flush_req--;
	if (r->werr) {
		rc = r->werr;
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", r->wmsg);
		r->werr = 0;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int moetrace_recorder_flush(struct moetrace_recorder *rec)
{
	int rc, rc2;

	if (!rec)
		return MOETRACE_EUSAGE;
	if ((rc = check_open(rec)))
		return rc;
	rc = commit_pending(rec, MOETRACE_PHASE_UNKNOWN, 0);
	rc2 = drain(rec);
	return rc2 ? rc2 : rc;
}

int moetrace_recorder_stats(struct moetrace_recorder *rec, struct moetrace_recorder_stats *st)
{
	if (!rec || !st)
		return MOETRACE_EUSAGE;
	memset(st, 0, sizeof(*st));
	st->recorded = atomic_load(&rec->recorded);
	st->dropped = atomic_load(&rec->dropped);
	st->failed = atomic_load(&rec->failed);
	st->queued = (int64_t)(atomic_load(&rec->head) - atomic_load(&rec->tail));
	st->high_water = atomic_load(&rec->high_water);
	st->batches = atomic_load(&rec->batches);
	st->bytes = atomic_load(&rec->bytes);
	st->placements = atomic_load(&rec->placements);
	st->mem_bound = rec->mem_bound;
	st->ring_steps = rec->cap;
	st->last_step = atomic_load_explicit(&rec->last_step_pub, memory_order_relaxed);
	st->last_error = atomic_load(&rec->last_error);
	return 0;
}

int moetrace_recorder_close(struct moetrace_recorder *rec)
{
	int rc, rc2;

	if (!rec)
		return MOETRACE_EUSAGE;
	if ((rc = check_open(rec)))
		return rc;
	rc = commit_pending(rec, MOETRACE_PHASE_UNKNOWN, 0);
	rc2 = drain(rec);
	if (rc2)
		rc = rc2;
	pthread_mutex_lock(&rec->mu);
	rec->stop = 1;
	pthread_cond_signal(&rec->wake);
	pthread_mutex_unlock(&rec->mu);
	pthread_join(rec->thread, NULL);
	rec->thread_started = 0;
	for (int i = 0, m = atomic_load(&rec->nobs); i < m; i++)
		if (rec->obs[i].closed)
			rec->obs[i].closed(rec->obs[i].ctx);
	store_free(rec->s);
	rec->s = NULL;
	release_all(rec);
	rec->closed = 1;
	return rc == MOETRACE_EFULL ? 0 : rc;
}

void moetrace_recorder_free(struct moetrace_recorder *rec)
{
	if (!rec)
		return;
	if (!rec->closed)
		moetrace_recorder_close(rec);
	/* observers read rec's counters: they go first, and those that read
	 * the others' state before the others */
	for (int pass = 1; pass >= 0; pass--)
		for (int i = 0, m = atomic_load(&rec->nobs); i < m; i++)
			if (!rec->obs[i].reads_others == !pass && rec->obs[i].release)
				rec->obs[i].release(rec->obs[i].ctx);
	if (rec->sync_ready) {
		pthread_cond_destroy(&rec->space);
		pthread_cond_destroy(&rec->wake);
		pthread_mutex_destroy(&rec->mu);
	}
	store_free(rec->s);
	release_all(rec);
	free(rec);
}

int moetrace_counts_decode(const void *blob, size_t len, uint32_t *counts, size_t experts)
{
	if (!blob || !counts)
		return MOETRACE_EUSAGE;
	return store_codec_decode(blob, len, counts, experts) ? MOETRACE_ERANGE : 0;
}

/* ---- observers ------------------------------------------------------------ */

int collector_recorder_observe(struct moetrace_recorder *rec, const struct collector_observer *o)
{
	int n, rc;

	if (!rec || !o || !o->name)
		return MOETRACE_EUSAGE;
	if ((rc = check_open(rec)))
		return rc;
	n = atomic_load(&rec->nobs);
	for (int i = 0; i < n; i++)
		if (!strcmp(rec->obs[i].name, o->name))
			return fail(rec, MOETRACE_ESTATE, "the recorder has a %s observer already",
				    o->name);
	if (n == MAX_OBSERVERS)
		return fail(rec, MOETRACE_EFULL, "the recorder has %d observers already",
			    MAX_OBSERVERS);
	rec->obs[n] = *o;
	atomic_store(&rec->nobs, n + 1); /* the writer sees the entry whole */
	return 0;
}

void *collector_recorder_observer(struct moetrace_recorder *rec, const char *name)
{
	for (int i = 0, n = atomic_load(&rec->nobs); i < n; i++)
		if (!strcmp(rec->obs[i].name, name))
			return rec->obs[i].ctx;
	return NULL;
}

const struct store_run *collector_recorder_run(const struct moetrace_recorder *rec)
{
	return &rec->run;
}

const char *collector_recorder_path(const struct moetrace_recorder *rec)
{
	return rec->s ? store_path(rec->s) : NULL;
}


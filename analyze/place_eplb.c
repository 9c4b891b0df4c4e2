/*
 * place_eplb.c: DeepSeek's EPLB (deepseek-ai/EPLB eplb.py) reproduced
 * exactly, ties included.  The reference works in float32 on CPU: loads
 * are cast to float, per-replica loads are float divisions, pack loads
 * are float sums; we do the same arithmetic in the same order.
 *
 * Tie rules (docs/algorithms.md):
 *  - torch.sort(descending=True) is taken as stable: equal keys keep
 *    ascending index order (what torch's CPU sort gives for the small
 *    inputs of the README example, which pins it);
 *  - pack choice: Python min() over non-full packs, first minimum;
 *  - replication: torch max(dim).indices, first maximum.
 */
#include "analyze/place_int.h"

#include <stdlib.h>
#include <string.h>

struct key_idx {
	float key;
	int idx;
};

static int cmp_desc_stable(const void *pa, const void *pb)
{
	const struct key_idx *a = pa, *b = pb;

	if (a->key > b->key)
		return -1;
	if (a->key < b->key)
		return 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

/*
 * A binary heap of indices ordered by (key, index): the root is the item a
 * linear scan with the reference's tie rule would pick (first index among
 * equal keys), so the heaps below give the same choices in O(log n).
 * max_first: largest key first (replication); else smallest (packing).
 */
struct heap {
	int *a, n;
	const float *key;
	int max_first;
};

static int heap_before(const struct heap *h, int x, int y)
{
	if (h->key[x] != h->key[y])
		return h->max_first ? h->key[x] > h->key[y] : h->key[x] < h->key[y];
	return x < y;
}

static void heap_down(struct heap *h, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && heap_before(h, h->a[l], h->a[m]))
			m = l;
		if (r < h->n && heap_before(h, h->a[r], h->a[m]))
			m = r;
		if (m == i)
			return;
		int t = h->a[i];
		h->a[i] = h->a[m];
		h->a[m] = t;
		i = m;
	}
}

static void heap_build(struct heap *h)
{
	for (int i = h->n / 2 - 1; i >= 0; i--)
		heap_down(h, i);
}

/* balanced_packing for one row: n items, m packs of n/m items each.
 * OUT pack[n], rank_in_pack[n].  tmp: n key_idx. */
static void balanced_packing(const float *w, int n, int m, int *pack, int *rank,
			     struct key_idx *tmp, float *pw, int *pitems, int *heap_buf)
{
	int per = n / m;

	if (per == 1) {
		for (int i = 0; i < n; i++) {
			pack[i] = i;
			rank[i] = 0;
		}
		return;
	}
	for (int i = 0; i < n; i++) {
		tmp[i].key = w[i];
		tmp[i].idx = i;
	}
	qsort(tmp, (size_t)n, sizeof(*tmp), cmp_desc_stable);
	struct heap h = { heap_buf, m, pw, 0 };
	for (int p = 0; p < m; p++) {
		pw[p] = 0;
		pitems[p] = 0;
		heap_buf[p] = p;
	}
	for (int k = 0; k < n; k++) {
		int g = tmp[k].idx, best = h.a[0];
		pack[g] = best;
		rank[g] = pitems[best];
		pw[best] = pw[best] + w[g];
		pitems[best]++;
		if (pitems[best] == per) /* full: out of the heap */
			h.a[0] = h.a[--h.n];
		heap_down(&h, 0);
	}
}

/* replicate_experts for one row: nlog experts to nphy replicas.
 * OUT phy2mlog[nphy], cnt[nlog]. */
static void replicate(const float *w, int nlog, int nphy, int *phy2mlog, int *cnt, float *val,
		      int *heap_buf)
{
	struct heap h = { heap_buf, nlog, val, 1 };

	for (int i = 0; i < nlog; i++) {
		phy2mlog[i] = i;
		cnt[i] = 1;
		val[i] = w[i] / 1.0f;
		heap_buf[i] = i;
	}
	heap_build(&h);
	for (int i = nlog; i < nphy; i++) {
		int best = h.a[0];
		phy2mlog[i] = best;
		cnt[best]++;
		val[best] = w[best] / (float)cnt[best];
		heap_down(&h, 0);
	}
}

static int eplb_run(const struct analyze_place_in *in, int groups, int nodes, int32_t *phy2log,
		    struct util_err *err)
{
	int E = in->experts, D = in->ranks, S = in->slots, R = D * S;
	int G = groups, N = nodes, rc = 0;

	if (E % G)
		return util_err_set(err, UTIL_EUSAGE, "%d experts do not split into %d groups", E, G);
	if (D % N)
		return util_err_set(err, UTIL_EUSAGE, "%d ranks do not split into %d nodes", D, N);
	if (G % N) /* the reference falls back to the global policy */
		G = N = 1;
	if (R < E)
		return util_err_set(err, UTIL_EUSAGE, "%d slots cannot hold %d experts", R, E);
	int gsize = E / G, gpn = G / N, epn = E / N, rpn = R / N, dpn = D / N;
	if (rpn < epn)
		return util_err_set(err, UTIL_EUSAGE,
				    "%d slots per node cannot hold %d experts per node", rpn, epn);
	int nmax = E > R ? E : R;
	float *w = malloc((size_t)E * sizeof(float));
	float *gw = calloc((size_t)G, sizeof(float));
	float *mw = malloc((size_t)epn * sizeof(float));
	float *pw = malloc((size_t)nmax * sizeof(float));
	float *tok = malloc((size_t)rpn * sizeof(float));
	int *gpack = malloc((size_t)G * sizeof(int)), *grank = malloc((size_t)G * sizeof(int));
	int *log2mlog = malloc((size_t)E * sizeof(int)), *mlog2log = malloc((size_t)E * sizeof(int));
	int *phy2mlog = malloc((size_t)rpn * sizeof(int)), *cnt = malloc((size_t)epn * sizeof(int));
	int *pack = malloc((size_t)rpn * sizeof(int)), *rank = malloc((size_t)rpn * sizeof(int));
	int *pitems = malloc((size_t)nmax * sizeof(int)), *hbuf = malloc((size_t)nmax * sizeof(int));
	float *val = malloc((size_t)nmax * sizeof(float));
	struct key_idx *tmp = malloc((size_t)nmax * sizeof(*tmp));

	if (!w || !gw || !mw || !pw || !tok || !gpack || !grank || !log2mlog || !mlog2log ||
	    !phy2mlog || !cnt || !pack || !rank || !pitems || !tmp || !hbuf || !val) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (int e = 0; e < E; e++)
		w[e] = (float)in->heat[e];
	/* step 1: groups to nodes */
	for (int g = 0; g < G; g++) {
		float s = 0;
		for (int j = 0; j < gsize; j++)
			s += w[g * gsize + j];
		gw[g] = s;
	}
	balanced_packing(gw, G, N, gpack, grank, tmp, pw, pitems, hbuf);
	for (int e = 0; e < E; e++) {
		int g = e / gsize;
		log2mlog[e] = (gpack[g] * gpn + grank[g]) * gsize + e % gsize;
		mlog2log[log2mlog[e]] = e;
	}
	for (int n = 0; n < N; n++) {
		/* step 2: replicas inside the node */
		for (int j = 0; j < epn; j++)
			mw[j] = w[mlog2log[n * epn + j]];
		replicate(mw, epn, rpn, phy2mlog, cnt, val, hbuf);
		/* step 3: replicas to the node's GPUs */
		for (int i = 0; i < rpn; i++)
			tok[i] = mw[phy2mlog[i]] / (float)cnt[phy2mlog[i]];
		balanced_packing(tok, rpn, dpn, pack, rank, tmp, pw, pitems, hbuf);
		for (int i = 0; i < rpn; i++) {
			int pphy = pack[i] * S + rank[i];
			phy2log[n * rpn + pphy] = mlog2log[phy2mlog[i] + n * epn];
		}
	}
out:
	free(w);
	free(gw);
	free(mw);
	free(pw);
	free(tok);
	free(gpack);
	free(grank);
	free(log2mlog);
	free(mlog2log);
	free(phy2mlog);
	free(cnt);
	free(pack);
	free(rank);
	free(pitems);
	free(hbuf);
	free(val);
	free(tmp);
	return rc;
}

int analyze_place_eplb(const struct analyze_place_in *in, int32_t *phy2log, struct util_err *err)
{
	return eplb_run(in, 1, 1, phy2log, err);
}

int analyze_place_eplb_hier(const struct analyze_place_in *in, int32_t *phy2log,
			    struct util_err *err)
{
	int nodes = in->nodes > 0 ? in->nodes : 1;
	int groups = in->groups > 0 ? in->groups : nodes;

	return eplb_run(in, groups, nodes, phy2log, err);
}

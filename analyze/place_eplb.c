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

/* Stable sort by key descending (equal keys keep index order), as the
 * reference's sort gives: insertion sort for short inputs, else an LSD
 * radix sort on the bits of the non-negative float keys.  tmp: n more. */
static void sort_desc_stable(struct key_idx *v, int n, struct key_idx *tmp)
{
	if (n < 48) {
		for (int i = 1; i < n; i++) {
			struct key_idx x = v[i];
			int j = i;
			while (j > 0 && v[j - 1].key < x.key) {
				v[j] = v[j - 1];
				j--;
			}
			v[j] = x;
		}
		return;
	}
	for (int shift = 0; shift < 32; shift += 8) {
		int count[257] = { 0 };
		for (int i = 0; i < n; i++) {
			uint32_t u;
			memcpy(&u, &v[i].key, sizeof(u));
			count[((~u >> shift) & 0xff) + 1]++;
		}
		for (int d = 0; d < 256; d++)
			count[d + 1] += count[d];
		for (int i = 0; i < n; i++) {
			uint32_t u;
			memcpy(&u, &v[i].key, sizeof(u));
			tmp[count[(~u >> shift) & 0xff]++] = v[i];
		}
		memcpy(v, tmp, (size_t)n * sizeof(*v));
	}
}

/*
 * A binary min-heap of (key, index) pairs: the root is the item a linear
 * scan with the reference's tie rule would pick (smallest key, first index
 * among equal keys), so the heaps below give the same choices in
 * O(log n).  Replication stores negated loads to pick the largest.
 */
static int heap_before(const struct key_idx *x, const struct key_idx *y)
{
	return x->key < y->key || (x->key == y->key && x->idx < y->idx);
}

static void heap_down(struct key_idx *h, int n, int i)
{
	struct key_idx x = h[i];

	for (;;) {
		int l = 2 * i + 1, m;
		if (l >= n)
			break;
		m = l + 1 < n && heap_before(&h[l + 1], &h[l]) ? l + 1 : l;
		if (!heap_before(&h[m], &x))
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = x;
}

/* balanced_packing for one row: n items, m packs of n/m items each.
 * OUT pack[n], rank_in_pack[n].  tmp: 2n key_idx; heap: m key_idx. */
static void balanced_packing(const float *w, int n, int m, int *pack, int *rank,
			     struct key_idx *tmp, int *pitems, struct key_idx *heap)
{
	int per = n / m, hn = m;

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
	sort_desc_stable(tmp, n, tmp + n);
	for (int p = 0; p < m; p++) {
		pitems[p] = 0;
		heap[p].key = 0;
		heap[p].idx = p;
	}
	for (int k = 0; k < n; k++) {
		int g = tmp[k].idx, best = heap[0].idx;
		pack[g] = best;
		rank[g] = pitems[best]++;
		heap[0].key = heap[0].key + w[g];
		if (pitems[best] == per) /* full: out of the heap */
			heap[0] = heap[--hn];
		heap_down(heap, hn, 0);
	}
}

/* replicate_experts for one row: nlog experts to nphy replicas.
 * OUT phy2mlog[nphy], cnt[nlog].  heap: nlog key_idx. */
static void replicate(const float *w, int nlog, int nphy, int *phy2mlog, int *cnt,
		      struct key_idx *heap)
{
	for (int i = 0; i < nlog; i++) {
		phy2mlog[i] = i;
		cnt[i] = 1;
		heap[i].key = -w[i];
		heap[i].idx = i;
	}
	for (int i = nlog / 2 - 1; i >= 0; i--)
		heap_down(heap, nlog, i);
	for (int i = nlog; i < nphy; i++) {
		int best = heap[0].idx;
		phy2mlog[i] = best;
		cnt[best]++;
		heap[0].key = -(w[best] / (float)cnt[best]);
		heap_down(heap, nlog, 0);
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
	float *tok = malloc((size_t)rpn * sizeof(float));
	int *gpack = malloc((size_t)G * sizeof(int)), *grank = malloc((size_t)G * sizeof(int));
	int *log2mlog = malloc((size_t)E * sizeof(int)), *mlog2log = malloc((size_t)E * sizeof(int));
	int *phy2mlog = malloc((size_t)rpn * sizeof(int)), *cnt = malloc((size_t)epn * sizeof(int));
	int *pack = malloc((size_t)rpn * sizeof(int)), *rank = malloc((size_t)rpn * sizeof(int));
	int *pitems = malloc((size_t)nmax * sizeof(int));
	struct key_idx *tmp = malloc(2 * (size_t)nmax * sizeof(*tmp));
	struct key_idx *heap = malloc((size_t)nmax * sizeof(*heap));

	if (!w || !gw || !mw || !tok || !gpack || !grank || !log2mlog || !mlog2log ||
	    !phy2mlog || !cnt || !pack || !rank || !pitems || !tmp || !heap) {
		rc = util_err_set(err, UTIL_ENOMEM, "out of memory");
		goto out;
	}
	for (int e = 0; e < E; e++)
		w[e] = (float)in->heat[e] + 0.0f; /* -0 sorts as 0, as in torch */
	/* step 1: groups to nodes */
	for (int g = 0; g < G; g++) {
		float s = 0;
		for (int j = 0; j < gsize; j++)
			s += w[g * gsize + j];
		gw[g] = s;
	}
	balanced_packing(gw, G, N, gpack, grank, tmp, pitems, heap);
	for (int e = 0; e < E; e++) {
		int g = e / gsize;
		log2mlog[e] = (gpack[g] * gpn + grank[g]) * gsize + e % gsize;
		mlog2log[log2mlog[e]] = e;
	}
	for (int n = 0; n < N; n++) {
		/* step 2: replicas inside the node */
		for (int j = 0; j < epn; j++)
			mw[j] = w[mlog2log[n * epn + j]];
		replicate(mw, epn, rpn, phy2mlog, cnt, heap);
		/* step 3: replicas to the node's GPUs */
		for (int i = 0; i < rpn; i++)
			tok[i] = mw[phy2mlog[i]] / (float)cnt[phy2mlog[i]];
		balanced_packing(tok, rpn, dpn, pack, rank, tmp, pitems, heap);
		for (int i = 0; i < rpn; i++) {
			int pphy = pack[i] * S + rank[i];
			phy2log[n * rpn + pphy] = mlog2log[phy2mlog[i] + n * epn];
		}
	}
out:
	free(w);
	free(gw);
	free(mw);
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
	free(heap);
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

/*
 * place_eplb.c: DeepSeek's EPLB (deepseek-ai/EPLB eplb.py) reproduced
 * exactly, ties included.  The reference works in float32 on CPU: loads
 * are cast to float, per-replica loads are float divisions, pack loads
 * are float sums; we do the same arithmetic in the same order.
 *
 * Tie rules (docs/algorithms.md):
 *  - torch.sort(descending=True): libstdc++'s std::sort, emulated exactly
 *    (below 17 items: stable, equal keys in index order);
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

/*
 * torch.sort(descending=True) of a float row on the CPU is std::sort with
 * the comparison key_a > key_b on (key, index) pairs (PyTorch's
 * aten/src/ATen/native/cpu/SortingKernel.cpp, stable=False), so equal keys
 * come out in whatever order libstdc++'s introsort leaves them.  The
 * functions below follow libstdc++'s algorithm step by step (median of
 * three, unguarded partition, heap sort past 2*log2(n) levels, insertion
 * sort of the first 16 then unguarded insertion), so ties come out as the
 * reference has them.  Below 17 items this is an insertion sort: stable.
 */
static int ts_comp(const struct key_idx *a, const struct key_idx *b)
{
	return a->key > b->key;
}
static void ts_swap(struct key_idx *a, struct key_idx *b)
{
	struct key_idx t = *a;
	*a = *b;
	*b = t;
}
static void ts_push_heap(struct key_idx *f, long hole, long top, struct key_idx v)
{
	long parent = (hole - 1) / 2;
	while (hole > top && ts_comp(&f[parent], &v)) {
		f[hole] = f[parent];
		hole = parent;
		parent = (hole - 1) / 2;
	}
	f[hole] = v;
}
static void ts_adjust_heap(struct key_idx *f, long hole, long len, struct key_idx v)
{
	long top = hole, child = hole;
	while (child < (len - 1) / 2) {
		child = 2 * (child + 1);
		if (ts_comp(&f[child], &f[child - 1]))
			child--;
		f[hole] = f[child];
		hole = child;
	}
	if ((len & 1) == 0 && child == (len - 2) / 2) {
		child = 2 * (child + 1);
		f[hole] = f[child - 1];
		hole = child - 1;
	}
	ts_push_heap(f, hole, top, v);
}
static void ts_heap_sort(struct key_idx *f, long len)
{
	if (len >= 2)
		for (long parent = (len - 2) / 2;; parent--) {
			ts_adjust_heap(f, parent, len, f[parent]);
			if (parent == 0)
				break;
		}
	while (len > 1) {
		len--;
		struct key_idx v = f[len];
		f[len] = f[0];
		ts_adjust_heap(f, 0, len, v);
	}
}
static void ts_median_to_first(struct key_idx *r, struct key_idx *a, struct key_idx *b,
			       struct key_idx *c)
{
	if (ts_comp(a, b)) {
		if (ts_comp(b, c))
			ts_swap(r, b);
		else if (ts_comp(a, c))
			ts_swap(r, c);
		else
			ts_swap(r, a);
	} else if (ts_comp(a, c)) {
		ts_swap(r, a);
	} else if (ts_comp(b, c)) {
		ts_swap(r, c);
	} else {
		ts_swap(r, b);
	}
}
static struct key_idx *ts_partition(struct key_idx *first, struct key_idx *last,
				    const struct key_idx *pivot)
{
	for (;;) {
		while (ts_comp(first, pivot))
			first++;
		last--;
		while (ts_comp(pivot, last))
			last--;
		if (!(first < last))
			return first;
		ts_swap(first, last);
		first++;
	}
}
static void ts_introsort(struct key_idx *first, struct key_idx *last, int depth)
{
	while (last - first > 16) {
		if (depth == 0) {
			ts_heap_sort(first, last - first);
			return;
		}
		depth--;
		struct key_idx *mid = first + (last - first) / 2;
		ts_median_to_first(first, first + 1, mid, last - 1);
		struct key_idx *cut = ts_partition(first + 1, last, first);
		ts_introsort(cut, last, depth);
		last = cut;
	}
}
static void ts_linear_insert(struct key_idx *last)
{
	struct key_idx v = *last, *next = last - 1;
	while (ts_comp(&v, next)) {
		*last = *next;
		last = next;
		next--;
	}
	*last = v;
}
static void ts_insertion(struct key_idx *first, struct key_idx *last)
{
	if (first == last)
		return;
	for (struct key_idx *i = first + 1; i != last; i++) {
		if (ts_comp(i, first)) {
			struct key_idx v = *i;
			for (struct key_idx *j = i; j != first; j--)
				*j = *(j - 1);
			*first = v;
		} else {
			ts_linear_insert(i);
		}
	}
}
static void sort_torch_desc(struct key_idx *v, long n)
{
	if (n < 2)
		return;
	int lg = 0;
	while ((2L << lg) <= n)
		lg++;
	ts_introsort(v, v + n, 2 * lg);
	if (n > 16) {
		ts_insertion(v, v + 16);
		for (struct key_idx *i = v + 16; i != v + n; i++)
			ts_linear_insert(i);
	} else {
		ts_insertion(v, v + n);
	}
}

/*
 * The winner trees below compare (key, index) pairs packed into one
 * uint64_t each: the key's float bits above, the index below.  Every key here is a
 * non-negative float (loads are summed or divided from +0 or positive
 * values; analyze_place refuses negative and NaN heat), and for those the
 * bit pattern orders as the value does, so one integer comparison gives
 * "smaller key, then smaller index": the item a linear scan with the
 * reference's tie rule would pick.  Replication wants the largest load
 * first and stores the complemented bits.
 */
static uint64_t hkey(float key, int idx)
{
	uint32_t b;

	memcpy(&b, &key, sizeof(b));
	return (uint64_t)b << 32 | (uint32_t)idx;
}

static uint64_t hkey_max(float key, int idx)
{
	uint32_t b;

	memcpy(&b, &key, sizeof(b));
	return (uint64_t)~b << 32 | (uint32_t)idx;
}

static float hkey_float(uint64_t k)
{
	uint32_t b = (uint32_t)(k >> 32);
	float f;

	memcpy(&f, &b, sizeof(f));
	return f;
}

/*
 * A winner tree over the packs (or experts): leaves hold the keys, padded
 * with UINT64_MAX to a power of two, and each inner node the smaller of
 * its children's, so t[1] is the smallest key.  Keys are unique (the index
 * is part of them): the root is exactly the item a linear scan with the
 * reference's tie rule would pick.  Changing a leaf walks up to the root,
 * each level one comparison with the sibling, whose load does not wait
 * on the level below (a heap's sift waits on each load it compares).
 * t: 2 * size entries.
 */
static int tree_size(int n)
{
	int z = 1;

	while (z < n)
		z *= 2;
	return z;
}

static void tree_build(uint64_t *t, int z)
{
	for (int j = z - 1; j >= 1; j--) {
		const uint64_t *c = t + 2 * (size_t)j;
		t[j] = c[0] < c[1] ? c[0] : c[1];
	}
}

static void tree_set(uint64_t *t, int z, int leaf, uint64_t key)
{
	int j = z + leaf;

	t[j] = key;
	for (; j > 1; j >>= 1) {
		uint64_t s = t[j ^ 1];
		key = key < s ? key : s;
		t[j >> 1] = key;
	}
}

/* balanced_packing for one row: n items, m packs of n/m items each.
 * OUT pack[n], rank_in_pack[n].  tmp: 2n key_idx; t: 2 * tree_size(m). */
static void balanced_packing(const float *w, int n, int m, int *pack, int *rank,
			     struct key_idx *tmp, int *pitems, uint64_t *t)
{
	int per = n / m, z = tree_size(m);

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
	sort_torch_desc(tmp, n);
	for (int p = 0; p < z; p++)
		t[z + p] = p < m ? hkey(0.0f, p) : UINT64_MAX;
	for (int p = 0; p < m; p++)
		pitems[p] = 0;
	tree_build(t, z);
	for (int k = 0; k < n; k++) {
		int g = tmp[k].idx, best = (int)(uint32_t)t[1];
		pack[g] = best;
		rank[g] = pitems[best]++;
		/* full: out of the running */
		tree_set(t, z, best,
			 pitems[best] == per ? UINT64_MAX : hkey(hkey_float(t[1]) + w[g], best));
	}
}

/* replicate_experts for one row: nlog experts to nphy replicas.
 * OUT phy2mlog[nphy], cnt[nlog].  t: 2 * tree_size(nlog). */
static void replicate(const float *w, int nlog, int nphy, int *phy2mlog, int *cnt, uint64_t *t)
{
	int z = tree_size(nlog);

	for (int i = 0; i < z; i++)
		t[z + i] = i < nlog ? hkey_max(w[i], i) : UINT64_MAX;
	for (int i = 0; i < nlog; i++) {
		phy2mlog[i] = i;
		cnt[i] = 1;
	}
	tree_build(t, z);
	for (int i = nlog; i < nphy; i++) {
		int best = (int)(uint32_t)t[1];
		phy2mlog[i] = best;
		cnt[best]++;
		tree_set(t, z, best, hkey_max(w[best] / (float)cnt[best], best));
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
	/* analyze_place checked experts, ranks, slots >= 1; the packings
	 * below need at least one item and one pack per node */
	if (gsize < 1 || epn < 1 || dpn < 1)
		return util_err_set(err, UTIL_EUSAGE, "%d experts on %d ranks in %d nodes", E, D,
				    N);
	int nmax = E > R ? E : R;
	/* one block per type: key_idx, float and int arrays, and the tree */
	size_t nkey = 2 * (size_t)nmax, nflt = (size_t)E + G + epn + rpn,
	       nint = 2 * (size_t)G + 2 * (size_t)E + 3 * (size_t)rpn + epn + nmax;
	struct key_idx *tmp = malloc(nkey * sizeof(struct key_idx));
	float *w = malloc(nflt * sizeof(float));
	int *gpack = malloc(nint * sizeof(int));
	uint64_t *tree = malloc(2 * (size_t)tree_size(nmax) * sizeof(uint64_t));
	if (!tmp || !w || !gpack || !tree) {
		free(tmp);
		free(w);
		free(gpack);
		free(tree);
		return util_err_set(err, UTIL_ENOMEM, "out of memory");
	}
	float *gw = w + E, *mw = gw + G, *tok = mw + epn;
	memset(gw, 0, (size_t)G * sizeof(float));
	int *grank = gpack + G, *log2mlog = grank + G, *mlog2log = log2mlog + E,
	    *phy2mlog = mlog2log + E, *pack = phy2mlog + rpn, *rank = pack + rpn, *cnt = rank + rpn,
	    *pitems = cnt + epn;

	for (int e = 0; e < E; e++)
		w[e] = (float)in->heat[e] + 0.0f; /* -0 sorts as 0, as in torch */
	/* step 1: groups to nodes */
	for (int g = 0; g < G; g++) {
		float s = 0;
		for (int j = 0; j < gsize; j++)
			s += w[g * gsize + j];
		gw[g] = s;
	}
	balanced_packing(gw, G, N, gpack, grank, tmp, pitems, tree);
	for (int g = 0, e = 0; g < G; g++)
		for (int j = 0; j < gsize; j++, e++) {
			log2mlog[e] = (gpack[g] * gpn + grank[g]) * gsize + j;
			mlog2log[log2mlog[e]] = e;
		}
	for (int n = 0; n < N; n++) {
		/* step 2: replicas inside the node */
		for (int j = 0; j < epn; j++)
			mw[j] = w[mlog2log[n * epn + j]];
		replicate(mw, epn, rpn, phy2mlog, cnt, tree);
		/* step 3: replicas to the node's GPUs */
		for (int i = 0; i < rpn; i++)
			tok[i] = mw[phy2mlog[i]] / (float)cnt[phy2mlog[i]];
		balanced_packing(tok, rpn, dpn, pack, rank, tmp, pitems, tree);
		for (int i = 0; i < rpn; i++) {
			int pphy = pack[i] * S + rank[i];
			phy2log[n * rpn + pphy] = mlog2log[phy2mlog[i] + n * epn];
		}
	}
	free(tmp);
	free(w);
	free(gpack);
	free(tree);
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

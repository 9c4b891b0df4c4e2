"""The next-window protocol of `moetrace compare --rounds N`, run on a CSV
trace (step,layer,expert,tokens) with DeepSeek's public eplb.py
(github.com/deepseek-ai/EPLB) instead of moetrace: the selected steps cut
into N windows by ordinal ([k n / N, (k + 1) n / N)), eplb fitted on
window k's summed heat and scored on window k+1 (sum over layers of max /
sum over layers of mean device load, a replicated expert's tokens split
evenly), mean over k = 0..N-2.  Prints the static layout's and eplb.py's
figures.

usage: rounds_public.py EPLB_PY CSV RANKS SLOTS [N]
"""
import importlib.util
import sys

import numpy as np
import torch


def main():
    path, csv, R, S = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    N = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    spec = importlib.util.spec_from_file_location("eplb", path)
    eplb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eplb)
    d = np.loadtxt(csv, delimiter=",", skiprows=1, usecols=(0, 1, 2, 3), dtype=np.int64)
    L, E = d[:, 1].max() + 1, d[:, 2].max() + 1
    heat = np.zeros((d[:, 0].max() + 1, L, E))
    np.add.at(heat, (d[:, 0], d[:, 1], d[:, 2]), d[:, 3])
    steps = np.unique(d[:, 0])
    n = len(steps)
    win = [steps[k * n // N:(k + 1) * n // N] for k in range(N)]

    def score(pl, h):
        mx = mean = 0.0
        for l in range(L):
            p = pl[l]
            cnt = np.bincount(p, minlength=E)
            load = (h[l][p] / cnt[p]).reshape(R, S).sum(1)
            mx += load.max()
            mean += load.mean()
        return mx / mean

    static = np.tile(np.arange(R * S) % E, (L, 1))
    st, ep = [], []
    for k in range(N - 1):
        fit, nxt = heat[win[k]].sum(0), heat[win[k + 1]].sum(0)
        # one node, one group: eplb.py's global policy for R ranks
        p2l, _, _ = eplb.rebalance_experts(torch.tensor(fit), R * S, 1, 1, R)
        ep.append(score(p2l.numpy(), nxt))
        st.append(score(static, nxt))
    print("%.4f %.4f" % (np.mean(st), np.mean(ep)))


if __name__ == "__main__":
    main()

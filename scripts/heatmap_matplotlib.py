#!/usr/bin/python3
"""The peer of `moetrace render DB heatmap` in the benchmark: the same
layer x expert heatmap (mean tokens per step, viridis, colour bar with its
unit, 1000 x 600 pixels) drawn by matplotlib's Agg backend with imshow.

usage: heatmap_matplotlib.py HEAT.csv OUT.png
HEAT.csv: rows "layer,expert,tokens_per_step" with a header line, as
`moetrace sql --format csv` prints them from the expert_heat view.
Debian's python3-matplotlib and python3-numpy; nothing else.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)
    layers = int(rows[:, 0].max()) + 1
    experts = int(rows[:, 1].max()) + 1
    heat = np.zeros((layers, experts))
    heat[rows[:, 0].astype(int), rows[:, 1].astype(int)] = rows[:, 2]
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    im = ax.imshow(heat, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_title("Expert heat")
    ax.set_xlabel("expert")
    ax.set_ylabel("MoE layer")
    fig.colorbar(im, ax=ax, label="tokens per step (mean over the steps)")
    fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()

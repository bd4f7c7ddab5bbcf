#!/usr/bin/env python3
"""Draws the results of scripts/bench_envoy.py: one panel per shape, a bar per variant with its median
(requests/s or MB/s), labelled with its ratio to its floor (the no-op wasm filter, or the copy-back
filter for shapes with bodies; the no-op dynamic module for the native variants).

usage: bench_plot.py RESULTS.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"none": "#9e9e9e", "noop": "#64b5f6", "copy-back": "#1976d2", "rbac+log": "#81c784",
          "skeleton": "#ba68c8",
          "pmg-authz": "#ffb74d", "pmg-all": "#e65100", "pmg-all-log": "#8d3a00",
          "noop-native": "#4db6ac", "skeleton-native": "#9575cd", "pmg-native-authz": "#26a69a",
          "pmg-native-all": "#00695c"}


def main():
    results, out = json.load(open(sys.argv[1])), sys.argv[2]
    shapes = results["shapes"]
    fig, axes = plt.subplots(1, len(shapes), figsize=(4.2 * len(shapes), 4.4), squeeze=False)
    for ax, (shape, d) in zip(axes[0], shapes.items()):
        names = list(d["variants"])
        values = [d["variants"][v]["median"] for v in names]
        bars = ax.bar(range(len(names)), values, color=[COLORS.get(v, "#333") for v in names])
        for b, v in zip(bars, names):
            ratio = d["variants"][v]["vs_floor"]
            ax.annotate("-" if ratio is None else f"{ratio:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{shape} ({d['unit']})\nlabels: ratio to the variant's floor", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"pci-mesh-guard in Envoy, one worker: medians of {results['rounds']} rounds", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()

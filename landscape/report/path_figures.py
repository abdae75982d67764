"""Figures of the paths between checkpoints (:mod:`landscape.sampling.paths`): the loss along a straight line,
and the optimisation path on the loss over its PCA plane."""

from __future__ import annotations

import numpy as np

from ..sampling.paths import Interpolation, Trajectory
from .figures import surface_levels
from .grid import surface_grid
from .plots import plt


def interpolation_figure(path: Interpolation, title: str = ""):
    """Loss (log scale, left) and accuracy (right) along the line, the end points marked, the straight line between
    the end losses dashed and the barrier drawn as an arrow at its α."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.plot(path.alphas, path.losses, "o-", ms=3, color="tab:blue", label="loss")
    i0, i1 = path._endpoint(0.0), path._endpoint(1.0)
    ax.plot([0, 1], [path.losses[i0], path.losses[i1]], "k--", lw=0.8, label="straight line between end losses")
    ax.plot([0, 1], [path.losses[i0], path.losses[i1]], "ks", ms=7)
    a = path.barrier_alpha
    base = (1 - a) * path.losses[i0] + a * path.losses[i1]
    ax.annotate("", xy=(a, base + path.barrier), xytext=(a, base), arrowprops={"arrowstyle": "<->", "color": "tab:red"})
    ax.plot([], [], color="tab:red", label=f"barrier = {path.barrier:.3g} at α = {a:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel(f"α (0 = {path.names[0]}, 1 = {path.names[1]})", fontsize=8)
    ax.set_ylabel("loss on the evaluation subset (log scale)", fontsize=8)
    acc = ax.twinx()
    acc.plot(path.alphas, path.accuracies, "-", color="tab:green", alpha=0.7, label="accuracy")
    acc.set_ylabel("accuracy", fontsize=8, color="tab:green")
    acc.set_ylim(0, 1.02)
    lines = ax.get_legend_handles_labels()
    more = acc.get_legend_handles_labels()
    fig.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="lower center", ncol=4)
    ax.set_title((f"{title}\n" if title else "") + "linear interpolation between two checkpoints", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def trajectory_figure(t: Trajectory, title: str = ""):
    """The loss over the PCA plane (filled log contours, colour bar) with the optimisation path on it, each
    checkpoint labelled; the axes say how much of the path's variance each component holds."""
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(7.2, 6))
    if t.surface is not None and np.isfinite(t.surface.losses).any():
        x, y, Z = surface_grid(t.surface)
        levels = surface_levels(t.surface)
        cs = ax.contourf(x, y, Z.T, levels=levels, cmap="viridis", norm=LogNorm() if levels is not None else None)
        fig.colorbar(cs, ax=ax, label="loss (log scale)", format="%.2g")
    ax.plot(t.coords[:, 0], t.coords[:, 1], "w-", lw=1.5)
    ax.plot(t.coords[:, 0], t.coords[:, 1], "o", color="tab:red", ms=5, label="checkpoints (optimisation path)")
    ax.plot(*t.coords[-1], "r*", ms=14, label=f"last: {t.names[-1]}")
    labels: dict[tuple[float, float], list[str]] = {}  # checkpoints at one point share one label
    for name, (x, y) in zip(t.names, t.coords):
        labels.setdefault((round(float(x), 9), round(float(y), 9)), []).append(name)
    for (px, py), group in labels.items():
        ax.annotate(" = ".join(group), (px, py), fontsize=7, color="white", xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(f"PC1 ({t.explained[0]:.1%} of the path's variance; parameter-space distance)", fontsize=8)
    ax.set_ylabel(f"PC2 ({t.explained[1]:.1%}; parameter-space distance)", fontsize=8)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title((f"{title}\n" if title else "") + "optimisation path on the PCA plane of its checkpoints", fontsize=9)
    fig.tight_layout()
    return fig

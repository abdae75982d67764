"""Figures and tables for analysis results (PNG via headless matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .analysis import AnalysisResult
from .plots import plt, save


def surface_grid(surface) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(axis, axis, losses[m, m]) from a grid sample (row 0 = the centre, also a grid node when m is odd)."""
    pts, losses = surface.coords, surface.losses
    axis = np.unique(pts[1:, 0])
    m = len(axis)
    Z = np.full((m, m), np.nan)
    ix = np.searchsorted(axis, pts[:, 0])
    iy = np.searchsorted(axis, pts[:, 1])
    ok = (ix < m) & (iy < m)
    Z[ix[ok], iy[ok]] = losses[ok]
    return axis, axis, Z


def plot_surface(result: AnalysisResult, ax2d, ax1d, title: str = "") -> None:
    """Li et al.-style 2-D contour (log-spaced levels) and 1-D curves through the centre."""
    x, y, Z = surface_grid(result.surface)
    finite = Z[np.isfinite(Z)]
    lo, hi = max(finite.min(), 1e-6), finite.max()
    levels = np.geomspace(lo, hi, 25) if hi > lo else None
    cs = ax2d.contour(x, y, Z.T, levels=levels, cmap="viridis")
    ax2d.clabel(cs, cs.levels[::6], fontsize=6, fmt="%.2g")
    ax2d.plot(0, 0, "r*")
    ax2d.set_title(title or "loss surface (log levels)", fontsize=8)
    mid = len(x) // 2
    ax1d.semilogy(x, Z[:, mid], label="direction 1")
    ax1d.semilogy(y, Z[mid, :], label="direction 2")
    ax1d.legend(fontsize=6)
    ax1d.set_xlabel("coordinate", fontsize=7)
    ax1d.set_ylabel("loss", fontsize=7)


def analysis_figures(result: AnalysisResult, folder: str | Path) -> list[Path]:
    """surface.png (2-D + 1-D), density.png (log), cloud.png (samples coloured by diffusion curvature)."""
    folder = Path(folder)
    written = []
    if result.surface is not None:
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.8))
        plot_surface(result, a, b)
        save(fig, folder / "surface.png")
        written.append(folder / "surface.png")
    if result.density is not None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        plot_density(result, ax)
        save(fig, folder / "density.png")
        written.append(folder / "density.png")
    if result.pointwise_dc is not None and result.sample.coords.shape[1] >= 2:
        u = result.sample.coords[result.sample.finite]
        fig, ax = plt.subplots(figsize=(4.6, 4))
        lim = np.nanpercentile(np.abs(result.pointwise_dc), 95) or 1.0
        sc = ax.scatter(u[:, 0], u[:, 1], c=result.pointwise_dc, cmap="coolwarm", vmin=-lim, vmax=lim, s=8)
        fig.colorbar(sc, ax=ax, label="diffusion curvature (comparison)")
        ax.plot(0, 0, "k*")
        ax.set_title("samples coloured by estimated curvature", fontsize=8)
        save(fig, folder / "cloud.png")
        written.append(folder / "cloud.png")
    return written


def plot_density(result: AnalysisResult, ax, label: str | None = None) -> None:
    d = result.density
    nodes = np.concatenate(d.nodes)
    span = nodes.max() - nodes.min()
    grid = np.linspace(nodes.min() - 0.05 * span, nodes.max() + 0.05 * span, 1000)
    ax.semilogy(grid, np.maximum(d.density(grid), 1e-10), label=label)
    ax.set_ylim(bottom=1e-6)
    ax.set_xlabel("eigenvalue", fontsize=7)
    ax.set_ylabel("density", fontsize=7)
    ax.set_title("Hessian eigenvalue density (SLQ)", fontsize=8)


def dc_vs_analytic(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Diffusion curvature at the centre vs the analytic scalar curvature of the sampled slice, one point per run."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, col in zip(axes, ("dc_comparison", "dc_laziness")):
        x = [r["analytic_scalar"] for r in rows]
        y = [r[col] for r in rows]
        ax.scatter(x, y)
        for r, xi, yi in zip(rows, x, y):
            ax.annotate(str(r["checkpoint"])[-24:], (xi, yi), fontsize=6)
        ax.set_xlabel("analytic scalar curvature (DᵀHD, SPEC §4)", fontsize=7)
        ax.set_ylabel(col, fontsize=7)
    save(fig, path)


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    width = {c: max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(width[c]) for c in columns)]
    lines += ["  ".join(fmt(r.get(c, "")).ljust(width[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def skip_panel(skip: AnalysisResult, noskip: AnalysisResult, path: str | Path, title: str = "") -> None:
    """Side by side: 2-D surfaces (same levels), spectral densities, curvature bars."""
    fig = plt.figure(figsize=(13, 7.5))
    gs = fig.add_gridspec(2, 3)
    for col, (label, r) in enumerate((("with skips", skip), ("without skips", noskip))):
        if r.surface is not None:
            plot_surface(r, fig.add_subplot(gs[0, col]), fig.add_subplot(gs[1, col]), label)
    ax = fig.add_subplot(gs[0, 2])
    for label, r in (("with skips", skip), ("without skips", noskip)):
        if r.density is not None:
            plot_density(r, ax, label)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(gs[1, 2])
    keys = ["lambda_max", "trace", "analytic_scalar", "dc_comparison", "dc_laziness"]
    x = np.arange(len(keys))
    for i, (label, r) in enumerate((("with skips", skip), ("without skips", noskip))):
        vals = [r.scalars.get(k, np.nan) for k in keys]
        ax.bar(x + (i - 0.5) * 0.4, np.sign(vals) * np.log10(1 + np.abs(vals)), 0.4, label=label)
    ax.set_xticks(x, keys, rotation=30, fontsize=7)
    ax.set_ylabel("sign · log10(1 + |value|)", fontsize=7)
    ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)

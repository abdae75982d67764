"""Figures and tables for analysis results (PNG via headless matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .analysis import AnalysisResult
from .plots import agreement_axes, plt, save
from .slice_curvature import SMOOTH_K


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


def analysis_figures(result: AnalysisResult, folder: str | Path, label: str = "") -> list[Path]:
    """surface.png (2-D + 1-D), density.png (log), field.png (diffusion vs exact curvature field of the slice)."""
    folder = Path(folder)
    written = []
    if result.surface is not None and np.isfinite(result.surface.losses).sum() >= 4:  # else nothing to draw
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.8))
        plot_surface(result, a, b)
        save(fig, folder / "surface.png")
        written.append(folder / "surface.png")
    if result.density is not None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        plot_density(result, ax)
        save(fig, folder / "density.png")
        written.append(folder / "density.png")
    if result.slice is not None and result.slice.dc_field is not None and result.sample.coords.shape[1] >= 2:
        fig = field_figure(result, label)
        save(fig, folder / "field.png")
        written.append(folder / "field.png")
    return written


def field_figure(result: AnalysisResult, label: str = ""):
    """The diffusion-curvature field next to the exact field of the same slice (first two coordinates), one colour
    scale for both, the agreement figures in the title (after ``label``: the checkpoint or model and epoch)."""
    sc, sample = result.slice, result.sample
    u = sample.coords[sample.finite]
    exact = sc.exact_field
    both = np.concatenate([sc.dc_field, exact[np.isfinite(exact)]])
    lim = float(np.nanpercentile(np.abs(both), 98)) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharex=True, sharey=True)
    for ax, values, label in (
        (axes[0], sc.dc_field, f"diffusion estimate (smoothed over {SMOOTH_K} samples)"),
        (axes[1], exact, "exact (autograd on the slice coordinates)"),
    ):
        ok = np.isfinite(values)
        im = ax.scatter(u[ok, 0], u[ok, 1], c=values[ok], cmap="coolwarm", vmin=-lim, vmax=lim, s=10)
        ax.plot(0, 0, "k*", ms=9, label="trained point")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("u₁ (step along direction 1)", fontsize=8)
        ax.set_aspect("equal")
    axes[0].set_ylabel("u₂ (step along direction 2)", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.colorbar(im, ax=axes, label="scalar curvature R(s)/s² of the loss graph", shrink=0.9)
    verdict = "signs agree" if sc.agrees else "signs DISAGREE"
    o = result.options
    fig.suptitle(
        (f"{label}: " if label else "")
        + f"{o['directions']} slice, k = {o['k']}, {len(u)} samples, radius {o['radius']:g}: centre diffusion "
        f"{sc.dc_scalar:.3g} ± {sc.dc_scalar_se:.2g} vs exact {sc.exact_scalar:.3g} ({verdict}); "
        f"field Spearman {sc.field_spearman:.2f}",
        fontsize=9,
    )
    return fig


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
    """Diffusion estimate at the centre (± its jackknife error) against the exact scalar curvature of the same
    slice at the same scale, one point per run, on symmetric-log axes with the line of agreement."""
    fig, ax = plt.subplots(figsize=(6.4, 5))
    x = np.array([r["analytic_scalar"] for r in rows], dtype=float)
    y = np.array([r["dc_scalar"] for r in rows], dtype=float)
    err = np.array([r.get("dc_scalar_se", np.nan) for r in rows], dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        plt.close(fig)
        return
    agree = np.sign(x) == np.sign(y)
    for mask, colour, label in ((agree & ok, "tab:blue", "signs agree"), (~agree & ok, "tab:red", "signs disagree")):
        if mask.any():
            ax.errorbar(x[mask], y[mask], yerr=np.nan_to_num(err[mask]), fmt="o", color=colour, label=label, capsize=3)
    for i in np.flatnonzero(ok):
        ax.annotate(f"{i + 1}", (x[i], y[i]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    agreement_axes(ax, np.r_[x[ok], y[ok]])
    ax.set_xlabel("exact scalar curvature R(s)/s² at the trained point (SPEC §4)", fontsize=8)
    ax.set_ylabel("diffusion curvature estimate R̂(s)/s² ± jackknife SE", fontsize=8)
    n_agree, n_ok = int(agree[ok].sum()), int(ok.sum())
    ax.set_title(f"diffusion vs exact curvature: signs agree in {n_agree} of {n_ok} runs", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    names = "\n".join(f"{i + 1}: {r['model']} {Path(str(r['checkpoint'])).stem}" for i, r in enumerate(rows))
    fig.text(1.0, 0.5, names, fontsize=7, va="center", ha="left", transform=ax.transAxes)
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
    keys = ["lambda_max", "trace", "analytic_scalar", "dc_scalar", "dc_laziness"]
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

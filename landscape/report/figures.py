"""Figures and tables for analysis results (PNG via headless matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import AnalysisResult
from ..curvature.slice_curvature import SMOOTH_K
from .grid import step_unit, surface_grid
from .plots import agreement_axes, plt, save, symlog_axis


def surface_levels(*surfaces) -> np.ndarray | None:
    """Log-spaced loss levels shared by every surface given (so two models' contours mean the same thing)."""
    finite = np.concatenate([s.losses[np.isfinite(s.losses)] for s in surfaces if s is not None])
    if not len(finite):
        return None
    lo, hi = max(float(finite.min()), 1e-6), float(finite.max())
    return np.geomspace(lo, hi, 25) if hi > lo * (1 + 1e-9) else None


def plot_surface(result: AnalysisResult, ax2d, ax1d, title: str = "", levels: np.ndarray | None = None) -> None:
    """Li et al.-style filled contour of the loss on the slice plane (log-spaced levels, colour bar) and, where
    ``ax1d`` is given, the 1-D curves through the trained point along each direction (log loss axis)."""
    from matplotlib.colors import LogNorm

    x, y, Z = surface_grid(result.surface)
    levels = surface_levels(result.surface) if levels is None else levels
    unit = step_unit(result.options)
    cs = ax2d.contourf(x, y, Z.T, levels=levels, cmap="viridis", norm=LogNorm() if levels is not None else None)
    ax2d.contour(x, y, Z.T, levels=levels[::4] if levels is not None else None, colors="white", linewidths=0.4)
    ax2d.figure.colorbar(cs, ax=ax2d, label="loss (log scale)", format="%.2g")
    ax2d.plot(0, 0, "r*", ms=9, label="trained point")
    ax2d.legend(fontsize=7, loc="upper right")
    ax2d.set_aspect("equal")
    ax2d.set_title(title or "loss on the slice plane", fontsize=9)
    ax2d.set_xlabel(f"u₁ ({unit})", fontsize=8)
    ax2d.set_ylabel(f"u₂ ({unit})", fontsize=8)
    if ax1d is None:
        return
    mid = len(x) // 2
    ax1d.semilogy(x, Z[:, mid], label="along direction 1 (u₂ = 0)")
    ax1d.semilogy(y, Z[mid, :], label="along direction 2 (u₁ = 0)")
    ax1d.axvline(0, color="grey", lw=0.5)
    ax1d.legend(fontsize=7)
    ax1d.set_title("1-D curves through the trained point", fontsize=9)
    ax1d.set_xlabel(f"u ({unit})", fontsize=8)
    ax1d.set_ylabel("loss (log scale)", fontsize=8)


def _run_title(result: AnalysisResult, label: str) -> str:
    o = result.options
    return (f"{label}: " if label else "") + (
        f"{o['directions']} directions, radius {o['radius']:g}, {int(result.scalars.get('n_points', 0))} samples"
    )


def analysis_figures(result: AnalysisResult, folder: str | Path, label: str = "", html: bool = False) -> list[Path]:
    """surface.png (2-D + 1-D), density.png, field.png (diffusion vs exact curvature field of the slice) and
    agreement.png (the centre values side by side with the verdict); ``label`` names the model/checkpoint/epoch.
    ``html``: also surface.html, the interactive 3-D surface (:mod:`landscape.report.interactive`, about 5 MB)."""
    folder = Path(folder)
    written = []
    if result.surface is not None and np.isfinite(result.surface.losses).sum() >= 4:  # else nothing to draw
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.25, 1]})
        plot_surface(result, a, b)
        fig.suptitle(_run_title(result, label), fontsize=10)
        fig.tight_layout()
        written.append(_save(fig, folder / "surface.png"))
        if html:
            from .interactive import surface_html

            written.append(surface_html(result, folder / "surface.html", _run_title(result, label)))
    if result.density is not None:
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        plot_density(result, ax)
        ax.set_title((f"{label}: " if label else "") + "Hessian eigenvalue density (SLQ)", fontsize=9)
        written.append(_save(fig, folder / "density.png"))
    if result.slice is not None and result.slice.dc_field is not None and result.sample.coords.shape[1] >= 2:
        written.append(_save(field_figure(result, label), folder / "field.png"))
    if result.slice is not None and np.isfinite(result.slice.exact_scalar):
        written.append(_save(agreement_figure(result, label), folder / "agreement.png"))
    if result.blocks:
        written.append(_save(blocks_figure(result, label), folder / "blocks.png"))
    if result.eigen_map is not None:
        written.append(_save(eigen_map_figure(result, label), folder / "eigen_map.png"))
    if result.batches is not None:
        written.append(_save(batch_spectrum_figure(result, label), folder / "batch_spectrum.png"))
    if result.sharpness:
        written.append(_save(sharpness_figure(result, label), folder / "sharpness.png"))
    return written


def sharpness_figure(result: AnalysisResult, label: str = ""):
    """The four sharpness values (``--sharpness``): worst and average case, plain and adaptive, each a bar (± 2 SE
    for the average case), the plain forms' small-radius limits from the Hessian as markers."""
    rows = result.sharpness
    names = [f"{r['kind']} case\n{'adaptive' if r['adaptive'] else 'plain'}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    ax.bar(x, [r["value"] for r in rows], yerr=[2 * r["se"] for r in rows], color="C0", width=0.6,
           label="loss rise L(θ*+δ) − L(θ*)")  # fmt: skip
    limits = np.array([r["limit"] for r in rows], dtype=float)
    if np.isfinite(limits).any():
        ax.plot(x, limits, "D", color="C3", label="small-radius limit (ρ²λmax/2, σ²·tr/2)")
    ax.set_yscale("log")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("loss increase (loss units, log scale)", fontsize=8)
    radius = rows[0]["radius"] if rows else float("nan")
    ax.set_title((f"{label}: " if label else "") + f"sharpness at ρ = σ = {radius:g}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def batch_spectrum_figure(result: AnalysisResult, label: str = ""):
    """Histograms of λmax and λmin over the mini-batch Hessians (``--batch-spectrum``), the full evaluation
    subset's values marked."""
    b = result.batches
    assert b is not None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, values, key, word in ((axes[0], b.lambda_max, "lambda_max", "λmax"),
                                  (axes[1], b.lambda_min, "lambda_min", "λmin")):  # fmt: skip
        ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="C0", alpha=0.8, label=f"{len(values)} batches")
        full = result.scalars.get(key, np.nan)
        if np.isfinite(full):
            ax.axvline(full, color="C3", lw=1.5, label=f"whole subset: {full:.3g}")
        ax.set_xlabel(f"{word} of a batch's Hessian (loss units per unit² of θ)", fontsize=8)
        ax.set_ylabel("batches", fontsize=8)
        ax.set_title(f"{word} over batches of {b.batch_size}: mean {values.mean():.3g}, sd "
                     f"{values.std(ddof=1) if len(values) > 1 else float('nan'):.2g}", fontsize=9)  # fmt: skip
        ax.legend(fontsize=7)
    fig.suptitle((f"{label}: " if label else "") + "Hessian extremes per mini-batch", fontsize=10)
    fig.tight_layout()
    return fig


def plot_eigen_map(result: AnalysisResult, ax, title: str = "") -> None:
    """|λmin/λmax| of the full Hessian over the slice plane (Li et al.'s convexity map), θ* marked."""
    emap = result.eigen_map
    assert emap is not None
    m = int(round(np.sqrt(len(emap.coords))))
    u1, u2 = emap.coords[:, 0].reshape(m, m), emap.coords[:, 1].reshape(m, m)
    ratio = np.nan_to_num(emap.ratio, nan=1.0).reshape(m, m)  # λmax ≤ 0: drawn as fully non-convex
    mesh = ax.pcolormesh(u1, u2, ratio, shading="nearest", cmap="viridis", vmin=0.0, vmax=max(0.2, ratio.max()))
    ax.figure.colorbar(mesh, ax=ax, label="|λmin / λmax| of the Hessian (0: convex)")
    ax.plot([0], [0], "r+", ms=10, mew=2, label="θ*")
    ax.set_xlabel("u₁ (direction 1, units of D)", fontsize=8)
    ax.set_ylabel("u₂ (direction 2, units of D)", fontsize=8)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper right")
    share = emap.share_above(0.1)
    ax.set_title((f"{title}: " if title else "") + f"|λmin/λmax| > 0.1 on {share:.0%} of the plane", fontsize=9)


def eigen_map_figure(result: AnalysisResult, label: str = ""):
    """The convexity map beside the map of λmax (log colour scale)."""
    emap = result.eigen_map
    assert emap is not None
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
    plot_eigen_map(result, a)
    m = int(round(np.sqrt(len(emap.coords))))
    lmax = np.where(emap.lambda_max > 0, emap.lambda_max, np.nan).reshape(m, m)
    from matplotlib.colors import LogNorm

    mesh = b.pcolormesh(emap.coords[:, 0].reshape(m, m), emap.coords[:, 1].reshape(m, m), lmax, shading="nearest",
                        cmap="magma", norm=LogNorm())  # fmt: skip
    fig.colorbar(mesh, ax=b, label="λmax of the Hessian (loss units per unit² of θ)")
    b.plot([0], [0], "c+", ms=10, mew=2)
    b.set_xlabel("u₁ (direction 1, units of D)", fontsize=8)
    b.set_ylabel("u₂ (direction 2, units of D)", fontsize=8)
    b.set_aspect("equal")
    b.set_title("λmax of the full Hessian over the slice", fontsize=9)
    fig.suptitle(_run_title(result, label) + f" — Hessian at {len(emap.coords)} points", fontsize=10)
    fig.tight_layout()
    return fig


def blocks_figure(result: AnalysisResult, label: str = ""):
    """Per-block Hessian spectra (``--hessian-blocks``): each block's λmax and λmin beside the full Hessian's, and
    each block's trace (± 2 SE) with its share of the full trace, on symmetric-log axes."""
    rows = result.blocks
    names = [f"{r['block']}\n({r['n_params']:,})" for r in rows]
    y = np.arange(len(rows))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 0.5 * len(rows) + 2.6), sharey=True)
    a.barh(y - 0.2, [r["lambda_max"] for r in rows], height=0.4, color="C3", label="block λmax")
    a.barh(y + 0.2, [r["lambda_min"] for r in rows], height=0.4, color="C0", label="block λmin")
    ends = [r[k] for r in rows for k in ("lambda_max", "lambda_min")]
    for key, style, word in (("lambda_max", "--", "λmax"), ("lambda_min", ":", "λmin")):
        if np.isfinite(result.scalars.get(key, np.nan)):
            a.axvline(result.scalars[key], color="k", ls=style, lw=1.2, label=f"full Hessian {word}")
            ends.append(result.scalars[key])
    a.set_xscale("symlog", linthresh=1e-3)
    a.set_xlim(min(min(ends) * 3, -1e-3), max(max(ends) * 3, 1e-3))  # the full ends inside the frame
    a.set_xlabel("eigenvalue of the block's Hessian H_bb (loss units per unit² of θ)", fontsize=8)
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False)
    traces = np.array([r["trace"] for r in rows])
    b.barh(y, traces, xerr=2 * np.nan_to_num(np.array([r["trace_se"] for r in rows])), color="C2", height=0.6)
    full = result.scalars.get("trace", np.nan)
    if np.isfinite(full) and full != 0:
        for yi, t in zip(y, traces):
            b.annotate(f"{t / full:.0%}", (t, yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    b.set_xscale("symlog", linthresh=1e-3)
    b.set_xlabel("trace of H_bb (± 2 SE; share of the full trace)", fontsize=8)
    a.set_yticks(y, names, fontsize=8)
    a.invert_yaxis()
    fig.suptitle((f"{label}: " if label else "") + "Hessian spectrum per parameter block (parameters)", fontsize=10)
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> Path:
    save(fig, path)
    return path


def field_figure(result: AnalysisResult, label: str = ""):
    """The diffusion-curvature field next to the exact field of the same slice (first two coordinates), one colour
    scale for both, the agreement figures in the title (after ``label``: the checkpoint or model and epoch)."""
    sc, sample = result.slice, result.sample
    u = sample.coords[sample.finite]
    exact = sc.exact_field
    both = np.concatenate([sc.dc_field, exact[np.isfinite(exact)]])
    lim = float(np.nanpercentile(np.abs(both), 98)) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharex=True, sharey=True)
    unit = step_unit(result.options)
    for ax, values, panel in (
        (axes[0], sc.dc_field, f"diffusion estimate (smoothed over {SMOOTH_K} samples)"),
        (axes[1], exact, "exact (autograd on the slice coordinates)"),
    ):
        ok = np.isfinite(values)
        im = ax.scatter(u[ok, 0], u[ok, 1], c=values[ok], cmap="coolwarm", vmin=-lim, vmax=lim, s=10)
        ax.plot(0, 0, "k*", ms=9, label="trained point")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(f"u₁ ({unit})", fontsize=8)
        ax.set_aspect("equal")
    axes[0].set_ylabel(f"u₂ ({unit})", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.colorbar(im, ax=axes, label="scalar curvature R(s)/s² of the loss graph", shrink=0.9)
    verdict = "signs agree" if sc.agrees else "signs DISAGREE"
    o = result.options
    fig.suptitle(
        (f"{label}\n" if label else "")
        + f"{o['directions']} slice, k = {o['k']}, {len(u)} samples, radius {o['radius']:g}: centre diffusion "
        f"{sc.dc_scalar:.3g} ± {sc.dc_scalar_se:.2g} vs exact {sc.exact_scalar:.3g} ({verdict}); "
        f"field Spearman {sc.field_spearman:.2f}",
        fontsize=9,
    )
    return fig


def verdict_words(result: AnalysisResult) -> str:
    """The verdict of one run in a sentence (README 'Diffusion curvature of a loss slice')."""
    sc = result.slice
    shape = "a bowl (positive curvature)" if sc.truth > 0 else "a saddle (negative curvature)"
    what = "the slice, smoothed at the read scale," if np.isfinite(sc.stated_scalar) else "the exact slice"
    if not np.isfinite(sc.dc_scalar):
        return f"{what} is {shape}; the diffusion estimate is not available"
    agree = "agrees with it" if sc.agrees else "DISAGREES with it"
    resolved = (
        "" if not np.isfinite(sc.dc_scalar_se) or abs(sc.dc_scalar) > 2 * sc.dc_scalar_se else " (sign not resolved)"
    )
    size = f"; size {sc.ratio:.2f}× it, {'within' if sc.covered else 'OUTSIDE'} 2 error bars"
    return f"{what} is {shape} at the trained point; diffusion curvature {agree}{resolved}{size}"


def agreement_figure(result: AnalysisResult, label: str = ""):
    """One run's two curvature views side by side: (a) the slice's scalar curvature — the diffusion estimate at the
    trained point ± its error bar beside the exact value there, the walk's regional reading beside the exact field
    averaged over the same reach (± its sampling error), the central-difference value and the curvature of the loss
    smoothed at the estimate's read scale (the stated truth, SPEC §5e) — on one symmetric-log
    axis; (b) the Hessian's extremes (λmin, λmax, top-k and the slice directions' eigenvalues) with the trace in the
    legend; the verdict in words in the title."""
    s, sc = result.scalars, result.slice
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.1, 1]})
    names = ["diffusion at θ*", "exact at θ* (autograd)", "diffusion, walk's reach", "exact, walk's reach",
             "central differences at θ*", "smoothed at the read scale"]  # fmt: skip
    vals = [sc.dc_scalar, sc.exact_scalar, sc.dc_region, sc.exact_region, s.get("fd_scalar", np.nan),
            s.get("smoothed_scalar", np.nan)]  # fmt: skip
    errs = [sc.dc_scalar_se, None, None, sc.exact_region_se, None, None]
    colours = ["tab:blue", "black", "tab:cyan", "grey", "tab:orange", "tab:red"]
    for i, (v, c, e) in enumerate(zip(vals, colours, errs)):
        if np.isfinite(v):
            a.errorbar(v, i, xerr=e if e is not None and np.isfinite(e) else None, fmt="o", color=c, capsize=4, ms=7)
    se = sc.dc_scalar_se if np.isfinite(sc.dc_scalar_se) else 0.0
    span = [v for v in vals if np.isfinite(v)] + ([sc.dc_scalar - se, sc.dc_scalar + se] if se else [])
    symlog_axis(a, "x", span, margin=1.2)
    a.axvline(0, color="grey", lw=0.5)
    a.set_yticks(range(len(names)), names, fontsize=8)
    a.invert_yaxis()
    a.set_xlabel("scalar curvature R(s)/s² of the sampled loss graph (loss units²)", fontsize=8)
    a.set_title("(a) curvature of the slice: sampled vs exact", fontsize=9)
    spectrum = [("λmin", s.get("lambda_min"), "tab:red"), ("λmax", s.get("lambda_max"), "tab:green")]
    shown = False
    for name, v, c in spectrum:
        if v is not None and np.isfinite(v):
            b.axvline(v, color=c, lw=2, label=f"{name} = {v:.3g}")
            shown = True
    for v in result.top_eigenvalues:
        b.plot(v, 0.5, "v", color="tab:green", alpha=0.6)
    for v in result.direction_eigenvalues:
        b.plot(v, 0.3, "^", color="tab:purple", ms=8)
    if result.direction_eigenvalues:
        b.plot([], [], "^", color="tab:purple", label="slice directions' eigenvalues")
    if "trace" in s and np.isfinite(s["trace"]):
        b.plot([], [], " ", label=f"trace = {s['trace']:.3g} ± {s.get('trace_se', np.nan):.2g}")
    ev = [v for _, v, _ in spectrum if v is not None and np.isfinite(v)] + list(result.top_eigenvalues)
    if shown or ev:
        symlog_axis(b, "x", ev + list(result.direction_eigenvalues), margin=1.2)
        b.axvline(0, color="grey", lw=0.5)
        b.legend(fontsize=7, loc="upper left")
    else:
        b.text(0.5, 0.5, "no Hessian spectrum (--no-hessian)", ha="center", va="center", transform=b.transAxes)
    b.set_yticks([])
    b.set_ylim(0, 1)
    b.set_xlabel("Hessian eigenvalue (loss per squared parameter step)", fontsize=8)
    b.set_title("(b) Hessian spectrum: extremes and top eigenvalues", fontsize=9)
    fig.suptitle(_run_title(result, label) + "\n" + verdict_words(result), fontsize=10)
    fig.tight_layout()
    return fig


def plot_density(result: AnalysisResult, ax, label: str | None = None, colour: str | None = None) -> None:
    """SLQ spectral density on a symmetric-log eigenvalue axis (the negative tail stays visible next to λmax), with
    λmin and λmax marked and the trace in the legend."""
    d, s = result.density, result.scalars
    nodes = np.concatenate(d.nodes)
    lo, hi = min(nodes.min(), s.get("lambda_min", 0.0)), max(nodes.max(), s.get("lambda_max", 0.0))
    span = hi - lo or 1.0
    grid = np.linspace(lo - 0.05 * span, hi + 0.05 * span, 4000)
    prefix = f"{label}: " if label else ""
    line = ax.plot(grid, np.maximum(d.density(grid), 1e-10), label=f"{prefix}density", color=colour)[0]
    colour = line.get_color()
    for key, style in (("lambda_min", ":"), ("lambda_max", "--")):
        if key in s and np.isfinite(s[key]):
            name = "λmin" if key == "lambda_min" else "λmax"
            ax.axvline(s[key], color=colour, ls=style, lw=1, label=f"{prefix}{name} = {s[key]:.3g}")
    if "trace" in s and np.isfinite(s["trace"]):
        ax.plot([], [], " ", label=f"{prefix}trace = {s['trace']:.3g}")
    ax.set_yscale("log")
    top = max(float(np.nanmax(d.density(grid))) * 3, ax.get_ylim()[1] if ax.has_data() else 0.0)
    ax.set_ylim(1e-6, top)
    width = max(abs(lo), abs(hi)) or 1.0
    symlog_axis(ax, "x", [-width, width], lin=width * 1e-2, margin=1.6)
    ax.set_xlabel("Hessian eigenvalue (symmetric log scale)", fontsize=8)
    ax.set_ylabel("spectral density (log scale)", fontsize=8)
    ax.legend(fontsize=7)


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
    e = np.nan_to_num(err[ok])
    agreement_axes(ax, np.r_[x[ok], y[ok], y[ok] + e, y[ok] - e])
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
    """Side by side: 2-D surfaces on the same contour levels and colour scale, 1-D curves, spectral densities on
    one axis, and the curvature figures as bars on one symmetric-log axis."""
    fig = plt.figure(figsize=(15, 8.5))
    gs = fig.add_gridspec(2, 3)
    levels = surface_levels(skip.surface, noskip.surface)
    pairs = (("with skips", skip), ("without skips", noskip))
    curves = []
    for col, (label, r) in enumerate(pairs):
        if r.surface is not None:
            curves.append(fig.add_subplot(gs[1, col]))
            plot_surface(r, fig.add_subplot(gs[0, col]), curves[-1], label, levels=levels)
    if curves:  # one loss scale for both models' 1-D curves
        lims = np.array([ax.get_ylim() for ax in curves])
        for ax in curves:
            ax.set_ylim(lims[:, 0].min(), lims[:, 1].max())
    ax = fig.add_subplot(gs[0, 2])
    for (label, r), colour in zip(pairs, ("tab:blue", "tab:orange")):
        if r.density is not None:
            plot_density(r, ax, label, colour)
    ax.set_title("Hessian eigenvalue density (SLQ)", fontsize=9)
    ax = fig.add_subplot(gs[1, 2])
    keys = ["lambda_max", "lambda_min", "trace", "analytic_scalar", "dc_scalar", "fd_scalar"]
    _paired_bars(ax, keys, [(label, np.array([r.scalars.get(k, np.nan) for k in keys], dtype=float))
                            for label, r in pairs])  # fmt: skip
    ax.set_ylabel("value (symmetric log scale)", fontsize=8)
    ax.set_title("curvature figures (curvatures in R(s)/s² units)", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)


def blocks_panel(skip: AnalysisResult, noskip: AnalysisResult, path: str | Path, title: str = "") -> None:
    """Per-block Hessian spectra of the two models side by side (``--hessian-blocks``): λmax, λmin and the trace of
    each block's Hessian, grouped by block, on symmetric-log axes."""
    names = list(dict.fromkeys([b["block"] for b in skip.blocks] + [b["block"] for b in noskip.blocks]))
    pairs = (("with skips", skip), ("without skips", noskip))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, word in zip(axes, ("lambda_max", "lambda_min", "trace"), ("λmax", "λmin", "trace")):
        series = []
        for label, r in pairs:
            by = {b["block"]: b[key] for b in r.blocks}
            series.append((label, np.array([by.get(n, np.nan) for n in names], dtype=float)))
        _paired_bars(ax, names, series)
        ax.set_xlabel("parameter block", fontsize=8)
        ax.set_ylabel(f"{word} of the block's Hessian (symmetric log scale)", fontsize=8)
        ax.set_title(f"{word} per block", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)


def convexity_panel(skip: AnalysisResult, noskip: AnalysisResult, path: str | Path, title: str = "") -> None:
    """Li et al.'s convexity maps of the two models side by side (``--eigen-map``), each titled with the share of
    the plane where |λmin/λmax| exceeds 0.1."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, (label, r) in zip(axes, (("with skips", skip), ("without skips", noskip))):
        plot_eigen_map(r, ax, label)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)


def _paired_bars(ax, names: list[str], series: list[tuple[str, np.ndarray]]) -> None:
    """Two models' values side by side per name, on a symmetric-log axis (NaN: no bar), with the zero line."""
    x = np.arange(len(names))
    values: list[float] = []
    for i, (label, vals) in enumerate(series):
        values.extend(vals[np.isfinite(vals)])
        ax.bar(x + (i - 0.5) * 0.4, np.nan_to_num(vals), 0.4, label=label)
    symlog_axis(ax, "y", values, margin=1.3)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(x, names, rotation=25, fontsize=8)
    ax.legend(fontsize=7)

"""Figures (PNG, headless matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..files import atomic_write_bytes


def save(fig, path: str | Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def estimate_vs_truth(scatter: dict, path: str | Path) -> None:
    """One row per benchmark surface, its estimators side by side (no empty slots): estimate against the true
    scalar curvature at every point, with the Pearson r in each title (validation benchmark figure)."""
    benches = sorted({b for b, _ in scatter})
    rows = [[e for b2, e in sorted(scatter) if b2 == b] for b in benches]
    ncol = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(benches), ncol, figsize=(2.7 * ncol, 2.5 * len(benches)), squeeze=False)
    for i, (b, ests) in enumerate(zip(benches, rows)):
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(ests):
                ax.axis("off")
                continue
            truth, est = scatter[(b, ests[j])]
            ax.scatter(truth, est, s=3, alpha=0.5)
            r = np.corrcoef(truth, est)[0, 1]
            ax.set_title(f"{b}: {ests[j]}\nPearson r = {r:+.2f}", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.set_xlabel("true scalar curvature", fontsize=6)
            if j == 0:
                ax.set_ylabel("estimate (estimator units)", fontsize=6)
    fig.suptitle("Curvature estimators against the exact scalar curvature, point by point", fontsize=10)
    fig.tight_layout()
    save(fig, path)


def symlog_axis(ax, which: str, values, lin: float | None = None, margin: float = 1.3) -> None:
    """A symmetric-log ``which`` ('x' or 'y') axis covering ``values`` on both sides of zero, with ticks at 0 and
    at whole decades from twice the linear threshold outwards, so labels near zero never collide."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lim = float(np.max(np.abs(v))) * margin if len(v) and np.max(np.abs(v)) > 0 else 1.0
    nonzero = np.abs(v[v != 0])
    if lin is None:
        lin = max(float(nonzero.min()) / 2 if len(nonzero) else lim * 1e-3, lim * 1e-4)
    lo, hi = int(np.ceil(np.log10(2 * lin))), int(np.floor(np.log10(lim)))
    decades = [10.0**j for j in range(lo, hi + 1)] or [10.0 ** np.floor(np.log10(lim))]
    ticks = sorted([-t for t in decades] + [0.0] + decades)
    set_scale, set_lim, set_ticks = (
        (ax.set_xscale, ax.set_xlim, ax.set_xticks) if which == "x" else (ax.set_yscale, ax.set_ylim, ax.set_yticks)
    )
    set_scale("symlog", linthresh=lin)
    set_lim(-lim, lim)
    set_ticks(ticks)


def agreement_axes(ax, values: np.ndarray) -> None:
    """Symmetric-log axes for estimate-vs-truth plots: one limit for both axes, the line of agreement, and ticks at 0
    and at whole decades (:func:`symlog_axis`)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    lim = float(np.max(np.abs(values))) * 1.5 if len(values) else 1.0
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8, label="agreement")
    symlog_axis(ax, "x", values, margin=1.5)
    symlog_axis(ax, "y", values, margin=1.5)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)


def slice_agreement(scatter: dict, path: str | Path) -> None:
    """Diffusion estimate at the centre of every validated net slice (all sample counts) against the exact
    (autograd) scalar curvature and, where given (``smoothed``), against the curvature of the loss smoothed at the
    read scale (the crease-inclusive truth the estimate is judged against, SPEC §5e): one colour per net, filled
    where the estimator marks its reading resolved and hollow where not, on symmetric-log axes with the line of
    agreement."""
    dc, nets = np.asarray(scatter["dc"]), np.asarray(scatter["net"])
    resolved = np.asarray(scatter.get("resolved", np.ones(len(dc), dtype=bool)), dtype=bool)
    truths = [("exact", "exact (autograd) scalar curvature R(s)/s² at θ*")]
    if scatter.get("smoothed"):
        truths.append(("smoothed", "R(s)/s² at θ* of the loss smoothed at σ = 0.1 × read radius (the read scale)"))
    fig, axes = plt.subplots(1, len(truths), figsize=(6.4 * len(truths), 5.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], truths):
        truth = np.asarray(scatter[key])
        for i, name in enumerate(dict.fromkeys(nets)):
            colour = f"C{i}"
            for res, face, tag in ((True, colour, "resolved"), (False, "none", "unresolved")):
                sel = (nets == name) & (resolved == res)
                if sel.any():
                    ax.scatter(truth[sel], dc[sel], s=16, alpha=0.8, facecolors=face, edgecolors=colour,
                               label=f"{name} ({tag})")  # fmt: skip
        agreement_axes(ax, np.r_[truth, dc])
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("diffusion estimate R̂(s)/s² (at its read radius)", fontsize=8)
        agree = float(np.mean(np.sign(truth) == np.sign(dc)))
        ax.set_title(f"trained-net slices vs {key}: signs agree in {agree:.1%}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")  # the quadrant where a truth > 0 is read < 0: empty so far
    fig.tight_layout()
    save(fig, path)

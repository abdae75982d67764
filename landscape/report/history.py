"""Curvature over training: one tidy row per analysed epoch (loss, Hessian extremes, trace, diffusion and exact
slice curvature), saved as ``history.csv`` and drawn as ``history.png`` — the "does training flatten the
minimum?" view. Written by the callback (every analysis) and by ``landscape analyze`` over ``epoch=*.ckpt``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import CURVATURE_METRICS, HESSIAN_METRICS
from ..files import atomic_write_csv
from .plots import plt, save, symlog_axis

HISTORY_COLUMNS = [
    "epoch",
    "step",
    "checkpoint",
    "acc_center",
    *HESSIAN_METRICS,
    *CURVATURE_METRICS,
    "directions",
    "radius",
]
_EPOCH = re.compile(r"epoch=(\d+)")


def history_row(epoch: int, result: Any, step: int | None = None, checkpoint: str = "") -> dict[str, Any]:
    """One row from an :class:`~landscape.analysis.AnalysisResult` (NaN where a quantity was not computed)."""
    s = result.scalars
    row: dict[str, Any] = {"epoch": int(epoch), "step": "" if step is None else int(step), "checkpoint": checkpoint}
    for key in ["acc_center", *HESSIAN_METRICS, *CURVATURE_METRICS]:
        row[key] = float(s.get(key, np.nan))
    row["directions"], row["radius"] = result.options["directions"], result.options["radius"]
    return row


def epoch_of(path: str | Path) -> int | None:
    """The epoch in a checkpoint name (``epoch=7.ckpt``, ``epoch=7-step=70.ckpt``), or None."""
    m = _EPOCH.search(Path(path).name)
    return int(m.group(1)) if m else None


def write_history(rows: list[dict[str, Any]], folder: str | Path, title: str = "") -> list[Path]:
    """``history.csv`` (rows sorted by epoch) and, with two or more rows, ``history.png``."""
    folder = Path(folder)
    rows = sorted(rows, key=lambda r: r["epoch"])
    atomic_write_csv(folder / "history.csv", rows, HISTORY_COLUMNS)
    written = [folder / "history.csv"]
    if len(rows) >= 2:
        save(history_figure(rows, title), folder / "history.png")
        written.append(folder / "history.png")
    return written


def history_figure(rows: list[dict[str, Any]], title: str = ""):
    """Four panels over epochs: centre loss; λmax and λmin; trace; diffusion curvature (± jackknife SE) against the
    exact and central-difference curvature of the slice. Curvature axes are symmetric-log (signs stay visible)."""
    col = lambda key: np.array([float(r.get(key, np.nan)) for r in rows])
    epochs = col("epoch")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    a, b, c, d = axes.ravel()
    a.plot(epochs, col("loss_center"), "o-", label="loss at θ* (evaluation subset)")
    a.set_yscale("log")
    a.set_ylabel("loss (log scale)", fontsize=8)
    a.set_title("loss at the analysed weights", fontsize=9)
    b.plot(epochs, col("lambda_max"), "o-", color="tab:green", label="λmax")
    b.plot(epochs, col("lambda_min"), "s-", color="tab:red", label="λmin")
    symlog_axis(b, "y", np.r_[col("lambda_max"), col("lambda_min")])
    b.axhline(0, color="grey", lw=0.5)
    b.set_ylabel("Hessian eigenvalue (symmetric log)", fontsize=8)
    b.set_title("Hessian extremes", fontsize=9)
    c.plot(epochs, col("trace"), "o-", color="tab:purple", label="trace (Hutchinson)")
    c.set_ylabel("Hessian trace", fontsize=8)
    c.set_title("Hessian trace", fontsize=9)
    dc, se = col("dc_scalar"), np.nan_to_num(col("dc_scalar_se"))
    d.errorbar(epochs, dc, yerr=se, fmt="o-", capsize=3, label="diffusion estimate ± SE")
    d.plot(epochs, col("analytic_scalar"), "k^-", label="exact (autograd)")
    d.plot(epochs, col("fd_scalar"), "x--", color="tab:orange", label="central differences")
    symlog_axis(d, "y", np.r_[dc + se, dc - se, col("analytic_scalar"), col("fd_scalar")])
    d.axhline(0, color="grey", lw=0.5)
    d.set_ylabel("slice curvature R(s)/s² (symmetric log)", fontsize=8)
    d.set_title("curvature of the sampled slice at θ*", fontsize=9)
    for ax in (c, d):
        ax.set_xlabel("epoch", fontsize=8)
    for ax in axes.ravel():
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle((f"{title}: " if title else "") + "curvature over training", fontsize=11)
    fig.tight_layout()
    return fig

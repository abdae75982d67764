"""The side-by-side report of several models analysed alike (``landscape compare``): one table and one figure
with λmax, λmin/λmax, the trace and the curvature at θ* (diffusion estimate and exact value), each with its
interval where it has one (SPEC §4, §5e, §7)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import AnalysisResult
from .figures import format_table, plot_surface, surface_levels
from .plots import plt, save, symlog_axis

Z = 2.0  # the intervals are ± 2 standard errors (about 95 % where the estimate is close to normal)
COMPARISON_COLUMNS = [
    *("model", "parameters", "val_acc", "loss_center"),
    *("lambda_max", "lambda_min", "lambda_ratio", "trace", "trace_lo", "trace_hi"),
    *("dc_scalar", "dc_lo", "dc_hi", "smoothed_scalar", "analytic_scalar", "dc_resolved", "dc_radius"),
    *("n_points", "minutes", "checkpoint"),
]
# the printed table: the interval columns are folded into "value [lo, hi]"
_PRINTED = [
    ("model", "model"),
    ("val_acc", "val acc"),
    ("lambda_max", "λmax"),
    ("lambda_ratio", "λmin/λmax"),
    ("trace", "trace [±2 SE]"),
    ("dc_scalar", "diffusion at θ* [±2 SE]"),
    ("smoothed_scalar", "exact at the read scale"),
    ("analytic_scalar", "exact at θ* (autograd)"),
    ("dc_resolved", "resolved"),
]


def _f(s: dict[str, float], key: str) -> float:
    v = s.get(key, math.nan)
    return float(v) if v is not None else math.nan


def comparison_row(
    label: str, result: AnalysisResult, *, parameters: int, val_acc: float = math.nan, checkpoint: str = ""
) -> dict[str, Any]:
    """One model's row: the Hessian's extremes and their ratio, the trace with its ± 2 SE interval (Hutchinson,
    SPEC §7), the diffusion curvature at θ* with its ± 2 SE interval beside the exact curvature of the same slice
    at the estimate's read scale (the stated truth, SPEC §5e) and at θ* itself (autograd)."""
    s = result.scalars
    lmax, lmin, trace, tse = _f(s, "lambda_max"), _f(s, "lambda_min"), _f(s, "trace"), _f(s, "trace_se")
    dc, dse = _f(s, "dc_scalar"), _f(s, "dc_scalar_se")
    return {
        "model": label,
        "parameters": int(parameters),
        "val_acc": float(val_acc),
        "loss_center": _f(s, "loss_center"),
        "lambda_max": lmax,
        "lambda_min": lmin,
        "lambda_ratio": lmin / lmax if lmax else math.nan,
        "trace": trace,
        "trace_lo": trace - Z * tse,
        "trace_hi": trace + Z * tse,
        "dc_scalar": dc,
        "dc_lo": dc - Z * dse,
        "dc_hi": dc + Z * dse,
        "smoothed_scalar": _f(s, "smoothed_scalar"),
        "analytic_scalar": _f(s, "analytic_scalar"),
        "dc_resolved": _f(s, "dc_resolved"),
        "dc_radius": _f(s, "dc_radius"),
        "n_points": _f(s, "n_points"),
        "minutes": float(result.timings.get("measured", math.nan)) / 60,
        "checkpoint": checkpoint,
    }


def _g(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:.3g}"


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """The printed table (:func:`landscape.report.figures.format_table`): one line per model, intervals as
    ``value [lo, hi]``."""
    cells = []
    for r in rows:
        line = {}
        for key, head in _PRINTED:
            v = r[key]
            if key in ("trace", "dc_scalar"):
                lo, hi = (r["trace_lo"], r["trace_hi"]) if key == "trace" else (r["dc_lo"], r["dc_hi"])
                line[head] = f"{_g(v)} [{_g(lo)}, {_g(hi)}]"
            elif key == "dc_resolved":
                line[head] = "—" if not math.isfinite(v) else ("yes" if v else "no")
            elif key == "val_acc":
                line[head] = "—" if not math.isfinite(v) else f"{100 * v:.1f} %"
            else:
                line[head] = v if isinstance(v, str) else _g(v)
        cells.append(line)
    return format_table(cells, [head for _, head in _PRINTED])


def _bars(ax, values, interval=None, *, colour: str = "tab:blue", offset: float = 0.0, width: float = 0.8,
          label: str | None = None) -> list[float]:  # fmt: skip
    """Bars (NaN: none) with their ``interval`` (lows, highs) as an error bar; returns the values the axis must
    show."""
    v = np.asarray(values, dtype=float)
    x = np.arange(len(v)) + offset
    bars = ax.bar(x, np.nan_to_num(v), width, color=colour, label=label)
    ax.bar_label(bars, labels=["" if not np.isfinite(b) else f"{b:.3g}" for b in v], label_type="center",
                 fontsize=7, color="white", fontweight="bold", rotation=90 if width < 0.5 else 0)  # fmt: skip
    shown = list(v[np.isfinite(v)])
    if interval is not None:
        lo, hi = np.asarray(interval[0], dtype=float), np.asarray(interval[1], dtype=float)
        ok = np.isfinite(v) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(x[ok], v[ok], yerr=[v[ok] - lo[ok], hi[ok] - v[ok]], fmt="none", ecolor="black", capsize=3)
        shown += list(lo[ok]) + list(hi[ok])
    return shown


def _axis(ax, labels: list[str], shown: list[float], title: str, ylabel: str) -> None:
    """A log axis where every value is positive, else a symmetric-log one (zero line drawn)."""
    v = np.asarray(shown, dtype=float)
    if len(v) and (v > 0).all():
        ax.set_yscale("log")
        ax.set_ylim(v.min() / 3, v.max() * 3)
        ylabel = ylabel.replace("symlog", "log scale")
    elif len(v):
        symlog_axis(ax, "y", v, margin=1.6)
        ylabel = ylabel.replace("symlog", "symmetric log scale")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=20, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)


def comparison_figure(results: dict[str, AnalysisResult], rows: list[dict[str, Any]], path: str | Path,
                      title: str = "") -> None:  # fmt: skip
    """One figure, models side by side: each model's loss surface on the slice plane (one set of contour levels
    for all), then four bar panels: λmax, λmin/λmax, the trace ± 2 SE, and the curvature at θ* (the diffusion
    estimate ± 2 SE beside the exact curvature at its read scale)."""
    labels = [r["model"] for r in rows]
    with_surface = [(name, r) for name, r in results.items()
                    if r.surface is not None and np.isfinite(r.surface.losses).sum() >= 4]  # fmt: skip
    fig = plt.figure(figsize=(max(14.0, 3.6 * max(len(with_surface), 4)), 8.6))
    outer = fig.add_gridspec(2, 1, height_ratios=[1.15, 1.0], hspace=0.45)
    if with_surface:
        top = outer[0].subgridspec(1, len(with_surface), wspace=0.35)
        levels = surface_levels(*(r.surface for _, r in with_surface))
        for i, (name, r) in enumerate(with_surface):
            plot_surface(r, fig.add_subplot(top[0, i]), None, name, levels=levels)
    bottom = outer[1].subgridspec(1, 4, wspace=0.45)
    col = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
    ax = fig.add_subplot(bottom[0, 0])
    _axis(ax, labels, _bars(ax, col["lambda_max"]), "largest Hessian eigenvalue λmax", "λmax (symlog)")
    ax = fig.add_subplot(bottom[0, 1])
    shown = _bars(ax, col["lambda_ratio"], colour="tab:purple")
    _axis(ax, labels, shown, "λmin/λmax (Li et al.'s non-convexity)", "λmin/λmax (symlog)")
    lim = max([abs(v) for v in shown if math.isfinite(v)] + [0.1]) * 1.4
    ax.set_yscale("linear")
    ax.set_ylim(-lim, lim)
    ax.set_ylabel("λmin/λmax", fontsize=8)
    ax = fig.add_subplot(bottom[0, 2])
    shown = _bars(ax, col["trace"], (col["trace_lo"], col["trace_hi"]), colour="tab:green")
    _axis(ax, labels, shown, "Hessian trace ± 2 SE (Hutchinson)", "trace (symlog)")
    ax = fig.add_subplot(bottom[0, 3])
    shown = _bars(ax, col["dc_scalar"], (col["dc_lo"], col["dc_hi"]), offset=-0.2, width=0.4,
                  label="diffusion estimate ± 2 SE")  # fmt: skip
    shown += _bars(ax, col["smoothed_scalar"], colour="tab:orange", offset=0.2, width=0.4,
                   label="exact, at the read scale")  # fmt: skip
    _axis(ax, labels, shown, "slice curvature at θ*", "R(s)/s² (symlog)")
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    save(fig, path)

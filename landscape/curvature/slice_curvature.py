"""Both curvature views of one sampled slice, side by side, with a verdict (SPEC §4, §4b, §5b).

Diffusion curvature of the sampled loss graph (:mod:`landscape.curvature.loss_graph`) at the trained point, its
uncertainty and its field over the samples; the exact curvature of the same graph at the same scale
(:mod:`landscape.hessian.slice_field`) at the centre, over the region the walk covers, and at every sample.
Curvatures are reported as R(s)/s², the scalar curvature of the graph of s·f divided by s²: at the estimator's
small relief this is the loss unit's own scalar curvature (2 det A/W⁴ → 2 det A for two directions), comparable
across models and runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import spearmanr

from .diffusion import knn_smooth
from .loss_graph import LossGraphCurvature, loss_graph_curvature, min_samples

if TYPE_CHECKING:  # the curvature package imports numpy only; the exact field comes from the Hessian side
    from ..hessian.slice_field import SliceField

SMOOTH_K = 30  # the diffusion field is averaged over this many nearest samples before it is compared
FLOAT32_SPREAD = 1e-5  # losses that change by less than this fraction over the slice are float32 rounding


@dataclass
class SliceCurvature:
    """The verdict on one slice. ``exact_*`` come from autograd on the slice coordinates; ``dc_*`` from the walk."""

    scale: float
    dc_comparison: float  # k_t at the centre (SPEC §5b), at ``scale``
    dc_scalar: float  # calibrated diffusion estimate of R(s)/s² at the centre
    dc_scalar_se: float  # delete-20 % jackknife standard error of ``dc_scalar``
    exact_scalar: float  # R(s)/s² at the centre, exact
    exact_scalar_reach: float  # the exact field averaged over the walk's reach from the centre
    field_spearman: float  # smoothed diffusion field vs exact field over the samples where both exist
    fit_residual: float = float("nan")  # the centre patch's polynomial fit: RMS residual / loss range
    warnings: list[str] = field(default_factory=list)
    dc_field: np.ndarray | None = None  # per finite sample, R̂/s², smoothed over SMOOTH_K neighbours
    exact_field: np.ndarray | None = None  # per finite sample, R(s)/s² (NaN where not computed)

    @property
    def agrees(self) -> bool:
        return bool(np.sign(self.dc_scalar) == np.sign(self.exact_scalar))

    @property
    def agrees_reach(self) -> bool:
        return bool(np.sign(self.dc_scalar) == np.sign(self.exact_scalar_reach))

    def scalars(self) -> dict[str, float]:
        return {
            "loss_scale": self.scale,
            "dc_comparison": self.dc_comparison,
            "dc_scalar": self.dc_scalar,
            "dc_scalar_se": self.dc_scalar_se,
            "analytic_scalar": self.exact_scalar,
            "analytic_scalar_reach": self.exact_scalar_reach,
            "dc_sign_agrees": float(self.agrees),
            "dc_sign_agrees_reach": float(self.agrees_reach),
            "field_spearman": self.field_spearman,
            "dc_fit_residual": self.fit_residual,
        }


def jackknife_se(coords: np.ndarray, losses: np.ndarray, replicates: int, seed: int = 0, **kwargs) -> float:
    """Delete-d jackknife of the calibrated centre estimate: ``replicates`` random subsets keeping 80 % of the
    samples (at least the estimator's minimum; the centre always), SE² = (n − d)/d · mean (θ_b − θ̄)² with d the
    samples left out (4 × the subsets' variance at 80 %). NaN when there are too few samples to leave any out."""
    n, k = coords.shape
    keep_n = max(int(round(0.8 * (n - 1))), min_samples(k) - 1)
    if replicates < 2 or keep_n >= n - 1:
        return float("nan")
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(replicates):
        keep = np.r_[0, 1 + np.sort(rng.choice(n - 1, keep_n, replace=False))]
        vals.append(loss_graph_curvature(coords[keep], losses[keep], [0], **kwargs).scalar[0])
    d = n - 1 - keep_n
    return float(np.sqrt((n - d) / d) * np.std(vals, ddof=1))


def compare_slice(
    coords: np.ndarray,
    losses: np.ndarray,
    exact: SliceField | None,
    exact_rows: np.ndarray | None = None,
    scale: float | None = None,
    replicates: int = 10,
    seed: int = 0,
    dc_field: bool = True,
    t: int | None = None,
) -> SliceCurvature:
    """Diffusion vs exact curvature of the finite samples ``coords``/``losses`` (row 0 = the centre).

    ``exact`` holds the slice field at rows ``exact_rows`` of ``coords`` (default: every row; row 0 must be among
    them). ``scale`` overrides the relief rule. ``replicates`` jackknife subsets for the standard error (0: none);
    ``dc_field`` also estimates every sample (for the field figure and the Spearman correlation).
    """
    warnings: list[str] = []
    spread = float(np.max(np.abs(losses - losses[0])))
    if spread <= FLOAT32_SPREAD * max(abs(float(losses[0])), 1e-3):
        warnings.append(
            f"the loss changes by only {spread:.2g} over the sampled radius: float32 rounding dominates; raise --radius"
        )
    queries = None if dc_field else [0]
    est: LossGraphCurvature = loss_graph_curvature(coords, losses, queries, scale=scale, t=t)
    s = est.scale
    centre = int(np.flatnonzero(est.queries == 0)[0])
    dc_scalar = float(est.scalar[centre])
    se = jackknife_se(coords, losses, replicates, seed, scale=s, t=t)
    exact_field = np.full(len(coords), np.nan)
    if exact is not None:
        rows = np.arange(len(coords)) if exact_rows is None else np.asarray(exact_rows)
        exact_field[rows] = exact.curvature(s)["scalar"] / s**2
    exact_centre = float(exact_field[0])
    reach_vals = exact_field[est.reach_index[centre]]
    w = est.reach_weight[centre] * np.isfinite(reach_vals)
    exact_reach = float(np.nansum(w * reach_vals) / w.sum()) if w.sum() > 0 else float("nan")
    if w.sum() < 0.9:
        warnings.append(f"the exact field covers only {w.sum():.0%} of the walk's reach; the reach value is partial")
    if np.isfinite(se) and abs(dc_scalar) < 2 * se:
        warnings.append(
            f"the diffusion estimate {dc_scalar:.3g} is within 2 standard errors ({se:.2g}) of zero: "
            "its sign is not resolved; add samples (--samples)"
        )
    if np.isfinite(exact_centre) and np.isfinite(exact_reach) and np.sign(exact_centre) != np.sign(exact_reach):
        warnings.append(
            f"the exact curvature changes sign within the walk's reach (centre {exact_centre:.3g}, reach "
            f"{exact_reach:.3g}): the diffusion value reads the region; lower --radius or add samples"
        )
    smoothed, rho = None, float("nan")
    if dc_field:
        smoothed = knn_smooth(coords, est.scalar, min(SMOOTH_K, len(coords)))
        ok = np.isfinite(exact_field)
        if ok.sum() >= 10 and np.ptp(exact_field[ok]) > 0:
            rho = float(spearmanr(smoothed[ok], exact_field[ok])[0])
    return SliceCurvature(
        s,
        float(est.comparison[centre]),
        dc_scalar,
        se,
        exact_centre,
        exact_reach,
        rho,
        float(est.fit_residual[centre]),
        warnings,
        smoothed,
        exact_field,
    )

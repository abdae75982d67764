"""Both curvature views of one sampled slice, side by side, with a verdict (SPEC §4, §4b, §5b, §5e).

Two stated quantities, each compared with the exact value of the SAME quantity:

- **at θ\\*** (``dc_scalar`` against ``exact_scalar``): R(s)/s² of the loss graph at the trained point. The
  estimate is the walk's regional reading moved to its start by the patch's polynomial model
  (:func:`landscape.curvature.loss_graph.loss_graph_curvature`); its truth needs the exact curvature at the centre
  only (k + 1 backward passes). Precisely, it reads the curvature at θ* of the loss smoothed at the scale
  :data:`READ_SCALE` × the sampled radius: on smooth slices that is the curvature at θ* (up to O(σ²)); on creased
  (ReLU, max-pool) slices, whose curvature at θ* changes with the scale it is read at, it is the stated truth.
- **over the walk's reach** (``dc_region`` against ``exact_region``): the calibrated walk itself, an average of
  R(s)/s² over where the t-step walk from θ\\* goes; its truth is the exact field averaged over that distribution,
  estimated from :data:`REACH_POINTS` samples drawn from it (systematic sampling), with its own standard error.

The exact field at every sample is a validation option (``DiffusionEstimate.truth_rows(every=True)``): it gives
the field figure and the Spearman correlation of the diffusion field with the exact one.

**The read scale.** Measured on rippled bowls f = ½|u|² − a cos(ω u·e) (a ω² = ½: curvature 3 at θ*, 2 once the
ripple is smoothed away; radius 1, 300 and 1,000 samples, four draws each), the estimate at θ* keeps ripples of
wavelength ≥ 0.5 × the radius (ω ≤ 12: 2.85–3.05) and removes those ≤ 0.25 × the radius (ω ≥ 24: 2.01–2.05), the
same at both sample counts: a low-pass filter tied to the radius, not to n. A Gaussian of width σ = 0.1 × the
radius has its half-transfer point in that band (ω ≈ 12); its smoothed curvature is the truth the estimate is
judged against (``landscape validate``; :data:`READ_SCALE`), and within 20 % of the estimate on every ripple
(``tests/curvature/test_read_scale.py``). On trained ReLU nets the curvature at θ* read at 0.02 and at 0.1 × the
radius differ by up to 40 % (digits MLP saddle slice: −0.66 and −0.48): the scale is part of the quantity.

Curvatures are reported as R(s)/s², the scalar curvature of the graph of s·f divided by s²: at the estimator's
small relief this is the loss unit's own (tr A)² − ‖A‖²_F, comparable across models and runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr

from .diffusion import knn_smooth
from .loss_graph import LossGraphCurvature, loss_graph_curvature, min_samples

READ_SCALE = 0.1  # the estimate at θ* reads the loss smoothed by a Gaussian of this width × the radius (below)
SMOOTH_K = 30  # the diffusion field is averaged over this many nearest samples before it is compared
FLOAT32_SPREAD = 1e-5  # losses that change by less than this fraction over the slice are float32 rounding
REACH_POINTS = 16  # exact-field points drawn from the walk's reach for the regional truth
FIELD_SHARE = 0.12  # the diffusion field's patches (every sample a query): this share of the sampled ball
SHIFT_SHARE = 0.25  # the model's shift from reach to point counts this share of itself into the error bar
RESOLVED_SUPPORT = 0.5  # resolved at θ*: the support term is at most this share of |estimate| ...
RESOLVED_JACKKNIFE = 0.25  # ... the jackknife's sampling error at most this share ...
RESOLVED_SE = 0.5  # ... and the whole error bar at most this share (the estimate is 2 error bars from zero)


@dataclass
class DiffusionEstimate:
    """The diffusion side of one slice: the centre estimate (``centre``: query 0 at the default patch), its
    delete-20 % jackknife standard error ``jackknife``, the model-shift term ``shift_error``, the ``model_gap`` and
    the capped part of the shift (together :attr:`se`), and optionally the field at every sample (``field``,
    smoothed over :data:`SMOOTH_K` neighbours); ``half`` the same estimate on half the centre patch's samples
    (:attr:`support`)."""

    coords: np.ndarray
    centre: LossGraphCurvature
    jackknife: float
    warnings: list[str]
    field: np.ndarray | None = None
    half: float = float("nan")
    half_share: float = 0.5  # samples in the smaller patch / samples in the centre patch
    rounding: bool = False  # the losses change by less than float32 rounding over the sampled radius

    @property
    def scale(self) -> float:
        return self.centre.scale

    @property
    def scalar(self) -> float:
        return float(self.centre.scalar[0])

    @property
    def region(self) -> float:
        return float(self.centre.region[0])

    @property
    def shift_error(self) -> float:
        """The polynomial model's shift from the reach to θ* is a model extrapolation: a share of it is counted
        as a bias the samples cannot remove (SPEC §5e)."""
        return SHIFT_SHARE * abs(float(self.centre.to_point[0]))

    @property
    def model_gap(self) -> float:
        """|diffusion − the patch polynomial's own value| at θ*: two estimates of one quantity from the same
        samples. Where the polynomial carries the slice (smooth slices) they agree; where it does not (creases,
        noise, walls steeper than the fit) the gap is a bias the samples show but cannot resolve (SPEC §5e)."""
        return abs(self.scalar - float(self.centre.fitted[0]))

    @property
    def support(self) -> float:
        """The scale bias the samples show (SPEC §5e): the estimate reads the curvature at the walk's scale, not
        at a point. A patch holding the share h of the samples shrinks the walk's squared reach by h^(2/k); if the
        reading varies as R₀ + cρ² its bias at the full patch is |half − full| / (1 − h^(2/k)) (Richardson), 2× the
        change for k = 2 and h = ½. Zero on quadratic slices; large where the curvature changes within the sampled
        radius; NaN where the patch could not be made smaller (too few samples)."""
        if not (np.isfinite(self.half) and self.half_share < 1):
            return float("nan")
        k = self.coords.shape[1]
        return abs(self.half - self.scalar) / (1.0 - self.half_share ** (2.0 / k))

    @property
    def resolved(self) -> bool:
        """The estimate at θ* is resolved at this radius: its support term is at most :data:`RESOLVED_SUPPORT`, its
        jackknife error at most :data:`RESOLVED_JACKKNIFE` and its whole error bar at most :data:`RESOLVED_SE` of
        its size. Unresolved estimates read the curvature of the surroundings at the walk's scale (or noise), not
        the trained point's: lower the radius (:mod:`landscape.curvature.zoom`)."""
        size = abs(self.scalar)
        jk = self.jackknife if np.isfinite(self.jackknife) else 0.0
        se = self.se if np.isfinite(self.se) else 0.0
        return bool(
            np.isfinite(self.support)
            and self.support <= RESOLVED_SUPPORT * size
            and jk <= RESOLVED_JACKKNIFE * size
            and se <= RESOLVED_SE * size
        )

    @property
    def se(self) -> float:
        """The error bar: the jackknife's sampling error, the model-shift term, the model gap, the part of the
        model's shift beyond its cap and the support term (where it could be measured), in quadrature."""
        if not np.isfinite(self.jackknife):
            return float("nan")
        clipped = abs(float(self.centre.clipped[0]))
        support = self.support if np.isfinite(self.support) else 0.0
        terms = (self.jackknife, self.shift_error, self.model_gap, clipped, support)
        return float(np.sqrt(sum(x * x for x in terms)))

    def reach_draws(self, count: int = REACH_POINTS) -> np.ndarray:
        """``count`` sample rows drawn from the centre walk's distribution by systematic sampling of its CDF (rows
        repeat where the walk puts more than 1/count of its mass): the regional truth is their mean."""
        p = self.centre.reach_weight[0]
        cdf = np.cumsum(p) / p.sum()
        at = np.minimum(np.searchsorted(cdf, (np.arange(count) + 0.5) / count), len(p) - 1)
        return self.centre.reach_index[0][at]

    def truth_rows(self, *, every: bool = False, count: int = REACH_POINTS) -> np.ndarray:
        """The rows whose exact curvature the comparison needs: the centre and the reach draws, or every row."""
        if every:
            return np.arange(len(self.coords))
        return np.unique(np.r_[0, self.reach_draws(count)]).astype(np.int64)


@dataclass
class SliceCurvature:
    """The verdict on one slice. ``exact_*`` come from autograd on the slice coordinates; ``dc_*`` from the walk."""

    scale: float
    dc_comparison: float  # k_t at the centre (SPEC §5b), at ``scale``
    dc_scalar: float  # diffusion estimate of R(s)/s² at θ*
    dc_scalar_se: float  # its error bar (DiffusionEstimate.se: jackknife and the model terms)
    exact_scalar: float  # R(s)/s² at θ*, exact
    dc_region: float = float("nan")  # the walk's own reading: R(s)/s² averaged over its reach
    exact_region: float = float("nan")  # the exact field averaged over the same reach (REACH_POINTS draws)
    exact_region_se: float = float("nan")  # the draws' standard error
    field_spearman: float = float("nan")  # smoothed diffusion field vs exact field (validation option)
    fit_residual: float = float("nan")  # the centre patch's polynomial fit: RMS residual / loss range
    resolved: bool = True  # DiffusionEstimate.resolved: stable under halving the patch, small sampling error
    dc_support: float = 0.0  # DiffusionEstimate.support: the scale bias the samples show (part of dc_scalar_se)
    warnings: list[str] = field(default_factory=list)
    dc_field: np.ndarray | None = None  # per finite sample, R̂/s², smoothed over SMOOTH_K neighbours
    exact_field: np.ndarray | None = None  # per finite sample, R(s)/s² (NaN where not computed)
    stated_scalar: float = float("nan")  # the stated truth at θ*: the loss smoothed at the read scale (READ_SCALE)

    @property
    def truth(self) -> float:
        """What the verdict compares with: the stated truth where it was computed (the analysis does), else the
        exact (autograd) value at θ*."""
        return self.stated_scalar if np.isfinite(self.stated_scalar) else self.exact_scalar

    @property
    def _both_finite(self) -> bool:
        """A verdict needs both values: with either NaN (a non-finite loss at θ*, no truth) it is NaN too."""
        return bool(np.isfinite(self.dc_scalar) and np.isfinite(self.truth))

    @property
    def agrees(self) -> bool:
        return bool(np.sign(self.dc_scalar) == np.sign(self.truth))

    @property
    def ratio(self) -> float:
        """dc / truth at θ*: 1 is right in size."""
        return self.dc_scalar / self.truth if self.truth != 0 else float("nan")

    @property
    def covered(self) -> bool:
        """|dc − truth| ≤ 2 SE at θ*."""
        return bool(abs(self.dc_scalar - self.truth) <= 2 * self.dc_scalar_se)

    def scalars(self) -> dict[str, float]:
        return {
            "loss_scale": self.scale,
            "dc_comparison": self.dc_comparison,
            "dc_scalar": self.dc_scalar,
            "dc_scalar_se": self.dc_scalar_se,
            "analytic_scalar": self.exact_scalar,
            "dc_region": self.dc_region,
            "analytic_region": self.exact_region,
            "analytic_region_se": self.exact_region_se,
            "dc_sign_agrees": float(self.agrees) if self._both_finite else float("nan"),
            "dc_ratio": self.ratio,
            "dc_within_2se": float(self.covered) if self._both_finite else float("nan"),
            "dc_resolved": float(self.resolved) if np.isfinite(self.dc_scalar) else float("nan"),
            "dc_support": self.dc_support,
            "field_spearman": self.field_spearman,
            "dc_fit_residual": self.fit_residual,
        }


def jackknife_se(coords: np.ndarray, losses: np.ndarray, replicates: int, seed: int = 0, **kwargs) -> float:
    """Delete-d jackknife of the centre estimate at θ*: ``replicates`` random subsets keeping 80 % of the samples
    (at least the estimator's minimum; the centre always), SE² = (n − d)/d · mean (θ_b − θ̄)² with d the samples
    left out (4 × the subsets' variance at 80 %). NaN when there are too few samples to leave any out."""
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


def diffusion_estimate(
    coords: np.ndarray,
    losses: np.ndarray,
    *,
    replicates: int = 10,
    seed: int = 0,
    field: bool = False,
    t: int | None = None,
) -> DiffusionEstimate:
    """The diffusion curvature of the finite samples ``coords``/``losses`` (row 0 = the centre) at θ* and over its
    walk's reach, with its error bar; with ``field`` also at every sample (patches of :data:`FIELD_SHARE`)."""
    coords = np.asarray(coords, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    warnings: list[str] = []
    spread = float(np.max(np.abs(losses - losses[0])))
    rounding = spread <= FLOAT32_SPREAD * max(abs(float(losses[0])), 1e-3)
    if rounding:
        warnings.append(
            f"the loss changes by only {spread:.2g} over the sampled radius: float32 rounding dominates; raise --radius"
        )
    centre = loss_graph_curvature(coords, losses, [0], t=t)
    if centre.clipped[0] != 0:
        model, walked = centre.region[0] + centre.to_point[0] + centre.clipped[0], centre.region[0]
        warnings.append(
            f"the patch's polynomial puts the curvature at θ* at {model:.3g}, beyond what the walk's reading "
            f"{walked:.3g} supports: the curvature changes fast or sign within the walk's reach; the error bar "
            "includes the difference; lower --radius"
        )
    se = jackknife_se(coords, losses, replicates, seed, t=t)
    half_patch = max(min_samples(coords.shape[1]), centre.patch // 2)
    half = float("nan")
    if half_patch < centre.patch:  # else too few samples for a smaller patch: the support term is not measured
        half = float(loss_graph_curvature(coords, losses, [0], t=t, patch=half_patch).scalar[0])
    smoothed = None
    if field:
        every = loss_graph_curvature(coords, losses, None, t=t, share=FIELD_SHARE)
        smoothed = knn_smooth(coords, every.scalar, min(SMOOTH_K, len(coords)))
    est = DiffusionEstimate(coords, centre, se, warnings, smoothed, half, half_patch / centre.patch, rounding)
    if not np.isfinite(est.support):
        warnings.append(
            f"{len(coords)} samples are too few to check the estimate at θ* on a smaller patch: it is not marked "
            "resolved; add samples (--samples)"
        )
    elif not est.resolved:
        warnings.append(
            f"the estimate at θ* ({est.scalar:.3g}) is not resolved at this radius: on a smaller patch it reads "
            f"{half:.3g} (support term {est.support:.2g}), jackknife error {se:.2g}; it reads the surroundings at the "
            "walk's scale: lower --radius (or raise --zoom) or add samples (--samples)"
        )
    return est


def compare_slice(est: DiffusionEstimate, rows: np.ndarray, exact: np.ndarray | None) -> SliceCurvature:
    """The verdict: ``est`` against the exact R(s)/s² (at ``est.scale``) at the sample ``rows`` (row 0 among
    them; ``est.truth_rows()`` says which are needed). ``exact`` None: no truth (NaN comparisons)."""
    warnings = list(est.warnings)
    n = len(est.coords)
    exact_field = np.full(n, np.nan)
    if exact is not None:
        exact_field[np.asarray(rows)] = exact
    exact_centre = float(exact_field[0])
    draws = exact_field[est.reach_draws()]
    ok = np.isfinite(draws)
    region = float(np.mean(draws[ok])) if ok.any() else float("nan")
    region_se = float(np.std(draws[ok], ddof=1) / np.sqrt(ok.sum())) if ok.sum() > 1 else float("nan")
    se = est.se
    if np.isfinite(se) and abs(est.scalar) < 2 * se:
        warnings.append(
            f"the diffusion estimate {est.scalar:.3g} is within 2 standard errors ({se:.2g}) of zero: "
            "its sign is not resolved; add samples (--samples)"
        )
    if np.isfinite(exact_centre) and np.isfinite(region) and np.sign(exact_centre) != np.sign(region):
        warnings.append(
            f"the exact curvature changes sign within the walk's reach (centre {exact_centre:.3g}, reach "
            f"{region:.3g}): the slice is not one bowl or saddle at this radius; lower --radius"
        )
    rho = float("nan")
    if est.field is not None:
        ok = np.isfinite(exact_field)
        if ok.sum() >= 10 and np.ptp(exact_field[ok]) > 0:
            rho = float(spearmanr(est.field[ok], exact_field[ok])[0])
    c = est.centre
    return SliceCurvature(
        scale=est.scale,
        dc_comparison=float(c.comparison[0]),
        dc_scalar=est.scalar,
        dc_scalar_se=se,
        exact_scalar=exact_centre,
        dc_region=est.region,
        exact_region=region,
        exact_region_se=region_se,
        field_spearman=rho,
        fit_residual=float(c.fit_residual[0]),
        resolved=est.resolved,
        dc_support=est.support,
        warnings=warnings,
        dc_field=est.field,
        exact_field=exact_field,
    )

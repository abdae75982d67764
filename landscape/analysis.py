"""One full landscape analysis of a trained model: sampling + diffusion curvature (both forms) + Hessian spectrum
+ the exact curvature of the sampled slice (SPEC §1–7). Shared by the callbacks and the command-line tools.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .curvature.diffusion import laziness
from .curvature.loss_graph import MAX_WALK_STEPS, min_samples
from .curvature.slice_curvature import READ_SCALE, SliceCurvature, compare_slice, diffusion_estimate
from .curvature.slice_geometry import field_curvature, graph_curvature
from .curvature.zoom import MAX_ZOOM, pick_level, zoom_in
from .distributed import Comm
from .evaluation import EvalSubset, activation_numel
from .exceptions import LandscapeWarning
from .files import atomic_write_csv, atomic_write_json, atomic_write_npz
from .hessian.batch_spectrum import MAX_BATCHES, BatchSpectrum, batch_spectrum
from .hessian.blocks import BLOCK_COLUMNS, block_groups, block_spectra, parameter_blocks
from .hessian.density import SpectralDensity
from .hessian.eigen_map import EigenMap, eigen_map
from .hessian.krylov_spectrum import estimate_spectrum, extremes_run
from .hessian.slice_field import SliceField, field_on_ranks
from .hessian.spectrum import (
    EIGEN_DIRECTIONS,
    HessianProblem,
    eigen_directions,
)
from .inputs import describe_inputs
from .losses import cross_entropy
from .objective import with_weight_decay
from .params import num_params
from .sampling.coordinates import grid, make_coordinates
from .sampling.directions import make_directions
from .sampling.loss_derivatives import FD_STEP, finite_difference_centre, gaussian_smoothed_centre, smoothing_nodes
from .sampling.radius import auto_radius
from .sampling.sample import LandscapeSample
from .sampling.sampler import BF16_TOL, PRECISIONS, SamplingCache, sample_on_ranks
from .sharpness import average_case_sharpness, worst_case_sharpness
from .threads import choose_threads, using_threads

DIRECTIONS = ("filter", "gaussian", *EIGEN_DIRECTIONS)
SCHEMES = ("ball", "shells", "grid")
MAX_K = 6  # the loss-graph estimator is validated for k = 2..5 (its patches hold 50·2^k samples)
MAX_SAMPLES = 200_000  # sample points of one analysis, every scheme (a grid's m^k included)
DC_FIELD_MAX = 5000  # above this many samples the diffusion field (exact_field=True) is not estimated
MAX_EIGEN_MAP = 51  # points per axis of the convexity map (Li et al. plotted 51 × 51)
NONCONVEX_RATIO = 0.1  # the map's share of points with |λmin/λmax| above this is reported (eigen_map_nonconvex_share)

# The metric names, defined once: the summary CSV, the printed table, the callback's logs and the history CSV are
# all cut from these lists.
HESSIAN_METRICS = ["loss_center", "lambda_max", "lambda_min", "trace"]
SHARPNESS_METRICS = ["sharpness_worst", "sharpness_worst_adaptive", "sharpness_average", "sharpness_average_adaptive"]
CURVATURE_METRICS = [
    "dc_scalar",
    "dc_scalar_se",
    "analytic_scalar",
    "dc_region",
    "analytic_region",
    "fd_scalar",
    "smoothed_scalar",
    "dc_sign_agrees",
]
DIAGNOSTICS = ["loss_scale", "dc_comparison", "dc_ratio", "dc_within_2se", "dc_resolved", "dc_support", "dc_radius",
               "n_zoom", "analytic_region_se", "field_spearman", "dc_laziness",
               "eigen_map_nonconvex_share", *SHARPNESS_METRICS]  # fmt: skip
SUMMARY_COLUMNS = [
    *("checkpoint", "model", "directions", "k", "n_points", "radius"),
    *HESSIAN_METRICS,
    *DIAGNOSTICS[:2],
    *CURVATURE_METRICS,
    *DIAGNOSTICS[2:],
    *("n_nonfinite", "warnings"),
]
# the printed table: the summary without the long text and bookkeeping columns
TABLE_COLUMNS = ["checkpoint", "model", *HESSIAN_METRICS, *CURVATURE_METRICS[:3], "dc_sign_agrees", "dc_resolved"]


def grid_side(n_samples: int, k: int) -> int:
    """Points per axis of a k-dimensional grid of about ``n_samples`` points: the nearest integer m to n^(1/k), at
    least 3, lowered while m^k exceeds :data:`MAX_SAMPLES` (k = 6 at 200,000 would otherwise round to 8^6 = 262,144)."""
    m = max(3, round(n_samples ** (1 / k)))
    while m > 3 and m**k > MAX_SAMPLES:
        m -= 1
    return m


def _option(default: Any, help: str, **cli: Any) -> Any:
    """A field whose ``help`` (and command-line ``flag`` name, ``choices``, and the word ``none`` that stands for
    None) the command-line tools read to generate their flags (landscape.cli.common.add_option_arguments)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class AnalysisOptions:
    """What one analysis measures. Every field is checked when the object is built (:meth:`validate`).

    ``directions``: ``filter``/``gaussian`` (seeded random, SPEC §2) or ``hessian-top``/``hessian-bottom``/
    ``hessian-mixed`` (unit Hessian eigenvectors; mixed = the top and the bottom of the spectrum, a saddle slice when
    λmin < 0). ``k`` directions (2..6). ``scheme``: ``ball`` (``n_samples`` points), ``shells`` (three spheres at
    ⅓, ⅔ and 1 × ``radius``, ``n_samples``/3 each) or ``grid`` (round(n_samples^{1/k}) points per axis).
    The loss graph's scale s is the estimator's relief rule (SPEC §4b, :func:`landscape.curvature.loss_graph.
    relief_scale`); curvatures are reported as R(s)/s², which does not depend on the loss unit. ``exact_field``:
    the exact slice curvature at every sample (the field figure and its Spearman correlation, a validation option);
    by default it is computed at the centre and at 16 samples drawn from the walk's reach only (SPEC §5e).
    ``jackknife``: subsets for the diffusion estimate's standard error (0: none).
    """

    directions: str = _option(
        "filter",
        "slice directions: random filter-normalised/gaussian, or Hessian eigenvectors (top, bottom, or mixed = top "
        "and bottom of the spectrum: a saddle slice when λmin < 0)",
        choices=DIRECTIONS,
    )
    k: int = _option(2, f"number of directions, 2..{MAX_K}")
    n_samples: int = _option(300, "sampled points (≥ 20 for k = 2)", flag="samples")
    radius: float | None = _option(
        1.0, "sampling radius in u; auto: where the loss has risen by --radius-rise along the directions", none="auto"
    )
    radius_rise: float = _option(2.0, "loss factor that sets the auto radius")
    scheme: str = _option("ball", "sample layout: a ball, three shells at ⅓, ⅔ and 1 × the radius, or a grid",
                          choices=SCHEMES)  # fmt: skip
    seed: int = _option(0, "directions' and samples' seed (0..2^32-1)")
    grid_points: int = _option(21, "grid points per axis for the 2-D surface (0: none)", flag="grid")
    hessian: bool = _option(True, "the Hessian spectrum (λmax, λmin, top-k, trace, density)")
    top_k: int = _option(5, "top Hessian eigenvalues (the shared Lanczos run)")
    trace_samples: int = _option(30, "most probes for the (deflated Hutchinson) trace")
    trace_rtol: float = _option(0.01, "trace probes stop once its standard error is this fraction of it")
    density_starts: int = _option(2, "SLQ starts of the spectral density (the first is the extremes run; 0: none)")
    density_steps: int = _option(40, "Lanczos steps of each further SLQ start")
    tol: float = _option(1e-4, "relative accuracy of each Hessian eigenvalue (its Lanczos error bound)")
    eigen_map: int = _option(
        0, "λmin/λmax of the full Hessian on an N×N grid of the 2-D slice (Li et al.'s convexity map; 0: none)"
    )
    sharpness: float = _option(
        0.0, "ρ = σ of the worst- and average-case sharpness, plain and adaptive (landscape.sharpness; 0: none)"
    )
    batch_spectrum: int = _option(
        0, "λmax and λmin of every mini-batch Hessian, batches of this many evaluation examples (0: none)"
    )
    weight_decay: float = _option(
        0.0,
        "λ of an L2 term λ/2·‖θ‖² added to the analysed loss: the objective trained with that weight decay "
        "(SGD/Adam's weight_decay; its Hessian is the loss's + λI; landscape.objective)",
    )
    hessian_blocks: str = _option(
        "none",
        "per-block Hessian λmax, λmin and trace: none, auto (the architecture's stages/layers) or name=regex;...",
    )
    curvature: bool = _option(True, "the diffusion curvature of the sampled slice and its exact field")
    exact_field: bool = _option(
        False, "the exact slice curvature at every sample too (the field figure and Spearman; slower)"
    )
    jackknife: int = _option(10, "subsets for the diffusion value's error (0: none)")
    zoom: int = _option(
        3, f"times the estimate at θ* may resample on a ball 4× smaller while it is not resolved (0..{MAX_ZOOM})"
    )
    dc_t: int | None = _option(None, "walk length of the comparison form (auto: tied to the patch)", none="auto")
    threads: int | None = _option(None, "torch CPU threads (auto: idle cores, never oversubscribing)", none="auto")
    sampling_precision: str = _option(
        "float32",
        f"the sampled forward passes: float32, or bfloat16 where its losses stay within {BF16_TOL:.0%} of their "
        "float32 spread on each call's first 16 points (else that call runs float32); the truths stay exact",
        choices=PRECISIONS,
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:  # noqa: C901
        def bad(msg: str) -> None:
            raise ValueError(msg)

        if self.directions not in DIRECTIONS:
            bad(f"directions must be one of {', '.join(DIRECTIONS)}; got {self.directions!r}")
        if self.sampling_precision not in PRECISIONS:
            bad(f"sampling_precision must be one of {', '.join(PRECISIONS)}; got {self.sampling_precision!r}")
        if self.scheme not in SCHEMES:
            bad(f"scheme must be one of {', '.join(SCHEMES)}; got {self.scheme!r}")
        if not isinstance(self.k, int) or not 2 <= self.k <= MAX_K:
            bad(f"need 2 ≤ k ≤ {MAX_K} directions (a 1-direction slice has no intrinsic curvature); got k={self.k}")
        if not isinstance(self.n_samples, int) or not min_samples(self.k) <= self.n_samples <= MAX_SAMPLES:
            bad(
                f"need {min_samples(self.k)} ≤ samples ≤ {MAX_SAMPLES} for k = {self.k} directions; "
                f"got {self.n_samples}"
            )
        if self.radius is not None and not (
            isinstance(self.radius, (int, float)) and math.isfinite(self.radius) and 0 < self.radius <= 1e3
        ):
            bad(f"radius must be in (0, 1000] or None (auto), got {self.radius}")
        if not (isinstance(self.radius_rise, (int, float)) and 1 < self.radius_rise <= 1e3):
            bad(f"radius_rise (the auto radius's loss factor) must be in (1, 1000], got {self.radius_rise}")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
            bad(f"seed must be an integer in 0..2^32-1, got {self.seed}")
        if self.grid_points and not 3 <= self.grid_points <= 201:
            bad(f"grid points per axis must be 0 (none) or 3..201, got {self.grid_points}")
        if not (0 <= self.top_k <= 100 and 1 <= self.trace_samples <= 10_000):
            bad(f"need 0 ≤ top_k ≤ 100 and 1 ≤ trace_samples ≤ 10000; got {self.top_k} and {self.trace_samples}")
        if not (isinstance(self.trace_rtol, (int, float)) and 0 <= self.trace_rtol < 1):
            bad(f"trace_rtol (the trace's target relative standard error) must lie in [0, 1), got {self.trace_rtol}")
        if not (0 <= self.density_starts <= 100 and 2 <= self.density_steps <= 1000):
            bad("need 0 ≤ density_starts ≤ 100 and 2 ≤ density_steps ≤ 1000")
        if not 0 <= self.jackknife <= 100:
            bad(f"jackknife subsets must be 0 (none) or up to 100, got {self.jackknife}")
        if not 0 < self.tol < 1:
            bad(f"Lanczos tolerance must lie in (0, 1), got {self.tol}")
        if self.eigen_map and not (isinstance(self.eigen_map, int) and 2 <= self.eigen_map <= MAX_EIGEN_MAP):
            bad(f"eigen_map must be 0 (none) or 2..{MAX_EIGEN_MAP} points per axis, got {self.eigen_map}")
        if not (isinstance(self.sharpness, (int, float)) and math.isfinite(self.sharpness) and 0 <= self.sharpness):
            bad(f"sharpness must be 0 (none) or a positive radius, got {self.sharpness}")
        if self.batch_spectrum and not (isinstance(self.batch_spectrum, int) and 1 <= self.batch_spectrum <= 100_000):
            bad(f"batch_spectrum must be 0 (none) or a batch size of 1..100000, got {self.batch_spectrum}")
        wd = self.weight_decay
        if not (isinstance(wd, (int, float)) and math.isfinite(wd) and wd >= 0):
            bad(f"weight_decay must be a finite λ ≥ 0 (0: the loss alone), got {self.weight_decay}")
        if self.batch_spectrum and not self.hessian:
            bad("the mini-batch spectra are of the Hessian: drop --no-hessian or set batch_spectrum to 0")
        if self.eigen_map and not self.hessian:
            bad("the convexity map (eigen_map) is of the Hessian: drop --no-hessian or set eigen_map to 0")
        if self.eigen_map and self.k != 2:
            bad(f"the convexity map (eigen_map) is drawn on a 2-D slice: it needs k = 2, got k = {self.k}")
        if self.hessian_blocks != "none":
            block_groups(self.hessian_blocks)  # raises ValueError naming the bad group
            if not self.hessian:
                bad("per-block Hessian spectra need the Hessian: drop --no-hessian or set hessian_blocks='none'")
        if self.jackknife == 1 or self.jackknife < 0:
            bad(f"jackknife needs 0 (none) or ≥ 2 subsets, got {self.jackknife}")
        if self.threads is not None and not (isinstance(self.threads, int) and 1 <= self.threads <= 1024):
            bad(f"threads must be None (auto) or 1..1024, got {self.threads}")
        if not (isinstance(self.zoom, int) and 0 <= self.zoom <= MAX_ZOOM):
            bad(f"zoom must be 0..{MAX_ZOOM} resamplings at a quarter of the radius, got {self.zoom}")
        if self.dc_t is not None and not 1 <= self.dc_t <= MAX_WALK_STEPS:
            bad(f"dc_t must be 1..{MAX_WALK_STEPS} walk steps (or auto), got {self.dc_t}")

    def coordinates(self) -> np.ndarray:
        """The sample coordinates of :attr:`scheme` (row 0 = the centre)."""
        if self.scheme == "grid":
            return make_coordinates("grid", self.k, n=grid_side(self.n_samples, self.k), radius=self.radius)
        if self.scheme == "shells":
            radii = [self.radius / 3, 2 * self.radius / 3, self.radius]
            return make_coordinates("shells", self.k, n=-(-self.n_samples // 3), seed=self.seed, radii=radii)
        return make_coordinates("ball", self.k, n=self.n_samples, radius=self.radius, seed=self.seed)


@dataclass
class AnalysisResult:
    scalars: dict[str, float]
    options: dict[str, Any]
    sample: LandscapeSample
    surface: LandscapeSample | None = None
    density: SpectralDensity | None = None
    top_eigenvalues: list[float] = field(default_factory=list)
    direction_eigenvalues: list[float] = field(default_factory=list)  # Hessian directions' eigenvalues
    principal_curvatures: list[float] = field(default_factory=list)  # at the centre, per s (κ/s)
    slice: SliceCurvature | None = None
    exact: SliceField | None = None
    exact_rows: np.ndarray | None = None  # rows of the finite samples that ``exact`` holds
    timings: dict[str, float] = field(default_factory=dict)
    world_size: int = 1  # processes the work was split over
    hessian_skipped: str = ""  # why the Hessian spectrum was not computed although asked for
    hessian_warnings: list[str] = field(default_factory=list)  # quantities that missed their tolerance
    hessian_hvps: dict[str, int] = field(default_factory=dict)  # HVPs per quantity (SpectrumEstimate.n_hvp)
    radius_rule: dict[str, Any] = field(default_factory=dict)  # how an automatic radius was chosen (else empty)
    hessian_path: str = (
        ""  # how the Hessian-vector products were computed (landscape.hessian.spectrum.HessianProblem.path)
    )
    threads: int = 0  # torch CPU threads the analysis ran with
    zoom_levels: list[dict[str, Any]] = field(default_factory=list)  # every reading of θ* (ZoomLevel.record)
    zoom_samples: list[LandscapeSample] = field(default_factory=list)  # the samples of each zoom
    blocks: list[dict[str, Any]] = field(default_factory=list)  # per-block spectra (BlockSpectrum.record)
    eigen_map: EigenMap | None = None  # λmin/λmax of the full Hessian over the slice plane (eigen_map option)
    batches: BatchSpectrum | None = None  # λmax/λmin of every mini-batch Hessian (batch_spectrum option)
    sharpness: list[dict[str, Any]] = field(default_factory=list)  # Sharpness.to_dict of each form (sharpness option)

    @property
    def warnings(self) -> list[str]:
        found = [self.radius_rule["warning"]] if "warning" in self.radius_rule else []
        found += [] if self.slice is None else list(self.slice.warnings)
        return found + ([self.hessian_skipped] if self.hessian_skipped else []) + self.hessian_warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "scalars": self.scalars,
            "options": self.options,
            "warnings": self.warnings,
            "top_eigenvalues": self.top_eigenvalues,
            "direction_eigenvalues": self.direction_eigenvalues,
            "principal_curvatures": self.principal_curvatures,
            "timings_s": self.timings,
            "world_size": self.world_size,
            "radius_rule": self.radius_rule,
            "hessian_path": self.hessian_path,
            "hessian_hvps": self.hessian_hvps,
            "threads": self.threads,
            "zoom_levels": self.zoom_levels,
            "hessian_blocks": self.blocks,
            "batch_spectrum": self.batches.summary() if self.batches is not None else None,
            "sharpness": self.sharpness,
            "sample": self.sample.summary(),
            "density": self.density.to_dict() if self.density is not None else None,
        }

    def save(self, folder: str | Path) -> None:
        """``sample.npz/.json`` (+ the exact field and the diffusion field per sample, + ``surface.npz``), then
        ``results.json`` last: its presence marks completion."""
        folder = Path(folder)
        self.sample.arrays = self._field_arrays()
        self.sample.save(folder / "sample")
        if self.surface is not None:
            self.surface.save(folder / "surface")
        for level, zoomed in enumerate(self.zoom_samples, start=1):
            zoomed.save(folder / f"zoom{level}")
        if self.blocks:
            atomic_write_csv(folder / "blocks.csv", self.blocks, BLOCK_COLUMNS)
        if self.eigen_map is not None:
            atomic_write_npz(folder / "eigen_map.npz", **self.eigen_map.arrays())
        if self.batches is not None:
            atomic_write_csv(folder / "batch_spectrum.csv", self.batches.rows(), ["batch", "lambda_max", "lambda_min"])
        atomic_write_json(folder / "results.json", self.to_dict())

    def _field_arrays(self) -> dict[str, np.ndarray]:
        """Per-sample arrays aligned with the sample's rows (NaN where not computed): the exact slice field
        (gradient, Hessian in u, R(s)/s²) and the smoothed diffusion field R̂/s²."""
        if self.slice is None or self.exact is None or self.exact_rows is None:
            return {}
        n, k = self.sample.coords.shape
        finite = np.flatnonzero(self.sample.finite)
        rows = finite[self.exact_rows]
        out = {
            "exact_gradients": np.full((n, k), np.nan),
            "exact_hessians": np.full((n, k, k), np.nan),
            "exact_scalar": np.full(n, np.nan),
            "dc_scalar": np.full(n, np.nan),
        }
        out["exact_gradients"][rows] = self.exact.gradients
        out["exact_hessians"][rows] = self.exact.hessians
        out["exact_scalar"][finite] = self.slice.exact_field
        if self.slice.dc_field is not None:
            out["dc_scalar"][finite] = self.slice.dc_field
        return out


def analysis_threads(model: nn.Module, data: EvalSubset, o: AnalysisOptions) -> int:
    """The torch thread count an analysis of ``model`` on ``data`` runs with: ``o.threads``, else chosen from the
    work's size and the idle cores (:func:`landscape.threads.choose_threads`). ``ValueError`` when the model
    cannot take the inputs."""
    try:
        work = max(num_params(model), activation_numel(model, data.x)) * len(data)
    except TypeError as exc:  # a model that does not take these inputs (keywords, several inputs)
        raise ValueError(f"the model cannot be called as {describe_inputs(data.x)}: {exc}") from exc
    return choose_threads(work, o.threads)


def analyze_model(
    model: nn.Module,
    data: EvalSubset,
    *,
    options: AnalysisOptions | None = None,
    loss_fn: Callable = cross_entropy,
    progress: bool = False,
    comm: Comm | None = None,
    label: str = "",
    sampling_cache: SamplingCache | None = None,
) -> AnalysisResult:
    """Run every measurement on ``model`` at its current weights θ*; the model is left exactly as it was.

    With a multi-rank ``comm`` (:mod:`landscape.distributed`; call it on every rank with the same model, data and
    options) the sample rows, the exact field's rows and the Hessian's evaluation subset are split across ranks and
    every rank returns the same result as one process would; a failure on any rank raises ``RankFailure`` on all.

    ``progress`` shows a bar per sampling phase and a line per Hessian phase on stderr, prefixed with ``label``
    (the model or checkpoint). Every caveat in ``result.warnings`` is also issued as a
    :class:`landscape.exceptions.LandscapeWarning` (on rank zero). Raises ``ValueError`` if a weight is NaN or
    infinite. torch's CPU thread count is
    ``options.threads`` or, by default, chosen from the work's size and the idle cores
    (:func:`landscape.threads.choose_threads`), and the caller's setting is restored afterwards.
    ``sampling_cache``: the fused graphs its sampling calls share, given where a calibration
    (:func:`landscape.plan.calibrate`) built them already for the same model.
    """
    o = options or AnalysisOptions()
    o.validate()
    model, loss_fn = with_weight_decay(model, loss_fn, o.weight_decay)
    comm = comm or Comm()
    with using_threads(analysis_threads(model, data, o)) as n_threads:
        result = _analyze(model, data, o, loss_fn, progress, comm, label, sampling_cache or SamplingCache())
    result.threads = n_threads
    if comm.is_zero:  # the caveats, once, where notebooks and loggers see them
        for text in result.warnings:
            warnings.warn(f"{label}: {text}" if label else text, LandscapeWarning, stacklevel=2)
    return result


@dataclass
class _Run:
    """One analysis in progress: its inputs, the Hessian problem its phases share, and their timings."""

    model: nn.Module
    data: EvalSubset
    o: AnalysisOptions
    loss_fn: Callable
    comm: Comm
    progress: bool
    tag: str
    prob: HessianProblem | None = None
    times: dict[str, float] = field(default_factory=dict)
    sampling: SamplingCache = field(default_factory=SamplingCache)  # fused graphs built and tried once per run

    def phase(self, text: str) -> None:
        if self.progress:
            print(f"{self.tag}{text}", file=sys.stderr, flush=True)

    @contextmanager
    def hvp_phase(self, text: str, total: int | None = None) -> Iterator[None]:
        """A progress bar counting this phase's Hessian-vector products (rate, and an ETA when ``total`` is
        known: the trace's probes, the density's steps; Lanczos stops at its own tolerance)."""
        with tqdm(total=total, desc=f"{self.tag}{text}", unit="HVP", disable=not self.progress, leave=True) as bar:
            assert self.prob is not None
            self.prob.progress = bar
            try:
                yield
            finally:
                self.prob.progress = None


def _analyze(
    model: nn.Module,
    data: EvalSubset,
    o: AnalysisOptions,
    loss_fn: Callable,
    progress: bool,
    comm: Comm,
    label: str,
    cache: SamplingCache,
) -> AnalysisResult:
    """The phases in order: directions, radius, sampling, the slice's curvature, the Hessian spectrum."""
    bad = sum(int((~torch.isfinite(p.detach())).sum()) for p in model.parameters())
    if bad:
        raise ValueError(f"{bad} weights are NaN or infinite (training diverged); analyse an earlier checkpoint")
    run = _Run(model, data, o, loss_fn, comm, progress and comm.is_zero, f"{label}: " if label else "", sampling=cache)
    if o.hessian or o.directions in EIGEN_DIRECTIONS:
        run.prob = HessianProblem(model, data, loss_fn, comm=comm)
    s: dict[str, float] = {}
    D, eig_values, krylov, warnings = _directions(run, s)
    radius_rule = _choose_radius(run, D)
    sample, surface = _sample(run, D)
    s.update(
        loss_center=sample.center_loss,
        acc_center=float(sample.accuracies[0]),
        n_points=float(len(sample.losses)),
        n_nonfinite=float(sample.n_nonfinite),
        radius=float(run.o.radius or 0.0),
    )
    result = AnalysisResult(s, asdict(run.o), sample, surface, timings=run.times, world_size=comm.world_size)
    result.radius_rule = radius_rule
    result.direction_eigenvalues = eig_values
    result.hessian_warnings = warnings
    if run.o.curvature:
        _slice_curvature(run, result, D)
    if run.o.hessian and not sample.finite[0]:
        result.hessian_skipped = "the loss at the trained point is not finite: no Hessian spectrum"
    elif run.o.hessian:
        _spectrum(run, result, krylov, D)
    if run.o.sharpness:
        _sharpness(run, result)
    result.hessian_warnings += _precision_warnings(run.o, [sample, surface, *result.zoom_samples])
    if run.prob is not None:
        s["n_hvp"] = float(run.prob.n_hvp)
        result.hessian_path = run.prob.path
        run.prob.release()
    return result


def _precision_warnings(o: AnalysisOptions, samples: list[LandscapeSample | None]) -> list[str]:
    """One line when bfloat16 sampling was asked for and some calls ran float32 (their losses were too close
    together for bfloat16's rounding)."""
    if o.sampling_precision != "bfloat16":
        return []
    done = [z for z in samples if z is not None]
    full = [z.meta.get("bf16_deviation", math.nan) for z in done if z.meta.get("precision") == "float32"]
    if not full:
        return []
    off = f"{min(full):.2g}" + (f"–{max(full):.2g}" if max(full) > min(full) else "")
    return [f"bfloat16 sampling: {len(full)} of {len(done)} calls ran float32 (bfloat16 was {off} × the loss "
            f"spread off on their first points; tolerance {BF16_TOL:g})"]  # fmt: skip


def _directions(run: _Run, s: dict[str, float]):
    """The slice's directions (SPEC §2): seeded random ones, shared from rank zero, or Hessian eigenvectors (whose
    Lanczos run the spectrum reuses); returns them, the eigenvalues, that run and any warning."""
    o, t0 = run.o, time.perf_counter()
    if o.directions not in EIGEN_DIRECTIONS:
        D = make_directions(run.model, o.directions, o.k, seed=o.seed)
        # the filter norms are reductions whose rounding depends on the thread count: rank zero's directions for all
        D.matrix = run.comm.share(D.matrix)
        return D, [], None, []
    assert run.prob is not None
    with run.hvp_phase(f"Hessian eigenvectors ({o.directions}, Lanczos)"):
        top_k = o.top_k if o.hessian else None
        eig = eigen_directions(run.prob, o.directions, o.k, tol=o.tol, seed=o.seed, spectrum_top_k=top_k)
    values = eig.eigenvalues.tolist()
    if o.directions == "hessian-mixed":  # both ends of the spectrum are known (the spectrum refines them)
        s["lambda_max"], s["lambda_min"] = max(values), min(values)
    run.times["hessian_directions"] = time.perf_counter() - t0
    warning = "the Hessian eigenvector directions did not converge to tol in the Lanczos step limit"
    D = make_directions(run.model, "hessian", o.k, eigenvectors=eig.eigenvectors)
    return D, values, eig.run, [] if eig.converged else [warning]


def _choose_radius(run: _Run, D) -> dict[str, Any]:
    """``--radius auto``: the radius at which the loss rises by ``radius_rise`` (rank zero's, shared); the rule."""
    if run.o.radius is not None:
        return {}
    run.phase(f"choosing the radius (loss ×{run.o.radius_rise:g} along the directions)")
    r, rule = auto_radius(run.model, run.data, D, run.loss_fn, run.o.radius_rise)
    run.o = replace(run.o, radius=float(run.comm.share(torch.tensor([r], dtype=torch.float64))[0]))
    return rule


def _sample(run: _Run, D) -> tuple[LandscapeSample, LandscapeSample | None]:
    """The slice's samples and, for k = 2, the surface grid."""
    o, t0 = run.o, time.perf_counter()
    assert o.radius is not None
    sample = sample_on_ranks(run.comm, run.model, run.data, D, o.coordinates(), run.loss_fn, progress=run.progress,
                             desc=f"{run.tag}sampling the slice", cache=run.sampling,
                             precision=o.sampling_precision)  # fmt: skip
    surface = None
    if o.grid_points and o.k == 2:
        pts = grid(o.radius, o.grid_points, 2)
        surface = sample_on_ranks(run.comm, run.model, run.data, D, pts, run.loss_fn, progress=run.progress,
                                  desc=f"{run.tag}surface grid", cache=run.sampling,
                                  precision=o.sampling_precision)  # fmt: skip
    run.times["sampling"] = time.perf_counter() - t0
    return sample, surface


def _spectrum(run: _Run, result: AnalysisResult, krylov, D) -> None:
    """λmax, the top-k, λmin, trace and density from one Krylov budget (reusing the directions' run), and the
    per-block spectra when asked (SPEC §7)."""
    o, prob, t0 = run.o, run.prob, time.perf_counter()
    assert prob is not None
    if krylov is None:
        with run.hvp_phase(f"Hessian λmax, top {o.top_k}, λmin (one Lanczos run)"):
            krylov = extremes_run(prob, max(o.top_k, 1), 1, tol=o.tol, seed=o.seed)
    more = max(o.density_starts - 1, 0) * o.density_steps + o.trace_samples
    with run.hvp_phase("Hessian density (SLQ) and trace (deflated Hutchinson)", more):
        est = estimate_spectrum(prob, top_k=o.top_k, tol=o.tol, density_starts=o.density_starts,
                                density_steps=o.density_steps, trace_probes=o.trace_samples,
                                trace_rtol=o.trace_rtol, seed=o.seed, run=krylov)  # fmt: skip
    result.scalars.update(lambda_max=est.lambda_max, lambda_min=est.lambda_min, trace=est.trace, trace_se=est.trace_se)
    result.top_eigenvalues, result.density = est.top, est.density
    result.hessian_hvps = est.n_hvp
    result.hessian_warnings += est.warnings
    if o.hessian_blocks != "none":
        blocks = parameter_blocks(run.model, block_groups(o.hessian_blocks))
        with run.hvp_phase(f"Hessian blocks ({len(blocks)}: λmax, λmin and trace of each)"):
            spectra = block_spectra(prob, blocks, tol=o.tol, trace_probes=o.trace_samples, trace_rtol=o.trace_rtol,
                                    seed=o.seed)  # fmt: skip
        result.blocks = [b.record() for b in spectra]
        result.hessian_hvps["blocks"] = sum(b.n_hvp for b in spectra)
        result.hessian_warnings += [f"Hessian block {b.block}: λmax/λmin did not converge" for b in spectra
                                    if not b.converged]  # fmt: skip
    if o.eigen_map:
        _convexity_map(run, result, D)
    if o.batch_spectrum:
        if o.batch_spectrum > len(run.data):
            result.hessian_warnings.append(
                f"no mini-batch spectra: batches of {o.batch_spectrum} exceed the {len(run.data)} evaluation examples"
            )
        else:
            count = min(len(run.data) // o.batch_spectrum, MAX_BATCHES)
            run.phase(f"λmax/λmin of the Hessian of {count} batches of {o.batch_spectrum} examples")
            result.batches = batch_spectrum(run.model, run.data, batch_size=o.batch_spectrum, batches=count,
                                            loss_fn=run.loss_fn, tol=o.tol, seed=o.seed, comm=run.comm)  # fmt: skip
            result.hessian_hvps["batch_spectrum"] = result.batches.n_hvp
    run.times["hessian"] = time.perf_counter() - t0
    run.phase(f"Hessian done ({prob.n_hvp} Hessian-vector products, {run.times['hessian']:.1f} s)")


def _sharpness(run: _Run, result: AnalysisResult) -> None:
    """Worst- and average-case sharpness at ρ = σ = ``sharpness``, plain and adaptive (:mod:`landscape.sharpness`);
    the plain forms carry their small-radius limits ρ²λmax/2 and σ²·tr/2 when the spectrum was computed."""
    o, t0, s = run.o, time.perf_counter(), result.scalars
    if not result.sample.finite[0]:
        return  # the loss at θ* is not finite: there is no rise to measure
    run.phase(f"sharpness at ρ = σ = {o.sharpness:g} (worst case by ascent, average case by antithetic pairs)")
    lmax, trace = s.get("lambda_max"), s.get("trace")
    for adaptive in (False, True):
        tag = "_adaptive" if adaptive else ""
        worst = worst_case_sharpness(run.model, run.data, o.sharpness, adaptive=adaptive, loss_fn=run.loss_fn,
                                     seed=o.seed, lambda_max=None if adaptive else lmax)  # fmt: skip
        avg = average_case_sharpness(run.model, run.data, o.sharpness, adaptive=adaptive, loss_fn=run.loss_fn,
                                     seed=o.seed, trace=None if adaptive else trace)  # fmt: skip
        s[f"sharpness_worst{tag}"], s[f"sharpness_average{tag}"] = worst.value, avg.value
        result.sharpness += [worst.to_dict(), avg.to_dict()]
        if not worst.settled:
            result.hessian_warnings.append(f"worst-case sharpness{tag.replace('_', ' ')}: the ascent had not settled")
    run.times["sharpness"] = time.perf_counter() - t0


def _convexity_map(run: _Run, result: AnalysisResult, D) -> None:
    """Li et al.'s map: λmin and λmax of the full Hessian on an ``eigen_map`` × ``eigen_map`` grid of the slice,
    warm-started point to point (:mod:`landscape.hessian.eigen_map`); its products join ``hessian_hvps``."""
    o = run.o
    assert o.radius is not None and D.matrix is not None
    axis = np.linspace(-o.radius, o.radius, o.eigen_map)
    pts = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)  # row-major, as the figure draws
    run.phase(f"convexity map: λmin/λmax of the Hessian at {len(pts)} points (warm-started Lanczos)")
    emap = eigen_map(run.model, run.data, D.matrix, pts, loss_fn=run.loss_fn, tol=o.tol, seed=o.seed,
                     comm=run.comm)  # fmt: skip
    result.eigen_map = emap
    result.hessian_hvps["eigen_map"] = int(emap.n_hvp.sum())
    result.scalars["eigen_map_nonconvex_share"] = emap.share_above(NONCONVEX_RATIO)
    if not emap.converged.all():
        result.hessian_warnings.append(
            f"convexity map: λmax/λmin missed the tolerance at {int((~emap.converged).sum())} of {len(pts)} points"
        )


def _slice_curvature(run: _Run, result: AnalysisResult, D) -> None:
    """The diffusion estimate first (it says where its walk reads), zoomed in while it does not resolve θ*
    (:mod:`landscape.curvature.zoom`), then the exact curvature where the comparison needs it: the centre and the
    walk's reach of the reading that stands for θ*, or every sample with ``exact_field`` (SPEC §4–5)."""
    o, comm, s, sample = run.o, run.comm, result.scalars, result.sample
    if not sample.finite[0]:
        nan = float("nan")
        result.slice = SliceCurvature(nan, nan, nan, nan, nan, warnings=["the loss at the trained point is not finite"])
        s.update(result.slice.scalars(), dc_laziness=float("nan"))
        return
    t0 = time.perf_counter()
    u, f = sample.coords[sample.finite], sample.losses[sample.finite]
    dc_field = o.exact_field and len(u) <= DC_FIELD_MAX
    est = comm.run(
        "diffusion curvature",
        lambda: diffusion_estimate(u, f, replicates=o.jackknife, seed=o.seed, field=dc_field, t=o.dc_t),
    )
    result.timings["diffusion_curvature"] = time.perf_counter() - t0
    levels = _zoom(run, result, D, est)
    pick = int(comm.share(torch.tensor([pick_level(levels)]))[0])
    t0 = time.perf_counter()
    # the sampled slice's own truth: its reach draws when its reading stands for θ*, only the centre when a zoom's
    # does (the zoom brings its own draws), every sample with exact_field
    rows = est.truth_rows(every=o.exact_field) if pick == 0 or o.exact_field else np.array([0])
    exact = _exact_field(run, D, u[rows], "exact slice field")
    result.exact, result.exact_rows = exact, rows
    sc = compare_slice(est, rows, field_curvature(exact.hessians, exact.gradients, est.scale)["scalar"] / est.scale**2)
    if pick > 0:  # the zoomed reading stands for θ*; the field (figure, Spearman) stays the sampled slice's
        zoomed = levels[pick].estimate
        z_rows = zoomed.truth_rows()
        z_exact = _exact_field(run, D, zoomed.coords[z_rows], f"exact field of zoom {pick}")
        z_field = field_curvature(z_exact.hessians, z_exact.gradients, zoomed.scale)["scalar"] / zoomed.scale**2
        sc = replace(
            compare_slice(zoomed, z_rows, z_field),
            field_spearman=sc.field_spearman,
            dc_field=sc.dc_field,
            exact_field=sc.exact_field,
        )
    result.timings["exact_field"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    step = FD_STEP * levels[pick].radius  # central differences: a finer scale (loss_derivatives docstring)
    g_fd, h_fd = finite_difference_centre(run.model, run.data, D, step, run.loss_fn, comm)
    s["fd_scalar"] = graph_curvature(h_fd, g_fd, sc.scale).scalar / sc.scale**2
    sigma = READ_SCALE * levels[pick].radius  # the stated truth: the curvature at the scale the estimate reads
    g_sm, h_sm = gaussian_smoothed_centre(run.model, run.data, D, sigma, nodes=smoothing_nodes(o.k),
                                          loss_fn=run.loss_fn, comm=comm)  # fmt: skip
    s["smoothed_scalar"] = graph_curvature(h_sm, g_sm, sc.scale).scalar / sc.scale**2
    result.timings["scale_truths"] = time.perf_counter() - t0
    result.slice = sc = replace(sc, stated_scalar=s["smoothed_scalar"])  # the verdict is against it
    s.update(sc.scalars(), dc_radius=levels[pick].radius, n_zoom=float(len(levels) - 1))
    gc = graph_curvature(exact.hessians[0], exact.gradients[0], sc.scale)
    result.principal_curvatures = (gc.principal / sc.scale).tolist()
    cloud = np.column_stack([u, sc.scale * f])
    s["dc_laziness"] = float(laziness(cloud, k=min(30, len(cloud) - 1), sigma_k=min(20, len(cloud) - 2))[0])


def _exact_field(run: _Run, D, coords: np.ndarray, what: str) -> SliceField:
    """The exact gradient and Hessian of the slice at ``coords`` (rows split over the ranks)."""
    return field_on_ranks(run.comm, run.model, run.data, D.matrix, coords, run.loss_fn, progress=run.progress,
                          desc=f"{run.tag}{what}")  # fmt: skip


def _zoom(run: _Run, result: AnalysisResult, D, est):
    """Up to ``o.zoom`` resamplings on balls 4× smaller while the estimate at θ* is not resolved; their samples
    are kept in ``result.zoom_samples`` (saved as ``zoom1``, ``zoom2``, ...) and their readings in
    ``result.zoom_levels``."""
    o, comm = run.o, run.comm
    assert o.radius is not None
    t0 = time.perf_counter()

    def resample(radius: float) -> tuple[np.ndarray, np.ndarray]:
        level = len(result.zoom_samples) + 1
        coords = replace(o, radius=radius).coordinates()
        z = sample_on_ranks(comm, run.model, run.data, D, coords, run.loss_fn, progress=run.progress,
                            desc=f"{run.tag}zoom {level}: radius {radius:.3g}", cache=run.sampling,
                            precision=o.sampling_precision)  # fmt: skip
        result.zoom_samples.append(z)
        return z.coords[z.finite], z.losses[z.finite]

    def agree(flag: bool) -> bool:  # rank zero decides for all, so that every rank samples the same zooms
        return bool(comm.share(torch.tensor([float(flag)]))[0])

    levels = comm.run(
        "zooming in",
        lambda: zoom_in(
            est, o.radius, resample, levels=o.zoom, replicates=o.jackknife, seed=o.seed, t=o.dc_t, agree=agree
        ),  # fmt: skip
    )
    result.zoom_levels = [level.record() for level in levels]
    if len(levels) > 1:
        result.timings["zoom"] = time.perf_counter() - t0
    return levels


def summary_row(name: str, model_name: str, r: AnalysisResult) -> dict[str, Any]:
    s = r.scalars
    row: dict[str, Any] = {"checkpoint": name, "model": model_name}
    row["directions"], row["k"] = r.options["directions"], r.options["k"]
    for col in SUMMARY_COLUMNS[4:-1]:
        v = s.get(col, float("nan"))
        row[col] = int(v) if (col.startswith("n_") or col.startswith("dc_sign")) and math.isfinite(v) else v
    row["warnings"] = "; ".join(r.warnings)
    return row


def seeded(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` without consuming the caller's global torch/numpy RNG streams."""
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            return fn()
        finally:
            np.random.set_state(np_state)

"""One full landscape analysis of a trained model: sampling + diffusion curvature (both forms) + Hessian spectrum
+ the exact curvature of the sampled slice (SPEC §1–7). Shared by the callbacks and the command-line tools.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .coordinates import grid, make_coordinates
from .data import EvalSubset
from .density import SpectralDensity, hessian_density
from .diffusion import comparison, laziness
from .directions import make_directions
from .distributed import Comm
from .graph_curvature import graph_curvature
from .hessian import HessianProblem, extreme_eigenvalues, hutchinson_trace, lanczos_eigen, projected_hessian
from .losses import cross_entropy
from .results import LandscapeSample, atomic_write_json
from .sampling import sample_on_ranks

SUMMARY_COLUMNS = [
    "checkpoint",
    "model",
    "loss_center",
    "lambda_max",
    "lambda_min",
    "trace",
    "dc_laziness",
    "dc_comparison",
    "analytic_scalar",
    "n_points",
    "n_nonfinite",
]


@dataclass
class AnalysisOptions:
    directions: str = "filter"
    k: int = 2
    n_samples: int = 300
    radius: float = 1.0
    scheme: str = "ball"
    loss_scale: float = 1.0
    seed: int = 0
    grid_points: int = 21  # per axis for the 2-D surface plot (0: none)
    hessian: bool = True
    top_k: int = 5
    trace_samples: int = 30
    density_starts: int = 2
    density_steps: int = 40
    tol: float = 1e-4
    curvature: bool = True
    dc_t: int | None = None  # walk length of the comparison form (None: tied to the sample count)

    def validate(self) -> None:
        if self.k < 1 or self.n_samples < 20:
            raise ValueError(f"need k ≥ 1 directions and ≥ 20 samples, got k={self.k}, n={self.n_samples}")
        if not (self.radius > 0 and math.isfinite(self.radius)):
            raise ValueError(f"radius must be positive and finite, got {self.radius}")
        if not self.loss_scale > 0:
            raise ValueError(f"loss scale must be positive, got {self.loss_scale}")


@dataclass
class AnalysisResult:
    scalars: dict[str, float]
    options: dict[str, Any]
    sample: LandscapeSample
    surface: LandscapeSample | None = None
    density: SpectralDensity | None = None
    top_eigenvalues: list[float] = field(default_factory=list)
    principal_curvatures: list[float] = field(default_factory=list)
    pointwise_dc: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    world_size: int = 1  # processes the work was split over

    def to_dict(self) -> dict[str, Any]:
        return {
            "scalars": self.scalars,
            "options": self.options,
            "top_eigenvalues": self.top_eigenvalues,
            "principal_curvatures": self.principal_curvatures,
            "timings_s": self.timings,
            "world_size": self.world_size,
            "sample": self.sample.summary(),
            "density": self.density.to_dict() if self.density is not None else None,
        }

    def save(self, folder: str | Path) -> None:
        """``sample.npz/.json`` (+ ``surface.npz``), then ``results.json`` last: its presence marks completion."""
        folder = Path(folder)
        self.sample.save(folder / "sample")
        if self.surface is not None:
            self.surface.save(folder / "surface")
        atomic_write_json(folder / "results.json", self.to_dict())


def analyze_model(
    model: nn.Module,
    data: EvalSubset,
    options: AnalysisOptions | None = None,
    loss_fn: Callable = cross_entropy,
    progress: bool = False,
    comm: Comm | None = None,
) -> AnalysisResult:
    """Run every measurement on ``model`` at its current weights θ*; the model is left exactly as it was.

    With a multi-rank ``comm`` (:mod:`landscape.distributed`; call it on every rank with the same model, data and
    options) the sample rows and the Hessian's evaluation subset are split across ranks and every rank returns the
    same result as one process would; a failure on any rank raises ``RankFailure`` on all of them.
    """
    o = options or AnalysisOptions()
    o.validate()
    comm = comm or Comm()
    progress = progress and comm.is_zero
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if o.directions not in ("filter", "gaussian"):
        raise ValueError(f"analysis directions must be filter or gaussian, got {o.directions!r}")
    D = make_directions(model, o.directions, o.k, seed=o.seed)
    coords = make_coordinates(o.scheme, o.k, n=o.n_samples, radius=o.radius, seed=o.seed)
    sample = sample_on_ranks(comm, model, data, D, coords, loss_fn, progress=progress)
    surface = None
    if o.grid_points and o.k == 2:
        surface = sample_on_ranks(comm, model, data, D, grid(o.radius, o.grid_points, 2), loss_fn, progress=progress)
    times["sampling"] = time.perf_counter() - t0
    s: dict[str, float] = {
        "loss_center": sample.center_loss,
        "acc_center": float(sample.accuracies[0]),
        "n_points": float(len(sample.losses)),
        "n_nonfinite": float(sample.n_nonfinite),
    }
    result = AnalysisResult(s, asdict(o), sample, surface, timings=times, world_size=comm.world_size)
    if o.curvature:
        t0 = time.perf_counter()
        comm.run("diffusion curvature", lambda: _diffusion_curvature(result, o))
        times["diffusion_curvature"] = time.perf_counter() - t0
    if o.hessian:
        t0 = time.perf_counter()
        prob = HessianProblem(model, data, loss_fn, comm=comm)
        s["lambda_max"], s["lambda_min"], _ = extreme_eigenvalues(prob, tol=o.tol, seed=o.seed)
        if o.top_k:
            result.top_eigenvalues = lanczos_eigen(prob, o.top_k, "LA", tol=o.tol, seed=o.seed).eigenvalues.tolist()
        s["trace"], s["trace_se"] = hutchinson_trace(prob, o.trace_samples, seed=o.seed)
        if o.density_starts:
            result.density = hessian_density(prob, o.density_starts, o.density_steps, seed=o.seed)
        assert D.matrix is not None
        A, g, _ = projected_hessian(prob, D.matrix)
        gc = graph_curvature(A, g, o.loss_scale)
        s["analytic_scalar"], s["analytic_gauss"], s["analytic_mean"] = gc.scalar, gc.gauss_kronecker, gc.mean
        result.principal_curvatures = gc.principal.tolist()
        s["n_hvp"] = float(prob.n_hvp)
        times["hessian"] = time.perf_counter() - t0
    return result


def _diffusion_curvature(result: AnalysisResult, o: AnalysisOptions) -> None:
    s, sample = result.scalars, result.sample
    cloud = sample.point_cloud(o.loss_scale)
    if sample.finite[0] and len(cloud) >= 20:
        u = sample.coords[sample.finite]
        # the sampled ball is the patch: every query's exponential chart spans all samples
        k = min(15, (len(cloud) - 1) // 2)  # the patch (all samples) must exceed 2k: 20 samples allow k = 10
        dc = comparison(cloud, u, queries=None, t=o.dc_t, k=k, patch=len(cloud))
        result.pointwise_dc = dc
        s["dc_comparison"] = float(dc[0])
        s["dc_laziness"] = float(laziness(cloud, k=min(30, len(cloud) - 1), sigma_k=min(20, len(cloud) - 2))[0])
    else:
        s["dc_comparison"] = s["dc_laziness"] = float("nan")


def summary_row(name: str, model_name: str, r: AnalysisResult) -> dict[str, Any]:
    s = r.scalars
    row = {"checkpoint": name, "model": model_name}
    for col in SUMMARY_COLUMNS[2:]:
        v = s.get(col, float("nan"))
        row[col] = int(v) if col.startswith("n_") else v
    return row


def seeded(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` without consuming the caller's global torch/numpy RNG streams."""
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            return fn()
        finally:
            np.random.set_state(np_state)

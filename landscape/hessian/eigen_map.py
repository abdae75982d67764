"""Li et al. 2018's convexity map: λmin and λmax of the FULL Hessian at every point θ* + Dᵀu of the 2-D plot plane
(SPEC §7 away from θ*), drawn as |λmin/λmax|; their evidence that skip connections keep a ResNet near-convex.

Their code runs an independent eigensolve at every grid point. Here the points are visited in a snake order (each
one next to the one before) and each Lanczos run starts from the previous point's two extreme Ritz vectors (plus
a small seeded random part, so the Krylov space is never deficient): where the Hessian changes little from one
point to the next, both ends converge in a few products. ``warm=False`` gives the independent solves
(``benchmarks/eigen_map_speed.py`` measures the ratio). The model's weights are restored bitwise afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..distributed import Comm
from ..evaluation import EvalSubset
from ..losses import LossFn, cross_entropy
from ..params import flatten, preserved_state, trainable, unflatten
from .krylov_spectrum import end_pairs, extremes_run
from .spectrum import HessianProblem

MAX_MAP_POINTS = 10_000  # a map of at most this many points (each one a Lanczos run)
WARM_NOISE = 0.1  # the random part of a warm start, relative to its unit norm


@dataclass
class EigenMap:
    """λmax and λmin of the full Hessian at ``coords`` (m, 2), with the products each point took and whether
    both ends met the tolerance there."""

    coords: np.ndarray
    lambda_max: np.ndarray
    lambda_min: np.ndarray
    n_hvp: np.ndarray
    converged: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """|λmin/λmax|, Li et al.'s convexity measure (0 where the Hessian is positive semi-definite; NaN where
        λmax ≤ 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.lambda_max > 0, np.abs(np.minimum(self.lambda_min, 0.0)) / self.lambda_max, np.nan)

    def share_above(self, threshold: float) -> float:
        """The share of the map's points where |λmin/λmax| exceeds ``threshold`` (non-convex to that degree)."""
        r = self.ratio
        return float(np.mean(np.nan_to_num(r, nan=np.inf) > threshold))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"u1": self.coords[:, 0], "u2": self.coords[:, 1], "lambda_max": self.lambda_max,
                "lambda_min": self.lambda_min, "n_hvp": self.n_hvp, "converged": self.converged}  # fmt: skip


def snake_order(coords: np.ndarray) -> np.ndarray:
    """An order of grid points in which each is next to the one before: rows by u2, alternating direction in u1."""
    u1, u2 = np.round(coords[:, 0], 12), np.round(coords[:, 1], 12)
    rows = np.unique(u2)
    order: list[int] = []
    for i, row in enumerate(rows):
        idx = np.flatnonzero(u2 == row)
        idx = idx[np.argsort(u1[idx])]
        order.extend(idx[::-1] if i % 2 else idx)
    return np.asarray(order, dtype=np.int64)


def eigen_map(  # noqa: PLR0913
    model: nn.Module,
    data: EvalSubset,
    directions: torch.Tensor,
    coords: np.ndarray,
    *,
    loss_fn: LossFn = cross_entropy,
    tol: float = 1e-3,
    warm: bool = True,
    seed: int = 0,
    comm: Comm | None = None,
) -> EigenMap:
    """λmax and λmin of the full Hessian at θ* + Dᵀu for every row u of ``coords`` (m, 2), D = ``directions``
    (2, P) (module docstring). Each end to ``tol`` relative (Lanczos error bound). With a multi-rank ``comm`` every
    product is summed over the ranks' blocks of ``data`` (every rank calls this with the same arguments)."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != directions.shape[0] or not 1 <= len(coords) <= MAX_MAP_POINTS:
        raise ValueError(f"need 1..{MAX_MAP_POINTS} coordinates with one column per direction, got {coords.shape}")
    params: list[torch.Tensor] = [p for _, p in trainable(model)]
    D = torch.as_tensor(directions, dtype=params[0].dtype, device=params[0].device)
    m = len(coords)
    lmax, lmin, n_hvp, ok = np.empty(m), np.empty(m), np.zeros(m, dtype=np.int64), np.zeros(m, dtype=bool)
    rng = np.random.default_rng(seed)
    previous: np.ndarray | None = None
    with preserved_state(model), torch.no_grad():
        theta = flatten([p.detach() for p in params]).clone()
        for i in snake_order(coords):
            u = torch.as_tensor(coords[i], dtype=D.dtype, device=D.device)
            for p, value in zip(params, unflatten(theta + u @ D, params)):
                p.copy_(value)
            problem = HessianProblem(model, data, loss_fn, comm=comm)
            start = _warm_start(previous, problem.num_params, rng) if warm else None
            with torch.enable_grad():
                run = extremes_run(problem, 1, 1, tol, seed=seed + int(i), start=start)
            ends = end_pairs(run, 1, 1, vectors=warm)
            lmax[i], lmin[i] = ends["top"][0], ends["bottom"][0]
            n_hvp[i], ok[i] = problem.n_hvp, {"max", "min"} <= set(run.converged_at)
            if warm:
                previous = np.vstack([ends["top_vectors"][0], ends["bottom_vectors"][0]])
            problem.release()
    return EigenMap(coords, lmax, lmin, n_hvp, ok)


def _warm_start(previous: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """The previous point's two extreme Ritz vectors, summed, plus a small random part (None at the first point)."""
    if previous is None:
        return None
    v = previous.sum(axis=0)
    v /= np.linalg.norm(v)
    noise = rng.standard_normal(n)
    return v + WARM_NOISE * noise / np.linalg.norm(noise)

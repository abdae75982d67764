"""Eigenvalue spectral density by stochastic Lanczos quadrature (SPEC §7; PyHessian's density() is broken)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .lanczos import Lanczos, lanczos, ritz


def lanczos_tridiagonal(matvec: Callable[[np.ndarray], np.ndarray], v0: np.ndarray, steps: int):
    """``steps`` Lanczos steps from v0 (:func:`landscape.hessian.lanczos.lanczos`, full re-orthogonalisation);
    (alpha, beta) in float64, len(alpha) ≤ steps (fewer at an invariant subspace)."""
    return lanczos(matvec, v0, steps).tridiagonal()


def quadrature(run: Lanczos) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature of the spectral measure seen from the run's start: Ritz values and the squared first
    components of T's eigenvectors (summing to 1)."""
    theta, S, _ = ritz(*run.tridiagonal())
    return theta, S[0] ** 2


@dataclass
class SpectralDensity:
    """Ritz nodes and quadrature weights per random start (each row sums to 1)."""

    nodes: list[np.ndarray]
    weights: list[np.ndarray]
    num_params: int

    def moment(self, p: int = 1) -> float:
        """∫ λ^p dμ averaged over starts: the first moment estimates tr H / P."""
        return float(np.mean([np.sum(w * n**p) for n, w in zip(self.nodes, self.weights)]))

    def density(self, grid: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """Gaussian-broadened density on ``grid`` (σ default: 1 % of the node range)."""
        allnodes = np.concatenate(self.nodes)
        if sigma is None:
            sigma = max(1e-12, 0.01 * float(allnodes.max() - allnodes.min()))
        out = np.zeros_like(grid, dtype=np.float64)
        for n, w in zip(self.nodes, self.weights):
            out += (w[None, :] * np.exp(-((grid[:, None] - n[None, :]) ** 2) / (2 * sigma**2))).sum(1)
        return out / (len(self.nodes) * sigma * np.sqrt(2 * np.pi))

    def to_dict(self) -> dict:
        return {
            "nodes": [n.tolist() for n in self.nodes],
            "weights": [w.tolist() for w in self.weights],
            "num_params": self.num_params,
        }


def slq(matvec: Callable[[np.ndarray], np.ndarray], n: int, n_starts: int = 4, steps: int = 80, seed: int = 0):
    """Stochastic Lanczos quadrature from ``n_starts`` Rademacher vectors of dimension n."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(n_starts):
        theta, w = quadrature(lanczos(matvec, rng.choice([-1.0, 1.0], size=n), steps))
        nodes.append(theta)
        weights.append(w)
    return SpectralDensity(nodes, weights, n)


def hessian_density(problem, n_starts: int = 4, steps: int = 80, seed: int = 0) -> SpectralDensity:
    """SLQ on a :class:`landscape.hessian.spectrum.HessianProblem`."""

    def mv(x: np.ndarray) -> np.ndarray:
        return problem.hvp(torch.from_numpy(x)).double().numpy()

    return slq(mv, problem.num_params, n_starts, steps, seed)

"""One Lanczos run with full re-orthogonalisation, kept whole so that every spectral number can be read from it
(SPEC §7): the extreme Ritz pairs with their error bounds, the Gauss quadrature of the spectral density, and the
Krylov basis that deflates the trace estimate.

With the basis rows q_0..q_{m-1} (orthonormal), the run satisfies H Qᵀ = Qᵀ T + β_m q_m e_mᵀ, T tridiagonal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.linalg import eigh_tridiagonal

MatVec = Callable[[np.ndarray], np.ndarray]


@dataclass
class Lanczos:
    """The state of one run: basis ``Q`` (m × P), diagonal ``alpha`` (m), off-diagonal ``beta`` (m; ``beta[-1]``
    couples the last basis vector to the next, ``q_next``), and ``start_norm2`` = |v0|²."""

    Q: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    q_next: np.ndarray
    start_norm2: float
    breakdown: bool = False  # the Krylov space is invariant: every Ritz pair is exact
    converged_at: dict[str, int] = field(default_factory=dict)  # quantity → step (HVPs) at which it converged

    @property
    def steps(self) -> int:
        return len(self.alpha)

    def tridiagonal(self, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, beta) of the first m steps (default all): T's diagonal and off-diagonal."""
        m = self.steps if m is None else min(m, self.steps)
        return self.alpha[:m], self.beta[: m - 1]

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ritz values (ascending), the eigenvectors S of T (columns) and each pair's residual |β_m s_{m,i}|."""
        return ritz(self.alpha, self.beta)

    def ritz_vectors(self, columns: np.ndarray, S: np.ndarray) -> np.ndarray:
        """Unit Ritz vectors Qᵀ S[:, columns] as rows (len(columns), P)."""
        V = (self.Q.T @ S[:, columns]).T
        return V / np.linalg.norm(V, axis=1, keepdims=True)

    def t_times(self, c: np.ndarray) -> np.ndarray:
        """T c for the run's tridiagonal T (m × m), without forming it."""
        out = self.alpha * c
        b = self.beta[: self.steps - 1]
        out[:-1] += b * c[1:]
        out[1:] += b * c[:-1]
        return out


def ritz(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ritz values (ascending), eigenvectors of T and residual norms of a run with m = len(alpha) steps whose last
    off-diagonal is ``beta[m-1]`` (0 or absent: an invariant subspace, residuals 0)."""
    m = len(alpha)
    if m == 1:
        theta, S = alpha.copy(), np.ones((1, 1))
    else:
        theta, S = eigh_tridiagonal(alpha, beta[: m - 1])
    last = float(beta[m - 1]) if len(beta) >= m else 0.0
    return theta, S, np.abs(last * S[-1])


def error_bounds(theta: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """A bound on each Ritz value's error: min(r, r²/gap) with gap = the distance to the nearest other Ritz value
    (the residual bound, and the gap bound that holds once the neighbouring eigenvalues are resolved)."""
    if len(theta) == 1:
        return residuals.copy()
    gaps = np.empty_like(theta)
    d = np.diff(theta)
    gaps[0], gaps[-1] = d[0], d[-1]
    gaps[1:-1] = np.minimum(d[:-1], d[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        quad = np.where(gaps > 0, residuals**2 / gaps, np.inf)
    return np.minimum(residuals, quad)


def lanczos(
    matvec: MatVec,
    v0: np.ndarray,
    max_steps: int,
    done: Callable[[Lanczos], bool] | None = None,
) -> Lanczos:
    """Up to ``max_steps`` Lanczos steps from v0 with full re-orthogonalisation (a second pass when the first
    removed much: Kahan–Parlett "twice is enough"). ``done(run)`` is asked after every step and ends the run early
    when it returns True. A run also ends at an invariant subspace (``breakdown``: its Ritz pairs are exact)."""
    n = len(v0)
    steps = min(max_steps, n)
    Q = np.zeros((steps, n))
    alpha = np.zeros(steps)
    beta = np.zeros(steps)
    norm2 = float(v0 @ v0)
    v = v0 / np.sqrt(norm2)
    run = Lanczos(Q[:0], alpha[:0], beta[:0], v, norm2)
    for j in range(steps):
        Q[j] = v
        w = np.asarray(matvec(v), dtype=np.float64)
        alpha[j] = float(w @ v)
        w = w - alpha[j] * v - (beta[j - 1] * Q[j - 1] if j else 0.0)
        before = float(np.linalg.norm(w))
        w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        if np.linalg.norm(w) < 0.7 * before:
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        beta[j] = float(np.linalg.norm(w))
        breakdown = beta[j] <= 1e-10 * max(1.0, abs(alpha[j])) or j == n - 1
        if breakdown:
            beta[j] = 0.0
        v = w / beta[j] if beta[j] > 0 else np.zeros(n)
        run = Lanczos(Q[: j + 1], alpha[: j + 1], beta[: j + 1], v, norm2, breakdown, run.converged_at)
        if breakdown or (done is not None and done(run)):
            break
    return run

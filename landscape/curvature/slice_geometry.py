"""Exact curvature of the sampled loss graph M = {(u, s f(u))} ⊂ R^{k+1} (SPEC §4)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class GraphCurvature:
    principal: np.ndarray  # κ_1 ≥ … ≥ κ_k, eigenvalues of the shape operator S
    gauss_kronecker: float  # det S = s^k det A / W^(k+2)
    mean: float  # tr S / k
    scalar: float  # (tr S)² − tr(S²) = Σ_{i≠j} κ_i κ_j

    def to_dict(self) -> dict:
        d = asdict(self)
        d["principal"] = self.principal.tolist()
        return d


def graph_curvature(hessian: np.ndarray, gradient: np.ndarray | None = None, scale: float = 1.0) -> GraphCurvature:
    """Curvature of the graph of s·f at a point with ∇f = g, ∇²f = A (u-coordinates).

    G = I + s² g gᵀ, W = √(1 + s²‖g‖²), h = s A / W, S = G⁻¹ h. S is similar to the symmetric
    G^{-1/2} h G^{-1/2}, so its eigenvalues (principal curvatures) are real. Positive = bowl, negative = saddle.
    """
    A = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
    k = A.shape[0]
    if A.shape != (k, k):
        raise ValueError(f"Hessian must be square, got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError("Hessian contains NaN or infinity")
    g = np.zeros(k) if gradient is None else np.asarray(gradient, dtype=np.float64).reshape(k)
    A = (A + A.T) / 2
    W = np.sqrt(1.0 + scale**2 * g @ g)
    h = scale * A / W
    G = np.eye(k) + scale**2 * np.outer(g, g)
    w, U = np.linalg.eigh(G)
    G_inv_half = U @ np.diag(w**-0.5) @ U.T
    kappa = np.sort(np.linalg.eigvalsh(G_inv_half @ h @ G_inv_half))[::-1]
    tr, tr2 = kappa.sum(), (kappa**2).sum()
    return GraphCurvature(kappa, float(np.prod(kappa)), float(tr / k), float(tr**2 - tr2))


def field_curvature(hessians: np.ndarray, gradients: np.ndarray, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Scalar, Gauss–Kronecker and mean curvature of the graph of ``scale``·f at every point of a field (SPEC §4b):
    ``hessians`` (n, k, k) and ``gradients`` (n, k) of f in the slice coordinates; NaN where either is not finite."""
    out: dict[str, list[float]] = {"scalar": [], "gauss": [], "mean": []}
    for A, g in zip(np.asarray(hessians, dtype=np.float64), np.asarray(gradients, dtype=np.float64)):
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(g))):
            for values in out.values():
                values.append(np.nan)
            continue
        c = graph_curvature(A, g, scale)
        out["scalar"].append(c.scalar)
        out["gauss"].append(c.gauss_kronecker)
        out["mean"].append(c.mean)
    return {key: np.asarray(v, dtype=np.float64) for key, v in out.items()}

"""Least-squares polynomial models of a sampled loss slice on patches of samples (SPEC §5d).

The loss-graph chart needs the slope and the Hessian of f along every ray of a patch, not only at its centre; a
low-degree polynomial in the scaled offsets y = (u − u_query)/ρ fitted to the patch's losses gives both smoothly.
Everything is batched over patches: coefficients (B, terms), points (B, m, k).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from math import comb

import numpy as np


@dataclass(frozen=True)
class Monomials:
    """All monomials y^e of total degree ≤ ``degree`` in ``k`` variables; ``exponents`` (terms, k)."""

    k: int
    degree: int
    exponents: np.ndarray

    @classmethod
    def of_degree(cls, k: int, degree: int) -> "Monomials":
        if k < 1 or degree < 0:
            raise ValueError(f"need k ≥ 1 variables and degree ≥ 0, got k={k}, degree={degree}")
        exps = sorted((e for e in product(range(degree + 1), repeat=k) if sum(e) <= degree), key=lambda e: (sum(e), e))
        return cls(k, degree, np.array(exps, dtype=np.int64).reshape(-1, k))

    @property
    def size(self) -> int:
        return len(self.exponents)

    @property
    def degrees(self) -> np.ndarray:
        return self.exponents.sum(axis=1)

    def _factors(self, Y: np.ndarray, order: int) -> list[np.ndarray]:
        """Per variable j, ∂^order of y_j^{e_j} for every term: a list over j of (..., terms) arrays."""
        out = []
        for j in range(self.k):
            e = self.exponents[:, j]
            table = np.ones(Y.shape[:-1] + (self.degree + 1,))
            for p in range(1, self.degree + 1):
                table[..., p] = table[..., p - 1] * Y[..., j]
            coef = np.ones(len(e))
            for r in range(order):
                coef = coef * (e - r)
            out.append(table[..., np.maximum(e - order, 0)] * coef)
        return out

    def _product(self, factors: tuple[list[np.ndarray], ...], orders: list[int]) -> np.ndarray:
        M = factors[orders[0]][0].copy()
        for j in range(1, self.k):
            M *= factors[orders[j]][j]
        return M

    def design(self, Y: np.ndarray) -> np.ndarray:
        """Monomial values at points Y (..., k) → (..., terms)."""
        return self._product((self._factors(Y, 0),), [0] * self.k)

    def gradient_design(self, Y: np.ndarray) -> np.ndarray:
        """The monomials' gradients at points Y (..., k) → (..., k, terms)."""
        f = (self._factors(Y, 0), self._factors(Y, 1))
        return np.stack([self._product(f, [int(j == i) for j in range(self.k)]) for i in range(self.k)], axis=-2)

    def hessian_design(self, Y: np.ndarray) -> np.ndarray:
        """The monomials' Hessians at points Y (..., k) → (..., k, k, terms)."""
        f = (self._factors(Y, 0), self._factors(Y, 1), self._factors(Y, 2))
        out = np.empty(Y.shape[:-1] + (self.k, self.k, self.size))
        for i in range(self.k):
            for j in range(i, self.k):
                orders = [0] * self.k
                orders[i] += 1
                orders[j] += 1
                out[..., i, j, :] = self._product(f, orders)
                out[..., j, i, :] = out[..., i, j, :]
        return out

    def gradient_at_zero(self, C: np.ndarray) -> np.ndarray:
        """∇f(0) = the coefficients of y_1 … y_k, (B, k), for coefficients C (B, terms)."""
        unit = np.eye(self.k, dtype=np.int64)
        idx = [int(np.flatnonzero((self.exponents == unit[i]).all(axis=1))[0]) for i in range(self.k)]
        return C[:, idx]

    def ray_integral(self, Y: np.ndarray, C: np.ndarray) -> np.ndarray:
        """∫₀¹ (1 − τ) ∇f(τy) ∂²_τ f(τy) dτ at points Y (B, m, k) for f = Σ_c C_c y^{e_c}, coefficients C (B, terms).

        Along a ray f(τy) = Σ_j a_j τ^j (a_j: the degree-j terms at y) and ∂_i f(τy) = Σ_j b_ij τ^{j−1} (b_ij: the
        degree-j terms of ∂_i f at y), so the integral is exact: Σ_{j,l} b_ij a_l l(l − 1) / ((j + l − 2)(j + l − 1)).
        """
        onehot = (self.degrees[:, None] == np.arange(self.degree + 1)[None, :]).astype(np.float64)
        a = np.einsum("bmc,bc,cj->bmj", self.design(Y), C, onehot)
        b = np.einsum("bmic,bc,cj->bmij", self.gradient_design(Y), C, onehot)
        j = np.arange(self.degree + 1)[:, None]  # degree of the gradient's term
        q = np.arange(self.degree + 1)[None, :]  # degree of the value's term
        K = np.zeros((self.degree + 1, self.degree + 1))
        ok = (j >= 1) & (q >= 2)
        K[ok] = (q * (q - 1) / ((j + q - 2) * (j + q - 1)).clip(min=1))[ok]
        return np.einsum("bmij,jl,bml->bmi", b, K, a)


def fit_degree(m: int, k: int, max_degree: int = 6, max_terms: int = 100, points_per_term: int = 3) -> int:
    """The highest degree (2 ≤ p ≤ ``max_degree``) whose monomials number at most m / ``points_per_term`` and at
    most ``max_terms``: a quadratic always, more where the patch has samples to pin it down."""
    p = 2
    while p < max_degree and comb(k + p + 1, p + 1) * points_per_term <= m and comb(k + p + 1, p + 1) <= max_terms:
        p += 1
    return p


def fit(basis: Monomials, Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (B, terms) of Z (B, m) ≈ Σ_c C_c y^{e_c} at points Y (B, m, k), batched QR."""
    M = basis.design(Y)
    if M.shape[-2] < M.shape[-1]:
        raise ValueError(f"a patch of {M.shape[-2]} points cannot pin down {M.shape[-1]} polynomial terms")
    Q, R = np.linalg.qr(M)
    rhs = np.einsum("bmc,bm->bc", Q, Z)
    diag = np.abs(np.diagonal(R, axis1=1, axis2=2))
    R = R + np.eye(R.shape[-1]) * (1e-12 * diag.max(axis=1, keepdims=True))[..., None]  # guard exact rank loss
    return np.linalg.solve(R, rhs[..., None])[..., 0]

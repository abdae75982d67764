"""Point clouds with known curvature for validation (SPEC §8). Surfaces are sampled uniformly by area.

Every sampler returns a :class:`Manifold` whose ``curvature`` is the scalar curvature at each point (for
surfaces R = 2K, twice the Gaussian curvature), and whose row 0 is the marked point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..curvature.slice_geometry import graph_curvature


@dataclass
class Manifold:
    name: str
    X: np.ndarray  # (n, D) points, row 0 marked
    curvature: np.ndarray  # (n,) scalar curvature
    dim: int  # intrinsic dimension
    flat: np.ndarray | None = None  # sample locations u for graphs z = f(u)


def _noisy(X: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    return X + noise * rng.standard_normal(X.shape) if noise else X


def _rejection(rng, n, propose, density, bound):
    out, acc = [], 0
    while acc < n:
        cand = propose(max(2 * (n - acc), 64))
        keep = rng.random(len(cand)) * bound < density(cand)
        out.append(cand[keep])
        acc += int(keep.sum())
    return np.concatenate(out)[:n]


def sphere(n: int, d: int = 2, radius: float = 1.0, noise: float = 0.0, seed: int = 0) -> Manifold:
    """d-sphere of radius ρ in R^{d+1}: scalar curvature d(d−1)/ρ² everywhere; marked point the north pole."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d + 1))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X[0] = 0
    X[0, -1] = 1
    return Manifold(f"sphere{d}", _noisy(radius * X, noise, rng), np.full(n, d * (d - 1) / radius**2), d)


def torus(n: int, R: float = 2.0, r: float = 1.0, noise: float = 0.0, seed: int = 0) -> Manifold:
    """Torus: K = cos θ / (r (R + r cos θ)), θ the angle around the tube; area element ∝ R + r cos θ."""
    rng = np.random.default_rng(seed)
    ang = _rejection(rng, n, lambda m: rng.uniform(0, 2 * np.pi, (m, 2)), lambda a: R + r * np.cos(a[:, 0]), R + r)
    th, ph = ang[:, 0], ang[:, 1]
    X = np.column_stack([(R + r * np.cos(th)) * np.cos(ph), (R + r * np.cos(th)) * np.sin(ph), r * np.sin(th)])
    K = np.cos(th) / (r * (R + r * np.cos(th)))
    return Manifold("torus", _noisy(X, noise, rng), 2 * K, 2)


def ellipsoid(n: int, a: float = 3.0, b: float = 2.0, c: float = 1.0, noise: float = 0.0, seed: int = 0) -> Manifold:
    """x²/a² + y²/b² + z²/c² = 1: K = 1 / (a²b²c² (x²/a⁴ + y²/b⁴ + z²/c⁴)²).

    Area-uniform: a uniform sphere direction s maps to (a s₁, b s₂, c s₃), accepted ∝ the area ratio
    √((b c s₁)² + (a c s₂)² + (a b s₃)²).
    """
    rng = np.random.default_rng(seed)

    def propose(m):
        s = rng.standard_normal((m, 3))
        return s / np.linalg.norm(s, axis=1, keepdims=True)

    area = lambda s: np.sqrt((b * c * s[:, 0]) ** 2 + (a * c * s[:, 1]) ** 2 + (a * b * s[:, 2]) ** 2)
    s = _rejection(rng, n, propose, area, max(b * c, a * c, a * b))
    X = s * np.array([a, b, c])
    q = (X[:, 0] / a**2) ** 2 + (X[:, 1] / b**2) ** 2 + (X[:, 2] / c**2) ** 2
    K = 1.0 / (a**2 * b**2 * c**2 * q**2)
    return Manifold("ellipsoid", _noisy(X, noise, rng), 2 * K, 2)


def hyperboloid(
    n: int, a: float = 1.0, b: float = 1.0, c: float = 1.0, height: float = 2.0, noise: float = 0.0, seed: int = 0
) -> Manifold:
    """One sheet x²/a² + y²/b² − z²/c² = 1, |z| ≤ height: K = −1 / (a²b²c² (x²/a⁴ + y²/b⁴ + z²/c⁴)²).

    Parametrised by (z, φ) with s = √(1 + z²/c²); area element s √(b² cos²φ + a² sin²φ + a²b² (z/(c² s))²).
    """
    rng = np.random.default_rng(seed)

    def area(p):
        z, ph = p[:, 0], p[:, 1]
        s = np.sqrt(1 + z**2 / c**2)
        return s * np.sqrt(b**2 * np.cos(ph) ** 2 + a**2 * np.sin(ph) ** 2 + (a * b * z / (c**2 * s)) ** 2)

    grid = np.stack(np.meshgrid(np.linspace(-height, height, 201), np.linspace(0, 2 * np.pi, 201)), -1).reshape(-1, 2)
    bound = 1.01 * area(grid).max()
    p = _rejection(
        rng, n, lambda m: np.column_stack([rng.uniform(-height, height, m), rng.uniform(0, 2 * np.pi, m)]), area, bound
    )
    z, ph = p[:, 0], p[:, 1]
    s = np.sqrt(1 + z**2 / c**2)
    X = np.column_stack([a * s * np.cos(ph), b * s * np.sin(ph), z])
    q = (X[:, 0] / a**2) ** 2 + (X[:, 1] / b**2) ** 2 + (X[:, 2] / c**2) ** 2
    K = -1.0 / (a**2 * b**2 * c**2 * q**2)
    return Manifold("hyperboloid", _noisy(X, noise, rng), 2 * K, 2)


def quadric_graph(
    n: int, A: np.ndarray, radius: float = 1.0, noise: float = 0.0, seed: int = 0, name: str = "quadric"
) -> Manifold:
    """Graph z = ½ uᵀAu over the d-ball of ``radius``, area-uniform (accepted ∝ √(1 + |Au|²)); row 0 is u = 0.

    Curvature at every point from SPEC §4 (g = Au, Hessian A); at the origin R = (tr A)² − ‖A‖²_F.
    """
    rng = np.random.default_rng(seed)
    A = np.asarray(A, dtype=np.float64)
    d = len(A)

    def propose(m):
        x = rng.standard_normal((m, d))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x * (radius * rng.random(m) ** (1 / d))[:, None]

    W = lambda u: np.sqrt(1 + np.sum((u @ A) ** 2, axis=1))
    bound = float(np.sqrt(1 + (np.abs(np.linalg.eigvalsh(A)).max() * radius) ** 2))
    u = np.vstack([np.zeros((1, d)), _rejection(rng, n - 1, propose, W, bound)])
    z = 0.5 * np.einsum("ni,ij,nj->n", u, A, u)
    R = np.array([graph_curvature(A, A @ ui).scalar for ui in u])
    X = np.column_stack([u, z])
    return Manifold(name, _noisy(X, noise, rng), R, d, flat=u)


def random_quadric(d: int, bowl: bool, rng: np.random.Generator) -> np.ndarray:
    """Random symmetric A with eigenvalues of magnitude in [0.5, 2]: all positive (bowl) or a saddle whose scalar
    curvature at the origin, (tr A)² − ‖A‖²_F, is negative."""
    while True:
        mags = rng.uniform(0.5, 2.0, d)
        signs = np.ones(d) if bowl else rng.choice([-1.0, 1.0], d)
        if not bowl and (signs > 0).all():
            continue
        eig = mags * signs
        if bowl or eig.sum() ** 2 - (eig**2).sum() < 0:
            Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
            return Q @ np.diag(eig) @ Q.T


def sadspheres(kind: str, n: int, d: int, seed: int = 0) -> Manifold:
    """The SadSpheres family (SPEC §8): ``saddle`` z = Σ_j (−1)^j u_j², ``sphere`` (unit d-sphere), ``plane``."""
    if kind == "sphere":
        return sphere(n, d, seed=seed)
    signs = np.array([(-1.0) ** j for j in range(1, d + 1)]) if kind == "saddle" else np.zeros(d)
    return quadric_graph(n, np.diag(2 * signs), radius=1.0, seed=seed, name=f"{kind}{d}")

"""Sample coordinates u ∈ R^k (SPEC §3). Row 0 is always the centre u = 0 (the trained point)."""

from __future__ import annotations

import numpy as np


def _centre_first(points: np.ndarray) -> np.ndarray:
    k = points.shape[1]
    keep = np.any(points != 0, axis=1)  # the centre appears once, as row 0
    return np.vstack([np.zeros((1, k)), points[keep]])


def _unit_sphere(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    x = rng.standard_normal((n, k))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ball(n: int, k: int, radius: float = 1.0, seed: int = 0) -> np.ndarray:
    """Centre + n points uniform in the k-ball of the given radius."""
    _check(n, k, radius)
    rng = np.random.default_rng(seed)
    r = radius * rng.random(n) ** (1.0 / k)
    return _centre_first(_unit_sphere(rng, n, k) * r[:, None])


def shells(radii: list[float], n_per_shell: int, k: int, seed: int = 0) -> np.ndarray:
    """Centre + ``n_per_shell`` points uniform on each sphere of radius r_j (the 2022 paper's design)."""
    if not radii or any(not r > 0 for r in radii):
        raise ValueError(f"shell radii must be positive, got {radii}")
    _check(n_per_shell, k, 1.0)
    rng = np.random.default_rng(seed)
    return _centre_first(np.vstack([r * _unit_sphere(rng, n_per_shell, k) for r in radii]))


def grid(extent: float, m: int, k: int) -> np.ndarray:
    """Centre + the m^k points of linspace(−extent, extent, m) per axis (Li et al.: 51×51 on [−1, 1])."""
    _check(m, k, extent)
    axis = np.linspace(-extent, extent, m)
    mesh = np.stack(np.meshgrid(*([axis] * k), indexing="ij"), axis=-1).reshape(-1, k)
    return _centre_first(mesh)


def make_coordinates(
    scheme: str, k: int, n: int = 200, radius: float = 1.0, seed: int = 0, radii: list[float] | None = None
) -> np.ndarray:
    """Dispatch: ``ball`` (n points), ``shells`` (n per shell on ``radii``), ``grid`` (n per axis)."""
    if scheme == "ball":
        return ball(n, k, radius, seed)
    if scheme == "shells":
        return shells(radii or [radius], n, k, seed)
    if scheme == "grid":
        return grid(radius, n, k)
    raise ValueError(f"coordinate scheme must be ball, shells or grid, got {scheme!r}")


def _check(n: int, k: int, r: float) -> None:
    if n < 1 or k < 1:
        raise ValueError(f"need at least one point and one direction, got n={n}, k={k}")
    if not np.isfinite(r) or r <= 0:
        raise ValueError(f"radius/extent must be positive and finite, got {r}")

"""What every surface figure (static or interactive) reads off a grid sample: the loss as an (m, m) array and the
unit of one slice coordinate, in words."""

from __future__ import annotations

from typing import Any

import numpy as np


def surface_grid(surface) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(axis, axis, losses[m, m]) from a grid sample (row 0 = the centre, also a grid node when m is odd)."""
    pts, losses = surface.coords, surface.losses
    axis = np.unique(pts[1:, 0])
    m = len(axis)
    Z = np.full((m, m), np.nan)
    ix = np.searchsorted(axis, pts[:, 0])
    iy = np.searchsorted(axis, pts[:, 1])
    ok = (ix < m) & (iy < m)
    Z[ix[ok], iy[ok]] = losses[ok]
    return axis, axis, Z


def step_unit(options: dict[str, Any]) -> str:
    """What one unit of a slice coordinate u is, in words (SPEC §2)."""
    kind = options.get("directions", "filter")
    if kind == "filter":
        return "filter-normalised step"
    if kind.startswith("hessian"):
        return "step along a unit Hessian eigenvector"
    return "step along a Gaussian direction"

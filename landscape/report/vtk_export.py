"""ParaView export (issue 23; Li et al.'s users ask for it, loss-landscape #14): the 2-D loss surface as a quad
mesh z = loss and the sampled slice as points, with their curvature fields, in VTK's XML format (``.vtu``,
written by meshio), which ParaView, VisIt and PyVista open as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def surface_mesh(coords: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (m², 3) = (u₁, u₂, loss) of a square grid in row-major order of (u₁, u₂), its quads (cells, 4) and
    the losses in that order. ``coords`` are the grid's points in any order (the sampler puts the centre first)."""
    order = np.lexsort((coords[:, 1], coords[:, 0]))
    m = int(round(np.sqrt(len(coords))))
    if m * m != len(coords):
        raise ValueError(f"the surface has {len(coords)} points, not a square grid")
    c, f = coords[order], np.asarray(losses, dtype=np.float64)[order]
    idx = np.arange(m * m).reshape(m, m)
    quads = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], axis=-1).reshape(-1, 4)
    return np.column_stack([c, f]), quads, f


def write_vtk(result: Any, folder: str | Path) -> list[Path]:
    """``surface.vtu`` (the surface grid as quads, point data ``loss``; NaN losses kept as NaN) and ``samples.vtu``
    (every sample of a 2-direction slice as a vertex at (u₁, u₂, loss), point data ``loss``, ``exact_scalar`` and
    ``dc_scalar``: the exact and diffusion curvature fields where computed, NaN elsewhere)."""
    import meshio

    folder = Path(folder)
    written = []
    if result.surface is not None and result.surface.coords.shape[1] == 2:
        points, quads, f = surface_mesh(result.surface.coords, result.surface.losses)
        mesh = meshio.Mesh(points, [("quad", quads)], point_data={"loss": f})
        meshio.write(folder / "surface.vtu", mesh)
        written.append(folder / "surface.vtu")
    sample = result.sample
    if sample.coords.shape[1] == 2:
        n = len(sample.losses)
        data = {"loss": np.asarray(sample.losses, dtype=np.float64)}
        for key in ("exact_scalar", "dc_scalar"):
            data[key] = np.asarray(sample.arrays.get(key, np.full(n, np.nan)), dtype=np.float64)
        points = np.column_stack([sample.coords, data["loss"]])
        mesh = meshio.Mesh(points, [("vertex", np.arange(n)[:, None])], point_data=data)
        meshio.write(folder / "samples.vtu", mesh)
        written.append(folder / "samples.vtu")
    return written

"""Interactive 3-D loss surface as one standalone HTML file (plotly, its JavaScript embedded: opens offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from .grid import step_unit, surface_grid


def surface_html(result, path: str | Path, title: str = "") -> Path:
    """The 2-D grid surface of ``result`` (an :class:`~landscape.analysis.AnalysisResult` with k = 2) as a rotatable
    3-D surface, log10 loss as height and colour, with the sampled points and the trained point on it."""
    import plotly.graph_objects as go

    if result.surface is None:
        raise ValueError("no 2-D surface in this result (grid_points = 0 or k ≠ 2)")
    x, y, Z = surface_grid(result.surface)
    logz = np.log10(np.clip(Z, 1e-12, None))
    unit = step_unit(result.options)
    sample = result.sample
    ok = sample.finite
    traces = [
        go.Surface(x=x, y=y, z=logz.T, colorscale="Viridis", colorbar={"title": "log10 loss"}, name="loss surface"),
        go.Scatter3d(
            x=sample.coords[ok, 0], y=sample.coords[ok, 1], z=np.log10(np.clip(sample.losses[ok], 1e-12, None)),
            mode="markers", marker={"size": 2, "color": "white"}, name="sampled points",
        ),
        go.Scatter3d(
            x=[0], y=[0], z=[np.log10(max(sample.center_loss, 1e-12))], mode="markers",
            marker={"size": 6, "color": "red", "symbol": "diamond"}, name="trained point",
        ),
    ]  # fmt: skip
    fig = go.Figure(traces)
    fig.update_layout(
        title=title or "loss surface",
        scene={"xaxis_title": f"u₁ ({unit})", "yaxis_title": f"u₂ ({unit})", "zaxis_title": "log10 loss"},
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        legend={"x": 0.0, "y": 0.0, "xanchor": "left", "yanchor": "bottom"},
    )
    html = fig.to_html(include_plotlyjs=True, full_html=True)  # no network needed to open it
    atomic_write_bytes(path, html.encode())
    return Path(path)

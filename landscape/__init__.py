"""landscape: curvature of neural-network loss landscapes (core library; imports no Lightning).

Two ways to the same question, side by side on the same run:

- :mod:`landscape.sampling` — directions D, sample coordinates, the loss at θ* + D u (and paths between
  checkpoints, the automatic radius);
- :mod:`landscape.curvature` — pure numpy: diffusion curvature of point clouds and of sampled loss graphs, the
  exact geometry of a graph from its gradient and Hessian, Ollivier–Ricci;
- :mod:`landscape.hessian` — Hessian-vector products, Lanczos extremes, trace, spectral density, and the exact
  curvature field of a sampled slice;
- :mod:`landscape.analysis` joins them (:func:`analyze_model`); :mod:`landscape.report` draws and writes the
  results; :mod:`landscape.validation` checks the estimators against ground truth.

The names in ``__all__`` are imported on first use, so ``import landscape.curvature`` stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "AnalysisOptions": "landscape.analysis",
    "AnalysisResult": "landscape.analysis",
    "analyze_model": "landscape.analysis",
    "EvalSubset": "landscape.evaluation",
    "evaluation_subset": "landscape.evaluation",
    "as_eval_subset": "landscape.evaluation",
    "load_splits": "landscape.data",
    "make_directions": "landscape.sampling.directions",
    "make_coordinates": "landscape.sampling.coordinates",
    "sample_landscape": "landscape.sampling.sampler",
    "interpolate": "landscape.sampling.paths",
    "trajectory": "landscape.sampling.paths",
    "HessianProblem": "landscape.hessian.spectrum",
    "extreme_eigenvalues": "landscape.hessian.spectrum",
    "estimate_spectrum": "landscape.hessian.krylov_spectrum",
    "hutchinson_trace": "landscape.hessian.reference",
    "hessian_density": "landscape.hessian.density",
    "slice_field": "landscape.hessian.slice_field",
    "graph_curvature": "landscape.curvature.slice_geometry",
    "loss_graph_curvature": "landscape.curvature.loss_graph",
    "diffusion_estimate": "landscape.curvature.slice_curvature",
    "compare_slice": "landscape.curvature.slice_curvature",
    "comparison": "landscape.curvature.diffusion",
    "write_analysis": "landscape.report.writing",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'landscape' has no attribute {name!r}")

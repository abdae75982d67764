"""Curvature references at the trained point from loss values alone (SPEC §5e): what the sampled surface feels,
creases included, at a stated scale. Autograd's Hessian (:mod:`landscape.hessian.slice_field`) is the Hessian
almost everywhere and leaves ReLU and max-pool creases out; these two see them.

- :func:`finite_difference_centre`: central differences at a step (the curvature at that step's scale);
- :func:`gaussian_smoothed_centre`: the gradient and Hessian at u = 0 of the loss smoothed by a Gaussian of width σ
  in the slice coordinates, f_σ(u) = E f(u + σz), by Stein's identity on a Gauss–Hermite grid: the curvature at
  scale σ, the quantity a walk of that reach reads.

Both evaluate the loss in float64 (a float64 copy of the model and inputs; the model itself is not touched): a
second difference at step h carries the loss's rounding divided by h², and in float32 that is the whole value at
the steps a zoomed reading needs (a digits ResNet-8 saddle slice at step 2.3e-4: +0.11 in float64, −1.3 in
float32; at 5e-5: +0.11 against +18).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
from torch import nn

from ..distributed import Comm
from ..evaluation import EvalSubset
from ..inputs import map_inputs
from ..losses import LossFn, cross_entropy
from .directions import Directions
from .sampler import sample_on_ranks

FD_STEP = 0.05  # the finite-difference reference's step at the trained point, as a fraction of the sampling radius
MAX_SMOOTHING_POINTS = 20_736  # Gauss–Hermite grids hold nodes^k points: at most 12^4 (16^2 = 256 by default)


def in_float64(model: nn.Module, data: EvalSubset) -> tuple[nn.Module, EvalSubset]:
    """A float64 copy of ``model`` (floating parameters and buffers) and of ``data``'s floating inputs: loss values
    whose rounding no longer hides second differences at small steps. ``model`` itself is left as it was."""
    x = map_inputs(data.x, lambda t: t.double() if t.is_floating_point() else t)
    return copy.deepcopy(model).double(), dataclasses.replace(data, x=x)


def smoothing_nodes(k: int, most: int = 4096, finest: int = 8) -> int:
    """Gauss–Hermite nodes per direction for an analysis's smoothed truth: ``finest`` (8: within 4 % of 16 nodes on
    the digits MLP and ConvNet slices at σ = 0.1 × radius 0.016–1) unless nodes^k would exceed ``most`` loss
    evaluations (k = 5: 5, k = 6: 4)."""
    return max(n for n in range(2, finest + 1) if n**k <= most)


def finite_difference_centre(
    model: nn.Module,
    data: EvalSubset,
    directions: Directions,
    step: float,
    loss_fn: LossFn = cross_entropy,
    comm: Comm | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(gradient (k,), Hessian (k, k)) of f at u = 0 by central differences of the loss itself, at ``step``:
    2k² + 1 loss evaluations, the same evaluation path as the samples, in float64 (module docstring).

    Autograd's Hessian is the Hessian almost everywhere; a network with ReLU or max-pool units has creases along
    its activation boundaries, and a sampled slice feels their curvature while autograd leaves it out. This is the
    slice's curvature at the scale ``step``, creases included (digits ResNet-8 at its trained point: 3–5 × the
    autograd second derivative, the same from step 0.0025 to 0.025; MLP: within 1–2 %).
    """
    k = directions.k
    pts = [np.zeros(k)]
    for i in range(k):
        for sign in (1.0, -1.0):
            e = np.zeros(k)
            e[i] = sign * step
            pts.append(e)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    for i, j in pairs:
        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            e = np.zeros(k)
            e[i], e[j] = si * step, sj * step
            pts.append(e)
    model, data = in_float64(model, data)
    f = sample_on_ranks(comm or Comm(), model, data, directions, np.array(pts), loss_fn, progress=False).losses
    f0, axis = f[0], f[1 : 1 + 2 * k].reshape(k, 2)
    grad = (axis[:, 0] - axis[:, 1]) / (2 * step)
    hess = np.diag((axis[:, 0] - 2 * f0 + axis[:, 1]) / step**2)
    corners = f[1 + 2 * k :].reshape(-1, 4)
    for (i, j), (pp, pm, mp, mm) in zip(pairs, corners):
        hess[i, j] = hess[j, i] = (pp - pm - mp + mm) / (4 * step * step)
    return grad, hess


def gaussian_smoothed_centre(
    model: nn.Module,
    data: EvalSubset,
    directions: Directions,
    sigma: float,
    *,
    nodes: int = 16,
    loss_fn: LossFn = cross_entropy,
    comm: Comm | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(gradient (k,), Hessian (k, k)) at u = 0 of the slice loss smoothed by a Gaussian of width ``sigma``:
    ∇f_σ(0) = E[f(σz) z]/σ and ∇²f_σ(0) = E[f(σz)(zzᵀ − I)]/σ² (Stein's identity, z ~ N(0, I_k)), the expectations
    on a ``nodes``^k Gauss–Hermite grid (exact for polynomial losses of degree < 2·nodes − 2; a single kink through
    the centre, its worst case, is off by about 0.5/nodes: 2.9 % at 16; at most :data:`MAX_SMOOTHING_POINTS` loss
    evaluations). Creases count with the weight the Gaussian gives them: this is
    the slice's curvature at scale σ (SPEC §5e), which a diffusion walk whose reach has that width reads."""
    k = directions.k
    if not sigma > 0 or nodes < 2:
        raise ValueError(f"need sigma > 0 and nodes ≥ 2, got sigma={sigma}, nodes={nodes}")
    if nodes**k > MAX_SMOOTHING_POINTS:
        raise ValueError(f"{nodes}^{k} grid points exceed {MAX_SMOOTHING_POINTS}; lower nodes")
    z1, w1 = np.polynomial.hermite_e.hermegauss(nodes)  # weight exp(−x²/2): the standard normal up to √(2π)
    w1 = w1 / w1.sum()
    Z = np.stack(np.meshgrid(*([z1] * k), indexing="ij"), axis=-1).reshape(-1, k)
    W = np.prod(np.stack(np.meshgrid(*([w1] * k), indexing="ij"), axis=-1).reshape(-1, k), axis=1)
    pts = np.vstack([np.zeros(k), sigma * Z])  # row 0: the centre, as every sample set starts
    model, data = in_float64(model, data)
    # the float64 copy runs as it is: a fused graph of it would be built and checked again for 64 points
    f = sample_on_ranks(comm or Comm(), model, data, directions, pts, loss_fn, progress=False, fuse=False).losses[1:]
    f = f - f @ W  # a constant changes neither expectation; removing it keeps the sums well conditioned
    grad = (W * f) @ Z / sigma
    hess = np.einsum("n,ni,nj->ij", W * f, Z, Z) / sigma**2  # E[f (zzᵀ − I)] = E[f zzᵀ] once E f = 0
    return grad, 0.5 * (hess + hess.T)

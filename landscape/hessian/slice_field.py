"""Exact derivatives and curvature of the sampled slice at every sample (SPEC §4, §4b).

For f(u) = L(θ* + D u) the gradient g(u) = D ∇L and the k×k Hessian A(u) = D H Dᵀ are derivatives in the k slice
coordinates, so autograd on those k numbers gives both exactly: one backward pass for g and k more (through the
first one's graph) for the rows of A, per point — far cheaper than P-dimensional Hessian-vector products. From
them :func:`landscape.curvature.slice_geometry.field_curvature` gives the scalar, Gauss–Kronecker and mean curvature
of the graph of s·f at every sample: the field a pointwise diffusion estimate must follow. The package takes the
direction matrix D (k, P) itself and imports neither the curvature nor the sampling package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..distributed import Comm
from ..evaluation import EvalSubset, activation_numel, chunk_size
from ..losses import LossFn, cross_entropy
from ..params import FunctionalModel, functional_model, preserved_state, second_order, unflatten


@dataclass
class SliceField:
    """Exact slice derivatives at sample coordinates ``coords`` (n, k): loss, gradient (n, k), Hessian (n, k, k)."""

    coords: np.ndarray
    losses: np.ndarray
    gradients: np.ndarray
    hessians: np.ndarray

    def arrays(self, prefix: str = "exact_") -> dict[str, np.ndarray]:
        return {
            f"{prefix}losses": self.losses,
            f"{prefix}gradients": self.gradients,
            f"{prefix}hessians": self.hessians,
        }


def slice_field(
    model: nn.Module,
    data: EvalSubset,
    directions: torch.Tensor | None,
    coords: np.ndarray,
    loss_fn: LossFn = cross_entropy,
    *,
    batch_size: int | None = None,
    progress: bool = False,
    desc: str = "exact slice field",
) -> SliceField:
    """Loss, gradient and Hessian of f(u) = L(θ* + Dᵀu) in the k slice coordinates at every row of ``coords``,
    ``directions`` the direction matrix D (k, P) (``Directions.matrix``; None, full-space mode, is refused).

    L is the mean loss over ``data`` (batches weighted by size / N) with the model in eval mode (SPEC §1); the
    model is left bitwise as it was. Costs a gradient with its graph and k backward passes through it per point:
    about 4 sample evaluations of the subset on the ConvNet (0.3 s per point on 1,000 MNIST images, 2 threads)
    and 13 on ResNet-20 (8.6 s), 1 to 3 ms per point for a digits MLP. ``batch_size``: inputs per chunk (default
    :func:`landscape.evaluation.chunk_size`, at least 128: on ResNet-20 8.6 s per point at 128, 10.3 at 256; the
    ConvNet is the same at 128 and 256).
    """
    if directions is None:
        raise ValueError("the exact slice field needs explicit directions (not full-space mode)")
    coords = np.asarray(coords, dtype=np.float64)
    k = directions.shape[0]
    if coords.ndim != 2 or coords.shape[1] != k:
        raise ValueError(f"coordinates must have shape (n, {k}), got {coords.shape}")
    if batch_size is None:
        batch_size = chunk_size(activation_numel(model, data.x), smallest=128)
    fm = functional_model(model)
    base = fm.base
    D = directions.to(base[0].device, base[0].dtype)
    on_device = torch.as_tensor(coords).to(base[0].device, base[0].dtype)  # moved once
    with preserved_state(model), torch.enable_grad(), second_order():
        losses, grads, hess = field_on_device(fm, data, D, on_device, loss_fn, batch_size, progress=progress, desc=desc)
    return SliceField(coords, losses.cpu().numpy(), grads.cpu().numpy(), hess.cpu().numpy())


def field_on_device(
    fm: FunctionalModel,
    data: EvalSubset,
    D: torch.Tensor,
    coords: torch.Tensor,
    loss_fn: LossFn,
    batch_size: int,
    *,
    progress: bool = False,
    desc: str = "exact slice field",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`slice_field`'s loop, every number where the weights are (summed in float64) until its caller reads
    them once: a GPU never waits for the host between points. ``coords``: on the weights' device already."""
    home, n, k, n_total = coords.device, len(coords), D.shape[0], len(data)
    losses = torch.empty(n, dtype=torch.float64, device=home)
    grads = torch.empty((n, k), dtype=torch.float64, device=home)
    hess = torch.empty((n, k, k), dtype=torch.float64, device=home)
    for i in tqdm(range(n), desc=desc, disable=not progress):
        u = coords[i].clone().requires_grad_(True)
        params = [b + d for b, d in zip(fm.base, unflatten(u @ D, fm.base))]
        loss_i = torch.zeros((), dtype=torch.float64, device=home)
        g_i, H_i = torch.zeros(k, dtype=torch.float64, device=home), torch.zeros_like(hess[0])
        for x, y in data.batches(batch_size):
            loss = loss_fn(fm(params, x), y) * (len(y) / n_total)
            (g,) = torch.autograd.grad(loss, u, create_graph=True)
            raw = [
                torch.autograd.grad(g[j], u, retain_graph=True, allow_unused=True)[0] if g.requires_grad else None
                for j in range(k)
            ]
            rows = [torch.zeros_like(u) if r is None else r for r in raw]
            loss_i = loss_i + loss.detach().double()
            g_i += g.detach().double()
            H_i += torch.stack(rows).detach().double()
        losses[i], grads[i], hess[i] = loss_i, g_i, 0.5 * (H_i + H_i.T)
    return losses, grads, hess


def field_on_ranks(
    comm: Comm,
    model: nn.Module,
    data: EvalSubset,
    directions: torch.Tensor | None,
    coords: np.ndarray,
    loss_fn: LossFn = cross_entropy,
    *,
    progress: bool = False,
    desc: str = "exact slice field",
) -> SliceField:
    """:func:`slice_field` split over the ranks of ``comm`` by contiguous blocks of rows, gathered on every rank
    (each row's computation is the single-process one); a failure on any rank raises ``RankFailure`` on all."""
    if comm.world_size == 1:
        return slice_field(model, data, directions, coords, loss_fn, progress=progress, desc=desc)
    rows = comm.block(len(coords))
    part = comm.run(
        "the exact slice field",
        lambda: slice_field(
            model, data, directions, coords[rows], loss_fn, progress=progress and comm.is_zero, desc=desc
        ),
    )
    parts = comm.all_gather_object(part)
    return SliceField(
        np.concatenate([p.coords for p in parts]),
        np.concatenate([p.losses for p in parts]),
        np.concatenate([p.gradients for p in parts]),
        np.concatenate([p.hessians for p in parts]),
    )

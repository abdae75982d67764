"""Sharpness of the loss around θ* (issue 24; Keskar et al.'s worst case, the average case, and Andriushchenko et
al.'s adaptive forms), each with its small-radius limit from the Hessian as a consistency check.

- **worst case** S_max(ρ) = max_{‖T⁻¹δ‖₂ ≤ ρ} L(θ* + δ) − L(θ*), by projected normalised-gradient ascent from a
  seeded random point of the sphere (at a minimum the gradient is zero, so the published first step g/‖g‖ has no
  direction); the best value seen is kept, the steps and whether it settled are reported.
- **average case** S_avg(σ) = E_z L(θ* + σ T z) − L(θ*), z ~ N(0, I), by antithetic pairs (±δ cancel every odd term
  of the Taylor series) with the Monte-Carlo standard error.
- T = I (plain) or T = diag|θ*| (adaptive: invariant to the per-filter rescalings that leave the network's function
  unchanged).
- Small-radius limits at a minimum: ρ² λmax(THT)/2 and σ² tr(THT)/2 (SPEC §7 quantities of the rescaled Hessian).

Perturbations are of every trainable parameter (not a slice); the model comes back bitwise as it was.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .evaluation import EvalSubset, activation_numel, chunk_size
from .losses import LossFn, cross_entropy
from .params import flatten, functional_model, preserved_state, unflatten

MAX_STEPS = 10_000  # ascent steps or antithetic pairs: each is one or two passes over the evaluation subset


@dataclass
class Sharpness:
    """One sharpness value: ``kind`` "worst" or "average", at ``radius`` (ρ or σ), plain or ``adaptive``; ``value``
    the loss increase, ``se`` its Monte-Carlo standard error (average case; 0 for the worst case), ``steps`` the
    ascent steps or antithetic pairs, ``settled`` whether the ascent's last steps stopped improving (worst case),
    ``limit`` the small-radius limit from the Hessian when the caller gave the eigenvalue or trace it needs."""

    kind: str
    radius: float
    adaptive: bool
    value: float
    se: float
    steps: int
    settled: bool
    loss_center: float
    limit: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Perturbed:
    """L(θ* + δ) and its gradient in δ for a flat perturbation δ of the trainable parameters (mean over the subset,
    batches weighted by size, eval mode)."""

    def __init__(self, model: nn.Module, data: EvalSubset, loss_fn: LossFn):
        self.data, self.loss_fn = data, loss_fn
        self.fm = functional_model(model)
        self.base = self.fm.base
        self.batch = chunk_size(activation_numel(model, data.x), smallest=128)
        self.theta = flatten(self.base).detach()

    def __call__(self, delta: torch.Tensor, grad: bool = False) -> tuple[float, torch.Tensor | None]:
        d = delta.detach().clone().requires_grad_(grad)
        params = [b + x for b, x in zip(self.base, unflatten(d, self.base))]
        total, n = 0.0, len(self.data)
        with torch.set_grad_enabled(grad):
            for x, y in self.data.batches(self.batch):
                loss = self.loss_fn(self.fm(params, x), y) * (len(y) / n)
                if grad:
                    loss.backward()
                total += float(loss.detach())
        return total, (d.grad if grad else None)


def _scale(theta: torch.Tensor, adaptive: bool) -> torch.Tensor:
    return theta.abs() if adaptive else torch.ones_like(theta)


def _check(radius: float, steps: int) -> None:
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"the sharpness radius must be a positive number, got {radius}")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"need 1 ≤ steps ≤ {MAX_STEPS}, got {steps}")


def worst_case_sharpness(
    model: nn.Module,
    data: EvalSubset,
    radius: float,
    *,
    adaptive: bool = False,
    steps: int = 50,
    loss_fn: LossFn = cross_entropy,
    seed: int = 0,
    lambda_max: float | None = None,
) -> Sharpness:
    """max over ‖T⁻¹δ‖₂ ≤ ``radius`` of L(θ* + δ) − L(θ*) by projected ascent in η = T⁻¹δ: η ← P(η + α ĝ), ĝ the
    normalised gradient T∇L, α = ``radius``/2 decaying to ``radius``/(2·steps); the best value over the ``steps``
    is returned. ``lambda_max`` (of H, or of THT when ``adaptive``) gives ``limit`` = ρ²λmax/2."""
    _check(radius, steps)
    f = _Perturbed(model, data, loss_fn)
    T = _scale(f.theta, adaptive)
    gen = torch.Generator().manual_seed(seed)
    with preserved_state(model):
        l0, _ = f(torch.zeros_like(f.theta))
        eta = torch.randn(f.theta.shape, generator=gen, dtype=torch.float64).to(f.theta)
        eta *= radius / eta.norm()
        history: list[float] = []
        moved = True  # η has changed since its last evaluation
        for i in range(steps):
            value, g = f(T * eta, grad=True)
            history.append(value)
            tg = None if g is None else T * g  # the gradient in η (None: the loss depends on no parameter)
            if tg is None or not torch.isfinite(tg).all() or tg.norm() == 0:
                moved = False
                break
            eta = eta + (radius / 2) * (1 - i / steps) * tg / tg.norm()
            eta *= min(1.0, radius / float(eta.norm()))
        if moved:  # the last step's point
            history.append(f(T * eta)[0])
        best = max(history)
    tail = history[-max(3, len(history) // 5) :]
    settled = bool(max(tail) - min(tail) <= 1e-3 * max(abs(best - l0), 1e-12))
    limit = radius**2 * lambda_max / 2 if lambda_max is not None else float("nan")
    return Sharpness(
        kind="worst", radius=radius, adaptive=adaptive, value=best - l0, se=0.0, steps=len(history) - int(moved),
        settled=settled, loss_center=l0, limit=limit,
    )  # fmt: skip


def average_case_sharpness(
    model: nn.Module,
    data: EvalSubset,
    sigma: float,
    *,
    adaptive: bool = False,
    pairs: int = 50,
    loss_fn: LossFn = cross_entropy,
    seed: int = 0,
    trace: float | None = None,
) -> Sharpness:
    """E L(θ* + σTz) − L(θ*), z ~ N(0, I), from ``pairs`` antithetic pairs ±σTz: the mean of ½(L₊ + L₋) − L₀ and
    its standard error. ``trace`` (of H, or of THT when ``adaptive``) gives ``limit`` = σ² tr/2."""
    _check(sigma, pairs)
    f = _Perturbed(model, data, loss_fn)
    T = _scale(f.theta, adaptive)
    gen = torch.Generator().manual_seed(seed)
    with preserved_state(model):
        l0, _ = f(torch.zeros_like(f.theta))
        rises = []
        for _ in range(pairs):
            delta = sigma * T * torch.randn(f.theta.shape, generator=gen, dtype=torch.float64).to(f.theta)
            rises.append(0.5 * (f(delta)[0] + f(-delta)[0]) - l0)
    r = np.asarray(rises)
    se = float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else float("nan")
    limit = sigma**2 * trace / 2 if trace is not None else float("nan")
    return Sharpness(
        kind="average", radius=sigma, adaptive=adaptive, value=float(r.mean()), se=se, steps=len(r), settled=True,
        loss_center=l0, limit=limit,
    )  # fmt: skip

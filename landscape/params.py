"""Flat views of a model's trainable parameters θ ∈ R^P (SPEC §1), and exact save/restore of model state."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn
from torch.func import functional_call


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The parameters that make up θ: every parameter with ``requires_grad`` (buffers never)."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for _, p in trainable(model))


def flatten(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vec: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        out.append(vec[i : i + t.numel()].view_as(t))
        i += t.numel()
    return out


@contextmanager
def eval_mode(model: nn.Module, grad: bool = True) -> Iterator[None]:
    """``model`` in eval mode (BatchNorm uses running statistics, dropout is off: SPEC §1) with gradients enabled
    (``grad``, for callers under ``torch.no_grad``); every module's own train/eval flag is restored on exit. The
    weights are not copied: use :func:`preserved_state` where they may change."""
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        with torch.set_grad_enabled(grad or torch.is_grad_enabled()):
            yield
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode


@contextmanager
def preserved_state(model: nn.Module, eval_mode: bool = True) -> Iterator[None]:
    """Restore parameters, buffers, ``requires_grad``, ``.grad`` and train/eval flags bitwise on exit.

    With ``eval_mode`` the model is switched to eval for the duration (BatchNorm uses running stats, SPEC §1).
    """
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: (None if p.grad is None else p.grad.detach().clone()) for n, p in model.named_parameters()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    modes = [m.training for m in model.modules()]
    if eval_mode:
        model.eval()
    try:
        yield
    finally:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(params[n])
                p.requires_grad_(flags[n])
                p.grad = grads[n]
            for n, b in model.named_buffers():
                b.copy_(buffers[n])
        for m, mode in zip(model.modules(), modes):
            m.training = mode


@dataclass
class FunctionalModel:
    """``model`` as a function of its trainable parameters (``torch.func.functional_call``): their ``names`` and
    detached ``base`` values θ*, and the ``fixed`` frozen parameters and buffers. The one functional-loss set-up
    every sampler, Hessian and sharpness path shares."""

    model: nn.Module
    names: list[str]
    base: list[torch.Tensor]
    fixed: dict[str, torch.Tensor]

    def __call__(self, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The model's output on ``x`` with the trainable parameters replaced by ``params`` (in ``names`` order)."""
        return functional_call(self.model, {**dict(zip(self.names, params)), **self.fixed}, (x,))


def functional_model(model: nn.Module) -> FunctionalModel:
    named = trainable(model)
    names = [n for n, _ in named]
    fixed = {n: t.detach() for n, t in model.named_parameters() if n not in names}
    fixed.update(dict(model.named_buffers()))
    return FunctionalModel(model, names, [p.detach() for _, p in named], fixed)

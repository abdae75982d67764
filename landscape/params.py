"""Flat views of a model's trainable parameters θ ∈ R^P (SPEC §1), and exact save/restore of model state."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn
from torch.func import functional_call

from .inputs import as_call


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
def second_order() -> Iterator[None]:
    """Attention differentiated twice, right: ``scaled_dot_product_attention`` through PyTorch's math kernel,
    whose backward pass is itself differentiable (the CPU flash kernel's is not: "derivative for
    ..._flash_attention_for_cpu_backward is not implemented", nor has it forward-mode derivatives), and the
    inference fast path of ``nn.TransformerEncoderLayer``/``nn.MultiheadAttention`` off (under ``torch.func``
    transforms it is taken and its derivatives are wrong: a dense Hessian 1.5 % off the finite differences of the
    gradient on a one-layer encoder). The same function to float rounding; every computation that differentiates
    twice (Hessian-vector products, the slice field, dense Hessians) runs in it."""
    mha = getattr(torch.backends, "mha", None)
    fast = mha.get_fastpath_enabled() if mha is not None else None
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3 has no kernel choice
        sdpa_kernel = None  # type: ignore[assignment]
    try:
        if mha is not None:
            mha.set_fastpath_enabled(False)
        if sdpa_kernel is None:
            yield
        else:
            with sdpa_kernel(SDPBackend.MATH):
                yield
    finally:
        if mha is not None:
            mha.set_fastpath_enabled(fast)


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

    def __call__(self, params: list[torch.Tensor], x: Any) -> Any:
        """The model's output on ``x`` (:mod:`landscape.inputs`: a tensor, tuple or dict) with the trainable
        parameters replaced by ``params`` (in ``names`` order)."""
        args, kwargs = as_call(x)
        return functional_call(self.model, {**dict(zip(self.names, params)), **self.fixed}, args, kwargs)


def functional_model(model: nn.Module) -> FunctionalModel:
    named = trainable(model)
    names = [n for n, _ in named]
    fixed = {n: t.detach() for n, t in model.named_parameters() if n not in names}
    fixed.update(dict(model.named_buffers()))
    return FunctionalModel(model, names, [p.detach() for _, p in named], fixed)

"""The analysed objective (SPEC §1, §7): the mean loss over the evaluation subset, optionally plus the L2
weight-decay term λ/2·‖θ‖² over the trainable parameters, so that the landscape and the Hessian are those of the
objective the model was trained on (its Hessian is the loss's plus exactly λI).

:func:`with_weight_decay` wraps the model so that its forward pass also returns the term, computed from the
parameters the pass runs with: every path (weights written in place, ``functional_call`` with substituted
parameters, ``vmap`` over samples, double back-propagation) adds the same λ/2·‖θ‖² at the same θ, once per
evaluation (each batch adds it with the batch's weight size / N, and the weights sum to 1).
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import nn

from .losses import LossFn, output_logits


class Penalised:
    """A model's outputs (``inner``) and the weight-decay term at the parameters that produced them."""

    def __init__(self, inner: Any, penalty: torch.Tensor):
        self.inner, self.penalty = inner, penalty

    @property
    def logits(self) -> torch.Tensor:
        return output_logits(self.inner)


class WithWeightDecay(nn.Module):
    """``model`` whose outputs carry λ/2·‖θ‖² over the parameters trainable when it was wrapped (read by name
    during the pass, so substituted parameters count). Its parameters are ``model``'s own (names prefixed
    ``model.``); ``parameter_groups`` maps the inner model's blocks to them."""

    def __init__(self, model: nn.Module, weight_decay: float):
        super().__init__()
        self.model = model
        self.weight_decay = float(weight_decay)
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]

    def forward(self, *args: Any, **kwargs: Any) -> Penalised:
        out = self.model(*args, **kwargs)
        params = dict(self.model.named_parameters())
        squares = cast(torch.Tensor, sum((params[n] * params[n]).sum() for n in self._names))
        return Penalised(out, 0.5 * self.weight_decay * squares)

    def parameter_groups(self) -> dict[str, list[str]]:
        from .hessian.blocks import module_groups

        fn = getattr(self.model, "parameter_groups", None)
        inner = fn() if callable(fn) else module_groups(self.model)
        return {block: [f"model.{p}" for p in prefixes] for block, prefixes in inner.items()}


def with_weight_decay(model: nn.Module, loss_fn: LossFn, weight_decay: float) -> tuple[nn.Module, LossFn]:
    """(model, loss) of the objective loss + λ/2·‖θ‖²; the inputs themselves where λ = 0. ``ValueError`` for a
    negative or non-finite λ."""
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight decay must be finite and ≥ 0, got {weight_decay}")
    if weight_decay == 0:
        return model, loss_fn

    def penalised_loss(out: Penalised, targets: torch.Tensor) -> torch.Tensor:
        return loss_fn(out.inner, targets) + out.penalty

    return WithWeightDecay(model, weight_decay), penalised_loss

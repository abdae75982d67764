"""Loss functions for landscape evaluation (mean over the batch, SPEC §1)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]
"""A loss: (the model's outputs, targets) → the mean loss over the batch, a scalar tensor (SPEC §1, §7). The one
type every module takes; :func:`cross_entropy` is the one default. Outputs are what the model returns: a tensor,
or an object with ``.logits``/``.loss`` (Hugging Face style), or a dict with those keys (:func:`output_logits`)."""


def output_logits(out: Any) -> torch.Tensor:
    """The logits in a model's outputs: the tensor itself, ``out.logits``, ``out["logits"]``, or a tuple's first
    element. ``TypeError`` naming what was returned where none applies."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping) and "logits" in out:
        return out["logits"]
    if isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"the model returned {type(out).__name__}: no logits in it; pass a loss_fn that reads it")


def cross_entropy(logits: Any, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy with hard labels, as logsumexp − target logit, over the logits of the model's outputs
    (:func:`output_logits`); logits of shape (..., C) with targets (...,): sequences' tokens count alike.

    Equal to ``torch.nn.functional.cross_entropy`` (to float rounding) and about 3× faster on (N, 10) logits on
    CPU, also under ``vmap`` (``log_softmax`` over a short last dimension is slow there).
    """
    logits = output_logits(logits)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (torch.logsumexp(logits, dim=-1) - picked).mean()


def model_loss(outputs: Any, targets: torch.Tensor) -> torch.Tensor:
    """The loss the model computed itself (``outputs.loss`` or ``outputs["loss"]``: a Hugging Face model called
    with ``labels`` in its keyword batch), which must be the batch mean; ``targets`` are not used."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else getattr(outputs, "loss", None)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"the model returned {type(outputs).__name__} without a .loss; pass labels in the batch")
    return loss

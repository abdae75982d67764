"""Loss functions for landscape evaluation (mean over the batch, SPEC §1)."""

from __future__ import annotations

from typing import Callable

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A loss: (outputs, targets) → the mean loss over the batch, a scalar tensor (SPEC §1, §7). The one type every
module takes; :func:`cross_entropy` is the one default."""


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy with hard labels, as logsumexp − target logit.

    Equal to ``torch.nn.functional.cross_entropy`` (to float rounding) and about 3× faster on (N, 10) logits on
    CPU, also under ``vmap`` (``log_softmax`` over a short last dimension is slow there).
    """
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (torch.logsumexp(logits, dim=-1) - picked).mean()

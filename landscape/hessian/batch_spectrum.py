"""λmax and λmin of the mini-batch Hessians (issue 24, item 4): the "max eigenvalue spectrum" of Park & Kim's
ViT study. The evaluation subset is cut into consecutive batches of ``batch_size``; each batch's loss (its mean, SPEC
§7) gets its own Lanczos run at both ends. The distribution over batches shows how much a single batch's curvature
scatters around the full subset's."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch import nn

from ..distributed import Comm
from ..evaluation import EvalSubset
from ..inputs import rows as take_rows
from ..losses import LossFn, cross_entropy
from .spectrum import HessianProblem, extreme_eigenvalues

MAX_BATCHES = 1000  # each batch is its own Lanczos run


@dataclass
class BatchSpectrum:
    """Per batch (in subset order): ``lambda_max``, ``lambda_min`` of its Hessian; ``n_hvp`` the products spent."""

    batch_size: int
    lambda_max: np.ndarray
    lambda_min: np.ndarray
    n_hvp: int

    def summary(self) -> dict[str, Any]:
        lm = self.lambda_max
        return {"batches": len(lm), "batch_size": self.batch_size, "lambda_max_mean": float(lm.mean()),
                "lambda_max_std": float(lm.std(ddof=1)) if len(lm) > 1 else float("nan"),
                "lambda_max_min": float(lm.min()), "lambda_max_max": float(lm.max()), "n_hvp": self.n_hvp}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[dict[str, Any]]:
        """One row per batch (``batch, lambda_max, lambda_min``), for a CSV."""
        return [{"batch": i, "lambda_max": float(a), "lambda_min": float(b)}
                for i, (a, b) in enumerate(zip(self.lambda_max, self.lambda_min))]  # fmt: skip


def batch_spectrum(
    model: nn.Module,
    data: EvalSubset,
    *,
    batch_size: int,
    batches: int | None = None,
    loss_fn: LossFn = cross_entropy,
    tol: float = 1e-6,
    seed: int = 0,
    comm: Comm | None = None,
) -> BatchSpectrum:
    """λmax and λmin of each of the first ``batches`` consecutive batches of ``batch_size`` examples (all full
    batches by default; a last partial batch is left out so that every value is of the same batch size). With a
    multi-rank ``comm`` each batch's products are split over the ranks."""
    full = len(data) // batch_size if batch_size >= 1 else 0
    count = full if batches is None else batches
    if batch_size < 1 or not 1 <= count <= min(full, MAX_BATCHES):
        raise ValueError(
            f"need batch_size ≥ 1 and 1 ≤ batches ≤ min({full} full batches, {MAX_BATCHES}); "
            f"got batch_size={batch_size}, batches={batches}"
        )
    top, bottom, hvps = [], [], 0
    for b in range(count):
        rows = slice(b * batch_size, (b + 1) * batch_size)
        part = EvalSubset(take_rows(data.x, rows), data.y[rows], data.indices[rows], f"{data.source}[batch {b}]")
        lmax, lmin, n = extreme_eigenvalues(HessianProblem(model, part, loss_fn=loss_fn, comm=comm), tol=tol, seed=seed)
        top.append(lmax)
        bottom.append(lmin)
        hvps += n
    return BatchSpectrum(batch_size, np.asarray(top), np.asarray(bottom), hvps)

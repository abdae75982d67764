"""PyHessian 0.1 with its pitfalls guarded (SPEC §7).

- ``p.grad`` is cleared (set to ``None``) before PyHessian builds its graph, else the Hessian doubles;
- parameters, gradients, buffers and train/eval modes are restored afterwards (PyHessian leaves eval mode on);
- its random vectors are drawn inside ``torch.random.fork_rng`` so the caller's RNG stream is untouched;
- tolerance defaults to 1e-6 (its 1e-3 default gives ~4 % error on close eigenvalues);
- it returns the largest |λ|, not the largest λ: use :func:`landscape.hessian.spectrum.extreme_eigenvalues`
  for λmax/λmin.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..evaluation import EvalSubset
from ..losses import LossFn, cross_entropy
from ..params import preserved_state


def _build(model: nn.Module, data: EvalSubset, loss_fn: LossFn, batch_size: int):
    from pyhessian import hessian

    for p in model.parameters():
        p.grad = None
    if len(data) <= batch_size:
        return hessian(model, loss_fn, data=(data.x, data.y), cuda=False)
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=batch_size, shuffle=False)
    return hessian(model, loss_fn, dataloader=loader, cuda=False)


def pyhessian_top_eigenvalues(
    model: nn.Module,
    data: EvalSubset,
    k: int = 1,
    loss_fn: LossFn = cross_entropy,
    tol: float = 1e-6,
    max_iter: int = 1000,
    batch_size: int = 4096,
    seed: int = 0,
) -> list[float]:
    """The k eigenvalues of largest magnitude by PyHessian's deflated power iteration."""
    with preserved_state(model), torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        eigs, _ = _build(model, data, loss_fn, batch_size).eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
    return [float(e) for e in eigs]


def pyhessian_trace(
    model: nn.Module,
    data: EvalSubset,
    loss_fn: LossFn = cross_entropy,
    tol: float = 1e-6,
    max_iter: int = 200,
    batch_size: int = 4096,
    seed: int = 0,
) -> tuple[float, float]:
    """PyHessian's Hutchinson trace: (mean, standard error) over the Rademacher samples it drew."""
    with preserved_state(model), torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        vals = np.asarray(_build(model, data, loss_fn, batch_size).trace(maxIter=max_iter, tol=tol))
    se = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else float("nan")
    return float(vals.mean()), se

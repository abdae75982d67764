"""Reference implementations the estimators are tested and benchmarked against (SPEC §7): the dense Hessian
(``torch.func.hessian``, models up to a few thousand parameters), PyHessian's power iteration and plain Hutchinson
trace, and PyHessian 0.1 itself with its pitfalls guarded. The production path is :mod:`landscape.hessian.
krylov_spectrum` (one shared Lanczos budget); ARPACK's extremes are :func:`landscape.hessian.spectrum.
extreme_eigenvalues`.

PyHessian 0.1's pitfalls, guarded here:

- ``p.grad`` is cleared (set to ``None``) before PyHessian builds its graph, else the Hessian doubles;
- parameters, gradients, buffers and train/eval modes are restored afterwards (PyHessian leaves eval mode on);
- its random vectors are drawn inside ``torch.random.fork_rng`` so the caller's RNG stream is untouched;
- tolerance defaults to 1e-6 (its 1e-3 default gives ~4 % error on close eigenvalues);
- it returns the largest |λ|, not the largest λ: use :func:`landscape.hessian.spectrum.extreme_eigenvalues`
  for λmax/λmin.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..evaluation import EvalSubset
from ..losses import LossFn, cross_entropy
from ..params import flatten, functional_model, preserved_state, second_order, unflatten
from .spectrum import HessianProblem


def power_iteration(
    problem: HessianProblem,
    tol: float = 1e-6,
    max_iter: int = 10_000,
    shift: float = 0.0,
    seed: int = 0,
    on_step: Callable[[int, float], bool] | None = None,
) -> tuple[float, int]:
    """PyHessian's method (largest |λ| of H − shift·I, relative-change stopping rule), as a baseline.

    ``on_step(i, λ_i)`` sees every iterate's estimate of λ (shift added back); returning True stops the iteration
    (benchmarks count the steps to a known answer with it)."""
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(problem.num_params, generator=gen, dtype=torch.float64)
    v /= v.norm()
    lam, start = None, problem.n_hvp
    for _ in range(max_iter):
        hv = problem.hvp(v).double() - shift * v
        new = float(hv @ v)
        v = hv / hv.norm()
        if on_step is not None and on_step(problem.n_hvp - start, new + shift):
            lam = new
            break
        if lam is not None and abs(new - lam) / (abs(lam) + 1e-6) < tol:
            lam = new
            break
        lam = new
    if lam is None:
        raise ValueError(f"power iteration needs max_iter ≥ 1, got {max_iter}")
    return float(lam) + shift, problem.n_hvp - start


def hutchinson_trace(problem: HessianProblem, n_samples: int = 100, seed: int = 0) -> tuple[float, float]:
    """tr H ≈ mean of vᵀHv over Rademacher v; returns (estimate, standard error)."""
    gen = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(n_samples):
        v = torch.randint(0, 2, (problem.num_params,), generator=gen).double() * 2 - 1
        vals.append(float(problem.hvp(v).double() @ v))
    arr = np.asarray(vals)
    se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return float(arr.mean()), se


def exact_hessian(
    model: nn.Module,
    data: EvalSubset,
    loss_fn: LossFn = cross_entropy,
    batch_size: int = 1024,
    *,
    vectorized: bool = True,
) -> np.ndarray:
    """Dense P×P Hessian via ``torch.func.hessian`` (reference for tests; models up to a few thousand params).
    ``vectorized=False`` builds it column by column, H e_i = jvp(grad f)(e_i), without ``vmap``: on a one-layer
    ``nn.TransformerEncoderLayer`` the vectorized Hessian (jacfwd or jacrev over jacrev) is 1.5–3 % off while each
    column alone matches the finite differences of the gradient to 1e-10 (a batching rule of this torch is wrong)."""
    fm = functional_model(model)

    def f(theta: torch.Tensor, x: Any, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(fm(unflatten(theta, fm.base), x), y)

    theta = flatten(fm.base).clone()
    H = torch.zeros(len(theta), len(theta), dtype=torch.float64)
    with preserved_state(model), torch.enable_grad(), second_order():
        for x, y in data.batches(batch_size):
            w = len(y) / len(data)
            if vectorized:
                H += torch.func.hessian(f)(theta, x, y).double() * w
                continue
            grad = torch.func.grad(lambda t, x=x, y=y: f(t, x, y))
            for i in range(len(theta)):
                e = torch.zeros_like(theta)
                e[i] = 1
                H[:, i] += torch.func.jvp(grad, (theta,), (e,))[1].double() * w
    H = (H + H.T) / 2
    return H.numpy()


def _build(model: nn.Module, data: EvalSubset, loss_fn: LossFn, batch_size: int):
    from pyhessian import hessian

    if not isinstance(data.x, torch.Tensor):
        raise TypeError("PyHessian takes one input tensor per batch; several or keyword inputs are not supported")
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

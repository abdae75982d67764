"""Exact-reference fixtures shared by the tests: a quadratic "model" with a chosen spectrum, tiny nets."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from landscape.data import load_digits_splits
from landscape.evaluation import EvalSubset, evaluation_subset


class Quadratic(nn.Module):
    """L(θ) = ½ (θ − c)ᵀ Q (θ − c), returned once per input so batch means are exact."""

    def __init__(self, Q: np.ndarray, c: np.ndarray, theta: np.ndarray):
        super().__init__()
        self.register_buffer("Q", torch.as_tensor(Q, dtype=torch.float64))
        self.register_buffer("c", torch.as_tensor(c, dtype=torch.float64))
        self.theta = nn.Parameter(torch.as_tensor(theta, dtype=torch.float64).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.theta - self.c
        return (0.5 * v @ self.Q @ v).expand(x.shape[0])


def quadratic_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.mean()


def spectrum_matrix(eigs: np.ndarray, seed: int = 0) -> np.ndarray:
    U, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    return U @ np.diag(eigs) @ U.T


def dummy_data(n: int = 10) -> EvalSubset:
    return EvalSubset(torch.zeros(n, 1, dtype=torch.float64), torch.zeros(n, dtype=torch.long), np.arange(n), "dummy")


def digits_subset(n: int = 300, double: bool = True) -> EvalSubset:
    s = load_digits_splits()
    sub = evaluation_subset(s.train_x, s.train_y, n, seed=0, source="digits:train")
    if double:
        sub.x = sub.x.double()
    return sub


def small_mlp(seed: int = 0, double: bool = True) -> nn.Module:
    """64-16-10 MLP (1,210 parameters), briefly trained so the Hessian is not the one at initialisation."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))
    if double:
        model = model.double()
    data = digits_subset(300, double)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.x), data.y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model


def direct_losses(model: nn.Module, data: EvalSubset, directions, coords: np.ndarray) -> list[float]:
    """The reference for every sampling path: θ* + D u written into the model, which is evaluated as it is (current
    train/eval modes), then θ* restored."""
    from landscape.params import trainable, unflatten
    from landscape.sampling.sampler import evaluate

    params = [p for _, p in trainable(model)]
    base = [p.detach().clone() for p in params]
    out = []
    try:
        for row in coords:
            with torch.no_grad():
                for p, b, dl in zip(params, base, unflatten(directions.displacement(torch.as_tensor(row)), base)):
                    p.copy_(b + dl)
            out.append(evaluate(model, data)[0])
    finally:
        with torch.no_grad():
            for p, b in zip(params, base):
                p.copy_(b)
    return out

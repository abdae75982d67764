"""Loss along paths between checkpoints: the straight line between two (linear mode connectivity) and the PCA
plane of a run's checkpoints with the optimisation path drawn on the loss surface (Li et al. 2018 §7).

Both evaluate the loss exactly as the sampler does (eval mode, the fixed evaluation subset, SPEC §1).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..evaluation import EvalSubset
from ..files import atomic_write_csv, atomic_write_json
from ..losses import LossFn, cross_entropy
from ..params import flatten, trainable
from .coordinates import grid
from .directions import Directions
from .sample import LandscapeSample
from .sampler import evaluate_on_device, sample_landscape

MAX_LINE_POINTS = 10_000  # points on an interpolation line: each is a full evaluation of the subset


def _check_same_architecture(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ValueError("the two models have different architectures (state_dict keys or shapes differ)")


@dataclass
class Interpolation:
    """Loss and accuracy at θ(α) = (1 − α) θ_A + α θ_B (parameters and floating-point buffers alike)."""

    alphas: np.ndarray
    losses: np.ndarray
    accuracies: np.ndarray
    names: tuple[str, str] = ("A", "B")

    def _endpoint(self, alpha: float) -> int:
        return int(np.flatnonzero(self.alphas == alpha)[0])

    @property
    def barrier(self) -> float:
        """max over α ∈ [0, 1] of L(θ(α)) − [(1 − α) L(θ_A) + α L(θ_B)] (Frankle et al. 2020): > 0 is a bump
        above the straight line between the end losses, ≤ 0 means the two minima are linearly connected."""
        inside = (self.alphas >= 0) & (self.alphas <= 1)
        a = self.alphas[inside]
        line = (1 - a) * self.losses[self._endpoint(0.0)] + a * self.losses[self._endpoint(1.0)]
        return float(np.max(self.losses[inside] - line))

    @property
    def barrier_alpha(self) -> float:
        inside = (self.alphas >= 0) & (self.alphas <= 1)
        a = self.alphas[inside]
        line = (1 - a) * self.losses[self._endpoint(0.0)] + a * self.losses[self._endpoint(1.0)]
        return float(a[np.argmax(self.losses[inside] - line)])

    def save(self, folder: str | Path) -> None:
        """``interpolation.csv`` (one row per α), then ``interpolation.json`` (barrier, names) last."""
        folder = Path(folder)
        rows = [{"alpha": a, "loss": v, "accuracy": c} for a, v, c in zip(self.alphas, self.losses, self.accuracies)]
        atomic_write_csv(folder / "interpolation.csv", rows, ["alpha", "loss", "accuracy"])
        atomic_write_json(
            folder / "interpolation.json",
            {"from": self.names[0], "to": self.names[1], "barrier": self.barrier, "barrier_alpha": self.barrier_alpha,
             "loss_from": float(self.losses[self._endpoint(0.0)]), "loss_to": float(self.losses[self._endpoint(1.0)])},
        )  # fmt: skip


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    data: EvalSubset,
    loss_fn: LossFn = cross_entropy,
    n_points: int = 25,
    extend: float = 0.0,
    names: tuple[str, str] = ("A", "B"),
) -> Interpolation:
    """Evaluate the straight line from ``model_a`` (α = 0) to ``model_b`` (α = 1) at ``n_points`` evenly spaced α
    in [0, 1] (exact endpoints: 1·θ + 0·θ' is θ bitwise), plus points beyond both ends out to ``extend``. Integer
    buffers (BatchNorm's batch counter) are taken from A. Neither model is changed."""
    _check_same_architecture(model_a, model_b)
    if not 2 <= n_points <= MAX_LINE_POINTS or not (0 <= extend <= 10):
        raise ValueError(f"need 2 ≤ n_points ≤ {MAX_LINE_POINTS} and 0 ≤ extend ≤ 10, got {n_points} and {extend}")
    inner = np.linspace(0.0, 1.0, n_points)
    step = inner[1] - inner[0]
    outer = np.arange(step, extend + 1e-12, step) if extend else np.array([])
    alphas = np.concatenate([-outer[::-1], inner, 1.0 + outer])
    sa, sb = model_a.state_dict(), model_b.state_dict()
    work = copy.deepcopy(model_a).eval()
    points = []  # each point's (loss, accuracy) stays where the model is until the one read below
    for alpha in alphas:
        mixed = {k: (1 - alpha) * v + alpha * sb[k] if v.is_floating_point() else v for k, v in sa.items()}
        work.load_state_dict(mixed)
        points.append(torch.stack(evaluate_on_device(work, data, loss_fn)))
    both = torch.stack(points).cpu().numpy()
    losses, accs = both[:, 0].copy(), both[:, 1].copy()
    return Interpolation(alphas, losses, accs, names)


@dataclass
class Trajectory:
    """Checkpoints θ_1..θ_T projected on the plane of the first two principal components of θ_t − θ_T (θ_T, the
    last, at the origin), with the loss surface over that plane."""

    coords: np.ndarray  # (T, 2) position of each checkpoint in the plane (parameter-space units)
    explained: np.ndarray  # (2,) fraction of the path's variance each component holds
    residual: np.ndarray  # (T,) distance of each checkpoint from the plane
    directions: Directions  # the two unit principal directions (rows)
    names: list[str]
    surface: LandscapeSample | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        rows = [
            {"checkpoint": n, "pc1": c[0], "pc2": c[1], "distance_from_plane": r}
            for n, c, r in zip(self.names, self.coords, self.residual)
        ]
        atomic_write_csv(folder / "trajectory.csv", rows, ["checkpoint", "pc1", "pc2", "distance_from_plane"])
        if self.surface is not None:
            self.surface.save(folder / "trajectory_surface")
        atomic_write_json(
            folder / "trajectory.json",
            {"explained_variance": self.explained.tolist(), "names": self.names, **self.meta},
        )


def pca_plane(vectors: list[torch.Tensor]) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """(D (2, P) unit rows, coords (T, 2), explained (2,), residual (T,)) for flat parameter vectors, centred on
    the last one. Needs two linearly independent differences (three checkpoints or more)."""
    if len(vectors) < 3:
        raise ValueError(f"a trajectory needs at least 3 checkpoints, got {len(vectors)}")
    last = vectors[-1].to(torch.float64)
    X = torch.stack([v.to(torch.float64) - last for v in vectors])
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    if len(S) < 2 or S[1] <= 1e-12 * S[0]:
        raise ValueError("the checkpoints lie on one line in parameter space: no plane to draw")
    D = Vh[:2]
    coords = X @ D.T
    residual = torch.linalg.norm(X - coords @ D, dim=1)
    explained = (S[:2] ** 2 / (S**2).sum()).numpy()
    return D.to(torch.float32), coords.numpy(), explained, residual.numpy()


def trajectory(
    models: list[nn.Module],
    data: EvalSubset,
    loss_fn: LossFn = cross_entropy,
    grid_points: int = 21,
    margin: float = 0.25,
    names: list[str] | None = None,
) -> Trajectory:
    """PCA plane of the checkpoints' parameters and the loss over a square of it that holds the whole path (with
    ``margin``); the surface uses the last model's buffers (BatchNorm statistics). The models are not changed."""
    for m in models[1:]:
        _check_same_architecture(models[0], m)
    vectors = [flatten([p.detach() for _, p in trainable(m)]) for m in models]
    D, coords, explained, residual = pca_plane(vectors)
    directions = Directions("pca", 2, int(D.shape[1]), D, {"explained": explained.tolist()})
    surface = None
    if grid_points:
        extent = float(np.abs(coords).max()) * (1 + margin) or 1.0
        surface = sample_landscape(models[-1], data, directions, grid(extent, grid_points, 2), loss_fn, progress=False)
    names = names or [f"checkpoint {i}" for i in range(len(models))]
    return Trajectory(coords, explained, residual, directions, names, surface)

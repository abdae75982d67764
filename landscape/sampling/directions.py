"""Directions D in parameter space (SPEC §2): gaussian, filter-normalised, Hessian eigenvectors, full space.

Directions are stored as a (k, P) tensor over the trainable parameters (see :mod:`landscape.params`); full-space
mode (D = I, k = P) is represented without a matrix. Every random draw uses its own seeded generator, never the
global RNG stream.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..params import flatten, num_params, trainable

KINDS = ("gaussian", "filter", "hessian", "full")


@dataclass
class Directions:
    """D as rows ``matrix`` (k, P), or ``None`` in full-space mode; ``meta`` is enough to redraw it."""

    kind: str
    k: int
    num_params: int
    matrix: torch.Tensor | None
    meta: dict[str, Any] = field(default_factory=dict)

    def displacement(self, u: torch.Tensor) -> torch.Tensor:
        """Dᵀu for coordinates ``u`` of shape (k,) or (m, k) → (P,) or (m, P).

        Accumulated elementwise, Σ_j u_j d_j in the order j = 1..k: every row is the same sequence of float32
        operations whatever the batch it sits in, so a sample's weights (and loss) do not depend on how the samples
        were split into chunks or shards (a matrix product takes different kernel paths for different row counts
        and rounds differently, by one ulp on AVX-512 machines)."""
        u = u.to(torch.float32)
        if self.matrix is None:
            return u
        m = self.matrix.to(u.device)
        rows = u.reshape(-1, self.k)
        out = rows[:, :1] * m[0]
        for j in range(1, self.k):
            out = out + rows[:, j : j + 1] * m[j]
        return out.reshape(*u.shape[:-1], -1)

    def to(self, device: torch.device | str) -> "Directions":
        """The same directions with the matrix on ``device`` (itself where it is there already)."""
        return self if self.matrix is None else replace(self, matrix=self.matrix.to(device))

    def describe(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "matrix"}
        return d


def gaussian(model: nn.Module, k: int, seed: int) -> torch.Tensor:
    """k directions with i.i.d. N(0, 1) entries (SPEC §2 gaussian)."""
    gen = torch.Generator().manual_seed(int(seed))
    P = num_params(model)
    return torch.randn(k, P, generator=gen, dtype=torch.float32)


def filter_normalize(model: nn.Module, d: torch.Tensor, bias_mode: str = "zero") -> torch.Tensor:
    """Li et al. 2018 filter normalisation of one flat direction ``d`` (SPEC §2 filter).

    For every tensor w with ≥ 2 dims, each slice d[i] along dim 0 is rescaled to ‖w[i]‖ / (‖d[i]‖ + 1e-10).
    1-D tensors (biases, BatchNorm γ/β): ``zero`` (the paper's "ignore biasbn") or ``copy`` (d = w).
    """
    if bias_mode not in ("zero", "copy"):
        raise ValueError(f"bias_mode must be 'zero' or 'copy', got {bias_mode!r}")
    out, i = [], 0
    for _, p in trainable(model):
        w = p.detach().to("cpu", torch.float32)  # directions live on the CPU, whatever the model's device
        di = d[i : i + w.numel()].view_as(w).clone()
        i += w.numel()
        if w.dim() <= 1:
            di = w.clone() if bias_mode == "copy" else torch.zeros_like(w)
        else:
            wn = w.reshape(w.shape[0], -1).norm(dim=1)
            dn = di.reshape(w.shape[0], -1).norm(dim=1)
            di = di * (wn / (dn + 1e-10)).view(-1, *([1] * (w.dim() - 1)))
        out.append(di)
    return flatten(out)


def orthonormalize(matrix: torch.Tensor) -> torch.Tensor:
    """Gram–Schmidt (via QR, in float64) of the rows of a (k, P) matrix."""
    q, r = torch.linalg.qr(matrix.to(torch.float64).T)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # keep each row's orientation
    return q.T.to(torch.float32).contiguous()


def make_directions(
    model: nn.Module,
    kind: str = "filter",
    k: int = 2,
    seed: int = 0,
    bias_mode: str = "zero",
    orthogonal: bool = False,
    eigenvectors: torch.Tensor | np.ndarray | None = None,
) -> Directions:
    """Build D. ``hessian`` takes ``eigenvectors`` (k, P), e.g. from
    :func:`landscape.hessian.spectrum.lanczos_eigen`."""
    P = num_params(model)
    meta: dict[str, Any] = {"seed": int(seed), "bias_mode": bias_mode, "orthogonal": bool(orthogonal)}
    if kind not in KINDS:
        raise ValueError(f"direction kind must be one of {KINDS}, got {kind!r}")
    if kind == "full":
        meta["warning"] = f"full-space mode: the manifold has dimension {P}; any sample count is far too few"
        return Directions("full", P, P, None, meta)
    if k < 1:
        raise ValueError(f"number of directions must be ≥ 1, got {k}")
    if kind == "hessian":
        if eigenvectors is None:
            raise ValueError("hessian directions need eigenvectors (compute them with landscape.hessian.spectrum)")
        m = torch.as_tensor(np.asarray(eigenvectors), dtype=torch.float32).reshape(-1, P)[:k]
        m = m / m.norm(dim=1, keepdim=True)
        meta.pop("seed")
    else:
        m = gaussian(model, k, seed)
        if kind == "filter":
            m = torch.stack([filter_normalize(model, row, bias_mode) for row in m])
    if orthogonal:
        m = orthonormalize(m)
    return Directions(kind, int(m.shape[0]), P, m.contiguous(), meta)

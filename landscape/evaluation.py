"""The evaluation data of SPEC §1, in one place: :class:`EvalSubset` (the fixed subset every loss evaluation and
Hessian computation uses), :func:`evaluation_subset` (a seeded subset of tensors), :func:`as_eval_subset` (one
converter for a subset, ``(x, y)`` tensors or a DataLoader of pair or dict batches) and the one default size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from .params import preserved_state

CHUNK_BYTES = 16 << 20  # float32 activations one evaluation or back-propagation chunk holds


def chunk_size(per_input: int, target_bytes: int = CHUNK_BYTES, smallest: int = 64) -> int:
    """Inputs per chunk of a pass over the subset: the power of two nearest ``target_bytes`` of float32
    activations, in ``smallest``..4096 — cache-sized chunks are fastest. Measured, 1 thread:

    - HVPs on 1,000 MNIST images (reused graph, best of 3; benchmarks/hvp_speed.py): MLP-40 3.6 ms at 1,000
      inputs vs 5.3 at 256, ConvNet 209 ms at 256 vs 322 at 1,000, ResNet-8 2.3 s at 64 vs 4.7 at 1,000;
    - sampling on 2,000 (benchmarks/conv_sampling.py, speed against the naive batch-128 loop): ConvNet 2.03× at
      128, 1.90× at 256, 1.21× at 2,000; ResNet-20 0.99× at 128, 0.86× at 256, 0.42× at 2,000; the MLP 10.7× at
      2,000, 6.4× at 256 (on 10,000 images with its first-layer shortcut: 637 samples/s in one batch, 559 at 4,096)
      — hence ``smallest`` = 128 for sampling conv nets, and one large batch for fully connected ones.
    """
    return int(np.clip(2 ** round(np.log2(target_bytes / (4 * max(per_input, 1)))), smallest, 4096))


def activation_numel(model: nn.Module, example: torch.Tensor) -> int:
    """Numbers of activations one input produces (sum over leaf modules' outputs): sizes the chunks."""
    total = [0]

    def hook(_m, _i, out):
        if isinstance(out, torch.Tensor):
            total[0] += out[0].numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with preserved_state(model), torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
    return max(1, total[0] + example[0].numel())


@dataclass
class EvalSubset:
    """The fixed evaluation subset of SPEC §1: n examples, fixed order, never augmented."""

    x: torch.Tensor
    y: torch.Tensor
    indices: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self), batch_size):
            yield self.x[start : start + batch_size], self.y[start : start + batch_size]

    def to(self, device: torch.device | str) -> "EvalSubset":
        """The same subset with its tensors on ``device``."""
        return EvalSubset(self.x.to(device), self.y.to(device), self.indices, self.source)

    def head(self, n: int | None) -> "EvalSubset":
        """The first ``n`` examples (all if None or n ≥ len)."""
        if n is None or n >= len(self):
            return self
        return EvalSubset(self.x[:n], self.y[:n], self.indices[:n], self.source)

    def block(self, rank: int, world_size: int) -> "EvalSubset":
        """Rank ``rank``'s contiguous block of the examples (:func:`landscape.distributed.block_indices`)."""
        from .distributed import block_indices

        idx = block_indices(len(self), rank, world_size)
        lo, hi = (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 0)
        return EvalSubset(self.x[lo:hi], self.y[lo:hi], self.indices[lo:hi], self.source)


DEFAULT_N_EVAL = 1000  # the evaluation subset's size everywhere (analyze, compare, demo, the callback)


def _batch_xy(batch: object, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of one batch: a pair/sequence (x, y, ...) or a dict with image/input/x and label/target/y."""
    if isinstance(batch, dict):
        xs = [batch[k] for k in ("x", "input", "inputs", "image", "images", "pixel_values") if k in batch]
        ys = [batch[k] for k in ("y", "target", "targets", "label", "labels") if k in batch]
        if not xs or not ys:
            raise ValueError(
                f"{where}: dict batches need an input key (x/input/image/images) and a target key (y/target/label/"
                f"labels); got keys {sorted(batch)}"
            )
        return xs[0], ys[0]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(f"{where}: batches must be (inputs, targets) pairs or dicts, got {type(batch).__name__}")


def as_eval_subset(data: object, n: int | None = DEFAULT_N_EVAL, source: str = "given") -> EvalSubset:
    """One converter for every kind of evaluation data: an :class:`EvalSubset`, an ``(x, y)`` pair of tensors, or a
    DataLoader/iterable of batches (pairs or dicts; its first ``n`` examples in its own order — use one without
    shuffling or augmentation). ``n`` caps the size in every case (None: all). ``ValueError`` names what is wrong."""
    if isinstance(data, EvalSubset):
        return data.head(n)
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
    elif hasattr(data, "__iter__") and not isinstance(data, (torch.Tensor, str, bytes)):
        xs, ys, have = [], [], 0
        for batch in data:
            x, y = _batch_xy(batch, source)
            xs.append(x)
            ys.append(y)
            have += len(y)
            if n is not None and have >= n:
                break
        if not xs:
            raise ValueError(f"{source}: the evaluation data is empty")
        x, y = torch.cat(xs), torch.cat(ys)
    else:
        raise ValueError(f"{source}: evaluation data must be an EvalSubset, (x, y) tensors or a DataLoader")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"{source}: {len(x)} inputs but {len(y)} targets; pass matching, non-empty tensors")
    m = len(y) if n is None else min(n, len(y))
    return EvalSubset(x[:m].contiguous(), y[:m].contiguous(), np.arange(m), source)


def evaluation_subset(
    x: torch.Tensor, y: torch.Tensor, n: int | None = None, seed: int = 0, source: str = ""
) -> EvalSubset:
    """Deterministic subset of ``n`` examples (all if ``None``): the first ``n`` of a seeded permutation, sorted."""
    total = len(y)
    if n is None or n >= total:
        idx = np.arange(total)
    else:
        if n < 1:
            raise ValueError(f"evaluation subset size must be ≥ 1, got {n}")
        idx = np.sort(np.random.default_rng(seed).permutation(total)[:n])
    t = torch.from_numpy(idx)
    return EvalSubset(x[t].contiguous(), y[t].contiguous(), idx, source)

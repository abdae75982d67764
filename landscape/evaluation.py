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

from .inputs import Inputs, call_model, check_inputs, concat, map_inputs, numel_per_example, rows
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


def activation_numel(model: nn.Module, example: Inputs) -> int:
    """Numbers of activations one input produces (sum over leaf modules' outputs): sizes the chunks. ``example``:
    inputs of one or more examples (:mod:`landscape.inputs`); the first is used."""
    total = [0]

    def hook(_m, _i, out):
        if isinstance(out, torch.Tensor):
            total[0] += out[0].numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with preserved_state(model), torch.no_grad():
            call_model(model, rows(example, slice(0, 1)))
    finally:
        for h in handles:
            h.remove()
    return max(1, total[0] + numel_per_example(example))


@dataclass
class EvalSubset:
    """The fixed evaluation subset of SPEC §1: n examples, fixed order, never augmented. ``x``: the model's inputs,
    a tensor, a tuple of tensors (several inputs) or a dict of tensors (keyword batches; :mod:`landscape.inputs`)."""

    x: Inputs
    y: torch.Tensor
    indices: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.y)

    def __post_init__(self) -> None:
        n = check_inputs(self.x, self.source or "the evaluation subset")
        if n != len(self.y):
            raise ValueError(f"{self.source or 'the evaluation subset'}: {n} inputs but {len(self.y)} targets")

    def batches(self, batch_size: int) -> Iterator[tuple[Inputs, torch.Tensor]]:
        for start in range(0, len(self), batch_size):
            yield rows(self.x, slice(start, start + batch_size)), self.y[start : start + batch_size]

    def to(self, device: torch.device | str) -> "EvalSubset":
        """The same subset with its tensors on ``device``."""
        return EvalSubset(map_inputs(self.x, lambda t: t.to(device)), self.y.to(device), self.indices, self.source)

    def head(self, n: int | None) -> "EvalSubset":
        """The first ``n`` examples (all if None or n ≥ len)."""
        if n is None or n >= len(self):
            return self
        return EvalSubset(rows(self.x, slice(0, n)), self.y[:n], self.indices[:n], self.source)

    def block(self, rank: int, world_size: int) -> "EvalSubset":
        """Rank ``rank``'s contiguous block of the examples (:func:`landscape.distributed.block_indices`)."""
        from .distributed import block_indices

        idx = block_indices(len(self), rank, world_size)
        lo, hi = (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 0)
        return EvalSubset(rows(self.x, slice(lo, hi)), self.y[lo:hi], self.indices[lo:hi], self.source)


DEFAULT_N_EVAL = 1000  # the evaluation subset's size everywhere (analyze, compare, demo, the callback)


INPUT_KEYS = ("x", "input", "inputs", "image", "images", "pixel_values")
TARGET_KEYS = ("y", "target", "targets", "label", "labels")


def _batch_xy(batch: object, where: str) -> tuple[Inputs, torch.Tensor]:
    """(inputs, targets) of one batch: a pair/sequence (x, y, ...) or a dict with a target key (y/target/label/
    labels) and an input key (x/input/image/...); a dict without an input key is a keyword batch: every key but
    the target's goes to the model as a keyword (``model(**inputs)``: input_ids, attention_mask, ...)."""
    if isinstance(batch, dict):
        ys = [k for k in TARGET_KEYS if k in batch]
        if not ys:
            raise ValueError(f"{where}: dict batches need a target key (y/target/label/labels); got {sorted(batch)}")
        xs = [batch[k] for k in INPUT_KEYS if k in batch]
        keywords = {k: v for k, v in batch.items() if k != ys[0]}
        if not xs and not keywords:
            raise ValueError(f"{where}: the dict batches hold targets only; got keys {sorted(batch)}")
        return (xs[0] if xs else keywords), batch[ys[0]]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(f"{where}: batches must be (inputs, targets) pairs or dicts, got {type(batch).__name__}")


def as_eval_subset(data: object, n: int | None = DEFAULT_N_EVAL, source: str = "given") -> EvalSubset:
    """One converter for every kind of evaluation data: an :class:`EvalSubset`, an ``(x, y)`` pair of tensors, or a
    DataLoader/iterable of batches (pairs or dicts; its first ``n`` examples in its own order — use one without
    shuffling or augmentation). ``n`` caps the size in every case (None: all). ``ValueError`` names what is wrong."""
    if isinstance(data, EvalSubset):
        return data.head(n)
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], torch.Tensor):
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
        x, y = concat(xs), torch.cat(ys)
    else:
        raise ValueError(f"{source}: evaluation data must be an EvalSubset, (x, y) tensors or a DataLoader")
    n_x = check_inputs(x, source)
    if n_x != len(y) or len(y) == 0:
        raise ValueError(f"{source}: {n_x} inputs but {len(y)} targets; pass matching, non-empty tensors")
    m = len(y) if n is None else min(n, len(y))
    x = map_inputs(rows(x, slice(0, m)), lambda t: t.contiguous())
    return EvalSubset(x, y[:m].contiguous(), np.arange(m), source)


def evaluation_subset(x: Inputs, y: torch.Tensor, n: int | None = None, seed: int = 0, source: str = "") -> EvalSubset:
    """Deterministic subset of ``n`` examples (all if ``None``): the first ``n`` of a seeded permutation, sorted."""
    total = len(y)
    if n is None or n >= total:
        idx = np.arange(total)
    else:
        if n < 1:
            raise ValueError(f"evaluation subset size must be ≥ 1, got {n}")
        idx = np.sort(np.random.default_rng(seed).permutation(total)[:n])
    t = torch.from_numpy(idx)
    return EvalSubset(map_inputs(rows(x, t), lambda a: a.contiguous()), y[t].contiguous(), idx, source)

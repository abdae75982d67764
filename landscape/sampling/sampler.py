"""Loss (and accuracy) at θ* + D u for many coordinates u (SPEC §1–3).

Two exact strategies, picked automatically:
- ``inplace``: write θ* + Dᵀu into the parameters and run the model on the evaluation subset in large batches;
  the original tensors are copied back bitwise afterwards. Best for large evaluation batches and convolutions;
  nets with 2-D convolutions run through a fused, channels-last inference graph of the same function
  (:mod:`landscape.sampling.inference`).
- ``vmap``: ``torch.func.functional_call`` + ``vmap`` over a chunk of samples, the model untouched. Best for small
  evaluation batches (≤ a few hundred inputs) of fully connected nets.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.func import vmap
from tqdm.auto import tqdm

from ..distributed import Comm, block_indices
from ..evaluation import EvalSubset, activation_numel, chunk_size
from ..inputs import call_model
from ..losses import LossFn, cross_entropy, output_logits
from ..params import functional_model, num_params, preserved_state, trainable, unflatten
from .directions import Directions
from .first_layer import first_parametrised_module, try_first_layer_cache
from .inference import InferenceGraph, try_inference_graph
from .sample import LandscapeSample

STRATEGIES = ("auto", "inplace", "vmap")
PRECISIONS = ("float32", "bfloat16")
# bfloat16 sampling is kept only where, on the call's first rows (the centre and its first neighbours, the same
# rows on every rank), its losses stay within this share of those rows' float32 spread; else the call runs float32
BF16_TOL = 0.02
BF16_CHECK_ROWS = 16
MEMORY_BUDGET = 512 * 2**20  # bytes of activations one chunk may hold
FUSE_MIN_ROWS = 32  # a call with fewer sample rows (all shards together) evaluates the model as it is, unless the
# analysis's cache already holds the graph: building one costs 3 evaluations of DenseNet-121 on 16 MNIST images
# (1.0 s against 0.36 s per evaluation; fused 0.29 s), and 10 of the ConvNet's


@dataclass
class SamplingCache:
    """What one analysis's sampling calls share (samples, surface, zooms): the fused inference graph of each model
    and weights layout, built and checked once."""

    graphs: dict[tuple, tuple[InferenceGraph | None, str]] = field(default_factory=dict)


def _layout(model: nn.Module, x: torch.Tensor) -> tuple:
    """The model (by identity, within one analysis), its parameters' and buffers' shapes and types, the inputs'."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return (id(model), tuple((n, tuple(t.shape), t.dtype, t.device) for n, t in tensors),
            tuple(x.shape[1:]), x.dtype, x.device)  # fmt: skip


def _fused_graph(model, data: EvalSubset, rows: int | None, cache: SamplingCache | None):
    """The fused graph for this call: the cached one of this layout; else, for calls of at least
    :data:`FUSE_MIN_ROWS` rows, built, checked and cached. The rule depends on the call alone (the total row count,
    the same on every shard), so a run gives the same numbers whatever its timing."""
    x = data.x
    assert isinstance(x, torch.Tensor)  # _inplace fuses single-tensor inputs only
    key = _layout(model, x)
    if cache is not None and key in cache.graphs:
        return cache.graphs[key]
    if rows is not None and rows < FUSE_MIN_ROWS:
        return None, f"{rows} rows: fewer than {FUSE_MIN_ROWS} do not pay for building the graph"
    graph, why = try_inference_graph(model, x[:8])
    if cache is not None:
        cache.graphs[key] = (graph, why)
    return graph, why


def _accuracy(out: Any, y: torch.Tensor) -> torch.Tensor:
    """Share of argmax hits where the outputs hold logits of shape (*y.shape, C) for class targets; else NaN."""
    try:
        logits = output_logits(out)
    except TypeError:
        logits = None
    if logits is not None and not y.is_floating_point() and logits.shape[:-1] == y.shape and logits.dim() >= 2:
        return (logits.argmax(-1) == y).float().mean()
    return torch.full((), float("nan"), device=y.device)


def evaluate_on_device(
    model: Callable[..., Any],
    data: EvalSubset,
    loss_fn: LossFn = cross_entropy,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy over the whole subset (batches weighted by size), current parameters, no grad, as
    float64 scalars where the data are: summed there, with no host sync (the caller reads them when it needs to).
    ``model``: the module, or any callable that computes its forward pass (an :class:`InferenceGraph`)."""
    n = len(data)
    bs = batch_size or n
    loss = acc = None
    with torch.no_grad():
        for x, y in data.batches(bs):
            out = call_model(model, x)
            part = torch.as_tensor(loss_fn(out, y)).double() * len(y) / n, _accuracy(out, y).double() * len(y) / n
            loss, acc = part if loss is None or acc is None else (loss + part[0], acc + part[1])
    if loss is None or acc is None:  # an empty subset
        zero = torch.zeros((), dtype=torch.float64, device=data.y.device)
        return zero, zero
    return loss, acc


def evaluate(
    model: Callable[..., Any],
    data: EvalSubset,
    loss_fn: LossFn = cross_entropy,
    batch_size: int | None = None,
) -> tuple[float, float]:
    """:func:`evaluate_on_device` read as floats (one host sync)."""
    loss, acc = evaluate_on_device(model, data, loss_fn, batch_size)
    return float(loss), float(acc)


@contextmanager
def lower_precision(model: nn.Module, on: bool = True) -> Iterator[None]:
    """The forward passes inside run under bfloat16 autocast on the model's device (losses reduced in float32)."""
    first = next(iter(model.parameters()), None)
    device = first.device.type if first is not None else "cpu"
    with torch.autocast(device_type=device, dtype=torch.bfloat16) if on else nullcontext():
        yield


def bf16_pairs(model: nn.Module, data: EvalSubset, directions: Directions, coords: np.ndarray,
               loss_fn: LossFn, batch_size: int | None) -> np.ndarray:  # fmt: skip
    """(L_float32, L_bf16) at each row of ``coords``: the in-place loop run twice on the model as it is (no fused
    graph, no first-layer terms), once in each precision, at the same batch size; (n, 2)."""
    bs = batch_size or chunk_size(activation_numel(model, data.x), smallest=128)
    quiet = tqdm(disable=True)

    def losses(low: bool) -> torch.Tensor:
        with preserved_state(model):  # each run starts from θ* (the loop leaves its last point's weights)
            run = _inplace(model, data, directions, coords, loss_fn, bs, quiet, False, False, False, {}, None, 0, low)
        return run[0]

    return torch.stack([losses(False), losses(True)], dim=1).cpu().numpy()


def bf16_deviation(pairs: np.ndarray) -> float:
    """max |L_bf16 − L_float32| over the checked rows' ``pairs`` (:func:`bf16_pairs`), as a share of their float32
    spread (max − min; ∞ where the spread is 0 and the two differ, or either is not finite)."""
    ref, low = pairs[:, 0], pairs[:, 1]
    gap, spread = float(np.max(np.abs(low - ref))), float(np.ptp(ref))
    if not (np.isfinite(gap) and np.isfinite(spread)):
        return float("inf")
    return gap / spread if spread > 0 else (0.0 if gap == 0 else float("inf"))


def has_conv2d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def choose_strategy(model: nn.Module, n_eval: int) -> str:
    """vmap wins for small evaluation batches of non-convolutional nets (2 CPU cores, see benchmarks/)."""
    has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
    return "vmap" if n_eval <= 256 and not has_conv else "inplace"


def _inplace(  # noqa: PLR0913
    model,
    data,
    directions,
    coords,
    loss_fn,
    batch_size,
    bar,
    shortcut,
    channels_last,
    fuse,
    meta,
    graphs,
    rows,
    low: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    params = [p for _, p in trainable(model)]
    base = [p.detach().clone() for p in params]
    if not isinstance(data.x, torch.Tensor):  # several or keyword inputs: the model's own forward pass
        shortcut = channels_last = fuse = False
    if channels_last and data.x.dim() == 4:
        data = EvalSubset(data.x.contiguous(memory_format=torch.channels_last), data.y, data.indices, data.source)
    graph, meta["inference"] = None, "off"
    if fuse:
        graph, meta["inference"] = _fused_graph(model, data, rows if fuse == "auto" else None, graphs)
        first = first_parametrised_module(model, data.x) if shortcut and graph is not None else None
        if first is not None and graph.folds_batchnorm_after(first):
            shortcut = False  # conv → BatchNorm first (ResNets): one fused convolution beats the precomputed terms
        elif first is not None:
            graph.hand_back(first)  # its output comes from the precomputed terms
        if graph is not None:
            meta["fused"] = graph.describe()
    cache = (
        try_first_layer_cache(model, data, directions, batch_size, MEMORY_BUDGET, channels_last) if shortcut else None
    )
    meta["first_layer"] = "evaluated" if cache is None else "precomputed terms"
    forward = model if graph is None else graph
    # everything the loop reads lives where the weights are: the coordinates and directions are moved there once
    # (in float32, the precision the displacement computes in) and the losses stay there until the end, so that a
    # GPU never waits for the host between samples
    home = base[0].device if base else data.y.device
    dirs, on_device = directions.to(home), torch.as_tensor(coords, dtype=torch.float32).to(home)
    losses: list[torch.Tensor] = []
    accs: list[torch.Tensor] = []
    try:
        for u, row in zip(coords, on_device):
            delta = unflatten(dirs.displacement(row), base)
            with torch.no_grad():
                for p, b, d in zip(params, base, delta):
                    p.copy_(b + d.to(b.device, b.dtype))
            if graph is not None:
                graph.refresh()
            if cache is not None:
                cache.activate(torch.as_tensor(u))  # its coefficients are host scalars (no device read)
            with lower_precision(model, low):
                loss, acc = evaluate_on_device(forward, data, loss_fn, batch_size)
            losses.append(loss)
            accs.append(acc)
            bar.update(1)
    finally:
        if cache is not None:
            cache.close()
    empty = torch.empty(0, dtype=torch.float64, device=data.y.device)
    return (torch.stack(losses), torch.stack(accs)) if losses else (empty, empty)


def _vmap(  # noqa: PLR0913
    model, data, directions, coords, loss_fn, batch_size, chunk, bar, low: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    fm = functional_model(model)

    def one(delta_flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
        deltas = unflatten(delta_flat, fm.base)
        out = fm([b + d.to(b.device, b.dtype) for b, d in zip(fm.base, deltas)], x)
        return loss_fn(out, y), _accuracy(out, y)

    batched = vmap(one, in_dims=(0, None, None))
    n_eval = len(data)
    home = fm.base[0].device if fm.base else data.y.device
    # moved once, in float32 (the precision the displacement computes in; see _inplace)
    dirs, on_device = directions.to(home), torch.as_tensor(coords, dtype=torch.float32).to(home)
    losses = torch.empty(len(coords), dtype=torch.float64, device=data.y.device)
    accs = torch.empty_like(losses)
    with torch.no_grad():
        for start in range(0, len(coords), chunk):
            u = on_device[start : start + chunk]
            delta = dirs.displacement(u)
            lo = torch.zeros(len(u), dtype=torch.float64, device=data.y.device)
            ac = torch.zeros_like(lo)
            for x, y in data.batches(batch_size):
                with lower_precision(model, low):  # the forward passes only: the displacement stays exact
                    bl, ba = batched(delta, x, y)
                lo += bl.double() * len(y) / n_eval
                ac += ba.double() * len(y) / n_eval
            losses[start : start + len(u)], accs[start : start + len(u)] = lo, ac
            bar.update(len(u))
    return losses, accs


def sample_landscape(  # noqa: PLR0913
    model: nn.Module,
    data: EvalSubset,
    directions: Directions,
    coords: np.ndarray,
    loss_fn: LossFn = cross_entropy,
    strategy: str = "auto",
    batch_size: int | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    shortcut: bool = True,
    desc: str = "sampling",
    channels_last: bool | None = None,
    fuse: bool | str = "auto",
    cache: SamplingCache | None = None,
    precision: str = "float32",
    checked_deviation: float | None = None,
) -> LandscapeSample:
    """Evaluate f(u) = L(θ* + D u) at every row of ``coords`` (row 0 must be the centre).

    ``shard=(rank, world_size)`` evaluates only that block of rows (:func:`landscape.distributed.block_indices`).
    ``shortcut`` lets the in-place strategy reuse precomputed first-layer terms (exact, see
    :mod:`landscape.sampling.first_layer`). ``batch_size``: inputs per forward pass (in-place default:
    cache-sized chunks, :func:`landscape.evaluation.chunk_size`, for nets with 2-D convolutions; else up to
    512 MB). ``channels_last``: run 2-D convolutions on channels-last activations (default: when the model has
    one; the in-place strategy; the inference graph below always runs channels-last). ``fuse``: evaluate nets
    with 2-D convolutions through an :class:`~landscape.sampling.inference.InferenceGraph` (BatchNorm folded,
    ReLU and residual additions fused; checked against the model's forward pass, which is used where it does not
    apply; ``"auto"``: not built for calls of fewer than :data:`FUSE_MIN_ROWS` rows, ``True``: for any call;
    the in-place strategy;
    ``meta["inference"]`` says which ran). ``cache``: a :class:`SamplingCache` shared by one analysis's calls,
    so that the graph is built and checked once per model. ``precision="bfloat16"``: forward passes under
    bfloat16 autocast (the model as it is: no fused graph, no first-layer terms), kept only where the first rows'
    losses agree with float32 within :data:`BF16_TOL` of their spread (:func:`bf16_deviation`), else float32;
    ``meta["precision"]`` says which ran and ``meta["bf16_deviation"]`` what was measured (``checked_deviation``:
    measured already, by :func:`sample_on_ranks` over all ranks, so that every rank takes the same decision).
    ``desc`` labels the progress bar (the model and the phase). The model's parameters, buffers,
    ``requires_grad`` flags, gradients and train/eval modes are restored bitwise.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != directions.k:
        raise ValueError(f"coordinates must have shape (n, {directions.k}), got {coords.shape}")
    if not np.all(coords[0] == 0):
        raise ValueError("coordinate row 0 must be the centre u = 0 (the trained point)")
    if not np.all(np.isfinite(coords)):
        raise ValueError("coordinates contain NaN or infinity")
    if fuse not in (True, False, "auto"):
        raise ValueError(f"fuse must be True, False or 'auto', got {fuse!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if directions.num_params != num_params(model):
        raise ValueError(f"directions span {directions.num_params} parameters, the model has a different count")
    idx = block_indices(len(coords), *(shard or (0, 1)))
    chosen = choose_strategy(model, len(data)) if strategy == "auto" else strategy
    per_input = activation_numel(model, data.x)
    meta: dict = {}
    if precision == "bfloat16":
        if checked_deviation is None:  # one process: it checks the rows itself
            pairs = bf16_pairs(model, data, directions, coords[:BF16_CHECK_ROWS], loss_fn, batch_size)
            checked_deviation = bf16_deviation(pairs)
        meta["bf16_deviation"] = checked_deviation
        precision = "bfloat16" if meta["bf16_deviation"] <= BF16_TOL else "float32"
        shortcut, fuse = (False, False) if precision == "bfloat16" else (shortcut, fuse)
    meta["precision"] = precision
    with preserved_state(model), tqdm(total=len(idx), desc=desc, disable=not progress) as bar:
        if chosen == "inplace":
            conv = has_conv2d(model)
            # convolutions run fastest on cache-sized chunks; fully connected nets on the largest batch that fits
            largest = max(1, min(len(data), MEMORY_BUDGET // (4 * per_input)))
            bs = batch_size or (chunk_size(per_input, smallest=128) if conv else largest)
            cl = conv if channels_last is None else channels_last
            on_device = _inplace(
                model,
                data,
                directions,
                coords[idx],
                loss_fn,
                bs,
                bar,
                shortcut,
                cl,
                fuse if conv else False,
                meta,
                cache,
                len(coords),
                precision == "bfloat16",
            )
        else:
            bs = batch_size or len(data)
            chunk = max(1, min(len(idx), MEMORY_BUDGET // (4 * per_input * bs)))
            low = precision == "bfloat16"
            on_device = _vmap(model, data, directions, coords[idx], loss_fn, bs, chunk, bar, low)
    losses, accs = (t.cpu().numpy() for t in on_device)  # the one host read of the call
    return LandscapeSample(
        coords=coords[idx],
        losses=losses,
        accuracies=accs,
        indices=idx,
        directions=directions.describe(),
        n_eval=len(data),
        meta={
            "strategy": chosen,
            "batch_size": bs,
            "eval_source": data.source,
            "n_total": len(coords),
            "shard": list(shard) if shard else [0, 1],
            **meta,
        },
        direction_matrix=None if directions.matrix is None else directions.matrix.numpy(),
    )


def sample_on_ranks(
    comm: Comm,
    model: nn.Module,
    data: EvalSubset,
    directions: Directions,
    coords: np.ndarray,
    loss_fn: LossFn = cross_entropy,
    **kwargs,
) -> LandscapeSample:
    """:func:`sample_landscape` split over the ranks of ``comm``: each evaluates its block of rows, then the blocks
    are gathered so that every rank returns the full sample, identical to a single-process run (same rows, same
    per-row computation). A failure on any rank raises :class:`landscape.distributed.RankFailure` on all of them.
    """
    if comm.world_size == 1:
        return sample_landscape(model, data, directions, coords, loss_fn, **kwargs)
    kwargs["progress"] = kwargs.get("progress", True) and comm.is_zero
    shard = (comm.rank, comm.world_size)
    if kwargs.get("precision") == "bfloat16":  # each rank checks its share of the rows; all read the same pairs
        rows = np.asarray(coords, dtype=np.float64)[block_indices(min(BF16_CHECK_ROWS, len(coords)), *shard)]
        mine = comm.run(
            "the bfloat16 check", lambda: bf16_pairs(model, data, directions, rows, loss_fn, kwargs.get("batch_size"))
        )
        kwargs["checked_deviation"] = bf16_deviation(np.concatenate(comm.all_gather_object(mine)))
    part = comm.run(
        "sampling", lambda: sample_landscape(model, data, directions, coords, loss_fn, shard=shard, **kwargs)
    )
    matrix, part.direction_matrix = part.direction_matrix, None  # the same on every rank: not sent
    full = LandscapeSample.concatenate(comm.all_gather_object(part))
    full.direction_matrix = matrix
    return full

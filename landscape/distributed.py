"""Splitting landscape work across processes with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

No Lightning here: a Lightning ``Trainer``/``Fabric`` (or ``torchrun``) creates the process group and this module
only uses it. Two kinds of work are split:

- sampling: each rank evaluates a contiguous block of the sample rows and the blocks are gathered, so every rank
  holds the full :class:`~landscape.sampling.sample.LandscapeSample` a single process would have produced;
- Hessian-vector products: each rank back-propagates over its block of the evaluation subset with weights
  ``len(batch) / N`` (N = the whole subset), and the blocks' products are summed, so H v is the single-process one
  up to floating-point rounding (see :class:`landscape.hessian.spectrum.HessianProblem`).

Failure contract: work between two collectives runs inside :meth:`Comm.run` (or folds an error flag into the
collective itself, for HVPs). If any rank raises, *every* rank raises :class:`RankFailure` naming the failed
rank(s), the phase and the error, instead of the healthy ranks waiting forever in the next collective.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import numpy as np
import torch
import torch.distributed as dist

T = TypeVar("T")


class RankFailure(RuntimeError):
    """Raised on every rank when one or more ranks failed during a distributed phase."""

    def __init__(self, phase: str, failures: list[tuple[int, str]], world_size: int):
        self.phase, self.failures = phase, failures
        who = ", ".join(f"rank {r}: {msg}" for r, msg in failures)
        super().__init__(
            f"{len(failures)} of {world_size} ranks failed during {phase} ({who}); the run was stopped on every rank "
            "and no result was written for it. Fix the failing rank's problem and rerun"
        )


def block_indices(n: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """Contiguous block ``rank`` of ``world_size`` over ``range(n)``; the blocks of ranks 0..W-1 concatenate to it.
    The one per-rank split of sample rows, exact-field rows and the Hessian's evaluation subset."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad shard rank {rank} of world size {world_size}")
    return np.array_split(np.arange(n), world_size)[rank]


class Comm:
    """A single process: every collective is the identity. Subclassed by :class:`ProcessGroupComm`."""

    rank = 0
    world_size = 1

    @property
    def is_zero(self) -> bool:
        return self.rank == 0

    def all_gather_object(self, obj: Any) -> list[Any]:
        return [obj]

    def sum_and_share(self, t: torch.Tensor) -> torch.Tensor:
        """Σ over ranks, bitwise identical on every rank (so every rank takes the same iterative path)."""
        return t

    def share(self, t: torch.Tensor) -> torch.Tensor:
        """Rank zero's ``t`` on every rank (bitwise): a quantity every rank could compute, but with rounding that
        depends on the process's thread count, is computed once and sent."""
        return t

    def block(self, n: int) -> np.ndarray:
        """This rank's contiguous block of ``range(n)`` (:func:`block_indices`)."""
        return block_indices(n, self.rank, self.world_size)

    def run(self, phase: str, fn: Callable[[], T]) -> T:
        """``fn()`` on every rank; if it raises on any rank, :class:`RankFailure` is raised on all of them."""
        if self.world_size == 1:
            return fn()
        out, err, cause = None, None, None
        try:
            out = fn()
        except Exception as exc:
            err, cause = f"{type(exc).__name__}: {exc}", exc
        failures = [(r, e) for r, e in enumerate(self.all_gather_object(err)) if e is not None]
        if failures:
            raise RankFailure(phase, failures, self.world_size) from cause
        return out  # type: ignore[return-value]


class ProcessGroupComm(Comm):
    """The default ``torch.distributed`` process group (or ``group``), already initialised by the launcher."""

    def __init__(self, group: Any = None):
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("torch.distributed is not initialised: launch through Lightning, Fabric or torchrun")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)

    def all_gather_object(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def sum_and_share(self, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.group)
        return self.share(t)

    def share(self, t: torch.Tensor) -> torch.Tensor:
        home = t.device
        if dist.get_backend(self.group) == "nccl" and home.type != "cuda":  # NCCL moves CUDA tensors only
            t = t.to(torch.device("cuda", torch.cuda.current_device()))
        t = t.clone()
        dist.broadcast(t, src=dist.get_global_rank(self.group, 0) if self.group else 0, group=self.group)
        return t.to(home)


def current_comm() -> Comm:
    """The process group if one is initialised with more than one rank, else the single-process :class:`Comm`."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return ProcessGroupComm()
    return Comm()


def sum_with_errors(comm: Comm, phase: str, fn: Callable[[], torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """Σ over ranks of ``fn()`` with one collective: a failed rank sends zeros and a raised flag, and then every rank
    raises :class:`RankFailure` (the messages travel in a second collective, on the failure path only)."""
    if comm.world_size == 1:
        return fn()
    try:
        local, err = fn(), None
    except Exception as exc:
        local, err = torch.zeros_like(like), f"{type(exc).__name__}: {exc}"
    flag = torch.tensor([0.0 if err is None else 1.0], dtype=local.dtype, device=local.device)
    total = comm.sum_and_share(torch.cat([local.reshape(-1), flag]))
    if total[-1] > 0:
        failures = [(r, e) for r, e in enumerate(comm.all_gather_object(err)) if e is not None]
        raise RankFailure(phase, failures, comm.world_size)
    return total[:-1].reshape(like.shape)

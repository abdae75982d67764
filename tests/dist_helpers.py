"""Run a function on W CPU processes joined by a gloo process group (for the distributed tests)."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from landscape.analysis import AnalysisOptions, analyze_model
from landscape.distributed import ProcessGroupComm, RankFailure
from landscape.files import atomic_write_json
from landscape.losses import cross_entropy

from .references import digits_subset, small_mlp

OPTIONS = AnalysisOptions(n_samples=81, grid_points=5, trace_samples=6, top_k=3, density_starts=1, density_steps=12)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(fn, world_size: int, *args) -> None:
    """``fn(rank, *args)`` on ``world_size`` processes; a hang becomes an error after 120 s (gloo timeout)."""
    mp.spawn(_entry, args=(world_size, free_port(), fn, args), nprocs=world_size, join=True)


def _entry(rank: int, world_size: int, port: int, fn, args) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=120))
    try:
        fn(rank, *args)
    except BaseException:
        dist.destroy_process_group()
        raise  # mp.spawn reports it
    dist.barrier()  # every rank done before any tears down its connections
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    # skip interpreter finalisation: gloo's worker threads can still hold tensors then, and releasing them there
    # aborts the process ("terminate called without an active exception", pytorch/pytorch#179291); seen once in CI
    os._exit(0)


def problem():
    """The shared test case: a trained float32 64-16-10 MLP and 301 digits (uneven blocks over 2 ranks)."""
    return small_mlp(double=False), digits_subset(301, double=False)


def failing_loss(rank_to_fail: int, phase: str):
    """Cross-entropy that raises on one rank, during sampling (no grad) or during the work with gradients: the exact
    slice field (``field``) or, with the curvature off, the Hessian (``hessian``)."""

    def loss(out, y):
        in_phase = torch.is_grad_enabled() == (phase != "sampling")
        if dist.get_rank() == rank_to_fail and in_phase:
            raise ValueError(f"injected failure in {phase}")
        return cross_entropy(out, y)

    return loss


def analyze_worker(rank: int, out: str, fail: str | None) -> None:
    """Every rank analyses the same model; rank zero alone writes, and only after every rank succeeded."""
    model, data = problem()
    comm = ProcessGroupComm()
    loss_fn = failing_loss(1, fail) if fail else cross_entropy
    folder = Path(out)
    options = replace(OPTIONS, curvature=False) if fail == "hessian" else OPTIONS
    try:
        result = analyze_model(model, data, options=options, loss_fn=loss_fn, comm=comm)
    except RankFailure as exc:
        (folder / f"error{rank}.txt").write_text(str(exc))
        return
    atomic_write_json(folder / f"scalars{rank}.json", result.scalars)
    (folder / f"directions{rank}.bin").write_bytes(result.sample.direction_matrix.tobytes())
    if comm.is_zero:
        result.save(folder / "result")


def bf16_worker(rank: int, out: str) -> None:
    """bfloat16 sampling split over the ranks (each checks its share of the first rows): the sample, and what
    each rank measured and chose."""
    from landscape.sampling.coordinates import ball
    from landscape.sampling.directions import make_directions
    from landscape.sampling.sampler import sample_on_ranks

    model, data = problem()
    d = make_directions(model, "filter", 2, seed=0)
    got = sample_on_ranks(ProcessGroupComm(), model, data, d, ball(40, 2, 1.0, seed=0), progress=False,
                          precision="bfloat16")  # fmt: skip
    atomic_write_json(Path(out) / f"bf16_{rank}.json", {
        "losses": got.losses.tolist(), "precision": got.meta["precision"], "deviation": got.meta["bf16_deviation"],
    })  # fmt: skip

"""Speed-up of sampling split over 2 processes (gloo, one thread each) against 1 process, measured in one run.

ConvNet (LeNet-5 style) on the MNIST split of ``../shared/data/mnist`` (the evaluation subset is drawn from its
8,000-image training part), filter-normalised 2-D directions, ``--samples`` points in the unit ball. Timings
(best of ``--repeat``) cover the sampling and the gathering of the rows, not the start of the processes, which is
printed separately. Baselines, all in this run:
- 1 process, 1 thread: the per-device baseline (each rank of a DDP run drives one device) — goal ≥ 1.6×;
- 1 process, 2 threads: the whole 2-core machine used by one process (intra-op threads), for honesty.
The gathered losses are checked against the single-process ones.

Usage: python benchmarks/distributed_sampling.py [--samples 120] [--n-eval 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import SHARED_MNIST


def setup(n_eval: int):
    import torch

    from landscape.data import load_mnist
    from landscape.evaluation import evaluation_subset
    from landscape.models import build_model, model_config
    from landscape.sampling.directions import make_directions

    s = load_mnist(SHARED_MNIST)
    data = evaluation_subset(s.train_x, s.train_y, n_eval, seed=0, source="mnist:train")
    torch.manual_seed(0)
    model = build_model(model_config("convnet", (1, 28, 28), 10))
    return model, data, make_directions(model, "filter", 2, seed=0)


def timed_sampling(comm, model, data, D, coords, repeat: int):
    import torch.distributed as dist

    from landscape.sampling.sampler import sample_on_ranks

    best, sample = float("inf"), None
    for _ in range(repeat):
        if comm.world_size > 1:
            dist.barrier()
        t0 = time.perf_counter()
        sample = sample_on_ranks(comm, model, data, D, coords, progress=False)
        best = min(best, time.perf_counter() - t0)
    return best, sample


def worker(rank: int, world: int, port: int, args, out: str, t_launch: float) -> None:
    import numpy as np
    import torch
    import torch.distributed as dist

    from landscape.distributed import ProcessGroupComm
    from landscape.sampling.coordinates import ball

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=600))
    ready = time.time() - t_launch
    model, data, D = setup(args.n_eval)
    coords = ball(args.samples, 2, 1.0, seed=0)
    best, sample = timed_sampling(ProcessGroupComm(), model, data, D, coords, args.repeat)
    if rank == 0:
        np.save(Path(out) / "losses.npy", sample.losses)
        Path(out, "time.json").write_text(json.dumps({"best": best, "ready": ready}))
    dist.destroy_process_group()


def main() -> None:
    import numpy as np
    import torch
    import torch.multiprocessing as mp

    from landscape.distributed import Comm
    from landscape.sampling.coordinates import ball

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=120)
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    model, data, D = setup(a.n_eval)
    coords = ball(a.samples, 2, 1.0, seed=0)
    rows = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rows[f"1 process, {threads} thread(s)"], ref = timed_sampling(Comm(), model, data, D, coords, a.repeat)
    with tempfile.TemporaryDirectory() as out:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        t0 = time.time()
        mp.spawn(worker, args=(2, port, a, out, t0), nprocs=2, join=True)
        wall = time.time() - t0
        t = json.loads(Path(out, "time.json").read_text())
        losses = np.load(Path(out) / "losses.npy")
    rows["2 processes (gloo), 1 thread each"] = t["best"]
    base = rows["1 process, 1 thread(s)"]
    print(f"ConvNet, {len(coords)} samples × {a.n_eval} MNIST images, best of {a.repeat}")
    print(f"{'run':38s} {'seconds':>8s} {'evals/s':>8s} {'speed-up vs 1 proc 1 thread':>28s}")
    for name, sec in rows.items():
        print(f"{name:38s} {sec:8.2f} {len(coords) / sec:8.1f} {base / sec:27.2f}×")
    two = rows["2 processes (gloo), 1 thread each"]
    print(f"2 processes vs 1 process with 2 threads: {rows['1 process, 2 thread(s)'] / two:.2f}×")
    print(f"process start + group init: {t['ready']:.1f} s; whole 2-process run incl. start: {wall:.1f} s")
    print(f"max |loss(2 processes) − loss(1 process)| = {np.abs(losses - ref.losses).max():.2e}")


if __name__ == "__main__":
    main()

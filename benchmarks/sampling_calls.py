"""Sampling as an analysis does it (issue 22): a sequence of calls on one model (the slice's samples, the surface
grid, a zoom, and a lone call of 10 rows) with the analysis's SamplingCache, against the naive loop over the same
rows (weights written into the model, the model on the whole evaluation subset), interleaved round by round, with
the load average printed. DenseNet-121 builds its fused graph once per analysis (1 s, 3 evaluations), and a call of
fewer than FUSE_MIN_ROWS rows without a cached graph runs the model as it is.

Goal (issue 22): ≥ 1.0× the naive loop on every family, DenseNet-121 included.

Usage: OMP_NUM_THREADS=1 python benchmarks/sampling_calls.py [--models densenet121 resnet20 convnet] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

from _common import SHARED_MNIST

CALLS = (40, 25, 40)  # rows of the calls that share a cache: samples, surface grid, a zoom
IMAGES = {"densenet121": 16, "resnet20": 128, "convnet": 1000}


def _ours(model, data, D, coords, lone):
    """The analysis's way: the calls share one SamplingCache; then a lone call without it."""
    from landscape.sampling.sampler import SamplingCache, sample_landscape

    cache = SamplingCache()
    out = [sample_landscape(model, data, D, u, progress=False, cache=cache).losses for u in coords]
    return out + [sample_landscape(model, data, D, lone, progress=False).losses]


def _naive(model, data, D, coords, lone):
    """Weights written into the model, the model on the whole subset, row by row."""
    import numpy as np
    import torch

    from landscape.params import trainable, unflatten

    params = [q for _, q in trainable(model)]
    base = [q.detach().clone() for q in params]
    out = []
    with torch.no_grad():
        for u in [*coords, lone]:
            row = []
            for r in u:
                for q, b, d in zip(params, base, unflatten(D.displacement(torch.as_tensor(r)), base)):
                    q.copy_(b + d)
                row.append(float(torch.nn.functional.cross_entropy(model(data.x), data.y)))
            out.append(np.array(row))
        for q, b in zip(params, base):
            q.copy_(b)
    return out


def main() -> None:
    import numpy as np
    import torch

    from landscape.data import load_digits_splits, load_mnist
    from landscape.evaluation import evaluation_subset
    from landscape.models import build_model, model_config
    from landscape.sampling.coordinates import ball
    from landscape.sampling.directions import make_directions

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(IMAGES))
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    splits = load_mnist(SHARED_MNIST) if SHARED_MNIST.is_dir() else load_digits_splits()
    print(f"{splits.name}; {torch.get_num_threads()} thread(s), {os.cpu_count()} cores; calls of {CALLS} rows with "
          f"one cache, then a lone call of 10 rows; {a.rounds} interleaved rounds")  # fmt: skip
    for name in a.models:
        torch.manual_seed(0)
        model = build_model(model_config(name, splits.input_shape, splits.num_classes)).eval()
        data = evaluation_subset(splits.train_x, splits.train_y, IMAGES.get(name, 128), seed=0)
        D = make_directions(model, "filter", 2, seed=0)
        coords = [ball(n - 1, 2, 0.5, seed=i) for i, n in enumerate(CALLS)]
        lone = ball(9, 2, 0.5, seed=9)
        ratios, diff = [], 0.0
        for _ in range(a.rounds):
            t0 = time.perf_counter()
            got = _ours(model, data, D, coords, lone)
            t1 = time.perf_counter()
            want = _naive(model, data, D, coords, lone)
            t2 = time.perf_counter()
            ratios.append((t2 - t1) / (t1 - t0))
            diff = max(diff, *(float(np.max(np.abs(g - w) / np.abs(w))) for g, w in zip(got, want)))
        r = np.array(ratios)
        print(f"{name:12} {len(data):5} images: speed against the naive loop {np.median(r):.2f}× "
              f"({r.min():.2f}–{r.max():.2f}) {'PASS' if r.min() >= 1.0 else 'FAIL'}; max rel diff {diff:.1e}; "
              f"load {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

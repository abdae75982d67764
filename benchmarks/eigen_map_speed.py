"""Li et al.'s convexity map (issue 24): Hessian-vector products and time of the warm-started map against
independent eigensolves at every point (their plot_hessian_eigen.py's way), on the same grid, round by round.

A digits MLP (64-32-10, trained 30 epochs by a seeded Adam loop on one thread) and a digits ConvNet, the 300-image
evaluation subset, filter-normalised directions, an N × N grid over radius 1; both ways must give the same λmax and
λmin to the Lanczos tolerance (checked). Prints the machine's load with every round.

Usage: python benchmarks/eigen_map_speed.py [--points 7] [--rounds 2] [--tol 1e-3]
"""

from __future__ import annotations

import argparse
import os
import time

import _common  # noqa: F401  (puts the repository on sys.path)


def _trained(name: str):
    import torch
    from torch import nn

    from landscape.data import load_digits_splits
    from landscape.models import build_model, model_config
    from landscape.threads import using_threads

    s = load_digits_splits()
    cfg = model_config(name, s.input_shape, s.num_classes, **({"widths": [32]} if name == "mlp" else {}))
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    with using_threads(1):
        for _ in range(30):
            for idx in torch.randperm(len(s.train_x), generator=gen).split(64):
                opt.zero_grad()
                nn.functional.cross_entropy(model(s.train_x[idx]), s.train_y[idx]).backward()
                opt.step()
    return model.eval(), s


def main() -> None:
    import numpy as np

    from landscape.evaluation import evaluation_subset
    from landscape.hessian.eigen_map import eigen_map
    from landscape.sampling.directions import make_directions

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=7, help="grid points per axis")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--tol", type=float, default=1e-3)
    a = p.parse_args()
    axis = np.linspace(-1.0, 1.0, a.points)
    coords = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    for name in ("mlp", "convnet"):
        model, s = _trained(name)
        data = evaluation_subset(s.train_x, s.train_y, 300, seed=0, source="digits:train")
        D = make_directions(model, "filter", 2, seed=0).matrix
        times: dict[str, list[float]] = {"warm": [], "independent": []}
        maps = {}
        for r in range(a.rounds):
            order = ("warm", "independent") if r % 2 == 0 else ("independent", "warm")
            for way in order:
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                maps[way] = eigen_map(model, data, D, coords, tol=a.tol, warm=way == "warm")
                times[way].append(time.perf_counter() - t0)
                print(f"{name:<8} round {r + 1} {way:<12} {times[way][-1]:7.1f} s  {int(maps[way].n_hvp.sum()):6d} "
                      f"HVPs  (load average {load:.2f})", flush=True)  # fmt: skip
        w, c = maps["warm"], maps["independent"]
        agree = np.allclose(w.lambda_max, c.lambda_max, rtol=10 * a.tol) and np.allclose(
            w.lambda_min, c.lambda_min, rtol=10 * a.tol, atol=10 * a.tol * float(np.abs(c.lambda_max).max())
        )
        print(
            f"{name:<8} warm / independent: HVPs {w.n_hvp.sum() / c.n_hvp.sum():.2f}x, time "
            f"{min(times['warm']) / min(times['independent']):.2f}x over {len(coords)} points; same ends: {agree}; "
            f"|λmin/λmax| > 0.1 on {w.share_above(0.1):.0%}; cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()

"""Cost of the loss-graph diffusion curvature and of its exact reference, as ratios measured in this run.

1. Centre-only estimate (the analysis' headline number) at n = 300 … 5,000 samples of a quadratic slice, k = 2, against
   the previous design measured here too: the whole sampled ball as the walk's patch, whose walk grows with n.
   Goal: ≤ 2 s at n = 2,000 on 2 cores, and a cost that grows at most linearly in n. Then k = 3..5 at n = 2,000.
2. The exact slice field (gradient + k×k Hessian in the slice coordinates by autograd, per point) against plain
   sampling (one loss evaluation per point), for each model family the mission names: MLP, ConvNet, ResNet-8 (with
   and without skips), on 500 digits (256 for the ResNets).

Usage: OMP_NUM_THREADS=1 python benchmarks/loss_graph_speed.py
"""

from __future__ import annotations

import time

from _common import best_time


def estimator_costs() -> None:
    import numpy as np

    from landscape.curvature.loss_graph import loss_graph_curvature
    from landscape.sampling.coordinates import ball
    from landscape.validation.manifolds import random_quadric

    rng = np.random.default_rng(0)
    A = np.array([[2.0, 0.6], [0.6, -1.0]])
    print("centre-only estimate, k = 2 (best of 3):")
    print(f"{'n':>6} {'default (s)':>12} {'whole-ball patch (s)':>21} {'ratio':>7} {'default / n=300':>16}")
    first = None
    for n in (300, 1000, 2000, 5000):
        u = ball(n - 1, 2, 1.0, seed=1)
        f = 0.5 * np.einsum("ni,ij,nj->n", u, A, u) + 0.3 * u[:, 0] ** 3
        t_new = best_time(lambda u=u, f=f: loss_graph_curvature(u, f, [0]))
        whole = lambda u=u, f=f, n=n: loss_graph_curvature(u, f, [0], patch=n)
        t_old = best_time(whole, repeat=1) if n <= 2000 else float("nan")
        first = first or t_new
        print(f"{n:>6} {t_new:>12.3f} {t_old:>21.3f} {t_old / t_new:>7.1f} {t_new / first:>16.2f}")
    print("centre-only estimate at n = 2,000 for k = 3..5:")
    for k in (3, 4, 5):
        u = ball(1999, k, 1.0, seed=1)
        Ak = random_quadric(k, False, rng)
        f = 0.5 * np.einsum("ni,ij,nj->n", u, Ak, u)
        print(f"  k = {k}: {best_time(lambda u=u, f=f: loss_graph_curvature(u, f, [0])):.3f} s")


def field_costs() -> None:
    import torch

    from landscape.data import load_digits_splits
    from landscape.evaluation import evaluation_subset
    from landscape.hessian.slice_field import slice_field
    from landscape.models import build_model, model_config
    from landscape.sampling.coordinates import ball
    from landscape.sampling.directions import make_directions
    from landscape.sampling.sampler import sample_landscape

    s = load_digits_splits()
    u = ball(39, 2, 0.3, seed=0)
    print("\nexact slice field vs sampling, 40 points (best of 2):")
    print(f"{'model':<16}{'params':>8}{'sampling ms/pt':>16}{'field ms/pt':>13}{'field / sampling':>18}")
    for name, cfg in (
        ("mlp", model_config("mlp", s.input_shape, 10)),
        ("convnet", model_config("convnet", s.input_shape, 10)),
        ("resnet8", model_config("resnet", s.input_shape, 10, depth=8)),
        ("resnet8-noskip", model_config("resnet", s.input_shape, 10, depth=8, skip=False)),
    ):
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        data = evaluation_subset(s.train_x, s.train_y, 256 if name.startswith("resnet") else 500, seed=0)
        D = make_directions(model, "filter", 2, seed=0)
        t_s = best_time(lambda m=model, e=data, d=D: sample_landscape(m, e, d, u, progress=False), 2) / len(u)
        t_f = best_time(lambda m=model, e=data, d=D: slice_field(m, e, d.matrix, u), 2) / len(u)
        n_par = sum(p.numel() for p in model.parameters())
        print(f"{name:<16}{n_par:>8}{1e3 * t_s:>16.2f}{1e3 * t_f:>13.2f}{t_f / t_s:>18.1f}")


def main() -> None:
    t0 = time.perf_counter()
    estimator_costs()
    field_costs()
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

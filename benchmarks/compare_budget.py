"""How long ``landscape compare --depth 20 --data mnist`` takes with the default options, phase by phase, and the
least time its arithmetic allows on this machine (issue 15's target: ≤ 15 minutes on 2 cores).

Each phase's unit of work is timed here with the project's own code and the default settings (threads as an
analysis picks them, the 1,000-image evaluation subset, chunk sizes and graph paths chosen automatically):
one training epoch (``landscape train``'s own path: 8,000 images, Adam, batch 128, plus the 2,000-image
validation pass and the checkpoint), one sampled point, one
point of the exact slice field, one Hessian-vector product. The number of HVPs comes from the analysis's own
Krylov budget on the briefly trained net (measured on a 128-image subset: the count depends on the spectrum, not
on the subset's size). The unit times × the default counts give the run's time for both models; the FLOPs of each
unit (``torch.utils.flop_counter``) divided by this machine's matrix-multiply rate give the least time any
implementation of the same exact computation could take here.

Usage: python benchmarks/compare_budget.py [--depth 20] [--n-eval 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import SHARED_MNIST, best_time


def main() -> None:
    import numpy as np
    import torch
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from landscape.analysis import AnalysisOptions
    from landscape.data import load_mnist
    from landscape.evaluation import evaluation_subset
    from landscape.hessian.krylov_spectrum import estimate_spectrum, extremes_run
    from landscape.hessian.slice_field import slice_field
    from landscape.hessian.spectrum import HessianProblem
    from landscape.models.checkpoints import load_network
    from landscape.models.training import TrainSettings, train_model
    from landscape.sampling.coordinates import ball
    from landscape.sampling.directions import make_directions
    from landscape.sampling.sampler import sample_landscape
    from landscape.threads import choose_threads

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--n-eval", type=int, default=1000)
    a = p.parse_args()
    o = AnalysisOptions()
    threads = choose_threads(1e12, o.threads)
    torch.set_num_threads(threads)
    splits = load_mnist(SHARED_MNIST)
    data = evaluation_subset(splits.train_x, splits.train_y, a.n_eval, seed=0)
    size = 1024
    m1, m2 = torch.randn(size, size), torch.randn(size, size)
    peak = 2 * size**3 / best_time(lambda: m1 @ m2, 10)
    print(f"ResNet-{a.depth}, MNIST split ({len(splits.train_y):,} train / {len(splits.val_y):,} val images), "
          f"{len(data):,}-image evaluation subset, {threads} thread(s); "
          f"matrix multiply {peak / 1e9:.0f} GFLOP/s")  # fmt: skip

    def flops(fn) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())

    # training: one epoch through the project's own training path (Lightning, Adam, batch 128, validation pass),
    # timed whole; the trained model is then the one analysed
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ck = train_model(
            TrainSettings(
                out=tmp, model=f"resnet{a.depth}", data="mnist", data_dir=str(SHARED_MNIST), epochs=1, quiet=True
            )  # fmt: skip
        )["checkpoint"]
        t_epoch = time.perf_counter() - t0
        model, _ = load_network(ck)
    xb, yb = splits.train_x[:128], splits.train_y[:128]
    model.train()
    f_epoch = flops(lambda: F.cross_entropy(model(xb), yb).backward()) * len(splits.train_y) / 128
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        f_epoch += flops(lambda: model(splits.val_x[:1])) * len(splits.val_y)
    gen = torch.Generator().manual_seed(0)

    # sampling: the default ball's points (and the surface grid's) cost one evaluation of the subset each
    d = make_directions(model, o.directions, o.k, seed=0)
    pts = ball(7, o.k, 1.0, seed=0)
    sample_landscape(model, data, d, pts[:2], progress=False)  # warm-up
    t_sample = best_time(lambda: sample_landscape(model, data, d, pts, progress=False), 2) / len(pts)
    with torch.no_grad():
        f_sample = flops(lambda: model(data.x[:1])) * len(data)

    # the exact slice field: gradient and k×k Hessian in u by autograd at every sample
    field_pts = ball(1, o.k, 1.0, seed=1)
    t_field = best_time(lambda: slice_field(model, data, d.matrix, field_pts), 1) / len(field_pts)
    few = data.head(16)
    f_field = flops(lambda: slice_field(model, few, d.matrix, field_pts[:1])) * len(data) / len(few)

    # Hessian: the HVP count of the default Krylov budget, and the time of one product on the whole subset
    small = HessianProblem(model, data.head(128))
    run = extremes_run(small, max(o.top_k, 1), 1, tol=o.tol, seed=o.seed)
    estimate_spectrum(
        small,
        top_k=o.top_k,
        tol=o.tol,
        density_starts=o.density_starts,
        density_steps=o.density_steps,
        trace_probes=o.trace_samples,
        trace_rtol=o.trace_rtol,
        seed=o.seed,
        run=run,
    )
    n_hvp = small.n_hvp
    prob = HessianProblem(model, data)
    v = torch.randn(prob.num_params, generator=gen)
    prob.hvp(v)  # builds the reused graph where it fits
    t_hvp = best_time(lambda: prob.hvp(v), 2)
    path = prob.path
    prob.release()
    few_prob = HessianProblem(model, few, reuse_graph=prob.reuse_graph)
    few_prob.hvp(v)  # the reused graph's one-off cost left out, as in the timing
    f_hvp = flops(lambda: few_prob.hvp(v)) * len(data) / len(few)

    n_points = o.n_samples + 1 + (o.grid_points**2 if o.grid_points else 0)
    fd_points = 2 * o.k**2 + 1
    rows = [
        ("training epochs", 10, t_epoch, f_epoch),
        ("sampled points (ball + surface grid + finite differences)", n_points + fd_points, t_sample, f_sample),
        ("exact slice field points", o.n_samples + 1, t_field, f_field),
        (f"Hessian-vector products ({path})", n_hvp, t_hvp, f_hvp),
    ]
    print(f"\n{'phase, per model':58} {'count':>6} {'unit':>9} {'total':>9} {'at the matmul rate':>19}")
    total = floor = 0.0
    for label, count, unit, fl in rows:
        total += count * unit
        floor += count * fl / peak
        print(f"{label:58} {count:6d} {unit:8.2f}s {count * unit / 60:7.1f}min {count * fl / peak / 60:15.1f}min")
    print(f"\nboth models: {2 * total / 60:.0f} min measured unit costs; at least {2 * floor / 60:.0f} min at this "
          f"machine's matrix-multiply rate on {threads} thread(s) (goal: 15 min)")  # fmt: skip
    print(f"  (diffusion curvature and figures: seconds; benchmarks/loss_graph_speed.py) n_hvp={n_hvp}, "
          f"sample {np.round(t_sample, 3)} s, field {np.round(t_field, 2)} s, HVP {np.round(t_hvp, 2)} s")  # fmt: skip


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

"""Sampling speed on every model family (issue 15): the sampler (auto settings) against the naive loop measured
in the same run — perturbed weights written into the model, then a DataLoader with batch 128 over the
evaluation images (the loss-landscape code's way) — on 2,000 MNIST images (the shared split).

Also times the sampler's in-place path at fixed evaluation chunk sizes (and channels-last memory format where
``--channels-last`` is given) so that the automatic chunk rule can be checked against the best fixed one.

Goals: ConvNet ≥ 2× the naive loop, ResNet-20 ≥ 1.5× (issue 15). The MLP's goal (≥ 25×) is set against the
loss-landscape code's rebuild-and-load loop in benchmarks/sampling_throughput.py; here it is shown for reference.

Also prints each loop's arithmetic rate (forward FLOPs counted by ``torch.utils.flop_counter``) next to this
machine's float32 matrix-multiply rate measured in the same run: a loop near that rate can only get faster with
fewer FLOPs, not with better kernels.

Usage: OMP_NUM_THREADS=1 python benchmarks/conv_sampling.py [--n-eval 2000] [--samples 40]
       [--models mlp convnet resnet20] [--chunks 64 128 256 512 2000]
"""

from __future__ import annotations

import argparse
import time

from _common import SHARED_MNIST, best_time


def main() -> None:
    import numpy as np
    import torch
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from landscape.data import load_mnist
    from landscape.evaluation import evaluation_subset
    from landscape.models import build_model, model_config
    from landscape.params import trainable, unflatten
    from landscape.sampling.coordinates import ball
    from landscape.sampling.directions import make_directions
    from landscape.sampling.sampler import sample_landscape

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["mlp", "convnet", "resnet20"])
    p.add_argument("--chunks", nargs="*", type=int, default=[])
    a = p.parse_args()
    splits = load_mnist(SHARED_MNIST)
    data = evaluation_subset(splits.train_x, splits.train_y, a.n_eval, seed=0)
    goals = {"convnet": 2.0, "resnet20": 1.5}
    from torch.utils.flop_counter import FlopCounterMode

    a_mat, b_mat = torch.randn(1024, 1024), torch.randn(1024, 1024)
    peak = 2 * 1024**3 / best_time(lambda: a_mat @ b_mat, 10) / 1e9
    print(f"float32 matrix multiply (1024³): {peak:.0f} GFLOP/s")
    print(f"{len(data)} MNIST images, {a.samples} samples, {torch.get_num_threads()} thread(s); "
          f"best of {a.repeat}, interleaved")  # fmt: skip
    for name in a.models:
        torch.manual_seed(0)
        extra = {"widths": [40], "bias": False} if name == "mlp" else {}
        model = build_model(model_config(name, splits.input_shape, splits.num_classes, **extra)).eval()
        d = make_directions(model, "filter", 2, seed=0)
        coords = ball(a.samples - 1, 2, 1.0, seed=0)
        params = [q for _, q in trainable(model)]
        base = [q.detach().clone() for q in params]
        loader = DataLoader(TensorDataset(data.x, data.y), batch_size=128, shuffle=False)

        def naive(model=model, d=d, coords=coords, params=params, base=base, loader=loader) -> np.ndarray:
            out = np.empty(len(coords))
            with torch.no_grad():
                for j, u in enumerate(coords):
                    for q, b, dl in zip(params, base, unflatten(d.displacement(torch.as_tensor(u)), base)):
                        q.copy_(b + dl)
                    out[j] = sum(float(F.cross_entropy(model(x), y, reduction="sum")) for x, y in loader) / len(data)
                for q, b in zip(params, base):
                    q.copy_(b)
            return out

        ref = naive()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(data.x[:1])
        flops = counter.get_total_flops() * len(data) * len(coords)  # the naive loop's work
        runs = {
            "auto": {},
            "unfused": {"fuse": False},
            "channels-first unfused": {"channels_last": False, "fuse": False},
            "no shortcut": {"shortcut": False},
        }
        runs.update({f"chunk {c}": {"batch_size": c, "strategy": "inplace"} for c in a.chunks})
        fns = {"naive": naive}
        for label, kw in runs.items():
            got = sample_landscape(model, data, d, coords, progress=False, **kw)
            assert np.allclose(got.losses, ref, rtol=1e-4), f"{name} {label}: losses differ from the naive loop"
            if label == "auto":
                meta = got.meta

            def once(kw=kw, m=model, d=d, c=coords):
                return sample_landscape(m, data, d, c, progress=False, **kw)

            fns[label] = once
        best = {label: float("inf") for label in fns}
        for _ in range(a.repeat):  # interleaved: a slow spell of the machine hits every variant alike
            for label, fn in fns.items():
                best[label] = min(best[label], best_time(fn, 1))
        t_naive = best["naive"]
        auto = t_naive / best["auto"]
        row = [f"{label} {t_naive / t:.2f}×" for label, t in best.items() if label != "naive"]
        print(f"{name:9} naive {len(coords) / t_naive:7.1f} samples/s; vs naive: " + ", ".join(row))
        print(f"{'':9} arithmetic rate: naive {flops / t_naive / 1e9:.0f} GFLOP/s, auto "
              f"{flops / best['auto'] / 1e9:.0f} GFLOP/s-equivalent (matrix multiply {peak:.0f})")  # fmt: skip
        goal = goals.get(name)
        verdict = "no goal here" if goal is None else f"goal ≥ {goal:g}×: {'PASS' if auto >= goal else 'FAIL'}"
        print(f"{'':9} auto chose {meta.get('strategy')}, chunk {meta.get('batch_size')}, first layer "
              f"{meta.get('first_layer', '-')}, inference {meta.get('inference', '-')} {meta.get('fused', '')}; "
              f"{verdict}")  # fmt: skip


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

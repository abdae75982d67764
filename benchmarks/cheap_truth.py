"""A default ``analyze`` of a ConvNet on MNIST with the cheap truth (issue 21): the exact slice curvature at θ* and
at the 16 reach draws only, against the exact field at every sample (what the default computed before, now
``--exact-field``), timed round by round in one run with the machine's load printed.

The ConvNet is trained for one epoch on the shared MNIST split (8,000 images, Adam 1e-3, batch 128, seeded, one
thread), then analysed with the default options (300 samples, radius 1, filter directions, the 1,000-image
evaluation subset, the Hessian spectrum) and ``threads=1``. Both analyses make the same diffusion estimate and the
same comparison at θ* and over the walk's reach (checked); the baseline adds the field figure's data.

Goal (issue 21): the default analysis ≤ 0.4× the time with the field at every sample, at equal agreement.

Usage: python benchmarks/cheap_truth.py [--rounds 2] [--samples 300]
"""

from __future__ import annotations

import argparse
import os
import time

from _common import SHARED_MNIST


def _train(splits, seed: int = 0):
    import torch
    from torch import nn

    from landscape.models import build_model, model_config

    torch.manual_seed(seed)
    model = build_model(model_config("convnet", splits.input_shape, splits.num_classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(splits.train_x), generator=torch.Generator().manual_seed(seed))
    model.train()
    for i in range(0, len(order), 128):
        idx = order[i : i + 128]
        opt.zero_grad()
        nn.functional.cross_entropy(model(splits.train_x[idx]), splits.train_y[idx]).backward()
        opt.step()
    return model.eval()


def main() -> None:
    import numpy as np
    import torch

    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.data import load_mnist

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--samples", type=int, default=300)
    a = p.parse_args()
    torch.set_num_threads(1)
    splits = load_mnist(SHARED_MNIST)
    model = _train(splits)
    data = splits.eval_subset(1000)
    cheap = AnalysisOptions(n_samples=a.samples, threads=1)
    full = AnalysisOptions(n_samples=a.samples, threads=1, exact_field=True)
    times: dict[str, list[float]] = {"cheap": [], "full": []}
    results = {}
    for r in range(a.rounds):
        for name, o in (("full", full), ("cheap", cheap)) if r % 2 == 0 else (("cheap", cheap), ("full", full)):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            results[name] = analyze_model(model, data, options=o)
            times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1} {name:<6} {times[name][-1]:7.1f} s  (load average {load:.2f})", flush=True)
    c, f = results["cheap"], results["full"]
    for key in ("dc_scalar", "analytic_scalar", "dc_region", "analytic_region", "dc_scalar_se"):
        same = np.isclose(c.scalars[key], f.scalars[key], rtol=1e-6)
        print(f"  {key:<18} cheap {c.scalars[key]:+.5g}  full {f.scalars[key]:+.5g}  {'same' if same else 'DIFFER'}")
    print(f"  field Spearman (full only): {f.scalars['field_spearman']:.3f}")
    print(f"  exact field phase: cheap {c.timings['exact_field']:.1f} s, full {f.timings['exact_field']:.1f} s")
    zoom = c.timings.get("zoom", 0.0)  # the zooms' sampling and estimates (both variants zoom alike)
    print(
        f"  read at radius {c.scalars['dc_radius']:g} after {int(c.scalars['n_zoom'])} zoom(s): "
        f"{zoom:.1f} s, {zoom / min(times['cheap']):.0%} of the default analysis"
    )
    ratio = min(times["cheap"]) / min(times["full"])
    print(
        f"default analysis / with the field at every sample: {ratio:.2f}x  (goal ≤ 0.40: "
        f"{'PASS' if ratio <= 0.4 else 'FAIL'}); cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()

"""Loss evaluations per second (SPEC §1–3), measured against baselines in the same run.

(1) 784-40-10 MLP (no biases, the 2022 paper's net) on all 10,000 MNIST images, 1,000 samples:
    our sampler vs a naive loop that rebuilds the model and loads a perturbed state dict per sample and evaluates
    through a DataLoader (the published 2022 approach) — goal ≥ 5×; achieved GFLOP/s vs a plain matmul of the
    first layer's size (10,000×784 @ 784×40) — goal ≥ 80 %.
(2) 100 evaluation inputs: vmap over samples vs in-place — goal ≥ 2×.

Usage: python benchmarks/sampling_throughput.py [--samples 1000] [--naive-samples 100]
"""

from __future__ import annotations

import argparse
import time

from _common import best_time, mnist_10k


def main() -> None:
    import numpy as np
    import torch
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from landscape.models import build_model, model_config
    from landscape.params import trainable, unflatten
    from landscape.sampling.coordinates import ball
    from landscape.sampling.directions import make_directions
    from landscape.sampling.sampler import sample_landscape

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--naive-samples", type=int, default=100, help="the naive loop is timed on fewer samples")
    a = p.parse_args()
    torch.manual_seed(0)
    data = mnist_10k()
    cfg = model_config("mlp", (1, 28, 28), 10, widths=[40], bias=False)
    model = build_model(cfg)
    d = make_directions(model, "filter", 2, seed=0)
    coords = ball(a.samples - 1, 2, 1.0, seed=0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; MLP 784-40-10 "
        f"({sum(p.numel() for p in model.parameters()):,} params), N = {len(data):,} images, {a.samples} samples"
    )

    # --- naive: rebuild model + load_state_dict per sample, DataLoader batches of 128
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=128, shuffle=False)
    names = [n for n, _ in trainable(model)]
    base = [p.detach().clone() for _, p in trainable(model)]

    def naive(n: int) -> np.ndarray:
        out = np.empty(n)
        for j in range(n):
            net = build_model(cfg)
            delta = unflatten(d.displacement(torch.as_tensor(coords[j])), base)
            net.load_state_dict({nm: b + dl for nm, b, dl in zip(names, base, delta)})
            net.eval()
            total = 0.0
            with torch.no_grad():
                for x, y in loader:
                    total += float(F.cross_entropy(net(x), y, reduction="sum"))
            out[j] = total / len(data)
        return out

    t_naive = best_time(lambda: naive(a.naive_samples), 1) / a.naive_samples
    results = {}
    runs = {
        "inplace, no shortcut": ("inplace", False),
        "inplace": ("inplace", True),
        "vmap": ("vmap", True),
        "auto": ("auto", True),
    }
    for label, (strategy, shortcut) in runs.items():
        t0 = time.perf_counter()
        r = sample_landscape(model, data, d, coords, strategy=strategy, shortcut=shortcut, progress=False)
        results[label] = ((time.perf_counter() - t0) / a.samples, r)
    ref = naive(5)
    for s, (_, r) in results.items():
        assert np.allclose(r.losses[:5], ref, rtol=1e-5), f"{s} disagrees with the naive loop"

    flops = 2 * len(data) * (784 * 40 + 40 * 10)  # forward multiply-adds per sample
    X, W = data.x.reshape(len(data), -1), torch.randn(784, 40)
    t_mm = best_time(lambda: [X @ W for _ in range(20)], 3) / 20
    mm_gflops = 2 * len(data) * 784 * 40 / t_mm / 1e9
    print(f"\n(1) {'method':<34}{'evals/s':>10}{'vs naive':>10}{'GFLOP/s':>10}{'vs matmul':>11}")
    print(
        f"    {'naive (rebuild+load, bs 128)':<34}{1 / t_naive:>10.1f}{1.0:>10.2f}{flops / t_naive / 1e9:>10.1f}"
        f"{flops / t_naive / 1e9 / mm_gflops:>10.0%}"
    )
    for s, (t, r) in results.items():
        label = f"landscape {s}" + (f" (→{r.meta['strategy']})" if s == "auto" else "")
        gf = flops / t / 1e9
        print(f"    {label:<34}{1 / t:>10.1f}{t_naive / t:>10.2f}{gf:>10.1f}{gf / mm_gflops:>10.0%}")
    print(
        f"    plain matmul 10000x784 @ 784x40: {mm_gflops:.1f} GFLOP/s. GFLOP/s = forward FLOPs of a direct evaluation"
        " / time: nominal where the first-layer shortcut (landscape.sampling.first_layer) skips that matmul"
    )
    t_auto = results["auto"][0]
    print(
        f"    goal ≥ 5× naive: {t_naive / t_auto:.1f}× {'PASS' if t_naive / t_auto >= 5 else 'FAIL'}; "
        f"goal ≥ 80 % of matmul: {flops / t_auto / 1e9 / mm_gflops:.0%} "
        f"{'PASS' if flops / t_auto / 1e9 >= 0.8 * mm_gflops else 'FAIL'}"
    )

    # --- (2) small evaluation batch
    small = mnist_10k()
    small.x, small.y = data.x[:100], data.y[:100]
    c2 = ball(a.samples - 1, 2, 1.0, seed=1)
    t_in = best_time(lambda: sample_landscape(model, small, d, c2, strategy="inplace", progress=False), 2)
    t_vm = best_time(lambda: sample_landscape(model, small, d, c2, strategy="vmap", progress=False), 2)
    auto = sample_landscape(model, small, d, c2[:3], progress=False).meta["strategy"]
    print(
        f"\n(2) 100 inputs, {a.samples} samples: in-place {a.samples / t_in:.0f}/s, vmap {a.samples / t_vm:.0f}/s, "
        f"vmap/in-place = {t_in / t_vm:.2f}× (goal ≥ 2×: {'PASS' if t_in / t_vm >= 2 else 'FAIL'}); auto → {auto}"
    )


if __name__ == "__main__":
    main()

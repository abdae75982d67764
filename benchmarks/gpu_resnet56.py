"""ResNet-56 on CIFAR-shaped inputs (3×32×32) on a GPU: a default analysis end to end with its per-phase times,
and the time per sample, per HVP, per exact-field point and per training step against the CPU measured in the same
run (a few of each), the GPU's answers checked against the CPU's (H v, the sampled losses and the slice Hessian to
1e-4 relative with TF32 off); bfloat16 sampling against float32 on the device (time per point, and the deviation
its check measured).

Runs wherever a CUDA GPU is visible; without one it says so and exits 0 (``--device cpu`` runs the same steps on
the CPU, small, to check the script). Real CIFAR-10 with ``--data-dir`` (torchvision layout), else seeded random
images with random labels (the timings do not depend on the pixels; the model is untrained either way).

Usage: python benchmarks/gpu_resnet56.py [--n-eval 1000] [--data-dir DIR] [--device cuda|cpu]
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (puts the repository on sys.path)


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import torch

    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.evaluation import evaluation_subset
    from landscape.hessian.spectrum import HessianProblem
    from landscape.models import build_model, model_config
    from landscape.sampling.coordinates import ball
    from landscape.sampling.directions import make_directions
    from landscape.sampling.sampler import BF16_TOL, sample_landscape

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--depth", type=int, default=56)
    p.add_argument("--cpu-steps", type=int, default=2, help="samples and HVPs timed on the CPU baseline")
    a = p.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU visible: nothing to measure (use --device cpu to check the script)")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if a.data_dir:
        from landscape.data import load_splits

        s = load_splits("cifar10", a.data_dir)
        data = s.eval_subset(a.n_eval)
    else:
        g = torch.Generator().manual_seed(0)
        data = evaluation_subset(
            torch.randn(a.n_eval, 3, 32, 32, generator=g), torch.randint(0, 10, (a.n_eval,), generator=g), None
        )
    torch.manual_seed(0)
    model = build_model(model_config(f"resnet{a.depth}", (3, 32, 32), 10)).eval()
    P = sum(q.numel() for q in model.parameters())
    dev = torch.device(a.device)
    print(f"ResNet-{a.depth} ({P:,} params), {len(data)} CIFAR-shaped images, device {dev}"
          + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""))  # fmt: skip

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # per-sample and per-HVP time: CPU baseline (a few) vs the device, same directions and points
    d = make_directions(model, "filter", 2, seed=0)
    u = ball(max(a.cpu_steps, 2) - 1, 2, 1.0, seed=0)
    v = torch.randn(P, generator=torch.Generator().manual_seed(1))
    sample_landscape(model, data, d, u[:1], progress=False)  # warm-up (oneDNN kernels), as on the device
    t0 = time.perf_counter()
    cpu_sample = sample_landscape(model, data, d, u, progress=False)
    t_cpu_sample = (time.perf_counter() - t0) / len(u)
    cpu_prob = HessianProblem(model, data)
    cpu_prob.hvp(v)  # builds the reused graph where it fits (not timed, as on the device)
    t0 = time.perf_counter()
    hv_cpu = cpu_prob.hvp(v)
    t_cpu_hvp = time.perf_counter() - t0
    cpu_prob.release()
    t_cpu_field, cpu_field = _field_time(model, data, d, sync, warm=False)
    t_cpu_step = _train_step_time(model, data, sync)
    gmodel, gdata = model.to(dev), data.to(dev)  # moves the model itself: every CPU baseline is taken above
    sample_landscape(gmodel, gdata, d, u, progress=False)  # warm-up (kernels, allocator)
    sync()
    t0 = time.perf_counter()
    dev_sample = sample_landscape(gmodel, gdata, d, u, progress=False)
    sync()
    t_dev_sample = (time.perf_counter() - t0) / len(u)
    prob = HessianProblem(gmodel, gdata)
    prob.hvp(v)
    sync()
    t0 = time.perf_counter()
    hv_dev = prob.hvp(v)
    sync()
    t_dev_hvp = time.perf_counter() - t0
    prob.release()
    t_dev_field, dev_field = _field_time(gmodel, gdata, d, sync, warm=True)
    t_dev_step = _train_step_time(gmodel, gdata, sync)
    diff = np.abs(dev_field.hessians - cpu_field.hessians).max()
    rel_field = float(diff / max(np.abs(cpu_field.hessians).max(), 1e-30))
    rel_hv = float((hv_dev - hv_cpu).norm() / hv_cpu.norm())
    rel_loss = float(abs(dev_sample.losses - cpu_sample.losses).max() / abs(cpu_sample.losses).max())
    speed = t_cpu_sample / t_dev_sample
    print(f"  per sample: CPU {t_cpu_sample:.2f} s, {dev} {t_dev_sample * 1e3:.1f} ms → {speed:.1f}×; "
          f"losses agree to {rel_loss:.1e}")  # fmt: skip
    print(f"  per HVP ({prob.path}): CPU {t_cpu_hvp:.2f} s, {dev} {t_dev_hvp * 1e3:.1f} ms → "
          f"{t_cpu_hvp / t_dev_hvp:.1f}×; H v agrees to {rel_hv:.1e}")  # fmt: skip
    print(f"  per exact-field point: CPU {t_cpu_field:.2f} s, {dev} {t_dev_field * 1e3:.1f} ms → "
          f"{t_cpu_field / t_dev_field:.1f}×; the slice Hessian agrees to {rel_field:.1e}")  # fmt: skip
    print(f"  per training step (SGD, batch 128): CPU {t_cpu_step:.2f} s, {dev} {t_dev_step * 1e3:.1f} ms → "
          f"{t_cpu_step / t_dev_step:.1f}×")  # fmt: skip
    # bfloat16 sampling against float32 on the device: 64 points, two interleaved rounds (the bfloat16 call
    # includes its check of the first 16 points in both precisions)
    w = ball(63, 2, 1.0, seed=1)
    times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    for _ in range(2):
        for prec in times:
            sync()
            t0 = time.perf_counter()
            got = sample_landscape(gmodel, gdata, d, w, progress=False, precision=prec)
            sync()
            times[prec].append((time.perf_counter() - t0) / len(w))
    t32, t16 = min(times["float32"]), min(times["bfloat16"])
    print(f"  bfloat16 sampling: ran {got.meta['precision']} (first points {got.meta['bf16_deviation']:.2g} × the "
          f"loss spread off float32, tolerance {BF16_TOL:g}); per sample {t16 * 1e3:.1f} ms against float32 "
          f"{t32 * 1e3:.1f} ms → {t32 / t16:.2f}×")  # fmt: skip
    # a default analysis end to end on the device
    opts = (
        AnalysisOptions()
        if dev.type == "cuda"
        else AnalysisOptions(
            n_samples=40, grid_points=5, trace_samples=3, top_k=2, density_starts=1, jackknife=0, tol=1e-2
        )
    )
    sync()
    t0 = time.perf_counter()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    r = analyze_model(gmodel, gdata, options=opts, progress=False)
    sync()
    total = time.perf_counter() - t0
    peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if dev.type == "cuda" else ""
    s = {k: r.scalars.get(k, float("nan")) for k in ("lambda_max", "lambda_min", "dc_scalar", "analytic_scalar")}
    print(f"  default analysis on {dev}: {total:.0f} s ({r.hessian_hvps.get('total', 0)} HVPs{peak}); "
          f"λmax {s['lambda_max']:.4g}, λmin {s['lambda_min']:.3g}, "
          f"dc_scalar {s['dc_scalar']:.3g} vs exact {s['analytic_scalar']:.3g}")  # fmt: skip
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items() if isinstance(v, (int, float)))
    print(f"  its phases: {phases}")
    ok = rel_hv <= 1e-4 and rel_loss <= 1e-4 and rel_field <= 1e-4
    print(f"  device results equal the CPU's (1e-4): {'PASS' if ok else 'FAIL'}")


def _field_time(model, data, d, sync, warm: bool):
    """(seconds of one exact slice-field point of ``model`` on ``data``'s device, the field), after a warm-up
    point where ``warm``."""
    import numpy as np

    from landscape.hessian.slice_field import slice_field

    u = np.array([[0.1, -0.2]])
    if warm:
        slice_field(model, data, d.matrix, u)
    sync()
    t0 = time.perf_counter()
    field = slice_field(model, data, d.matrix, u)
    sync()
    return time.perf_counter() - t0, field


def _train_step_time(model, data, sync) -> float:
    """Seconds of one SGD step (batch 128, the Li et al. recipe's optimiser) on a copy of ``model`` (on its device),
    best of 3 after a warm-up step; the model itself is not touched."""
    import copy

    import torch

    net = copy.deepcopy(model).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = data.x[:128], data.y[:128]
    best = float("inf")
    for i in range(4):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        sync()
        best = min(best, time.perf_counter() - t0) if i else best
    return best


if __name__ == "__main__":
    main()

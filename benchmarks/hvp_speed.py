"""Time per Hessian-vector product: the reused gradient graph vs recomputing forward and gradient per product
(chunks of 1,024 inputs and of the automatic cache-sized chunk) vs PyHessian's graph-reusing HVP, on the MLP, the
ConvNet and ResNet-8/20 with 1,000 MNIST images (the shared split; digits if it is missing). Prints ratios against
the recompute-1,024 baseline measured in the same run, and checks that every path gives the same H v (relative
1e-5).

Goal (issue 15): reused graph ≤ 1.1× PyHessian's time per HVP on the MLP and the ConvNet, at equal results.

Usage: OMP_NUM_THREADS=1 python benchmarks/hvp_speed.py [--n-eval 1000] [--repeat 5] [--models mlp convnet resnet8]
"""

from __future__ import annotations

import argparse
import time

from _common import SHARED_MNIST, best_time


def main() -> None:
    import torch

    from landscape.data import load_digits_splits, load_mnist
    from landscape.evaluation import evaluation_subset
    from landscape.hessian.spectrum import HessianProblem
    from landscape.models import build_model, model_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--models", nargs="+", default=["mlp", "convnet", "resnet8", "resnet20"])
    a = p.parse_args()
    splits = load_mnist(SHARED_MNIST) if SHARED_MNIST.is_dir() else load_digits_splits()
    data = evaluation_subset(splits.train_x, splits.train_y, a.n_eval, seed=0)
    print(f"{splits.name}, {len(data)} images, {torch.get_num_threads()} thread(s); time per HVP (best of {a.repeat})")
    print(f"{'model':10} {'params':>9} {'recompute/1024':>15} {'recompute/auto':>14} {'reused':>9} {'pyhessian':>10} "
          f"{'reused vs pyhessian':>20} {'max rel diff':>13}")  # fmt: skip
    for name in a.models:
        torch.manual_seed(0)
        model = build_model(model_config(name, splits.input_shape, splits.num_classes)).eval()
        v = torch.randn(sum(p.numel() for p in model.parameters()), generator=torch.Generator().manual_seed(1))
        probs = {
            "recompute/1024": HessianProblem(model, data, batch_size=1024, reuse_graph=False),
            "recompute/auto": HessianProblem(model, data, reuse_graph=False),
            "reused": HessianProblem(model, data, reuse_graph=True),
        }
        times, results = {}, {}
        for key, prob in probs.items():
            results[key] = prob.hvp(v)  # builds the reused graph once (not timed: PyHessian's set-up is not either)
            times[key] = best_time(lambda prob=prob, v=v: prob.hvp(v), a.repeat)
        times["pyhessian"], results["pyhessian"] = _pyhessian(model, data, v, a.repeat)
        ref = results["recompute/1024"]
        diff = max(float((r - ref).norm() / ref.norm()) for r in results.values())
        base = times["recompute/1024"]
        row = [f"{times[k] * 1e3:8.1f} ms" for k in ("recompute/1024", "recompute/auto", "reused", "pyhessian")]
        print(f"{name:10} {len(v):>9,} {row[0]:>15} {row[1]:>14} {row[2]:>9} {row[3]:>10} "
              f"{times['reused'] / times['pyhessian']:>19.2f}× {diff:>13.1e}")  # fmt: skip
        print(f"{'':10} {'':>9} {'ratios to recompute/1024:':>30} auto chunks: {base / times['recompute/auto']:.2f}×  "
              f"reused: {base / times['reused']:.2f}× faster")  # fmt: skip
        probs["reused"].release()


def _pyhessian(model, data, v, repeat: int):
    """PyHessian 0.1's hessian_vector_product on its once-built gradient graph (full batch, as it does)."""
    import torch
    from pyhessian.utils import hessian_vector_product

    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        loss = torch.nn.functional.cross_entropy(model(data.x), data.y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
    vs, i = [], 0
    for p in params:
        vs.append(v[i : i + p.numel()].view_as(p).to(p.dtype))
        i += p.numel()

    def once():
        return hessian_vector_product(list(grads), params, vs)

    hv = torch.cat([h.reshape(-1) for h in once()])
    t = best_time(once, repeat)
    return t, hv.detach()


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

"""Time per Hessian-vector product: the automatic path (``HessianProblem(model, data)``: the gradient graph's
memory measured on one chunk, reused for every chunk that fits in GRAPH_BUDGET, recomputed for the rest) against
PyHessian's graph-reusing HVP, on the MLP, the ConvNet and ResNet-20 with 256 and 1,000 MNIST images (the shared
split; digits if it is missing). Rounds are interleaved (one product of each per round, so a slow spell of the
machine hits both alike); prints the median ratio with its range, the measured graph size beside the resident
memory the built graph took, the path chosen, the load average, and checks that both give the same H v (relative
1e-5).

Goal (issue 22): automatic path ≤ 1.1× PyHessian's time per HVP on MLP, ConvNet and ResNet-20 at 256 and 1,000
images, with the graph's memory measured within 20 %.

Usage: OMP_NUM_THREADS=1 python benchmarks/hvp_speed.py [--n-eval 256 1000] [--rounds 7] [--models mlp convnet]
"""

from __future__ import annotations

import argparse
import gc
import os
import time

from _common import SHARED_MNIST


def resident_bytes() -> int:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def main() -> None:
    import numpy as np
    import torch

    from landscape.data import load_digits_splits, load_mnist
    from landscape.evaluation import evaluation_subset
    from landscape.hessian.spectrum import HessianProblem
    from landscape.models import build_model, model_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-eval", type=int, nargs="+", default=[256, 1000])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--models", nargs="+", default=["mlp", "convnet", "resnet20"])
    a = p.parse_args()
    splits = load_mnist(SHARED_MNIST) if SHARED_MNIST.is_dir() else load_digits_splits()
    print(f"{splits.name}; {torch.get_num_threads()} thread(s), {os.cpu_count()} cores; {a.rounds} interleaved rounds")
    print(f"{'model':9} {'images':>6} {'auto':>9} {'pyhessian':>10} {'auto/pyhessian':>22} {'graph measured':>15} "
          f"{'resident':>9} {'rel diff':>9} {'load':>5}  path")  # fmt: skip
    for name in a.models:
        for n in a.n_eval:
            torch.manual_seed(0)
            depth = {"resnet20": 20, "resnet8": 8}.get(name)
            cfg = model_config("resnet", splits.input_shape, splits.num_classes, depth=depth) if depth else \
                model_config(name, splits.input_shape, splits.num_classes)  # fmt: skip
            model = build_model(cfg).eval()
            data = evaluation_subset(splits.train_x, splits.train_y, n, seed=0)
            v = torch.randn(sum(q.numel() for q in model.parameters()), generator=torch.Generator().manual_seed(1))
            gc.collect()
            before = resident_bytes()
            prob = HessianProblem(model, data)
            ours = prob.hvp(v)  # builds the reused graphs (not timed: PyHessian's set-up is not either)
            resident = resident_bytes() - before
            py_once, theirs = _pyhessian(model, data, v)
            ratios, t_ours, t_py = [], [], []
            for _ in range(a.rounds):
                t0 = time.perf_counter()
                prob.hvp(v)
                t1 = time.perf_counter()
                py_once()
                t2 = time.perf_counter()
                t_ours.append(t1 - t0)
                t_py.append(t2 - t1)
                ratios.append((t1 - t0) / (t2 - t1))
            diff = float((ours - theirs).norm() / theirs.norm())
            r = np.array(ratios)
            verdict = "PASS" if np.median(r) <= 1.1 else "FAIL"
            print(f"{name:9} {n:>6} {np.median(t_ours) * 1e3:6.1f} ms {np.median(t_py) * 1e3:7.1f} ms "
                  f"{np.median(r):5.2f}× ({r.min():.2f}–{r.max():.2f}) {verdict} {prob.graph_bytes() / 2**20:11.0f} MB "
                  f"{resident / 2**20:6.0f} MB {diff:9.1e} {os.getloadavg()[0]:5.2f}  {prob.path}")  # fmt: skip
            prob.release()
            del prob, py_once
            gc.collect()


def _pyhessian(model, data, v):
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
    return once, hv.detach()


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

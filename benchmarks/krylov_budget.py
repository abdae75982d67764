"""Hessian-vector products of the default analysis's spectrum: one shared Krylov budget
(:func:`landscape.hessian.krylov_spectrum.estimate_spectrum`) against the separate processes it replaced (ARPACK
``eigsh`` for λmax/λmin, again for the top 5, 30 Hutchinson probes, 2 × 40 SLQ steps), measured in the same run.

Models: the 784-40-10 MLP and the ConvNet, trained briefly on MNIST (the shared split); Hessian of the mean loss
over ``--n-eval`` images. References: ``eigsh`` at tol 1e-10 for the eigenvalues; for the trace, the deflated
estimator on a 300-step Krylov basis with 200 probes; for the density, 8 SLQ starts of 80 steps.

Goals (issue 15): total HVPs ≤ ½ of the separate processes at equal accuracy (λmax, λmin to 1e-4 relative, the
trace within its standard error, the same density); λmin for ≤ 3× the HVPs of λmax.

Usage: OMP_NUM_THREADS=1 python benchmarks/krylov_budget.py [--n-eval 1000] [--models mlp convnet]
"""

from __future__ import annotations

import argparse
import time

from _common import SHARED_MNIST


def _train(model, splits, steps: int = 150):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, len(splits.train_y), (256,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(splits.train_x[idx]), splits.train_y[idx]).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval()


def _eigsh(prob, k: int, which: str, tol: float):
    import numpy as np
    from scipy.sparse.linalg import eigsh

    start = prob.n_hvp
    v0 = np.random.default_rng(0).standard_normal(prob.num_params)
    w = eigsh(prob.operator(), k=k, which=which, tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(w), prob.n_hvp - start


def main() -> None:
    import numpy as np
    import torch

    from landscape.data import load_mnist
    from landscape.evaluation import evaluation_subset
    from landscape.hessian.density import hessian_density
    from landscape.hessian.krylov_spectrum import deflated_probe, estimate_spectrum, extremes_run, rademacher
    from landscape.hessian.reference import hutchinson_trace
    from landscape.hessian.spectrum import HessianProblem
    from landscape.models import build_model, model_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument("--models", nargs="+", default=["mlp", "convnet"])
    a = p.parse_args()
    splits = load_mnist(SHARED_MNIST)
    data = evaluation_subset(splits.train_x, splits.train_y, a.n_eval, seed=0)
    rel = lambda x, r: abs(x - r) / abs(r)
    for name in a.models:
        torch.manual_seed(0)
        extra = {"widths": [40], "bias": False} if name == "mlp" else {}
        model = _train(build_model(model_config(name, splits.input_shape, splits.num_classes, **extra)), splits)
        prob = HessianProblem(model, data)
        t0 = time.perf_counter()
        top_ref, _ = _eigsh(prob, 5, "LA", 1e-10)
        (lmin_ref,), _ = _eigsh(prob, 1, "SA", 1e-10)
        lmax_ref = top_ref[-1]
        deep = extremes_run(prob, 1, 1, tol=0.0, seed=7, steps=300)
        rng = np.random.default_rng(11)
        ref_probes = [deflated_probe(deep, rademacher(prob.num_params, rng), problem=prob) for _ in range(200)]
        tr_ref = float(deep.alpha.sum() + np.mean(ref_probes))
        tr_ref_se = float(np.std(ref_probes, ddof=1) / np.sqrt(len(ref_probes)))
        dens_ref = hessian_density(prob, 8, 80, seed=5)
        hvp_s = (time.perf_counter() - t0) / prob.n_hvp
        print(f"\n{name}: P = {prob.num_params:,}, N = {len(data)}, one HVP ≈ {hvp_s * 1e3:.0f} ms")
        print(f"  reference λmax = {lmax_ref:.8g}, λmin = {lmin_ref:.8g}, trace = {tr_ref:.6g} ± {tr_ref_se:.2g}")

        def l1(d, ref=dens_ref, lo=lmin_ref, hi=lmax_ref):
            """L1 distance of the broadened densities (σ = 2 % of the spectrum's width) to the reference."""
            grid, sigma = np.linspace(lo - 0.05 * (hi - lo), hi * 1.05, 400), 0.02 * (hi - lo)
            return float(np.abs(d.density(grid, sigma) - ref.density(grid, sigma)).sum() * (grid[1] - grid[0]))

        # the separate processes (the previous default analysis)
        prob.n_hvp = 0
        (lmin_o, lmax_o), n_be = _eigsh(prob, 2, "BE", 1e-4)
        top_o, n_top = _eigsh(prob, 5, "LA", 1e-4)
        _, n_max_alone = _eigsh(prob, 1, "LA", 1e-4)
        c0 = prob.n_hvp
        tr_o, se_o = hutchinson_trace(prob, 30, seed=0)
        c1 = prob.n_hvp
        dens_o = hessian_density(prob, 2, 40, seed=0)
        old = {"λmax+λmin": n_be, "top 5": n_top, "trace": c1 - c0, "density": prob.n_hvp - c1}
        old_total = sum(old.values())
        # one shared budget
        prob.n_hvp = 0
        est = estimate_spectrum(prob, top_k=5, tol=1e-4, density_starts=2, density_steps=40, trace_probes=30, seed=0)
        top_err_o = max(rel(x, r) for x, r in zip(sorted(top_o), top_ref))
        top_err_n = max(rel(x, r) for x, r in zip(sorted(est.top), top_ref))
        print(f"  {'':30}{'HVPs':>6} {'λmax err':>9} {'λmin err':>9} {'top-5 err':>10} {'trace':>20} "
              f"{'|Δtr|/SE':>9} {'density L1':>11}")  # fmt: skip
        print(f"  {'separate (eigsh ×2, Hutch, SLQ)':30}{old_total:>6} {rel(lmax_o, lmax_ref):>9.1e} "
              f"{rel(lmin_o, lmin_ref):>9.1e} {top_err_o:>10.1e} {f'{tr_o:.5g} ± {se_o:.2g}':>20} "
              f"{abs(tr_o - tr_ref) / se_o:>9.2f} {l1(dens_o):>11.1e}")  # fmt: skip
        tr_n = f"{est.trace:.5g} ± {est.trace_se:.2g}"
        print(f"  {'shared Krylov budget':30}{est.n_hvp['total']:>6} {rel(est.lambda_max, lmax_ref):>9.1e} "
              f"{rel(est.lambda_min, lmin_ref):>9.1e} {top_err_n:>10.1e} {tr_n:>20} "
              f"{abs(est.trace - tr_ref) / max(est.trace_se, 1e-300):>9.2f} {l1(est.density):>11.1e}")  # fmt: skip
        print(f"  separate, HVPs per process: {old} (λmax alone, eigsh LA: {n_max_alone})")
        print(f"  shared, HVPs per quantity: {est.n_hvp}; {est.trace_probes} trace probes")
        ratio = est.n_hvp["total"] / old_total
        lam = est.n_hvp["lambda_min"] / est.n_hvp["lambda_max"]
        print(f"  total HVPs shared / separate = {ratio:.2f} (goal ≤ 0.5: {'PASS' if ratio <= 0.5 else 'FAIL'}); "
              f"λmin / λmax HVPs = {lam:.1f} in the shared run, {est.n_hvp['lambda_min'] / n_max_alone:.1f} "
              f"against λmax alone (goal ≤ 3)")  # fmt: skip
        prob.release()


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

"""HVPs needed for λmax and λmin to 1e-4 relative accuracy: Lanczos vs PyHessian-style power iteration.

Model: 784-40-10 MLP (no biases) trained briefly on MNIST; Hessian of the mean loss over 1,000 images.
Reference eigenvalues: ARPACK at tol 1e-12. Power iteration gets λmax directly and λmin from H − λmax·I
(PyHessian itself has no λmin). "oracle" counts stop at the first iterate within 1e-4 (needs the answer);
"rule" counts use each method's own stopping rule at tolerance 1e-4, with the error it then has.
Goal: Lanczos ≤ ½ the HVPs of power iteration.

Usage: python benchmarks/hessian_extremes.py [--n-eval 1000] [--max-iter 3000]
"""

from __future__ import annotations

import argparse
import time

from _common import mnist_10k


def main() -> None:
    import numpy as np
    import torch

    from landscape.evaluation import evaluation_subset
    from landscape.hessian.density import lanczos_tridiagonal
    from landscape.hessian.reference import power_iteration
    from landscape.hessian.spectrum import HessianProblem, extreme_eigenvalues
    from landscape.models import build_model, model_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument("--max-iter", type=int, default=3000)
    a = p.parse_args()
    torch.manual_seed(0)
    full = mnist_10k()
    data = evaluation_subset(full.x, full.y, a.n_eval, seed=0)
    model = build_model(model_config("mlp", (1, 28, 28), 10, widths=[40], bias=False))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = evaluation_subset(full.x, full.y, 4000, seed=1)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(train.x), train.y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    prob = HessianProblem(model, data)
    t0 = time.perf_counter()
    from scipy.sparse.linalg import eigsh  # an independent reference: ARPACK, not the project's Lanczos

    v0 = np.random.default_rng(1).standard_normal(prob.num_params)
    ref_max = float(eigsh(prob.operator(), k=1, which="LA", tol=1e-12, v0=v0, return_eigenvectors=False)[0])
    ref_min = float(eigsh(prob.operator(), k=1, which="SA", tol=1e-12, v0=v0, return_eigenvectors=False)[0])
    t_hvp = (time.perf_counter() - t0) / prob.n_hvp
    print(
        f"P = {prob.num_params:,}, N = {len(data)}; reference λmax = {ref_max:.8g}, λmin = {ref_min:.8g} "
        f"(one HVP ≈ {t_hvp * 1e3:.1f} ms)"
    )
    rel = lambda x, r: abs(x - r) / abs(r)

    # Lanczos oracle: Ritz extremes after m steps of one Krylov space give both ends at once
    def mv(x):
        return prob.hvp(torch.from_numpy(x)).double().numpy()

    alpha, beta = lanczos_tridiagonal(mv, np.random.default_rng(0).standard_normal(prob.num_params), 400)
    lz = {}
    for m in range(2, len(alpha) + 1):
        T = np.diag(alpha[:m]) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
        w = np.linalg.eigvalsh(T)
        if "max" not in lz and rel(w[-1], ref_max) < 1e-4:
            lz["max"] = m
        if "min" not in lz and rel(w[0], ref_min) < 1e-4:
            lz["min"] = m
        if len(lz) == 2:
            break
    lz_both = max(lz.values()) if len(lz) == 2 else float("nan")

    # production path: the shared Lanczos run (landscape.hessian.krylov_spectrum.extremes_run) at tol 1e-4
    prob.n_hvp = 0
    lmax, lmin, n_be = extreme_eigenvalues(prob, tol=1e-4)

    # power iteration (landscape.hessian.spectrum.power_iteration), PyHessian's rule: stop when the relative
    # change < tol
    def power(shift: float):
        ref = ref_max if shift == 0 else ref_min
        seen = {"prev": None, "oracle": None, "rule": None}

        def step(i: int, lam: float) -> bool:
            shifted = lam - shift
            if seen["oracle"] is None and rel(lam, ref) < 1e-4:
                seen["oracle"] = i
            prev = seen["prev"]
            if seen["rule"] is None and prev is not None and abs(shifted - prev) / (abs(prev) + 1e-6) < 1e-4:
                seen["rule"] = (i, rel(lam, ref))
            seen["prev"] = shifted
            return seen["oracle"] is not None and seen["rule"] is not None

        power_iteration(prob, tol=0.0, max_iter=a.max_iter, shift=shift, on_step=step)
        return seen["oracle"], seen["rule"]

    pw_max = power(0.0)
    pw_min = power(ref_max)
    fmt = lambda x: "not reached" if x is None else str(x)
    print(f"\n{'method':<44}{'λmax':>12}{'λmin':>14}{'total':>8}")
    print(f"{'Lanczos, oracle (one Krylov space)':<44}{fmt(lz.get('max')):>12}{fmt(lz.get('min')):>14}{lz_both:>8}")
    print(
        f"{'Lanczos, shared run tol 1e-4 (production)':<44}{'':>12}{'':>14}{n_be:>8}"
        f"   errors {rel(lmax, ref_max):.1e} / {rel(lmin, ref_min):.1e}"
    )
    tot_or = (pw_max[0] or a.max_iter) + (pw_min[0] or a.max_iter)
    print(f"{'power iteration, oracle':<44}{fmt(pw_max[0]):>12}{fmt(pw_min[0]):>14}{tot_or:>8}")
    r1, r2 = pw_max[1], pw_min[1]
    tot_rule = (r1[0] if r1 else a.max_iter) + (r2[0] if r2 else a.max_iter)
    print(
        f"{'power iteration, PyHessian rule tol 1e-4':<44}{fmt(r1 and r1[0]):>12}{fmt(r2 and r2[0]):>14}"
        f"{tot_rule:>8}   errors {r1[1] if r1 else float('nan'):.1e} / {r2[1] if r2 else float('nan'):.1e}"
    )
    ratio = n_be / tot_or
    print(
        f"\nLanczos (production) / power iteration (oracle) HVPs = {ratio:.2f} "
        f"(goal ≤ 0.5: {'PASS' if ratio <= 0.5 else 'FAIL'}); oracle Lanczos / oracle power = "
        f"{lz_both / tot_or:.2f}"
    )


if __name__ == "__main__":
    main()

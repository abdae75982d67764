"""Sharpness against exact values: quadratics with a chosen spectrum (worst case ρ²λmax/2, average case σ²tr/2,
and their adaptive forms with T = diag|θ*|), and the small-radius limit on a trained net's exact Hessian."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.hessian.reference import exact_hessian
from landscape.hessian.spectrum import HessianProblem, extreme_eigenvalues
from landscape.sharpness import average_case_sharpness, worst_case_sharpness

from .references import digits_subset, small_mlp

A = torch.diag(torch.tensor([4.0, 1.0, 0.25], dtype=torch.float64))
M = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)  # the minimum θ*: T = diag|θ*| = diag(1, 3, 0.5)


class Point(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(M.clone())

    def forward(self, x):
        return self.w.expand(len(x), 3)


def quadratic(out, _y):  # ½ (w − M)ᵀ A (w − M), the same for every row
    d = out - M
    return 0.5 * torch.einsum("ni,ij,nj->n", d, A, d).mean()


DATA = digits_subset(8)


@pytest.mark.parametrize("adaptive, lam", [(False, 4.0), (True, 9.0)])  # THT = diag(4, 9, 0.0625)
def test_worst_case_on_a_quadratic_is_its_top_eigenvalue(adaptive, lam):
    rho = 0.1
    s = worst_case_sharpness(Point(), DATA, rho, adaptive=adaptive, loss_fn=quadratic, lambda_max=lam)
    assert s.value == pytest.approx(rho**2 * lam / 2, rel=1e-3) and s.settled
    assert s.limit == pytest.approx(rho**2 * lam / 2) and s.loss_center == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("adaptive, tr", [(False, 5.25), (True, 13.0625)])
def test_average_case_on_a_quadratic_is_its_trace_within_its_error(adaptive, tr):
    sigma = 0.05
    few = average_case_sharpness(Point(), DATA, sigma, adaptive=adaptive, pairs=50, loss_fn=quadratic, trace=tr)
    many = average_case_sharpness(Point(), DATA, sigma, adaptive=adaptive, pairs=800, loss_fn=quadratic, seed=1)
    exact = sigma**2 * tr / 2
    assert abs(few.value - exact) <= 3 * few.se and abs(many.value - exact) <= 3 * many.se
    assert many.se == pytest.approx(few.se / 4, rel=0.35)  # the error shrinks as 1/√pairs
    assert few.limit == pytest.approx(exact)


def test_small_radius_limit_on_a_trained_net_and_the_model_is_untouched():
    """On the Tanh MLP (briefly trained: not at a critical point) the worst case at a small radius lies between its
    first-order value ρ‖g‖ (the ascent finds the gradient's direction) and ρ‖g‖ + ρ²λmax/2; the average case, whose
    antithetic pairs cancel the gradient term, is σ²tr/2 within its error. The model comes back bitwise."""
    model, data = small_mlp(), digits_subset(300)
    problem = HessianProblem(model, data)
    H = exact_hessian(model, data)
    lmax = float(np.linalg.eigvalsh(H)[-1])
    assert extreme_eigenvalues(problem)[0] == pytest.approx(lmax, rel=1e-4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rho = 1e-3
    w = worst_case_sharpness(model, data, rho, steps=100, lambda_max=lmax)
    a = average_case_sharpness(model, data, 1e-4, pairs=200, trace=float(np.trace(H)))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    g = torch.autograd.grad(nn.functional.cross_entropy(model(data.x), data.y), list(model.parameters()))
    gnorm = float(torch.sqrt(sum((x**2).sum() for x in g)))
    assert rho * gnorm * (1 - 1e-3) <= w.value <= rho * gnorm + w.limit * 1.01
    assert abs(a.value - a.limit) <= 3 * a.se + 1e-2 * a.limit


def test_bad_radius_and_counts_are_refused():
    with pytest.raises(ValueError, match="positive"):
        worst_case_sharpness(Point(), DATA, 0.0, loss_fn=quadratic)
    with pytest.raises(ValueError, match="steps"):
        average_case_sharpness(Point(), DATA, 0.1, pairs=10**6, loss_fn=quadratic)


def test_an_analysis_reports_sharpness_beside_its_hessian_limits(tmp_path):
    """``sharpness=0.02``: the four forms in the scalars and results.json; the plain ones carry ρ²λmax/2 and σ²tr/2
    from the same run's spectrum: the average case (antithetic pairs cancel the gradient's term) agrees with σ²tr/2
    within 4 standard errors; this briefly trained net is not at a minimum, so the worst case also climbs along the
    gradient and must reach at least ρ²λmax/2 (measured 0.0017 against 0.00038)."""
    import json

    from landscape.analysis import SHARPNESS_METRICS, AnalysisOptions, analyze_model

    model, data = small_mlp(), digits_subset(200)
    o = AnalysisOptions(sharpness=0.02, curvature=False, grid_points=0, density_starts=0, tol=1e-6, trace_rtol=0.002,
                        trace_samples=200)  # fmt: skip
    r = analyze_model(model, data, options=o)
    assert all(np.isfinite(r.scalars[k]) for k in SHARPNESS_METRICS)
    worst, avg = (next(d for d in r.sharpness if d["kind"] == k and not d["adaptive"]) for k in ("worst", "average"))
    assert worst["limit"] == pytest.approx(0.02**2 * r.scalars["lambda_max"] / 2)
    assert worst["value"] >= 0.95 * worst["limit"]
    assert abs(avg["value"] - avg["limit"]) <= 4 * avg["se"]
    r.save(tmp_path / "run")
    assert len(json.loads((tmp_path / "run" / "results.json").read_text())["sharpness"]) == 4
    from landscape.report.figures import analysis_figures

    assert "sharpness.png" in {p.name for p in analysis_figures(r, tmp_path / "run", "mlp")}
    with pytest.raises(ValueError, match="sharpness must be"):
        AnalysisOptions(sharpness=-1.0)

"""Li et al.'s convexity map (landscape.hessian.eigen_map) against exact references: a quadratic (the map is
constant), a quartic with an analytic Hessian at every point, and a trained MLP at θ* (the spectrum's ends)."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.hessian.eigen_map import EigenMap, eigen_map, snake_order
from landscape.hessian.spectrum import HessianProblem, extreme_eigenvalues

from ..references import Quadratic, digits_subset, dummy_data, quadratic_loss, small_mlp, spectrum_matrix


class Quartic(nn.Module):
    """L(θ) = ½θᵀQθ + ¼|θ|⁴: H(θ) = Q + |θ|²I + 2θθᵀ, known at every point."""

    def __init__(self, Q: np.ndarray, theta: np.ndarray):
        super().__init__()
        self.register_buffer("Q", torch.as_tensor(Q))
        self.theta = nn.Parameter(torch.as_tensor(theta).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.theta
        return (0.5 * t @ self.Q @ t + 0.25 * (t @ t) ** 2).expand(x.shape[0])


def _grid(extent: float, m: int) -> np.ndarray:
    a = np.linspace(-extent, extent, m)
    return np.stack(np.meshgrid(a, a, indexing="ij"), axis=-1).reshape(-1, 2)


def test_snake_order_visits_neighbours():
    coords = _grid(1.0, 4)
    order = snake_order(coords)
    assert sorted(order) == list(range(16))
    steps = np.linalg.norm(np.diff(coords[order], axis=0), axis=1)
    assert np.allclose(steps, 2 / 3)  # every step to a grid neighbour


@pytest.mark.parametrize("warm", [True, False])
def test_a_quadratic_has_a_constant_map(warm):
    Q = spectrum_matrix(np.linspace(-2.0, 7.0, 12), seed=2)
    model = Quadratic(Q, np.zeros(12), np.random.default_rng(0).standard_normal(12))
    D = torch.as_tensor(np.random.default_rng(1).standard_normal((2, 12)))
    emap = eigen_map(model, dummy_data(), D, _grid(1.0, 3), loss_fn=quadratic_loss, tol=1e-10, warm=warm)
    np.testing.assert_allclose(emap.lambda_max, 7.0, rtol=1e-8)
    np.testing.assert_allclose(emap.lambda_min, -2.0, rtol=1e-8)
    assert emap.converged.all() and np.allclose(emap.ratio, 2 / 7)


def test_a_quartic_matches_its_analytic_field_and_warm_starts_save_products():
    rng = np.random.default_rng(3)
    P = 40
    Q = spectrum_matrix(np.r_[np.linspace(-1.0, 1.0, P - 2), 5.0, -4.0], seed=5)
    theta = 0.3 * rng.standard_normal(P)
    model = Quartic(Q, theta)
    D = torch.as_tensor(rng.standard_normal((2, P)) / np.sqrt(P))
    coords = _grid(1.0, 7)
    warm = eigen_map(model, dummy_data(), D, coords, loss_fn=quadratic_loss, tol=1e-8)
    cold = eigen_map(model, dummy_data(), D, coords, loss_fn=quadratic_loss, tol=1e-8, warm=False)
    for i, u in enumerate(coords):
        t = theta + u @ D.numpy()
        ev = np.linalg.eigvalsh(Q + (t @ t) * np.eye(P) + 2 * np.outer(t, t))
        for m in (warm, cold):
            assert m.lambda_max[i] == pytest.approx(ev[-1], rel=1e-6)
            assert m.lambda_min[i] == pytest.approx(ev[0], rel=1e-6)
    assert warm.converged.all() and cold.converged.all()
    assert warm.n_hvp.sum() < 0.8 * cold.n_hvp.sum()  # measured 0.78 (345 against 444 products, float64)
    assert torch.equal(model.theta.detach(), torch.as_tensor(theta))  # weights restored


def test_at_the_trained_point_the_map_is_the_spectrum():
    model, data = small_mlp(), digits_subset(200)
    before = [p.detach().clone() for p in model.parameters()]
    D = torch.as_tensor(np.random.default_rng(0).standard_normal((2, sum(p.numel() for p in before))))
    D = D / D.norm(dim=1, keepdim=True)
    emap = eigen_map(model, data, D, _grid(0.5, 3), tol=1e-6)
    lmax, lmin, _ = extreme_eigenvalues(HessianProblem(model, data), tol=1e-8)
    centre = 4  # u = (0, 0)
    assert emap.lambda_max[centre] == pytest.approx(lmax, rel=1e-5)
    assert emap.lambda_min[centre] == pytest.approx(lmin, rel=1e-4, abs=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_ratio_share_and_bounds():
    emap = EigenMap(np.zeros((4, 2)), np.array([2.0, 2.0, 1.0, -1.0]), np.array([0.5, -0.2, -0.5, -2.0]),
                    np.zeros(4, dtype=int), np.ones(4, dtype=bool))  # fmt: skip
    np.testing.assert_allclose(emap.ratio[:3], [0.0, 0.1, 0.5]) and np.isnan(emap.ratio[3])
    assert emap.share_above(0.2) == pytest.approx(0.5)  # 0.5 and the NaN (λmax ≤ 0) count as non-convex
    with pytest.raises(ValueError, match="coordinates"):
        eigen_map(small_mlp(), digits_subset(10), torch.zeros(2, 1210), np.zeros((3, 3)))


def test_an_analysis_draws_the_convexity_map(tmp_path):
    """``eigen_map=3``: a 3 × 3 map over the slice's radius whose centre is the spectrum's own λmax and λmin,
    eigen_map.npz (u1, u2, lambda_max, lambda_min), eigen_map.png, the share in the summary scalars."""
    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.report.figures import analysis_figures

    model, data = small_mlp(), digits_subset(200)
    o = AnalysisOptions(eigen_map=3, radius=0.5, curvature=False, grid_points=0, density_starts=0, tol=1e-6)
    r = analyze_model(model, data, options=o)
    emap = r.eigen_map
    assert emap is not None and len(emap.coords) == 9 and np.abs(emap.coords).max() == pytest.approx(0.5)
    assert emap.lambda_max[4] == pytest.approx(r.scalars["lambda_max"], rel=1e-4)
    assert emap.lambda_min[4] == pytest.approx(r.scalars["lambda_min"], rel=1e-3, abs=1e-6)
    assert r.scalars["eigen_map_nonconvex_share"] == emap.share_above(0.1)
    assert r.hessian_hvps["eigen_map"] == int(emap.n_hvp.sum())
    r.save(tmp_path / "run")
    with np.load(tmp_path / "run" / "eigen_map.npz") as z:
        assert {"u1", "u2", "lambda_max", "lambda_min"} <= set(z.files)
        np.testing.assert_allclose(z["lambda_max"], emap.lambda_max)
    assert "eigen_map.png" in {p.name for p in analysis_figures(r, tmp_path / "run", "mlp")}


@pytest.mark.parametrize("change, message", [(dict(eigen_map=1), "2..51"), (dict(eigen_map=52), "2..51"),
                                             (dict(eigen_map=3, k=3), "k = 2"),
                                             (dict(eigen_map=3, hessian=False), "drop --no-hessian")])  # fmt: skip
def test_map_options_are_checked(change, message):
    from landscape.analysis import AnalysisOptions

    with pytest.raises(ValueError, match=message):
        AnalysisOptions(**change)

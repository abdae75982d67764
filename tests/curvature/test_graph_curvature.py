"""SPEC §4 formulas against analytic surfaces."""

import numpy as np
import pytest

from landscape.curvature.slice_geometry import graph_curvature


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_sphere_cap_graph(k):
    # f(u) = R − √(R² − |u|²) is a sphere of radius R: every principal curvature 1/R, at every u (g ≠ 0 there)
    R = 2.0
    u = np.linspace(0.1, 0.5, k) * (1.0 if k > 1 else 2.0)
    q = R**2 - u @ u
    g = u / np.sqrt(q)
    A = np.eye(k) / np.sqrt(q) + np.outer(u, u) / q**1.5
    c = graph_curvature(A, g)
    np.testing.assert_allclose(c.principal, np.full(k, 1 / R), rtol=1e-12)
    assert c.gauss_kronecker == pytest.approx(R**-k, rel=1e-12)
    assert c.scalar == pytest.approx(k * (k - 1) / R**2, rel=1e-12, abs=1e-15)
    assert c.mean == pytest.approx(1 / R, rel=1e-12)


def test_saddle_and_scale():
    A = np.diag([2.0, -3.0])
    c = graph_curvature(A, scale=0.5)
    np.testing.assert_allclose(c.principal, [1.0, -1.5])
    assert c.gauss_kronecker == pytest.approx(-1.5) and c.scalar == pytest.approx(-3.0)
    # at a critical point the scalar curvature is (tr sA)² − ‖sA‖_F² (SPEC §8)
    A = np.array([[1.0, 0.4, 0.2], [0.4, -2.0, 0.1], [0.2, 0.1, 0.5]])
    assert graph_curvature(A).scalar == pytest.approx(np.trace(A) ** 2 - np.sum(A * A))


def test_gauss_kronecker_closed_form():
    rng = np.random.default_rng(0)
    for k in (2, 3):
        M = rng.standard_normal((k, k))
        A, g, s = M + M.T, rng.standard_normal(k), 0.7
        W = np.sqrt(1 + s**2 * g @ g)
        assert graph_curvature(A, g, s).gauss_kronecker == pytest.approx(s**k * np.linalg.det(A) / W ** (k + 2))


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        graph_curvature(np.array([[np.nan, 0], [0, 1.0]]))

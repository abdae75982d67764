"""Hessian figures against exact references (SPEC §7). Tolerances are stated per assertion."""

import numpy as np
import pytest
import torch

from landscape.curvature.slice_geometry import graph_curvature
from landscape.hessian.density import hessian_density
from landscape.hessian.reference import (
    exact_hessian,
    hutchinson_trace,
    power_iteration,
    pyhessian_top_eigenvalues,
    pyhessian_trace,
)
from landscape.hessian.spectrum import (
    HessianProblem,
    eigen_directions,
    extreme_eigenvalues,
    lanczos_eigen,
    projected_hessian,
)

from ..references import Quadratic, digits_subset, dummy_data, quadratic_loss, small_mlp, spectrum_matrix

EIGS = np.array([9.0, 5.0, 3.0, 2.5, 1.0, 0.5, 0.1, -0.2, -1.0, -4.0] + [0.3] * 10)  # P = 20, saddle


@pytest.fixture(scope="module")
def quad():
    Q = spectrum_matrix(EIGS, seed=1)
    c = np.random.default_rng(2).standard_normal(len(EIGS))
    theta = c + 0.1 * np.random.default_rng(3).standard_normal(len(EIGS))  # off the critical point
    return Quadratic(Q, c, theta), Q, c, theta


def test_quadratic_every_figure_exact(quad):
    model, Q, c, theta = quad
    prob = HessianProblem(model, dummy_data(), quadratic_loss, batch_size=3)  # 4 uneven batches
    np.testing.assert_allclose(
        exact_hessian(model, dummy_data(), quadratic_loss, batch_size=3), Q, rtol=1e-10, atol=1e-12
    )
    v = np.random.default_rng(4).standard_normal(len(EIGS))
    np.testing.assert_allclose(prob.hvp(torch.from_numpy(v)).numpy(), Q @ v, rtol=1e-10)
    lmax, lmin, _ = extreme_eigenvalues(prob, tol=1e-10)
    assert lmax == pytest.approx(9.0, rel=1e-5) and lmin == pytest.approx(-4.0, rel=1e-5)
    top5 = lanczos_eigen(prob, 5, "LA", tol=1e-10).eigenvalues
    np.testing.assert_allclose(top5, [9, 5, 3, 2.5, 1], rtol=1e-5)
    bottom2 = lanczos_eigen(prob, 2, "SA", tol=1e-10).eigenvalues
    np.testing.assert_allclose(bottom2, [-4, -1], rtol=1e-5)
    # SLQ with as many steps as dimensions recovers the spectrum exactly; first moment = tr/P for each start
    dens = hessian_density(prob, n_starts=3, steps=20, seed=0)
    for nodes, w in zip(dens.nodes, dens.weights):
        assert w.sum() == pytest.approx(1.0, abs=1e-10)
        assert np.abs(nodes[w > 1e-8][:, None] - EIGS[None]).min(axis=1).max() < 1e-6  # every node is an eigenvalue
    tr, se = hutchinson_trace(prob, 400, seed=0)
    assert abs(tr - EIGS.sum()) < 3 * se


def test_quadratic_projected_slice_curvature(quad):
    model, Q, c, theta = quad
    prob = HessianProblem(model, dummy_data(), quadratic_loss)
    rng = np.random.default_rng(5)
    for _ in range(3):
        D = rng.standard_normal((2, len(EIGS)))
        A, g, L0 = projected_hessian(prob, torch.from_numpy(D))
        A_true = D @ Q @ D.T
        g_true = D @ Q @ (theta - c)
        np.testing.assert_allclose(A, A_true, rtol=1e-5)
        np.testing.assert_allclose(g, g_true, rtol=1e-5)
        for s in (1.0, 0.3):
            got, want = graph_curvature(A, g, s), graph_curvature(A_true, g_true, s)
            np.testing.assert_allclose(got.principal, want.principal, rtol=1e-5)
            assert got.scalar == pytest.approx(want.scalar, rel=1e-5)
            assert got.scalar == pytest.approx(2 * got.gauss_kronecker, rel=1e-9)  # k = 2: R = 2K


def test_quadratic_pyhessian_largest_magnitude(quad):
    model, *_ = quad
    eigs = pyhessian_top_eigenvalues(model, dummy_data(), k=3, loss_fn=quadratic_loss, tol=1e-10, max_iter=5000)
    np.testing.assert_allclose(eigs, [9.0, 5.0, -4.0], rtol=1e-4)  # largest |λ|: −4 before 3


@pytest.fixture(scope="module")
def mlp_and_exact():
    model = small_mlp()
    data = digits_subset(300)
    H = exact_hessian(model, data)
    return model, data, H, np.linalg.eigvalsh(H)


def test_mlp_lanczos_against_exact(mlp_and_exact):
    model, data, H, w = mlp_and_exact
    assert H.shape == (1210, 1210)
    prob = HessianProblem(model, data, batch_size=128)  # 3 batches, weights 128/300, 128/300, 44/300
    lmax, lmin, _ = extreme_eigenvalues(prob, tol=1e-10)
    assert lmax == pytest.approx(w[-1], rel=1e-6)
    assert lmin == pytest.approx(w[0], rel=1e-4, abs=1e-8)
    assert w[0] < 0  # the trained tanh net's Hessian is indefinite: λmin is a real test
    top5 = lanczos_eigen(prob, 5, "LA", tol=1e-10).eigenvalues
    np.testing.assert_allclose(top5, w[::-1][:5], rtol=1e-6)


def test_mlp_trace_and_density(mlp_and_exact):
    model, data, H, w = mlp_and_exact
    prob = HessianProblem(model, data)
    tr, se = hutchinson_trace(prob, 200, seed=1)
    assert abs(tr - np.trace(H)) < 3 * se
    # first moment of each start = vᵀHv/P for its own Rademacher v, exactly (Lanczos: α₁ = vᵀHv/‖v‖²)
    dens = hessian_density(prob, n_starts=40, steps=8, seed=2)
    rng = np.random.default_rng(2)
    for nodes, wt in zip(dens.nodes, dens.weights):
        v = rng.choice([-1.0, 1.0], size=H.shape[0])
        assert float(np.sum(nodes * wt)) == pytest.approx(v @ H @ v / H.shape[0], rel=1e-6)
    per_start = [float(np.sum(n * wt)) for n, wt in zip(dens.nodes, dens.weights)]
    se_m = np.std(per_start, ddof=1) / np.sqrt(len(per_start))
    assert abs(dens.moment(1) - np.trace(H) / H.shape[0]) < 3 * se_m  # unbiased for tr/P
    # the largest Ritz value converges to λmax within 60 steps
    dens = hessian_density(prob, n_starts=2, steps=60, seed=3)
    assert max(n.max() for n in dens.nodes) == pytest.approx(w[-1], rel=1e-6)
    grid = np.linspace(w[0] - 1, w[-1] + 1, 2000)
    mass = np.trapezoid(dens.density(grid), grid)
    assert mass == pytest.approx(1.0, rel=1e-3)


def test_mlp_pyhessian_guarded(mlp_and_exact):
    model, data, H, w = mlp_and_exact
    absw = np.sort(np.abs(w))[::-1]
    # a stale graph in p.grad would double PyHessian's answer: the wrapper clears it
    loss = torch.nn.functional.cross_entropy(model(data.x), data.y)
    loss.backward(create_graph=True)
    model.train()
    rng_before = torch.random.get_rng_state()
    top = pyhessian_top_eigenvalues(model, data, k=1, tol=1e-8)
    assert top[0] == pytest.approx(absw[0], rel=1e-5)
    assert model.training, "train/eval mode must be restored"
    assert torch.equal(torch.random.get_rng_state(), rng_before), "global RNG must not be consumed"
    tr, se = pyhessian_trace(model, data, tol=1e-6, max_iter=100)
    assert abs(tr - np.trace(H)) < 3 * se
    for p in model.parameters():
        p.grad = None


def test_power_iteration_baseline(quad):
    model, *_ = quad
    prob = HessianProblem(model, dummy_data(), quadratic_loss)
    lam, n = power_iteration(prob, tol=1e-10)
    assert lam == pytest.approx(9.0, rel=1e-4) and n > 1
    lam_min, _ = power_iteration(prob, tol=1e-12, shift=9.0)
    assert lam_min == pytest.approx(-4.0, rel=1e-4)


def test_hvp_under_no_grad_and_float32():
    model = small_mlp(double=False)
    data = digits_subset(200, double=False)
    prob = HessianProblem(model, data)
    v = torch.randn(prob.num_params)
    with torch.no_grad():
        hv = prob.hvp(v)
    H = exact_hessian(model, data)
    np.testing.assert_allclose(hv.numpy(), H @ v.numpy(), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("reuse", [True, False])
def test_both_hvp_paths_against_the_exact_hessian(mlp_and_exact, reuse):
    """The reused gradient graph and the per-product recomputation give the exact H v; the reused graph is rebuilt
    after the weights change in place (as sampling and preserved_state do), so it never answers for stale weights."""
    model, data, H, _ = mlp_and_exact
    prob = HessianProblem(model, data, batch_size=128, reuse_graph=reuse)
    assert ("reused" in prob.path) == reuse
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = rng.standard_normal(H.shape[0])
        hv = prob.hvp(torch.from_numpy(v)).double().numpy()
        np.testing.assert_allclose(hv, H @ v, rtol=1e-4, atol=1e-5 * np.abs(H @ v).max())
    with torch.no_grad():
        saved = [p.detach().clone() for p in model.parameters()]
        for p in model.parameters():
            p.mul_(1.1)
    try:
        v = torch.from_numpy(rng.standard_normal(H.shape[0]))
        fresh = HessianProblem(model, data, batch_size=128, reuse_graph=False).hvp(v)
        np.testing.assert_allclose(prob.hvp(v).numpy(), fresh.numpy(), rtol=1e-4, atol=1e-6)
    finally:
        with torch.no_grad():
            for p, s in zip(model.parameters(), saved):
                p.copy_(s)


def test_hvp_path_is_chosen_from_measured_memory(mlp_and_exact, monkeypatch):
    """The reused graphs' memory is measured on one chunk (saved tensors and the gradient, at least the chunk's
    inputs, which the first layer saves), times the chunks; the chunks whose graphs fit in the budget are reused and
    the rest recomputed, and every mix gives the exact H v."""
    import landscape.hessian.spectrum as hessian

    model, data, H, _ = mlp_and_exact
    prob = HessianProblem(model, data, batch_size=75)
    assert prob.n_chunks == 4 and prob.reuse_graph  # a small MLP's graph fits the budget
    per_chunk = prob.graph_bytes() // 4
    assert per_chunk >= 75 * data.x[0].numel() * data.x.element_size() + prob.num_params * 8
    assert all(p.grad is None for p in model.parameters())
    v = np.random.default_rng(3).standard_normal(H.shape[0])
    for fits, path in [(0, "per product"), (2, "reused for 2 of 4"), (4, "built once and reused")]:
        monkeypatch.setattr(hessian, "GRAPH_BUDGET", max(1000, fits * per_chunk + per_chunk // 2) if fits else 1000)
        prob = HessianProblem(model, data, batch_size=75)
        assert prob.reuse_chunks == fits and path in prob.path
        hv = prob.hvp(torch.from_numpy(v)).double().numpy()
        np.testing.assert_allclose(hv, H @ v, rtol=1e-4, atol=1e-5 * np.abs(H @ v).max())


def test_shared_krylov_spectrum_against_exact(mlp_and_exact):
    """One budget for every spectral number (issue 15): each within its stated accuracy of the exact Hessian."""
    from landscape.hessian.krylov_spectrum import estimate_spectrum

    model, data, H, w = mlp_and_exact
    prob = HessianProblem(model, data)
    est = estimate_spectrum(prob, top_k=5, tol=1e-6, density_starts=3, density_steps=30, trace_probes=40, seed=4)
    assert all(est.converged.values()) and not est.warnings
    assert est.lambda_max == pytest.approx(w[-1], rel=1e-6)
    assert est.lambda_min == pytest.approx(w[0], rel=1e-6)
    np.testing.assert_allclose(est.top, w[::-1][:5], rtol=1e-6)
    for name, exact in (("lambda_max", w[-1]), ("lambda_min", w[0])):  # the stated bounds hold (float64 model)
        assert abs(getattr(est, name) - exact) <= est.errors[name] + 1e-9 * abs(exact)
    assert abs(est.trace - np.trace(H)) < 3 * est.trace_se
    plain_se = np.sqrt(2 * (np.sum(H**2) - np.sum(np.diag(H) ** 2)) / est.trace_probes)  # Rademacher Hutchinson
    assert est.trace_se < 0.5 * plain_se  # deflation by the Krylov basis halves the error at least
    n = est.n_hvp
    assert n["total"] == prob.n_hvp == n["extremes_run"] + n["density"] + n["trace"]
    assert n["lambda_max"] <= n["top_k"] <= n["extremes_run"] and n["lambda_min"] <= n["extremes_run"]
    assert n["density"] == 2 * 30  # the first SLQ start is the extremes run itself
    assert len(est.density.nodes) == 3 and all(abs(wt.sum() - 1) < 1e-10 for wt in est.density.weights)


def test_lanczos_relation_and_free_trace_probe(mlp_and_exact):
    """H (Qᵀc) from the Lanczos relation, and the product-free deflated probe, equal their direct forms."""
    from landscape.hessian.krylov_spectrum import deflated_probe, extremes_run, rademacher

    model, data, H, w = mlp_and_exact
    prob = HessianProblem(model, data)
    run = extremes_run(prob, 2, 1, tol=1e-5, seed=0)
    assert run.Q.shape == (run.steps, H.shape[0]) and run.steps == prob.n_hvp
    np.testing.assert_allclose(run.Q @ run.Q.T, np.eye(run.steps), atol=1e-10)
    c = np.random.default_rng(0).standard_normal(run.steps)
    relation = run.Q.T @ run.t_times(c) + run.beta[-1] * c[-1] * run.q_next  # H Qᵀ = Qᵀ T + β_m q_m e_mᵀ
    np.testing.assert_allclose(relation, H @ (run.Q.T @ c), rtol=1e-8, atol=1e-10)
    g = rademacher(H.shape[0], np.random.default_rng(1))
    gp = g - run.Q.T @ (run.Q @ g)
    exact = gp @ H @ gp
    assert deflated_probe(run, g, hg=H @ g) == pytest.approx(exact, rel=1e-8)
    assert deflated_probe(run, g, problem=prob) == pytest.approx(exact, rel=1e-8)


def test_shared_spectrum_reports_what_missed_its_tolerance(mlp_and_exact):
    from landscape.hessian.krylov_spectrum import estimate_spectrum

    model, data, H, w = mlp_and_exact
    est = estimate_spectrum(HessianProblem(model, data), top_k=3, tol=1e-10, density_starts=1, steps=4)
    assert not any(est.converged.values()) and len(est.warnings) == 3
    assert est.n_hvp["extremes_run"] == 4 and est.errors["lambda_min"] > 1e-10 * abs(est.lambda_min)


def test_shared_spectrum_with_a_repeated_eigenvalue(quad):
    """EIGS holds 0.3 ten times: Lanczos breaks down after the 11 distinct values, and the trace must still count
    every copy (the probes see the part of the space the run missed), the extremes stay exact."""
    from landscape.hessian.krylov_spectrum import estimate_spectrum

    model, *_ = quad
    prob = HessianProblem(model, dummy_data(), quadratic_loss)
    est = estimate_spectrum(prob, top_k=3, tol=1e-8, density_starts=1, trace_probes=30, trace_rtol=0.0)
    assert est.lambda_max == pytest.approx(9.0, rel=1e-8) and est.lambda_min == pytest.approx(-4.0, rel=1e-8)
    np.testing.assert_allclose(est.top, [9, 5, 3], rtol=1e-8)
    assert est.n_hvp["extremes_run"] < len(EIGS) and est.trace_probes == 30
    assert 0 < est.trace_se and abs(est.trace - EIGS.sum()) < 3 * est.trace_se  # was tr T alone, SE 0: 16.2


@pytest.mark.parametrize(
    "kind, eigs, want",
    [
        ("hessian-top", [5.0, 5.0, 2.0, 1.0, 0.5, -1.0], [5.0, 5.0, 2.0]),  # a double top eigenvalue
        ("hessian-top", [4.0, 4.0, 4.0, 1.0, 0.5, -2.0], [4.0, 4.0, 4.0]),  # a triple one, the whole top-3
        ("hessian-bottom", [3.0, 1.0, 0.5, -2.0, -2.0, -2.0], [-2.0, -2.0]),
        ("hessian-mixed", [3.0, 3.0, 1.0, 0.2, -1.5, -1.5], [3.0, 3.0, -1.5, -1.5]),
    ],
)
def test_eigen_directions_span_a_repeated_eigenvalue(kind, eigs, want):
    """A single-vector Lanczos run sees a repeated eigenvalue once: the directions must still be k orthonormal
    eigenvectors with the k wanted eigenvalues (an orthonormal basis of the repeated eigenvalue's space)."""
    Q = spectrum_matrix(np.array(eigs), seed=3)
    model = Quadratic(Q, np.zeros(len(eigs)), np.zeros(len(eigs)))
    prob = HessianProblem(model, dummy_data(), quadratic_loss)
    res = eigen_directions(prob, kind, len(want), tol=1e-8)
    V = res.eigenvectors
    assert V.shape == (len(want), len(eigs))
    np.testing.assert_allclose(np.sort(res.eigenvalues), np.sort(want), atol=1e-6)
    np.testing.assert_allclose(V @ V.T, np.eye(len(want)), atol=1e-6)
    np.testing.assert_allclose(V @ Q, res.eigenvalues[:, None] * V, atol=1e-6)  # each row an eigenvector


def test_batch_spectrum_is_each_batch_exact_hessian_extremes():
    """λmax/λmin per mini-batch against the dense Hessian of each batch's mean loss (SPEC §7), to the Lanczos
    tolerance; the batches scatter around the full subset's λmax; bad counts are refused."""
    from landscape.evaluation import EvalSubset
    from landscape.hessian.batch_spectrum import batch_spectrum

    model, data = small_mlp(), digits_subset(300)
    bs = batch_spectrum(model, data, batch_size=100)
    assert len(bs.lambda_max) == 3 and bs.n_hvp > 0
    for b in range(3):
        rows = slice(100 * b, 100 * (b + 1))
        w = np.linalg.eigvalsh(exact_hessian(model, EvalSubset(data.x[rows], data.y[rows], data.indices[rows], "b")))
        assert bs.lambda_max[b] == pytest.approx(w[-1], rel=1e-4) and bs.lambda_min[b] == pytest.approx(w[0], abs=1e-4)
    full = np.linalg.eigvalsh(exact_hessian(model, data))[-1]
    assert bs.lambda_max.min() <= full * 1.5 and bs.lambda_max.max() >= full / 1.5
    assert bs.summary()["batches"] == 3
    with pytest.raises(ValueError, match="batches"):
        batch_spectrum(model, data, batch_size=100, batches=4)  # only 3 full batches


def test_an_analysis_gives_the_batch_spectrum_its_csv_and_histogram(tmp_path):
    """``batch_spectrum=50`` on 200 examples: four batches, each batch's λmax equal to its own dense Hessian's, the
    summary in results.json, batch_spectrum.csv and the histogram figure; a batch larger than the subset is a
    warning, not a failure."""
    import csv
    import json

    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.report.figures import analysis_figures

    model, data = small_mlp(), digits_subset(200)
    o = AnalysisOptions(batch_spectrum=50, curvature=False, grid_points=0, density_starts=0, tol=1e-8)
    r = analyze_model(model, data, options=o)
    assert r.batches is not None and len(r.batches.lambda_max) == 4
    first = np.linalg.eigvalsh(exact_hessian(model, data.head(50)))
    assert r.batches.lambda_max[0] == pytest.approx(first[-1], rel=1e-6)
    assert r.hessian_hvps["batch_spectrum"] == r.batches.n_hvp
    # the batches partition the subset, so H is their mean and λmax (convex in H) is at most the batches' mean λmax
    assert r.scalars["lambda_max"] <= r.batches.lambda_max.mean() * (1 + 1e-6)
    assert r.scalars["lambda_min"] >= r.batches.lambda_min.mean() * (1 + 1e-6) - 1e-9
    r.save(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "results.json").read_text())["batch_spectrum"]["batches"] == 4
    rows = list(csv.DictReader(open(tmp_path / "run" / "batch_spectrum.csv")))
    assert len(rows) == 4 and float(rows[0]["lambda_max"]) == pytest.approx(first[-1], rel=1e-6)
    assert "batch_spectrum.png" in {p.name for p in analysis_figures(r, tmp_path / "run", "mlp")}
    big = analyze_model(model, data, options=AnalysisOptions(batch_spectrum=500, curvature=False, grid_points=0))
    assert big.batches is None and any("exceed the 200 evaluation examples" in w for w in big.warnings)
    with pytest.raises(ValueError, match="drop --no-hessian"):
        AnalysisOptions(batch_spectrum=50, hessian=False)

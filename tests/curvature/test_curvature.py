"""Curvature estimators (SPEC §5–6) on surfaces with known curvature sign, invariances and input errors."""

import numpy as np
import pytest

from landscape.curvature.diffusion import comparison, estimate_intrinsic_dim, laziness
from landscape.curvature.graphs import PointCloudError, knn_graph, transition_matrix
from landscape.curvature.ollivier import ollivier_ricci
from landscape.validation import manifolds as mf

N = 2000


@pytest.fixture(scope="module")
def surfaces():
    return {
        "sphere": mf.sphere(N, 2, seed=0),
        "saddle": mf.quadric_graph(N, np.diag([1.0, -1.0]), seed=0),
        "plane": mf.quadric_graph(N, np.zeros((2, 2)), seed=0),
    }


def test_comparison_sign_general_clouds(surfaces):
    k = {name: comparison(m.X, "tangent", [0], intrinsic_dim=2)[0] for name, m in surfaces.items()}
    assert k["sphere"] > 0 > k["saddle"]
    assert abs(k["plane"]) < 1e-9  # the flat copy of a plane is the plane itself


@pytest.mark.parametrize("d", [3, 4])
def test_comparison_sign_in_higher_dimensions(d):
    """The published forms fail here (SPEC §5c); the exponential-chart flat copy reads the right sign."""
    n = 2000 * (d - 1)
    for seed in (0, 1):
        sphere, saddle = (mf.sadspheres(kind, n, d, seed=seed) for kind in ("sphere", "saddle"))
        k_sphere = comparison(sphere.X, "tangent", [0], intrinsic_dim=d)[0]
        k_saddle = comparison(saddle.X, "tangent", [0], intrinsic_dim=d)[0]
        assert k_sphere > 0 > k_saddle, (seed, k_sphere, k_saddle)


def test_comparison_sign_loss_graph(surfaces):
    sad, plane = surfaces["saddle"], surfaces["plane"]
    assert comparison(sad.X, sad.flat, [0])[0] < 0
    assert abs(comparison(plane.X, plane.flat, [0])[0]) < 1e-9


@pytest.mark.parametrize("d", [2, 3])
def test_comparison_sign_loss_graph_bowls_and_saddles(d):
    """Random quadric graphs (eigenvalue magnitudes 0.5..2): the plain u copy misreads some bowls (SPEC §5c); the
    per-query exponential chart built from u reads every sign right."""
    rng = np.random.default_rng(7)
    for i in range(4):
        bowl = i % 2 == 0
        m = mf.quadric_graph(2000 * (d - 1), mf.random_quadric(d, bowl, rng), seed=900 + i)
        assert (comparison(m.X, m.flat, [0])[0] > 0) == bowl, (d, i)


def test_query_rows_match_full_run(surfaces):
    sad = surfaces["saddle"]
    q = np.array([0, 5, 17])
    full = comparison(sad.X, sad.flat, t=4)
    np.testing.assert_allclose(comparison(sad.X, sad.flat, q, t=4), full[q], rtol=1e-12)


def test_distances_differ_on_saddle_and_loss_graphs_keep_their_chart_distance(surfaces):
    sad = surfaces["saddle"]
    e = comparison(sad.X, "tangent", [0], distance="euclidean", intrinsic_dim=2)[0]
    assert np.isfinite(e) and e != comparison(sad.X, "tangent", [0], distance="graph", intrinsic_dim=2)[0]
    with pytest.raises(ValueError, match="exact chart"):
        comparison(sad.X, sad.flat, [0], distance="graph")


def test_laziness_higher_where_curvature_is_positive():
    # laziness is only comparable within one graph (SPEC §5a): on a torus the outer rim (K > 0) is lazier
    T = mf.torus(N, seed=0)
    lz = laziness(T.X)
    assert np.all((lz >= 0) & (lz <= 1))
    assert lz[T.curvature > 0].mean() > lz[T.curvature < 0].mean()


def test_ollivier_positive_on_sphere(surfaces):
    assert ollivier_ricci(surfaces["sphere"].X, k=20, queries=np.arange(100)).mean() > 0


@pytest.mark.parametrize("estimator", ["comparison-u", "comparison-tangent", "laziness", "ollivier"])
def test_permutation_invariance(estimator):
    m = mf.quadric_graph(600, np.diag([1.0, -0.5]), seed=3)
    perm = np.random.default_rng(0).permutation(len(m.X))
    inv = np.argsort(perm)
    q = np.array([0, 10, 20])
    f = {
        "comparison-u": lambda X, U, qq: comparison(X, U, qq, t=6),
        "comparison-tangent": lambda X, U, qq: comparison(X, "tangent", qq, t=6, intrinsic_dim=2),
        "laziness": lambda X, U, qq: laziness(X, t=4)[qq],
        "ollivier": lambda X, U, qq: ollivier_ricci(X, k=8, queries=qq),
    }[estimator]
    a = f(m.X, m.flat, q)
    b = f(m.X[perm], m.flat[perm], inv[q])
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_transition_matrix_is_stochastic_and_sparse():
    X = mf.sphere(500, 2, seed=1).X
    g = knn_graph(X, 12)
    for kernel in ("global", "adaptive"):
        P = transition_matrix(g, kernel, bandwidth=2 * g.median_nn(), sigma_k=10, alpha=1.0)
        np.testing.assert_allclose(np.asarray(P.sum(1)).ravel(), 1.0, rtol=1e-12)
        assert P.nnz <= 500 * (2 * 12 + 1)


def test_intrinsic_dimension():
    assert estimate_intrinsic_dim(mf.sphere(3000, 2, seed=0).X) == 2
    assert estimate_intrinsic_dim(mf.sphere(3000, 3, seed=0).X) == 3


@pytest.mark.parametrize(
    "X,k,message",
    [
        (np.random.default_rng(0).standard_normal((5, 3)), 3, "need at least 10"),
        (np.vstack([np.ones((2, 3)), np.random.default_rng(0).standard_normal((30, 3))]), 5, "duplicate"),
        (np.vstack([[np.nan, 0, 0], np.random.default_rng(0).standard_normal((30, 3))]), 5, "NaN"),
        (np.random.default_rng(0).standard_normal((20, 3)), 20, "lower k"),
    ],
)
def test_bad_point_clouds(X, k, message):
    for fn in (
        lambda: comparison(X, "tangent", k=k, intrinsic_dim=2),
        lambda: laziness(X, k=k),
        lambda: ollivier_ricci(X, k=k),
    ):
        with pytest.raises(PointCloudError, match=message):
            fn()


def test_bad_options(surfaces):
    m = surfaces["plane"]
    with pytest.raises(PointCloudError, match="row for row"):
        comparison(m.X, m.flat[:-1])
    with pytest.raises(PointCloudError, match="query indices"):
        comparison(m.X, m.flat, [N + 5])
    with pytest.raises(ValueError, match="flat must be"):
        comparison(m.X, "sphere")


def test_manifold_ground_truth():
    T = mf.torus(4000, seed=0)
    th = np.arctan2(T.X[:, 2], np.hypot(T.X[:, 0], T.X[:, 1]) - 2.0)
    np.testing.assert_allclose(T.curvature, 2 * np.cos(th) / (2 + np.cos(th)), rtol=1e-9)
    # area-uniform: the outer half (cos θ > 0) holds (π R + 2 r)/(2 π R) of the area = 0.659 for R=2, r=1
    assert abs((np.cos(th) > 0).mean() - (np.pi * 2 + 2) / (2 * np.pi * 2)) < 0.03
    E = mf.ellipsoid(2000, seed=0)
    np.testing.assert_allclose((E.X**2 / np.array([9.0, 4.0, 1.0])).sum(1), 1.0)
    H = mf.hyperboloid(2000, seed=0)
    np.testing.assert_allclose(H.X[:, 0] ** 2 + H.X[:, 1] ** 2 - H.X[:, 2] ** 2, 1.0)
    assert np.all(H.curvature < 0) and np.all(E.curvature > 0)
    Q = mf.quadric_graph(500, np.diag([1.0, -2.0]), seed=0)
    assert Q.curvature[0] == pytest.approx((1 - 2) ** 2 - (1 + 4))  # (tr A)² − ‖A‖²_F at the origin
    S = mf.sphere(100, 3, radius=2.0)
    np.testing.assert_allclose(np.linalg.norm(S.X, axis=1), 2.0)
    assert S.curvature[0] == pytest.approx(3 * 2 / 4)


def test_tail_truncation_changes_little():
    from landscape.curvature import graphs

    m = mf.quadric_graph(1500, np.diag([1.0, -1.0]), seed=2)
    q = np.arange(0, 1500, 50)
    g = knn_graph(m.X, 15)
    P = transition_matrix(g, "global", 3 * g.median_nn(), alpha=1.0)
    exact = np.vstack([r.toarray() for _, r in graphs.diffuse(P, q, 16, drop=0.0)])
    cut = np.vstack([r.toarray() for _, r in graphs.diffuse(P, q, 16)])
    assert np.abs(exact - cut).sum(1).max() < 1e-8  # dropped mass per row


def test_validation_benchmark_rows(tmp_path):
    from landscape.report.plots import estimate_vs_truth
    from landscape.validation.benchmarks import COLUMNS, Config, run, target_rows

    cfg = Config(
        n_surface=400, n_queries=25, clouds=1, sad_dims=(2,), quad_dims=(2,), lg_dims=(2,), lg_ns=(300,), lg_clouds=2
    )
    cfg.robust_clouds, cfg.rough_ns, cfg.rough_clouds = 1, (300, 600), 1
    rows = run(cfg, progress=lambda _line: None, do_sweep=False)
    assert rows and all(set(r) == set(COLUMNS) for r in rows)
    metrics = {(r["benchmark"].split(":")[0], r["metric"]) for r in rows}
    assert {("sadspheres", "sign_accuracy"), ("torus", "pearson"), ("quadric-sign", "sign_accuracy")} <= metrics
    torus = [r for r in rows if r["benchmark"] == "torus" and r["metric"] == "pearson"]
    assert all(r["anchor"] == 0.979 for r in torus)
    assert {r["estimator"] for r in torus} >= {"comparison-tangent", "tangent-field", "laziness"}
    assert any(r["metric"] == "sign_margin" for r in rows)
    assert {("lossgraph-quadric", "sign_accuracy"), ("noisy-saddle-R10", "sign_accuracy")} <= metrics
    wanted = {("rough", "abs_rel_error"), ("rough", "sign_right"), ("lossgraph-quadric-size", "worst_rel_error")}
    assert wanted <= metrics
    targets = {t["target"]: t for t in target_rows(rows)}
    assert targets["SadSpheres d=2..4 sign accuracy (tangent), worst"]["status"] in ("PASS", "FAIL")
    assert targets["trained-net slices: sign at θ*"]["status"] == "n/a"  # no nets in this run
    estimate_vs_truth(cfg.scatter, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_validate_cli_rejects_file_as_out(tmp_path, capsys):
    from landscape.cli import cli

    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit) as exc:
        cli.main(["validate", "--quick", "--out", str(f)])
    assert exc.value.code == 2 and "is a file" in capsys.readouterr().err


def test_validation_sweep_rows():
    from landscape.validation.benchmarks import Config, sweep

    cfg = Config(
        n_surface=400, clouds=1, sweep_ts=(10,), sweep_bandwidths=(3.0,), sweep_patches=(200,), sweep_cs=(0.3,)
    )
    sweep(cfg, progress=lambda _line: None)
    by = {(r["benchmark"], r["estimator"], r["metric"]): r["value"] for r in cfg.rows}
    assert ("sweep:sadspheres:d3:patch200:c0.3", "comparison-tangent", "sign_margin") in by
    assert 0 <= by[("sweep:quadric-sign:d2:t10:bw3.0", "comparison-u", "sign_accuracy")] <= 1
    r = by[("sweep:torus:c0.3", "tangent-field", "pearson")]
    assert 0.5 < r <= 1  # 400 points: coarse, but the field still follows the tube

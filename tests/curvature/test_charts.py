"""The batched chart machinery behind the comparison form (SPEC §5b): each piece against a direct reference."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from landscape.curvature.charts import patch_graph, quadric_charts, walk_w1
from landscape.curvature.graphs import KnnGraph, knn_graph, transition_matrix
from landscape.validation import manifolds as mf


def _patches(X, queries, m):
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=m).fit(X).kneighbors(X[queries], return_distance=False)


@pytest.fixture(scope="module")
def cloud():
    m = mf.sphere(800, 2, seed=3)
    g = knn_graph(m.X, 10)
    P = _patches(m.X, np.array([0, 5, 17]), 120)
    return m.X, g, P


def test_patch_graph_is_the_induced_subgraph(cloud):
    X, g, P = cloud
    indptr, indices, lengths = patch_graph(g.adjacency, P)
    got = sp.csr_matrix((lengths, indices, indptr), shape=(P.size, P.size)).toarray()
    want = sp.block_diag([g.adjacency[p][:, p] for p in P]).toarray()
    np.testing.assert_array_equal(got, want)
    # the binary-search path (large n) gives the same structure
    i2, j2, l2 = patch_graph(g.adjacency, P, max_map=0)
    np.testing.assert_array_equal(i2, indptr)
    np.testing.assert_array_equal(j2, indices)
    np.testing.assert_array_equal(l2, lengths)


@pytest.mark.parametrize("distance", ["euclidean", "graph"])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_walk_matches_dense_transition_matrix(cloud, distance, alpha):
    """W1 of the batched walk equals e_0 Pᵗ · d with P from :func:`transition_matrix` on each patch alone."""
    X, g, P = cloud
    m, t, sigma = P.shape[1], 5, 2.5 * g.median_nn()
    indptr, indices, lengths = patch_graph(g.adjacency, P)
    radius = np.linalg.norm(X[P] - X[P[:, :1]], axis=2).ravel()
    got = walk_w1(indptr, indices, lengths, radius, m, t, sigma, alpha, distance)
    for b, p in enumerate(P):
        A = g.adjacency[p][:, p].tocoo()
        sub = KnnGraph(np.zeros((m, 1), int), np.zeros((m, 1)))
        sub.__dict__["adjacency"] = A.tocsr()  # the patch's own edges, as a KnnGraph would hold them
        T = transition_matrix(sub, "global", sigma, alpha=alpha).toarray()
        walk = np.linalg.matrix_power(T, t)[0]
        if distance == "euclidean":
            dist = radius[b * m : (b + 1) * m]
        else:
            dist = dijkstra(A.tocsr(), directed=False, indices=0)
            dist[~np.isfinite(dist)] = 0.0
        assert got[b] == pytest.approx(walk @ dist, rel=1e-12)


def test_chart_keeps_radii_and_is_third_order_normal_coordinates():
    """On z = ½uᵀAu the chart is v = u + ⅙(Au)(uᵀAu) (geodesic normal coordinates to third order), radii kept:
    the error left is fifth order (measured 2e-9 at patch half-width 0.05, against 2e-5 for the plain chart)."""
    rng = np.random.default_rng(0)
    A = np.array([[1.0, 0.3], [0.3, -0.6]])
    errors = []
    for s in (0.1, 0.05):
        u = rng.uniform(-s, s, (300, 2))
        u[0] = 0
        local = np.column_stack([u, 0.5 * np.einsum("ni,ij,nj->n", u, A, u)])
        v, cloud = quadric_charts(local[None], 2, 20)
        v = v[0]
        np.testing.assert_allclose(cloud[0], local, atol=1e-4 * s)  # a clean quadric patch is (nearly) its own fit
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), np.linalg.norm(cloud[0], axis=1), rtol=1e-12)
        want = u + np.einsum("ni,n->ni", u @ A, np.einsum("ni,ij,nj->n", u, A, u)) / 6
        r = np.linalg.norm(local, axis=1)
        keep = lambda w, r=r: w * (r / np.maximum(np.linalg.norm(w, axis=1), 1e-300))[:, None]
        want = keep(want)
        Uo, _, Vt = np.linalg.svd(v.T @ want)  # the chart is defined up to a rotation/reflection of R^d
        err, err_plain = np.abs(v @ (Uo @ Vt) - want).max(), np.abs(keep(u) - want).max()
        assert err < 1e-3 * err_plain, (s, err, err_plain)
        errors.append(err)
    assert errors[1] < errors[0] / 16  # fifth order: halving the patch divides the error by ~32


def test_denoised_cloud_keeps_the_surface_edge_lengths():
    """A saddle patch in R^10 with ambient noise σ = 0.003: noise lengthens every short chord (what the walk sees as
    positive curvature); on the fitted surface the nearest-neighbour chords are back near their clean lengths
    (measured 1.55× → 1.15×), and the query's foot, not the noisy query, is the origin."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    u = rng.uniform(-0.3, 0.3, (400, 2))
    u[0] = 0
    clean = np.column_stack([u, 0.5 * (u[:, 0] ** 2 - u[:, 1] ** 2), np.zeros((400, 7))]) @ Q.T
    noisy = clean + 0.003 * rng.standard_normal(clean.shape)
    order = np.argsort(np.linalg.norm(noisy - noisy[0], axis=1))  # a patch lists its points nearest first
    clean, noisy = clean[order][:100], noisy[order]
    _, cloud = quadric_charts((noisy - noisy[0])[None], 2, 20)
    nearest = cKDTree(clean).query(clean, 2)[1][:, 1]

    def inflation(points):  # mean nearest-neighbour chord over its clean length, where the walk goes
        return np.mean(
            np.linalg.norm(points - points[nearest], axis=1) / np.linalg.norm(clean - clean[nearest], axis=1)
        )

    assert inflation(noisy[:100]) > 1.4 and inflation(cloud[0][:100]) < 1.25
    assert np.abs(cloud[0][0]).max() == 0.0


def test_plane_reads_exactly_zero():
    from landscape.curvature.diffusion import comparison

    for d in (2, 3):
        plane = mf.sadspheres("plane", 1500, d, seed=1)
        assert np.abs(comparison(plane.X, "tangent", [0, 3, 9], intrinsic_dim=d)).max() < 1e-12


def test_knn_smooth_is_the_neighbourhood_mean():
    from landscape.curvature.diffusion import knn_smooth

    X = np.column_stack([np.arange(12.0) ** 1.5, np.zeros(12)])  # distinct gaps: no ties among neighbours
    v = np.arange(12.0) ** 2
    got = knn_smooth(X, v, k=3)
    assert got[0] == pytest.approx((0 + 1 + 4) / 3)  # itself and its two nearest
    assert got[11] == pytest.approx((121 + 100 + 81) / 3)
    np.testing.assert_allclose(knn_smooth(X, np.full(12, 2.5), k=5), 2.5)
    with pytest.raises(ValueError, match="one value per point"):
        knn_smooth(X, v[:5])
    with pytest.raises(ValueError, match="k must be at least 1"):
        knn_smooth(X, v, k=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_curvature_field_tracks_the_torus(seed):
    """Gauss curvature of a torus varies from −1 to +⅓ around the tube: the averaged field follows it (measured
    Pearson 0.984–0.986 at 1,500 points; the published best is 0.979)."""
    from scipy.stats import pearsonr

    from landscape.curvature.diffusion import comparison, knn_smooth

    m = mf.torus(1500, seed=seed)
    field = knn_smooth(m.X, comparison(m.X, "tangent", intrinsic_dim=2), 30)
    assert pearsonr(field, m.curvature)[0] > 0.97


def test_analysis_with_the_fewest_samples_still_reads_curvature():
    """20 samples is the documented minimum of ``analyze``; the chart's patch (all samples) must still fit k."""
    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.losses import cross_entropy

    from ..references import digits_subset, small_mlp

    o = AnalysisOptions(n_samples=20, grid_points=5, trace_samples=4, top_k=2, density_starts=1, density_steps=8)
    r = analyze_model(small_mlp(double=False), digits_subset(200, double=False), options=o, loss_fn=cross_entropy)
    assert np.isfinite(r.scalars["dc_comparison"])

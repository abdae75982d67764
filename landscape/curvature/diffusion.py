"""Diffusion curvature of point clouds (SPEC §5): the laziness form (2022) and the comparison form (signed).

Sign convention: positive = bowl/sphere-like, negative = saddle-like (comparison form). The laziness form is
unsigned, in [0, 1], higher = more positive curvature, comparable only within one graph.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy.sparse.csgraph import dijkstra
from sklearn.neighbors import NearestNeighbors

from .charts import chart_comparison, default_patch, walk_steps
from .graphs import KnnGraph, PointCloudError, check_cloud, diffuse, knn_graph, transition_matrix
from .loss_graph import loss_graph_curvature

DISTANCES = ("graph", "euclidean")


def _queries(n: int, queries) -> np.ndarray:
    if queries is None:
        return np.arange(n)
    q = np.atleast_1d(np.asarray(queries, dtype=np.int64))
    if q.size == 0 or q.min() < 0 or q.max() >= n:
        raise PointCloudError(f"query indices must lie in 0..{n - 1}")
    return q


# ------------------------------------------------------------------------------------------------ laziness
def laziness(
    X: np.ndarray,
    t: int = 8,
    k: int = 30,
    sigma_k: int = 20,
    alpha: float = 1.0,
    kernel: str = "adaptive",
    bandwidth: float = 3.0,
    smooth: bool = True,
) -> np.ndarray:
    """2022 diffusion curvature: C(x) = mean over y ∈ N(x) of Pᵗ(x, y) (the published code summed; SPEC §5a).

    N(x) = {y : P(x, y) > τ}, τ = mean over rows of each row's ``sigma_k``-th largest one-step entry; then one
    smoothing step C ← P C. Defaults are the published ones (adaptive kernel, σ_i = 20th-neighbour distance, α = 1,
    t = 8); ``kernel="global"`` uses σ = ``bandwidth`` × median nearest-neighbour distance instead.
    """
    X = check_cloud(X, k)
    g = knn_graph(X, k)
    P = transition_matrix(g, kernel, bandwidth * g.median_nn(), sigma_k=sigma_k, alpha=alpha)
    # τ: mean of each row's sigma_k-th largest entry (self loop included, as in a dense P)
    rows = np.split(P.data, P.indptr[1:-1])
    kth = np.array([np.sort(r)[::-1][min(sigma_k, len(r)) - 1] for r in rows])
    tau = kth.mean()
    C = np.empty(len(X))
    for q, rows_t in diffuse(P, np.arange(len(X)), t):
        nb = P[q].multiply(P[q] > tau)
        mask = nb.tocsr()
        mask.data[:] = 1.0
        counts = np.asarray(mask.sum(1)).ravel()
        C[q] = np.asarray(mask.multiply(rows_t).sum(1)).ravel() / np.maximum(counts, 1)
    return P @ C if smooth else C


# ---------------------------------------------------------------------------------------------- comparison
def walk_distance(X: np.ndarray, g: KnnGraph, P, queries: np.ndarray, t: int, distance: str) -> np.ndarray:
    """W1(δ_x, p^t_x) = Σ_y p^t(x, y) d(x, y) for each query x (SPEC §5b), ground distance ``distance``."""
    out = np.empty(len(queries))
    adj = g.adjacency if distance == "graph" else None
    for pos, (q, rows) in zip(range(0, len(queries), 2048), diffuse(P, queries, t)):
        coo = rows.tocoo()
        if distance == "euclidean":
            d = np.linalg.norm(X[q[coo.row]] - X[coo.col], axis=1)
        else:
            # every t-step walk stays within t edges: a Dijkstra limited to t × the longest edge is exact
            limit = t * float(g.distances.max()) * (1 + 1e-9)
            d = np.empty(len(coo.data))
            for s in range(0, len(q), 256):
                sel = (coo.row >= s) & (coo.row < s + 256)
                dist = dijkstra(adj, directed=False, indices=q[s : s + 256], limit=limit)
                d[sel] = dist[coo.row[sel] - s, coo.col[sel]]
        out[pos : pos + len(q)] = np.bincount(coo.row, weights=coo.data * d, minlength=len(q))
    return out


def global_walk_w1(X, g: KnnGraph, queries, t: int, sigma: float, distance: str, alpha: float) -> np.ndarray:
    """W1(δ_x, p^t_x) of the walk on the whole cloud's kNN graph (one global bandwidth ``sigma``): the baseline
    forms' walk. The tangent and loss-graph forms walk on each query's own patch instead
    (:func:`landscape.curvature.charts.walk_w1`, the same quantity on block graphs)."""
    P = transition_matrix(g, "global", sigma, alpha=alpha)
    return walk_distance(X, g, P, queries, t, distance)


PUBLISHED_T = 16  # the published forms' fixed walk length (cube and plain flat copy)


def _check_common(t: int | None, k: int, bandwidth: float, distance: str | None) -> None:
    if distance is not None and distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    if (t is not None and t < 1) or k < 2 or not bandwidth > 0:
        raise ValueError(f"need t ≥ 1, k ≥ 2, bandwidth > 0; got t={t}, k={k}, bandwidth={bandwidth}")


def tangent_comparison(  # noqa: PLR0913
    X: np.ndarray,
    queries=None,
    *,
    t: int | None = None,
    k: int = 15,
    bandwidth: float = 3.0,
    distance: str | None = None,
    alpha: float = 1.0,
    intrinsic_dim: int | None = None,
    patch: int | None = None,
    denoise: bool = True,
    fit_points: int | None = None,
) -> np.ndarray:
    """The general-cloud form (SPEC §5b, the default): for each query, its ``patch`` nearest points (default
    :func:`landscape.curvature.charts.default_patch`) mapped to R^d (d = ``intrinsic_dim`` or estimated) by a
    discrete exponential map, and the walks on the SAME patch graph with chart vs cloud edge lengths
    (:mod:`landscape.curvature.charts`); ``t`` default :func:`landscape.curvature.charts.walk_steps`. Ground
    distance (None:) ``euclidean`` (from the query, equal on both sides by construction; ``graph`` reads saddles and
    spheres alike more negative, since shortest paths zig-zag more on the curved side). ``denoise``: the cloud side
    walks on each patch's fitted quadric surface, which removes ambient noise; ``fit_points`` points enter that fit
    (default 60 nearest; more average away more noise at the cost of resolution: the noisy torus, σ = 0.25 at
    1,500 points, Pearson 0.49 → 0.84 at 120 but the clean torus 0.981 → 0.973). Only the query rows are
    diffused, so curvature at a few points costs only their patches."""
    _check_common(t, k, bandwidth, distance)
    X = check_cloud(X, k)
    q = _queries(len(X), queries)
    d = intrinsic_dim or estimate_intrinsic_dim(X)
    gX = knn_graph(X, k)  # also the one clear error for duplicate points, before any patch is cut
    m = min(len(X), patch or default_patch(len(X), k, d))
    if m <= 2 * k:
        raise PointCloudError(f"tangent patch of {m} points is too small for k = {k}; raise patch or add samples")
    steps = t or walk_steps(m, k, d)
    return chart_comparison(X, gX, q, d, m, steps, bandwidth, alpha, distance or "euclidean", denoise, fit_points)


def cube_comparison(  # noqa: PLR0913
    X: np.ndarray,
    queries=None,
    *,
    t: int | None = PUBLISHED_T,
    k: int = 15,
    bandwidth: float = 3.0,
    distance: str | None = "graph",
    alpha: float = 1.0,
    intrinsic_dim: int | None = None,
    n_flat: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """The published general-cloud form: the flat side is the origin + n−1 points uniform in [−1, 1]^d, read at
    the origin, ``n_flat`` draws averaged; each side measured in its own median nearest-neighbour distance h."""
    _check_common(t, k, bandwidth, distance)
    t, distance = t or PUBLISHED_T, distance or "graph"
    X = check_cloud(X, k)
    q = _queries(len(X), queries)
    d = intrinsic_dim or estimate_intrinsic_dim(X)
    gX = knn_graph(X, k)
    hx = gX.median_nn()
    rng = np.random.default_rng(seed)
    w_flat = []
    for _ in range(n_flat):
        cube = np.vstack([np.zeros((1, d)), rng.uniform(-1, 1, (len(X) - 1, d))])
        gc = knn_graph(cube, k)
        hc = gc.median_nn()
        w_flat.append(global_walk_w1(cube, gc, np.array([0]), t, bandwidth * hc, distance, alpha)[0] / hc)
    return 1.0 - (global_walk_w1(X, gX, q, t, bandwidth * hx, distance, alpha) / hx) / float(np.mean(w_flat))


def _flat_copy(X: np.ndarray, u: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    X = check_cloud(X, k)
    u = check_cloud(u, k, "flat copy")
    if len(u) != len(X):
        raise PointCloudError(f"flat copy has {len(u)} points, the cloud {len(X)}; they must match row for row")
    return X, u


def flat_copy_comparison(
    X: np.ndarray,
    u: np.ndarray,
    queries=None,
    *,
    t: int | None = PUBLISHED_T,
    k: int = 15,
    bandwidth: float = 3.0,
    distance: str | None = "graph",
    alpha: float = 1.0,
) -> np.ndarray:
    """The plain flat copy (SPEC §5b as published): the sample locations u, row for row with X, separate kNN graphs
    and one bandwidth from u's median NN distance. It reads bowls as saddles too often (SPEC §5d); kept as the
    published baseline for loss graphs."""
    _check_common(t, k, bandwidth, distance)
    t, distance = t or PUBLISHED_T, distance or "graph"
    X, u = _flat_copy(X, u, k)
    q = _queries(len(X), queries)
    gF = knn_graph(u, k)
    h = gF.median_nn()
    w = global_walk_w1(X, knn_graph(X, k), q, t, bandwidth * h, distance, alpha)
    return 1.0 - w / global_walk_w1(u, gF, q, t, bandwidth * h, distance, alpha)


def loss_graph_comparison(  # noqa: PLR0913
    X: np.ndarray,
    u: np.ndarray,
    queries=None,
    *,
    t: int | None = None,
    k: int | None = None,
    bandwidth: float | None = None,
    distance: str | None = None,
    alpha: float = 1.0,
    patch: int | None = None,
) -> np.ndarray:
    """Loss graphs X = (u, z) (SPEC §5b): :func:`landscape.curvature.loss_graph.loss_graph_curvature` on (u, z) —
    its own loss scale (the relief rule), an exact small-relief chart, arc-corrected edges; its small-cloud rules
    (patch, neighbours, walk length) live with it. Distances are measured in the chart: ``distance`` must stay
    unset or ``euclidean``. ``k`` and ``bandwidth`` default to the loss-graph estimator's own (its patch's
    neighbour count and 0.7 × its k-th-neighbour distance)."""
    _check_common(t, 2 if k is None else k, 1.0 if bandwidth is None else bandwidth, distance)
    X, u = _flat_copy(X, u, 2 if k is None else k)
    q = _queries(len(X), queries)
    if X.shape[1] != u.shape[1] + 1 or not np.allclose(X[:, :-1], u, rtol=0, atol=1e-12 * (1 + np.abs(u).max())):
        raise PointCloudError("the loss-graph form needs X = (u, z): the flat copy u followed by one value column")
    if distance not in (None, "euclidean"):
        raise ValueError("the loss-graph form measures distances in its exact chart; leave distance unset")
    own: dict[str, Any] = {"bandwidth": bandwidth} if bandwidth is not None else {}
    return loss_graph_curvature(u, X[:, -1], q, k=k, t=t, patch=patch, alpha=alpha, **own).comparison


FLATS: dict[str, Callable[..., np.ndarray]] = {"tangent": tangent_comparison, "cube": cube_comparison}


def comparison(X: np.ndarray, flat: np.ndarray | str = "tangent", queries=None, chart: bool = True, **options):
    """Signed diffusion curvature k_t(x) = 1 − W1(δx, p^t_X(x)) / W1(δx, p^t_flat(x)) (SPEC §5b), dispatched on
    the flat side, POT-style: ``"tangent"`` → :func:`tangent_comparison` (general clouds, the default),
    ``"cube"`` → :func:`cube_comparison`, an array u (the sample locations of a loss graph X = (u, z)) →
    :func:`loss_graph_comparison`, or with ``chart=False`` → :func:`flat_copy_comparison`. ``options`` are the
    chosen form's own keyword arguments (each form documents its parameters and defaults).

    Common to all: one Gaussian bandwidth, ``bandwidth`` × the median nearest-neighbour distance, α-density
    normalisation (α = 1: the walk follows the Laplace–Beltrami operator whatever the sampling density; α = 0 reads
    density, not curvature), kNN graphs with ``k`` neighbours, the same ground distance on both sides."""
    if isinstance(flat, str):
        if flat not in FLATS:
            raise ValueError(f"flat must be an array or one of {tuple(FLATS)}, got {flat!r}")
        return FLATS[flat](X, queries, **options)
    form = loss_graph_comparison if chart else flat_copy_comparison
    return form(X, flat, queries, **options)


def knn_smooth(X: np.ndarray, values: np.ndarray, k: int = 30) -> np.ndarray:
    """Each point's value averaged over its ``k`` nearest points (itself included): the denoising step for a
    curvature field estimated at every point, as the 2022 laziness form's C ← P C (SPEC §5a). The per-point
    sampling noise varies from point to point faster than the curvature does (neighbouring patches overlap, so it
    is not independent), and the average cuts it while keeping the signal (torus, 1,500 points: Pearson
    0.94 → 0.985, see ``landscape validate``)."""
    if k < 1:
        raise ValueError(f"k must be at least 1 (the point itself), got {k}")
    X = check_cloud(X, 1)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(X),):
        raise ValueError(f"need one value per point ({len(X)}), got shape {values.shape}")
    k = min(k, len(X))
    idx = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X, return_distance=False)
    return values[idx].mean(1)


def estimate_intrinsic_dim(X: np.ndarray, k: int = 20) -> int:
    """Intrinsic dimension by the TWO-NN maximum-likelihood estimator (Facco et al. 2017), rounded."""
    g = knn_graph(X, max(2, min(k, len(X) - 1)))
    r1, r2 = g.distances[:, 0], g.distances[:, 1]
    mu = r2[r1 > 0] / r1[r1 > 0]
    mu = mu[mu > 1]
    return max(1, int(round(len(mu) / np.sum(np.log(mu)))))

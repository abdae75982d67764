"""Per-query exponential charts and the paired walk behind the comparison form's flat copy (SPEC §5b–c).

For each query x: its ``m`` nearest samples (the patch), mapped to R^d by a discrete exponential map (the chart).
Both walks run on ONE graph, the cloud's own kNN graph restricted to the patch; only the edge lengths differ:
distances in the cloud on one side, in the chart on the other. The same points and the same edges on both sides,
so the sampling noise of the graph cancels and what is left is the metric: a positively curved patch has
shorter tangential edges than its flat chart, its walk wanders sideways more and strays less far from x.
Everything is batched over queries: a block-diagonal sparse graph of many patches, walked as one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from sklearn.neighbors import NearestNeighbors

from .graphs import KnnGraph, query_patches


def quadric_charts(
    local: np.ndarray, d: int, n_pca: int, denoise: bool = True, n_fit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(chart (B, m, d), cloud (B, m, D)) for patches ``local`` (B, m, D), each centred on its row 0 (the query).

    A local PCA frame of the ``n_pca`` nearest points is tilted onto the plane of the quadric N(U) = c + L U + Φ(U) C
    (Φ: the monomials u_i u_j) fitted by least squares to the nearest points' offsets from it, and the quadric is
    refitted there. The constant c is where the surface passes the query: with ambient noise the query is off the
    surface and its foot, not the query, is the patch's origin. With ``denoise`` the cloud side is the fitted
    surface at every point's tangent position, U·frame + N(U) − c: ambient noise lengthens every chord and reads as
    positive curvature (saddles in R^10 with noise 0.003 read positive in 5 of 6 clouds before, in none now).
    Angles: geodesic normal coordinates to third order, v = U + ⅓ J(U)ᵀ N(U) (J = ∂N/∂U; for a graph z = ½uᵀAu it
    inverts the geodesic's expansion u = v − ⅙ (Av)(vᵀAv)). Radii: each point keeps its chord distance from the
    query's foot on both sides. A chord is shorter than the geodesic by κ_r²r³/24 for bowls and saddles alike; the
    third-order chart's own radius has no such bias but fails where a patch spans more than about 1/κ (the tips
    of the 3:2:1 ellipsoid at 1,500 points: Pearson 0.89 with chords, ≈ 0 with chart radii), so general clouds keep
    chords. Loss graphs have an exact chart and use geodesic radii (:mod:`landscape.curvature.loss_graph`).
    """
    B, m, D = local.shape
    n_fit = min(m, n_fit or max(60, 3 * (1 + d + d * (d + 1) // 2)))
    scale = np.sqrt(np.mean(_norm(local)[:, :n_fit] ** 2, axis=1))[:, None, None]
    scale = np.where(scale > 0, scale, 1.0)
    Y = local / scale  # unit-size patches: the fits are scale-free
    near = Y[:, :n_pca] - Y[:, :n_pca].mean(1, keepdims=True)
    basis = np.linalg.svd(near, full_matrices=False)[2][:, :d]  # (B, d, D)
    iu, ju = np.triu_indices(d)

    def fit_quadric(basis):
        U = Y @ basis.transpose(0, 2, 1)
        feats = np.concatenate([np.ones(U.shape[:2] + (1,)), U, U[..., iu] * U[..., ju]], axis=2)
        return U, _lstsq(feats[:, :n_fit], (Y - U @ basis)[:, :n_fit])  # (B, 1 + d + p, D)

    U, K = fit_quadric(basis)
    basis = _orthonormal_rows(basis + K[:, 1 : 1 + d])  # the fitted quadric's tangent plane
    U, K = fit_quadric(basis)
    C = K[:, 1 + d :]  # (B, p, D)
    N = (U[..., iu] * U[..., ju]) @ C
    dPhi = np.zeros(U.shape + (len(iu),))  # ∂(u_i u_j)/∂u_l
    for p, (i, j) in enumerate(zip(iu, ju)):
        dPhi[..., i, p] += U[..., j]
        dPhi[..., j, p] += U[..., i]
    chart = U + np.einsum("bmlp,bpD,bmD->bml", dPhi, C, N) / 3
    cloud = U @ basis + N if denoise else Y  # the query: U = 0 and N = 0, so row 0 is the foot
    radius, chart_radius = _norm(cloud), _norm(chart)
    chart = chart * np.divide(radius, chart_radius, out=np.ones_like(radius), where=chart_radius > 0)[..., None]
    return chart * scale, cloud * scale


def _lstsq(A: np.ndarray, Z: np.ndarray) -> np.ndarray:
    return np.linalg.solve(A.transpose(0, 2, 1) @ A + 1e-12 * np.eye(A.shape[2]), A.transpose(0, 2, 1) @ Z)


def _orthonormal_rows(M: np.ndarray) -> np.ndarray:
    return np.linalg.qr(M.transpose(0, 2, 1))[0].transpose(0, 2, 1)


def patch_graph(
    adjacency: sp.csr_matrix, patches: np.ndarray, max_map: int = 20_000_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kNN graph restricted to each patch, as one block-diagonal CSR structure over B·m nodes.

    ``patches`` (B, m) holds global indices; node b·m + i is patch b's i-th point. Returns (indptr, indices,
    lengths): symmetric, rows sorted, lengths the cloud's own edge lengths. Membership is looked up in a (B, n)
    position map while that has at most ``max_map`` entries, by binary search beyond.
    """
    B, m = patches.shape
    n = adjacency.shape[0]
    nodes = patches.ravel()
    starts = np.take(adjacency.indptr, nodes)
    counts = np.take(adjacency.indptr, nodes + 1) - starts
    ends = np.cumsum(counts)
    row = np.repeat(np.arange(B * m), counts)
    pos = np.arange(ends[-1]) + np.repeat(starts - (ends - counts), counts)
    nbr = np.take(adjacency.indices, pos)
    if B * n <= max_map:
        where = np.full(B * n, -1, dtype=np.int64)
        where[(np.arange(B)[:, None] * n + patches).ravel()] = np.arange(B * m)
        local = np.take(where, (row // m) * n + nbr)
        inside = local >= 0
        local = local[inside]
    else:
        key = (row // m) * n + nbr  # (patch, global neighbour)
        patch_keys = (np.arange(B)[:, None] * n + patches).ravel()
        order = np.argsort(patch_keys, kind="stable")
        at = np.minimum(np.searchsorted(patch_keys[order], key), len(order) - 1)
        inside = patch_keys[order][at] == key
        local = order[at[inside]]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row[inside], minlength=B * m))])
    return indptr, local, np.take(adjacency.data, pos[inside])


def _norm(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...i,...i->...", a, a))


def _edge_lengths(Y: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """‖Y[rows] − Y[cols]‖, one coordinate at a time (1-D gathers are several times faster than row gathers)."""
    out = np.zeros(len(rows))
    for c in range(Y.shape[1]):
        col = np.ascontiguousarray(Y[:, c])
        x = np.take(col, rows)
        x -= np.take(col, cols)
        out += x * x
    return np.sqrt(out, out=out)


def walk_steps(patch: int, k: int, d: int, c: float = 0.3) -> int:
    """Walk length for the chart forms: t = round(c (patch/k)^{2/d}), at least 2. The t-step walk's radius
    (≈ the kNN radius × √t) is then a fixed fraction (≈ √c) of the patch radius (≈ the kNN radius ×
    (patch/k)^{1/d}) in every dimension: long enough to feel the patch's curvature, short enough to stay inside it.
    c = 0.3 was chosen by ``landscape validate``'s sweeps (SadSpheres d = 2..4 sign margins, torus and ellipsoid
    Pearson, and the loss-graph sweep on trained nets); a 1-step walk reads the kernel's density correction, not
    the walk's spread, and is not allowed."""
    return max(2, round(c * (patch / k) ** (2 / d)))


def default_patch(n: int, k: int, d: int) -> int:
    """Chart patch size for general clouds: min(50·2^d, n/8) samples, at least 4k, at most n — a small piece of the
    manifold, whose radius is then about the same number of kNN radii in every dimension d. A bigger patch averages
    away more noise but lets the chart's fifth-order, sign-blind error (∝ s⁴ against the signal's K s²) grow:
    ``landscape validate``'s sweep shows d = 2 best at 200 samples, d = 4 at 800."""
    return min(n, max(min(50 * 2**d, n // 8), 4 * k))


def walk(
    indptr: np.ndarray,
    indices: np.ndarray,
    lengths: np.ndarray,
    m: int,
    t: int,
    sigma: float | np.ndarray,
    alpha: float,
) -> np.ndarray:
    """p^t from every block's node 0, as (B, m): Gaussian kernel exp(−ℓ²/σ²) on the edges plus a unit self loop,
    α-normalised, row-normalised, t steps (SPEC §5b). ``sigma`` is one bandwidth or one per block (B,)."""
    N = len(indptr) - 1
    B = N // m
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (B,))
    edge_sigma = np.repeat(sig, np.diff(indptr[::m]))  # every edge lies inside one block
    W = sp.csr_matrix((np.exp(-((lengths / edge_sigma) ** 2)), indices, indptr), shape=(N, N))
    iq = (1.0 + W @ np.ones(N)) ** -alpha  # K = diag(iq) (W + I) diag(iq): α-normalised, self loop included
    a = 1.0 / (W @ iq + iq)  # iq / rowsum(K), rowsum(K) = iq ⊙ (W iq + iq)
    p = np.zeros(N)
    p[::m] = 1.0
    for _ in range(t):  # p ← Pᵀp, P = diag(1/rowsum) K with K symmetric
        v = p * a
        p = iq * (W @ v + v)
    return p.reshape(B, m)


def walk_w1(  # noqa: PLR0913
    indptr: np.ndarray,
    indices: np.ndarray,
    lengths: np.ndarray,
    radius: np.ndarray,
    m: int,
    t: int,
    sigma: float | np.ndarray,
    alpha: float,
    distance: str,
) -> np.ndarray:
    """W1(δ_x, p^t_x) for every block's node 0 (SPEC §5b), the walk of :func:`walk`. Ground distance:
    ``euclidean`` (``radius``, each node's distance from its block's query) or ``graph`` (shortest paths within
    the block)."""
    B = (len(indptr) - 1) // m
    p = walk(indptr, indices, lengths, m, t, sigma, alpha)
    if distance == "euclidean":
        dist = radius.reshape(B, m)
    else:
        N = len(indptr) - 1
        G = sp.csr_matrix((lengths, indices, indptr), shape=(N, N))
        limit = t * float(lengths.max(initial=0.0)) * (1 + 1e-9)
        dist = np.empty((B, m))
        for s in range(0, B, 32):
            b = np.arange(s, min(B, s + 32))
            D = dijkstra(G, directed=False, indices=b * m, limit=limit)
            dist[b] = D[np.arange(len(b))[:, None], b[:, None] * m + np.arange(m)]
        dist[~np.isfinite(dist)] = 0.0  # unreachable within t edges: carries no walk mass
    return np.einsum("bm,bm->b", p, dist)


def chart_comparison(  # noqa: PLR0913
    X: np.ndarray,
    g: KnnGraph,
    queries: np.ndarray,
    d: int,
    m: int,
    t: int,
    bandwidth: float,
    alpha: float,
    distance: str,
    denoise: bool = True,
    fit_points: int | None = None,
    nodes_per_batch: int = 12_000,
) -> np.ndarray:
    """k_t = 1 − W1_cloud / W1_chart at each query, the two walks on one patch graph (module docstring).

    Per patch (:func:`quadric_charts`): the cloud side walks on the points (on the fitted surface when ``denoise``),
    the flat side on the chart; one Gaussian bandwidth per patch, ``bandwidth`` × the patch's median
    nearest-neighbour distance (density-aware, the same on both sides); ground distance each point's distance from
    the query's foot, equal on both sides (``euclidean``), or shortest paths (``graph``)."""
    n_pca = min(m, max(3 * d, 20))
    batch = max(1, nodes_per_batch // m)
    tree = NearestNeighbors(n_neighbors=m).fit(X)
    out = np.empty(len(queries))
    for s in range(0, len(queries), batch):
        q = queries[s : s + batch]
        P = query_patches(tree, X, q)
        chart, cloud = quadric_charts(X[P] - X[q][:, None, :], d, n_pca, denoise, fit_points)
        indptr, indices, _ = patch_graph(g.adjacency, P)
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        F = chart.reshape(-1, d)
        cloud_lengths = _edge_lengths(cloud.reshape(-1, X.shape[1]), rows, indices)
        flat_lengths = _edge_lengths(F, rows, indices)
        sigma = bandwidth * np.median(g.distances[P, 0], axis=1)
        radius = _norm(F)
        w_cloud = walk_w1(indptr, indices, cloud_lengths, radius, m, t, sigma, alpha, distance)
        w_flat = walk_w1(indptr, indices, flat_lengths, radius, m, t, sigma, alpha, distance)
        out[s : s + len(q)] = 1.0 - w_cloud / w_flat
    return out

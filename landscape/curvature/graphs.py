"""Sparse neighbourhood graphs and diffusion operators on point clouds (SPEC §5).

Never a dense n×n matrix: a KD-tree kNN graph (scikit-learn) with kernel weights on its edges only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

KERNELS = ("adaptive", "global")


class PointCloudError(ValueError):
    """A point cloud the estimators cannot use; the message says what is wrong and what to do."""


def check_cloud(X: np.ndarray, k: int, name: str = "point cloud") -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise PointCloudError(f"{name} must be an (n, D) array, got shape {X.shape}")
    n = len(X)
    if not np.all(np.isfinite(X)):
        bad = int((~np.isfinite(X).all(1)).sum())
        raise PointCloudError(f"{name} has {bad} points with NaN/inf coordinates; drop them first")
    if n < 10:
        raise PointCloudError(f"{name} has {n} points; need at least 10 (more samples)")
    if k >= n:
        raise PointCloudError(f"k = {k} neighbours needs more than {n} points; lower k or add samples")
    return X


@dataclass
class KnnGraph:
    """k nearest neighbours of every point (self excluded), sorted by distance."""

    indices: np.ndarray  # (n, k)
    distances: np.ndarray  # (n, k)

    @property
    def n(self) -> int:
        return len(self.indices)

    def median_nn(self) -> float:
        return float(np.median(self.distances[:, 0]))

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Symmetric sparse matrix of edge lengths (an edge if either endpoint lists the other); built once."""
        n, k = self.indices.shape
        rows = np.repeat(np.arange(n), k)
        A = sp.csr_matrix((self.distances.ravel(), (rows, self.indices.ravel())), shape=(n, n))
        return A.maximum(A.T).tocsr()


def knn_graph(X: np.ndarray, k: int) -> KnnGraph:
    """KD-tree kNN; raises :class:`PointCloudError` on duplicates, NaN, too few points or k ≥ n."""
    X = check_cloud(X, k)
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="auto").fit(X)
    dist, idx = nn.kneighbors(X)
    if np.any(dist[:, 1] == 0):
        dup = int((dist[:, 1] == 0).sum())
        raise PointCloudError(f"{dup} points coincide with another point; remove duplicate points first")
    # drop self (normally column 0; with ties, find it explicitly)
    own = idx == np.arange(len(X))[:, None]
    has_self = own.any(1)
    keep = np.where(has_self[:, None], ~own, np.arange(k + 1)[None, :] < k)
    idx = idx[keep].reshape(len(X), k)
    dist = dist[keep].reshape(len(X), k)
    return KnnGraph(idx, dist)


def transition_matrix(
    g: KnnGraph, kernel: str = "global", bandwidth: float = 1.0, sigma_k: int = 20, alpha: float = 0.0
) -> sp.csr_matrix:
    """Row-stochastic diffusion operator P on the kNN edges (+ self loops).

    - ``global``: one bandwidth σ = ``bandwidth`` (absolute units) for every point (the published fix, SPEC §5c).
    - ``adaptive``: σ_i = distance to the ``sigma_k``-th neighbour, K_ij = ½(e^{−d²/σ_i²} + e^{−d²/σ_j²})
      (the 2022 code's default, with ``alpha`` = 1 density normalisation).
    ``alpha``: K ← K / (q_i q_j)^α with q the kernel degrees, before row normalisation.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    n, k = g.indices.shape
    D = g.adjacency
    D = D.tocoo()
    d2 = D.data**2
    if kernel == "global":
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}")
        w = np.exp(-d2 / bandwidth**2)
    else:
        if sigma_k > k:
            raise ValueError(f"adaptive kernel needs k ≥ sigma_k = {sigma_k} neighbours, got k = {k}")
        sigma = g.distances[:, sigma_k - 1]
        w = 0.5 * (np.exp(-d2 / sigma[D.row] ** 2) + np.exp(-d2 / sigma[D.col] ** 2))
    K = sp.csr_matrix((w, (D.row, D.col)), shape=(n, n)) + sp.identity(n, format="csr")
    if alpha:
        q = np.asarray(K.sum(1)).ravel() ** alpha
        K = sp.diags(1 / q) @ K @ sp.diags(1 / q)
    rowsum = np.asarray(K.sum(1)).ravel()
    return (sp.diags(1 / rowsum) @ K).tocsr()


def diffuse(P: sp.csr_matrix, queries: np.ndarray, t: int, block: int = 2048, drop: float = 1e-12):
    """Yield (query block, sparse rows of Pᵗ for those queries).

    The t-step walk stays within t edges of its start, so sparse products stay cheap and memory-bounded.
    Entries below ``drop`` (each row holds unit mass) are dropped after every step: the walk's far tail costs
    most of the work and carries at most (support size × ``drop``) of the mass.
    """
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        M = sp.csr_matrix((np.ones(len(q)), (np.arange(len(q)), q)), shape=(len(q), P.shape[0]))
        for _ in range(t):
            M = M @ P
            if drop:
                M.data[M.data < drop] = 0.0
                M.eliminate_zeros()
        yield q, M.tocsr()


def query_patches(tree: NearestNeighbors, points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Each query's patch as row indices (queries, tree's n_neighbors), the query itself in column 0 (its nearest
    neighbour is itself unless a twin point ties with it: then the twin moves to the query's old place)."""
    P = tree.kneighbors(points[queries], return_distance=False)
    first = np.argmax(P == queries[:, None], axis=1)
    P[np.arange(len(queries)), first] = P[:, 0]
    P[:, 0] = queries
    return P

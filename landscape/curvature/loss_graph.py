"""Diffusion curvature of a sampled loss graph M = {(u, s·f(u))} (SPEC §4b, §5b, §5d).

The comparison form k_t = 1 − W1(δx, p^t_cloud)/W1(δx, p^t_flat), made right on real loss slices:

- **Loss unit (SPEC §4b).** The scale is the estimator's own: s = ``relief`` · ρ / max|f − f(u_q)|, ρ the sample
  radius, so the graph rises at most ``relief`` (1 %) of its width. Every curvature of the graph is then s² times
  its small-relief limit, k_t is proportional to s² and k_t/s² does not depend on the loss unit or on the relief:
  the estimate is of lim_{s→0} R(s)/s², which is (tr A)² − ‖A‖²_F at a critical point and 2 det A/W⁴ → 2 det A for
  k = 2 at every point; its sign is the sign of R(s) for every s when k = 2 and at critical points.
- **An exact flat copy.** Each query's patch (its ``patch`` nearest samples in u) gets a polynomial model f̂ of the
  loss (:mod:`landscape.curvature.polyfit`), and the chart is the loss graph's geodesic normal coordinates to O(s²):
  v = G_q^{1/2} (Δu + s² ∫₀¹ (1 − τ) ∇f̂(u_q + τΔu) ∂²_τ f̂(u_q + τΔu) dτ), G_q = I + s² g_q g_qᵀ.
  ``|v|`` is the geodesic distance from the query, used as the ground distance on BOTH sides (a chord is shorter
  than the geodesic by s²κ_r²r³/24 for bowls and saddles alike; with one steep direction that sign-blind term
  outweighs the curvature signal, which is how anisotropic saddles read as bowls).
- **Cloud edges as arcs.** An edge's chord is shorter than the graph's arc over it by s²(ΔuᵀÂΔu)²/(24|Δu|),
  Â the fitted Hessian at its midpoint; uncorrected, this sign-blind term is what flipped steep slices with few
  samples.
- **One graph, two metrics.** Both walks run on the kNN graph of the u-samples restricted to the patch (the same
  nodes, the same edges), with one Gaussian bandwidth per patch (``bandwidth`` × the patch's median nearest-neighbour
  distance: density-aware, identical on both sides), α = 1 normalisation and t = :func:`walk_steps` steps. Only the
  edge lengths differ: the cloud's on one side, the chart's on the other.
- **Calibrated.** The same pipeline on the reference paraboloid ½|u − u_q|² at the same samples (exact small-relief
  curvature k(k − 1)) turns k_t into a scalar-curvature estimate in the units of the exact one (:attr:`scalar`).
  For k = 2 the response is exactly proportional to the Gauss curvature on any sample set (Lagrange's identity), so
  the calibration is exact for quadratic slices.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
from sklearn.neighbors import NearestNeighbors

from .charts import patch_graph, walk, walk_steps
from .graphs import PointCloudError, check_cloud, knn_graph
from .polyfit import Monomials, fit, fit_degree

RELIEF = 0.01  # the graph's rise over its width at the estimator's scale (linear regime: results do not depend on it)


def min_samples(k: int) -> int:
    """Fewest samples a k-dimensional loss graph needs: a quadratic model (comb(k+2, 2) terms) pinned down three
    times over, and at least 20."""
    return max(20, 3 * comb(k + 2, 2) + 1)


def default_loss_patch(n: int, k: int) -> int:
    """Samples per query patch: 50·2^k (200 for k = 2), at most n. The patch shrinks around the query as the
    sample count grows, so the estimate becomes more local and never averages over more of the slice."""
    return min(n, 50 * 2**k)


def default_neighbours(m: int, k: int) -> int:
    """kNN neighbours for a k-dimensional patch of m samples: 15 in two dimensions, 15·2^((k−2)/2) above as far as
    the patch allows (m/12): the graph must hold more neighbours to sample a higher-dimensional neighbourhood
    (measured on random quadric slices, k = 4: sign errors 5/45 at 15 neighbours, 1/45 at 25)."""
    return max(15, min(round(15 * 2 ** ((k - 2) / 2)), m // 12))


def relief_scale(coords: np.ndarray, losses: np.ndarray, relief: float = RELIEF, center: int = 0) -> float:
    """The estimator's loss scale s = ``relief`` · ρ / max_i |f_i − f_center|, ρ = max_i ‖u_i − u_center‖ (SPEC §4b
    rule): the sampled graph of s·f rises at most ``relief`` times its radius anywhere (1 for a flat slice)."""
    rho = float(np.max(np.linalg.norm(coords - coords[center], axis=1)))
    spread = float(np.max(np.abs(losses - losses[center])))
    return relief * rho / spread if spread > 0 else 1.0  # a flat slice: any scale, it reads exactly 0


@dataclass
class LossGraphCurvature:
    """Per query: ``comparison`` k_t (SPEC §5b) at ``scale``; ``scalar`` the calibrated estimate of R(s)/s², in the
    units of :meth:`landscape.hessian.slice_field.SliceField.curvature` divided by s²; ``reach_index``/``reach_weight``
    (queries, patch) the cloud walk's distribution after t steps, for the exact field averaged over the region
    the walk covers (:meth:`reach_average`); ``fit_residual`` how well the patch's polynomial (the chart) fits the
    losses, relative to their range."""

    queries: np.ndarray
    comparison: np.ndarray
    scalar: np.ndarray
    scale: float
    steps: int
    patch: int
    degree: int
    neighbours: int
    reach_index: np.ndarray
    reach_weight: np.ndarray
    fit_residual: np.ndarray  # per query: RMS of the patch's polynomial fit over the patch's loss range

    def reach_average(self, values: np.ndarray) -> np.ndarray:
        """Σ_y p^t(x, y) v(y) over each query's patch: a per-sample field seen at the walk's scale."""
        values = np.asarray(values, dtype=np.float64)
        return np.einsum("qm,qm->q", self.reach_weight, values[self.reach_index])


def _chart(Y: np.ndarray, rho: np.ndarray, basis: Monomials, C: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Small-relief geodesic normal coordinates of patches Y = Δu/ρ (B, m, k) for the fitted f̂ (module docstring);
    ``rho`` and the scale ``s`` are per patch (B,)."""
    w = basis.ray_integral(Y, C)  # ∫(1 − τ) ∇_y f̂ ∂²_τ f̂ dτ; ∇_u = ∇_y / ρ
    xi = (Y + (s * s / rho**2)[:, None, None] * w) * rho[:, None, None]
    g0 = basis.gradient_at_zero(C) / rho[:, None]
    gn = np.linalg.norm(g0, axis=1)
    ghat = g0 / np.where(gn > 0, gn, 1.0)[:, None]
    stretch = np.sqrt(1.0 + (s * gn) ** 2) - 1.0  # G_q^{1/2} = I + (W_q − 1) ĝĝᵀ
    return xi + (stretch[:, None] * np.einsum("bmi,bi->bm", xi, ghat))[..., None] * ghat[:, None, :]


def _paired_walk(Y, Z, rho, basis, s, indptr, indices, sigma, steps, alpha) -> tuple[np.ndarray, ...]:
    """(k_t, cloud walk distribution (B, m), relative fit residual (B,)) for patches Y = Δu/ρ (B, m, k) with losses
    Z = f − f(u_q) (B, m) at per-patch scales ``s`` (B,), on the block-diagonal patch graph (module docstring)."""
    B, m, _ = Y.shape
    C = fit(basis, Y, Z)
    resid = Z - np.einsum("bmc,bc->bm", basis.design(Y), C)
    spread = np.ptp(Z, axis=1)
    rel = np.sqrt(np.mean(resid**2, axis=1)) / np.where(spread > 0, spread, 1.0)
    F = _chart(Y, rho, basis, C, s)
    rows = np.repeat(np.arange(B * m), np.diff(indptr))
    block = rows // m
    Yf, Zf = Y.reshape(B * m, -1), Z.ravel()
    dy = Yf[indices] - Yf[rows]
    dn = np.linalg.norm(dy, axis=1) * rho[block]
    sb = s[block]
    chord = np.sqrt(dn * dn + (sb * (Zf[indices] - Zf[rows])) ** 2)
    hess = np.einsum("bmijc,bc->bmij", basis.hessian_design(Y), C).reshape(B * m, Y.shape[2], Y.shape[2])
    bend = np.einsum("ni,nij,nj->n", dy, 0.5 * (hess[rows] + hess[indices]), dy)  # ΔuᵀÂΔu, Â at the edge's middle
    cloud = chord + sb * sb * bend * bend / (24 * dn)
    Ff = F.reshape(B * m, -1)
    flat = np.linalg.norm(Ff[indices] - Ff[rows], axis=1)
    radius = np.linalg.norm(F, axis=2)
    p_cloud = walk(indptr, indices, cloud, m, steps, sigma, alpha)
    p_flat = walk(indptr, indices, flat, m, steps, sigma, alpha)
    kt = 1.0 - np.einsum("bm,bm->b", p_cloud, radius) / np.einsum("bm,bm->b", p_flat, radius)
    return kt, p_cloud, rel


def loss_graph_curvature(
    coords: np.ndarray,
    losses: np.ndarray,
    queries=None,
    k: int | None = None,
    bandwidth: float = 3.0,
    t: int | None = None,
    patch: int | None = None,
    relief: float = RELIEF,
    scale: float | None = None,
    alpha: float = 1.0,
    calibrate: bool = True,
    nodes_per_batch: int = 12_000,
) -> LossGraphCurvature:
    """Diffusion curvature of the loss graph {(u_i, s·f_i)} at rows ``queries`` (default: every sample).

    ``coords`` (n, k_dirs) are the slice coordinates u, ``losses`` (n,) the finite losses f(u). ``scale`` overrides
    the relief rule (:func:`relief_scale`, centred on the first query); ``k`` kNN neighbours
    (:func:`default_neighbours`); ``patch`` samples per query (:func:`default_loss_patch`); ``t`` walk steps
    (:func:`landscape.curvature.charts.walk_steps`). Module docstring for the method.
    """
    u = check_cloud(coords, 1, "slice coordinates")
    f = np.asarray(losses, dtype=np.float64).reshape(-1)
    n, d = u.shape
    if len(f) != n:
        raise PointCloudError(f"{len(f)} losses for {n} sample coordinates; they must match row for row")
    if not np.all(np.isfinite(f)):
        raise PointCloudError(f"{int((~np.isfinite(f)).sum())} losses are NaN/inf; drop those samples first")
    if d < 2:
        raise PointCloudError("a 1-direction slice is a curve: it has no intrinsic curvature; use k ≥ 2 directions")
    if n < min_samples(d):
        raise PointCloudError(f"{n} samples are too few for a {d}-direction slice; need at least {min_samples(d)}")
    if (t is not None and t < 1) or (k is not None and k < 2) or not bandwidth > 0 or not relief > 0:
        raise ValueError(f"need t ≥ 1, k ≥ 2, bandwidth > 0, relief > 0; got t={t}, k={k}, {bandwidth}, {relief}")
    q = np.arange(n) if queries is None else np.atleast_1d(np.asarray(queries, dtype=np.int64))
    if q.size == 0 or q.min() < 0 or q.max() >= n:
        raise PointCloudError(f"query indices must lie in 0..{n - 1}")
    m = min(n, patch or default_loss_patch(n, d))
    k = min(k or default_neighbours(m, d), (m - 1) // 2)
    if k < 2:
        raise PointCloudError(f"a patch of {m} samples is too small; raise patch or add samples")
    s = float(scale) if scale is not None else relief_scale(u, f, relief, int(q[0]))
    if not (s > 0 and np.isfinite(s)):
        raise ValueError(f"loss scale must be positive and finite, got {s}")
    steps = t or walk_steps(m, k, d)
    g = knn_graph(u, k)  # the shared topology; duplicate coordinates raise here
    basis = Monomials.of_degree(d, fit_degree(m, d))
    tree = NearestNeighbors(n_neighbors=m).fit(u)
    kt, scalar, residual = np.empty(len(q)), np.empty(len(q)), np.empty(len(q))
    reach_w = np.empty((len(q), m))
    reach_i = np.empty((len(q), m), dtype=np.int64)
    batch = max(1, min(nodes_per_batch // m, 4_000_000 // (m * d * d * basis.size)))  # Hessian designs' memory
    for start in range(0, len(q), batch):
        qb = q[start : start + batch]
        P = tree.kneighbors(u[qb], return_distance=False)
        first = np.argmax(P == qb[:, None], axis=1)  # the query first (ties may list a twin before it)
        P[np.arange(len(qb)), first] = P[:, 0]
        P[:, 0] = qb
        du = u[P] - u[qb][:, None, :]
        rho = np.linalg.norm(du, axis=2).max(axis=1)
        Y = du / rho[:, None, None]
        indptr, indices, _ = patch_graph(g.adjacency, P)
        sigma = bandwidth * np.median(g.distances[P, 0], axis=1)  # per patch: density-aware, same on both sides
        walk_args = (indptr, indices, sigma, steps, alpha)
        kt_b, p_cloud, rel = _paired_walk(Y, f[P] - f[qb][:, None], rho, basis, np.full(len(qb), s), *walk_args)
        sl = slice(start, start + len(qb))
        kt[sl], reach_w[sl], reach_i[sl], residual[sl] = kt_b, p_cloud, P, rel
        if calibrate:  # the reference paraboloid ½|u − u_q|² on the same patches, its own relief rule: R/s² → d(d − 1)
            s_ref = 2.0 * relief / rho
            ref = _paired_walk(
                Y, 0.5 * (rho**2)[:, None] * np.einsum("bmi,bmi->bm", Y, Y), rho, basis, s_ref, *walk_args
            )
            scalar[sl] = kt_b / s**2 * d * (d - 1) / (ref[0] / s_ref**2)
    if not calibrate:
        scalar[:] = np.nan
    return LossGraphCurvature(q, kt, scalar, s, steps, m, basis.degree, k, reach_i, reach_w, residual)

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
- **One graph, two metrics.** Both walks run on the patch's own kNN graph of the u-samples (the same nodes, the same
  edges), with one Gaussian bandwidth per patch (``bandwidth`` × the patch's median distance to its k-th
  neighbour, identical on both sides), α = 1 normalisation and t = :func:`walk_steps` steps. Only the edge lengths
  differ: the cloud's on one side, the chart's on the other.
- **A scale fixed in u, the same roughness on both sides (SPEC §5e).** The patch is a ball of fixed radius in u
  (:func:`default_loss_patch`) and the neighbour count grows with it (:func:`default_neighbours`), so the edges
  do not shrink as n grows. The flat side's edges also carry the patch's fit residual r = f − f̂ as a height
  (|Δv|² + s²Δr²): structure finer than the polynomial (float noise, ReLU creases) lengthens both sides alike
  instead of only the cloud's. Before, a saddle with 1 % loss noise read −0.56 / +6.9 / +150 (truth −2) at
  n = 300 / 1,000 / 3,000; now −2.05 / −2.10 / −2.01, and creased bowls read the same at every n.
- **Calibrated.** The same pipeline on the reference paraboloid ½|u − u_q|² at the same samples (exact small-relief
  curvature k(k − 1)) turns k_t into a scalar-curvature estimate over the walk's reach (:attr:`region`). For
  k = 2 the response is exactly proportional to the Gauss curvature on any sample set (Lagrange's identity), so
  the calibration is exact for quadratic slices; for k ≥ 3 it is exact only in the isotropic limit.
- **At the query.** The walk reads a region (its reach's rms radius is about a third of the patch's): on a quartic
  bowl (truth 2 at θ*) the regional reading is 2.6 at every n. :attr:`scalar` moves it to the query with the
  patch's own polynomial: R̂(x) − Σ_y p^t(x, y) R̂(y), R̂ = (tr Â)² − ‖Â‖²_F (2.05 / 1.94 / 1.94 at n = 300 /
  1,000 / 3,000). The walk gives the level; the model only the field's variation inside the reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from .charts import walk, walk_steps
from .graphs import PointCloudError, check_cloud, query_patches
from .polyfit import Monomials, fit, fit_degree

RELIEF = 0.01  # the graph's rise over its width at the estimator's scale (linear regime: results do not depend on it)


def min_samples(k: int) -> int:
    """Fewest samples a k-dimensional loss graph needs: a quadratic model (comb(k+2, 2) terms) pinned down three
    times over, and at least 20."""
    return max(20, 3 * comb(k + 2, 2) + 1)


PATCH_SHARE = 0.64  # a query's patch: the ball around it holding this share of the sampled ball's volume (fixed in u)
MAX_WALK_STEPS = 1000  # a longer walk has mixed over its patch long before: it reads nothing more, only costs
MAX_PATCH = 3000  # at most this many samples per patch (beyond it the patch is the 3,000 nearest)
SHIFT_CAP = 0.5  # the polynomial's reach-to-point shift is capped at this fraction of the walk's reading
MIN_PATCH_PER_DIM = 50  # at least 50·2^k samples per patch (200 for k = 2), or all: sparse slices set it by count
NEIGHBOURS_PER_PATCH = 12  # kNN neighbours = patch / 12: the graph's edges span a fixed fraction of the patch


def default_loss_patch(coords: np.ndarray, share: float = PATCH_SHARE, center: int = 0) -> int:
    """Samples per query patch: those within ``share``^(1/k) × ρ of the centre row (ρ = the sampled radius around
    it; 0.8 ρ for k = 2, 0.91 ρ for k = 5), at least 50·2^k (or all) and at most :data:`MAX_PATCH`. The patch is
    fixed in u, not in count: as samples are added the walk keeps its scale and gains edges, so roughness finer
    than that scale averages out instead of growing (SPEC §5e), and the estimate converges in n."""
    u = np.asarray(coords, dtype=np.float64)
    r = np.linalg.norm(u - u[center], axis=1)
    inside = int(np.count_nonzero(r <= share ** (1 / u.shape[1]) * r.max()))
    return int(min(len(u), MAX_PATCH, max(inside, MIN_PATCH_PER_DIM * 2 ** u.shape[1])))


def default_neighbours(m: int, k: int) -> int:
    """kNN neighbours for a k-dimensional patch of m samples: m/12, at least 15·2^((k−2)/2) as far as the patch
    allows (m/3). Growing with the patch keeps the graph's edge length a fixed fraction of the patch radius, above
    the sample spacing: at a fixed neighbour count the edges shrink with n and the loss's roughness (ReLU creases,
    float noise) lengthens them by s²Δδ²/(2|Δu|), a bias that grows with n (SPEC §5e)."""
    floor = min(round(15 * 2 ** ((k - 2) / 2)), m // 3)
    return max(floor, m // NEIGHBOURS_PER_PATCH, 2)


def relief_scale(coords: np.ndarray, losses: np.ndarray, relief: float = RELIEF, center: int = 0) -> float:
    """The estimator's loss scale s = ``relief`` · ρ / max_i |f_i − f_center|, ρ = max_i ‖u_i − u_center‖ (SPEC §4b
    rule): the sampled graph of s·f rises at most ``relief`` times its radius anywhere (1 for a flat slice)."""
    rho = float(np.max(np.linalg.norm(coords - coords[center], axis=1)))
    spread = float(np.max(np.abs(losses - losses[center])))
    return relief * rho / spread if spread > 0 else 1.0  # a flat slice: any scale, it reads exactly 0


@dataclass
class LossGraphCurvature:
    """Per query: ``comparison`` k_t (SPEC §5b) at ``scale``; ``region`` the calibrated estimate of R(s)/s² over
    the region the walk covers, in the units of :meth:`landscape.hessian.slice_field.SliceField.curvature` divided
    by s²; ``scalar`` the estimate at the query itself (``region`` + ``to_point``, the walk's reach moved to its
    start by the patch's polynomial model: :func:`loss_graph_curvature`); ``reach_index``/``reach_weight`` (queries,
    patch) the cloud walk's distribution after t steps, over which ``region`` is an average (:meth:`reach_average`);
    ``fit_residual`` how well the patch's polynomial fits the losses, relative to their range; ``fitted`` the
    polynomial's own value at the query, (tr Â)² − ‖Â‖²_F."""

    queries: np.ndarray
    comparison: np.ndarray
    scalar: np.ndarray
    region: np.ndarray
    to_point: np.ndarray
    fitted: np.ndarray  # per query: σ₂ of the patch polynomial's Hessian at the query (the model's own value)
    clipped: np.ndarray  # per query: the part of the model's shift beyond :data:`SHIFT_CAP` of the walk's reading
    scale: float
    steps: int
    patch: int
    degree: int
    neighbours: int
    reach_index: np.ndarray
    reach_weight: np.ndarray
    fit_residual: np.ndarray

    def reach_average(self, values: np.ndarray) -> np.ndarray:
        """Σ_y p^t(x, y) v(y) over each query's patch: a per-sample field seen at the walk's scale."""
        values = np.asarray(values, dtype=np.float64)
        return np.einsum("qm,qm->q", self.reach_weight, values[self.reach_index])


def _sigma2(H: np.ndarray) -> np.ndarray:
    """(tr A)² − ‖A‖²_F for a stack of symmetric matrices (..., k, k): the small-relief scalar curvature R/s²."""
    trace = np.einsum("...ii->...", H)
    return trace * trace - np.einsum("...ij,...ij->...", H, H)


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


@dataclass(frozen=True)
class _PatchGraph:
    """The walk's graph over a batch of patches (the same for the data, the reference paraboloid and the
    anisotropy term): block-diagonal CSR structure over B·m nodes, per-patch bandwidths (B,), steps and the α
    normalisation."""

    indptr: np.ndarray
    indices: np.ndarray
    sigma: np.ndarray
    steps: int
    alpha: float


def _paired_walk(Y, Z, rho, basis, s, graph: _PatchGraph) -> tuple[np.ndarray, ...]:
    """(k_t, cloud walk distribution (B, m), relative fit residual (B,), the fitted field's shift from the walk's
    reach to its start (B,), the fitted Hessian at the start in y units (B, k, k)) for patches Y = Δu/ρ (B, m, k)
    with losses Z = f − f(u_q) (B, m) at per-patch scales ``s`` (B,), on the block-diagonal patch ``graph``
    (module docstring)."""
    indptr, indices, sigma, steps, alpha = graph.indptr, graph.indices, graph.sigma, graph.steps, graph.alpha
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
    rf = resid.ravel()
    flat = np.sqrt(flat * flat + (sb * (rf[indices] - rf[rows])) ** 2)  # the same roughness on both sides
    radius = np.linalg.norm(F, axis=2)
    p_cloud = walk(indptr, indices, cloud, m, steps, sigma, alpha)
    p_flat = walk(indptr, indices, flat, m, steps, sigma, alpha)
    kt = 1.0 - np.einsum("bm,bm->b", p_cloud, radius) / np.einsum("bm,bm->b", p_flat, radius)
    fitted = _sigma2(hess).reshape(B, m) / rho[:, None] ** 4  # σ₂(Â) in u
    shift = fitted[:, 0] - np.einsum("bm,bm->b", p_cloud, fitted)
    return kt, p_cloud, rel, shift, hess.reshape(B, m, *hess.shape[1:])[:, 0]


def _patch_knn(Y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each patch's own kNN graph (symmetrised: an edge if either end lists the other) over the points Y (B, m, k),
    as one block-diagonal CSR structure (indptr, indices) over B·m nodes, and each patch's median distance to the
    k-th neighbour (B,). The patch's own graph, not the whole cloud's restricted to it: a node near the patch's
    rim keeps k neighbours, so the walk sees no artificial boundary (k = 4: median error 0.12 → 0.03 on quadrics)."""
    B, m, _ = Y.shape
    G = np.einsum("bij,bkj->bik", Y, Y)
    sq = np.einsum("bii->bi", G)
    D2 = np.maximum(sq[:, :, None] + sq[:, None, :] - 2 * G, 0.0)
    D2[:, np.arange(m), np.arange(m)] = np.inf
    nbr = np.argpartition(D2, k - 1, axis=2)[:, :, :k]  # (B, m, k), unordered
    kth = np.sqrt(np.take_along_axis(D2, nbr, axis=2).max(axis=2))
    rows = (np.arange(B * m)[:, None] + np.zeros(k, dtype=np.int64)).ravel()
    cols = (nbr + (np.arange(B) * m)[:, None, None]).ravel()
    A = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(B * m, B * m))
    A = A.maximum(A.T).tocsr()
    A.sort_indices()
    return A.indptr, A.indices, np.median(kth, axis=1)


def _anisotropy(Y, H0, rho, basis, s: np.ndarray, gain: np.ndarray, graph: _PatchGraph) -> np.ndarray:
    """For k ≥ 3: what the calibrated walk misreads on the patch's own quadratic ½ΔuᵀÂΔu (Â the fitted Hessian at
    the query), σ₂(Â) − walk: one paraboloid calibrates the isotropic part of the walk's response, but on a finite
    patch the k(k − 1)/2 sectional curvatures get unequal weights, and a spectrum like (100, 1, −1) (R = −2 from
    ±100 sectional terms) read −38.8. Walked at the data's own scale ``s`` (B,), so that what remains of the relief's
    non-linearity cancels too. Zero for k = 2, where the response is exactly the Gauss curvature."""
    Zq = 0.5 * np.einsum("bmi,bij,bmj->bm", Y, H0, Y)  # in u: ½ΔuᵀÂΔu with Â = H0/ρ², Δu = ρY
    kt = _paired_walk(Y, Zq, rho, basis, s, graph)[0]
    return _sigma2(H0) / rho**4 - kt / s**2 * gain


def loss_graph_curvature(  # noqa: C901, PLR0913
    coords: np.ndarray,
    losses: np.ndarray,
    queries=None,
    *,
    k: int | None = None,
    bandwidth: float = 0.7,
    t: int | None = None,
    patch: int | None = None,
    share: float = PATCH_SHARE,
    relief: float = RELIEF,
    alpha: float = 1.0,
    calibrate: bool = True,
    nodes_per_batch: int = 12_000,
) -> LossGraphCurvature:
    """Diffusion curvature of the loss graph {(u_i, s·f_i)} at rows ``queries`` (default: every sample).

    ``coords`` (n, k_dirs) are the slice coordinates u, ``losses`` (n,) the finite losses f(u). The loss scale s is
    the relief rule's (:func:`relief_scale`, centred on the first query). Each query's patch is its ``patch``
    nearest samples (:func:`default_loss_patch`: a ball around the first query holding ``share`` of the sampled
    ball's volume); ``k`` kNN neighbours (:func:`default_neighbours`); one Gaussian bandwidth per patch, ``bandwidth`` ×
    the patch's median distance to the k-th neighbour (a scale fixed in u as n grows, SPEC §5e); ``t`` walk steps
    (:func:`landscape.curvature.charts.walk_steps`).

    Two readings per query. ``region``: the calibrated walk, an average of R(s)/s² over the walk's reach (how far
    it reads is in ``reach_weight``). ``scalar``: the value at the query, ``region`` + ``to_point``, where
    ``to_point`` = R̂(x) − Σ_y p^t(x, y) R̂(y) with R̂ = (tr Â)² − ‖Â‖²_F the small-relief curvature of the patch's
    polynomial model: the walk measures the level, the model only how the field varies inside the reach (zero on
    a quadratic slice, where the field is constant). The shift is capped at :data:`SHIFT_CAP` of the walk's
    reading (``clipped`` the rest): a polynomial over a patch whose curvature varies a hundredfold (trained nets at
    radius 1) extrapolates wildly, and uncapped shifts flipped 2 of 32 trained-net signs. Module docstring for the
    method.
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
    if (
        (t is not None and not 1 <= t <= MAX_WALK_STEPS)
        or (k is not None and k < 2)
        or not bandwidth > 0
        or not relief > 0
    ):
        raise ValueError(
            f"need 1 ≤ t ≤ {MAX_WALK_STEPS}, k ≥ 2, bandwidth > 0, relief > 0; got t={t}, k={k}, {bandwidth}, {relief}"
        )
    if not 0 < share <= 1:
        raise ValueError(f"the patch's share of the sampled ball must lie in (0, 1], got {share}")
    q = np.arange(n) if queries is None else np.atleast_1d(np.asarray(queries, dtype=np.int64))
    if q.size == 0 or q.min() < 0 or q.max() >= n:
        raise PointCloudError(f"query indices must lie in 0..{n - 1}")
    m = min(n, patch or default_loss_patch(u, share, int(q[0])))
    k = min(k or default_neighbours(m, d), (m - 1) // 2)
    if k < 2:
        raise PointCloudError(f"a patch of {m} samples is too small; raise patch or add samples")
    s = relief_scale(u, f, relief, int(q[0]))
    steps = t or walk_steps(m, k, d)
    basis = Monomials.of_degree(d, fit_degree(m, d))
    tree = NearestNeighbors(n_neighbors=m).fit(u)
    if np.any(tree.kneighbors(u, n_neighbors=2)[0][:, 1] == 0):
        raise PointCloudError("some sample coordinates coincide; remove duplicate points first")
    kt, region, shift, residual, fitted = (np.empty(len(q)) for _ in range(5))
    reach_w = np.empty((len(q), m))
    reach_i = np.empty((len(q), m), dtype=np.int64)
    batch = max(1, min(nodes_per_batch // m, 4_000_000 // (m * d * d * basis.size), 4_000_000 // (m * m)))
    for start in range(0, len(q), batch):
        qb = q[start : start + batch]
        P = query_patches(tree, u, qb)
        du = u[P] - u[qb][:, None, :]
        rho = np.linalg.norm(du, axis=2).max(axis=1)
        Y = du / rho[:, None, None]
        indptr, indices, kth = _patch_knn(du, k)
        sigma = bandwidth * kth  # per patch: the graph's own scale, the same on both sides
        graph = _PatchGraph(indptr, indices, sigma, steps, alpha)
        Z = f[P] - f[qb][:, None]
        kt_b, p_cloud, rel, shift_b, H0 = _paired_walk(Y, Z, rho, basis, np.full(len(qb), s), graph)
        sl = slice(start, start + len(qb))
        kt[sl], reach_w[sl], reach_i[sl], residual[sl], shift[sl] = kt_b, p_cloud, P, rel, shift_b
        fitted[sl] = _sigma2(H0) / rho**4
        if calibrate:  # the reference paraboloid ½|u − u_q|² on the same patches, its own relief rule: R/s² → d(d − 1)
            s_ref = 2.0 * relief / rho
            ref = _paired_walk(Y, 0.5 * (rho**2)[:, None] * np.einsum("bmi,bmi->bm", Y, Y), rho, basis, s_ref, graph)
            gain = d * (d - 1) / (ref[0] / s_ref**2)  # calibrated R/s² per unit of k_t/s²
            region[sl] = kt_b / s**2 * gain
            if d >= 3:
                region[sl] += _anisotropy(Y, H0, rho, basis, np.full(len(qb), s), gain, graph)
    if not calibrate:
        region[:] = np.nan
    cap = SHIFT_CAP * np.abs(region)
    capped = np.clip(shift, -cap, cap)  # the model moves the walk's reading by at most half of it
    return LossGraphCurvature(
        queries=q,
        comparison=kt,
        scalar=region + capped,
        region=region,
        to_point=capped,
        clipped=shift - capped,
        fitted=fitted,
        scale=s,
        steps=steps,
        patch=m,
        degree=basis.degree,
        neighbours=k,
        reach_index=reach_i,
        reach_weight=reach_w,
        fit_residual=residual,
    )

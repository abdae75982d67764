"""Every spectral number of the Hessian from one Krylov budget (SPEC §7).

One long Lanczos run (full re-orthogonalisation, Rademacher start) gives λmax, the top-k, λmin and the Hessian
eigenvector directions, each stopped at its own error bound; its tridiagonal is also the first start of the
stochastic Lanczos quadrature (SLQ) density, and its Krylov basis Q deflates the trace (Hutch++'s idea with a Krylov
range): tr H = tr(Q H Qᵀ) + tr((I − QᵀQ) H (I − QᵀQ)), the first term exact (= tr T), the second estimated by
Rademacher probes projected off Q, whose variance lacks the outlying eigenvalues that dominate plain Hutchinson's.
The density's further starts each give one such probe for free (from the Lanczos relation, no extra product).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .density import SpectralDensity, quadrature
from .lanczos import Lanczos, error_bounds, lanczos

KRYLOV_BYTES = 1 << 30  # memory the stored Krylov basis (float64) may take
MAX_STEPS = 400  # longest extremes run (a cluster at the bottom of a net's spectrum takes 50–150 steps)
TRACE_MIN_PROBES = 5  # fewest probes behind a trace standard error


def max_steps(num_params: int, cap: int = MAX_STEPS) -> int:
    """Steps the extremes run may take: ``cap``, fewer when its basis would exceed :data:`KRYLOV_BYTES` (≥ 30)."""
    return int(max(30, min(cap, KRYLOV_BYTES // (8 * max(num_params, 1)))))


def _matvec(problem: Any):
    def mv(x: np.ndarray) -> np.ndarray:
        return problem.hvp(torch.from_numpy(np.ascontiguousarray(x))).double().numpy()

    return mv


def rademacher(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice([-1.0, 1.0], size=n)


def extremes_run(  # noqa: PLR0913
    problem: Any,
    n_top: int,
    n_bottom: int,
    tol: float = 1e-4,
    seed: int = 0,
    steps: int | None = None,
    *,
    deflate: np.ndarray | None = None,
    zero_floor: float = 0.0,
    start: np.ndarray | None = None,
) -> Lanczos:
    """One Lanczos run from a seeded Rademacher start that stops once the ``n_top`` largest and ``n_bottom``
    smallest Ritz values are each within ``tol`` relative (:func:`landscape.hessian.lanczos.error_bounds`).
    ``run.converged_at`` records the step (= HVPs) at which ``max``, ``top`` and ``min``/``bottom`` converged;
    a quantity missing there did not converge within ``steps`` (default :func:`max_steps`). ``deflate`` (r, P)
    orthonormal rows: the run sees H on their orthogonal complement only (start and every product projected), so
    it finds what a single-vector run misses, such as a second copy of a repeated eigenvalue. ``zero_floor``: an
    eigenvalue within ``zero_floor`` × the largest |Ritz value| of zero counts as converged once its bound is
    ``tol`` × that floor (a classifier head's softmax-shift null space has exact zeros, which a relative test
    never passes: a 650-parameter block took 386 products instead of about 60). ``start``: the first Lanczos
    vector instead of the seeded Rademacher one (a warm start, e.g. a neighbouring point's Ritz vectors)."""
    if n_top < 0 or n_bottom < 0 or n_top + n_bottom == 0:
        raise ValueError(f"ask for at least one eigenvalue (n_top = {n_top}, n_bottom = {n_bottom})")
    P = problem.num_params
    asked = {"max": (1, 0) if n_top else None, "top": (n_top, 0) if n_top > 1 else None}
    asked.update(min=(0, 1) if n_bottom else None, bottom=(0, n_bottom) if n_bottom > 1 else None)
    want = {k: v for k, v in asked.items() if v is not None}

    def done(run: Lanczos) -> bool:
        theta, _, res = run.ritz()
        floor = max(zero_floor * float(np.max(np.abs(theta))) if len(theta) else 0.0, 1e-300)
        ok = error_bounds(theta, res) <= tol * np.maximum(np.abs(theta), floor) if not run.breakdown else None
        for name, (top, bottom) in want.items():
            if name in run.converged_at:
                continue
            if run.breakdown or (
                len(theta) >= top + bottom + 1 and ok[len(theta) - top :].all() and ok[:bottom].all()  # type: ignore
            ):
                run.converged_at[name] = run.steps
        return len(run.converged_at) == len(want)

    mv = _matvec(problem)
    v0 = rademacher(P, np.random.default_rng(seed)) if start is None else np.asarray(start, dtype=np.float64)
    if deflate is not None and len(deflate):
        V = np.asarray(deflate, dtype=np.float64)
        project = lambda x: x - V.T @ (V @ x)
        mv, v0 = (lambda x, h=mv: project(h(project(x)))), project(v0)
    run = lanczos(mv, v0, steps or max_steps(P), done)
    if run.breakdown:
        done(run)
    return run


def end_pairs(run: Lanczos, n_top: int, n_bottom: int, vectors: bool = False):
    """The ``n_top`` largest Ritz values (descending), the ``n_bottom`` smallest (ascending), their error bounds,
    and (``vectors``) their unit Ritz vectors as rows."""
    theta, S, res = run.ritz()
    err = error_bounds(theta, res)
    n_top, n_bottom = min(n_top, len(theta)), min(n_bottom, len(theta))
    top, bottom = np.arange(len(theta))[::-1][:n_top], np.arange(n_bottom)
    out = {"top": theta[top], "bottom": theta[bottom], "top_error": err[top], "bottom_error": err[bottom]}
    if vectors:
        out["top_vectors"] = run.ritz_vectors(top, S)
        out["bottom_vectors"] = run.ritz_vectors(bottom, S)
    return out


def deflated_probe(run: Lanczos, g: np.ndarray, hg: np.ndarray | None = None, problem: Any = None) -> float:
    """g_⊥ᵀ H g_⊥ for g_⊥ = g − QᵀQ g. With ``hg`` = H g known (a density start's first product) it costs no
    product: g_⊥ᵀHg_⊥ = gᵀHg − cᵀTc − 2 β_m c_m (q_m·g), c = Q g (the Lanczos relation); else one HVP."""
    c = run.Q @ g
    if hg is not None:
        return float(g @ hg - c @ run.t_times(c) - 2 * run.beta[-1] * c[-1] * float(run.q_next @ g))
    gp = g - run.Q.T @ c
    return float(gp @ _matvec(problem)(gp))


@dataclass
class SpectrumEstimate:
    """λmax, λmin, the top-k, the trace (± its standard error) and the SLQ density from shared Krylov runs, with
    each quantity's error bound and the Hessian-vector products it took (``n_hvp``: ``lambda_max``, ``top_k``,
    ``lambda_min`` = the extremes run's step at which each converged; ``extremes_run``; ``density`` and ``trace`` =
    products beyond the extremes run; ``total``)."""

    lambda_max: float
    lambda_min: float
    top: list[float]
    errors: dict[str, float]
    converged: dict[str, bool]
    trace: float
    trace_se: float
    trace_probes: int
    density: SpectralDensity | None
    n_hvp: dict[str, int] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return [
            f"Hessian {name} did not converge to the tolerance in the Lanczos step limit "
            f"(error bound {self.errors.get(name, float('nan')):.2g})"
            for name, ok in self.converged.items()
            if not ok
        ]


def estimate_spectrum(  # noqa: PLR0913
    problem: Any,
    *,
    top_k: int = 5,
    tol: float = 1e-4,
    density_starts: int = 2,
    density_steps: int = 40,
    trace_probes: int = 30,
    trace_rtol: float = 0.01,
    seed: int = 0,
    run: Lanczos | None = None,
    steps: int | None = None,
) -> SpectrumEstimate:
    """All of it from one budget. ``run``: an extremes run already made (e.g. for eigenvector directions) that
    resolved at least ``top_k`` top and 1 bottom pair; else one is made. Trace probes stop once the standard error
    is ≤ ``trace_rtol`` × |trace| (after :data:`TRACE_MIN_PROBES`) or at ``trace_probes`` in all (0: tr T only).
    A repeated eigenvalue is found once (single-vector Lanczos): the top-k lists distinct values, while the trace
    counts every copy (its probes see the part of the space the run missed)."""
    start, made = problem.n_hvp, run is None
    if run is None:
        run = extremes_run(problem, max(top_k, 1), 1, tol, seed, steps)
    n_run = run.steps
    ends = end_pairs(run, max(top_k, 1), 1)
    rng = np.random.default_rng([seed, 1])
    nodes: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    probes: list[float] = []
    if density_starts:
        for j in range(density_starts):
            if j == 0:
                r = run
            else:
                g = rademacher(problem.num_params, rng)
                first: dict[str, np.ndarray] = {}

                def mv(x: np.ndarray, first: dict = first, g: np.ndarray = g) -> np.ndarray:
                    hx = _matvec(problem)(x)
                    first.setdefault("hg", hx * np.sqrt(g @ g))  # the first step's x is g / |g|
                    return hx

                r = lanczos(mv, g, density_steps)
                if len(probes) < trace_probes:
                    probes.append(deflated_probe(run, g, first["hg"]))
            theta, w = quadrature(r)
            nodes.append(theta)
            weights.append(w)
    n_density = problem.n_hvp - start - (n_run if made else 0)
    t0 = problem.n_hvp
    base = float(np.sum(run.alpha))
    # Q spans the whole space only after P steps: an earlier breakdown (an invariant subspace, e.g. a repeated
    # eigenvalue seen once) leaves the rest of the trace to the probes
    full = run.steps == problem.num_params
    while len(probes) < trace_probes and not full:
        if len(probes) >= TRACE_MIN_PROBES:
            se = np.std(probes, ddof=1) / np.sqrt(len(probes))
            if se <= trace_rtol * abs(base + np.mean(probes)):
                break
        probes.append(deflated_probe(run, rademacher(problem.num_params, rng), problem=problem))
    arr = np.asarray(probes)
    trace = base + (float(arr.mean()) if len(arr) else 0.0)
    trace = base if full else trace
    se = 0.0 if full else (float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan"))
    names = {"lambda_max": "max", "top_k": "top" if top_k > 1 else "max", "lambda_min": "min"}
    n_hvp = {q: run.converged_at.get(c, n_run) for q, c in names.items()}
    n_hvp.update(extremes_run=n_run, density=n_density, trace=problem.n_hvp - t0)
    n_hvp["total"] = n_run + n_hvp["density"] + n_hvp["trace"]
    return SpectrumEstimate(
        lambda_max=float(ends["top"][0]),
        lambda_min=float(ends["bottom"][0]),
        top=ends["top"][:top_k].tolist(),
        errors={"lambda_max": float(ends["top_error"][0]), "lambda_min": float(ends["bottom_error"][0])},
        converged={q: c in run.converged_at for q, c in names.items()},
        trace=trace,
        trace_se=se,
        trace_probes=len(arr),
        density=SpectralDensity(nodes, weights, problem.num_params) if nodes else None,
        n_hvp=n_hvp,
    )

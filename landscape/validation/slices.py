"""Validation of the loss-graph estimator on its real subject (SPEC §4b, §5d): sampled slices of trained nets along
random filter-normalised and Hessian-eigenvector directions (bowls and saddles, steep and shallow, 100 to 2,000
samples), and random quadric slices in k = 2..5 directions at several sample counts and loss units. Every number
is compared with the exact curvature of the same slice at the estimator's scale (:mod:`landscape.hessian.slice_field`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from torch import nn

from ..curvature.loss_graph import loss_graph_curvature
from ..curvature.slice_curvature import READ_SCALE, compare_slice, diffusion_estimate
from ..curvature.slice_geometry import field_curvature, graph_curvature
from ..curvature.zoom import ZoomLevel, pick_level, zoom_in
from ..evaluation import EvalSubset
from ..hessian.slice_field import slice_field
from ..hessian.spectrum import EIGEN_DIRECTIONS, HessianProblem, eigen_directions
from ..sampling.coordinates import ball
from ..sampling.directions import make_directions
from ..sampling.loss_derivatives import FD_STEP, finite_difference_centre, gaussian_smoothed_centre
from ..sampling.sampler import sample_landscape
from .manifolds import random_quadric

NET_DIRECTIONS = ("filter0", "filter1", *EIGEN_DIRECTIONS)
SMOOTHING_WIDTHS = (READ_SCALE, 0.2)  # σ / radius of the Gaussian-smoothed truths: the estimate at θ*, the reach
VARYING_CV = 0.25  # field Spearman is counted where the exact field's std/|mean| is at least this
ZOOM_LEVELS = 3  # the analysis's default (AnalysisOptions.zoom)


@dataclass
class NetPlan:
    """Which slices of one trained net to validate: directions (``filter0``/``filter1``: seeded filter-normalised;
    ``hessian-*``), radii, sample counts and the sample count at which the whole field is compared."""

    name: str
    model: nn.Module
    data: EvalSubset
    directions: tuple[str, ...]
    radii: tuple[float, ...]
    ns: tuple[int, ...]
    field_n: int


@dataclass
class SliceCase:
    """One sampled slice (the largest sample count; smaller counts are its leading rows) and its exact field at
    ``rows`` (R(s)/s² needs the scale, so the field's derivatives are kept)."""

    net: str
    directions: str
    radius: float
    coords: np.ndarray
    losses: np.ndarray
    rows: np.ndarray
    gradients: np.ndarray
    hessians: np.ndarray
    fd_gradient: np.ndarray  # the centre by central differences of the loss (creases included)
    fd_hessian: np.ndarray
    smoothed: dict[float, tuple]  # σ/radius → the Gaussian-smoothed (gradient, Hessian) at θ* (curvature at scale σ)
    zoom_levels: dict[int, list[ZoomLevel]] = field(default_factory=dict)  # per sample count: its readings of θ*
    zoomed: dict[int, "SliceCase"] = field(default_factory=dict)  # per sample count: the picked zoom's own case

    def exact(self, scale: float, n: int) -> np.ndarray:
        """R(s)/s² at the first n samples (NaN where the field was not computed)."""
        out = np.full(n, np.nan)
        keep = self.rows < n
        out[self.rows[keep]] = field_curvature(self.hessians[keep], self.gradients[keep], scale)["scalar"] / scale**2
        return out


def _directions(plan: NetPlan, kind: str, problem: HessianProblem):
    if kind.startswith("filter"):
        return make_directions(plan.model, "filter", 2, seed=int(kind[-1]))
    eig = eigen_directions(problem, kind, 2, tol=1e-5)
    return make_directions(plan.model, "hessian", 2, eigenvectors=eig.eigenvectors)


def _field_rows(coords: np.ndarray, losses: np.ndarray, ns: tuple[int, ...], field_n: int) -> np.ndarray:
    """Every row below ``field_n``, and at every sample count the rows its comparison needs (the centre and the
    draws from its walk's reach)."""
    rows = [np.arange(min(field_n, len(coords)))]
    for n in ns:
        rows.append(diffusion_estimate(coords[:n], losses[:n], replicates=0).truth_rows())
    return np.unique(np.concatenate(rows))


def _case(plan: NetPlan, kind: str, D, coords: np.ndarray, losses: np.ndarray, rows: np.ndarray) -> SliceCase:
    """A slice's truths: the exact field at ``rows``, central differences at :data:`FD_STEP` × its radius and the
    Gaussian-smoothed curvature at :data:`SMOOTHING_WIDTHS` × its radius, all at θ*."""
    radius = float(np.linalg.norm(coords, axis=1).max())
    sl = slice_field(plan.model, plan.data, D.matrix, coords[rows])
    g_fd, h_fd = finite_difference_centre(plan.model, plan.data, D, FD_STEP * radius)
    smoothed = {w: gaussian_smoothed_centre(plan.model, plan.data, D, w * radius) for w in SMOOTHING_WIDTHS}
    return SliceCase(plan.name, kind, radius, coords, losses, rows, sl.gradients, sl.hessians, g_fd, h_fd, smoothed)


def _zoom(plan: NetPlan, kind: str, D, case: SliceCase, n: int, seed: int) -> None:
    """The analysis's zoom at sample count ``n`` (:func:`landscape.curvature.zoom.zoom_in`, fresh n-sample balls);
    where a zoomed reading stands for θ*, its sample gets its own truths."""
    drawn: dict[float, np.ndarray] = {}

    def resample(r: float) -> tuple[np.ndarray, np.ndarray]:
        u = ball(n - 1, 2, r, seed)
        f = sample_landscape(plan.model, plan.data, D, u, progress=False).losses
        if not np.all(np.isfinite(f)):
            raise ValueError(f"{plan.name} {kind} radius {r:g}: non-finite losses")
        drawn[r] = f
        return u, f

    first = diffusion_estimate(case.coords[:n], case.losses[:n])
    levels = zoom_in(first, case.radius, resample, levels=ZOOM_LEVELS, seed=0)
    case.zoom_levels[n] = levels
    pick = pick_level(levels)
    if pick > 0:
        est = levels[pick].estimate
        case.zoomed[n] = _case(plan, kind, D, est.coords, drawn[levels[pick].radius], est.truth_rows())


def sample_cases(plan: NetPlan, seed: int = 0, progress: Callable[[str], None] = print) -> list[SliceCase]:
    """Sample every slice of ``plan`` at its largest sample count, compute the exact field where it is needed, and
    zoom in at every sample count as the analysis does."""
    problem = HessianProblem(plan.model, plan.data)
    cases = []
    n_max = max(plan.ns)
    for kind in plan.directions:
        D = _directions(plan, kind, problem)
        for radius in plan.radii:
            t0 = time.perf_counter()
            coords = ball(n_max - 1, 2, radius, seed)
            sample = sample_landscape(plan.model, plan.data, D, coords, progress=False)
            if not np.all(np.isfinite(sample.losses)):
                raise ValueError(f"{plan.name} {kind} radius {radius}: non-finite losses; lower the radius")
            rows = _field_rows(coords, sample.losses, plan.ns, plan.field_n)
            case = _case(plan, kind, D, coords, sample.losses, rows)
            case.radius = radius
            for n in plan.ns:
                _zoom(plan, kind, D, case, n, seed)
            cases.append(case)
            zooms = " ".join(f"n={n}: r {c.radius:.3g}" for n, c in case.zoomed.items())
            progress(
                f"sampled {plan.name:<15}{kind:<16}radius {radius:<5} {time.perf_counter() - t0:6.1f}s"
                + (f"  zoomed {zooms}" if zooms else "")
            )
    return cases


def within(ratio: float, factor: float = 1.5) -> bool:
    """An estimate right in size: the same sign and within ``factor`` of the truth."""
    return bool(np.isfinite(ratio) and 1 / factor <= ratio <= factor)


def net_rows(cases: list[SliceCase], ns: dict[str, tuple[int, ...]], field_n: dict[str, int], add, progress) -> dict:
    """At every sample count: the estimate at θ* against the exact value there (sign, size within 1.5×, |error|
    ≤ 2 SE), the walk's regional reading against the exact field over the same reach, and the field Spearman at
    each net's ``field_n``; returns the scatter data for the figure."""
    scatter: dict[str, list] = {"exact": [], "dc": [], "net": [], "resolved": [], "fd": [], "smoothed": []}
    for c in cases:
        bench = f"net:{c.net}:{c.directions}:r{c.radius:g}"
        for n in ns[c.net]:
            field_here = n == field_n[c.net]
            levels = c.zoom_levels[n]
            pick = pick_level(levels)
            main = diffusion_estimate(c.coords[:n], c.losses[:n], field=True) if field_here else levels[0].estimate
            est = levels[pick].estimate if pick else main
            z = c.zoomed.get(n, c)  # the reading's own sample and truths (the zoom's, or the slice's)
            sc = compare_slice(est, np.arange(n), z.exact(est.scale, n))
            fd = graph_curvature(z.fd_hessian, z.fd_gradient, est.scale).scalar / est.scale**2
            values = {
                "sign_agrees": float(sc.agrees),
                "within_1.5": float(within(sc.ratio)),
                "within_1.5_fd": float(within(sc.dc_scalar / fd)),
                "covered_2se": float(sc.covered),
                "covered_2se_fd": float(abs(sc.dc_scalar - fd) <= 2 * sc.dc_scalar_se),
                "resolved": float(sc.resolved),
                "region_within_1.5": float(within(sc.dc_region / sc.exact_region)),
                "sign_agrees_fd": float(np.sign(sc.dc_scalar) == np.sign(fd)),
                "dc_scalar": sc.dc_scalar,
                "dc_se": sc.dc_scalar_se,
                "read_radius": levels[pick].radius,
                "zooms": float(len(levels) - 1),
                "zoomed": float(pick > 0),
                "exact_scalar": sc.exact_scalar,
                "dc_region": sc.dc_region,
                "exact_region": sc.exact_region,
                "fd_scalar": fd,
                "abs_rel_error": abs(sc.dc_scalar - sc.exact_scalar) / abs(sc.exact_scalar),
            }
            for w, (g, H) in z.smoothed.items():  # R(s)/s² of the loss smoothed at σ = w × the read radius
                values[f"smoothed_scalar_{w:g}"] = graph_curvature(H, g, est.scale).scalar / est.scale**2
            sm = values[f"smoothed_scalar_{READ_SCALE:g}"]  # the stated truth: the curvature at the read scale
            values["sign_agrees_smoothed"] = float(np.sign(sc.dc_scalar) == np.sign(sm))
            values["within_1.5_smoothed"] = float(within(sc.dc_scalar / sm))
            values["covered_2se_smoothed"] = float(abs(sc.dc_scalar - sm) <= 2 * sc.dc_scalar_se)
            # a sign the estimate itself claims (|dc| ≥ 2 SE): is it right?
            if abs(sc.dc_scalar) >= 2 * sc.dc_scalar_se:
                values["claimed_sign_agrees_smoothed"] = float(np.sign(sc.dc_scalar) == np.sign(sm))
            # the walk's reading against the curvature at its own scale, creases included (reach: σ ≈ 0.2 × radius)
            values["region_within_1.5_smoothed"] = float(within(sc.dc_region / values["smoothed_scalar_0.2"]))
            if sc.resolved:  # the estimator's own claim that θ* is resolved: is it right when it says so?
                values["resolved_within_1.5_fd"] = float(within(sc.dc_scalar / fd))
                values["resolved_within_1.5_smoothed"] = float(within(sc.dc_scalar / sm))
            for metric, v in values.items():
                add(bench, "loss-graph", 2, n, 0.0, metric, v)
            scatter["exact"].append(sc.exact_scalar)
            scatter["dc"].append(sc.dc_scalar)
            scatter["fd"].append(fd)
            scatter["smoothed"].append(sm)
            scatter["net"].append(c.net)
            scatter["resolved"].append(sc.resolved)
            line = (
                f"{bench:<40} n={n:<5} r={levels[pick].radius:<7.3g} θ*: dc {sc.dc_scalar:+9.3g} ± "
                f"{sc.dc_scalar_se:<8.2g} exact {sc.exact_scalar:+9.3g} ({sc.ratio:5.2f}×)  reach: dc "
                f"{sc.dc_region:+9.3g} exact {sc.exact_region:+9.3g}  fd {fd:+9.3g}  smoothed σ/r "
                + " ".join(f"{w:g}: {values[f'smoothed_scalar_{w:g}']:+.3g}" for w in z.smoothed)
            )
            if field_here:  # the field is the sampled slice's, whatever radius stands for θ*
                exact = c.exact(main.scale, n)
                rho = compare_slice(main, np.arange(n), exact).field_spearman
            if field_here and np.isfinite(rho):
                ok = np.isfinite(exact)
                cv = float(np.std(exact[ok]) / (abs(np.mean(exact[ok])) + 1e-300))
                add(bench, "loss-graph", 2, n, 0.0, "field_spearman", rho)
                add(bench, "loss-graph", 2, n, 0.0, "exact_field_cv", cv)
                line += f"  field Spearman {rho:+.2f} (cv {cv:.2f})"
            flags = ("" if sc.agrees else "   SIGN MISS") + ("" if sc.covered else "   NOT COVERED")
            progress(line + flags + ("" if sc.resolved else "   unresolved"))
    return scatter


def quadric_rows(dims, ns, units, clouds: int, seed: int, add, progress) -> None:
    """Random quadric slices f = ½uᵀAu (half bowls, half saddles with negative scalar curvature at the origin),
    samples uniform in the unit ball as a real slice's are: sign at the origin for every (k, n, loss unit), and the
    size, |R̂ − R|/|R| with R = (tr A)² − ‖A‖²_F, at unit 1."""
    rng = np.random.default_rng(seed)
    for k in dims:
        quads = [(i % 2 == 0, random_quadric(k, i % 2 == 0, rng)) for i in range(clouds)]
        for n in ns:
            t0 = time.perf_counter()
            right = {unit: 0 for unit in units}
            errors = []
            for i, (bowl, A) in enumerate(quads):
                u = ball(n - 1, k, 1.0, seed + 1000 * k + i)
                f = 0.5 * np.einsum("ni,ij,nj->n", u, A, u)
                truth = np.trace(A) ** 2 - np.sum(A * A)
                for unit in units:
                    est = loss_graph_curvature(u, unit * f, [0])
                    right[unit] += (est.comparison[0] > 0) == bowl
                    if unit == 1.0:
                        errors.append(abs(est.scalar[0] - truth) / abs(truth))
            sec = (time.perf_counter() - t0) / (clouds * len(units))
            for unit in units:
                add(f"lossgraph-quadric:k{k}:x{unit:g}", "loss-graph", k, n, 0.0, "sign_accuracy", right[unit] / clouds)
            if errors:
                add(f"lossgraph-quadric-size:k{k}", "loss-graph", k, n, 0.0, "median_rel_error", np.median(errors))
                add(f"lossgraph-quadric-size:k{k}", "loss-graph", k, n, 0.0, "worst_rel_error", np.max(errors))
            add(f"lossgraph-quadric:k{k}", "loss-graph", k, n, 0.0, "seconds", sec)
            accs = " ".join(f"×{unit:g}: {right[unit] / clouds:.3f}" for unit in units)
            size = f"  size: median {np.median(errors):.3f}, worst {np.max(errors):.3f}" if errors else ""
            progress(f"lossgraph-quadric k={k} n={n:<5} sign accuracy {accs}{size}  ({sec:.2f}s per estimate)")


ROUGH_SLICES: dict[str, tuple] = {
    # name: (f(u, rng), truth of the smooth part at the origin, noise as a fraction of the loss range)
    "quartic bowl": (lambda u: 0.5 * (u**2).sum(1) + 0.25 * (u**2).sum(1) ** 2, 2.0, 0.0),
    "saddle, 1 % noise": (lambda u: 0.5 * (u[:, 0] ** 2 - u[:, 1] ** 2), -2.0, 0.01),
    "bowl, convex crease": (lambda u: 0.5 * (u**2).sum(1) + 0.1 * np.abs(u[:, 0]), 2.0, 0.0),
    "bowl, concave crease": (lambda u: 0.5 * (u**2).sum(1) - 0.1 * np.abs(u[:, 0]), 2.0, 0.0),
}


def rough_rows(ns: tuple[int, ...], clouds: int, seed: int, add, progress) -> None:
    """Slices with structure outside the quadratic family: a quartic (the field varies inside the walk's reach),
    loss noise finer than the sample spacing and a crease through θ* (SPEC §5e). The estimate at θ* against the
    smooth part's exact value (2 for bowls, −2 for the saddle), mean over ``clouds`` draws at each n: its error must
    not grow with n (for creases the truth at the walk's scale includes the crease, so only the sign and the
    non-growth are asked)."""
    for name, (fn, truth, noise) in ROUGH_SLICES.items():
        line = []
        for n in ns:
            vals, ses = [], []
            for i in range(clouds):
                u = ball(n - 1, 2, 1.0, seed + i)
                f = fn(u)
                if noise:
                    rng = np.random.default_rng(seed + 99 + i)
                    f = f + noise * np.ptp(f) * rng.standard_normal(n) * (np.arange(n) > 0)
                est = diffusion_estimate(u, f)
                vals.append(est.scalar)
                ses.append(est.se)
            err = abs(float(np.mean(vals)) - truth) / abs(truth)
            bench = f"rough:{name}"
            add(bench, "loss-graph", 2, n, noise, "abs_rel_error", err)
            add(bench, "loss-graph", 2, n, noise, "sign_right", float(np.mean(np.sign(vals) == np.sign(truth))))
            add(bench, "loss-graph", 2, n, noise, "dc_scalar", float(np.mean(vals)))
            line.append(f"n={n}: {np.mean(vals):+.3g} ± {np.mean(ses):.2g} (error {err:.2f})")
        progress(f"rough slice {name:<22} truth {truth:+g}: " + "  ".join(line))


def quartic_rows(dims, ns, seed: int, add, progress) -> None:
    """k = 3..5 outside the quadratic family (where the anisotropy correction is exact by construction): the
    bowl ½|u|² + ¼|u|⁴ + 0.3 u₁u₂², R = k(k − 1) at θ*; relative error of the estimate at θ*."""
    for k in dims:
        line = []
        for n in ns:
            u = ball(n - 1, k, 1.0, seed + k)
            r2 = (u**2).sum(1)
            est = loss_graph_curvature(u, 0.5 * r2 + 0.25 * r2**2 + 0.3 * u[:, 0] * u[:, 1] ** 2, [0])
            err = abs(est.scalar[0] - k * (k - 1)) / (k * (k - 1))
            add(f"quartic-size:k{k}", "loss-graph", k, n, 0.0, "abs_rel_error", err)
            line.append(f"n={n}: {est.scalar[0]:.3g} (error {err:.2f})")
        progress(f"quartic slice k={k} truth {k * (k - 1)}: " + "  ".join(line))

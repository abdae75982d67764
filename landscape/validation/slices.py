"""Validation of the loss-graph estimator on its real subject (SPEC §4b, §5d): sampled slices of trained nets along
random filter-normalised and Hessian-eigenvector directions (bowls and saddles, steep and shallow, 100 to 2,000
samples), and random quadric slices in k = 2..5 directions at several sample counts and loss units. Every number
is compared with the exact curvature of the same slice at the estimator's scale (:mod:`landscape.hessian.slice_field`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import spearmanr
from torch import nn

from ..curvature.diffusion import knn_smooth
from ..curvature.loss_graph import default_loss_patch, loss_graph_curvature
from ..curvature.slice_curvature import SMOOTH_K
from ..curvature.slice_geometry import graph_curvature
from ..evaluation import EvalSubset
from ..hessian.slice_field import FD_STEP, finite_difference_centre, slice_field
from ..hessian.spectrum import EIGEN_DIRECTIONS, HessianProblem, eigen_directions
from ..sampling.coordinates import ball
from ..sampling.directions import make_directions
from ..sampling.sampler import sample_landscape
from .manifolds import random_quadric

NET_DIRECTIONS = ("filter0", "filter1", *EIGEN_DIRECTIONS)
VARYING_CV = 0.25  # field Spearman is counted where the exact field's std/|mean| is at least this


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

    def exact(self, scale: float, n: int) -> np.ndarray:
        """R(s)/s² at the first n samples (NaN where the field was not computed)."""
        out = np.full(n, np.nan)
        for i, r in enumerate(self.rows):
            if r < n:
                out[r] = graph_curvature(self.hessians[i], self.gradients[i], scale).scalar / scale**2
        return out


def _directions(plan: NetPlan, kind: str, problem: HessianProblem):
    if kind.startswith("filter"):
        return make_directions(plan.model, "filter", 2, seed=int(kind[-1]))
    eig = eigen_directions(problem, kind, 2, tol=1e-5)
    return make_directions(plan.model, "hessian", 2, eigenvectors=eig.eigenvectors)


def _field_rows(coords: np.ndarray, ns: tuple[int, ...], field_n: int) -> np.ndarray:
    """The centre's patch at every sample count, and every row below ``field_n``."""
    rows = [np.arange(min(field_n, len(coords)))]
    for n in ns:
        dist = np.linalg.norm(coords[:n], axis=1)
        rows.append(np.argsort(dist, kind="stable")[: default_loss_patch(n, coords.shape[1])])
    return np.unique(np.concatenate(rows))


def sample_cases(plan: NetPlan, seed: int = 0, progress: Callable[[str], None] = print) -> list[SliceCase]:
    """Sample every slice of ``plan`` at its largest sample count and compute the exact field where it is needed."""
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
            rows = _field_rows(coords, plan.ns, plan.field_n)
            field = slice_field(plan.model, plan.data, D, coords[rows])
            g_fd, h_fd = finite_difference_centre(plan.model, plan.data, D, FD_STEP * radius)
            cases.append(
                SliceCase(
                    plan.name, kind, radius, coords, sample.losses, rows, field.gradients, field.hessians, g_fd, h_fd
                )
            )
            progress(f"sampled {plan.name:<15}{kind:<16}radius {radius:<5} {time.perf_counter() - t0:6.1f}s")
    return cases


def net_rows(cases: list[SliceCase], ns: dict[str, tuple[int, ...]], field_n: dict[str, int], add, progress) -> dict:
    """Centre sign agreement (with the exact centre and with the exact field averaged over the walk's reach) at every
    sample count, and the field Spearman at each net's ``field_n``; returns the scatter data for the figure."""
    scatter: dict[str, list] = {"exact": [], "dc": [], "net": []}
    for c in cases:
        bench = f"net:{c.net}:{c.directions}:r{c.radius:g}"
        for n in ns[c.net]:
            est = loss_graph_curvature(c.coords[:n], c.losses[:n], None if n == field_n[c.net] else [0])
            exact = c.exact(est.scale, n)
            centre = int(np.flatnonzero(est.queries == 0)[0])
            dc, truth = est.scalar[centre], exact[0]
            reach_vals = exact[est.reach_index[centre]]
            reach = float(np.nansum(est.reach_weight[centre] * reach_vals))
            add(bench, "loss-graph", 2, n, 0.0, "sign_agrees", float(np.sign(dc) == np.sign(truth)))
            add(bench, "loss-graph", 2, n, 0.0, "sign_agrees_reach", float(np.sign(dc) == np.sign(reach)))
            fd = graph_curvature(c.fd_hessian, c.fd_gradient, est.scale).scalar / est.scale**2
            add(bench, "loss-graph", 2, n, 0.0, "sign_agrees_fd", float(np.sign(dc) == np.sign(fd)))
            add(bench, "loss-graph", 2, n, 0.0, "dc_scalar", dc)
            add(bench, "loss-graph", 2, n, 0.0, "exact_scalar", truth)
            add(bench, "loss-graph", 2, n, 0.0, "fd_scalar", fd)
            scatter["exact"].append(truth)
            scatter["dc"].append(dc)
            scatter["net"].append(c.net)
            line = f"{bench:<40} n={n:<5} dc {dc:+10.3g}  exact {truth:+10.3g}  reach {reach:+10.3g}  fd {fd:+10.3g}"
            if n == field_n[c.net]:
                ok = np.isfinite(exact)
                cv = float(np.std(exact[ok]) / (abs(np.mean(exact[ok])) + 1e-300))
                rho = float(spearmanr(knn_smooth(c.coords[:n], est.scalar, SMOOTH_K)[ok], exact[ok])[0])
                add(bench, "loss-graph", 2, n, 0.0, "field_spearman", rho)
                add(bench, "loss-graph", 2, n, 0.0, "exact_field_cv", cv)
                line += f"  field Spearman {rho:+.2f} (exact field std/|mean| {cv:.2f})"
            progress(line + ("" if np.sign(dc) == np.sign(truth) else "   SIGN MISS"))
    return scatter


def quadric_rows(dims, ns, units, clouds: int, seed: int, add, progress) -> None:
    """Random quadric slices f = ½uᵀAu (half bowls, half saddles with negative scalar curvature at the origin),
    samples uniform in the unit ball as a real slice's are: sign at the origin for every (k, n, loss unit)."""
    rng = np.random.default_rng(seed)
    for k in dims:
        quads = [(i % 2 == 0, random_quadric(k, i % 2 == 0, rng)) for i in range(clouds)]
        for n in ns:
            t0 = time.perf_counter()
            right = {unit: 0 for unit in units}
            for i, (bowl, A) in enumerate(quads):
                u = ball(n - 1, k, 1.0, seed + 1000 * k + i)
                f = 0.5 * np.einsum("ni,ij,nj->n", u, A, u)
                for unit in units:
                    right[unit] += (loss_graph_curvature(u, unit * f, [0]).comparison[0] > 0) == bowl
            sec = (time.perf_counter() - t0) / (clouds * len(units))
            for unit in units:
                add(f"lossgraph-quadric:k{k}:x{unit:g}", "loss-graph", k, n, 0.0, "sign_accuracy", right[unit] / clouds)
            add(f"lossgraph-quadric:k{k}", "loss-graph", k, n, 0.0, "seconds", sec)
            accs = " ".join(f"×{unit:g}: {right[unit] / clouds:.3f}" for unit in units)
            progress(f"lossgraph-quadric k={k} n={n:<5} sign accuracy {accs}  ({sec:.2f}s per estimate)")

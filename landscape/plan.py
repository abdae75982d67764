"""A plan before the work: an analysis's phases, how much each computes and how long it should take on this machine,
from a few seconds of calibration with the analysis's own code (SPEC §1–7 name the phases); and the options scaled
down to fit a time budget, with what that costs in accuracy.

- :func:`calibrate` times the units: one sampled point (the sampler as the analysis calls it: fixed cost and cost
  per row from two call sizes), one Hessian-vector product, one point of the exact slice field and one float64
  loss evaluation (the central-difference and smoothed truths).
- :func:`plan_analysis` multiplies them by the counts the options imply. The counts that depend on the loss are
  predicted: the Lanczos run of the extremes (λmax, top-k, λmin) by :data:`TYPICAL_LANCZOS` products (at most
  ``max_steps``), the trace's probes by the fewest that give it an error bar (it stops at 1 % error, which trained
  nets reach there; the density's starts are probes too), and the zooms by none (each one costs ``n_samples`` more
  points; the plan states that range).
- :func:`fit_budget` lowers the sample count, the zooms, the Hessian's extra probes and the evaluation subset, in
  that order of preference, until the predicted time fits, and says what it chose.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
from torch import nn

from .analysis import AnalysisOptions, analysis_threads, grid_side, seeded
from .curvature.loss_graph import min_samples
from .curvature.slice_curvature import diffusion_estimate
from .evaluation import EvalSubset
from .hessian.krylov_spectrum import TRACE_MIN_PROBES, extremes_run, max_steps
from .hessian.slice_field import slice_field
from .hessian.spectrum import EIGEN_DIRECTIONS, HessianProblem
from .losses import cross_entropy
from .params import num_params
from .sampling.coordinates import ball
from .sampling.directions import make_directions
from .sampling.loss_derivatives import in_float64, smoothing_nodes
from .sampling.sampler import BF16_CHECK_ROWS, SamplingCache, bf16_pairs, sample_landscape
from .threads import using_threads

# predicted products of the extremes run: 21–73 counted on trained MNIST nets at tol 1e-4 (MLP 66, ConvNet 73,
# ResNet-20 after 1 epoch 48, after 4 epochs 21; benchmarks/plan_accuracy.py and the cpu preset of compare)
TYPICAL_LANCZOS = 60
TRUTH_POINTS = 17  # exact-field points of the default truth: the centre and 16 draws from the walk's reach
CALIBRATION_ROWS = (8, 24)  # sampled rows of the two timed calls (fixed cost + cost per row)
LANCZOS_STEPS = 6  # Lanczos steps of the timed run (after a 2-step run that builds the gradient graph)
MIN_EVAL = 256  # the evaluation subset is never cut below this many examples to fit a budget
# Measured by ``landscape validate --quick`` (trained-net slices, every radius, zoomed as analyze does): the share
# of estimates within 1.5× of the curvature at their read scale, by sample count. What a lower count costs.
WITHIN_BY_SAMPLES = {100: 0.67, 300: 0.75, 1000: 1.0}


@dataclass
class UnitCosts:
    """Seconds per unit of work on this machine, measured by :func:`calibrate` (with ``threads`` torch threads)."""

    sample_fixed: float  # per sampling call (chunks, caches)
    sample_row: float  # per sampled point
    hvp: float  # per Hessian-vector product (graph built)
    hvp_fixed: float  # the first product's extra cost (the gradient graph)
    field_point: float  # per point of the exact slice field
    float64_row: float  # per float64 loss evaluation (central differences, smoothed truth)
    estimate: float  # the diffusion estimate of one sample set (numpy: centre, half patch, jackknife subsets)
    threads: int
    n_eval: int


@dataclass
class Phase:
    name: str
    count: int  # units of work
    unit: str
    seconds: float
    note: str = ""


@dataclass
class AnalysisPlan:
    phases: list[Phase]
    costs: UnitCosts
    options: AnalysisOptions
    zoom_seconds: float = 0.0  # each zoom adds this much (not in the total: only unresolved estimates zoom)
    chosen: list[str] = field(default_factory=list)  # what fit_budget changed, in words

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)

    def lines(self, label: str = "") -> list[str]:
        """The plan as printed before the work."""
        head = f"{label}: " if label else ""
        out = [f"{head}plan ({self.costs.threads} thread(s), {self.costs.n_eval} evaluation examples):"]
        for p in self.phases:
            note = f"  {p.note}" if p.note else ""
            out.append(f"  {p.name:<38} {p.count:>7} {p.unit:<16} {_minutes(p.seconds):>9}{note}")
        total = f"  predicted {_minutes(self.seconds)}"
        if self.zoom_seconds and self.options.zoom:
            total += f" (+{_minutes(self.zoom_seconds)} per zoom, up to {self.options.zoom}, only while unresolved)"
        out.append(total)
        out.extend(f"  budget: {c}" for c in self.chosen)
        return out


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _timed(fn: Callable[[], object], repeat: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def calibrate(
    model: nn.Module,
    data: EvalSubset,
    options: AnalysisOptions,
    loss_fn=cross_entropy,
    *,
    cache: SamplingCache | None = None,
) -> UnitCosts:
    """Time each unit of an analysis of ``model`` on ``data`` with the analysis's code paths (a few seconds to a
    minute on a large net: 36 sampled rows, 8 Lanczos steps, 3 field points, 5 float64 evaluations). The model is
    left as it was (every path restores it) and the caller's random streams are not consumed. Units the options
    do not use are not timed (zero): the Lanczos steps without a Hessian, the truths without curvature.
    ``cache``: the analysis's :class:`~landscape.sampling.sampler.SamplingCache` (pass the same one to
    :func:`landscape.analysis.analyze_model`): the fused graph the calibration builds is then the analysis's."""
    with using_threads(analysis_threads(model, data, options)):  # the thread count the analysis will use
        return seeded(lambda: _calibrate(model, data, options, loss_fn, cache or SamplingCache()))


def _calibrate(
    model: nn.Module, data: EvalSubset, options: AnalysisOptions, loss_fn, cache: SamplingCache
) -> UnitCosts:
    k = options.k
    D = make_directions(model, "gaussian", k, seed=options.seed)
    fuse = options.n_samples >= 32  # as the analysis's calls will
    small, large = CALIBRATION_ROWS
    low = options.sampling_precision == "bfloat16"  # timed in bfloat16 (its check passed), the check apart

    def sample(rows: int) -> None:
        sample_landscape(model, data, D, ball(rows - 1, k, 0.01, 0), loss_fn, progress=False, fuse=fuse, cache=cache,
                         precision=options.sampling_precision, checked_deviation=0.0 if low else None)  # fmt: skip

    sample(4)  # warm-up: allocations, the fused graph (cached as the analysis's would be)
    t_small, t_large = _timed(lambda: sample(small)), _timed(lambda: sample(large))
    row = max((t_large - t_small) / (large - small), 1e-6)
    if low:  # every call checks its first rows in both precisions: a fixed cost per call, timed on 2 of them
        check = _timed(lambda: bf16_pairs(model, data, D, ball(1, k, 0.01, 0), loss_fn, None))
        t_small += check * BF16_CHECK_ROWS / 2
    hvp, hvp_fixed = _hvp_seconds(model, data, loss_fn) if options.hessian or options.directions in EIGEN_DIRECTIONS \
        else (0.0, 0.0)  # fmt: skip
    field_point, f64 = _truth_seconds(model, data, D, loss_fn) if options.curvature else (0.0, 0.0)
    estimate = _estimate_seconds(options) if options.curvature else 0.0
    return UnitCosts(
        sample_fixed=max(t_small - small * row, 0.0), sample_row=row, hvp=hvp, hvp_fixed=hvp_fixed,
        field_point=field_point, float64_row=f64, estimate=estimate, threads=torch.get_num_threads(),
        n_eval=len(data),
    )  # fmt: skip


def _hvp_seconds(model: nn.Module, data: EvalSubset, loss_fn) -> tuple[float, float]:
    """(seconds per Lanczos step — the product and its bookkeeping, as the analysis runs them —, the first
    product's extra cost: the gradient graph)."""
    prob = HessianProblem(model, data, loss_fn)
    first = _timed(lambda: extremes_run(prob, 1, 1, tol=1e-12, seed=0, steps=2))
    hvp = _timed(lambda: extremes_run(prob, 1, 1, tol=1e-12, seed=0, steps=LANCZOS_STEPS)) / LANCZOS_STEPS
    prob.release()
    return hvp, max(first - 2 * hvp, 0.0)


def _truth_seconds(model: nn.Module, data: EvalSubset, D, loss_fn) -> tuple[float, float]:
    """(seconds per exact-field point, per float64 loss evaluation), each timed after a warm-up call."""
    k = D.k
    slice_field(model, data, D.matrix, ball(1, k, 0.01, 2), loss_fn)
    field_point = _timed(lambda: slice_field(model, data, D.matrix, ball(1, k, 0.01, 1), loss_fn)) / 2
    m64, d64 = in_float64(model, data)
    D64 = replace(D, matrix=D.matrix.double()) if D.matrix is not None else D
    sample_landscape(m64, d64, D64, ball(1, k, 0.01, 2), loss_fn, progress=False)
    f64 = _timed(lambda: sample_landscape(m64, d64, D64, ball(3, k, 0.01, 0), loss_fn, progress=False)) / 4
    return field_point, f64


def _estimate_seconds(o: AnalysisOptions) -> float:
    """Seconds of one diffusion estimate of ``o``'s sample count (numpy; independent of the model): timed with two
    jackknife subsets on a synthetic bowl, scaled to ``o.jackknife`` (each subset costs about one estimate)."""
    u = ball(_sample_rows(o) - 1, o.k, 1.0, 0)
    f = 0.5 * (u**2).sum(axis=1)
    two = _timed(lambda: diffusion_estimate(u, f, replicates=2))
    return two * (2 + o.jackknife) / 4


def _sample_rows(o: AnalysisOptions) -> int:
    if o.scheme == "grid":
        return grid_side(o.n_samples, o.k) ** o.k
    if o.scheme == "shells":
        return 3 * -(-o.n_samples // 3) + 1
    return o.n_samples


def _lanczos(params: int) -> int:
    return min(TYPICAL_LANCZOS, max_steps(params))


def typical_probes(o: AnalysisOptions) -> int:
    """The trace's probes beyond those the density's starts supply: the fewest behind an error bar (the trace stops
    there once its error is 1 %), at most ``trace_samples``."""
    return max(0, min(o.trace_samples, TRACE_MIN_PROBES) - max(o.density_starts - 1, 0))


def plan_analysis(o: AnalysisOptions, costs: UnitCosts, params: int) -> AnalysisPlan:
    """The phases of one analysis with ``o`` on a model of ``params`` parameters, at the calibrated ``costs``."""
    c, phases = costs, []
    hvps = 0
    if o.directions in EIGEN_DIRECTIONS:
        n = _lanczos(params)
        hvps += n
        phases.append(Phase("Hessian eigenvector directions", n, "HVPs (typical)", c.hvp_fixed + n * c.hvp))
    rows = _sample_rows(o)

    def per_call(n: int) -> float:
        return c.sample_fixed + n * c.sample_row

    phases.append(Phase("sampling the slice", rows, "points", per_call(rows)))
    if o.grid_points and o.k == 2:
        phases.append(Phase("surface grid", o.grid_points**2, "points", per_call(o.grid_points**2)))
    if o.curvature:
        phases.append(Phase("diffusion estimate (numpy)", 1 + o.jackknife, "estimates", c.estimate))
        truth = rows if o.exact_field else TRUTH_POINTS
        phases.append(Phase("exact slice curvature", truth, "field points", truth * c.field_point,
                            "every sample (--exact-field)" if o.exact_field else "centre + walk's reach"))  # fmt: skip
        evals = 2 * o.k * o.k + 1 + smoothing_nodes(o.k) ** o.k
        phases.append(Phase("central differences + smoothed truth", evals, "float64 points", evals * c.float64_row))
    if o.hessian:
        n = (0 if o.directions in EIGEN_DIRECTIONS else _lanczos(params)) + typical_probes(o)
        n += max(o.density_starts - 1, 0) * o.density_steps
        fixed = 0.0 if hvps else c.hvp_fixed
        what = "λmax, top-k, λmin, trace, density"
        phases.append(Phase("Hessian spectrum", n, "HVPs (typical)", fixed + n * c.hvp, what))
    # a zoom samples again and estimates; its reading's truth replaces the sampled one's (the phase above)
    zoom = per_call(_sample_rows(o)) + c.estimate if o.curvature else 0.0
    return AnalysisPlan(phases, costs, o, zoom_seconds=zoom)


WORTH = 0.05  # a lowering is taken in its turn only when it saves this share of the predicted time


def _lowerings(o: AnalysisOptions, n_eval: float, floor: int) -> list[tuple[AnalysisOptions, float]]:
    """The next step down of each kind still available, in the order of preference: (options, subset factor)."""
    steps = []
    if o.n_samples > floor:
        steps.append((replace(o, n_samples=max(floor, int(o.n_samples * 0.7))), 1.0))
    if o.zoom > 1:
        steps.append((replace(o, zoom=o.zoom - 1), 1.0))
    if o.hessian and (o.trace_samples > 10 or o.density_starts > 1):
        steps.append((replace(o, trace_samples=min(o.trace_samples, 10), density_starts=min(o.density_starts, 1)), 1.0))
    if n_eval * 0.7 >= MIN_EVAL:  # last: a smaller subset changes the loss every number is measured on
        steps.append((o, 0.7))
    return steps


def fit_budget(
    o: AnalysisOptions, costs: UnitCosts, params: int, minutes: float
) -> tuple[AnalysisOptions, AnalysisPlan, float]:
    """Options whose predicted time (one zoom included) fits ``minutes``. Lowered in this order of preference: the
    sample count (to 100, the least the validation measured), the zooms (to 1), the trace's probes and the
    density's extra starts (a wider, still reported, trace error bar), the evaluation subset (to :data:`MIN_EVAL`;
    returned as the factor to apply to it);
    a step that would save less than :data:`WORTH` of the predicted time is passed over for the next one that does
    (300 → 210 samples for a few seconds of a Hessian-bound analysis costs accuracy for nothing), and when none
    does, the step that saves most is taken. Returns the options, their plan (``chosen`` says what changed and what
    it costs) and the evaluation subset's factor (≤ 1)."""
    if not (math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"the budget must be a positive number of minutes, got {minutes}")
    budget, chosen, factor = 60.0 * minutes, [], 1.0
    floor = max(100, min_samples(o.k))

    def predicted(opts: AnalysisOptions, f: float) -> float:
        p = plan_analysis(opts, _scaled(costs, f), params)
        return p.seconds + (p.zoom_seconds if opts.zoom else 0.0)

    start = o
    while (now := predicted(o, factor)) > budget:
        steps = [(opts, factor * f) for opts, f in _lowerings(o, costs.n_eval * factor, floor)]
        if not steps:
            chosen.append(f"nothing left to lower: predicted {_minutes(now)} > {minutes:g} min")
            break
        saved = [now - predicted(opts, f) for opts, f in steps]
        worth = [i for i, v in enumerate(saved) if v >= WORTH * now]
        o, factor = steps[worth[0] if worth else int(np.argmax(saved))]
    if o.n_samples != start.n_samples:
        chosen.append(f"samples {start.n_samples} → {o.n_samples} ({_accuracy(o.n_samples)})")
    if o.zoom != start.zoom:
        chosen.append(f"zooms {start.zoom} → {o.zoom} (estimates still unresolved after it are reported as such)")
    if factor < 1:
        chosen.append(f"evaluation subset {costs.n_eval} → {int(costs.n_eval * factor)} examples (a noisier loss)")
    if o.trace_samples != start.trace_samples or o.density_starts != start.density_starts:
        chosen.append(f"trace probes ≤ {o.trace_samples}, density starts {o.density_starts} (wider trace error bar)")
    plan = plan_analysis(o, _scaled(costs, factor), params)
    plan.chosen = chosen or [f"the defaults fit {minutes:g} min"]
    return o, plan, factor


def _scaled(c: UnitCosts, factor: float) -> UnitCosts:
    """Costs on an evaluation subset ``factor`` × as large (every unit is a pass over the subset)."""
    if factor == 1:
        return c
    s = factor
    return replace(c, sample_row=c.sample_row * s, hvp=c.hvp * s, hvp_fixed=c.hvp_fixed * s,
                   field_point=c.field_point * s, float64_row=c.float64_row * s, n_eval=int(c.n_eval * s))  # fmt: skip


def _accuracy(n: int) -> str:
    """What ``n`` samples cost in accuracy, from the validation table (:data:`WITHIN_BY_SAMPLES`)."""
    known = sorted(WITHIN_BY_SAMPLES)
    near = min(known, key=lambda m: abs(np.log(m / n)))
    return (
        f"validation: {WITHIN_BY_SAMPLES[near]:.0%} of estimates within 1.5× at {near} samples, "
        + f"{WITHIN_BY_SAMPLES[300]:.0%} at 300"
    )


def plan_run(
    model: nn.Module,
    data: EvalSubset,
    options: AnalysisOptions,
    *,
    budget: float | None = None,
    loss_fn=cross_entropy,
    ranks: int = 1,
    cache: SamplingCache | None = None,
) -> tuple[AnalysisOptions, EvalSubset, AnalysisPlan]:
    """Calibrate on ``model``/``data`` and plan the analysis; with a ``budget`` (minutes) the options and the
    evaluation subset (its first examples) are lowered to fit it. ``ranks`` processes share the work; ``cache``:
    the analysis's sampling cache (:func:`calibrate`)."""
    costs = calibrate(model, data, options, loss_fn, cache=cache)
    if options.threads is None:  # the analysis runs with the thread count the calibration measured
        options = replace(options, threads=costs.threads)
    if ranks > 1:  # every phase's rows (samples, field points, the Hessian's examples) are split over the ranks
        costs = _scaled(costs, 1.0 / ranks)
        costs.n_eval = len(data)
    params = num_params(model)
    if budget is None:
        return options, data, plan_analysis(options, costs, params)
    options, plan, factor = fit_budget(options, costs, params, budget)
    return options, data.head(max(1, int(len(data) * factor))), plan


def training_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps_per_epoch: int, epochs: int,
                     val_batches: int = 0, loss_fn=cross_entropy) -> float:  # fmt: skip
    """Predicted seconds of training a copy of ``model`` on batches like ``x``/``y`` (one batch) for ``epochs`` of
    ``steps_per_epoch`` Adam steps plus ``val_batches`` evaluation batches per epoch: 3 timed steps after one
    warm-up. Lightning's own per-step work (logging, progress) is not in it. The model is not touched."""
    import copy

    def run() -> float:
        net = copy.deepcopy(model).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step() -> None:
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()

        step()
        per_step = _timed(step, repeat=3)
        net.eval()
        with torch.no_grad():
            per_val = _timed(lambda: net(x), repeat=2)
        return epochs * (steps_per_epoch * per_step + val_batches * per_val)

    return seeded(run)

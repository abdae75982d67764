"""The plan before the work (landscape.plan): counts from the options, a budget that is met or says why not, and a
calibration that measures without disturbing the model. Wall-clock accuracy is a benchmark's
(benchmarks/plan_accuracy.py), not a test's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from landscape.analysis import AnalysisOptions
from landscape.plan import (
    TRUTH_POINTS,
    TYPICAL_LANCZOS,
    UnitCosts,
    calibrate,
    fit_budget,
    plan_analysis,
    typical_probes,
)
from landscape.sampling.loss_derivatives import smoothing_nodes

from .references import digits_subset, small_mlp

COSTS = UnitCosts(sample_fixed=0.5, sample_row=0.01, hvp=0.05, hvp_fixed=0.2, field_point=0.04, float64_row=0.02,
                  estimate=0.3, threads=1, n_eval=1000)  # fmt: skip
PARAMS = 50_000


def _phase(plan, name):
    return next(p for p in plan.phases if p.name == name)


def test_the_plan_counts_what_the_options_ask_for():
    o = AnalysisOptions(n_samples=300, grid_points=21)
    plan = plan_analysis(o, COSTS, PARAMS)
    assert _phase(plan, "sampling the slice").count == 300
    assert _phase(plan, "sampling the slice").seconds == pytest.approx(0.5 + 300 * 0.01)
    assert _phase(plan, "surface grid").count == 441
    assert _phase(plan, "exact slice curvature").count == TRUTH_POINTS
    fd_smooth = _phase(plan, "central differences + smoothed truth")
    assert fd_smooth.count == 2 * 2 * 2 + 1 + smoothing_nodes(2) ** 2 == 73
    assert typical_probes(o) == 5 - (o.density_starts - 1)  # the fewest behind an error bar, less the density's
    assert typical_probes(AnalysisOptions(trace_samples=3, density_starts=0)) == 3
    hvps = TYPICAL_LANCZOS + typical_probes(o) + (o.density_starts - 1) * o.density_steps
    assert _phase(plan, "Hessian spectrum").count == hvps
    assert plan.seconds == pytest.approx(sum(p.seconds for p in plan.phases))
    assert _phase(plan, "diffusion estimate (numpy)").seconds == 0.3
    assert plan.zoom_seconds == pytest.approx(0.5 + 300 * 0.01 + 0.3)
    every = plan_analysis(AnalysisOptions(exact_field=True), COSTS, PARAMS)
    assert _phase(every, "exact slice curvature").count == 300
    eig = plan_analysis(AnalysisOptions(directions="hessian-mixed"), COSTS, PARAMS)
    assert _phase(eig, "Hessian eigenvector directions").count == TYPICAL_LANCZOS
    assert _phase(eig, "Hessian spectrum").count == typical_probes(o) + (o.density_starts - 1) * o.density_steps
    grid = plan_analysis(AnalysisOptions(scheme="grid", n_samples=400, k=3), COSTS, PARAMS)
    assert _phase(grid, "sampling the slice").count == 7**3
    assert all(p.name != "surface grid" for p in grid.phases)  # k = 3: no 2-D surface
    text = "\n".join(plan.lines("mlp"))
    assert "sampling the slice" in text and "predicted" in text and "per zoom" in text


def test_a_budget_is_met_by_lowering_samples_then_zooms_then_the_probes_then_the_subset():
    o = AnalysisOptions(n_samples=1000, exact_field=True)
    full = plan_analysis(o, COSTS, PARAMS)
    minutes = 0.5 * (full.seconds + full.zoom_seconds) / 60
    fitted, plan, factor = fit_budget(o, COSTS, PARAMS, minutes)
    assert plan.seconds + plan.zoom_seconds <= 60 * minutes
    assert fitted.n_samples < 1000 and factor == 1.0  # the sample count was enough
    assert any("samples 1000 →" in c and "validation" in c for c in plan.chosen)
    tight, plan, factor = fit_budget(o, COSTS, PARAMS, 0.05)  # 3 s: below what the floors allow
    assert tight.n_samples == 100 and tight.zoom == 1 and factor < 1 and 1000 * factor >= 256
    assert any("nothing left to lower" in c for c in plan.chosen)
    same, plan, factor = fit_budget(o, COSTS, PARAMS, 1e4)
    assert same == o and factor == 1.0 and plan.chosen == ["the defaults fit 10000 min"]
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="budget"):
            fit_budget(o, COSTS, PARAMS, bad)


def test_a_budget_passes_over_a_lowering_that_saves_almost_nothing():
    """A Hessian-bound analysis 3 % over its budget: fewer samples would save under 1 % and cost accuracy, so the
    trace's probes are lowered instead and the samples and the subset stay."""
    costly = dataclasses.replace(COSTS, hvp=2.0, hvp_fixed=1.0)
    o = AnalysisOptions(n_samples=300, zoom=1)
    full = plan_analysis(o, costly, PARAMS)
    fitted, plan, factor = fit_budget(o, costly, PARAMS, 0.97 * (full.seconds + full.zoom_seconds) / 60)
    assert (fitted.n_samples, factor) == (300, 1.0) and fitted.trace_samples == 10
    assert plan.seconds + plan.zoom_seconds <= 0.97 * (full.seconds + full.zoom_seconds)
    assert any("trace probes" in c for c in plan.chosen) and not any("samples 300" in c for c in plan.chosen)


def test_calibration_measures_every_unit_and_leaves_the_model_as_it_was():
    model, data = small_mlp(), digits_subset(64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    costs = calibrate(model, data, AnalysisOptions(n_samples=100))
    for name in ("sample_row", "hvp", "field_point", "float64_row", "estimate"):
        value = getattr(costs, name)
        assert np.isfinite(value) and value > 0, (name, value)
    assert costs.n_eval == 64 and costs.threads >= 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())  # the caller's random stream is not consumed
    bare = calibrate(model, data, AnalysisOptions(n_samples=100, hessian=False, curvature=False))
    assert bare.hvp == bare.field_point == bare.float64_row == bare.estimate == 0.0 and bare.sample_row > 0


def test_the_calibration_builds_the_fused_graph_the_analysis_then_uses(monkeypatch):
    """Given one cache, calibrate() and analyze_model() build the conv net's fused graph once between them, and the
    analysis gives the same numbers as one that builds its own."""
    from landscape.analysis import analyze_model
    from landscape.models import build_model, model_config
    from landscape.sampling import sampler
    from landscape.sampling.sampler import SamplingCache

    torch.manual_seed(0)
    model, data = build_model(model_config("convnet", (1, 8, 8), 10)).eval(), digits_subset(64, double=False)
    built = []
    real = sampler.try_inference_graph
    monkeypatch.setattr(sampler, "try_inference_graph", lambda *a: built.append(1) or real(*a))
    opts = AnalysisOptions(n_samples=40, grid_points=0, zoom=0, hessian=False, curvature=False, threads=1)
    cache = SamplingCache()
    calibrate(model, data, opts, cache=cache)
    assert len(built) == 1 and [why for _, why in cache.graphs.values()] == ["fused"]
    shared = analyze_model(model, data, options=opts, sampling_cache=cache)
    assert len(built) == 1 and shared.sample.meta["inference"] == "fused"
    own = analyze_model(model, data, options=opts)
    assert len(built) == 2
    np.testing.assert_array_equal(shared.sample.losses, own.sample.losses)


def test_bfloat16_is_calibrated_in_bfloat16_with_its_check(monkeypatch):
    """Under sampling_precision="bfloat16" the timed calls run bfloat16 (the path the analysis takes where the check
    passes) and the check's pairs of evaluations are timed too (a fixed cost of every call)."""
    from landscape import plan

    ran, checked = [], []
    real_sample, real_pairs = plan.sample_landscape, plan.bf16_pairs
    monkeypatch.setattr(plan, "sample_landscape", lambda *a, **k: ran.append(real_sample(*a, **k).meta["precision"]))
    monkeypatch.setattr(plan, "bf16_pairs", lambda *a: checked.append(len(a[3])) or real_pairs(*a))
    model, data = small_mlp(double=False), digits_subset(64, double=False)
    opts = AnalysisOptions(n_samples=100, hessian=False, curvature=False, threads=1)
    calibrate(model, data, dataclasses.replace(opts, sampling_precision="bfloat16"))
    assert ran == ["bfloat16"] * 3 and checked == [2]
    ran.clear()
    calibrate(model, data, opts)
    assert ran == ["float32"] * 3 and checked == [2]

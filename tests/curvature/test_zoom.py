"""Zooming in until the estimate reads θ* (landscape.curvature.zoom, SPEC §5e): exact references are analytic
slices whose curvature at θ* is known and differs from the curvature a third of the radius out."""

import numpy as np
import pytest

from landscape.curvature.slice_curvature import diffusion_estimate
from landscape.curvature.zoom import MAX_ZOOM, ZOOM_FACTOR, ZoomLevel, pick_level, zoom_in
from landscape.sampling.coordinates import ball


def _quartic(u: np.ndarray, c: float) -> np.ndarray:
    r2 = (u**2).sum(1)
    return 0.5 * r2 + c * r2**2


def _saddle_with_walls(u: np.ndarray) -> np.ndarray:
    """½(u₁² − u₂²) + 3u₁²u₂² + |u|³ (outside the quartic family; a crease-free cubic wall): R = −2 at θ*."""
    r2 = (u**2).sum(1)
    return 0.5 * (u[:, 0] ** 2 - u[:, 1] ** 2) + 3 * u[:, 0] ** 2 * u[:, 1] ** 2 + r2**1.5


def _zoom(fn, n=300, radius=1.0, levels=2, seed=3):
    radii = []

    def resample(r):
        radii.append(r)
        u = ball(n - 1, 2, r, seed=seed)
        return u, fn(u)

    u = ball(n - 1, 2, radius, seed=seed)
    first = diffusion_estimate(u, fn(u), replicates=4)
    return zoom_in(first, radius, resample, levels=levels, replicates=4), radii


@pytest.mark.parametrize("fn", [lambda u: _quartic(u, 5.0), _saddle_with_walls], ids=["quartic", "saddle-walls"])
def test_zooming_in_reads_the_curvature_at_the_point(fn):
    """At radius 1 the walk reads the walls (unresolved; the quartic measured 5–21 against 2); a ball 4× smaller
    resolves θ*: the picked reading is within 10 % of the truth there, closer than the first, and its error bar
    covers the truth."""
    truth = -2.0 if fn is _saddle_with_walls else 2.0
    levels, radii = _zoom(fn)
    assert not levels[0].estimate.resolved and len(levels) >= 2
    assert radii[0] == pytest.approx(1 / ZOOM_FACTOR)
    best = levels[pick_level(levels)]
    assert best.estimate.resolved and best.radius < 1
    err = abs(best.estimate.scalar - truth) / abs(truth)
    assert err <= 0.1 and err < abs(levels[0].estimate.scalar - truth) / abs(truth)
    assert abs(best.estimate.scalar - truth) <= 2 * best.estimate.se


def test_a_resolved_slice_is_not_resampled():
    """A quadratic slice is resolved at the sampled radius: no zoom is drawn."""
    A = np.array([[3.0, 1.0], [1.0, -2.0]])
    levels, radii = _zoom(lambda u: 0.5 * np.einsum("ni,ij,nj->n", u, A, u))
    assert len(levels) == 1 and radii == [] and pick_level(levels) == 0


def test_zoom_stops_where_float32_rounding_dominates():
    """A zoom whose losses change by less than float32 rounding is dropped and the ladder stops."""
    u = ball(299, 2, 1.0, seed=3)
    first = diffusion_estimate(u, _quartic(u, 5.0), replicates=0)
    levels = zoom_in(first, 1.0, lambda r: (ball(299, 2, r, seed=3), 1.0 + 1e-9 * ball(299, 2, r, seed=4)[:, 0]),
                     levels=3, replicates=0)  # fmt: skip
    assert len(levels) == 1


def test_agreement_hook_and_bounds():
    """Every decision passes through ``agree`` (rank zero's decision in a multi-rank run); counts are bounded."""
    u = ball(299, 2, 1.0, seed=3)
    first = diffusion_estimate(u, _quartic(u, 5.0), replicates=0)
    called = []
    assert len(zoom_in(first, 1.0, lambda r: called.append(r), agree=lambda _b: True)) == 1 and not called
    with pytest.raises(ValueError, match="zoom levels must lie in"):
        zoom_in(first, 1.0, lambda r: None, levels=MAX_ZOOM + 1)
    with pytest.raises(ValueError, match="radius must be positive"):
        zoom_in(first, float("nan"), lambda r: None)
    with pytest.raises(ValueError, match="no zoom levels"):
        pick_level([])


def test_pick_falls_back_to_the_smallest_error_bar():
    """No reading resolved: the one with the smallest error bar stands for θ* (not the largest |estimate|/SE)."""
    u = ball(99, 2, 1.0, seed=3)
    ests = [diffusion_estimate(u, _quartic(u, c), replicates=4) for c in (20.0, 5.0, 1.0)]
    for e in ests:
        e.half = float("nan")  # no smaller patch: the support term is unmeasured and the reading unresolved
    levels = [ZoomLevel(r, e) for r, e in zip((1.0, 0.25, 0.0625), ests)]
    assert not any(level.estimate.resolved for level in levels)
    assert pick_level(levels) == int(np.argmin([e.se for e in ests]))
    assert pick_level(levels[::-1]) == 2 - int(np.argmin([e.se for e in ests]))


def test_an_analysis_zooms_in_on_a_saddle_slice_read_wrong_at_its_radius(tmp_path):
    """The Tanh reference MLP's saddle slice (top and bottom Hessian eigenvectors) at radius 3: the walk there
    reads the surroundings (measured +0.50 against −0.267 at θ*, unresolved); two zooms (radius 0.75, 0.1875)
    resolve θ* within 5 %. The zooms' samples are saved and every reading is in results.json."""
    import json

    from landscape.analysis import AnalysisOptions, analyze_model

    from ..references import digits_subset, small_mlp

    model, data = small_mlp(), digits_subset(200)
    fast = dict(grid_points=0, hessian=False, jackknife=4, directions="hessian-mixed", n_samples=200, radius=3.0)
    plain = analyze_model(model, data, options=AnalysisOptions(zoom=0, **fast))
    assert plain.scalars["dc_resolved"] == 0 and plain.scalars["n_zoom"] == 0
    r = analyze_model(model, data, options=AnalysisOptions(**fast))
    s = r.scalars
    assert s["n_zoom"] == 2 and s["dc_radius"] == pytest.approx(3.0 / ZOOM_FACTOR**2)
    assert s["dc_resolved"] == 1 and s["analytic_scalar"] < 0
    assert abs(s["dc_scalar"] - s["analytic_scalar"]) <= 0.05 * abs(s["analytic_scalar"])
    assert abs(s["fd_scalar"] - s["analytic_scalar"]) <= 0.01 * abs(s["analytic_scalar"])  # smooth net: FD = autograd
    # the stated truth (smoothed at σ = 0.1 × 0.1875) is autograd's value up to O(σ²) on a smooth net
    assert abs(s["smoothed_scalar"] - s["analytic_scalar"]) <= 0.02 * abs(s["analytic_scalar"]), s["smoothed_scalar"]
    assert [lv["radius"] for lv in r.zoom_levels] == pytest.approx([3.0, 0.75, 0.1875])
    r.save(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(saved["zoom_levels"]) == 3 and saved["scalars"]["dc_radius"] == pytest.approx(0.1875)
    assert (tmp_path / "run" / "zoom1.npz").exists() and (tmp_path / "run" / "zoom2.npz").exists()
    assert len(r.sample.losses) == 201  # the slice itself (figures, field) is still the radius-3 sample

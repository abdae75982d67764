"""The exact slice field (SPEC §4b) against dense Hessians, the side-by-side verdict, and the analysis options."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from landscape.analysis import AnalysisOptions, analyze_model
from landscape.curvature.slice_curvature import REACH_POINTS, SliceCurvature, compare_slice, diffusion_estimate
from landscape.curvature.slice_geometry import field_curvature, graph_curvature
from landscape.hessian.reference import exact_hessian
from landscape.hessian.slice_field import SliceField, slice_field
from landscape.hessian.spectrum import HessianProblem, extreme_eigenvalues, projected_hessian
from landscape.losses import cross_entropy
from landscape.params import flatten, trainable, unflatten
from landscape.sampling.coordinates import ball
from landscape.sampling.directions import make_directions
from landscape.sampling.loss_derivatives import finite_difference_centre, gaussian_smoothed_centre
from landscape.sampling.sample import LandscapeSample

from ..references import digits_subset, small_mlp

FAST = dict(grid_points=0, trace_samples=4, top_k=2, density_starts=0, jackknife=4)


@pytest.fixture(scope="module")
def mlp():
    return small_mlp(), digits_subset(200)


def test_field_equals_dense_hessian_at_every_point(mlp):
    """g(u) = D∇L(θ* + Du) and A(u) = D H(θ* + Du) Dᵀ, H from torch.func.hessian of the whole net (float64)."""
    model, data = mlp
    D = make_directions(model, "filter", 2, seed=1)
    coords = np.array([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.4]])
    before = [p.detach().clone() for p in model.parameters()]
    field = slice_field(model, data, D.matrix, coords, cross_entropy, batch_size=64)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # left bitwise as it was
    Dm = D.matrix.double()
    base = [p.detach().clone() for _, p in trainable(model)]
    for i, u in enumerate(coords):
        theta = flatten(base) + torch.as_tensor(u) @ Dm
        with torch.no_grad():
            for p, v in zip([p for _, p in trainable(model)], unflatten(theta, base)):
                p.copy_(v)
        H = torch.as_tensor(exact_hessian(model, data, cross_entropy))
        loss, grad = HessianProblem(model, data, cross_entropy).loss_and_grad()
        np.testing.assert_allclose(field.hessians[i], (Dm @ H @ Dm.T).numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(field.gradients[i], (Dm @ grad.double()).numpy(), rtol=1e-8, atol=1e-12)
        assert field.losses[i] == pytest.approx(loss, rel=1e-12)
    with torch.no_grad():
        for p, b in zip([p for _, p in trainable(model)], base):
            p.copy_(b)
    A, g, _ = projected_hessian(HessianProblem(model, data, cross_entropy), D.matrix)  # k HVPs at θ*
    np.testing.assert_allclose(field.hessians[0], A, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(field.gradients[0], g, rtol=1e-8, atol=1e-12)
    curv = field_curvature(field.hessians, field.gradients, 0.3)
    for i in range(3):
        want = graph_curvature(field.hessians[i], field.gradients[i], 0.3)
        assert curv["scalar"][i] == pytest.approx(want.scalar) and curv["gauss"][i] == pytest.approx(
            want.gauss_kronecker
        )


def _quadratic_field(A, g, u):
    grads = g + u @ A
    return SliceField(u, 0.5 * np.einsum("ni,ij,nj->n", u, A, u) + u @ g, grads, np.repeat(A[None], len(u), 0))


def _exact_at(field: SliceField, rows: np.ndarray, scale: float) -> np.ndarray:
    return field_curvature(field.hessians, field.gradients, scale)["scalar"][rows] / scale**2


def test_compare_slice_verdict_and_warnings():
    A, g = np.array([[1.0, 0.3], [0.3, -0.6]]), np.array([0.1, 0.0])
    u = ball(400, 2, 1.0, seed=0)
    field = _quadratic_field(A, g, u)
    est = diffusion_estimate(u, field.losses, replicates=4)
    rows = est.truth_rows()
    assert rows[0] == 0 and len(rows) <= 1 + REACH_POINTS  # the cheap truth: the centre and the reach draws
    sc = compare_slice(est, rows, _exact_at(field, rows, est.scale))
    assert sc.agrees and sc.covered and np.isfinite(sc.dc_scalar_se) and sc.dc_scalar_se > 0
    assert sc.exact_scalar == pytest.approx(graph_curvature(A, g, sc.scale).scalar / sc.scale**2)
    assert sc.dc_scalar == pytest.approx(sc.exact_scalar, rel=0.02) and not sc.warnings
    # a quadratic slice at the estimator's small relief: the field is constant, so the region reads the same
    assert sc.exact_region == pytest.approx(sc.exact_scalar, rel=1e-3)
    assert sc.dc_region == pytest.approx(sc.exact_region, rel=0.02)
    # losses that barely move over the radius: float32 rounding would dominate
    tiny = diffusion_estimate(u, 1.0 + 1e-7 * field.losses, replicates=0)
    assert any("float32" in w for w in tiny.warnings)


def test_compare_slice_flags_a_sign_change_inside_the_reach():
    """A saddle at the centre that turns into a bowl a little way out: the walk reads a bowl over its reach, the
    patch's model says θ* is a saddle; the estimate may move only half-way (the cap), so its error bar must cover
    the centre's value, and the verdict says the curvature changes sign within the reach."""
    u = ball(1000, 2, 1.0, seed=1)
    H = np.zeros((len(u), 2, 2))
    H[:, 0, 0] = 1.0
    H[:, 1, 1] = -0.04 + 3 * u[:, 1] ** 2  # f = ½u₁² − 0.02u₂² + ¼u₂⁴
    f = 0.5 * u[:, 0] ** 2 - 0.02 * u[:, 1] ** 2 + 0.25 * u[:, 1] ** 4
    grads = np.column_stack([u[:, 0], -0.04 * u[:, 1] + u[:, 1] ** 3])
    field = SliceField(u, f, grads, H)
    est = diffusion_estimate(u, f, replicates=4)
    rows = est.truth_rows()
    sc = compare_slice(est, rows, _exact_at(field, rows, est.scale))
    assert sc.exact_scalar < 0 < sc.exact_region and sc.dc_region > 0
    assert sc.dc_scalar < sc.dc_region and sc.covered  # moved towards θ* by the patch's model, within its error
    assert any("changes sign within the walk's reach" in w for w in sc.warnings)
    assert any("beyond what the walk's reading" in w for w in sc.warnings)


@pytest.mark.parametrize("c", [2.0, 5.0])
def test_a_slice_whose_curvature_changes_within_the_reach_is_marked_unresolved_and_covered(c):
    """½|u|² + c|u|⁴ at radius 1: R = 2 at θ*, 2(1 + 12c r² + ...)-ish a third of the radius out, so the walk reads
    the surroundings (measured: 5–21). The support term (halving the patch) sees it: the estimate is marked
    unresolved, warns, and its error bar covers the truth at θ*."""
    u = ball(999, 2, 1.0, seed=3)
    r2 = (u**2).sum(1)
    est = diffusion_estimate(u, 0.5 * r2 + c * r2**2, replicates=4)
    assert est.scalar > 3 and not est.resolved and est.support > 0.5 * abs(est.scalar)
    assert abs(est.scalar - 2.0) <= 2 * est.se
    assert any("not resolved at this radius" in w for w in est.warnings)


def test_a_quadratic_slice_is_resolved_with_no_support_term():
    """On a quadratic slice the reading does not depend on the patch: the support term vanishes (to the fit's
    rounding) and the estimate is marked resolved, with no warning; a mild quartic (½|u|² + ¼|u|⁴) stays resolved."""
    u = ball(299, 2, 1.0, seed=3)
    A = np.array([[3.0, 1.0], [1.0, -2.0]])
    est = diffusion_estimate(u, 0.5 * np.einsum("ni,ij,nj->n", u, A, u), replicates=4)
    assert est.scalar == pytest.approx(2 * np.linalg.det(A), rel=1e-3)
    assert est.support < 1e-3 * abs(est.scalar) and est.resolved and not est.warnings
    r2 = (u**2).sum(1)
    mild = diffusion_estimate(u, 0.5 * r2 + 0.25 * r2**2, replicates=4)
    assert mild.resolved and abs(mild.scalar - 2.0) <= 2 * mild.se


def test_a_verdict_without_both_values_is_nan_not_a_disagreement():
    """A non-finite loss at θ* gives no diffusion value: the verdicts are NaN, not 0 ('the signs disagree')."""
    nan = float("nan")
    s = SliceCurvature(nan, nan, nan, nan, nan).scalars()
    assert np.isnan(s["dc_sign_agrees"]) and np.isnan(s["dc_within_2se"]) and np.isnan(s["dc_resolved"])
    s = SliceCurvature(1.0, 0.1, 2.0, 0.1, nan).scalars()  # no exact value (--no-hessian-like): no verdict either
    assert np.isnan(s["dc_sign_agrees"]) and s["dc_resolved"] == 1.0


def test_too_few_samples_for_a_smaller_patch_are_not_called_resolved():
    """With the fewest samples a slice may have (20 for k = 2) the patch cannot shrink: the support term is not
    measured (NaN, left out of the error bar) and the estimate is not marked resolved, with a warning. At 30
    samples the smaller patch holds 2/3 of them and the Richardson factor follows that share (1/(1 − 2/3) = 3)."""
    A = np.array([[3.0, 1.0], [1.0, -2.0]])
    u = ball(19, 2, 1.0, seed=3)
    est = diffusion_estimate(u, 0.5 * np.einsum("ni,ij,nj->n", u, A, u), replicates=0)
    assert np.isnan(est.support) and not est.resolved
    assert any("too few to check" in w for w in est.warnings)
    u = ball(29, 2, 1.0, seed=3)
    r2 = (u**2).sum(1)
    est = diffusion_estimate(u, 0.5 * r2 + r2**2, replicates=0)
    assert est.half_share == pytest.approx(20 / 30)
    assert est.support == pytest.approx(3 * abs(est.half - est.scalar))


def test_truth_rows_are_the_reach_draws_or_every_sample():
    u = ball(999, 2, 1.0, seed=0)
    f = 0.5 * (u**2).sum(1)
    est = diffusion_estimate(u, f, replicates=0)
    draws = est.reach_draws()
    assert len(draws) == REACH_POINTS and set(draws) <= set(est.centre.reach_index[0])
    # systematic draws follow the walk: the mean |u|² of the draws matches the walk's own second moment
    p = est.centre.reach_weight[0] / est.centre.reach_weight[0].sum()
    walk_mu = p @ (u[est.centre.reach_index[0]] ** 2).sum(1)
    assert (u[draws] ** 2).sum(1).mean() == pytest.approx(walk_mu, rel=0.15)
    assert np.array_equal(est.truth_rows(every=True), np.arange(len(u)))


def test_mixed_hessian_directions_give_a_saddle_slice_read_right(mlp, tmp_path):
    model, data = mlp
    o = AnalysisOptions(directions="hessian-mixed", n_samples=200, radius=0.3, **FAST)
    r = analyze_model(model, data, options=o)
    lmax, lmin, _ = extreme_eigenvalues(HessianProblem(model, data), tol=1e-6)
    np.testing.assert_allclose(sorted(r.direction_eigenvalues, reverse=True), [lmax, lmin], rtol=1e-3, atol=1e-4)
    assert lmin < 0 and r.scalars["analytic_scalar"] < 0  # a saddle slice
    assert r.scalars["dc_sign_agrees"] == 1.0 and r.scalars["dc_scalar"] < 0
    r.save(tmp_path / "mixed")
    back = LandscapeSample.load(tmp_path / "mixed" / "sample")
    assert {"exact_scalar", "exact_hessians", "exact_gradients", "dc_scalar"} <= set(back.arrays)
    assert back.arrays["exact_scalar"][0] == pytest.approx(r.scalars["analytic_scalar"])
    assert back.arrays["exact_hessians"].shape == (201, 2, 2)


def test_exact_field_option_gives_the_whole_field_and_its_figures(mlp, tmp_path):
    """By default the exact curvature is computed at the centre and the walk's reach draws only (the cheap truth);
    ``exact_field`` adds every sample, the diffusion field and its Spearman correlation, and the field figure. The
    estimate itself is the same either way."""
    from landscape.report.figures import analysis_figures

    model, data = mlp
    o = AnalysisOptions(n_samples=200, radius=0.3, hessian=False, exact_field=True, **FAST)
    full = analyze_model(model, data, options=o)
    assert np.isfinite(full.slice.exact_field).all() and full.slice.dc_field is not None
    assert np.isfinite(full.scalars["field_spearman"])
    cheap = analyze_model(model, data, options=replace(o, exact_field=False))
    assert 2 <= np.isfinite(cheap.slice.exact_field).sum() <= 1 + REACH_POINTS and cheap.slice.dc_field is None
    for key in ("dc_scalar", "dc_scalar_se", "analytic_scalar", "dc_region", "analytic_region"):
        assert cheap.scalars[key] == pytest.approx(full.scalars[key], rel=1e-9), key
    names = {p.name for p in analysis_figures(full, tmp_path / "full", "mlp")}
    assert {"field.png", "agreement.png"} <= names
    assert "field.png" not in {p.name for p in analysis_figures(cheap, tmp_path / "cheap", "mlp")}


@pytest.mark.parametrize("scheme", ["grid", "shells"])
def test_three_directions_and_other_schemes(mlp, scheme):
    model, data = mlp
    o = AnalysisOptions(k=3, scheme=scheme, n_samples=216, radius=0.3, hessian=False, **FAST)
    r = analyze_model(model, data, options=o)
    assert r.sample.coords.shape[1] == 3 and np.isfinite(r.scalars["dc_scalar"])
    assert r.scalars["dc_sign_agrees"] == 1.0


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(directions="hessian"), "directions must be one of"),
        (dict(k=1), "2 ≤ k"),
        (dict(k=7), "2 ≤ k"),
        (dict(k=5, n_samples=40), "64 ≤ samples"),
        (dict(scheme="spiral"), "scheme"),
        (dict(radius=float("nan")), "radius"),
        (dict(seed=-1), "seed"),
        (dict(grid_points=2), "grid points"),
        (dict(tol=2.0), "tolerance"),
        (dict(jackknife=1), "jackknife"),
        (dict(dc_t=0), "dc_t"),
        (dict(zoom=5), "zoom must be 0..4"),
        (dict(zoom=-1), "zoom must be 0..4"),
        (dict(dc_t=10**9), "dc_t must be 1..1000"),  # a bound on every count: 10⁹ steps used to run for ever
    ],
)
def test_options_are_checked_when_built(change, message):
    with pytest.raises(ValueError, match=message):
        AnalysisOptions(**change)
    with pytest.raises(ValueError, match=message):
        replace(AnalysisOptions(), **change)


def test_net_slice_validation_rows(mlp):
    """The trained-net section of `landscape validate` on a tiny plan: every slice and sample count gets its centre
    verdict against the exact field, and the field Spearman at the field sample count."""
    from landscape.validation.benchmarks import Config
    from landscape.validation.slices import NetPlan, net_rows, sample_cases

    model, data = mlp
    plan = NetPlan("mlp", model, data, ("filter0", "hessian-mixed"), (0.3,), (60, 120), 120)
    cases = sample_cases(plan, progress=lambda _line: None)
    assert [c.directions for c in cases] == ["filter0", "hessian-mixed"] and len(cases[0].losses) == 120
    cfg = Config()
    scatter = net_rows(cases, {"mlp": plan.ns}, {"mlp": plan.field_n}, cfg.add, lambda _line: None)
    agree = [r for r in cfg.rows if r["metric"] == "sign_agrees"]
    assert len(agree) == 4 and len(scatter["dc"]) == 4
    assert sum(r["value"] for r in agree) >= 3  # measured 4 of 4
    spear = [r["value"] for r in cfg.rows if r["metric"] == "field_spearman"]
    assert len(spear) == 2 and all(np.isfinite(spear))


def test_finite_difference_centre_matches_autograd_on_a_smooth_net(mlp):
    """The Tanh reference MLP is smooth: central differences of the loss at step 1e-3 reproduce autograd's slice
    gradient and Hessian to 1e-4 (the stencil's own truncation, f‴h²/6, is 1.5e-5 of the gradient here); for k = 3
    the mixed second derivatives come from the corner stencil."""
    model, data = mlp
    for k in (2, 3):
        D = make_directions(model, "filter", k, seed=2)
        g, H = finite_difference_centre(model, data, D, 1e-3, cross_entropy)
        field = slice_field(model, data, D.matrix, np.zeros((1, k)), cross_entropy)
        np.testing.assert_allclose(g, field.gradients[0], rtol=1e-4, atol=1e-8)
        np.testing.assert_allclose(H, field.hessians[0], rtol=1e-4, atol=1e-6)


def test_finite_difference_centre_is_float64_at_small_steps():
    """A float32 model at step 1e-5: a float32 second difference would be the loss's rounding over 1e-10
    (measured: −75 and +149 on the diagonal against 1.21 and 1.31 here); the reference evaluates a float64 copy,
    so it matches autograd (on the float64 twin), and the model keeps its float32 parameters."""
    model, data = small_mlp(double=False), digits_subset(200, False)
    D = make_directions(model, "filter", 2, seed=2)
    before = [p.detach().clone() for p in model.parameters()]
    g, H = finite_difference_centre(model, data, D, 1e-5, cross_entropy)
    twin, data64 = small_mlp(double=False).double(), digits_subset(200)
    field = slice_field(twin, data64, D.matrix, np.zeros((1, 2)), cross_entropy)
    np.testing.assert_allclose(H, field.hessians[0], rtol=1e-3, atol=1e-4)
    assert all(p.dtype == torch.float32 and torch.equal(p, b) for p, b in zip(model.parameters(), before))


class _Point(torch.nn.Module):
    """A 'model' whose output is its own two parameters: the loss function alone sets the slice's shape."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x):
        return self.p.expand(len(x), 2)


def _creased_bowl(out, _y):
    return out[:, 0].abs().mean() + 0.5 * (out**2).sum(1).mean()


@pytest.mark.parametrize("sigma", [0.05, 0.2])
def test_gaussian_smoothed_centre_sees_the_crease_at_its_scale(sigma):
    """f(u) = |u₁| + ½|Dᵀu|² (a crease through θ* on a bowl): the Gaussian-smoothed Hessian at 0 is DDᵀ plus
    e₁e₁ᵀ·2/(σ√(2π)) from the crease (exactly), which autograd (0 on the crease's sides) leaves out and central
    differences at step h put at e₁e₁ᵀ·2/h. A kink through the centre is Gauss–Hermite's worst case (error ~0.5/nodes:
    2.9 % at the default 16 nodes); the smooth entries are exact."""
    from landscape.sampling.directions import Directions

    model = _Point()
    data = digits_subset(20, False)
    D = Directions("custom", 2, 2, torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    g, H = gaussian_smoothed_centre(model, data, D, sigma, loss_fn=_creased_bowl)
    crease = 2 / (sigma * np.sqrt(2 * np.pi))
    expect = np.array([[1.25 + crease, 0.5], [0.5, 1.0]])
    assert abs(H[0, 0] - expect[0, 0]) <= 0.035 * crease
    np.testing.assert_allclose(H.ravel()[1:], expect.ravel()[1:], rtol=1e-4)  # smooth entries: exact
    np.testing.assert_allclose(g, 0.0, atol=1e-5)
    g_fd, H_fd = finite_difference_centre(model, data, D, sigma, _creased_bowl)
    assert H_fd[0, 0] == pytest.approx(1.25 + 2 / sigma, rel=1e-4)  # a stencil's scale is its step


def test_gaussian_smoothed_centre_is_autograd_on_a_smooth_net_at_a_small_width(mlp):
    """The Tanh MLP is smooth: at σ = 1e-3 the smoothed gradient and Hessian are autograd's (the smoothing adds
    σ²·f⁗/2, ~1e-6 of the Hessian); a grid over k = 3 directions too; too many grid points are refused."""
    model, data = mlp
    for k in (2, 3):
        D = make_directions(model, "filter", k, seed=2)
        g, H = gaussian_smoothed_centre(model, data, D, 1e-3, nodes=6)
        field = slice_field(model, data, D.matrix, np.zeros((1, k)), cross_entropy)
        np.testing.assert_allclose(g, field.gradients[0], rtol=1e-4, atol=1e-8)
        np.testing.assert_allclose(H, field.hessians[0], rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match="grid points"):
        gaussian_smoothed_centre(model, data, make_directions(model, "filter", 5, seed=2), 0.1)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_a_grid_never_exceeds_the_sample_cap(k):
    """A grid of the largest allowed sample count stays within the 200,000-point cap in every dimension (k = 6 used
    to round 200,000^(1/6) = 7.65 up to 8^6 = 262,144 points); small counts keep the nearest side, at least 3."""
    from landscape.analysis import MAX_SAMPLES, grid_side

    m = grid_side(MAX_SAMPLES, k)
    assert m**k <= MAX_SAMPLES and (m + 1) ** k > MAX_SAMPLES * 0.5
    assert grid_side(100, 2) == 10 and grid_side(20, 3) == 3


def test_an_analysis_issues_its_caveats_as_warnings(mlp):
    """Every caveat in ``result.warnings`` is also a LandscapeWarning (scikit-learn's way), prefixed with the label;
    the command line silences the category (it prints its own lines)."""
    from landscape.exceptions import LandscapeWarning

    model, data = mlp
    o = AnalysisOptions(n_samples=40, radius=3.0, hessian=False, zoom=0, **{**FAST, "jackknife": 0})
    with pytest.warns(LandscapeWarning) as record:
        r = analyze_model(model, data, options=o, label="mlp")
    assert r.warnings and [str(w.message) for w in record if w.category is LandscapeWarning] == [
        f"mlp: {text}" for text in r.warnings
    ]

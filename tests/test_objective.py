"""The analysed objective with weight decay (issue 23, item 5): loss + λ/2‖θ‖², whose Hessian is exactly the loss's
plus λI, on every path (HVPs, sampling in place and by vmap, the exact slice field, a whole analysis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landscape.analysis import AnalysisOptions, analyze_model
from landscape.hessian.reference import exact_hessian
from landscape.hessian.slice_field import slice_field
from landscape.hessian.spectrum import HessianProblem
from landscape.losses import cross_entropy
from landscape.objective import with_weight_decay
from landscape.params import flatten, trainable
from landscape.sampling.coordinates import ball
from landscape.sampling.directions import make_directions
from landscape.sampling.sampler import sample_landscape

from .references import digits_subset, small_mlp

LAMBDA = 0.3


@pytest.fixture(scope="module")
def mlp():
    return small_mlp(), digits_subset(200)


def test_hessian_shifts_by_exactly_lambda_identity(mlp):
    """H_λ v = H v + λ v on both HVP paths, and the dense Hessian of the wrapped objective is H + λI."""
    model, data = mlp
    wrapped, loss = with_weight_decay(model, cross_entropy, LAMBDA)
    v = torch.from_numpy(np.random.default_rng(0).standard_normal(sum(p.numel() for p in model.parameters())))
    plain = HessianProblem(model, data).hvp(v)
    for reuse in (True, False):
        shifted = HessianProblem(wrapped, data, loss, batch_size=64, reuse_graph=reuse).hvp(v)
        np.testing.assert_allclose(shifted.numpy(), (plain + LAMBDA * v).numpy(), rtol=1e-9, atol=1e-12)
    H, H_wd = exact_hessian(model, data), exact_hessian(wrapped, data, loss)
    np.testing.assert_allclose(H_wd, H + LAMBDA * np.eye(len(H)), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("strategy", ["inplace", "vmap"])
def test_sampled_losses_add_the_weight_decay_term(mlp, strategy):
    """f_λ(u) = f(u) + λ/2‖θ* + Dᵀu‖² at every sample, computed independently from the flat weights."""
    model, data = mlp
    wrapped, loss = with_weight_decay(model, cross_entropy, LAMBDA)
    D = make_directions(model, "filter", 2, seed=1)
    u = ball(20, 2, 0.8, seed=2)
    plain = sample_landscape(model, data, D, u, strategy=strategy, progress=False).losses
    shifted = sample_landscape(wrapped, data, D, u, loss, strategy=strategy, progress=False).losses
    theta = flatten([p.detach() for _, p in trainable(model)]).double()
    norms = np.array([float((theta + D.displacement(torch.as_tensor(r)).double()).square().sum()) for r in u])
    np.testing.assert_allclose(shifted, plain + 0.5 * LAMBDA * norms, rtol=1e-10)
    assert np.all(np.isfinite(sample_landscape(wrapped, data, D, u[:3], loss, progress=False).accuracies))


def test_slice_field_and_a_whole_analysis_see_the_shift(mlp):
    """The exact slice Hessian gains λDDᵀ and its gradient λDθ*; a whole analysis's λmax and λmin rise by λ and its
    trace by λP (the trace within its standard errors)."""
    model, data = mlp
    wrapped, loss = with_weight_decay(model, cross_entropy, LAMBDA)
    D = make_directions(model, "filter", 2, seed=1)
    Dm = D.matrix.double()
    theta = flatten([p.detach() for _, p in trainable(model)]).double()
    plain = slice_field(model, data, D.matrix, np.zeros((1, 2)))
    shifted = slice_field(wrapped, data, D.matrix, np.zeros((1, 2)), loss)
    np.testing.assert_allclose(shifted.hessians[0], plain.hessians[0] + LAMBDA * (Dm @ Dm.T).numpy(), rtol=1e-9)
    np.testing.assert_allclose(shifted.gradients[0], plain.gradients[0] + LAMBDA * (Dm @ theta).numpy(), rtol=1e-9)
    opts = dict(n_samples=100, grid_points=0, top_k=1, trace_samples=20, density_starts=1, zoom=0, tol=1e-8)
    a = analyze_model(model, data, options=AnalysisOptions(**opts)).scalars
    b = analyze_model(model, data, options=AnalysisOptions(**opts, weight_decay=LAMBDA)).scalars
    assert b["lambda_max"] == pytest.approx(a["lambda_max"] + LAMBDA, rel=1e-6)
    assert b["lambda_min"] == pytest.approx(a["lambda_min"] + LAMBDA, rel=1e-6, abs=1e-7)
    P = theta.numel()
    assert abs(b["trace"] - (a["trace"] + LAMBDA * P)) <= 3 * np.hypot(a["trace_se"], b["trace_se"]) + 1e-6 * P
    with pytest.raises(ValueError, match="weight_decay must be a finite"):
        AnalysisOptions(weight_decay=-1.0)


def test_per_block_spectra_keep_their_blocks_and_shift_by_lambda():
    """``--hessian-blocks auto`` on the wrapped objective: the same blocks as the model's own (ResNet-8's stem and
    stages, through ``parameter_groups``), each block's λmax raised by λ (H_bb + λI)."""
    from landscape.models import build_model, model_config

    torch.manual_seed(0)
    model = build_model(model_config("resnet8", (1, 8, 8), 10)).eval()
    data = digits_subset(100, double=False)
    opts = dict(n_samples=40, grid_points=0, zoom=0, jackknife=0, top_k=1, density_starts=1, trace_samples=3,
                hessian_blocks="auto", tol=1e-6)  # fmt: skip
    plain = analyze_model(model, data, options=AnalysisOptions(**opts)).blocks
    shifted = analyze_model(model, data, options=AnalysisOptions(**opts, weight_decay=LAMBDA)).blocks
    assert [b["block"] for b in shifted] == [b["block"] for b in plain] and plain[0]["block"] == "stem"
    for a, b in zip(plain, shifted):
        assert b["lambda_max"] == pytest.approx(a["lambda_max"] + LAMBDA, rel=1e-4), a["block"]

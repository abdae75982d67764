"""Directions (SPEC §2), coordinates (§3) and sampling (§1): exactness, restoration, sharding, save/load."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.hessian.spectrum import HessianProblem, lanczos_eigen, projected_hessian
from landscape.models import build_model, model_config
from landscape.params import trainable
from landscape.sampling.coordinates import ball, grid, make_coordinates, shells
from landscape.sampling.directions import filter_normalize, make_directions
from landscape.sampling.sample import LandscapeSample
from landscape.sampling.sampler import sample_landscape

from ..references import Quadratic, digits_subset, direct_losses, dummy_data, quadratic_loss, small_mlp, spectrum_matrix


def snapshot(model):
    return (
        {n: p.detach().clone() for n, p in model.named_parameters()},
        {n: b.detach().clone() for n, b in model.named_buffers()},
        {n: p.requires_grad for n, p in model.named_parameters()},
        {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        [m.training for m in model.modules()],
    )


def assert_same(a, b):
    for x, y in zip(a[:2], b[:2]):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    assert a[2] == b[2] and a[4] == b[4]
    assert all((a[3][k] is None and b[3][k] is None) or torch.equal(a[3][k], b[3][k]) for k in a[3])


def test_coordinates():
    c = ball(100, 3, 0.5, seed=1)
    assert c.shape == (101, 3) and np.all(c[0] == 0) and np.linalg.norm(c, axis=1).max() <= 0.5
    s = shells([0.1, 0.2], 10, 2, seed=0)
    assert s.shape == (21, 2) and np.allclose(np.linalg.norm(s[1:11], axis=1), 0.1)
    g = grid(1.0, 5, 2)
    assert g.shape == (25, 2) and np.all(g[0] == 0) and len(np.unique(g, axis=0)) == 25  # centre not duplicated
    np.testing.assert_array_equal(ball(20, 2, seed=3), ball(20, 2, seed=3))
    with pytest.raises(ValueError):
        make_coordinates("ball", 2, n=0)
    with pytest.raises(ValueError):
        make_coordinates("spiral", 2)


def test_filter_normalisation_norms():
    model = build_model(model_config("resnet8", (1, 8, 8), 10))
    d = make_directions(model, "filter", k=2, seed=0)
    for row in d.matrix:
        i = 0
        for _, p in trainable(model):
            seg = row[i : i + p.numel()].view_as(p)
            i += p.numel()
            if p.dim() <= 1:
                assert torch.all(seg == 0)  # biases and BN γ/β ignored (the paper's setting)
            else:
                np.testing.assert_allclose(
                    seg.reshape(len(p), -1).norm(dim=1), p.detach().reshape(len(p), -1).norm(dim=1), rtol=1e-5
                )
    copied = filter_normalize(model, torch.randn(d.num_params), bias_mode="copy")
    i = 0
    for _, p in trainable(model):
        if p.dim() == 1:
            assert torch.equal(copied[i : i + p.numel()], p.detach())  # "copy" mode: d = w on 1-D tensors
        i += p.numel()
    assert torch.equal(make_directions(model, "filter", 2, seed=0).matrix, d.matrix)  # seeded
    assert not torch.equal(make_directions(model, "filter", 2, seed=1).matrix, d.matrix)


def test_orthonormal_and_hessian_directions():
    model = small_mlp()
    d = make_directions(model, "gaussian", 3, seed=0, orthogonal=True)
    np.testing.assert_allclose(d.matrix.double() @ d.matrix.double().T, np.eye(3), atol=1e-5)
    prob = HessianProblem(model, digits_subset(200))
    eig = lanczos_eigen(prob, 2, "LA", tol=1e-8)
    dh = make_directions(model, "hessian", 2, eigenvectors=eig.eigenvectors)
    A, _, _ = projected_hessian(prob, dh.matrix)
    np.testing.assert_allclose(np.diag(A), eig.eigenvalues, rtol=1e-4)
    full = make_directions(model, "full")
    assert full.k == full.num_params and full.matrix is None and "far too few" in full.meta["warning"]


@pytest.mark.parametrize("strategy", ["inplace", "vmap"])
def test_quadratic_slice_losses_exact(strategy):
    eigs = np.array([4.0, 1.0, -2.0, 0.5, 0.25, 3.0])
    Q = spectrum_matrix(eigs, 7)
    c = np.zeros(6)
    theta = np.full(6, 0.2)
    model = Quadratic(Q, c, theta)
    d = make_directions(model, "gaussian", 2, seed=3)
    u = ball(50, 2, 1.0, seed=0)
    s = sample_landscape(model, dummy_data(7), d, u, quadratic_loss, strategy=strategy, batch_size=3, progress=False)
    D = d.matrix.double().numpy()
    pts = theta[None] + u @ D
    want = 0.5 * np.einsum("ni,ij,nj->n", pts - c, Q, pts - c)
    np.testing.assert_allclose(s.losses, want, rtol=1e-5)
    assert s.center_loss == pytest.approx(0.5 * (theta - c) @ Q @ (theta - c), rel=1e-12)
    assert np.all(np.isnan(s.accuracies))  # not a classifier


def test_strategies_agree_and_restore_state():
    model = build_model(model_config("resnet8", (1, 8, 8), 10))
    model.train()
    model.layers[0].eval()  # a mixed mode must come back as it was
    model.conv1.weight.requires_grad_(False)
    data = digits_subset(64, double=False)
    nn.functional.cross_entropy(model(data.x), data.y).backward()
    with torch.no_grad():  # non-trivial running stats
        model(data.x)
    before = snapshot(model)
    d = make_directions(model, "filter", 2, seed=0)
    u = ball(12, 2, 0.5, seed=0)
    a = sample_landscape(model, data, d, u, strategy="inplace", batch_size=20, progress=False)
    assert_same(before, snapshot(model))
    b = sample_landscape(model, data, d, u, strategy="vmap", progress=False)
    assert_same(before, snapshot(model))
    np.testing.assert_allclose(a.losses, b.losses, rtol=2e-5)
    np.testing.assert_allclose(a.accuracies, b.accuracies)
    assert a.meta["strategy"] == "inplace" and b.meta["strategy"] == "vmap"


def test_nonfinite_losses_counted():
    model = small_mlp(double=False)
    data = digits_subset(50, double=False)
    d = make_directions(model, "gaussian", 2, seed=0)
    u = np.vstack([ball(5, 2, 0.1, seed=0), [[1e38, 1e38], [-1e38, 1e38]]])  # weights overflow: NaN loss
    s = sample_landscape(model, data, d, u, progress=False)
    assert s.n_nonfinite == 2 and np.all(np.isfinite(s.losses[:6]))
    assert s.point_cloud().shape == (6, 3) and np.all(np.isfinite(s.point_cloud()))


def test_shards_concatenate_and_save_load(tmp_path):
    model = small_mlp(double=False)
    data = digits_subset(80, double=False)
    d = make_directions(model, "filter", 2, seed=0)
    u = ball(30, 2, 0.5, seed=0)
    full = sample_landscape(model, data, d, u, progress=False)
    parts = [sample_landscape(model, data, d, u, shard=(r, 3), progress=False) for r in (2, 0, 1)]
    joined = LandscapeSample.concatenate(parts)
    np.testing.assert_array_equal(joined.losses, full.losses)
    np.testing.assert_array_equal(joined.coords, full.coords)
    with pytest.raises(ValueError, match="exactly once"):
        LandscapeSample.concatenate(parts[:2])
    full.save(tmp_path / "s")
    back = LandscapeSample.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.losses, full.losses)
    np.testing.assert_array_equal(back.direction_matrix, d.matrix.numpy())
    assert back.directions["meta"]["seed"] == 0 and back.directions["kind"] == "filter"
    assert back.center_loss == full.center_loss
    pc = back.point_cloud(scale=2.0)
    np.testing.assert_allclose(pc[:, 2], 2 * full.losses)


def test_sampling_rejects_bad_input():
    model = small_mlp(double=False)
    data = digits_subset(20, double=False)
    d = make_directions(model, "gaussian", 2, seed=0)
    with pytest.raises(ValueError, match="centre"):
        sample_landscape(model, data, d, np.ones((3, 2)), progress=False)
    with pytest.raises(ValueError, match="shape"):
        sample_landscape(model, data, d, np.zeros((3, 3)), progress=False)
    with pytest.raises(ValueError, match="NaN"):
        sample_landscape(model, data, d, np.array([[0, 0], [np.nan, 1]]), progress=False)


@pytest.mark.parametrize("freeze_first", [False, True])
def test_first_layer_shortcut_is_exact(freeze_first):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10))
    if freeze_first:
        model[1].weight.requires_grad_(False)
    data = digits_subset(90, double=False)
    d = make_directions(model, "gaussian", 3, seed=1)
    u = ball(15, 3, 0.7, seed=2)
    fast = sample_landscape(model, data, d, u, strategy="inplace", batch_size=40, progress=False)
    slow = sample_landscape(model, data, d, u, strategy="inplace", batch_size=40, shortcut=False, progress=False)
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=1e-5)
    np.testing.assert_array_equal(fast.accuracies, slow.accuracies)
    assert not model[1]._forward_hooks and not model[1]._forward_pre_hooks and "forward" not in vars(model[1])


def test_first_conv_shortcut_and_channels_last_are_exact():
    """The conv path (first-conv terms, channels-last activations, cache-sized chunks) gives the loss of the
    perturbed model evaluated directly, to float rounding (1e-5 relative; channels-last kernels round differently),
    and a sample's value does not depend on the shard it is evaluated in (same chunks: bitwise)."""

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 10),
    ).eval()
    data = digits_subset(150, double=False)
    d = make_directions(model, "filter", 2, seed=1)
    u = ball(11, 2, 0.8, seed=2)
    runs = {
        "auto": sample_landscape(model, data, d, u, batch_size=64, progress=False, fuse=True),
        "channels-first": sample_landscape(model, data, d, u, batch_size=64, channels_last=False, progress=False),
        "no shortcut": sample_landscape(model, data, d, u, batch_size=64, shortcut=False, progress=False),
    }
    direct = direct_losses(model, data, d, u)
    for name, r in runs.items():
        np.testing.assert_allclose(r.losses, direct, rtol=1e-5, err_msg=name)
    assert runs["auto"].meta["first_layer"] == "precomputed terms" and runs["auto"].meta["inference"] == "fused"
    half = sample_landscape(model, data, d, u, batch_size=64, shard=(1, 2), progress=False, fuse=True)
    np.testing.assert_array_equal(half.losses, runs["auto"].losses[half.indices])
    assert all(p.is_contiguous() for p in model.parameters())  # the model's own layout is untouched


def test_first_layer_detection():
    from landscape.sampling.first_layer import first_parametrised_module

    x = torch.zeros(2, 1, 8, 8)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    assert first_parametrised_module(mlp, x) is mlp[1]
    shared = nn.Linear(64, 64)
    tied = nn.Sequential(nn.Flatten(), shared, shared)  # called twice: no shortcut
    assert first_parametrised_module(tied, x) is None
    quad = Quadratic(np.eye(2), np.zeros(2), np.ones(2))  # parameters used directly in forward
    assert first_parametrised_module(quad, x) is quad


def test_fast_cross_entropy_matches_torch():
    from landscape.losses import cross_entropy

    logits, y = torch.randn(500, 10) * 5, torch.randint(0, 10, (500,))
    assert float(cross_entropy(logits, y)) == pytest.approx(float(nn.functional.cross_entropy(logits, y)), rel=1e-6)

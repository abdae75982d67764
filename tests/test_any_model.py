"""Any model and loss (issue 23, item 5): keyword batches (``model(**batch)`` returning ``.logits``, as Hugging Face
models do), several inputs (``model(a, b)``) and a loss the model computes itself (``.loss``), through sampling,
the Hessian and a whole analysis, each against an exact reference (direct evaluation, the dense Hessian)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from landscape.analysis import AnalysisOptions, analyze_model
from landscape.evaluation import EvalSubset, as_eval_subset
from landscape.hessian.reference import exact_hessian
from landscape.hessian.spectrum import HessianProblem
from landscape.losses import cross_entropy, model_loss
from landscape.params import trainable, unflatten
from landscape.sampling.coordinates import ball
from landscape.sampling.directions import make_directions
from landscape.sampling.sampler import sample_landscape

VOCAB, LENGTH, CLASSES = 12, 8, 3


class TinyEncoder(nn.Module):
    """A one-layer transformer encoder over tokens, called as ``model(input_ids=..., attention_mask=...)``,
    returning an object with ``.logits`` (and ``.loss`` when ``labels`` are passed), as Hugging Face models do."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 8)
        self.pos = nn.Parameter(torch.randn(LENGTH, 8) * 0.1)
        self.layer = nn.TransformerEncoderLayer(8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, CLASSES)

    def forward(self, input_ids, attention_mask, labels=None):
        h = self.layer(self.embed(input_ids) + self.pos, src_key_padding_mask=attention_mask == 0)
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        logits = self.head((h * mask).sum(1) / mask.sum(1))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SimpleNamespace(logits=logits, loss=loss)


class TwoInputs(nn.Module):
    """``model(image, extra)``: an MLP over an 8×8 image and a 4-feature side input."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Linear(64, 12)
        self.extra = nn.Linear(4, 12)
        self.out = nn.Linear(12, CLASSES)

    def forward(self, image, extra):
        return self.out(torch.tanh(self.image(image.flatten(1)) + self.extra(extra)))


def _tokens(n: int, seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A synthetic token task: the class is the count of token 1 (0, 1, 2 or more); padded sequences."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, LENGTH), generator=g)
    lengths = torch.randint(4, LENGTH + 1, (n,), generator=g)
    mask = (torch.arange(LENGTH)[None, :] < lengths[:, None]).long()
    ids = ids * mask
    y = ((ids == 1) & (mask == 1)).sum(1).clamp(max=CLASSES - 1)
    return {"input_ids": ids, "attention_mask": mask}, y


def _trained(model: nn.Module, x, y, steps: int = 60) -> nn.Module:
    """Briefly trained (float64), so the Hessian is not the initialisation's; then in eval mode."""
    from landscape.inputs import call_model

    model = model.double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        cross_entropy(call_model(model, x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    x, y = _tokens(64)
    return _trained(TinyEncoder(), x, y), EvalSubset(x, y, np.arange(64), "tokens")


@pytest.fixture(scope="module")
def two_inputs():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    image, extra = torch.randn(80, 1, 8, 8, generator=g).double(), torch.randn(80, 4, generator=g).double()
    y = (image.mean((1, 2, 3)) + extra[:, 0] > 0).long() + (extra[:, 1] > 1).long()
    x = (image, extra)
    return _trained(TwoInputs(), x, y), EvalSubset(x, y, np.arange(80), "two inputs")


def _direct(model, data, D, u) -> float:
    """L(θ* + Dᵀu) by writing the weights and calling the model the user's way: the reference."""
    from landscape.inputs import call_model

    params = [p for _, p in trainable(model)]
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p, d in zip(params, unflatten(D.displacement(torch.as_tensor(u)), saved)):
                p.add_(d.to(p.dtype))
            return float(cross_entropy(call_model(model, data.x), data.y))
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)


@pytest.mark.parametrize("case", ["encoder", "two_inputs"])
@pytest.mark.parametrize("strategy", ["inplace", "vmap"])
def test_sampled_losses_equal_direct_evaluation(case, strategy, request):
    """Both sampling strategies give L(θ* + Dᵀu) as the model computes it when called the user's way (keyword
    batch / two inputs), to float64 rounding, and leave the weights as they were."""
    model, data = request.getfixturevalue(case)
    D = make_directions(model, "filter", 2, seed=3)
    coords = ball(12, 2, 0.5, seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    s = sample_landscape(model, data, D, coords, strategy=strategy, progress=False)
    want = [_direct(model, data, D, u) for u in coords]
    np.testing.assert_allclose(s.losses, want, rtol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert np.all(np.isfinite(s.accuracies))  # the logits were found in the outputs


@pytest.mark.parametrize("case", ["encoder", "two_inputs"])
def test_hvp_equals_theexact_hessian(case, request):
    """H v by double back-propagation through ``model(**batch)`` / ``model(a, b)`` equals the dense Hessian of
    the same loss (column by column, forward over reverse through functional_call with the same call; see
    ``exact_hessian(vectorized=False)`` for why not vmap), on both HVP paths."""
    model, data = request.getfixturevalue(case)
    H = exact_hessian(model, data, vectorized=False)
    v = np.random.default_rng(0).standard_normal(H.shape[0])
    for reuse in (True, False):
        hv = HessianProblem(model, data, batch_size=24, reuse_graph=reuse).hvp(torch.from_numpy(v)).numpy()
        np.testing.assert_allclose(hv, H @ v, rtol=1e-6, atol=1e-9 * np.abs(H @ v).max())


def test_model_loss_reads_the_models_own_loss(encoder):
    """A Hugging Face-style model called with ``labels`` computes its loss itself: ``loss_fn=model_loss`` takes
    ``.loss``, and the Hessian is the same as cross-entropy on ``.logits`` (the same function)."""
    model, data = encoder
    with_labels = EvalSubset({**data.x, "labels": data.y}, data.y, data.indices, "tokens with labels")
    v = torch.from_numpy(np.random.default_rng(1).standard_normal(sum(p.numel() for p in model.parameters())))
    own = HessianProblem(model, with_labels, model_loss).hvp(v)
    ours = HessianProblem(model, data).hvp(v)
    np.testing.assert_allclose(own.numpy(), ours.numpy(), rtol=1e-8, atol=1e-12)
    with pytest.raises(TypeError, match="without a .loss"):
        HessianProblem(model, data, model_loss).hvp(v)


def test_a_whole_analysis_of_a_transformer_from_keyword_batches(encoder):
    """``analyze_model`` on keyword batches (converted from a DataLoader of dicts, as Hugging Face datasets give
    them): λmax and λmin against the dense Hessian's eigenvalues, the exact slice curvature present, sampling on
    the model's own forward pass (vmap over the weights at 64 sequences)."""
    model, data = encoder
    batches = [
        {**{k: v[i : i + 16] for k, v in data.x.items()}, "labels": data.y[i : i + 16]} for i in range(0, 64, 16)
    ]
    sub = as_eval_subset(DataLoader(batches, batch_size=None), None)
    assert isinstance(sub.x, dict) and sorted(sub.x) == ["attention_mask", "input_ids"]
    w = np.linalg.eigvalsh(exact_hessian(model, sub, vectorized=False))
    opts = AnalysisOptions(n_samples=200, grid_points=0, top_k=2, trace_samples=5, density_starts=1, zoom=0)
    r = analyze_model(model, sub, options=opts)
    s = r.scalars
    assert s["lambda_max"] == pytest.approx(w[-1], rel=1e-3)
    assert s["lambda_min"] == pytest.approx(w[0], rel=1e-2, abs=1e-4 * w[-1])
    assert np.isfinite(s["analytic_scalar"]) and np.isfinite(s["dc_scalar"])


def test_two_inputs_from_a_dataloader_of_pairs(two_inputs):
    """A DataLoader of ((image, extra), y) batches becomes two-input evaluation data; the analysis runs on it."""
    model, data = two_inputs
    image, extra = data.x
    pairs = [((image[i : i + 20], extra[i : i + 20]), data.y[i : i + 20]) for i in range(0, 80, 20)]
    sub = as_eval_subset(DataLoader(pairs, batch_size=None), 60)
    assert isinstance(sub.x, tuple) and len(sub.x) == 2 and len(sub) == 60
    assert torch.equal(sub.x[1], extra[:60])
    opts = AnalysisOptions(n_samples=120, grid_points=0, top_k=1, trace_samples=3, density_starts=1, zoom=0)
    s = analyze_model(model, sub, options=opts).scalars
    assert s["lambda_max"] == pytest.approx(
        np.linalg.eigvalsh(exact_hessian(model, sub, vectorized=False))[-1], rel=1e-3
    )


def test_cross_entropy_reads_logits_and_counts_every_token():
    """Sequence logits (N, T, C) with targets (N, T): the mean over every token, as torch's cross-entropy of the
    flattened tokens; the same through ``.logits``, ``["logits"]`` and a tuple's first element; outputs without
    logits are one TypeError naming what the model returned."""
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(4, 7, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (4, 7), generator=g)
    want = nn.functional.cross_entropy(logits.reshape(-1, 5), y.reshape(-1))
    for out in (logits, SimpleNamespace(logits=logits), {"logits": logits}, (logits, None)):
        assert float(cross_entropy(out, y)) == pytest.approx(float(want), rel=1e-12)
    with pytest.raises(TypeError, match="returned SimpleNamespace: no logits"):
        cross_entropy(SimpleNamespace(hidden=logits), y)

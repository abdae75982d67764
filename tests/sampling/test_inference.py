"""The sampler's fast inference graph (landscape.sampling.inference): the same function as the model's forward pass
(BatchNorm folded, ReLU and residual additions fused, max pooling as slice maxima), to float32 rounding."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from landscape.models import build_model, model_config
from landscape.sampling import inference
from landscape.sampling.coordinates import ball
from landscape.sampling.directions import make_directions
from landscape.sampling.inference import InferenceGraph, slice_max_pool, try_inference_graph
from landscape.sampling.sampler import sample_landscape

from ..references import digits_subset, direct_losses

RTOL = 1e-5  # float32 outputs of the rewritten graph against the model's, relative to the outputs' scale


def _trained_looking(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and affine terms (a fresh net's are 0/1, which would hide a folding error)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = RTOL) -> bool:
    return float((a - b).abs().max()) <= rtol * float(b.abs().max())


@pytest.mark.parametrize(
    "name, extra, expect",
    [
        ("convnet", {}, {"conv": 2, "batchnorm": 0, "relu": 2, "residual": 0, "max_pool": 2}),
        ("resnet8", {}, {"conv": 9, "batchnorm": 9, "relu": 7, "residual": 3, "max_pool": 0}),
        ("resnet8", {"skip": False}, {"conv": 7, "batchnorm": 7, "relu": 7, "residual": 0, "max_pool": 0}),
        # pre-activation (BatchNorm → ReLU → conv): only each bottleneck's 1×1 conv → BatchNorm → ReLU folds
        ("densenet", {"blocks": (2, 2), "growth": 8}, {"conv": 10, "batchnorm": 4, "relu": 4, "residual": 0}),
    ],
)
def test_graph_matches_the_model(name, extra, expect):
    torch.manual_seed(0)
    model = _trained_looking(build_model(model_config(name, (1, 28, 28), 10, **extra)))
    x = torch.randn(6, 1, 28, 28)
    graph = InferenceGraph(model, x)
    assert {k: graph.fused[k] for k in expect} == expect
    with torch.no_grad():
        assert _close(graph(x), model(x))
        for p in model.parameters():  # new weights: stale until refresh(), then right again
            p.add_(0.05 * torch.randn_like(p))
        want = model(x)
        assert not _close(graph(x), want, 1e-3)
        graph.refresh()
        assert _close(graph(x), want)


def test_fallback_without_onednn_post_ops(monkeypatch):
    """Where oneDNN's fused convolution is missing, the same graph runs with F.conv2d and separate ops."""
    monkeypatch.setattr(inference, "_POINTWISE", False)
    torch.manual_seed(1)
    model = _trained_looking(build_model(model_config("resnet8", (1, 8, 8), 10)), seed=1)
    x = torch.randn(5, 1, 8, 8)
    graph, why = try_inference_graph(model, x)
    assert why == "fused" and not graph.describe()["oneDNN post-ops"]
    with torch.no_grad():
        assert _close(graph(x), model(x))


@pytest.mark.parametrize("shape, kernel", [((3, 4, 28, 28), 2), ((2, 6, 9, 11), 2), ((2, 3, 10, 7), (3, 2))])
def test_slice_max_pool_equals_max_pool_bitwise(shape, kernel):
    x = torch.randn(shape)
    x[0, 0, 0, 0] = float("nan")  # NaN propagates like max_pool2d's
    for t in (x, x.contiguous(memory_format=torch.channels_last)):
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        assert torch.equal(slice_max_pool(t, k).nan_to_num(7.0), F.max_pool2d(t, kernel).nan_to_num(7.0))


def test_overlapping_or_padded_pooling_is_left_alone():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(3, stride=2), nn.MaxPool2d(2, padding=1), nn.Flatten())
    x = torch.randn(2, 1, 16, 16)
    graph = InferenceGraph(model.eval(), x)
    assert graph.fused["max_pool"] == 0 and graph.fused["conv"] == 1
    with torch.no_grad():
        assert _close(graph(x), model(x))


def test_refusals_name_their_reason(monkeypatch):
    class Branchy(nn.Module):  # control flow on tensor values: torch.fx cannot trace it
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            out = self.conv(x)
            return out.flatten(1) if out.sum() > 0 else -out.flatten(1)

    x = torch.randn(2, 1, 8, 8)
    assert try_inference_graph(Branchy().eval(), x)[0] is None
    assert "not traceable" in try_inference_graph(Branchy().eval(), x)[1]
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    assert try_inference_graph(mlp, x) == (None, "no 2-D convolution")
    # the built-in check catches a rewrite that computes something else (here: a folding off by 1 %)
    original = inference.FusedConv.refresh

    def wrong(self):
        original(self)
        self.weight = self.weight * 1.01

    monkeypatch.setattr(inference.FusedConv, "refresh", wrong)
    model = _trained_looking(build_model(model_config("resnet8", (1, 8, 8), 10)))
    assert try_inference_graph(model, torch.randn(4, 1, 8, 8)) == (None, "rewritten graph differs from the model")


def test_sampling_through_the_graph_is_the_direct_loss():
    """sample_landscape through the graph (ResNet-8: the first conv fused with its BatchNorm, not precomputed terms)
    against writing each θ* + D u into the model and evaluating it directly: 1e-5 relative; the model comes back
    untouched."""
    torch.manual_seed(0)
    model = _trained_looking(build_model(model_config("resnet8", (1, 8, 8), 10)))
    data = digits_subset(200, double=False)
    d = make_directions(model, "gaussian", 2, seed=3)  # perturbs BatchNorm's γ and β too
    u = ball(8, 2, 0.5, seed=1)
    model.train()  # the sampler evaluates in eval mode and gives the model back in its own mode
    before = {n: t.clone() for n, t in model.state_dict().items()}
    fast = sample_landscape(model, data, d, u, batch_size=64, progress=False, fuse=True)  # few rows: forced
    # conv → BatchNorm first: the first convolution is fused with its BatchNorm instead of precomputed terms
    assert fast.meta["inference"] == "fused" and fast.meta["fused"]["batchnorm"] == 9
    assert fast.meta["first_layer"] == "evaluated"
    model.eval()
    direct = direct_losses(model, data, d, u)
    np.testing.assert_allclose(fast.losses, direct, rtol=1e-5)
    model.train()
    plain = sample_landscape(model, data, d, u, batch_size=64, progress=False, fuse=False)
    assert plain.meta["inference"] == "off"
    np.testing.assert_allclose(fast.losses, plain.losses, rtol=1e-5)
    after = model.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert all(p.is_contiguous() for p in model.parameters()) and model.training


def test_depthwise_unaffine_and_same_padding():
    """Grouped convolutions, BatchNorm without affine terms, a conv bias folded with its BatchNorm, an in-place ReLU
    and a residual addition written as x + y are all fused; a 'same'-padded convolution is left as it is."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding="same")
            self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=True)
            self.bn = nn.BatchNorm2d(16, affine=False)
            self.pw = nn.Conv2d(16, 8, 1, stride=2)
            self.bn2 = nn.BatchNorm2d(8)
            self.head = nn.Linear(8, 4)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            y = torch.relu(x + self.bn(self.dw(x)))
            z = F.relu(self.bn2(self.pw(y)), inplace=True)
            return self.head(z.mean((2, 3)))

    model = _trained_looking(Block())
    x = torch.randn(4, 3, 12, 12)
    graph, why = try_inference_graph(model, x)
    assert why == "fused"
    assert {k: graph.fused[k] for k in ("conv", "batchnorm", "relu", "residual")} == {
        "conv": 2, "batchnorm": 2, "relu": 2, "residual": 1
    }  # fmt: skip
    with torch.no_grad():
        assert _close(graph(x), model(x))


def test_hand_back_runs_the_layer_itself():
    """The sampler hands the first conv back when it precomputes that layer's terms: the layer's own forward (which
    the terms replace) runs, the ReLU after it as a separate op, and the output is unchanged. A conv with a folded
    BatchNorm cannot be handed back."""
    torch.manual_seed(2)
    model = build_model(model_config("convnet", (1, 28, 28), 10)).eval()
    x = torch.randn(4, 1, 28, 28)
    graph = InferenceGraph(model, x)
    first = model.features[0]
    calls = []
    hook = first.register_forward_hook(lambda *_: calls.append(1))
    graph.hand_back(first)
    with torch.no_grad():
        assert _close(graph(x), model(x))
    hook.remove()
    assert len(calls) == 2 and graph.fused["conv"] == 1 and graph.fused["relu"] == 1  # graph's call + model's
    resnet = _trained_looking(build_model(model_config("resnet8", (1, 8, 8), 10)))
    with pytest.raises(ValueError, match="folded BatchNorm"):
        InferenceGraph(resnet, torch.randn(2, 1, 8, 8)).hand_back(resnet.conv1)


def test_one_analysis_builds_its_fused_graph_once(monkeypatch):
    """An analysis's sampling calls (samples, surface grid, zooms) share one fused graph per model (built and
    checked once: on DenseNet-121 the build costs 3 evaluations); a lone call of fewer than FUSE_MIN_ROWS rows
    runs the model as it is, unless the cache holds the graph already."""
    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.sampling import sampler

    built = []
    real = sampler.try_inference_graph
    monkeypatch.setattr(sampler, "try_inference_graph", lambda *a: built.append(1) or real(*a))
    torch.manual_seed(0)
    model = build_model(model_config("convnet", (1, 8, 8), 10)).eval()
    data = digits_subset(300, double=False)
    opts = AnalysisOptions(n_samples=60, grid_points=5, hessian=False, jackknife=0, zoom=2, radius=1.0)
    r = analyze_model(model, data, options=opts)
    assert len(built) == 1 and r.sample.meta["inference"] == "fused"
    assert r.surface is not None and r.surface.meta["inference"] == "fused"  # 25 rows, from the cache
    d = make_directions(model, "filter", 2, seed=0)
    few = sample_landscape(model, data, d, ball(9, 2, 0.5, seed=0), progress=False)
    assert few.meta["inference"].startswith("10 rows: fewer than") and len(built) == 1
    cache = sampler.SamplingCache()
    sample_landscape(model, data, d, ball(40, 2, 0.5, seed=0), progress=False, cache=cache)
    again = sample_landscape(model, data, d, ball(9, 2, 0.5, seed=0), progress=False, cache=cache)
    assert again.meta["inference"] == "fused" and len(built) == 2
    with pytest.raises(ValueError, match="fuse must be"):
        sample_landscape(model, data, d, ball(9, 2, 0.5, seed=0), progress=False, fuse="yes")

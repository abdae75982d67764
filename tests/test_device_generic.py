"""The device code, tested without a GPU (issue 22 item 5): the hot loops run with the model and data on PyTorch's
``meta`` device, where a tensor holds no numbers. Any read of a value on the host (``float(t)``, ``.item()``,
``.cpu()``, ``.tolist()``, ``.numpy()``: the host syncs that would stall a GPU between points) raises there, and
so does mixing in a tensor created on the CPU (a forgotten ``device=``). The loops' numbers themselves are tested
against exact references elsewhere (tests/sampling, tests/hessian)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from tqdm.auto import tqdm

from landscape.evaluation import EvalSubset
from landscape.hessian.slice_field import field_on_device
from landscape.hessian.spectrum import HessianProblem
from landscape.losses import cross_entropy
from landscape.models.datamodule import ImageDataModule
from landscape.params import functional_model, preserved_state, second_order
from landscape.sampling import sampler
from landscape.sampling.directions import make_directions
from landscape.sampling.inference import InferenceGraph

N, ROWS = 20, 6


def _nets() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    conv = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3)
    )
    return {"mlp": (mlp, torch.randn(N, 1, 4, 4)), "conv": (conv, torch.randn(N, 1, 8, 8))}


def _on_meta(name: str):
    net, x = _nets()[name]
    D = make_directions(net, "filter", 2, seed=0)  # drawn on the CPU, where directions live; moved by the loops
    data = EvalSubset(x.to("meta"), torch.randint(0, 3, (N,)).to("meta"), np.arange(N), "meta")
    coords = np.random.default_rng(0).normal(size=(ROWS, 2))
    coords[0] = 0
    return net.eval().to("meta"), data, D, coords


def _assert_meta(*tensors: torch.Tensor, shape: tuple[int, ...]) -> None:
    for t in tensors:
        assert t.device.type == "meta" and t.shape == shape and t.dtype == torch.float64


@pytest.mark.parametrize("name", ["mlp", "conv"])
@pytest.mark.parametrize("shortcut", [False, True])
def test_inplace_sampling_loop_never_reads_the_device(name, shortcut):
    net, data, D, coords = _on_meta(name)
    meta: dict = {}
    with preserved_state(net):
        losses, accs = sampler._inplace(
            net, data, D, coords, cross_entropy, 8, tqdm(disable=True), shortcut, name == "conv", False, meta, None,
            ROWS,
        )  # fmt: skip
    _assert_meta(losses, accs, shape=(ROWS,))
    assert meta["first_layer"] == ("precomputed terms" if shortcut else "evaluated")


@pytest.mark.parametrize("name", ["mlp", "conv"])
def test_vmap_sampling_loop_never_reads_the_device(name):
    net, data, D, coords = _on_meta(name)
    losses, accs = sampler._vmap(net, data, D, coords, cross_entropy, 8, 4, tqdm(disable=True))
    _assert_meta(losses, accs, shape=(ROWS,))


def test_fused_inference_graph_runs_on_the_model_device():
    net, data, _, _ = _on_meta("conv")
    graph = InferenceGraph(net, data.x[:8])
    graph.refresh()  # the folded weights, recomputed from the model's parameters where they are
    out = graph(data.x)
    assert out.device.type == "meta" and out.shape == (N, 3)
    assert graph.describe()["batchnorm"] == 1 and graph.describe()["max_pool"] == 1
    loss, acc = sampler.evaluate_on_device(graph, data, cross_entropy, 8)
    _assert_meta(loss, acc, shape=())


@pytest.mark.parametrize("reuse", [True, False])
def test_hessian_vector_product_stays_on_the_model_device(reuse):
    net, data, _, _ = _on_meta("conv")
    prob = HessianProblem(net, data, cross_entropy, batch_size=8, reuse_graph=reuse)
    hv = prob._local_hvp(torch.zeros(prob.num_params, device="meta"))
    assert hv.device.type == "meta" and hv.shape == (prob.num_params,)


def test_exact_field_loop_never_reads_the_device():
    net, data, D, coords = _on_meta("conv")
    fm = functional_model(net)
    assert D.matrix is not None
    with torch.enable_grad(), second_order():
        losses, grads, hess = field_on_device(
            fm, data, D.matrix.to("meta"), torch.as_tensor(coords, dtype=torch.float32, device="meta"), cross_entropy, 8
        )
    _assert_meta(losses, shape=(ROWS,))
    _assert_meta(grads, shape=(ROWS, 2))
    _assert_meta(hess, shape=(ROWS, 2, 2))


def test_training_batches_are_pinned_only_for_a_gpu():
    pinned = ImageDataModule("digits", batch_size=64, pin_memory=True)
    assert pinned.train_dataloader().pin_memory and pinned.val_dataloader().pin_memory
    assert not ImageDataModule("digits", batch_size=64).train_dataloader().pin_memory

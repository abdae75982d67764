"""Exact shortcut for the first layer during sampling (SPEC §1: f(u) = L(θ* + D u) unchanged).

The first parametrised layer (Linear or Conv) sees the fixed evaluation inputs, and its output is affine in its
own weights: layer(x; W* + Σ u_j ΔW_j, b* + Σ u_j Δb_j) = layer(x; W*, b*) + Σ u_j layer(x; ΔW_j, Δb_j).
The k+1 terms are computed once per evaluation batch; each sample then costs k multiply-adds per output instead
of the layer's full matmul/convolution (elementwise, so a sample's value does not depend on the batch it is in).
Used by the in-place strategy when the terms fit in memory.
"""

from __future__ import annotations

from typing import Callable, cast

import torch
from torch import nn
from torch.nn import functional as F

from ..evaluation import EvalSubset
from ..params import trainable
from .directions import Directions

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class _Grabbed(Exception):
    """Stops a forward pass once the first layer's input is taken (the cache needs nothing after it)."""


def first_parametrised_module(model: nn.Module, example: torch.Tensor) -> nn.Module | None:
    """The module whose own parameters are used first in a forward pass, if it is called exactly once."""
    owners = [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]
    order: list[nn.Module] = []
    handles = [m.register_forward_pre_hook(lambda mod, _inp: order.append(mod)) for m in owners]
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
    if not order or order.count(order[0]) != 1:
        return None
    return order[0]


def _apply(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight, bias)
    if layer.padding_mode != "zeros":
        raise TypeError("padding modes other than zeros are not supported")
    convs: dict[type, Callable[..., torch.Tensor]] = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}
    conv = convs[type(layer)]
    return conv(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)


class FirstLayerCache:
    """Precomputed first-layer terms per evaluation batch; after ``activate(u)`` the layer returns Z₀ + Σ u_j Z_j
    (without computing its matmul) for the next pass over the batches, until :meth:`close`."""

    def __init__(
        self,
        model: nn.Module,
        data: EvalSubset,
        directions: Directions,
        batch_size: int,
        layer: nn.Module,
        channels_last: bool = False,
    ):
        self.layer = layer
        offsets, i = {}, 0
        for _, p in trainable(model):
            offsets[id(p)] = (i, p)
            i += p.numel()
        weight = cast(torch.Tensor, layer.weight)
        bias = cast("torch.Tensor | None", layer.bias)
        inputs: list[torch.Tensor] = []

        def take(_m: nn.Module, inp: tuple) -> None:  # the layer's input, then stop: the rest is not needed
            inputs.append(inp[0].detach())
            raise _Grabbed

        grab = layer.register_forward_pre_hook(take)
        try:
            with torch.no_grad():
                for x, _ in data.batches(batch_size):
                    try:
                        model(x)
                    except _Grabbed:
                        pass
        finally:
            grab.remove()

        def part(row: torch.Tensor, p: torch.Tensor | None) -> torch.Tensor | None:
            if p is None:
                return None
            if id(p) not in offsets:  # frozen parameter: never perturbed
                return torch.zeros_like(p)
            start, _ = offsets[id(p)]
            return row[start : start + p.numel()].view_as(p).to(p.device, p.dtype)

        D = directions.matrix
        if D is None:
            raise ValueError("the first-layer shortcut needs explicit directions, not full-space mode")
        with torch.no_grad():
            self.terms = []
            for inp in inputs:
                base = _apply(layer, inp, weight.detach(), None if bias is None else bias.detach())
                deltas = [_apply(layer, inp, part(r, weight), part(r, bias)) for r in D]
                self.terms.append([_layout(t, channels_last) for t in (base, *deltas)])
        self._u = torch.ones(1)
        self._batch = 0
        layer.forward = self._forward  # instance attribute shadows the class method until close()

    @staticmethod
    def nbytes_needed(model: nn.Module, layer: nn.Module, data: EvalSubset, k: int) -> int:
        x = data.x
        assert isinstance(x, torch.Tensor)  # try_first_layer_cache checks it
        out_numel = []
        h = layer.register_forward_hook(lambda _m, _i, o: out_numel.append(o[0].numel()))
        try:
            with torch.no_grad():
                model(x[:1])
        finally:
            h.remove()
        return (k + 1) * len(data) * out_numel[0] * x.element_size()

    def activate(self, u: torch.Tensor) -> None:
        self._u = torch.cat([torch.ones(1, dtype=u.dtype), u])
        self._batch = 0

    def _forward(self, _x: torch.Tensor) -> torch.Tensor:
        z = self.terms[self._batch]
        self._batch += 1
        out = z[0].clone()  # keeps the terms' memory format; then elementwise, the same in any batch
        for uj, zj in zip(self._u[1:].tolist(), z[1:]):
            out.add_(zj, alpha=uj)
        return out

    def close(self) -> None:
        if "forward" in vars(self.layer):
            del self.layer.forward
        self.terms = []


def _layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t


def try_first_layer_cache(
    model: nn.Module,
    data: EvalSubset,
    directions: Directions,
    batch_size: int,
    budget: int,
    channels_last: bool = False,
) -> FirstLayerCache | None:
    """A cache when the shortcut applies (k directions, Linear/Conv first layer, terms within ``budget`` bytes).
    ``channels_last``: hand the first layer's output on in channels-last memory format (a 2-D convolution's), so
    that the rest of the net runs in it (oneDNN's faster layout for small channel counts; the model's own
    parameters are untouched)."""
    if directions.matrix is None or directions.k > 64 or not isinstance(data.x, torch.Tensor):
        return None
    layer = first_parametrised_module(model, data.x)
    if not isinstance(layer, _LAYERS) or getattr(layer, "padding_mode", "zeros") != "zeros":
        return None
    if FirstLayerCache.nbytes_needed(model, layer, data, directions.k) > budget:
        return None
    return FirstLayerCache(model, data, directions, batch_size, layer, channels_last)

"""Model inputs of any shape (SPEC §1: the evaluation subset's inputs): one tensor (``model(x)``), a tuple of
tensors (``model(*x)``: several inputs) or a dict of tensors (``model(**x)``: keyword batches, as Hugging Face
models take them). Every tensor holds one row per example. The one place that calls a model on its inputs, slices
them, counts them and moves them; every sampler, Hessian and sharpness path goes through it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Union, cast

import torch
from torch import nn

Inputs = Union[torch.Tensor, tuple[torch.Tensor, ...], dict[str, torch.Tensor]]


def check_inputs(x: object, where: str = "inputs") -> int:
    """The number of examples in ``x``; ``ValueError`` naming the problem if ``x`` is not a tensor, a tuple of
    tensors or a dict of tensors with one row per example in each."""
    if isinstance(x, torch.Tensor):
        if x.dim() == 0:
            raise ValueError(f"{where}: a 0-d tensor has no examples; pass one row per example")
        return len(x)
    parts = list(x.values()) if isinstance(x, Mapping) else list(x) if isinstance(x, (tuple, list)) else None
    if not parts or not all(isinstance(t, torch.Tensor) and t.dim() > 0 for t in parts):
        raise ValueError(
            f"{where}: inputs must be a tensor, a tuple of tensors or a dict of tensors, got {type(x).__name__}"
        )
    sizes = {len(t) for t in parts}
    if len(sizes) != 1:
        raise ValueError(f"{where}: every input tensor needs one row per example; got row counts {sorted(sizes)}")
    return sizes.pop()


def map_inputs(x: Inputs, fn: Callable[[torch.Tensor], torch.Tensor]) -> Inputs:
    """``fn`` applied to every tensor of ``x``, same structure."""
    if isinstance(x, torch.Tensor):
        return fn(x)
    if isinstance(x, Mapping):
        return {k: fn(v) for k, v in x.items()}
    return tuple(fn(t) for t in x)


def rows(x: Inputs, index: slice | torch.Tensor) -> Inputs:
    """The examples ``index`` (a slice or an index tensor) of every tensor of ``x``."""
    return map_inputs(x, lambda t: t[index])


def concat(parts: list[Inputs]) -> Inputs:
    """Batches of one structure joined along the examples."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(cast(list[torch.Tensor], parts))
    if isinstance(first, Mapping):
        dicts = cast(list[dict[str, torch.Tensor]], parts)
        return {k: torch.cat([d[k] for d in dicts]) for k in first}
    tuples = cast(list[tuple[torch.Tensor, ...]], parts)
    return tuple(torch.cat([t[i] for t in tuples]) for i in range(len(first)))


def numel_per_example(x: Inputs) -> int:
    """Numbers one example holds, over every input tensor."""
    parts = [x] if isinstance(x, torch.Tensor) else list(x.values()) if isinstance(x, Mapping) else list(x)
    return sum(t[0].numel() for t in parts)


def as_call(x: Inputs) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(positional, keyword) arguments of the model call on ``x``."""
    if isinstance(x, torch.Tensor):
        return (x,), {}
    if isinstance(x, Mapping):
        return (), dict(x)
    return tuple(x), {}


def describe_inputs(x: Inputs) -> str:
    """How the model is called on ``x``, for messages: ``model(x)``, ``model(*2 inputs)``, ``model(**{keys})``."""
    if isinstance(x, torch.Tensor):
        return f"model(x) with x of shape {tuple(x.shape)}"
    if isinstance(x, Mapping):
        return f"model(**batch) with keywords {', '.join(x)}"
    return f"model(*inputs) with {len(x)} inputs"


def call_model(model: Callable[..., Any] | nn.Module, x: Inputs) -> Any:
    """``model(x)``, ``model(*x)`` or ``model(**x)``, as ``x`` is a tensor, a tuple or a dict."""
    args, kwargs = as_call(x)
    return model(*args, **kwargs)

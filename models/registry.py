"""Build any architecture from a plain, JSON-serialisable config (stored in every checkpoint)."""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from .convnet import ConvNet
from .densenet import DenseNet
from .mlp import MLP
from .resnet import ResNet

ARCHITECTURES = ("mlp", "convnet", "resnet", "densenet")
PRESETS: dict[str, dict[str, Any]] = {
    "mlp": {"arch": "mlp"},
    "convnet": {"arch": "convnet"},
    "resnet": {"arch": "resnet"},
    "densenet": {"arch": "densenet"},
    "densenet121": {"arch": "densenet", "blocks": [6, 12, 24, 16], "growth": 32},
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"widths": [40], "bias": True},
    "convnet": {},
    "resnet": {"depth": 20, "skip": True, "width": 1},
    "densenet": {"blocks": [6, 12, 24, 16], "growth": 32},
}


def model_config(name: str, input_shape, num_classes: int, **options: Any) -> dict[str, Any]:
    """A complete config: preset (``resnet56`` = resnet of depth 56) + defaults + the options that apply.

    Options set to ``None`` are ignored; an option that contradicts the preset raises ``ValueError``.
    """
    m = re.fullmatch(r"resnet(\d+)", name)
    fixed: dict[str, Any] = {"arch": "resnet", "depth": int(m.group(1))} if m else dict(PRESETS.get(name, {}))
    if not fixed:
        raise ValueError(f"unknown model {name!r}; choose mlp, convnet, resnet[DEPTH], densenet or densenet121")
    cfg = {**DEFAULTS[fixed["arch"]], **fixed}
    for key, value in options.items():
        if value is None or key not in cfg:
            continue
        if key in fixed and fixed[key] != value:
            raise ValueError(f"model {name} fixes {key}={fixed[key]}, but {key}={value} was given")
        cfg[key] = list(value) if isinstance(value, tuple) else value
    cfg["input_shape"] = [int(s) for s in input_shape]
    cfg["num_classes"] = int(num_classes)
    return cfg


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """Instantiate the architecture described by :func:`model_config`."""
    shape, k = tuple(cfg["input_shape"]), cfg["num_classes"]
    arch = cfg.get("arch")
    if arch == "mlp":
        return MLP(shape, k, tuple(cfg["widths"]), cfg["bias"])
    if arch == "convnet":
        return ConvNet(shape, k)
    if arch == "resnet":
        return ResNet(shape, k, cfg["depth"], cfg["skip"], cfg["width"])
    if arch == "densenet":
        return DenseNet(shape, k, tuple(cfg["blocks"]), cfg["growth"])
    raise ValueError(f"unknown architecture {arch!r} in model config; expected one of {ARCHITECTURES}")


def describe(cfg: dict[str, Any]) -> str:
    """Short human-readable name: ``resnet20-noskip``, ``mlp-40-nobias``."""
    arch = cfg["arch"]
    if arch == "resnet":
        s = f"resnet{cfg['depth']}" + ("" if cfg["skip"] else "-noskip")
        return s + (f"-w{cfg['width']}" if cfg["width"] != 1 else "")
    if arch == "mlp":
        return "mlp-" + "-".join(map(str, cfg["widths"])) + ("" if cfg["bias"] else "-nobias")
    if arch == "densenet":
        return "densenet-" + "-".join(map(str, cfg["blocks"])) + f"-k{cfg['growth']}"
    return arch


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

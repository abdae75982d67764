"""Build any architecture from a plain, JSON-serialisable config (stored in every checkpoint)."""

from __future__ import annotations

import os
import re
from typing import Any

import torch
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


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """A model named as :func:`describe` names it, for the commands that take lists of models: ``resnet56`` (with
    skips), ``resnet56-noskip``, ``densenet121``, ``convnet``, ``mlp`` → (model name, options) for
    :func:`model_config`. ``ValueError`` for anything else."""
    m = re.fullmatch(r"(resnet\d+)(-noskip)?", spec)
    if m:
        return m.group(1), {"skip": m.group(2) is None}
    if spec in PRESETS:
        return spec, {}
    raise ValueError(f"unknown model {spec!r}; name models as resnetD, resnetD-noskip, densenet121, convnet or mlp")


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


LIMITS = {"depth": 1202, "width": 64, "mlp_layers": 64, "mlp_width": 1 << 20, "blocks": 256, "growth": 1024}
BYTES_PER_PARAMETER = 4 * 5  # float32 weights, gradient, two Adam moments and a Hessian-vector product


def physical_memory() -> int:
    """This machine's memory in bytes (0 where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def check_size(cfg: dict[str, Any], memory: int | None = None) -> int:
    """The parameter count of ``cfg``, counted without allocating (meta tensors); ``ValueError`` naming the option
    to lower when the architecture is absurd or its training state would not fit in half of ``memory`` bytes
    (default: this machine's)."""
    arch = cfg.get("arch")
    if arch == "resnet" and (cfg["depth"] > LIMITS["depth"] or cfg["width"] > LIMITS["width"]):
        raise ValueError(f"ResNet depth ≤ {LIMITS['depth']} and width ≤ {LIMITS['width']}; lower --depth/--width")
    if arch == "mlp" and (
        len(cfg["widths"]) > LIMITS["mlp_layers"] or max(cfg["widths"], default=1) > LIMITS["mlp_width"]
    ):
        raise ValueError(
            f"MLP: at most {LIMITS['mlp_layers']} hidden layers of ≤ {LIMITS['mlp_width']}; lower --widths"
        )
    if arch == "densenet" and (
        max(cfg["blocks"], default=1) > LIMITS["blocks"] or len(cfg["blocks"]) > 8 or cfg["growth"] > LIMITS["growth"]
    ):
        raise ValueError(f"DenseNet: ≤ 8 blocks of ≤ {LIMITS['blocks']} layers, growth ≤ {LIMITS['growth']}")
    with torch.device("meta"):
        n = count_parameters(build_model(cfg))
    memory = physical_memory() if memory is None else memory
    need = n * BYTES_PER_PARAMETER
    if memory and need > memory // 2:
        raise ValueError(
            f"{describe(cfg)} has {n:,} parameters: training and Hessian products need about {need / 2**30:.1f} GiB, "
            f"more than half of this machine's {memory / 2**30:.1f} GiB; choose a smaller architecture"
        )
    return n

"""DenseNet-BC for CIFAR (bottleneck + compression 0.5), as used by Li et al. 2018.

The ``densenet121`` preset (blocks 6-12-24-16, growth 32) has 6,956,298 parameters on CIFAR-10.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    def __init__(self, c_in: int, c_out: int, pool: bool = True):
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pool = pool  # decided from the map size at construction: the forward pass has no data-dependent branch

    def forward(self, x):
        out = self.conv(F.relu(self.bn(x)))
        return F.avg_pool2d(out, 2) if self.pool else out


class DenseNet(nn.Module):
    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        blocks: tuple[int, ...] = (6, 12, 24, 16),
        growth: int = 32,
        reduction: float = 0.5,
    ):
        super().__init__()
        c = 2 * growth
        size = input_shape[-1]  # the map's width; the 3×3 stem keeps it
        self.conv1 = nn.Conv2d(input_shape[0], c, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, n in enumerate(blocks):
            layers = []
            for _ in range(n):
                layers.append(Bottleneck(c, growth))
                c += growth
            stages.append(nn.Sequential(*layers))
            if i < len(blocks) - 1:
                c_out = int(math.floor(c * reduction))
                pool = size >= 2  # never pool a map below 1 pixel (8×8 inputs)
                stages.append(Transition(c, c_out, pool))
                c, size = c_out, size // 2 if pool else size
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.linear = nn.Linear(c, num_classes)

    def parameter_groups(self) -> dict[str, list[str]]:
        """Hessian blocks (:func:`landscape.hessian.blocks.parameter_blocks`): the stem, each dense block and each
        transition, the head (final BatchNorm and classifier); name → parameter-name prefixes."""
        groups: dict[str, list[str]] = {"stem": ["conv1."]}
        for i, stage in enumerate(self.features):
            kind = "transition" if isinstance(stage, Transition) else "dense"
            groups[f"{kind}{i // 2 + 1}"] = [f"features.{i}."]
        return {**groups, "head": ["bn.", "linear."]}

    def forward(self, x):
        out = self.features(self.conv1(x))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)

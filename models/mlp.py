"""Fully connected classifier; the 2022 diffusion-curvature paper used 784-40-10 without biases."""

from __future__ import annotations

import math

from torch import nn


class MLP(nn.Module):
    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] = (40,), bias: bool = True
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(input_shape)
        for w in widths:
            layers += [nn.Linear(fan_in, w, bias=bias), nn.ReLU()]
            fan_in = w
        layers.append(nn.Linear(fan_in, num_classes, bias=bias))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

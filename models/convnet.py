"""LeNet-5 style ConvNet that adapts to 1×8×8, 1×28×28 and 3×32×32 inputs."""

from __future__ import annotations

import torch
from torch import nn


class ConvNet(nn.Module):
    """conv5(6) → pool → conv5(16) → pool → 120 → 84 → classes, ReLU.

    The first conv keeps the size (padding 2); the second is unpadded when the map is ≥ 10 pixels (classic
    LeNet: 28 → 14 → 10 → 5) and padded on tiny inputs (8 → 4 → 4 → 2).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: tuple[int, int] = (6, 16)):
        super().__init__()
        c, h, _ = input_shape
        pad2 = 0 if h // 2 >= 10 else 2
        self.features = nn.Sequential(
            nn.Conv2d(c, channels[0], 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels[0], channels[1], 5, padding=pad2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_feat = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.classifier = nn.Sequential(
            nn.Linear(n_feat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))

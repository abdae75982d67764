"""CIFAR ResNet of depth 6n+2 (He et al. 2016) with optional skip connections, as in Li et al. 2018.

Shortcuts on down-sampling blocks are 1×1 conv + BatchNorm projections; ``skip=False`` removes every shortcut
(projections included). Parameter counts match Li et al.: ResNet-20 272,474 (269,722 without skips).
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, skip: bool):
        super().__init__()
        self.skip = skip
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if skip and (stride != 1 or c_in != c_out):
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def parameter_groups(self) -> dict[str, list[str]]:
        """Hessian blocks (:func:`landscape.hessian.blocks.parameter_blocks`): the stem, each stage of residual
        blocks (one width each), the classifier head; name → parameter-name prefixes."""
        n = len(self.layers) // 3
        stages = {f"stage{s + 1}": [f"layers.{i}." for i in range(s * n, (s + 1) * n)] for s in range(3)}
        return {"stem": ["conv1.", "bn1."], **stages, "head": ["linear."]}

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, depth: int = 20, skip: bool = True, width: int = 1
    ):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        widths = [16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(input_shape[0], widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for stage, c_out in enumerate(widths):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(c_in, c_out, stride, skip))
                c_in = c_out
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def parameter_groups(self) -> dict[str, list[str]]:
        """Hessian blocks (:func:`landscape.hessian.blocks.parameter_blocks`): the stem, each stage of residual
        blocks (one width each), the classifier head; name → parameter-name prefixes."""
        n = len(self.layers) // 3
        stages = {f"stage{s + 1}": [f"layers.{i}." for i in range(s * n, (s + 1) * n)] for s in range(3)}
        return {"stem": ["conv1.", "bn1."], **stages, "head": ["linear."]}

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)

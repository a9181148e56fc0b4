"""MobileNetV2 encoder (Sandler et al. 2018), 1-channel input, returning stride 2/4/8/16/32 features.

Hand-written because torchvision is not available; layer layout follows the reference network so the
parameter/MAC counts are comparable to the paper's backbone (the 1000-class classifier is dropped).
"""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels like the reference implementation (never drop more than 10 %)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1):
        pad = (k - 1) // 2 * dilation
        super().__init__(nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, 1))
        layers += [ConvBNReLU(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


# t (expansion), c (channels), n (repeats), s (first stride) — Table 2 of the MobileNetV2 paper.
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class MobileNetV2Encoder(nn.Module):
    """Features at strides 2, 4, 8, 16, 32 (the last after the 1x1 conv to `last_channels`).

    `width` scales every layer including the final 1x1 conv (1280 at width 1.0), so tiny test
    models are genuinely tiny; at width 1.0 the layers equal the reference network.
    """

    def __init__(self, width: float = 1.0, in_channels: int = 1):
        super().__init__()
        c0 = make_divisible(32 * width)
        self.last_channels = make_divisible(1280 * width)
        stages: list[list[nn.Module]] = [[ConvBNReLU(in_channels, c0, 3, 2)]]
        cin = c0
        self.stage_channels: list[int] = []
        for t, c, n, s in SETTINGS:
            cout = make_divisible(c * width)
            blocks = [InvertedResidual(cin if i == 0 else cout, cout, s if i == 0 else 1, t) for i in range(n)]
            if s == 2:
                stages.append([])
            stages[-1].extend(blocks)
            cin = cout
        stages[-1].append(ConvBNReLU(cin, self.last_channels, 1))
        self.stages = nn.ModuleList(nn.Sequential(*s) for s in stages)
        # channels of each stage output (strides 2, 4, 8, 16, 32)
        self.channels = [make_divisible(16 * width), make_divisible(24 * width), make_divisible(32 * width),
                         make_divisible(96 * width), self.last_channels]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        return feats

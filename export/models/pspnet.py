"""PSPNet baseline (Zhao et al. 2017): dilated ResNet-50 (output stride 8) + pyramid pooling (bins 1/2/3/6).

Pyramid pooling uses avg_pool2d with kernel/stride derived from the (static) feature size instead of
adaptive pooling: stride = floor(n/bin), kernel = n - (bin-1)*stride. This is exactly adaptive pooling
when n divides, close otherwise, and it exports with both ONNX exporters (legacy fails on adaptive
pooling with non-dividing bins, e.g. 28x28 -> 3x3/6x6 at 224 input). Output: seg logits only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import EdgeTanModel


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, dilation: int = 1, down: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.down is None else self.down(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + idt)


class DilatedResNet50(nn.Module):
    """ResNet-50 with layer3/layer4 strides replaced by dilation 2/4 (output stride 8)."""

    def __init__(self, base: int = 64, layers: tuple[int, ...] = (3, 4, 6, 3), in_channels: int = 1):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, base, 7, 2, 3, bias=False), nn.BatchNorm2d(base),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        self.cin = base
        self.layer1 = self._make(base, layers[0], 1, 1)
        self.layer2 = self._make(base * 2, layers[1], 2, 1)
        self.layer3 = self._make(base * 4, layers[2], 1, 2)
        self.layer4 = self._make(base * 8, layers[3], 1, 4)
        self.out_channels = base * 8 * 4

    def _make(self, planes: int, n: int, stride: int, dilation: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.cin != planes * 4:
            down = nn.Sequential(nn.Conv2d(self.cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        blocks = [Bottleneck(self.cin, planes, stride, 1 if dilation == 1 else dilation // 2, down)]
        self.cin = planes * 4
        blocks += [Bottleneck(self.cin, planes, 1, dilation) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def fixed_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Adaptive-like average pooling with explicit kernel/stride (export-friendly, see module doc)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    sh, sw = max(h // bins, 1), max(w // bins, 1)
    kh, kw = h - (bins - 1) * sh, w - (bins - 1) * sw
    return F.avg_pool2d(x, (kh, kw), (sh, sw))


class PyramidPooling(nn.Module):
    def __init__(self, cin: int, bins: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        self.bins = bins
        cout = cin // len(bins)
        self.stages = nn.ModuleList(nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                                                  nn.ReLU(inplace=True)) for _ in bins)
        self.out_channels = cin + cout * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outs = [x]
        for b, stage in zip(self.bins, self.stages):
            outs.append(F.interpolate(stage(fixed_avg_pool(x, b)), size=size, mode="bilinear", align_corners=False))
        return torch.cat(outs, 1)


class PSPNet(EdgeTanModel):
    outputs = ("seg",)

    def __init__(self, base: int = 64, layers: tuple[int, ...] = (3, 4, 6, 3), warp_mode: str = "none"):
        super().__init__(warp_mode)
        self.backbone = DilatedResNet50(base, tuple(layers))
        c = self.backbone.out_channels
        self.ppm = PyramidPooling(c)
        mid = c // 4
        self.head = nn.Sequential(nn.Conv2d(self.ppm.out_channels, mid, 3, 1, 1, bias=False), nn.BatchNorm2d(mid),
                                  nn.ReLU(inplace=True), nn.Dropout2d(0.1), nn.Conv2d(mid, 2, 1))

    def forward(self, x: torch.Tensor):
        y = self.head(self.ppm(self.backbone(x)))
        return (F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False),)

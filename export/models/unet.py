"""U-Net baseline (Ronneberger et al. 2015) with padded convs (224 in = 224 out) and transposed-conv
upsampling; base=64 gives the classic ~31 M parameters. Output: seg logits (N,2,H,W) only."""

from __future__ import annotations

import torch
from torch import nn

from .base import EdgeTanModel


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(EdgeTanModel):
    outputs = ("seg",)

    def __init__(self, base: int = 64, depth: int = 4, warp_mode: str = "none"):
        super().__init__(warp_mode)
        chs = [base * 2 ** i for i in range(depth + 1)]
        self.inc = double_conv(1, chs[0])
        self.downs = nn.ModuleList(double_conv(chs[i], chs[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(chs[i + 1], chs[i], 2, 2) for i in reversed(range(depth)))
        self.up_convs = nn.ModuleList(double_conv(chs[i] * 2, chs[i]) for i in reversed(range(depth)))
        self.pool = nn.MaxPool2d(2)
        self.out = nn.Conv2d(chs[0], 2, 1)

    def forward(self, x: torch.Tensor):
        skips = [self.inc(x)]
        for d in self.downs:
            skips.append(d(self.pool(skips[-1])))
        y = skips.pop()
        for up, conv in zip(self.ups, self.up_convs):
            y = conv(torch.cat([skips.pop(), up(y)], 1))
        return (self.out(y),)

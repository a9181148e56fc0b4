"""TAN network (paper Table 1): shared MobileNetV2 encoder + segmentation / landmark / view heads.

Design choices beyond the paper's table (recorded in the model metadata):
- Four deconv(2x2, s2) + 2x conv3x3 stages (160/96/64/32 channels) bring stride 32 to stride 2; the
  1x1 classifier runs at stride 2 and its logits are bilinearly upsampled x2 to the input size
  (1x1 conv and bilinear resize commute, so this equals upsample-then-classify at 1/4 the cost).
- Skip connections: each encoder feature at the matching stride (16/8/4/2) is projected by a 1x1
  conv+BN and *added* after the deconv (+~25 k params, +~17 MMAC) — sharper borders without the
  +15 % MACs that concatenation would cost.
- Landmark head outputs offsets from the template in window pixels: FC output x LANDMARK_SCALE.
  Its FC 256 -> FC 6 (Table 1) reads a *spatial* 7x7 map (1x1 conv 1280->32, flattened) instead
  of a global average: global pooling throws away where things are, and on the phantom a
  GAP head got worse than "predict the template" (7 px) while segmentation reached Dice 0.97.
  Inputs whose stride-32 map is not 7x7 (e.g. tiny test windows) are bilinearly resized to 7x7.
  (`landmark_head="gap"` builds the literal global-pool head for comparison.)
- View head: global average pool -> FC 256 -> FC 2. With `view_head="norm"` (the default for new
  models) a BatchNorm1d standardises the pooled features first. Why: the pooled ReLU6 features share
  a large common offset that drifts while the segmentation loss (weight 10 vs 0.1) reshapes the
  encoder; the plain head's hidden ReLUs were all seen to die in the first epoch (view loss stuck at
  ln 2, accuracy at chance). The BN folds into a scale and shift at export. `"plain"` is the literal
  head, kept so weights written before this option load unchanged.
- Optional fourth output `feat` (issue 25): the globally average-pooled encoder features the view head
  already computes (stride 32, `last_channels` wide; (N, 1280) at width 1), returned once
  `with_features()` is called. The runtime measures how far a window's features lie from those of the
  training windows (edge_tan.runtime.ood): an out-of-domain score that costs one extra graph output and no
  extra layer. Off by default, so training code sees the three outputs it always did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import EdgeTanModel
from .mobilenetv2 import ConvBNReLU, MobileNetV2Encoder, make_divisible

LANDMARK_SCALE = 16.0
LANDMARK_GRID = 7      # stride-32 map of a 224 window
LANDMARK_CH = 32
DECODER_CHANNELS = (160, 96, 64, 32)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, skip: int):
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, 2, bias=False), nn.BatchNorm2d(cout),
                                nn.ReLU(inplace=True))
        self.skip = nn.Sequential(nn.Conv2d(skip, cout, 1, bias=False), nn.BatchNorm2d(cout)) if skip else None
        self.convs = nn.Sequential(
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self.up(x)
        if self.skip is not None and skip is not None:
            x = x + self.skip(skip)
        return self.convs(x)


class TAN(EdgeTanModel):
    """Multi-task TAN network. forward(x) -> (seg (N,2,H,W), landmarks (N,6), view (N,2))."""

    outputs = ("seg", "landmarks", "view")

    def __init__(self, width: float = 1.0, skips: bool = True, warp_mode: str = "affine", hidden: int = 256,
                 landmark_head: str = "spatial", view_head: str = "norm"):
        super().__init__(warp_mode)
        if landmark_head not in ("spatial", "gap"):
            raise ValueError(f"landmark_head must be 'spatial' or 'gap', got {landmark_head!r}")
        if view_head not in ("norm", "plain"):
            raise ValueError(f"view_head must be 'norm' or 'plain', got {view_head!r}")
        self.view_mode = view_head
        self.landmark_mode = landmark_head
        self.encoder = MobileNetV2Encoder(width)
        ch = self.encoder.channels
        dec = [make_divisible(c * width) for c in DECODER_CHANNELS]
        cin = ch[4]
        blocks = []
        for i, c in enumerate(dec):
            blocks.append(UpBlock(cin, c, ch[3 - i] if skips else 0))
            cin = c
        self.decoder = nn.ModuleList(blocks)
        self.classifier = nn.Conv2d(cin, 2, 1)
        hid = max(16, int(hidden * min(1.0, width))) if width < 1 else hidden
        if landmark_head == "spatial":
            self.landmark_reduce = nn.Sequential(nn.Conv2d(ch[4], LANDMARK_CH, 1, bias=False),
                                                 nn.BatchNorm2d(LANDMARK_CH), nn.ReLU(inplace=True))
            lm_in = LANDMARK_CH * LANDMARK_GRID ** 2
        else:
            self.landmark_reduce = None
            lm_in = ch[4]
        self.landmark_head = nn.Sequential(nn.Linear(lm_in, hid), nn.ReLU(inplace=True), nn.Linear(hid, 6))
        view_layers = [nn.Linear(ch[4], hid), nn.ReLU(inplace=True), nn.Linear(hid, 2)]
        if view_head == "norm":
            view_layers.insert(0, nn.BatchNorm1d(ch[4]))
        self.view_head = nn.Sequential(*view_layers)
        nn.init.zeros_(self.landmark_head[-1].weight)   # start at the template: offsets 0
        nn.init.zeros_(self.landmark_head[-1].bias)
        self.landmark_scale = LANDMARK_SCALE
        self.emit_feat = False

    def with_features(self, on: bool = True) -> "TAN":
        """Make forward() also return `feat` (N, C): the pooled deepest encoder map (see module doc)."""
        self.emit_feat = bool(on)
        self.outputs = type(self).outputs + (("feat",) if on else ())
        return self

    def forward(self, x: torch.Tensor, features: bool | None = None):
        """(seg, landmarks, view), plus feat when `with_features()` was called or features=True."""
        f = self.encoder(x)
        y = f[4]
        for i, blk in enumerate(self.decoder):
            y = blk(y, f[3 - i])
        seg = self.classifier(y)
        seg = F.interpolate(seg, size=x.shape[-2:], mode="bilinear", align_corners=False)
        g = f[4].mean((2, 3))
        if self.landmark_reduce is not None:
            r = self.landmark_reduce(f[4])
            if tuple(r.shape[-2:]) != (LANDMARK_GRID, LANDMARK_GRID):
                r = F.interpolate(r, size=(LANDMARK_GRID, LANDMARK_GRID), mode="bilinear", align_corners=False)
            lm = self.landmark_head(r.flatten(1))
        else:
            lm = self.landmark_head(g)
        lm = lm * self.landmark_scale
        view = self.view_head(g)
        if self.emit_feat if features is None else features:
            return seg, lm, view, g
        return seg, lm, view


class WithFeatures(nn.Module):
    """A TAN seen with its `feat` output, without changing the wrapped module (which a caller may go
    on training with its three outputs): what the torch runners run, so they match the export."""

    def __init__(self, inner: TAN):
        super().__init__()
        self.inner = inner
        self.outputs = type(inner).outputs + ("feat",)
        self.warp_mode = inner.warp_mode

    def forward(self, x: torch.Tensor):
        return self.inner(x, features=True)


def feature_model(module: nn.Module) -> nn.Module:
    """`module` returning feat as well, where it can (TAN family); anything else unchanged."""
    if isinstance(module, TAN) and not module.emit_feat:
        return WithFeatures(module)
    return module

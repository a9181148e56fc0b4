"""Label-free window consistency for adaptation: two jittered windows of one site frame must show the
same LV (landmarks and mask), compared in one window's coordinates.

Why: one warped pass of the shipped model *follows* its window on real frames instead of correcting it.
Measured on real development clips (Jacobian of seed landmarks -> output landmarks, one frame, frame
px): spectral radius 1.0-2.2 on real frames against 0.82-0.93 on phantom frames. Above 1 the closed
loop wanders from frame to frame and amplifies any perturbation (issue 21 item 3 saw float rounding
grow ~x3 per frame). TAN's landmark head learns to undo window jitter from labelled phantom windows;
this teaches the same property on the site's own frames without labels: the network must read where
the LV is from the image, since that is all that tells it how the two windows differ.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from edge_tan.runtime.geometry import compose, invert_affine, perturb_affine, warp_image
from edge_tan.runtime.intensity import input_normaliser

from ..train.losses import LMK_NORM
from ..train.samples import base_affine, normalize

W_LMK, W_SEG = 1.0, 1.0   # landmark agreement (smooth L1 / LMK_NORM) and mask agreement (mean |p1 - p2|)


class WindowPairs:
    """Item i -> one site frame cut by two independent jitters of its tracking window (reproducible)."""

    def __init__(self, seqs, template: np.ndarray, size: int, warp_mode: str, input_norm: str, seed: int):
        self.seqs, self.template, self.size, self.warp_mode = seqs, np.asarray(template, np.float32), size, warp_mode
        self.norm, self.seed = input_normaliser(input_norm), seed
        self.items = [(si, t) for si, s in enumerate(seqs) for t in range(s.n_frames)]

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, 53, int(i)])
        si, t = self.items[int(rng.integers(len(self.items)))]
        s = self.seqs[si]
        base = base_affine(s, t, self.template, self.size, self.warp_mode)
        m1, m2 = perturb_affine(base, rng, self.size), perturb_affine(base, rng, self.size)
        g = self.norm(s.frames[t])
        return {"x1": warp_image(g, m1, self.size)[None], "x2": warp_image(g, m2, self.size)[None],
                "a21": compose(m1, invert_affine(m2)).astype(np.float32),    # window 2 -> window 1
                "a12": compose(m2, invert_affine(m1)).astype(np.float32)}    # window 1 -> window 2


def _apply(a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(N, 2, 3) affines applied to (N, K, 2) points."""
    return torch.einsum("nij,nkj->nki", a[:, :, :2], p) + a[:, None, :, 2]


def consistency_loss(model, batch: dict, template: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Disagreement of the two windows' landmarks (window-1 px) and LV probability maps (where both
    windows see the frame), both paths with gradients."""
    x = normalize(torch.cat([batch["x1"], batch["x2"]]))
    n = batch["x1"].shape[0]
    seg, lm = model(x)[:2]
    pts = template[None] + lm.float().view(-1, 3, 2)
    lm_loss = F.smooth_l1_loss(pts[:n] / LMK_NORM, _apply(batch["a21"], pts[n:]) / LMK_NORM)
    prob = torch.softmax(seg.float(), 1)[:, 1:2]
    S = prob.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij")
    u = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)[None].expand(n, -1, -1)   # window-1 pixel centres
    v = _apply(batch["a12"], u) * (2.0 / (S - 1)) - 1.0                            # in window 2, [-1, 1]
    grid = v.view(n, S, S, 2)
    p2 = F.grid_sample(prob[n:], grid, align_corners=True, padding_mode="zeros")
    seen = F.grid_sample(torch.ones_like(prob[n:]), grid, align_corners=True, padding_mode="zeros") > 0.999
    seg_loss = ((prob[:n] - p2).abs() * seen).sum() / seen.sum().clamp_min(1.0)
    return W_LMK * lm_loss + W_SEG * seg_loss, {"eq_lmk": lm_loss.detach(), "eq_seg": seg_loss.detach()}

"""Re-fit the view head after adapt's final BatchNorm pass, on the site's clip views.

Why: self-training teaches the network the site's view, but the final phase then re-estimates every
BatchNorm layer on the windows the adapted network places, and the pooled features the view head
reads move with them. On held-out real development clips (adapt on one half, scored on the other)
the frames called A4C went 62 % -> 99.6 % after self-training and back to 53-63 % after the final pass.
So the head alone is re-fitted on the features as they now are: the site's tracked windows carry their
clip's view, site-styled phantom windows carry their own (both views), so the head keeps telling A2C
from A4C by anatomy rather than by the site's look. A clip's view is the site's (`--view`) or, without
it, the one the clip's pseudo-labels carry (the tracker's call, kept where both passes agreed on nearly
every frame). Without the re-fit, an adaptation on the 73 development clips without `--view` called
51 % of their frames A4C though its pseudo-labels called 51 of 60 clips A4C and 3 A2C; with it, 94 %
(scratch runs). Everything but the head's two Linear layers stays as the final pass left it (the
head's BatchNorm included), so the exported architecture is unchanged.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..train.samples import normalize
from ..train.view_head import pooled_features

EPOCHS = 60
MIN_VIEW_CLIPS = 3   # fewer site clips of known view: the head is left as it is
BATCH = 64
LR = 1e-3


@torch.no_grad()
def pooled(model, windows_u8: np.ndarray, batch: int = 32) -> torch.Tensor:
    """(N, C) view-head input of uint8 windows, in batches."""
    model.eval()
    out = []
    for i in range(0, len(windows_u8), batch):
        x = normalize(torch.from_numpy(np.ascontiguousarray(windows_u8[i:i + batch]))[:, None])
        out.append(pooled_features(model, x))
    return torch.cat(out) if out else torch.zeros(0, 0)


def _accuracy(head: nn.Module, g: torch.Tensor, y: torch.Tensor) -> float | None:
    if not len(g):
        return None
    with torch.no_grad():
        return float((head(g).argmax(1) == y).float().mean())


def labelled_windows(window_clips, clip_views: dict, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, views) of at most n windows (evenly at random, fixed seed) whose clip, `window_clips[k]`,
    has a view in `clip_views` ({clip: view index}); windows of other clips are left out."""
    from .windows import sample_indices
    known = np.array([k for k, c in enumerate(window_clips) if c in clip_views], np.int64)
    pick = known[sample_indices(len(known), n, seed)]
    return pick, np.array([clip_views[window_clips[k]] for k in pick], np.int64)


def refit_view_head(model, site_u8: np.ndarray, site_views, phantom_u8: np.ndarray, phantom_views: np.ndarray,
                    seed: int = 0) -> dict:
    """Fit `model.view_head`'s Linear layers (from their current values) on site windows labelled
    `site_views` (one view index for all, or one per window) and phantom windows with their views,
    one held-out fifth of each scored; returns a summary."""
    t0 = time.monotonic()
    head = model.view_head
    g = torch.cat([pooled(model, site_u8), pooled(model, phantom_u8)])
    sv = np.broadcast_to(np.asarray(site_views, np.int64), (len(site_u8),))
    y = torch.cat([torch.as_tensor(np.array(sv), dtype=torch.long),
                   torch.as_tensor(np.asarray(phantom_views), dtype=torch.long)])
    is_site = torch.arange(len(y)) < len(site_u8)
    known = y >= 0
    g, y, is_site = g[known], y[known], is_site[known]
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=gen)
    held = torch.zeros(len(y), dtype=torch.bool)
    held[perm[: len(y) // 5]] = True
    before = {"site": _accuracy(head.eval(), g[held & is_site], y[held & is_site]),
              "phantom": _accuracy(head, g[held & ~is_site], y[held & ~is_site])}
    lin = [p for m in head if isinstance(m, nn.Linear) for p in m.parameters()]
    frozen = [p for m in head if not isinstance(m, nn.Linear) for p in m.parameters()]   # the head's BatchNorm
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.AdamW(lin, lr=LR, weight_decay=1e-4)
    tr = torch.nonzero(~held).flatten()
    steps = 0
    for _ in range(EPOCHS):
        order = tr[torch.randperm(len(tr), generator=gen)]
        for j in range(0, len(order), BATCH):
            b = order[j:j + BATCH]
            loss = F.cross_entropy(head(g[b]), y[b])   # head in eval mode: its BatchNorm keeps the final pass's statistics
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    for p in frozen:
        p.requires_grad_(True)
    head.eval()
    after = {"site": _accuracy(head, g[held & is_site], y[held & is_site]),
             "phantom": _accuracy(head, g[held & ~is_site], y[held & ~is_site])}
    return {"site_windows": int(is_site.sum()), "phantom_windows": int((~is_site).sum()), "steps": steps,
            "held_out_accuracy_before": before, "held_out_accuracy_after": after,
            "seconds": round(time.monotonic() - t0, 1)}

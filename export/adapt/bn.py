"""BatchNorm re-estimation on the site's windows (AdaBN, Li et al. 2016; "precise BN").

Why: a large part of a scanner gap is first-order feature statistics; re-estimating the running
mean/variance of every BN layer on the windows the tracker feeds the network at the site (not on
random crops) moves the network to the site with no label and no gradient (on real clips this alone
cut EF error 17.8 -> 12.7 points, issue 12). All BN layers are set to train mode with a cumulative
average (momentum None) and run on batches of site windows, so layer k is estimated on the inputs it
gets once layers < k already use the *new* statistics; everything else stays in eval mode.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from edge_tan.runtime.artifact import ModelMetadata

BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


def bn_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, BN_TYPES)]


def to_input(windows_u8: np.ndarray, md: ModelMetadata) -> torch.Tensor:
    """(N, S, S) uint8 -> (N, 1, S, S) network input, the artifact's own normalisation."""
    x = torch.from_numpy(np.ascontiguousarray(windows_u8)).float()[:, None]
    return (x * md.input_scale - md.input_mean) / md.input_std


@torch.no_grad()
def reestimate_bn(model: nn.Module, windows_u8: np.ndarray, md: ModelMetadata, batch: int = 32,
                  deadline: float | None = None, progress=None) -> dict:
    """Replace every BN layer's running statistics by those of `windows_u8`; returns a summary.

    Stops early (with the batches seen so far) at `deadline`, but always uses at least one batch.
    Batches of one sample are skipped (BatchNorm1d cannot take them)."""
    layers = bn_layers(model)
    n = len(windows_u8)
    if not layers or n < 2:
        return {"layers": len(layers), "windows": 0, "batches": 0, "updated": False}
    saved = [(m.momentum, m.training) for m in layers]
    before = layers[0].running_mean.clone()
    was_training = model.training
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None      # cumulative average over the batches
        m.train()
    seen = nb = 0
    try:
        for i in range(0, n, batch):
            xb = windows_u8[i:i + batch]
            if len(xb) < 2:
                break
            model(to_input(xb, md))
            seen += len(xb)
            nb += 1
            if progress:
                progress(len(xb))
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        for m, (mom, tr) in zip(layers, saved):
            m.momentum = mom
            m.train(tr)
        model.train(was_training)
    shift = float((layers[0].running_mean - before).abs().mean())
    return {"layers": len(layers), "windows": seen, "batches": nb, "updated": True,
            "first_layer_mean_shift": round(shift, 5)}


def freeze_bn(model: nn.Module) -> None:
    """BN layers in eval mode (statistics kept, affine still trainable): fine-tuning with small CPU
    batches must not overwrite the site statistics with noisy batch ones."""
    for m in bn_layers(model):
        m.eval()

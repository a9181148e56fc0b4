"""Re-fit the A2C/A4C view head on a trained, frozen TAN.

Why: with the paper's weights (view 0.1 vs segmentation 10) the view head's hidden ReLUs can all
die early in training (every pre-activation negative for every input); after that no gradient
reaches it and the view loss sits at ln 2 forever. The encoder features are still informative, so
re-initialising the head and fitting it alone (encoder frozen, no weight decay) repairs it in minutes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edge_tan.runtime.errors import EdgeTanError

from ..weights import load_weights, save_weights
from .samples import WarpedSamples, load_split_sequences, normalize, validation_arrays


def pooled_features(model, x: torch.Tensor) -> torch.Tensor:
    """The view head's input: the deepest encoder map, pooled (as TAN.forward computes it)."""
    return model.encoder(x)[4].mean((2, 3))


def _accuracy(model, head, val: dict, bs: int = 64) -> float:
    hits = n = 0
    with torch.inference_mode():
        for i in range(0, len(val["image"]), bs):
            x = normalize(torch.from_numpy(val["image"][i:i + bs]))
            v = torch.from_numpy(val["view"][i:i + bs])
            pred = head(pooled_features(model, x)).argmax(1)
            ok = v >= 0
            hits += int((pred[ok] == v[ok]).sum())
            n += int(ok.sum())
    return hits / n if n else float("nan")


def fit_view_head(weights: str | Path, data_dir: str | Path, out: str | Path, minutes: float = 5.0,
                  batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> dict:
    model, md = load_weights(weights)
    if not hasattr(model, "view_head"):
        raise EdgeTanError(f"{weights}: model {md.model_name!r} has no view head")
    torch.manual_seed(seed)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    head = model.view_head
    for m in head:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=0.1)
            nn.init.zeros_(m.bias)
            m.weight.requires_grad_(True)
            m.bias.requires_grad_(True)
    train = load_split_sequences(data_dir, "train")
    val_seqs = load_split_sequences(data_dir, "val")
    tpl, size = md.template_array, md.window
    nrm = md.input_norm   # the frozen network saw frames through this
    ds = WarpedSamples(train, tpl, size, md.warp_mode, length=10 ** 9, seed=seed + 7919, input_norm=nrm)
    val = validation_arrays(val_seqs, tpl, size, md.warp_mode, input_norm=nrm)
    val_jit = validation_arrays(val_seqs, tpl, size, md.warp_mode, jitter_seed=seed + 1, input_norm=nrm)
    # 1) pooled encoder features of fresh training samples, for ~70 % of the budget (the expensive part)
    t0, i, feats, labels = time.time(), 0, [], []
    with torch.inference_mode():
        while time.time() - t0 < 0.7 * minutes * 60 or i < 2 * batch_size:
            items = [ds[i + k] for k in range(batch_size)]
            i += batch_size
            x = normalize(torch.from_numpy(np.stack([it["image"] for it in items])))
            feats.append(pooled_features(model, x))
            labels.append(torch.from_numpy(np.stack([it["view"] for it in items])))
    g, y = torch.cat(feats), torch.cat(labels)
    # 2) the head on standardised features: the pooled ReLU6 features share a large common offset, and a
    #    head fed raw features dies again within a few steps (seen); standardising then folding the
    #    scale/shift into the first Linear keeps the exported architecture unchanged.
    mu, sd = g.mean(0), g.std(0) + 1e-3
    gn = (g - mu) / sd
    mlp = nn.Sequential(*[m for m in head if not isinstance(m, nn.BatchNorm1d)])   # fitted on standardised g
    opt = torch.optim.AdamW([p for p in mlp.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    mlp.train()
    losses, step = [], 0
    for epoch in range(200):
        perm = torch.randperm(len(gn))
        for j in range(0, len(gn), batch_size):
            b = perm[j:j + batch_size]
            loss = F.cross_entropy(mlp(gn[b]), y[b], ignore_index=-1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        if time.time() - t0 > minutes * 60:
            break
    with torch.no_grad():
        if isinstance(head[0], nn.BatchNorm1d):   # normalised head: the standardisation *is* its BN
            bn = head[0]
            bn.running_mean.copy_(mu)
            bn.running_var.copy_(sd * sd)                 # exact (g - mu) / sd, eps included:
            bn.weight.copy_(torch.sqrt(sd * sd + bn.eps) / sd)   # a near-constant feature stays finite
            bn.bias.zero_()
        else:                                      # literal head: fold it into the first Linear
            lin = head[0]
            lin.weight.div_(sd[None, :])
            lin.bias.sub_(lin.weight @ mu)
    head.eval()
    acc, acc_jit = _accuracy(model, head, val), _accuracy(model, head, val_jit)
    report = {"steps": step, "samples": i, "epochs": epoch + 1, "minutes": round((time.time() - t0) / 60, 2),
              "final_loss": float(np.mean(losses[-20:])) if losses else None,
              "val_view_acc": acc, "val_jitter_view_acc": acc_jit}
    md.training = {**(md.training or {}), "view_head_refit": report, "val_view_acc": acc}
    save_weights(model, md, out)
    return report

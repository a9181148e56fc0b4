"""Time-budgeted, resumable fine-tuning for adaptation: styled phantom windows (exact labels) and,
for self-training, the site's pseudo-labelled frames, in the same batches.

Samples come from the training pipeline itself (export/train/samples.WarpedSamples: same warp,
jitter, input_norm and domain randomisation as `edge-tan train`) and the loss is the training loss
(export/train/loop.compute_loss: OHEM + landmarks + view). What differs from training:
- phantom windows are restyled to the site (style.stylise) after the warp;
- BatchNorm layers stay in eval mode (bn.freeze_bn): batches of 8 on a CPU would give noisy batch
  statistics, and the site statistics of step a are what the network must keep fitting;
- a small learning rate with warmup + cosine over this phase's *time* share (the budget ends it).
A checkpoint (model, optimiser, step, seconds) is written every CKPT_S seconds and at the end, so a
re-run continues the phase where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..train.loop import _load_ckpt, _save_ckpt, compute_loss, lr_at
from ..train.samples import WarpedSamples
from .bn import freeze_bn
from .style import SiteStyle, stylise

CKPT_S = 60.0


def _collate(items: list[dict]) -> dict:
    return {k: torch.from_numpy(np.stack([np.asarray(it[k]) for it in items])) for k in items[0]}


class MixedBatches:
    """Batch i: `n_site` samples from the site (of them `n_traced` from the expert-traced labels, the
    rest from the pseudo-labels), the rest phantom (restyled)."""

    def __init__(self, phantom: WarpedSamples | None, site: WarpedSamples | None, style: SiteStyle | None,
                 batch: int, site_share: float, seed: int, pairs=None, n_pairs: int = 0,
                 traced: WarpedSamples | None = None, traced_share: float = 0.5):
        self.phantom, self.site, self.style, self.batch, self.seed = phantom, site, style, batch, seed
        self.traced = traced
        self.pairs, self.n_pairs = pairs, (n_pairs if pairs is not None else 0)   # equivariance.WindowPairs
        has_site = site is not None or traced is not None
        self.n_site = 0 if not has_site else (batch if phantom is None else int(round(batch * site_share)))
        self.n_traced = 0 if traced is None else (self.n_site if site is None else int(round(self.n_site * traced_share)))

    def _site_item(self, step: int, j: int) -> dict:
        if j < self.n_traced:
            return self.traced[step * self.batch + j]
        return self.site[step * self.batch + j]

    def get(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, 7, step])
        items = [self._site_item(step, j) for j in range(self.n_site)]
        for j in range(self.n_site, self.batch):
            it = self.phantom[step * self.batch + j]
            if self.style is not None:
                it["image"] = stylise(it["image"][0], self.style, rng)[None]
            items.append(it)
        out = _collate(items)
        if self.n_pairs:
            out["eq"] = _collate([self.pairs[step * self.n_pairs + j] for j in range(self.n_pairs)])
        return out


def finetune(model, batches: MixedBatches, ckpt: Path, seconds: float, lr: float, progress=None,
             template: np.ndarray | None = None) -> dict:
    """Train until `seconds` of this phase have passed (counting earlier runs); returns a summary."""
    template = torch.from_numpy(np.asarray(template, np.float32)) if template is not None else None
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    state = {"step": 0, "elapsed": 0.0, "loss_ema": None}
    if ckpt.is_file():
        state = _load_ckpt(ckpt, model, opt)
    dev = torch.device("cpu")
    model.train()
    freeze_bn(model)
    t_run, e0, last_ckpt = time.monotonic(), state["elapsed"], time.monotonic()
    losses = []

    def elapsed() -> float:
        return e0 + time.monotonic() - t_run

    while elapsed() < seconds:
        for g in opt.param_groups:
            g["lr"] = lr_at(elapsed() / max(seconds, 1e-6), lr)
        batch = batches.get(state["step"])
        eq = batch.pop("eq", None)
        loss, parts = compute_loss(model, batch, dev, True, False, False)
        if eq is not None:
            from .equivariance import consistency_loss
            loss = loss + consistency_loss(model, eq, template)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        state["step"] += 1
        lv = float(loss.detach())
        losses.append(lv)
        state["loss_ema"] = lv if state["loss_ema"] is None else 0.9 * state["loss_ema"] + 0.1 * lv
        if progress:
            progress(state)
        if time.monotonic() - last_ckpt > CKPT_S:
            state["elapsed"] = elapsed()
            _save_ckpt(ckpt, model, opt, state)
            last_ckpt = time.monotonic()
    state["elapsed"] = elapsed()
    _save_ckpt(ckpt, model, opt, state)
    model.eval()
    return {"steps": state["step"], "seconds": round(state["elapsed"], 1), "batch": batches.batch,
            "site_per_batch": batches.n_site, "traced_per_batch": batches.n_traced, "window_pairs_per_batch": batches.n_pairs, "lr": lr,
            "loss_first": round(losses[0], 4) if losses else None,
            "loss_ema_last": round(state["loss_ema"], 4) if state["loss_ema"] is not None else None}


def load_phase_state(ckpt: Path) -> dict:
    """The saved step/seconds of a fine-tune phase (for progress), without loading tensors."""
    if not ckpt.is_file():
        return {}
    blob = torch.load(ckpt, map_location="cpu", weights_only=True)
    return json.loads(blob["state"])

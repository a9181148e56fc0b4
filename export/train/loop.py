"""`edge-tan train`: resumable, time-budgeted training of TAN (OHEM, optional TCM) or a baseline.

Writes RUN_DIR/last.ckpt (torch.save of plain tensors + JSON state; loaded with weights_only=True),
RUN_DIR/best.safetensors (best val Dice, self-describing weights), RUN_DIR/log.jsonl (per epoch) and
RUN_DIR/summary.json. The LR follows warmup + cosine over progress = max(step fraction, time
fraction), so a `max_minutes` budget still ends at a low LR. At the end, a TAN's best.safetensors gets
its out-of-domain reference fitted on the run's dataset (`_fit_ood`; `--no-ood` skips it).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from edge_tan.runtime.atomic import atomic_path, write_text
from edge_tan.runtime.errors import EdgeTanError, first_line

from ..models.registry import build_model, make_metadata, model_kwargs
from ..weights import save_weights
from . import losses as L
from .domain import DomainConfig
from .samples import (WarpedSamples, load_split_sequences, normalize, training_template, validation_arrays)


@dataclass
class TrainConfig:
    data_dir: str
    model: str = "tan"
    out: str = "runs/tan"
    tcm: bool = False
    epochs: int = 30
    max_minutes: float = 0.0
    batch_size: int = 16
    lr: float = 1e-3
    width: float = 1.0
    size: int = 224
    samples_per_epoch: int = 2000
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    resume: bool = True
    init: str = ""   # warm start: weights file of the same model (fine-tuning); its template is kept
    input_norm: str = "equalize"   # grey-frame step before the warp (edge_tan.runtime.intensity); this run's wins over --init's
    domain_random: bool = True     # raw-frame domain randomisation (domain.py)
    ood: bool = True               # fit the out-of-domain reference into the written weights (TAN family; _fit_ood)


WARMUP = 0.03
MIN_LR_FRAC = 0.02
WEIGHT_DECAY = 1e-4


def _worker_init(_):
    # NB: no cv2.setNumThreads here: destroying OpenCV's thread pool in a forked child deadlocks
    # (pthread_cond_destroy). The parent sets 1 thread before forking instead.
    torch.set_num_threads(1)


class _EpochSampler(torch.utils.data.Sampler):
    """Epoch e yields item ids [e*n, (e+1)*n): every sample is reproducible from (seed, id), and
    resuming at epoch e continues the exact stream. Lives in the main process, so a persistent
    loader sees `epoch` changes."""

    def __init__(self, n: int):
        self.n, self.epoch = n, 0

    def __iter__(self):
        return iter(range(self.epoch * self.n, (self.epoch + 1) * self.n))

    def __len__(self) -> int:
        return self.n


def lr_at(progress: float, base: float) -> float:
    p = min(max(progress, 0.0), 1.0)
    if p < WARMUP:
        return base * (0.1 + 0.9 * p / WARMUP)
    q = (p - WARMUP) / (1 - WARMUP)
    return base * (MIN_LR_FRAC + (1 - MIN_LR_FRAC) * 0.5 * (1 + math.cos(math.pi * q)))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EdgeTanError("--device cuda asked but no CUDA GPU is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise EdgeTanError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def compute_loss(model, batch: dict, dev: torch.device, multitask: bool, tcm: bool, amp: bool):
    """Total loss and its parts. TCM: both paths go through the shared network in one batch."""
    x = batch["image"].to(dev, non_blocking=True)
    y = batch["mask"].to(dev, non_blocking=True)
    n = x.shape[0]
    if tcm:
        x = torch.cat([x, batch["image2"].to(dev, non_blocking=True)])
        y = torch.cat([y, batch["mask2"].to(dev, non_blocking=True)])
    x = normalize(x)
    if dev.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        out = model(x)
    seg_ps = L.seg_loss(out[0], y)
    # TCM: L_het = L^M_{t-1} + L^OF_t per pair (gated pairs were never sampled, i.e. zeroed)
    seg = (seg_ps[:n] + seg_ps[n:]).mean() if tcm else seg_ps.mean()
    parts = {"seg": seg}
    total = L.W_SEG * seg
    if multitask:
        lm = L.landmark_loss(out[1][:n], batch["landmarks"].to(dev), batch["lm_valid"].to(dev))
        vw = L.view_loss(out[2][:n], batch["view"].to(dev))
        parts.update(lmk=lm, view=vw)
        total = total + L.W_LMK * lm + L.W_VIEW * vw
    return total, parts


@torch.no_grad()
def evaluate(model, val: dict, dev: torch.device, multitask: bool, amp: bool, bs: int = 64) -> dict:
    """Dice (window space), landmark error (window px) and view accuracy on the fixed val arrays."""
    model.eval()
    dices, errs, hits, nview = [], [], 0, 0
    for i in range(0, len(val["image"]), bs):
        x = normalize(torch.from_numpy(val["image"][i:i + bs]).to(dev))
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        pred = out[0].float().argmax(1).cpu().numpy().astype(bool)
        gt = val["mask"][i:i + bs].astype(bool)
        inter = (pred & gt).sum((1, 2))
        den = pred.sum((1, 2)) + gt.sum((1, 2))
        dices.extend(np.where(den > 0, 2 * inter / np.maximum(den, 1), 1.0).tolist())
        if multitask:
            lm = out[1].float().cpu().numpy().reshape(-1, 3, 2)
            tg = val["landmarks"][i:i + bs].reshape(-1, 3, 2)
            ok = val["lm_valid"][i:i + bs] > 0
            errs.extend(np.linalg.norm(lm - tg, axis=2).mean(1)[ok].tolist())
            v = val["view"][i:i + bs]
            vp = out[2].float().argmax(1).cpu().numpy()
            hits += int((vp[v >= 0] == v[v >= 0]).sum())
            nview += int((v >= 0).sum())
    model.train()
    res = {"val_dice": float(np.mean(dices)) if dices else float("nan")}
    if multitask:
        res["val_landmark_px"] = float(np.mean(errs)) if errs else float("nan")
        res["val_view_acc"] = hits / nview if nview else float("nan")
    return res


def _init_state(path: str, name: str):
    """(state dict, metadata, arch kwargs) of a weights file to warm-start `name` from."""
    from ..weights import legacy_arch_kwargs, load_weights
    src, md = load_weights(path)
    arch = md.training["arch"]   # save_weights requires it; it is what rebuilt `src`
    if arch.get("name") != name:
        raise EdgeTanError(f"--init {path}: holds model {arch.get('name')!r}, not {name!r}")
    return src.state_dict(), md, legacy_arch_kwargs(arch)


def _apply_init(model, sd: dict, path: str) -> str:
    """Load `sd` into `model`; only the view head may differ (an old plain head is re-initialised)."""
    ref = model.state_dict()
    same = {k: v for k, v in sd.items() if k in ref and tuple(v.shape) == tuple(ref[k].shape)}
    skipped = sorted((set(ref) | set(sd)) - set(same))
    bad = [k for k in skipped if not k.startswith("view_head.")]
    if bad:
        raise EdgeTanError(f"--init {path}: weights do not fit this model (e.g. {bad[:3]})")
    model.load_state_dict(same, strict=False)
    return f"{path}" + (" (view head re-initialised)" if skipped else "")


def _save_ckpt(path: Path, model, opt, state: dict) -> None:
    blob = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optim": opt.state_dict(), "state": json.dumps(state)}
    with atomic_path(path, suffix=".ckpt") as tmp:
        torch.save(blob, tmp)


def _load_ckpt(path: Path, model, opt) -> dict:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optim"])
    return json.loads(blob["state"])


def _setup_device(cfg: TrainConfig) -> tuple[torch.device, bool]:
    """The device, seeds and CUDA fast paths; (device, use autocast)."""
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev, dev.type == "cuda"


def _build(cfg: TrainConfig):
    """(model, kwargs, --init metadata or None, init note): the --init file's architecture, except that
    an old plain view head becomes today's default."""
    kwargs, init_md, init_note = model_kwargs(cfg.model, width=cfg.width), None, ""
    if cfg.init:
        init_sd, init_md, init_kwargs = _init_state(cfg.init, cfg.model)
        kwargs = {**model_kwargs(cfg.model, **init_kwargs), **{k: v for k, v in kwargs.items() if k == "view_head"}}
    model = build_model(cfg.model, **kwargs)
    if cfg.init:
        init_note = _apply_init(model, init_sd, cfg.init)
    return model, kwargs, init_md, init_note


@dataclass
class _Data:
    """Everything a run reads from the dataset: samples, validation arrays, template, TCM flow."""
    train_seqs: list
    val_seqs: list
    val_note: str
    template: np.ndarray
    flow: object
    tcm_stats: dict
    domain: DomainConfig | None
    ds: WarpedSamples
    val: tuple
    val_det: tuple | None
    val_jit: tuple
    steps_per_epoch: int
    total_steps: int


def _data(cfg: TrainConfig, warp_mode: str, init_md) -> _Data:
    train_seqs = load_split_sequences(cfg.data_dir, "train")
    if not train_seqs:
        raise EdgeTanError(f"{cfg.data_dir}: no sequences in the train split")
    val_seqs = load_split_sequences(cfg.data_dir, "val")
    val_note = "val split"
    if not val_seqs:
        val_seqs, val_note = train_seqs, "train split (no val split in manifest)"
    if init_md is not None and init_md.template is not None:
        template = init_md.template_array   # the warm-started heads regress offsets from *this* template
        if init_md.window != cfg.size:
            raise EdgeTanError(f"--init {cfg.init}: window {init_md.window} != --size {cfg.size}")
    else:
        template = training_template(train_seqs, cfg.size, warp_mode)
    flow, tcm_stats = None, {}
    if cfg.tcm:
        from .tcm import flow_labels
        t0 = time.time()
        flow, tcm_stats = flow_labels(train_seqs)
        tcm_stats["seconds"] = round(time.time() - t0, 2)
    steps_per_epoch = max(1, cfg.samples_per_epoch // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    domain = DomainConfig() if cfg.domain_random else None
    ds = WarpedSamples(train_seqs, template, cfg.size, warp_mode, length=total_steps * cfg.batch_size,
                       seed=cfg.seed, flow=flow, input_norm=cfg.input_norm, domain=domain)
    nrm = cfg.input_norm
    val = validation_arrays(val_seqs, template, cfg.size, warp_mode, input_norm=nrm)
    # first-frame detection (letterboxed whole frame, same template offsets): reported, not used for "best"
    val_det = validation_arrays(val_seqs, template, cfg.size, "none", max_items=128,
                                input_norm=nrm) if warp_mode != "none" else None
    val_jit = validation_arrays(val_seqs, template, cfg.size, warp_mode, max_items=128, jitter_seed=cfg.seed + 1,
                                input_norm=nrm)
    return _Data(train_seqs, val_seqs, val_note, template, flow, tcm_stats, domain, ds, val, val_det, val_jit,
                 steps_per_epoch, total_steps)


def _recipe(cfg: TrainConfig, kwargs: dict, multitask: bool, data: _Data, init_note: str) -> dict:
    """What the weights file's training record says about how it was made."""
    recipe = {k: v for k, v in asdict(cfg).items() if k not in ("device", "workers", "resume", "out", "ood")}
    seg = f"(OHEM-CE top {L.OHEM_FRAC:.0%} + {L.SEG_ANCHOR} x CE)"
    recipe.update(arch={"name": cfg.model, "kwargs": kwargs},
                  loss=f"0.1 view CE + 0.1 smoothL1(lmk/16) + 10 {seg}" if multitask else seg, ohem_frac=L.OHEM_FRAC, optimizer="AdamW",
                  weight_decay=WEIGHT_DECAY, schedule="warmup 3% + cosine on max(step, time) progress",
                  augment="affine jitter rot±5 scale0.8-1.2 shift≤14 px; per-point template jitter N(0,3px) on 50%; "
                          "detect 20%; gain/gamma/contrast/noise/blur"
                          + (" (mild, after input_norm)" if cfg.input_norm != "none" else "")
                          + ("; raw-frame domain randomisation before input_norm" if data.domain else ""),
                  domain_random_settings=data.domain.to_dict() if data.domain else None,
                  val=data.val_note, init=init_note or None, n_train_seqs=len(data.train_seqs),
                  n_val_seqs=len(data.val_seqs), tcm_stats=data.tcm_stats)
    return recipe


def _loader(cfg: TrainConfig, ds, sampler, dev: torch.device):
    if cfg.workers > 0:
        cv2.setNumThreads(1)   # before fork: workers inherit a pool-free OpenCV (see _worker_init)
    kw = dict(batch_size=cfg.batch_size, sampler=sampler, drop_last=True, num_workers=cfg.workers,
              pin_memory=dev.type == "cuda", worker_init_fn=_worker_init)
    if cfg.workers > 0:   # persistent: forking 16 workers per epoch would cost more than a short epoch
        kw.update(prefetch_factor=4, persistent_workers=True)
    return torch.utils.data.DataLoader(ds, **kw)


class _Clock:
    """Training seconds across resumed runs, and schedule progress: max(step share, time share)."""

    def __init__(self, cfg: TrainConfig, state: dict, total_steps: int):
        self.budget, self.state, self.total = cfg.max_minutes * 60.0, state, total_steps
        self.elapsed0, self.t_run = state["elapsed"], time.time()

    def elapsed(self) -> float:
        return self.elapsed0 + time.time() - self.t_run

    def over(self) -> bool:
        return self.budget > 0 and self.elapsed() >= self.budget

    def progress(self) -> float:
        p = self.state["step"] / self.total
        return max(p, self.elapsed() / self.budget) if self.budget > 0 else p


def _epoch(cfg, model, opt, loader, dev, data: _Data, multitask, amp, state, clock: _Clock, prog, task, ema):
    """One pass over the loader (stops early at the budget); (samples, loss sum, part sums, ema, stopped)."""
    s_ep, loss_sum, part_sum, stop = 0, torch.zeros((), device=dev), {}, False
    for batch in loader:
        for g in opt.param_groups:
            g["lr"] = lr_at(clock.progress(), cfg.lr)
        loss, parts = compute_loss(model, batch, dev, multitask, data.flow is not None, amp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        state["step"] += 1
        s_ep += cfg.batch_size
        loss_sum += loss.detach()
        for k, v in parts.items():
            part_sum[k] = part_sum.get(k, 0) + v.detach()
        lv = float(loss.detach()) if state["step"] % 10 == 1 or dev.type == "cpu" else None
        if lv is not None:
            ema = lv if ema is None else 0.9 * ema + 0.1 * lv
        prog.update(task, advance=1, info=f"loss {ema or 0:.3f} best dice {max(state['best_dice'], 0):.3f}")
        if clock.over():
            stop = True
            break
    return s_ep, loss_sum, part_sum, ema, stop


def _validate(model, data: _Data, dev, multitask, amp) -> dict:
    figs = evaluate(model, data.val, dev, multitask, amp)
    for tag, arr in (("detect", data.val_det), ("jitter", data.val_jit)):
        if arr is not None:
            figs.update({k.replace("val_", f"val_{tag}_"): v for k, v in evaluate(model, arr, dev, multitask, amp).items()})
    return figs


def _keep_if_best(cfg, model, kwargs, data: _Data, recipe, rec: dict, state: dict, out: Path) -> None:
    """The epoch's weights as best.safetensors (self-describing) when its val Dice is the best so far."""
    if rec["val_dice"] <= state["best_dice"]:
        return
    state["best_dice"] = rec["val_dice"]
    state["best"] = rec
    raw = getattr(model, "_orig_mod", model)
    md = make_metadata(raw, cfg.model, kwargs, template=data.template, size=cfg.size, trained=True,
                       training={**recipe, "figures": rec, "template_source": "training landmarks"})
    md.input_norm = cfg.input_norm   # this run's, whatever the --init file used
    save_weights(raw, md, out / "best.safetensors")


def _fit_ood(cfg, out: Path) -> dict:
    """The written weights' out-of-domain reference (edge_tan.runtime.ood), fitted on this run's dataset as
    `edge-tan ood-fit WEIGHTS DATA` does (train split: the statistics; val+test: the thresholds).

    Why here: every TAN artifact is meant to carry its gate (issue 25), and new weights cannot reuse
    another's: an --init file's reference describes the features before fine-tuning. Without this, a
    model trained or fine-tuned here had no gate at all, and `track` accepted any image with it. A
    reference already fitted to these very weights (a resumed run with nothing new) is kept. A dataset
    the fit cannot use is reported, not fatal: the weights are still the run's result."""
    from ..ood_fit import ood_fit, summary
    from ..weights import load_weights
    best = out / "best.safetensors"
    if not cfg.ood:
        return {"status": "off"}
    if not best.is_file():
        return {"status": "no weights"}
    model, md = load_weights(best)
    if not hasattr(model, "with_features"):
        return {"status": "n/a", "why": f"model {md.model_name!r} has no pooled-feature output"}
    if md.ood and (md.ood.get("info") or {}).get("weights_sha256") == md.weights_sha256:
        return {"status": "current", **summary(md.ood)}
    try:
        return {"status": "fitted", **ood_fit(str(best), cfg.data_dir, str(best))}
    except EdgeTanError as e:
        return {"status": "failed", "why": first_line(e)}


def _ood_line(ood: dict) -> str:
    if ood["status"] in ("fitted", "current"):
        return (f"out-of-domain reference ({ood['status']}): frame threshold {ood['frame_threshold']:.2f}, clip "
                f"threshold {ood['clip_threshold']:.2f}")
    if ood["status"] == "failed":
        return f"no out-of-domain reference: {ood['why']}; fit one with `edge-tan ood-fit WEIGHTS DATA --out W`"
    return ""


def _summary(cfg, dev, recipe, state, stop, out: Path, t_start: float, ood: dict | None = None) -> dict:
    summary = {"recipe": recipe, "command": " ".join(sys.argv), "device": _device_name(dev),
               "torch": torch.__version__, "wall_s": round(time.time() - t_start, 1),
               "train_s": round(state["elapsed"], 1), "epochs_done": state["epoch"], "steps": state["step"],
               "stopped_by_budget": bool(stop and state["epoch"] < cfg.epochs), "best": state["best"],
               "best_val_dice": state["best_dice"], "weights": str(out / "best.safetensors"),
               "host": platform.node(), "cpus": os.cpu_count(), "workers": cfg.workers, "ood": ood or {"status": "off"}}
    write_text(out / "summary.json", json.dumps(summary, indent=1))
    from rich.console import Console
    b = state["best"] or {}
    Console(stderr=True).print(
        f"[bold]{cfg.model}[/]: {state['epoch']} epochs, {state['step']} steps in {summary['train_s']:.0f} s on "
        f"{summary['device']}; best val Dice {state['best_dice']:.4f}"
        + (f", landmark err {b['val_landmark_px']:.2f} px, view acc {b['val_view_acc']:.3f}" if "val_landmark_px" in b else "")
        + f" -> {out / 'best.safetensors'}")
    if line := _ood_line(summary["ood"]):
        Console(stderr=True).print(line, markup=False)
    return summary


def train(cfg: TrainConfig) -> dict:
    """Train per `cfg`; returns the final figures (also in RUN_DIR/summary.json)."""
    t_start = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.size % 32:
        raise EdgeTanError(f"--size must be a multiple of 32, got {cfg.size}")
    from edge_tan.runtime.intensity import input_normaliser
    input_normaliser(cfg.input_norm)   # unknown name -> one clear error before any work
    dev, amp = _setup_device(cfg)
    model, kwargs, init_md, init_note = _build(cfg)
    multitask = "landmarks" in model.outputs
    data = _data(cfg, model.warp_mode, init_md)
    model.to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=WEIGHT_DECAY)
    recipe = _recipe(cfg, kwargs, multitask, data, init_note)

    state = {"epoch": 0, "step": 0, "elapsed": 0.0, "best_dice": -1.0, "best": {}}
    ckpt = out / "last.ckpt"
    if cfg.resume and ckpt.is_file():
        state = _load_ckpt(ckpt, model, opt)
        for g in opt.param_groups:
            g["lr"] = lr_at(state["step"] / data.total_steps, cfg.lr)
    elif not cfg.resume and (out / "log.jsonl").exists():
        (out / "log.jsonl").unlink()
    clock = _Clock(cfg, state, data.total_steps)
    sampler = _EpochSampler(data.steps_per_epoch * cfg.batch_size)
    loader = _loader(cfg, data.ds, sampler, dev)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    model.train()
    stop, ema = False, None
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[info]}")]
    with Progress(*cols, transient=False, disable=not sys.stderr.isatty() and os.environ.get("EDGE_TAN_PROGRESS") != "1") as prog:
        while state["epoch"] < cfg.epochs and not stop:
            ep = state["epoch"]
            task = prog.add_task(f"epoch {ep + 1}/{cfg.epochs}", total=data.steps_per_epoch, info="")
            t_ep = time.time()
            sampler.epoch = ep
            s_ep, loss_sum, part_sum, ema, stop = _epoch(cfg, model, opt, loader, dev, data, multitask, amp, state,
                                                         clock, prog, task, ema)
            ep_time = time.time() - t_ep
            figs = _validate(model, data, dev, multitask, amp)
            state["epoch"] = ep + 1
            state["elapsed"] = clock.elapsed()
            n_st = max(s_ep // cfg.batch_size, 1)
            rec = {"epoch": ep + 1, "step": state["step"], "loss": float(loss_sum) / n_st,
                   **{f"loss_{k}": float(v) / n_st for k, v in part_sum.items()}, "lr": opt.param_groups[0]["lr"],
                   "samples_per_s": s_ep / max(ep_time, 1e-9), "elapsed_s": round(state["elapsed"], 1), **figs}
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            prog.update(task, info=f"loss {rec['loss']:.3f} val dice {figs['val_dice']:.3f}")
            _keep_if_best(cfg, model, kwargs, data, recipe, rec, state, out)
            _save_ckpt(ckpt, model, opt, state)
            stop = stop or clock.over()
    return _summary(cfg, dev, recipe, state, stop, out, t_start, _fit_ood(cfg, out))


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()})"

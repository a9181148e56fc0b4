"""`edge-tan adapt WEIGHTS CLIPS --out NEW`: adapt a trained TAN to a site's clips (unlabelled, or
with the site's ED/ES tracings).

Phases (issue 12), each given a share of the time budget (a phase that ends early leaves its time to
the next; deadlines are cumulative), each saved in the work folder so a re-run continues:

  look     track the site's clips with the model as it is, keep the windows it feeds the network
           (windows.py); re-estimate BatchNorm statistics on them (bn.py, phase "bn") and measure the
           site's style (style.py)
  phantom  fine-tune on labelled phantom windows restyled to the site (style.py + finetune.py)
  label    track every clip forward and backward; keep consistent, plausible, LK-coherent frames as
           pseudo-labels (pseudo.py); with --tracings, first the traced frames become labels of the
           expert's area and the clip's pseudo-labels take the traced size (traced.py)
  self     fine-tune on the pseudo-labelled site frames mixed with restyled phantom (finetune.py)
  final    track again with the adapted network and re-estimate BatchNorm on what it now sees

The written weights keep the input file's architecture, template and metadata (every export target
works unchanged) and add `training["adaptation"]`: what the weights were adapted on (clip counts,
sha256 of every clip file, the skip report), settings, per-phase steps and seconds; never an image.
The work folder holds the site's scratch (phantom data, pseudo-labelled frames, checkpoints): it
stays on the site's machine.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from edge_tan.runtime.atomic import check_can_create, ensure_dir, write_text
from edge_tan.dataset import SPLITS, list_split, load_sequence, save_sequence
from edge_tan.runtime import VIEW_NAMES
from edge_tan.runtime.errors import EdgeTanError, UsageError
from edge_tan.runtime.hashing import file_sha256

from ..weights import load_weights, save_weights

SELECTABLE = ("bn", "phantom", "self")
SHARES = {"look": 0.12, "phantom": 0.28, "label": 0.17, "self": 0.28, "final": 0.15}
LOOK_TRACK_SHARE = 0.7     # of the look/final shares: tracking; the rest: the BatchNorm pass
STATE = "state.json"


@dataclass
class AdaptConfig:
    weights: str
    clips: str
    out: str
    minutes: float = 30.0
    work: str = ""
    seed: int = 0
    # the separate phantom fine-tune is opt-in: on the stand-in site bn,self beat bn,phantom,self
    # (closed-loop Dice in record docs/results/2026-12-02-adapt); self-training batches still mix in
    # site-styled phantom windows
    phases: str = "bn,self"
    max_frames: int = 32        # frames kept per clip (the first ones, after the stride)
    frame_stride: int = 2       # every 2nd frame: 32 frames then span ~1.3 s (a beat) of a 50 fps clip
    bn_windows: int = 512       # site windows per BatchNorm re-estimation
    phantom: str = ""           # labelled phantom dataset; default: generate phantom_n clips in WORK
    phantom_n: int = 8
    batch_size: int = 8
    lr: float = 1e-4
    site_share: float = 0.5     # share of a self-training batch taken from the pseudo-labels
    threads: int = 0
    window_pairs: int = 2       # self-training: site frames per batch cut by two jittered windows that must
                                # agree (equivariance.py: the network learns to correct its window on the site)
    view: str = ""              # the view every site clip shows, when the site knows it (pseudo-labels and the
                                # final view-head re-fit take it; else each clip's pseudo-labels carry their own)
    tracings: str = ""          # the site's expert tracings (traced-areas CSV): area-matched labels (traced.py)
    traced_share: float = 0.5   # share of a batch's site samples taken from the traced labels, when there are any


def _fail_weights(path: str, why: str) -> EdgeTanError:
    return EdgeTanError(f"{path}: not a TAN weights file to adapt ({why})")


def load_tan(path: str):
    """(model, metadata) of a TAN-family safetensors file, or one clear error."""
    p = Path(path)
    if not p.is_file():
        raise EdgeTanError(f"weights file not found: {p}")
    try:
        model, md = load_weights(p)
    except EdgeTanError as e:
        raise _fail_weights(path, str(e).replace(f"{p}: ", "")) from None
    except Exception as e:
        raise _fail_weights(path, f"{type(e).__name__}: {e}") from None
    if not md.has_landmarks or md.warp_mode != "affine":
        raise _fail_weights(path, f"model {md.model_name!r} is not a TAN (needs the landmark head and the "
                                  "affine warp)")
    return model, md


def _check(cfg: AdaptConfig) -> list[str]:
    if not cfg.minutes or cfg.minutes <= 0 or not np.isfinite(cfg.minutes):
        raise UsageError(f"--minutes must be > 0 (the time budget), got {cfg.minutes}")
    sel = [s.strip() for s in cfg.phases.split(",") if s.strip()]
    bad = [s for s in sel if s not in SELECTABLE]
    if bad or not sel:
        raise UsageError(f"--phases must be a comma list of {', '.join(SELECTABLE)}, got {cfg.phases!r}")
    if not str(cfg.out).endswith(".safetensors"):
        raise UsageError(f"--out must name a .safetensors file, got {cfg.out}")
    if Path(cfg.out).resolve() == Path(cfg.weights).resolve():
        raise UsageError("--out must differ from WEIGHTS (the input weights are never overwritten)")
    if cfg.view and cfg.view not in VIEW_NAMES:
        raise UsageError(f"--view must be one of {', '.join(VIEW_NAMES)}, got {cfg.view!r}")
    if cfg.tracings and "self" not in sel:
        raise UsageError("--tracings feeds the self phase: keep `self` in --phases")
    if not 0.0 <= cfg.traced_share <= 1.0:
        raise UsageError(f"--traced-share must be within 0..1, got {cfg.traced_share}")
    if cfg.max_frames < 4 or cfg.batch_size < 2 or cfg.bn_windows < 2 or cfg.frame_stride < 1:
        raise UsageError("--max-frames must be >= 4, frame stride >= 1, batch size >= 2, BN windows >= 2")
    plan = ["look"]
    if "phantom" in sel:
        plan.append("phantom")
    if "self" in sel:
        plan += ["label", "self"]
    if len(plan) > 1:
        plan.append("final")
    return plan


class Clock:
    """Budget bookkeeping across runs: seconds used so far (earlier runs + this one) and per-phase
    deadlines at the cumulative share of the budget (time.monotonic values)."""

    def __init__(self, budget_s: float, used_before: float, plan: list[str]):
        self.budget, self.before, self.t0 = budget_s, used_before, time.monotonic()
        tot = sum(SHARES[p] for p in plan)
        acc, self.ends = 0.0, {}
        for p in plan:
            acc += SHARES[p] / tot
            self.ends[p] = acc * budget_s

    def used(self) -> float:
        return self.before + time.monotonic() - self.t0

    def deadline(self, phase: str, frac: float = 1.0, start_used: float | None = None) -> float:
        """Monotonic time at which `phase` (or the first `frac` of what is left of it) must stop."""
        now_used = self.used() if start_used is None else start_used
        left = max(self.ends[phase] - now_used, 0.0)
        return time.monotonic() + frac * left

    def seconds_for(self, phase: str) -> float:
        return max(self.ends[phase] - self.used(), 0.0)


def _run_key(md, clips, cfg: AdaptConfig) -> str:
    """What a work folder belongs to: input weights, clip contents and the settings (not the budget)."""
    s = {k: v for k, v in asdict(cfg).items() if k not in ("minutes", "work", "out", "threads", "weights", "clips",
                                                           "tracings")}
    tr = file_sha256(cfg.tracings) if cfg.tracings else ""
    blob = json.dumps({"weights": md.weights_sha256, "clips": sorted(clips.sha256.values()), "settings": s,
                       "tracings": tr},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _console():
    from rich.console import Console
    return Console(stderr=True)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    show = sys.stderr.isatty() or os.environ.get("EDGE_TAN_PROGRESS") == "1"
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"), console=_console(), disable=not show, transient=False)


def _state_shares(results) -> dict:
    n = sum(len(r) for r in results if r)
    if not n:
        return {}
    return {s: round(sum(x.state == s for r in results if r for x in r) / n, 4)
            for s in ("detect", "track", "redetect", "lost")}


class Adapter:
    def __init__(self, cfg: AdaptConfig):
        self.cfg = cfg
        self.plan = _check(cfg)
        self.con = _console()

    # ---------------------------------------------------------------- state
    def _load_state(self, key: str) -> dict:
        p = self.work / STATE
        if p.is_file():
            st = json.loads(p.read_text())
            if st.get("key") != key:
                raise EdgeTanError(f"{self.work} holds an adaptation of other weights, clips or settings; "
                                   "give another --work or delete that folder")
            return st
        return {"key": key, "done": {}, "used_s": 0.0}

    def _save_state(self) -> None:
        self.state["used_s"] = round(self.clock.used(), 2)
        write_text(self.work / STATE, json.dumps(self.state, indent=1))

    def _save_model(self, name: str) -> None:
        save_weights(self.model, copy.deepcopy(self.md), self.work / f"{name}.safetensors")

    def _load_model(self, name: str) -> None:
        self.model, _ = load_weights(self.work / f"{name}.safetensors")

    def _read_tracings(self) -> dict:
        """{clip key: Traced with areas} for the clips found; one clear error when the file cannot serve."""
        if not self.cfg.tracings:
            return {}
        from edge_tan.reports import clip_key, read_tracings
        tr = {k: v for k, v in read_tracings(self.cfg.tracings).items() if v.ed_area is not None}
        if not tr:
            raise EdgeTanError(f"{self.cfg.tracings}: no traced areas (needs FileName, ED_frame, ES_frame, ED_area_px, "
                               "ES_area_px)")
        n = sum(clip_key(f) in tr for f in self.clips.files)
        if not n:
            raise EdgeTanError(f"{self.cfg.tracings}: none of its {len(tr)} clip names matches a clip under {self.cfg.clips}")
        self.con.print(f"adapt: expert tracings for {n} of {len(self.clips.files)} clips ({Path(self.cfg.tracings).name})")
        return tr

    # ---------------------------------------------------------------- phases
    def _frames(self) -> int:
        return int(sum(s.n_frames for s in self.clips.seqs))

    def _order(self, phase: str) -> list[int]:
        """Clips in a seeded order of their own per phase: when the budget stops a tracking phase early,
        each phase has still seen a spread of clips, and different ones."""
        return list(np.random.default_rng([self.cfg.seed, len(phase), ord(phase[0])]).permutation(len(self.clips.seqs)))

    def _track(self, phase: str, desc: str, record: bool = False):
        """Track clips (in this phase's order) until the phase's tracking deadline; (results, windows)."""
        from .windows import RecordingRunner, fast_runner, track_all
        runner = fast_runner(self.model, self.md, self.work / f"{phase}.onnx", self._frames())
        rec = RecordingRunner(runner) if record else None
        seqs = [self.clips.seqs[i] for i in self._order(phase)]
        with _progress() as prog:
            task = prog.add_task(desc, total=len(seqs), info="")
            res = track_all(rec or runner, seqs, self.clock.deadline(phase, LOOK_TRACK_SHARE),
                            progress=lambda: prog.update(task, advance=1))
        order = self._order(phase)
        self._window_clips = [order[k] for k in rec.owners] if rec else []   # clip index of each window
        return res, (rec.windows if rec else None)

    def _bn(self, phase: str, windows: list) -> dict:
        from .bn import reestimate_bn
        from .windows import sample_windows
        w = sample_windows(windows, self.cfg.bn_windows, self.cfg.seed)
        with _progress() as prog:
            task = prog.add_task(f"{phase}: BatchNorm statistics", total=len(w), info="")
            return reestimate_bn(self.model, w, self.md, deadline=self.clock.deadline(phase),
                                 progress=lambda n: prog.update(task, advance=n))

    def phase_look(self) -> dict:
        from .style import build_style
        from .windows import sample_windows
        res, windows = self._track("look", "look: tracking the site's clips", record=True)
        info = {"clips_tracked": sum(r is not None for r in res), "windows_seen": len(windows),
                "tracker_states_before": _state_shares(res)}
        build_style(sample_windows(windows, 1024, self.cfg.seed + 1), seed=self.cfg.seed).save(self.work / "style.npz")
        if "bn" in self.sel:
            info["bn"] = self._bn("look", windows)
        return info

    def _phantom_seqs(self) -> tuple[list, str]:
        src = Path(self.cfg.phantom) if self.cfg.phantom else self.work / "phantom"
        if not self.cfg.phantom and not (src / "manifest.json").is_file():
            from edge_tan.synth.generate import generate_dataset
            self.con.print(f"phantom: generating {self.cfg.phantom_n} labelled phantom clips in {src}")
            generate_dataset(src, n=self.cfg.phantom_n, seed=10_000 + self.cfg.seed, workers=1)
        paths = [p for s in SPLITS for p in list_split(src, s)]
        seqs = [load_sequence(p) for p in paths]
        seqs = [s for s in seqs if s.masks is not None and s.labeled.any()]
        if not seqs:
            raise EdgeTanError(f"{src}: no labelled sequences for the phantom fine-tune")
        desc = str(self.cfg.phantom) if self.cfg.phantom else f"edge-tan synth --n {self.cfg.phantom_n} --seed {10_000 + self.cfg.seed}"
        return seqs, desc

    def _samples(self, seqs, domain: bool, seed: int):
        from ..train.domain import DomainConfig
        from ..train.samples import WarpedSamples
        return WarpedSamples(seqs, self.md.template_array, self.md.window, self.md.warp_mode, length=1 << 40,
                             seed=seed, input_norm=self.md.input_norm, domain=DomainConfig() if domain else None)

    def _finetune(self, phase: str, site_seqs: list | None, traced_seqs: list | None = None) -> dict:
        from .finetune import MixedBatches, finetune, load_phase_state
        from .style import SiteStyle
        phantom, desc = self._phantom_seqs()
        style = SiteStyle.load(self.work / "style.npz")
        site = self._samples(site_seqs, False, self.cfg.seed + 2) if site_seqs else None
        pairs = None
        if site_seqs and self.cfg.window_pairs > 0:
            from .equivariance import WindowPairs
            pairs = WindowPairs(site_seqs, self.md.template_array, self.md.window, self.md.warp_mode, self.md.input_norm,
                                self.cfg.seed + 5)
        traced = self._samples(traced_seqs, False, self.cfg.seed + 3) if traced_seqs else None
        batches = MixedBatches(self._samples(phantom, True, self.cfg.seed + 1), site, style, self.cfg.batch_size,
                               self.cfg.site_share, self.cfg.seed, pairs=pairs, n_pairs=self.cfg.window_pairs,
                               traced=traced, traced_share=self.cfg.traced_share)
        secs = self.clock.seconds_for(phase)
        ckpt = self.work / f"{phase}.ckpt"
        total = load_phase_state(ckpt).get("elapsed", 0.0) + secs   # this phase's seconds across runs
        with _progress() as prog:
            task = prog.add_task(f"{phase}: fine-tuning", total=None, info="")
            rep = finetune(self.model, batches, ckpt, total, self.cfg.lr, template=self.md.template_array,
                           progress=lambda s: prog.update(task, completed=s["step"], info=f"loss {s['loss_ema']:.3f}"))
        rep.update(phantom=desc, phantom_clips=len(phantom), site_clips=len(site_seqs or []),
                   site_frames=int(sum(s.n_frames for s in site_seqs or [])), style=style.describe())
        if traced_seqs:
            rep.update(traced_clips=len(traced_seqs), traced_frames=int(sum(s.n_frames for s in traced_seqs)))
        return rep

    def phase_phantom(self) -> dict:
        return self._finetune("phantom", None)

    def phase_label(self) -> dict:
        from collections import Counter

        from .pseudo import PseudoConfig, filter_clip
        from .traced import area_matched
        from edge_tan.runtime import geometry as geo
        from .windows import fast_runner, track_all
        runner = fast_runner(self.model, self.md, self.work / "label.onnx", 2 * self._frames())
        pdir = self.work / "pseudo"
        pdir.mkdir(exist_ok=True)
        for p in pdir.glob("*.npz"):
            p.unlink()
        sign = float(np.sign(geo.triangle_area(self.md.template_array)))
        why, kept_clips, kept_frames, cfg, fwd = Counter(), 0, 0, PseudoConfig(), []
        deadline = self.clock.deadline("label")
        traced, area_maps = self._traced_labels(runner, deadline) if self.tracings else (None, {})
        rescaled = 0
        order = self._order("label")
        with _progress() as prog:
            task = prog.add_task("label: forward + backward tracking", total=len(order), info="")
            for i in order:
                if fwd and time.monotonic() >= deadline:
                    why["clip not reached in time"] += 1
                    continue
                s = self.clips.seqs[i]
                f = track_all(runner, [s])[0]
                b = track_all(runner, [s], reverse=True)[0]
                fwd.append(f)
                ps, w = filter_clip(s, f, b, sign, cfg, self.cfg.view)
                why.update(w)
                if ps is not None and area_maps.get(i) is not None:
                    fit = area_maps[i]
                    ps.masks = np.stack([area_matched(m, fit(m.sum())) for m in ps.masks])
                    rescaled += ps.n_frames
                if ps is not None:
                    save_sequence(ps, pdir / f"{i:05d}.npz")
                    kept_clips += 1
                    kept_frames += ps.n_frames
                prog.update(task, advance=1, info=f"{kept_frames} frames kept")
        seen = sum(len(f) for f in fwd if f)
        out = {"clips_with_labels": kept_clips, "frames_kept": kept_frames, "frames_seen": seen,
               "kept_share": round(why.get("kept", 0) / max(seen, 1), 4),
               "reasons": dict(why), "filter": cfg.to_dict(),
               "tracker_states": _state_shares(fwd)}
        if traced is not None:
            out["traced"] = {**traced, "pseudo_frames_rescaled": rescaled}
        return out

    def _traced_labels(self, runner, deadline: float) -> tuple[dict, dict]:
        """Area-matched labels at the site's traced frames (traced.py), saved in WORK/traced; first in
        the label phase because they are the labels the site vouches for. Returns (report, {clip index:
        area map for that clip's pseudo-labels})."""
        from collections import Counter

        from edge_tan.io.read import read_video
        from edge_tan.reports import clip_key
        from edge_tan.runtime.tracker import Tracker, TrackerConfig

        from .traced import HALF, LEAD, area_map, traced_labels
        tdir = self.work / "traced"
        tdir.mkdir(exist_ok=True)
        for p in tdir.glob("*.npz"):
            p.unlink()
        todo = [(i, self.tracings[clip_key(f)]) for i, f in enumerate(self.clips.files) if clip_key(f) in self.tracings]
        why, clips, frames, maps = Counter(), 0, 0, {}
        with _progress() as prog:
            task = prog.add_task("label: traced frames", total=len(todo), info="")
            for i, tr in todo:
                if clips and time.monotonic() >= deadline:
                    why["clip not reached in time"] += 1
                    continue
                seq = read_video(self.clips.root / self.clips.files[i])
                ps, w = traced_labels(seq, tr, lambda fr: Tracker(runner, TrackerConfig()).track(fr), self.cfg.view)
                why.update(w)
                if ps is not None:
                    maps[i] = area_map(ps.extra["pairs"])
                    save_sequence(ps, tdir / f"{i:05d}.npz")
                    clips += 1
                    frames += ps.n_frames
                prog.update(task, advance=1, info=f"{frames} frames")
        return {"file": Path(self.cfg.tracings).name, "sha256": file_sha256(self.cfg.tracings),
                "clips_in_file": len(self.tracings), "clips_matched": len(todo), "clips_with_labels": clips,
                "frames": frames, "lead_frames": LEAD, "neighbours": HALF, "reasons": dict(why)}, maps

    def phase_self(self) -> dict:
        site = [load_sequence(p) for p in sorted((self.work / "pseudo").glob("*.npz"))]
        traced = [load_sequence(p) for p in sorted((self.work / "traced").glob("*.npz"))]
        if not site and not traced:
            self.con.print("self: no frame passed the pseudo-label filters; self-training skipped")
            return {"skipped": "no pseudo-labels kept"}
        return self._finetune("self", site or None, traced or None)

    def phase_final(self) -> dict:
        res, windows = self._track("final", "final: tracking with the adapted network", record=True)
        info = {"clips_tracked": sum(r is not None for r in res), "windows_seen": len(windows),
                "tracker_states_after": _state_shares(res), "bn": self._bn("final", windows)}
        if windows:
            info["view_refit"] = self._refit_view(windows)
        return info

    def _clip_views(self) -> dict[int, int]:
        """{clip index: view index} for each clip whose pseudo-labels carry a view (pseudo.py: both
        tracking passes agreed on nearly every frame); `--view` gives every clip the site's view."""
        if self.cfg.view:
            return {i: VIEW_NAMES.index(self.cfg.view) for i in range(len(self.clips.seqs))}
        out = {}
        for p in sorted((self.work / "pseudo").glob("*.npz")):
            with np.load(p) as z:
                v = str(z["view"])
            if v in VIEW_NAMES:
                out[int(p.stem)] = VIEW_NAMES.index(v)
        return out

    def _refit_view(self, windows: list) -> dict:
        """The view head re-fitted on the features the final BatchNorm pass left (view_refit.py): the
        site's tracked windows labelled with their clip's view (`--view`, else the view its pseudo-labels
        carry; windows of clips without one are left out), as many site-styled phantom windows with theirs.
        Without `--view`, skipped with fewer than MIN_VIEW_CLIPS clips of known view."""
        from collections import Counter

        from .style import SiteStyle, stylise
        from .view_refit import MIN_VIEW_CLIPS, labelled_windows, refit_view_head
        views_of = self._clip_views()
        seen = set(self._window_clips)
        clips = Counter(VIEW_NAMES[v] for i, v in views_of.items() if i in seen)
        source = "--view" if self.cfg.view else "pseudo-label clip views"
        if not self.cfg.view and sum(clips.values()) < MIN_VIEW_CLIPS:   # the site's word needs no quorum
            return {"skipped": f"{sum(clips.values())} clips of known view (< {MIN_VIEW_CLIPS})", "labels": source}
        pick, site_views = labelled_windows(self._window_clips, views_of, self.cfg.bn_windows, self.cfg.seed + 11)
        site = np.stack([windows[k] for k in pick])
        phantom, _ = self._phantom_seqs()
        ds = self._samples(phantom, True, self.cfg.seed + 12)
        style = SiteStyle.load(self.work / "style.npz")
        rng = np.random.default_rng([self.cfg.seed, 12])
        items = [ds[i] for i in range(len(site))]
        ph = np.stack([stylise(it["image"][0], style, rng) for it in items])
        views = np.array([int(it["view"]) for it in items])
        return {**refit_view_head(self.model, site, site_views, ph, views, self.cfg.seed),
                "labels": source, "clips_per_view": dict(sorted(clips.items()))}

    # ---------------------------------------------------------------- main
    def run(self) -> dict:
        cfg = self.cfg
        t_wall = time.time()
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        self.sel = [s.strip() for s in cfg.phases.split(",") if s.strip()]
        self.model, self.md = load_tan(cfg.weights)
        src_md = copy.deepcopy(self.md)
        self.md.ood = {}   # the input's out-of-domain gate would refuse the site's frames while adapting to them
        self.work = Path(cfg.work) if cfg.work else Path(str(cfg.out) + ".work")
        check_can_create(Path(cfg.out).parent)   # one clear line when the path runs through a file
        from .clips import read_site_clips
        self.con.print(f"adapt: reading clips under {cfg.clips}")
        self.clips = read_site_clips(cfg.clips, cfg.max_frames, stride=cfg.frame_stride)
        self.tracings = self._read_tracings()
        ensure_dir(self.work, "adapt work")   # only once there is something to adapt on: a refusal leaves no folder
        for s in self.clips.skipped:
            self.con.print(f"[yellow]skipped[/] {s['file']}: {s['reason']}")
        self.con.print(f"adapt: {len(self.clips.seqs)} clips ({sum(s.n_frames for s in self.clips.seqs)} frames), "
                       f"{len(self.clips.skipped)} skipped; budget {cfg.minutes:g} min; phases {' -> '.join(self.plan)}")
        self.state = self._load_state(_run_key(self.md, self.clips, cfg))
        self.clock = Clock(cfg.minutes * 60.0, self.state["used_s"], self.plan)
        last = None
        for ph in self.plan:
            if ph in self.state["done"]:
                last = ph
                continue
            if last is not None:
                self._load_model(last)
            t = time.monotonic()
            info = getattr(self, f"phase_{ph}")()
            info["wall_s"] = round(time.monotonic() - t, 1)
            self._save_model(ph)
            self.state["done"][ph] = info
            self._save_state()
            last = ph
            self.con.print(f"[green]{ph}[/] done in {info['wall_s']:.0f} s (budget used {self.clock.used() / 60:.1f} "
                           f"of {cfg.minutes:g} min): {_brief(ph, info)}")
        self._load_model(last)
        from .ood import site_reference   # issue 25: the out-of-domain reference moves to the site
        src_md.ood = site_reference(self.model, self.md, self.clips.seqs, cfg.seed, cfg.max_frames, self.con.print)
        return self._write(src_md, t_wall)

    def _write(self, src_md, t_wall: float) -> dict:
        cfg = self.cfg
        md = copy.deepcopy(src_md)
        rec = {"from_weights_sha256": src_md.weights_sha256, "from_file": Path(cfg.weights).name,
               "clips": self.clips.record(), "phases": self.state["done"], "plan": self.plan,
               "settings": {k: v for k, v in asdict(cfg).items() if k not in ("weights", "clips", "out", "work")},
               "budget_min": cfg.minutes, "used_s": round(self.clock.used(), 1),
               "wall_s_last_run": round(time.time() - t_wall, 1), "command": " ".join(["edge-tan"] + sys.argv[1:]),
               "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__},
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        md.training = {**(src_md.training or {}), "adaptation": rec}
        half = _stored_fp16(cfg.weights)   # written the way the input was stored (the shipped model: fp16)
        sha = save_weights(self.model, md, cfg.out, half=half)
        self.con.print(f"adapt: wrote {cfg.out} (weights sha256 {sha[:12]}; {len(self.clips.seqs)} clips, "
                       f"{self.clock.used() / 60:.1f} min used of {cfg.minutes:g})")
        return rec


def _stored_fp16(path: str) -> bool:
    """Whether a safetensors file stores its floating tensors as fp16 (read from the JSON header)."""
    with open(path, "rb") as f:
        head = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    dtypes = {v.get("dtype") for k, v in head.items() if k != "__metadata__" and isinstance(v, dict)}
    return "F16" in dtypes and "F32" not in dtypes


def _brief_view(v: dict | None) -> str:
    if not v:
        return ""
    if "skipped" in v:
        return f"; view head kept ({v['skipped']})"
    a, b = v["held_out_accuracy_after"], v["held_out_accuracy_before"]
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    return (f"; view head re-fitted: held-out site windows {pct(b['site'])} -> {pct(a['site'])} right, "
            f"phantom {pct(b['phantom'])} -> {pct(a['phantom'])}")


def _brief(ph: str, info: dict) -> str:
    if ph in ("look", "final"):
        bn = info.get("bn") or {}
        st = info.get("tracker_states_before") or info.get("tracker_states_after") or {}
        return (f"{info['clips_tracked']} clips, {info['windows_seen']} windows; "
                + (f"BN on {bn.get('windows')} windows; " if bn else "")
                + f"redetect {st.get('redetect', 0):.1%}, lost {st.get('lost', 0):.1%}"
                + _brief_view(info.get("view_refit")))
    if ph == "label":
        return f"{info['frames_kept']} of {info['frames_seen']} frames kept in {info['clips_with_labels']} clips"
    if "skipped" in info:
        return info["skipped"]
    return f"{info['steps']} steps of {info['batch']}, loss {info['loss_first']} -> {info['loss_ema_last']}"


def adapt(cfg: AdaptConfig) -> dict:
    """Run (or continue) an adaptation; returns the record stored in the new weights."""
    return Adapter(cfg).run()

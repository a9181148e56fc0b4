"""One clip of an archive run: stream frames through a fresh Tracker, keep per-frame numbers (never
the masks), write the clip's `track` JSON and its table row. The same code runs in the local process
pool and in a Ray actor, so both give the same results.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from typing import Callable

import cv2
import numpy as np

from ..runtime.clinical import ClinicalCurves
from ..runtime.errors import EdgeTanError, one_line
from ..runtime.jsonsafe import json_number
from ..io.shortfall import mark_shortfall
from ..runtime.results import results_dict
from ..runtime.tracker import FrameResult, Tracker
from .sources import Clip
from .store import Store, content_sha256

_EMPTY = np.zeros((0, 0), np.uint8)


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C): abandon this clip, write nothing for it."""


class SlimFrame(FrameResult):
    """A FrameResult whose mask crop is kept PNG-compressed (~0.1-0.3 KB instead of the crop's pixels)
    and decoded only when read: QC reads the masks once at the end of a clip, so a clip of any length
    costs a few hundred bytes of mask per frame, not frames x crop size."""

    @property
    def mask_crop(self) -> np.ndarray:
        if self._png is None:
            return _EMPTY
        return cv2.imdecode(self._png, cv2.IMREAD_UNCHANGED).reshape(self._shape)

    @mask_crop.setter
    def mask_crop(self, m: np.ndarray) -> None:
        m = np.asarray(m, np.uint8)
        self._shape = m.shape
        self._area = int(cv2.countNonZero(m)) if m.size else 0
        self._png = cv2.imencode(".png", m)[1] if m.size else None

    @property
    def area_px(self) -> int:
        return self._area


def slim(r: FrameResult) -> SlimFrame:
    return SlimFrame(**{f.name: getattr(r, f.name) for f in dataclasses.fields(r)})


class SampledFrames:
    """`frames[i]` for the few frames QC samples, decoded again from the file in one pass that keeps
    only those (the clip itself is never held). Any other index is fetched by another pass."""

    def __init__(self, stream, n: int, want):
        self.stream, self.n, self.cache = stream, n, {}
        self._load(want)

    def _load(self, want) -> None:
        need = set(int(i) for i in want) - set(self.cache)
        if not need:
            return
        last = max(need)
        for i, f in enumerate(self.stream):
            if i in need:
                self.cache[i] = f
            if i >= last:
                break

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        if int(i) not in self.cache:
            self._load([i])
        return self.cache[int(i)]


def qc_samples(frames: list) -> list[int]:
    """The frames QC reads image contrast and pixel noise on (edge_tan.runtime.qc.clip_features: 8 spread over non-lost frames)."""
    ok = [i for i, r in enumerate(frames) if r.state != "lost"]
    if not ok:
        return []
    return [ok[j] for j in np.linspace(0, len(ok) - 1, min(8, len(ok))).round().astype(int)]


def _qc():
    """edge_tan.runtime.qc when this checkout has it (assess, mark_clinical), else None."""
    try:
        from ..runtime import qc
    except ImportError:
        return None
    return qc


def track_stream(runner, stream, stop: Callable[[], bool] = lambda: False) -> tuple[list[SlimFrame], dict, float]:
    """(slim per-frame results, clinical summary, tracking wall seconds) for one opened ClipStream."""
    tracker = Tracker(runner)               # one tracker per clip: no state crosses clips
    curves = ClinicalCurves()
    frames: list[SlimFrame] = []
    t0 = time.perf_counter()
    for f in stream:
        if stop():
            raise Interrupted()
        r = tracker.step(f)
        curves.add(r)
        frames.append(slim(r))
    wall = time.perf_counter() - t0
    return frames, curves.summary(stream.spacing_mm, stream.fps), wall


def clip_results(runner, stream, video: str, stop: Callable[[], bool] = lambda: False) -> dict:
    """The `track --json` body for one clip, computed as `edge-tan track` does, one frame at a time."""
    frames, clinical, wall = track_stream(runner, stream, stop)
    qc_mod = _qc()
    qc = None
    if qc_mod is not None:
        qc, frames = qc_mod.assess(frames, SampledFrames(stream, len(frames), qc_samples(frames)), stream.fps, clinical)
        qc = mark_shortfall(qc, stream.n_frames_hint, len(frames))   # a cut file is never reliable
        clinical = qc_mod.mark_clinical(clinical, qc)
    return results_dict(video, runner.backend, runner.metadata.to_dict(), frames, clinical, qc, wall_s=wall)


def _mode(values) -> tuple[str, float]:
    vals = [v for v in values if v]
    if not vals:
        return "", math.nan
    v, n = Counter(vals).most_common(1)[0]
    return v, n / len(vals)


def row_for(clip: Clip, sha: str, model: dict, data: dict | None, error: str = "", stream=None) -> dict:
    """The archive-table row of one clip (flat, JSON-safe; see table.COLUMNS)."""
    row = {"clip": clip.name, "path": clip.path, "content_sha256": sha, "backend": model["backend"],
           "precision": model["precision"], "model_hash": model["model_hash"], "model_key": model["model_key"],
           "ef_ref": None if math.isnan(clip.ef_ref) else clip.ef_ref, "error": error or None,
           "status": "error" if error else "ok"}
    if data is None:
        return row
    cl, st, tm = data["clinical"], data["states"], data["timing"]
    pf = data["per_frame"]
    view, share = _mode(r["view"] for r in pf)
    qc = data.get("qc") or {}
    reasons = qc.get("reasons") or []
    row.update(frames=data["frames"], fps=round(float(stream.fps), 3) if stream else None,
               spacing_mm=None if stream is None else json_number(stream.spacing_mm, 5),
               view=view or None, view_share=json_number(share, 4),
               ed_frames=" ".join(map(str, cl.get("ed_frames", []))), es_frames=" ".join(map(str, cl.get("es_frames", []))),
               ef_percent=cl.get("ef_percent"), ef_area_length_percent=cl.get("ef_area_length_percent"),
               ef_method=cl.get("method"), qc_score=qc.get("score"), qc_reliable=qc.get("reliable"),
               qc_reason=reasons[0] if reasons else None,
               ood_score=(qc.get("ood") or {}).get("score"), ood_threshold=(qc.get("ood") or {}).get("threshold"),
               **{f"share_{k}": v for k, v in st["state_share"].items()},
               median_ms=tm.get("median_ms"), p95_ms=tm.get("p95_ms"), tracker_fps=tm.get("fps"),
               wall_s=tm.get("wall_s"))
    if cl.get("ef_percent") is None:
        row["status"] = "no-lv"
    return row


class ClipWorker:
    """A loaded runner plus the output folder: `process(clip)` -> row (one per clip, errors included)."""

    def __init__(self, runner, model: dict, store: Store, stop: Callable[[], bool] = lambda: False,
                 retry_errors: bool = False):
        self.runner, self.model, self.store, self.stop = runner, model, store, stop
        self.retry_errors = retry_errors

    def process(self, clip: Clip) -> dict:
        try:
            sha = content_sha256(clip.path)
        except OSError as e:
            return dict(row_for(clip, "", self.model, None, f"cannot read: {e.strerror or e}"), skipped=False)
        done = self.store.done_row(clip.name, sha, self.model["model_key"])
        if done is not None and not (self.retry_errors and done.get("status") == "error"):
            # the reference EF is the source list's, not the clip's: a corrected manifest counts on resume
            ef_ref = None if math.isnan(clip.ef_ref) else clip.ef_ref
            if done.get("ef_ref") != ef_ref:
                done = dict(done, ef_ref=ef_ref)
                self.store.write_result(clip.name, sha, None, done)
            return dict(done, clip=clip.name, path=clip.path, skipped=True)
        data, stream = None, None
        try:
            from ..io.stream import open_clip
            stream = open_clip(clip.path)
            data = clip_results(self.runner, stream, clip.path, self.stop)
            data["batch"] = {"content_sha256": sha, "model_key": self.model["model_key"], "fps": stream.fps,
                             "spacing_mm": json_number(stream.spacing_mm)}
            error = ""
        except Interrupted:
            raise
        except EdgeTanError as e:
            error, data = str(e), None
        except Exception as e:                  # one clip's surprise must not end an archive run
            error, data = one_line(e), None
        row = row_for(clip, sha, self.model, data, error, stream)
        self.store.write_result(clip.name, sha, data, row)
        return dict(row, skipped=False)

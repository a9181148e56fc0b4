"""Tracking outputs in the exact shapes evaluation tools read: results.json, masks.npz, frames.csv."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from typing import Sequence as Seq

import numpy as np

from .atomic import atomic_path, write_text
from .jsonsafe import json_number
from .ood import ARRAYS as ood_arrays
from .tracker import STATES, FrameResult


def _num(x: float | None, nd: int = 4):
    """JSON-safe float (NaN/inf -> null), rounded to `nd` places."""
    return json_number(x, nd)


def _pts(a: np.ndarray | None, nd: int = 2):
    if a is None:
        return None
    return [[round(float(x), nd), round(float(y), nd)] for x, y in np.asarray(a).reshape(-1, 2)]


def timing_summary(results: Seq[FrameResult]) -> dict:
    lat = np.array([r.latency_ms for r in results], np.float64)
    if lat.size == 0:
        return {"median_ms": None, "p95_ms": None, "fps": None}
    med = float(np.median(lat))
    return {"median_ms": _num(med, 3), "p95_ms": _num(np.percentile(lat, 95), 3),
            "fps": _num(1000.0 / float(lat.mean()) if lat.mean() > 0 else None, 2),
            "stages_median_ms": {k: _num(np.median([r.timings.get(k, 0.0) for r in results]), 3)
                                 for k in ("pre", "infer", "post")}}


def reason_key(reason: str) -> str:
    """A frame's reason reduced to its first clause without numbers, so reasons can be counted."""
    return re.sub(r"\s*[-+]?\d[\d.]*\s*%?", "", reason.split(";")[0]).strip()


def state_summary(results: Seq[FrameResult], top: int = 5) -> dict:
    """Share of frames per tracker state and the most common reasons a first pass was rejected.

    Why: a tracker that re-detects on most frames still scores well on Dice but costs three network
    passes a frame; the shares make that visible in every report."""
    n = len(results)
    counts = Counter(r.state for r in results)
    reasons = Counter(reason_key(r.reason) for r in results if r.reason)
    return {"state_share": {s: (round(counts[s] / n, 4) if n else None) for s in STATES},
            "state_frames": {s: counts[s] for s in STATES},
            "top_reasons": [[k, v] for k, v in reasons.most_common(top)]}


def per_frame_record(r: FrameResult) -> dict:
    return {"index": r.index, "view": r.view or None, "view_prob": _num(r.view_prob), "view_frame": r.view_frame or None,
            "landmarks": _pts(r.landmarks), "contour": _pts(r.contour) or [], "area_px": r.area_px,
            "state": r.state, "reason": r.reason or None, "confidence": _num(r.confidence), "latency_ms": _num(r.latency_ms, 3),
            "ood_score": _num(getattr(r, "ood_score", float("nan")))}


def results_dict(video: str, backend: str, metadata: dict, results: Seq[FrameResult], clinical: dict,
                 qc: dict | None = None, wall_s: float | None = None) -> dict:
    """The results.json body; `qc` is edge_tan.runtime.qc.assess's block (clinical then carries `reliable`);
    `wall_s`, the tracking wall time, goes into "timing" when given."""
    if metadata.get("ood"):   # the reference's arrays (~200 kB) stay in the artifact; its thresholds and origin here
        metadata = {**metadata, "ood": {k: v for k, v in metadata["ood"].items() if k not in ood_arrays}}
    out = {"video": str(video), "frames": len(results), "backend": backend, "model": metadata,
           "per_frame": [per_frame_record(r) for r in results], "clinical": clinical,
           "states": state_summary(results), "timing": timing_summary(results)}
    if wall_s is not None:
        out["timing"]["wall_s"] = round(wall_s, 3)
    if qc is not None:
        out["qc"] = qc
    return out


def write_results_json(path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=1, allow_nan=False))


def stack_masks(results: Seq[FrameResult]) -> np.ndarray:
    if not results:
        return np.zeros((0, 0, 0), np.uint8)
    h, w = results[0].frame_hw
    out = np.zeros((len(results), h, w), np.uint8)
    for i, r in enumerate(results):
        r.paste_mask(out[i])
    return out


def write_masks_npz(path, masks: np.ndarray) -> None:
    """masks.npz of (T, H, W) uint8 masks (`stack_masks(results)`)."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, masks=masks)


def write_csv(path, results: Seq[FrameResult], spacing_mm: float = float("nan")) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["index", "state", "view", "view_prob", "confidence", "area_px", "area_mm2", "apex_x", "apex_y",
                "annulus_left_x", "annulus_left_y", "annulus_right_x", "annulus_right_y", "latency_ms", "reason"])
    for r in results:
        lm = r.landmarks.reshape(-1).tolist() if r.landmarks is not None else [""] * 6
        area_mm2 = r.area_px * spacing_mm ** 2 if math.isfinite(spacing_mm) else ""
        w.writerow([r.index, r.state, r.view, _num(r.view_prob), _num(r.confidence), r.area_px,
                    _num(area_mm2, 2) if area_mm2 != "" else "", *[(_num(v, 2) if v != "" else "") for v in lm],
                    _num(r.latency_ms, 3), r.reason])
    write_text(path, buf.getvalue())

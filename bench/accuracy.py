"""Accuracy of a tracked clip against ground truth, and agreement of two tracked clips (closed loop).

Shared by `edge-tan parity` (backend vs torch reference) and `edge-tan bench` (model vs labels):
Dice on full-resolution masks, landmark distance in px, view agreement, and clinical outputs
(ED/ES frames, EF) so a backend that changes a diagnosis is visible even when Dice looks fine.
"""

from __future__ import annotations

import math

import numpy as np

from edge_tan.runtime.clinical import clip_clinical
from edge_tan.runtime.errors import one_line
from edge_tan.dataset import Sequence
from edge_tan.metrics import dice, landmark_errors
from edge_tan.runtime.tracker import FrameResult


def _nanmean(v) -> float | None:
    a = np.asarray(v, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def _nanmax(v) -> float | None:
    a = np.asarray(v, np.float64)
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else None


def gt_accuracy(results: list[FrameResult], seq: Sequence) -> dict:
    """Mean Dice (0..1) and landmark error (px) over the labelled frames; view accuracy when known."""
    out = {"frames": 0, "dice": None, "landmark_px": None, "view_acc": None}
    if seq.masks is None or seq.labeled is None:
        return out
    idx = [i for i in range(min(len(results), seq.n_frames)) if seq.labeled[i]]
    if not idx:
        return out
    buf = np.zeros(seq.frames.shape[1:], np.uint8)
    d, lm = [], []
    for i in idx:
        buf.fill(0)
        results[i].paste_mask(buf)
        d.append(dice(buf, seq.masks[i]))
        if seq.landmarks is not None and np.isfinite(seq.landmarks[i]).all():
            r = results[i].landmarks
            lm.append(float(np.mean(landmark_errors(r, seq.landmarks[i]))) if r is not None else math.nan)
    views = [r.view for r in results if r.view]
    out.update(frames=len(idx), dice=float(np.mean(d)), landmark_px=_nanmean(lm) if lm else None,
               landmark_missing=int(np.sum(~np.isfinite(lm))) if lm else 0,
               view_acc=float(np.mean([v == seq.view for v in views])) if seq.view and views else None)
    return out


def compare_closed(ref: list[FrameResult], test: list[FrameResult]) -> dict:
    """Per-frame agreement of two closed-loop runs over the same clip."""
    n = min(len(ref), len(test))
    if n == 0:
        return {"frames": 0, "dice_mean": None, "dice_min": None, "landmark_px_mean": None,
                "landmark_px_max": None, "state_agree": None, "view_agree": None}
    hw = ref[0].frame_hw
    a, b = np.zeros(hw, np.uint8), np.zeros(hw, np.uint8)
    d, lm, st, vw = [], [], [], []
    for r, t in zip(ref[:n], test[:n]):
        a.fill(0)
        b.fill(0)
        r.paste_mask(a)
        t.paste_mask(b)
        d.append(dice(a, b))
        if r.landmarks is not None and t.landmarks is not None:
            lm.append(float(np.max(landmark_errors(t.landmarks, r.landmarks))))
        elif (r.landmarks is None) != (t.landmarks is None):
            lm.append(math.inf)  # one lost the lock where the other kept it
        st.append(r.state == t.state)
        if r.view and t.view:
            vw.append(r.view == t.view)
    finite = [x for x in lm if math.isfinite(x)]
    return {"frames": n, "dice_mean": float(np.mean(d)), "dice_min": float(np.min(d)),
            "landmark_px_mean": _nanmean(finite), "landmark_px_max": _nanmax(finite),
            "landmark_lock_mismatch": int(sum(1 for x in lm if not math.isfinite(x))),
            "state_agree": float(np.mean(st)), "view_agree": float(np.mean(vw)) if vw else None}


# ---- clinical outputs -----------------------------------------------------------------------
def clinical(results: list[FrameResult], spacing_mm: float = math.nan, fps: float = 30.0) -> dict:
    """{'ed': [..], 'es': [..], 'ef': float|None, 'method'} from edge_tan.runtime.clinical.clip_clinical."""
    try:
        c = clip_clinical(results, spacing_mm=spacing_mm, fps=fps)
    except Exception as e:  # a clinical failure must not hide the parity numbers
        return {"ed": None, "es": None, "ef": None, "method": f"failed: {one_line(e)}"}
    return {"ed": c["ed_frames"], "es": c["es_frames"], "ef": c["ef_percent"], "method": c["method"]}


def compare_clinical(ref: dict, test: dict) -> dict:
    """ED/ES frame offsets (frames) and |ΔEF| (points)."""
    def off(a, b):
        if not a or not b or len(a) != len(b):
            return None if not a and not b else math.inf
        return int(max(abs(x - y) for x, y in zip(a, b)))
    d_ef = abs(ref["ef"] - test["ef"]) if ref.get("ef") is not None and test.get("ef") is not None else None
    return {"ed_offset": off(ref.get("ed"), test.get("ed")), "es_offset": off(ref.get("es"), test.get("es")),
            "ef_ref": ref.get("ef"), "ef": test.get("ef"), "ef_abs_diff": d_ef}

"""Accuracy of a tracked clip against ground truth, and agreement of two tracked clips (closed loop).

Shared by `edge-tan parity` (backend vs torch reference) and `edge-tan bench` (model vs labels):
Dice on full-resolution masks, landmark distance in px, view agreement, and clinical outputs
(ED/ES frames, EF) so a backend that changes a diagnosis is visible even when Dice looks fine.
"""

from __future__ import annotations

import math

import numpy as np

from edge_tan.dataset import Sequence
from edge_tan.metrics import dice, landmark_errors
from edge_tan.tracker import FrameResult


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
def _area_clinical(results: list[FrameResult], spacing_mm: float) -> dict:
    """Fallback when edge_tan.clinical is absent: ED = largest LV area, ES = smallest, single-plane
    area-length EF (V = 8 A^2 / (3 pi L), L = apex to annulus midpoint)."""
    areas = np.array([r.area_px for r in results], np.float64)
    vols = []
    for r in results:
        if r.landmarks is None or r.area_px == 0:
            vols.append(math.nan)
            continue
        lm = np.asarray(r.landmarks, np.float64)
        L = float(np.linalg.norm(lm[0] - (lm[1] + lm[2]) / 2))
        vols.append(8 * r.area_px ** 2 / (3 * math.pi * L) if L > 0 else math.nan)
    v = np.asarray(vols)
    if not np.isfinite(v).any() or not (areas > 0).any():
        return {"ed": None, "es": None, "ef": None, "method": "area-length (fallback)"}
    ed, es = int(np.nanargmax(v)), int(np.nanargmin(v))
    ef = 100.0 * (v[ed] - v[es]) / v[ed] if v[ed] > 0 else math.nan
    return {"ed": [ed], "es": [es], "ef": float(ef) if math.isfinite(ef) else None, "method": "area-length (fallback)"}


def _as_index_list(x) -> list[int] | None:
    if x is None:
        return None
    if isinstance(x, (int, np.integer)):
        return [int(x)]
    try:
        return [int(i) for i in x]
    except (TypeError, ValueError):
        return None


def clinical(results: list[FrameResult], spacing_mm: float = math.nan, fps: float = 30.0) -> dict:
    """{'ed': [..], 'es': [..], 'ef': float|None, 'method'} via edge_tan.clinical when it exists."""
    try:
        from edge_tan.clinical import clip_clinical
    except ImportError:
        return _area_clinical(results, spacing_mm)
    try:
        c = clip_clinical(results, spacing_mm=spacing_mm, fps=fps)
    except Exception as e:  # clinical failure must not hide the parity numbers
        out = _area_clinical(results, spacing_mm)
        out["note"] = f"edge_tan.clinical failed ({type(e).__name__}); area fallback used"
        return out
    ef = c.get("ef", c.get("ef_percent"))
    ef = float(ef) if isinstance(ef, (int, float)) and math.isfinite(float(ef)) else None
    return {"ed": _as_index_list(c.get("ed", c.get("ed_frames"))), "es": _as_index_list(c.get("es", c.get("es_frames"))),
            "ef": ef, "method": str(c.get("method", "edge_tan.clinical"))}


def compare_clinical(ref: dict, test: dict) -> dict:
    """ED/ES frame offsets (frames) and |ΔEF| (points)."""
    def off(a, b):
        if not a or not b or len(a) != len(b):
            return None if not a and not b else math.inf
        return int(max(abs(x - y) for x, y in zip(a, b)))
    d_ef = abs(ref["ef"] - test["ef"]) if ref.get("ef") is not None and test.get("ef") is not None else None
    return {"ed_offset": off(ref.get("ed"), test.get("ed")), "es_offset": off(ref.get("es"), test.get("es")),
            "ef_ref": ref.get("ef"), "ef": test.get("ef"), "ef_abs_diff": d_ef}

"""What `edge-tan parity` judges and how strictly: tolerances per precision and the check table.

Shared by the parity run (bench/parity.py) and the report renderer (bench/report.py), which draws one
column per check: kept apart from both so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from edge_tan.runtime.errors import UsageError


@dataclass(frozen=True)
class Tolerance:
    """None = reported but not judged."""
    open_dice: float | None          # mean window-mask Dice >=
    open_lm_px: float | None         # worst landmark distance (px, window) <=
    view_agree: float | None         # agreement on decisive frames >=
    closed_dice: float | None        # mean full-res Dice vs reference >=
    closed_lm_px: float | None       # mean landmark distance (px, frame) <=
    ed_es_frames: int | None         # ED/ES frame offset <=
    ef_points: float | None          # |ΔEF| (percentage points) <=
    max_drop: float | None           # Dice drop vs ground truth (points) <=


DEFAULT_TOLERANCES = {
    "fp32": Tolerance(0.999, 0.1, 1.0, 0.995, 0.5, 1, 1.0, None),
    "fp16": Tolerance(0.995, 0.5, 0.98, 0.98, 1.5, 1, 2.0, None),
    # INT8 shifts outputs by design, so its open-loop figures get loose bounds, not none: the shipped
    # model's own INT8 IR gave view agreement 0.991 and worst landmark 0.62 px (parity record
    # 2026-12-02); the previous model in the int8 slot gave 0.39 and 4.7 px and passed (issue 21)
    "int8": Tolerance(None, 2.0, 0.90, 0.90, None, None, None, 0.5),
}
DEFAULT_TOLERANCES["bf16"] = DEFAULT_TOLERANCES["fp32"]   # bf16 is offered as fp32 accuracy, judged so


def tolerances_for(precision: str, dice_tol: float | None = None, lm_tol: float | None = None,
                   max_drop: float | None = None) -> Tolerance:
    """Defaults per precision; --dice-tol sets both Dice minima, --lm-tol the open-loop landmark
    maximum, --max-drop the allowed Dice drop vs ground truth (and judges it at any precision)."""
    t = DEFAULT_TOLERANCES[precision]
    if dice_tol is not None:
        if not 0.0 <= dice_tol <= 1.0:
            raise UsageError(f"--dice-tol is a Dice in [0, 1], got {dice_tol}")
        t = replace(t, open_dice=dice_tol if t.open_dice is not None else None, closed_dice=dice_tol)
    if lm_tol is not None:
        if lm_tol < 0:
            raise UsageError(f"--lm-tol must be >= 0 px, got {lm_tol}")
        t = replace(t, open_lm_px=lm_tol)
    if max_drop is not None:
        if max_drop < 0:
            raise UsageError(f"--max-drop must be >= 0 Dice points, got {max_drop}")
        t = replace(t, max_drop=max_drop)
    return t


# check name -> (summary key, tolerance field, ">=" | "<=", label)
CHECKS = (
    ("open_dice", "open_dice_mean", "open_dice", ">=", "open-loop Dice"),
    ("open_landmarks", "open_lm_px_max", "open_lm_px", "<=", "open-loop landmarks px (max)"),
    ("view", "view_agree", "view_agree", ">=", "view agreement"),
    ("logits", "logit_seg_max_abs", None, "", "seg logit max |Δ|"),
    ("closed_dice", "closed_dice_mean", "closed_dice", ">=", "closed-loop Dice"),
    ("closed_landmarks", "closed_lm_px_mean", "closed_lm_px", "<=", "closed-loop landmarks px (mean)"),
    ("ed_es", "ed_es_offset", "ed_es_frames", "<=", "ED/ES offset (frames)"),
    ("ef", "ef_abs_diff", "ef_points", "<=", "|ΔEF| (points)"),
    ("gt_drop", "gt_dice_drop_points", "max_drop", "<=", "Dice drop vs GT (points)"),
)


def judge(summary: dict, tol: Tolerance) -> dict:
    """{check: {value, threshold, op, pass}}; pass None = informational or not measurable here."""
    out = {}
    for name, key, field, op, label in CHECKS:
        v = summary.get(key)
        thr = getattr(tol, field) if field else None
        ok = None
        if thr is not None and v is not None:
            ok = bool(v >= thr) if op == ">=" else bool(v <= thr)
        if name == "closed_landmarks" and thr is not None and summary.get("lock_mismatch_frames"):
            ok = False  # one backend lost the lock where the reference kept it (or vice versa)
        out[name] = {"label": label, "value": v, "threshold": thr, "op": op, "pass": ok}
    return out

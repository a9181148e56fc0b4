"""INT8 calibration data and NNCF post-training quantisation.

Calibrate on what the network really sees at run time: canonical windows warped with the *previous*
frame's landmarks (what the tracker feeds it, after the model's input_norm; GT landmarks stand in
for tracked ones), plus a few
letterbox windows (the detect pass that starts a track). Statistics from raw full frames would
mis-set the activation ranges. Accuracy-controlled mode reverts the layers that cost the most Dice
until the drop on validation windows is within `max_drop`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.geometry import affine_to_template, crop_affine, cut_window, letterbox_affine, warp_image
from edge_tan.runtime.intensity import input_normaliser


@dataclass
class CalibSet:
    """Network inputs (1,1,W,W) float32 and the matching GT window masks (W,W) uint8."""

    windows: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    kinds: list = field(default_factory=list)   # "track" | "letterbox"

    def __len__(self) -> int:
        return len(self.windows)

    def items(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(zip(self.windows, self.masks))


def normalise(window_u8: np.ndarray, md: ModelMetadata) -> np.ndarray:
    """uint8 window -> (1,1,W,W) float32 exactly as the tracker normalises it."""
    x = window_u8.astype(np.float32) * np.float32(md.input_scale)
    x = (x - np.float32(md.input_mean)) / np.float32(md.input_std)
    return x[None, None].astype(np.float32)


def window_affine(prev_landmarks: np.ndarray, md: ModelMetadata) -> np.ndarray:
    """The frame->window affine the tracker would use given the previous frame's landmarks."""
    if md.warp_mode == "affine":
        return affine_to_template(prev_landmarks, md.template_array)
    if md.warp_mode == "crop":
        return crop_affine(prev_landmarks, md.window, md.expand)
    raise ValueError("full-frame models use the letterbox window")


def dataset_windows(root: str | Path, md: ModelMetadata, split: str | None = "train", limit: int = 300,
                    letterbox_fraction: float = 0.1, seed: int = 0) -> CalibSet:
    """Up to `limit` calibration windows (+ GT masks) from an edge-tan dataset folder.

    Tracked windows: frame t warped by the GT landmarks of frame t-1 (both labelled). Letterbox
    windows: whole frames fitted into the window. Frames are sampled evenly across sequences.
    """
    from edge_tan.dataset import list_split, load_sequence

    paths = list_split(root, split)
    if not paths and split is not None:
        paths = list_split(root, None)
    if not paths:
        raise EdgeTanError(f"{root}: the dataset has no sequences to calibrate on")
    W = md.window
    track, boxed = [], []
    for p in paths:
        seq = load_sequence(p)
        lab = np.asarray(seq.labeled, bool)
        lms = seq.landmarks
        for t in range(seq.n_frames):
            if md.warp_mode != "none" and t > 0 and lms is not None and lab[t] and lab[t - 1] \
                    and np.isfinite(lms[t - 1]).all():
                try:
                    M = window_affine(lms[t - 1], md)
                except ValueError:
                    continue  # degenerate triangle
                track.append((seq, t, M))
            if lab[t]:
                boxed.append((seq, t, letterbox_affine(seq.frames.shape[1:], W)))
    rng = np.random.default_rng(seed)
    norm = input_normaliser(md.input_norm)   # the tracker's grey-frame step, before the warp
    if md.warp_mode == "none":
        n_box, n_track = min(limit, len(boxed)), 0
    else:
        n_box = min(len(boxed), max(1, int(round(limit * letterbox_fraction))))
        n_track = min(len(track), limit - n_box)
        n_box = min(len(boxed), limit - n_track)  # fill up with letterbox if few tracked windows
    out = CalibSet()
    for kind, pool, n in (("track", track, n_track), ("letterbox", boxed, n_box)):
        if n <= 0:
            continue
        idx = np.sort(rng.choice(len(pool), size=n, replace=False))
        for i in idx:
            seq, t, M = pool[i]
            out.windows.append(normalise(cut_window(norm(seq.frames[t]), M, W), md))   # as the tracker cuts it
            mask = seq.masks[t] if seq.masks is not None else np.zeros(seq.frames.shape[1:], np.uint8)
            out.masks.append(warp_image(mask, M, W, nearest=True))
            out.kinds.append(kind)
    if not out.windows:
        raise EdgeTanError(f"{root}: no labelled frames to build calibration windows from")
    return out


def dataset_fingerprint(root: str | Path) -> str:
    """Cheap content fingerprint for the artifact cache key: manifest + (name, size, mtime) of files."""
    from edge_tan.dataset import list_split

    root = Path(root)
    h = hashlib.sha256((root / "manifest.json").read_bytes() if (root / "manifest.json").is_file() else b"")
    for p in list_split(root, None):
        st = p.stat()
        h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


# ---- metrics --------------------------------------------------------------------------------
def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    a, b = pred > 0, gt > 0
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * np.logical_and(a, b).sum() / s)


def _seg_port(compiled):
    for o in compiled.outputs:
        if "seg" in o.get_names():
            return o
    return compiled.outputs[0]


def ov_mean_dice(compiled, items) -> float:
    """NNCF validation_fn: mean Dice of the compiled model's LV mask vs the GT window masks."""
    port = _seg_port(compiled)
    scores = []
    for x, m in items:
        seg = compiled(x)[port]
        scores.append(dice(seg[0, 1] > seg[0, 0], m))
    return float(np.mean(scores)) if scores else 0.0


def compare_outputs(ref: list[dict], test: list[dict], masks: list[np.ndarray] | None = None) -> dict:
    """How far a quantised model strays from fp32 on the same windows (per head)."""
    rep: dict = {"n": len(ref)}
    agree = [dice(t["seg"][0, 1] > t["seg"][0, 0], r["seg"][0, 1] > r["seg"][0, 0]) for r, t in zip(ref, test)]
    rep["seg_dice_vs_fp32"] = float(np.mean(agree))
    if masks is not None:
        rep["seg_dice_fp32"] = float(np.mean([dice(r["seg"][0, 1] > r["seg"][0, 0], m) for r, m in zip(ref, masks)]))
        rep["seg_dice_int8"] = float(np.mean([dice(t["seg"][0, 1] > t["seg"][0, 0], m) for t, m in zip(test, masks)]))
    if "landmarks" in ref[0]:
        d = np.abs(np.concatenate([t["landmarks"] - r["landmarks"] for r, t in zip(ref, test)]))
        rep["landmarks_abs_diff_px"] = {"mean": float(d.mean()), "max": float(d.max())}
    if "view" in ref[0]:
        same = [int(np.argmax(r["view"]) == np.argmax(t["view"])) for r, t in zip(ref, test)]
        rep["view_agreement"] = float(np.mean(same))
    return rep


# ---- quantisation ---------------------------------------------------------------------------
def _ignored_scope(keep_heads_fp32: bool):
    import nncf

    # The landmark/view heads are MatMuls on pooled features: negligible cost, and regression
    # outputs scaled to pixels are the most quantisation-sensitive part of the network.
    return nncf.IgnoredScope(types=["MatMul"], validate=False) if keep_heads_fp32 else None


def _quiet_nncf():
    """NNCF logs every skipped quantizer at INFO (dozens of lines per build); keep warnings only,
    unless EDGE_TAN_DEBUG is set."""
    import logging
    import os

    import nncf
    if not os.environ.get("EDGE_TAN_DEBUG"):
        nncf.set_log_level(logging.WARNING)


def quantize_ov(model, calib: CalibSet, validation: CalibSet | None = None, accuracy_control: bool = False,
                max_drop: float = 0.005, keep_heads_fp32: bool = True, subset_size: int = 300):
    """NNCF PTQ of an ov.Model (MIXED preset: symmetric weights, asymmetric activations).

    Returns (int8 ov.Model, report). With `accuracy_control` the validation windows + masks drive
    nncf.quantize_with_accuracy_control (absolute Dice drop <= max_drop)."""
    import nncf

    _quiet_nncf()
    if len(calib) == 0:
        raise EdgeTanError("INT8 calibration needs at least one window")
    cal_ds = nncf.Dataset(calib.items(), lambda item: item[0])
    kw = dict(preset=nncf.QuantizationPreset.MIXED, subset_size=min(subset_size, len(calib)),
              ignored_scope=_ignored_scope(keep_heads_fp32))
    report = {"calibration_windows": len(calib), "preset": "mixed", "keep_heads_fp32": keep_heads_fp32,
              "accuracy_control": bool(accuracy_control)}
    if accuracy_control:
        val = validation if validation is not None and len(validation) else calib
        val_ds = nncf.Dataset(val.items(), lambda item: item[0])
        q = nncf.quantize_with_accuracy_control(model, cal_ds, val_ds, validation_fn=ov_mean_dice,
                                                max_drop=float(max_drop), drop_type=nncf.DropType.ABSOLUTE, **kw)
        report.update(max_drop=float(max_drop), validation_windows=len(val))
    else:
        q = nncf.quantize(model, cal_ds, **kw)
    return q, report


def quantize_onnx(onnx_model, calib: CalibSet, keep_heads_fp32: bool = True, subset_size: int = 300):
    """NNCF PTQ of an onnx.ModelProto -> explicit Q/DQ ONNX (what TensorRT builds INT8 engines from)."""
    import nncf

    _quiet_nncf()
    cal_ds = nncf.Dataset(calib.items(), lambda item: {"image": item[0]})
    ign = None
    if keep_heads_fp32:
        ign = nncf.IgnoredScope(types=["MatMul", "Gemm"], validate=False)
    return nncf.quantize(onnx_model, cal_ds, preset=nncf.QuantizationPreset.MIXED,
                         subset_size=min(subset_size, len(calib)), ignored_scope=ign)


def report_json(report: dict) -> str:
    return json.dumps(report, sort_keys=True)

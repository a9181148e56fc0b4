"""A contact sheet so a person can judge realism and label quality at a glance."""

from __future__ import annotations

import cv2
import numpy as np

from ..dataset import Sequence

TILE = 200


def _tile(frame: np.ndarray, mask: np.ndarray | None, lms: np.ndarray | None, label: str) -> np.ndarray:
    h, w = frame.shape
    s = TILE / max(h, w)
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    img = cv2.cvtColor(cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
    if mask is not None:
        m = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
        cs, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, cs, -1, (0, 0, 255), 1)
    if lms is not None:
        for p, col in zip(lms, ((0, 255, 0), (255, 128, 0), (0, 255, 255))):
            cv2.circle(img, (int(round(p[0] * s)), int(round(p[1] * s))), 2, col, -1)
    out = np.zeros((TILE, TILE, 3), np.uint8)
    y, x = (TILE - nh) // 2, (TILE - nw) // 2
    out[y:y + nh, x:x + nw] = img
    cv2.putText(out, label, (3, TILE - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 220, 255), 1, cv2.LINE_AA)
    return out


def montage_rows(seq: Sequence) -> np.ndarray:
    """One row per sequence: raw mid frame, same with GT, ED with GT, ES with GT, raw ES."""
    T = seq.n_frames
    mid = T // 2
    ed, es = int(seq.ed[0]), int(seq.es[0])
    tiles = [
        _tile(seq.frames[mid], None, None, f"{seq.view} {seq.frames.shape[2]}x{seq.frames.shape[1]} t={mid}"),
        _tile(seq.frames[mid], seq.masks[mid], seq.landmarks[mid], "GT"),
        _tile(seq.frames[ed], seq.masks[ed], seq.landmarks[ed], f"ED t={ed}"),
        _tile(seq.frames[es], seq.masks[es], seq.landmarks[es], f"ES t={es} EF={seq.ef:.0f}%"),
        _tile(seq.frames[es], None, None, "ES raw"),
    ]
    return np.hstack(tiles)


def build_montage(rows: list[np.ndarray]) -> np.ndarray:
    return np.vstack(rows) if rows else np.zeros((TILE, TILE * 5, 3), np.uint8)

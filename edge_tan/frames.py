"""Frame normalisation: whatever the source gives (grey/BGR/BGRA, uint8/uint16/float) -> uint8 grey.

uint16 data is scaled by a bit depth fixed on the first frame of a clip, so brightness does not
flicker frame to frame the way a per-frame max would make it.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import EdgeTanError


def collapse_channels(f: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), BGR or BGRA -> (H, W) luminance, dtype kept (uint8/uint16/float32)."""
    if f.ndim == 2:
        return f
    if f.ndim != 3:
        raise EdgeTanError(f"frame must be (H, W) or (H, W, C), got shape {f.shape}")
    c = f.shape[2]
    if c == 1:
        return f[:, :, 0]
    if c not in (3, 4):
        raise EdgeTanError(f"frame has {c} channels; expected grey, BGR or BGRA")
    if f.dtype not in (np.uint8, np.uint16, np.float32):
        f = f.astype(np.float32)
    return cv2.cvtColor(f, cv2.COLOR_BGR2GRAY if c == 3 else cv2.COLOR_BGRA2GRAY)


class GrayConverter:
    """Stateful converter (remembers the uint16 bit depth of the clip)."""

    def __init__(self) -> None:
        self._u16_alpha: float | None = None

    def reset(self) -> None:
        self._u16_alpha = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if not isinstance(frame, np.ndarray) or frame.size == 0:
            raise EdgeTanError(f"frame must be a non-empty numpy array, got {type(frame).__name__}")
        f = collapse_channels(frame)
        if f.dtype == np.uint8:
            return f
        if f.dtype == np.uint16:
            if self._u16_alpha is None:
                bits = max(8, int(np.ceil(np.log2(float(f.max()) + 1.0))))
                self._u16_alpha = 255.0 / (2 ** bits - 1)
            return cv2.convertScaleAbs(f, alpha=self._u16_alpha)
        if np.issubdtype(f.dtype, np.floating):
            scale = 255.0 if float(np.nanmax(f)) <= 1.0 else 1.0
            return np.clip(np.nan_to_num(f) * scale, 0, 255).astype(np.uint8)
        raise EdgeTanError(f"frame dtype {f.dtype} not supported (use uint8, uint16 or float)")

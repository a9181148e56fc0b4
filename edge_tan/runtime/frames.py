"""Frame normalisation: whatever the source gives (grey/BGR/BGRA, uint8/uint16/float) -> uint8 grey.

One rule for data deeper than 8 bits, used by every reader and by the tracker: scale by the bit depth
the data uses (from its peak), never stretch min..max. A stream fixes the depth on its first frame
(`GrayConverter`), a whole clip read at once takes it from the whole clip (`to_uint8`), so brightness
does not flicker frame to frame the way a per-frame stretch would make it.
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


def bit_depth_scale(peak: float) -> float:
    """uint8 scale for data whose peak value is `peak`: 255 / (2**bits - 1), bits >= 8."""
    bits = max(8, int(np.ceil(np.log2(max(float(peak), 0.0) + 1.0))))
    return 255.0 / (2 ** bits - 1)


def to_uint8(a: np.ndarray, alpha: float | None = None) -> np.ndarray:
    """Grey pixel data -> uint8 by the bit-depth rule (alpha: a scale fixed earlier, e.g. on the first
    frame of a stream). Floats in [0, 1] are scaled by 255, other floats taken as grey levels."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(a)) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(a) * scale, 0, 255).astype(np.uint8)
    if not np.issubdtype(a.dtype, np.integer):
        raise EdgeTanError(f"frame dtype {a.dtype} not supported (use uint8, uint16 or float)")
    alpha = bit_depth_scale(a.max()) if alpha is None else alpha
    if a.dtype == np.uint16:
        return cv2.convertScaleAbs(a, alpha=alpha)
    return np.clip(np.rint(a.astype(np.float64) * alpha), 0, 255).astype(np.uint8)


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
        if f.dtype == np.uint8 or np.issubdtype(f.dtype, np.floating):
            return to_uint8(f)
        if self._u16_alpha is None and np.issubdtype(f.dtype, np.integer):
            self._u16_alpha = bit_depth_scale(f.max())
        return to_uint8(f, self._u16_alpha)

"""Input intensity normalisation: per-frame rank normalisation of the in-sector grey levels.

Why: a network trained on one scanner's (or a phantom's) grey levels fails on another's gain, gamma,
log compression and contrast. All of those are monotone grey-level curves, and the rank of a pixel
among the frame's pixels does not change under a monotone curve, so replacing each grey level by its
(mid-)rank makes the network input invariant to them. The near-black bins (the background outside
the sector, shadow) are left out of the ranking and stay 0, so the sector keeps its black surround.

numpy + OpenCV only: one subsampled calcHist + one 256-entry cv2.LUT per frame.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .errors import EdgeTanError

INPUT_NORMS = ("none", "equalize")
BACKGROUND_MAX = 2   # grey levels 0..2 are background: not ranked, mapped to 0
MIN_RANGE = 6        # in-sector 1..99 % grey-level spread below this: a blank/flat frame, mapped to 0


def equalize_lut(gray: np.ndarray, background_max: int = BACKGROUND_MAX) -> np.ndarray:
    """256-entry uint8 LUT: level v > background_max -> 1 + 254 * midrank(v), others -> 0.

    The mid-rank (pixels below v plus half of those at v) keeps the map centred when a curve merges
    or splits neighbouring levels, which is what makes it nearly exact under uint8 quantisation.
    """
    # ranks from a regular subsample of >= 64k pixels on large frames (every pixel on small ones): as
    # good an estimate, and the histogram would otherwise be the costlier half of the work
    step = max(1, int(np.sqrt(gray.size / 65536.0)))
    sub = gray[::step, ::step] if step > 1 else gray
    hist = cv2.calcHist([sub], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    hist[:background_max + 1] = 0.0
    total = hist.sum()
    lut = np.zeros(256, np.uint8)
    if total <= 0:
        return lut   # nothing in the sector: the frame stays black
    cdf = np.cumsum(hist)
    lo, hi = np.searchsorted(cdf, 0.01 * total), np.searchsorted(cdf, 0.99 * total)
    if hi - lo < MIN_RANGE:
        return lut   # (near-)flat frame: ranking would blow its noise up to full contrast; stays blank
    below = cdf - hist
    mid = (below + 0.5 * hist) / total
    lut[background_max + 1:] = np.rint(1.0 + 254.0 * mid[background_max + 1:]).astype(np.uint8)
    return lut


def equalize(gray: np.ndarray, background_max: int = BACKGROUND_MAX) -> np.ndarray:
    """Rank-normalised copy of a uint8 grey frame (background stays 0)."""
    if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2:
        raise EdgeTanError(f"equalize expects a 2-D uint8 frame, got {getattr(gray, 'dtype', type(gray))} "
                           f"shape {getattr(gray, 'shape', None)}")
    return cv2.LUT(gray, equalize_lut(gray, background_max))


def _identity(gray: np.ndarray) -> np.ndarray:
    return gray


def input_normaliser(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The grey-frame -> grey-frame step a model's `input_norm` names (applied before the warp)."""
    if name == "none":
        return _identity
    if name == "equalize":
        return equalize
    raise EdgeTanError(f"unknown input_norm {name!r} (known: {', '.join(INPUT_NORMS)})")


def neighbour_correlation(gray: np.ndarray) -> float:
    """Correlation of neighbouring pixels (mean of across and down), on a regular grid of pairs.

    Why: an image of anything -- echo, a phantom, a foreign scanner -- is smooth at the pixel scale
    (speckle spans pixels): real development frames read >= 0.84 at 112 px, the real DICOM fixture
    0.82 at 600 px, phantom frames >= 0.93; i.i.d. noise (a probe fault, static, a burst of garbage)
    reads ~0. Pairs are adjacent pixels at full resolution; on a large frame only every s-th pair
    (s = min(h, w) // 128) is taken, so the cost stays that of a ~128 px frame. Integer sums, so the
    native runtime (native/src/tracker.cpp) gets the same figure exactly.
    """
    g = np.asarray(gray)
    h, w = g.shape[:2]
    s = max(1, min(h, w) // 128)
    out = []
    for a, b in ((g[::s, 0:w - 1:s], g[::s, 1:w:s]), (g[0:h - 1:s, ::s], g[1:h:s, ::s])):
        a, b = a.astype(np.int64).ravel(), b.astype(np.int64).ravel()
        n = a.size
        if n < 2:
            out.append(0.0)
            continue
        sa, sb = int(a.sum()), int(b.sum())
        cab = float(int((a * b).sum()) * n - sa * sb)
        vaa = float(int((a * a).sum()) * n - sa * sa)
        vbb = float(int((b * b).sum()) * n - sb * sb)
        out.append(cab / np.sqrt(vaa * vbb) if vaa > 0 and vbb > 0 else 0.0)
    return float(0.5 * (out[0] + out[1]))

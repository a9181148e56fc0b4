"""TAN geometry: template, ROI, the 3-point affine into the 224x224 window, warp/unwarp, contours.

Conventions (used everywhere in edge-tan):
- points are float32 arrays (..., 2) of (x, y) pixel coordinates, pixel centres at integers;
- an affine `M` is a 2x3 float64 matrix mapping *frame* coordinates to *window* coordinates;
- landmarks are ordered apex, annulus_left, annulus_right (left/right in image coordinates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

WINDOW = 224


@dataclass(frozen=True)
class RoiExpand:
    """How far the landmark bounding box grows, as fractions of its width/height.

    The paper grows the ROI 50 % to the bottom and 50 % to the left (the LV sits top-right of the
    other chambers). Apex and annulus lie *on* the LV border, so the cavity bulges past their box
    at the free wall and above the apex: a small top/right margin keeps it inside the window.
    """

    left: float = 0.5
    bottom: float = 0.5
    top: float = 0.15
    right: float = 0.25

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RoiExpand":
        return cls(**{k: float(d[k]) for k in ("left", "bottom", "top", "right")})


def roi_box(landmarks: np.ndarray, expand: RoiExpand = RoiExpand()) -> np.ndarray:
    """Expanded ROI (x0, y0, x1, y1) around the 3 landmarks."""
    p = np.asarray(landmarks, np.float64).reshape(-1, 2)
    x0, y0 = p.min(0)
    x1, y1 = p.max(0)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    return np.array([x0 - expand.left * w, y0 - expand.top * h, x1 + expand.right * w, y1 + expand.bottom * h])


def box_affine(box: np.ndarray, size: int = WINDOW) -> np.ndarray:
    """Affine mapping the box corners onto the window corners (independent x/y scale)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = (size - 1) / max(x1 - x0, 1e-6), (size - 1) / max(y1 - y0, 1e-6)
    return np.array([[sx, 0.0, -sx * x0], [0.0, sy, -sy * y0]])


def build_template(landmarks: np.ndarray, size: int = WINDOW, expand: RoiExpand = RoiExpand()) -> np.ndarray:
    """Mean shape template in window coordinates from training landmarks (N, 3, 2).

    Each labelled frame's landmarks are mapped into the window by that frame's own expanded ROI,
    then averaged: the template encodes the typical relative position of apex and annulus.
    """
    lms = np.asarray(landmarks, np.float64).reshape(-1, 3, 2)
    if len(lms) == 0:
        raise ValueError("build_template needs at least one labelled frame")
    mapped = [transform_points(l, box_affine(roi_box(l, expand), size)) for l in lms]
    return np.mean(mapped, axis=0).astype(np.float32)


def triangle_area(points: np.ndarray) -> float:
    """Signed area of the landmark triangle (0 when degenerate)."""
    a, b, c = np.asarray(points, np.float64).reshape(3, 2)
    return 0.5 * float((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1]))


def affine_to_template(landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The exact 3-point affine taking the frame's landmarks onto the template (paper eq. 1)."""
    src = np.asarray(landmarks, np.float64).reshape(3, 2)
    if abs(triangle_area(src)) < 1.0:
        raise ValueError("degenerate landmark triangle: cannot define the TAN affine")
    A = np.hstack([src, np.ones((3, 1))])
    sol = np.linalg.solve(A, np.asarray(template, np.float64).reshape(3, 2))
    return sol.T.copy()


def letterbox_affine(frame_hw: tuple[int, int], size: int = WINDOW) -> np.ndarray:
    """Affine fitting the whole frame into the window, aspect kept (the un-warped detect pass)."""
    h, w = frame_hw
    s = (size - 1) / max(h - 1, w - 1, 1)
    tx = ((size - 1) - s * (w - 1)) / 2.0
    ty = ((size - 1) - s * (h - 1)) / 2.0
    return np.array([[s, 0.0, tx], [0.0, s, ty]])


def crop_affine(landmarks: np.ndarray, size: int = WINDOW, expand: RoiExpand = RoiExpand()) -> np.ndarray:
    """ROI propagation without shape normalisation (the paper's "Crop" variant): box, no rotation."""
    return box_affine(roi_box(landmarks, expand), size)


def invert_affine(M: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(M, np.float64))


def compose(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A ∘ B: apply B first, then A."""
    A3 = np.vstack([A, [0, 0, 1]])
    B3 = np.vstack([B, [0, 0, 1]])
    return (A3 @ B3)[:2]


def transform_points(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64)
    out = p @ np.asarray(M, np.float64)[:, :2].T + np.asarray(M, np.float64)[:, 2]
    return out.astype(np.float32)


def warp_image(image: np.ndarray, M: np.ndarray, size: int = WINDOW, nearest: bool = False) -> np.ndarray:
    """Frame -> window (paper eq. 2). Outside the frame is black, like outside an echo sector."""
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(image, np.asarray(M, np.float64), (size, size), flags=flags,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class WindowCut:
    """The tracker's frame -> window cut (bilinear, black outside the frame), the same bytes on every
    OpenCV version and CPU, so the native runtime (its own OpenCV) cuts the very same window.

    Why not cv2.warpAffine: since OpenCV 4.11 it interpolates in float32 (and a wheel may route it
    through IPP), while OpenCV <= 4.10 -- what Debian/Ubuntu and most firmware link -- uses 1/32 px
    fixed-point weights; the two differ by up to 5 grey levels on echo speckle, enough to move an INT8
    network's detect. This reproduces the fixed-point form exactly (inverse in float64, 10-bit row and
    column terms rounded half-even, 5-bit sub-pixel index) and lets cv2.remap's fixed-point path, which
    every OpenCV version computes alike, interpolate. Buffers are reused: one instance per tracker."""

    def __init__(self, size: int = WINDOW):
        self.size = size
        g = np.arange(size, dtype=np.float64) * 1024.0
        self._g = g
        self._x = np.empty((size, size), np.int32)
        self._y = np.empty((size, size), np.int32)
        self._t = np.empty((size, size), np.int32)
        self._xy = np.empty((size, size, 2), np.int16)
        self._a = np.empty((size, size), np.uint16)

    def maps(self, M: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """cv2.remap maps (CV_16SC2 source pixel, CV_16UC1 5+5-bit sub-pixel index) for window <- frame;
        None for a non-finite affine (nothing of the frame is in such a window)."""
        M = np.asarray(M, np.float64)
        if not np.isfinite(M).all():
            return None
        m = [float(v) for v in invert_affine(M).ravel()]   # window -> frame, as warpAffine inverts it
        g, X, Y, xy, a = self._g, self._x, self._y, self._xy, self._a
        # ×1024 is exact, so rint(m1·(y·1024) + m2·1024) == cvRound((m1·y + m2)·1024); +16 = half a 1/32 step
        for c, V, row, col in ((0, X, m[1] * g + m[2] * 1024.0, m[0] * g), (1, Y, m[4] * g + m[5] * 1024.0, m[3] * g)):
            r, k = np.rint(row).astype(np.int32) + 16, np.rint(col).astype(np.int32)
            np.add.outer(r, k, out=V)
            np.right_shift(V, 5, out=V)
            # V = r[y] + k[x] (then >> 5): its extremes are those of r and k, so saturate only where needed
            if (int(r.min()) + int(k.min())) >> 10 < -32768 or (int(r.max()) + int(k.max())) >> 10 > 32767:
                np.clip(np.right_shift(V, 5), -32768, 32767, out=self._t)
                xy[..., c] = self._t
            else:
                np.right_shift(V, 5, out=xy[..., c], casting="unsafe")
        np.bitwise_and(X, 31, out=X)
        np.bitwise_and(Y, 31, out=Y)
        np.left_shift(Y, 5, out=Y)
        np.bitwise_or(X, Y, out=a, casting="unsafe")
        return self._xy, self._a

    def __call__(self, image: np.ndarray, M: np.ndarray) -> np.ndarray:
        maps = self.maps(M)
        if maps is None:
            return np.zeros((self.size, self.size), np.uint8)
        xy, a = maps
        return cv2.remap(image, xy, a, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def cut_window(image: np.ndarray, M: np.ndarray, size: int = WINDOW) -> np.ndarray:
    """One window cut exactly as the tracker cuts it (WindowCut, fresh buffers)."""
    return WindowCut(size)(image, M)


def window_bbox_in_frame(M: np.ndarray, frame_hw: tuple[int, int], size: int = WINDOW) -> tuple[int, int, int, int] | None:
    """Integer (x0, y0, x1, y1) of the window's footprint in the frame, clipped; None if outside."""
    h, w = frame_hw
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    fp = transform_points(corners, invert_affine(M))
    x0, y0 = np.floor(fp.min(0)).astype(int)
    x1, y1 = np.ceil(fp.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def unwarp_scores(scores: np.ndarray, M: np.ndarray, frame_hw: tuple[int, int], out: np.ndarray | None = None,
                  size: int = WINDOW) -> np.ndarray:
    """Window score map (e.g. logit difference) back to the frame, bilinear (paper eq. 5).

    Only the window's footprint is resampled; the rest of `out` is filled with -inf-like -1e4.
    Resampling scores rather than a hard mask gives sub-pixel-smooth borders at no extra cost.
    """
    h, w = frame_hw
    if out is None:
        out = np.empty((h, w), np.float32)
    out.fill(-1e4)
    bb = window_bbox_in_frame(M, frame_hw, size)
    if bb is None:
        return out
    x0, y0, x1, y1 = bb
    # frame (x, y) -> window: M·[x, y, 1]; for the sub-image offset by (x0, y0) shift the translation.
    Ms = np.asarray(M, np.float64).copy()
    Ms[:, 2] += Ms[:, 0] * x0 + Ms[:, 1] * y0
    cv2.warpAffine(np.ascontiguousarray(scores, np.float32), Ms, (x1 - x0, y1 - y0), dst=out[y0:y1, x0:x1],
                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=-1e4)
    return out


def unwarp_mask(mask: np.ndarray, M: np.ndarray, frame_hw: tuple[int, int], size: int = WINDOW) -> np.ndarray:
    """Binary window mask back to the frame (uint8 {0,1}), via a smooth score so borders stay clean."""
    score = mask.astype(np.float32) - 0.5
    return (unwarp_scores(score, M, frame_hw, size=size) > 0).astype(np.uint8)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component of a binary mask (uint8 {0,1})."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 2:
        return m
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == keep).astype(np.uint8)


def extract_contour(mask: np.ndarray) -> np.ndarray:
    """Outer contour (K, 2) float32 of the largest region; empty (0, 2) if the mask is empty."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2), np.float32)
    c = max(contours, key=cv2.contourArea)
    return c.reshape(-1, 2).astype(np.float32)


def resample_contour(contour: np.ndarray, n: int) -> np.ndarray:
    """`n` points evenly spaced by arc length along a closed contour (TCM samples 20)."""
    c = np.asarray(contour, np.float64).reshape(-1, 2)
    if len(c) == 0:
        return np.zeros((0, 2), np.float32)
    if len(c) == 1:
        return np.repeat(c, n, 0).astype(np.float32)
    closed = np.vstack([c, c[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], n, endpoint=False)
    x = np.interp(t, s, closed[:, 0])
    y = np.interp(t, s, closed[:, 1])
    return np.stack([x, y], 1).astype(np.float32)


def contour_to_mask(points: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Fill a closed polygon into a uint8 {0,1} mask (sub-pixel accurate via 4-bit shift)."""
    m = np.zeros(frame_hw, np.uint8)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    if len(p) >= 3:
        cv2.fillPoly(m, [np.round(p * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m


def similarity_about(center: np.ndarray, angle_deg: float, scale: float, shift: np.ndarray) -> np.ndarray:
    """Rotation+scale about `center`, then translation: the paper's augmentation in window space."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    cx, cy = float(center[0]), float(center[1])
    return np.array([[c, -s, cx - c * cx + s * cy + shift[0]], [s, c, cy - s * cx - c * cy + shift[1]]])


def perturb_affine(M: np.ndarray, rng: np.random.Generator, size: int = WINDOW, max_rot: float = 5.0,
                   scale_range: tuple[float, float] = (0.8, 1.2), max_shift: float = 14.0) -> np.ndarray:
    """Jitter a window affine within the paper's ranges (rotation ±5°, scale 0.8–1.2, shift ≤ 14 px)."""
    ang = rng.uniform(-max_rot, max_rot)
    sc = rng.uniform(*scale_range)
    r = max_shift * np.sqrt(rng.uniform())
    th = rng.uniform(0, 2 * np.pi)
    J = similarity_about(np.array([(size - 1) / 2] * 2), ang, sc, np.array([r * np.cos(th), r * np.sin(th)]))
    return compose(J, M)


# ---------------------------------------------------------------- landmarks from a cavity mask
# Apex + mitral annulus from an LV cavity mask (CAMUS/EchoNet labels, mask-only models, the
# tracker's detect anchor). With a left-atrium mask the annulus is the two ends of the LV/LA
# interface. Without one, the LV long axis is the mask's principal axis (the apex is the end nearer
# the top of the image, where the transducer sits in apical views) and the annulus points are the
# basal "corners": the border points extreme along the two directions 45 degrees either side of the
# base direction. The apex is then the border point farthest from the annulus midpoint.
def _border_points(mask: np.ndarray) -> np.ndarray:
    """(K, 2) float64 (x, y) of the largest region's outer border pixels."""
    m = largest_component(mask)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2))
    return max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)


def _annulus_from_la(mask: np.ndarray, la_mask: np.ndarray, border: np.ndarray) -> np.ndarray | None:
    """Two ends of the LV border run that touches the LA; None when they do not touch."""
    la = cv2.dilate((np.asarray(la_mask) > 0).astype(np.uint8), np.ones((5, 5), np.uint8))
    xi, yi = border[:, 0].astype(int), border[:, 1].astype(int)
    touch = border[la[yi, xi] > 0]
    if len(touch) < 2:
        return None
    c = touch.mean(0)
    _, _, vt = np.linalg.svd(touch - c, full_matrices=False)
    proj = (touch - c) @ vt[0]
    return np.stack([touch[np.argmin(proj)], touch[np.argmax(proj)]])


def _annulus_from_shape(mask: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Basal corners of the cavity: extreme border points 45 degrees off the base direction."""
    ys, xs = np.nonzero(largest_component(mask))
    pts = np.stack([xs, ys], 1).astype(np.float64)
    c = pts.mean(0)
    if len(pts) < 3:
        return np.stack([border[0], border[-1]])
    _, _, vt = np.linalg.svd(pts - c, full_matrices=False)
    base = vt[0] if vt[0][1] >= 0 else -vt[0]          # long axis, pointing down (towards the base)
    perp = np.array([-base[1], base[0]])
    rel = border - c
    a = np.argmax(rel @ (base + perp))
    b = np.argmax(rel @ (base - perp))
    return np.stack([border[a], border[b]])


def landmarks_from_mask(mask: np.ndarray, la_mask: np.ndarray | None = None) -> np.ndarray:
    """(3, 2) float32 (x, y): apex, annulus_left, annulus_right (left/right by image x); NaN if empty."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    border = _border_points(m) if m.any() else np.zeros((0, 2))
    if len(border) == 0:
        return np.full((3, 2), np.nan, np.float32)
    ann = None
    if la_mask is not None and np.any(la_mask):
        ann = _annulus_from_la(m, la_mask, border)
    if ann is None:
        ann = _annulus_from_shape(m, border)
    mid = ann.mean(0)
    apex = border[np.argmax(np.linalg.norm(border - mid, axis=1))]
    left, right = (ann[0], ann[1]) if ann[0][0] <= ann[1][0] else (ann[1], ann[0])
    return np.stack([apex, left, right]).astype(np.float32)


def landmarks_from_masks(masks: np.ndarray, labeled: np.ndarray | None = None,
                         la_masks: np.ndarray | None = None) -> np.ndarray:
    """(T, 3, 2) for a clip; unlabeled or empty frames get NaN."""
    T = len(masks)
    out = np.full((T, 3, 2), np.nan, np.float32)
    for t in range(T):
        if labeled is not None and not labeled[t]:
            continue
        out[t] = landmarks_from_mask(masks[t], None if la_masks is None else la_masks[t])
    return out

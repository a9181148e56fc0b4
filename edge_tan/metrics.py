"""Evaluation metrics as the TAN paper defines them (sec. 4.2, Tables 2-4), numpy + OpenCV only.

- Dice on (H, W) masks (two empty masks agree: 1.0; exactly one empty: 0.0).
- ASD: average symmetric surface distance, (sum_a d(a, B) + sum_b d(b, A)) / (|A| + |B|) over the
  border pixels of the two masks (or two contours), in px; times spacing for mm.
- HD: symmetric Hausdorff distance over the same border points.
  Both are 0.0 when both shapes are empty and `empty` (NaN by default) when exactly one is, so a
  missed detection never crashes; pass e.g. the image diagonal to count it as a large error instead.
- SI (eq. 9): per video the mean over t of ASD(pred_{t-1}, pred_t), then the mean over videos.
- OKS (COCO): mean over landmarks of exp(-d^2 / (2 s^2 k^2)), s^2 = GT LV mask area in px.
  K_LANDMARK = 0.1 for every landmark: COCO's constants span 0.025 (eyes) to 0.107 (hips); apex and
  annulus are wide, blurry structures whose inter-observer spread is several mm, so we take the
  coarse end. With a 20k px^2 LV a 14 px error then scores exp(-0.5) ~ 0.61.
- worst-10 %: the mean of the worst ceil(10 %) values (lowest for Dice/OKS/accuracy, highest for
  distances), the paper's "0.1" columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

K_LANDMARK = 0.1
HIGHER_IS_BETTER = {"dice", "oks", "acc", "view_acc", "accuracy"}


# ---------------------------------------------------------------- overlap
def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    p, g = np.asarray(pred) > 0, np.asarray(gt) > 0
    if p.shape != g.shape:
        raise ValueError(f"dice: shapes differ {p.shape} vs {g.shape}")
    s = int(p.sum()) + int(g.sum())
    return 1.0 if s == 0 else 2.0 * int(np.logical_and(p, g).sum()) / s


# ---------------------------------------------------------------- surface distances
def border_points(mask: np.ndarray) -> np.ndarray:
    """(K, 2) float64 (x, y) of all region border pixels (inner border, 8-connected chain)."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2))
    return np.unique(np.concatenate([c.reshape(-1, 2) for c in contours]), axis=0).astype(np.float64)


def _nearest(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """For each point of a, the distance to the nearest point of b (chunked brute force)."""
    out = np.empty(len(a))
    for i in range(0, len(a), chunk):
        d = a[i:i + chunk, None, :] - b[None, :, :]
        out[i:i + chunk] = np.sqrt((d * d).sum(-1).min(1))
    return out


def surface_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d(a_i, B), d(b_j, A)) for two point sets (K, 2); either may be empty."""
    a = np.asarray(a, np.float64).reshape(-1, 2)
    b = np.asarray(b, np.float64).reshape(-1, 2)
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0), np.zeros(0)
    return _nearest(a, b), _nearest(b, a)


def _asd_hd(a: np.ndarray, b: np.ndarray, empty: float) -> tuple[float, float]:
    a = np.asarray(a).reshape(-1, 2)
    b = np.asarray(b).reshape(-1, 2)
    if len(a) == 0 and len(b) == 0:
        return 0.0, 0.0
    if len(a) == 0 or len(b) == 0:
        return float(empty), float(empty)
    da, db = surface_distances(a, b)
    return float((da.sum() + db.sum()) / (len(da) + len(db))), float(max(da.max(), db.max()))


def contour_asd(c1: np.ndarray, c2: np.ndarray, empty: float = math.nan) -> float:
    """ASD between two contours given as dense (K, 2) point lists (px)."""
    return _asd_hd(c1, c2, empty)[0]


def contour_hausdorff(c1: np.ndarray, c2: np.ndarray, empty: float = math.nan) -> float:
    return _asd_hd(c1, c2, empty)[1]


def _pixel_asd_hd(a: np.ndarray, b: np.ndarray, empty: float) -> tuple[float, float]:
    """ASD/HD for integer border pixels via exact Euclidean distance transforms on their joint bbox.

    Same numbers as the brute-force point version (cv2's DIST_MASK_PRECISE is exact), ~20x faster
    on full-resolution echo frames.
    """
    if len(a) == 0 or len(b) == 0:
        return _asd_hd(a, b, empty)
    ai, bi = a.astype(np.int64), b.astype(np.int64)
    lo = np.minimum(ai.min(0), bi.min(0))
    hi = np.maximum(ai.max(0), bi.max(0))
    ai, bi = ai - lo, bi - lo
    shape = (int(hi[1] - lo[1]) + 1, int(hi[0] - lo[0]) + 1)

    def dist_to(pts):
        img = np.full(shape, 255, np.uint8)
        img[pts[:, 1], pts[:, 0]] = 0
        return cv2.distanceTransform(img, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)

    da = dist_to(bi)[ai[:, 1], ai[:, 0]].astype(np.float64)
    db = dist_to(ai)[bi[:, 1], bi[:, 0]].astype(np.float64)
    return float((da.sum() + db.sum()) / (len(da) + len(db))), float(max(da.max(), db.max()))


def asd(pred: np.ndarray, gt: np.ndarray, spacing_mm: float = 1.0, empty: float = math.nan) -> float:
    """ASD between two masks' borders, in px (spacing_mm=1) or mm."""
    return _pixel_asd_hd(border_points(pred), border_points(gt), empty)[0] * spacing_mm


def hausdorff(pred: np.ndarray, gt: np.ndarray, spacing_mm: float = 1.0, empty: float = math.nan) -> float:
    return _pixel_asd_hd(border_points(pred), border_points(gt), empty)[1] * spacing_mm


def asd_hd(pred: np.ndarray, gt: np.ndarray, empty: float = math.nan) -> tuple[float, float]:
    """(ASD, HD) in px with one border extraction."""
    return _pixel_asd_hd(border_points(pred), border_points(gt), empty)


# ---------------------------------------------------------------- temporal smoothness
def video_smoothness(pred_masks: np.ndarray, empty: float = math.nan) -> float:
    """Mean over t of ASD(pred_{t-1}, pred_t) for one video (NaN for < 2 frames); NaN pairs skipped."""
    pts = [border_points(m) for m in pred_masks]
    vals = [_pixel_asd_hd(pts[t - 1], pts[t], empty)[0] for t in range(1, len(pts))]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


def smoothness_index(videos: list[np.ndarray]) -> float:
    """Paper eq. 9: mean over videos of each video's mean frame-to-frame ASD of the predictions."""
    vals = [v for v in (video_smoothness(m) for m in videos) if np.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


# ---------------------------------------------------------------- landmarks / view / EF
def landmark_errors(pred: np.ndarray, gt: np.ndarray, spacing_mm: float = 1.0) -> np.ndarray:
    """Per-landmark Euclidean error (..., 3) in px (or mm with spacing); NaN where GT is NaN."""
    d = np.asarray(pred, np.float64) - np.asarray(gt, np.float64)
    return np.sqrt((d * d).sum(-1)) * spacing_mm


def oks(pred: np.ndarray, gt: np.ndarray, area_px: float, k: float | np.ndarray = K_LANDMARK) -> float:
    """COCO object keypoint similarity for one frame's 3 landmarks; NaN if no GT landmark / zero area."""
    d = landmark_errors(pred, gt)
    kk = np.broadcast_to(np.asarray(k, np.float64), d.shape)
    ok = np.isfinite(np.asarray(gt, np.float64)).all(-1)
    if not ok.any() or not area_px > 0:
        return math.nan
    d = np.where(np.isfinite(d), d, np.inf)          # a missing prediction scores 0
    return float(np.mean(np.exp(-(d[ok] ** 2) / (2.0 * area_px * kk[ok] ** 2))))


def view_accuracy(pred: list | np.ndarray, gt: list | np.ndarray) -> float:
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise ValueError(f"view_accuracy: {p.shape} vs {g.shape}")
    return float(np.mean(p == g)) if p.size else math.nan


def ef_abs_error(pred_ef: float, gt_ef: float) -> float:
    """|EF_pred - EF_gt| in EF percentage points (NaN if either is unknown)."""
    return abs(float(pred_ef) - float(gt_ef))


# ---------------------------------------------------------------- summaries
def worst_fraction(values, frac: float = 0.1, higher_is_better: bool = False) -> float:
    """Mean of the worst ceil(frac * n) finite values."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan
    n = max(1, math.ceil(frac * v.size))
    v = np.sort(v)
    return float(v[:n].mean() if higher_is_better else v[-n:].mean())


def summarize(values, higher_is_better: bool = False, frac: float = 0.1) -> dict:
    v = np.asarray(values, np.float64).ravel()
    f = v[np.isfinite(v)]
    if f.size == 0:
        return {"n": 0, "n_nan": int(v.size), "mean": math.nan, "median": math.nan, "std": math.nan,
                "worst10": math.nan}
    return {"n": int(f.size), "n_nan": int(v.size - f.size), "mean": float(f.mean()),
            "median": float(np.median(f)), "std": float(f.std()),
            "worst10": worst_fraction(f, frac, higher_is_better)}


@dataclass
class MetricTable:
    """Accumulate per-frame or per-video values by name; `summary()` gives mean/median/std/worst10.

    Direction (for worst-10 %) comes from the name: any "_"-separated token dice/oks/acc/accuracy
    (e.g. video_dice, view_acc) means higher-is-better, anything else (asd_px, si, lm_err_mm, lost_frac)
    lower-is-better; override per name with `higher_is_better`.
    """

    values: dict = field(default_factory=dict)
    higher_is_better: dict = field(default_factory=dict)
    frac: float = 0.1

    def add(self, **named: float) -> None:
        for k, v in named.items():
            self.values.setdefault(k, []).append(float(v))

    def extend(self, name: str, vals) -> None:
        self.values.setdefault(name, []).extend(float(x) for x in np.asarray(vals, np.float64).ravel())

    def _hib(self, name: str) -> bool:
        if name in self.higher_is_better:
            return bool(self.higher_is_better[name])
        n = name.lower()
        return n in HIGHER_IS_BETTER or any(tok in HIGHER_IS_BETTER for tok in n.split("_"))

    def summary(self) -> dict:
        return {k: summarize(v, self._hib(k), self.frac) for k, v in self.values.items()}

    def merge(self, other: "MetricTable") -> "MetricTable":
        for k, v in other.values.items():
            self.values.setdefault(k, []).extend(v)
        self.higher_is_better.update(other.higher_is_better)
        return self

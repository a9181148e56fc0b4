"""Pseudo-labels on the site's clips, kept only where they can be trusted (issue 12, step c).

Each clip is tracked forward and backward in time (windows.track_all). The two passes start from
different frames and carry different histories, so where they land on the same LV the label is not
an accident of one trajectory; where they disagree, at least one drifted. A frame is kept when:

1. forward/backward agree: mask Dice >= min_dice and mean landmark distance <= max_lm_frac x the LV's
   equivalent diameter (both passes tracked the frame, neither lost it);
2. it is anatomically plausible: one compact cavity (solidity, contour roughness = perimeter /
   convex-hull perimeter), area within area_ratio of the clip's median, a landmark triangle of the
   template's orientation whose area and aspect (annulus width / LV length) are those of a LV, and
   landmarks on the cavity border;
3. it is temporally coherent in the paper's TCM sense (3.2): the label of a temporal neighbour moved by
   pyramidal Lucas-Kanade on 20 contour points (export/train/tcm.py) lands within lk_frac x diameter
   (Hausdorff) of this frame's label. Frames with no such neighbour are dropped.

The label kept is the mean shape of the two passes (zero level of the averaged signed distance
maps) and the mean landmarks. Thresholds are relative to the LV's size, so they hold at 112 px and
at 800 px.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edge_tan.runtime import geometry as geo
from edge_tan.dataset import Sequence
from edge_tan.runtime.tracker import FrameResult

from ..train.tcm import flow_mask, hausdorff


@dataclass(frozen=True)
class PseudoConfig:
    min_dice: float = 0.90
    max_lm_frac: float = 0.08
    area_ratio: tuple = (0.6, 1.6)
    min_solidity: float = 0.85
    max_roughness: float = 1.15
    tri_area_frac: tuple = (0.25, 1.1)   # landmark triangle area / cavity area
    aspect: tuple = (0.3, 1.3)           # annulus width / apex-to-annulus-midpoint length
    max_lm_to_border: float = 0.15       # landmark distance to the cavity border / diameter
    lk_frac: float = 0.25
    max_per_clip: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


def signed_distance(mask: np.ndarray, precise: bool = False) -> np.ndarray:
    """< 0 inside, > 0 outside; `precise`: exact Euclidean distances (else OpenCV's 3x3 approximation)."""
    m = (mask > 0).astype(np.uint8)
    k = cv2.DIST_MASK_PRECISE if precise else 3
    return (cv2.distanceTransform(1 - m, cv2.DIST_L2, k) - cv2.distanceTransform(m, cv2.DIST_L2, k)).astype(np.float32)


def mean_shape(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Zero level of the averaged signed distances: the shape halfway between two masks."""
    return geo.largest_component(((signed_distance(a) + signed_distance(b)) < 0).astype(np.uint8)).astype(np.uint8)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    s = a.sum() + b.sum()
    return float(2 * (a & b).sum() / s) if s else 0.0


def agreement(f: FrameResult, b: FrameResult, cfg: "PseudoConfig | None" = None) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """('' or why rejected, fused mask, fused landmarks) for one frame's forward and backward results."""
    cfg = cfg or PseudoConfig()
    if f is None or b is None or f.state == "lost" or b.state == "lost":
        return "lost in a pass", None, None
    if f.landmarks is None or b.landmarks is None or not f.mask_crop.size or not b.mask_crop.size:
        return "no mask or landmarks", None, None
    mf, mb = f.mask, b.mask
    area = 0.5 * (mf.sum() + mb.sum())
    if area < 9:
        return "no mask or landmarks", None, None
    diam = float(np.sqrt(4 * area / np.pi))
    if dice(mf, mb) < cfg.min_dice:
        return "forward/backward masks disagree", None, None
    if float(np.linalg.norm(f.landmarks - b.landmarks, axis=1).mean()) > cfg.max_lm_frac * diam:
        return "forward/backward landmarks disagree", None, None
    return "", mean_shape(mf, mb), (0.5 * (f.landmarks + b.landmarks)).astype(np.float32)


def plausible(mask: np.ndarray, lm: np.ndarray, tpl_sign: float, cfg: "PseudoConfig | None" = None) -> str:
    """'' when mask + landmarks look like an apical LV, else the reason (clip-level area is checked later)."""
    c = cfg or PseudoConfig()
    cs, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if len(cs) != 1:
        return "not one cavity"
    cont = cs[0]
    area = float(cv2.contourArea(cont))
    hull = cv2.convexHull(cont)
    if area < 9 or area / max(cv2.contourArea(hull), 1e-6) < c.min_solidity:
        return "cavity not compact"
    if cv2.arcLength(cont, True) / max(cv2.arcLength(hull, True), 1e-6) > c.max_roughness:
        return "contour too rough"
    tri = geo.triangle_area(lm)
    if not np.isfinite(tri) or np.sign(tri) != tpl_sign:
        return "landmark triangle flipped"
    if not c.tri_area_frac[0] <= abs(tri) / area <= c.tri_area_frac[1]:
        return "landmark triangle implausible"
    width = float(np.linalg.norm(lm[1] - lm[2]))
    length = float(np.linalg.norm(lm[0] - 0.5 * (lm[1] + lm[2])))
    if length <= 0 or not c.aspect[0] <= width / length <= c.aspect[1]:
        return "landmark geometry implausible"
    diam = np.sqrt(4 * area / np.pi)
    d = [abs(cv2.pointPolygonTest(cont, (float(p[0]), float(p[1])), True)) for p in lm]
    if max(d) > c.max_lm_to_border * diam:
        return "landmarks off the cavity border"
    return ""



def filter_clip(seq: Sequence, fwd: list[FrameResult], bwd_reversed: list[FrameResult], tpl_sign: float,
                cfg: PseudoConfig = PseudoConfig(), site_view: str = "") -> tuple[Sequence | None, Counter]:
    """Pseudo-labelled copy of `seq` (kept frames only) and why the others were rejected.

    `bwd_reversed` is the backward pass's output in its own (reversed) order, as track_all returns it.
    `site_view`: the view the site says its clips show (adapt --view); it replaces the model's own call,
    which on an unfamiliar scanner is the thing being corrected (self-training on it entrenches it).
    """
    T = seq.n_frames
    bwd = list(reversed(bwd_reversed))
    why: Counter = Counter()
    masks: dict[int, np.ndarray] = {}
    lms: dict[int, np.ndarray] = {}
    for t in range(T):
        r, m, lm = agreement(fwd[t], bwd[t], cfg)
        if not r:
            r = plausible(m, lm, tpl_sign, cfg)
        if r:
            why[r] += 1
            continue
        masks[t], lms[t] = m, lm
    if masks:   # clip-level: area within a band around the median kept area
        med = float(np.median([m.sum() for m in masks.values()]))
        for t in list(masks):
            if not cfg.area_ratio[0] <= masks[t].sum() / max(med, 1.0) <= cfg.area_ratio[1]:
                why["area off the clip's median"] += 1
                del masks[t], lms[t]
    kept = []
    for t in sorted(masks):   # TCM: a neighbour's label moved by LK must land on this one
        diam = np.sqrt(4 * masks[t].sum() / np.pi)
        ok = False
        for u in (t - 1, t + 1):
            if u in masks:
                fm = flow_mask(seq.frames[u], seq.frames[t], masks[u])
                if fm is not None and fm.sum() >= 9 and hausdorff(fm, masks[t]) <= cfg.lk_frac * diam:
                    ok = True
                    break
        if ok:
            kept.append(t)
        else:
            why["not temporally coherent (LK)"] += 1
    why["kept"] = len(kept)
    if not kept:
        return None, why
    if len(kept) > cfg.max_per_clip:
        kept = [kept[int(i)] for i in np.linspace(0, len(kept) - 1, cfg.max_per_clip).round()]
    views = [fwd[t].view for t in kept if fwd[t].view] + [bwd[t].view for t in kept if bwd[t].view]
    view = site_view
    if views and not site_view:
        v, n = Counter(views).most_common(1)[0]
        view = v if n >= 0.9 * len(views) else ""   # both passes, nearly every frame: else unknown (-1)
    out = Sequence(name=seq.name, frames=seq.frames[kept], masks=np.stack([masks[t] for t in kept]),
                   landmarks=np.stack([lms[t] for t in kept]), labeled=np.ones(len(kept), bool), view=view,
                   fps=seq.fps, spacing_mm=seq.spacing_mm, extra={"kept": kept})
    return out, why

"""Temporal Coherence Module labels (paper 3.2): move 20 contour points of frame t-1 to frame t with
pyramidal Lucas-Kanade, smooth, fill -> the optical-flow label of frame t, plus its gate.

Labels are precomputed once per dataset (`flow_labels`) — LK on 20 points costs ~1 ms per pair.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_tan.dataset import Sequence
from edge_tan.runtime.geometry import contour_to_mask, extract_contour, resample_contour

N_POINTS = 20
LK_WIN = 21
LK_LEVELS = 3          # pyramid levels (OpenCV maxLevel = levels - 1)
HAUSDORFF_PX = 20.0    # paper's threshold on fHaus(t)
AREA_RATIO = (0.7, 1.4)  # looser sanity gate when frame t has no manual label


def _smooth_periodic(v: np.ndarray, passes: int = 2) -> np.ndarray:
    """[1,2,1]/4 smoothing along a closed point sequence (no shrinkage when applied to displacements)."""
    for _ in range(passes):
        v = 0.25 * np.roll(v, 1, 0) + 0.5 * v + 0.25 * np.roll(v, -1, 0)
    return v


def catmull_rom_closed(p: np.ndarray, per_seg: int = 8) -> np.ndarray:
    """Densify a closed polygon with a periodic Catmull-Rom spline (passes through every point)."""
    p = np.asarray(p, np.float64)
    p0, p1, p2, p3 = np.roll(p, 1, 0), p, np.roll(p, -1, 0), np.roll(p, -2, 0)
    t = np.linspace(0, 1, per_seg, endpoint=False)[None, :, None]
    a, b, c, d = (x[:, None, :] for x in (p0, p1, p2, p3))
    out = 0.5 * ((2 * b) + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t ** 2 + (-a + 3 * b - 3 * c + d) * t ** 3)
    return out.reshape(-1, 2).astype(np.float32)


def track_contour(prev_frame: np.ndarray, frame: np.ndarray, prev_mask: np.ndarray,
                  n: int = N_POINTS) -> np.ndarray | None:
    """The n LK-tracked, smoothed contour points in frame t, or None when tracking is impossible."""
    c = extract_contour(prev_mask)
    if len(c) < 3:
        return None
    p = resample_contour(c, n)
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev_frame, frame, p.reshape(-1, 1, 2), None, winSize=(LK_WIN, LK_WIN),
                                          maxLevel=LK_LEVELS - 1,
                                          criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    if nxt is None:
        return None
    ok = st.reshape(-1).astype(bool)
    if ok.sum() < n // 2:
        return None
    d = nxt.reshape(-1, 2) - p
    d[~ok] = np.median(d[ok], axis=0)   # lost points follow the others
    return (p + _smooth_periodic(d)).astype(np.float32)


def flow_mask(prev_frame, frame, prev_mask) -> np.ndarray | None:
    pts = track_contour(prev_frame, frame, prev_mask)
    if pts is None:
        return None
    return contour_to_mask(catmull_rom_closed(pts), prev_mask.shape)


def hausdorff(mask_a: np.ndarray, mask_b: np.ndarray, n: int = 200) -> float:
    """Symmetric Hausdorff distance (px) between the outer contours of two masks."""
    a, b = extract_contour(mask_a), extract_contour(mask_b)
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    a, b = resample_contour(a, n), resample_contour(b, n)
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    return float(max(d.min(1).max(), d.min(0).max()))


def flow_labels(seqs: list[Sequence], thresh: float = HAUSDORFF_PX) -> tuple[dict, dict]:
    """For every pair (t-1 labelled, t): {(seq, t): flow mask} for the kept pairs and stats.

    Kept when Hausdorff(flow, manual_t) <= thresh (t labelled) or, without a manual label at t,
    when the area ratio to the manual label of t-1 is plausible. Dropped pairs are the paper's
    zeroed heterogeneous loss: they are simply never sampled.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(16, os.cpu_count() or 1))) as ex:   # cv2 drops the GIL
        per_seq = list(ex.map(lambda s: _seq_flow_labels(s, thresh), seqs))
    out: dict = {}
    st = {"pairs": 0, "kept": 0, "gated_hausdorff": 0, "gated_area": 0, "failed": 0}
    hs: list = []
    for si, (labels, s_st, s_hs) in enumerate(per_seq):
        out.update({(si, t): m for t, m in labels.items()})
        for k in st:
            st[k] += s_st[k]
        hs += s_hs
    st["hausdorff_mean"] = float(np.mean(hs)) if hs else float("nan")
    return out, st


def _seq_flow_labels(s: Sequence, thresh: float) -> tuple[dict, dict, list]:
    out: dict = {}
    st = {"pairs": 0, "kept": 0, "gated_hausdorff": 0, "gated_area": 0, "failed": 0}
    hs = []
    lab = np.asarray(s.labeled, bool)
    for t in range(1, s.n_frames):
        if not lab[t - 1] or s.masks[t - 1].sum() < 9:
            continue
        st["pairs"] += 1
        m = flow_mask(s.frames[t - 1], s.frames[t], s.masks[t - 1])
        if m is None or m.sum() < 9:
            st["failed"] += 1
            continue
        if lab[t]:
            h = hausdorff(m, s.masks[t])
            hs.append(h)
            if h > thresh:
                st["gated_hausdorff"] += 1
                continue
        else:
            r = m.sum() / max(s.masks[t - 1].sum(), 1)
            if not AREA_RATIO[0] <= r <= AREA_RATIO[1]:
                st["gated_area"] += 1
                continue
        out[t] = m
        st["kept"] += 1
    return out, st, hs

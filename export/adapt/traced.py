"""A site's expert tracings as labels for `edge-tan adapt --tracings` (issue 24).

Why: every echo lab traces the LV at end-diastole and end-systole for its reports. On real clips the
network's own contour sits on the outer wall edge and barely contracts (FAC at the expert's frames
about half the expert's), and self-training on its own masks keeps that bias. The traced *area* at the
two frames an expert traced is the one figure the site knows for sure; this module turns it into
labels the fine-tune can use:

- each traced frame is tracked (a short lead-in of LEAD frames before it, so the window is the one
  the tracker would use there);
- the tracked mask is shrunk or grown along its own signed distance until its area equals the
  expert's (the shape stays the model's, the size becomes the expert's);
- the HALF frames either side get the same area: ED and ES are the extremes of the area curve, where
  it is flat, so their neighbours' areas differ from it by a few per cent at most.

Frames the tracker did not track (lost, re-detect, empty) or where the mask would have to change by
more than MAX_SCALE are left out, with the reason counted. Landmarks stay the tracked ones.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from edge_tan.dataset import Sequence
from edge_tan.reports import Traced
from edge_tan.runtime import geometry as geo

from .pseudo import signed_distance


LEAD = 10          # frames tracked before a traced frame (the tracker settles within a few)
HALF = 2           # neighbours either side that take the traced area too
MAX_SCALE = 2.5    # tracked area / traced area (or its inverse) beyond this: the track is not that LV


def area_matched(mask: np.ndarray, area: float) -> np.ndarray:
    """`mask` eroded or dilated along its signed distance to exactly round(area) pixels (ties aside):
    the `area` pixels deepest inside (least far outside) the mask."""
    n = int(round(area))
    if n <= 0 or not mask.any():
        return np.zeros_like(mask, np.uint8)
    m = (mask > 0).astype(np.uint8)
    sd = signed_distance(m, precise=True)
    ys, xs = np.nonzero(m)
    yy, xx = np.indices(m.shape)
    # equal distances (many, on a pixel grid) go to the pixel nearer the centroid: a compact ring
    key = sd + 1e-3 * np.hypot(yy - ys.mean(), xx - xs.mean()) / max(m.shape)
    n = min(n, key.size)
    out = np.zeros(key.size, np.uint8)
    out[np.argpartition(key.ravel(), n - 1)[:n]] = 1
    return geo.largest_component(out.reshape(m.shape)).astype(np.uint8)


def _events(tr: Traced) -> list[tuple[str, int, float]]:
    return [(k, f, a) for k, f, a in (("ED", tr.ed, tr.ed_area), ("ES", tr.es, tr.es_area))
            if a is not None and f is not None]


def area_map(pairs: list[tuple[float, float]]):
    """target_area(tracked_area) for a clip's other frames, from (tracked, traced) area pairs at its
    traced frames: the traced/tracked ratio interpolated between the ES and ED pairs by tracked area
    (held constant beyond them), so self-training labels of the same clip stop pulling back to the
    model's own size. None without a pair."""
    pairs = sorted((a, b) for a, b in pairs if a > 0 and b > 0)
    if not pairs:
        return None
    xs = np.array([a for a, _ in pairs])
    rs = np.array([b / a for a, b in pairs])
    return lambda a: float(a) * float(np.interp(a, xs, rs))


def traced_labels(seq: Sequence, tr: Traced, track, site_view: str = "") -> tuple[Sequence | None, Counter]:
    """Area-matched labels at and around the traced frames of one full-length clip.

    `track(frames) -> list[FrameResult]` runs the tracker on a run of frames (closed loop, fresh start).
    The returned sequence's extra["pairs"] holds (tracked, traced) areas at the traced frames themselves.
    """
    why: Counter = Counter()
    frames, masks, lms, kept, pairs = [], [], [], [], []
    T = seq.n_frames
    for kind, f, area in _events(tr):
        if not 0 <= f < T:
            why[f"{kind} frame outside the clip"] += 1
            continue
        lo, hi = max(0, f - LEAD), min(T, f + HALF + 1)
        res = track(seq.frames[lo:hi])
        for t in range(max(lo, f - HALF), hi):
            r = res[t - lo]
            if r.state != "track" or r.landmarks is None:
                why[f"not tracked ({r.state})"] += 1
                continue
            m = r.mask
            a = float(m.sum())
            if a <= 0 or not 1 / MAX_SCALE <= a / area <= MAX_SCALE:
                why["tracked area too far from the traced one"] += 1
                continue
            if t == f:
                pairs.append((a, float(area)))
            frames.append(seq.frames[t])
            masks.append(area_matched(m, area))
            lms.append(np.asarray(r.landmarks, np.float32))
            kept.append(t)
            why[f"kept ({kind})"] += 1
    if not kept:
        return None, why
    out = Sequence(name=seq.name, frames=np.stack(frames), masks=np.stack(masks), landmarks=np.stack(lms),
                   labeled=np.ones(len(kept), bool), view=site_view, fps=seq.fps, spacing_mm=seq.spacing_mm,
                   extra={"kept": kept, "pairs": pairs})
    return out, why

"""Apex + mitral-annulus landmarks derived from an LV cavity mask (CAMUS, EchoNet, clinical layer).

With a left-atrium mask the annulus is the two ends of the LV/LA interface. Without one, the LV
long axis is taken as the mask's principal axis (the apex is the end nearer the top of the image, where
the transducer sits in apical views) and the annulus points are the basal "corners": the border
points extreme along the two directions 45 degrees either side of the base direction. The apex is
then the border point farthest from the annulus midpoint.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import largest_component


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

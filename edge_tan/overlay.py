"""Overlay video so a person can judge the tracking: contour, landmarks, view, state, area curve."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence as Seq

import cv2
import numpy as np

from .runtime.atomic import WriteFailed, atomic_path
from .runtime.errors import EdgeTanError
from .runtime.tracker import FrameResult

STATE_COLOURS = {"detect": (255, 200, 0), "track": (0, 220, 0), "redetect": (0, 200, 255), "lost": (0, 0, 255)}
LM_COLOURS = [(0, 255, 255), (255, 0, 255), (255, 255, 0)]


def draw_frame(gray: np.ndarray, r: FrameResult, areas: np.ndarray, ed: set, es: set, scale: float,
               conf: np.ndarray | None = None, banner: str = "", alarm: bool = False) -> np.ndarray:
    img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if scale != 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    col = STATE_COLOURS.get(r.state, (255, 255, 255))
    if len(r.contour):
        cv2.polylines(img, [np.round(r.contour * scale * 16).astype(np.int32)], True, col, 1, cv2.LINE_AA, shift=4)
    if r.landmarks is not None:
        for p, c in zip(r.landmarks, LM_COLOURS):
            cv2.circle(img, (int(round(p[0] * scale)), int(round(p[1] * scale))), 3, c, -1, cv2.LINE_AA)
    h, w = img.shape[:2]
    txt = f"#{r.index} {r.state} {r.view or ''} {'' if r.view_prob != r.view_prob else f'{r.view_prob:.2f}'}" \
          f" conf {r.confidence:.2f} {r.latency_ms:.1f}ms"
    ood, ood_t = getattr(r, "ood_score", float("nan")), getattr(r, "ood_threshold", float("nan"))
    if ood == ood and ood_t == ood_t:   # out-of-domain score vs the clip threshold (edge_tan.runtime.ood)
        txt += f" ood {ood:.1f}{'>' if ood > ood_t else '<='}{ood_t:.1f}"
    if r.index in ed:
        txt += " ED"
    if r.index in es:
        txt += " ES"
    cv2.putText(img, txt, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, txt, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, col, 1, cv2.LINE_AA)
    # area curve strip under the frame
    strip_h = max(40, h // 6)
    strip = np.zeros((strip_h, w, 3), np.uint8)
    if len(areas) > 1 and areas.max() > 0:
        xs = np.linspace(2, w - 3, len(areas))
        a = areas / areas.max()
        ys = strip_h - 4 - a * (strip_h - 8)
        pts = np.stack([xs, ys], 1)
        cv2.polylines(strip, [np.round(pts * 16).astype(np.int32)], False, (200, 200, 200), 1, cv2.LINE_AA, shift=4)
        for i in ed:
            cv2.line(strip, (int(xs[i]), 0), (int(xs[i]), strip_h), (0, 140, 255), 1)
        for i in es:
            cv2.line(strip, (int(xs[i]), 0), (int(xs[i]), strip_h), (255, 140, 0), 1)
        cv2.circle(strip, (int(xs[r.index]), int(ys[r.index])), 3, col, -1)
        if conf is not None and len(conf) == len(areas):   # per-frame QC confidence, 0 at the bottom
            cy = strip_h - 4 - np.clip(conf, 0, 1) * (strip_h - 8)
            cv2.polylines(strip, [np.round(np.stack([xs, cy], 1) * 16).astype(np.int32)], False, (0, 160, 255), 1,
                          cv2.LINE_AA, shift=4)
    if banner:   # the clip's EF line on its own bar, red when QC marks the clip unreliable
        bar = np.zeros((18, w, 3), np.uint8)
        cv2.putText(bar, banner, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255) if alarm else (0, 220, 0), 1,
                    cv2.LINE_AA)
        strip = np.vstack([bar, strip])
    return np.vstack([img, strip])


def check_video_written(tmp: Path, n: int, dest: Path) -> None:
    """cv2.VideoWriter.write returns nothing and only logs when the disk fills: read the file back
    (header and index only, no decode) and refuse it unless it holds every frame written."""
    cap = cv2.VideoCapture(str(tmp))
    try:
        got = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    if got != n:
        raise WriteFailed(f"cannot write {dest}: the video holds {got} of {n} frames (disk full?); nothing was written")


def _scale(frame: np.ndarray) -> float:
    """Small clips (112x112) are drawn upscaled so the text stays legible."""
    return max(1.0, 320.0 / min(frame.shape[:2]))


def write_overlay(path, frames: Seq[np.ndarray], results: Seq[FrameResult], fps: float,
                  ed=(), es=(), banner: str = "", alarm: bool = False) -> None:
    """Write the overlay clip atomically (.mp4 with mp4v, .avi with MJPG).

    `banner` (the EF line, e.g. "EF 52.1 % — UNRELIABLE (...)") is drawn on every frame, red when
    `alarm`; the strip also shows the per-frame QC confidence (orange) under the area curve."""
    path = Path(path)
    if not results:
        raise EdgeTanError("nothing to draw: no frames were tracked")
    fourcc = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}.get(path.suffix.lower())
    if fourcc is None:
        raise EdgeTanError(f"overlay must be .mp4, .avi or .mkv, got {path.name}")
    scale = _scale(frames[0])
    areas = np.array([r.area_px for r in results], np.float64)
    ed, es = set(int(i) for i in ed), set(int(i) for i in es)
    conf = np.array([r.confidence for r in results], np.float64)
    banner = banner.replace("—", "-")   # Hershey fonts are ASCII only
    kw = {"conf": conf, "banner": banner, "alarm": alarm}
    with atomic_path(path) as tmp:
        first = draw_frame(frames[0], results[0], areas, ed, es, scale, **kw)
        vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(max(fps, 1.0)),
                             (first.shape[1], first.shape[0]))
        if not vw.isOpened():
            raise EdgeTanError(f"OpenCV cannot write {path.suffix} video here (codec {fourcc} unavailable)")
        n = 0
        try:
            vw.write(first)
            n += 1
            for f, r in zip(frames[1:], results[1:]):
                vw.write(draw_frame(f, r, areas, ed, es, scale, **kw))
                n += 1
        finally:
            vw.release()
        check_video_written(tmp, n, path)


def ed_es_figure(path, frames: Seq[np.ndarray], results: Seq[FrameResult], ed: int, es: int, banner: str = "") -> None:
    """ED and ES frames side by side with contour and landmarks (PNG, written atomically): how a
    clinician reads a trace -- does it sit on the endocardium at ED and follow it in at ES?"""
    areas = np.array([r.area_px for r in results], np.float64)
    scale = _scale(frames[0])
    tiles = [draw_frame(frames[i], results[i], areas, {ed}, {es}, scale, banner=banner) for i in (ed, es)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", np.hstack(tiles))
    if not ok:
        raise EdgeTanError(f"cannot encode {path.name}")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.tobytes())

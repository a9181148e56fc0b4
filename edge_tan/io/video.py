"""Video files and capture devices through OpenCV: whole-clip reads and one-frame-at-a-time streaming."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..dataset import Sequence
from ..runtime.errors import EdgeTanError
from ..runtime.frames import GrayConverter

DEFAULT_FPS = 30.0


def open_capture(src: str | Path | int) -> cv2.VideoCapture:
    """Open a video file or a capture-device index; one clear error if OpenCV cannot."""
    if isinstance(src, int):
        cap = cv2.VideoCapture(src)
        if not cap.isOpened():
            raise EdgeTanError(f"cannot open capture device {src}")
        return cap
    p = Path(src)
    if not p.exists():
        raise EdgeTanError(f"video file not found: {p}")
    if p.is_dir():
        raise EdgeTanError(f"{p} is a directory, not a video file")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise EdgeTanError(f"{p.name}: cannot decode as a video (not a video, corrupt, or unsupported codec)")
    return cap


def capture_fps(cap: cv2.VideoCapture) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if np.isfinite(fps) and 0.5 < fps < 1000 else DEFAULT_FPS


def iter_video_frames(src: str | Path | int, grey: bool = True) -> Iterator[np.ndarray]:
    """Yield frames one at a time (uint8 grey, or OpenCV's BGR when grey=False); releases the capture."""
    cap = open_capture(src)
    to_grey = GrayConverter()   # one bit depth for the whole stream (OpenCV gives uint8 almost always)
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield np.ascontiguousarray(to_grey(frame)) if grey else frame
    finally:
        cap.release()


def read_video_file(path: str | Path) -> Sequence:
    """Whole AVI/MP4/... clip -> unlabeled Sequence (frames (T,H,W) uint8 grey, fps from the container)."""
    p = Path(path)
    cap = open_capture(p)
    fps = capture_fps(cap)
    promised = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)   # the header's count (0: unknown)
    cap.release()
    frames = list(iter_video_frames(p))
    if not frames:
        raise EdgeTanError(f"{p.name}: video has zero decodable frames (corrupt file or unsupported codec)")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise EdgeTanError(f"{p.name}: frames change size mid-clip {sorted(shapes)}")
    return Sequence(name=p.stem, frames=np.stack(frames), fps=fps, extra={"source": str(p), "format": "video",
                                                                         "frames_promised": max(promised, 0)})

"""Open a clip for streaming: fps and pixel spacing known up front, frames decoded one at a time.

Why: `read_video` decodes a whole clip before the first frame is tracked, so an hour of 800x600 cine
needs tens of GB. Archive runs (`edge-tan batch`) hold one frame at a time instead. Video files go
through OpenCV frame by frame; DICOM reads its header with the pixel data deferred and decodes one
frame per step from the file (pydicom's memory-lean path). .npz, NIfTI and MetaImage store one array
per clip and are loaded whole (they are short research clips, not long cine recordings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from ..runtime.errors import EdgeTanError
from . import dicom, video
from .read import check_path, file_kind, read_video


@dataclass
class ClipStream:
    """A clip not yet decoded: iterate it for (H, W) uint8 grey frames, each decoded when asked for."""

    path: Path
    fps: float
    spacing_mm: float
    n_frames_hint: int          # what the container says (0: unknown); the frames decoded are the truth
    _open: Callable[[], Iterator[np.ndarray]]

    def __iter__(self) -> Iterator[np.ndarray]:
        shape, n = None, 0
        for f in self._open():
            if shape is None:
                shape = f.shape
            elif f.shape != shape:
                raise EdgeTanError(f"{self.path.name}: frames change size mid-clip ({shape} then {f.shape})")
            n += 1
            yield f
        if n == 0:
            raise EdgeTanError(f"{self.path.name}: no decodable frames (empty, corrupt, or unsupported codec)")


def _video_stream(p: Path) -> ClipStream:
    cap = video.open_capture(p)
    try:
        fps = video.capture_fps(cap)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    return ClipStream(p, fps, float("nan"), max(n, 0), lambda: video.iter_video_frames(p))


def _dicom_frames(p: Path, ds, n: int) -> Iterator[np.ndarray]:
    """One frame at a time from the file. Native data is read by index (pydicom 3.0's iter_pixels
    miscounts native YBR_FULL_422); encapsulated data in one pass (indexing would rescan fragments)."""
    from pydicom.pixels import iter_pixels, pixel_array

    with dicom.pixel_errors(p.name):
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if ts is not None and ts.is_encapsulated:
            for i, arr in enumerate(iter_pixels(str(p), raw=False)):
                if i >= n:
                    break
                yield dicom.frame_to_grey(arr, ds)
        else:
            for i in range(n):
                yield dicom.frame_to_grey(pixel_array(str(p), index=i, raw=False), ds)


def _dicom_stream(p: Path) -> ClipStream:
    ds = dicom.open_dicom(p, defer_size="1 MB")   # header only: the pixel data stays on disk
    n = dicom.n_frames(ds)
    return ClipStream(p, dicom.dicom_fps(ds), dicom.dicom_spacing_mm(ds), n, lambda: _dicom_frames(p, ds, n))


def open_clip(path: str | Path) -> ClipStream:
    """Any file `read_video` reads -> ClipStream with the same frames, fps and spacing as `read_video`."""
    p = check_path(path)
    kind = file_kind(p)
    if kind == "video":
        return _video_stream(p)
    if kind == "dicom":
        return _dicom_stream(p)
    seq = read_video(p)            # npz / NIfTI / MetaImage: one stored array
    return ClipStream(p, float(seq.fps), float(seq.spacing_mm), seq.n_frames, lambda: iter(seq.frames))

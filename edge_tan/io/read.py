"""One entry point for any supported source: video file, DICOM cine, edge-tan .npz, CAMUS NIfTI/MHD.

`read_video` loads a whole clip as a `Sequence`; `iter_frames` streams frames (also from a capture
device index) for long files and live input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..dataset import Sequence, load_sequence
from ..runtime.errors import EdgeTanError
from . import camus, dicom, video

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")


def file_kind(p: Path) -> str:
    name = p.name.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".nii.gz") or name.endswith(".nii"):
        return "nifti"
    if name.endswith(".mhd"):
        return "mhd"
    if name.endswith(DICOM_SUFFIXES) or dicom.is_dicom(p):
        return "dicom"
    return "video"


def check_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise EdgeTanError(f"input not found: {p}")
    if p.is_dir():
        raise EdgeTanError(f"{p} is a directory; give a video/DICOM/.npz/NIfTI file "
                           "(use `edge-tan convert` for dataset folders)")
    if p.stat().st_size == 0:
        raise EdgeTanError(f"{p.name}: file is empty")
    return p


def read_video(path: str | Path) -> Sequence:
    """Any supported file -> validated Sequence (frames (T,H,W) uint8 grey; labels when the source has them)."""
    if isinstance(path, int) or (isinstance(path, str) and path.isdigit()):
        raise EdgeTanError(f"{path!r} is a capture device; stream it with iter_frames, read_video needs a file")
    p = check_path(path)
    kind = file_kind(p)
    if kind == "npz":
        seq = load_sequence(p)
    elif kind == "nifti":
        seq = camus.read_camus_nifti(p)
    elif kind == "mhd":
        seq = camus.read_mhd_sequence(p)
    elif kind == "dicom":
        seq = dicom.read_dicom(p)
    else:
        seq = video.read_video_file(p)
    return seq.validate()


def iter_frames(src: str | Path | int, grey: bool = True) -> Iterator[np.ndarray]:
    """Yield frames one at a time: uint8 (H, W) grey, or the source's own layout when grey=False.

    `src` may be a capture-device index (int or digit string) for live input. Video files and DICOM
    are decoded lazily; npz/NIfTI/MHD are small enough to load first.
    """
    if isinstance(src, (int, np.integer)) or (isinstance(src, str) and src.isdigit()):
        yield from video.iter_video_frames(int(src), grey=grey)
        return
    p = check_path(src)
    kind = file_kind(p)
    if kind == "video":
        n = 0
        for f in video.iter_video_frames(p, grey=grey):
            n += 1
            yield f
        if n == 0:
            raise EdgeTanError(f"{p.name}: video has zero decodable frames (corrupt file or unsupported codec)")
    elif kind == "dicom":
        yield from dicom.iter_dicom_frames(p, grey=grey)
    else:
        yield from read_video(p).frames

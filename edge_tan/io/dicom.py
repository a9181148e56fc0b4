"""DICOM cine loops (multi-frame ultrasound) -> grey uint8 frames, fps and pixel spacing.

Handles native and RLE/JPEG-compressed pixel data through pydicom's decoders, PALETTE COLOR,
RGB and YBR_FULL/_422 (pydicom converts YBR to RGB; we take BT.601 luminance, which gives back Y),
MONOCHROME1 (inverted) and >8-bit data (rescaled over the stored bit range).
pydicom is imported lazily so the core package does not need it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np

from ..dataset import Sequence
from ..runtime.errors import EdgeTanError, one_line
from ..runtime.frames import to_uint8
from .video import DEFAULT_FPS

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def is_dicom(path: str | Path) -> bool:
    """True when the file carries the DICOM Part-10 'DICM' preamble marker."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _pydicom():
    try:
        import pydicom
        import pydicom.pixels  # noqa: F401  (pydicom >= 3)
    except ImportError:
        raise EdgeTanError("reading DICOM needs pydicom>=3 (pip install pydicom)") from None
    return pydicom


def open_dicom(path: str | Path, defer_size: str | int | None = None):
    """Read the dataset (pixel data stays encoded) and check it can be decoded here.

    `defer_size` (e.g. "1 MB") leaves larger values such as the pixel data on disk until asked for:
    streaming readers decode frame by frame from the file instead."""
    pydicom = _pydicom()
    p = Path(path)
    if not p.is_file():
        raise EdgeTanError(f"DICOM file not found: {p}")
    try:
        ds = pydicom.dcmread(str(p), defer_size=defer_size)
    except Exception as e:  # pydicom raises InvalidDicomError, EOFError, ValueError...
        raise EdgeTanError(f"{p.name}: unreadable DICOM ({one_line(e)})") from None
    if "PixelData" not in ds:
        raise EdgeTanError(f"{p.name}: DICOM has no pixel data (not an image/cine object)")
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None:
        from pydicom.pixels import get_decoder
        try:
            dec = get_decoder(ts)
        except NotImplementedError:
            dec = None
        if dec is None or not dec.is_available:
            raise EdgeTanError(f"{p.name}: unsupported DICOM transfer syntax {ts.name} ({ts}); "
                               "install a pydicom decoder plugin (pylibjpeg or gdcm) for it")
    return ds


def frame_to_grey(arr: np.ndarray, ds) -> np.ndarray:
    """One decoded frame -> (H, W) uint8 luminance; applies the palette, RGB weights, MONOCHROME1 inversion."""
    from pydicom.pixels import apply_color_lut

    pi = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    a = np.asarray(arr)
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(a, ds)
        if rgb.dtype != np.uint8:   # 16-bit LUT entries: keep the top byte
            bits = int(ds.RedPaletteColorLookupTableDescriptor[2]) if "RedPaletteColorLookupTableDescriptor" in ds else 16
            rgb = (rgb.astype(np.float32) / float(2 ** bits - 1) * 255.0)
        return np.clip(rgb.astype(np.float32) @ _LUMA + 0.5, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] in (3, 4):   # RGB (YBR arrives converted to RGB by pydicom)
        a = to_uint8(a)
        return np.clip(a[..., :3].astype(np.float32) @ _LUMA + 0.5, 0, 255).astype(np.uint8)
    if a.dtype != np.uint8:
        a = _scale_mono(a, ds)
    if pi == "MONOCHROME1":
        a = 255 - a
    return np.ascontiguousarray(a)


def _scale_mono(a: np.ndarray, ds) -> np.ndarray:
    """>8-bit grey -> uint8 over the stored bit range (fixed per file, so frames stay comparable)."""
    bits = int(getattr(ds, "BitsStored", 16) or 16)
    if int(getattr(ds, "PixelRepresentation", 0) or 0) == 1:
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2 ** bits - 1
    return np.clip((a.astype(np.float32) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def dicom_fps(ds) -> float:
    """Frame rate from FrameTime (ms), FrameTimeVector, CineRate or RecommendedDisplayFrameRate."""
    def _f(v):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return v if np.isfinite(v) and v > 0 else None

    ft = _f(ds.get("FrameTime"))
    if ft:
        return 1000.0 / ft
    ftv = ds.get("FrameTimeVector")
    if ftv is not None:
        vals = [x for x in (_f(v) for v in list(ftv)[1:]) if x]
        if vals:
            return 1000.0 / float(np.mean(vals))
    for key in ("CineRate", "RecommendedDisplayFrameRate"):
        v = _f(ds.get(key))
        if v:
            return v
    return DEFAULT_FPS


def dicom_spacing_mm(ds) -> float:
    """Horizontal pixel size in mm: ultrasound region PhysicalDeltaX (cm) first, else PixelSpacing."""
    for region in ds.get("SequenceOfUltrasoundRegions", None) or []:
        dx = region.get("PhysicalDeltaX")
        units = region.get("PhysicalUnitsXDirection")
        if dx is not None and float(dx) > 0 and units in (None, 3):   # 3 = cm
            return abs(float(dx)) * 10.0
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        ps = ds.get(key)
        if ps is not None and len(ps) >= 2 and float(ps[1]) > 0:
            return float(ps[1])      # (row spacing, column spacing): x is the column spacing
    return float("nan")


def n_frames(ds) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def iter_dicom_frames(path: str | Path, grey: bool = True) -> Iterator[np.ndarray]:
    """Decode and yield one frame at a time (long cine loops need not fit in memory twice)."""
    from pydicom.pixels import pixel_array

    ds = open_dicom(path)
    with pixel_errors(Path(path).name):
        # One index at a time (pydicom 3.0's iter_pixels miscounts native YBR_FULL_422 frames).
        # raw=False: pydicom converts YBR_FULL/_422 to RGB itself, knowing whether the JPEG decoder
        # already did; palette indices and MONOCHROME1 are left for frame_to_grey.
        for i in range(n_frames(ds)):
            arr = pixel_array(ds, index=i, raw=False)
            yield frame_to_grey(arr, ds) if grey else arr


@contextlib.contextmanager
def pixel_errors(name: str) -> Iterator[None]:
    """Any failure of pydicom's pixel decoders as one EdgeTanError line naming the file."""
    try:
        yield
    except EdgeTanError:
        raise
    except Exception as e:
        raise EdgeTanError(f"{name}: cannot decode DICOM pixel data ({one_line(e)})") from None


def read_dicom(path: str | Path) -> Sequence:
    """Whole DICOM (single- or multi-frame) -> unlabeled Sequence with fps and spacing."""
    p = Path(path)
    ds = open_dicom(p)
    frames = list(iter_dicom_frames(p))
    if not frames:
        raise EdgeTanError(f"{p.name}: DICOM has zero frames")
    if len(frames) != n_frames(ds):
        raise EdgeTanError(f"{p.name}: decoded {len(frames)} frames but NumberOfFrames says {n_frames(ds)}")
    return Sequence(name=p.stem, frames=np.stack(frames), fps=dicom_fps(ds), spacing_mm=dicom_spacing_mm(ds),
                    extra={"source": str(p), "format": "dicom",
                           "photometric": str(ds.get("PhotometricInterpretation", "")),
                           "transfer_syntax": str(ds.file_meta.TransferSyntaxUID.name) if "TransferSyntaxUID" in ds.file_meta else ""})

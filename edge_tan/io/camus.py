"""CAMUS reader: NIfTI half sequences (current release) and the older MetaImage ED/ES layout.

Labels: 0 background, 1 LV endocardium (cavity), 2 myocardium, 3 left atrium. The LV mask is label 1;
landmarks come from the cavity and the LA (see landmarks_from_mask). `Info_{2CH,4CH}.cfg` gives the
1-based ED/ES frames, the frame count and the reference LV EF. Arrays are returned (T, H, W) with the
apex at the top; if a ground truth says otherwise (apex below the annulus) the clip is flipped.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

from ..dataset import Sequence
from ..runtime.errors import EdgeTanError, one_line
from ..runtime.frames import to_uint8
from ..runtime.geometry import landmarks_from_masks

VIEWS = {"2CH": "A2C", "4CH": "A4C"}
LV_LABEL, MYO_LABEL, LA_LABEL = 1, 2, 3

_MET_TYPES = {"MET_UCHAR": np.uint8, "MET_CHAR": np.int8, "MET_USHORT": np.uint16, "MET_SHORT": np.int16,
              "MET_UINT": np.uint32, "MET_INT": np.int32, "MET_ULONG": np.uint64, "MET_LONG": np.int64,
              "MET_FLOAT": np.float32, "MET_DOUBLE": np.float64}


# ---------------------------------------------------------------- file formats
def read_info_cfg(path: str | Path) -> dict:
    """`key: value` lines -> dict (numbers converted); missing file -> {}."""
    p = Path(path)
    if not p.is_file():
        return {}
    out = {}
    for line in p.read_text(errors="replace").splitlines():
        if ":" not in line:
            continue
        k, v = (s.strip() for s in line.split(":", 1))
        try:
            out[k] = int(v) if re.fullmatch(r"[+-]?\d+", v) else float(v)
        except ValueError:
            out[k] = v
    return out


def read_mhd(path: str | Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """MetaImage header + raw data -> (array in (z, y, x) order, ElementSpacing in (x, y, z) order)."""
    p = Path(path)
    if not p.is_file():
        raise EdgeTanError(f"MetaImage header not found: {p}")
    hdr = {}
    for line in p.read_bytes().decode("latin-1").splitlines():
        if "=" in line:
            k, v = (s.strip() for s in line.split("=", 1))
            hdr[k] = v
            if k == "ElementDataFile":   # the header's last line; LOCAL data may follow
                break
    try:
        dims = [int(v) for v in hdr["DimSize"].split()]
        dtype = np.dtype(_MET_TYPES[hdr["ElementType"]])
        data_file = hdr["ElementDataFile"]
    except KeyError as e:
        raise EdgeTanError(f"{p.name}: MetaImage header lacks or has unsupported {e}") from None
    spacing = tuple(float(v) for v in hdr.get("ElementSpacing", hdr.get("ElementSize", "")).split()) or (1.0,) * len(dims)
    msb = hdr.get("BinaryDataByteOrderMSB", hdr.get("ElementByteOrderMSB", "False")).lower() == "true"
    dtype = dtype.newbyteorder(">" if msb else "<")
    n = int(np.prod(dims))
    if data_file == "LOCAL":   # data follows the header line "ElementDataFile = LOCAL"
        blob = p.read_bytes()
        m = re.search(rb"ElementDataFile\s*=\s*LOCAL\r?\n", blob)
        raw = blob[m.end():] if m else b""
    else:
        rp = p.parent / data_file
        if not rp.is_file():
            raise EdgeTanError(f"{p.name}: data file {data_file} not found next to the header")
        raw = rp.read_bytes()
    if hdr.get("CompressedData", "False").lower() == "true":
        try:
            raw = zlib.decompress(raw)
        except zlib.error as e:
            raise EdgeTanError(f"{p.name}: corrupt compressed MetaImage data ({e})") from None
    if len(raw) < n * dtype.itemsize:
        raise EdgeTanError(f"{p.name}: data has {len(raw)} bytes, header needs {n * dtype.itemsize}")
    arr = np.frombuffer(raw[: n * dtype.itemsize], dtype).reshape(dims[::-1])
    return arr.astype(dtype.newbyteorder("=")), spacing


def read_nifti(path: str | Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """NIfTI -> (array (T, H, W) or (1, H, W), zooms (x, y[, t])); nibabel stores (W, H[, T])."""
    try:
        import nibabel as nib
    except ImportError:
        raise EdgeTanError("reading NIfTI needs nibabel (pip install nibabel)") from None
    p = Path(path)
    if not p.is_file():
        raise EdgeTanError(f"NIfTI file not found: {p}")
    try:
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj)
        zooms = tuple(float(z) for z in img.header.get_zooms())
    except Exception as e:
        raise EdgeTanError(f"{p.name}: unreadable NIfTI ({one_line(e)})") from None
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise EdgeTanError(f"{p.name}: expected a 2D image or 2D+time NIfTI, got shape {data.shape}")
    return np.ascontiguousarray(np.transpose(data, (2, 1, 0))), zooms


def _to_frames(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    return to_uint8(a)   # the whole clip's bit depth


def _labels(a: np.ndarray, name: str, shape: tuple) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.shape != shape:
        raise EdgeTanError(f"{name}: label shape {a.shape} does not match the images {shape}")
    return np.rint(a).astype(np.uint8)


# ---------------------------------------------------------------- assembling sequences
def _finish(name: str, frames: np.ndarray, labels: np.ndarray | None, labeled: np.ndarray | None, view: str,
            spacing: float, info: dict, ed: list[int], es: list[int], source: str) -> Sequence:
    """Masks + landmarks from labels, apex-up check, and the Sequence."""
    T = len(frames)
    masks = lms = None
    if labels is not None:
        if labeled is None:
            labeled = np.ones(T, bool)
        masks = (labels == LV_LABEL).astype(np.uint8)
        la = (labels == LA_LABEL).astype(np.uint8)
        lms = landmarks_from_masks(masks, labeled, la)
        ok = np.isfinite(lms[:, 0, 1])
        if ok.any() and np.median(lms[ok, 0, 1] - lms[ok, 1:, 1].mean(1)) > 0:   # apex below the base: flip
            frames, masks = frames[:, ::-1].copy(), masks[:, ::-1].copy()
            lms = landmarks_from_masks(masks, labeled, la[:, ::-1])
    ed = [i for i in ed if 0 <= i < T]
    es = [i for i in es if 0 <= i < T]
    ef = info.get("LVef", info.get("EF", float("nan")))
    return Sequence(name=name, frames=frames, masks=masks, labeled=labeled, landmarks=lms, view=view,
                    fps=_camus_fps(info, T),
                    spacing_mm=spacing, ed=np.array(ed, np.int64), es=np.array(es, np.int64),
                    ef=float(ef) if isinstance(ef, (int, float)) else float("nan"),
                    extra={"source": source, "format": "camus", "info": info})


def _camus_fps(info: dict, T: int) -> float:
    """CAMUS gives no frame rate; half sequences span ED->ES (~0.3 s systole), so estimate from that."""
    fr = info.get("FrameRate")
    if isinstance(fr, (int, float)) and fr > 0:
        return float(fr)
    return float(np.clip(T / 0.3, 10.0, 100.0)) if T > 1 else 30.0


def _split_name(path: Path) -> tuple[str, str]:
    m = re.match(r"(patient\d+)_(2CH|4CH)", path.name, re.IGNORECASE)
    if not m:
        raise EdgeTanError(f"{path.name}: not a CAMUS file name (expected patientXXXX_2CH_... or _4CH_...)")
    return m.group(1), m.group(2).upper()


def read_camus_nifti(path: str | Path, gt_path: str | Path | None = None) -> Sequence:
    """`patientXXXX_{2CH,4CH}_half_sequence.nii.gz` (+ `_gt` when present beside it) -> Sequence."""
    p = Path(path)
    frames, zooms = read_nifti(p)
    frames = _to_frames(frames)
    if gt_path is None:
        stem = p.name[: -len(".nii.gz")] if p.name.endswith(".nii.gz") else p.stem
        cand = p.with_name(stem + "_gt" + p.name[len(stem):])
        gt_path = cand if cand.is_file() else None
    labels = _labels(read_nifti(gt_path)[0], Path(gt_path).name, frames.shape) if gt_path else None
    try:
        patient, view = _split_name(p)
    except EdgeTanError:
        patient, view = p.name.split(".")[0], ""
    info = read_info_cfg(p.parent / f"Info_{view}.cfg") if view else {}
    T = len(frames)
    warning = ""
    if "_half_sequence" in p.name:     # the clip runs ED -> ES
        ed = [int(info["ED"]) - 1] if isinstance(info.get("ED"), int) else [0]
        es = [int(info["ES"]) - 1] if isinstance(info.get("ES"), int) else [T - 1]
        if isinstance(info.get("NbFrame"), int) and info["NbFrame"] != T:
            warning = f"{p.name} has {T} frames but Info_{view}.cfg says NbFrame {info['NbFrame']}: ED/ES = first/last"
            ed, es = [0], [T - 1]
    else:
        ed, es = [], []
    name = f"{patient}_{view}" if view else p.name.split(".")[0]
    seq = _finish(name, frames, labels, None, VIEWS.get(view, ""), zooms[0], info, ed, es, str(p))
    if warning:
        seq.extra["warning"] = warning
    return seq


def read_camus_mhd_view(folder: str | Path, patient: str, view: str) -> Sequence:
    """Older MetaImage layout: ED/ES images (+ `_gt`), using `_sequence.mhd` as the clip when present."""
    d = Path(folder)
    info = read_info_cfg(d / f"Info_{view}.cfg")
    ed_img, sp = read_mhd(d / f"{patient}_{view}_ED.mhd")
    es_img, _ = read_mhd(d / f"{patient}_{view}_ES.mhd")
    ed_img, es_img = _to_frames(ed_img), _to_frames(es_img)
    gts = []
    for ph, img in (("ED", ed_img), ("ES", es_img)):
        g = d / f"{patient}_{view}_{ph}_gt.mhd"
        gts.append(_labels(read_mhd(g)[0], g.name, img.shape) if g.is_file() else None)
    have_gt = all(g is not None for g in gts)
    seq_p = d / f"{patient}_{view}_sequence.mhd"
    ied, ies = info.get("ED"), info.get("ES")
    if seq_p.is_file() and isinstance(ied, int) and isinstance(ies, int):
        frames = _to_frames(read_mhd(seq_p)[0])
        T = len(frames)
        if frames.shape[1:] != ed_img.shape[1:] or not (1 <= ied <= T and 1 <= ies <= T):
            raise EdgeTanError(f"{seq_p.name}: sequence shape/ED/ES disagree with the ED/ES images or Info_{view}.cfg")
        ed, es = [ied - 1], [ies - 1]
        labels = labeled = None
        if have_gt:
            labels = np.zeros(frames.shape, np.uint8)
            labels[ed[0]], labels[es[0]] = gts[0][0], gts[1][0]
            labeled = np.zeros(T, bool)
            labeled[[ed[0], es[0]]] = True
    else:
        frames = np.concatenate([ed_img, es_img])
        ed, es = [0], [1]
        labels = np.concatenate(gts) if have_gt else None
        labeled = None
    return _finish(f"{patient}_{view}", frames, labels, labeled, VIEWS[view], sp[0], info, ed, es,
                   str(d / f"{patient}_{view}_ED.mhd"))


# ---------------------------------------------------------------- dataset walking
def find_patient_dirs(root: str | Path) -> list[Path]:
    """`patientXXXX` folders at the root or up to two levels below (training/, testing/, database_nifti/)."""
    root = Path(root)
    found = set()
    for pattern in ("patient*", "*/patient*", "*/*/patient*"):
        found.update(p for p in root.glob(pattern) if p.is_dir() and re.fullmatch(r"patient\d+", p.name, re.I))
    return sorted(found, key=lambda p: (p.name, str(p)))


def read_camus_patient(folder: str | Path) -> list[Sequence]:
    """Both views of one patient, whichever layout the folder holds (NIfTI preferred)."""
    d = Path(folder)
    patient = d.name
    out = []
    for view in VIEWS:
        nii = d / f"{patient}_{view}_half_sequence.nii.gz"
        if not nii.is_file():
            nii = d / f"{patient}_{view}_half_sequence.nii"
        if nii.is_file():
            out.append(read_camus_nifti(nii))
        elif (d / f"{patient}_{view}_ED.mhd").is_file():
            out.append(read_camus_mhd_view(d, patient, view))
    if not out:
        raise EdgeTanError(f"{d}: no CAMUS images (expected {patient}_2CH_half_sequence.nii.gz or {patient}_2CH_ED.mhd)")
    return out


def official_splits(root: str | Path) -> dict[str, str]:
    """{patient: split} from CAMUS `database_split/subgroup_{training,validation,testing}.txt` if shipped."""
    root = Path(root)
    out = {}
    for d in [root / "database_split", *root.glob("*/database_split")]:
        for fname, split in (("subgroup_training.txt", "train"), ("subgroup_validation.txt", "val"),
                             ("subgroup_testing.txt", "test")):
            f = d / fname
            if f.is_file():
                for line in f.read_text().split():
                    if re.fullmatch(r"patient\d+", line.strip(), re.I):
                        out[line.strip()] = split
        if out:
            break
    return out


def read_mhd_sequence(p: Path) -> Sequence:
    """One CAMUS .mhd/.raw sequence file (with its _gt.mhd labels beside it, when there) -> a Sequence."""
    arr, sp = read_mhd(p)
    frames = _to_frames(arr)
    gt = p.with_name(p.name[:-4] + "_gt.mhd")
    labels = _labels(read_mhd(gt)[0], gt.name, frames.shape) if gt.is_file() else None
    try:
        _, view = _split_name(p)
    except EdgeTanError:
        view = ""
    return _finish(p.name[:-4], frames, labels, None, VIEWS.get(view, ""), sp[0], {}, [], [], str(p))

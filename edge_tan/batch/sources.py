"""What `edge-tan batch SRC` means by SRC: a folder (searched recursively), a glob, a CSV/text manifest
of paths, an EchoNet-Dynamic folder (Videos/ + FileList.csv) or a CAMUS folder -> an ordered clip list.

Listing never opens a clip (a corrupt file is the batch's business, recorded with its error); a
reference EF found beside the clip (EchoNet FileList, an edge-tan manifest, a manifest column) rides
along so the archive table can be audited against it.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime.errors import UsageError
from ..io.dicom import is_dicom

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".wmv", ".mpg", ".mpeg")
OTHER_SUFFIXES = (".dcm", ".dicom", ".dic", ".npz", ".nii", ".nii.gz", ".mhd")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".txt", ".lst")
PATH_COLUMNS = ("path", "file", "filename", "video", "clip", "filepath")
EF_COLUMNS = ("ef", "ef_ref", "ef_percent")
# CAMUS files that are not clips: single ED/ES frames and label volumes
_CAMUS_NOT_CLIP = re.compile(r"^patient\d+_(2CH|4CH)_(ED|ES)(_gt)?$|^patient\d+_.*_gt$", re.I)


@dataclass(frozen=True)
class Clip:
    path: str                 # where to read it
    name: str                 # how the table names it (path relative to SRC when SRC is a folder)
    ef_ref: float = math.nan  # reference EF from the source's own list, when it has one
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def _stem(p: Path) -> str:
    n = p.name
    for s in (".nii.gz",) + OTHER_SUFFIXES + VIDEO_SUFFIXES:
        if n.lower().endswith(s):
            return n[: -len(s)]
    return p.stem


def is_clip_file(p: Path) -> bool:
    name = p.name.lower()
    if name.startswith("."):
        return False
    if name.endswith(VIDEO_SUFFIXES + OTHER_SUFFIXES):
        return not _CAMUS_NOT_CLIP.match(_stem(p))
    return "." not in name and is_dicom(p)        # DICOM files often carry no extension


def _float(v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _scan(root: Path) -> list[Clip]:
    refs = _dataset_refs(root)
    clips = []
    for p in _unique_files(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file() or not is_clip_file(p):
            continue
        clips.append(Clip(str(p), rel.as_posix(), refs.get(rel.as_posix(), math.nan)))
    return clips


def _dataset_refs(root: Path) -> dict[str, float]:
    """Reference EF per file from an edge-tan dataset manifest.json, when SRC is one."""
    mf = root / "manifest.json"
    try:
        seqs = json.loads(mf.read_text())["sequences"] if mf.is_file() else []
        return {f"{e['name']}.npz": _float(e.get("ef")) for e in seqs}
    except (ValueError, KeyError, TypeError):
        return {}


def _echonet(root: Path) -> list[Clip]:
    from ..io.echonet import read_filelist
    return [Clip(str(root / "Videos" / r["FileName"]), r["FileName"], _float(r.get("EF")),
                 {"split": r.get("Split", "")}) for r in read_filelist(root)]


def _delimiter(header: str) -> str:
    """',' unless the header line names a path column split by ';' or a tab (European Excel writes ';')."""
    for d in (",", ";", "\t"):
        cols = [c.strip().lower() for c in header.split(d)]
        if len(cols) > 1 and any(c in PATH_COLUMNS for c in cols):
            return d
    return ","


def _unique_files(paths) -> list[Path]:
    """Files once each, by their real path: a symlink loop under a `**` glob lists the same files over
    and over (issue 21: 615 clips for 15 files). The first (shortest sorted) name of a file wins."""
    seen, out = set(), []
    for h in sorted(paths, key=lambda q: (len(Path(q).parts), str(q))):
        h = Path(h)
        try:
            real = h.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if real in seen:
            continue
        seen.add(real)
        out.append(h)
    return sorted(out)


def _manifest(path: Path) -> list[Clip]:
    """CSV/TSV with a path column (path, file, filename, video, clip) and optionally an EF column;
    or a plain list, one path per line. Relative paths are relative to the manifest's folder."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")   # a BOM (Excel's UTF-8 CSV) is not a column name
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise UsageError(f"{path}: manifest lists no clips")
    delim = "\t" if path.suffix.lower() == ".tsv" else _delimiter(lines[0])
    header = [h.strip().lower() for h in next(csv.reader([lines[0]], delimiter=delim))]
    col = next((c for c in PATH_COLUMNS if c in header), None)
    out = []
    if col is None:
        if len(header) > 1:
            raise UsageError(f"{path}: no path column; name one of {', '.join(PATH_COLUMNS)}")
        rows = [{"path": ln.strip()} for ln in lines]
        col = "path"
    else:
        rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k}
                for r in csv.DictReader(lines, delimiter=delim)]
    efc = next((c for c in EF_COLUMNS if c in (rows[0] if rows else {})), None)
    for r in rows:
        s = r.get(col, "")
        if not s:
            continue
        p = Path(s).expanduser()
        if not p.is_absolute():
            p = path.parent / p
        ef = (r.get(efc) or "").replace(",", ".") if (efc and delim == ";") else r.get(efc)   # ';' goes with '55,5'
        out.append(Clip(str(p), s, _float(ef) if efc else math.nan))
    return out


def find_clips(src: str | Path, limit: int = 0) -> list[Clip]:
    """The clips SRC names, in a stable order; UsageError when SRC names none."""
    s = str(src)
    p = Path(s).expanduser()
    if p.is_dir():
        if (p / "FileList.csv").is_file() and (p / "Videos").is_dir():
            clips = _echonet(p)
        else:
            clips = _scan(p)
    elif p.is_file():
        clips = _manifest(p) if p.name.lower().endswith(MANIFEST_SUFFIXES) else [Clip(str(p), p.name)]
    elif glob.has_magic(s):
        hits = _unique_files(h for h in glob.glob(s, recursive=True) if Path(h).is_file())
        clips = [Clip(str(h), str(h)) for h in hits if is_clip_file(h)]
    else:
        raise UsageError(f"{s}: no such folder, file or glob")
    if limit and limit > 0:
        clips = clips[:limit]
    if not clips:
        raise UsageError(f"{s}: no clips found (video, DICOM, .npz, NIfTI or .mhd files)")
    return clips

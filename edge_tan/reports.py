"""Clinical reports as ground truth: read an EF CSV (EchoNet-Dynamic FileList.csv style) and match it
to clip files on disk.

Why: most sites have EF from their reports, not tracings. Columns (case-insensitive): a file name
(`FileName`, `file`, `clip`, `name`), `EF`, and optionally ED/ES frame indices (`ED`/`ES`,
`ED_frame`/`ES_frame`, `EDFrame`/`ESFrame`). EchoNet keeps ED/ES frames in VolumeTracings.csv
(`FileName, X1, Y1, X2, Y2, Frame`: two traced frames per clip); `read_tracings` takes the traced
frame with the longer summed chords as ED, the other as ES. A traced-areas CSV (`FileName, ED_frame,
ES_frame, ED_area_px, ES_area_px`: the frames an expert traced and the traced LV area in pixels) gives
the frames and the areas, so `eval` can also score the fractional area change at the expert's frames and
the size of the traced LV. File names match with or without their extension (EchoNet's FileList names
lack ".avi").
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from .runtime.errors import EdgeTanError

CLIP_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".dcm", ".dicom", ".nii.gz", ".nii", ".npz")
NAME_COLS = ("filename", "file_name", "file", "clip", "name")
EF_COLS = ("ef", "ef_percent", "lvef")
ED_COLS = ("ed", "ed_frame", "edframe", "ed_index")
ES_COLS = ("es", "es_frame", "esframe", "es_index")


@dataclass
class Report:
    name: str            # file name without extension
    ef: float
    ed: int | None = None
    es: int | None = None
    line: int = 0


def clip_key(name: str) -> str:
    """File name without a known clip extension (and without folders), lower-cased for matching."""
    n = Path(str(name).strip()).name
    low = n.lower()
    for s in CLIP_SUFFIXES:
        if low.endswith(s):
            return low[: -len(s)]
    return low


def _open_rows(path: Path, what: str = "reports") -> tuple[list[str], list[dict], dict]:
    if not path.is_file():
        raise EdgeTanError(f"{what} CSV not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise EdgeTanError(f"{path}: unreadable CSV ({e})") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rd = csv.DictReader(text.splitlines(), dialect=dialect)
    cols = [c for c in (rd.fieldnames or []) if c is not None]
    lower = {c.strip().lower(): c for c in cols}
    return cols, list(rd), lower


def _col(lower: dict, names: tuple) -> str | None:
    return next((lower[n] for n in names if n in lower), None)


def _frame(v, path, line, col) -> int | None:
    if v is None or str(v).strip() == "":
        return None
    try:
        f = float(v)
    except ValueError:
        raise EdgeTanError(f"{path}:{line}: {col} {v!r} is not a frame index") from None
    if not math.isfinite(f) or f < 0 or f != int(f):
        raise EdgeTanError(f"{path}:{line}: {col} {v!r} is not a frame index")
    return int(f)


def read_reports(path: str | Path) -> dict[str, Report]:
    """{clip key: Report}; one clear EdgeTanError for a missing column, a non-numeric EF, a duplicate."""
    path = Path(path)
    cols, rows, lower = _open_rows(path)
    name_c, ef_c = _col(lower, NAME_COLS), _col(lower, EF_COLS)
    if name_c is None or ef_c is None:
        miss = " and ".join(w for w, c in (("a FileName", name_c), ("an EF", ef_c)) if c is None)
        raise EdgeTanError(f"{path}: no {miss} column (columns: {', '.join(cols) or 'none'})")
    ed_c, es_c = _col(lower, ED_COLS), _col(lower, ES_COLS)
    out: dict[str, Report] = {}
    for i, row in enumerate(rows, start=2):
        name = (row.get(name_c) or "").strip()
        if not name:
            continue
        raw = (row.get(ef_c) or "").strip()
        try:
            ef = float(raw)
        except ValueError:
            raise EdgeTanError(f"{path}:{i}: EF {raw!r} for {name} is not a number") from None
        if not math.isfinite(ef) or not 0.0 <= ef <= 100.0:
            raise EdgeTanError(f"{path}:{i}: EF {raw!r} for {name} is not a percentage in 0..100")
        key = clip_key(name)
        if key in out:
            raise EdgeTanError(f"{path}:{i}: {name} listed twice (first on line {out[key].line})")
        out[key] = Report(name=Path(name).name, ef=ef, line=i,
                          ed=_frame(row.get(ed_c), path, i, ed_c) if ed_c else None,
                          es=_frame(row.get(es_c), path, i, es_c) if es_c else None)
    if not out:
        raise EdgeTanError(f"{path}: no report rows")
    return out


@dataclass(frozen=True)
class Traced:
    """An expert's traced frames, and the traced LV areas (px) where the CSV gives them."""
    ed: int
    es: int
    ed_area: float | None = None
    es_area: float | None = None


AREA_COLS = ("filename", "ed_frame", "es_frame", "ed_area_px", "es_area_px")


def _read_traced_areas(path: Path, rows: list[dict], lower: dict) -> dict[str, Traced]:
    out = {}
    for i, row in enumerate(rows, start=2):
        name = (row.get(lower["filename"]) or "").strip()
        if not name:
            continue
        ed, es = (_frame(row.get(lower[k]), path, i, k) for k in ("ed_frame", "es_frame"))
        try:
            ea, sa = (float(row[lower[k]]) for k in ("ed_area_px", "es_area_px"))
        except (TypeError, ValueError):
            raise EdgeTanError(f"{path}:{i}: traced areas of {name} are not numbers") from None
        if ed is None or es is None or not (math.isfinite(ea) and math.isfinite(sa) and ea > 0 and sa > 0):
            raise EdgeTanError(f"{path}:{i}: {name} needs ED/ES frames and positive traced areas")
        out[clip_key(name)] = Traced(ed, es, ea, sa)
    return out


def read_tracings(path: str | Path) -> dict[str, Traced]:
    """{clip key: Traced} from EchoNet's VolumeTracings.csv (frames only: the two traced frames, the one
    with the longer summed chords is ED) or from a traced-areas CSV (frames and areas)."""
    path = Path(path)
    cols, rows, lower = _open_rows(path, "tracings")
    if set(AREA_COLS) <= set(lower):
        return _read_traced_areas(path, rows, lower)
    need = {"filename", "x1", "y1", "x2", "y2", "frame"}
    if not need <= set(lower):
        raise EdgeTanError(f"{path}: neither a VolumeTracings CSV (needs {', '.join(sorted(need))}) nor a traced-areas "
                           f"CSV (needs {', '.join(AREA_COLS)}); has {', '.join(cols)}")
    chords: dict[str, dict[int, float]] = {}
    for i, row in enumerate(rows, start=2):
        try:
            x1, y1, x2, y2 = (float(row[lower[k]]) for k in ("x1", "y1", "x2", "y2"))
            fr = _frame(row[lower["frame"]], path, i, "Frame")
        except (TypeError, ValueError):
            raise EdgeTanError(f"{path}:{i}: non-numeric tracing coordinates") from None
        if fr is None:
            continue
        d = chords.setdefault(clip_key(row[lower["filename"]]), {})
        d[fr] = d.get(fr, 0.0) + math.hypot(x2 - x1, y2 - y1)
    out = {}
    for k, d in chords.items():
        if len(d) >= 2:
            fr = sorted(d, key=d.get, reverse=True)
            out[k] = Traced(fr[0], fr[-1])   # most chord length = largest cavity = ED
    return out


def find_clips(folder: str | Path) -> dict[str, Path]:
    """{clip key: path} for the clip files in a folder (recursively); DICOM files may lack an extension."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgeTanError(f"clip folder not found: {folder}")
    out: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        low = p.name.lower()
        if any(low.endswith(s) for s in CLIP_SUFFIXES) or ("." not in p.name and _is_dicom(p)):
            out.setdefault(clip_key(p.name), p)
    return out


def _is_dicom(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def match(reports: dict[str, Report], clips: dict[str, Path]) -> tuple[list[tuple[Report, Path]], list[str], list[str]]:
    """(matched (report, path) pairs, report names with no clip on disk, clip files with no report row)."""
    matched = [(r, clips[k]) for k, r in reports.items() if k in clips]
    missing = [r.name for k, r in reports.items() if k not in clips]
    unreported = [str(p) for k, p in clips.items() if k not in reports]
    return matched, missing, unreported

"""EchoNet-Dynamic reader: FileList.csv + VolumeTracings.csv + Videos/*.avi (112x112 A4C clips).

Each traced frame has rows (X1, Y1, X2, Y2): the first is the long axis, the rest are chords across the
cavity. As in EchoNet's own code, the mask is the polygon concat((X1, Y1)[1:], reversed((X2, Y2)[1:])).
The traced frame with the larger area is ED, the other ES; untraced frames are unlabeled.
"""

from __future__ import annotations

import csv
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np

from ..dataset import Sequence
from ..runtime.errors import EdgeTanError
from .video import read_video_file

FILELIST_COLUMNS = ("FileName", "EF", "FPS", "Split")
TRACING_COLUMNS = ("FileName", "X1", "Y1", "X2", "Y2", "Frame")


def _avi_name(name: str) -> str:
    name = name.strip()
    return name if name.lower().endswith(".avi") else name + ".avi"


def _read_csv(path: Path, needed: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        raise EdgeTanError(f"EchoNet {path.name} not found in {path.parent}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = set(rows[0].keys()) if rows else set()
    missing = [c for c in needed if c not in cols]
    if missing:
        raise EdgeTanError(f"{path}: missing columns {missing} (expected the EchoNet-Dynamic {path.name})")
    return rows


def read_filelist(root: str | Path) -> list[dict]:
    """FileList.csv rows with FileName normalised to '<name>.avi'."""
    rows = _read_csv(Path(root) / "FileList.csv", FILELIST_COLUMNS)
    for r in rows:
        r["FileName"] = _avi_name(r["FileName"])
    return rows


def read_tracings(root: str | Path) -> dict[str, "OrderedDict[int, np.ndarray]"]:
    """{'<name>.avi': {frame: (K, 4) float64 rows in file order}} (first row = long axis)."""
    rows = _read_csv(Path(root) / "VolumeTracings.csv", TRACING_COLUMNS)
    acc: dict[str, OrderedDict] = {}
    for r in rows:
        try:
            frame = int(float(r["Frame"]))
            vals = [float(r[k]) for k in ("X1", "Y1", "X2", "Y2")]
        except (TypeError, ValueError):
            raise EdgeTanError(f"VolumeTracings.csv: bad row {r}") from None
        acc.setdefault(_avi_name(r["FileName"]), OrderedDict()).setdefault(frame, []).append(vals)
    return {k: OrderedDict((f, np.asarray(v, np.float64)) for f, v in d.items()) for k, d in acc.items()}


def tracing_polygon(rows: np.ndarray) -> np.ndarray:
    """(N, 2) cavity polygon from one frame's tracing rows (EchoNet's construction)."""
    rows = np.asarray(rows, np.float64)
    if len(rows) < 3:
        raise ValueError("a tracing needs the long axis plus at least two chords")
    return np.concatenate([rows[1:, 0:2], rows[1:, 2:4][::-1]])


def polygon_mask(poly: np.ndarray, hw: tuple[int, int], round_vertices: bool = True) -> np.ndarray:
    """uint8 {0,1} mask of the pixels whose centre is inside the polygon (even-odd, half-open rule).

    Same semantics as skimage.draw.polygon, which EchoNet uses on vertices rounded with np.rint;
    (cv2.fillPoly also fills pixels the border merely touches, ~0.5 px larger all round).
    """
    H, W = hw
    p = np.asarray(poly, np.float64).reshape(-1, 2)
    if round_vertices:
        p = np.rint(p)
    m = np.zeros((H, W), np.uint8)
    if len(p) < 3:
        return m
    q = np.roll(p, -1, 0)
    ys = np.arange(H, dtype=np.float64)[:, None]
    y0, y1, x0, x1 = p[:, 1], q[:, 1], p[:, 0], q[:, 0]
    cross = ((y0 <= ys) & (ys < y1)) | ((y1 <= ys) & (ys < y0))
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = np.where(cross, x0 + (ys - y0) * (x1 - x0) / (y1 - y0), np.inf)
    xc.sort(axis=1)
    for r in np.flatnonzero(cross.any(1)):
        xs = xc[r][np.isfinite(xc[r])]
        for a, b in zip(xs[0::2], xs[1::2]):
            c0, c1 = max(int(np.ceil(a)), 0), min(int(np.ceil(b)), W)
            if c1 > c0:
                m[r, c0:c1] = 1
    return m


def tracing_landmarks(rows: np.ndarray) -> np.ndarray:
    """(3, 2) apex, annulus_left, annulus_right from the tracing itself.

    The annulus is the most basal chord: of the two end chords along the long axis, the longer one
    (the apical end narrows to a point). The apex is the long-axis end farther from that chord.
    """
    rows = np.asarray(rows, np.float64)
    a, b = rows[0, 0:2], rows[0, 2:4]
    chords = rows[1:]
    mids = (chords[:, 0:2] + chords[:, 2:4]) / 2
    axis = (b - a) / max(np.linalg.norm(b - a), 1e-9)
    order = np.argsort((mids - a) @ axis)
    first, last = chords[order[0]], chords[order[-1]]
    length = lambda c: np.linalg.norm(c[0:2] - c[2:4])  # noqa: E731
    basal = first if length(first) >= length(last) else last
    bmid = (basal[0:2] + basal[2:4]) / 2
    apex = a if np.linalg.norm(a - bmid) >= np.linalg.norm(b - bmid) else b
    p, q = basal[0:2], basal[2:4]
    left, right = (p, q) if p[0] <= q[0] else (q, p)
    return np.stack([apex, left, right]).astype(np.float32)


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def read_echonet_video(root: str | Path, row: dict, tracings: dict | None = None) -> Sequence:
    """One FileList row -> Sequence with masks/landmarks at the traced frames (ED = larger area)."""
    root = Path(root)
    fname = _avi_name(row["FileName"])
    seq = read_video_file(root / "Videos" / fname)
    T, H, W = seq.frames.shape
    masks = np.zeros((T, H, W), np.uint8)
    lms = np.full((T, 3, 2), np.nan, np.float32)
    labeled = np.zeros(T, bool)
    areas, skipped = {}, []
    for frame, rows in (tracings or {}).get(fname, {}).items():
        if not 0 <= frame < T or len(rows) < 3:
            skipped.append(frame)
            continue
        poly = tracing_polygon(rows)
        masks[frame] = polygon_mask(poly, (H, W))
        lms[frame] = tracing_landmarks(rows)
        labeled[frame] = True
        areas[frame] = _polygon_area(poly)
    ed = es = []
    if areas:
        ranked = sorted(areas, key=areas.get)
        ed, es = [ranked[-1]], ([ranked[0]] if len(ranked) > 1 else [])
    try:
        fps = float(row.get("FPS") or seq.fps)
    except ValueError:
        fps = seq.fps
    try:
        ef = float(row.get("EF", "nan"))
    except ValueError:
        ef = float("nan")
    return Sequence(name=Path(fname).stem, frames=seq.frames, masks=masks, labeled=labeled, landmarks=lms,
                    view="A4C", fps=fps if fps > 0 else seq.fps, spacing_mm=float("nan"), ed=ed, es=es, ef=ef,
                    extra={"source": str(root / "Videos" / fname), "format": "echonet",
                           "split": str(row.get("Split", "")).strip().lower(), "skipped_frames": skipped})


def echonet_split(row: dict) -> str:
    s = str(row.get("Split", "")).strip().lower()
    return {"train": "train", "val": "val", "validation": "val", "test": "test"}.get(s, "")


def iter_echonet(root: str | Path, limit: int = 0) -> Iterator[tuple[dict, Sequence]]:
    """Yield (FileList row, Sequence) for every listed video that exists under Videos/."""
    root = Path(root)
    rows = read_filelist(root)
    tracings = read_tracings(root) if (root / "VolumeTracings.csv").is_file() else {}
    n = 0
    for row in rows:
        if limit and n >= limit:
            break
        if not (root / "Videos" / row["FileName"]).is_file():
            continue
        yield row, read_echonet_video(root, row, tracings)
        n += 1

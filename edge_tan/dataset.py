"""The dataset format every edge-tan tool reads and writes (names are a contract: keep them exact).

A dataset is a folder of `<name>.npz`, one per sequence, plus `manifest.json`
(`{"sequences": [{"name", "view", "frames", "split"}], ...}`). npz keys:
frames (T,H,W) uint8; masks (T,H,W) uint8 {0,1}; labeled (T,) bool; landmarks (T,3,2) float32
(x, y px; apex, annulus_left, annulus_right); view str (A2C|A4C); fps float; spacing_mm float;
ed, es int arrays; ef float (NaN if unknown).
"""

from __future__ import annotations

import math

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import VIEW_NAMES
from .runtime.atomic import atomic_path, write_text
from .runtime.errors import EdgeTanError

SPLITS = ("train", "val", "test")


@dataclass
class Sequence:
    name: str
    frames: np.ndarray                 # (T, H, W) uint8
    masks: np.ndarray | None = None    # (T, H, W) uint8 {0,1}
    labeled: np.ndarray | None = None  # (T,) bool
    landmarks: np.ndarray | None = None  # (T, 3, 2) float32
    view: str = ""
    fps: float = 30.0
    spacing_mm: float = float("nan")
    ed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    es: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ef: float = float("nan")
    extra: dict = field(default_factory=dict)   # reader-specific info (not saved)

    def __post_init__(self):
        self.frames = np.asarray(self.frames)
        T = len(self.frames)
        if self.labeled is None:
            self.labeled = np.zeros(T, bool) if self.masks is None else np.ones(T, bool)
        self.ed = np.asarray(self.ed, np.int64).reshape(-1)
        self.es = np.asarray(self.es, np.int64).reshape(-1)
        sp = float(self.spacing_mm)
        if not (math.isfinite(sp) and sp > 0):   # 0, negative or inf is no spacing: areas stay in px, never negative mm
            self.spacing_mm = float("nan")

    @property
    def n_frames(self) -> int:
        return int(len(self.frames))

    def validate(self) -> "Sequence":
        """Raise one clear EdgeTanError if shapes or dtypes break the format."""
        f = self.frames
        if f.ndim != 3 or f.dtype != np.uint8:
            raise EdgeTanError(f"{self.name}: frames must be (T,H,W) uint8, got {f.shape} {f.dtype}")
        T, H, W = f.shape
        if T == 0:
            raise EdgeTanError(f"{self.name}: sequence has zero frames")
        if self.masks is not None:
            m = np.asarray(self.masks)
            if m.shape != f.shape:
                raise EdgeTanError(f"{self.name}: masks shape {m.shape} does not match frames {f.shape}")
            if m.dtype != np.uint8 or (m.size and m.max() > 1):
                raise EdgeTanError(f"{self.name}: masks must be uint8 in {{0,1}}")
        if self.landmarks is not None and np.asarray(self.landmarks).shape != (T, 3, 2):
            raise EdgeTanError(f"{self.name}: landmarks must be ({T},3,2), got {np.asarray(self.landmarks).shape}")
        if np.asarray(self.labeled).shape != (T,):
            raise EdgeTanError(f"{self.name}: labeled must be ({T},), got {np.asarray(self.labeled).shape}")
        if self.view and self.view not in VIEW_NAMES:
            raise EdgeTanError(f"{self.name}: view must be one of {VIEW_NAMES}, got {self.view!r}")
        for k in ("ed", "es"):
            idx = getattr(self, k)
            if idx.size and (idx.min() < 0 or idx.max() >= T):
                raise EdgeTanError(f"{self.name}: {k} index out of range 0..{T - 1}")
        return self


def save_sequence(seq: Sequence, path: str | Path) -> None:
    """Write one sequence npz atomically (compressed: phantom frames compress ~5x)."""
    seq.validate()
    T, H, W = seq.frames.shape
    masks = seq.masks if seq.masks is not None else np.zeros((T, H, W), np.uint8)
    lms = seq.landmarks if seq.landmarks is not None else np.full((T, 3, 2), np.nan, np.float32)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp, frames=seq.frames.astype(np.uint8), masks=masks.astype(np.uint8),
            labeled=np.asarray(seq.labeled, bool), landmarks=np.asarray(lms, np.float32),
            view=np.array(seq.view), fps=np.float64(seq.fps), spacing_mm=np.float64(seq.spacing_mm),
            ed=seq.ed.astype(np.int64), es=seq.es.astype(np.int64), ef=np.float64(seq.ef),
        )


def load_sequence(path: str | Path) -> Sequence:
    path = Path(path)
    if not path.is_file():
        raise EdgeTanError(f"sequence file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"frames", "masks", "labeled", "landmarks", "view"} - set(z.files)
            if missing:
                raise EdgeTanError(f"{path.name}: not an edge-tan sequence (missing keys {sorted(missing)})")
            seq = Sequence(
                name=path.stem, frames=z["frames"], masks=z["masks"], labeled=z["labeled"],
                landmarks=z["landmarks"], view=str(z["view"]),
                fps=float(z["fps"]) if "fps" in z.files else 30.0,
                spacing_mm=float(z["spacing_mm"]) if "spacing_mm" in z.files else float("nan"),
                ed=z["ed"] if "ed" in z.files else [], es=z["es"] if "es" in z.files else [],
                ef=float(z["ef"]) if "ef" in z.files else float("nan"),
            )
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise EdgeTanError(f"{path.name}: unreadable sequence file ({e})") from None
    return seq.validate()


def write_manifest(root: str | Path, entries: list[dict], **info) -> None:
    """entries: [{"name", "view", "frames", "split"}]; extra keyword info is stored alongside."""
    for e in entries:
        if e.get("split") not in SPLITS:
            raise EdgeTanError(f"manifest entry {e.get('name')!r} has split {e.get('split')!r}, not in {SPLITS}")
    write_text(Path(root) / "manifest.json", json.dumps({"format": "edge-tan-dataset/1", **info,
                                                         "sequences": entries}, indent=1))


def read_manifest(root: str | Path) -> dict:
    root = Path(root)
    if not root.is_dir():
        raise EdgeTanError(f"dataset folder not found: {root}")
    mf = root / "manifest.json"
    if not mf.is_file():
        raise EdgeTanError(f"{root} has no manifest.json: not an edge-tan dataset (make one with `edge-tan synth` or `edge-tan convert`)")
    try:
        man = json.loads(mf.read_text())
        seqs = man["sequences"]
        assert isinstance(seqs, list)
    except (json.JSONDecodeError, KeyError, AssertionError, TypeError):
        raise EdgeTanError(f"{mf}: corrupt manifest (expected JSON with a 'sequences' list)") from None
    return man


def list_split(root: str | Path, split: str | None) -> list[Path]:
    """Paths of the sequences in one split (all splits when `split` is None)."""
    root = Path(root)
    man = read_manifest(root)
    out = []
    for e in man["sequences"]:
        if split is None or e.get("split") == split:
            p = root / f"{e['name']}.npz"
            if not p.is_file():
                raise EdgeTanError(f"manifest lists {e['name']!r} but {p.name} is missing in {root}")
            out.append(p)
    return out


def split_for(index: int, n: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> str:
    """Deterministic split by sequence position: first 70 % train, next 15 % val, rest test."""
    a = round(n * fractions[0])
    b = a + max(1, round(n * fractions[1])) if n >= 3 else a
    if n >= 3:
        a = min(a, n - 2)
        b = min(max(b, a + 1), n - 1)
    return "train" if index < a else ("val" if index < b else "test")

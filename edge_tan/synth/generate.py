"""`edge-tan synth`: many phantom sequences in parallel into one dataset folder (npz + manifest + montage).

The folder is built in a hidden temp dir beside `out_dir` and renamed into place at the end, so a
crash never leaves a half-written dataset. Sequence i uses seed (seed, i) and view views[i % len],
so a dataset is reproducible whatever the worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import cv2
import numpy as np

from .. import VIEW_NAMES
from ..runtime.atomic import atomic_dir, atomic_path, write_bytes
from ..dataset import save_sequence, split_for, write_manifest
from ..runtime.errors import EdgeTanError
from . import GENERATOR_VERSION
from .montage import build_montage, montage_rows
from .params import FAMILIES, OVERRIDES
from .render import generate_sequence

__all__ = ["generate_dataset", "generate_sequence", "sequence_seed"]

MONTAGE_ROWS = 8


def sequence_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def write_avi(frames: np.ndarray, path: Path, fps: float) -> None:
    """MJPG .avi (colour container for player compatibility) written atomically."""
    T, H, W = frames.shape
    with atomic_path(path, suffix=".avi") as tmp:
        vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (W, H), True)
        if not vw.isOpened():
            raise EdgeTanError("OpenCV cannot write MJPG .avi files here (no video writer backend)")
        for f in frames:
            vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
        vw.release()


def _job(args):
    index, seed, view, root, avi, want_rows, overrides, family = args
    cv2.setNumThreads(1)
    name = f"{'synth' if family == 'default' else family}_{index:05d}_{view.lower()}"
    seq = generate_sequence(sequence_seed(seed, index), view, name=name, family=family, **overrides)
    save_sequence(seq, Path(root) / f"{name}.npz")
    if avi:
        write_avi(seq.frames, Path(root) / f"{name}.avi", seq.fps)
    row = montage_rows(seq) if want_rows else None
    info = {"name": name, "view": view, "frames": seq.n_frames, "fps": round(seq.fps, 3),
            "size": [int(seq.frames.shape[1]), int(seq.frames.shape[2])], "ef": round(float(seq.ef), 2),
            "spacing_mm": round(float(seq.spacing_mm), 5)}
    return index, info, row


def _check_args(out_dir, n, views, workers):
    if int(n) < 1:
        raise EdgeTanError(f"--n must be at least 1, got {n}")
    views = list(views or VIEW_NAMES)
    bad = [v for v in views if v not in VIEW_NAMES]
    if bad:
        raise EdgeTanError(f"unknown view(s) {', '.join(map(repr, bad))}: choose from {', '.join(VIEW_NAMES)}")
    if int(workers) < 0:
        raise EdgeTanError(f"--workers must be >= 0, got {workers}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise EdgeTanError(f"{out} exists and is not an edge-tan dataset: refusing to overwrite it")
    return out, views


def generate_dataset(out_dir, n: int = 20, seed: int = 0, views=("A2C", "A4C"), avi: bool = False,
                     workers: int = 0, progress: bool = True, family: str = "default", **overrides) -> Path:
    """Write n phantom sequences + manifest.json + montage.png into out_dir (replaced atomically).

    `overrides` (n_frames, out_size, ...) go to every generate_sequence call (tests, quick sets).
    `family="foreign"` writes the held-out test domain (never train on it).
    """
    out, views = _check_args(out_dir, n, views, workers)
    if family not in FAMILIES:
        raise EdgeTanError(f"unknown phantom family {family!r}: choose from {', '.join(FAMILIES)}")
    bad = sorted(set(overrides) - set(OVERRIDES))
    if bad:
        raise EdgeTanError(f"unknown phantom override(s) {bad}; known: {', '.join(OVERRIDES)}")
    n = int(n)
    nproc = min(int(workers) or (os.cpu_count() or 1), n)
    with atomic_dir(out) as tmp:
        tmp.chmod(0o755)   # mkdtemp makes it private; a dataset folder is meant to be shared
        jobs = [(i, int(seed), views[i % len(views)], str(tmp), bool(avi), i < MONTAGE_ROWS, overrides, family)
                for i in range(n)]
        infos, rows = {}, {}
        for i, info, row in _run(jobs, nproc, progress):
            infos[i] = info
            if row is not None:
                rows[i] = row
        mont = build_montage([rows[i] for i in sorted(rows)])
        ok, buf = cv2.imencode(".png", mont)
        write_bytes(tmp / "montage.png", buf.tobytes())
        entries = [dict(infos[i], split=split_for(i, n)) for i in range(n)]
        write_manifest(tmp, entries, generator=GENERATOR_VERSION, seed=int(seed), n=n, views=views, family=family,
                       ef_method="single-plane area-length (8A^2/3piL) on the GT masks at the ED/ES frames",
                       montage="montage.png")
    return out


def _run(jobs, nproc, progress):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    cols = (TextColumn("[bold]synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*cols, disable=not progress, transient=False) as bar:
        task = bar.add_task("sequences", total=len(jobs))
        if nproc <= 1:
            for j in jobs:
                yield _job(j)
                bar.advance(task)
            return
        # spawn, not fork: forking a process whose OpenCV thread pool is live deadlocks the children
        ctx = mp.get_context("spawn")
        with ctx.Pool(nproc) as pool:
            for res in pool.imap_unordered(_job, jobs):
                yield res
                bar.advance(task)

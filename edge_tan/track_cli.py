"""`edge-tan track`: read a clip, track it, write overlay / results.json / masks.npz / CSV."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .runtime.clinical import clip_clinical
from .runtime.qc import assess, ef_text, mark_clinical
from .runtime.errors import EdgeTanError, UsageError
from .io.shortfall import mark_shortfall
from .runtime.results import results_dict, stack_masks, write_csv, write_masks_npz, write_results_json
from .runtime.tracker import FrameResult, Tracker


def check_writable(path: Path, flag: str) -> None:
    """Fail before tracking, not after, when an output cannot be written where it was asked.

    Probes the nearest existing folder (the writer creates missing ones) with a real temp file:
    permission bits alone do not say whether a place is writable (root, read-only mounts, /proc).
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edge-tan-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot write in {folder} ({e.strerror or e})") from None


def track_frames(tracker: Tracker, frames, quiet: bool = False, label: str = "tracking") -> list[FrameResult]:
    """Track with a rich progress bar on long clips."""
    n = len(frames)
    if quiet or n < 50:
        return tracker.track(frames)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as pb:
        task = pb.add_task(label, total=n)
        return tracker.track(frames, progress=lambda: pb.advance(task))


def run_track(video: Path, model: str | None, backend: str, precision: str, out: Path | None,
              json_out: Path | None, masks: Path | None, csv: Path | None, biplane: Path | None,
              live: int | None, quiet: bool) -> dict:
    if live is not None:
        from .live import run_live
        return run_live(live, model=model, backend=backend, precision=precision)
    if out is not None and out.suffix.lower() not in (".mp4", ".avi", ".mkv"):
        raise UsageError(f"--out must end in .mp4, .avi or .mkv, got {out.name}")
    for flag, path in (("--out", out), ("--json", json_out), ("--masks", masks), ("--csv", csv)):
        if path is not None:
            check_writable(path, flag)
    from .io.read import read_video
    seq = read_video(video)
    if seq.n_frames == 0:
        raise EdgeTanError(f"{video}: no frames")
    other = read_video(biplane) if biplane is not None else None
    from .targets.opener import open_model   # backends live outside the core: imported only now
    runner = open_model(model, backend, precision)
    try:
        tracker = Tracker(runner)
        t0 = time.perf_counter()
        tracked = track_frames(tracker, list(seq.frames), quiet)
        wall = time.perf_counter() - t0
        other_results = track_frames(tracker, list(other.frames), quiet, "biplane") if other is not None else None
        mask_stack = stack_masks(tracked)   # once: clinical measures and masks.npz share it
        clinical = clip_clinical(tracked, seq.spacing_mm, seq.fps, other_results, masks=mask_stack)
        qc, results = assess(tracked, list(seq.frames), seq.fps, clinical)   # model: $EDGE_TAN_QC_MODEL or shipped
        qc = mark_shortfall(qc, seq.extra.get("frames_promised", seq.n_frames), seq.n_frames)   # a cut file is never reliable
        if other_results is not None:   # the second view passes the same out-of-domain gate (issue 25)
            from .runtime.qc import gate_other_view
            qc = gate_other_view(qc, other_results)
        clinical = mark_clinical(clinical, qc)
        data = results_dict(str(video), runner.backend, runner.metadata.to_dict(), results, clinical, qc, wall_s=wall)
        if other is not None:
            data["biplane_video"] = str(biplane)
    finally:
        runner.close()
    if json_out is not None:
        write_results_json(json_out, data)
    if masks is not None:
        write_masks_npz(masks, mask_stack)
    if csv is not None:
        write_csv(csv, results, seq.spacing_mm)
    if out is not None:
        from .overlay import write_overlay
        write_overlay(out, list(seq.frames), results, seq.fps, clinical.get("ed_frames", ()), clinical.get("es_frames", ()),
                      banner=ef_text(clinical), alarm=not clinical.get("reliable", True))
    if not quiet:
        _print_summary(video, data)
    return data


def _print_summary(video, data: dict) -> None:
    from rich.console import Console
    c = Console()
    st = data["states"]
    states = " · ".join(f"{k} {100 * v:.1f} %" for k, v in st["state_share"].items() if v)
    views = [r["view"] for r in data["per_frame"] if r["view"]]
    view = max(set(views), key=views.count) if views else "-"
    t, cl = data["timing"], data["clinical"]
    c.print(f"[bold]{video}[/]: {data['frames']} frames · backend {data['backend']} · view {view} · "
            f"frames: {states}")
    if st["top_reasons"]:
        c.print("first pass not used: " + ", ".join(f"{k} ({n})" for k, n in st["top_reasons"]))
    c.print(f"ED {cl.get('ed_frames')} · ES {cl.get('es_frames')} · {ef_text(cl)} ({cl.get('method')}) · "
            f"median {t['median_ms']} ms/frame · p95 {t['p95_ms']} ms · {t['fps']} fps", markup=False)
    q = data.get("qc")
    if q:
        c.print(f"QC score {q['score']:.2f} (threshold {q['threshold']:.2f})"
                + (f": {', '.join(q['reasons'])}" if q["reasons"] else ""), markup=False)
        o = q.get("ood") or {}
        c.print(f"out-of-domain score {o['score']} (threshold {o['threshold']})" if o.get("threshold") is not None
                else f"out-of-domain: {o.get('status', 'n/a')}", markup=False)


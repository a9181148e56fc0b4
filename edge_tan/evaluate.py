"""`edge-tan eval`: closed-loop tracking over a dataset split, scored with the paper's metrics.

Every frame is tracked from the tracker's own previous output (never from ground truth), which is
how a device runs; labelled frames are scored. `--frame-by-frame` also runs the same network on the
letterboxed full frame every time (no warp, no state): the paper's Table 2 comparison.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from . import metrics as mt
from .runtime import qc as qcm
from .runtime.clinical import clip_clinical
from .runtime.atomic import check_can_create, write_text
from .dataset import Sequence, list_split, load_sequence
from .runtime.errors import EdgeTanError
from .runtime.jsonsafe import json_number, json_safe
from .numfmt import fmt
from .runtime.results import stack_masks, state_summary
from .runtime.tracker import FrameResult, Tracker, TrackerConfig

cell = partial(fmt, missing="-")   # a table cell: "-" for a missing value

FRAME_KEYS = ("dice", "asd_px", "asd_mm", "hd_px", "lm_err_px", "lm_err_mm", "oks", "view_acc", "view_frame_acc")


def score_sequence(seq: Sequence, results: list[FrameResult], table: mt.MetricTable, ef_table: mt.MetricTable) -> dict:
    """Add one tracked sequence's per-frame metrics to `table`; return its per-video summary."""
    sp = seq.spacing_mm if np.isfinite(seq.spacing_mm) and seq.spacing_mm > 0 else math.nan
    pred = stack_masks(results)
    diag = float(np.hypot(*seq.frames.shape[1:]))
    dices, lm_mm, view_ok = [], [], []   # per labelled frame, as they enter the frames table
    for t in np.flatnonzero(seq.labeled):
        r, gt = results[t], seq.masks[t]
        d = mt.dice(pred[t], gt)
        a, h = mt.asd_hd(pred[t], gt, empty=diag)  # a missed LV counts as a large error, not NaN
        row = {"dice": d, "asd_px": a, "asd_mm": a * sp, "hd_px": h}
        if seq.landmarks is not None and np.isfinite(seq.landmarks[t]).all():
            p = r.landmarks if r.landmarks is not None else np.full((3, 2), np.nan)
            e = mt.landmark_errors(p, seq.landmarks[t])
            row.update(lm_err_px=float(np.mean(e)), lm_err_mm=float(np.mean(e)) * sp,
                       oks=mt.oks(p, seq.landmarks[t], float(gt.sum())))
        if seq.view and r.view:
            row["view_acc"] = float(r.view == seq.view)
            row["view_frame_acc"] = float(r.view_frame == seq.view)
        elif seq.view:
            row["view_acc"] = row["view_frame_acc"] = 0.0 if r.state == "lost" else math.nan
        table.add(**row)
        dices.append(d)
        lm_mm.append(row.get("lm_err_mm", math.nan))
        view_ok.append(row.get("view_acc", math.nan))
    si = mt.video_smoothness(pred)
    # the labels' own frame-to-frame change (the heart moves): the SI a perfect tracker would show
    si_gt = mt.video_smoothness(seq.masks.astype(bool)) if seq.labeled.all() else math.nan
    clin = clip_clinical(results, seq.spacing_mm, seq.fps, masks=pred)
    ef_err = mt.ef_abs_error(clin["ef_percent"], seq.ef) if clin["ef_percent"] is not None else math.nan
    ef_table.add(si_px=si, si_gt_px=si_gt, ef_abs_err=ef_err, video_dice=float(np.mean(dices)) if dices else math.nan,
                 lost_frac=float(np.mean([r.state == "lost" for r in results])))
    return {"name": seq.name, "view": seq.view or None, "frames": seq.n_frames, "labeled": int(seq.labeled.sum()),
            "mean_dice": float(np.mean(dices)) if dices else None,
            "mean_lm_mm": _finite_mean(lm_mm), "view_acc": _finite_mean(view_ok), "si_px": si,
            "si_gt_px": json_number(si_gt),
            "ef_true": json_number(seq.ef), "ef_pred": clin["ef_percent"],
            "states": {s: sum(r.state == s for r in results) for s in ("detect", "track", "redetect", "lost")}}


def _finite_mean(values: list[float]) -> float | None:
    """Mean of the finite values (the frames table's NaN-skipping mean), None when there are none."""
    v = [x for x in values if math.isfinite(x)]
    return float(np.mean(v)) if v else None


def evaluate(runner, paths: list[Path], frame_by_frame: bool = False, progress=None, qc_model=None) -> dict:
    """Closed-loop (and optionally frame-by-frame) evaluation of one runner over sequence files.

    With a QC model (edge_tan.runtime.qc), closed-loop clips also get their QC score and the mode its AUROC
    for EF error > 10 points (frame by frame has no tracking state for QC to judge)."""
    modes = {"closed_loop": TrackerConfig()}
    if frame_by_frame:
        modes["frame_by_frame"] = replace(TrackerConfig(), frame_by_frame=True)
    out, skipped = {}, {}
    for mode, cfg in modes.items():
        tracker = Tracker(runner, cfg)
        frames_t, videos_t, per_video = mt.MetricTable(), mt.MetricTable(), []
        lat, states = [], []
        for p in paths:
            if str(p) in skipped:
                continue
            try:
                seq = load_sequence(p)
            except EdgeTanError as e:   # one bad file is listed, not fatal (as `eval --reports` does)
                skipped[str(p)] = str(e)
                continue
            if not seq.labeled.any():
                continue
            res = tracker.track(seq.frames)
            lat.extend(r.latency_ms for r in res)
            states.extend(FrameResult(r.index, r.frame_hw, r.state, reason=r.reason) for r in res)  # no masks kept
            pv = score_sequence(seq, res, frames_t, videos_t)
            if qc_model is not None and not cfg.frame_by_frame:
                q, _ = qcm.assess(res, list(seq.frames), seq.fps, {"ef_percent": pv["ef_pred"]}, qc_model)
                pv["qc"] = {k: q[k] for k in ("score", "reliable", "reasons", "ood")}
            per_video.append(pv)
            if progress:
                progress()
        out[mode] = {"frames": frames_t.summary(), "videos": videos_t.summary(), "per_video": per_video,
                     "states": state_summary(states), "latency_ms_median": float(np.median(lat)) if lat else None}
        if any("qc" in v for v in per_video):
            out[mode]["qc"] = qc_summary(per_video)
        out[mode]["skipped"] = [{"file": Path(k).name, "reason": v} for k, v in skipped.items()]
    if skipped and len(skipped) == len(paths):
        raise EdgeTanError(f"no readable sequence: all {len(paths)} files failed to load (e.g. {next(iter(skipped.values()))})")
    return out


def qc_summary(per_video: list[dict], bad: float = 10.0) -> dict:
    """QC AUROC for EF error > `bad` points, and EF error of all vs QC-accepted clips (labelled EF only)."""
    vids = [v for v in per_video if v.get("qc") and v["ef_true"] is not None]
    err = [None if v["ef_pred"] is None else abs(v["ef_pred"] - v["ef_true"]) for v in vids]
    wrong = [e is None or e > bad for e in err]
    acc = [e for v, e in zip(vids, err) if v["qc"]["reliable"] and e is not None]
    alle = [e for e in err if e is not None]
    return {"auroc_ef_err_gt_10": qcm.auroc([-v["qc"]["score"] for v in vids], wrong), "clips": len(vids),
            "accepted": sum(v["qc"]["reliable"] for v in vids),
            "ef_abs_err_all": float(np.mean(alle)) if alle else None,
            "ef_abs_err_accepted": float(np.mean(acc)) if acc else None}


ROWS = (("Dice %", "frames", "dice", "mean", True), ("Dice % (worst 10 %)", "frames", "dice", "worst10", True),
        ("ASD px", "frames", "asd_px", "mean", False), ("ASD px (worst 10 %)", "frames", "asd_px", "worst10", False),
        ("ASD mm", "frames", "asd_mm", "mean", False), ("Hausdorff px", "frames", "hd_px", "mean", False),
        ("SI px", "videos", "si_px", "mean", False), ("SI px (worst 10 %)", "videos", "si_px", "worst10", False),
        ("SI px of the labels", "videos", "si_gt_px", "mean", False),
        ("landmark err px", "frames", "lm_err_px", "mean", False),
        ("landmark err mm", "frames", "lm_err_mm", "mean", False), ("OKS %", "frames", "oks", "mean", True),
        ("view accuracy %", "frames", "view_acc", "mean", True),
        ("view acc. % (frame's window alone)", "frames", "view_frame_acc", "mean", True), ("EF abs err (points)", "videos", "ef_abs_err", "mean", False),
        ("frames lost %", "videos", "lost_frac", "mean", True),
        *((f"frames in {s} %", "states", "state_share", s, True) for s in ("detect", "track", "redetect", "lost")))


def print_tables(report: dict, title: str) -> None:
    """Metrics as rows, modes as columns: fits a terminal however many modes are compared."""
    from rich.console import Console
    from rich.table import Table
    c = Console()
    t = Table(title=title)
    t.add_column("metric")
    for mode in report:
        t.add_column(mode.replace("_", " "), justify="right")
    for label, level, key, stat, pct in ROWS:
        t.add_row(label, *[cell((r[level].get(key) or {}).get(stat), pct=pct) for r in report.values()])
    c.print(t)
    c.print("worst 10 % = mean of the worst 10 % (frames for Dice/ASD, videos for SI), as in the paper's Table 3. "
            "SI = mean frame-to-frame ASD of the predicted contours (paper eq. 9); the labels' own SI (fully "
            "labelled clips only) is what a perfect tracker would show, since the heart moves.")
    for mode, r in report.items():
        q = r.get("qc")
        if q:
            c.print(f"{mode.replace('_', ' ')}: QC accepted {q['accepted']} of {q['clips']} clips; EF abs err "
                    f"{cell(q['ef_abs_err_all'])} all, {cell(q['ef_abs_err_accepted'])} accepted; QC AUROC for EF "
                    f"error > 10 points {cell(q['auroc_ef_err_gt_10'])}")
        top = (r.get("states") or {}).get("top_reasons")
        if top:
            c.print(f"{mode.replace('_', ' ')}: first pass not used: " + ", ".join(f"{k} ({n})" for k, n in top))


def run_eval_cli(data_dir: Path, model, backend: str, precision: str, split: str, frame_by_frame: bool,
                 limit: int, json_out: Path | None, qc_model: Path | None = None) -> dict:
    paths = list_split(data_dir, None if split == "all" else split)
    if not paths:
        raise EdgeTanError(f"{data_dir}: split {split!r} is empty")
    if limit:
        paths = paths[:limit]
    if json_out is not None:
        check_can_create(Path(json_out).parent)   # before the run, not after it
    from .targets.opener import open_model
    runner = open_model(model, backend, precision)
    try:
        from rich.progress import Progress
        with Progress(transient=True) as pb:
            task = pb.add_task(f"eval {backend}", total=len(paths) * (2 if frame_by_frame else 1))
            report = evaluate(runner, paths, frame_by_frame, progress=lambda: pb.advance(task),
                              qc_model=qcm.load_model(qc_model))
        meta = runner.metadata.to_dict()
    finally:
        runner.close()
    full = {"data": str(data_dir), "split": split, "sequences": len(paths), "backend": backend,
            "precision": precision, "model": {k: meta[k] for k in ("model_name", "weights_sha256", "trained",
                                                                     "warp_mode", "precision")},
            "results": report}
    print_tables(report, f"{data_dir} · {split} ({len(paths)} sequences) · {backend} {precision}")
    for sk in next(iter(report.values()), {}).get("skipped", []):
        print(f"skipped {sk['file']}: {sk['reason']}")
    if json_out is not None:
        write_text(json_out, json.dumps(json_safe(full), indent=1, allow_nan=False))
    return full

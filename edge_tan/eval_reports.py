"""`edge-tan eval CLIPS --reports FileList.csv`: validate tracked EF against a site's reported EF.

Tracks every clip that has a report row, then reports EF error, bias and limits of agreement,
Pearson r, ED/ES frame error (where the reports give frames), and, where a traced-areas CSV gives the
expert's traced LV areas, the fractional area change (FAC) at the expert's frames against the traced
one and the tracked ED area over the traced ED area (is the contour on the endocardium?); the share of
frames per view and of lost frames; the same for the QC-accepted subset
and with the lowest-scoring 20 % flagged, the QC score's AUROC for "EF error > 10 points", and a
Bland-Altman and a scatter PNG. Report rows without a clip, clips without a row and unreadable
clips are listed, not fatal. The per-clip JSON carries the QC features, so `edge-tan qc-calibrate`
can re-fit the QC threshold (or weights) for the site from it. With --frame-by-frame every clip is also
tracked without the warp and scored the same way (the JSON's "frame_by_frame").
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from .runtime import qc as qcm
from .runtime.atomic import write_text
from .runtime.clinical import clip_clinical, stack_landmarks
from .runtime.geometry import triangle_area
from .numfmt import fmt
from .runtime.errors import EdgeTanError
from .runtime.jsonsafe import json_safe
from .reports import Report, clip_key, find_clips, match, read_reports, read_tracings
from .runtime.results import stack_masks

cell = partial(fmt, missing="-")   # a table cell: "-" for a missing value

BAD_EF = 10.0     # "EF wrong" in points, the QC target
FLAG_SHARE = 0.2  # report the accepted subset also with the lowest-scoring 20 % flagged


def ef_stats(ref, pred) -> dict:
    """n, MAE, bias (tracked - report), SD of the difference, 95 % limits of agreement, Pearson r."""
    ref, pred = np.asarray(ref, float), np.asarray(pred, float)
    n = int(len(ref))
    if n == 0:
        return {"n": 0, "mae": None, "bias": None, "sd": None, "loa": None, "pearson_r": None}
    d = pred - ref
    sd = float(d.std(ddof=1)) if n > 1 else None
    r = None
    if n > 2 and ref.std() > 0 and pred.std() > 0:
        r = float(np.corrcoef(ref, pred)[0, 1])
    bias = float(d.mean())
    return {"n": n, "mae": float(np.abs(d).mean()), "bias": bias, "sd": sd,
            "loa": [bias - 1.96 * sd, bias + 1.96 * sd] if sd is not None else None, "pearson_r": r}


def frame_error(pred: list, truth: int | None) -> float | None:
    """Frames between a reported ED (or ES) index and the nearest tracked one."""
    if truth is None or not pred:
        return None
    return float(min(abs(int(p) - truth) for p in pred))


def traced_measures(area: np.ndarray, tr, landmarks: np.ndarray | None = None) -> dict:
    """FAC at the expert's ED/ES frames (tracked vs traced) and tracked/traced ED area, from per-frame
    tracked areas (px). Empty without traced areas, None where a traced frame lies past the clip.

    With per-frame landmarks (T, 3, 2) it adds the apex-annulus triangle's own area change at those
    frames (`fac_landmarks`): a contour that moves only with its three landmarks has FAC near it, one
    that follows the walls has FAC near the expert's (shape_stats correlates the two over clips)."""
    if tr is None or tr.ed_area is None:
        return {}
    n = len(area)
    if not (0 <= tr.ed < n and 0 <= tr.es < n):
        return {"fac_pred": None, "fac_ref": None, "fac_err": None, "ed_area_ratio": None}
    a_ed, a_es = float(area[tr.ed]), float(area[tr.es])
    fac_ref = 1.0 - tr.es_area / tr.ed_area
    fac = float(np.clip(1.0 - a_es / a_ed, -1.0, 1.0)) if a_ed > 0 else None
    out = {"fac_pred": fac, "fac_ref": fac_ref, "fac_err": None if fac is None else 100.0 * abs(fac - fac_ref),
           "ed_area_ratio": a_ed / tr.ed_area, "es_area_ratio": a_es / tr.es_area}
    if landmarks is not None and np.isfinite(landmarks[[tr.ed, tr.es]]).all():
        t_ed, t_es = abs(triangle_area(landmarks[tr.ed])), abs(triangle_area(landmarks[tr.es]))
        out["fac_landmarks"] = float(np.clip(1.0 - t_es / t_ed, -1.0, 1.0)) if t_ed > 0 else None
    return out


def read_clip(path: Path):
    """The clip at `path`, refused when it has no frames (read once, tracked once or twice)."""
    from .io.read import read_video
    seq = read_video(path)
    if seq.n_frames == 0:
        raise EdgeTanError(f"{path}: no frames")
    return seq


def track_clip(tracker, path: Path, rep: Report, model, traced=None, overlays: Path | None = None, seq=None) -> dict:
    """One clip tracked and scored against its report (seq: the clip already read from `path`)."""
    seq = read_clip(path) if seq is None else seq
    frames = list(seq.frames)
    t0 = time.perf_counter()
    res = tracker.track(frames)
    masks = stack_masks(res)
    clin = clip_clinical(res, seq.spacing_mm, seq.fps, masks=masks)
    q, res = qcm.assess(res, frames, seq.fps, clin, model)
    clin = qcm.mark_clinical(clin, q)
    ef = clin.get("ef_percent")
    views = [r.view for r in res if r.view]
    if overlays is not None:
        from .overlay import ed_es_figure
        ed = rep.ed if rep.ed is not None and rep.ed < len(res) else (clin.get("ed_frames") or [0])[0]
        es = rep.es if rep.es is not None and rep.es < len(res) else (clin.get("es_frames") or [0])[0]
        ed_es_figure(overlays / f"{rep.name}.png", frames, res, ed, es,
                     f"EF {cell(ef, 1)} (report {rep.ef:.1f})  QC {cell(q['score'], 2)}")
    return {"name": rep.name, "path": str(path), "frames": seq.n_frames, "fps": seq.fps,
            "ef_report": rep.ef, "ef_pred": ef, "ef_err": None if ef is None else abs(ef - rep.ef),
            "ed_report": rep.ed, "es_report": rep.es, "ed_frames": clin.get("ed_frames"),
            "es_frames": clin.get("es_frames"), "ed_err": frame_error(clin.get("ed_frames"), rep.ed),
            "es_err": frame_error(clin.get("es_frames"), rep.es),
            "states": {s: sum(r.state == s for r in res) for s in ("detect", "track", "redetect", "lost")},
            "view_share": {v: views.count(v) / len(res) for v in sorted(set(views))},
            "lost_share": sum(r.state in ("lost", "redetect") for r in res) / len(res),
            **traced_measures(masks.reshape(len(masks), -1).sum(1).astype(np.float64), traced, stack_landmarks(res)),
            "qc": q, "wall_s": round(time.perf_counter() - t0, 3)}


def shape_stats(sel: list[dict]) -> dict:
    """FAC error and ED area ratio where traced areas were given; view and lost shares over clips."""
    out = {}
    fe = [r["fac_err"] for r in sel if r.get("fac_err") is not None]
    ratio = np.array([r["ed_area_ratio"] for r in sel if r.get("ed_area_ratio") is not None])
    if fe:
        out["fac_err"] = float(np.mean(fe))
    both = [(r["fac_pred"], r["fac_ref"], r["fac_landmarks"]) for r in sel
            if r.get("fac_pred") is not None and r.get("fac_landmarks") is not None]
    if len(both) >= 3:   # does the contour contract with the walls (expert) or with its landmarks?
        f = np.array(both, np.float64)
        corr = lambda a, b: float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None  # noqa: E731
        out["fac_corr_expert"], out["fac_corr_landmarks"] = corr(f[:, 0], f[:, 1]), corr(f[:, 0], f[:, 2])
        out["fac_landmarks_mean"], out["fac_pred_mean"] = float(f[:, 2].mean()), float(f[:, 0].mean())
        out["fac_ref_mean"] = float(f[:, 1].mean())
    if len(ratio):
        out["ed_area_ratio_median"] = float(np.median(ratio))
        out["ed_area_within_0.8_1.25"] = float(np.mean((ratio >= 0.8) & (ratio <= 1.25)))
    names = sorted({v for r in sel for v in r.get("view_share", {})})
    if sel:
        out["view_share"] = {v: float(np.mean([r.get("view_share", {}).get(v, 0.0) for r in sel])) for v in names}
        out["lost_share"] = float(np.mean([r.get("lost_share", 0.0) for r in sel]))
    return out


def summarise(rows: list[dict], bad_ef: float = BAD_EF, flag_share: float = FLAG_SHARE) -> dict:
    """All clips vs QC-accepted vs lowest `flag_share` flagged; QC AUROC for EF error > bad_ef."""
    with_ef = [r for r in rows if r["ef_pred"] is not None]
    scores = np.array([r["qc"]["score"] if r["qc"]["score"] is not None else 0.0 for r in rows])
    wrong = np.array([r["ef_err"] is None or r["ef_err"] > bad_ef for r in rows])

    def stats(sel):
        s = [r for r in sel if r["ef_pred"] is not None]
        out = ef_stats([r["ef_report"] for r in s], [r["ef_pred"] for r in s])
        out["clips"] = len(sel)
        out["no_ef"] = len(sel) - len(s)
        for k in ("ed_err", "es_err"):
            v = [r[k] for r in sel if r[k] is not None]
            out[f"{k}_frames"] = float(np.mean(v)) if v else None
        out.update(shape_stats(sel))
        out["share_ef_err_gt"] = float(np.mean([r["ef_err"] is None or r["ef_err"] > bad_ef for r in sel])) if sel else None
        return out

    accepted = [r for r in rows if r["qc"]["reliable"]]
    k = int(round(flag_share * len(rows)))
    order = np.argsort(scores, kind="stable")
    flagged = set(order[:k].tolist())
    kept = [r for i, r in enumerate(rows) if i not in flagged]
    au = qcm.auroc(-scores, wrong) if len(rows) else None   # low score should mean wrong EF
    return {"all": stats(rows), "qc_accepted": stats(accepted), f"lowest_{round(100 * flag_share)}pct_flagged": stats(kept),
            "qc_auroc_ef_err_gt": {"points": bad_ef, "auroc": au, "positives": int(wrong.sum()), "clips": len(rows)},
            "clips_with_ef": len(with_ef)}


def ablation_line(v: dict) -> str:
    """The frame-by-frame run's headline measures, in the order of the closed loop's report."""
    out = [f"EF MAE {cell(v['mae'], 1)} (bias {cell(v['bias'], 1)}, r {cell(v['pearson_r'], 2)})",
           f"ED/ES frame err {cell(v['ed_err_frames'], 1)}/{cell(v['es_err_frames'], 1)}"]
    if "fac_err" in v:
        out.append(f"FAC error {v['fac_err']:.1f} points")
    if "ed_area_ratio_median" in v:
        out.append(f"ED area median {v['ed_area_ratio_median']:.2f}, {100 * v['ed_area_within_0.8_1.25']:.0f} % within 0.8-1.25")
    if v.get("view_share"):
        out.append("frames per view: " + ", ".join(f"{k} {100 * x:.0f} %" for k, x in v["view_share"].items()))
    return " · ".join(out)


def print_report(full: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    c = Console()
    rows = sorted(full["clips"], key=lambda r: r["qc"]["score"] if r["qc"]["score"] is not None else -1)
    t = Table(title=f"{full['clips_dir']} vs {full['reports']} ({len(rows)} clips; lowest QC first)")
    for h in ("clip", "EF report", "EF tracked", "|err|", "ED/ES err", "QC", "verdict"):
        t.add_column(h, justify="left" if h in ("clip", "verdict") else "right")
    for r in rows[:40]:
        q = r["qc"]
        verdict = "ok" if q["reliable"] else "UNRELIABLE: " + ", ".join(q["reasons"])
        t.add_row(r["name"], cell(r["ef_report"], 1), cell(r["ef_pred"], 1), cell(r["ef_err"], 1),
                  f"{cell(r['ed_err'], 0)}/{cell(r['es_err'], 0)}", cell(q["score"], 2), verdict)
    c.print(t)
    if len(rows) > 40:
        c.print(f"... {len(rows) - 40} more clips in the JSON")
    s = full["summary"]
    t = Table(title="EF against reports")
    for h in ("subset", "clips", "MAE", "bias", "95 % LoA", "r", f"> {s['qc_auroc_ef_err_gt']['points']:g} pts",
              "no EF", "ED/ES frame err"):
        t.add_column(h, justify="right")
    for key, label in (("all", "all"), ("qc_accepted", "QC accepted"),
                       *[(k, k.replace("_", " ").replace("pct", " %")) for k in s if k.startswith("lowest_")]):
        v = s[key]
        loa = "-" if not v["loa"] else f"{v['loa'][0]:+.1f} .. {v['loa'][1]:+.1f}"
        t.add_row(label, str(v["clips"]), cell(v["mae"], 1), cell(v["bias"], 1), loa, cell(v["pearson_r"], 2),
                  "-" if v["share_ef_err_gt"] is None else f"{100 * v['share_ef_err_gt']:.0f} %", str(v["no_ef"]),
                  f"{cell(v['ed_err_frames'], 1)}/{cell(v['es_err_frames'], 1)}")
    c.print(t)
    v = s["all"]
    shape = [f"FAC error at the traced frames {v['fac_err']:.1f} points" if "fac_err" in v else "",
             f"tracked/traced ED area median {v['ed_area_ratio_median']:.2f}, "
             f"{100 * v['ed_area_within_0.8_1.25']:.0f} % of clips within 0.8-1.25" if "ed_area_ratio_median" in v else "",
             "frames per view: " + ", ".join(f"{k} {100 * x:.0f} %" for k, x in v.get("view_share", {}).items()),
             f"lost or re-detecting {100 * v.get('lost_share', 0.0):.1f} %",
             f"tracked FAC correlates {cell(v['fac_corr_expert'], 2)} with the expert's and "
             f"{cell(v['fac_corr_landmarks'], 2)} with its own landmark triangle's"
             if v.get("fac_corr_expert") is not None and v.get("fac_corr_landmarks") is not None else ""]
    c.print(" · ".join(x for x in shape if x))
    if full.get("frame_by_frame"):
        c.print("without the warp (frame by frame): " + ablation_line(full["frame_by_frame"]["summary"]["all"]))
    a = s["qc_auroc_ef_err_gt"]
    c.print(f"QC AUROC for EF error > {a['points']:g} points: {cell(a['auroc'], 3)} ({a['positives']} of {a['clips']} clips; "
            f"threshold {full['qc_model']['threshold']:.2f} from {full['qc_model']['file']})")
    for key, label in (("missing_on_disk", "report rows with no clip"), ("without_report", "clips with no report row"),
                       ("unreadable", "clips that could not be tracked")):
        if full[key]:
            items = full[key] if key != "unreadable" else [f"{u['name']} ({u['error']})" for u in full[key]]
            c.print(f"{label} ({len(items)}): " + ", ".join(items[:10]) + (" ..." if len(items) > 10 else ""))
    for k, p in (full.get("plots") or {}).items():
        c.print(f"{k.replace('_', '-')} plot: {p}")


def run_reports_eval(clips_dir: Path, reports_csv: Path, tracings: Path | None, model, backend: str, precision: str,
                     json_out: Path | None, plots_dir: Path | None, qc_model: Path | None, limit: int = 0,
                     quiet: bool = False, overlays: Path | None = None, frame_by_frame: bool = False) -> dict:
    """frame_by_frame: also track every clip without the warp (the whole frame each time, no state: the
    paper's Table 2 ablation), scored the same way under "frame_by_frame" (overlays: closed loop only)."""
    reports = read_reports(reports_csv)
    traced = read_tracings(tracings) if tracings is not None else {}
    for k, tr in traced.items():
        if k in reports:
            reports[k].ed = reports[k].ed if reports[k].ed is not None else tr.ed
            reports[k].es = reports[k].es if reports[k].es is not None else tr.es
    matched, missing, unreported = match(reports, find_clips(clips_dir))
    if not matched:
        raise EdgeTanError(f"no clip in {clips_dir} matches a FileName in {reports_csv} "
                           f"({len(reports)} report rows, {len(unreported)} clips)")
    if limit:
        matched = matched[:limit]
    qmodel = qcm.load_model(qc_model)
    from .targets.opener import open_model
    from .runtime.tracker import Tracker, TrackerConfig
    runner = open_model(model, backend, precision)
    rows, rows_fbf, unreadable = [], [], []
    try:
        tracker = Tracker(runner)
        unwarped = Tracker(runner, replace(TrackerConfig(), frame_by_frame=True)) if frame_by_frame else None
        from rich.progress import Progress
        with Progress(transient=True, disable=quiet) as pb:
            task = pb.add_task(f"eval vs reports ({backend})", total=len(matched))
            for rep, path in matched:
                tr = traced.get(clip_key(rep.name))
                try:
                    seq = read_clip(path)
                    row = track_clip(tracker, path, rep, qmodel, tr, overlays, seq=seq)
                    if unwarped is not None:   # both runs or neither: the two summaries cover the same clips
                        rows_fbf.append(track_clip(unwarped, path, rep, qmodel, tr, seq=seq))
                    rows.append(row)
                except EdgeTanError as e:
                    unreadable.append({"name": rep.name, "path": str(path), "error": str(e)})
                pb.advance(task)
        meta = runner.metadata.to_dict()
    finally:
        runner.close()
    if not rows:
        raise EdgeTanError(f"none of the {len(matched)} matched clips could be tracked (first: {unreadable[0]['error']})")
    full = {"clips_dir": str(clips_dir), "reports": str(reports_csv), "tracings": str(tracings) if tracings else None,
            "backend": backend, "precision": precision,
            "model": {k: meta.get(k) for k in ("model_name", "weights_sha256", "trained", "precision")},
            "qc_model": {"file": qmodel.path, "threshold": qmodel.threshold, "info": qmodel.info},
            "summary": summarise(rows), "clips": rows, "missing_on_disk": missing,
            "without_report": unreported, "unreadable": unreadable}
    if frame_by_frame:
        full["frame_by_frame"] = {"summary": summarise(rows_fbf), "clips": rows_fbf}
    if plots_dir is not None:
        from .report_plots import ef_plots
        s = [r for r in rows if r["ef_pred"] is not None]
        full["plots"] = ef_plots([r["ef_report"] for r in s], [r["ef_pred"] for r in s],
                                 [r["qc"]["reliable"] for r in s], plots_dir, title=Path(clips_dir).name)
    if json_out is not None:
        write_text(json_out, json.dumps(json_safe(full), indent=1, allow_nan=False))
    if not quiet:
        print_report(full)
    return full

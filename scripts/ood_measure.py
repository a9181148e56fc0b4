"""Measure the out-of-domain gate (issue 25): flagged share per clip set, a noise burst, the score's cost.

    python scripts/ood_measure.py --set phantom=DIR --set foreign=DIR --set degraded=DIR \
        [--real ~/.cache/edge-tan-real-dev] [--model default] [--backend openvino] --json out.json

Each set is an edge-tan dataset folder (npz clips; a degraded set from scripts/qc_standin.py names its
copies `<clip>__<variant>`). Every clip is tracked with the shipped tracker and scored by `qc.assess`:
"flagged" = the gate marks it out of domain (clip score above the artifact's threshold); "reliable" =
QC's verdict with the gate and the hard rules (edge_tan.runtime.qc_rules) applied. The real
development set (EchoNet-Dynamic clips with expert EF; never committed, only aggregates are written)
also gets EF error overall and on the clips QC accepts. The noise burst puts 5 frames of uniform noise
in the middle of phantom clips (and, with --burst-real N, of N real development clips: the issue's own
test; aggregates only), once inserted between two frames and once over 5 of them (stricter), and
compares each with the undisturbed run. The cost compares, per frame,
the score's numpy work and the graph's extra output (ONNX Runtime asked for all outputs vs without
`feat`) with the tracker's frame time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_tan.runtime import qc as qcm  # noqa: E402
from edge_tan.runtime.clinical import clip_clinical  # noqa: E402
from edge_tan.dataset import list_split, load_sequence  # noqa: E402
from edge_tan.runtime.results import stack_masks  # noqa: E402
from edge_tan.runtime.tracker import Tracker  # noqa: E402


def assess_clip(tk: Tracker, frames, fps: float, spacing: float) -> tuple[dict, dict, list]:
    res = tk.track(frames)
    clin = clip_clinical(res, spacing, fps, masks=stack_masks(res))
    q, res = qcm.assess(res, frames, fps, clin)
    return q, clin, res


def run_set(tk: Tracker, path: Path, limit: int) -> dict:
    rows = []
    paths = list_split(path, None) if (path / "manifest.json").is_file() else sorted(path.glob("*.npz"))
    for p in paths[: limit or None]:
        s = load_sequence(p)
        q, clin, _ = assess_clip(tk, list(s.frames), s.fps, s.spacing_mm)
        ef, ref = clin.get("ef_percent"), (s.ef if np.isfinite(s.ef) else None)
        rows.append({"name": s.name, "variant": s.name.partition("__")[2] or "clean", "ood": q["ood"]["score"],
                     "flagged": q["ood"]["out_of_domain"], "reliable": q["reliable"],
                     "ef_err": None if ef is None or ref is None else abs(ef - ref)})
    return summarise(rows)


def summarise(rows: list[dict]) -> dict:
    by = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)
    out = {"clips": len(rows), "flagged_share": _share(rows, "flagged"), "reliable_share": _share(rows, "reliable"),
           "ood_median": _med([r["ood"] for r in rows]),
           "by_variant": {k: {"clips": len(v), "flagged_share": _share(v, "flagged"), "reliable_share": _share(v, "reliable"),
                              "ood_median": _med([r["ood"] for r in v])}
                          for k, v in sorted(by.items())}}
    bad = [r for r in rows if r["variant"] != "clean"]
    if bad:   # the degraded copies alone (a degraded set also holds its clean sources)
        out["degraded"] = {"clips": len(bad), "flagged_share": _share(bad, "flagged"),
                           "unreliable_share": round(1 - _share(bad, "reliable"), 4)}
    out["clip_scores"] = [r["ood"] for r in rows]
    out["clip_ef_err"] = [None if r["ef_err"] is None else round(r["ef_err"], 2) for r in rows]
    out["clip_variant"] = [r["variant"] for r in rows]
    errs = [r["ef_err"] for r in rows if r["ef_err"] is not None]
    acc = [r["ef_err"] for r in rows if r["ef_err"] is not None and r["reliable"]]
    out["ef_mae"] = round(float(np.mean(errs)), 2) if errs else None
    out["accepted"] = {"clips": len(acc), "ef_mae": round(float(np.mean(acc)), 2) if acc else None}
    return out


def _share(rows, k):
    return round(sum(bool(r[k]) for r in rows) / len(rows), 4) if rows else None


def _med(v):
    v = [x for x in v if x is not None]
    return round(float(np.median(v)), 3) if v else None


def run_real(tk: Tracker, dev: Path, every: int, scores_out: str = "") -> dict:
    from edge_tan.io.read import read_video
    fl = {r["FileName"]: r for r in csv.DictReader(open(dev / "FileList.csv"))}
    rows = []
    for n in sorted(fl)[::every]:
        seq = read_video(dev / "videos" / f"{n}.avi")
        q, clin, _ = assess_clip(tk, list(seq.frames), seq.fps, seq.spacing_mm)
        ef = clin.get("ef_percent")
        rows.append({"name": "real", "variant": "clean", "ood": q["ood"]["score"], "flagged": q["ood"]["out_of_domain"],
                     "reliable": q["reliable"], "ef_err": None if ef is None else abs(ef - float(fl[n]["EF"]))})
    out = summarise(rows)   # aggregates only in the record: no clip name, no per-clip figure of the real set
    per = {k: out.pop(k) for k in ("clip_scores", "clip_ef_err", "clip_variant")}
    if scores_out:
        Path(scores_out).write_text(json.dumps(per))
    return out


BURST_MODES = ("inserted", "replaced")


def noise_burst(tk: Tracker, clips, burst: int = 5, per_clip: bool = True) -> dict:
    """5 noise frames in the middle of each clip vs the undisturbed run, two ways. "inserted" (the issue's
    words: noise inserted into a clip) adds them between two frames, so every frame of the clip is still
    there and the EF should not move; "replaced" puts them over 5 of its frames, which can take the ED or
    ES of a one-beat clip away (the EF can then only come from a stand-in). clips: (frames, fps, spacing)
    tuples. per_clip=False (the real set) keeps aggregates only."""
    out = {m: [] for m in BURST_MODES}
    for frames, fps, spacing in clips:
        frames = list(frames)
        T = len(frames)
        a = T // 2 - burst // 2
        rng = np.random.default_rng(0)
        noise = [rng.integers(0, 256, frames[0].shape, dtype=np.uint8) for _ in range(burst)]
        _, c0, r0 = assess_clip(tk, frames, fps, spacing)
        for mode in BURST_MODES:
            # after the burst, frame j of the clip is frame j + shift of the disturbed run
            noisy, shift = (frames[:a] + noise + frames[a:], burst) if mode == "inserted" else \
                (frames[:a] + noise + frames[a + burst:], 0)
            _, c1, r1 = assess_clip(tk, noisy, fps, spacing)
            lost = all(r.state == "lost" for r in r1[a:a + burst])
            back = None
            first = a + burst - shift   # the first clip frame after the burst
            for j in range(first, T):
                l0, l1 = r0[j].landmarks, r1[j + shift].landmarks
                if l0 is not None and l1 is not None and float(np.max(np.hypot(*(l0 - l1).T))) <= 3.0:
                    back = j - first
                    break
            e0, e1 = c0.get("ef_percent"), c1.get("ef_percent")
            out[mode].append({"noise_frames_lost": lost, "frames_to_within_3px": back, "frames": T,
                              "ef_change": None if e0 is None or e1 is None else round(abs(e1 - e0), 2)})
    return {m: _burst_summary(o, burst, per_clip) for m, o in out.items()}


def _burst_summary(out: list, burst: int, per_clip: bool) -> dict:
    ch = [o["ef_change"] for o in out if o["ef_change"] is not None]
    bk = [o["frames_to_within_3px"] for o in out]
    res = {"clips": len(out), "burst_frames": burst, "all_noise_frames_lost": all(o["noise_frames_lost"] for o in out),
           "ef_change_max": max(ch) if ch else None, "ef_change_median": _med(ch),
           "ef_within_1_share": round(sum(c <= 1.0 for c in ch) / len(ch), 4) if ch else None,
           "frames_to_within_3px_max": None if None in bk else max(bk),
           "back_within_5_share": round(sum(b is not None and b <= 5 for b in bk) / len(bk), 4) if bk else None,
           "clip_frames_median": _med([o["frames"] for o in out])}
    if per_clip:
        res["per_clip"] = out
    return res


def _phantom_clips(path: Path, n: int):
    for p in list_split(path, None)[:n]:
        s = load_sequence(p)
        yield s.frames, s.fps, s.spacing_mm


def _real_clips(dev: Path, n: int):
    """n development clips spread over the set (every k-th by name): the noise burst on real echo."""
    from edge_tan.io.read import read_video
    names = sorted(r["FileName"] for r in csv.DictReader(open(dev / "FileList.csv")))
    for name in names[:: max(1, len(names) // max(1, n))][:n]:
        seq = read_video(dev / "videos" / f"{name}.avi")
        yield seq.frames, seq.fps, seq.spacing_mm


def cost(model: str, path: Path, frames: int = 40) -> dict:
    """Per frame: the score's numpy work and the extra graph output vs the tracker's frame time (ORT)."""
    import onnxruntime as ort
    from edge_tan.targets.opener import open_model
    r = open_model(model, "onnxruntime", threads=1)
    tk = Tracker(r)
    s = load_sequence(list_split(path, None)[0])
    # the score timed where it runs, between network passes inside the frame loop (a tight loop of
    # scores alone keeps a threaded BLAS awake and would hide what waking it costs every frame)
    inner, took = tk.ood.score, []

    def timed(feat):
        t0 = time.perf_counter()
        v = inner(feat)
        took.append(time.perf_counter() - t0)
        return v
    tk.ood.score = timed
    clip = list(s.frames[:frames])
    tk.track(clip)                      # warm-up
    took.clear()
    res = tk.track(clip)
    frame_ms = float(np.median([x.latency_ms for x in res]))
    score_ms = float(np.median(took)) * 1e3 * len(took) / max(len(res), 1)   # passes per frame x median
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(r.path), so, providers=["CPUExecutionProvider"])
    x = tk._input.copy()
    names_all = [o.name for o in sess.get_outputs()]
    names_less = [n_ for n_ in names_all if n_ != "feat"]
    t_all, t_less = [], []
    for i in range(100):   # interleaved pairs, the order alternating, so load changes hit both alike
        for names, dest in ((names_all, t_all), (names_less, t_less))[:: 1 if i % 2 else -1]:
            t = time.perf_counter(); sess.run(names, {"image": x}); dest.append(time.perf_counter() - t)
    extra_ms = max(0.0, float(np.median(np.subtract(t_all, t_less))) * 1e3)   # median of paired differences
    r.close()
    return {"frame_ms_median": round(frame_ms, 3), "score_ms": round(score_ms, 4), "score_calls": len(took),
            "score_ms_mean": round(float(np.mean(took)) * 1e3, 4),
            "graph_all_outputs_ms": round(float(np.median(t_all)) * 1e3, 3),
            "graph_without_feat_ms": round(float(np.median(t_less)) * 1e3, 3),
            "extra_output_ms": round(extra_ms, 4),
            "share_of_frame": round((score_ms + extra_ms) / frame_ms, 5), "backend": "onnxruntime, 1 thread",
            "load_avg": [round(v, 2) for v in os.getloadavg()]}


def _job(kind: str, arg: str, a) -> tuple[str, dict]:
    """One part of the measurement in its own process with its own runner (parts run side by side)."""
    from edge_tan.targets.opener import open_model
    runner = open_model(a.model, a.backend, threads=1)
    tk = Tracker(runner)
    try:
        if kind == "set":
            name, d = arg.split("=", 1)
            return name, run_set(tk, Path(d), a.limit)
        if kind == "real":
            r = run_real(tk, a.real, a.real_every, a.real_scores)
            r["every"] = a.real_every
            return "real", r
        if kind == "burst":
            return "noise_burst", noise_burst(tk, _phantom_clips(Path(arg), a.burst_clips))
        if kind == "burst-real":   # aggregates only: no per-clip figure of the real set in the record
            return "noise_burst_real", noise_burst(tk, _real_clips(a.real_burst_set, a.burst_real), per_clip=False)
        return "cost", cost(a.model, Path(arg))
    finally:
        runner.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--real", type=Path, default=Path.home() / ".cache/edge-tan-real-dev")
    ap.add_argument("--real-every", type=int, default=1, help="every k-th real clip (1: all 103)")
    ap.add_argument("--real-scores", default="", help="per-clip real scores and EF errors to this file (never commit it)")
    ap.add_argument("--limit", type=int, default=0, help="clips per set (0: all)")
    ap.add_argument("--burst-clips", type=int, default=4, help="phantom clips given a noise burst")
    ap.add_argument("--burst-real", type=int, default=0,
                    help="real development clips given a noise burst (0: none; from --real-burst-set)")
    ap.add_argument("--real-burst-set", type=Path, default=Path.home() / ".cache/edge-tan-real-dev/split/dev",
                    help="the real clips the burst uses (development part: the final part chooses nothing)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=1, help="parts measured side by side (each its own process)")
    a = ap.parse_args(argv)
    from concurrent.futures import ProcessPoolExecutor

    from edge_tan.runtime.ood import ARRAYS, gate_status
    from edge_tan.targets.opener import open_model
    runner = open_model(a.model, a.backend)
    out = {"model": runner.metadata.weights_sha256[:12], "backend": a.backend, "gate": gate_status(runner.metadata),
           "reference": {k: v for k, v in runner.metadata.ood.items() if k not in ARRAYS}, "sets": {}}
    runner.close()
    sets = dict(s_.split("=", 1) for s_ in a.set)
    jobs = [("set", s_) for s_ in a.set]
    if (a.real / "FileList.csv").is_file():
        jobs.append(("real", ""))
    else:
        out["real"] = None
        out["real_absent"] = f"real development set not found at {a.real}: that row is skipped"
        print(out["real_absent"], flush=True)
    if "phantom" in sets:
        jobs.append(("burst", sets["phantom"]))
    if a.burst_real and (a.real_burst_set / "FileList.csv").is_file():
        jobs.append(("burst-real", ""))
    elif a.burst_real:
        out["noise_burst_real"] = None
        print(f"real development clips not found at {a.real_burst_set}: the real noise burst is skipped", flush=True)
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        futs = [ex.submit(_job, k, v, a) for k, v in jobs]
        for f in futs:
            name, res = f.result()
            if name in ("real", "noise_burst", "noise_burst_real", "cost"):
                out[name] = res
            else:
                out["sets"][name] = res
            shown_ = {m: {k: v for k, v in d.items() if k != "per_clip"} for m, d in res.items()} \
                if name.startswith("noise_burst") else res
            brief = {k: v for k, v in shown_.items() if not k.startswith("clip_") and k not in ("per_clip", "by_variant")}
            print(f"{name} ({time.time() - t0:.0f} s): {brief}", flush=True)
    if "phantom" in sets:   # timed last, alone: the parts above load both cores
        out["cost"] = _job("cost", sets["phantom"], a)[1]
        print(f"cost ({time.time() - t0:.0f} s): {out['cost']}", flush=True)
    a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

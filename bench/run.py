"""`edge-tan bench`: TAN vs full-frame baselines per backend x precision, measured the way a device runs.

Per row (model x backend x precision): parameters and MACs, artifact size and build time ("cached"
when the artifact already existed), model-only latency (batch 1, one window: median/p95/p99/min/std),
END-TO-END tracker fps (warp + infer + unwarp + contour, the number a device user feels) and the
non-network share of the frame time, OpenVINO THROUGHPUT-mode fps (2 streams, AsyncInferQueue),
process RSS high-water, and accuracy on the clip (Dice vs labels, or agreement with the model's
first backend when the clip has no labels). Untrained models are labelled "untrained (speed only)".
Full-frame baselines are slow on CPU, so their timed runs are bounded (and the table says so).
TAN's speed-up over each baseline on the same backend and precision is stated in the table.

`--models` items: a registered name (tan = the shipped TAN when present), `name=weights.safetensors`
(trained baseline weights give accuracy too), or a path to a model file (.safetensors weights, .onnx,
or a backend's artifact).

bench.json keys (times in ms): machine, machine_line, source, frames, created_utc, notes, paper_fig6,
outputs, rows[]: model, model_spec, backend, precision, status (ok | inaccurate | failed |
unavailable), reason, params, macs, trained, warp_mode, window, artifact, artifact_mb, build (built |
cached), build_s, latency_ms {median p95 p99 min max std mean n fps total_s}, fps, bounded,
e2e {fps median_ms p95_ms mean_ms frames non_network_share non_network_ms passes_per_frame states
state_share {detect track redetect lost} top_reasons [[reason, frames]]},
e2e_paired {rounds[] {network_fps e2e_fps ratio floor_fps floor_ratio} median range n floor_median floor_range}
(TAN rows: e2e ÷ network and the method's floor ÷ network, timed in alternating rounds),
throughput {fps windows streams requests} + throughput_fps (backends with a throughput mode: OpenVINO),
peak_rss_mb, load[] (other processes' cores while timing), accuracy {dice landmark_px source | parity_dice parity_ref,
drop_points drop_vs} or null (untrained), speedup {baseline: {e2e, model}} (TAN rows), describe;
speed {rows[] (TAN: network alone vs end to end, vs fp32), targets[] (issue 23's ratios)}: bench/speed.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edge_tan.runtime import geometry as geo
from edge_tan.runtime.errors import BackendUnavailable, EdgeTanError, UsageError, first_line, one_line
from edge_tan.runtime.results import state_summary
from edge_tan.runtime.runner import close_quietly
from edge_tan.runtime.tracker import FrameResult, Tracker

from .accuracy import compare_closed, gt_accuracy
from .latency import median_range, stats_ms, time_callable
from .machine import LoadMonitor, machine_info, machine_line, peak_rss_mb, reset_peak_rss
from .source import calibration_dir, has_labels, load_clips
from .speed import speed_lines, speed_summary

PRECISIONS = ("fp32", "fp16", "int8", "bf16")
BASELINE_RUNS = 10          # timed model-only runs and e2e frames for full-frame baselines
WARMUP = 5
PAIRED_ROUNDS = 5           # TAN rows: network alone then end to end, this many times in alternation
DROP_TOL_POINTS = {"fp32": 0.1, "fp16": 0.5, "int8": 0.5, "bf16": 0.1}   # Dice drop vs the model's fp32 row
PAPER_FIG6 = {"TAN": {"params_mb": 2.8, "gpu_ms": 19, "cpu_ms": 328},
              "U-Net": {"params_mb": 31.0, "gpu_ms": 42, "cpu_ms": 7844},
              "PSPNet": {"params_mb": 56.3, "gpu_ms": 138, "cpu_ms": 10039}}


@dataclass
class ModelEntry:
    label: str
    spec: str


def parse_models(models: str) -> list[ModelEntry]:
    out = []
    for item in [m.strip() for m in str(models).split(",") if m.strip()]:
        if "=" in item:
            label, spec = (x.strip() for x in item.split("=", 1))
            if not Path(spec).exists():
                raise UsageError(f"--models {label}={spec}: file not found")
        elif Path(item).suffix or Path(item).exists():   # a weights file, an .onnx or another artifact
            if not Path(item).exists():
                raise UsageError(f"--models: file not found: {item}")
            label, spec = Path(item).stem, item
        else:
            label, spec = item.lower(), item.lower()
            if label == "tan":
                from edge_tan.runtime.defaults import default_weights_path
                if default_weights_path().is_file():
                    spec = "default"
        out.append(ModelEntry(label, spec))
    if not out:
        raise UsageError("--models is empty")
    return out


def parse_list(text: str, what: str, allowed=None) -> list[str]:
    items = [x.strip().lower() for x in str(text).split(",") if x.strip()]
    if not items:
        raise UsageError(f"--{what} is empty")
    if allowed:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise UsageError(f"--{what}: {', '.join(bad)} not one of {', '.join(allowed)}")
    return list(dict.fromkeys(items))


# ---- static model facts ---------------------------------------------------------------------
_COUNTS: dict[str, tuple] = {}


def params_macs(spec: str, window: int) -> tuple[int | None, int | None]:
    """(params, MACs) from the export registry (meta device: no compute); ONNX files: params only."""
    key = f"{spec}@{window}"
    if key in _COUNTS:
        return _COUNTS[key]
    res: tuple = (None, None)
    try:
        if spec.lower().endswith(".onnx"):
            import onnx
            m = onnx.load(spec)
            res = (int(sum(int(np.prod(t.dims)) for t in m.graph.initializer)), None)
        else:
            from edge_tan.export.models.registry import REGISTRY, build_model, count_params_macs
            from edge_tan.export.weights import load_model
            if spec in REGISTRY:
                import torch
                with torch.device("meta"):
                    model = build_model(spec)
            else:
                model, _ = load_model(spec)
            res = count_params_macs(model, window)
    except Exception:
        res = (None, None)
    _COUNTS[key] = res
    return res


def artifact_mb(path: Path) -> float:
    files = [path]
    if path.suffix == ".xml":
        files.append(path.with_suffix(".bin"))
    files += [p for p in (path.with_name(path.name + ".data"), path.with_name(path.name + ".json")) if p.exists()]
    return sum(p.stat().st_size for p in files if p.exists()) / 2 ** 20


def default_opener(source) -> Callable:
    """(spec, backend, precision) -> (runner, artifact path, build seconds, cached?)."""
    from edge_tan.runtime import registry
    from edge_tan.targets.opener import open_model

    def open_(spec: str, backend: str, precision: str):
        b = registry.get(backend)
        if b.target is None and precision != "fp32":   # not built from ONNX: no precision variants
            raise UsageError(f"the {b.name} backend benchmarks fp32 only here")
        calib = calibration_dir(source) if precision == "int8" else None
        runner = open_model(spec, b.name, precision, calib)
        o = runner.origin
        return runner, o.path, o.build_s, o.cached
    return open_


# ---- measurements ---------------------------------------------------------------------------
def sample_window(tracker: Tracker, frame: np.ndarray) -> np.ndarray:
    """A real network input: the first frame letterboxed into the window, normalised."""
    gray = tracker.to_gray(frame)
    return tracker.window_input(gray, geo.letterbox_affine(gray.shape[:2], tracker.size)).copy()


def pingpong(n_frames: int, n: int) -> list[int]:
    """Frame order 0..T-1..0.. so a clip repeated to n frames has no jump at the wrap."""
    if n_frames == 1:
        return [0] * n
    cyc = list(range(n_frames)) + list(range(n_frames - 2, 0, -1))
    return [cyc[i % len(cyc)] for i in range(n)]


def end_to_end(runner, frames: list, n: int) -> dict:
    """Tracker fps over n frames of the clip (ping-pong repeated), after a short warm-up."""
    passes = [0]   # network passes: detect + refine frames cost more than one

    def count(gray, M, p):
        passes[0] += 1

    tracker = Tracker(runner, on_pass=count)
    for f in frames[:2]:
        tracker.step(f)
    tracker.reset()
    passes[0] = 0
    order = pingpong(len(frames), n)
    samples, infer_ms, total_ms, states, kept = [], 0.0, 0.0, {}, []
    clock = time.perf_counter_ns
    for i in order:
        t0 = clock()
        r = tracker.step(frames[i])
        samples.append(clock() - t0)
        infer_ms += r.timings.get("infer", 0.0)
        total_ms += r.latency_ms
        states[r.state] = states.get(r.state, 0) + 1
        kept.append(FrameResult(r.index, r.frame_hw, r.state, reason=r.reason))   # no masks kept
    s = stats_ms(samples)
    share = 1.0 - infer_ms / total_ms if total_ms > 0 else None
    return {"fps": 1000.0 / s["mean"] if s["mean"] else None, "median_ms": s["median"], "p95_ms": s["p95"],
            "mean_ms": s["mean"], "frames": s["n"], "non_network_share": share,
            "non_network_ms": (total_ms - infer_ms) / max(len(order), 1), "states": states,
            **{k: v for k, v in state_summary(kept).items() if k != "state_frames"},
            "passes_per_frame": passes[0] / max(len(order), 1)}


def floor_loop(runner, frames: list, n: int) -> float | None:
    """Frames per second of the method's least per-frame work: grey conversion and input normalisation,
    the window cut at a fixed tracking affine, the network and its landmarks, nothing else.

    Why: TAN's next window hangs on this frame's landmarks, so none of that can overlap the network;
    its fps ÷ the network's own throughput is the most the Python tracker can keep with this runner on
    this machine (a target above it leaves no time at all for the gates, the unwarp and the contour)."""
    tracker = Tracker(runner)
    M = None
    for f in frames[:20]:
        r = tracker.step(f)
        M = r.affine if r.affine is not None and r.state != "lost" else M
    if M is None:   # nothing tracked: the whole-frame window is still the same amount of work
        M = geo.letterbox_affine(tracker.to_gray(frames[0]).shape[:2], tracker.size)
    order = pingpong(len(frames), n)
    t0 = time.perf_counter_ns()
    for i in order:
        runner.infer_window(tracker.window(tracker.to_gray(frames[i]), M))
    dt = (time.perf_counter_ns() - t0) / 1e9
    return len(order) / dt if dt > 0 else None


def paired_rounds(runner, x, frames: list, n: int, rounds: int = PAIRED_ROUNDS) -> dict:
    """e2e ÷ network timed `rounds` times, each round the network alone (>= n calls) right before the
    tracker (n frames) and the method's floor (`floor_loop`, n frames): {"rounds": [{network_fps, e2e_fps,
    ratio, floor_fps, floor_ratio}], "median", "range", "n", "floor_median", "floor_range"}.

    Why: one network figure and one end-to-end figure timed a few seconds apart give a ratio that a
    machine whose speed drifts moves at will (a shared VM: two bench runs on one such machine read
    BF16's e2e ÷ network as x0.76 and x0.99). Timed as pairs, a drift moves both sides of each ratio
    alike; the median over pairs is the row's ratio and the range shows what is left of the noise."""
    out = []
    for _ in range(max(1, int(rounds))):
        lat = time_callable(lambda: runner.infer(x), warmup=2, runs=n, min_time=0.3, max_time=5.0)
        e2e = end_to_end(runner, frames, n)
        floor = floor_loop(runner, frames, n)
        net = 1000.0 / lat["mean"] if lat.get("mean") else None
        out.append({"network_fps": net, "e2e_fps": e2e["fps"],
                    "ratio": e2e["fps"] / net if net and e2e.get("fps") else None,
                    "floor_fps": floor, "floor_ratio": floor / net if net and floor else None})
    med, rng = median_range(r["ratio"] for r in out)
    fmed, frng = median_range(r["floor_ratio"] for r in out)
    return {"rounds": out, "median": med, "range": rng, "n": sum(r["ratio"] is not None for r in out),
            "floor_median": fmed, "floor_range": frng}


def _one_line(e: BaseException) -> str:
    """A row's reason: an EdgeTanError is already written for people; anything else says its type."""
    return first_line(e) if isinstance(e, EdgeTanError) else one_line(e)


def bench_row(entry: ModelEntry, backend: str, precision: str, clips: list, frames: int, opener, ref_results: dict,
              progress=lambda s: None) -> dict:
    """Everything measured for one model x backend x precision; never raises (failures become rows)."""
    from edge_tan.runtime import registry
    from edge_tan.runtime.registry import available, canonical

    row = {"model": entry.label, "model_spec": entry.spec, "backend": backend, "precision": precision,
           "status": "", "reason": "", "notes": []}
    key = canonical(backend)
    ok, why = available(key)
    if not ok:
        row.update(status="unavailable", reason=why)
        return row
    reset_peak_rss()
    progress("build/open")
    try:
        runner, path, build_s, cached = opener(entry.spec, key, precision)
    except UsageError as e:
        row.update(status="unavailable", reason=f"unsupported: {e}")
        return row
    except Exception as e:
        row.update(status="unavailable" if isinstance(e, BackendUnavailable) else "failed", reason=_one_line(e))
        return row
    try:
        md = runner.metadata
        baseline = md.warp_mode == "none"
        n_model = min(frames, BASELINE_RUNS) if baseline else frames
        n_e2e = min(frames, BASELINE_RUNS) if baseline else frames
        params, macs = params_macs(entry.spec, md.window)
        row.update(artifact=str(path) if path else "(in memory)", artifact_mb=artifact_mb(path) if path else None,
                   build="n/a" if cached is None else "cached" if cached else "built",
                   build_s=build_s if cached is False else None, params=params, macs=macs, trained=bool(md.trained),
                   warp_mode=md.warp_mode, window=md.window, bounded=baseline and frames > BASELINE_RUNS,
                   describe=_safe_describe(runner))
        first = clips[0].frames
        x = sample_window(Tracker(runner), first[0])
        progress(f"latency ({n_model} runs)")
        with LoadMonitor() as lm:
            lat = time_callable(lambda: runner.infer(x), warmup=2 if baseline else WARMUP, runs=n_model,
                                min_time=0.0 if baseline else 1.0, max_time=None if baseline else 10.0)
        row["latency_ms"] = lat
        row["fps"] = lat["fps"]
        # the network's throughput (runs per second of total time, as the end-to-end fps is frames per
        # second of total time): the like-for-like base of the e2e / network ratios
        row["network_fps_mean"] = 1000.0 / lat["mean"] if lat.get("mean") else None
        progress(f"end-to-end ({n_e2e} frames)")
        with LoadMonitor() as lm2:
            row["e2e"] = end_to_end(runner, list(first), n_e2e)
            if not baseline:
                progress(f"network alone vs end to end, {PAIRED_ROUNDS} paired rounds")
                row["e2e_paired"] = paired_rounds(runner, x, list(first), n_e2e)
        if backend == "openvino" and path is not None and not baseline:
            from .native_row import native_e2e
            progress(f"native end-to-end ({n_e2e} frames)")
            with LoadMonitor() as lm3:
                row["native_e2e"] = native_e2e(Path(path), list(first), pingpong(len(first), n_e2e + 2),
                                               row["network_fps_mean"] or row["fps"])
            row["native_e2e"]["load"] = lm3.result()
        loads = [lm.result(), lm2.result()]
        row["load"] = loads
        if any(l["busy"] for l in loads):
            others = max((l["other_cores"] or 0.0) for l in loads)
            row["notes"].append(f"machine busy while timing: other processes used {others:.1f} cores")
        throughput = registry.get(key).throughput
        if throughput is not None and path is not None:
            progress("throughput")
            try:
                tp = throughput(path, x, min(frames, BASELINE_RUNS) if baseline else max(frames, 32))
                row["throughput"], row["throughput_fps"] = tp, tp["fps"]
            except Exception as e:
                row["throughput"] = {"error": _one_line(e)}
        progress("accuracy")
        row["accuracy"] = accuracy(runner, entry, clips, ref_results, backend, precision, speed_only=not md.trained)
        row["peak_rss_mb"] = peak_rss_mb()
        row["status"] = "ok"
    except Exception as e:
        row.update(status="failed", reason=_one_line(e))
    finally:
        close_quietly(runner)
    return row


def _safe_describe(runner) -> dict:
    try:
        return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                for k, v in runner.describe().items()}
    except Exception:
        return {"backend": runner.backend}


def accuracy(runner, entry: ModelEntry, clips: list, ref_results: dict, backend: str, precision: str,
             speed_only: bool) -> dict | None:
    """Dice/landmarks vs labels (trained models), else agreement with this model's first row."""
    if speed_only:
        return None
    tracker = Tracker(runner)
    per = [tracker.track(list(s.frames)) for s in clips]
    out: dict = {}
    gts = [gt_accuracy(r, s) for r, s in zip(per, clips) if has_labels(s)]
    gts = [g for g in gts if g.get("dice") is not None]
    if gts:
        out["dice"] = float(np.mean([g["dice"] for g in gts]))
        lms = [g["landmark_px"] for g in gts if g.get("landmark_px") is not None]
        out["landmark_px"] = float(np.mean(lms)) if lms else None
        out["source"] = "ground truth"
    ref = ref_results.get(entry.label)
    if ref is None:
        ref_results[entry.label] = (f"{backend} {precision}", per)
        out.setdefault("source", "parity reference (no labels)")
    else:
        cmp = [compare_closed(a, b) for a, b in zip(ref[1], per)]
        out["parity_dice"] = float(np.mean([c["dice_mean"] for c in cmp]))
        out["parity_ref"] = ref[0]
        out.setdefault("source", "parity")
    return out


def finish(rows: list[dict], notes: list[str]) -> None:
    """Cross-row facts: accuracy drop vs the model's fp32 row (❎), TAN speed-ups over baselines."""
    for r in rows:
        if r["status"] != "ok" or not r.get("accuracy") or r["accuracy"].get("dice") is None:
            continue
        anchor = next((a for a in rows if a["model"] == r["model"] and a["precision"] == "fp32" and a["status"] == "ok"
                       and (a.get("accuracy") or {}).get("dice") is not None), None)
        if anchor is None or anchor is r:
            continue
        drop = 100.0 * (anchor["accuracy"]["dice"] - r["accuracy"]["dice"])
        r["accuracy"]["drop_points"] = drop
        r["accuracy"]["drop_vs"] = f"{anchor['backend']} fp32"
        if drop > DROP_TOL_POINTS[r["precision"]]:
            r["status"] = "inaccurate"
            r["reason"] = f"Dice drop {drop:.2f} points > {DROP_TOL_POINTS[r['precision']]} vs {anchor['backend']} fp32"
    for r in rows:
        if r["status"] not in ("ok", "inaccurate") or r.get("warp_mode") == "none":
            continue
        sp = {}
        for b in rows:
            if b.get("warp_mode") == "none" and b["status"] in ("ok", "inaccurate") and \
                    b["backend"] == r["backend"] and b["precision"] == r["precision"]:
                e2e = (r["e2e"]["fps"] / b["e2e"]["fps"]) if r["e2e"].get("fps") and b["e2e"].get("fps") else None
                mo = (r["fps"] / b["fps"]) if r.get("fps") and b.get("fps") else None
                sp[b["model"]] = {"e2e": e2e, "model": mo}
        if sp:
            r["speedup"] = sp
    if any(r.get("bounded") for r in rows):
        notes.append(f"full-frame baselines are slow on CPU: their model-only latency uses {BASELINE_RUNS} timed runs "
                     f"and end-to-end fps {BASELINE_RUNS} frames (marked *)")
    for r in rows:
        if r["status"] in ("ok", "inaccurate") and not r.get("trained"):
            notes.append(f"{r['model']}: untrained weights — speed only, accuracy not reported as a model result")
            break
    for r in rows:
        for n in r.get("notes", []):
            notes.append(f"{r['model']} {r['backend']} {r['precision']}: {n}")


def run_bench(clips: list, models: list[ModelEntry], backends: list[str], precisions: list[str], frames: int,
              opener, source_desc: str = "", progress_bar: bool = True) -> dict:
    rows, notes, ref_results = [], [], {}
    combos = [(m, b, p) for m in models for b in backends for p in precisions]
    info = machine_info()
    threads = None
    if progress_bar:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        pb = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=True)
        pb.start()
        task = pb.add_task("bench", total=len(combos))
    try:
        for m, b, p in combos:
            label = f"{m.label} {b} {p}"

            def progress(stage, label=label):
                if progress_bar:
                    pb.update(task, description=f"{label}: {stage}")
            rows.append(bench_row(m, b, p, clips, frames, opener, ref_results, progress))
            threads = threads or (rows[-1].get("describe") or {}).get("threads")
            if progress_bar:
                pb.advance(task)
    finally:
        if progress_bar:
            pb.stop()
    finish(rows, notes)
    info["threads"] = threads
    return {"machine": info, "machine_line": machine_line(info), "source": source_desc, "frames": frames,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows,
            "notes": list(dict.fromkeys(notes)), "paper_fig6": PAPER_FIG6, "speed": speed_summary(rows)}


def run_bench_cli(source, models, backends, precisions, frames, out, json_out, md, plot,
                  opener=None, quiet: bool = False) -> dict:
    """`edge-tan bench`: table to the terminal; bench.json / bench.md / bench.png into --out."""
    from rich.console import Console

    from edge_tan.runtime.registry import canonical

    from .report import bench_markdown, bench_reasons, bench_table, write_json

    if frames is None or int(frames) < 1:
        raise UsageError(f"--frames must be >= 1, got {frames}")
    model_list = parse_models(models)
    try:
        backend_list = list(dict.fromkeys(canonical(b) for b in parse_list(backends, "backends")))
    except UsageError:
        raise
    except EdgeTanError as e:
        raise UsageError(str(e)) from None
    prec_list = parse_list(precisions, "precisions", PRECISIONS)
    clips, desc = load_clips(source, 1)
    out = Path(out) if out is not None else Path("bench-out")
    report = run_bench(clips, model_list, backend_list, prec_list, int(frames), opener or default_opener(source),
                       desc, progress_bar=not quiet)
    paths = {"json": Path(json_out) if json_out else out / "bench.json",
             "md": Path(md) if md else out / "bench.md", "plot": Path(plot) if plot else out / "bench.png"}
    from edge_tan.runtime.atomic import write_text
    try:
        from .plot import bench_plot
        bench_plot(report, paths["plot"])
    except ImportError as e:
        report["notes"].append(f"no plot: {e}")
        paths["plot"] = None
    report["outputs"] = {k: str(v) if v else None for k, v in paths.items()}
    write_json(paths["json"], report)
    write_text(paths["md"], bench_markdown(report))
    if not quiet:
        console = Console(width=max(200, Console().width))
        console.print(bench_table(report))
        for line in bench_reasons(report):
            console.print(line, markup=False, highlight=False)
        for n in report["notes"]:
            console.print(f"note: {n}", markup=False, highlight=False)
        for line in speed_lines(report["speed"]):
            console.print(line, markup=False, highlight=False)
        console.print(f"wrote {', '.join(str(v) for v in paths.values() if v)}", markup=False, highlight=False)
    return report

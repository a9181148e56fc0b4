"""Measure `edge-tan batch` against a loop of single `edge-tan track` calls; record the run.

    python scripts/bench_batch.py [--n 200] [--seed 3000] [--frames 0] [--short-frames 12] [--backend openvino]
                                  [--loop-clips 50] [--resume-clips 60] [--skip-ray] [--work record-work/batch]

On N phantom clips (`edge-tan synth --n N --seed SEED`, the phantom's own 21-120 frames, or each clip
cut to --frames frames; the cut changes nothing else in a clip) it times, each as one shell command
from start to exit, with the CPU of the command's whole process tree:
- loop: `edge-tan track CLIP --json` once per clip (the first --loop-clips clips: a fresh process,
  model load and backend start-up per clip), in clips/s;
- batch --workers 1 (one worker, all cores as backend threads) and --workers 2 (one thread each);
- --ray with 2 single-thread actors on a local Ray instance the command starts, and again joining a
  Ray instance started before it (`ray start --head`, as on a cluster; its daemons' CPU counted);
- pool and Ray once more on the clips cut to --short-frames frames, where fixed start-up costs weigh
  most; each batch run also gives its clips/s between the first and last finished clip (start-up out);
- whether every per-clip JSON is the same across loop, pool and Ray (timings aside);
- kill and resume: a `batch --workers 2` run on --resume-clips clips is stopped half way with SIGINT
  (Ctrl-C) and once with SIGKILL (to the whole process group), then restarted: no partial files,
  finished clips not tracked again, same results as an uninterrupted run;
- a mixed archive: clips plus a corrupt, an empty, a truncated and two non-apical (noise; blank) files.
Each timed step carries the load average and the CPU other processes used meanwhile. The record goes
to docs/results/<UTC date>-batch/record.json with the machine (edge_tan.bench.machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_tan.runtime.atomic import write_text  # noqa: E402
from edge_tan.bench.machine import LoadMonitor, TreeCPU, machine_info  # noqa: E402
from edge_tan.bench.provenance import provenance  # noqa: E402

ET = [sys.executable, "-m", "edge_tan.cli"]
VOLATILE = {"timing", "video", "batch"}


def shown(argv) -> str:
    argv = ["edge-tan"] + list(argv[3:]) if list(argv[:3]) == ET else list(argv)
    return shlex.join(str(a).replace(str(ROOT) + "/", "") for a in argv)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def timed(argv, also: tuple[int, ...] = (), **kw) -> dict:
    """Run one command, time it from start to exit, with the machine's load meanwhile. Its CPU is that of
    its whole process tree (a local Ray instance's daemons and actors included), so `other_cores` and
    `busy` speak of other work only."""
    with LoadMonitor() as lm:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        tree = TreeCPU(p.pid, also)
        _, err = p.communicate()
        own = tree.stop()
    r = lm.result(own_cpu_s=own)
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {shown(argv)}\n{err[-2000:]}")
    return {"command": shown(argv), "wall_s": round(r["wall_s"], 2), "own_cpu_s": _r(r["own_cores"] * r["wall_s"], 1),
            "other_cores": _r(r["other_cores"]),
            "loadavg_before": _r(r["loadavg_before"]), "loadavg_after": _r(r["loadavg_after"]), "busy": r["busy"]}


def _r(x, nd=2):
    return None if x is None else round(float(x), nd)


def _steady_ratio(a: dict, b: dict) -> float | None:
    """Ratio of the two runs' clips/s between their first and last finished clip (start-up left out)."""
    x, y = a.get("steady_clips_per_s"), b.get("steady_clips_per_s")
    return _r(x / y, 3) if x and y else None


def make_data(work: Path, n: int, seed: int, frames: int) -> Path:
    """The phantom set (kept between runs: same n, seed and clip length -> same files)."""
    ds = work / f"phantom-s{seed}-n{n}-f{frames}"
    if (ds / "manifest.json").is_file():
        return ds
    from edge_tan.synth.generate import generate_dataset
    kw = {"n_frames": frames} if frames else {}
    generate_dataset(ds, n=n, seed=seed, progress=False, **kw)
    return ds


def clip_json(d: Path) -> dict[str, dict]:
    """Per-clip results of a batch out folder, by clip file name, timings dropped."""
    out = {}
    for p in sorted((d / "clips").glob("*.json")):
        out[p.name.split(".npz.")[0] + ".npz"] = strip(json.loads(p.read_text()))
    return out


def strip(d: dict) -> dict:
    d = {k: v for k, v in d.items() if k not in VOLATILE}
    d["per_frame"] = [{k: v for k, v in r.items() if k != "latency_ms"} for r in d["per_frame"]]
    return d


def compare(a: dict[str, dict], b: dict[str, dict]) -> dict:
    common = sorted(set(a) & set(b))
    same = [k for k in common if a[k] == b[k]]
    ef = [abs(a[k]["clinical"]["ef_percent"] - b[k]["clinical"]["ef_percent"]) for k in common
          if a[k]["clinical"].get("ef_percent") is not None and b[k]["clinical"].get("ef_percent") is not None]
    return {"compared": len(common), "identical": len(same), "max_ef_diff": _r(max(ef), 4) if ef else None,
            "differ": [k for k in common if a[k] != b[k]][:10]}


def batch_cmd(src, out, backend, *extra) -> list[str]:
    return ET + ["batch", str(src), "--out", str(out), "--backend", backend, "--quiet", *map(str, extra)]


def run_batch(src, out: Path, backend, n, *extra, also: tuple[int, ...] = ()) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    t = timed(batch_cmd(src, out, backend, *extra), also)
    run = json.loads((out / "run.json").read_text())
    t.update(clips=n, clips_per_s=_r(n / t["wall_s"], 4), inner_clips_per_s=run["clips_per_s"],
             first_clip_s=run.get("first_clip_s"), steady_clips_per_s=run.get("steady_clips_per_s"),
             cpu_s_per_clip=_r(t["own_cpu_s"] / n, 3) if t.get("own_cpu_s") else None,
             workers=run["workers"], threads_per_worker=run["threads_per_worker"], errors=run["errors"])
    return t


RAY = Path(sys.executable).parent / "ray"


def _pids() -> set[int]:
    return {int(d) for d in os.listdir("/proc") if d.isdigit()}


def ray_cluster(cores: int) -> tuple[tuple[int, ...], str]:
    """Start a Ray head on this machine as a cluster would run (`ray start`, outside any job); returns
    its processes (their CPU counts for the jobs timed on it) and the command shown."""
    argv = [str(RAY), "start", "--head", "--num-cpus", str(cores), "--include-dashboard=false", "--disable-usage-stats"]
    before = _pids()
    subprocess.run(argv, check=True, capture_output=True)
    time.sleep(2.0)                      # its daemons settle before anything is timed
    return tuple(sorted(_pids() - before)), shlex.join(["ray"] + argv[1:])


def ray_running() -> bool:
    """A Ray instance already runs on this machine (`batch --ray` would join it instead of starting one)."""
    return subprocess.run([str(RAY), "status"], capture_output=True).returncode == 0


def ray_stop() -> None:
    """Stop the Ray instance this script started (no other runs: checked before the Ray steps)."""
    subprocess.run([str(RAY), "stop", "--force"], capture_output=True)


def run_loop(ds: Path, clips: list[Path], backend: str, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with LoadMonitor() as lm:
        for c in clips:
            p = subprocess.run(ET + ["track", str(c), "--backend", backend, "--json", str(out / f"{c.name}.json"), "--quiet"],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"track failed on {c}: {p.stderr[-1000:]}")
    r = lm.result()
    return {"own_cpu_s": _r(r["own_cores"] * r["wall_s"], 1),
            "command": f"for c in {ds.name}/*.npz (first {len(clips)}): " + shown(
                ET + ["track", "$c", "--backend", backend, "--json", "loop/$c.json", "--quiet"]),
            "clips": len(clips), "wall_s": round(r["wall_s"], 2), "clips_per_s": _r(len(clips) / r["wall_s"], 4),
            "other_cores": _r(r["other_cores"]), "loadavg_before": _r(r["loadavg_before"]),
            "loadavg_after": _r(r["loadavg_after"]), "busy": r["busy"]}


def loop_json(out: Path) -> dict[str, dict]:
    return {p.name[:-5]: strip(json.loads(p.read_text())) for p in sorted(out.glob("*.json"))}


def leftovers(out: Path) -> list[str]:
    """Partial files: temp files of atomic writes, or a clip JSON without its row."""
    bad = [str(p.relative_to(out)) for d in (out, out / "clips", out / "rows") if d.is_dir()
           for p in d.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    rows = {p.name for p in (out / "rows").glob("*.json")} if (out / "rows").is_dir() else set()
    bad += [f"clips/{p.name} (no row)" for p in (out / "clips").glob("*.json") if p.name not in rows] \
        if (out / "clips").is_dir() else []
    return bad


def kill_and_resume(ds: Path, out: Path, backend: str, n: int, sig: int, ref: dict[str, dict]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    argv = batch_cmd(ds, out, backend, "--workers", 2, "--threads", 1, "--limit", n)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    rows = out / "rows"
    while p.poll() is None and (len(list(rows.glob("*.json"))) if rows.is_dir() else 0) < n // 2:
        time.sleep(0.2)
    os.killpg(p.pid, sig)                # what Ctrl-C (SIGINT) or a crash (SIGKILL) does to the whole job
    t_kill = time.perf_counter()
    err = p.communicate()[1]
    stop_s = time.perf_counter() - t_kill
    time.sleep(0.5)                       # orphans of a SIGKILL: let the OS reap them
    done = len(list(rows.glob("*.json")))
    partial = leftovers(out)
    res = timed(argv)
    run = json.loads((out / "run.json").read_text())
    got = clip_json(out)
    cmp = compare(got, {k: v for k, v in ref.items() if k in got})
    return {"signal": signal.Signals(sig).name, "exit_code": p.returncode, "stopped_in_s": round(stop_s, 2),
            "message": err.strip().splitlines()[-1] if err.strip() else "", "done_at_kill": done,
            "partial_files_after_kill": partial, "restart": res, "restart_tracked": run["tracked"],
            "restart_skipped": run["skipped"], "redone": done - run["skipped"],
            "finished": run["tracked"] + run["skipped"] == n, "partial_files_after_restart": leftovers(out),
            "same_results_as_uninterrupted_run": cmp}


def mixed_archive(ds: Path, work: Path, backend: str, k: int) -> dict:
    from edge_tan.dataset import Sequence, save_sequence
    src = work / "mixed"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for c in sorted(ds.glob("*.npz"))[:k]:
        shutil.copy(c, src / c.name)
    rng = np.random.default_rng(0)
    (src / "corrupt.avi").write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (src / "empty.avi").write_bytes(b"")
    first = sorted(ds.glob("*.npz"))[0].read_bytes()
    (src / "truncated.npz").write_bytes(first[: len(first) // 2])
    save_sequence(Sequence("noise", rng.integers(0, 256, (16, 160, 160), dtype=np.uint8), fps=30.0), src / "nonapical_noise.npz")
    save_sequence(Sequence("blank", np.full((16, 160, 160), 3, np.uint8), fps=30.0), src / "nonapical_blank.npz")
    out = work / "out-mixed"
    shutil.rmtree(out, ignore_errors=True)
    t = timed(batch_cmd(src, out, backend, "--workers", 2, "--threads", 1))
    import csv
    rows = list(csv.DictReader(open(out / "table.csv")))
    odd = {r["clip"]: {"status": r["status"], "error": r["error"] or None, "ef_percent": r["ef_percent"] or None,
                       "share_lost": r["share_lost"] or None, "qc_reliable": r["qc_reliable"] or None,
                       "qc_reason": r["qc_reason"] or None}
           for r in rows if not r["clip"].startswith("synth_")}
    return {"command": t["command"], "exit_code": 0, "clips": len(rows), "phantom_clips": k,
            "ok": sum(r["status"] == "ok" for r in rows), "odd_clips": odd, "wall_s": t["wall_s"]}


PEAK_RSS = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss_mb(argv) -> tuple[int, float]:
    """(exit code, peak RSS in MB of the command), measured in a fresh parent (the counter only grows)."""
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, *map(str, argv)], capture_output=True, text=True).stdout.split()
    return int(out[0]), round(int(out[1]) / 1024, 1)


def memory_check(work: Path, backend: str, frames: int = 3000, hw=(600, 800)) -> dict:
    """Peak memory of `batch` (streams) vs `track` (reads the whole clip first) on one long 800x600 clip.
    The clip is near-blank (the tracker skips the network on blank frames), so it costs decoding only."""
    import cv2
    clip = work / f"long-{frames}x{hw[1]}x{hw[0]}.avi"
    if not clip.is_file():
        vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (hw[1], hw[0]), True)
        f = np.full((hw[0], hw[1], 3), 3, np.uint8)
        for _ in range(frames):
            vw.write(f)
        vw.release()
    out = work / "out-memory"
    shutil.rmtree(out, ignore_errors=True)
    rc_b, mb_b = peak_rss_mb(batch_cmd(clip, out, backend, "--workers", 1))
    rc_t, mb_t = peak_rss_mb(ET + ["track", str(clip), "--backend", backend, "--json", str(work / "memory-track.json"), "--quiet"])
    return {"clip": f"{frames} frames of {hw[1]}x{hw[0]} (near-blank MJPG AVI, {clip.stat().st_size // 1024} KB)",
            "decoded_clip_mb": round(frames * hw[0] * hw[1] / 2 ** 20, 1),
            "batch": {"command": shown(batch_cmd(clip, out, backend, "--workers", 1)), "exit_code": rc_b, "peak_rss_mb": mb_b},
            "track": {"command": shown(ET + ["track", str(clip), "--backend", backend, "--json", "memory-track.json", "--quiet"]),
                      "exit_code": rc_t, "peak_rss_mb": mb_t}}


def add_memory(a) -> None:
    """--only memory: add the memory check to the newest batch record (its command joins 'commands')."""
    folder = a.record or sorted((ROOT / "docs" / "results").glob("*-batch"))[-1]
    rec = json.loads((folder / "record.json").read_text())
    rec["result"]["memory"] = memory_check(a.work, a.backend)
    rec["result"]["memory"]["uptime"] = uptime()
    rec["commands"].append(shlex.join(["python", "scripts/bench_batch.py"] + sys.argv[1:]))
    write_text(folder / "record.json", json.dumps(rec, indent=1))
    print(json.dumps(rec["result"]["memory"], indent=1))


def cpu_figure(run: dict, frames: int) -> dict:
    """A timed batch run with the CPU-ms per frame it cost (its whole process tree, start-up included)."""
    return dict(run, frames=frames, cpu_ms_per_frame=_r(1000 * run["own_cpu_s"] / frames, 1))


def add_cpu(a) -> None:
    """--only cpu: CPU seconds per clip of `batch --workers 2` (robust on a shared machine, where clips/s
    per core is not), added to the newest batch record."""
    folder = a.record or sorted((ROOT / "docs" / "results").glob("*-batch"))[-1]
    rec = json.loads((folder / "record.json").read_text())
    ds = make_data(a.work, a.n, a.seed, a.frames)
    k = min(a.cpu_clips, a.n)
    r = run_batch(ds, a.work / "out-cpu", a.backend, k, "--workers", 2, "--threads", 1, "--limit", k)
    r = cpu_figure(r, sum(e["frames"] for e in json.loads((ds / "manifest.json").read_text())["sequences"][:k]))
    r["uptime"] = uptime()
    rec["result"]["cpu"] = r
    rec["commands"].append(shlex.join(["python", "scripts/bench_batch.py"] + sys.argv[1:]))
    write_text(folder / "record.json", json.dumps(rec, indent=1))
    print(json.dumps(r, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=3000)
    ap.add_argument("--frames", type=int, default=0, help="frames per clip (0: the phantom's own 21-120)")
    ap.add_argument("--short-frames", type=int, default=12, help="also time pool and Ray on the clips cut to this "
                    "many frames, where start-up costs weigh most (0: skip)")
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--loop-clips", type=int, default=50, help="clips timed with one `track` process each")
    ap.add_argument("--resume-clips", type=int, default=60)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--work", type=Path, default=ROOT / "record-work" / "batch")
    ap.add_argument("--record", type=Path, default=None, help="record folder (default docs/results/<date>-batch)")
    ap.add_argument("--only", choices=["memory", "cpu"], help="add one check to the newest record: memory (long clip, "
                    "batch vs track) or cpu (CPU seconds per clip of --workers 2 on --cpu-clips clips)")
    ap.add_argument("--cpu-clips", type=int, default=100)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.only == "memory":
        return add_memory(a)
    if a.only == "cpu":
        return add_cpu(a)
    if not a.skip_ray and ray_running():
        raise SystemExit("bench_batch: a Ray instance runs on this machine; `batch --ray` would join it instead of "
                         "starting its own. Stop it (`ray stop`) or pass --skip-ray")
    t0 = time.perf_counter()
    res: dict = {"uptime_start": uptime(), "clips": a.n, "seed": a.seed, "frames_per_clip": a.frames or "phantom",
                 "backend": a.backend, "precision": "fp32"}
    print(f"data: synth --n {a.n} --seed {a.seed} (clips of {a.frames or 'their own'} frames)", flush=True)
    ds = make_data(a.work, a.n, a.seed, a.frames)
    clips = sorted(ds.glob("*.npz"))
    man = json.loads((ds / "manifest.json").read_text())
    res["data"] = {"folder": ds.name, "generator": man.get("generator"), "frames_total": sum(e["frames"] for e in man["sequences"]),
                   "command": f"generate_dataset(DIR, n={a.n}, seed={a.seed}" + (f", n_frames={a.frames})" if a.frames else ")")
                   + f" = edge-tan synth DIR --n {a.n} --seed {a.seed}" + (f" with each clip cut to {a.frames} frames" if a.frames else "")}
    # warm the artifact cache so no timed run pays the one-off export
    subprocess.run(ET + ["track", str(clips[0]), "--backend", a.backend, "--quiet"], capture_output=True)
    runs = res["runs"] = {}
    print("loop of track", flush=True)
    runs["loop"] = run_loop(ds, clips[: a.loop_clips], a.backend, a.work / "loop")
    for name, extra in (("workers1", ("--workers", 1)), ("workers2", ("--workers", 2, "--threads", 1))):
        print(name, flush=True)
        runs[name] = run_batch(ds, a.work / f"out-{name}", a.backend, a.n, *extra)
    ray_extra = ("--ray", "--workers", 2, "--threads", 1)
    if not a.skip_ray:
        print("ray (a local instance started by the command)", flush=True)
        runs["ray"] = run_batch(ds, a.work / "out-ray", a.backend, a.n, *ray_extra)
        print("ray (joining a running instance)", flush=True)
        pids, started = ray_cluster(2)
        try:
            runs["ray_joined"] = run_batch(ds, a.work / "out-ray-joined", a.backend, a.n, "--ray-address", "auto",
                                           "--workers", 2, "--threads", 1, also=pids)
        finally:
            ray_stop()
        runs["ray_joined"]["cluster"] = f"{started} (before the command; `ray stop` after), its processes' CPU counted as the command's"
    ref = clip_json(a.work / "out-workers2")
    ident = res["identical"] = {"workers1_vs_workers2": compare(clip_json(a.work / "out-workers1"), ref),
                                "loop_vs_workers2": compare(loop_json(a.work / "loop"), ref)}
    for k in ("ray", "ray_joined"):
        if k in runs:
            ident[f"{k}_vs_workers2"] = compare(clip_json(a.work / f"out-{k.replace('_', '-')}"), ref)
    loop = runs["loop"]["clips_per_s"]
    w2 = runs["workers2"]["clips_per_s"]
    res["ratios"] = {"workers2_vs_loop": _r(w2 / loop, 3), "workers1_vs_loop": _r(runs["workers1"]["clips_per_s"] / loop, 3),
                     "workers2_vs_workers1": _r(w2 / runs["workers1"]["clips_per_s"], 3)}
    for k in ("ray", "ray_joined"):
        if k in runs:
            res["ratios"][f"{k}_vs_workers2"] = _r(runs[k]["clips_per_s"] / w2, 3)
            res["ratios"][f"{k}_vs_workers2_steady"] = _steady_ratio(runs[k], runs["workers2"])
    if a.short_frames and not a.skip_ray:
        print(f"pool and ray on the clips cut to {a.short_frames} frames", flush=True)
        ds_s = make_data(a.work, a.n, a.seed, a.short_frames)
        short = res["short_clips"] = {"frames_per_clip": a.short_frames, "data": ds_s.name}
        short["workers2"] = run_batch(ds_s, a.work / "out-short-workers2", a.backend, a.n, "--workers", 2, "--threads", 1)
        short["ray"] = run_batch(ds_s, a.work / "out-short-ray", a.backend, a.n, *ray_extra)
        short["identical"] = compare(clip_json(a.work / "out-short-ray"), clip_json(a.work / "out-short-workers2"))
        short["ray_vs_workers2"] = _r(short["ray"]["clips_per_s"] / short["workers2"]["clips_per_s"], 3)
        short["ray_vs_workers2_steady"] = _steady_ratio(short["ray"], short["workers2"])
    res["cpu"] = cpu_figure(runs["workers2"], res["data"]["frames_total"])
    cores = os.cpu_count() or 1
    best = max(runs["workers1"]["clips_per_s"], w2)
    res["per_core"] = {"cores": cores, "clips_per_s_per_core": _r(best / cores, 4),
                       "frames_per_s_per_core": _r(best * res["data"]["frames_total"] / a.n / cores, 2)}
    print("kill and resume", flush=True)
    res["resume"] = [kill_and_resume(ds, a.work / f"out-kill-{s.name}", a.backend, a.resume_clips, s, ref)
                     for s in (signal.SIGINT, signal.SIGKILL)]
    print("mixed archive", flush=True)
    res["mixed"] = mixed_archive(ds, a.work, a.backend, 20)
    print("memory", flush=True)
    res["memory"] = memory_check(a.work, a.backend)
    res["targets"] = {"workers2_at_least_1.6x_loop": res["ratios"]["workers2_vs_loop"] >= 1.6,
                      "ray_at_least_80pct_of_pool": (res["ratios"].get("ray_vs_workers2") or 0) >= 0.8 if "ray" in runs else None,
                      "identical_results": all(v["identical"] == v["compared"] for v in ident.values())
                      and (res.get("short_clips", {}).get("identical", {}).get("differ", []) == []),
                      "resume_redoes_nothing": all(r["redone"] == 0 and r["finished"] and not r["partial_files_after_restart"]
                                                   for r in res["resume"]),
                      "mixed_archive_run_succeeds": res["mixed"]["exit_code"] == 0,
                      "batch_memory_below_track": res["memory"]["batch"]["peak_rss_mb"] < res["memory"]["track"]["peak_rss_mb"]}
    res["uptime_end"] = uptime()
    timed_runs = {**runs, **{f"short_{k}": v for k, v in res.get("short_clips", {}).items() if isinstance(v, dict) and "busy" in v}}
    busy = [k for k, v in timed_runs.items() if v.get("busy")]
    res["busy_note"] = (f"timed on a busy machine: other processes used CPU during {', '.join(busy)}" if busy else
                        "machine quiet while timing (other processes < 0.5 cores)")
    date = datetime.now(timezone.utc)
    folder = a.record or ROOT / "docs" / "results" / f"{date:%Y-%m-%d}-batch"
    argv = ["python", "scripts/bench_batch.py"] + sys.argv[1:]
    rec = {"what": "batch", "command": shlex.join(argv), "commands": [shlex.join(argv)], "machine": machine_info(),
           "date": date.isoformat(timespec="seconds"), "wall_s": round(time.perf_counter() - t0, 1), "exit_code": 0,
           **provenance(), "result": res}
    write_text(folder / "record.json", json.dumps(rec, indent=1))
    print(json.dumps({k: res[k] for k in ("ratios", "per_core", "targets", "busy_note")}, indent=1))
    print(f"record: {folder / 'record.json'}")


if __name__ == "__main__":
    main()

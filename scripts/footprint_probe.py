"""Measured inside a runtime-only install (no torch): import time of the embedding API, resident
memory while tracking, per-frame latency. Prints one JSON object; scripts/measure_footprint.py runs it.

    python footprint_probe.py ARTIFACT CLIP.npz [--frames 400] [--warmup 20] [--imports 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def rss_mib() -> dict:
    """Current and peak resident set (VmRSS, VmHWM) of this process, MiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return {"rss_mib": out.get("VmRSS"), "peak_rss_mib": out.get("VmHWM")}


def import_seconds(stmt: str, n: int) -> list[float]:
    """Wall time of a fresh interpreter running `stmt`, minus a bare interpreter (median-paired)."""
    def once(code):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0
    return [round(once(stmt) - once("pass"), 4) for _ in range(n)]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    i = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[i]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact")
    ap.add_argument("clip")
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--imports", type=int, default=7)
    a = ap.parse_args()

    imp = import_seconds("import edge_tan.embed", a.imports)
    t0 = time.perf_counter()
    import numpy as np

    from edge_tan.embed import open_tracker
    t_import = time.perf_counter() - t0
    base = rss_mib()
    frames = np.load(a.clip)["frames"]
    t0 = time.perf_counter()
    tracker = open_tracker(a.artifact)
    t_open = time.perf_counter() - t0
    after_open = rss_mib()
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))   # ping-pong: no jump at the wrap
    for i in range(a.warmup):
        tracker.push(frames[order[i % len(order)]])
    tracker.reset()
    lat, states = [], {}
    clock = time.perf_counter
    for i in range(a.frames):
        f = frames[order[i % len(order)]]
        t = clock()
        r = tracker.push(f)
        lat.append((clock() - t) * 1e3)
        states[r.state] = states.get(r.state, 0) + 1
    tracking = rss_mib()
    describe = tracker.runner.describe()
    tracker.close()
    print(json.dumps({
        "import_embed_s": {"runs": imp, "median": statistics.median(imp)},
        "import_in_process_s": round(t_import, 4), "open_tracker_s": round(t_open, 3),
        "memory_mib": {"after_import": base, "after_open": after_open, "after_tracking": tracking},
        "latency_ms": {"p50": round(pct(lat, 50), 3), "p99": round(pct(lat, 99), 3),
                       "mean": round(statistics.fmean(lat), 3), "min": round(min(lat), 3),
                       "max": round(max(lat), 3), "n": len(lat), "raw": [round(x, 3) for x in lat]},
        "states": states, "frame_shape": list(frames.shape[1:]), "clip_frames": int(len(frames)),
        "runner": {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in describe.items()},
        "torch_imported": "torch" in sys.modules,
        "modules_loaded": sorted({m.split(".")[0] for m in sys.modules if not m.startswith("_")}),
    }))


if __name__ == "__main__":
    main()

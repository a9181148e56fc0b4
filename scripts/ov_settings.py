"""OpenVINO CPU settings for the tracker (batch 1): model-only latency and end-to-end tracker fps per
setting, with the bench's own timers, so the runner's defaults follow measurements.

    python scripts/ov_settings.py [--precision int8] [--rounds 3] [--frames 100] [--json out.json]

Settings compared: the default (PERFORMANCE_HINT=LATENCY, 1 stream, static batch 1, OpenVINO's own
thread count and pinning), no hint, INFERENCE_NUM_THREADS 1 and 2, ENABLE_CPU_PINNING on/off, the
dynamic batch as exported, and THROUGHPUT with 2 streams driven one request at a time. Settings are
run in interleaved rounds (round 1: every setting, round 2: every setting, ...) so drift on a shared
machine hits all of them alike; other processes' CPU use is reported per setting (bench.machine's
LoadMonitor), and so is the process CPU time per inference. Only a run on an otherwise idle machine
should move a default.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

SETTINGS = {
    "default (LATENCY, 1 stream, static batch 1)": {},
    "no PERFORMANCE_HINT, 1 stream": {"hint": "NONE"},
    "no PERFORMANCE_HINT, streams AUTO": {"hint": "NONE", "streams": "AUTO"},
    "LATENCY, 1 thread": {"threads": 1},
    "LATENCY, 2 threads": {"threads": 2},
    "LATENCY, 2 threads, pinning on": {"threads": 2, "pinning": True},
    "LATENCY, pinning off": {"pinning": False},
    "LATENCY, pinning on": {"pinning": True},
    "LATENCY, dynamic batch": {"static_batch": None},
    "THROUGHPUT, 2 streams, one request at a time": {"hint": "THROUGHPUT", "streams": 2},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", default="int8", help="fp32 | bf16 | int8 (the shipped TAN, cached artifacts)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=100, help="timed inferences and tracker frames per setting and round")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    from edge_tan.bench.latency import time_callable
    from edge_tan.bench.machine import LoadMonitor, machine_info
    from edge_tan.bench.run import end_to_end, sample_window
    from edge_tan.bench.source import calibration_dir, phantom_clip
    from edge_tan.targets.opener import open_model
    from edge_tan.targets.openvino import OpenVinoRunner
    from edge_tan.runtime.tracker import Tracker

    frames = list(phantom_clip().frames)
    first = open_model("default", "openvino", a.precision, calibration_dir(None) if a.precision == "int8" else None)
    path = first.path
    first.close()
    res = {k: {"model_ms": [], "e2e_fps": [], "cpu_ms_per_infer": [], "other_cores": []} for k in SETTINGS}
    for _ in range(a.rounds):
        for name, opts in SETTINGS.items():
            try:
                run = OpenVinoRunner(path, **opts)
            except Exception as e:   # a setting this OpenVINO refuses is a result too
                res[name]["error"] = str(e).splitlines()[0][:200]
                continue
            x = sample_window(Tracker(run), frames[0])
            with LoadMonitor() as lm:
                c0 = time.process_time()
                lat = time_callable(lambda: run.infer(x), warmup=5, runs=a.frames, max_runs=a.frames)
                c1 = time.process_time()
                e2e = end_to_end(run, frames, a.frames)
            r = res[name]
            r["model_ms"].append(lat["median"])
            r["e2e_fps"].append(e2e["fps"])
            r["cpu_ms_per_infer"].append((c1 - c0) * 1e3 / lat["n"])
            r["other_cores"].append(lm.result().get("other_cores"))
            r["compiled"] = {k: v for k, v in run.describe().items() if k in ("hint", "streams", "threads",
                                                                              "inference_precision")}
            run.close()
    print(f"{a.precision}: {a.rounds} rounds x {a.frames}; medians over rounds [min-max]")
    for name, r in res.items():
        if not r["model_ms"]:
            print(f"  {name:48s} error: {r.get('error')}")
            continue
        print(f"  {name:48s} model {np.median(r['model_ms']):7.2f} ms [{min(r['model_ms']):.2f}-{max(r['model_ms']):.2f}]"
              f"  e2e {np.median(r['e2e_fps']):6.1f} fps  cpu {np.median(r['cpu_ms_per_infer']):5.2f} ms/infer"
              f"  other cores {max(c or 0 for c in r['other_cores']):.1f}  {r['compiled']}")
    if a.json:
        from pathlib import Path
        Path(a.json).write_text(json.dumps({"machine": machine_info(), "precision": a.precision, "rounds": a.rounds,
                                            "frames": a.frames, "settings": {k: str(v) for k, v in SETTINGS.items()},
                                            "results": res}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""OpenVINO CPU settings at batch 1 (issue 23): which performance hint, thread count, stream count,
core pinning and static or dynamic batch shape serve one tracker best on this CPU.

Each setting is one OpenVinoRunner on the same IR and clip, measured two ways: the network alone
(`infer_window` on a fixed window, as the tracker calls it) and the tracker end to end (bench.run's
`end_to_end`). Settings are interleaved over rounds (every round opens each one afresh, in a rotated
order), so drift and other load hit all of them alike; medians across rounds, with their spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_tan.runtime.geometry import letterbox_affine

from .latency import time_callable
from .run import end_to_end

# (name, OpenVinoRunner options); the first is the runner's default
SETTINGS: list[tuple[str, dict]] = [
    ("default: LATENCY, 1 stream, all cores, static batch 1", {}),
    ("no hint (the plugin's own defaults)", {"hint": "NONE"}),
    ("THROUGHPUT hint", {"hint": "THROUGHPUT"}),
    ("1 thread", {"threads": 1}),
    ("2 threads, pinning off", {"threads": 2}),
    ("pinning on", {"pinning": True}),
    ("pinning off", {"pinning": False}),
    ("dynamic batch shape", {"static_batch": None}),
]


def sweep(ir: Path, frames: list, rounds: int = 3, network_runs: int = 200, e2e_frames: int = 100,
          settings: list[tuple[str, dict]] | None = None, progress=None) -> list[dict]:
    """Per setting: network-alone and end-to-end medians (ms, fps) over `rounds` rounds, with the
    rounds' min and max, and what the compiled model reports (streams, threads, hint)."""
    from edge_tan.runtime.tracker import Tracker
    from edge_tan.targets.openvino import OpenVinoRunner
    settings = settings or SETTINGS
    per: dict[str, dict] = {name: {"network_ms": [], "e2e_ms": []} for name, _ in settings}
    for k in range(rounds):
        order = settings[k % len(settings):] + settings[:k % len(settings)]
        for name, opts in order:
            if progress:
                progress(f"round {k + 1}/{rounds}: {name}")
            runner = OpenVinoRunner(ir, **opts)
            try:
                tk = Tracker(runner)
                gray = tk.to_gray(frames[0])
                win = tk.window(gray, letterbox_affine(gray.shape[:2], tk.size))   # a real uint8 window
                lat = time_callable(lambda: runner.infer_window(win), warmup=10, runs=network_runs)
                e2e = end_to_end(runner, frames, e2e_frames)
                per[name]["network_ms"].append(lat["median"])
                per[name]["e2e_ms"].append(e2e["mean_ms"])
                per[name]["compiled"] = {p: runner.compiled_property(p) for p in
                                         ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
                                          "ENABLE_CPU_PINNING", "INFERENCE_PRECISION_HINT")}
            finally:
                runner.close()
    out = []
    for name, opts in settings:
        d = per[name]
        net, e2e = np.asarray(d["network_ms"]), np.asarray(d["e2e_ms"])
        out.append({"setting": name, "options": dict(opts), "compiled": d.get("compiled"),
                    "network_ms": float(np.median(net)), "network_ms_range": [float(net.min()), float(net.max())],
                    "e2e_ms": float(np.median(e2e)), "e2e_ms_range": [float(e2e.min()), float(e2e.max())],
                    "network_fps": 1000.0 / float(np.median(net)), "e2e_fps": 1000.0 / float(np.median(e2e)),
                    "rounds": len(net)})
    base = out[0]
    for r in out:
        r["e2e_vs_default"] = base["e2e_ms"] / r["e2e_ms"]
        r["network_vs_default"] = base["network_ms"] / r["network_ms"]
    return out

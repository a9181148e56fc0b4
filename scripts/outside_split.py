"""The tracker's work outside the network, per frame and per piece, measured without the network.

    python scripts/outside_split.py [--precision int8] [--size 600x800] [--reps 8]

A real OpenVINO runner tracks the bench's phantom clip (ping-pong) once while its per-pass outputs are
recorded; the same frames are then tracked again with a runner that returns those outputs at once, so
each `Tracker.step` costs only what happens around the network (grey conversion and rank
normalisation, warp, mask, contours, gates, unwarp, contour resampling). Reported: min / p10 / median
of step() and of its pieces. Short single-thread pieces, so the min and p10 stay meaningful on a busy
machine where end-to-end timings do not. `--size` rescales the clip to a scanner-like frame.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--size", default=None, help="HxW to rescale the clip to (default: as generated)")
    ap.add_argument("--reps", type=int, default=8, help="passes over the ping-pong clip")
    a = ap.parse_args(argv)

    import cv2

    from edge_tan.runtime import tracker as T
    from edge_tan.bench.source import calibration_dir, phantom_clip
    from edge_tan.runtime.runner import Runner
    from edge_tan.targets.opener import open_model

    frames = list(phantom_clip().frames)
    if a.size:
        h, w = (int(v) for v in a.size.lower().split("x"))
        frames = [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frames]
    real = open_model("default", "openvino", a.precision, calibration_dir(None) if a.precision == "int8" else None)
    recorded: list[dict] = []

    class Recording(Runner):
        backend = "recording"

        def _infer(self, x):
            raise AssertionError("the tracker calls infer_window")

        def infer_window(self, window):
            out = real.infer_window(window)
            recorded.append({k: v.copy() for k, v in out.items()})
            return out

    class Replay(Runner):
        backend = "replay"
        i = 0

        def _infer(self, x):
            raise AssertionError("the tracker calls infer_window")

        def infer_window(self, window):
            out = recorded[self.i % len(recorded)]
            self.i += 1
            return {k: v.copy() for k, v in out.items()}

    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    tr = T.Tracker(Recording(real.metadata))
    for i in order:
        tr.step(frames[i])
    real.close()
    rp = Replay(tr.md)
    tr = T.Tracker(rp)
    pieces = collections.defaultdict(list)

    def timed(obj, name):
        f = getattr(obj, name)

        def g(*args, **kw):
            t0 = time.perf_counter_ns()
            r = f(*args, **kw)
            pieces[name].append(time.perf_counter_ns() - t0)
            return r
        setattr(obj, name, g)

    for name in ("to_gray", "analyse", "_check", "_accept"):
        timed(tr, name)
    timed(rp, "infer_window")
    steps = []
    for _ in range(a.reps):
        tr.reset()
        rp.i = 0
        for i in order:
            t0 = time.perf_counter_ns()
            tr.step(frames[i])
            steps.append(time.perf_counter_ns() - t0)
    s = np.asarray(steps) / 1e3
    print(f"{a.precision} outputs, frames {frames[0].shape}: step() without the network: min {s.min():.0f} us, "
          f"p10 {np.percentile(s, 10):.0f}, median {np.median(s):.0f} ({len(s)} frames)")
    for name, v in pieces.items():
        v = np.asarray(v) / 1e3
        note = " (replay: returning the recorded outputs)" if name == "infer_window" else ""
        print(f"  {name:13s} p10 {np.percentile(v, 10):6.0f} us  median {np.median(v):6.0f} us  "
              f"calls/frame {len(v) / len(s):.2f}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

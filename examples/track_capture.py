"""Track the LV from a capture, one frame at a time: a video file or a camera index.

    python examples/track_capture.py clip.avi --model model.onnx          # ONNX Runtime
    python examples/track_capture.py 0 --model model.xml --max-frames 300  # camera 0, OpenVINO

Prints one tab-separated line per frame: index, tracker state, view, confidence, landmarks (apex,
annulus left, annulus right; frame px) and the frame's latency. Needs only numpy, OpenCV and the
artifact's runtime (no torch); make the artifact once with `edge-tan export`.
"""

from __future__ import annotations

import argparse
import sys

import cv2

from edge_tan.embed import open_tracker
from edge_tan.runtime.errors import EdgeTanError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="video file, or a camera index (0, 1, ...)")
    ap.add_argument("--model", required=True, help="artifact: .onnx, .xml (+ .bin), .engine, or a build folder")
    ap.add_argument("--backend", default=None, help="default: from the artifact's file type")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: until the end)")
    a = ap.parse_args(argv)

    cap = cv2.VideoCapture(int(a.source) if a.source.isdigit() else a.source)
    if not cap.isOpened():
        print(f"track_capture: cannot open {a.source}", file=sys.stderr)
        return 1
    opts = {"threads": a.threads} if a.threads else {}
    try:
        with open_tracker(a.model, a.backend, **opts) as tracker:
            n = 0
            while not a.max_frames or n < a.max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                r = tracker.push(frame)
                lm = "-" if r.landmarks is None else " ".join(f"{x:.1f},{y:.1f}" for x, y in r.landmarks)
                print(f"{r.index}\t{r.state}\t{r.view or '-'}\t{r.confidence:.2f}\t{lm}\t{r.latency_ms:.1f} ms")
                n += 1
    except EdgeTanError as e:
        print(f"track_capture: {e}", file=sys.stderr)
        return 1
    finally:
        cap.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())

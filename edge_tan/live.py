"""`edge-tan track --live N`: track a capture device with bounded latency.

A reader thread keeps only the newest frame (a one-slot mailbox), so when inference is slower than
the device, stale frames are dropped instead of queueing up: latency stays one frame + one step.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from .runtime.errors import EdgeTanError


class LatestFrame:
    """One-slot mailbox filled by a capture thread; `get()` returns the newest frame and its capture time."""

    def __init__(self, cap):
        self.cap = cap
        self._lock = threading.Lock()
        self._frame = None
        self._t = 0.0
        self._seq = 0
        self.dropped = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            ok, f = self.cap.read()
            if not ok:
                self._stop.set()
                break
            with self._lock:
                if self._frame is not None:
                    self.dropped += 1
                self._frame, self._t = f, time.perf_counter()
                self._seq += 1

    def get(self, timeout: float = 2.0):
        t_end = time.perf_counter() + timeout
        while time.perf_counter() < t_end:
            with self._lock:
                if self._frame is not None:
                    f, t, self._frame = self._frame, self._t, None
                    return f, t
            if self._stop.is_set():
                return None, 0.0
            time.sleep(0.001)
        return None, 0.0

    def stop(self):
        self._stop.set()


def run_live(device: int, model, backend: str, precision: str, max_frames: int = 0) -> dict:
    import cv2
    from rich.live import Live

    from .targets.opener import open_model
    from .runtime.tracker import Tracker

    cap = cv2.VideoCapture(int(device))
    if not cap.isOpened():
        raise EdgeTanError(f"capture device {device} cannot be opened")
    runner = open_model(model, backend, precision)
    tracker = Tracker(runner)
    box = LatestFrame(cap)
    lat, age, ood = [], [], []   # ood: per-frame out-of-domain scores (edge_tan.runtime.ood; NaN without a gate)
    n = 0
    try:
        with Live(refresh_per_second=4) as live:
            while not max_frames or n < max_frames:
                f, t_cap = box.get()
                if f is None:
                    break
                r = tracker.step(f)
                now = time.perf_counter()
                lat.append(r.latency_ms)
                age.append((now - t_cap) * 1e3)
                n += 1
                ood.append(r.ood_score)
                live.update(f"frame {n} · {r.state} {r.view} · step {np.median(lat[-50:]):.1f} ms · "
                            f"capture-to-result {np.median(age[-50:]):.1f} ms · dropped {box.dropped}"
                            + _ood_line(tracker, ood[-64:]))
    except KeyboardInterrupt:
        pass
    finally:
        box.stop()
        cap.release()
        runner.close()
    return {"frames": n, "dropped": box.dropped,
            "median_step_ms": float(np.median(lat)) if lat else None,
            "median_capture_to_result_ms": float(np.median(age)) if age else None,
            "ood_last_64": _ood_line(tracker, ood[-64:]).strip(" ·") or None}


def _ood_line(tracker, scores) -> str:
    """The stream's out-of-domain verdict over its last frames (the clip gate of qc.assess, running)."""
    from .runtime.ood import OODReference, reason
    if tracker.ood is None:
        return ""
    s, t = OODReference.clip_score(scores), tracker.ood.clip_threshold
    return f" · ood {s:.1f}" + (f" — {reason(s, t)}" if s == s and s > t else f" <= {t:.1f}")

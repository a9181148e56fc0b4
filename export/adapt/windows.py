"""Run the real tracker on the site's clips and keep what it fed the network.

`RecordingRunner` wraps any Runner and keeps every input window (detect, refine and tracked passes
alike) as uint8: exactly the distribution the network meets at this site, which is what BatchNorm
statistics (bn.py) and the site style (style.py) must be estimated on. The tracker is the shipped
one (edge_tan.tracker), unchanged: adaptation sees the windows a device would.
"""

from __future__ import annotations

import time

import numpy as np

from edge_tan.artifact import ModelMetadata
from edge_tan.runner import Runner
from edge_tan.tracker import FrameResult, Tracker, TrackerConfig


class RecordingRunner(Runner):
    """Pass-through runner that records its input windows (uint8, (S, S)) up to `limit`."""

    backend = "recording"

    def __init__(self, inner: Runner, limit: int = 0):
        super().__init__(inner.metadata)
        self.inner, self.limit, self.windows = inner, int(limit), []
        md = inner.metadata
        self._alpha = md.input_scale / md.input_std
        self._beta = -md.input_mean / md.input_std

    def to_uint8(self, batch: np.ndarray) -> np.ndarray:
        """Undo the tracker's (x*scale - mean)/std: the warped uint8 window, bit-exact."""
        return np.clip(np.rint((batch[:, 0] - self._beta) / self._alpha), 0, 255).astype(np.uint8)

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if not self.limit or len(self.windows) < self.limit:
            self.windows.extend(self.to_uint8(batch))
        return self.inner.infer(batch)

    def close(self) -> None:
        self.inner.close()


def torch_runner(model, md: ModelMetadata) -> Runner:
    """The torch reference runner around an in-memory module (targets/torch_ref.py)."""
    from edge_tan.targets.torch_ref import TorchRunner
    return TorchRunner(model.eval(), md)


def track_all(runner: Runner, seqs, deadline: float | None = None, reverse: bool = False,
              progress=None) -> list[list[FrameResult] | None]:
    """Closed-loop tracking of each clip (reversed in time with `reverse`; results are then given in
    reversed order too). Clips not reached before `deadline` (time.monotonic) are None."""
    tracker = Tracker(runner, TrackerConfig())
    out: list = []
    for s in seqs:
        if deadline is not None and time.monotonic() >= deadline and out:
            out.append(None)
            continue
        frames = s.frames[::-1] if reverse else s.frames
        out.append(tracker.track(frames))
        if progress:
            progress()
    return out


def sample_windows(windows: list[np.ndarray], n: int, seed: int) -> np.ndarray:
    """At most n windows, drawn evenly at random (fixed seed), as (N, S, S) uint8."""
    if not windows:
        return np.zeros((0, 0, 0), np.uint8)
    idx = np.arange(len(windows))
    if n and len(idx) > n:
        idx = np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))
    return np.stack([windows[i] for i in idx])

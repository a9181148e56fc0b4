"""Run the real tracker on the site's clips and keep what it fed the network.

`RecordingRunner` wraps any Runner and keeps every input window (detect, refine and tracked passes
alike) as uint8: exactly the distribution the network meets at this site, which is what BatchNorm
statistics (bn.py) and the site style (style.py) must be estimated on. The tracker is the shipped
one (edge_tan.runtime.tracker), unchanged: adaptation sees the windows a device would.
"""

from __future__ import annotations

import time

import numpy as np

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.runner import Runner
from edge_tan.runtime.tracker import FrameResult, Tracker, TrackerConfig


class RecordingRunner(Runner):
    """Pass-through runner that records its input windows (uint8, (S, S)) up to `limit`, and in
    `owners` which clip (`clip`, set by track_all: the clip's position in its list) each came from."""

    backend = "recording"

    def __init__(self, inner: Runner, limit: int = 0):
        super().__init__(inner.metadata)
        self.inner, self.limit, self.windows, self.owners, self.clip = inner, int(limit), [], [], -1
        md = inner.metadata
        self._alpha = md.input_scale / md.input_std
        self._beta = -md.input_mean / md.input_std

    def to_uint8(self, batch: np.ndarray) -> np.ndarray:
        """Undo the tracker's (x*scale - mean)/std: the warped uint8 window, bit-exact."""
        return np.clip(np.rint((batch[:, 0] - self._beta) / self._alpha), 0, 255).astype(np.uint8)

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if not self.limit or len(self.windows) < self.limit:
            self.windows.extend(self.to_uint8(batch))
            self.owners.extend([self.clip] * len(batch))
        return self.inner.infer(batch)

    def close(self) -> None:
        self.inner.close()


def torch_runner(model, md: ModelMetadata) -> Runner:
    """The torch reference runner around an in-memory module (export/torch_ref.py)."""
    from edge_tan.export.torch_ref import TorchRunner
    return TorchRunner(model.eval(), md)


EXPORT_PAYS_FRAMES = 300   # below this many frames to track, the ~10 s ONNX export costs more than it saves


def fast_runner(model, md: ModelMetadata, onnx_path: Path, frames: int = EXPORT_PAYS_FRAMES) -> Runner:
    """The in-memory model exported to ONNX and run by ONNX Runtime where it is installed, else torch.

    Why: the tracking phases (look, label's forward + backward passes, final) run the tracker on every
    site clip. Torch eager on a 2-core CPU made them reach ~2 clips per 8-12 minutes, so most of a
    site was never seen; ONNX Runtime runs the same network ~2.5x faster (export ~10 s, once per phase).
    The ONNX file is scratch in the work folder, written from the current (partly adapted) weights.
    Fewer than EXPORT_PAYS_FRAMES frames to track: torch (the export would cost more than it saves).
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return torch_runner(model, md)
    if frames < EXPORT_PAYS_FRAMES:
        return torch_runner(model, md)
    from edge_tan.runtime import registry

    from ..onnx_export import export_onnx
    export_onnx(model, md, onnx_path, check=False)
    return registry.get("onnxruntime").runner(onnx_path)


def track_all(runner: Runner, seqs, deadline: float | None = None, reverse: bool = False,
              progress=None) -> list[list[FrameResult] | None]:
    """Closed-loop tracking of each clip (reversed in time with `reverse`; results are then given in
    reversed order too). Clips not reached before `deadline` (time.monotonic) are None."""
    tracker = Tracker(runner, TrackerConfig())
    out: list = []
    for k, s in enumerate(seqs):
        if deadline is not None and time.monotonic() >= deadline and out:
            out.append(None)
            continue
        if isinstance(runner, RecordingRunner):
            runner.clip = k
        frames = s.frames[::-1] if reverse else s.frames
        out.append(tracker.track(frames))
        if progress:
            progress()
    return out


def sample_indices(count: int, n: int, seed: int) -> np.ndarray:
    """At most n of range(count), drawn evenly at random (fixed seed), sorted."""
    idx = np.arange(count)
    if n and len(idx) > n:
        idx = np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))
    return idx


def sample_windows(windows: list[np.ndarray], n: int, seed: int) -> np.ndarray:
    """At most n windows, drawn evenly at random (fixed seed), as (N, S, S) uint8."""
    if not windows:
        return np.zeros((0, 0, 0), np.uint8)
    return np.stack([windows[i] for i in sample_indices(len(windows), n, seed)])

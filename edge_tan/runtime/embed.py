"""The API a device loop embeds: open an artifact, push frames, read results. No torch.

    from edge_tan.embed import open_tracker

    with open_tracker("model.onnx") as tracker:      # or model.xml (OpenVINO), model.engine (TensorRT)
        for frame in frames:                           # BGR/BGRA/grey, uint8/uint16/float
            r = tracker.push(frame)                    # -> FrameResult
            r.state, r.landmarks, r.contour, r.view, r.confidence, r.latency_ms

Needs numpy, OpenCV and the artifact's runtime only (`pip install edge-tan[onnxruntime]` or
`edge-tan[openvino]`); artifacts are made once, on a machine with the torch side, by
`edge-tan export`. Everything here fails with `edge_tan.runtime.errors.EdgeTanError` and one clear line.

Threads: an `LVTracker` is one stream's state (the previous landmarks, the clip-level view, the
window widening) plus one inference session/request; `push` is not re-entrant. Use one instance per
stream and per thread; instances do not share state, so several may run in parallel threads.

Memory: constant per instance. The window input buffer is allocated once and reused; nothing
accumulates from frame to frame (no frame or result history is kept). Each returned `FrameResult`
owns its arrays (landmarks (3, 2), a 64-point contour, the mask as a crop around the LV: use
`result.mask` to get a full-frame mask), so results may be kept or dropped freely.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .open import open_artifact
from .runner import Runner
from .tracker import FrameResult, Tracker, TrackerConfig

__all__ = ["LVTracker", "open_tracker", "FrameResult", "TrackerConfig"]


class LVTracker:
    """One tracked stream: `push(frame)` per frame, `reset()` between clips, `close()` at the end."""

    #: frames the running out-of-domain clip score looks back over (constant memory)
    OOD_WINDOW = 64

    def __init__(self, runner: Runner, config: TrackerConfig | None = None):
        from collections import deque
        self.runner = runner
        self._tracker = Tracker(runner, config)
        self._ood = deque(maxlen=self.OOD_WINDOW)

    @property
    def metadata(self):
        """The artifact's ModelMetadata (window, template, outputs, training record...)."""
        return self.runner.metadata

    @property
    def backend(self) -> str:
        return self.runner.backend

    def push(self, frame: np.ndarray) -> FrameResult:
        """Track one frame; the result's `index` counts frames since the last reset."""
        r = self._tracker.step(frame)
        self._ood.append(r.ood_score)
        return r

    def domain(self) -> dict:
        """Out-of-domain verdict of the stream so far (edge_tan.runtime.ood): the median score of the last
        `OOD_WINDOW` frames against the artifact's clip threshold, the way `qc.assess` gates a clip.

        {"score", "threshold", "out_of_domain", "reason"}; without a gate in the artifact,
        threshold is None and reason says why."""
        from . import ood
        ref = self._tracker.ood
        if ref is None:
            return {"score": None, "threshold": None, "out_of_domain": False, "reason": ood.gate_status(self.metadata)}
        from .qc import ood_words
        s = ood.OODReference.clip_score(self._ood)
        # frames pushed and none scored (every one blank): nothing says the stream is an echo it knows
        out = len(self._ood) > 0 and (s != s or s > ref.clip_threshold)
        block = {"score": s if s == s else None, "threshold": ref.clip_threshold, "out_of_domain": bool(out)}
        return {**block, "reason": ood_words(block) if out else ""}

    def reset(self) -> None:
        """Forget the stream (a new clip, a probe moved to another patient): the next frame is a detect."""
        self._tracker.reset()
        self._ood.clear()

    def close(self) -> None:
        """Release the inference session; the tracker cannot be used afterwards."""
        self.runner.close()

    def __enter__(self) -> "LVTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_tracker(artifact: str | Path = "default", backend: str | None = None, *, config: TrackerConfig | None = None,
                 **runner_opts) -> LVTracker:
    """Open an artifact file (or an `edge-tan export` build folder) and return a fresh tracker.

    artifact "default" is the shipped model's ONNX (ONNX Runtime). backend: None picks it from
    the file type; runner_opts go to the backend's runner (e.g.
    threads=2 for ONNX Runtime or OpenVINO, device="GPU" for OpenVINO). Nothing is built here:
    the artifact comes from `edge-tan export` (the registry imports no backend until one is opened).
    """
    return LVTracker(open_artifact(artifact, backend, **runner_opts), config)

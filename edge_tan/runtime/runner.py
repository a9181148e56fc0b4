"""The one small interface every backend implements (in the spirit of Polygraphy's runners).

The tracker drives a `Runner` and nothing else: load an artifact, read its metadata, `infer` a batch,
`close`. `infer` is a template method: it checks the batch against the metadata, calls the backend's
`_infer`, and checks what came back against the outputs the metadata declares, so no backend can
forget a check and every one fails with the same clear line. Backends live in
`edge_tan.targets.<name>`, declare themselves in `edge_tan.runtime.registry` and are imported only
when asked for, so the core never imports torch or a backend at import time.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifact import ModelMetadata
from .errors import EdgeTanError


def close_quietly(runner: "Runner") -> None:
    """Close a runner whose results are already recorded: a failing close must not replace them."""
    try:
        runner.close()
    except Exception:
        pass


@dataclass(frozen=True)
class Origin:
    """Which file an opened runner loaded (None: a model built in memory) and whether it already
    existed (True), was built by this open (False) or was never a file (None); set by the opener."""
    path: Path | None
    cached: bool | None
    build_s: float | None


class Runner(abc.ABC):
    """Backend-neutral inference: float32 NCHW window batch in, named float32 outputs out.

    Subclasses implement `_infer(x)` (x already checked: contiguous float32 (N, 1, W, W)) and must
    not override `infer`.
    """

    #: registry name, e.g. "onnxruntime"
    backend: str = "?"
    #: which file it loaded (None: a model built in memory); given at construction by `opened`
    origin: Origin | None = None
    #: the artifact's seal digest (edge_tan.runtime.seal), checked by the opener; None: not opened from an artifact
    artifact_sha256: str | None = None

    def __init__(self, metadata: ModelMetadata):
        self.metadata = metadata

    @classmethod
    def opened(cls, path: Path, origin: Origin, artifact_sha256: str | None = None, **opts) -> "Runner":
        """Construct the runner for `path` with its origin and seal digest in place, so no caller ever
        holds a runner that does not yet say where it came from (what every opener calls)."""
        runner = cls(path, **opts)
        runner.origin, runner.artifact_sha256 = origin, artifact_sha256
        return runner

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "infer" in cls.__dict__:
            raise TypeError(f"{cls.__name__} overrides Runner.infer; implement _infer instead "
                            "(infer checks inputs and outputs against the metadata, then calls _infer)")

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the network on (N, 1, W, W) float32; return {"seg": ..., ["landmarks", "view"]}."""
        x = self.check_batch(batch)
        out = self._infer(x)
        self.check_outputs(out, x.shape[0])
        return out

    @abc.abstractmethod
    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The backend's forward pass on a checked batch."""

    def infer_window(self, window: np.ndarray) -> dict[str, np.ndarray]:
        """The tracker's per-pass call: one (W, W) uint8 window (as cv2.warpAffine cuts it) in;
        "score" (W, W) float32 = lv minus background logit, "landmarks_win" (3, 2) window px
        (template added, when the model has landmarks) and every other output of `infer` (batch of 1,
        e.g. "view") out.

        This default normalises in numpy, calls `infer` and derives score and landmarks here, exactly
        as the tracker always did. A backend that computes those steps inside its compiled graph
        overrides it (OpenVINO: uint8 input normalised in-graph, a one-channel score output, the
        template offset added in-graph), so the tracker moves less data and does less around the network.
        """
        md = self.metadata
        w = md.window
        if not isinstance(window, np.ndarray) or window.shape != (w, w):
            raise EdgeTanError(f"window must be ({w}, {w}), got shape {getattr(window, 'shape', None)}")
        buf = getattr(self, "_window_buf", None)
        if buf is None:
            buf = self._window_buf = np.zeros((1, 1, w, w), np.float32)
        normalise_into(window, md, buf[0, 0])
        return window_outputs(self.infer(buf), md)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release backend resources (sessions, engines, CUDA buffers)."""

    def describe(self) -> dict:
        """Backend, device and precision, for reports."""
        return {"backend": self.backend, "precision": self.metadata.precision}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """Reject wrong shapes/dtypes with one clear line instead of a backend traceback."""
        w = self.metadata.window
        if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[1:] != (1, w, w):
            shape = getattr(batch, "shape", None)
            raise EdgeTanError(f"runner input must be (N, 1, {w}, {w}) float32, got shape {shape}")
        if batch.dtype != np.float32:
            raise EdgeTanError(f"runner input must be float32, got {batch.dtype}")
        return np.ascontiguousarray(batch)

    def check_outputs(self, out: dict, n: int) -> None:
        """Every output the metadata declares, float32, in the shape the model contract gives it."""
        md = self.metadata
        for name in md.outputs:
            v = out.get(name)
            if v is None:
                raise EdgeTanError(f"{self.backend}: the model returned no {name!r} output (metadata declares "
                                   f"{', '.join(md.outputs)})")
            want = md.output_shape(name, n)
            if v.dtype != np.float32 or (want is not None and (len(v.shape) != len(want) or any(
                    w is not None and g != w for g, w in zip(v.shape, want)))):
                raise EdgeTanError(f"{self.backend}: output {name!r} is {v.dtype} {v.shape}, the model contract "
                                   f"says float32 {want}")


def normalise_into(window: np.ndarray, md: ModelMetadata, out: np.ndarray) -> np.ndarray:
    """The network input of a grey window, written into `out` (float32, the window's shape): the one
    place the arithmetic lives, so every path feeds the network the same float32 values."""
    np.multiply(window, md.input_scale / md.input_std, out=out, casting="unsafe")
    out += -md.input_mean / md.input_std
    return out


def window_outputs(out: dict, md: ModelMetadata) -> dict[str, np.ndarray]:
    """Raw `infer` outputs for one window -> what `infer_window` returns (score, landmarks_win, the rest)."""
    res = {k: v for k, v in out.items() if k not in ("seg", "landmarks")}
    seg = out["seg"][0]
    res["score"] = np.subtract(seg[1], seg[0], dtype=np.float32)
    if "landmarks" in out:
        res["landmarks_win"] = out["landmarks"][0].reshape(3, 2).astype(np.float32) + md.template_array
    return res

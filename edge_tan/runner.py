"""The one small interface every backend implements (in the spirit of Polygraphy's runners).

The tracker drives a `Runner` and nothing else: load an artifact, read its metadata, `infer` a batch,
`close`. Backends live in `edge_tan.targets.<name>` and are found through `edge_tan.targets.registry`,
imported only when asked for, so the core never imports torch or a backend at import time.
"""

from __future__ import annotations

import abc

import numpy as np

from .artifact import ModelMetadata
from .errors import EdgeTanError


class Runner(abc.ABC):
    """Backend-neutral inference: float32 NCHW window batch in, named float32 outputs out."""

    #: registry name, e.g. "onnxruntime"
    backend: str = "?"

    def __init__(self, metadata: ModelMetadata):
        self.metadata = metadata

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the network on (N, 1, H, W) float32; return {"seg": ..., ["landmarks", "view"]}."""

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

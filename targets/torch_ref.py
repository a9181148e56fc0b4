"""PyTorch reference runner (CPU, fp32): the numbers every other backend is compared against.

Loads a .safetensors weights file through the export registry (which knows the architecture from
the file's own metadata), or wraps an nn.Module + ModelMetadata directly (tests, parity checks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_tan.artifact import ModelMetadata
from edge_tan.errors import EdgeTanError
from edge_tan.runner import Runner


def load_weights(path: str | Path):
    """(module in eval mode, metadata) for a .safetensors file via edge_tan.export's registry."""
    path = Path(path)
    if not path.is_file():
        raise EdgeTanError(f"weights file not found: {path}")
    try:
        from edge_tan.export.models.registry import load_model
    except ImportError as e:
        raise EdgeTanError(f"the torch model registry (edge_tan.export) is unavailable: {e}") from None
    return load_model(str(path))


def outputs_to_dict(out, names) -> dict:
    """Normalise a model's forward() result (dict, tuple/list, or bare seg tensor) to {name: tensor}."""
    if isinstance(out, dict):
        return {k: out[k] for k in names if k in out}
    if isinstance(out, (tuple, list)):
        return dict(zip(names, out))
    return {"seg": out}


class TorchRunner(Runner):
    backend = "torch"
    device = "cpu"

    def __init__(self, source, metadata: ModelMetadata | None = None, threads: int | None = None):
        import torch

        if isinstance(source, (str, Path)):
            module, md = load_weights(source)
            self.path = Path(source)
        else:
            if metadata is None:
                raise EdgeTanError("TorchRunner(module) needs the model's ModelMetadata")
            module, md, self.path = source, metadata, None
        super().__init__(metadata or md)
        if threads:
            torch.set_num_threads(int(threads))
        self.threads = torch.get_num_threads()
        self.module = self._prepare(module)
        self._names = list(self.metadata.outputs)
        self._torch = torch

    def _prepare(self, module):
        return module.eval().float().to(self.device)

    def _forward(self, x: np.ndarray) -> dict:
        torch = self._torch
        with torch.inference_mode():
            out = self.module(torch.from_numpy(x))
        return outputs_to_dict(out, self._names)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = self.check_batch(batch)
        return {k: v.detach().float().cpu().numpy() for k, v in self._forward(x).items()}

    def describe(self) -> dict:
        import torch

        return {"backend": self.backend, "precision": self.metadata.precision, "device": self.device,
                "threads": self.threads, "torch": torch.__version__,
                "artifact": str(self.path) if self.path else "<module>"}

    def close(self) -> None:
        self.module = None

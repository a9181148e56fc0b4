"""PyTorch reference runner (CPU, fp32): the numbers every other backend is compared against.

Loads a .safetensors weights file through edge_tan.export (the file's own metadata names the
architecture), builds a registered architecture by name (random init, fixed seed: the same weights
`build_artifact` exports), or wraps an nn.Module + ModelMetadata directly (tests, parity checks).
Its "artifact" is the weights file itself: nothing is built for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.runner import Origin, Runner

from edge_tan.runtime.registry import Backend, register_backend


def load_model(spec: str):
    """(module in eval mode, metadata) for a weights file or registered name via edge_tan.export."""
    try:
        from edge_tan.export.weights import load_model as load
    except ImportError as e:
        raise EdgeTanError(f"the torch model registry (edge_tan.export) is unavailable: {e}") from None
    return load(spec)


def outputs_to_dict(out, names) -> dict:
    """A model's forward() result -> {name: tensor}. The model contract (edge_tan.export.models.base)
    is one shape: a tuple with one tensor per declared output, in the declared order."""
    if not isinstance(out, tuple) or len(out) != len(names):
        got = f"a tuple of {len(out)}" if isinstance(out, tuple) else type(out).__name__
        raise EdgeTanError(f"model forward() must return a tuple of {len(names)} tensors {tuple(names)}, got {got}")
    return dict(zip(names, out))


def _with_feat(module, md: ModelMetadata):
    """The module with its out-of-domain `feat` output where the architecture has one (as every export
    of it has), and the metadata saying so; other modules and metadata unchanged."""
    from edge_tan.export.models.tan import feature_model
    from edge_tan.runtime.ood import with_feat_output

    module = feature_model(module)
    if "feat" in getattr(module, "outputs", ()) and "feat" not in md.outputs:
        md = with_feat_output(md)
    return module, md


class TorchRunner(Runner):
    backend = "torch"
    device = "cpu"

    def __init__(self, source, metadata: ModelMetadata | None = None, threads: int | None = None):
        import torch

        if isinstance(source, (str, Path)):
            module, md = load_model(str(source))
            self.path = Path(source)
        else:
            if metadata is None:
                raise EdgeTanError("TorchRunner(module) needs the model's ModelMetadata")
            module, md, self.path = source, metadata, None
        module, md = _with_feat(module, metadata or md)
        super().__init__(md)
        self.origin = Origin(self.path, cached=None, build_s=None)
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

    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.detach().float().cpu().numpy() for k, v in self._forward(x).items()}

    def describe(self) -> dict:
        import torch

        return {"backend": self.backend, "precision": self.metadata.precision, "device": self.device,
                "threads": self.threads, "torch": torch.__version__,
                "artifact": str(self.path) if self.path else "<module>"}

    def close(self) -> None:
        self.module = None


def open_source(ref, runner: type = TorchRunner, **opts) -> TorchRunner:
    """A registered architecture name -> its torch model (weights files are opened as artifacts)."""
    if ref.kind != "registered":
        what = ref.path.name if ref.path is not None else ref.spec
        raise EdgeTanError(f"the {runner.backend} backend needs a .safetensors weights file, 'default' or a "
                           f"registered name, got {what}")
    module, md = load_model(ref.spec)
    return runner(module, md, **opts)


def to_onnx(ref, out_path: Path, window: int | None, opset: int, producer: dict) -> ModelMetadata:
    """The fp32 ONNX of weights or a registered name (what every artifact is built from), with metadata."""
    try:
        from edge_tan.export.onnx_export import export_onnx
        from edge_tan.export.weights import load_model as load, model_sha256
    except ImportError as e:
        raise EdgeTanError(f"exporting needs the torch side (pip install 'edge-tan[train]'): {e}") from None
    spec = ref.spec if ref.kind == "registered" else str(ref.path)
    module, md = load(spec, size=window) if (window and ref.kind == "registered") else load(spec)
    if not md.weights_sha256:
        md.weights_sha256 = model_sha256(module)
    md.precision = "fp32"
    md.producer = producer
    export_onnx(module, md, out_path, opset=opset, dynamic_batch=True, check=True)
    return md


def _env_info() -> dict:
    import torch
    out = {"cuda": bool(torch.cuda.is_available())}
    if out["cuda"]:
        out["cuda_device"] = torch.cuda.get_device_name(0)
    return out


register_backend(Backend(
    name="torch", runner=TorchRunner, suffix=".safetensors", requires=("torch", "safetensors"),
    aliases=("pytorch",), open_source=open_source, env_info=_env_info, to_onnx=to_onnx,
))

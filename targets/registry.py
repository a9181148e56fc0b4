"""Which inference backends exist, whether they import here, and how to open one.

Adding a backend touches only `BACKENDS` (one line) and the backend's own module. Nothing heavy is
imported until a runner is actually opened: `available()` answers from `importlib.util.find_spec`.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from edge_tan.errors import EdgeTanError
from edge_tan.runner import Runner

# name -> "module:RunnerClass"
BACKENDS: dict[str, str] = {
    "torch": "edge_tan.targets.torch_ref:TorchRunner",
    "onnxruntime": "edge_tan.targets.onnxruntime:OrtRunner",
    "openvino": "edge_tan.targets.openvino:OpenVinoRunner",
    "tensorrt": "edge_tan.targets.tensorrt:TensorRTRunner",
    "torch-cuda": "edge_tan.targets.torch_cuda:TorchCudaRunner",
}

# Python packages each backend needs (first one is the backend itself).
REQUIRES: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "safetensors"),
    "onnxruntime": ("onnxruntime",),
    "openvino": ("openvino",),
    "tensorrt": ("tensorrt", "cuda"),
    "torch-cuda": ("torch", "safetensors"),
}

# The artifact file each backend loads.
SUFFIX: dict[str, str] = {
    "torch": ".safetensors",
    "onnxruntime": ".onnx",
    "openvino": ".xml",
    "tensorrt": ".engine",
    "torch-cuda": ".safetensors",
}

ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "ov": "openvino", "trt": "tensorrt",
           "cuda": "torch-cuda", "pytorch": "torch"}


def canonical(name: str) -> str:
    """Registry name for `name` (accepts a few obvious aliases); EdgeTanError if unknown."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in BACKENDS:
        raise EdgeTanError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return key


def _has_module(mod: str) -> bool:
    import sys

    if mod in sys.modules:          # already imported (or deliberately blocked with None)
        return sys.modules[mod] is not None
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def available(name: str) -> tuple[bool, str]:
    """(usable, reason) without importing the backend. For torch-cuda a GPU is checked through torch
    when torch is already loaded, otherwise by looking for the NVIDIA driver."""
    key = canonical(name)
    for mod in REQUIRES[key]:
        if not _has_module(mod):
            what = "cuda-python" if mod == "cuda" else mod
            return False, f"{what} is not installed"
    if key == "torch-cuda":
        import shutil
        import sys
        torch = sys.modules.get("torch")
        if torch is not None:
            if not torch.cuda.is_available():
                return False, "torch is installed but no CUDA GPU is visible"
        elif not (Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")):
            return False, "no NVIDIA GPU driver found"
    return True, "ok"


def runner_class(name: str) -> type[Runner]:
    key = canonical(name)
    ok, why = available(key)
    if not ok:
        raise EdgeTanError(f"backend {key!r} unavailable: {why}")
    mod_name, cls_name = BACKENDS[key].split(":")
    return getattr(importlib.import_module(mod_name), cls_name)


def artifact_suffix(name: str) -> str:
    return SUFFIX[canonical(name)]


def backend_for_path(path: str | Path) -> str:
    """Pick the backend from an artifact's suffix (.onnx, .xml, .engine, .safetensors)."""
    suffix = Path(path).suffix.lower()
    for key, sfx in SUFFIX.items():
        if sfx == suffix:
            return key
    raise EdgeTanError(f"{Path(path).name}: unknown artifact type {suffix!r} "
                       f"(expected one of {', '.join(sorted(set(SUFFIX.values())))})")


def open_runner(backend: str | None, artifact_path: str | Path, **opts) -> Runner:
    """Open `artifact_path` with `backend` (or the backend its suffix implies)."""
    path = Path(artifact_path)
    key = canonical(backend) if backend else backend_for_path(path)
    if not path.exists():
        raise EdgeTanError(f"artifact not found: {path}")
    want = SUFFIX[key]
    if path.suffix.lower() != want:
        raise EdgeTanError(f"backend {key!r} loads {want} artifacts, got {path.name}")
    return runner_class(key)(path, **opts)

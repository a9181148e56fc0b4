"""Turn what a user typed (`--model`, `--backend`, `--precision`) into an open Runner.

`--model` may be an artifact (.onnx/.xml/.engine/.safetensors), 'default' (the shipped TAN), a
registered architecture name, or a weights file. Anything that is not already an artifact for the
chosen backend is built once through `build_artifact` and cached, so the first `edge-tan track`
exports the default model and later runs start instantly.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_tan.errors import EdgeTanError
from edge_tan.runner import Runner

from .registry import SUFFIX, backend_for_path, canonical, open_runner

# backend -> build target of build_artifact
BUILD_TARGET = {"onnxruntime": "onnx", "openvino": "openvino", "tensorrt": "tensorrt"}
ARTIFACT_SUFFIXES = {".onnx", ".xml", ".engine"}


def cache_dir() -> Path:
    """Where exported artifacts are cached (EDGE_TAN_CACHE, else ~/.cache/edge-tan/artifacts)."""
    root = os.environ.get("EDGE_TAN_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "edge-tan" / "artifacts"


def default_weights() -> Path:
    from edge_tan.defaults import default_weights_path
    return default_weights_path()


def resolve_artifact(model: str | None, backend: str, precision: str = "fp32", calib=None) -> Path:
    """Path of an artifact the backend can load, building (and caching) it when needed."""
    key = canonical(backend)
    spec = model or "default"
    p = Path(spec)
    if p.suffix.lower() in ARTIFACT_SUFFIXES | {".safetensors"}:
        if not p.exists():
            raise EdgeTanError(f"model file not found: {p}")
        if p.suffix.lower() == SUFFIX[key]:
            return p
        if p.suffix.lower() in ARTIFACT_SUFFIXES:
            raise EdgeTanError(f"{p.name} is a {backend_for_path(p)} artifact; backend {key!r} needs "
                               f"{SUFFIX[key]} (export one with `edge-tan export --target {BUILD_TARGET.get(key, key)}`)")
    if key in ("torch", "torch-cuda"):
        if spec == "default":
            w = default_weights()
            if not w.is_file():
                raise EdgeTanError(f"the shipped default weights are missing ({w})")
            return w
        if p.suffix.lower() == ".safetensors":
            return p
        raise EdgeTanError("the torch backend needs a .safetensors weights file or 'default'")
    from .build import build_artifact
    return build_artifact(model=spec, target=BUILD_TARGET[key], precision=precision, out_dir=cache_dir(),
                          calib=calib)


def open_model(model: str | None, backend: str, precision: str = "fp32", calib=None, **opts) -> Runner:
    """Resolve and open in one call (what `track`, `eval`, `parity` and `bench` use)."""
    path = resolve_artifact(model, backend, precision, calib)
    return open_runner(canonical(backend), path, **opts)

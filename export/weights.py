"""Weights files without pickle: safetensors state dict + ModelMetadata in the safetensors header.

The header's `metadata` (str->str) holds `ModelMetadata.to_props()` plus `edge_tan.arch` (model name
and constructor kwargs), so a weights file alone rebuilds the model. fp16 is allowed for shipping
(`half=True`); loading always returns an fp32 model. `load_model(spec)` is the torch side's one way
from a model spec ("default", a registered name, a weights file or run folder) to a module.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.atomic import atomic_path
from edge_tan.runtime.errors import EdgeTanError, one_line
from edge_tan.runtime.geometry import WINDOW
from edge_tan.runtime.model_ref import ModelRef

from .models.registry import REGISTRY, build_model, make_metadata, model_kwargs
from .models.tan import TAN

ARCH_KEY = "edge_tan.arch"


def state_tensors(model: nn.Module, half: bool = False) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors of the state dict (floating tensors optionally fp16)."""
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if half and v.is_floating_point():
            v = v.half()
        out[k] = v.contiguous()
    return out


def weights_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) in sorted name order: stable across file layouts."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().to("cpu").contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_sha256(model: nn.Module) -> str:
    return weights_sha256(state_tensors(model))


def save_weights(model: nn.Module, metadata: ModelMetadata, path: str | Path, half: bool = False) -> str:
    """Write `path` atomically; returns the weights sha256 (also stored in the metadata)."""
    from safetensors.torch import save_file

    tensors = state_tensors(model, half)
    metadata.weights_sha256 = weights_sha256(tensors)
    arch = metadata.training.get("arch") if isinstance(metadata.training, dict) else None
    if not arch:
        raise EdgeTanError("metadata.training['arch'] (model name + kwargs) is required to save weights")
    header = dict(metadata.to_props())
    header[ARCH_KEY] = json.dumps(arch)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return metadata.weights_sha256


def read_header(path: str | Path) -> dict[str, str]:
    """The str->str metadata of a safetensors file (reads the JSON header only)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > 100_000_000:
                raise ValueError("bad header length")
            head = json.loads(f.read(n))
    except (OSError, ValueError) as e:
        raise EdgeTanError(f"{p}: not a safetensors weights file ({e})") from None
    ends = [v["data_offsets"][1] for k, v in head.items()
            if k != "__metadata__" and isinstance(v, dict) and len(v.get("data_offsets") or ()) == 2]
    need = 8 + n + max(ends, default=0)
    size = p.stat().st_size
    if size < need:   # the header survived, the tensors did not: say so instead of a loader traceback
        raise EdgeTanError(f"{p}: truncated weights file ({size} of {need} bytes): copy or download it again")
    return head.get("__metadata__", {}) or {}


def legacy_arch_kwargs(arch: dict) -> dict:
    """Constructor kwargs of a stored arch, filling knobs added since the file was written with the
    value that reproduces the network it was written from (not today's default)."""
    kw = dict(arch.get("kwargs", {}))
    spec = REGISTRY.get(arch.get("name"))
    if spec is not None and spec.build is TAN:   # every TAN-family entry (tan, mobilenetv2, crop, ...)
        kw.setdefault("view_head", "plain")   # files before the normalised view head
    return kw


def load_weights(path: str | Path, device: str = "cpu") -> tuple[nn.Module, ModelMetadata]:
    """(fp32 eval model, metadata) from a weights file; no pickle involved."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise EdgeTanError(f"weights file not found: {p}")
    header = read_header(p)
    if ARCH_KEY not in header:
        raise EdgeTanError(f"{p}: safetensors file has no edge-tan metadata (not written by edge-tan)")
    md = ModelMetadata.from_props(header)
    arch = json.loads(header[ARCH_KEY])
    model = build_model(arch["name"], **legacy_arch_kwargs(arch))
    try:
        tensors = load_file(str(p), device="cpu")
    except Exception as e:   # safetensors' own error types: a corrupt body past a valid header
        raise EdgeTanError(f"{p}: corrupt safetensors weights ({one_line(e)})") from None
    ref = model.state_dict()
    missing = set(ref) - set(tensors)
    extra = set(tensors) - set(ref)
    if missing or extra:
        raise EdgeTanError(f"{p}: weights do not match model {arch['name']!r} "
                           f"(missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]})")
    sha = weights_sha256(tensors)
    if md.weights_sha256 and md.weights_sha256 != sha:
        raise EdgeTanError(f"{p}: weights checksum mismatch (file corrupt or edited)")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(ref[k].shape):
            raise EdgeTanError(f"{p}: tensor {k} has shape {tuple(v.shape)}, model expects {tuple(ref[k].shape)}")
    model.load_state_dict({k: v.to(ref[k].dtype) for k, v in tensors.items()})
    md.weights_sha256 = sha
    md.precision = "fp32"   # the returned model is fp32 whatever the file's storage dtype
    return model.to(device).eval(), md


def ship_weights(src: str | Path, dst: str | Path, half: bool = True) -> str:
    """Re-save a (training) weights file for shipping, fp16 by default (half the size); returns sha256."""
    model, md = load_weights(src)
    md.training = {**md.training, "shipped_dtype": "fp16" if half else "fp32"}
    return save_weights(model, md, dst, half=half)


def load_model(spec: str | Path, size: int = WINDOW) -> tuple[nn.Module, ModelMetadata]:
    """(eval model, metadata) from a registered name (random init with seed 0, trained=False; `size`
    sets its window), a weights file, a run folder (its best.safetensors), or "default" (the shipped TAN)."""
    s = str(spec)
    if s in REGISTRY:
        torch.manual_seed(0)
        m = build_model(s)
        return m.eval(), make_metadata(m, s, model_kwargs(s), size=size)
    ref = ModelRef.parse(s)
    if ref.kind not in ("default", "weights"):
        what = f"a {ref.backend} artifact" if ref.path is not None else "not a registered name"
        raise EdgeTanError(f"model {s!r} is {what}: give a registered name ({', '.join(REGISTRY)}), 'default', "
                           "or a weights file")
    return load_weights(ref.path)

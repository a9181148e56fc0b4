"""`ModelRef`: what a user typed as `--model`, parsed once, with every check a file needs.

A model spec is one of:
- "default" (or nothing): the shipped TAN weights (`edge_tan.runtime.defaults`);
- a registered architecture name ("tan", "unet", ...): random-init, built on the torch side;
- a weights file (.safetensors) or a training run folder holding best.safetensors;
- an .onnx model (an artifact ONNX Runtime loads, and the source every other artifact is built from);
- another backend's artifact (.xml, .engine, ...) or an `edge-tan export` build folder (build.json).
Which suffix belongs to which backend comes from the backend registry (`edge_tan.runtime.registry`,
which imports no backend package until one is opened).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import defaults, registry
from .errors import EdgeTanError

KINDS = ("default", "registered", "weights", "onnx", "artifact")
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:40] or "model"


@dataclass(frozen=True)
class ModelRef:
    spec: str                  # as given
    kind: str                  # one of KINDS
    path: Path | None = None   # the file (None for a registered name)
    backend: str | None = None # the backend that loads `path` as it is (None for a registered name)

    @property
    def name(self) -> str:
        """Short slug naming built artifacts (`<name>-<target>-<precision>-<key>`)."""
        if self.kind == "default":
            return "tan-default"
        if self.kind == "registered":
            return _slug(self.spec)
        p = self.path
        return _slug(p.parent.name if p.stem == "best" else p.stem)

    @property
    def is_source(self) -> bool:
        """Can artifacts be built from it (weights, a registered name, the fp32 ONNX)?"""
        return self.kind != "artifact"

    @classmethod
    def parse(cls, spec: "str | Path | ModelRef | None") -> "ModelRef":
        if isinstance(spec, ModelRef):
            return spec

        s = "default" if spec is None or str(spec) == "" else str(spec)
        if s == "default":
            w = defaults.default_weights_path()
            if not w.is_file():
                raise EdgeTanError(f"the shipped default TAN weights are missing (edge_tan/assets/"
                                   f"{defaults.DEFAULT_WEIGHTS_NAME}): pass --model RUN_DIR/best.safetensors "
                                   "from `edge-tan train`, or --model tan for an untrained TAN")
            return cls(s, "default", w, registry.backend_for_path(w).name)
        p = Path(s)
        if p.is_dir():
            p = _file_in_folder(p)
        elif not p.exists():
            if "/" in s or "\\" in s or p.suffix or not _NAME.fullmatch(s):
                raise EdgeTanError(f"model file not found: {p}")
            # A registered architecture name: checked against the torch-side registry only when it is
            # built or opened, so a cache hit never imports torch.
            return cls(s, "registered")
        if not p.is_file():
            raise EdgeTanError(f"{p}: not a regular file")
        if p.stat().st_size == 0:
            raise EdgeTanError(f"{p.name}: empty file (interrupted copy?)")
        b = registry.backend_for_path(p)
        if p.suffix.lower() == ".onnx":
            kind = "onnx"
        elif b.target is None:   # a backend that loads what training writes: a weights file
            kind = "weights"
        else:
            kind = "artifact"
        return cls(s, kind, p, b.name)


def _file_in_folder(p: Path) -> Path:
    """An `edge-tan export` build folder -> its artifact; a training run folder -> best.safetensors."""
    bj = p / "build.json"
    if bj.is_file():
        try:
            name = json.loads(bj.read_text())["artifact"]
        except (OSError, ValueError, KeyError, TypeError):
            raise EdgeTanError(f"{bj}: corrupt build.json (no 'artifact' entry)") from None
        f = p / str(name)
        if not f.is_file():
            raise EdgeTanError(f"{p}: build.json names {name}, which is missing (interrupted build?)")
        return f
    if (p / "best.safetensors").is_file():
        return p / "best.safetensors"
    raise EdgeTanError(f"{p} is a folder without build.json: pass the artifact file itself")

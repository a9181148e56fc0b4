"""`open_model`: the one way to turn a model spec + backend + precision into an open Runner.

track, eval, live, bench, parity, batch processing and the embedding API all open models here, so
every integrity check runs on every path: the spec is parsed once (`ModelRef`: missing or empty
file, build folders, unknown file types), an artifact of another backend is refused with the export
command that makes the right one, anything that is not yet an artifact for the backend is built once
through `build_artifact` and cached (the first `edge-tan track` exports the default model, later runs
start at once), and the runner checks the artifact's metadata against its graph when it loads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from edge_tan.runtime import registry
from edge_tan.runtime.defaults import shipped_onnx
from edge_tan.runtime.errors import EdgeTanError, UsageError
from edge_tan.runtime.model_ref import ModelRef
from edge_tan.runtime.open import backend_for, open_artifact
from edge_tan.runtime.runner import Origin, Runner


def cache_dir() -> Path:
    """Where exported artifacts are cached (EDGE_TAN_CACHE, else ~/.cache/edge-tan/artifacts)."""
    root = os.environ.get("EDGE_TAN_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "edge-tan" / "artifacts"


def seal_fix(path: Path) -> str:
    """What to do about an artifact whose bytes fail their seal: a cache entry is deleted (the next
    run rebuilds it), any other file re-exported."""
    path = Path(path).resolve()
    try:
        path.relative_to(cache_dir().resolve())
        return f"delete the cache entry {path.parent} (the next run rebuilds it)"
    except ValueError:
        return "re-export it with `edge-tan export` (or copy it again from where it was built)"


def _torch_free_default(ref: ModelRef, b: registry.Backend, precision: str) -> ModelRef:
    """The default model for a backend built from ONNX starts from the shipped ONNX (no torch needed),
    when that ONNX was built from the shipped weights as they are now; else from the weights.
    A backend that runs the .onnx file itself runs it as shipped (fp32): for another precision the
    request goes the build path, which says what that target offers (never fp32 under another label)."""
    if ref.kind != "default" or b.target is None:
        return ref
    if b.suffix == ".onnx" and precision != "fp32":
        return ref
    onnx, _why = shipped_onnx()
    return ModelRef.parse(onnx) if onnx is not None else ref


def open_model(model: "str | Path | ModelRef | None", backend: str | None = None, precision: str = "fp32",
               calib: str | Path | None = None, *, build_options: dict | None = None, **runner_opts) -> Runner:
    """Open `model` with `backend` (default: the backend an artifact file's type implies).

    `precision` and `calib` apply when an artifact has to be built; `runner_opts` go to the runner
    (e.g. threads=1). The returned runner's `origin` says which file it loaded and whether that file
    was built now or already existed.
    """
    ref = ModelRef.parse(model)
    if backend is None and ref.kind in ("default", "registered"):
        raise UsageError(f"say which backend should open {ref.spec!r} (one of {', '.join(registry.names())})")
    b = backend_for(ref, backend)
    ref = _torch_free_default(ref, b, precision)
    t0 = time.perf_counter()
    if ref.path is not None and ref.path.suffix.lower() == b.suffix:
        return open_artifact(ref, b.name, seal_fix=seal_fix(ref.path), **runner_opts)
    if b.target is None:   # not built from ONNX (the torch reference): the backend opens the source itself
        if b.open_source is None:
            raise EdgeTanError(f"backend {b.name!r} loads {b.suffix} files only")
        return b.open_source(ref, **runner_opts)   # its origin: set by the runner (a model built in memory)
    if not ref.is_source:
        raise EdgeTanError(f"{ref.path.name} is a {ref.backend} artifact; backend {b.name!r} needs {b.suffix} "
                           f"(export one with `edge-tan export --target {b.target}`)")
    from .build import build_artifact

    built = build_artifact(ref, b.target, precision, cache_dir(), calib=calib, options=build_options)
    origin = Origin(built.path, cached=built.cached, build_s=None if built.cached else time.perf_counter() - t0)
    return b.runner.opened(built.path, origin, built.sha256, **runner_opts)   # build_artifact checked the seal

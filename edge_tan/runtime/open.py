"""`open_artifact`: an artifact file (or an `edge-tan export` build folder) -> an open, checked Runner.

What a device does to start: the file type names the backend (the registry), the backend's packages
must import, the artifact's seal is checked with one read of its bytes before any runtime sees them,
and the runner checks the metadata against the graph when it loads. Nothing is built here: making an
artifact from weights is the application's job (`edge_tan.targets.opener.open_model`).
"""

from __future__ import annotations

from pathlib import Path

from . import registry
from .defaults import shipped_onnx
from .errors import BackendUnavailable, EdgeTanError
from .model_ref import ModelRef
from .runner import Origin, Runner
from .seal import SEALED_SUFFIXES, Unsealed
from .seal import verify as verify_seal

REEXPORT = "re-export it with `edge-tan export` (or copy it again from where it was built)"


def backend_for(ref: ModelRef, backend: str | None) -> registry.Backend:
    """The registered backend that should open `ref`, checked to be usable here."""
    b = registry.get(backend if backend is not None else ref.backend)
    ok, why = registry.available(b.name)
    if not ok:
        raise BackendUnavailable(f"backend {b.name!r} unavailable: {why}")
    return b


def open_artifact(model: "str | Path | ModelRef" = "default", backend: str | None = None, *, seal_fix: str = REEXPORT,
                  cached: bool = True, build_s: float | None = None, **runner_opts) -> Runner:
    """Open an artifact file with `backend` (default: the one its file type names); "default" is
    the shipped model's ONNX (`edge_tan/assets/tan_default.onnx`).

    `seal_fix` is what the error says to do when the bytes fail their seal; `cached`/`build_s` go into
    the runner's `origin` (an artifact that already existed, or one the caller has just built).
    """
    ref = ModelRef.parse(model)
    if ref.kind == "default" and (backend is None or registry.get(backend).suffix == ".onnx"):
        onnx, why = shipped_onnx()   # the shipped weights as an ONNX artifact: no torch needed
        if onnx is None:
            raise EdgeTanError(f"the default model has no torch-free artifact: {why}")
        ref = ModelRef.parse(onnx)
    if ref.path is None:
        raise EdgeTanError(f"{ref.spec!r} is not a file: pass a .onnx/.xml/.engine file, or open it "
                           "with `edge-tan track --model` (which builds the artifact first)")
    b = backend_for(ref, backend)
    if ref.path.suffix.lower() != b.suffix:
        raise EdgeTanError(f"{ref.path.name} is a {ref.backend} artifact; backend {b.name!r} needs {b.suffix}"
                           + (f" (export one with `edge-tan export --target {b.target}`)" if b.target else ""))
    unsealed = digest = None
    if b.suffix in SEALED_SUFFIXES:
        try:   # one read of the bytes before any runtime sees them
            digest = verify_seal(ref.path, fix=seal_fix)
        except Unsealed as e:
            unsealed = e   # the runtime's own error names junk better ("not an ONNX model"); else this one
    runner = b.runner.opened(ref.path, Origin(ref.path, cached=cached, build_s=build_s), digest, **runner_opts)
    if unsealed is not None:
        runner.close()
        raise unsealed
    return runner

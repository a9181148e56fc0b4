"""The backend registry: every inference backend declares itself once, in its own module.

A backend module (e.g. `edge_tan.targets.openvino`) ends with one `register_backend(Backend(...))`
call naming everything edge-tan needs to know about it: aliases, the artifact file its runner loads,
the Python packages it needs, how to build that artifact from the fp32 ONNX, the runner class (and,
for the torch reference, how weights become that ONNX: `to_onnx`). It sits in the runtime because a
device opens an artifact by its file type; the modules it lists are loaded by name, not imported.
build (`targets.build`), open (`runtime.open`, `targets.opener`), `edge-tan info`, bench and parity read this registry
and nothing else, so adding a backend means adding one module that registers itself:

- built-in backends are the modules in `BUILTIN_MODULES` (a list of where to look, no knowledge);
- installed plugins are found through the `edge_tan.backends` entry-point group;
- tests (or an application) may call `register_backend()` directly.

Backend modules import their heavy package (onnxruntime, openvino, tensorrt, torch) only inside
functions, so loading the declarations is cheap, and `available()` answers from
`importlib.util.find_spec` without importing any backend package.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edge_tan.runtime.errors import BackendUnavailable, EdgeTanError, UsageError
from edge_tan.runtime.runner import Runner

# Where the built-in backends declare themselves (importing these does not import a backend package).
BUILTIN_MODULES = (
    "edge_tan.export.torch_ref",
    "edge_tan.targets.onnxruntime",
    "edge_tan.targets.openvino",
    "edge_tan.targets.tensorrt",
    "edge_tan.export.torch_cuda",
)
ENTRY_POINT_GROUP = "edge_tan.backends"
PRECISIONS = ("fp32", "fp16", "int8", "bf16")
# The one default of track, eval and batch: OpenVINO, the CPU runtime a device installs
# (`pip install edge-tan[openvino]`: no torch, no ONNX Runtime); it builds its IR from the shipped
# model's ONNX (edge_tan/assets/tan_default.onnx) once and caches it. ONNX Runtime opens that ONNX as
# it is (--backend onnxruntime).
DEFAULT_BACKEND = "openvino"


@dataclass(frozen=True)
class BuildRequest:
    """What a backend builder gets besides the fp32 ONNX: precision, calibration windows, options."""
    precision: str
    calib_set: object = None           # targets.calibration.CalibSet (int8) or None
    val_set: object = None             # validation windows for accuracy-controlled int8, or None
    accuracy_control: bool = False
    max_drop: float = 0.005
    keep_heads_fp32: bool = True
    options: dict = field(default_factory=dict)   # backend-specific build options (e.g. TensorRT's)
    out_dir: Path | None = None        # the cache folder (for caches shared across builds)


@dataclass(frozen=True)
class Backend:
    """Everything edge-tan knows about one backend.

    build(onnx_path, dest_file, metadata, request) -> report dict writes the artifact from the fp32
    ONNX (None: the artifact *is* the fp32 ONNX, or the backend is not built at all);
    open_source(ref, **opts) -> Runner opens a model that is not an artifact file (the torch
    reference builds the module from weights or a registered name); probe() -> (ok, why) adds a
    check beyond "the packages import" (a GPU); build_key(request) -> dict adds cache-key inputs.
    """
    name: str
    runner: type[Runner]
    suffix: str                                 # the file the runner loads: ".onnx", ".xml", ...
    requires: tuple[str, ...]                   # import names needed to run (first: the backend itself)
    aliases: tuple[str, ...] = ()
    pip_names: dict = field(default_factory=dict)    # import name -> pip name, for messages
    target: str | None = None                   # `edge-tan export --target` name; None: not exportable
    precisions: tuple[str, ...] = ("fp32",)     # precisions its artifacts can be built in
    precision_hint: str = ""                    # said when another precision is asked for
    build_requires: tuple[str, ...] = ()        # packages whose versions enter the cache key / metadata
    build: Callable | None = None
    open_source: Callable | None = None
    probe: Callable[[], tuple[bool, str]] | None = None
    build_key: Callable | None = None
    check_build: Callable[[], None] | None = None   # raise before a build when the toolchain is absent
    env_info: Callable[[], dict] | None = None  # details for `edge-tan info` (devices, providers)
    accuracy_control: bool = False              # int8 with a max accuracy drop (NNCF)
    gpu: bool = False                           # runs on a GPU (batch: one engine per GPU, no CPU threads)
    throughput: Callable | None = None          # (artifact, window, n) -> {"fps", ...}: a batch-throughput mode
    to_onnx: Callable | None = None             # (ref, out_path, window, opset, producer) -> ModelMetadata:
                                                # writes the fp32 ONNX from a source it loads (the torch side)

    @property
    def artifact_name(self) -> str:
        """File name of the artifact inside a build folder (`model.onnx`, `model.xml`, ...)."""
        return "model" + self.suffix


_REGISTRY: dict[str, Backend] = {}
_ALIASES: dict[str, str] = {}
_LOADED = False


def register_backend(backend: Backend) -> Backend:
    """Add (or replace) a backend; called once at the bottom of the backend's own module."""
    for other in _REGISTRY.values():
        if other.name != backend.name and other.suffix == backend.suffix and \
                not _same_artifact_family(other, backend):
            raise EdgeTanError(f"backend {backend.name!r}: suffix {backend.suffix} already belongs to {other.name!r}")
    _REGISTRY[backend.name] = backend
    for a in backend.aliases:
        _ALIASES[a] = backend.name
    return backend


def unregister_backend(name: str) -> None:
    """Remove a backend (tests that register a temporary one clean up with this)."""
    b = _REGISTRY.pop(name, None)
    if b is not None:
        for a in b.aliases:
            if _ALIASES.get(a) == name:
                del _ALIASES[a]


def _same_artifact_family(a: Backend, b: Backend) -> bool:
    """Two backends may share a suffix when neither is built from ONNX (torch and torch-cuda both
    load .safetensors weights); the first registered one is then the one a suffix implies."""
    return a.target is None and b.target is None


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)
    try:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # a broken distribution's metadata must not hide the built-in backends
        eps = ()
    for ep in eps:
        try:
            ep.load()
        except Exception as e:
            print(f"edge-tan: warning: backend plugin {ep.name!r} failed to load: {e}", file=sys.stderr)
    # a stable order whatever was imported first: built-ins as listed, then the rest as registered
    rank = {m: i for i, m in enumerate(BUILTIN_MODULES)}
    order = sorted(_REGISTRY.values(), key=lambda b: rank.get(b.runner.__module__, len(rank)))
    _REGISTRY.clear()
    _REGISTRY.update((b.name, b) for b in order)


def backends() -> dict[str, Backend]:
    """name -> Backend, built-ins first, in registration order."""
    _load()
    return dict(_REGISTRY)


def names() -> list[str]:
    return list(backends())


def get(name: str) -> Backend:
    """The Backend for a name or alias; EdgeTanError if unknown."""
    _load()
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise EdgeTanError(f"unknown backend {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def targets() -> list[str]:
    """The `edge-tan export --target` names, in registration order."""
    return [b.target for b in backends().values() if b.target]


def canonical(name: str) -> str:
    """Registry name for `name` (accepts the aliases backends declare); EdgeTanError if unknown."""
    return get(name).name


def for_target(target: str) -> Backend:
    """The backend an `edge-tan export --target` name builds for (UsageError if none does)."""
    t = str(target).strip().lower()
    _load()
    for b in _REGISTRY.values():
        if b.target == t:
            return b
    try:
        b = get(t)
    except EdgeTanError:
        b = None
    if b is None or b.target is None:
        targets = [x.target for x in _REGISTRY.values() if x.target]
        raise UsageError(f"unknown target {target!r}; choose one of {', '.join(targets)}")
    return b


def _has_module(mod: str) -> bool:
    if mod in sys.modules:          # already imported (or deliberately blocked with None)
        return sys.modules[mod] is not None
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def available(name: str) -> tuple[bool, str]:
    """(usable, reason) without importing the backend package."""
    b = get(name)
    for mod in b.requires:
        if not _has_module(mod):
            return False, f"{b.pip_names.get(mod, mod)} is not installed"
    if b.probe is not None:
        return b.probe()
    return True, "ok"


def runner_class(name: str) -> type[Runner]:
    b = get(name)
    ok, why = available(b.name)
    if not ok:
        raise BackendUnavailable(f"backend {b.name!r} unavailable: {why}")
    return b.runner


def backend_for_path(path: str | Path) -> Backend:
    """The backend whose runner loads this file type (by suffix)."""
    suffix = Path(path).suffix.lower()
    for b in backends().values():
        if b.suffix == suffix:
            return b
    raise EdgeTanError(f"{Path(path).name}: unknown artifact type {suffix!r} "
                       f"(expected one of {', '.join(sorted({b.suffix for b in _REGISTRY.values()}))})")


def onnx_exporter() -> Backend:
    """The backend that turns weights or a registered name into the fp32 ONNX (the torch reference)."""
    for b in backends().values():
        if b.to_onnx is not None:
            return b
    raise EdgeTanError("exporting needs the torch side (pip install 'edge-tan[train]'): no backend exports ONNX")


def suffixes() -> set[str]:
    return {b.suffix for b in backends().values()}

"""`edge-tan export`: model -> fp32 ONNX -> the backend's artifact, content-addressed and cached.

The pipeline is the same for every backend: resolve the model spec (`ModelRef`), export the fp32
ONNX once (cached on its own, shared by every other target), prepare INT8 calibration windows when
asked, then hand the ONNX to the backend's own `build` (declared in its module, see `registry`).

The cache key is a sha256 over everything that changes the artifact: weights, target, precision,
calibration-data fingerprint, quantisation options, the tool/backend versions and whatever the
backend adds (TensorRT: the GPU). Artifacts live in `out_dir/<model>-<target>-<precision>-<key12>/`
(with a `build.json`), are built in a temp folder and renamed into place, so a half-written artifact
is never visible and a repeated call with the same key returns at once without importing torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from edge_tan import __version__ as EDGE_TAN_VERSION
from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.atomic import atomic_dir, write_text
from edge_tan.runtime.errors import EdgeTanError, UsageError
from edge_tan.runtime.hashing import file_sha256
from edge_tan.runtime.seal import SEALED_SUFFIXES, SealError
from edge_tan.runtime.seal import seal as seal_artifact
from edge_tan.runtime.seal import verify as verify_seal

from edge_tan.runtime import registry
from edge_tan.runtime.model_ref import ModelRef
from edge_tan.runtime.registry import PRECISIONS, Backend, BuildRequest

ONNX_SOURCE_TARGET = "onnx"   # the target whose artifact (the fp32 ONNX) every other build starts from


@dataclass(frozen=True)
class Built:
    """What `build_artifact` returns: the file a runner opens, and whether it came from the cache."""
    path: Path
    cached: bool
    seconds: float      # wall time of this call (a cache hit: the lookup only)
    sha256: str | None = None   # the artifact's seal digest (edge_tan.runtime.seal), checked on a cache hit


def _pkg_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def producer_versions(backend: Backend) -> dict:
    """Tool + backend versions that go into the cache key and the artifact metadata (no imports)."""
    out = {"edge_tan": EDGE_TAN_VERSION}
    for p in backend.build_requires:
        v = _pkg_version(p)
        if v:
            out[p] = v
    return out


# ---- what is being exported -----------------------------------------------------------------
def _registry_fingerprint(name: str) -> str:
    """Registered names are random-init with a fixed seed: identify them by the model source code."""
    h = hashlib.sha256(f"registered:{name}".encode())
    try:
        spec = importlib.util.find_spec("edge_tan.export.models")
        if spec and spec.submodule_search_locations:
            for d in spec.submodule_search_locations:
                for p in sorted(Path(d).glob("*.py")):
                    h.update(p.name.encode() + p.read_bytes())
    except ImportError:
        pass
    return h.hexdigest()


def fingerprint(ref: ModelRef) -> str:
    return _registry_fingerprint(ref.spec) if ref.kind == "registered" else file_sha256(ref.path)


def _source_doc(ref: ModelRef) -> dict:
    """The build.json "source" entry (and the cache key's "kind": registered | weights | onnx)."""
    kind = "weights" if ref.kind == "default" else ref.kind
    spec = str(ref.path) if ref.path is not None else ref.spec
    return {"spec": spec, "name": ref.name, "kind": kind, "fingerprint": fingerprint(ref)}


# ---- ONNX ---------------------------------------------------------------------------------
def _export_onnx(ref: ModelRef, out_path: Path, window: int | None, opset: int, onnx_backend: Backend) -> ModelMetadata:
    """Weights or a registered name -> the fp32 ONNX, by the backend that declares `to_onnx` (the torch side)."""
    producer = {**producer_versions(onnx_backend), "opset": opset}
    return registry.onnx_exporter().to_onnx(ref, out_path, window, opset, producer)


def _cached_seal(dest: Path) -> str | None:
    """The seal digest a cache entry's build.json recorded (None: an entry from before seals)."""
    try:
        return json.loads((dest / "build.json").read_text()).get("artifact_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _has_seal(path: Path) -> bool:
    from edge_tan.runtime.seal import read_seal
    return read_seal(path)[0] is not None


# ---- main entry -----------------------------------------------------------------------------
def _validate(b: Backend, precision: str, calib, accuracy_control: bool) -> None:
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision not in b.precisions:
        raise UsageError(b.precision_hint or f"the {b.target} target builds {', '.join(b.precisions)} only")
    if precision == "int8" and importlib.util.find_spec("nncf") is None:
        raise EdgeTanError("INT8 calibration needs NNCF: pip install 'edge-tan[int8]'")
    if precision == "int8" and calib is None:
        raise UsageError("INT8 needs calibration data: pass --calib DATASET (an edge-tan dataset folder; the "
                         "windows are warped the way the tracker sees them)")
    if accuracy_control and precision != "int8":
        raise UsageError("--accuracy-control applies to --precision int8 only")
    if accuracy_control and not b.accuracy_control:
        able = [x.target for x in registry.backends().values() if x.accuracy_control]
        raise UsageError(f"--accuracy-control is implemented for --target {', '.join(able) or '(none)'} only")
    if b.check_build is not None:
        b.check_build()


def _cache_hit(dest: Path, artifact: Path) -> str | None:
    """The seal digest of a complete, intact cache entry; None when there is none (or one from before
    seals, rebuilt then); SealError when its bytes differ from those it recorded."""
    if not (artifact.is_file() and (dest / "build.json").is_file()):
        return None
    sealed = _cached_seal(dest)
    if sealed is None:   # entries from before seals existed are rebuilt
        return None
    fix = f"delete the cache entry {dest} (the next run rebuilds it) or export with --force"
    if artifact.suffix.lower() in SEALED_SUFFIXES:
        verify_seal(artifact, expected=sealed, fix=fix)
    elif file_sha256(artifact) != sealed:   # a plugin's own format: the whole file's hash
        raise SealError(f"{artifact}: bytes differ from those the cache entry recorded (tampered, truncated "
                        f"or corrupt): {fix}")
    return sealed


def _intact(dest: Path, artifact: Path) -> str | None:
    """`_cache_hit` without raising: the seal digest of a complete, intact entry, else None."""
    try:
        return _cache_hit(dest, artifact)
    except SealError:
        return None


def _source_onnx(ref: ModelRef, dest: Path, window: int | None, opset: int, onnx_b: Backend) -> None:
    """The fp32 ONNX every other artifact starts from: an .onnx source restamped, else exported."""
    from .onnx_file import onnx_metadata, restamp_onnx

    if ref.kind != "onnx":
        _export_onnx(ref, dest, window, opset, onnx_b)
        return
    if _has_seal(ref.path):   # an edge-tan artifact as the source: its claims hold only if its bytes do
        verify_seal(ref.path, fix="re-export it from its weights with `edge-tan export`")
    md = onnx_metadata(ref.path)
    md.precision, md.producer = "fp32", {**md.producer, **producer_versions(onnx_b)}
    restamp_onnx(ref.path, dest, md)


def _fp32_onnx(ref: ModelRef, out_dir: Path, window: int | None, opset: int) -> Path:
    """The fp32 ONNX a backend builds from: the cached (re-stamped) copy; or, where the `onnx` package
    is absent (a device install of edge-tan[openvino]) and the source is already a sealed edge-tan ONNX
    (the shipped default model's), that file itself, checked (the same graph and metadata)."""
    if ref.kind == "onnx" and importlib.util.find_spec("onnx") is None and _has_seal(ref.path):
        verify_seal(ref.path, fix="re-export it from its weights with `edge-tan export`")
        return ref.path
    return build_artifact(ref, ONNX_SOURCE_TARGET, "fp32", out_dir, window=window, opset=opset).path


def _from_onnx(b: Backend, onnx_path: Path, dest: Path, precision: str, opset: int, request: BuildRequest, calib,
               calib_limit: int, accuracy_control: bool) -> dict:
    """The backend's own build from the fp32 ONNX (with INT8 calibration windows when asked); its report."""
    from .onnx_file import onnx_metadata

    md = onnx_metadata(onnx_path)
    md.precision = precision
    md.producer = {**producer_versions(b), "opset": opset}
    if precision == "int8":
        from .calibration import dataset_windows
        calib_set = dataset_windows(calib, md, "train", limit=calib_limit)
        val_set = None
        if accuracy_control:
            try:
                val_set = dataset_windows(calib, md, "val", limit=min(calib_limit, 100), seed=1)
            except EdgeTanError:
                val_set = None
        request = replace(request, calib_set=calib_set, val_set=val_set)
    return b.build(onnx_path, dest, md, request) or {}


def build_artifact(model: "str | Path | ModelRef" = "default", target: str = "onnx", precision: str = "fp32",
                   out_dir: str | Path = "artifacts", calib: str | Path | None = None,
                   accuracy_control: bool = False, max_drop: float = 0.005, force: bool = False, *,
                   window: int | None = None, opset: int = 18, calib_limit: int | None = None,
                   keep_heads_fp32: bool = True, options: dict | None = None) -> Built:
    """Build (or fetch from the cache) the artifact for `target` (an export target or backend name)."""
    t0 = time.perf_counter()
    b = registry.for_target(target)
    precision = str(precision).lower()
    _validate(b, precision, calib, accuracy_control)
    out_dir = Path(out_dir)
    ref = ModelRef.parse(model)
    if not ref.is_source:
        raise EdgeTanError(f"{ref.path.name} is a {ref.backend} artifact: export from 'default', a registered "
                           "name, a .safetensors weights file or an .onnx model")
    src = _source_doc(ref)
    calib_fp = None
    if calib_limit is None:  # NNCF's usual 300 windows; the 35-GMAC baselines would take minutes, so 64
        calib_limit = 64 if ref.name.lower().startswith(("unet", "pspnet")) else 300
    if precision == "int8":
        from .calibration import dataset_fingerprint
        calib_fp = dataset_fingerprint(calib)
    key_doc = {"weights": src["fingerprint"], "kind": src["kind"], "target": b.target, "precision": precision,
               "window": window if ref.kind == "registered" else None, "opset": opset,
               "versions": producer_versions(b)}
    if precision == "int8":
        key_doc.update(calib=calib_fp, calib_limit=calib_limit, keep_heads_fp32=keep_heads_fp32,
                       accuracy_control=bool(accuracy_control),
                       max_drop=float(max_drop) if accuracy_control else None)
    request = BuildRequest(precision, accuracy_control=bool(accuracy_control), max_drop=float(max_drop),
                           keep_heads_fp32=keep_heads_fp32, options=dict(options or {}), out_dir=out_dir)
    if b.build_key is not None:
        key_doc.update(b.build_key(request))
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True, default=str).encode()).hexdigest()
    dest = out_dir / f"{ref.name}-{b.target}-{precision}-{key[:12]}"
    artifact = dest / b.artifact_name
    if not force:
        sealed = _cache_hit(dest, artifact)
        if sealed is not None:
            return Built(artifact, True, time.perf_counter() - t0, sealed)

    report: dict = {}
    # another process (a batch worker) may finish the same entry first: keep its intact one (and its digest)
    theirs: dict = {}

    def keep_theirs() -> bool:
        theirs["digest"] = _intact(dest, artifact)
        return theirs["digest"] is not None

    with atomic_dir(dest, keep=None if force else keep_theirs) as tmp:
        if b is registry.for_target(ONNX_SOURCE_TARGET):   # 1) the fp32 ONNX itself
            _source_onnx(ref, tmp / b.artifact_name, window, opset, b)
        else:             # 2) from the cached fp32 ONNX, by the backend's own builder
            onnx_path = _fp32_onnx(ref, out_dir, window, opset)
            report = _from_onnx(b, onnx_path, tmp / b.artifact_name, precision, opset, request, calib, calib_limit,
                                accuracy_control)
        digest = seal_artifact(tmp / b.artifact_name) or file_sha256(tmp / b.artifact_name)
        info = {"model": str(model.spec if isinstance(model, ModelRef) else model), "source": src,
                "target": b.target, "precision": precision, "artifact": b.artifact_name, "key": key,
                "artifact_sha256": digest,
                "key_inputs": key_doc, "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.perf_counter() - t0, 2), **report}
        write_text(tmp / "build.json", json.dumps(info, indent=1, default=str))
    return Built(artifact, False, time.perf_counter() - t0, theirs.get("digest") or digest)

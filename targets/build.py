"""`edge-tan export`: model -> ONNX -> target artifact, content-addressed and cached.

The cache key is a sha256 over everything that changes the artifact: weights, target, precision,
calibration-data fingerprint, quantisation options and the tool/backend versions. Artifacts live in
`out_dir/<model>-<target>-<precision>-<key12>/` (with a `build.json`), are built in a temp folder
and renamed into place, so a half-written artifact is never visible and a repeated call with the
same key returns at once without importing torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from edge_tan import __version__ as EDGE_TAN_VERSION
from edge_tan.artifact import ModelMetadata
from edge_tan.atomic import atomic_dir, write_text
from edge_tan.errors import EdgeTanError, UsageError
from edge_tan.defaults import DEFAULT_WEIGHTS_NAME
from edge_tan.runner import Runner

TARGETS = ("onnx", "openvino", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
ARTIFACT = {"onnx": "model.onnx", "openvino": "model.xml", "tensorrt": "model.engine"}
TARGET_PACKAGES = {
    "onnx": ("torch", "onnx", "onnxscript"),
    "openvino": ("torch", "onnx", "openvino", "nncf"),
    "tensorrt": ("torch", "onnx", "nncf", "tensorrt", "cuda-python"),
}


def _pkg_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def producer_versions(target: str) -> dict:
    """Tool + backend versions that go into the cache key and the artifact metadata (no imports)."""
    out = {"edge_tan": EDGE_TAN_VERSION}
    for p in TARGET_PACKAGES[target]:
        v = _pkg_version(p)
        if v:
            out[p] = v
    return out


# ---- what is being exported -----------------------------------------------------------------
@dataclass
class Source:
    spec: str          # what load_model() gets
    name: str          # folder-name slug
    kind: str          # registered | weights | onnx
    fingerprint: str   # sha256 identifying the weights


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:40] or "model"


def default_weights_path() -> Path | None:
    """The shipped TAN weights, if this install has them."""
    from edge_tan.defaults import default_weights_path as shipped
    p = shipped()
    return p if p.is_file() else None


def _registry_fingerprint(name: str) -> str:
    """Registered names are random-init with a fixed seed: identify them by the model source code."""
    h = hashlib.sha256(f"registered:{name}".encode())
    try:
        import importlib.util
        spec = importlib.util.find_spec("edge_tan.export.models")
        if spec and spec.submodule_search_locations:
            for d in spec.submodule_search_locations:
                for p in sorted(Path(d).glob("*.py")):
                    h.update(p.name.encode() + p.read_bytes())
    except ImportError:
        pass
    return h.hexdigest()


def resolve_source(model: str | Path) -> Source:
    s = str(model)
    p = Path(s)
    if s == "default":
        w = default_weights_path()
        if w is None:
            raise EdgeTanError("the shipped default TAN weights are missing (edge_tan/assets/"
                               f"{DEFAULT_WEIGHTS_NAME}): pass --model RUN_DIR/best.safetensors from "
                               "`edge-tan train`, or --model tan for an untrained TAN")
        return Source(str(w), "tan-default", "weights", _sha256_file(w))
    if p.is_dir() and (p / "best.safetensors").is_file():
        p = p / "best.safetensors"
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".onnx":
            return Source(str(p), _slug(p.stem), "onnx", _sha256_file(p))
        if suffix == ".safetensors":
            name = p.parent.name if p.stem == "best" else p.stem
            return Source(str(p), _slug(name), "weights", _sha256_file(p))
        raise EdgeTanError(f"{p.name}: --model must be 'default', a registered name, a .safetensors weights "
                           "file or an .onnx model")
    if "/" in s or p.suffix:
        raise EdgeTanError(f"model file not found: {p}")
    # A registered architecture name. It is checked against the registry only on a cache miss
    # (load_model raises for unknown names), so a cache hit never imports torch.
    if not re.fullmatch(r"[A-Za-z0-9_-]+", s):
        raise EdgeTanError(f"unknown model {s!r}: not a registered name or an existing file")
    return Source(s, _slug(s), "registered", _registry_fingerprint(s))


# ---- ONNX ---------------------------------------------------------------------------------
def _torch_onnx_export(module, md: ModelMetadata, out_path: Path, opset: int) -> None:
    """Plain torch.onnx.export + metadata_props (used only when edge_tan.export.onnx_export is absent)."""
    import onnx
    import torch

    from .torch_ref import outputs_to_dict

    names = list(md.outputs)

    class AsTuple(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            d = outputs_to_dict(self.m(x), names)
            return tuple(d[k] for k in names)

    dyn = {n: {0: "N"} for n in [md.input_name, *names]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(AsTuple(module.eval()), torch.zeros(1, 1, md.window, md.window), str(out_path),
                          input_names=[md.input_name], output_names=names, opset_version=opset,
                          dynamic_axes=dyn, dynamo=False)
    m = onnx.load(str(out_path))
    onnx.helper.set_model_props(m, md.to_props())
    onnx.checker.check_model(m)
    onnx.save(m, str(out_path))


def _export_onnx(src: Source, out_path: Path, window: int | None, opset: int) -> ModelMetadata:
    try:
        from edge_tan.export.models.registry import load_model
    except ImportError as e:
        raise EdgeTanError(f"exporting needs the torch side (pip install 'edge-tan[train]'): {e}") from None
    module, md = load_model(src.spec, size=window) if (window and src.kind == "registered") else load_model(src.spec)
    if not md.weights_sha256:
        try:
            from edge_tan.export.weights import model_sha256
            md.weights_sha256 = model_sha256(module)
        except ImportError:
            pass
    md.precision = "fp32"
    md.producer = {**producer_versions("onnx"), "opset": opset}
    try:
        from edge_tan.export.onnx_export import export_onnx
    except ImportError:
        export_onnx = None
    if export_onnx is not None:
        export_onnx(module, md, out_path, opset=opset, dynamic_batch=True, check=True)
    else:
        _torch_onnx_export(module, md, out_path, opset)
    return md


def _restamp_onnx(src_path: Path, out_path: Path, md: ModelMetadata) -> None:
    import onnx

    m = onnx.load(str(src_path))
    del m.metadata_props[:]
    onnx.helper.set_model_props(m, md.to_props())
    onnx.save(m, str(out_path))


# ---- main entry -----------------------------------------------------------------------------
def _validate(target: str, precision: str, calib, accuracy_control: bool) -> None:
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if target == "onnx" and precision != "fp32":
        raise UsageError("the onnx target is exported in fp32 only: use --target openvino for fp16/int8 on "
                         "CPU, or --target tensorrt on an NVIDIA GPU")
    if precision == "int8" and calib is None:
        raise UsageError("INT8 needs calibration data: pass --calib DATASET (an edge-tan dataset folder; the "
                         "windows are warped the way the tracker sees them)")
    if accuracy_control and precision != "int8":
        raise UsageError("--accuracy-control applies to --precision int8 only")
    if accuracy_control and target != "openvino":
        raise UsageError("--accuracy-control is implemented for --target openvino (NNCF) only")
    if target == "tensorrt":
        from .tensorrt import _cudart, _trt
        _trt()
        _cudart()


def build_artifact(model: str | Path = "default", target: str = "onnx", precision: str = "fp32",
                   out_dir: str | Path = "artifacts", calib: str | Path | None = None,
                   accuracy_control: bool = False, max_drop: float = 0.005, force: bool = False, *,
                   window: int | None = None, opset: int = 18, calib_limit: int | None = None,
                   keep_heads_fp32: bool = True, trt_options: dict | None = None) -> Path:
    """Build (or fetch from the cache) the artifact; returns the file a runner opens."""
    target, precision = str(target).lower(), str(precision).lower()
    _validate(target, precision, calib, accuracy_control)
    out_dir = Path(out_dir)
    src = resolve_source(model)
    calib_fp = None
    if calib_limit is None:  # NNCF's usual 300 windows; the 35-GMAC baselines would take minutes, so 64
        calib_limit = 64 if src.name.lower().startswith(("unet", "pspnet")) else 300
    if precision == "int8":
        from .calibration import dataset_fingerprint
        calib_fp = dataset_fingerprint(calib)
    key_doc = {"weights": src.fingerprint, "kind": src.kind, "target": target, "precision": precision,
               "window": window if src.kind == "registered" else None, "opset": opset,
               "versions": producer_versions(target)}
    if precision == "int8":
        key_doc.update(calib=calib_fp, calib_limit=calib_limit, keep_heads_fp32=keep_heads_fp32,
                       accuracy_control=bool(accuracy_control),
                       max_drop=float(max_drop) if accuracy_control else None)
    if target == "tensorrt":
        from .tensorrt import gpu_info
        key_doc.update(gpu=gpu_info((trt_options or {}).get("device", 0)), trt_options=trt_options or {})
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True, default=str).encode()).hexdigest()
    dest = out_dir / f"{src.name}-{target}-{precision}-{key[:12]}"
    artifact = dest / ARTIFACT[target]
    if not force and artifact.is_file() and (dest / "build.json").is_file():
        return artifact

    t0 = time.perf_counter()
    report: dict = {}
    with atomic_dir(dest) as tmp:
        # 1) fp32 ONNX (cached on its own so other targets/precisions reuse it)
        if target == "onnx":
            if src.kind == "onnx":
                from .onnxruntime import onnx_metadata
                md = onnx_metadata(src.spec)
                md.precision, md.producer = "fp32", {**md.producer, **producer_versions("onnx")}
                _restamp_onnx(Path(src.spec), tmp / ARTIFACT["onnx"], md)
            else:
                md = _export_onnx(src, tmp / ARTIFACT["onnx"], window, opset)
        else:
            onnx_path = build_artifact(model, "onnx", "fp32", out_dir, window=window, opset=opset)
            from .onnxruntime import onnx_metadata
            md = onnx_metadata(onnx_path)
            md.precision = precision
            md.producer = {**producer_versions(target), "opset": opset}
            calib_set = val_set = None
            if precision == "int8":
                from .calibration import dataset_windows
                calib_set = dataset_windows(calib, md, "train", limit=calib_limit)
                if accuracy_control:
                    try:
                        val_set = dataset_windows(calib, md, "val", limit=min(calib_limit, 100), seed=1)
                    except EdgeTanError:
                        val_set = None
            if target == "openvino":
                report = _build_openvino(onnx_path, tmp / ARTIFACT[target], md, precision, calib_set, val_set,
                                         accuracy_control, max_drop, keep_heads_fp32)
            else:
                report = _build_tensorrt(onnx_path, tmp, md, precision, calib_set, keep_heads_fp32,
                                         trt_options or {}, out_dir)
        info = {"model": str(model), "source": asdict(src), "target": target, "precision": precision,
                "artifact": ARTIFACT[target], "key": key, "key_inputs": key_doc,
                "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.perf_counter() - t0, 2), **report}
        write_text(tmp / "build.json", json.dumps(info, indent=1, default=str))
    return artifact


def _build_openvino(onnx_path: Path, xml: Path, md: ModelMetadata, precision: str, calib_set, val_set,
                    accuracy_control: bool, max_drop: float, keep_heads_fp32: bool) -> dict:
    from . import openvino as tov

    ov_model = tov.onnx_to_ov(onnx_path)
    if precision != "int8":
        # The CPU plugin here computes in f32/bf16 either way; fp16 halves the .bin, speed unchanged.
        tov.save_ir(ov_model, xml, md, compress_to_fp16=(precision == "fp16"))
        return {}
    from .calibration import compare_outputs, quantize_ov

    q, rep = quantize_ov(tov.onnx_to_ov(onnx_path), calib_set, val_set, accuracy_control=accuracy_control,
                         max_drop=max_drop, keep_heads_fp32=keep_heads_fp32)
    check = val_set if val_set is not None else calib_set
    ref_cm = tov.core().compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    q_cm = tov.core().compile_model(q, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    names = list(md.outputs)
    n = min(len(check), 64)
    ref = [{k: v for k, v in zip(names, _ov_outputs(ref_cm, check.windows[i], names))} for i in range(n)]
    tst = [{k: v for k, v in zip(names, _ov_outputs(q_cm, check.windows[i], names))} for i in range(n)]
    rep["check_vs_fp32"] = compare_outputs(ref, tst, check.masks[:n])
    md.producer = {**md.producer, "quantization": rep}
    tov.save_ir(q, xml, md, compress_to_fp16=False)
    return {"quantization": rep}


def _ov_outputs(cm, x, names):
    res = cm(x)
    return [res[cm.output(n)] for n in names]


def _build_tensorrt(onnx_path: Path, tmp: Path, md: ModelMetadata, precision: str, calib_set,
                    keep_heads_fp32: bool, trt_options: dict, out_dir: Path) -> dict:
    from .tensorrt import BuildOptions, build_engine, gpu_info

    src_onnx = onnx_path
    rep: dict = {}
    if precision == "int8":
        import onnx

        from .calibration import quantize_onnx

        q = quantize_onnx(onnx.load(str(onnx_path)), calib_set, keep_heads_fp32=keep_heads_fp32)
        del q.metadata_props[:]
        onnx.helper.set_model_props(q, md.to_props())
        src_onnx = tmp / "model.qdq.onnx"
        onnx.save(q, str(src_onnx))
        rep["quantization"] = {"method": "nncf-qdq", "calibration_windows": len(calib_set),
                               "keep_heads_fp32": keep_heads_fp32}
    try:
        opts = BuildOptions(precision=precision, **trt_options)
    except TypeError as e:
        raise UsageError(f"bad TensorRT build option: {e}") from None
    if opts.timing_cache is None:   # one timing cache per GPU, shared by every build in out_dir
        opts.timing_cache = str(out_dir / f"tensorrt-timing-{gpu_info(opts.device)['sm']}.cache")
    build_engine(src_onnx, tmp / ARTIFACT["tensorrt"], md, opts)
    return rep


# ---- opening --------------------------------------------------------------------------------
def open_artifact(path: str | Path, backend: str | None = None, **opts) -> Runner:
    """Open an artifact file (or a build folder) with the backend its suffix implies."""
    from .registry import open_runner

    p = Path(path)
    if p.is_dir():
        bj = p / "build.json"
        if not bj.is_file():
            raise EdgeTanError(f"{p} is a folder without build.json: pass the artifact file itself")
        p = p / json.loads(bj.read_text())["artifact"]
    if not p.exists():
        raise EdgeTanError(f"artifact not found: {p}")
    if p.stat().st_size == 0:
        raise EdgeTanError(f"{p.name}: empty file (interrupted copy?)")
    return open_runner(backend, p, **opts)

"""TensorRT: ONNX -> serialized engine (+ JSON sidecar) and a runner on raw CUDA buffers.

Written against NVIDIA's Python API for TensorRT 8.6 and 10.x (TensorRT is imported lazily; when it
is missing every entry point says "TensorRT is not installed"). Engines are tied to the TensorRT
version and GPU that built them, so the sidecar `<name>.engine.json` records metadata props,
TensorRT version, GPU name, compute capability and build flags, and loading checks them *before*
deserialising: a mismatch is reported as "built with TensorRT X on sm_A; this is Y on sm_B: rebuild".
The engine file itself stays exactly what TensorRT wrote (no header glued on).

INT8 comes from explicit Q/DQ ONNX (NNCF, see calibration.quantize_onnx) or, for implicit
quantisation, an IInt8EntropyCalibrator2 over the same calibration windows. On Jetson, `dla_core`
places layers on a DLA with GPU fallback. CUDA memory goes through cuda-python's runtime bindings:
pinned host buffers + device buffers allocated once per batch size, one stream, optional CUDA graph
capture of execute_async_v3 for the fixed tracker shape.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.atomic import write_bytes, write_text
from edge_tan.runtime.errors import BackendUnavailable, EdgeTanError, UsageError
from edge_tan.runtime.runner import Runner

from edge_tan.runtime.registry import Backend, BuildRequest, register_backend

SIDECAR_FORMAT = "edge-tan-trt/1"
NOT_INSTALLED = "TensorRT is not installed (pip install tensorrt cuda-python; needs an NVIDIA GPU with a driver)"


# ---- lazy imports ---------------------------------------------------------------------------
def _trt():
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailable(NOT_INSTALLED) from None
    return trt


def _cudart():
    """cuda-python's runtime module: `cuda.bindings.runtime` (>= 12.6) or the older `cuda.cudart`."""
    try:
        from cuda.bindings import runtime as cudart
        return cudart
    except ImportError:
        pass
    try:
        from cuda import cudart
        return cudart
    except ImportError:
        raise BackendUnavailable("cuda-python is not installed (pip install cuda-python): the TensorRT runner "
                           "needs it for CUDA buffers and streams") from None


def _major(version: str) -> int:
    return int(str(version).split(".")[0])


def _ck(ret, what: str = "CUDA call"):
    """cuda-python returns (err, *values): raise on error, return the value(s)."""
    cudart = _cudart()
    if not isinstance(ret, tuple):
        ret = (ret,)
    err = ret[0]
    if err != cudart.cudaError_t.cudaSuccess:
        try:
            msg = cudart.cudaGetErrorString(err)[1]
            msg = msg.decode() if isinstance(msg, bytes) else str(msg)
        except Exception:
            msg = str(err)
        raise EdgeTanError(f"{what} failed: {msg}")
    if len(ret) == 1:
        return None
    return ret[1] if len(ret) == 2 else ret[1:]


def gpu_info(device: int = 0) -> dict:
    """{"gpu": name, "sm": "sm_87", "compute_capability": "8.7"} of a CUDA device."""
    cudart = _cudart()
    prop = _ck(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = prop.name
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
    return {"gpu": str(name), "sm": f"sm_{prop.major}{prop.minor}", "compute_capability": f"{prop.major}.{prop.minor}"}


def _logger(trt, verbose: bool = False):
    return trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)


def _to_bytes(buf) -> bytes:
    """IHostMemory (buffer protocol) -> bytes."""
    return memoryview(buf).tobytes()


def sidecar_path(engine_path: str | Path) -> Path:
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


# ---- build ----------------------------------------------------------------------------------
@dataclass
class BuildOptions:
    precision: str = "fp32"             # fp32 | fp16 | int8
    workspace_mb: int = 1024
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 8
    dla_core: int | None = None         # Jetson DLA core (None = GPU only)
    gpu_fallback: bool = True           # DLA: run unsupported layers on the GPU
    version_compatible: bool = False    # engine runs on later TensorRT versions (lean runtime embedded)
    hardware_compatibility: str | None = None   # e.g. "AMPERE_PLUS": one engine for sm_80+
    timing_cache: str | None = None     # path; read if present, written after the build
    int8_calibration: str = "qdq"       # qdq (ONNX carries Q/DQ) | entropy (IInt8EntropyCalibrator2)
    builder_optimization_level: int | None = None
    device: int = 0


def _entropy_calibrator(trt, windows: list[np.ndarray], cache_file: Path | None, batch: int = 8):
    """IInt8EntropyCalibrator2 feeding the calibration windows from one device buffer."""
    cudart = _cudart()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.data = np.ascontiguousarray(np.concatenate(windows, 0), np.float32)
            self.batch = max(1, min(batch, len(self.data)))
            self.pos = 0
            self.nbytes = self.data[: self.batch].nbytes
            self.dev = _ck(cudart.cudaMalloc(self.nbytes), "cudaMalloc")
            self.cache_file = cache_file

        def get_batch_size(self):
            return self.batch

        def get_batch(self, names):
            if self.pos + self.batch > len(self.data):
                return None
            chunk = np.ascontiguousarray(self.data[self.pos:self.pos + self.batch])
            _ck(cudart.cudaMemcpy(self.dev, chunk.ctypes.data, chunk.nbytes,
                                  cudart.cudaMemcpyKind.cudaMemcpyHostToDevice), "cudaMemcpy")
            self.pos += self.batch
            return [int(self.dev)]

        def read_calibration_cache(self):
            if self.cache_file is not None and self.cache_file.is_file():
                return self.cache_file.read_bytes()
            return None

        def write_calibration_cache(self, cache):
            if self.cache_file is not None:
                write_bytes(self.cache_file, _to_bytes(cache))

        def free(self):
            if self.dev is not None:
                cudart.cudaFree(self.dev)
                self.dev = None

    return EntropyCalibrator()


def _has_qdq(onnx_bytes: bytes) -> bool:
    return b"QuantizeLinear" in onnx_bytes


def _parse_network(trt, builder, logger, onnx_bytes: bytes, name: str, major: int):
    """(network, creation flags) parsed from the ONNX bytes; the parser's errors as one line."""
    # TensorRT 10 networks are always explicit-batch; 8.x must ask for it.
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgeTanError(f"TensorRT cannot parse {name}: {errs[:300]}")
    return network, flags


def _set_precision(trt, builder, config, opts: BuildOptions, onnx_bytes: bytes, calib_windows, engine_path,
                   notes: list) -> tuple[str | None, object]:
    """FP16/INT8 builder flags; (int8 mode or None, the entropy calibrator to free after the build or None)."""
    if opts.precision in ("fp16", "int8"):
        if not builder.platform_has_fast_fp16:
            notes.append("this GPU has no fast FP16")
        config.set_flag(trt.BuilderFlag.FP16)   # int8: layers left in float run in fp16
    if opts.precision != "int8":
        return None, None
    if not builder.platform_has_fast_int8:
        notes.append("this GPU has no fast INT8")
    config.set_flag(trt.BuilderFlag.INT8)
    if _has_qdq(onnx_bytes):
        return "explicit-qdq", None
    if not calib_windows:
        raise EdgeTanError("TensorRT INT8 needs a Q/DQ ONNX or calibration windows (--calib DATASET)")
    cache_file = Path(str(engine_path) + ".calib") if engine_path else None
    calibrator = _entropy_calibrator(trt, calib_windows, cache_file)
    config.int8_calibrator = calibrator
    return "entropy-calibrator", calibrator


def _set_placement(trt, builder, config, opts: BuildOptions, ver: str) -> None:
    """DLA core, version/hardware compatibility and the builder's optimisation level."""
    if opts.dla_core is not None:
        if getattr(builder, "num_DLA_cores", 0) <= opts.dla_core:
            raise EdgeTanError(f"DLA core {opts.dla_core} requested but this device has "
                               f"{getattr(builder, 'num_DLA_cores', 0)} DLA cores (DLA exists on Jetson Xavier/Orin)")
        if opts.precision == "fp32":
            raise EdgeTanError("DLA runs FP16 or INT8 only: use --precision fp16 or int8")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(opts.dla_core)
        if opts.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if opts.version_compatible:
        if not hasattr(trt.BuilderFlag, "VERSION_COMPATIBLE"):
            raise EdgeTanError(f"TensorRT {ver} cannot build version-compatible engines (needs >= 8.6)")
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if opts.hardware_compatibility:
        level = getattr(getattr(trt, "HardwareCompatibilityLevel", None), opts.hardware_compatibility.upper(), None)
        if level is None:
            raise EdgeTanError(f"TensorRT {ver} has no hardware compatibility level {opts.hardware_compatibility!r}")
        config.hardware_compatibility_level = level
    if opts.builder_optimization_level is not None:
        config.builder_optimization_level = int(opts.builder_optimization_level)


def _set_batch_profile(builder, config, network, opts: BuildOptions, window: int, notes: list) -> None:
    """Dynamic batch profile (the tracker uses opt_batch=1; clip processing may batch up to max_batch)."""
    inp = network.get_input(0)
    lo, opt, hi = opts.min_batch, opts.opt_batch, opts.max_batch
    if opts.dla_core is not None and (lo, hi) != (opt, opt):
        lo = hi = opt   # DLA runs static shapes only; a dynamic profile would push every layer to the GPU
        notes.append(f"DLA: batch fixed to {opt}")
    if not 1 <= lo <= opt <= hi:
        raise EdgeTanError(f"TensorRT batch profile must satisfy 1 <= min <= opt <= max, got {lo}/{opt}/{hi}")
    profile = builder.create_optimization_profile()
    W = window
    profile.set_shape(inp.name, (lo, 1, W, W), (opt, 1, W, W), (hi, 1, W, W))
    config.add_optimization_profile(profile)


def build_engine(onnx_path: str | Path, engine_path: str | Path, metadata: ModelMetadata,
                 opts: BuildOptions | None = None, calib_windows: list[np.ndarray] | None = None,
                 verbose: bool = False) -> Path:
    """Build `engine_path` (+ sidecar) from an ONNX file. Raises EdgeTanError with the parser's or
    builder's reason on failure. Both files are written atomically, engine first."""
    opts = opts or BuildOptions()
    trt = _trt()
    ver = trt.__version__
    if opts.precision not in ("fp32", "fp16", "int8"):
        raise EdgeTanError(f"TensorRT precision must be fp32, fp16 or int8, got {opts.precision!r}")
    onnx_bytes = Path(onnx_path).read_bytes()
    logger = _logger(trt, verbose)
    builder = trt.Builder(logger)
    network, flags = _parse_network(trt, builder, logger, onnx_bytes, Path(onnx_path).name, _major(ver))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_mb) << 20)
    notes = []
    int8_mode, calibrator = _set_precision(trt, builder, config, opts, onnx_bytes, calib_windows, engine_path, notes)
    _set_placement(trt, builder, config, opts, ver)
    # Timing cache: reused across builds so rebuilding (other precision, same GPU) skips tactic timing.
    tc_path = Path(opts.timing_cache) if opts.timing_cache else None
    cache = config.create_timing_cache(tc_path.read_bytes() if tc_path and tc_path.is_file() else b"")
    config.set_timing_cache(cache, False)
    _set_batch_profile(builder, config, network, opts, metadata.window, notes)

    t0 = time.perf_counter()
    try:
        plan = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if plan is None:
        raise EdgeTanError("TensorRT engine build failed (run with verbose=True for the builder log)")
    data = _to_bytes(plan)
    build_s = time.perf_counter() - t0
    engine_path = Path(engine_path)
    write_bytes(engine_path, data)
    if tc_path is not None:
        write_bytes(tc_path, _to_bytes(config.get_timing_cache().serialize()))
    gpu = gpu_info(opts.device)
    side = {
        "format": SIDECAR_FORMAT,
        "metadata": metadata.to_props(),
        "tensorrt": ver,
        **gpu,
        "engine_sha256": hashlib.sha256(data).hexdigest(),
        "engine_bytes": len(data),
        "build": {**asdict(opts), "int8_mode": int8_mode, "explicit_batch_flag": bool(flags),
                  "build_seconds": round(build_s, 2), "notes": notes},
    }
    write_text(sidecar_path(engine_path), json.dumps(side, indent=1))
    return engine_path


# ---- compatibility --------------------------------------------------------------------------
def read_sidecar(engine_path: str | Path) -> dict:
    engine_path = Path(engine_path)
    sc = sidecar_path(engine_path)
    if not sc.is_file():
        raise EdgeTanError(f"{engine_path.name}: sidecar {sc.name} missing (edge-tan engines carry their "
                           "metadata and build info beside the engine; rebuild with `edge-tan export --target tensorrt`)")
    try:
        side = json.loads(sc.read_text())
        assert side.get("format") == SIDECAR_FORMAT and isinstance(side.get("metadata"), dict)
    except (json.JSONDecodeError, AssertionError, AttributeError):
        raise EdgeTanError(f"{sc.name}: corrupt TensorRT sidecar (expected {SIDECAR_FORMAT} JSON)") from None
    return side


def _vtuple(v: str, n: int = 3) -> tuple:
    parts = [int(p) if p.isdigit() else 0 for p in str(v).split(".")[:n]]
    return tuple(parts + [0] * (n - len(parts)))


def _sm_num(sm: str) -> int:
    return int(str(sm).replace("sm_", "") or 0)


def compatibility_problem(side: dict, trt_version: str, sm: str) -> str | None:
    """None if this TensorRT/GPU can run the engine, else the one-line reason."""
    built_v, built_sm = side.get("tensorrt", "?"), side.get("sm", "?")
    b = side.get("build", {})
    if b.get("version_compatible"):
        v_ok = _vtuple(trt_version) >= _vtuple(built_v)
    else:
        v_ok = _vtuple(trt_version) == _vtuple(built_v)
    hw = (b.get("hardware_compatibility") or "").upper()
    if hw == "AMPERE_PLUS":
        sm_ok = _sm_num(sm) >= 80
    elif hw == "SAME_COMPUTE_CAPABILITY":
        sm_ok = _sm_num(sm) == _sm_num(built_sm)
    else:
        sm_ok = sm == built_sm
    if v_ok and sm_ok:
        return None
    short = lambda v: ".".join(str(v).split(".")[:2])  # noqa: E731
    return (f"engine built with TensorRT {short(built_v)} on {built_sm}; this is {short(trt_version)} on {sm}: "
            "rebuild it (edge-tan export --target tensorrt)")


# ---- runner ---------------------------------------------------------------------------------
class _Buffers:
    """Pinned host + device buffers for one batch size."""

    def __init__(self, shapes: dict[str, tuple], dtypes: dict[str, np.dtype]):
        cudart = _cudart()
        self.host: dict[str, np.ndarray] = {}
        self.dev: dict[str, int] = {}
        self._host_ptrs = []
        for name, shape in shapes.items():
            dt = np.dtype(dtypes[name])
            nbytes = int(np.prod(shape)) * dt.itemsize
            hptr = _ck(cudart.cudaMallocHost(max(nbytes, 1)), "cudaMallocHost")
            dptr = _ck(cudart.cudaMalloc(max(nbytes, 1)), "cudaMalloc")
            raw = (ctypes.c_byte * max(nbytes, 1)).from_address(int(hptr))
            self.host[name] = np.frombuffer(raw, dtype=dt, count=int(np.prod(shape))).reshape(shape)
            self.dev[name] = int(dptr)
            self._host_ptrs.append(hptr)
        self.graph_exec = None
        self.graph = None

    def free(self):
        cudart = _cudart()
        if self.graph_exec is not None:
            cudart.cudaGraphExecDestroy(self.graph_exec)
            cudart.cudaGraphDestroy(self.graph)
        for p in self.dev.values():
            cudart.cudaFree(p)
        for p in self._host_ptrs:
            cudart.cudaFreeHost(p)
        self.host, self.dev, self._host_ptrs = {}, {}, []


class TensorRTRunner(Runner):
    """Options: device (CUDA ordinal), cuda_graph (capture H2D + enqueue + D2H per batch size; 10.x)."""

    backend = "tensorrt"

    def __init__(self, path: str | Path, device: int = 0, cuda_graph: bool = False, verify_sha: bool = True):
        path = Path(path)
        if not path.is_file():
            raise EdgeTanError(f"TensorRT engine not found: {path}")
        side = read_sidecar(path)
        super().__init__(ModelMetadata.from_props(side["metadata"]))
        trt = _trt()
        cudart = _cudart()
        self.path, self.side, self.device = path, side, int(device)
        _ck(cudart.cudaSetDevice(self.device), "cudaSetDevice")
        self.gpu = gpu_info(self.device)
        problem = compatibility_problem(side, trt.__version__, self.gpu["sm"])
        if problem:
            raise EdgeTanError(f"{path.name}: {problem}")
        data = path.read_bytes()
        if verify_sha and side.get("engine_sha256") and hashlib.sha256(data).hexdigest() != side["engine_sha256"]:
            raise EdgeTanError(f"{path.name}: engine bytes do not match its sidecar (corrupt or replaced): rebuild it")
        self._trt = trt
        self.v3 = _major(trt.__version__) >= 10
        self.runtime = trt.Runtime(_logger(trt))
        if side.get("build", {}).get("version_compatible"):
            self.runtime.engine_host_code_allowed = True   # the plan embeds its lean runtime; we built it
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise EdgeTanError(f"{path.name}: TensorRT could not deserialize the engine (corrupt, or built "
                               "for another TensorRT/GPU): rebuild it")
        self.context = self.engine.create_execution_context()
        self.stream = _ck(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.cuda_graph = bool(cuda_graph) and self.v3
        self._discover_io()
        self._bufs: dict[int, _Buffers] = {}
        self._bound_n: int | None = None

    # -- engine I/O, both API generations --
    def _discover_io(self):
        trt, e, md = self._trt, self.engine, self.metadata
        self.inputs, self.outputs, self.dtypes, self._index = [], [], {}, {}
        if self.v3:
            for i in range(e.num_io_tensors):
                name = e.get_tensor_name(i)
                (self.inputs if e.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self.outputs).append(name)
                self.dtypes[name] = np.dtype(trt.nptype(e.get_tensor_dtype(name)))
            lo, _, hi = e.get_tensor_profile_shape(self.inputs[0], 0)
        else:
            for i in range(e.num_bindings):
                name = e.get_binding_name(i)
                (self.inputs if e.binding_is_input(i) else self.outputs).append(name)
                self.dtypes[name] = np.dtype(trt.nptype(e.get_binding_dtype(i)))
                self._index[name] = i
            lo, _, hi = e.get_profile_shape(0, self._index[self.inputs[0]])
        if len(self.inputs) != 1:
            raise EdgeTanError(f"{self.path.name}: expected 1 input, engine has {len(self.inputs)}")
        if tuple(lo[1:]) != (1, md.window, md.window):
            raise EdgeTanError(f"{self.path.name}: engine input {tuple(lo)} does not match metadata window "
                               f"(1, {md.window}, {md.window})")
        self.batch_range = (int(lo[0]), int(hi[0]))
        missing = [n for n in md.outputs if n not in self.outputs]
        if missing:
            raise EdgeTanError(f"{self.path.name}: metadata lists outputs {missing} the engine lacks")

    def _set_shape_and_bind(self, n: int) -> _Buffers:
        ctx, name_in = self.context, self.inputs[0]
        W = self.metadata.window
        if self.v3:
            ctx.set_input_shape(name_in, (n, 1, W, W))
            shape_of = lambda nm: tuple(ctx.get_tensor_shape(nm))  # noqa: E731
        else:
            ctx.set_binding_shape(self._index[name_in], (n, 1, W, W))
            shape_of = lambda nm: tuple(ctx.get_binding_shape(self._index[nm]))  # noqa: E731
        bufs = self._bufs.get(n)
        if bufs is None:
            shapes = {name_in: (n, 1, W, W), **{o: shape_of(o) for o in self.outputs}}
            bufs = self._bufs[n] = _Buffers(shapes, self.dtypes)
        if self.v3:
            for nm, ptr in bufs.dev.items():
                ctx.set_tensor_address(nm, ptr)
        else:
            bindings = [0] * self.engine.num_bindings
            for nm, ptr in bufs.dev.items():
                bindings[self._index[nm]] = ptr
            bufs.bindings = bindings
        self._bound_n = n
        return bufs

    def _enqueue(self, bufs: _Buffers) -> None:
        cudart = _cudart()
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        name_in = self.inputs[0]
        x = bufs.host[name_in]
        _ck(cudart.cudaMemcpyAsync(bufs.dev[name_in], x.ctypes.data, x.nbytes, h2d, self.stream), "cudaMemcpyAsync")
        if self.v3:
            ok = self.context.execute_async_v3(int(self.stream))
        else:
            ok = self.context.execute_async_v2(bufs.bindings, int(self.stream))
        if not ok:
            raise EdgeTanError("TensorRT execution failed (see the TensorRT log)")
        for nm in self.outputs:
            h = bufs.host[nm]
            _ck(cudart.cudaMemcpyAsync(h.ctypes.data, bufs.dev[nm], h.nbytes, d2h, self.stream), "cudaMemcpyAsync")

    def _capture(self, bufs: _Buffers) -> None:
        """Record H2D + enqueue + D2H as one CUDA graph (after one normal run, as TensorRT requires)."""
        cudart = _cudart()
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _ck(cudart.cudaStreamBeginCapture(self.stream, mode), "cudaStreamBeginCapture")
        try:
            self._enqueue(bufs)
        finally:
            graph = _ck(cudart.cudaStreamEndCapture(self.stream), "cudaStreamEndCapture")
        bufs.graph = graph
        bufs.graph_exec = _ck(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        n = x.shape[0]
        lo, hi = self.batch_range
        if not lo <= n <= hi:
            raise EdgeTanError(f"this engine takes batches of {lo}..{hi} windows, got {n} (rebuild with a larger max batch)")
        cudart = _cudart()
        bufs = self._bufs.get(n) if self._bound_n == n else self._set_shape_and_bind(n)
        dt = self.dtypes[self.inputs[0]]
        np.copyto(bufs.host[self.inputs[0]], x if dt == np.float32 else x.astype(dt))
        if bufs.graph_exec is not None:
            _ck(cudart.cudaGraphLaunch(bufs.graph_exec, self.stream), "cudaGraphLaunch")
        else:
            self._enqueue(bufs)
        _ck(cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        if self.cuda_graph and bufs.graph_exec is None:
            self._capture(bufs)
        return {nm: bufs.host[nm].astype(np.float32, copy=True) for nm in self.outputs if nm in self.metadata.outputs}

    def describe(self) -> dict:
        b = self.side.get("build", {})
        return {"backend": self.backend, "precision": self.metadata.precision, "device": f"cuda:{self.device}",
                "gpu": self.gpu["gpu"], "sm": self.gpu["sm"], "tensorrt": self._trt.__version__,
                "engine_tensorrt": self.side.get("tensorrt"), "api": "v3" if self.v3 else "v2",
                "cuda_graph": self.cuda_graph, "dla_core": b.get("dla_core"), "int8_mode": b.get("int8_mode"),
                "artifact": str(self.path)}

    def close(self) -> None:
        cudart = _cudart() if self._bufs or getattr(self, "stream", None) is not None else None
        for b in self._bufs.values():
            b.free()
        self._bufs.clear()
        if cudart is not None and getattr(self, "stream", None) is not None:
            cudart.cudaStreamDestroy(self.stream)
            self.stream = None
        self.context = self.engine = None


# ---- build from the fp32 ONNX (registered below) ---------------------------------------------
def build_from_onnx(onnx_path: Path, engine: Path, md: ModelMetadata, req: BuildRequest) -> dict:
    """Engine in the requested precision; int8 goes through an NNCF Q/DQ ONNX (explicit quantisation).
    `req.options` are BuildOptions fields; one timing cache per GPU is shared by every build in the
    cache folder."""
    src_onnx = onnx_path
    rep: dict = {}
    if req.precision == "int8":
        import onnx

        from .calibration import quantize_onnx
        from .onnx_file import stamp_metadata

        q = quantize_onnx(onnx.load(str(onnx_path)), req.calib_set, keep_heads_fp32=req.keep_heads_fp32)
        stamp_metadata(q, md)
        src_onnx = engine.parent / "model.qdq.onnx"
        onnx.save(q, str(src_onnx))
        rep["quantization"] = {"method": "nncf-qdq", "calibration_windows": len(req.calib_set),
                               "keep_heads_fp32": req.keep_heads_fp32}
    try:
        opts = BuildOptions(precision=req.precision, **req.options)
    except TypeError as e:
        raise UsageError(f"bad TensorRT build option: {e}") from None
    if opts.timing_cache is None and req.out_dir is not None:
        opts.timing_cache = str(req.out_dir / f"tensorrt-timing-{gpu_info(opts.device)['sm']}.cache")
    build_engine(src_onnx, engine, md, opts)
    return rep


def _check_toolchain() -> None:
    _trt()
    _cudart()


def _build_key(req: BuildRequest) -> dict:
    """Engines are tied to the GPU that built them: it is part of the cache key."""
    return {"gpu": gpu_info(req.options.get("device", 0)), "trt_options": req.options}


register_backend(Backend(
    name="tensorrt", runner=TensorRTRunner, suffix=".engine", requires=("tensorrt", "cuda"), aliases=("trt",),
    pip_names={"cuda": "cuda-python"}, target="tensorrt", precisions=("fp32", "fp16", "int8"),
    build_requires=("torch", "onnx", "nncf", "tensorrt", "cuda-python"), build=build_from_onnx,
    check_build=_check_toolchain, build_key=_build_key, gpu=True,
))

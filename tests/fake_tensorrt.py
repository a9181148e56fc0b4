"""TEST DOUBLE — not TensorRT; verifies control flow only.

TensorRT cannot be installed on the machines this project is tested on, so this module imitates
*just* the slice of the TensorRT Python API (8.6 bindings style or 10.x tensor style) and of
cuda-python's runtime that edge_tan.targets.tensorrt calls. It records every builder/config call so
tests can check which flags were set, and its "engine" is the ONNX model run by ONNX Runtime, so the
runner's buffer plumbing (pinned host -> device -> execute -> host) is checked end to end. Nothing
here says anything about real TensorRT speed or accuracy.

Use: `install(monkeypatch, version="10.3.0")` puts fake `tensorrt` and `cuda.bindings.runtime`
(and `cuda.cudart`) into sys.modules. Its "device memory" is ordinary host memory.
"""

from __future__ import annotations

import ctypes
import enum
import json
import sys
import types

import numpy as np

CALLS: list[tuple] = []   # (object, method, args) in call order, reset by install()


def _rec(*a):
    CALLS.append(a)


# =============================================================== fake cuda runtime
class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorStreamCaptureUnsupported = 900


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class cudaStreamCaptureMode(enum.IntEnum):
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1


class _Stream:
    def __init__(self, handle):
        self.handle = handle
        self.capture: list | None = None

    def __int__(self):
        return self.handle


class _Props:
    def __init__(self, name, major, minor):
        self.name, self.major, self.minor = name, major, minor


class FakeCudart(types.ModuleType):
    """cuda-python runtime look-alike: (err, value) tuples, host memory standing in for the device."""

    def __init__(self, gpu=b"Fake GPU (TEST DOUBLE)", cc=(8, 7)):
        super().__init__("cuda.bindings.runtime")
        self.cudaError_t, self.cudaMemcpyKind, self.cudaStreamCaptureMode = cudaError_t, cudaMemcpyKind, cudaStreamCaptureMode
        self._mem: dict[int, ctypes.Array] = {}
        self._streams: dict[int, _Stream] = {}
        self.gpu, self.cc = gpu, cc
        self.freed = 0
        self.graph_launches = 0

    def _alloc(self, n):
        buf = (ctypes.c_byte * int(n))()
        addr = ctypes.addressof(buf)
        self._mem[addr] = buf
        return addr

    def cudaMalloc(self, n):
        return cudaError_t.cudaSuccess, self._alloc(n)

    def cudaMallocHost(self, n):
        return cudaError_t.cudaSuccess, self._alloc(n)

    def cudaFree(self, p):
        self._mem.pop(int(p), None)
        self.freed += 1
        return (cudaError_t.cudaSuccess,)

    cudaFreeHost = cudaFree

    def cudaSetDevice(self, d):
        return (cudaError_t.cudaSuccess,)

    def cudaGetDeviceProperties(self, d):
        return cudaError_t.cudaSuccess, _Props(self.gpu, *self.cc)

    def cudaGetErrorString(self, err):
        return cudaError_t.cudaSuccess, f"fake cuda error {int(err)}".encode()

    def cudaStreamCreate(self):
        s = _Stream(1000 + len(self._streams))
        self._streams[s.handle] = s
        return cudaError_t.cudaSuccess, s

    def cudaStreamDestroy(self, s):
        self._streams.pop(int(s), None)
        return (cudaError_t.cudaSuccess,)

    def _copy(self, dst, src, n):
        ctypes.memmove(int(dst), int(src), int(n))

    def cudaMemcpy(self, dst, src, n, kind):
        self._copy(dst, src, n)
        return (cudaError_t.cudaSuccess,)

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        s = self._streams[int(stream)]
        op = (lambda: self._copy(dst, src, n))
        if s.capture is not None:
            s.capture.append(op)
        else:
            op()
        return (cudaError_t.cudaSuccess,)

    def cudaStreamSynchronize(self, stream):
        if self._streams[int(stream)].capture is not None:
            return (cudaError_t.cudaErrorStreamCaptureUnsupported,)
        return (cudaError_t.cudaSuccess,)

    def cudaStreamBeginCapture(self, stream, mode):
        self._streams[int(stream)].capture = []
        return (cudaError_t.cudaSuccess,)

    def cudaStreamEndCapture(self, stream):
        s = self._streams[int(stream)]
        ops, s.capture = s.capture, None
        return cudaError_t.cudaSuccess, ops

    def cudaGraphInstantiate(self, graph, flags):
        return cudaError_t.cudaSuccess, list(graph)

    def cudaGraphLaunch(self, exec_, stream):
        self.graph_launches += 1
        for op in exec_:
            op()
        return (cudaError_t.cudaSuccess,)

    def cudaGraphExecDestroy(self, g):
        return (cudaError_t.cudaSuccess,)

    cudaGraphDestroy = cudaGraphExecDestroy


def _stream_capture(stream):
    """The capture list of a stream of the fake cudart in sys.modules (None when not capturing)."""
    rt = sys.modules.get("cuda.bindings.runtime")
    if isinstance(rt, FakeCudart):
        s = rt._streams.get(int(stream))
        return s.capture if s is not None else None
    return None


# =============================================================== fake tensorrt
class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3


def nptype(dt):
    return {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
            DataType.INT32: np.int32}[dt]


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class BuilderFlag(enum.IntEnum):
    FP16 = 0
    INT8 = 1
    GPU_FALLBACK = 3
    VERSION_COMPATIBLE = 19


class DeviceType(enum.IntEnum):
    GPU = 0
    DLA = 1


class HardwareCompatibilityLevel(enum.IntEnum):
    NONE = 0
    AMPERE_PLUS = 1


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0


class Logger:
    VERBOSE, INFO, WARNING, ERROR = 4, 3, 2, 1

    def __init__(self, severity=2):
        self.severity = severity


class IInt8EntropyCalibrator2:
    def __init__(self):
        pass


class _Tensor:
    def __init__(self, name):
        self.name = name


class _Network:
    def __init__(self, flags):
        self.flags = flags
        self.inputs, self.outputs, self.onnx = [], [], None

    def get_input(self, i):
        return _Tensor(self.inputs[i])

    @property
    def num_inputs(self):
        return len(self.inputs)


class OnnxParser:
    def __init__(self, network, logger):
        self.network, self.errors = network, []

    def parse(self, data: bytes) -> bool:
        _rec("parser", "parse", len(data))
        import onnx
        try:
            m = onnx.load_from_string(bytes(data))
        except Exception as e:  # noqa: BLE001 - double: report like the real parser
            self.errors = [f"ModelImporter: {e}"]
            return False
        self.network.inputs = [i.name for i in m.graph.input]
        self.network.outputs = [o.name for o in m.graph.output]
        self.network.onnx = bytes(data)
        return True

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, i):
        return self.errors[i]


class _Profile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, lo, opt, hi):
        _rec("profile", "set_shape", name, tuple(lo), tuple(opt), tuple(hi))
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


class _HostMemory(bytes):
    """Stands in for IHostMemory (supports the buffer protocol)."""


class _TimingCache:
    def __init__(self, data: bytes):
        self.data = bytes(data) or b"fake-timing-cache:"

    def serialize(self):
        return _HostMemory(self.data + b"+")


class _Config:
    def __init__(self):
        defaults = dict(flags=set(), pools={}, profiles=[], default_device_type=DeviceType.GPU, DLA_core=-1,
                        int8_calibrator=None, hardware_compatibility_level=HardwareCompatibilityLevel.NONE,
                        timing_cache=None, builder_optimization_level=3)
        for k, v in defaults.items():   # defaults are not "calls"
            object.__setattr__(self, k, v)

    def __setattr__(self, k, v):
        if k in ("default_device_type", "DLA_core", "int8_calibrator", "hardware_compatibility_level"):
            _rec("config", "set:" + k, v)
        object.__setattr__(self, k, v)

    def set_memory_pool_limit(self, pool, n):
        _rec("config", "set_memory_pool_limit", pool, n)
        self.pools[pool] = n

    def set_flag(self, f):
        _rec("config", "set_flag", f)
        self.flags.add(f)

    def get_flag(self, f):
        return f in self.flags

    def create_timing_cache(self, data):
        _rec("config", "create_timing_cache", bytes(data))
        return _TimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch):
        _rec("config", "set_timing_cache", ignore_mismatch)
        self.timing_cache = cache
        return True

    def get_timing_cache(self):
        return self.timing_cache

    def add_optimization_profile(self, p):
        _rec("config", "add_optimization_profile")
        self.profiles.append(p)
        return len(self.profiles) - 1


class Builder:
    platform_has_fast_fp16 = True
    platform_has_fast_int8 = True
    num_DLA_cores = 0

    def __init__(self, logger):
        self.logger = logger

    def create_network(self, flags=0):
        _rec("builder", "create_network", flags)
        if _version_major() >= 10 and flags:
            raise TypeError("fake TensorRT 10: EXPLICIT_BATCH is implied; edge-tan must pass 0")
        return _Network(flags)

    def create_builder_config(self):
        return _Config()

    def create_optimization_profile(self):
        return _Profile()

    def build_serialized_network(self, network, config):
        _rec("builder", "build_serialized_network")
        if not config.profiles:
            return None
        cal = config.int8_calibrator
        if cal is not None:   # real TensorRT pulls batches until None, then writes the cache
            n = 0
            while cal.get_batch(network.inputs) is not None:
                n += 1
            _rec("calibrator", "batches", n, cal.get_batch_size())
            if cal.read_calibration_cache() is None:
                cal.write_calibration_cache(_HostMemory(b"fake-calib-cache"))
        lo, opt, hi = config.profiles[0].shapes[network.inputs[0]]
        head = {"fake": "TEST DOUBLE", "version": sys.modules["tensorrt"].__version__, "inputs": network.inputs,
                "outputs": network.outputs, "profile": [lo, opt, hi],
                "flags": sorted(int(f) for f in config.flags)}
        h = json.dumps(head).encode()
        return _HostMemory(len(h).to_bytes(4, "little") + h + network.onnx)


class _Engine:
    def __init__(self, head, onnx_bytes):
        import onnxruntime as ort

        self.head = head
        self.sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        self.names = head["inputs"] + head["outputs"]

    # 10.x tensor API
    @property
    def num_io_tensors(self):
        return len(self.names)

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name in self.head["inputs"] else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return DataType.FLOAT

    def get_tensor_profile_shape(self, name, profile):
        return [tuple(s) for s in self.head["profile"]]

    # 8.x bindings API
    @property
    def num_bindings(self):
        return len(self.names)

    def get_binding_name(self, i):
        return self.names[i]

    def binding_is_input(self, i):
        return self.names[i] in self.head["inputs"]

    def get_binding_dtype(self, i):
        return DataType.FLOAT

    def get_profile_shape(self, profile, binding):
        return [tuple(s) for s in self.head["profile"]]

    def create_execution_context(self):
        return _Context(self)


class _Context:
    def __init__(self, engine):
        self.engine = engine
        self.shapes: dict[str, tuple] = {}
        self.addr: dict[str, int] = {}
        self.executions = 0

    def _set_input(self, name, shape):
        self.shapes[name] = tuple(shape)
        x = np.zeros(shape, np.float32)
        for o, v in zip(self.engine.head["outputs"], self.engine.sess.run(None, {name: x})):
            self.shapes[o] = tuple(v.shape)
        return True

    # 10.x
    def set_input_shape(self, name, shape):
        _rec("context", "set_input_shape", name, tuple(shape))
        return self._set_input(name, shape)

    def get_tensor_shape(self, name):
        return self.shapes[name]

    def set_tensor_address(self, name, ptr):
        self.addr[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle):
        _rec("context", "execute_async_v3")
        return self._execute(stream_handle)

    # 8.x
    def set_binding_shape(self, i, shape):
        _rec("context", "set_binding_shape", i, tuple(shape))
        return self._set_input(self.engine.names[i], shape)

    def get_binding_shape(self, i):
        return self.shapes[self.engine.names[i]]

    def execute_async_v2(self, bindings, stream_handle):
        _rec("context", "execute_async_v2", len(bindings))
        if _version_major() >= 10:
            raise AttributeError("execute_async_v2 was removed in TensorRT 10")
        self.addr = {n: int(p) for n, p in zip(self.engine.names, bindings)}
        return self._execute(stream_handle)

    def _execute(self, stream_handle):
        rt = sys.modules.get("cuda.bindings.runtime")
        real = not isinstance(rt, FakeCudart)

        def run():
            self.executions += 1
            inp = self.engine.head["inputs"][0]
            shape = self.shapes[inp]
            x = np.empty(shape, np.float32)
            if real:   # real CUDA device memory: synchronous copies around the ONNX Runtime call
                cudart = _real_cudart()
                cudart.cudaDeviceSynchronize()
                cudart.cudaMemcpy(x.ctypes.data, self.addr[inp], x.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)
            else:
                ctypes.memmove(x.ctypes.data, self.addr[inp], x.nbytes)
            for o, v in zip(self.engine.head["outputs"], self.engine.sess.run(None, {inp: x})):
                v = np.ascontiguousarray(v, np.float32)
                if real:
                    cudart.cudaMemcpy(self.addr[o], v.ctypes.data, v.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)
                else:
                    ctypes.memmove(self.addr[o], v.ctypes.data, v.nbytes)

        cap = _stream_capture(stream_handle)
        if cap is not None:
            cap.append(run)
        else:
            run()
        return True


def _real_cudart():
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    return runtime


class Runtime:
    def __init__(self, logger):
        object.__setattr__(self, "engine_host_code_allowed", False)

    def __setattr__(self, k, v):
        if k == "engine_host_code_allowed":
            _rec("runtime", "set:engine_host_code_allowed", v)
        object.__setattr__(self, k, v)

    def deserialize_cuda_engine(self, data):
        data = bytes(data)
        try:
            n = int.from_bytes(data[:4], "little")
            head = json.loads(data[4:4 + n])
            assert head.get("fake") == "TEST DOUBLE"
        except Exception:  # noqa: BLE001 - real TensorRT returns None on garbage
            return None
        return _Engine(head, data[4 + n:])


def _version_major() -> int:
    return int(sys.modules["tensorrt"].__version__.split(".")[0])


def make_tensorrt(version: str) -> types.ModuleType:
    m = types.ModuleType("tensorrt")
    m.__doc__ = "TEST DOUBLE — not TensorRT; verifies control flow only"
    m.__version__ = version
    for name in ("DataType", "nptype", "TensorIOMode", "MemoryPoolType", "BuilderFlag", "DeviceType",
                 "HardwareCompatibilityLevel", "Logger", "IInt8EntropyCalibrator2", "OnnxParser", "Builder",
                 "Runtime"):
        setattr(m, name, globals()[name])
    if int(version.split(".")[0]) < 10:
        m.NetworkDefinitionCreationFlag = NetworkDefinitionCreationFlag
    return m


def install(monkeypatch, version: str = "10.3.0", gpu: bytes = b"Fake GPU (TEST DOUBLE)", cc=(8, 7),
            real_cuda: bool = False):
    """Put the fake tensorrt (and, unless `real_cuda`, the fake cuda runtime) into sys.modules for one
    test; returns (trt, cudart). `real_cuda=True` keeps cuda-python's real runtime (GPU machines), so
    the runner's pinned/device buffers and stream copies are real while the "engine" stays ORT."""
    CALLS.clear()
    trt = make_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    if real_cuda:
        return trt, _real_cudart()
    rt = FakeCudart(gpu, cc)
    cuda_pkg = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = rt
    cuda_pkg.bindings = bindings
    cuda_pkg.cudart = rt
    monkeypatch.setitem(sys.modules, "cuda", cuda_pkg)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", rt)
    monkeypatch.setitem(sys.modules, "cuda.cudart", rt)
    return trt, rt

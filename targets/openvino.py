"""OpenVINO: ONNX -> IR (.xml/.bin, metadata in rt_info; fp16-compressed or NNCF int8) and a runner
for latency or throughput.

LATENCY mode (the tracker): one stream, one InferRequest made once and reused, input passed as a
shared-memory tensor, outputs copied out by name. THROUGHPUT mode (batch processing many clips):
N streams driven by an AsyncInferQueue. The CPU plugin here defaults to bf16 inference on
AVX512-BF16 CPUs, so fp32 artifacts pin INFERENCE_PRECISION_HINT=f32 (parity with torch) unless the
caller asks otherwise; `describe()` reports what the compiled model actually runs in.

bf16 artifacts are the fp32 IR marked "bf16": the CPU plugin computes the segmentation decoder in
bfloat16 and the ops the landmarks, view and feature outputs depend on in f32 (openvino_mixed says
why) where the CPU has native BF16 (OPTIMIZATION_CAPABILITIES lists BF16: AVX512-BF16, AMX). Where it
does not, export and open refuse with "unsupported" (UsageError) instead of running fp32 under a bf16
label, and the precision the compiled model reads back is checked after every compile.
"""

from __future__ import annotations

import atexit
import weakref
from pathlib import Path
from typing import Iterable

import numpy as np

from edge_tan.runtime.artifact import PREFIX, ModelMetadata
from edge_tan.runtime.errors import EdgeTanError, UsageError, first_line
from edge_tan.runtime.runner import Runner, normalise_into, window_outputs
from edge_tan.runtime.seal import seal_ir

from .openvino_window import WINDOW_GRAPH
from edge_tan.runtime.registry import Backend, BuildRequest, register_backend

RT_SECTION = "edge_tan"
HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT", "NONE")   # NONE: no PERFORMANCE_HINT set
# artifact precision -> default INFERENCE_PRECISION_HINT for float parts of the graph
DEFAULT_INFER_PRECISION = {"fp32": "f32", "fp16": "f16", "int8": "f32", "bf16": "bf16"}

_CORE = None
_LIVE: "weakref.WeakSet[OpenVinoRunner]" = weakref.WeakSet()


@atexit.register
def _close_live_runners() -> None:
    """Release compiled models before interpreter teardown: left to the garbage collector at exit,
    a THROUGHPUT model compiled after a bf16 one aborted the process ("terminate called ...")."""
    for r in list(_LIVE):
        r.close()


def core():
    """One shared ov.Core per process (creating one loads plugins; no need to pay that twice)."""
    global _CORE
    if _CORE is None:
        import openvino as ov
        _CORE = ov.Core()
    return _CORE


# ---- IR writing / metadata ------------------------------------------------------------------
def set_metadata(model, metadata: ModelMetadata) -> None:
    """Store the flat metadata props under rt_info/edge_tan/<field> (values are JSON strings)."""
    for k, v in metadata.to_props().items():
        model.set_rt_info(v, [RT_SECTION, k[len(PREFIX):]])


def get_metadata(model, name: str = "model") -> ModelMetadata:
    rt = model.get_rt_info()
    if RT_SECTION not in rt.keys():
        raise EdgeTanError(f"{name}: OpenVINO IR carries no edge-tan metadata (was it exported by `edge-tan export`?)")
    keys = list(rt[RT_SECTION].keys())
    props = {PREFIX + k: model.get_rt_info([RT_SECTION, k]).astype(str) for k in keys}
    return ModelMetadata.from_props(props)


def onnx_to_ov(onnx_path: str | Path):
    """ONNX file -> in-memory ov.Model (metadata must be set again: convert_model drops metadata_props)."""
    import openvino as ov

    try:
        return ov.convert_model(str(onnx_path))
    except Exception as e:
        raise EdgeTanError(f"{Path(onnx_path).name}: OpenVINO cannot convert it: {first_line(e)}") from None


def save_ir(model, xml_path: str | Path, metadata: ModelMetadata, compress_to_fp16: bool = False,
            precise_ops: list[str] | None = None) -> Path:
    """Write model.xml + model.bin with metadata in rt_info. Callers write into a temp dir that is
    renamed into place afterwards (build.py), so the pair appears atomically. `precise_ops`: layers
    that keep f32 under a lower inference precision (openvino_mixed), marked before the seal."""
    import openvino as ov

    set_metadata(model, metadata)
    xml_path = Path(xml_path)
    ov.save_model(model, str(xml_path), compress_to_fp16=bool(compress_to_fp16))
    if precise_ops:
        from .openvino_mixed import mark_precise

        mark_precise(xml_path, precise_ops)
    seal_ir(xml_path)   # the IR carries a sha256 of its own .xml + .bin (edge_tan.runtime.seal)
    return xml_path


def read_ir(xml_path: str | Path):
    """Read an IR with clear errors for the usual breakages (missing .bin, not XML, ...)."""
    xml_path = Path(xml_path)
    if not xml_path.is_file():
        raise EdgeTanError(f"OpenVINO IR not found: {xml_path}")
    bin_path = xml_path.with_suffix(".bin")
    if not bin_path.is_file():
        raise EdgeTanError(f"{xml_path.name}: IR .bin missing (expected {bin_path.name} beside it)")
    head = xml_path.read_bytes()[:256].lstrip()
    if not head.startswith(b"<?xml") and not head.startswith(b"<net"):
        raise EdgeTanError(f"{xml_path.name}: not an OpenVINO IR (no XML header)")
    try:
        return core().read_model(str(xml_path), str(bin_path))
    except Exception as e:
        raise EdgeTanError(f"{xml_path.name}: OpenVINO cannot read the IR: {first_line(e)}") from None


def ir_metadata(xml_path: str | Path) -> ModelMetadata:
    return get_metadata(read_ir(xml_path), Path(xml_path).name)


def bf16_support(device: str = "CPU") -> tuple[bool, str]:
    """(native BF16 here, why not): the device's OPTIMIZATION_CAPABILITIES must list BF16."""
    try:
        caps = [str(c).upper() for c in core().get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception as e:
        return False, f"OpenVINO {device} reports no optimisation capabilities ({first_line(e)})"
    if "BF16" in caps:
        return True, "ok"
    return False, f"unsupported: OpenVINO's {device} plugin lists no native BF16 here (capabilities: {', '.join(caps)})"


def _norm_precision(v) -> str:
    """'bf16' / 'f32' / ... from an ov.Type or a string such as '<Type: 'bfloat16'>'."""
    t = str(getattr(v, "get_type_name", lambda: v)()).lower()
    return {"bfloat16": "bf16", "float32": "f32", "float16": "f16"}.get(t, t)


# ---- runner ---------------------------------------------------------------------------------
class OpenVinoRunner(Runner):
    """Options: device (CPU/GPU/NPU/AUTO...), hint (LATENCY|THROUGHPUT), threads, streams,
    cache_dir (compiled-model cache), inference_precision ('f32'|'bf16'|'f16'; default per artifact
    precision; bf16 is refused where the CPU lacks it), static_batch (compile for a fixed batch, e.g. 1;
    None = the dynamic batch as exported), pinning (ENABLE_CPU_PINNING; None = OpenVINO's default, or off
    when threads are capped), hint NONE (no PERFORMANCE_HINT: the plugin's own defaults), fuse_window
    (opt-in: the tracker's `infer_window` runs the window graph of openvino_window, normalisation,
    score and landmark template in-graph; off by default because it did not pay on the CPU measured,
    see that module)."""

    backend = "openvino"

    def __init__(self, path: str | Path, device: str = "CPU", hint: str = "LATENCY", threads: int | None = None,
                 streams: int | str | None = None, cache_dir: str | Path | None = None,
                 inference_precision: str | None = None, static_batch: int | None = 1,
                 pinning: bool | None = None, fuse_window: bool = False):
        import openvino as ov

        path = Path(path)
        model = read_ir(path)
        super().__init__(get_metadata(model, path.name))
        self.path, self.device, self.hint = path, str(device).upper(), str(hint).upper()
        if self.hint not in HINTS:
            raise EdgeTanError(f"OpenVINO hint must be one of {HINTS}, got {hint!r}")
        md = self.metadata
        if len(model.inputs) != 1:
            raise EdgeTanError(f"{path.name}: expected 1 input, IR has {len(model.inputs)}")
        pshape = model.inputs[0].get_partial_shape()
        if pshape.rank.is_static and pshape.rank.get_length() == 4:
            dims = [d.get_length() if d.is_static else None for d in pshape]
            if dims[1:] != [1, md.window, md.window] and None not in dims[1:]:
                raise EdgeTanError(f"{path.name}: input shape {dims} does not match metadata window "
                                   f"(1, {md.window}, {md.window})")
        else:
            raise EdgeTanError(f"{path.name}: input must be rank-4 NCHW, IR has {pshape}")
        self._model = model
        self.static_batch = static_batch
        self.config: dict = {} if self.hint == "NONE" else {"PERFORMANCE_HINT": self.hint}
        if threads and self.device.startswith("CPU"):   # a CPU-plugin property; other devices reject it
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
            # a thread cap means the cores are shared (batch workers): OpenVINO pins each process's
            # threads from core 0 up, so two 1-thread workers would share one core (measured here:
            # 32 ms vs 16 ms per inference for each of two concurrent processes)
            self.config["ENABLE_CPU_PINNING"] = False
        if pinning is not None and self.device.startswith("CPU"):
            self.config["ENABLE_CPU_PINNING"] = bool(pinning)
        if streams is not None:
            self.config["NUM_STREAMS"] = str(streams)
        elif self.hint in ("LATENCY", "NONE"):
            self.config["NUM_STREAMS"] = "1"
        prec = inference_precision or DEFAULT_INFER_PRECISION.get(md.precision, "f32")
        if inference_precision or self.device.split(".")[0] in ("CPU", "GPU"):
            self.config["INFERENCE_PRECISION_HINT"] = prec  # NPU/AUTO pick their own
        self._want_bf16 = prec == "bf16"
        if self._want_bf16 and self.device.split(".")[0] == "CPU":
            ok, why = bf16_support(self.device)
            if not ok:
                raise UsageError(f"{path.name}: bf16 {why}")
        if cache_dir:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self.config["CACHE_DIR"] = str(cache_dir)
        self.threads = threads
        self._compiled: dict[int | None, object] = {}
        self._requests: dict[int | None, object] = {}
        self._out_names = [n for n in md.outputs]
        self._ov = ov
        self.fuse_window = bool(fuse_window)
        self._window = None
        self._bound = None        # the tracker's request: input and outputs bound once (_bound_request)
        self._compile(static_batch)
        _LIVE.add(self)

    # compiled models are kept per batch size: static shapes are faster on CPU than dynamic ones
    def _compile(self, batch: int | None):
        if batch in self._compiled:
            return self._compiled[batch]
        model = self._model
        if batch is not None:
            model = model.clone()
            model.reshape({model.inputs[0].get_any_name(): [batch, 1, self.metadata.window, self.metadata.window]})
        cm = self._compile_model(model)
        names = {n for o in cm.outputs for n in o.get_names()}
        missing = [n for n in self._out_names if n not in names]
        if missing:
            raise EdgeTanError(f"{self.path.name}: metadata lists outputs {missing} the IR lacks")
        self._compiled[batch] = cm
        self._requests[batch] = cm.create_infer_request()
        return cm

    def _compile_model(self, model):
        try:
            cm = core().compile_model(model, self.device, self.config)
        except Exception as e:
            raise EdgeTanError(f"OpenVINO cannot compile {self.path.name} for {self.device}: "
                               f"{first_line(e)}") from None
        if self._want_bf16:   # never run fp32 under a bf16 label: check what the plugin actually chose
            got = _norm_precision(cm.get_property("INFERENCE_PRECISION_HINT"))
            if got != "bf16":
                raise UsageError(f"{self.path.name}: bf16 unsupported on {self.device}: the compiled model "
                                 f"runs {got}")
        return cm

    def _window_request(self):
        """The window graph (openvino_window), compiled on first use; None where it cannot be built."""
        if self._window is None:
            from .openvino_window import window_model
            try:
                cm = self._compile_model(window_model(self._model, self.metadata))
                names = [o.get_any_name() for o in cm.outputs]
                self._window = (cm, cm.create_infer_request(), names)
            except UsageError:
                raise
            except Exception:   # a graph it cannot rewrite (e.g. no 2-channel seg): the generic path
                self._window = False
        return self._window or None

    def _bound_request(self):
        """(request, input buffer, output buffers) for the tracker's one-window passes, or None.

        Why: the native runtime binds its input and output tensors once and reads results in place; the
        generic path wraps the input in a new Tensor and copies every output (the 2x224x224 logits)
        on every call. Its own request, so batch calls through `infer` never rebind it."""
        if self._bound is None:
            self._bound = False
            if self.static_batch == 1:
                cm = self._compile(1)
                if all(o.get_element_type() == self._ov.Type.f32 and o.get_partial_shape().is_static
                       for o in cm.outputs):
                    req = cm.create_infer_request()
                    w = self.metadata.window
                    x = np.zeros((1, 1, w, w), np.float32)
                    req.set_input_tensor(self._ov.Tensor(x, shared_memory=True))
                    outs = {}
                    for o in cm.outputs:
                        buf = np.zeros(tuple(o.get_shape()), np.float32)
                        req.set_tensor(o, self._ov.Tensor(buf, shared_memory=True))
                        for n in o.get_names():
                            outs[n] = buf
                    if all(n in outs for n in self._out_names):
                        self._bound = (req, x, {n: outs[n] for n in self._out_names})
        return self._bound or None

    def infer_window(self, window: np.ndarray) -> dict[str, np.ndarray]:
        """Runner.infer_window: on the bound request (the same normalisation and outputs, no per-call
        tensors or logit copies), or on the window graph when fuse_window is set."""
        w = self.metadata.window
        fused = self._window_request() if self.fuse_window else None
        if fused is None or not isinstance(window, np.ndarray) or window.dtype != np.uint8 or window.shape != (w, w):
            bound = self._bound_request() if fused is None and isinstance(window, np.ndarray) and \
                window.shape == (w, w) else None
            if bound is None:
                return super().infer_window(window)
            req, x, outs = bound
            normalise_into(window, self.metadata, x[0, 0])
            req.infer()
            res = window_outputs(outs, self.metadata)   # score and landmarks_win are new arrays; copy what is a buffer
            return {k: (v.copy() if any(v is b for b in outs.values()) else v) for k, v in res.items()}
        _, req, names = fused
        req.set_input_tensor(self._ov.Tensor(np.ascontiguousarray(window).reshape(1, 1, w, w), shared_memory=True))
        req.infer()
        out = {n: np.array(req.get_tensor(n).data, dtype=np.float32, copy=True) for n in names}
        out["score"] = out["score"][0, 0]
        if "landmarks_win" in out:
            out["landmarks_win"] = out["landmarks_win"].reshape(3, 2)
        return out

    MAX_STATIC_SHAPES = 4

    def _key(self, n: int):
        """Compiled-model slot for batch n: static per size, but after a few distinct sizes fall back
        to one dynamic-batch model rather than compiling for every size a caller happens to use."""
        if self.static_batch is None:
            return None
        if n in self._compiled or len([k for k in self._compiled if k is not None]) < self.MAX_STATIC_SHAPES:
            return n
        return None

    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        key = self._key(x.shape[0])
        if key not in self._compiled:
            self._compile(key)
        req = self._requests[key]
        req.set_input_tensor(self._ov.Tensor(x, shared_memory=True))
        req.infer()
        return {n: np.array(req.get_tensor(n).data, dtype=np.float32, copy=True) for n in self._out_names}

    def infer_many(self, windows: Iterable[np.ndarray], jobs: int = 0) -> list[dict[str, np.ndarray]]:
        """Run many single-window (1,1,W,W) inputs concurrently through an AsyncInferQueue
        (THROUGHPUT hint: one request per stream). Results come back in input order."""
        cm = self._compile(self._key(1))
        queue = self._ov.AsyncInferQueue(cm, int(jobs))
        results: dict[int, dict] = {}
        names = self._out_names

        def done(request, idx):
            results[idx] = {n: np.array(request.get_tensor(n).data, dtype=np.float32, copy=True) for n in names}

        queue.set_callback(done)
        n = 0
        for i, w in enumerate(windows):
            x = self.check_batch(w)
            if x.shape[0] != 1:
                raise EdgeTanError(f"infer_many takes (1, 1, W, W) windows, got batch {x.shape[0]}")
            queue.start_async({0: x}, userdata=i)
            n = i + 1
        queue.wait_all()
        return [results[i] for i in range(n)]

    def compiled_property(self, name: str):
        cm = next(iter(self._compiled.values()))
        try:
            v = cm.get_property(name)
        except Exception:
            return None
        return v.to_string() if hasattr(v, "to_string") else str(v)

    def describe(self) -> dict:
        import openvino as ov

        try:
            dev_name = core().get_property(self.device, "FULL_DEVICE_NAME")
        except Exception:
            dev_name = self.device
        return {"backend": self.backend, "precision": self.metadata.precision, "device": self.device,
                "device_name": str(dev_name), "hint": self.hint,
                "inference_precision": self.compiled_property("INFERENCE_PRECISION_HINT"),
                "streams": self.compiled_property("NUM_STREAMS"),
                "threads": self.compiled_property("INFERENCE_NUM_THREADS"),
                "optimal_requests": self.compiled_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"),
                "openvino": ov.get_version(), "artifact": str(self.path),
                "window_graph": ", ".join(WINDOW_GRAPH) if self._window else "numpy around the network"}

    def close(self) -> None:
        self._window = None
        self._bound = None
        self._requests.clear()
        self._compiled.clear()


# ---- build (the fp32 ONNX -> IR; registered below) -------------------------------------------
def build_ir(onnx_path: Path, xml: Path, md: ModelMetadata, req: BuildRequest) -> dict:
    """IR in the requested precision; int8 is NNCF post-training quantisation on the calibration
    windows, checked against the fp32 IR on up to 64 windows (reported in the metadata)."""
    if req.precision == "bf16":
        ok, why = bf16_support("CPU")
        if not ok:
            raise UsageError(f"--precision bf16 {why}")
    ov_model = onnx_to_ov(onnx_path)
    if req.precision != "int8":
        # The CPU plugin here computes in f32/bf16 either way; fp16 halves the .bin, speed unchanged.
        # bf16: fp32 weights, the plugin converts them at compile time (INFERENCE_PRECISION_HINT=bf16);
        # the encoder and heads stay f32 (openvino_mixed: bf16 there moved the landmarks).
        keep = None
        if req.precision == "bf16":
            from .openvino_mixed import MIXED_WHAT, f32_ops

            keep = f32_ops(ov_model)
            md.producer = {**md.producer, "inference_precision": "bf16",
                           "mixed_precision": {"f32": MIXED_WHAT, "f32_ops": len(keep)}}
        save_ir(ov_model, xml, md, compress_to_fp16=(req.precision == "fp16"), precise_ops=keep)
        return {"mixed_precision": md.producer["mixed_precision"]} if keep else {}
    from .calibration import compare_outputs, quantize_ov

    q, rep = quantize_ov(onnx_to_ov(onnx_path), req.calib_set, req.val_set, accuracy_control=req.accuracy_control,
                         max_drop=req.max_drop, keep_heads_fp32=req.keep_heads_fp32)
    check = req.val_set if req.val_set is not None else req.calib_set
    ref_cm = core().compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    q_cm = core().compile_model(q, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    names = list(md.outputs)
    n = min(len(check), 64)
    ref = [dict(zip(names, _outputs(ref_cm, check.windows[i], names))) for i in range(n)]
    tst = [dict(zip(names, _outputs(q_cm, check.windows[i], names))) for i in range(n)]
    rep["check_vs_fp32"] = compare_outputs(ref, tst, check.masks[:n])
    md.producer = {**md.producer, "quantization": rep}
    save_ir(q, xml, md, compress_to_fp16=False)
    return {"quantization": rep}


def _outputs(cm, x, names):
    res = cm(x)
    return [res[cm.output(n)] for n in names]


def throughput(path: Path, window: np.ndarray, n: int, streams: int = 2) -> dict:
    """THROUGHPUT hint, `streams` streams, AsyncInferQueue over n windows (what `edge-tan bench` reports)."""
    import time

    r = OpenVinoRunner(path, hint="THROUGHPUT", streams=streams)
    try:
        r.infer_many([window] * 2)
        t0 = time.perf_counter()
        r.infer_many([window] * n)
        dt = time.perf_counter() - t0
        return {"fps": n / dt, "windows": n, "streams": streams,
                "requests": r.compiled_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")}
    finally:
        r.close()


def _build_key(req: BuildRequest) -> dict:
    """What else decides the IR's bytes: bf16's f32/bf16 split (a cached all-bf16 IR is not reused)."""
    from .openvino_mixed import MIXED_RECIPE

    return {"bf16_split": MIXED_RECIPE} if req.precision == "bf16" else {}


def _env_info() -> dict:
    return {"devices": list(core().available_devices)}


register_backend(Backend(
    name="openvino", runner=OpenVinoRunner, suffix=".xml", requires=("openvino",), aliases=("ov",),
    target="openvino", precisions=("fp32", "fp16", "int8", "bf16"), build_requires=("torch", "onnx", "openvino", "nncf"),
    build=build_ir, build_key=_build_key, accuracy_control=True, env_info=_env_info, throughput=throughput,
))

"""ONNX Runtime runner: the portable default backend (CPU EP; CUDA/TensorRT EPs when asked for).

CPU settings follow what measured fastest for a small fully-convolutional net on few cores: all graph
optimisations, sequential execution, intra-op threads = physical cores. Metadata comes from the ONNX
`metadata_props` (via `custom_metadata_map`), so the runner needs nothing but the .onnx file.
Its artifact is the fp32 ONNX every other backend's artifact is built from (`targets.build`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import BackendUnavailable, EdgeTanError, first_line
from edge_tan.runtime.cores import physical_cores
from edge_tan.runtime.runner import Runner

from edge_tan.runtime.registry import Backend, register_backend

EP_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}


def _providers(requested: list[str] | tuple[str, ...] | str | None) -> list[str]:
    import onnxruntime as ort

    have = ort.get_available_providers()
    if requested is None:
        return ["CPUExecutionProvider"]
    if isinstance(requested, str):
        requested = [p for p in requested.split(",") if p]
    out = []
    for p in requested:
        name = EP_ALIASES.get(p.lower(), p)
        if name not in have:
            raise BackendUnavailable(f"ONNX Runtime execution provider {name} is not available here "
                               f"(have: {', '.join(have)})")
        out.append(name)
    if "CPUExecutionProvider" not in out:
        out.append("CPUExecutionProvider")  # fallback for ops the accelerator EP rejects
    return out


class OrtRunner(Runner):
    """Options: threads (intra-op; default physical cores), providers ("cpu", "cuda", "tensorrt" or
    full EP names; CPU is always appended as fallback), spin (busy-wait between ops; lowest latency)."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None, providers=None,
                 inter_threads: int = 1, profile: bool = False, spin: bool = True):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise EdgeTanError(f"ONNX model not found: {path}")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.threads = int(threads) if threads else physical_cores()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = int(inter_threads)
        so.enable_profiling = bool(profile)
        if not spin:   # idle worker threads sleep instead of spinning: frees cores for decode/render threads
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.providers = _providers(providers)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=self.providers)
        except Exception as e:  # ORT raises its own exception types (InvalidProtobuf, Fail, ...)
            msg = first_line(e)
            if "Protobuf parsing failed" in msg or "INVALID_PROTOBUF" in msg:
                raise EdgeTanError(f"{path.name}: not an ONNX model (protobuf parsing failed)") from None
            raise EdgeTanError(f"{path.name}: ONNX Runtime cannot load it: {msg}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        super().__init__(ModelMetadata.from_props(dict(props)))
        self.path = path
        self._check_io()
        # Prebuilt feed dict and output-name list: no per-call allocation besides the outputs.
        self._feed: dict[str, np.ndarray] = {}
        self._out_names = [o.name for o in self.session.get_outputs()
                           if o.name in self.metadata.outputs]

    def _check_io(self) -> None:
        md = self.metadata
        ins = self.session.get_inputs()
        if len(ins) != 1:
            raise EdgeTanError(f"{self.path.name}: expected 1 input, model has {len(ins)}")
        inp = ins[0]
        self.input_name = inp.name
        if inp.name != md.input_name:
            raise EdgeTanError(f"{self.path.name}: input is named {inp.name!r}, metadata says {md.input_name!r}")
        shape = list(inp.shape)
        want = [None, 1, md.window, md.window]
        for i, (got, exp) in enumerate(zip(shape, want)):
            if exp is not None and isinstance(got, int) and got != exp:
                raise EdgeTanError(f"{self.path.name}: input shape {shape} does not match metadata window "
                                   f"(1, {md.window}, {md.window})")
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        names = {o.name for o in self.session.get_outputs()}
        missing = set(md.outputs) - names
        if missing:
            raise EdgeTanError(f"{self.path.name}: metadata lists outputs {sorted(missing)} the graph lacks")

    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if self.fixed_batch is not None and x.shape[0] != self.fixed_batch:
            raise EdgeTanError(f"this ONNX model has a fixed batch of {self.fixed_batch}, got {x.shape[0]}")
        self._feed[self.input_name] = x
        outs = self.session.run(self._out_names, self._feed)
        return {k: (v if v.dtype == np.float32 else v.astype(np.float32)) for k, v in zip(self._out_names, outs)}

    def describe(self) -> dict:
        import onnxruntime as ort

        return {"backend": self.backend, "precision": self.metadata.precision, "device": "cpu"
                if self.providers[0] == "CPUExecutionProvider" else self.providers[0],
                "providers": self.providers, "threads": self.threads, "onnxruntime": ort.__version__,
                "artifact": str(self.path)}

    def close(self) -> None:
        self.session = None


def _env_info() -> dict:
    import onnxruntime as ort
    return {"providers": ort.get_available_providers()}

register_backend(Backend(
    name="onnxruntime", runner=OrtRunner, suffix=".onnx", requires=("onnxruntime",), aliases=("ort", "onnx"),
    target="onnx", precisions=("fp32",), env_info=_env_info,
    precision_hint="the onnx target is exported in fp32 only: use --target openvino for fp16/int8 on CPU, or "
                   "--target tensorrt on an NVIDIA GPU",
    build_requires=("torch", "onnx", "onnxscript"),
))

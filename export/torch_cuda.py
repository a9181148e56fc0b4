"""PyTorch on a CUDA GPU (fp32 or fp16), optionally replaying a captured CUDA graph.

The tracker feeds one fixed-shape window per frame, which is exactly what CUDA graphs are for: the
whole network launches as one graph instead of dozens of kernels. Host<->device copies go through
pinned buffers allocated once per batch size, so a frame costs two async copies and one replay.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import BackendUnavailable, EdgeTanError

from edge_tan.runtime.registry import Backend, register_backend
from .torch_ref import TorchRunner, open_source, outputs_to_dict


class _Slot:
    """Buffers (and optionally a captured graph) for one batch size."""

    def __init__(self, runner: "TorchCudaRunner", n: int):
        torch = runner._torch
        w = runner.metadata.window
        dev = runner.device
        self.host_in = torch.empty((n, 1, w, w), dtype=torch.float32, pin_memory=True)
        self.dev_in = torch.empty((n, 1, w, w), dtype=torch.float32, device=dev)
        self.graph = None
        self.dev_out: dict | None = None
        self.host_out: dict | None = None
        if runner.cuda_graph:
            self._capture(runner)

    def _capture(self, runner: "TorchCudaRunner") -> None:
        torch = runner._torch
        side = torch.cuda.Stream(device=runner.device)
        side.wait_stream(torch.cuda.current_stream(runner.device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):  # warm-up: cuDNN autotune and allocator settle before capture
                runner._run_device(self.dev_in)
        torch.cuda.current_stream(runner.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.dev_out = runner._run_device(self.dev_in)

    def ensure_host_out(self, dev_out: dict, torch) -> dict:
        if self.host_out is None or any(self.host_out[k].shape != v.shape for k, v in dev_out.items()):
            self.host_out = {k: torch.empty(v.shape, dtype=torch.float32, pin_memory=True) for k, v in dev_out.items()}
        return self.host_out


class TorchCudaRunner(TorchRunner):
    backend = "torch-cuda"

    def __init__(self, source, metadata: ModelMetadata | None = None, precision: str = "fp32",
                 cuda_graph: bool = False, device: str = "cuda:0", threads: int | None = None, tf32: bool = False):
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailable("torch-cuda backend: no CUDA GPU is visible to torch")
        if precision not in ("fp32", "fp16"):
            raise EdgeTanError(f"torch-cuda precision must be fp32 or fp16, got {precision!r}")
        self.device = torch.device(device)
        self.precision = precision
        self.cuda_graph = bool(cuda_graph)
        self._torch = torch
        torch.backends.cudnn.benchmark = True
        if precision == "fp32":
            # TF32 convs differ from fp32 by ~1e-3; off by default so "fp32" means fp32 (process-wide flag).
            torch.backends.cudnn.allow_tf32 = bool(tf32)
            torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        self.tf32 = bool(tf32)
        super().__init__(source, metadata=metadata, threads=threads)
        self.stream = torch.cuda.Stream(device=self.device)
        self._slots: dict[int, _Slot] = {}

    def _prepare(self, module):
        import copy

        module = copy.deepcopy(module).eval().to(self.device)   # never move/cast the caller's module
        return module.half() if self.precision == "fp16" else module.float()

    def _run_device(self, x_dev) -> dict:
        x = x_dev.half() if self.precision == "fp16" else x_dev
        out = outputs_to_dict(self.module(x), self._names)
        return {k: v.float() for k, v in out.items()}

    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        n = x.shape[0]
        with torch.cuda.device(self.device):
            slot = self._slots.get(n)
            if slot is None:
                slot = self._slots[n] = _Slot(self, n)
            slot.host_in.numpy()[...] = x
            with torch.cuda.stream(self.stream), torch.inference_mode():
                slot.dev_in.copy_(slot.host_in, non_blocking=True)
                if slot.graph is not None:
                    slot.graph.replay()
                    dev_out = slot.dev_out
                else:
                    dev_out = self._run_device(slot.dev_in)
                host = slot.ensure_host_out(dev_out, torch)
                for k, v in dev_out.items():
                    host[k].copy_(v, non_blocking=True)
            self.stream.synchronize()
        return {k: v.numpy().copy() for k, v in host.items()}

    def describe(self) -> dict:
        torch = self._torch
        p = torch.cuda.get_device_properties(self.device)
        return {"backend": self.backend, "precision": self.precision, "device": str(self.device),
                "gpu": p.name, "compute_capability": f"sm_{p.major}{p.minor}", "cuda_graph": self.cuda_graph,
                "tf32": self.tf32, "torch": torch.__version__, "cuda": torch.version.cuda,
                "artifact": str(self.path) if self.path else "<module>"}

    def close(self) -> None:
        self._slots.clear()
        super().close()


def _gpu_visible() -> tuple[bool, str]:
    """A GPU is checked through torch when torch is already loaded, otherwise by looking for the driver."""
    import shutil
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        if not torch.cuda.is_available():
            return False, "torch is installed but no CUDA GPU is visible"
    elif not (Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")):
        return False, "no NVIDIA GPU driver found"
    return True, "ok"


register_backend(Backend(
    name="torch-cuda", runner=TorchCudaRunner, suffix=".safetensors", requires=("torch", "safetensors"),
    aliases=("cuda",), probe=_gpu_visible, gpu=True,
    open_source=lambda ref, **opts: open_source(ref, runner=TorchCudaRunner, **opts),
))

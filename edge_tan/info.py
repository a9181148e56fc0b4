"""`edge-tan info`: what this machine and environment can run, without importing heavy backends
unless they are installed (each probe runs in isolation so one broken backend cannot hide the rest).
The backends listed are the registry's (`edge_tan.runtime.registry`); each adds its own details."""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import subprocess

from . import __version__
from .runtime.cores import physical_cores  # noqa: F401  (re-exported: bench.machine reads it here)
from .runtime.errors import one_line

EXTRA_MODULES = ["numpy", "cv2", "onnx", "onnxscript", "nncf", "pydicom", "nibabel", "safetensors", "matplotlib"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The instruction sets a record's speed depends on (INT8 dot products, native BF16: a BF16 speed-up
    on AMX is not one on AVX-512 BF16, so records name which the machine had)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [x for x in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                              "amx_tile", "amx_bf16", "amx_int8") if x in have]
    except OSError:
        pass
    return []


def module_version(name: str) -> tuple[bool, str]:
    """(importable, version or reason). TensorRT absent reads 'not installed', never 'ok'."""
    try:
        if importlib.util.find_spec(name) is None:
            return False, "not installed"
    except (ImportError, ValueError):
        return False, "not installed"
    try:
        mod = importlib.import_module(name)
    except Exception as e:  # installed but broken (e.g. a stub wheel)
        return False, f"import failed: {one_line(e)}"
    v = getattr(mod, "__version__", None) or getattr(mod, "get_version", lambda: None)() or "?"
    return True, str(v)


def gpus() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return []


def collect_info() -> dict:
    from .runtime import registry   # declarations only: no backend package is imported by this

    backends = {}
    for name, b in registry.backends().items():
        ok, why = registry.available(name)
        entry = {"available": ok, "version": why}
        if ok:
            entry["available"], entry["version"] = module_version(b.requires[0])
        if entry["available"] and b.env_info is not None:
            try:
                entry.update(b.env_info())
            except Exception as e:  # a broken backend must not hide the rest
                entry["error"] = one_line(e)
        backends[name] = entry
    return {
        "edge_tan": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpus": gpus(),
        "backends": backends,
        "packages": {m: module_version(m)[1] for m in EXTRA_MODULES},
    }


def print_info(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console()
    c.print(f"[bold]edge-tan {data['edge_tan']}[/] · Python {data['python']} · {data['platform']}")
    c.print(f"CPU: {data['cpu']} · {data['affinity_cores']} usable cores · flags: {', '.join(data['cpu_flags']) or '-'}")
    c.print(f"GPU: {'; '.join(data['gpus']) if data['gpus'] else 'none seen (nvidia-smi)'}")
    t = Table(title="backends")
    t.add_column("backend")
    t.add_column("status")
    t.add_column("version / detail")
    for name, b in data["backends"].items():
        status = "[green]available[/]" if b["available"] else f"[yellow]{b['version']}[/]"
        detail = b["version"] if b["available"] else ""
        for k in ("cuda_device", "devices", "providers"):
            if k in b:
                detail += f" {k}={b[k]}"
        t.add_row(name, status, detail)
    c.print(t)
    c.print("packages: " + ", ".join(f"{k} {v}" for k, v in data["packages"].items()))

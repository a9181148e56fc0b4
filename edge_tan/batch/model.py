"""Which model a batch runs and how each worker opens it: backend threads sized so that
workers x threads fit the cores, and the model key that marks a clip's results as this model's."""

from __future__ import annotations

import os
from dataclasses import dataclass

from edge_tan.runtime.registry import DEFAULT_BACKEND

@dataclass(frozen=True)
class RunConfig:
    """Everything a worker (a pool process or a Ray actor) needs; plain values, so it pickles."""
    out: str
    model: str | None = None
    backend: str = DEFAULT_BACKEND
    precision: str = "fp32"
    threads: int = 1              # backend threads per worker (0: the backend's own default)
    retry_errors: bool = False


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def canonical_backend(name: str) -> str:
    from edge_tan.runtime.registry import canonical
    return canonical(name)


def is_gpu_backend(name: str) -> bool:
    """GPU backends get one engine per GPU; CPU backends take a `threads` option (the registry says which)."""
    from edge_tan.runtime.registry import get
    return get(name).gpu


def split_cores(workers: int, threads: int, cores: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker): 0 means 'choose'. Default: one single-thread worker per core
    (measured fastest for this small network, see scripts/bench_batch.py); an explicit worker count
    gets the cores shared out between its workers."""
    cores = cores or usable_cores()
    if workers <= 0:
        workers = max(1, cores // max(threads, 1)) if threads > 0 else cores
    if threads <= 0:
        threads = max(1, cores // workers)
    return workers, threads


def open_runner(cfg: RunConfig):
    """Open the model once per worker (imported lazily: the core never imports a backend)."""
    from edge_tan.targets.opener import open_model
    key = canonical_backend(cfg.backend)
    opts = {"threads": int(cfg.threads)} if not is_gpu_backend(key) and cfg.threads > 0 else {}
    return open_model(cfg.model, key, cfg.precision, **opts)


def model_info(runner, cfg: RunConfig) -> dict:
    """What the output folder records about the model (and what resume compares)."""
    md = runner.metadata.to_dict()
    w = md.get("weights_sha256") or ""
    from .store import model_key
    prec = md.get("precision") or cfg.precision
    return {"model_key": model_key(md, runner.backend, prec), "model_hash": w[:12] or None,
            "model_name": md.get("model_name"), "backend": runner.backend, "precision": prec,
            "model": cfg.model or "default",
            # the bytes that ran (edge_tan.runtime.seal, verified on open): weights_sha256 is the source's claim
            "artifact_sha256": getattr(runner, "artifact_sha256", None)}

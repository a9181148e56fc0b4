"""Archives: a whole folder or manifest of clips, resumable, on a process pool or Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..runtime import registry
from .base import command


@command()
def batch(src: str = typer.Argument(..., help="folder (recursive), glob, CSV/text manifest, EchoNet or CAMUS folder"),
          out: Path = typer.Option(..., "--out", help="output folder: per-clip JSON, table.parquet/.csv, run.json"),
          model: str = typer.Option("default", "--model", help="'default', an artifact or a weights file"),
          backend: str = typer.Option(registry.DEFAULT_BACKEND, "--backend", help="|".join(registry.names())),
          precision: str = typer.Option("fp32", "--precision"),
          workers: int = typer.Option(0, "--workers", help="worker processes, or Ray actors (0: from the cores)"),
          threads: int = typer.Option(0, "--threads", help="backend threads per worker (0: cores / workers)"),
          ray: bool = typer.Option(False, "--ray", help="run on Ray Data (a local Ray instance unless --ray-address)"),
          ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a Ray cluster: 'auto' or "
                                                    "ray://HOST:10001 (implies --ray)"),
          limit: int = typer.Option(0, "--limit", help="first N clips only (0 = all)"),
          retry_errors: bool = typer.Option(False, "--retry-errors", help="track again clips that failed before"),
          quiet: bool = typer.Option(False, "--quiet")):
    """Track a whole archive: one tracker per clip, resumable, failure-isolated; local pool or Ray Data."""
    from ..batch.run import run_batch
    run_batch(src, out, model=None if model == "default" else model, backend=backend, precision=precision,
              workers=workers, threads=threads, use_ray=ray or bool(ray_address), ray_address=ray_address or None,
              limit=limit, retry_errors=retry_errors,
              quiet=quiet)

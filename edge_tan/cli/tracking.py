"""Tracking: a clip (or a capture device) through the tracker, and what this machine can run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..runtime import registry
from .base import command


@command()
def info(json_out: bool = typer.Option(False, "--json", help="machine-readable output")):
    """Versions, which backends import, and the CPU/GPU this machine has."""
    from ..info import collect_info, print_info
    data = collect_info()
    if json_out:
        import json
        typer.echo(json.dumps(data, indent=1))
    else:
        print_info(data)


@command()
def track(video: Optional[Path] = typer.Argument(None, help="AVI/MP4, DICOM cine, NIfTI, or an edge-tan .npz"),
          model: Optional[str] = typer.Option(None, "--model", help="artifact path (default: shipped TAN)"),
          backend: str = typer.Option(registry.DEFAULT_BACKEND, "--backend", help="|".join(registry.names())),
          precision: str = typer.Option("fp32", "--precision"),
          out: Optional[Path] = typer.Option(None, "--out", help="overlay video (.mp4/.avi)"),
          json_out: Optional[Path] = typer.Option(None, "--json", help="results.json"),
          masks: Optional[Path] = typer.Option(None, "--masks", help="masks.npz"),
          csv: Optional[Path] = typer.Option(None, "--csv", help="per-frame CSV"),
          biplane: Optional[Path] = typer.Option(None, "--biplane", help="A2C clip of the same heart"),
          live: Optional[int] = typer.Option(None, "--live", help="read capture device N instead of VIDEO"),
          quiet: bool = typer.Option(False, "--quiet")):
    """Track the LV in a clip: contour, landmarks, view, ED/ES and EF; overlay/JSON/masks/CSV."""
    from ..runtime.errors import UsageError
    from ..track_cli import run_track
    if video is None and live is None:
        raise UsageError("give a VIDEO to track, or --live N for capture device N")
    run_track(video=video, model=model, backend=backend, precision=precision, out=out, json_out=json_out,
              masks=masks, csv=csv, biplane=biplane, live=live, quiet=quiet)

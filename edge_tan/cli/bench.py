"""Benchmarks: backend parity against the torch reference, and speed/accuracy of TAN vs the baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .base import command


@command()
def parity(source: Optional[Path] = typer.Argument(None, help="clip or dataset (default: a phantom clip)"),
           backends: str = typer.Option("torch,onnxruntime,openvino", "--backends",
                                        help="comma list of registered backends and `native` (the C++ tracker "
                                             "on the OpenVINO IR, closed loop); a trailing ! makes one required"),
           precision: str = typer.Option("fp32", "--precision", help="comma list: fp32,fp16,int8,bf16"),
           model: str = typer.Option("default", "--model"),
           json_out: Optional[Path] = typer.Option(None, "--json"),
           dice_tol: Optional[float] = typer.Option(None, "--dice-tol"),
           lm_tol: Optional[float] = typer.Option(None, "--lm-tol"),
           max_drop: Optional[float] = typer.Option(None, "--max-drop"),
           limit: int = typer.Option(3, "--limit", help="sequences from a dataset")):
    """Task-level parity of backends vs the torch reference, open and closed loop (exit 1 on fail)."""
    from ..bench.parity import run_parity_cli
    code = run_parity_cli(source=source, backends=backends, precision=precision, model=model,
                          json_out=json_out, dice_tol=dice_tol, lm_tol=lm_tol, max_drop=max_drop, limit=limit)
    raise typer.Exit(code)


@command()
def bench(source: Optional[Path] = typer.Argument(None, help="clip or dataset (default: a phantom clip)"),
          models: str = typer.Option("tan,unet,pspnet", "--models"),
          backends: str = typer.Option("onnxruntime,openvino", "--backends"),
          precisions: str = typer.Option("fp32,int8", "--precisions"),
          frames: int = typer.Option(100, "--frames", help="timed runs for TAN (baselines are bounded)"),
          out: Path = typer.Option(Path("bench-out"), "--out", help="folder for table, JSON, MD and plot"),
          json_out: Optional[Path] = typer.Option(None, "--json"),
          md: Optional[Path] = typer.Option(None, "--md"),
          plot: Optional[Path] = typer.Option(None, "--plot")):
    """Latency/fps, end-to-end tracker fps, throughput and accuracy: TAN vs U-Net vs PSPNet."""
    from ..bench.run import run_bench_cli
    run_bench_cli(source=source, models=models, backends=backends, precisions=precisions, frames=frames,
                  out=out, json_out=json_out, md=md, plot=plot)

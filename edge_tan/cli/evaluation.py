"""Evaluation: tracking against labels or against a site's reports, and the QC calibration that follows."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..runtime import registry
from .base import command


@command(name="eval")
def evaluate(data_dir: Path = typer.Argument(..., help="edge-tan dataset folder, or a folder of clips with --reports"),
             model: Optional[str] = typer.Option(None, "--model"),
             backend: str = typer.Option(registry.DEFAULT_BACKEND, "--backend"),
             precision: str = typer.Option("fp32", "--precision"),
             split: str = typer.Option("test", "--split"),
             frame_by_frame: bool = typer.Option(False, "--frame-by-frame", help="also run without the warp"),
             limit: int = typer.Option(0, "--limit", help="at most this many sequences"),
             json_out: Optional[Path] = typer.Option(None, "--json"),
             reports: Optional[Path] = typer.Option(None, "--reports", help="CSV of report EF per clip (EchoNet "
                                                    "FileList.csv style: FileName, EF[, ED, ES]); DATA is then a clip folder"),
             tracings: Optional[Path] = typer.Option(None, "--tracings", help="EchoNet VolumeTracings.csv (ED/ES frames) "
                                                     "or a traced-areas CSV (FileName, ED_frame, ES_frame, ED_area_px, "
                                                     "ES_area_px: adds FAC and ED-area scores)"),
             overlays: Optional[Path] = typer.Option(None, "--overlays", help="folder for one ED|ES PNG per clip "
                                                     "(with --reports: the report's frames where given)"),
             plots: Optional[Path] = typer.Option(None, "--plots", help="folder for bland_altman.png and ef_scatter.png "
                                                  "(with --reports; default: beside --json)"),
             qc_model: Optional[Path] = typer.Option(None, "--qc-model", help="QC model JSON (default: "
                                                     "$EDGE_TAN_QC_MODEL or the shipped one)")):
    """Closed-loop tracking over a split (Dice, ASD, SI, landmarks, OKS, view acc, EF), or EF vs reports + QC."""
    if reports is not None:
        from ..eval_reports import run_reports_eval
        if plots is None and json_out is not None:
            plots = json_out.parent / (json_out.stem + "-plots")
        run_reports_eval(data_dir, reports, tracings, model, backend, precision, json_out, plots, qc_model, limit,
                         overlays=overlays, frame_by_frame=frame_by_frame)
        return
    from ..runtime.errors import UsageError
    if tracings is not None or plots is not None or overlays is not None:
        raise UsageError("--tracings, --plots and --overlays go with --reports")
    from ..evaluate import run_eval_cli
    run_eval_cli(data_dir=data_dir, model=model, backend=backend, precision=precision, split=split,
                 frame_by_frame=frame_by_frame, limit=limit, json_out=json_out, qc_model=qc_model)


@command(name="qc-calibrate")
def qc_calibrate(eval_json: list[Path] = typer.Argument(..., help="JSON from `edge-tan eval CLIPS --reports CSV --json`"),
                 out: Path = typer.Option(..., "--out", help="new QC model JSON (use with --qc-model / EDGE_TAN_QC_MODEL)"),
                 flag_share: float = typer.Option(0.2, "--flag-share", help="share of clips to mark unreliable"),
                 threshold: Optional[float] = typer.Option(None, "--threshold", help="fixed score threshold instead"),
                 refit: bool = typer.Option(False, "--refit", help="also re-fit the QC weights on these clips"),
                 error: float = typer.Option(10.0, "--error", help="EF error (points) that counts as wrong"),
                 qc_model: Optional[Path] = typer.Option(None, "--qc-model", help="model whose weights are kept"),
                 ood_threshold: Optional[float] = typer.Option(None, "--ood-threshold", help="the site's out-of-domain "
                                                               "clip threshold (overrides the artifact's)")):
    """Re-calibrate the QC threshold (or weights) on a site's clips validated against reports."""
    from ..qc_calibrate import calibrate, print_result
    print_result(calibrate(eval_json, out, qc_model, refit, flag_share, threshold, error, ood_threshold), out)

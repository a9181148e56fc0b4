"""`edge-tan` command line. Each command imports its implementation lazily, so `--help` is instant and
the core never pulls torch or a backend unless the command needs it."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from .runtime.errors import EdgeTanError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Temporal Affine Network (TAN) LV tracking for 2D echo: phantom, training, export, "
                       "tracking, parity and benchmarks across ONNX Runtime / OpenVINO / TensorRT.")


def _one_line_errors(fn):
    """Turn EdgeTanError (and unexpected crashes) into one stderr line and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*a, **k):
        try:
            return fn(*a, **k)
        except EdgeTanError as e:
            typer.echo(f"edge-tan: error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("edge-tan: interrupted", err=True)
            raise typer.Exit(130) from None
        except typer.Exit:
            raise
        except Exception as e:  # pragma: no cover - last resort, keeps tracebacks out of users' logs
            if os.environ.get("EDGE_TAN_DEBUG"):
                raise
            typer.echo(f"edge-tan: internal error: {type(e).__name__}: {e} (set EDGE_TAN_DEBUG=1 for a traceback)",
                       err=True)
            raise typer.Exit(3) from None

    return wrapper


def command(*args, **kwargs):
    def deco(fn):
        return app.command(*args, **kwargs)(_one_line_errors(fn))
    return deco


@command()
def info(json_out: bool = typer.Option(False, "--json", help="machine-readable output")):
    """Versions, which backends import, and the CPU/GPU this machine has."""
    from .info import collect_info, print_info
    data = collect_info()
    if json_out:
        import json
        typer.echo(json.dumps(data, indent=1))
    else:
        print_info(data)


@command()
def synth(out_dir: Path = typer.Argument(..., help="dataset folder to create"),
          n: int = typer.Option(20, "--n", help="number of sequences"),
          seed: int = typer.Option(0, "--seed"),
          views: str = typer.Option("A2C,A4C", "--views", help="comma list of A2C, A4C"),
          avi: bool = typer.Option(False, "--avi", help="also write each clip as an .avi next to its .npz"),
          workers: int = typer.Option(0, "--workers", help="processes (0 = all cores)"),
          family: str = typer.Option("default", "--family",
                                     help="default (training phantom), foreign or holdout (held-out test families: never train on them)")):
    """Make a realistic apical-echo phantom dataset with exact ground truth (+ montage.png)."""
    from .synth.generate import generate_dataset
    generate_dataset(out_dir, n=n, seed=seed, views=[v.strip() for v in views.split(",") if v.strip()],
                     avi=avi, workers=workers, family=family)


@command()
def convert(src: Path = typer.Argument(..., help="CAMUS or EchoNet-Dynamic folder"),
            out_dir: Path = typer.Argument(..., help="dataset folder to create"),
            limit: int = typer.Option(0, "--limit", help="convert at most this many sequences (0 = all)")):
    """Convert a CAMUS or EchoNet-Dynamic folder into the edge-tan dataset format."""
    from .io.convert import convert_dataset
    convert_dataset(src, out_dir, limit=limit)


@command()
def train(data_dir: Path = typer.Argument(..., help="edge-tan dataset folder"),
          model: str = typer.Option("tan", "--model", help="registered model name (see `edge-tan models`)"),
          out: Path = typer.Option(Path("runs/tan"), "--out", help="run folder (checkpoints, weights, log)"),
          tcm: bool = typer.Option(False, "--tcm/--no-tcm", help="Temporal Coherence Module (LK-flow labels)"),
          epochs: int = typer.Option(30, "--epochs"),
          max_minutes: float = typer.Option(0.0, "--max-minutes", help="stop after this wall time (0 = no limit)"),
          batch_size: int = typer.Option(16, "--batch-size"),
          lr: float = typer.Option(1e-3, "--lr"),
          width: float = typer.Option(1.0, "--width", help="MobileNetV2 width multiplier"),
          size: int = typer.Option(224, "--size", help="network window size"),
          samples_per_epoch: int = typer.Option(2000, "--samples-per-epoch"),
          seed: int = typer.Option(0, "--seed"),
          device: str = typer.Option("auto", "--device", help="auto|cpu|cuda"),
          workers: int = typer.Option(0, "--workers", help="data-loader processes"),
          resume: bool = typer.Option(True, "--resume/--no-resume", help="continue from RUN_DIR/last.ckpt"),
          init: Optional[Path] = typer.Option(None, "--init", help="warm start (fine-tune) from a weights file "
                                              "of the same model; keeps its template and width"),
          input_norm: str = typer.Option("equalize", "--input-norm", help="grey-frame step before the warp, "
                                         "written into the weights: equalize (rank-normalised) | none"),
          domain_random: bool = typer.Option(True, "--dr/--no-dr", help="raw-frame domain randomisation "
                                             "(gain fields, haze, dropout, speckle, resolution, distractors)")):
    """Train TAN or a baseline on a dataset (OHEM, optional TCM, resumable, time-budgeted)."""
    from .export.train.loop import TrainConfig, train as run_train
    cfg = TrainConfig(data_dir=str(data_dir), model=model, out=str(out), tcm=tcm, epochs=epochs,
                      max_minutes=max_minutes, batch_size=batch_size, lr=lr, width=width, size=size,
                      samples_per_epoch=samples_per_epoch, seed=seed, device=device, workers=workers,
                      resume=resume, init=str(init) if init else "", input_norm=input_norm,
                      domain_random=domain_random)
    run_train(cfg)


@command(name="refit-view")
def refit_view(weights: Path = typer.Argument(..., help="trained TAN weights (.safetensors)"),
               data_dir: Path = typer.Argument(..., help="dataset the model was trained on"),
               out: Path = typer.Option(..., "--out", help="where to write the repaired weights"),
               minutes: float = typer.Option(5.0, "--minutes"),
               seed: int = typer.Option(0, "--seed")):
    """Re-fit a TAN's A2C/A4C view head on the frozen network (repairs a head whose ReLUs died)."""
    from .export.train.view_head import fit_view_head
    rep = fit_view_head(weights, data_dir, out, minutes=minutes, seed=seed)
    typer.echo(f"view head re-fit: {rep}")


@command(name="ood-fit")
def ood_fit(weights: Path = typer.Argument(..., help="trained TAN weights (.safetensors), e.g. the shipped model"),
            data_dir: Path = typer.Argument(..., help="in-domain dataset, e.g. `edge-tan synth DIR --n 24 --seed 3100`: "
                                            "its train split gives the statistics, val+test the thresholds"),
            out: Path = typer.Option(..., "--out", help="weights to write (.safetensors; may be WEIGHTS itself)"),
            k: int = typer.Option(32, "--k", help="principal directions kept"),
            windows: int = typer.Option(2000, "--windows", help="training-style windows for the statistics"),
            clip_margin: float = typer.Option(1.0, "--clip-margin", help="clip threshold = this x the largest "
                                              "held-out clip median")):
    """Fit the out-of-domain reference (pooled-feature statistics + thresholds) into a TAN weights file."""
    from .export.ood_fit import ood_fit as fit
    rep = fit(str(weights), str(data_dir), str(out), k=k, windows=windows, clip_margin=clip_margin)
    typer.echo(f"{out}: out-of-domain reference of {rep['info']['windows']} windows (k={rep['k']}, C={rep['dim']}); "
               f"frame threshold {rep['frame_threshold']:.2f}, clip threshold {rep['clip_threshold']:.2f} "
               f"({rep['info']['threshold_rule']['clip']}); export it again to carry it")


@command()
def adapt(weights: Path = typer.Argument(..., help="trained TAN weights (.safetensors), e.g. the shipped model"),
          clips: Path = typer.Argument(..., help="folder (searched recursively) of the site's unlabelled clips: "
                                       "AVI/MP4/DICOM/NIfTI/npz, any mix; labels in them are ignored"),
          out: Path = typer.Option(..., "--out", help="adapted weights to write (.safetensors)"),
          minutes: float = typer.Option(30.0, "--minutes", help="time budget for all phases together"),
          work: Optional[Path] = typer.Option(None, "--work", help="state folder; a re-run continues it "
                                              "(default: OUT.work)"),
          seed: int = typer.Option(0, "--seed"),
          phases: str = typer.Option("bn,self", "--phases", help="comma list of bn (BatchNorm re-estimation), phantom "
                                     "(separate site-styled phantom fine-tune, opt-in), self (self-training)"),
          max_frames: int = typer.Option(32, "--max-frames", help="frames kept per clip (after --frame-stride)"),
          frame_stride: int = typer.Option(2, "--frame-stride", help="keep every Nth frame (2: a beat in 32 frames "
                                           "at 50 fps)"),
          phantom: Optional[Path] = typer.Option(None, "--phantom", help="labelled phantom dataset to fine-tune on "
                                                 "(default: generate one in the work folder)"),
          threads: int = typer.Option(0, "--threads", help="torch threads (0: torch's default)")):
    """Adapt a trained TAN to a site's unlabelled clips (BatchNorm, styled phantom, self-training)."""
    from .export.adapt.run import AdaptConfig, adapt as run_adapt
    run_adapt(AdaptConfig(weights=str(weights), clips=str(clips), out=str(out), minutes=minutes,
                          work=str(work) if work else "", seed=seed, phases=phases, max_frames=max_frames,
                          frame_stride=frame_stride, phantom=str(phantom) if phantom else "", threads=threads))


@command()
def models():
    """List the registered model architectures with parameter and MAC counts."""
    from .export.models.registry import print_models
    print_models()


@command()
def export(target: str = typer.Option("onnx", "--target", help="onnx|openvino|tensorrt"),
           precision: str = typer.Option("fp32", "--precision", help="fp32|fp16|int8|bf16 (bf16: OpenVINO on a CPU with native BF16)"),
           model: str = typer.Option("default", "--model", help="'default', a registered name, or a weights file"),
           calib: Optional[Path] = typer.Option(None, "--calib", help="dataset for INT8 calibration"),
           accuracy_control: bool = typer.Option(False, "--accuracy-control", help="INT8 with max Dice drop"),
           max_drop: float = typer.Option(0.005, "--max-drop", help="accuracy-control: max Dice drop"),
           out: Path = typer.Option(Path("artifacts"), "--out", help="output folder"),
           force: bool = typer.Option(False, "--force", help="rebuild even if cached")):
    """Export a model to a self-describing ONNX / OpenVINO IR / TensorRT engine (cached, atomic)."""
    from .targets.build import build_artifact
    built = build_artifact(model=model, target=target, precision=precision, out_dir=out, calib=calib,
                           accuracy_control=accuracy_control, max_drop=max_drop, force=force)
    typer.echo(str(built.path))


@command()
def track(video: Optional[Path] = typer.Argument(None, help="AVI/MP4, DICOM cine, NIfTI, or an edge-tan .npz"),
          model: Optional[str] = typer.Option(None, "--model", help="artifact path (default: shipped TAN)"),
          backend: str = typer.Option("onnxruntime", "--backend", help="torch|onnxruntime|openvino|tensorrt"),
          precision: str = typer.Option("fp32", "--precision"),
          out: Optional[Path] = typer.Option(None, "--out", help="overlay video (.mp4/.avi)"),
          json_out: Optional[Path] = typer.Option(None, "--json", help="results.json"),
          masks: Optional[Path] = typer.Option(None, "--masks", help="masks.npz"),
          csv: Optional[Path] = typer.Option(None, "--csv", help="per-frame CSV"),
          biplane: Optional[Path] = typer.Option(None, "--biplane", help="A2C clip of the same heart"),
          live: Optional[int] = typer.Option(None, "--live", help="read capture device N instead of VIDEO"),
          quiet: bool = typer.Option(False, "--quiet")):
    """Track the LV in a clip: contour, landmarks, view, ED/ES and EF; overlay/JSON/masks/CSV."""
    from .runtime.errors import UsageError
    from .track_cli import run_track
    if video is None and live is None:
        raise UsageError("give a VIDEO to track, or --live N for capture device N")
    run_track(video=video, model=model, backend=backend, precision=precision, out=out, json_out=json_out,
              masks=masks, csv=csv, biplane=biplane, live=live, quiet=quiet)


@command()
def batch(src: str = typer.Argument(..., help="folder (recursive), glob, CSV/text manifest, EchoNet or CAMUS folder"),
          out: Path = typer.Option(..., "--out", help="output folder: per-clip JSON, table.parquet/.csv, run.json"),
          model: str = typer.Option("default", "--model", help="'default', an artifact or a weights file"),
          backend: str = typer.Option("openvino", "--backend", help="openvino|onnxruntime|torch|tensorrt|torch-cuda"),
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
    from .batch.run import run_batch
    run_batch(src, out, model=None if model == "default" else model, backend=backend, precision=precision,
              workers=workers, threads=threads, use_ray=ray or bool(ray_address), ray_address=ray_address or None,
              limit=limit, retry_errors=retry_errors,
              quiet=quiet)


@command(name="eval")
def evaluate(data_dir: Path = typer.Argument(..., help="edge-tan dataset folder, or a folder of clips with --reports"),
             model: Optional[str] = typer.Option(None, "--model"),
             backend: str = typer.Option("onnxruntime", "--backend"),
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
        from .eval_reports import run_reports_eval
        if plots is None and json_out is not None:
            plots = json_out.parent / (json_out.stem + "-plots")
        run_reports_eval(data_dir, reports, tracings, model, backend, precision, json_out, plots, qc_model, limit,
                         overlays=overlays)
        return
    from .runtime.errors import UsageError
    if tracings is not None or plots is not None or overlays is not None:
        raise UsageError("--tracings, --plots and --overlays go with --reports")
    from .evaluate import run_eval_cli
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
    from .qc_calibrate import calibrate, print_result
    print_result(calibrate(eval_json, out, qc_model, refit, flag_share, threshold, error, ood_threshold), out)


@command()
def parity(source: Optional[Path] = typer.Argument(None, help="clip or dataset (default: a phantom clip)"),
           backends: str = typer.Option("torch,onnxruntime,openvino", "--backends"),
           precision: str = typer.Option("fp32", "--precision", help="comma list: fp32,fp16,int8,bf16"),
           model: str = typer.Option("default", "--model"),
           json_out: Optional[Path] = typer.Option(None, "--json"),
           dice_tol: Optional[float] = typer.Option(None, "--dice-tol"),
           lm_tol: Optional[float] = typer.Option(None, "--lm-tol"),
           max_drop: Optional[float] = typer.Option(None, "--max-drop"),
           limit: int = typer.Option(3, "--limit", help="sequences from a dataset")):
    """Task-level parity of backends vs the torch reference, open and closed loop (exit 1 on fail)."""
    from .bench.parity import run_parity_cli
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
    from .bench.run import run_bench_cli
    run_bench_cli(source=source, models=models, backends=backends, precisions=precisions, frames=frames,
                  out=out, json_out=json_out, md=md, plot=plot)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Model building: phantom data, dataset conversion, training, the OOD reference, site adaptation, export."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..runtime import registry
from .base import command
from .config_defaults import dataclass_defaults

TRAIN = dataclass_defaults("edge_tan.export.train.loop", "TrainConfig")
ADAPT = dataclass_defaults("edge_tan.export.adapt.run", "AdaptConfig")


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
    from ..synth.generate import generate_dataset
    generate_dataset(out_dir, n=n, seed=seed, views=[v.strip() for v in views.split(",") if v.strip()],
                     avi=avi, workers=workers, family=family)


@command()
def convert(src: Path = typer.Argument(..., help="CAMUS or EchoNet-Dynamic folder"),
            out_dir: Path = typer.Argument(..., help="dataset folder to create"),
            limit: int = typer.Option(0, "--limit", help="convert at most this many sequences (0 = all)")):
    """Convert a CAMUS or EchoNet-Dynamic folder into the edge-tan dataset format."""
    from ..io.convert import convert_dataset
    convert_dataset(src, out_dir, limit=limit)


@command()
def train(data_dir: Path = typer.Argument(..., help="edge-tan dataset folder"),
          model: str = typer.Option(TRAIN["model"], "--model", help="registered model name (see `edge-tan models`)"),
          out: Path = typer.Option(Path(TRAIN["out"]), "--out", help="run folder (checkpoints, weights, log)"),
          tcm: bool = typer.Option(TRAIN["tcm"], "--tcm/--no-tcm", help="Temporal Coherence Module (LK-flow labels)"),
          epochs: int = typer.Option(TRAIN["epochs"], "--epochs"),
          max_minutes: float = typer.Option(TRAIN["max_minutes"], "--max-minutes", help="stop after this wall time (0 = no limit)"),
          batch_size: int = typer.Option(TRAIN["batch_size"], "--batch-size"),
          lr: float = typer.Option(TRAIN["lr"], "--lr"),
          width: float = typer.Option(TRAIN["width"], "--width", help="MobileNetV2 width multiplier"),
          size: int = typer.Option(TRAIN["size"], "--size", help="network window size"),
          samples_per_epoch: int = typer.Option(TRAIN["samples_per_epoch"], "--samples-per-epoch"),
          seed: int = typer.Option(TRAIN["seed"], "--seed"),
          device: str = typer.Option(TRAIN["device"], "--device", help="auto|cpu|cuda"),
          workers: int = typer.Option(TRAIN["workers"], "--workers", help="data-loader processes"),
          resume: bool = typer.Option(TRAIN["resume"], "--resume/--no-resume", help="continue from RUN_DIR/last.ckpt"),
          init: Optional[Path] = typer.Option(None, "--init", help="warm start (fine-tune) from a weights file "
                                              "of the same model; keeps its template and width"),
          input_norm: str = typer.Option(TRAIN["input_norm"], "--input-norm", help="grey-frame step before the warp, "
                                         "written into the weights: equalize (rank-normalised) | none"),
          domain_random: bool = typer.Option(TRAIN["domain_random"], "--dr/--no-dr", help="raw-frame domain randomisation "
                                             "(gain fields, haze, dropout, speckle, resolution, distractors)"),
          ood: bool = typer.Option(TRAIN["ood"], "--ood/--no-ood", help="fit the out-of-domain reference into the "
                                   "written TAN weights on this dataset, as `edge-tan ood-fit` does")):
    """Train TAN or a baseline on a dataset (OHEM, optional TCM, resumable, time-budgeted)."""
    from ..export.train.loop import TrainConfig, train as run_train
    cfg = TrainConfig(data_dir=str(data_dir), model=model, out=str(out), tcm=tcm, epochs=epochs,
                      max_minutes=max_minutes, batch_size=batch_size, lr=lr, width=width, size=size,
                      samples_per_epoch=samples_per_epoch, seed=seed, device=device, workers=workers,
                      resume=resume, init=str(init) if init else "", input_norm=input_norm,
                      domain_random=domain_random, ood=ood)
    run_train(cfg)


@command(name="refit-view")
def refit_view(weights: Path = typer.Argument(..., help="trained TAN weights (.safetensors)"),
               data_dir: Path = typer.Argument(..., help="dataset the model was trained on"),
               out: Path = typer.Option(..., "--out", help="where to write the repaired weights"),
               minutes: float = typer.Option(5.0, "--minutes"),
               seed: int = typer.Option(0, "--seed")):
    """Re-fit a TAN's A2C/A4C view head on the frozen network (repairs a head whose ReLUs died)."""
    from ..export.train.view_head import fit_view_head
    rep = fit_view_head(weights, data_dir, out, minutes=minutes, seed=seed)
    typer.echo(f"view head re-fit: {rep}")


@command(name="ood-fit")
def ood_fit(weights: Path = typer.Argument(..., help="trained TAN weights (.safetensors), e.g. the shipped model"),
            data_dir: Path = typer.Argument(..., help="in-domain dataset, e.g. `edge-tan synth DIR --n 24 --seed 3100`: "
                                            "its train split gives the statistics, val+test the thresholds"),
            out: Path = typer.Option(..., "--out", help="weights to write (.safetensors; may be WEIGHTS itself)"),
            method: str = typer.Option("knn", "--method", help="knn (cosine distance to the nearest prototype "
                                       "windows; the default) or lowrank (the Gaussian of artifacts fitted before)"),
            k: int = typer.Option(32, "--k", help="lowrank: principal directions kept"),
            windows: int = typer.Option(2000, "--windows", help="training-style windows for the statistics"),
            clip_margin: float = typer.Option(1.0, "--clip-margin", help="clip threshold = this x the largest "
                                              "held-out clip median"),
            frame_margin: float = typer.Option(2.5, "--frame-margin", help="frame threshold = this x p99.9 of the "
                                               "held-out windows' scores")):
    """Fit the out-of-domain reference (pooled-feature statistics + thresholds) into a TAN weights file."""
    from ..export.ood_fit import ood_fit as fit
    from ..runtime.errors import UsageError
    if method not in ("knn", "lowrank"):
        raise UsageError(f"--method must be knn or lowrank, got {method!r}")
    rep = fit(str(weights), str(data_dir), str(out), k=k, windows=windows, clip_margin=clip_margin,
              frame_margin=frame_margin, method=method)
    typer.echo(f"{out}: out-of-domain reference ({rep.get('method', 'lowrank')}) of {rep['info']['windows']} windows "
               f"(k={rep['k']}, C={rep['dim']}); "
               f"frame threshold {rep['frame_threshold']:.2f}, clip threshold {rep['clip_threshold']:.2f} "
               f"({rep['info']['threshold_rule']['clip']}); export it again to carry it")


@command()
def adapt(weights: Path = typer.Argument(..., help="trained TAN weights (.safetensors), e.g. the shipped model"),
          clips: Path = typer.Argument(..., help="folder (searched recursively) of the site's unlabelled clips: "
                                       "AVI/MP4/DICOM/NIfTI/npz, any mix; labels in them are ignored"),
          out: Path = typer.Option(..., "--out", help="adapted weights to write (.safetensors)"),
          minutes: float = typer.Option(ADAPT["minutes"], "--minutes", help="time budget for all phases together"),
          work: Optional[Path] = typer.Option(None, "--work", help="state folder; a re-run continues it "
                                              "(default: OUT.work)"),
          seed: int = typer.Option(ADAPT["seed"], "--seed"),
          phases: str = typer.Option(ADAPT["phases"], "--phases", help="comma list of bn (BatchNorm re-estimation), phantom "
                                     "(separate site-styled phantom fine-tune, opt-in), self (self-training)"),
          max_frames: int = typer.Option(ADAPT["max_frames"], "--max-frames", help="frames kept per clip (after --frame-stride)"),
          frame_stride: int = typer.Option(ADAPT["frame_stride"], "--frame-stride", help="keep every Nth frame (2: a beat in 32 frames "
                                           "at 50 fps)"),
          phantom: Optional[Path] = typer.Option(None, "--phantom", help="labelled phantom dataset to fine-tune on "
                                                 "(default: generate one in the work folder)"),
          threads: int = typer.Option(ADAPT["threads"], "--threads", help="torch threads (0: torch's default)"),
          window_pairs: int = typer.Option(ADAPT["window_pairs"], "--window-pairs", help="self-training: site frames per "
                                           "batch cut by two jittered windows that must agree (0: off)"),
          view: Optional[str] = typer.Option(ADAPT["view"] or None, "--view", help="the view every clip shows, when the site knows it "
                                   "(e.g. A4C): pseudo-labels and the final view-head re-fit take it instead of "
                                   "each clip's own call"),
          tracings: Optional[Path] = typer.Option(None, "--tracings", help="the site's expert tracings, a traced-areas CSV "
                                                  "(FileName, ED_frame, ES_frame, ED_area_px, ES_area_px): the traced "
                                                  "frames become labels of the expert's LV area"),
          traced_share: float = typer.Option(ADAPT["traced_share"], "--traced-share", help="share of a batch's site samples "
                                             "taken from the traced labels")):
    """Adapt a trained TAN to a site's clips (BatchNorm, styled phantom, self-training; expert tracings where given)."""
    from ..export.adapt.run import AdaptConfig, adapt as run_adapt
    run_adapt(AdaptConfig(weights=str(weights), clips=str(clips), out=str(out), minutes=minutes,
                          work=str(work) if work else "", seed=seed, phases=phases, max_frames=max_frames,
                          frame_stride=frame_stride, phantom=str(phantom) if phantom else "", threads=threads,
                          view=view or "", window_pairs=window_pairs, tracings=str(tracings) if tracings else "",
                          traced_share=traced_share))


@command()
def models():
    """List the registered model architectures with parameter and MAC counts."""
    from ..export.models.registry import print_models
    print_models()


@command()
def export(target: str = typer.Option("onnx", "--target", help="|".join(registry.targets())),
           precision: str = typer.Option("fp32", "--precision", help="|".join(registry.PRECISIONS) + " (bf16: OpenVINO on a CPU with native BF16)"),
           model: str = typer.Option("default", "--model", help="'default', a registered name, or a weights file"),
           calib: Optional[Path] = typer.Option(None, "--calib", help="dataset for INT8 calibration"),
           accuracy_control: bool = typer.Option(False, "--accuracy-control", help="INT8 with max Dice drop"),
           max_drop: float = typer.Option(0.005, "--max-drop", help="accuracy-control: max Dice drop"),
           out: Path = typer.Option(Path("artifacts"), "--out", help="output folder"),
           force: bool = typer.Option(False, "--force", help="rebuild even if cached")):
    """Export a model to a self-describing ONNX / OpenVINO IR / TensorRT engine (cached, atomic)."""
    from ..targets.build import build_artifact
    built = build_artifact(model=model, target=target, precision=precision, out_dir=out, calib=calib,
                           accuracy_control=accuracy_control, max_drop=max_drop, force=force)
    typer.echo(str(built.path))

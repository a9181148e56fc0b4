"""Ship a trained run as the package's default model: fp16 weights + a model card from measured figures.

    python scripts/ship_default_model.py RUN_DIR [--eval eval.json] [--notes "..."]

Reads RUN_DIR/best.safetensors and RUN_DIR/summary.json (written by `edge-tan train`) and, when
given, the JSON of `edge-tan eval` on held-out data. Every number in the card comes from those files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from edge_tan.atomic import write_text
from edge_tan.defaults import MODEL_CARD_NAME, assets_dir, default_weights_path


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _num(x, unit=""):
    return "n/a" if x is None else f"{x:.2f}{unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path)
    ap.add_argument("--eval", type=Path, default=None)
    ap.add_argument("--data-recipe", default="edge-tan synth DATA --n 240 --seed 7")
    ap.add_argument("--notes", default="")
    ap.add_argument("--from-last", action="store_true",
                    help="ship RUN_DIR/last.ckpt (latest epoch) instead of best.safetensors (best val Dice)")
    ap.add_argument("--weights", type=Path, default=None,
                    help="ship this weights file (e.g. after `edge-tan refit-view`) with RUN_DIR's record")
    ap.add_argument("--command", default=None, help="training command, when summary.json is absent")
    ap.add_argument("--baseline", action="append", default=[], metavar="NAME:SUMMARY_JSON:EVAL_JSON",
                    help="a baseline trained by the same recipe (its summary.json and `edge-tan eval` JSON)")
    a = ap.parse_args()

    from edge_tan.export.weights import load_weights, save_weights
    log = [json.loads(ln) for ln in (a.run / "log.jsonl").read_text().splitlines() if ln.strip()]
    if (a.run / "summary.json").is_file():
        summary = json.loads((a.run / "summary.json").read_text())
    else:  # run stopped by hand: rebuild the facts from the per-epoch log
        summary = {"command": a.command, "wall_s": log[-1]["elapsed_s"], "device": "cpu", "steps": log[-1]["step"],
                   "epochs_done": log[-1]["epoch"], "stopped_by_budget": "stopped by hand",
                   "best": max(log, key=lambda d: d["val_dice"])}
    model, md = load_weights(a.weights or a.run / "best.safetensors")
    if a.from_last:
        import torch
        blob = torch.load(a.run / "last.ckpt", map_location="cpu", weights_only=True)
        if a.weights is None:
            model.load_state_dict(blob["model"])
        last = json.loads(blob["state"])
        rec = next((d for d in log if d["epoch"] == last["epoch"]), log[-1])
        summary["best"] = rec
        summary["selected"] = f"last checkpoint (epoch {rec['epoch']})"
    md.trained = True
    md.model_version = f"phantom-{_git_head()}"
    md.training = {**md.training, "data_recipe": a.data_recipe, "train_command": summary.get("command"),
                   "wall_s": summary.get("wall_s"), "device": summary.get("device"),
                   "best_val": summary.get("best"), "source_commit": _git_head(),
                   # the tracker trusts view confidence as a loss signal only when this is >= 0.9
                   "val_view_acc": md.training.get("val_view_acc", (summary.get("best") or {}).get("val_view_acc"))}
    dst = default_weights_path()
    sha = save_weights(model, md, dst, half=True)
    b = summary.get("best", {})
    ev = json.loads(a.eval.read_text()) if a.eval else None
    lines = [
        "# Model card: edge-tan default TAN", "",
        f"- file: `edge_tan/assets/{dst.name}` ({dst.stat().st_size / 1e6:.1f} MB, fp16 safetensors, no pickle)",
        f"- weights sha256: `{sha}`",
        "- architecture: TAN (paper configuration): MobileNetV2 width 1.0 encoder, Table-1 segmentation decoder "
        "(160/96/64/32) with additive skips, landmark head (offsets from the template), view head (A2C/A4C); "
        "input 1×224×224",
        "- trained on: the edge-tan phantom only (no real echo data may ship). Training data recipe: "
        f"`{a.data_recipe}`",
        f"- training command: `{summary.get('command')}`",
        f"- weights selected: {summary.get('selected', 'best validation Dice')}",
        f"- device: {summary.get('device')}; wall time {summary.get('wall_s', 0) / 60:.1f} min; "
        f"{summary.get('steps')} steps; epochs {summary.get('epochs_done')}; stopped by budget: "
        f"{summary.get('stopped_by_budget')}",
        f"- loss: {summary.get('recipe', {}).get('loss') or '0.1 view CE + 0.1 smooth-L1(landmark offsets/16) + 10 (OHEM top-10 % CE + mean CE)'}",
        f"- view head re-fit: {md.training.get('view_head_refit', 'no')}", "",
        "## Validation (phantom val split, warped space from the previous frame's ground-truth landmarks)", "",
        "| Dice | landmark err (window px) | view acc | detect Dice (full frame) | jittered-window Dice |",
        "|---|---|---|---|---|",
        f"| {_pct(b.get('val_dice'))} | {_num(b.get('val_landmark_px'))} | {_pct(md.training.get('val_view_acc', b.get('val_view_acc')))} | "
        f"{_pct(b.get('val_detect_dice'))} | {_pct(b.get('val_jitter_dice'))} |", "",
    ]
    if ev:
        lines += [f"## Closed-loop tracking on held-out phantom clips ({ev['sequences']} sequences, "
                  f"`{ev['data']}`, backend {ev['backend']})", "",
                  "| mode | Dice | Dice worst-10 % | ASD px | SI px | landmark err px | OKS | view acc (clip call) "
                  "| view acc (window alone) | EF abs err |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for mode, r in ev["results"].items():
            f, v = r["frames"], r["videos"]
            g = lambda d, k, s="mean": (d.get(k) or {}).get(s)  # noqa: E731
            lines.append(f"| {mode} | {_pct(g(f, 'dice'))} | {_pct(g(f, 'dice', 'worst10'))} | {_num(g(f, 'asd_px'))} | "
                         f"{_num(g(v, 'si_px'))} | {_num(g(f, 'lm_err_px'))} | {_pct(g(f, 'oks'))} | "
                         f"{_pct(g(f, 'view_acc'))} | {_pct(g(f, 'view_frame_acc'))} | {_num(g(v, 'ef_abs_err'))} |")
        lines.append("")
    if a.baseline:
        lines += ["## Baselines trained by the same recipe (full frame, no warp; weights not shipped)", "",
                  "| model | device | training | val Dice | held-out Dice | worst-10 % | ASD px | SI px | landmark err px |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for spec in a.baseline:
            name, sp, ep = spec.split(":")
            bs, be = json.loads(Path(sp).read_text()), json.loads(Path(ep).read_text())
            f, v = be["results"]["closed_loop"]["frames"], be["results"]["closed_loop"]["videos"]
            g = lambda d, k, s="mean": (d.get(k) or {}).get(s)  # noqa: E731
            lines.append(f"| {name} | {bs.get('device')} | {bs.get('train_s', 0):.0f} s, {bs.get('steps')} steps of "
                         f"{bs['recipe']['batch_size']} | {_pct(bs.get('best_val_dice'))} | {_pct(g(f, 'dice'))} | "
                         f"{_pct(g(f, 'dice', 'worst10'))} | {_num(g(f, 'asd_px'))} | {_num(g(v, 'si_px'))} | "
                         f"{_num(g(f, 'lm_err_px'))} |")
        lines.append("")
    lines += ["## Limits", "",
              "- Trained and validated on synthetic (phantom) echo only; accuracy on real clips is not measured here.",
              "- Figures above are from the run and evaluation named; nothing is estimated.", ""]
    if a.notes:
        lines += [a.notes, ""]
    write_text(assets_dir() / MODEL_CARD_NAME, "\n".join(lines))
    print(f"shipped {dst} ({dst.stat().st_size / 1e6:.1f} MB) and {MODEL_CARD_NAME}")


if __name__ == "__main__":
    main()

"""Ship a trained run as the package's default model: fp16 weights carrying their training record.

    python scripts/ship_default_model.py RUN_DIR [--weights W [--epoch N --why "..."]] [--from-last] [--data-recipe "..."]
    python scripts/ship_default_model.py --onnx-only     # rebuild tan_default.onnx from the shipped weights

Reads RUN_DIR/best.safetensors and RUN_DIR/summary.json (written by `edge-tan train`) and writes the
record (data recipe, command, device, best validation, source commit) into the shipped file. The model
card's tables are not written here: `scripts/record_runs.py` measures and `scripts/render_docs.py`
fills them from the committed run records.

Every shipping also rebuilds `edge_tan/assets/tan_default.onnx` (+ `.onnx.json`, the weights file's
sha256) from the weights just written (`edge_tan.targets.ship`), so a device without torch runs the
same network; `--onnx-only` does that step alone, for weights shipped some other way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from edge_tan.runtime.defaults import default_weights_path


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path, nargs="?")
    ap.add_argument("--onnx-only", action="store_true",
                    help="only rebuild tan_default.onnx (+ record) from the tan_default.safetensors shipped now")
    ap.add_argument("--data-recipe", default="edge-tan synth DATA --n 240 --seed 7")
    ap.add_argument("--from-last", action="store_true",
                    help="ship RUN_DIR/last.ckpt (latest epoch) instead of best.safetensors (best val Dice)")
    ap.add_argument("--weights", type=Path, default=None,
                    help="ship this weights file (e.g. after `edge-tan refit-view`) with RUN_DIR's record")
    ap.add_argument("--epoch", type=int, default=None,
                    help="--weights is the checkpoint saved after this epoch: its validation row is recorded")
    ap.add_argument("--why", default=None, help="why this checkpoint was chosen (recorded with --epoch)")
    ap.add_argument("--command", default=None, help="training command, when summary.json is absent")
    a = ap.parse_args()
    if a.onnx_only:
        return ship_onnx()
    if a.run is None:
        ap.error("RUN_DIR is required (or --onnx-only)")

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
    if a.epoch is not None:
        if a.weights is None:
            raise SystemExit("--epoch names the epoch of --weights: give --weights too")
        rec = next((d for d in log if d["epoch"] == a.epoch), None)
        if rec is None:
            raise SystemExit(f"epoch {a.epoch} is not in {a.run / 'log.jsonl'}")
        summary["best"] = rec
        summary["selected"] = f"checkpoint after epoch {a.epoch}" + (f": {a.why}" if a.why else "")
    md.trained = True
    md.model_version = f"phantom-{_git_head()}"
    md.training = {**md.training, "data_recipe": a.data_recipe, "train_command": summary.get("command"),
                   "wall_s": summary.get("wall_s"), "device": summary.get("device"),
                   "best_val": summary.get("best"), "selected": summary.get("selected", "best validation Dice"),
                   "source_commit": _git_head(), "shipped_dtype": "fp16",
                   # the phantom view accuracy, for the card (it no longer switches a tracker check on)
                   "val_view_acc": md.training.get("val_view_acc", (summary.get("best") or {}).get("val_view_acc"))}
    dst = default_weights_path()
    sha = save_weights(model, md, dst, half=True)
    print(f"shipped {dst} ({dst.stat().st_size / 1e6:.1f} MB), sha256 {sha}")
    ship_onnx()
    # The card's prose is committed; its tables are generated from run records, never typed here
    print("next: python scripts/record_runs.py && python scripts/render_docs.py (refreshes README and card tables)")


def ship_onnx() -> None:
    from edge_tan.targets.ship import ship_default_onnx

    rec = ship_default_onnx()
    print(f"shipped {rec['artifact']} (sha256 {rec['artifact_sha256'][:12]}) from {rec['source']} "
          f"(sha256 {rec['source_sha256'][:12]})")


if __name__ == "__main__":
    main()

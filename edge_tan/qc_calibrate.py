"""`edge-tan qc-calibrate EVAL_JSON... --out site-qc.json`: re-calibrate QC for a site.

Input: one or more JSON files written by `edge-tan eval CLIPS --reports CSV --json E.json` on the
site's own clips (each clip carries its QC features and its EF error against the report).

- default: keep the weights of the current QC model and move only the threshold, so the lowest-
  scoring `--flag-share` of the site's clips (default 20 %) are marked unreliable;
- `--refit`: also re-fit the logistic weights on the site's clips for "EF error > --error points"
  (needs >= 10 clips with both outcomes; more is better: 100+), threshold as above or
  `--threshold P` to keep a fixed score cut.

`--ood-threshold T` also sets the site's out-of-domain clip threshold (edge_tan.runtime.ood), overriding the
artifact's: a site that has looked at its own clips' `qc.ood.score` can move it.

The output is a QC model JSON that records what it was fitted on; use it with
`edge-tan track/eval --qc-model FILE` or `EDGE_TAN_QC_MODEL=FILE` (e.g. in a device's environment).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .runtime import qc as qcm
from .runtime.atomic import write_text
from .runtime.errors import EdgeTanError, UsageError


def load_clips(paths: list[Path]) -> list[dict]:
    clips = []
    for p in paths:
        try:
            data = json.loads(Path(p).read_text())
            rows = data["clips"]
            assert isinstance(rows, list)
        except FileNotFoundError:
            raise EdgeTanError(f"{p}: not found") from None
        except (json.JSONDecodeError, KeyError, AssertionError, TypeError):
            raise EdgeTanError(f"{p}: not an `edge-tan eval --reports` JSON (no 'clips' list)") from None
        clips += [dict(r, source=str(p)) for r in rows]
    if not clips:
        raise EdgeTanError("no clips in the eval JSON files")
    return clips


def calibrate(paths: list[Path], out: Path, base: Path | None = None, refit: bool = False,
              flag_share: float = 0.2, threshold: float | None = None, error: float = 10.0,
              ood_threshold: float | None = None) -> dict:
    if not 0.0 < flag_share < 1.0:
        raise UsageError(f"--flag-share must be between 0 and 1, got {flag_share}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be in 0..1, got {threshold}")
    clips = load_clips(paths)
    feats = [r["qc"]["components"] for r in clips]
    feats = [{k: (math.nan if v is None else float(v)) for k, v in f.items()} for f in feats]
    bad = np.array([r.get("ef_err") is None or r["ef_err"] > error for r in clips])
    info = {"calibrated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
            "from": [str(p) for p in paths], "clips": len(clips), "ef_error_gt_points": error,
            "bad_clips": int(bad.sum()), "flag_share": None if threshold is not None else flag_share}
    if refit:
        model = qcm.refit(feats, bad, info | {"how": "weights and threshold re-fitted on these clips"})
    else:
        model = qcm.load_model(base)
        if model.info.get("uncalibrated"):
            raise EdgeTanError("this checkout has no calibrated QC weights to keep: add --refit")
        model.info = info | {"how": "threshold re-set; weights kept", "weights_from": model.info}
    scores = [model.score(f) for f in feats]
    model.threshold = threshold if threshold is not None else qcm.calibrate_threshold(scores, flag_share)
    au = qcm.auroc([-s for s in scores], bad)
    model.info["auroc_on_these_clips"] = None if au is None else round(au, 4)
    acc = [r for r, s in zip(clips, scores) if s >= model.threshold]
    errs = [r["ef_err"] for r in acc if r.get("ef_err") is not None]
    model.info["accepted"] = {"clips": len(acc), "ef_mae": round(float(np.mean(errs)), 3) if errs else None}
    if ood_threshold is not None:   # the site's out-of-domain clip threshold (edge_tan.runtime.qc.ood_block reads it)
        if not ood_threshold > 0:
            raise UsageError(f"--ood-threshold must be > 0, got {ood_threshold}")
        model.info["ood_clip_threshold"] = float(ood_threshold)
        sc = [((r.get("qc") or {}).get("ood") or {}).get("score") for r in clips]
        sc = [v for v in sc if v is not None]
        model.info["ood_flagged_here"] = round(float(np.mean(np.array(sc) > ood_threshold)), 4) if sc else None
    write_text(out, json.dumps(model.to_dict(), indent=1))
    return model.to_dict()


def print_result(d: dict, out: Path) -> None:
    i = d["info"]
    print(f"{out}: threshold {d['threshold']:.3f} ({i['how']}); {i['clips']} clips, {i['bad_clips']} with EF error > "
          f"{i['ef_error_gt_points']:g} points; AUROC {i['auroc_on_these_clips']} on these clips (in-sample); "
          f"accepted {i['accepted']['clips']} clips, EF MAE {i['accepted']['ef_mae']}")

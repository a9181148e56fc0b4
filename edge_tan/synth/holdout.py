"""The "holdout" phantom family: a held-out test domain that no training run, tuning step or design
choice has looked at (issue 21: the "foreign" family had leaked; the training family's clinical-range
hearts copied its ranges, and its final test seed had been evaluated for three model versions).

Frozen: `FROZEN` below and tests/test_trust_holdout.py pin what this module draws; change nothing
here (a new held-out family gets a new module and a new name). Training refuses any dataset of a
held-out family (`refuse_held_out`, called by export/train before it loads a split).

How it differs, on purpose away from both the training family and "foreign":
- anatomy: a slender, long LV (narrower, longer), thin walls, small atria, a wide RV, a bent
  centreline and a strongly tilted heart;
- rendering: coarse blurry speckle from a broad PSF, a low dynamic range with a dark grey curve,
  strong depth attenuation and noise, reverberation bands, heavy clutter and JPEG, no overlays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime.errors import UsageError

FAMILY = "holdout"
FROZEN = "2026-12-06"                 # the date this family's draws were fixed; never edited since
HELD_OUT_FAMILIES = ("foreign", FAMILY)   # phantom families training must never see


def _u(rng, lo, hi) -> float:
    return float(rng.uniform(lo, hi))


def apply_holdout(P, rng) -> None:
    """Turn a base draw (edge_tan.synth.params.sample_params) into a holdout-family sequence.
    Every draw is always taken, in this order (stable streams)."""
    an, ts = P.anatomy, P.tissue
    an.A *= _u(rng, 0.82, 0.9)
    an.L *= _u(rng, 1.05, 1.15)
    an.h_sep *= _u(rng, 0.7, 0.85)
    an.h_lat = an.h_sep * _u(rng, 0.85, 1.05)
    an.la_a *= _u(rng, 0.75, 0.9)
    an.la_b *= _u(rng, 0.75, 0.9)
    an.rv_w *= _u(rng, 1.2, 1.4)
    an.skew = float(rng.choice([-1.0, 1.0])) * _u(rng, 0.15, 0.25)
    P.tilt = float(np.deg2rad(float(rng.choice([-1.0, 1.0])) * _u(rng, 15.0, 25.0)))
    ts.lateral = _u(rng, 0.4, 0.6)
    ts.septum = _u(rng, 1.2, 1.6)
    ts.blood = 10 ** _u(rng, -2.3, -2.0)          # hazy blood pool
    ts.trabeculae *= 1.5
    P.imaging.update(psf_ax_mm=_u(rng, 2.0, 2.6), psf_lat_deg=_u(rng, 1.8, 2.4), speckle_mm=_u(rng, 1.1, 1.5),
                     dr_db=_u(rng, 32, 38), gamma=_u(rng, 0.9, 1.05), att_db_mm=_u(rng, 0.04, 0.06),
                     noise_rel_db=_u(rng, -4, 0), tint=0)
    P.artifacts.update(clutter=_u(rng, 0.25, 0.35), clutter_depth=_u(rng, 15, 30), reverb_bands=1.0,
                       jpeg=int(rng.integers(50, 61)), overlay_text=False, overlay_ecg=False, overlay_ticks=False)


def refuse_held_out(data_dir: str | Path) -> None:
    """UsageError when `data_dir` is (or holds sequences of) a held-out phantom family."""
    import json
    mf = Path(data_dir) / "manifest.json"
    try:
        m = json.loads(mf.read_text()) if mf.is_file() else {}
    except (OSError, ValueError):
        m = {}
    fam = m.get("family")
    names = [str(e.get("name", "")) for e in m.get("sequences", []) if isinstance(e, dict)]
    leaked = sorted({f for f in HELD_OUT_FAMILIES if fam == f or any(n.startswith(f + "_") for n in names)})
    if not leaked and not m:   # no manifest: look at the file names a generator would have written
        leaked = sorted({f for f in HELD_OUT_FAMILIES for p in Path(data_dir).glob(f"{f}_*.npz")})
    if leaked:
        raise UsageError(f"{data_dir}: phantom family {', '.join(leaked)} is held out for testing and never "
                         "trained on (edge_tan/synth/holdout.py); train on `edge-tan synth` default-family data")

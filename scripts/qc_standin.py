"""Build a QC stand-in set: clips of a phantom dataset plus degraded copies, and a reports CSV.

    edge-tan synth /tmp/foreign-s2200 --n 60 --seed 2200 --family foreign
    python scripts/qc_standin.py /tmp/foreign-s2200 /tmp/qc-cal --seed 2200

Why: QC must be calibrated on clips where EF goes wrong. The foreign phantom family (never trained
on) already fails on some clips; each clip also gets one degraded copy, cycling through: heavy noise,
blur, low contrast, moving dropouts, a crop that cuts the LV base or side out of the frame, a
sideways (non-apical) orientation, and a clip with no heart at all (smooth texture). `--variants`
picks others (e.g. "blank": the probe off the patient) and `--every-variant` gives each clip one copy
of each (the out-of-domain record's degraded set, scripts/ood_measure.py). Every copy keeps
the source clip's EF as its "report" (a clip that cannot give that EF should be flagged). The
reports CSV is EchoNet-style: FileName without extension, EF, ED, ES.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_tan.runtime.atomic import write_text  # noqa: E402
from edge_tan.dataset import Sequence, list_split, load_sequence, read_manifest, save_sequence  # noqa: E402

FORBIDDEN_SEEDS = (1000, 4242)
VARIANTS = ("noise", "blur", "lowcontrast", "dropout", "crop", "sideways", "texture")
KINDS = VARIANTS + ("blank",)


def _u8(x) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)


def degrade(seq: Sequence, kind: str, rng: np.random.Generator) -> Sequence:
    f = seq.frames.astype(np.float32)
    m, lm, lab = seq.masks, seq.landmarks, seq.labeled
    T, H, W = f.shape
    if kind == "noise":
        f = f * rng.gamma(2.0, 0.5, f.shape) + rng.normal(0, 35, f.shape)
    elif kind == "blur":
        s = 0.025 * min(H, W)
        f = np.stack([cv2.GaussianBlur(x, (0, 0), s) for x in f])
    elif kind == "lowcontrast":
        f = 0.2 * f + 70 + rng.normal(0, 6, f.shape)
    elif kind == "dropout":
        for t in range(T):
            for _ in range(3):
                w, h = int(rng.uniform(0.15, 0.35) * W), int(rng.uniform(0.15, 0.35) * H)
                x, y = int(rng.uniform(0, W - w)), int(rng.uniform(0, H - h))
                f[t, y:y + h, x:x + w] *= 0.05
    elif kind == "crop":
        ys, xs = np.nonzero(m.any(0))
        if rng.random() < 0.5:   # cut the base (annulus) off
            y1 = max(int(ys.min() + 0.6 * (ys.max() - ys.min())), 16)
            f, m = f[:, :y1], m[:, :y1]
        else:                    # cut the lateral half off
            x0 = int(xs.min() + 0.5 * (xs.max() - xs.min()))
            f, m = f[:, :, :x0] if xs.mean() > W / 2 else f[:, :, x0:], m[:, :, :x0] if xs.mean() > W / 2 else m[:, :, x0:]
        lm = np.full((T, 3, 2), np.nan, np.float32)
    elif kind == "sideways":
        f, m = np.rot90(f, 1, (1, 2)).copy(), np.rot90(m, 1, (1, 2)).copy()
        lm = np.full((T, 3, 2), np.nan, np.float32)
    elif kind == "blank":      # probe off the patient: a dark frame with faint electronic noise
        f = rng.normal(6, 1.5, f.shape)
        m = np.zeros((T, H, W), np.uint8)
        lm, lab = np.full((T, 3, 2), np.nan, np.float32), np.zeros(T, bool)
    elif kind == "texture":
        base = cv2.GaussianBlur(rng.normal(90, 60, (H, W)).astype(np.float32), (0, 0), 0.04 * min(H, W))
        f = np.stack([base + rng.normal(0, 12, (H, W)) for _ in range(T)])
        m = np.zeros((T, H, W), np.uint8)
        lm, lab = np.full((T, 3, 2), np.nan, np.float32), np.zeros(T, bool)
    else:
        raise ValueError(kind)
    return Sequence(name=f"{seq.name}__{kind}", frames=_u8(f), masks=np.ascontiguousarray(m).astype(np.uint8),
                    labeled=lab, landmarks=lm, view=seq.view, fps=seq.fps, spacing_mm=seq.spacing_mm,
                    ed=seq.ed, es=seq.es, ef=seq.ef)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="edge-tan dataset (e.g. a foreign-family synth set)")
    ap.add_argument("out", type=Path, help="folder for the clips and reports.csv")
    ap.add_argument("--seed", type=int, required=True, help="seed for the degradations")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"degradations, comma-separated, from {', '.join(KINDS)} (default: the QC set)")
    ap.add_argument("--every-variant", action="store_true",
                    help="give each clip one copy per variant (default: one copy per clip, cycling through them)")
    a = ap.parse_args(argv)
    kinds = tuple(k.strip() for k in a.variants.split(",") if k.strip())
    if not kinds or set(kinds) - set(KINDS):
        raise SystemExit(f"--variants: unknown {sorted(set(kinds) - set(KINDS)) or 'empty list'}; choose from {', '.join(KINDS)}")
    man = read_manifest(a.src)
    if man.get("seed") in FORBIDDEN_SEEDS or a.seed in FORBIDDEN_SEEDS:
        raise SystemExit("seeds 1000 (dev) and 4242 (final test) must not be used for QC calibration")
    rng = np.random.default_rng(a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, p in enumerate(list_split(a.src, None)):
        seq = load_sequence(p)
        mine = kinds if a.every_variant else (kinds[i % len(kinds)],)
        for s in (seq, *(degrade(seq, k, rng) for k in mine)):
            save_sequence(s, a.out / f"{s.name}.npz")
            rows.append([s.name, f"{seq.ef:.2f}", int(seq.ed[0]) if seq.ed.size else "",
                         int(seq.es[0]) if seq.es.size else ""])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["FileName", "EF", "ED", "ES"])
    w.writerows(rows)
    write_text(a.out / "reports.csv", buf.getvalue())
    write_text(a.out / "standin.json", json.dumps({"source": {k: man.get(k) for k in ("generator", "family", "seed", "n")},
                                                   "degradation_seed": a.seed, "variants": kinds,
                                                   "every_variant": a.every_variant,
                                                   "clips": len(rows)}, indent=1))
    clean = len(list_split(a.src, None))
    print(f"{a.out}: {len(rows)} clips ({clean} clean + {len(rows) - clean} degraded), reports.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fit edge_tan/assets/shape_model.json (the QC shape model) from phantom labels.

    edge-tan synth /tmp/shape-s3100 --n 8 --seed 3100
    edge-tan synth /tmp/shape-s3101 --n 8 --seed 3101
    python scripts/fit_shape_model.py /tmp/shape-s3100 /tmp/shape-s3101

Every labelled frame's ground-truth mask contour, aligned by its ground-truth landmarks, becomes one
descriptor (edge_tan.runtime.shape_model). Use training-family phantom seeds other than the dev (1000) and
final test (4242) seeds. The JSON records the datasets (generator, family, seed, size) it came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_tan.runtime import geometry as geo  # noqa: E402
from edge_tan.runtime import shape_model as sm  # noqa: E402
from edge_tan.runtime.atomic import write_text  # noqa: E402
from edge_tan.dataset import list_split, load_sequence, read_manifest  # noqa: E402

FORBIDDEN_SEEDS = (1000, 4242)   # dev set and final test set


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=sm.ASSET)
    ap.add_argument("--k", type=int, default=6, help="PCA modes kept")
    ap.add_argument("--every", type=int, default=2, help="use every n-th labelled frame")
    a = ap.parse_args(argv)
    descs, sources, clips = [], [], 0
    for d in a.datasets:
        man = read_manifest(d)
        if man.get("seed") in FORBIDDEN_SEEDS:
            raise SystemExit(f"{d}: seed {man.get('seed')} is the dev or final test set; use another seed")
        sources.append({k: man.get(k) for k in ("generator", "family", "seed", "n")})
        for p in list_split(d, None):
            seq = load_sequence(p)
            clips += 1
            for t in np.flatnonzero(seq.labeled)[::a.every]:
                lm = seq.landmarks[t]
                c = geo.extract_contour(seq.masks[t])
                v = sm.descriptor(c, lm) if np.isfinite(lm).all() else None
                if v is not None:
                    descs.append(v)
    X = np.stack(descs)
    info = {"fitted_on": sources, "clips": clips, "shapes": len(X), "every_nth_labelled_frame": a.every,
            "command": "python scripts/fit_shape_model.py " + " ".join(str(d) for d in a.datasets)}
    model = sm.fit(X, k=a.k, info=info)
    dist = np.array([model.distance(x) for x in X])
    model.info["training_distance"] = {"median": round(float(np.median(dist)), 3),
                                       "p95": round(float(np.percentile(dist, 95)), 3),
                                       "p99": round(float(np.percentile(dist, 99)), 3)}
    write_text(a.out, json.dumps(model.to_dict(), indent=1))
    print(f"{a.out}: {len(X)} shapes from {clips} clips; training distance {model.info['training_distance']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

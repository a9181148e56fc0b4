"""How fast the phantom generator is: frames/s and sequences/min of `generate_dataset` (typical random
sequences: random sizes 112..800 px, 21..120 frames), plus single-process frames/s.

    python bench/synth_speed.py --n 16 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def measure(n: int = 16, workers: int = 2, seed: int = 0, single: int = 4) -> dict:
    from edge_tan.dataset import read_manifest
    from edge_tan.synth.generate import generate_dataset, generate_sequence, sequence_seed

    import cv2

    out: dict = {"n": n, "workers": workers}
    cv2.setNumThreads(1)   # like the dataset workers; process CPU time is then a fair per-core cost
    per_size = {}
    for size in ((112, 112), (224, 224), (480, 640), (600, 800)):
        t0, c0 = time.perf_counter(), time.process_time()
        generate_sequence(seed, "A4C", n_frames=30, out_size=size)
        per_size[f"{size[1]}x{size[0]}"] = {"frames_per_s": round(30 / (time.perf_counter() - t0), 1),
                                            "frames_per_cpu_s": round(30 / (time.process_time() - c0), 1)}
    out["single_process_by_size"] = per_size
    t0, c0 = time.perf_counter(), time.process_time()
    frames = 0
    for i in range(single):
        frames += generate_sequence(sequence_seed(seed + 1, i), ("A2C", "A4C")[i % 2]).n_frames
    out["single_process_frames_per_s"] = round(frames / (time.perf_counter() - t0), 1)
    out["single_process_frames_per_cpu_s"] = round(frames / (time.process_time() - c0), 1)
    tmp = Path(tempfile.mkdtemp(prefix="synth_speed_"))
    try:
        t0 = time.perf_counter()
        generate_dataset(tmp / "ds", n=n, seed=seed, workers=workers, progress=False)
        dt = time.perf_counter() - t0
        man = read_manifest(tmp / "ds")
        total = sum(e["frames"] for e in man["sequences"])
        out.update(seconds=round(dt, 2), frames=total, frames_per_s=round(total / dt, 1),
                   sequences_per_min=round(60 * n / dt, 1),
                   minutes_for_200=round(200 * dt / n / 60, 2),
                   mean_frames=round(total / n, 1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    print(json.dumps(measure(a.n, a.workers, a.seed), indent=1))


if __name__ == "__main__":
    main()

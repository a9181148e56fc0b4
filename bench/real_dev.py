"""The real-echo development set, split once into a development part and a final test part.

Why: 103 real apical four-chamber clips (built by `../shared/tools/real_dev_set.py`; EchoNet-Dynamic,
research use only, never committed) guide design choices and checkpoint selection. A set that guided
choices cannot also say how well they generalise, so 30 clips, picked by a hash of their names (no
look at the images, the same on every machine), are the final real test: they are tracked only to
report, never to choose. `split_folder` writes each part as a folder of links to the clips plus its own
FileList.csv and traced.csv, which `edge-tan eval CLIPS --reports ... --tracings ...` reads as they are.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from edge_tan.runtime.errors import EdgeTanError

DEFAULT_ROOT = Path(os.environ.get("EDGE_TAN_REAL_DEV", Path.home() / ".cache" / "edge-tan-real-dev"))
FINAL_N = 30
PARTS = ("dev", "final")


def present(root: Path = DEFAULT_ROOT) -> bool:
    return (root / "FileList.csv").is_file() and (root / "traced.csv").is_file() and (root / "videos").is_dir()


def part_of(name: str, names: list[str]) -> str:
    """'final' for the FINAL_N names with the lowest sha256 of the name, 'dev' for the rest."""
    order = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    return "final" if name in set(order[:FINAL_N]) else "dev"


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        rd = csv.DictReader(f)
        return list(rd.fieldnames or []), list(rd)


def split_folder(part: str, root: Path = DEFAULT_ROOT) -> Path:
    """ROOT/split/<part>/ with videos/ (links), FileList.csv and traced.csv for that part only."""
    if part not in PARTS:
        raise EdgeTanError(f"unknown part {part!r}: {', '.join(PARTS)}")
    if not present(root):
        raise EdgeTanError(f"real development set not found in {root}: build it with "
                           "`python ../shared/tools/real_dev_set.py --mirror DIR` (see README)")
    cols, files = _rows(root / "FileList.csv")
    names = [r["FileName"] for r in files]
    keep = {n for n in names if part_of(n, names) == part}
    out = root / "split" / part
    (out / "videos").mkdir(parents=True, exist_ok=True)
    for n in sorted(keep):
        link = out / "videos" / f"{n}.avi"
        if not link.exists():
            link.symlink_to(root / "videos" / f"{n}.avi")
    for fname in ("FileList.csv", "traced.csv"):
        c, rows = _rows(root / fname)
        with open(out / fname, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=c)
            w.writeheader()
            w.writerows(r for r in rows if r["FileName"] in keep)
    return out


if __name__ == "__main__":
    for p in PARTS:
        print(p, split_folder(p))

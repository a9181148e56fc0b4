"""Join edge-tan datasets into one training folder without copying clips (symlinks), keeping splits.

    python scripts/merge_datasets.py OUT DATA [DATA ...] [--prefix "" --prefix v3_ ...]

Why: the default model is fine-tuned on the earlier phantom set plus a newer one (clinical-range
hearts); regenerating the old set with today's generator would change it, so the recipe joins the two
folders as they were made. Each DATA may get a name prefix (names must stay unique). OUT is written
atomically: a failed merge leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_tan.runtime.atomic import atomic_dir  # noqa: E402
from edge_tan.runtime.errors import EdgeTanError  # noqa: E402


def merge(out: Path, sources: list[Path], prefixes: list[str]) -> dict:
    if len(prefixes) not in (0, len(sources)):
        raise EdgeTanError("give one --prefix per DATA folder, or none")
    prefixes = prefixes or [""] * len(sources)
    seqs, seen, recipe = [], set(), []
    mans = []
    for src, pre in zip(sources, prefixes):
        mf = src / "manifest.json"
        if not mf.is_file():
            raise EdgeTanError(f"{src}: not an edge-tan dataset (no manifest.json)")
        mans.append((src, pre, json.loads(mf.read_text())))
    with atomic_dir(out) as tmp:
        for src, pre, man in mans:
            for e in man["sequences"]:
                name = pre + e["name"]
                if name in seen:
                    raise EdgeTanError(f"sequence name {name} occurs twice: give the folders different --prefix")
                seen.add(name)
                clip = (src / f"{e['name']}.npz").resolve()
                if not clip.is_file():
                    raise EdgeTanError(f"{src}: {e['name']}.npz is missing")
                os.symlink(clip, Path(tmp) / f"{name}.npz")
                seqs.append(dict(e, name=name))
            recipe.append({"data": str(src), "prefix": pre, "generator": man.get("generator"),
                           "seed": man.get("seed"), "n": man.get("n"), "family": man.get("family")})
        first = mans[0][2]
        merged = {k: v for k, v in first.items() if k not in ("sequences", "seed", "n", "montage")}
        merged.update(n=len(seqs), merged_from=recipe, sequences=seqs)
        (Path(tmp) / "manifest.json").write_text(json.dumps(merged, indent=1))
    return merged


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("data", type=Path, nargs="+")
    ap.add_argument("--prefix", action="append", default=[], help="name prefix, once per DATA, in order")
    a = ap.parse_args(argv)
    try:
        m = merge(a.out, a.data, a.prefix)
    except EdgeTanError as e:
        print(f"merge_datasets: {e}", file=sys.stderr)
        return 2
    split = {}
    for e in m["sequences"]:
        split[e.get("split")] = split.get(e.get("split"), 0) + 1
    print(f"{a.out}: {m['n']} sequences {split}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

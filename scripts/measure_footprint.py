"""The runtime-only footprint: `pip install edge-tan[openvino]` without torch, measured and recorded.

    python scripts/measure_footprint.py [--venv /tmp/rtvenv] [--extra openvino] [--frames 400]

Steps (the dev environment builds the inputs; the fresh venv only runs them):
1. the shipped model exported to an OpenVINO IR (fp32) and one phantom clip (seed 2024, as the bench);
2. a fresh venv with `pip install <checkout>[openvino]` (not editable), checked to hold no torch;
3. install size (site-packages), import time of `edge_tan.embed`, resident memory while tracking,
   p50/p99 frame latency (scripts/footprint_probe.py inside that venv);
4. docs/results/<date>-footprint/record.json with the commands, the machine, its load (`uptime`
   before and after: other processes share the CPU) and the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from record_runs import ET, shown, write_record  # noqa: E402

from edge_tan.bench.machine import machine_info  # noqa: E402


def sh(argv: list, **kw) -> subprocess.CompletedProcess:
    print("$ " + shown([str(a) for a in argv]), flush=True)
    return subprocess.run([str(a) for a in argv], check=True, **kw)


def du_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=Path("/tmp/rtvenv"))
    ap.add_argument("--extra", default="openvino")
    ap.add_argument("--work", type=Path, default=ROOT / "record-work" / "footprint")
    ap.add_argument("--frames", type=int, default=400)
    a = ap.parse_args(argv)
    t_all = time.perf_counter()
    load = {"before": uptime()}
    a.work.mkdir(parents=True, exist_ok=True)
    commands = []

    # 1) inputs, made with the full (torch) environment
    art = ET + ["export", "--target", "openvino", "--model", "default", "--out", a.work / "artifacts"]
    print("$ " + shown([str(x) for x in art]), flush=True)
    xml = subprocess.run([str(x) for x in art], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    clip_dir = a.work / "clip-s2024"
    syn = ET + ["synth", clip_dir, "--n", "1", "--seed", "2024", "--workers", "1"]
    if not (clip_dir / "manifest.json").is_file():
        sh(syn)
    clip = sorted(clip_dir.glob("*.npz"))[0]
    commands += [shown([str(x) for x in art]), shown([str(x) for x in syn])]

    # 2) the runtime-only install
    if a.venv.exists():
        shutil.rmtree(a.venv)
    t0 = time.perf_counter()
    sh([sys.executable, "-m", "venv", a.venv])
    py = a.venv / "bin" / "python"
    sh([py, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    sh([py, "-m", "pip", "install", "-q", f"{ROOT}[{a.extra}]"])
    install_s = time.perf_counter() - t0
    commands += [f"python -m venv {a.venv}", f"{a.venv}/bin/python -m pip install '.[{a.extra}]'"]
    pkgs = json.loads(subprocess.run([py, "-m", "pip", "list", "--format", "json"], check=True, capture_output=True,
                                     text=True).stdout)
    names = {p["name"].lower() for p in pkgs}
    if "torch" in names or "nncf" in names:
        raise SystemExit(f"measure_footprint: the [{a.extra}] extra pulled torch/nncf: {sorted(names)}")
    site = next((a.venv / "lib").glob("python*/site-packages"))
    sizes = {}
    for p in site.iterdir():
        key = p.name.split("-")[0].split(".")[0].lower()
        sizes[key] = sizes.get(key, 0) + (du_bytes(p) if p.is_dir() else p.stat().st_size)
    total = sum(sizes.values())

    # 3) measured inside the runtime venv (no torch anywhere in it)
    probe = [py, ROOT / "scripts" / "footprint_probe.py", xml, clip, "--frames", a.frames]
    commands.append(shown([str(x) for x in probe]).replace(str(a.venv / "bin" / "python"), f"{a.venv}/bin/python"))
    print("$ " + commands[-1], flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    out = subprocess.run([str(x) for x in probe], check=True, capture_output=True, text=True, cwd="/", env=env)
    res = json.loads(out.stdout)
    load["after"] = uptime()
    result = {"extra": a.extra, "install": {"site_packages_mib": round(total / 2 ** 20, 1),
                                            "largest_mib": {k: round(v / 2 ** 20, 1) for k, v in
                                                            sorted(sizes.items(), key=lambda kv: -kv[1])[:8]},
                                            "packages": {p["name"]: p["version"] for p in pkgs},
                                            "install_s": round(install_s, 1)},
              "artifact": {"path": str(Path(xml).relative_to(ROOT)) if Path(xml).is_relative_to(ROOT) else xml,
                           "mib": round((Path(xml).stat().st_size + Path(xml).with_suffix(".bin").stat().st_size)
                                        / 2 ** 20, 1)},
              "clip": str(clip.relative_to(ROOT)) if clip.is_relative_to(ROOT) else str(clip),
              "load": load, **res}
    result["steps"] = commands
    write_record("footprint", ["python scripts/measure_footprint.py" + (f" --frames {a.frames}" if a.frames != 400 else "")],
                 result, time.perf_counter() - t_all, 0)
    lat, mem = res["latency_ms"], res["memory_mib"]
    print(f"install {result['install']['site_packages_mib']} MiB, import {res['import_embed_s']['median']:.3f} s, "
          f"RSS tracking {mem['after_tracking']['rss_mib']} MiB (peak {mem['after_tracking']['peak_rss_mib']}), "
          f"p50 {lat['p50']} ms, p99 {lat['p99']} ms; load {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run every command whose figures README.md and the model card quote, and keep each result as a record.

    python scripts/record_runs.py [--only bench,speed,eval-phantom,eval-foreign,parity,model,gpu-check,qc,adapt,profile,real-dev,ood]
                                  [--eval-n 20] [--parity-clips 2] [--bench-args "--frames 200"]
                                  [--import WHAT=FILE --import-command "..."]

Each step writes docs/results/<UTC date>-<what>/record.json = {what, command, machine, date, wall_s,
exit_code, result}; `scripts/render_docs.py` fills the README and model-card tables from the newest
record of each kind, so no figure is typed by hand. Steps:

- bench         `edge-tan bench` (default models/backends/precisions), bench.json as the result
- speed         one `edge-tan bench` of TAN on OpenVINO FP32, BF16 and INT8 (network alone vs end to end,
                issue 23's ratios in bench.json's "speed"), then `edge-tan parity` of the same three
                against the torch reference; --speed-args adds bench options (e.g. "--frames 300")
- eval-phantom  the final test set (phantom seed FINAL_TEST_SEED, never used while developing),
                closed loop and frame by frame
- eval-foreign  the same seed drawn from the foreign phantom family (`synth --family foreign`);
                skipped with a message while this edge-tan's synth has no --family option
- parity        `edge-tan parity` on the first clips of the final test set, every backend/precision
- model         the shipped weights' training record (header metadata), file size and sha256
- gpu-check     `python scripts/gpu_check.py` (only where nvidia-smi sees a GPU)
- qc            QC calibration: foreign-family clips + degraded copies (scripts/qc_standin.py), seed 2200
                to fit the QC weights, seed 2300 to report AUROC and EF error of accepted clips
- adapt         site adaptation stand-in: foreign phantom as "the site", `adapt` on unlabelled clips
                (seed 2000), shipped vs BatchNorm-only vs `adapt` (bn,self) vs bn,phantom,self on held-back clips (seed 2100)
- profile       how the training family looks beside real echo: `../shared/tools/echo_profile.py` on 20
                default-family phantom clips (seed 5000), each statistic's p10/median/p90 beside the real
                clips' and the tool's own "outside" flag, plus `../shared/tools/realism_distance.py`'s
                distance when that tool is there (skipped with a message when echo_profile.py is missing)
- real-dev      the real development set (103 EchoNet-Dynamic A4C clips from `../shared/tools/real_dev_set.py`,
                never committed; bench/real_dev.py splits it once into 73 development clips and 30 final-test
                clips by name hash): the shipped model on both parts (EF, FAC at the expert's frames, ED area vs
                the expert's trace, ED/ES frames, A4C share, lost share, QC), then `adapt` on the development
                clips (default budget) evaluated on both parts. Aggregate figures only; skipped with a message
                where the set is absent (CI, other machines). The adapted weights stay in --work.
- real-adapt-seeds  the real-dev record's plain `adapt` again with other seeds (--real-adapt-seeds, default
                1,2), each evaluated on both parts: how far the adapted rows move by chance alone
- ood           out-of-domain gate (issue 25): flagged share on the final test and foreign phantom, on
                degraded copies of phantom seed 2400 (scripts/qc_standin.py: noise, blank, cropped LV,
                wrong view; milder kinds apart) and on the real development set (~/.cache/edge-tan-real-dev;
                skipped with a message when absent), a noise burst (phantom and real clips), the cost
- --import      a JSON made elsewhere (e.g. the GPU recipe's baseline evals as eval-unet and
                eval-pspnet), with its exact command and the machine it ran on

Scratch data goes to --work (default record-work/, ignored by git) so the recorded commands can be
run again as written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from edge_tan.runtime.atomic import atomic_dir  # noqa: E402
from edge_tan.bench.machine import machine_info  # noqa: E402
from edge_tan.bench.provenance import provenance  # noqa: E402

# The final test set. Phantom seed 1000 guided tracker development (it is a development set now);
# final figures come from this seed only, which no training or tuning run has used.
FINAL_TEST_SEED = 4242
RESULTS = ROOT / "docs" / "results"
SOAK_EVERY, SOAK_WARMUP, SOAK_FLAT_KIB = 5000, 5000, 1024   # sample every, ignore the first, allowed growth after
STEPS = ("bench", "speed", "eval-phantom", "eval-foreign", "parity", "model", "gpu-check", "qc", "adapt", "profile",
         "real-dev", "real-no-warp", "real-adapt-reach", "real-adapt-seeds", "ood", "soak", "native-parity", "ov-settings")
SHARED = ROOT.parent / "shared"   # the workspace's shared tools and reference data, beside the checkout
ET = [sys.executable, "-m", "edge_tan.cli"]


def shown(argv: list[str]) -> str:
    """The command as a user types it: `edge-tan ...` for the CLI, paths relative to the checkout."""
    if argv[:3] == ET:
        argv = ["edge-tan"] + argv[3:]
    elif argv[:1] == [sys.executable]:
        argv = ["python"] + argv[1:]
    return shlex.join(str(a).replace(str(ROOT) + "/", "").replace(str(SHARED) + "/", "../shared/") for a in argv)


def run(argv: list[str], ok_codes=(0,)) -> tuple[int, float]:
    """Run one command in the checkout, streaming its output; (exit code, wall seconds)."""
    print("$ " + shown(argv), flush=True)
    t = time.perf_counter()
    code = subprocess.run([str(a) for a in argv], cwd=ROOT).returncode
    wall = time.perf_counter() - t
    if code not in ok_codes:
        raise SystemExit(f"record_runs: `{shown(argv)}` exited {code}; no record written")
    return code, wall


def write_record(what: str, commands: list[str], result: dict, wall_s: float, exit_code: int,
                 machine: dict | None = None, files: dict[str, Path] | None = None, date: str | None = None) -> Path:
    """docs/results/<date>-<what>/record.json (+ copied files), written atomically."""
    date = date or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    dest = RESULTS / f"{date}-{what}"
    rec = {"what": what, "command": " && ".join(commands), "commands": commands,
           "machine": machine if machine is not None else machine_info(),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_s": round(wall_s, 1),
           "exit_code": exit_code, **provenance(), "result": result}   # + model_sha256, phantom_version
    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_dir(dest) as tmp:
        (tmp / "record.json").write_text(json.dumps(rec, indent=1, allow_nan=False) + "\n")
        for name, src in (files or {}).items():
            (tmp / name).write_bytes(Path(src).read_bytes())
    print(f"record: {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}/record.json", flush=True)
    return dest


def final_clip(h: int = 112, w: int = 112, n: int = 60):
    """The final-test seed's first A4C phantom clip at (h, w), n frames, uint8 (parity, settings, soak)."""
    import numpy as np
    from edge_tan.synth.generate import sequence_seed
    from edge_tan.synth.render import generate_sequence
    return np.asarray(generate_sequence(sequence_seed(FINAL_TEST_SEED, 0), "A4C", n_frames=n,
                                        out_size=(h, w)).frames, np.uint8)


def synth_set(work: Path, n: int, family: str | None = None, seed: int = FINAL_TEST_SEED,
              name: str | None = None) -> tuple[Path, list[str], float]:
    """A phantom set, generated once per (family, seed, n) and reused; by default the final test set."""
    out = work / (name or f"final-{family or 'phantom'}-s{seed}-n{n}")
    argv = ET + ["synth", out, "--n", str(n), "--seed", str(seed)] + (["--family", family] if family else [])
    wall = 0.0
    if not (out / "manifest.json").is_file():
        _, wall = run(argv)
    return out, [shown(argv)], wall


def _manifest_facts(data: Path) -> dict:
    """Generator version, seed and size of a synth dataset, from its manifest."""
    man = json.loads((data / "manifest.json").read_text())
    return {k: man.get(k) for k in ("generator", "seed", "n", "family", "views")}


def synth_has_family() -> bool:
    r = subprocess.run(ET + ["synth", "--help"], cwd=ROOT, capture_output=True, text=True)
    return "--family" in r.stdout


def step_eval(a, family: str | None) -> None:
    what = "eval-foreign" if family else "eval-phantom"
    if family and not synth_has_family():
        print(f"skip {what}: this edge-tan's `synth` has no --family option yet", flush=True)
        return
    data, cmds, w0 = synth_set(a.work, a.eval_n, family)
    js = a.work / f"{what}.json"
    argv = ET + ["eval", data, "--split", "all", "--frame-by-frame", "--backend", a.backend, "--json", js]
    _, w1 = run(argv)
    result = json.loads(js.read_text())
    result["final_test_seed"], result["family"] = FINAL_TEST_SEED, family or "phantom"
    result["dataset"] = _manifest_facts(data)   # the phantom changes between versions: say which one
    write_record(what, cmds + [shown(argv)], result, w0 + w1, 0)


def step_qc(a) -> None:
    """QC calibration on foreign-family clips + degraded copies (seed 2200), report on seed 2300.

    Both sets are tracked at once (features do not depend on the QC model); the weights are fitted on
    the calibration set, then the report set's clips are scored from their recorded features."""
    import os
    from edge_tan.runtime import qc as qcm
    from edge_tan.eval_reports import summarise
    w, cmds, wall, load0 = a.work / "qc", [], 0.0, os.getloadavg()
    evals, procs, t = {}, [], time.perf_counter()
    for part, seed, n in (("cal", 2200, 60), ("rep", 2300, 40)):
        src, shown_, secs = synth_set(w, n, "foreign", seed, f"foreign-s{seed}-n{n}")
        cmds += shown_
        wall += secs
        argv = [sys.executable, "scripts/qc_standin.py", src, w / part, "--seed", str(seed)]
        wall += run(argv)[1]
        cmds.append(shown(argv))
        evals[part] = ET + ["eval", w / part, "--reports", w / part / "reports.csv", "--limit", str(a.qc_clips),
                            "--backend", a.backend, "--json", w / f"{part}-eval.json"]
        print("$ " + shown(evals[part]) + " &", flush=True)   # tracks while the next set is made
        procs.append(subprocess.Popen([str(x) for x in evals[part]], cwd=ROOT))
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("record_runs: a qc eval failed; no record written")
    wall = time.perf_counter() - t
    cmds += [shown(v) for v in evals.values()]
    argv = ET + ["qc-calibrate", w / "cal-eval.json", "--refit", "--threshold", "0.5", "--out", w / "qc_model.json"]
    wall += run(argv)[1]
    cmds.append(shown(argv))
    mj = json.loads((w / "qc_model.json").read_text())   # say what the weights came from, in the file itself
    cal = json.loads((w / "cal-eval.json").read_text())["model"]
    mj["info"]["from"] = [str(p).replace(str(ROOT) + "/", "") for p in mj["info"]["from"]]
    mj["info"]["fitted_on"] = {
        "dataset": _manifest_facts(w / "foreign-s2200-n60"),
        "clips": f"first {a.qc_clips} of 120 (40 clean + their 40 degraded copies: noise, blur, low contrast, "
                 "dropouts, LV cropped out, sideways, no heart)",
        "made_by": cmds[:2], "eval": shown(evals["cal"]), "calibrate": shown(argv),
        "record": f"docs/results/{datetime.now(timezone.utc):%Y-%m-%d}-qc/record.json (held-out report set: foreign seed 2300)",
        "tracked_by": f"TAN weights {str(cal.get('weights_sha256') or cal.get('model_hash') or '?')[:12]}, "
                      f"{a.backend} {cal.get('precision') or 'fp32'}"}
    (w / "qc_model.json").write_text(json.dumps(mj, indent=1))
    model = qcm.load_model(w / "qc_model.json")
    result = {"qc_model": model.to_dict(), "load_before": load0, "load_after": os.getloadavg(),
              "tracking_model": json.loads((w / "cal-eval.json").read_text())["model"]}
    for part in evals:
        rows = json.loads((w / f"{part}-eval.json").read_text())["clips"]
        for r in rows:   # score every clip with the calibrated model, from its recorded features
            f = {k: (float("nan") if v is None else v) for k, v in r["qc"]["components"].items()}
            r["qc"]["score"] = model.score(f)
            r["qc"]["reliable"] = r["qc"]["score"] >= model.threshold and r["ef_pred"] is not None
        clean = [r for r in rows if "__" not in r["name"]]
        result[part] = {"summary": summarise(rows), "summary_clean_only": summarise(clean),
                        "clips": [{"name": r["name"], "variant": r["name"].partition("__")[2] or "clean",
                                   "frames": r["frames"], "ef_report": r["ef_report"], "ef_pred": r["ef_pred"],
                                   "ef_err": r["ef_err"], "ed_err": r["ed_err"], "es_err": r["es_err"],
                                   "qc_score": round(r["qc"]["score"], 4), "reliable": r["qc"]["reliable"],
                                   "components": r["qc"]["components"]} for r in rows]}
    write_record("qc", cmds, result, wall, 0, files={"qc_model.json": w / "qc_model.json"})


def step_ood(a) -> None:
    """Out-of-domain gate (issue 25): final test + foreign phantom, degraded copies, the real dev set."""
    ph, c1, w1 = synth_set(a.work, a.eval_n)
    fo, c2, w2 = synth_set(a.work, a.eval_n, "foreign")
    # degraded copies of another phantom seed (qc_standin refuses the final test seed, kept for figures):
    # each of 7 source clips gets one copy of each kind the issue names (noise, blank: the probe off the
    # patient, a cropped LV, a wrong (sideways, non-apical) view), and one copy of each milder kind (blur,
    # low contrast, moving dropouts, a texture with no heart), reported apart
    src, c3, w3 = synth_set(a.work, 7, None, 2400, "ood-phantom-s2400-n7")
    cmds, wall = c1 + c2 + c3, w1 + w2 + w3
    degs = {}
    for name, kinds in (("degraded", "noise,blank,crop,sideways"), ("degraded_other", "blur,lowcontrast,dropout,texture")):
        degs[name] = a.work / f"ood-{name.replace('_', '-')}-s2400-n7"
        argv = [sys.executable, "scripts/qc_standin.py", src, degs[name], "--seed", "2400", "--variants", kinds,
                "--every-variant"]
        if not (degs[name] / "standin.json").is_file():
            wall += run(argv)[1]
        cmds.append(shown(argv))
    real = Path.home() / ".cache" / "edge-tan-real-dev"
    if not (real / "FileList.csv").is_file():
        print(f"ood: the real development set is absent ({real}): its row is skipped", flush=True)
    js = a.work / "ood.json"
    # every clip of each set; every 8th real clip; a noise burst in every final-test phantom clip and 24
    # real development clips (the issue's own test is on real clips; 6 and 12 before: too few to read a
    # median or a share from, and the burst falls on a short clip's only ED or ES often); parts side by side
    argv = [sys.executable, "scripts/ood_measure.py", "--set", f"phantom={ph}", "--set", f"foreign={fo}",
            "--set", f"degraded={degs['degraded']}", "--set", f"degraded_other={degs['degraded_other']}",
            "--real", real, "--real-every", "8", "--burst-clips", str(a.eval_n), "--burst-real", "24",
            "--backend", a.backend, "--jobs", "6", "--json", js]
    wall += run(argv)[1]
    write_record("ood", cmds + [shown(argv)], json.loads(js.read_text()), wall, 0)


def step_bench(a) -> None:
    out = a.work / "bench"
    argv = ET + ["bench", "--out", out] + shlex.split(a.bench_args)
    code, wall = run(argv, ok_codes=(0, 1))
    result = json.loads((out / "bench.json").read_text())
    files = {"bench.png": out / "bench.png"} if (out / "bench.png").is_file() else {}
    write_record("bench", [shown(argv)], result, wall, code, machine=result.get("machine"), files=files)


def step_speed(a) -> None:
    out = a.work / "speed"
    argv = ET + ["bench", "--models", "tan", "--backends", "openvino", "--precisions", "fp32,bf16,int8",
                 "--out", out] + shlex.split(a.speed_args)
    code, wall = run(argv, ok_codes=(0, 1))
    result = json.loads((out / "bench.json").read_text())
    js = a.work / "speed-parity.json"
    argv2 = ET + ["parity", "--backends", "torch,openvino", "--precision", "fp32,bf16,int8", "--json", js]
    code2, wall2 = run(argv2, ok_codes=(0, 1))     # a failing precision is a result to record
    result["parity"] = json.loads(js.read_text())
    write_record("speed", [shown(argv), shown(argv2)], result, wall + wall2, code or code2,
                 machine=result.get("machine"))


def step_ov_settings(a) -> None:
    """Issue 23: OpenVINO CPU settings at batch 1 (bench/ov_settings.py) on the shipped model's fp32 and INT8
    IR, the phantom final-test clip bench uses (A4C, 112 px), 3 interleaved rounds; load before and after."""
    import os

    from edge_tan.bench.machine import machine_info
    from edge_tan.bench.ov_settings import sweep
    from edge_tan.targets.opener import open_model
    calib, cmds, wall = synth_set(a.work, 8, None, 2500, "calib-phantom-s2500-n8")
    frames = list(final_clip())
    load = {"before": os.getloadavg()}
    t = time.perf_counter()
    result = {"clip": f"phantom A4C 112x112, 60 frames (seed {FINAL_TEST_SEED})", "precisions": {}}
    for prec in ("fp32", "int8"):
        runner = open_model(a.weights, "openvino", prec, calib=calib if prec == "int8" else None)
        ir = Path(runner.origin.path)
        runner.close()
        result["precisions"][prec] = {"artifact": ir.parent.name,
                                      "rows": sweep(ir, frames, progress=lambda m: print("  " + prec + " " + m, flush=True))}
    load["after"] = os.getloadavg()
    result["load"] = load
    cmds.append("python scripts/record_runs.py --only ov-settings  (in-process: bench/ov_settings.sweep on the "
                "fp32 and int8 IR)")
    write_record("ov-settings", cmds, result, wall + time.perf_counter() - t, 0, machine=machine_info())


def step_parity(a) -> None:
    data, cmds, w0 = synth_set(a.work, a.eval_n)
    js = a.work / "parity.json"
    argv = ET + ["parity", data, "--limit", str(a.parity_clips), "--backends", a.parity_backends,
                 "--precision", a.parity_precisions, "--json", js]
    code, w1 = run(argv, ok_codes=(0, 1))     # a failing backend is a result to record, not a crash
    result = json.loads(js.read_text())
    result["final_test_seed"], result["dataset"] = FINAL_TEST_SEED, _manifest_facts(data)
    write_record("parity", cmds + [shown(argv)], result, w0 + w1, code, machine=result.get("machine"))


def step_model(a) -> None:
    from edge_tan.runtime.defaults import default_weights_path
    from edge_tan.export.weights import read_header
    path = Path(a.weights) if a.weights else default_weights_path()
    t = time.perf_counter()
    head = read_header(path)
    meta = {k.split(".", 1)[1]: _maybe_json(v) for k, v in head.items() if k.startswith("edge_tan.")}
    training = meta.pop("training", {}) or {}
    result = {"file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
              "file_mb": round(path.stat().st_size / 1e6, 2),
              "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
              "metadata": {k: meta.get(k) for k in ("model_name", "model_version", "weights_sha256", "arch",
                                                    "window", "warp_mode", "trained")},
              "training": training}
    cmd = shown([sys.executable, "scripts/record_runs.py", "--only", "model"] + (["--weights", a.weights] if a.weights else []))
    write_record("model", [cmd], result, time.perf_counter() - t, 0)


def _maybe_json(v: str):
    try:
        return json.loads(v)
    except (TypeError, ValueError):
        return v


def step_gpu_check(a) -> None:
    if not machine_info().get("gpus"):
        print("skip gpu-check: nvidia-smi sees no GPU on this machine", flush=True)
        return
    out = a.work / "gpu"
    argv = [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--weights", "default", "--out", out]
    code, wall = run(argv)
    result = json.loads((out / "gpu_check.json").read_text())
    write_record("gpu-check", [shown(argv)], result, wall, code, machine=result.get("machine"))


def step_adapt(a) -> None:
    """Site adaptation stand-in (issue 12): the foreign phantom family plays "the site". The shipped
    model, BatchNorm re-estimation only (`adapt --phases bn`) and `adapt` with its default phases
    (bn,self), and with the opt-in phantom fine-tune (bn,phantom,self) under the same budget, are
    evaluated on the same held-back clips; adaptation uses other, unlabelled clips. The default phases
    were chosen on seeds 2000 (adapt) / 2100 (test), so the record is made on fresh seeds
    (`--adapt-seeds`, default 7000,7100) that no design choice has looked at (issue 21 item 10)."""
    import os
    import shutil
    from edge_tan.runtime.defaults import default_weights_path
    w, cmds, wall = a.work / "adapt", [], 0.0
    load = {"before": os.getloadavg()}
    sets = {}
    seed_adapt, seed_test = (int(x) for x in a.adapt_seeds.split(","))
    for part, seed, n in (("adapt", seed_adapt, 30), ("test", seed_test, 16)):
        src, shown_, secs = synth_set(w, n, "foreign", seed, f"foreign-s{seed}-n{n}")
        cmds += shown_
        wall += secs
        sets[part] = src
    result = {"datasets": {k: _manifest_facts(v) for k, v in sets.items()}, "evals": {}, "adaptation": {}}
    weights = {"shipped": None}
    for name, opts in (("bn_only", ["--phases", "bn", "--minutes", str(a.adapt_bn_minutes)]),
                       ("bn_self", ["--minutes", str(a.adapt_minutes)]),      # the default phases
                       ("bn_phantom_self", ["--phases", "bn,phantom,self", "--minutes", str(a.adapt_minutes)])):
        out = w / f"{name}.safetensors"
        shutil.rmtree(w / f"{name}.work", ignore_errors=True)   # a fresh run: its time is the record's
        argv = ET + ["adapt", default_weights_path(), sets["adapt"], "--out", out, "--work", w / f"{name}.work",
                     "--max-frames", "32", "--threads", "1", "--seed", "0"] + opts
        t = run(argv)[1]
        wall += t
        cmds.append(shown(argv))
        weights[name] = out
        result["adaptation"][name] = {"wall_s": round(t, 1), **adaptation_of(out)}
    load["after_adapt"] = os.getloadavg()
    for name, wt in weights.items():
        js = w / f"eval-{name}.json"
        argv = ET + ["eval", sets["test"], "--split", "all", "--backend", a.backend, "--json", js] + \
            (["--model", wt] if wt else [])
        wall += run(argv)[1]
        cmds.append(shown(argv))
        result["evals"][name] = json.loads(js.read_text())
    load["after"] = os.getloadavg()
    result["load"] = load
    write_record("adapt", cmds, result, wall, 0)


def real_dev_summary(js: Path, block: str = "") -> dict:
    """What a real-dev record keeps of an `eval --reports` JSON: aggregates only (no clip names, no
    per-clip rows: the clips may not be redistributed), plus the constant-answer baselines. block:
    "frame_by_frame" for that run of an `eval --frame-by-frame` (same clips, scored the same way)."""
    import numpy as np
    full = json.loads(js.read_text())
    if block:
        full = {**full, **full[block]}
    clips = full["clips"]
    ref = np.array([c["ef_report"] for c in clips], float)
    fac_ref = np.array([c["fac_ref"] for c in clips if c.get("fac_ref") is not None], float)
    return {"summary": full["summary"], "model": full["model"], "backend": full["backend"],
            "qc_model": {k: full["qc_model"].get(k) for k in ("threshold",)},
            "clips": len(clips), "unreadable": len(full["unreadable"]),
            "baselines": {"ef_constant_60_mae": float(np.mean(np.abs(ref - 60.0))),
                          "fac_constant_median_mae": float(np.mean(np.abs(fac_ref - np.median(fac_ref))) * 100)
                          if len(fac_ref) else None},
            "reference_ef": {"mean": float(ref.mean()), "sd": float(ref.std(ddof=1)) if len(ref) > 1 else None}}


def real_eval(a, model: Path, d: Path, js: Path, extra: tuple = ()) -> tuple[float, str, dict]:
    """`edge-tan eval` of one real-dev part (its clips, reports and tracings) into js: (wall s, the command
    as shown, the aggregate summary a record keeps). extra: more eval options (e.g. --frame-by-frame)."""
    argv = ET + ["eval", d / "videos", "--reports", d / "FileList.csv", "--tracings", d / "traced.csv",
                 "--backend", a.real_dev_backend, "--model", model, *extra, "--json", js]
    t = run(argv)[1]
    return t, shown(argv), real_dev_summary(js)


def adaptation_of(weights: Path) -> dict:
    """What `edge-tan adapt` wrote into its weights' header: clips, phases, budget (never an image)."""
    from edge_tan.export.weights import read_header
    return json.loads(read_header(weights)["edge_tan.training"])["adaptation"]


def step_real_dev(a) -> None:
    """The shipped model (or --weights) on the real development and final-test parts, then `adapt` on
    the development part evaluated on both: the only real-echo evidence this project has."""
    from edge_tan.bench import real_dev
    if not real_dev.present():
        print(f"skip real-dev: the real development set is not on this machine ({real_dev.DEFAULT_ROOT}); build it "
              "with `python ../shared/tools/real_dev_set.py --mirror DIR` (README, 'Real echo')", flush=True)
        return
    from edge_tan.runtime.defaults import default_weights_path
    import shutil
    w = a.work / "real-dev"
    w.mkdir(parents=True, exist_ok=True)
    parts = {p: real_dev.split_folder(p) for p in real_dev.PARTS}
    weights = Path(a.weights) if a.weights else default_weights_path()
    cmds, wall, result = [], 0.0, {"split": {"final_n": real_dev.FINAL_N, "rule": "lowest sha256(name) = final"},
                                   "weights": str(weights.name), "evals": {}}

    def evaluate(tag: str, model: Path, part: str) -> None:
        nonlocal wall
        t, cmd, result["evals"][f"{tag}/{part}"] = real_eval(a, model, parts[part], w / f"{tag}-{part}.json")
        wall += t
        cmds.append(cmd)

    for part in real_dev.PARTS:
        evaluate("shipped", weights, part)
    def adapt(tag: str, extra: list) -> None:
        nonlocal wall
        out = w / f"{tag}.safetensors"
        shutil.rmtree(w / f"{tag}.work", ignore_errors=True)
        argv = ET + ["adapt", weights, parts["dev"] / "videos", "--out", out, "--work", w / f"{tag}.work",
                     "--minutes", str(a.real_dev_adapt_minutes)] + extra
        t = run(argv)[1]
        wall += t
        cmds.append(shown(argv))
        ad = adaptation_of(out)
        result["adaptation" if tag == "adapted" else f"adaptation_{tag}"] = {
            "wall_s": round(t, 1), "used_s": ad["used_s"], "plan": ad["plan"], "clips_used": ad["clips"]["used"],
            "phases": ad["phases"]}
        for part in real_dev.PARTS:
            evaluate(tag, out, part)

    if a.real_dev_adapt_minutes > 0:
        adapt("adapted", [])   # the command as a user first runs it: no tracings, no view given
        # a site that keeps its ED/ES tracings (every echo lab does) gives them too: the development
        # part's traced areas become labels; its final part is then the only held-out figure. The
        # tracings are of apical four-chamber views (how the set was built), so that site knows its
        # view too: --view says so to the pseudo-labels and the view-head re-fit
        if a.real_dev_traced and (parts["dev"] / "traced.csv").is_file():
            adapt("traced", ["--tracings", parts["dev"] / "traced.csv", "--view", "A4C"])
    write_record("real-dev", cmds, result, wall, 0)


def step_real_no_warp(a) -> None:
    """The paper's Table 2 ablation on real echo: the shipped model (or --weights) on both real parts,
    tracked as shipped (the warp on the last landmarks) and frame by frame (the whole frame each time,
    no state), by one `eval --reports --frame-by-frame` per part."""
    from edge_tan.bench import real_dev
    if not real_dev.present():
        print(f"skip real-no-warp: the real development set is not on this machine ({real_dev.DEFAULT_ROOT})", flush=True)
        return
    from edge_tan.runtime.defaults import default_weights_path
    w = a.work / "real-no-warp"
    w.mkdir(parents=True, exist_ok=True)
    weights = Path(a.weights) if a.weights else default_weights_path()
    cmds, wall, result = [], 0.0, {"weights": str(weights.name), "evals": {}}
    for part in real_dev.PARTS:
        js = w / f"{part}.json"
        t, cmd, result["evals"][f"warp/{part}"] = real_eval(a, weights, real_dev.split_folder(part), js,
                                                            ("--frame-by-frame",))
        wall += t
        cmds.append(cmd)
        result["evals"][f"frame-by-frame/{part}"] = real_dev_summary(js, "frame_by_frame")
    write_record("real-no-warp", cmds, result, wall, 0)


def step_real_adapt_seeds(a) -> None:
    """How much the plain `adapt` rows of the real-dev record owe to chance: the same command (no view,
    no tracings, the same budget) with other seeds (--real-adapt-seeds), each evaluated on both parts.
    Seed 0 is the real-dev record's own row."""
    from edge_tan.bench import real_dev
    if not real_dev.present():
        print(f"skip real-adapt-seeds: the real development set is not on this machine ({real_dev.DEFAULT_ROOT})",
              flush=True)
        return
    from edge_tan.runtime.defaults import default_weights_path
    import shutil
    w = a.work / "real-adapt-seeds"
    w.mkdir(parents=True, exist_ok=True)
    parts = {p: real_dev.split_folder(p) for p in real_dev.PARTS}
    weights = Path(a.weights) if a.weights else default_weights_path()
    cmds, wall, result = [], 0.0, {"weights": str(weights.name), "budget_min": a.real_dev_adapt_minutes, "seeds": {}}
    for seed in [int(x) for x in a.real_adapt_seeds.split(",") if x.strip()]:
        out, work = w / f"seed{seed}.safetensors", w / f"seed{seed}.work"
        shutil.rmtree(work, ignore_errors=True)
        argv = ET + ["adapt", weights, parts["dev"] / "videos", "--out", out, "--work", work,
                     "--minutes", str(a.real_dev_adapt_minutes), "--seed", str(seed)]
        t = run(argv)[1]
        wall += t
        cmds.append(shown(argv))
        ad = adaptation_of(out)
        row = {"adaptation": {"wall_s": round(t, 1), "used_s": ad["used_s"], "plan": ad["plan"],
                              "clips_used": ad["clips"]["used"],
                              "self_steps": (ad["phases"].get("self") or {}).get("steps")}, "evals": {}}
        for part in real_dev.PARTS:
            t, cmd, row["evals"][part] = real_eval(a, out, parts[part], w / f"seed{seed}-{part}.json")
            wall += t
            cmds.append(cmd)
        result["seeds"][str(seed)] = row
    write_record("real-adapt-seeds", cmds, result, wall, 0)


def step_real_adapt_reach(a) -> None:
    """Issue 24's reach target: `edge-tan adapt` with its default budget on all 103 real clips (both parts),
    recording only how far each phase got (clips tracked, labelled, minutes). Nothing is evaluated: the
    adapted weights are thrown away, so the final part still chooses and scores nothing adapted on it."""
    from edge_tan.bench import real_dev
    if not real_dev.present():
        print(f"skip real-adapt-reach: the real development set is not on this machine ({real_dev.DEFAULT_ROOT})",
              flush=True)
        return
    from edge_tan.runtime.defaults import default_weights_path
    import shutil
    w = a.work / "real-adapt-reach"
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    weights = Path(a.weights) if a.weights else default_weights_path()
    out = w / "adapted.safetensors"
    argv = ET + ["adapt", weights, real_dev.DEFAULT_ROOT / "videos", "--out", out, "--work", w / "adapted.work",
                 "--view", "A4C"]
    t = run(argv)[1]
    ad = adaptation_of(out)
    ph = ad["phases"]
    result = {"clips_given": len(list((real_dev.DEFAULT_ROOT / "videos").glob("*.avi"))),
              "clips_used": ad["clips"]["used"], "clips_skipped": ad["clips"]["skipped"],
              "frames_read": ad["clips"]["frames_read"], "budget_min": ad["budget_min"], "used_s": ad["used_s"],
              "wall_s": round(t, 1),
              "plan": ad["plan"],
              "reach": {"look_clips_tracked": ph.get("look", {}).get("clips_tracked"),
                        "label_clips_with_labels": ph.get("label", {}).get("clips_with_labels"),
                        "label_frames_kept": ph.get("label", {}).get("frames_kept"),
                        "self_steps": ph.get("self", {}).get("steps"),
                        "final_clips_tracked": ph.get("final", {}).get("clips_tracked")},
              "phase_wall_s": {k: v.get("wall_s") for k, v in ph.items()},
              "evaluated": "nothing (the weights are discarded; the final part stays unscored by them)"}
    out.unlink(missing_ok=True)   # discarded with its work folder (pseudo-labels of real frames): nothing stays
    shutil.rmtree(w / "adapted.work", ignore_errors=True)
    write_record("real-adapt-reach", [shown(argv)], result, t, 0)


def run_captured(argv: list) -> tuple[str, float]:
    """Run one command in the checkout, print and return its stdout; (stdout, wall seconds)."""
    print("$ " + shown(argv), flush=True)
    t = time.perf_counter()
    r = subprocess.run([str(a) for a in argv], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    print(r.stdout, end="", flush=True)
    print(r.stderr, end="", file=sys.stderr, flush=True)
    if r.returncode != 0:
        raise SystemExit(f"record_runs: `{shown(argv)}` exited {r.returncode}; no record written")
    return r.stdout, wall


def parse_echo_profile(text: str) -> list[dict]:
    """echo_profile.py's table (it has no JSON output): `name  real p10 median p90  this p10 median p90
    [<- outside]` per statistic; its header and any `skip ...` lines are left out."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 7 or parts[0] in ("statistic", "skip"):
            continue
        try:
            vals = [float(x) for x in parts[1:7]]
        except ValueError:
            continue
        rows.append({"statistic": parts[0], **dict(zip(("real_p10", "real_median", "real_p90", "this_p10",
                                                         "this_median", "this_p90"), vals)),
                     "outside": "<- outside" in line})
    return rows


REALISM = re.compile(r"realism distance of .* \((\d+) frames, (\d+) clips\): ([-\d.einfa]+)\s+"
                     r"\(real vs real, two halves: ([-\d.einfa]+);")


def parse_realism(text: str) -> dict | None:
    """realism_distance.py's one line: distance, frames and clips used, and the real-vs-real floor."""
    m = REALISM.search(text)
    if not m:
        return None
    return {"distance": float(m.group(3)), "frames": int(m.group(1)), "clips": int(m.group(2)),
            "real_vs_real_half_split": float(m.group(4))}


def step_profile(a) -> None:
    """The default training family beside real echo (issue 11): echo_profile.py's statistics and, where
    the tool is there, realism_distance.py's Fréchet distance, on 20 phantom clips (seed 5000)."""
    tool, realism = SHARED / "tools" / "echo_profile.py", SHARED / "tools" / "realism_distance.py"
    if not tool.is_file():
        print(f"skip profile: {shown([tool])} is not there", flush=True)
        return
    data, cmds, wall = synth_set(a.work, 20, None, 5000, "profile-default-s5000-n20")
    argv = [sys.executable, tool, data]
    text, w = run_captured(argv)
    wall += w
    cmds.append(shown(argv))
    rows = parse_echo_profile(text)
    if not rows:
        raise SystemExit("record_runs: no statistics in echo_profile.py's output; no record written")
    result = {"dataset": _manifest_facts(data), "reference": "../shared/notes/real-echo-profile.json",
              "rows": rows, "outside": [r["statistic"] for r in rows if r["outside"]],
              "profile_output": text.splitlines(), "realism": None}
    if realism.is_file():
        argv = [sys.executable, realism, data]
        text, w = run_captured(argv)
        wall += w
        cmds.append(shown(argv))
        result["realism"] = parse_realism(text)
        result["realism_output"] = text.strip()
        if result["realism"] is None:
            raise SystemExit("record_runs: no distance in realism_distance.py's output; no record written")
    else:
        print(f"profile: {shown([realism])} is not there; recorded without a realism distance", flush=True)
    write_record("profile", cmds, result, wall, 0)


def step_native_parity(a) -> None:
    """Issue 22's parity record: the native tracker against the Python tracker on the same OpenVINO IR and
    frames, per frame (bench/native_row.compare_native, the limits tests/test_native.py asserts), on phantom
    clips at 112, 224 and 600x800 px (final-test seed, A4C) and the GDCM ultrasound DICOM fixture, FP32,
    INT8 (NNCF, calibrated on a separate phantom set) and, where the CPU has BF16, bf16."""
    import numpy as np
    from edge_tan.bench.native_row import (MAX_EF_POINTS, MAX_LM_PX, MIN_DICE, SAME_STATE, find_cli,
                                           native_vs_python, unavailable_reason)
    from edge_tan.io.read import read_video
    from edge_tan.targets.opener import open_model
    cmds, wall = [], 0.0
    cli = find_cli()
    if cli is None:
        raise SystemExit(f"record_runs: {unavailable_reason()}")
    calib, shown_, secs = synth_set(a.work, 8, None, 2500, "calib-phantom-s2500-n8")
    cmds += shown_
    wall += secs
    dcm = SHARED / "fixtures" / "US-PAL-8-10x-echo.dcm"
    clips = {f"phantom {h}x{w}": lambda h=h, w=w, n=n: final_clip(h, w, n)
             for h, w, n in ((112, 112, 60), (224, 224, 60), (600, 800, 30))}
    if dcm.is_file():
        clips["DICOM fixture (GDCM US-PAL-8-10x-echo)"] = lambda: np.asarray(read_video(dcm).frames)
    rows = []
    t0 = time.perf_counter()
    from edge_tan.targets.openvino import bf16_support
    precs = ("fp32", "int8") + (("bf16",) if bf16_support()[0] else ())   # bf16 where this CPU runs it
    for prec in precs:
        runner = open_model(a.weights, "openvino", prec, calib=calib if prec == "int8" else None)
        try:
            for name, load in clips.items():
                frames = load()
                c = native_vs_python(cli, runner, frames)
                rows.append({"clip": name, "size": list(frames.shape[1:]), "precision": prec,
                             "artifact": Path(runner.origin.path).parent.name, **c})
                print(f"  {prec} {name}: {'pass' if c['passed'] else 'FAIL'} lm {c['landmarks_max_px']:.4f} px "
                      f"Dice {c['dice_min']:.4f} dEF {c['ef_gap']}", flush=True)
        finally:
            runner.close()
    wall += time.perf_counter() - t0
    cmds.append("python scripts/record_runs.py --only native-parity  (in-process: Tracker vs " + shown([str(cli)]) +
                " track CLIP.npy --model IR --json R.json --masks M.npy per clip and precision)")
    limits = {"same_state_min": SAME_STATE, "landmarks_max_px": MAX_LM_PX, "dice_min": MIN_DICE,
              "ef_gap_max": MAX_EF_POINTS}
    write_record("native-parity", cmds, {"limits": limits, "rows": rows, "passed": all(r["passed"] for r in rows),
                                         "cli": str(cli), "calibration": str(calib.name)}, wall, 0)


def step_soak(a) -> None:
    """Issue 22: N frames through one native tracker (libedgetan via edgetan-soak, no Python in the process),
    resident memory sampled every SOAK_EVERY frames. Flat = the growth after warm-up stays under a page
    or two per 10,000 frames, not a per-frame leak."""
    import numpy as np
    soak = ROOT / "native" / "build" / "edgetan-soak"
    cmds = []
    if not soak.is_file():
        argv = ["bash", "native/build.sh", "native/build"]
        run(argv)
        cmds.append(shown(argv))
    from edge_tan.targets.opener import open_model
    frames = final_clip()
    raw = a.work / "soak-112.raw"
    raw.write_bytes(np.ascontiguousarray(frames).tobytes())
    runner = open_model(a.weights, "openvino", "fp32")   # builds (or reuses) the cached IR of these weights
    ir = Path(runner.origin.path)
    runner.close()
    argv = [soak, ir, raw, "112", "112", str(a.soak_frames), str(SOAK_EVERY)]
    print("$ " + shown([str(x) for x in argv]), flush=True)
    t = time.perf_counter()
    proc = subprocess.run([str(x) for x in argv], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"record_runs: edgetan-soak exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    series = [(int(m.group(1)), int(m.group(2))) for m in re.finditer(r"frames (\d+) rss_kib (\d+)", proc.stdout)]
    st = re.search(r"states detect (\d+) track (\d+) redetect (\d+) lost (\d+)", proc.stdout)
    warm = [r for f, r in series if f >= SOAK_WARMUP]
    growth = warm[-1] - warm[0] if len(warm) > 1 else None
    span = series[-1][0] - SOAK_WARMUP
    result = {"frames": a.soak_frames, "clip": f"phantom A4C 112x112, 60 frames (seed {FINAL_TEST_SEED}), cycled",
              "artifact": f"{ir.name} (OpenVINO IR fp32 of the weights in this record)",
              "rss_kib": [{"frames": f, "rss_kib": r} for f, r in series],
              "rss_first_kib": series[0][1], "rss_after_warmup_kib": warm[0] if warm else None,
              "rss_last_kib": series[-1][1], "rss_max_after_warmup_kib": max(warm) if warm else None,
              "growth_after_warmup_kib": growth, "warmup_frames": SOAK_WARMUP,
              "growth_kib_per_10k_frames": round(growth / span * 1e4, 2) if growth is not None and span > 0 else None,
              "flat": bool(growth is not None and growth <= SOAK_FLAT_KIB),
              "flat_rule_kib": SOAK_FLAT_KIB,
              "states": dict(zip(("detect", "track", "redetect", "lost"), map(int, st.groups()))) if st else None,
              "fps": round(a.soak_frames / wall, 1)}
    write_record("soak", cmds + [shown([str(x) for x in argv])], result, wall, proc.returncode)


def import_record(spec: str, command: str | None, machine_json: str | None = None) -> None:
    """A result made on another machine (e.g. the GPU recipe's baseline evals as eval-unet /
    eval-pspnet): its machine description must come with it, in the JSON ('machine' key, as
    gpu_check.json has) or in --import-machine (a JSON of bench.machine.machine_info() taken there)."""
    what, _, path = spec.partition("=")
    if not what or not path or not command:
        raise SystemExit("record_runs: --import needs WHAT=FILE.json and --import-command \"the exact command\"")
    result = json.loads(Path(path).read_text())
    machine = result.get("machine") if isinstance(result, dict) else None
    if machine_json:
        machine = json.loads(Path(machine_json).read_text())
    if not machine or not machine.get("cpu"):
        raise SystemExit(f"record_runs: {path} has no 'machine' description (give --import-machine); a figure "
                         "without its machine cannot be recorded")
    write_record(what, [command], result, 0.0, 0, machine=machine)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(STEPS), help=f"comma list of {', '.join(STEPS)}")
    ap.add_argument("--work", type=Path, default=ROOT / "record-work", help="scratch data (regenerable)")
    ap.add_argument("--eval-n", type=int, default=20, help="sequences in the final test set")
    ap.add_argument("--backend", default="onnxruntime", help="backend for the evals")
    ap.add_argument("--parity-clips", type=int, default=2)
    ap.add_argument("--parity-backends", default="torch,onnxruntime,openvino,tensorrt,native")
    ap.add_argument("--parity-precisions", default="fp32,fp16,bf16,int8")
    ap.add_argument("--qc-clips", type=int, default=80, help="clips per QC set (clean + degraded pairs)")
    ap.add_argument("--bench-args", default="", help="extra `edge-tan bench` options, recorded with the command")
    ap.add_argument("--speed-args", default="", help="extra `edge-tan bench` options of the speed step")
    ap.add_argument("--adapt-minutes", type=float, default=22.0, help="budget of the full `adapt` run")
    ap.add_argument("--adapt-seeds", default="7000,7100",
                    help="foreign-family seeds of the stand-in site: adapt clips, held-back test clips (fresh: "
                         "the default phases were chosen on 2000,2100)")
    ap.add_argument("--adapt-bn-minutes", type=float, default=5.0, help="budget of the BatchNorm-only run")
    ap.add_argument("--weights", default=None, help="weights for the model and real-dev records (default: the "
                    "shipped model)")
    ap.add_argument("--real-dev-backend", default="openvino", help="backend for the real-dev evals")
    ap.add_argument("--real-dev-traced", type=int, default=1, help="real-dev: also adapt with the development "
                    "part's traced areas (adapt --tracings); 0: only the unlabelled adaptation")
    ap.add_argument("--real-adapt-seeds", default="1,2", help="real-adapt-seeds: the seeds to adapt with besides "
                    "the real-dev record's 0")
    ap.add_argument("--real-dev-adapt-minutes", type=float, default=30.0,
                    help="`adapt` budget on the real development clips (0: no adaptation)")
    ap.add_argument("--soak-frames", type=int, default=100_000, help="frames pushed through one native tracker")
    ap.add_argument("--import", dest="imports", action="append", default=[], metavar="WHAT=FILE")
    ap.add_argument("--import-command", default=None, help="the exact command that made the imported JSON")
    ap.add_argument("--import-machine", default=None, help="JSON of machine_info() from the machine it ran on")
    a = ap.parse_args(argv)
    if a.imports:
        for spec in a.imports:
            import_record(spec, a.import_command, a.import_machine)
        return 0
    steps = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in steps if s not in STEPS]
    if bad or a.eval_n < 1 or a.parity_clips < 1:
        raise SystemExit(f"record_runs: unknown step(s) {bad} (choose from {', '.join(STEPS)}) or a count < 1")
    a.work = a.work.resolve()
    a.work.mkdir(parents=True, exist_ok=True)
    todo = {"bench": step_bench, "speed": step_speed, "eval-phantom": lambda x: step_eval(x, None),
            "eval-foreign": lambda x: step_eval(x, "foreign"), "parity": step_parity, "model": step_model,
            "gpu-check": step_gpu_check, "qc": step_qc, "adapt": step_adapt, "profile": step_profile,
            "real-dev": step_real_dev, "real-no-warp": step_real_no_warp, "real-adapt-reach": step_real_adapt_reach,
            "real-adapt-seeds": step_real_adapt_seeds, "ood": step_ood, "soak": step_soak,
            "native-parity": step_native_parity, "ov-settings": step_ov_settings}
    for s in steps:
        todo[s](a)
    print("now: python scripts/render_docs.py   (README and model card tables from these records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

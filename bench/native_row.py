"""The `native` column of `edge-tan parity` (issue 22): the C++ tracker (libedgetan through its CLI,
`edge-tan-native track`) run on the same clips and the same OpenVINO IR as the openvino row, judged
closed-loop against the torch reference with that precision's tolerances.

The native runtime is a whole tracker, not a network runner: it has no open-loop pass to feed the
reference's windows to, so the open-loop checks read "not measurable" and only the closed loop (states,
masks, landmarks, ED/ES, EF) is judged. Its per-frame JSON (the `edge-tan track --json` schema) and
masks become FrameResults so the Python comparison code judges both the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.tracker import FrameResult

from .latency import median_range

NATIVE = "native"
ENV = "EDGE_TAN_NATIVE"   # path of the edge-tan-native executable, when it is not on PATH or in native/build


def find_cli() -> Path | None:
    """edge-tan-native: $EDGE_TAN_NATIVE, then PATH, then the checkout's native/build."""
    cands = [os.environ.get(ENV), shutil.which("edge-tan-native"),
             str(Path(__file__).resolve().parents[1] / "native" / "build" / "edge-tan-native")]
    for c in cands:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


def unavailable_reason() -> str:
    return ("native runtime not built: `bash native/build.sh native/build` (the README's setup does it), "
            f"or set {ENV}")


def _results(data: dict, masks: np.ndarray) -> list[FrameResult]:
    out = []
    for r, m in zip(data["per_frame"], masks):
        lm = r.get("landmarks")
        fr = FrameResult(index=int(r["index"]), frame_hw=tuple(m.shape), state=r["state"],
                         landmarks=None if lm is None else np.asarray(lm, np.float32),
                         view=r.get("view") or "", view_prob=float(r["view_prob"]) if r.get("view_prob") is not None else float("nan"),
                         view_frame=r.get("view_frame") or "", confidence=float(r.get("confidence") or 0.0),   # null (NaN) reads as no confidence
                         reason=r.get("reason") or "",
                         ood_score=float(r["ood_score"]) if r.get("ood_score") is not None else float("nan"))
        fr.mask_origin, fr.mask_crop = (0, 0), (m > 0).astype(np.uint8)
        out.append(fr)
    return out


def run_native(cli: Path, ir: Path, frames: np.ndarray, masks: bool,
               extra: list[str] | None = None) -> tuple[dict, np.ndarray | None]:
    """One `edge-tan-native track` run on (N, H, W) uint8 frames (extra: more CLI options): (its JSON,
    its masks or None)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 3:
        raise EdgeTanError(f"the native runtime here takes 8-bit grey frames, got {frames.dtype} {frames.shape}")
    with tempfile.TemporaryDirectory(prefix="edge-tan-native-") as d:
        clip, js, mk = Path(d) / "clip.npy", Path(d) / "r.json", Path(d) / "m.npy"
        np.save(clip, np.ascontiguousarray(frames))
        argv = [str(cli), "track", str(clip), "--model", str(ir), "--json", str(js)] + (["--masks", str(mk)] if masks else []) + list(extra or [])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise EdgeTanError(f"edge-tan-native exited {proc.returncode}: {last}")
        return json.loads(js.read_text()), (np.load(mk) if masks else None)


def track_native(cli: Path, ir: Path, frames: np.ndarray) -> list[FrameResult]:
    """Track one clip (N, H, W) uint8 with the native CLI on the IR `ir`; per-frame FrameResults."""
    data, masks = run_native(cli, ir, frames, masks=True)
    return _results(data, masks)


# network-alone calls the native speed row times after its clip (~1 s at INT8 on 2 cores)
NETWORK_RUNS = 300
# whole runs (clip, then network alone) the native speed row makes: one run's ratio moves by several
# hundredths with the machine (×0.85–×0.94 at INT8 on a 2-core VM), so the row keeps the median and range
REPEATS = 5


def native_e2e(ir: Path, frames: list, order: list[int], network_fps: float | None, repeats: int = REPEATS) -> dict:
    """Issue 22's speed check: the native tracker's end-to-end fps on the same IR, frame order and clip as
    the Python tracker's e2e timing (its CLI times each et_push: grey, window, network, unwarp, contour,
    gates; decoding excluded, as in the Python figure), beside the network's own fps from the same run.
    `repeats` whole runs: fps, ratios and stage times are their medians, `vs_own_network_range` the
    spread of the ratio, `runs` each run's figures."""
    cli = find_cli()
    if cli is None:
        return {"status": "unavailable", "reason": unavailable_reason()}
    clip = np.stack([np.asarray(frames[i]) for i in order])
    runs = []
    for _ in range(max(1, repeats)):
        try:
            data, _ = run_native(cli, ir, clip, masks=False, extra=["--time-network", str(NETWORK_RUNS)])
        except EdgeTanError as e:
            return {"status": "failed", "reason": str(e)}
        runs.append(_one_run(data))
    med = lambda k: _median([r[k] for r in runs])   # noqa: E731
    ratio, ratio_range = median_range(r["vs_own_network"] for r in runs)
    fps = med("fps")
    stages = {k: _median([r["stages_median_ms"].get(k) for r in runs]) for k in runs[0]["stages_median_ms"]}
    return {"status": "ok", "fps": fps, "median_ms": med("median_ms"), "p95_ms": med("p95_ms"),
            "frames": runs[0]["frames"], "repeats": len(runs), "stages_median_ms": stages,
            "vs_network": fps / network_fps if fps and network_fps else None,
            # the like-for-like base: this runtime's own network alone (et_time_network, back to back on
            # the last window, as the bench times the Python runner's), 1000 / mean ms
            "network": {"runs": NETWORK_RUNS, "fps": med("own_fps"), "median_ms": med("own_median_ms")},
            "vs_own_network": ratio, "vs_own_network_range": ratio_range,
            "runs": runs, "cli": str(cli)}


def _one_run(data: dict) -> dict:
    lat = [float(r["latency_ms"]) for r in data["per_frame"][2:]]   # the first frames warm the request up
    fps = 1000.0 / float(np.mean(lat)) if lat else None
    own = (data.get("timing") or {}).get("network") or {}
    return {"fps": fps, "median_ms": float(np.median(lat)) if lat else None,
            "p95_ms": float(np.percentile(lat, 95)) if lat else None, "frames": len(lat),
            "stages_median_ms": (data.get("timing") or {}).get("stages_median_ms") or {},
            "own_fps": own.get("fps"), "own_median_ms": own.get("median_ms"),
            "vs_own_network": fps / own["fps"] if fps and own.get("fps") else None}


def _median(v) -> float | None:
    return median_range(v)[0]


# issue 22's native-vs-Python parity: the same artifact and frames through both trackers
SAME_STATE, MAX_LM_PX, MIN_DICE, MAX_EF_POINTS = 0.99, 0.5, 0.995, 0.5


def native_vs_python(cli: Path, runner, frames: np.ndarray, fps: float = 30.0) -> dict:
    """The native tracker against the Python tracker on `runner`'s IR (the same artifact and frames):
    compare_native of the two runs."""
    from edge_tan.runtime.tracker import Tracker
    frames = np.asarray(frames)
    py = Tracker(runner).track(list(frames))
    data, masks = run_native(cli, Path(runner.origin.path), frames, masks=True)
    return compare_native(py, data, masks, fps)


def compare_native(py: list, data: dict, masks: np.ndarray, fps: float = 30.0) -> dict:
    """Per frame, a native run (its JSON and masks) against Python FrameResults of the same clip: share
    of frames in the same state, the largest landmark gap (frame px) on those, the smallest mask Dice
    (frames where either mask is non-empty), the out-of-domain score gaps, ED/ES and EF from each side's
    curves (clip_clinical), and `passed` against issue 22's limits."""
    import math

    from edge_tan.runtime.clinical import clip_clinical
    nat = data["per_frame"]
    if len(nat) != len(py):
        raise EdgeTanError(f"native tracked {len(nat)} frames, Python {len(py)}")
    same = [a.state == b["state"] for a, b in zip(py, nat)]
    lm = [float(np.abs(a.landmarks - np.asarray(b["landmarks"])).max()) for a, b, s in zip(py, nat, same)
          if s and a.landmarks is not None and b["landmarks"] is not None]
    dice = []
    for a, m in zip(py, masks):
        pa, pb = a.mask > 0, m > 0
        if pa.any() or pb.any():
            dice.append(2.0 * float((pa & pb).sum()) / float(pa.sum() + pb.sum()))
    # out-of-domain score: NaN (JSON null) on the same frames, else the gap
    ood = [abs(a.ood_score - b["ood_score"]) if np.isfinite(a.ood_score) and b["ood_score"] is not None
           else (0.0 if not np.isfinite(a.ood_score) and b["ood_score"] is None else math.inf)
           for a, b, s in zip(py, nat, same) if s]
    ref, got = clip_clinical(py, math.nan, fps), data["clinical"]
    ef_gap = None if ref["ef_percent"] is None or got.get("ef_percent") is None else \
        abs(float(got["ef_percent"]) - float(ref["ef_percent"]))
    out = {"frames": len(py), "same_state": float(np.mean(same)) if same else 1.0,
           "landmarks_max_px": max(lm, default=0.0), "dice_min": min(dice, default=1.0),
           "ood_max_gap": max(ood, default=0.0), "ood_median_gap": float(np.median(ood)) if ood else 0.0,
           "ed_es_same": (got["ed_frames"], got["es_frames"]) == (ref["ed_frames"], ref["es_frames"]),
           "ef_python": ref["ef_percent"], "ef_native": got.get("ef_percent"), "ef_gap": ef_gap,
           "mismatch": [(a.index, a.state, b["state"]) for a, b, s in zip(py, nat, same) if not s][:5]}
    out["passed"] = bool(out["same_state"] >= SAME_STATE and out["landmarks_max_px"] <= MAX_LM_PX
                         and out["dice_min"] >= MIN_DICE and out["ed_es_same"]
                         and (ef_gap is None or ef_gap <= MAX_EF_POINTS)
                         and (ref["ef_percent"] is None) == (got.get("ef_percent") is None))
    return out

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


def _run(cli: Path, ir: Path, frames: np.ndarray, masks: bool) -> tuple[dict, np.ndarray | None]:
    """One `edge-tan-native track` run on (N, H, W) uint8 frames: (its JSON, its masks or None)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 3:
        raise EdgeTanError(f"the native runtime here takes 8-bit grey frames, got {frames.dtype} {frames.shape}")
    with tempfile.TemporaryDirectory(prefix="edge-tan-native-") as d:
        clip, js, mk = Path(d) / "clip.npy", Path(d) / "r.json", Path(d) / "m.npy"
        np.save(clip, np.ascontiguousarray(frames))
        argv = [str(cli), "track", str(clip), "--model", str(ir), "--json", str(js)] + (["--masks", str(mk)] if masks else [])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise EdgeTanError(f"edge-tan-native exited {proc.returncode}: {last}")
        return json.loads(js.read_text()), (np.load(mk) if masks else None)


def track_native(cli: Path, ir: Path, frames: np.ndarray) -> list[FrameResult]:
    """Track one clip (N, H, W) uint8 with the native CLI on the IR `ir`; per-frame FrameResults."""
    data, masks = _run(cli, ir, frames, masks=True)
    return _results(data, masks)


def native_e2e(ir: Path, frames: list, order: list[int], network_fps: float | None) -> dict:
    """Issue 22's speed check: the native tracker's end-to-end fps on the same IR, frame order and clip as
    the Python tracker's e2e timing (its CLI times each et_push: grey, window, network, unwarp, contour,
    gates; decoding excluded, as in the Python figure), beside the network's own fps from the same row."""
    cli = find_cli()
    if cli is None:
        return {"status": "unavailable", "reason": unavailable_reason()}
    try:
        data, _ = _run(cli, ir, np.stack([np.asarray(frames[i]) for i in order]), masks=False)
    except EdgeTanError as e:
        return {"status": "failed", "reason": str(e)}
    lat = [float(r["latency_ms"]) for r in data["per_frame"][2:]]   # the first frames warm the request up
    fps = 1000.0 / float(np.mean(lat)) if lat else None
    return {"status": "ok", "fps": fps, "median_ms": float(np.median(lat)) if lat else None,
            "p95_ms": float(np.percentile(lat, 95)) if lat else None, "frames": len(lat),
            "stages_median_ms": (data.get("timing") or {}).get("stages_median_ms") or {},
            "vs_network": fps / network_fps if fps and network_fps else None, "cli": str(cli)}

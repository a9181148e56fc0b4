"""Issue 21 item 3: backends must not drift apart in closed loop on a real-like clip. A 112 px,
low-contrast phantom beat (EchoNet's frame size; grey levels squeezed toward the blood pool) tracked
by the shipped model on torch, ONNX Runtime and OpenVINO fp32: the closed loops must agree state
for state and stay within the fp32 parity tolerances (Dice, landmarks, ED/ES, EF).

Slow (builds the shipped model's ONNX and IR once into the artifact cache, then three backends).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest


def _has(m: str) -> bool:
    return importlib.util.find_spec(m) is not None


def real_like_clip(seed: int = 11, view: str = "A4C", n_frames: int = 30):
    """A phantom beat at 112 x 112 with the contrast of a poor real acquisition: in-sector grey
    levels pulled to 45 % of their spread around a dim floor (the sector outside stays black)."""
    from edge_tan.synth.render import generate_sequence
    s = generate_sequence(seed, view, n_frames=n_frames, out_size=(112, 112), quality=0.2)
    f = s.frames.astype(np.float32)
    s.frames = np.clip(np.where(f > 0, 30 + 0.45 * (f - 30), 0), 0, 255).astype(np.uint8)
    return s


@pytest.mark.slow
def test_backends_agree_in_closed_loop_on_a_real_like_clip():
    if not (_has("torch") and _has("onnxruntime") and _has("openvino")):
        pytest.skip("needs torch, onnxruntime and openvino")
    from edge_tan.bench import parity as P
    from edge_tan.bench import parity_checks as PC
    from edge_tan.runtime.defaults import default_weights_path
    from edge_tan.targets.opener import open_model
    if not default_weights_path().is_file():
        pytest.skip("no shipped model in this checkout")
    clip = real_like_clip()
    assert clip.frames.shape[1:] == (112, 112) and np.percentile(clip.frames[clip.frames > 0], 95) < 150
    reqs = P.parse_requests("torch,onnxruntime,openvino", "fp32")
    rep = P.run_parity([clip], reqs, lambda b, p: open_model(None, b, p, threads=1),
                       open_model(None, "torch", "fp32", threads=1), {"fp32": PC.tolerances_for("fp32")})
    assert rep["clips"][0]["reference_tracked"] == 1.0 and rep["clips"][0]["reference_gt"]["dice"] > 0.9
    for r in rep["rows"]:
        if r["backend"] == "torch":
            continue
        s = r["summary"]
        assert r["status"] == "pass", (r["backend"], r["reason"])
        assert s["state_agree"] == 1.0 and s["lock_mismatch_frames"] == 0, (r["backend"], s)
        assert s["ef_abs_diff"] is not None and s["ef_abs_diff"] <= 0.5, (r["backend"], s["ef_abs_diff"])


@pytest.mark.slow
def test_closed_loop_does_not_amplify_backend_rounding():
    """On real clips the closed loop amplified float rounding (~x3 per frame): torch and OpenVINO fp32
    ended tens of px and up to 12.7 EF points apart on 10 of 12 real development clips; with the
    window seed snapped to TrackerConfig.seed_grid, 0 of 12 (issue 21 item 3, closing note). On this
    real-like clip the ungridded loop already grows the 1e-5 px difference ~1000-fold; gridded, the two
    backends' landmarks stay within their single-pass rounding on every frame."""
    if not (_has("torch") and _has("openvino")):
        pytest.skip("needs torch and openvino")
    from dataclasses import replace

    from edge_tan.runtime.defaults import default_weights_path
    from edge_tan.runtime.tracker import Tracker, TrackerConfig
    from edge_tan.targets.opener import open_model
    if not default_weights_path().is_file():
        pytest.skip("no shipped model in this checkout")
    frames = real_like_clip(seed=12, n_frames=40).frames
    ra, rb = open_model(None, "torch", "fp32", threads=1), open_model(None, "openvino", "fp32", threads=1)

    def gap(grid: float) -> float:
        cfg = replace(TrackerConfig(), seed_grid=grid)
        a, b = Tracker(ra, cfg).track(frames), Tracker(rb, cfg).track(frames)
        assert [x.state for x in a] == [y.state for y in b]
        return max(float(np.abs(x.landmarks - y.landmarks).max()) for x, y in zip(a, b) if x.landmarks is not None)

    assert TrackerConfig().seed_grid > 0
    assert gap(TrackerConfig().seed_grid) < 1e-4
    assert gap(0.0) > 1e-3      # the clip does exercise the amplification

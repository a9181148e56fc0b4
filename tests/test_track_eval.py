"""track/eval plumbing with the threshold test double, and the shipped model on a phantom clip.

The double (conftest.ThresholdRunner) checks what track/eval write and compute; the last test runs the
shipped default model through the real tracker on a phantom clip and holds it to accuracy floors.
"""
import json

import numpy as np
import pytest

import edge_tan.track_cli as tc
from edge_tan.dataset import save_sequence
from tests.conftest import ThresholdRunner, toy_dataset, toy_metadata, toy_sequence

# Floors for the shipped model on a short phantom clip: loose enough that any good retrained default
# passes, tight enough that a broken tracker, warp, or model cannot.
SHIPPED_FLOORS = {"dice": 0.85, "landmark_px": 8.0, "ef_points": 12.0}
SHIPPED_CLIP = {"seed": 2024, "view": "A4C", "n_frames": 36, "fps": 30, "heart_rate": 75}   # one full beat


@pytest.fixture()
def double(monkeypatch):
    from edge_tan.targets import opener
    monkeypatch.setattr(opener, "open_model", lambda *a, **k: ThresholdRunner(toy_metadata(64)))


def test_track_outputs_agree_with_each_other(tmp_path, double):
    seq = toy_sequence(T=12)
    save_sequence(seq, tmp_path / "clip.npz")
    data = tc.run_track(video=tmp_path / "clip.npz", model=None, backend="onnxruntime", precision="fp32",
                        out=tmp_path / "o.mp4", json_out=tmp_path / "r.json", masks=tmp_path / "m.npz",
                        csv=tmp_path / "f.csv", biplane=None, live=None, quiet=True)
    j = json.loads((tmp_path / "r.json").read_text())
    assert j["frames"] == 12 and len(j["per_frame"]) == 12 and j["per_frame"] == data["per_frame"]
    assert [f["index"] for f in j["per_frame"]] == list(range(12))
    assert [f["state"] for f in j["per_frame"]] == ["detect"] + ["track"] * 11
    m = np.load(tmp_path / "m.npz")["masks"]
    assert m.shape == seq.frames.shape and m.dtype == np.uint8 and m.max() == 1
    # the JSON areas are the masks' areas, and the masks are the toy LV
    assert [r["area_px"] for r in j["per_frame"]] == [int(x.sum()) for x in m]
    inter = (m.astype(bool) & seq.masks.astype(bool)).sum((1, 2))
    assert np.all(2 * inter / (m.sum((1, 2)) + seq.masks.sum((1, 2))) > 0.8)
    for f, gt in zip(j["per_frame"], seq.landmarks):
        assert np.linalg.norm(np.array(f["landmarks"]) - gt, axis=1).max() < 12   # toy landmarks, in frame px
        assert len(f["contour"]) >= 3
    # ED at the largest area, ES at the smallest (the toy LV contracts to mid-clip, then relaxes)
    areas = m.sum((1, 2))
    assert data["clinical"]["ed_frames"] and data["clinical"]["es_frames"]
    assert areas[data["clinical"]["ed_frames"][0]] > areas[data["clinical"]["es_frames"][0]]
    assert abs(data["clinical"]["es_frames"][0] - 6) <= 1
    assert (tmp_path / "o.mp4").stat().st_size > 0
    rows = (tmp_path / "f.csv").read_text().strip().splitlines()
    assert len(rows) == 13   # header + one line per frame


def test_eval_scores_the_double_and_writes_what_it_returns(tmp_path, double):
    from edge_tan.evaluate import run_eval_cli
    toy_dataset(tmp_path / "ds", n=4, T=8)
    rep = run_eval_cli(tmp_path / "ds", model=None, backend="onnxruntime", precision="fp32", split="all",
                       frame_by_frame=True, limit=0, json_out=tmp_path / "e.json")
    for mode in ("closed_loop", "frame_by_frame"):
        fr = rep["results"][mode]["frames"]
        assert fr["dice"]["mean"] > 0.85 and fr["lm_err_px"]["mean"] < 10
        assert fr["view_acc"]["mean"] == pytest.approx(0.5)   # the double always says A4C; half the set is A2C
        assert len(rep["results"][mode]["per_video"]) == 4
        # per clip: its true view, and the frames table's landmark mm and view call over its labelled frames
        pv = rep["results"][mode]["per_video"]
        assert [v["view"] for v in pv] == ["A2C", "A4C", "A2C", "A4C"]
        assert [v["view_acc"] for v in pv] == [0.0, 1.0, 0.0, 1.0]
        assert np.mean([v["mean_lm_mm"] for v in pv]) == pytest.approx(fr["lm_err_mm"]["mean"])   # equal frames per clip
    assert json.loads((tmp_path / "e.json").read_text())["results"]["closed_loop"]["frames"]["dice"]["mean"] == \
        pytest.approx(rep["results"]["closed_loop"]["frames"]["dice"]["mean"])


def test_shipped_model_tracks_a_phantom_clip():
    """The default model, real tracker, ONNX Runtime (torch if absent) on a phantom beat: Dice,
    landmarks and EF against floors."""
    from edge_tan.clinical import clip_clinical
    from edge_tan.defaults import default_weights_path
    from edge_tan.metrics import dice, landmark_errors
    from edge_tan.tracker import Tracker
    gen = pytest.importorskip("edge_tan.synth.generate")
    if not default_weights_path().is_file():
        pytest.skip("no shipped model in this checkout")
    backend = "onnxruntime" if _has("onnxruntime") else "torch"
    if not _has("torch"):
        pytest.skip("exporting the shipped weights needs torch")
    c = SHIPPED_CLIP
    seq = gen.generate_sequence(c["seed"], c["view"], n_frames=c["n_frames"], fps=c["fps"], heart_rate=c["heart_rate"])
    from edge_tan.targets.opener import open_model
    runner = open_model(None, backend, "fp32")
    try:
        res = Tracker(runner).track(list(seq.frames))
    finally:
        runner.close()
    lab = np.flatnonzero(seq.labeled)
    d = np.mean([dice(res[t].mask, seq.masks[t]) for t in lab])
    lm = np.mean([np.mean(landmark_errors(res[t].landmarks, seq.landmarks[t])) for t in lab])
    ef = clip_clinical(res, seq.spacing_mm, seq.fps)["ef_percent"]
    assert d >= SHIPPED_FLOORS["dice"], f"Dice {d:.3f}"
    assert lm <= SHIPPED_FLOORS["landmark_px"], f"landmark error {lm:.2f} px"
    assert ef is not None and abs(ef - seq.ef) <= SHIPPED_FLOORS["ef_points"], f"EF {ef} vs {seq.ef:.1f}"


def _has(mod: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(mod) is not None


def test_state_shares_and_reasons_reach_track_eval_and_bench(tmp_path, double):
    """Every report says how often the tracker tracked, re-detected or lost the LV, and why."""
    from edge_tan.bench.report import _states_cell
    from edge_tan.bench.run import end_to_end
    from edge_tan.evaluate import run_eval_cli
    seq = toy_sequence(T=8)
    seq.frames[4:] = np.roll(seq.frames[4:], -30, axis=2)   # the probe jumps once: one re-detect
    save_sequence(seq, tmp_path / "clip.npz")
    data = tc.run_track(video=tmp_path / "clip.npz", model=None, backend="onnxruntime", precision="fp32", out=None,
                        json_out=tmp_path / "r.json", masks=None, csv=tmp_path / "f.csv", biplane=None, live=None,
                        quiet=True)
    st = json.loads((tmp_path / "r.json").read_text())["states"]
    assert st["state_frames"]["redetect"] == 1 and st["state_share"]["redetect"] == pytest.approx(1 / 8, abs=1e-4)
    assert sum(st["state_share"].values()) == pytest.approx(1.0)
    redet = [f for f in data["per_frame"] if f["state"] == "redetect"]
    assert redet[0]["reason"] and st["top_reasons"][0][1] >= 1
    assert "reason" in (tmp_path / "f.csv").read_text().splitlines()[0]
    toy_dataset(tmp_path / "ds", n=2, T=6)
    rep = run_eval_cli(tmp_path / "ds", model=None, backend="onnxruntime", precision="fp32", split="all",
                       frame_by_frame=False, limit=0, json_out=tmp_path / "e.json")
    share = json.loads((tmp_path / "e.json").read_text())["results"]["closed_loop"]["states"]["state_share"]
    assert share == rep["results"]["closed_loop"]["states"]["state_share"]
    assert share["detect"] == pytest.approx(2 / 12, abs=1e-4) and share["track"] == pytest.approx(10 / 12, abs=1e-4)
    e2e = end_to_end(ThresholdRunner(toy_metadata(64)), list(seq.frames), 16)
    assert set(e2e["state_share"]) == {"detect", "track", "redetect", "lost"} and e2e["state_share"]["redetect"] > 0
    assert _states_cell(e2e["state_share"]).count("/") == 3

"""track/eval plumbing with the threshold test double (the real-model path is covered in test_end_to_end)."""
import json

import numpy as np
import pytest

import edge_tan.track_cli as tc
from edge_tan.dataset import save_sequence
from tests.oracle_runner import ThresholdRunner, toy_metadata
from tests.toy import toy_dataset, toy_sequence


@pytest.fixture()
def double(monkeypatch):
    monkeypatch.setattr(tc, "open_runner_for", lambda *a, **k: ThresholdRunner(toy_metadata(64)))


def test_track_writes_exact_output_shapes(tmp_path, double):
    seq = toy_sequence(T=12)
    save_sequence(seq, tmp_path / "clip.npz")
    data = tc.run_track(video=tmp_path / "clip.npz", model=None, backend="onnxruntime", precision="fp32",
                        out=tmp_path / "o.mp4", json_out=tmp_path / "r.json", masks=tmp_path / "m.npz",
                        csv=tmp_path / "f.csv", biplane=None, live=None, quiet=True)
    j = json.loads((tmp_path / "r.json").read_text())
    assert set(j) >= {"video", "frames", "backend", "model", "per_frame", "clinical", "timing"}
    assert j["frames"] == 12 and len(j["per_frame"]) == 12
    f0 = j["per_frame"][0]
    assert set(f0) == {"index", "view", "view_prob", "view_frame", "landmarks", "contour", "area_px", "state", "confidence",
                       "latency_ms"}
    assert np.array(f0["landmarks"]).shape == (3, 2)
    assert set(j["clinical"]) >= {"ed_frames", "es_frames", "ef_percent", "method"}
    assert set(j["timing"]) >= {"median_ms", "p95_ms", "fps"}
    m = np.load(tmp_path / "m.npz")["masks"]
    assert m.shape == seq.frames.shape and m.dtype == np.uint8 and m.max() == 1
    # the JSON areas are the masks' areas
    assert [r["area_px"] for r in j["per_frame"]] == [int(x.sum()) for x in m]
    assert (tmp_path / "o.mp4").stat().st_size > 0
    assert (tmp_path / "f.csv").read_text().count("\n") == 13
    assert data["clinical"]["ed_frames"] is not None


def test_eval_reports_paper_metrics(tmp_path, double):
    from edge_tan.evaluate import run_eval_cli
    toy_dataset(tmp_path / "ds", n=4, T=8)
    rep = run_eval_cli(tmp_path / "ds", model=None, backend="onnxruntime", precision="fp32", split="all",
                       frame_by_frame=True, limit=0, json_out=tmp_path / "e.json")
    cl = rep["results"]["closed_loop"]
    assert cl["frames"]["dice"]["mean"] > 0.85
    assert {"asd_px", "hd_px", "lm_err_px", "oks", "view_acc"} <= set(cl["frames"])
    assert "si_px" in cl["videos"] and "frame_by_frame" in rep["results"]
    json.loads((tmp_path / "e.json").read_text())

"""QC: per-frame confidence and clip score (ThresholdRunner double on toy clips), the unreliable
marking in track's JSON and printout, the shape model, the logistic fit, and site re-calibration."""
import json

import cv2
import numpy as np
import pytest

import edge_tan.track_cli as tc
from edge_tan.runtime import qc
from edge_tan.runtime import shape_model as sm
from edge_tan.dataset import save_sequence
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.tracker import Tracker
from tests.conftest import ThresholdRunner, toy_metadata, toy_sequence
from tests.test_qc_rules import smooth


def _degraded(seq):
    """The toy clip with the LV jumping around and vanishing: what a lock on garbage looks like."""
    f = seq.frames.copy()
    rng = np.random.default_rng(3)
    for t in range(1, len(f)):
        if t % 3 == 0:
            f[t] = 60   # blank frame
        elif t % 2:
            f[t] = np.roll(f[t], (int(rng.integers(-20, 20)), int(rng.integers(-25, 25))), (0, 1))
            f[t] = np.clip(f[t].astype(int) + rng.normal(0, 10, f[t].shape), 0, 255).astype(np.uint8)   # still an image
    return f


def _assess(frames):
    tr = Tracker(ThresholdRunner(toy_metadata(64)))
    tracked = tr.track(list(frames))
    own = [r.confidence for r in tracked]
    q, res = qc.assess(tracked, list(frames), 30.0, {"ef_percent": 50.0})
    assert [r.confidence for r in tracked] == own and res is not tracked   # new results; the tracker's stay
    assert qc.assess(tracked, list(frames), 30.0, {"ef_percent": 50.0})[0] == q   # so a second call agrees
    return res, q


def test_qc_scores_a_degraded_clip_below_the_clean_one():
    seq = toy_sequence(T=12)
    res_c, q_c = _assess(seq.frames)
    res_d, q_d = _assess(_degraded(seq))
    assert q_d["score"] < q_c["score"]
    assert q_d["components"]["lost_share"] > q_c["components"]["lost_share"]
    assert q_d["components"]["landmark_jump"] > q_c["components"]["landmark_jump"]
    for res in (res_c, res_d):
        conf = np.array([r.confidence for r in res])
        assert ((conf >= 0) & (conf <= 1)).all()
        assert all(r.confidence == 0 for r in res if r.state == "lost")
    assert np.mean([r.confidence for r in res_d]) < np.mean([r.confidence for r in res_c])
    assert set(q_c) >= {"score", "reliable", "threshold", "reasons", "components"}


def _model_file(tmp_path, threshold):
    m = qc.load_model()
    m.threshold = threshold
    p = tmp_path / "qc.json"
    p.write_text(json.dumps(m.to_dict()))
    return p


def test_track_marks_ef_unreliable_in_json_and_printout(tmp_path, monkeypatch, capsys):
    from edge_tan.targets import opener
    monkeypatch.setattr(opener, "open_model", lambda *a, **k: ThresholdRunner(toy_metadata(64)))
    save_sequence(smooth(toy_sequence(T=12)), tmp_path / "clip.npz")   # no hard rule breaks: the score decides
    run = dict(video=tmp_path / "clip.npz", model=None, backend="onnxruntime", precision="fp32", out=None,
               masks=None, csv=None, biplane=None, live=None)
    monkeypatch.setenv(qc.ENV, str(_model_file(tmp_path, 1.0)))   # nothing passes a threshold of 1
    data = tc.run_track(json_out=tmp_path / "r.json", quiet=False, **run)
    j = json.loads((tmp_path / "r.json").read_text())
    assert j["qc"] == data["qc"] and j["qc"]["reliable"] is False and j["qc"]["threshold"] == 1.0
    assert j["clinical"]["reliable"] is False and j["clinical"]["unreliable_reason"]
    assert all(0 <= f["confidence"] <= 1 for f in j["per_frame"])
    out = capsys.readouterr().out
    assert "UNRELIABLE (" in out and f"EF {j['clinical']['ef_percent']:.1f} %" in out
    monkeypatch.setenv(qc.ENV, str(_model_file(tmp_path, 0.0)))   # everything passes a threshold of 0
    data = tc.run_track(json_out=None, quiet=True, **run)
    assert data["qc"]["reliable"] is True and data["clinical"]["reliable"] is True
    assert "unreliable_reason" not in data["clinical"]


def test_shape_model_tells_an_lv_from_a_blob():
    model = sm.load()
    lm = np.array([[50.0, 10.0], [30.0, 90.0], [74.0, 86.0]])
    to_frame = cv2.getAffineTransform(sm.CANON.astype(np.float32), lm.astype(np.float32))   # canonical -> frame
    centres = (np.arange(sm.N_ANGLES) + 0.5) / sm.N_ANGLES * 2 * np.pi - np.pi
    ang = np.linspace(-np.pi, np.pi, 512, endpoint=False)   # the mean shape, densely drawn
    rad = np.interp(ang, centres, model.mean, period=2 * np.pi)
    canon = sm.CENTRE + rad[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
    mean_lv = canon @ to_frame[:, :2].T + to_frame[:, 2]
    assert model.distance(sm.descriptor(mean_lv, lm)) < qc.SHAPE_OUTLIER
    circle = np.stack([52 + 30 * np.cos(ang), 50 + 30 * np.sin(ang)], 1)   # a round blob on the LV's axis
    assert model.distance(sm.descriptor(circle, lm)) > 3 * qc.SHAPE_OUTLIER
    off = np.stack([120 + 15 * np.cos(ang), 40 + 15 * np.sin(ang)], 1)     # beside the LV: no radius on most angles
    assert sm.descriptor(off, lm) is None
    assert sm.descriptor(np.zeros((3, 2)), lm) is None


def test_auroc_and_non_negative_logistic_fit():
    assert qc.auroc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert qc.auroc([1, 1], [True, False]) == 0.5
    assert qc.auroc([1, 2], [True, True]) is None
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=200)) > 0   # feature 1 "helps": its weight must be dropped
    coef, _ = qc.fit_logistic(X, y)
    assert coef[0] > 0.5 and coef[1] == 0.0


def test_qc_calibrate_moves_the_threshold_and_refits(tmp_path):
    from edge_tan.qc_calibrate import calibrate
    rng = np.random.default_rng(1)
    clips = []
    for i in range(30):
        bad = i % 3 == 0
        comp = {k: float(abs(rng.normal(0.2, 0.05))) for k in qc.FEATURES}
        comp["lost_share"] = 0.6 if bad else 0.0
        clips.append({"name": f"c{i}", "ef_err": 20.0 if bad else 2.0, "qc": {"components": comp}})
    ev = tmp_path / "e.json"
    ev.write_text(json.dumps({"clips": clips}))
    d = calibrate([ev], tmp_path / "site.json", flag_share=0.2)
    m = qc.load_model(tmp_path / "site.json")
    scores = [m.score(c["qc"]["components"]) for c in clips]
    assert sum(s < m.threshold for s in scores) == 6 and d["info"]["how"].startswith("threshold")
    d = calibrate([ev], tmp_path / "refit.json", refit=True, threshold=0.5)
    assert d["info"]["auroc_on_these_clips"] == 1.0 and d["threshold"] == 0.5
    with pytest.raises(EdgeTanError, match="clips"):
        (tmp_path / "x.json").write_text("{}")
        calibrate([tmp_path / "x.json"], tmp_path / "no.json")
    assert not (tmp_path / "no.json").exists()


def test_mark_clinical_and_shortfall_return_new_blocks():
    from edge_tan.io.shortfall import mark_shortfall
    clinical = {"ef_percent": 55.0, "unreliable_reason": "old"}
    qc_block = {"score": 0.9, "threshold": 0.5, "reliable": True, "reasons": []}
    marked = qc.mark_clinical(clinical, qc_block)
    assert marked == {"ef_percent": 55.0, "reliable": True}
    assert clinical == {"ef_percent": 55.0, "unreliable_reason": "old"}
    cut = mark_shortfall(qc_block, 100, 30)
    assert not cut["reliable"] and cut["reasons"][0].startswith("file truncated") and qc_block["reliable"]

"""QC's hard rules (edge_tan.runtime.qc_rules): a noise-dominated clip, an LV cut by the image edge and
an LV found on too few frames are UNRELIABLE whatever the calibrated score says; a clean clip breaks none."""
import json

import cv2
import numpy as np

from edge_tan.runtime import qc
from edge_tan.runtime import qc_rules as rules
from edge_tan.runtime.tracker import FrameResult, Tracker
from tests.conftest import ThresholdRunner, toy_metadata, toy_sequence


def smooth(seq):
    """The toy clip with pixel-scale speckle blurred away: echo speckle spans pixels (the toy's is i.i.d.)."""
    seq.frames = np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in seq.frames])
    return seq


def _pass_all():
    m = qc.load_model()
    m.threshold = 0.0   # the score accepts every clip: only a rule can refuse one
    return m


def _assess(frames, model):
    tracked = Tracker(ThresholdRunner(toy_metadata(64))).track(list(frames))
    return qc.assess(tracked, list(frames), 30.0, {"ef_percent": 50.0}, model)[0]


def test_a_clean_clip_breaks_no_rule():
    q = _assess(smooth(toy_sequence(T=10)).frames, _pass_all())
    c = q["components"]
    assert c["lv_cut_share"] == 0.0 and c["pixel_noise"] < 1 - rules.MIN_CORRELATION
    assert q["reliable"] is True and rules.reasons(c) == []


def test_noise_dominated_images_are_unreliable_with_the_reason():
    seq = smooth(toy_sequence(T=10))
    rng = np.random.default_rng(5)
    noisy = np.clip(seq.frames + rng.normal(0, 25, seq.frames.shape), 0, 255).astype(np.uint8)
    q = _assess(noisy, _pass_all())
    assert q["components"]["pixel_noise"] > 1 - rules.MIN_CORRELATION
    assert q["reliable"] is False and q["reasons"][0].startswith("images dominated by noise")
    json.dumps(q)   # the block stays JSON


def test_an_lv_cut_by_the_image_edge_is_unreliable():
    seq = smooth(toy_sequence(T=10))
    cut = seq.frames[:, :50]   # the frame ends across the LV (its base out of the image)
    q = _assess(cut, _pass_all())
    assert q["components"]["lv_cut_share"] >= rules.CUT_FRAMES
    assert q["reliable"] is False and any(r.startswith("LV cut by the image edge") for r in q["reasons"])


def test_frame_cut_measures_the_border_on_the_edge():
    m = np.zeros((20, 30), np.uint8)
    m[5:20, 10:20] = 1   # reaches the frame's bottom edge over 10 columns
    r = FrameResult(index=0, frame_hw=(40, 60), state="track", mask_origin=(5, 20), mask_crop=m)
    assert 0.15 < rules.frame_cut(r) < 0.35          # ~10 of a ~48 px border
    r.mask_origin = (5, 5)                           # the same LV well inside the frame
    assert rules.frame_cut(r) == 0.0
    assert np.isnan(rules.frame_cut(FrameResult(index=0, frame_hw=(40, 60), state="lost")))


def test_an_lv_found_on_few_frames_is_unreliable():
    assert any(r.startswith("LV found on only 20 %") for r in rules.reasons({"lost_share": 0.8}))
    assert rules.reasons({"lost_share": 0.1, "lv_cut_share": 0.0, "pixel_noise": 0.1}) == []
    assert rules.reasons({"pixel_noise": float("nan")}) == []   # not measured: no verdict from it

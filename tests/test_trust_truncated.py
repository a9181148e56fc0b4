"""Issue 21 item 5: a truncated AVI (cut at 30 %) must not give a "reliable" EF. The frames the header
promises vs the frames that decoded reach the QC verdict (unreliable, the reason first) and the JSON,
in `track` and in `batch` (which streams the clip)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ThresholdRunner, toy_metadata, toy_sequence, write_avi


@pytest.fixture()
def clips(tmp_path):
    seq = toy_sequence("c", T=40)
    whole = write_avi(tmp_path / "whole.avi", np.asarray(seq.frames))
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    return whole, cut


@pytest.fixture()
def double(monkeypatch):
    from edge_tan.targets import opener
    monkeypatch.setattr(opener, "open_model", lambda *a, **k: ThresholdRunner(toy_metadata(64)))


def test_track_marks_a_cut_file_unreliable(clips, double, tmp_path):
    from edge_tan.track_cli import run_track
    whole, cut = clips
    ok = run_track(whole, None, "onnxruntime", "fp32", None, None, None, None, None, None, quiet=True)
    assert ok["qc"]["decode"] == {"frames_promised": 40, "frames_decoded": 40}
    assert not any("truncated" in r for r in ok["qc"]["reasons"])
    bad = run_track(cut, None, "onnxruntime", "fp32", None, None, None, None, None, None, quiet=True)
    dec = bad["qc"]["decode"]
    assert dec["frames_promised"] == 40 and 0 < dec["frames_decoded"] < 40
    assert bad["qc"]["reliable"] is False and bad["clinical"]["reliable"] is False
    assert bad["qc"]["reasons"][0] == f"file truncated or corrupt: {dec['frames_decoded']} of 40 frames decoded"
    assert bad["clinical"]["unreliable_reason"].startswith("file truncated")


def test_batch_stream_marks_a_cut_file_unreliable(clips):
    from edge_tan.batch.clip import clip_results
    from edge_tan.io.stream import open_clip
    _, cut = clips
    data = clip_results(ThresholdRunner(toy_metadata(64)), open_clip(cut), str(cut))
    assert data["qc"]["reliable"] is False and data["qc"]["reasons"][0].startswith("file truncated")
    assert data["qc"]["decode"]["frames_promised"] == 40


def test_estimated_counts_are_not_a_gap():
    from edge_tan.io.shortfall import missing_frames
    assert missing_frames(0, 10) == 0 and missing_frames(None, 10) == 0
    assert missing_frames(201, 200) == 0 and missing_frames(201, 60) == 141

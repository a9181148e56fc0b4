"""`adapt --tracings`: the expert's traced areas become labels (export/adapt/traced.py), reach the
self-training batches, and bad tracings files fail with one clear line."""

import numpy as np
import pytest
import torch

from edge_tan.dataset import Sequence
from edge_tan.reports import Traced
from edge_tan.runtime.errors import EdgeTanError, UsageError
from edge_tan.runtime.tracker import FrameResult
from edge_tan.export.adapt.finetune import MixedBatches
from edge_tan.export.adapt.run import AdaptConfig, adapt
from edge_tan.export.adapt.traced import HALF, area_map, area_matched, traced_labels
from tests.test_adapt import site  # noqa: F401  (module fixture: tiny TAN, toy clips, toy phantom)


def _disc(h=96, w=96, r=20, c=(48, 48)):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - c[1]) ** 2 + (xx - c[0]) ** 2 <= r * r).astype(np.uint8)


def test_area_matched_shrinks_and_grows_the_shape_to_the_traced_area():
    m = _disc()
    for target in (700.0, 1257.0, 1900.0):
        out = area_matched(m, target)
        assert abs(out.sum() - target) <= 0.02 * target
    small, big = area_matched(m, 700), area_matched(m, 1900)
    assert (small <= m).all() and (m <= big).all()          # nested: only the size changed
    ys, xs = np.nonzero(small)
    assert abs(xs.mean() - 48) < 1 and abs(ys.mean() - 48) < 1


def _result(i, state, mask):
    ys, xs = np.nonzero(mask)
    lm = np.array([[xs.mean(), ys.min()], [xs.min(), ys.max()], [xs.max(), ys.max()]], np.float32)
    return FrameResult(index=i, frame_hw=mask.shape, state=state, landmarks=lm, mask_origin=(0, 0), mask_crop=mask)


def test_traced_labels_take_the_expert_area_around_the_traced_frames():
    T = 30
    seq = Sequence(name="c", frames=np.zeros((T, 96, 96), np.uint8), fps=50.0)

    def track(frames):
        # the first frame of a run is a detect; the rest are tracked, all with a disc of area ~1257
        return [_result(i, "detect" if i == 0 else "track", _disc()) for i in range(len(frames))]

    ps, why = traced_labels(seq, Traced(ed=12, es=1, ed_area=1500.0, es_area=900.0), track, "A4C")
    ed = [k for k, t in enumerate(ps.extra["kept"]) if t >= 10]
    es = [k for k, t in enumerate(ps.extra["kept"]) if t < 10]
    assert [ps.extra["kept"][k] for k in ed] == list(range(12 - HALF, 12 + HALF + 1))
    assert all(abs(ps.masks[k].sum() - 1500) <= 30 for k in ed)
    assert all(abs(ps.masks[k].sum() - 900) <= 18 for k in es)
    assert why["not tracked (detect)"] == 1          # ES at frame 1: its run starts at frame 0 (a detect)
    assert ps.extra["pairs"] == [(1257.0, 1500.0), (1257.0, 900.0)]   # (tracked, traced) at ED, at ES
    assert ps.view == "A4C" and ps.labeled.all() and ps.landmarks.shape == (len(ps.extra["kept"]), 3, 2)
    # a traced frame past the clip's end, and a tracked area 3x the traced one, are left out with the reason
    ps2, why2 = traced_labels(seq, Traced(ed=40, es=20, ed_area=1500.0, es_area=400.0), track)
    assert ps2 is None and why2["ED frame outside the clip"] == 1
    assert why2["tracked area too far from the traced one"] == 2 * HALF + 1


def test_area_map_carries_the_traced_scale_to_the_clips_other_frames():
    fit = area_map([(1500.0, 1400.0), (1000.0, 800.0)])     # (tracked, traced) at ED and at ES
    assert fit(1000) == 800 and abs(fit(1500) - 1400) < 1e-9
    assert abs(fit(1250) - 1250 * (0.8 + 0.5 * (1400 / 1500 - 0.8))) < 1e-9   # ratio interpolated
    assert abs(fit(3000) - 3000 * 1400 / 1500) < 1e-9 and abs(fit(500) - 400) < 1e-9   # held beyond
    assert area_map([]) is None and area_map([(0.0, 10.0)]) is None


class _Items:
    def __init__(self, tag):
        self.tag = tag

    def __getitem__(self, i):
        return {"image": np.zeros((1, 8, 8), np.float32), "mask": np.zeros((8, 8), np.int64),
                "tag": np.int64(self.tag)}


def test_mixed_batches_give_traced_labels_their_share():
    b = MixedBatches(_Items(0), _Items(1), None, batch=8, site_share=0.5, seed=0, traced=_Items(2), traced_share=0.5)
    tags = b.get(0)["tag"].tolist()
    assert tags.count(2) == 2 and tags.count(1) == 2 and tags.count(0) == 4
    only = MixedBatches(_Items(0), None, None, batch=8, site_share=0.5, seed=0, traced=_Items(2))
    assert only.get(3)["tag"].tolist().count(2) == 4          # no pseudo-labels: the site half is all traced


def _cfg(site, tmp_path, **kw):
    base = dict(weights=str(site / "tiny.safetensors"), clips=str(site / "clips"), out=str(tmp_path / "t.safetensors"),
                minutes=0.1, phantom=str(site / "phantom"), threads=1, work=str(tmp_path / "w"))
    base.update(kw)
    return AdaptConfig(**base)


def test_adapt_with_tracings_records_them(site, tmp_path):  # noqa: F811
    csv = tmp_path / "traced.csv"
    csv.write_text("FileName,ED_frame,ES_frame,ED_area_px,ES_area_px\n"
                   "toy00,5,2,300,200\ntoy01.npz,6,3,310,190\nnot_here,5,2,300,200\n")
    torch.manual_seed(0)
    rec = adapt(_cfg(site, tmp_path, tracings=str(csv)))
    tr = rec["phases"]["label"]["traced"]
    assert tr["file"] == "traced.csv" and tr["clips_in_file"] == 3 and tr["clips_matched"] == 2
    assert sum(tr["reasons"].values()) >= 2 * 2       # every traced frame of both clips accounted for
    assert rec["settings"]["tracings"] == str(csv)


def test_bad_tracings_fail_with_one_clear_line(site, tmp_path):  # noqa: F811
    csv = tmp_path / "traced.csv"
    csv.write_text("FileName,ED_frame,ES_frame,ED_area_px,ES_area_px\nsomeone_else,5,2,300,200\n")
    with pytest.raises(EdgeTanError, match="none of its 1 clip names matches"):
        adapt(_cfg(site, tmp_path, tracings=str(csv)))
    with pytest.raises(EdgeTanError, match="tracings CSV not found"):
        adapt(_cfg(site, tmp_path, tracings=str(tmp_path / "missing.csv")))
    with pytest.raises(UsageError, match="--tracings feeds the self phase"):
        adapt(_cfg(site, tmp_path, tracings=str(csv), phases="bn"))
    assert not (tmp_path / "t.safetensors").exists()

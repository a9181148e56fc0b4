"""The opt-in blood-pool refinement: a mask laid over the wall is pulled onto the dark pool, the tracked
path never changes, and edge cases leave the mask alone."""
import numpy as np
import pytest

from edge_tan.runtime.blood_pool import refine_to_blood_pool
from edge_tan.runtime.tracker import Tracker, TrackerConfig
from tests.conftest import ThresholdRunner, toy_metadata, toy_sequence


def disc(shape, c, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return ((yy - c[1]) ** 2 + (xx - c[0]) ** 2 <= r * r).astype(np.uint8)


def dice(a, b):
    return 2.0 * float(((a > 0) & (b > 0)).sum()) / float((a > 0).sum() + (b > 0).sum())


def heart(seed=0):
    """A dark pool (r 12) with a papillary muscle inside, a bright wall around it (to r 18), grey outside."""
    rng = np.random.default_rng(seed)
    shape, c = (64, 64), (32, 30)
    img = np.full(shape, 90.0)
    img[disc(shape, c, 18) > 0] = 200.0
    pool = disc(shape, c, 12)
    img[pool > 0] = 25.0
    img[disc(shape, (36, 30), 1.5) > 0] = 200.0          # a papillary muscle: bright, inside the pool
    img = np.clip(img + rng.normal(0, 8, shape), 0, 255).astype(np.uint8)
    return img, pool, shape, c


def test_a_mask_over_the_wall_moves_onto_the_pool():
    img, pool, shape, c = heart()
    over = disc(shape, c, 15)                              # the contour 3 px out, on the wall
    out = refine_to_blood_pool(img, over)
    assert out.dtype == np.uint8 and out.shape == shape and set(np.unique(out)) <= {0, 1}
    assert dice(over, pool) < 0.8 < 0.9 < dice(out, pool)
    assert out[30, 36] == 1                                # the papillary muscle stays cavity (holes filled)
    # the edge moves in by at most MAX_INWARD of the equivalent radius (17 px: 3 px), however dark the pool
    far = refine_to_blood_pool(img, disc(shape, c, 17))
    assert far[disc(shape, c, 13) > 0].all() and not far[disc(shape, c, 17) == 0].any()
    # a mask already on the pool stays there (it may grow by the 2 px it is allowed to look beyond)
    on = refine_to_blood_pool(img, pool)
    assert dice(on, pool) > 0.9


def test_edge_cases_leave_the_mask_alone():
    img, pool, shape, c = heart()
    tiny = disc(shape, c, 2)                               # under MIN_PIXELS
    assert np.array_equal(refine_to_blood_pool(img, tiny), tiny)
    flat = np.full(shape, 120, np.uint8)                   # no dark pool at all: Otsu splits nothing apart
    m = disc(shape, c, 10)
    out = refine_to_blood_pool(flat, m)
    assert np.array_equal(out, m) or dice(out, m) > 0.9
    assert not refine_to_blood_pool(img, np.zeros(shape, np.uint8)).any()
    with pytest.raises(ValueError, match="differ in shape"):
        refine_to_blood_pool(img, np.zeros((10, 10), np.uint8))


def test_the_tracked_path_is_the_same_with_and_without_it():
    """It runs after the network on the accepted mask only: landmarks, states and windows are unchanged;
    the reported masks still cover the toy LV."""
    md = toy_metadata(64)
    seq = toy_sequence(T=6)
    plain = Tracker(ThresholdRunner(md)).track(seq.frames)
    pooled = Tracker(ThresholdRunner(md), TrackerConfig(blood_pool=True)).track(seq.frames)
    assert [r.state for r in plain] == [r.state for r in pooled]
    for a, b, m in zip(plain, pooled, seq.masks):
        assert np.array_equal(a.landmarks, b.landmarks) and np.array_equal(a.affine, b.affine)
        assert dice(b.mask, m) > 0.85
        assert len(b.contour) == TrackerConfig().contour_points


def test_track_and_eval_say_when_it_was_on(tmp_path, monkeypatch):
    import json

    import edge_tan.track_cli as tc
    from edge_tan.dataset import save_sequence
    from edge_tan.evaluate import run_eval_cli
    from edge_tan.runtime.errors import UsageError
    from edge_tan.targets import opener
    from tests.conftest import toy_dataset

    monkeypatch.setattr(opener, "open_model", lambda *a, **k: ThresholdRunner(toy_metadata(64)))
    save_sequence(toy_sequence(T=8), tmp_path / "clip.npz")
    kw = dict(video=tmp_path / "clip.npz", model=None, backend="onnxruntime", precision="fp32", out=None,
              masks=None, csv=None, biplane=None, live=None, quiet=True)
    on = tc.run_track(json_out=tmp_path / "on.json", blood_pool=True, **kw)
    off = tc.run_track(json_out=tmp_path / "off.json", **kw)
    assert json.loads((tmp_path / "on.json").read_text())["tracker"] == {"blood_pool": True}
    assert "tracker" not in off
    assert [f["landmarks"] for f in on["per_frame"]] == [f["landmarks"] for f in off["per_frame"]]
    with pytest.raises(UsageError, match="--blood-pool"):
        tc.run_track(**{**kw, "live": 0, "video": None}, json_out=None, blood_pool=True)
    toy_dataset(tmp_path / "ds", n=2, T=8)
    rep = run_eval_cli(tmp_path / "ds", model=None, backend="onnxruntime", precision="fp32", split="all",
                       frame_by_frame=False, limit=0, json_out=tmp_path / "e.json", blood_pool=True)
    assert rep["tracker"] == {"blood_pool": True}
    assert rep["results"]["closed_loop"]["frames"]["dice"]["mean"] > 0.85

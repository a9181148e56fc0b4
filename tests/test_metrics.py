"""Metrics against hand-computable cases: shifted squares, concentric discs, empty masks, OKS, worst-10 %."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_tan import metrics as M


def square(H=40, W=40, x0=10, y0=10, s=10):
    m = np.zeros((H, W), np.uint8)
    m[y0:y0 + s, x0:x0 + s] = 1
    return m


def disc(r, H=101, W=101, c=(50, 50)):
    yy, xx = np.mgrid[:H, :W]
    return (((xx - c[0]) ** 2 + (yy - c[1]) ** 2) <= r * r).astype(np.uint8)


def test_dice_cases():
    a, b = square(), square(x0=15)
    assert M.dice(a, a) == 1.0
    assert M.dice(a, b) == pytest.approx(2 * 50 / 200)
    z = np.zeros_like(a)
    assert M.dice(z, z) == 1.0 and M.dice(a, z) == 0.0
    with pytest.raises(ValueError):
        M.dice(a, a[:-1])


def test_asd_hd_shift_and_discs():
    a, b = square(), square(x0=12)            # shifted 2 px right
    assert M.asd(a, a) == 0.0 and M.hausdorff(a, a) == 0.0
    assert M.hausdorff(a, b) == pytest.approx(2.0)
    assert M.asd(a, b) == pytest.approx(1.0)   # hand count: 36 border px, distances sum to 36 each way
    assert M.asd(a, b, spacing_mm=0.5) == pytest.approx(0.5 * M.asd(a, b))
    # concentric discs: every border point is ~|r1 - r2| from the other border
    d1, d2 = disc(30), disc(25)
    assert M.asd(d1, d2) == pytest.approx(5.0, abs=0.5)
    assert M.hausdorff(d1, d2) == pytest.approx(5.0, abs=1.0)
    asd_, hd_ = M.asd_hd(d1, d2)
    assert asd_ == M.asd(d1, d2) and hd_ == M.hausdorff(d1, d2)


def test_empty_shapes_do_not_crash():
    z, a = np.zeros((20, 20), np.uint8), square(20, 20, 5, 5, 5)
    assert M.asd(z, z) == 0.0 and M.hausdorff(z, z) == 0.0
    assert math.isnan(M.asd(a, z)) and math.isnan(M.hausdorff(z, a))
    assert M.asd(a, z, empty=28.3) == 28.3
    assert math.isnan(M.contour_asd(np.zeros((0, 2)), np.ones((3, 2))))


def test_contour_metrics_match_point_geometry():
    c1 = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    c2 = c1 + [3, 0]
    # every corner of c1 is exactly 3 px from its shifted twin and farther from the others
    assert M.contour_hausdorff(c1, c2) == pytest.approx(3.0)
    assert M.contour_asd(c1, c2) == pytest.approx(3.0)


def test_smoothness_index_penalises_jitter():
    steady = np.stack([square(x0=10)] * 6)
    jitter = np.stack([square(x0=10 + 2 * (t % 2)) for t in range(6)])
    assert M.video_smoothness(steady) == 0.0
    j = M.video_smoothness(jitter)
    assert j == pytest.approx(M.asd(square(x0=10), square(x0=12)))
    assert M.smoothness_index([steady, jitter]) == pytest.approx(j / 2)
    assert math.isnan(M.video_smoothness(steady[:1]))


def test_oks_and_landmark_errors():
    gt = np.array([[50, 10], [30, 80], [70, 80]], float)
    assert M.oks(gt, gt, area_px=2000) == 1.0
    pred = gt + [[3, 4], [0, 0], [0, 0]]       # 5 px error on the apex
    expected = (math.exp(-25 / (2 * 2000 * M.K_LANDMARK ** 2)) + 2) / 3
    assert M.oks(pred, gt, 2000) == pytest.approx(expected)
    assert M.oks(pred, gt, 2000, k=np.array([0.2, 0.1, 0.1])) > M.oks(pred, gt, 2000)
    e = M.landmark_errors(pred, gt, spacing_mm=0.3)
    assert e == pytest.approx([1.5, 0, 0])
    assert math.isnan(M.oks(pred, np.full((3, 2), np.nan), 2000))
    assert M.oks(np.full((3, 2), np.nan), gt, 2000) == 0.0
    assert M.view_accuracy(["A2C", "A4C", "A4C"], ["A2C", "A2C", "A4C"]) == pytest.approx(2 / 3)
    assert M.ef_abs_error(55.0, 60.5) == 5.5


def test_worst_fraction_and_table():
    vals = np.arange(1, 21, dtype=float)          # 20 values -> worst 2
    assert M.worst_fraction(vals) == pytest.approx(19.5)
    assert M.worst_fraction(vals, higher_is_better=True) == pytest.approx(1.5)
    t = M.MetricTable()
    for v in vals:
        t.add(dice=v / 20, asd=v)
    t.add(asd=float("nan"), dice=1.0)
    s = t.summary()
    assert s["dice"]["worst10"] == pytest.approx((0.05 + 0.10 + 0.15) / 3)   # 21 values -> worst 3
    assert s["asd"]["worst10"] == pytest.approx(19.5) and s["asd"]["n_nan"] == 1 and s["asd"]["n"] == 20
    assert s["asd"]["median"] == pytest.approx(10.5)
    u = M.MetricTable(higher_is_better={"score": True})
    u.extend("score", [1, 2, 3])
    assert u.summary()["score"]["worst10"] == 1.0
    assert t.merge(u).summary()["score"]["n"] == 3
    assert M.summarize([])["n"] == 0
    v = M.MetricTable()
    v.extend("video_dice", [0.2, 0.9, 0.95])
    v.extend("view_acc", [0.0, 1.0, 1.0])
    v.extend("asd_px", [1.0, 2.0, 9.0])
    v.extend("lost_frac", [0.0, 0.5, 0.1])
    s = v.summary()
    assert s["video_dice"]["worst10"] == 0.2 and s["view_acc"]["worst10"] == 0.0
    assert s["asd_px"]["worst10"] == 9.0 and s["lost_frac"]["worst10"] == 0.5


def test_fast_mask_path_equals_brute_force_points():
    rng = np.random.default_rng(1)
    for _ in range(5):
        a = disc(rng.uniform(10, 40), c=tuple(rng.integers(40, 60, 2)))
        b = disc(rng.uniform(10, 40), c=tuple(rng.integers(40, 60, 2)))
        b[45:55, 20:80] = 1                                   # non-convex, with a bar
        pa, pb = M.border_points(a), M.border_points(b)
        assert M.asd_hd(a, b) == pytest.approx((M.contour_asd(pa, pb), M.contour_hausdorff(pa, pb)), rel=1e-5)

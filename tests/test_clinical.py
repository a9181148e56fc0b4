"""Clinical layer against analytic shapes: a half-ellipsoid LV has known volume (2/3 pi a b c)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_tan.runtime import clinical as C


def bullet(a, c, cx=100.0, base_y=150.0, n=400):
    """Half-ellipse cavity: apex at (cx, base_y - c), flat base from cx-a to cx+a; + exact landmarks."""
    th = np.linspace(np.pi, 2 * np.pi, n)
    poly = np.stack([cx + a * np.cos(th), base_y + c * np.sin(th)], 1)
    lms = np.array([[cx, base_y - c], [cx - a, base_y], [cx + a, base_y]], np.float64)
    return poly, lms


def bullet_mask(a, c, cx=100.0, base_y=150.0, H=200, W=200):
    """Pixel-centre rasterisation of the half-ellipse (a pixel is inside when its centre is)."""
    yy, xx = np.mgrid[:H, :W].astype(np.float64)
    return ((((xx - cx) / a) ** 2 + ((yy - base_y) / c) ** 2 <= 1) & (yy <= base_y)).astype(np.uint8)


def half_ellipsoid(a, b, c):
    return 2.0 / 3.0 * math.pi * a * b * c


def test_area_length_is_exact_for_half_ellipsoid_of_revolution():
    a, c = 30.0, 90.0
    A = math.pi * a * c / 2
    assert float(C.area_length_volume(A, c)) == pytest.approx(half_ellipsoid(a, a, c), rel=1e-12)


@pytest.mark.parametrize("a,c", [(30.0, 90.0), (22.0, 70.0)])
def test_simpson_contour_and_mask_within_few_percent(a, c):
    poly, lms = bullet(a, c)
    true = half_ellipsoid(a, a, c)
    assert C.simpson_volume(lms, contour=poly) == pytest.approx(true, rel=0.01)
    mask = bullet_mask(a, c)
    assert C.simpson_volume(lms, mask=mask) == pytest.approx(true, rel=0.03)
    # landmarks derived from the mask itself (no annotation) still land within a few percent
    v = C.volume_curve(mask[None], None, "simpson")[0]
    assert v == pytest.approx(true, rel=0.05)
    v_al = C.volume_curve(mask[None], None, "area-length")[0]
    assert v_al == pytest.approx(true, rel=0.05)


def test_disk_diameters_rotated_axis_and_nonconvex():
    poly, lms = bullet(30.0, 90.0)
    ang = np.deg2rad(25)
    R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    ctr = np.array([100.0, 120.0])
    rp, rl = (poly - ctr) @ R.T + ctr, (lms - ctr) @ R.T + ctr
    d0, h0 = C.disk_diameters(lms, contour=poly)
    d1, h1 = C.disk_diameters(rl, contour=rp)
    assert h0 == pytest.approx(90 / 20) and h1 == pytest.approx(h0)
    assert np.allclose(d0, d1, atol=1e-6)
    s = (np.arange(20) + 0.5) * h0                      # analytic widths: 2a sqrt(1 - (1 - s/c)^2)
    assert np.allclose(d0, 2 * 30 * np.sqrt(1 - (1 - s / 90) ** 2), atol=0.2)
    m = np.zeros((100, 100), np.uint8)                  # two separate bars across the axis: widths add
    m[10:90, 20:30] = 1
    m[10:90, 60:75] = 1
    d, _ = C.disk_diameters(np.array([[50, 10], [20, 89.5], [80, 89.5]]), mask=m, n=4)
    assert np.allclose(d, 25, atol=0.6)


def test_biplane_simpson_ellipsoid():
    a, b, c = 25.0, 35.0, 90.0
    p2, l2 = bullet(a, c)
    p4, l4 = bullet(b, c)
    true = half_ellipsoid(a, b, c)
    v = C.biplane_simpson_volume(l2, l4, contour_a2c=p2, contour_a4c=p4)
    assert v == pytest.approx(true, rel=0.01)
    vm = C.biplane_simpson_volume(l2, l4, mask_a2c=bullet_mask(a, c), mask_a4c=bullet_mask(b, c),
                                  spacing_a2c=0.5, spacing_a4c=0.5)
    assert vm == pytest.approx(true * 0.125, rel=0.03)


def beating_clip(T, fps, hr, phase, a_ed=30.0, c_ed=90.0, shrink=0.25, H=200, W=200):
    """Masks of a bullet whose size follows a cosine cycle (ED at phase 0); exact EF known per frame."""
    t = np.arange(T) / fps
    k = 1 - shrink * (1 - np.cos(2 * np.pi * hr / 60 * t + phase)) / 2    # 1 at ED, 1-shrink at ES
    masks, lms = [], []
    for kk in k:
        poly, lm = bullet(a_ed * kk, c_ed * (0.9 + 0.1 * kk))
        masks.append(bullet_mask(a_ed * kk, c_ed * (0.9 + 0.1 * kk), H=H, W=W))
        lms.append(lm)
    vol = np.array([half_ellipsoid(a_ed * kk, a_ed * kk, c_ed * (0.9 + 0.1 * kk)) for kk in k])
    return np.stack(masks), np.stack(lms).astype(np.float32), vol


def test_ef_single_plane_and_biplane_from_clip():
    masks, lms, vol = beating_clip(T=60, fps=50, hr=75, phase=0.0)
    true_ef = (vol.max() - vol.min()) / vol.max() * 100
    for method in ("simpson", "area-length"):
        r = C.ef_from_masks(masks, lms, spacing_mm=0.3, fps=50, method=method)
        assert r.ef_percent == pytest.approx(true_ef, abs=2.0)
        assert r.units == "ml" and list(r.ed_frames) == [0, 40] and list(r.es_frames) == [20, 59]
        assert r.edv[0] == pytest.approx(vol[0] * 0.3 ** 3 / 1000, rel=0.04)   # px^3 -> ml
    r = C.ef_from_masks(masks, None, fps=50)               # no landmarks, no spacing
    assert r.units == "px^3" and r.ef_percent == pytest.approx(true_ef, abs=3.0)
    bi = C.biplane_ef(masks, masks, lms, lms, 0.3, 0.3, 50, 50)
    assert bi.method == "biplane-simpson" and bi.ef_percent == pytest.approx(true_ef, abs=2.0)
    assert bi.beats.shape[1] == 4 and bi.units == "ml"
    with pytest.raises(ValueError):
        C.volume_curve(masks, lms, "teichholz")


@pytest.mark.parametrize("beats,phase,hr,fps", [(1, 0.0, 60, 30), (2, 1.7, 75, 50), (3, 4.0, 110, 40),
                                                (2, 3.14, 50, 25)])
def test_ed_es_detection_noisy_any_start(beats, phase, hr, fps):
    rng = np.random.default_rng(beats)
    T = int(round(beats * 60 / hr * fps)) + 1
    t = np.arange(T) / fps
    w = 2 * np.pi * hr / 60
    area = 2000 + 400 * np.cos(w * t + phase) + rng.normal(0, 25, T)
    ed, es = C.detect_ed_es(area, fps=fps)
    period = 60 / hr * fps
    # every detected ED sits near a true cosine maximum and every ES near a minimum
    for e in ed:
        assert np.cos(w * t[e] + phase) > 0.85, (ed, es)
    for e in es:
        assert np.cos(w * t[e] + phase) < -0.85, (ed, es)
    # true maxima inside the clip (ones within a few frames of a clip end may be missed)
    n_max = sum(1 for k in range(-1, beats + 2) if -1e-6 <= (2 * np.pi * k - phase) / w * fps <= T - 1 + 1e-6)
    assert n_max - 1 <= len(ed) <= n_max and len(ed) >= 1
    assert np.all(np.diff(ed) > 0.7 * period) and np.all(np.diff(es) > 0.7 * period)


def test_ed_es_half_sequence_and_flat():
    ed, es = C.detect_ed_es(np.linspace(1000, 600, 15) + np.random.default_rng(0).normal(0, 5, 15), fps=30)
    assert list(ed) == [0] and list(es) == [14]
    ed, es = C.detect_ed_es(np.full(20, 500.0))
    assert ed.size == 0 and es.size == 0
    assert C.pair_beats([0, 40], [20]).tolist() == [[0, 20]]
    assert C.pair_beats([30], [10]).tolist() == [[30, 10]]             # clip starting at ES
    assert C.pair_beats([0, 40], [20, 60]).tolist() == [[0, 20], [40, 60]]


def test_area_and_long_axis_units():
    m = np.zeros((2, 10, 10), np.uint8)
    m[0, :4, :5] = 1
    px, mm2 = C.lv_area(m, spacing_mm=0.5)
    assert px.tolist() == [20, 0] and mm2.tolist() == [5.0, 0.0]
    lm = np.array([[[5, 0], [2, 8], [8, 8]]], float)
    assert C.long_axis_length(lm, 0.5) == pytest.approx([4.0])
    r = C.ef_from_masks(np.zeros((5, 10, 10), np.uint8))
    assert math.isnan(r.ef_percent) and r.beats.shape == (0, 2)


def test_ef_from_contours_matches_analytic():
    t = np.arange(40)
    k = 1 - 0.25 * (1 - np.cos(2 * np.pi * t / 40)) / 2
    polys, lms = zip(*[bullet(30 * kk, 90 * (0.9 + 0.1 * kk)) for kk in k])
    vol = np.array([half_ellipsoid(30 * kk, 30 * kk, 90 * (0.9 + 0.1 * kk)) for kk in k])
    true_ef = (vol[0] - vol[20]) / vol[0] * 100
    for method in C.METHODS:
        r = C.ef_from_contours(list(polys), np.stack(lms), spacing_mm=0.3, fps=40, method=method)
        assert list(r.ed_frames) == [0, 39] and list(r.es_frames) == [20]   # 39 is one frame before ED
        assert r.ef_percent == pytest.approx(true_ef, abs=0.5)
    assert C.polygon_area(np.array([[0, 0], [4, 0], [4, 3], [0, 3]])) == 12.0
    with pytest.raises(ValueError):
        C.ef_from_contours(list(polys), np.stack(lms)[:3])


def test_clip_clinical_from_tracker_results():
    from edge_tan.runtime.tracker import FrameResult
    masks, lms, vol = beating_clip(T=40, fps=40, hr=60, phase=0.0)
    rs = [FrameResult(index=i, frame_hw=masks.shape[1:], state="track", landmarks=lms[i], mask_crop=masks[i])
          for i in range(len(masks))]
    c = C.clip_clinical(rs, spacing_mm=0.3, fps=40)
    assert c["es_frames"] == [20] and c["ed_frames"][0] == 0 and c["volume_units"] == "ml"
    assert c["beats_left_out"] == 0
    assert c["ef_percent"] == pytest.approx((vol.max() - vol.min()) / vol.max() * 100, abs=1.5)


def test_lost_frames_over_an_ed_are_filled_from_the_same_phase():
    """Five lost (NaN) frames over an ED: a straight line across the gap cuts the peak off and the
    detected ED moves (EF with it); the same phase one cycle away keeps ED and EF where they were."""
    fps, hr = 50, 75
    period = 60 / hr * fps                     # 40 frames
    t = np.arange(100)
    area = 2000 + 500 * np.cos(2 * np.pi * (t - 25) / period)   # EDs at 25, 65; ESs at 45, 85
    vol = area ** 1.5
    whole = C._ef_result("simpson", area, vol, None, None, fps, math.nan)
    gap_area, gap_vol = area.copy(), vol.copy()
    gap_area[23:28] = np.nan
    gap_vol[23:28] = np.nan
    assert C.cycle_period(gap_area, fps) == 40
    ed, _ = C.detect_ed_es(gap_area, fps=fps)
    assert min(abs(ed - 25)) <= 1
    lost = C._ef_result("simpson", gap_area, gap_vol, None, None, fps, math.nan)
    assert lost.ef_percent == pytest.approx(whole.ef_percent, abs=0.5)
    assert np.isnan(lost.volumes[23:28]).all()  # the reported curve keeps the gap
    # no clear cycle (a ramp): plain linear bridging, no period
    assert C.cycle_period(np.linspace(0, 1, 60), fps) is None


def test_a_beat_whose_ed_is_in_lost_frames_is_left_out_while_whole_beats_remain():
    """Noise over the second beat's ED: that beat's EDV would be a stand-in read from another beat's
    phase, so the clip's EF is the mean of the beats measured whole, as if the burst had not happened
    there. With a single beat there is nothing else to use: the stand-in is kept."""
    fps, period = 50, 40
    t = np.arange(120)
    area = 2000 + 500 * np.cos(2 * np.pi * t / period)       # EDs at 0, 40, 80; ESs at 20, 60, 100
    vol = area ** 1.5 * (1 - 0.1 * (t >= 50) * (t < 70))     # the second beat empties more: another EF
    whole = C._ef_result("simpson", area, vol, None, None, fps, math.nan)
    assert len(whole.beats) == 3 and abs(whole.beat_ef[1] - whole.beat_ef[0]) > 2
    gap_area, gap_vol = area.copy(), vol.copy()
    gap_area[38:43] = np.nan
    gap_vol[38:43] = np.nan
    r = C._ef_result("simpson", gap_area, gap_vol, None, None, fps, math.nan)
    assert list(r.extra["beats_over_lost_frames"]) == [False, True, False]
    assert r.ef_percent == pytest.approx(np.mean(whole.beat_ef[[0, 2]]), abs=0.3)
    assert C._left_out(r.beat_ef) == 0          # not implausible: set aside for its lost frames
    edge_area, edge_vol = area.copy(), vol.copy()    # the gap ends just before the second ES (60)
    edge_area[55:60] = np.nan
    edge_vol[55:60] = np.nan
    r = C._ef_result("simpson", edge_area, edge_vol, None, None, fps, math.nan)
    assert list(r.extra["beats_over_lost_frames"]) == [False, True, False]
    assert r.ef_percent == pytest.approx(np.mean(whole.beat_ef[[0, 2]]), abs=0.3)
    one = slice(30, 70)                         # ED 40, ES 60: one beat, its ED lost
    r1 = C._ef_result("simpson", gap_area[one], gap_vol[one], None, None, fps, math.nan)
    assert len(r1.beats) == 1 and r1.extra["beats_over_lost_frames"][0] and np.isfinite(r1.ef_percent)


def test_a_beat_with_an_implausible_ef_is_left_out_while_plausible_beats_remain():
    """A contour that collapses at one ES gives that beat an EF no heart has (95 %): the clip's EF is
    the mean of the other beats, and the summary says one beat was left out. When every beat is
    implausible, nothing is left out (the clip keeps its EF rather than losing it)."""
    fps, period = 50, 40
    t = np.arange(120)
    area = 2000 + 500 * np.cos(2 * np.pi * t / period)       # EDs at 0, 40, 80; ESs at 20, 60, 100
    vol = area ** 1.5
    whole = C._ef_result("simpson", area, vol, None, None, fps, math.nan)
    assert len(whole.beats) == 3
    broken = vol.copy()
    broken[60] = 0.05 * broken[40]                            # the second beat's ES volume collapses
    r = C._ef_result("simpson", area, broken, None, None, fps, math.nan)
    assert r.beat_ef[1] > C.MAX_BEAT_EF
    assert r.ef_percent == pytest.approx(np.mean(r.beat_ef[[0, 2]]))
    assert r.ef_percent == pytest.approx(whole.ef_percent, abs=0.5)
    assert C._left_out(r.beat_ef) == 1 and C._left_out(whole.beat_ef) == 0
    from edge_tan.runtime.qc import ef_text   # every printout says so
    assert ef_text({"ef_percent": 61.04, "beats_left_out": 1}) == "EF 61.0 % (1 implausible beat left out)"
    assert ef_text({"ef_percent": 61.04, "beats_left_out": 0}) == "EF 61.0 %"
    every = vol.copy()
    every[[20, 60, 100]] = 0.05 * vol[0]
    r = C._ef_result("simpson", area, every, None, None, fps, math.nan)
    assert (r.beat_ef > C.MAX_BEAT_EF).all() and r.ef_percent == pytest.approx(r.beat_ef.mean())
    assert C._left_out(r.beat_ef) == 0
    bi = C.biplane_ef(*[np.zeros((3, 8, 8), np.uint8)] * 2)   # no LV: no beats, NaN (not an error)
    assert np.isnan(bi.ef_percent)

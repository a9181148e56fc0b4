"""Geometry properties the tracker relies on (round trips are what keep tracking drift-free)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_tan.runtime import geometry as geo


def landmarks(draw_x, draw_y, spread):
    apex = np.array([draw_x, draw_y])
    return np.array([apex, apex + [-0.4 * spread, spread], apex + [0.45 * spread, 1.05 * spread]], np.float32)


@settings(max_examples=60, deadline=None)
@given(x=st.floats(50, 500), y=st.floats(20, 200), spread=st.floats(30, 250), ang=st.floats(-25, 25))
def test_points_round_trip_within_001px(x, y, spread, ang):
    lm = landmarks(x, y, spread)
    c = lm.mean(0)
    R = geo.similarity_about(c, ang, 1.0, np.zeros(2))
    lm = geo.transform_points(lm, R)
    tpl = geo.build_template(lm[None])
    M = geo.affine_to_template(lm, tpl)
    assert np.abs(geo.transform_points(lm, M) - tpl).max() < 1e-3
    pts = np.random.default_rng(0).uniform(0, 600, (50, 2)).astype(np.float32)
    back = geo.transform_points(geo.transform_points(pts, M), geo.invert_affine(M))
    assert np.abs(back - pts).max() < 0.01


@pytest.mark.parametrize("hw,lm", [((600, 800), [[420, 120], [330, 380], [470, 400]]),
                                   ((112, 112), [[62, 18], [42, 80], [78, 84]])])
def test_mask_round_trip_dice(hw, lm):
    lm = np.array(lm, np.float32)
    tpl = geo.build_template(lm[None])
    M = geo.affine_to_template(lm, tpl)
    th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    c = lm.mean(0)
    r = np.linalg.norm(lm[0] - c)
    mask = geo.contour_to_mask(np.stack([c[0] + 0.45 * r * np.cos(th), c[1] + 0.8 * r * np.sin(th)], 1), hw)
    win = geo.warp_image(mask.astype(np.float32), M) > 0.5
    back = geo.unwarp_mask(win, M, hw)
    dice = 2 * (back & mask).sum() / (back.sum() + mask.sum())
    assert dice >= 0.99 if hw[0] > 200 else dice >= 0.95   # a 112 px LV is upsampled ~4x into the window


def test_template_is_mean_window_shape_and_roi_expands_left_and_down():
    lm = np.array([[100, 50], [80, 150], [130, 150]], np.float32)
    x0, y0, x1, y1 = geo.roi_box(lm)
    assert x0 == pytest.approx(80 - 0.5 * 50) and y1 == pytest.approx(150 + 0.5 * 100)
    tpl = geo.build_template(np.stack([lm, lm + 10]))
    assert tpl.shape == (3, 2) and (tpl >= 0).all() and (tpl <= 223).all()


def test_degenerate_triangle_is_rejected():
    with pytest.raises(ValueError):
        geo.affine_to_template(np.array([[0, 0], [1, 1], [2, 2]], np.float32), np.eye(3, 2, dtype=np.float32))


def test_contour_resampling_is_even_and_closed():
    sq = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
    pts = geo.resample_contour(sq, 20)
    d = np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1)
    assert len(pts) == 20 and np.allclose(d, 2.0, atol=1e-4)


def test_largest_component_and_unwarp_footprint():
    m = np.zeros((50, 50), np.uint8)
    m[5:10, 5:10] = 1
    m[20:40, 20:40] = 1
    assert geo.largest_component(m).sum() == 400
    M = geo.letterbox_affine((50, 50))
    out = geo.unwarp_scores(np.ones((224, 224), np.float32), M, (50, 50))
    assert (out > 0).all()


# sha256 (first 16 hex) of OpenCV 4.6's cv::warpAffine(INTER_LINEAR, BORDER_CONSTANT 0) of _PATTERN into
# 64x64, computed once with the OS OpenCV the native runtime links (Debian 4.6.0)
_CUT_GOLDEN = [([[0.4883720930232558, 0.0, 0.0], [0.0, 0.4883720930232558, 9.767441860465116]], "61cca07685cfdd7c"),
               ([[1.7, 0.31, -20.25], [-0.2, 1.93, -15.5]], "4bb8d0dc79f7e95f"),
               ([[0.45, -0.8, 60.0], [0.7, 0.52, -10.0]], "49696fee8877e9e8")]


def _pattern():
    y, x = np.mgrid[0:90, 0:130]
    return (((x * 7 + y * 13) ^ (x * y)) & 255).astype(np.uint8)


@pytest.mark.parametrize("M,digest", _CUT_GOLDEN)
def test_window_cut_gives_the_same_bytes_on_any_opencv(M, digest):
    """The tracker's window cut is OpenCV <= 4.10's fixed-point warpAffine, byte for byte, whatever cv2 this
    is (the wheel's 5.x interpolates in float32 and differs by up to 5 grey levels): the native runtime,
    linked against the OS OpenCV, cuts the same window, so an INT8 network sees identical input."""
    import hashlib
    from edge_tan.runtime.geometry import WindowCut
    cut = WindowCut(64)
    for _ in range(2):   # buffers are reused: a second cut is the same
        w = cut(_pattern(), np.array(M))
        assert w.shape == (64, 64) and w.dtype == np.uint8
        assert hashlib.sha256(w.tobytes()).hexdigest()[:16] == digest


def test_window_cut_handles_degenerate_affines():
    from edge_tan.runtime.geometry import WindowCut
    cut = WindowCut(32)
    assert not cut(_pattern(), np.full((2, 3), np.nan)).any()                        # nothing of the frame
    far = cut(_pattern(), np.array([[1e-4, 0.0, 0.0], [0.0, 1e-4, 0.0]]))            # coordinates beyond int16
    assert far.shape == (32, 32) and far.dtype == np.uint8


def test_skew_is_the_singular_value_ratio():
    from edge_tan.runtime.tracker import skew
    for M in (np.array([[2.0, 0.3, 1.0], [-0.4, 0.7, 2.0]]), np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])):
        s = np.linalg.svd(M[:, :2], compute_uv=False)
        assert skew(M) == pytest.approx(s[0] / s[1], rel=1e-12)
    assert skew(np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]])) == float("inf")

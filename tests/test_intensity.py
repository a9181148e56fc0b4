"""Rank normalisation (edge_tan.runtime.intensity): invariant to monotone grey curves, background stays 0,
and `input_norm` travels with the model (metadata, weights, ONNX, OpenVINO, TensorRT sidecar JSON),
reads "none" for files from before it, and is applied by the tracker and the INT8 calibration set."""

import json

import cv2
import numpy as np
import pytest

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.intensity import BACKGROUND_MAX, equalize, input_normaliser
from tests.conftest import ThresholdRunner, toy_dataset, toy_metadata


@pytest.fixture(scope="module")
def phantom_frames():
    from edge_tan.synth.generate import generate_sequence
    seq = generate_sequence(7, "A4C", n_frames=3, out_size=(224, 224))
    return seq.frames


def _random_curve(rng) -> np.ndarray:
    """A random strictly monotone curve (gain x gamma x wiggle) that keeps the background dark."""
    x = np.arange(256, dtype=np.float64)
    y = ((x - BACKGROUND_MAX) / (255 - BACKGROUND_MAX)).clip(0) ** np.exp(rng.uniform(-0.5, 0.5))
    y = y + 0.05 * np.cumsum(rng.uniform(0, 1, 256)) / 256   # random monotone wiggle
    y = BACKGROUND_MAX + 1 + (y - y[BACKGROUND_MAX + 1]) / (y[-1] - y[BACKGROUND_MAX + 1]) \
        * rng.uniform(150, 252 - BACKGROUND_MAX)
    lut = np.rint(y).clip(0, 255).astype(np.uint8)
    lut[:BACKGROUND_MAX + 1] = 0
    return lut


def test_equalized_frame_invariant_to_monotone_curves(phantom_frames):
    rng = np.random.default_rng(0)
    diffs = []
    for f in phantom_frames:
        ref = equalize(f)
        assert ref.dtype == np.uint8 and ref.shape == f.shape
        assert (ref[f <= BACKGROUND_MAX] == 0).all() and (ref[f > BACKGROUND_MAX] > 0).all()
        for _ in range(5):
            g = _random_curve(rng)[f]
            d = np.abs(equalize(g).astype(np.int16) - ref)
            raw = np.abs(g.astype(np.int16) - f)[f > BACKGROUND_MAX].mean()
            diffs.append(raw)
            # equalised, only the uint8 merging of neighbouring levels is left
            assert d[f > BACKGROUND_MAX].mean() < max(1.5, 0.06 * raw) and np.percentile(d, 99) <= 8, (raw, d.mean())
        # a non-monotone change is not neutralised (the test can fail)
        shuffled = np.concatenate([[0, 1, 2], rng.permutation(np.arange(3, 256))]).astype(np.uint8)
        assert np.abs(equalize(shuffled[f]).astype(np.int16) - ref).mean() > 20
    assert min(diffs) > 3 and max(diffs) > 25   # the curves did change the raw frames, some a lot


def test_equalize_edges():
    assert not equalize(np.zeros((40, 50), np.uint8)).any()   # blank frame stays blank
    flat = np.full((40, 50), 90, np.uint8)
    flat[:, :10] = 0
    noisy = (flat + (flat > 0) * np.random.default_rng(0).integers(0, 4, flat.shape)).astype(np.uint8)
    for f in (flat, noisy):   # a flat or noise-only frame is not blown up to full contrast: stays blank
        assert not equalize(f).any()
    ramp = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (40, 1))
    assert equalize(ramp).std() > 50
    with pytest.raises(EdgeTanError):
        equalize(np.zeros((4, 4), np.float32))
    with pytest.raises(EdgeTanError, match="input_norm"):
        input_normaliser("clahe")
    f = np.arange(100, dtype=np.uint8).reshape(10, 10)
    assert input_normaliser("none")(f) is f   # "none" is exactly today's behaviour


def test_metadata_field_default_and_validation():
    md = ModelMetadata(model_name="tan")
    props = md.to_props()
    assert json.loads(props["edge_tan.input_norm"]) == "none"
    del props["edge_tan.input_norm"]   # a file from before the field
    assert ModelMetadata.from_props(props).input_norm == "none"
    md.input_norm = "equalize"
    assert ModelMetadata.from_props(json.loads(json.dumps(md.to_props()))).input_norm == "equalize"   # sidecar JSON
    bad = md.to_props()
    bad["edge_tan.input_norm"] = json.dumps("magic")
    with pytest.raises(EdgeTanError, match="input_norm"):
        ModelMetadata.from_props(bad)


def test_shipped_default_model_reads_none():
    from pathlib import Path

    from edge_tan.export.weights import read_header
    p = Path(__file__).resolve().parents[1] / "edge_tan" / "assets" / "tan_default.safetensors"
    header = read_header(p)
    if "edge_tan.input_norm" not in header:   # the model shipped before the field: unchanged behaviour
        assert ModelMetadata.from_props(header).input_norm == "none"
    else:
        assert ModelMetadata.from_props(header).input_norm in ("none", "equalize")


def test_input_norm_round_trip_weights_onnx_openvino(tmp_path):
    torch = pytest.importorskip("torch")
    from edge_tan.export.models.registry import build_model, make_metadata, model_kwargs
    from edge_tan.export.onnx_export import export_onnx
    from edge_tan.export.weights import load_weights, read_header, save_weights
    torch.manual_seed(0)
    m = build_model("tan", width=0.25).eval()
    md = make_metadata(m, "tan", model_kwargs("tan", width=0.25), size=64)
    md.input_norm = "equalize"
    save_weights(m, md, tmp_path / "w.safetensors")
    assert json.loads(read_header(tmp_path / "w.safetensors")["edge_tan.input_norm"]) == "equalize"
    m2, md2 = load_weights(tmp_path / "w.safetensors")
    assert md2.input_norm == "equalize"
    from edge_tan.targets.onnx_file import onnx_metadata
    export_onnx(m2, md2, tmp_path / "w.onnx")
    assert onnx_metadata(tmp_path / "w.onnx").input_norm == "equalize"
    pytest.importorskip("openvino")
    from edge_tan.targets.openvino import ir_metadata, onnx_to_ov, save_ir
    save_ir(onnx_to_ov(tmp_path / "w.onnx"), tmp_path / "w.xml", md2)
    assert ir_metadata(tmp_path / "w.xml").input_norm == "equalize"


def test_tracker_and_calibration_apply_input_norm(tmp_path):
    from edge_tan.runtime.tracker import Tracker
    from edge_tan.targets.calibration import dataset_windows, normalise
    from edge_tan.runtime.geometry import cut_window
    toy_dataset(tmp_path, n=2, T=4, H=80, W=96)
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 200, (80, 96)).astype(np.uint8)
    frame[:, :12] = 0
    md = toy_metadata()
    assert np.array_equal(Tracker(ThresholdRunner(md)).to_gray(frame), frame)   # "none": as before
    md_eq = toy_metadata()
    md_eq.input_norm = "equalize"
    assert np.array_equal(Tracker(ThresholdRunner(md_eq)).to_gray(frame), equalize(frame))
    plain = dataset_windows(tmp_path, md, split=None, limit=6, seed=0)
    eq = dataset_windows(tmp_path, md_eq, split=None, limit=6, seed=0)
    assert len(plain) == len(eq) > 0
    assert any(not np.allclose(a, b) for a, b in zip(plain.windows, eq.windows))
    # every INT8 calibration window is exactly a tracker input: equalise the frame, cut, normalise
    from edge_tan.dataset import list_split, load_sequence
    from edge_tan.runtime.geometry import affine_to_template, letterbox_affine
    cands = []
    for p in list_split(tmp_path, None):
        seq = load_sequence(p)
        for t in range(seq.n_frames):
            Ms = [letterbox_affine(seq.frames.shape[1:], md_eq.window)]
            if t > 0:
                Ms.append(affine_to_template(seq.landmarks[t - 1], md_eq.template_array))
            cands += [normalise(cut_window(equalize(seq.frames[t]), M, md_eq.window), md_eq) for M in Ms]
    assert all(any(np.allclose(w, c, atol=1e-5) for c in cands) for w in eq.windows)


def test_neighbour_correlation_tells_an_image_from_noise():
    """Any image is smooth at the pixel scale, i.i.d. noise is not: the real ultrasound DICOM fixture
    (600 px, every 4th pair) and a phantom frame read far above the tracker's 0.3, uniform noise ~0;
    the grid of pairs is the same figure as the full sum on a small frame."""
    from edge_tan.io.read import read_video
    from edge_tan.runtime.intensity import neighbour_correlation
    from edge_tan.runtime.tracker import TrackerConfig
    from tests.test_readers import FIXTURE
    cut = TrackerConfig().min_structure
    real = read_video(FIXTURE).frames
    assert min(neighbour_correlation(f) for f in real) > 0.7 > cut
    rng = np.random.default_rng(0)
    for shape in ((112, 112), (600, 800)):
        assert abs(neighbour_correlation(rng.integers(0, 256, shape, dtype=np.uint8))) < 0.05
    smooth = cv2.GaussianBlur(rng.normal(128, 60, (90, 100)).astype(np.float32), (0, 0), 2.0)
    g = np.clip(smooth, 0, 255).astype(np.uint8)
    a, b = g.astype(float), g.astype(float)
    across = np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]
    down = np.corrcoef(b[:-1].ravel(), b[1:].ravel())[0, 1]
    assert neighbour_correlation(g) == pytest.approx((across + down) / 2, abs=1e-9) and neighbour_correlation(g) > cut
    assert neighbour_correlation(np.full((50, 60), 7, np.uint8)) == 0.0   # flat: no correlation to speak of

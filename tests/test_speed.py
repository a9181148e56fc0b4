"""The speed work of issue 23: the bf16 precision (only where the CPU has it, never fp32 under its
label) and the tracker's window graph (normalisation, score and landmark template in-graph) giving
the same answer as the numpy path around the plain network."""

from __future__ import annotations

import numpy as np
import pytest

from edge_tan.errors import UsageError
from edge_tan.runner import Runner, window_outputs
from tests.conftest import W, export_onnx, rand_batch, tiny_metadata, tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    model, md = tiny_model()
    return model, md, export_onnx(model, md, tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="module")
def tiny_ir(tiny, tmp_path_factory):
    pytest.importorskip("openvino")
    from edge_tan.targets import openvino as tov

    return tov.save_ir(tov.onnx_to_ov(tiny[2]), tmp_path_factory.mktemp("ir") / "model.xml", tiny[1])


def _windows(n=6, seed=3):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (W, W), dtype=np.uint8) for _ in range(n)]


# ---- Runner.infer_window: the generic path ----------------------------------------------------
class _Echo(Runner):
    """Returns the normalised input as both seg channels (bg = 0): the score is the input itself."""
    backend = "echo"

    def _infer(self, x):
        n = x.shape[0]
        seg = np.concatenate([np.zeros_like(x), x], 1)
        return {"seg": seg, "landmarks": np.arange(6, dtype=np.float32)[None].repeat(n, 0),
                "view": np.zeros((n, 2), np.float32)}


def test_generic_infer_window_normalises_and_derives_score_and_landmarks():
    md = tiny_metadata()
    r = _Echo(md)
    win = _windows(1)[0]
    out = r.infer_window(win)
    want = (win.astype(np.float32) * md.input_scale - md.input_mean) / md.input_std
    assert out["score"].shape == (W, W) and np.abs(out["score"] - want).max() < 1e-5
    assert np.allclose(out["landmarks_win"], np.arange(6).reshape(3, 2) + md.template_array)
    assert out["view"].shape == (1, 2) and "seg" not in out and "landmarks" not in out
    with pytest.raises(Exception, match=r"window must be \(64, 64\)"):
        r.infer_window(np.zeros((32, 32), np.uint8))


# ---- OpenVINO window graph -------------------------------------------------------------------
def test_openvino_window_graph_matches_the_numpy_path(tiny_ir):
    from edge_tan.targets.openvino import OpenVinoRunner

    with OpenVinoRunner(tiny_ir, threads=1, fuse_window=True) as r:
        for win in _windows():
            fused = r.infer_window(win)
            generic = Runner.infer_window(r, win)
            assert set(fused) == set(generic) == {"score", "landmarks_win", "view"}
            for k in fused:
                assert fused[k].shape == generic[k].shape and fused[k].dtype == np.float32, k
                assert np.abs(fused[k] - generic[k]).max() < 1e-4, k
        assert "in-graph" in r.describe()["window_graph"]   # the report says what ran
        # the artifact's own graph is untouched: infer still gives the exported outputs
        assert set(r.infer(rand_batch(1))) == {"seg", "landmarks", "view"}
    with OpenVinoRunner(tiny_ir, threads=1, fuse_window=False) as r:
        r.infer_window(_windows(1)[0])
        assert r.describe()["window_graph"] == "numpy around the network"


def test_tracker_gives_the_same_track_with_and_without_the_window_graph(tiny_ir):
    from edge_tan.targets.openvino import OpenVinoRunner
    from edge_tan.tracker import Tracker
    from tests.conftest import toy_sequence

    frames = list(toy_sequence(T=6).frames)
    with OpenVinoRunner(tiny_ir, threads=1, fuse_window=True) as a, OpenVinoRunner(tiny_ir, threads=1) as b:
        ra, rb = Tracker(a).track(frames), Tracker(b).track(frames)
    for x, y in zip(ra, rb):
        assert x.state == y.state
        assert np.array_equal(x.mask_crop, y.mask_crop)
        assert (x.landmarks is None) == (y.landmarks is None)
        if x.landmarks is not None:
            assert np.abs(x.landmarks - y.landmarks).max() < 1e-2


def test_window_outputs_keeps_extra_outputs():
    md = tiny_metadata()
    out = {"seg": np.zeros((1, 2, W, W), np.float32), "landmarks": np.zeros((1, 6), np.float32),
           "view": np.zeros((1, 2), np.float32), "features": np.ones((1, 8), np.float32)}
    res = window_outputs(out, md)
    assert res["features"].shape == (1, 8) and res["score"].shape == (W, W)


# ---- bf16 -----------------------------------------------------------------------------------
def _fake_caps(monkeypatch, caps):
    from edge_tan.targets import openvino as tov

    real = tov.core()

    class Core:
        def __getattr__(self, k):
            return getattr(real, k)

        def get_property(self, dev, name):
            if name == "OPTIMIZATION_CAPABILITIES":
                return list(caps)
            return real.get_property(dev, name)

    monkeypatch.setattr(tov, "_CORE", Core())


def test_bf16_is_unsupported_where_the_cpu_lacks_it(tiny, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    from edge_tan.targets.build import build_artifact

    _fake_caps(monkeypatch, ["FP32", "INT8"])
    with pytest.raises(UsageError, match="unsupported: .*no native BF16"):
        build_artifact(model=str(tiny[2]), target="openvino", precision="bf16", out_dir=tmp_path)
    assert not list(tmp_path.glob("*openvino-bf16*"))   # nothing half-written


def test_bf16_artifact_refuses_to_run_as_fp32(tiny, tmp_path, monkeypatch):
    """A bf16 IR opened where BF16 is absent (copied to another machine) says so, never runs f32."""
    pytest.importorskip("openvino")
    from edge_tan.targets import openvino as tov

    md = tiny[1].__class__.from_dict({**tiny[1].to_dict(), "precision": "bf16"})
    xml = tov.save_ir(tov.onnx_to_ov(tiny[2]), tmp_path / "model.xml", md)
    _fake_caps(monkeypatch, ["FP32"])
    with pytest.raises(UsageError, match="bf16 unsupported"):
        tov.OpenVinoRunner(xml, threads=1)


def test_other_backends_report_bf16_unsupported(tiny, tmp_path):
    from edge_tan.targets.build import build_artifact

    with pytest.raises(UsageError, match="fp32 only"):
        build_artifact(model=str(tiny[2]), target="onnx", precision="bf16", out_dir=tmp_path)


def test_bf16_where_supported_runs_bf16_and_says_so(tiny, tmp_path):
    pytest.importorskip("openvino")
    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.opener import open_model
    from edge_tan.targets.openvino import bf16_support
    from tests.conftest import torch_outputs

    ok, why = bf16_support()
    if not ok:
        pytest.skip(f"this CPU: {why}")
    xml = build_artifact(model=str(tiny[2]), target="openvino", precision="bf16", out_dir=tmp_path).path
    x = rand_batch(1)
    ref = torch_outputs(tiny[0], x)
    with open_model(xml, threads=1) as r:
        assert r.metadata.precision == "bf16" and r.metadata.producer["inference_precision"] == "bf16"
        assert r.describe()["inference_precision"] == "bf16"
        out = r.infer(x)
        for k in ref:   # bf16 rounding, not fp32's 1e-4, and not garbage
            assert np.abs(out[k] - ref[k]).max() < 0.1, k

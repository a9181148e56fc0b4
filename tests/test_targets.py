"""Backends behind one Runner interface: parity with torch, metadata round-trips, INT8, cache, errors.

Uses the tiny 3-head conv net at 64x64 from conftest.py, so the file runs in seconds and does not
depend on edge_tan.export existing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_tan.runtime.errors import EdgeTanError

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from tests.conftest import export_onnx, rand_batch, tiny_metadata, tiny_model, torch_outputs  # noqa: E402

W = 64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    model, md = tiny_model()
    onnx_path = export_onnx(model, md, d / "tiny.onnx")
    return model, md, onnx_path


# ---- registry -------------------------------------------------------------------------------
def test_registry_available_and_suffixes():
    from edge_tan.runtime import registry

    assert registry.available("onnxruntime") == (True, "ok")
    ok, why = registry.available("tensorrt")
    if not ok:
        assert "not installed" in why
    assert registry.get("openvino").suffix == ".xml"
    assert registry.get("trt").suffix == ".engine"
    assert registry.backend_for_path("a/b.onnx").name == "onnxruntime"
    with pytest.raises(EdgeTanError, match="unknown backend"):
        registry.available("tflite")
    with pytest.raises(EdgeTanError, match="unknown artifact type"):
        registry.backend_for_path("x.tflite")


def test_registry_does_not_import_backends():
    import subprocess
    import sys

    code = ("import sys; from edge_tan.runtime import registry; registry.available('openvino');"
            "registry.available('onnxruntime'); registry.available('torch');"
            "print(sorted(m for m in ('openvino','onnxruntime','torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- ONNX Runtime ---------------------------------------------------------------------------
def test_ort_matches_torch_and_reads_metadata(tiny):
    from edge_tan.targets.opener import open_model

    model, md, onnx_path = tiny
    x = rand_batch(3)
    ref = torch_outputs(model, x)
    with open_model(onnx_path, "onnxruntime", threads=1) as r:
        assert r.metadata == md
        out = r.infer(x)
        assert set(out) == {"seg", "landmarks", "view"}
        for k in out:
            assert out[k].dtype == np.float32 and out[k].shape == ref[k].shape
            assert np.abs(out[k] - ref[k]).max() < 1e-4, k
        assert r.describe()["threads"] == 1


def test_runner_rejects_bad_input(tiny):
    from edge_tan.targets.onnxruntime import OrtRunner

    r = OrtRunner(tiny[2], threads=1)
    with pytest.raises(EdgeTanError, match=r"\(N, 1, 64, 64\)"):
        r.infer(np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(EdgeTanError, match="float32"):
        r.infer(np.zeros((1, 1, W, W), np.float64))
    with pytest.raises(EdgeTanError):
        r.infer(np.zeros((1, W, W), np.float32))


# ---- OpenVINO -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_ir(tiny, tmp_path_factory):
    pytest.importorskip("openvino")
    from edge_tan.targets import openvino as tov

    d = tmp_path_factory.mktemp("ir")
    md = tiny[1]
    return tov.save_ir(tov.onnx_to_ov(tiny[2]), d / "model.xml", md)


def test_openvino_matches_torch_and_metadata_round_trips(tiny, tiny_ir):
    from edge_tan.targets.openvino import OpenVinoRunner, ir_metadata

    model, md, _ = tiny
    assert ir_metadata(tiny_ir) == md
    x = rand_batch(2)
    ref = torch_outputs(model, x)
    with OpenVinoRunner(tiny_ir, threads=1) as r:
        assert r.describe()["inference_precision"] == "f32"
        assert r.config["ENABLE_CPU_PINNING"] is False   # capped threads: don't pin every worker to core 0
        for n in (1, 2):  # static batch 1 (tracker) and a lazily compiled batch of 2
            out = r.infer(x[:n])
            for k in ref:
                assert out[k].dtype == np.float32
                assert np.abs(out[k] - ref[k][:n]).max() < 1e-4, k


def test_openvino_bound_window_request_gives_the_generic_outputs(tiny_ir):
    """infer_window on the request bound once (no per-call tensors, no logit copies) returns exactly what
    the generic normalise-infer-copy path returns, and nothing it returns is overwritten by the next call."""
    from edge_tan.runtime.runner import Runner
    from edge_tan.targets.openvino import OpenVinoRunner

    rng = np.random.default_rng(3)
    with OpenVinoRunner(tiny_ir, threads=1) as r:
        W = r.metadata.window
        wins = [rng.integers(0, 256, (W, W), dtype=np.uint8) for _ in range(3)]
        got = [r.infer_window(w) for w in wins]
        assert r._bound, "the bound request was not used"
        for w, a in zip(wins, got):
            b = Runner.infer_window(r, w)
            assert set(a) == set(b)
            for k in a:
                assert np.array_equal(a[k], b[k]), k
        assert not np.array_equal(got[0]["score"], got[1]["score"])
        x = rand_batch(2)                  # a batch call in between does not rebind the tracker's request
        r.infer(x)
        again = r.infer_window(wins[0])
        for k in again:
            assert np.array_equal(again[k], got[0][k]), k


def test_ov_settings_sweep_reports_every_setting(tiny_ir):
    from edge_tan.bench.ov_settings import sweep

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (40, 48), dtype=np.uint8) for _ in range(4)]
    rows = sweep(tiny_ir, frames, rounds=2, network_runs=3, e2e_frames=4,
                 settings=[("default", {}), ("1 thread", {"threads": 1})])
    assert [r["setting"] for r in rows] == ["default", "1 thread"]
    assert rows[0]["e2e_vs_default"] == 1.0 and rows[0]["network_vs_default"] == 1.0
    for r in rows:
        assert r["rounds"] == 2 and r["network_ms"] > 0 and r["e2e_ms"] > 0
        assert r["network_ms_range"][0] <= r["network_ms"] <= r["network_ms_range"][1]
    assert rows[1]["compiled"]["INFERENCE_NUM_THREADS"] == "1"


def test_openvino_compiled_model_cache_dir(tiny_ir, tmp_path):
    from edge_tan.targets.openvino import OpenVinoRunner

    with OpenVinoRunner(tiny_ir, threads=1, cache_dir=tmp_path / "ovcache") as r:
        r.infer(rand_batch(1))
    assert any((tmp_path / "ovcache").iterdir())


def test_torch_runner_from_weights_file(tmp_path):
    from edge_tan.export.weights import load_model, save_weights
    from edge_tan.targets.opener import open_model

    module, md = load_model("tan", size=W)
    p = tmp_path / "w.safetensors"
    save_weights(module, md, p)
    x = rand_batch(1)
    with open_model(p, "torch", threads=1) as r:
        assert r.metadata.window == W and r.describe()["backend"] == "torch"
        out = r.infer(x)
    with torch.inference_mode():
        seg = module(torch.from_numpy(x))[0].numpy()
    assert np.abs(out["seg"] - seg).max() < 1e-5


def test_openvino_throughput_queue_keeps_order(tiny, tiny_ir):
    from edge_tan.targets.openvino import OpenVinoRunner

    model, _, _ = tiny
    xs = [rand_batch(1, seed=s) for s in range(6)]
    with OpenVinoRunner(tiny_ir, hint="THROUGHPUT", streams=2, threads=2) as r:
        outs = r.infer_many(xs)
    for x, o in zip(xs, outs):
        ref = torch_outputs(model, x)
        assert np.abs(o["landmarks"] - ref["landmarks"]).max() < 1e-4


def test_openvino_ir_errors(tiny_ir, tmp_path):
    from edge_tan.targets.openvino import OpenVinoRunner

    xml = tmp_path / "m.xml"
    xml.write_bytes(Path(tiny_ir).read_bytes())
    with pytest.raises(EdgeTanError, match=r"\.bin missing"):
        OpenVinoRunner(xml)
    (tmp_path / "m.bin").write_bytes(b"\0" * 10)
    with pytest.raises(EdgeTanError, match="cannot"):
        OpenVinoRunner(xml)
    bad = tmp_path / "bad.xml"
    bad.write_text("hello")
    bad.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(EdgeTanError, match="not an OpenVINO IR"):
        OpenVinoRunner(bad)


# ---- build / cache --------------------------------------------------------------------------
def test_build_onnx_cache_hit_does_not_rebuild(tiny, tmp_path, monkeypatch):
    from edge_tan.targets import build
    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.onnx_file import onnx_metadata

    out = tmp_path / "art"
    b1 = build_artifact(model=str(tiny[2]), target="onnx", out_dir=out)
    p1 = b1.path
    assert not b1.cached and p1.name == "model.onnx" and (p1.parent / "build.json").is_file()
    md = onnx_metadata(p1)
    assert md.precision == "fp32" and md.producer["onnx"] and md.template == tiny[1].template
    before = (p1.read_bytes(), p1.stat().st_mtime_ns)

    def rebuilt(*a, **k):
        raise AssertionError("a cache hit ran an export")
    from edge_tan.targets import onnx_file
    monkeypatch.setattr(build, "_export_onnx", rebuilt)
    monkeypatch.setattr(onnx_file, "restamp_onnx", rebuilt)
    b2 = build_artifact(model=str(tiny[2]), target="onnx", out_dir=out)
    p2 = b2.path
    assert b2.cached and p2 == p1 and (p2.read_bytes(), p2.stat().st_mtime_ns) == before
    monkeypatch.undo()
    assert not [d for d in out.iterdir() if d.name.startswith(".")]   # no temp dirs left behind
    b3 = build_artifact(model=str(tiny[2]), target="onnx", out_dir=out, force=True)
    assert b3.path == p1 and not b3.cached


def test_build_openvino_fp32_fp16(tiny, tmp_path):
    pytest.importorskip("openvino")
    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.opener import open_model

    model, md, onnx_path = tiny
    x = rand_batch(1)
    ref = torch_outputs(model, x)
    for prec, tol in (("fp32", 1e-4), ("fp16", 2e-2)):
        xml = build_artifact(model=str(onnx_path), target="openvino", precision=prec, out_dir=tmp_path).path
        assert xml.suffix == ".xml" and xml.with_suffix(".bin").is_file()
        with open_model(xml.parent, threads=1) as r:   # a build folder opens as its artifact
            assert r.metadata.precision == prec and r.metadata.producer["openvino"]
            out = r.infer(x)
            for k in ref:
                assert np.abs(out[k] - ref[k]).max() < tol, (prec, k)
    # the fp32 ONNX was exported once and shared by both IR builds
    assert len(list(tmp_path.glob("tiny-onnx-fp32-*"))) == 1


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    from tests.conftest import toy_dataset

    root = tmp_path_factory.mktemp("toyds")
    toy_dataset(root, n=4, T=6, H=80, W=96)
    return root


def test_calibration_windows_follow_the_tracker(toy_data):
    from edge_tan.targets.calibration import dataset_windows

    md = tiny_metadata()
    cs = dataset_windows(toy_data, md, "train", limit=20)
    assert 0 < len(cs) <= 20 and "letterbox" in cs.kinds and "track" in cs.kinds
    assert all(w.shape == (1, 1, W, W) and w.dtype == np.float32 for w in cs.windows)
    # normalised like the tracker: black border -> (0 * scale - mean) / std
    assert np.isclose(cs.windows[0].min(), (0 - md.input_mean) / md.input_std)
    # a window warped with the previous frame's landmarks still contains most of the LV
    assert np.mean([m.sum() > 0.02 * W * W for m, k in zip(cs.masks, cs.kinds) if k == "track"]) > 0.8


@pytest.mark.parametrize("acc", [False, True])
def test_build_openvino_int8(tiny, toy_data, tmp_path, acc):
    pytest.importorskip("nncf")
    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.opener import open_model

    xml = build_artifact(model=str(tiny[2]), target="openvino", precision="int8", out_dir=tmp_path,
                         calib=toy_data, accuracy_control=acc, max_drop=0.05, calib_limit=24).path
    info = json.loads((xml.parent / "build.json").read_text())
    q = info["quantization"]
    assert q["calibration_windows"] > 0 and q["accuracy_control"] is acc
    assert set(q["check_vs_fp32"]) >= {"seg_dice_vs_fp32", "landmarks_abs_diff_px", "view_agreement"}
    with open_model(xml, threads=1) as r:
        assert r.metadata.precision == "int8" and "quantization" in r.metadata.producer
        out = r.infer(rand_batch(2))
        assert out["seg"].shape == (2, 2, W, W) and np.isfinite(out["seg"]).all()
    import openvino as ov
    ops = {o.get_type_name() for o in ov.Core().read_model(str(xml)).get_ordered_ops()}
    assert "FakeQuantize" in ops


def test_build_rejects_bad_requests(tiny, tmp_path, monkeypatch):
    from edge_tan.targets import build

    with pytest.raises(EdgeTanError, match="fp32 only"):
        build.build_artifact(model=str(tiny[2]), target="onnx", precision="fp16", out_dir=tmp_path)
    with pytest.raises(EdgeTanError, match="--calib"):
        build.build_artifact(model=str(tiny[2]), target="openvino", precision="int8", out_dir=tmp_path)
    with pytest.raises(EdgeTanError, match="unknown target"):
        build.build_artifact(model=str(tiny[2]), target="tflite", out_dir=tmp_path)
    with pytest.raises(EdgeTanError, match="not found"):
        build.build_artifact(model=str(tmp_path / "nope.safetensors"), out_dir=tmp_path)
    from edge_tan.runtime import defaults
    monkeypatch.setattr(defaults, "default_weights_path", lambda: tmp_path / "absent.safetensors")
    with pytest.raises(EdgeTanError, match="default TAN weights are missing"):
        build.build_artifact(model="default", out_dir=tmp_path)


def test_open_model_integrity_errors(tmp_path):
    pytest.importorskip("onnxruntime")
    from edge_tan.targets.opener import open_model

    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"this is not protobuf at all" * 10)
    with pytest.raises(EdgeTanError, match="not an ONNX model"):
        open_model(bad)
    with pytest.raises(EdgeTanError, match="model file not found"):
        open_model(tmp_path / "missing.xml")
    with pytest.raises(EdgeTanError, match="folder without build.json"):
        open_model(tmp_path)
    with pytest.raises(EdgeTanError, match="openvino artifact; backend 'onnxruntime' needs .onnx"):
        (tmp_path / "m.xml").write_text("<net/>")
        open_model(tmp_path / "m.xml", "onnxruntime")
    empty = tmp_path / "e.xml"
    empty.write_bytes(b"")
    with pytest.raises(EdgeTanError, match="empty file"):
        open_model(empty)
    with pytest.raises(EdgeTanError, match="unknown artifact type"):
        open_model(bad.rename(tmp_path / "x.tflite"))
    plain = tmp_path / "plain.onnx"
    m = onnx.load(str(export_onnx(*tiny_model(), tmp_path / "p.onnx")))
    del m.metadata_props[:]
    onnx.save(m, str(plain))
    with pytest.raises(EdgeTanError, match="no edge-tan metadata"):
        open_model(plain)


def test_registered_tan_exports_and_matches_torch(tmp_path):
    """The real TAN (random init) through the export registry at a small window."""
    from edge_tan.export.weights import load_model
    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.opener import open_model

    p = build_artifact(model="tan", target="onnx", out_dir=tmp_path, window=64).path
    module, _ = load_model("tan", size=64)
    from edge_tan.export.torch_ref import TorchRunner

    x = rand_batch(1)
    with open_model(p, threads=2) as r, TorchRunner(module, r.metadata, threads=2) as t:
        assert r.metadata.window == 64 and r.metadata.model_name == "tan"
        a, b = r.infer(x), t.infer(x)
        for k in b:
            assert np.abs(a[k] - b[k]).max() < 1e-3 * max(1.0, np.abs(b[k]).max()), k


def test_torch_cuda_runner(tiny):
    from edge_tan.export.torch_cuda import TorchCudaRunner

    model, md, _ = tiny
    if not torch.cuda.is_available():
        with pytest.raises(EdgeTanError, match="no CUDA GPU"):
            TorchCudaRunner(model, md)
        return
    x = rand_batch(2)
    ref = torch_outputs(model, x)
    for prec, graph, tol in (("fp32", False, 1e-4), ("fp32", True, 1e-4), ("fp16", True, 2e-2)):
        with TorchCudaRunner(model, md, precision=prec, cuda_graph=graph) as r:
            assert "sm_" in r.describe()["compute_capability"]
            for n in (1, 2, 1):   # batch 1 twice: second call replays the captured graph
                out = r.infer(x[:n])
                for k in ref:
                    assert out[k].dtype == np.float32
                    assert np.abs(out[k] - ref[k][:n]).max() < tol, (prec, graph, k)
    assert next(model.parameters()).device.type == "cpu"   # caller's module untouched


def test_openvino_many_batch_sizes_fall_back_to_dynamic(tiny, tiny_ir):
    from edge_tan.targets.openvino import OpenVinoRunner

    model = tiny[0]
    with OpenVinoRunner(tiny_ir, threads=1) as r:
        for n in (1, 2, 3, 4, 5, 6):
            x = rand_batch(n, seed=n)
            assert np.abs(r.infer(x)["seg"] - torch_outputs(model, x)["seg"]).max() < 1e-4
        assert sorted(k for k in r._compiled if k is not None) == [1, 2, 3, 4] and None in r._compiled

"""TensorRT build/run control flow against tests/fake_tensorrt.py (a TEST DOUBLE, not TensorRT).

These tests prove which API calls edge-tan makes (flags, profiles, timing cache, DLA, version
compatibility) for TensorRT 8.6- and 10.x-style APIs, that the sidecar is written and checked, and
that the runner's CUDA buffer plumbing returns what ONNX Runtime returns. They say nothing about
real TensorRT engines; when real TensorRT is absent, reports must say "not installed".
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from edge_tan.runtime.errors import EdgeTanError

from tests import fake_tensorrt as fake
from tests.conftest import export_onnx, rand_batch, tiny_model

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    model, md = tiny_model()
    return export_onnx(model, md, tmp_path_factory.mktemp("trt") / "tiny.onnx"), md


def calls(obj, method=None):
    return [c for c in fake.CALLS if c[0] == obj and (method is None or c[1] == method)]


def test_absent_tensorrt_reads_not_installed(monkeypatch, tmp_path):
    from edge_tan.runtime import registry
    from edge_tan.targets import tensorrt as ttrt
    from edge_tan.targets.opener import open_model

    monkeypatch.setitem(sys.modules, "tensorrt", None)   # import tensorrt -> ImportError
    with pytest.raises(EdgeTanError, match="TensorRT is not installed"):
        ttrt._trt()
    assert registry.available("tensorrt") == (False, "tensorrt is not installed")
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"x")
    with pytest.raises(EdgeTanError, match="not installed"):
        open_model(eng, "tensorrt")


@pytest.mark.parametrize("version", ["8.6.1", "10.3.0"])
def test_build_fp16_timing_cache_version_compat(monkeypatch, tmp_path, tiny_onnx, version):
    from edge_tan.targets import tensorrt as ttrt

    trt, _ = fake.install(monkeypatch, version)
    onnx_path, md = tiny_onnx
    tc = tmp_path / "timing.cache"
    opts = ttrt.BuildOptions(precision="fp16", timing_cache=str(tc), version_compatible=True,
                             hardware_compatibility="AMPERE_PLUS", max_batch=4, workspace_mb=256)
    eng = ttrt.build_engine(onnx_path, tmp_path / "m.engine", md, opts)
    flags = [c[2] for c in calls("config", "set_flag")]
    assert trt.BuilderFlag.FP16 in flags and trt.BuilderFlag.VERSION_COMPATIBLE in flags
    assert trt.BuilderFlag.INT8 not in flags
    assert calls("builder", "create_network")[0][2] == (1 if version.startswith("8") else 0)
    assert calls("config", "set_memory_pool_limit")[0][2:] == (trt.MemoryPoolType.WORKSPACE, 256 << 20)
    assert calls("config", "set:hardware_compatibility_level")[0][2] == trt.HardwareCompatibilityLevel.AMPERE_PLUS
    assert calls("profile", "set_shape")[0][2:] == ("image", (1, 1, 64, 64), (1, 1, 64, 64), (4, 1, 64, 64))
    assert calls("config", "create_timing_cache")[0][2] == b""      # no cache yet
    assert tc.read_bytes() == b"fake-timing-cache:+"                # saved after the build
    side = json.loads((tmp_path / "m.engine.json").read_text())
    assert side["tensorrt"] == version and side["sm"] == "sm_87" and side["build"]["precision"] == "fp16"
    assert side["metadata"] == md.to_props()
    assert not (tmp_path / "m.engine").read_bytes().startswith(b"{")   # no header glued onto the engine
    # written via temp file + rename: only the finished files are left, no ".m.engine.*" leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json", "timing.cache"]
    # second build reuses the saved timing cache
    fake.CALLS.clear()
    ttrt.build_engine(onnx_path, tmp_path / "m2.engine", md, opts)
    assert calls("config", "create_timing_cache")[0][2] == b"fake-timing-cache:+"
    # version-compatible engines need host code allowed at load time
    fake.CALLS.clear()
    with ttrt.TensorRTRunner(eng) as r:
        assert calls("runtime", "set:engine_host_code_allowed") == [("runtime", "set:engine_host_code_allowed", True)]
        assert r.describe()["api"] == ("v2" if version.startswith("8") else "v3")


def test_build_int8_entropy_calibrator_and_dla(monkeypatch, tmp_path, tiny_onnx):
    from edge_tan.targets import tensorrt as ttrt

    trt, rt = fake.install(monkeypatch, "8.6.1")
    onnx_path, md = tiny_onnx
    with pytest.raises(EdgeTanError, match="DLA core 0 requested but this device has 0"):
        ttrt.build_engine(onnx_path, tmp_path / "x.engine", md, ttrt.BuildOptions(precision="fp16", dla_core=0))
    monkeypatch.setattr(fake.Builder, "num_DLA_cores", 2)
    with pytest.raises(EdgeTanError, match="FP16 or INT8"):
        ttrt.build_engine(onnx_path, tmp_path / "x.engine", md, ttrt.BuildOptions(dla_core=1))
    with pytest.raises(EdgeTanError, match="Q/DQ ONNX or calibration windows"):
        ttrt.build_engine(onnx_path, tmp_path / "x.engine", md, ttrt.BuildOptions(precision="int8"))
    fake.CALLS.clear()
    windows = [rand_batch(1, seed=s) for s in range(20)]
    ttrt.build_engine(onnx_path, tmp_path / "q.engine", md, ttrt.BuildOptions(precision="int8", dla_core=1),
                      calib_windows=windows)
    flags = [c[2] for c in calls("config", "set_flag")]
    assert {trt.BuilderFlag.INT8, trt.BuilderFlag.FP16, trt.BuilderFlag.GPU_FALLBACK} <= set(flags)
    assert calls("config", "set:default_device_type")[0][2] == trt.DeviceType.DLA
    assert calls("config", "set:DLA_core")[0][2] == 1
    assert calls("calibrator", "batches")[0][2:] == (2, 8)   # 20 windows, batch 8 -> 2 full batches
    assert calls("profile", "set_shape")[0][2:] == ("image", (1, 1, 64, 64), (1, 1, 64, 64), (1, 1, 64, 64))
    assert (tmp_path / "q.engine.calib").read_bytes() == b"fake-calib-cache"
    side = json.loads((tmp_path / "q.engine.json").read_text())
    assert side["build"]["int8_mode"] == "entropy-calibrator" and side["build"]["dla_core"] == 1


def test_qdq_onnx_needs_no_calibrator(monkeypatch, tmp_path, tiny_onnx):
    import onnx
    from onnx import helper

    from edge_tan.targets import tensorrt as ttrt

    fake.install(monkeypatch, "10.3.0")
    onnx_path, md = tiny_onnx
    m = onnx.load(str(onnx_path))   # mark it as explicitly quantised (a real Q/DQ pair on the input)
    g = m.graph
    g.initializer.extend([helper.make_tensor("s", onnx.TensorProto.FLOAT, [], [0.05]),
                          helper.make_tensor("z", onnx.TensorProto.INT8, [], [0])])
    first = g.node[0]
    g.node.insert(0, helper.make_node("QuantizeLinear", ["image", "s", "z"], ["image_q"]))
    g.node.insert(1, helper.make_node("DequantizeLinear", ["image_q", "s", "z"], ["image_dq"]))
    first.input[0] = "image_dq"
    qdq = tmp_path / "qdq.onnx"
    onnx.save(m, str(qdq))
    ttrt.build_engine(qdq, tmp_path / "q.engine", md, ttrt.BuildOptions(precision="int8"))
    assert not calls("config", "set:int8_calibrator")
    assert json.loads((tmp_path / "q.engine.json").read_text())["build"]["int8_mode"] == "explicit-qdq"


@pytest.mark.parametrize("version,graph", [("8.6.1", False), ("10.3.0", False), ("10.3.0", True)])
def test_runner_outputs_equal_onnxruntime(monkeypatch, tmp_path, tiny_onnx, version, graph):
    from edge_tan.targets import tensorrt as ttrt
    from edge_tan.targets.onnxruntime import OrtRunner

    _, rt = fake.install(monkeypatch, version)
    onnx_path, md = tiny_onnx
    eng = ttrt.build_engine(onnx_path, tmp_path / "m.engine", md, ttrt.BuildOptions(max_batch=4))
    ref = OrtRunner(onnx_path, threads=1)
    with ttrt.TensorRTRunner(eng, cuda_graph=graph) as r:
        assert r.metadata == md
        for n in (1, 3, 1, 1):
            x = rand_batch(n, seed=n + 10 * len(fake.CALLS))
            out, want = r.infer(x), ref.infer(x)
            assert set(out) == set(want)
            for k in want:
                assert out[k].dtype == np.float32 and out[k].shape == want[k].shape
                np.testing.assert_allclose(out[k], want[k], atol=1e-6)
        with pytest.raises(EdgeTanError, match="batches of 1..4"):
            r.infer(rand_batch(5))
        with pytest.raises(EdgeTanError, match="float32"):
            r.infer(x.astype(np.float64))
        api = "execute_async_v2" if version.startswith("8") else "execute_async_v3"
        assert calls("context", api)
    if graph:
        assert rt.graph_launches >= 1   # later batch-1 calls replayed the captured graph
    assert rt.freed > 0


def test_compatibility_mismatch_message(monkeypatch, tmp_path, tiny_onnx):
    from edge_tan.targets import tensorrt as ttrt

    fake.install(monkeypatch, "10.3.0", cc=(8, 7))
    onnx_path, md = tiny_onnx
    eng = ttrt.build_engine(onnx_path, tmp_path / "m.engine", md)
    fake.install(monkeypatch, "10.8.0", cc=(9, 0))
    with pytest.raises(EdgeTanError, match=r"engine built with TensorRT 10\.3 on sm_87; this is 10\.8 on sm_90: rebuild it"):
        ttrt.TensorRTRunner(eng)
    # same version and GPU but the engine bytes were swapped
    fake.install(monkeypatch, "10.3.0", cc=(8, 7))
    eng.write_bytes(eng.read_bytes() + b"x")
    with pytest.raises(EdgeTanError, match="do not match its sidecar"):
        ttrt.TensorRTRunner(eng)
    (tmp_path / "m.engine.json").unlink()
    with pytest.raises(EdgeTanError, match="sidecar m.engine.json missing"):
        ttrt.TensorRTRunner(eng)


def test_compatibility_rules():
    from edge_tan.targets.tensorrt import compatibility_problem

    side = {"tensorrt": "10.3.0", "sm": "sm_87", "build": {}}
    assert compatibility_problem(side, "10.3.0", "sm_87") is None
    assert "rebuild" in compatibility_problem(side, "10.3.1", "sm_87")
    vc = {"tensorrt": "10.3.0", "sm": "sm_87", "build": {"version_compatible": True,
                                                           "hardware_compatibility": "AMPERE_PLUS"}}
    assert compatibility_problem(vc, "10.8.0", "sm_90") is None
    assert compatibility_problem(vc, "10.2.0", "sm_87") is not None
    assert compatibility_problem(vc, "10.8.0", "sm_75") is not None


def _gpu_count() -> int:
    try:
        rt = fake._real_cudart()
        err, n = rt.cudaGetDeviceCount()
        return int(n) if int(err) == 0 else 0
    except Exception:  # noqa: BLE001 - no cuda-python or no driver
        return 0


@pytest.mark.skipif(_gpu_count() == 0, reason="needs cuda-python and an NVIDIA GPU")
@pytest.mark.parametrize("version", ["8.6.1", "10.3.0"])
def test_runner_with_real_cuda_buffers(monkeypatch, tmp_path, tiny_onnx, version):
    """Fake TensorRT engine, REAL cuda-python buffers/stream: checks pinned host <-> device plumbing."""
    from edge_tan.targets import tensorrt as ttrt
    from edge_tan.targets.onnxruntime import OrtRunner

    fake.install(monkeypatch, version, real_cuda=True)
    onnx_path, md = tiny_onnx
    eng = ttrt.build_engine(onnx_path, tmp_path / "m.engine", md, ttrt.BuildOptions(max_batch=4))
    side = json.loads((tmp_path / "m.engine.json").read_text())
    assert side["sm"].startswith("sm_") and "Fake" not in side["gpu"]
    ref = OrtRunner(onnx_path, threads=1)
    with ttrt.TensorRTRunner(eng) as r:
        for n in (1, 4, 2, 1):
            x = rand_batch(n, seed=n)
            out, want = r.infer(x), ref.infer(x)
            for k in want:
                np.testing.assert_allclose(out[k], want[k], atol=1e-6)


def test_build_artifact_tensorrt_int8_qdq_end_to_end(monkeypatch, tmp_path, tiny_onnx):
    """build_artifact -> NNCF Q/DQ ONNX -> (fake) engine + sidecar -> runner, all through the cache."""
    pytest.importorskip("nncf")
    from tests.conftest import toy_dataset

    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.opener import open_model

    fake.install(monkeypatch, "10.3.0")
    onnx_path, md = tiny_onnx
    ds = tmp_path / "ds"
    toy_dataset(ds, n=3, T=5, H=72, W=80)
    out = tmp_path / "art"
    built = build_artifact(model=str(onnx_path), target="tensorrt", precision="int8", out_dir=out, calib=ds,
                           calib_limit=12, options={"max_batch": 2})
    eng = built.path
    assert built.cached is False
    assert eng.name == "model.engine" and (eng.parent / "model.engine.json").is_file()
    assert (eng.parent / "model.qdq.onnx").is_file()
    side = json.loads((eng.parent / "model.engine.json").read_text())
    assert side["build"]["int8_mode"] == "explicit-qdq" and side["build"]["max_batch"] == 2
    assert not calls("config", "set:int8_calibrator")
    assert list(out.glob("tensorrt-timing-sm_87.cache"))          # per-GPU timing cache shared in out_dir
    with open_model(eng) as r:
        assert r.metadata.precision == "int8"
        out1 = r.infer(rand_batch(2))
        assert out1["seg"].shape == (2, 2, 64, 64) and np.isfinite(out1["seg"]).all()
    fake.CALLS.clear()
    again = build_artifact(model=str(onnx_path), target="tensorrt", precision="int8", out_dir=out, calib=ds,
                           calib_limit=12, options={"max_batch": 2})
    assert again.path == eng and again.cached and not calls("builder")                    # cache hit: nothing rebuilt
    # another GPU gets another cache key (engines are per GPU)
    fake.install(monkeypatch, "10.3.0", cc=(9, 0))
    other = build_artifact(model=str(onnx_path), target="tensorrt", precision="fp16", out_dir=out).path
    assert other.parent != eng.parent


def test_failed_build_leaves_nothing(monkeypatch, tmp_path, tiny_onnx):
    from edge_tan.targets import tensorrt as ttrt

    fake.install(monkeypatch, "10.3.0")
    monkeypatch.setattr(fake.Builder, "build_serialized_network", lambda self, n, c: None)
    with pytest.raises(EdgeTanError, match="engine build failed"):
        ttrt.build_engine(tiny_onnx[0], tmp_path / "m.engine", tiny_onnx[1])
    assert list(tmp_path.iterdir()) == []
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(EdgeTanError, match="TensorRT cannot parse bad.onnx"):
        ttrt.build_engine(bad, tmp_path / "m.engine", tiny_onnx[1])

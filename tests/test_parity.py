"""`edge-tan parity`: torch vs ONNX Runtime vs OpenVINO agree on a tiny model, and a deliberately
perturbed backend (noise on its logits, or one ONNX weight changed) fails with exit code 1.

The tiny net (conftest.darknet) is a real conv net (random small branch) around a darkness detector,
so the tracker locks onto the toy LV and the closed loop is meaningful, at 64x64 so the file runs in
seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edge_tan.bench import parity as P  # noqa: E402
from edge_tan.bench import parity_checks as PC  # noqa: E402
from tests.conftest import darknet, darknet_metadata, export_onnx, toy_dataset, toy_sequence  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("parity")
    model, md = darknet(), darknet_metadata()
    onnx_path = export_onnx(model, md, d / "tiny.onnx")
    xml = None
    try:
        from edge_tan.targets.openvino import onnx_to_ov, save_ir
        xml = save_ir(onnx_to_ov(onnx_path), d / "tiny.xml", md)
    except ImportError:
        pass
    return model, md, onnx_path, xml, d


def opener(tiny, onnx_override=None):
    from edge_tan.targets.onnxruntime import OrtRunner
    _, _, onnx_path, xml, _ = tiny

    def open_fn(backend, precision):
        if backend == "onnxruntime":
            return OrtRunner(onnx_override or onnx_path, threads=1)
        if backend == "openvino":
            from edge_tan.targets.openvino import OpenVinoRunner
            return OpenVinoRunner(xml, threads=1)
        raise AssertionError(backend)
    return open_fn


def run(tiny, backends="torch,onnxruntime,openvino", precision="fp32", wrap=None, onnx_override=None, clips=None):
    from edge_tan.export.torch_ref import TorchRunner
    model, md, *_ = tiny
    reqs = P.parse_requests(backends, precision)
    tols = {p: PC.tolerances_for(p) for p in {r.precision for r in reqs}}
    clips = clips or [toy_sequence("a", T=10, seed=0), toy_sequence("b", T=8, seed=3)]
    return P.run_parity(clips, reqs, opener(tiny, onnx_override), TorchRunner(model, md, threads=1), tols, wrap=wrap)


def rows(report):
    return {(r["backend"], r["precision"]): r for r in report["rows"]}


def test_fp32_backends_pass(tiny):
    rep = run(tiny)
    r = rows(rep)
    assert r[("torch", "fp32")]["status"] == "reference"
    for b in ("onnxruntime", "openvino"):
        row = r[(b, "fp32")]
        assert row["status"] == "pass", row["reason"]
        s = row["summary"]
        assert s["logit_seg_max_abs"] < 1e-3   # same network, same inputs: float noise only
        assert s["gt_dice_drop_points"] is not None and abs(s["gt_dice_drop_points"]) < 0.5
        assert all(c["pass"] in (True, None) for c in row["checks"].values())
    assert rep["passed"] and rep["exit_code"] == 0 and rep["compared"] == 2
    # the tracker really tracked the toy LV (otherwise parity is vacuous)
    assert rep["clips"][0]["reference_gt"]["dice"] > 0.7 and rep["clips"][0]["reference_tracked"] > 0.9


def test_noise_on_logits_fails(tiny):
    wrap = lambda b, p, rn: P.PerturbedRunner(rn, sigma=2.0) if b == "openvino" else rn  # noqa: E731
    rep = run(tiny, wrap=wrap)
    r = rows(rep)
    assert r[("onnxruntime", "fp32")]["status"] == "pass"
    bad = r[("openvino", "fp32")]
    assert bad["status"] == "fail"
    assert bad["checks"]["open_dice"]["pass"] is False and bad["checks"]["open_landmarks"]["pass"] is False
    assert rep["exit_code"] == 1 and not rep["passed"]


def test_one_changed_onnx_weight_fails(tiny):
    model, md, onnx_path, _, d = tiny
    m = onnx.load(str(onnx_path))
    from onnx import numpy_helper
    for i, init in enumerate(m.graph.initializer):
        a = numpy_helper.to_array(init)
        if a.ndim == 4 and a.shape[0] == 2:      # the seg branch conv: one weight changed
            a = a.copy()
            a.flat[0] += 3.0
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, init.name))
            break
    else:
        pytest.fail("seg conv not found")
    bad = d / "bad.onnx"
    onnx.save(m, str(bad))
    rep = run(tiny, backends="onnxruntime", onnx_override=bad)
    row = rows(rep)[("onnxruntime", "fp32")]
    assert row["status"] == "fail" and row["summary"]["logit_seg_max_abs"] > 0.01
    assert rep["exit_code"] == 1


def test_unavailable_backend_is_not_passed(tiny, monkeypatch):
    from edge_tan.runtime import registry
    real = registry.available
    monkeypatch.setattr(registry, "available",
                        lambda n: (False, "tensorrt is not installed") if registry.canonical(n) == "tensorrt" else real(n))
    rep = run(tiny, backends="onnxruntime,tensorrt")
    r = rows(rep)[("tensorrt", "fp32")]
    assert r["status"] == "unavailable" and "not installed" in r["reason"]
    assert rep["exit_code"] == 0
    rep = run(tiny, backends="onnxruntime,tensorrt!")   # explicitly required -> fails the run
    assert rep["exit_code"] == 1
    from edge_tan.bench.report import parity_markdown
    md = parity_markdown(rep)
    assert "— unavailable" in md and "✅ pass" not in md.split("tensorrt")[1].splitlines()[0]


def test_nothing_compared_is_not_a_pass(tiny, monkeypatch):
    """Only the reference and a missing backend: nothing was checked, so the run must not pass."""
    from edge_tan.runtime import registry
    real = registry.available
    monkeypatch.setattr(registry, "available",
                        lambda n: (False, "tensorrt is not installed") if registry.canonical(n) == "tensorrt" else real(n))
    rep = run(tiny, backends="torch,tensorrt")
    assert rep["compared"] == 0 and not rep["passed"] and rep["exit_code"] == 1
    assert rows(rep)[("tensorrt", "fp32")]["status"] == "unavailable"


def test_required_backend_fails_when_unsupported(tiny):
    """`!` fails the run for an unsupported precision as well as for a missing backend."""
    from edge_tan.runtime.errors import UsageError

    def open_fn(b, p):
        if p == "fp16":
            raise UsageError("the onnx target is fp32-only")
        return opener(tiny)(b, p)
    from edge_tan.export.torch_ref import TorchRunner
    model, md, *_ = tiny
    clips = [toy_sequence("a", T=6, seed=0)]

    def go(backends):
        reqs = P.parse_requests(backends, "fp32,fp16")
        return P.run_parity(clips, reqs, open_fn, TorchRunner(model, md, threads=1),
                            {p: PC.tolerances_for(p) for p in ("fp32", "fp16")})
    rep = go("onnxruntime")
    assert rows(rep)[("onnxruntime", "fp16")]["status"] == "unsupported" and rep["exit_code"] == 0
    rep = go("onnxruntime!")
    assert rows(rep)[("onnxruntime", "fp16")]["status"] == "unsupported" and rep["exit_code"] == 1


@pytest.mark.parametrize("unavailable,msg,status", [
    (True, "tensorrt is not installed", "unavailable"),
    (True, "torch-cuda backend: no CUDA GPU is visible to torch", "unavailable"),
    (False, "OpenCV cannot write .mp4 video here (codec mp4v unavailable)", "error"),
    (False, "engine built with TensorRT 10.3 on sm_87; this is 10.8 on sm_90: rebuild it", "error"),
])
def test_only_an_absent_backend_reads_unavailable(tiny, unavailable, msg, status):
    """BackendUnavailable (package, device or driver absent) is "unavailable"; any other open error,
    whatever its wording, is an error row."""
    from edge_tan.runtime.errors import BackendUnavailable, EdgeTanError
    from edge_tan.export.torch_ref import TorchRunner

    def open_fn(b, p):
        raise (BackendUnavailable if unavailable else EdgeTanError)(msg)
    model, md, *_ = tiny
    rep = P.run_parity([toy_sequence(T=4)], P.parse_requests("onnxruntime", "fp32"), open_fn,
                       TorchRunner(model, md), {"fp32": PC.tolerances_for("fp32")})
    assert rep["rows"][0]["status"] == status and rep["exit_code"] == 1


def test_open_error_is_a_failure_row(tiny):
    def open_fn(b, p):
        raise RuntimeError("engine exploded")
    from edge_tan.export.torch_ref import TorchRunner
    model, md, *_ = tiny
    rep = P.run_parity([toy_sequence(T=4)], P.parse_requests("onnxruntime", "fp32"), open_fn,
                       TorchRunner(model, md), {"fp32": PC.tolerances_for("fp32")})
    r = rep["rows"][0]
    assert r["status"] == "error" and "engine exploded" in r["reason"] and rep["exit_code"] == 1


@pytest.mark.parametrize("precision", P.PRECISIONS)
def test_judge_applies_each_tolerance_at_its_edge(precision):
    """Every judged check passes exactly at its threshold and fails just beyond it, whatever the table says."""
    from dataclasses import asdict
    tol = PC.tolerances_for(precision)
    judged = [(name, key, getattr(tol, field), op) for name, key, field, op, _ in PC.CHECKS
              if field and getattr(tol, field) is not None]
    assert judged, "a precision with no judged check would pass anything"
    for name, key, thr, op in judged:
        step = 1e-6 if isinstance(thr, float) else 1
        worse = thr - step if op == ">=" else thr + step
        assert PC.judge({key: thr}, tol)[name]["pass"] is True, name
        assert PC.judge({key: worse}, tol)[name]["pass"] is False, name
        assert PC.judge({}, tol)[name]["pass"] is None   # not measured: reported, never passed
    assert PC.judge({"closed_lm_px_mean": 0.0, "lock_mismatch_frames": 2}, tol)["closed_landmarks"]["pass"] is \
        (False if tol.closed_lm_px is not None else None)
    assert set(asdict(tol)) == {f for _, _, f, _, _ in PC.CHECKS if f}


def test_tolerance_overrides_and_usage_errors():
    t = PC.tolerances_for("fp16", dice_tol=0.9, lm_tol=2.0, max_drop=1.0)
    assert (t.open_dice, t.closed_dice, t.open_lm_px, t.max_drop) == (0.9, 0.9, 2.0, 1.0)
    t8 = PC.tolerances_for("int8", dice_tol=0.9)
    assert t8.closed_dice == 0.9 and t8.open_dice is None   # int8 stays unjudged open-loop
    from edge_tan.runtime.errors import UsageError
    with pytest.raises(UsageError):
        P.parse_requests("onnxruntime", "fp64")
    with pytest.raises(UsageError):
        P.parse_requests("tflite", "fp32")
    assert P.run_parity_cli(None, "onnxruntime", "fp8", "default", None, None, None, None, 3, quiet=True) == 2
    assert P.run_parity_cli(None, "onnxruntime", "fp32", "x.onnx", None, None, None, None, 3, quiet=True) == 2
    assert P.run_parity_cli(None, "nope", "fp32", "default", None, None, None, None, 3, quiet=True) == 2


def test_cli_end_to_end_json(tiny, tmp_path, monkeypatch):
    """run_parity_cli on a dataset folder with artifacts resolved through a patched open_model."""
    from edge_tan.targets import opener as targets_opener
    from edge_tan.export.torch_ref import TorchRunner
    model, md, *_ = tiny
    open_fn = opener(tiny)
    monkeypatch.setattr(targets_opener, "open_model",
                        lambda spec, b, p="fp32", calib=None, **k: TorchRunner(model, md) if b == "torch" else open_fn(b, p))
    toy_dataset(tmp_path / "ds", n=4, T=6)
    out = tmp_path / "parity.json"
    wrap = lambda b, p, rn: P.PerturbedRunner(rn, sigma=3.0) if b == "onnxruntime" else rn  # noqa: E731
    code = P.run_parity_cli(tmp_path / "ds", "torch,onnxruntime,openvino", "fp32", "tiny.safetensors", out,
                            None, None, None, 2, wrap=wrap, quiet=True)
    assert code == 1
    data = json.loads(out.read_text())
    assert data["exit_code"] == 1 and data["machine"]["cpu"]
    st = {(r["backend"], r["precision"]): r["status"] for r in data["rows"]}
    assert st[("onnxruntime", "fp32")] == "fail" and st[("openvino", "fp32")] == "pass"
    assert len(data["clips"]) == 1   # toy_dataset with n=4 puts one sequence in test


def test_reference_for_registered_name_is_the_torch_model():
    from edge_tan.export.torch_ref import TorchRunner
    r = P.open_reference("tan")
    assert isinstance(r, TorchRunner) and r.metadata.model_name == "tan" and r.metadata.trained is False


def test_edge_tan_parity_command_real_builds(tmp_path):
    """The installed `edge-tan parity` on a clip with a tiny TAN weights file: artifacts really built
    through targets.opener; exit 0, and exit 1 when the self-test perturbation hits ONNX Runtime."""
    import os
    import subprocess
    import sys
    pytest.importorskip("safetensors")
    from edge_tan.dataset import save_sequence
    from edge_tan.export.models.registry import build_model, make_metadata, model_kwargs
    from edge_tan.export.weights import save_weights
    torch.manual_seed(0)
    m = build_model("tan", width=0.25)
    save_weights(m, make_metadata(m, "tan", model_kwargs("tan", width=0.25), size=64), tmp_path / "t.safetensors")
    save_sequence(toy_sequence("clip", T=6), tmp_path / "clip.npz")
    env = {**os.environ, "EDGE_TAN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "edge_tan.cli", "parity", str(tmp_path / "clip.npz"), "--backends",
           "torch,onnxruntime,tensorrt", "--model", str(tmp_path / "t.safetensors"), "--json", str(tmp_path / "p.json")]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    data = json.loads((tmp_path / "p.json").read_text())
    st = {r["backend"]: r["status"] for r in data["rows"]}
    from edge_tan.runtime.registry import available
    assert st["onnxruntime"] == "pass" and data["compared"] >= 1
    if not available("tensorrt")[0]:
        assert st["tensorrt"] == "unavailable"
    bad = subprocess.run(cmd, env={**env, P.PERTURB_ENV: "onnxruntime=5"}, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1, bad.stdout[-2000:] + bad.stderr[-2000:]
    assert "❌" in bad.stdout
    usage = subprocess.run(cmd[:4] + ["--precision", "fp64"], env=env, capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2
    if not available("tensorrt")[0]:   # the case: torch + a missing TensorRT compares nothing
        none = subprocess.run(cmd[:6] + ["torch,tensorrt"] + cmd[7:], env=env, capture_output=True, text=True,
                              timeout=300)
        assert none.returncode == 1 and "no backend was compared" in none.stdout, none.stdout[-2000:]

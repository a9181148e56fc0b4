"""The speed work of issue 23: the bf16 precision (only where the CPU has it, never fp32 under its
label) and the tracker's window graph (normalisation, score and landmark template in-graph) giving
the same answer as the numpy path around the plain network."""

from __future__ import annotations

import numpy as np
import pytest

from edge_tan.runtime.errors import UsageError
from edge_tan.runtime.runner import Runner, window_outputs
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
    from edge_tan.runtime.tracker import Tracker
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


def test_bf16_split_keeps_every_op_the_tracking_outputs_read_in_f32(tiny, tmp_path):
    """The f32 set is the ancestors of the non-segmentation outputs, found from the graph: it holds the
    encoder and the heads, not the decoder's ops, and the saved IR carries `precise` on exactly those."""
    ov = pytest.importorskip("openvino")
    from edge_tan.targets import openvino as tov
    from edge_tan.targets.openvino_mixed import f32_ops

    model = tov.onnx_to_ov(tiny[2])
    keep = f32_ops(model)
    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    compute = [n for n, op in ops.items() if op.get_type_name() not in ("Parameter", "Constant", "Result")]
    assert keep and set(keep) < set(compute)
    seg_only = set(compute) - set(keep)
    assert any(ops[n].get_type_name() in ("ConvolutionBackpropData", "Convolution") for n in seg_only)   # decoder
    for name in ("landmarks", "view"):   # the heads' last ops are kept
        assert any(o.get_any_name() == name for o in model.outputs)
        result = next(o for o in model.outputs if o.get_any_name() == name).get_node()
        assert result.input_value(0).get_node().get_friendly_name() in keep
    xml = tov.save_ir(model, tmp_path / "model.xml", tiny[1], precise_ops=keep)
    back = ov.Core().read_model(str(xml))
    marked = {op.get_friendly_name() for op in back.get_ordered_ops()
              if "DisablePrecisionConversion_0" in list(op.get_rt_info().keys())}
    assert marked == set(keep)
    from edge_tan.runtime.seal import read_seal

    claimed, actual = read_seal(xml)
    assert claimed == actual   # marked before the seal


def test_bf16_split_refuses_names_that_are_not_layers(tiny_ir, tmp_path):
    import shutil

    from edge_tan.runtime.errors import EdgeTanError
    from edge_tan.targets.openvino_mixed import mark_precise

    xml = tmp_path / "model.xml"
    shutil.copy(tiny_ir, xml)
    shutil.copy(tiny_ir.with_suffix(".bin"), xml.with_suffix(".bin"))
    before = xml.read_bytes()
    with pytest.raises(EdgeTanError, match="not layers of the IR"):
        mark_precise(xml, ["no-such-op"])
    assert xml.read_bytes() == before


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
        assert r.metadata.producer["mixed_precision"]["f32_ops"] > 0   # the artifact says what runs f32
        assert r.describe()["inference_precision"] == "bf16"
        out = r.infer(x)
        for k in ref:   # bf16 rounding, not fp32's 1e-4, and not garbage
            assert np.abs(out[k] - ref[k]).max() < 0.1, k
        # the decoder really runs bf16 (the split did not silently make the whole graph f32)
        assert np.abs(out["seg"] - ref["seg"]).max() > 1e-5


# ---- the speed summary and its README section -------------------------------------------------
def _bench_row(precision, model_ms, e2e_fps, busy=False, ip="f32"):
    return {"model": "tan", "backend": "openvino", "precision": precision, "status": "ok", "fps": 1000.0 / model_ms,
            "latency_ms": {"median": model_ms, "p95": model_ms * 1.1}, "describe": {"inference_precision": ip},
            "e2e": {"fps": e2e_fps, "non_network_share": 0.1}, "accuracy": {"dice": 0.97},
            "load": [{"busy": busy}]}


def test_speed_summary_ratios_and_targets():
    from edge_tan.bench.speed import speed_summary

    rows = [_bench_row("fp32", 10.0, 80.0), _bench_row("bf16", 6.0, 120.0, ip="bf16"), _bench_row("int8", 4.0, 200.0),
            {"model": "unet", "backend": "openvino", "precision": "fp32", "status": "ok"},
            {"model": "tan", "backend": "onnxruntime", "precision": "bf16", "status": "unavailable"}]
    s = speed_summary(rows)
    by = {r["precision"]: r for r in s["rows"]}
    assert set(by) == {"fp32", "bf16", "int8"}          # TAN rows that ran only
    assert by["bf16"]["e2e_vs_fp32"] == pytest.approx(1.5) and by["fp32"]["e2e_vs_fp32"] == 1.0
    assert by["int8"]["e2e_vs_network"] == pytest.approx(200.0 / 250.0)
    # the ratio is throughput over throughput: with the network's mean call time on record, that is its base
    # (an occasional slow call lowers the network's throughput below 1000 / median ms)
    rows[2]["network_fps_mean"] = 1000.0 / 4.4
    rows[2]["e2e"]["median_ms"] = 4.8
    by = {r["precision"]: r for r in speed_summary(rows)["rows"]}
    assert by["int8"]["e2e_vs_network"] == pytest.approx(200.0 / (1000.0 / 4.4))
    assert by["int8"]["e2e_vs_network_median"] == pytest.approx((1000.0 / 4.8) / 250.0)
    del rows[2]["network_fps_mean"]
    t = {x["name"]: x for x in s["targets"]}
    assert t["bf16_vs_fp32_e2e"]["met"] is True and t["int8_e2e_vs_network"]["met"] is False
    # timed while other processes took the CPU: the ratio is reported, never judged
    rows[0]["load"] = [{"busy": True}]
    t = {x["name"]: x for x in speed_summary(rows)["targets"]}
    assert t["bf16_vs_fp32_e2e"]["busy"] and t["bf16_vs_fp32_e2e"]["met"] is None
    assert t["int8_e2e_vs_network"]["met"] is False
    # a run without a bf16 row does not claim the target either way
    t = {x["name"]: x for x in speed_summary(rows[:1] + rows[2:3])["targets"]}
    assert t["bf16_vs_fp32_e2e"]["value"] is None and t["bf16_vs_fp32_e2e"]["met"] is None
    assert t["native_e2e_vs_network"]["value"] is None      # no native timing in these rows
    # issue 22: the native tracker's e2e vs the network, judged at its worst precision
    rows[0]["load"] = []
    rows[0]["native_e2e"] = {"fps": 95.0, "vs_network": 0.95, "load": {"busy": False}}
    rows[2]["native_e2e"] = {"fps": 170.0, "vs_network": 0.85, "load": {"busy": False}}
    t = {x["name"]: x for x in speed_summary(rows)["targets"]}["native_e2e_vs_network"]
    assert t["backend"] == "native int8" and t["value"] == 0.85 and t["met"] is False
    rows[2]["native_e2e"]["vs_network"] = 0.93
    t = {x["name"]: x for x in speed_summary(rows)["targets"]}["native_e2e_vs_network"]
    assert t["backend"] == "native int8" and t["met"] is True
    rows[2]["native_e2e"]["load"] = {"busy": True}
    assert {x["name"]: x for x in speed_summary(rows)["targets"]}["native_e2e_vs_network"]["met"] is None
    # with its own network-alone timing on record (et_time_network), that is the native ratio's base
    rows[2]["native_e2e"] = {"fps": 170.0, "vs_network": 0.93, "vs_own_network": 0.88, "network": {"fps": 193.2},
                             "load": {"busy": False}}
    s2 = speed_summary(rows)
    t = {x["name"]: x for x in s2["targets"]}["native_e2e_vs_network"]
    assert t["backend"] == "native int8" and t["value"] == 0.88 and t["met"] is False
    by = {r["precision"]: r for r in s2["rows"]}
    assert by["int8"]["native_network_fps"] == 193.2 and by["int8"]["native_vs_own_network"] == 0.88


def test_int8_target_is_judged_on_the_paired_ratio_where_a_row_has_it():
    """A row timed in alternating pairs (network alone, then the tracker) is judged on the pairs' median,
    not on the one network and one tracker figure timed seconds apart; bench.md shows the pairs' range."""
    from edge_tan.bench.report import bench_markdown
    from edge_tan.bench.speed import speed_lines, speed_summary

    rows = [_bench_row("fp32", 10.0, 80.0), _bench_row("int8", 4.0, 200.0)]   # one pair: 200 / 250 = x0.80
    rows[1]["e2e_paired"] = {"rounds": [], "median": 0.93, "range": [0.90, 0.95], "n": 5}
    s = speed_summary(rows)
    t = {x["name"]: x for x in s["targets"]}["int8_e2e_vs_network"]
    assert t["value"] == 0.93 and t["met"] is True
    by = {r["precision"]: r for r in s["rows"]}
    assert by["int8"]["e2e_vs_network"] == pytest.approx(0.8) and by["int8"]["e2e_paired_rounds"] == 5
    sec = bench_markdown({"rows": [], "speed": s})
    assert "| ×0.80 | ×0.93 (×0.90–×0.95, 5 pairs) | — |" in sec
    assert t["floor"] is None and "floor" not in "".join(speed_lines(s))   # pairs without a floor (older records)
    rows[1]["e2e_paired"].update(floor_median=0.95, floor_range=[0.94, 0.97])
    s = speed_summary(rows)
    assert {x["name"]: x for x in s["targets"]}["int8_e2e_vs_network"]["floor"] == 0.95
    assert "| ×0.93 (×0.90–×0.95, 5 pairs) | ×0.95 (×0.94–×0.97) |" in bench_markdown({"rows": [], "speed": s})
    assert any("floor in this run" in x and "×0.95" in x for x in speed_lines(s))
    rows[1]["e2e_paired"]["median"] = 0.85
    assert {x["name"]: x for x in speed_summary(rows)["targets"]}["int8_e2e_vs_network"]["met"] is False
    # the rows' end-to-end fps (and so BF16 ÷ FP32) are the pairs' medians where the rows have pairs
    rows = [_bench_row("fp32", 10.0, 80.0), _bench_row("bf16", 6.0, 100.0, ip="bf16")]   # one run each: x1.25
    assert speed_summary(rows)["rows"][1]["e2e_vs_fp32"] == pytest.approx(1.25)
    rows[0]["e2e_paired"] = {"rounds": [{"e2e_fps": f} for f in (70.0, 80.0, 90.0)], "median": 0.8, "range": [0.8, 0.8], "n": 3}
    rows[1]["e2e_paired"] = {"rounds": [{"e2e_fps": f} for f in (112.0, 120.0, 128.0)], "median": 0.8, "range": [0.8, 0.8], "n": 3}
    by = {r["precision"]: r for r in speed_summary(rows)["rows"]}
    assert by["bf16"]["e2e_fps"] == 120.0 and by["bf16"]["e2e_fps_single"] == 100.0
    assert by["bf16"]["e2e_vs_fp32"] == pytest.approx(1.5)


def test_a_target_value_that_rounds_to_its_threshold_shows_a_third_decimal():
    from edge_tan.bench.speed import target_value

    assert target_value({"value": 0.898, "min": 0.9}) == "0.898"
    assert target_value({"value": 0.9, "min": 0.9}) == "0.90"
    assert target_value({"value": 0.87, "min": 0.9}) == "0.87"


def test_bench_markdown_has_the_network_vs_end_to_end_section():
    """bench.md carries the speed rows: network alone, the Python tracker, the native tracker over its own
    network alone, and the target lines."""
    from edge_tan.bench.report import bench_markdown
    from edge_tan.bench.speed import speed_summary

    rows = [_bench_row("fp32", 10.0, 80.0), _bench_row("int8", 4.0, 200.0)]
    rows[1]["native_e2e"] = {"fps": 230.0, "vs_network": 0.92, "vs_own_network": 0.89, "network": {"fps": 258.4},
                             "load": {"busy": False}}
    md = bench_markdown({"rows": [], "speed": speed_summary(rows)})
    sec = md[md.index("## Network alone vs end to end"):]
    assert "| openvino | int8 | 250.0 | 200.0 | ×0.80 | — | — | 230.0 | 258.4 | ×0.89 |" in sec
    assert "| openvino | fp32 | 100.0 | 80.0 | ×0.80 | — | — | — | — | — |" in sec
    assert "- target: native end-to-end fps ÷ the network's own throughput (worst precision) >= 0.9: 0.89 " \
           "(native int8) — NOT met" in sec
    assert "## Network alone" not in bench_markdown({"rows": [], "speed": speed_summary([])})
    rows[1]["native_e2e"].update(vs_own_network_range=[0.86, 0.93], repeats=5)
    sec = bench_markdown({"rows": [], "speed": speed_summary(rows)})
    assert "| 258.4 | ×0.89 (×0.86–×0.93, 5 runs) |" in sec


def test_native_speed_row_keeps_the_median_and_spread_of_its_runs(monkeypatch, tmp_path):
    """Each whole run (clip, then the network alone) is one ratio; the row reports their medians and the
    ratio's range, so one lucky or unlucky run cannot decide the target."""
    from edge_tan.bench import native_row

    calls = iter([(4.0, 250.0), (5.0, 240.0), (4.5, 260.0)])   # (frame ms, own network fps) per run

    def fake_run(cli, ir, frames, masks, extra=None):
        ms, own = next(calls)
        per = [{"latency_ms": ms} for _ in range(len(frames))]
        return {"per_frame": per, "timing": {"network": {"fps": own, "median_ms": 1000.0 / own},
                                             "stages_median_ms": {"pre": 0.05, "infer": ms - 0.3, "post": 0.25}}}, None

    monkeypatch.setattr(native_row, "find_cli", lambda: tmp_path / "edge-tan-native")
    monkeypatch.setattr(native_row, "run_native", fake_run)
    frames = [np.zeros((8, 8), np.uint8)] * 6
    r = native_row.native_e2e(tmp_path / "m.xml", frames, list(range(6)), network_fps=300.0, repeats=3)
    ratios = [250.0 / 250.0, 200.0 / 240.0, (1000 / 4.5) / 260.0]
    assert r["repeats"] == 3 and len(r["runs"]) == 3
    assert r["vs_own_network"] == pytest.approx(float(np.median(ratios)))
    assert r["vs_own_network_range"] == pytest.approx([min(ratios), max(ratios)])
    assert r["fps"] == pytest.approx(1000 / 4.5) and r["network"]["fps"] == pytest.approx(250.0)
    assert r["stages_median_ms"]["infer"] == pytest.approx(4.2)


def test_speed_section_renders_from_its_record(tmp_path, monkeypatch):
    import importlib.util
    import json
    from pathlib import Path

    from edge_tan.bench.speed import speed_summary

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("render_docs", root / "scripts" / "render_docs.py")
    rd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rd)
    monkeypatch.setattr(rd, "ROOT", tmp_path)
    results = tmp_path / "results"
    section = lambda: rd.render_text("<!-- table:speed -->\n<!-- /table -->\n", results)  # noqa: E731
    assert "No `speed` record yet" in section() and "--only speed" in section()
    rows = [_bench_row("fp32", 10.0, 80.0, busy=True), _bench_row("bf16", 6.0, 120.0, ip="bf16"),
            _bench_row("int8", 4.0, 200.0)]
    parity = {"rows": [{"backend": "openvino", "precision": "bf16", "status": "fail",
                        "reason": "out of tolerance: open-loop landmarks px (max)"}]}
    from edge_tan.bench.provenance import provenance   # a record of the shipped model and phantom
    d = results / "2026-01-01-speed"
    d.mkdir(parents=True)
    (d / "record.json").write_text(json.dumps({
        "what": "speed", "command": "edge-tan bench --made-up", "date": "2026-01-01T00:00:00+00:00",
        "machine": {"cpu": "Test CPU", "physical_cores": 2, "memory_gib": 8.0, "gpus": []}, "wall_s": 1.0,
        "exit_code": 1, **provenance(), "result": {"rows": rows, "notes": ["tan openvino fp32: machine busy while timing: x"],
                                   "speed": speed_summary(rows), "parity": parity, "source": "phantom"}}))
    out = section()
    assert "**Timed on a busy machine**" in out
    assert "| openvino bf16 | bf16 | 6.00 / 6.60 | 167 | 120.0 | ×0.72 | — | 10 % | — | ×1.50 | 97.00 % | fail (out of" in out
    assert "BF16 end-to-end fps ÷ FP32's ≥ ×1.40: ×1.50: timed on a busy machine, not judged" in out
    assert "≥ ×0.92: ×0.80: **not met**" in out
    assert "the CPU's native BF16: no native BF16 listed" in out
    # a record with paired timings shows the pairs' median and range in the e2e ÷ network column
    rows[2]["e2e_paired"] = {"rounds": [], "median": 0.78, "range": [0.74, 0.81], "n": 5,
                             "floor_median": 0.91, "floor_range": [0.89, 0.93]}
    rec = json.loads((d / "record.json").read_text())
    rec["result"]["rows"], rec["machine"]["cpu_flags"] = rows, ["avx512f", "avx512_bf16"]
    (d / "record.json").write_text(json.dumps(rec))
    out = section()
    assert "| ×0.78 (×0.74–×0.81, 5 pairs) | ×0.91 (×0.89–×0.93) |" in out and "≥ ×0.92: ×0.78: **not met**" in out
    # the INT8 target carries the method's floor of the same pairs (grey, cut, network: nothing else)
    assert "(the method's floor in this run (grey conversion, window cut and network alone): ×0.91 of" in out
    assert "the CPU's native BF16: AVX-512 BF16" in out
    assert "The same step on another CPU" not in out
    # an older record from another CPU kind: one line with its targets under the table
    d2 = results / "2025-12-31-speed"
    d2.mkdir()
    rec["machine"] = {"cpu": "Other CPU", "physical_cores": 2, "memory_gib": 8.0, "gpus": [], "cpu_flags": ["amx_tile"]}
    rec["date"] = "2025-12-31T00:00:00+00:00"
    (d2 / "record.json").write_text(json.dumps(rec))
    out = section()
    assert "2026-01-01-speed" in out.splitlines()[1]      # the newest record stays the table's
    line = [x for x in out.splitlines() if x.startswith("- Other CPU")]
    assert len(line) == 1 and "native BF16: AMX" in line[0] and "throughput ×0.78" in line[0]

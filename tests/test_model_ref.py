"""ModelRef: every kind of model spec parsed once, with one clear error per bad input (no torch needed)."""
from __future__ import annotations

import json

import pytest

from edge_tan.runtime import defaults
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.model_ref import ModelRef


def test_kinds(tmp_path, monkeypatch):
    w = tmp_path / "run" / "best.safetensors"
    w.parent.mkdir()
    w.write_bytes(b"x")
    monkeypatch.setattr(defaults, "default_weights_path", lambda: w)
    assert ModelRef.parse(None) == ModelRef("default", "default", w, "torch")
    assert ModelRef.parse("default").name == "tan-default"
    r = ModelRef.parse(tmp_path / "run")                    # a training run folder -> its best weights
    assert (r.kind, r.path, r.backend, r.name) == ("weights", w, "torch", "run")
    assert ModelRef.parse("unet") == ModelRef("unet", "registered")
    (tmp_path / "m.onnx").write_bytes(b"x")
    assert (ModelRef.parse(tmp_path / "m.onnx").kind, ModelRef.parse(tmp_path / "m.onnx").backend) == ("onnx", "onnxruntime")
    b = tmp_path / "tan-openvino-fp32-abc"
    b.mkdir()
    (b / "model.xml").write_bytes(b"<net/>")
    (b / "build.json").write_text(json.dumps({"artifact": "model.xml"}))
    r = ModelRef.parse(b)                                   # a build folder -> its artifact
    assert (r.kind, r.path.name, r.backend, r.is_source) == ("artifact", "model.xml", "openvino", False)
    assert ModelRef.parse(r) is r


def test_bad_specs_are_one_line_errors(tmp_path, monkeypatch):
    cases = {tmp_path / "nope.onnx": "model file not found", "a/b": "model file not found",
             "bad name!": "model file not found"}
    (tmp_path / "empty.xml").write_bytes(b"")
    cases[tmp_path / "empty.xml"] = "empty file"
    (tmp_path / "m.tflite").write_bytes(b"x")
    cases[tmp_path / "m.tflite"] = "unknown artifact type"
    (tmp_path / "folder").mkdir()
    cases[tmp_path / "folder"] = "folder without build.json"
    half = tmp_path / "half"
    half.mkdir()
    (half / "build.json").write_text(json.dumps({"artifact": "model.xml"}))
    cases[half] = "which is missing"
    for spec, msg in cases.items():
        with pytest.raises(EdgeTanError, match=msg):
            ModelRef.parse(spec)
    monkeypatch.setattr(defaults, "default_weights_path", lambda: tmp_path / "absent.safetensors")
    with pytest.raises(EdgeTanError, match="default TAN weights are missing"):
        ModelRef.parse("default")

"""ONNX export of tiny TAN / PSPNet: opset 18, single file, metadata present, parity with torch."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.export.models.registry import build_model, make_metadata, model_kwargs
from edge_tan.export.onnx_export import export_onnx
from edge_tan.export.weights import model_sha256


def _tiny(name, **kw):
    torch.manual_seed(0)
    m = build_model(name, **kw).eval()
    return m, make_metadata(m, name, model_kwargs(name, **kw), size=64)


@pytest.mark.parametrize("name,kw,exporter", [("tan", {"width": 0.25}, "auto"), ("pspnet", {"base": 8}, "legacy")])
def test_export_parity_and_metadata(tmp_path, name, kw, exporter):
    m, md = _tiny(name, **kw)
    with torch.no_grad():   # perturb BN stats so parity is checked on non-trivial activations
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
        if hasattr(m, "landmark_head"):   # zero-initialised at start: make the landmark output non-trivial
            torch.nn.init.normal_(m.landmark_head[-1].weight, std=0.05)
    p = tmp_path / f"{name}.onnx"
    r = export_onnx(m, md, p, exporter=exporter)
    outs = list(m.outputs) + (["feat"] if hasattr(m, "with_features") else [])   # TAN: + pooled features (issue 25)
    assert r["outputs"] == outs and max(r["parity"].values()) <= 1e-3
    assert sorted(x.name for x in tmp_path.iterdir()) == [p.name]   # single file, no external data
    proto = onnx.load(str(p))
    assert {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"] == 18
    props = {q.key: q.value for q in proto.metadata_props}
    md2 = ModelMetadata.from_props(props)
    assert md2.model_name == name and md2.warp_mode == m.warp_mode and md2.window == 64
    assert md2.weights_sha256 == model_sha256(m) and md2.producer["torch"] == torch.__version__
    assert list(md2.outputs) == outs
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    x = np.random.default_rng(0).standard_normal((3, 1, 64, 64)).astype(np.float32)   # dynamic batch
    got = sess.run(None, {"image": x})
    with torch.no_grad():
        ref = m(torch.from_numpy(x))
    for g, t in zip(got, ref):
        assert np.abs(g - t.numpy()).max() < 1e-3


def test_bad_exporter_name(tmp_path):
    m, md = _tiny("unet", base=4)
    with pytest.raises(EdgeTanError, match="exporter"):
        export_onnx(m, md, tmp_path / "x.onnx", exporter="magic")
    assert not (tmp_path / "x.onnx").exists()

"""Model shapes, registry, TAN size/cost vs the paper, weights round-trip without pickle."""

import json

import numpy as np
import pytest
import torch

from edge_tan.runtime.errors import EdgeTanError
from edge_tan.export.models.registry import (REGISTRY, build_model, count_params_macs, default_template,
                                             make_metadata, model_kwargs)
from edge_tan.export.weights import ARCH_KEY, load_model, load_weights, read_header, save_weights

TINY = {"width": 0.25, "base": 8}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_shapes(name):
    torch.manual_seed(0)
    m = build_model(name, **TINY).eval()
    with torch.no_grad():
        out = m(torch.randn(2, 1, 64, 64))
    assert isinstance(out, tuple) and len(out) == len(m.outputs)
    assert out[0].shape == (2, 2, 64, 64)
    if "landmarks" in m.outputs:
        assert out[1].shape == (2, 6) and out[2].shape == (2, 2)
    assert m.warp_mode in ("affine", "crop", "none")
    assert all(torch.isfinite(o).all() for o in out)


def test_tan_matches_paper_cost():
    with torch.device("meta"):
        m = build_model("tan")
    p, macs = count_params_macs(m, 224)
    assert abs(p / 4.5e6 - 1) < 0.10, p
    assert abs(macs / 1.07e9 - 1) < 0.10, macs
    with torch.device("meta"):   # the literal Table-1 network: GAP landmark head, plain view head, no skips
        lit = build_model("tan", landmark_head="gap", view_head="plain", skips=False)
    p, macs = count_params_macs(lit, 224)
    assert abs(p / 4.5e6 - 1) < 0.01 and abs(macs / 1.07e9 - 1) < 0.01, (p, macs)


def test_baseline_sizes():
    with torch.device("meta"):
        unet, psp = build_model("unet"), build_model("pspnet")
    assert abs(count_params_macs(unet, 224)[0] / 31e6 - 1) < 0.05
    assert abs(count_params_macs(psp, 224)[0] / 46e6 - 1) < 0.05


def test_mac_counter_simple():
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 3))
    p, macs = count_params_macs(m, 8)
    assert p == 4 * 9 + 4 + 256 * 3 + 3
    assert macs == 4 * 64 * 9 + 256 * 3


def test_unknown_model():
    with pytest.raises(EdgeTanError, match="unknown model"):
        build_model("resnet9000")
    with pytest.raises(EdgeTanError):
        load_model("/nonexistent/weights.safetensors")


def test_load_registered_name_is_untrained():
    m, md = load_model("crop")
    assert md.warp_mode == "crop" and not md.trained
    assert np.allclose(md.template_array, default_template())
    assert md.has_landmarks and md.has_view


def test_weights_roundtrip_no_pickle(tmp_path, monkeypatch):
    torch.manual_seed(1)
    m = build_model("tan", width=0.25).eval()
    md = make_metadata(m, "tan", model_kwargs("tan", width=0.25), size=64, trained=True,
                       template=np.array([[30, 5], [15, 40], [45, 40]], np.float32))
    p = tmp_path / "w.safetensors"
    sha = save_weights(m, md, p)
    head = read_header(p)
    assert json.loads(head[ARCH_KEY])["kwargs"]["width"] == 0.25
    import pickle
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: (_ for _ in ()).throw(AssertionError("pickle used")))
    m2, md2 = load_weights(p)
    assert md2.weights_sha256 == sha and md2.trained and md2.window == 64
    assert np.allclose(md2.template_array, md.template_array)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        for a, b in zip(m(x), m2(x)):
            assert torch.equal(a, b)
    # fp16 shipping copy: loads to fp32, close outputs
    save_weights(m, md, tmp_path / "h.safetensors", half=True)
    m3, _ = load_weights(tmp_path / "h.safetensors")
    assert next(m3.parameters()).dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(m(x)[0], m3(x)[0], atol=0.05, rtol=0.05)
    # a run folder resolves to its best.safetensors
    (tmp_path / "run").mkdir()
    save_weights(m, md, tmp_path / "run" / "best.safetensors")
    assert load_model(tmp_path / "run")[1].weights_sha256 == sha


def test_corrupt_weights_rejected(tmp_path):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00hello")
    with pytest.raises(EdgeTanError):
        load_weights(p)

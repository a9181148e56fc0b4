"""Issue 21 item 1: an artifact proves its own bytes. Weights altered in place (sizes kept), a cut
file or a replaced engine are refused on open and on a cache hit, with one line naming the file and
the fix; `export` does not re-stamp a tampered artifact as the source weights.

The tiny 3-head net from conftest.py: the whole file runs in seconds.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from edge_tan.runtime.errors import EdgeTanError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.conftest import export_onnx, tiny_model  # noqa: E402


def _flip_weight_signs(path, share: float = 1.0) -> None:
    """Flip the sign bit of the first float of every 4 bytes of the largest initializer, in place:
    same size, still a valid file, different weights (what issue 21 did to a cached model.onnx)."""
    m = onnx.load(str(path))
    raw = max((t.raw_data for t in m.graph.initializer), key=len)
    data = bytearray(path.read_bytes())
    at = bytes(data).find(raw)
    assert at > 0 and len(raw) >= 64
    n = max(16, int(len(raw) * share)) // 4 * 4
    for i in range(at + 3, at + n, 4):
        data[i] ^= 0x80
    path.write_bytes(bytes(data))


@pytest.fixture()
def cached(tmp_path, monkeypatch):
    """A sealed fp32 ONNX in a private artifact cache (what `track` opens by default)."""
    from edge_tan.targets.build import build_artifact
    monkeypatch.setenv("EDGE_TAN_CACHE", str(tmp_path / "cache"))
    src = export_onnx(*tiny_model(), tmp_path / "src" / "tiny.onnx")
    built = build_artifact(src, "onnx", "fp32", tmp_path / "cache")
    return src, built.path


def test_tampered_onnx_is_refused_on_open_and_on_cache_hit(cached, tmp_path):
    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.opener import open_model

    src, art = cached
    with open_model(art, threads=1):
        pass                                   # intact: opens
    size = art.stat().st_size
    _flip_weight_signs(art)
    assert art.stat().st_size == size
    with pytest.raises(EdgeTanError) as e:
        open_model(art, threads=1)
    msg = str(e.value)
    assert "\n" not in msg and str(art) in msg and "integrity seal" in msg
    assert f"delete the cache entry {art.parent}" in msg
    with pytest.raises(EdgeTanError, match="delete the cache entry"):   # the cache hit checks the bytes too
        build_artifact(src, "onnx", "fp32", tmp_path / "cache")
    pytest.importorskip("openvino")
    with pytest.raises(EdgeTanError, match="integrity seal"):   # an IR is built from the cached ONNX: refused
        open_model(src, "openvino", threads=1)


def test_truncated_cached_onnx_names_the_cache_entry(cached, tmp_path):
    from edge_tan.targets.opener import open_model

    pytest.importorskip("openvino")
    src, art = cached
    art.write_bytes(art.read_bytes()[: art.stat().st_size * 2 // 3])
    with pytest.raises(EdgeTanError) as e:   # the IR build starts from the cached ONNX: a cache hit
        open_model(src, "openvino", threads=1)
    assert str(art) in str(e.value) and "delete the cache entry" in str(e.value)


def test_export_does_not_restamp_a_tampered_artifact(cached, tmp_path):
    """A sealed ONNX used as an export source must still match its seal: its metadata claims the
    source weights, and a re-stamped copy would carry that claim on."""
    from edge_tan.targets.build import build_artifact

    _, art = cached
    _flip_weight_signs(art)
    with pytest.raises(EdgeTanError, match="integrity seal"):
        build_artifact(art, "onnx", "fp32", tmp_path / "out")
    with pytest.raises(EdgeTanError, match="integrity seal"):
        build_artifact(art, "openvino", "fp32", tmp_path / "out")


def test_tampered_openvino_ir_is_refused(cached, tmp_path):
    pytest.importorskip("openvino")
    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.opener import open_model

    src, _ = cached
    xml = build_artifact(src, "openvino", "fp32", tmp_path / "cache").path
    with open_model(xml, threads=1):
        pass
    b = xml.with_suffix(".bin")
    data = bytearray(b.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64, 4):
        data[i + 3] ^= 0x80
    b.write_bytes(bytes(data))
    with pytest.raises(EdgeTanError, match="integrity seal") as e:
        open_model(xml, threads=1)
    assert str(xml) in str(e.value)
    with pytest.raises(EdgeTanError, match="delete the cache entry"):
        build_artifact(src, "openvino", "fp32", tmp_path / "cache")


def test_unsealed_artifact_is_refused_but_junk_keeps_its_own_message(tmp_path):
    from edge_tan.targets.opener import open_model

    p = export_onnx(*tiny_model(), tmp_path / "t.onnx")
    m = onnx.load(str(p))
    keep = {q.key: q.value for q in m.metadata_props if q.key != "edge_tan_seal"}
    del m.metadata_props[:]
    onnx.helper.set_model_props(m, keep)
    onnx.save(m, str(p))
    with pytest.raises(EdgeTanError, match="no integrity seal.*re-export"):
        open_model(p, threads=1)
    junk = tmp_path / "j.onnx"
    junk.write_bytes(b"not protobuf" * 20)
    with pytest.raises(EdgeTanError, match="not an ONNX model"):
        open_model(junk)


def test_engine_seal_is_its_sidecar_hash(tmp_path):
    from edge_tan.runtime import seal
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"\x01" * 4096)
    import hashlib
    (tmp_path / "m.engine.json").write_text(json.dumps({"engine_sha256": hashlib.sha256(eng.read_bytes()).hexdigest()}))
    assert seal.verify(eng)
    eng.write_bytes(b"\x01" * 4095 + b"\x02")
    with pytest.raises(EdgeTanError, match="m.engine: bytes do not match"):
        seal.verify(eng)


def test_seal_costs_one_read(cached):
    """One hash per open: on this ONNX it is far below the cost of creating the session."""
    from edge_tan.runtime import seal
    _, art = cached
    t0 = time.perf_counter()
    claimed, actual = seal.read_seal(art)
    assert claimed == actual and time.perf_counter() - t0 < 1.0
    assert np.isfinite(art.stat().st_size)


def test_batch_refuses_a_tampered_model_before_any_clip(tmp_path):
    """`batch` resume compared only the weights hash the metadata claims: a tampered model now never
    opens, so no result of it can count as "done before"."""
    from edge_tan.dataset import save_sequence
    from tests.conftest import darknet, darknet_metadata, toy_sequence
    from tests.test_cli_errors import cli
    model = export_onnx(darknet(), darknet_metadata(), tmp_path / "m.onnx")
    save_sequence(toy_sequence("c", T=4), tmp_path / "src" / "c.npz")
    code, _, err = cli("batch", tmp_path / "src", "--out", tmp_path / "out", "--model", model, "--backend", "onnxruntime")
    assert code == 0, err
    _flip_weight_signs(model)
    code, _, err = cli("batch", tmp_path / "src", "--out", tmp_path / "out", "--model", model, "--backend", "onnxruntime")
    assert code == 1 and "integrity seal" in err and str(model) in err

"""The shipped default model also ships as a torch-free ONNX artifact (edge_tan/assets/tan_default.onnx).

It must be the network of the shipped weights as they are now: the record beside it holds the
weights file's sha256 (checked by `shipped_onnx` before any use, and here), and the ONNX's own
metadata names the same weights sha256 the safetensors header does. When someone re-ships the
weights without `python scripts/ship_default_model.py --onnx-only`, these tests fail. And the
default `edge-tan track` runs on it in an interpreter where torch cannot be imported.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_tan.dataset import save_sequence
from edge_tan.runtime import defaults
from edge_tan.runtime.hashing import file_sha256

ROOT = Path(__file__).resolve().parent.parent

NO_TORCH = textwrap.dedent("""
    import sys
    for name in ("torch", "torchvision", "safetensors", "nncf", "onnxscript"):
        sys.modules[name] = None      # `import torch` raises ImportError, as on a device install
""")


def _safetensors_metadata(path: Path) -> dict:
    with path.open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)).get("__metadata__", {})


def test_the_shipped_onnx_was_built_from_the_shipped_weights():
    onnx, why = defaults.shipped_onnx()
    assert onnx == defaults.default_onnx_path(), why
    record = json.loads((defaults.assets_dir() / defaults.ONNX_RECORD_NAME).read_text())
    assert record["source_sha256"] == file_sha256(defaults.default_weights_path())
    assert record["artifact_sha256"] == file_sha256(onnx)
    pytest.importorskip("onnx")
    from edge_tan.targets.onnx_file import onnx_metadata
    header = _safetensors_metadata(defaults.default_weights_path())
    assert onnx_metadata(onnx).weights_sha256 == json.loads(header["edge_tan.weights_sha256"])
    assert record["weights_sha256"] == onnx_metadata(onnx).weights_sha256


def test_an_onnx_of_other_weights_is_not_used(tmp_path, monkeypatch):
    for name in (defaults.DEFAULT_ONNX_NAME, defaults.ONNX_RECORD_NAME, defaults.DEFAULT_WEIGHTS_NAME):
        shutil.copyfile(defaults.assets_dir() / name, tmp_path / name)
    monkeypatch.setattr(defaults, "assets_dir", lambda: tmp_path)
    assert defaults.shipped_onnx()[0] == tmp_path / defaults.DEFAULT_ONNX_NAME
    with open(tmp_path / defaults.DEFAULT_WEIGHTS_NAME, "ab") as f:   # re-shipped weights, ONNX not rebuilt
        f.write(b"\0")
    onnx, why = defaults.shipped_onnx()
    assert onnx is None and "built from other weights" in why and "--onnx-only" in why
    from edge_tan.runtime.errors import EdgeTanError
    from edge_tan.runtime.open import open_artifact
    with pytest.raises(EdgeTanError, match="no torch-free artifact"):
        open_artifact("default")


def _run_tracking(code: str, tmp_path, backend: str):
    """Run `code` (an `edge-tan track ... --json r.json` call) in a fresh interpreter; check r.json names
    the backend and the shipped weights. Returns the finished process."""
    env = {**os.environ, "EDGE_TAN_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["frames"] == 6 and out["backend"] == backend
    assert out["model"]["weights_sha256"] == json.loads(
        _safetensors_metadata(defaults.default_weights_path())["edge_tan.weights_sha256"])
    return r


def test_default_track_and_embed_run_without_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    from edge_tan.synth.render import generate_sequence
    clip = tmp_path / "clip.npz"
    save_sequence(generate_sequence(2024, n_frames=6), clip)
    code = NO_TORCH + textwrap.dedent(f"""
        from edge_tan.cli import main
        sys.argv = ["edge-tan", "track", {str(clip)!r}, "--backend", "onnxruntime", "--json", {str(tmp_path / 'r.json')!r},
                    "--quiet"]
        try:
            main()
        except SystemExit as e:
            assert not e.code, e.code
        from edge_tan.embed import open_tracker
        from edge_tan.dataset import load_sequence
        with open_tracker() as t:
            states = [t.push(f).state for f in load_sequence({str(clip)!r}).frames]
        assert "torch" not in [k.split(".")[0] for k, v in sys.modules.items() if v is not None]
        print("embed states", states)
    """)
    r = _run_tracking(code, tmp_path, "onnxruntime")
    assert "embed states ['detect'" in r.stdout
    assert not (tmp_path / "cache").exists()   # nothing was built: the shipped ONNX was opened as it is


def test_default_track_on_an_openvino_only_install(tmp_path):
    """edge-tan[openvino] without torch, onnx or onnxruntime: plain `edge-tan track CLIP` (the default
    backend) builds the IR from the shipped ONNX."""
    pytest.importorskip("openvino")
    from edge_tan.synth.render import generate_sequence
    clip = tmp_path / "clip.npz"
    save_sequence(generate_sequence(2024, n_frames=6), clip)
    code = NO_TORCH + textwrap.dedent(f"""
        for name in ("onnx", "onnxruntime"):
            sys.modules[name] = None
        from edge_tan.cli import main
        sys.argv = ["edge-tan", "track", {str(clip)!r}, "--json", {str(tmp_path / 'r.json')!r}, "--quiet"]
        try:
            main()
        except SystemExit as e:
            assert not e.code, e.code
    """)
    _run_tracking(code, tmp_path, "openvino")


@pytest.mark.parametrize("precision", ["fp16", "int8", "bf16"])
def test_default_onnx_is_never_opened_under_another_precision(precision):
    """The shipped ONNX is fp32: ONNX Runtime asked for another precision of the default model must say
    the onnx target does not offer it (parity: unsupported), not run the fp32 file under that label
    (a parity record once showed onnxruntime fp16/bf16/int8 'pass' with fp32's exact logits)."""
    from edge_tan.runtime.errors import UsageError
    from edge_tan.targets.opener import open_model
    with pytest.raises(UsageError, match="fp32 only"):
        open_model(None, "onnxruntime", precision)

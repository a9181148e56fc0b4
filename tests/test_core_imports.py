"""The core is what a device embeds: it must import and track with torch and every backend blocked."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BLOCK = textwrap.dedent("""
    import sys
    class Block:
        BLOCKED = ("torch", "onnxruntime", "openvino", "tensorrt", "nncf", "onnx", "safetensors")
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ImportError(f"blocked in this test: {name}")
            return None
    sys.meta_path.insert(0, Block())
""")


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_core_modules_import_without_torch_or_backends():
    r = run("""
        import importlib, pkgutil, edge_tan
        mods = ["edge_tan." + m.name for m in pkgutil.iter_modules(edge_tan.__path__)
                if m.name not in ("export", "targets", "bench")]
        mods += ["edge_tan.runtime." + m.name for m in pkgutil.iter_modules(importlib.import_module("edge_tan.runtime").__path__)]
        mods += ["edge_tan.io." + m.name for m in pkgutil.iter_modules(importlib.import_module("edge_tan.io").__path__)]
        mods += ["edge_tan.synth." + m.name for m in pkgutil.iter_modules(importlib.import_module("edge_tan.synth").__path__)]
        for m in mods:
            importlib.import_module(m)
        assert not any(k.split(".")[0] in ("torch", "onnxruntime", "openvino") for k in sys.modules)
        print("imported", len(mods))
    """)
    assert r.returncode == 0, r.stderr
    assert "imported" in r.stdout


def test_tracker_runs_without_torch():
    r = run("""
        from tests.conftest import ThresholdRunner, toy_metadata, toy_sequence
        from edge_tan.runtime.tracker import Tracker
        seq = toy_sequence(T=5)
        res = Tracker(ThresholdRunner(toy_metadata(64))).track(seq.frames)
        assert [r.state for r in res] == ["detect"] + ["track"] * 4, [r.state for r in res]
        print("ok")
    """)
    assert r.returncode == 0, r.stderr


def test_cli_help_and_info_without_torch():
    r = run("""
        import sys
        from typer.testing import CliRunner
        from edge_tan.cli import app
        res = CliRunner().invoke(app, ["info", "--json"])
        assert res.exit_code == 0, res.output
        import json
        d = json.loads(res.output)
        assert d["backends"]["tensorrt"]["available"] is False
        assert d["backends"]["tensorrt"]["version"] != "ok"
        print("ok")
    """)
    assert r.returncode == 0, r.stderr + r.stdout

"""Bad input through the real CLI: one clear error line, non-zero exit, no traceback, nothing half-written."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cwd=None):
    r = subprocess.run([sys.executable, "-m", "edge_tan.cli", *map(str, args)], capture_output=True, text=True,
                       timeout=300, cwd=cwd or ROOT)
    return r.returncode, r.stdout, r.stderr


def assert_one_line_error(code, out, err, needle):
    assert code != 0
    assert "Traceback" not in err and "Traceback" not in out
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("edge-tan: error:") and needle.lower() in lines[0].lower(), lines[0]


def test_missing_video(tmp_path):
    assert_one_line_error(*cli("track", tmp_path / "nope.avi", "--quiet"), "not found")


def test_corrupt_video(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    code, out, err = cli("track", bad, "--quiet", "--json", tmp_path / "r.json")
    assert_one_line_error(code, out, err, "bad.avi")
    assert not (tmp_path / "r.json").exists()


def test_empty_npz_sequence(tmp_path):
    p = tmp_path / "empty.npz"
    np.savez(p, frames=np.zeros((0, 8, 8), np.uint8), masks=np.zeros((0, 8, 8), np.uint8),
             labeled=np.zeros(0, bool), landmarks=np.zeros((0, 3, 2), np.float32), view=np.array("A4C"))
    assert_one_line_error(*cli("track", p, "--quiet"), "zero frames")


def test_mismatched_label_shapes(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, frames=np.zeros((3, 8, 8), np.uint8), masks=np.zeros((3, 9, 8), np.uint8),
             labeled=np.ones(3, bool), landmarks=np.zeros((3, 3, 2), np.float32), view=np.array("A4C"))
    assert_one_line_error(*cli("track", p, "--quiet"), "masks shape")


def test_dataset_without_manifest(tmp_path):
    assert_one_line_error(*cli("eval", tmp_path), "manifest")


def test_wrong_artifact_for_backend(tmp_path):
    fake = tmp_path / "model.xml"
    fake.write_text("<net/>")
    code, out, err = cli("track", ROOT / "tests" / "toy.py", "--model", fake, "--backend", "onnxruntime", "--quiet")
    assert code != 0 and "Traceback" not in err


def test_corrupt_onnx_artifact(tmp_path):
    from tests.toy import toy_sequence
    from edge_tan.dataset import save_sequence
    save_sequence(toy_sequence(T=3), tmp_path / "clip.npz")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    assert_one_line_error(*cli("track", tmp_path / "clip.npz", "--model", bad, "--quiet"), "model.onnx")


def test_synth_bad_args(tmp_path):
    assert_one_line_error(*cli("synth", tmp_path / "d", "--n", "0"), "")
    assert not (tmp_path / "d").exists()
    assert_one_line_error(*cli("synth", tmp_path / "d", "--views", "PLAX"), "PLAX")


def test_unknown_backend(tmp_path):
    from tests.toy import toy_sequence
    from edge_tan.dataset import save_sequence
    save_sequence(toy_sequence(T=3), tmp_path / "clip.npz")
    code, out, err = cli("track", tmp_path / "clip.npz", "--backend", "tpu", "--quiet")
    assert_one_line_error(code, out, err, "tpu")

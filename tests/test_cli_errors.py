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


def test_wrong_artifact_for_backend(tmp_path, toy_clip):
    """A readable clip, so the error can only come from the artifact/backend suffix check."""
    fake = tmp_path / "model.xml"
    fake.write_text("<net/>")
    code, out, err = cli("track", toy_clip, "--model", fake, "--backend", "onnxruntime", "--quiet")
    assert_one_line_error(code, out, err, "backend 'onnxruntime' needs .onnx")


def test_corrupt_onnx_artifact(tmp_path, toy_clip):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    assert_one_line_error(*cli("track", toy_clip, "--model", bad, "--quiet"), "model.onnx")


def test_synth_bad_args(tmp_path):
    assert_one_line_error(*cli("synth", tmp_path / "d", "--n", "0"), "--n must be at least 1, got 0")
    assert not (tmp_path / "d").exists()
    assert_one_line_error(*cli("synth", tmp_path / "d", "--views", "PLAX"), "PLAX")
    assert not (tmp_path / "d").exists()


def test_unknown_backend(toy_clip):
    code, out, err = cli("track", toy_clip, "--backend", "tpu", "--quiet")
    assert_one_line_error(code, out, err, "tpu")


def test_track_unwritable_outputs_fail_before_tracking(tmp_path):
    """Every output flag is checked before the clip is even read: the video here does not exist, so an
    error naming the flag (not "not found") proves nothing was tracked first."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    missing_video = tmp_path / "never-read.avi"
    cases = [("--json", Path("/proc/edge-tan-no/r.json"), "cannot write"), ("--masks", afile / "m.npz", "not a folder"),
             ("--csv", tmp_path, "is a folder"), ("--out", afile / "sub" / "o.mp4", "not a folder")]
    for flag, dest, needle in cases:
        code, out, err = cli("track", missing_video, "--quiet", flag, dest)
        assert_one_line_error(code, out, err, f"{flag} {dest}")
        assert needle in err and code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]   # nothing created, no probe left

"""The embedding surface a device uses, run the way a device runs it: torch made unimportable.

The README's "Embed it" Python example is read out of README.md and run as written, and so is
examples/track_capture.py, each in a fresh interpreter whose import system refuses torch (and the
rest of the torch side), on an .onnx built here from a tiny net and a short toy AVI clip.
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import darknet, darknet_metadata, export_onnx, toy_sequence

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("onnxruntime")

NO_TORCH = textwrap.dedent("""
    import sys
    class NoTorch:
        BLOCKED = ("torch", "torchvision", "safetensors", "nncf", "onnxscript")
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ImportError(f"blocked in this test: {name}")
            return None
    sys.meta_path.insert(0, NoTorch())
""")


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Embed it", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def device_dir(tmp_path_factory):
    """model.onnx (a tiny net the tracker locks onto) and clip.avi (a toy LV), as on a device."""
    pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("device")
    export_onnx(darknet(), darknet_metadata(), d / "model.onnx")
    seq = toy_sequence(T=8)
    h, w = seq.frames.shape[1:]
    vw = cv2.VideoWriter(str(d / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h), isColor=True)
    for f in seq.frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()
    return d


def run_without_torch(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + code, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_the_blocker_really_blocks_torch(tmp_path):
    r = run_without_torch("import torch", tmp_path)
    assert r.returncode != 0 and "blocked in this test: torch" in r.stderr


def test_readme_embedding_example_runs_without_torch(device_dir):
    code = readme_example() + "\nimport sys\nassert 'torch' not in sys.modules and 'onnxruntime' in sys.modules\n"
    r = run_without_torch(code, device_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 8
    states = [ln.split()[1] for ln in lines]
    assert states[0] == "detect" and states.count("track") >= 5 and "lost" not in states   # a tiny random net


def test_example_capture_loop_runs_without_torch(device_dir):
    script = ROOT / "examples" / "track_capture.py"
    code = f"import runpy\nsys.argv = [{str(script)!r}] + sys.argv[1:]\nrunpy.run_path({str(script)!r}, run_name='__main__')\n"
    r = run_without_torch(code, device_dir, "clip.avi", "--model", "model.onnx", "--threads", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [ln.split("\t") for ln in r.stdout.strip().splitlines()]
    assert [x[0] for x in rows] == [str(i) for i in range(8)]
    states = [x[1] for x in rows]
    assert states[0] == "detect" and states.count("track") >= 5 and "lost" not in states
    bad = run_without_torch(code, device_dir, "clip.avi", "--model", "missing.onnx")
    assert bad.returncode == 1 and "model file not found" in bad.stderr


def test_tracker_reset_and_results_outlive_the_next_push(device_dir):
    from edge_tan.embed import open_tracker

    frames = toy_sequence(T=3).frames
    with open_tracker(device_dir / "model.onnx", threads=1) as t:
        a = t.push(frames[0])
        lm = a.landmarks.copy()
        b = t.push(frames[1])
        assert (a.state, b.state) == ("detect", "track") and np.array_equal(a.landmarks, lm)
        t.reset()
        assert t.push(frames[2]).state == "detect" and t.backend == "onnxruntime"

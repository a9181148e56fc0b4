"""Issue 21 item 6: SIGKILL of `edge-tan batch`'s parent must not orphan its pool workers (each holds a
loaded model and went on tracking for minutes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return st != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_batch_parent_takes_its_workers(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from edge_tan.dataset import save_sequence
    from tests.conftest import darknet, darknet_metadata, export_onnx, toy_sequence

    src = tmp_path / "src"
    for i in range(2):   # long enough that each worker is still tracking when the parent is killed
        save_sequence(toy_sequence(f"long{i}", T=1500, seed=i), src / f"long{i}.npz")
    model = export_onnx(darknet(), darknet_metadata(), tmp_path / "m.onnx")
    cmd = [sys.executable, "-m", "edge_tan.cli", "batch", str(src), "--out", str(tmp_path / "out"), "--workers", "2",
           "--model", str(model), "--backend", "onnxruntime"]
    env = {**os.environ, "EDGE_TAN_CACHE": str(tmp_path / "cache")}
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        t0 = time.time()
        while time.time() - t0 < 60:     # wait for the pool and for a worker to start tracking
            workers = [c for c in _children(p.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="ignore")]
            if len(workers) >= 2 and list((tmp_path / "out").glob("batch.json")):
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the pool never started"
        time.sleep(1.0)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        t1 = time.time()
        while time.time() - t1 < 5 and any(_alive(w) for w in workers):
            time.sleep(0.1)
        left = [w for w in workers if _alive(w)]
        assert not left, f"workers {left} outlived their SIGKILLed parent"
    finally:
        if p.poll() is None:
            p.kill()
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)

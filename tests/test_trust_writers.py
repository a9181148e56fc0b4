"""Issue 21 item 4: no writer exits 0 after a failed write, and none leaves a partial file.

Disk full is injected two ways that need no root: RLIMIT_FSIZE in a child process (every write past
the limit fails with EFBIG, as ENOSPC would), and a VideoWriter that silently stops storing frames
(what OpenCV does on a full disk: it logs a warning and returns nothing). Where a tmpfs can be
mounted (root), the real thing is tried too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_tan.runtime.errors import EdgeTanError

ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent("""
    import json, resource, signal, sys
    from pathlib import Path
    import numpy as np
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # EFBIG instead of a kill, like ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
    from edge_tan.runtime.atomic import WriteFailed
    from edge_tan.runtime.results import write_masks_npz, write_results_json
    from edge_tan.batch.table import write_csv, write_parquet
    out = Path(sys.argv[1])
    import secrets
    rows = [{"name": secrets.token_hex(24), "status": "ok", "error": secrets.token_hex(8)} for i in range(3000)]
    jobs = {
        "json": lambda p: write_results_json(p, {"x": list(range(20000))}),
        "npz": lambda p: write_masks_npz(p, np.random.default_rng(0).integers(0, 2, (40, 112, 112), np.uint8)),
        "csv": lambda p: write_csv(p, rows),
        "parquet": lambda p: write_parquet(p, rows),
    }
    res = {}
    for k, fn in jobs.items():
        p = out / f"r.{k}"
        try:
            fn(p)
            res[k] = "written"
        except WriteFailed as e:
            res[k] = "refused:" + str(e)
        res[k + "_left"] = sorted(q.name for q in out.iterdir() if q.name.startswith((".r", "r.")))
        for q in out.iterdir():
            q.unlink()
    print(json.dumps(res))
""")


def test_every_writer_refuses_a_full_disk_and_leaves_nothing(tmp_path):
    pytest.importorskip("pyarrow")
    out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for k in ("json", "npz", "csv", "parquet"):
        assert res[k].startswith("refused:") and f"r.{k}" in res[k], (k, res[k])
        assert "\n" not in res[k]
        assert res[k + "_left"] == [], (k, res[k + "_left"])


_REAL_VIDEO_WRITER = cv2.VideoWriter


class _DiskFullWriter:
    """cv2.VideoWriter that stops storing frames after `keep` (OpenCV on a full disk: no error)."""

    def __init__(self, *a, keep=5, **k):
        self.inner = _REAL_VIDEO_WRITER(*a, **k)
        self.keep = keep

    def isOpened(self):
        return self.inner.isOpened()

    def write(self, f):
        if self.keep > 0:
            self.keep -= 1
            self.inner.write(f)

    def release(self):
        self.inner.release()


def _toy_results(T=20):
    from edge_tan.runtime.tracker import Tracker
    from tests.conftest import ThresholdRunner, toy_metadata, toy_sequence
    seq = toy_sequence("o", T=T)
    return seq, Tracker(ThresholdRunner(toy_metadata())).track(list(seq.frames))


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_overlay_with_dropped_frames_is_refused(tmp_path, monkeypatch, suffix):
    from edge_tan import overlay
    seq, res = _toy_results()
    dest = tmp_path / f"ov{suffix}"
    overlay.write_overlay(dest, list(seq.frames), res, 25.0)        # intact: written, all frames
    cap = cv2.VideoCapture(str(dest))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(res)
    cap.release()
    dest.unlink()
    monkeypatch.setattr(overlay.cv2, "VideoWriter", _DiskFullWriter)
    with pytest.raises(EdgeTanError, match=r"holds 5 of 20 frames"):
        overlay.write_overlay(dest, list(seq.frames), res, 25.0)
    assert list(tmp_path.iterdir()) == []


def test_track_cli_exits_nonzero_on_a_full_disk(tmp_path):
    """The whole command under a file-size limit: exit 1, one line, no output file."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from tests.conftest import darknet, darknet_metadata, export_onnx, toy_sequence, write_avi
    seq = toy_sequence("c", T=40)
    clip = write_avi(tmp_path / "c.avi", np.asarray(seq.frames))
    model = export_onnx(darknet(), darknet_metadata(), tmp_path / "m.onnx")
    outd = tmp_path / "out"
    outd.mkdir()
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (60000, 60000));"
            "from edge_tan.cli import main; sys.argv = ['edge-tan'] + sys.argv[1:]; sys.exit(main())")
    for flag, name in (("--out", "ov.avi"), ("--json", "r.json")):
        p = subprocess.run([sys.executable, "-c", code, "track", str(clip), "--model", str(model), "--backend",
                            "onnxruntime", flag, str(outd / name)], capture_output=True, text=True,
                           cwd=ROOT, timeout=300, env={**os.environ, "EDGE_TAN_CACHE": str(tmp_path / "cache")})
        assert p.returncode == 1, (flag, p.returncode, p.stderr[-1500:])
        err = [ln for ln in p.stderr.splitlines() if ln.startswith("edge-tan:")]
        assert len(err) == 1 and f"cannot write {outd / name}" in err[0], p.stderr[-1500:]
        assert list(outd.iterdir()) == [], (flag, list(outd.iterdir()))


def test_output_folder_under_a_regular_file_is_one_line(tmp_path):
    from edge_tan.runtime.atomic import write_text
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(EdgeTanError, match=f"{f} is a file, not a folder"):
        write_text(f / "sub" / "r.json", "{}")

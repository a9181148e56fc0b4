"""`edge-tan batch`: streaming reader, streamed clinical/QC equal to `track`, sources, resume, failure
isolation, Ctrl-C, and the local pool and Ray Data giving the same table.

In-process runs use the threshold test double; the pool and Ray runs need a model file every process
can open, so they use the tiny dark-pixel ONNX net from conftest.
"""
import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import edge_tan.batch.pool as bpool
import edge_tan.batch.run as brun
import edge_tan.track_cli as tc
from edge_tan.batch.clip import SampledFrames, SlimFrame, slim
from edge_tan.batch.sources import find_clips
from edge_tan.runtime.clinical import ClinicalCurves, clip_clinical
from edge_tan.dataset import save_sequence
from edge_tan.runtime.errors import EdgeTanError, UsageError
from edge_tan.io.read import read_video
from edge_tan.io.stream import open_clip
from edge_tan.runtime.tracker import Tracker
from tests.conftest import (ThresholdRunner, darknet, darknet_metadata, export_onnx, toy_metadata, toy_sequence,
                            write_avi, write_dicom)

TIMING = {"median_ms", "p95_ms", "tracker_fps", "wall_s"}


# ------------------------------------------------------------------ streaming reader
def test_stream_gives_read_videos_frames_fps_and_spacing(tmp_path):
    seq = toy_sequence("a", T=5)
    save_sequence(seq, tmp_path / "a.npz")
    write_avi(tmp_path / "a.avi", seq.frames, fps=40.0)
    u16 = (seq.frames.astype(np.uint16) * 200)
    write_dicom(tmp_path / "m.dcm", u16, FrameTime=20.0, PixelSpacing=[0.3, 0.25])
    rgb = np.repeat(seq.frames[..., None], 3, axis=3)
    write_dicom(tmp_path / "rgb.dcm", rgb, "RGB", CineRate=50)
    for name in ("a.npz", "a.avi", "m.dcm", "rgb.dcm"):
        ref = read_video(tmp_path / name)
        st = open_clip(tmp_path / name)
        frames = list(st)
        assert len(frames) == ref.n_frames and all(np.array_equal(f, g) for f, g in zip(frames, ref.frames)), name
        assert st.fps == pytest.approx(ref.fps) and (st.spacing_mm == pytest.approx(ref.spacing_mm)
                                                      or (math.isnan(st.spacing_mm) and math.isnan(ref.spacing_mm)))
        assert list(st)[2].shape == ref.frames[2].shape        # a stream can be read again (QC's second pass)


def test_stream_bad_files_one_error(tmp_path):
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "junk.avi").write_bytes(os.urandom(2000))
    with pytest.raises(EdgeTanError, match="empty"):
        open_clip(tmp_path / "empty.avi")
    with pytest.raises(EdgeTanError):
        list(open_clip(tmp_path / "junk.avi"))


# ------------------------------------------------------------------ streamed results == track's
def _tracked(T=12):
    seq = toy_sequence("c", T=T)
    return seq, Tracker(ThresholdRunner(toy_metadata(64))).track(list(seq.frames))


def test_clinical_curves_equal_clip_clinical():
    seq, res = _tracked()
    curves = ClinicalCurves()
    for r in res:
        curves.add(r)
    got = curves.summary(seq.spacing_mm, seq.fps)
    assert got == clip_clinical(res, seq.spacing_mm, seq.fps)
    assert got["ef_percent"] is not None
    empty = ClinicalCurves()
    empty.add(res[0].__class__(index=0, frame_hw=(8, 8), state="lost"))
    assert empty.summary()["ef_percent"] is None


def test_slim_frame_keeps_the_mask_compressed():
    _, res = _tracked(4)
    for r in res:
        s = slim(r)
        assert isinstance(s, SlimFrame) and s.area_px == r.area_px
        assert np.array_equal(s.mask, r.mask) and np.array_equal(s.mask_crop, r.mask_crop)
        assert s.contour is r.contour and s.state == r.state


def test_sampled_frames_decode_only_what_is_asked(tmp_path):
    seq = toy_sequence("s", T=6)
    save_sequence(seq, tmp_path / "s.npz")
    f = SampledFrames(open_clip(tmp_path / "s.npz"), 6, [1, 4])
    assert sorted(f.cache) == [1, 4] and np.array_equal(f[4], seq.frames[4])
    assert np.array_equal(f[2], seq.frames[2]) and len(f) == 6


# ------------------------------------------------------------------ sources
def test_sources_folder_glob_manifest_echonet_camus(tmp_path):
    d = tmp_path / "arch"
    (d / "sub").mkdir(parents=True)
    (d / ".hidden").mkdir()
    for p in ("a.avi", "sub/b.dcm", "sub/c.npz", ".hidden/x.avi", "notes.txt", "sub/patient0001_4CH_half_sequence.nii.gz",
              "sub/patient0001_4CH_half_sequence_gt.nii.gz", "sub/patient0001_2CH_ED.nii.gz", "sub/patient0001_2CH_ES_gt.mhd"):
        (d / p).write_bytes(b"x")
    names = [c.name for c in find_clips(d)]
    assert names == ["a.avi", "sub/b.dcm", "sub/c.npz", "sub/patient0001_4CH_half_sequence.nii.gz"]
    assert [Path(c.path).name for c in find_clips(str(d / "**" / "*.npz"))] == ["c.npz"]
    (tmp_path / "m.csv").write_text("FileName,EF\narch/a.avi,55.5\narch/sub/c.npz,\n")
    m = find_clips(tmp_path / "m.csv")
    assert [c.path for c in m] == [str(tmp_path / "arch/a.avi"), str(tmp_path / "arch/sub/c.npz")]
    assert m[0].ef_ref == 55.5 and math.isnan(m[1].ef_ref)
    (tmp_path / "l.txt").write_text(f"# clips\n{d / 'a.avi'}\n")
    assert [c.path for c in find_clips(tmp_path / "l.txt")] == [str(d / "a.avi")]
    e = tmp_path / "echonet"
    (e / "Videos").mkdir(parents=True)
    (e / "FileList.csv").write_text("FileName,EF,FPS,Split\n0X1,61.2,50,TEST\n0X2.avi,40,50,TRAIN\n")
    en = find_clips(e, limit=1)
    assert [(c.name, c.ef_ref) for c in en] == [("0X1.avi", 61.2)] and en[0].path == str(e / "Videos" / "0X1.avi")
    with pytest.raises(UsageError, match="no clips"):
        find_clips(d / "sub" / "*.mp4")
    with pytest.raises(UsageError, match="no such"):
        find_clips(tmp_path / "nope")


# ------------------------------------------------------------------ in-process runs with the test double
@pytest.fixture()
def double(monkeypatch):
    monkeypatch.setattr(brun, "open_runner", lambda cfg: ThresholdRunner(toy_metadata(64)))


def _archive(root: Path, n=3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        save_sequence(toy_sequence(f"clip{i}", T=8, seed=i), root / f"clip{i}.npz")
    return root


def _table(out: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(open(out / "table.csv"))]


def test_batch_writes_track_json_table_and_records_bad_clips(tmp_path, double, monkeypatch):
    src = _archive(tmp_path / "src")
    (src / "corrupt.avi").write_bytes(os.urandom(3000))
    (src / "empty.avi").write_bytes(b"")
    blank = toy_sequence("blank", T=6)
    blank.frames[:] = 0                      # nothing apical in it: tracked, no LV found
    blank.masks = None
    blank.landmarks = None
    save_sequence(blank, src / "zblank.npz")
    s = brun.run_batch(str(src), tmp_path / "out", backend="onnxruntime", workers=1, quiet=True)
    assert s["clips"] == 6 and s["errors"] == 2 and s["no_lv"] == 1 and s["tracked"] == 6
    rows = {r["clip"]: r for r in _table(tmp_path / "out")}
    assert rows["corrupt.avi"]["status"] == "error" and "decode" in rows["corrupt.avi"]["error"]
    assert rows["empty.avi"]["status"] == "error" and "empty" in rows["empty.avi"]["error"]
    assert rows["zblank.npz"]["status"] == "no-lv" and rows["zblank.npz"]["ef_percent"] == ""
    assert rows["clip0.npz"]["status"] == "ok" and float(rows["clip0.npz"]["ef_percent"]) > 0
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "out" / "table.parquet").num_rows == 6
    # the per-clip JSON is what `edge-tan track --json` writes for the same clip
    from edge_tan.targets import opener
    monkeypatch.setattr(opener, "open_model", lambda *a, **k: ThresholdRunner(toy_metadata(64)))
    ref = tc.run_track(video=src / "clip1.npz", model=None, backend="onnxruntime", precision="fp32", out=None,
                       json_out=None, masks=None, csv=None, biplane=None, live=None, quiet=True)
    got = json.loads(next((tmp_path / "out" / "clips").glob("clip1.npz.*.json")).read_text())
    for d in (ref, got):
        d.pop("timing"), d.pop("video"), d.pop("batch", None)
        for r in d["per_frame"]:
            r.pop("latency_ms")
    assert got == json.loads(json.dumps(ref))
    if "qc" in got:
        assert rows["clip1.npz"]["qc_score"] == str(got["qc"]["score"])


def test_batch_resumes_and_refuses_another_model(tmp_path, double, monkeypatch):
    src = _archive(tmp_path / "src")
    out = tmp_path / "out"
    brun.run_batch(str(src), out, backend="onnxruntime", workers=1, quiet=True)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "clips").iterdir()}
    again = brun.run_batch(str(src), out, backend="onnxruntime", workers=1, quiet=True)
    assert again["tracked"] == 0 and again["skipped"] == 3
    assert {p.name: p.stat().st_mtime_ns for p in (out / "clips").iterdir()} == before
    save_sequence(toy_sequence("clip2", T=9, seed=7), src / "clip2.npz")      # content changed: tracked again
    third = brun.run_batch(str(src), out, backend="onnxruntime", workers=1, quiet=True)
    assert third["tracked"] == 1 and third["skipped"] == 2
    md = toy_metadata(64)
    md.weights_sha256 = "f" * 64
    monkeypatch.setattr(brun, "open_runner", lambda cfg: ThresholdRunner(md))
    with pytest.raises(UsageError, match="holds results of model"):
        brun.run_batch(str(src), out, backend="onnxruntime", workers=1, quiet=True)


def test_ctrl_c_keeps_finished_clips_and_leaves_no_partial_files(tmp_path, double, monkeypatch):
    src = _archive(tmp_path / "src")
    out = tmp_path / "out"
    real = Tracker.step
    calls = {"n": 0}

    def step(self, frame):
        calls["n"] += 1
        if calls["n"] == 12:                 # in the middle of the second clip
            raise KeyboardInterrupt
        return real(self, frame)

    monkeypatch.setattr(Tracker, "step", step)
    with pytest.raises(KeyboardInterrupt):
        brun.run_batch(str(src), out, backend="onnxruntime", workers=1, quiet=True)
    assert sorted(p.name.split(".")[0] for p in (out / "rows").iterdir()) == ["clip0"]
    assert [p.name for p in (out / "clips").iterdir() if p.name.startswith(".")] == []
    assert not (out / "table.csv").exists()
    monkeypatch.setattr(Tracker, "step", real)
    s = brun.run_batch(str(src), out, backend="onnxruntime", workers=1, quiet=True)
    assert s["skipped"] == 1 and s["tracked"] == 2 and len(_table(out)) == 3


def test_cli_batch_bad_source_is_one_line(tmp_path):
    from typer.testing import CliRunner
    from edge_tan.cli import app
    r = CliRunner().invoke(app, ["batch", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "edge-tan: error:" in r.output and "Traceback" not in r.output


def test_worker_and_actor_sizing():
    from edge_tan.batch.model import split_cores
    from edge_tan.batch.ray_job import actor_resources
    assert split_cores(0, 0, cores=8) == (8, 1) and split_cores(2, 0, cores=8) == (2, 4)
    assert split_cores(0, 2, cores=8) == (4, 2) and split_cores(3, 0, cores=2) == (3, 1)
    assert actor_resources("openvino", 2, 0, {"CPU": 16}) == (8, {"num_cpus": 2})
    assert actor_resources("tensorrt", 1, 0, {"CPU": 16, "GPU": 2}) == (2, {"num_gpus": 1.0, "num_cpus": 1})
    assert actor_resources("tensorrt", 1, 8, {"CPU": 16, "GPU": 2}) == (8, {"num_gpus": 0.25, "num_cpus": 1})
    with pytest.raises(EdgeTanError, match="has none"):
        actor_resources("torch-cuda", 1, 0, {"CPU": 4})


def test_ray_blocks_group_clips_but_keep_every_actor_fed():
    from edge_tan.batch.ray_job import MAX_BLOCKS, n_blocks
    assert n_blocks(200, 2) == 50            # 4 clips per Ray task
    assert n_blocks(20, 2) == 8              # a short archive: 4 blocks per actor, not 5 fat ones
    assert n_blocks(3, 2) == 3 and n_blocks(1, 8) == 1 and n_blocks(0, 2) == 1
    assert n_blocks(10 ** 7, 64) == MAX_BLOCKS


def test_progress_steady_rate_leaves_start_up_and_skipped_clips_out(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(brun.time, "perf_counter", lambda: now[0])
    bar = brun.Progress(6, quiet=True)
    for t, skipped in ((105.0, False), (105.0, True), (106.0, False), (107.0, False), (109.0, False)):
        now[0] = t
        bar.update({"status": "ok", "skipped": skipped})
    assert bar.tracked == 4 and bar.first == 105.0 and bar.last == 109.0
    assert bar.steady_rate() == pytest.approx(3 / 4.0)     # 3 clips after the first, in 4 s; the 5 s start left out
    assert brun.Progress(2, quiet=True).steady_rate() is None
    bar = brun.Progress(8, quiet=True)                       # Ray: a block of 4 clips comes back at once
    for t in (103.0, 103.0, 103.0, 103.0, 105.0, 105.0, 105.0, 105.0):
        now[0] = t
        bar.update({"status": "ok"})
    assert bar.with_first == 4 and bar.steady_rate() == pytest.approx(4 / 2.0)


# ------------------------------------------------------------------ process pool and Ray: same table
@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    return export_onnx(darknet(0), darknet_metadata(), tmp_path_factory.mktemp("m") / "tiny.onnx")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # Ray Data's own deprecated context fields
def test_pool_and_ray_give_the_same_table(tmp_path, tiny_onnx):
    src = _archive(tmp_path / "src", n=3)
    (src / "corrupt.avi").write_bytes(os.urandom(3000))
    kw = dict(model=str(tiny_onnx), backend="onnxruntime", quiet=True)
    one = brun.run_batch(str(src), tmp_path / "one", workers=1, threads=1, **kw)
    pool = brun.run_batch(str(src), tmp_path / "pool", workers=2, threads=1, **kw)
    assert one["errors"] == pool["errors"] == 1 and pool["workers"] == 2
    assert _table(tmp_path / "one") == _table(tmp_path / "pool")
    ray = pytest.importorskip("ray", reason="Ray Data is the optional extra edge-tan[ray]; CI installs it")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        r = brun.run_batch(str(src), tmp_path / "ray", workers=2, threads=1, use_ray=True, **kw)
    finally:
        ray.shutdown()
    assert r["engine"] == "ray" and r["tracked"] == 4
    assert _table(tmp_path / "ray") == _table(tmp_path / "pool")
    for p in (tmp_path / "pool" / "clips").iterdir():
        a, b = (json.loads(q.read_text()) for q in (p, tmp_path / "ray" / "clips" / p.name))
        for d in (a, b):
            d.pop("timing")
            for f in d["per_frame"]:
                f.pop("latency_ms")
        assert a == b

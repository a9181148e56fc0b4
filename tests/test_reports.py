"""Validation against reports: CSV parsing and clip matching, EF statistics, atomic plots, bad CSVs,
and `eval --reports` end to end with the ThresholdRunner double."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_tan.dataset import save_sequence
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.eval_reports import ef_stats, frame_error
from edge_tan.reports import Traced, clip_key, find_clips, match, read_reports, read_tracings
from tests.conftest import ThresholdRunner, toy_metadata, toy_sequence

ROOT = Path(__file__).resolve().parent.parent


def _csv(path, text):
    path.write_text(text)
    return path


def test_echonet_filelist_matches_clips_without_extensions(tmp_path):
    rep = read_reports(_csv(tmp_path / "FileList.csv",
                            "FileName,EF,ESV,EDV,FrameHeight,FrameWidth,FPS,NumberOfFrames,Split\n"
                            "0X1A,55.2,30,70,112,112,50,120,TEST\n0X2B,31.0,40,60,112,112,50,99,TEST\n"
                            "0X3C,60.0,1,2,112,112,50,99,TEST\n"))
    assert set(rep) == {"0x1a", "0x2b", "0x3c"} and rep["0x1a"].ef == 55.2 and rep["0x1a"].ed is None
    clips = tmp_path / "clips"
    (clips / "sub").mkdir(parents=True)
    for n in ("0X1A.avi", "sub/0X2B.AVI", "extra.mp4", "notes.txt"):
        (clips / n).write_bytes(b"x")
    matched, missing, unreported = match(rep, find_clips(clips))
    assert sorted(r.name for r, _ in matched) == ["0X1A", "0X2B"]
    assert missing == ["0X3C"] and [Path(u).name for u in unreported] == ["extra.mp4"]
    assert clip_key("a/b/Clip.nii.gz") == "clip"


def test_explicit_ed_es_columns_and_volume_tracings(tmp_path):
    rep = read_reports(_csv(tmp_path / "r.csv", "file;lvef;ED_frame;ES_frame\nc1.avi;50;3;17\nc2;40;;\n"))
    assert (rep["c1"].ed, rep["c1"].es, rep["c2"].ed) == (3, 17, None)
    vt = read_tracings(_csv(tmp_path / "VolumeTracings.csv", "FileName,X1,Y1,X2,Y2,Frame\n"
                            "c1.avi,0,0,10,0,46\nc1.avi,0,1,10,1,46\nc1.avi,0,0,4,0,61\nc1.avi,0,1,4,1,61\n"))
    assert vt == {"c1": Traced(46, 61)}   # longer chords = larger cavity = ED
    assert frame_error([2, 30], 3) == 1.0 and frame_error([], 3) is None and frame_error([1], None) is None


@pytest.mark.parametrize("text,needle", [
    ("FileName,ESV\na,3\n", "no an EF column"),
    ("EF\n50\n", "no a FileName column"),
    ("FileName,EF\na,fifty\n", "r.csv:2: EF 'fifty'"),
    ("FileName,EF\na,150\n", "0..100"),
    ("FileName,EF\na,50\na.avi,51\n", "listed twice"),
    ("FileName,EF,ED\na,50,x\n", "frame index"),
])
def test_bad_csv_is_one_clear_error(tmp_path, text, needle):
    with pytest.raises(EdgeTanError, match=needle):
        read_reports(_csv(tmp_path / "r.csv", text))


def test_bad_csv_through_the_cli(tmp_path):
    (tmp_path / "clips").mkdir()
    bad = _csv(tmp_path / "r.csv", "FileName,EF\nclip,n/a\n")
    r = subprocess.run([sys.executable, "-m", "edge_tan.cli", "eval", str(tmp_path / "clips"), "--reports", str(bad),
                        "--json", str(tmp_path / "e.json")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("edge-tan: error:") and "n/a" in lines[0]
    assert not (tmp_path / "e.json").exists()


def test_ef_stats():
    s = ef_stats([50, 60, 40], [55, 62, 41])
    assert s["n"] == 3 and s["bias"] == pytest.approx(8 / 3) and s["mae"] == pytest.approx(8 / 3)
    assert s["pearson_r"] == pytest.approx(np.corrcoef([50, 60, 40], [55, 62, 41])[0, 1])
    assert s["loa"][0] < s["bias"] < s["loa"][1]
    assert ef_stats([], [])["mae"] is None


def test_plots_are_written_atomically(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from edge_tan.report_plots import ef_plots
    out = ef_plots([50, 60, 40, 30], [52, 58, 45, 70], [True, True, True, False], tmp_path / "p")
    assert sorted(Path(p).name for p in out.values()) == ["bland_altman.png", "ef_scatter.png"]
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out.values())
    import matplotlib.figure

    def boom(self, *a, **k):
        Path(a[0]).write_bytes(b"half")
        raise OSError("disk full")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", boom)
    with pytest.raises(OSError):
        ef_plots([50, 60, 40], [52, 58, 45], [True] * 3, tmp_path / "q")
    assert list((tmp_path / "q").iterdir()) == []   # no half-written PNG, no temp file


def test_eval_against_reports_end_to_end(tmp_path, monkeypatch):
    from edge_tan.eval_reports import run_reports_eval
    from edge_tan.targets import opener
    monkeypatch.setattr(opener, "open_model", lambda *a, **k: ThresholdRunner(toy_metadata(64)))
    clips = tmp_path / "clips"
    for i in range(3):
        save_sequence(toy_sequence(f"c{i}", T=12, seed=i), clips / f"c{i}.npz")
    (clips / "broken.npz").write_bytes(b"not a zip")
    csv = _csv(tmp_path / "r.csv", "FileName,EF,ED,ES\nc0,40,0,6\nc1,45,0,6\nc2,90,0,6\nbroken,50,,\ngone,50,,\n")
    full = run_reports_eval(clips, csv, None, None, "onnxruntime", "fp32", tmp_path / "e.json", tmp_path / "plots",
                            None, quiet=True)
    j = json.loads((tmp_path / "e.json").read_text())
    assert j["missing_on_disk"] == ["gone"] and [u["name"] for u in j["unreadable"]] == ["broken"]
    assert len(j["clips"]) == 3 and j["summary"]["all"]["clips"] == 3
    for c in j["clips"]:
        assert c["ef_err"] == pytest.approx(abs(c["ef_pred"] - c["ef_report"]), abs=1e-6)
        assert c["ed_err"] is not None and set(c["qc"]) >= {"score", "reliable", "components"}
    assert j["summary"]["qc_auroc_ef_err_gt"]["positives"] >= 1   # c2's report (90 %) is far from the toy EF
    assert (tmp_path / "plots" / "bland_altman.png").is_file() and (tmp_path / "plots" / "ef_scatter.png").is_file()
    assert full["plots"]["scatter"] == j["plots"]["scatter"]


def test_eval_against_reports_can_also_run_without_the_warp(tmp_path, monkeypatch):
    """--frame-by-frame with --reports (it was ignored there): every clip is tracked a second time, each frame
    on its own (detect only, no state), and scored the same way under "frame_by_frame"."""
    from typer.testing import CliRunner

    from edge_tan.cli import app
    from edge_tan.targets import opener
    monkeypatch.setattr(opener, "open_model", lambda *a, **k: ThresholdRunner(toy_metadata(64)))
    clips = tmp_path / "clips"
    for i in range(2):
        save_sequence(toy_sequence(f"c{i}", T=12, seed=i), clips / f"c{i}.npz")
    csv = _csv(tmp_path / "r.csv", "FileName,EF,ED,ES\nc0,40,0,6\nc1,45,0,6\n")
    r = CliRunner().invoke(app, ["eval", str(clips), "--reports", str(csv), "--frame-by-frame", "--json",
                                 str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    assert "without the warp (frame by frame): EF MAE" in r.output
    j = json.loads((tmp_path / "e.json").read_text())
    fbf = j["frame_by_frame"]
    assert [c["name"] for c in fbf["clips"]] == [c["name"] for c in j["clips"]] and fbf["summary"]["all"]["clips"] == 2
    assert all(c["states"]["detect"] == c["frames"] for c in fbf["clips"])       # every frame on its own
    assert all(c["states"]["track"] > 0 for c in j["clips"])                      # the closed loop tracks
    r = CliRunner().invoke(app, ["eval", str(clips), "--reports", str(csv), "--json", str(tmp_path / "f.json")])
    assert r.exit_code == 0 and "frame_by_frame" not in json.loads((tmp_path / "f.json").read_text())


def test_traced_areas_give_fac_and_ed_area_ratio(tmp_path):
    from edge_tan.eval_reports import shape_stats, traced_measures
    tr = read_tracings(_csv(tmp_path / "traced.csv", "FileName,ED_frame,ES_frame,ED_area_px,ES_area_px\n"
                            "c1,2,5,1000,600\n"))
    assert tr == {"c1": Traced(2, 5, 1000.0, 600.0)}
    area = np.array([0, 0, 1200, 0, 0, 840, 0], float)   # tracked: ED 1200 (x1.2 the trace), ES 840
    m = traced_measures(area, tr["c1"])
    assert m["fac_ref"] == pytest.approx(0.4) and m["fac_pred"] == pytest.approx(0.3)
    assert m["fac_err"] == pytest.approx(10.0) and m["ed_area_ratio"] == pytest.approx(1.2)
    assert traced_measures(area[:4], tr["c1"])["fac_err"] is None        # ES frame past the clip
    assert traced_measures(area, Traced(2, 5)) == {}                     # frames only: nothing to score
    s = shape_stats([{**m, "view_share": {"A4C": 0.5, "A2C": 0.5}, "lost_share": 0.1},
                     {**traced_measures(area * 2, tr["c1"]), "view_share": {"A4C": 1.0}, "lost_share": 0.0}])
    assert s["ed_area_ratio_median"] == pytest.approx(1.8) and s["ed_area_within_0.8_1.25"] == 0.5
    assert s["view_share"] == {"A2C": 0.25, "A4C": 0.75} and s["lost_share"] == pytest.approx(0.05)
    with pytest.raises(EdgeTanError, match="positive traced areas"):
        read_tracings(_csv(tmp_path / "bad.csv", "FileName,ED_frame,ES_frame,ED_area_px,ES_area_px\nc1,2,5,0,600\n"))


def test_fac_of_the_landmark_triangle_tells_contours_that_only_follow_their_landmarks():
    """A contour whose area changes exactly as its apex-annulus triangle does correlates 1.0 with the
    triangle's FAC; shape_stats reports that beside its correlation with the expert's FAC."""
    from edge_tan.eval_reports import shape_stats, traced_measures
    rows = []
    for k, (fac_ref, shrink) in enumerate([(0.40, 0.9), (0.45, 0.8), (0.35, 0.85), (0.50, 0.95)]):
        lm = np.tile(np.array([[50.0, 10.0], [30.0, 90.0], [70.0, 90.0]]), (6, 1, 1))
        lm[5, 1:, 0] = 50.0 + shrink * (lm[5, 1:, 0] - 50.0)          # ES: the annulus narrows by `shrink`
        area = np.full(6, 1000.0)
        area[5] = 1000.0 * shrink                                      # the contour follows only the triangle
        m = traced_measures(area, Traced(0, 5, 1000.0, 1000.0 * (1 - fac_ref)), lm)
        assert m["fac_landmarks"] == pytest.approx(1 - shrink) and m["fac_pred"] == pytest.approx(1 - shrink)
        rows.append(m)
    s = shape_stats(rows)
    assert s["fac_corr_landmarks"] == pytest.approx(1.0)
    assert s["fac_corr_expert"] < 0.5                                  # this toy's expert FAC is unrelated
    assert "fac_landmarks" not in traced_measures(area, Traced(0, 5, 1000.0, 600.0), np.full((6, 3, 2), np.nan))

"""Issue 21 item 7: what `edge-tan batch` lists and writes. Symlink loops under `**`, a UTF-8 BOM or
semicolon manifest, spreadsheet formulas in table.csv, a corrected reference EF on resume, and two
names with the same bytes."""

from __future__ import annotations

import csv
import json
import os

import pytest

import edge_tan.batch.run as brun
from edge_tan.batch.sources import find_clips
from edge_tan.dataset import save_sequence
from tests.conftest import ThresholdRunner, toy_metadata, toy_sequence


@pytest.fixture()
def double(monkeypatch):
    monkeypatch.setattr(brun, "open_runner", lambda cfg: ThresholdRunner(toy_metadata(64)))


def _clips(root, names, T=6):
    root.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        save_sequence(toy_sequence(n.split(".")[0], T=T, seed=i), root / n)
    return root


def test_symlink_loop_under_a_recursive_glob_lists_each_file_once(tmp_path):
    src = _clips(tmp_path / "a", ["c0.npz", "c1.npz"])
    (src / "sub").mkdir()
    _clips(src / "sub", ["c2.npz"])
    os.symlink(src, src / "sub" / "loop")          # a/sub/loop -> a
    got = find_clips(str(src) + "/**/*.npz")
    assert sorted(os.path.basename(c.path) for c in got) == ["c0.npz", "c1.npz", "c2.npz"]
    assert len(find_clips(src)) == 3                # the folder scan too


def test_bom_and_semicolon_manifests(tmp_path):
    src = _clips(tmp_path / "v", ["c0.npz", "c1.npz"])
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffFileName,EF\nv/c0.npz,55\nv/c1.npz,60\n".encode("utf-8"))
    got = find_clips(bom)
    assert [c.name for c in got] == ["v/c0.npz", "v/c1.npz"] and [c.ef_ref for c in got] == [55.0, 60.0]
    semi = tmp_path / "semi.csv"
    semi.write_text("path;EF\nv/c0.npz;55,5\nv/c1.npz;60\n")
    got = find_clips(semi)
    assert [c.name for c in got] == ["v/c0.npz", "v/c1.npz"]      # the header line is not a clip
    assert [c.ef_ref for c in got] == [55.5, 60.0]                 # ';' files write decimal commas
    assert src.is_dir()


def test_table_csv_escapes_formulas(tmp_path, double):
    src = _clips(tmp_path / "src", ["=HYPERLINK(1).npz", "+x.npz", "ok.npz"])
    brun.run_batch(str(src), tmp_path / "out", backend="onnxruntime", workers=1, quiet=True)
    rows = list(csv.DictReader(open(tmp_path / "out" / "table.csv")))
    names = sorted(r["clip"] for r in rows)
    assert names == ["'+x.npz", "'=HYPERLINK(1).npz", "ok.npz"]
    assert all(not v.startswith(("=", "+", "@")) for r in rows for v in r.values())


def test_resume_picks_up_a_corrected_reference_ef(tmp_path, double):
    src = _clips(tmp_path / "v", ["c0.npz", "c1.npz"])
    mf = tmp_path / "list.csv"
    mf.write_text("path,EF\nv/c0.npz,55\nv/c1.npz,60\n")
    out = tmp_path / "out"
    brun.run_batch(str(mf), out, backend="onnxruntime", workers=1, quiet=True)
    mf.write_text("path,EF\nv/c0.npz,45\nv/c1.npz,60\n")          # the report was corrected
    again = brun.run_batch(str(mf), out, backend="onnxruntime", workers=1, quiet=True)
    assert again["tracked"] == 0                                   # nothing re-tracked ...
    rows = {r["clip"]: r for r in csv.DictReader(open(out / "table.csv"))}
    assert float(rows["v/c0.npz"]["ef_ref"]) == 45.0               # ... but the new reference is used
    third = brun.run_batch(str(mf), out, backend="onnxruntime", workers=1, quiet=True)
    rows = {r["clip"]: r for r in csv.DictReader(open(out / "table.csv"))}
    assert float(rows["v/c0.npz"]["ef_ref"]) == 45.0 and third["tracked"] == 0


def test_distinct_names_with_the_same_bytes_get_distinct_json(tmp_path, double):
    src = _clips(tmp_path / "src", ["a b.npz"])
    (src / "a_b.npz").write_bytes((src / "a b.npz").read_bytes())
    out = tmp_path / "out"
    s = brun.run_batch(str(src), out, backend="onnxruntime", workers=1, quiet=True)
    assert s["tracked"] == 2
    files = sorted(p.name for p in (out / "clips").iterdir())
    assert len(files) == 2, files
    videos = sorted(json.loads((out / "clips" / f).read_text())["video"] for f in files)
    assert [os.path.basename(v) for v in videos] == ["a b.npz", "a_b.npz"]

"""Issue 21 item 8: clear one-line messages where "internal error" (exit 3) used to be, and no
half-made folders: output paths under a regular file (batch, export, adapt, eval), a truncated
.safetensors, one bad npz in `eval`, a negative pixel spacing, adapt's empty OUT.work."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from edge_tan.dataset import Sequence, save_sequence
from tests.conftest import ThresholdRunner, darknet, darknet_metadata, export_onnx, toy_dataset, toy_metadata, toy_sequence
from tests.test_cli_errors import assert_one_line_error, cli

WEIGHTS = "edge_tan/assets/tan_default.safetensors"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    d = tmp_path_factory.mktemp("msg")
    toy_dataset(d / "ds", n=2)
    (d / "afile").write_text("x")
    return d, export_onnx(darknet(), darknet_metadata(), d / "m.onnx")


@pytest.mark.parametrize("cmd", ["batch", "export", "eval", "adapt"])
def test_output_under_a_regular_file_is_one_line(tiny, cmd, tmp_path):
    d, model = tiny
    args = {
        "batch": ["batch", d / "ds", "--out", d / "afile" / "sub", "--model", model, "--backend", "onnxruntime"],
        "export": ["export", "--target", "onnx", "--model", model, "--out", d / "afile" / "sub"],
        "eval": ["eval", d / "ds", "--split", "all", "--model", model, "--backend", "onnxruntime",
                 "--json", d / "afile" / "e.json"],
        "adapt": ["adapt", WEIGHTS, d / "ds", "--out", d / "afile" / "x.safetensors", "--minutes", "0.1"],
    }[cmd]
    code, out, err = cli(*args)
    assert code == 1, err
    assert_one_line_error(code, out, err, f"{d / 'afile'} is a file, not a folder")


def test_truncated_safetensors_is_named(tmp_path):
    pytest.importorskip("torch")
    data = open(WEIGHTS, "rb").read()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    seq = toy_sequence("c", T=4)
    save_sequence(seq, tmp_path / "c.npz")
    code, out, err = cli("track", tmp_path / "c.npz", "--model", cut, "--backend", "torch", "--quiet")
    assert code == 1
    assert_one_line_error(code, out, err, "truncated weights file")


def test_eval_skips_one_bad_npz(tmp_path):
    from edge_tan.evaluate import evaluate
    toy_dataset(tmp_path / "ds", n=3)
    paths = sorted((tmp_path / "ds").glob("*.npz"))
    paths[1].write_bytes(b"not a zip")
    rep = evaluate(ThresholdRunner(toy_metadata(64)), paths)
    r = rep["closed_loop"]
    assert len(r["per_video"]) == 2 and [s["file"] for s in r["skipped"]] == [paths[1].name]
    for p in paths:
        p.write_bytes(b"not a zip")
    with pytest.raises(Exception, match="no readable sequence"):
        evaluate(ThresholdRunner(toy_metadata(64)), paths)


@pytest.mark.parametrize("bad", [-0.3, 0.0, float("inf")])
def test_nonpositive_spacing_never_reaches_mm(tmp_path, bad):
    from edge_tan.runtime.results import write_csv
    from edge_tan.runtime.tracker import Tracker
    seq = toy_sequence("s", T=4)
    seq = Sequence(seq.name, seq.frames, spacing_mm=bad)
    assert np.isnan(seq.spacing_mm)
    res = Tracker(ThresholdRunner(toy_metadata(64))).track(list(seq.frames))
    write_csv(tmp_path / "f.csv", res, seq.spacing_mm)
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert rows and all(r["area_mm2"] == "" for r in rows)


def test_adapt_refusal_leaves_no_work_folder(tmp_path):
    pytest.importorskip("torch")
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.avi").write_bytes(b"junk")
    code, out, err = cli("adapt", WEIGHTS, clips, "--out", tmp_path / "o" / "x.safetensors", "--minutes", "0.1")
    assert code == 1 and "no readable clips" in err
    assert not (tmp_path / "o").exists()

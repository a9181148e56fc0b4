"""scripts/merge_datasets.py: the default model's training folder is two phantom sets joined."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from edge_tan.dataset import list_split, load_sequence
from tests.conftest import toy_dataset

ROOT = Path(__file__).resolve().parent.parent


def _mod():
    spec = importlib.util.spec_from_file_location("merge_datasets", ROOT / "scripts" / "merge_datasets.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_merge_keeps_splits_prefixes_names_and_fails_cleanly(tmp_path, capsys):
    md = _mod()
    a, b = tmp_path / "a", tmp_path / "b"
    toy_dataset(a, n=2, T=4, H=48, W=48)
    toy_dataset(b, n=2, T=4, H=48, W=48)
    out = tmp_path / "m"
    assert md.main([str(out), str(a), str(b), "--prefix", "", "--prefix", "v3_"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    names_a = [e["name"] for e in json.loads((a / "manifest.json").read_text())["sequences"]]
    assert [e["name"] for e in man["sequences"]] == names_a + ["v3_" + n for n in names_a]
    assert man["n"] == 4 and [m["prefix"] for m in man["merged_from"]] == ["", "v3_"]
    for split in ("train", "val", "test"):
        assert len(list_split(out, split)) == 2 * len(list_split(a, split))
    s = load_sequence(out / f"v3_{names_a[0]}.npz")
    assert s.frames.shape[1:] == (48, 48)
    # same names twice: one clear error, nothing written
    bad = tmp_path / "bad"
    assert md.main([str(bad), str(a), str(a)]) == 2
    assert "twice" in capsys.readouterr().err and not bad.exists()
    assert md.main([str(bad), str(tmp_path / "nope")]) == 2 and not bad.exists()

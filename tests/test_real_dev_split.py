"""bench.real_dev: the real development set's split is fixed by name hash (never by looking at a clip),
each part gets its own FileList/traced CSVs and links, and an absent set is one clear error."""

import csv

import pytest

from edge_tan.bench import real_dev
from edge_tan.runtime.errors import EdgeTanError


def _fake_set(root, n=40):
    (root / "videos").mkdir(parents=True)
    names = [f"0X{i:04X}" for i in range(n)]
    for nm in names:
        (root / "videos" / f"{nm}.avi").write_bytes(b"x")
    with open(root / "FileList.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["FileName", "EF"])
        w.writerows([nm, 60] for nm in names)
    with open(root / "traced.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["FileName", "ED_frame", "ES_frame", "ED_area_px", "ES_area_px"])
        w.writerows([nm, 1, 9, 1000, 600] for nm in names)
    return names


def test_split_is_by_name_hash_and_complete(tmp_path):
    names = _fake_set(tmp_path)
    parts = {p: real_dev.split_folder(p, tmp_path) for p in real_dev.PARTS}
    got = {p: {r["FileName"] for r in csv.DictReader(open(d / "FileList.csv"))} for p, d in parts.items()}
    assert len(got["final"]) == real_dev.FINAL_N and got["final"] | got["dev"] == set(names)
    assert not got["final"] & got["dev"]
    assert {p.stem for p in (parts["final"] / "videos").iterdir()} == got["final"]
    assert {r["FileName"] for r in csv.DictReader(open(parts["dev"] / "traced.csv"))} == got["dev"]
    assert all(real_dev.part_of(n, names) == "final" for n in got["final"])
    assert real_dev.part_of(names[0], names) == real_dev.part_of(names[0], list(reversed(names)))   # order-free


def test_absent_set_is_one_clear_error(tmp_path):
    assert not real_dev.present(tmp_path)
    with pytest.raises(EdgeTanError, match="real development set not found"):
        real_dev.split_folder("dev", tmp_path)

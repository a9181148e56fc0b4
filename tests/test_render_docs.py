"""README and model-card figures come from committed run records (scripts/render_docs.py, record_runs.py).

The first test is the CI check: every generated section equals what its newest record renders, and
no measured-looking figure sits outside a generated section. The others prove the check can fail.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rd():
    return _load("render_docs")


def test_committed_docs_match_their_records(rd):
    problems = rd.check()
    assert not problems, "\n".join(problems) + "\nrun: python scripts/render_docs.py"


# records a CPU-only machine cannot make; every other section must cite a committed record
NEEDS_A_GPU = {"gpu-check"}


def test_every_section_names_a_record_that_exists(rd):
    import re
    for doc in rd.DOCS:
        for m in rd.SECTION.finditer(doc.read_text()):
            body = m.group(3)
            missing = set(re.findall(r"_No `([a-z-]+)` record yet", body))
            assert missing <= NEEDS_A_GPU, f"{doc.name}: section {m.group(2)} has no {missing} record"
            cited = re.findall(r"`(docs/results/[^`]+/record\.json)`", body)
            assert cited or missing, f"{doc.name}: section {m.group(2)} cites no record"
            for rel in cited:
                assert (ROOT / rel).is_file(), rel


def _record(results: Path, what: str, date: str, result: dict) -> None:
    d = results / f"{date}-{what}"
    d.mkdir(parents=True)
    (d / "record.json").write_text(json.dumps({
        "what": what, "command": f"edge-tan {what} --made-up", "machine": {"cpu": "Test CPU 9000", "physical_cores": 4,
                                                                           "memory_gib": 8.0, "gpus": []},
        "date": f"{date}T00:00:00+00:00", "wall_s": 1.0, "exit_code": 0, "result": result}))


def _parity_result(passed: bool, status: str) -> dict:
    return {"passed": passed, "exit_code": 0 if passed else 1, "compared": 1, "clips": [{"frames": 10}],
            "rows": [{"backend": "torch", "precision": "fp32", "status": "reference", "summary": {}},
                     {"backend": "onnxruntime", "precision": "fp32", "status": status,
                      "summary": {"logit_seg_max_abs": 3e-6, "open_dice_mean": 0.99991, "closed_dice_mean": 0.99987,
                                  "closed_lm_px_mean": 0.01, "ed_es_offset": 0, "ef_abs_diff": 0.123,
                                  "gt_dice_drop_points": 0.0}}]}


def test_newest_record_wins_and_stale_sections_are_caught(rd, tmp_path, monkeypatch):
    monkeypatch.setattr(rd, "ROOT", tmp_path)
    monkeypatch.setattr(rd, "shipped_weights_sha", lambda path=None: None)
    results = tmp_path / "results"
    _record(results, "parity", "2026-01-01", _parity_result(False, "fail"))
    _record(results, "parity", "2026-02-01", _parity_result(True, "pass"))
    text = "intro\n<!-- table:parity -->\nold text\n<!-- /table -->\nend\n"
    out = rd.render_text(text, results)
    assert "2026-02-01-parity" in out and "**PASS**" in out and "0.1230" not in out and "0.12" in out
    assert "Test CPU 9000, 4 cores, 8 GiB; no GPU" in out and "`edge-tan parity --made-up`" in out
    assert out.startswith("intro\n<!-- table:parity -->\n") and out.endswith("<!-- /table -->\nend\n")
    assert rd.render_text(out, results) == out   # rendering is idempotent
    doc = tmp_path / "README.md"
    doc.write_text(out)
    assert rd.check([doc], results) == []
    doc.write_text(out.replace("0.12", "0.11"))          # a hand-edited figure inside a section
    assert any("section 'parity' differs" in p for p in rd.check([doc], results))
    doc.write_text(out + "\nTAN runs at 142.5 fps and 98.79 % Dice.\n")   # a typed figure outside
    assert any("figure outside" in p for p in rd.check([doc], results))
    doc.write_text("no sections at all\n")
    assert any("no generated" in p for p in rd.check([doc], results))


def test_records_of_another_model_are_stale(rd, tmp_path):
    results = tmp_path / "results"
    _record(results, "eval-phantom", "2026-01-01", {"model": {"weights_sha256": "a" * 64}, "results": {}})
    assert rd.stale_records(results, sha="a" * 64) == []
    assert "eval-phantom" in rd.stale_records(results, sha="b" * 64)[0]
    assert any("stale record" in p for p in rd.check([], results, sha="b" * 64))


def test_missing_record_says_so_and_unknown_section_fails(rd, tmp_path):
    out = rd.render_text("<!-- table:bench -->\n<!-- /table -->", tmp_path)
    assert "No `bench` record yet" in out and "record_runs.py --only bench" in out
    with pytest.raises(SystemExit, match="unknown section"):
        rd.render_text("<!-- table:nope -->\n<!-- /table -->", tmp_path)


def test_record_runs_writes_command_machine_and_result(tmp_path, monkeypatch):
    rr = _load("record_runs")
    monkeypatch.setattr(rr, "RESULTS", tmp_path / "results")
    dest = rr.write_record("eval-phantom", ["edge-tan eval X"], {"x": 1}, 2.0, 0, date="2030-01-02")
    rec = json.loads((dest / "record.json").read_text())
    assert dest.name == "2030-01-02-eval-phantom" and rec["command"] == "edge-tan eval X" and rec["result"] == {"x": 1}
    assert rec["machine"]["cpu"] and rec["machine"]["physical_cores"] >= 1 and "versions" in rec["machine"]
    assert "gpus" in rec["machine"]
    with pytest.raises(SystemExit, match="machine"):   # a result without its machine cannot be imported
        bare = tmp_path / "bare.json"
        bare.write_text("{}")
        rr.import_record(f"gpu-check={bare}", "python -m edge_tan.bench.gpu_check ...")

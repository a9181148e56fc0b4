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


# records a CPU-only machine without the real development set cannot make (a GPU; the real clips, which
# are never committed); every other section must cite a committed record
NEEDS_A_GPU = {"gpu-check", "real-dev"}


def test_every_section_names_a_record_that_exists(rd):
    import re
    for doc in rd.DOCS:
        for m in rd.SECTION.finditer(doc.read_text()):
            body = m.group(3)
            missing = set(re.findall(r"_No `([a-z-]+)` record yet", body))
            assert missing <= NEEDS_A_GPU, f"{doc.name}: section {m.group(2)} has no {missing} record"
            cited = re.findall(r"`(docs/results/[^`]+/record\.json)`", body)
            # a record of an earlier model/phantom renders as a line naming the command that re-makes it
            not_yet = re.findall(r"No record of the shipped model `[0-9a-f]{12}` \(phantom [^)]+\) yet: run `([^`]+)`", body)
            assert cited or missing or not_yet, f"{doc.name}: section {m.group(2)} cites no record"
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


def test_records_of_another_model_are_stale(rd, tmp_path, monkeypatch):
    """Issue 21 item 9 / POLICY: a table whose newest record is of another model or phantom renders as
    one 'no record of the shipped model yet' line; a doc still quoting its figures fails --check."""
    monkeypatch.setattr(rd, "ROOT", tmp_path)
    monkeypatch.setattr(rd, "shipped_phantom", lambda: "edge-tan-synth/2")
    results = tmp_path / "results"
    _record(results, "eval-phantom", "2026-01-01",
            {"model": {"weights_sha256": "a" * 64}, "dataset": {"generator": "edge-tan-synth/2"}, "sequences": 1,
             "backend": "onnxruntime", "precision": "fp32",
             "results": {"closed_loop": {"frames": {"dice": {"mean": 0.9743}}, "videos": {}}}})
    _record(results, "parity", "2026-01-01", _parity_result(True, "pass"))   # an old record: no model hash at all
    doc = tmp_path / "README.md"
    monkeypatch.setattr(rd, "shipped_weights_sha", lambda path=None: "a" * 64)
    current = rd.render_text("<!-- table:eval -->\n<!-- /table -->\n<!-- table:parity -->\n<!-- /table -->\n", results)
    assert "97.43 %" in current and "aaaaaaaaaaaa" in current
    assert "No record of the shipped model `aaaaaaaaaaaa`" in current        # the parity record names no model
    assert "**PASS**" not in current
    doc.write_text(current)
    assert rd.check([doc], results) == []
    monkeypatch.setattr(rd, "shipped_weights_sha", lambda path=None: "b" * 64)   # a new default model ships
    assert any("section 'eval' differs" in p for p in rd.check([doc], results))
    new = rd.render_text(current, results)
    assert "97.43" not in new and "No record of the shipped model `bbbbbbbbbbbb` (phantom edge-tan-synth/2) yet: " \
        "run `python scripts/record_runs.py --only eval-phantom`" in new and "names model `aaaaaaaaaaaa`" in new
    doc.write_text(new)
    assert rd.check([doc], results) == []                                     # rendered as "not yet": passes
    monkeypatch.setattr(rd, "shipped_weights_sha", lambda path=None: "a" * 64)
    monkeypatch.setattr(rd, "shipped_phantom", lambda: "edge-tan-synth/3")   # the phantom changed
    assert "names phantom edge-tan-synth/2" in rd.render_text(current, results)
    doc.write_text(current)
    assert any("section 'eval' differs" in p for p in rd.check([doc], results))


def test_new_records_carry_model_and_phantom(tmp_path, monkeypatch):
    rr = _load("record_runs")
    monkeypatch.setattr(rr, "RESULTS", tmp_path / "results")
    rec = json.loads((rr.write_record("bench", ["edge-tan bench"], {}, 1.0, 0, date="2030-01-01") / "record.json").read_text())
    from edge_tan.bench.provenance import record_model, record_phantom, shipped_weights_sha
    from edge_tan.synth import GENERATOR_VERSION
    assert rec["model_sha256"] == shipped_weights_sha() and len(rec["model_sha256"]) == 64
    assert rec["phantom_version"] == GENERATOR_VERSION
    assert record_model(rec) == rec["model_sha256"] and record_phantom(rec) == GENERATOR_VERSION


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


def _eval_result(new_fields: bool) -> dict:
    """An eval record's closed loop with two clips per view; `new_fields` False = a record made before
    per_video carried view, mean_lm_mm and view_acc (the view then comes from the name's suffix)."""
    clips = []
    for i, (view, dice, ef_pred, lm, acc) in enumerate((("A2C", 0.90, 50.0, 2.0, 1.0), ("A4C", 0.96, 61.0, 1.0, 1.0),
                                                        ("A2C", 0.80, None, 4.0, 0.5), ("A4C", 0.94, 57.0, 3.0, 0.0))):
        v = {"name": f"synth_{i:05d}_{view.lower()}", "frames": 10, "labeled": 10, "mean_dice": dice,
             "ef_true": 60.0, "ef_pred": ef_pred}
        if new_fields:
            v.update(view=view, mean_lm_mm=lm, view_acc=acc)
        clips.append(v)
    return {"model": {"weights_sha256": "a" * 64}, "results": {"closed_loop": {"per_video": clips}}}


@pytest.fixture
def section(rd, tmp_path, monkeypatch):
    """render_docs on an empty results folder (tmp_path/results): `section(name)` renders that one table."""
    monkeypatch.setattr(rd, "ROOT", tmp_path)
    monkeypatch.setattr(rd, "shipped_weights_sha", lambda path=None: None)   # made-up records: no model to compare
    return lambda name: rd.render_text(f"<!-- table:{name} -->\n<!-- /table -->\n", tmp_path / "results")


def test_per_view_table_from_new_and_old_eval_records(rd, section, tmp_path):
    results = tmp_path / "results"
    assert "No `eval-phantom` record yet" in section("per_view")
    _record(results, "eval-phantom", "2026-01-01", _eval_result(new_fields=True))
    out = section("per_view")
    assert "| phantom | A2C | 2 | 85.00 % | 3.00 | 75.00 % | 10.00 (EF in 1 of 2 clips) |" in out
    assert "| phantom | A4C | 2 | 95.00 % | 2.00 | 50.00 % | 2.00 |" in out
    assert "need a record made after" not in out and "`results/2026-01-01-eval-phantom/record.json`" in out
    # an old foreign record: Dice and EF per view from its names, no landmark/view figures invented
    _record(results, "eval-foreign", "2026-01-01", _eval_result(new_fields=False))
    out = section("per_view")
    assert "| foreign phantom | A2C | 2 | 85.00 % | — | — | 10.00 (EF in 1 of 2 clips) |" in out
    assert "| phantom | A2C | 2 | 85.00 % | 3.00 | 75.00 % |" in out
    note = [ln for ln in out.splitlines() if "need a record made after" in ln]
    assert len(note) == 1 and rd.PER_VIEW_FIELDS_SINCE in note[0] and "--only eval-foreign`" in note[0]


def _profile_result(realism: bool) -> dict:
    row = lambda name, out, *v: {"statistic": name, **dict(zip(  # noqa: E731
        ("real_p10", "real_median", "real_p90", "this_p10", "this_median", "this_p90"), v)), "outside": out}
    return {"dataset": {"generator": "edge-tan-synth/9", "seed": 5000, "n": 20, "family": "default"},
            "reference": "../shared/notes/real-echo-profile.json",
            "rows": [row("sector_angle_deg", False, 76.0, 84.6, 85.6, 67.1, 81.0, 85.6),
                     row("grey_p50", True, 21.2, 35.0, 49.0, 28.8, 55.5, 83.0),
                     row("dark_frac_lt20", True, 0.26, 0.371, 0.482, 0.119, 0.209, 0.423)],
            "outside": ["grey_p50", "dark_frac_lt20"],
            "realism": {"distance": 12.76, "frames": 328, "clips": 20, "real_vs_real_half_split": 2.16}
            if realism else None}


def test_profile_table_shows_rows_outside_and_the_realism_distance(rd, section, tmp_path):
    results = tmp_path / "results"
    assert "No `profile` record yet" in section("profile")
    _record(results, "profile", "2026-01-01", _profile_result(realism=False))
    assert "realism_distance.py` was not there" in section("profile")
    _record(results, "profile", "2026-02-01", _profile_result(realism=True))
    out = section("profile")
    assert "2026-02-01-profile" in out and "Statistics flagged outside" in out and "sector_angle_deg" not in out
    assert "| `grey_p50` | 21.2 / 35.0 / 49.0 | 28.8 / 55.5 / 83.0 |" in out
    assert "| `dark_frac_lt20` | 0.260 / 0.371 / 0.482 | 0.119 / 0.209 / 0.423 |" in out
    assert "12.76 over 328 frames of 20 clips" in out and "two disjoint halves): 2.16" in out
    assert rd.render_text(out, results) == out


def test_record_runs_reads_the_profile_tools_output():
    rr = _load("record_runs")
    text = ("statistic                         real p10 / median / p90            this set (20 clips)\n"
            "skip bad.npz: broken\n"
            "height                        112.000  112.000  112.000    112.000  136.000  492.000\n"
            "grey_p50                       21.200   35.000   49.000     28.800   55.500   83.000  <- outside\n"
            "speckle_fwhm_y_frac_of_height    0.020    0.034    0.073      0.011    0.028    0.063\n")
    rows = rr.parse_echo_profile(text)
    assert [r["statistic"] for r in rows] == ["height", "grey_p50", "speckle_fwhm_y_frac_of_height"]
    assert [r["outside"] for r in rows] == [False, True, False]
    assert rows[1]["real_median"] == 35.0 and rows[1]["this_p90"] == 83.0
    line = ("realism distance of /x/profile-default-s5000-n20 (328 frames, 20 clips): 12.76   "
            "(real vs real, two halves: 2.16; lower is closer to real)\n")
    assert rr.parse_realism(line) == {"distance": 12.76, "frames": 328, "clips": 20, "real_vs_real_half_split": 2.16}
    assert rr.parse_realism("nothing here") is None
    assert "profile" in rr.STEPS


def test_records_older_than_the_shipped_model_say_so(rd, tmp_path):
    """A QC or adaptation record made before the shipped model's own record describes the previous
    default: its table says so instead of passing those figures off as the shipped model's."""
    results = tmp_path / "results"
    _record(results, "qc", "2026-01-01", {})
    _record(results, "model", "2026-02-01", {"metadata": {"weights_sha256": "c" * 64}})
    old = json.loads((results / "2026-01-01-qc" / "record.json").read_text())
    assert "previous default model" in rd.earlier_model_note(old, results) and "cccccccccccc" in rd.earlier_model_note(old, results)
    _record(results, "qc", "2026-03-01", {})
    new = json.loads((results / "2026-03-01-qc" / "record.json").read_text())
    assert rd.earlier_model_note(new, results) == ""


def _real_eval(mae: float, a4c: float) -> dict:
    return {"clips": 30, "summary": {"all": {"clips": 30, "mae": mae, "fac_err": mae + 2, "fac_corr_expert": 0.3,
                                             "fac_corr_landmarks": 0.8, "ed_area_ratio_median": 1.2,
                                             "ed_area_within_0.8_1.25": 0.6, "ed_err_frames": 4.0, "es_err_frames": 3.0,
                                             "view_share": {"A4C": a4c}, "lost_share": 0.01},
                                     "qc_accepted": {"clips": 21, "mae": mae - 1}, "qc_auroc_ef_err_gt": {"auroc": 0.55}}}


def test_real_adapt_seeds_table_puts_seed_0_beside_the_other_seeds(rd, tmp_path):
    """The seeds record renders one row per seed and part, the real-dev record's seed-0 rows first when
    it is of the same weights, and the final part's range over all seeds."""
    results = tmp_path / "results"
    _record(results, "real-dev", "2026-01-01", {
        "weights": "w.safetensors", "evals": {"adapted/dev": _real_eval(8.0, 0.9), "adapted/final": _real_eval(8.5, 0.88)},
        "adaptation": {"used_s": 1566.0, "phases": {"self": {"steps": 1207}}}})
    _record(results, "real-adapt-seeds", "2026-01-02", {
        "weights": "w.safetensors", "budget_min": 30.0, "seeds": {
            "1": {"adaptation": {"used_s": 1500.0, "self_steps": 1300}, "evals": {"dev": _real_eval(7.0, 0.95),
                                                                                   "final": _real_eval(6.5, 0.97)}}}})
    folder = results / "2026-01-02-real-adapt-seeds"
    rec = json.loads((folder / "record.json").read_text())
    text = rd.r_real_adapt_seeds.__wrapped__(folder, rec, results)
    rows = [ln for ln in text.splitlines() if ln.startswith("| seed")]
    assert [r.split(" | ")[0] for r in rows] == [
        "| seed 0 (the real-dev record: 26.1 min, 1,207 self-training steps), dev part",
        "| seed 0 (the real-dev record: 26.1 min, 1,207 self-training steps), final part",
        "| seed 1 (25.0 min, 1,300 self-training steps), dev part",
        "| seed 1 (25.0 min, 1,300 self-training steps), final part"]
    assert "Final part over 2 seeds: EF error 6.50–8.50" in text and "A4C frames 88.00 %–97.00 %" in text
    # a real-dev record of other weights is not put beside them
    other = json.loads((results / "2026-01-01-real-dev" / "record.json").read_text())
    other["result"]["weights"] = "other.safetensors"
    (results / "2026-01-01-real-dev" / "record.json").write_text(json.dumps(other))
    text = rd.r_real_adapt_seeds.__wrapped__(folder, rec, results)
    assert "seed 0" not in text and "Final part over" not in text


def test_real_no_warp_table_pairs_the_two_runs_of_each_part(rd, tmp_path):
    """One row per run and part, each part's tracked row above its frame-by-frame row."""
    results = tmp_path / "results"
    ev = lambda mae: {**_real_eval(mae, 0.8), "backend": "openvino"}   # noqa: E731
    _record(results, "real-no-warp", "2026-01-03", {"weights": "w.safetensors", "evals": {
        "warp/dev": ev(9.0), "frame-by-frame/dev": ev(10.0), "warp/final": ev(7.0), "frame-by-frame/final": ev(8.0)}})
    folder = results / "2026-01-03-real-no-warp"
    text = rd.r_real_no_warp.__wrapped__(folder, json.loads((folder / "record.json").read_text()), results)
    rows = [ln.split(" | ")[:3] for ln in text.splitlines() if ln.startswith("| tracked") or ln.startswith("| frame")]
    assert rows == [["| tracked (warp on the last landmarks), dev part", "30", "9.00"],
                    ["| frame by frame (whole frame, no warp), dev part", "30", "10.00"],
                    ["| tracked (warp on the last landmarks), final part", "30", "7.00"],
                    ["| frame by frame (whole frame, no warp), final part", "30", "8.00"]]
    assert "backend openvino" in text

"""A new backend is one file: this file declares a tiny test backend once and registers it, and
build (`build_artifact`, `edge-tan export`), open (`open_model`), `edge-tan info`, bench and the
tracker all see it, without any table elsewhere being edited.

The backend is a TEST DOUBLE: its "artifact" (.thr) is a JSON file holding the model metadata taken
from the fp32 ONNX, and its runner thresholds the window (conftest.ThresholdRunner) instead of running
the network. What is under test is the registry plumbing, not inference.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.atomic import write_text
from edge_tan.runtime import registry
from tests.conftest import ThresholdRunner, darknet, darknet_metadata, export_onnx, toy_sequence

pytest.importorskip("torch")
pytest.importorskip("onnx")


class ThrRunner(ThresholdRunner):
    """Opens a .thr artifact: the metadata, and a threshold instead of a network."""
    backend = "thr-test"

    def __init__(self, path, **opts):
        self.path = Path(path)
        super().__init__(ModelMetadata.from_props(json.loads(self.path.read_text())))


def build_thr(onnx_path, dest, md, request) -> dict:
    """fp32 ONNX -> .thr: keep the metadata (what a real builder would compile the graph into)."""
    write_text(dest, json.dumps(md.to_props()))
    return {"thr": {"precision": request.precision}}


BACKEND = registry.Backend(name="thr-test", runner=ThrRunner, suffix=".thr", requires=("numpy",), aliases=("thr",),
                           target="thr", precisions=("fp32", "fp16"), build_requires=("numpy",), build=build_thr)


@pytest.fixture(scope="module")
def dark_onnx(tmp_path_factory):
    return export_onnx(darknet(), darknet_metadata(), tmp_path_factory.mktemp("thr") / "dark.onnx")


@pytest.fixture()
def thr(dark_onnx, tmp_path, monkeypatch):
    registry.register_backend(BACKEND)
    monkeypatch.setenv("EDGE_TAN_CACHE", str(tmp_path / "cache"))
    yield dark_onnx
    registry.unregister_backend(BACKEND.name)


def test_a_registered_backend_is_seen_by_build_open_info_and_the_tracker(thr, tmp_path):
    from edge_tan.info import collect_info
    from edge_tan.targets.build import build_artifact
    from edge_tan.targets.opener import open_model
    from edge_tan.runtime.tracker import Tracker

    assert registry.canonical("thr") == "thr-test" and registry.available("thr") == (True, "ok")
    assert collect_info()["backends"]["thr-test"]["available"] is True
    built = build_artifact(thr, "thr", "fp16", tmp_path / "art")
    assert built.path.name == "model.thr" and not built.cached
    assert json.loads((built.path.parent / "build.json").read_text())["thr"] == {"precision": "fp16"}
    assert build_artifact(thr, "thr-test", "fp16", tmp_path / "art").cached
    with pytest.raises(Exception, match="builds fp32, fp16 only"):
        build_artifact(thr, "thr", "int8", tmp_path / "art", calib=tmp_path)
    # open: by its suffix, and through the build cache from the .onnx
    with open_model(built.path) as r:
        assert isinstance(r, ThrRunner) and r.metadata.precision == "fp16" and r.origin.cached
    with open_model(thr, "thr", "fp32") as r:
        assert r.origin.cached is False and r.origin.path.suffix == ".thr"
        res = Tracker(r).track(toy_sequence(T=4).frames)
    assert [x.state for x in res] == ["detect", "track", "track", "track"]


def test_the_cli_sees_it_too(thr, tmp_path):
    from typer.testing import CliRunner

    from edge_tan.cli import app

    out = CliRunner().invoke(app, ["export", "--target", "thr", "--model", str(thr), "--out", str(tmp_path / "a")])
    assert out.exit_code == 0, out.output
    assert out.output.strip().endswith("model.thr")
    from edge_tan.dataset import save_sequence
    save_sequence(toy_sequence("clip", T=3), tmp_path / "clip.npz")
    bad = CliRunner().invoke(app, ["track", str(tmp_path / "clip.npz"), "--backend", "tflite"])
    assert bad.exit_code != 0 and "thr-test" in bad.output   # the registry's names, new one included


def test_an_entry_another_process_finished_first_is_kept_not_swapped(thr, tmp_path):
    """Two batch workers opening the same artifact on a fresh machine both build it: the one that ends
    second keeps the first one's intact entry (replacing it takes two renames, and the first worker
    could open the path in between and miss it) and reports that entry's digest."""
    from edge_tan.targets.build import build_artifact
    art = tmp_path / "art"
    seen = {}

    def racing_build(onnx_path, dest, md, request):
        if "started" not in seen:   # while this build runs, "another process" finishes the same entry
            seen["started"] = True
            seen["inner"] = build_artifact(thr, "thr", "fp32", art)
            seen["ino"] = seen["inner"].path.parent.stat().st_ino
        return build_thr(onnx_path, dest, md, request)

    registry.unregister_backend(BACKEND.name)
    registry.register_backend(dataclasses.replace(BACKEND, build=racing_build))
    try:
        outer = build_artifact(thr, "thr", "fp32", art)
    finally:
        registry.unregister_backend(BACKEND.name)
        registry.register_backend(BACKEND)
    assert not seen["inner"].cached and not outer.cached
    assert outer.path == seen["inner"].path and outer.path.parent.stat().st_ino == seen["ino"]   # not swapped
    assert outer.sha256 == seen["inner"].sha256 is not None
    assert not [p for p in art.iterdir() if p.name.startswith(".")]   # no temp left behind
    assert build_artifact(thr, "thr", "fp32", art).cached

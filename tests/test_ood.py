"""Out-of-domain gate (issue 25): the reference's maths, the `feat` output through every backend and the
embedding API, the gate on a phantom vs a restyled phantom, adaptation moving the reference, old
artifacts without the gate. Tiny TAN (width 0.25, 64 px window) and toy clips; no real data."""

import copy

import cv2
import numpy as np
import pytest
import torch

from edge_tan.runtime import geometry as geo
from edge_tan.runtime import qc as qcm
from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.ood import (FORMAT, FORMAT_KNN, fit_reference, gate_status, load_reference,
                                  reference_of, set_thresholds)
from edge_tan.runtime.tracker import NOISE_REASON, OOD_REASON, Tracker
from tests.conftest import export_onnx as export_plain, tiny_model, toy_sequence

W = 64


def _restyle(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """A strongly restyled copy: inverted grey levels, coarse speckle and a gain ramp (another 'scanner')."""
    rng = np.random.default_rng(seed)
    f = 255.0 - frames.astype(np.float32)
    f *= np.linspace(0.4, 1.0, f.shape[-1])[None, None, :]
    f += rng.normal(0, 40, f.shape)
    return np.clip(f, 0, 255).astype(np.uint8)


def _foreign_structure(shape, seed: int) -> np.ndarray:
    """Smooth random blobs: image structure (passes the noise check), nothing like a heart."""
    rng = np.random.default_rng(seed)
    f = cv2.GaussianBlur(rng.normal(128, 90, shape).astype(np.float32), (0, 0), 1.5)
    return np.clip(128 + 4 * (f - 128), 0, 255).astype(np.uint8)


class _Clip:
    def __init__(self, frames):
        self.frames = frames


@pytest.fixture(scope="module")
def tan():
    """A tiny random-init TAN + metadata with a toy template, fitted to toy clips (the 'phantom')."""
    from edge_tan.export.models.registry import build_model, make_metadata, model_kwargs
    from edge_tan.export.ood_fit import fit_sequences
    torch.set_num_threads(1)
    torch.manual_seed(0)
    kw = model_kwargs("tan", width=0.25)
    m = build_model("tan", **kw).eval()
    md = make_metadata(m, "tan", kw, template=geo.build_template(toy_sequence().landmarks, size=W), size=W,
                       trained=True)
    fit = [toy_sequence(f"f{i}", T=8, seed=i) for i in range(6)]
    held = [toy_sequence(f"h{i}", T=8, seed=100 + i) for i in range(3)]
    ref = fit_sequences(m, md, fit, held, k=8)
    md.ood = ref.to_dict()
    return m, md, ref


@pytest.mark.parametrize("method,noise,ratio", [("lowrank", 1.0, 5), ("knn", 4.0, 2)])
def test_reference_scores_about_one_in_domain_and_round_trips(method, noise, ratio):
    """Both forms: about 1 on held-out in-domain features, far above off the training manifold, and the
    same scores after a round trip through the metadata dict."""
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(6, 40))
    X = rng.normal(size=(600, 6)) * [5, 4, 3, 2, 1, 1] @ basis + rng.normal(0, 0.1, (600, 40)) + 3.0
    ref = fit_reference(X[:400], k=6, method=method)
    held = ref.scores(X[400:])
    assert 0.7 < np.median(held) < 1.4
    far = ref.scores(X[400:] + rng.normal(0, noise, (200, 40)))
    assert np.median(far) > ratio * np.median(held)
    ref = set_thresholds(ref, [held[:100], held[100:]])
    back = load_reference(ref.to_dict())
    assert type(back) is type(ref) and ref.to_dict()["format"] == {"lowrank": FORMAT, "knn": FORMAT_KNN}[method]
    assert np.allclose(back.scores(X[:50]), ref.scores(X[:50]), atol=1e-5)
    assert back.clip_threshold == pytest.approx(ref.clip_threshold, abs=1e-4)
    assert ref.clip_threshold > np.median(held) and ref.frame_threshold > np.percentile(held, 99)


def test_thresholds_refuse_features_that_do_not_vary():
    """A collapsed network (every window the same pooled feature) scores every held-out window 0: no
    threshold can be set from that, and the fit says why instead of failing the reference's own check."""
    ref = fit_reference(np.random.default_rng(0).normal(size=(200, 40)), k=4, method="knn")
    with pytest.raises(EdgeTanError, match="every held-out window scores 0"):
        set_thresholds(ref, [np.zeros(50), np.zeros(50)])
    with pytest.raises(EdgeTanError, match="no held-out window was scored"):
        set_thresholds(ref, [np.full(5, np.nan), np.full(5, np.nan)])
    assert set_thresholds(ref, [np.zeros(50), np.full(50, 0.5)]).frame_threshold > 0   # one varied clip is enough


def test_old_metadata_without_gate_loads_and_says_so():
    md = ModelMetadata.from_dict({"model_name": "old", "outputs": {"seg": "", "landmarks": "", "view": ""}})
    assert md.ood == {} and not md.has_feat and reference_of(md) is None
    assert "no 'feat' output" in gate_status(md)
    md.outputs["feat"] = "x"
    assert "no reference statistics" in gate_status(md)


def test_every_backend_and_embed_give_the_same_score(tan, tmp_path, monkeypatch):
    """ONNX Runtime, OpenVINO, the torch reference, TensorRT (the labelled test double) and the embedding
    API: the same `feat` output and the same out-of-domain score within 1e-3."""
    from edge_tan.embed import open_tracker
    from edge_tan.export.onnx_export import export_onnx
    from edge_tan.targets import tensorrt as ttrt
    from edge_tan.targets.onnxruntime import OrtRunner
    from edge_tan.targets.openvino import OpenVinoRunner, onnx_to_ov, save_ir
    from edge_tan.export.torch_ref import TorchRunner
    from tests import fake_tensorrt as fake

    m, md, ref = tan
    rep = export_onnx(m, md, tmp_path / "tan.onnx", exporter="legacy")
    assert rep["outputs"] == ["seg", "landmarks", "view", "feat"] and rep["parity"]["feat"] < 1e-3
    from edge_tan.runtime.seal import seal_onnx
    seal_onnx(tmp_path / "tan.onnx")   # as build_artifact does (issue 21): opened artifacts carry a seal
    ort = OrtRunner(tmp_path / "tan.onnx", threads=1)
    assert ort.metadata.ood == md.ood and "feat" in ort.metadata.outputs
    xml = save_ir(onnx_to_ov(tmp_path / "tan.onnx"), tmp_path / "ir" / "model.xml", ort.metadata)
    fake.install(monkeypatch, "10.3.0")
    eng = ttrt.build_engine(tmp_path / "tan.onnx", tmp_path / "m.engine", ort.metadata, ttrt.BuildOptions(max_batch=2))
    runners = {"onnxruntime": ort, "openvino": OpenVinoRunner(xml, threads=1), "torch": TorchRunner(m, md),
               "tensorrt (test double)": ttrt.TensorRTRunner(eng)}
    seq = toy_sequence("s", T=6, seed=7)
    x = np.stack([Tracker(ort).window_input(f, geo.letterbox_affine(f.shape, W)).copy() for f in seq.frames[:2]])[:, 0]
    want = ref.scores(runners["torch"].infer(x)["feat"])
    for name, r in runners.items():
        out = r.infer(x)
        assert out["feat"].shape == (2, ref.dim), name
        assert np.abs(ref.scores(out["feat"]) - want).max() < 1e-3, name
    per = {}
    for name, r in runners.items():
        per[name] = np.array([f.ood_score for f in Tracker(r).track(list(seq.frames))])
    with open_tracker(tmp_path / "tan.onnx", threads=1) as t:
        per["embed"] = np.array([t.push(f).ood_score for f in seq.frames])
        dom = t.domain()
    assert np.isfinite(per["embed"]).all()
    for name, s in per.items():
        assert np.abs(s - per["torch"]).max() < 1e-3, name
    assert dom["threshold"] == pytest.approx(ref.clip_threshold, abs=1e-4) and dom["score"] == pytest.approx(np.median(per["embed"]))


def test_gate_phantom_vs_restyled_phantom(tan):
    """In-domain toy clips pass the gate; a restyled copy is UNRELIABLE with the reason and the next step,
    and its frames far beyond the frame threshold are lost with the reason in words."""
    from edge_tan.export.ood_fit import feature_runner
    m, md, ref = tan
    r = feature_runner(m, md, ref)
    tk = Tracker(r)
    seq = toy_sequence("in", T=8, seed=200)
    res = tk.track(list(seq.frames))
    q, _ = qcm.assess(res, list(seq.frames), 25.0)
    assert q["ood"]["score"] <= q["ood"]["threshold"] and not q["ood"]["out_of_domain"]
    assert not any("unlike the training data" in x.reason for x in res)
    odd = list(_restyle(seq.frames))
    res2 = tk.track(odd)
    q2, _ = qcm.assess(res2, odd, 25.0, {"ef_percent": 55.0})
    assert q2["ood"]["out_of_domain"] and not q2["reliable"]
    assert q2["reasons"][0].startswith("images unlike the model's training data (score ")
    assert "`edge-tan adapt`" in q2["reasons"][0]
    assert q2["ood"]["score"] > 2 * q["ood"]["score"]
    cl = qcm.mark_clinical({"ef_percent": 55.0}, q2)
    assert "UNRELIABLE (images unlike the model's training data" in qcm.ef_text(cl)
    # per frame: noise is not an LV (refused before the network, the lock kept for when images return) ...
    noise = [np.random.default_rng(i).integers(0, 256, seq.frames[0].shape, dtype=np.uint8) for i in range(6)]
    res3 = tk.track(list(seq.frames[:3]) + noise)   # (the lock kept: test_tracker_sizes, on the shipped model)
    assert all(x.state == "lost" and x.reason.startswith(NOISE_REASON) for x in res3[3:])
    # ... and a structured window far beyond the training windows is refused by the frame gate
    odd_frames = [_foreign_structure(seq.frames[0].shape, i) for i in range(3)]
    res4 = tk.track(list(seq.frames[:3]) + odd_frames)
    assert all(x.state == "lost" and x.reason.startswith(OOD_REASON) for x in res4[3:]), [x.reason for x in res4[3:]]


def test_a_blank_clip_is_out_of_domain_with_its_own_reason(tan):
    """A clip (or a stream) whose every frame is blank reaches the network nowhere: no score, and
    nothing says it is an echo the model knows. It is UNRELIABLE, and the next step named is the video
    source, not adapt; one readable frame among blank ones is scored as usual."""
    from edge_tan.export.ood_fit import feature_runner
    from edge_tan.runtime.embed import LVTracker
    m, md, ref = tan
    r = feature_runner(m, md, ref)
    seq = toy_sequence("in", T=4, seed=202)
    blank = [np.full_like(seq.frames[0], 17) for _ in range(4)]
    res = Tracker(r).track(blank)
    assert all(x.state == "lost" and x.reason == "blank frame" for x in res)
    q, _ = qcm.assess(res, blank, 25.0, {"ef_percent": None})
    assert q["ood"]["out_of_domain"] and q["ood"]["score"] is None and not q["reliable"]
    assert q["reasons"][0] == "images: every frame blank or noise, none the model could read: check the probe and the video source"
    assert qcm.gate_other_view({"reliable": True, "reasons": []}, res)["reasons"][0].startswith("second-view images: every frame blank")
    live = LVTracker(r)
    assert not live.domain()["out_of_domain"]            # nothing pushed yet: no verdict
    for f in blank:
        live.push(f)
    dom = live.domain()
    assert dom["out_of_domain"] and dom["score"] is None and "every frame blank" in dom["reason"]
    live.push(seq.frames[0])
    dom = live.domain()
    assert dom["score"] is not None and dom["out_of_domain"] == (dom["score"] > dom["threshold"])


def test_qc_without_gate_says_so_and_site_threshold_overrides(tan):
    m, md, ref = tan
    from edge_tan.export.ood_fit import feature_runner
    seq = toy_sequence("in", T=6, seed=201)
    plain = copy.deepcopy(md)
    plain.ood = {}
    res = Tracker(feature_runner(m, plain)).track(list(seq.frames))
    q, _ = qcm.assess(res, list(seq.frames), 25.0)
    assert q["ood"]["threshold"] is None and "no gate" in q["ood"]["status"]
    res = Tracker(feature_runner(m, md, ref)).track(list(seq.frames))
    site = qcm.load_model()
    site.info = {**site.info, "ood_clip_threshold": 1e-3}
    q, _ = qcm.assess(res, list(seq.frames), 25.0, model=site)
    assert q["ood"]["out_of_domain"] and q["ood"]["threshold"] == 0.001 and "site threshold" in q["ood"]["status"]


def test_adapt_moves_the_reference_to_the_site(tan):
    """export/adapt/ood.py: re-estimated on the site's clips (some held back for the thresholds), the
    reference accepts the site's clips it never saw and refuses the phantom it used to accept."""
    from edge_tan.export.adapt.ood import site_reference
    from edge_tan.export.ood_fit import clip_frame_scores
    m, md, ref = tan
    site = [_Clip(_restyle(toy_sequence(f"s{i}", T=8, seed=300 + i).frames, seed=i)) for i in range(8)]
    new = load_reference(site_reference(m, md, site, seed=0, max_frames=8, log=lambda *_: None))
    assert new.to_dict()["format"] == FORMAT_KNN and "site clips" in new.info["fitted_on"]
    unseen_site = [_Clip(_restyle(toy_sequence("u", T=8, seed=400).frames, seed=9))]
    phantom = [toy_sequence("p", T=8, seed=401)]
    s_site_new = np.median(clip_frame_scores(m, md, new, unseen_site)[0])
    s_site_old = np.median(clip_frame_scores(m, md, ref, unseen_site)[0])
    s_ph_new = np.median(clip_frame_scores(m, md, new, phantom)[0])
    assert s_site_old > ref.clip_threshold          # before: the site is out of domain
    assert s_site_new <= new.clip_threshold         # after: its unseen clip is accepted
    assert s_ph_new > new.clip_threshold            # and the phantom it differs from is refused
    assert site_reference(m, md, site[:3], log=lambda *_: None) == {}   # too few clips: no reference


def test_artifact_without_feat_output_runs_without_gate(tmp_path):
    """An ONNX file from before issue 25 (three outputs, no `ood` metadata) loads and tracks; QC says no gate."""
    from edge_tan.targets.onnxruntime import OrtRunner
    model, md = tiny_model()
    r = OrtRunner(export_plain(model, md, tmp_path / "old.onnx"), threads=1)
    tk = Tracker(r)
    assert tk.ood is None
    seq = toy_sequence("o", T=4)
    res = tk.track(list(seq.frames))
    assert all(np.isnan(x.ood_score) for x in res)
    assert "no gate" in qcm.assess(res, list(seq.frames), 25.0)[0]["ood"]["status"]


def test_biplane_second_view_and_calibrate_threshold(tmp_path):
    """The second view of --biplane passes the same gate; qc-calibrate --ood-threshold stores a site threshold."""
    import json
    from edge_tan.qc_calibrate import calibrate
    from edge_tan.runtime.tracker import FrameResult
    far = [FrameResult(index=i, frame_hw=(8, 8), state="track", ood_score=9.0, ood_threshold=2.0) for i in range(4)]
    before = {"reliable": True, "reasons": []}
    qc = qcm.gate_other_view(before, far)
    assert before == {"reliable": True, "reasons": []}   # a new block; the one passed in is left as it was
    assert not qc["reliable"] and qc["reasons"][0].startswith("second-view images unlike the model's training data")
    near = [FrameResult(index=i, frame_hw=(8, 8), state="track", ood_score=1.0, ood_threshold=2.0) for i in range(4)]
    qc = qcm.gate_other_view({"reliable": True, "reasons": []}, near)
    assert qc["reliable"] and qc["ood_biplane"]["score"] == 1.0
    comps = {k: 0.1 for k in qcm.FEATURES}
    clips = [{"name": f"c{i}", "ef_err": 2.0 + 3 * i, "qc": {"components": comps, "ood": {"score": 1.0 + i}}}
             for i in range(12)]
    (tmp_path / "e.json").write_text(json.dumps({"clips": clips}))
    d = calibrate([tmp_path / "e.json"], tmp_path / "site.json", refit=True, ood_threshold=4.5)
    assert d["info"]["ood_clip_threshold"] == 4.5 and d["info"]["ood_flagged_here"] == round(8 / 12, 4)
    assert qcm.load_model(tmp_path / "site.json").info["ood_clip_threshold"] == 4.5

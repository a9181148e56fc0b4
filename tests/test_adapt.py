"""`edge-tan adapt` on a tiny TAN and toy clips: bad inputs, the written weights (load, run, record),
resume, BatchNorm statistics moving to the site, and the pseudo-label filter."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edge_tan.runtime import geometry as geo
from edge_tan.cli import app
from edge_tan.runtime.errors import EdgeTanError, UsageError
from edge_tan.export.adapt.bn import bn_layers, reestimate_bn, to_input
from edge_tan.runtime.hashing import file_sha256
from edge_tan.export.adapt.pseudo import filter_clip
from edge_tan.export.adapt.run import AdaptConfig, adapt
from edge_tan.export.models.registry import build_model, make_metadata, model_kwargs
from edge_tan.export.weights import load_weights, read_header, save_weights
from edge_tan.runtime.tracker import FrameResult
from tests.conftest import toy_dataset, toy_sequence


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A tiny TAN (64 px window), 3 toy clips + a broken one + a text file, and a labelled toy 'phantom'."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("adapt")
    torch.manual_seed(0)
    kw = model_kwargs("tan", width=0.25)
    m = build_model("tan", **kw)
    md = make_metadata(m, "tan", kw, template=geo.build_template(toy_sequence().landmarks, size=64), size=64,
                       trained=True, training={"note": "tiny test model"})
    md.input_norm = "equalize"
    save_weights(m, md, root / "tiny.safetensors")
    toy_dataset(root / "clips", n=3, T=8, H=80, W=96)
    toy_dataset(root / "phantom", n=2, T=8, H=80, W=96)
    (root / "clips" / "sub").mkdir()
    (root / "clips" / "sub" / "broken.avi").write_bytes(b"not a video" * 20)
    (root / "clips" / "notes.txt").write_text("not a clip")
    return root


def _cfg(site, **kw):
    base = dict(weights=str(site / "tiny.safetensors"), clips=str(site / "clips"), out=str(site / "new.safetensors"),
                minutes=0.1, phantom=str(site / "phantom"), threads=1,
                phases="bn,phantom,self")   # the whole chain (the default leaves the phantom phase out)
    base.update(kw)
    return AdaptConfig(**base)


@pytest.fixture(scope="module")
def adapted(site):
    rec = adapt(_cfg(site))
    return site / "new.safetensors", rec


def test_bad_inputs_one_error_nothing_written(site, tmp_path):
    out = tmp_path / "x.safetensors"
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeTanError, match="no readable clips"):
        adapt(_cfg(site, clips=str(tmp_path / "empty"), out=str(out)))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.mp4").write_bytes(b"garbage" * 50)
    with pytest.raises(EdgeTanError, match="no readable clips.*a.mp4"):
        adapt(_cfg(site, clips=str(tmp_path / "bad"), out=str(out)))
    (tmp_path / "w.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(EdgeTanError, match="not a TAN weights file"):
        adapt(_cfg(site, weights=str(tmp_path / "w.safetensors"), out=str(out)))
    with pytest.raises(UsageError, match="--minutes must be > 0"):
        adapt(_cfg(site, minutes=0, out=str(out)))
    assert not out.exists() and not list(tmp_path.glob(".x.*"))
    r = CliRunner().invoke(app, ["adapt", str(site / "tiny.safetensors"), str(tmp_path / "empty"), "--out", str(out)])
    assert r.exit_code != 0 and "edge-tan: error:" in r.output and "Traceback" not in r.output


def test_written_weights_load_run_and_record(site, adapted):
    from edge_tan.export.torch_ref import TorchRunner
    path, rec = adapted
    runner = TorchRunner(path)
    src = TorchRunner(site / "tiny.safetensors")
    assert runner.metadata.template == src.metadata.template and runner.metadata.window == 64
    assert runner.metadata.input_norm == "equalize"
    out = runner.infer(np.zeros((1, 1, 64, 64), np.float32))
    assert out["seg"].shape == (1, 2, 64, 64) and out["landmarks"].shape == (1, 6)
    ad = runner.metadata.training["adaptation"]
    assert runner.metadata.training["note"] == "tiny test model"          # the source record is kept
    assert ad["clips"]["used"] == 3 and ad["clips"]["skipped"] == 1
    assert ad["clips"]["skip_report"][0]["file"].endswith("broken.avi")
    assert ad["clips"]["sha256"]["toy00.npz"] == file_sha256(site / "clips" / "toy00.npz")
    assert ad["from_weights_sha256"] == src.metadata.weights_sha256 != runner.metadata.weights_sha256
    assert set(ad["phases"]) == {"look", "phantom", "label", "self", "final"}
    assert ad["phases"]["look"]["bn"]["updated"] and ad["phases"]["final"]["bn"]["windows"] >= 2
    assert ad["phases"]["phantom"]["steps"] >= 1 and ad["settings"]["minutes"] == 0.1
    assert len(json.dumps(read_header(path))) < 20000    # counts and hashes, no images


def test_resume_continues_and_guards_the_work_folder(site, adapted):
    path, _ = adapted
    work = site / "new.safetensors.work"
    st = json.loads((work / "state.json").read_text())
    steps = st["done"]["phantom"]["steps"]
    del st["done"]["final"]                       # as if the run had stopped before its last phase
    (work / "state.json").write_text(json.dumps(st))
    rec = adapt(_cfg(site))
    assert rec["phases"]["phantom"]["steps"] == steps and "final" in rec["phases"]
    assert json.loads((work / "state.json").read_text())["done"]["phantom"]["steps"] == steps
    with pytest.raises(EdgeTanError, match="holds an adaptation of other"):
        adapt(_cfg(site, seed=5))


def test_bn_statistics_move_to_the_site():
    torch.manual_seed(0)
    kw = model_kwargs("tan", width=0.25)
    m = build_model("tan", **kw)
    md = make_metadata(m, "tan", kw, size=64)
    rng = np.random.default_rng(0)
    phantom = rng.integers(0, 120, (16, 64, 64)).astype(np.uint8)      # dark "training" windows
    site = rng.integers(100, 256, (16, 64, 64)).astype(np.uint8)       # bright site windows
    first = bn_layers(m)[0]
    reestimate_bn(m, phantom, md)
    before = first.running_mean.clone()
    reestimate_bn(m, site, md)
    after = first.running_mean.clone()
    feats = {}
    conv = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)][0]
    hook = conv.register_forward_hook(lambda mod, i, o: feats.setdefault("x", o.detach()))
    with torch.no_grad():
        m.eval()(to_input(site, md))
    hook.remove()
    target = feats["x"].mean((0, 2, 3))
    assert (after - target).abs().mean() < 1e-3 < (before - target).abs().mean()


def _result(t, mask, lm, hw):
    return FrameResult(index=t, frame_hw=hw, state="track", landmarks=lm.astype(np.float32), mask_crop=mask,
                       mask_origin=(0, 0), view="A4C")


def test_pseudo_filter_rejects_inconsistent_frames():
    seq = toy_sequence("c", T=10, H=96, W=112)
    hw = seq.frames.shape[1:]
    fwd = [_result(t, seq.masks[t], seq.landmarks[t], hw) for t in range(10)]
    bwd = []
    for t in range(10):
        m, lm = seq.masks[t], seq.landmarks[t]
        if t in (3, 4):   # the backward pass drifted 8 px on these frames
            m, lm = np.roll(m, 8, axis=1), lm + np.float32([8, 0])
        if t == 7:        # both passes agree on a ragged, non-LV shape
            m = m.copy()
            m[::3] = 0
            fwd[7] = _result(7, m, lm, hw)
        bwd.append(_result(t, m, lm, hw))
    sign = float(np.sign(geo.triangle_area(seq.landmarks[0])))
    out, why = filter_clip(seq, fwd, list(reversed(bwd)), sign)
    kept = out.extra["kept"]
    assert not {3, 4, 7} & set(kept) and len(kept) >= 5
    assert why["forward/backward masks disagree"] + why["forward/backward landmarks disagree"] == 2
    assert out.masks.shape == (len(kept), 96, 112) and out.labeled.all() and out.view == "A4C"
    # a site that says its clips are A2C overrides the model's (A4C) call; no say: the model's call stays
    assert filter_clip(seq, fwd, list(reversed(bwd)), sign, site_view="A2C")[0].view == "A2C"


def test_adapt_refuses_an_unknown_view(tmp_path):
    from edge_tan.export.adapt.run import AdaptConfig, _check
    from edge_tan.runtime.errors import UsageError
    with pytest.raises(UsageError, match="--view must be one of"):
        _check(AdaptConfig(weights="w.safetensors", clips=str(tmp_path), out=str(tmp_path / "o.safetensors"), view="PLAX"))


def test_style_moves_phantom_windows_towards_the_site():
    from edge_tan.export.adapt.style import _centred_amp, build_style, fda, stylise
    rng = np.random.default_rng(0)
    yy = np.linspace(0, 1, 64)[:, None] * np.ones((1, 64))
    site = np.clip(60 + 120 * yy[None] + rng.normal(0, 8, (12, 64, 64)), 3, 255).astype(np.uint8)   # bright at depth
    style = build_style(site, beta=0.05)
    src = np.clip(rng.normal(100, 20, (64, 64)), 3, 255).astype(np.uint8)
    b, c = style.half, 32
    blk = lambda w: _centred_amp(w)[c - b:c + b + 1, c - b:c + b + 1]   # noqa: E731
    out = fda(src, style.amp[0], 1.0)
    assert np.abs(blk(out) - style.amp[0]).mean() < 0.2 * np.abs(blk(src) - style.amp[0]).mean()
    src[:, :8] = 0                                             # outside the sector
    styled = stylise(src, style, np.random.default_rng(1))
    assert (styled[:, :8] == 0).all() and styled.shape == src.shape


def test_fast_runner_gives_the_torch_answer(site, tmp_path):
    """The tracking phases run an ONNX Runtime export of the in-memory model (how adapt reaches every
    clip of a site on a CPU): same outputs as the torch module; torch below the frame count that pays."""
    from edge_tan.export.adapt.windows import EXPORT_PAYS_FRAMES, fast_runner
    from edge_tan.export.weights import load_weights
    model, md = load_weights(site / "tiny.safetensors")
    fast = fast_runner(model, md, tmp_path / "look.onnx", EXPORT_PAYS_FRAMES)
    slow = fast_runner(model, md, tmp_path / "unused.onnx", EXPORT_PAYS_FRAMES - 1)
    assert fast.backend == "onnxruntime" and slow.backend == "torch" and not (tmp_path / "unused.onnx").exists()
    x = np.random.default_rng(0).normal(size=(1, 1, 64, 64)).astype(np.float32)
    a, b = fast.infer(x), slow.infer(x)
    for k in ("seg", "landmarks", "view"):
        assert np.abs(a[k] - b[k]).max() < 1e-3


def test_site_clips_keep_every_nth_frame(tmp_path):
    from edge_tan.export.adapt.clips import unlabelled
    s = toy_sequence(T=20)
    u = unlabelled(s, 6, stride=2)
    assert u.n_frames == 6 and np.array_equal(u.frames, s.frames[:12:2]) and u.fps == s.fps / 2 and u.masks is None


class _DarkIsLV(torch.nn.Module):
    """TEST DOUBLE: 'segments' dark pixels (equivariant by construction) and returns zero landmark offsets
    (landmarks that follow the window: the failure the consistency term is for)."""

    def __init__(self, shift: int = 0):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        lv = -8.0 * (x + 0.5)
        if self.shift:
            lv = torch.roll(lv, self.shift, dims=-1)     # a mask that sits off the dark region by `shift` px
        seg = torch.cat([torch.zeros_like(lv), lv], 1)
        return seg, torch.zeros(x.shape[0], 6), torch.zeros(x.shape[0], 2)


def test_window_pairs_consistency_sees_what_follows_the_window():
    """equivariance.py: two jittered windows of one frame, compared in window 1's coordinates. An
    equivariant segmenter scores (almost) no mask disagreement; one offset from the image by a few px
    scores more; landmarks that follow the window disagree by about the jitter."""
    from edge_tan.export.adapt.equivariance import WindowPairs, consistency_loss
    from edge_tan.runtime.geometry import compose
    seqs = [toy_sequence(T=6, H=80, W=96)]
    tpl = geo.build_template(seqs[0].landmarks, size=64)
    pairs = WindowPairs(seqs, tpl, 64, "affine", "none", seed=0)
    items = [pairs[i] for i in range(4)]
    for it in items:
        assert np.allclose(compose(it["a21"], it["a12"]), np.eye(3)[:2], atol=1e-4)   # inverse of each other
    batch = {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}
    t = torch.from_numpy(tpl.astype(np.float32))
    _, ok = consistency_loss(_DarkIsLV(), batch, t)
    _, off = consistency_loss(_DarkIsLV(shift=4), batch, t)
    assert float(ok["eq_seg"]) < 0.5 * float(off["eq_seg"]), (ok, off)
    assert float(ok["eq_lmk"]) > 0.05                      # zero offsets = landmarks glued to each window
    same = dict(batch, x2=batch["x1"], a21=torch.eye(3)[:2].expand(4, 2, 3).contiguous(),
                a12=torch.eye(3)[:2].expand(4, 2, 3).contiguous())
    loss, parts = consistency_loss(_DarkIsLV(shift=4), same, t)
    assert float(loss) < 1e-6                              # one window twice: nothing to disagree on


def test_view_refit_fits_only_the_head_linears_and_keeps_both_phantom_views():
    """view_refit: the head learns the site's view on held-out site windows while the phantom's two
    views stay apart; nothing but the head's two Linear layers moves. The encoder is a fixed stand-in
    (pooled 8x8 image through a fixed projection) so the features are informative without training."""
    from torch import nn as tnn

    from edge_tan.export.adapt.view_refit import refit_view_head

    class FixedEncoder(tnn.Module):
        def __init__(self, c):
            super().__init__()
            self.proj = tnn.Linear(64, c)
            self.proj.requires_grad_(False)

        def forward(self, x):
            f = self.proj(tnn.functional.adaptive_avg_pool2d(x, 8).flatten(1))[:, :, None, None]
            return [None] * 4 + [f]

    torch.manual_seed(0)
    m = build_model("tan", width=0.25).eval()
    m.encoder = FixedEncoder(m.view_head[0].num_features)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]

    def wins(n, pattern):
        return np.stack([np.clip(pattern + rng.normal(0, 20, (64, 64)), 0, 255).astype(np.uint8) for _ in range(n)])
    site = wins(60, 120 + 80 * ((xx // 8 + yy // 8) % 2))                 # the site's look: a checkerboard
    a2c, a4c = wins(40, 200 * (xx < 32)), wins(40, 200 * (xx >= 32))       # the two "views": bright left / right
    before = {k: v.clone() for k, v in m.state_dict().items()}
    rep = refit_view_head(m, site, 1, np.concatenate([a2c, a4c]), np.r_[np.zeros(40), np.ones(40)].astype(int))
    moved = {k for k, v in m.state_dict().items() if not torch.equal(before[k], v)}
    assert moved and all(k.startswith("view_head.") and k.split(".")[1] in ("1", "3") for k in moved)
    assert rep["site_windows"] == 60 and rep["phantom_windows"] == 80 and rep["steps"] > 0
    assert rep["held_out_accuracy_after"]["site"] == 1.0 and rep["held_out_accuracy_after"]["phantom"] == 1.0
    assert rep["held_out_accuracy_before"]["phantom"] < 1.0     # it had to learn it
    assert all(p.requires_grad for p in m.view_head.parameters())
    # one view per window (clips of both views at the site): the checkerboard's dark-left copies say A2C
    mixed = np.concatenate([np.minimum(site[:30], 255 - 200 * (xx >= 32)[None]).astype(np.uint8), site[30:]])
    rep = refit_view_head(m, mixed, np.r_[np.zeros(30), np.ones(30)].astype(int), np.concatenate([a2c, a4c]),
                          np.r_[np.zeros(40), np.ones(40)].astype(int))
    assert rep["site_windows"] == 60 and rep["held_out_accuracy_after"]["site"] >= 0.9


def test_adapt_with_a_site_view_refits_the_view_head(site, tmp_path):
    def final(**kw):
        name = kw.get("view") or "none"
        cfg = _cfg(site, out=str(tmp_path / f"{name}.safetensors"), work=str(tmp_path / f"{name}.work"), phases="bn,self", **kw)
        return adapt(cfg)["phases"]["final"]
    v = final(view="A4C")["view_refit"]
    assert v["site_windows"] > 0 and v["phantom_windows"] == v["site_windows"]
    v = final()["view_refit"]               # no site view: each clip's pseudo-labels give its view
    assert v["labels"] == "pseudo-label clip views"
    assert "skipped" in v or sum(v["clips_per_view"].values()) >= 3


def test_view_refit_labels_windows_by_their_clip_and_leaves_unknown_clips_out():
    from edge_tan.export.adapt.view_refit import labelled_windows
    owners = [0, 0, 1, 1, 1, 2, 2, 3]
    pick, views = labelled_windows(owners, {0: 1, 2: 0, 3: 1}, 0, 0)
    assert pick.tolist() == [0, 1, 5, 6, 7] and views.tolist() == [1, 1, 0, 0, 1]
    pick, views = labelled_windows(owners, {0: 1, 2: 0, 3: 1}, 3, 0)
    assert len(pick) == 3 and set(pick) <= {0, 1, 5, 6, 7}
    assert views.tolist() == [{0: 1, 1: 1, 5: 0, 6: 0, 7: 1}[k] for k in pick]
    assert labelled_windows(owners, {}, 0, 0)[0].size == 0


def test_clip_views_come_from_pseudo_labels_or_the_site(tmp_path):
    """_clip_views: without --view, a clip's view is the one its saved pseudo-labels carry (none: left
    out); with --view every clip gets the site's."""
    from types import SimpleNamespace

    from edge_tan.dataset import save_sequence
    from edge_tan.export.adapt.run import Adapter
    (tmp_path / "pseudo").mkdir()
    for i, view in ((0, "A4C"), (2, "A2C"), (3, "")):
        save_sequence(toy_sequence(T=2, view=view), tmp_path / "pseudo" / f"{i:05d}.npz")
    me = SimpleNamespace(cfg=SimpleNamespace(view=""), work=tmp_path, clips=SimpleNamespace(seqs=[None] * 5))
    assert Adapter._clip_views(me) == {0: 1, 2: 0}
    me.cfg.view = "A2C"
    assert Adapter._clip_views(me) == {i: 0 for i in range(5)}


def test_recording_runner_knows_which_clip_each_window_came_from(site):
    from edge_tan.export.adapt.windows import RecordingRunner, torch_runner, track_all
    m, md = load_weights(site / "tiny.safetensors")
    rec = RecordingRunner(torch_runner(m, md))
    seqs = [toy_sequence(T=3, H=80, W=96, seed=s) for s in (1, 2)]
    track_all(rec, seqs)
    assert len(rec.owners) == len(rec.windows) and set(rec.owners) == {0, 1}
    assert rec.owners == sorted(rec.owners)          # clip 0's windows, then clip 1's

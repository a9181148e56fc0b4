"""Training on the toy dataset: loss falls (OHEM, with and without TCM), outputs written, resume works."""

import json

import numpy as np
import pytest
import torch

from edge_tan.runtime.errors import EdgeTanError
from edge_tan.export.train import losses as L
from edge_tan.export.train.loop import TrainConfig, lr_at, train
from edge_tan.export.train.samples import WarpedSamples, load_split_sequences, training_template
from edge_tan.export.train.tcm import flow_labels, flow_mask, hausdorff
from edge_tan.export.weights import load_weights
from tests.conftest import toy_dataset, toy_sequence


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    toy_dataset(d, n=4, T=8, H=80, W=96)
    return d


def cfg(data, out, **kw):
    base = dict(data_dir=str(data), model="tan", out=str(out), epochs=3, batch_size=8, size=64, width=0.25,
                samples_per_epoch=48, lr=3e-3, seed=0, device="cpu", workers=0, resume=True)
    base.update(kw)
    return TrainConfig(**base)


def _log(out):
    return [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("tcm", [False, True])
def test_loss_falls_and_outputs(data, tmp_path, tcm):
    torch.set_num_threads(1)
    s = train(cfg(data, tmp_path / "run", tcm=tcm))
    log = _log(tmp_path / "run")
    assert len(log) == 3 and log[-1]["loss"] < log[0]["loss"]
    assert 0.0 <= s["best_val_dice"] <= 1.0
    m, md = load_weights(tmp_path / "run" / "best.safetensors")
    assert md.trained and md.window == 64 and md.model_name == "tan"
    assert md.training["tcm"] is tcm and md.training["arch"]["kwargs"]["width"] == 0.25
    summ = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summ["epochs_done"] == 3 and "device" in summ
    if tcm:
        assert summ["recipe"]["tcm_stats"]["kept"] > 0


def test_ood_reference_fitted_kept_or_skipped(data, tmp_path, capsys):
    """A resumed run with nothing new keeps the reference fitted to its weights; --no-ood writes none;
    a dataset the fit cannot use leaves the weights without one and says how to fit it (not fatal);
    a baseline has no feature output to fit."""
    torch.set_num_threads(1)
    out = tmp_path / "run"
    # a small step size keeps the toy network's pooled features varied (at 3e-3 this tiny net collapses
    # to one feature vector, which the fit refuses: see the set_thresholds test in test_ood.py)
    s = train(cfg(data, out, epochs=1, samples_per_epoch=16, lr=1e-5))
    md = load_weights(out / "best.safetensors")[1]
    assert s["ood"]["status"] == "fitted" and md.ood["method"] == "knn-cosine"
    assert md.ood["info"]["weights_sha256"] == md.weights_sha256 and md.ood["info"]["fitted_on"] == f"train split of {data.name}"
    assert json.loads((out / "summary.json").read_text())["ood"]["frame_threshold"] == md.ood["frame_threshold"]
    s = train(cfg(data, out, epochs=1, samples_per_epoch=16, lr=1e-5))   # already done: no new steps, no refit
    assert s["ood"]["status"] == "current" and load_weights(out / "best.safetensors")[1].ood == md.ood
    s = train(cfg(data, tmp_path / "off", epochs=1, samples_per_epoch=16, ood=False))
    assert s["ood"] == {"status": "off"} and not load_weights(tmp_path / "off" / "best.safetensors")[1].ood
    few = tmp_path / "few"
    toy_dataset(few, n=2, T=8, H=80, W=96)   # one clip in train: too few for the statistics
    capsys.readouterr()
    s = train(cfg(few, tmp_path / "few-run", epochs=1, samples_per_epoch=16))
    assert s["ood"]["status"] == "failed" and not load_weights(tmp_path / "few-run" / "best.safetensors")[1].ood
    err = " ".join(capsys.readouterr().err.split())   # the console may wrap the line
    assert "no out-of-domain reference: " in err and "needs >= 2 clips in the train split" in err
    assert "fit one with `edge-tan ood-fit WEIGHTS DATA --out W`" in err
    assert json.loads((tmp_path / "few-run" / "summary.json").read_text())["ood"]["status"] == "failed"
    s = train(cfg(data, tmp_path / "unet", epochs=1, samples_per_epoch=16, model="unet"))
    assert s["ood"]["status"] == "n/a"


def test_resume_continues(data, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    train(cfg(data, out, epochs=1, model="unet", samples_per_epoch=16))
    s = train(cfg(data, out, epochs=2, model="unet", samples_per_epoch=16))
    log = _log(out)
    assert [r["epoch"] for r in log] == [1, 2] and s["steps"] == 4
    s = train(cfg(data, out, epochs=2, model="unet", samples_per_epoch=16))   # already done: no new steps
    assert s["steps"] == 4 and len(_log(out)) == 2


def test_bad_inputs(data, tmp_path):
    with pytest.raises(EdgeTanError, match="multiple of 32"):
        train(cfg(data, tmp_path / "r", size=70))
    with pytest.raises(EdgeTanError, match="no manifest"):
        train(cfg(tmp_path, tmp_path / "r"))


def test_ohem_takes_hardest_pixels():
    logits = torch.zeros(1, 2, 10, 10)
    target = torch.zeros(1, 10, 10, dtype=torch.long)
    logits[0, 1, :1, :] = 10.0          # 10 badly wrong pixels out of 100
    v = L.ohem_ce(logits, target, 0.1)
    assert v.shape == (1,) and v.item() > 9.0   # mean over the wrong 10 %, not diluted by easy ones


def test_samples_targets_consistent(data):
    seqs = load_split_sequences(data, "train")
    tpl = training_template(seqs, 64, "affine")
    ds = WarpedSamples(seqs, tpl, 64, "affine", 50, seed=3, detect_p=0.0)
    a, b = ds[7], ds[7]
    assert np.array_equal(a["image"], b["image"])   # reproducible from (seed, index)
    offs = np.stack([ds[i]["landmarks"] for i in range(20)])
    assert np.abs(offs).max() < 40   # jitter within paper ranges keeps landmarks near the template
    assert a["image"].shape == (1, 64, 64) and a["image"].dtype == np.uint8 and a["mask"].max() == 1


def test_tcm_flow_label_tracks_motion():
    s = toy_sequence(T=8, H=96, W=112)
    m = flow_mask(s.frames[2], s.frames[3], s.masks[2])
    assert m is not None and hausdorff(m, s.masks[3]) < 4.0
    labels, st = flow_labels([s], thresh=0.01)   # impossible threshold: every pair gated
    assert st["pairs"] == 7 and st["kept"] == 0 and st["gated_hausdorff"] == 7 and not labels


def test_lr_schedule():
    assert lr_at(0.0, 1.0) < lr_at(0.05, 1.0)
    assert lr_at(1.0, 1.0) == pytest.approx(0.02)


def test_tcm_sparse_labels_use_area_gate():
    s = toy_sequence(T=8, H=96, W=112)
    s.labeled = np.zeros(8, bool)
    s.labeled[[0, 4]] = True   # ED/ES-style sparse labels: t+1 has no manual label to compare with
    labels, st = flow_labels([s])
    assert st["pairs"] == 2 and set(labels) == {(0, 1), (0, 5)}


@pytest.mark.parametrize("name", ["mobilenetv2", "crop", "unet", "pspnet"])
def test_every_registered_model_trains(data, tmp_path, name):
    """`edge-tan train` runs for every registered architecture (tiny steps; TAN itself is covered above)."""
    torch.set_num_threads(2)
    s = train(cfg(data, tmp_path / name, model=name, epochs=1, batch_size=2, samples_per_epoch=4))
    m, md = load_weights(tmp_path / name / "best.safetensors")
    assert md.model_name == name and md.warp_mode == {"crop": "crop", "mobilenetv2": "none"}.get(name, "none")
    assert np.isfinite(s["best_val_dice"])


def test_init_warm_start_and_legacy_plain_head(data, tmp_path):
    """--init fine-tunes from a weights file (its template kept); a file from before the normalised view
    head (no `view_head` kwarg stored) still loads as the plain head and warm-starts the new one."""
    from edge_tan.export.models.registry import build_model, make_metadata
    from edge_tan.export.weights import save_weights
    torch.set_num_threads(1)
    old = build_model("tan", width=0.25, view_head="plain")
    tpl = np.array([[30.0, 8.0], [18.0, 40.0], [44.0, 40.0]], np.float32)
    md = make_metadata(old, "tan", {"width": 0.25, "warp_mode": "affine"}, template=tpl, size=64, trained=True)
    save_weights(old, md, tmp_path / "old.safetensors")
    m, md2 = load_weights(tmp_path / "old.safetensors")
    assert len(m.view_head) == 3 and np.allclose(md2.template_array, tpl)
    s = train(cfg(data, tmp_path / "ft", epochs=1, init=str(tmp_path / "old.safetensors")))
    assert "view head re-initialised" in s["recipe"]["init"]
    m, md3 = load_weights(tmp_path / "ft" / "best.safetensors")
    assert isinstance(m.view_head[0], torch.nn.BatchNorm1d) and np.allclose(md3.template_array, tpl)
    enc_old = old.encoder.state_dict()
    assert any(not torch.equal(v, enc_old[k]) for k, v in m.encoder.state_dict().items() if v.is_floating_point())
    with pytest.raises(EdgeTanError, match="holds model 'tan'"):
        train(cfg(data, tmp_path / "bad", model="unet", epochs=1, init=str(tmp_path / "old.safetensors")))


def test_normalised_view_head_learns_despite_feature_offset():
    """The BN-fronted view head fits a view cue even when the pooled features carry a large common
    offset (what killed the plain head's ReLUs in the CPU default-model run)."""
    from edge_tan.export.models.tan import TAN
    torch.manual_seed(0)
    net = TAN(width=0.25)
    head = net.view_head
    c = head[0].num_features
    cue = torch.randn(c)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3)
    for _ in range(150):
        y = torch.randint(0, 2, (32,))
        g = 40.0 + 5.0 * torch.rand(32, c) + 0.5 * (2.0 * y[:, None] - 1.0) * cue
        loss = torch.nn.functional.cross_entropy(head(g), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    y = torch.randint(0, 2, (256,))
    g = 40.0 + 5.0 * torch.rand(256, c) + 0.5 * (2.0 * y[:, None] - 1.0) * cue
    assert (head(g).argmax(1) == y).float().mean() > 0.95 and loss.item() < 0.2


def test_point_jitter_feeds_sheared_windows(data):
    """About half the tracked samples are warped by a non-similarity relative to the exact affine (the
    per-landmark error a closed loop makes); the rest only by the paper's similarity jitter."""
    from edge_tan.export.train.samples import base_affine, sample_affine
    from edge_tan.runtime.geometry import compose, invert_affine
    seqs = load_split_sequences(data, "train")
    tpl = training_template(seqs, 64, "affine")
    s, t = seqs[0], 3
    M0 = base_affine(s, t, tpl, 64, "affine")
    sheared = 0
    for k in range(200):
        J = compose(sample_affine(s, t, tpl, 64, "affine", np.random.default_rng(k), detect_p=0.0),
                    invert_affine(M0))[:, :2]
        # a similarity has J = [[a, -b], [b, a]]
        sheared += abs(J[0, 0] - J[1, 1]) + abs(J[0, 1] + J[1, 0]) > 1e-3
    assert 60 < sheared < 140


@pytest.mark.parametrize("head", ["norm", "plain"])
def test_refit_view_head_on_frozen_network(data, tmp_path, head):
    """`edge-tan refit-view` re-fits either head kind and leaves everything else bit-identical."""
    from edge_tan.export.models.registry import build_model, make_metadata
    from edge_tan.export.train.view_head import fit_view_head
    from edge_tan.export.weights import save_weights
    torch.set_num_threads(1)
    m0 = build_model("tan", width=0.25, view_head=head)
    tpl = training_template(load_split_sequences(data, "train"), 64, "affine")
    md = make_metadata(m0, "tan", {"width": 0.25, "warp_mode": "affine", "view_head": head}, template=tpl,
                       size=64, trained=True)
    save_weights(m0, md, tmp_path / "w.safetensors")
    rep = fit_view_head(tmp_path / "w.safetensors", data, tmp_path / "w2.safetensors", minutes=0.01, batch_size=8)
    assert rep["steps"] > 0 and 0.0 <= rep["val_view_acc"] <= 1.0
    m1, md1 = load_weights(tmp_path / "w2.safetensors")
    assert md1.training["view_head_refit"]["steps"] == rep["steps"]
    before, after = m0.state_dict(), m1.state_dict()
    changed = {k for k in before if not torch.equal(before[k].float(), after[k].float())}
    assert changed and all(k.startswith("view_head.") for k in changed)
    if head == "norm":
        bn = m1.view_head[0]
        assert torch.all(bn.running_var > 0)
        g = torch.randn(4, bn.num_features) + bn.running_mean
        z = (g - bn.running_mean) / bn.running_var.sqrt()   # the standardisation the MLP was fitted on
        assert torch.allclose(bn.eval()(g), z, rtol=1e-4, atol=1e-4)


def test_wrong_lock_windows_stretch_or_cut_the_long_axis(data):
    """Some tracked samples come from a wrong lock (annulus slid into the LA, or short of the mitral
    plane): the true LV then appears shortened or lengthened along its axis in the window, while the
    targets stay the true landmarks, so the network learns to pull such a lock back."""
    from edge_tan.export.train.samples import wrong_lock_affine
    from edge_tan.runtime.geometry import transform_points
    seqs = load_split_sequences(data, "train")
    tpl = training_template(seqs, 64, "affine")
    s, t = seqs[0], 3
    rng = np.random.default_rng(0)
    length = lambda p: np.linalg.norm(p[1:].mean(0) - p[0])  # noqa: E731
    width = lambda p: np.linalg.norm(p[2] - p[1])  # noqa: E731
    r_len, r_wid = [], []
    for _ in range(60):
        lm = transform_points(s.landmarks[t], wrong_lock_affine(s, t, tpl, rng))
        r_len.append(length(lm) / length(tpl))
        r_wid.append(width(lm) / width(tpl))
    r_len, r_wid = np.array(r_len), np.array(r_wid)
    assert np.mean(r_len < 0.9) > 0.5 and np.mean(r_len > 1.05) > 0.1
    assert np.std(r_len) > 2 * np.std(r_wid)      # a stretch along the axis, not a zoom

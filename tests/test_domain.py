"""Domain randomisation and the equalised training input (export/train/domain.py, samples.py, loop.py):
shapes and dtypes kept, labels stay aligned, the sector cut never cuts the LV, the background is left
alone, samples are reproducible, and a run writes its input_norm and DR settings into the weights."""

import json

import numpy as np
import pytest
import torch

from edge_tan.export.train.domain import DomainConfig, randomize_frames, sector_span
from edge_tan.export.train.loop import TrainConfig, train
from edge_tan.export.train.samples import WarpedSamples, load_split_sequences, training_template
from edge_tan.export.weights import load_weights
from edge_tan.runtime.intensity import BACKGROUND_MAX, equalize
from tests.conftest import toy_dataset

ALL_ON = DomainConfig(p=1.0, p_curve=1.0, p_gain_field=1.0, p_haze=1.0, p_dropout=1.0, p_distractor=1.0,
                      p_resolution=1.0, p_noise=1.0, p_sector=1.0)
OFF = DomainConfig(p=1.0, p_curve=0.0, p_gain_field=0.0, p_haze=0.0, p_dropout=0.0, p_distractor=0.0,
                   p_resolution=0.0, p_noise=0.0, p_sector=0.0)


def _sector_frame(h=120, w=160, seed=0):
    """A fan-shaped sector of speckle-like tissue with a bright disc (the 'LV' whose mask we track)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    ang = np.arctan2(x - (w - 1) / 2, y + 2)
    sector = (np.abs(ang) < 0.6) & (np.hypot(x - (w - 1) / 2, y) < 0.95 * h)
    f = np.where(sector, rng.integers(40, 110, (h, w)), 0).astype(np.uint8)
    lv = (np.hypot(x - 0.5 * w, y - 0.55 * h) < 0.14 * h)
    f[lv] = 220
    return f, lv.astype(np.uint8), sector


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    toy_dataset(d, n=4, T=8, H=80, W=96)
    return d


def test_randomize_keeps_shape_dtype_background_and_is_reproducible():
    f, lv, sector = _sector_frame()
    g = f.copy()
    g[5, 5] = 1   # background noise below the equalisation floor must survive untouched
    for seed in range(20):
        a = randomize_frames([g, g], lv, np.random.default_rng(seed), ALL_ON)
        b = randomize_frames([g, g], lv, np.random.default_rng(seed), ALL_ON)
        assert len(a) == 2 and all(x.dtype == np.uint8 and x.shape == g.shape for x in a)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))   # reproducible from the rng
        outside = ~sector_span(g)
        assert (a[0][outside] <= g[outside]).all()   # outside the sector: unchanged (or cut to 0)
        assert not np.array_equal(a[0], g)
    assert randomize_frames([g], lv, np.random.default_rng(0), DomainConfig(p=0.0))[0] is g


def test_both_frames_of_a_pair_get_the_same_gain_field():
    """A TCM pair shares one draw: two identical frames through a gain field and noise come out alike
    but for the noise. (The loop once reused the gain field's name for the noise multiplier, so every
    frame after the first got a scalar gain instead of the field.)"""
    f, lv, _ = _sector_frame()
    cfg = DomainConfig(p=1.0, p_curve=0.0, p_gain_field=1.0, p_haze=0.0, p_dropout=1.0, p_distractor=0.0,
                       p_resolution=0.0, p_noise=1.0, p_sector=0.0)
    inside = sector_span(f)
    for seed in range(10):
        a, b = randomize_frames([f, f], lv, np.random.default_rng(seed), cfg)
        ma, mb = a[inside].astype(float).mean(), b[inside].astype(float).mean()
        assert abs(ma - mb) < 0.1 * max(ma, mb), (seed, ma, mb)


def test_geometry_stays_aligned_with_the_labels():
    """The ops that resample the frame (down/up-sampling, anisotropic blur, grained noise; with curves
    and sector cuts) move nothing: the bright disc's centroid after equalisation stays on the mask's
    centroid, and its thresholded region still matches. (Gain fields, haze, dropout and distractors are
    pointwise products/sums or drawn shapes: they cannot move the image.)"""
    f, lv, _ = _sector_frame()
    cfg = DomainConfig(p=1.0, p_curve=1.0, p_gain_field=0.0, p_haze=0.0, p_dropout=0.0, p_distractor=0.0,
                       p_resolution=1.0, p_noise=1.0, p_sector=1.0)
    cy, cx = np.argwhere(lv).mean(0)
    for seed in range(15):
        out = equalize(randomize_frames([f], lv, np.random.default_rng(seed), cfg)[0])
        top = out >= np.percentile(out[out > 0], 100 * (1 - lv.sum() / (out > 0).sum()))
        yy, xx = np.argwhere(top & (np.hypot(*(np.mgrid[0:120, 0:160] - np.array([cy, cx])[:, None, None])) < 30)).mean(0)
        assert abs(yy - cy) < 1.0 and abs(xx - cx) < 1.0
        inter = (top & (lv > 0)).sum()
        assert inter / lv.sum() > 0.7


def test_sector_cut_never_cuts_the_lv():
    f, lv, _ = _sector_frame()
    cfg = DomainConfig(p=1.0, p_curve=0.0, p_gain_field=0.0, p_haze=0.0, p_dropout=0.0, p_distractor=0.0,
                       p_resolution=0.0, p_noise=0.0, p_sector=1.0)
    cut_some = 0
    for seed in range(20):
        out = randomize_frames([f], lv, np.random.default_rng(seed), cfg)[0]
        assert (out[lv > 0] == f[lv > 0]).all()
        cut_some += int((out == 0).sum() > (f == 0).sum())
    assert cut_some >= 10   # the cut does happen


def test_samples_equalised_and_randomised_keep_labels(data):
    seqs = load_split_sequences(data, "train")
    tpl = training_template(seqs, 64, "affine")
    plain = WarpedSamples(seqs, tpl, 64, "affine", length=100, seed=3)
    eq = WarpedSamples(seqs, tpl, 64, "affine", length=100, seed=3, input_norm="equalize")
    dr = WarpedSamples(seqs, tpl, 64, "affine", length=100, seed=3, input_norm="equalize", domain=ALL_ON)
    differ = 0
    for i in range(12):
        a, b, c = plain[i], eq[i], dr[i]
        for k in ("mask", "landmarks", "lm_valid", "view"):   # same warp: same labels
            assert np.array_equal(a[k], b[k]) and np.array_equal(a[k], c[k])
        assert c["image"].shape == a["image"].shape == (1, 64, 64) and c["image"].dtype == np.uint8
        differ += int(not np.array_equal(b["image"], c["image"]))
    assert differ >= 10
    # without photometric augmentation the equalised sample is exactly warp(equalize(frame))
    from edge_tan.export.train.samples import sample_affine
    from edge_tan.runtime.geometry import warp_image
    ds = WarpedSamples(seqs, tpl, 64, "affine", length=10, seed=3, input_norm="equalize", augment=False)
    rng = np.random.default_rng([3, 0])
    si, t = ds.items[int(rng.integers(len(ds.items)))]
    M = sample_affine(seqs[si], t, ds.template, 64, "affine", rng)
    assert np.array_equal(ds[0]["image"][0], warp_image(equalize(seqs[si].frames[t]), M, 64))


def test_init_none_file_trains_equalize_with_dr_and_workers(data, tmp_path):
    """--init from an input_norm "none" file + equalize + DR + TCM with forked workers: the run's
    input_norm is written, the template of the file kept, the DR settings recorded."""
    from edge_tan.export.models.registry import build_model, make_metadata, model_kwargs
    from edge_tan.export.weights import save_weights
    torch.set_num_threads(1)
    old = build_model("tan", width=0.25)
    tpl = np.array([[30.0, 8.0], [18.0, 40.0], [44.0, 40.0]], np.float32)
    md = make_metadata(old, "tan", model_kwargs("tan", width=0.25), template=tpl, size=64, trained=True)
    assert md.input_norm == "none"
    save_weights(old, md, tmp_path / "old.safetensors")
    cfg = TrainConfig(data_dir=str(data), model="tan", out=str(tmp_path / "ft"), tcm=True, epochs=1, batch_size=4,
                      size=64, samples_per_epoch=8, device="cpu", workers=2, init=str(tmp_path / "old.safetensors"))
    s = train(cfg)
    _, md2 = load_weights(tmp_path / "ft" / "best.safetensors")
    assert md2.input_norm == "equalize" and np.allclose(md2.template_array, tpl)
    assert md2.training["domain_random_settings"] == DomainConfig().to_dict() and md2.training["input_norm"] == "equalize"
    assert s["steps"] == 2
    cfg2 = TrainConfig(data_dir=str(data), model="tan", out=str(tmp_path / "off"), epochs=1, batch_size=4, size=64,
                       width=0.25, samples_per_epoch=4, device="cpu", input_norm="none", domain_random=False)
    train(cfg2)
    _, md3 = load_weights(tmp_path / "off" / "best.safetensors")
    assert md3.input_norm == "none" and md3.training["domain_random_settings"] is None
    summ = json.loads((tmp_path / "off" / "summary.json").read_text())
    assert summ["recipe"]["domain_random"] is False

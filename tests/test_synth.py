"""The apical-echo phantom: contract, determinism, exact ground truth, tissue-attached speckle, dataset writer."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge_tan.dataset import list_split, load_sequence
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.synth.generate import generate_dataset
from edge_tan.synth.render import generate_sequence

TINY = dict(n_frames=8, out_size=(112, 112))


def _area(seq):
    return seq.masks.reshape(seq.n_frames, -1).sum(1)


@pytest.fixture(scope="module")
def beat_a4c():
    # 30 fps, 100 bpm, 30 frames = 1.67 beats: at least one ED and one ES inside the clip
    return generate_sequence(11, "A4C", n_frames=30, fps=30, heart_rate=100, out_size=(112, 112), ef=55)


def test_deterministic_by_seed():
    a = generate_sequence(5, "A4C", **TINY)
    b = generate_sequence(5, "A4C", **TINY)
    c = generate_sequence(6, "A4C", **TINY)
    for k in ("frames", "masks", "landmarks", "ed", "es"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a.ef == b.ef and a.fps == b.fps and a.spacing_mm == b.spacing_mm
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("view", ["A2C", "A4C"])
def test_contract(view):
    s = generate_sequence(3, view, **TINY)
    s.validate()
    assert s.frames.shape == (8, 112, 112) and s.frames.dtype == np.uint8
    assert s.masks.dtype == np.uint8 and set(np.unique(s.masks)) <= {0, 1}
    assert s.landmarks.shape == (8, 3, 2) and s.landmarks.dtype == np.float32
    assert np.isfinite(s.landmarks).all()
    assert s.labeled.dtype == bool and s.labeled.all()
    assert s.view == view and s.ed.dtype == np.int64 and s.es.dtype == np.int64
    assert s.ed.size >= 1 and s.es.size >= 1
    assert 0.05 < s.spacing_mm < 3.0 and 25 <= s.fps <= 80
    assert (_area(s) > 50).all()
    # the sector is drawn on black: image corners at the top are outside the fan
    assert s.frames[:, 0, 0].max() < 40 or s.frames[:, 0, -1].max() < 40


def test_ed_is_max_area_es_is_min_area(beat_a4c):
    s = beat_a4c
    area = _area(s)
    assert int(np.argmax(area)) in s.ed and int(np.argmin(area)) in s.es
    assert (area[s.ed] >= 0.97 * area.max()).all()
    assert (area[s.es] <= 1.03 * area.min()).all()
    assert area.max() > 1.15 * area.min()   # the LV really beats


def test_ef_hits_target_and_range(beat_a4c):
    assert 20.0 <= beat_a4c.ef <= 75.0
    assert abs(beat_a4c.ef - 55) < 3
    for seed, ef in ((1, 22.0), (2, 73.0)):
        s = generate_sequence(seed, "A2C", n_frames=24, fps=30, heart_rate=90, out_size=(112, 112), ef=ef)
        assert 20.0 <= s.ef <= 75.0 and abs(s.ef - ef) < 3


@pytest.mark.parametrize("view", ["A2C", "A4C"])
def test_landmarks_on_cavity_border(view):
    s = generate_sequence(21, view, n_frames=6, out_size=(224, 224))
    for t in range(s.n_frames):
        m = s.masks[t]
        cont = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0]
        cont = max(cont, key=cv2.contourArea).reshape(-1, 2).astype(np.float32)
        apex, al, ar = s.landmarks[t]
        for p in (apex, al, ar):
            assert np.min(np.linalg.norm(cont - p, axis=1)) < 2.0
        assert al[0] < ar[0]
        ys, xs = np.nonzero(m)
        c = np.array([xs.mean(), ys.mean()])
        base = 0.5 * (al + ar)
        axis = (apex - base) / np.linalg.norm(apex - base)
        proj = (np.stack([xs, ys], 1) - base) @ axis
        assert np.dot(apex - base, axis) >= proj.max() - 2.5          # apex = top of the cavity
        assert apex[1] < c[1] < base[1]                                 # apex above, annulus below
        assert np.linalg.norm(ar - al) > 8


def _true_flow(s, t, pts):
    """Where image points at frame t are at frame t+1 under the phantom's own deformation."""
    defo, poses, pl = s.extra["deformation"], s.extra["poses"], s.extra["placement"]
    c = s.extra["contraction"]
    x, z = (pts[:, 0] - pl.x0) / pl.scale, (pts[:, 1] - pl.y0) / pl.scale
    u, v = poses[t].to_local(x, z)
    u0, v0 = defo.backward(u, v, float(c[t]), iters=20)
    u1, v1 = defo.forward(u0, v0, float(c[t + 1]))
    X, Y = pl.to_image(*poses[t + 1].to_physical(u1, v1))
    return np.stack([X, Y], 1)


def test_speckle_moves_with_tissue():
    s = generate_sequence(4, "A4C", n_frames=12, fps=30, heart_rate=75, out_size=(224, 224), quality=1.0)
    c = s.extra["contraction"]
    t = int(np.argmax(np.abs(np.diff(c))))
    m = s.masks[t]
    ring = cv2.dilate(m, np.ones((15, 15), np.uint8)) - cv2.dilate(m, np.ones((5, 5), np.uint8))
    ys, xs = np.nonzero(ring & (s.frames[t] > 60))
    sel = np.random.default_rng(0).choice(len(xs), size=min(300, len(xs)), replace=False)
    pts = np.stack([xs[sel], ys[sel]], 1).astype(np.float32)
    true = _true_flow(s, t, pts)
    moved = float(np.median(np.linalg.norm(true - pts, axis=1)))
    assert moved > 0.5                                                 # the wall really moves
    got, st, _ = cv2.calcOpticalFlowPyrLK(s.frames[t], s.frames[t + 1], pts.reshape(-1, 1, 2), None,
                                          winSize=(15, 15), maxLevel=2)
    ok = st.reshape(-1) == 1
    err = np.linalg.norm(got.reshape(-1, 2)[ok] - true[ok], axis=1)
    assert ok.mean() > 0.8 and np.median(err) < min(1.5, 0.5 * moved)   # and LK follows it


@pytest.mark.parametrize("size", [(112, 112), (600, 800)])
def test_output_sizes(size):
    s = generate_sequence(8, "A4C", n_frames=3, out_size=size)
    assert s.frames.shape == (3, *size) and s.masks.shape == (3, *size)
    ys, xs = np.nonzero(s.masks[0])
    assert xs.min() > 0 and xs.max() < size[1] - 1 and ys.min() > 0 and ys.max() < size[0] - 1
    assert s.frames[0][s.masks[0] > 0].mean() < s.frames[0].mean() + 20   # blood pool is darker than average


def test_generate_dataset_writes_everything(tmp_path):
    out = tmp_path / "ds"
    generate_dataset(out, n=3, seed=1, views=["A2C", "A4C"], avi=True, workers=1, progress=False, **TINY)
    man = json.loads((out / "manifest.json").read_text())
    assert man["generator"].startswith("edge-tan-synth") and man["seed"] == 1
    names = [e["name"] for e in man["sequences"]]
    assert [e["view"] for e in man["sequences"]] == ["A2C", "A4C", "A2C"]
    assert all(e["frames"] == 8 for e in man["sequences"])
    assert (out / "montage.png").stat().st_size > 1000
    for nme in names:
        seq = load_sequence(out / f"{nme}.npz")
        assert seq.frames.shape == (8, 112, 112)
        cap = cv2.VideoCapture(str(out / f"{nme}.avi"))
        assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
        cap.release()
    assert len(list_split(out, None)) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp leftovers
    # same seed -> same data, whatever the worker count
    out2 = tmp_path / "ds2"
    generate_dataset(out2, n=2, seed=1, views=["A2C", "A4C"], workers=2, progress=False, **TINY)
    a, b = load_sequence(out / f"{names[1]}.npz"), load_sequence(out2 / f"{names[1]}.npz")
    np.testing.assert_array_equal(a.frames, b.frames)


def test_bad_arguments(tmp_path):
    with pytest.raises(EdgeTanError, match="--n"):
        generate_dataset(tmp_path / "x", n=0)
    with pytest.raises(EdgeTanError, match="view"):
        generate_dataset(tmp_path / "x", n=2, views=["PLAX"])
    with pytest.raises(EdgeTanError, match="view"):
        generate_sequence(0, "PLAX")
    with pytest.raises(EdgeTanError, match="override"):
        generate_sequence(0, "A4C", bogus=1)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(EdgeTanError, match="refusing"):
        generate_dataset(tmp_path / "busy", n=1)
    for err in (EdgeTanError("x"),):
        assert "\n" not in str(err)


# ---- phantom v2: no cheap cues, view-blind nuisances, a held-out family ------------------------

def _local_echo(seed, view, res=0.3):
    """Noise-free reference echogenicity of one seed's heart on a heart-local grid, with its label."""
    from edge_tan.synth.anatomy import echogenicity_map
    from edge_tan.synth.params import sample_params
    rng = np.random.default_rng(seed)
    P = sample_params(rng, view, {})
    an = P.anatomy
    U, V = np.meshgrid(np.arange(-70, 70, res), np.arange(-15, an.L + 40, res))
    E = echogenicity_map(an, P.tissue, U, V, res, rng)
    return an, U, V, E


def _at(E, U, V, u, v):
    res = U[0, 1] - U[0, 0]
    return float(E[int(round((v - V[0, 0]) / res)), int(round((u - U[0, 0]) / res))])


def test_overlay_text_never_names_the_view():
    from edge_tan.synth.artifacts import Overlays
    from edge_tan.synth.scanner import Placement
    art = dict(overlay_text=True, overlay_ticks=True, overlay_ecg=True)
    words = []
    for k in range(200):
        ov = Overlays(np.random.default_rng(k), 480, 640, Placement(480, 640, 3.0, 320, 10), 150, 0.7, art,
                      70.0, 50.0, np.linspace(0, 2, 10), 0.35)
        words += [w for _, lines in ov.texts for w in lines]
    assert len(words) > 200
    text = " ".join(words).upper()
    for cue in ("A2C", "A4C", "2C", "4C", "2CH", "4CH", "APICAL"):
        assert cue not in text


def test_annulus_offset_is_not_a_bright_dot():
    # v1 painted a bright "valve ring" exactly 1.5 mm outside each annulus landmark; the echo there must
    # look like the same wall a few mm further up, not a marker
    ratios = []
    for seed in range(12):
        view = ("A2C", "A4C")[seed % 2]
        an, U, V, E = _local_echo(seed, view)
        ab = float(an.a0(an.L))
        for sgn in (-1.0, 1.0):
            u = sgn * (ab + 1.5)
            at = _at(E, U, V, u, an.L)
            wall = [_at(E, U, V, sgn * (float(an.a0(an.L - k)) + 1.5), an.L - k) for k in (4, 6, 8, 10)]
            ratios.append(at / max(np.median(wall), 1e-6))
    assert np.median(ratios) < 1.3, np.round(ratios, 2)   # v1: 1.49


def test_label_border_is_not_an_iso_contour_of_the_echo():
    # the cavity is not painted with the label's level set: just inside and just outside the traced
    # border, no echo threshold separates blood from wall cleanly (ragged border, trabeculae, papillaries)
    accs = []
    for seed in range(6):
        an, U, V, E = _local_echo(seed, ("A2C", "A4C")[seed % 2])
        psi = an.cavity_level(U, V)
        keep = (V > 5) & (V < 0.85 * an.L)
        inside = np.log(E[keep & (psi > 0.4) & (psi < 1.2)])
        outside = np.log(E[keep & (psi < -0.4) & (psi > -1.2)])
        best = max(0.5 * (np.mean(inside < th) + np.mean(outside >= th)) for th in np.quantile(np.r_[inside, outside], np.linspace(0.02, 0.98, 49)))
        accs.append(best)
    assert np.mean(accs) < 0.8, np.round(accs, 3)   # v1 (painted on the label): 0.88


def test_nuisance_draws_do_not_depend_on_the_view():
    from dataclasses import asdict
    from edge_tan.synth.params import sample_params
    for seed in range(20):
        a = sample_params(np.random.default_rng(seed), "A2C", {})
        b = sample_params(np.random.default_rng(seed), "A4C", {})
        for k in ("n_frames", "fps", "heart_rate", "phase0", "ef_target", "quality", "depth", "half", "out_size",
                  "cropped", "apex_xz", "tilt", "drift", "imaging", "artifacts", "eps_l", "systole"):
            assert getattr(a, k) == getattr(b, k), k
        ta, tb = asdict(a.tissue), asdict(b.tissue)
        ta.pop("dropouts"), tb.pop("dropouts")   # the atrial septum (A4C anatomy) may drop out
        assert ta == tb
    # and the rendering draws after them (placement, zoom) too
    sa = generate_sequence(3, "A2C", **TINY)
    sb = generate_sequence(3, "A4C", **TINY)
    assert sa.spacing_mm == sb.spacing_mm and sa.extra["placement"] == sb.extra["placement"]


def test_ef_distribution_is_clinical():
    from edge_tan.synth.params import draw_ef
    rng = np.random.default_rng(0)
    ef = np.array([draw_ef(rng) for _ in range(4000)])
    assert ef.min() >= 10 and ef.max() <= 80
    assert 57 <= np.median(ef) <= 63
    assert 0.15 < np.mean(ef < 45) < 0.4   # reduced EF is represented, not dominant


def test_foreign_family(tmp_path):
    s = generate_sequence(4, "A4C", family="foreign", **TINY)
    s.validate()
    d = generate_sequence(4, "A4C", **TINY)
    assert s.extra["family"] == "foreign" and not np.array_equal(s.frames, d.frames)
    P = s.extra["params"]
    assert P.imaging["sigmoid"] > 0 and not P.cropped and not P.artifacts["overlay_text"]
    with pytest.raises(EdgeTanError, match="family"):
        generate_sequence(4, "A4C", family="martian", **TINY)
    out = tmp_path / "f"
    generate_dataset(out, n=2, seed=3, family="foreign", workers=1, progress=False, **TINY)
    man = json.loads((out / "manifest.json").read_text())
    assert man["family"] == "foreign" and all(e["name"].startswith("foreign_") for e in man["sequences"])


def test_bad_family_is_one_clear_error(tmp_path):
    with pytest.raises(EdgeTanError, match="family"):
        generate_dataset(tmp_path / "x", n=1, family="training", progress=False)
    assert not (tmp_path / "x").exists()


def test_tinted_grey_map_is_a_bent_monotone_curve():
    from edge_tan.synth.artifacts import grey_lut
    assert grey_lut({"tint": 0}) is None
    for tint in (1, 2, 3):
        lut = grey_lut({"tint": tint, "tint_k": 1.0}).astype(int)
        assert lut[0] == 0 and lut[255] == 255 and (np.diff(lut) >= 0).all()
        bend = np.abs(lut - np.arange(256)).max()
        assert 2 <= bend <= 20   # a tinted map read back as grey: not the identity, still a grey map


def test_training_family_covers_clinical_hearts_and_leaves_the_foreign_one_alone():
    """Enlarged atria, thick walls, upright LVs and near-invisible leaflets occur in the training family
    (the network must find the annulus without a visible valve line); the held-out foreign family is
    drawn exactly as before (no clinical-range draws), and the base draws do not move."""
    from edge_tan.synth.params import sample_params
    ps = [sample_params(np.random.default_rng(s), "A4C", {}) for s in range(200)]
    la = np.array([p.anatomy.la_a for p in ps])
    assert la.max() > 26 * 1.1 and np.mean(la > 26) > 0.1          # beyond the normal 18-26 mm draw
    assert np.mean([p.imaging["leaflet"] < 0.6 for p in ps]) > 0.2
    assert np.mean([abs(np.rad2deg(p.tilt)) < 10 for p in ps]) > 0.05
    assert np.mean([p.anatomy.h_sep > 12.5 for p in ps]) > 0.05
    for s in range(20):
        f = sample_params(np.random.default_rng(s), "A4C", {}, family="foreign")
        d = sample_params(np.random.default_rng(s), "A4C", {})
        assert "leaflet" not in f.imaging
        assert f.ef_target == d.ef_target and f.fps == d.fps and f.heart_rate == d.heart_rate

"""Issue 21 item 10: a fresh held-out phantom family ("holdout", edge_tan/synth/holdout.py): frozen
(its own draws are pinned here), renders a labelled clip, and training refuses it (and "foreign")."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest

from edge_tan.runtime.errors import UsageError

# sha256 of what apply_holdout draws on a fixed base (seeds 1..3): edit holdout.py and this fails.
# A new held-out family gets a new module and name instead (see the module docstring).
FROZEN_DIGEST = "699a4e449b584075c839b55707fe6d0b4d924c52899daf8c01cc6f71d30f2a91"


def _holdout_digest() -> str:
    from edge_tan.synth.anatomy import Anatomy, Tissue
    from edge_tan.synth.holdout import apply_holdout
    h = hashlib.sha256()
    for seed in (1, 2, 3):
        P = SimpleNamespace(anatomy=Anatomy(view="A4C", L=80.0, A=22.0, p=0.5, b=45.0, h_sep=10.0, h_lat=9.0,
                                             h_ap=7.0, rv_w=20.0, la_a=20.0, la_b=24.0, skew=0.0),
                            tissue=Tissue(trabeculae=0.4), imaging={}, artifacts={}, tilt=0.0)
        apply_holdout(P, np.random.default_rng(seed))
        an, ts = dataclasses.asdict(P.anatomy), dataclasses.asdict(P.tissue)   # only what the family sets
        d = {"anatomy": {k: an[k] for k in ("A", "L", "h_sep", "h_lat", "la_a", "la_b", "rv_w", "skew")},
             "tissue": {k: ts[k] for k in ("lateral", "septum", "blood", "trabeculae")}, "imaging": P.imaging,
             "artifacts": P.artifacts, "tilt": P.tilt}
        h.update(json.dumps(d, sort_keys=True, default=lambda o: np.asarray(o).tolist()).encode())
    return h.hexdigest()


def test_holdout_family_is_frozen():
    assert _holdout_digest() == FROZEN_DIGEST, "edge_tan/synth/holdout.py changed: it is frozen (make a new family)"


def test_holdout_clip_renders_with_labels(tmp_path):
    from edge_tan.synth.generate import generate_dataset
    from edge_tan.synth.render import generate_sequence
    s = generate_sequence(5, "A4C", family="holdout", n_frames=4, out_size=(112, 112))
    d = generate_sequence(5, "A4C", n_frames=4, out_size=(112, 112))
    assert s.frames.shape == (4, 112, 112) and s.masks.any() and np.isfinite(s.ef)
    assert not np.array_equal(s.frames, d.frames)
    out = generate_dataset(tmp_path / "h", n=2, seed=3, family="holdout", workers=1, progress=False, n_frames=3,
                           out_size=(64, 64))
    assert sorted(p.name for p in out.glob("*.npz")) == ["holdout_00000_a2c.npz", "holdout_00001_a4c.npz"]


@pytest.mark.parametrize("family", ["holdout", "foreign"])
def test_training_refuses_held_out_families(tmp_path, family):
    pytest.importorskip("torch")
    from edge_tan.export.train.samples import load_split_sequences
    from edge_tan.synth.generate import generate_dataset
    ds = generate_dataset(tmp_path / family, n=2, seed=3, family=family, workers=1, progress=False, n_frames=3,
                          out_size=(64, 64))
    with pytest.raises(UsageError, match="held out for testing"):
        load_split_sequences(ds, "train")
    from edge_tan.dataset import read_manifest   # a merged set that lost the family tag still names its clips
    m = json.loads((ds / "manifest.json").read_text())
    m.pop("family", None)
    (ds / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UsageError, match=family):
        load_split_sequences(ds, "train")
    assert read_manifest is not None
    default = generate_dataset(tmp_path / "d", n=2, seed=3, workers=1, progress=False, n_frames=3, out_size=(64, 64))
    load_split_sequences(default, "train")   # the training family still loads

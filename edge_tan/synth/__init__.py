"""Realistic apical-echo (A2C/A4C) phantom with exact per-frame ground truth (`edge-tan synth`).

    from edge_tan.synth.generate import generate_dataset, generate_sequence
    seq = generate_sequence(7, "A4C", n_frames=8, out_size=(112, 112))   # tiny, deterministic
    generate_dataset("data/phantom", n=200, seed=0, views=["A2C", "A4C"], workers=2)

Pipeline (one module per job): params (every random choice; nuisances drawn independently of the
view) -> anatomy (reference ED heart and its echogenicity, painted off the label: ragged endocardium,
trabeculae, papillary muscles) -> motion (contraction curve, invertible tissue deformation) -> scanner
(probe, pose, scan conversion) -> render (beam-space speckle attached to tissue, log compression, GT
from the same deformation) -> artifacts (clutter, shadows, overlays, grey maps, codec) -> truth
(ED/ES/EF) -> generate (parallel dataset writer + montage).

Families: "default" is the training phantom; "foreign" (`edge-tan synth OUT --family foreign`) is a
held-out anatomy variant and rendering style used only as a test set. Frames are grey (the dataset
format is (T, H, W) uint8): tinted scanner grey maps are modelled as the tinted image read back
through the readers' BT.601 colour collapse.

Why `generate_sequence`, `sample_params` and `echogenicity_map` stay long: their random draws run in
one fixed order that defines every phantom clip of a seed (training data, held-out families, committed
records and tests are keyed by seed), so each stays one top-to-bottom recipe in phases marked `# ----`;
a split would pass dozens of intermediate values around or risk reordering draws (edge-tan parity's
phantom clip staying identical is the check).
"""

GENERATOR_VERSION = "edge-tan-synth/3"

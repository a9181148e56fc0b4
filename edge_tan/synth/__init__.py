"""Realistic apical-echo (A2C/A4C) phantom with exact per-frame ground truth (`edge-tan synth`).

    from edge_tan.synth.generate import generate_dataset, generate_sequence
    seq = generate_sequence(7, "A4C", n_frames=8, out_size=(112, 112))   # tiny, deterministic
    generate_dataset("data/phantom", n=200, seed=0, views=["A2C", "A4C"], workers=2)

Pipeline (one module per job): params (every random choice) -> anatomy (reference ED heart and its
echogenicity) -> motion (contraction curve, invertible tissue deformation) -> scanner (probe, pose,
scan conversion) -> render (beam-space speckle attached to tissue, log compression, GT from the same
map) -> artifacts (clutter, shadows, overlays, codec) -> truth (ED/ES/EF) -> generate (parallel
dataset writer + montage).
"""

GENERATOR_VERSION = "edge-tan-synth/2"

"""Realistic apical-echo (A2C/A4C) phantom with exact per-frame ground truth (`edge-tan synth`)."""

GENERATOR_VERSION = "edge-tan-synth/1"

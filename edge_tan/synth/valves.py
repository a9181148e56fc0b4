"""Valve leaflets: thin bright lines hinged at the annulus that swing into the ventricle in diastole."""

from __future__ import annotations

import numpy as np


def _leaflet(h, tip_dir, length, bend, n=6):
    """Slightly curved polyline from hinge h along tip_dir (unit), bending by `bend` (perp offset)."""
    t = np.linspace(0, 1, n)[:, None]
    perp = np.array([-tip_dir[1], tip_dir[0]])
    return h[None, :] + t * length * tip_dir[None, :] + (np.sin(np.pi * t) * bend) * perp[None, :]


def valve_polylines(hs, hl, apex, opening, rng_sizes):
    """Two leaflets for one valve. hs/hl hinges (u, v); the LV/RV apex gives the ventricular side."""
    width = np.linalg.norm(hl - hs) + 1e-6
    d = (hl - hs) / width
    n = np.array([-d[1], d[0]])
    if np.dot(apex - 0.5 * (hs + hl), n) < 0:
        n = -n
    out = []
    for hinge, dd, frac in ((hs, d, rng_sizes[0]), (hl, -d, rng_sizes[1])):
        ang = np.deg2rad(-12 + 85 * opening)
        tip = np.cos(ang) * dd + np.sin(ang) * n
        out.append(_leaflet(hinge, tip, frac * width, 0.06 * frac * width))
    return out

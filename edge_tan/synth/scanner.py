"""Probe geometry: the polar beam grid, heart pose in the probe frame, and scan conversion.

Physical frame: probe (sector apex) at (0, 0) mm, x to the image right, z = depth downwards.
Beam grid: row i <-> r = i * dr, column j <-> theta = -half + j * dtheta.
Image: pixel (X, Y) <-> physical ((X - x0) / scale, (Y - y0) / scale), scale in px/mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Probe:
    depth: float        # mm
    half: float         # half sector angle (rad)
    nr: int
    nt: int

    @property
    def dr(self) -> float:
        return self.depth / (self.nr - 1)

    @property
    def dt(self) -> float:
        return 2 * self.half / (self.nt - 1)

    def grid_xz(self, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Physical x, z of beam samples; step > 1 gives the coarse grid aligned with cv2.resize."""
        ri = (np.arange(int(np.ceil(self.nr / step))) + 0.5) * step - 0.5
        ti = (np.arange(int(np.ceil(self.nt / step))) + 0.5) * step - 0.5
        r = ri[:, None] * self.dr
        th = -self.half + ti[None, :] * self.dt
        return r * np.sin(th), r * np.cos(th)

    def to_beam(self, x, z):
        """Physical -> fractional beam-grid (col, row)."""
        r = np.hypot(x, z)
        th = np.arctan2(x, z)
        return (th + self.half) / self.dt, r / self.dr


@dataclass
class Placement:
    """Where the sector sits in the output image."""
    H: int
    W: int
    scale: float   # px per mm
    x0: float      # sector apex (probe) in image px
    y0: float

    def to_image(self, x, z):
        return self.x0 + self.scale * np.asarray(x), self.y0 + self.scale * np.asarray(z)

    def scan_maps(self, probe: Probe) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps from image pixels into the beam grid (outside the fan -> -10)."""
        X, Y = np.meshgrid(np.arange(self.W, dtype=np.float64), np.arange(self.H, dtype=np.float64))
        x = (X - self.x0) / self.scale
        z = (Y - self.y0) / self.scale
        col, row = probe.to_beam(x, z)
        out = (row > probe.nr - 0.5) | (col < -0.5) | (col > probe.nt - 0.5) | (z < 0)
        col[out] = -10
        row[out] = -10
        return col.astype(np.float32), row.astype(np.float32)


@dataclass
class Pose:
    """Heart pose in the probe frame at one instant: LV apex position (mm) and axis tilt (rad)."""
    px: float
    pz: float
    tilt: float   # angle of the LV axis from straight down, positive = base to the image right

    def axes(self):
        ax = np.array([np.sin(self.tilt), np.cos(self.tilt)])
        perp = np.array([np.cos(self.tilt), -np.sin(self.tilt)])
        return ax, perp

    def to_local(self, x, z):
        ax, perp = self.axes()
        dx, dz = np.asarray(x) - self.px, np.asarray(z) - self.pz
        return dx * perp[0] + dz * perp[1], dx * ax[0] + dz * ax[1]

    def to_physical(self, u, v):
        ax, perp = self.axes()
        u, v = np.asarray(u), np.asarray(v)
        return self.px + u * perp[0] + v * ax[0], self.pz + u * perp[1] + v * ax[1]


def remap(src: np.ndarray, mx: np.ndarray, my: np.ndarray, border: float = 0.0) -> np.ndarray:
    mx = np.asarray(mx, np.float32)
    my = np.asarray(my, np.float32)
    return cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border)

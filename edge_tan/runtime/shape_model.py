"""A learned LV shape model: is this contour something a left ventricle looks like?

Why landmark-aligned radii: the tracker reports a contour and three landmarks per frame. Mapping the
landmarks (apex, annulus left, annulus right) onto a fixed triangle removes position, size, tilt and
foreshortening, so what is left is the cavity's shape relative to its own axis. Sampling the aligned
contour as radii at fixed angles about a point on the long axis gives a fixed-length vector with no
point-correspondence problem. A PCA of those vectors from phantom labels (several seeds) gives the
normal shape variation; the distance of a new shape in the first k modes (Mahalanobis), plus its
residual outside them, says how far it is from every shape seen. The phantom varies less than real
hearts, so QC uses this distance loosely (a soft, calibrated feature, never a hard gate).

The asset `edge_tan/assets/shape_model.json` is written by `scripts/fit_shape_model.py`, which records
the data it was fitted on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .defaults import assets_dir
from .errors import EdgeTanError

ASSET = assets_dir() / "shape_model.json"
CANON = np.array([[0.0, 0.0], [-0.5, 1.0], [0.5, 1.0]], np.float64)   # apex, annulus left, annulus right
CENTRE = np.array([0.0, 0.55])                                           # on the long axis, mid-cavity
N_ANGLES = 32


def descriptor(contour: np.ndarray, landmarks: np.ndarray, n_angles: int = N_ANGLES) -> np.ndarray | None:
    """Radii of the landmark-aligned contour at `n_angles` fixed angles; None when undefined."""
    c = np.asarray(contour, np.float64).reshape(-1, 2)
    lm = np.asarray(landmarks, np.float64).reshape(3, 2)
    if len(c) < 8 or not (np.isfinite(c).all() and np.isfinite(lm).all()):
        return None
    A = cv2.getAffineTransform(lm.astype(np.float32), CANON.astype(np.float32)).astype(np.float64)
    if not np.isfinite(A).all() or abs(np.linalg.det(A[:, :2])) < 1e-12:
        return None
    # dense resampling so every angular bin sees the border
    closed = np.vstack([c, c[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return None
    t = np.linspace(0.0, s[-1], 8 * n_angles, endpoint=False)
    dense = np.stack([np.interp(t, s, closed[:, 0]), np.interp(t, s, closed[:, 1])], 1)
    q = dense @ A[:, :2].T + A[:, 2] - CENTRE
    ang = np.arctan2(q[:, 1], q[:, 0])
    rad = np.hypot(q[:, 0], q[:, 1])
    b = np.floor((ang + np.pi) / (2 * np.pi) * n_angles).astype(int) % n_angles
    out = np.full(n_angles, np.nan)
    np.fmax.at(out, b, rad)
    ok = np.isfinite(out)
    if ok.sum() < n_angles // 2:
        return None
    if not ok.all():   # circular interpolation over empty bins
        idx = np.arange(n_angles)
        out = np.interp(idx, idx[ok], out[ok], period=n_angles)
    return np.minimum(out, 5.0)   # a runaway contour saturates instead of dominating the distance


@dataclass
class ShapeModel:
    mean: np.ndarray          # (D,)
    modes: np.ndarray         # (k, D) unit rows
    variances: np.ndarray     # (k,)
    residual_var: float       # expected squared residual outside the k modes
    info: dict

    def distance(self, desc: np.ndarray) -> float:
        """RMS z-score over the k modes and the residual: about 1 for a typical training shape."""
        d = np.asarray(desc, np.float64) - self.mean
        b = self.modes @ d
        r = d - self.modes.T @ b
        m2 = float(np.sum(b * b / self.variances)) + float(r @ r) / max(self.residual_var, 1e-12)
        return float(np.sqrt(m2 / (len(self.variances) + 1)))

    def to_dict(self) -> dict:
        return {"format": "edge-tan-shape-model/1", "n_angles": int(self.mean.size),
                "canonical_landmarks": CANON.tolist(), "centre": CENTRE.tolist(),
                "mean": np.round(self.mean, 6).tolist(), "modes": np.round(self.modes, 6).tolist(),
                "variances": [float(f"{v:.6g}") for v in self.variances],
                "residual_var": float(f"{self.residual_var:.6g}"), "info": self.info}

    @classmethod
    def from_dict(cls, d: dict) -> "ShapeModel":
        try:
            m = cls(np.asarray(d["mean"], np.float64), np.asarray(d["modes"], np.float64),
                    np.asarray(d["variances"], np.float64), float(d["residual_var"]), dict(d.get("info", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise EdgeTanError(f"shape model: malformed ({e})") from None
        if m.modes.shape != (m.variances.size, m.mean.size) or m.mean.size != N_ANGLES:
            raise EdgeTanError("shape model: mode/mean shapes do not match")
        return m


def fit(descs: np.ndarray, k: int = 6, info: dict | None = None) -> ShapeModel:
    """PCA of descriptors (N, D); keeps k modes and the mean variance left outside them."""
    X = np.asarray(descs, np.float64)
    if X.ndim != 2 or len(X) < 2 * k:
        raise EdgeTanError(f"shape model: need at least {2 * k} shapes, got {len(X)}")
    mean = X.mean(0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    lam = s ** 2 / (len(X) - 1)
    return ShapeModel(mean, vt[:k], np.maximum(lam[:k], 1e-8), float(max(lam[k:].sum(), 1e-8)), dict(info or {}))


_CACHE: dict = {}


def load(path: str | Path | None = None) -> ShapeModel:
    """The shipped shape model (or another file); read once per process."""
    p = Path(path) if path else ASSET
    if p not in _CACHE:
        if not p.is_file():
            raise EdgeTanError(f"shape model not found: {p} (build it with scripts/fit_shape_model.py)")
        try:
            _CACHE[p] = ShapeModel.from_dict(json.loads(p.read_text()))
        except json.JSONDecodeError as e:
            raise EdgeTanError(f"{p}: not JSON ({e})") from None
    return _CACHE[p]

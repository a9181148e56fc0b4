"""Domain randomisation of raw frames (before the input normalisation and the warp).

Why: the phantom cannot match every scanner. What real echo adds -- depth/lateral gain (TGC), near-field
haze, drop-out of wall segments, speckle and noise of other grain, lower or anisotropic resolution,
narrower or shallower sectors, bright distractors (pericardium, valves, ribs, text), other compression
curves -- is randomised here so the network has to rely on shape and context. Everything is
photometric or masks pixels; nothing moves, so the labels (mask, landmarks) stay aligned with the frame.

Runs on the full frame, as the runtime's `input_norm` does, so the equalisation LUT sees what it
would see on such a scanner. Random fields are drawn at low resolution and resized: cheap on 2 cores.
The background outside the sector is left exactly as it was (the equalisation keeps it at 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edge_tan.runtime.intensity import BACKGROUND_MAX


@dataclass(frozen=True)
class DomainConfig:
    """Probability of each randomisation per sample (the same draw for both frames of a TCM pair)."""

    p: float = 0.85            # a sample gets any raw-frame randomisation at all
    p_curve: float = 0.5       # gamma / log-compression / gain curve (mostly neutralised by "equalize")
    p_gain_field: float = 0.5  # depth (TGC) and lateral gain
    p_haze: float = 0.3        # bright near-field band across the top of the sector
    p_dropout: float = 0.35    # darkened wedges: missing wall segments
    p_distractor: float = 0.3  # bright lines / blobs
    p_resolution: float = 0.3  # down- then up-sampling, anisotropic blur
    p_noise: float = 0.5       # multiplicative speckle + additive noise of random grain
    p_sector: float = 0.2      # narrower / shallower sector (never cutting the labelled LV)

    def to_dict(self) -> dict:
        return asdict(self)


_POLAR: dict = {}
LOW = 96   # side of the grid the smooth fields are drawn on


def polar_maps(hw: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(depth, angle) maps of a frame shape: depth = distance from the top-centre apex / frame
    height, angle in radians from straight down. Cached per shape (frame sizes repeat)."""
    key = (int(hw[0]), int(hw[1]))
    if key not in _POLAR:
        h, w = key
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = x - (w - 1) / 2.0, y + 0.02 * h
        _POLAR[key] = ((np.sqrt(dx * dx + dy * dy) / h).astype(np.float32),
                       np.arctan2(dx, dy).astype(np.float32))
        if len(_POLAR) > 32:
            _POLAR.pop(next(iter(_POLAR)))
    return _POLAR[key]


def sector_span(frame: np.ndarray) -> np.ndarray:
    """Bool mask of the image sector: per row, from the first to the last non-background pixel."""
    fg = frame > BACKGROUND_MAX
    has = fg.any(1)
    first = np.argmax(fg, 1)
    last = frame.shape[1] - 1 - np.argmax(fg[:, ::-1], 1)
    cols = np.arange(frame.shape[1])[None, :]
    return (cols >= first[:, None]) & (cols <= last[:, None]) & has[:, None]


_BANK: list = []
BANK_SIDE = 1024


def _white(rng: np.random.Generator, sh: int, sw: int) -> np.ndarray:
    """(sh, sw) unit normal noise: a random crop of one fixed 1024^2 bank drawn once per process
    (drawing fresh normals per frame was a third of the randomisation's time)."""
    if not _BANK:
        _BANK.append(np.random.default_rng(12345).standard_normal((BANK_SIDE, BANK_SIDE), dtype=np.float32))
    b = _BANK[0]
    sh, sw = min(sh, BANK_SIDE), min(sw, BANK_SIDE)
    y, x = int(rng.integers(0, BANK_SIDE - sh + 1)), int(rng.integers(0, BANK_SIDE - sw + 1))
    crop = b[y:y + sh, x:x + sw]
    return crop if rng.uniform() < 0.5 else -crop


def _field(rng: np.random.Generator, hw: tuple, grain: float) -> np.ndarray:
    """Unit-variance random field of the given grain (px), a small crop of white noise resized up."""
    h, w = hw
    sh, sw = max(2, int(round(h / grain))), max(2, int(round(w / grain)))
    f = _white(rng, sh, sw)
    if (sh, sw) == (h, w):
        return f
    return cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR if grain > 1.2 else cv2.INTER_NEAREST)


def _curve_lut(rng: np.random.Generator) -> np.ndarray:
    """A random monotone display curve (gamma, log compression, gain) as a uint8 LUT; 0 stays 0."""
    x = np.arange(256, dtype=np.float32) / 255.0
    if rng.uniform() < 0.5:
        y = x ** np.exp(rng.uniform(-0.6, 0.6))
    else:   # log compression of a different dynamic range
        k = np.exp(rng.uniform(0.0, 4.0))
        y = np.log1p(k * x) / np.log1p(k)
    lut = np.clip(y * rng.uniform(0.6, 1.4) * 255.0, 0, 255).astype(np.uint8)
    lut[:BACKGROUND_MAX + 1] = np.arange(BACKGROUND_MAX + 1)
    return lut


@dataclass
class _Draw:
    """One sample's draw of every randomisation (shared by all its frames, so a TCM pair stays coherent)."""
    inside: np.ndarray
    gain: np.ndarray | None = None      # multiplicative field (gain / depth / dropout wedges), full size
    haze: np.ndarray | None = None
    shapes: tuple = ()
    res: tuple | None = None
    noise: tuple | None = None
    cut: tuple | None = None
    lut: np.ndarray | None = None


def _draw_fields(rng: np.random.Generator, cfg: DomainConfig, hw: tuple) -> tuple:
    """(gain field, haze) at full size; smooth fields are drawn on a grid of at most LOW px a side."""
    h, w = hw
    lh, lw = max(2, min(h, LOW * h // max(h, w))), max(2, min(w, LOW * w // max(h, w)))
    depth, ang = polar_maps((lh, lw))
    up = (lambda a: cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)) if (lh, lw) != hw else (lambda a: a)
    mul = None
    if rng.uniform() < cfg.p_gain_field:
        a1, a2, lat = rng.uniform(-0.8, 0.8), rng.uniform(-0.6, 0.6), rng.uniform(-0.4, 0.4)
        mul = np.exp(a1 * depth + a2 * depth * depth + lat * ang).astype(np.float32)
    haze = None
    if rng.uniform() < cfg.p_haze:
        amp, scale = rng.uniform(40, 160), rng.uniform(0.04, 0.25)
        haze = (amp * np.exp(-depth / scale)).astype(np.float32)
        haze *= np.clip(1.0 + 0.5 * _field(rng, (lh, lw), rng.uniform(2, 6)), 0, None)
        haze = up(haze)
    if rng.uniform() < cfg.p_dropout:
        drop = np.ones((lh, lw), np.float32)
        for _ in range(int(rng.integers(1, 3))):
            c, wd = rng.uniform(-0.55, 0.55), rng.uniform(0.03, 0.2)
            d0 = rng.uniform(0.1, 0.8)
            d1 = d0 + rng.uniform(0.15, 0.8)
            k = rng.uniform(0.0, 0.5)   # remaining signal in the wedge
            wedge = np.exp(-((ang - c) / wd) ** 2) * ((depth > d0) & (depth < d1))
            drop *= 1.0 - (1.0 - k) * wedge.astype(np.float32)
        drop = cv2.GaussianBlur(drop, (0, 0), 1.0)
        mul = drop if mul is None else mul * drop
    return (None if mul is None else up(mul)), haze


def _draw_shapes(rng: np.random.Generator, cfg: DomainConfig, hw: tuple) -> tuple:
    """Bright distractor lines and blobs (valve-like echoes, overlays)."""
    h, w = hw
    shapes = []
    if rng.uniform() < cfg.p_distractor:
        for _ in range(int(rng.integers(1, 4))):
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            val = float(rng.uniform(120, 255))
            if rng.uniform() < 0.5:
                p1 = (int(p0[0] + rng.normal(0, w / 4)), int(p0[1] + rng.normal(0, h / 6)))
                shapes.append(("line", p0, p1, val, int(rng.integers(1, max(2, h // 60) + 1))))
            else:
                ax = (int(rng.integers(1, max(2, w // 20))), int(rng.integers(1, max(2, h // 25))))
                shapes.append(("blob", p0, ax, val, float(rng.uniform(0, 180))))
    return tuple(shapes)


def _draw(frame0: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator, cfg: DomainConfig) -> _Draw:
    hw = frame0.shape
    d = _Draw(inside=sector_span(frame0))
    d.gain, d.haze = _draw_fields(rng, cfg, hw)
    d.shapes = _draw_shapes(rng, cfg, hw)
    if rng.uniform() < cfg.p_resolution:
        d.res = (rng.uniform(1.0, 2.5), rng.uniform(1.0, 2.5), rng.uniform(0.0, 1.5), rng.uniform(0.0, 1.5))
    if rng.uniform() < cfg.p_noise:
        d.noise = (rng.uniform(0.0, 0.35), rng.uniform(0.0, 12.0), rng.uniform(1.0, 3.0))
    if mask is not None and rng.uniform() < cfg.p_sector and mask.any():
        fd, fa = polar_maps(hw)
        lv = mask > 0
        a_lv = np.abs(fa[lv]).max() + 0.05
        d_lv = fd[lv].max() + 0.05
        d.cut = (rng.uniform(a_lv, max(a_lv, 0.9)), rng.uniform(d_lv, max(d_lv, 1.3)))
        d.inside = d.inside & (np.abs(fa) <= d.cut[0]) & (fd <= d.cut[1])
    d.lut = _curve_lut(rng) if rng.uniform() < cfg.p_curve else None
    return d


def _apply(fr: np.ndarray, d: _Draw, rng: np.random.Generator) -> np.ndarray:
    """One frame through the sample's draw (noise fields are per frame)."""
    h, w = fr.shape
    f = fr.astype(np.float32)
    if d.gain is not None:
        f *= d.gain
    if d.haze is not None:
        f += d.haze
    for kind, p0, q, val, extra in d.shapes:
        if kind == "line":
            cv2.line(f, p0, q, val, extra, cv2.LINE_AA)
        else:
            cv2.ellipse(f, p0, q, extra, 0, 360, val, -1, cv2.LINE_AA)
    if d.res is not None:
        fx, fy, sx, sy = d.res
        if fx > 1.05 or fy > 1.05:
            small = cv2.resize(f, (max(2, int(w / fx)), max(2, int(h / fy))), interpolation=cv2.INTER_AREA)
            f = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if sx > 0.3 or sy > 0.3:
            f = cv2.GaussianBlur(f, (0, 0), sigmaX=max(sx, 0.01), sigmaY=max(sy, 0.01))
    if d.noise is not None:
        gain, add, grain = d.noise
        if gain:
            f *= np.exp(gain * _field(rng, (h, w), grain) - 0.5 * gain * gain)
        if add:
            f += add * _field(rng, (h, w), grain)
    g = np.clip(f, 0, 255).astype(np.uint8)
    if d.lut is not None:
        g = cv2.LUT(g, d.lut)
    return np.where(d.inside, g, fr if d.cut is None else np.uint8(0))


def randomize_frames(frames: list[np.ndarray], mask: np.ndarray | None, rng: np.random.Generator,
                     cfg: DomainConfig = DomainConfig()) -> list[np.ndarray]:
    """Randomised copies of `frames` (uint8, one shape): one draw of every parameter for all of them
    (a TCM pair stays coherent), independent noise per frame. `mask` (the labelled LV, may be None)
    keeps sector cuts off the LV. Returns the inputs themselves when the sample is not randomised."""
    if rng.uniform() >= cfg.p:
        return frames
    d = _draw(frames[0], mask, rng, cfg)
    return [_apply(fr, d, rng) for fr in frames]

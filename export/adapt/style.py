"""Make phantom training windows look like the site: grey-level histogram matching and Fourier
Domain Adaptation (FDA, Yang & Soatto, CVPR 2020), both in *window* space.

Why window space: the windows the tracker feeds the network at the site (windows.py) are already
normalised to the LV (template affine) and through the model's input_norm, so their spectra compare
like with like: speckle grain, blur, haze and wall brightness relative to the LV, at the scale the
network sees them. A phantom window keeps its exact labels; only its look changes:

- FDA: the centred low-frequency block (half-width beta * S) of the phantom window's amplitude
  spectrum is blended (weight lam ~ U(0.5, 1)) with that of a random site window; the phase (the
  anatomy, hence the label) is kept. Only low-frequency amplitude is stored from the site (not images).
- histogram matching: the in-sector grey levels (> BACKGROUND_MAX) are mapped through a LUT onto the
  site's pooled window histogram. With input_norm "equalize" whole frames are already rank-normalised,
  but a *window's* histogram still differs by content (how dark the blood is relative to the wall).

Black outside the sector stays black (the network uses the sector border).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_tan.runtime.intensity import BACKGROUND_MAX

FDA_BETA = 0.03       # half-width of the swapped block, fraction of the window side (paper: 0.01-0.09)
FDA_P, HIST_P = 0.8, 0.5
BANK = 256            # site windows whose low-frequency amplitude is kept


@dataclass
class SiteStyle:
    amp: np.ndarray     # (K, 2b+1, 2b+1) centred low-frequency amplitude blocks of site windows
    cdf: np.ndarray     # (256,) pooled in-sector CDF of the site windows
    size: int
    beta: float = FDA_BETA

    @property
    def half(self) -> int:
        return half_width(self.size, self.beta)

    def save(self, path) -> None:
        from edge_tan.runtime.atomic import atomic_path
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, amp=self.amp, cdf=self.cdf, size=self.size, beta=self.beta)

    @classmethod
    def load(cls, path) -> "SiteStyle":
        with np.load(path) as z:
            return cls(z["amp"], z["cdf"], int(z["size"]), float(z["beta"]))

    def describe(self) -> dict:
        return {"fda_beta": self.beta, "fda_block_px": 2 * self.half + 1, "site_windows": int(len(self.amp)),
                "fda_p": FDA_P, "hist_p": HIST_P}


def half_width(size: int, beta: float) -> int:
    return max(1, int(np.floor(size * beta)))


def _centred_amp(win: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.abs(np.fft.fft2(win.astype(np.float32))))


def in_sector_cdf(windows: np.ndarray) -> np.ndarray:
    h = np.zeros(256, np.float64)
    for w in windows:
        h += np.bincount(w.ravel(), minlength=256)
    h[:BACKGROUND_MAX + 1] = 0
    c = np.cumsum(h)
    return c / max(c[-1], 1.0)


def build_style(windows: np.ndarray, seed: int = 0, beta: float = FDA_BETA) -> SiteStyle:
    """Style of a site from its recorded windows (N, S, S) uint8."""
    rng = np.random.default_rng(seed)
    size = int(windows.shape[-1])
    idx = rng.choice(len(windows), min(BANK, len(windows)), replace=False)
    b, c = half_width(size, beta), size // 2
    amp = np.stack([_centred_amp(windows[i])[c - b:c + b + 1, c - b:c + b + 1] for i in idx]).astype(np.float32)
    return SiteStyle(amp, in_sector_cdf(windows), size, beta)


def match_lut(src: np.ndarray, cdf_ref: np.ndarray) -> np.ndarray:
    """LUT mapping src's in-sector grey levels onto the reference CDF (background stays 0)."""
    cdf_src = in_sector_cdf(src[None])
    lut = np.searchsorted(cdf_ref, cdf_src, side="left").clip(BACKGROUND_MAX + 1, 255).astype(np.uint8)
    lut[:BACKGROUND_MAX + 1] = np.arange(BACKGROUND_MAX + 1)
    return lut


def fda(src: np.ndarray, amp_block: np.ndarray, lam: float) -> np.ndarray:
    """src window with its centred low-frequency amplitude blended towards `amp_block`."""
    f = np.fft.fftshift(np.fft.fft2(src.astype(np.float32)))
    amp, pha = np.abs(f), np.angle(f)
    b = amp_block.shape[0] // 2
    c0, c1 = src.shape[0] // 2, src.shape[1] // 2
    blk = amp[c0 - b:c0 + b + 1, c1 - b:c1 + b + 1]
    amp[c0 - b:c0 + b + 1, c1 - b:c1 + b + 1] = (1 - lam) * blk + lam * amp_block
    out = np.real(np.fft.ifft2(np.fft.ifftshift(amp * np.exp(1j * pha))))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def stylise(win: np.ndarray, style: SiteStyle, rng: np.random.Generator) -> np.ndarray:
    """A phantom window (S, S) uint8 made to look like the site (labels untouched)."""
    if win.shape[-1] != style.size:
        return win
    bg = win <= BACKGROUND_MAX
    out = win
    if rng.uniform() < HIST_P:
        import cv2
        out = cv2.LUT(out, match_lut(out, style.cdf))
    if rng.uniform() < FDA_P and len(style.amp):
        out = fda(out, style.amp[int(rng.integers(len(style.amp)))], float(rng.uniform(0.5, 1.0)))
    out = out.copy()
    out[bg] = 0
    return out

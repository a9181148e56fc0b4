"""Scanner artifacts and screen furniture: clutter, reverberation, rib shadows, gain maps, overlays, codec.

Probe-fixed effects (clutter, shadows, gain) are built once per sequence on the beam grid; overlays
and compression act on the final uint8 frame and never touch the ground truth.
"""

from __future__ import annotations

import cv2
import numpy as np


def complex_field(rng: np.random.Generator, shape, sigma_xy: tuple[float, float]) -> np.ndarray:
    """Band-limited circular complex Gaussian field (H, W, 2) float32 with unit mean intensity."""
    f = rng.standard_normal((*shape, 2)).astype(np.float32)
    f = cv2.GaussianBlur(f, (0, 0), sigmaX=max(sigma_xy[0], 0.3), sigmaY=max(sigma_xy[1], 0.3))
    f /= np.sqrt(np.mean(f ** 2) * 2 + 1e-12)
    return f


def interface_normals(E: np.ndarray, res_mm: float) -> np.ndarray:
    """(H, W, 2) interface normal (u, v components) scaled by interface strength 0..1, from the
    reference echogenicity: where tissue meets blood the echo depends on the beam angle."""
    lg = cv2.GaussianBlur(np.log(np.maximum(E, 1e-5)).astype(np.float32), (0, 0), max(1.2 / res_mm, 0.7))
    gu = cv2.Sobel(lg, cv2.CV_32F, 1, 0, ksize=3) / (8 * res_mm)
    gv = cv2.Sobel(lg, cv2.CV_32F, 0, 1, ksize=3) / (8 * res_mm)
    m = np.sqrt(gu * gu + gv * gv) + 1e-6
    w = np.clip(m / 1.5, 0, 1)           # ~1.5 ln-units per mm: a sharp tissue/blood border
    return np.dstack([gu / m * w, gv / m * w]).astype(np.float32)


def angle_factor(n_uv: np.ndarray, perp, ax, sin_t: np.ndarray, cos_t: np.ndarray, k_spec: float,
                 k_par: float) -> np.ndarray:
    """Echo gain at interfaces: bright where the beam hits them square on (specular), weak where the
    beam runs along them (the classic lateral-wall / septal dropout)."""
    nu, nv = n_uv[:, :, 0], n_uv[:, :, 1]
    nx = nu * perp[0] + nv * ax[0]
    nz = nu * perp[1] + nv * ax[1]
    w = np.sqrt(nx * nx + nz * nz)
    c = np.abs(nx * sin_t + nz * cos_t) / (w + 1e-6)
    return np.maximum(1.0 + w * (k_spec * c ** 4 - k_par * (1.0 - c) ** 2), 0.08).astype(np.float32)


def gain_profile(rng, r_mm: np.ndarray, depth: float, att_db_mm: float, bumps: int) -> np.ndarray:
    """Residual depth gain in dB (imperfect TGC): a slope plus a few smooth bumps."""
    g = -att_db_mm * r_mm
    for _ in range(bumps):
        c, w, a = rng.uniform(0.1, 0.95) * depth, rng.uniform(0.05, 0.25) * depth, rng.uniform(-5, 5)
        g = g + a * np.exp(-0.5 * ((r_mm - c) / w) ** 2)
    return g.astype(np.float32)


def lateral_gain(theta: np.ndarray, half: float, strength: float) -> np.ndarray:
    """dB loss towards the sector edges (element directivity)."""
    return (-strength * 12.0 * (theta / half) ** 4).astype(np.float32)


def shadow_map(rng, r_mm: np.ndarray, theta: np.ndarray, n: int) -> np.ndarray:
    """Multiplicative (nr, nt) map with n dark radial stripes (rib / lung shadows) starting near the probe."""
    m = np.ones((len(r_mm), len(theta)), np.float32)
    span = theta[-1] - theta[0]
    for _ in range(n):
        c = theta[0] + rng.uniform(0.05, 0.95) * span
        w = rng.uniform(0.03, 0.12) * span
        depth0 = rng.uniform(5, 25)
        strength = rng.uniform(0.4, 0.92)
        edge = np.clip(1 - np.abs(theta - c) / w, 0, 1) ** 0.7
        onset = np.clip((r_mm - depth0) / 8.0, 0, 1)
        m *= 1 - strength * onset[:, None] * edge[None, :]
    return m


def clutter_intensity(r_mm: np.ndarray, depth_scale: float, level: float, bands: bool, band_step: float) -> np.ndarray:
    """Depth envelope of near-field haze (apical clutter) plus optional reverberation bands, per row:
    a haze across the top of the sector that is gone by a few centimetres."""
    env = level * np.exp(-(r_mm / depth_scale) ** 2)
    if bands:
        for k in range(1, 4):
            env = env + 0.6 * level * np.exp(-0.5 * ((r_mm - k * band_step) / 1.5) ** 2) / k
    return env.astype(np.float32)


def ecg_wave(phase: np.ndarray, systole: float) -> np.ndarray:
    """Synthetic ECG (P, QRS, T) over cardiac phase (R wave at phase 0 = end-diastole)."""
    p = np.mod(phase + 0.5, 1.0) - 0.5
    g = lambda c, w, a: a * np.exp(-0.5 * ((p - c) / w) ** 2)  # noqa: E731
    return (g(-0.16, 0.025, 0.15) + g(-0.02, 0.007, -0.12) + g(0.0, 0.009, 1.0) + g(0.025, 0.008, -0.25)
            + g(systole - 0.08, 0.045, 0.3))


class Overlays:
    """Burned-in screen furniture drawn onto each uint8 frame (text, depth ticks, ECG trace + marker)."""

    def __init__(self, rng, H, W, placement, depth, half, art: dict, hr: float, fps: float,
                 phases: np.ndarray, systole: float):
        self.H, self.W = H, W
        self.art = art
        self.phases = phases
        self.systole = systole
        self.level = int(rng.integers(150, 256))
        self.font_scale = max(H, W) / 900.0 * rng.uniform(0.7, 1.2)
        # never the view name: burned-in text must not tell the network the answer
        opts = [f"{depth / 10:.0f}cm", f"HR {hr:.0f}", f"{fps:.0f}Hz", f"G{rng.integers(40, 70)}",
                f"DR{rng.integers(40, 70)}", "2D", f"MI {rng.uniform(0.8, 1.5):.1f}", "P Low", "Res",
                f"TIS {rng.uniform(0.2, 1.2):.1f}", "ADULT", "CARD"]
        rng.shuffle(opts)
        self.texts = []
        for corner in range(int(rng.integers(1, 4))):
            k = int(rng.integers(1, 4))
            self.texts.append((corner, opts[:k]))
            opts = opts[k:] + opts[:k]
        # depth ticks along the right sector edge (or the centre line), every 1 cm, longer every 5 cm
        self.ticks = []
        side = "edge" if rng.uniform() < 0.92 else "centre"
        for cm in range(1, int(depth // 10) + 1):
            r = cm * 10.0
            th = half + 0.03 if side == "edge" else 0.0
            x, y = placement.to_image(r * np.sin(th), r * np.cos(th))
            self.ticks.append((float(x), float(y), cm % 5 == 0, side))
        self.ecg_y = H * rng.uniform(0.86, 0.95)
        self.ecg_h = H * rng.uniform(0.04, 0.08)
        self.ecg_x0 = W * rng.uniform(0.05, 0.3)
        self.ecg_x1 = W * rng.uniform(0.7, 0.98)
        span_beats = rng.uniform(1.5, 3.0)
        self.ecg_span = span_beats
        self.ecg_marker = rng.choice(["line", "dot"])
        # grey-scale bar (the scanner's grey map legend) beside the sector
        self.bar = None
        if art.get("overlay_text") and rng.uniform() < 0.4 and W >= 200:
            bh, bw = int(H * rng.uniform(0.15, 0.3)), max(3, int(W * 0.012))
            bx = int(W * rng.uniform(0.02, 0.06)) if rng.uniform() < 0.5 else int(W * rng.uniform(0.92, 0.96))
            by = int(H * rng.uniform(0.15, 0.35))
            ramp = np.linspace(255, 0, bh)
            steps = int(rng.choice([0, 8, 16]))
            if steps:
                ramp = np.floor(ramp / 256 * steps) * (255 / (steps - 1))
            self.bar = (bx, by, bw, np.clip(ramp, 0, 255).astype(np.uint8))

    def draw(self, img: np.ndarray, t: int) -> np.ndarray:
        a, lv = self.art, self.level
        H, W = self.H, self.W
        fs = max(self.font_scale, 0.25)
        th = max(1, int(round(fs * 1.5)))
        if a.get("overlay_text"):
            for corner, lines in self.texts:
                for i, s in enumerate(lines):
                    (tw, tht), _ = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, fs, th)
                    x = 4 if corner in (0, 2) else W - tw - 4
                    y = (tht + 4) * (i + 1) if corner in (0, 1) else H - 4 - (tht + 4) * (len(lines) - 1 - i)
                    if corner == 2 and a.get("overlay_ecg"):
                        y = int(self.ecg_y - self.ecg_h * 1.5) - (tht + 4) * (len(lines) - 1 - i)
                    cv2.putText(img, s, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, fs, lv, th, cv2.LINE_AA)
        if self.bar is not None:
            bx, by, bw, ramp = self.bar
            img[by:by + len(ramp), bx:bx + bw] = ramp[:min(len(ramp), H - by), None]
        if a.get("overlay_ticks"):
            for x, y, big, side in self.ticks:
                if not (0 <= x < W and 0 <= y < H):
                    continue
                ln = max(2, int(W * (0.012 if big else 0.006)))
                if side == "edge":
                    cv2.line(img, (int(x), int(y)), (int(x) + ln, int(y)), lv, 1)
                else:
                    cv2.circle(img, (int(x), int(y)), max(1, ln // 3), lv, -1)
        if a.get("overlay_ecg"):
            n = 200
            xs = np.linspace(self.ecg_x0, self.ecg_x1, n)
            ph0 = self.phases[0]
            ph = ph0 + np.linspace(0, self.ecg_span, n)
            ys = self.ecg_y - self.ecg_h * ecg_wave(ph, self.systole)
            pts = np.stack([xs, ys], 1).round().astype(np.int32)
            cv2.polylines(img, [pts], False, lv, 1, cv2.LINE_AA)
            frac = ((self.phases[t] - ph0) % self.ecg_span) / self.ecg_span
            mx = self.ecg_x0 + frac * (self.ecg_x1 - self.ecg_x0)
            my = self.ecg_y - self.ecg_h * float(ecg_wave(np.array([self.phases[t]]), self.systole)[0])
            if self.ecg_marker == "line":
                cv2.line(img, (int(mx), int(self.ecg_y - 1.3 * self.ecg_h)), (int(mx), int(self.ecg_y + 0.3 * self.ecg_h)), 255, 1)
            else:
                cv2.circle(img, (int(mx), int(my)), max(1, W // 250), 255, -1)
        return img


TINTS = {1: (0.75, 0.95, 1.25), 2: (1.25, 1.0, 0.7), 3: (1.1, 1.05, 0.8)}   # blue, sepia, bronze (R, G, B gamma)


def grey_lut(im: dict):
    """uint8 LUT for a tinted grey map read back as grey (the readers collapse colour with the BT.601
    weights): tinted clips come out with a slightly bent, darker grey curve. None = plain grey."""
    tint = int(im.get("tint", 0))
    if not tint:
        return None
    x = np.arange(256) / 255.0
    g = np.array(TINTS[tint]) ** im.get("tint_k", 1.0)
    r, gg, b = (x[:, None] ** g[None, :]).T
    y = 0.299 * r + 0.587 * gg + 0.114 * b
    return np.clip(np.round(255 * y), 0, 255).astype(np.uint8)


def compress(db: np.ndarray, low: float, im: dict) -> np.ndarray:
    """Log-compressed echo (dB) -> 0..1 display: a power-law grey map, or a sigmoid one (foreign style)."""
    x = np.clip((db - low) / im["dr_db"], 0, 1)
    k = im.get("sigmoid", 0.0)
    if k:
        s0, s1 = 1 / (1 + np.exp(k * 0.5)), 1 / (1 + np.exp(-k * 0.5))
        x = (1 / (1 + np.exp(-k * (x - 0.5))) - s0) / (s1 - s0)
    return x ** im["gamma"]


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else img

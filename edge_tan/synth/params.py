"""Every random choice of one phantom sequence, drawn once from its seed (so runs are reproducible)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import EdgeTanError
from .anatomy import Anatomy, Tissue

OUT_SIZES = ((112, 112), (128, 128), (160, 160), (224, 224), (256, 256), (240, 320), (300, 400),
             (384, 512), (480, 640), (600, 800))
OUT_WEIGHTS = (0.30, 0.08, 0.06, 0.14, 0.08, 0.06, 0.08, 0.06, 0.07, 0.07)

OVERRIDES = ("n_frames", "out_size", "fps", "heart_rate", "ef", "quality", "depth", "sector_deg", "tilt_deg")


@dataclass
class SeqParams:
    view: str
    n_frames: int
    fps: float
    heart_rate: float
    phase0: float
    ef_target: float
    quality: float
    anatomy: Anatomy
    tissue: Tissue
    eps_l: float
    eps_rv: float
    apex_in: float
    systole: float
    c_diastasis: float
    depth: float
    half: float
    out_size: tuple[int, int]
    cropped: bool
    apex_xz: tuple[float, float]
    tilt: float
    drift: dict = field(default_factory=dict)
    imaging: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)


def _u(rng, a, b):
    return float(rng.uniform(a, b))


def sample_params(rng: np.random.Generator, view: str, overrides: dict) -> SeqParams:
    bad = set(overrides) - set(OVERRIDES)
    if bad:
        raise EdgeTanError(f"unknown phantom override(s) {sorted(bad)}; known: {', '.join(OVERRIDES)}")
    ov = overrides
    # independent streams per concern, and every base draw always taken, so an override (e.g. a
    # tiny n_frames for a test) leaves the rest of the sequence's random choices unchanged
    r_base, r_anat, r_img, r_art = rng.spawn(4)
    draws = dict(quality=float(r_base.beta(2.0, 1.6)), heart_rate=_u(r_base, 50, 120),
                 fps=float(np.clip(r_base.choice([25, 30, 30, 40, 50, 50, 60, 70, 80]) + _u(r_base, -2, 2), 25, 80)),
                 beats=_u(r_base, 1.05, 2.6), ef=_u(r_base, 22.0, 73.0),
                 size=int(r_base.choice(len(OUT_SIZES), p=np.array(OUT_WEIGHTS) / sum(OUT_WEIGHTS))),
                 depth=_u(r_base, 125, 200), sector_deg=_u(r_base, 60, 90),
                 tilt_deg=(8.0 if view == "A4C" else 4.0) + _u(r_base, -20, 20), phase0=_u(r_base, 0, 1))
    pick = lambda k: float(ov[k]) if ov.get(k) is not None else draws[k]  # noqa: E731
    q = min(max(pick("quality"), 0.0), 1.0)
    bad_ = 1.0 - q
    hr = pick("heart_rate")
    fps = pick("fps")
    if hr <= 0 or fps <= 0:
        raise EdgeTanError(f"heart_rate and fps must be positive, got {hr}, {fps}")
    if ov.get("n_frames") is not None:
        T = int(ov["n_frames"])
    else:
        T = int(np.clip(round(draws["beats"] * fps * 60.0 / hr), 21, 120))
    if T < 2:
        raise EdgeTanError(f"n_frames must be >= 2, got {T}")
    ef = pick("ef")
    if not 5.0 <= ef <= 85.0:
        raise EdgeTanError(f"ef must be within 5..85 %, got {ef}")
    rng = r_anat
    systole = float(np.clip(0.30 + 0.12 * (hr - 60) / 60 + rng.normal(0, 0.02), 0.27, 0.47))

    # ---- anatomy: dilated hearts are larger and rounder when EF is low
    dil = float(np.clip((55 - ef) / 35, 0, 1)) * _u(rng, 0.3, 1.0)
    L = _u(rng, 68, 92) * (1 + 0.12 * dil)
    sph = _u(rng, 0.48, 0.68) + 0.15 * dil
    A = 0.5 * L * sph
    kappa = _u(rng, 0.80, 0.92)
    an = Anatomy(view=view, L=L, A=A, p=_u(rng, 0.45, 0.72), b=L / (2 * kappa),
                 h_sep=_u(rng, 7.5, 13.0), h_lat=_u(rng, 6.5, 11.5), h_ap=_u(rng, 4.5, 8.5),
                 rv_w=_u(rng, 20, 36), rv_t=_u(rng, 3.0, 5.0),
                 la_a=_u(rng, 17, 26), la_b=_u(rng, 18, 28), ra_a=_u(rng, 15, 23), ra_b=_u(rng, 17, 26),
                 peri_t=_u(rng, 1.5, 3.5), skew=_u(rng, -0.2, 0.3))
    an.rv_v0 = _u(rng, 0.25, 0.5) * L
    an.tv_v = L - _u(rng, 4, 11)
    tis = Tissue(myo=1.0, septum=_u(rng, 1.0, 2.6) if view == "A4C" else _u(rng, 0.9, 1.3),
                 peri=_u(rng, 2.0, 5.0), blood=10 ** _u(rng, -4.5, -3.0), bg=_u(rng, 0.04, 0.3),
                 atrial_wall=_u(rng, 0.3, 0.9), texture=_u(rng, 0.2, 0.55),
                 fuzz_mm=_u(rng, 0.2, 0.8) + 1.6 * bad_ * rng.uniform(),
                 papillary=bool(rng.uniform() < 0.6), moderator=bool(rng.uniform() < 0.35),
                 aorta=bool(rng.uniform() < 0.3), segment_var=_u(rng, 0.1, 0.45),
                 trabeculae=_u(rng, 0.0, 0.5) * (rng.uniform() < 0.7), lung=_u(rng, 0.0, 0.9),
                 lung_gap=_u(rng, 3, 25), ring=_u(rng, 0.8, 2.5), ring_mm=_u(rng, 1.5, 3.5))
    drops = []
    if rng.uniform() < 0.35 + 0.6 * bad_:       # lateral wall dropout (beam parallel to the wall)
        vv = _u(rng, 0.25, 0.9) * L
        drops.append((float(an.a0(vv)) + 0.5 * an.h_lat, vv, _u(rng, 6, 18), _u(rng, 0.5, 0.97)))
    if rng.uniform() < 0.25 + 0.4 * bad_:       # apical dropout
        drops.append((_u(rng, -8, 8), -0.5 * an.h_ap, _u(rng, 5, 12), _u(rng, 0.4, 0.9)))
    if view == "A4C" and rng.uniform() < 0.5:   # thin atrial septum often drops out
        cu, cv, aa = an.la_center()
        drops.append((cu - aa - 2.0, cv + _u(rng, -0.3, 0.3) * an.la_b, _u(rng, 4, 10), _u(rng, 0.5, 0.95)))
    if rng.uniform() < 0.3 * bad_ + 0.1:        # septal or anterior segment
        vv = _u(rng, 0.2, 0.8) * L
        drops.append((-float(an.a0(vv)) - 0.5 * an.h_sep, vv, _u(rng, 5, 12), _u(rng, 0.3, 0.8)))
    tis.dropouts = tuple(drops)

    # ---- probe and placement
    rng = r_img
    depth = pick("depth")
    sector = pick("sector_deg")
    tilt = np.deg2rad(pick("tilt_deg"))
    gap = _u(rng, 8, 40)
    apex_z = an.h_ap + gap
    apex_x = _u(rng, -4, 14) if view == "A4C" else _u(rng, -8, 8)
    if ov.get("out_size") is not None:
        H, W = (int(x) for x in ov["out_size"])
    else:
        H, W = OUT_SIZES[draws["size"]]
    if H < 32 or W < 32:
        raise EdgeTanError(f"out_size must be at least 32x32, got {H}x{W}")
    cropped = bool(rng.uniform() < (0.85 if max(H, W) <= 160 else 0.25))
    rng = r_art

    drift = dict(tx=_u(rng, -1, 1) * 4 * bad_, tz=_u(rng, -1, 1) * 3 * bad_, rot=np.deg2rad(_u(rng, -1, 1) * 4 * bad_),
                 resp_amp=_u(rng, 0, 3.0) * (rng.uniform() < 0.6), resp_period=_u(rng, 3, 6),
                 resp_phase=_u(rng, 0, 2 * np.pi), decor=_u(rng, 0, 0.35) + 1.0 * bad_ * rng.uniform())
    imaging = dict(psf_ax_mm=_u(rng, 0.25, 0.6), psf_lat_deg=_u(rng, 0.45, 1.1), focus=_u(rng, 0.35, 0.7),
                   far_widen=_u(rng, 1.3, 2.2), att_db_mm=_u(rng, 0.0, 0.08), dr_db=_u(rng, 30, 46),
                   headroom_db=_u(rng, 5, 17), noise_rel_db=_u(rng, -8, 6), tgc_db_mm=_u(rng, 0.08, 0.2), gamma=_u(rng, 0.8, 1.5),
                   gain_bumps=int(rng.integers(0, 4)), lateral_gain=_u(rng, 0, 0.5),
                   k_spec=_u(rng, 0.0, 1.5), k_par=_u(rng, 0.1, 0.5) + 0.4 * bad_ * rng.uniform(),
                   sidelobe=_u(rng, 0.0, 0.01 + 0.06 * bad_))
    artifacts = dict(
        clutter=float(rng.uniform() < 0.4 + 0.55 * bad_) * _u(rng, 0.01, 0.04 + 0.4 * bad_),
        clutter_depth=_u(rng, 6, 18) + 25 * bad_ * rng.uniform(),
        reverb_bands=float(rng.uniform() < 0.3 * bad_ + 0.1),
        shadows=int(rng.integers(0, 3)) if rng.uniform() < 0.15 + 0.5 * bad_ else 0,
        jpeg=int(rng.integers(25, 96)) if rng.uniform() < 0.7 else 0,
        blur=_u(rng, 0, 0.9) * (rng.uniform() < 0.5),
        overlay_text=bool(rng.uniform() < (0.15 if max(H, W) <= 160 else 0.7)),
        overlay_ticks=bool(rng.uniform() < (0.1 if max(H, W) <= 160 else 0.6)),
        overlay_ecg=bool(rng.uniform() < (0.1 if max(H, W) <= 160 else 0.6)),
        persistence=_u(rng, 0, 0.5) * (rng.uniform() < 0.4),
        chest_wall=_u(rng, 0.1, 1.2), chest_depth=_u(rng, 4, 18), chest_period=_u(rng, 2.5, 7),
        r_min=_u(rng, 0, 7) * (rng.uniform() < 0.6), la_visible=_u(rng, 0.8, 1.08),
    )
    return SeqParams(view=view, n_frames=T, fps=fps, heart_rate=hr, phase0=draws["phase0"], ef_target=ef,
                     quality=q, anatomy=an, tissue=tis,
                     eps_l=float(np.clip(0.05 + 0.15 * (ef - 20) / 55 + rng.normal(0, 0.02), 0.03, 0.24)),
                     eps_rv=_u(rng, 0.15, 0.4) * (0.5 + ef / 100), apex_in=_u(rng, 0.0, 2.5),
                     systole=systole, c_diastasis=_u(rng, 0.2, 0.4), depth=depth, half=np.deg2rad(sector / 2),
                     out_size=(H, W), cropped=cropped, apex_xz=(apex_x, apex_z), tilt=float(tilt),
                     drift=drift, imaging=imaging, artifacts=artifacts)

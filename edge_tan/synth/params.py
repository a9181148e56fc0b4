"""Every random choice of one phantom sequence, drawn once from its seed (so runs are reproducible).

Nuisance draws (pose, zoom, sector, grey map, speckle, artifacts, overlays) never depend on the view:
the same seed stream gives the same nuisance parameters for A2C and A4C, so only the anatomy tells
the views apart. Anatomy draws are also taken for every view (A2C simply does not paint the RV/RA).
A family (`default`: the training phantom; `foreign`: a held-out rendering style and anatomy
variant, for testing only) reshapes the draws from its own stream after the default ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..runtime.errors import EdgeTanError
from .anatomy import Anatomy, Tissue

OUT_SIZES = ((112, 112), (128, 128), (160, 160), (224, 224), (256, 256), (240, 320), (300, 400),
             (384, 512), (480, 640), (600, 800))
OUT_WEIGHTS = (0.50, 0.07, 0.05, 0.10, 0.05, 0.05, 0.05, 0.04, 0.05, 0.04)
FAMILIES = ("default", "foreign", "holdout")   # holdout: edge_tan/synth/holdout.py (frozen)

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
    family: str = "default"
    drift: dict = field(default_factory=dict)
    imaging: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)


def _u(rng, a, b):
    return float(rng.uniform(a, b))


def draw_ef(rng) -> float:
    """EF over 10..80 % with most mass at normal values (median ~60), as in clinical echo archives."""
    normal = float(np.clip(rng.normal(61.0, 6.0), 45.0, 80.0))
    reduced = _u(rng, 10.0, 50.0)
    return normal if rng.uniform() < 0.78 else reduced


def sample_params(rng: np.random.Generator, view: str, overrides: dict, family: str = "default") -> SeqParams:
    """Every random choice of one phantom clip (anatomy, motion, probe, imaging, artifacts), overrides applied.

    Long on purpose (~140 lines): one fixed-order random recipe (why: `edge_tan.synth`)."""
    bad = set(overrides) - set(OVERRIDES)
    if bad:
        raise EdgeTanError(f"unknown phantom override(s) {sorted(bad)}; known: {', '.join(OVERRIDES)}")
    if family not in FAMILIES:
        raise EdgeTanError(f"unknown phantom family {family!r}: choose from {', '.join(FAMILIES)}")
    ov = overrides
    # independent streams per concern, and every base draw always taken, so an override (e.g. a
    # tiny n_frames for a test) leaves the rest of the sequence's random choices unchanged
    r_base, r_anat, r_img, r_art, r_fam, r_clin = rng.spawn(6)   # a 6th child leaves the first 5 as they were
    draws = dict(quality=float(r_base.beta(2.0, 1.6)), heart_rate=_u(r_base, 50, 115),
                 fps=float(np.clip(r_base.choice([25, 30, 30, 40, 50, 50, 50, 60, 70, 80]) + _u(r_base, -2, 2), 25, 80)),
                 beats=_u(r_base, 1.05, 2.6), ef=draw_ef(r_base),
                 size=int(r_base.choice(len(OUT_SIZES), p=np.array(OUT_WEIGHTS) / sum(OUT_WEIGHTS))),
                 depth=0.0, depth_k=_u(r_base, 0.92, 1.12),
                 sector_deg=_u(r_base, 78, 92) if r_base.uniform() < 0.85 else _u(r_base, 62, 78),
                 tilt_deg=_u(r_base, 4, 32), phase0=_u(r_base, 0, 1))
    if family == "foreign":   # narrower probes, deeper settings, more upright hearts
        draws.update(sector_deg=_u(r_fam, 55, 75), depth_k=_u(r_fam, 1.2, 1.45), tilt_deg=_u(r_fam, -6, 14),
                     size=int(r_fam.choice([1, 2, 5, 6, 7])))
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
    L = _u(rng, 70, 95) * (1 + 0.12 * dil)
    sph = _u(rng, 0.46, 0.64) + 0.15 * dil
    A = 0.5 * L * sph
    kappa = _u(rng, 0.80, 0.92)
    an = Anatomy(view=view, L=L, A=A, p=_u(rng, 0.45, 0.72), b=L / (2 * kappa),
                 h_sep=_u(rng, 7.5, 12.5), h_lat=_u(rng, 4.0, 8.5), h_ap=_u(rng, 3.5, 7.0),
                 rv_w=_u(rng, 24, 40), rv_t=_u(rng, 2.5, 4.5),
                 la_a=_u(rng, 18, 26), la_b=_u(rng, 18, 27), ra_a=_u(rng, 16, 24), ra_b=_u(rng, 17, 26),
                 peri_t=_u(rng, 1.0, 3.0), skew=_u(rng, -0.2, 0.3))
    an.rv_v0 = _u(rng, 0.15, 0.4) * L
    an.tv_v = L - _u(rng, 4, 11)
    tis = Tissue(myo=1.0, septum=_u(rng, 2.0, 4.5), inferior=_u(rng, 0.9, 1.6), lateral=_u(rng, 0.25, 0.8),
                 peri=_u(rng, 1.0, 3.5), peri_patchy=_u(rng, 0.3, 0.9), blood=10 ** _u(rng, -3.8, -3.0),
                 bg=_u(rng, 0.015, 0.08), atrial_wall=_u(rng, 0.3, 0.9), texture=_u(rng, 0.3, 0.7),
                 fuzz_mm=_u(rng, 0.3, 1.0) + 1.4 * bad_ * rng.uniform(),
                 papillary=bool(rng.uniform() < 0.85), pap_lvl=_u(rng, 0.35, 1.0),
                 moderator=bool(rng.uniform() < 0.35), aorta=bool(rng.uniform() < 0.3),
                 segment_var=_u(rng, 0.15, 0.5), trabeculae=_u(rng, 0.15, 0.7), lung=_u(rng, 0.2, 0.75),
                 lung_gap=_u(rng, 2, 18), ragged_mm=_u(rng, 0.6, 2.0), crux=_u(rng, 1.4, 2.8),
                 crux_du=_u(rng, -2.5, 2.5), crux_dv=_u(rng, -2.0, 3.0), smoke=_u(rng, 0.3, 1.0))
    drops = []
    lat_drop = rng.uniform() < 0.55 + 0.4 * bad_      # lateral wall dropout (beam parallel to the wall)
    vv, rad, st = _u(rng, 0.25, 0.9) * L, _u(rng, 8, 22), _u(rng, 0.5, 0.97)
    if lat_drop:
        drops.append((float(an.a0(vv)) + 0.5 * an.h_lat, vv, rad, st))
    ap_drop = rng.uniform() < 0.25 + 0.4 * bad_       # apical dropout
    du, rad, st = _u(rng, -8, 8), _u(rng, 5, 12), _u(rng, 0.4, 0.9)
    if ap_drop:
        drops.append((du, -0.5 * an.h_ap, rad, st))
    as_drop = rng.uniform() < 0.5                     # thin atrial septum often drops out (A4C anatomy)
    cu, cv, aa = an.la_center()
    dv, rad, st = _u(rng, -0.3, 0.3), _u(rng, 4, 10), _u(rng, 0.5, 0.95)
    if as_drop and view == "A4C":
        drops.append((cu - aa - 2.0, cv + dv * an.la_b, rad, st))
    sep_drop = rng.uniform() < 0.3 * bad_ + 0.1       # septal or inferior segment
    vv, rad, st = _u(rng, 0.2, 0.8) * L, _u(rng, 5, 12), _u(rng, 0.3, 0.8)
    if sep_drop:
        drops.append((-float(an.a0(vv)) - 0.5 * an.h_sep, vv, rad, st))
    tis.dropouts = tuple(drops)

    # ---- probe and placement (the probe sits over the LV apex: apex near the top of the sector)
    rng = r_img
    depth = pick("depth")   # 0: set from the anatomy (depth_k x the bottom of the atria) when placed
    sector = pick("sector_deg")
    tilt = np.deg2rad(pick("tilt_deg"))
    gap = _u(rng, 10, 28)
    apex_z = an.h_ap + gap
    apex_x = _u(rng, -6, 10)
    if ov.get("out_size") is not None:
        H, W = (int(x) for x in ov["out_size"])
    else:
        H, W = OUT_SIZES[draws["size"]]
    if H < 32 or W < 32:
        raise EdgeTanError(f"out_size must be at least 32x32, got {H}x{W}")
    cropped = bool(rng.uniform() < (0.9 if max(H, W) <= 160 else 0.6))
    rng = r_art

    drift = dict(tx=_u(rng, -1, 1) * 4 * bad_, tz=_u(rng, -1, 1) * 3 * bad_, rot=np.deg2rad(_u(rng, -1, 1) * 4 * bad_),
                 resp_amp=_u(rng, 0, 3.0) * (rng.uniform() < 0.6), resp_period=_u(rng, 3, 6),
                 resp_phase=_u(rng, 0, 2 * np.pi), decor=_u(rng, 0, 0.35) + 1.0 * bad_ * rng.uniform(),
                 flicker=_u(rng, 0.1, 0.4))
    imaging = dict(psf_ax_mm=_u(rng, 0.8, 1.8), psf_lat_deg=_u(rng, 0.7, 1.6), focus=_u(rng, 0.35, 0.7),
                   far_widen=_u(rng, 1.3, 2.2), att_db_mm=_u(rng, 0.0, 0.08), dr_db=_u(rng, 34, 50),
                   headroom_db=_u(rng, 6, 14), noise_rel_db=_u(rng, -14, -2), tgc_db_mm=_u(rng, 0.05, 0.15),
                   gamma=_u(rng, 0.8, 1.4), gain_bumps=int(rng.integers(0, 4)), lateral_gain=_u(rng, 0, 0.3),
                   k_spec=_u(rng, 0.3, 1.8), k_par=_u(rng, 0.3, 0.75) + 0.2 * bad_ * rng.uniform(),
                   sidelobe=_u(rng, 0.001, 0.008 + 0.03 * bad_), speckle_mm=_u(rng, 0.6, 1.0),
                   tint=int(rng.choice(4, p=[0.7, 0.1, 0.1, 0.1])), tint_k=_u(rng, 0.3, 1.0))
    artifacts = dict(
        clutter=_u(rng, 0.05, 0.15 + 0.15 * bad_),
        clutter_depth=_u(rng, 8, 20) + 12 * bad_ * rng.uniform(),
        reverb_bands=float(rng.uniform() < 0.3 * bad_ + 0.1),
        shadows=int(rng.integers(0, 3)) if rng.uniform() < 0.15 + 0.5 * bad_ else 0,
        jpeg=int(rng.integers(65, 96)) if rng.uniform() < 0.6 else 0,
        blur=_u(rng, 0.3, 1.0) * (rng.uniform() < 0.6),
        downup=_u(rng, 1.3, 2.5) * (rng.uniform() < 0.5),
        overlay_text=bool(rng.uniform() < (0.1 if max(H, W) <= 160 else 0.4)),
        overlay_ticks=bool(rng.uniform() < (0.08 if max(H, W) <= 160 else 0.4)),
        overlay_ecg=bool(rng.uniform() < (0.1 if max(H, W) <= 160 else 0.4)),
        persistence=_u(rng, 0, 0.4) * (rng.uniform() < 0.3),
        chest_wall=_u(rng, 0.1, 1.2), chest_depth=_u(rng, 4, 18), chest_period=_u(rng, 2.5, 7),
        r_min=_u(rng, 0, 5) * (rng.uniform() < 0.4), depth_k=draws["depth_k"],
    )
    P = SeqParams(view=view, n_frames=T, fps=fps, heart_rate=hr, phase0=draws["phase0"], ef_target=ef,
                  quality=q, anatomy=an, tissue=tis,
                  eps_l=float(np.clip(0.05 + 0.15 * (ef - 20) / 55 + rng.normal(0, 0.02), 0.03, 0.24)),
                  eps_rv=_u(rng, 0.15, 0.4) * (0.5 + ef / 100), apex_in=_u(rng, 0.0, 2.5),
                  systole=systole, c_diastasis=_u(rng, 0.2, 0.4), depth=depth, half=np.deg2rad(sector / 2),
                  out_size=(H, W), cropped=cropped, apex_xz=(apex_x, apex_z), tilt=float(tilt), family=family,
                  drift=drift, imaging=imaging, artifacts=artifacts)
    if family == "foreign":
        _foreign(P, r_fam)
    elif family == "holdout":
        from .holdout import apply_holdout
        apply_holdout(P, r_fam)
    else:
        _clinical_range(P, r_clin)
    return P


def _clinical_range(P: SeqParams, rng) -> None:
    """Hearts from a clinical archive, not only normal ones (training family only): enlarged atria
    (atrial fibrillation, mitral disease: an LA as long as half the LV is common), hypertrophied walls,
    rounder ventricles, nearly upright LVs, and mitral leaflets too thin for a low-resolution export to
    show. Without these the network learned to stop the LV at a visible valve line and merged a large
    LA into the LV when no line showed. Every draw is always taken (stable streams)."""
    an = P.anatomy
    big_la, k_la, k_lb = rng.uniform() < 0.35, _u(rng, 1.1, 1.45), _u(rng, 0.95, 1.1)
    big_ra, k_ra = rng.uniform() < 0.25, _u(rng, 1.1, 1.35)
    thick, k_wall = rng.uniform() < 0.2, _u(rng, 1.1, 1.4)
    round_, k_round = rng.uniform() < 0.2, _u(rng, 1.05, 1.18)
    upright, tilt = rng.uniform() < 0.15, _u(rng, -4.0, 10.0)
    faint, leaflet = rng.uniform() < 0.35, _u(rng, 0.1, 0.5)
    if big_la:
        an.la_a *= k_la
        an.la_b *= k_la * k_lb
    if big_ra:
        an.ra_a *= k_ra
        an.ra_b *= k_ra
    if thick:
        an.h_sep *= k_wall
        an.h_lat *= k_wall
    if round_:
        an.A *= k_round
    if upright:
        P.tilt = float(np.deg2rad(tilt))
    P.imaging["leaflet"] = leaflet if faint else 1.0


def _foreign(P: SeqParams, rng) -> None:
    """Held-out domain: other chamber proportions (thick walls, round LV, big atria, narrow RV), a
    fine speckle from a sharp PSF, a bright log-sigmoid grey map with grey blood, a narrow deep
    uncropped sector with an upright heart, no overlays or codec."""
    an, ts = P.anatomy, P.tissue
    an.h_sep *= _u(rng, 1.1, 1.4)
    an.h_lat = an.h_sep * _u(rng, 0.8, 1.0)
    an.A *= _u(rng, 1.08, 1.2)
    an.la_a *= _u(rng, 1.1, 1.3)
    an.la_b *= _u(rng, 1.1, 1.3)
    an.rv_w *= _u(rng, 0.6, 0.8)
    ts.lateral = _u(rng, 0.8, 1.3)
    ts.septum = _u(rng, 1.0, 1.6)
    ts.peri = _u(rng, 2.5, 5.0)
    ts.peri_patchy = 0.0
    ts.blood = 10 ** _u(rng, -3.3, -2.7)
    ts.trabeculae *= 0.4
    P.cropped = False
    P.imaging.update(psf_ax_mm=_u(rng, 0.15, 0.3), psf_lat_deg=_u(rng, 0.3, 0.55), speckle_mm=_u(rng, 0.25, 0.45),
                     dr_db=_u(rng, 46, 56), gamma=_u(rng, 0.9, 1.1), sigmoid=_u(rng, 3.0, 5.0), tint=0)
    P.artifacts.update(clutter=_u(rng, 0.05, 0.15), clutter_depth=_u(rng, 12, 22), overlay_text=False,
                       overlay_ecg=False, overlay_ticks=False, jpeg=0, downup=0.0)

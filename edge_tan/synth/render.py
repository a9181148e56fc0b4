"""Render one phantom sequence: deformation -> beam-space speckle -> log compression -> scan conversion.

Image, mask and landmarks come from the same deformation: every beam sample is mapped back to its
reference (ED) position (backward map, fixed-point inverse of the forward map); echogenicity,
tissue-attached scatterers and the analytic cavity level set are all sampled there. Landmarks are
the forward map of the reference apex and annulus points.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import VIEW_NAMES
from ..dataset import Sequence
from ..runtime.errors import EdgeTanError
from . import artifacts as art
from .anatomy import echogenicity_map
from .motion import Cycle, Deformation, calibrate_eps_r
from .params import SeqParams, sample_params
from .scanner import Placement, Pose, Probe, remap
from .truth import ed_es_ef
from .valves import valve_polylines

COARSE_MM = 1.6   # spacing of the grid where the deformation is inverted exactly (then bilinear)


def _poses(P: SeqParams, times: np.ndarray) -> list[Pose]:
    d = P.drift
    T = max(times[-1], 1e-6)
    out = []
    for t in times:
        f = t / T
        resp = d["resp_amp"] * np.sin(2 * np.pi * t / d["resp_period"] + d["resp_phase"])
        out.append(Pose(px=P.apex_xz[0] + d["tx"] * f, pz=P.apex_xz[1] + d["tz"] * f + resp,
                        tilt=P.tilt + d["rot"] * f))
    return out


def _lv_outline(P: SeqParams) -> np.ndarray:
    """Heart-local points that must stay visible: the traced LV cavity (the label) and the mitral
    plane; the walls may leave the sector, as the lateral wall often does in real views."""
    an = P.anatomy
    v = np.linspace(0.0, an.L, 40)
    a = an.a0(v) + 1.0
    c = an.centre(v)
    pts = np.concatenate([np.stack([c + a, v], 1), np.stack([c - a, v], 1), [[0.0, -2.0], [0.0, an.L + 5.0]]])
    return pts


def _fit(P: SeqParams, rng: np.random.Generator, times: np.ndarray):
    """Adjust pose/depth so the LV stays inside the sector, then place the sector in the image."""
    pts = _lv_outline(P)
    depth0 = P.depth
    for _ in range(30):
        poses = _poses(P, times)
        ok = True
        worst_r = 0.0
        for pose in (poses[0], poses[len(poses) // 2], poses[-1]):
            x, z = pose.to_physical(pts[:, 0], pts[:, 1])
            r, th = np.hypot(x, z), np.arctan2(x, z)
            worst_r = max(worst_r, float(r.max()))
            if np.abs(th).max() > P.half - np.deg2rad(1.5):
                ok = False
        # sonographers set the depth to show the atria: the heart fills the sector
        cu, cv, _ = P.anatomy.la_center()
        lax, laz = poses[0].to_physical(cu, cv + P.anatomy.la_b)
        if depth0 <= 0:
            P.depth = float(np.hypot(lax, laz) * P.artifacts["depth_k"])
        if worst_r > P.depth - 8:
            P.depth = min(worst_r + 12, 240.0)
        if ok:
            break
        P.tilt *= 0.8
        P.apex_xz = (P.apex_xz[0] * 0.7, P.apex_xz[1] + 3.0)
    H, W = P.out_size
    R = P.depth
    sw = 2 * R * np.sin(P.half)
    if P.cropped:
        f = rng.uniform(0.9, 1.06)
        if P.family != "foreign":   # real exports: the fan fills ~62 % of the frame
            f = 0.97 + 0.8125 * (f - 0.9)
        s = f * H / R
        y0 = rng.uniform(-0.01, 0.03) * H   # the probe (sector apex) touches the top edge
    else:
        f = rng.uniform(0.85, 0.97)
        y0 = rng.uniform(0.02, 0.07) * H
        if P.family != "foreign":   # real exports: the fan fills the frame, its apex at the top edge
            f, y0 = 0.92 + 0.667 * (f - 0.85), 0.7 * (y0 - 0.02 * H)
        s = min(f * H / R, 0.98 * W / sw, (H - y0 - 2) / R)
    x0 = W / 2 + rng.uniform(-0.03, 0.03) * W
    # keep the whole LV (all frames) inside the image
    for _ in range(30):
        pl = Placement(H, W, s, x0, y0)
        inside = True
        for pose in _poses(P, times)[:: max(1, len(times) // 6)]:
            X, Y = pl.to_image(*pose.to_physical(pts[:, 0], pts[:, 1]))
            if X.min() < 2 or X.max() > W - 3 or Y.min() < 2 or Y.max() > H - 3:
                inside = False
                break
        if inside:
            return pl
        s *= 0.95
        y0 = y0 * 0.9 + 0.01 * H
    return Placement(H, W, s, x0, y0)


def generate_sequence(seed: int, view: str = "A4C", name: str | None = None, family: str = "default",
                      **overrides) -> Sequence:
    """One deterministic phantom clip. Overrides: n_frames, out_size=(H, W), fps, heart_rate, ef,
    quality (0 = worst artifacts .. 1 = clean), depth (mm), sector_deg, tilt_deg. `family`:
    "default" (the training phantom) or "foreign" (a held-out style, for testing only).

    Long on purpose (~210 lines): one fixed-order random recipe (why: `edge_tan.synth`)."""
    if view not in VIEW_NAMES:
        raise EdgeTanError(f"unknown view {view!r}: choose from {', '.join(VIEW_NAMES)}")
    rng = np.random.default_rng(int(seed))
    P = sample_params(rng, view, {k: v for k, v in overrides.items() if v is not None}, family=family)
    an, ts = P.anatomy, P.tissue
    T = P.n_frames
    times = np.arange(T) / P.fps
    phases = P.phase0 + times * P.heart_rate / 60.0
    cyc = Cycle(systole=P.systole, c_diastasis=P.c_diastasis)
    cs = cyc.contraction(phases)
    opens = cyc.opening(phases)
    defo = Deformation(an, eps_l=P.eps_l, eps_rv=P.eps_rv, apex_in=P.apex_in)
    if phases[-1] - phases[0] >= 1.0:   # a whole beat: hit the target on the frames actually sampled
        calibrate_eps_r(defo, P.ef_target, float(cs.min()), float(cs.max()))
    else:
        calibrate_eps_r(defo, P.ef_target)
    pl = _fit(P, rng, times)
    poses = _poses(P, times)
    H, W = P.out_size
    s = pl.scale
    im = P.imaging

    # ---- beam grid resolution follows the output pixel size (no wasted work on small frames)
    dr = max(0.22, 0.7 / s)
    sig_lat = np.deg2rad(im["psf_lat_deg"])
    dth = max(sig_lat / 2.0, 1.1 / (s * P.depth))
    probe = Probe(P.depth, P.half, int(P.depth / dr) + 1, int(2 * P.half / dth) + 1)
    dr, dth = probe.dr, probe.dt
    xf, zf = probe.grid_xz(1)
    xc, zc = probe.grid_xz(max(3, int(round(COARSE_MM / dr))))
    r_mm = np.arange(probe.nr) * dr
    theta = -P.half + np.arange(probe.nt) * dth
    sin_t = np.sin(theta).astype(np.float32)[None, :]
    cos_t = np.cos(theta).astype(np.float32)[None, :]
    scan_x, scan_y = pl.scan_maps(probe)

    # ---- reference maps (heart-local ED frame): echogenicity + two scatterer fields
    uu, vv = [], []
    for pose in (poses[0], poses[T // 2], poses[-1]):
        u, v = pose.to_local(xc, zc)
        uu += [u.min(), u.max()]
        vv += [v.min(), v.max()]
    umin, umax, vmin, vmax = min(uu) - 25, max(uu) + 25, min(vv) - 25, max(vv) + 25
    res_m = max(0.7 * dr, 0.16)
    res_e = max(res_m, 0.35)
    ne = (int((vmax - vmin) / res_e) + 1, int((umax - umin) / res_e) + 1)
    Ue, Ve = np.meshgrid(umin + np.arange(ne[1]) * res_e, vmin + np.arange(ne[0]) * res_e)
    E_ref = echogenicity_map(an, ts, Ue, Ve, res_e, rng)
    del Ue, Ve
    N_ref = art.interface_normals(E_ref, res_e) if (im["k_spec"] > 0 or im["k_par"] > 0) else None
    nm = (int((vmax - vmin) / res_m) + 1, int((umax - umin) / res_m) + 1)
    sc = max(0.6, 0.5 * im["speckle_mm"] / res_m)   # scatterer correlation length (grid px)
    S1 = art.complex_field(rng, nm, (sc, sc))
    S2 = art.complex_field(rng, nm, (sc, sc)) if P.drift["decor"] > 0.01 else None

    # ---- probe-fixed maps
    ax_px = max(im["psf_ax_mm"], 0.45 / s) / dr
    lat_px = sig_lat / dth
    wfar = np.clip((r_mm / P.depth - im["focus"]) / (1 - im["focus"]), 0, 1)
    wfar = np.maximum(wfar, 0.6 * np.clip(1 - r_mm / (im["focus"] * P.depth), 0, 1)).astype(np.float32)
    gain_db = (art.gain_profile(rng, r_mm, P.depth, im["att_db_mm"], im["gain_bumps"])[:, None]
               + art.lateral_gain(theta, P.half, im["lateral_gain"])[None, :]).astype(np.float32)
    a = P.artifacts
    shadow = art.shadow_map(rng, r_mm, theta, a["shadows"]) if a["shadows"] else None
    clutter_env = None
    if a["clutter"] > 0:
        clutter_env = art.clutter_intensity(r_mm, a["clutter_depth"], a["clutter"], a["reverb_bands"] > 0,
                                            rng.uniform(8, 20))[:, None]
        C1 = art.complex_field(rng, (probe.nr, probe.nt), (lat_px * 2.5, ax_px * 1.5))
        C2 = art.complex_field(rng, (probe.nr, probe.nt), (lat_px * 2.5, ax_px * 1.5))
    # chest wall: static layered tissue right under the probe (does not move with the heart)
    cw = art.complex_field(rng, (probe.nr, probe.nt), (lat_px, ax_px))
    cw_env = (a["chest_wall"] * np.clip(1 - r_mm / a["chest_depth"], 0, 1) ** 0.5
              * (0.55 + 0.45 * np.sin(2 * np.pi * r_mm / a["chest_period"])))[:, None].astype(np.float32)
    chest = (cw_env * (cw[:, :, 0] ** 2 + cw[:, :, 1] ** 2)).astype(np.float32)
    del cw
    blank_rows = int(np.ceil(a["r_min"] / dr))
    noise_bank = [art.complex_field(rng, (probe.nr, probe.nt), (0.7, 0.7)) for _ in range(3)]
    # fast out-of-plane decorrelation: a fresh-looking scatterer share every frame
    flick = P.drift["flicker"]
    flick_bank = [art.complex_field(rng, (probe.nr, probe.nt), (1.0, 1.0)) for _ in range(2)]
    lut = art.grey_lut(im)
    low = im["headroom_db"] - im["dr_db"]
    gain_lin = (10 ** (gain_db / 10)).astype(np.float32)
    # electronic noise is amplified by the TGC: strongest at the bottom of the sector
    noise_lvl = (10 ** ((low + im["noise_rel_db"] - im["tgc_db_mm"] * (P.depth - r_mm)) / 10)).astype(np.float32)[:, None]
    ov = art.Overlays(rng, H, W, pl, P.depth, P.half, a, P.heart_rate, P.fps, phases, P.systole)
    lsizes = (rng.uniform(0.5, 0.62), rng.uniform(0.33, 0.45))
    tsizes = (rng.uniform(0.45, 0.6), rng.uniform(0.4, 0.55))
    leaflet_lvl = rng.uniform(0.8, 2.0) * P.imaging.get("leaflet", 1.0)
    lth = max(1, int(round(1.0 / dr)))
    ref_lm = an.ref_landmarks()
    tv_ref = None
    if view == "A4C":
        e = float(an.epi(an.tv_v, an.h_sep))
        w = float(an.rv_width(an.tv_v - 1e-6))
        tv_ref = np.array([[-e, an.tv_v], [-(e + w), an.tv_v], [-e - 0.5 * w, an.rv_v0]])

    frames = np.zeros((T, H, W), np.uint8)
    masks = np.zeros((T, H, W), np.uint8)
    lms = np.zeros((T, 3, 2), np.float32)
    norm = None
    prev = None
    prev_ref = None
    for t in range(T):
        pose, c = poses[t], float(cs[t])
        uc, vc = pose.to_local(xc, zc)
        # warm start from the previous frame (same tissue moved a little); small pose drift is absorbed
        init = None if prev_ref is None else (prev_ref[0] + (uc - prev_ref[2]), prev_ref[1] + (vc - prev_ref[3]))
        u0c, v0c = defo.backward(uc, vc, c, init=init)
        prev_ref = (u0c, v0c, uc, vc)
        size = (probe.nt, probe.nr)
        du = cv2.resize((u0c - uc).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        dv = cv2.resize((v0c - vc).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        uf, vf = pose.to_local(xf, zf)
        U0 = (uf + du).astype(np.float32)
        V0 = (vf + dv).astype(np.float32)
        psi = an.cavity_level(U0, V0).astype(np.float32)
        # the bilinear map bends the endocardium's kink slightly outward: solve exactly near the border
        band = np.nonzero(np.abs(psi) < 1.5)
        if c != 0 and band[0].size:
            bu, bv = defo.backward(uf[band], vf[band], c, init=(U0[band].astype(np.float64), V0[band].astype(np.float64)))
            U0[band], V0[band] = bu, bv
            psi[band] = an.cavity_level(bu, bv)
        E = remap(E_ref, (U0 - umin) / res_e, (V0 - vmin) / res_e)
        mxm, mym = (U0 - umin) / res_m, (V0 - vmin) / res_m
        S = remap(S1, mxm, mym)
        if S2 is not None:
            beta = P.drift["decor"] * t / max(T - 1, 1) * np.pi / 2
            S = np.cos(beta) * S + np.sin(beta) * remap(S2, mxm, mym)
        fb = np.roll(flick_bank[t % 2], (int(rng.integers(0, probe.nr)), int(rng.integers(0, probe.nt))), (0, 1))
        S = np.sqrt(1 - flick ** 2) * S + flick * fb
        # valve leaflets (thin bright lines hinged at the annuli), drawn in beam space
        layer = np.zeros_like(E)
        lu, lv_ = defo.forward(ref_lm[:, 0], ref_lm[:, 1], c)
        cur = np.stack([lu, lv_], 1)
        valves = [valve_polylines(cur[1], cur[2], cur[0], float(opens[t]), lsizes)]
        if tv_ref is not None:
            tu, tvv = defo.forward(tv_ref[:, 0], tv_ref[:, 1], c)
            tcur = np.stack([tu, tvv], 1)
            valves.append(valve_polylines(tcur[0], tcur[1], tcur[2], float(opens[t]), tsizes))
        for valve in valves:
            for poly in valve:
                col, row = probe.to_beam(*pose.to_physical(poly[:, 0], poly[:, 1]))
                pts = np.round(np.stack([col, row], 1) * 16).astype(np.int32)
                cv2.polylines(layer, [pts], False, leaflet_lvl, lth, cv2.LINE_AA, shift=4)
        if N_ref is not None:
            ax_, perp_ = pose.axes()
            E = E * art.angle_factor(remap(N_ref, (U0 - umin) / res_e, (V0 - vmin) / res_e), perp_, ax_,
                                     sin_t, cos_t, im["k_spec"], im["k_par"])
        E = np.maximum(E, layer)
        amp = S * np.sqrt(np.maximum(E, 0))[:, :, None]
        b1 = cv2.GaussianBlur(amp, (0, 0), sigmaX=lat_px, sigmaY=ax_px)
        b2 = cv2.GaussianBlur(amp, (0, 0), sigmaX=lat_px * im["far_widen"], sigmaY=ax_px * 1.3)
        blur = b1 + wfar[:, None, None] * (b2 - b1)
        if norm is None:
            ref = cv2.GaussianBlur(S, (0, 0), sigmaX=lat_px, sigmaY=ax_px)
            norm = 1.0 / float(np.mean(ref ** 2) * 2 + 1e-12)
        inten = (blur[:, :, 0] ** 2 + blur[:, :, 1] ** 2) * norm
        if im["sidelobe"] > 0:   # side lobes leak bright tissue echo sideways into dark cavities (haze)
            small = cv2.resize(inten, (max(2, probe.nt // 4), max(2, probe.nr // 4)), interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(lat_px * 1.5, 1.0), sigmaY=max(ax_px, 0.7))
            inten += im["sidelobe"] * cv2.resize(small, (probe.nt, probe.nr), interpolation=cv2.INTER_LINEAR)
        if shadow is not None:
            inten *= shadow
        inten += chest
        if clutter_env is not None:
            g = 0.5 * np.pi * (0.5 + 0.5 * np.sin(2 * np.pi * t / max(T, 8) * 0.7))
            cf = np.cos(g) * C1 + np.sin(g) * C2
            inten += clutter_env * (cf[:, :, 0] ** 2 + cf[:, :, 1] ** 2)
        nb = noise_bank[t % 3]
        nb = np.roll(nb, (int(rng.integers(0, probe.nr)), int(rng.integers(0, probe.nt))), (0, 1))
        inten = inten * gain_lin + noise_lvl * (nb[:, :, 0] ** 2 + nb[:, :, 1] ** 2)
        db = 10 * np.log10(inten + 1e-12)
        y = art.compress(db, low, im)
        if a["persistence"] > 0 and prev is not None:
            y = (1 - a["persistence"]) * y + a["persistence"] * prev
        prev = y
        if blank_rows:
            y = y.copy()
            y[:blank_rows] = 0
        img = remap((y * 255).astype(np.float32), scan_x, scan_y)
        if a["blur"] > 0.05:
            img = cv2.GaussianBlur(img, (0, 0), a["blur"])
        if a.get("downup", 0) > 1.05:   # exported at a lower resolution and resampled back
            small = cv2.resize(img, (max(8, int(W / a["downup"])), max(8, int(H / a["downup"]))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        frame = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        if lut is not None:
            frame = cv2.LUT(frame, lut)
        frame = ov.draw(frame, t)
        if a["jpeg"]:
            frame = art.jpeg_roundtrip(frame, a["jpeg"] + int(rng.integers(-5, 6)))
        frames[t] = frame
        masks[t] = remap(psi, scan_x, scan_y, border=-1.0) > 0
        X, Y = pl.to_image(*pose.to_physical(lu, lv_))
        pts = np.stack([X, Y], 1).astype(np.float32)
        if pts[1, 0] > pts[2, 0]:
            pts[[1, 2]] = pts[[2, 1]]
        lms[t] = pts

    ed, es, ef = ed_es_ef(masks, lms, s, phases)
    return Sequence(name=name or f"synth_{view.lower()}_{int(seed) % 10**8:08d}", frames=frames, masks=masks,
                    labeled=np.ones(T, bool), landmarks=lms, view=view, fps=float(P.fps), spacing_mm=1.0 / s,
                    ed=ed, es=es, ef=ef,
                    extra={"params": P, "contraction": cs, "phases": phases, "eps_r": defo.eps_r,
                           "deformation": defo, "poses": poses, "placement": pl, "family": family})

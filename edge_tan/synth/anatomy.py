"""Reference (end-diastolic) heart anatomy in heart-local millimetres, and its echogenicity map.

Heart-local frame: origin at the LV endocardial apex, v along the LV long axis towards the mitral
plane (v = L), u perpendicular (u < 0: septal / inferior side, image left; u > 0: lateral /
anterior side, image right). Shapes are analytic profiles so the cavity (the ground-truth label)
is exact. The echogenicity map is painted from the same profiles but not on the label's level set:
its endocardium is ragged; the wall's trabecular inner layer lies outside the traced cavity (the
blood-pool convention of real tracings), papillary muscles inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Anatomy:
    view: str
    L: float          # LV cavity length apex -> mitral plane (mm)
    A: float          # max cavity half-width (mm)
    p: float          # profile exponent (0.5 ellipse; larger = more conical apex)
    b: float          # profile half-length (ellipse centre at v = b, L < 2b)
    h_sep: float      # septal / inferior wall thickness
    h_lat: float      # lateral / anterior wall thickness
    h_ap: float       # apical cap thickness
    rv_w: float = 0.0     # max RV cavity width (A4C)
    rv_v0: float = 0.0    # RV apex level (v)
    tv_v: float = 0.0     # tricuspid annulus level (v)
    rv_t: float = 4.0     # RV free wall thickness
    la_a: float = 20.0    # LA half-width
    la_b: float = 24.0    # LA half-height
    ra_a: float = 18.0
    ra_b: float = 22.0
    peri_t: float = 2.5   # pericardium thickness
    skew: float = 0.0     # bend of the LV centreline (fraction of A, + = mid-cavity towards the image right)

    def centre(self, v):
        """Lateral offset of the LV centreline at level v (0 at apex and mitral plane: a banana-shaped LV)."""
        v = np.asarray(v, np.float64)
        return self.skew * self.A * np.sin(np.pi * np.clip(v / self.L, 0.0, 1.0))

    # ---- analytic profiles ---------------------------------------------------------------
    def a0(self, v):
        """Cavity half-width at level v (0 outside [0, L])."""
        v = np.asarray(v, np.float64)
        s = np.clip((v - self.b) / self.b, -1.0, 1.0)
        a = self.A * np.power(np.maximum(1.0 - s * s, 0.0), self.p)
        return np.where((v >= 0) & (v <= self.L), a, 0.0)

    def epi(self, v, h):
        """Epicardial half-width at level v for wall thickness h (apex cap h_ap above v = 0)."""
        v = np.asarray(v, np.float64)
        bb = self.b + self.h_ap
        s = np.clip((v - self.b) / bb, -1.0, 1.0)
        e = (self.A + h) * np.power(np.maximum(1.0 - s * s, 0.0), self.p)
        return np.where(v >= -self.h_ap, e, 0.0)

    def rv_width(self, v):
        """RV cavity width beside the septum at level v (A4C only): crescent, widest at the base."""
        v = np.asarray(v, np.float64)
        if self.view != "A4C":
            return np.zeros_like(v)
        x = np.clip((v - self.rv_v0) / max(self.tv_v - self.rv_v0, 1.0), 0.0, 1.0)
        return np.where((v >= self.rv_v0) & (v <= self.tv_v), self.rv_w * np.sin(0.5 * np.pi * x) ** 0.6, 0.0)

    def cavity_level(self, u, v):
        """> 0 inside the LV cavity (closed by the straight mitral plane v = L), exact zero set."""
        return np.minimum(self.a0(v) - np.abs(np.asarray(u) - self.centre(v)), self.L - np.asarray(v))

    def ref_landmarks(self) -> np.ndarray:
        """apex, septal annulus, lateral annulus in heart-local (u, v)."""
        ab = float(self.a0(self.L))
        return np.array([[0.0, 0.0], [-ab, self.L], [ab, self.L]])

    def ref_contour(self, n: int = 240) -> np.ndarray:
        """Closed reference cavity contour (u, v): endocardium apex->base both sides + mitral plane."""
        v = np.linspace(0, 1, n // 2) ** 2 * self.L
        a = self.a0(v)
        cen = self.centre(v)
        right = np.stack([cen + a, v], 1)
        left = np.stack([(cen - a)[::-1], v[::-1]], 1)
        return np.vstack([right, left])

    def la_center(self):
        ab = float(self.a0(self.L))
        a = max(self.la_a, ab + 1.0)
        d = self.la_b * np.sqrt(max(1.0 - (ab / a) ** 2, 0.0))
        return 0.0, self.L + d, a

    def ra_center(self):
        e = float(self.epi(self.tv_v, self.h_sep))
        w = float(self.rv_width(self.tv_v - 1e-6))
        cu = -(e + 0.5 * w)
        half = max(0.5 * w, 1.0)
        a = max(self.ra_a, half + 1.0)
        d = self.ra_b * np.sqrt(max(1.0 - (half / a) ** 2, 0.0))
        return cu, self.tv_v + d, a

    def span_u(self) -> tuple[float, float]:
        """Lateral extent of the heart (for fading the deformation outside it)."""
        left = -(self.A + self.h_sep + (self.rv_w + self.rv_t if self.view == "A4C" else 0.0))
        return left, self.A + self.h_lat


def smooth_noise(rng: np.random.Generator, shape, sigma_px: float) -> np.ndarray:
    """Zero-mean unit-std smooth random field (tissue texture, gain maps)."""
    n = rng.standard_normal(shape).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma_px)
    return (n - n.mean()) / (n.std() + 1e-6)


@dataclass
class Tissue:
    """Echogenicity levels (linear intensity, myocardium ~ 1) and how the rendered borders stray from the label."""
    myo: float = 1.0
    septum: float = 2.0        # A4C interventricular septum: the brightest, most continuous wall
    inferior: float = 1.2      # A2C inferior wall (image left)
    lateral: float = 0.5       # lateral / anterior wall (image right): faint, the beam runs along it
    peri: float = 1.5
    peri_patchy: float = 0.6   # 0 = continuous pericardium, 1 = mostly missing
    blood: float = 3e-3
    bg: float = 0.2
    atrial_wall: float = 0.6
    texture: float = 0.45
    fuzz_mm: float = 0.6
    papillary: bool = True
    pap_lvl: float = 0.6
    moderator: bool = False
    aorta: bool = False
    dropouts: tuple = ()       # ((u, v, radius_mm, strength), ...)
    segment_var: float = 0.3   # slow brightness change along the wall
    trabeculae: float = 0.4    # echo level of the wall's trabecular inner layer (outside the label)
    lung: float = 0.6          # darkening beside the heart
    lung_gap: float = 10.0
    ragged_mm: float = 1.2     # amplitude of the rendered endocardium's departure from the label
    crux: float = 2.0          # AV junction / atrial septum brightness (A4C)
    crux_du: float = 0.0       # crux centre offset (mm): not tied to the annulus landmarks
    crux_dv: float = 0.0
    smoke: float = 0.6         # blood haze texture


def _blend(a, b, w):
    return a + (b - a) * w


def echogenicity_map(an: Anatomy, ts: Tissue, U: np.ndarray, V: np.ndarray, res: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Paint the reference echogenicity (float32, same shape as the U, V grids; res mm/px).

    The painted endocardium is deliberately not the label: a smooth random displacement (ragged
    border), a trabecular inner wall layer outside it, papillary muscles inside it, blur, dropouts.

    Long on purpose (~110 lines): one fixed-order random recipe (why: `edge_tan.synth`)."""
    tex = lambda s_mm: smooth_noise(rng, U.shape, max(s_mm / res, 0.5))  # noqa: E731
    a4c = an.view == "A4C"
    bgf = np.exp(1.0 * tex(9.0) + 0.5 * tex(2.5))
    E = (ts.bg * bgf).astype(np.float32)
    # lung beside the heart: dark, patchy (air reflects little back into the sector interior)
    lat_edge = an.A + an.h_lat + an.peri_t + ts.lung_gap
    lung = np.clip((U - lat_edge) / 12.0, 0, 1)
    left_edge = an.A + an.h_sep + (an.rv_w + an.rv_t if a4c else 0.0) + an.peri_t + ts.lung_gap
    lung = np.maximum(lung, np.clip((-U - left_edge) / 12.0, 0, 1) * (V < an.tv_v + 10))
    E *= (1.0 - ts.lung * lung).astype(np.float32)
    Uo = U
    U = U - an.centre(V)   # LV-centred lateral coordinate (atria below the mitral plane are unaffected)
    au = np.abs(U)
    vc = np.clip(V, -an.h_ap, an.L)
    sep = U < 0
    h = np.where(sep, an.h_sep, an.h_lat)
    e = an.epi(vc, h)
    in_epi = (au <= e) & (V >= -an.h_ap) & (V <= an.L + 1.5)
    myo_tex = np.exp(ts.texture * tex(3.0) + ts.segment_var * tex(10.0)).astype(np.float32)
    # wall brightness: bright septum (A4C) or inferior wall (A2C) on the left, faint lateral wall on
    # the right, blended smoothly over the apex
    left_lvl = ts.septum if a4c else ts.inferior
    side = np.clip(0.5 + U / 12.0, 0, 1) * np.clip((V + an.h_ap) / 25.0, 0.35, 1)
    myo = _blend(left_lvl, ts.lateral, side).astype(np.float32)
    # pericardium around the lateral wall and apex, patchy (and RV free wall below)
    pe = an.epi(vc, h + an.peri_t)
    in_peri = (au <= pe) & (V >= -an.h_ap - an.peri_t) & (V <= an.L + 1.0) & ~in_epi
    if a4c:
        in_peri &= ~sep | (V < an.rv_v0 + 5)
    keep = np.clip(tex(8.0) + 1.2 - 2.4 * ts.peri_patchy, 0, 1)
    E[in_peri] = (ts.peri * myo_tex * keep)[in_peri] + E[in_peri] * (1 - keep[in_peri])
    # atria: thin walls, blood inside (painted before the LV so LV tissue wins at the base); their
    # outlines wobble (no perfect ellipses)
    Ua, Va = U + 2.5 * tex(9.0), V + 2.5 * tex(9.0)
    cu, cv_, aa = an.la_center()
    la = ((Ua - cu) / aa) ** 2 + ((Va - cv_) / an.la_b) ** 2
    la_wall = (la <= ((aa + 2.5) / aa) ** 2) & (V > an.L - 4)
    E[la_wall] = ts.atrial_wall * myo_tex[la_wall]
    blood = (la <= 1.0) & (V >= an.L)
    ab = float(an.a0(an.L))
    if a4c:
        rcu, rcv, ra_ = an.ra_center()
        ra = ((Ua - rcu) / ra_) ** 2 + ((Va - rcv) / an.ra_b) ** 2
        ra_wall = (ra <= ((ra_ + 2.5) / ra_) ** 2) & (V > an.tv_v - 4)
        E[ra_wall] = ts.atrial_wall * myo_tex[ra_wall]
        blood |= (ra <= 1.0) & (V >= an.tv_v)
        # RV: free wall + pericardium, cavity beside the septum
        w = an.rv_width(np.clip(V, an.rv_v0, an.tv_v))
        inner = an.epi(vc, an.h_sep)
        d = -U - inner   # distance outward from the septum's RV surface
        rv_zone = (V >= an.rv_v0 - an.rv_t) & (V <= an.tv_v + 1.0)
        rv_fw = rv_zone & (d >= 0) & (d <= w + an.rv_t) & ~in_epi
        E[rv_fw] = ts.lateral * 1.2 * myo_tex[rv_fw]
        rv_pe = rv_zone & (d > w + an.rv_t) & (d <= w + an.rv_t + an.peri_t)
        E[rv_pe] = (ts.peri * myo_tex * keep)[rv_pe]
        rv_cav = (V >= an.rv_v0) & (V <= an.tv_v) & (d > 0) & (d < w)
        blood |= rv_cav
        if ts.moderator:
            vm = an.rv_v0 + 0.3 * (an.tv_v - an.rv_v0)
            band = rv_cav & (np.abs(V - vm - 0.3 * d) < 1.5)
            E[band] = 0.8 * ts.myo
    E[in_epi] = (myo * myo_tex)[in_epi]
    if a4c:
        # crux: the AV junction (a bright bar across the septum's base) and the atrial septum
        # running down from it: a bright cross in the lower middle, placed off the landmarks
        cx, cy = -(ab + 0.5 * an.h_sep) + ts.crux_du, an.L + 2.0 + ts.crux_dv
        hbar = (np.abs(V - cy) < 1.6 + 0.4 * tex(4.0)) & (np.abs(U - cx) < 0.5 * an.h_sep + 5.0)
        vbar = (np.abs(U - cx) < 1.4 + 0.4 * tex(4.0)) & (V > cy) & (V < cy + 0.6 * an.la_b)
        cross = hbar | vbar
        E[cross] = np.maximum(E[cross], (ts.crux * myo_tex)[cross])
    E[blood] = ts.blood
    # the blood the image shows: the traced cavity pushed in and out by a smooth random field
    rag = ts.ragged_mm * (0.7 * tex(2.5) + 0.5 * tex(6.0))
    cav_img = (an.cavity_level(Uo, V) + rag > 0) & (V <= an.L + 0.5)
    cav = an.cavity_level(Uo, V) > 0
    E[cav_img | cav & (V > an.L - 2.0)] = ts.blood
    # trabeculae: the wall's inner layer is a patchy, less echogenic speckle (trabeculae and
    # non-compacted myocardium) just outside the labelled cavity. Why outside: real tracings
    # (EchoNet-Dynamic's, the real development set's) follow the blood side of that layer, and a
    # label that took it in taught the network to trace the outer edge of real walls (ED area x1.2)
    depth_out = au - an.a0(V)
    if ts.trabeculae > 0:
        layer = in_epi & ~cav_img & (depth_out >= -0.5) & (depth_out < 4.0) & (V > 0.1 * an.L) & (V < 0.9 * an.L)
        patch = np.clip(tex(1.3) + 0.6, 0, 1)
        mult = _blend(ts.trabeculae * (0.35 + 0.65 * patch), 1.0, np.clip(depth_out / 4.0, 0, 1))
        E[layer] = (E * mult)[layer]
    # mitral orifice joins LV and LA
    ori = (V >= an.L - 1) & (V <= an.L + 3) & (au < ab)
    E[ori] = ts.blood
    if ts.papillary:   # papillary muscles: attached to the wall, inside the traced cavity
        for sgn, pv_f, lvl in ((1.0, 0.6, ts.pap_lvl), (-1.0, 0.55, 0.6 * ts.pap_lvl)):
            pv = pv_f * an.L
            pu = sgn * float(an.a0(pv)) * 0.78
            pap = ((U - pu) / 3.2) ** 2 + ((V - pv) / 8.0) ** 2 < 1.0 + 0.3 * tex(2.0)
            E[pap] = np.maximum(E[pap], (lvl * myo_tex)[pap])
    if ts.aorta and a4c:
        ac = (cu + aa + 6.0, cv_ + 0.4 * an.la_b)
        r2 = (U - ac[0]) ** 2 + (V - ac[1]) ** 2
        E[(r2 < 64) & (r2 > 36)] = 1.2 * ts.myo
        E[r2 <= 36] = ts.blood * 3
    for (du, dv, rad, strength) in ts.dropouts:
        g = np.exp(-((U - du) ** 2 + (V - dv) ** 2) / (2 * rad * rad)).astype(np.float32)
        E *= 1.0 - strength * g
    # blood is not black: smoke (rouleaux, haze) with its own texture, then soft tissue borders
    E = np.where(E <= ts.blood * 1.01, ts.blood * np.exp(ts.smoke * tex(2.0)), E).astype(np.float32)
    if ts.fuzz_mm > 0:
        E = cv2.GaussianBlur(E, (0, 0), max(ts.fuzz_mm / res, 0.3))
    return E

"""Cardiac motion: the contraction curve over the cycle and the tissue deformation it drives.

The deformation is a forward map F_c (reference ED position -> position at contraction c) in
heart-local mm, built from per-level knots so it is exactly invertible by fixed-point iteration:
- radial: the endocardium moves in by eps_r * a0(v); the epicardium follows a volume-conserving
  thick-cylinder law (so the wall thickens), the RV free wall moves towards the septum, and the
  motion fades to zero outside the heart;
- longitudinal: the apex stays, the mitral plane descends towards the apex (eps_l * L) and the
  atria lengthen (they fill in systole).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtime.clinical import area_length_volume, polygon_area
from .anatomy import Anatomy


@dataclass
class Cycle:
    """Phase phi in [0, 1) starts at end-diastole (the ECG R wave)."""
    systole: float = 0.38      # fraction of the cycle from ED to ES
    c_diastasis: float = 0.3   # contraction left after rapid filling
    atrial: float = 0.85       # phase where atrial contraction starts

    def contraction(self, phi):
        """0 at ED, 1 at ES (smooth), then rapid filling, diastasis, atrial kick back to 0."""
        phi = np.mod(np.asarray(phi, np.float64), 1.0)
        s, cd, pa = self.systole, self.c_diastasis, self.atrial
        ivr = s + 0.04
        fill_end = ivr + 0.5 * (pa - ivr)
        c = np.where(phi < s, 0.5 - 0.5 * np.cos(np.pi * phi / s), 1.0)
        x = np.clip((phi - ivr) / (fill_end - ivr), 0, 1)
        c = np.where(phi >= ivr, 1.0 - (1.0 - cd) * (0.5 - 0.5 * np.cos(np.pi * x)), c)
        x = np.clip((phi - fill_end) / (pa - fill_end), 0, 1)
        c = np.where(phi >= fill_end, cd * (1.0 - 0.25 * x), c)
        x = np.clip((phi - pa) / (1.0 - pa), 0, 1)
        c = np.where(phi >= pa, 0.75 * cd * (0.5 + 0.5 * np.cos(np.pi * x)), c)
        return c

    def opening(self, phi):
        """Mitral leaflet opening 0 (closed) .. 1 (wide open): E wave, diastasis, A wave."""
        phi = np.mod(np.asarray(phi, np.float64), 1.0)
        ivr = self.systole + 0.045
        pa = self.atrial
        e = np.clip((phi - ivr) / 0.04, 0, 1) * np.clip(1.0 - 0.55 * (phi - ivr - 0.04) / max(pa - ivr, 0.05), 0.45, 1)
        a = np.clip(1.0 - np.abs(phi - (pa + 0.06)) / 0.07, 0, 1)
        o = np.maximum(e * (phi < pa + 0.02), 0.85 * a)
        return np.where((phi > ivr) & (phi < 0.985), o, 0.0)


def _pwl(x, xs, ds):
    """Piecewise-linear interpolation with per-point knots xs[k], values ds[k] (arrays shaped like x)."""
    out = np.zeros_like(x)
    for k in range(len(xs) - 1):
        x0, x1 = xs[k], xs[k + 1]
        t = np.clip((x - x0) / np.maximum(x1 - x0, 1e-9), 0.0, 1.0)
        seg = (x >= x0) & (x < x1)
        out = np.where(seg, ds[k] + t * (ds[k + 1] - ds[k]), out)
    return out


@dataclass
class Deformation:
    an: Anatomy
    eps_r: float = 0.3      # endocardial radial shortening at c = 1
    eps_l: float = 0.14     # longitudinal shortening of the LV at c = 1
    eps_rv: float = 0.3     # RV free wall inward fraction of RV width
    apex_in: float = 1.5    # endocardial apex moves towards the base (mm) at c = 1
    fade: float = 18.0      # mm over which motion fades outside the heart
    base_frac: float = 0.5  # radial shortening at the mitral plane, as a fraction of the mid-cavity's

    def forward(self, u0, v0, c):
        """Reference (u0, v0) -> current (u, v) at contraction c (scalar)."""
        an = self.an
        u0 = np.asarray(u0, np.float64)
        v0 = np.asarray(v0, np.float64)
        vc = np.clip(v0, -an.h_ap, an.L)
        cen = an.centre(v0)
        au = np.abs(u0 - cen)
        sep = u0 < cen
        a = np.where(v0 >= 0, an.a0(np.clip(vc, 0, an.L)), 0.0)
        h = np.where(sep, an.h_sep, an.h_lat)
        e = an.epi(vc, h)
        e = np.maximum(e, a + 0.5)
        lshort = max(1.0 - self.eps_l * c, 0.3)
        fv = 1.0 - (1.0 - self.base_frac) * np.clip((vc - 0.5 * an.L) / (0.5 * an.L), 0.0, 1.0)
        a_t = a * (1.0 - self.eps_r * c * fv)
        e_t = np.minimum(np.sqrt(a_t ** 2 + (e ** 2 - a ** 2) / lshort), e)
        d_a, d_e = a - a_t, e - e_t
        zero = np.zeros_like(au)
        if an.view == "A4C":
            # RV width, continued below the tricuspid annulus with a taper (no jump at the RV base)
            w = an.rv_width(np.minimum(vc, an.tv_v - 1e-6)) * np.clip(1.0 - (v0 - an.tv_v) / 15.0, 0.0, 1.0)
            # RV free wall moves towards the septum; where the RV narrows to nothing (apex) the
            # septum's own epicardial motion carries on instead, so the map stays continuous
            d_fw = self.eps_rv * c * w + d_e * np.clip(1.0 - w / 8.0, 0.0, 1.0)
            rvx = e + w
            xs_sep = [zero, a, e, rvx, rvx + an.rv_t, rvx + an.rv_t + self.fade]
            ds_sep = [zero, d_a, d_e, d_fw, 0.9 * d_fw, zero]
        else:
            xs_sep = [zero, a, e, e + self.fade]
            ds_sep = [zero, d_a, d_e, zero]
        xs_lat = [zero, a, e, e + self.fade]
        ds_lat = [zero, d_a, d_e, zero]
        inward = np.where(sep, _pwl(au, xs_sep, ds_sep), _pwl(au, xs_lat, ds_lat))
        # radial motion fades over the atria below the mitral plane
        wv = np.clip(1.0 - (v0 - an.L) / 15.0, 0.0, 1.0)
        u = u0 - np.sign(u0 - cen) * inward * wv
        # longitudinal
        top = -an.h_ap
        roof = an.L + 2.0 * an.la_b
        vk = [np.full_like(v0, x) for x in (top - 25, top, 0.0, an.L, roof, roof + 30)]
        dk = [zero, zero, zero + self.apex_in * c, zero - self.eps_l * an.L * c, zero, zero]
        dv = _pwl(v0, vk, dk)
        lo, hi = an.span_u()
        fu = np.clip(1.0 - np.maximum(lo - u0, u0 - hi).clip(0) / (2 * self.fade), 0.0, 1.0)
        v = v0 + dv * fu
        return u, v

    def backward(self, u, v, c, iters: int = 16, init=None, tol: float = 5e-3):
        """Current (u, v) -> reference (u0, v0): Newton inversion of forward (finite-difference
        Jacobian; the wall's thickening slope can exceed 2, where plain fixed-point would oscillate).

        `init` (a previous frame's answer) makes it converge in a couple of steps."""
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        if c == 0:
            return u.copy(), v.copy()
        u0, v0 = (u.copy(), v.copy()) if init is None else (init[0].copy(), init[1].copy())
        h = 1e-3
        for it in range(iters):
            fu, fv = self.forward(u0, v0, c)
            ru, rv = u - fu, v - fv
            if max(np.abs(ru).max(), np.abs(rv).max()) < tol:
                break
            if it % 3 == 0:   # Newton-chord: refresh the Jacobian every third step only
                fuu, fvu = self.forward(u0 + h, v0, c)
                fuv, fvv = self.forward(u0, v0 + h, c)
                a, b_ = (fuu - fu) / h, (fuv - fu) / h
                c_, d = (fvu - fv) / h, (fvv - fv) / h
                det = a * d - b_ * c_
                ok = np.abs(det) > 1e-3
                det = np.where(ok, det, 1.0)
            su = np.where(ok, (d * ru - b_ * rv) / det, ru)
            sv = np.where(ok, (a * rv - c_ * ru) / det, rv)
            n = np.hypot(su, sv)
            k = np.minimum(1.0, 5.0 / np.maximum(n, 1e-9))
            u0 += su * k
            v0 += sv * k
        return u0, v0


def model_ef(defo: Deformation, c_ed: float = 0.0, c_es: float = 1.0) -> float:
    """EF (%) between contractions c_ed and c_es, by area-length on the forward-mapped reference contour."""
    an = defo.an
    cont = an.ref_contour()
    lm = an.ref_landmarks()
    vols = []
    for c in (c_ed, c_es):
        u, v = defo.forward(cont[:, 0], cont[:, 1], c)
        lu, lv = defo.forward(lm[:, 0], lm[:, 1], c)
        length = np.hypot(lu[0] - 0.5 * (lu[1] + lu[2]), lv[0] - 0.5 * (lv[1] + lv[2]))
        vols.append(area_length_volume(polygon_area(np.stack([u, v], 1)), length))
    return 100.0 * (1.0 - vols[1] / vols[0])


def calibrate_eps_r(defo: Deformation, target_ef: float, c_ed: float = 0.0, c_es: float = 1.0) -> float:
    """Bisection on the radial shortening so the model EF hits the target (eps_l held fixed).

    Pass the contraction at the clip's sampled ED/ES frames so the EF measured on the frames
    (not just the continuous model) lands on the target."""
    lo, hi = 0.0, 0.75
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        defo.eps_r = mid
        if model_ef(defo, c_ed, c_es) < target_ef:
            lo = mid
        else:
            hi = mid
    defo.eps_r = 0.5 * (lo + hi)
    return defo.eps_r

"""Quality control: a per-frame confidence and a per-clip reliability score, so EF is never silently wrong.

Everything here is computed from what the runtime sees: the tracker's FrameResults (states, contours,
landmarks, the network's own certainty and view probability, how far a frame's two passes disagreed)
and, when given, the grey frames. Per clip, each feature is oriented "higher = worse":

- redetect_share / lost_share: frames the tracker re-detected (or detected after frame 0) / lost;
- shape_distance / shape_outliers: median distance of the landmark-aligned contour from the learned
  phantom shape model (edge_tan.runtime.shape_model), and the share of frames beyond 3 (RMS z-scores);
- mask_landmark: predicted landmarks vs landmarks read off the predicted mask, relative to LV length;
- landmark_jump: 90th percentile of frame-to-frame landmark motion / LV length (scaled to 30 fps):
  cardiac motion is smooth, a lock that slides to another structure is not;
- area_roughness: median |2nd difference| of log LV area (scaled to 30 fps): a jittery area curve
  makes ED/ES and EF noise;
- net_doubt, view_doubt: 1 - the network's segmentation certainty x view probability, 1 - view prob;
- poor_contrast: 1 / (1 + CNR) of blood pool vs the band around it in the frames (image quality);
- pass_shift: median landmark disagreement between a frame's two passes, where there were two;
- lv_cut_share, pixel_noise: the inputs of the hard rules (edge_tan.runtime.qc_rules: the LV cut by the
  image edge, noise-dominated images, the LV found on too few frames), which make a clip UNRELIABLE
  whatever its score; they are reported, not scored.

The clip score is 1 - P(EF error > 10 points) from a logistic model over the standardised features,
with non-negative weights (a worse feature never raises the score), fitted on calibration clips; the
weights, threshold and the data they came from live in `edge_tan/assets/qc_model.json`. A site
re-calibrates with `edge-tan qc-calibrate` (see `calibrate_threshold`/`refit`) and points `track`
and `eval` at the new file with `--qc-model FILE` or `EDGE_TAN_QC_MODEL=FILE`.

On top of the score, an out-of-domain gate (issue 25, edge_tan.runtime.ood): the clip's median over its
frames of the network's own feature distance to its training windows. Above the artifact's clip
threshold (or a site's `ood_clip_threshold` in the QC model's info, set by `qc-calibrate
--ood-threshold`) the clip is UNRELIABLE whatever the score, with the reason and the next step:
the logistic score was fitted on phantom failures and cannot tell right from wrong on images unlike
any the network was trained on. Artifacts without the gate say so in `qc["ood"]["status"]`.

The per-frame confidence is the tracker's own (segmentation certainty x view probability) damped by
fixed soft penalties for that frame's shape distance, mask/landmark disagreement and landmark jump;
lost frames are 0. It is a display aid; only the clip score is calibrated.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence as Seq

import cv2
import numpy as np

from .defaults import assets_dir
from .errors import EdgeTanError
from .frames import collapse_channels
from .jsonsafe import json_number
from . import qc_rules as rules

ASSET = assets_dir() / "qc_model.json"
ENV = "EDGE_TAN_QC_MODEL"
FEATURES = ("redetect_share", "lost_share", "shape_distance", "shape_outliers", "mask_landmark",
            "landmark_jump", "area_roughness", "net_doubt", "view_doubt", "poor_contrast", "pass_shift")
REASONS = {
    "redetect_share": lambda v: f"{100 * v:.0f} % frames re-detected",
    "lost_share": lambda v: f"{100 * v:.0f} % frames lost",
    "shape_distance": lambda v: "shape implausible",
    "shape_outliers": lambda v: f"shape implausible ({100 * v:.0f} % of frames)",
    "mask_landmark": lambda v: "landmarks disagree with the mask",
    "landmark_jump": lambda v: "landmarks jump between frames",
    "area_roughness": lambda v: "LV area curve jittery",
    "net_doubt": lambda v: "low network confidence",
    "view_doubt": lambda v: "view uncertain",
    "poor_contrast": lambda v: "poor image contrast",
    "pass_shift": lambda v: "passes disagree",
}
SHAPE_OUTLIER = 3.0   # RMS z-score beyond which a frame's shape counts as an outlier


# ---------------------------------------------------------------- features
def _lv_length(lm: np.ndarray) -> float:
    return float(np.hypot(*(lm[0] - 0.5 * (lm[1] + lm[2]))))


def _cnr(frame: np.ndarray, r) -> float:
    """Contrast-to-noise of the blood pool against a band around it (width ~ 15 % of the LV size)."""
    g = collapse_channels(np.asarray(frame)).astype(np.float32)
    m = np.zeros(g.shape[:2], np.uint8)
    r.paste_mask(m)
    n = int(m.sum())
    if n < 20:
        return float("nan")
    k = max(3, int(0.15 * math.sqrt(n)) | 1)
    band = cv2.dilate(m, np.ones((k, k), np.uint8)) & (1 - m)
    a, b = g[m > 0], g[band > 0]
    if b.size < 10:
        return float("nan")
    return float((b.mean() - a.mean()) / (0.5 * (a.std() + b.std()) + 1.0))


@dataclass
class FrameQC:
    shape: np.ndarray        # (T,) shape distance (NaN where not measured)
    mask_lm: np.ndarray      # (T,) mask/landmark disagreement
    jump: np.ndarray         # (T,) landmark motion since the previous accepted frame (30-fps units)


def frame_measures(results: Seq, fps: float = 30.0, shape=None) -> FrameQC:
    from .geometry import landmarks_from_mask
    from . import shape_model as sm
    shape = shape if shape is not None else sm.load()
    T = len(results)
    sd, ml, jp = np.full(T, np.nan), np.full(T, np.nan), np.full(T, np.nan)
    rate = 30.0 / fps if fps and fps > 0 else 1.0
    prev = None
    for i, r in enumerate(results):
        lm = r.landmarks
        if r.state == "lost" or lm is None or not np.isfinite(lm).all():
            continue
        L = _lv_length(lm)
        if L < 1e-6:
            continue
        if len(r.contour) >= 8:
            d = sm.descriptor(r.contour, lm)
            if d is not None:
                sd[i] = shape.distance(d)
        if r.mask_crop.size and r.mask_crop.any():
            try:
                lm_m = landmarks_from_mask(r.mask_crop) + np.asarray(r.mask_origin, np.float32)
                if np.isfinite(lm_m).all():
                    ml[i] = float(np.mean(np.hypot(*(lm_m - lm).T))) / L
            except Exception:   # a degenerate mask: leave it unmeasured
                pass
        if prev is not None and i - prev[0] <= 3:
            jp[i] = float(np.mean(np.hypot(*(lm - prev[1]).T))) / L / (i - prev[0]) / rate
        prev = (i, lm)
    return FrameQC(sd, ml, jp)


def _nanmed(x, default=0.0) -> float:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else default


def clip_features(results: Seq, frames: Seq | None = None, fps: float = 30.0, fq: FrameQC | None = None,
                  shape=None) -> dict:
    """The per-clip QC features (see module docstring), each 'higher = worse'."""
    T = len(results)
    fq = fq or frame_measures(results, fps, shape)
    states = [r.state for r in results]
    redet = sum(s == "redetect" or (s == "detect" and i > 0) for i, s in enumerate(states))
    lost = states.count("lost")
    ok = [i for i, s in enumerate(states) if s != "lost"]
    rate = 30.0 / fps if fps and fps > 0 else 1.0
    area = np.array([results[i].area_px for i in ok], np.float64)
    rough = 0.0
    if len(area) >= 3 and (area > 0).all():
        la = np.log(area)
        rough = float(np.median(np.abs(np.diff(la, 2)))) / (rate * rate)
    jp = fq.jump[np.isfinite(fq.jump)]
    conf = np.array([0.0 if r.state == "lost" else float(r.confidence) for r in results])
    vp = np.array([r.view_prob for r in results if r.state != "lost"], np.float64)
    vp = vp[np.isfinite(vp)]
    cnr = float("nan")
    pick = [ok[j] for j in np.linspace(0, len(ok) - 1, min(8, len(ok))).round().astype(int)] if ok else []
    if frames is not None and pick:
        cnr = _nanmed([_cnr(frames[i], results[i]) for i in pick], float("nan"))
    sd = fq.shape[np.isfinite(fq.shape)]
    ps = np.array([r.pass_shift for r in results], np.float64)
    return {
        "redetect_share": redet / T if T else 1.0,
        "lost_share": lost / T if T else 1.0,
        "shape_distance": float(np.median(sd)) if sd.size else SHAPE_OUTLIER * 2,
        "shape_outliers": float(np.mean(sd > SHAPE_OUTLIER)) if sd.size else 1.0,
        "mask_landmark": _nanmed(fq.mask_lm, 1.0),
        "landmark_jump": float(np.percentile(jp, 90)) if jp.size else 0.0,
        "area_roughness": rough,
        "net_doubt": 1.0 - float(conf.mean()) if T else 1.0,
        "view_doubt": 1.0 - float(vp.mean()) if vp.size else 0.0,
        "poor_contrast": 1.0 / (1.0 + max(cnr, 0.0)) if math.isfinite(cnr) else float("nan"),
        "pass_shift": _nanmed(ps, 0.0),
        "lv_cut_share": rules.lv_cut_share(results),     # hard rules (edge_tan.runtime.qc_rules), not scored
        "pixel_noise": rules.pixel_noise(frames, pick),
    }


def frame_confidence(results: Seq, fq: FrameQC) -> np.ndarray:
    """Per-frame confidence in 0..1 (fixed soft penalties; see the module docstring)."""
    out = np.zeros(len(results))
    for i, r in enumerate(results):
        if r.state == "lost":
            continue
        c = float(np.clip(r.confidence, 0.0, 1.0))
        if np.isfinite(fq.shape[i]):
            c *= math.exp(-max(0.0, fq.shape[i] - 2.0) / 2.0)
        if np.isfinite(fq.mask_lm[i]):
            c *= math.exp(-max(0.0, fq.mask_lm[i] - 0.1) / 0.1)
        if np.isfinite(fq.jump[i]):
            c *= math.exp(-max(0.0, fq.jump[i] - 0.1) / 0.1)
        out[i] = c
    return out


# ---------------------------------------------------------------- the calibrated model
@dataclass
class QCModel:
    features: tuple
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    info: dict = field(default_factory=dict)
    path: str = ""

    def logit_parts(self, feats: dict) -> np.ndarray:
        """Each feature's contribution to the logit of P(EF error > 10); a missing feature adds 0."""
        x = np.array([feats.get(k, float("nan")) for k in self.features], np.float64)
        z = (x - self.mean) / self.scale
        z = np.where(np.isfinite(z), np.clip(z, -6.0, 12.0), 0.0)
        return self.coef * z

    def score(self, feats: dict) -> float:
        t = self.intercept + float(self.logit_parts(feats).sum())
        return float(1.0 / (1.0 + math.exp(min(t, 60.0))))

    def to_dict(self) -> dict:
        return {"format": "edge-tan-qc-model/1", "features": list(self.features),
                "mean": [round(float(v), 6) for v in self.mean], "scale": [round(float(v), 6) for v in self.scale],
                "coef": [round(float(v), 6) for v in self.coef], "intercept": round(float(self.intercept), 6),
                "threshold": round(float(self.threshold), 4), "info": self.info}

    @classmethod
    def from_dict(cls, d: dict, path: str = "") -> "QCModel":
        try:
            feats = tuple(d["features"])
            arr = [np.asarray(d[k], np.float64) for k in ("mean", "scale", "coef")]
            m = cls(feats, *arr, float(d["intercept"]), float(d["threshold"]), dict(d.get("info", {})), path)
        except (KeyError, TypeError, ValueError) as e:
            raise EdgeTanError(f"QC model {path}: malformed ({e})") from None
        if any(a.shape != (len(feats),) for a in arr) or not set(feats) <= set(FEATURES):
            raise EdgeTanError(f"QC model {path}: features and weights do not match")
        if not 0.0 <= m.threshold <= 1.0:
            raise EdgeTanError(f"QC model {path}: threshold {m.threshold} outside 0..1")
        return m


def load_model(path: str | Path | None = None) -> QCModel:
    """`path`, else $EDGE_TAN_QC_MODEL, else the shipped asset."""
    p = Path(path or os.environ.get(ENV) or ASSET)
    if p == ASSET and not p.is_file():   # a checkout before calibration: every clip says so, none passes
        n = len(FEATURES)
        return QCModel(FEATURES, np.zeros(n), np.ones(n), np.zeros(n), 0.0, 1.0, {"uncalibrated": True}, "")
    if not p.is_file():
        raise EdgeTanError(f"QC model not found: {p}")
    try:
        return QCModel.from_dict(json.loads(p.read_text()), str(p))
    except json.JSONDecodeError as e:
        raise EdgeTanError(f"QC model {p}: not JSON ({e})") from None


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> tuple[np.ndarray, float]:
    """Logistic regression (Newton, L2 on the weights) with weights kept >= 0: features that come out
    with a negative weight are dropped and the rest refitted, so a worse feature never helps a clip."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    active = np.ones(X.shape[1], bool)
    while True:
        A = np.hstack([X[:, active], np.ones((len(X), 1))])
        w = np.zeros(A.shape[1])
        reg = np.full(A.shape[1], l2)
        reg[-1] = 0.0
        for _ in range(iters):
            p = 1.0 / (1.0 + np.exp(-np.clip(A @ w, -30, 30)))
            g = A.T @ (p - y) + reg * w
            H = (A * (p * (1 - p))[:, None]).T @ A + np.diag(reg + 1e-9)
            step = np.linalg.solve(H, g)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        coef = np.zeros(X.shape[1])
        coef[active] = w[:-1]
        if (coef >= 0).all() or active.sum() == 0:
            return coef, float(w[-1])
        active &= coef > 0


def refit(feats: list[dict], bad: np.ndarray, info: dict, threshold: float | None = None,
          features: Seq[str] = FEATURES, l2: float = 1.0) -> QCModel:
    """Fit the clip score on calibration clips: feature dicts and whether each clip's EF was bad."""
    X = np.array([[f.get(k, float("nan")) for k in features] for f in feats], np.float64)
    bad = np.asarray(bad, bool)
    if len(X) < 10 or bad.all() or not bad.any():
        raise EdgeTanError(f"QC refit needs >= 10 clips with both good and bad EF (got {len(X)}, {int(bad.sum())} bad)")
    mean = np.nanmean(X, 0)
    scale = np.nanstd(X, 0)
    scale = np.where(np.isfinite(scale) & (scale > 1e-9), scale, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    Z = np.where(np.isfinite(X), np.clip((X - mean) / scale, -6.0, 12.0), 0.0)
    coef, b = fit_logistic(Z, bad, l2)
    return QCModel(tuple(features), mean, scale, coef, b, 0.5 if threshold is None else threshold, dict(info))


def calibrate_threshold(scores: Seq[float], flag_share: float) -> float:
    """The threshold that flags the lowest-scoring `flag_share` of a site's clips (no labels needed)."""
    s = np.sort(np.asarray([v for v in scores if v is not None and math.isfinite(v)], np.float64))
    if not s.size or not 0.0 < flag_share < 1.0:
        raise EdgeTanError("threshold calibration needs scored clips and a flag share between 0 and 1")
    k = int(round(flag_share * len(s)))
    if k == 0:
        return float(s[0])
    return float(s[k - 1] + 1e-6) if k >= len(s) else float(0.5 * (s[k - 1] + s[k]))


def auroc(scores: Seq[float], positive: Seq[bool]) -> float | None:
    """Area under the ROC curve of `scores` for `positive` (ties count half); None if one class."""
    s, y = np.asarray(scores, np.float64), np.asarray(positive, bool)
    pos, neg = s[y], s[~y]
    if not pos.size or not neg.size:
        return None
    gt = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(gt / (pos.size * neg.size))


# ---------------------------------------------------------------- per clip
def ood_block(results: Seq, model: "QCModel | None" = None) -> dict:
    """The clip's out-of-domain score, threshold and verdict (see the module docstring)."""
    from . import ood
    thr = [r.ood_threshold for r in results if math.isfinite(getattr(r, "ood_threshold", math.nan))]
    site = (model.info or {}).get("ood_clip_threshold") if model is not None else None
    if not thr:
        return {"status": "no gate: the model has no out-of-domain reference (export it again from weights fitted "
                          "with `edge-tan ood-fit`)", "score": None, "threshold": None, "out_of_domain": False}
    t = float(site) if site is not None else float(thr[0])
    s = ood.OODReference.clip_score(getattr(r, "ood_score", math.nan) for r in results)
    refused = sum(r.state == "lost" and "unlike the training data" in r.reason for r in results)
    # no frame reached the network (every one blank or noise): nothing says it is an image the model knows
    out = len(results) > 0 and (not math.isfinite(s) or s > t)
    return {"status": "site threshold (qc-calibrate)" if site is not None else "gate on",
            "score": json_number(s, 3), "threshold": round(t, 3),
            "frames_refused": int(refused), "out_of_domain": bool(out)}


def ood_words(odb: dict, what: str = "images") -> str:
    """The reason an out-of-domain block gives: the score against its threshold, or that no frame
    could be scored at all (a blank or noise clip: the next step is the video source, not adapt)."""
    from .ood import reason as ood_reason
    if odb["score"] is None:
        return f"{what}: every frame blank or noise, none the model could read: check the probe and the video source"
    return ood_reason(odb["score"], odb["threshold"], what)


def _with_confidence(r, c: float):
    """A copy of a frame result carrying the QC per-frame confidence (arrays shared, not copied)."""
    out = copy.copy(r)
    out.confidence = float(c)
    return out


def assess(results: Seq, frames: Seq | None = None, fps: float = 30.0, clinical: dict | None = None,
           model: QCModel | None = None) -> tuple[dict, list]:
    """(the `qc` block of a results dict, the frame results again with each `confidence` set to the QC
    per-frame value). The results passed in are left as they are (they keep the tracker's own
    confidence), so calling it twice gives the same answer."""
    model = model or load_model()
    fq = frame_measures(results, fps)
    feats = clip_features(results, frames, fps, fq)
    rescored = [_with_confidence(r, c) for r, c in zip(results, frame_confidence(results, fq))]
    score = model.score(feats)
    parts = model.logit_parts(feats)
    order = [i for i in np.argsort(-parts) if parts[i] > 0.5]
    reasons = [REASONS[model.features[i]](feats[model.features[i]]) for i in order[:3]]
    reliable = score >= model.threshold
    if model.info.get("uncalibrated"):
        reliable, reasons = False, ["QC not calibrated"]
    if broken := rules.reasons(feats):   # unfit images or a cut LV: no score makes the EF reliable
        reliable, reasons = False, broken + reasons
    if clinical is not None and clinical.get("ef_percent") is None:
        reliable, reasons = False, ["no EF (LV not found on enough frames)"] + reasons
    odb = ood_block(results, model)
    if odb["out_of_domain"]:
        reliable = False
        reasons = [ood_words(odb)] + reasons
    if not reliable and not reasons:
        i = int(np.argmax(parts))
        reasons = [REASONS[model.features[i]](feats[model.features[i]])]
    return {"score": round(score, 4), "reliable": bool(reliable), "threshold": round(model.threshold, 4),
            "reasons": _dedupe(reasons),
            "components": {k: json_number(v, 4) for k, v in feats.items()},
            "model": Path(model.path).name if model.path else None, "ood": odb}, rescored


def gate_other_view(qc: dict, other_results: Seq, model: QCModel | None = None) -> dict:
    """A new qc block: `qc` with the second view's out-of-domain block under "ood_biplane";
    out of domain -> UNRELIABLE."""
    odb = ood_block(other_results, model)
    qc = {**qc, "ood_biplane": odb}
    if odb["out_of_domain"]:
        qc["reliable"] = False
        qc["reasons"] = _dedupe(qc["reasons"] + [ood_words(odb, "second-view images")])
    return qc


def _dedupe(reasons: list[str]) -> list[str]:
    """One reason per kind ("shape implausible" and "shape implausible (94 % of frames)" are one), worst first."""
    kept: dict[str, str] = {}
    for r in reasons:
        kept.setdefault(r.split(" (")[0], r)
    return list(kept.values())


def mark_clinical(clinical: dict, qc: dict) -> dict:
    """A new clinical block with reliable / unreliable_reason (EF, ED, ES are never a bare number)."""
    out = {k: v for k, v in clinical.items() if k != "unreliable_reason"}
    out["reliable"] = bool(qc["reliable"])
    if not qc["reliable"]:
        out["unreliable_reason"] = ", ".join(qc["reasons"]) or f"QC score {qc['score']:.2f} below {qc['threshold']:.2f}"
    return out


def ef_text(clinical: dict) -> str:
    """'EF 52.1 %' or 'EF 52.1 % — UNRELIABLE (reasons)': how every printout shows EF."""
    ef = clinical.get("ef_percent")
    s = "EF n/a" if ef is None else f"EF {ef:.1f} %"
    if n := clinical.get("beats_left_out"):
        s += f" ({n} implausible beat{'s' if n > 1 else ''} left out)"
    if clinical.get("reliable") is False:
        s += f" — UNRELIABLE ({clinical.get('unreliable_reason', 'QC')})"
    return s

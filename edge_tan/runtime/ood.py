"""Out-of-domain score from the network itself (issue 25): how unlike its training windows a window is.

The exported TAN graph has a small extra output, `feat`: the globally average-pooled deepest encoder
map (N, C). The artifact's metadata (`ModelMetadata.ood`) carries a reference of that feature over the
windows the network was fitted and validated on, plus two thresholds. Two forms:

- `edge-tan-ood/2` (KNNReference, the default since the record of 2026-12-06): P prototype windows'
  features (unit length) and, per window, the cosine distance to its k nearest prototypes,

      score = (1 - mean of the k largest cos(f, prototype_j)) / scale

  with `scale` the median of that distance over fit windows that are not prototypes: about 1 for
  windows like the training ones. A nearest-neighbour distance follows the training set's shape (the
  phantom's many anatomies and poses) where one Gaussian cannot: on tracked windows of 25 real
  development clips and the phantom and foreign final-test clips it left a gap between real and
  phantom clip scores where the Gaussian's overlapped (README, "Out-of-domain gate").
- `edge-tan-ood/1` (OODReference, artifacts fitted before): a low-rank Gaussian, the mean, the top-k
  principal directions with their variances and one variance for everything else,

      score = sqrt( (sum_i (u_i . (f - mean))^2 / var_i  +  |residual|^2 / resid_var) / C )

Either way about 1 for windows like the training ones, far above for images the network has never
seen (noise, a blank or foreign view, another scanner's speckle). Per frame: a window scoring above
`frame_threshold` is not accepted as an LV (the tracker's state is `lost`). Per clip: the median over
the frames the network saw; above `clip_threshold` the QC verdict is UNRELIABLE with the next step
(adapt the model to the scanner).

Numpy only: every runner, the embedding API and the batch path score the same way (the native runtime
ports both forms). An artifact without the `feat` output or without a reference has no gate, and
reports say so.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import EdgeTanError, one_line

FORMAT = "edge-tan-ood/1"
FORMAT_KNN = "edge-tan-ood/2"
NEXT_STEP = "adapt the model to this scanner with `edge-tan adapt`"


def _enc(a: np.ndarray, half: bool = False) -> dict:
    """{"shape", "f32_b64"} (little-endian float32 in base64), or "f16_b64" (half: the prototypes, which
    would otherwise put ~3.5 MB of text into every artifact; a unit vector's cosines move ~1e-4)."""
    if half:
        a = np.ascontiguousarray(a, np.float16)
        return {"shape": list(a.shape), "f16_b64": base64.b64encode(a.astype("<f2").tobytes()).decode("ascii")}
    a = np.ascontiguousarray(a, np.float32)
    return {"shape": list(a.shape), "f32_b64": base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")}


def _dec(d) -> np.ndarray:
    if isinstance(d, list):
        return np.asarray(d, np.float64)
    if "f16_b64" in d:
        return np.frombuffer(base64.b64decode(d["f16_b64"]), "<f2").astype(np.float64).reshape(d["shape"])
    a = np.frombuffer(base64.b64decode(d["f32_b64"]), "<f4").astype(np.float64)
    return a.reshape(d["shape"])


@dataclass
class OODReference:
    mean: np.ndarray           # (C,)
    basis: np.ndarray          # (k, C) orthonormal principal directions
    var: np.ndarray            # (k,) variance along each
    resid_var: float           # variance per dimension of what the k directions leave
    frame_threshold: float     # a window above: not an LV (tracker: lost)
    clip_threshold: float      # a clip's median above: UNRELIABLE
    info: dict = field(default_factory=dict)   # what it was fitted on, how the thresholds were set

    def __post_init__(self):
        self.mean = np.asarray(self.mean, np.float64)
        self.basis = np.asarray(self.basis, np.float64)
        self.var = np.asarray(self.var, np.float64)
        c = self.mean.shape[0] if self.mean.ndim == 1 else -1
        if c <= 0 or self.basis.ndim != 2 or self.basis.shape[1] != c or self.var.shape != (self.basis.shape[0],):
            raise EdgeTanError(f"out-of-domain reference: mean {self.mean.shape}, basis {self.basis.shape} and "
                               f"variances {self.var.shape} do not fit together")
        if not (np.all(self.var > 0) and self.resid_var > 0 and self.frame_threshold > 0 and self.clip_threshold > 0):
            raise EdgeTanError("out-of-domain reference: variances and thresholds must be > 0")
        self._w = (self.basis / np.sqrt(self.var)[:, None]).astype(np.float32)   # whitening rows
        self._b32 = self.basis.astype(np.float32)
        self._m32 = self.mean.astype(np.float32)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """(N,) scores of (N, C) features (see the module docstring)."""
        f = np.asarray(feats, np.float32).reshape(-1, self.dim)
        d = f - self._m32
        w = d @ self._w.T                      # whitened principal coordinates
        p = d @ self._b32.T                    # unwhitened, to take out of the residual
        resid = np.maximum((d * d).sum(1) - (p * p).sum(1), 0.0)
        return np.sqrt(((w * w).sum(1) + resid / self.resid_var) / self.dim).astype(np.float64)

    def score(self, feat: np.ndarray) -> float:
        """One window's score (feat: (C,) or (1, C)); single-threaded loops, as KNNReference.score."""
        f = np.asarray(feat, np.float32).reshape(-1)
        if f.size != self.dim:
            return float(self.scores(feat)[0])
        d = f - self._m32
        w = np.einsum("kc,c->k", self._w, d)
        p = np.einsum("kc,c->k", self._b32, d)
        resid = max(float(np.einsum("c,c->", d, d)) - float(np.einsum("k,k->", p, p)), 0.0)
        return float(np.sqrt((float(np.einsum("k,k->", w, w)) + resid / self.resid_var) / self.dim))

    @staticmethod
    def clip_score(frame_scores) -> float:
        """The clip's score: median over the frames the network saw (NaN: none)."""
        s = np.asarray([v for v in frame_scores if v is not None], np.float64)
        s = s[np.isfinite(s)]
        return float(np.median(s)) if s.size else float("nan")

    # ---- serialisation (ModelMetadata.ood) -------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "dim": self.dim, "k": int(self.basis.shape[0]),
                "mean": _enc(self.mean), "basis": _enc(self.basis), "var": _enc(self.var),
                "resid_var": float(self.resid_var), "frame_threshold": round(float(self.frame_threshold), 4),
                "clip_threshold": round(float(self.clip_threshold), 4), "info": self.info}

    @classmethod
    def from_dict(cls, d: dict) -> "OODReference":
        if d.get("format") != FORMAT:
            raise EdgeTanError(f"out-of-domain reference has format {d.get('format')!r}, this edge-tan reads {FORMAT}")
        try:
            return cls(_dec(d["mean"]), _dec(d["basis"]), _dec(d["var"]), float(d["resid_var"]),
                       float(d["frame_threshold"]), float(d["clip_threshold"]), dict(d.get("info", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise EdgeTanError(f"out-of-domain reference malformed ({one_line(e)})") from None

    def with_thresholds(self, frame: float | None = None, clip: float | None = None, **info) -> "OODReference":
        return _with_thresholds(self, frame, clip, info)


@dataclass
class KNNReference:
    prototypes: np.ndarray     # (P, C) features of fit windows, unit length
    k: int                     # neighbours averaged
    scale: float               # median raw distance of non-prototype fit windows (score ~1 in domain)
    frame_threshold: float
    clip_threshold: float
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        P = np.asarray(self.prototypes, np.float32)
        if P.ndim != 2 or P.shape[0] < 1 or P.shape[1] < 1:
            raise EdgeTanError(f"out-of-domain reference: prototypes of shape {P.shape}, need (P, C)")
        if not (1 <= int(self.k) <= P.shape[0]):
            raise EdgeTanError(f"out-of-domain reference: k = {self.k} neighbours of {P.shape[0]} prototypes")
        if not (self.scale > 0 and self.frame_threshold > 0 and self.clip_threshold > 0):
            raise EdgeTanError("out-of-domain reference: scale and thresholds must be > 0")
        n = np.linalg.norm(P, axis=1, keepdims=True)
        if not np.all(np.abs(n - 1) < 1e-3):
            raise EdgeTanError("out-of-domain reference: prototypes must have unit length")
        self.prototypes, self.k = P, int(self.k)

    @property
    def dim(self) -> int:
        return int(self.prototypes.shape[1])

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """(N,) scores of (N, C) features (see the module docstring); a zero feature scores as far."""
        f = np.asarray(feats, np.float32).reshape(-1, self.dim)
        n = np.linalg.norm(f, axis=1, keepdims=True)
        sim = (f / np.maximum(n, 1e-12)) @ self.prototypes.T                      # (N, P) cosines
        top = np.partition(sim, sim.shape[1] - self.k, axis=1)[:, sim.shape[1] - self.k:]
        d = 1.0 - top.astype(np.float64).mean(1)
        return np.where(n[:, 0] > 0, d, 1.0) / self.scale

    def score(self, feat: np.ndarray) -> float:
        """One window's score (feat: (C,) or (1, C)): `scores` for one vector, on the tracker's path.

        Why einsum and not `@`: a matrix-vector product through multi-threaded BLAS wakes its threads
        on every frame; between two network passes they have gone to sleep, and on a loaded 2-core
        machine waking them took ~24 ms a call (einsum's single-threaded loop: 0.24 ms, scratch timing
        with the machine busy)."""
        f = np.asarray(feat, np.float32).reshape(-1)
        if f.size != self.dim:
            return float(self.scores(feat)[0])   # its shape error
        n = float(np.sqrt(np.einsum("c,c->", f, f)))
        if not n > 0:
            return 1.0 / self.scale
        sim = np.einsum("pc,c->p", self.prototypes, f) / np.float32(n)
        top = np.partition(sim, sim.size - self.k)[sim.size - self.k:]
        return float((1.0 - top.astype(np.float64).mean()) / self.scale)

    clip_score = staticmethod(OODReference.clip_score)

    def to_dict(self) -> dict:
        return {"format": FORMAT_KNN, "method": "knn-cosine", "dim": self.dim, "k": self.k,
                "prototypes": _enc(self.prototypes, half=True), "scale": float(self.scale),
                "frame_threshold": round(float(self.frame_threshold), 4),
                "clip_threshold": round(float(self.clip_threshold), 4), "info": self.info}

    @classmethod
    def from_dict(cls, d: dict) -> "KNNReference":
        if d.get("format") != FORMAT_KNN:
            raise EdgeTanError(f"out-of-domain reference has format {d.get('format')!r}, not {FORMAT_KNN}")
        try:
            return cls(_dec(d["prototypes"]), int(d["k"]), float(d["scale"]), float(d["frame_threshold"]),
                       float(d["clip_threshold"]), dict(d.get("info", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise EdgeTanError(f"out-of-domain reference malformed ({one_line(e)})") from None

    def with_thresholds(self, frame: float | None = None, clip: float | None = None, **info) -> "KNNReference":
        return _with_thresholds(self, frame, clip, info)


def _with_thresholds(ref, frame: float | None, clip: float | None, info: dict):
    """A copy of either reference with new thresholds (None: keep) and more info."""
    return replace(ref, frame_threshold=ref.frame_threshold if frame is None else float(frame),
                   clip_threshold=ref.clip_threshold if clip is None else float(clip), info={**ref.info, **info})


ARRAYS = ("mean", "basis", "var", "prototypes")   # the reference's arrays (reports show the rest)


def load_reference(d: dict) -> "OODReference | KNNReference":
    """The reference a metadata `ood` dict holds, whichever form (see the module docstring)."""
    if d.get("format") == FORMAT_KNN:
        return KNNReference.from_dict(d)
    if d.get("format") == FORMAT:
        return OODReference.from_dict(d)
    raise EdgeTanError(f"out-of-domain reference has format {d.get('format')!r}, this edge-tan reads "
                       f"{FORMAT_KNN} and {FORMAT}")


def with_feat_output(md):
    """A copy of `md` that also declares the `feat` output (what an export of a TAN carries)."""
    import copy

    from .artifact import output_docs
    out = copy.deepcopy(md)
    out.outputs = {**out.outputs, **output_docs(("feat",))}
    return out


def reference_of(md) -> "OODReference | KNNReference | None":
    """The artifact's reference, or None where it has no `feat` output or no statistics (no gate)."""
    if not getattr(md, "ood", None) or not md.has_feat:
        return None
    return load_reference(md.ood)


def gate_status(md) -> str:
    """One line for reports: whether this artifact has the gate and why not."""
    if not md.has_feat:
        return "no out-of-domain gate: the artifact has no 'feat' output (exported before issue 25; re-export it)"
    if not getattr(md, "ood", None):
        return "no out-of-domain gate: the artifact carries no reference statistics (run `edge-tan ood-fit`)"
    r = load_reference(md.ood)
    return f"out-of-domain gate on: frame > {r.frame_threshold:.2f} lost, clip > {r.clip_threshold:.2f} unreliable"


METHODS = ("knn", "lowrank")


def fit_reference(feats: np.ndarray, k: int = 32, info: dict | None = None, method: str = "knn",
                  prototypes: int = 512, neighbours: int = 5, seed: int = 0) -> "OODReference | KNNReference":
    """A reference over (N, C) features; thresholds are set afterwards (`set_thresholds`).

    method "knn": `prototypes` windows drawn at random (seeded) are kept, the others (at least a
    quarter) set the scale; "lowrank": the Gaussian with `k` principal directions."""
    X = np.asarray(feats, np.float64)
    if X.ndim != 2 or len(X) < 8:
        raise EdgeTanError(f"out-of-domain fit needs at least 8 feature vectors, got {X.shape}")
    if method not in METHODS:
        raise EdgeTanError(f"out-of-domain method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "knn":
        return _fit_knn(X, prototypes, neighbours, seed, info)
    mean = X.mean(0)
    D = X - mean
    k = int(min(k, len(X) - 1, X.shape[1] - 1))
    _, s, vt = np.linalg.svd(D, full_matrices=False)
    ev = s * s / max(len(X) - 1, 1)
    total = float(ev.sum())
    floor = max(1e-6 * total / X.shape[1], 1e-12)
    var = np.maximum(ev[:k], floor)
    resid = max(float(ev[k:].sum()) / max(X.shape[1] - k, 1), floor)
    return OODReference(mean, vt[:k], var, resid, 1.0, 1.0, dict(info or {}, windows=int(len(X)), k=k))


def _fit_knn(X: np.ndarray, prototypes: int, neighbours: int, seed: int, info: dict | None) -> KNNReference:
    n = np.linalg.norm(X, axis=1)
    X = X[n > 0]
    if len(X) < 8:
        raise EdgeTanError("out-of-domain fit needs at least 8 non-zero feature vectors")
    order = np.random.default_rng([seed, 2]).permutation(len(X))
    P = int(min(prototypes, len(X) - max(2, len(X) // 4)))   # keep a quarter (at least 2) for the scale
    protos = X[order[:P]] / np.linalg.norm(X[order[:P]], axis=1, keepdims=True)
    protos = protos.astype(np.float16).astype(np.float32)   # as stored (to_dict): scale set on what is scored
    k = int(min(neighbours, P))
    raw = KNNReference(protos, k, 1.0, 1.0, 1.0).scores(X[order[P:]])
    scale = max(float(np.median(raw)), 1e-9)
    return KNNReference(protos, k, scale, 1.0, 1.0,
                        dict(info or {}, windows=int(len(X)), method="knn-cosine", prototypes=P, k=k,
                             scale_windows=int(len(X) - P)))


def set_thresholds(ref: "OODReference | KNNReference", clip_frame_scores: list, frame_q: float = 99.9,
                   frame_margin: float = 2.5, clip_q: float = 100.0, clip_margin: float = 1.0, **info):
    """Thresholds from held-out in-domain clips (a list of per-frame score arrays, one per clip).

    frame: `frame_margin` x the `frame_q` percentile of held-out window scores (only a window far
    beyond anything in-domain is refused as an LV); clip: `clip_margin` x the `clip_q` percentile of
    held-out clip medians (by default the largest: no held-out in-domain clip is flagged).

    Why these defaults (shipped model db837aa30e74, nearest-neighbour reference): noise frames are
    refused before the network (the tracker's neighbour-correlation check), so the frame gate is left
    for structured images far from anything seen. In a scratch measurement (tracker windows of every
    4th real development clip, gate off: p50 2.9, p99 5.5) 1.5 x p99.9 (3.6) refused 21 % of real
    frames, and lost frames cost EF beats; 2.5 x (6.1) refused 0.4 %. The clip gate still flags the
    real clips: their medians lie above the largest held-out phantom clip's, so the clip margin stays 1."""
    per = [np.asarray(c, np.float64) for c in clip_frame_scores if len(c)]
    if len(per) < 2:
        raise EdgeTanError("out-of-domain thresholds need at least 2 held-out clips")
    allf = np.concatenate(per)
    allf = allf[np.isfinite(allf)]
    meds = np.array([OODReference.clip_score(c) for c in per])
    meds = meds[np.isfinite(meds)]
    if not allf.size or not meds.size:
        raise EdgeTanError("out-of-domain thresholds: no held-out window was scored (blank clips?)")
    ft = frame_margin * float(np.percentile(allf, frame_q))
    ct = clip_margin * float(np.percentile(meds, clip_q))
    if not (ft > 0 and ct > 0):   # every held-out window sits on a prototype: the features carry no information
        raise EdgeTanError("out-of-domain thresholds: every held-out window scores 0 (the network's pooled "
                           "features do not vary between windows: an untrained or collapsed network)")
    return ref.with_thresholds(ft, ct, threshold_rule={
        "frame": f"{frame_margin} x p{frame_q:g} of {allf.size} held-out windows",
        "clip": f"{clip_margin} x p{clip_q:g} of {meds.size} held-out clip medians"},
        held_out={"clips": int(meds.size), "windows": int(allf.size),
                  "window_p50": round(float(np.median(allf)), 4), "window_p99": round(float(np.percentile(allf, 99)), 4),
                  "clip_median_max": round(float(meds.max()), 4)}, **info)


def reason(score: float, threshold: float, what: str = "images") -> str:
    """The words every report uses for an out-of-domain clip, with the next step."""
    s = "n/a" if not math.isfinite(score) else f"{score:.1f}"
    return f"{what} unlike the model's training data (score {s} > {threshold:.1f}): {NEXT_STEP}"

"""`edge-tan ood-fit WEIGHTS DATA --out W2`: fit the out-of-domain reference of a TAN weights file.

On a labelled dataset (`ood_fit`, the CLI) the reference (edge_tan.runtime.ood) is estimated on windows cut
the way training cuts them (export/train/samples.WarpedSamples without photometric augmentation or
domain randomisation: the previous frame's landmarks warped onto the template with the paper's
jitter, 20 % letterboxed whole frames), i.e. what the network sees when tracking works. Only the
encoder runs, batched. DATA is an edge-tan dataset (e.g. `edge-tan synth DIR --n 32 --seed 3100`): its
train split gives the statistics, its val and test splits (held out: never a window the statistics came
from) the thresholds, scored on the windows the tracker runs on them (as any clip at run time). On
unlabelled clips (`edge-tan adapt`) the windows are the ones the tracker itself feeds the network
(`source="tracker"`). The result is stored in the weights file's metadata (`ModelMetadata.ood`), so
every export of it (ONNX, OpenVINO, TensorRT) carries it.

`edge-tan adapt` calls `refit_on_clips` (export/adapt/ood.py) to move the reference to a site.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.dataset import list_split, load_sequence
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.ood import ARRAYS, fit_reference, set_thresholds
from edge_tan.runtime.runner import Runner

DEFAULT_K = 32


class FeatureRecorder(Runner):
    """Pass-through runner that keeps the `feat` row of every window the tracker runs."""

    backend = "feature-recorder"

    def __init__(self, inner: Runner):
        super().__init__(inner.metadata)
        self.inner, self.feats = inner, []

    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.inner.infer(x)
        self.feats.extend(np.asarray(out["feat"], np.float32))
        return out

    def close(self) -> None:
        self.inner.close()


def feature_runner(model, md: ModelMetadata, ref=None) -> Runner:
    """The torch reference runner with the `feat` output, carrying `ref` (None: none) in its metadata."""
    from edge_tan.export.torch_ref import TorchRunner
    md = copy.deepcopy(md)
    md.ood = ref.to_dict() if ref is not None else {}
    r = TorchRunner(model.eval(), md)
    if "feat" not in r.metadata.outputs:
        raise EdgeTanError(f"model {md.model_name!r} has no pooled-feature output (only the TAN family has)")
    return r


def _frames(seq, max_frames: int):
    return seq.frames[:max_frames] if max_frames else seq.frames


def window_features(model, md: ModelMetadata, seqs, max_frames: int = 0) -> np.ndarray:
    """(N, C) features of every window the tracker runs on `seqs` (no gate: nothing is refused)."""
    from edge_tan.runtime.tracker import Tracker, TrackerConfig
    rec = FeatureRecorder(feature_runner(model, md))
    tk = Tracker(rec, TrackerConfig(ood_gate=False))
    for s in seqs:
        tk.track(_frames(s, max_frames))
    if not rec.feats:
        raise EdgeTanError("no window reached the network (blank clips?)")
    return np.stack(rec.feats)


def clip_frame_scores(model, md: ModelMetadata, ref, seqs, max_frames: int = 0) -> list[np.ndarray]:
    """Per clip, the per-frame scores the runtime tracker reports (frame gate off: nothing refused)."""
    from edge_tan.runtime.tracker import Tracker, TrackerConfig
    r = feature_runner(model, md, ref.with_thresholds(frame=float("inf")))
    tk = Tracker(r, TrackerConfig())
    return [np.array([f.ood_score for f in tk.track(_frames(s, max_frames))], np.float64) for s in seqs]


def encoder_features(model, x_uint8: np.ndarray, md: ModelMetadata, batch: int = 32) -> np.ndarray:
    """(N, C) `feat` of (N, 1, S, S) uint8 windows: the encoder alone, batched (what the graph's feat is)."""
    import torch
    alpha, beta = md.input_scale / md.input_std, -md.input_mean / md.input_std
    out = []
    with torch.inference_mode():
        for i in range(0, len(x_uint8), batch):
            x = torch.from_numpy(x_uint8[i:i + batch].astype(np.float32) * alpha + beta)
            out.append(model.encoder(x)[4].mean((2, 3)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def warped_windows(md: ModelMetadata, seqs, n: int, seed: int) -> np.ndarray:
    """n training-style windows (uint8 (n, 1, S, S)) of labelled `seqs`: no photometric augmentation."""
    from .train.samples import WarpedSamples
    ws = WarpedSamples(seqs, md.template_array, md.window, md.warp_mode, length=n, seed=seed, augment=False,
                       input_norm=md.input_norm)
    return np.stack([ws[i]["image"] for i in range(n)])


def fit_sequences(model, md: ModelMetadata, fit_seqs, held_seqs, k: int = DEFAULT_K, max_frames: int = 0,
                  info: dict | None = None, source: str = "tracker", windows: int = 2000, method: str = "knn",
                  **threshold_opts):
    """Statistics on `fit_seqs`' windows, thresholds from `held_seqs`' (see the module docstring).

    source "tracker": the windows the tracker runs (any clips); "warped": training-style windows of
    labelled clips (`windows` of them for the statistics). Held-out clips are always scored on the
    windows the tracker runs on them, as every clip at run time (a nearest-neighbour score reads them,
    off the training jitter, higher than training-style ones: thresholds from those flagged in-domain
    clips)."""
    t0 = time.time()
    model = model.eval()
    if source == "warped":
        feats = encoder_features(model, warped_windows(md, fit_seqs, windows, seed=0), md)
    else:
        feats = window_features(model, md, fit_seqs, max_frames)
    ref = fit_reference(feats, k, dict(info or {}, fit_clips=len(fit_seqs), windows_from=source,
                                       held_out_windows="tracker"), method=method)
    scores = clip_frame_scores(model, md, ref, held_seqs, max_frames)
    ref = set_thresholds(ref, scores, **threshold_opts)
    ref.info["seconds"] = round(time.time() - t0, 1)
    return ref


def _load_split(data: Path, splits) -> list:
    return [load_sequence(p) for s in splits for p in list_split(data, s)]


def ood_fit(weights: str, data: str, out: str, k: int = DEFAULT_K, windows: int = 2000, method: str = "knn",
            **threshold_opts) -> dict:
    """Fit and store the reference; returns the stored `ood` dict (without its arrays)."""
    from .weights import load_weights, save_weights

    wp, dp = Path(weights), Path(data)
    if not str(out).endswith(".safetensors"):
        raise EdgeTanError(f"--out must name a .safetensors file, got {out}")
    model, md = load_weights(wp)
    if not hasattr(model, "with_features"):
        raise EdgeTanError(f"{wp}: model {md.model_name!r} has no pooled-feature output (only the TAN family has)")
    if not dp.is_dir():
        raise EdgeTanError(f"dataset folder not found: {dp}")
    fit = _load_split(dp, ("train",))
    held = _load_split(dp, ("val", "test"))
    if len(fit) < 2 or len(held) < 2:
        raise EdgeTanError(f"{dp}: needs >= 2 clips in the train split and >= 2 in val+test (got {len(fit)}, "
                           f"{len(held)}); e.g. `edge-tan synth DIR --n 24`")
    manifest = {}
    if (dp / "manifest.json").is_file():
        manifest = {k2: v for k2, v in json.loads((dp / "manifest.json").read_text()).items()
                    if k2 in ("seed", "n", "family", "generator", "version")}
    info = {"fitted_on": f"train split of {dp.name}", "held_out": f"val+test splits of {dp.name}",
            "dataset": manifest, "weights_sha256": md.weights_sha256,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ref = fit_sequences(model, md, fit, held, k, 0, info, source="warped", windows=windows, method=method,
                        **threshold_opts)
    md.ood = ref.to_dict()
    save_weights(model, md, out, half=_stored_fp16(str(wp)))
    return summary(md.ood)


def _stored_fp16(path: str) -> bool:
    """Whether a safetensors file stores its floating tensors as fp16 (kept so on rewrite)."""
    with open(path, "rb") as f:
        head = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    dtypes = {v.get("dtype") for k, v in head.items() if k != "__metadata__" and isinstance(v, dict)}
    return "F16" in dtypes and "F32" not in dtypes


def summary(ood: dict) -> dict:
    """The reference's dict without its arrays (for printing and records)."""
    return {k: v for k, v in ood.items() if k not in ARRAYS}

"""Warped training samples generated on the fly (paper 4.1): previous-frame landmarks -> affine to the
template -> jitter (rotation ±5°, scale 0.8–1.2, shift ≤ 14 px) -> warp frame and mask; targets are
the frame's landmarks in window coordinates minus the template, and the view label.

Half the tracked samples also move each template point by its own small offset (N(0, 3 px), clipped
at 8) before solving the affine: closed-loop errors are per-landmark, not similarities, so the warp
the tracker feeds the network is sheared and stretched a little; the paper's similarity jitter alone
never shows the network such windows (the CPU default model's closed-loop landmark error was 3.7 px).

A share of tracked samples (WRONG_LOCK_P) is warped from a wrong lock: the previous annulus slid
along the long axis into the LA or short of the mitral plane, the failure seen on held-out clips (the
network confirmed an LV+LA lock frame after frame); the targets stay the truth, so it learns to undo it.

A fraction of "detect" samples use the letterboxed whole frame instead, so the same network can find
the LV on the first frame of a clip. warp_mode "crop" uses the axis-aligned ROI box, "none" always
letterboxes. Photometric augmentation (gain, gamma, contrast, noise, blur) is applied in window space
(cheap at 224x224). Images stay uint8 until the device: x = (x/255 - 0.5)/0.25 (ModelMetadata).

Frames become network input exactly as at run time: (domain randomisation of the raw frame, see
domain.py) -> the model's input_norm on the full frame (edge_tan.runtime.intensity) -> warp -> mild photometric.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from edge_tan import VIEW_NAMES
from edge_tan.dataset import Sequence, list_split, load_sequence
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.geometry import (affine_to_template, build_template, crop_affine, letterbox_affine, perturb_affine,
                               transform_points, triangle_area, warp_image)
from edge_tan.runtime.intensity import input_normaliser

from .domain import DomainConfig, randomize_frames

DETECT_P = 0.2
POINT_JITTER_P, POINT_JITTER_PX, POINT_JITTER_MAX = 0.5, 3.0, 8.0
WRONG_LOCK_P = 0.15     # share of tracked samples warped from a wrong lock (see wrong_lock_affine)
INPUT_MEAN, INPUT_STD = 0.5, 0.25


def normalize(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N,1,H,W) -> network input, exactly as ModelMetadata documents."""
    return (x_uint8.float() * (1.0 / 255.0) - INPUT_MEAN) / INPUT_STD


def load_split_sequences(data_dir, split: str) -> list[Sequence]:
    """All sequences of a split in memory; threads overlap the npz decompression (zlib drops the GIL)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from edge_tan.synth.holdout import refuse_held_out
    refuse_held_out(data_dir)   # held-out phantom families are for testing only
    paths = list_split(data_dir, split)
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as ex:
        return list(ex.map(load_sequence, paths))


def good_landmarks(lm: np.ndarray) -> bool:
    return bool(np.isfinite(lm).all()) and abs(triangle_area(lm)) >= 1.0


def labelled_frames(seqs: list[Sequence]) -> list[tuple[int, int]]:
    """(sequence index, frame) for every frame with a manual mask and usable landmarks."""
    out = []
    for si, s in enumerate(seqs):
        if s.masks is None or s.landmarks is None:
            continue
        for t in np.flatnonzero(np.asarray(s.labeled, bool)):
            if good_landmarks(s.landmarks[t]):
                out.append((si, int(t)))
    return out


def training_template(seqs: list[Sequence], size: int, warp_mode: str) -> np.ndarray:
    """Template (3,2) window px. affine/crop: geometry.build_template over all labelled landmarks.
    none: mean landmarks in letterboxed window coordinates (what a full-frame net regresses)."""
    idx = labelled_frames(seqs)
    if not idx:
        raise EdgeTanError("training data has no labelled frames with landmarks")
    lms = np.stack([seqs[si].landmarks[t] for si, t in idx])
    if warp_mode == "none":
        return np.mean([transform_points(seqs[si].landmarks[t], letterbox_affine(seqs[si].frames.shape[1:], size))
                        for si, t in idx], axis=0).astype(np.float32)
    return build_template(lms, size)


def prev_landmarks(s: Sequence, t: int) -> np.ndarray:
    """GT landmarks of frame t-1 when labelled (the tracker's situation), else frame t's own."""
    if t > 0 and s.labeled[t - 1] and good_landmarks(s.landmarks[t - 1]):
        return s.landmarks[t - 1]
    return s.landmarks[t]


def base_affine(s: Sequence, t: int, template: np.ndarray, size: int, warp_mode: str) -> np.ndarray:
    hw = s.frames.shape[1:]
    if warp_mode == "none":
        return letterbox_affine(hw, size)
    prev = prev_landmarks(s, t)
    if not good_landmarks(prev):   # e.g. a TCM pair whose frame has a mask but no landmarks
        return letterbox_affine(hw, size)
    try:
        return crop_affine(prev, size) if warp_mode == "crop" else affine_to_template(prev, template)
    except ValueError:
        return letterbox_affine(hw, size)


def wrong_lock_affine(s: Sequence, t: int, template: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """The window a tracker builds after locking onto the wrong extent: the previous annulus points
    slid along the long axis, past the mitral plane into the LA (x1.15-1.6, the LV+LA merge seen on
    held-out clips) or short of it (x0.75-0.9). Targets stay the true mask and landmarks, so the network
    learns to pull the lock back instead of confirming it."""
    prev = prev_landmarks(s, t)
    if not good_landmarks(prev):
        return None
    k = rng.uniform(1.15, 1.6) if rng.uniform() < 0.7 else rng.uniform(0.75, 0.9)
    bad = np.asarray(prev, np.float32).copy()
    bad[1:] += (k - 1.0) * (bad[1:].mean(0) - bad[0])   # along the long axis: the LV stretched or cut
    try:
        return affine_to_template(bad, template)
    except ValueError:
        return None


def sample_affine(s: Sequence, t: int, template: np.ndarray, size: int, warp_mode: str,
                  rng: np.random.Generator, detect_p: float = DETECT_P) -> np.ndarray:
    if warp_mode == "none" or rng.uniform() < detect_p:
        M = letterbox_affine(s.frames.shape[1:], size)
        return perturb_affine(M, rng, size, max_rot=4.0, scale_range=(0.9, 1.15), max_shift=10.0)
    if warp_mode == "affine" and rng.uniform() < WRONG_LOCK_P:
        M = wrong_lock_affine(s, t, template, rng)
        if M is not None:
            return perturb_affine(M, rng, size)
    if warp_mode == "affine" and rng.uniform() < POINT_JITTER_P:
        d = np.clip(rng.normal(0.0, POINT_JITTER_PX, (3, 2)), -POINT_JITTER_MAX, POINT_JITTER_MAX)
        template = np.asarray(template, np.float32) + d.astype(np.float32)
    return perturb_affine(base_affine(s, t, template, size, warp_mode), rng, size)


def warp_mask(mask: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    """Bilinear warp of a {0,1} mask then threshold at 0.5 (smoother than nearest)."""
    return (warp_image(mask * np.uint8(255), M, size) > 127).astype(np.uint8)


def photometric(imgs: list[np.ndarray], rng: np.random.Generator, strength: float = 1.0) -> list[np.ndarray]:
    """Same gain/gamma/contrast LUT (and blur) on every image of a sample, independent noise.
    `strength` < 1 narrows the curve ranges: after a rank normalisation only a little is left to learn."""
    gamma = np.exp(rng.uniform(-0.4, 0.4) * strength)
    gain = 1.0 + rng.uniform(-0.3, 0.3) * strength
    contrast = 1.0 + rng.uniform(-0.2, 0.2) * strength
    x = np.arange(256, dtype=np.float32) / 255.0
    y = ((x ** gamma) - 0.5) * contrast + 0.5
    lut = np.clip(y * gain * 255.0, 0, 255).astype(np.uint8)
    sigma_blur = rng.uniform(0.4, 1.2) if rng.uniform() < 0.3 else 0.0
    noise = rng.uniform(0, 12) if rng.uniform() < 0.6 else 0.0
    speckle = rng.uniform(0, 0.25) if rng.uniform() < 0.4 else 0.0
    out = []
    for im in imgs:
        im = cv2.LUT(im, lut)
        if sigma_blur:
            im = cv2.GaussianBlur(im, (0, 0), sigma_blur)
        if noise or speckle:
            f = im.astype(np.float32)
            if speckle:
                f *= 1.0 + speckle * rng.standard_normal(f.shape, dtype=np.float32)
            if noise:
                f += noise * rng.standard_normal(f.shape, dtype=np.float32)
            im = np.clip(f, 0, 255).astype(np.uint8)
        out.append(im)
    return out


def view_index(s: Sequence) -> int:
    return VIEW_NAMES.index(s.view) if s.view in VIEW_NAMES else -1


def lm_target(s: Sequence, t: int, M: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, float]:
    lm = s.landmarks[t] if s.landmarks is not None else None
    if lm is None or not good_landmarks(lm):
        return np.zeros(6, np.float32), 0.0
    return (transform_points(lm, M) - template).reshape(6).astype(np.float32), 1.0


class WarpedSamples(torch.utils.data.Dataset):
    """Item i -> one random warped sample, reproducible from (seed, i).

    With `flow` (TCM), items are pairs (t-1 manual label, t flow label) warped with the same M:
    keys image/mask (path 1, frame t-1) and image2/mask2 (path 2, frame t).
    """

    def __init__(self, seqs: list[Sequence], template: np.ndarray, size: int, warp_mode: str, length: int,
                 seed: int = 0, augment: bool = True, flow: dict | None = None, detect_p: float = DETECT_P,
                 input_norm: str = "none", domain: DomainConfig | None = None):
        self.seqs, self.template, self.size, self.warp_mode = seqs, np.asarray(template, np.float32), size, warp_mode
        self.length, self.seed, self.augment, self.flow, self.detect_p = length, seed, augment, flow, detect_p
        self.input_norm, self.norm, self.domain = input_norm, input_normaliser(input_norm), domain
        if flow is not None:
            self.items = sorted((si, t - 1) for si, t in flow)   # path-1 frame index
            if not self.items:
                raise EdgeTanError("TCM: no usable (t-1, t) pairs (all flow labels gated or failed)")
        else:
            self.items = labelled_frames(seqs)
            if not self.items:
                raise EdgeTanError("training data has no labelled frames with landmarks")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, int(i)])
        si, t = self.items[int(rng.integers(len(self.items)))]
        s = self.seqs[si]
        M = sample_affine(s, t, self.template, self.size, self.warp_mode, rng, self.detect_p)
        frames = [s.frames[t]] if self.flow is None else [s.frames[t], s.frames[t + 1]]
        if self.augment and self.domain is not None:
            frames = randomize_frames(frames, s.masks[t], rng, self.domain)
        imgs = [warp_image(self.norm(f), M, self.size) for f in frames]
        masks = [warp_mask(s.masks[t], M, self.size)]
        if self.flow is not None:
            masks.append(warp_mask(self.flow[(si, t + 1)], M, self.size))
        if self.augment:
            imgs = photometric(imgs, rng, 1.0 if self.input_norm == "none" else 0.35)
        tgt, valid = lm_target(s, t, M, self.template)
        out = {"image": imgs[0][None], "mask": masks[0], "landmarks": tgt, "lm_valid": np.float32(valid),
               "view": np.int64(view_index(s))}
        if self.flow is not None:
            out["image2"], out["mask2"] = imgs[1][None], masks[1]
        return out


def validation_arrays(seqs: list[Sequence], template: np.ndarray, size: int, warp_mode: str,
                      max_items: int = 384, jitter_seed: int | None = None,
                      input_norm: str = "none") -> dict[str, np.ndarray]:
    """Fixed validation set in warped space from the previous frame's GT landmarks (no jitter).

    With `jitter_seed`, each warp is perturbed within the paper's ranges (fixed seed): that measures
    whether the landmark head *corrects* an off-centre window, which tracking depends on.
    """
    rng = np.random.default_rng(jitter_seed) if jitter_seed is not None else None
    norm = input_normaliser(input_norm)
    items = labelled_frames(seqs)
    if len(items) > max_items:
        items = [items[int(j)] for j in np.linspace(0, len(items) - 1, max_items).round()]
    imgs, masks, lms, valid, views = [], [], [], [], []
    for si, t in items:
        s = seqs[si]
        M = base_affine(s, t, template, size, warp_mode)
        if rng is not None:
            M = perturb_affine(M, rng, size)
        imgs.append(warp_image(norm(s.frames[t]), M, size)[None])
        masks.append(warp_mask(s.masks[t], M, size))
        tg, v = lm_target(s, t, M, template)
        lms.append(tg)
        valid.append(v)
        views.append(view_index(s))
    return {"image": np.stack(imgs), "mask": np.stack(masks), "landmarks": np.stack(lms),
            "lm_valid": np.asarray(valid, np.float32), "view": np.asarray(views, np.int64)}

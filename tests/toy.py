"""A tiny, fast toy echo sequence (ellipse LV on speckle) for unit tests that need *some* data.

Not the phantom: it exists so model/tracker tests do not depend on the phantom generator's speed.
"""

from __future__ import annotations

import numpy as np

from edge_tan.dataset import Sequence, save_sequence, split_for, write_manifest
from edge_tan.geometry import contour_to_mask


def toy_sequence(name: str = "toy", T: int = 8, H: int = 96, W: int = 112, seed: int = 0, view: str = "A4C") -> Sequence:
    rng = np.random.default_rng(seed)
    frames = np.zeros((T, H, W), np.uint8)
    masks = np.zeros((T, H, W), np.uint8)
    lms = np.zeros((T, 3, 2), np.float32)
    cx, cy = W * 0.55 + rng.uniform(-3, 3), H * 0.45 + rng.uniform(-3, 3)
    base = rng.integers(40, 90, (H, W)).astype(np.float32)
    for t in range(T):
        s = 1.0 - 0.25 * np.sin(np.pi * t / max(T - 1, 1))
        a, b = W * 0.14 * s, H * 0.3 * s
        th = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        poly = np.stack([cx + a * np.cos(th), cy + b * np.sin(th)], 1)
        m = contour_to_mask(poly, (H, W))
        img = base.copy()
        img[m > 0] *= 0.15
        frames[t] = np.clip(img + rng.normal(0, 5, (H, W)), 0, 255).astype(np.uint8)
        masks[t] = m
        lms[t] = [[cx, cy - b], [cx - a, cy + b * 0.8], [cx + a, cy + b * 0.8]]
    return Sequence(name=name, frames=frames, masks=masks, landmarks=lms, view=view, fps=30.0, spacing_mm=0.3,
                    ed=np.array([0]), es=np.array([T // 2]), ef=float("nan"))


def toy_dataset(root, n: int = 4, T: int = 8, H: int = 96, W: int = 112) -> None:
    entries = []
    for i in range(n):
        view = ("A2C", "A4C")[i % 2]
        seq = toy_sequence(f"toy{i:02d}", T=T, H=H, W=W, seed=i, view=view)
        save_sequence(seq, f"{root}/{seq.name}.npz")
        entries.append({"name": seq.name, "view": view, "frames": T, "split": split_for(i, n)})
    write_manifest(root, entries, generator="tests.toy")

"""Per-sequence ground truth summaries from the per-frame masks: ED/ES frames and EF."""

from __future__ import annotations

import numpy as np

from .motion import area_length_volume


def ed_es_ef(masks: np.ndarray, lms: np.ndarray, scale: float, phases: np.ndarray):
    """ED = largest cavity area, ES = smallest (one per beat where the beat's instant lies in the clip);
    EF by single-plane area-length on the GT masks at those frames."""
    area = masks.reshape(len(masks), -1).sum(1).astype(np.float64)
    T = len(area)

    def pick(target_phase: float, best):
        idx = {int(best(area))}
        k0, k1 = int(np.floor(phases[0] - target_phase)), int(np.ceil(phases[-1] - target_phase))
        per = max(1.0, T / max(phases[-1] - phases[0], 1e-6))
        for k in range(k0, k1 + 1):
            ph = k + target_phase
            if phases[0] <= ph <= phases[-1]:
                j = int(np.argmin(np.abs(phases - ph)))
                lo, hi = max(0, j - int(0.15 * per) - 1), min(T, j + int(0.15 * per) + 2)
                idx.add(lo + int(best(area[lo:hi])))
        return np.array(sorted(idx), np.int64)

    ed = pick(0.0, np.argmax)
    # ES instant: phase of maximum contraction = end of systole; found from the area itself
    es = pick(float(np.mod(phases[int(np.argmin(area))], 1.0)), np.argmin)

    def vol(i):
        ap, l1, l2 = lms[i].astype(np.float64)
        length = np.linalg.norm(ap - 0.5 * (l1 + l2)) / scale
        return area_length_volume(area[i] / scale ** 2, length)

    ved = np.mean([vol(i) for i in ed])
    ves = np.mean([vol(i) for i in es])
    ef = float(100.0 * (1.0 - ves / ved)) if ved > 0 else float("nan")
    return ed, es, ef

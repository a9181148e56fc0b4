"""TEST DOUBLE: a 'network' that segments the toy LV (dark ellipse) by thresholding the window.

It lets the tracker's control flow (warp, unwarp, loss detection, recovery) be tested without
torch or a trained model. It is not a model and never appears outside tests.
"""

from __future__ import annotations

import numpy as np

from edge_tan import geometry as geo
from edge_tan.artifact import ModelMetadata
from edge_tan.runner import Runner


class ThresholdRunner(Runner):
    backend = "test-double"

    def __init__(self, metadata: ModelMetadata, dark: float = -1.2):
        super().__init__(metadata)
        self.dark = dark
        self.calls = 0

    def infer(self, batch):
        batch = self.check_batch(batch)
        self.calls += 1
        n, _, s, _ = batch.shape
        seg = np.zeros((n, 2, s, s), np.float32)
        lms = np.zeros((n, 6), np.float32)
        view = np.zeros((n, 2), np.float32)
        for i in range(n):
            x = batch[i, 0]
            inside = (x < self.dark) & (x > -1.99)   # dark, but not the black outside-frame border
            m = geo.largest_component(inside)
            seg[i, 1] = np.where(m > 0, 4.0, -4.0)
            ys, xs = np.nonzero(m)
            if len(xs) > 10:
                top = np.array([xs[ys.argmin()], ys.min()], np.float32)
                yb = np.percentile(ys, 90)
                left = np.array([xs.min(), yb], np.float32)
                right = np.array([xs.max(), yb], np.float32)
                lms[i] = (np.stack([top, left, right]) - self.metadata.template_array).reshape(-1)
                view[i] = [0.0, 5.0]
            else:
                view[i] = [0.0, 0.0]
        return {"seg": seg, "landmarks": lms, "view": view}


def toy_metadata(window: int = 64) -> ModelMetadata:
    from tests.toy import toy_sequence
    seq = toy_sequence()
    tpl = geo.build_template(seq.landmarks, size=window)
    return ModelMetadata(model_name="threshold-double", template=tpl.tolist(), window=window)

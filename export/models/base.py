"""The model contract, written down once: what every edge-tan network promises the runtime.

- input: (N, 1, W, W) float32, the normalised grey window (W = the metadata's window, 224 by default);
- `outputs`: which of the contract's outputs the model has, a subset of
  `edge_tan.runtime.artifact.OUTPUTS` in that order (seg always; landmarks and view for multi-task models);
- forward(x) returns a tuple with exactly one tensor per declared output, in the declared order,
  with the contract's shape: seg (N, 2, W, W) logits (background, lv); landmarks (N, 6) offsets
  from the template in window px (apex, annulus_left, annulus_right, x then y); view (N, 2) logits
  (A2C, A4C);
- `warp_mode`: how the tracker feeds it (`edge_tan.runtime.artifact.WARP_MODES`): "affine" (TAN: the
  previous landmarks mapped onto the template), "crop" (ROI box, no shape normalisation) or "none"
  (the whole frame letterboxed, every frame: the full-frame baselines).

The ONNX export names the graph outputs after `outputs`, the metadata records them (with their
meaning from `edge_tan.runtime.artifact.OUTPUTS`), and every runner checks its results against them.
"""

from __future__ import annotations

from torch import nn

from edge_tan.runtime.artifact import OUTPUTS, WARP_MODES


class EdgeTanModel(nn.Module):
    """Base class of the registered networks; subclasses set `outputs` and pass `warp_mode`."""

    outputs: tuple[str, ...] = ("seg",)

    def __init__(self, warp_mode: str):
        super().__init__()
        if warp_mode not in WARP_MODES:
            raise ValueError(f"warp_mode must be one of {WARP_MODES}, got {warp_mode!r}")
        self.warp_mode = warp_mode

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        order = [k for k in OUTPUTS if k in cls.outputs]
        if "seg" not in cls.outputs or list(cls.outputs) != order:
            raise TypeError(f"{cls.__name__}.outputs must be a subset of {tuple(OUTPUTS)} in that order, with seg")

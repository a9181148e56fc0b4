"""Model metadata that travels inside every artifact, so a runtime needs nothing but the artifact.

ONNX keeps it in `metadata_props`, OpenVINO IR in `rt_info`, TensorRT in a JSON sidecar. All three
store the same flat str->str mapping produced by `ModelMetadata.to_props()`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import LANDMARK_NAMES, VIEW_NAMES
from .errors import EdgeTanError
from .geometry import WINDOW, RoiExpand
from .intensity import INPUT_NORMS

SCHEMA = "edge-tan/1"
PREFIX = "edge_tan."

# How the tracker feeds the network. "affine": TAN (previous landmarks -> template);
# "crop": ROI propagation without shape normalisation; "none": full frame every time (baselines).
WARP_MODES = ("affine", "crop", "none")

# The outputs a model may have: name -> (shape, N = batch and W = window, meaning). The model side of
# this contract (which outputs, in which order, which warp mode) is written down in
# edge_tan.export.models.base.EdgeTanModel; runners check what they return against this table.
OUTPUTS = {
    "seg": (("N", 2, "W", "W"), "N,2,H,W logits (background, lv)"),
    "landmarks": (("N", 6), "N,6 offsets from template in window px: apex xy, annulus_left xy, annulus_right xy"),
    "view": (("N", 2), "N,2 logits (A2C, A4C)"),
    # C: the encoder's width (1280 at width 1); the out-of-domain score reads it (edge_tan.runtime.ood)
    "feat": (("N", "C"), "N,C globally average-pooled deepest encoder features (out-of-domain score)"),
}


def output_docs(names=("seg", "landmarks", "view")) -> dict:
    """{name: meaning} for the given outputs (what ModelMetadata.outputs stores; default: the three
    heads -- `feat` is declared only by artifacts whose graph has it)."""
    return {k: OUTPUTS[k][1] for k in names}


@dataclass
class ModelMetadata:
    model_name: str
    warp_mode: str = "affine"
    template: list = field(default_factory=lambda: [[0.0, 0.0]] * 3)  # (3, 2) window px
    window: int = WINDOW
    roi_expand: dict = field(default_factory=lambda: RoiExpand().to_dict())
    input_name: str = "image"
    input_layout: str = "NCHW"
    input_scale: float = 1.0 / 255.0   # x_net = (x_uint8 * scale - mean) / std
    input_mean: float = 0.5
    input_std: float = 0.25
    # grey-frame step before the warp (edge_tan.runtime.intensity): "equalize" = per-frame rank normalisation
    # of the in-sector grey levels. Files written before the field existed read as "none" (unchanged).
    input_norm: str = "none"
    class_names: list = field(default_factory=lambda: ["background", "lv"])
    view_names: list = field(default_factory=lambda: list(VIEW_NAMES))
    landmark_names: list = field(default_factory=lambda: list(LANDMARK_NAMES))
    # output name -> description; "seg" always, "landmarks"/"view" for multi-task models
    outputs: dict = field(default_factory=output_docs)
    model_version: str = "0"
    weights_sha256: str = ""
    trained: bool = False
    training: dict = field(default_factory=dict)   # data recipe, command, figures
    precision: str = "fp32"
    producer: dict = field(default_factory=dict)   # tool + backend versions that built the artifact
    # out-of-domain reference (edge_tan.runtime.ood.OODReference.to_dict): feature statistics of the training
    # windows and the per-frame / per-clip thresholds. Empty: no gate (files from before issue 25).
    ood: dict = field(default_factory=dict)
    schema: str = SCHEMA

    # ---- derived helpers -------------------------------------------------------------------
    @property
    def template_array(self) -> np.ndarray:
        return np.asarray(self.template, np.float32).reshape(3, 2)

    @property
    def expand(self) -> RoiExpand:
        return RoiExpand.from_dict(self.roi_expand)

    @property
    def has_landmarks(self) -> bool:
        return "landmarks" in self.outputs

    @property
    def has_view(self) -> bool:
        return "view" in self.outputs

    @property
    def has_feat(self) -> bool:
        return "feat" in self.outputs

    def output_shape(self, name: str, n: int) -> tuple | None:
        """The shape the contract gives output `name` for a batch of n (None: not in the contract).

        A dimension the contract leaves to the model (feat's C) is None, unless the artifact's
        out-of-domain reference fixes it."""
        if name not in OUTPUTS:
            return None
        dims = {"N": n, "W": self.window, "C": (self.ood or {}).get("dim")}
        return tuple(dims[d] if isinstance(d, str) else d for d in OUTPUTS[name][0])

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_props(self) -> dict[str, str]:
        """Flat str->str mapping (ONNX metadata_props / OpenVINO rt_info / sidecar JSON)."""
        return {PREFIX + k: json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelMetadata":
        known = {f for f in cls.__dataclass_fields__}
        if "model_name" not in d:
            raise EdgeTanError("artifact metadata has no model_name: not an edge-tan artifact")
        md = cls(**{k: v for k, v in d.items() if k in known})
        md.validate()
        return md

    @classmethod
    def from_props(cls, props: dict[str, str]) -> "ModelMetadata":
        d = {}
        for k, v in props.items():
            if k.startswith(PREFIX):
                try:
                    d[k[len(PREFIX):]] = json.loads(v)
                except json.JSONDecodeError as e:
                    raise EdgeTanError(f"artifact metadata field {k!r} is not valid JSON: {e}") from None
        if not d:
            raise EdgeTanError("artifact carries no edge-tan metadata (was it exported by `edge-tan export`?)")
        return cls.from_dict(d)

    def validate(self) -> None:
        if self.schema.split("/")[0] != SCHEMA.split("/")[0]:
            raise EdgeTanError(f"unknown artifact schema {self.schema!r} (this edge-tan reads {SCHEMA})")
        if self.input_norm not in INPUT_NORMS:
            raise EdgeTanError(f"artifact input_norm {self.input_norm!r} not one of {INPUT_NORMS}")
        if self.warp_mode not in WARP_MODES:
            raise EdgeTanError(f"artifact warp_mode {self.warp_mode!r} not one of {WARP_MODES}")
        t = np.asarray(self.template, np.float64)
        if t.shape != (3, 2) or not np.isfinite(t).all():
            raise EdgeTanError(f"artifact template must be 3x2 finite numbers, got shape {t.shape}")
        if "seg" not in self.outputs:
            raise EdgeTanError("artifact declares no 'seg' output")

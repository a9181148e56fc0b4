"""Model registry: name -> constructor, metadata for a fresh model, parameter/MAC counting.

(Loading a model from a weights file or a name is `edge_tan.export.weights.load_model`.)

Names: tan (affine warp, the paper's model), mobilenetv2 (same network, full frame: warp "none"),
crop (same network, ROI crop without shape normalisation), unet, pspnet (full-frame baselines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from edge_tan.runtime.artifact import ModelMetadata, output_docs
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.geometry import WINDOW, build_template

from .pspnet import PSPNet
from .tan import LANDMARK_SCALE, TAN
from .unet import UNet

# A typical apical LV in mm (apex, annulus_left, annulus_right): ~85 mm long, ~30 mm annulus.
# Used for the template only when no training data defines one (random-init models).
TYPICAL_LV_MM = np.array([[0.0, 0.0], [-14.0, 85.0], [16.0, 85.0]], np.float32)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., nn.Module]
    defaults: dict = field(default_factory=dict)
    doc: str = ""


REGISTRY: dict[str, ModelSpec] = {
    "tan": ModelSpec("tan", TAN, {"width": 1.0, "warp_mode": "affine", "view_head": "norm"},
                     "paper TAN: MobileNetV2, 3 heads, affine warp"),
    "mobilenetv2": ModelSpec("mobilenetv2", TAN, {"width": 1.0, "warp_mode": "none", "view_head": "norm"},
                             "TAN net on the full frame"),
    "crop": ModelSpec("crop", TAN, {"width": 1.0, "warp_mode": "crop", "view_head": "norm"},
                      "TAN net, ROI crop, no shape norm."),
    "unet": ModelSpec("unet", UNet, {"base": 64}, "U-Net baseline"),
    "pspnet": ModelSpec("pspnet", PSPNet, {"base": 64}, "PSPNet, dilated ResNet-50, OS 8"),
}


def model_kwargs(name: str, **kw) -> dict:
    """Full constructor kwargs (registry defaults overridden by `kw`; unknown knobs dropped)."""
    spec = _spec(name)
    out = dict(spec.defaults)
    if spec.build is TAN:
        allowed = {"width", "skips", "hidden", "landmark_head", "view_head"}
    else:
        allowed = {"base", "depth", "layers"}
    out.update({k: v for k, v in kw.items() if k in allowed and v is not None})
    return out


def _spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise EdgeTanError(f"unknown model {name!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def build_model(name: str, **kw) -> nn.Module:
    """Construct a registered model; knobs that do not apply to it (e.g. width for unet) are ignored."""
    m = _spec(name).build(**model_kwargs(name, **kw))
    m.model_name = name
    return m


def default_template(size: int = WINDOW) -> np.ndarray:
    """Template from one typical apical LV shape (used when no training landmarks exist)."""
    return build_template(TYPICAL_LV_MM[None], size)


def make_metadata(model: nn.Module, name: str, kwargs: dict, template: np.ndarray | None = None,
                  size: int = WINDOW, trained: bool = False, training: dict | None = None) -> ModelMetadata:
    tpl = default_template(size) if template is None else np.asarray(template, np.float32).reshape(3, 2)
    tr = dict(training or {})
    tr.setdefault("arch", {"name": name, "kwargs": kwargs})
    if "landmarks" in model.outputs:
        tr.setdefault("landmark_scale", LANDMARK_SCALE)
    if not trained and "template_source" not in tr and template is None:
        tr["template_source"] = "default typical apical LV (no training data)"
    md = ModelMetadata(model_name=name, warp_mode=model.warp_mode, template=tpl.tolist(), window=size,
                       outputs=output_docs(model.outputs), trained=trained, training=tr)
    md.validate()
    return md


# ---------------------------------------------------------------- counting
def count_params_macs(model: nn.Module, size: int = WINDOW) -> tuple[int, int]:
    """(parameters, multiply-accumulates) for one (1,1,size,size) input.

    MACs are counted by forward hooks on Conv2d / ConvTranspose2d / Linear only (BN, activations,
    pooling and resizing are ignored, the usual convention). The forward runs on the meta device,
    so counting even PSPNet costs no compute.
    """
    params = sum(p.numel() for p in model.parameters())
    macs = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        macs[0] += out.numel() * (m.in_channels // m.groups) * k

    def deconv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        macs[0] += inp[0].numel() * (m.out_channels // m.groups) * k

    def lin_hook(m, inp, out):
        macs[0] += out.numel() * m.in_features

    meta = _to_meta(model)
    hooks = []
    for mod in meta.modules():
        if isinstance(mod, nn.ConvTranspose2d):
            hooks.append(mod.register_forward_hook(deconv_hook))
        elif isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(lin_hook))
    try:
        with torch.no_grad():
            meta.eval()(torch.empty(1, 1, size, size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return int(params), int(macs[0])


def _to_meta(model: nn.Module) -> nn.Module:
    """A shape-only copy of the model (the caller's model and its weights are untouched)."""
    import copy
    return copy.deepcopy(model).to("meta")


def print_models(size: int = WINDOW) -> None:
    """`edge-tan models`: registered architectures with parameters and GMACs at size x size."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"edge-tan models (1x1x{size}x{size} input)")
    for col in ("name", "warp", "outputs", "params (M)", "GMAC", "description"):
        t.add_column(col, justify="right" if col in ("params (M)", "GMAC") else "left")
    for name, spec in REGISTRY.items():
        with torch.device("meta"):
            m = build_model(name)
        p, macs = count_params_macs(m, size)
        t.add_row(name, m.warp_mode, ",".join(m.outputs), f"{p / 1e6:.2f}", f"{macs / 1e9:.3f}", spec.doc)
    Console(width=max(110, Console().width)).print(t)

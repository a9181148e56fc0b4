"""Torch -> single-file, self-describing ONNX (opset 18), verified against torch with onnxruntime.

torch 2.13's exporter defaults to dynamo (torch.export + onnxscript). Opset 18 is chosen on purpose
(the dynamo exporter's native opset; asking 17 can silently give 18) and the written opset is checked.
If one exporter fails for a model the other is tried. ModelMetadata.to_props() goes into
metadata_props, so the .onnx alone is enough for a runtime. A TAN is exported with its fourth output
`feat` (N, C) and the metadata declares it; the out-of-domain reference in the metadata (`ood`, from
`edge-tan ood-fit`) travels with it (edge_tan.runtime.ood).
"""

from __future__ import annotations

import copy
import io
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.atomic import atomic_path
from edge_tan.runtime.errors import EdgeTanError, one_line
from edge_tan.runtime.geometry import contour_to_mask
from edge_tan.runtime.ood import with_feat_output

from .weights import model_sha256

PARITY_TOL = 1e-3


def _out_names(model: nn.Module) -> list[str]:
    return list(getattr(model, "outputs", ("seg",)))


def _export_dynamo(model, x, names, dynamic_batch, opset):
    # quiet "torchvision is not installed. Skipping torchvision::nms" noise from the op registry
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    ds = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(model, (x,), None, dynamo=True, opset_version=opset, input_names=["image"],
                                 dynamic_shapes=ds, external_data=False, optimize=True, verbose=False)
    proto = prog.model_proto
    # Output names are set here, not via output_names: the dynamo exporter names intermediate values
    # after aten ops, so an intermediate "view" (from flatten) would collide with the output "view".
    rename_outputs(proto, names)
    return proto


def _rename_value(graph, old: str, new: str) -> None:
    for node in graph.node:
        for i, v in enumerate(node.input):
            if v == old:
                node.input[i] = new
        for i, v in enumerate(node.output):
            if v == old:
                node.output[i] = new
    for coll in (graph.output, graph.value_info, graph.input):
        for vi in coll:
            if vi.name == old:
                vi.name = new
    for init in graph.initializer:
        if init.name == old:
            init.name = new


def rename_outputs(proto, names: list[str]) -> None:
    """Give the graph outputs `names`, first moving any other value already called so out of the way."""
    g = proto.graph
    if len(g.output) != len(names):
        raise EdgeTanError(f"exported graph has {len(g.output)} outputs, model declares {names}")
    current = [o.name for o in g.output]
    for i, n in enumerate(names):
        if current[i] == n:
            continue
        if n in current:
            raise EdgeTanError(f"cannot rename graph outputs {current} to {names}")
        _rename_value(g, n, f"{n}__internal")   # an intermediate value with the target name
        _rename_value(g, current[i], n)
        current[i] = n


def _export_legacy(model, x, names, dynamic_batch, opset):
    import onnx

    axes = {n: {0: "batch"} for n in ["image", *names]} if dynamic_batch else None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=opset, input_names=["image"],
                          output_names=names, dynamic_axes=axes, do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def realistic_input(size: int, n: int = 1, seed: int = 0) -> np.ndarray:
    """A normalised echo-like window (dark ellipse cavity on speckle), (n,1,size,size) float32."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 1, size, size), np.float32)
    for i in range(n):
        img = rng.gamma(2.0, 40.0, (size, size)).astype(np.float32)
        th = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        c = size / 2 + rng.uniform(-size / 10, size / 10, 2)
        poly = np.stack([c[0] + size * 0.18 * np.cos(th), c[1] + size * 0.33 * np.sin(th)], 1)
        img[contour_to_mask(poly, (size, size)) > 0] *= 0.15
        out[i, 0] = (np.clip(img, 0, 255) / 255.0 - 0.5) / 0.25
    return out


def export_onnx(model: nn.Module, metadata: ModelMetadata, out_path: str | Path, opset: int = 18,
                dynamic_batch: bool = True, check: bool = True, exporter: str = "auto") -> dict:
    """Export, embed metadata, check, compare with torch, write atomically; returns a report dict.

    exporter: "auto" (dynamo, then legacy on failure), "dynamo" or "legacy".
    Raises EdgeTanError when both exporters fail or parity exceeds 1e-3.
    """
    import onnx

    t0 = time.time()
    model = copy.deepcopy(model).float().to("cpu").eval()
    if hasattr(model, "with_features"):   # TAN family: the pooled features for the out-of-domain score
        model.with_features()
    names = _out_names(model)
    size = int(metadata.window)
    x = torch.from_numpy(realistic_input(size, 1))
    order = {"auto": ["dynamo", "legacy"], "dynamo": ["dynamo"], "legacy": ["legacy"]}.get(exporter)
    if order is None:
        raise EdgeTanError(f"exporter must be auto, dynamo or legacy, got {exporter!r}")
    proto, used, errors = None, None, {}
    for kind in order:
        try:
            fn = _export_dynamo if kind == "dynamo" else _export_legacy
            proto = fn(model, x, names, dynamic_batch, opset)
            used = kind
            break
        except Exception as e:  # noqa: BLE001 - any exporter failure means: try the other one
            errors[kind] = one_line(e)
    if proto is None:
        raise EdgeTanError(f"ONNX export failed for {metadata.model_name}: {errors}")

    got = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    if got.get("ai.onnx") != opset:
        raise EdgeTanError(f"asked for opset {opset} but the {used} exporter wrote {got.get('ai.onnx')}")
    if [i.name for i in proto.graph.input] != ["image"] or [o.name for o in proto.graph.output] != names:
        raise EdgeTanError(f"exported graph has inputs {[i.name for i in proto.graph.input]} / outputs "
                           f"{[o.name for o in proto.graph.output]}, expected ['image'] / {names}")

    md = copy.deepcopy(metadata)
    if "feat" in names and "feat" not in md.outputs:
        md = with_feat_output(md)
    if not md.weights_sha256:
        md.weights_sha256 = model_sha256(model)
    md.producer = {**(md.producer or {}), "tool": "edge-tan", "torch": torch.__version__, "onnx": onnx.__version__,
                   "exporter": used, "opset": str(opset)}
    del proto.metadata_props[:]
    for k, v in md.to_props().items():
        proto.metadata_props.add(key=k, value=v)
    proto.producer_name, proto.doc_string = "edge-tan", f"edge-tan {md.model_name} ({md.warp_mode})"

    report = {"path": str(out_path), "model": md.model_name, "exporter": used, "exporter_errors": errors,
              "opset": opset, "dynamic_batch": dynamic_batch, "inputs": ["image"], "outputs": names,
              "window": size, "weights_sha256": md.weights_sha256}
    if check:
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
        report["parity"] = parity(model, proto.SerializeToString(), size, names, batch=2 if dynamic_batch else 1)
        bad = {k: v for k, v in report["parity"].items() if not v <= PARITY_TOL}
        if bad:
            raise EdgeTanError(f"ONNX/torch mismatch above {PARITY_TOL}: {bad}")

    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".onnx") as tmp:
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
    report["bytes"] = out_path.stat().st_size
    report["seconds"] = round(time.time() - t0, 2)
    return report


def parity(model: nn.Module, onnx_bytes: bytes, size: int, names: list[str], batch: int = 2) -> dict[str, float]:
    """Max |onnxruntime - torch| per output over a random and a realistic batch."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    worst = {n: 0.0 for n in names}
    for x in (rng.standard_normal((batch, 1, size, size)).astype(np.float32), realistic_input(size, batch, seed=2)):
        with torch.no_grad():
            ref = [t.numpy() for t in model(torch.from_numpy(x))]
        got = sess.run(names, {"image": x})
        for n, r, g in zip(names, ref, got):
            if r.shape != g.shape:
                raise EdgeTanError(f"ONNX output {n} has shape {g.shape}, torch gives {r.shape}")
            worst[n] = max(worst[n], float(np.abs(r - g).max()))
    return worst

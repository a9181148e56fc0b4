"""The ONNX file itself (needs only the `onnx` package): read and re-stamp edge-tan metadata.

ONNX is the interchange format every artifact is built from, so its metadata helpers belong to no
runtime: building an OpenVINO IR or a TensorRT engine reads them without ONNX Runtime installed.
"""

from __future__ import annotations

from pathlib import Path

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import EdgeTanError


def onnx_metadata(path: str | Path) -> ModelMetadata:
    """Read ModelMetadata from an .onnx file without creating an inference session (through OpenVINO's
    ONNX reader where the `onnx` package is absent: a device install of edge-tan[openvino])."""
    try:
        import onnx
    except ImportError:
        return _metadata_via_openvino(Path(path))

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError etc.
        raise EdgeTanError(f"{Path(path).name}: not an ONNX model ({type(e).__name__})") from None
    return ModelMetadata.from_props({p.key: p.value for p in m.metadata_props})


def _metadata_via_openvino(path: Path) -> ModelMetadata:
    """OpenVINO keeps an ONNX file's metadata_props under rt_info "framework"."""
    try:
        import openvino as ov
    except ImportError:
        raise EdgeTanError(f"{path.name}: reading ONNX metadata needs the onnx package (or OpenVINO)") from None
    try:
        model = ov.Core().read_model(str(path))
        keys = list(model.get_rt_info(["framework"]).astype(dict))
    except Exception as e:
        raise EdgeTanError(f"{path.name}: not an ONNX model ({type(e).__name__})") from None
    return ModelMetadata.from_props({k: model.get_rt_info(["framework", k]).astype(str) for k in keys})


def stamp_metadata(model, md: ModelMetadata) -> None:
    """Replace an onnx.ModelProto's metadata_props with `md`."""
    import onnx

    del model.metadata_props[:]
    onnx.helper.set_model_props(model, md.to_props())


def restamp_onnx(src_path: Path, out_path: Path, md: ModelMetadata) -> None:
    """Copy an .onnx file with its metadata replaced by `md`."""
    import onnx

    m = onnx.load(str(src_path))
    stamp_metadata(m, md)
    onnx.save(m, str(out_path))

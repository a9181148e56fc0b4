"""The ONNX file itself (needs only the `onnx` package): read and re-stamp edge-tan metadata.

ONNX is the interchange format every artifact is built from, so its metadata helpers belong to no
runtime: building an OpenVINO IR or a TensorRT engine reads them without ONNX Runtime installed.
"""

from __future__ import annotations

from pathlib import Path

from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.runtime.errors import EdgeTanError


def onnx_metadata(path: str | Path) -> ModelMetadata:
    """Read ModelMetadata from an .onnx file without creating an inference session."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError etc.
        raise EdgeTanError(f"{Path(path).name}: not an ONNX model ({type(e).__name__})") from None
    return ModelMetadata.from_props({p.key: p.value for p in m.metadata_props})


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

"""The shipped default model's torch-free artifact: `edge_tan/assets/tan_default.onnx` + its record.

A device install has no torch, so the default model must also ship as an artifact a runtime opens
as it is. This rebuilds it from whatever `tan_default.safetensors` is shipped, the same way
`edge-tan export --target onnx` builds it (same exporter, metadata and seal, in a scratch folder,
never from the cache), and writes beside it a record naming the weights file's sha256, which
`edge_tan.runtime.defaults.shipped_onnx` checks before the ONNX is used and a test checks in CI.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from edge_tan.runtime.atomic import atomic_path, write_text
from edge_tan.runtime.defaults import ONNX_RECORD_NAME, default_onnx_path, default_weights_path
from edge_tan.runtime.hashing import file_sha256

from .build import build_artifact
from .onnx_file import onnx_metadata


def ship_default_onnx(weights: Path | None = None, dest: Path | None = None) -> dict:
    """Build the fp32 ONNX of `weights` (default: the shipped weights) into `dest` (default: the
    assets folder) and write its record; returns the record."""
    weights = Path(weights or default_weights_path())
    dest = Path(dest or default_onnx_path())
    with tempfile.TemporaryDirectory(prefix="edge-tan-ship-") as tmp:
        built = build_artifact(weights, "onnx", "fp32", tmp, force=True)
        md = onnx_metadata(built.path)
        with atomic_path(dest, suffix=".onnx") as out:
            shutil.copyfile(built.path, out)
    record = {"artifact": dest.name, "artifact_sha256": file_sha256(dest), "seal": built.sha256,
              "source": weights.name, "source_sha256": file_sha256(weights),
              "weights_sha256": md.weights_sha256, "producer": md.producer,
              "command": "python scripts/ship_default_model.py --onnx-only"}
    write_text(dest.with_name(ONNX_RECORD_NAME), json.dumps(record, indent=1) + "\n")
    return record

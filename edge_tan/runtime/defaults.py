"""Where the shipped default model lives (one name, used by every layer)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_WEIGHTS_NAME = "tan_default.safetensors"
MODEL_CARD_NAME = "MODEL_CARD.md"


def assets_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "assets"   # edge_tan/assets (package data)


def default_weights_path() -> Path:
    """The shipped TAN weights (fp16 safetensors with metadata); may be absent in a dev checkout."""
    return assets_dir() / DEFAULT_WEIGHTS_NAME


DEFAULT_ONNX_NAME = "tan_default.onnx"
ONNX_RECORD_NAME = "tan_default.onnx.json"   # which weights file the ONNX was built from, by sha256


def default_onnx_path() -> Path:
    """The shipped weights as an fp32 ONNX artifact (metadata and seal inside): what a device without
    torch opens. Built from the weights by `python scripts/ship_default_model.py --onnx-only`."""
    return assets_dir() / DEFAULT_ONNX_NAME


def shipped_onnx() -> tuple[Path | None, str]:
    """(the shipped ONNX, "") when it was built from the shipped weights file as it is now, else
    (None, why not): a re-shipped weights file without a rebuilt ONNX must never be tracked with the
    old network. The check is the sha256 of the weights file against the one the ONNX's record holds."""
    import json

    from .hashing import file_sha256

    onnx, record, weights = default_onnx_path(), assets_dir() / ONNX_RECORD_NAME, default_weights_path()
    if not (onnx.is_file() and record.is_file()):
        return None, f"edge_tan/assets/{DEFAULT_ONNX_NAME} (or its record) is not shipped"
    if not weights.is_file():
        return None, f"edge_tan/assets/{DEFAULT_WEIGHTS_NAME} is missing"
    try:
        want = json.loads(record.read_text())["source_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"edge_tan/assets/{ONNX_RECORD_NAME} is corrupt"
    if file_sha256(weights) != want:
        return None, (f"edge_tan/assets/{DEFAULT_ONNX_NAME} was built from other weights than "
                      f"{DEFAULT_WEIGHTS_NAME}: rebuild it with `python scripts/ship_default_model.py --onnx-only`")
    return onnx, ""

"""Where the shipped default model lives (one name, used by every layer)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_WEIGHTS_NAME = "tan_default.safetensors"
MODEL_CARD_NAME = "MODEL_CARD.md"


def assets_dir() -> Path:
    return Path(__file__).resolve().parent / "assets"


def default_weights_path() -> Path:
    """The shipped TAN weights (fp16 safetensors with metadata); may be absent in a dev checkout."""
    return assets_dir() / DEFAULT_WEIGHTS_NAME

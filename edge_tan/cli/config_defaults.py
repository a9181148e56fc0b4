"""Command defaults taken from the config dataclasses the commands fill, so each is written once.

The torch-side configs (`TrainConfig`, `AdaptConfig`) live in modules that import torch, and
`edge-tan --help` must not: their class bodies are read from the source (ast), not imported.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path


def dataclass_defaults(module: str, cls: str) -> dict:
    """{field: default} of the literal defaults of dataclass `cls` in `module`, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ImportError(f"{module} is not installed")
    tree = ast.parse(Path(spec.origin).read_text(), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return {s.target.id: ast.literal_eval(s.value) for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None}
    raise LookupError(f"{module} has no class {cls}")

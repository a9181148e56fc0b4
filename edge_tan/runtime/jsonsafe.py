"""NaN and infinity as JSON null, in one place, so every JSON edge-tan writes is valid for any reader
(`json.dumps(..., allow_nan=False)` then never fails on a lost frame's NaN)."""

from __future__ import annotations

import math

import numpy as np


def json_number(x, nd: int | None = None) -> float | None:
    """A finite number as a Python float (rounded to `nd` places when given); NaN, inf and None -> None."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(x, nd) if nd is not None else x


def json_safe(o):
    """`o` with every NaN/inf float (at any depth of dicts, lists and tuples) -> None and numpy
    scalars -> Python numbers."""
    if isinstance(o, dict):
        return {k: json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_safe(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return json_number(o)
    if isinstance(o, np.integer):
        return int(o)
    return o

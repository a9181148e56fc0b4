"""What a run record was measured with: the model's weights hash and the phantom generator version.

Every record written by scripts/record_runs.py (and bench_batch.py) carries both at top level, so
`render_docs.py` can tell a figure of the shipped model from one of an earlier model or phantom and
render "no record of the shipped model yet" in its place instead of quoting it as current. Records
from before these fields existed are read through what their results already hold (an eval's
`model.weights_sha256`, a dataset's `generator`); a record that names neither is not current.
"""

from __future__ import annotations

import json
from pathlib import Path


def shipped_weights_sha(path: Path | None = None) -> str | None:
    """weights_sha256 from the shipped safetensors header (reads the JSON header only; no torch)."""
    if path is None:
        from edge_tan.runtime.defaults import default_weights_path
        path = default_weights_path()
    path = Path(path)
    if not path.is_file():
        return None
    with path.open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n)).get("__metadata__", {})
    v = meta.get("edge_tan.weights_sha256")
    return json.loads(v) if v else None


def phantom_version() -> str:
    from edge_tan.synth import GENERATOR_VERSION
    return GENERATOR_VERSION


def provenance() -> dict:
    """The two fields a new record carries: {"model_sha256", "phantom_version"}."""
    return {"model_sha256": shipped_weights_sha(), "phantom_version": phantom_version()}


def _get(d, *path):
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def record_model(rec: dict) -> str | None:
    """The weights hash a record's figures were measured with (None: it does not say)."""
    res = rec.get("result") or {}
    for v in (rec.get("model_sha256"), _get(res, "model", "weights_sha256"), _get(res, "metadata", "weights_sha256"),
              _get(res, "evals", "shipped", "model", "weights_sha256"), _get(res, "tracking_model", "weights_sha256")):
        if isinstance(v, str) and v:
            return v
    return None


def record_phantom(rec: dict) -> str | None:
    """The phantom generator version a record's clips came from (None: it does not say)."""
    res = rec.get("result") or {}
    for v in (rec.get("phantom_version"), _get(res, "dataset", "generator"), _get(res, "data", "generator"),
              _get(res, "datasets", "adapt", "generator"), _get(res, "qc_model", "info", "fitted_on", "dataset", "generator")):
        if isinstance(v, str) and v:
            return v
    return None

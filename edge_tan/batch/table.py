"""The archive table: one row per clip, in SRC order, as Parquet (pyarrow) and CSV, written atomically.

Columns are typed up front, so a run where every clip failed still writes the same schema as a
clean one (a Parquet reader never sees an all-null column change type between runs)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..runtime.atomic import atomic_path, write_text

# (name, pyarrow type name)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("clip", "string"), ("status", "string"), ("error", "string"), ("frames", "int64"), ("fps", "float64"),
    ("spacing_mm", "float64"), ("view", "string"), ("view_share", "float64"), ("ed_frames", "string"),
    ("es_frames", "string"), ("ef_percent", "float64"), ("ef_area_length_percent", "float64"),
    ("ef_method", "string"), ("ef_ref", "float64"), ("qc_score", "float64"), ("qc_reliable", "bool_"),
    ("qc_reason", "string"), ("ood_score", "float64"), ("ood_threshold", "float64"), ("share_detect", "float64"), ("share_track", "float64"),
    ("share_redetect", "float64"), ("share_lost", "float64"), ("median_ms", "float64"), ("p95_ms", "float64"),
    ("tracker_fps", "float64"), ("wall_s", "float64"), ("backend", "string"), ("precision", "string"),
    ("model_hash", "string"), ("model_key", "string"), ("content_sha256", "string"), ("path", "string"),
)
NAMES = tuple(n for n, _ in COLUMNS)


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v) -> object:
    """A value as table.csv stores it. Text a spreadsheet would run as a formula (a clip named
    '=HYPERLINK(...)', an error message starting with '-') gets a leading apostrophe (OWASP CSV
    injection); numbers stay numbers."""
    if v is None:
        return ""
    if isinstance(v, str) and v.startswith(_FORMULA):
        try:
            float(v)
            return v
        except ValueError:
            return "'" + v
    return v


def write_csv(path: str | Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(NAMES)
    for r in rows:
        w.writerow([csv_cell(r.get(n)) for n in NAMES])
    write_text(path, buf.getvalue())


def write_parquet(path: str | Path, rows: list[dict]) -> bool:
    """False when pyarrow is not installed (the CSV still holds everything)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    schema = pa.schema([(n, getattr(pa, t)()) for n, t in COLUMNS])
    cols = {n: [r.get(n) for r in rows] for n in NAMES}
    table = pa.Table.from_pydict(cols, schema=schema)
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, str(tmp))
    return True


def write_table(out: str | Path, rows: list[dict]) -> list[Path]:
    out = Path(out)
    written = [out / "table.csv"]
    write_csv(written[0], rows)
    if write_parquet(out / "table.parquet", rows):
        written.append(out / "table.parquet")
    return written

"""The batch output folder: per-clip results, resume markers, the run's settings and a lock.

    OUT/clips/<name>.<sha12>.json   the clip's results in the `track --json` schema (+ "batch" block)
    OUT/rows/<name>.<sha12>.json    its table row; written last, so it marks the clip done
    OUT/batch.json                  the model this folder holds results of (backend, precision, hash)
    OUT/table.parquet, table.csv    the archive table, rewritten at the end of every run
    OUT/.lock                       one run at a time per folder

A clip is done when its row exists for the same content hash and model key: a re-run skips it, a
changed file or another model is not mistaken for it. Every file is written atomically; temp files
left by a killed run (dot-files) are swept when the next run takes the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
from pathlib import Path

from ..runtime.atomic import ensure_dir, write_text
from ..runtime.errors import UsageError
from ..runtime.hashing import file_sha256


def content_sha256(path: str | Path) -> str:
    """SHA-256 of the clip's bytes (a .mhd counts with its .raw/.zraw), read in 1 MB chunks."""
    p = Path(path)
    parts = [p]
    if p.suffix.lower() == ".mhd":
        parts += [q for q in (p.with_suffix(".raw"), p.with_suffix(".zraw")) if q.is_file()]
    return file_sha256(*parts)


def safe_name(name: str, limit: int = 100) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__")).strip("._") or "clip"
    return s[-limit:]


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.clips = self.root / "clips"
        self.rows = self.root / "rows"
        self._lock = None

    # ---- one run per folder
    @contextlib.contextmanager
    def locked(self):
        ensure_dir(self.root, "batch output")
        f = open(self.root / ".lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise UsageError(f"{self.root}: another `edge-tan batch` is writing here") from None
        try:
            self._sweep()
            yield self
        finally:
            self._sweep()                   # e.g. Ray actors stopped mid-write by Ctrl-C
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()

    def _sweep(self) -> None:
        """Remove atomic-write temp files a killed run left behind (safe: we hold the lock)."""
        for d in (self.clips, self.rows, self.root):
            if d.is_dir():
                for p in d.iterdir():
                    if p.name.startswith(".") and p.name != ".lock" and p.is_file():
                        p.unlink(missing_ok=True)

    # ---- which model this folder holds
    def claim(self, model: dict) -> None:
        """Record the model on first use; refuse to mix another model's results into this folder."""
        f = self.root / "batch.json"
        if f.is_file():
            try:
                old = json.loads(f.read_text())
            except ValueError:
                old = {}
            if old.get("model_key") and old["model_key"] != model["model_key"]:
                raise UsageError(f"{self.root} holds results of model {old.get('model_key')} "
                                 f"({old.get('backend')} {old.get('precision')}); this run is {model['model_key']} "
                                 f"({model['backend']} {model['precision']}): use another --out")
            return
        write_text(f, json.dumps(model, indent=1))

    # ---- per clip
    def stem(self, name: str, sha: str) -> str:
        safe = safe_name(name)
        if safe != name:   # 'a b.avi' and 'a_b.avi' with the same bytes must not share one JSON
            safe = f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
        return f"{safe}.{sha[:12]}"

    def json_path(self, name: str, sha: str) -> Path:
        return self.clips / f"{self.stem(name, sha)}.json"

    def row_path(self, name: str, sha: str) -> Path:
        return self.rows / f"{self.stem(name, sha)}.json"

    def done_row(self, name: str, sha: str, model_key: str) -> dict | None:
        """The stored row when this content was already tracked with this model, else None."""
        p = self.row_path(name, sha)
        try:
            row = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        return row if row.get("content_sha256") == sha and row.get("model_key") == model_key else None

    def write_result(self, name: str, sha: str, data: dict | None, row: dict) -> None:
        """Clip JSON first, row second: a row on disk means the clip's results are complete."""
        if data is not None:
            write_text(self.json_path(name, sha), json.dumps(data, indent=1, allow_nan=False))
        write_text(self.row_path(name, sha), json.dumps(row, allow_nan=False))

    def write_run(self, info: dict) -> None:
        write_text(self.root / "run.json", json.dumps(info, indent=1))


def model_key(metadata: dict, backend: str, precision: str) -> str:
    """Short id of (weights, backend, precision): results from another model never count as done."""
    w = metadata.get("weights_sha256") or hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()
    return f"{w[:12]}-{backend}-{precision}"


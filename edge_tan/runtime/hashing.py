"""Content hashes of files, read in 1 MB chunks: what resume keys, adaptation records and the artifact
cache use to recognise the same bytes (one implementation, so they always agree)."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def file_sha256(*paths: str | Path, prefix: bytes = b"") -> str:
    """SHA-256 over `prefix` then the bytes of `paths`, in the order given (a .mhd header with its .raw,
    say; an artifact's own bytes, already read, then its .bin)."""
    h = hashlib.sha256(prefix)
    for p in paths:
        with open(p, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    return h.hexdigest()

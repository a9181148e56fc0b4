"""The integrity seal: every artifact carries a sha256 of its own bytes, checked when it is opened.

The metadata's `weights_sha256` names the *source* weights an artifact was made from; it says
nothing about the bytes on disk. A seal does: when an artifact is written, a fixed-length
placeholder (`edge-tan-seal:sha256:` + 64 zeros) goes into its metadata, the sha256 of the file(s)
with the placeholder in place is computed, and the zeros are overwritten with that digest (same
length, so nothing else moves). Checking it is one read of the bytes with the digest zeroed again.

    .onnx     the seal is a metadata_props entry (`edge_tan_seal`); the hash covers the whole file
    .xml      an `<edge_tan_seal>` element of the IR's model rt_info; the hash covers .xml + .bin
    .engine   the TensorRT sidecar's `engine_sha256` (the engine is opaque bytes)

A seal detects corruption, truncation and edits made without edge-tan (a flipped weight, a cut
file); it is not a signature: whoever can write the file can also re-seal it.
Pure hashlib, no backend import: the core runs it before any runtime sees the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import EdgeTanError
from .hashing import file_sha256

MARK = b"edge-tan-seal:sha256:"
ZEROS = b"0" * 64
PLACEHOLDER = MARK + ZEROS
ONNX_PROP = "edge_tan_seal"        # not under "edge_tan." : ModelMetadata.from_props ignores it
IR_ELEMENT = "edge_tan_seal"
SEALED_SUFFIXES = (".onnx", ".xml", ".engine")   # artifacts; weights files (.safetensors) are sources
_SEAL_RE = re.compile(re.escape(MARK) + rb"([0-9a-f]{64})")


class SealError(EdgeTanError):
    """The artifact's bytes do not match its seal, or it carries none."""


class Unsealed(SealError):
    """The artifact carries no seal at all (older edge-tan, or not an edge-tan artifact)."""


def _parts(path: Path) -> list[Path]:
    return [path, path.with_suffix(".bin")] if path.suffix.lower() == ".xml" else [path]


def _digest(first: bytes, rest: list[Path]) -> str:
    return file_sha256(*rest, prefix=first)


def _engine_side(path: Path) -> dict:
    try:
        return json.loads(Path(str(path) + ".json").read_text())
    except (OSError, ValueError):
        return {}


def read_seal(path: str | Path) -> tuple[str | None, str]:
    """(the digest the artifact claims or None, the digest of its bytes now)."""
    path = Path(path)
    if path.suffix.lower() == ".engine":
        return _engine_side(path).get("engine_sha256"), file_sha256(path)
    data = path.read_bytes()
    found = _SEAL_RE.findall(data)
    if len(found) != 1:   # none, or a second one spliced in: either way not the bytes we sealed
        return (None if not found else "ambiguous"), _digest(data, _parts(path)[1:])
    claimed = found[0].decode()
    return claimed, _digest(data.replace(MARK + found[0], PLACEHOLDER), _parts(path)[1:])


def verify(path: str | Path, expected: str | None = None, fix: str | None = None) -> str:
    """Return the artifact's seal digest; raise SealError naming the file and `fix` when its bytes do
    not match it (or, with `expected` given, e.g. from a cache entry's build.json, not that digest)."""
    path = Path(path)
    fix = fix or "re-export it with `edge-tan export`"
    try:
        claimed, actual = read_seal(path)
    except OSError as e:
        raise SealError(f"{path}: cannot read the artifact ({e.strerror or e}): {fix}") from None
    if claimed is None:
        if expected is not None:
            raise SealError(f"{path}: its integrity seal is gone (file truncated or rewritten): {fix}")
        raise Unsealed(f"{path}: carries no integrity seal (made by an older edge-tan, or edited): {fix}")
    if claimed != actual or (expected is not None and expected != actual):
        raise SealError(f"{path}: bytes do not match its integrity seal (tampered, truncated or corrupt): {fix}")
    return actual


def _patch(path: Path) -> str:
    """Replace the one placeholder in `path` with the digest of the bytes (placeholder in place)."""
    data = path.read_bytes()
    if data.count(PLACEHOLDER) != 1 or len(_SEAL_RE.findall(data)) != 1:
        raise EdgeTanError(f"{path.name}: cannot seal: expected exactly one seal placeholder")
    digest = _digest(data, _parts(path)[1:])
    with open(path, "r+b") as f:
        f.seek(data.index(PLACEHOLDER) + len(MARK))
        f.write(digest.encode())
    return digest


def seal_onnx(path: str | Path) -> str:
    """Add (or replace) the seal of an .onnx file in place. Needs the `onnx` package (build side)."""
    import onnx

    path = Path(path)
    m = onnx.load(str(path))
    keep = [(p.key, p.value) for p in m.metadata_props if p.key != ONNX_PROP]
    del m.metadata_props[:]
    onnx.helper.set_model_props(m, {**dict(keep), ONNX_PROP: PLACEHOLDER.decode()})
    onnx.save(m, str(path))
    return _patch(path)


def seal_ir(xml_path: str | Path) -> str:
    """Add the seal to an OpenVINO IR's model-level rt_info (text edit of the .xml) in place."""
    path = Path(xml_path)
    text = path.read_bytes()
    text = _SEAL_RE.sub(b"", text) if _SEAL_RE.search(text) else text
    text = re.sub(rb"\s*<" + IR_ELEMENT.encode() + rb" value=\"\"\s*/>", b"", text)
    end = text.rstrip()
    if not end.endswith(b"</net>"):
        raise EdgeTanError(f"{path.name}: cannot seal: not an OpenVINO IR (no closing </net>)")
    body = end[: -len(b"</net>")].rstrip()
    element = b'\t\t<' + IR_ELEMENT.encode() + b' value="' + PLACEHOLDER + b'" />\n'
    if body.endswith(b"</rt_info>"):
        new = body[: -len(b"</rt_info>")] + element + b"\t</rt_info>\n</net>\n"
    else:
        new = body + b"\n\t<rt_info>\n" + element + b"\t</rt_info>\n</net>\n"
    path.write_bytes(new)
    return _patch(path)


def seal(path: str | Path) -> str | None:
    """Seal the artifact at `path` by its type (.onnx / .xml); an .engine is sealed by its sidecar."""
    path = Path(path)
    sfx = path.suffix.lower()
    if sfx in (".onnx", ".xml"):
        claimed, actual = read_seal(path)
        if claimed == actual:   # already sealed by its writer (save_ir seals every IR)
            return actual
    if sfx == ".onnx":
        return seal_onnx(path)
    if sfx == ".xml":
        return seal_ir(path)
    if sfx == ".engine":
        return verify(path)
    return None

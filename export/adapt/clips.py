"""The site's clips for `edge-tan adapt`: found recursively, read with the one reader every command
uses (edge_tan.io.read.read_video), labels dropped, content-hashed, unreadable ones skipped.

Why labels are dropped: adaptation must work from what a site has (unlabelled clips); a clip that
happens to carry labels (an edge-tan .npz, a CAMUS file) must not leak them into the adapted model.
Why sha256 of the file bytes: the adapted weights record *which* clips they were adapted on without
holding any image, so a site can later prove (or check) what went in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_tan.dataset import Sequence
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.hashing import file_sha256

CLIP_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".wmv", ".npz", ".dcm", ".dicom", ".dic", ".nii",
                 ".nii.gz", ".mhd")
NOT_CLIPS = (".json", ".csv", ".png", ".jpg", ".jpeg", ".txt", ".md", ".raw", ".zraw", ".gz", ".safetensors",
             ".onnx", ".xml", ".bin", ".engine", ".ckpt", ".py", ".log")


@dataclass
class SiteClips:
    """What was read: label-free sequences, their content hashes, and the skip report."""
    root: Path
    seqs: list[Sequence] = field(default_factory=list)
    files: list[str] = field(default_factory=list)       # paths relative to root, same order as seqs
    sha256: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of the file bytes
    skipped: list[dict] = field(default_factory=list)     # {"file", "reason"}
    frames_total: int = 0

    def record(self) -> dict:
        """What the adapted weights keep about the clips: counts and hashes, never images."""
        return {"root_name": self.root.name, "used": len(self.seqs), "skipped": len(self.skipped),
                "skip_report": self.skipped, "frames_read": self.frames_total,
                "frames_used": int(sum(s.n_frames for s in self.seqs)), "sha256": self.sha256}


def _is_candidate(p: Path) -> bool:
    name = p.name.lower()
    if name.startswith(".") or not p.is_file():
        return False
    if any(name.endswith(s) for s in CLIP_SUFFIXES):
        return True
    if any(name.endswith(s) for s in NOT_CLIPS):
        return False
    from edge_tan.io import dicom
    try:
        return bool(dicom.is_dicom(p))   # DICOM files often have no suffix
    except Exception:
        return False


def find_clips(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.exists():
        raise EdgeTanError(f"clips folder not found: {root}")
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if _is_candidate(p))


def unlabelled(seq: Sequence, max_frames: int, stride: int = 1) -> Sequence:
    """The clip's frames only (every `stride`-th, the first `max_frames` of those), with fps (divided by
    the stride) and pixel spacing; every label dropped."""
    frames = seq.frames[::stride]
    frames = np.ascontiguousarray(frames[:max_frames] if max_frames > 0 else frames)
    return Sequence(name=seq.name, frames=frames, fps=seq.fps / stride, spacing_mm=seq.spacing_mm)


def read_site_clips(root: str | Path, max_frames: int = 64, min_frames: int = 4, progress=None,
                    stride: int = 1) -> SiteClips:
    """Every readable clip under `root`; raises one clear error when none is readable."""
    from edge_tan.io.read import read_video

    root = Path(root)
    paths = find_clips(root)
    out = SiteClips(root=root)
    for p in paths:
        rel = str(p.relative_to(root)) if p != root else p.name
        try:
            seq = read_video(p)
            if seq.n_frames < min_frames:
                raise EdgeTanError(f"only {seq.n_frames} frames (need {min_frames} to track)")
            if min(seq.frames.shape[1:]) < 32:
                raise EdgeTanError(f"frames {seq.frames.shape[1:]} too small")
        except EdgeTanError as e:
            out.skipped.append({"file": rel, "reason": str(e)})
        except Exception as e:  # a reader library's own failure on a corrupt file: skip, say why
            out.skipped.append({"file": rel, "reason": f"{type(e).__name__}: {e}"})
        else:
            out.frames_total += seq.n_frames
            out.seqs.append(unlabelled(seq, max_frames, stride))
            out.files.append(rel)
            out.sha256[rel] = file_sha256(p)
        if progress:
            progress()
    if not out.seqs:
        what = f"{len(paths)} candidate file(s), none readable" if paths else "no AVI/MP4/DICOM/NIfTI/npz files"
        first = f" (e.g. {out.skipped[0]['file']}: {out.skipped[0]['reason']})" if out.skipped else ""
        raise EdgeTanError(f"{root}: no readable clips to adapt on: {what}{first}")
    return out

"""Where parity and bench get their clips: a phantom (default), one video/npz file, or a dataset's test split.

The phantom needs nothing from the user and comes with labels, so the README's main commands run
on a fresh machine and still report accuracy.
"""

from __future__ import annotations

from pathlib import Path

from edge_tan.dataset import Sequence
from edge_tan.runtime.errors import EdgeTanError, UsageError

PHANTOM_SEED = 2024
PHANTOM_FRAMES = 40


def phantom_clip(frames: int = PHANTOM_FRAMES, seed: int = PHANTOM_SEED, view: str = "A4C") -> Sequence:
    """A fixed-seed phantom clip with labels (edge_tan.synth), cut to `frames` frames."""
    try:
        from edge_tan.synth.generate import generate_sequence
    except ImportError as e:
        raise EdgeTanError(f"the phantom generator (edge_tan.synth) is unavailable ({e}); give a VIDEO or DATA_DIR") from None
    seq = generate_sequence(seed, view)
    if seq.n_frames > frames:
        T = frames
        seq = Sequence(name=seq.name, frames=seq.frames[:T],
                       masks=None if seq.masks is None else seq.masks[:T],
                       labeled=None if seq.labeled is None else seq.labeled[:T],
                       landmarks=None if seq.landmarks is None else seq.landmarks[:T], view=seq.view, fps=seq.fps,
                       spacing_mm=seq.spacing_mm, ed=[i for i in seq.ed if i < T], es=[i for i in seq.es if i < T],
                       ef=seq.ef)
    if not seq.name or seq.name == "sequence":
        seq.name = f"phantom-{seed}"
    return seq.validate()


def load_clips(source: str | Path | None, limit: int = 3) -> tuple[list[Sequence], str]:
    """(clips, description). A folder is an edge-tan dataset: its test split (all splits if it has
    no test split), first `limit` sequences."""
    if source is None:
        seq = phantom_clip()
        return [seq], f"phantom clip (seed {PHANTOM_SEED}, {seq.n_frames} frames, labels known)"
    p = Path(source)
    if not p.exists():
        raise UsageError(f"source not found: {p}")
    if p.is_dir():
        from edge_tan.dataset import list_split, load_sequence
        if limit < 1:
            raise UsageError(f"--limit must be >= 1, got {limit}")
        paths = list_split(p, "test") or list_split(p, None)
        if not paths:
            raise EdgeTanError(f"{p}: the dataset lists no sequences")
        seqs = [load_sequence(x) for x in paths[:limit]]
        return seqs, f"{p} test split, {len(seqs)} of {len(paths)} sequences"
    from edge_tan.io.read import read_video
    seq = read_video(p)
    return [seq], f"{p.name} ({seq.n_frames} frames{', labelled' if has_labels(seq) else ''})"


def has_labels(seq: Sequence) -> bool:
    return seq.masks is not None and seq.labeled is not None and bool(seq.labeled.any()) and bool(seq.masks.any())


def calibration_dir(source: str | Path | None) -> Path:
    """An edge-tan dataset for INT8 calibration: the user's DATA_DIR, else a small cached phantom
    dataset (seeds disjoint from the benchmark clip, so INT8 is not calibrated on its own test clip)."""
    if source is not None and Path(source).is_dir():
        return Path(source)
    from edge_tan.targets.opener import cache_dir
    root = cache_dir() / "_calib-phantom-v1"
    if not (root / "manifest.json").is_file():
        try:
            from edge_tan.synth.generate import generate_dataset
        except ImportError as e:
            raise EdgeTanError(f"INT8 needs calibration data and the phantom generator is unavailable ({e}); "
                               "give a DATA_DIR") from None
        from edge_tan.runtime.atomic import atomic_dir
        with atomic_dir(root) as tmp:
            generate_dataset(tmp, n=6, seed=PHANTOM_SEED + 1000, views=["A2C", "A4C"], avi=False, workers=1)
    return root

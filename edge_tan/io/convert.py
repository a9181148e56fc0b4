"""`edge-tan convert`: CAMUS or EchoNet-Dynamic folder -> edge-tan dataset (npz per sequence + manifest).

The output appears atomically (built in a temp folder, then renamed). EchoNet keeps its own
TRAIN/VAL/TEST split; CAMUS is split by patient (deterministic `split_for` over sorted patient ids),
so both views of a patient land in the same split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..runtime.atomic import atomic_dir
from ..dataset import Sequence, save_sequence, split_for, write_manifest
from ..runtime.errors import EdgeTanError
from . import camus, echonet


def detect_layout(src: Path) -> str:
    """'echonet' or 'camus'; one clear error naming both expected layouts otherwise."""
    if not src.exists():
        raise EdgeTanError(f"source folder not found: {src}")
    if not src.is_dir():
        raise EdgeTanError(f"{src} is not a folder (convert takes a CAMUS or EchoNet-Dynamic dataset folder)")
    if (src / "FileList.csv").is_file() and (src / "Videos").is_dir():
        return "echonet"
    if camus.find_patient_dirs(src):
        return "camus"
    raise EdgeTanError(f"{src}: unknown dataset layout: expected CAMUS (patientXXXX/ folders with "
                       "*_half_sequence.nii.gz or *_ED.mhd) or EchoNet-Dynamic (FileList.csv + Videos/*.avi)")


def _camus_items(src: Path) -> Iterator[tuple[str, callable]]:
    """Official database_split lists when shipped, else split_for over sorted patients."""
    patients = camus.find_patient_dirs(src)
    official = camus.official_splits(src)
    for i, d in enumerate(patients):
        yield official.get(d.name) or split_for(i, len(patients)), lambda d=d: camus.read_camus_patient(d)


def _echonet_items(src: Path) -> Iterator[tuple[str, callable]]:
    rows = echonet.read_filelist(src)
    tracings = echonet.read_tracings(src) if (src / "VolumeTracings.csv").is_file() else {}
    rows = [r for r in rows if (src / "Videos" / r["FileName"]).is_file()]
    for i, r in enumerate(rows):
        split = echonet.echonet_split(r) or split_for(i, len(rows))
        yield split, lambda r=r: [echonet.read_echonet_video(src, r, tracings)]


def convert_dataset(src: str | Path, out_dir: str | Path, limit: int = 0, progress: bool = True) -> dict:
    """Convert `src` into `out_dir`; returns a summary {layout, sequences, labeled_frames, skipped}.

    A unit (CAMUS patient / EchoNet video) that fails to read is skipped with its reason recorded in
    the manifest; if nothing converts, the error of the first failure is raised.
    """
    src, out_dir = Path(src), Path(out_dir)
    layout = detect_layout(src)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / "manifest.json").is_file())):
        raise EdgeTanError(f"{out_dir} exists and is not an edge-tan dataset: refusing to replace it")
    if out_dir.resolve() == src.resolve() or src.resolve() in out_dir.resolve().parents:
        raise EdgeTanError(f"output {out_dir} must not be the source folder or inside it")
    items = list(_camus_items(src) if layout == "camus" else _echonet_items(src))
    entries, skipped, labeled, names = [], [], 0, set()
    first_err: EdgeTanError | None = None
    with atomic_dir(out_dir) as tmp, _progress(progress, len(items), f"convert {layout}") as tick:
        for split, load in items:
            if limit and len(entries) >= limit:
                break
            try:
                seqs: list[Sequence] = load()
            except EdgeTanError as e:
                skipped.append(str(e))
                first_err = first_err or e
                tick()
                continue
            for seq in seqs:
                if limit and len(entries) >= limit:
                    break
                if seq.name in names:      # e.g. CAMUS 2019 training/ and testing/ both hold patient0001
                    src_dir = Path(seq.extra.get("source", "x")).parent
                    seq.name = f"{src_dir.parent.name}_{seq.name}"
                if seq.name in names:
                    raise EdgeTanError(f"{src}: two sequences are both named {seq.name!r}")
                names.add(seq.name)
                if not seq.view:
                    seq.view = "A4C"
                save_sequence(seq, tmp / f"{seq.name}.npz")
                labeled += int(seq.labeled.sum())
                entries.append({"name": seq.name, "view": seq.view, "frames": seq.n_frames, "split": split})
            tick()
        if not entries:
            raise first_err or EdgeTanError(f"{src}: no sequences found to convert")
        write_manifest(tmp, entries, source=str(src), layout=layout, skipped=skipped)
    if progress:
        print(f"converted {len(entries)} {layout} sequences ({labeled} labelled frames) into {out_dir}"
              + (f"; skipped {len(skipped)}: {skipped[0]}" + (" ..." if len(skipped) > 1 else "") if skipped else ""))
    return {"layout": layout, "sequences": len(entries), "labeled_frames": labeled, "skipped": skipped}


class _progress:
    """rich progress bar when available and wanted; a no-op otherwise."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled, self.total, self.label, self.bar = enabled, total, label, None

    def __enter__(self):
        if self.enabled:
            try:
                from rich.progress import Progress
                self.bar = Progress(transient=True)
                self.bar.__enter__()
                self.task = self.bar.add_task(self.label, total=self.total)
            except ImportError:
                self.bar = None
        return self._tick

    def _tick(self):
        if self.bar is not None:
            self.bar.advance(self.task)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False

"""`edge-tan batch`: list the clips, take the output folder's lock, open the model once (it is built
and cached here, before any worker starts), run the clips on the local pool or Ray, show progress,
then write the archive table and a run summary.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..runtime.errors import UsageError
from ..runtime.registry import DEFAULT_BACKEND
from .model import RunConfig, is_gpu_backend, model_info, open_runner, split_cores, usable_cores
from .sources import find_clips
from .store import Store
from .table import write_table


SAME_RETURN_S = 0.05    # rows this close to the first came back in the same block


class Progress:
    """Clips done / total with clips/s and ETA over the clips tracked in this run (skipped ones are
    counted apart: they finish instantly and would make the ETA lie)."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.done, self.skipped, self.errors = total, 0, 0, 0
        self.t0 = time.perf_counter()
        self.first = self.last = None       # when the first / last tracked clip came back
        self.with_first = 0                 # clips that came back with the first (Ray returns a block at once)
        self.bar = None
        if not quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn
            self.bar = Bar(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=False)
            self.task = self.bar.add_task("clips", total=total, info="")
            self.bar.start()

    @property
    def tracked(self) -> int:
        return self.done - self.skipped

    def rate(self) -> float:
        dt = time.perf_counter() - self.t0
        return self.tracked / dt if dt > 0 else 0.0

    def steady_rate(self) -> float | None:
        """Clips/s from the first tracked clip's return to the last's: the rate a long archive runs at,
        without the start-up (model load, workers, a Ray instance) that a short run is dominated by.
        Clips that came back together with the first were tracked before it, so they do not count."""
        if self.tracked - self.with_first < 2 or self.last is None or self.last <= self.first:
            return None
        return (self.tracked - self.with_first) / (self.last - self.first)

    def update(self, row: dict) -> None:
        self.done += 1
        self.skipped += bool(row.get("skipped"))
        if not row.get("skipped"):
            self.last = time.perf_counter()
            if self.first is None:
                self.first = self.last
            if self.last - self.first < SAME_RETURN_S:
                self.with_first += 1
        self.errors += row.get("status") == "error" and not row.get("skipped")
        if self.bar is not None:
            r = self.rate()
            left = self.total - self.done
            eta = f"ETA {time.strftime('%H:%M:%S', time.gmtime(left / r))}" if r > 0 and left else ""
            info = f"{r:.2f} clips/s {eta} · {self.skipped} done before · {self.errors} errors"
            self.bar.update(self.task, completed=self.done, info=info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_batch(src: str, out: Path, model: str | None = None, backend: str = DEFAULT_BACKEND, precision: str = "fp32",
              workers: int = 0, threads: int = 0, use_ray: bool = False, ray_address: str | None = None,
              limit: int = 0, retry_errors: bool = False, quiet: bool = False) -> dict:
    if workers < 0 or threads < 0:
        raise UsageError("--workers and --threads must be >= 0 (0: choose from the cores)")
    clips = find_clips(src, limit)
    gpu = is_gpu_backend(backend)
    if use_ray:
        threads = threads or 1              # one model copy per CPU: Ray's scheduling unit
    elif gpu:
        workers, threads = workers or 1, threads or 1   # one engine per GPU unless asked otherwise
    else:
        workers, threads = split_cores(workers, threads)
    cfg = RunConfig(out=str(out), model=model, backend=backend, precision=precision, threads=threads,
                    retry_errors=retry_errors)
    store = Store(out)
    rows: list[dict | None] = [None] * len(clips)
    with store.locked():
        runner = open_runner(cfg)           # builds/caches the artifact once; fails early on a bad --model
        minfo = model_info(runner, cfg)
        store.claim(minfo)
        bar = Progress(len(clips), quiet)

        def on_row(i: int, row: dict) -> None:
            rows[i] = row
            bar.update(row)

        t0 = time.perf_counter()
        try:
            if use_ray:
                runner.close()
                from .ray_job import run_ray
                workers = run_ray(clips, cfg, workers, on_row, ray_address)
            else:
                from .pool import run_pool
                if workers > 1:
                    runner.close()
                run_pool(clips, cfg, workers, on_row, minfo, runner if workers <= 1 else None)
                if workers <= 1:
                    runner.close()
        except KeyboardInterrupt:
            bar.close()
            import sys
            print(f"edge-tan batch: stopped; {bar.done} of {len(clips)} clips are done and kept in {out} "
                  "(run the same command again to finish)", file=sys.stderr)
            raise
        bar.close()
        wall = time.perf_counter() - t0
        lost = {"status": "error", "error": "no result came back for this clip"}   # never expected
        rows = [dict(r or lost, clip=c.name, path=c.path) for r, c in zip(rows, clips)]
        table = write_table(out, rows)
        summary = {"src": str(src), "clips": len(clips), "tracked": bar.tracked, "skipped": bar.skipped,
                   "errors": sum(r.get("status") == "error" for r in rows),
                   "no_lv": sum(r.get("status") == "no-lv" for r in rows),
                   "wall_s": round(wall, 3), "clips_per_s": round(bar.tracked / wall, 4) if wall > 0 else None,
                   "first_clip_s": None if bar.first is None else round(bar.first - t0, 3),
                   "steady_clips_per_s": None if bar.steady_rate() is None else round(bar.steady_rate(), 4),
                   "engine": "ray" if use_ray else "local", "workers": workers, "threads_per_worker": threads,
                   "cores": usable_cores(), **minfo, "table": [p.name for p in table]}
        store.write_run(summary)
    if not quiet:
        print(f"{summary['clips']} clips: {summary['tracked']} tracked, {summary['skipped']} done before, "
              f"{summary['errors']} errors, {summary['no_lv']} without an LV · {summary['clips_per_s']} clips/s "
              f"({summary['engine']}, {workers} workers x {threads} threads) · table: "
              + ", ".join(str(p) for p in table))
    return summary

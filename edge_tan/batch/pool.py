"""One machine: clips spread over a process pool, each worker opening its runner once (initializer).

One worker runs in this process (no pool to start). Ctrl-C: the workers ignore SIGINT, the parent sets
a stop event that each worker checks every frame, so clips in flight are dropped without writing
anything and finished clips stay as they are. A worker that dies (a decoder crash, the OOM killer)
costs only its clip: the clip is recorded with that error and a fresh pool carries on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from .clip import ClipWorker, row_for
from .model import RunConfig, model_info, open_runner
from .orphans import die_with_parent
from .sources import Clip
from .store import Store, content_sha256

_WORKER: ClipWorker | None = None


def _init(cfg: RunConfig, stop, parent: int | None = None) -> None:
    global _WORKER
    die_with_parent(parent)                           # a SIGKILLed parent leaves no workers behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # the parent decides; see module docstring
    runner = open_runner(cfg)
    _WORKER = ClipWorker(runner, model_info(runner, cfg), Store(cfg.out), stop.is_set, cfg.retry_errors)


def _run(item: tuple[int, Clip]) -> tuple[int, dict]:
    i, clip = item
    return i, _WORKER.process(clip)


def _died(clip: Clip, cfg: RunConfig, model: dict) -> dict:
    """Row for a clip whose worker process died under it (recorded, so the run can go on)."""
    try:
        sha = content_sha256(clip.path)
    except OSError:
        sha = ""
    row = row_for(clip, sha, model, None, "worker process died while tracking this clip (crash or out of memory)")
    if sha:
        Store(cfg.out).write_result(clip.name, sha, None, row)
    return dict(row, skipped=False)


def run_pool(clips: Sequence[Clip], cfg: RunConfig, workers: int, on_row: Callable[[int, dict], None],
             model: dict, runner=None) -> None:
    """Track every clip; `on_row(index, row)` as each finishes (any order)."""
    if workers <= 1:
        w = ClipWorker(runner or open_runner(cfg), model, Store(cfg.out), retry_errors=cfg.retry_errors)
        for i, c in enumerate(clips):
            on_row(i, w.process(c))
        return
    ctx = mp.get_context("spawn")       # no fork of a process that has loaded a backend's threads
    stop = ctx.Event()
    todo = list(enumerate(clips))[::-1]
    while todo:
        suspects = _drain(todo, ctx, stop, cfg, workers, on_row)
        for item in suspects:               # the pool broke: find the clip that breaks it, alone
            if _drain([item], ctx, stop, cfg, 1, on_row):
                on_row(item[0], _died(item[1], cfg, model))


def _drain(todo: list, ctx, stop, cfg: RunConfig, workers: int, on_row) -> list:
    """Run clips from `todo` (popped from the end) until it is empty or the pool breaks; returns the
    clips that were in flight when it broke."""
    inflight: dict = {}
    ex = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(cfg, stop, os.getpid()))
    try:
        while todo or inflight:
            while todo and len(inflight) < 2 * workers:
                item = todo.pop()
                inflight[ex.submit(_run, item)] = item
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for f in done:
                try:
                    res = f.result()
                except BrokenProcessPool:
                    ex.shutdown(wait=False, cancel_futures=True)
                    return sorted(inflight.values(), key=lambda it: it[0])
                inflight.pop(f)
                on_row(*res)
    except BaseException:
        stop.set()                          # Ctrl-C or an error: drop the clips in flight, keep the rest
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
    return []

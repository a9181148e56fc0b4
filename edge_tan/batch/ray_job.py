"""A cluster: the same batch on Ray Data. Clips are rows; `map_batches` with a callable class gives one
stateful actor per model copy (the runner is opened once, in the actor's constructor); CPU actors for
OpenVINO / ONNX Runtime / torch, one GPU per actor for TensorRT / torch-CUDA. Each actor writes its
clips' results into the output folder (a shared filesystem on a real cluster) exactly as a local
worker does, and hands back the table row, so `--ray` and `--workers` give the same table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Callable, Sequence

import numpy as np

from ..runtime.errors import EdgeTanError, UsageError
from .clip import ClipWorker
from .model import RunConfig, is_gpu_backend, model_info, open_runner
from .sources import Clip
from .store import Store

MAX_BLOCKS = 10_000     # rows are split into this many blocks at most
CLIPS_PER_BLOCK = 4     # one Ray task per block; one clip per task ran slower on short clips (200 12-frame
                        # clips, 2 cores: 9.2-9.6 clips/s once running, against 10.4-10.6 with 4 per task)
MIN_BLOCKS_PER_ACTOR = 4   # ... but enough blocks that the actors stay balanced to the end


def n_blocks(clips: int, actors: int) -> int:
    """How many blocks (= Ray tasks) the clips are split into."""
    want = max(-(-clips // CLIPS_PER_BLOCK), MIN_BLOCKS_PER_ACTOR * actors)
    return max(1, min(clips, want, MAX_BLOCKS))


class ClipActor:
    """Ray Data callable class: one loaded runner per actor, one clip per batch."""

    def __init__(self, cfg: dict):
        c = RunConfig(**cfg)
        runner = open_runner(c)
        self.worker = ClipWorker(runner, model_info(runner, c), Store(c.out), retry_errors=c.retry_errors)

    def __call__(self, batch: dict) -> dict:
        rows = []
        for path, name, ef in zip(batch["path"], batch["name"], batch["ef_ref"]):
            rows.append(json.dumps(self.worker.process(Clip(str(path), str(name), float(ef)))))
        return {"index": np.asarray(batch["index"]), "row": np.asarray(rows, dtype=object)}


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("--ray needs Ray Data: pip install 'edge-tan[ray]'") from None
    return ray


def actor_resources(backend: str, threads: int, workers: int, cluster: dict) -> tuple[int, dict]:
    """(number of actors, resources per actor) for this backend on this cluster."""
    if is_gpu_backend(backend):
        gpus = int(cluster.get("GPU", 0))
        if gpus < 1:
            raise EdgeTanError(f"backend {backend} runs on GPUs and the Ray cluster has none")
        n = workers or gpus                 # more actors than GPUs share them (a small net rarely fills one)
        return n, {"num_gpus": min(1.0, gpus / n), "num_cpus": 1}
    per = max(int(threads), 1)
    return (workers or max(1, int(cluster.get("CPU", 1)) // per)), {"num_cpus": per}


def run_ray(clips: Sequence[Clip], cfg: RunConfig, workers: int, on_row: Callable[[int, dict], None],
            address: str | None = None) -> int:
    """Track every clip on Ray Data; `on_row(index, row)` as rows stream back. Returns the actor count.

    Joins `address` ("auto", "ray://head:10001"), or the Ray instance this process already started,
    or starts a local one."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address or None, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False            # our own bar counts clips
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        n, res = actor_resources(cfg.backend, cfg.threads, workers, ray.cluster_resources())
        items = [{"index": i, "path": c.path, "name": c.name, "ef_ref": c.ef_ref} for i, c in enumerate(clips)]
        ds = ray.data.from_items(items, override_num_blocks=n_blocks(len(items), n))
        ds = ds.map_batches(ClipActor, batch_size=1, concurrency=n, fn_constructor_kwargs={"cfg": dataclasses.asdict(cfg)},
                            **res)
        for r in ds.iter_rows():
            on_row(int(r["index"]), json.loads(r["row"]))
        return n
    except (EdgeTanError, KeyboardInterrupt):
        raise
    except Exception as e:
        msg = str(e).strip().splitlines()
        raise EdgeTanError(f"Ray job failed: {type(e).__name__}: {msg[-1] if msg else ''}") from None
    finally:
        if started:
            ray.shutdown()


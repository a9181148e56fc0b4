"""Generic latency measurement reused by every benchmark: warm-up, timed runs, robust statistics.

perf_counter_ns around each call (no per-call allocation in the loop), at least `runs` timed calls
and, when `min_time` > 0, more until that much time has passed (short calls get enough samples for a
stable p99), capped by `max_time` so slow baselines stay bounded.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

STAT_KEYS = ("median", "p95", "p99", "min", "max", "std", "mean", "n")


def stats_ms(samples_ns) -> dict:
    """Statistics in milliseconds (plus n, fps from the median and total seconds)."""
    a = np.asarray(samples_ns, np.float64) / 1e6
    if a.size == 0:
        return {k: None for k in STAT_KEYS} | {"n": 0, "fps": None, "total_s": 0.0}
    med = float(np.median(a))
    return {"median": med, "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)),
            "min": float(a.min()), "max": float(a.max()), "std": float(a.std()), "mean": float(a.mean()),
            "n": int(a.size), "fps": (1000.0 / med) if med > 0 else math.inf, "total_s": float(a.sum() / 1e3)}


def median_range(values) -> tuple[float | None, list | None]:
    """(median, [lowest, highest]) of the values that are not None; (None, None) when there are none. The
    form every repeated ratio of the bench is reported in (native runs, paired rounds)."""
    v = [float(x) for x in values if x is not None]
    return (float(np.median(v)), [min(v), max(v)]) if v else (None, None)


def time_callable(fn: Callable[[], object], warmup: int = 3, runs: int = 20, min_time: float = 0.0,
                  max_time: float | None = None, max_runs: int | None = None) -> dict:
    """Call `fn()` `warmup` times untimed, then time >= `runs` calls (and >= `min_time` s in total,
    never more than `max_time` s or `max_runs` calls once `runs` is reached). Returns `stats_ms`."""
    if runs < 1:
        raise ValueError("time_callable needs runs >= 1")
    for _ in range(max(0, int(warmup))):
        fn()
    clock = time.perf_counter_ns
    samples: list[int] = []
    start = clock()
    min_ns = int(min_time * 1e9)
    max_ns = int(max_time * 1e9) if max_time else None
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        samples.append(t1 - t0)
        n, elapsed = len(samples), t1 - start
        if n >= runs:
            if max_runs is not None and n >= max_runs:
                break
            if max_ns is not None and elapsed >= max_ns:
                break
            if elapsed >= min_ns:
                break
    return stats_ms(samples)

"""`edge-tan` command line: one module per command group. Each command imports its implementation
lazily, so `--help` is instant and the core never pulls torch or a backend unless the command needs it.

- `tracking`: info, track            - `building`: synth, convert, train, refit-view, ood-fit, adapt, models, export
- `evaluation`: eval, qc-calibrate   - `archive`: batch            - `bench`: parity, bench
"""

from __future__ import annotations

import sys

from . import archive, bench, building, evaluation, tracking  # noqa: F401  (each registers its commands)
from .base import app, order_commands

order_commands(["info", "synth", "convert", "train", "refit-view", "ood-fit", "adapt", "models", "export", "track",
                "batch", "eval", "qc-calibrate", "parity", "bench"])

__all__ = ["app", "main"]


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

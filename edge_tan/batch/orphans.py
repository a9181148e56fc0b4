"""Pool workers die with their parent: a SIGKILLed `edge-tan batch` must not leave workers behind
(each holds a loaded model, ~280 MB, and went on tracking for minutes: issue 21).

Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) makes the kernel kill the worker when its parent exits.
Elsewhere (and as a second line on Linux, where the signal follows the parent *thread* that started
the worker) a daemon thread polls the parent pid once a second and exits the worker when it changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, every_s: float) -> None:
    while True:
        time.sleep(every_s)
        if os.getppid() != parent:
            os._exit(70)   # the parent is gone: nothing to report to, no one to clean up after us


def die_with_parent(parent: int | None = None, every_s: float = 1.0) -> None:
    """Call first thing in a worker process. `parent`: the pid it must outlive (default: getppid())."""
    parent = os.getppid() if parent is None else int(parent)
    _pdeathsig()
    if os.getppid() != parent:   # the parent died before the prctl took effect
        os._exit(70)
    threading.Thread(target=_watch, args=(parent, every_s), daemon=True, name="edge-tan-parent-watch").start()

"""Worker processes that end with the process that started them, however it ends: `kill -9` included, so no
extraction worker (and no multiprocessing resource tracker, which lives as long as a worker holds its pipe) is
left running with the caller's stdout and stderr open."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Initializer of a worker process started by process `parent`. On Linux the kernel kills the worker when
    the thread that started it ends (prctl PR_SET_PDEATHSIG); elsewhere a thread looks every second whether the
    worker still has its parent. A parent gone before this runs ends the worker at once."""
    if not _kernel_kills_on_parent_death():
        threading.Thread(target=_watch_parent, args=(parent,), name="searchlm-parent-watch", daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _kernel_kills_on_parent_death() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)

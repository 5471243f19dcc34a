"""One writer per index: an exclusive, non-blocking flock on `<index>/.lock`. Readers never lock (SQLite WAL)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from searchlm.errors import IndexBusyError


@contextmanager
def write_lock(index_dir: Path, name: str):
    import fcntl

    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise IndexBusyError(
                f"index '{name}' is being written by pid {holder}; wait for that run to finish, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock

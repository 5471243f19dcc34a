"""One writer per index: an exclusive lock on `<index>/.lock` (filelock: flock on POSIX, msvcrt on Windows), taken
without waiting. Readers never lock (SQLite WAL). The holder's pid is kept beside it in `.writer`, so a second
writer is told who holds the index."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from searchlm.errors import IndexBusyError

LOCK_FILE = ".lock"
WRITER_FILE = ".writer"


@contextmanager
def write_lock(index_dir: Path, name: str):
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(index_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = (index_dir / WRITER_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            holder = ""
        raise IndexBusyError(
            f"index '{name}' is being written by {f'pid {holder}' if holder else 'another process'}",
            "wait for that run to finish, then run again",
        ) from None
    try:
        (index_dir / WRITER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        yield
    finally:
        lock.release()

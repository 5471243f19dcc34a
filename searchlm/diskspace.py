"""Disk-full and quota errors as one line that names the path, the free space and the space needed."""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
from pathlib import Path

from searchlm.errors import DiskFullError

FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    if isinstance(exc, shutil.Error):  # copytree gathers the per-file OSErrors as text
        return "No space left" in str(exc) or "quota exceeded" in str(exc).lower()
    text = str(exc)  # SQLite says it in words; a C library's RuntimeError quotes its message
    return "database or disk is full" in text or "No space left on device" in text or "Disk quota exceeded" in text


@contextlib.contextmanager
def disk_errors(where: Path):
    """A full disk or quota met inside (SQLite, the store, a copy) as one DiskFullError naming the path, instead of
    a traceback from deep inside."""
    try:
        yield
    except (OSError, sqlite3.OperationalError, RuntimeError, shutil.Error) as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full(Path(getattr(exc, "filename", None) or where), getattr(exc, "needed", None)) from None


def free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def disk_full(path: Path, needed: int | None = None) -> DiskFullError:
    """The error for a write to `path` that ran out of space; `needed`: about how many more bytes it takes."""
    free = free_bytes(Path(path))
    have = f"{_mb(free)} free" if free is not None else "the disk is full"
    want = f", about {_mb(needed)} more needed" if needed else ""
    return DiskFullError(
        f"no space left writing {path} ({have}{want}); free some space there (or use --home on another disk) "
        "and run the command again: what was committed before is kept"
    )


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"

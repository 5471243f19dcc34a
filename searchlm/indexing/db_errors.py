"""An sqlite3 error as a library error: the database module raises these, and a surface turns an sqlite3 error
that escapes a command or a request (a page found damaged mid-query) into the same one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def damaged_db(path: Path, why: str):
    """The one message for an index database that cannot be read: what, where (by index name), the fix."""
    from searchlm.errors import IndexDamagedError

    name = path.parent.name
    return IndexDamagedError(
        f"index '{name}': {path.name} is damaged ({why}); run `searchlm check --name {name} --repair`"
    )


def translate(exc: sqlite3.Error, path: Path):
    """A library error for an sqlite3 error: disk full, damage, or (locked and the like) the error itself."""
    from searchlm.diskspace import disk_full
    from searchlm.errors import IndexBusyError

    text = str(exc)
    if "disk is full" in text:
        return disk_full(path)
    if "locked" in text:
        return IndexBusyError(f"index '{path.parent.name}' is locked by another process ({text}); try again")
    if isinstance(exc, sqlite3.OperationalError):
        return exc
    return damaged_db(path, text)

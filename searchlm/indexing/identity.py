"""Is the index on disk still the one a long-lived process opened?

A server (`searchlm serve`, `searchlm mcp`) keeps an index's SQLite connection and vectors open. When the index
is dropped (`searchlm drop`, or its folder removed), those open files still read: the server went on answering
searches and documents of an index that no longer existed. When it is dropped and created again under the same
name, the server went on answering from the old one. `IndexWatch.state()` says which, at the cost of one
`stat` of manifest.json at most once a second (and reading it only when it changed): "same", "gone" or
"replaced". An index's identity is the `index_id` its manifest got when it was created; an index made before
there was one is known by its SQLite file's inode instead.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from searchlm.indexing.manifest import DB_FILE, MANIFEST

CHECK_INTERVAL = 1.0  # seconds between two looks at an index's manifest


def index_identity(index_dir: Path) -> str | None:
    """The identity of the index in `index_dir`; None when there is no index there, "" when its manifest
    cannot be read now (damaged, or being repaired: not a reason to stop serving the open one)."""
    try:
        data = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError):
        return ""
    if isinstance(data, dict) and isinstance(data.get("index_id"), str) and data["index_id"]:
        return data["index_id"]
    try:
        st = os.stat(index_dir / DB_FILE)
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    return f"inode:{st.st_dev}:{st.st_ino}"


def _manifest_key(index_dir: Path):
    """What changes whenever manifest.json is written (it is replaced by a rename), or None without one."""
    try:
        st = os.stat(index_dir / MANIFEST)
    except FileNotFoundError:
        return None
    except OSError:
        return ()
    return st.st_ino, st.st_mtime_ns, st.st_size


class IndexWatch:
    """Watches the index in `index_dir` that was just opened (see the module's docstring)."""

    def __init__(self, index_dir: Path, interval: float = CHECK_INTERVAL):
        self.index_dir = Path(index_dir)
        self.interval = interval
        self._key = _manifest_key(self.index_dir)
        self.identity = index_identity(self.index_dir)
        self._state = "same"
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def state(self) -> str:
        """"same", "gone" (dropped: no manifest) or "replaced" (another index under the name). Once not "same",
        it stays so: the caller closes what it opened and opens the index anew."""
        with self._lock:
            now = time.monotonic()
            if self._state != "same" or now - self._checked < self.interval:
                return self._state
            self._checked = now
            key = _manifest_key(self.index_dir)
            if key == self._key:
                return self._state
            self._key = key
            found = None if key is None else index_identity(self.index_dir)
            if found is None:
                self._state = "gone"
            elif found and self.identity and found != self.identity:
                self._state = "replaced"
            return self._state

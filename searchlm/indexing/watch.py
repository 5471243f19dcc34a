"""`watch_folder`: keep an index current as files change.

Changes are collected with watchfiles (inotify/FSEvents, polling elsewhere) and debounced; each batch goes
through the same incremental `index_folder` as `searchlm index`, so a create, edit, delete or rename costs what
it would cost there (a rename is free: vectors are reused by content hash). Every document is committed in its
own transaction and readers never lock, so a search while `watch` writes always succeeds. Errors of one batch
(an unreadable file is skipped and listed; a model that cannot load, a busy index) are reported and the watch
goes on; the batch is retried on the next change or after `RETRY_SECONDS`. If the folder is moved away or
deleted, the index keeps its documents and the watch waits for the folder to come back.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from searchlm.errors import InputError, SearchlmError
from searchlm.extract import kind_of
from searchlm.records import IndexReport
from searchlm.settings import DEFAULT_MODEL, Settings
from searchlm.indexing.walk import IGNORE_FILES, file_identity

RETRY_SECONDS = 10.0
DEBOUNCE_MS = 1000  # the longest a burst of changes is collected before it is indexed
STEP_MS = 200  # a batch closes once no change arrived for this long
CHECK_MS = 1000  # how often the watcher wakes without changes, to notice the folder moved away


def watch_folder(
    root: Path,
    settings: Settings,
    *,
    on_report: Callable[[IndexReport], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    on_message: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    debounce_ms: int = DEBOUNCE_MS,
) -> None:
    """Index `root` now, then again whenever files under it change, until `stop` is set (or Ctrl-C).

    `on_report` gets the report of every batch that changed something; `on_error` every error a batch raised
    (the watch goes on); `on_message` lines worth showing (a model loading, the folder gone or back)."""
    from searchlm.indexing.indexer import index_folder

    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"path '{root}' is not a folder", "pass the folder to watch")
    root = root.resolve()
    stop = stop or threading.Event()
    say = on_message or (lambda text: None)
    embedder = _KeptEmbedder(settings, say)
    from searchlm.indexing.homes import locate

    # The home index_folder writes to (found from anywhere, as it finds it), not only the one named here.
    home = _OwnFiles(root, locate(settings.name, settings.home) or settings.home)

    def sync() -> bool:
        """One incremental run. True when it completed (False: retry later)."""
        try:
            report = index_folder(root, settings, embedder=embedder)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - the watch outlives any one batch
            if on_error:
                on_error(exc)
            return not isinstance(exc, SearchlmError) or _final(exc)
        if on_report and (report.added or report.updated or report.removed or report.moved or report.skipped):
            on_report(report)
        return True

    while not stop.is_set():
        if not root.is_dir():
            say(f"'{root}' is gone (moved away or deleted); the index keeps its documents. Waiting for it to come back.")
            while not root.is_dir() and not stop.wait(CHECK_MS / 1000):
                pass
            if stop.is_set():
                return
            say(f"'{root}' is back; indexing what changed.")
        identity = file_identity(root)
        # The first run starts once the watcher is live (its first, empty batch), so a change made while it
        # runs is in the next batch rather than lost.
        first, failed_at = True, None
        try:
            for changes in _changes(root, home, stop, debounce_ms):
                if file_identity(root) != identity:  # moved away, deleted, or replaced by another folder
                    break
                retry = failed_at is not None and time.monotonic() - failed_at >= RETRY_SECONDS
                if changes or first or retry:
                    first = False
                    done = sync()
                    failed_at = None if done else time.monotonic()
                if stop.is_set():
                    return
        except (OSError, RuntimeError) as exc:  # the watcher itself failed (e.g. the folder vanished under it)
            if root.is_dir() and on_error:
                on_error(exc)
            stop.wait(CHECK_MS / 1000)


def _changes(root: Path, home: _OwnFiles, stop: threading.Event, debounce_ms: int):
    """Batches of relevant changed paths (an empty batch about every CHECK_MS, to let the caller look around)."""
    try:
        from watchfiles import DefaultFilter, watch
    except ImportError:
        raise SearchlmError("watching a folder needs watchfiles, which is not installed",
                            "pip install 'searchlm[watch]'") from None

    base = DefaultFilter()

    def relevant(change, path: str) -> bool:
        p = Path(path)
        if not base(change, path) or p in home:  # the index's own files, when the home is inside the folder
            return False
        # Supported files, ignore files, and anything without a suffix (a folder renamed or deleted).
        return kind_of(p) is not None or p.name in IGNORE_FILES or not p.suffix

    yield from watch(
        root, watch_filter=relevant, debounce=debounce_ms, step=STEP_MS, stop_event=stop, rust_timeout=CHECK_MS,
        yield_on_timeout=True, raise_interrupt=True, ignore_permission_denied=True,
    )


class _OwnFiles:
    """Whether a changed path is in the index home, wherever the home appears inside the watched folder: under
    its own path, through a symlink, or bind-mounted there (another path, the same device and inode). Without
    this, each run's own writes were a change, and the index was rewritten every 2 s."""

    def __init__(self, root: Path, home: Path):
        self.root = root
        self.home = Path(home).expanduser().absolute()
        self.real = Path(os.path.realpath(self.home))

    def __contains__(self, path: Path) -> bool:
        if path == self.real or self.real in path.parents or path == self.home or self.home in path.parents:
            return True
        home = file_identity(self.home)  # looked up each time: the home is made by the first run
        if home is None:
            return False
        for folder in (path, *path.parents):  # the path and its folders below the root
            if folder == self.root or self.root not in folder.parents:
                break
            if file_identity(folder) == home:
                return True
        return False


def _final(exc: Exception) -> bool:
    """Errors that a retry without a change cannot fix count as done (the next change tries again)."""
    from searchlm.errors import IndexBusyError, ModelError

    return not isinstance(exc, (IndexBusyError, ModelError))


class _KeptEmbedder:
    """The index's embedder, loaded on the first batch that needs it and kept for the next ones."""

    def __init__(self, settings: Settings, say: Callable[[str], None]):
        self.settings = settings
        self.say = say
        self._loaded = None

    @property
    def window(self) -> int:
        if self.settings.embedder == "ray":
            from searchlm.embed.ray import RayEmbedder

            return RayEmbedder.window
        return 0

    def _get(self):
        if self._loaded is None:
            from searchlm.embed import load_embedder
            from searchlm.indexing.manifest import Manifest

            try:
                model = Manifest.load(self.settings.index_dir).encoder_source(self.settings.index_dir)
            except Exception:  # noqa: BLE001 - no index yet: the model it will be built with
                model = self.settings.model or DEFAULT_MODEL
            self.say(f"Loading embedding model '{model}' (a few seconds; kept for the next changes)")
            options = {"address": self.settings.ray_address} if self.settings.embedder == "ray" else {}
            self._loaded = load_embedder(model, self.settings.embedder, device=self.settings.device, **options)
        return self._loaded

    def embed(self, texts):
        return self._get().embed(texts)

    def __getattr__(self, name):  # dimension, precision, model: the loaded embedder's
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._get(), name)

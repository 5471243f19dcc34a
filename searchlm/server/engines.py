"""What the server keeps loaded between requests: one searcher per index and the answer generator.

A `Searcher` holds one SQLite connection and the ONNX/FAISS objects; FastAPI runs sync endpoints in a thread
pool, so each searcher is used by one thread at a time (its own lock), and generations run one at a time.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time

from searchlm.errors import (
    DocumentNotFoundError, IndexBusyError, IndexMismatchError, IndexNotFoundError, InputError, ModelError,
    SearchlmError,
)
from searchlm.search import Searcher
from searchlm.settings import Settings

log = logging.getLogger("searchlm.server")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# The HTTP status of each library error, most specific first.
_STATUS = (
    (DocumentNotFoundError, 404), (IndexNotFoundError, 404), (IndexMismatchError, 409), (IndexBusyError, 503),
    (ModelError, 503), (InputError, 400), (SearchlmError, 400),
)


def status_for(exc: SearchlmError) -> int:
    return next(code for kind, code in _STATUS if isinstance(exc, kind))


class _GuardedSearcher:
    """A Searcher whose SQLite connection and models are used by one request thread at a time."""

    def __init__(self, searcher: Searcher):
        self._searcher = searcher
        self.lock = threading.Lock()

    def search(self, query, options=None, **kwargs):
        with self.lock:
            return self._searcher.search(query, options, **kwargs)

    def warm(self) -> None:
        with self.lock:
            self._searcher.warm()

    def __getattr__(self, name):
        return getattr(self._searcher, name)


class Engines:
    """Everything a request needs, loaded once: one searcher per index (on first use) and the generator."""

    def __init__(self, settings: Settings, load_generator: bool = True, ask_defaults: dict | None = None,
                 generator=None):
        self.settings = settings
        self.load_generator = load_generator
        self.ask_defaults = dict(ask_defaults or {})  # AskOptions values a request does not set
        self._searchers: dict[str, _GuardedSearcher] = {}
        self._lock = threading.Lock()
        self._ask_lock = threading.Lock()  # one generation at a time: they would only slow each other down
        self._generator = generator  # None: settings.generator, loaded by generator()
        self.cancelled = 0  # streamed answers stopped because their client left
        self.generator_error: str | None = None
        self.started = time.time()
        self.searcher(settings.name)  # a missing default index fails here, before the server starts

    def searcher(self, name: str | None = None) -> _GuardedSearcher:
        name = name or self.settings.name
        if not _NAME.match(name):
            raise IndexNotFoundError(f"index name '{name[:80]}' is not valid (use a name from /api/indexes)")
        with self._lock:
            found = self._searchers.get(name)
            if found is None:
                found = _GuardedSearcher(Searcher(self.settings.with_(name=name)))
                self._searchers[name] = found
        return found

    @property
    def loaded(self) -> list[str]:
        return sorted(self._searchers)

    def generator(self):
        if self._generator is None:
            from searchlm.generate import get_generator

            self._generator = get_generator(self.settings.generator, self.settings.device)
        return self._generator

    def warm(self) -> None:
        started = time.perf_counter()
        self.searcher().warm()
        if self.load_generator:
            try:
                self.generator()
            except (ImportError, SearchlmError) as exc:  # search still works; /api/ask reports the problem
                self.generator_error = str(exc)
                log.warning("answer model not loaded: %s", exc)
        log.info("models warm in %.1f s", time.perf_counter() - started)

    def ask(self, request, on_token=None):
        """Answer `request` (an `AskRequest`) with `answer.ask`; `on_token` gets the text as it is generated."""
        try:
            from searchlm.answer import AskOptions, ask
        except ImportError as exc:
            raise ModelError(f"answering is not available here ({exc}); reinstall searchlm with its extras") from None
        searcher = self.searcher(request.name)
        given = {k: v for k, v in request.model_dump().items() if v is not None and k not in ("question", "name")}
        known = {f.name for f in dataclasses.fields(AskOptions)}
        options = AskOptions(**{k: v for k, v in {**self.ask_defaults, **given}.items() if k in known})
        with self._ask_lock:
            return ask(searcher, request.question, options, on_token=on_token, generator=self.generator())

    def ask_json(self, request, on_token=None) -> dict:
        """`Answer.to_json()` with each citation's and passage's `doc_id`, so a page can open the document."""
        data = self.ask(request, on_token).to_json()
        searcher = self.searcher(request.name)
        items = [x for key in ("citations", "passages") for x in data.get(key) or [] if isinstance(x, dict)]
        ids = {x["chunk_id"] for x in items if x.get("chunk_id") is not None}
        with searcher.lock:
            rows = searcher.store.chunks_by_id(ids)
        for x in items:
            row = rows.get(x.get("chunk_id"))
            if row is not None:
                x.setdefault("doc_id", row.doc_id)
                x.setdefault("rel_path", row.path)
        return data

    def close(self) -> None:
        with self._lock:
            for s in self._searchers.values():
                s.close()
            self._searchers.clear()

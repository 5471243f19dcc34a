"""What the server keeps loaded between requests: a pool of searchers per index and the answer generator.

A `Searcher` holds one SQLite connection, which one thread may use at a time. Each index gets a pool of
searchers with their own read connections that share one FAISS index, the rerankers and one ONNX query encoder
that encodes the queries of concurrent searches in one batch (`embed.batching`), so concurrent searches run in
parallel instead of queueing on one lock. Answers are generated one at a time, and at most ASK_QUEUE wait: past that a request gets
503 with Retry-After instead of a timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time

from searchlm.errors import (
    DiskFullError, DocumentNotFoundError, IndexBusyError, IndexDamagedError, IndexMismatchError, IndexNotFoundError,
    InputError, ModelError, SearchlmError, ServerBusyError,
)
from searchlm.search import Searcher
from searchlm.settings import Settings, check_index_name

log = logging.getLogger("searchlm.server")

# Read connections per index. Many, though there are few cores: a search spends most of its time in the shared
# query encoder, and the more searches wait there together, the larger (and cheaper per query) its batches.
# Below the thread pool FastAPI runs requests in (40), so a connection is free by the time a thread wants one.
POOL_SIZE = 32
# Threads running the Python side of searches at once, per index (embed.batching.Gate); those waiting for the
# query encoder are not counted. One: a second gained ~5% in time for 30% more CPU on 2 cores, and 32 at once took
# four times the CPU of one (every SQLite step lets the GIL go, and each hand-off is a context switch).
ACTIVE_SEARCHES = 1
ASK_QUEUE = 4  # answers generating or waiting; more get 503
ASK_RETRY_SECONDS = 10
# The HTTP status of each library error, most specific first.
_STATUS = (
    (DocumentNotFoundError, 404), (IndexNotFoundError, 404), (IndexMismatchError, 409), (IndexBusyError, 503),
    (ServerBusyError, 503), (ModelError, 503), (DiskFullError, 507), (IndexDamagedError, 500), (InputError, 400),
    (SearchlmError, 400),
)


def status_for(exc: SearchlmError) -> int:
    return next(code for kind, code in _STATUS if isinstance(exc, kind))


class SearcherPool:
    """Searchers of one index, leased one per request thread; they share the heavy, thread-safe parts."""

    def __init__(self, settings: Settings, size: int = POOL_SIZE):
        from searchlm.embed.batching import Gate, QueryBatcher

        self.settings = settings
        self.size = size
        self._first = Searcher(settings)  # a missing or damaged index fails here
        self._first._warm = True  # a server: tuned for many queries
        # One ONNX session for all, loaded on the first dense search, batching queries that arrive together.
        self.gate = Gate(ACTIVE_SEARCHES)
        self.encoder = QueryBatcher(self._first.load_encoder, gate=self.gate)
        self._first._encoder = self.encoder
        self._free: queue.LifoQueue = queue.LifoQueue()
        self._free.put(self._first)
        self._made = 1
        self._lock = threading.Lock()
        self._all = [self._first]

    @property
    def manifest(self):
        return self._first.manifest

    def warm(self) -> None:
        with self.lease() as s:
            s.warm()

    @contextlib.contextmanager
    def lease(self):
        """A searcher for this thread alone until the block ends; a new one while fewer than `size` exist."""
        try:
            searcher = self._free.get_nowait()
        except queue.Empty:
            searcher = self._grow() or self._free.get()
        try:
            yield searcher
        finally:
            self._free.put(searcher)

    def _grow(self) -> Searcher | None:
        with self._lock:
            if self._made >= self.size:
                return None
            self._made += 1
        first = self._first
        searcher = Searcher(self.settings)
        searcher._warm = first._warm
        searcher._encoder = self.encoder
        searcher._rerankers = first._rerankers  # models load once per index, not once per connection
        # Spelling corrections and what they read of the vocabulary, once per index (under one lock)
        searcher._corrections, searcher._lexicon = first._corrections, first._lexicon
        searcher._spelling_lock = first._spelling_lock
        if first._vectors is not None:
            searcher._vectors, searcher._vectors_generation = first._vectors, first._vectors_generation
        with self._lock:
            self._all.append(searcher)
        return searcher

    def search(self, query, options=None, **kwargs):
        # Leased first: a thread in the gate never waits for a searcher. A reranked search is not gated: its
        # model runs for long with the GIL let go, and would hold every plain search up meanwhile.
        reranked = getattr(options, "rerank", None) or kwargs.get("rerank")
        with self.lease() as s, contextlib.nullcontext() if reranked else self.gate:
            return s.search(query, options, **kwargs)

    def close(self) -> None:
        for s in self._all:
            s.close()


class Engines:
    """Everything a request needs, loaded once: a searcher pool per index (on first use) and the generator."""

    def __init__(self, settings: Settings, load_generator: bool = True, ask_defaults: dict | None = None,
                 generator=None):
        self.settings = settings
        self.load_generator = load_generator
        self.ask_defaults = dict(ask_defaults or {})  # AskOptions values a request does not set
        self._searchers: dict[str, SearcherPool] = {}
        self._lock = threading.Lock()
        self._ask_lock = threading.Lock()  # one generation at a time: they would only slow each other down
        self._ask_slots = threading.BoundedSemaphore(ASK_QUEUE)
        self._generator = generator  # None: settings.generator, loaded by generator()
        self.cancelled = 0  # streamed answers stopped because their client left
        self.generator_error: str | None = None
        self.started = time.time()
        self.searcher(settings.name)  # a missing default index fails here, before the server starts

    def searcher(self, name: str | None = None) -> SearcherPool:
        name = check_index_name(name or self.settings.name)
        with self._lock:
            found = self._searchers.get(name)
            if found is None:
                found = SearcherPool(self.settings.with_(name=name))
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

    def check_ask_queue(self) -> None:
        """ServerBusyError when ASK_QUEUE questions are already generating or waiting."""
        if self._ask_slots._value <= 0:  # a glance, not a reservation: ask() takes the slot
            raise ServerBusyError(
                f"{ASK_QUEUE} questions are already being answered or waiting; ask again in a few seconds"
            )

    def ask(self, request, on_token=None, heartbeat=None):
        """Answer `request` (an `AskRequest`) with `answer.ask`; `on_token` gets the text as it is shown,
        `heartbeat` is called as the model writes (raise from it to stop)."""
        try:
            from searchlm.answer import AskOptions, ask
        except ImportError as exc:
            raise ModelError(f"answering is not available here ({exc}); reinstall searchlm with its extras") from None
        searcher = self.searcher(request.name)
        given = {k: v for k, v in request.model_dump().items() if v is not None and k not in ("question", "name")}
        known = {f.name for f in dataclasses.fields(AskOptions)}
        options = AskOptions(**{k: v for k, v in {**self.ask_defaults, **given}.items() if k in known})
        if not self._ask_slots.acquire(blocking=False):
            raise ServerBusyError(
                f"{ASK_QUEUE} questions are already being answered or waiting; ask again in a few seconds"
            )
        try:
            with self._ask_lock, searcher.lease() as leased:
                return ask(leased, request.question, options, on_token=on_token, generator=self.generator(),
                           heartbeat=heartbeat)
        finally:
            self._ask_slots.release()

    def ask_json(self, request, on_token=None, heartbeat=None) -> dict:
        """`Answer.to_json()` with each citation's and passage's `doc_id`, so a page can open the document."""
        data = self.ask(request, on_token, heartbeat).to_json()
        searcher = self.searcher(request.name)
        items = [x for key in ("citations", "passages") for x in data.get(key) or [] if isinstance(x, dict)]
        ids = {x["chunk_id"] for x in items if x.get("chunk_id") is not None}
        with searcher.lease() as leased:
            rows = leased.store.chunks_by_id(ids)
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

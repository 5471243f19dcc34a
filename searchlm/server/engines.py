"""What the server keeps loaded between requests: per index, a search queue and a pool of searchers; the
answer generator.

Plain searches (no reranker) go to the index's `SearchQueue`: one thread takes the searches waiting when it is
free, up to MAX_BATCH, encodes their queries in one ONNX call and runs them one after another
(`Searcher.search_each`). Under a burst this is what is cheapest on few cores: a batch of 16 short queries
costs about half the encoder CPU of 16 single ones, and one thread running searches hands the GIL to nobody but
the event loop (32 request threads each running a search took four times the CPU). Other requests (documents,
answers, reranked searches) lease a searcher from the pool: each has its own SQLite read connection and they
share the vector index, the rerankers and one ONNX query encoder (one `SearchResources`, handed to each). Answers are generated one at a time, and at most
ASK_QUEUE wait: past that a request gets 503 with Retry-After instead of a timeout.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable

from searchlm.errors import (
    DiskFullError, DocumentNotFoundError, IndexBusyError, IndexDamagedError, IndexMismatchError, IndexNotFoundError,
    InputError, ModelError, SearchlmError, ServerBusyError,
)
from searchlm import IndexWatch, Searcher, SearchResources
from searchlm.settings import Settings, check_index_name

log = logging.getLogger("searchlm.server")

# Read connections per index for the requests that are not plain searches (documents, answers, reranked searches).
POOL_SIZE = 8
# Searches a queue takes at once. Measured on 2 cores with a burst of 200 6-word queries (benchmarks/faults.py
# http): the encoder sorts a batch by token count and pads each run of similar lengths only to its longest, so a
# larger batch pads less; past ~32 a batch's first query waits for all the others' searches.
MAX_BATCH = 32
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


class SearchQueue:
    """Plain searches of one index, run by one thread of their own in batches (see the module's docstring)."""

    def __init__(self, open_searcher: Callable[[], Searcher], max_batch: int = MAX_BATCH):
        # Opened by the queue's thread on its first batch, after the server has warmed the index's first searcher,
        # so it shares that searcher's vector index instead of loading a second copy.
        self._open_searcher = open_searcher
        self.searcher: Searcher | None = None
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: collections.deque = collections.deque()
        self._closed = False
        self.batches = 0  # batches run, and the searches in them (tests and benchmarks read them)
        self.searches = 0
        self._thread = threading.Thread(target=self._run, name="searchlm-searches", daemon=True)
        self._thread.start()

    def submit(self, query: str, options) -> concurrent.futures.Future:
        """A future of `searcher.search(query, options)`: its hits, or the error it raised."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            if self._closed:
                raise ServerBusyError("the server is shutting down; search again once it is back")
            self._waiting.append((query, options, future))
            self._cond.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
            batch = [item for item in batch if item[2].set_running_or_notify_cancel()]
            try:
                if self.searcher is None:
                    self.searcher = self._open_searcher()
                results = self.searcher.search_each([(query, options) for query, options, _ in batch])
            except Exception as exc:  # noqa: BLE001 - not hidden: each search of the batch raises it to its caller
                results = [exc] * len(batch)
            for (_, _, future), found in zip(batch, results):
                if isinstance(found, BaseException):
                    future.set_exception(found)
                else:
                    future.set_result(found)
            self.batches += 1
            self.searches += len(batch)

    def close(self) -> None:
        """Stop taking searches; those already waiting still run."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=30)


class SearcherPool:
    """Searchers of one index: a search queue for plain searches, and searchers leased one per request thread
    for the rest; they share the heavy, thread-safe parts."""

    def __init__(self, settings: Settings, size: int = POOL_SIZE):
        self.settings = settings
        self.size = size
        # What the searchers of this index share: one encoder, store, set of rerankers and spelling cache,
        # tuned for many queries (a server).
        self.resources = SearchResources(warm=True)
        self._first = Searcher(settings, resources=self.resources)  # a missing or damaged index fails here
        self._free: queue.LifoQueue = queue.LifoQueue()
        self._free.put(self._first)
        self._made = 1
        self._lock = threading.Lock()
        self._all = [self._first]
        self._queue: SearchQueue | None = None
        self._queue_lock = threading.Lock()
        # Whether the index on disk is still this one: a dropped or re-created index is closed (indexing/identity.py)
        self.watch = IndexWatch(self._first.index_dir)

    @property
    def manifest(self):
        return self._first.manifest

    @property
    def queue(self) -> SearchQueue:
        """The index's search queue, started on first use with a searcher of its own."""
        if self._queue is None:
            with self._queue_lock:
                if self._queue is None:
                    self._queue = SearchQueue(self._new_searcher)
        return self._queue

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
        return self._new_searcher()

    def _new_searcher(self) -> Searcher:
        """Another connection to the index, sharing the pool's loaded parts (`resources`)."""
        searcher = Searcher(self.settings, resources=self.resources)
        searcher.encoder  # noqa: B018 - one ONNX session per index (thread-safe), loaded now if not yet
        with self._lock:
            self._all.append(searcher)
        return searcher

    def submit(self, query, options) -> concurrent.futures.Future:
        """A future of the hits of a search that has no reranker (the search queue's batches)."""
        return self.queue.submit(query, options)

    def search(self, query, options):
        """The hits of `query`, searched in this thread with a leased searcher: for a reranked search, whose model
        runs for long and would hold the queue's other searches up (plain searches go to `submit`)."""
        with self.lease() as s:
            return s.search(query, options)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()
        for s in self._all:
            s.close()
        self.resources.close()

    def retire(self, wait: float = 60.0) -> threading.Thread:
        """Close this pool once the requests using it are done (at most `wait` seconds), in a thread of its own:
        its index was dropped or replaced, and new requests already go elsewhere."""

        def close_when_returned() -> None:
            if self._queue is not None:
                self._queue.close()  # the searches already waiting still run
            deadline = time.monotonic() + wait
            while self._free.qsize() < self._made and time.monotonic() < deadline:
                time.sleep(0.05)
            for s in self._all:
                s.close()
            self.resources.close()

        thread = threading.Thread(target=close_when_returned, name="searchlm-retire", daemon=True)
        thread.start()
        return thread


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
        self._asking = 0  # questions generating or waiting for the generator (at most ASK_QUEUE)
        self._asking_lock = threading.Lock()
        self._generator = generator  # None: settings.generator, loaded by generator()
        self.cancelled = 0  # streamed answers stopped because their client left
        self.generator_error: str | None = None
        self.started = time.time()
        self.searcher(settings.name)  # a missing default index fails here, before the server starts

    def searcher(self, name: str | None = None) -> SearcherPool:
        name = check_index_name(name or self.settings.name)
        with self._lock:
            found = self._searchers.get(name)
            if found is not None and found.watch.state() != "same":
                log.info("index '%s' was %s on disk: closing the copy this server opened", name,
                         "dropped" if found.watch.state() == "gone" else "replaced")
                del self._searchers[name]
                found.retire()
                found = None
            if found is None:
                found = SearcherPool(self.settings.with_(name=name))
                found.queue  # noqa: B018 - its thread starts now (it opens its searcher on the first search)
                self._searchers[name] = found
        return found

    def loaded_searcher(self, name: str | None = None) -> SearcherPool | None:
        """The pool of an index already loaded and still the one on disk (no waiting: an async request can ask),
        else None (then `searcher` opens it, or says it is gone)."""
        found = self._searchers.get(check_index_name(name or self.settings.name))
        return found if found is not None and found.watch.state() == "same" else None

    @property
    def loaded(self) -> list[str]:
        return sorted(self._searchers)

    @property
    def generator_loaded(self) -> bool:
        return self._generator is not None

    def generator(self):
        if self._generator is None:
            from searchlm import get_generator

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
        if self._asking >= ASK_QUEUE:  # a glance, not a reservation: ask() takes the slot
            raise ServerBusyError(
                f"{ASK_QUEUE} questions are already being answered or waiting; ask again in a few seconds"
            )

    def ask(self, request, on_token=None, heartbeat=None):
        """Answer `request` (an `AskRequest`) with `answer.ask`; `on_token` gets the text as it is shown,
        `heartbeat` is called as the model writes (raise from it to stop)."""
        try:
            from searchlm.search.answer import AskOptions, ask
        except ImportError as exc:
            raise ModelError(f"answering is not available here ({exc}); reinstall searchlm with its extras") from None
        searcher = self.searcher(request.name)
        given = {k: v for k, v in request.model_dump().items() if v is not None and k not in ("question", "name")}
        known = {f.name for f in dataclasses.fields(AskOptions)}
        options = AskOptions(**{k: v for k, v in {**self.ask_defaults, **given}.items() if k in known})
        with self._asking_lock:
            if self._asking >= ASK_QUEUE:
                raise ServerBusyError(
                    f"{ASK_QUEUE} questions are already being answered or waiting; ask again in a few seconds"
                )
            self._asking += 1
        try:
            with self._ask_lock, searcher.lease() as leased:
                return ask(leased, request.question, options, on_token=on_token, generator=self.generator(),
                           heartbeat=heartbeat)
        finally:
            with self._asking_lock:
                self._asking -= 1

    def ask_json(self, request, on_token=None, heartbeat=None) -> dict:
        """`Answer.to_json()`: each citation and passage carries its `doc_id` and stored `rel_path`, so a page
        can open the document."""
        return self.ask(request, on_token, heartbeat).to_json()

    def close(self) -> None:
        with self._lock:
            for s in self._searchers.values():
                s.close()
            self._searchers.clear()

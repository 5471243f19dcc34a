"""`QueryBatcher`: queries that arrive together from many threads (a server under load) are encoded in one call.

One ONNX call for 16 short queries costs half what 16 calls do: the weights are read once, the matrix products
are larger, and the per-call overhead is paid once. No thread of its own and no timer: a thread that finds fewer
than `parallel` batches running encodes what is waiting (its own query first, up to `max_batch`), the others wait
for their vector, and whoever finds work left when a batch ends takes the next one. A lone query is encoded at
once.

A batch is the oldest waiting query and the waiting ones closest to it in token count (`encoder.token_count`
when the encoder has one), and the encoder pads each run of similar lengths only to its longest: a burst of
6-word queries of 8 to 82 tokens taken in arrival order paid for 36 tokens a query instead of 15.

Results are bit-for-bit those of one query at a time (padded positions are masked out and no weights are
prepacked; tested): the server's scores equal `searchlm search --json`'s.

`Gate`: at most a few threads run the Python side of searches at once, and a thread waiting for (or running) the
encoder steps out of it. Every SQLite step, FAISS call and numpy call lets the GIL go, and with 32 request
threads each of those hand-offs was a context switch: the search part of a query took 22-46 ms of CPU from 32
threads against 5-6 ms from one.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable

import numpy as np


# Measured with MiniLM on 2 cores, one ONNX thread, queries of ~15 tokens sorted by length: 15 ms a query alone,
# 10 in pairs, 7.5-9 in batches of 8 to 24, 12 in batches of 32 (their activations outgrow the cache).
MAX_BATCH = 16
PARALLEL = 1  # batches encoded at once: with 2 on 2 cores, batches shrank to 1-2 queries and a burst took 40% longer


class Gate:
    """At most `size` threads inside at once (`with gate:`); `with gate.outside():` lets another in while this
    thread blocks on something else, and takes its place back after. A thread that is not inside passes."""

    def __init__(self, size: int):
        self.size = size
        self._slots = threading.Semaphore(size)
        self._inside = threading.local()

    def __enter__(self):
        self._slots.acquire()
        self._inside.flag = True
        return self

    def __exit__(self, *exc):
        self._inside.flag = False
        self._slots.release()

    @contextlib.contextmanager
    def outside(self):
        if not getattr(self._inside, "flag", False):
            yield
            return
        self.__exit__()
        try:
            yield
        finally:
            self.__enter__()


class _Waiting:
    __slots__ = ("error", "length", "text", "vector")

    def __init__(self, text: str, length: int):
        self.text = text
        self.length = length
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None


class QueryBatcher:
    """An embedder whose `embed_query` batches concurrent callers. `load` returns the real encoder; it is called
    once, on first use (a server that only ever runs keyword searches never loads it)."""

    def __init__(self, load: Callable[[], object], max_batch: int | None = None, parallel: int | None = None,
                 gate: Gate | None = None):
        self._load = load
        self.gate = gate  # stepped out of while this thread waits for its vector or encodes a batch
        self._encoder = None
        self.max_batch = max_batch or MAX_BATCH
        self.parallel = parallel or PARALLEL
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._running = 0
        self.batches = 0  # encoder calls, and the queries they encoded (tests and benchmarks read them)
        self.queries = 0

    @property
    def encoder(self):
        if self._encoder is None:
            with self._cond:
                if self._encoder is None:
                    self._encoder = self._load()
        return self._encoder

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        encoder = self.encoder  # loaded before any lock is held for long
        count = getattr(encoder, "token_count", len)
        mine = _Waiting(text, count(text))  # counted here, in the caller's thread, outside the lock
        with self.gate.outside() if self.gate else contextlib.nullcontext(), self._cond:
            self._waiting.append(mine)
            while mine.vector is None and mine.error is None:
                if self._running >= self.parallel or not self._waiting:
                    self._cond.wait()  # for a batch to end: with this query in it, or with the encoder free
                    continue
                batch = self._take()  # the oldest waiting and its neighbours in length, this one among them or not
                self._running += 1
                self._cond.release()
                try:
                    _encode(encoder, batch)
                finally:
                    self._cond.acquire()
                    self._running -= 1
                    self.batches += 1
                    self.queries += len(batch)
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.vector


    def _take(self) -> list[_Waiting]:
        """Remove and return the oldest waiting query and the (max_batch - 1) others closest to it in length
        (the older first among equals): the oldest always goes, so no query waits behind ever newer ones."""
        waiting = self._waiting
        if len(waiting) <= self.max_batch:
            self._waiting = []
            return waiting
        oldest = waiting[0].length
        near = sorted(range(1, len(waiting)), key=lambda i: (abs(waiting[i].length - oldest), i))
        chosen = {0, *near[: self.max_batch - 1]}
        self._waiting = [w for i, w in enumerate(waiting) if i not in chosen]
        return [waiting[i] for i in sorted(chosen)]


def _encode(encoder, batch: list[_Waiting]) -> None:
    """Fill each waiting query's vector (or error)."""
    try:
        vectors = encoder.embed([w.text for w in batch])
    except BaseException as exc:  # noqa: BLE001 - every waiting caller gets the error, re-raised in its thread
        for w in batch:
            w.error = exc
        return
    for w, v in zip(batch, vectors):
        w.vector = v

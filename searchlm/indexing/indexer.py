"""`index_folder`: walk a folder, extract, chunk, embed what is new, and keep SQLite, the store and the manifest in step.

Incremental by design: a file whose size and mtime are unchanged is not read; a changed file is re-chunked but
only chunks with a new content hash are embedded (vectors are reused by hash, also across files, so a moved
file costs nothing); documents whose files are gone are removed. Each document is written in its own SQLite
transaction, so an interrupted run keeps everything committed so far and the next run completes it.

Streaming: a reader thread extracts and chunks while the encoder embeds the previous window, and documents are
committed window by window (about `EMBED_BATCH` chunks), so memory stays flat however many files there are and
a kill loses at most the window in flight.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchlm.indexing.chunking import ChunkerSettings, TokenCounter, chunk_document
from searchlm.errors import (
    ExtractionError, IndexMismatchError, IndexNotFoundError, InputError, ModelError, NothingToIndexError,
    SearchlmError,
)
from searchlm.extract import READER_VERSIONS, SUPPORTED, extract, kind_of, read_regular, wall_clock_exceeded
from searchlm.extract.markdown import MYST_REFERENCE
from searchlm.indexing.lock import write_lock
from searchlm.diskspace import disk_errors
from searchlm.indexing.manifest import DB_FILE, ENCODER_DIR, Manifest
from searchlm.records import Chunk, IndexReport
from searchlm.settings import DEFAULT_MODEL, Settings
from searchlm.indexing.database import Database
from searchlm.stores.base import ComposedStore, StoreSpec, open_store, parse_store, store_notices
from searchlm.indexing.walk import FoundFile, walk

log = logging.getLogger(__name__)

EMBED_BATCH = 256  # chunks per window: embedded, then its documents are committed
MIN_WINDOW = 32  # when the reader is behind, embed what has arrived once it fills one encoder batch
FEED_CHUNKS = 1024  # chunks read ahead of the encoder, at most (plus one document)
HEAVY_KINDS = {"pdf", "docx", "html"}  # extracted in a worker process (see _IndexRun._extractor)

# (phase, done, total), called from the indexing threads (the reader thread reports "read"). Phases: "scan"
# (walking the folder; total 0 until it is done), "read" (files checked or read, of all found), "embed" (chunks
# embedded, of those found to need it so far: called when that total grows, once the model is loaded, and after
# each call to the embedder), "bytes" (bytes of the found files whose chunks are counted in embed's total, of all
# found files' bytes: what a display projects embed's final total from while files are still being read; once
# they are all counted embed's total is final, and a last "embed" call follows).
Progress = Callable[[str, int, int], None]


@dataclass
class _Pending:
    file: FoundFile
    kind: str
    title: str
    content_hash: str
    chunks: list[Chunk]
    replaces: bool


def index_folder(
    root: Path,
    settings: Settings,
    progress: Progress | None = None,
    chunker: ChunkerSettings | None = None,
    embedder=None,
    follow_symlinks: bool = False,
    on_model_load: Callable[[str], None] | None = None,
    on_file: Callable[[str | None], None] | None = None,
) -> IndexReport:
    """Index `root` into the index `settings.name` under `settings.home`. Returns what changed.

    `embedder`: an already loaded embedder of the index's model (any object with `embed(texts)`, `dimension`,
    `precision`); by default the local sentence-transformers encoder loads when something needs embedding.
    `on_model_load(message)` is called before a model loads, so a user sees why the run pauses. `on_file(path)`
    is called (from the reader thread) when the reader starts reading a file and `on_file(None)` when it has
    extracted and chunked it, so a display can name a file that holds the run up.

    One bad file never stops a run: whatever keeps a file from being read (permissions, encoding, a parser's
    error, a special file, a per-file limit) skips it with a one-line reason in `report.skipped`, and a document
    of the index whose file is skipped is removed. Symlinks are read only when they stay inside `root`, and hard
    links only when all their names are in it, unless `follow_symlinks`; a file that changed into something else
    between the walk and the read is skipped. A disk that fills up is a DiskFullError naming the path; every
    document committed before it is kept."""
    started = time.perf_counter()
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"path '{root}' does not exist (check the spelling, or pass the folder to index)")
    if not root.is_dir():
        raise InputError(f"path '{root}' is a file, not a folder (pass the folder that contains it)")
    root = root.resolve()
    from searchlm.indexing.homes import locate, remember_home

    settings = settings.with_(home=locate(settings.name, settings.home) or settings.home)  # found from anywhere
    index_dir = settings.index_dir
    report = IndexReport(name=settings.name)
    progress = progress or (lambda phase, done, total: None)

    with disk_errors(index_dir), write_lock(index_dir, settings.name):
        manifest = _existing_manifest(index_dir, root, settings)
        chunker = chunker or ChunkerSettings(**(manifest.chunker if manifest else {}))
        progress("scan", 0, 0)
        # The index home is passed over wherever it sits below root (its files are no documents).
        files = walk(root, follow_symlinks=follow_symlinks, skipped=report.skipped, exclude=(settings.home,))
        progress("scan", len(files), len(files))
        report.files_seen = len(files) + len(report.skipped)
        store = Database(index_dir / DB_FILE, existing=manifest is not None)
        state = None
        try:
            stored = store.documents()
            if not files and not stored:
                exts = " ".join(sorted(set(SUPPORTED)))
                raise NothingToIndexError(
                    f"no readable documents in '{root}' (searchlm reads {exts}; point it at a folder that has some)"
                )
            state = _IndexRun(store, index_dir, root, settings, manifest, chunker, report, progress, embedder)
            state._notify = on_model_load or (lambda message: None)
            state._on_file = on_file or (lambda path: None)
            state.run(files, stored)
        except BaseException:
            # Leave no empty index behind: a first run that committed nothing (nothing to read, an embedder or
            # Ray cluster that could not be used) removes its folder; one that committed documents keeps them.
            empty = manifest is None and not _documents(store)
            store.close()
            if empty:
                shutil.rmtree(index_dir, ignore_errors=True)
            raise
        finally:
            store.close()
            if state is not None and embedder is None:  # one this run loaded: Ray's actors give their CPUs back
                getattr(state._embedder, "close", lambda: None)()
    remember_home(settings.home)
    report.seconds = time.perf_counter() - started
    return report


def _documents(store: Database) -> int:
    try:
        return store.counts()[0]
    except sqlite3.Error:  # a store that cannot be read is not known to be empty: keep it
        return 1


def _existing_manifest(index_dir: Path, root: Path, settings: Settings) -> Manifest | None:
    """The index's manifest, or None for a new index. A damaged one or one from a newer searchlm is refused
    (IndexDamagedError / IndexMismatchError), never rebuilt over."""
    try:
        manifest = Manifest.load(index_dir)
    except IndexNotFoundError:
        return None
    if manifest.root and Path(manifest.root) != root:
        raise InputError(
            f"index '{settings.name}' holds documents from '{manifest.root}', not '{root}'",
            "use another index name, or drop this index first",
            f"use another --name, or `searchlm drop {settings.name}` first",
        )
    if settings.store:
        wanted, held = parse_store(settings.store, settings.name), StoreSpec.from_json(manifest.store)
        if wanted.to_json() != held.to_json():
            # The vectors are in SQLite: the new store is filled from there (no re-encoding); the old one is left.
            log.info("index %s moves its vectors from %s to %s", settings.name, held.describe(), wanted.describe())
            manifest.store = wanted.to_json()
    if settings.model and settings.model != manifest.model:
        raise IndexMismatchError(
            f"index '{settings.name}' was built with model '{manifest.model}', not '{settings.model}'",
            "to change model, drop the index first, then index the folder with the new model",
            f"to change model: `searchlm drop {settings.name}` then "
            f"`searchlm index {root} --name {settings.name} --model {settings.model}`",
        )
    return manifest


class _IndexRun:
    def __init__(self, store, index_dir, root, settings, manifest, chunker, report, progress, embedder):
        self.store = store
        self.index_dir = index_dir
        self.root = root
        self.settings = settings
        self.manifest = manifest
        self.chunker = chunker
        self.report = report
        self.progress = progress
        self._embedder = embedder
        # An adapted index (`searchlm adapt`) encodes new passages with its own fine-tuned encoder.
        self.model = manifest.encoder_source(index_dir) if manifest else (settings.model or DEFAULT_MODEL)
        self._counter: TokenCounter | None = None
        self._notify: Callable[[str], None] = lambda message: None
        self._to_embed = 0
        self._bytes_done = self._bytes_total = 0  # the "bytes" progress phase
        self._on_file: Callable[[str | None], None] = lambda path: None
        self._pool = None  # the extraction process, started by the first PDF, DOCX or HTML file
        self._targets = None  # the folder's Sphinx labels and titles, scanned when the first .rst file is read
        self._encoder_checked = False  # the query encoder was checked (and put back if need be) this run

    # Models load only when something needs embedding: an unchanged re-run imports no torch.
    @property
    def embedder(self):
        if self._embedder is None:
            from searchlm.embed import load_embedder

            backend = self.settings.embedder
            if backend == "ray":
                where = self.settings.ray_address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
                self._notify(f"Embedding with Ray on {where}: each actor loads '{self.model}' once")
                options = {"address": self.settings.ray_address}
            else:
                self._notify(f"Loading embedding model '{self.model}' (a few seconds)")
                options = {}
            self._embedder = load_embedder(self.model, backend, device=self.settings.device, **options)
        return self._embedder

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            from searchlm.embed.base import resolve_model

            self._counter = TokenCounter(_tokenizer_file(self.index_dir, resolve_model(self.model)))
        return self._counter

    def run(self, files: list[FoundFile], stored: dict) -> None:
        """Stream the files through read -> chunk -> embed -> commit in windows of about `EMBED_BATCH` chunks.

        A reader thread decides, hashes, extracts and chunks; this thread embeds and does every SQLite write.
        At most `FEED_CHUNKS` chunks wait between the two, so memory does not grow with the corpus."""
        report = self.report
        # A document whose file the walk skipped (now a symlink out of the folder, a folder, unreadable) is gone
        # too: the index never keeps text that could not be read from the folder as it is now.
        present = {f.rel for f in files}
        gone = {path: row for path, row in stored.items() if path not in present}
        used = self.manifest.readers if self.manifest else {}
        stale = {kind for kind, version in READER_VERSIONS.items() if used.get(kind, 1) < version}
        feed = _Feed(FEED_CHUNKS)
        reader = threading.Thread(
            target=self._read, args=(files, stored, {r.content_hash: r for r in gone.values()}, stale, feed),
            name="searchlm-reader", daemon=True,
        )
        reader.start()
        window: list[_Pending] = []
        window_chunks = 0
        documents = files_done = 0
        self._bytes_total = sum(f.size for f in files)
        self.progress("bytes", 0, self._bytes_total)
        self.progress("read", 0, len(files))
        finished = False
        try:
            while True:
                # Wait for more only while the window is small: a slow reader (PDFs) should not idle the encoder.
                item = feed.get(block=window_chunks < self.min_window)
                if item is None or item is _END:
                    if window:
                        self._flush(window)
                        window, window_chunks = [], 0
                    if item is _END:
                        finished = True
                        break
                    continue
                what, payload = item
                if what == "error":
                    raise payload
                files_done += 1
                if what != "doc":  # a document's bytes count once its chunks do, when its window is flushed
                    self._bytes_done += files[files_done - 1].size  # the reader hands files over in order
                    self.progress("bytes", self._bytes_done, self._bytes_total)
                if what == "unchanged":
                    report.unchanged += 1
                elif what == "touch":
                    row, f = payload
                    self.store.touch_document(row.id, f.size, f.mtime_ns)  # touched, not changed
                    report.unchanged += 1
                elif what == "move":
                    old, f = payload
                    self.store.rename_document(old.id, f.rel, f.size, f.mtime_ns)
                    gone.pop(old.path, None)
                    report.moved.append((old.path, f.rel))
                elif what == "skip":
                    report.skipped.append(payload)
                    if payload[0] in stored:  # its old text is not kept (swapped for a symlink, unreadable, ...)
                        gone[payload[0]] = stored[payload[0]]
                else:
                    documents += 1
                    window.append(payload)
                    window_chunks += len(payload.chunks)
                    if window_chunks >= self.window_size:
                        self._flush(window)
                        window, window_chunks = [], 0
        finally:
            feed.stop()
            if not finished:  # an error or Ctrl-C: a file the worker is in would hold the exit up to its limit
                self._stop_extractor()
            reader.join(timeout=5)
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
        if self._to_embed:  # every byte is counted now: embed's total is final (the last files may have added none)
            self.progress("embed", report.chunks_embedded, self._to_embed)

        if not documents and len(stored) == len(gone) and not report.moved:
            reasons = "; ".join(f"{p}: {why}" for p, why in report.skipped[:3])
            removed = ""
            if gone and self.manifest is not None and "." not in {p for p, _ in report.skipped}:
                # The folder was read and holds nothing readable now: the old documents go (a folder that
                # could not be read at all may be a mount not there yet, and keeps them).
                self.store.delete_documents(gone)
                report.removed.extend(sorted(gone))
                self._finish()
                removed = f"; {_count(len(gone), 'document')} indexed from it before removed"
            raise NothingToIndexError(
                f"no readable documents in '{self.root}' ({len(report.skipped)} skipped: {reasons}{removed})"
                " (point searchlm at a folder of text, Markdown, HTML, PDF or DOCX files)"
            )
        if gone:
            self.store.delete_documents(gone)
            report.removed.extend(sorted(gone))
        if self.manifest is None:  # only moves and deletions: nothing was embedded, but the index must describe itself
            self._ensure_manifest_and_encoder()
        self._finish()

    @property
    def window_size(self) -> int:
        """Chunks per window: EMBED_BATCH, or more for an embedder that spreads each call over many workers."""
        return max(EMBED_BATCH, getattr(self._embedder_class(), "window", 0) or 0)

    @property
    def min_window(self) -> int:
        """Chunks worth embedding without waiting for more: one encoder batch, or a whole window for an embedder
        that spreads each call over many workers (Ray: a window gives every actor batches to run)."""
        return self.window_size if getattr(self._embedder_class(), "window", 0) else MIN_WINDOW

    def _embedder_class(self):
        if self._embedder is None and self.settings.embedder == "ray":
            from searchlm.embed.ray import RayEmbedder

            return RayEmbedder
        return self._embedder

    def _read(self, files: list[FoundFile], stored: dict, gone_by_hash: dict, stale: set, feed: "_Feed") -> None:
        """Reader thread: one item per file into `feed`; never touches SQLite. It reports the "read" phase: how
        many files are read is known here, while the main thread may be busy embedding."""

        def hand_over(n: int, item, weight: int = 0) -> None:
            self.progress("read", n, len(files))
            feed.put(item, weight=weight)

        try:
            for n, f in enumerate(files, 1):
                feed.check()
                row = stored.get(f.rel)
                reread = bool(stale) and kind_of(f.path) in stale  # same bytes, but this reader now reads them better
                if row is not None and row.size == f.size and row.mtime_ns == f.mtime_ns and not reread:
                    hand_over(n, ("unchanged", None))
                    continue
                counter = self.counter  # outside the per-file guard: a tokenizer that fails is not one file's fault
                self._on_file(f.rel)
                try:
                    data = _read_found(f)
                    data_hash = "sha256:" + hashlib.sha256(data).hexdigest()
                    if row is not None and row.content_hash == data_hash and not reread:
                        hand_over(n, ("touch", (row, f)))
                        continue
                    if row is None and data_hash in gone_by_hash and not reread:
                        hand_over(n, ("move", (gone_by_hash.pop(data_hash), f)))
                        continue
                    kind = kind_of(f.path)
                    if kind in HEAVY_KINDS:
                        doc = self._extract_apart(f.path, data)
                    else:
                        refers = kind == "rst" or (kind == "md" and MYST_REFERENCE.search(data))
                        doc = extract(f.path, data, self._sphinx_targets(files) if refers else None)
                    chunks = chunk_document(doc, counter, self.chunker)
                except _Stopped:
                    raise
                except ExtractionError as exc:
                    hand_over(n, ("skip", (f.rel, str(exc))))
                    continue
                except (SearchlmError, sqlite3.Error):  # the index's own trouble (a model, the store): not this file's
                    raise
                except Exception as exc:  # anything else about this one file skips it, named, and the run goes on
                    if _disk_full(exc):
                        raise
                    hand_over(n, ("skip", (f.rel, f"could not be read ({type(exc).__name__}: {str(exc)[:120]})")))
                    continue
                finally:
                    data = None
                    self._on_file(None)
                if not chunks:
                    hand_over(n, ("skip", (f.rel, "no text")))
                    continue
                pending = _Pending(f, doc.kind, doc.title, data_hash, chunks, row is not None)
                hand_over(n, ("doc", pending), weight=len(chunks))
            feed.close()
        except _Stopped:
            pass
        except BaseException as exc:  # hand it to the main thread, which raises it
            try:
                feed.put(("error", exc))
                feed.close()
            except _Stopped:
                pass

    def _sphinx_targets(self, files: list[FoundFile]):
        """The labels and titles of every .rst and .md file of the folder, unchanged ones too (a :ref: in a changed
        file may name a section of any other): scanned once a run, and only by a run that reads a .rst file or a
        MyST .md file that refers to one."""
        if self._targets is None:
            from searchlm.extract.targets import scan_targets

            rst = {f.path: f for f in files if kind_of(f.path) in ("rst", "md")}
            self._targets = scan_targets(rst, read=lambda path: _read_found(rst[path]))
        return self._targets

    def _extractor(self):
        """One worker process for PDF, DOCX and HTML: those parsers are pure Python, and in a thread they would
        hold the GIL that the encoder's Python side needs between tensor operations (embedding ran 2x slower)."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            from searchlm.children import die_with_parent

            # spawn: this process runs threads (and maybe torch); a fork of it is not safe. The worker dies with
            # this process, even by kill -9 (and with the reader thread that starts it, whose work it is).
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=die_with_parent, initargs=(os.getpid(),))
        return self._pool

    def _extract_apart(self, path: Path, data: bytes):
        """`extract` in the worker process; a parser that kills its process skips this file only."""
        from concurrent.futures import TimeoutError as Late
        from concurrent.futures.process import BrokenProcessPool

        from searchlm.extract.limits import EXTRACT_WALL_SECONDS

        try:
            # The worker stops a parser at its own limits; this backstop is for one stuck inside a C call.
            return self._extractor().submit(extract, path, data).result(timeout=EXTRACT_WALL_SECONDS + 60)
        except BrokenProcessPool:
            self._pool = None  # the next file gets a new worker
            raise ExtractionError("the parser crashed on this file") from None
        except Late:
            self._stop_extractor()
            raise wall_clock_exceeded(EXTRACT_WALL_SECONDS) from None

    def _stop_extractor(self) -> None:
        """Kill the worker process (stuck in a parser); the next file gets a new one."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):  # no public way to kill a pool's worker
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _ensure_manifest_and_encoder(self) -> None:
        """First run: put the ONNX query encoder in place, then write the manifest, before committing any
        document, so an interrupted first run leaves either no index yet or a searchable one (a private encoder
        copy takes seconds: a manifest written before it left a window with an index and no encoder)."""
        new = self.manifest is None
        if new:
            self.manifest = Manifest(
                name=self.settings.name,
                root=str(self.root),
                model=self.model,
                dimension=self.embedder.dimension,
                chunker=self.chunker.to_json(),
                precision=self.embedder.precision,
                readers=dict(READER_VERSIONS),  # every document of a new index is read by today's readers
                store=parse_store(self.settings.store, self.settings.name).to_json(),
                index_id=uuid.uuid4().hex,
            )
        from searchlm.embed.cache import encoder_problem

        if self._encoder_checked:
            return
        self._encoder_checked = True
        # Missing, a file of it lost, or not the copy recorded (damaged): put it back. Checked by size and time
        # once a run; `check` compares digests.
        # An index from before digests were recorded gets its private copy now (its encoder may be hard links
        # into the shared cache).
        if new or encoder_problem(self.index_dir, recorded=self.manifest.files) is not None or not any(
                k.startswith(ENCODER_DIR + "/") for k in self.manifest.files):
            from searchlm.embed.base import resolve_model
            from searchlm.embed.cache import install_encoder, record_encoder
            from searchlm.embed.onnx import export_onnx

            def export(folder: Path) -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    export_onnx(self._torch_model(), self.model, folder)

            entries = install_encoder(export, self.model, resolve_model(self.model), self.index_dir / ENCODER_DIR)
            record_encoder(self.manifest, entries)
            self.manifest.save(self.index_dir, self.store)

    def _torch_model(self):
        """The sentence-transformers model to export: the embedder's own, or (a remote embedder) a local copy."""
        model = getattr(self.embedder, "model", None)
        if model is None:
            from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

            self._notify(f"Loading embedding model '{self.model}' on this machine to export the query encoder")
            model = SentenceTransformerEmbedder(self.model, device="cpu").model
        return model

    def _flush(self, window: list[_Pending]) -> None:
        """Embed the window's new chunk texts, then commit each of its documents in its own transaction."""
        report = self.report
        hashes = [c.hash for p in window for c in p.chunks]
        known = self.store.vectors_for_hashes(hashes, self.manifest.dimension) if self.manifest else {}
        missing = list(dict.fromkeys(c.embed_text for p in window for c in p.chunks if c.hash not in known))
        hash_of = {c.embed_text: c.hash for p in window for c in p.chunks}
        report.chunks_reused += len(hashes) - len(missing)  # stored vectors, and repeats of a text in the window
        self._to_embed += len(missing)
        # The model loads (and a first run exports the query encoder) before the first batch: neither is
        # embedding time, and the embed phase's clock starts after them.
        if missing:
            self.embedder  # noqa: B018 - the property loads it
        self._ensure_manifest_and_encoder()
        self._bytes_done += sum(p.file.size for p in window)
        self.progress("bytes", self._bytes_done, self._bytes_total)
        if missing:  # the total grew
            self.progress("embed", report.chunks_embedded, self._to_embed)
        if getattr(self._embedder_class(), "window", 0):  # many workers per call (Ray): the window at once
            calls = [missing] if missing else []
        else:  # progress after every two encoder batches
            calls = _even_calls(missing, getattr(self.embedder, "batch_size", 32) if missing else 32)
        for batch in calls:
            embedder = self.embedder
            t0 = time.perf_counter()
            vectors = embedder.embed(batch)
            report.embed_seconds += time.perf_counter() - t0
            if len(vectors) != len(batch):
                raise ModelError(f"the embedder returned {len(vectors)} vectors for {len(batch)} texts",
                                 "check the embedder's embed(texts) returns one row per text")
            for text, vec in zip(batch, vectors):
                known[hash_of[text]] = vec
            report.chunks_embedded += len(batch)
            self.progress("embed", report.chunks_embedded, self._to_embed)
        for p in window:
            vectors = np.vstack([known[c.hash] for c in p.chunks])
            self.store.put_document(
                p.file.rel, p.kind, p.title, p.file.size, p.file.mtime_ns, p.content_hash, p.chunks, vectors
            )
            (report.updated if p.replaces else report.added).append(p.file.rel)

    def _finish(self) -> None:
        manifest = self.manifest
        docs, chunks = self.store.counts()
        self.report.chunks_total = chunks
        tuned = dict(manifest.ann)
        if self.settings.recall is not None:  # kept in the manifest: later runs tune to it too
            manifest.ann["recall_target"] = self.settings.recall
        # The store repairs what it holds (a damaged or missing vector file is rebuilt from SQLite's vectors).
        sync_vectors(self.store, manifest, self.index_dir, self.progress).close()
        self.report.notices.extend(store_notices(manifest, tuned, chunks))
        manifest.documents, manifest.chunks = docs, chunks
        manifest.readers = dict(READER_VERSIONS)
        manifest.updated_at = time.time()
        manifest.save(self.index_dir, self.store)


class _Stopped(Exception):
    """The consumer stopped (an error or Ctrl-C in the main thread): the reader thread ends."""


_END = object()


class _Feed:
    """Hand-over from the reader thread to the encoder, bounded by the number of chunks waiting in it."""

    def __init__(self, budget: int):
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._weights: deque = deque()
        self._waiting = 0
        self._budget = budget
        self._closed = self._stopped = False

    def put(self, item, weight: int = 0) -> None:
        with self._cond:
            # A document bigger than the budget still goes in, alone.
            while self._waiting and self._waiting + weight > self._budget and not self._stopped:
                self._cond.wait()
            if self._stopped:
                raise _Stopped
            self._items.append(item)
            self._weights.append(weight)
            self._waiting += weight
            self._cond.notify_all()

    def get(self, block: bool = True):
        """The next item; None when empty and not blocking; _END once closed and drained."""
        with self._cond:
            while not self._items and not self._closed and block:
                self._cond.wait()
            if not self._items:
                return _END if self._closed else None
            self._waiting -= self._weights.popleft()
            self._cond.notify_all()
            return self._items.popleft()

    def check(self) -> None:
        """Raise _Stopped once the consumer has stopped, so the reader starts no new file."""
        if self._stopped:
            raise _Stopped

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


def sync_vectors(store: Database, manifest: Manifest, index_dir: Path, progress: Progress | None = None) -> ComposedStore:
    """Apply SQLite's pending chunk changes to the index's store, vectors and keywords (no re-encoding; a full
    build when the store is new or cannot be updated) and record it in the manifest (not saved here)."""
    vectors = open_store(index_dir, manifest, store)
    try:
        vectors.sync(store, manifest, progress)
    except BaseException:
        vectors.close()
        raise
    return vectors


def rebuild_vectors(store: Database, manifest: Manifest, index_dir: Path) -> None:
    """Rebuild the store's vectors from SQLite (no re-encoding) and record them in the manifest (not saved here)."""
    with open_store(index_dir, manifest, store) as stored:
        stored.rebuild_vectors()


def _even_calls(texts: list[str], batch_size: int) -> list[list[str]]:
    """`texts` as embedding calls of two encoder batches each, one of longer texts and one of shorter, so that
    calls cost about the same and a rate measured over a few of them holds for the rest. Sorted longest first as
    sentence-transformers orders a call's texts, the encoder batches are the ones a single call of all the texts
    would make (the same padding)."""
    ordered = sorted(texts, key=len, reverse=True)
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    calls = []
    while batches:
        longer = batches.pop(0)
        calls.append(longer + (batches.pop() if batches else []))
    return calls


def _read_found(f: FoundFile) -> bytes:
    """The bytes of the file the walk found, and of no other (see `read_regular`)."""
    return read_regular(f.path, expect=f.identity, follow_symlinks=f.via_symlink)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _disk_full(exc: BaseException) -> bool:
    from searchlm.diskspace import is_disk_full

    return is_disk_full(exc)


def _tokenizer_file(index_dir: Path, model_path: str) -> Path | None:
    for candidate in (index_dir / ENCODER_DIR / "tokenizer.json", Path(model_path) / "tokenizer.json"):
        if candidate.is_file():
            return candidate
    return None


"""`index_folder`: walk a folder, extract, chunk, embed what is new, and keep SQLite + FAISS + manifest in step.

Incremental by design: a file whose size and mtime are unchanged is not read; a changed file is re-chunked but
only chunks with a new content hash are embedded (vectors are reused by hash, also across files, so a moved
file costs nothing); documents whose files are gone are removed. Each document is written in its own SQLite
transaction, so an interrupted run keeps everything committed so far and the next run completes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import sqlite3
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchlm.chunking import ChunkerSettings, TokenCounter, chunk_document
from searchlm.errors import (
    ExtractionError, IndexMismatchError, IndexNotFoundError, InputError, NothingToIndexError, SearchlmError,
)
from searchlm.extract import READER_VERSIONS, SUPPORTED, extract, kind_of, read_regular
from searchlm.lock import write_lock
from searchlm.manifest import DB_FILE, ENCODER_DIR, Manifest
from searchlm.records import Chunk, IndexReport
from searchlm.settings import DEFAULT_MODEL, Settings
from searchlm.store import Store
from searchlm.stores.base import StoreSpec, VectorStore, open_store, parse_store
from searchlm.walk import FoundFile, walk

log = logging.getLogger(__name__)

EMBED_BATCH = 256  # chunks per embedding call; documents are committed as soon as theirs are done

Progress = Callable[[str, int, int], None]  # (phase, done, total)


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
) -> IndexReport:
    """Index `root` into the index `settings.name` under `settings.home`. Returns what changed.

    One bad file never stops a run: whatever keeps a file from being read (permissions, encoding, a parser's
    error, a special file, a per-file limit) skips it with a one-line reason in `report.skipped`. Symlinks are
    read only when they stay inside `root`, unless `follow_symlinks`. A disk that fills up is a DiskFullError
    naming the path; every document committed before it is kept."""
    started = time.perf_counter()
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"path '{root}' does not exist (check the spelling, or pass the folder to index)")
    if not root.is_dir():
        raise InputError(f"path '{root}' is a file, not a folder (pass the folder that contains it)")
    root = root.resolve()
    index_dir = settings.index_dir
    report = IndexReport(name=settings.name)
    progress = progress or (lambda phase, done, total: None)

    with write_lock(index_dir, settings.name), _disk_errors(index_dir):
        manifest = _existing_manifest(index_dir, root, settings)
        chunker = chunker or ChunkerSettings(**(manifest.chunker if manifest else {}))
        files = walk(root, follow_symlinks=follow_symlinks, skipped=report.skipped)
        report.files_seen = len(files) + len(report.skipped)
        store = Store(index_dir / DB_FILE, existing=manifest is not None)
        try:
            stored = store.documents()
            if not files and not stored:
                exts = " ".join(sorted(set(SUPPORTED)))
                raise NothingToIndexError(
                    f"no readable documents in '{root}' (searchlm reads {exts}; point it at a folder that has some)"
                )
            state = _IndexRun(store, index_dir, root, settings, manifest, chunker, report, progress, embedder)
            state.run(files, stored)
        except NothingToIndexError:
            store.close()
            if manifest is None:  # leave no empty index behind
                shutil.rmtree(index_dir, ignore_errors=True)
            raise
        finally:
            store.close()
    report.seconds = time.perf_counter() - started
    return report


@contextlib.contextmanager
def _disk_errors(index_dir: Path):
    """A full disk or quota as a DiskFullError naming the path, instead of a traceback from deep inside."""
    from searchlm.diskspace import disk_full, is_disk_full

    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        if not is_disk_full(exc):
            raise
        where = Path(getattr(exc, "filename", None) or index_dir)
        raise disk_full(where, getattr(exc, "needed", None)) from None


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
        self.model = manifest.model if manifest else (settings.model or DEFAULT_MODEL)
        self._counter: TokenCounter | None = None

    # Models load only when something needs embedding: an unchanged re-run imports no torch.
    @property
    def embedder(self):
        if self._embedder is None:
            from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

            self._embedder = SentenceTransformerEmbedder(self.model, device=self.settings.device)
        return self._embedder

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            from searchlm.embed.base import resolve_model

            self._counter = TokenCounter(_tokenizer_file(self.index_dir, resolve_model(self.model)))
        return self._counter

    def run(self, files: list[FoundFile], stored: dict) -> None:
        report = self.report
        # A file skipped by the walk (unreadable now, a special file) is not gone: its indexed text stays.
        present = {f.rel for f in files} | {rel for rel, _ in report.skipped}
        gone = {path: row for path, row in stored.items() if path not in present}
        gone_by_hash = {row.content_hash: row for row in gone.values()}
        pending: list[_Pending] = []

        used = self.manifest.readers if self.manifest else {}
        stale = {kind for kind, version in READER_VERSIONS.items() if used.get(kind, 1) < version}
        for n, f in enumerate(files, start=1):
            self.progress("read", n, len(files))
            row = stored.get(f.rel)
            reread = bool(stale) and kind_of(f.path) in stale  # same bytes, but this reader now reads them better
            if row is not None and row.size == f.size and row.mtime_ns == f.mtime_ns and not reread:
                report.unchanged += 1
                continue
            counter = self.counter  # outside the per-file guard: a tokenizer that fails is not one file's fault
            try:
                data = read_regular(f.path)
                data_hash = "sha256:" + hashlib.sha256(data).hexdigest()
                if row is not None and row.content_hash == data_hash and not reread:
                    self.store.touch_document(row.id, f.size, f.mtime_ns)  # touched, not changed
                    report.unchanged += 1
                    continue
                if row is None and data_hash in gone_by_hash and not reread:
                    old = gone_by_hash.pop(data_hash)
                    self.store.rename_document(old.id, f.rel, f.size, f.mtime_ns)
                    gone.pop(old.path, None)
                    report.moved.append((old.path, f.rel))
                    continue
                doc = extract(f.path, data)
                chunks = chunk_document(doc, counter, self.chunker)
            except ExtractionError as exc:
                report.skipped.append((f.rel, str(exc)))
                continue
            except (SearchlmError, sqlite3.Error):  # the index's own trouble (a model, the store): not this file's
                raise
            except Exception as exc:  # anything else about this one file skips it, named, and the run goes on
                if _disk_full(exc):
                    raise
                report.skipped.append((f.rel, f"could not be read ({type(exc).__name__}: {str(exc)[:120]})"))
                continue
            finally:
                data = None
            if not chunks:
                report.skipped.append((f.rel, "no text"))
                continue
            pending.append(_Pending(f, doc.kind, doc.title, data_hash, chunks, row is not None))

        if not pending and len(stored) == len(gone) and not report.moved:
            reasons = "; ".join(f"{p}: {why}" for p, why in report.skipped[:3])
            raise NothingToIndexError(
                f"no readable documents in '{self.root}' ({len(report.skipped)} skipped: {reasons})"
                " (point searchlm at a folder of text, Markdown, HTML, PDF or DOCX files)"
            )
        if gone:
            self.store.delete_documents(gone)
            report.removed.extend(sorted(gone))
        self._ensure_manifest_and_encoder()
        self._embed_and_store(pending)
        self._finish()

    def _ensure_manifest_and_encoder(self) -> None:
        """First run: write the manifest and export the ONNX query encoder before embedding anything, so an
        interrupted first run still leaves a searchable index."""
        if self.manifest is None:
            self.manifest = Manifest(
                name=self.settings.name,
                root=str(self.root),
                model=self.model,
                dimension=self.embedder.dimension,
                chunker=self.chunker.to_json(),
                precision=self.embedder.precision,
                readers=dict(READER_VERSIONS),  # what a killed first run commits was read by these readers
                store=parse_store(self.settings.store, self.settings.name).to_json(),
            )
            self.manifest.save(self.index_dir, self.store)
        from searchlm.check import encoder_problem

        if encoder_problem(self.index_dir) is not None:  # missing, or a file of it lost: put it back
            from searchlm.embed.base import resolve_model
            from searchlm.embed.cache import install_encoder
            from searchlm.embed.onnx import export_onnx

            def export(folder: Path) -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    export_onnx(self.embedder.model, self.model, folder)

            install_encoder(export, self.model, resolve_model(self.model), self.index_dir / ENCODER_DIR)

    def _embed_and_store(self, pending: list[_Pending]) -> None:
        report = self.report
        if not pending:
            return
        dim = self.manifest.dimension
        known = self.store.vectors_for_hashes((c.hash for p in pending for c in p.chunks), dim)
        missing = list(dict.fromkeys(c.embed_text for p in pending for c in p.chunks if c.hash not in known))
        hash_of = {c.embed_text: c.hash for p in pending for c in p.chunks}
        total = len(missing)
        report.chunks_reused = sum(1 for p in pending for c in p.chunks if c.hash in known)
        done = 0
        queue = list(pending)
        self.progress("embed", 0, total)
        while queue or done < total:
            batch = missing[done : done + EMBED_BATCH]
            if batch:
                t0 = time.perf_counter()
                vectors = self.embedder.embed(batch)
                report.embed_seconds += time.perf_counter() - t0
                for text, vec in zip(batch, vectors):
                    known[hash_of[text]] = vec
                done += len(batch)
                report.chunks_embedded += len(batch)
                self.progress("embed", done, total)
            # Commit every document whose chunks all have vectors now.
            ready = [p for p in queue if all(c.hash in known for c in p.chunks)]
            for p in ready:
                vectors = np.vstack([known[c.hash] for c in p.chunks])
                self.store.put_document(
                    p.file.rel, p.kind, p.title, p.file.size, p.file.mtime_ns, p.content_hash, p.chunks, vectors
                )
                (report.updated if p.replaces else report.added).append(p.file.rel)
            queue = [p for p in queue if p not in ready]
            if not batch and queue:  # cannot happen unless an embedder returned too few rows
                raise RuntimeError("embedding produced fewer vectors than chunks")

    def _finish(self) -> None:
        manifest = self.manifest
        docs, chunks = self.store.counts()
        self.report.chunks_total = chunks
        # The store repairs what it holds (a damaged or missing FAISS file is rebuilt from SQLite's vectors).
        sync_vectors(self.store, manifest, self.index_dir, self.progress).close()
        manifest.documents, manifest.chunks = docs, chunks
        manifest.readers = dict(READER_VERSIONS)
        manifest.updated_at = time.time()
        manifest.save(self.index_dir, self.store)


def sync_vectors(store: Store, manifest: Manifest, index_dir: Path, progress: Progress | None = None) -> VectorStore:
    """Apply SQLite's pending chunk changes to the index's vector store (no re-encoding; a full build when the
    store is new or cannot be updated) and record it in the manifest (not saved here)."""
    vectors = open_store(index_dir, manifest, store)
    try:
        vectors.sync(store, manifest, progress)
    except BaseException:
        vectors.close()
        raise
    return vectors


def rebuild_vectors(store: Store, manifest: Manifest, index_dir: Path):
    """Rebuild the FAISS file from SQLite (no re-encoding) and record it in the manifest (not saved here)."""
    from searchlm.manifest import FAISS_FILE

    (index_dir / FAISS_FILE).unlink(missing_ok=True)  # derived data: SQLite holds every vector
    vectors = sync_vectors(store, manifest, index_dir)
    return vectors.index


def _disk_full(exc: BaseException) -> bool:
    from searchlm.diskspace import is_disk_full

    return is_disk_full(exc)


def _tokenizer_file(index_dir: Path, model_path: str) -> Path | None:
    for candidate in (index_dir / ENCODER_DIR / "tokenizer.json", Path(model_path) / "tokenizer.json"):
        if candidate.is_file():
            return candidate
    return None


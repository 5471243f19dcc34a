"""`index_folder`: walk a folder, extract, chunk, embed what is new, and keep SQLite + FAISS + manifest in step.

Incremental by design: a file whose size and mtime are unchanged is not read; a changed file is re-chunked but
only chunks with a new content hash are embedded (vectors are reused by hash, also across files, so a moved
file costs nothing); documents whose files are gone are removed. Each document is written in its own SQLite
transaction, so an interrupted run keeps everything committed so far and the next run completes it.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchlm.chunking import ChunkerSettings, TokenCounter, chunk_document
from searchlm.errors import ExtractionError, IndexMismatchError, InputError, NothingToIndexError
from searchlm.extract import READER_VERSIONS, SUPPORTED, extract, kind_of
from searchlm.lock import write_lock
from searchlm.manifest import DB_FILE, ENCODER_DIR, FAISS_FILE, Manifest
from searchlm.records import Chunk, IndexReport
from searchlm.settings import DEFAULT_MODEL, Settings
from searchlm.store import Store
from searchlm.vectors import VectorIndex, choose_type
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
) -> IndexReport:
    """Index `root` into the index `settings.name` under `settings.home`. Returns what changed."""
    started = time.perf_counter()
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"path '{root}' does not exist (check the spelling, or pass the folder to index)")
    if not root.is_dir():
        raise InputError(f"path '{root}' is a file, not a folder (pass the folder that contains it)")
    root = root.resolve()
    from searchlm.homes import locate, remember_home

    settings = settings.with_(home=locate(settings.name, settings.home) or settings.home)  # found from anywhere
    index_dir = settings.index_dir
    report = IndexReport(name=settings.name)
    progress = progress or (lambda phase, done, total: None)

    with write_lock(index_dir, settings.name):
        manifest = _existing_manifest(index_dir, root, settings)
        chunker = chunker or ChunkerSettings(**(manifest.chunker if manifest else {}))
        files = walk(root)
        report.files_seen = len(files)
        store = Store(index_dir / DB_FILE)
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
    remember_home(settings.home)
    report.seconds = time.perf_counter() - started
    return report


def _existing_manifest(index_dir: Path, root: Path, settings: Settings) -> Manifest | None:
    try:
        manifest = Manifest.load(index_dir)
    except Exception:
        return None
    if manifest.root and Path(manifest.root) != root:
        raise InputError(
            f"index '{settings.name}' holds documents from '{manifest.root}', not '{root}'",
            "use another index name, or drop this index first",
            f"use another --name, or `searchlm drop {settings.name}` first",
        )
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
        present = {f.rel for f in files}
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
            try:
                data_hash = _file_hash(f.path)
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
                doc = extract(f.path)
            except ExtractionError as exc:
                report.skipped.append((f.rel, str(exc)))
                continue
            chunks = chunk_document(doc, self.counter, self.chunker)
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
            )
            self.manifest.save(self.index_dir)
        if not (self.index_dir / ENCODER_DIR / "encoder.onnx").is_file():
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
        generation = self.store.generation
        self.report.chunks_total = chunks
        faiss_path = self.index_dir / FAISS_FILE
        if manifest.ann.get("generation") != generation or not faiss_path.is_file():
            rebuild_vectors(self.store, manifest, self.index_dir)
        manifest.documents, manifest.chunks = docs, chunks
        manifest.readers = dict(READER_VERSIONS)
        manifest.updated_at = time.time()
        manifest.save(self.index_dir)


def rebuild_vectors(store: Store, manifest: Manifest, index_dir: Path) -> VectorIndex:
    """Rebuild the FAISS file from SQLite (no re-encoding) and record it in the manifest (not saved here)."""
    _, count = store.counts()
    kind = choose_type(count)
    index = VectorIndex.build(manifest.dimension, store.iter_vectors(), count, kind)
    index.save(index_dir / FAISS_FILE)
    manifest.ann = {"type": kind, "generation": store.generation, "count": len(index)}
    return index


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _tokenizer_file(index_dir: Path, model_path: str) -> Path | None:
    for candidate in (index_dir / ENCODER_DIR / "tokenizer.json", Path(model_path) / "tokenizer.json"):
        if candidate.is_file():
            return candidate
    return None


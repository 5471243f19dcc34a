"""`check_index`: verify an index folder part by part and, with `repair=True`, rebuild what can be rebuilt from
what survives.

    manifest.json   valid JSON object with the needed fields and a schema this searchlm reads
                    -> restored from the copy kept in SQLite (`meta.manifest`)
    index.db        opens, `PRAGMA integrity_check` is ok
                    -> the readable documents and chunks are copied into a fresh database; the damaged file is
                       kept beside it (index.db.damaged-TIME); lost documents are re-read by the next `index`
    FTS5            the keyword index agrees with the chunks -> rebuilt from the chunks
    vectors.faiss   loads and holds one vector per stored chunk -> rebuilt from the vectors in SQLite
    encoder/        the ONNX query encoder's files are there and parse -> exported again from the model

Every problem is one line; nothing here raises a traceback for damage, and nothing outside the index folder
is touched (the encoder cache aside, see `embed.cache`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from searchlm.errors import IndexDamagedError, IndexMismatchError, IndexNotFoundError, SearchlmError
from searchlm.lock import write_lock
from searchlm.manifest import DB_FILE, ENCODER_DIR, FAISS_FILE, MANIFEST, Manifest
from searchlm.embed.cache import encoder_problem
from searchlm.settings import Settings



@dataclass
class Problem:
    part: str  # manifest, database, fts, vectors, keywords, encoder
    message: str
    repaired: bool = False
    fix: str = ""  # what the user can do when --repair could not

    def __post_init__(self):
        self.message = " ".join(self.message.split())  # one line, whatever SQLite or FAISS said

    def to_json(self) -> dict:
        return {"part": self.part, "message": self.message, "repaired": self.repaired, "fix": self.fix}


@dataclass
class CheckReport:
    name: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong any more (no problems, or all of them repaired)."""
        return all(p.repaired for p in self.problems)

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "problems": [p.to_json() for p in self.problems],
                "notes": self.notes}


# -- checks used on their own by the indexer and the searcher ------------------------------------------------
def vectors_problem(path: Path, manifest: Manifest, expected: int) -> tuple[str | None, str | None]:
    """What is wrong with the FAISS file (unreadable, wrong dimension, wrong count), or None; and, when it is what
    a run killed before its FAISS save leaves (no file yet, or a count behind SQLite's), how to say so. An index
    whose vectors live in Milvus has no FAISS file to check."""
    from searchlm.stores.base import TANTIVY, StoreSpec

    if StoreSpec.from_json(manifest.store).backend not in ("faiss", TANTIVY):  # Milvus keeps its own
        return None, None
    if not path.is_file():
        return f"{FAISS_FILE} is missing", "it was not written yet"
    from searchlm.stores.faiss import VectorIndex

    try:
        index = VectorIndex.load(path, manifest.ann.get("type", "flat"), use_gpu=False)
    except (RuntimeError, MemoryError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
        return f"{FAISS_FILE} cannot be read ({reason})", None
    if index.index.d != manifest.dimension:
        return f"{FAISS_FILE} has dimension {index.index.d}, not {manifest.dimension}", None
    live = len(index) - int(manifest.ann.get("tombstones", 0))  # HNSW keeps removed ids until it is rebuilt
    if live != expected:
        return f"{FAISS_FILE} holds {live} vectors for {expected} chunks", f"it holds {live} vectors for {expected} chunks"
    return None, None


# -- the whole check -----------------------------------------------------------------------------------------
def check_index(settings: Settings, repair: bool = False, embedder=None) -> CheckReport:
    """Check the index `settings.name`; with `repair`, fix what can be rebuilt. `embedder`: an already loaded
    embedder of the index's model, to re-export the encoder without loading it again (tests)."""
    index_dir = settings.index_dir
    name = settings.name
    report = CheckReport(name)
    if not (index_dir / MANIFEST).is_file() and not (index_dir / DB_FILE).is_file():
        raise IndexNotFoundError(f"index '{name}' not found in {settings.home} (see `searchlm indexes` for the names)")
    guard = write_lock(index_dir, name) if repair else _nothing()
    with guard:
        store = _check_database(index_dir, name, report, repair)
        manifest = _check_manifest(index_dir, name, report, repair, store)
        if store is None:
            return report
        try:
            if manifest is not None:
                _check_fts(store, report, repair)
                _check_vectors(store, manifest, index_dir, report, repair)
                _check_counts(store, manifest, index_dir, report, repair)
            _check_encoder(index_dir, manifest, report, repair, embedder)
        finally:
            store.close()
    return report


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _check_manifest(index_dir, name, report, repair, store) -> Manifest | None:
    try:
        return Manifest.load(index_dir)
    except IndexMismatchError as exc:  # a newer searchlm's index: refuse to touch it
        report.problems.append(Problem("manifest", str(exc), fix="upgrade searchlm (pip install -U searchlm)"))
        return None
    except (IndexDamagedError, IndexNotFoundError) as exc:
        problem = Problem("manifest", _why(str(exc)) if isinstance(exc, IndexDamagedError) else
                          f"{MANIFEST} is missing")
        report.problems.append(problem)
    copy = store.manifest_copy() if store is not None else None
    if copy is None:
        problem.fix = (f"no copy to restore it from: rebuild with `searchlm drop {name}` then "
                       f"`searchlm index DIR --name {name}`")
        return None
    try:
        manifest = Manifest.from_json(json.loads(copy), name)
    except (ValueError, SearchlmError):
        problem.fix = f"its copy in {DB_FILE} is damaged too: rebuild with `searchlm drop {name}` then `searchlm index DIR`"
        return None
    if repair:
        manifest.save(index_dir)
        problem.repaired = True
    else:
        problem.fix = f"run `searchlm check --name {name} --repair` (restores it from the copy in {DB_FILE})"
    return manifest


def _check_database(index_dir, name, report, repair):
    from searchlm.store import Store

    path = index_dir / DB_FILE
    problem = None
    store = None
    try:
        store = Store(path, existing=True)  # read-write: FTS5's integrity-check is an INSERT (that writes nothing)
        rows = store.conn.execute("PRAGMA integrity_check(20)").fetchall()
        if [r[0] for r in rows] != ["ok"]:
            problem = Problem("database", f"{DB_FILE} is damaged ({'; '.join(r[0] for r in rows[:2])[:160]})")
    except IndexDamagedError as exc:
        problem = Problem("database", _why(str(exc)))
    except sqlite3.DatabaseError as exc:
        problem = Problem("database", f"{DB_FILE} is damaged ({exc})")
    if problem is None:
        return store
    report.problems.append(problem)
    if store is not None:
        store.close()
    if not repair:
        problem.fix = (f"run `searchlm check --name {name} --repair`: readable documents are kept, the rest are "
                       "read again by the next `searchlm index`")
        return None
    kept, lost = _salvage(path)
    problem.repaired = True
    report.notes.append(
        f"{DB_FILE}: {kept} documents kept, {lost} dropped as damaged (the damaged file is kept as "
        f"{DB_FILE}.damaged-*); run `searchlm index DIR --name {name}` to read the rest of the folder again"
    )
    return Store(path, existing=True)


def _salvage(path: Path) -> tuple[int, int]:
    """Copy every readable document with all its chunks (finite vectors) into a fresh database, then swap it
    in; the damaged file and its WAL move aside. Returns (documents kept, documents lost)."""
    import numpy as np

    from searchlm.store import Store

    tmp = path.with_name(f".{path.name}.repair")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    fresh = Store(tmp)
    kept = lost = 0
    try:
        old = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        old = None
    try:
        docs = _readable(old, "SELECT id, path, kind, title, size, mtime_ns, content_hash, n_chunks, indexed_at "
                              "FROM documents ORDER BY id")
        copy = _readable(old, "SELECT value FROM meta WHERE key = 'manifest'")
        with fresh.conn:
            if copy:
                fresh.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('manifest', ?)", copy[0])
            for doc in docs:
                chunks = _readable(old, "SELECT id, doc_id, ordinal, title, heading, start_line, end_line, page, "
                                        "text, hash, vector FROM chunks WHERE doc_id = ? ORDER BY ordinal", (doc[0],))
                good = len(chunks) == doc[7] and all(
                    isinstance(c[10], bytes) and np.isfinite(np.frombuffer(c[10], dtype=np.float32)).all()
                    and isinstance(c[8], str) for c in chunks)
                if not good:
                    lost += 1
                    continue
                fresh.conn.execute("INSERT INTO documents(id, path, kind, title, size, mtime_ns, content_hash, "
                                   "n_chunks, indexed_at) VALUES (?,?,?,?,?,?,?,?,?)", doc)
                fresh.conn.executemany("INSERT INTO chunks(id, doc_id, ordinal, title, heading, start_line, "
                                       "end_line, page, text, hash, vector) VALUES (?,?,?,?,?,?,?,?,?,?,?)", chunks)
                kept += 1
            fresh.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?)", (str(int(time.time())),))
        fresh.fill_doc_kinds()
    finally:
        if old is not None:
            old.close()
        fresh.close()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, src.with_name(f"{path.name}.damaged-{stamp}{suffix}"))
    Path(f"{path}-shm").unlink(missing_ok=True)
    os.replace(tmp, path)
    return kept, lost


def _readable(conn, sql: str, params=()) -> list:
    if conn is None:
        return []
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.DatabaseError:
        return []


def _check_fts(store, report, repair) -> None:
    try:
        store.conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')")
        return
    except sqlite3.DatabaseError as exc:
        problem = Problem("fts", f"the keyword index (FTS5) does not match the chunks ({exc})")
    report.problems.append(problem)
    if repair:
        with store.conn:
            store.conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild')")
        problem.repaired = True
    else:
        problem.fix = f"run `searchlm check --name {report.name} --repair` (rebuilds it from the chunks)"


def _check_vectors(store, manifest, index_dir, report, repair) -> None:
    (count,) = store.conn.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()
    why, behind = vectors_problem(index_dir / FAISS_FILE, manifest, count)
    if manifest.ann.get("generation") != store.generation and (why is None or behind):
        # Killed between a commit and the FAISS save (or before a new index's first one): the file is behind or
        # not written yet, and a searcher catches it up from SQLite. Kill tests saw "holds 267 vectors for 265
        # chunks" and "is missing" and counted those indexes unusable, though they answered.
        why = f"{FAISS_FILE} is older than the database (an interrupted run)" + (f": {behind}" if behind else "")
    if why is None:
        _check_keywords(store, manifest, index_dir, report, repair)
        return
    problem = Problem("vectors", why)
    report.problems.append(problem)
    if repair:
        from searchlm.indexer import rebuild_vectors

        rebuild_vectors(store, manifest, index_dir)
        manifest.save(index_dir, store)
        problem.repaired = True
    else:
        problem.fix = f"run `searchlm check --name {report.name} --repair` (rebuilds it from the vectors in SQLite)"


def _check_keywords(store, manifest, index_dir, report, repair) -> None:
    """`--store faiss+tantivy`: the tantivy index must hold what SQLite does (searches read FTS5 until it does)."""
    from searchlm.stores.base import TANTIVY, StoreSpec, open_store

    if StoreSpec.from_json(manifest.store).backend != TANTIVY:
        return
    vectors = open_store(index_dir, manifest, store)
    try:
        if vectors.keyword:
            return
        problem = Problem("keywords", "the tantivy keyword index is missing, damaged, of an older layout or behind the database "
                          "(keyword search reads SQLite FTS5 meanwhile, slower on a big index)")
        report.problems.append(problem)
        if repair:
            vectors.sync(store, manifest)
            manifest.save(index_dir, store)
            problem.repaired = True
        else:
            problem.fix = f"run `searchlm check --name {report.name} --repair` (rebuilds it from SQLite)"
    finally:
        vectors.close()


def _check_counts(store, manifest, index_dir, report, repair) -> None:
    docs, chunks = store.counts()
    if (manifest.documents, manifest.chunks) != (docs, chunks):
        report.notes.append(f"manifest counts {manifest.documents}/{manifest.chunks} updated to {docs}/{chunks}"
                            if repair else f"manifest counts {manifest.documents}/{manifest.chunks}, database "
                            f"{docs}/{chunks}")
        if repair:
            manifest.documents, manifest.chunks = docs, chunks
            manifest.save(index_dir, store)
    bad = store.conn.execute("SELECT count(*) FROM chunks WHERE vector IS NULL").fetchone()[0]
    if bad:
        report.notes.append(f"{bad} chunks have no vector (the next `searchlm index` embeds them)")


def _check_encoder(index_dir, manifest, report, repair, embedder) -> None:
    why = encoder_problem(index_dir)
    if why is None:
        return
    problem = Problem("encoder", f"the query encoder: {why}")
    report.problems.append(problem)
    if not repair or manifest is None:
        problem.fix = f"run `searchlm check --name {report.name} --repair` (exports it again from the model)"
        return
    restore_encoder(index_dir, manifest.encoder_source(index_dir), embedder)
    problem.repaired = encoder_problem(index_dir) is None


def restore_encoder(index_dir: Path, model: str, embedder=None) -> None:
    """Put the ONNX query encoder back: from the shared cache when it has it, else exported from the model."""
    import warnings

    from searchlm.embed.base import resolve_model
    from searchlm.embed.cache import install_encoder
    from searchlm.embed.onnx import export_onnx

    def export(folder: Path) -> None:
        nonlocal embedder
        if embedder is None:
            from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder(model, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(embedder.model, model, folder)

    install_encoder(export, model, resolve_model(model), index_dir / ENCODER_DIR)


def _why(message: str) -> str:
    """The middle of a library message: 'index 'x': WHAT; run ...' -> WHAT."""
    head, _, rest = message.partition(": ")
    text = rest or head
    return text.split("; run ")[0]

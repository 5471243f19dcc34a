"""The SQL of an index's SQLite database: documents, chunks, their vectors and its own keyword tables (the
default keyword index's, kept by triggers in every index). (search/spelling.py reads the keyword tables' vocabulary.)

SQLite is the source of truth; the store (`stores/`: a vector index and a keyword index) is derived from the
`vector` column and can be rebuilt at any time. Chunk ids (`INTEGER PRIMARY KEY AUTOINCREMENT`, never reused) are
the vector ids. Every write bumps `meta.generation`. Triggers log each chunk added, removed or re-described
(its document renamed or touched) in `vector_log`, which the store applies (to its vector and keyword index) and
then clears: an update costs time in proportion to the change, and a log that is not empty means the store may lag
(see `stores/`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from searchlm.indexing.db_errors import damaged_db, translate
from searchlm.indexing.doc_kinds import GUIDE
from searchlm.indexing.doc_kinds import RULES_VERSION as DOC_KIND_RULES
from searchlm.indexing.doc_kinds import detect as detect_doc_kind
from searchlm.records import Chunk, Passage

if TYPE_CHECKING:  # numpy is imported where vectors are handled: `searchlm indexes` needs none of it
    import numpy as np

SCHEMA_VERSION = 4


def _m001_initial(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            n_chunks INTEGER NOT NULL DEFAULT 0,
            indexed_at REAL NOT NULL
        );
        CREATE INDEX documents_content_hash ON documents(content_hash);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            title TEXT NOT NULL,
            heading TEXT NOT NULL,
            start_line INTEGER,
            end_line INTEGER,
            page INTEGER,
            text TEXT NOT NULL,
            hash TEXT NOT NULL,
            vector BLOB
        );
        CREATE INDEX chunks_doc ON chunks(doc_id);
        CREATE INDEX chunks_hash ON chunks(hash);
        CREATE TABLE rerank_cache (
            model TEXT NOT NULL, query TEXT NOT NULL, chunk_hash TEXT NOT NULL, score REAL NOT NULL,
            PRIMARY KEY (model, query, chunk_hash)
        );
        """
    )
    _keyword_table(conn)


def _keyword_table(conn: sqlite3.Connection) -> None:
    # sqlite-utils writes the external-content keyword table and the triggers that keep it in step with chunks.
    _db(conn)["chunks"].enable_fts(
        ["title", "heading", "text"], fts_version="FTS5", create_triggers=True,
        tokenize="porter unicode61 remove_diacritics 2",
    )


def search_copy(chunks: Iterable[tuple[int, str, str, str]],
                documents: Iterable[tuple[int, str, str, str, int]]) -> sqlite3.Connection:
    """An in-memory database of `chunks` (id, title, heading, text) under the index's own keyword table, built the
    same way, and of `documents` (id, path, kind, doc_kind, mtime_ns): what spelling corrections
    (`search/spelling.py`) and path and kind filters (`search/filters.py`) read, for a search replica whose index
    is on a store server and which has no index file. One thread at a time may use it (the caller holds a lock)."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(
        """
        CREATE TABLE documents (id INTEGER PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL,
                                doc_kind TEXT NOT NULL, mtime_ns INTEGER NOT NULL);
        CREATE TABLE chunks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, heading TEXT NOT NULL, text TEXT NOT NULL);
        """
    )
    _keyword_table(conn)
    with conn:
        conn.executemany("INSERT INTO documents (id, path, kind, doc_kind, mtime_ns) VALUES (?, ?, ?, ?, ?)", documents)
        conn.executemany("INSERT INTO chunks (id, title, heading, text) VALUES (?, ?, ?, ?)", chunks)
    return conn


def _db(conn: sqlite3.Connection):
    import sqlite_utils  # write path only; the query path reads with plain sqlite3

    return sqlite_utils.Database(conn, execute_plugins=False)


def _m002_cjk(conn: sqlite3.Connection) -> None:
    """A second keyword table for chunks holding Chinese, Japanese or Korean text, as character bigrams
    (see `searchlm.cjk`); chunks without such text have no row in it. Filled here for an existing index."""
    conn.executescript(
        """
        CREATE VIRTUAL TABLE chunks_cjk USING fts5(title, heading, text, tokenize='unicode61 remove_diacritics 0');
        CREATE TRIGGER chunks_cjk_ad AFTER DELETE ON chunks BEGIN DELETE FROM chunks_cjk WHERE rowid = old.id; END;
        """
    )
    _add_cjk_rows(conn, conn.execute("SELECT id, title, heading, text FROM chunks"))


def _add_cjk_rows(conn: sqlite3.Connection, rows: Iterable[tuple[int, str, str, str]]) -> None:
    from searchlm import cjk

    conn.executemany(
        "INSERT INTO chunks_cjk(rowid, title, heading, text) VALUES (?, ?, ?, ?)",
        [(i, cjk.index_text(t), cjk.index_text(h), cjk.index_text(x))
         for i, t, h, x in rows if cjk.has_cjk(t) or cjk.has_cjk(h) or cjk.has_cjk(x)],
    )



def _m003_vector_log(conn: sqlite3.Connection) -> None:
    """Changes the vector store has not applied yet (op 1: add or refresh the chunk, 0: remove it), and the HNSW
    ids that are removed from SQLite but still in an HNSW graph (tombstones, filtered out at search time)."""
    conn.executescript(
        """
        CREATE TABLE vector_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id INTEGER NOT NULL, op INTEGER NOT NULL);
        CREATE TABLE vector_tombstones (chunk_id INTEGER PRIMARY KEY);
        CREATE TRIGGER chunks_vector_add AFTER INSERT ON chunks
            BEGIN INSERT INTO vector_log(chunk_id, op) VALUES (new.id, 1); END;
        CREATE TRIGGER chunks_vector_remove AFTER DELETE ON chunks
            BEGIN INSERT INTO vector_log(chunk_id, op) VALUES (old.id, 0); END;
        CREATE TRIGGER documents_vector_refresh AFTER UPDATE OF path, kind, mtime_ns ON documents
            BEGIN INSERT INTO vector_log(chunk_id, op) SELECT id, 1 FROM chunks WHERE doc_id = new.id; END;
        """
    )


def _m004_doc_kind(conn: sqlite3.Connection) -> None:
    """Each document's kind (guide, changelog, migration, api: `searchlm.indexing.doc_kinds`). `put_document` computes it for
    each document it writes; for the documents already stored, `Database._migrate` computes it from what they store,
    as it does again whenever `doc_kinds.RULES_VERSION` changes. Not in the vector log's trigger: no vector store
    keeps it (a kind filter is resolved to documents in SQLite)."""
    conn.execute(f"ALTER TABLE documents ADD COLUMN doc_kind TEXT NOT NULL DEFAULT '{GUIDE}'")


def _fill_doc_kinds(conn: sqlite3.Connection) -> None:
    docs = conn.execute("SELECT id, path, title FROM documents").fetchall()
    conn.executemany("UPDATE documents SET doc_kind = ? WHERE id = ?",
                     [(_detect_kind(conn, doc_id, path, title), doc_id) for doc_id, path, title in docs])


def _detect_kind(conn: sqlite3.Connection, doc_id: int, path: str, title: str) -> str:
    chunks = conn.execute("SELECT heading, text FROM chunks WHERE doc_id = ? ORDER BY ordinal", (doc_id,))
    return detect_doc_kind(path, title, chunks)


MIGRATIONS = [_m001_initial, _m002_cjk, _m003_vector_log, _m004_doc_kind]
assert len(MIGRATIONS) == SCHEMA_VERSION


@dataclass
class DocumentRow:
    id: int
    path: str
    kind: str
    title: str
    size: int
    mtime_ns: int
    content_hash: str
    n_chunks: int
    doc_kind: str = GUIDE


_PASSAGE_FIELDS = ("chunk_id", "doc_id", "path", "kind", "doc_kind", "title", "heading", "start_line", "end_line",
                   "page", "text", "hash")


def _passage(row) -> Passage:
    """A `Passage` from a row selected as `_PASSAGE_SQL`."""
    return Passage(**dict(zip(_PASSAGE_FIELDS, row)))


def _create_whole(path: Path) -> None:
    """Make `path` a database with the whole schema, in one step, unless it is one already: the schema is built in
    a file beside it that is renamed into place. A first run killed while creating tables (executescript commits
    each statement) used to leave tables without `schema_version`, and every later run then failed with "table
    documents already exists". Such a file, whose tables hold no document, is replaced the same way."""
    if path.is_file() and path.stat().st_size > 0:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            versioned = "meta" in tables and conn.execute(
                "SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone() is not None
            unfinished = not versioned and (
                "documents" not in tables or conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 0)
        except sqlite3.DatabaseError:
            return  # not ours to judge here: opening it says what is wrong
        finally:
            conn.close()
        if not unfinished:
            return
    new = path.with_name(path.name + ".new")
    for leftover in (new, new.with_name(new.name + "-wal"), new.with_name(new.name + "-shm")):
        leftover.unlink(missing_ok=True)  # a creation killed before: it never held a document
    fresh = Database(new, existing=False, _whole=True)
    try:
        fresh.conn.execute("PRAGMA journal_mode=DELETE")  # no -wal file to carry over: one file to rename
    finally:
        fresh.close()
    for stale in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)  # an unfinished file's journal must not be read into the new one
    os.replace(new, path)


class Database:
    """One index's SQLite file. Opening applies pending migrations (a new file gets its whole schema at once)."""

    def __init__(self, path: Path, readonly: bool = False, existing: bool = False, _whole: bool = False):
        """`existing`: the file must already hold a searchlm store (a reader's view); a missing, empty or foreign
        file is an IndexDamagedError instead of a fresh empty index that answers "No results"."""
        self.path = path
        if existing and (not path.is_file() or path.stat().st_size == 0):
            raise damaged_db(path, "missing or empty")
        if not readonly and not existing and not _whole:
            _create_whole(path)
        try:
            if readonly:
                self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self.conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if existing and self.get_meta("schema_version") is None:
                raise damaged_db(path, "it holds no searchlm tables")
            if self.schema_version > SCHEMA_VERSION:
                from searchlm.errors import IndexMismatchError

                raise IndexMismatchError(
                    f"index '{path.parent.name}' has database schema {self.schema_version}, newer than this "
                    f"searchlm reads (upgrade searchlm: pip install -U searchlm)"
                )
            if not readonly:
                self._migrate()
            # A read-only view of an index from before schema 4 has no kinds: its documents read as guides.
            self._doc_kind = "d.doc_kind" if self._has_column("documents", "doc_kind") else f"'{GUIDE}'"
            self._passage_sql = (
                f"c.id, c.doc_id, d.path, d.kind, {self._doc_kind}, c.title, c.heading, c.start_line, c.end_line,"
                " c.page, c.text, c.hash FROM chunks c JOIN documents d ON d.id = c.doc_id"
            )
        except sqlite3.OperationalError as exc:
            raise translate(exc, path) from None
        except sqlite3.DatabaseError as exc:
            raise damaged_db(path, str(exc)) from None

    def close(self) -> None:
        self.conn.close()

    # -- schema -------------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        version = int(self.get_meta("schema_version") or 0)
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.conn:
                migration(self.conn)
                self._set_meta("schema_version", str(number))
        if self.get_meta("doc_kind_rules") != str(DOC_KIND_RULES):  # the kinds were decided by other rules, or never
            with self.conn:
                _fill_doc_kinds(self.conn)
                self._set_meta("doc_kind_rules", str(DOC_KIND_RULES))

    def _has_column(self, table: str, column: str) -> bool:
        return any(r[1] == column for r in self.conn.execute(f"PRAGMA table_info({table})"))

    @property
    def schema_version(self) -> int:
        return int(self.get_meta("schema_version") or 0)

    def get_meta(self, key: str) -> str | None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):  # "database is locked" and the like are real errors
                raise
            return None
        return row[0] if row else None

    def save_manifest_copy(self, text: str) -> None:
        with self.conn:
            self._set_meta("manifest", text)

    def manifest_copy(self) -> str | None:
        return self.get_meta("manifest")

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def _bump(self) -> None:
        self._set_meta("generation", str(self.generation + 1))

    # -- documents ----------------------------------------------------------------------------------------
    def _documents(self, where: str = "", params: tuple = ()) -> list[DocumentRow]:
        rows = self.conn.execute(
            f"SELECT id, path, kind, title, size, mtime_ns, content_hash, n_chunks, {self._doc_kind} FROM documents d"
            + where, params
        ).fetchall()
        return [DocumentRow(*r) for r in rows]

    def documents(self) -> dict[str, DocumentRow]:
        return {row.path: row for row in self._documents()}

    def document(self, doc_id: int) -> DocumentRow | None:
        return next(iter(self._documents(" WHERE id = ?", (doc_id,))), None)

    def document_by_path(self, path: str) -> DocumentRow | None:
        return next(iter(self._documents(" WHERE path = ?", (path,))), None)

    def touch_document(self, doc_id: int, size: int, mtime_ns: int) -> None:
        """Record a new size/mtime for a file whose content did not change (no generation bump)."""
        with self.conn:
            self.conn.execute("UPDATE documents SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, doc_id))

    def rename_document(self, doc_id: int, new_path: str, size: int, mtime_ns: int) -> None:
        """A document moved with its content unchanged; its kind is decided again (the path is part of it)."""
        with self.conn:
            title = self.conn.execute("SELECT title FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]
            self.conn.execute(
                "UPDATE documents SET path = ?, size = ?, mtime_ns = ?, doc_kind = ? WHERE id = ?",
                (new_path, size, mtime_ns, _detect_kind(self.conn, doc_id, new_path, title), doc_id),
            )
            self._bump()

    def put_document(
        self,
        path: str,
        kind: str,
        title: str,
        size: int,
        mtime_ns: int,
        content_hash: str,
        chunks: list[Chunk],
        vectors: np.ndarray,
    ) -> int:
        """Replace a document and all its chunks in one transaction."""
        import numpy as np

        db = _db(self.conn)
        with db.atomic():
            old = self.conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
            if old:
                self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (old[0],))
                self.conn.execute("DELETE FROM documents WHERE id = ?", (old[0],))
            doc_id = db["documents"].insert(
                {"path": path, "kind": kind, "title": title, "size": size, "mtime_ns": mtime_ns,
                 "content_hash": content_hash, "n_chunks": len(chunks), "indexed_at": time.time(),
                 "doc_kind": detect_doc_kind(path, title, ((c.heading, c.text) for c in chunks))}
            ).last_pk
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            db["chunks"].insert_all(
                {"doc_id": doc_id, "ordinal": c.ordinal, "title": title, "heading": c.heading,
                 "start_line": c.start_line, "end_line": c.end_line, "page": c.page, "text": c.text,
                 "hash": c.hash, "vector": vectors[i].tobytes()}
                for i, c in enumerate(chunks)
            )
            _add_cjk_rows(self.conn, self.conn.execute(
                "SELECT id, title, heading, text FROM chunks WHERE doc_id = ?", (doc_id,)
            ).fetchall())
            self._bump()
        return doc_id

    def fill_doc_kinds(self) -> None:
        """Decide every document's kind again from what is stored (a repaired copy has none)."""
        with self.conn:
            _fill_doc_kinds(self.conn)

    def delete_documents(self, paths: Iterable[str]) -> None:
        with self.conn:
            for path in paths:
                row = self.conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
                if row:
                    self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (row[0],))
                    self.conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
            self._bump()

    def counts(self) -> tuple[int, int]:
        docs = self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return docs, chunks

    # -- chunks and vectors -------------------------------------------------------------------------------
    def vectors_for_hashes(self, hashes: Iterable[str], dim: int) -> dict[str, np.ndarray]:
        """Stored vectors for any chunk already embedded with one of these content hashes."""
        import numpy as np

        found: dict[str, np.ndarray] = {}
        hashes = list(set(hashes))
        for i in range(0, len(hashes), 500):
            part = hashes[i : i + 500]
            marks = ",".join("?" * len(part))
            for h, blob in self.conn.execute(
                f"SELECT hash, vector FROM chunks WHERE hash IN ({marks}) AND vector IS NOT NULL", part
            ):
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim:
                    found[h] = vec
        return found

    def iter_vectors(self, batch: int = 10000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (ids, vectors) in id order, in batches, for (re)building a vector index."""
        import numpy as np

        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT id, vector FROM chunks WHERE id > ? AND vector IS NOT NULL ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            yield ids, vecs
            last = int(ids[-1])

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, Passage]:
        ids = [int(i) for i in ids]
        out: dict[int, Passage] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            for r in self.conn.execute(
                f"SELECT {self._passage_sql} WHERE c.id IN ({marks})",
                part,
            ):
                out[r[0]] = _passage(r)
        return out

    def doc_kinds_of_chunks(self, ids: Iterable[int]) -> dict[int, str]:
        """{chunk_id: its document's kind} for those of the chunks whose document is not a guide."""
        ids = [int(i) for i in ids]
        if self._doc_kind != "d.doc_kind":
            return {}
        out: dict[int, str] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            out.update(self.conn.execute(
                f"SELECT c.id, d.doc_kind FROM chunks c JOIN documents d ON d.id = c.doc_id"
                f" WHERE c.id IN ({','.join('?' * len(part))}) AND d.doc_kind != '{GUIDE}'", part,
            ).fetchall())
        return out

    def chunks_of_document(self, doc_id: int) -> list[Passage]:
        rows = self.conn.execute(
            f"SELECT {self._passage_sql} WHERE c.doc_id = ? ORDER BY c.ordinal",
            (doc_id,),
        ).fetchall()
        return [_passage(r) for r in rows]

    def filtered_chunk_ids(self, where: str, params: list) -> np.ndarray:
        """Ids of chunks whose document matches a filter clause built by `search.filters`."""
        import numpy as np

        rows = self.conn.execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    # -- keyword search -----------------------------------------------------------------------------------
    # BM25 weights of (title, heading, text) in both keyword tables.
    _BM25 = "2.0, 1.0, 1.0"

    def keyword_search(
        self, fts_query: str, limit: int, where: str = "", params: list | None = None, cjk_query: str = ""
    ):
        """BM25 over title, heading and text. Returns [(chunk_id, score)] with higher = better.

        `cjk_query` (from `searchlm.cjk.match_query`) searches the CJK bigram table too; a chunk found by both
        gets the sum of its two scores. Without it, only the word table is read."""
        found = self._keyword_table("chunks_fts", fts_query, limit, where, params)
        if not cjk_query:
            return found
        scores = dict(found)
        for i, s in self._keyword_table("chunks_cjk", cjk_query, limit, where, params):
            scores[i] = scores.get(i, 0.0) + s
        return sorted(scores.items(), key=lambda item: item[1], reverse=True)[:limit]

    def _keyword_table(self, table: str, match: str, limit: int, where: str, params: list | None):
        if not match:
            return []
        sql = (
            f"SELECT f.rowid, -bm25({table}, {self._BM25}) AS score FROM {table} f"
            + (" JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.doc_id" if where else "")
            + f" WHERE {table} MATCH ?"
            + (f" AND {where}" if where else "")
            + f" ORDER BY bm25({table}, {self._BM25}) LIMIT ?"
        )
        try:
            return self.conn.execute(sql, [match, *(params or []), limit]).fetchall()
        except sqlite3.OperationalError:
            if table == "chunks_fts":
                raise
            return []  # an index opened read-only before its CJK migration: words only

    def keyword_scores(self, fts_query: str, ids: Iterable[int], cjk_query: str = "") -> dict[int, float]:
        """BM25 (as `keyword_search` scores it) of particular chunks; chunks matching no query term are absent."""
        wanted = {int(i) for i in ids}
        out: dict[int, float] = {}
        for table, match in (("chunks_fts", fts_query), ("chunks_cjk", cjk_query)):
            if not match or not wanted:
                continue
            # One pass over the matches, as `keyword_search` makes anyway to sort them: `rowid IN (...)` next to
            # MATCH makes SQLite re-run the query per rowid (~15x slower for 500 ids).
            try:
                rows = self.conn.execute(  # streamed, not fetched: common words match much of a big index
                    f"SELECT rowid, -bm25({table}, {self._BM25}) FROM {table} WHERE {table} MATCH ?", [match]
                )
            except sqlite3.OperationalError:
                if table == "chunks_fts":
                    raise
                rows = []
            for i, s in rows:
                if i in wanted:
                    out[i] = out.get(i, 0.0) + s
        return out

    def vectors_by_id(self, ids: Iterable[int]) -> dict[int, np.ndarray]:
        import numpy as np

        ids = [int(i) for i in ids]
        out: dict[int, np.ndarray] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            for cid, blob in self.conn.execute(
                f"SELECT id, vector FROM chunks WHERE id IN ({marks}) AND vector IS NOT NULL", part
            ):
                out[cid] = np.frombuffer(blob, dtype=np.float32)
        return out

    # -- re-encoding (`searchlm adapt`) -----------------------------------------------------------------------
    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole database at `path` (SQLite's online backup: readers and a writer may
        go on meanwhile)."""
        target = sqlite3.connect(str(path))
        try:
            self.conn.backup(target)
        finally:
            target.close()

    def chunk_outline(self) -> list[tuple[int, int, int, str, str, str, str]]:
        """(id, doc_id, ordinal, title, heading, text, hash) of every chunk, in id order."""
        return self.conn.execute(
            "SELECT id, doc_id, ordinal, title, heading, text, hash FROM chunks ORDER BY id").fetchall()

    def replace_vectors(self, rows: Iterable[tuple[int, bytes]], done_key: str, done: int) -> None:
        """Store new vectors for chunks (id, float32 bytes) and record `done` under `done_key` in `meta`, in one
        transaction: a re-encoding killed at any point resumes after the last batch it committed."""
        with self.conn:
            self.conn.executemany("UPDATE chunks SET vector = ? WHERE id = ?", ((blob, int(i)) for i, blob in rows))
            self._set_meta(done_key, str(done))

    def set_meta(self, key: str, value: str) -> None:
        with self.conn:
            self._set_meta(key, value)

    # -- the vector store's change log (see _m003_vector_log) ---------------------------------------------------
    def pending_vector_changes(self) -> tuple[int, dict[int, int]]:
        """(last seq, {chunk_id: op}) of the changes not yet applied to the vector store; the last op per chunk wins."""
        rows = self.conn.execute("SELECT seq, chunk_id, op FROM vector_log ORDER BY seq").fetchall()
        return (rows[-1][0] if rows else 0), {cid: op for _, cid, op in rows}

    def has_pending_vector_changes(self) -> bool:
        return self.conn.execute("SELECT 1 FROM vector_log LIMIT 1").fetchone() is not None

    def clear_vector_changes(self, upto: int, tombstones: Iterable[int] | None = None) -> None:
        """Forget the changes up to `upto` once the vector store holds them; `tombstones` (HNSW) replaces the set."""
        with self.conn:
            self.conn.execute("DELETE FROM vector_log WHERE seq <= ?", (upto,))
            if tombstones is not None:
                self.conn.execute("DELETE FROM vector_tombstones")
                self.conn.executemany("INSERT INTO vector_tombstones(chunk_id) VALUES (?)", ((int(i),) for i in tombstones))

    def tombstones(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT chunk_id FROM vector_tombstones")]

    def chunk_ids(self) -> np.ndarray:
        import numpy as np

        rows = self.conn.execute("SELECT id FROM chunks WHERE vector IS NOT NULL ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def chunk_texts(self, ids: Iterable[int] | None = None) -> Iterator[tuple[int, str, str, str]]:
        """(id, title, heading, text) of the given chunks, or of every chunk, for a keyword index kept beside SQLite."""
        if ids is None:
            yield from self.conn.execute("SELECT id, title, heading, text FROM chunks")
            return
        ids = [int(i) for i in ids]
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            yield from self.conn.execute(
                f"SELECT id, title, heading, text FROM chunks WHERE id IN ({','.join('?' * len(part))})", part
            )

    def chunk_records(self, ids: Iterable[int]) -> list[tuple]:
        """(id, doc_id, path, kind, mtime_ns, title, heading, text, vector blob, start_line, end_line, page,
        doc_kind, hash) of chunks, for a store that keeps them beside the vectors."""
        ids = [int(i) for i in ids]
        out: list[tuple] = []
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            out.extend(self.conn.execute(
                "SELECT c.id, c.doc_id, d.path, d.kind, d.mtime_ns, c.title, c.heading, c.text, c.vector,"
                f" c.start_line, c.end_line, c.page, {self._doc_kind}, c.hash FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks}) AND c.vector IS NOT NULL",
                part,
            ))
        return out

    # -- rerank cache -------------------------------------------------------------------------------------
    def cached_scores(self, model: str, query: str, chunk_hashes: list[str]) -> dict[str, float]:
        if not chunk_hashes:
            return {}
        marks = ",".join("?" * len(chunk_hashes))
        try:
            rows = self.conn.execute(
                f"SELECT chunk_hash, score FROM rerank_cache WHERE model = ? AND query = ? AND chunk_hash IN ({marks})",
                [model, query, *chunk_hashes],
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return {}
        return dict(rows)

    def cache_scores(self, model: str, query: str, scores: dict[str, float]) -> None:
        try:
            with self.conn:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO rerank_cache(model, query, chunk_hash, score) VALUES (?, ?, ?, ?)",
                    [(model, query, h, float(s)) for h, s in scores.items()],
                )
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc) and "read-only" not in str(exc):
                raise
            # a read-only index still reranks, it just does not remember

"""`check_index`: verify an index folder part by part and, with `repair=True`, rebuild what can be rebuilt from
what survives.

    manifest.json   valid JSON object with the needed fields and a schema this searchlm reads
                    -> restored from the copy kept in SQLite (`meta.manifest`)
    index.db        opens, `PRAGMA integrity_check` is ok
                    -> the readable documents and chunks are copied into a fresh database; the damaged file is
                       kept beside it (index.db.damaged-TIME); lost documents are re-read by the next `index`
    keywords        SQLite's own keyword tables agree with the chunks -> rebuilt from the chunks
    store           its vector index and keyword index, whatever their backends (`stores/`): each one's `verify()`
                    against SQLite, i.e. the digests the manifest recorded for its files (`integrity.py`), counts,
                    ids, finite unit vectors -> `repair()`: rebuilt from SQLite (vectors from the stored vectors,
                    keywords from the chunk texts); a store that cannot even be opened is set aside first
    encoder/        the ONNX query encoder's files are there, parse, and match their recorded digests
                    -> a private copy of the model's export is put back (exported again if the cache is damaged)

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

from searchlm.indexing import integrity
from searchlm.errors import IndexDamagedError, IndexMismatchError, IndexNotFoundError, SearchlmError
from searchlm.diskspace import disk_errors
from searchlm.indexing.lock import write_lock
from searchlm.indexing.manifest import DB_FILE, ENCODER_DIR, MANIFEST, Manifest
from searchlm.embed.cache import encoder_problem
from searchlm.settings import Settings



@dataclass
class Problem:
    part: str  # manifest, database, fts, vectors, keywords, encoder
    message: str
    repaired: bool = False
    fix: str = ""  # what the user can do when --repair could not

    def __post_init__(self):
        self.message = " ".join(self.message.split())  # one line, whatever SQLite or a store library said

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
    with disk_errors(index_dir), guard:
        store = _check_database(index_dir, name, report, repair)
        manifest = _check_manifest(index_dir, name, report, repair, store)
        if store is None:
            return report
        try:
            if manifest is not None:
                _check_fts(store, report, repair)
                _check_store(store, manifest, index_dir, report, repair)
                _note_tuning(manifest, report)
                _check_counts(store, manifest, index_dir, report, repair)
            _check_encoder(index_dir, manifest, report, repair, embedder, store)
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
    from searchlm.indexing.database import Database

    path = index_dir / DB_FILE
    problem = None
    store = None
    try:
        store = Database(path, existing=True)  # read-write: the keyword table's integrity-check is an INSERT (that writes nothing)
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
    return Database(path, existing=True)


def _salvage(path: Path) -> tuple[int, int]:
    """Copy every readable document with all its chunks (finite vectors) into a fresh database, then swap it
    in; the damaged file and its WAL move aside. Returns (documents kept, documents lost).

    Row by row: a damaged page loses the rows on it, not the rest of a table (a scan that meets it stops; rows
    past it are read by their ids), and a damaged index b-tree is never used (rows are read by rowid)."""
    import numpy as np

    from searchlm.indexing.database import Database, _add_cjk_rows

    tmp = path.with_name(f".{path.name}.repair")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    fresh = Database(tmp)
    kept = lost = 0
    try:
        old = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        old = None
    try:
        doc_cols = "id, path, kind, title, size, mtime_ns, content_hash, n_chunks, indexed_at"
        chunk_cols = "id, doc_id, ordinal, title, heading, start_line, end_line, page, text, hash, vector"
        docs = _rows(old, "documents", doc_cols)
        chunks = _rows(old, "chunks", chunk_cols)
        by_doc: dict[int, list] = {}
        for c in chunks.values():
            by_doc.setdefault(c[1], []).append(c)
        # A document whose row is lost but whose chunks survive is read again by the next `index` (its file is
        # still in the folder); its chunks' vectors are not lost either: the next run reuses them by hash.
        copy = _readable(old, "SELECT value FROM meta WHERE key = 'manifest'")
        with fresh.conn:
            if copy:
                fresh.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('manifest', ?)", copy[0])
            for doc in docs.values():
                mine = sorted(by_doc.get(doc[0], []), key=lambda c: c[2])
                good = (isinstance(doc[1], str) and len(mine) == doc[7] and all(
                    isinstance(c[10], bytes) and len(c[10]) % 4 == 0
                    and np.isfinite(np.frombuffer(c[10], dtype=np.float32)).all()
                    and isinstance(c[8], str) for c in mine))
                if not good:
                    lost += 1
                    continue
                try:
                    fresh.conn.execute(f"INSERT INTO documents({doc_cols}) VALUES (?,?,?,?,?,?,?,?,?)", doc)
                    fresh.conn.executemany(f"INSERT INTO chunks({chunk_cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", mine)
                except sqlite3.IntegrityError:  # a garbled row that reads (a repeated path, a wrong type)
                    fresh.conn.execute("DELETE FROM documents WHERE id = ?", (doc[0],))
                    lost += 1
                    continue
                _add_cjk_rows(fresh.conn, [(c[0], c[3], c[4], c[8]) for c in mine])
                kept += 1
            fresh.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?)", (str(int(time.time())),))
        fresh.fill_doc_kinds()
        # Documents whose rows were lost altogether count as lost too: the manifest (or its copy) has the count.
        for source in (lambda: copy[0][0], lambda: (path.parent / MANIFEST).read_text(encoding="utf-8")):
            try:
                lost = max(lost, int(json.loads(source())["documents"]) - kept)
                break
            except (OSError, IndexError, ValueError, KeyError, TypeError):
                continue
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


SALVAGE_GAP = 1000  # ids probed one by one past the last row a scan read, to step over a damaged page


def _rows(conn, table: str, columns: str) -> dict[int, tuple]:
    """Every readable row of `table` by rowid: scanned in rowid order while the scan holds; where it breaks,
    the ids after the last row read are tried one by one until a row reads again (or SALVAGE_GAP ids in a row
    fail, past the largest id the table reports), and the scan resumes from there."""
    out: dict[int, tuple] = {}
    if conn is None:
        return out
    top = 0
    for sql in (f"SELECT max(id) FROM {table}", f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'"):
        got = _readable(conn, sql)
        if got and isinstance(got[0][0], int):
            top = max(top, got[0][0])
    after = 0
    while True:
        try:
            for row in conn.execute(f"SELECT {columns} FROM {table} WHERE id > ? ORDER BY id", (after,)):
                out[row[0]] = row
                after = row[0]
            return out
        except sqlite3.DatabaseError:
            pass
        probe, misses = after + 1, 0
        while True:
            row = _readable(conn, f"SELECT {columns} FROM {table} WHERE id = ?", (probe,))
            if row:
                out[probe] = row[0]
                after = probe
                break
            misses += 1
            if probe > top and misses > SALVAGE_GAP:
                return out
            probe += 1


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


def _note_tuning(manifest, report) -> None:
    """How an HNSW index searches: its efSearch and the recall@10 measured for it, or exact search and why (see
    the store's `tune_ef_search`)."""
    from searchlm.stores.base import vector_search_line

    if manifest.ann.get("type") == "hnsw":
        line = vector_search_line(manifest)
        if line:  # a backend with nothing to say adds no note
            report.notes.append(line)


def _check_store(store, manifest, index_dir, report, repair) -> None:
    """The index's store (vector and keyword index), whatever its backends: `verify()` against SQLite, and
    `repair()` from it. A store that cannot even be opened is set aside (`discard`) and filled again from SQLite."""
    from searchlm.stores.base import discard_store, open_store

    from searchlm.errors import IndexBusyError

    try:
        vectors = open_store(index_dir, manifest, store)
    except IndexBusyError:  # in use by another process, not damaged: setting it aside would break that process
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged store may fail in its own library, in any way
        vectors, found = None, [("vectors", f"the vector store cannot be opened ({_first_line(exc)})")]
    else:
        try:
            found = vectors.problems()
        except Exception as exc:  # noqa: BLE001
            found = [("vectors", f"the vector store cannot be read ({_first_line(exc)})")]
    try:
        if not found:
            return
        problems = [Problem(part, why) for part, why in found]
        report.problems.extend(problems)
        if not repair:
            for problem in problems:
                problem.fix = f"run `searchlm check --name {report.name} --repair` (rebuilds it from SQLite)"
            return
        if vectors is None:
            aside = discard_store(index_dir, manifest)
            if aside:
                report.notes.append(f"the damaged store was moved aside as {aside}")
            vectors = open_store(index_dir, manifest, store)
        vectors.repair()
        manifest.save(index_dir, store)
        left = vectors.verify()
        for problem in problems:
            problem.repaired = not left
            if left:
                problem.fix = f"still: {left[0]}"
    finally:
        if vectors is not None:
            vectors.close()


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160] if text else type(exc).__name__


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


def _check_encoder(index_dir, manifest, report, repair, embedder, store) -> None:
    """The encoder's files are there, parse, and match the digests recorded when they were copied."""
    recorded = manifest.files if manifest is not None else None
    why = encoder_problem(index_dir, recorded=recorded, deep=True)
    if why is None and manifest is not None and not integrity.under(manifest.files, ENCODER_DIR + "/"):
        # An index from before digests were recorded: its encoder may be a hard link into the shared cache.
        why = "its files have no recorded digests (a copy shared with other indexes, from an older searchlm)"
    if why is None:
        return
    problem = Problem("encoder", f"the query encoder: {why}")
    report.problems.append(problem)
    if not repair or manifest is None:
        problem.fix = f"run `searchlm check --name {report.name} --repair` (copies it again from the model's export)"
        return
    restore_encoder(index_dir, manifest, embedder)
    manifest.save(index_dir, store)
    problem.repaired = encoder_problem(index_dir, recorded=manifest.files, deep=True) is None


def restore_encoder(index_dir: Path, manifest: Manifest, embedder=None) -> None:
    """Put a verified private copy of the ONNX query encoder back, from the shared cache's export of the model
    (exported again when the cache lacks it or is damaged), and record its digests in `manifest`."""
    import warnings

    from searchlm.embed.base import resolve_model
    from searchlm.embed.cache import install_encoder, record_encoder
    from searchlm.embed.onnx import export_onnx

    model = manifest.encoder_source(index_dir)  # its adapted encoder (`searchlm adapt`), else the packaged model

    def export(folder: Path) -> None:
        nonlocal embedder
        if embedder is None:
            from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder(model, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(embedder.model, model, folder)

    record_encoder(manifest, install_encoder(export, model, resolve_model(model), index_dir / ENCODER_DIR))


def _why(message: str) -> str:
    """The middle of a library message: 'index 'x': WHAT; run ...' -> WHAT."""
    head, _, rest = message.partition(": ")
    text = rest or head
    return text.split("; run ")[0]

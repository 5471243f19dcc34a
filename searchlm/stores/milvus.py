"""The Milvus backend of the vector-store seam: a Milvus Lite file inside the index folder, or a Milvus server.

One collection per index holds, per chunk: the dense vector, the chunk's text (title, heading, body) with an
analyzer and a BM25 function that fills a sparse field, and the scalar fields that `--path/--type/--since` need
(document id, path, kind, mtime). So BM25, filters and top-k all run inside Milvus; searchlm fuses the two lists
as it does for FAISS. SQLite stays the local record of documents, hashes, chunk texts and vectors (incremental
indexing, snippets, `ask` and the server read it); the collection is derived from it and can be refilled from it.

A collection on a server also holds what a search shows (each chunk's title, heading, text, lines, page, document
kind and hash) and, as a collection property, the index's manifest. So a machine with no index folder can search
it (`MilvusRecords`, `open_replica`): `searchlm serve --store http://HOST:19530 --name N` on any number of
machines answers the hits the indexing machine does, and an `index` run there is seen by all of them at once.

The collection's properties record the model, dimension and schema it was built with, so an index opened with
another model, or a collection written by an older searchlm, is refused with a message rather than misread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from searchlm.indexing import integrity
from searchlm.errors import IndexNotFoundError, InputError, StoreError
from searchlm.stores.base import ChunkFilter, StoreSpec, VectorIndex, weighted_fields
from searchlm.text import porter_terms

SCHEMA = 3  # of the collection's fields; bump when they change (2: the text field holds Porter stems; 3: what a
# search shows, and the manifest, for a machine with no index folder)
# The BM25 field is fed text searchlm has already analysed as FTS5 does (`porter_terms`: diacritics removed,
# lower-cased, Porter-stemmed), and so is the query: Milvus Lite's analyzer (3.2) only splits on \w+, lower-cases
# and drops stop words; it accepts a `stemmer` filter and ignores it, and rejects the `english` analyzer. With
# the stemming done here, Milvus Lite and a Milvus server index the same terms. Stop words stay in the documents
# (they count in a chunk's length, as in FTS5); the query leaves them out, as `query_terms` does for FTS5.
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase"]}
MAX_VARCHAR = 65535  # bytes, Milvus's limit for a VARCHAR field
BATCH = 1000  # rows per upsert
HNSW = {"M": 32, "efConstruction": 80}  # as the FAISS backend; Milvus Lite searches exactly (FLAT) by default
EF_SEARCH = 256
NO_NUMBER = -1  # a chunk's start_line, end_line or page when it has none (Milvus Lite has no nullable fields)
MANIFEST_PROPERTY = "searchlm.indexing.manifest"
DISPLAY_FIELDS = ["id", "doc_id", "path", "kind", "doc_kind", "title", "heading", "body", "start_line", "end_line",
                  "page", "hash"]
CONNECT_TIMEOUT = 5.0
TOPK_MAX = 16384  # Milvus's largest search limit
COPY_MAX = 200_000  # a search replica copies at most this many chunks' texts (for spelling corrections, filters)
COPY_CHECK_S = 2.0  # and asks the server this often whether the index has changed since


class MilvusStore(VectorIndex):
    name = "milvus"
    keywords = "milvus"  # BM25 in the same collection (stores/milvus_keywords.py)

    def __init__(self, index_dir: Path, manifest, store, spec: StoreSpec, warm: bool = False):
        self.manifest = manifest
        self.store = store
        self.spec = spec
        self.index_dir = index_dir
        self.lite = "://" not in spec.uri
        self.uri = str(index_dir / spec.uri) if self.lite else spec.uri
        self.collection = spec.collection
        self.dense_index = spec.extra.get("dense_index") or ("FLAT" if self.lite else "HNSW")
        # A replica's records (`MilvusRecords`) already hold a client of the server: one is enough
        self._client = getattr(store, "client", None)
        self._reader = None if self.lite or self._client is not None else ...  # ...: not tried yet (milvus_grpc)
        self._count: int | None = None
        self._check_schema()
        self._loaded = False

    @property
    def client(self):
        """pymilvus's `MilvusClient`, connected on first use: a search on a server does without it (`reader`)."""
        if self._client is None:
            self._client = _connect(self.uri, self.lite)
            if self.lite:
                _lite_opened(self.uri, +1)
        return self._client

    @property
    def reader(self):
        """The gRPC `milvus_grpc.Reader` for the calls a search makes, or None (Milvus Lite, TLS, credentials, or
        an answer it did not expect: then MilvusClient makes them)."""
        if self._reader is ...:
            from searchlm.stores import milvus_grpc

            self._reader = None
            address = milvus_grpc.plain_address(self.uri)
            if address is not None:
                try:
                    self._reader = milvus_grpc.Reader(address, CONNECT_TIMEOUT)
                except milvus_grpc.Unreachable as exc:
                    raise _unreachable(self.uri, str(exc)) from None
                except milvus_grpc.Unexpected:
                    pass
        return self._reader

    def _read(self, method: str, *args):
        """`reader.method(*args)`, or ... when there is no reader or it could not answer (the caller then asks
        MilvusClient, and so does every later call)."""
        reader = self.reader
        if reader is None:
            return ...
        from searchlm.stores import milvus_grpc

        try:
            return getattr(reader, method)(*args)
        except milvus_grpc.Unreachable as exc:
            raise _unreachable(self.uri, str(exc)) from None
        except milvus_grpc.Unexpected:
            reader.close()
            self._reader = None
            return ...

    def _load(self) -> None:
        """A collection must be loaded (into the query nodes' memory) before a search; Milvus Lite releases it
        when the file is closed."""
        if not self._loaded and self.client.has_collection(self.collection):
            self.client.load_collection(self.collection)
            self._loaded = True

    # -- checks -------------------------------------------------------------------------------------------
    def _fix(self) -> str:
        name = self.manifest.name
        if self.lite:
            return f"`searchlm drop {name}` then `searchlm index {self.manifest.root} --name {name} --store milvus`"
        return f"use another --name, or drop the collection '{self.collection}' in Milvus and index again"

    def _check_schema(self) -> None:
        if self.spec.schema > SCHEMA:
            raise StoreError(
                f"index '{self.manifest.name}' uses Milvus collection schema {self.spec.schema}, newer than this "
                "searchlm writes (upgrade searchlm: pip install -U searchlm)"
            )
        props = self._read("properties", self.collection)
        if props is ...:  # no reader, or no such collection (MilvusClient is the one to tell)
            if not self.client.has_collection(self.collection):
                return
            props = self.client.describe_collection(self.collection).get("properties", {}) or {}
        where = f"Milvus collection '{self.collection}' at {self.uri}"
        if "searchlm.schema" not in props:
            raise StoreError(f"{where} was not written by searchlm ({self._fix()})")
        schema = int(props["searchlm.schema"])
        if schema < SCHEMA:
            raise StoreError(f"{where} was written by an older searchlm (collection schema {schema}, now {SCHEMA}); "
                             f"rebuild it: {self._fix()}")
        if schema > SCHEMA:
            raise StoreError(f"{where} was written by a newer searchlm (collection schema {schema}); "
                             "upgrade searchlm (pip install -U searchlm)")
        model, dim = props.get("searchlm.model"), int(props.get("searchlm.dimension", 0))
        if model != self.manifest.model or dim != self.manifest.dimension:
            raise StoreError(
                f"{where} holds {dim}-d vectors of model '{model}', not {self.manifest.dimension}-d of "
                f"'{self.manifest.model}' ({self._fix()})"
            )
        root = props.get("searchlm.root")
        if root and self.manifest.root and root != self.manifest.root:
            raise StoreError(f"{where} holds documents from '{root}', not '{self.manifest.root}' ({self._fix()})")

    # -- writing ------------------------------------------------------------------------------------------
    def _create(self) -> None:
        from pymilvus import DataType, Function, FunctionType

        c = self.client
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.manifest.dimension)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                         analyzer_params=ANALYZER)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("doc_id", DataType.INT64)
        schema.add_field("path", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("kind", DataType.VARCHAR, max_length=64)
        schema.add_field("mtime_ns", DataType.INT64)
        schema.add_field("doc_kind", DataType.VARCHAR, max_length=64)
        schema.add_field("title", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("heading", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("body", DataType.VARCHAR, max_length=MAX_VARCHAR)  # the chunk's text as shown
        for name in ("start_line", "end_line", "page"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("hash", DataType.VARCHAR, max_length=128)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                     output_field_names=["sparse"]))
        params = c.prepare_index_params()
        if self.dense_index == "HNSW":
            params.add_index("vector", index_type="HNSW", metric_type="IP", params=HNSW)
        else:
            params.add_index("vector", index_type=self.dense_index, metric_type="IP")
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        properties = {"searchlm.schema": str(SCHEMA), "searchlm.model": self.manifest.model,
                      "searchlm.dimension": str(self.manifest.dimension), "searchlm.root": self.manifest.root or ""}
        c.create_collection(self.collection, schema=schema, index_params=params, properties=properties)

    def sync(self, store, manifest, progress=None) -> None:
        """Apply SQLite's change log (upserts and deletes by chunk id, idempotent), or fill a new collection from
        SQLite; then clear the log. A run killed in between re-applies the same changes next time."""
        self.manifest = manifest
        existed = self.client.has_collection(self.collection)
        if not existed:
            self._create()
        seq, changes = store.pending_vector_changes()
        full = not existed or manifest.ann.get("backend") != "milvus"
        if full:  # a new collection, or an index moving here from another store: everything SQLite holds
            wanted = store.chunk_ids()
            stale = np.setdiff1d(self._ids(), wanted) if existed else np.zeros(0, dtype=np.int64)
            upserts, deletes = wanted.tolist(), stale.tolist()
        else:
            upserts = [c for c, op in changes.items() if op == 1]
            deletes = [c for c, op in changes.items() if op == 0]
        for i in range(0, len(deletes), BATCH):
            self.client.delete(self.collection, ids=deletes[i : i + BATCH])
        done = 0
        for i in range(0, len(upserts), BATCH):
            rows = [_row(r) for r in store.chunk_records(upserts[i : i + BATCH])]
            if rows:
                self.client.upsert(self.collection, rows)
            done += len(rows)
            if progress:
                progress("store", done, len(upserts))
        # Sealed segments: Milvus Lite otherwise keeps every row in its memtable and rebuilds the BM25 inverted
        # index from it at every search (0.45 s against 0.018 s a search at 449 chunks; seconds at 10k).
        self.client.flush(self.collection)
        store.clear_vector_changes(seq)
        self._count = None
        manifest.ann = {"backend": "milvus", "generation": store.generation, "count": len(self),
                        "dense_index": self.dense_index, "ids": integrity.ids_digest(store.chunk_ids())}
        self._record_files(manifest)
        if not self.lite:  # what a machine without the index folder opens the index from (`open_replica`)
            shared = manifest.to_json()
            shared["documents"], shared["chunks"] = store.counts()
            self.client.alter_collection_properties(self.collection, {MANIFEST_PROPERTY: json.dumps(shared)})

    # -- checking -----------------------------------------------------------------------------------------
    def lite_files(self) -> list[str]:
        """Milvus Lite's data files in the index folder (its lock and its previous manifest aside); none for a
        server."""
        if not self.lite:
            return []
        return integrity.files_under(self.index_dir, self.spec.uri,
                                     skip=lambda name: name == "LOCK" or name.endswith(".prev"))

    def _record_files(self, manifest) -> None:
        if self.lite:
            integrity.record(self.index_dir, manifest.files, self.lite_files(), prefix=self.spec.uri + "/")

    def quick_problem(self) -> str | None:
        """Cheap: a Lite data file that changed since the last sync, or a collection that is missing. A server's
        collection is not asked about here (that would import pymilvus on every cold search, see `reader`): a
        search that finds it gone says so, and `check` verifies it."""
        ann = self.manifest.ann
        if not self.lite:
            return None
        if ann.get("backend") != "milvus":
            return "the Milvus collection is not written yet (an interrupted first run)"
        if ann.get("generation") != self.store.generation or self.store.has_pending_vector_changes():
            # A run killed between its SQLite commit and the collection's sync: the collection's chunk ids are
            # the replaced ones, so every hit would be dropped and searches found nothing until the next run.
            return "the Milvus collection is older than the database (an interrupted run)"
        if not self.client.has_collection(self.collection):
            return f"the Milvus collection '{self.collection}' is missing"
        return integrity.quick_problem(self.index_dir, self.manifest.files,
                                       integrity.under(self.manifest.files, self.spec.uri + "/"))

    def verify(self) -> list[str]:
        """The collection holds exactly SQLite's chunk ids (count and digest), and a search answers."""
        ann, store = self.manifest.ann, self.store
        if ann.get("backend") != "milvus":  # as FAISS says of a file a first run did not write yet
            return ["the Milvus collection is older than the database (an interrupted run): not written yet"]
        if not self.client.has_collection(self.collection):
            return [f"the Milvus collection '{self.collection}' is missing"]
        if ann.get("generation") != store.generation or store.has_pending_vector_changes():
            return ["the Milvus collection is older than the database (an interrupted run)"]
        if self.lite:
            damaged = integrity.verify(self.index_dir, self.manifest.files,
                                       integrity.under(self.manifest.files, self.spec.uri + "/"))
            if damaged:
                return [f"the Milvus Lite data is damaged ({damaged[0]})"]
        wanted = store.chunk_ids()
        try:
            held = self._ids()
            self.search(np.zeros(self.manifest.dimension, dtype=np.float32), 1)
        except Exception as exc:  # noqa: BLE001 - whatever Milvus says of its damaged files
            return [f"the Milvus collection cannot be read ({_first_line(exc)})"]
        if len(held) != len(wanted):
            return [f"the Milvus collection holds {len(held)} chunks for {len(wanted)} in the database"]
        if integrity.ids_digest(held) != integrity.ids_digest(wanted):
            return ["the Milvus collection holds chunk ids the database does not have"]
        return []

    def repair(self) -> None:
        """Drop the collection and fill a new one from SQLite. (Moving a Lite folder aside here instead does not
        work in-process: Milvus Lite keeps serving the moved folder's path until the process ends.)"""
        if self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        elif self.lite:  # files of a collection Milvus Lite no longer lists (its schema lost) block a new one
            import shutil

            shutil.rmtree(Path(self.uri) / "collections" / self.collection, ignore_errors=True)
        self._loaded = False
        self.manifest.ann = {}
        self.sync(self.store, self.manifest)

    @classmethod
    def discard(cls, index_dir: Path, manifest, spec: StoreSpec) -> str | None:
        """A Milvus Lite folder that cannot even be opened is moved aside (a new one is filled from SQLite);
        a server's collection is the server's to fix."""
        if "://" in spec.uri:
            return None
        path = index_dir / spec.uri
        if not path.exists():
            return None
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        manifest.ann = {}
        return aside.name

    def _ids(self) -> np.ndarray:
        self._load()
        out = []
        it = self.client.query_iterator(self.collection, batch_size=10000, filter="id >= 0", output_fields=["id"])
        try:
            while True:
                page = it.next()
                if not page:
                    break
                out.extend(r["id"] for r in page)
        finally:
            it.close()
        return np.asarray(out, dtype=np.int64)

    # -- reading ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        if self._count is None:
            count = self._read("count", self.collection)
            if count is not ...:
                self._count = count
                return count
            if not self.client.has_collection(self.collection):
                return 0
            self._load()
            rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
            self._count = int(rows[0]["count(*)"]) if rows else 0
        return self._count

    def warm_up(self) -> None:
        self._load()

    def search(self, query: np.ndarray, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        expr = self._expr(flt)
        if expr is None:
            return {}
        params = {"metric_type": "IP"}
        if self.dense_index == "HNSW":
            params["params"] = {"ef": max(EF_SEARCH, k)}
        found = self._read("search", self.collection, query, "vector", k, expr, params)
        if found is not ...:
            return found
        self._load()
        res = self.client.search(self.collection, data=[np.asarray(query, dtype=np.float32).ravel().tolist()],
                                 anns_field="vector", limit=k, filter=expr, search_params=params, output_fields=["id"])
        return {int(h["id"]): float(h["distance"]) for h in res[0]}

    def keyword_search(self, text: str, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        expr = self._expr(flt)
        if expr is None or not text:
            return {}
        return self._bm25(text, k, expr)

    def keyword_scores(self, text: str, ids: list[int]) -> dict[int, float]:
        """BM25 of particular chunks, by Milvus itself: a server searches just those ids (a primary-key filter).
        Milvus Lite evaluates a filter row by row in Python (seconds per query at 10k chunks), so there the
        whole ranked list is read once and the ids picked from it: exact while at most TOPK_MAX chunks match."""
        if not text or not ids:
            return {}
        ids = [int(i) for i in ids]
        if self.lite:
            wanted = set(ids)
            return {i: s for i, s in self._bm25(text, TOPK_MAX, "").items() if i in wanted}
        return self._bm25(text, len(ids), f"id in {ids}")

    def _bm25(self, text: str, k: int, expr: str) -> dict[int, float]:
        terms = " ".join(porter_terms(text))
        if not terms:
            return {}
        found = self._read("search", self.collection, terms, "sparse", min(k, TOPK_MAX), expr, {"metric_type": "BM25"})
        if found is not ...:
            return {i: abs(s) for i, s in found.items() if s}
        self._load()
        res = self.client.search(self.collection, data=[terms], anns_field="sparse", limit=min(k, TOPK_MAX), filter=expr,
                                 search_params={"metric_type": "BM25"}, output_fields=["id"])
        # BM25 is never negative; Milvus Lite reports it as a distance (-score), a server as a score.
        return {int(h["id"]): abs(float(h["distance"])) for h in res[0] if h["distance"]}

    def _expr(self, flt: ChunkFilter | None) -> str | None:
        """A Milvus filter for `flt` ('' for none; None when nothing can match)."""
        if not flt:
            return ""
        parts = []
        if flt.paths:  # paths as users type them, document kinds: SQLite picks the documents
            conn = getattr(self.store, "conn", None)  # a replica's copy: read once, it may ask the server
            if conn is None:
                raise InputError(f"--path, --exclude and --kind filters need the index folder of "
                                 f"'{self.manifest.name}' on this machine, or one of at most {COPY_MAX:,} chunks "
                                 "(search without them here, or on the machine that indexed it)")
            where, params = flt.path_sql()
            docs = [int(r[0]) for r in conn.execute(f"SELECT id FROM documents d WHERE {where}", params)]
            if not docs:
                return None
            parts.append(f"doc_id in {docs}")
        if flt.kinds:
            parts.append(f"kind in {json.dumps(list(flt.kinds))}")
        if flt.since_ns is not None:
            parts.append(f"mtime_ns >= {int(flt.since_ns)}")
        return " and ".join(parts)

    def close(self) -> None:
        for part in (self._reader, self._client):
            if part is not None and part is not ...:
                try:
                    part.close()
                except Exception:
                    pass
        if self.lite and self._client is not None:
            _lite_opened(self.uri, -1)
        self._client = None
        self._reader = None if self.lite else ...


_lite_clients: dict[str, int] = {}  # a Milvus Lite folder -> this process's open stores on it
_lite_guard = threading.Lock()


def _lite_opened(uri: str, change: int) -> None:
    """Count this process's stores open on a Milvus Lite folder, and stop Lite's in-process server for it when the
    last one closes. Lite serves each folder from one server per process, started by the first client and kept
    (with its flock on the folder) until the process exits, whatever the clients do: a closed `Searcher` in a
    long-lived process kept every other process (the next `index` run) out of the index."""
    with _lite_guard:
        left = _lite_clients.get(uri, 0) + change
        _lite_clients[uri] = max(left, 0)
        if left > 0:
            return
        del _lite_clients[uri]
    try:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)
    except Exception:  # noqa: BLE001 - another milvus-lite: its server then lives until the process exits
        pass


def _first_line(exc: BaseException) -> str:
    """What went wrong, in one line: pymilvus's own message without its exception's repr around it."""
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    return text[:160] if text else type(exc).__name__


def _row(record: tuple) -> dict:
    cid, doc_id, path, kind, mtime_ns, title, heading, text, blob, start, end, page, doc_kind, chash = record
    stems = "\n".join(" ".join(porter_terms(p)) for p in weighted_fields(title, heading, text))
    return {"id": cid, "vector": np.frombuffer(blob, dtype=np.float32), "text": _fit(stems), "doc_id": doc_id,
            "path": _fit(path), "kind": kind, "mtime_ns": mtime_ns, "doc_kind": doc_kind or "guide",
            "title": _fit(title or ""), "heading": _fit(heading or ""), "body": _fit(text or ""),
            "start_line": _number(start), "end_line": _number(end), "page": _number(page), "hash": chash or ""}


def _passage(r: dict):
    from searchlm.records import Passage

    return Passage(
        chunk_id=int(r["id"]), doc_id=int(r["doc_id"]), path=r["path"], kind=r["kind"], doc_kind=r["doc_kind"],
        title=r["title"], heading=r["heading"], text=r["body"], start_line=_or_none(r["start_line"]),
        end_line=_or_none(r["end_line"]), page=_or_none(r["page"]), hash=r["hash"],
    )


def _number(value: int | None) -> int:
    return NO_NUMBER if value is None else int(value)


def _or_none(value) -> int | None:
    return None if value is None or int(value) == NO_NUMBER else int(value)


def _fit(text: str) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= MAX_VARCHAR else data[:MAX_VARCHAR].decode("utf-8", "ignore")


def _connect(uri: str, lite: bool):
    from searchlm.stores.milvus_grpc import quiet_grpc

    quiet_grpc()  # before pymilvus imports grpc
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise StoreError("this index keeps its vectors in Milvus, and pymilvus is not installed "
                         "(pip install 'searchlm[milvus]')") from None
    import logging

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # errors reach the user once, as a StoreError
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)  # damage too: once, as searchlm's own line
    if lite:
        # Lite's server runs in this process, and grpc's server logs every call it does not implement with a
        # traceback (pymilvus asks it for AllocTimestamp): the client gets that error, once, as a StoreError.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        try:
            import milvus_lite  # noqa: F401
        except ImportError:
            raise StoreError(f"'{uri}' is a Milvus Lite file, and milvus-lite is not installed "
                             "(pip install 'searchlm[milvus]')") from None
    try:
        # A server: a connection of this client's own. pymilvus 3 otherwise shares one per URI in the process and
        # keeps it after every client closed; one the server has since dropped (restarted, or a GOAWAY for too many
        # keepalive pings from a long idle connection) failed the next client with "Fail connecting to server".
        return MilvusClient(uri=uri, timeout=CONNECT_TIMEOUT, **({} if lite else {"dedicated": True}))
    except Exception as exc:
        reason = _first_line(exc)
        if lite and Path(uri).exists():  # our own file that Milvus Lite cannot open: damaged derived data
            from searchlm.errors import IndexBusyError, IndexDamagedError

            name = Path(uri).parent.name
            if _held_elsewhere(Path(uri)):  # not damage: a repair would set a folder in use aside
                raise IndexBusyError(f"index '{name}': its Milvus Lite data at {uri} is open in another process "
                                     "(a `serve`, `mcp` or `watch` of this index); stop it and run this again") from None
            raise IndexDamagedError(f"index '{name}': the Milvus Lite data at {uri} cannot be opened ({reason}); "
                                    f"run `searchlm check --name {name} --repair`") from None
        raise _unreachable(uri, reason) from None


def _held_elsewhere(folder: Path) -> bool:
    """Whether another process has the Milvus Lite folder open: Lite holds a flock on its LOCK file while it
    serves the folder, and opens nothing else (it answers "Open local milvus failed", as for damage)."""
    import fcntl

    try:
        fd = os.open(folder / "LOCK", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _unreachable(uri: str, reason: str) -> StoreError:
    return StoreError(
        f"Milvus at '{uri}' cannot be reached ({reason}) (start it, e.g. `docker compose up -d` with Milvus's "
        "docker-compose.yml, or index with --store milvus for a local Milvus Lite file)"
    )


# -- a search replica: the index read from a Milvus server, with no index folder ----------------------------
class MilvusRecords:
    """What a search reads of an index's SQLite file, read from its Milvus collection instead: the passages of
    chunks by id, their vectors and document kinds. A `Searcher` on a machine without the index folder uses it in
    place of `Database`, and serves document views and `ask` too; spelling corrections and path or kind filters
    read a `search_copy` of its texts, paths and kinds."""

    def __init__(self, client, collection: str, generation: int = 0):
        self.client = client
        self.collection = collection
        self.generation = generation  # of the manifest it was opened with: the collection itself is always current
        self._copy, self._copy_generation, self._copy_checked = None, 0, 0.0  # see search_copy
        self._copy_lock = threading.Lock()

    def _rows(self, ids, fields: list[str]) -> list[dict]:
        ids = sorted({int(i) for i in ids})
        out: list[dict] = []
        for i in range(0, len(ids), BATCH):
            out.extend(self.client.query(self.collection, filter=f"id in {ids[i : i + BATCH]}", output_fields=fields))
        return out

    def chunks_by_id(self, ids) -> dict:
        return {int(r["id"]): _passage(r) for r in self._rows(ids, DISPLAY_FIELDS)}

    def chunks_of_document(self, doc_id: int) -> list:
        """A document's passages in order (its chunks' ids follow their order: a document's chunks are written
        together, in order)."""
        rows = self.client.query(self.collection, filter=f"doc_id == {int(doc_id)}", output_fields=DISPLAY_FIELDS)
        return [_passage(r) for r in sorted(rows, key=lambda r: r["id"])]

    def document(self, doc_id: int):
        """The document's row as far as the collection knows it (no size or content hash: they are SQLite's)."""
        from searchlm.indexing.database import DocumentRow

        rows = self.client.query(self.collection, filter=f"doc_id == {int(doc_id)}",
                                 output_fields=["id", "path", "kind", "title", "mtime_ns", "doc_kind"])
        if not rows:
            return None
        r = min(rows, key=lambda r: r["id"])
        return DocumentRow(id=int(doc_id), path=r["path"], kind=r["kind"], title=r["title"], size=0,
                           mtime_ns=int(r["mtime_ns"]), content_hash="", n_chunks=len(rows), doc_kind=r["doc_kind"])

    def document_by_path(self, path: str):
        rows = self.client.query(self.collection, filter=f"path == {json.dumps(path)}", output_fields=["doc_id"],
                                 limit=1)
        return self.document(int(rows[0]["doc_id"])) if rows else None

    def doc_kinds_of_chunks(self, ids) -> dict[int, str]:
        """{chunk_id: its document's kind} for those of the chunks whose document is not a guide."""
        return {int(r["id"]): r["doc_kind"] for r in self._rows(ids, ["id", "doc_kind"]) if r["doc_kind"] != "guide"}

    def vectors_by_id(self, ids) -> dict[int, np.ndarray]:
        return {int(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in self._rows(ids, ["id", "vector"])}

    @property
    def conn(self) -> sqlite3.Connection | None:
        """What filters read of the index's SQLite file: its `search_copy`."""
        return self.search_copy()[0]

    def search_copy(self) -> tuple[sqlite3.Connection | None, int]:
        """(the chunks' texts and the documents' paths and kinds in an in-memory SQLite database
        (`database.search_copy`), the index generation it holds), for spelling corrections and path or kind
        filters. Read from the collection at the first call, and again when the indexing machine has written a
        new generation (asked at most every COPY_CHECK_S seconds); None past COPY_MAX chunks (the copy would hold
        every text in memory: such a replica searches what was typed, without those filters)."""
        with self._copy_lock:  # searches in other threads may ask at once; an old copy closes when none holds it
            now = time.monotonic()
            if self._copy is None or now - self._copy_checked >= COPY_CHECK_S:
                self._copy_checked = now
                try:
                    generation = self._served_generation()
                    if self._copy is None or generation != self._copy_generation:
                        self._copy, self._copy_generation = self._read_copy(), generation
                except Exception:  # the server is away: the search itself says so
                    return None, -1
            return self._copy or None, self._copy_generation

    def _served_generation(self) -> int:
        props = self.client.describe_collection(self.collection).get("properties", {}) or {}
        return int(json.loads(props.get(MANIFEST_PROPERTY, "{}")).get("ann", {}).get("generation", 0))

    def _read_copy(self):
        from searchlm.indexing.database import search_copy

        count = self.client.query(self.collection, output_fields=["count(*)"])[0]["count(*)"]
        if count > COPY_MAX:
            return False
        batches = self.client.query_iterator(
            self.collection, batch_size=BATCH,
            output_fields=["id", "title", "heading", "body", "doc_id", "path", "kind", "doc_kind", "mtime_ns"])
        chunks, documents = [], {}
        try:
            while batch := batches.next():
                for r in batch:
                    chunks.append((int(r["id"]), r["title"], r["heading"], r["body"]))
                    documents[int(r["doc_id"])] = (int(r["doc_id"]), r["path"], r["kind"], r["doc_kind"],
                                                   int(r["mtime_ns"]))
        finally:
            batches.close()
        return search_copy(chunks, documents.values())

    def cached_scores(self, model: str, query: str, chunk_hashes: list[str]) -> dict[str, float]:
        return {}  # a replica keeps no reranker score cache

    def cache_scores(self, model: str, query: str, scores: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        if self._copy:
            self._copy.close()
        try:
            self.client.close()
        except Exception:
            pass


def open_replica(name: str, uri: str):
    """(manifest, records) of index `name` kept on the Milvus server at `uri`, for a machine that has no index
    folder for it: the manifest the indexing machine wrote into the collection, and a `MilvusRecords`."""
    from searchlm.indexing.manifest import Manifest
    from searchlm.stores.base import collection_name

    collection = collection_name(name)
    client = _connect(uri, lite=False)
    try:
        props = (client.describe_collection(collection).get("properties", {}) or {}
                 if client.has_collection(collection) else {})
        if MANIFEST_PROPERTY not in props:
            raise IndexNotFoundError(
                f"index '{name}' is not on this machine, nor in Milvus at {uri} with what a search needs "
                f"(collection '{collection}' {'was written by an older searchlm' if props else 'is missing'})",
                f"index it there: Index('{name}', store='{uri}').update(FOLDER)",
                f"index it there: `searchlm index DIR --name {name} --store {uri}`",
            )
        manifest = Manifest.from_json(json.loads(props[MANIFEST_PROPERTY]), name)
        manifest.store = {**manifest.store, "uri": uri}  # the server as this machine reaches it
    except BaseException:
        client.close()
        raise
    return manifest, MilvusRecords(client, collection, int(manifest.ann.get("generation", 0)))

"""The vector-store seam: where an index keeps its vectors, and for some backends its keyword index too.

    VectorStore        the contract: sync with SQLite, search (dense; keyword when `keyword` is True), verify and
                       repair (what `searchlm check` runs, for every backend alike), close
    ├── FaissStore     stores/faiss.py: one FAISS file in the index folder (the default, embedded)
    │   └── TantivyStore   stores/tantivy.py: the same FAISS file, and BM25 in a tantivy index beside it (fast past
    │                      a million chunks, where FTS5's full scoring is not)
    └── MilvusStore    stores/milvus.py: a Milvus collection, in a Milvus Lite file in the index folder or on a
                       Milvus server; BM25, filters and top-k run inside Milvus

A backend is chosen by name at index time (`--store`, `SEARCHLM_STORE`: `faiss`, `faiss+tantivy`, `milvus`, or a Milvus URI
such as `http://HOST:19530`, or a store a plugin registers), recorded in `manifest.json` as `store`, and reopened from
there by `open_store`. Backends are registered by name through searchlm/plugins.py, the built-ins included.

SQLite stays the source of truth: every chunk change is logged there (`Store.pending_vector_changes`), and
`sync` applies the log to the backend, then clears it. Applying a change twice is harmless (adds skip ids already
present, removals of absent ids do nothing), so a run killed between writing the backend and clearing the log is
repaired by the next `sync`, and a searcher that finds the log not empty applies it in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from searchlm.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from searchlm.manifest import Manifest
    from searchlm.store import Store

DEFAULT_STORE = "faiss"
TANTIVY = "faiss+tantivy"  # FAISS vectors, tantivy BM25
TITLE_REPEAT = 2  # the title counts twice, as FTS5's bm25 weights (title 2, heading 1, text 1) do


def weighted_fields(title: str | None, heading: str | None, text: str | None) -> list[str]:
    """A chunk's fields for a keyword engine that scores one field (tantivy, Milvus): the title TITLE_REPEAT times,
    then heading and text, empty ones left out; so its BM25 weighs them as SQLite FTS5 does."""
    return [p for p in [title] * TITLE_REPEAT + [heading, text] if p]


@dataclass
class ChunkFilter:
    """What `--path/--exclude/--type/--since/--kind/--exclude-kind` keep; each backend applies it before its top-k
    cut. Paths and document kinds come as SQL over `documents d` (`searchlm.filters` turns what a user types into
    it); a backend that cannot run SQL asks SQLite for the documents they keep."""

    paths: tuple = ()  # `filters.Filter`s for --path, --exclude, --kind, --exclude-kind: their `sql` and `params`
    kinds: tuple[str, ...] = ()
    since_ns: int | None = None

    def __bool__(self) -> bool:
        return bool(self.paths or self.kinds or self.since_ns is not None)

    def path_sql(self) -> tuple[str, list]:
        return " AND ".join(f.sql for f in self.paths), [p for f in self.paths for p in f.params]

    def sql(self) -> tuple[str, list]:
        """A WHERE clause over `documents d` for SQLite."""
        clauses, params = [], []
        if self.paths:
            where, values = self.path_sql()
            clauses.append(where)
            params.extend(values)
        if self.kinds:
            clauses.append(f"d.kind IN ({','.join('?' * len(self.kinds))})")
            params.extend(self.kinds)
        if self.since_ns is not None:
            clauses.append("d.mtime_ns >= ?")
            params.append(self.since_ns)
        return " AND ".join(clauses), params


@dataclass
class StoreSpec:
    """The `store` entry of a manifest."""

    backend: str = DEFAULT_STORE
    uri: str = ""  # Milvus: a file name inside the index folder (Lite) or a server URI
    collection: str = ""
    schema: int = 1
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"backend": self.backend}
        if self.backend == "milvus":
            out.update(uri=self.uri, collection=self.collection, schema=self.schema)
        return out

    @classmethod
    def from_json(cls, data: dict | None) -> StoreSpec:
        data = dict(data or {})
        return cls(backend=data.pop("backend", DEFAULT_STORE), uri=data.pop("uri", ""),
                   collection=data.pop("collection", ""), schema=data.pop("schema", 1), extra=data)

    def describe(self) -> str:
        return f"milvus ({self.uri})" if self.backend == "milvus" else self.backend


class VectorStore:
    """Vectors of one index, by chunk id. Backends implement `sync` and `search`; keyword backends add
    `keyword_search` and `keyword_scores`."""

    name = "base"
    keyword = False  # True: BM25 runs in this store rather than in SQLite FTS5
    cjk_in_sqlite = False  # True: CJK bigrams are still searched in SQLite while words go to the store

    def sync(self, store: Store, manifest: Manifest, progress=None) -> None:
        """Apply SQLite's pending chunk changes (or build from scratch) and persist; record it in `manifest.ann`."""
        raise NotImplementedError

    def search(self, query: np.ndarray, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        """Top-k {chunk_id: cosine} for one normalized query vector, filtered before the cut."""
        raise NotImplementedError

    def keyword_search(self, text: str, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        raise NotImplementedError

    def keyword_scores(self, text: str, ids: list[int]) -> dict[int, float]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def verify(self) -> list[str]:
        """Deep check against SQLite (`searchlm check`): what is wrong, one line each; [] when all is well. A
        line saying "older than the database" is an interrupted run that searches catch up, not damage."""
        raise NotImplementedError

    def quick_problem(self) -> str | None:
        """Cheap (a few stats), at open: a derived file that is not the one the manifest recorded, or data that
        is gone. A searcher that gets one says so in one line and searches SQLite's copy instead."""
        return None

    @classmethod
    def discard(cls, index_dir: Path, manifest: Manifest, spec: StoreSpec) -> str | None:
        """Set aside what cannot even be opened, so `repair` starts afresh; returns what was moved, or None."""
        return None

    def repair(self) -> None:
        """Rebuild what this store holds from SQLite (`check --repair`) and record it in the manifest (which the
        caller saves)."""
        raise NotImplementedError

    def warm_up(self) -> None:
        """Load what the first search would (a server calls this at start-up)."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_store(value: str | None, index_name: str) -> StoreSpec:
    """`--store` / `SEARCHLM_STORE` to a spec: `faiss`, `milvus` (Lite file in the index folder) or a Milvus URI."""
    value = (value or DEFAULT_STORE).strip()
    if value == "faiss":
        return StoreSpec()
    if value == TANTIVY:
        return StoreSpec(TANTIVY)
    if value == "milvus":
        return StoreSpec("milvus", uri="milvus.db", collection=collection_name(index_name))
    if value.startswith(("http://", "https://", "tcp://", "grpc://")):
        return StoreSpec("milvus", uri=value, collection=collection_name(index_name))
    from searchlm.plugins import stores

    return StoreSpec(stores.get(value).name)  # a store a plugin registers; an unknown name is an InputError


def collection_name(index_name: str) -> str:
    import re

    return "searchlm_" + (re.sub(r"[^A-Za-z0-9_]", "_", index_name) or "default")


def store_class(manifest: Manifest) -> type[VectorStore]:
    """The class of the manifest's vector store. Backends are registered by name (searchlm/plugins.py,
    `register_stores`: the built-ins and what plugins add), imported on first use (faiss and pymilvus are heavy)."""
    from searchlm.plugins import stores

    spec = StoreSpec.from_json(manifest.store)
    backend = stores.find(spec.backend)
    if backend is None:
        raise InputError(
            f"index '{manifest.name}' keeps its vectors in '{spec.backend}', which this searchlm does not know "
            "(install the plugin that provides it, or upgrade searchlm: pip install -U searchlm)"
        )
    return backend.load()


def discard_store(index_dir: Path, manifest: Manifest) -> str | None:
    """Set aside the store's data that cannot be opened (see `VectorStore.discard`)."""
    return store_class(manifest).discard(index_dir, manifest, StoreSpec.from_json(manifest.store))


def open_store(index_dir: Path, manifest: Manifest, store: Store, *, warm: bool = False) -> VectorStore:
    """The manifest's vector store for this index, ready to search or sync."""
    return store_class(manifest)(index_dir, manifest, store, spec=StoreSpec.from_json(manifest.store), warm=warm)

"""The store seam: where an index keeps its vectors and its keyword index, two contracts composed by one setting.

    VectorIndex          dense top-k by chunk id: sync with SQLite, search, verify and repair (what `searchlm check`
    │                    runs, for every backend alike), close
    ├── FaissStore       stores/faiss.py: one FAISS file in the index folder (flat, or HNSW past 100k vectors)
    └── MilvusStore      stores/milvus.py: a Milvus collection, in a Milvus Lite file in the index folder or on a
                         Milvus server; BM25, filters and top-k run inside Milvus
    KeywordIndex         BM25 top-k and the BM25 of given chunks, for the user's query as typed
    ├── Fts5Keywords     stores/fts5.py: SQLite's own FTS5 tables (the default; always kept, by triggers)
    ├── TantivyKeywords  stores/tantivy.py: a tantivy index beside the vectors (fast past a million chunks, where
    │                    FTS5's full scoring is not); FTS5 answers while it lags SQLite
    └── MilvusKeywords   stores/milvus_keywords.py: the BM25 function of the same Milvus collection
    ComposedStore        one of each, synced, verified and repaired together (`open_store`)

A store is chosen by name at index time (`--store`, `SEARCHLM_STORE`: `faiss`, `faiss+tantivy`, `milvus`, or a
Milvus URI such as `http://HOST:19530`, or a store a plugin registers), recorded in `manifest.json` as `store`, and
parsed once into a `StoreSpec` (which vector index, which keyword index) that `open_store` builds. Both sides are
registered by name through searchlm/plugins.py (`register_stores`, `register_keyword_indexes`), the built-ins too;
a vector index names the keyword index it comes with when the store name does not (`VectorIndex.keywords`).

SQLite stays the source of truth: every chunk change is logged there (`Database.pending_vector_changes`), and
`sync` applies the log to both sides, then clears it. Applying a change twice is harmless (adds skip ids already
present, removals of absent ids do nothing), so a run killed between writing a backend and clearing the log is
repaired by the next `sync`, and a searcher that finds the log not empty applies it in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from searchlm.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from searchlm.indexing.manifest import Manifest
    from searchlm.indexing.database import Database

from searchlm.stores import DEFAULT_STORE  # noqa: F401 (re-exported)

MILVUS = "milvus"  # the store a server URI names
TITLE_REPEAT = 2  # the title counts twice, as FTS5's bm25 weights (title 2, heading 1, text 1) do


def weighted_fields(title: str | None, heading: str | None, text: str | None) -> list[str]:
    """A chunk's fields for a keyword engine that scores one field (tantivy, Milvus): the title TITLE_REPEAT times,
    then heading and text, empty ones left out; so its BM25 weighs them as SQLite FTS5 does."""
    return [p for p in [title] * TITLE_REPEAT + [heading, text] if p]


@dataclass
class ChunkFilter:
    """What `--path/--exclude/--type/--since/--kind/--exclude-kind` keep; each backend applies it before its top-k
    cut. Paths and document kinds come as SQL over `documents d` (`searchlm.search.filters` turns what a user types into
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
    """The `store` entry of a manifest, parsed: which vector index (`vectors`) and which keyword index
    (`keywords`, "" for the one the vector index comes with) the store composes. The manifest keeps the name it
    was given (`backend`: "faiss", "faiss+tantivy", "milvus", a plugin's), so older indexes read the same."""

    backend: str = DEFAULT_STORE
    uri: str = ""  # Milvus: a file name inside the index folder (Lite) or a server URI
    collection: str = ""
    schema: int = 1
    extra: dict = field(default_factory=dict)
    vectors: str = ""
    keywords: str = ""

    def __post_init__(self) -> None:
        if not self.vectors:
            vectors, plus, keywords = self.backend.partition("+")
            self.vectors, self.keywords = (vectors, keywords) if plus else (self.backend, self.keywords)

    def to_json(self) -> dict:
        out = {"backend": self.backend}
        if self.uri:
            out.update(uri=self.uri, collection=self.collection, schema=self.schema)
        return out

    @classmethod
    def from_json(cls, data: dict | None) -> StoreSpec:
        data = dict(data or {})
        return cls(backend=data.pop("backend", DEFAULT_STORE), uri=data.pop("uri", ""),
                   collection=data.pop("collection", ""), schema=data.pop("schema", 1), extra=data)

    def describe(self) -> str:
        return f"{self.backend} ({self.uri})" if self.uri else self.backend

    def open(self, index_dir: Path, manifest: Manifest, store: Database, *, warm: bool = False) -> ComposedStore:
        """Build the vector index and the keyword index this spec names, composed."""
        from searchlm.plugins import keyword_indexes

        vectors = self.vector_class(manifest.name)(index_dir, manifest, store, spec=self, warm=warm)
        keywords = keyword_indexes.get(self.keywords or vectors.keywords).load()
        return ComposedStore(vectors, keywords(index_dir, manifest, store, vectors=vectors))

    def vector_class(self, index_name: str) -> type[VectorIndex]:
        """The registered vector index class (searchlm/plugins.py `register_stores`: the built-ins and what
        plugins add), imported on first use (faiss and pymilvus are heavy)."""
        from searchlm.plugins import stores

        backend = stores.find(self.vectors)
        if backend is None:
            raise InputError(
                f"index '{index_name}' keeps its vectors in '{self.backend}', which this searchlm does not know "
                "(install the plugin that provides it, or upgrade searchlm: pip install -U searchlm)"
            )
        return backend.load()


class VectorIndex:
    """Vectors of one index, by chunk id. A backend implements `sync`, `search`, `__len__`, `verify` and
    `repair`; the rest has defaults."""

    name = "base"
    keywords = "fts5"  # the keyword index this one comes with when the store's name does not say
    files: tuple[str, ...] = ()  # what it writes in the index folder from the stored vectors (re-encoding remakes it)

    def sync(self, store: Database, manifest: Manifest, progress=None) -> None:
        """Apply SQLite's pending chunk changes (or build from scratch), persist, clear the log; record it in
        `manifest.ann`."""
        raise NotImplementedError

    def search(self, query: np.ndarray, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        """Top-k {chunk_id: cosine} for one normalized query vector, filtered before the cut."""
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
        """Rebuild what this index holds from SQLite (`check --repair`) and record it in the manifest (which the
        caller saves)."""
        raise NotImplementedError

    @classmethod
    def search_line(cls, ann: dict) -> str | None:
        """How this backend searches an index, in one line for `status`, `check` and `index`, read from what
        `sync` recorded in `manifest.ann`; None when there is nothing to say."""
        return None

    def warm_up(self) -> None:
        """Load what the first search would (a server calls this at start-up)."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class KeywordIndex:
    """BM25 over one index's chunks, for the user's query as typed (each backend analyses it as its documents
    were). A backend implements `search` and `scores`; one that keeps files of its own also `sync`, `record`,
    `verify` and `repair`. Built as cls(index_dir, manifest, store, vectors=the VectorIndex beside it)."""

    name = "base"

    def search(self, query: str, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        """Top-k {chunk_id: BM25}, filtered before the cut; {} when the query has no word to search."""
        raise NotImplementedError

    def scores(self, query: str, ids: list[int]) -> dict[int, float]:
        """BM25 of particular chunks, as `search` scores them; chunks matching no query word are absent."""
        raise NotImplementedError

    def searchable(self, query: str) -> bool:
        """Whether the query has a word this index searches (else a hybrid search is dense only)."""
        raise NotImplementedError

    def current(self) -> KeywordIndex:
        """The index that answers now, for one whole search (its list and the scores it completes): this one, or
        a stand-in while it cannot (a tantivy index behind SQLite answers from FTS5)."""
        return self

    def sync(self, store: Database, manifest: Manifest) -> None:
        """Apply SQLite's pending chunk changes, before the vector index clears the log."""

    def record(self, manifest: Manifest) -> None:
        """Record the state `sync` left in the manifest, after the vector index recorded its own."""

    def verify(self) -> list[str]:
        """As `VectorIndex.verify`, for what this index keeps itself."""
        return []

    def repair(self) -> None:
        """Discard what this index keeps itself; the store's next sync rebuilds it from SQLite."""

    def close(self) -> None:
        pass


class ComposedStore:
    """An index's vector index and keyword index, synced, verified and repaired together."""

    def __init__(self, vectors: VectorIndex, keywords: KeywordIndex):
        self.vectors, self.keywords = vectors, keywords

    def sync(self, store: Database, manifest: Manifest, progress=None) -> None:
        """Both sides in step with SQLite; the log is cleared (by the vector index) only after both hold it."""
        self.keywords.sync(store, manifest)
        self.vectors.sync(store, manifest, progress)
        self.keywords.record(manifest)

    def problems(self) -> list[tuple[str, str]]:
        """("vectors" | "keywords", what is wrong) for each problem `verify` finds on either side."""
        found = [("vectors", why) for why in self.vectors.verify()]
        if any("older than the database" in why for _, why in found):
            return found  # an interrupted run: both sides are caught up together
        return found + [("keywords", why) for why in self.keywords.verify()]

    def verify(self) -> list[str]:
        return [why for _, why in self.problems()]

    def quick_problem(self) -> str | None:
        return self.vectors.quick_problem()

    def repair(self) -> None:
        """Rebuild both sides from SQLite and record them in the manifest (which the caller saves)."""
        self.keywords.repair()
        self.rebuild_vectors()

    def rebuild_vectors(self) -> None:
        """Rebuild the vector index from the vectors stored in SQLite (no re-encoding; its type chosen afresh by
        size), the keyword index brought in step, and record both in the manifest (which the caller saves)."""
        store, manifest = self.vectors.store, self.vectors.manifest
        self.keywords.sync(store, manifest)
        self.vectors.repair()
        self.keywords.record(manifest)

    def warm_up(self) -> None:
        self.vectors.warm_up()

    def close(self) -> None:
        self.keywords.close()
        self.vectors.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_store(value: str | None, index_name: str) -> StoreSpec:
    """`--store` / `SEARCHLM_STORE` to a spec: a vector index's name (`faiss`, `milvus`: a Lite file in the index
    folder, a plugin's), optionally `+` a keyword index's (`faiss+tantivy`), or a Milvus server URI."""
    value = (value or DEFAULT_STORE).strip()
    if value.startswith(("http://", "https://", "tcp://", "grpc://")):
        return StoreSpec(MILVUS, uri=value, collection=collection_name(index_name))
    from searchlm.plugins import keyword_indexes, stores

    vectors, plus, keywords = value.partition("+")
    vectors = stores.get(vectors).name  # an unknown name is an InputError naming the known ones
    if plus:
        keywords = keyword_indexes.get(keywords).name
    if vectors == MILVUS and not plus:
        return StoreSpec(MILVUS, uri="milvus.db", collection=collection_name(index_name))
    return StoreSpec(f"{vectors}+{keywords}" if plus else vectors)


# Past this many chunks, hybrid search on the default store spends most of its time in SQLite FTS5, which scores
# every matching chunk (no top-k pruning): its keyword side costs ~120 ms a query at 50k chunks and grows
# linearly (hybrid p50 487 ms at 200k against 110 ms with faiss+tantivy; benchmarks/RESULTS.md, issues #12, #23).
TANTIVY_ADVICE_CHUNKS = 50_000


def vector_files(manifest: Manifest) -> set[str]:
    """The names of the files an index's vector index writes in its folder from the stored vectors: what a copy to
    be re-encoded leaves out (`searchlm adapt`)."""
    return set(StoreSpec.from_json(manifest.store).vector_class(manifest.name).files)


def vector_search_line(manifest: Manifest) -> str | None:
    """How the index's vector backend searches it, in one line (its `VectorIndex.search_line` of the manifest's
    `ann`), for `index`, `status` and `check`. An unknown backend raises InputError, as `vector_class` does."""
    return StoreSpec.from_json(manifest.store).vector_class(manifest.name).search_line(manifest.ann)


def store_notices(manifest: Manifest, before: dict, chunks: int) -> list[str]:
    """One line each: a new efSearch measurement; a default store past TANTIVY_ADVICE_CHUNKS."""
    notices = []
    ann = manifest.ann
    measured = ("ef_search", "recall", "recall_far", "recall_target", "tuned_count", "probes", "mode")
    if "ef_search" in ann and any(ann.get(key) != before.get(key) for key in measured):
        line = vector_search_line(manifest)
        if line:
            notices.append(f"{line}.")
    if StoreSpec.from_json(manifest.store).backend == DEFAULT_STORE and chunks >= TANTIVY_ADVICE_CHUNKS:
        notices.append(f"{chunks:,} chunks: keyword search in SQLite FTS5 slows hybrid search at this size; "
                       f"`searchlm index {manifest.root} --name {manifest.name} --store faiss+tantivy` moves the "
                       "index to tantivy without re-encoding (pip install 'searchlm[tantivy]').")
    return notices


def collection_name(index_name: str) -> str:
    import re

    return "searchlm_" + (re.sub(r"[^A-Za-z0-9_]", "_", index_name) or "default")


def discard_store(index_dir: Path, manifest: Manifest) -> str | None:
    """Set aside the store's data that cannot be opened (see `VectorIndex.discard`)."""
    spec = StoreSpec.from_json(manifest.store)
    return spec.vector_class(manifest.name).discard(index_dir, manifest, spec)


def open_store(index_dir: Path, manifest: Manifest, store: Database, *, warm: bool = False) -> ComposedStore:
    """The manifest's store for this index (its vector and keyword indexes), ready to search or sync."""
    return StoreSpec.from_json(manifest.store).open(index_dir, manifest, store, warm=warm)

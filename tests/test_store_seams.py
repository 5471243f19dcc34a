"""The two contracts a store composes, each run against every backend that implements it: `VectorIndex` (FAISS
flat, FAISS HNSW, a Milvus Lite file) and `KeywordIndex` (SQLite FTS5, tantivy, Milvus BM25). Real MiniLM
vectors, real SQLite, FAISS, tantivy and Milvus Lite files; no mocks. (tests/test_stores.py runs whole stores
through searches and updates.)"""

from __future__ import annotations

import time

import numpy as np
import pytest

from searchlm.search.filters import Filter
from searchlm.indexing.indexer import index_folder
from searchlm.indexing.manifest import DB_FILE, Manifest
from searchlm.settings import Settings
from searchlm.indexing.database import Database
from searchlm.stores.base import ChunkFilter, ComposedStore, KeywordIndex, VectorIndex, open_store, parse_store
from conftest import write_files
from helpers import STORE_DOCS as DOCS


# A vector index -> the store that holds it (and, for HNSW, the size past which FAISS builds one).
VECTOR_INDEXES = {"faiss-flat": ("faiss", None), "faiss-hnsw": ("faiss", 1), "milvus": ("milvus", None)}
# A keyword index -> the store that holds it.
KEYWORD_INDEXES = {"fts5": "faiss", "tantivy": "faiss+tantivy", "milvus": "milvus"}


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, embedder):
    """build(store, hnsw_threshold) -> Settings of an index of DOCS in that store, built once per module."""
    from searchlm.stores import faiss as faiss_store

    built: dict = {}
    corpus = write_files(tmp_path_factory.mktemp("corpus"), DOCS)
    home = tmp_path_factory.mktemp("indexes")

    def build(store: str, hnsw: int | None = None) -> Settings:
        key = (store, hnsw)
        if key not in built:
            settings = Settings(home=home, name=f"{store.replace('+', '-')}-{hnsw or 'flat'}", store=store)
            with pytest.MonkeyPatch.context() as mp:
                if hnsw:
                    mp.setattr(faiss_store, "HNSW_THRESHOLD", hnsw)
                index_folder(corpus, settings, embedder=embedder)
            built[key] = settings
        return built[key]

    return build


def opened(settings: Settings):
    """(the index's SQLite store, its manifest, its composed store)."""
    store = Database(settings.index_dir / DB_FILE)
    manifest = Manifest.load(settings.index_dir)
    return store, manifest, open_store(settings.index_dir, manifest, store)


def path_filter(prefix: str) -> ChunkFilter:
    return ChunkFilter(paths=(Filter(f"--path {prefix}*", "d.path LIKE ?", [f"{prefix}%"]),))


def paths_of(store: Database, ids) -> set[str]:
    return {p.path for p in store.chunks_by_id(list(ids)).values()}


def test_a_store_name_is_parsed_once_into_its_two_parts():
    assert (parse_store(None, "n").vectors, parse_store(None, "n").keywords) == ("faiss", "")
    tantivy = parse_store("faiss+tantivy", "n")
    assert (tantivy.vectors, tantivy.keywords, tantivy.to_json()) == ("faiss", "tantivy", {"backend": "faiss+tantivy"})
    lite = parse_store("milvus", "my index")
    assert (lite.vectors, lite.uri, lite.collection) == ("milvus", "milvus.db", "searchlm_my_index")
    server = parse_store("http://db:19530", "n")
    assert (server.vectors, server.uri, server.describe()) == ("milvus", "http://db:19530", "milvus (http://db:19530)")
    from searchlm.errors import InputError

    with pytest.raises(InputError, match=r"^store 'annoy' is not one of faiss, milvus"):
        parse_store("annoy", "n")
    with pytest.raises(InputError, match=r"^keyword index 'lucene' is not one of fts5, milvus, tantivy"):
        parse_store("faiss+lucene", "n")


@pytest.mark.parametrize("name", VECTOR_INDEXES)
def test_vector_index_contract(name, indexes):
    """Every vector index: holds exactly SQLite's vectors, finds each chunk by its own vector with cosine 1,
    filters before the top-k cut, verifies clean, and after `repair()` holds the same again."""
    backend, hnsw = VECTOR_INDEXES[name]
    settings = indexes(backend, hnsw)
    store, manifest, stored = opened(settings)
    try:
        assert isinstance(stored, ComposedStore)
        vectors = stored.vectors
        assert isinstance(vectors, VectorIndex) and vectors.name == backend
        assert manifest.ann.get("type", "flat") == ("hnsw" if hnsw else "flat") or backend == "milvus"
        held = {int(i): v for ids, vecs in store.iter_vectors() for i, v in zip(ids, vecs)}
        assert len(vectors) == len(held) > 0
        for cid, vec in held.items():
            found = vectors.search(vec, 3)
            assert max(found, key=found.get) == cid and found[cid] == pytest.approx(1.0, abs=1e-4)
        bees = held[min(i for i, p in store.chunks_by_id(held).items() if p.path == "notes/bees.md")]
        only_ml = vectors.search(bees, 2, path_filter("ml/"))  # the best match is elsewhere: k still come
        assert len(only_ml) == 2 and paths_of(store, only_ml) <= {"ml/attention.md", "ml/trees.md"}
        assert vectors.search(bees, 3, path_filter("nothing/")) == {}
        future = time.time_ns() + 86400 * 10**9
        assert vectors.search(bees, 3, ChunkFilter(since_ns=future)) == {}
        assert vectors.quick_problem() is None and vectors.verify() == []

        vectors.repair()
        manifest.save(settings.index_dir, store)
        assert vectors.verify() == [] and len(vectors) == len(held)
        again = vectors.search(bees, 3)
        assert paths_of(store, [max(again, key=again.get)]) == {
            "notes/bees.md"}
    finally:
        stored.close()
        store.close()


@pytest.mark.parametrize("name", KEYWORD_INDEXES)
def test_keyword_index_contract(name, indexes):
    """Every keyword index: takes the query as typed, stems it ("splits" finds "split"), ranks as FTS5 does,
    scores given chunks as its search scored them, filters before the cut, and verifies clean."""
    settings = indexes(KEYWORD_INDEXES[name])
    store, _, stored = opened(settings)
    try:
        keywords = stored.keywords
        assert isinstance(keywords, KeywordIndex) and keywords.name == name and keywords.current() is keywords
        assert keywords.searchable("Sourdough?") and not keywords.searchable("?! -- ...")
        assert keywords.search("?! -- ...", 5) == {}

        top = keywords.search("sourdough starter yeast", 5)
        assert paths_of(store, [max(top, key=top.get)]) == {"notes/bread.txt"}
        assert paths_of(store, keywords.search("splits", 5)) == {"ml/trees.md"}  # the stem of "split"
        assert keywords.scores("sourdough starter yeast", list(top)) == pytest.approx(top)
        unmatched = [i for i, p in store.chunks_by_id(store.chunk_ids().tolist()).items() if p.path == "ml/trees.md"]
        assert keywords.scores("sourdough starter yeast", unmatched) == {}

        everywhere = keywords.search("bees dance token loop", 10)
        assert len(paths_of(store, everywhere)) == 3
        only_ml = keywords.search("bees dance token loop", 10, path_filter("ml/"))
        assert paths_of(store, only_ml) == {"ml/attention.md"}
        assert keywords.search("bees", 5, ChunkFilter(since_ns=time.time_ns() + 86400 * 10**9)) == {}
        assert keywords.verify() == []
    finally:
        stored.close()
        store.close()


def test_the_keyword_indexes_rank_alike(indexes):
    """The same top hit for the same query, whichever keyword index answers (each weighs titles as FTS5 does)."""
    tops = {}
    for name, backend in KEYWORD_INDEXES.items():
        store, _, stored = opened(indexes(backend))
        try:
            tops[name] = []
            for query in ("dancing bees", "a loop that slips", "weighing tokens", "decision tree"):
                found = stored.keywords.search(query, 5)
                tops[name].append(store.chunks_by_id([max(found, key=found.get)])[max(found, key=found.get)].path)
        finally:
            stored.close()
            store.close()
    assert tops["tantivy"] == tops["fts5"] == tops["milvus"]
    assert tops["fts5"] == ["notes/bees.md", "misc/knots.md", "ml/attention.md", "ml/trees.md"]

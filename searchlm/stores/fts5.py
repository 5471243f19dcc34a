"""SQLite FTS5 as a keyword index: the default, and the one every index keeps (its triggers keep it in step with
the chunks, in the same transaction), so the other keyword indexes fall back on it. Words go to the word table
(`porter unicode61`), Chinese, Japanese and Korean runs to the bigram table (`searchlm.cjk`); a chunk found by
both scores the sum."""

from __future__ import annotations

from searchlm.stores.query import cjk_query, fts_query
from searchlm.stores.base import ChunkFilter, KeywordIndex


class Fts5Keywords(KeywordIndex):
    name = "fts5"

    def __init__(self, index_dir=None, manifest=None, store=None, vectors=None):
        self.store = store

    def searchable(self, query: str) -> bool:
        return bool(fts_query(query) or cjk_query(query))

    def search(self, query: str, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        where, params = (flt or ChunkFilter()).sql()
        return dict(self.store.keyword_search(fts_query(query), k, where, params, cjk_query=cjk_query(query)))

    def scores(self, query: str, ids: list[int]) -> dict[int, float]:
        return self.store.keyword_scores(fts_query(query), ids, cjk_query=cjk_query(query))

"""Milvus's own BM25 as a keyword index: the BM25 function of the collection that holds the vectors
(`MilvusStore`), so keyword search, filters and top-k run inside Milvus, and there is nothing of its own to sync,
verify or repair."""

from __future__ import annotations

from searchlm.stores.query import keyword_text
from searchlm.stores.base import ChunkFilter, KeywordIndex


class MilvusKeywords(KeywordIndex):
    name = "milvus"

    def __init__(self, index_dir=None, manifest=None, store=None, vectors=None):
        self.collection = vectors  # the MilvusStore beside it

    def searchable(self, query: str) -> bool:
        return bool(keyword_text(query))

    def search(self, query: str, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        return self.collection.keyword_search(keyword_text(query), k, flt)

    def scores(self, query: str, ids: list[int]) -> dict[int, float]:
        return self.collection.keyword_scores(keyword_text(query), ids)

"""Rerankers: rescore the top candidates of a search with a slower, stronger model.

    cross-encoder[:MODEL]   any sentence-transformers CrossEncoder, by name or local folder (cross_encoder.py)
    lm[:MODEL]              query likelihood under a causal LM, default the packaged SmolLM2 (lm.py)
    NAME[:MODEL]            a reranker a plugin registers (searchlm/plugins.py)

`load_reranker(name, settings)` picks one by name (`lazy_reranker`: loads it only when a score is not cached);
`rerank_hits` scores a search's top candidates with it
(scores cached in the index's SQLite) and blends them with the retrieval score.
"""

from searchlm.rerank.base import Reranker, rerank_hits
from searchlm.rerank.registry import LazyReranker, lazy_reranker, load_reranker

__all__ = ["LazyReranker", "Reranker", "lazy_reranker", "load_reranker", "rerank_hits"]

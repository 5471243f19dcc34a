"""The reranker contract and `rerank_hits` (the registry of reranker kinds is `registry.py`).

A reranker implements `score(query, passages) -> list[float]` (higher = more relevant). Everything else is
shared: which candidates get scored, the SQLite cache keyed by (reranker key, query, chunk hash), and the blend
with the retrieval score. Blending rather than replacing matters: a small reranker that is worse than hybrid
retrieval on its own still adds to it (query likelihood alone ranks SciFact worse than hybrid does).
"""

from __future__ import annotations

from searchlm.errors import InputError
from searchlm.search.fusion import minmax
from searchlm.records import Hit


class Reranker:
    """Scores (query, passage) pairs. Subclasses set `key` (the cache key: model and anything that changes
    scores) and `weight` (the default share of the reranker in the blend with retrieval)."""

    key: str = ""
    weight: float = 0.5

    @classmethod
    def cache_key(cls, model: str | None) -> str:
        """The `key` an instance for `model` will have, computed without loading it."""
        raise NotImplementedError

    @classmethod
    def default_weight(cls, model: str | None) -> float:
        """The blend weight an instance for `model` will have (a tuned model folder may set its own)."""
        return cls.weight

    def score(self, query: str, passages: list[str]) -> list[float]:
        raise NotImplementedError


def passage_text(hit: Hit) -> str:
    """What a reranker reads: the document title, the heading path when it adds something, then the text."""
    parts = [hit.title] if hit.title else []
    if hit.heading and hit.heading != hit.title:
        parts.append(hit.heading)
    parts.append(hit.text)
    return "\n".join(parts)


def rerank_hits(
    reranker: Reranker, query: str, hits: list[Hit], depth: int, store=None, weight: float | None = None
) -> list[Hit]:
    """Rescore the first `depth` hits and reorder them by the blend
    `(1 - weight) * minmax(retrieval score) + weight * minmax(reranker score)`; hits below `depth` keep their order
    after them. Scores are read from and written to the store's cache when one is given."""
    if depth < 1:
        raise InputError(f"rerank depth {depth} is out of range", "use rerank_depth=20", "use --rerank-depth 20")
    weight = reranker.weight if weight is None else weight
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"rerank weight {weight} is out of range (use a value from 0 to 1)")
    head, tail = hits[:depth], hits[depth:]
    if not head:
        return hits
    raw = _scores(reranker, query, head, store)
    retrieval = minmax({i: h.score for i, h in enumerate(head)})
    model = minmax(dict(enumerate(raw)))
    blended = {i: (1 - weight) * retrieval[i] + weight * model[i] for i in range(len(head))}
    for i, hit in enumerate(head):
        hit.score = round(blended[i], 6)
        if hit.explain is not None:
            hit.explain["rerank_score"] = round(raw[i], 4)
    order = sorted(range(len(head)), key=lambda i: (-blended[i], i))
    return [head[i] for i in order] + tail


def _scores(reranker: Reranker, query: str, hits: list[Hit], store) -> list[float]:
    hashes = _hashes(hits, store) if store is not None else [None] * len(hits)
    cached = store.cached_scores(reranker.key, query, [h for h in hashes if h]) if store is not None else {}
    todo = [i for i, h in enumerate(hashes) if h is None or h not in cached]
    fresh: dict[int, float] = {}
    if todo:
        scores = reranker.score(query, [passage_text(hits[i]) for i in todo])
        fresh = {i: float(s) for i, s in zip(todo, scores)}
        if store is not None:
            store.cache_scores(reranker.key, query, {hashes[i]: s for i, s in fresh.items() if hashes[i]})
    return [fresh[i] if i in fresh else float(cached[hashes[i]]) for i in range(len(hits))]


def _hashes(hits: list[Hit], store) -> list[str | None]:
    missing = [h.chunk_id for h in hits if not h.hash]  # hits from a search carry their chunk's hash
    rows = store.chunks_by_id(missing) if missing else {}
    return [h.hash or (rows[h.chunk_id].hash if h.chunk_id in rows else None) for h in hits]

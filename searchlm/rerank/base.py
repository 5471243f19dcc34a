"""The reranker contract, the registry of reranker kinds, and `rerank_hits`.

A reranker implements `score(query, passages) -> list[float]` (higher = more relevant). Everything else is
shared: which candidates get scored, the SQLite cache keyed by (reranker key, query, chunk hash), and the blend
with the retrieval score. Blending rather than replacing matters: a small reranker that is worse than hybrid
retrieval on its own still adds to it (query likelihood alone ranks SciFact worse than hybrid does).
"""

from __future__ import annotations

from pathlib import Path

from searchlm.errors import InputError
from searchlm.fusion import minmax
from searchlm.records import Hit
from searchlm.settings import Settings


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


def model_fingerprint(path: str | Path) -> str:
    """8 hex characters that change when a local model's weights or config are rewritten (names, sizes and
    modification times; no reading of the weights). Part of a reranker's cache key, so that a model retrained in
    the same folder never meets the old model's cached scores. "" for a hub name (not a local path)."""
    import hashlib

    path = Path(path).expanduser()
    if not path.exists():
        return ""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    # searchlm's own settings file is left out: its weight does not change scores, and its passage budget and
    # prompt are in the key already (so writing the tuned weight does not orphan the cached scores)
    parts = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
             if p.suffix in (".safetensors", ".bin", ".gguf", ".json", ".model", ".onnx", ".pt")
             and not p.name.startswith("searchlm-")]
    return hashlib.sha256("|".join([str(path.resolve()), *parts]).encode()).hexdigest()[:8]


class LazyReranker(Reranker):
    """A reranker whose model loads on its first `score` call. It knows its cache key and weight without the
    model, so a query whose candidates are all cached is reranked without loading anything: a repeated
    `searchlm search --rerank lm` costs no model load (SmolLM2: ~25 s) in a one-shot process."""

    def __init__(self, key: str, weight: float, load, on_load=None, name: str = ""):
        self.key, self.weight, self._load, self.loaded = key, weight, load, None
        self.on_load, self.name = on_load, name

    def score(self, query: str, passages: list[str]) -> list[float]:
        if self.loaded is None:
            if self.on_load is not None:
                self.on_load(self.name or self.key)
            self.loaded = self._load()
        return self.loaded.score(query, passages)


def _cross_encoder():
    from searchlm.rerank.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker


def _lm():
    from searchlm.rerank.lm import LMReranker

    return LMReranker


RERANKERS = {"cross-encoder": _cross_encoder, "lm": _lm}  # kind -> its class (imported on use; no torch yet)


def _parse(name: str):
    kind, _, model = name.strip().partition(":")
    cls = RERANKERS.get(kind.strip().lower())
    if cls is None:
        raise InputError(f"reranker '{name}' is not one of {', '.join(RERANKERS)} (use lm, lm:MODEL or cross-encoder:MODEL)")
    return cls(), model.strip() or None


def load_reranker(name: str, settings: Settings) -> Reranker:
    """`cross-encoder`, `cross-encoder:MODEL`, `lm` or `lm:MODEL` (MODEL: a hub name or a local folder),
    loaded now (a model that cannot load is a ModelError here)."""
    cls, model = _parse(name)
    return cls(model, device=settings.device)


def lazy_reranker(name: str, settings: Settings, on_load=None) -> LazyReranker:
    """The same reranker, loaded only when some candidate's score is not in the cache (`on_load(name)` is
    called just before)."""
    cls, model = _parse(name)
    return LazyReranker(cls.cache_key(model), cls.default_weight(model), lambda: cls(model, device=settings.device),
                        on_load=on_load, name=name)


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
        raise InputError(f"rerank depth {depth} is out of range (use --rerank-depth 20)")
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
    rows = store.chunks_by_id([h.chunk_id for h in hits])
    return [rows[h.chunk_id].hash if h.chunk_id in rows else None for h in hits]

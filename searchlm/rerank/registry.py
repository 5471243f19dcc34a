"""Rerankers by name: `cross-encoder[:MODEL]`, `lm[:MODEL]` and the kinds plugins register (searchlm/plugins.py),
loaded now (`load_reranker`) or when a score is first missing from the cache (`lazy_reranker`). Each kind's module
is imported on use: no torch yet."""

from __future__ import annotations

from searchlm.rerank.base import Reranker
from searchlm.settings import Settings


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


def _parse(name: str):
    """(class, model or None) for `KIND[:MODEL]`; kinds are the registered rerankers (searchlm/plugins.py)."""
    from searchlm.plugins import rerankers

    kind, _, model = name.strip().partition(":")
    return rerankers.get(kind).load(), model.strip() or None


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

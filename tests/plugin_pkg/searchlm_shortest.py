"""A searchlm plugin: the reranker `shortest` scores a passage by its length, shorter higher."""

from searchlm import hookimpl
from searchlm.rerank import Reranker


class ShortestReranker(Reranker):
    key = "shortest"
    weight = 1.0  # by default its order alone

    def __init__(self, model=None, device="auto"):
        self.model = model

    @classmethod
    def cache_key(cls, model):
        return "shortest"

    def score(self, query, passages):
        return [-float(len(p)) for p in passages]


@hookimpl
def register_rerankers(register):
    register("shortest", ShortestReranker)

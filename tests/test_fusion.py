"""Hybrid retrieval: fusion functions, safe keyword queries, `--explain`, and document grouping."""

from __future__ import annotations

import pytest

from searchlm.search.fusion import fuse_minmax, fuse_rrf, minmax
from searchlm.stores.query import fts_query
from searchlm.search.searcher import Searcher, SearchOptions


# -- fusion functions ------------------------------------------------------------------------------------
def test_minmax_scales_to_unit_range_and_handles_ties():
    assert minmax({1: 10.0, 2: 5.0, 3: 0.0}) == {1: 1.0, 2: 0.5, 3: 0.0}
    assert minmax({7: 3.0}) == {7: 1.0}
    assert minmax({1: 2.0, 2: 2.0}) == {1: 1.0, 2: 1.0}
    assert minmax({}) == {}


def test_fuse_minmax_weights_and_missing_candidates():
    keyword = {1: 10.0, 2: 0.0}
    dense = {2: 0.9, 3: 0.1}
    fused = fuse_minmax(keyword, dense, dense_weight=0.25)
    assert fused[1] == pytest.approx(0.75)  # keyword 1.0 * 0.75, absent from dense
    assert fused[2] == pytest.approx(0.25)  # keyword 0.0, dense 1.0 * 0.25
    assert fused[3] == pytest.approx(0.0)
    assert fuse_minmax(keyword, {}, 0.5) == {1: 1.0, 2: 0.0}  # one list empty: the other alone
    assert fuse_minmax({}, dense, 0.5) == {2: 1.0, 3: 0.0}
    only_dense = fuse_minmax(keyword, dense, dense_weight=1.0)
    assert max(only_dense, key=only_dense.get) == 2


def test_rrf_rewards_agreement_and_ignores_score_scale():
    keyword = {1: 100.0, 2: 50.0, 3: 1.0}
    dense = {2: 0.9, 4: 0.8, 1: 0.1}
    fused = fuse_rrf(keyword, dense)
    assert max(fused, key=fused.get) == 2  # ranked 2nd and 1st beats 1st and 3rd
    assert fused[1] == pytest.approx(1 / 61 + 1 / 63)
    assert fuse_rrf({k: v * 1000 for k, v in keyword.items()}, dense) == fused


# -- keyword query sanitizing ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ['"unbalanced quote', "AND OR NOT", "NEAR(a b)", "title:foo", "c++ -- ^*", "(((", "a*", "'; DROP TABLE chunks;--",
     "ünïcödé straße", "?!", "-negated +plus"],
)
def test_fts_query_is_always_safe(sample_index, text):
    searcher = Searcher(sample_index)
    try:
        hits = searcher.search(text, SearchOptions(k=3, mode="keyword"))
        assert isinstance(hits.hits, list) and len(hits) <= 3
        hybrid = searcher.search(text, SearchOptions(k=3))
        assert len(hybrid) <= 3
    finally:
        searcher.close()


def test_fts_query_quotes_words_and_drops_operators():
    assert fts_query('the "bees" AND honey*') == '"bees" OR "honey"'
    assert fts_query("the and of") == '"the" OR "and" OR "of"'  # only stopwords: keep them
    assert fts_query("?!") == ""


# -- explain and grouping --------------------------------------------------------------------------------
def test_explain_shows_each_list_and_the_fused_score(sample_index):
    searcher = Searcher(sample_index)
    try:
        hits = searcher.search("how do bees make honey", SearchOptions(k=5, explain=True))
        assert hits
        for hit in hits:
            e = hit.explain
            assert set(e) >= {"keyword_rank", "keyword_score", "dense_rank", "dense_score", "fused_score"}
            assert e["keyword_rank"] is not None or e["dense_rank"] is not None
            assert e["fused_score"] == pytest.approx(hit.score, abs=1e-4)
        fused = [h.explain["fused_score"] for h in hits]
        assert fused == sorted(fused, reverse=True)
        assert hits[0].explain["keyword_rank"] == 1 or hits[0].explain["dense_rank"] == 1
    finally:
        searcher.close()


def test_group_by_document_gives_one_hit_per_document(sample_index):
    searcher = Searcher(sample_index)
    try:
        hits = searcher.search("the", SearchOptions(k=20, group_by_document=True))
        docs = [h.doc_id for h in hits]
        assert len(docs) == len(set(docs)) and len(docs) > 3
        chunks = searcher.search("the", SearchOptions(k=20))
        assert len({h.doc_id for h in chunks}) < len(chunks)  # without grouping, documents repeat
    finally:
        searcher.close()


def test_dense_weight_moves_the_ranking_towards_one_list(sample_index):
    searcher = Searcher(sample_index)
    try:
        q = "insects that produce a sweet food"
        dense = searcher.search(q, SearchOptions(k=3, mode="dense"))
        all_dense = searcher.search(q, SearchOptions(k=3, dense_weight=1.0))
        assert [h.chunk_id for h in all_dense][:1] == [h.chunk_id for h in dense][:1]
        keyword = searcher.search(q, SearchOptions(k=3, mode="keyword"))
        all_keyword = searcher.search(q, SearchOptions(k=3, dense_weight=0.0))
        if keyword:
            assert all_keyword[0].chunk_id == keyword[0].chunk_id
    finally:
        searcher.close()


def test_hybrid_gives_every_candidate_both_scores_exactly(sample_index):
    """A candidate found by one retriever gets its real score from the other, not a 0 for missing the cut."""
    import numpy as np

    searcher = Searcher(sample_index)
    try:
        query = "insects that produce a sweet food"
        hits = searcher.search(query, SearchOptions(k=10, depth=3, explain=True))
        assert len(hits) > 3  # more candidates than either list's depth: the union of both
        q = searcher.encoder.embed_query(query)
        vectors = searcher.store.vectors_by_id([h.chunk_id for h in hits])
        for hit in hits:
            e = hit.explain
            assert e["keyword_score"] is not None and e["dense_score"] is not None
            assert e["dense_score"] == pytest.approx(float(vectors[hit.chunk_id] @ q), abs=1e-3)
        exact = dict(searcher.store.keyword_search(fts_query(query), 1000))
        for hit in hits:
            assert hit.explain["keyword_score"] == pytest.approx(exact.get(hit.chunk_id, 0.0), abs=1e-3)
        assert np.isfinite([h.score for h in hits]).all()
    finally:
        searcher.close()


def test_grouped_scores_fuse_each_documents_best_keyword_and_dense_chunk(sample_index):
    searcher = Searcher(sample_index)
    try:
        query = "volcano eruption lava"
        grouped = searcher.search(query, SearchOptions(k=5, group_by_document=True))
        scores = [h.score for h in grouped]
        assert scores == sorted(scores, reverse=True)
        chunks = searcher.search(query, SearchOptions(k=50, explain=True))
        top_doc = grouped[0].doc_id
        assert any(h.doc_id == top_doc for h in chunks[:3])
        # Shown by its best fused chunk.
        best_chunk = next(h for h in chunks if h.doc_id == top_doc)
        assert grouped[0].chunk_id == best_chunk.chunk_id
    finally:
        searcher.close()

"""The sample corpus works as the README promises: every question in QUERIES.md finds its document in the top 3."""

from __future__ import annotations

import pytest

from conftest import SAMPLE_CORPUS
from helpers import sample_queries
from searchlm.search.searcher import Searcher
from searchlm.indexing.walk import walk


def test_sample_corpus_has_the_promised_mix():
    files = walk(SAMPLE_CORPUS)
    kinds = {f.path.suffix for f in files}
    assert len(files) >= 30
    assert {".md", ".txt", ".rst", ".html", ".pdf", ".docx"} <= kinds
    assert "QUERIES.md" not in {f.rel for f in files}  # hidden by sample_corpus/.searchlmignore
    assert len(sample_queries()) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("question, expected", sample_queries())
def test_each_sample_question_finds_its_document_in_top_3(sample_index, question, expected):
    hits = Searcher(sample_index).search(question, k=3)
    found = [h.path for h in hits]
    assert any(p.endswith(expected) for p in found), f"{question!r}: expected {expected}, got {found}"

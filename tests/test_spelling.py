"""Typos: a query word the index does not hold is searched as its nearest indexed word; known words never change."""

from __future__ import annotations


import pytest
from typer.testing import CliRunner

from searchlm.cli import app
from searchlm.search.searcher import SearchOptions, Searcher

# (misspelled, correctly spelled, expected document): the sample corpus questions of QUERIES.md, short forms.
TYPOS = [
    ("honey bess keep warm in wintre", "honey bees keep warm in winter", "misc/beekeeping.rst"),
    ("wild yaest culture for bakng bread", "wild yeast culture for baking bread", "misc/sourdough-baking.md"),
    ("why do reefs trun white when the ocaen is warm", "why do reefs turn white when the ocean is warm", "misc/coral-reefs.md"),
    ("kitchen scarps in a compost plie", "kitchen scraps in a compost pile", "misc/home-composting.docx"),
    ("memory of the Apolo guidance computr", "memory of the Apollo guidance computer", "misc/apollo-guidance-computer.html"),
    ("rare words broken into smaller peices tokenizaton", "rare words broken into smaller pieces tokenization", "ml/tokenization-bpe.md"),
    ("BM25 term frequncy saturaton", "BM25 term frequency saturation", "search/bm25-ranking.rst"),
    ("keyword search in SQLite with FTS5 extention", "keyword search in SQLite with FTS5 extension", "search/sqlite-fts5.txt"),
    ("aged Manchgo price at the London chesse shop", "aged Manchego price at the London cheese shop", "misc/cheese-tasting-journal.txt"),
    ("split long documnets into overlaping pieces", "split long documents into overlapping pieces", "code/text_chunker.py"),
]


def _top3(searcher, query):
    return [h.path for h in searcher.search(query, SearchOptions(k=3, group_by_document=True))]  # as stored


@pytest.fixture(scope="module")
def searcher(sample_index):
    s = Searcher(sample_index)
    yield s
    s.close()


def test_misspelled_queries_find_what_the_spelled_ones_find(searcher):
    same = 0
    for typo, right, expected in TYPOS:
        assert expected in _top3(searcher, right), right
        same += expected in _top3(searcher, typo)
    assert same >= 8, f"{same}/10 misspelled queries found the expected document in the top 3"


def test_correct_queries_are_never_corrected(searcher):
    for _, right, _ in TYPOS:
        assert searcher.correct(right) is None, right


def test_a_typo_is_corrected_and_said(searcher, sample_index):
    fix = searcher.correct("honey bess keep warm in wintre")
    assert fix.changes == {"wintre": "winter"} or fix.changes.get("wintre") == "winter"
    result = CliRunner().invoke(app, ["search", "honey bess keep warm in wintre", "--home", str(sample_index.home),
                                      "--name", sample_index.name, "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "Showing results for 'honey" in result.stdout and "winter" in result.stdout
    plain = CliRunner().invoke(app, ["search", "honey bess keep warm in wintre", "--home", str(sample_index.home),
                                     "--name", sample_index.name, "--no-correct", "-k", "3"])
    assert "Showing results for" not in plain.stdout


def test_a_copy_of_the_texts_corrects_as_the_index_does(searcher):
    # What a search replica corrects with (it has no index file): the chunks' texts in memory, under the index's
    # own keyword table. Every typo gets the same correction as from the index file, and known words none.
    from searchlm.indexing.database import search_copy
    from searchlm.search.spelling import correct_query

    rows = searcher.store.conn.execute("SELECT id, title, heading, text FROM chunks").fetchall()
    copy = search_copy(rows, [])
    try:
        for typo, right, _ in TYPOS:
            assert correct_query(copy, typo) == correct_query(searcher.store.conn, typo) is not None, typo
            assert correct_query(copy, right) is None, right
    finally:
        copy.close()

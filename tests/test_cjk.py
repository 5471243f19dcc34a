"""Chinese, Japanese and Korean keyword search: bigram indexing, the schema migration, snippets and the CJK
questions of sample_corpus/QUERIES.md."""

from __future__ import annotations

import sqlite3

import pytest

from searchlm import cjk
from searchlm.stores.query import cjk_query, fts_query
from searchlm.search.snippets import snippet_text
from helpers import sample_queries

CJK_QUERIES = [(q, path) for q, path in sample_queries() if cjk.has_cjk(q)]


def test_bigrams_of_each_script():
    assert cjk.index_text("机器学习。熊") == "机器 器学 学习 习 熊"
    assert cjk.index_text("English only") == ""
    assert cjk.runs("GPT模型と김치") == ["模型と김치"]
    terms, phrases = cjk.query_grams("ラーメンはいつ")
    assert "ラー" in terms and "はい" not in terms  # hiragana-only bigrams are grammar
    assert phrases == ["ラーメンはいつ"]


def test_english_queries_are_unchanged():
    assert cjk_query("How do honey bees keep warm?") == ""
    assert fts_query("the honey bees") == '"honey" OR "bees"'
    assert fts_query("GPT模型 attention") == '"gpt" OR "attention"'


def test_snippets_mark_cjk_words():
    text = "大熊猫生活在中国西南部的高山竹林里。一只成年大熊猫每天要吃掉十到二十公斤竹子。"
    assert "[竹子]" in snippet_text(text, "竹子")
    assert "[熊猫]" in snippet_text(text, "熊猫")
    assert snippet_text("김치는 배추로 만든다", "김치") == "[김치]는 배추로 만든다"
    assert snippet_text("김치는 배추로 만든다", "김치는?") == "[김치는] 배추로 만든다"
    english = "Honey bees cluster together in winter to keep warm."
    assert snippet_text(english, "bees winter") == "Honey [bees] cluster together in [winter] to keep warm."


@pytest.mark.slow
@pytest.mark.parametrize("word, expected", [
    ("熊猫", "cjk/zh-giant-panda.md"),  # a two-character Chinese word inside sentences
    ("竹子", "cjk/zh-giant-panda.md"),
    ("ラーメン", "cjk/ja-ramen-history.md"),  # a katakana word
    ("地震", "cjk/ja-earthquake-preparedness.txt"),
    ("김치", "cjk/ko-kimchi.md"),  # a Korean word that carries particles in the text (김치는, 김치를)
    ("세종대왕", "cjk/ko-hangul.md"),
    ("多头注意力", "cjk/zh-transformer-attention.md"),
])
def test_a_word_inside_cjk_text_is_found(sample_index, word, expected):
    from searchlm.search.searcher import Searcher

    hits = Searcher(sample_index).search(word, k=3, mode="keyword")
    assert hits and hits[0].path.endswith(expected), [h.path for h in hits]


@pytest.mark.slow
@pytest.mark.parametrize("question, expected", CJK_QUERIES)
def test_each_cjk_question_is_found_by_keyword_search(sample_index, question, expected):
    from searchlm.search.searcher import Searcher

    hits = Searcher(sample_index).search(question, k=3, mode="keyword")
    assert any(h.path.endswith(expected) for h in hits), f"{question!r}: expected {expected}, got {[h.path for h in hits]}"


def test_cjk_questions_are_in_queries_md():
    assert len(CJK_QUERIES) >= 6
    assert {p.split("/")[1][:2] for _, p in CJK_QUERIES} == {"zh", "ja", "ko"}


def test_an_index_from_before_cjk_migrates_and_finds_cjk(make_index):
    from searchlm.search.searcher import Searcher
    from searchlm.indexing.database import SCHEMA_VERSION, Database

    settings, _, _ = make_index({"notes/panda.md": "# 熊猫\n\n大熊猫每天吃很多竹子。\n", "notes/bees.md": "# Bees\n\nBees keep warm.\n"})
    db = settings.index_dir / "index.db"
    conn = sqlite3.connect(db)  # turn it back into a schema-1 index, as an older searchlm wrote it
    conn.executescript(
        "DROP TRIGGER chunks_cjk_ad; DROP TABLE chunks_cjk; DROP TRIGGER chunks_vector_add; DROP TRIGGER chunks_vector_remove;"
        " DROP TRIGGER documents_vector_refresh; DROP TABLE vector_log; DROP TABLE vector_tombstones;"
        " ALTER TABLE documents DROP COLUMN doc_kind; UPDATE meta SET value = '1' WHERE key = 'schema_version';"
    )
    conn.commit()
    conn.close()
    store = Database(db)
    assert store.schema_version == SCHEMA_VERSION == 4
    assert store.conn.execute("SELECT count(*) FROM chunks_cjk").fetchone()[0] == 1  # only the chunk with CJK
    store.close()
    hits = Searcher(settings).search("竹子", mode="keyword")
    assert [h.path.rsplit("/", 1)[-1] for h in hits] == ["panda.md"]
    assert Searcher(settings).search("bees", mode="keyword")[0].path.endswith("bees.md")


def test_reindexing_and_deleting_keep_the_cjk_table_in_step(make_index, embedder):
    from searchlm.indexing.indexer import index_folder
    from searchlm.indexing.database import Database

    settings, _, corpus = make_index({"a.md": "# 甲\n\n熊猫吃竹子。\n", "b.md": "# 乙\n\n김치를 담근다.\n"})
    (corpus / "a.md").write_text("# 甲\n\n蜜蜂过冬。\n", encoding="utf-8")
    (corpus / "b.md").unlink()
    index_folder(corpus, settings, embedder=embedder)
    store = Database(settings.index_dir / "index.db")
    rows = store.conn.execute("SELECT text FROM chunks_cjk").fetchall()
    assert rows == [("蜜蜂 蜂过 过冬 冬",)]
    orphans = store.conn.execute("SELECT count(*) FROM chunks_cjk WHERE rowid NOT IN (SELECT id FROM chunks)").fetchone()
    assert orphans == (0,)

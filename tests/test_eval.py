"""`searchlm eval`: BEIR loading, the reusable eval index, metrics with trec_eval semantics, the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import DOCS, write_beir
from searchlm.cli import app
from searchlm.errors import InputError
from searchlm.evaluate import (
    doc_filename,
    doc_id_of,
    document_markdown,
    ensure_eval_index,
    evaluate,
    load_beir,
    score_run,
)
from searchlm.extract.text import extract_text
from searchlm.search.searcher import SearchOptions
from searchlm.settings import Settings

# -- loading ---------------------------------------------------------------------------------------------
def test_load_beir_keeps_only_judged_queries(tmp_path):
    ds = load_beir(write_beir(tmp_path / "tiny"), "test")
    assert ds.name == "tiny"
    assert set(ds.queries) == {"q1", "q2", "q3"}
    assert ds.qrels["q2"] == {"bees": 2}
    assert ds.qrels["q3"] == {"reef": 1, "tea": 0}
    assert ds.corpus["chess"][0] == "Chess openings"
    assert ds.corpus_hash.startswith("sha256:")


def test_load_beir_missing_split_names_the_ones_there(tmp_path):
    root = write_beir(tmp_path / "tiny")
    with pytest.raises(InputError, match=r"split 'train'.*split='test'"):
        load_beir(root, "train")


def test_load_beir_bad_json_line_names_file_and_line(tmp_path):
    root = write_beir(tmp_path / "tiny")
    with open(root / "corpus.jsonl", "a", encoding="utf-8") as f:
        f.write("{not json\n")
    with pytest.raises(InputError, match=r"corpus.jsonl:7"):
        load_beir(root)


def test_load_beir_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_beir(tmp_path / "nope")


# -- documents as files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("doc_id", ["31715818", "a/b c", ".hidden", "ü-ß", "50%", "x.md"])
def test_doc_filename_round_trips(doc_id):
    name = doc_filename(doc_id)
    assert "/" not in name and not name.startswith(".")
    assert doc_id_of(f"corpus/{name}") == doc_id


def test_document_markdown_keeps_title_and_text_apart():
    md = document_markdown("Deep  learning\nfor proteins", "# not a heading\n---\n```code```\nplain line")
    doc = extract_text(md.encode(), Path("x.md"), "md")
    assert doc.title == "Deep learning for proteins"
    text = "\n".join(b.text for b in doc.blocks)
    assert "not a heading" in text and "plain line" in text and "code" in text
    assert all(b.headings == () for b in doc.blocks)  # nothing in the text became a heading
    assert "Deep learning" not in text  # the title is not repeated in the body


# -- metrics ---------------------------------------------------------------------------------------------
def test_score_run_trec_eval_values_and_missing_queries_score_zero():
    qrels = {"a": {"d1": 1, "d3": 0}, "b": {"d9": 2}}
    run = {"a": {"d2": 3.0, "d1": 2.0, "d3": 1.0}}  # b returned nothing
    per = score_run(qrels, run)
    assert per["a"]["ndcg@10"] == pytest.approx(1 / 1.5849625, abs=1e-4)  # relevant at rank 2: 1/log2(3)
    assert per["a"]["mrr@10"] == pytest.approx(0.5)
    assert per["a"]["recall@100"] == pytest.approx(1.0)
    assert per["b"] == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}


def test_score_run_uses_linear_graded_gains():
    qrels = {"a": {"d1": 1, "d2": 3}}
    per = score_run(qrels, {"a": {"d1": 2.0, "d2": 1.0}})
    ideal = 3 + 1 / 1.5849625
    assert per["a"]["ndcg@10"] == pytest.approx((1 + 3 / 1.5849625) / ideal, abs=1e-4)


# -- end to end ------------------------------------------------------------------------------------------
@pytest.fixture
def tiny(tmp_path):
    return write_beir(tmp_path / "tiny")


def test_evaluate_ranks_documents_and_reports_metrics(tiny, tmp_path, embedder):
    settings = Settings(home=tmp_path / "home")
    report = evaluate(tiny, settings, embedder=embedder)
    assert report.queries == 3
    assert report.index == "eval-tiny"
    assert report.ndcg_at_10 > 0.9 and report.mrr_at_10 > 0.9  # each query's answer is unmistakable
    assert report.recall_at_100 == pytest.approx(1.0)
    assert 0 < report.latency_ms_p50 <= report.latency_ms_p95
    data = report.to_json()
    for key in ("ndcg@10", "recall@100", "mrr@10", "queries", "latency_ms_p50", "latency_ms_p95"):
        assert key in data
    # Every judged document of the tiny corpus is in the run once: documents, not chunks, are ranked.
    assert set(report.per_query) == {"q1", "q2", "q3"}


def test_evaluate_modes_differ_and_keyword_needs_no_dense(tiny, tmp_path, embedder):
    settings = Settings(home=tmp_path / "home")
    kw = evaluate(tiny, settings, options=SearchOptions(mode="keyword"), embedder=embedder)
    assert kw.options["mode"] == "keyword"
    assert kw.ndcg_at_10 > 0.5


def test_eval_index_is_reused_and_updated_incrementally(tiny, tmp_path, embedder):
    settings = Settings(home=tmp_path / "home")
    ds = load_beir(tiny)
    target = ensure_eval_index(ds, settings, embedder=embedder)
    db = target.index_dir / "index.db"

    def indexed_at():
        with sqlite3.connect(db) as conn:
            return dict(conn.execute("SELECT path, indexed_at FROM documents").fetchall())

    first = indexed_at()
    assert len(first) == len(DOCS)
    again = ensure_eval_index(load_beir(tiny), settings, embedder=embedder)
    assert again.index_dir == target.index_dir and indexed_at() == first  # nothing touched

    changed = dict(DOCS, tea=("Tea processing", "Oolong tea is partly oxidised before it is dried."))
    write_beir(tiny, docs=changed)
    ensure_eval_index(load_beir(tiny), settings, embedder=embedder)
    after = indexed_at()
    assert after[doc_filename("tea")] != first[doc_filename("tea")]
    assert {p: t for p, t in after.items() if p != doc_filename("tea")} == {
        p: t for p, t in first.items() if p != doc_filename("tea")
    }


def test_cli_eval_json_reuses_the_index(tiny, tmp_path, embedder):
    home = tmp_path / "home"
    ensure_eval_index(load_beir(tiny), Settings(home=home), embedder=embedder)  # built with the shared model
    result = CliRunner().invoke(app, ["eval", str(tiny), "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["queries"] == 3
    assert set(data) >= {"ndcg@10", "recall@100", "mrr@10", "queries", "latency_ms_p50", "latency_ms_p95"}
    assert data["ndcg@10"] > 0.9


def test_cli_eval_readable_output_and_bad_split(tiny, tmp_path, embedder):
    home = tmp_path / "home"
    ensure_eval_index(load_beir(tiny), Settings(home=home), embedder=embedder)
    result = CliRunner().invoke(app, ["eval", str(tiny), "--home", str(home), "--mode", "keyword"])
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.stdout and "3 queries" in result.stdout
    bad = CliRunner().invoke(app, ["eval", str(tiny), "--home", str(home), "--split", "dev"])
    assert bad.exit_code == 1
    assert "split 'dev'" in bad.stderr and "Traceback" not in bad.output

"""The public API: what `import searchlm` offers, the README's Python examples run as written, library and CLI
wording of errors, context managers, and an import graph without cycles."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imports import cycles, exports, import_graph, surface_imports

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_package_lists_its_api_and_imports_nothing_heavy():
    code = (
        "import json, sys, searchlm; print(json.dumps({'all': searchlm.__all__,"
        " 'modules': sorted({m.split('.')[0] for m in sys.modules})}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    data = json.loads(out.stdout)
    assert {"Index", "Searcher", "RemoteSearcher", "SearchOptions", "Hit", "AskOptions", "Answer", "Citation",
            "SummaryOptions", "Summary", "IndexReport", "evaluate", "EvalReport", "list_indexes", "Settings",
            "SearchlmError", "InputError", "IndexNotFoundError"} <= set(data["all"])
    assert not {"numpy", "torch", "faiss", "transformers", "onnxruntime", "typer"} & set(data["modules"])


def test_every_name_in_all_resolves():
    import searchlm

    for name in searchlm.__all__:
        assert getattr(searchlm, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        searchlm.nothing_here  # noqa: B018


def _python_blocks(section: str) -> list[str]:
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.DOTALL)


@pytest.mark.slow
def test_readme_python_examples_run_as_written():
    """The README's "Use from Python" blocks, run in order in one fresh interpreter from the repository root,
    with the real packaged models: index the sample corpus, search it, ask it, and handle an error."""
    blocks = _python_blocks("Use from Python")
    assert len(blocks) >= 3
    first = blocks[0]
    assert len([line for line in first.splitlines() if line.strip()]) <= 10  # "a 10-line script"
    assert "searchlm." not in re.sub(r"searchlm\.(Index|list_indexes|IndexNotFoundError)", "", "\n".join(blocks))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("SEARCHLM_HOME", None)
    out = subprocess.run([sys.executable, "-c", "\n".join(blocks)], capture_output=True, text=True, cwd=REPO,
                         env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("True sample_corpus/misc/beekeeping.rst:") and "Winter" in lines[0], lines[0]
    assert lines[1].startswith("False ['sample_corpus/misc/beekeeping.rst:"), lines[1]  # answered, citing it
    assert lines[2].startswith("index 'nope' not found in ") and "Index('nope').update(FOLDER)" in lines[2]
    assert lines[3] == "['sample']"


def test_index_object_on_the_shared_model(tmp_path, embedder):
    """Index: update, search, status, document, reopen after an update, drop; options as keywords or objects."""
    import searchlm
    from conftest import write_files

    corpus = write_files(tmp_path / "docs", {"a.md": "# Sourdough\n\nA wild yeast starter needs flour and water.\n",
                                             "b.md": "# Bees\n\nHoney bees cluster to keep warm in winter.\n"})
    with searchlm.Index("t", home=tmp_path / "home") as index:
        assert not index.exists
        report = index.update(corpus, embedder=embedder)
        assert sorted(report.added) == ["a.md", "b.md"] and index.exists
        hits = index.search("yeast starter", k=1, mode="keyword")
        assert hits[0].path.endswith("a.md") and hits[0].kind == "md" and hits[0].rank == 1
        same = index.search("yeast starter", searchlm.SearchOptions(k=1, mode="keyword"))
        assert [h.chunk_id for h in same] == [h.chunk_id for h in hits]
        assert index.search("bees", types="md,txt", k=1)[0].path.endswith("b.md")  # types as the user types them
        view = index.document(hits[0].doc_id, hits[0].chunk_id)
        assert "wild yeast" in view.text and any(p.marked for p in view.parts)
        assert index.status()["documents"] == 2
        searcher = index.searcher
        (corpus / "c.md").write_text("# Kites\n\nA kite flies on the wind.\n", encoding="utf-8")
        index.update(corpus, embedder=embedder)
        assert index.searcher is not searcher  # reopened: sees the new manifest
        assert index.search("kite wind", k=1, mode="keyword")[0].path.endswith("c.md")
    assert [m.name for m in searchlm.list_indexes(tmp_path / "home")] == ["t"]
    searchlm.Index("t", home=tmp_path / "home").drop()
    assert searchlm.list_indexes(tmp_path / "home") == []
    assert corpus.joinpath("a.md").is_file()  # the documents themselves are untouched


def test_searcher_is_a_context_manager_that_closes_its_store(sample_index):
    import sqlite3

    from searchlm import Searcher

    with Searcher(sample_index) as searcher:
        assert searcher.search("bees", k=1, mode="keyword")
    with pytest.raises(sqlite3.ProgrammingError):
        searcher.store.conn.execute("SELECT 1")


def test_search_many_gives_each_query_the_hits_it_gets_alone(sample_index):
    from searchlm import Index, InputError

    queries = ["How do honey bees keep warm in winter?", "lighthouse lens", "ラーメンの歴史", "sourdough starter"]
    with Index(sample_index.name, home=sample_index.home) as index:
        alone = [index.search(q, k=5) for q in queries]
        together = index.search_many(queries, k=5)
        assert [[(h.chunk_id, h.score, h.rank) for h in hits] for hits in together] == \
               [[(h.chunk_id, h.score, h.rank) for h in hits] for hits in alone]
        assert [len(hits) for hits in together] == [5, 5, 5, 5]
        with pytest.raises(InputError, match="the query is empty"):
            index.search_many(["bees", " "])


def test_errors_carry_library_wording_and_the_cli_adds_its_flags(sample_index):
    from typer.testing import CliRunner

    import searchlm
    from searchlm.cli import app

    with pytest.raises(searchlm.InputError) as caught:
        searchlm.SearchOptions(mode="fuzzy").validate()
    assert str(caught.value) == "mode 'fuzzy' is not one of hybrid, dense, keyword (use mode='hybrid')"
    assert caught.value.cli_message() == "mode 'fuzzy' is not one of hybrid, dense, keyword (use --mode hybrid)"
    result = CliRunner().invoke(app, ["search", "bees", "--mode", "fuzzy", "--home", str(sample_index.home),
                                      "--name", sample_index.name])
    assert result.exit_code == 1
    assert "Error: mode 'fuzzy' is not one of hybrid, dense, keyword (use --mode hybrid)" in result.output
    with pytest.raises(searchlm.IndexNotFoundError, match=r"create it with Index\('nope'\)"):
        searchlm.Index("nope", home=sample_index.home).search("bees")


def test_no_import_cycle_among_searchlm_modules():
    """Module-level and function-level imports alike: a cycle means two concerns that should be one, or a
    piece in the wrong module."""
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    assert "searchlm.rerank.registry" in graph["searchlm.search.searcher"] or "searchlm.rerank" in graph["searchlm.search.searcher"]
    assert cycles(graph) == []


def test_the_cli_server_and_mcp_use_only_the_public_api():
    """The surfaces import the package's API (`searchlm.__all__`, the modules that define it), the modules it
    names for surfaces (`SURFACE_MODULES`) and their own helpers: nothing else of the library."""
    import searchlm

    graph = import_graph()
    allowed = {"searchlm", *exports().values(), *searchlm.SURFACE_MODULES}
    allowed |= {m.rsplit(".", 1)[0] for m in allowed if m.count(".") > 1}  # their packages' __init__ run first
    reaching = surface_imports(graph, ("searchlm.cli", "searchlm.mcp_server", "searchlm.server"), allowed)
    assert {(m, e) for m, edges in reaching.items() for e in edges} == set()
    assert "searchlm.server.engines" in reaching and "searchlm.server.routes.search" in reaching  # the walk saw them
    # The check can fail: a surface that reached into the SQLite layer directly would be reported.
    assert surface_imports({"searchlm.cli": {"searchlm.indexing.database", "searchlm.search.fusion"}}, ("searchlm.cli",), allowed) == {
        "searchlm.cli": ["searchlm.indexing.database", "searchlm.search.fusion"]}


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

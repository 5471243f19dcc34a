"""Filters (`--path`, `--type`, `--since`) apply before the top-k cut, in keyword, dense and hybrid search alike."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_files
from searchlm.cli import app
from searchlm.errors import InputError
from searchlm.search.searcher import Searcher, SearchOptions

OLD = datetime(2020, 3, 1).timestamp()
NEW = datetime(2024, 6, 1).timestamp()

STRONG = "Sourdough bread needs a lively starter: feed the sourdough starter flour and water, then bake the bread."
FILES = {
    # Five documents that match the query far better than the ones the filters ask for.
    **{f"recipes/loaf-{i}.txt": f"Loaf {i}\n\n{STRONG} Loaf number {i}." for i in range(5)},
    "docs/baking.md": "# Baking notes\n\nA short remark: sourdough is slower than yeast.\n",
    "docs/bakery.html": "<html><head><title>Bakery</title></head><body><p>Our bakery sells sourdough on Fridays.</p></body></html>",
    "docs/garden.md": "# Garden\n\nTomatoes need sun and regular watering.\n",
}
NEW_FILES = {"docs/baking.md", "docs/garden.md"}


@pytest.fixture(scope="module")
def filtered_index(tmp_path_factory, embedder):
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    root = tmp_path_factory.mktemp("filters")
    corpus = write_files(root / "corpus", FILES)
    for rel in FILES:
        stamp = NEW if rel in NEW_FILES else OLD
        os.utime(corpus / rel, (stamp, stamp))
    settings = Settings(home=root / "indexes", name="filters")
    index_folder(corpus, settings, embedder=embedder)
    searcher = Searcher(settings)
    yield settings, searcher
    searcher.close()


def _paths(hits):
    return [Path(h.path).as_posix().split("corpus/")[-1] for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "dense"])
def test_type_filter_applies_before_the_cut(filtered_index, mode):
    _, searcher = filtered_index
    query = "sourdough bread starter"
    unfiltered = _paths(searcher.search(query, SearchOptions(k=2, depth=2, mode=mode)))
    assert all(p.startswith("recipes/") for p in unfiltered)  # the md file is not among the top candidates
    hits = searcher.search(query, SearchOptions(k=1, depth=2, mode=mode, types=("md",)))
    assert _paths(hits) == ["docs/baking.md"]


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "dense"])
def test_path_glob_filter(filtered_index, mode):
    _, searcher = filtered_index
    hits = searcher.search("sourdough", SearchOptions(k=10, depth=3, mode=mode, path="docs/*"))
    paths = _paths(hits)
    assert paths and all(p.startswith("docs/") for p in paths)
    if mode != "dense":
        assert "docs/bakery.html" in paths and "docs/baking.md" in paths


def test_since_filter_keeps_only_recent_documents(filtered_index):
    _, searcher = filtered_index
    hits = searcher.search("sourdough bread", SearchOptions(k=10, since="2023-01-01"))
    assert set(_paths(hits)) <= NEW_FILES and "docs/baking.md" in _paths(hits)


def test_filters_combine(filtered_index):
    _, searcher = filtered_index
    hits = searcher.search("sourdough", SearchOptions(k=10, types=("html", "md"), since="2023-01-01"))
    assert set(_paths(hits)) <= {"docs/baking.md", "docs/garden.md"}
    hits = searcher.search("sourdough", SearchOptions(k=10, types=("htm",)))  # .htm means html
    assert _paths(hits) == ["docs/bakery.html"]


def test_filter_matching_nothing_returns_no_hits(filtered_index):
    _, searcher = filtered_index
    assert searcher.search("sourdough", SearchOptions(types=("pdf",))) == []
    assert searcher.search("sourdough", SearchOptions(path="nowhere/*")) == []


def test_bad_date_is_an_input_error(filtered_index):
    _, searcher = filtered_index
    with pytest.raises(InputError, match=r"date 'last week'.*YYYY-MM-DD"):
        searcher.search("sourdough", SearchOptions(since="last week"))
    with pytest.raises(InputError, match=r"date '2999-01-01' is out of range"):  # was an OverflowError traceback
        searcher.search("sourdough", SearchOptions(since="2999-01-01"))


def test_cli_filters(filtered_index):
    settings, _ = filtered_index
    base = ["search", "sourdough bread starter", "--home", str(settings.home), "--name", settings.name, "--json"]
    result = CliRunner().invoke(app, base + ["--type", "md,pdf", "-k", "1"])
    assert result.exit_code == 0, result.output
    assert _paths_json(result.stdout) == ["docs/baking.md"]
    result = CliRunner().invoke(app, base + ["--path", "recipes/*", "--since", "2023-01-01"])
    assert result.exit_code == 0 and _paths_json(result.stdout) == []
    bad = CliRunner().invoke(app, base + ["--since", "31/12/2024"])
    assert bad.exit_code == 1 and "date '31/12/2024'" in bad.stderr


def _paths_json(out: str) -> list[str]:
    return [h["path"].split("corpus/")[-1] for h in json.loads(out)["hits"]]


def test_path_takes_what_hits_show(filtered_index):
    """Absolute paths, paths from the current folder, folders with or without a slash, globs: all one filter."""
    settings, searcher = filtered_index
    root = Path(searcher.manifest.root)
    for form in ("docs", "docs/", "docs/*", str(root / "docs"), str(root / "docs") + "/", str(root / "docs" / "*"),
                 os.path.relpath(root / "docs"), "docs/baking.md", str(root / "docs" / "baking.md")):
        paths = _paths(searcher.search("sourdough", SearchOptions(k=10, path=form)))
        assert paths and all(p.startswith("docs/") for p in paths), form
    assert _paths(searcher.search("sourdough", SearchOptions(k=10, path="docs/baking.md"))) == ["docs/baking.md"]
    with pytest.raises(InputError, match="outside the indexed folder"):
        searcher.search("sourdough", SearchOptions(path="/definitely/elsewhere"))


def test_exclude_and_why_nothing_is_left(filtered_index):
    settings, searcher = filtered_index
    paths = _paths(searcher.search("sourdough", SearchOptions(k=10, exclude=("recipes/*", "docs/bakery.html"))))
    assert paths and not any(p.startswith("recipes/") or p == "docs/bakery.html" for p in paths)
    options = SearchOptions(k=5, path="recipes", exclude=("recipes/",))
    assert searcher.search("sourdough", options) == []
    why = searcher.search("sourdough", options).filtered
    assert "--exclude 'recipes/' removed" in why and "--path 'recipes' removed" in why
    result = CliRunner().invoke(app, ["search", "sourdough", "--home", str(settings.home), "--name", settings.name,
                                      "--path", "orm/"])
    assert result.exit_code == 0
    assert "No results for 'sourdough': --path 'orm/' removed all" in result.stdout
    assert "matches no indexed document" in result.stdout

"""An index made from one folder is found from any other: the default home, the per-user registry of homes,
`searchlm indexes` over all of them, and a not-found message that says which indexes exist and where."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import write_files
from searchlm.cli import app
from searchlm.indexing.homes import data_dir, default_home


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A fresh per-user folder and a current folder with no ./indexes, no SEARCHLM_HOME."""
    monkeypatch.setenv("SEARCHLM_DATA_DIR", str(tmp_path / "user"))
    monkeypatch.delenv("SEARCHLM_HOME", raising=False)
    monkeypatch.delenv("SEARCHLM_NAME", raising=False)
    cwd = tmp_path / "somewhere" / "else"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    return tmp_path


def test_default_home_is_local_folder_when_it_exists(elsewhere, monkeypatch):
    assert default_home() == data_dir() / "indexes"
    (elsewhere / "proj" / "indexes").mkdir(parents=True)
    monkeypatch.chdir(elsewhere / "proj")
    assert default_home().resolve() == (elsewhere / "proj" / "indexes").resolve()


def test_index_is_found_from_anywhere(elsewhere, embedder):
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    corpus = write_files(elsewhere / "docs", {"bees.md": "# Bees\n\nHoney bees cluster to keep warm in winter.\n"})
    home = elsewhere / "project" / "indexes"
    index_folder(corpus, Settings(home=home, name="real"), embedder=embedder)

    runner = CliRunner()
    result = runner.invoke(app, ["search", "bees winter", "--name", "real"])  # no --home, another folder
    assert result.exit_code == 0, result.output
    assert "bees.md" in result.stdout
    assert f"index 'real' over {corpus.resolve()}" in result.stderr and str(home.resolve()) in result.stderr
    data = json.loads(runner.invoke(app, ["search", "bees", "--name", "real", "--json"]).stdout)
    assert data["index"] == {"name": "real", "home": str(home.resolve()), "folder": str(corpus.resolve())}

    listed = runner.invoke(app, ["indexes"])
    assert "real" in listed.stdout and str(corpus.resolve()) in listed.stdout and str(home.resolve()) in listed.stdout

    missing = runner.invoke(app, ["search", "bees", "--name", "nope"])
    assert missing.exit_code == 1
    assert "index 'nope' not found" in missing.stderr
    assert f"real (over {corpus.resolve()}, in {home.resolve()})" in missing.stderr

    # An explicit --home is never second-guessed.
    strict = runner.invoke(app, ["search", "bees", "--name", "real", "--home", str(elsewhere / "empty")])
    assert strict.exit_code == 1 and "not found in" in strict.stderr

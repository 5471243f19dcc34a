"""Document kinds (guide, changelog, migration, api): detected at index time, stored, shown on hits, filtered by
`--kind` / `--exclude-kind`, and a ranking prior that puts guides above the others at equal relevance."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_files
from searchlm.cli import app
from searchlm.indexing.doc_kinds import DOC_KINDS, PRIOR, detect, parse_kinds
from searchlm.errors import InputError
from searchlm.search.searcher import Searcher, SearchOptions

POOL = "Set pool_timeout to wait for a free connection when the connection pool is exhausted."
FILES = {
    # The same page twice: only the folder differs, so every score but the prior is equal.
    "guide/pooling.md": f"# Connection pooling\n\n{POOL}\n",
    "changelog/pooling.md": f"# Connection pooling\n\n{POOL}\n",
    "CHANGES.md": "# Changes\n\n## Version 2.0.1\n\nFixed a pool timeout that was ignored.\n\n"
                  "## Version 2.0.0\n\nA new pool class.\n\n## Version 1.9.0\n\nDropped Python 2.\n",
    "docs/migrating.md": "# Migrating from 1.x to 2.0\n\nThe pool_timeout argument now takes seconds as a float.\n",
    "reference/api.rst": "Pool API\n========\n\n.. autoclass:: mylib.pool.Pool\n\n.. autofunction:: mylib.pool.connect\n"
                         "\n.. autoclass:: mylib.pool.QueuePool\n",
}
KINDS = {"guide/pooling.md": "guide", "changelog/pooling.md": "changelog", "CHANGES.md": "changelog",
         "docs/migrating.md": "migration", "reference/api.rst": "api"}


@pytest.mark.parametrize("path,title,chunks,kind", [
    ("CHANGES.md", "Changes", [], "changelog"),
    ("CHANGELOG", "", [], "changelog"),
    ("HISTORY.rst", "History", [], "changelog"),
    ("NEWS.txt", "", [], "changelog"),
    ("docs/changes.rst", "Changes", [], "changelog"),
    ("doc/build/changelog/changelog_14.rst", "1.4 Changelog", [], "changelog"),
    ("doc/build/changelog/unreleased_13/6135.rst", "6135", [], "changelog"),
    ("docs/release-notes.md", "Release notes", [], "changelog"),
    ("docs/whats-up.md", "What's new", [], "changelog"),
    ("docs/releases.md", "Product releases", [], "changelog"),
    # structure alone: a page built of version headings
    ("docs/project.md", "Project", [("Project > Version 2.0.1", "Fixed x."), ("Project > 1.4.0 (2021-03-15)", "y"),
                                     ("Project > [1.0.0] - 2017-06-20", "z"), ("Project > Intro", "w")], "changelog"),
    ("doc/build/changelog/migration_20.rst", "SQLAlchemy 2.0 - Major Migration Guide", [], "migration"),
    ("doc/build/changelog/whatsnew_20.rst", "What's New in SQLAlchemy 2.0?", [], "migration"),
    ("docs/upgrading.md", "Upgrading to 3.0", [], "migration"),
    ("docs/porting.md", "Migrating from Flask-Script", [], "migration"),
    ("Doc/whatsnew/3.12.rst", "Python 3.12", [], "migration"),
    ("docs/api.rst", "API", [("API", "mylib.Pool\n\nmylib.connect(url, timeout=30)\n\nSome words about it all.")], "api"),
    ("orm/relationship_api.rst", "Relationships API", [("", "relationship\n\nbackref\n\nforeign")], "api"),
    # guides: prose, schema migrations (no version), a reference page of prose, a page that mentions a version
    ("docs/pooling.md", "Connection pooling", [("Pooling", "Set pool_timeout to wait.\n\nThe pool is a queue.")], "guide"),
    ("topics/migrations.txt", "Migrations", [("Migrations", "Migrations are how Django stores changes.")], "guide"),
    ("docs/reference/config.md", "Configuration", [("Config", "Each key and what it does, in prose.")], "guide"),
    ("docs/install.md", "Installing 2.0", [("Installing 2.0 > Python 3.8", "pip install it.")], "guide"),
    ("requirements.txt", "git+https://github.com/org/changelog.git#egg=changelog", [], "guide"),
])
def test_detect(path, title, chunks, kind):
    assert detect(path, title, chunks) == kind


def test_parse_kinds_splits_checks_and_names_the_bad_value():
    assert parse_kinds(["changelog,migration", " API "]) == ("changelog", "migration", "api")
    assert parse_kinds("guide") == ("guide",)
    with pytest.raises(InputError) as err:
        parse_kinds(["changlog"])
    message = str(err.value)
    assert "changlog" in message and all(k in message for k in DOC_KINDS) and "\n" not in message
    with pytest.raises(InputError, match="'release'"):
        SearchOptions(exclude_doc_kinds="release").validate()


@pytest.fixture(scope="module")
def kinds_index(tmp_path_factory, embedder):
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    root = tmp_path_factory.mktemp("kinds")
    corpus = write_files(root / "corpus", FILES)
    settings = Settings(home=root / "indexes", name="kinds")
    index_folder(corpus, settings, embedder=embedder)
    return settings, corpus


def _stored_kinds(settings) -> dict[str, str]:
    conn = sqlite3.connect(settings.index_dir / "index.db")
    try:
        return dict(conn.execute("SELECT path, doc_kind FROM documents"))
    finally:
        conn.close()


def _rel(path: str) -> str:
    return Path(path).as_posix().split("corpus/")[-1]


def test_kinds_are_stored_and_on_every_hit(kinds_index):
    settings, _ = kinds_index
    assert _stored_kinds(settings) == KINDS
    with Searcher(settings) as searcher:
        hits = searcher.search("pool timeout", SearchOptions(k=10))
    assert {_rel(h.path): h.doc_kind for h in hits} == KINDS
    assert all(h.to_json()["doc_kind"] == KINDS[_rel(h.path)] for h in hits)
    assert {h.kind for h in hits} == {"md", "rst"}  # the file type keeps its own name


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "dense"])
def test_prior_puts_a_guide_above_a_changelog_with_the_same_text(kinds_index, mode):
    settings, _ = kinds_index
    with Searcher(settings) as searcher:
        plain = searcher.search("connection pool exhausted", SearchOptions(k=10, mode=mode, prior=False))
        hits = searcher.search("connection pool exhausted", SearchOptions(k=10, mode=mode, explain=True))
    score = {_rel(h.path): h.score for h in plain}
    assert score["guide/pooling.md"] == score["changelog/pooling.md"]  # the same text scores the same
    ranked = [_rel(h.path) for h in hits]
    assert ranked.index("guide/pooling.md") < ranked.index("changelog/pooling.md")
    changelog = next(h for h in hits if _rel(h.path) == "changelog/pooling.md")
    assert changelog.score == pytest.approx(score["changelog/pooling.md"] * PRIOR["changelog"], abs=1e-5)
    assert changelog.explain["prior"] == PRIOR["changelog"]
    guide = next(h for h in hits if _rel(h.path) == "guide/pooling.md")
    assert "prior" not in guide.explain and guide.score == score["guide/pooling.md"]


def test_prior_applies_to_documents_when_grouped(kinds_index):
    settings, _ = kinds_index
    with Searcher(settings) as searcher:
        hits = searcher.search("connection pool exhausted", SearchOptions(k=10, group_by_document=True))
    ranked = [_rel(h.path) for h in hits]
    assert ranked.index("guide/pooling.md") < ranked.index("changelog/pooling.md")


def test_library_kind_filters(kinds_index):
    settings, _ = kinds_index
    with Searcher(settings) as searcher:
        only = searcher.search("pool timeout", SearchOptions(k=10, doc_kinds="changelog,migration"))
        without = searcher.search("pool timeout", SearchOptions(k=10, exclude_doc_kinds=("changelog", "api")))
        empty = SearchOptions(k=10, doc_kinds=("api",), path="guide/")
        assert searcher.search("pool timeout", empty) == []
        why = searcher.search("pool timeout", empty).filtered
    assert {_rel(h.path) for h in only} == {"CHANGES.md", "changelog/pooling.md", "docs/migrating.md"}
    assert {_rel(h.path) for h in without} == {"guide/pooling.md", "docs/migrating.md"}
    assert "--kind api removed" in why


def test_cli_kind_filters_and_tag(kinds_index):
    settings, _ = kinds_index
    runner = CliRunner()
    base = ["search", "pool timeout", "--name", settings.name, "--home", str(settings.home), "-k", "10"]

    result = runner.invoke(app, [*base, "--kind", "changelog", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert {_rel(h["path"]) for h in hits} == {"CHANGES.md", "changelog/pooling.md"}
    assert {h["doc_kind"] for h in hits} == {"changelog"}

    result = runner.invoke(app, [*base, "--exclude-kind", "changelog,api", "--exclude-kind", "migration", "--json"])
    assert result.exit_code == 0, result.output
    assert [_rel(h["path"]) for h in json.loads(result.stdout)["hits"]] == ["guide/pooling.md"]

    result = runner.invoke(app, [*base, "--kind", "guide", "--kind", "migration", "--json"])
    assert {_rel(h["path"]) for h in json.loads(result.stdout)["hits"]} == {"guide/pooling.md", "docs/migrating.md"}

    result = runner.invoke(app, base)  # human output: a tag on the other kinds only
    assert result.exit_code == 0, result.output
    lines = {_rel(line.split(". ", 1)[1].split(":")[0]): line for line in result.stdout.splitlines()
             if line[:3].strip().rstrip(".").isdigit()}
    assert "[changelog]" in lines["CHANGES.md"] and "[migration]" in lines["docs/migrating.md"]
    assert "[api]" in lines["reference/api.rst"] and "[" not in lines["guide/pooling.md"]

    result = runner.invoke(app, [*base, "--kind", "changelogs"])
    assert result.exit_code == 1
    assert "document kind 'changelogs' is not one searchlm knows (use guide, changelog, migration, api)" in result.output


def test_http_and_mcp_take_kinds(kinds_index):
    from fastapi.testclient import TestClient

    from searchlm.mcp_server import Tools
    from searchlm.server import create_app

    settings, _ = kinds_index
    with TestClient(create_app(settings, load_generator=False), base_url="http://127.0.0.1") as client:
        response = client.get("/api/search", params={"q": "pool timeout", "k": 10, "kind": "changelog,api"})
        assert response.status_code == 200, response.text
        hits = response.json()["hits"]
        assert {h["doc_kind"] for h in hits} == {"changelog", "api"}
        response = client.get("/api/search", params=[("q", "pool timeout"), ("exclude_kind", "changelog"),
                                                     ("exclude_kind", "api"), ("exclude_kind", "migration")])
        assert [_rel(h["path"]) for h in response.json()["hits"]] == ["guide/pooling.md"]
        response = client.get("/api/search", params={"q": "pool timeout", "kind": "faq"})
        assert response.status_code == 400 and "'faq'" in response.text
    tools = Tools(settings)
    try:
        found = tools.search("pool timeout", k=10, kinds=["migration"])
        assert [(_rel(h["path"]), h["doc_kind"]) for h in found["hits"]] == [("docs/migrating.md", "migration")]
        found = tools.search("pool timeout", k=10, exclude_kinds="changelog,api,guide")
        assert [_rel(h["path"]) for h in found["hits"]] == ["docs/migrating.md"]
    finally:
        tools.close()


def test_kind_follows_reindex_and_a_move(make_index, embedder):
    from searchlm.indexing.indexer import index_folder

    settings, _, corpus = make_index({"pooling.md": f"# Connection pooling\n\n{POOL}\n",
                                      "CHANGES.md": FILES["CHANGES.md"]})
    assert _stored_kinds(settings) == {"pooling.md": "guide", "CHANGES.md": "changelog"}
    (corpus / "CHANGES.md").write_text(FILES["CHANGES.md"] + "\n## Version 2.0.2\n\nAnother fix.\n", encoding="utf-8")
    (corpus / "changelog").mkdir()
    shutil.move(corpus / "pooling.md", corpus / "changelog" / "pooling.md")  # same bytes: a move, not re-read
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.moved == [("pooling.md", "changelog/pooling.md")] and report.updated == ["CHANGES.md"]
    assert _stored_kinds(settings) == {"changelog/pooling.md": "changelog", "CHANGES.md": "changelog"}


def test_an_index_from_before_kinds_migrates_and_keeps_working(make_index):
    from searchlm.indexing.database import SCHEMA_VERSION, Database

    settings, _, _ = make_index({"guide.md": f"# Connection pooling\n\n{POOL}\n", "NEWS.md": FILES["CHANGES.md"]})
    db = settings.index_dir / "index.db"
    conn = sqlite3.connect(db)  # as searchlm wrote it before kinds: schema 3, no column, no rules stamp
    conn.executescript("ALTER TABLE documents DROP COLUMN doc_kind; UPDATE meta SET value = '3' "
                       "WHERE key = 'schema_version'; DELETE FROM meta WHERE key = 'doc_kind_rules';")
    conn.commit()
    conn.close()
    readonly = Database(db, readonly=True)  # a read-only view of the old file reads every document as a guide
    assert {p.doc_kind for p in readonly.chunks_of_document(1)} == {"guide"}
    assert readonly.doc_kinds_of_chunks([1, 2, 3]) == {}
    readonly.close()
    with Searcher(settings) as searcher:  # opening it migrates
        assert searcher.store.schema_version == SCHEMA_VERSION == 4
        hits = searcher.search("pool timeout", SearchOptions(k=5, exclude_doc_kinds=("changelog",)))
    assert [_rel(h.path) for h in hits] == ["guide.md"]
    assert _stored_kinds(settings) == {"guide.md": "guide", "NEWS.md": "changelog"}


def test_kinds_are_decided_again_when_the_rules_change(make_index):
    from searchlm.indexing.database import Database

    settings, _, _ = make_index({"guide.md": f"# Connection pooling\n\n{POOL}\n"})
    db = settings.index_dir / "index.db"
    conn = sqlite3.connect(db)
    conn.executescript("UPDATE documents SET doc_kind = 'api'; UPDATE meta SET value = '0' WHERE key = 'doc_kind_rules';")
    conn.commit()
    conn.close()
    Database(db).close()
    assert _stored_kinds(settings) == {"guide.md": "guide"}


def test_only_guides_means_the_prior_changes_nothing(make_index):
    settings, _, _ = make_index({"pooling.md": f"# Connection pooling\n\n{POOL}\n",
                                 "tuning.md": "# Tuning\n\nA bigger pool holds more idle connections.\n",
                                 "notes.txt": "Pool sizes\n\nTen connections per worker is a good start.\n"})
    with Searcher(settings) as searcher:
        assert searcher.store.doc_kinds_of_chunks(range(1, 10)) == {}
        for query in ("pool timeout", "how many connections"):
            with_prior = searcher.search(query, SearchOptions(k=10, explain=True))
            without = searcher.search(query, SearchOptions(k=10, prior=False, explain=True))
            assert [h.to_json() for h in with_prior] == [h.to_json() for h in without]


def test_a_salvaged_database_keeps_its_kinds(make_index):
    from searchlm.indexing.check import _salvage

    settings, _, _ = make_index({"guide.md": f"# Connection pooling\n\n{POOL}\n", "CHANGES.md": FILES["CHANGES.md"]})
    kept, lost = _salvage(settings.index_dir / "index.db")  # what `check --repair` copies into a fresh database
    assert (kept, lost) == (2, 0)
    assert _stored_kinds(settings) == {"guide.md": "guide", "CHANGES.md": "changelog"}

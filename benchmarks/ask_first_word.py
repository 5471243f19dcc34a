"""Cold `searchlm ask` in a terminal: seconds to the first output, to the first answer word, and to the end.

Each run is a fresh `searchlm ask QUESTION` process (the default model, cached after its first use), cycling
through the English questions of sample_corpus/QUERIES.md. Timestamps are taken where the bytes arrive: the first
byte on stderr or stdout (the "Loading the answer model…" line), the first byte on stdout (the answer streams
there a checked sentence at a time), and the process's exit, with the CPU seconds the process had used by the
first answer word and in all (what a loaded machine inflates least). Reports the medians, and with --phases where the
seconds of one in-process `ask` go (imports, opening the index, the model load, retrieval, prompt, generation).
Absolute times: run it alone, under the timing lock, and report the load average printed with it.

    flock /work/wt/timing.lock python benchmarks/ask_first_word.py --home H --name sample --runs 5 --phases
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUERIES = HERE.parent / "sample_corpus" / "QUERIES.md"


def questions() -> list[str]:
    rows = re.findall(r"^\| ([^|]+\?) \| `", QUERIES.read_text(encoding="utf-8"), re.MULTILINE)
    return [q.strip() for q in rows if q.isascii()]


def one_run(question: str, home: str, name: str) -> dict:
    command = [sys.executable, "-m", "searchlm", "ask", question, "--home", home, "--name", name]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first_output = first_word = first_word_cpu = None
    out, err = b"", b""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "out")
    selector.register(proc.stderr, selectors.EVENT_READ, "err")
    open_streams = 2
    while open_streams:
        for key, _ in selector.select():
            data = os.read(key.fileobj.fileno(), 65536)
            now = time.perf_counter() - started
            if not data:
                selector.unregister(key.fileobj)
                open_streams -= 1
                continue
            if first_output is None:
                first_output = now
            if key.data == "out":
                if first_word is None and data.strip():
                    first_word = now
                    first_word_cpu = cpu_seconds(proc.pid)
                out += data
            else:
                err += data
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    end = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"searchlm ask failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return {"question": question, "first_output": first_output, "first_word": first_word, "end": end,
            "first_word_cpu": first_word_cpu, "end_cpu": usage.ru_utime + usage.ru_stime,
            "answer": out.decode(errors="replace").splitlines()[0] if out.strip() else "",
            "loading_line": err.decode(errors="replace").splitlines()[0] if err.strip() else ""}


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) the process has used so far: what the wall time would be on
    an idle core for a single-threaded program, so a figure that the load of the machine inflates far less."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phases(question: str, home: str, name: str) -> None:
    """One `ask` in a fresh process, with a timestamp at each stage (the model loads in a thread beside
    retrieval)."""
    code = f"""
import time, sys
T0 = time.perf_counter()
def mark(what): print(f"  {{time.perf_counter() - T0:6.2f}} s  {{what}}", flush=True)
import searchlm.cli
mark("imports (searchlm.cli)")
from searchlm.index import Index
import searchlm.search.answer as A
get, weigh, build = A.get_generator, A.weigh_evidence, A.build_prompt
def timed_get(*a):
    t = time.perf_counter(); g = get(*a); mark(f"model loaded ({{time.perf_counter() - t:.2f}} s in its thread)"); return g
def timed_weigh(*a):
    mark("retrieval done"); r = weigh(*a); mark("evidence weighed (sentences embedded)"); return r
def timed_build(g, *a, **k):
    r = build(g, *a, **k); mark(f"prompt built ({{g.count_tokens(r[0])}} tokens)"); return r
A.get_generator, A.weigh_evidence, A.build_prompt = timed_get, timed_weigh, timed_build
first = []
def token(text):
    if not first:
        first.append(1); mark("first answer sentence shown")
with Index({name!r}, home={home!r}) as index:
    index.searcher
    mark("index opened")
    answer = index.ask({question!r}, on_token=token, on_load=lambda m: mark("loading line"))
mark("answer done")
print("  timings", {{k: round(v, 2) for k, v in answer.timings.items()}})
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="index home holding an index of sample_corpus/")
    parser.add_argument("--name", default="sample")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--phases", action="store_true", help="also time the stages of one in-process ask")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    asked = questions()
    one_run(asked[0], args.home, args.name)  # warm-up: the model's one-time export is not what is measured
    runs = []
    for i in range(args.runs):
        r = one_run(asked[i % len(asked)], args.home, args.name)
        runs.append(r)
        print(f"  {r['first_output']:5.2f} s first output, {r['first_word']:5.2f} s first answer word "
              f"({r['first_word_cpu']:.2f} s CPU), {r['end']:5.2f} s end ({r['end_cpu']:.2f} s CPU)  "
              f"{r['question'][:40]!r} -> {r['answer'][:50]!r}")
    for key, label in (("first_output", "first output"), ("first_word", "first answer word"), ("end", "end"),
                       ("first_word_cpu", "CPU to first word"), ("end_cpu", "CPU to the end")):
        values = [r[key] for r in runs if r[key] is not None]
        print(f"median {label:18s} {statistics.median(values):.2f} s  (min {min(values):.2f}, max {max(values):.2f})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.phases:
        print("phases of one ask:")
        phases(asked[8 % len(asked)], args.home, args.name)


if __name__ == "__main__":
    main()

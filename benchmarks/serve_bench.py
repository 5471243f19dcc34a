"""Warm-server benchmark (issue #6): `searchlm serve` latency over loopback HTTP.

    python benchmarks/serve_bench.py [--workdir /tmp/searchlm-serve-bench] [--requests 100] [--asks 4]
                                     [--big-workdir /tmp/searchlm-bench] [--skip-big] [--skip-ask]

1. Indexes `sample_corpus/` once (real MiniLM) into WORKDIR/indexes/sample, and reuses the 50,000-chunk SciFact
   index that `benchmarks/cold_search.py` builds in BIG_WORKDIR (built here with its own `build` if missing:
   2,000 abstracts embedded with MiniLM, variant copies with derived vectors; see that file).
2. For each index, starts the real server as a separate process (`python -m searchlm serve --lazy` on a free
   127.0.0.1 port), waits for /api/health, sends 5 untimed warm-up requests, then times `--requests`
   sequential `GET /api/search` (mode hybrid, k 10) over a keep-alive connection, cycling through real queries
   (sample_corpus/QUERIES.md; SciFact test queries). Reports median and p95 wall time per request as the client
   sees it, and the same queries through `Searcher.search` in this process (no HTTP) for comparison.
3. Time to first streamed answer token: starts the server with the generator loaded at start-up, then for
   `--asks` questions POSTs /api/ask/stream (answers capped at `--max-tokens`) and times the first `token`
   event and the final `answer` event. A refused question streams no token and is counted apart.

Only loopback addresses are used. Prints a summary and writes it as JSON to WORKDIR/serve_bench.json.
The machine's load average is printed too: timings on a shared CPU vary with what else runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_corpus"
ASK_QUESTIONS = [
    "How do honey bees keep warm during the winter?",
    "What does coral bleaching do to a reef?",
    "How much memory did the Apollo guidance computer have?",
    "What does BM25 do with a term repeated many times?",
    "How do I start a sourdough culture?",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/searchlm-serve-bench"))
    ap.add_argument("--big-workdir", type=Path, default=Path("/tmp/searchlm-bench"))
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--asks", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64, help="Answer cap (first-token time does not depend on it).")
    ap.add_argument("--skip-big", action="store_true", help="Do not measure the 50k-chunk index.")
    ap.add_argument("--skip-ask", action="store_true", help="Do not measure time to first answer token.")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args.workdir.mkdir(parents=True, exist_ok=True)

    results: dict = {"load_average_start": loadavg(), "requests": args.requests}
    sample_home = args.workdir / "indexes"
    ensure_sample_index(sample_home)
    results["sample"] = measure_search(sample_home, "sample", sample_queries(), args.requests)
    print_search("sample corpus", results["sample"])

    if not args.skip_big:
        cold = load_cold_search()
        big_home = args.big_workdir / "indexes"
        big_dir = big_home / cold.INDEX_NAME
        if not (big_dir / "manifest.json").is_file():
            print(f"building the 50k-chunk index in {args.big_workdir} (once) ...", flush=True)
            cold.build(args.big_workdir, big_home, 2000, cold.TARGET_CHUNKS)
        elif manifest(big_dir)["chunks"] == 0:
            raise SystemExit(f"{big_dir} is still being built (or its build stopped): finish it with "
                             f"`python benchmarks/cold_search.py --workdir {args.big_workdir}`, then rerun")
        results["big"] = measure_search(big_home, cold.INDEX_NAME, cold.test_queries(300), args.requests)
        print_search("50k-chunk index", results["big"])

    if not args.skip_ask:
        results["ask"] = measure_ask(sample_home, "sample", ASK_QUESTIONS[: args.asks], args.max_tokens)
        a = results["ask"]
        if not a["first_token_s"]:
            raise SystemExit(f"every question was refused: {a['refused']}")
        print(f"\nask stream ({a['generator']}, {len(a['first_token_s'])} answered questions): first token median "
              f"{statistics.median(a['first_token_s']):.2f} s (each: {fmt(a['first_token_s'])}); whole answer "
              f"median {statistics.median(a['total_s']):.2f} s; {a['tokens_median']} token events; "
              f"refused without tokens: {len(a['refused'])}")

    results["load_average_end"] = loadavg()
    print(f"\nload average: start {results['load_average_start']}, end {results['load_average_end']} "
          f"({os.cpu_count()} CPUs)")
    out = args.workdir / "serve_bench.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


# -- indexes and queries ----------------------------------------------------------------------------------
def ensure_sample_index(home: Path) -> None:
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    started = time.perf_counter()
    report = index_folder(SAMPLE, Settings(home=home, name="sample"))
    print(f"sample index: {report.chunks_total} chunks ({report.chunks_embedded} embedded now) "
          f"in {time.perf_counter() - started:.0f} s")


def sample_queries() -> list[str]:
    text = (SAMPLE / "QUERIES.md").read_text(encoding="utf-8")
    return [m.group(1).strip() for m in re.finditer(r"^\| ([^|]+\?) \|", text, re.M)]


def load_cold_search():
    spec = importlib.util.spec_from_file_location("cold_search", Path(__file__).with_name("cold_search.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest(index_dir: Path) -> dict:
    return json.loads((index_dir / "manifest.json").read_text())


# -- server process ---------------------------------------------------------------------------------------
class Server:
    """`python -m searchlm serve` on a free loopback port, as its own process."""

    def __init__(self, home: Path, name: str, lazy: bool = True):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "searchlm", "serve", "--home", str(home), "--name", name,
               "--host", "127.0.0.1", "--port", str(self.port)] + (["--lazy"] if lazy else [])
        self.log = open(home.parent / f"server-{name}.log", "w")
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        import httpx

        while True:
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited; see {self.log.name}")
            time.sleep(0.2)
        self.startup_s = time.perf_counter() - started

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def measure_search(home: Path, name: str, queries: list[str], n: int) -> dict:
    import httpx

    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    chunks = manifest(home / name)["chunks"]
    server = Server(home, name)
    try:
        times, counts = [], []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for q in queries[:5]:
                client.get("/api/search", params={"q": q, "k": 10, "mode": "hybrid"}).raise_for_status()
            for i in range(n):
                q = queries[i % len(queries)]
                t0 = time.perf_counter()
                response = client.get("/api/search", params={"q": q, "k": 10, "mode": "hybrid"})
                times.append(time.perf_counter() - t0)
                response.raise_for_status()
                counts.append(len(response.json()["hits"]))
    finally:
        server.close()
    searcher = Searcher(Settings(home=home, name=name))
    searcher.warm()
    for q in queries[:5]:
        searcher.search(q, k=10)
    library = []
    for i in range(n):
        t0 = time.perf_counter()
        searcher.search(queries[i % len(queries)], k=10)
        library.append(time.perf_counter() - t0)
    searcher.close()
    return {
        "index": name, "chunks": chunks, "distinct_queries": min(n, len(queries)),
        "server_startup_s": round(server.startup_s, 2), "http_ms": summary(times), "library_ms": summary(library),
        "hits_per_request_min": min(counts),
    }


def measure_ask(home: Path, name: str, questions: list[str], max_tokens: int) -> dict:
    import httpx

    server = Server(home, name, lazy=False)  # the generator loads before /api/health answers
    first, total, tokens, refused, model = [], [], [], [], None
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            for question in questions:
                t0 = time.perf_counter()
                got_first, n = None, 0
                body = {"question": question, "max_tokens": max_tokens}
                with client.stream("POST", "/api/ask/stream", json=body) as response:
                    response.raise_for_status()
                    event = None
                    for line in response.iter_lines():
                        if line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:") and event == "token":
                            n += 1
                            got_first = got_first or time.perf_counter() - t0
                        elif line.startswith("data:") and event == "answer":
                            answer = json.loads(line[5:])
                            model = answer.get("model") or model
                            if answer.get("refused") and not n:
                                refused.append(question)
                        elif line.startswith("data:") and event == "error":
                            raise SystemExit(f"ask failed: {line[5:]}")
                if got_first is not None:  # a refusal streams no token: it has no first-token time
                    total.append(time.perf_counter() - t0)
                    first.append(got_first)
                    tokens.append(n)
    finally:
        server.close()
    return {"generator": model, "server_startup_s": round(server.startup_s, 2),
            "first_token_s": [round(x, 3) for x in first], "total_s": [round(x, 3) for x in total],
            "tokens_median": statistics.median(tokens) if tokens else 0, "refused": refused}


# -- reporting --------------------------------------------------------------------------------------------
def summary(seconds: list[float]) -> dict:
    ms = sorted(x * 1000 for x in seconds)
    return {"median": round(statistics.median(ms), 2), "p95": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "min": round(ms[0], 2), "max": round(ms[-1], 2)}


def print_search(label: str, r: dict) -> None:
    h, lib = r["http_ms"], r["library_ms"]
    print(f"\n{label} ({r['chunks']} chunks), hybrid k=10, {r['distinct_queries']} distinct queries:")
    print(f"  HTTP GET /api/search  median {h['median']:.1f} ms  p95 {h['p95']:.1f} ms  "
          f"(min {h['min']:.1f}, max {h['max']:.1f})")
    print(f"  Searcher.search       median {lib['median']:.1f} ms  p95 {lib['p95']:.1f} ms")
    print(f"  server start to healthy: {r['server_startup_s']:.1f} s")


def fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()

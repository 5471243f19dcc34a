"""`searchlm index --ray` on a local 2-CPU Ray instance against the local path: the same top-10 for every query in
sample_corpus/QUERIES.md, and per-chunk cosine of the vectors.

    python benchmarks/ray_bench.py
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from searchlm.indexing.indexer import index_folder  # noqa: E402
from searchlm.search.searcher import Searcher, SearchOptions  # noqa: E402
from searchlm.settings import Settings  # noqa: E402


def queries() -> list[str]:
    text = (HERE / "sample_corpus" / "QUERIES.md").read_text(encoding="utf-8")
    return re.findall(r"^\| (.+?) \| `[^`]+` \|$", text, re.M)  # the question column of the table


def vectors(index_dir: Path) -> dict[str, np.ndarray]:
    conn = sqlite3.connect(index_dir / "index.db")
    try:
        return {h: np.frombuffer(v, dtype=np.float32) for h, v in conn.execute("SELECT hash, vector FROM chunks")}
    finally:
        conn.close()


def main() -> None:
    import ray

    home = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    local, on_ray = Settings(home=home, name="local"), Settings(home=home, name="ray", embedder="ray")
    t0 = time.perf_counter()
    index_folder(HERE / "sample_corpus", local)
    t1 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    t2 = time.perf_counter()
    index_folder(HERE / "sample_corpus", on_ray)
    t3 = time.perf_counter()
    print(f"local {t1 - t0:.1f} s; ray start {t2 - t1:.1f} s, ray index {t3 - t2:.1f} s  (load {os.getloadavg()[0]:.2f})")
    a, b = vectors(local.index_dir), vectors(on_ray.index_dir)
    cos = np.array([float(np.dot(a[h], b[h])) for h in a])
    print(f"{len(cos)} chunks, same hashes: {a.keys() == b.keys()}, min cosine {cos.min():.6f}")
    qs = queries()
    same = 0
    for q in qs:
        for mode in ("hybrid", "dense"):
            x = [(h.path, h.heading, h.start_line) for h in Searcher(local).search(q, SearchOptions(k=10, mode=mode))]
            y = [(h.path, h.heading, h.start_line) for h in Searcher(on_ray).search(q, SearchOptions(k=10, mode=mode))]
            same += x == y
            if x != y:
                print(f"DIFFERENT top-10 ({mode}): {q}")
    print(f"{len(qs)} queries x 2 modes: {same}/{2 * len(qs)} identical top-10 lists")


if __name__ == "__main__":
    main()

"""Scale benchmark (issue #12): FAISS flat, FAISS HNSW and Milvus Lite at up to 1,000,000 chunks.

    python benchmarks/scale.py --source INDEX_DIR [--chunks 1000000] [--backends flat,hnsw,milvus]
                               [--queries 100] [--cold-runs 10] [--workdir /tmp/searchlm-scale]

1. Builds, once, a searchlm SQLite store of `--chunks` chunks from a real searchlm index (`--source`, e.g. the
   one `searchlm eval ../shared/datasets/scifact` builds): chunk k is a copy of real chunk k mod n, its text
   the real text with its title marked "(variant c)" (so BM25 works on real words), its vector the real MiniLM
   vector plus Gaussian noise (cosine ~0.9 to it) renormalized, as `cold_search.py` does. Encoding a million
   chunks on this 2-core machine would take days; the search cost does not depend on the values.
2. Per backend, in its own process (so its peak RSS is its own): copies that store into an index folder, builds
   the vector store from SQLite (build time), applies a 1 % update (0.5 % of the documents deleted, as many
   added) incrementally from SQLite's change log (update time), then runs SciFact test queries through a warm
   `Searcher` (p50/p95 of hybrid and dense, k=10) and keeps each query's dense top 10.
3. Recall@10 of each backend's dense top 10 against FAISS flat's (exact inner product over the same, updated
   chunks); disk size of the SQLite file and of the store; cold `searchlm search` processes on the FAISS indexes
   (median wall time and peak RSS, from GNU time).

Prints one table (markdown) and the load average with every timing: timings on a shared CPU vary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cold_search import run_timed, test_queries  # noqa: E402

DOCS_PER_COPY_CHUNKS = 10  # chunks per synthetic document
SEED = 12


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, required=True, help="a searchlm index folder with real chunks and vectors")
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--backends", default="flat,hnsw,milvus")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--cold-runs", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/searchlm-scale"))
    ap.add_argument("--run-backend", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    base = args.workdir / f"base-{args.chunks}.db"
    if args.run_backend:
        print(json.dumps(run_backend(args, base, args.run_backend)))
        return
    if not base.is_file():
        t0 = time.perf_counter()
        build_base(args.source, base, args.chunks)
        print(f"base store: {args.chunks} chunks in {time.perf_counter() - t0:.0f} s (load {loadavg()})", flush=True)
    results = {}
    for backend in args.backends.split(","):
        print(f"[{backend}] start, load {loadavg()}", flush=True)
        out = subprocess.run([sys.executable, __file__, "--source", str(args.source), "--chunks", str(args.chunks),
                              "--queries", str(args.queries), "--workdir", str(args.workdir), "--run-backend", backend],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"[{backend}] failed:\n{out.stderr[-3000:]}", flush=True)
            continue
        results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"[{backend}] {json.dumps({k: v for k, v in results[backend].items() if k != 'top10'})}", flush=True)
    exact = results.get("flat", {}).get("top10")
    for backend, r in results.items():
        r["recall"] = recall(r["top10"], exact) if exact else None
    for backend in ("flat", "hnsw"):
        if backend in results and args.cold_runs:
            home = args.workdir / backend
            queries = test_queries(args.cold_runs + 1)
            searchlm = str(Path(sys.executable).parent / "searchlm")
            cmd = lambda q: [searchlm, "search", q, "--home", str(home), "--name", "scale", "-k", "10"]
            run_timed(cmd(queries[0]))  # page cache warm-up, not timed
            runs = [run_timed(cmd(q)) for q in queries[1:]]
            results[backend]["cold_median_s"] = statistics.median(r[0] for r in runs)
            results[backend]["cold_peak_rss_mb"] = max(r[1] for r in runs)
            results[backend]["cold_load"] = loadavg()
    table(results, args.chunks)


# -- the base store --------------------------------------------------------------------------------------------
def build_base(source: Path, out: Path, target: int) -> None:
    from searchlm.store import Store

    src = sqlite3.connect(f"file:{source / 'index.db'}?mode=ro", uri=True)
    rows = src.execute("SELECT c.title, c.heading, c.text, c.hash, c.vector FROM chunks c ORDER BY c.id").fetchall()
    src.close()
    vecs = np.vstack([np.frombuffer(r[4], dtype=np.float32) for r in rows])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    store = Store(out)  # the schema, migrations and triggers of a real index
    rng = np.random.default_rng(SEED)
    n, dim = len(rows), vecs.shape[1]
    conn = store.conn
    conn.execute("PRAGMA synchronous=OFF")
    made = 0
    with conn:
        while made < target:
            copy, start = divmod(made, n)
            take = min(DOCS_PER_COPY_CHUNKS, n - start, target - made)
            insert_document(conn, rng, rows, vecs, copy, start, take, dim)
            made += take
    store.close()


def insert_document(conn, rng, rows, vecs, copy: int, start: int, take: int, dim: int) -> None:
    mtime = 1_600_000_000_000_000_000 + int(rng.integers(0, 10**17))
    cur = conn.execute(
        "INSERT INTO documents(path, kind, title, size, mtime_ns, content_hash, n_chunks, indexed_at)"
        " VALUES (?, 'markdown', ?, 0, ?, ?, ?, ?)",
        (f"c{copy:04d}/d{start:06d}.md", rows[start][0], mtime, f"sha256:{copy}-{start}", take, time.time()),
    )
    doc_id = cur.lastrowid
    noise = rng.normal(0, 0.5 / np.sqrt(dim), (take, dim)).astype(np.float32)
    v = vecs[start : start + take] + (noise if copy else 0)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    conn.executemany(
        "INSERT INTO chunks(doc_id, ordinal, title, heading, start_line, end_line, page, text, hash, vector)"
        " VALUES (?, ?, ?, ?, NULL, NULL, NULL, ?, ?, ?)",
        [(doc_id, i, f"{rows[start + i][0]} (variant {copy})" if copy else rows[start + i][0], rows[start + i][1],
          rows[start + i][2], f"{rows[start + i][3]}-{copy}", v[i].tobytes()) for i in range(take)],
    )


# -- one backend, in its own process ---------------------------------------------------------------------------
def run_backend(args, base: Path, backend: str) -> dict:
    from searchlm.indexer import sync_vectors
    from searchlm.manifest import Manifest
    from searchlm.search import Searcher
    from searchlm.settings import DEFAULT_MODEL, Settings
    from searchlm.store import Store
    from searchlm.stores import faiss as faiss_store
    from searchlm.stores.base import parse_store

    home = args.workdir / backend
    index_dir = home / "scale"
    shutil.rmtree(home, ignore_errors=True)
    index_dir.mkdir(parents=True)
    shutil.copyfile(base, index_dir / "index.db")
    shutil.copytree(args.source / "encoder", index_dir / "encoder")
    faiss_store.HNSW_THRESHOLD = 1 if backend == "hnsw" else 10**12
    spec = parse_store("milvus" if backend == "milvus" else "faiss", "scale")
    if backend == "milvus":
        spec.extra["dense_index"] = "HNSW"  # exact search over a million rows is what HNSW is for
    store_json = spec.to_json() | ({"dense_index": "HNSW"} if backend == "milvus" else {})
    manifest = Manifest(name="scale", root=str(args.workdir / "corpus"), model=DEFAULT_MODEL, dimension=384,
                        store=store_json)
    manifest.save(index_dir)
    store = Store(index_dir / "index.db")
    out: dict = {"backend": backend}

    t0 = time.perf_counter()
    sync_vectors(store, manifest, index_dir).close()
    out["build_s"] = round(time.perf_counter() - t0, 1)
    out["build_load"] = loadavg()
    manifest.save(index_dir)

    # 1 % update: 0.5 % of the chunks' documents deleted, as many chunks added (new documents).
    rng = np.random.default_rng(SEED + 1)
    docs = store.conn.execute("SELECT path, n_chunks FROM documents").fetchall()
    target = args.chunks // 200
    order = rng.permutation(len(docs))
    gone, removed = [], 0
    for i in order:
        if removed >= target:
            break
        gone.append(docs[i][0])
        removed += docs[i][1]
    store.delete_documents(gone)
    src = sqlite3.connect(f"file:{args.source / 'index.db'}?mode=ro", uri=True)
    rows = src.execute("SELECT c.title, c.heading, c.text, c.hash, c.vector FROM chunks c ORDER BY c.id").fetchall()
    src.close()
    vecs = np.vstack([np.frombuffer(r[4], dtype=np.float32) for r in rows])
    added = 0
    with store.conn:
        while added < target:
            start = int(rng.integers(0, len(rows) - DOCS_PER_COPY_CHUNKS))
            insert_document(store.conn, rng, rows, vecs, 9000 + added, start, DOCS_PER_COPY_CHUNKS, 384)
            added += DOCS_PER_COPY_CHUNKS
        store._bump()
    del rows, vecs
    t0 = time.perf_counter()
    sync_vectors(store, manifest, index_dir).close()
    out["update_s"] = round(time.perf_counter() - t0, 2)
    out["update_chunks"] = f"-{removed} +{added}"
    out["update_load"] = loadavg()
    manifest.save(index_dir)
    store.close()

    searcher = Searcher(Settings(home=home, name="scale"))
    searcher.warm()
    queries = test_queries(args.queries)
    for q in queries[:3]:  # untimed: first queries load what the backend loads lazily
        searcher.search(q, k=10)
    top10, times = [], {"hybrid": [], "dense": []}
    for q in queries:
        for mode in ("hybrid", "dense"):
            t0 = time.perf_counter()
            hits = searcher.search(q, mode=mode, k=10)
            times[mode].append(time.perf_counter() - t0)
            if mode == "dense":
                top10.append([h.chunk_id for h in hits])
    searcher.close()
    for mode, ts in times.items():
        ts.sort()
        out[f"{mode}_p50_ms"] = round(1000 * statistics.median(ts), 1)
        out[f"{mode}_p95_ms"] = round(1000 * ts[int(round(0.95 * (len(ts) - 1)))], 1)
    out["query_load"] = loadavg()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    sizes = {p.name: p.stat().st_size for p in index_dir.rglob("*") if p.is_file()}
    out["sqlite_mb"] = round(sum(v for k, v in sizes.items() if k.startswith("index.db")) / 2**20)
    out["store_mb"] = round(sum(v for p, v in ((p, p.stat().st_size) for p in index_dir.rglob("*") if p.is_file())
                                if p.name == "vectors.faiss" or "milvus" in str(p.relative_to(index_dir))) / 2**20)
    out["top10"] = top10
    return out


def recall(found: list[list[int]], exact: list[list[int]]) -> float:
    return round(float(np.mean([len(set(f) & set(e)) / max(1, len(e)) for f, e in zip(found, exact)])), 4)


def table(results: dict, chunks: int) -> None:
    print(f"\n{chunks:,} chunks; load now {loadavg()}\n")
    print("| backend | build s | 1 % update s | hybrid p50 / p95 ms | dense p50 / p95 ms | recall@10 | "
          "peak RSS MB | SQLite MB | store MB | cold search median s / peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for b, r in results.items():
        cold = f"{r['cold_median_s']:.2f} / {r['cold_peak_rss_mb']}" if "cold_median_s" in r else "–"
        print(f"| {b} | {r['build_s']} | {r['update_s']} ({r['update_chunks']}) | {r['hybrid_p50_ms']} / "
              f"{r['hybrid_p95_ms']} | {r['dense_p50_ms']} / {r['dense_p95_ms']} | {r['recall']} | {r['peak_rss_mb']} | "
              f"{r['sqlite_mb']} | {r['store_mb']} | {cold} |")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

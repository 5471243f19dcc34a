"""Scale benchmark (issue #12): FAISS flat, FAISS HNSW and Milvus Lite at up to 1,000,000 chunks.

    python benchmarks/scale.py --source INDEX_DIR [--source INDEX_DIR ...] [--chunks 1000000]
                               [--backends flat,hnsw,milvus] [--steps build,query] [--queries 100]
                               [--cold-runs 10] [--workdir /tmp/searchlm-scale] [--timing-lock /work/wt/timing.lock]

1. Builds, once, a searchlm SQLite store of `--chunks` chunks from real searchlm indexes (`--source`, e.g. the
   ones `searchlm eval` builds for SciFact, CISI and Cranfield: 15,392 real chunks): chunk k is copy c = k // n
   of real chunk k mod n, its text the real text with its title marked "(variant c)" (so BM25 works on real
   words), its vector a point between the real MiniLM vector and one of its 20 nearest real neighbours plus
   noise (`Synthetic`: nearest-neighbour cosines like a real MiniLM corpus). Encoding a million chunks on this
   2-core machine would take days.
2. Step `build`, per backend, in its own process at nice 19: copies that store into an index folder, builds
   the vector store from SQLite (build time), applies a 1 % update (0.5 % of the documents deleted, as many
   added) incrementally from SQLite's change log (update time). Step `query`, holding the timing lock, at
   normal priority, per backend in its own process (so its peak RSS is its own): SciFact test queries through
   a warm `Searcher` (p50/p95 of hybrid and dense, k=10), keeping each query's dense top 10.
3. Recall@10 of each backend's dense top 10 against an exact inner-product search over its own, updated chunks
   (the HNSW rows also record the tuner's choice, `ann`, and how long tuning took); disk size of the SQLite file and of the store; cold `searchlm search` processes on the FAISS indexes
   (median wall time and peak RSS, from GNU time).

Prints one table (markdown) and the load average with every timing: timings on a shared CPU vary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
    ap.add_argument("--source", type=Path, action="append", required=True,
                    help="a searchlm index folder with real chunks and vectors (repeatable; the first lends its encoder)")
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--backends", default="flat,hnsw,milvus")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--cold-runs", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/searchlm-scale"))
    ap.add_argument("--steps", default="build,query", help="build (niced), query (timed, under the lock), or both")
    ap.add_argument("--timing-lock", type=Path, default=TIMING_LOCK,
                    help="a file locked (flock) while latencies are measured, so timed runs do not overlap")
    ap.add_argument("--run-step", help=argparse.SUPPRESS)
    ap.add_argument("--run-backend", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    base = args.workdir / f"base-{args.chunks}.db"
    if args.run_step == "base":
        t0 = time.perf_counter()
        build_base(args.source, base, args.chunks)
        print(f"base store: {args.chunks} chunks in {time.perf_counter() - t0:.0f} s (load {loadavg()})", flush=True)
        return
    if args.run_step:
        step = build_backend if args.run_step == "build" else query_backend
        print(json.dumps(step(args, base, args.run_backend)))
        return
    backends, steps = args.backends.split(","), args.steps.split(",")
    if "build" in steps:
        if not base.is_file():
            sub(args, "base", None, nice=True)
        for backend in backends:
            out = sub(args, "build", backend, nice=True)
            if out:
                (args.workdir / backend / "build.json").write_text(json.dumps(out))
    if "query" not in steps:
        return
    results = {}
    with timing_lock(args.timing_lock):
        for backend in backends:
            built = args.workdir / backend / "build.json"
            out = sub(args, "query", backend, nice=False) if built.is_file() else None
            if out:
                results[backend] = json.loads(built.read_text()) | out
        exact = results.get("flat", {}).get("top10")
        for backend, r in results.items():
            own = r.get("exact_top10")  # each non-flat folder against an exact search over its own chunks
            r["recall"] = recall(r["top10"], own or exact) if (own or exact) else None
        for backend in ("flat", "hnsw", "tantivy"):
            if backend in results and args.cold_runs:
                results[backend].update(cold_runs(args, backend))
    (args.workdir / f"results-{args.chunks}.json").write_text(json.dumps(results))
    table(results, args.chunks)


TIMING_LOCK = Path("/work/wt/timing.lock")


def cold_runs(args, backend: str) -> dict:
    """Cold `searchlm search` processes (each a new interpreter: imports, model and index opening, one query),
    the default hybrid mode and dense alone, which leaves SQLite's FTS5 out."""
    home = args.workdir / backend
    queries = test_queries(args.cold_runs + 1)
    searchlm = str(Path(sys.executable).parent / "searchlm")
    out = {}
    for mode in ("hybrid", "dense"):
        cmd = [searchlm, "search", "--home", str(home), "--name", "scale", "-k", "10", "--mode", mode]
        run_timed([*cmd, queries[0]])  # page cache warm-up, not timed
        runs = [run_timed([*cmd, q]) for q in queries[1:]]
        key = "cold" if mode == "hybrid" else "cold_dense"
        out[f"{key}_median_s"] = round(statistics.median(r[0] for r in runs), 3)
        out[f"{key}_peak_rss_mb"] = max(r[1] for r in runs)
        out[f"{key}_cpu_s"] = round(statistics.median(r[2] for r in runs), 3)
    out["cold_load"] = loadavg()
    print(f"[{backend}] cold: {json.dumps(out)}", flush=True)
    return out


def sub(args, step: str, backend: str | None, nice: bool) -> dict | None:
    """Run one step in its own process (its peak RSS is its own); builds at nice 19, timed steps at normal
    priority."""
    cmd = [sys.executable, __file__, *(a for src in args.source for a in ("--source", str(src))), "--chunks",
           str(args.chunks), "--queries", str(args.queries), "--workdir", str(args.workdir), "--run-step", step]
    if backend:
        cmd += ["--run-backend", backend]
    print(f"[{backend or 'base'}] {step} start, load {loadavg()}", flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=(lambda: os.nice(19)) if nice else None)
    if out.returncode != 0:
        print(f"[{backend or 'base'}] {step} failed:\n{out.stderr[-3000:]}", flush=True)
        return None
    if not backend:
        print(out.stdout.strip(), flush=True)
        return {}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"[{backend}] {step}: {json.dumps({k: v for k, v in result.items() if k not in ('top10', 'exact_top10')})}", flush=True)
    return result


@contextlib.contextmanager
def timing_lock(path: Path):
    if not path.parent.is_dir():
        yield
        return
    import fcntl

    with open(path, "a") as f:
        print(f"waiting for the timing lock {path}, load {loadavg()}", flush=True)
        fcntl.flock(f, fcntl.LOCK_EX)
        print(f"timing lock held, load {loadavg()}", flush=True)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# -- the base store --------------------------------------------------------------------------------------------
NEIGHBOURS = 20  # interpolation partners of each real chunk vector: its nearest real neighbours
# Norm of the isotropic Gaussian noise added to each synthetic vector. 0.5 gives 1M synthetic vectors whose
# nearest-neighbour cosine (mean 0.852, median 0.863, p10 0.791, p90 0.895; 300 sampled) is close to that of the
# 15,392 real MiniLM chunk vectors of SciFact, CISI and Cranfield (mean 0.819, median 0.835); 0.35 gives 0.908
# (denser than real), 0.1 about 0.98 (near-duplicates). Each synthetic vector keeps cosine ~0.76 to its source.
NOISE = 0.5


def load_sources(sources: list[Path]) -> tuple[list[tuple], np.ndarray]:
    """Real chunks (title, heading, text, hash) and their MiniLM vectors from searchlm index folders."""
    rows: list[tuple] = []
    for source in sources:
        src = sqlite3.connect(f"file:{source / 'index.db'}?mode=ro", uri=True)
        rows += src.execute("SELECT c.title, c.heading, c.text, c.hash, c.vector FROM chunks c ORDER BY c.id").fetchall()
        src.close()
    vecs = np.vstack([np.frombuffer(r[4], dtype=np.float32) for r in rows])
    return [r[:4] for r in rows], vecs


class Synthetic:
    """Synthetic chunk vectors made from real ones. Copy 0 of real chunk i is its own vector; copy c > 0 is a
    point on the segment from it to one of its NEIGHBOURS nearest real neighbours (at a uniform random
    fraction of the way), plus a little isotropic noise, renormalized. So the synthetic set lies where real
    MiniLM vectors lie and fills the space between real neighbours, the way a bigger real corpus does.

    The first version added noise (norm 0.5) to copies of one source vector: ~195 near-copies per SciFact chunk
    at 1M, all at cosine ~0.8 to each other. A query's exact top 10 was then an arbitrary pick among ~195 near
    ties, and HNSW (M=32) builds its graph inside these clumps; recall@10 came out 0.50 at 50k, a property of the
    data, not of the index (see the RESULTS #12 section for the probe)."""

    def __init__(self, vecs: np.ndarray):
        import faiss

        self.vecs = vecs
        flat = faiss.IndexFlatIP(vecs.shape[1])
        flat.add(vecs)
        _, nn = flat.search(vecs, NEIGHBOURS + 1)
        self.nn = nn[:, 1:]  # the nearest is the vector itself

    def make(self, rng, idx: np.ndarray, copy: int) -> np.ndarray:
        v = self.vecs[idx]
        if not copy:
            return v.copy()
        partner = self.vecs[self.nn[idx, rng.integers(0, NEIGHBOURS, len(idx))]]
        frac = rng.uniform(0, 1, (len(idx), 1)).astype(np.float32)
        out = v + frac * (partner - v) + rng.normal(0, NOISE / np.sqrt(v.shape[1]), v.shape).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def build_base(sources: list[Path], out: Path, target: int) -> None:
    from searchlm.indexing.database import Database

    rows, vecs = load_sources(sources)
    synth = Synthetic(vecs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    store = Database(out)  # the schema, migrations and triggers of a real index
    rng = np.random.default_rng(SEED)
    n = len(rows)
    conn = store.conn
    conn.execute("PRAGMA synchronous=OFF")
    # Bulk load without the triggers (FTS5 rows, CJK, vector log), then one FTS5 'rebuild': 4x less CPU than
    # a trigger per row. The triggers are put back for the update step, which goes through them as indexing does.
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    made = 0
    with conn:
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        while made < target:
            copy, start = divmod(made, n)
            take = min(DOCS_PER_COPY_CHUNKS, n - start, target - made)
            insert_document(conn, rng, rows, synth, copy, start, take, placeholder=True)
            made += take
        write_vectors(conn, synth, n)
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
        for _, sql in triggers:
            conn.execute(sql)
    store.close()


def write_vectors(conn, synth: Synthetic, n: int, batch: int = 10_000) -> None:
    """Every chunk's synthetic vector, from its id alone: chunk id k is copy (k - 1) // n of real chunk
    (k - 1) % n, as `build_base` inserts them, drawn from its own seed (so nothing else drawn changes them).
    The caller has dropped the chunks triggers (an UPDATE would re-index the chunk's FTS5 row)."""
    rng = np.random.default_rng(SEED + 2)
    last = conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0
    for lo in range(1, last + 1, batch):
        ids = np.arange(lo, min(lo + batch, last + 1))
        real, copy = (ids - 1) % n, (ids - 1) // n
        v = np.empty((len(ids), synth.vecs.shape[1]), dtype=np.float32)
        for c in np.unique(copy):
            v[copy == c] = synth.make(rng, real[copy == c], int(c))
        conn.executemany("UPDATE chunks SET vector = ? WHERE id = ?", ((v[j].tobytes(), int(ids[j])) for j in range(len(ids))))


def insert_document(conn, rng, rows, synth: Synthetic, copy: int, start: int, take: int,
                    placeholder: bool = False) -> None:
    """One synthetic document of `take` chunks (copy `copy` of real chunks start..start+take); `placeholder`:
    the real vectors, for `write_vectors` to replace."""
    mtime = 1_600_000_000_000_000_000 + int(rng.integers(0, 10**17))
    cur = conn.execute(
        "INSERT INTO documents(path, kind, title, size, mtime_ns, content_hash, n_chunks, indexed_at)"
        " VALUES (?, 'markdown', ?, 0, ?, ?, ?, ?)",
        (f"c{copy:04d}/d{start:06d}.md", rows[start][0], mtime, f"sha256:{copy}-{start}", take, time.time()),
    )
    doc_id = cur.lastrowid
    v = synth.make(rng, np.arange(start, start + take), 0 if placeholder else copy)
    conn.executemany(
        "INSERT INTO chunks(doc_id, ordinal, title, heading, start_line, end_line, page, text, hash, vector)"
        " VALUES (?, ?, ?, ?, NULL, NULL, NULL, ?, ?, ?)",
        [(doc_id, i, f"{rows[start + i][0]} (variant {copy})" if copy else rows[start + i][0], rows[start + i][1],
          rows[start + i][2], f"{rows[start + i][3]}-{copy}", v[i].tobytes()) for i in range(take)],
    )


# -- one backend, in its own process ---------------------------------------------------------------------------
def build_backend(args, base: Path, backend: str) -> dict:
    from searchlm.indexing.manifest import Manifest
    from searchlm.settings import DEFAULT_MODEL
    from searchlm.stores import faiss as faiss_store
    from searchlm.stores.base import parse_store

    home = args.workdir / backend
    index_dir = home / "scale"
    shutil.rmtree(home, ignore_errors=True)
    if backend == "tantivy":
        return build_tantivy(args, index_dir)
    index_dir.mkdir(parents=True)
    shutil.copyfile(base, index_dir / "index.db")
    shutil.copytree(args.source[0] / "encoder", index_dir / "encoder")
    faiss_store.HNSW_THRESHOLD = 1 if backend == "hnsw" else 10**12
    spec = parse_store("milvus" if backend == "milvus" else "faiss", "scale")
    if backend == "milvus":
        spec.extra["dense_index"] = "HNSW"  # exact search over a million rows is what HNSW is for
    store_json = spec.to_json() | ({"dense_index": "HNSW"} if backend == "milvus" else {})
    manifest = Manifest(name="scale", root=str(args.workdir / "corpus"), model=DEFAULT_MODEL, dimension=384,
                        store=store_json)
    manifest.save(index_dir)
    return timed_build(args, index_dir, manifest, backend, SEED + 1)


def build_tantivy(args, index_dir: Path) -> dict:
    """`faiss+tantivy` on the HNSW backend's folder (built first): the tantivy index is built from its SQLite
    (build time: tantivy alone, the FAISS file is the HNSW one), then a second 1 % update goes to both."""
    from searchlm.indexing.manifest import Manifest
    from searchlm.stores import faiss as faiss_store

    shutil.copytree(args.workdir / "hnsw" / "scale", index_dir)
    faiss_store.HNSW_THRESHOLD = 1
    manifest = Manifest.load(index_dir)
    manifest.store = {"backend": "faiss+tantivy"}
    return timed_build(args, index_dir, manifest, "tantivy", SEED + 3)


def timed_build(args, index_dir: Path, manifest, backend: str, seed: int) -> dict:
    """Build the store from SQLite (timed), then the 1 % update (timed); peak RSS of the process."""
    from searchlm.indexing.indexer import sync_vectors
    from searchlm.indexing.database import Database
    from searchlm.stores import faiss as faiss_store

    store = Database(index_dir / "index.db")
    out: dict = {"backend": backend}
    tune, tunes = faiss_store.tune_ef_search, []

    def timed_tune(*a, **kw):  # the HNSW build's efSearch measurement, timed apart from the graph build
        t = time.perf_counter()
        result = tune(*a, **kw)
        tunes.append({"tune_s": round(time.perf_counter() - t, 1), "load": loadavg()} | result)
        return result

    faiss_store.tune_ef_search = timed_tune
    t0 = time.perf_counter()
    sync_vectors(store, manifest, index_dir).close()
    out["build_s"] = round(time.perf_counter() - t0, 1)
    out["build_load"] = loadavg()
    out["ann"] = manifest.ann  # what the build chose: type, efSearch or exact mode, the probes' recall, costs
    out["tunes"] = tunes  # each measurement during build and update (an update retunes past RETUNE_GROWTH)
    manifest.save(index_dir)
    update(args, store, manifest, index_dir, out, seed)
    store.close()
    out["build_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return out


def update(args, store, manifest, index_dir: Path, out: dict, seed: int) -> None:
    """1 % update: 0.5 % of the chunks' documents deleted, as many chunks added (new documents), then synced."""
    from searchlm.indexing.indexer import sync_vectors

    rng = np.random.default_rng(seed)
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
    rows, vecs = load_sources(args.source)
    synth = Synthetic(vecs)
    added = 0
    with store.conn:
        while added < target:
            start = int(rng.integers(0, len(rows) - DOCS_PER_COPY_CHUNKS))
            insert_document(store.conn, rng, rows, synth, 9000 + added, start, DOCS_PER_COPY_CHUNKS)
            added += DOCS_PER_COPY_CHUNKS
        store._bump()
    del rows, vecs, synth
    t0 = time.perf_counter()
    sync_vectors(store, manifest, index_dir).close()
    out["update_s"] = round(time.perf_counter() - t0, 2)
    out["update_chunks"] = f"-{removed} +{added}"
    out["update_load"] = loadavg()
    manifest.save(index_dir)


def query_backend(args, base: Path, backend: str) -> dict:
    """Warm in-process queries on a built backend (at normal priority, under the timing lock)."""
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    home = args.workdir / backend
    index_dir = home / "scale"
    out: dict = {}
    searcher = Searcher(Settings(home=home, name="scale"))
    searcher.warm()
    queries = test_queries(args.queries)
    for q in queries[:3]:  # untimed: first queries load what the backend loads lazily
        searcher.search(q, k=10)
    top10, hybrid_top, times = [], [], {"hybrid": [], "dense": []}
    for q in queries:
        for mode in ("hybrid", "dense"):
            t0 = time.perf_counter()
            hits = searcher.search(q, mode=mode, k=10)
            times[mode].append(time.perf_counter() - t0)
            if mode == "dense":
                top10.append([h.chunk_id for h in hits])
            else:
                hybrid_top.append([h.chunk_id for h in hits])
    if backend == "tantivy":
        out.update(against_fts5(searcher, queries, hybrid_top))
    if backend != "flat":  # recall against its own exact search: flat need not be built (its chunks differ anyway)
        out["exact_top10"] = exact_top10(searcher, queries)
    out["ann_used"] = searcher.manifest.ann  # the tuned choice the queries ran with
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
    out["keyword_mb"] = round(sum(p.stat().st_size for p in index_dir.rglob("*")
                                  if p.is_file() and "keywords.tantivy" in str(p)) / 2**20)
    out["top10"] = top10
    return out


def against_fts5(searcher, queries: list[str], hybrid_top: list[list[int]]) -> dict:
    """The same searcher with its keyword side on SQLite FTS5 (as a search does while tantivy is behind): hybrid
    p50, and how many of each hybrid top 10 both engines share."""
    from searchlm.stores import tantivy as tantivy_store

    tantivy_store.RECHECK_S = float("inf")  # no looking again during this comparison
    searcher.keywords._kw = False  # what `keyword` caches when tantivy is not current
    assert not searcher.keywords.keyword
    times, shared = [], []
    for q, mine in zip(queries, hybrid_top):
        t0 = time.perf_counter()
        hits = searcher.search(q, k=10)
        times.append(time.perf_counter() - t0)
        shared.append(len({h.chunk_id for h in hits} & set(mine)) / max(1, len(mine)))
    searcher.keywords._kw = None
    return {"fts5_hybrid_p50_ms": round(1000 * statistics.median(times), 1),
            "hybrid_top10_shared_with_fts5": round(float(np.mean(shared)), 4)}


def exact_top10(searcher, queries: list[str]) -> list[list[int]]:
    """Exact inner-product top 10 over every vector in SQLite (this backend's chunks differ from flat's), for each
    query as `search` embeds it (after its spelling correction)."""
    fixed = [(fix.corrected if (fix := searcher.correct(x)) else x) for x in queries]
    q = np.vstack([searcher.encoder.embed_query(x) for x in fixed]).astype(np.float32)
    best = [[] for _ in queries]
    for ids, vecs in searcher.store.iter_vectors():
        scores = q @ vecs.T
        for j in range(len(queries)):
            top = np.argsort(-scores[j])[:10]
            best[j] = sorted(best[j] + [(float(scores[j, t]), int(ids[t])) for t in top], reverse=True)[:10]
    return [[i for _, i in b] for b in best]


def recall(found: list[list[int]], exact: list[list[int]]) -> float:
    return round(float(np.mean([len(set(f) & set(e)) / max(1, len(e)) for f, e in zip(found, exact)])), 4)


def table(results: dict, chunks: int) -> None:
    print(f"\n{chunks:,} chunks; load now {loadavg()}\n")
    print("| backend | build s | 1 % update s | hybrid p50 / p95 ms | dense p50 / p95 ms | recall@10 | "
          "peak RSS MB | SQLite MB | store MB | cold search median s / peak RSS MB (hybrid; dense) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for b, r in results.items():
        cold = (f"{r['cold_median_s']:.2f} / {r['cold_peak_rss_mb']}; {r['cold_dense_median_s']:.2f} / "
                f"{r['cold_dense_peak_rss_mb']}") if "cold_median_s" in r else "–"
        print(f"| {b} | {r['build_s']} | {r['update_s']} ({r['update_chunks']}) | {r['hybrid_p50_ms']} / "
              f"{r['hybrid_p95_ms']} | {r['dense_p50_ms']} / {r['dense_p95_ms']} | {r['recall']} | {r['peak_rss_mb']} | "
              f"{r['sqlite_mb']} | {r['store_mb']} | {cold} |")
    for b, r in results.items():
        ann = r.get("ann_used") or {}
        if ann.get("type") == "hnsw":
            tuned = "; ".join(f"{t['tune_s']} s at load {t['load']}" for t in r.get("tunes", []))
            print(f"\n{b}: searched in {ann.get('mode')} mode; tuner: efSearch {ann.get('ef_search')}, probe recall@10 "
                  f"{ann.get('recall')} (target {ann.get('recall_target', 0.95)}), HNSW {ann.get('hnsw_ms')} ms against "
                  f"an exact scan {ann.get('exact_ms')} ms a query; tuning took {tuned or 'place in the folder it was copied from'}")
    for b, r in results.items():
        if "fts5_hybrid_p50_ms" in r:
            print(f"\n{b}: tantivy index {r['keyword_mb']} MB; the same searcher with FTS5 as its keyword side: hybrid "
                  f"p50 {r['fts5_hybrid_p50_ms']} ms; hybrid top 10 shared with FTS5's "
                  f"{r['hybrid_top10_shared_with_fts5']:.1%}")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

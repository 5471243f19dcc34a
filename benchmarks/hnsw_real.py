"""Self-tuned HNSW on a real index (issue #23): a searchlm index built by `searchlm index` over real documents
(`benchmarks/real_corpus.py`), its vectors in an HNSW built and tuned as `FaissStore` builds one past 100k chunks,
recall@10 against exact search on real queries that are never the tuning queries, and warm search latency through
`Searcher` with the default store and with faiss+tantivy.

    python benchmarks/real_corpus.py /tmp/hnsw-real/corpus
    nice -n 10 searchlm index /tmp/hnsw-real/corpus --name real --home /tmp/hnsw-real/home
    python benchmarks/hnsw_real.py --home /tmp/hnsw-real/home --name real --work /tmp/hnsw-real/work \\
        [--extra-source OTHER_INDEX_DIR ...] [--targets 0.95,0.99] [--out FILE.json]

1. Recall: the index's vectors (and those of `--extra-source` index folders, for a bigger real set; chunks whose
   text hash is already in are left out) in an HNSW (`FaissIndex.build(..., "hnsw")`), tuned by `tune_ef_search`
   per target; queries: judged SciFact, Cranfield, CISI and XQuAD queries (`--per-dataset` each) and the
   questions of benchmarks/manual_qa*_questions.jsonl, encoded by the index's own query encoder. Recall@10 per
   set at the tuned setting (1.0 where the tuner chose exact search) and at the tuned efSearch, with the warm
   one-thread dense p50 of HNSW at that efSearch and of an exact scan. Tuned as `FaissStore` tunes: on
   queries written from the chunks' text (`text_probes`), queries below its `exact_below` searched exactly.
2. Latency through searchlm: a copy of the index folder under `--work`, its FAISS file rebuilt from SQLite by
   `FaissStore` with HNSW_THRESHOLD 0 (so HNSW, tuned at the default target, as past 100k), then moved to
   faiss+tantivy by `index_folder(..., store="faiss+tantivy")` (no re-encoding); warm hybrid and dense p50 (one
   process, `Searcher`, 2 rounds of the queries after one warm-up round) on the original (flat, as searchlm
   builds below 100k) and on both HNSW stores.
Prints JSON lines and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
HERE = Path(__file__).resolve().parent


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def say(row: dict) -> None:
    print(json.dumps(row | {"load": loadavg()}), flush=True)


def index_vectors(folders: list[Path]) -> tuple[np.ndarray, list[str]]:
    """The chunk vectors and texts of searchlm index folders, a text hash seen before left out (no exact
    duplicates)."""
    seen: set[str] = set()
    out, texts = [], []
    for folder in folders:
        con = sqlite3.connect(f"file:{folder / 'index.db'}?mode=ro", uri=True)
        for h, v, t in con.execute("SELECT hash, vector, text FROM chunks WHERE vector IS NOT NULL ORDER BY id"):
            if h not in seen:
                seen.add(h)
                out.append(np.frombuffer(v, dtype=np.float32))
                texts.append(t)
        con.close()
    return np.vstack(out), texts


def query_sets(per: int) -> dict[str, list[str]]:
    from hnsw_tune import dataset_queries

    sets = {name: dataset_queries([name], per) for name in ("scifact", "cranfield", "cisi", "xquad_en")}
    manual = []
    for path in sorted(HERE.glob("manual_qa*_questions.jsonl")):
        manual += [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]
    sets["manual_qa"] = manual
    return sets


def recall_part(args, sets: dict[str, np.ndarray]) -> dict:
    from hnsw_tune import recall, text_tuning_queries

    from searchlm.embed.onnx import OnnxEmbedder
    from searchlm.stores.faiss import EF_STEPS, FaissIndex, tune_ef_search

    x, chunk_texts = index_vectors([args.home / args.name, *args.extra_source])
    probes = text_tuning_queries(chunk_texts, OnnxEmbedder(args.home / args.name / "encoder"))
    ids = np.arange(1, len(x) + 1, dtype=np.int64)
    flat = FaissIndex.build(x.shape[1], [(ids, x)], len(ids), "flat")
    exact = {name: flat.search(q, 10) for name, q in sets.items()}
    del flat
    t0 = time.perf_counter()
    index = FaissIndex.build(x.shape[1], [(ids[i:i + 50_000], x[i:i + 50_000]) for i in range(0, len(x), 50_000)],
                             len(x), "hnsw")
    built = round(time.perf_counter() - t0, 1)
    say({"part": "recall", "vectors": len(x), "hnsw_build_s": built})
    sweep = {name: {ef: round(recall(index, q, exact[name][1], exact[name][0][:, 9], ef), 4) for ef in EF_STEPS}
             for name, q in sets.items()}
    say({"part": "recall", "sweep": sweep})
    rows = []
    for target in (float(t) for t in args.targets.split(",")):
        t0 = time.perf_counter()
        tuned = tune_ef_search(index, target, queries=probes, probes="text")  # as FaissStore tunes
        tune_s = round(time.perf_counter() - t0, 1)
        ef = tuned["ef_search"]
        served = {name: round(recall(index, q, exact[name][1], exact[name][0][:, 9], ef), 4) for name, q in sets.items()}
        lat = latency(index, np.vstack(list(sets.values()))[::5], ef)
        row = {"part": "recall", "vectors": len(x), "target": target, "tuned": tuned, "tune_s": tune_s,
               "recall": served,  # as searches are served: exact mode, or HNSW with far queries searched exactly
               "recall_hnsw_at_ef": {name: sweep[name][ef] for name in sets},
               "dense_p50_ms_hnsw": lat["hnsw"], "dense_p50_ms_exact": lat["exact"]}
        say(row)
        rows.append(row)
    return {"vectors": len(x), "hnsw_build_s": built, "sweep": sweep, "rows": rows}


def latency(index, queries: np.ndarray, ef: int, rounds: int = 3) -> dict[str, float]:
    """Warm one-query, one-thread p50 (ms) of HNSW at `ef` and of an exact scan, interleaved."""
    times: dict[str, list[float]] = {"hnsw": [], "exact": []}
    before = index.exact
    index.threads, index.ef = 1, ef
    for _ in range(rounds):
        for q in queries:
            for kind in times:
                index.exact = kind == "exact"
                t0 = time.perf_counter()
                index.search(q[None, :], 10)
                times[kind].append(time.perf_counter() - t0)
    index.exact = before
    return {kind: round(1000 * statistics.median(ts), 2) for kind, ts in times.items()}


def search_p50(settings, queries: list[str], rounds: int = 2) -> dict:
    """Warm hybrid and dense p50 (ms) through `Searcher`, one round of warm-up first."""
    from searchlm.search.searcher import Searcher

    out = {}
    with Searcher(settings) as searcher:
        for q in queries:  # warm-up: encoder, FAISS pages, keyword index
            searcher.search(q, mode="hybrid", k=10)
        times: dict[str, list[float]] = {"hybrid": [], "dense": []}
        for _ in range(rounds):
            for q in queries:
                for mode in times:
                    t0 = time.perf_counter()
                    searcher.search(q, mode=mode, k=10)
                    times[mode].append(time.perf_counter() - t0)
        out = {f"{mode}_p50_ms": round(1000 * statistics.median(ts), 1) for mode, ts in times.items()}
        vectors = searcher.vectors
        out["vector_index"] = getattr(getattr(vectors, "index", None), "kind", None)
    return out


def latency_part(args, texts: list[str]) -> dict:
    from searchlm.indexing.database import Database
    from searchlm.indexing.indexer import index_folder, rebuild_vectors
    from searchlm.indexing.manifest import DB_FILE, Manifest
    from searchlm.settings import Settings
    from searchlm.stores import faiss as faiss_store

    original = Settings(home=args.home, name=args.name)
    result = {"default_flat": search_p50(original, texts)}
    say({"part": "latency", "store": "faiss (flat, as built below 100k)"} | result["default_flat"])
    home = args.work / "home"
    copy = home / args.name
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(args.home / args.name, copy)
    faiss_store.HNSW_THRESHOLD = 0  # FaissStore builds HNSW, as it does past 100k chunks
    settings = Settings(home=home, name=args.name)
    store = Database(copy / DB_FILE)
    try:
        manifest = Manifest.load(copy)
        t0 = time.perf_counter()
        rebuild_vectors(store, manifest, copy)
        manifest.save(copy, store)
        rebuilt = round(time.perf_counter() - t0, 1)
    finally:
        store.close()
    ann = Manifest.load(copy).ann
    result["default_hnsw"] = search_p50(settings, texts) | {"rebuild_and_tune_s": rebuilt, "ann": ann,
                                                             "line": faiss_store.search_line(ann)}
    say({"part": "latency", "store": "faiss (HNSW, tuned)"} | result["default_hnsw"])
    t0 = time.perf_counter()
    index_folder(Path(Manifest.load(copy).root), settings.with_(store="faiss+tantivy"))
    moved = round(time.perf_counter() - t0, 1)
    result["tantivy_hnsw"] = search_p50(settings.with_(store="faiss+tantivy"), texts) | {"move_s": moved}
    say({"part": "latency", "store": "faiss+tantivy (HNSW, tuned)"} | result["tantivy_hnsw"])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--extra-source", type=Path, action="append", default=[])
    ap.add_argument("--per-dataset", type=int, default=100)
    ap.add_argument("--targets", default="0.95,0.99")
    ap.add_argument("--latency-queries", type=int, default=100, help="texts timed through Searcher (mixed sets)")
    ap.add_argument("--skip", choices=("recall", "latency"), action="append", default=[])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from searchlm.embed.onnx import OnnxEmbedder

    texts = query_sets(args.per_dataset)
    encoder = OnnxEmbedder(args.home / args.name / "encoder")
    sets = {name: np.asarray(encoder.embed(t), dtype=np.float32) for name, t in texts.items()}
    say({"queries": {name: len(t) for name, t in texts.items()}})
    results: dict = {"queries": {name: len(t) for name, t in texts.items()}}
    if "recall" not in args.skip:
        results["recall"] = recall_part(args, sets)
    if "latency" not in args.skip:
        mixed = [t for group in zip(*texts.values()) for t in group][: args.latency_queries]
        results["latency"] = latency_part(args, mixed)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()

"""What an HNSW index's tuned search choice costs and buys (issue #23): on one built index folder, recall@10 of
its dense top 10 against exact search, and warm hybrid / dense latency through `Searcher`, for the tuner's choice
and for fixed alternatives (exact mode, efSearch 3072, 4096, ...), interleaved query by query in one process so
that load hits every setting alike.

    python benchmarks/ann_trade.py --home /tmp/s1m/tantivy --name scale [--settings tuned,exact,3072,4096]
                                   [--queries scifact,cranfield+cisi] [--per-dataset 100] [--out FILE.json]

Recall: each query as `search` embeds it (after its spelling correction), the index's FAISS search at the setting
against an exact scan of the same stored vectors, tombstones excluded; "strict" counts the exact top 10's ids
found, "ties" also counts a hit scoring as high as the exact 10th (as `tune_ef_search` does). Latency: SciFact test
queries (the first query set), warm, k=10, the settings' order rotated from one query to the next, one FAISS
thread as `Searcher` searches. Prints JSON lines, a markdown table and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cold_search import test_queries  # noqa: E402
from hnsw_tune import dataset_queries  # noqa: E402


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def apply(index, setting) -> None:
    """Search `index` at `setting`: "exact" (its stored vectors, exactly) or an efSearch."""
    index.exact = setting == "exact"
    if setting != "exact":
        index.ef = int(setting)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--settings", default="tuned,exact,3072,4096")
    ap.add_argument("--queries", default="scifact,cranfield+cisi",
                    help="query sets, datasets joined by '+'; the first is also the latency set")
    ap.add_argument("--per-dataset", type=int, default=100)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings
    from searchlm.stores.faiss import _exact_top, _stored_vectors

    searcher = Searcher(Settings(home=args.home, name=args.name))
    searcher.warm()
    faiss_store = searcher.vectors  # FaissStore: its FaissIndex and tombstones
    index, tomb = faiss_store.index, faiss_store._tombstones
    ann = dict(searcher.manifest.ann)
    tuned = "exact" if ann.get("mode") == "exact" else str(ann.get("ef_search", index.ef))
    settings = list(dict.fromkeys(tuned if s == "tuned" else s for s in args.settings.split(",")))
    print(json.dumps({"ann": ann, "tuned": tuned, "settings": settings, "vectors": len(index),
                      "tombstones": len(tomb), "load": loadavg()}), flush=True)

    sets = {}
    for spec in args.queries.split(","):
        texts = test_queries(args.per_dataset) if spec == "scifact" else dataset_queries(spec.split("+"),
                                                                                          args.per_dataset)
        fixed = [(fix.corrected if (fix := searcher.correct(x)) else x) for x in texts]
        sets[spec] = (texts, np.vstack([searcher.encoder.embed_query(x) for x in fixed]).astype(np.float32))

    ids = index.ids()
    dead = np.flatnonzero(np.isin(ids, tomb)) if len(tomb) else np.zeros(0, dtype=np.int64)
    vectors = _stored_vectors(index)
    recall: dict = {s: {} for s in settings}
    for spec, (_, q) in sets.items():
        t0 = time.perf_counter()
        exact_s, exact_p = _exact_top(vectors, q, 10, dead)
        exact_ids, kth = ids[exact_p], exact_s[:, -1] - 1e-5
        exact_scan_s = time.perf_counter() - t0
        for s in settings:
            apply(index, s)
            scores, found = index.search(q, 10, excluded_ids=tomb)
            strict = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact_ids)])
            ties = np.mean([np.sum(np.isin(f, e) | ((fs >= t) & (f >= 0))) / 10
                            for f, fs, e, t in zip(found, scores, exact_ids, kth)])
            recall[s][spec] = {"strict": round(float(strict), 4), "ties": round(float(ties), 4)}
        print(json.dumps({"queries": spec, "n": len(q), "exact_batch_s": round(exact_scan_s, 1),
                          "recall": {s: recall[s][spec] for s in settings}, "load": loadavg()}), flush=True)

    texts = next(iter(sets.values()))[0]
    times = {s: {"hybrid": [], "dense": []} for s in settings}
    start_load = loadavg()
    for s in settings:  # untimed: what each setting and mode loads lazily
        apply(index, s)
        for mode in ("hybrid", "dense"):
            searcher.search(texts[0], mode=mode, k=10)
    for i, text in enumerate(texts):
        for j in range(len(settings)):
            s = settings[(i + j) % len(settings)]
            apply(index, s)
            for mode in ("hybrid", "dense"):
                t0 = time.perf_counter()
                searcher.search(text, mode=mode, k=10)
                times[s][mode].append(time.perf_counter() - t0)
    apply(index, tuned)
    searcher.close()
    rows = []
    for s in settings:
        row = {"setting": s, "tuned": s == tuned, "recall": recall[s]}
        for mode, ts in times[s].items():
            ts.sort()
            row[f"{mode}_p50_ms"] = round(1000 * statistics.median(ts), 1)
            row[f"{mode}_p95_ms"] = round(1000 * ts[int(round(0.95 * (len(ts) - 1)))], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    load = f"{start_load} at start, {loadavg()} at end"
    print(f"\n{len(index):,} vectors ({len(tomb):,} tombstones), {len(texts)} timed queries, load {load}\n")
    names = list(sets)
    print("| search | " + " | ".join(f"recall@10 {n} (strict / ties)" for n in names)
          + " | hybrid p50 / p95 ms | dense p50 / p95 ms |")
    print("|---|" + "---|" * (len(names) + 2))
    for r in rows:
        label = ("exact scan" if r["setting"] == "exact" else f"HNSW efSearch {r['setting']}") + (
            " (tuner's choice)" if r["tuned"] else "")
        print(f"| {label} | " + " | ".join(f"{r['recall'][n]['strict']} / {r['recall'][n]['ties']}" for n in names)
              + f" | {r['hybrid_p50_ms']} / {r['hybrid_p95_ms']} | {r['dense_p50_ms']} / {r['dense_p95_ms']} |")
    if args.out:
        args.out.write_text(json.dumps({"ann": ann, "rows": rows, "load": load}, indent=1))


if __name__ == "__main__":
    main()

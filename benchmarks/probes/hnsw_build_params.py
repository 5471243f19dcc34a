"""Would a better-built graph let the tuner keep HNSW at 1M? (issue #23, session 5.) Rebuilds the HNSW graph of a
`scale.py` folder's FAISS file (its live vectors, read from the file) with another M / efConstruction, then runs
`tune_ef_search` on it as `index` would (target 0.95) and measures recall@10 of real queries (SciFact test, Cranfield
+ CISI) against exact search at several efSearch, and the one-thread cost per query.

    python benchmarks/probes/hnsw_build_params.py /tmp/s1m/tantivy/scale M EF_CONSTRUCTION
"""
import json
import sqlite3
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cold_search import test_queries  # noqa: E402
from hnsw_tune import dataset_queries  # noqa: E402

from searchlm.embed.onnx import OnnxEmbedder  # noqa: E402
from searchlm.stores import faiss as F  # noqa: E402


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


folder, m, efc = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
old = F.FaissIndex.load(folder / "vectors.faiss", "hnsw", use_gpu=False)
db = sqlite3.connect(f"file:{folder}/index.db?mode=ro", uri=True)
tomb = np.array([r[0] for r in db.execute("select chunk_id from vector_tombstones")], dtype=np.int64)
ids = old.ids()
alive = np.flatnonzero(~np.isin(ids, tomb))
vectors = F._stored_vectors(old)
inner = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
inner.hnsw.efConstruction = efc
index = F.FaissIndex(faiss.IndexIDMap(inner), "hnsw")
t0 = time.perf_counter()
for lo in range(0, len(alive), 50_000):
    part = alive[lo:lo + 50_000]
    index.add(ids[part], np.asarray(vectors[part]))
print(json.dumps({"M": m, "efConstruction": efc, "vectors": len(index), "build_s": round(time.perf_counter() - t0),
                  "load": load()}), flush=True)
del old, vectors
t0 = time.perf_counter()
tuned = F.tune_ef_search(index, 0.95)
print(json.dumps({"tuned": tuned, "tune_s": round(time.perf_counter() - t0, 1), "load": load()}), flush=True)

encoder = OnnxEmbedder(folder / "encoder")
stored, all_ids = F._stored_vectors(index), index.ids()
for name, texts in (("scifact", test_queries(100)), ("cranfield+cisi", dataset_queries(["cranfield", "cisi"], 100))):
    q = np.vstack([encoder.embed_query(t) for t in texts]).astype(np.float32)
    exact_s, exact_p = F._exact_top(stored, q, 10, np.zeros(0, dtype=np.int64))
    exact_ids = all_ids[exact_p]
    recall = {}
    for ef in (1024, 2048, 3072, 4096):
        index.ef, index.exact, index.threads = ef, False, None
        _, found = index.search(q, 10)
        recall[ef] = round(float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact_ids)])), 4)
    print(json.dumps({"queries": name, "n": len(q), "recall_strict": recall, "load": load()}), flush=True)
    if name == "scifact":
        costs = {}
        for ef in (1024, 2048, 4096):
            index.ef = ef
            costs[ef] = F._costs(index, q[:20], np.zeros(0, dtype=np.int64))
        print(json.dumps({"one_thread_ms": costs, "load": load()}), flush=True)

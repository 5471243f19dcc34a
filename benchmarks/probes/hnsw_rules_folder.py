"""Tuning rules compared on an index folder's own HNSW file (issue #23, session 6): per-query recall@10 as served
(queries whose 10th graph hit is below the floor searched exactly) per efSearch, for 400 text probes of the
folder's chunks and real query sets; then the efSearch each rule picks and the real sets' recall there.
Rules: the lower 95 % bound of all probes ("all"), of the farthest quarter / half of the graph-served probes
("q25", "q50"), and the farthest quarter's mean without a bound ("q25mean").

    python benchmarks/probes/hnsw_rules_folder.py /tmp/s1m/tantivy/scale [--sets scifact,cranfield+cisi,xquad_en,manual_qa]
"""
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hnsw_real import query_sets  # noqa: E402
from hnsw_tune import dataset_queries, loadavg  # noqa: E402

from searchlm.embed.onnx import OnnxEmbedder  # noqa: E402
from searchlm.stores import faiss as F  # noqa: E402

folder = Path(sys.argv[1])
names = (sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--sets" else "scifact,cranfield+cisi,xquad_en,manual_qa").split(",")
index = F.FaissIndex.load(folder / "vectors.faiss", "hnsw", use_gpu=False)
db = sqlite3.connect(f"file:{folder}/index.db?mode=ro", uri=True)
tomb = np.array([r[0] for r in db.execute("select chunk_id from vector_tombstones")], dtype=np.int64)
ids = index._positions_ids()
dead = index._dead_positions(tomb) if len(tomb) else np.zeros(0, dtype=np.int64)
encoder = OnnxEmbedder(folder / "encoder")
texts = {"manual_qa": query_sets(100)["manual_qa"]}
sets = {n: np.asarray(encoder.embed(texts[n] if n in texts else dataset_queries(n.split("+"), 100)), np.float32)
        for n in names}
live = np.setdiff1d(ids, tomb)
from searchlm.indexing.database import Database  # noqa: E402

sets["text"] = F.chunk_text_probes(Database(folder / "index.db", readonly=True), live, encoder, count=400, seed=1)
vectors = F._stored_vectors(index)
exact = {n: F._exact_top(vectors, q, 10, dead) for n, q in sets.items()}
floor = float(np.quantile(exact["text"][0][:, -1], F.EXACT_BELOW_QUANTILE))
index.exact_below, index.threads = floor, None
per = {n: {} for n in sets}
for ef in F.EF_STEPS[5:]:
    index.ef = ef
    for n, q in sets.items():
        s, p = exact[n]
        per[n][ef] = F._recall(index, q, None, ids, ids[p], s[:, -1] - 1e-5, 10, tomb)
    print(json.dumps({"ef": ef, "served": {n: round(float(per[n][ef].mean()), 3) for n in sets}, "load": loadavg()}),
          flush=True)
kth = exact["text"][0][:, -1]
served = kth >= floor
masks = {"all": np.ones(len(kth), bool), "q25": served & (kth <= np.quantile(kth[served], 0.25)),
         "q50": served & (kth <= np.quantile(kth[served], 0.5))}
for target in (0.95, 0.99):
    for rule in ("all", "q25", "q50", "q25mean"):
        mask = masks[rule.replace("mean", "")]
        ok = (lambda h: h.mean() >= target) if rule.endswith("mean") else (lambda h: F._lower_bound(h) >= target)
        if rule != "all":  # the farthest part and all of them
            ok = (lambda o: lambda h, m=mask: o(h[m]) and F._lower_bound(h) >= target)(ok)
        else:
            ok = (lambda o: lambda h, m=mask: o(h[m]))(ok)
        ef = next((ef for ef in per["text"] if ok(per["text"][ef])), None)
        print(json.dumps({"target": target, "rule": rule, "ef": ef, "floor": round(floor, 3),
                          "served": {n: round(float(per[n][ef].mean()), 3) for n in sets} if ef else None}), flush=True)

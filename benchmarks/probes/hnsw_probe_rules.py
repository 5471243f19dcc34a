"""Which rule over text probes picks an efSearch that serves every real query set? (issue #23, session 6.)
On a real index folder's vectors (`hnsw_real.index_vectors`) in an HNSW built as FaissStore builds one, per-query
recall@10 per efSearch (as served: queries whose graph top-1 is below the floor searched exactly) for 400 text
probes and the real query sets of `hnsw_real.query_sets`; then the efSearch each rule picks and the real sets'
served recall there. Rules: "mean" (all probes' lower 95 % bound), "q1" (the probes in the lowest quarter of top-1
cosine above the floor), "half" (the lower half).

    python benchmarks/probes/hnsw_probe_rules.py HOME NAME [--extra-source DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hnsw_real import index_vectors, query_sets  # noqa: E402
from hnsw_tune import loadavg, text_tuning_queries  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("home", type=Path)
    ap.add_argument("name")
    ap.add_argument("--extra-source", type=Path, action="append", default=[])
    ap.add_argument("--probes", type=int, default=400)
    args = ap.parse_args()
    from searchlm.embed.onnx import OnnxEmbedder
    from searchlm.stores import faiss as F

    x, texts = index_vectors([args.home / args.name, *args.extra_source])
    ids = np.arange(1, len(x) + 1, dtype=np.int64)
    encoder = OnnxEmbedder(args.home / args.name / "encoder")
    sets = {name: np.asarray(encoder.embed(t), dtype=np.float32) for name, t in query_sets(100).items()}
    sets["text"] = text_tuning_queries(texts, encoder, count=args.probes, seed=1)
    none = np.zeros(0, dtype=np.int64)
    exact = {n: F._exact_top(x, q, 10, none) for n, q in sets.items()}
    floor = float(np.quantile(exact["text"][0][:, 0], F.EXACT_BELOW_QUANTILE))
    index = F.FaissIndex.build(x.shape[1], [(ids[i:i + 50_000], x[i:i + 50_000]) for i in range(0, len(x), 50_000)],
                               len(x), "hnsw")
    index.exact_below = floor
    per = {n: {} for n in sets}
    for ef in F.EF_STEPS:
        index.ef = ef
        for n, q in sets.items():
            s, p = exact[n]
            per[n][ef] = F._recall(index, q, None, ids, ids[p], s[:, -1] - 1e-5, 10, none)
    top1 = {n: exact[n][0][:, 0] for n in sets}
    print(json.dumps({"vectors": len(x), "floor": round(floor, 3),
                      "top1_quartiles": {n: [round(float(v), 3) for v in np.quantile(t, [0.25, 0.5, 0.75])]
                                         for n, t in top1.items()}, "load": loadavg()}), flush=True)
    t = top1["text"]
    above = t >= floor
    bands = {"mean": np.ones(len(t), dtype=bool),
             "half": above & (t <= np.quantile(t[above], 0.5)),
             "q1": above & (t <= np.quantile(t[above], 0.25))}

    def low(hits):
        return hits.mean() - F.CONFIDENCE_Z * hits.std(ddof=1) / np.sqrt(len(hits))

    for target in (0.95, 0.99):
        for rule, mask in bands.items():
            ef = next((ef for ef in F.EF_STEPS if low(per["text"][ef][mask]) >= target), None)
            served = {n: round(float(per[n][ef].mean()), 3) for n in sets} if ef else None
            print(json.dumps({"target": target, "rule": rule, "probes": int(mask.sum()), "ef": ef,
                              "served_recall": served}), flush=True)


if __name__ == "__main__":
    main()

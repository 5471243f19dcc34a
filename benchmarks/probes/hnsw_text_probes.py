"""Which tuning queries track real ones? (issue #23, third wave session 6.) On a synthetic set made as
`benchmarks/scale.py` makes it (or the real vectors alone, --chunks 0), builds an HNSW graph per efConstruction and
prints, per query kind, the median top-1 cosine and recall@10 against exact search per efSearch:

- real held-out queries (the datasets' own, encoded by the first source's query encoder);
- the tuner's structural probes: midpoints of two live vectors (`probe_queries`) and own vectors moved by noise
  (`moved_queries`, own entry left out);
- text probes: a random window of 6-16 words of a random chunk's text, encoded like a query.

    python benchmarks/probes/hnsw_text_probes.py --source EVAL_CRANFIELD --source EVAL_CISI --chunks 200000 \\
        --queries cranfield+cisi,scifact --efc 80,200 [--cache DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hnsw_tune import dataset_queries, loadavg, synthetic  # noqa: E402

SWEEP = (64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096)


def text_windows(texts: list[str], count: int, rng) -> list[str]:
    out = []
    for i in rng.choice(len(texts), size=count, replace=False):
        words = texts[i].split()
        n = int(rng.integers(6, 17))
        start = int(rng.integers(0, max(1, len(words) - n + 1)))
        out.append(" ".join(words[start:start + n]))
    return out


def _top1(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    best = np.full(len(q), -np.inf, dtype=np.float32)
    for lo in range(0, len(x), 65_536):
        best = np.maximum(best, (q @ x[lo:lo + 65_536].T).max(axis=1))
    return best


def _hits(index, q, own, ids, exact_ids, kth):
    """Hits per query (in the exact top 10 or tied with its 10th; own entry left out) and the graph's top-1."""
    scores, found = index.search(q, 10 + (own is not None))
    hits, top = np.zeros(len(q)), np.zeros(len(q))
    for i in range(len(q)):
        keep = found[i] != (ids[own[i]] if own is not None else -2)
        got, got_s = found[i][keep][:10], scores[i][keep][:10]
        hits[i] = np.sum(np.isin(got, exact_ids[i]) | (got_s >= kth[i]) & (got >= 0))
        top[i] = got_s[0]
    return hits, top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, action="append", required=True)
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--queries", default="scifact")
    ap.add_argument("--per-dataset", type=int, default=100)
    ap.add_argument("--probes", type=int, default=100)
    ap.add_argument("--efc", default="80")
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--cache", type=Path, help="folder for the built graphs (read if there)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import faiss
    from scale import load_sources

    from searchlm.embed.onnx import OnnxEmbedder
    from searchlm.stores import faiss as F

    rows, real = load_sources(args.source)
    x = synthetic(real, args.chunks) if args.chunks else real
    ids = np.arange(1, len(x) + 1, dtype=np.int64)
    encoder = OnnxEmbedder(args.source[0] / "encoder")
    rng = np.random.default_rng(7)
    alive = np.arange(len(x))
    own = np.sort(rng.choice(alive, size=args.probes, replace=False))
    kinds: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for spec in args.queries.split(","):
        kinds[spec] = (np.asarray(encoder.embed(dataset_queries(spec.split("+"), args.per_dataset)), np.float32), None)
    kinds["mid"] = (F.probe_queries(x, alive, args.probes, rng), None)
    kinds["moved"] = (F.moved_queries(x, own, rng), own)
    texts = [r[2] for r in rows]
    kinds["text"] = (np.asarray(encoder.embed(text_windows(texts, args.probes, rng)), np.float32), None)
    exact = {}
    none = np.zeros(0, dtype=np.int64)
    for name, (q, o) in kinds.items():
        s, p = F._exact_top(x, np.ascontiguousarray(q), 10, none, o)
        exact[name] = (ids[p], s[:, -1] - 1e-5, round(float(np.median(s[:, 0])), 3))
    top1 = {name: _top1(x, q) for name, (q, _) in kinds.items()}
    print(json.dumps({"vectors": len(x), "top1_cosine_median": {k: v[2] for k, v in exact.items()},
                      "top1_p5_p25": {k: [round(float(np.quantile(v, f)), 3) for f in (0.05, 0.25)] for k, v in top1.items()},
                      "load": loadavg()}), flush=True)
    floors = {f"p{int(f * 100)}": float(np.quantile(top1["text"], f)) for f in (0.02, 0.05, 0.1)}
    for efc in (int(e) for e in args.efc.split(",")):
        cached = args.cache / f"m{args.m}-efc{efc}-{len(x)}.faiss" if args.cache else None
        t0 = time.perf_counter()
        if cached and cached.is_file():
            index = F.FaissIndex.load(cached, "hnsw", use_gpu=False, mmap=False)
        else:
            inner = faiss.IndexHNSWFlat(x.shape[1], args.m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = efc
            index = F.FaissIndex(faiss.IndexIDMap(inner), "hnsw")
            for lo in range(0, len(x), 50_000):
                index.add(ids[lo:lo + 50_000], x[lo:lo + 50_000])
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                index.save(cached)
        build_s = round(time.perf_counter() - t0)
        index.threads, index.exact = None, False
        sweep, served = {}, {fl: {} for fl in floors}
        for name, (q, o) in kinds.items():
            exact_ids, kth, _ = exact[name]
            sweep[name] = {}
            for fl in floors:
                served[fl][name] = {}
            for ef in SWEEP:
                index.ef = ef
                q = np.ascontiguousarray(q)
                hits, found_s = _hits(index, q, o, ids, exact_ids, kth)
                sweep[name][ef] = round(float(hits.mean() / 10), 3)
                for fl, floor in floors.items():  # queries whose graph top-1 is below the floor searched exactly
                    low = found_s < floor
                    served[fl][name][ef] = [round(float(np.where(low, 10, hits).mean() / 10), 3), round(float(low.mean()), 2)]
        print(json.dumps({"M": args.m, "efConstruction": efc, "build_s": build_s, "sweep": sweep,
                          "load": loadavg()}), flush=True)
        print(json.dumps({"floors": {k: round(v, 3) for k, v in floors.items()}, "served_recall_and_exact_share": served}), flush=True)


if __name__ == "__main__":
    main()

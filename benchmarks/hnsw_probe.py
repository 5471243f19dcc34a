"""Why HNSW recall@10 depends on the synthetic set (issue #12): FAISS HNSW exactly as searchlm builds it (M 32,
efConstruction 80) on session 1's set (noisy copies of 256 SciFact vectors) and on `scale.py`'s (interpolations
between real neighbours plus noise), against exact inner product, with and without 1 % of the ids excluded by
the `IDSelectorNot` selector `FaissStore` uses for HNSW tombstones. Also prints, for the real vectors and each
set, the query top-10 vs 11th cosine gap and the nearest-neighbour cosine of 500 sampled vectors.

    python benchmarks/hnsw_probe.py --source SCIFACT_INDEX [--source INDEX ...] [--n 100000] [--sets old256,new]

The first --source must be the SciFact eval index (its vectors make session 1's set). 100 SciFact test queries
are encoded with the default MiniLM.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cold_search import test_queries
from scale import NOISE, Synthetic, load_sources

D = 384


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, action="append", required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--sets", default="old256,new")
    args = ap.parse_args()
    from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder
    from searchlm.settings import DEFAULT_MODEL

    _, sci = load_sources(args.source[:1])
    _, allv = load_sources(args.source)
    emb = SentenceTransformerEmbedder(DEFAULT_MODEL)
    queries = np.vstack([emb.embed_query(q) for q in test_queries(100)]).astype(np.float32)
    rng = np.random.default_rng(12)
    stats("real vectors (first source)", sci, queries, rng, hnsw=False)
    stats("real vectors (all sources)", allv, queries, rng, hnsw=False)
    if "old256" in args.sets:
        src = sci[:256]
        i = np.arange(args.n) % len(src)
        copy = np.arange(args.n) // len(src)
        v = src[i] + (copy[:, None] > 0) * rng.normal(0, 0.5 / np.sqrt(D), (args.n, D)).astype(np.float32)
        stats("session 1: noisy copies (noise 0.5) of 256 vectors", v / np.linalg.norm(v, axis=1, keepdims=True),
              queries, rng)
    if "new" in args.sets:
        synth = Synthetic(allv)
        i, copy = np.arange(args.n) % len(allv), np.arange(args.n) // len(allv)
        v = np.empty((args.n, D), np.float32)
        for c in np.unique(copy):
            v[copy == c] = synth.make(rng, i[copy == c], int(c))
        stats(f"scale.py: interpolated real neighbours, noise {NOISE}", v, queries, rng)


def stats(name: str, x: np.ndarray, queries: np.ndarray, rng, hnsw: bool = True) -> None:
    import faiss

    flat = faiss.IndexFlatIP(D)
    flat.add(x)
    dist, exact = flat.search(queries, 11)
    nn, _ = flat.search(x[rng.choice(len(x), 500, replace=False)], 2)
    print(f"{name}: n={len(x)} query top-10 vs 11th cosine gap {np.mean(dist[:, 9] - dist[:, 10]):.5f}; "
          f"nearest-neighbour cosine mean {nn[:, 1].mean():.3f} median {np.median(nn[:, 1]):.3f}", flush=True)
    if not hnsw:
        return
    t0 = time.time()
    index = faiss.IndexHNSWFlat(D, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(x)
    built = time.time() - t0
    tomb = rng.choice(len(x), len(x) // 100, replace=False).astype(np.int64)
    gone = set(tomb.tolist())
    _, wide = flat.search(queries, 10 + len(tomb))
    exact_alive = [[j for j in row if j not in gone][:10] for row in wide]
    for ef in (64, 256, 1024):
        _, found = index.search(queries, 10, params=faiss.SearchParametersHNSW(efSearch=ef))
        r = np.mean([len(set(a) & set(b[:10])) / 10 for a, b in zip(found, exact)])
        sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(tomb))
        _, alive = index.search(queries, 10, params=faiss.SearchParametersHNSW(efSearch=ef, sel=sel))
        rt = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(alive, exact_alive)])
        print(f"   HNSW built in {built:.0f} s, efSearch {ef}: recall@10 {r:.3f}; with 1 % tombstones {rt:.3f}",
              flush=True)


if __name__ == "__main__":
    main()

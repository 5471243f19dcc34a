"""Kinds of HNSW tuning query against real queries (issue #23): for each, the median top-1 / 10th cosine and gap,
and recall@10 against exact search at each efSearch, on a saved HNSW file over real or synthetic vectors.

    python benchmarks/probes/hnsw_probe_kinds.py --source EVAL_CRANFIELD --source EVAL_CISI --chunks 200000 \
        --index-file F.faiss [--build-m 64 --build-efc 80] --queries cranfield+cisi,scifact,xquad_en \
        --kinds iso0.4,mix2,mix3,mix4,mix3iso0.5,gauss --efs 64,256,768,2048,4096

Kinds: isoC = a stored vector moved by isotropic noise to cosine C (the first tuner; its own entry is not left
out here); mixK = the normalized sum of K random stored vectors; mixKisoS = that plus isotropic noise of norm S;
gauss = a sample of a Gaussian fitted to 5,000 stored vectors. `--build-m`: build the file with this M first.
"""
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hnsw_tune import dataset_queries, synthetic, loadavg
from scale import load_sources
from searchlm.embed.onnx import OnnxEmbedder
from searchlm.stores.faiss import FaissIndex, _exact_top, EF_STEPS

ap = argparse.ArgumentParser()
ap.add_argument("--source", type=Path, action="append")
ap.add_argument("--chunks", type=int, default=200000)
ap.add_argument("--index-file", type=Path)
ap.add_argument("--queries", default="cranfield+cisi,scifact")
ap.add_argument("--kinds", default="iso0.4,mix2,mix3,mix4,mix3iso")
ap.add_argument("--build-m", type=int, default=0)
ap.add_argument("--build-efc", type=int, default=80)
ap.add_argument("--efs", default="16,32,64,128,256,512,1024,2048,4096")
a = ap.parse_args()
_, real = load_sources(a.source)
x = synthetic(real, a.chunks) if a.chunks else real
n = len(x)
if a.build_m and not a.index_file.exists():
    import faiss
    t0 = time.time()
    inner = faiss.IndexHNSWFlat(x.shape[1], a.build_m, faiss.METRIC_INNER_PRODUCT); inner.hnsw.efConstruction = a.build_efc
    idx = faiss.IndexIDMap(inner)
    for i in range(0, n, 50000):
        idx.add_with_ids(np.ascontiguousarray(x[i:i+50000]), np.arange(i+1, min(i+50000, n)+1).astype(np.int64))
    faiss.write_index(idx, str(a.index_file)); print(json.dumps({"built_s": round(time.time()-t0), "M": a.build_m, "efC": a.build_efc, "load": loadavg()}), flush=True)
index = FaissIndex.load(a.index_file, "hnsw", use_gpu=False, mmap=False)
enc = OnnxEmbedder(a.source[0] / "encoder")
sets = {s: np.asarray(enc.embed(dataset_queries(s.split("+"), 100)), dtype=np.float32) for s in a.queries.split(",")}
rng = np.random.default_rng(1)
def unit(v): return v / np.linalg.norm(v, axis=1, keepdims=True)
for kind in a.kinds.split(","):
    m = 200
    pos = rng.choice(n, size=m, replace=False)
    if kind.startswith("iso"):
        c = float(kind[3:]); q = x[pos].copy(); noise = rng.normal(size=q.shape).astype(np.float32)
        noise *= np.sqrt(1 / c**2 - 1) / np.linalg.norm(noise, axis=1, keepdims=True); q = unit(q + noise)
    elif kind.startswith("mix"):
        k = int(kind[3]); q = x[rng.choice(n, size=(m, k))].sum(1)
        if "iso" in kind:
            sc = float(kind.split("iso")[1] or 0.5)
            q = unit(q); noise = rng.normal(size=q.shape).astype(np.float32); noise *= sc / np.linalg.norm(noise, axis=1, keepdims=True); q = q + noise
        q = unit(q)
    elif kind.startswith("gauss"):
        sub = x[rng.choice(n, size=5000, replace=False)]; mu = sub.mean(0); L = np.linalg.cholesky(np.cov(sub.T) + 1e-6 * np.eye(x.shape[1]))
        q = unit(mu + rng.normal(size=(m, x.shape[1])).astype(np.float32) @ L.T)
    sets["probe:" + kind] = q.astype(np.float32)
ids = np.arange(1, n + 1)
out = {}
for name, q in sets.items():
    s, p = _exact_top(x, q, 10, np.zeros(0, dtype=np.int64), None)
    kth = s[:, 9] - 1e-5
    row = {"top1_med": round(float(np.median(s[:, 0])), 3), "top10_med": round(float(np.median(s[:, 9])), 3), "gap_med": round(float(np.median(s[:, 0] - s[:, 9])), 3)}
    for ef in map(int, a.efs.split(",")):
        index.ef = ef
        sc, f = index.search(q, 10)
        row[ef] = round(float(np.mean([np.mean(np.isin(fi, ids[pi]) | (si >= ki)) for fi, si, pi, ki in zip(f, sc, p, kth)])), 3)
    print(json.dumps({name: row, "load": loadavg()}), flush=True)

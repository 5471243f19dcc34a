"""FAISS HNSW recall@10 (against the flat index over the same chunks) and CPU per query at several efSearch values,
tombstones excluded: `python benchmarks/probes/efsweep.py WORKDIR 1024,2048,3072 [QUERIES]`, WORKDIR being
`benchmarks/scale.py --workdir` after its flat and hnsw builds."""
import sqlite3, sys, time
from pathlib import Path
import faiss
import numpy as np
sys.path.insert(0, "/work/main/benchmarks"); sys.path.insert(0, "/work/main")
from cold_search import test_queries
from searchlm.embed.onnx import OnnxEmbedder
W = Path(sys.argv[1])
enc = OnnxEmbedder(W / "hnsw/scale/encoder")
Q = np.vstack([enc.embed_query(q) for q in test_queries(int(sys.argv[3]) if len(sys.argv) > 3 else 30)]).astype("float32")
h = faiss.read_index(str(W / "hnsw/scale/vectors.faiss"), faiss.IO_FLAG_MMAP_IFC)
f = faiss.read_index(str(W / "flat/scale/vectors.faiss"), faiss.IO_FLAG_MMAP_IFC)
c = sqlite3.connect(f"file:{W}/hnsw/scale/index.db?mode=ro", uri=True)
tomb = np.array([r[0] for r in c.execute("select chunk_id from vector_tombstones")], dtype=np.int64)
_, E = f.search(Q, 10)
print("tombstones", len(tomb), "hnsw ntotal", h.ntotal, "flat", f.ntotal, flush=True)
for ef in [int(x) for x in sys.argv[2].split(",")]:
    sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(tomb))
    p = faiss.SearchParametersHNSW(efSearch=ef, sel=sel)
    faiss.omp_set_num_threads(1)
    t0 = time.process_time(); _, I = h.search(Q, 10, params=p); cpu = (time.process_time() - t0) / len(Q)
    print(f"efSearch {ef}: recall@10 {np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, E)]):.3f}, {1000*cpu:.1f} ms CPU/query", flush=True)

import sqlite3
import time

import faiss
import numpy as np

Q = np.load("/tmp/s3-12/q100.npy")[:30]
h = faiss.read_index("/tmp/s3-12/scale/hnsw/scale/vectors.faiss", faiss.IO_FLAG_MMAP_IFC)
f = faiss.read_index("/tmp/s3-12/scale/flat/scale/vectors.faiss", faiss.IO_FLAG_MMAP_IFC)
c = sqlite3.connect("file:/tmp/s3-12/scale/hnsw/scale/index.db?mode=ro", uri=True)
tomb = np.array([r[0] for r in c.execute("select chunk_id from vector_tombstones")] if c.execute("select name from sqlite_master where name='vector_tombstones'").fetchone() else [], dtype=np.int64)
_, E = f.search(Q, 10)
print("tombstones", len(tomb), "hnsw ntotal", h.ntotal, "flat", f.ntotal, flush=True)
for ef in (256, 512, 1024):
    sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(tomb)) if len(tomb) else None
    p = faiss.SearchParametersHNSW(efSearch=ef, sel=sel) if sel else faiss.SearchParametersHNSW(efSearch=ef)
    t0 = time.process_time(); _, I = h.search(Q, 10, params=p); cpu = (time.process_time() - t0) / len(Q)
    print(f"efSearch {ef}: chunk-level recall@10 {np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, E)]):.3f}, {1000*cpu:.1f} ms CPU/query", flush=True)

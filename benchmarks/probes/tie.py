import json
import sqlite3

import numpy as np

with open("/tmp/s3-12/scale/results-1000000.json") as f:
    r = json.load(f)
Q = np.load("/tmp/s3-12/q100.npy")[:30]
c = sqlite3.connect("file:/tmp/s3-12/scale/hnsw/scale/index.db?mode=ro", uri=True)
def vec(i): return np.frombuffer(c.execute("select vector from chunks where id=?", (i,)).fetchone()[0], dtype=np.float32)
tol, gaps, rec = [], [], []
for q, f, h in zip(Q, r["flat"]["top10"], r["hnsw"]["top10"]):
    fs = sorted((float(vec(i) @ q) for i in f), reverse=True); hs = [float(vec(i) @ q) for i in h]
    tol.append(np.mean([s >= fs[-1] - 1e-4 for s in hs])); gaps.append(fs[0] - fs[-1]); rec.append(len(set(f) & set(h)) / 10)
print(f"recall {np.mean(rec):.3f}; hnsw hits scoring >= exact 10th (-1e-4): {np.mean(tol):.3f}; exact top1-top10 spread {np.mean(gaps):.4f}")

"""Query-side adaptation probe (issue #25): can the query vectors alone be fitted to a folder, leaving the
documents' vectors as they are (no re-encoding)? Over an index `searchlm eval` built (HOME/eval-DATASET), dense
nDCG@10 of the dataset's judged queries (judgments only to score) with the query vector as it is, centred on the
passages' mean vector (queries alone, or queries and passages), and through a 384x384 linear map trained on the
documents' titles as pseudo-queries (InfoNCE against every chunk, held to the identity by LAMBDA; 80 % train, 20 %
held out: the held-out title MRR is what a label-free gate would see).

    python benchmarks/probes/query_adapter.py DATASET HOME     # DATASET: cisi, cranfield, scifact
    python benchmarks/probes/query_adapter.py DATASET HOME --prf   # instead: pseudo-relevance feedback (Rocchio),
                                                                   # the query moved toward its own top-k chunks
"""
import sqlite3, json, numpy as np, sys, math, torch
from pathlib import Path
from searchlm.index import Index
torch.manual_seed(0)
ds, home = sys.argv[1], sys.argv[2]; name = f"eval-{ds}"
con = sqlite3.connect(f"{home}/{name}/index.db")
rows = con.execute("select c.id, d.path, c.vector from chunks c join documents d on d.id=c.doc_id").fetchall()
docid = np.array([p.rsplit(".",1)[0] for _, p, _ in rows])
V = np.stack([np.frombuffer(v, dtype=np.float32) for *_, v in rows]); V /= np.linalg.norm(V, axis=1, keepdims=True)
D = Path(f"/work/shared/datasets/{ds}")
corpus = {j["_id"]: j for j in map(json.loads, open(D/"corpus.jsonl"))}
queries = {j["_id"]: j["text"] for j in map(json.loads, open(D/"queries.jsonl"))}
qrels = {}
for line in list(open(D/"qrels/test.tsv"))[1:]:
    q, d, s = line.split("\t"); qrels.setdefault(q, {})[d] = int(s)
enc = Index(name, home=home).searcher.encoder
def ndcg(Q):
    S = Q @ V.T; out = []
    uniq = sorted(set(docid)); idx = {d:i for i,d in enumerate(uniq)}
    for qi, qid in enumerate(qids):
        best = {}
        for ci in np.argsort(-S[qi])[:200]:
            d = docid[ci]
            if d not in best: best[d] = S[qi, ci]
        ranked = sorted(best, key=lambda d: -best[d])[:10]
        rel = qrels[qid]
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
        ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(rel.values(), reverse=True)[:10]))
        out.append(dcg / ideal if ideal else 0)
    return float(np.mean(out))
qids = [q for q in qrels if q in queries]
Qr = np.asarray(enc.embed_queries([queries[q] for q in qids]) if hasattr(enc, "embed_queries") else np.stack([enc.embed_query(queries[q]) for q in qids]), dtype=np.float32)
print("dense base", round(ndcg(Qr), 4), flush=True)
if "--prf" in sys.argv:
    for k in (3, 5):
        for beta in (0.3, 0.6, 1.0):
            top = np.argsort(-(Qr @ V.T), axis=1)[:, :k]
            Qp = Qr + beta * V[top].mean(1); Qp /= np.linalg.norm(Qp, axis=1, keepdims=True)
            print(f"rocchio k={k} beta={beta}", round(ndcg(Qp), 4), flush=True)
    sys.exit()
mu = V.mean(0); Qc = Qr - mu; Qc /= np.linalg.norm(Qc, axis=1, keepdims=True)
Vc = V - mu; Vc /= np.linalg.norm(Vc, axis=1, keepdims=True)
V0 = V; V = Vc; print("both centered", round(ndcg(Qc), 4)); V = V0
print("query centered only", round(ndcg(Qc), 4), flush=True)
titles = [(d, c["title"]) for d, c in corpus.items() if c["title"].strip() and d in set(docid)]
rng = np.random.default_rng(0); rng.shuffle(titles)
T = np.stack([enc.embed_query(t) for _, t in titles]).astype(np.float32)
# positives: for each title, the chunk of its doc with the highest base score
pos = []
for i, (d, _) in enumerate(titles):
    cs = np.flatnonzero(docid == d); pos.append(cs[np.argmax(V[cs] @ T[i])])
pos = np.array(pos); n = len(titles); split = int(n * 0.8)
Vt = torch.tensor(V); Tt = torch.tensor(T); P = torch.tensor(pos)
def mrr(W, sl):
    q = torch.nn.functional.normalize(Tt[sl] @ W.T, dim=1); s = q @ Vt.T
    r = (s > s[torch.arange(len(q)), P[sl]].unsqueeze(1)).sum(1) + 1
    return float((1.0 / r).mean())
for lam in (10.0, 100.0):
  for lr in (1e-3,):
    W = torch.eye(V.shape[1], requires_grad=True); opt = torch.optim.Adam([W], lr=lr)
    for epoch in range(30):
        perm = torch.randperm(split)
        for b in range(0, split, 64):
            ix = perm[b:b+64]
            q = torch.nn.functional.normalize(Tt[ix] @ W.T, dim=1)
            loss = torch.nn.functional.cross_entropy(q @ Vt.T / 0.05, P[ix]) + lam * ((W - torch.eye(V.shape[1]))**2).sum() / V.shape[1]
            opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        Wn = W.detach().numpy(); Qa = Qr @ Wn.T; Qa /= np.linalg.norm(Qa, axis=1, keepdims=True)
        print(f"lam {lam} lr {lr}: held-out title MRR {mrr(torch.eye(V.shape[1]), slice(split,None)):.3f} -> {mrr(W.detach(), slice(split,None)):.3f}; real-query dense nDCG {ndcg(Qa):.4f}", flush=True)

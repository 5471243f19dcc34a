"""Fusion tuning on a BEIR dataset, offline: fetch each query's keyword and dense chunk scores once from the
eval index, then score many fusion / document-aggregation variants without searching again.

    python benchmarks/eval_tune.py /work/shared/datasets/scifact --split train --home /tmp/searchlm-eval

Prints nDCG@10 / R@100 / MRR@10 per variant. The variants mirror what `Searcher.search` can do, so a winner here
becomes a default there (and is then confirmed with `searchlm eval`).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from searchlm.evaluate import doc_id_of, ensure_eval_index, load_beir, score_run  # noqa: E402
from searchlm.stores.query import fts_query  # noqa: E402
from searchlm.settings import Settings  # noqa: E402


def with_phrases(text: str) -> str:
    """fts_query plus each pair of adjacent content words as a phrase (a sequential-dependence flavour)."""
    import re

    from searchlm.stores.query import STOPWORDS

    base = fts_query(text)
    words = [w.lower() for w in re.findall(r"\w+", text)]
    pairs = [f'"{a} {b}"' for a, b in zip(words, words[1:]) if a not in STOPWORDS and b not in STOPWORDS]
    return " OR ".join([base] + list(dict.fromkeys(pairs))) if base and pairs else base


def collect(dataset_dir: Path, split: str, home: Path, depth: int, limit: int | None, bm25_weights=(2.0, 1.0, 1.0),
            phrases: bool = False):
    from searchlm.search.searcher import Searcher

    ds = load_beir(dataset_dir, split)
    target = ensure_eval_index(ds, Settings(home=home))
    s = Searcher(target)
    rows = s.store.conn.execute("SELECT c.id, d.path, c.ordinal FROM chunks c JOIN documents d ON d.id=c.doc_id").fetchall()
    chunk_doc = {cid: doc_id_of(p) for cid, p, _ in rows}
    ordinal = {cid: o for cid, _, o in rows}
    qids = sorted(ds.queries, key=lambda q: int(q) if q.isdigit() else q)[: limit or None]
    t0 = time.perf_counter()
    qvec = s.encoder.embed([ds.queries[q] for q in qids])
    ids, vecs = zip(*s.store.iter_vectors())
    ids, vecs = np.concatenate(ids), np.vstack(vecs)
    # Per-document extras: the centroid of its chunk vectors and its first chunk.
    docs = sorted(set(chunk_doc.values()))
    row_of = {d: i for i, d in enumerate(docs)}
    centroid = np.zeros((len(docs), vecs.shape[1]), dtype=np.float32)
    first = np.zeros_like(centroid)
    for cid, v in zip(ids, vecs):
        centroid[row_of[chunk_doc[int(cid)]]] += v
        if ordinal[int(cid)] == 0:
            first[row_of[chunk_doc[int(cid)]]] = v
    centroid /= np.maximum(np.linalg.norm(centroid, axis=1, keepdims=True), 1e-9)
    wt, wh, wx = bm25_weights
    sql = (f"SELECT rowid, -bm25(chunks_fts, {wt}, {wh}, {wx}) FROM chunks_fts WHERE chunks_fts MATCH ? "
           f"ORDER BY bm25(chunks_fts, {wt}, {wh}, {wx}) LIMIT ?")
    pos = {int(i): j for j, i in enumerate(ids)}
    data = {}
    for n, q in enumerate(qids):
        fq = with_phrases(ds.queries[q]) if phrases else fts_query(ds.queries[q])
        kw = dict(s.store.conn.execute(sql, (fq, depth)).fetchall()) if fq else {}
        sims = vecs @ qvec[n]
        top = np.argsort(-sims)[:depth]
        dense = {int(ids[i]): float(sims[i]) for i in top}
        extra = {"centroid": dict(zip(docs, (centroid @ qvec[n]).tolist())), "first": dict(zip(docs, (first @ qvec[n]).tolist()))}
        # Exact scores for the other list's candidates: BM25 of dense-only chunks (0 when no term matches) and
        # the dense similarity of keyword-only chunks.
        only_dense = [c for c in dense if c not in kw]
        kw_fill = dict(kw)
        if fq and only_dense:
            marks = ",".join("?" * len(only_dense))
            kw_fill.update(dict(s.store.conn.execute(
                f"SELECT rowid, -bm25(chunks_fts, {wt}, {wh}, {wx}) FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN ({marks})",
                (fq, *only_dense)).fetchall()))
        for c in only_dense:
            kw_fill.setdefault(c, 0.0)
        dense_fill = dict(dense)
        for c in kw:
            dense_fill.setdefault(c, float(sims[pos[c]]))
        extra["kw_fill"], extra["dense_fill"] = kw_fill, dense_fill
        data[q] = (kw, dense, extra)
    print(f"collected {len(qids)} queries in {time.perf_counter() - t0:.1f}s; {len(ids)} chunks", flush=True)
    return ds, qids, data, chunk_doc, ordinal


def minmax(d):
    if not d:
        return {}
    lo, hi = min(d.values()), max(d.values())
    return {k: (v - lo) / (hi - lo) if hi > lo else 1.0 for k, v in d.items()}


def zscore(d):
    if not d:
        return {}
    v = np.array(list(d.values()))
    mu, sd = v.mean(), v.std() or 1.0
    return {k: (x - mu) / sd for k, x in d.items()}


def rrf(d, k=60):
    return {c: 1.0 / (k + r) for r, c in enumerate(sorted(d, key=d.get, reverse=True), start=1)}


def doc_max(d, chunk_doc):
    out = {}
    for c, v in d.items():
        doc = chunk_doc[c]
        if doc not in out or v > out[doc]:
            out[doc] = v
    return out


def fuse(kw, dense, w, norm):
    k, dn = norm(kw), norm(dense)
    return {i: (1 - w) * k.get(i, min(k.values(), default=0) if norm is zscore else 0.0) + w * dn.get(i, min(dn.values(), default=0) if norm is zscore else 0.0) for i in k.keys() | dn.keys()}


def evaluate_variant(ds, qids, ranked_docs):
    run = {q: {d: float(len(r) - i) for i, d in enumerate(r[:100])} for q, r in ranked_docs.items()}
    per = score_run({q: ds.qrels[q] for q in qids}, run)
    m = lambda key: sum(v[key] for v in per.values()) / len(per)  # noqa: E731
    return m("ndcg@10"), m("recall@100"), m("mrr@10")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--home", type=Path, default=Path("/tmp/searchlm-eval"))
    ap.add_argument("--depth", type=int, default=500)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--bm25-weights", default="2,1,1", help="FTS5 column weights: title, heading, text")
    ap.add_argument("--only", default="", help="comma-separated variant groups: base,agg,fill,windows")
    ap.add_argument("--phrases", action="store_true", help="add adjacent word pairs as FTS5 phrases")
    ap.add_argument("--windows", type=Path, help="npz of sentence-window vectors (ids, wdoc, vecs) for 'windows'")
    a = ap.parse_args()
    weights = tuple(float(x) for x in a.bm25_weights.split(","))
    ds, qids, data, chunk_doc, _ = collect(a.dataset, a.split, a.home, a.depth, a.limit, weights, a.phrases)
    groups = set(filter(None, a.only.split(","))) or {"base", "agg"}

    def report(label, fn):
        ranked = {}
        for q in qids:
            wants_extra = "ex" in fn.__code__.co_varnames[: fn.__code__.co_argcount]
            scores = fn(*data[q]) if wants_extra else fn(*data[q][:2])
            ranked[q] = sorted(scores, key=scores.get, reverse=True)
        n, r, m = evaluate_variant(ds, qids, ranked)
        print(f"{label:<44} nDCG@10 {n:.4f}  R@100 {r:.4f}  MRR@10 {m:.4f}", flush=True)

    report("keyword (doc max)", lambda kw, dn: doc_max(kw, chunk_doc))
    report("dense (doc max)", lambda kw, dn: doc_max(dn, chunk_doc))
    if "windows" in groups and a.windows:
        from searchlm.search.searcher import Searcher  # noqa: F401  (encoder for the queries)

        z = np.load(a.windows)
        wids, wdoc, wvecs = [str(x) for x in z["ids"]], z["wdoc"], z["vecs"]
        target = ensure_eval_index(ds, Settings(home=a.home))
        enc = Searcher(target).encoder
        qv = enc.embed([ds.queries[q] for q in qids])
        win_best = {}
        for n, q in enumerate(qids):
            sims = wvecs @ qv[n]
            best = np.full(len(wids), -1.0, dtype=np.float32)
            np.maximum.at(best, wdoc, sims)
            top = np.argsort(-best)[:200]
            win_best[q] = {wids[i]: float(best[i]) for i in top}
        for q in qids:
            data[q][2]["win"] = win_best[q]
        report("dense best window", lambda kw, dn, ex: ex["win"])
        for a_ in (0.3, 0.5, 0.7):
            def mix(dn, ex, a_=a_):
                dm = doc_max(ex["dense_fill"], chunk_doc)
                lo = min(ex["win"].values())
                return {d: a_ * ex["win"].get(d, lo) + (1 - a_) * v for d, v in dm.items()}
            report(f"dense window*{a_} + chunk max", lambda kw, dn, ex, mix=mix: mix(dn, ex))
            for w in (0.5, 0.6):
                report(f"fill doc minmax w={w} kw + dense(window*{a_} + chunk)",
                       lambda kw, dn, ex, mix=mix, w=w: fuse(doc_max(ex["kw_fill"], chunk_doc), mix(dn, ex), w, minmax))
    if "docagg" in groups:
        def agg(d, how):
            per = {}
            for c, v in d.items():
                per.setdefault(chunk_doc[c], []).append(v)
            if how == "max":
                return {k: max(v) for k, v in per.items()}
            if how == "sum":
                return {k: sum(v) for k, v in per.items()}
            return {k: max(v) + how * (sum(v) - max(v)) for k, v in per.items()}  # max + share of the rest

        for kh in ("max", "sum", 0.3):
            report(f"keyword agg {kh}", lambda kw, dn, ex, kh=kh: agg(ex["kw_fill"], kh))
            for dh in ("max", 0.1, 0.3):
                for w in (0.5, 0.6):
                    report(f"fill doc minmax w={w} kw {kh} dense {dh}",
                           lambda kw, dn, ex, kh=kh, dh=dh, w=w: fuse(agg(ex["kw_fill"], kh), agg(ex["dense_fill"], dh), w, minmax))
    if "fill" in groups:
        for w in (0.3, 0.4, 0.5, 0.6):
            for norm in (minmax, zscore):
                report(f"fill chunk {norm.__name__} w={w} -> doc max",
                       lambda kw, dn, ex, w=w, norm=norm: doc_max(fuse(ex["kw_fill"], ex["dense_fill"], w, norm), chunk_doc))
                report(f"fill doc-level {norm.__name__} w={w}",
                       lambda kw, dn, ex, w=w, norm=norm: fuse(doc_max(ex["kw_fill"], chunk_doc), doc_max(ex["dense_fill"], chunk_doc), w, norm))
    if "agg" in groups:
        report("dense centroid", lambda kw, dn, ex: ex["centroid"])
        report("dense first chunk", lambda kw, dn, ex: ex["first"])

        def dense_mix(dn, ex, a, extra_key):
            dm = doc_max(dn, chunk_doc)
            return {d: a * v + (1 - a) * ex[extra_key][d] for d, v in dm.items()}

        for key in ("centroid", "first"):
            for a_ in (0.5, 0.7):
                report(f"dense max*{a_} + {key}", lambda kw, dn, ex, a_=a_, key=key: dense_mix(dn, ex, a_, key))
                for w in (0.4, 0.5):
                    for norm in (minmax, zscore):
                        report(f"doc {norm.__name__} w={w} kw + dense(max*{a_}+{key})",
                               lambda kw, dn, ex, a_=a_, key=key, w=w, norm=norm: fuse(doc_max(kw, chunk_doc), dense_mix(dn, ex, a_, key), w, norm))
    if "base" not in groups:
        return
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        report(f"chunk minmax w={w} -> doc max", lambda kw, dn, w=w: doc_max(fuse(kw, dn, w, minmax), chunk_doc))
        report(f"doc-level minmax w={w}", lambda kw, dn, w=w: fuse(doc_max(kw, chunk_doc), doc_max(dn, chunk_doc), w, minmax))
        report(f"doc-level zscore w={w}", lambda kw, dn, w=w: fuse(doc_max(kw, chunk_doc), doc_max(dn, chunk_doc), w, zscore))
    report("chunk rrf -> doc max", lambda kw, dn: doc_max(fuse(kw, dn, 0.5, rrf), chunk_doc))
    report("doc-level rrf", lambda kw, dn: fuse(doc_max(kw, chunk_doc), doc_max(dn, chunk_doc), 0.5, rrf))


if __name__ == "__main__":
    main()

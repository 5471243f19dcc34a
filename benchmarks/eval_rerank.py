"""What a reranker adds and costs: score the top `--depth` documents of the default search with it once (timed,
cached in the eval index), then sweep the blend weight offline.

    python benchmarks/eval_rerank.py /work/shared/datasets/scifact --split train --limit 200 --rerank lm
    python benchmarks/eval_rerank.py ../shared/datasets/scifact --split test --rerank lm:FOLDER    # a `searchlm tune` model

Prints wall and CPU seconds per query for uncached scoring (CPU time is the honest figure on a shared machine:
wall time there includes waiting for other jobs), and nDCG@10 / MRR@10 per blend weight (0 = retrieval alone,
1 = reranker alone). The first N judged queries are used (sorted by id), so runs are comparable.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from searchlm.evaluate import EVAL_DEPTH, natural_order, doc_id_of, ensure_eval_index, load_beir, score_run  # noqa: E402
from searchlm.rerank import load_reranker, rerank_hits  # noqa: E402
from searchlm.search.searcher import Searcher, SearchOptions  # noqa: E402
from searchlm.settings import Settings  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--home", type=Path, default=Path("/tmp/searchlm-eval"))
    ap.add_argument("--rerank", default="lm")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--passage-tokens", type=int)
    ap.add_argument("--prompt")
    a = ap.parse_args()

    ds = load_beir(a.dataset, a.split)
    target = ensure_eval_index(ds, Settings(home=a.home))
    searcher = Searcher(target)
    t0 = time.perf_counter()
    reranker = load_reranker(a.rerank, target)
    if a.passage_tokens or a.prompt:  # LM knobs for tuning; they change the cache key too
        from searchlm.rerank.lm import _prompt_tag

        reranker.passage_tokens = a.passage_tokens or reranker.passage_tokens
        reranker.prompt = (a.prompt or reranker.prompt).replace("\\n", "\n")
        base = reranker.key.split(":")[1]
        reranker.key = f"lm:{base}:window{reranker.passage_tokens}:{_prompt_tag(reranker.prompt)}"
    print(f"loaded {reranker.key} in {time.perf_counter() - t0:.1f}s", flush=True)
    qids = sorted(ds.queries, key=natural_order)[a.offset :][: a.limit or None]
    options = SearchOptions(k=EVAL_DEPTH, group_by_document=True)
    base_hits, seconds, cpu, fresh = {}, [], [], 0
    for n, q in enumerate(qids, start=1):
        hits = searcher.search(ds.queries[q], options).hits
        base_hits[q] = hits
        t, c = time.perf_counter(), time.process_time()
        before = _count(searcher, reranker.key)
        rerank_hits(reranker, ds.queries[q], copy.deepcopy(hits), a.depth, searcher.store, weight=0.5)
        if _count(searcher, reranker.key) > before:
            seconds.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            fresh += 1
        if n % 20 == 0:
            avg = sum(seconds) / len(seconds) if seconds else 0.0
            print(f"  {n}/{len(qids)} queries, {avg:.2f}s per uncached query", flush=True)
    if seconds:
        print(f"uncached: {fresh} queries, wall {sum(seconds) / len(seconds):.2f} s/query "
              f"(median {sorted(seconds)[len(seconds) // 2]:.2f}), CPU {sum(cpu) / len(cpu):.2f} s/query "
              f"(all threads) for {a.depth} candidates", flush=True)
    qrels = {q: ds.qrels[q] for q in qids}
    for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0):
        run = {}
        for q in qids:
            hits = rerank_hits(reranker, ds.queries[q], copy.deepcopy(base_hits[q]), a.depth, searcher.store, weight=w)
            ranked = list(dict.fromkeys(doc_id_of(h.path) for h in hits))
            run[q] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)}
        per = score_run(qrels, run)
        nd = sum(v["ndcg@10"] for v in per.values()) / len(per)
        mrr = sum(v["mrr@10"] for v in per.values()) / len(per)
        print(f"weight {w:.1f}: nDCG@10 {nd:.4f}  MRR@10 {mrr:.4f}  ({len(qids)} queries)", flush=True)
    searcher.close()


def _count(searcher, key: str) -> int:
    return searcher.store.conn.execute("SELECT count(*) FROM rerank_cache WHERE model = ?", (key,)).fetchone()[0]


if __name__ == "__main__":
    main()

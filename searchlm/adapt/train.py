"""Fine-tune the sentence-transformers encoder on pseudo-queries, as GPL does (Wang et al. 2022), within a deadline.

Each example is (query, its passage, a hard negative, the teacher's margin between them). The loss adds

- MultipleNegativesRankingLoss: the query's passage against every other passage of the batch and every hard
  negative (cosine x 20, cross-entropy), the in-batch negatives that `benchmarks/finetune_encoder.py` used;
- MarginMSE: the student's dot-product margin (passage - negative) regressed on the teacher's margin (the current
  hybrid search's fused scores), which tells a false negative (a small margin) from a true one.

The embeddings are computed once per batch for both losses. Training stops at the deadline, after whole steps.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

SCALE = 20.0  # cosine x 20, as MultipleNegativesRankingLoss
MARGIN_WEIGHT = 1.0
TRAIN_MAX_TOKENS = 128  # passages are cut here while training (a step costs in proportion); indexing reads 256
LR = 2e-5
FREEZE_LAYERS = 0  # the token embeddings and this many lower transformer layers stay as they were


def fine_tune(base: str, examples: list[tuple[str, str, str, float]], out: Path, deadline: float,
              epochs: int = 1, batch: int = 16, lr: float | None = None, seed: int = 0, progress=None,
              device: str = "cpu", max_steps: int | None = None, freeze_layers: int | None = None) -> dict:
    """Train a copy of the sentence-transformers model `base` on `examples` until `deadline`, `epochs` passes
    or `max_steps` steps, and save it to `out` (atomically). `freeze_layers` > 0 keeps the token embeddings and
    that many lower layers as they were (less to move, a cheaper backward pass). Returns what was done."""
    import shutil
    import tempfile

    import torch
    from sentence_transformers import SentenceTransformer

    from searchlm.embed.base import resolve_model

    progress = progress or (lambda phase, n, total: None)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = SentenceTransformer(resolve_model(base), device=device)
    full_length = model.max_seq_length
    model.max_seq_length = min(TRAIN_MAX_TOKENS, full_length or TRAIN_MAX_TOKENS)
    lr = LR if lr is None else lr
    frozen = _freeze(model, FREEZE_LAYERS if freeze_layers is None else freeze_layers)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    steps_per_epoch = max(1, len(examples) // batch)
    total, step, losses = epochs * steps_per_epoch, 0, []
    if max_steps is not None:
        total = min(total, max_steps)
    started = time.monotonic()
    model.train()
    stopped = False
    for _ in range(epochs):
        order = examples[:]
        rng.shuffle(order)
        for i in range(0, steps_per_epoch * batch, batch):
            if time.monotonic() > deadline or step >= total:
                stopped = True
                break
            part = order[i : i + batch]
            q = _encode(model, [e[0] for e in part])
            p = _encode(model, [e[1] for e in part])
            n = _encode(model, [e[2] for e in part])
            margins = torch.tensor([e[3] for e in part], dtype=torch.float32, device=q.device)
            qn, pn, nn = (torch.nn.functional.normalize(x, dim=-1) for x in (q, p, n))
            logits = SCALE * qn @ torch.cat([pn, nn]).T
            ranking = torch.nn.functional.cross_entropy(logits, torch.arange(len(part), device=q.device))
            student = (qn * pn).sum(-1) - (qn * nn).sum(-1)
            margin = torch.nn.functional.mse_loss(student, margins)
            loss = ranking + MARGIN_WEIGHT * margin
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
            progress("train", step, total)
        if stopped:
            break
    model.eval()
    model.max_seq_length = full_length
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save(str(tmp))
        if out.exists():
            shutil.rmtree(out)
        tmp.chmod(0o755)
        tmp.replace(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = losses[: max(1, len(losses) // 10)]
    tail = losses[-max(1, len(losses) // 10):]
    return {"steps": step, "of_steps": total, "examples": len(examples), "batch": batch, "lr": lr,
            "frozen_layers": frozen,
            "seconds": round(time.monotonic() - started, 1),
            "loss_first": round(sum(head) / len(head), 4) if losses else None,
            "loss_last": round(sum(tail) / len(tail), 4) if losses else None}


def _encode(model, texts: list[str]):
    import torch

    features = (getattr(model, "preprocess", None) or model.tokenize)(texts)
    features = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
    return model(features)["sentence_embedding"]



def _freeze(model, layers: int) -> int:
    """Freeze the embeddings and the lower `layers` transformer layers of a BERT-like encoder; returns how many
    layers were frozen (0 where the model has no such layout)."""
    if layers <= 0:
        return 0
    encoder = getattr(model[0], "auto_model", None)
    blocks = getattr(getattr(encoder, "encoder", None), "layer", None)
    if encoder is None or blocks is None:
        return 0
    layers = min(layers, len(blocks))
    for module in [encoder.embeddings, *blocks[:layers]]:
        for p in module.parameters():
            p.requires_grad = False
    return layers

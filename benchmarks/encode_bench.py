"""Indexing-encoder benchmark (issue #2): searchlm's encoder path against a plain fp32 sentence-transformers loop.

    python benchmarks/encode_bench.py [--docs 2000] [--neighbours-of 1000]

Chunks the first `--docs` SciFact abstracts with searchlm's own extractor and chunker (as `searchlm index`
would), then encodes the same chunk texts twice:

- searchlm: `SentenceTransformerEmbedder` (bf16 autocast on CPUs with native bf16, batches of 256 as the
  indexer sends them);
- baseline: `SentenceTransformer(path).encode(texts, batch_size=32)` in fp32, the plain loop.

Prints chunks/s of each, the ratio, and the mean overlap of each chunk's top-10 neighbours (by cosine, among
all chunks, itself excluded) between the two vector sets, plus the load average, since the CPU is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCIFACT = Path(os.environ.get("SEARCHLM_DATASETS", "/work/shared/datasets")) / "scifact"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--neighbours-of", type=int, default=1000, help="chunks whose top-10 neighbours are compared")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    from sentence_transformers import SentenceTransformer

    from searchlm.embed.base import resolve_model
    from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder
    from searchlm.indexing.indexer import EMBED_BATCH
    from searchlm.settings import DEFAULT_MODEL

    texts = chunk_texts(args.docs)
    print(f"{len(texts)} chunks from {args.docs} SciFact abstracts; torch threads: {_threads()}")

    ours = SentenceTransformerEmbedder(DEFAULT_MODEL, device="cpu")
    plain = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    ours.embed(texts[:64])  # warm-up: first calls pay for lazy initialisation
    plain.encode(texts[:64], batch_size=32)

    print(f"load before: {loadavg()}")
    t0 = time.perf_counter()
    a = np.vstack([ours.embed(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)])
    t_ours = time.perf_counter() - t0
    print(f"load between: {loadavg()}")
    t0 = time.perf_counter()
    b = plain.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    t_plain = time.perf_counter() - t0
    print(f"load after: {loadavg()}")

    print(f"searchlm ({ours.precision}): {len(texts) / t_ours:.1f} chunks/s ({t_ours:.1f} s)")
    print(f"plain SentenceTransformer.encode fp32: {len(texts) / t_plain:.1f} chunks/s ({t_plain:.1f} s)")
    print(f"ratio searchlm / plain: {t_plain / t_ours:.2f}x")
    cos = np.sum(a * b, axis=1)
    print(f"cosine searchlm vs plain per chunk: mean {cos.mean():.6f}, min {cos.min():.6f}")
    print(f"mean top-10 neighbour overlap: {neighbour_overlap(a, b, args.neighbours_of):.4f}")


def chunk_texts(n_docs: int) -> list[str]:
    """Embed texts of the first n_docs SciFact abstracts, chunked exactly as `searchlm index` chunks them."""
    from searchlm.indexing.chunking import ChunkerSettings, TokenCounter, chunk_document
    from searchlm.embed.base import resolve_model
    from searchlm.extract import extract
    from searchlm.settings import DEFAULT_MODEL

    counter = TokenCounter(Path(resolve_model(DEFAULT_MODEL)) / "tokenizer.json")
    texts: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n == n_docs:
                break
            d = json.loads(line)
            path = Path(tmp) / f"{d['_id']}.md"
            path.write_text(f"# {' '.join(d['title'].split())}\n\n{d['text']}\n", encoding="utf-8")
            texts.extend(c.embed_text for c in chunk_document(extract(path), counter, ChunkerSettings()))
    return texts


def neighbour_overlap(a: np.ndarray, b: np.ndarray, n_queries: int, k: int = 10) -> float:
    """Mean |top-k(a) ∩ top-k(b)| / k over the first n_queries rows, each row's own vector excluded."""
    n = min(n_queries, len(a))
    overlaps = []
    for start in range(0, n, 256):
        rows = np.arange(start, min(n, start + 256))
        tops = []
        for x in (a, b):
            scores = x[rows] @ x.T
            scores[np.arange(len(rows)), rows] = -np.inf
            tops.append(np.argpartition(-scores, k, axis=1)[:, :k])
        overlaps.extend(len(set(p) & set(q)) / k for p, q in zip(*tops))
    return float(np.mean(overlaps))


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())

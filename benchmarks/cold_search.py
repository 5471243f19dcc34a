"""Cold-start search benchmark (issue #5): new `searchlm search` processes against a 50,000-chunk index.

    python benchmarks/cold_search.py [--workdir /tmp/searchlm-bench] [--runs 20] [--baseline-runs 5]

1. Builds, once, a normal searchlm index folder of >= 50,000 chunks from the SciFact corpus repeated with
   variations: copy 0 is the first N abstracts as Markdown files; copy k >= 1 rotates each abstract's sentences
   by k and marks the title "(variant k)". Everything goes through `index_folder` (extract, chunk, SQLite,
   FTS5, FAISS, ONNX export). Copy 0 is embedded for real with MiniLM. Encoding 50k chunks on this shared 2-core
   machine would take most of an hour, so a variant chunk's vector is one of its base document's real vectors
   plus Gaussian noise (cosine ~0.9 to it), renormalized: same dimension, same clustered geometry, and the
   search cost does not depend on the values.
2. Times `--runs` cold `searchlm search QUERY --mode hybrid` processes (SciFact test queries), each a new
   process, after one untimed run that puts the files in the page cache: median and p95 wall time, and peak RSS
   per process (from wait4).
3. Times `--baseline-runs` processes that do what a torch-based tool does per query: import
   sentence_transformers, load the model, encode the query, and search the same FAISS file.

Prints the figures, the ratio baseline / searchlm, and the load average, since timings on a shared CPU vary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np

SCIFACT = Path(os.environ.get("SEARCHLM_DATASETS", "/work/shared/datasets")) / "scifact"
TARGET_CHUNKS = 50_000
INDEX_NAME = "bench50k"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_VARIANT = re.compile(r" \(variant (\d+)\)$")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/searchlm-bench"))
    ap.add_argument("--base-docs", type=int, default=2000, help="SciFact abstracts embedded for real")
    ap.add_argument("--chunks", type=int, default=TARGET_CHUNKS)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--baseline-runs", type=int, default=5)
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    home = args.workdir / "indexes"
    index_dir = home / INDEX_NAME
    manifest_path = index_dir / "manifest.json"
    if args.build_only:
        build(args.workdir, home, args.base_docs, args.chunks)
        return
    if not manifest_path.is_file() or json.loads(manifest_path.read_text())["chunks"] < args.chunks:
        # In a child process, so this one stays small: a child's peak RSS counts its parent's at fork.
        subprocess.run([sys.executable, __file__, "--build-only", "--workdir", str(args.workdir),
                        "--base-docs", str(args.base_docs), "--chunks", str(args.chunks)], check=True)
    manifest = json.loads(manifest_path.read_text())
    print(f"index: {index_dir}  {manifest['chunks']} chunks, {manifest['documents']} documents, "
          f"FAISS {manifest['ann'].get('type')}")

    queries = test_queries(args.runs)
    searchlm = str(Path(sys.executable).parent / "searchlm")
    cmd = lambda q: [searchlm, "search", q, "--home", str(home), "--name", INDEX_NAME, "--mode", args.mode, "-k", "10"]
    run_timed(cmd(queries[0]))  # page cache warm-up, not timed
    print(f"load before searchlm runs: {loadavg()}")
    ours = [run_timed(cmd(q)) for q in queries]
    print(f"load after searchlm runs:  {loadavg()}")
    report("searchlm search --mode " + args.mode, ours)

    baseline_code = textwrap.dedent(f"""
        import sys, faiss
        from sentence_transformers import SentenceTransformer
        from searchlm.embed.base import resolve_model
        model = SentenceTransformer(resolve_model({manifest['model']!r}), device="cpu")
        index = faiss.read_index({str(index_dir / 'vectors.faiss')!r})
        q = model.encode([sys.argv[1]], normalize_embeddings=True, convert_to_numpy=True)
        scores, ids = index.search(q, 10)
        print(ids[0].tolist())
    """)
    base = [run_timed([sys.executable, "-c", baseline_code, q]) for q in queries[: args.baseline_runs]]
    print(f"load after baseline runs: {loadavg()}")
    report("baseline: SentenceTransformer + faiss.read_index", base)
    ratio = statistics.median(r[0] for r in base) / statistics.median(r[0] for r in ours)
    print(f"ratio baseline / searchlm (medians): {ratio:.1f}x")
    print("command: " + " ".join(cmd("QUERY")))


def run_timed(cmd: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + sys) of one child process. RSS and CPU come from
    GNU time (`/usr/bin/time`), whose own tiny footprint is what the child starts from. CPU time is the figure
    that moves least when other jobs share the cores."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%M %U %S", *cmd], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd[:3])}...\n{proc.stderr.decode()}")
        rss, user, system = out.read().split()[-3:]
        return elapsed, int(rss) // 1024, float(user) + float(system)


def report(label: str, runs: list[tuple[float, int, float]]) -> None:
    times = sorted(r[0] for r in runs)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(f"{label}: n={len(times)} median {statistics.median(times):.3f} s, p95 {p95:.3f} s, "
          f"min {times[0]:.3f} s, peak RSS {max(r[1] for r in runs)} MB, "
          f"median CPU (user+sys) {statistics.median(r[2] for r in runs):.3f} s")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def scifact_docs(n: int) -> list[dict]:
    """The first `n` SciFact corpus rows that have text (title, text, _id)."""
    docs = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["text"].strip():
                docs.append(d)
            if len(docs) == n:
                break
    return docs


def test_queries(n: int) -> list[str]:
    judged = {line.split("\t")[0] for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    out = []
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if q["_id"] in judged:
                out.append(q["text"])
            if len(out) == n:
                break
    return out


# -- building the index -----------------------------------------------------------------------------------
def build(workdir: Path, home: Path, base_docs: int, target_chunks: int) -> None:
    from searchlm.indexing.chunking import ChunkerSettings, TokenCounter, chunk_document
    from searchlm.embed.base import resolve_model
    from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder
    from searchlm.extract import extract
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import DEFAULT_MODEL, Settings

    corpus = workdir / "corpus"
    docs = scifact_docs(base_docs)
    # How many chunks one copy makes, with searchlm's own chunker, to size the number of copies.
    counter = TokenCounter(Path(resolve_model(DEFAULT_MODEL)) / "tokenizer.json")
    (corpus / "00").mkdir(parents=True, exist_ok=True)
    per_doc = []
    for d in docs:
        path = corpus / "00" / f"{d['_id']}.md"
        _write(path, render(d, 0))
        per_doc.append(len(chunk_document(extract(path), counter, ChunkerSettings())))
    total, k = sum(per_doc), 1
    while total < target_chunks:
        (corpus / f"{k:02d}").mkdir(exist_ok=True)
        for d, n in zip(docs, per_doc):
            _write(corpus / f"{k:02d}" / f"{d['_id']}.md", render(d, k))
            total += n
            if total >= target_chunks:
                break
        k += 1
    print(f"corpus: {len(docs)} SciFact abstracts x {k} copies, ~{total} chunks, in {corpus}")
    embedder = _ReusingEmbedder(SentenceTransformerEmbedder(DEFAULT_MODEL))
    started = time.perf_counter()
    settings = Settings(home=home, name=INDEX_NAME)
    report = index_folder(corpus, settings, progress=_progress, embedder=embedder)
    # Variants chunk a little differently from copy 0: top up with more variant files (an incremental run).
    while report.chunks_total < target_chunks:
        short = target_chunks - report.chunks_total
        (corpus / f"{k:02d}").mkdir(exist_ok=True)
        for d, n in zip(docs, per_doc):
            _write(corpus / f"{k:02d}" / f"{d['_id']}.md", render(d, k))
            short -= n
            if short < -50:
                break
        k += 1
        report = index_folder(corpus, settings, progress=_progress, embedder=embedder)
    print(f"\nindexed {report.chunks_total} chunks in {time.perf_counter() - started:.0f} s "
          f"({embedder.real} embedded with MiniLM, {embedder.derived} derived)")


def render(doc: dict, k: int) -> str:
    title = " ".join(doc["title"].split()) or doc["_id"]
    sentences = _SENTENCE.split(" ".join(doc["text"].split()))
    if k:
        title = f"{title} (variant {k})"
        r = k % len(sentences)
        sentences = sentences[r:] + sentences[:r]
    return f"# {title}\n\n" + " ".join(sentences) + "\n"


def _write(path: Path, text: str) -> None:
    """Write unless the file already holds this text, so a re-run finds the corpus unchanged."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _progress(phase: str, done: int, total: int) -> None:
    if phase == "embed" and total and (done % 2560 == 0 or done == total):
        print(f"\r  embedding {done}/{total}", end="", flush=True)


class _ReusingEmbedder:
    """MiniLM for copy 0; a variant's chunk gets one of its base document's real vectors plus noise."""

    def __init__(self, real):
        self.inner = real
        self.model = real.model  # export_onnx reads it
        self.model_id, self.dimension, self.precision = real.model_id, real.dimension, real.precision
        self.by_title: dict[str, list[np.ndarray]] = {}
        self.real = self.derived = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        todo = []
        for i, text in enumerate(texts):
            title = text.split("\n", 1)[0]
            m = _VARIANT.search(title)
            base = self.by_title.get(title[: m.start()]) if m else None
            if base:
                rng = np.random.default_rng(zlib.crc32(text.encode()))
                v = base[rng.integers(len(base))] + rng.normal(0, 0.5 / np.sqrt(self.dimension), self.dimension)
                out[i] = v / np.linalg.norm(v)
                self.derived += 1
            else:
                todo.append(i)
        if todo:
            vecs = self.inner.embed([texts[i] for i in todo])
            for i, v in zip(todo, vecs):
                out[i] = v
                self.by_title.setdefault(texts[i].split("\n", 1)[0], []).append(v)
            self.real += len(todo)
        return out


if __name__ == "__main__":
    main()

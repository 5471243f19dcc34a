"""Re-indexing after a small edit (issue #12): index N SciFact abstracts written one per file, edit M of them,
index again; the second run should take <= 5 % of the first, with each vector store.

    python benchmarks/reindex.py [--docs 1000] [--edit 10] [--store faiss --store milvus] [--workdir DIR]

Both runs go through `index_folder` in this process with one MiniLM loaded beforehand (so neither pays the
model load; the first pays the ONNX export, as a real first run does). The edit appends a sentence to each
edited abstract, so each edited file is re-chunked and its changed chunks re-embedded; the vector store is
updated from SQLite's change log. Prints both times, the ratio and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--edit", type=int, default=10)
    ap.add_argument("--store", action="append", help="faiss, milvus or a Milvus URI (repeatable)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/searchlm-reindex"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from cold_search import (
        scifact_docs,  # benchmarks/ is first on sys.path when run as a script
    )

    from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder
    from searchlm.evaluate import doc_filename, document_markdown
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import DEFAULT_MODEL, Settings

    docs = scifact_docs(args.docs)
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL)
    for store in args.store or ["faiss", "milvus"]:
        shutil.rmtree(args.workdir, ignore_errors=True)
        corpus = args.workdir / "corpus"
        corpus.mkdir(parents=True)
        for d in docs:
            (corpus / doc_filename(d["_id"])).write_text(document_markdown(d["title"], d["text"]), encoding="utf-8")
        settings = Settings(home=args.workdir / "indexes", name="reindex", store=store)
        print(f"[{store}] load before: {loadavg()}", flush=True)
        t0 = time.perf_counter()
        full = index_folder(corpus, settings, embedder=embedder)
        t_full = time.perf_counter() - t0
        for d in docs[:: max(1, len(docs) // args.edit)][: args.edit]:
            path = corpus / doc_filename(d["_id"])
            path.write_text(path.read_text(encoding="utf-8") + "\nThis abstract was edited for the benchmark.\n",
                            encoding="utf-8")
        t0 = time.perf_counter()
        again = index_folder(corpus, settings, embedder=embedder)
        t_inc = time.perf_counter() - t0
        print(f"[{store}] full: {len(docs)} files, {full.chunks_total} chunks in {t_full:.1f} s; "
              f"after editing {len(again.updated)} files: {again.chunks_embedded} chunks re-embedded in {t_inc:.2f} s; "
              f"ratio {100 * t_inc / t_full:.2f} % (target <= 5 %); load after: {loadavg()}", flush=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

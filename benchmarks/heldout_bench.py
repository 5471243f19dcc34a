"""Held-out retrieval benchmark: hit@5 on questions written before looking at any results, and markup in snippets.

Indexes a documentation folder nobody on this project wrote (see RESULTS.md: pytest 9.2.0's `doc/en`, from its
PyPI sdist) into a temporary index home, runs each question of benchmarks/heldout_questions.jsonl with the default
search (hybrid, top 5 passages), and reports:

  hit@5     share of questions with an expected file among the top 5 hits
  markup    snippets (as `searchlm search` prints them) and hit texts that still hold markup tokens:
            ":class:", "``", "](", "&amp;", and any reST role (":word:`")

`--sample` runs the 15 questions of sample_corpus/QUERIES.md the same way (hit@3, markup).

    pip download --no-deps --no-binary :all: pytest==9.2.0 -d /tmp/heldout && tar xzf /tmp/heldout/pytest-9.2.0.tar.gz -C /tmp/heldout
    python benchmarks/heldout_bench.py --docs /tmp/heldout/pytest-9.2.0/doc/en --home /tmp/heldout-home
    python benchmarks/heldout_bench.py --sample --home /tmp/heldout-home
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
MARKUP = re.compile(r":class:|``|\]\(|&amp;|:[a-z]+(?::[a-z]+)?:`")


def sample_questions() -> list[dict]:
    rows = []
    for line in (HERE.parent / "sample_corpus" / "QUERIES.md").read_text().splitlines():
        m = re.match(r"\| (.+?) \| `(.+?)` \|$", line)
        if m:
            rows.append({"id": f"s{len(rows) + 1:02d}", "question": m.group(1), "expected": [m.group(2)]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, help="documentation folder to index")
    parser.add_argument("--questions", type=Path, default=HERE / "heldout_questions.jsonl")
    parser.add_argument("--sample", action="store_true", help="the sample corpus and its QUERIES.md instead")
    parser.add_argument("--home", type=Path, default=Path("/tmp/heldout-home"))
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--show", action="store_true", help="print each question's top paths and markup found")
    args = parser.parse_args()

    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import SearchOptions, Searcher
    from searchlm.settings import Settings
    from searchlm.search.snippets import snippet_text

    if args.sample:
        docs, questions, name, k = HERE.parent / "sample_corpus", sample_questions(), "sample", 3
    else:
        if not args.docs:
            sys.exit("give --docs FOLDER (or --sample)")
        docs, name, k = args.docs, "heldout", args.k
        questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    settings = Settings(home=args.home, name=name)
    started = time.perf_counter()
    report = index_folder(docs, settings)
    print(f"indexed {report.files_seen} files ({report.chunks_total} chunks) in {time.perf_counter() - started:.0f} s")
    searcher = Searcher(settings)
    hits_at_k, markup_snippets, markup_texts, total = 0, 0, 0, 0
    for q in questions:
        hits = searcher.search(q["question"], SearchOptions(k=k)).hits
        rels = [h.path for h in hits]  # as stored: relative to the indexed folder
        found = any(r in q["expected"] for r in rels)
        hits_at_k += found
        bad = []
        for h in hits:
            total += 1
            snip = snippet_text(h.text, q["question"])
            if MARKUP.search(snip):
                markup_snippets += 1
                bad.append(MARKUP.search(snip).group(0))
            if MARKUP.search(h.text):
                markup_texts += 1
        if args.show:
            print(f"{q['id']} {'HIT ' if found else 'MISS'} {q['question']!r} -> {rels}" + (f" markup {bad}" if bad else ""))
    n = len(questions)
    print(f"hit@{k}: {hits_at_k}/{n} = {hits_at_k / n:.3f}")
    print(f"snippets with markup: {markup_snippets}/{total}; hit texts with markup: {markup_texts}/{total}")
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Calibrate search's weak-hit floor (search.WEAK_FLOOR) on the sample corpus.

Relevant: the best-ranked hit from the expected document of each question in sample_corpus/QUERIES.md (15) and
of each held-out pytest question (when --heldout-home holds that index). Unrelated: every top-5 hit of the 50
questions in benchmarks/out_of_corpus_calibration.jsonl on the sample corpus (none of them is about it).
Prints, per floor, the share of relevant hits marked weak (should be ~0) and of unrelated hits not marked.

    python benchmarks/weak_floor.py --home /tmp/heldout-home [--heldout-home /tmp/heldout-home]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent


def evidence(query, hit):
    from searchlm.text import content_words, words
    from searchlm.search.searcher import EVIDENCE_WEIGHT

    wanted = set(content_words(query))
    have = set(words(f"{hit.title} {hit.heading} {hit.text}"))
    coverage = sum(w in have for w in wanted) / len(wanted) if wanted else 0.0
    return EVIDENCE_WEIGHT * hit.cosine + (1 - EVIDENCE_WEIGHT) * coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/heldout-home"))
    parser.add_argument("--heldout-home", type=Path)
    args = parser.parse_args()
    import sys

    sys.path.insert(0, str(HERE))
    from heldout_bench import sample_questions

    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import SearchOptions, Searcher
    from searchlm.settings import Settings

    settings = Settings(home=args.home, name="sample")
    index_folder(HERE.parent / "sample_corpus", settings)
    relevant, unrelated = [], []
    sets = [(Searcher(settings), sample_questions())]
    if args.heldout_home:
        questions = [json.loads(x) for x in (HERE / "heldout_questions.jsonl").read_text().splitlines() if x.strip()]
        sets.append((Searcher(Settings(home=args.heldout_home, name="heldout")), questions))
    for searcher, questions in sets:
        root = Path(searcher.manifest.root).resolve()
        for q in questions:
            for h in searcher.search(q["question"], SearchOptions(k=10)):
                if str(Path(h.path).resolve().relative_to(root)) in q["expected"]:
                    relevant.append(evidence(q["question"], h))
                    break
    sample = sets[0][0]
    for line in (HERE / "out_of_corpus_calibration.jsonl").read_text().splitlines():
        q = json.loads(line)["question"]
        unrelated += [evidence(q, h) for h in sample.search(q, SearchOptions(k=5))]
    print(f"relevant {len(relevant)}: min {min(relevant):.3f}, median {sorted(relevant)[len(relevant) // 2]:.3f}")
    print(f"unrelated {len(unrelated)}: max {max(unrelated):.3f}, median {sorted(unrelated)[len(unrelated) // 2]:.3f}")
    for floor in (0.35, 0.40, 0.42, 0.45, 0.48, 0.50, 0.55):
        r = sum(e < floor for e in relevant) / len(relevant)
        u = sum(e < floor for e in unrelated) / len(unrelated)
        print(f"floor {floor:.2f}: relevant marked weak {r:.1%}, unrelated marked weak {u:.1%}")


if __name__ == "__main__":
    main()

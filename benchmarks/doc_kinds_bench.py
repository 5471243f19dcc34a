"""The document-kind prior (searchlm.indexing.doc_kinds.PRIOR) on a manual whose changelogs and migration notes crowd its
guides: hit@5 and the share of questions whose first hit is a guide, without the prior and with each weight tried.

    pip download --no-deps --no-binary :all: sqlalchemy==2.0.36 -d /tmp/sa && tar xzf /tmp/sa/sqlalchemy-2.0.36.tar.gz -C /tmp/sa
    searchlm index /tmp/sa/sqlalchemy-2.0.36/doc/build --name sa --home /tmp/kinds-home
    python benchmarks/doc_kinds_bench.py --name sa --home /tmp/kinds-home

The questions (benchmarks/doc_kinds_questions.jsonl: a how-to question and the guide pages that answer it) were
written from the manual's file list before any search was run. hit@5: an expected page among the first 5 hits (chunks);
guide first: the first hit is a guide page; noise@5: the mean count of changelog and migration hits among the first 5.

On SQLAlchemy 2.0.36's doc/build (195 pages, 6,992 chunks: 124 guide, 27 changelog, 13 migration, 31 api pages),
MiniLM, hybrid, 2-core machine, 2026-12-07:

    prior (changelog,migration / api)   hit@5   guide first   noise@5
    none                                 0.94        1.00        0.24
    0.9 / 1.0                            1.00        1.00        0.06
    0.8 / 0.95 (default)                 1.00        1.00        0.00
    0.8 / 0.9                            0.94        1.00        0.00
    0.5 / 0.8                            0.94        1.00        0.00

The miss without the prior is the hybrid-attributes question, whose page (orm/extensions/hybrid.rst) is an API stub;
a stronger API weight pushes it out again, hence api 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from searchlm.indexing.doc_kinds import PRIOR
from searchlm.search.searcher import Searcher, SearchOptions
from searchlm.settings import Settings

QUESTIONS = Path(__file__).with_name("doc_kinds_questions.jsonl")


def run(searcher: Searcher, questions: list[dict], prior: bool) -> dict:
    root = searcher.manifest.root
    found = first_guide = noise = 0
    ranks = []
    for q in questions:
        hits = searcher.search(q["q"], SearchOptions(k=10, prior=prior))
        rel = [os.path.relpath(os.path.abspath(h.path), root) for h in hits]
        rank = next((n for n, p in enumerate(rel, 1) if p in q["expect"]), None)
        ranks.append(rank)
        found += rank is not None and rank <= 5
        first_guide += bool(hits) and hits[0].doc_kind == "guide"
        noise += sum(h.doc_kind in ("changelog", "migration") for h in hits[:5])
    n = len(questions)
    return {"hit@5": found / n, "guide_first": first_guide / n, "noise@5": noise / n, "ranks": ranks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="sa")
    parser.add_argument("--home", type=Path, default=Path("/tmp/kinds-home"))
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("-v", "--verbose", action="store_true", help="Print each question's rank of its page.")
    args = parser.parse_args()
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    tuned = dict(PRIOR)
    with Searcher(Settings(home=args.home, name=args.name)) as searcher:
        kinds = dict(searcher.store.conn.execute("SELECT doc_kind, count(*) FROM documents GROUP BY doc_kind"))
        print(f"index '{args.name}': documents by kind {kinds}; {len(questions)} questions")
        print(f"{'changelog,migration':>20} {'api':>5} {'hit@5':>6} {'guide 1st':>9} {'noise@5':>8}  ranks of the page")
        base = run(searcher, questions, prior=False)
        rows = [("no prior", "", base)]
        for history in (0.9, 0.8, 0.7, 0.6, 0.5):
            for api in (1.0, 0.95, 0.9, 0.8):
                PRIOR.update(changelog=history, migration=history, api=api)
                rows.append((f"{history}", f"{api}", run(searcher, questions, prior=True)))
        PRIOR.update(tuned)
        for history, api, r in rows:
            mark = " <- default" if (history, api) == (f"{tuned['changelog']}", f"{tuned['api']}") else ""
            ranks = " ".join("-" if x is None else str(x) for x in r["ranks"]) if args.verbose else ""
            print(f"{history:>20} {api:>5} {r['hit@5']:6.2f} {r['guide_first']:9.2f} {r['noise@5']:8.2f}  {ranks}{mark}")


if __name__ == "__main__":
    main()

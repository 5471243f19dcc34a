"""Yes/no verdicts on a small dev set over sample_corpus/ (benchmarks/yesno_dev.jsonl): the set the verdict rules in
searchlm/search/questions.py and answer.deciding were tuned on, so that the held-out Flask set (manual_qa_bench.py) stays
held out. Composed answers load no model: this runs in seconds on an index of the sample corpus.

    searchlm index sample_corpus --name sample --home H
    python benchmarks/yesno_dev.py --home H --name sample
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    from searchlm import Index

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=None)
    parser.add_argument("--name", default="default")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(HERE / "yesno_dev.jsonl", encoding="utf-8")]
    right = 0
    with Index(name=args.name, home=args.home) as index:
        for row in rows:
            answer = index.ask(row["question"])
            ok = answer.verdict == row["verdict"]
            right += ok
            print(f"{row['id']} {'ok ' if ok else 'BAD'} want {row['verdict']:5} got {answer.verdict!s:5} "
                  f"{answer.answer[:110]!r}")
    print(f"verdict right {right}/{len(rows)} = {right / len(rows):.0%}")


if __name__ == "__main__":
    main()

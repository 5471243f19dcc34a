"""Summaries of real documents: repeats, cut-off endings and time to the first line (issue #21).

Summarizes the N largest documents of an existing index with the default method (key sentences, quoted) and
reports, over them: sentences repeated within a summary (compared with punctuation and case removed), summaries
whose last sentence does not end in . ! or ?, seconds to the first streamed text (a warm process: the index is
open, as in `serve`; a cold CLI adds its start-up), and seconds per summary. `--show K` prints K summaries in full
for reading.

    python benchmarks/manual_qa_bench.py --home /tmp/manual-qa-home --n 1      # builds the Flask docs index
    python benchmarks/summary_bench.py --home /tmp/manual-qa-home --name flask --n 20 --show 10
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time


def main() -> None:
    from searchlm import Index
    from searchlm.text import sentences

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--name", default="default")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--show", type=int, default=0)
    args = parser.parse_args()
    with Index(name=args.name, home=args.home) as index:
        store = index.searcher.store
        docs = sorted(store.documents().values(), key=lambda d: -d.size)[: args.n]
        repeats = cut = 0
        firsts, totals = [], []
        for i, doc in enumerate(docs):
            seen: list[float] = []
            started = time.perf_counter()
            result = index.summarize(doc.path, on_token=lambda _t: seen.append(time.perf_counter() - started))
            totals.append(time.perf_counter() - started)
            firsts.append(seen[0] if seen else totals[-1])
            said = [re.sub(r"\W+", " ", re.sub(r"\[\d+\]", "", s)).strip().lower() for s in sentences(result.summary)]
            repeats += len(said) - len(set(said))
            ends_open = not re.sub(r"\s*\[\d+\]", "", result.summary).rstrip().endswith((".", "!", "?", '"', ")"))
            cut += ends_open
            print(f"{doc.path:45.45} {len(result.passages):4d} chunks {len(said):2d} sentences "
                  f"{'REPEAT ' if len(said) != len(set(said)) else ''}{'CUT ' if ends_open else ''}"
                  f"first {firsts[-1]:.2f} s, all {totals[-1]:.2f} s")
            if i < args.show:
                print(f"    {result.summary}\n")
    print(f"\n{len(docs)} documents: repeated sentences {repeats}, cut-off endings {cut}, first text median "
          f"{statistics.median(firsts):.2f} s (max {max(firsts):.2f} s), whole summary median "
          f"{statistics.median(totals):.2f} s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

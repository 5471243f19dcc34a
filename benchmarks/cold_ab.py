"""Cold `searchlm search` processes, two versions of the code interleaved: is one slower than the other?

    python benchmarks/cold_ab.py --before /tmp/searchlm-main --after . --home HOME --name INDEX [--rounds 15]

`--before` and `--after` are source trees (e.g. `git archive main | tar -x -C /tmp/searchlm-main`); each run is
a new `python -m searchlm search QUERY` process with that tree first on PYTHONPATH, against the same index. Runs
alternate before/after (which goes first alternates too), each round with a new query, after one untimed run of
each that puts the files in the page cache, so load on a shared machine falls on both alike. Prints the median
and p90 wall time and CPU time (user + system, from wait4: far less sensitive to other processes than wall time
on a loaded machine) of each, the ratios after / before (median of the per-round ratios and ratio of medians)
and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUERIES = [
    "vitamin D deficiency and multiple sclerosis", "aspirin reduces risk of colorectal cancer",
    "gene expression in T cells", "obesity and insulin resistance", "antibiotic resistance in bacteria",
    "sleep deprivation impairs memory", "statins lower cholesterol", "microRNA regulates tumour growth",
    "smoking and lung cancer risk", "exercise improves cardiovascular health", "stem cell differentiation",
    "malaria transmission by mosquitoes", "blood pressure and salt intake", "autism and vaccines",
    "gut microbiome and immunity", "protein folding in the endoplasmic reticulum", "HIV viral load",
    "breast cancer screening", "dopamine and reward", "influenza vaccine efficacy",
]


def run_once(tree: Path, query: str, home: str, name: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one `searchlm search` process."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "searchlm", "search", query, "--home", home, "--name", name,
                                 "-k", "10", "--json"], env=env, stdout=out, stderr=err, cwd=tree)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own CPU time, which Popen.wait does not give
        took = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{tree}: {err.read().decode(errors='replace').strip()[-400:]}")
        json.loads(out.read())
    return took, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--home", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for tree in trees.values():  # untimed: the page cache, Python's bytecode caches
        run_once(tree, "warm up the page cache", args.home, args.name)
    walls: dict[str, list[float]] = {"before": [], "after": []}
    cpus: dict[str, list[float]] = {"before": [], "after": []}
    for r in range(args.rounds):
        query = QUERIES[r % len(QUERIES)]
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for side in order:
            wall, cpu = run_once(trees[side], query, args.home, args.name)
            walls[side].append(wall)
            cpus[side].append(cpu)
    for what, times in (("wall", walls), ("CPU", cpus)):
        for side, values in times.items():
            values_sorted = sorted(values)
            p90 = values_sorted[min(len(values) - 1, int(0.9 * len(values)))]
            print(f"{what:>4} {side:>6}: median {statistics.median(values):.3f} s, p90 {p90:.3f} s "
                  f"over {len(values)} cold searches")
        ratios = [a / b for a, b in zip(times["after"], times["before"])]
        print(f"{what:>4} after / before: median of per-round ratios {statistics.median(ratios):.3f}, "
              f"ratio of medians {statistics.median(times['after']) / statistics.median(times['before']):.3f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

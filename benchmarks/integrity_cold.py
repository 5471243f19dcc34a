"""Does the open-time integrity check (issue #22: sizes and times of the derived files against the manifest)
slow a cold search? Interleaved new `searchlm search` processes of a baseline checkout and this one, on the same
index, same queries, alternating which goes first in each pair.

    python benchmarks/integrity_cold.py --home HOME --name NAME [--baseline /work/main] [--runs 20] [--mode hybrid]

The index must be written by this checkout (so its manifest records the digests the check compares); the
baseline ignores the manifest's `files`. Prints the median wall and CPU seconds of each side, the ratio
this / baseline (1.00 = no cost), and the load average (a shared CPU moves absolute times; the interleaving
keeps the ratio fair).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERIES = ["river stone garden", "how do bees keep warm", "violin harbor lantern", "quartz falcon ember",
           "compass thunder velvet", "meadow canvas orbit", "glacier saffron timber", "engine ladder window"]


def timed(checkout: Path, args, query: str) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "searchlm", "search", query, "--home", str(args.home), "--name", args.name,
           "--mode", args.mode, "-k", "10"]
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%U %S", *cmd], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{checkout}: search failed: {proc.stderr.strip()[-400:]}")
        if "damaged" in proc.stderr or "Traceback" in proc.stderr:
            raise SystemExit(f"{checkout}: search printed to stderr (a damage warning?): {proc.stderr.strip()[:300]}")
        user, system = out.read().split()[-2:]
        return wall, float(user) + float(system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--baseline", type=Path, default=Path("/work/main"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--mode", default="hybrid")
    args = ap.parse_args()
    sides = {"baseline": args.baseline, "this": REPO}
    for checkout in sides.values():  # page cache and the optimized encoder copy, not timed
        timed(checkout, args, QUERIES[0])
    results = {k: [] for k in sides}
    print(f"load before: {'%.2f %.2f %.2f' % os.getloadavg()}")
    for n in range(args.runs):
        order = list(sides) if n % 2 == 0 else list(reversed(sides))
        for side in order:
            results[side].append(timed(sides[side], args, QUERIES[n % len(QUERIES)]))
    print(f"load after:  {'%.2f %.2f %.2f' % os.getloadavg()}")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in results.items()}
    for side, (wall, cpu) in med.items():
        print(f"{side:8s} ({sides[side]}): n={args.runs} median wall {wall:.3f} s, median CPU {cpu:.3f} s")
    print(f"ratio this / baseline: wall {med['this'][0] / med['baseline'][0]:.3f}, "
          f"CPU {med['this'][1] / med['baseline'][1]:.3f}")


if __name__ == "__main__":
    main()

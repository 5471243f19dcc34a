"""What the plugin registry (searchlm/plugins.py) adds to a cold `searchlm search` (issue #24: no slower).

    python benchmarks/plugins_cost.py --home HOME --name NAME [--runs 15]

A search looks its store up by name, so every cold search now imports pluggy, builds the plugin manager and
registers the built-ins. Timed in new processes, interleaved so that load swings hit both alike:

- `registry`: import what a search imports anyway (the CLI, search/searcher.py, the store seam), then time
  `import searchlm.plugins` + `stores.find('faiss')` inside the process (perf_counter), median of --runs;
- `entry points`: the same process then scans the installed packages' entry points (`load_plugins`), which a
  search with a built-in name never does, shown for scale;
- `cold search`: the wall time of `python -m searchlm search` on the given index, median of --runs.

Prints the medians, the registry's share of a cold search, and the load average (the CPU is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBE = """
import json, time
import searchlm.cli, searchlm.search.searcher, searchlm.stores.base
t0, c0 = time.perf_counter(), time.process_time()
import searchlm.plugins as plugins
plugins.stores.find("faiss")
t1, c1 = time.perf_counter(), time.process_time()
plugins.load_plugins()
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"registry": t1 - t0, "entry_points": t2 - t1, "registry_cpu": c1 - c0, "entry_points_cpu": c2 - c1}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--query", default="how do bees keep warm in winter")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    search = [sys.executable, "-m", "searchlm", "search", args.query, "--home", args.home, "--name", args.name,
              "-k", "5", "--json"]
    subprocess.run(search, env=env, capture_output=True, check=True)  # the page cache, warm
    times: dict[str, list[float]] = {k: [] for k in ("registry", "entry_points", "registry_cpu", "entry_points_cpu",
                                                      "cold", "cold_cpu")}
    for _ in range(args.runs):
        probe = json.loads(subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                                          check=True).stdout)
        for key, value in probe.items():
            times[key].append(value)
        before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(search, env=env, capture_output=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times["cold"].append(time.perf_counter() - t)
        times["cold_cpu"].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"runs: {args.runs}; load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("median ms                                         wall     CPU")
    print(f"registry (import pluggy + plugins, find 'faiss'): {med['registry']:7.1f} {med['registry_cpu']:7.1f}")
    print(f"entry-point scan (not done for a built-in name):  {med['entry_points']:7.1f} {med['entry_points_cpu']:7.1f}")
    print(f"cold `searchlm search` (whole process):           {med['cold']:7.0f} {med['cold_cpu']:7.0f}")
    print(f"registry share of a cold search: {100 * med['registry'] / med['cold']:.1f} % of wall, "
          f"{100 * med['registry_cpu'] / med['cold_cpu']:.1f} % of CPU")


if __name__ == "__main__":
    main()

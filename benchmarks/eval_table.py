"""Run the configurations of the retrieval table in benchmarks/RESULTS.md with `searchlm eval --json` and print
the Markdown rows, each with the command that produced it.

    python benchmarks/eval_table.py --datasets /work/shared/datasets --home /tmp/searchlm-eval --out /tmp/rows
    python benchmarks/eval_table.py --out /tmp/rows --no-run     # only format what is in --out

The first run of a dataset builds its eval index (SciFact: minutes); later runs reuse it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from pathlib import Path

CONFIGS = [  # (row name, dataset folder, extra eval arguments)
    ("scifact_test_default", "scifact", []),
    ("scifact_test_keyword", "scifact", ["--mode", "keyword"]),
    ("scifact_test_dense", "scifact", ["--mode", "dense"]),
    ("scifact_test_rrf", "scifact", ["--fusion", "rrf"]),
    ("scifact_test_w05", "scifact", ["--dense-weight", "0.5"]),
    ("scifact_train_default", "scifact", ["--split", "train"]),
    ("scifact_train_keyword", "scifact", ["--split", "train", "--mode", "keyword"]),
    ("scifact_train_dense", "scifact", ["--split", "train", "--mode", "dense"]),
    ("scifact_train_w05", "scifact", ["--split", "train", "--dense-weight", "0.5"]),
    *[(f"{ds}_{name}", ds, args) for ds in ("cranfield", "cisi") for name, args in (
        ("default", []), ("keyword", ["--mode", "keyword"]), ("dense", ["--mode", "dense"]), ("rrf", ["--fusion", "rrf"]))],
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--home", type=Path, default=Path("/tmp/searchlm-eval"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--no-run", action="store_true")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    print("| dataset | split | configuration | nDCG@10 | R@100 | MRR@10 | p50 ms | p95 ms | command |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ds, args in CONFIGS:
        cmd = ["searchlm", "eval", str(a.datasets / ds), *args, "--home", str(a.home), "--json"]
        path = a.out / f"{name}.json"
        if not a.no_run:
            path.write_text(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        shown = " ".join(shlex.quote(c) for c in cmd[:3] + args)
        label = name.split("_", 2)[-1] if ds == "scifact" else name.split("_", 1)[1]
        print(f"| {r['dataset']} | {r['split']} | {label} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | "
              f"{r['mrr@10']:.4f} | {r['latency_ms_p50']:.0f} | {r['latency_ms_p95']:.0f} | `{shown}` |")


if __name__ == "__main__":
    main()

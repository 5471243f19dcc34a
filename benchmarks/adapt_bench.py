"""`searchlm adapt` on BEIR sets: nDCG@10 (hybrid default, dense alone) before and after, and what it cost.

Judgments score only: `adapt` sees the corpus and nothing else (its queries are its own pseudo-queries). Each
set's eval index is built once into --cache (or reused, `searchlm eval`'s own index) and copied into --home, so
every run adapts a fresh copy.

    nice -n 10 python benchmarks/adapt_bench.py ../shared/datasets/scifact --minutes 60
    nice -n 10 python benchmarks/adapt_bench.py ../shared/datasets/cranfield ../shared/datasets/cisi --minutes 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", type=Path, nargs="+")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--sample", type=int, default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/searchlm-adapt-bench/cache"))
    ap.add_argument("--home", type=Path, default=Path("/tmp/searchlm-adapt-bench/home"))
    ap.add_argument("--margin", type=float, default=-1.0,
                    help="the gate's margin; default -1: always keep, so that what the adapted encoder does on the "
                    "judgments is measured, and report what the real gate (adapt.MARGIN) would have decided")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--queries", type=Path, default=None,
                    help="a folder: each set's mined pseudo-queries are saved there when training starts, and a "
                    "later run with the same folder starts from them (compare training recipes on the same queries)")
    ap.add_argument("--steps", type=int, default=None, help="at most this many training steps")
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default adapt.train.LR)")
    ap.add_argument("--freeze", type=int, default=None, help="lower layers kept frozen (default adapt.train.FREEZE_LAYERS)")
    ap.add_argument("--train-sources", default=None,
                    help="comma-separated query sources trained on when enough passed (default adapt.TRAIN_SOURCES)")
    a = ap.parse_args()

    import searchlm.adapt as adapt_module
    from searchlm.adapt import train as train_module

    if a.lr is not None:
        train_module.LR = a.lr
    if a.freeze is not None:
        train_module.FREEZE_LAYERS = a.freeze
    if a.train_sources is not None:
        adapt_module.TRAIN_SOURCES = tuple(a.train_sources.split(","))

    from searchlm.adapt import MARGIN, MIN_GATE, SIGNIFICANCE
    from searchlm.evaluate import ensure_eval_index, evaluate, load_beir
    from searchlm.index import Index
    from searchlm.search.searcher import SearchOptions
    from searchlm.settings import Settings

    rows = []
    for path in a.datasets:
        dataset = load_beir(path, a.split)
        cached = ensure_eval_index(dataset, Settings(home=a.cache))
        target = a.home / cached.name
        if target.exists():
            shutil.rmtree(target)
        shutil.rmtree(a.home / f".adapt-{cached.name}", ignore_errors=True)
        a.home.mkdir(parents=True, exist_ok=True)
        shutil.copytree(cached.index_dir, target)
        settings = Settings(home=a.home, name=cached.name)
        work = a.home / f".adapt-{cached.name}"
        saved = a.queries / cached.name if a.queries else None
        if saved is not None and (saved / "state.json").is_file():  # the same index copy: the state's key matches
            shutil.copytree(saved, work)
            print(f"  starting from the pseudo-queries saved in {saved}", flush=True)

        def snapshot(phase: str, done: int, total: int) -> None:
            if saved is not None and phase == "train" and not (saved / "state.json").is_file():
                saved.mkdir(parents=True, exist_ok=True)
                for f in ("queries.json", "state.json"):
                    shutil.copy2(work / f, saved / f)

        def score(mode: str) -> float:
            return evaluate(path, settings, split=a.split, options=SearchOptions(mode=mode)).ndcg_at_10

        before = {"hybrid": score("hybrid"), "dense": score("dense")}
        t = time.monotonic()
        with Index(settings=settings) as index:
            chunks = index.status()["chunks"]
            report = index.adapt(minutes=a.minutes, sample=a.sample, margin=a.margin, progress=snapshot, steps=a.steps,
                                 on_message=lambda m: print(f"  {m}", flush=True))
        seconds = time.monotonic() - t
        after = {"hybrid": score("hybrid"), "dense": score("dense")} if report.kept else dict(before)
        gate = report.gate
        judged = report.queries.get("generated", {}).get("held_out", 0)  # the real gate judges these only
        need = max(MARGIN, SIGNIFICANCE * gate.get("standard_error", 0.0)) if gate else MARGIN
        would_keep = bool(gate) and judged >= 2 * MIN_GATE and gate["new_mrr"] - gate["old_mrr"] >= need
        row = {"dataset": dataset.name, "documents": len(dataset.corpus), "chunks": chunks,
               "minutes": a.minutes, "seconds": round(seconds), "kept": report.kept, "reason": report.reason,
               "before": {k: round(v, 4) for k, v in before.items()},
               "after": {k: round(v, 4) for k, v in after.items()},
               "gate_would_keep": would_keep,
               "gate": report.gate, "queries": report.queries, "training": report.training,
               "recipe": {"lr": train_module.LR, "freeze": train_module.FREEZE_LAYERS,
                          "train_sources": adapt_module.TRAIN_SOURCES},
               "phases_s": report.seconds, "dense_weight": report.dense_weight, "load": os.getloadavg()}
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} (2 cores shared)")
    print(f"{'set':<10} {'docs':>6} {'chunks':>6} {'hybrid before':>13} {'after':>7} {'dense before':>12} "
          f"{'after':>7} {'gate':>5} {'time':>8}")
    for r in rows:
        print(f"{r['dataset']:<10} {r['documents']:>6} {r['chunks']:>6} {r['before']['hybrid']:>13.4f} "
              f"{r['after']['hybrid']:>7.4f} {r['before']['dense']:>12.4f} {r['after']['dense']:>7.4f} "
              f"{'keep' if r['gate_would_keep'] else 'undo':>5} {r['seconds'] / 60:>6.1f} m")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

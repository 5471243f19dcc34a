"""How true is the time left that `searchlm index` shows? Index a real folder with the real embedder, record the
whole run's time-left estimate (`Estimate.run_left()`, what the display's "Indexing ... left ~" shows) through the
library's progress callback, and compare it with the time the run really had left.

    python benchmarks/progress_estimate.py --corpus cisi --docs 500
        Writes the first 500 CISI documents (/work/shared/datasets) as one Markdown file each, indexes them into a
        fresh index (model loading, ONNX export, reading, embedding, writing: a whole first run), and prints the
        estimate at 20 % of the run's wall time and at 20 % of its chunks embedded, each against the truth.

"At 20 % of the run" is by wall time: the run lasts T seconds (the whole `index_folder` call); the estimate
shown at 0.2 T (the display's value then, sampled every 0.25 s) is compared with the 0.8 T that was really
left. "At 20 % of the chunks" is the first progress call with a fifth of the run's chunks embedded. Target: within
±30 %. Run under `nice`; the load average is printed, and a loaded shared machine makes any estimate noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

DATASETS = Path(os.environ.get("DATASETS", "/work/shared/datasets"))


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def write_corpus(folder: Path, corpus: str, docs: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(DATASETS / corpus / "corpus.jsonl", encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n >= docs:
                break
            row = json.loads(line)
            (folder / f"{row['_id']}.md").write_text(f"# {row.get('title') or row['_id']}\n\n{row['text']}\n")
    return folder


def one_run(folder: Path, home: Path, at: float) -> dict:
    from searchlm.indexing.indexer import index_folder
    from searchlm.progress import Estimate
    from searchlm.settings import Settings

    estimate = Estimate()
    calls: list[tuple[float, int, float | None]] = []  # (time, chunks embedded, run left) at each embed call
    samples: list[tuple[float, float | None]] = []  # (time, run left) every 0.25 s: what the display shows
    stop = threading.Event()

    def progress(phase: str, done: int, total: int) -> None:
        estimate(phase, done, total)
        if phase == "embed":
            calls.append((time.monotonic(), done, estimate.run_left()))

    def sample() -> None:
        while not stop.wait(0.25):
            samples.append((time.monotonic(), estimate.run_left()))

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.monotonic()
    sampler.start()
    try:
        report = index_folder(folder, Settings(home=home, name="bench"), progress=progress, on_file=estimate.reading)
    finally:
        stop.set()
        sampler.join()
    end = time.monotonic()
    total = end - start

    def at_time(fraction: float):
        t = start + fraction * total
        seen = [left for when, left in samples if when <= t]
        return (seen[-1] if seen else None), end - t

    by_time = {f: at_time(f) for f in (0.1, at, 0.4, 0.6, 0.8)}
    first = next(((t, left) for t, done, left in calls if done >= at * report.chunks_embedded), None)
    by_chunks = (first[1], end - first[0], (first[0] - start) / total) if first else (None, None, None)
    timeline = [(t - start, done, left, end - t) for t, done, left in calls]
    return {"seconds": total, "chunks": report.chunks_embedded, "files": len(report.added), "by_time": by_time,
            "by_chunks": by_chunks, "embed_seconds": report.embed_seconds, "timeline": timeline}


def error(estimate: float | None, truth: float) -> str:
    if estimate is None:
        return "no estimate yet"
    return f"estimate {estimate:6.1f} s, true {truth:6.1f} s, error {100 * (estimate - truth) / truth:+5.0f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="cisi", help="a folder of /work/shared/datasets (cisi, cranfield, ...)")
    parser.add_argument("--docs", type=int, default=500, help="how many of its documents to index")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--at", type=float, default=0.2, help="the point of the run to check (a fraction)")
    parser.add_argument("--timeline", action="store_true", help="also print every embed call's estimate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="searchlm-progress-") as tmp:
        folder = write_corpus(Path(tmp) / "docs", args.corpus, args.docs)
        for run in range(1, args.runs + 1):
            before = load()
            result = one_run(folder, Path(tmp) / f"home{run}", args.at)
            print(f"run {run}: {args.corpus}, {result['files']} files, {result['chunks']} chunks embedded, "
                  f"{result['seconds']:.1f} s in all ({result['embed_seconds']:.1f} s embedding); "
                  f"{before} before, {load()} after")
            for fraction, (left, truth) in result["by_time"].items():
                mark = "  <- target ±30 %" if fraction == args.at else ""
                print(f"  at {fraction:.0%} of the run's time: {error(left, truth)}{mark}")
            left, truth, when = result["by_chunks"]
            if truth is not None:
                print(f"  at {args.at:.0%} of the chunks embedded ({when:.0%} of the run's time): {error(left, truth)}")
            if args.timeline:
                for t, done, left, truth in result["timeline"]:
                    print(f"    {t:6.1f} s: {done:5d} chunks embedded, {error(left, truth)}")


if __name__ == "__main__":
    main()

